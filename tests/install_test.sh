#!/usr/bin/env bash
# install_test.sh SRC BUILD: `cmake --install` into a temporary prefix, then build the
# tour example against it twice, through pkg-config and through find_package(concur),
# and run both: the installed headers, libraries, .pc and CMake package work.
set -euo pipefail
src=$1 build=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cmake --install "$build" --prefix "$tmp/prefix" >/dev/null
test -x "$tmp/prefix/bin/concur" && test -f "$tmp/prefix/share/man/man1/concur.1"

export PKG_CONFIG_PATH="$tmp/prefix/lib/pkgconfig"
cc "$src/examples/tour.c" $(pkg-config --cflags --libs concur) -o "$tmp/tour_shared"
LD_LIBRARY_PATH="$tmp/prefix/lib" "$tmp/tour_shared" >/dev/null
lib=$tmp/prefix/lib/libconcur.so
nm -D --defined-only "$lib" | grep -q ' cc__' &&
    { echo "internal cc__ symbols exported"; exit 1; }
# The shared library is as fast as the static one (CMakeLists.txt, internal.h):
# no thread-local reached through __tls_get_addr, no call of its own through
# the PLT; and its static TLS still lets dlopen load it.
readelf -rW "$lib" | grep -E 'DTPMOD|TLSDESC' &&
    { echo "libconcur.so reaches thread-locals through __tls_get_addr"; exit 1; }
readelf -rW "$lib" | grep JUMP_SLOT | grep -E ' cc_[a-z]' &&
    { echo "libconcur.so calls its own functions through the PLT"; exit 1; }
if command -v python3 >/dev/null; then
    python3 -c 'import ctypes, sys; assert ctypes.CDLL(sys.argv[1]).cc_loop_current() == 0' "$lib"
fi

mkdir "$tmp/consumer"
cat >"$tmp/consumer/CMakeLists.txt" <<CMAKE
cmake_minimum_required(VERSION 3.20)
project(consumer C)
find_package(concur REQUIRED)
add_executable(tour "$src/examples/tour.c")
target_link_libraries(tour concur::concur)
CMAKE
cmake -S "$tmp/consumer" -B "$tmp/consumer/build" -DCMAKE_PREFIX_PATH="$tmp/prefix" >/dev/null
cmake --build "$tmp/consumer/build" >/dev/null
"$tmp/consumer/build/tour" >/dev/null
echo "install test: 1 passed, 0 failed"
