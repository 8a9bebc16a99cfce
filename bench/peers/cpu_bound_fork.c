/*
 * cpu_bound_fork.c: the floor of figure cpu_bound_speedup: the best any pool
 * of 2 processes could do with the same job on this machine. Two children
 * forked once, before the clock starts, take the next task themselves from
 * an atomic counter in shared memory (nothing hands a task out, and no
 * worker waits while a task is left), and a pipe each way starts a round
 * and reports its end. The job, the rounds and their alternation are those
 * of bench/cpu_bound_speedup.c, with the same sum_squares (not inlined,
 * aligned to a cache line: see bench/procpool_bench.h). Prints the
 * sequential rounds' total time over the parallel rounds'.
 *
 * Usage: cpu_bound_fork [N]   (default 10)
 */
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

enum { VALUES = 20, WORKERS = 2 };

static __attribute__((noinline, aligned(64))) uint64_t sum_squares(uint64_t n)
{
    uint64_t sum = 0;
    for (uint64_t i = 0; i < n; i++)
        sum += i * i;
    return sum;
}

struct shared {
    _Atomic int next;        /* the next task to take */
    uint64_t ns[VALUES];     /* the job */
    uint64_t result[VALUES]; /* each task's sum */
};

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* A worker: per byte on `go`, take tasks until none is left, then write a
 * byte on `done`. Ends at end of file on `go`. */
static void worker(struct shared *s, int go, int done)
{
    char c;
    while (read(go, &c, 1) == 1) {
        int i;
        while ((i = atomic_fetch_add(&s->next, 1)) < VALUES)
            s->result[i] = sum_squares(s->ns[i]);
        if (write(done, &c, 1) != 1)
            _exit(1);
    }
    _exit(0);
}

int main(int argc, char **argv)
{
    long n = argc > 1 ? atol(argv[1]) : 10;
    struct shared *s = mmap(NULL, sizeof *s, PROT_READ | PROT_WRITE,
                            MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    int go[2], done[2];
    if (s == MAP_FAILED || pipe(go) < 0 || pipe(done) < 0)
        return 1;
    for (int i = 0; i < VALUES; i++)
        s->ns[i] = 5000000 + (uint64_t)(rand() % 10000);
    for (int w = 0; w < WORKERS; w++)
        if (fork() == 0) {
            close(go[1]);
            close(done[0]);
            worker(s, go[0], done[1]);
        }
    close(go[0]);
    close(done[1]);
    uint64_t a = 0, b = 0;
    int64_t seq = 0, par = 0;
    for (long r = 0; r < n; r++) {
        int64_t t0 = now_ns();
        for (int i = 0; i < VALUES; i++)
            a += sum_squares(s->ns[i]);
        int64_t t1 = now_ns();
        atomic_store(&s->next, 0);
        char c[WORKERS] = {0};
        if (write(go[1], c, WORKERS) != WORKERS)
            return 1;
        for (int got = 0; got < WORKERS;) {
            ssize_t k = read(done[0], c, WORKERS - got);
            if (k <= 0)
                return 1;
            got += (int)k;
        }
        int64_t t2 = now_ns();
        for (int i = 0; i < VALUES; i++)
            b += s->result[i];
        seq += t1 - t0;
        par += t2 - t1;
    }
    close(go[1]);
    while (wait(NULL) > 0)
        ;
    if (a != b) {
        fprintf(stderr, "checksum mismatch\n");
        return 1;
    }
    printf("cpu_bound_speedup: %.2f x\n", (double)seq / par);
    return 0;
}
