/*
 * http_hello_libuv: the peer of bench/http_hello.c: a keep-alive HTTP/1.1
 * "hello" server on libuv callbacks (uv_listen, uv_read_start, uv_try_write
 * then uv_write), the same answers. Usage: peer_http_hello_libuv [port];
 * prints "port N" once it listens, serves until killed.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <uv.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char reply[] = "HTTP/1.1 200 OK\r\n"
                            "Content-Type: text/plain\r\n"
                            "Content-Length: 13\r\n"
                            "\r\n"
                            "Hello, World!";

struct conn {
    uv_tcp_t tcp;    /* first member: the handle is the connection */
    char buf[4096];  /* bytes received, not answered yet */
    size_t have;     /* how many */
};

static void on_close(uv_handle_t *h) { free(h); }

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *b)
{
    struct conn *c = (struct conn *)h;
    *b = uv_buf_init(c->buf + c->have, (unsigned)(sizeof c->buf - c->have));
}

static void on_written(uv_write_t *w, int status) { free(w); }

static void send_reply(struct conn *c)
{
    uv_buf_t b = uv_buf_init((char *)reply, sizeof reply - 1);
    int n = uv_try_write((uv_stream_t *)&c->tcp, &b, 1);
    if (n == (int)b.len)
        return;
    if (n > 0) {
        b.base += n;
        b.len -= (size_t)n;
    }
    uv_write_t *w = malloc(sizeof *w);
    uv_write(w, (uv_stream_t *)&c->tcp, &b, 1, on_written);
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
    struct conn *c = (struct conn *)s;
    if (n < 0 || (n == 0 && c->have == sizeof c->buf)) {
        uv_close((uv_handle_t *)s, on_close);
        return;
    }
    c->have += (size_t)n;
    size_t done = 0;
    char *end;
    while ((end = memmem(c->buf + done, c->have - done, "\r\n\r\n", 4))) {
        send_reply(c);
        done = (size_t)(end + 4 - c->buf);
    }
    memmove(c->buf, c->buf + done, c->have - done);
    c->have -= done;
}

static void on_connection(uv_stream_t *server, int status)
{
    if (status < 0)
        return;
    struct conn *c = calloc(1, sizeof *c);
    uv_tcp_init(server->loop, &c->tcp);
    if (uv_accept(server, (uv_stream_t *)&c->tcp) != 0) {
        uv_close((uv_handle_t *)&c->tcp, on_close);
        return;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
}

int main(int argc, char **argv)
{
    uv_loop_t *loop = uv_default_loop();
    uv_tcp_t server;
    struct sockaddr_in a;
    uv_ip4_addr("127.0.0.1", argc > 1 ? atoi(argv[1]) : 0, &a);
    uv_tcp_init(loop, &server);
    if (uv_tcp_bind(&server, (struct sockaddr *)&a, 0) ||
        uv_listen((uv_stream_t *)&server, 1024, on_connection)) {
        fprintf(stderr, "http_hello_libuv: cannot listen\n");
        return 1;
    }
    int len = sizeof a;
    uv_tcp_getsockname(&server, (struct sockaddr *)&a, &len);
    printf("port %d\n", ntohs(a.sin_port));
    fflush(stdout);
    return uv_run(loop, UV_RUN_DEFAULT);
}
