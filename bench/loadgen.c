/*
 * loadgen: a WebSocket load generator (RFC 6455 client side) for bench/.
 *
 * One thread, non-blocking sockets, level-triggered epoll. It opens N
 * connections to ws://HOST:PORT/PATH (HTTP/1.1 upgrade; anything but a
 * "HTTP/1.x 101" status line is an error), then, depending on --mode:
 *
 *   echo (the default): keeps K masked messages of S bytes in flight on
 *       every connection: K are sent at once, and each complete message the
 *       server sends back is answered with one more. After a warm-up of W
 *       seconds it counts complete messages received for D seconds.
 *
 *   rate: sends --rate messages per second in all (spread round-robin over
 *       the connections, paced by a timerfd, not in bursts) and times every
 *       round trip: echoes come back in order on a connection, so each one
 *       is matched with the send time of the oldest message outstanding
 *       there. Reports p50/p90/p99/p99.9/max round-trip times of the echoes
 *       received during the measured window.
 *
 *   idle: opens N connections (--concurrency at a time) and times it
 *       (handshakes/s); optionally sends --idle-messages messages on each
 *       and waits for their echoes (e.g. to make a server allocate its
 *       permessage-deflate state); then holds them for --hold seconds,
 *       answering the server's pings. With --marks it prints "OPEN" on
 *       stderr once all are open, then "TICK <seconds> <pings> <open>" every
 *       second of the hold, so a driver can sample the server meanwhile.
 *
 *   fanout: N subscribers and one publisher on a pub/sub endpoint speaking
 *       {"action":"subscribe","topic":T} / {"action":"publish","topic":T,
 *       "data":D} (D: S bytes of text). After every subscriber has seen a
 *       message (sync) and the line is quiet, it sends --bursts bursts of
 *       --burst publishes (one send() each) and times, per burst, how long
 *       until the FIRST subscriber receives the first message and until
 *       every subscriber has received every message. Then it keeps K
 *       publishes in flight (a publish completes when every subscriber has
 *       it) and counts deliveries (messages received by subscribers) for D
 *       seconds after W seconds of warm-up.
 *
 *   resume: N subscribers reconnecting at once, each behind on a topic of a
 *       pub/sub endpoint with positions (txpulse's hub, issue #15). It opens
 *       N connections (--concurrency at a time), waits --warmup seconds
 *       (nothing may arrive meanwhile), then sends on every connection, in
 *       one pass, {"action":"subscribe","topic":T,"since":{"offset":
 *       --since-offset,"epoch":--epoch}} and times until every connection
 *       has received the answer ({"subscribed":T,"recovered":true,
 *       "offset":TOP,...}, with TOP = since + K) and then the K (--expect)
 *       replayed deliveries, whose "offset"s must run since+1 .. since+K in
 *       order (each message is kept and checked: a refused recovery, a gap,
 *       a duplicate, a message too many is an error). Reports the time from
 *       the first send until the last connection had its K-th delivery, the
 *       per-connection resume times (its send to its K-th delivery,
 *       p50/p90/p99/max) and, with --server-pid PID (and --server-core C),
 *       the server's CPU seconds (/proc/PID/stat, user + system) and its
 *       core's busy seconds (/proc/stat, softirq included) over exactly that
 *       window. Gives up --duration seconds after the first send. With
 *       --marks: "OPEN <seconds> <open>" on stderr once all are open (the
 *       warm-up begins: time to attach a profiler), "RESUME_START" and
 *       "RESUME_END" at the edges of the resume.
 *
 * and prints one JSON line on stdout, e.g. for echo:
 *
 *   {"messages_per_s":..., "connections":N, "inflight":K, "size":S,
 *    "duration":D, "errors":..., "loadgen_cpu_percent":..., ...}
 *
 * loadgen_cpu_percent is getrusage(RUSAGE_SELF) user+sys over the measured
 * window (the hold, in idle mode) divided by its wall time: near 100 means
 * the generator itself is the bottleneck and the figure is a lower bound for
 * the server.
 *
 * Frames from the server are parsed properly: 2/4/10-byte headers (a masking
 * key is skipped, but counted as an error: servers must not mask), data
 * frames and fragmented messages (only a complete text or binary message
 * counts, and in echo/rate/idle mode its size is checked against S), pings
 * answered with a masked pong, pongs ignored, a close frame counted as an
 * error (the server should not close during the run) and the connection
 * dropped.
 *
 * --deflate offers permessage-deflate (RFC 7692) with client_no_context_takeover:
 * every message sent is the same compressed frame (compressed once at
 * start-up), while the server's replies are inflated per connection (zlib,
 * raw deflate, context kept unless the server negotiated
 * server_no_context_takeover) and checked like uncompressed ones. A server
 * that does not accept the offer is an error.
 *
 * Cheap by construction, so that it can drive a Python server from one core:
 *   - payloads are not buffered: a data frame's payload is skipped (or
 *     inflated and compared) as it streams in (without --verify, the middle
 *     of a large payload is discarded in the kernel: recv(MSG_TRUNC), no
 *     copy), only an incomplete header or
 *     control frame (at most 139 bytes) is carried over to the next read, in
 *     a small per-connection buffer; reads go to one shared buffer;
 *   - every message is the same masked frame (one random masking key chosen
 *     at start-up: the server still unmasks every byte), prebuilt K times
 *     back to back, so sending n messages is one send() of a slice of it.
 *
 * Build: gcc -O2 -o bench/loadgen bench/loadgen.c -lz
 * Usage: bench/loadgen --port 8080 [--host 127.0.0.1] [--path /echo]
 *            [--mode echo|rate|idle|fanout|resume] [--connections 64] [--inflight 32]
 *            [--size 32] [--warmup 2] [--duration 5] [--binary]
 *            [--connect-timeout 10] [--marks] [--verify] [--deflate]
 *            [--rate 10000] [--concurrency 32] [--hold 10] [--idle-messages 0]
 *            [--burst 100] [--bursts 5] [--topic bench]
 *            [--since-offset N --epoch E --expect K] [--server-pid PID] [--server-core C]
 * --verify compares every echoed payload byte with what was sent (costs
 * generator CPU; without it only the message's type and size are checked).
 * --marks prints "MEASURE_START" and "MEASURE_END" lines on stderr at the
 * window's edges (so a driver can sample the server's CPU time there).
 * The soft open-files limit is raised to the hard one (idle mode holds
 * thousands of sockets).
 * Exit status: 0 on success (even with errors, which the JSON reports),
 * 1 on bad arguments, 2 when no connection could be opened.
 */

#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <math.h>
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
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#define READ_BUF_SIZE (1 << 20)
#define CARRY_MAX 160      /* > 14-byte header + 125-byte control payload */
#define CTRL_MAX 1024      /* queued pongs (and a subscriber's subscribe frame) */
#define HS_MAX 4096        /* the server's handshake response */
#define MAX_ERRORS_SHOWN 10
#define TS_RING 4096       /* rate mode: send times of messages in flight, per connection */
#define INFLATE_CHUNK 65536

enum phase { P_CONNECTING, P_HANDSHAKE, P_OPEN, P_CLOSED };
enum mode { M_ECHO, M_RATE, M_IDLE, M_FANOUT, M_RESUME };
enum fanout_phase { F_WAIT, F_SYNC, F_DRAIN, F_BURST, F_GAP, F_RUN };

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
    uint64_t msg_out;      /* --deflate: inflated bytes of the current message */
    int msg_bad;           /* --verify: the payload differs from what was sent */
    int msg_compressed;    /* --deflate: RSV1 was set on the message's first frame */
    int no_ctx;            /* --deflate: the server negotiated server_no_context_takeover */
    z_stream *inf;         /* --deflate: inflater for the server's messages (lazy) */
    uint64_t rx;           /* complete messages received (since the fan-out reset) */
    int is_pub;            /* fanout: the publisher */
    /* send side */
    uint64_t pend_frames;  /* data frames not yet fully written */
    size_t pend_off;       /* bytes of the first of them already written */
    unsigned char ctrl[CTRL_MAX]; /* control frames, written at a frame boundary */
    size_t ctrl_len, ctrl_off;
    int want_out;          /* EPOLLOUT currently requested */
    /* rate mode */
    double *ts;            /* ring of send times of messages in flight */
    uint32_t ts_head, ts_tail;
    /* resume mode */
    unsigned char *mbuf;   /* the message being received, kept whole (NUL-terminated) */
    size_t mcap;
    int rs;                /* RS_IDLE, RS_ANSWER (subscribe sent), RS_REPLAY, RS_DONE */
    uint64_t next_offset;  /* the offset the next replayed delivery must have */
    double t_sent;         /* when its subscribe went out */
};

enum resume_state { RS_IDLE, RS_ANSWER, RS_REPLAY, RS_DONE };
#define MBUF_MAX (1u << 20)  /* resume mode: largest message kept */

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
static int opt_mode = M_ECHO;
static double opt_rate = 10000;
static long opt_concurrency = 32;
static double opt_hold = 10.0;
static long opt_idle_messages = 0;
static int opt_deflate = 0;
static long opt_burst = 100;
static long opt_bursts = 5;
static const char *opt_topic = "bench";
static long long opt_since = -1;        /* resume: --since-offset */
static const char *opt_epoch = NULL;    /* resume: --epoch */
static long opt_expect = -1;            /* resume: --expect (deliveries per connection) */
static long opt_server_pid = 0;         /* --server-pid: sample its CPU time (resume mode) */
static int opt_server_core = -1;        /* --server-core: sample that core's busy time (resume mode) */

/* -- global state ------------------------------------------------------- */
static int ep;
static struct conn *conns;
static long n_conns;              /* opt_conns, plus the publisher in fanout mode */
static unsigned char *batch;      /* copies of the masked frame */
static unsigned char *expected;   /* the unmasked payload (for --verify) */
static size_t frame_len;          /* bytes of one masked frame */
static size_t batch_frames;       /* frames in `batch` */
static unsigned char *rbuf;       /* shared read buffer */
static unsigned char *zbuf;       /* shared inflate output buffer */
static char request[1024];
static size_t request_len;
static uint64_t received;         /* complete messages received, all connections */
static uint64_t errors;
static uint64_t pings;            /* pings received */
static long n_open, n_pending;    /* open connections; still connecting/handshaking */
static int running;               /* messages received get answered (echo mode) */
static int shutting_down;         /* results printed; closing politely */
static int stage;                 /* 0 connecting, 1 warm-up, 2 measuring, 3 idle hold */
/* rate mode */
static double *lat;               /* round-trip times (s) received while measuring */
static size_t lat_n, lat_cap;
static uint64_t rate_sent, rate_skipped;
static double rate_t0;
static long rate_next;            /* round-robin cursor */
static int timer_fd = -1;
static int timer_tag;             /* epoll data.ptr of the timer */
/* idle mode */
static long idle_done;            /* connections that got all their idle-message echoes */
/* fanout mode */
static struct conn *pub;
static int fan_phase = F_WAIT;
static long subs_open, subs_ready;
static uint64_t deliveries;       /* messages received by subscribers */
static uint64_t pub_sent;         /* publishes queued since the reset */
static uint64_t ring_base, oldest;
static uint32_t *ring;            /* deliveries per publish in flight (opt_inflight slots) */
static double last_delivery;
static double burst_t0, burst_first;
static uint64_t burst_target;
static double *burst_first_ms, *burst_all_ms;
static long bursts_done;
/* resume mode */
static long resume_sent, resume_done, resume_failed; /* connections asked; done; lost or refused */
static double resume_t0, resume_t_sent, resume_t_last; /* first send; last send; last K-th delivery */
static double *resume_ms;                 /* per connection: its send to its K-th delivery */
static double srv_cpu0 = -1, srv_cpu1 = -1, srv_user0, srv_user1, core0 = -1, core1 = -1;
static double clk_tck = 100;

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

/* x per second over `wall` seconds (0 for an empty window) */
static double per_s(double x, double wall)
{
    return wall > 0 ? x / wall : 0;
}

static void verror(struct conn *c, const char *fmt, va_list ap)
{
    if (shutting_down)
        return;                           /* the results are already out */
    errors++;
    if (errors <= MAX_ERRORS_SHOWN) {
        fprintf(stderr, "loadgen: connection %ld: ", c ? (long)(c - conns) : -1L);
        vfprintf(stderr, fmt, ap);
        fputc('\n', stderr);
        if (errors == MAX_ERRORS_SHOWN)
            fprintf(stderr, "loadgen: (further errors only counted)\n");
    }
}

/* Count an error (the first few are shown on stderr). */
static void __attribute__((format(printf, 2, 3))) error(struct conn *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    verror(c, fmt, ap);
    va_end(ap);
}

static void close_conn(struct conn *c);

/* An error that ends the connection: count it, drop the connection, return -1. */
static int __attribute__((format(printf, 2, 3))) fail(struct conn *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    verror(c, fmt, ap);
    va_end(ap);
    close_conn(c);
    return -1;
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

/* Raw deflate of one message from a fresh stream (client_no_context_takeover),
 * with the 00 00 ff ff tail of the sync flush removed (RFC 7692 §7.2.1). */
static unsigned char *deflate_message(const unsigned char *in, size_t len, size_t *out_len)
{
    z_stream z;
    memset(&z, 0, sizeof z);
    if (deflateInit2(&z, Z_DEFAULT_COMPRESSION, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
        fprintf(stderr, "loadgen: deflateInit2 failed\n");
        exit(1);
    }
    size_t cap = deflateBound(&z, len) + 16;
    unsigned char *out = malloc(cap);
    z.next_in = (unsigned char *)in;
    z.avail_in = (uInt)len;
    z.next_out = out;
    z.avail_out = (uInt)cap;
    if (deflate(&z, Z_SYNC_FLUSH) != Z_OK || z.avail_in) {
        fprintf(stderr, "loadgen: deflate failed\n");
        exit(1);
    }
    size_t n = cap - z.avail_out;
    deflateEnd(&z);
    if (n < 4 || memcmp(out + n - 4, "\x00\x00\xff\xff", 4)) {
        fprintf(stderr, "loadgen: unexpected deflate output\n");
        exit(1);
    }
    *out_len = n - 4;
    return out;
}

static void watch(struct conn *c, int op, uint32_t events)
{
    struct epoll_event ev = {.events = events, .data.ptr = c};
    if (epoll_ctl(ep, op, c->fd, &ev) < 0) {
        perror("loadgen: epoll_ctl");
        exit(1);
    }
}

static void fanout_advance(void);

static void close_conn(struct conn *c)
{
    if (c->phase == P_CLOSED)
        return;
    if (c->phase == P_OPEN) {
        n_open--;
        if (opt_mode == M_FANOUT && !c->is_pub) {
            subs_open--;
            if (c->rx && subs_ready)
                subs_ready--;
        }
    } else {
        n_pending--;
    }
    c->phase = P_CLOSED;
    epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    free(c->hs);
    c->hs = NULL;
    if (c->inf) {
        inflateEnd(c->inf);
        free(c->inf);
        c->inf = NULL;
    }
    free(c->ts);
    c->ts = NULL;
    free(c->mbuf);
    c->mbuf = NULL;
    c->mcap = 0;
    if (opt_mode == M_RESUME && (c->rs == RS_ANSWER || c->rs == RS_REPLAY)) {
        c->rs = RS_DONE;
        resume_failed++;                  /* it will never resume */
    }
    if (opt_mode == M_FANOUT && fan_phase == F_RUN && !shutting_down)
        fanout_advance();                 /* one subscriber fewer to wait for */
}

/* -- sending ------------------------------------------------------------- */

/* send() what the socket takes of p[0..n): the bytes written, 0 if its
 * buffer is full, -1 if the connection died (it is closed). */
static ssize_t send_some(struct conn *c, const void *p, size_t n)
{
    for (;;) {
        ssize_t w = send(c->fd, p, n, MSG_NOSIGNAL);
        if (w >= 0)
            return w;
        if (errno == EAGAIN || errno == EWOULDBLOCK)
            return 0;
        if (errno != EINTR)
            return fail(c, "send: %s", strerror(errno));
    }
}

/* Write what is queued: the rest of a partly written frame, then control
 * frames, then whole data frames. Returns -1 if the connection died. */
static int flush(struct conn *c)
{
    if (c->phase != P_OPEN)
        return -1;
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
        ssize_t w = send_some(c, p, n);
        if (w < 0)
            return -1;
        if (w == 0)
            break;                            /* the socket buffer is full */
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

/* -- fan-out bookkeeping -------------------------------------------------- */

/* Queue n more publishes on the publisher. */
static void publish(uint64_t n)
{
    if (!pub || pub->phase != P_OPEN)
        return;
    pub->pend_frames += n;
    pub_sent += n;
    flush(pub);
}

/* Retire the publishes every open subscriber has received and keep
 * opt_inflight of them in flight. */
static void fanout_advance(void)
{
    uint64_t k = (uint64_t)opt_inflight;
    while (oldest < pub_sent && ring[(oldest - ring_base) % k] >= (uint32_t)(subs_open > 0 ? subs_open : 1)) {
        ring[(oldest - ring_base) % k] = 0;
        oldest++;
    }
    if (running && pub_sent - oldest < k)
        publish(k - (pub_sent - oldest));
}

static void fanout_delivery(struct conn *c)
{
    if (fan_phase == F_WAIT)
        return;                           /* a subscription's answer ({"subscribed": T, ...}),
                                             before the sync: not a delivery */
    uint64_t g = c->rx++;                 /* index of this message since the reset */
    deliveries++;
    switch (fan_phase) {
    case F_SYNC:
    case F_DRAIN:
        last_delivery = now();
        if (g == 0)
            subs_ready++;
        break;
    case F_BURST:
        if (burst_first == 0)
            burst_first = now();
        break;
    case F_RUN:
        if (g >= ring_base) {
            uint64_t k = (uint64_t)opt_inflight;
            ring[(g - ring_base) % k]++;
            if (g == oldest)
                fanout_advance();
        }
        break;
    default:
        break;
    }
}

/* -- receiving ----------------------------------------------------------- */

/* recv() returned r <= 0: 0 if that only means "nothing more for now", -1 if
 * the connection is gone (it is closed; `during` goes into the message). */
static int recv_trouble(struct conn *c, ssize_t r, const char *during)
{
    if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
        return 0;
    if (r < 0)
        return fail(c, "recv%s: %s", during, strerror(errno));
    return fail(c, "the server closed the connection%s", during);
}

/* Inflate len bytes of a compressed message's payload (or its 00 00 ff ff
 * tail) and compare the output with what was sent. */
static int inflate_chunk(struct conn *c, const unsigned char *in, size_t len)
{
    if (!c->inf) {
        c->inf = calloc(1, sizeof *c->inf);
        if (inflateInit2(c->inf, -15) != Z_OK) {
            error(c, "inflateInit2 failed");
            return -1;
        }
    }
    z_stream *z = c->inf;
    z->next_in = (unsigned char *)in;
    z->avail_in = (uInt)len;
    do {
        z->next_out = zbuf;
        z->avail_out = INFLATE_CHUNK;
        int r = inflate(z, Z_SYNC_FLUSH);
        if (r != Z_OK && r != Z_BUF_ERROR) {
            error(c, "inflate: %s", z->msg ? z->msg : "error");
            return -1;
        }
        size_t produced = INFLATE_CHUNK - z->avail_out;
        if (opt_verify && !c->msg_bad && produced && opt_mode != M_FANOUT && opt_mode != M_RESUME) {
            if (c->msg_out + produced > (uint64_t)opt_size || memcmp(zbuf, expected + c->msg_out, produced))
                c->msg_bad = 1;
        }
        c->msg_out += produced;
        if (r == Z_BUF_ERROR)
            break;
    } while (z->avail_in || z->avail_out == 0);
    return 0;
}

/* -- resume mode ----------------------------------------------------------- */

/* Append a piece of the current message's payload to c->mbuf (resume mode
 * keeps every message whole, to check it). Returns -1 if it is too large
 * (the connection is closed). */
static int keep_payload(struct conn *c, const unsigned char *p, size_t n)
{
    uint64_t need = c->msg_pos + n + 1;
    if (need > MBUF_MAX)
        return fail(c, "a message over %u bytes", MBUF_MAX);
    if (need > c->mcap) {
        size_t cap = c->mcap ? c->mcap : 512;
        while (cap < need)
            cap *= 2;
        c->mbuf = realloc(c->mbuf, cap);
        c->mcap = cap;
    }
    memcpy(c->mbuf + c->msg_pos, p, n);
    return 0;
}

/* The value after the LAST `"key":` in s (JSON, optional blanks around the
 * colon): a pointer to it, or NULL. The hub appends a delivery's position
 * at the end of its envelope, after the application's data. */
static const char *json_last(const char *s, const char *key)
{
    char pat[64];
    snprintf(pat, sizeof pat, "\"%s\"", key);
    const char *found = NULL;
    for (const char *q = strstr(s, pat); q; q = strstr(q + 1, pat))
        found = q;
    if (!found)
        return NULL;
    found += strlen(pat);
    while (*found == ' ' || *found == '\t' || *found == '\n' || *found == '\r')
        found++;
    if (*found != ':')
        return NULL;
    found++;
    while (*found == ' ' || *found == '\t' || *found == '\n' || *found == '\r')
        found++;
    return found;
}

/* An integer value, or -1 if there is none. */
static long long json_int(const char *v)
{
    if (!v || *v < '0' || *v > '9')
        return -1;
    return strtoll(v, NULL, 10);
}

/* Whether a string value v (pointing at its opening quote) equals want. */
static int json_str_is(const char *v, const char *want)
{
    size_t n = strlen(want);
    return v && v[0] == '"' && !strncmp(v + 1, want, n) && v[1 + n] == '"';
}

static void resume_finished(struct conn *c)
{
    double t = now();
    c->rs = RS_DONE;
    resume_ms[resume_done++] = (t - c->t_sent) * 1e3;
    resume_t_last = t;
}

/* A complete message arrived in resume mode (whole in c->mbuf): the answer
 * to the subscribe, or a replayed delivery; check it. Returns -1 if the
 * connection died. */
static int resume_message(struct conn *c)
{
    size_t n = (size_t)c->msg_pos;
    if (!c->mbuf) {                       /* an empty message */
        c->mbuf = malloc(1);
        c->mcap = 1;
    }
    c->mbuf[n] = 0;
    const char *m = (const char *)c->mbuf;
    c->rx++;
    if (c->rs == RS_ANSWER) {
        const char *topic = json_last(m, "subscribed");
        const char *rec = json_last(m, "recovered");
        if (!topic) {
            error(c, "expected the answer to the subscribe, got: %.200s", m);
            c->rs = RS_DONE;
            resume_failed++;
            return 0;
        }
        if (!json_str_is(topic, opt_topic) || !rec || strncmp(rec, "true", 4)) {
            error(c, "the recovery was refused: %.200s", m);
            c->rs = RS_DONE;
            resume_failed++;
            return 0;
        }
        long long top = json_int(json_last(m, "offset"));
        const char *epoch = json_last(m, "epoch");
        if (top != opt_since + opt_expect || !json_str_is(epoch, opt_epoch))
            error(c, "answered offset %lld (expected %lld), epoch %.*s (expected \"%s\")", top, opt_since + opt_expect,
                  epoch && *epoch == '"' ? (int)strcspn(epoch + 1, "\"") + 2 : 6, epoch ? epoch : "(none)", opt_epoch);
        c->next_offset = (uint64_t)opt_since + 1;
        c->rs = RS_REPLAY;
        if (opt_expect == 0)
            resume_finished(c);
        return 0;
    }
    if (c->rs == RS_REPLAY) {
        long long offset = json_int(json_last(m, "offset"));
        const char *epoch = json_last(m, "epoch");
        if (!json_last(m, "data") || offset < 0) {
            error(c, "expected a replayed delivery, got: %.200s", m);
        } else if ((uint64_t)offset != c->next_offset) {
            error(c, "replayed offset %lld, expected %llu (a gap or a duplicate)", offset,
                  (unsigned long long)c->next_offset);
        } else if (!json_str_is(epoch, opt_epoch)) {
            error(c, "replayed delivery of another epoch: %.200s", m);
        }
        deliveries++;
        c->next_offset = offset >= 0 ? (uint64_t)offset + 1 : c->next_offset + 1;
        if (c->next_offset > (uint64_t)(opt_since + opt_expect))
            resume_finished(c);
        return 0;
    }
    error(c, "an unexpected message (%s): %.200s", c->rs == RS_DONE ? "after its replay" : "before its subscribe", m);
    return 0;
}

/* The last byte of a data frame arrived. Returns -1 if the connection died. */
static int frame_done(struct conn *c)
{
    if (!c->frame_fin) {
        c->in_message = 1;
        return 0;
    }
    c->in_message = 0;
    uint64_t size = c->msg_len;
    if (c->msg_compressed) {
        static const unsigned char tail[4] = {0x00, 0x00, 0xff, 0xff};
        if (inflate_chunk(c, tail, 4) < 0) {
            close_conn(c);
            return -1;
        }
        size = c->msg_out;
        if (c->no_ctx)
            inflateReset(c->inf);
    }
    if (opt_mode == M_RESUME) {
        if (resume_message(c) < 0)
            return -1;
    } else if (opt_mode == M_FANOUT) {
        if (c->is_pub)
            error(c, "the publisher received a message (%llu bytes; an error reply?)", (unsigned long long)size);
        else
            fanout_delivery(c);
    } else {
        if (size != (uint64_t)opt_size)
            error(c, "echoed message of %llu bytes, expected %ld", (unsigned long long)size, opt_size);
        else if (c->msg_bad)
            error(c, "echoed message differs from the one sent");
        c->rx++;
        if (opt_mode == M_RATE && c->ts) {
            if (c->ts_head == c->ts_tail) {
                error(c, "an echo nobody asked for");
            } else {
                double sent = c->ts[c->ts_tail % TS_RING];
                c->ts_tail++;
                if (stage == 2) {
                    if (lat_n == lat_cap) {
                        lat_cap = lat_cap ? lat_cap * 2 : 65536;
                        lat = realloc(lat, lat_cap * sizeof *lat);
                    }
                    lat[lat_n++] = now() - sent;
                }
            }
        } else if (opt_mode == M_IDLE && c->rx == (uint64_t)opt_idle_messages) {
            idle_done++;
        }
    }
    c->msg_len = c->msg_pos = c->msg_out = 0;
    c->msg_bad = 0;
    c->msg_compressed = 0;
    received++;
    if (running && opt_mode == M_ECHO)
        c->pend_frames++;                     /* keep K in flight */
    return 0;
}

/* Parse server frames out of b[0..len). Returns -1 if the connection died. */
static int parse(struct conn *c, const unsigned char *b, size_t len)
{
    size_t p = 0;
    while (p < len) {
        if (c->skip) {
            size_t avail = len - p;
            size_t take = c->skip < avail ? (size_t)c->skip : avail;
            if (c->msg_compressed) {
                if (inflate_chunk(c, b + p, take) < 0) {
                    close_conn(c);
                    return -1;
                }
            } else if (opt_mode == M_RESUME) {
                if (keep_payload(c, b + p, take) < 0)
                    return -1;
            } else if (opt_verify && !c->msg_bad && opt_mode != M_FANOUT) {
                if (c->msg_pos + take > (uint64_t)opt_size || memcmp(b + p, expected + c->msg_pos, take))
                    c->msg_bad = 1;
            }
            c->msg_pos += take;
            p += take;
            c->skip -= take;
            if (!c->skip && frame_done(c) < 0)
                return -1;
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
        /* RSV1 is allowed on the first frame of a data message when
         * permessage-deflate is in use; nothing else may set RSV bits. */
        int rsv1_ok = opt_deflate && (opcode == 0x1 || opcode == 0x2);
        if (b0 & (rsv1_ok ? 0x30 : 0x70))
            return fail(c, "reserved bits set (%#x) without an extension", b0);
        if (opcode >= 0x8) {
            if (plen > 125 || !fin)
                return fail(c, "bad control frame (opcode %#x, %llu bytes)", opcode, (unsigned long long)plen);
            if (len - p < h + plen)
                break;                         /* wait for the whole control frame */
            const unsigned char *payload = b + p + h;
            if (opcode == 0x9)
                pings++;
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
                return fail(c, "server sent a close frame (code %u)", code);
            } else if (opcode != 0xA && opcode != 0x9) {
                return fail(c, "unknown control opcode %#x", opcode);
            }
            p += h + plen;
            continue;
        }
        /* A data frame. */
        if (opcode == 0x0) {
            if (!c->in_message)
                return fail(c, "continuation frame without a message");
        } else if (opcode == 0x1 || opcode == 0x2) {
            if (c->in_message)
                return fail(c, "new message inside a fragmented message");
            if (opcode != (opt_binary && opt_mode != M_FANOUT && opt_mode != M_RESUME ? 0x2 : 0x1))
                error(c, "message came back as %s", opcode == 0x1 ? "text" : "binary");
            c->msg_len = c->msg_pos = c->msg_out = 0;
            c->msg_bad = 0;
            c->msg_compressed = (b0 & 0x40) != 0;
        } else {
            return fail(c, "unknown data opcode %#x", opcode);
        }
        p += h;
        c->frame_fin = fin != 0;
        c->msg_len += plen;
        c->skip = plen;
        if (!plen && frame_done(c) < 0)
            return -1;
    }
    size_t rest = len - p;
    if (rest > CARRY_MAX)
        return fail(c, "internal: %zu bytes to carry over", rest);
    memmove(c->carry, b + p, rest);
    c->carry_len = rest;
    return 0;
}

static int do_read(struct conn *c)
{
    if (!opt_verify && c->skip >= 4096 && c->carry_len == 0 && !c->msg_compressed && opt_mode != M_RESUME) {
        /* The middle of a large payload nobody looks at: let the kernel
         * discard it without copying it out (TCP honours MSG_TRUNC). */
        ssize_t r = recv(c->fd, NULL, c->skip < READ_BUF_SIZE ? (size_t)c->skip : READ_BUF_SIZE, MSG_TRUNC);
        if (r <= 0)
            return recv_trouble(c, r, "");
        c->msg_pos += (uint64_t)r;
        c->skip -= (uint64_t)r;
        return c->skip ? 0 : frame_done(c);
    }
    memcpy(rbuf, c->carry, c->carry_len);
    ssize_t r = recv(c->fd, rbuf + c->carry_len, READ_BUF_SIZE - c->carry_len, 0);
    if (r <= 0)
        return recv_trouble(c, r, "");
    return parse(c, rbuf, c->carry_len + (size_t)r);
}

/* -- connecting ---------------------------------------------------------- */

static struct addrinfo *server_addr;
static unsigned char sub_frame[512];      /* fanout: a subscriber's subscribe frame */
static size_t sub_frame_len;

static void start_connect(struct conn *c)
{
    int is_pub = c->is_pub;
    memset(c, 0, sizeof *c);
    c->is_pub = is_pub;
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
        fail(c, "connect: %s", strerror(err));
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
        ssize_t w = send_some(c, request + c->req_off, request_len - c->req_off);
        if (w <= 0)
            return;
        c->req_off += w;
    }
    c->want_out = 0;
    watch(c, EPOLL_CTL_MOD, EPOLLIN);
}

/* The server's complete handshake response is in c->hs (its headers end at
 * `end`): 0 if it upgraded the connection as asked, else -1 (it is closed). */
static int check_response(struct conn *c, char *end)
{
    if (strncmp(c->hs, "HTTP/1.1 101", 12) && strncmp(c->hs, "HTTP/1.0 101", 12)) {
        char *eol = strstr(c->hs, "\r\n");
        *eol = 0;
        return fail(c, "handshake refused: %s", c->hs);
    }
    if (opt_deflate) {
        *end = 0;                         /* search the headers only */
        if (!strcasestr(c->hs, "permessage-deflate"))
            return fail(c, "the server did not accept permessage-deflate");
        c->no_ctx = strcasestr(c->hs, "server_no_context_takeover") != NULL;
        char *bits = strcasestr(c->hs, "client_max_window_bits=");
        if (bits && atoi(bits + 23) < 15 && opt_size > (1L << atoi(bits + 23)))
            return fail(c, "the server limits client_max_window_bits to %d (unsupported here)", atoi(bits + 23));
    }
    return 0;
}

static void read_response(struct conn *c)
{
    ssize_t r = recv(c->fd, c->hs + c->hs_len, HS_MAX - c->hs_len, 0);
    if (r <= 0) {
        recv_trouble(c, r, " during the handshake");
        return;
    }
    c->hs_len += r;
    c->hs[c->hs_len] = 0;
    char *end = strstr(c->hs, "\r\n\r\n");
    if (!end) {
        if (c->hs_len == HS_MAX)
            fail(c, "handshake response longer than %d bytes", HS_MAX);
        return;
    }
    if (check_response(c, end) < 0)
        return;
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
    if (opt_mode == M_ECHO)
        c->pend_frames = (uint64_t)opt_inflight;
    if (opt_mode == M_RATE) {
        c->ts = malloc(TS_RING * sizeof *c->ts);
        c->ts_head = c->ts_tail = 0;
    }
    if (opt_mode == M_FANOUT) {
        if (c->is_pub) {
            pub = c;
        } else {
            subs_open++;
            memcpy(c->ctrl, sub_frame, sub_frame_len);
            c->ctrl_len = sub_frame_len;
        }
    }
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

/* -- rate mode ------------------------------------------------------------ */

static void start_timer(double period)
{
    timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    if (timer_fd < 0) {
        perror("loadgen: timerfd_create");
        exit(1);
    }
    struct itimerspec its;
    its.it_interval.tv_sec = (time_t)period;
    its.it_interval.tv_nsec = (long)((period - (double)(time_t)period) * 1e9);
    its.it_value = its.it_interval;
    timerfd_settime(timer_fd, 0, &its, NULL);
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &timer_tag};
    epoll_ctl(ep, EPOLL_CTL_ADD, timer_fd, &ev);
}

/* Send the messages due by now, one per connection in turn. */
static void rate_tick(void)
{
    uint64_t expirations;
    if (read(timer_fd, &expirations, sizeof expirations) < 0 && errno != EAGAIN)
        perror("loadgen: timerfd read");
    if (!running)
        return;
    double t = now();
    uint64_t due = (uint64_t)((t - rate_t0) * opt_rate);
    while (rate_sent < due && n_open > 0) {
        struct conn *c;
        do {
            c = &conns[rate_next];
            rate_next = (rate_next + 1) % opt_conns;
        } while (c->phase != P_OPEN);
        rate_sent++;
        if (c->ts_head - c->ts_tail >= TS_RING) {
            rate_skipped++;               /* the server is far behind */
            continue;
        }
        c->ts[c->ts_head % TS_RING] = t;
        c->ts_head++;
        c->pend_frames++;
        flush(c);
    }
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double percentile(const double *sorted, size_t n, double q)
{
    if (!n)
        return 0;
    size_t rank = (size_t)ceil(q * (double)n);
    if (rank < 1)
        rank = 1;
    return sorted[rank - 1];
}

/* Handle the events that come within `timeout` ms. Returns -1 if epoll_wait
 * failed (errno tells why). */
static int dispatch(int timeout)
{
    struct epoll_event events[256];
    int n = epoll_wait(ep, events, 256, timeout);
    if (n < 0)
        return errno == EINTR ? 0 : -1;
    for (int i = 0; i < n; i++) {
        if (events[i].data.ptr == &timer_tag)
            rate_tick();
        else
            handle_event(events[i].data.ptr, events[i].events);
    }
    return n;
}

/* Handle the events that come until `wake` (t is now). */
static void dispatch_until(double wake, double t)
{
    int timeout = (int)((wake - t) * 1000) + 1;
    if (timeout < 0)
        timeout = 0;
    if (dispatch(timeout) < 0) {
        perror("loadgen: epoll_wait");
        exit(1);
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
    for (long i = 0; i < n_conns; i++) {
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
    while (n_open > 0) {
        int timeout = (int)((deadline - now()) * 1000);
        if (timeout <= 0 || dispatch(timeout) < 0)
            break;
    }
}

static void mark(const char *fmt, ...)
{
    if (!opt_marks)
        return;
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    fflush(stderr);
}

/* -- setting up ------------------------------------------------------------ */

/* What the connections send: the message, masked, opt_inflight times back
 * to back in `batch` (capped at 16 MiB: flush() loops when more frames are
 * pending than it holds), and the payload --verify expects back. In fanout
 * mode the message is a publish, the batch holds a burst, and subscribers
 * send `sub_frame`. */
static void build_frames(void)
{
    unsigned char *payload = malloc((size_t)opt_size + 1);
    for (long i = 0; i < opt_size; i++)
        payload[i] = (unsigned char)('a' + i % 26);
    const unsigned char *wire = payload;  /* what goes into the frame */
    size_t wire_len = (size_t)opt_size;
    unsigned char *publish_json = NULL;
    if (opt_mode == M_RESUME) {
        char sub[400];
        int n = snprintf(sub, sizeof sub,
                         "{\"action\":\"subscribe\",\"topic\":\"%s\",\"since\":{\"offset\":%lld,\"epoch\":\"%s\"}}",
                         opt_topic, opt_since, opt_epoch);
        sub_frame_len = build_frame(sub_frame, 0x81, (const unsigned char *)sub, (uint64_t)n);
    }
    if (opt_mode == M_FANOUT) {
        publish_json = malloc((size_t)opt_size + 300);
        wire_len = (size_t)sprintf((char *)publish_json, "{\"action\":\"publish\",\"topic\":\"%s\",\"data\":\"%.*s\"}",
                                   opt_topic, (int)opt_size, (const char *)payload);
        wire = publish_json;
        char sub[300];
        int n = snprintf(sub, sizeof sub, "{\"action\":\"subscribe\",\"topic\":\"%s\"}", opt_topic);
        sub_frame_len = build_frame(sub_frame, 0x81, (const unsigned char *)sub, (uint64_t)n);
    }
    int first = (opt_binary && opt_mode != M_FANOUT) ? 0x82 : 0x81;
    unsigned char *compressed = NULL;
    if (opt_deflate) {
        compressed = deflate_message(wire, wire_len, &wire_len);
        wire = compressed;
        first |= 0x40;                    /* RSV1: a compressed message */
    }
    unsigned char *one = malloc(wire_len + 14);
    frame_len = build_frame(one, first, wire, (uint64_t)wire_len);
    batch_frames = (size_t)opt_inflight;
    if (opt_mode == M_FANOUT && (size_t)opt_burst > batch_frames)
        batch_frames = (size_t)opt_burst;
    if (batch_frames * frame_len > (16u << 20))
        batch_frames = (16u << 20) / frame_len ? (16u << 20) / frame_len : 1;
    batch = malloc(batch_frames * frame_len);
    for (size_t i = 0; i < batch_frames; i++)
        memcpy(batch + i * frame_len, one, frame_len);
    free(one);
    free(compressed);
    free(publish_json);
    expected = payload;
}

/* The HTTP upgrade request every connection sends. */
static void build_request(void)
{
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
                                   "Sec-WebSocket-Version: 13\r\n%s\r\n",
                                   opt_path, opt_host, opt_port, key,
                                   opt_deflate ? "Sec-WebSocket-Extensions: permessage-deflate; "
                                                 "client_no_context_takeover; client_max_window_bits\r\n"
                                               : "");
}

/* -- the run: connecting, then each mode's phases ---------------------------- */

static double t_connect0, t_all_open;    /* connecting began; it ended */
static long open_after_connect;          /* connections open when it ended */
static double t_warm;                    /* the warm-up began (fanout: the measured run's) */
static double t_start, t_end;            /* the measured window (idle mode: the hold ended at t_end) */
static double cpu_start, cpu_end;        /* the generator's CPU time at its edges */
static uint64_t rx_start, rx_end;        /* messages received (fanout: deliveries) at its edges */
static uint64_t pub_start, pub_end;      /* fanout: publishes completed at its edges */
static double t_hold, next_tick;         /* idle mode: the hold began; the next TICK */
static double t_phase, next_sync;        /* fanout mode: the phase began; the next sync publish */

/* Open every connection (all modes alike), in waves of at most --concurrency
 * so a small listen backlog never drops SYNs (which would cost a one-second
 * retransmit); give up on those not open after --connect-timeout. In echo
 * mode a connection starts echoing as soon as it is open. Returns how many
 * are open. */
static long open_connections(void)
{
    long next = 0;
    t_connect0 = now();
    double deadline = t_connect0 + opt_connect_timeout;
    for (;;) {
        while (next < n_conns && n_pending < opt_concurrency)
            start_connect(&conns[next++]);
        double t = now();
        if ((next == n_conns && n_pending == 0) || t >= deadline) {
            if (n_pending) {
                for (long i = 0; i < n_conns; i++)
                    if (conns[i].phase == P_CONNECTING || conns[i].phase == P_HANDSHAKE)
                        fail(&conns[i], "not open after %.0f s", opt_connect_timeout);
                for (; next < n_conns; next++)
                    error(&conns[next], "never attempted (connect timeout)");
            }
            t_all_open = t;
            open_after_connect = n_open;
            return n_open;
        }
        dispatch_until(deadline, t);
    }
}

/* The measured window's edges (echo, rate and fanout mode). */
static void window_start(double t)
{
    stage = 2;
    t_start = t;
    cpu_start = cpu_seconds();
    rx_start = opt_mode == M_FANOUT ? deliveries : received;
    pub_start = oldest;
    mark("MEASURE_START");
}

static void window_end(void)
{
    rx_end = opt_mode == M_FANOUT ? deliveries : received;
    pub_end = oldest;
    cpu_end = cpu_seconds();
    t_end = now();
}

/* idle mode: send each connection its --idle-messages and wait for the
 * echoes, then hold the connections (stage 3), with a TICK mark every
 * second. Returns 1 when the hold is over. */
static int idle_step(double t)
{
    static int idle_msgs_sent;
    if (stage == 1) {
        if (opt_idle_messages && !idle_msgs_sent) {
            idle_msgs_sent = 1;
            for (long i = 0; i < n_conns; i++)
                if (conns[i].phase == P_OPEN) {
                    conns[i].pend_frames = (uint64_t)opt_idle_messages;
                    flush(&conns[i]);
                }
        }
        if (!opt_idle_messages || idle_done >= n_open || t >= t_warm + opt_connect_timeout) {
            if (opt_idle_messages && idle_done < n_open)
                error(NULL, "only %ld of %ld connections got their idle-message echoes", idle_done, n_open);
            stage = 3;
            t_hold = t;
            next_tick = t + 1.0;
            cpu_start = cpu_seconds();
            double connect = t_all_open - t_connect0;
            mark("OPEN %.1f %.3f %ld", per_s(open_after_connect, connect), connect, n_open);
        }
    }
    if (stage == 3) {
        if (t >= next_tick) {
            mark("TICK %.0f %llu %ld", next_tick - t_hold, (unsigned long long)pings, n_open);
            next_tick += 1.0;
        }
        if (t >= t_hold + opt_hold) {
            cpu_end = cpu_seconds();
            t_end = t;
            return 1;
        }
    }
    return 0;
}

/* fanout mode: sync (publish until every subscriber has had a message),
 * drain, the bursts, then F_RUN: the measured run, which fanout_advance()
 * keeps going. Returns -1 if it cannot go on. */
static int fanout_step(double t)
{
    if (subs_open == 0 || !pub || pub->phase != P_OPEN) {
        fprintf(stderr, "loadgen: the publisher or every subscriber was lost\n");
        return -1;
    }
    if (fan_phase == F_SYNC) {
        if (subs_ready >= subs_open) {
            fan_phase = F_DRAIN;
            t_phase = t;
        } else if (t >= t_warm + opt_connect_timeout) {
            fprintf(stderr, "loadgen: only %ld of %ld subscribers received anything\n", subs_ready, subs_open);
            return -1;
        } else if (t >= next_sync) {
            publish(1);
            next_sync = t + 0.02;
        }
    }
    if (fan_phase == F_DRAIN && t >= t_phase + 0.2 && t >= last_delivery + 0.2) {
        /* Every subscriber is subscribed and nothing is in flight:
         * from now on each one receives every publish, in order. */
        for (long i = 0; i < opt_conns; i++)
            conns[i].rx = 0;
        pub_sent = 0;
        deliveries = 0;
        bursts_done = 0;
        fan_phase = F_GAP;                /* then the bursts, if any, then the run */
        t_phase = t;
    }
    if (fan_phase == F_BURST) {
        if (deliveries >= burst_target) {
            burst_first_ms[bursts_done] = (burst_first - burst_t0) * 1e3;
            burst_all_ms[bursts_done] = (t - burst_t0) * 1e3;
            bursts_done++;
            fan_phase = F_GAP;
            t_phase = t;
        } else if (t >= burst_t0 + 10.0) {
            error(NULL, "burst %ld: only %llu of %llu deliveries after 10 s", bursts_done + 1,
                  (unsigned long long)deliveries, (unsigned long long)burst_target);
            bursts_done = opt_bursts;
            fan_phase = F_GAP;
            t_phase = t;
        }
    }
    if (fan_phase == F_GAP && t >= t_phase + 0.1) {
        if (bursts_done < opt_bursts) {
            fan_phase = F_BURST;
            burst_first = 0;
            burst_target = deliveries + (uint64_t)opt_burst * (uint64_t)subs_open;
            burst_t0 = now();
            publish((uint64_t)opt_burst);
        } else {
            fan_phase = F_RUN;
            ring_base = oldest = pub_sent;
            t_warm = t;
            fanout_advance();             /* the first K publishes */
        }
    }
    return 0;
}

/* CPU seconds (user + system) process opt_server_pid has used, or -1;
 * its user seconds go to *user. */
static double server_cpu(double *user)
{
    if (opt_server_pid <= 0)
        return -1;
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%ld/stat", opt_server_pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    char *p = strrchr(buf, ')');          /* after "pid (comm)" */
    unsigned long long utime, stime;
    if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &utime, &stime) != 2)
        return -1;
    *user = (double)utime / clk_tck;
    return (double)(utime + stime) / clk_tck;
}

/* Seconds core opt_server_core has been busy (processes, interrupts,
 * softirqs: the kernel's loopback work), or -1. */
static double core_busy(void)
{
    if (opt_server_core < 0)
        return -1;
    FILE *f = fopen("/proc/stat", "r");
    if (!f)
        return -1;
    char line[512], want[32];
    int wl = snprintf(want, sizeof want, "cpu%d ", opt_server_core);
    double busy = -1;
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, want, (size_t)wl))
            continue;
        unsigned long long user, nice, sys, idle, iowait, irq, softirq;
        if (sscanf(line + wl, "%llu %llu %llu %llu %llu %llu %llu", &user, &nice, &sys, &idle, &iowait, &irq,
                   &softirq) == 7)
            busy = (double)(user + nice + sys + irq + softirq) / clk_tck;
        break;
    }
    fclose(f);
    return busy;
}

/* resume mode: after --warmup seconds of quiet, send every open connection
 * its subscribe-since in one pass, then wait until each one has its answer
 * and K deliveries (or is lost), up to --duration seconds. Returns 1 when
 * it is over. */
static int resume_step(double t)
{
    if (stage == 1 && t >= t_warm + opt_warmup) {
        srv_cpu0 = server_cpu(&srv_user0);
        core0 = core_busy();
        cpu_start = cpu_seconds();
        mark("RESUME_START");
        stage = 2;
        resume_t0 = t_start = now();
        for (long i = 0; i < n_conns; i++) {
            struct conn *c = &conns[i];
            if (c->phase != P_OPEN)
                continue;
            memcpy(c->ctrl + c->ctrl_len, sub_frame, sub_frame_len);
            c->ctrl_len += sub_frame_len;
            c->rs = RS_ANSWER;
            c->t_sent = now();
            resume_sent++;
            flush(c);
        }
        resume_t_sent = now();
        return 0;
    }
    if (stage == 2 && (resume_done + resume_failed >= resume_sent || t >= t_start + opt_duration)) {
        srv_cpu1 = server_cpu(&srv_user1);
        core1 = core_busy();
        cpu_end = cpu_seconds();
        t_end = t;
        mark("RESUME_END");
        if (resume_done + resume_failed < resume_sent)
            error(NULL, "only %ld of %ld connections resumed within %.1f s (%ld failed)", resume_done, resume_sent,
                  opt_duration, resume_failed);
        stage = 3;
        t_hold = t;                       /* a short linger: messages too many are errors */
        return 0;
    }
    return stage == 3 && t >= t_hold + 0.1;
}

/* Everything after connecting, until the measured window (idle mode: the
 * hold) is over. Returns 0, or the exit status when the run cannot go on. */
static int run(void)
{
    stage = 1;
    t_warm = t_all_open;
    if (opt_mode == M_RATE) {
        rate_t0 = t_all_open;
        double period = 1.0 / opt_rate;
        start_timer(period < 50e-6 ? 50e-6 : period);
    }
    if (opt_mode == M_RESUME)
        mark("OPEN %.3f %ld", t_all_open - t_connect0, n_open);
    if (opt_mode == M_FANOUT) {
        if (!pub || pub->phase != P_OPEN || subs_open == 0) {
            fprintf(stderr, "loadgen: the publisher or every subscriber failed to connect\n");
            return 2;
        }
        fan_phase = F_SYNC;
        t_phase = next_sync = t_all_open;
    }
    for (;;) {
        double t = now();
        if (opt_mode == M_IDLE && idle_step(t))
            return 0;
        if (opt_mode == M_RESUME && resume_step(t))
            return 0;
        if (opt_mode == M_FANOUT && fanout_step(t) < 0)
            return 2;
        /* echo, rate and fanout: warm-up, then the measured window */
        int measuring_mode = opt_mode == M_ECHO || opt_mode == M_RATE || (opt_mode == M_FANOUT && fan_phase == F_RUN);
        if (measuring_mode && stage == 1 && t >= t_warm + opt_warmup)
            window_start(t);
        if (measuring_mode && stage == 2 && t >= t_start + opt_duration) {
            window_end();
            mark("MEASURE_END");
            return 0;
        }
        if (n_open == 0 && opt_mode == M_RESUME && stage < 3) {
            fprintf(stderr, "loadgen: every connection was lost\n");
            if (stage == 2) {
                resume_step(t_start + opt_duration);  /* close the window */
                t_end = now();
            }
            return 0;
        }
        if (n_open == 0 && opt_mode != M_RESUME) {
            fprintf(stderr, "loadgen: every connection was lost\n");
            window_end();
            if (stage == 1) {
                t_start = t_end;
                cpu_start = cpu_end;
                rx_start = rx_end;
                pub_start = pub_end;
            }
            if (opt_mode == M_IDLE && t_hold == 0)
                t_hold = t_end;           /* lost before the hold: report an empty one */
            return 0;
        }
        double wake;
        if (opt_mode == M_RESUME)
            wake = stage == 1 ? t_warm + opt_warmup : stage == 2 ? t_start + opt_duration : t_hold + 0.1;
        else if (stage == 3)
            wake = next_tick < t_hold + opt_hold ? next_tick : t_hold + opt_hold;
        else if (opt_mode == M_IDLE)
            wake = t + 0.05;
        else if (opt_mode == M_FANOUT && fan_phase != F_RUN)
            wake = t + 0.005;
        else if (stage == 1)
            wake = t_warm + opt_warmup;
        else
            wake = t_start + opt_duration;
        dispatch_until(wake, t);
    }
}

/* -- the report: one JSON line on stdout ------------------------------------ */

static void print_ms_list(const double *v, long n)
{
    for (long i = 0; i < n; i++)
        printf("%s%.3f", i ? ", " : "", v[i]);
}

/* The median of v[0..n), or -1 if n is 0. */
static double median_ms(const double *v, long n)
{
    if (!n)
        return -1.0;
    double sorted[n];
    memcpy(sorted, v, sizeof(double) * (size_t)n);
    qsort(sorted, (size_t)n, sizeof(double), cmp_double);
    return percentile(sorted, (size_t)n, 0.5);
}

static void report_idle(void)
{
    double wall = t_end - t_hold;
    double connect = t_all_open - t_connect0;
    double cpu = per_s(cpu_end - cpu_start, wall) * 100;
    printf("{\"mode\": \"idle\", \"connections\": %ld, \"connections_open\": %ld, \"opened\": %ld, "
           "\"connect_seconds\": %.3f, \"handshakes_per_s\": %.1f, \"concurrency\": %ld, "
           "\"idle_messages\": %ld, \"deflate\": %s, \"hold\": %.3f, \"pings\": %llu, "
           "\"errors\": %llu, \"loadgen_cpu_percent\": %.1f}\n",
           opt_conns, n_open, open_after_connect, connect, per_s(open_after_connect, connect),
           opt_concurrency, opt_idle_messages, opt_deflate ? "true" : "false", wall,
           (unsigned long long)pings, (unsigned long long)errors, cpu);
}

static void report_fanout(void)
{
    double wall = t_end - t_start;
    uint64_t d = rx_end - rx_start;
    double cpu = per_s(cpu_end - cpu_start, wall) * 100;
    long nb = bursts_done < opt_bursts ? bursts_done : opt_bursts;
    printf("{\"mode\": \"fanout\", \"deliveries_per_s\": %.1f, \"messages_per_s\": %.1f, "
           "\"publishes_per_s\": %.1f, \"subscribers\": %ld, \"subscribers_open\": %ld, "
           "\"connections\": %ld, \"connections_open\": %ld, \"inflight\": %ld, \"size\": %ld, "
           "\"duration\": %.3f, \"warmup\": %.3f, \"deliveries\": %llu, \"burst\": %ld, \"bursts\": %ld, "
           "\"burst_first_delivery_ms\": [",
           per_s(d, wall), per_s(d, wall), per_s(pub_end - pub_start, wall), opt_conns, subs_open, n_conns, n_open,
           opt_inflight, opt_size, wall, opt_warmup, (unsigned long long)d, opt_burst, nb);
    print_ms_list(burst_first_ms, nb);
    printf("], \"burst_all_delivered_ms\": [");
    print_ms_list(burst_all_ms, nb);
    printf("], \"burst_first_delivery_ms_median\": %.3f, \"burst_all_delivered_ms_median\": %.3f, "
           "\"errors\": %llu, \"loadgen_cpu_percent\": %.1f}\n",
           median_ms(burst_first_ms, nb), median_ms(burst_all_ms, nb), (unsigned long long)errors, cpu);
}

/* A JSON number, or null for a figure not measured (negative). */
static void print_opt(const char *key, double v, int decimals)
{
    if (v < 0)
        printf(", \"%s\": null", key);
    else
        printf(", \"%s\": %.*f", key, decimals, v);
}

static void report_resume(void)
{
    double wall = t_end - t_start;
    double connect = t_all_open - t_connect0;
    double cpu = per_s(cpu_end - cpu_start, wall) * 100;
    qsort(resume_ms, (size_t)resume_done, sizeof *resume_ms, cmp_double);
    size_t n = (size_t)resume_done;
    double all_ms = resume_done && resume_done == resume_sent ? (resume_t_last - resume_t0) * 1e3 : -1;
    printf("{\"mode\": \"resume\", \"connections\": %ld, \"connections_open\": %ld, \"opened\": %ld, "
           "\"connect_seconds\": %.3f, \"concurrency\": %ld, \"topic\": \"%s\", \"since_offset\": %lld, "
           "\"epoch\": \"%s\", \"expect\": %ld, \"resumes_sent\": %ld, \"resumed\": %ld, \"failed\": %ld, "
           "\"deliveries\": %llu, \"send_ms\": %.3f",
           opt_conns, n_open, open_after_connect, connect, opt_concurrency, opt_topic, opt_since, opt_epoch, opt_expect,
           resume_sent, resume_done, resume_failed, (unsigned long long)deliveries, (resume_t_sent - resume_t0) * 1e3);
    print_opt("all_resumed_ms", all_ms, 3);
    print_opt("last_resumed_ms", n ? (resume_t_last - resume_t0) * 1e3 : -1, 3);
    printf(", \"resume_ms\": {\"min\": %.3f, \"p50\": %.3f, \"p90\": %.3f, \"p99\": %.3f, \"max\": %.3f}",
           n ? resume_ms[0] : 0.0, percentile(resume_ms, n, 0.5), percentile(resume_ms, n, 0.9),
           percentile(resume_ms, n, 0.99), n ? resume_ms[n - 1] : 0.0);
    print_opt("window_seconds", wall, 4);
    print_opt("server_cpu_seconds", srv_cpu0 >= 0 && srv_cpu1 >= 0 ? srv_cpu1 - srv_cpu0 : -1, 3);
    print_opt("server_cpu_user_seconds", srv_cpu0 >= 0 && srv_cpu1 >= 0 ? srv_user1 - srv_user0 : -1, 3);
    print_opt("server_core_busy_seconds", core0 >= 0 && core1 >= 0 ? core1 - core0 : -1, 3);
    printf(", \"errors\": %llu, \"loadgen_cpu_percent\": %.1f}\n", (unsigned long long)errors, cpu);
}

/* echo and rate mode */
static void report_echo(void)
{
    double wall = t_end - t_start;
    uint64_t msgs = rx_end - rx_start;
    double rate = per_s(msgs, wall);
    double cpu = per_s(cpu_end - cpu_start, wall) * 100;
    printf("{\"messages_per_s\": %.1f, \"connections\": %ld, \"connections_open\": %ld, "
           "\"inflight\": %ld, \"size\": %ld, \"binary\": %s, \"duration\": %.3f, \"warmup\": %.3f, "
           "\"messages\": %llu, \"payload_mb_per_s\": %.2f, \"errors\": %llu, "
           "\"loadgen_cpu_percent\": %.1f",
           rate, opt_conns, n_open, opt_inflight, opt_size, opt_binary ? "true" : "false", wall,
           opt_warmup, (unsigned long long)msgs, rate * (double)opt_size / 1e6,
           (unsigned long long)errors, cpu);
    if (opt_deflate)
        printf(", \"deflate\": true");
    if (opt_mode == M_RATE) {
        qsort(lat, lat_n, sizeof *lat, cmp_double);
        double sum = 0;
        for (size_t i = 0; i < lat_n; i++)
            sum += lat[i];
        printf(", \"mode\": \"rate\", \"rate_target\": %.1f, \"sends_skipped\": %llu, \"latency_samples\": %zu, "
               "\"latency_us\": {\"p50\": %.1f, \"p90\": %.1f, \"p99\": %.1f, \"p999\": %.1f, "
               "\"max\": %.1f, \"mean\": %.1f}",
               opt_rate, (unsigned long long)rate_skipped, lat_n, percentile(lat, lat_n, 0.5) * 1e6,
               percentile(lat, lat_n, 0.9) * 1e6, percentile(lat, lat_n, 0.99) * 1e6,
               percentile(lat, lat_n, 0.999) * 1e6, lat_n ? lat[lat_n - 1] * 1e6 : 0.0,
               lat_n ? sum / lat_n * 1e6 : 0.0);
    }
    printf("}\n");
}

/* -- main ---------------------------------------------------------------- */

static void usage(const char *argv0)
{
    fprintf(stderr,
            "usage: %s --port PORT [--host HOST] [--path PATH] [--mode echo|rate|idle|fanout|resume]\n"
            "          [--connections N] [--inflight K] [--size BYTES] [--warmup SECONDS]\n"
            "          [--duration SECONDS] [--binary] [--connect-timeout SECONDS] [--marks]\n"
            "          [--verify] [--deflate] [--rate MSG_PER_S] [--concurrency N] [--hold SECONDS]\n"
            "          [--idle-messages N] [--burst N] [--bursts N] [--topic T]\n"
            "          [--since-offset N --epoch E --expect K] [--server-pid PID] [--server-core C]\n",
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
        {"mode", required_argument, 0, 'M'},
        {"rate", required_argument, 0, 'r'},
        {"concurrency", required_argument, 0, 'C'},
        {"hold", required_argument, 0, 'o'},
        {"idle-messages", required_argument, 0, 'i'},
        {"deflate", no_argument, 0, 'z'},
        {"burst", required_argument, 0, 'B'},
        {"bursts", required_argument, 0, 'n'},
        {"topic", required_argument, 0, 'T'},
        {"since-offset", required_argument, 0, 'S'},
        {"epoch", required_argument, 0, 'E'},
        {"expect", required_argument, 0, 'K'},
        {"server-pid", required_argument, 0, 'P'},
        {"server-core", required_argument, 0, 'R'},
        {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0},
    };
    int o;
    while ((o = getopt_long(argc, argv, "H:p:u:c:k:s:w:d:bt:mvM:r:C:o:i:zB:n:T:S:E:K:P:R:h", longopts, NULL)) != -1) {
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
        case 'M':
            if (!strcmp(optarg, "echo")) opt_mode = M_ECHO;
            else if (!strcmp(optarg, "rate")) opt_mode = M_RATE;
            else if (!strcmp(optarg, "idle")) opt_mode = M_IDLE;
            else if (!strcmp(optarg, "fanout")) opt_mode = M_FANOUT;
            else if (!strcmp(optarg, "resume")) opt_mode = M_RESUME;
            else usage(argv[0]);
            break;
        case 'r': opt_rate = atof(optarg); break;
        case 'C': opt_concurrency = atol(optarg); break;
        case 'o': opt_hold = atof(optarg); break;
        case 'i': opt_idle_messages = atol(optarg); break;
        case 'z': opt_deflate = 1; break;
        case 'B': opt_burst = atol(optarg); break;
        case 'n': opt_bursts = atol(optarg); break;
        case 'T': opt_topic = optarg; break;
        case 'S': opt_since = atoll(optarg); break;
        case 'E': opt_epoch = optarg; break;
        case 'K': opt_expect = atol(optarg); break;
        case 'P': opt_server_pid = atol(optarg); break;
        case 'R': opt_server_core = atoi(optarg); break;
        default: usage(argv[0]);
        }
    }
    if (!opt_port || opt_conns < 1 || opt_inflight < 1 || opt_size < 0 || opt_warmup < 0 ||
        opt_duration <= 0 || optind != argc || opt_rate <= 0 || opt_concurrency < 1 || opt_hold < 0 ||
        opt_idle_messages < 0 || opt_burst < 1 || opt_bursts < 0 || strlen(opt_topic) > 200)
        usage(argv[0]);
    if (opt_mode == M_RESUME) {
        /* The epoch goes into JSON as it is: letters, digits and ._:- only
         * (what the hub's epochs are made of). */
        if (opt_since < 0 || opt_expect < 0 || !opt_epoch || !*opt_epoch || strlen(opt_epoch) > 64 ||
            strspn(opt_epoch, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._:-") != strlen(opt_epoch) ||
            strpbrk(opt_topic, "\"\\") || opt_deflate) {
            fprintf(stderr, "loadgen: --mode resume needs --since-offset N (0 or more), --epoch E (an epoch as the "
                            "server sent it), --expect K (0 or more), a topic without quotes or backslashes, and no "
                            "--deflate\n");
            usage(argv[0]);
        }
        resume_ms = calloc((size_t)opt_conns, sizeof *resume_ms);
        long tck = sysconf(_SC_CLK_TCK);
        if (tck > 0)
            clk_tck = (double)tck;
    }

    /* Idle mode holds thousands of sockets. */
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }

    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    int gai = getaddrinfo(opt_host, opt_port, &hints, &server_addr);
    if (gai) {
        fprintf(stderr, "loadgen: %s:%s: %s\n", opt_host, opt_port, gai_strerror(gai));
        return 1;
    }
    build_frames();
    build_request();
    rbuf = malloc(READ_BUF_SIZE);
    zbuf = malloc(INFLATE_CHUNK);

    ep = epoll_create1(EPOLL_CLOEXEC);
    n_conns = opt_conns + (opt_mode == M_FANOUT ? 1 : 0);
    conns = calloc((size_t)n_conns, sizeof *conns);
    for (long i = 0; i < n_conns; i++)
        conns[i].phase = P_CLOSED;
    if (opt_mode == M_FANOUT) {
        conns[opt_conns].is_pub = 1;      /* the publisher connects last */
        ring = calloc((size_t)opt_inflight, sizeof *ring);
        burst_first_ms = calloc((size_t)opt_bursts + 1, sizeof(double));
        burst_all_ms = calloc((size_t)opt_bursts + 1, sizeof(double));
    }

    running = 1;
    stage = 0;
    if (open_connections() == 0) {
        fprintf(stderr, "loadgen: no connection could be opened\n");
        return 2;
    }
    int status = run();
    if (status)
        return status;
    if (opt_mode == M_IDLE)
        report_idle();
    else if (opt_mode == M_RESUME)
        report_resume();
    else if (opt_mode == M_FANOUT)
        report_fanout();
    else
        report_echo();
    fflush(stdout);
    close_politely();
    return 0;
}
