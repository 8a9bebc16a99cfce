/*
 * future_wait.c: waiting on many futures (Python's concurrent.futures.wait) and
 * the as-completed iterator.
 *
 * DESIGN. Both subscribe one removable node per future (future_internal.h). A
 * node's notify runs under its future's mutex when the future becomes done; it
 * only takes the group's own mutex, counts or queues the future, and wakes the
 * group's waiter. Lock order: a future's mutex, then the group's; the group
 * never takes a future's mutex while holding its own. Unsubscribing takes the
 * future's mutex, so once it returns no notify can still touch the node.
 * ALL_COMPLETED needs no nodes: it waits on each future in turn, newest first
 * (in a FIFO pool the newest finishes last, so the others are then done).
 */
#include "future_internal.h"

/* ---- wait on many ------------------------------------------------------------ */

/* What one cc_futures_wait call has seen; counts under m. */
struct wait_group {
    cc__mutex m;   /* guards the fields below */
    cc__waitq q;   /* the waiting thread */
    size_t done;   /* futures seen done */
    bool failed;   /* one of them finished with an error */
};

/* One subscription of a cc_futures_wait call. */
struct wait_node {
    cc__future_sub sub;   /* linked in the future */
    struct wait_group *g; /* the call it belongs to */
};

/* f is done: did it fail (cancelled does not count, as Python)? */
static bool failed(const cc_future *f)
{
    return cc_future_error(f) < 0 && !cc_future_cancelled(f);
}

static void count_done_locked(struct wait_group *g, const cc_future *f)
{
    g->done++;
    g->failed |= failed(f);
}

static bool satisfied(const struct wait_group *g, size_t n, cc_return_when when)
{
    if (g->done == n) /* every condition holds then, n == 0 included */
        return true;
    switch (when) {
    case CC_FIRST_COMPLETED:
        return g->done > 0;
    case CC_FIRST_EXCEPTION:
        return g->failed;
    default:
        return false;
    }
}

static size_t count_done(cc_future *const *fs, size_t n)
{
    size_t done = 0;
    for (size_t i = 0; i < n; i++)
        done += cc_future_done(fs[i]);
    return done;
}

static void scan(cc_future *const *fs, size_t n, struct wait_group *g)
{
    for (size_t i = 0; i < n; i++)
        if (cc_future_done(fs[i]))
            count_done_locked(g, fs[i]);
}

static void wait_node_notify(cc__future_sub *s, cc_future *f)
{
    struct wait_group *g = CC__CONTAINER_OF(s, struct wait_node, sub)->g;
    cc__mutex_lock(&g->m);
    count_done_locked(g, f);
    cc__wake_all(&g->q, 0);
    cc__mutex_unlock(&g->m);
}

static int wait_all(cc_future *const *fs, size_t n, cc_deadline deadline)
{
    for (size_t i = n; i-- > 0;) {
        int r = cc_future_wait(fs[i], deadline);
        if (r < 0)
            return r;
    }
    return 0;
}

static void subscribe_all(cc_future *const *fs, size_t n, struct wait_node *nodes,
                          struct wait_group *g)
{
    for (size_t i = 0; i < n; i++) {
        nodes[i].g = g;
        nodes[i].sub.notify = wait_node_notify;
        if (!cc__future_subscribe(fs[i], &nodes[i].sub)) {
            cc__mutex_lock(&g->m);
            count_done_locked(g, fs[i]);
            cc__mutex_unlock(&g->m);
        }
    }
}

/* Returns 0, or the park's error (-ETIMEDOUT, -ECANCELED). */
static int park_until(struct wait_group *g, size_t n, cc_return_when when,
                      cc_deadline deadline)
{
    int r = 0;
    cc__mutex_lock(&g->m);
    while (r == 0 && !satisfied(g, n, when)) {
        cc__waiter w;
        cc__waiter_init(&w);
        r = cc__wait_on(&g->q, &g->m, &w, deadline);
    }
    cc__mutex_unlock(&g->m);
    return r;
}

int cc_futures_wait(cc_future *const *fs, size_t n, cc_return_when when,
                    cc_deadline deadline)
{
    if (when != CC_FIRST_COMPLETED && when != CC_FIRST_EXCEPTION &&
        when != CC_ALL_COMPLETED)
        return -EINVAL;
    struct wait_group g = {0};
    scan(fs, n, &g);
    if (satisfied(&g, n, when) || deadline == CC_NOWAIT)
        return (int)count_done(fs, n);
    if (when == CC_ALL_COMPLETED) {
        if (wait_all(fs, n, deadline) == -ECANCELED)
            return -ECANCELED;
        return (int)count_done(fs, n);
    }
    struct wait_node *nodes = cc__calloc(n, sizeof *nodes);
    if (!nodes)
        return -ENOMEM;
    g = (struct wait_group){0};
    subscribe_all(fs, n, nodes, &g);
    int r = park_until(&g, n, when, deadline);
    for (size_t i = 0; i < n; i++)
        cc__future_unsubscribe(fs[i], &nodes[i].sub);
    cc__free(nodes, n * sizeof *nodes);
    return r == -ECANCELED ? r : (int)count_done(fs, n);
}

/* ---- as completed ------------------------------------------------------------ */

/* One subscription of an as-completed iterator. */
struct ac_node {
    cc__future_sub sub;  /* linked in the future */
    cc_as_completed *it; /* the iterator */
    size_t index;        /* the future's index in it->fs */
};

struct cc_as_completed {
    cc__mutex m;           /* guards ready, nready, next */
    cc__waitq q;           /* the consumer in cc_as_completed_next */
    size_t n;              /* futures */
    cc_future **fs;        /* the futures (one reference each) */
    struct ac_node *nodes; /* their subscriptions */
    size_t *ready;         /* indexes of done futures, in completion order */
    size_t nready;         /* entries written in ready */
    size_t next;           /* entries yielded from ready */
};

static void ac_push_locked(cc_as_completed *it, size_t index)
{
    it->ready[it->nready++] = index;
    cc__wake_one(&it->q, 0);
}

static void ac_notify(cc__future_sub *s, cc_future *f)
{
    struct ac_node *node = CC__CONTAINER_OF(s, struct ac_node, sub);
    cc__mutex_lock(&node->it->m);
    ac_push_locked(node->it, node->index);
    cc__mutex_unlock(&node->it->m);
}

static size_t ac_size(size_t n)
{
    return sizeof(cc_as_completed) +
           n * (sizeof(cc_future *) + sizeof(struct ac_node) + sizeof(size_t));
}

int cc_as_completed_new(cc_as_completed **out, cc_future *const *fs, size_t n)
{
    if (n > (SIZE_MAX - sizeof(cc_as_completed)) / 64)
        return -ENOMEM;
    cc_as_completed *it = cc__calloc(1, ac_size(n));
    if (!it)
        return -ENOMEM;
    it->n = n;
    it->nodes = (struct ac_node *)(it + 1);
    it->fs = (cc_future **)(it->nodes + n);
    it->ready = (size_t *)(it->fs + n);
    for (size_t i = 0; i < n; i++) {
        it->fs[i] = cc_future_retain(fs[i]);
        it->nodes[i] = (struct ac_node){.sub.notify = ac_notify, .it = it, .index = i};
        if (!cc__future_subscribe(fs[i], &it->nodes[i].sub)) {
            cc__mutex_lock(&it->m);
            ac_push_locked(it, i);
            cc__mutex_unlock(&it->m);
        }
    }
    *out = it;
    return 0;
}

int cc_as_completed_next(cc_as_completed *it, cc_deadline deadline,
                         cc_future **out)
{
    int r = 0;
    cc__mutex_lock(&it->m);
    while (r == 0 && it->next == it->nready) {
        if (it->next == it->n) {
            r = -ENOENT;
            break;
        }
        cc__waiter w;
        cc__waiter_init(&w);
        r = cc__wait_on(&it->q, &it->m, &w, deadline);
    }
    if (it->next < it->nready) {
        *out = it->fs[it->ready[it->next++]];
        r = 0;
    }
    cc__mutex_unlock(&it->m);
    return r;
}

void cc_as_completed_free(cc_as_completed *it)
{
    if (!it)
        return;
    for (size_t i = 0; i < it->n; i++) {
        cc__future_unsubscribe(it->fs[i], &it->nodes[i].sub);
        cc_future_release(it->fs[i]);
    }
    cc__free(it, ac_size(it->n));
}
