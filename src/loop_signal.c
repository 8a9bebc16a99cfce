/*
 * loop_signal.c: signals delivered to tasks (cc_signal_wait, loop.h).
 *
 * DESIGN. A waiter blocks the signals in its own thread (so that a signal
 * sent to it stays pending instead of running its action), opens a signalfd
 * for the set, waits for it to be readable with cc_wait_fd (which parks a
 * task on the loop's poller, or polls outside a task), reads one
 * signalfd_siginfo, and closes the fd. A signal sent to the process goes to
 * any thread that does not block it, which is why every thread must block
 * the signals (as with sigwaitinfo or signalfd). Pending signals are taken
 * at once: a signal sent before the wait is not lost. Several tasks waiting
 * for one signal: the first read takes it, the others wait on.
 */
#include "concur/loop.h"
#include "internal.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <unistd.h>

static bool set_empty(const sigset_t *set)
{
    return sigisemptyset(set) != 0;
}

/* Read one signal from a readable signalfd: its number, or 0 if another
 * waiter took it first. */
static int take_signal(int fd)
{
    struct signalfd_siginfo si;
    ssize_t n = read(fd, &si, sizeof si);
    if (n == (ssize_t)sizeof si)
        return (int)si.ssi_signo;
    if (n < 0 && errno != EAGAIN && errno != EINTR)
        cc__panic("read(signalfd)", -errno);
    return 0;
}

static int wait_on(int fd, cc_deadline deadline)
{
    for (;;) {
        int r = take_signal(fd);
        if (r > 0)
            return r;
        r = cc_wait_fd(fd, POLLIN, deadline);
        if (r < 0)
            return r;
    }
}

int cc_signal_wait(const sigset_t *set, cc_deadline deadline)
{
    if (!set || set_empty(set))
        return -EINVAL;
    int r = pthread_sigmask(SIG_BLOCK, set, NULL);
    if (r != 0)
        return -r;
    int fd = signalfd(-1, set, SFD_NONBLOCK | SFD_CLOEXEC);
    if (fd < 0)
        return errno == EINVAL ? -EINVAL : errno == ENOMEM ? -ENOMEM : -EMFILE;
    r = wait_on(fd, deadline);
    close(fd);
    return r;
}

int cc_signal_wait_one(int signo, cc_deadline deadline)
{
    sigset_t set;
    sigemptyset(&set);
    if (sigaddset(&set, signo) < 0)
        return -EINVAL;
    return cc_signal_wait(&set, deadline);
}
