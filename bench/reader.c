/*
 * bench/reader.c: a second RTSP fan-out load generator for bench/run, written apart from
 * `ipcamd-bench readers` (crates/bench) so that a figure that depends on how the load
 * generator reads can be told from one that does not.
 *
 *   cc -O2 -Wall -Werror -o reader bench/reader.c
 *   reader --url rtsp://127.0.0.1:8554/live -n 1000 [--duration 8] [--ramp 500]
 *          [--settle 2] [--procs P] [--read-size 262144] [--rcvbuf BYTES] [--gap-ms 500]
 *          [--no-range] [--server-pid PID]
 *
 * Design (where ipcamd-bench is one tokio thread doing 64 KiB reads into a growing Vec
 * that it parses and drains):
 *  - P worker processes (default: the number of online CPUs), forked once; worker w owns
 *    the readers i with i % P == w on one level-triggered epoll, so every core reads.
 *  - Reader i starts at t0 + i / ramp: non-blocking connect, then DESCRIBE, SETUP of
 *    every media section (Transport: RTP/AVP/TCP;unicast;interleaved=2k-2k+1, a=control
 *    absolute or relative to Content-Base / Content-Location / the URL), PLAY (with
 *    `Range: npt=0.000-` unless --no-range, as ipcamd-bench sends). It sends nothing else.
 *  - Playing, every readiness event is answered by one recv() of --read-size bytes (256
 *    KiB) into the worker's one buffer; a byte-at-a-time state machine walks the `$`
 *    framing (nothing is copied or kept between reads but a few header bytes), counting
 *    RTP packets, RTCP packets, RTP sequence gaps per channel, and video frames (marker
 *    bit on channel 0) with the longest interval between them.
 *  - Counters live in a MAP_SHARED region; the parent samples the server's CPU and RSS
 *    from /proc/PID at the start and end of the steady window (after every reader was
 *    due to start + settle), then lets the workers go and sums their CPU with
 *    getrusage(RUSAGE_CHILDREN).
 *
 * Prints one line of key=value pairs with the names of `ipcamd-bench readers` (bench/run's
 * parse_kv reads both) and, when a reader failed, "first error: ..." on line 2.
 * Everything the server sends is bounds-checked; nothing it sends can crash this program.
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h> /* NAN only: the program links with libc alone */
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_TRACKS 8
#define MAX_CH (2 * MAX_TRACKS)
#define HS_MAX (64 * 1024) /* the largest RTSP reply accepted during the handshake */
#define URL_MAX 1024
#define ERR_MAX 300

/* ---- options ------------------------------------------------------------------------ */
static const char *opt_url;
static long opt_n = 10;
static double opt_duration = 10, opt_ramp = 200, opt_settle = 2, opt_gap_ms = 500;
static long opt_procs, opt_read_size = 256 * 1024, opt_rcvbuf;
static int opt_range = 1;
static long opt_server_pid;

/* ---- shared counters ---------------------------------------------------------------- */
struct rstat {           /* one per reader, written by its worker */
    uint64_t bytes;      /* bytes received after PLAY was sent (reply included) */
    uint64_t window_bytes;
    uint64_t reads;      /* recv calls that returned data, playing */
    uint64_t rtp, rtcp, other; /* `$` frames: even channel, odd channel, channel >= MAX_CH */
    uint64_t seq_gaps, frames, time_gaps, resyncs;
    double play_sent, first_byte, max_frame_gap; /* seconds on CLOCK_MONOTONIC; 0 = never */
    int error;           /* 1 when this reader failed */
    int playing;         /* 1 once the PLAY reply was 200 */
};

struct wstat {           /* one per worker */
    double max_stall;    /* seconds, over the steady window */
    double first_error_at;
    char first_error[ERR_MAX];
};

struct shared {
    volatile int release; /* set by the parent once it sampled the server: workers exit */
    struct wstat w[];
};

static struct rstat *RS;
static struct shared *SH;

/* ---- time --------------------------------------------------------------------------- */
static double mono(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void sleep_until(double t)
{
    struct timespec ts;
    ts.tv_sec = (time_t)t;
    ts.tv_nsec = (long)((t - (double)ts.tv_sec) * 1e9);
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
        ;
}

static double T0, STEADY, UNTIL;

/* ---- one reader --------------------------------------------------------------------- */
enum state { S_IDLE, S_CONNECTING, S_DESCRIBE, S_SETUP, S_PLAY, S_PLAYING, S_DONE };
static const char *state_name[] = {"not started", "connecting", "DESCRIBE", "SETUP", "PLAY",
                                   "playing", "done"};

enum pstate { P_HDR, P_BODY, P_TEXT };

struct reader {
    int fd;
    int idx; /* global index */
    enum state st;
    unsigned cseq;
    /* handshake */
    char *hs;
    size_t hs_len;
    char base[URL_MAX];
    char session[256];
    char *control[MAX_TRACKS];
    int ntracks, setup_i;
    /* `$` stream parser */
    enum pstate ps;
    unsigned char hdr[4];
    int hn;
    unsigned ch;
    size_t left;          /* payload bytes still to come */
    unsigned char rtp[4]; /* the first 4 bytes of the current payload */
    int rn;
    size_t plen;
    uint32_t crlf;        /* last 4 bytes seen while skipping text */
    uint16_t last_seq[MAX_CH];
    uint32_t have_seq;
    double last_frame;
};

static struct reader *R;
static int NR; /* readers of this worker */
static int EP;
static struct wstat *ME;
static char HOSTPORT[300], HOST[256], PORT[16];
static struct addrinfo *ADDR;

static void fail(struct reader *r, const char *fmt, ...)
{
    char msg[ERR_MAX - 40];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (r->fd >= 0)
        close(r->fd); /* also leaves the epoll set */
    r->fd = -1;
    RS[r->idx].error = 1;
    r->st = S_DONE;
    free(r->hs);
    r->hs = NULL;
    double now = mono();
    if (!ME->first_error[0] || now < ME->first_error_at) {
        snprintf(ME->first_error, sizeof ME->first_error, "reader %d: %s", r->idx, msg);
        ME->first_error_at = now;
    }
}

static int send_request(struct reader *r, const char *method, const char *url,
                        const char *extra)
{
    char req[URL_MAX + 1024];
    r->cseq++;
    int len = snprintf(req, sizeof req,
                       "%s %s RTSP/1.0\r\nCSeq: %u\r\nUser-Agent: bench-reader.c\r\n%s\r\n",
                       method, url, r->cseq, extra);
    if (len <= 0 || (size_t)len >= sizeof req) {
        fail(r, "%s: request too long", method);
        return -1;
    }
    ssize_t n = send(r->fd, req, (size_t)len, MSG_NOSIGNAL);
    if (n != len) {
        /* The send buffer of a fresh connection holds far more than one request. */
        fail(r, "%s: send: %s", method, n < 0 ? strerror(errno) : "short write");
        return -1;
    }
    return 0;
}

/* Case-insensitive header lookup in head[0..len); copies the trimmed value. */
static int header(const char *head, size_t len, const char *name, char *out, size_t outsz)
{
    size_t nl = strlen(name);
    const char *p = head, *end = head + len;
    while (p < end) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        if (!eol)
            eol = end;
        if ((size_t)(eol - p) > nl && strncasecmp(p, name, nl) == 0 && p[nl] == ':') {
            const char *v = p + nl + 1, *ve = eol;
            while (v < ve && (*v == ' ' || *v == '\t'))
                v++;
            while (ve > v && (ve[-1] == '\r' || ve[-1] == ' ' || ve[-1] == '\t'))
                ve--;
            size_t vl = (size_t)(ve - v);
            if (vl >= outsz)
                vl = outsz - 1;
            memcpy(out, v, vl);
            out[vl] = 0;
            return 1;
        }
        p = eol + 1;
    }
    return 0;
}

/* Bounded string copy of src[0..n) (truncates; always terminated). */
static void put(char *out, size_t outsz, const char *src, size_t n)
{
    if (outsz == 0)
        return;
    if (n >= outsz)
        n = outsz - 1;
    memcpy(out, src, n);
    out[n] = 0;
}

/* Appends src to the string in out (truncates; always terminated). */
static void append(char *out, size_t outsz, const char *src)
{
    size_t l = strnlen(out, outsz);
    if (l < outsz)
        put(out + l, outsz - l, src, strlen(src));
}

/* The absolute URL of a control attribute (truncated to outsz - 1 bytes). */
static void resolve(const char *base, const char *c, char *out, size_t outsz)
{
    if (strncasecmp(c, "rtsp://", 7) == 0 || strncasecmp(c, "rtsps://", 8) == 0) {
        put(out, outsz, c, strlen(c));
    } else if (strcmp(c, "*") == 0 || !c[0]) {
        put(out, outsz, base, strlen(base));
    } else if (c[0] == '/') { /* absolute path: scheme://host[:port] of the base */
        const char *h = strstr(base, "://");
        const char *slash = h ? strchr(h + 3, '/') : NULL;
        put(out, outsz, base, slash ? (size_t)(slash - base) : strlen(base));
        append(out, outsz, c);
    } else {
        size_t bl = strlen(base);
        put(out, outsz, base, bl);
        if (!bl || base[bl - 1] != '/')
            append(out, outsz, "/");
        append(out, outsz, c);
    }
}

static void parse_sdp(struct reader *r, const char *sdp, size_t len)
{
    int in_media = 0; /* inside a media section that has a slot */
    const char *p = sdp, *end = sdp + len;
    r->ntracks = 0;
    while (p < end) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        if (!eol)
            eol = end;
        size_t ll = (size_t)(eol - p);
        if (ll && p[ll - 1] == '\r')
            ll--;
        if (ll >= 2 && p[0] == 'm' && p[1] == '=') {
            in_media = r->ntracks < MAX_TRACKS; /* sections past MAX_TRACKS: not SETUP */
            if (in_media) {
                /* A section without a=control is the aggregate URL (RFC 2326 C.1.1). */
                r->control[r->ntracks] = strdup(r->base);
                r->ntracks++;
            }
        } else if (in_media && ll > 10 && strncmp(p, "a=control:", 10) == 0) {
            char c[URL_MAX], abs_url[URL_MAX];
            size_t cl = ll - 10 < sizeof c - 1 ? ll - 10 : sizeof c - 1;
            memcpy(c, p + 10, cl);
            c[cl] = 0;
            resolve(r->base, c, abs_url, sizeof abs_url);
            free(r->control[r->ntracks - 1]);
            r->control[r->ntracks - 1] = strdup(abs_url);
        }
        p = eol + 1;
    }
}

static void setup_next(struct reader *r)
{
    char extra[512];
    int k = r->setup_i;
    int len = snprintf(extra, sizeof extra,
                       "Transport: RTP/AVP/TCP;unicast;interleaved=%d-%d\r\n", 2 * k, 2 * k + 1);
    if (r->session[0])
        snprintf(extra + len, sizeof extra - (size_t)len, "Session: %s\r\n", r->session);
    if (send_request(r, "SETUP", r->control[k] ? r->control[k] : r->base, extra) == 0)
        r->st = S_SETUP;
}

static void feed(struct reader *r, const unsigned char *b, size_t n, double now);

/* A whole reply head[0..hlen) + body[0..blen) arrived during the handshake. */
static void on_reply(struct reader *r, const char *head, size_t hlen, const char *body,
                     size_t blen)
{
    const char *method = state_name[r->st];
    if (hlen < 12 || strncmp(head, "RTSP/1.0 200", 12) != 0) {
        const char *eol = memchr(head, '\r', hlen);
        int l = eol ? (int)(eol - head) : (int)(hlen < 120 ? hlen : 120);
        fail(r, "%s %s: %.*s", method, opt_url, l, head);
        return;
    }
    char v[URL_MAX];
    switch (r->st) {
    case S_DESCRIBE:
        if (header(head, hlen, "Content-Base", v, sizeof v) ||
            header(head, hlen, "Content-Location", v, sizeof v))
            put(r->base, sizeof r->base, v, strlen(v));
        else
            put(r->base, sizeof r->base, opt_url, strlen(opt_url));
        parse_sdp(r, body, blen);
        if (r->ntracks == 0) {
            fail(r, "DESCRIBE %s: the SDP has no media section", opt_url);
            return;
        }
        r->setup_i = 0;
        setup_next(r);
        return;
    case S_SETUP:
        if (!header(head, hlen, "Session", v, sizeof v)) {
            fail(r, "SETUP %s: no Session header in the reply", r->control[r->setup_i]);
            return;
        }
        v[strcspn(v, "; \t")] = 0;
        if (!v[0] || strlen(v) >= sizeof r->session) {
            fail(r, "SETUP: bad Session header");
            return;
        }
        put(r->session, sizeof r->session, v, strlen(v));
        if (++r->setup_i < r->ntracks) {
            setup_next(r);
            return;
        }
        snprintf(v, sizeof v, "Session: %s\r\n%s", r->session,
                 opt_range ? "Range: npt=0.000-\r\n" : "");
        RS[r->idx].play_sent = mono();
        if (send_request(r, "PLAY", opt_url, v) == 0)
            r->st = S_PLAY;
        return;
    case S_PLAY:
        r->st = S_PLAYING;
        RS[r->idx].playing = 1;
        return;
    default:
        return;
    }
}

/* Parses what the handshake buffer holds; `$` frames before a reply are skipped. */
static void handshake_input(struct reader *r, double now)
{
    for (;;) {
        if (r->st == S_PLAYING) {
            /* Media that came with the PLAY reply. */
            if (r->hs_len) {
                if (RS[r->idx].first_byte == 0)
                    RS[r->idx].first_byte = now;
                RS[r->idx].bytes += r->hs_len;
                if (now >= STEADY && now < UNTIL)
                    RS[r->idx].window_bytes += r->hs_len;
                feed(r, (unsigned char *)r->hs, r->hs_len, now);
            }
            free(r->hs);
            r->hs = NULL;
            r->hs_len = 0;
            return;
        }
        if (r->st == S_DONE || r->hs_len == 0)
            return;
        unsigned char *b = (unsigned char *)r->hs;
        if (b[0] == '$') {
            if (r->hs_len < 4)
                return;
            size_t fl = 4 + ((size_t)b[2] << 8 | b[3]);
            if (r->hs_len < fl)
                return;
            memmove(r->hs, r->hs + fl, r->hs_len - fl);
            r->hs_len -= fl;
            continue;
        }
        char *end = memmem(r->hs, r->hs_len, "\r\n\r\n", 4);
        if (!end)
            return;
        size_t hlen = (size_t)(end - r->hs);
        char v[32];
        long cl = 0;
        if (header(r->hs, hlen, "Content-Length", v, sizeof v)) {
            char *e;
            cl = strtol(v, &e, 10);
            if (e == v || cl < 0 || cl > HS_MAX) {
                fail(r, "%s: bad Content-Length %s", state_name[r->st], v);
                return;
            }
        }
        size_t total = hlen + 4 + (size_t)cl;
        if (r->hs_len < total)
            return;
        /* Copy out: on_reply may send, and the buffer is consumed below. */
        char *msg = malloc(total + 1);
        if (!msg) {
            fail(r, "out of memory");
            return;
        }
        memcpy(msg, r->hs, total);
        msg[total] = 0;
        memmove(r->hs, r->hs + total, r->hs_len - total);
        r->hs_len -= total;
        on_reply(r, msg, hlen, msg + hlen + 4, (size_t)cl);
        free(msg);
    }
}

/* ---- the `$` stream parser (no buffering: byte-level state) ------------------------- */
static void packet(struct reader *r, double now)
{
    struct rstat *s = &RS[r->idx];
    if (r->ch >= MAX_CH) {
        s->other++;
        return;
    }
    if (r->ch & 1) {
        s->rtcp++;
        return;
    }
    if (r->plen < 12 || r->rn < 4 || (r->rtp[0] >> 6) != 2)
        return;
    s->rtp++;
    uint16_t seq = (uint16_t)(r->rtp[2] << 8 | r->rtp[3]);
    uint32_t bit = 1u << r->ch;
    if (r->have_seq & bit) {
        uint16_t jump = (uint16_t)(seq - r->last_seq[r->ch]);
        if (jump != 1 && jump < 0x8000)
            s->seq_gaps += (uint64_t)(jump - 1);
    }
    r->have_seq |= bit;
    r->last_seq[r->ch] = seq;
    if (r->ch == 0 && (r->rtp[1] & 0x80)) {
        s->frames++;
        if (r->last_frame > 0 && now > STEADY) {
            double d = now - r->last_frame;
            if (d > s->max_frame_gap)
                s->max_frame_gap = d;
            if (d * 1000.0 > opt_gap_ms)
                s->time_gaps++;
        }
        r->last_frame = now;
    }
}

static void feed(struct reader *r, const unsigned char *b, size_t n, double now)
{
    size_t i = 0;
    while (i < n) {
        switch (r->ps) {
        case P_HDR:
            if (r->hn == 0 && b[i] != '$') {
                /* An RTSP message (or garbage): skip to the end of a header block. */
                RS[r->idx].resyncs++;
                r->ps = P_TEXT;
                r->crlf = 0;
                continue;
            }
            r->hdr[r->hn++] = b[i++];
            if (r->hn == 4) {
                r->ch = r->hdr[1];
                r->left = r->plen = (size_t)r->hdr[2] << 8 | r->hdr[3];
                r->rn = 0;
                r->hn = 0;
                r->ps = P_BODY;
                if (r->left == 0) {
                    packet(r, now);
                    r->ps = P_HDR;
                }
            }
            break;
        case P_BODY: {
            while (r->rn < 4 && r->left > 0 && i < n) {
                r->rtp[r->rn++] = b[i++];
                r->left--;
            }
            size_t take = n - i < r->left ? n - i : r->left;
            i += take;
            r->left -= take;
            if (r->left == 0) {
                packet(r, now);
                r->ps = P_HDR;
            }
            break;
        }
        case P_TEXT:
            r->crlf = r->crlf << 8 | b[i++];
            if (r->crlf == 0x0d0a0d0a)
                r->ps = P_HDR;
            break;
        }
    }
}

/* ---- worker ------------------------------------------------------------------------- */
static void start_reader(struct reader *r)
{
    int fd = socket(ADDR->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        fail(r, "socket: %s", strerror(errno));
        return;
    }
    r->fd = fd;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (opt_rcvbuf > 0) {
        int v = (int)opt_rcvbuf;
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &v, sizeof v);
    }
    r->st = S_CONNECTING;
    struct epoll_event ev = {.events = EPOLLOUT, .data.u32 = (uint32_t)(r - R)};
    if (epoll_ctl(EP, EPOLL_CTL_ADD, fd, &ev) < 0) {
        fail(r, "epoll_ctl: %s", strerror(errno));
        return;
    }
    if (connect(fd, ADDR->ai_addr, ADDR->ai_addrlen) < 0 && errno != EINPROGRESS)
        fail(r, "connect %s: %s", HOSTPORT, strerror(errno));
}

static void on_event(struct reader *r, uint32_t events, unsigned char *big, double now)
{
    if (r->st == S_DONE)
        return;
    if (r->st == S_CONNECTING) {
        int err = 0;
        socklen_t el = sizeof err;
        if (getsockopt(r->fd, SOL_SOCKET, SO_ERROR, &err, &el) < 0)
            err = errno;
        if (err) {
            fail(r, "connect %s: %s", HOSTPORT, strerror(err));
            return;
        }
        if (!(events & EPOLLOUT))
            return;
        struct epoll_event ev = {.events = EPOLLIN, .data.u32 = (uint32_t)(r - R)};
        epoll_ctl(EP, EPOLL_CTL_MOD, r->fd, &ev);
        r->hs = malloc(HS_MAX);
        if (!r->hs) {
            fail(r, "out of memory");
            return;
        }
        r->hs_len = 0;
        if (send_request(r, "DESCRIBE", opt_url, "Accept: application/sdp\r\n") == 0)
            r->st = S_DESCRIBE;
        return;
    }
    if (r->st == S_PLAYING) {
        ssize_t n = recv(r->fd, big, (size_t)opt_read_size, 0);
        if (n > 0) {
            struct rstat *s = &RS[r->idx];
            s->bytes += (uint64_t)n;
            s->reads++;
            if (s->first_byte == 0)
                s->first_byte = now;
            if (now >= STEADY && now < UNTIL)
                s->window_bytes += (uint64_t)n;
            feed(r, big, (size_t)n, now);
        } else if (n == 0) {
            fail(r, "server closed the connection while playing");
        } else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
            fail(r, "recv: %s", strerror(errno));
        }
        return;
    }
    /* Handshake: read into the reply buffer. */
    size_t room = HS_MAX - r->hs_len;
    if (room == 0) {
        fail(r, "%s: reply larger than %d bytes", state_name[r->st], HS_MAX);
        return;
    }
    ssize_t n = recv(r->fd, r->hs + r->hs_len, room, 0);
    if (n == 0) {
        fail(r, "%s %s: server closed the connection", state_name[r->st], opt_url);
        return;
    }
    if (n < 0) {
        if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
            fail(r, "%s: recv: %s", state_name[r->st], strerror(errno));
        return;
    }
    r->hs_len += (size_t)n;
    handshake_input(r, now);
}

static void worker(int w, int procs)
{
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    ME = &SH->w[w];
    NR = 0;
    for (long i = w; i < opt_n; i += procs)
        NR++;
    R = calloc((size_t)NR ? (size_t)NR : 1, sizeof *R);
    unsigned char *big = malloc((size_t)opt_read_size);
    EP = epoll_create1(EPOLL_CLOEXEC);
    if (!R || !big || EP < 0) {
        snprintf(ME->first_error, sizeof ME->first_error, "worker %d: no memory or epoll", w);
        _exit(3);
    }
    for (int k = 0; k < NR; k++) {
        R[k].fd = -1;
        R[k].idx = w + k * procs;
    }
    int next = 0;
    struct epoll_event evs[512];
    double last_return = 0;
    for (;;) {
        double now = mono();
        if (now >= UNTIL && SH->release)
            break;
        while (next < NR && (opt_ramp <= 0 || T0 + R[next].idx / opt_ramp <= now)) {
            start_reader(&R[next]);
            next++;
        }
        /* Wake at least every 10 ms: the lateness of that timer is the stall figure. */
        double wake = now + 0.010;
        if (next < NR && opt_ramp > 0 && T0 + R[next].idx / opt_ramp < wake)
            wake = T0 + R[next].idx / opt_ramp;
        int ms = (int)((wake - now) * 1000.0 + 0.999); /* rounded up (no libm) */
        if (ms < 0)
            ms = 0;
        if (last_return > 0 && now > STEADY && now < UNTIL && now - last_return > ME->max_stall)
            ME->max_stall = now - last_return; /* time spent handling the last batch */
        int k = epoll_wait(EP, evs, (int)(sizeof evs / sizeof evs[0]), ms);
        double after = mono();
        last_return = after;
        if (k == 0 && after > STEADY && after < UNTIL && after - (now + ms / 1000.0) > ME->max_stall)
            ME->max_stall = after - (now + ms / 1000.0);
        for (int j = 0; j < k; j++) {
            uint32_t id = evs[j].data.u32;
            if (id < (uint32_t)NR)
                on_event(&R[id], evs[j].events, big, after);
        }
    }
    for (int k = 0; k < NR; k++) {
        if (R[k].st != S_PLAYING && R[k].st != S_DONE)
            fail(&R[k], "not playing when the run ended (still in %s)", state_name[R[k].st]);
    }
    _exit(0);
}

/* ---- parent ------------------------------------------------------------------------- */
static int proc_usage(long pid, double *cpu, long *rss)
{
    char path[64], buf[4096];
    snprintf(path, sizeof path, "/proc/%ld/stat", pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    char *p = strrchr(buf, ')');
    if (!p)
        return 0;
    unsigned long ut = 0, st = 0;
    /* After ")": state(3) ... utime is field 14, stime 15 (1-based). */
    if (sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) != 2)
        return 0;
    *cpu = (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
    snprintf(path, sizeof path, "/proc/%ld/status", pid);
    f = fopen(path, "r");
    if (!f)
        return 0;
    *rss = -1;
    while (fgets(buf, sizeof buf, f))
        if (strncmp(buf, "VmRSS:", 6) == 0)
            *rss = strtol(buf + 6, NULL, 10);
    fclose(f);
    return *rss >= 0;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double pct(double *v, long n, double p)
{
    if (n <= 0)
        return NAN;
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return v[(long)((double)(n - 1) * p + 0.5)]; /* nearest rank, as ipcamd-bench */
}

static void usage(void)
{
    fprintf(stderr,
            "usage: reader --url rtsp://HOST:PORT/PATH [-n N] [--duration S] [--ramp R/s]\n"
            "              [--settle S] [--procs P] [--read-size BYTES] [--rcvbuf BYTES]\n"
            "              [--gap-ms MS] [--no-range] [--server-pid PID]\n");
    exit(2);
}

static int parse_url(const char *url)
{
    if (strncasecmp(url, "rtsp://", 7) != 0)
        return -1;
    const char *h = url + 7, *e = h + strcspn(h, "/");
    if (e == h || (size_t)(e - h) >= sizeof HOSTPORT)
        return -1;
    snprintf(HOSTPORT, sizeof HOSTPORT, "%.*s", (int)(e - h), h);
    const char *colon = strrchr(HOSTPORT, ':');
    if (HOSTPORT[0] == '[') { /* [v6]:port */
        const char *rb = strchr(HOSTPORT, ']');
        if (!rb)
            return -1;
        snprintf(HOST, sizeof HOST, "%.*s", (int)(rb - HOSTPORT - 1), HOSTPORT + 1);
        colon = rb[1] == ':' ? rb + 1 : NULL;
    } else {
        snprintf(HOST, sizeof HOST, "%.*s",
                 colon ? (int)(colon - HOSTPORT) : (int)strlen(HOSTPORT), HOSTPORT);
    }
    snprintf(PORT, sizeof PORT, "%s", colon ? colon + 1 : "554");
    return 0;
}

int main(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
#define ARG(name) (strcmp(a, name) == 0 && v && ++i)
        if (ARG("--url"))
            opt_url = v;
        else if (ARG("-n") || ARG("--n"))
            opt_n = atol(v);
        else if (ARG("--duration"))
            opt_duration = atof(v);
        else if (ARG("--ramp"))
            opt_ramp = atof(v);
        else if (ARG("--settle"))
            opt_settle = atof(v);
        else if (ARG("--gap-ms"))
            opt_gap_ms = atof(v);
        else if (ARG("--procs"))
            opt_procs = atol(v);
        else if (ARG("--read-size"))
            opt_read_size = atol(v);
        else if (ARG("--rcvbuf"))
            opt_rcvbuf = atol(v);
        else if (ARG("--server-pid"))
            opt_server_pid = atol(v);
        else if (strcmp(a, "--no-range") == 0)
            opt_range = 0;
        else
            usage();
#undef ARG
    }
    if (!opt_url || opt_n < 1 || opt_duration <= 0 || opt_read_size < 16 || strlen(opt_url) >= 512)
        usage();
    if (parse_url(opt_url) < 0) {
        fprintf(stderr, "reader: not an rtsp:// URL: %s (expected rtsp://HOST:PORT/PATH)\n",
                opt_url);
        return 2;
    }
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM};
    int gai = getaddrinfo(HOST, PORT, &hints, &ADDR);
    if (gai) {
        fprintf(stderr, "reader: %s: %s\n", HOSTPORT, gai_strerror(gai));
        return 2;
    }
    int procs = (int)(opt_procs > 0 ? opt_procs : sysconf(_SC_NPROCESSORS_ONLN));
    if (procs < 1)
        procs = 1;
    if (procs > opt_n)
        procs = (int)opt_n;
    /* Every connection is one descriptor of a worker: lift the soft limit. */
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }

    size_t rs_size = (size_t)opt_n * sizeof(struct rstat);
    size_t sh_size = sizeof(struct shared) + (size_t)procs * sizeof(struct wstat);
    RS = mmap(NULL, rs_size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    SH = mmap(NULL, sh_size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (RS == MAP_FAILED || SH == MAP_FAILED) {
        perror("reader: mmap");
        return 2;
    }

    double base_cpu = 0, s_cpu = 0, e_cpu = 0;
    long base_rss = 0, s_rss = 0, e_rss = 0;
    int have_base = opt_server_pid && proc_usage(opt_server_pid, &base_cpu, &base_rss);
    double ramp_time = opt_ramp > 0 ? (double)opt_n / opt_ramp : 0;
    T0 = mono() + 0.05; /* the workers are forked before the first reader is due */
    STEADY = T0 + ramp_time + opt_settle;
    UNTIL = STEADY + opt_duration;
    fflush(stdout);
    pid_t *kids = calloc((size_t)procs, sizeof *kids);
    for (int w = 0; w < procs; w++) {
        pid_t p = fork();
        if (p < 0) {
            perror("reader: fork");
            SH->release = 1;
            return 2;
        }
        if (p == 0)
            worker(w, procs);
        kids[w] = p;
    }
    sleep_until(STEADY);
    int have_start = opt_server_pid && proc_usage(opt_server_pid, &s_cpu, &s_rss);
    double sampled_from = mono();
    sleep_until(UNTIL);
    int have_end = opt_server_pid && proc_usage(opt_server_pid, &e_cpu, &e_rss);
    double sampled = mono() - sampled_from;
    if (sampled < 1e-3)
        sampled = 1e-3;
    double late_samples = sampled_from - STEADY;
    SH->release = 1;
    int worker_failed = 0;
    for (int w = 0; w < procs; w++) {
        int status;
        while (waitpid(kids[w], &status, 0) < 0 && errno == EINTR)
            ;
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
            worker_failed++;
    }
    struct rusage ru_c, ru_s;
    getrusage(RUSAGE_CHILDREN, &ru_c);
    getrusage(RUSAGE_SELF, &ru_s);
#define TV(t) ((double)(t).tv_sec + (double)(t).tv_usec / 1e6)
    double bench_cpu = TV(ru_c.ru_utime) + TV(ru_c.ru_stime) + TV(ru_s.ru_utime) + TV(ru_s.ru_stime);

    long n = opt_n, errors = 0, clean = 0, late = 0;
    uint64_t bytes = 0, window = 0, seq_gaps = 0, time_gaps = 0, frames = 0, rtp = 0, rtcp = 0;
    uint64_t reads = 0, resyncs = 0, other = 0;
    double *per = calloc((size_t)n, sizeof(double)), *fb = calloc((size_t)n, sizeof(double));
    double *fg = calloc((size_t)n, sizeof(double));
    long nfb = 0;
    for (long i = 0; i < n; i++) {
        struct rstat *s = &RS[i];
        errors += s->error;
        if (!s->error && s->seq_gaps == 0 && s->time_gaps == 0)
            clean++;
        if (s->play_sent == 0 || s->play_sent > STEADY)
            late++;
        bytes += s->bytes;
        window += s->window_bytes;
        seq_gaps += s->seq_gaps;
        time_gaps += s->time_gaps;
        frames += s->frames;
        rtp += s->rtp;
        rtcp += s->rtcp;
        other += s->other;
        reads += s->reads;
        resyncs += s->resyncs;
        per[i] = (double)s->window_bytes * 8 / 1e6 / opt_duration;
        if (s->first_byte > 0 && s->play_sent > 0)
            fb[nfb++] = (s->first_byte - s->play_sent) * 1000.0;
        fg[i] = s->max_frame_gap * 1000.0;
    }
    double stall = 0;
    const char *first_error = NULL;
    double first_at = 0;
    for (int w = 0; w < procs; w++) {
        if (SH->w[w].max_stall > stall)
            stall = SH->w[w].max_stall;
        if (SH->w[w].first_error[0] && (!first_error || SH->w[w].first_error_at < first_at)) {
            first_error = SH->w[w].first_error;
            first_at = SH->w[w].first_error_at;
        }
    }
    printf("readers=%ld transport=Tcp generator=reader.c procs=%d read_size=%ld errors=%ld "
           "clean_readers=%ld late_starts=%ld bytes=%llu window_bytes=%llu "
           "mbit_per_s_total=%.1f mbit_per_s_per_reader_min=%.3f mbit_per_s_per_reader_p50=%.3f "
           "seq_gaps=%llu time_gaps=%llu first_byte_ms_p50=%.2f first_byte_ms_p95=%.2f "
           "first_byte_ms_p99=%.2f first_byte_ms_max=%.2f max_frame_gap_ms_p50=%.0f max_frame_gap_ms_max=%.0f "
           "frames_per_reader=%.0f rtp_packets=%llu rtcp_packets=%llu other_frames=%llu "
           "resyncs=%llu reads=%llu bytes_per_read=%.0f bench_cpu_s=%.2f bench_max_stall_ms=%.0f",
           n, procs, opt_read_size, errors + worker_failed, clean, late,
           (unsigned long long)bytes, (unsigned long long)window,
           (double)window * 8 / 1e6 / opt_duration, pct(per, n, 0), pct(per, n, 0.5),
           (unsigned long long)seq_gaps, (unsigned long long)time_gaps, pct(fb, nfb, 0.5),
           pct(fb, nfb, 0.95), pct(fb, nfb, 0.99), pct(fb, nfb, 1), pct(fg, n, 0.5), pct(fg, n, 1),
           (double)frames / (double)n, (unsigned long long)rtp, (unsigned long long)rtcp,
           (unsigned long long)other, (unsigned long long)resyncs, (unsigned long long)reads,
           reads ? (double)bytes / (double)reads : NAN, bench_cpu, stall * 1000.0);
    if (have_base && have_start && have_end) {
        double cpu = e_cpu - s_cpu;
        double bytes_sampled = (double)window * sampled / opt_duration;
        printf(" sampled_s=%.2f sample_late_s=%.2f server_cpu_s=%.3f server_cpu_pct=%.1f "
               "server_cpu_s_per_gb=%.3f server_rss_kib_base=%ld server_rss_kib=%ld "
               "server_rss_kib_per_reader=%.1f",
               sampled, late_samples, cpu, cpu * 100.0 / sampled,
               window > 0 ? cpu / (bytes_sampled / 1e9) : NAN, base_rss, e_rss,
               (double)(e_rss - base_rss) / (double)n);
    }
    printf("\n");
    if (first_error)
        printf("first error: %s\n", first_error);
    else if (worker_failed)
        printf("first error: %d worker process(es) failed\n", worker_failed);
    return 0;
}
