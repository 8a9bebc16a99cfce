/*
 * ipc_queue.c: the cross-process bounded queue of byte messages
 * (include/concur/ipc.h).
 *
 * DESIGN. A robust process-shared mutex guards a ring of bytes in shared
 * memory. A message is a record: its length (8 bytes), then its bytes,
 * padded to 8; the ring's size is a multiple of 8, so a length never wraps
 * (the bytes may, and are copied in two pieces). head and tail count the
 * bytes ever removed and added; each operation copies first and commits
 * last, with one release store of tail (put) or head (get): a process that
 * dies before its commit has changed nothing another process can see, and
 * the next locker, told EOWNERDEAD, only recounts the messages between head
 * and tail (the count is the one field two stores update). Waiting: a
 * sleeper reads a sequence word under the lock, unlocks, and futex-waits
 * (shared) on it; every commit bumps the sequence under the lock, so no
 * wakeup is lost, and wakes all sleepers of the other side (a woken sleeper
 * may die or may find the message too big for its buffer: waking one could
 * strand the rest), before the commit and under the lock, so that a
 * process dying between its commit and its wake cannot strand them (see
 * wake_before_commit). Copies happen under the lock: a 10 MiB message
 * holds it for a few milliseconds.
 */
#include "atomics.h"
#include "internal.h"
#include "ipc_impl.h"

#include <errno.h>
#include <limits.h>
#include <stdalign.h>
#include <string.h>

#define RECORD_HEADER 8 /* the length before each message's bytes */

struct cc_ipc_queue {
    pthread_mutex_t lock;    /* robust; guards every field but the seqs */
    uint64_t capacity;       /* ring bytes, a multiple of 8 */
    cc__atomic_u64 head;     /* bytes ever removed: get's commit point */
    cc__atomic_u64 tail;     /* bytes ever added: put's commit point */
    uint64_t count;          /* messages between head and tail */
    uint32_t getters;        /* getters asleep (a dead one: stale, harmless) */
    uint32_t putters;        /* putters sleeping (likewise) */
    cc__atomic_u32 put_seq;  /* futex: bumped by each put; getters sleep on */
    cc__atomic_u32 get_seq;  /* futex: bumped by each get; putters sleep on */
    alignas(64) unsigned char ring[]; /* capacity bytes of records */
};

size_t cc_ipc_queue_header_size(void) { return sizeof(cc_ipc_queue); }

static uint64_t record_size(uint64_t len)
{
    return RECORD_HEADER + ((len + 7) & ~(uint64_t)7);
}

static void ring_write(cc_ipc_queue *q, uint64_t pos, const void *src, size_t n)
{
    size_t off = pos % q->capacity, first = q->capacity - off;
    if (n == 0)
        return; /* src may be NULL */
    if (first > n)
        first = n;
    memcpy(q->ring + off, src, first);
    memcpy(q->ring, (const char *)src + first, n - first);
}

static void ring_read(const cc_ipc_queue *q, uint64_t pos, void *dst, size_t n)
{
    size_t off = pos % q->capacity, first = q->capacity - off;
    if (n == 0)
        return; /* dst may be NULL */
    if (first > n)
        first = n;
    memcpy(dst, q->ring + off, first);
    memcpy((char *)dst + first, q->ring, n - first);
}

/* The length of the record at pos (8-aligned: it never wraps). */
static uint64_t length_at(const cc_ipc_queue *q, uint64_t pos)
{
    uint64_t len;
    memcpy(&len, q->ring + pos % q->capacity, sizeof len);
    return len;
}

/* After a death under the lock: count the committed records again. */
static void repair(cc_ipc_queue *q)
{
    uint64_t n = 0, tail = cc__load_relaxed(&q->tail);
    for (uint64_t pos = cc__load_relaxed(&q->head); pos < tail;
         pos += record_size(length_at(q, pos)))
        n++;
    q->count = n;
}

static int queue_lock(cc_ipc_queue *q, cc_deadline deadline)
{
    int r = cc__robust_mutex_lock(&q->lock, deadline);
    if (r == -EOWNERDEAD) {
        repair(q);
        r = -pthread_mutex_consistent(&q->lock);
    }
    return r;
}

static void queue_unlock(cc_ipc_queue *q)
{
    int r = pthread_mutex_unlock(&q->lock);
    if (r != 0)
        cc__panic("cc_ipc_queue: unlock", -r);
}

/*
 * Sleep, with the lock held on entry and on return, until *seq moves or the
 * deadline passes. Returns 0 or -ETIMEDOUT; the caller rechecks either way.
 */
static int wait_locked(cc_ipc_queue *q, uint32_t *sleepers, cc__atomic_u32 *seq,
                       cc_deadline deadline)
{
    (*sleepers)++;
    uint32_t seen = cc__load_relaxed(seq); /* moves only under the lock */
    queue_unlock(q);
    int r = cc__futex_wait(seq, seen, deadline, true);
    int lr = queue_lock(q, CC_FOREVER);
    if (lr < 0)
        cc__panic("cc_ipc_queue: relock", lr);
    if (*sleepers > 0)
        (*sleepers)--;
    return r == -ETIMEDOUT ? r : 0;
}

/*
 * Under the lock, before the commit: bump seq and wake its sleepers if
 * any. Before, not after: a process that dies after its commit dies
 * holding the lock, and the sleepers, woken already, wait for the lock,
 * which the kernel hands on with EOWNERDEAD (queue_lock); they then find
 * the commit. Woken after the commit, they would sleep on, the message
 * there, until their deadline. One that dies before it commits only
 * wakes them for nothing. Without sleepers (the fast path) no syscall.
 */
static void wake_before_commit(cc__atomic_u32 *seq, uint32_t sleepers)
{
    cc__fetch_add_relaxed(seq, 1); /* the lock orders it with the waiters */
    if (sleepers > 0)
        cc__futex_wake(seq, INT32_MAX, true);
}

int cc_ipc_queue_init(cc_ipc_queue *q, size_t mem_size)
{
    if (!q || (uintptr_t)q % alignof(cc_ipc_queue) != 0 ||
        mem_size < sizeof *q + 64)
        return -EINVAL;
    memset(q, 0, sizeof *q);
    q->capacity = (mem_size - sizeof *q) & ~(uint64_t)7;
    return cc__robust_mutex_init(&q->lock);
}

static bool has_room(const cc_ipc_queue *q, uint64_t need)
{
    uint64_t used = cc__load_relaxed(&q->tail) - cc__load_relaxed(&q->head);
    return q->capacity - used >= need;
}

static bool has_message(const cc_ipc_queue *q, uint64_t unused)
{
    (void)unused;
    return cc__load_relaxed(&q->tail) != cc__load_relaxed(&q->head);
}

/* A condition a put or get waits for (has_room, has_message). */
typedef bool (*queue_ready)(const cc_ipc_queue *q, uint64_t arg);

/*
 * Lock, then sleep on seq until ready(q, arg) or the deadline. Returns 0
 * with the lock held, or -ETIMEDOUT (or a lock error) without it.
 */
static int lock_when(cc_ipc_queue *q, queue_ready ready,
                     uint64_t arg, uint32_t *sleepers, cc__atomic_u32 *seq,
                     cc_deadline deadline)
{
    int r = queue_lock(q, deadline);
    if (r < 0)
        return r;
    while (!ready(q, arg)) {
        if (r == -ETIMEDOUT) {
            queue_unlock(q);
            return r;
        }
        r = wait_locked(q, sleepers, seq, deadline);
    }
    return 0;
}

int cc_ipc_queue_put(cc_ipc_queue *q, const void *msg, size_t len,
                     cc_deadline deadline)
{
    if (len > q->capacity || record_size(len) > q->capacity)
        return -EMSGSIZE;
    uint64_t need = record_size(len), len64 = len;
    int r = lock_when(q, has_room, need, &q->putters, &q->get_seq, deadline);
    if (r < 0)
        return r;
    uint64_t tail = cc__load_relaxed(&q->tail);
    ring_write(q, tail, &len64, sizeof len64);
    ring_write(q, tail + RECORD_HEADER, msg, len);
    wake_before_commit(&q->put_seq, q->getters);
    cc__store_rel(&q->tail, tail + need); /* commit: after the copy */
    cc__ipc_after_commit(CC__IPC_QUEUE_PUT);
    q->count++;
    queue_unlock(q);
    return 0;
}

int cc_ipc_queue_get(cc_ipc_queue *q, void *buf, size_t cap, size_t *len,
                     cc_deadline deadline)
{
    if (!len || (!buf && cap > 0))
        return -EINVAL;
    int r = lock_when(q, has_message, 0, &q->getters, &q->put_seq, deadline);
    if (r < 0)
        return r;
    uint64_t head = cc__load_relaxed(&q->head), mlen = length_at(q, head);
    *len = mlen;
    if (mlen > cap) {
        queue_unlock(q);
        return -EMSGSIZE;
    }
    ring_read(q, head + RECORD_HEADER, buf, mlen);
    wake_before_commit(&q->get_seq, q->putters);
    /* commit, after the copy (release: the copy is not moved past it) */
    cc__store_rel(&q->head, head + record_size(mlen));
    cc__ipc_after_commit(CC__IPC_QUEUE_GET);
    q->count--;
    queue_unlock(q);
    return 0;
}

size_t cc_ipc_queue_count(cc_ipc_queue *q)
{
    if (queue_lock(q, CC_FOREVER) < 0)
        return 0;
    size_t n = q->count;
    queue_unlock(q);
    return n;
}
