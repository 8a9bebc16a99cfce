/*
 * http_mini.h: a tiny HTTP/1.1 server and client written as event-loop tasks
 * (one task per connection), for test_loop_fd.c and bench/io_bound_200.c.
 * The server answers every GET after `delay_ns` with the request's path as
 * the body, then closes the connection. Not a real HTTP implementation.
 */
#ifndef CONCUR_HTTP_MINI_H
#define CONCUR_HTTP_MINI_H

#include <concur.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

struct http_server {
    int listener;            /* non-blocking, on 127.0.0.1 */
    struct sockaddr_in addr; /* where it listens */
    int64_t delay_ns;        /* wait before each answer */
    long connections;        /* to serve, then the accept task ends */
    long inflight;           /* requests being served now (loop thread) */
    long max_inflight;       /* the most at once */
};

/* Listen on an ephemeral port of 127.0.0.1. Returns 0 or -errno. */
static inline int http_listen(struct http_server *s)
{
    s->listener = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    s->addr = (struct sockaddr_in){.sin_family = AF_INET,
                                   .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof s->addr;
    if (s->listener < 0 ||
        bind(s->listener, (struct sockaddr *)&s->addr, len) ||
        getsockname(s->listener, (struct sockaddr *)&s->addr, &len) ||
        listen(s->listener, 1024))
        return -errno;
    return 0;
}

/* Read until the end of the request head; returns its length or < 0. */
static inline ssize_t http_read_head(int fd, char *buf, size_t cap)
{
    size_t got = 0;
    while (got + 1 < cap) {
        ssize_t n = cc_recv(fd, buf + got, cap - 1 - got, 0,
                            cc_deadline_in(60 * CC_SEC));
        if (n <= 0)
            return n < 0 ? n : -EPIPE;
        got += (size_t)n;
        buf[got] = 0;
        if (strstr(buf, "\r\n\r\n"))
            return (ssize_t)got;
    }
    return -EMSGSIZE;
}

static inline int http_send_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = cc_send(fd, p, n, 0, cc_deadline_in(60 * CC_SEC));
        if (w < 0)
            return (int)w;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

struct http_conn {
    struct http_server *s; /* the server */
    int fd;                /* the connection */
};

static inline int http_serve_conn(void *arg, void **result)
{
    struct http_conn c = *(struct http_conn *)arg;
    char req[1024], path[256] = "/", resp[512];
    ssize_t n = http_read_head(c.fd, req, sizeof req);
    if (n > 0) {
        sscanf(req, "GET %255s", path);
        if (++c.s->inflight > c.s->max_inflight)
            c.s->max_inflight = c.s->inflight;
        cc_sleep(c.s->delay_ns);
        c.s->inflight--;
        int len = snprintf(resp, sizeof resp,
                           "HTTP/1.1 200 OK\r\nContent-Length: %zu\r\n"
                           "Connection: close\r\n\r\n%s", strlen(path), path);
        n = http_send_all(c.fd, resp, (size_t)len);
    }
    close(c.fd);
    return n < 0 ? (int)n : 0;
}

/* The accept task: one task per connection, `connections` of them. */
static inline int http_serve(void *arg, void **result)
{
    struct http_server *s = arg;
    for (long i = 0; i < s->connections; i++) {
        int fd = cc_accept(s->listener, cc_deadline_in(60 * CC_SEC));
        if (fd < 0)
            return fd;
        struct http_conn c = {s, fd};
        /* c is copied by the new task before this one runs again. */
        if (cc_spawn(http_serve_conn, &c, NULL) < 0) {
            close(fd);
            return -ENOMEM;
        }
        cc_yield();
    }
    return 0;
}

/*
 * GET `path` from the server at addr; the body goes to body (NUL-ended).
 * Returns 0 or a negative errno (-EPROTO: not a 200 answer).
 */
static inline int http_get(const struct sockaddr_in *addr, const char *path,
                           char *body, size_t cap)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    char buf[1024];
    int r = cc_connect(fd, (const struct sockaddr *)addr, sizeof *addr,
                       cc_deadline_in(60 * CC_SEC));
    int len = snprintf(buf, sizeof buf, "GET %s HTTP/1.1\r\nHost: x\r\n\r\n",
                       path);
    if (r == 0)
        r = http_send_all(fd, buf, (size_t)len);
    size_t got = 0;
    while (r == 0 && got + 1 < sizeof buf) {
        ssize_t n = cc_recv(fd, buf + got, sizeof buf - 1 - got, 0,
                            cc_deadline_in(60 * CC_SEC));
        if (n < 0)
            r = (int)n;
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    close(fd);
    buf[got] = 0;
    char *b = strstr(buf, "\r\n\r\n");
    if (r == 0 && (strncmp(buf, "HTTP/1.1 200 ", 13) != 0 || !b))
        r = -EPROTO;
    if (r == 0)
        snprintf(body, cap, "%s", b + 4);
    return r;
}

#endif
