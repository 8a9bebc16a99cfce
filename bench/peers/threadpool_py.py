"""threadpool_py: the threadpool figures (BENCHMARKS.md) for Python's
concurrent.futures.ThreadPoolExecutor(max_workers=2).

Usage: threadpool_py.py throughput [N]   submit N no-op tasks, wait for all
                                         (default 100,000)
       threadpool_py.py roundtrip [N]    submit one task and take its result,
                                         N times (default 20,000)
"""
import concurrent.futures as cf
import sys
import time


def inc(x):
    return x + 1


def main():
    mode = sys.argv[1] if len(sys.argv) > 1 else "throughput"
    rt = mode == "roundtrip"
    n = int(sys.argv[2]) if len(sys.argv) > 2 else (20000 if rt else 100000)
    with cf.ThreadPoolExecutor(max_workers=2) as pool:
        pool.submit(inc, 0).result()  # start a worker outside the timing
        t0 = time.monotonic()
        if rt:
            x = 0
            for _ in range(n):
                x = pool.submit(inc, x).result()
            total = x
        else:
            fs = [pool.submit(inc, i) for i in range(n)]
            cf.wait(fs)
            total = sum(f.result() for f in fs)
        t1 = time.monotonic()
    expect = n if rt else n * (n + 1) // 2
    if total != expect:
        sys.exit("checksum mismatch")
    if rt:
        print("threadpool_roundtrip: %.2f us" % ((t1 - t0) * 1e6 / n))
    else:
        print("threadpool_throughput: %.0f tasks/s" % (n / (t1 - t0)))


if __name__ == "__main__":
    main()
