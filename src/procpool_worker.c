/*
 * procpool_worker.c: the loop a process pool's worker runs.
 *
 * DESIGN. The worker is an ordinary worker process (process.h) running the
 * registered function cc__procpool_worker, with five fds passed: the
 * control memfd (struct cc__pp_ctl, mapped shared), two data memfds (large
 * arguments and results of each lane), an eventfd and the pool's arena (a
 * large argument copied there at submit). It runs the initializer, then
 * loops: sleep on the shared futex `req` until the parent has posted a
 * batch it has not run (the parent may post the next one while it runs
 * one: then it goes straight on), claim each task (a CAS of its state word
 * in the lane from QUEUED to RUNNING, against a cancel's CAS to CANCELLED:
 * a worker that loses skips the task, a cancel that loses kills the worker
 * if the task still runs), run the function on each claimed task (the
 * argument read in place, inline in the lane, in the arena or in the
 * lane's data memfd, whose mappings are kept from task to task), count
 * each result in the lane's `done`, and after the batch bump `fin` and
 * signal the eventfd, which the parent polls together with the worker's
 * pidfd (so a death is seen as soon as a result). The function's result
 * buffer points into a second kept mapping of the lane's data memfd (the
 * "view", apart from the arguments' mapping, which a growing result must
 * not move), registered with cc_bytes (bytes_owner.h): its appends write
 * where the parent reads, growth lengthens the memfd and remaps the view,
 * and cc_bytes_free only detaches. A small result is then copied inline
 * into the lane; a large one stays where it is (no copy). A function that
 * replaced or freed its result leaves a buffer of its own: that one is
 * copied into the memfd, as every result once was, and freed. `stage`
 * tells the parent where a death happened. After each task the worker
 * looks at `halt`: the parent, killing it to cancel that task, asks it to
 * wait there for the kill if the task ended first, so that the kill never
 * lands in the next task. After max_tasks tasks, or a `quit`, the loop
 * returns and the worker exits with 0.
 */
#include "procpool_impl.h"
#include "bytes_owner.h"
#include "worker_impl.h"

#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

/* The worker's view of its pool slot. */
struct wk {
    struct cc__pp_ctl *ctl; /* the shared control block */
    struct cc__pp_map data[CC__PP_LANES]; /* each lane's data memfd */
    int efd;                /* signalled when a batch or the
                               initializer is done */
    struct cc__pp_map arena; /* the pool's large arguments, read in place */
    struct cc__pp_map view[CC__PP_LANES]; /* each lane's data memfd again,
                               where results are written in place */
    struct cc__bytes_owner own; /* registers the current view */
    struct cc__pp_map *cur; /* the view res was pointed into, or NULL */
    size_t cur_off;         /* where res starts in it */
    cc_bytes res;           /* the task's result: in cur, or the
                               function's own buffer */
};

int cc__pp_map_reserve(struct cc__pp_map *m, size_t len)
{
    if (len <= m->size)
        return 0;
    struct stat st;
    if (fstat(m->fd, &st) < 0)
        return -errno;
    size_t want = (size_t)1 << 20; /* grow by doubling: few remaps */
    while (want < len)
        want *= 2;
    if ((size_t)st.st_size < want && ftruncate(m->fd, (off_t)want) < 0)
        return -errno;
    size_t size = (size_t)st.st_size > want ? (size_t)st.st_size : want;
    void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, m->fd, 0);
    if (p == MAP_FAILED)
        return -errno;
    cc__pp_map_drop(m);
    m->base = p;
    m->size = size;
    return 0;
}

void cc__pp_map_drop(struct cc__pp_map *m)
{
    if (m->base)
        munmap(m->base, m->size);
    m->base = NULL;
    m->size = 0;
}

static void wait_for_task(struct cc__pp_ctl *ctl, uint32_t seen)
{
    /* acquire: pairs with the parent's release bump of req. A shared
     * futex: the word lives in a memfd both processes map. */
    while (cc__load_acq(&ctl->req) == seen)
        cc__futex_wait(&ctl->req, seen, CC_FOREVER, true);
}

static void set_stage(struct cc__pp_ctl *ctl, uint32_t stage)
{
    /* relaxed: the parent reads it only after the worker died. */
    cc__store_relaxed(&ctl->stage, stage);
}

/* Run fn on every input of a packed chunk, packing the results into *out. */
static int run_chunk(cc_worker_fn fn, const unsigned char *a, size_t len,
                     cc_bytes *out)
{
    uint32_t n;
    if (len < sizeof n)
        return -EINVAL;
    memcpy(&n, a, sizeof n);
    size_t off = sizeof n;
    for (uint32_t i = 0; i < n; i++) {
        uint64_t l;
        if (len - off < sizeof l)
            return -EINVAL;
        memcpy(&l, a + off, sizeof l);
        off += sizeof l;
        if (len - off < l)
            return -EINVAL;
        cc_bytes r = {0};
        int32_t ret = fn(l ? a + off : NULL, l, &r);
        uint64_t rl = r.len;
        int e = cc_bytes_append(out, &ret, sizeof ret);
        e = e ? e : cc_bytes_append(out, &rl, sizeof rl);
        e = e ? e : cc_bytes_append(out, r.data, r.len);
        cc_bytes_free(&r);
        if (e < 0)
            return e;
        off += l;
    }
    return 0;
}

/* The argument, read in place: inline, in the arena or in the lane's data
 * memfd. */
static const void *map_arg(struct wk *k, struct cc__pp_map *m,
                           const struct cc__pp_item *it,
                           const unsigned char *inl)
{
    if (it->len == 0)
        return NULL;
    if (it->fd_off == CC__PP_NO_FD)
        return inl;
    if (it->fd_off == CC__PP_ARENA)
        m = &k->arena;
    return cc__pp_map_reserve(m, it->len) == 0 ? m->base : NULL;
}

/* Whether the task's result is still where point_result put it. */
static bool in_place(const struct wk *k)
{
    return k->cur && k->res.data == (char *)k->cur->base + k->cur_off;
}

/* Write the result record at *roff (and the bytes inline, or in the view
 * v at *fd_off: there already when in place); left records, this one
 * included, must still fit. */
static void deliver(struct wk *k, struct cc__pp_lane *l, struct cc__pp_map *v,
                    struct cc__pp_res *r, size_t left, size_t *roff,
                    uint64_t *fd_off)
{
    const cc_bytes *res = &k->res;
    unsigned char *d = l->data;
    size_t avail = CC__PP_INLINE - *roff;
    size_t need = left * CC__PP_ALIGN8(sizeof *r) + CC__PP_ALIGN8(res->len);
    r->len = res->len;
    r->fd_off = CC__PP_NO_FD;
    if ((need > avail || res->len > avail) && !in_place(k)) {
        int e = cc__pp_map_reserve(v, *fd_off + res->len);
        if (e < 0 && !r->err)
            r->err = e;
        if (e == 0)
            memcpy(v->base + *fd_off, res->data, res->len);
    }
    if (need > avail || res->len > avail) {
        r->fd_off = *fd_off;
        *fd_off = (*fd_off + res->len + 4095) & ~(uint64_t)4095;
    } else if (res->len) {
        memcpy(d + *roff + sizeof *r, res->data, res->len);
    }
    memcpy(d + *roff, r, sizeof *r);
    *roff += CC__PP_ALIGN8(sizeof *r + (r->fd_off == CC__PP_NO_FD ? r->len : 0));
}

static void signal_done(struct wk *k)
{
    uint64_t one = 1;
    while (write(k->efd, &one, sizeof one) < 0 && errno == EINTR)
        ;
}

/* cc_bytes grows a result in place: lengthen the memfd, remap the view. */
static int grow_result(struct cc__bytes_owner *o, cc_bytes *b, size_t cap)
{
    struct wk *k = CC__CONTAINER_OF(o, struct wk, own);
    struct cc__pp_map *v = k->cur;
    size_t off = (size_t)((unsigned char *)b->data - v->base);
    if (cap > SIZE_MAX / 2 - off || cc__pp_map_reserve(v, off + cap) < 0)
        return -ENOMEM;
    /* relaxed: read by cc_bytes in this process only, as a range to
     * compare with (see the field). */
    cc__store_relaxed(&o->lo, (uintptr_t)v->base);
    cc__store_relaxed(&o->size, (uintptr_t)v->size);
    b->data = (char *)v->base + off;
    b->cap = v->size - off;
    return 0;
}

/* Point the result at the view of the lane from fd_off on (if it cannot be
 * mapped, leave it empty: the function's appends then allocate). */
static void point_result(struct wk *k, struct cc__pp_map *v, uint64_t fd_off)
{
    k->res = (cc_bytes){0};
    k->cur = NULL;
    if (cc__pp_map_reserve(v, fd_off + 1) < 0)
        return;
    cc__store_relaxed(&k->own.lo, (uintptr_t)v->base); /* as above */
    cc__store_relaxed(&k->own.size, (uintptr_t)v->size);
    k->cur = v;
    k->cur_off = fd_off;
    k->res.data = (char *)v->base + fd_off;
    k->res.cap = v->size - fd_off;
    k->res.data[0] = 0;
}

/* After delivery: free the function's own buffer; detach the view. */
static void drop_result(struct wk *k)
{
    if (!in_place(k))
        cc_bytes_free(&k->res);
    k->res = (cc_bytes){0};
    k->cur = NULL;
}

_Atomic(void (*)(void)) cc__pp_test_at_start;

static void at_start(void)
{
    /* relaxed: set by the worker's own initializer, in this thread */
    void (*hook)(void) = cc__load_relaxed(&cc__pp_test_at_start);
    if (hook)
        hook();
}

/* Take task i of lane l to run it: false if a cancel took it first. */
static bool claim(struct cc__pp_lane *l, uint32_t i)
{
    uint32_t st = CC__PP_QUEUED;
    /* acq_rel: against the parent's CAS to CANCELLED (cancel_in_lane);
     * the release also publishes the stage and done before, which the
     * parent reads after it sees RUNNING. */
    return cc__cas(&l->state[i], &st, CC__PP_RUNNING);
}

/* Run task i of the batch in lane l, described at *aoff; its result at
 * *roff. */
static void run_item(struct wk *k, uint32_t lane, uint32_t i, size_t *aoff,
                     size_t *roff, uint64_t *fd_off)
{
    struct cc__pp_lane *l = &k->ctl->lane[lane];
    struct cc__pp_item it;
    memcpy(&it, l->data + *aoff, sizeof it);
    const char *name = (const char *)l->data + *aoff + sizeof it;
    const unsigned char *inl = (const unsigned char *)name + it.name_len;
    *aoff += CC__PP_ALIGN8(sizeof it + it.name_len +
                           (it.fd_off == CC__PP_NO_FD ? it.len : 0));
    if (it.len && it.fd_off == 0) /* results go after the argument */
        *fd_off = (it.len + 4095) & ~(uint64_t)4095;
    struct cc__pp_res r = {0};
    const void *arg = map_arg(k, &k->data[lane], &it, inl);
    cc_worker_fn fn = cc__worker_lookup(name);
    r.err = it.len && !arg ? -ENOMEM : !fn ? -ENOENT : 0;
    set_stage(k->ctl, CC__PP_TASK); /* first: a claimed task is in TASK */
    if (!claim(l, i))
        r.err = -ECANCELED;
    else if (!r.err)
        at_start();
    point_result(k, &k->view[lane], *fd_off);
    if (!r.err && (it.flags & CC__PP_CHUNK))
        r.err = run_chunk(fn, arg, it.len, &k->res);
    else if (!r.err)
        r.ret = fn(arg, it.len, &k->res);
    set_stage(k->ctl, CC__PP_RESULT);
    deliver(k, l, &k->view[lane], &r, l->n - i, roff, fd_off);
    drop_result(k);
}

/* The parent is killing this worker to cancel task id, which has just
 * ended (its done is bumped): wait for the kill here, so that it cannot
 * land in the next task, until the parent takes it back. */
static void halt_if_asked(struct cc__pp_ctl *ctl, uint32_t id)
{
    /* seq_cst: our bump of done before the load of halt, against the
     * parent's store of halt before its load of done (Dekker): either it
     * sees the task ended and lets us go on, or we see halt and wait. */
    cc__fence_seq_cst();
    while (cc__load_relaxed(&ctl->halt) == id) /* relaxed: the fence */
        cc__futex_wait(&ctl->halt, id, CC_FOREVER, true);
}

/* Run batch seq, in the lane the parent chose for it. */
static void run_batch(struct wk *k, uint32_t seq)
{
    uint32_t lane = k->ctl->lane_of[seq % 2];
    struct cc__pp_lane *l = &k->ctl->lane[lane];
    size_t aoff = 0, roff = CC__PP_ARGS;
    uint64_t fd_off = 0;
    uint32_t n = l->n;
    for (uint32_t i = 0; i < n; i++) {
        run_item(k, lane, i, &aoff, &roff, &fd_off);
        /* release: the result record before the parent's acquire of done. */
        cc__store_rel(&l->done, i + 1);
        halt_if_asked(k->ctl, cc__pp_task_id(seq, i));
    }
    set_stage(k->ctl, CC__PP_IDLE);
    /* release: every done above before the parent's acquire of fin. */
    cc__store_rel(&k->ctl->fin, seq);
    signal_done(k);
}

static int run_initializer(struct wk *k, const unsigned char *boot,
                           size_t len)
{
    uint32_t nlen;
    memcpy(&nlen, boot + 8, sizeof nlen);
    if (nlen == 0)
        return 0;
    char name[CC__PP_NAME_MAX];
    if (nlen >= sizeof name || len - CC__PP_BOOT_HEAD < nlen)
        return 126;
    memcpy(name, boot + CC__PP_BOOT_HEAD, nlen);
    name[nlen] = 0;
    cc_worker_fn fn = cc__worker_lookup(name);
    if (!fn)
        return 127;
    set_stage(k->ctl, CC__PP_INIT);
    size_t off = CC__PP_BOOT_HEAD + nlen;
    cc_bytes res = {0};
    int r = fn(len > off ? boot + off : NULL, len - off, &res);
    cc_bytes_free(&res);
    if (r == 0) /* a timed task handed meanwhile: its limit starts now */
        signal_done(k);
    return r;
}

int cc__pp_worker_main(const void *arg, size_t len, cc_bytes *result)
{
    (void)result;
    if (len < CC__PP_BOOT_HEAD)
        return 126;
    struct wk k = {.efd = cc_worker_passed_fd(3),
                   .arena.fd = cc_worker_passed_fd(4),
                   .own.grow = grow_result};
    for (int i = 0; i < CC__PP_LANES; i++)
        k.data[i].fd = k.view[i].fd = cc_worker_passed_fd(1 + i);
    void *p = mmap(NULL, CC__PP_CTL_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED,
                   cc_worker_passed_fd(0), 0);
    if (p == MAP_FAILED)
        return 126;
    k.ctl = p;
    uint64_t max_tasks;
    memcpy(&max_tasks, arg, sizeof max_tasks);
    int r = run_initializer(&k, arg, len);
    if (r != 0)
        return r;
    /* release: the owner's fields before any use of it. */
    cc__store_rel(&cc__bytes_owner, &k.own);
    uint32_t seen = 0; /* batches run */
    for (uint64_t n = 0; max_tasks == 0 || n < max_tasks;) {
        set_stage(k.ctl, CC__PP_IDLE);
        wait_for_task(k.ctl, seen);
        if (k.ctl->quit) /* posted alone, with nothing before it to run */
            break;
        seen++;
        /* never over max_tasks */
        n += k.ctl->lane[k.ctl->lane_of[seen % 2]].n;
        run_batch(&k, seen);
    }
    cc__store_rel(&cc__bytes_owner, NULL); /* release: as above */
    return 0;
}
