/*
 * map_window.c: the window of chunks in flight of the lazy maps (the design
 * is in map_window.h).
 */
#include "map_window.h"

#include "future_internal.h"
#include "internal.h"

/* Launch chunks until the ring is full or the input ends. */
static void refill(cc__window *w)
{
    while (w->inflight < w->max && !w->input_done) {
        size_t slot = (w->head + w->inflight) % w->max;
        long n = w->launch(w->map, slot, &w->f[slot]);
        if (n <= 0) {
            w->input_done = true;
            w->input_err = (int)n;
            return;
        }
        w->n[slot] = (size_t)n;
        w->inflight++;
    }
}

int cc__window_init(cc__window *w, size_t max, cc__window_launch_fn launch,
                    void *map)
{
    *w = (cc__window){.launch = launch, .map = map, .max = max};
    w->f = cc__calloc(max, sizeof *w->f);
    w->n = cc__calloc(max, sizeof *w->n);
    if (!w->f || !w->n) {
        cc__window_free(w);
        return -ENOMEM;
    }
    refill(w);
    return 0;
}

int cc__window_next(cc__window *w, cc_deadline deadline, size_t *slot,
                    size_t *pos)
{
    if (w->inflight == 0) {
        int r = w->input_err ? w->input_err : -ENOENT;
        w->input_err = 0;
        return r;
    }
    int r = cc_future_wait(w->f[w->head], deadline);
    if (r < 0)
        return r; /* -ETIMEDOUT, -ECANCELED: nothing consumed */
    *slot = w->head;
    *pos = w->pos;
    return 0;
}

void cc__window_advance(cc__window *w)
{
    if (++w->pos < w->n[w->head])
        return;
    cc_future_release(w->f[w->head]);
    w->f[w->head] = NULL;
    w->head = (w->head + 1) % w->max;
    w->inflight--;
    w->pos = 0;
    refill(w);
}

void cc__window_free(cc__window *w)
{
    for (size_t i = 0; i < w->inflight; i++)
        cc_future_cancel(w->f[(w->head + i) % w->max]);
    for (size_t i = 0; i < w->inflight; i++)
        cc__future_abandon(w->f[(w->head + i) % w->max]);
    cc__free(w->f, w->max * sizeof *w->f);
    cc__free(w->n, w->max * sizeof *w->n);
    w->f = NULL;
    w->n = NULL;
    w->inflight = 0;
}
