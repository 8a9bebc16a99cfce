/*
 * queue_2p2c: two producer threads, two consumer threads, a bounded FIFO of
 * capacity 1024 (queue_bench.h). Usage: bench_queue_2p2c [N]
 */
#include "queue_bench.h"

int main(int argc, char **argv) { return qb_run("queue_2p2c", 2, 2, argc, argv); }
