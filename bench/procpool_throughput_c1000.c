/*
 * procpool_throughput_c1000: tiny tasks (a u64 plus one) mapped over a pool
 * of 2 worker processes with chunksize 1000. Prints tasks per second. Peer:
 * multiprocessing.Pool.imap(chunksize=1000).
 *
 * Usage: procpool_throughput_c1000 [N]   (default 5,000,000)
 */
#include "procpool_bench.h"

int main(int argc, char **argv)
{
    cc_worker_main_hook(argc, argv);
    bench_throughput("procpool_throughput_c1000",
                     argc > 1 ? atol(argv[1]) : 5000000, 1000);
    return 0;
}
