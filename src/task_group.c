/*
 * task_group.c: task groups (include/concur/loop.h): asyncio's TaskGroup,
 * gevent's Group and Pool(size).
 *
 * DESIGN. A group lives on one loop and is touched by its thread only, so
 * it needs no lock: its tasks complete their futures on that thread, and
 * a done callback on each member does the bookkeeping. Members are a list
 * of nodes (each holding a reference to the task's future) so that the
 * group can cancel them all; the walk that cancels them keeps its place
 * with a cursor node, since cancelling one may end others (their done
 * callbacks run inside the cancel). A bounded group takes a semaphore
 * unit per member: spawn parks while none is left, the member's callback
 * gives it back. `empty` is an event set while no member lives: join waits
 * on it. The first member to fail with an error other than -ECANCELED
 * records the error and cancels its siblings (cc_task_cancel); the group
 * then refuses new members. Closing cancels (or not) and joins, protected
 * from the closer's own cancellation, so that no member outlives the group
 * (without cancel, members may spawn more until none is left: the group
 * refuses them only once it is empty, when the join ends);
 * then it lets the tasks still inside a wait on the group leave (spawns
 * that waited for a place, joins: the members' ends woke them) before it
 * frees the group.
 */
#include "concur/sync.h"
#include "loop_internal.h"

/* A member of a group. */
struct member {
    struct member *next;   /* list of live members */
    struct member *prev;   /* likewise */
    cc_task_group *group;  /* its group */
    cc_future *task;       /* its future (one reference); NULL: a cursor */
};

struct cc_task_group {
    struct member *head;   /* live members, newest first */
    size_t live;           /* how many */
    size_t visitors;       /* tasks in a spawn's wait for a place or in a
                              join: close frees the group once they left */
    size_t max_size;       /* 0: unbounded; else the semaphore's units */
    cc_semaphore slots;    /* free places, when bounded */
    cc_event empty;        /* set while live == 0 */
    int first_err;         /* the first member's failure, or 0 */
    bool closing;          /* failed, cancelled or closed: no new members */
    bool exiting;          /* a close without cancel waits: new members
                              only while one is alive to spawn them */
};

int cc_task_group_new(cc_task_group **out, size_t max_size)
{
    if (max_size > UINT32_MAX)
        return -EINVAL;
    cc_task_group *g = cc__calloc(1, sizeof *g);
    if (!g)
        return -ENOMEM;
    g->max_size = max_size;
    cc_semaphore_init(&g->slots, (uint32_t)max_size);
    cc_event_init(&g->empty);
    cc_event_set(&g->empty);
    *out = g;
    return 0;
}

/* Take node n out of the list (a member or a walk's cursor). */
static void unlink_node(cc_task_group *g, struct member *n)
{
    if (n->prev)
        n->prev->next = n->next;
    else
        g->head = n->next;
    if (n->next)
        n->next->prev = n->prev;
}

static void unlink_member(cc_task_group *g, struct member *m)
{
    unlink_node(g, m);
    if (--g->live == 0)
        cc_event_set(&g->empty);
}

/* Put the cursor c in the list right after m. */
static void link_cursor_after(struct member *m, struct member *c)
{
    c->prev = m;
    c->next = m->next;
    if (m->next)
        m->next->prev = c;
    m->next = c;
}

/*
 * Cancelling a member that has not started ends it at once, and its done
 * callbacks run inside the cancel: ours unlinks and frees its node, a user's
 * may cancel any other member, whose node goes too (or cancel the group: a
 * walk inside ours). So the walk keeps its place with a cursor, a node of its
 * own linked after the member being cancelled, which nobody else frees.
 * Cursors have no task; every walk skips them.
 */
static void cancel_members(cc_task_group *g)
{
    g->closing = true;
    struct member cursor = {.group = g}; /* task NULL: not a member */
    for (struct member *m = g->head; m;) {
        if (!m->task) { /* another walk's cursor */
            m = m->next;
            continue;
        }
        link_cursor_after(m, &cursor);
        cc_task_cancel(m->task);
        m = cursor.next;
        unlink_node(g, &cursor);
    }
}

static void member_done(cc_future *f, void *arg)
{
    struct member *m = arg;
    cc_task_group *g = m->group;
    unlink_member(g, m);
    if (g->max_size)
        cc_semaphore_release(&g->slots, 1);
    int err = cc_future_error(f);
    cc_future_release(m->task); /* the task still holds its own */
    cc__free(m, sizeof *m);
    if (err != 0 && err != -ECANCELED && g->first_err == 0) {
        g->first_err = err;
        cancel_members(g);
    }
}

static void link_member(cc_task_group *g, struct member *m)
{
    m->prev = NULL;
    m->next = g->head;
    if (g->head)
        g->head->prev = m;
    g->head = m;
    if (g->live++ == 0)
        cc_event_clear(&g->empty);
}

/* Start the member, its place taken already. */
static int spawn_member(cc_task_group *g, cc_task_fn fn, void *arg,
                        const cc_task_opts *opts, cc_future **task)
{
    struct member *m = cc__calloc(1, sizeof *m);
    if (!m)
        return -ENOMEM;
    int r = cc_spawn_with(fn, arg, opts, &m->task);
    if (r < 0) {
        cc__free(m, sizeof *m);
        return r;
    }
    m->group = g;
    link_member(g, m);
    if (cc_future_add_done_callback(m->task, member_done, m) < 0) {
        cc_task_cancel(m->task); /* not started: it never runs unwatched */
        unlink_member(g, m);
        cc_future_release(m->task);
        cc__free(m, sizeof *m);
        return -ENOMEM;
    }
    if (task)
        *task = cc_future_retain(m->task);
    return 0;
}

/* Whether g takes no new member now. A close without cancel is leaving
 * asyncio.TaskGroup's `async with`: its members may still spawn until none
 * is left, and from then on nobody may (the close frees g). */
static bool refuses(const cc_task_group *g)
{
    return g->closing || (g->exiting && g->live == 0);
}

int cc_task_group_spawn(cc_task_group *g, cc_task_fn fn, void *arg,
                        const cc_task_opts *opts, cc_future **task,
                        cc_deadline deadline)
{
    if (task)
        *task = NULL;
    if (!cc_loop_current())
        return -EPERM;
    if (refuses(g))
        return -ESHUTDOWN;
    if (g->max_size) {
        g->visitors++;
        int r = cc_semaphore_acquire(&g->slots, deadline);
        g->visitors--; /* no park below: the closer cannot free g first */
        if (r < 0)
            return r;
        if (refuses(g)) { /* failed or emptied while we waited */
            cc_semaphore_release(&g->slots, 1);
            return -ESHUTDOWN;
        }
    }
    int r = spawn_member(g, fn, arg, opts, task);
    if (r < 0 && g->max_size)
        cc_semaphore_release(&g->slots, 1);
    return r;
}

void cc_task_group_cancel(cc_task_group *g) { cancel_members(g); }

size_t cc_task_group_size(const cc_task_group *g) { return g->live; }

int cc_task_group_join(cc_task_group *g, cc_deadline deadline)
{
    g->visitors++;
    int r = cc_event_wait(&g->empty, deadline);
    g->visitors--;
    return g->first_err ? g->first_err : r;
}

int cc_task_group_close(cc_task_group *g, bool cancel)
{
    if (!g)
        return 0;
    if (cancel)
        cancel_members(g);
    g->exiting = true;
    int r = cc_event_wait(&g->empty, CC_FOREVER);
    if (r < 0) { /* we are cancelled, or a deadline scope ended */
        cancel_members(g);
        struct cc__protect p; /* no member may outlive the group */
        cc__protect_begin(&p);
        cc_event_wait(&g->empty, CC_FOREVER);
        cc__protect_end(&p);
    }
    /* Tasks woken in a wait on g still touch it: spawns that waited for a
     * place get one now that no member lives (each hands it on as it sees
     * the group closing), joins see it empty. */
    while (g->visitors > 0)
        cc_yield();
    int err = g->first_err ? g->first_err : r;
    cc_event_destroy(&g->empty);
    cc_semaphore_destroy(&g->slots);
    cc__free(g, sizeof *g);
    return err;
}
