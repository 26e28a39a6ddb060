/* libFuzzer target: the memcache protocols (node/proto_text.c, and
 * node/proto_binary.c for a stream whose first byte is 0x80).
 *
 * The input is a client's request stream.  It is fed to proto_process() in
 * pieces, against a real (small) cache, with the exact buffer discipline of
 * node/conn.c: keep the unconsumed tail, append the next read after it, grow
 * the buffer when *need asks for it, stop reading beyond rbuf_max, close on
 * ps->close, and stop when the output passes the limit until the "client"
 * reads it.  Ephemeral setup: no persistence, no replication.
 *
 * Input layout (so that seeds stay plain request streams after a short
 * prefix):
 *   byte 0   chunking: 0 = the whole stream in one read; otherwise reads of
 *            1 .. byte0 bytes, sizes drawn from a PRNG seeded by byte 0
 *   byte 1   bit 0: max_requests = 1 (conn.c's --sync-replicas mode)
 *            bits 1-2: output limit (4 MiB as conn.c, 1 KiB, 64 B, 0)
 *            bits 3-4: -I (item_size_max): 1 MiB, 64 KiB, 2 KiB, 300 B
 *            bit 5: -C (no CAS)   bit 6: -F (flush_all disabled)
 *   byte 2.. the request stream (binary when it starts with 0x80, as a
 *            connection's first byte decides)
 *
 * Invariants checked (abort() on violation, besides ASan/UBSan/LSan):
 *   - consumed <= bytes given
 *   - *need, when set, exceeds the unconsumed bytes (the request really is
 *     incomplete) and is bounded by what conn.c would allocate
 *   - liveness: when nothing is consumed, nothing is needed, the output is
 *     under its limit, the connection stays open and writes are not paused,
 *     the unconsumed bytes hold no complete line, or for binary not even a
 *     header (else conn.c would wait for a read that the client, waiting
 *     for a reply, never sends)
 *   - with max_requests = 1, at most one request's worth is consumed per call
 *     (checked as: the call consumed at most one line and its data block,
 *     or one packet's header and body)
 */
#include <event2/buffer.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "node/proto_binary.h"
#include "node/proto_text.h"
#include "node/settings.h"
#include "node/stats.h"
#include "storage/cache.h"
#include "storage/log.h"
#include "storage/store.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

#define CONN_OUTPUT_LIMIT_REAL (4 * 1024 * 1024)  /* node/conn.h */
#define RBUF_INITIAL 16384                        /* node/conn.c */
#define MAX_ROUNDS 100000
#define BINARY_HEADER 24                          /* node/proto_binary.c */

static struct thread_stats tstats;

#define CHECK(cond)                                                          \
	do {                                                                 \
		if (!(cond)) {                                               \
			fprintf(stderr, "fuzz_proto: invariant failed: %s (%s:%d)\n", \
			        #cond, __FILE__, __LINE__);                  \
			abort();                                             \
		}                                                            \
	} while (0)

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	stats_register(&tstats);
	return 0;
}

static uint32_t
prng(uint32_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 17;
	*s ^= *s << 5;
	return *s;
}

/* Put global process state back (pause_writes and verbosity are
 * process-wide). */
static void
reset_globals(const struct proto_env *env)
{
	if (proto_writes_paused()) {
		struct proto_state ps;
		struct evbuffer *sink = evbuffer_new();
		char cmd[] = "resume_writes\r\n";
		size_t need;

		proto_state_init(&ps, env, &tstats);
		proto_process(&ps, cmd, sizeof(cmd) - 1, sink, SIZE_MAX, &need);
		evbuffer_free(sink);
		CHECK(!proto_writes_paused());
	}
	log_set_level(0);
}

struct conn_sim {
	char *rbuf;
	size_t rsize, rlen, rbuf_max;
	struct evbuffer *out, *held;
	struct proto_state ps;
	size_t out_limit;
	bool one_at_a_time;
	bool closing;
};

/* Does buf[0..len) start with one complete request line?  Returns its length
 * including the newline, or 0. */
static size_t
first_line(const char *buf, size_t len)
{
	const char *nl = memchr(buf, '\n', len);

	return nl == NULL ? 0 : (size_t)(nl - buf) + 1;
}

/* The size of the binary packet whose header starts buf, or 0 when the
 * header has not all arrived. */
static size_t
first_packet(const char *buf, size_t len)
{
	const uint8_t *p = (const uint8_t *)buf;

	if (len < BINARY_HEADER)
		return 0;
	return BINARY_HEADER + ((size_t)p[8] << 24 | (size_t)p[9] << 16 | (size_t)p[10] << 8 | p[11]);
}

static bool
rbuf_resize(struct conn_sim *c, size_t size)
{
	char *p = realloc(c->rbuf, size);

	if (p == NULL)
		return false;
	c->rbuf = p;
	c->rsize = size;
	return true;
}

/* conn_process(): parse until no progress.  The "client" reads all output
 * right away (conn_flush), except that an output above the limit is
 * reported first. */
static void
conn_process(struct conn_sim *c, const struct proto_env *env)
{
	for (int rounds = 0; rounds < MAX_ROUNDS; rounds++) {
		size_t used, need = 12345, before = c->rlen;
		uint64_t swallow_before = c->ps.swallow;
		struct evbuffer *dst = c->one_at_a_time ? c->held : c->out;
		size_t out_before = evbuffer_get_length(dst);

		c->ps.max_requests = c->one_at_a_time ? 1 : 0;
		used = proto_process(&c->ps, c->rbuf, c->rlen, dst, c->out_limit, &need);
		log_set_level(0);  /* `verbosity 2` would log every command: slow */
		CHECK(used <= before);
		if (need != 0) {
			CHECK(need > before - used);
			CHECK(need <= c->rbuf_max + env->settings->item_size_max + 2);
		}
		bool binary = c->ps.wire == PROTO_WIRE_BINARY;

		if (c->one_at_a_time && used > 0 && swallow_before == 0 && binary) {
			/* One packet, or its header and what came of a body
			 * that is being swallowed. */
			size_t p = first_packet(c->rbuf, before);

			CHECK(p != 0 && used <= p);
		} else if (c->one_at_a_time && used > 0 && swallow_before == 0) {
			/* One request: its line, plus a data block or a swallowed
			 * value.  The first line must be inside what was used. */
			size_t l = first_line(c->rbuf, before);

			CHECK(l != 0 && l <= used);
		}
		if (used == 0 && need == 0 && !c->ps.close && !c->ps.paused && !c->ps.dump.active &&
		    out_before <= c->out_limit && c->rlen > 0 && c->ps.swallow == 0) {
			/* The parser made no progress: the input must hold no
			 * complete line (binary: no complete header). */
			if (binary)
				CHECK(c->rlen < BINARY_HEADER);
			else
				CHECK(memchr(c->rbuf, '\n', c->rlen) == NULL);
		}
		if (used > 0) {
			c->rlen -= used;
			memmove(c->rbuf, c->rbuf + used, c->rlen);
		}
		if (c->ps.close)
			c->closing = true;
		if (need > c->rsize && !rbuf_resize(c, need))
			c->closing = true;
		if (need == 0 && c->rsize > RBUF_INITIAL * 4 && c->rlen <= RBUF_INITIAL)
			rbuf_resize(c, RBUF_INITIAL);
		evbuffer_add_buffer(c->out, c->held);
		/* conn_flush: the client reads every reply. */
		evbuffer_drain(c->out, evbuffer_get_length(c->out));
		if (c->closing)
			return;
		if (c->ps.paused) {
			/* Writes paused by a `pause_writes` in this stream: the
			 * pause would time out; end it now and retry. */
			reset_globals(env);
			continue;
		}
		if (c->ps.dump.active)
			continue;  /* the rest of a metadump, as the client reads */
		if (used == 0 || c->rlen == 0)
			return;
	}
	fprintf(stderr, "fuzz_proto: conn_process looped %d times\n", MAX_ROUNDS);
	abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const size_t out_limits[] = {CONN_OUTPUT_LIMIT_REAL, 1024, 64, 0};
	static const size_t item_max[] = {1024 * 1024, 64 * 1024, 2048, 300};
	struct settings settings;
	struct proto_env env;
	struct cache_config cfg;
	struct conn_sim c;
	uint32_t seed;
	uint8_t chunking, opts;
	size_t pos = 0;

	if (size < 2)
		return 0;
	chunking = data[0];
	opts = data[1];
	data += 2;
	size -= 2;

	log_set_level(0);
	settings_init(&settings);
	settings.mem_limit = 4u << 20;
	settings.item_size_max = item_max[(opts >> 3) & 3];
	settings.use_cas = !(opts & 0x20);
	settings.flush_enabled = !(opts & 0x40);
	settings.ephemeral = true;
	cfg = (struct cache_config){
		.mem_limit = settings.mem_limit,
		.item_size_max = settings.item_size_max,
		.hashpower = 4,
		.use_cas = settings.use_cas,
	};
	memset(&env, 0, sizeof(env));
	env.cache = cache_create(&cfg);
	CHECK(env.cache != NULL);
	env.store = store_create(env.cache);
	CHECK(env.store != NULL);
	env.persist = NULL;
	env.repl = NULL;
	env.settings = &settings;
	env.started = time(NULL);
	env.worker_threads = 1;

	memset(&c, 0, sizeof(c));
	c.rsize = RBUF_INITIAL;
	c.rbuf = malloc(c.rsize);
	c.out = evbuffer_new();
	c.held = evbuffer_new();
	CHECK(c.rbuf != NULL && c.out != NULL && c.held != NULL);
	c.rbuf_max = settings.item_size_max + PROTO_GET_LINE_MAX;
	c.one_at_a_time = opts & 1;
	c.out_limit = out_limits[(opts >> 1) & 3];
	proto_state_init(&c.ps, &env, &tstats);

	seed = 0x9e3779b9u ^ chunking;
	while (pos < size && !c.closing) {
		size_t n = chunking == 0 ? size - pos : 1 + prng(&seed) % chunking;

		/* conn_read_cb: grow a full buffer up to rbuf_max, else drop. */
		if (c.rlen == c.rsize) {
			size_t bigger = c.rsize * 2;

			if (bigger > c.rbuf_max || !rbuf_resize(&c, bigger))
				break;
		}
		if (n > c.rsize - c.rlen)
			n = c.rsize - c.rlen;
		if (n > size - pos)
			n = size - pos;
		memcpy(c.rbuf + c.rlen, data + pos, n);
		c.rlen += n;
		pos += n;
		conn_process(&c, &env);
	}

	evbuffer_free(c.held);
	evbuffer_free(c.out);  /* drops item references held by the output */
	free(c.rbuf);
	reset_globals(&env);
	store_destroy(env.store);
	cache_destroy(env.cache);
	return 0;
}
