/*
 * executor.c: what every executor shares: submit, shutdown and free through the
 * backend's operations, and the lazy map.
 *
 * DESIGN (map). The inputs are cut into chunks of `chunksize`; each chunk is one
 * task that runs fn on its inputs in turn, writing each result over its input.
 * A ring of max_chunks chunk slots holds the chunks in flight, in input order.
 * The generator is called only to refill a slot: once when the map starts, and
 * each time the consumer has taken the last result of the oldest chunk. So at
 * most max_chunks x chunksize inputs and results exist at any time, however
 * long the input is, and results come back in input order.
 */
#include "executor_internal.h"

#include <string.h>

/* ---- any executor -------------------------------------------------------------- */

int cc_executor_submit(cc_executor *ex, cc_task_fn fn, void *arg, cc_future **out)
{
    cc_future *f = cc__future_alloc();
    if (!f)
        return -ENOMEM;
    cc__future_init(f);
    f->fn = fn;
    f->arg = arg;
    if (out) /* relaxed: nobody else sees f yet */
        cc__store_relaxed(&f->refs, 2);
    int r = ex->ops->submit(ex, f);
    if (r < 0) {
        cc__free(f, sizeof *f);
        return r;
    }
    if (out)
        *out = f;
    return 0;
}

void cc_executor_shutdown(cc_executor *ex, bool wait, bool cancel_futures)
{
    ex->ops->shutdown(ex, wait, cancel_futures);
}

size_t cc_executor_max_workers(const cc_executor *ex)
{
    return ex->ops->max_workers(ex);
}

void cc_executor_free(cc_executor *ex)
{
    if (ex)
        ex->ops->free(ex);
}

/* ---- map ------------------------------------------------------------------------ */

/* One chunk of a map: a task over up to chunksize inputs. */
struct chunk {
    cc_map *m;    /* the map (for fn) */
    size_t n;     /* inputs in this chunk */
    void **items; /* chunksize slots: the inputs, then the results */
    int *errs;    /* chunksize slots: each input's outcome */
    cc_future *f; /* the chunk's future while in flight, else NULL */
};

struct cc_map {
    cc_executor *ex;             /* where the chunks run */
    cc_task_fn fn;               /* the function mapped */
    cc_map_next_arg_fn next_arg; /* the input generator */
    void *state;                 /* its state */
    size_t chunksize;            /* inputs per chunk */
    size_t max_chunks;           /* ring slots */
    struct chunk *ring;          /* chunks in flight, oldest at head */
    size_t head;                 /* ring index of the oldest chunk */
    size_t inflight;             /* chunks in flight */
    size_t pos;                  /* next result to yield in the oldest chunk */
    bool input_done;             /* the generator is exhausted or failed */
    int input_err;               /* its error (or submit's), yielded once */
};

int cc_map_array_next(void *state, void **arg)
{
    cc_map_array *a = state;
    if (a->next >= a->n)
        return 0;
    *arg = a->args[a->next++];
    return 1;
}

static int run_chunk(void *arg, void **result)
{
    struct chunk *c = arg;
    for (size_t i = 0; i < c->n; i++) {
        char *msg;
        void *out;
        c->errs[i] = cc__task_call(c->m->fn, c->items[i], &out, &msg);
        cc__free(msg, 0);
        c->items[i] = out;
    }
    return 0;
}

/* Take up to chunksize inputs into c; returns how many. */
static size_t gather(cc_map *m, struct chunk *c)
{
    size_t n = 0;
    while (n < m->chunksize && !m->input_done) {
        int r = m->next_arg(m->state, &c->items[n]);
        if (r > 0) {
            n++;
            continue;
        }
        m->input_done = true;
        m->input_err = r;
    }
    return n;
}

/* Submit chunks until the ring is full or the input ends. */
static void refill(cc_map *m)
{
    while (m->inflight < m->max_chunks && !m->input_done) {
        struct chunk *c = &m->ring[(m->head + m->inflight) % m->max_chunks];
        c->n = gather(m, c);
        if (c->n == 0)
            return;
        int r = cc_executor_submit(m->ex, run_chunk, c, &c->f);
        if (r < 0) {
            m->input_done = true;
            m->input_err = r;
            return;
        }
        m->inflight++;
    }
}

static void free_map(cc_map *m)
{
    for (size_t i = 0; i < m->max_chunks && m->ring; i++) {
        cc__free(m->ring[i].items, m->chunksize * sizeof(void *));
        cc__free(m->ring[i].errs, m->chunksize * sizeof(int));
    }
    cc__free(m->ring, m->max_chunks * sizeof *m->ring);
    cc__free(m, sizeof *m);
}

static int alloc_ring(cc_map *m)
{
    m->ring = cc__calloc(m->max_chunks, sizeof *m->ring);
    if (!m->ring)
        return -ENOMEM;
    for (size_t i = 0; i < m->max_chunks; i++) {
        struct chunk *c = &m->ring[i];
        c->m = m;
        c->items = cc__calloc(m->chunksize, sizeof(void *));
        c->errs = cc__calloc(m->chunksize, sizeof(int));
        if (!c->items || !c->errs)
            return -ENOMEM;
    }
    return 0;
}

int cc_executor_map(cc_map **out, cc_executor *ex, cc_task_fn fn,
                    cc_map_next_arg_fn next_arg, void *state,
                    const cc_map_options *opts)
{
    cc_map *m = cc__calloc(1, sizeof *m);
    if (!m)
        return -ENOMEM;
    *m = (cc_map){.ex = ex, .fn = fn, .next_arg = next_arg, .state = state};
    m->chunksize = opts && opts->chunksize ? opts->chunksize : 1;
    m->max_chunks = opts && opts->max_chunks ? opts->max_chunks
                                             : 4 * cc_executor_max_workers(ex);
    if (alloc_ring(m) < 0) {
        free_map(m);
        return -ENOMEM;
    }
    refill(m);
    *out = m;
    return 0;
}

/* The oldest chunk is consumed: free its slot and refill. */
static void retire_head(cc_map *m)
{
    struct chunk *c = &m->ring[m->head];
    cc_future_release(c->f);
    c->f = NULL;
    m->head = (m->head + 1) % m->max_chunks;
    m->inflight--;
    m->pos = 0;
    refill(m);
}

int cc_map_next(cc_map *m, cc_deadline deadline, void **result)
{
    *result = NULL;
    if (m->inflight == 0) {
        int r = m->input_err ? m->input_err : -ENOENT;
        m->input_err = 0;
        return r;
    }
    struct chunk *c = &m->ring[m->head];
    int w = cc_future_wait(c->f, deadline); /* -ETIMEDOUT, -ECANCELED */
    if (w < 0)
        return w;
    /* A chunk that never ran (cancelled, broken pool) fails every input. */
    int r = cc_future_error(c->f);
    if (r == 0)
        r = c->errs[m->pos];
    if (r == 0)
        *result = c->items[m->pos];
    if (++m->pos == c->n)
        retire_head(m);
    return r;
}

void cc_map_free(cc_map *m)
{
    if (!m)
        return;
    for (size_t i = 0; i < m->inflight; i++) /* none starts while we wait */
        cc_future_cancel(m->ring[(m->head + i) % m->max_chunks].f);
    for (size_t i = 0; i < m->inflight; i++) {
        struct chunk *c = &m->ring[(m->head + i) % m->max_chunks];
        cc__future_abandon(c->f); /* its memory is freed below */
    }
    free_map(m);
}
