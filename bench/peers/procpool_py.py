"""procpool_py: the procpool figures (BENCHMARKS.md) for Python's
multiprocessing.Pool and concurrent.futures.ProcessPoolExecutor, 2 workers.

Usage: procpool_py.py MODE [N]
  throughput_c1 [N]     Pool(2).imap(inc, range(N), chunksize=1)   (100,000)
  throughput_c1000 [N]  Pool(2).imap(inc, range(N), chunksize=1000)
                        (5,000,000)
  roundtrip [N]         ProcessPoolExecutor(2).submit(inc, x).result(), N
                        times (20,000)
  roundtrip_pool [N]    Pool(2).apply(inc, (x,)), N times (20,000)
  bandwidth [N]         ProcessPoolExecutor(1): a 64 MiB bytes echoed, N
                        times after 2 untimed; MiB moved (argument +
                        result) per second (5)
  cpu_bound_speedup [N] sum of i*i for i < n, 20 values of n near
                        5,000,000: sequential time over Pool(2).map time,
                        N rounds of each, alternated (1)
"""
import concurrent.futures as cf
import multiprocessing as mp
import random
import sys
import time


def inc(x):
    return x + 1


def echo(b):
    return b


def sum_squares(n):
    return sum(i * i for i in range(n))


def throughput(n, chunksize, figure):
    with mp.Pool(2) as pool:
        pool.map(inc, range(4))
        t0 = time.monotonic()
        total = sum(pool.imap(inc, range(n), chunksize=chunksize))
        t1 = time.monotonic()
    assert total == n * (n + 1) // 2, "checksum mismatch"
    print(f"{figure}: {n / (t1 - t0):.0f} tasks/s")


def roundtrip(n):
    with cf.ProcessPoolExecutor(max_workers=2) as pool:
        pool.submit(inc, 0).result()
        x = 0
        t0 = time.monotonic()
        for _ in range(n):
            x = pool.submit(inc, x).result()
        t1 = time.monotonic()
    assert x == n, "checksum mismatch"
    print(f"procpool_roundtrip: {(t1 - t0) * 1e6 / n:.2f} us")


def roundtrip_pool(n):
    with mp.Pool(2) as pool:
        x = pool.apply(inc, (0,)) - 1
        t0 = time.monotonic()
        for _ in range(n):
            x = pool.apply(inc, (x,))
        t1 = time.monotonic()
    assert x == n, "checksum mismatch"
    print(f"procpool_roundtrip: {(t1 - t0) * 1e6 / n:.2f} us")


def bandwidth(n):
    big = bytes(range(256)) * (256 * 1024)
    with cf.ProcessPoolExecutor(max_workers=1) as pool:
        for _ in range(2):  # warm-up, untimed, as the C side does
            pool.submit(echo, big).result()
        t0 = time.monotonic()
        for _ in range(n):
            out = pool.submit(echo, big).result()
        t1 = time.monotonic()
    assert out == big, "checksum mismatch"
    print(f"procpool_bandwidth: {2 * 64 * n / (t1 - t0):.0f} MiB/s")


def cpu_bound_speedup(n):
    ns = [5000000 + random.randrange(10000) for _ in range(20)]
    with mp.Pool(2) as pool:
        pool.map(inc, range(4))
        seq = par = 0.0
        for _ in range(n):  # alternated, as the C side does
            t0 = time.monotonic()
            a = sum(map(sum_squares, ns))
            t1 = time.monotonic()
            b = sum(pool.map(sum_squares, ns, chunksize=1))
            t2 = time.monotonic()
            assert a == b, "checksum mismatch"
            seq += t1 - t0
            par += t2 - t1
    print(f"cpu_bound_speedup: {seq / par:.2f} x")


def main():
    mode = sys.argv[1] if len(sys.argv) > 1 else "throughput_c1"
    arg = int(sys.argv[2]) if len(sys.argv) > 2 else None
    if mode == "throughput_c1":
        throughput(arg or 100000, 1, "procpool_throughput_c1")
    elif mode == "throughput_c1000":
        throughput(arg or 5000000, 1000, "procpool_throughput_c1000")
    elif mode == "roundtrip":
        roundtrip(arg or 20000)
    elif mode == "roundtrip_pool":
        roundtrip_pool(arg or 20000)
    elif mode == "bandwidth":
        bandwidth(arg or 5)
    elif mode == "cpu_bound_speedup":
        cpu_bound_speedup(arg or 1)
    else:
        sys.exit(f"unknown mode {mode}")


if __name__ == "__main__":
    main()
