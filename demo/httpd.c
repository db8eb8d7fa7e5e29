/* httpd — a small HTTP/1.1 server under the Boehm collector, in the shape a
 * server that adopts gcpool would take.
 *
 *   demo/httpd [--port N] [--threads N] [--no-pool] [--duration S]
 *              [--idle-timeout S] [--max-conns N]
 *
 * It listens on 127.0.0.1 only (port 0: one the kernel picks) and prints
 *   httpd: listening on 127.0.0.1:PORT (...)
 * then serves until SIGINT or SIGTERM (or --duration seconds), and prints its
 * statistics as one JSON line, "httpd: final {...}", before it exits.
 *
 *   GET /            a short text
 *   GET /fill?kib=N  N KiB of text, built in the request's buffer (N <= 32)
 *   GET /stats       the server's and the buffer pool's counters, as JSON
 *   POST /...        reads a Content-Length body; says how many bytes came
 *
 * The shape, and what each part owes the collector:
 *   - One thread per CPU, each with its own epoll set and its own listening
 *     socket on the one port (SO_REUSEPORT: the kernel spreads connections
 *     over them; one socket woken with EPOLLEXCLUSIVE left whole loads on
 *     one thread), and a connection stays with the thread that accepted it,
 *     so a connection is never touched by two threads.  The threads come from pthread_create,
 *     which <gc/gc.h> turns into GC_pthread_create under GC_THREADS: the
 *     collector must know every thread that holds pointers to its heap, to
 *     stop it and scan its stack.  A collection stops threads with a signal,
 *     so epoll_wait, read and write may return EINTR: each call retries.
 *   - A request's 64 KiB buffer comes from a gcpool buffer pool
 *     (<gcpool/buf.h>) when the request's first bytes arrive, holds the
 *     request as it is read and the response as it is built, and goes back
 *     when the response is written: a keep-alive connection between requests
 *     holds no buffer.  --no-pool allocates it (GC_MALLOC_ATOMIC) instead.
 *     Every way a connection ends - a response written, a bad request, the
 *     client gone mid-request, an idle timeout, the server stopping - gives
 *     the buffer back; buffers_out in /stats counts those not yet back.
 *   - The parsed request (method, target, each header) is made of small
 *     objects from GC_MALLOC, left to the collector: the garbage that keeps
 *     collections coming, each of which runs one pool cycle.
 *   - The collector does not scan kernel memory: an epoll event carries the
 *     connection's fd, and the connection itself is reached through conns[],
 *     a static array the collector scans as a root.  A pointer kept only in
 *     epoll_event.data.ptr would let the collector free the connection.
 *   - Buffers are pointer-free (atomic) memory: nothing in them may point to
 *     collector memory, so the request's objects copy what they keep.
 *
 * Bounded: --max-conns connections at most (others are closed at once), a
 * request head must fit the buffer (else 431), a body too (else 413), and a
 * connection idle --idle-timeout seconds (default 10) is closed. */
#define GC_THREADS /* before gc.h: pthread_create becomes GC_pthread_create */
#include <gc/gc.h>

#include <gcpool.h>
#include <gcpool/buf.h>

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

enum {
    BUF_SIZE = 64 << 10, /* every request's buffer */
    MAX_CONNS = 4096,    /* fds at or above it are refused */
    MAX_THREADS = 256,
    FILL_MAX_KIB = 32,
};

/* ---- configuration and counters --------------------------------------------- */

static struct {
    int port, threads, max_conns;
    bool pool;
    double duration_s, idle_s;
} cfg = {.port = 8080, .max_conns = 1024, .pool = true, .idle_s = 10};

static gcpool_bufpool_t *buffers; /* NULL with --no-pool */
static int listen_fds[MAX_THREADS]; /* one per thread, on one port (SO_REUSEPORT) */
static int stop_fd;                 /* an eventfd in every epoll set */
static atomic_bool stopping;

/* Relaxed counters: statistics, read racily by /stats. */
static _Atomic uint64_t n_requests, n_bad, n_accepted, n_closed, n_refused, n_midrequest,
    n_timeouts;
static _Atomic int64_t buffers_out, conns_open;

/* Wakes every thread: stop_fd stays readable, and each epoll set has it. */
static void stop(void)
{
    uint64_t one = 1;
    atomic_store_explicit(&stopping, true, memory_order_relaxed);
    if (write(stop_fd, &one, sizeof one) != sizeof one && errno != EAGAIN)
        _exit(4); /* cannot happen with an eventfd; never leave a server unstoppable */
}

/* SIGINT, SIGTERM: async-signal-safe (an atomic store and a write). */
static void on_quit(int sig)
{
    int saved = errno;
    (void)sig;
    stop();
    errno = saved;
}

static void count(_Atomic uint64_t *c) { atomic_fetch_add_explicit(c, 1, memory_order_relaxed); }

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* ---- buffers: the pool, or an allocation per request --------------------------- */

static char *buffer_get(size_t *cap)
{
    char *buf = buffers ? gcpool_buf_get(buffers, BUF_SIZE, cap) : GC_MALLOC_ATOMIC(BUF_SIZE);
    if (!buffers)
        *cap = BUF_SIZE;
    if (buf)
        atomic_fetch_add_explicit(&buffers_out, 1, memory_order_relaxed);
    return buf;
}

static void buffer_put(char *buf, size_t cap)
{
    atomic_fetch_sub_explicit(&buffers_out, 1, memory_order_relaxed);
    if (buffers)
        gcpool_buf_put(buffers, buf, cap);
    /* without a pool the collector reclaims it once nothing points to it */
}

/* ---- connections --------------------------------------------------------------- */

struct conn {
    int fd, owner;        /* owner: the thread that accepted it, the only one to touch it */
    char *buf;            /* the current request's buffer, or NULL between requests */
    size_t cap, len;      /* buffer capacity; request bytes in buf[0, len) */
    size_t out, out_len;  /* the response, buf[out, out + out_len), not yet all sent */
    bool close_after;     /* close once the response is sent */
    bool want_out;        /* registered for EPOLLOUT */
    uint64_t last_ns;     /* last activity, for the idle timeout */
};

/* The collector scans this array (static data is a root); epoll only holds fds.
 * Each slot is written by the thread that owns its fd; others read it (relaxed:
 * they only compare its owner, which never changes, with themselves). */
static struct conn *_Atomic conns[MAX_CONNS];

static void conn_close(struct conn *c, int epfd, bool mid_request)
{
    if (c->buf) {
        if (mid_request)
            count(&n_midrequest);
        buffer_put(c->buf, c->cap);
        c->buf = NULL;
    }
    /* The slot first: once the fd is closed, another thread may accept a
     * connection on the same number and fill the slot, which a late clear
     * would wipe (its connection then unreachable, never closed). */
    atomic_store_explicit(&conns[c->fd], NULL, memory_order_relaxed);
    epoll_ctl(epfd, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    atomic_fetch_sub_explicit(&conns_open, 1, memory_order_relaxed);
    count(&n_closed);
}

/* ---- requests: small objects from GC_MALLOC ------------------------------------------ */

struct header {
    char *name, *value;
    struct header *next;
};

struct request {
    char *method, *target;
    int minor;              /* HTTP/1.minor */
    struct header *headers; /* in reverse order */
    size_t head_len, body_len;
    bool keep_alive;
};

/* A NUL-terminated copy of n bytes, in pointer-free collector memory. */
static char *copy(const char *s, size_t n)
{
    char *p = GC_MALLOC_ATOMIC(n + 1);
    if (p) {
        memcpy(p, s, n);
        p[n] = 0;
    }
    return p;
}

static const char *header(const struct request *r, const char *name)
{
    for (const struct header *h = r->headers; h; h = h->next)
        if (strcasecmp(h->name, name) == 0)
            return h->value;
    return NULL;
}

static bool is_tchar(unsigned char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c && strchr("!#$%&'*+-.^_`|~", c));
}

/* Whether the bytes so far can still begin a request line: lets garbage get
 * its 400 at once instead of waiting for a blank line that never comes. */
static bool could_be_request(const char *s, size_t n)
{
    size_t i = 0;
    while (i < n && is_tchar((unsigned char)s[i]))
        i++;
    if (i == n)
        return true;
    return i > 0 && s[i] == ' ';
}

enum parsed { NEED_MORE, PARSED, BAD, TOO_LARGE, UNSUPPORTED };

/* Parses the request head in buf[0, len): the request line, then headers. */
static enum parsed parse(const char *buf, size_t len, size_t cap, struct request *r)
{
    const char *end = memmem(buf, len, "\r\n\r\n", 4);
    if (!end) {
        const char *eol = memchr(buf, '\n', len);
        if (!could_be_request(buf, eol ? (size_t)(eol - buf) : len))
            return BAD;
        return len == cap ? TOO_LARGE : NEED_MORE;
    }
    *r = (struct request){.head_len = (size_t)(end - buf) + 4};
    const char *p = buf, *line_end = memchr(p, '\r', (size_t)(end - p) + 1);
    /* METHOD SP TARGET SP HTTP/1.x */
    const char *sp1 = memchr(p, ' ', (size_t)(line_end - p));
    if (!sp1 || sp1 == p)
        return BAD;
    for (const char *q = p; q < sp1; q++)
        if (!is_tchar((unsigned char)*q))
            return BAD;
    const char *sp2 = memchr(sp1 + 1, ' ', (size_t)(line_end - sp1 - 1));
    if (!sp2 || sp1[1] != '/' || line_end - sp2 != 9 || memcmp(sp2 + 1, "HTTP/1.", 7) != 0 ||
        (sp2[8] != '0' && sp2[8] != '1'))
        return BAD;
    for (const char *q = sp1 + 1; q < sp2; q++)
        if ((unsigned char)*q <= ' ' || *q == 0x7f)
            return BAD;
    r->method = copy(p, (size_t)(sp1 - p));
    r->target = copy(sp1 + 1, (size_t)(sp2 - sp1 - 1));
    r->minor = sp2[8] - '0';
    if (!r->method || !r->target)
        return BAD;
    /* Name: value CRLF, until the blank line. */
    for (p = line_end + 2; p < end + 2; p = line_end + 2) {
        line_end = memchr(p, '\r', (size_t)(end + 2 - p));
        if (!line_end || line_end[1] != '\n')
            return BAD;
        const char *colon = memchr(p, ':', (size_t)(line_end - p));
        if (!colon || colon == p)
            return BAD;
        for (const char *q = p; q < colon; q++)
            if (!is_tchar((unsigned char)*q))
                return BAD;
        const char *v = colon + 1, *ve = line_end;
        while (v < ve && (*v == ' ' || *v == '\t'))
            v++;
        while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t'))
            ve--;
        for (const char *q = v; q < ve; q++)
            if ((unsigned char)*q < ' ' && *q != '\t')
                return BAD;
        struct header *h = GC_MALLOC(sizeof *h);
        if (!h || !(h->name = copy(p, (size_t)(colon - p))) || !(h->value = copy(v, (size_t)(ve - v))))
            return BAD;
        h->next = r->headers;
        r->headers = h;
    }
    if (r->minor == 1 && !header(r, "Host"))
        return BAD; /* RFC 9112: a 1.1 request without Host gets a 400 */
    if (header(r, "Transfer-Encoding"))
        return UNSUPPORTED; /* no chunked bodies here: the framing would be lost */
    const char *cl = header(r, "Content-Length");
    if (cl) {
        if (!*cl || strspn(cl, "0123456789") != strlen(cl) || strlen(cl) > 9)
            return BAD;
        r->body_len = strtoul(cl, NULL, 10);
        if (r->head_len + r->body_len > cap)
            return TOO_LARGE;
    }
    const char *connection = header(r, "Connection");
    r->keep_alive = connection ? strcasecmp(connection, "close") != 0 &&
                                     (r->minor == 1 || strcasecmp(connection, "keep-alive") == 0)
                               : r->minor == 1;
    return PARSED;
}

/* ---- responses, built in the buffer ----------------------------------------------- */

/* Appends a response at buf[c->len ...]: the status line, headers and body
 * (body NULL: `fill` bytes of text instead).  false when it does not fit. */
static bool respond(struct conn *c, int status, const char *reason, const char *type,
                    const char *body, size_t fill, bool head_only)
{
    size_t body_len = body ? strlen(body) : fill;
    char *out = c->buf + c->len;
    size_t room = c->cap - c->len;
    int n = snprintf(out, room,
                     "HTTP/1.1 %d %s\r\nServer: gcpool-httpd\r\nContent-Type: %s\r\n"
                     "Content-Length: %zu\r\n%s\r\n",
                     status, reason, type, body_len, c->close_after ? "Connection: close\r\n" : "");
    if (n < 0 || (size_t)n + (head_only ? 0 : body_len) > room)
        return false;
    size_t total = (size_t)n;
    if (!head_only) {
        if (body)
            memcpy(out + total, body, body_len);
        else /* lines of 63 letters and a newline, a letter per line */
            for (size_t i = 0; i < fill; i++)
                out[total + i] = i % 64 == 63 ? '\n' : (char)('a' + (i / 64) % 26);
        total += body_len;
    }
    c->out = c->len;
    c->out_len = total;
    return true;
}

static void stats_json(char *out, size_t len)
{
    gcpool_bufpool_stats_t s = {0};
    const gcpool_buf_class_stats_t *k = NULL;
    if (buffers && gcpool_bufpool_read_stats(buffers, &s) == 0)
        for (unsigned i = 0; i < s.nclasses; i++)
            if (s.classes[i].size == BUF_SIZE)
                k = &s.classes[i];
    static const gcpool_buf_class_stats_t none;
    if (!k)
        k = &none;
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
#define LD(x) ((unsigned long long)(x))
    snprintf(out, len,
             "{\"pool\": %s, \"threads\": %d, \"requests\": %llu, \"bad_requests\": %llu, "
             "\"accepted\": %llu, \"closed\": %llu, \"refused\": %llu, \"open\": %lld, "
             "\"midrequest_closes\": %llu, \"timeouts\": %llu, \"buffers_out\": %lld, "
             "\"collections\": %llu, \"cycles\": %llu, \"heap_bytes\": %llu, \"peak_rss_kib\": %ld, "
             "\"buf_gets\": %llu, \"buf_puts\": %llu, \"hit_private\": %llu, \"hit_shared\": %llu, "
             "\"hit_steal\": %llu, \"hit_victim\": %llu, \"miss\": %llu, \"news\": %llu, "
             "\"dropped\": %llu}",
             buffers ? "true" : "false", cfg.threads, LD(n_requests), LD(n_bad), LD(n_accepted),
             LD(n_closed), LD(n_refused), (long long)conns_open, LD(n_midrequest), LD(n_timeouts),
             (long long)buffers_out, LD(GC_get_gc_no()), LD(gcpool_cycles()),
             LD(GC_get_heap_size()), ru.ru_maxrss, LD(k->gets), LD(k->puts), LD(k->hit_private),
             LD(k->hit_shared), LD(k->hit_steal), LD(k->hit_victim), LD(k->miss), LD(k->news),
             LD(k->dropped));
#undef LD
}

/* Answers one parsed request; consumes its head and body from the buffer. */
static void handle(struct conn *c, const struct request *r)
{
    bool head_only = strcmp(r->method, "HEAD") == 0;
    size_t consumed = r->head_len + r->body_len;
    memmove(c->buf, c->buf + consumed, c->len - consumed); /* what is left: a pipelined request */
    c->len -= consumed;
    c->close_after = !r->keep_alive;
    count(&n_requests);

    bool ok;
    if (strcmp(r->method, "GET") == 0 || head_only) {
        if (strcmp(r->target, "/") == 0) {
            ok = respond(c, 200, "OK", "text/plain", "Hello from gcpool's httpd demo.\n", 0, head_only);
        } else if (strcmp(r->target, "/stats") == 0) {
            char json[1024];
            stats_json(json, sizeof json - 1);
            strcat(json, "\n");
            ok = respond(c, 200, "OK", "application/json", json, 0, head_only);
        } else if (strncmp(r->target, "/fill?kib=", 10) == 0 &&
                   strspn(r->target + 10, "0123456789") == strlen(r->target + 10) &&
                   strlen(r->target + 10) > 0 && strlen(r->target + 10) < 4 &&
                   atoi(r->target + 10) <= FILL_MAX_KIB) {
            ok = respond(c, 200, "OK", "text/plain", NULL, (size_t)atoi(r->target + 10) << 10, head_only);
        } else {
            ok = respond(c, 404, "Not Found", "text/plain", "not found\n", 0, head_only);
        }
    } else if (strcmp(r->method, "POST") == 0) {
        char text[64];
        snprintf(text, sizeof text, "received %zu bytes\n", r->body_len);
        ok = respond(c, 200, "OK", "text/plain", text, 0, false);
    } else {
        ok = respond(c, 405, "Method Not Allowed", "text/plain", "GET, HEAD or POST\n", 0, false);
    }
    if (!ok) { /* pipelined bytes left no room for the response: start over on a new connection */
        c->close_after = true;
        c->len = 0;
        ok = respond(c, 503, "Service Unavailable", "text/plain", "pipeline too deep\n", 0, false);
    }
}

/* A 4xx for a request that cannot go on: the rest of the connection's bytes
 * cannot be framed, so it closes after the answer. */
static void reject(struct conn *c, int status, const char *reason)
{
    count(&n_bad);
    c->close_after = true;
    c->len = 0;
    respond(c, status, reason, "text/plain", "bad request\n", 0, false);
}

/* ---- the event loop ------------------------------------------------------------------ */

/* Sends what is left of the response.  false when the connection is gone. */
static bool flush(struct conn *c, int epfd)
{
    while (c->out_len) {
        ssize_t n = send(c->fd, c->buf + c->out, c->out_len, MSG_NOSIGNAL);
        if (n > 0) {
            c->out += (size_t)n;
            c->out_len -= (size_t)n;
        } else if (n < 0 && errno == EINTR) {
            continue;
        } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            if (!c->want_out) {
                struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT, .data.fd = c->fd};
                epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &ev);
                c->want_out = true;
            }
            return true;
        } else {
            conn_close(c, epfd, false); /* the client went away mid-response */
            return false;
        }
    }
    if (c->want_out) {
        struct epoll_event ev = {.events = EPOLLIN, .data.fd = c->fd};
        epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &ev);
        c->want_out = false;
    }
    return true;
}

/* Serves what is in the buffer: parse, answer, send, and again while
 * pipelined requests are complete.  false when the connection is gone. */
static bool serve(struct conn *c, int epfd)
{
    while (c->buf && !c->out_len) {
        struct request r;
        switch (c->len ? parse(c->buf, c->len, c->cap, &r) : NEED_MORE) {
        case NEED_MORE:
            if (c->len == 0) { /* between requests: no buffer held */
                buffer_put(c->buf, c->cap);
                c->buf = NULL;
            }
            return true;
        case PARSED:
            if (c->len < r.head_len + r.body_len)
                return true; /* the body is still coming */
            handle(c, &r);
            break;
        case BAD:
            reject(c, 400, "Bad Request");
            break;
        case TOO_LARGE:
            reject(c, c->len == c->cap ? 431 : 413,
                   c->len == c->cap ? "Request Header Fields Too Large" : "Content Too Large");
            break;
        case UNSUPPORTED:
            reject(c, 501, "Not Implemented");
            break;
        }
        if (!flush(c, epfd))
            return false;
        if (c->out_len)
            return true; /* the rest when the socket drains */
        if (c->close_after) {
            conn_close(c, epfd, false);
            return false;
        }
    }
    return true;
}

/* A connection's socket is readable (or writable, while a response waits). */
static void on_event(struct conn *c, int epfd)
{
    c->last_ns = now_ns();
    if (c->out_len) { /* a response is still going out: finish it first */
        if (!flush(c, epfd) || c->out_len)
            return;
        if (c->close_after) {
            conn_close(c, epfd, false);
            return;
        }
        if (!serve(c, epfd) || c->out_len) /* requests pipelined behind it */
            return;
    }
    for (;;) { /* read while a request is incomplete */
        if (!c->buf && !(c->buf = buffer_get(&c->cap))) {
            conn_close(c, epfd, false); /* no memory: drop the connection, keep the server */
            return;
        }
        ssize_t n = read(c->fd, c->buf + c->len, c->cap - c->len);
        if (n > 0) {
            c->len += (size_t)n;
            if (!serve(c, epfd) || !c->buf || c->out_len)
                return; /* closed, served (its buffer back), or a response waiting to drain */
            continue;   /* part of a request: read on */
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            if (c->len == 0) { /* woke for nothing: hold no buffer */
                buffer_put(c->buf, c->cap);
                c->buf = NULL;
            }
            return;
        }
        /* 0: the client closed; < 0: reset.  A partial request dies with it. */
        conn_close(c, epfd, c->len > 0);
        return;
    }
}

static void on_accept(int epfd, int self)
{
    for (;;) {
        int fd = accept4(listen_fds[self], NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            return; /* EAGAIN: another thread took it, or none left; EMFILE: next time */
        }
        count(&n_accepted);
        if (fd >= MAX_CONNS || atomic_load_explicit(&conns_open, memory_order_relaxed) >= cfg.max_conns) {
            count(&n_refused);
            close(fd);
            continue;
        }
        struct conn *c = GC_MALLOC(sizeof *c);
        if (!c) {
            close(fd);
            continue;
        }
        *c = (struct conn){.fd = fd, .owner = self, .last_ns = now_ns()};
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        atomic_store_explicit(&conns[fd], c, memory_order_relaxed);
        atomic_fetch_add_explicit(&conns_open, 1, memory_order_relaxed);
        struct epoll_event ev = {.events = EPOLLIN, .data.fd = fd};
        if (epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) != 0)
            conn_close(c, epfd, false);
    }
}

/* This thread's connections idle too long, or all of them when stopping. */
static void sweep(int epfd, int self, bool all)
{
    uint64_t limit = now_ns() - (uint64_t)(cfg.idle_s * 1e9);
    for (int fd = 0; fd < MAX_CONNS; fd++) {
        struct conn *c = atomic_load_explicit(&conns[fd], memory_order_relaxed);
        if (c && c->owner == self && (all || c->last_ns < limit)) {
            if (!all)
                count(&n_timeouts);
            conn_close(c, epfd, c->len > 0);
        }
    }
}

static void *worker(void *arg)
{
    int self = (int)(intptr_t)arg;
    int epfd = epoll_create1(EPOLL_CLOEXEC);
    int listen_fd = listen_fds[self];
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = listen_fd};
    if (epfd < 0 || epoll_ctl(epfd, EPOLL_CTL_ADD, listen_fd, &ev) != 0) {
        perror("httpd: epoll");
        exit(1);
    }
    ev = (struct epoll_event){.events = EPOLLIN, .data.fd = stop_fd};
    epoll_ctl(epfd, EPOLL_CTL_ADD, stop_fd, &ev);
    uint64_t next_sweep = now_ns() + 1000000000u;
    while (!atomic_load_explicit(&stopping, memory_order_relaxed)) {
        struct epoll_event events[64];
        int n = epoll_wait(epfd, events, 64, 250);
        for (int i = 0; i < n; i++) {
            int fd = events[i].data.fd;
            if (fd == listen_fd)
                on_accept(epfd, self);
            else if (fd != stop_fd && fd < MAX_CONNS) {
                /* A slot may meanwhile hold another thread's connection: an fd
                 * closed earlier in this batch and accepted again there. */
                struct conn *c = atomic_load_explicit(&conns[fd], memory_order_relaxed);
                if (c && c->owner == self)
                    on_event(c, epfd);
            }
        }
        if (now_ns() >= next_sweep) {
            sweep(epfd, self, false);
            next_sweep = now_ns() + 1000000000u;
        }
    }
    sweep(epfd, self, true);
    close(epfd);
    return NULL;
}

/* ---- main ------------------------------------------------------------------------------- */

static void usage(FILE *out)
{
    fputs("usage: httpd [--port N] [--threads N] [--no-pool] [--duration S] [--idle-timeout S]\n"
          "             [--max-conns N]\n"
          "  Serves HTTP/1.1 on 127.0.0.1 until SIGINT/SIGTERM or --duration seconds.\n"
          "  --port 0: a port the kernel picks (printed).  --threads: default one per CPU.\n"
          "  --no-pool: allocate every request's 64 KiB buffer instead of pooling it.\n",
          out);
}

static bool number(const char *s, double lo, double hi, double *out)
{
    char *end;
    errno = 0;
    double v = s ? strtod(s, &end) : 0;
    if (!s || errno || end == s || *end || v < lo || v > hi)
        return false;
    *out = v;
    return true;
}

static int parse_args(int argc, char **argv)
{
    cpu_set_t set;
    cfg.threads = sched_getaffinity(0, sizeof set, &set) == 0 ? CPU_COUNT(&set) : 1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        double x;
        if (strcmp(a, "--no-pool") == 0) {
            cfg.pool = false;
            continue;
        }
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(stdout);
            exit(0);
        }
        if (strcmp(a, "--port") == 0 && number(v, 0, 65535, &x))
            cfg.port = (int)x;
        else if (strcmp(a, "--threads") == 0 && number(v, 1, MAX_THREADS, &x))
            cfg.threads = (int)x;
        else if (strcmp(a, "--duration") == 0 && number(v, 0, 86400, &x))
            cfg.duration_s = x;
        else if (strcmp(a, "--idle-timeout") == 0 && number(v, 0.1, 86400, &x))
            cfg.idle_s = x;
        else if (strcmp(a, "--max-conns") == 0 && number(v, 1, MAX_CONNS - 16, &x))
            cfg.max_conns = (int)x;
        else {
            fprintf(stderr, "httpd: bad option or value: %s %s\n", a, v ? v : "");
            usage(stderr);
            return -1;
        }
        i++;
    }
    return 0;
}

static int listen_loopback(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)}; /* never another address */
    socklen_t alen = sizeof a;
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0 ||
        bind(fd, (struct sockaddr *)&a, sizeof a) != 0 || listen(fd, 512) != 0 ||
        getsockname(fd, (struct sockaddr *)&a, &alen) != 0) {
        perror("httpd: listen on 127.0.0.1");
        return -1;
    }
    cfg.port = ntohs(a.sin_port); /* port 0: the next thread's socket takes the same */
    return fd;
}

int main(int argc, char **argv)
{
    if (parse_args(argc, argv) != 0)
        return 2;
    GC_INIT(); /* first: the buffer pool's class pools then follow Boehm's collections */
    if (cfg.pool) {
        gcpool_bufpool_options_t o = {.name = "httpd"};
        if (!(buffers = gcpool_bufpool_create(&o))) {
            perror("httpd: gcpool_bufpool_create");
            return 1;
        }
    }
    for (int i = 0; i < cfg.threads; i++)
        if ((listen_fds[i] = listen_loopback(cfg.port)) < 0)
            return 1;
    if ((stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) < 0) {
        perror("httpd: eventfd");
        return 1;
    }
    /* SIGINT and SIGTERM stop the server through a handler, not by being
     * blocked and waited for: a thread stopped for a collection waits in the
     * collector's signal handler with those two open (bdwgc leaves them
     * deliverable there, so that a stuck program can be killed), and a
     * blocked-and-waited signal would kill the process there. */
    struct sigaction quit = {.sa_handler = on_quit, .sa_flags = SA_RESTART};
    sigemptyset(&quit.sa_mask);
    sigaction(SIGINT, &quit, NULL);
    sigaction(SIGTERM, &quit, NULL);
    signal(SIGPIPE, SIG_IGN);


    pthread_t threads[MAX_THREADS];
    for (int i = 0; i < cfg.threads; i++) {
        int err = pthread_create(&threads[i], NULL, worker, (void *)(intptr_t)i);
        if (err) {
            fprintf(stderr, "httpd: pthread_create: %s\n", strerror(err));
            return 1;
        }
    }
    printf("httpd: listening on 127.0.0.1:%d (%d threads, %s)\n", cfg.port, cfg.threads,
           cfg.pool ? "buffers from a gcpool buffer pool" : "--no-pool: a buffer allocated per request");
    fflush(stdout);

    uint64_t t0 = now_ns(), gc0 = GC_get_gc_no();
    while (!atomic_load_explicit(&stopping, memory_order_relaxed)) {
        int timeout = -1;
        if (cfg.duration_s > 0) {
            double left = cfg.duration_s - (double)(now_ns() - t0) / 1e9;
            if (left <= 0)
                break;
            timeout = (int)(left * 1000) + 1;
        }
        struct pollfd p = {.fd = stop_fd, .events = POLLIN};
        poll(&p, 1, timeout); /* the handler's write wakes it; EINTR: look again */
    }
    stop();
    for (int i = 0; i < cfg.threads; i++)
        pthread_join(threads[i], NULL);
    double seconds = (double)(now_ns() - t0) / 1e9;

    char json[1024];
    stats_json(json, sizeof json);
    printf("httpd: final %s\n", json);
    printf("httpd: %.1f s, %.1f collections/s\n", seconds,
           (double)(GC_get_gc_no() - gc0) / (seconds > 0 ? seconds : 1));
    fflush(stdout);
    for (int i = 0; i < cfg.threads; i++)
        close(listen_fds[i]);
    if (buffers)
        gcpool_bufpool_destroy(buffers);
    return atomic_load(&buffers_out) == 0 ? 0 : 3; /* a buffer not back is a bug: say so */
}
