/*
 * http_hello: a keep-alive HTTP/1.1 "hello" server written as one task per
 * connection (cc_accept, cc_recv, cc_send), measured by bench/http_hello.sh
 * with wrk -t1 -c64 -d5s on loopback: requests per second and server CPU
 * time per request. Peer: bench/peers/http_hello_libuv.c (libuv callbacks,
 * the same answers).
 * Usage: bench_http_hello [port, default 0: any]; prints "port N" on stdout
 * once it listens, then serves until killed.
 */
#include <concur.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static const char reply[] = "HTTP/1.1 200 OK\r\n"
                            "Content-Type: text/plain\r\n"
                            "Content-Length: 13\r\n"
                            "\r\n"
                            "Hello, World!";

/* Answer every complete request (ended by an empty line) in buf[0..n):
 * returns the bytes consumed, or -1 if the peer went away. */
static ssize_t answer(int fd, char *buf, size_t n)
{
    size_t done = 0;
    char *end;
    while ((end = memmem(buf + done, n - done, "\r\n\r\n", 4))) {
        if (cc_send(fd, reply, sizeof reply - 1, 0, CC_FOREVER) < 0)
            return -1;
        done = (size_t)(end + 4 - buf);
    }
    return (ssize_t)done;
}

static int serve(void *arg, void **result)
{
    int fd = (int)(intptr_t)arg;
    char buf[4096];
    size_t have = 0;
    for (;;) {
        ssize_t n = cc_recv(fd, buf + have, sizeof buf - have, 0, CC_FOREVER);
        if (n <= 0)
            break;
        have += (size_t)n;
        ssize_t used = answer(fd, buf, have);
        if (used < 0 || (used == 0 && have == sizeof buf))
            break; /* gone, or a request too large for this server */
        memmove(buf, buf + used, have - (size_t)used);
        have -= (size_t)used;
    }
    close(fd);
    return 0;
}

static int listen_on(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) < 0 ||
        listen(fd, 1024) < 0 || getsockname(fd, (struct sockaddr *)&a, &len))
        return -1;
    printf("port %d\n", ntohs(a.sin_port));
    fflush(stdout);
    return fd;
}

static int server_main(void *arg, void **result)
{
    int lfd = listen_on((int)(intptr_t)arg);
    if (lfd < 0)
        return -1;
    for (;;) {
        int fd = cc_accept(lfd, CC_FOREVER);
        if (fd < 0)
            continue;
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        if (cc_spawn(serve, (void *)(intptr_t)fd, NULL) != 0)
            close(fd);
    }
}

int main(int argc, char **argv)
{
    int port = argc > 1 ? atoi(argv[1]) : 0;
    int r = cc_loop_run(server_main, (void *)(intptr_t)port, NULL);
    fprintf(stderr, "http_hello: server failed (%d)\n", r);
    return 1;
}
