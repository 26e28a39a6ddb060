/*
 * cairn-load: a small pipelining load generator for the memcache ASCII
 * protocol, for memcache's meta protocol (--protocol meta: mg/ms), for the
 * memcache binary protocol (--protocol binary: GET/SET packets), and for
 * Redis (RESP) with --protocol redis (modelled on redis-benchmark).
 *
 * Every request targets a key "key:%08u" drawn from a fixed key space, and the
 * value (and, for memcache, the flags) stored under a key are a pure function
 * of the key number (and --vseed), so every reply can be validated:
 *   - a set must answer exactly "STORED" (memcache), "HD" (meta), status 0
 *     with an empty body (binary) or "+OK" (redis);
 *   - a get hit must return exactly the expected key, flags and bytes
 *     (meta: "VA <len> f<flags>", no key; binary: status 0, 4 bytes of
 *     extras holding the flags, no key; redis: "$<len>", no flags);
 *   - a get miss ("END" / "EN" / status 1 / "$-1") is counted, and is an
 *     error when --preload was given;
 *   - binary replies must carry the opcode and the opaque (a per-connection
 *     sequence number) of the request they answer, in order.
 * Anything else (protocol error, error reply, unexpected or garbage reply,
 * connection closed while requests are in flight, timeout) counts as an
 * error, and the exit status is 1 when errors > 0.
 *
 * The text protocols differ only in how a request is encoded and how the
 * header line of a reply is read (struct protocol); the binary protocol
 * parses whole packets (parse_one_binary). Pipelining, validation of the
 * value bytes and the statistics are shared.
 *
 * Pipelining: each connection keeps up to -P requests in flight. The first
 * P requests go out in one write(); replies are parsed as they arrive (a
 * reply may be split over any number of reads) and the freed slots are
 * refilled with one write() per batch of parsed replies.
 *
 * Latency is measured per request, from the write() that carried it to the
 * read() that completed its reply, in a log-linear histogram (~1.5% error).
 *
 * --fsync-probe DIR measures the disk instead: one thread appends a record
 * (-d bytes, default 1 KB) to a temporary file in DIR and fdatasync()s it, in
 * a loop, and prints fsyncs_per_sec= (the single-writer fsync rate that group
 * commit is compared with).
 *
 * Plain C11 + POSIX (epoll, pthreads); no other libraries.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#define PROG "cairn-load"
#define MAX_LINE 1024          /* longest reply header line accepted */
#define MAX_VALUE (64u << 20)  /* largest -d accepted */
#define TMPL_PERIOD 64u        /* value pattern offsets */
#define HIST_SUB_BITS 6
#define HIST_SUB (1u << HIST_SUB_BITS)
#define HIST_BUCKETS (HIST_SUB * 2 + HIST_SUB * 58)
#define MAX_ERR_MSGS 10
#define PRELOAD_MIN_DEPTH 32u
#define DRAIN_NS (5ull * 1000000000ull)
#define REQ_OVERHEAD 96u       /* request bytes besides the value, either protocol */
#define PROBE_RECORD 1024u     /* --fsync-probe record size without -d */
#define PROBE_SECONDS 2.0      /* --fsync-probe duration without -T or -n */

/* ------------------------------------------------------------------------ */
/* configuration                                                            */

struct protocol;

struct config {
    const struct protocol *proto; /* --protocol */
    const char *fsync_probe_dir;  /* --fsync-probe DIR: measure the disk, no server */
    int have_d, have_n;           /* -d / -n given explicitly */
    char host[256];
    char port[16];
    unsigned threads;
    unsigned conns;
    unsigned pipeline;
    unsigned get_ratio;
    unsigned set_ratio;
    uint32_t value_size;
    uint32_t keyspace;
    uint64_t requests;     /* -n; used when seconds == 0 */
    double seconds;        /* -T; 0 = request-count mode */
    double timeout;        /* hard cap on the whole run, seconds */
    int preload;
    int quiet;
    uint64_t seed;
    uint32_t vseed;
    double rate;           /* --rate: total requests/s cap of the measured phase; 0 = none */
};

static struct config cfg;
static char *tmpl;                 /* value pattern, TMPL_PERIOD + value_size */
static atomic_int err_msgs_printed;
static uint64_t hard_deadline_ns;  /* absolute CLOCK_MONOTONIC */
static volatile sig_atomic_t interrupted;

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void die_usage(const char *fmt, ...)
{
    va_list ap;
    fputs(PROG ": ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputs(" (see --help)\n", stderr);
    exit(2);
}

static void report_error(const char *fmt, ...)
{
    if (atomic_fetch_add(&err_msgs_printed, 1) >= MAX_ERR_MSGS)
        return;
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    fprintf(stderr, PROG ": error: %s\n", buf);
}

/* ------------------------------------------------------------------------ */
/* deterministic keys and values                                            */

static uint32_t mix32(uint32_t x)
{
    x ^= x >> 16;
    x *= 0x7feb352dU;
    x ^= x >> 15;
    x *= 0x846ca68bU;
    x ^= x >> 16;
    return x;
}

static uint32_t expected_flags(uint32_t k)
{
    return mix32(k ^ (cfg.vseed * 0x9e3779b9U));
}

/* first (up to) 8 value bytes: hex of a per-key hash, so swapped values show */
static void value_head(uint32_t k, char out[8])
{
    static const char hex[] = "0123456789abcdef";
    uint32_t h = mix32(k * 2654435761U + cfg.vseed + 1U);
    for (int i = 7; i >= 0; i--) {
        out[i] = hex[h & 15u];
        h >>= 4;
    }
}

static size_t value_tail_off(uint32_t k)
{
    return (size_t)((k * 13u + cfg.vseed) % TMPL_PERIOD);
}

static void write_value(uint32_t k, char *dst)
{
    char head[8];
    uint32_t d = cfg.value_size;
    value_head(k, head);
    memcpy(dst, head, d < 8 ? d : 8);
    if (d > 8)
        memcpy(dst + 8, tmpl + value_tail_off(k), d - 8);
}

static int value_matches(uint32_t k, const char *src)
{
    char head[8];
    uint32_t d = cfg.value_size;
    value_head(k, head);
    if (memcmp(src, head, d < 8 ? d : 8) != 0)
        return 0;
    if (d > 8 && memcmp(src + 8, tmpl + value_tail_off(k), d - 8) != 0)
        return 0;
    return 1;
}

/* "key:%08u"; returns length */
static size_t format_key(uint32_t k, char *dst)
{
    if (k < 100000000u) {
        memcpy(dst, "key:", 4);
        for (int i = 11; i >= 4; i--) {
            dst[i] = (char)('0' + k % 10u);
            k /= 10u;
        }
        return 12;
    }
    return (size_t)sprintf(dst, "key:%08" PRIu32, k);
}

/* printable excerpt of a reply line for error messages */
static const char *excerpt(const char *p, size_t n, char *buf, size_t bufsz)
{
    size_t j = 0;
    for (size_t i = 0; i < n && j + 5 < bufsz; i++) {
        unsigned char ch = (unsigned char)p[i];
        if (ch >= 32 && ch < 127) {
            buf[j++] = (char)ch;
        } else {
            j += (size_t)snprintf(buf + j, bufsz - j, "\\x%02x", ch);
        }
    }
    buf[j] = 0;
    return buf;
}

/* ------------------------------------------------------------------------ */
/* protocols: request encoding and reply header lines                       */

enum reply_kind { RK_STORED, RK_MISS, RK_HIT };

/* What the header line of a reply says. A set's reply is only ever
 * RK_STORED; a get's is RK_MISS or RK_HIT (value_len value bytes follow the
 * header line's CRLF, then the protocol's hit_trailer). */
struct reply_head {
    enum reply_kind kind;
    unsigned long long value_len;
};

struct protocol {
    const char *name;
    /* Write the request (get or set of key k; opaque: the request's
     * per-connection sequence number, used by the binary protocol) at dst;
     * returns its length, at most REQ_OVERHEAD + cfg.value_size. */
    size_t (*encode)(char *dst, uint32_t k, int is_get, uint32_t opaque);
    /* Read the header line (ll bytes, CRLF excluded, ll < MAX_LINE) of the
     * reply to a get or set of key k. Returns 0, or -1 with a message for the
     * error report in err (the reply is invalid). */
    int (*parse_head)(uint32_t k, int is_get, const char *line, size_t ll, struct reply_head *h,
                      char *err, size_t errsz);
    const char *hit_trailer; /* bytes after a get hit's value */
    size_t hit_trailer_len;
    const char *hit_trailer_name; /* printable, for error messages */
    int binary;                   /* replies are binary packets: parse_head unused */
};

/* memcache ASCII: "get <key>", "set <key> <flags> 0 <bytes>"; replies
 * "STORED", "END" (miss), "VALUE <key> <flags> <bytes>[ <cas>]" + data + "END" */
static size_t mc_encode(char *dst, uint32_t k, int is_get, uint32_t opaque)
{
    (void)opaque;
    char *p = dst;
    uint32_t d = cfg.value_size;
    memcpy(p, is_get ? "get " : "set ", 4);
    p += 4;
    p += format_key(k, p);
    if (!is_get) {
        p += sprintf(p, " %" PRIu32 " 0 %" PRIu32 "\r\n", expected_flags(k), d);
        write_value(k, p);
        p += d;
    }
    *p++ = '\r';
    *p++ = '\n';
    return (size_t)(p - dst);
}

/* A set's reply line must be exactly `want` (STORED, +OK). */
static int expect_stored(uint32_t k, const char *want, const char *p, size_t ll,
                         struct reply_head *h, char *err, size_t errsz)
{
    char ex[160];
    if (ll == strlen(want) && memcmp(p, want, ll) == 0) {
        h->kind = RK_STORED;
        return 0;
    }
    snprintf(err, errsz, "set key:%08" PRIu32 ": expected %s, got '%s'", k, want,
             excerpt(p, ll, ex, sizeof ex));
    return -1;
}

static int mc_parse_head(uint32_t k, int is_get, const char *p, size_t ll, struct reply_head *h,
                         char *err, size_t errsz)
{
    char ex[160];
    if (!is_get)
        return expect_stored(k, "STORED", p, ll, h, err, errsz);
    if (ll == 3 && memcmp(p, "END", 3) == 0) {
        h->kind = RK_MISS;
        return 0;
    }
    if (ll < 6 || memcmp(p, "VALUE ", 6) != 0) {
        snprintf(err, errsz, "get key:%08" PRIu32 ": unexpected reply '%s'", k,
                 excerpt(p, ll, ex, sizeof ex));
        return -1;
    }
    /* VALUE <key> <flags> <bytes>[ <cas>] */
    char line[MAX_LINE + 1];
    memcpy(line, p, ll);
    line[ll] = 0;
    char keybuf[32];
    size_t kl = format_key(k, keybuf);
    const char *q = line + 6;
    const char *sp = strchr(q, ' ');
    if (!sp || (size_t)(sp - q) != kl || memcmp(q, keybuf, kl) != 0) {
        snprintf(err, errsz, "get %.*s: wrong key in '%s'", (int)kl, keybuf, line);
        return -1;
    }
    char *end;
    errno = 0;
    unsigned long long flags = strtoull(sp + 1, &end, 10);
    if (end == sp + 1 || *end != ' ' || errno) {
        snprintf(err, errsz, "get %.*s: bad flags in '%s'", (int)kl, keybuf, line);
        return -1;
    }
    const char *bstart = end + 1;
    unsigned long long bytes = strtoull(bstart, &end, 10);
    if (end == bstart || (*end != 0 && *end != ' ') || errno) {
        snprintf(err, errsz, "get %.*s: bad length in '%s'", (int)kl, keybuf, line);
        return -1;
    }
    if (flags != expected_flags(k)) {
        snprintf(err, errsz, "get %.*s: flags %llu, expected %" PRIu32, (int)kl, keybuf, flags,
                 expected_flags(k));
        return -1;
    }
    h->kind = RK_HIT;
    h->value_len = bytes;
    return 0;
}

/* Redis (RESP2): requests are arrays of bulk strings, "SET <key> <value>" and
 * "GET <key>"; replies "+OK", "$-1" (miss), "$<len>" + data + CRLF, or an
 * error "-ERR ..." */
static size_t resp_encode(char *dst, uint32_t k, int is_get, uint32_t opaque)
{
    (void)opaque;
    char key[32];
    size_t kl = format_key(k, key);
    char *p = dst;
    p += sprintf(p, "*%d\r\n$3\r\n%s\r\n$%zu\r\n", is_get ? 2 : 3, is_get ? "GET" : "SET", kl);
    memcpy(p, key, kl);
    p += kl;
    if (!is_get) {
        p += sprintf(p, "\r\n$%" PRIu32 "\r\n", cfg.value_size);
        write_value(k, p);
        p += cfg.value_size;
    }
    *p++ = '\r';
    *p++ = '\n';
    return (size_t)(p - dst);
}

static int resp_parse_head(uint32_t k, int is_get, const char *p, size_t ll, struct reply_head *h,
                           char *err, size_t errsz)
{
    char ex[160];
    const char *op = is_get ? "get" : "set";
    if (ll >= 1 && p[0] == '-') {
        snprintf(err, errsz, "%s key:%08" PRIu32 ": error reply '%s'", op, k,
                 excerpt(p, ll, ex, sizeof ex));
        return -1;
    }
    if (!is_get)
        return expect_stored(k, "+OK", p, ll, h, err, errsz);
    if (ll == 3 && memcmp(p, "$-1", 3) == 0) {
        h->kind = RK_MISS;
        return 0;
    }
    /* $<len>: digits only */
    unsigned long long len = 0;
    size_t i = 1;
    for (; i < ll && i < 20 && p[i] >= '0' && p[i] <= '9'; i++)
        len = len * 10 + (unsigned long long)(p[i] - '0');
    if (ll < 2 || p[0] != '$' || i != ll) {
        snprintf(err, errsz, "get key:%08" PRIu32 ": unexpected reply '%s'", k,
                 excerpt(p, ll, ex, sizeof ex));
        return -1;
    }
    h->kind = RK_HIT;
    h->value_len = len;
    return 0;
}

/* memcache meta: "mg <key> v f" (v: return the value, f: return the
 * client flags; a hit is "VA <bytes> f<flags>" + data + CRLF, a miss "EN":
 * the same information as a classic get's "VALUE <key> <flags> <bytes>"
 * but the key, which an in-order reply does not need); "ms <key> <bytes>
 * T0 F<flags>" + data, answered "HD". */
static size_t meta_encode(char *dst, uint32_t k, int is_get, uint32_t opaque)
{
    (void)opaque;
    char *p = dst;
    uint32_t d = cfg.value_size;
    memcpy(p, is_get ? "mg " : "ms ", 3);
    p += 3;
    p += format_key(k, p);
    if (is_get) {
        memcpy(p, " v f", 4);
        p += 4;
    } else {
        p += sprintf(p, " %" PRIu32 " T0 F%" PRIu32 "\r\n", d, expected_flags(k));
        write_value(k, p);
        p += d;
    }
    *p++ = '\r';
    *p++ = '\n';
    return (size_t)(p - dst);
}

static int meta_parse_head(uint32_t k, int is_get, const char *p, size_t ll, struct reply_head *h,
                           char *err, size_t errsz)
{
    char ex[160];
    if (!is_get)
        return expect_stored(k, "HD", p, ll, h, err, errsz);
    if (ll == 2 && memcmp(p, "EN", 2) == 0) {
        h->kind = RK_MISS;
        return 0;
    }
    /* VA <bytes> f<flags>: exactly these two tokens */
    char line[MAX_LINE + 1];
    memcpy(line, p, ll);
    line[ll] = 0;
    char *end = line;
    errno = 0;
    unsigned long long bytes = 0, flags = 0;
    int ok = ll > 3 && memcmp(line, "VA ", 3) == 0 && line[3] >= '0' && line[3] <= '9';
    if (ok) {
        bytes = strtoull(line + 3, &end, 10);
        ok = !errno && end[0] == ' ' && end[1] == 'f' && end[2] >= '0' && end[2] <= '9';
    }
    if (ok) {
        flags = strtoull(end + 2, &end, 10);
        ok = !errno && *end == 0;
    }
    if (!ok) {
        snprintf(err, errsz, "mg key:%08" PRIu32 ": unexpected reply '%s' (expected VA <bytes> f<flags>)",
                 k, excerpt(p, ll, ex, sizeof ex));
        return -1;
    }
    if (flags != expected_flags(k)) {
        snprintf(err, errsz, "mg key:%08" PRIu32 ": flags %llu, expected %" PRIu32, k, flags,
                 expected_flags(k));
        return -1;
    }
    h->kind = RK_HIT;
    h->value_len = bytes;
    return 0;
}

/* memcache binary: 24-byte header, big-endian. GET (0x00): key only; SET
 * (0x01): 8 bytes of extras (flags, exptime 0), key, value. Replies (magic
 * 0x81) are parsed whole by parse_one_binary. */
#define BIN_REQ 0x80
#define BIN_RES 0x81
#define BIN_GET 0x00
#define BIN_SET 0x01
#define BIN_HDR 24u

static void put_be16(char *p, uint16_t v)
{
    p[0] = (char)(v >> 8);
    p[1] = (char)v;
}

static void put_be32(char *p, uint32_t v)
{
    p[0] = (char)(v >> 24);
    p[1] = (char)(v >> 16);
    p[2] = (char)(v >> 8);
    p[3] = (char)v;
}

static uint16_t get_be16(const char *p)
{
    const unsigned char *u = (const unsigned char *)p;
    return (uint16_t)(u[0] << 8 | u[1]);
}

static uint32_t get_be32(const char *p)
{
    const unsigned char *u = (const unsigned char *)p;
    return (uint32_t)u[0] << 24 | (uint32_t)u[1] << 16 | (uint32_t)u[2] << 8 | u[3];
}

static size_t bin_encode(char *dst, uint32_t k, int is_get, uint32_t opaque)
{
    char key[32];
    size_t kl = format_key(k, key);
    uint8_t extlen = is_get ? 0 : 8;
    uint32_t vlen = is_get ? 0 : cfg.value_size;
    memset(dst, 0, BIN_HDR);
    dst[0] = (char)BIN_REQ;
    dst[1] = is_get ? BIN_GET : BIN_SET;
    put_be16(dst + 2, (uint16_t)kl);
    dst[4] = (char)extlen;
    put_be32(dst + 8, (uint32_t)(extlen + kl + vlen));
    put_be32(dst + 12, opaque);
    char *p = dst + BIN_HDR;
    if (!is_get) {
        put_be32(p, expected_flags(k));
        put_be32(p + 4, 0);
        p += 8;
    }
    memcpy(p, key, kl);
    p += kl;
    if (!is_get) {
        write_value(k, p);
        p += vlen;
    }
    return (size_t)(p - dst);
}

static const struct protocol protocols[] = {
    {"memcache", mc_encode, mc_parse_head, "\r\nEND\r\n", 7, "\\r\\nEND\\r\\n", 0},
    {"meta", meta_encode, meta_parse_head, "\r\n", 2, "\\r\\n", 0},
    {"binary", bin_encode, NULL, "", 0, "", 1},
    {"redis", resp_encode, resp_parse_head, "\r\n", 2, "\\r\\n", 0},
};

/* ------------------------------------------------------------------------ */
/* latency histogram (ns, log-linear, 64 sub-buckets per power of two)      */

static unsigned hist_index(uint64_t v)
{
    if (v < 2 * HIST_SUB)
        return (unsigned)v;
    unsigned msb = 63u - (unsigned)__builtin_clzll(v);
    unsigned shift = msb - HIST_SUB_BITS;
    unsigned idx = HIST_SUB * shift + (unsigned)(v >> shift);
    return idx < HIST_BUCKETS ? idx : HIST_BUCKETS - 1;
}

/* upper bound of a bucket, in ns */
static uint64_t hist_value(unsigned idx)
{
    if (idx < 2 * HIST_SUB)
        return idx;
    unsigned shift = idx / HIST_SUB - 1;
    uint64_t m = idx - (uint64_t)HIST_SUB * shift;
    return ((m + 1) << shift) - 1;
}

/* ------------------------------------------------------------------------ */
/* per-thread state                                                         */

struct stats {
    uint64_t ops;      /* completed and validated requests */
    uint64_t gets, sets, hits, misses;
    uint64_t errors;
    uint64_t lat_sum_ns;
    uint64_t lat_max_ns;
    uint64_t *hist;
};

struct req {
    uint64_t t_send;
    uint32_t key;
    uint32_t opaque;        /* binary protocol: the request's sequence number */
    uint8_t is_get;
};

struct conn {
    int fd;
    int dead;
    int want_out;           /* EPOLLOUT registered */
    char *rbuf;
    size_t rcap, rpos, rlen;
    char *wbuf;
    size_t wcap, wpos, wlen;
    struct req *ring;
    unsigned ring_cap, head, count;
    uint64_t rng;
    uint32_t pl_next, pl_end; /* preload range [next, end) */
    uint32_t seq;             /* next opaque (binary protocol) */
};

enum phase { PH_PRELOAD, PH_MEASURE };

struct thread_ctx {
    unsigned id;
    pthread_t tid;
    int epfd;
    struct conn *conns;
    unsigned nconns;
    unsigned depth;          /* in-flight limit of the current phase */
    enum phase phase;
    uint64_t budget;         /* requests left to issue (request-count mode) */
    uint64_t stop_at;        /* time-mode end of issuing; 0 = none */
    double rate;             /* this thread's share of --rate, requests/s; 0 = none */
    uint64_t issued;         /* requests issued in the measured phase (for --rate) */
    struct stats pre, run;
    uint64_t run_start, run_end;
    uint64_t pre_start, pre_end;
    int setup_failed;
};

static pthread_barrier_t start_barrier;

static uint64_t rng_next(uint64_t *s)
{
    /* xorshift64* */
    uint64_t x = *s;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *s = x;
    return x * 0x2545F4914F6CDD1DULL;
}

static void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p) {
        fprintf(stderr, PROG ": out of memory\n");
        exit(1);
    }
    return p;
}

static int connect_server(void)
{
    struct addrinfo hints, *res = NULL, *ai;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    int rc = getaddrinfo(cfg.host, cfg.port, &hints, &res);
    if (rc != 0) {
        report_error("cannot resolve %s: %s", cfg.host, gai_strerror(rc));
        return -1;
    }
    int fd = -1, saved = 0;
    for (ai = res; ai; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
        if (fd < 0) {
            saved = errno;
            continue;
        }
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
            break;
        saved = errno;
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    if (fd < 0) {
        report_error("cannot connect to %s:%s: %s", cfg.host, cfg.port, strerror(saved));
        return -1;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0) {
        report_error("fcntl: %s", strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}

static struct stats *cur_stats(struct thread_ctx *t)
{
    return t->phase == PH_PRELOAD ? &t->pre : &t->run;
}

static void conn_kill(struct thread_ctx *t, struct conn *c)
{
    if (c->dead)
        return;
    c->dead = 1;
    epoll_ctl(t->epfd, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    c->fd = -1;
    c->count = 0;
    c->rpos = c->rlen = 0;
    c->wpos = c->wlen = 0;
}

static void conn_fail(struct thread_ctx *t, struct conn *c, const char *fmt, ...)
{
    char buf[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    report_error("thread %u conn fd %d: %s (%u requests in flight; connection dropped)",
                 t->id, c->fd, buf, c->count);
    cur_stats(t)->errors++;
    conn_kill(t, c);
}

static void set_want_out(struct thread_ctx *t, struct conn *c, int on)
{
    if (c->want_out == on)
        return;
    struct epoll_event ev;
    memset(&ev, 0, sizeof ev);
    ev.events = EPOLLIN | (on ? EPOLLOUT : 0u);
    ev.data.ptr = c;
    if (epoll_ctl(t->epfd, EPOLL_CTL_MOD, c->fd, &ev) == 0)
        c->want_out = on;
}

static void conn_flush(struct thread_ctx *t, struct conn *c)
{
    while (c->wpos < c->wlen) {
        ssize_t n = write(c->fd, c->wbuf + c->wpos, c->wlen - c->wpos);
        if (n > 0) {
            c->wpos += (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            set_want_out(t, c, 1);
            return;
        }
        conn_fail(t, c, "write: %s", n < 0 ? strerror(errno) : "short write");
        return;
    }
    c->wpos = c->wlen = 0;
    set_want_out(t, c, 0);
}

/* Can this connection issue one more request in the current phase? With
 * ignore_rate, a request that only waits for a --rate token counts as "yes"
 * (the phase is not over). */
static int can_issue_r(struct thread_ctx *t, struct conn *c, uint64_t now, int ignore_rate)
{
    if (c->dead || c->count >= t->depth)
        return 0;
    if (t->phase == PH_PRELOAD)
        return c->pl_next < c->pl_end;
    if (interrupted)
        return 0;
    if (!ignore_rate && t->rate > 0 && (double)t->issued >= t->rate * (double)(now - t->run_start) / 1e9 + 1.0)
        return 0; /* --rate: no token yet */
    if (t->stop_at)
        return now < t->stop_at;
    return t->budget > 0;
}

static int can_issue(struct thread_ctx *t, struct conn *c, uint64_t now)
{
    return can_issue_r(t, c, now, 0);
}

/* Append as many requests as allowed, then write them with one write(). */
static void conn_issue(struct thread_ctx *t, struct conn *c)
{
    if (c->dead)
        return;
    uint64_t now = now_ns();
    if (!can_issue(t, c, now))
        return;
    if (c->wpos > 0) {
        memmove(c->wbuf, c->wbuf + c->wpos, c->wlen - c->wpos);
        c->wlen -= c->wpos;
        c->wpos = 0;
    }
    unsigned added = 0;
    while (can_issue(t, c, now)) {
        uint32_t k;
        int is_get;
        if (t->phase == PH_PRELOAD) {
            k = c->pl_next++;
            is_get = 0;
        } else {
            uint64_t r = rng_next(&c->rng);
            k = (uint32_t)((r >> 32) % cfg.keyspace);
            is_get = (unsigned)((uint32_t)r % (cfg.get_ratio + cfg.set_ratio)) < cfg.get_ratio;
            if (!t->stop_at)
                t->budget--;
            t->issued++;
        }
        struct req *r = &c->ring[(c->head + c->count) % c->ring_cap];
        r->opaque = c->seq++;
        c->wlen += cfg.proto->encode(c->wbuf + c->wlen, k, is_get, r->opaque);
        r->key = k;
        r->is_get = (uint8_t)is_get;
        r->t_send = now;
        c->count++;
        added++;
    }
    if (added)
        conn_flush(t, c);
}

static void complete(struct thread_ctx *t, struct conn *c, uint64_t now)
{
    struct stats *s = cur_stats(t);
    struct req *r = &c->ring[c->head];
    uint64_t lat = now > r->t_send ? now - r->t_send : 0;
    s->ops++;
    s->lat_sum_ns += lat;
    if (lat > s->lat_max_ns)
        s->lat_max_ns = lat;
    s->hist[hist_index(lat)]++;
    c->head = (c->head + 1) % c->ring_cap;
    c->count--;
}

static const char *find_crlf(const char *p, size_t n)
{
    const char *q = memchr(p, '\n', n);
    if (!q)
        return NULL;
    if (q == p || q[-1] != '\r')
        return (const char *)-1; /* bare LF: protocol error */
    return q - 1;
}

enum parse_res { P_NEED_MORE, P_DONE, P_FAILED };

/* Parse the binary reply packet of the oldest in-flight request. */
static enum parse_res parse_one_binary(struct thread_ctx *t, struct conn *c, uint64_t now)
{
    const char *p = c->rbuf + c->rpos;
    size_t avail = c->rlen - c->rpos;
    struct req *r = &c->ring[c->head];
    struct stats *s = cur_stats(t);
    const char *op = r->is_get ? "get" : "set";
    unsigned want_op = r->is_get ? BIN_GET : BIN_SET;
    if (avail < BIN_HDR)
        return P_NEED_MORE;
    unsigned magic = (unsigned char)p[0], opcode = (unsigned char)p[1];
    unsigned keylen = get_be16(p + 2), extlen = (unsigned char)p[4], status = get_be16(p + 6);
    uint32_t bodylen = get_be32(p + 8), opaque = get_be32(p + 12);
    if (magic != BIN_RES) {
        char ex[160];
        conn_fail(t, c, "%s key:%08" PRIu32 ": reply magic 0x%02x, expected 0x81: '%s'", op, r->key,
                  magic, excerpt(p, avail < 24 ? avail : 24, ex, sizeof ex));
        return P_FAILED;
    }
    if (opcode != want_op || opaque != r->opaque) {
        conn_fail(t, c, "%s key:%08" PRIu32 ": reply opcode 0x%02x opaque %" PRIu32
                  ", expected 0x%02x opaque %" PRIu32, op, r->key, opcode, opaque, want_op, r->opaque);
        return P_FAILED;
    }
    if (bodylen > (uint32_t)cfg.value_size + 1024u || extlen + keylen > bodylen) {
        conn_fail(t, c, "%s key:%08" PRIu32 ": bad reply lengths (body %" PRIu32 ", extras %u, key %u)",
                  op, r->key, bodylen, extlen, keylen);
        return P_FAILED;
    }
    if (avail < BIN_HDR + (size_t)bodylen)
        return P_NEED_MORE;
    const char *body = p + BIN_HDR;
    if (!r->is_get) {
        if (status != 0 || bodylen != 0) {
            conn_fail(t, c, "set key:%08" PRIu32 ": status 0x%04x, body %" PRIu32
                      " bytes, expected status 0 and no body", r->key, status, bodylen);
            return P_FAILED;
        }
        s->sets++;
    } else if (status == 1) { /* key not found */
        if (cfg.preload) {
            conn_fail(t, c, "get key:%08" PRIu32 ": miss, but the key space was preloaded", r->key);
            return P_FAILED;
        }
        s->gets++;
        s->misses++;
    } else {
        if (status != 0 || extlen != 4 || keylen != 0) {
            conn_fail(t, c, "get key:%08" PRIu32 ": status 0x%04x, extras %u, key %u;"
                      " expected status 0, 4 bytes of flags, no key", r->key, status, extlen, keylen);
            return P_FAILED;
        }
        uint32_t flags = get_be32(body), vlen = bodylen - 4;
        if (flags != expected_flags(r->key)) {
            conn_fail(t, c, "get key:%08" PRIu32 ": flags %" PRIu32 ", expected %" PRIu32, r->key,
                      flags, expected_flags(r->key));
            return P_FAILED;
        }
        if (vlen != cfg.value_size || !value_matches(r->key, body + 4)) {
            conn_fail(t, c, "get key:%08" PRIu32 ": %" PRIu32 " value bytes%s, expected %" PRIu32,
                      r->key, vlen, vlen == cfg.value_size ? " that differ" : "", cfg.value_size);
            return P_FAILED;
        }
        s->gets++;
        s->hits++;
    }
    c->rpos += BIN_HDR + (size_t)bodylen;
    complete(t, c, now);
    return P_DONE;
}

/* Parse the reply of the oldest in-flight request: the protocol reads the
 * header line; the value bytes and what a miss means are checked here. */
static enum parse_res parse_one(struct thread_ctx *t, struct conn *c, uint64_t now)
{
    const char *p = c->rbuf + c->rpos;
    size_t avail = c->rlen - c->rpos;
    struct req *r = &c->ring[c->head];
    struct stats *s = cur_stats(t);
    const struct protocol *pr = cfg.proto;
    char ex[160];
    if (pr->binary)
        return parse_one_binary(t, c, now);
    const char *eol = find_crlf(p, avail < MAX_LINE ? avail : MAX_LINE);
    if (eol == (const char *)-1) {
        conn_fail(t, c, "reply line ends with a bare LF");
        return P_FAILED;
    }
    if (!eol) {
        if (avail >= MAX_LINE) {
            conn_fail(t, c, "reply line longer than %d bytes: '%s'", MAX_LINE,
                      excerpt(p, 60, ex, sizeof ex));
            return P_FAILED;
        }
        return P_NEED_MORE;
    }
    size_t ll = (size_t)(eol - p);
    struct reply_head h;
    char err[400];
    if (pr->parse_head(r->key, r->is_get, p, ll, &h, err, sizeof err) != 0) {
        conn_fail(t, c, "%s", err);
        return P_FAILED;
    }

    switch (h.kind) {
    case RK_STORED:
        c->rpos += ll + 2;
        s->sets++;
        complete(t, c, now);
        return P_DONE;
    case RK_MISS:
        if (cfg.preload) {
            conn_fail(t, c, "get key:%08" PRIu32 ": miss, but the key space was preloaded",
                      r->key);
            return P_FAILED;
        }
        c->rpos += ll + 2;
        s->gets++;
        s->misses++;
        complete(t, c, now);
        return P_DONE;
    case RK_HIT:
        break;
    }
    char keybuf[32];
    size_t kl = format_key(r->key, keybuf);
    if (h.value_len != cfg.value_size) {
        conn_fail(t, c, "get %.*s: %llu bytes, expected %" PRIu32, (int)kl, keybuf, h.value_len,
                  cfg.value_size);
        return P_FAILED;
    }
    size_t need = ll + 2 + (size_t)h.value_len + pr->hit_trailer_len;
    if (avail < need)
        return P_NEED_MORE;
    const char *data = p + ll + 2;
    if (!value_matches(r->key, data)) {
        conn_fail(t, c, "get %.*s: value bytes differ from the expected value", (int)kl,
                  keybuf);
        return P_FAILED;
    }
    if (memcmp(data + h.value_len, pr->hit_trailer, pr->hit_trailer_len) != 0) {
        conn_fail(t, c, "get %.*s: value not followed by %s: '%s'", (int)kl, keybuf,
                  pr->hit_trailer_name, excerpt(data + h.value_len, pr->hit_trailer_len, ex, sizeof ex));
        return P_FAILED;
    }
    c->rpos += need;
    s->gets++;
    s->hits++;
    complete(t, c, now);
    return P_DONE;
}

static void conn_read(struct thread_ctx *t, struct conn *c)
{
    for (int rounds = 0; rounds < 4 && !c->dead; rounds++) {
        if (c->rpos == c->rlen) {
            c->rpos = c->rlen = 0;
        } else if (c->rcap - c->rlen < c->rcap / 4 && c->rpos > 0) {
            memmove(c->rbuf, c->rbuf + c->rpos, c->rlen - c->rpos);
            c->rlen -= c->rpos;
            c->rpos = 0;
        }
        if (c->rlen == c->rcap) {
            /* cannot happen with a sane server: rcap holds a full reply */
            conn_fail(t, c, "read buffer full (%zu bytes) without a complete reply", c->rcap);
            return;
        }
        ssize_t n = read(c->fd, c->rbuf + c->rlen, c->rcap - c->rlen);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            break;
        if (n <= 0) {
            if (n == 0)
                conn_fail(t, c, "connection closed by server");
            else
                conn_fail(t, c, "read: %s", strerror(errno));
            return;
        }
        c->rlen += (size_t)n;
        uint64_t now = now_ns();
        while (c->count > 0 && c->rpos < c->rlen) {
            enum parse_res pr = parse_one(t, c, now);
            if (pr == P_FAILED)
                return;
            if (pr == P_NEED_MORE)
                break;
        }
        if (c->count == 0 && c->rpos < c->rlen) {
            char ex[160];
            conn_fail(t, c, "unsolicited data from server: '%s'",
                      excerpt(c->rbuf + c->rpos, c->rlen - c->rpos < 60 ? c->rlen - c->rpos : 60,
                              ex, sizeof ex));
            return;
        }
        if ((size_t)n < c->rcap / 2)
            break;
    }
}

static unsigned total_inflight(struct thread_ctx *t)
{
    unsigned n = 0;
    for (unsigned i = 0; i < t->nconns; i++)
        if (!t->conns[i].dead)
            n += t->conns[i].count;
    return n;
}

/* Run one phase until every connection is idle with nothing left to issue,
 * or until the deadline. Returns the number of requests abandoned. */
static unsigned run_phase(struct thread_ctx *t, uint64_t deadline)
{
    struct epoll_event evs[64];
    for (unsigned i = 0; i < t->nconns; i++)
        conn_issue(t, &t->conns[i]);
    for (;;) {
        uint64_t now = now_ns();
        int busy = 0;
        for (unsigned i = 0; i < t->nconns; i++) {
            struct conn *c = &t->conns[i];
            if (c->dead)
                continue;
            if (c->count > 0 || can_issue_r(t, c, now, 1)) {
                busy = 1;
                break;
            }
        }
        if (!busy)
            return 0;
        if (now >= deadline || (t->stop_at && now >= t->stop_at + DRAIN_NS))
            return total_inflight(t);
        int n = epoll_wait(t->epfd, evs, 64, t->rate > 0 && t->phase == PH_MEASURE ? 1 : 50);
        if (n < 0 && errno != EINTR) {
            report_error("epoll_wait: %s", strerror(errno));
            return total_inflight(t);
        }
        for (int i = 0; i < n; i++) {
            struct conn *c = evs[i].data.ptr;
            if (c->dead)
                continue;
            if (evs[i].events & EPOLLOUT)
                conn_flush(t, c);
            if (!c->dead && (evs[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP)))
                conn_read(t, c);
        }
        for (int i = 0; i < n; i++) {
            struct conn *c = evs[i].data.ptr;
            if (!c->dead && c->wpos == c->wlen)
                conn_issue(t, c);
        }
        if (n == 0 || t->rate > 0) {
            /* quiet period: top up any connection that has room (defensive;
             * normally every issue happens right after a reply batch). With
             * --rate, tokens arrive with time, so top up after every wakeup. */
            for (unsigned i = 0; i < t->nconns; i++) {
                struct conn *c = &t->conns[i];
                if (!c->dead && c->wpos == c->wlen)
                    conn_issue(t, c);
            }
        }
    }
}

static void *thread_main(void *arg)
{
    struct thread_ctx *t = arg;
    uint64_t phase_deadline = hard_deadline_ns;

    if (cfg.preload && !t->setup_failed) {
        t->phase = PH_PRELOAD;
        t->depth = cfg.pipeline > PRELOAD_MIN_DEPTH ? cfg.pipeline : PRELOAD_MIN_DEPTH;
        t->pre_start = now_ns();
        unsigned left = run_phase(t, phase_deadline);
        t->pre_end = now_ns();
        if (left) {
            report_error("thread %u: preload timed out with %u requests in flight", t->id, left);
            t->pre.errors += left;
        }
        for (unsigned i = 0; i < t->nconns; i++) {
            struct conn *c = &t->conns[i];
            if (!c->dead && c->pl_next < c->pl_end) {
                report_error("thread %u: preload incomplete", t->id);
                t->pre.errors++;
                break;
            }
        }
    }
    pthread_barrier_wait(&start_barrier);

    t->phase = PH_MEASURE;
    t->depth = cfg.pipeline;
    t->rate = cfg.rate / cfg.threads;
    t->run_start = now_ns();
    if (cfg.seconds > 0)
        t->stop_at = t->run_start + (uint64_t)(cfg.seconds * 1e9);
    if (!t->setup_failed) {
        unsigned left = run_phase(t, phase_deadline);
        if (left) {
            report_error("thread %u: timed out with %u requests in flight", t->id, left);
            t->run.errors += left;
        }
    }
    t->run_end = now_ns();
    return NULL;
}

/* ------------------------------------------------------------------------ */
/* options                                                                  */

static void usage(FILE *f)
{
    fprintf(f,
            "usage: " PROG " [options]\n"
            "       " PROG " --fsync-probe DIR [-T SECONDS | -n COUNT] [-d BYTES] [-q]\n"
            "  -s, --server HOST:PORT   server address (default 127.0.0.1:11211)\n"
            "      --protocol NAME      memcache (ASCII: get/set, the default), meta\n"
            "                           (mg <key> v f / ms <key> <bytes> T0 F<flags>), binary\n"
            "                           (GET/SET packets, opaque checked) or redis (RESP:\n"
            "                           GET/SET, without flags); same keys, values,\n"
            "                           pipelining (-P) and validation\n"
            "  -t, --threads N          client threads (default 1)\n"
            "  -c, --connections N      connections in total, split over threads (default 16)\n"
            "  -P, --pipeline N         requests in flight per connection; 1 = request/response\n"
            "                           (default 1)\n"
            "  -r, --ratio G:S          gets:sets mix (default 9:1; 1:0 = gets only, 0:1 = sets)\n"
            "  -d, --data-size N        value size in bytes (default 100)\n"
            "  -k, --keyspace N         number of distinct keys key:00000000.. (default 10000)\n"
            "  -n, --requests N         total requests to send (default 100000; 0 with --preload\n"
            "                           = preload only)\n"
            "  -T, --time SECONDS       run for this long instead of -n\n"
            "      --preload            set every key once before measuring; misses become errors\n"
            "  -q, --quiet              print one machine-readable line:\n"
            "                           ops_per_sec=.. p50_us=.. p99_us=.. errors=.. ...\n"
            "      --seed N             RNG seed for the key/command sequence (default 1)\n"
            "      --vseed N            value/flags generation seed (default 0); values of a run\n"
            "                           are only valid against data written with the same vseed\n"
            "      --timeout SECONDS    hard cap on the whole run (default: -T + 30, or 300)\n"
            "      --rate N             issue at most N requests/s in total (steady load;\n"
            "                           default: as fast as replies allow)\n"
            "      --fsync-probe DIR    no server: append -d bytes (default 1024) to a temp\n"
            "                           file in DIR and fdatasync() it, in a loop, one thread,\n"
            "                           for -T seconds (default 2) or -n times; prints\n"
            "                           fsyncs_per_sec=.. p50_us=.. p99_us=.. fsyncs=.. seconds=..\n"
            "                           and removes the file\n"
            "  -h, --help               this text\n"
            "Exit status: 0 = no errors, 1 = errors (invalid replies, misses after --preload,\n"
            "connection failures, timeouts), 2 = bad usage.\n");
}

static uint64_t parse_u64(const char *opt, const char *s, uint64_t min, uint64_t max)
{
    char *end;
    errno = 0;
    if (!*s || *s == '-' || *s == '+')
        die_usage("invalid value for %s: '%s'", opt, s);
    unsigned long long v = strtoull(s, &end, 10);
    if (*end || errno || v < min || v > max)
        die_usage("invalid value for %s: '%s' (expected an integer in %" PRIu64 "..%" PRIu64 ")",
                  opt, s, min, max);
    return v;
}

static double parse_seconds(const char *opt, const char *s)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (end == s || *end || errno || !(v > 0) || v > 86400)
        die_usage("invalid value for %s: '%s' (expected seconds > 0)", opt, s);
    return v;
}

static void parse_args(int argc, char **argv)
{
    enum { O_PRELOAD = 1000, O_SEED, O_VSEED, O_TIMEOUT, O_RATE, O_PROTOCOL, O_FSYNC_PROBE };
    static const struct option longopts[] = {
        {"server", required_argument, NULL, 's'},
        {"threads", required_argument, NULL, 't'},
        {"connections", required_argument, NULL, 'c'},
        {"pipeline", required_argument, NULL, 'P'},
        {"ratio", required_argument, NULL, 'r'},
        {"data-size", required_argument, NULL, 'd'},
        {"keyspace", required_argument, NULL, 'k'},
        {"requests", required_argument, NULL, 'n'},
        {"time", required_argument, NULL, 'T'},
        {"preload", no_argument, NULL, O_PRELOAD},
        {"quiet", no_argument, NULL, 'q'},
        {"seed", required_argument, NULL, O_SEED},
        {"vseed", required_argument, NULL, O_VSEED},
        {"timeout", required_argument, NULL, O_TIMEOUT},
        {"rate", required_argument, NULL, O_RATE},
        {"protocol", required_argument, NULL, O_PROTOCOL},
        {"fsync-probe", required_argument, NULL, O_FSYNC_PROBE},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    snprintf(cfg.host, sizeof cfg.host, "127.0.0.1");
    snprintf(cfg.port, sizeof cfg.port, "11211");
    cfg.threads = 1;
    cfg.conns = 16;
    cfg.pipeline = 1;
    cfg.get_ratio = 9;
    cfg.set_ratio = 1;
    cfg.value_size = 100;
    cfg.keyspace = 10000;
    cfg.requests = 100000;
    cfg.seed = 1;
    cfg.proto = &protocols[0];

    opterr = 0;
    int ch;
    while ((ch = getopt_long(argc, argv, ":s:t:c:P:r:d:k:n:T:qh", longopts, NULL)) != -1) {
        switch (ch) {
        case 's': {
            const char *colon = strrchr(optarg, ':');
            const char *port = colon ? colon + 1 : optarg;
            size_t hl = colon ? (size_t)(colon - optarg) : 0;
            if (hl >= sizeof cfg.host)
                die_usage("host name too long: '%s'", optarg);
            parse_u64("-s port", port, 1, 65535);
            if (hl) {
                memcpy(cfg.host, optarg, hl);
                cfg.host[hl] = 0;
            }
            snprintf(cfg.port, sizeof cfg.port, "%s", port);
            break;
        }
        case 't':
            cfg.threads = (unsigned)parse_u64("-t", optarg, 1, 256);
            break;
        case 'c':
            cfg.conns = (unsigned)parse_u64("-c", optarg, 1, 10000);
            break;
        case 'P':
            cfg.pipeline = (unsigned)parse_u64("-P", optarg, 1, 4096);
            break;
        case 'r': {
            char buf[64];
            snprintf(buf, sizeof buf, "%s", optarg);
            char *colon = strchr(buf, ':');
            if (!colon)
                die_usage("invalid value for --ratio: '%s' (expected GETS:SETS, e.g. 9:1)", optarg);
            *colon = 0;
            cfg.get_ratio = (unsigned)parse_u64("--ratio", buf, 0, 1000000);
            cfg.set_ratio = (unsigned)parse_u64("--ratio", colon + 1, 0, 1000000);
            if (cfg.get_ratio + cfg.set_ratio == 0)
                die_usage("invalid value for --ratio: '%s' (both parts are 0)", optarg);
            break;
        }
        case 'd':
            cfg.value_size = (uint32_t)parse_u64("-d", optarg, 1, MAX_VALUE);
            cfg.have_d = 1;
            break;
        case 'k':
            cfg.keyspace = (uint32_t)parse_u64("-k", optarg, 1, UINT32_MAX);
            break;
        case 'n':
            cfg.requests = parse_u64("-n", optarg, 0, UINT64_MAX / 2);
            cfg.have_n = 1;
            break;
        case 'T':
            cfg.seconds = parse_seconds("-T", optarg);
            break;
        case 'q':
            cfg.quiet = 1;
            break;
        case 'h':
            usage(stdout);
            exit(0);
        case O_PRELOAD:
            cfg.preload = 1;
            break;
        case O_SEED:
            cfg.seed = parse_u64("--seed", optarg, 0, UINT64_MAX);
            break;
        case O_VSEED:
            cfg.vseed = (uint32_t)parse_u64("--vseed", optarg, 0, UINT32_MAX);
            break;
        case O_TIMEOUT:
            cfg.timeout = parse_seconds("--timeout", optarg);
            break;
        case O_RATE:
            cfg.rate = (double)parse_u64("--rate", optarg, 1, 100000000);
            break;
        case O_PROTOCOL: {
            const struct protocol *found = NULL;
            for (size_t i = 0; i < sizeof protocols / sizeof protocols[0]; i++)
                if (strcmp(optarg, protocols[i].name) == 0)
                    found = &protocols[i];
            if (!found)
                die_usage("unknown --protocol '%s' (memcache, meta, binary or redis)", optarg);
            cfg.proto = found;
            break;
        }
        case O_FSYNC_PROBE:
            if (!*optarg)
                die_usage("--fsync-probe needs a directory");
            cfg.fsync_probe_dir = optarg;
            break;
        case ':':
            if (optopt)
                die_usage("option -%c needs an argument", optopt);
            die_usage("option %s needs an argument", argv[optind - 1]);
            break;
        default:
            if (optopt)
                die_usage("unknown option -%c", optopt);
            die_usage("unknown option %s", argv[optind - 1]);
        }
    }
    if (optind < argc)
        die_usage("unexpected argument '%s'", argv[optind]);
    if (cfg.have_n && cfg.seconds > 0)
        die_usage("-n and -T are mutually exclusive");
    if (cfg.fsync_probe_dir) {
        if (!cfg.have_d)
            cfg.value_size = PROBE_RECORD;
        if (!cfg.have_n && cfg.seconds == 0)
            cfg.seconds = PROBE_SECONDS;
        if (cfg.have_n && cfg.requests == 0)
            die_usage("--fsync-probe with -n needs a count >= 1");
        return;
    }
    if (cfg.seconds == 0 && cfg.requests == 0 && !cfg.preload)
        die_usage("-n 0 only makes sense with --preload");
    if (cfg.threads > cfg.conns)
        cfg.threads = cfg.conns;
    if (cfg.timeout == 0)
        cfg.timeout = cfg.seconds > 0 ? cfg.seconds + 30 : 300;
}

/* ------------------------------------------------------------------------ */

static void on_signal(int sig)
{
    (void)sig;
    interrupted = 1;
}

static void stats_add(struct stats *dst, const struct stats *src)
{
    dst->ops += src->ops;
    dst->gets += src->gets;
    dst->sets += src->sets;
    dst->hits += src->hits;
    dst->misses += src->misses;
    dst->errors += src->errors;
    dst->lat_sum_ns += src->lat_sum_ns;
    if (src->lat_max_ns > dst->lat_max_ns)
        dst->lat_max_ns = src->lat_max_ns;
    for (unsigned i = 0; i < HIST_BUCKETS; i++)
        dst->hist[i] += src->hist[i];
}

static double percentile_us(const struct stats *s, double pct)
{
    if (s->ops == 0)
        return 0;
    uint64_t rank = (uint64_t)((double)s->ops * pct / 100.0 + 0.999999);
    if (rank < 1)
        rank = 1;
    uint64_t acc = 0;
    for (unsigned i = 0; i < HIST_BUCKETS; i++) {
        acc += s->hist[i];
        if (acc >= rank) {
            uint64_t v = hist_value(i);
            if (v > s->lat_max_ns)
                v = s->lat_max_ns;
            return (double)v / 1000.0;
        }
    }
    return (double)s->lat_max_ns / 1000.0;
}

static void cleanup(struct thread_ctx *th, unsigned nthreads)
{
    for (unsigned i = 0; i < nthreads; i++) {
        struct thread_ctx *t = &th[i];
        for (unsigned j = 0; t->conns && j < t->nconns; j++) {
            struct conn *c = &t->conns[j];
            if (c->fd > 0 && !c->dead)
                close(c->fd);
            free(c->ring);
            free(c->wbuf);
            free(c->rbuf);
        }
        if (t->epfd > 0)
            close(t->epfd);
        free(t->conns);
        free(t->pre.hist);
        free(t->run.hist);
    }
    free(th);
    free(tmpl);
    tmpl = NULL;
}

/* --fsync-probe: the single-writer fsync rate of the file system under dir
 * (what a write-ahead log that syncs every record alone would reach). */
static int fsync_probe(const char *dir)
{
    char path[4096];
    if (snprintf(path, sizeof path, "%s/cairn-fsync-probe.XXXXXX", dir) >= (int)sizeof path) {
        fprintf(stderr, PROG ": --fsync-probe: directory name too long\n");
        return 1;
    }
    int fd = mkstemp(path);
    if (fd < 0) {
        fprintf(stderr, PROG ": --fsync-probe: cannot create a file in %s: %s\n", dir,
                strerror(errno));
        return 1;
    }
    struct stats st;
    memset(&st, 0, sizeof st);
    st.hist = calloc(HIST_BUCKETS, sizeof(uint64_t));
    if (!st.hist) {
        close(fd);
        unlink(path);
        fprintf(stderr, PROG ": out of memory\n");
        return 1;
    }
    uint32_t d = cfg.value_size;
    char *rec = xmalloc(d);
    memset(rec, 'r', d);
    rec[d - 1] = '\n';
    int failed = 0;
    uint64_t t0 = now_ns(), t = t0;
    uint64_t stop = cfg.seconds > 0 ? t0 + (uint64_t)(cfg.seconds * 1e9) : 0;
    off_t off = 0;
    while (!interrupted && (stop ? t < stop : st.ops < cfg.requests)) {
        ssize_t n = pwrite(fd, rec, d, off);
        if (n != (ssize_t)d) {
            fprintf(stderr, PROG ": --fsync-probe: pwrite: %s\n", n < 0 ? strerror(errno) : "short write");
            failed = 1;
            break;
        }
        if (fdatasync(fd) != 0) {
            fprintf(stderr, PROG ": --fsync-probe: fdatasync: %s\n", strerror(errno));
            failed = 1;
            break;
        }
        off += (off_t)d;
        uint64_t t1 = now_ns();
        uint64_t lat = t1 - t;
        st.ops++;
        st.lat_sum_ns += lat;
        if (lat > st.lat_max_ns)
            st.lat_max_ns = lat;
        st.hist[hist_index(lat)]++;
        t = t1;
    }
    close(fd);
    if (unlink(path) != 0)
        fprintf(stderr, PROG ": --fsync-probe: cannot remove %s: %s\n", path, strerror(errno));
    double secs = (double)(t - t0) / 1e9;
    if (interrupted) {
        fprintf(stderr, PROG ": interrupted\n");
        failed = 1;
    }
    printf("fsyncs_per_sec=%.0f p50_us=%.1f p99_us=%.1f errors=%d fsyncs=%" PRIu64
           " seconds=%.3f record_bytes=%" PRIu32 " max_us=%.1f\n",
           secs > 0 ? (double)st.ops / secs : 0, percentile_us(&st, 50), percentile_us(&st, 99),
           failed, st.ops, secs, d, (double)st.lat_max_ns / 1000.0);
    if (!cfg.quiet)
        printf("%" PRIu64 " x (pwrite %" PRIu32 " B appended + fdatasync) in %s, one thread\n",
               st.ops, d, dir);
    fflush(stdout);
    free(rec);
    free(st.hist);
    return failed;
}

int main(int argc, char **argv)
{
    parse_args(argc, argv);

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = SIG_IGN;
    sigaction(SIGPIPE, &sa, NULL);
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    if (cfg.fsync_probe_dir)
        return fsync_probe(cfg.fsync_probe_dir);

    tmpl = xmalloc((size_t)TMPL_PERIOD + cfg.value_size);
    for (size_t i = 0; i < (size_t)TMPL_PERIOD + cfg.value_size; i++)
        tmpl[i] = (char)('!' + (i * 7u + i / 89u) % 94u); /* printable, no spaces needed */

    uint64_t t0 = now_ns();
    hard_deadline_ns = t0 + (uint64_t)(cfg.timeout * 1e9);

    struct thread_ctx *th = calloc(cfg.threads, sizeof *th);
    if (!th) {
        fprintf(stderr, PROG ": out of memory\n");
        return 1;
    }
    if (pthread_barrier_init(&start_barrier, NULL, cfg.threads) != 0) {
        fprintf(stderr, PROG ": pthread_barrier_init failed\n");
        return 1;
    }

    /* split connections, requests and preload ranges */
    unsigned conn_base = 0;
    uint64_t total_conns = cfg.conns;
    size_t req_max = REQ_OVERHEAD + (size_t)cfg.value_size;
    unsigned max_depth = cfg.pipeline > PRELOAD_MIN_DEPTH ? cfg.pipeline : PRELOAD_MIN_DEPTH;
    int setup_errors = 0;
    for (unsigned i = 0; i < cfg.threads; i++) {
        struct thread_ctx *t = &th[i];
        t->id = i;
        t->nconns = cfg.conns / cfg.threads + (i < cfg.conns % cfg.threads ? 1 : 0);
        t->budget = cfg.requests / cfg.threads + (i < cfg.requests % cfg.threads ? 1 : 0);
        t->pre.hist = calloc(HIST_BUCKETS, sizeof(uint64_t));
        t->run.hist = calloc(HIST_BUCKETS, sizeof(uint64_t));
        t->conns = calloc(t->nconns, sizeof(struct conn));
        t->epfd = epoll_create1(EPOLL_CLOEXEC);
        if (!t->pre.hist || !t->run.hist || !t->conns || t->epfd < 0) {
            fprintf(stderr, PROG ": setup failed: %s\n", strerror(errno));
            return 1;
        }
        for (unsigned j = 0; j < t->nconns; j++) {
            struct conn *c = &t->conns[j];
            uint64_t g = conn_base + j;
            c->ring_cap = max_depth;
            c->ring = xmalloc(sizeof(struct req) * c->ring_cap);
            c->wcap = req_max * max_depth;
            c->wbuf = xmalloc(c->wcap);
            c->rcap = 65536 + (size_t)cfg.value_size + MAX_LINE + 16;
            c->rbuf = xmalloc(c->rcap);
            c->rng = (cfg.seed + 1) * 0x9E3779B97F4A7C15ULL ^ (g + 1) * 0xD1B54A32D192ED03ULL;
            if (!c->rng)
                c->rng = 1;
            c->pl_next = (uint32_t)((uint64_t)cfg.keyspace * g / total_conns);
            c->pl_end = (uint32_t)((uint64_t)cfg.keyspace * (g + 1) / total_conns);
            c->fd = connect_server();
            if (c->fd < 0) {
                c->dead = 1;
                setup_errors++;
                t->setup_failed = 1;
                break;
            }
            struct epoll_event ev;
            memset(&ev, 0, sizeof ev);
            ev.events = EPOLLIN;
            ev.data.ptr = c;
            if (epoll_ctl(t->epfd, EPOLL_CTL_ADD, c->fd, &ev) != 0) {
                fprintf(stderr, PROG ": epoll_ctl: %s\n", strerror(errno));
                return 1;
            }
        }
        conn_base += t->nconns;
        if (setup_errors)
            break;
    }
    if (setup_errors) {
        fprintf(stderr, PROG ": could not open all %u connections; aborting\n", cfg.conns);
        if (cfg.quiet)
            printf("ops_per_sec=0 p50_us=0 p99_us=0 errors=%d\n", setup_errors);
        cleanup(th, cfg.threads);
        return 1;
    }

    for (unsigned i = 0; i < cfg.threads; i++) {
        if (pthread_create(&th[i].tid, NULL, thread_main, &th[i]) != 0) {
            fprintf(stderr, PROG ": pthread_create failed\n");
            return 1;
        }
    }
    for (unsigned i = 0; i < cfg.threads; i++)
        pthread_join(th[i].tid, NULL);

    struct stats pre, run;
    memset(&pre, 0, sizeof pre);
    memset(&run, 0, sizeof run);
    pre.hist = calloc(HIST_BUCKETS, sizeof(uint64_t));
    run.hist = calloc(HIST_BUCKETS, sizeof(uint64_t));
    if (!pre.hist || !run.hist) {
        fprintf(stderr, PROG ": out of memory\n");
        return 1;
    }
    uint64_t pre_start = UINT64_MAX, pre_end = 0, run_start = UINT64_MAX, run_end = 0;
    for (unsigned i = 0; i < cfg.threads; i++) {
        stats_add(&pre, &th[i].pre);
        stats_add(&run, &th[i].run);
        if (th[i].pre_start && th[i].pre_start < pre_start)
            pre_start = th[i].pre_start;
        if (th[i].pre_end > pre_end)
            pre_end = th[i].pre_end;
        if (th[i].run_start < run_start)
            run_start = th[i].run_start;
        if (th[i].run_end > run_end)
            run_end = th[i].run_end;
    }
    double pre_s = cfg.preload && pre_end > pre_start ? (double)(pre_end - pre_start) / 1e9 : 0;
    double run_s = run_end > run_start ? (double)(run_end - run_start) / 1e9 : 0;
    double ops_s = run_s > 0 ? (double)run.ops / run_s : 0;
    double pre_ops_s = pre_s > 0 ? (double)pre.ops / pre_s : 0;
    uint64_t errors = pre.errors + run.errors;
    if (interrupted) {
        fprintf(stderr, PROG ": interrupted\n");
        errors++;
    }
    double p50 = percentile_us(&run, 50), p99 = percentile_us(&run, 99);
    double p999 = percentile_us(&run, 99.9);
    double avg = run.ops ? (double)run.lat_sum_ns / (double)run.ops / 1000.0 : 0;

    if (cfg.quiet) {
        printf("ops_per_sec=%.0f p50_us=%.1f p99_us=%.1f errors=%" PRIu64 " p999_us=%.1f"
               " avg_us=%.1f max_us=%.1f ops=%" PRIu64 " gets=%" PRIu64 " hits=%" PRIu64
               " misses=%" PRIu64 " sets=%" PRIu64 " seconds=%.3f preload_ops=%" PRIu64
               " preload_ops_per_sec=%.0f\n",
               ops_s, p50, p99, errors, p999, avg, (double)run.lat_max_ns / 1000.0, run.ops,
               run.gets, run.hits, run.misses, run.sets, run_s, pre.ops, pre_ops_s);
    } else {
        printf("server %s:%s  threads %u  connections %u  pipeline %u  ratio %u:%u  "
               "value %" PRIu32 " B  keys %" PRIu32 "\n",
               cfg.host, cfg.port, cfg.threads, cfg.conns, cfg.pipeline, cfg.get_ratio,
               cfg.set_ratio, cfg.value_size, cfg.keyspace);
        if (cfg.preload)
            printf("preload: %" PRIu64 " sets in %.3f s (%.0f ops/s), %" PRIu64 " errors\n",
                   pre.ops, pre_s, pre_ops_s, pre.errors);
        printf("requests: %" PRIu64 " in %.3f s\n", run.ops, run_s);
        printf("  gets %" PRIu64 " (hits %" PRIu64 ", misses %" PRIu64 "), sets %" PRIu64 "\n",
               run.gets, run.hits, run.misses, run.sets);
        printf("throughput: %.0f ops/s\n", ops_s);
        printf("latency us: p50 %.1f  p99 %.1f  p99.9 %.1f  avg %.1f  max %.1f\n", p50, p99,
               p999, avg, (double)run.lat_max_ns / 1000.0);
        printf("errors: %" PRIu64 "\n", errors);
    }
    fflush(stdout);
    free(pre.hist);
    free(run.hist);
    cleanup(th, cfg.threads);
    pthread_barrier_destroy(&start_barrier);
    return errors ? 1 : 0;
}
