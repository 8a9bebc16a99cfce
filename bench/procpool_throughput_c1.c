/*
 * procpool_throughput_c1: tiny tasks (a u64 plus one) mapped over a pool of
 * 2 worker processes with chunksize 1 (one round trip per task). Prints
 * tasks per second. Peer: multiprocessing.Pool.imap(chunksize=1).
 *
 * Usage: procpool_throughput_c1 [N]   (default 100,000)
 */
#include "procpool_bench.h"

int main(int argc, char **argv)
{
    cc_worker_main_hook(argc, argv);
    bench_throughput("procpool_throughput_c1", argc > 1 ? atol(argv[1]) : 100000,
                     1);
    return 0;
}
