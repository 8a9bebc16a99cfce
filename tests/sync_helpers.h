/*
 * sync_helpers.h: what test_sync.c and test_sync2.c share: a look at the
 * private wait queues of sync.h's objects.
 */
#ifndef CONCUR_TEST_SYNC_HELPERS_H
#define CONCUR_TEST_SYNC_HELPERS_H

#include "sync_impl.h"

/* Waiters parked on a private wait storage, counted under its guard. */
static inline int parked(struct cc__wait_storage *ws)
{
    struct cc__waitblock *wb = (struct cc__waitblock *)ws;
    int n = 0;
    cc__mutex_lock(&wb->guard);
    for (cc__waiter *w = wb->q.head; w; w = w->next)
        n++;
    cc__mutex_unlock(&wb->guard);
    return n;
}

#endif
