/*
 * map_window.h: the window of chunks in flight behind both lazy maps
 * (cc_executor_map in executor.c, cc_process_pool_map in procpool_map.c).
 * Not installed.
 *
 * DESIGN. A ring of `max` slots holds the chunks in flight, oldest at head,
 * in input order. The map's launch function fills a slot from the generator
 * and submits it; the window calls it only to refill: when the map starts,
 * and each time the consumer has taken the last result of the oldest chunk.
 * So at most max x chunksize inputs and results exist at any time, however
 * long the input is. The window owns each chunk's future and its input
 * count; the map keeps whatever else a slot needs, indexed by slot.
 * Not thread safe: one consumer.
 */
#ifndef CONCUR_MAP_WINDOW_H
#define CONCUR_MAP_WINDOW_H

#include "concur/future.h"

#include <stdbool.h>
#include <stddef.h>

/*
 * Fill slot `slot` with the next chunk and submit it, storing its future
 * (one reference, the window's) in *f. Returns the inputs in it (> 0), 0
 * when the input is exhausted (nothing submitted), or a negative errno (the
 * generator's or submit's; nothing submitted), which ends the input.
 */
typedef long (*cc__window_launch_fn)(void *map, size_t slot, cc_future **f);

typedef struct cc__window {
    cc__window_launch_fn launch; /* fills and submits a slot */
    void *map;                   /* launch's context */
    size_t max;                  /* ring slots */
    cc_future **f;               /* each slot's future while in flight */
    size_t *n;                   /* each slot's input count */
    size_t head;                 /* ring index of the oldest chunk */
    size_t inflight;             /* chunks in flight */
    size_t pos;                  /* results taken from the oldest */
    bool input_done;             /* the input is exhausted or failed */
    int input_err;               /* its error, yielded once, after the rest */
} cc__window;

/* Allocate the ring (max > 0) and launch the first chunks. Returns 0 or
 * -ENOMEM (nothing launched). */
int cc__window_init(cc__window *w, size_t max, cc__window_launch_fn launch,
                    void *map);

/*
 * Wait for the next result: 0 with *slot and *pos (its index in that
 * chunk) once the oldest chunk is done; -ENOENT when every input was
 * yielded; once, the input's error; or the wait's -ETIMEDOUT / -ECANCELED
 * (nothing consumed: call again). After 0 the caller reads the result,
 * then calls cc__window_advance.
 */
int cc__window_next(cc__window *w, cc_deadline deadline, size_t *slot,
                    size_t *pos);

/* The result cc__window_next pointed at was taken: move on, retiring and
 * refilling the oldest chunk when it was its last. */
void cc__window_advance(cc__window *w);

/* Cancel every chunk in flight first (so none starts while we wait), then
 * wait out the ones running (cc__future_abandon) and free the ring. */
void cc__window_free(cc__window *w);

#endif
