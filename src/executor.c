/*
 * executor.c: what every executor shares: submit, shutdown and free through the
 * backend's operations, and the lazy map.
 *
 * DESIGN (map). The inputs are cut into chunks of `chunksize`; each chunk is one
 * task that runs fn on its inputs in turn, writing each result over its input.
 * The window of chunks in flight (map_window.h, shared with the process
 * pool's map) calls the generator only to refill a slot, so at most
 * max_chunks x chunksize inputs and results exist at any time, however long
 * the input is, and results come back in input order.
 */
#include "executor_internal.h"
#include "map_window.h"

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
};

struct cc_map {
    cc_executor *ex;             /* where the chunks run */
    cc_task_fn fn;               /* the function mapped */
    cc_map_next_arg_fn next_arg; /* the input generator */
    void *state;                 /* its state */
    size_t chunksize;            /* inputs per chunk */
    struct chunk *chunks;        /* one per window slot */
    int input_end;               /* 1 while the generator has more, else
                                    its last return (0 or an error) */
    cc__window w;                /* the chunks in flight */
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
    while (n < m->chunksize && m->input_end > 0) {
        int r = m->next_arg(m->state, &c->items[n]);
        if (r > 0)
            n++;
        else
            m->input_end = r;
    }
    return n;
}

/* The window's launch: the next chunk into slot, submitted. */
static long launch(void *map, size_t slot, cc_future **f)
{
    cc_map *m = map;
    struct chunk *c = &m->chunks[slot];
    c->n = gather(m, c);
    if (c->n == 0)
        return m->input_end;
    int r = cc_executor_submit(m->ex, run_chunk, c, f);
    return r < 0 ? r : (long)c->n;
}

static void free_chunks(cc_map *m, size_t slots)
{
    for (size_t i = 0; i < slots && m->chunks; i++) {
        cc__free(m->chunks[i].items, m->chunksize * sizeof(void *));
        cc__free(m->chunks[i].errs, m->chunksize * sizeof(int));
    }
    cc__free(m->chunks, slots * sizeof *m->chunks);
    cc__free(m, sizeof *m);
}

static int alloc_chunks(cc_map *m, size_t slots)
{
    m->chunks = cc__calloc(slots, sizeof *m->chunks);
    if (!m->chunks)
        return -ENOMEM;
    for (size_t i = 0; i < slots; i++) {
        struct chunk *c = &m->chunks[i];
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
    *m = (cc_map){.ex = ex, .fn = fn, .next_arg = next_arg, .state = state,
                  .input_end = 1};
    m->chunksize = opts && opts->chunksize ? opts->chunksize : 1;
    size_t slots = opts && opts->max_chunks ? opts->max_chunks
                                            : 4 * cc_executor_max_workers(ex);
    if (alloc_chunks(m, slots) < 0 ||
        cc__window_init(&m->w, slots, launch, m) < 0) {
        free_chunks(m, slots);
        return -ENOMEM;
    }
    *out = m;
    return 0;
}

int cc_map_next(cc_map *m, cc_deadline deadline, void **result)
{
    *result = NULL;
    size_t slot, pos;
    int r = cc__window_next(&m->w, deadline, &slot, &pos);
    if (r < 0)
        return r;
    /* A chunk that never ran (cancelled, broken pool) fails every input. */
    struct chunk *c = &m->chunks[slot];
    r = cc_future_error(m->w.f[slot]);
    if (r == 0)
        r = c->errs[pos];
    if (r == 0)
        *result = c->items[pos];
    cc__window_advance(&m->w);
    return r;
}

void cc_map_free(cc_map *m)
{
    if (!m)
        return;
    size_t slots = m->w.max;
    cc__window_free(&m->w); /* waits out the chunks using the memory below */
    free_chunks(m, slots);
}
