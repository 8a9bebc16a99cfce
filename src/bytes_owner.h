/*
 * bytes_owner.h: cc_bytes buffers that the allocator did not make. The
 * process pool's worker (procpool_worker.c) points a task's result at a
 * mapping of shared memory, so that the function's cc_bytes_append writes
 * straight where the parent reads it. While registered here,
 * cc_bytes_append grows such a buffer through the owner (never realloc)
 * and cc_bytes_free only detaches it (never free). Process-local; not
 * installed. Also cc_bytes's reserve, for copies that prepare the room.
 */
#ifndef CONCUR_BYTES_OWNER_H
#define CONCUR_BYTES_OWNER_H

#include "concur/subprocess.h"
#include "atomics.h"

#include <stdint.h>

struct cc__bytes_owner {
    _Atomic uintptr_t lo;   /* the memory it owns starts here (relaxed: set
                               by the thread that runs the task before the
                               task; other threads only compare with it) */
    _Atomic uintptr_t size; /* and is this many bytes long (relaxed) */
    /* Give b, whose data is in the owned memory, at least cap bytes of
     * capacity (data may move): 0, or -ENOMEM (b unchanged). */
    int (*grow)(struct cc__bytes_owner *o, cc_bytes *b, size_t cap);
};

/* The registered owner, or NULL (release on set, acquire on use: its
 * fields before it). communicate.c. */
extern _Atomic(struct cc__bytes_owner *) cc__bytes_owner;

/* Make room in b for `room` more bytes and the NUL, as cc_bytes_append
 * does before it copies: 0 or -ENOMEM (b unchanged). communicate.c. */
int cc__bytes_reserve(cc_bytes *b, size_t room);

#endif
