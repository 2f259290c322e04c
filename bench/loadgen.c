/*
 * loadgen: a WebSocket echo load generator (RFC 6455 client side).
 *
 * One thread, non-blocking sockets, level-triggered epoll. It opens N
 * connections to ws://HOST:PORT/PATH (HTTP/1.1 upgrade; anything but a
 * "HTTP/1.x 101" status line is an error), then keeps K masked messages of
 * S bytes in flight on every connection: K are sent at once, and each
 * complete message the server sends back is answered with one more. After a
 * warm-up of W seconds it counts complete messages received for D seconds and
 * prints one JSON line on stdout:
 *
 *   {"messages_per_s":..., "connections":N, "inflight":K, "size":S,
 *    "duration":D, "errors":..., "loadgen_cpu_percent":..., ...}
 *
 * loadgen_cpu_percent is getrusage(RUSAGE_SELF) user+sys over the measured
 * window divided by its wall time: near 100 means the generator itself is the
 * bottleneck and the figure is a lower bound for the server.
 *
 * Frames from the server are parsed properly: 2/4/10-byte headers (a masking
 * key is skipped, but counted as an error: servers must not mask), data
 * frames and fragmented messages (only a complete text or binary message
 * counts, and its size is checked against S), pings answered with a masked
 * pong, pongs ignored, a close frame counted as an error (the server should
 * not close during the run) and the connection dropped.
 *
 * Cheap by construction, so that it can drive a Python server from one core:
 *   - payloads are not buffered: a data frame's payload is skipped as it
 *     streams in, only an incomplete header or control frame (at most 139
 *     bytes) is carried over to the next read, in a small per-connection
 *     buffer; reads go to one shared buffer;
 *   - every message is the same masked frame (one random masking key chosen
 *     at start-up: the server still unmasks every byte), prebuilt K times
 *     back to back, so sending n messages is one send() of a slice of it.
 *
 * Build: gcc -O2 -o bench/loadgen bench/loadgen.c
 * Usage: bench/loadgen --port 8080 [--host 127.0.0.1] [--path /echo]
 *            [--connections 64] [--inflight 32] [--size 32] [--warmup 2]
 *            [--duration 5] [--binary] [--connect-timeout 10] [--marks] [--verify]
 * --verify compares every echoed payload byte with what was sent (costs
 * generator CPU; without it only the message's type and size are checked).
 * --marks prints "MEASURE_START" and "MEASURE_END" lines on stderr at the
 * window's edges (so a driver can sample the server's CPU time there).
 * Exit status: 0 on success (even with errors, which the JSON reports),
 * 1 on bad arguments, 2 when no connection could be opened.
 */

#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define READ_BUF_SIZE (1 << 20)
#define CARRY_MAX 160      /* > 14-byte header + 125-byte control payload */
#define CTRL_MAX 1024      /* queued pongs */
#define HS_MAX 4096        /* the server's handshake response */
#define MAX_ERRORS_SHOWN 10

enum phase { P_CONNECTING, P_HANDSHAKE, P_OPEN, P_CLOSED };

struct conn {
    int fd;
    enum phase phase;
    /* handshake */
    char *hs;              /* response bytes so far (only while P_HANDSHAKE) */
    size_t hs_len;
    size_t req_off;        /* request bytes already sent */
    /* receive side */
    unsigned char carry[CARRY_MAX];
    size_t carry_len;
    uint64_t skip;         /* payload bytes of the current data frame still to come */
    int frame_fin;         /* FIN bit of the data frame being skipped */
    int in_message;        /* a fragmented message has started */
    uint64_t msg_len;      /* bytes of the current message so far (headers seen) */
    uint64_t msg_pos;      /* payload bytes of the current message consumed */
    int msg_bad;           /* --verify: the payload differs from what was sent */
    /* send side */
    uint64_t pend_frames;  /* data frames not yet fully written */
    size_t pend_off;       /* bytes of the first of them already written */
    unsigned char ctrl[CTRL_MAX]; /* control frames, written at a frame boundary */
    size_t ctrl_len, ctrl_off;
    int want_out;          /* EPOLLOUT currently requested */
};

/* -- options ------------------------------------------------------------ */
static const char *opt_host = "127.0.0.1";
static const char *opt_port = NULL;
static const char *opt_path = "/echo";
static long opt_conns = 64;
static long opt_inflight = 32;
static long opt_size = 32;
static double opt_warmup = 2.0;
static double opt_duration = 5.0;
static double opt_connect_timeout = 10.0;
static int opt_binary = 0;
static int opt_marks = 0;
static int opt_verify = 0;

/* -- global state ------------------------------------------------------- */
static int ep;
static struct conn *conns;
static unsigned char *batch;      /* opt_inflight copies of the masked frame */
static unsigned char *expected;   /* the unmasked payload (for --verify) */
static size_t frame_len;          /* bytes of one masked frame */
static size_t batch_frames;       /* frames in `batch` */
static unsigned char *rbuf;       /* shared read buffer */
static char request[1024];
static size_t request_len;
static uint64_t received;         /* complete messages received, all connections */
static uint64_t errors;
static long n_open, n_pending;    /* open connections; still connecting/handshaking */
static int running;               /* messages received get answered */
static int shutting_down;         /* results printed; closing politely */

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static double cpu_seconds(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
}

static void error(struct conn *c, const char *fmt, ...)
{
    if (shutting_down)
        return;                           /* the results are already out */
    errors++;
    if (errors <= MAX_ERRORS_SHOWN) {
        va_list ap;
        va_start(ap, fmt);
        fprintf(stderr, "loadgen: connection %ld: ", c ? (long)(c - conns) : -1L);
        vfprintf(stderr, fmt, ap);
        fputc('\n', stderr);
        va_end(ap);
        if (errors == MAX_ERRORS_SHOWN)
            fprintf(stderr, "loadgen: (further errors only counted)\n");
    }
}

static void fill_random(unsigned char *p, size_t n)
{
    int fd = open("/dev/urandom", O_RDONLY);
    if (fd < 0 || read(fd, p, n) != (ssize_t)n) {
        /* not security: only masking keys and handshake nonces */
        for (size_t i = 0; i < n; i++)
            p[i] = (unsigned char)rand();
    }
    if (fd >= 0)
        close(fd);
}

static size_t encode_header(unsigned char *h, int first, uint64_t len, int masked)
{
    unsigned char m = masked ? 0x80 : 0;
    h[0] = (unsigned char)first;
    if (len < 126) {
        h[1] = m | (unsigned char)len;
        return 2;
    }
    if (len < 65536) {
        h[1] = m | 126;
        h[2] = (unsigned char)(len >> 8);
        h[3] = (unsigned char)len;
        return 4;
    }
    h[1] = m | 127;
    for (int i = 0; i < 8; i++)
        h[2 + i] = (unsigned char)(len >> (56 - 8 * i));
    return 10;
}

/* A masked client frame: header, key, masked payload. Returns its length. */
static size_t build_frame(unsigned char *out, int first, const unsigned char *payload, uint64_t len)
{
    unsigned char key[4];
    fill_random(key, 4);
    size_t h = encode_header(out, first, len, 1);
    memcpy(out + h, key, 4);
    for (uint64_t i = 0; i < len; i++)
        out[h + 4 + i] = payload[i] ^ key[i & 3];
    return h + 4 + len;
}

static void watch(struct conn *c, int op, uint32_t events)
{
    struct epoll_event ev = {.events = events, .data.ptr = c};
    if (epoll_ctl(ep, op, c->fd, &ev) < 0) {
        perror("loadgen: epoll_ctl");
        exit(1);
    }
}

static void close_conn(struct conn *c)
{
    if (c->phase == P_CLOSED)
        return;
    if (c->phase == P_OPEN)
        n_open--;
    else
        n_pending--;
    c->phase = P_CLOSED;
    epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    free(c->hs);
    c->hs = NULL;
}

/* -- sending ------------------------------------------------------------- */

/* Write what is queued: the rest of a partly written frame, then control
 * frames, then whole data frames. Returns -1 if the connection died. */
static int flush(struct conn *c)
{
    for (;;) {
        const unsigned char *p;
        size_t n;
        int is_ctrl = 0;
        if (c->pend_frames && c->pend_off) {
            p = batch + c->pend_off;          /* finish the partial frame first */
            n = frame_len - c->pend_off;
        } else if (c->ctrl_off < c->ctrl_len) {
            p = c->ctrl + c->ctrl_off;
            n = c->ctrl_len - c->ctrl_off;
            is_ctrl = 1;
        } else if (c->pend_frames) {
            uint64_t f = c->pend_frames < batch_frames ? c->pend_frames : batch_frames;
            p = batch;
            n = f * frame_len;
        } else {
            break;
        }
        ssize_t w = send(c->fd, p, n, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                break;
            if (errno == EINTR)
                continue;
            error(c, "send: %s", strerror(errno));
            close_conn(c);
            return -1;
        }
        if (is_ctrl) {
            c->ctrl_off += w;
            if (c->ctrl_off == c->ctrl_len)
                c->ctrl_off = c->ctrl_len = 0;
        } else {
            size_t done = c->pend_off + (size_t)w;
            c->pend_frames -= done / frame_len;
            c->pend_off = done % frame_len;
        }
        if ((size_t)w < n)
            break;                            /* the socket buffer is full */
    }
    int want = c->pend_frames || c->ctrl_len;
    if (want != c->want_out) {
        c->want_out = want;
        watch(c, EPOLL_CTL_MOD, EPOLLIN | (want ? EPOLLOUT : 0));
    }
    return 0;
}

/* -- receiving ----------------------------------------------------------- */

/* The last byte of a data frame arrived. */
static void frame_done(struct conn *c)
{
    if (!c->frame_fin) {
        c->in_message = 1;
        return;
    }
    c->in_message = 0;
    if (c->msg_len != (uint64_t)opt_size)
        error(c, "echoed message of %llu bytes, expected %ld", (unsigned long long)c->msg_len, opt_size);
    else if (c->msg_bad)
        error(c, "echoed message differs from the one sent");
    c->msg_len = c->msg_pos = 0;
    c->msg_bad = 0;
    received++;
    if (running)
        c->pend_frames++;                     /* keep K in flight */
}

/* Parse server frames out of b[0..len). Returns -1 if the connection died. */
static int parse(struct conn *c, const unsigned char *b, size_t len)
{
    size_t p = 0;
    while (p < len) {
        if (c->skip) {
            size_t avail = len - p;
            size_t take = c->skip < avail ? (size_t)c->skip : avail;
            if (opt_verify && !c->msg_bad) {
                if (c->msg_pos + take > (uint64_t)opt_size || memcmp(b + p, expected + c->msg_pos, take))
                    c->msg_bad = 1;
            }
            c->msg_pos += take;
            p += take;
            c->skip -= take;
            if (!c->skip)
                frame_done(c);
            continue;
        }
        if (len - p < 2)
            break;
        int b0 = b[p], b1 = b[p + 1];
        int opcode = b0 & 0x0F, fin = b0 & 0x80;
        size_t h = 2;
        uint64_t plen = b1 & 0x7F;
        if (plen == 126) {
            if (len - p < 4)
                break;
            plen = ((uint64_t)b[p + 2] << 8) | b[p + 3];
            h = 4;
        } else if (plen == 127) {
            if (len - p < 10)
                break;
            plen = 0;
            for (int i = 0; i < 8; i++)
                plen = (plen << 8) | b[p + 2 + i];
            h = 10;
        }
        const unsigned char *key = NULL;
        if (b1 & 0x80) {
            if (len - p < h + 4)
                break;
            key = b + p + h;
            h += 4;
            error(c, "masked frame from the server");
        }
        if (b0 & 0x70) {
            error(c, "reserved bits set (%#x) without an extension", b0);
            close_conn(c);
            return -1;
        }
        if (opcode >= 0x8) {
            if (plen > 125 || !fin) {
                error(c, "bad control frame (opcode %#x, %llu bytes)", opcode, (unsigned long long)plen);
                close_conn(c);
                return -1;
            }
            if (len - p < h + plen)
                break;                         /* wait for the whole control frame */
            const unsigned char *payload = b + p + h;
            if (opcode == 0x9 && !shutting_down) { /* ping: answer with a masked pong */
                unsigned char pl[125];
                for (uint64_t i = 0; i < plen; i++)
                    pl[i] = key ? payload[i] ^ key[i & 3] : payload[i];
                if (c->ctrl_len + 14 + plen > CTRL_MAX) {
                    error(c, "too many pings queued; pong dropped");
                } else {
                    c->ctrl_len += build_frame(c->ctrl + c->ctrl_len, 0x8A, pl, plen);
                }
            } else if (opcode == 0x8) {
                unsigned code = plen >= 2 ? ((unsigned)payload[0] ^ (key ? key[0] : 0)) << 8 |
                                                ((unsigned)payload[1] ^ (key ? key[1] : 0))
                                          : 1005;
                error(c, "server sent a close frame (code %u)", code);
                close_conn(c);
                return -1;
            } else if (opcode != 0xA && opcode != 0x9) {
                error(c, "unknown control opcode %#x", opcode);
                close_conn(c);
                return -1;
            }
            p += h + plen;
            continue;
        }
        /* A data frame. */
        if (opcode == 0x0) {
            if (!c->in_message) {
                error(c, "continuation frame without a message");
                close_conn(c);
                return -1;
            }
        } else if (opcode == 0x1 || opcode == 0x2) {
            if (c->in_message) {
                error(c, "new message inside a fragmented message");
                close_conn(c);
                return -1;
            }
            if (opcode != (opt_binary ? 0x2 : 0x1))
                error(c, "echo came back as %s", opcode == 0x1 ? "text" : "binary");
            c->msg_len = c->msg_pos = 0;
            c->msg_bad = 0;
        } else {
            error(c, "unknown data opcode %#x", opcode);
            close_conn(c);
            return -1;
        }
        p += h;
        c->frame_fin = fin != 0;
        c->msg_len += plen;
        c->skip = plen;
        if (!plen)
            frame_done(c);
    }
    size_t rest = len - p;
    if (rest > CARRY_MAX) {
        error(c, "internal: %zu bytes to carry over", rest);
        close_conn(c);
        return -1;
    }
    memmove(c->carry, b + p, rest);
    c->carry_len = rest;
    return 0;
}

static int do_read(struct conn *c)
{
    memcpy(rbuf, c->carry, c->carry_len);
    ssize_t r = recv(c->fd, rbuf + c->carry_len, READ_BUF_SIZE - c->carry_len, 0);
    if (r < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
            return 0;
        error(c, "recv: %s", strerror(errno));
        close_conn(c);
        return -1;
    }
    if (r == 0) {
        error(c, "the server closed the connection");
        close_conn(c);
        return -1;
    }
    return parse(c, rbuf, c->carry_len + (size_t)r);
}

/* -- connecting ---------------------------------------------------------- */

static struct addrinfo *server_addr;

static void start_connect(struct conn *c)
{
    memset(c, 0, sizeof *c);
    c->fd = socket(server_addr->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->fd < 0) {
        perror("loadgen: socket");
        exit(1);
    }
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    c->phase = P_CONNECTING;
    n_pending++;
    if (connect(c->fd, server_addr->ai_addr, server_addr->ai_addrlen) < 0 && errno != EINPROGRESS) {
        error(c, "connect: %s", strerror(errno));
        close(c->fd);
        c->phase = P_CLOSED;
        n_pending--;
        return;
    }
    watch(c, EPOLL_CTL_ADD, EPOLLOUT);
    c->want_out = 1;
}

static void on_connected(struct conn *c)
{
    int err = 0;
    socklen_t el = sizeof err;
    getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &el);
    if (err) {
        error(c, "connect: %s", strerror(err));
        close_conn(c);
        return;
    }
    c->phase = P_HANDSHAKE;
    c->hs = malloc(HS_MAX + 1);
    c->hs_len = 0;
    c->req_off = 0;
}

static void send_request(struct conn *c)
{
    while (c->req_off < request_len) {
        ssize_t w = send(c->fd, request + c->req_off, request_len - c->req_off, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return;
            error(c, "send: %s", strerror(errno));
            close_conn(c);
            return;
        }
        c->req_off += w;
    }
    c->want_out = 0;
    watch(c, EPOLL_CTL_MOD, EPOLLIN);
}

static void read_response(struct conn *c)
{
    ssize_t r = recv(c->fd, c->hs + c->hs_len, HS_MAX - c->hs_len, 0);
    if (r < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
            return;
        error(c, "recv during the handshake: %s", strerror(errno));
        close_conn(c);
        return;
    }
    if (r == 0) {
        error(c, "the server closed the connection during the handshake");
        close_conn(c);
        return;
    }
    c->hs_len += r;
    c->hs[c->hs_len] = 0;
    char *end = strstr(c->hs, "\r\n\r\n");
    if (!end) {
        if (c->hs_len == HS_MAX) {
            error(c, "handshake response longer than %d bytes", HS_MAX);
            close_conn(c);
        }
        return;
    }
    if (strncmp(c->hs, "HTTP/1.1 101", 12) && strncmp(c->hs, "HTTP/1.0 101", 12)) {
        char *eol = strstr(c->hs, "\r\n");
        *eol = 0;
        error(c, "handshake refused: %s", c->hs);
        close_conn(c);
        return;
    }
    /* Upgraded. Bytes after the response already belong to the WebSocket. */
    size_t head = (size_t)(end + 4 - c->hs);
    size_t extra = c->hs_len - head;
    unsigned char tmp[HS_MAX];
    memcpy(tmp, c->hs + head, extra);
    free(c->hs);
    c->hs = NULL;
    c->phase = P_OPEN;
    n_pending--;
    n_open++;
    c->pend_frames = (uint64_t)opt_inflight;
    if (extra && parse(c, tmp, extra) < 0)
        return;
    flush(c);
}

static void handle_event(struct conn *c, uint32_t ev)
{
    switch (c->phase) {
    case P_CONNECTING:
        on_connected(c);
        if (c->phase == P_HANDSHAKE)
            send_request(c);
        break;
    case P_HANDSHAKE:
        if (ev & EPOLLOUT)
            send_request(c);
        if (c->phase == P_HANDSHAKE && (ev & (EPOLLIN | EPOLLERR | EPOLLHUP)))
            read_response(c);
        break;
    case P_OPEN:
        if (ev & (EPOLLIN | EPOLLERR | EPOLLHUP)) {
            if (do_read(c) < 0)
                break;
        }
        flush(c);
        break;
    case P_CLOSED:
        break;
    }
}

/* After the measurement: stop sending data, send a close frame (1000) on
 * every open connection and give the server up to a second to finish the
 * closing handshake, so servers do not log aborted connections. */
static void close_politely(void)
{
    static const unsigned char going[2] = {0x03, 0xE8};
    running = 0;
    shutting_down = 1;
    for (long i = 0; i < opt_conns; i++) {
        struct conn *c = &conns[i];
        if (c->phase != P_OPEN)
            continue;
        c->pend_frames = c->pend_off ? 1 : 0; /* finish a partly written frame */
        if (c->ctrl_len + 14 + 2 > CTRL_MAX) {
            close_conn(c);
            continue;
        }
        c->ctrl_len += build_frame(c->ctrl + c->ctrl_len, 0x88, going, 2);
        flush(c);
    }
    double deadline = now() + 1.0;
    struct epoll_event events[256];
    while (n_open > 0) {
        int timeout = (int)((deadline - now()) * 1000);
        if (timeout <= 0)
            break;
        int n = epoll_wait(ep, events, 256, timeout);
        if (n < 0 && errno != EINTR)
            break;
        for (int i = 0; i < n; i++)
            handle_event(events[i].data.ptr, events[i].events);
    }
}

/* -- main ---------------------------------------------------------------- */

static void usage(const char *argv0)
{
    fprintf(stderr,
            "usage: %s --port PORT [--host HOST] [--path PATH] [--connections N]\n"
            "          [--inflight K] [--size BYTES] [--warmup SECONDS] [--duration SECONDS]\n"
            "          [--binary] [--connect-timeout SECONDS] [--marks] [--verify]\n",
            argv0);
    exit(1);
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"host", required_argument, 0, 'H'},
        {"port", required_argument, 0, 'p'},
        {"path", required_argument, 0, 'u'},
        {"connections", required_argument, 0, 'c'},
        {"inflight", required_argument, 0, 'k'},
        {"size", required_argument, 0, 's'},
        {"warmup", required_argument, 0, 'w'},
        {"duration", required_argument, 0, 'd'},
        {"binary", no_argument, 0, 'b'},
        {"connect-timeout", required_argument, 0, 't'},
        {"marks", no_argument, 0, 'm'},
        {"verify", no_argument, 0, 'v'},
        {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0},
    };
    int o;
    while ((o = getopt_long(argc, argv, "H:p:u:c:k:s:w:d:bt:mvh", longopts, NULL)) != -1) {
        switch (o) {
        case 'H': opt_host = optarg; break;
        case 'p': opt_port = optarg; break;
        case 'u': opt_path = optarg; break;
        case 'c': opt_conns = atol(optarg); break;
        case 'k': opt_inflight = atol(optarg); break;
        case 's': opt_size = atol(optarg); break;
        case 'w': opt_warmup = atof(optarg); break;
        case 'd': opt_duration = atof(optarg); break;
        case 'b': opt_binary = 1; break;
        case 't': opt_connect_timeout = atof(optarg); break;
        case 'm': opt_marks = 1; break;
        case 'v': opt_verify = 1; break;
        default: usage(argv[0]);
        }
    }
    if (!opt_port || opt_conns < 1 || opt_inflight < 1 || opt_size < 0 || opt_warmup < 0 ||
        opt_duration <= 0 || optind != argc)
        usage(argv[0]);

    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    int gai = getaddrinfo(opt_host, opt_port, &hints, &server_addr);
    if (gai) {
        fprintf(stderr, "loadgen: %s:%s: %s\n", opt_host, opt_port, gai_strerror(gai));
        return 1;
    }

    /* The message, masked, opt_inflight times back to back (capped at
     * 16 MiB: flush() loops when more frames are pending than it holds). */
    unsigned char *payload = malloc((size_t)opt_size + 1);
    for (long i = 0; i < opt_size; i++)
        payload[i] = (unsigned char)('a' + i % 26);
    unsigned char *one = malloc((size_t)opt_size + 14);
    frame_len = build_frame(one, opt_binary ? 0x82 : 0x81, payload, (uint64_t)opt_size);
    batch_frames = (size_t)opt_inflight;
    if (batch_frames * frame_len > (16u << 20))
        batch_frames = (16u << 20) / frame_len ? (16u << 20) / frame_len : 1;
    batch = malloc(batch_frames * frame_len);
    for (size_t i = 0; i < batch_frames; i++)
        memcpy(batch + i * frame_len, one, frame_len);
    free(one);
    expected = payload;
    rbuf = malloc(READ_BUF_SIZE);

    unsigned char nonce[16];
    fill_random(nonce, sizeof nonce);
    static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    char key[25];
    for (int i = 0, j = 0; i < 16; i += 3) {
        uint32_t v = nonce[i] << 16 | (i + 1 < 16 ? nonce[i + 1] << 8 : 0) | (i + 2 < 16 ? nonce[i + 2] : 0);
        key[j++] = b64[v >> 18 & 63];
        key[j++] = b64[v >> 12 & 63];
        key[j++] = i + 1 < 16 ? b64[v >> 6 & 63] : '=';
        key[j++] = i + 2 < 16 ? b64[v & 63] : '=';
    }
    key[24] = 0;
    request_len = (size_t)snprintf(request, sizeof request,
                                   "GET %s HTTP/1.1\r\nHost: %s:%s\r\nUpgrade: websocket\r\n"
                                   "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
                                   "Sec-WebSocket-Version: 13\r\n\r\n",
                                   opt_path, opt_host, opt_port, key);

    ep = epoll_create1(EPOLL_CLOEXEC);
    conns = calloc((size_t)opt_conns, sizeof *conns);
    for (long i = 0; i < opt_conns; i++)
        conns[i].phase = P_CLOSED;

    /* Connect in waves of at most 32 so a small listen backlog never drops
     * SYNs (which would cost a one-second retransmit). */
    const long wave = 32;
    long next = 0;
    double deadline = now() + opt_connect_timeout;
    struct epoll_event events[256];
    running = 1;
    double t_warm = 0, t_start = 0, t_end = 0, cpu_start = 0, cpu_end = 0;
    uint64_t rx_start = 0, rx_end = 0;
    int stage = 0; /* 0 connecting, 1 warm-up, 2 measuring */

    for (;;) {
        while (stage == 0 && next < opt_conns && n_pending < wave)
            start_connect(&conns[next++]);
        double t = now();
        if (stage == 0 && ((next == opt_conns && n_pending == 0) || t >= deadline)) {
            if (n_pending) {
                for (long i = 0; i < opt_conns; i++)
                    if (conns[i].phase == P_CONNECTING || conns[i].phase == P_HANDSHAKE) {
                        error(&conns[i], "not open after %.0f s", opt_connect_timeout);
                        close_conn(&conns[i]);
                    }
                for (; next < opt_conns; next++)
                    error(&conns[next], "never attempted (connect timeout)");
            }
            if (n_open == 0) {
                fprintf(stderr, "loadgen: no connection could be opened\n");
                return 2;
            }
            stage = 1;
            t_warm = t;
        }
        if (stage == 1 && t >= t_warm + opt_warmup) {
            stage = 2;
            t_start = t;
            cpu_start = cpu_seconds();
            rx_start = received;
            if (opt_marks) {
                fputs("MEASURE_START\n", stderr);
                fflush(stderr);
            }
        }
        if (stage == 2 && t >= t_start + opt_duration) {
            rx_end = received;
            cpu_end = cpu_seconds();
            t_end = now();
            if (opt_marks) {
                fputs("MEASURE_END\n", stderr);
                fflush(stderr);
            }
            break;
        }
        if (stage >= 1 && n_open == 0) {
            fprintf(stderr, "loadgen: every connection was lost\n");
            rx_end = received;
            cpu_end = cpu_seconds();
            t_end = now();
            if (stage == 1) {
                t_start = t_end;
                cpu_start = cpu_end;
                rx_start = rx_end;
            }
            break;
        }
        double wake = stage == 0 ? deadline : stage == 1 ? t_warm + opt_warmup : t_start + opt_duration;
        int timeout = (int)((wake - t) * 1000) + 1;
        if (timeout < 0)
            timeout = 0;
        int n = epoll_wait(ep, events, 256, timeout);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            perror("loadgen: epoll_wait");
            return 1;
        }
        for (int i = 0; i < n; i++)
            handle_event(events[i].data.ptr, events[i].events);
    }

    double wall = t_end - t_start;
    uint64_t msgs = rx_end - rx_start;
    double rate = wall > 0 ? msgs / wall : 0;
    double cpu = wall > 0 ? (cpu_end - cpu_start) / wall * 100 : 0;
    printf("{\"messages_per_s\": %.1f, \"connections\": %ld, \"connections_open\": %ld, "
           "\"inflight\": %ld, \"size\": %ld, \"binary\": %s, \"duration\": %.3f, \"warmup\": %.3f, "
           "\"messages\": %llu, \"payload_mb_per_s\": %.2f, \"errors\": %llu, "
           "\"loadgen_cpu_percent\": %.1f}\n",
           rate, opt_conns, n_open, opt_inflight, opt_size, opt_binary ? "true" : "false", wall,
           opt_warmup, (unsigned long long)msgs, rate * (double)opt_size / 1e6,
           (unsigned long long)errors, cpu);
    fflush(stdout);
    close_politely();
    return 0;
}
