/*
 * threadpool_glib: the threadpool figures (BENCHMARKS.md) for GLib's
 * GThreadPool with 2 threads.
 *
 * Usage: threadpool_glib throughput [N]   push N no-op items, wait until all
 *                                          ran (default 1,000,000)
 *        threadpool_glib roundtrip [N]    push one item and wait for it, N
 *                                          times (default 100,000)
 */
#include <glib.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static GMutex lock;
static GCond cond;
static long sum, ran, target;

static gint64 now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (gint64)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Adds its item to the sum; the item that completes the target signals. */
static void work(gpointer data, gpointer user_data)
{
    g_mutex_lock(&lock);
    sum += GPOINTER_TO_SIZE(data);
    if (++ran == target)
        g_cond_signal(&cond);
    g_mutex_unlock(&lock);
}

static void wait_for(long n)
{
    g_mutex_lock(&lock);
    target = n;
    while (ran < n)
        g_cond_wait(&cond, &lock);
    g_mutex_unlock(&lock);
}

int main(int argc, char **argv)
{
    const char *mode = argc > 1 ? argv[1] : "throughput";
    gboolean rt = strcmp(mode, "roundtrip") == 0;
    long n = argc > 2 ? atol(argv[2]) : rt ? 100000 : 1000000;
    /* exclusive: the 2 threads start now, before the clock */
    GThreadPool *pool = g_thread_pool_new(work, NULL, 2, TRUE, NULL);
    gint64 t0 = now_ns();
    if (rt) {
        for (long i = 1; i <= n; i++) {
            g_thread_pool_push(pool, GSIZE_TO_POINTER(i), NULL);
            wait_for(i);
        }
    } else {
        g_mutex_lock(&lock);
        target = n;
        g_mutex_unlock(&lock);
        for (long i = 1; i <= n; i++)
            g_thread_pool_push(pool, GSIZE_TO_POINTER(i), NULL);
        wait_for(n);
    }
    gint64 t1 = now_ns();
    g_thread_pool_free(pool, FALSE, TRUE);
    if (sum != n * (n + 1) / 2)
        return 1;
    if (rt)
        printf("threadpool_roundtrip: %.2f us\n", (t1 - t0) / 1e3 / n);
    else
        printf("threadpool_throughput: %.0f tasks/s\n", n / ((t1 - t0) / 1e9));
    return 0;
}
