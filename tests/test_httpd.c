/* demo/httpd, the HTTP/1.1 server demo, driven over loopback by a small client
 * of its own: each test starts the server on an ephemeral 127.0.0.1 port,
 * sends requests, checks the answers and the buffer pool's counters (every
 * buffer taken goes back: buffers_out, and gets == puts at the end), and stops
 * it with SIGTERM.  Bad requests (garbage, a header larger than the buffer, a
 * client gone mid-request, a stalled one) must get a 4xx or a closed
 * connection, never a crash or a lost buffer.  Every read has a deadline, so
 * a hung server fails the test instead of hanging it.
 *
 * Boehm does not run under the sanitizers nor (usefully) under valgrind: the
 * suite skips there, as the other Boehm cases do. */
#include <check.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>

#include "tests/testutil.h" /* its main(); the test links no gcpool library */

enum { DEADLINE_MS = 10000, BUF = 64 << 10 };

/* ---- the server --------------------------------------------------------------------- */

struct server {
    pid_t pid;
    int out;  /* its stdout */
    int port;
};

static int read_line(int fd, char *line, size_t len, int timeout_ms)
{
    size_t n = 0;
    while (n + 1 < len) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, timeout_ms) <= 0)
            return -1;
        char c;
        ssize_t r = read(fd, &c, 1);
        if (r <= 0)
            return -1;
        if (c == '\n')
            break;
        line[n++] = c;
    }
    line[n] = 0;
    return (int)n;
}

/* pool false: --no-pool.  The server is bounded even if this test dies
 * before stopping it: it gets SIGTERM when the test process ends, and stops
 * by itself after a minute anyway. */
static struct server start(bool pool)
{
    const char *dir = getenv("GCPOOL_BUILDDIR");
    char path[4096];
    snprintf(path, sizeof path, "%s/demo/httpd", dir && *dir ? dir : ".");
    int pipefd[2];
    ck_assert_int_eq(pipe(pipefd), 0);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        dup2(pipefd[1], 1);
        close(pipefd[0]);
        close(pipefd[1]);
        execl(path, "httpd", "--port", "0", "--threads", "2", "--idle-timeout", "1", "--duration", "60",
              pool ? (char *)NULL : "--no-pool", (char *)NULL);
        fprintf(stderr, "exec %s: %s\n", path, strerror(errno));
        _exit(127);
    }
    close(pipefd[1]);
    struct server s = {.pid = pid, .out = pipefd[0]};
    char line[256];
    ck_assert_msg(read_line(s.out, line, sizeof line, DEADLINE_MS) > 0, "no line from %s", path);
    ck_assert_msg(sscanf(line, "httpd: listening on 127.0.0.1:%d", &s.port) == 1, "said: %s", line);
    return s;
}

/* A number from a flat JSON object: "key": N. */
static long long json_num(const char *json, const char *key)
{
    char pat[64];
    snprintf(pat, sizeof pat, "\"%s\": ", key);
    const char *p = strstr(json, pat);
    ck_assert_msg(p, "no %s in %s", key, json);
    return strtoll(p + strlen(pat), NULL, 10);
}

/* SIGTERM, then its last words: the final statistics.  It must exit 0 (the
 * server exits 3 if a buffer is not back). */
static void stop(struct server *s, char *final, size_t len)
{
    ck_assert_int_eq(kill(s->pid, SIGTERM), 0);
    char line[2048];
    final[0] = 0;
    while (read_line(s->out, line, sizeof line, DEADLINE_MS) >= 0)
        if (strncmp(line, "httpd: final ", 13) == 0)
            snprintf(final, len, "%s", line + 13);
    int status = 0;
    for (int i = 0; i < DEADLINE_MS / 10 && waitpid(s->pid, &status, WNOHANG) == 0; i++)
        usleep(10000);
    if (waitpid(s->pid, &status, WNOHANG) == 0) {
        kill(s->pid, SIGKILL);
        waitpid(s->pid, &status, 0);
        ck_abort_msg("the server did not stop on SIGTERM");
    }
    close(s->out);
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "the server ended with status %#x",
                  status);
    ck_assert_msg(final[0], "no final statistics");
    ck_assert_int_eq(json_num(final, "buffers_out"), 0);
    ck_assert_int_eq(json_num(final, "open"), 0);
    if (strstr(final, "\"pool\": true"))
        ck_assert_int_eq(json_num(final, "buf_gets"), json_num(final, "buf_puts"));
}

/* ---- the client --------------------------------------------------------------------- */

static int dial(const struct server *s)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ck_assert_int_ge(fd, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)s->port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    ck_assert_int_eq(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
    return fd;
}

/* Sends it all; false when the server closed on us (it may, after a 4xx). */
static bool send_all(int fd, const void *data, size_t n)
{
    const char *p = data;
    while (n) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return false;
        p += w;
        n -= (size_t)w;
    }
    return true;
}

struct response {
    int status;
    bool close;      /* Connection: close */
    size_t body_len;
    char body[BUF];
};

/* Bytes read but not yet parsed, per connection (one at a time here). */
static char pending[2 * BUF];
static size_t pending_len;

/* Reads until buf has n bytes or the peer closes; -1 on timeout. */
static int fill_to(int fd, size_t n)
{
    while (pending_len < n) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, DEADLINE_MS) <= 0)
            return -1;
        ssize_t r = recv(fd, pending + pending_len, sizeof pending - pending_len, 0);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return 0; /* closed (or reset) */
        pending_len += (size_t)r;
    }
    return 1;
}

static void consume(size_t n)
{
    memmove(pending, pending + n, pending_len - n);
    pending_len -= n;
}

/* One response: status line, headers, Content-Length body.  false when the
 * connection closed before a whole response came. */
static bool read_response(int fd, struct response *r)
{
    char *end;
    for (;;) {
        end = memmem(pending, pending_len, "\r\n\r\n", 4);
        if (end)
            break;
        int got = fill_to(fd, pending_len + 1);
        ck_assert_msg(got >= 0, "no response within %d ms", DEADLINE_MS);
        if (got == 0)
            return false;
    }
    size_t head = (size_t)(end - pending) + 4;
    char h[4096];
    ck_assert_uint_lt(head, sizeof h);
    memcpy(h, pending, head);
    h[head] = 0;
    ck_assert_msg(sscanf(h, "HTTP/1.1 %d ", &r->status) == 1, "status line: %s", h);
    const char *cl = strstr(h, "\r\nContent-Length: ");
    ck_assert_msg(cl, "no Content-Length: %s", h);
    r->body_len = strtoul(cl + 18, NULL, 10);
    ck_assert_uint_le(r->body_len, sizeof r->body - 1);
    r->close = strstr(h, "\r\nConnection: close\r\n") != NULL;
    consume(head);
    ck_assert_int_eq(fill_to(fd, r->body_len), 1);
    memcpy(r->body, pending, r->body_len);
    r->body[r->body_len] = 0;
    consume(r->body_len);
    return true;
}

/* True when the server closed the connection (EOF or reset) within the deadline. */
static bool closed_by_server(int fd)
{
    return fill_to(fd, pending_len + 1) == 0;
}

static struct response resp;

static void get(const struct server *s, const char *target, struct response *r)
{
    int fd = dial(s);
    char req[256];
    snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n", target);
    pending_len = 0;
    ck_assert(send_all(fd, req, strlen(req)));
    ck_assert(read_response(fd, r));
    close(fd);
}

/* /stats once the server has settled: connections closed by clients are
 * reaped asynchronously, so ask again (bounded) until only this request is
 * open.  The number of /stats requests it took. */
static int settled_stats(const struct server *s, struct response *r)
{
    for (int i = 1; i <= 500; i++) { /* 5 s at least: a loaded machine */
        get(s, "/stats", r);
        if (json_num(r->body, "open") == 1 && json_num(r->body, "buffers_out") == 1)
            return i;
        usleep(10000);
    }
    ck_abort_msg("connections or buffers still out: %s", r->body);
    return 0;
}

static bool skip_boehm(void)
{
#ifdef GCPOOL_SANITIZERS
    return true;
#else
    const char *v = getenv("GCPOOL_TEST_NO_BOEHM");
    return v && *v && strcmp(v, "0") != 0;
#endif
}

/* ---- the tests ---------------------------------------------------------------------- */

/* Keep-alive, pipelining, a body in pieces, HEAD, 404, 405, the fill page;
 * then the counters: every request took one buffer and gave it back. */
static void serves(bool pool)
{
    struct server s = start(pool);
    int fd = dial(&s);
    pending_len = 0;
    const char *hello = "GET / HTTP/1.1\r\nHost: t\r\n\r\n";
    for (int i = 0; i < 3; i++) { /* one connection, three requests */
        ck_assert(send_all(fd, hello, strlen(hello)));
        ck_assert(read_response(fd, &resp));
        ck_assert_int_eq(resp.status, 200);
        ck_assert_str_eq(resp.body, "Hello from gcpool's httpd demo.\n");
        ck_assert(!resp.close);
    }
    /* Three pipelined in one write, the last a HEAD. */
    const char *three = "GET / HTTP/1.1\r\nHost: t\r\n\r\nGET /nowhere HTTP/1.1\r\nHost: t\r\n\r\n"
                        "HEAD / HTTP/1.1\r\nHost: t\r\n\r\n";
    ck_assert(send_all(fd, three, strlen(three)));
    ck_assert(read_response(fd, &resp));
    ck_assert_int_eq(resp.status, 200);
    ck_assert(read_response(fd, &resp));
    ck_assert_int_eq(resp.status, 404);
    /* HEAD: the headers say 32 bytes, none follow; read just the head. */
    char *end;
    while (!(end = memmem(pending, pending_len, "\r\n\r\n", 4)))
        ck_assert_int_eq(fill_to(fd, pending_len + 1), 1);
    ck_assert(strncmp(pending, "HTTP/1.1 200 OK\r\n", 17) == 0);
    ck_assert(memmem(pending, pending_len, "Content-Length: 32\r\n", 20));
    consume((size_t)(end - pending) + 4);
    /* A POST whose body comes in three writes. */
    char post[256];
    snprintf(post, sizeof post, "POST /upload HTTP/1.1\r\nHost: t\r\nContent-Length: %d\r\n\r\n", 10000);
    ck_assert(send_all(fd, post, strlen(post) - 10)); /* even the head in two */
    usleep(20000);
    ck_assert(send_all(fd, post + strlen(post) - 10, 10));
    static char body[10000];
    memset(body, 'b', sizeof body);
    ck_assert(send_all(fd, body, 4000));
    usleep(20000);
    ck_assert(send_all(fd, body + 4000, 6000));
    ck_assert(read_response(fd, &resp));
    ck_assert_int_eq(resp.status, 200);
    ck_assert_str_eq(resp.body, "received 10000 bytes\n");
    const char *del = "DELETE / HTTP/1.1\r\nHost: t\r\n\r\n";
    ck_assert(send_all(fd, del, strlen(del)));
    ck_assert(read_response(fd, &resp));
    ck_assert_int_eq(resp.status, 405);
    close(fd);

    get(&s, "/fill?kib=32", &resp);
    ck_assert_int_eq(resp.status, 200);
    ck_assert_uint_eq(resp.body_len, 32 << 10);
    for (size_t i = 0; i < resp.body_len; i++)
        ck_assert_int_eq(resp.body[i], i % 64 == 63 ? '\n' : (char)('a' + (i / 64) % 26));
    get(&s, "/fill?kib=33", &resp); /* beyond the bound: no such page */
    ck_assert_int_eq(resp.status, 404);

    /* 3 + 3 + 1 + 1 on the first connection, 2 fills: 10 requests, then /stats. */
    int asked = settled_stats(&s, &resp);
    ck_assert_int_eq(json_num(resp.body, "requests"), 10 + asked);
    ck_assert_int_eq(json_num(resp.body, "bad_requests"), 0);
    if (!pool) {
        ck_assert_int_eq(json_num(resp.body, "buf_gets"), 0);
    } else {
        long long gets = json_num(resp.body, "buf_gets");
        /* A buffer per request, but the three pipelined ones share one: 9 at
         * least (a request whose bytes came before its buffer was given back
         * after a wake-up for nothing takes one more). */
        ck_assert_int_ge(gets, 9);
        ck_assert_int_eq(json_num(resp.body, "buf_puts"), gets - 1); /* all but this request's */
        ck_assert_int_eq(gets, json_num(resp.body, "hit_private") + json_num(resp.body, "hit_shared") +
                                   json_num(resp.body, "hit_steal") + json_num(resp.body, "hit_victim") +
                                   json_num(resp.body, "miss"));
        ck_assert_int_le(json_num(resp.body, "news"), 4); /* reused, not allocated */
    }
    char final[2048];
    stop(&s, final, sizeof final);
    ck_assert_int_eq(json_num(final, "requests"), 10 + asked);
}

START_TEST(test_serves_with_pool)
{
    if (skip_boehm())
        return;
    serves(true);
}
END_TEST

START_TEST(test_serves_without_pool)
{
    if (skip_boehm())
        return;
    serves(false);
}
END_TEST

/* Garbage, malformed requests, a header larger than the buffer, a body
 * larger than it, chunked bodies: each a 4xx and a close, none a lost buffer. */
START_TEST(test_bad_requests)
{
    if (skip_boehm())
        return;
    struct server s = start(true);
    static const struct {
        const char *req;
        int status;
    } bad[] = {
        {"\x01\x02\x03garbage", 400}, /* answered before any blank line comes */
        {"hello world\r\n\r\n", 400},
        {"GET / HTTP/1.1\r\n\r\n", 400},                  /* 1.1 without Host */
        {"GET / HTTP/2.0\r\nHost: t\r\n\r\n", 400},
        {"GET nothing HTTP/1.1\r\nHost: t\r\n\r\n", 400},
        {"GET / HTTP/1.1\r\nHost t\r\n\r\n", 400},           /* no colon */
        {"GET / HTTP/1.1\r\nHost: t\r\nContent-Length: x\r\n\r\n", 400},
        {"GET / HTTP/1.1\r\nHost: t\r\nContent-Length: 70000\r\n\r\n", 413},
        {"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n", 501},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int fd = dial(&s);
        pending_len = 0;
        ck_assert(send_all(fd, bad[i].req, strlen(bad[i].req)));
        ck_assert_msg(read_response(fd, &resp), "no answer to request %zu", i);
        ck_assert_int_eq(resp.status, bad[i].status);
        ck_assert(resp.close);
        ck_assert_msg(closed_by_server(fd), "request %zu: the connection stayed open", i);
        close(fd);
    }
    /* A head of exactly one buffer with no end: 431, then the close. */
    static char big[BUF];
    const char *start_line = "GET / HTTP/1.1\r\nHost: t\r\nX-Big: ";
    memset(big, 'a', sizeof big);
    memcpy(big, start_line, strlen(start_line));
    int fd = dial(&s);
    pending_len = 0;
    ck_assert(send_all(fd, big, sizeof big));
    ck_assert(read_response(fd, &resp));
    ck_assert_int_eq(resp.status, 431);
    ck_assert(closed_by_server(fd));
    close(fd);
    /* More than a buffer: a 431 or a reset, and the server lives on. */
    fd = dial(&s);
    pending_len = 0;
    for (int i = 0; i < 3 && send_all(fd, big, sizeof big); i++)
        ;
    close(fd);

    settled_stats(&s, &resp);
    ck_assert_int_ge(json_num(resp.body, "bad_requests"), 10);
    char final[2048];
    stop(&s, final, sizeof final);
}
END_TEST

/* Clients that leave mid-request, or stall: the connection is closed and its
 * buffer goes back, and the server goes on serving. */
START_TEST(test_disconnects)
{
    if (skip_boehm())
        return;
    struct server s = start(true);
    const char *parts[] = {"G", "GET / HTTP/1.1\r\nHo", "POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\nabc"};
    for (int round = 0; round < 20; round++) {
        int fd = dial(&s);
        const char *p = parts[round % 3];
        ck_assert(send_all(fd, p, strlen(p)));
        if (round % 2) { /* a reset instead of a close */
            struct linger l = {.l_onoff = 1, .l_linger = 0};
            setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
        }
        close(fd);
    }
    /* A stalled client: the server's idle timeout (1 s here) closes it. */
    int stalled = dial(&s);
    ck_assert(send_all(stalled, "GET / HTT", 9));
    pending_len = 0;
    ck_assert(closed_by_server(stalled));
    close(stalled);
    settled_stats(&s, &resp);
    ck_assert_int_ge(json_num(resp.body, "midrequest_closes"), 1);
    ck_assert_int_ge(json_num(resp.body, "timeouts"), 1);
    get(&s, "/", &resp);
    ck_assert_int_eq(resp.status, 200);
    char final[2048];
    stop(&s, final, sizeof final);
    /* The ten that closed gracefully, at least: a reset may beat its bytes. */
    ck_assert_int_ge(json_num(final, "midrequest_closes"), 10);
}
END_TEST

/* Several clients at once, many requests each, while collections run (the
 * server's per-request objects come from GC_MALLOC): all answered, all
 * buffers back, and collections ran pool cycles. */
struct client_arg {
    const struct server *s;
    int requests, ok;
};

/* One response to the one request sent (nothing is pipelined here, so
 * nothing past it can arrive): reads its head, then its Content-Length body.
 * The body's length, or -1. */
static long read_one(int fd, char *buf, size_t cap)
{
    size_t have = 0, want = 0;
    while (!want || have < want) {
        struct pollfd pf = {.fd = fd, .events = POLLIN};
        if (poll(&pf, 1, DEADLINE_MS) <= 0)
            return -1;
        ssize_t r = recv(fd, buf + have, cap - 1 - have, 0);
        if (r <= 0)
            return -1;
        have += (size_t)r;
        buf[have] = 0;
        const char *e = want ? NULL : strstr(buf, "\r\n\r\n");
        const char *cl = e ? strstr(buf, "\r\nContent-Length: ") : NULL;
        if (cl)
            want = (size_t)(e - buf) + 4 + strtoul(cl + 18, NULL, 10);
        if (want >= cap)
            return -1;
    }
    return have == want ? (long)(want - (size_t)(strstr(buf, "\r\n\r\n") + 4 - buf)) : -1;
}

static void *client(void *p)
{
    struct client_arg *a = p;
    int fd = dial(a->s);
    char *buf = malloc(8192);
    const char *req = "GET /fill?kib=4 HTTP/1.1\r\nHost: t\r\n\r\n";
    for (int i = 0; buf && i < a->requests; i++) {
        if (!send_all(fd, req, strlen(req)) || read_one(fd, buf, 8192) != 4096 ||
            strncmp(buf, "HTTP/1.1 200 ", 13) != 0)
            break;
        a->ok++;
    }
    free(buf);
    close(fd);
    return NULL;
}

START_TEST(test_concurrent_clients)
{
    if (skip_boehm())
        return;
    struct server s = start(true);
    enum { CLIENTS = 6, EACH = 300 };
    pthread_t t[CLIENTS];
    struct client_arg a[CLIENTS];
    for (int i = 0; i < CLIENTS; i++) {
        a[i] = (struct client_arg){&s, EACH, 0};
        ck_assert_int_eq(pthread_create(&t[i], NULL, client, &a[i]), 0);
    }
    for (int i = 0; i < CLIENTS; i++) {
        pthread_join(t[i], NULL);
        ck_assert_int_eq(a[i].ok, EACH);
    }
    int asked = settled_stats(&s, &resp);
    ck_assert_int_eq(json_num(resp.body, "requests"), CLIENTS * EACH + asked);
    ck_assert_int_le(json_num(resp.body, "news"), 2 * CLIENTS); /* the pool serves nearly all */
    char final[2048];
    stop(&s, final, sizeof final);
}
END_TEST

static Suite *make_suite(void)
{
    if (skip_boehm()) {
        puts("SKIP: the server runs under Boehm, which the sanitizers and valgrind exclude");
        return NULL; /* test_run_suite: 77, automake's skip */
    }
    Suite *suite = suite_create("httpd");
    TCase *tc = test_tcase(suite, "httpd", 60);
    tcase_add_test(tc, test_serves_with_pool);
    tcase_add_test(tc, test_serves_without_pool);
    tcase_add_test(tc, test_bad_requests);
    tcase_add_test(tc, test_disconnects);
    tcase_add_test(tc, test_concurrent_clients);
    return suite;
}

TEST_MAIN(make_suite)
