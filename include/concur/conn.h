/*
 * concur/conn.h: connections that carry whole messages of bytes between
 * processes (Python's multiprocessing.Pipe and Connection.send_bytes /
 * recv_bytes).
 *
 * A connection is one end of a Unix stream socket pair (close-on-exec,
 * non-blocking). A message is an 8-byte length, then its bytes; each recv
 * returns exactly one message, whatever the socket's chunking. A child gets
 * its end by fork, or, under spawn, through cc_worker_options.pass_fds and
 * cc_conn_from_fd. Deadlines are resumable: a send or recv that times out
 * in the middle of a message keeps its place, and the next call of the same
 * kind goes on from there (a send must then be given the same message).
 *
 * Blocking: in a task on an event loop (loop.h), a call that must wait
 * parks the task on the socket's readiness and the loop runs its other
 * tasks; cancelling the task ends the wait with -ECANCELED, a deadline
 * scope with -ETIMEDOUT, both keeping the progress as a timeout does.
 * Elsewhere the calling thread waits in poll(). Thread safety: one sender
 * and one receiver at a time per end (they may be two threads, or two
 * tasks); cc_conn_close must be the last call.
 */
#ifndef CONCUR_CONN_H
#define CONCUR_CONN_H

#include "base.h"
#include "subprocess.h"

#include <stdbool.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct cc_conn cc_conn;

/*
 * cc_pipe: two connected ends (as multiprocessing.Pipe(duplex)). duplex:
 * both ends send and receive; otherwise *a only receives and *b only sends
 * (a send on *a, or a recv on *b, fails with -EPIPE). Returns 0, -EMFILE,
 * -ENFILE, -ENOMEM, -EINVAL (a or b NULL). Never blocks. Thread safe.
 */
int cc_pipe(cc_conn **a, cc_conn **b, bool duplex);

/*
 * cc_conn_from_fd: a connection over fd, an end made by cc_pipe and
 * inherited (cc_conn_fd in the parent, cc_worker_passed_fd in a worker).
 * The connection takes fd (closes it on cc_conn_close; it is made
 * close-on-exec and non-blocking, which its other holders share). Returns
 * 0, -EBADF, -ENOTSOCK, -ENOMEM, -EINVAL (out NULL). Never blocks.
 */
int cc_conn_from_fd(cc_conn **out, int fd);

/* cc_conn_fd: the socket (owned by the connection), to pass to a child. */
int cc_conn_fd(const cc_conn *c);

/*
 * cc_conn_send: send the len bytes at msg as one message (as
 * Connection.send_bytes). Returns 0 once all of it is in the socket;
 * -ETIMEDOUT (never before the deadline; part of it may be sent: call again
 * with the same message to go on; also from a task's deadline scope);
 * -ECANCELED (in a cancelled task; resumable as -ETIMEDOUT); -EINVAL (msg
 * NULL with len > 0, or a different message than the one in progress);
 * -EPIPE (the other end is closed, or this end only receives); -ENOBUFS,
 * -ENOMEM (a task's loop could not watch the socket), or another errno of
 * send. Blocks until the deadline (a task parks). Not thread safe against
 * another send on c.
 */
int cc_conn_send(cc_conn *c, const void *msg, size_t len, cc_deadline deadline);

/*
 * cc_conn_recv: receive one whole message, appended to *out (a zeroed or
 * earlier buffer; the caller frees it) (as Connection.recv_bytes).
 * Returns 0; -ETIMEDOUT (never before the deadline, or a task's deadline
 * scope; what arrived of the message is kept inside c for the next recv,
 * *out is untouched); -ECANCELED (in a cancelled task; kept the same way);
 * -EPIPE at the end: the other end closed (Python's EOFError; also for an
 * end that only sends); -EIO (the stream ended inside a message); -ENOMEM;
 * another errno of recv. Blocks until the deadline (a task parks). Not
 * thread safe against another recv on c.
 */
int cc_conn_recv(cc_conn *c, cc_bytes *out, cc_deadline deadline);

/*
 * cc_conn_poll: wait until a recv would not block, or the deadline (as
 * Connection.poll(timeout)). Returns 0 (data or the end is there: a recv may
 * still wait for the rest of a message), -ETIMEDOUT, or in a task also
 * -ECANCELED or -ENOMEM. Blocks until the deadline (a task parks).
 */
int cc_conn_poll(cc_conn *c, cc_deadline deadline);

/* cc_conn_close: close the socket and free c; NULL is a no-op. */
void cc_conn_close(cc_conn *c);

#ifdef __cplusplus
}
#endif
#endif
