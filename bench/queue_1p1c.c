/*
 * queue_1p1c: one producer thread, one consumer thread, a bounded FIFO of
 * capacity 1024 (queue_bench.h). Usage: bench_queue_1p1c [N]
 */
#include "queue_bench.h"

int main(int argc, char **argv) { return qb_run("queue_1p1c", 1, 1, argc, argv); }
