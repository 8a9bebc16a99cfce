#!/bin/sh
# demo.sh CONCUR: `make demo`. Compresses the licence texts every Debian machine
# has (/usr/share/common-licenses/* and /usr/share/doc/*/copyright; copies, in a
# temporary directory) once sequentially with a shell loop and once with
# `concur run`, checks that both give byte-identical .gz files, and prints both
# times and the speed-up. Exits non-zero on any mismatch.
set -eu

concur=${1:-build/concur}
case $concur in /*) ;; *) concur=$PWD/$concur ;; esac
[ -x "$concur" ] || { echo "demo: $concur is not built (run make)" >&2; exit 1; }

tmp=$(mktemp -d "${TMPDIR:-/tmp}/concur-demo.XXXXXX")
trap 'rm -rf "$tmp"' EXIT INT TERM

now_ms() { echo $(($(date +%s%N) / 1000000)); }

# The inputs: copies (symlinks followed), the same tree twice.
mkdir "$tmp/seq"
(cd /usr/share && tar -chf - common-licenses doc/*/copyright 2>/dev/null) |
    (cd "$tmp/seq" && tar -xf -)
cp -a "$tmp/seq" "$tmp/par"
count=$(cd "$tmp/seq" && find . -type f | wc -l)
bytes=$(cd "$tmp/seq" && find . -type f -exec cat {} + | wc -c)
echo "demo: gzip -9 of $count files ($((bytes / 1024)) KiB): licence texts from /usr/share"

# -n: no name or time stamp in the .gz header, so that both runs can match.
t0=$(now_ms)
(cd "$tmp/seq" && find . -type f | while read -r f; do gzip -9 -n -k -f "$f"; done)
t1=$(now_ms)
(cd "$tmp/par" && find . -type f | "$concur" run gzip -9 -n -k -f)
t2=$(now_ms)

# Byte-identical results, and one .gz per input.
gz=$(cd "$tmp/par" && find . -name '*.gz' -type f | wc -l)
if ! diff -r "$tmp/seq" "$tmp/par" >/dev/null || [ "$gz" -ne "$count" ]; then
    echo "demo: MISMATCH between the sequential and the concur run" >&2
    exit 1
fi
seq_ms=$((t1 - t0))
par_ms=$((t2 - t1))
[ "$par_ms" -gt 0 ] || par_ms=1
cores=$(nproc)
echo "demo: sequential shell loop: ${seq_ms} ms"
echo "demo: concur run (-j $cores):   ${par_ms} ms"
echo "demo: speed-up: $((seq_ms / par_ms)).$(((seq_ms * 100 / par_ms) % 100 / 10))$(((seq_ms * 100 / par_ms) % 10)) x; results identical ($gz files)"
