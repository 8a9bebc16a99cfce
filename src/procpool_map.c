/*
 * procpool_map.c: the process pool's map (multiprocessing.Pool.imap).
 *
 * DESIGN. As the executor's map (executor.c): a ring of max_chunks chunk
 * slots, refilled from the generator only when the consumer has taken the
 * last result of the oldest chunk, so memory stays bounded whatever the
 * input's length. A chunk is packed into one message (u32 n, then n x (u64
 * len, bytes)) and runs as one task (flag CC__PP_CHUNK): the worker runs
 * the function on each input and packs n x (i32 ret, u64 len, bytes) back.
 * A chunk whose worker died or timed out fails every input of it.
 */
#include "procpool_impl.h"
#include "future_internal.h"
#include "worker_impl.h"

#include <stdio.h>
#include <string.h>


/* One chunk in flight. */
struct chunk {
    cc_future *f; /* its future, or NULL when the slot is free */
    cc_bytes res; /* the packed results */
    size_t n;     /* inputs in it */
    size_t off;   /* parse offset of the next result in res */
};

struct cc_process_map {
    cc_executor *ex;             /* the pool */
    char name[CC__PP_NAME_MAX];  /* the function */
    cc_process_map_next_arg_fn next_arg; /* the generator */
    void *state;                 /* its state */
    size_t chunksize;            /* inputs per chunk */
    size_t max_chunks;           /* ring slots */
    struct chunk *ring;          /* chunks in flight, oldest at head */
    size_t head;                 /* the oldest */
    size_t inflight;             /* chunks in flight */
    size_t pos;                  /* results taken from the oldest */
    bool input_done;             /* the generator ended or failed */
    int input_err;               /* its error (or submit's), given once */
    cc_bytes scratch;            /* where a chunk is packed, reused */
};

/* Pack up to chunksize inputs into buf; returns how many. */
static size_t gather(cc_process_map *m, cc_bytes *buf)
{
    uint32_t n = 0;
    int e = cc_bytes_append(buf, &n, sizeof n);
    while (e == 0 && n < m->chunksize && !m->input_done) {
        const void *a = NULL;
        size_t len = 0;
        int r = m->next_arg(m->state, &a, &len);
        if (r <= 0) {
            m->input_done = true;
            m->input_err = r;
            break;
        }
        uint64_t l = len;
        e = cc_bytes_append(buf, &l, sizeof l);
        e = e ? e : cc_bytes_append(buf, a, len);
        n++;
    }
    if (e < 0) {
        m->input_done = true;
        m->input_err = e;
        return 0;
    }
    memcpy(buf->data, &n, sizeof n);
    return n;
}

static void refill(cc_process_map *m)
{
    while (m->inflight < m->max_chunks && !m->input_done) {
        struct chunk *c = &m->ring[(m->head + m->inflight) % m->max_chunks];
        m->scratch.len = 0;
        c->n = gather(m, &m->scratch);
        if (c->n == 0)
            return;
        c->off = 0;
        c->res.len = 0;
        int r = cc__pp_submit_copy(m->ex, m->name, m->scratch.data,
                                   m->scratch.len, CC__PP_CHUNK, 0, &c->res,
                                   &c->f);
        if (r < 0) {
            m->input_done = true;
            m->input_err = r;
            return;
        }
        m->inflight++;
    }
}

int cc_process_pool_map(cc_process_map **out, cc_executor *ex,
                        const char *name, cc_process_map_next_arg_fn next_arg,
                        void *state, const cc_map_options *opts)
{
    if (!out || !cc__pp_is_pool(ex) || !name || !next_arg)
        return -EINVAL;
    if (strlen(name) >= CC__PP_NAME_MAX || !cc__worker_lookup(name))
        return -ENOENT;
    cc_process_map *m = cc__calloc(1, sizeof *m);
    if (!m)
        return -ENOMEM;
    *m = (cc_process_map){.ex = ex, .next_arg = next_arg, .state = state};
    snprintf(m->name, sizeof m->name, "%s", name);
    m->chunksize = opts && opts->chunksize ? opts->chunksize : 1;
    m->max_chunks = opts && opts->max_chunks ? opts->max_chunks
                                             : 4 * cc_executor_max_workers(ex);
    m->ring = cc__calloc(m->max_chunks, sizeof *m->ring);
    if (!m->ring) {
        cc__free(m, sizeof *m);
        return -ENOMEM;
    }
    refill(m);
    *out = m;
    return 0;
}

static void retire_head(cc_process_map *m)
{
    struct chunk *c = &m->ring[m->head];
    cc_future_release(c->f);
    c->f = NULL;
    m->head = (m->head + 1) % m->max_chunks;
    m->inflight--;
    m->pos = 0;
    refill(m);
}

/* The next packed result of c into *out: 0 or its error. */
static int unpack(struct chunk *c, cc_bytes *out)
{
    int32_t ret;
    uint64_t len;
    const unsigned char *d = (const unsigned char *)c->res.data;
    if (c->res.len - c->off < sizeof ret + sizeof len)
        return -EIO;
    memcpy(&ret, d + c->off, sizeof ret);
    memcpy(&len, d + c->off + sizeof ret, sizeof len);
    c->off += sizeof ret + sizeof len;
    if (c->res.len - c->off < len)
        return -EIO;
    int r = ret ? (ret > 0 ? -ret : ret) : 0;
    if (r == 0 && out)
        r = cc_bytes_append(out, d + c->off, len);
    c->off += len;
    return r;
}

int cc_process_map_next(cc_process_map *m, cc_deadline deadline,
                        cc_bytes *result)
{
    if (m->inflight == 0) {
        int r = m->input_err ? m->input_err : -ENOENT;
        m->input_err = 0;
        return r;
    }
    struct chunk *c = &m->ring[m->head];
    int w = cc_future_wait(c->f, deadline); /* -ETIMEDOUT, -ECANCELED */
    if (w < 0)
        return w;
    int r = cc_future_error(c->f);
    if (r == 0)
        r = unpack(c, result);
    if (++m->pos == c->n)
        retire_head(m);
    return r;
}

void cc_process_map_free(cc_process_map *m)
{
    if (!m)
        return;
    for (size_t i = 0; i < m->inflight; i++) /* none starts while we wait */
        cc_future_cancel(m->ring[(m->head + i) % m->max_chunks].f);
    for (size_t i = 0; i < m->inflight; i++) {
        struct chunk *c = &m->ring[(m->head + i) % m->max_chunks];
        cc__future_abandon(c->f); /* its result buffer is freed below */
    }
    for (size_t i = 0; i < m->max_chunks; i++)
        cc_bytes_free(&m->ring[i].res);
    cc_bytes_free(&m->scratch);
    cc__free(m->ring, m->max_chunks * sizeof *m->ring);
    cc__free(m, sizeof *m);
}
