"""queue_py: the Python peer of queue_1p1c / queue_2p2c (BENCHMARKS.md):
queue.Queue(maxsize=1024) between P producer and C consumer threads. Same
shape as bench/queue_bench.h, with a smaller default N (Python moves about a
million items a second). Usage: queue_py.py PRODUCERS CONSUMERS [N]
Prints `queue_<P>p<C>c: <items/s> items/s`.
"""
import queue
import sys
import threading
import time


def main():
    producers = int(sys.argv[1]) if len(sys.argv) > 1 else 1
    consumers = int(sys.argv[2]) if len(sys.argv) > 2 else 1
    n = int(sys.argv[3]) if len(sys.argv) > 3 else 2000000
    q = queue.Queue(maxsize=1024)
    start = threading.Event()
    sums = []

    def produce(pid):
        start.wait()
        put = q.put
        for i in range(pid, n, producers):
            put(i + 1)

    def consume(count):
        start.wait()
        get = q.get
        s = 0
        for _ in range(count):
            s += get()
        sums.append(s)

    threads = [threading.Thread(target=produce, args=(p,))
               for p in range(producers)]
    threads += [threading.Thread(target=consume,
                                 args=(n // consumers + (c < n % consumers),))
                for c in range(consumers)]
    for t in threads:
        t.start()
    t0 = time.monotonic()
    start.set()
    for t in threads:
        t.join()
    secs = time.monotonic() - t0
    if sum(sums) != n * (n + 1) // 2:
        sys.exit("queue_py: checksum mismatch")
    print(f"queue_{producers}p{consumers}c: {n / secs:.0f} items/s")


if __name__ == "__main__":
    main()
