# concur: the two set-up commands are `make demo` and `make check` (README.md).
# Both install what is missing (Debian packages, as root), then build.

BUILD ?= build
JOBS ?= $(shell nproc)
PREFIX ?= /usr/local
ONLY ?= .

# Debian packages: to build and test; and the peers that `make bench` compares with.
PKGS_BUILD := cmake gcc make pkg-config libcmocka-dev parallel liburing-dev
PKGS_BENCH := wrk libuv1-dev libboost-context-dev libtbb-dev libglib2.0-dev golang-go parallel g++ python3

CMAKE_FLAGS ?=

.PHONY: all deps deps-bench build demo check check-normal check-asan check-tsan check-fallback check-epoll check-old-kernels bench bench-scaling install clean

all: build

# Install only what is missing, so that a machine with everything needs no network.
deps:
	@sh tools/install-deps.sh $(PKGS_BUILD)

deps-bench:
	@sh tools/install-deps.sh $(PKGS_BUILD) $(PKGS_BENCH)

build:
	cmake -S . -B $(BUILD) $(CMAKE_FLAGS) >/dev/null
	cmake --build $(BUILD) -j $(JOBS)

demo: deps build
	sh tools/demo.sh $(BUILD)/concur

# Every test, in a normal build and in ASan+UBSan and TSan builds.
check: deps
	$(MAKE) check-normal check-asan check-tsan check-fallback check-epoll \
	  check-old-kernels

check-normal:
	$(MAKE) build BUILD=$(BUILD)
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS)

check-asan:
	$(MAKE) build BUILD=$(BUILD)-asan CMAKE_FLAGS="-DCONCUR_SANITIZE=address -DCONCUR_BENCH=OFF -DCMAKE_BUILD_TYPE=Debug"
	cd $(BUILD)-asan && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 ctest --output-on-failure -j $(JOBS)

# TSan needs a fixed address-space layout on kernels with high mmap entropy.
check-tsan:
	$(MAKE) build BUILD=$(BUILD)-tsan CMAKE_FLAGS="-DCONCUR_SANITIZE=thread -DCONCUR_BENCH=OFF -DCMAKE_BUILD_TYPE=Debug"
	cd $(BUILD)-tsan && TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1 \
	  setarch -R ctest --output-on-failure -j $(JOBS)

# The portable coroutine switch (no assembly), as a port without one gets it.
check-fallback:
	$(MAKE) build BUILD=$(BUILD)-fallback CMAKE_FLAGS="-DCONCUR_CORO_FALLBACK=ON -DCONCUR_BENCH=OFF"
	cd $(BUILD)-fallback && ctest --output-on-failure -R 'test_coro|test_loop'

# Every test again with the epoll poller, where io_uring is the default
# (CONCUR_NO_IO_URING=1; where io_uring is unavailable both runs use epoll).
# The install test is left out: it checks the installed files, not a loop.
check-epoll:
	$(MAKE) build BUILD=$(BUILD)
	cd $(BUILD) && CONCUR_NO_IO_URING=1 ctest --output-on-failure -j $(JOBS) -E '^install$$'

# The io_uring poller as older kernels have it (src/linux/io_uring.c's test
# knobs): every test as on Linux 5.6 to 5.10 (no IORING_FEAT_EXT_ARG, no
# later setup flags; Debian 11's kernel), the loop tests as on 5.5 (no RECV
# or READ requests). Where io_uring is unavailable these run on epoll.
check-old-kernels:
	$(MAKE) build BUILD=$(BUILD)
	cd $(BUILD) && CONCUR_IO_URING_NO_EXT_ARG=1 ctest --output-on-failure \
	  -j $(JOBS) -E '^install$$'
	cd $(BUILD) && CONCUR_IO_URING_NO_IO=1 ctest --output-on-failure \
	  -j $(JOBS) -R 'test_loop'

bench: deps-bench
	$(MAKE) build BUILD=$(BUILD)-bench CMAKE_FLAGS="-DCMAKE_BUILD_TYPE=Release -DCONCUR_TESTS=OFF"
	bash bench/run.sh $(BUILD)-bench '$(value ONLY)'

# How cost grows with the work (BENCHMARKS.md): the figures of bench/scaling.d,
# each at several sizes (tasks, connections, children at once), 3 runs each.
bench-scaling: deps-bench
	$(MAKE) build BUILD=$(BUILD)-bench CMAKE_FLAGS="-DCMAKE_BUILD_TYPE=Release -DCONCUR_TESTS=OFF"
	BENCH_FIGURES=bench/scaling.d BENCH_RUNS=$${BENCH_RUNS:-3} bash bench/run.sh $(BUILD)-bench '$(value ONLY)'

install: build
	cmake --install $(BUILD) --prefix $(PREFIX)

clean:
	rm -rf $(BUILD) $(BUILD)-asan $(BUILD)-tsan $(BUILD)-bench $(BUILD)-fallback
