/*
 * procpool_map.c: the process pool's map (multiprocessing.Pool.imap).
 *
 * DESIGN. The window of chunks in flight is the executor's map's
 * (map_window.h): refilled from the generator only when the consumer has
 * taken the last result of the oldest chunk, so memory stays bounded
 * whatever the input's length. A chunk is packed into one message (u32 n,
 * then n x (u64 len, bytes)) and runs as one task (flag CC__PP_CHUNK): the
 * worker runs the function on each input and packs n x (i32 ret, u64 len,
 * bytes) back.
 * A chunk whose worker died or timed out fails every input of it.
 */
#include "procpool_impl.h"
#include "map_window.h"
#include "worker_impl.h"

#include <stdio.h>
#include <string.h>

/* One chunk's results (the window holds its future and input count). */
struct chunk {
    cc_bytes res; /* the packed results */
    size_t off;   /* parse offset of the next result in res */
};

struct cc_process_map {
    cc_executor *ex;             /* the pool */
    char name[CC__PP_NAME_MAX];  /* the function */
    cc_process_map_next_arg_fn next_arg; /* the generator */
    void *state;                 /* its state */
    size_t chunksize;            /* inputs per chunk */
    struct chunk *chunks;        /* one per window slot */
    int input_end;               /* 1 while the generator has more, else
                                    its last return (0 or an error) */
    cc_bytes scratch;            /* where a chunk is packed, reused */
    cc__window w;                /* the chunks in flight */
};

/* Pack up to chunksize inputs into buf; returns how many, or a negative
 * errno (no memory: nothing packed counts). */
static long gather(cc_process_map *m, cc_bytes *buf)
{
    uint32_t n = 0;
    int e = cc_bytes_append(buf, &n, sizeof n);
    while (e == 0 && n < m->chunksize && m->input_end > 0) {
        const void *a = NULL;
        size_t len = 0;
        int r = m->next_arg(m->state, &a, &len);
        if (r <= 0) {
            m->input_end = r;
            break;
        }
        uint64_t l = len;
        e = cc_bytes_append(buf, &l, sizeof l);
        e = e ? e : cc_bytes_append(buf, a, len);
        n++;
    }
    if (e < 0)
        return e;
    memcpy(buf->data, &n, sizeof n);
    return n;
}

/* The window's launch: the next chunk packed and submitted from slot. */
static long launch(void *map, size_t slot, cc_future **f)
{
    cc_process_map *m = map;
    struct chunk *c = &m->chunks[slot];
    m->scratch.len = 0;
    long n = gather(m, &m->scratch);
    if (n <= 0)
        return n < 0 ? n : m->input_end;
    c->off = 0;
    c->res.len = 0;
    int r = cc__pp_submit_copy(m->ex, m->name, m->scratch.data,
                               m->scratch.len, CC__PP_CHUNK, 0, &c->res, f);
    return r < 0 ? r : n;
}

static void free_map(cc_process_map *m, size_t slots)
{
    for (size_t i = 0; i < slots && m->chunks; i++)
        cc_bytes_free(&m->chunks[i].res);
    cc_bytes_free(&m->scratch);
    cc__free(m->chunks, slots * sizeof *m->chunks);
    cc__free(m, sizeof *m);
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
    *m = (cc_process_map){.ex = ex, .next_arg = next_arg, .state = state,
                          .input_end = 1};
    snprintf(m->name, sizeof m->name, "%s", name);
    m->chunksize = opts && opts->chunksize ? opts->chunksize : 1;
    size_t slots = opts && opts->max_chunks ? opts->max_chunks
                                            : 4 * cc_executor_max_workers(ex);
    m->chunks = cc__calloc(slots, sizeof *m->chunks);
    if (!m->chunks || cc__window_init(&m->w, slots, launch, m) < 0) {
        free_map(m, slots);
        return -ENOMEM;
    }
    *out = m;
    return 0;
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
    size_t slot, pos;
    int r = cc__window_next(&m->w, deadline, &slot, &pos);
    if (r < 0)
        return r;
    /* A chunk whose worker died or timed out fails every input of it. */
    r = cc_future_error(m->w.f[slot]);
    if (r == 0)
        r = unpack(&m->chunks[slot], result);
    cc__window_advance(&m->w);
    return r;
}

void cc_process_map_free(cc_process_map *m)
{
    if (!m)
        return;
    size_t slots = m->w.max;
    cc__window_free(&m->w); /* waits out the chunks writing into res */
    free_map(m, slots);
}
