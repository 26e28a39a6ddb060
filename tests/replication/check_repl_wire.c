/* Unit tests for replication/wire.c (framing of cairn.repl.Frame messages)
 * and replication/auth.c (HMAC-SHA256 challenge-response):
 *   - every message type survives repl_wire_send -> repl_wire_recv intact;
 *   - a frame fed one byte at a time, and split at every byte boundary,
 *     gives REPL_WIRE_MORE until it is complete and then the frame;
 *   - frames back to back come out in order;
 *   - repl_wire_dispatch with a scratch buffer: a frame split across
 *     evbuffer chunks is copied into the scratch (grown once, then reused),
 *     a frame within one chunk is decoded in place (the scratch untouched);
 *   - length 0 or > REPL_FRAME_MAX is REPL_WIRE_BAD (without waiting for a
 *     body); a frame too large to send is not sent;
 *   - garbage bodies (not protobuf, truncated, no message set) are BAD;
 *   - auth: the right secret passes (and matches a known HMAC), a wrong
 *     secret, a wrong nonce, a short, long or empty proof fails; secrets are
 *     loaded without trailing newlines, and empty or missing files fail. */
#include "replication/auth.h"
#include "replication/wire.h"

#include <check.h>
#include <event2/buffer.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/******** HELPERS ********/

/* Send f, receive it back; returns the decoded frame (caller frees). */
static Cairn__Repl__Frame *
round_trip(const Cairn__Repl__Frame *f)
{
	struct evbuffer *buf = evbuffer_new();
	Cairn__Repl__Frame *got = NULL;
	size_t n;

	ck_assert_ptr_nonnull(buf);
	n = repl_wire_send(buf, f);
	ck_assert_uint_eq(n, 4 + cairn__repl__frame__get_packed_size(f));
	ck_assert_uint_eq(evbuffer_get_length(buf), n);
	ck_assert_int_eq(repl_wire_recv(buf, &got), REPL_WIRE_OK);
	ck_assert_ptr_nonnull(got);
	ck_assert_uint_eq(evbuffer_get_length(buf), 0);
	ck_assert_int_eq(got->msg_case, f->msg_case);
	/* Nothing more. */
	{
		Cairn__Repl__Frame *none = NULL;

		ck_assert_int_eq(repl_wire_recv(buf, &none), REPL_WIRE_MORE);
	}
	evbuffer_free(buf);
	return got;
}

static void
assert_bytes(ProtobufCBinaryData b, const void *data, size_t len)
{
	ck_assert_uint_eq(b.len, len);
	if (len > 0)
		ck_assert_int_eq(memcmp(b.data, data, len), 0);
}

static void
put_header(struct evbuffer *buf, uint32_t len)
{
	uint8_t h[4] = {(uint8_t)(len >> 24), (uint8_t)(len >> 16), (uint8_t)(len >> 8), (uint8_t)len};

	evbuffer_add(buf, h, 4);
}

/* Receive from a buffer holding a 4-byte header for `body`. */
static enum repl_wire_status
recv_body(const void *body, uint32_t len, Cairn__Repl__Frame **out)
{
	struct evbuffer *buf = evbuffer_new();
	enum repl_wire_status st;

	put_header(buf, len);
	evbuffer_add(buf, body, len);
	*out = NULL;
	st = repl_wire_recv(buf, out);
	evbuffer_free(buf);
	return st;
}

/* A Hello with every field set, used for the split tests. */
static const uint8_t PROOF[REPL_PROOF_SIZE] = {
	1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16,
	17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 0};

static void
make_hello(Cairn__Repl__Frame *f, Cairn__Repl__Hello *h)
{
	cairn__repl__frame__init(f);
	cairn__repl__hello__init(h);
	h->protocol_version = REPL_PROTOCOL_VERSION;
	h->node_id = "replica-1";
	h->history_id = "0123456789abcdef0123456789abcdef";
	h->last_lsn = UINT64_MAX - 1;
	h->epoch = 0xfffffffeu;
	h->auth_proof.data = (uint8_t *)PROOF;
	h->auth_proof.len = sizeof(PROOF);
	h->listen_addr = "127.0.0.1:11211";
	f->msg_case = CAIRN__REPL__FRAME__MSG_HELLO;
	f->hello = h;
}

static void
check_hello(const Cairn__Repl__Frame *got)
{
	ck_assert_int_eq(got->msg_case, CAIRN__REPL__FRAME__MSG_HELLO);
	ck_assert_uint_eq(got->hello->protocol_version, REPL_PROTOCOL_VERSION);
	ck_assert_str_eq(got->hello->node_id, "replica-1");
	ck_assert_str_eq(got->hello->history_id, "0123456789abcdef0123456789abcdef");
	ck_assert(got->hello->last_lsn == UINT64_MAX - 1);
	ck_assert_uint_eq(got->hello->epoch, 0xfffffffeu);
	assert_bytes(got->hello->auth_proof, PROOF, sizeof(PROOF));
	ck_assert_str_eq(got->hello->listen_addr, "127.0.0.1:11211");
}

/******** ROUND TRIPS ********/

START_TEST(test_rt_challenge)
{
	Cairn__Repl__Frame f = CAIRN__REPL__FRAME__INIT, *got;
	Cairn__Repl__Challenge m = CAIRN__REPL__CHALLENGE__INIT;
	uint8_t nonce[REPL_NONCE_SIZE];

	ck_assert(repl_auth_nonce(nonce));
	m.nonce.data = nonce;
	m.nonce.len = sizeof(nonce);
	m.auth_required = true;
	f.msg_case = CAIRN__REPL__FRAME__MSG_CHALLENGE;
	f.challenge = &m;
	got = round_trip(&f);
	assert_bytes(got->challenge->nonce, nonce, sizeof(nonce));
	ck_assert(got->challenge->auth_required);
	repl_wire_free(got);
}
END_TEST

START_TEST(test_rt_hello)
{
	Cairn__Repl__Frame f, *got;
	Cairn__Repl__Hello h;

	make_hello(&f, &h);
	got = round_trip(&f);
	check_hello(got);
	repl_wire_free(got);

	/* Defaults (all fields empty) round-trip too. */
	cairn__repl__hello__init(&h);
	got = round_trip(&f);
	ck_assert_int_eq(got->msg_case, CAIRN__REPL__FRAME__MSG_HELLO);
	ck_assert_str_eq(got->hello->node_id, "");
	ck_assert_uint_eq(got->hello->last_lsn, 0);
	ck_assert_uint_eq(got->hello->auth_proof.len, 0);
	repl_wire_free(got);
}
END_TEST

START_TEST(test_rt_welcome)
{
	Cairn__Repl__Frame f = CAIRN__REPL__FRAME__INIT, *got;
	Cairn__Repl__Welcome w = CAIRN__REPL__WELCOME__INIT;
	int mode;

	for (mode = CAIRN__REPL__SYNC_MODE__PARTIAL; mode <= CAIRN__REPL__SYNC_MODE__FULL; mode++) {
		w.mode = (Cairn__Repl__SyncMode)mode;
		w.epoch = 7;
		w.history_id = "hist";
		w.start_lsn = 123456789012345ull;
		w.primary_id = "primary";
		w.truncate_to = 99;
		f.msg_case = CAIRN__REPL__FRAME__MSG_WELCOME;
		f.welcome = &w;
		got = round_trip(&f);
		ck_assert_int_eq(got->welcome->mode, mode);
		ck_assert_uint_eq(got->welcome->epoch, 7);
		ck_assert_str_eq(got->welcome->history_id, "hist");
		ck_assert(got->welcome->start_lsn == 123456789012345ull);
		ck_assert_str_eq(got->welcome->primary_id, "primary");
		ck_assert_uint_eq(got->welcome->truncate_to, 99);
		repl_wire_free(got);
	}
}
END_TEST

START_TEST(test_rt_snapshot_chunk)
{
	Cairn__Repl__Frame f = CAIRN__REPL__FRAME__INIT, *got;
	Cairn__Repl__SnapshotChunk c = CAIRN__REPL__SNAPSHOT_CHUNK__INIT;
	Cairn__Repl__Item items[3], *ptrs[3];
	static const uint8_t binval[] = {0, '\r', '\n', 0xff, 'x', 0};
	size_t i;

	for (i = 0; i < 3; i++) {
		cairn__repl__item__init(&items[i]);
		ptrs[i] = &items[i];
	}
	items[0].key.data = (uint8_t *)"alpha";
	items[0].key.len = 5;
	items[0].flags = 0xffffffffu;
	items[0].exptime = 1900000000u;
	items[0].cas = UINT64_MAX;
	items[0].value.data = (uint8_t *)binval;
	items[0].value.len = sizeof(binval);
	items[1].key.data = (uint8_t *)"b";
	items[1].key.len = 1;          /* empty value */
	items[2].key.data = (uint8_t *)"gamma";
	items[2].key.len = 5;
	items[2].value.data = (uint8_t *)"v";
	items[2].value.len = 1;
	c.n_items = 3;
	c.items = ptrs;
	f.msg_case = CAIRN__REPL__FRAME__MSG_SNAPSHOT_CHUNK;
	f.snapshot_chunk = &c;
	got = round_trip(&f);
	ck_assert_uint_eq(got->snapshot_chunk->n_items, 3);
	assert_bytes(got->snapshot_chunk->items[0]->key, "alpha", 5);
	ck_assert_uint_eq(got->snapshot_chunk->items[0]->flags, 0xffffffffu);
	ck_assert_uint_eq(got->snapshot_chunk->items[0]->exptime, 1900000000u);
	ck_assert(got->snapshot_chunk->items[0]->cas == UINT64_MAX);
	assert_bytes(got->snapshot_chunk->items[0]->value, binval, sizeof(binval));
	assert_bytes(got->snapshot_chunk->items[1]->key, "b", 1);
	ck_assert_uint_eq(got->snapshot_chunk->items[1]->value.len, 0);
	assert_bytes(got->snapshot_chunk->items[2]->value, "v", 1);
	repl_wire_free(got);
}
END_TEST

START_TEST(test_rt_snapshot_end)
{
	Cairn__Repl__Frame f = CAIRN__REPL__FRAME__INIT, *got;
	Cairn__Repl__SnapshotEnd e = CAIRN__REPL__SNAPSHOT_END__INIT;

	e.lsn = 42;
	e.items = 1000000;
	f.msg_case = CAIRN__REPL__FRAME__MSG_SNAPSHOT_END;
	f.snapshot_end = &e;
	got = round_trip(&f);
	ck_assert_uint_eq(got->snapshot_end->lsn, 42);
	ck_assert_uint_eq(got->snapshot_end->items, 1000000);
	repl_wire_free(got);
}
END_TEST

START_TEST(test_rt_wal_batch)
{
	Cairn__Repl__Frame f = CAIRN__REPL__FRAME__INIT, *got;
	Cairn__Repl__WalBatch b = CAIRN__REPL__WAL_BATCH__INIT;
	ProtobufCBinaryData recs[3];
	size_t big = 1 << 20, i;
	uint8_t *bigrec = malloc(big);

	ck_assert_ptr_nonnull(bigrec);
	for (i = 0; i < big; i++)
		bigrec[i] = (uint8_t)(i * 31 + 7);
	recs[0].data = (uint8_t *)"rec-one";
	recs[0].len = 7;
	recs[1].data = bigrec;
	recs[1].len = big;
	recs[2].data = (uint8_t *)"\0\0\r\n";
	recs[2].len = 4;
	b.n_records = 3;
	b.records = recs;
	f.msg_case = CAIRN__REPL__FRAME__MSG_WAL_BATCH;
	f.wal_batch = &b;
	got = round_trip(&f);
	ck_assert_uint_eq(got->wal_batch->n_records, 3);
	assert_bytes(got->wal_batch->records[0], "rec-one", 7);
	assert_bytes(got->wal_batch->records[1], bigrec, big);
	assert_bytes(got->wal_batch->records[2], "\0\0\r\n", 4);
	repl_wire_free(got);
	free(bigrec);
}
END_TEST

START_TEST(test_rt_ack_heartbeat_refused)
{
	Cairn__Repl__Frame f = CAIRN__REPL__FRAME__INIT, *got;
	Cairn__Repl__Ack a = CAIRN__REPL__ACK__INIT;
	Cairn__Repl__Heartbeat hb = CAIRN__REPL__HEARTBEAT__INIT;
	Cairn__Repl__Refused r = CAIRN__REPL__REFUSED__INIT;

	a.lsn = UINT64_MAX;
	f.msg_case = CAIRN__REPL__FRAME__MSG_ACK;
	f.ack = &a;
	got = round_trip(&f);
	ck_assert(got->ack->lsn == UINT64_MAX);
	repl_wire_free(got);

	/* A zero LSN packs to an empty sub-message: still a set oneof. */
	hb.lsn = 0;
	f.msg_case = CAIRN__REPL__FRAME__MSG_HEARTBEAT;
	f.heartbeat = &hb;
	got = round_trip(&f);
	ck_assert_uint_eq(got->heartbeat->lsn, 0);
	repl_wire_free(got);
	hb.lsn = 5;
	got = round_trip(&f);
	ck_assert_uint_eq(got->heartbeat->lsn, 5);
	repl_wire_free(got);

	r.reason = "authentication failed: wrong or missing cluster secret";
	f.msg_case = CAIRN__REPL__FRAME__MSG_REFUSED;
	f.refused = &r;
	got = round_trip(&f);
	ck_assert_str_eq(got->refused->reason, r.reason);
	repl_wire_free(got);
}
END_TEST

START_TEST(test_back_to_back)
{
	struct evbuffer *buf = evbuffer_new();
	Cairn__Repl__Frame f = CAIRN__REPL__FRAME__INIT, *got = NULL;
	Cairn__Repl__Ack a = CAIRN__REPL__ACK__INIT;
	uint64_t i;

	f.msg_case = CAIRN__REPL__FRAME__MSG_ACK;
	f.ack = &a;
	for (i = 1; i <= 100; i++) {
		a.lsn = i * 1000;
		ck_assert_uint_gt(repl_wire_send(buf, &f), 0);
	}
	for (i = 1; i <= 100; i++) {
		ck_assert_int_eq(repl_wire_recv(buf, &got), REPL_WIRE_OK);
		ck_assert_int_eq(got->msg_case, CAIRN__REPL__FRAME__MSG_ACK);
		ck_assert_uint_eq(got->ack->lsn, i * 1000);
		repl_wire_free(got);
	}
	ck_assert_int_eq(repl_wire_recv(buf, &got), REPL_WIRE_MORE);
	evbuffer_free(buf);
}
END_TEST

/******** SPLITS ********/

/* A Hello frame's bytes on the wire (valid while src lives). */
static uint8_t *
hello_on_wire(struct evbuffer *src, size_t *len)
{
	Cairn__Repl__Frame f;
	Cairn__Repl__Hello h;

	make_hello(&f, &h);
	*len = repl_wire_send(src, &f);
	return evbuffer_pullup(src, -1);
}

START_TEST(test_byte_at_a_time)
{
	struct evbuffer *src = evbuffer_new(), *in = evbuffer_new();
	Cairn__Repl__Frame *got = NULL;
	size_t len, i;
	uint8_t *bytes = hello_on_wire(src, &len);
	for (i = 0; i < len; i++) {
		ck_assert_int_eq(repl_wire_recv(in, &got), REPL_WIRE_MORE);
		ck_assert_uint_eq(evbuffer_get_length(in), i);   /* nothing consumed */
		evbuffer_add(in, bytes + i, 1);
	}
	ck_assert_int_eq(repl_wire_recv(in, &got), REPL_WIRE_OK);
	check_hello(got);
	repl_wire_free(got);
	ck_assert_uint_eq(evbuffer_get_length(in), 0);
	evbuffer_free(src);
	evbuffer_free(in);
}
END_TEST

START_TEST(test_split_every_boundary)
{
	struct evbuffer *src = evbuffer_new();
	Cairn__Repl__Frame *got = NULL;
	size_t len, cut;
	uint8_t *bytes = hello_on_wire(src, &len);
	for (cut = 0; cut <= len; cut++) {
		struct evbuffer *in = evbuffer_new();

		/* Each piece is its own chain: the frame spans evbuffer chunks. */
		evbuffer_add(in, bytes, cut);
		if (cut < len) {
			ck_assert_int_eq(repl_wire_recv(in, &got), REPL_WIRE_MORE);
			ck_assert_uint_eq(evbuffer_get_length(in), cut);
			evbuffer_add_reference(in, bytes + cut, len - cut, NULL, NULL);
		}
		ck_assert_int_eq(repl_wire_recv(in, &got), REPL_WIRE_OK);
		check_hello(got);
		repl_wire_free(got);
		ck_assert_uint_eq(evbuffer_get_length(in), 0);
		evbuffer_free(in);
	}
	evbuffer_free(src);
}
END_TEST

struct hello_count {
	int seen;
};

static bool
count_hello(void *arg, const Cairn__Repl__Frame *f)
{
	struct hello_count *hc = arg;

	check_hello(f);
	hc->seen++;
	return true;
}

START_TEST(test_dispatch_scratch)
{
	struct evbuffer *src = evbuffer_new();
	struct repl_wire_scratch scratch = {0};
	size_t len, cut, cap = 0;
	uint8_t *bytes = hello_on_wire(src, &len);
	for (cut = 0; cut <= len; cut++) {
		struct evbuffer *in = evbuffer_new();
		struct hello_count hc = {0};
		uint64_t taken = 0;

		evbuffer_add_reference(in, bytes, cut, NULL, NULL);
		if (cut < len)
			evbuffer_add_reference(in, bytes + cut, len - cut, NULL, NULL);
		ck_assert_int_eq(repl_wire_dispatch(in, &scratch, count_hello, &hc, &taken), REPL_WIRE_MORE);
		ck_assert_int_eq(hc.seen, 1);
		ck_assert_uint_eq(taken, len);
		ck_assert_uint_eq(evbuffer_get_length(in), 0);
		if (cut == 0 || cut == len) {
			/* One chunk holds the frame: decoded in place. */
			ck_assert_uint_eq(scratch.cap, cap);
		} else {
			/* Split: copied into the scratch, which keeps its size. */
			ck_assert_uint_eq(scratch.cap, len);
			cap = scratch.cap;
		}
		evbuffer_free(in);
	}
	ck_assert_uint_eq(cap, len);
	repl_wire_scratch_free(&scratch);
	ck_assert_ptr_null(scratch.buf);
	evbuffer_free(src);
}
END_TEST

/******** TRUNCATED, OVERSIZED, GARBAGE ********/

START_TEST(test_truncated_is_more)
{
	struct evbuffer *in = evbuffer_new();
	Cairn__Repl__Frame *got = NULL;

	/* Header promising 100 bytes, 99 present: wait for the rest. */
	put_header(in, 100);
	{
		uint8_t body[99] = {0};

		evbuffer_add(in, body, sizeof(body));
	}
	ck_assert_int_eq(repl_wire_recv(in, &got), REPL_WIRE_MORE);
	ck_assert_uint_eq(evbuffer_get_length(in), 103);
	evbuffer_free(in);

	/* Fewer than 4 header bytes. */
	in = evbuffer_new();
	evbuffer_add(in, "\0\0\0", 3);
	ck_assert_int_eq(repl_wire_recv(in, &got), REPL_WIRE_MORE);
	evbuffer_free(in);

	/* The largest legal length is not refused up front. */
	in = evbuffer_new();
	put_header(in, REPL_FRAME_MAX);
	evbuffer_add(in, "\x40\x00", 2);
	ck_assert_int_eq(repl_wire_recv(in, &got), REPL_WIRE_MORE);
	evbuffer_free(in);
}
END_TEST

START_TEST(test_oversized_and_zero_length_are_bad)
{
	static const uint32_t lens[] = {REPL_FRAME_MAX + 1, REPL_FRAME_MAX + 4096, 0x7fffffffu,
	                                0xffffffffu, 0};
	size_t i;

	for (i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
		struct evbuffer *in = evbuffer_new();
		Cairn__Repl__Frame *got = NULL;

		/* Bad from the header alone: no body is waited for. */
		put_header(in, lens[i]);
		ck_assert_int_eq(repl_wire_recv(in, &got), REPL_WIRE_BAD);
		evbuffer_add(in, "\x42\x02\x08\x01", 4);
		ck_assert_int_eq(repl_wire_recv(in, &got), REPL_WIRE_BAD);
		evbuffer_free(in);
	}
}
END_TEST

START_TEST(test_send_too_large_is_refused)
{
	struct evbuffer *out = evbuffer_new();
	Cairn__Repl__Frame f = CAIRN__REPL__FRAME__INIT;
	Cairn__Repl__WalBatch b = CAIRN__REPL__WAL_BATCH__INIT;
	ProtobufCBinaryData rec;

	rec.len = REPL_FRAME_MAX;     /* plus tags and lengths: over the limit */
	rec.data = calloc(1, rec.len);
	ck_assert_ptr_nonnull(rec.data);
	b.n_records = 1;
	b.records = &rec;
	f.msg_case = CAIRN__REPL__FRAME__MSG_WAL_BATCH;
	f.wal_batch = &b;
	ck_assert_uint_gt(cairn__repl__frame__get_packed_size(&f), REPL_FRAME_MAX);
	ck_assert_uint_eq(repl_wire_send(out, &f), 0);
	ck_assert_uint_eq(evbuffer_get_length(out), 0);
	free(rec.data);
	evbuffer_free(out);
}
END_TEST

START_TEST(test_garbage_bodies_are_bad)
{
	static const struct {
		const char *what;
		const char *body;
		uint32_t len;
	} cases[] = {
		{"all 0xff", "\xff\xff\xff\xff\xff\xff\xff\xff", 8},
		{"wire type 7", "\x0f\x01", 2},
		{"field number 0", "\x00\x01", 2},
		{"truncated sub-message", "\x12\x10\x08\x01", 4},
		{"length past the end", "\x3a\xff\xff\xff\xff\x0f", 6},
		{"unterminated varint", "\x08\x80\x80\x80\x80\x80\x80\x80\x80\x80\x80", 11},
		{"text", "set foo 0 0 3\r\nbar\r\n", 20},
		{"unknown field only: no message set", "\x78\x01", 2},
		{"a bad field inside Hello", "\x12\x02\x22\x05", 4},
	};
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		Cairn__Repl__Frame *got = NULL;

		ck_assert_msg(recv_body(cases[i].body, cases[i].len, &got) == REPL_WIRE_BAD,
		              "%s: not BAD", cases[i].what);
		ck_assert_msg(repl_wire_decode((const uint8_t *)cases[i].body, cases[i].len) == NULL,
		              "%s: decoded", cases[i].what);
	}
	repl_wire_free(NULL);   /* a no-op */
}
END_TEST

/******** AUTH ********/

static const uint8_t NONCE[REPL_NONCE_SIZE] = {
	0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15,
	16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31};

START_TEST(test_auth_known_answer)
{
	/* HMAC-SHA256("cairn-secret", 00 01 .. 1f), computed independently. */
	static const uint8_t expect[REPL_PROOF_SIZE] = {
		0xcd, 0xf0, 0x1d, 0xd4, 0xea, 0xc1, 0xdb, 0x26, 0x97, 0x76, 0xa3, 0x3b, 0x0b, 0xa9, 0x68, 0x0e,
		0xa7, 0x08, 0xb0, 0xd7, 0x5d, 0xdb, 0x7e, 0x5d, 0x4c, 0x2c, 0xbe, 0x66, 0x23, 0x9b, 0x35, 0x43};
	uint8_t proof[REPL_PROOF_SIZE];

	repl_auth_prove("cairn-secret", 12, NONCE, proof);
	ck_assert_int_eq(memcmp(proof, expect, sizeof(proof)), 0);
	ck_assert(repl_auth_check("cairn-secret", 12, NONCE, expect, sizeof(expect)));
}
END_TEST

START_TEST(test_auth_check)
{
	const char *secret = "s3cr3t with spaces";
	size_t slen = strlen(secret);
	uint8_t proof[REPL_PROOF_SIZE + 1], nonce2[REPL_NONCE_SIZE], bad[REPL_PROOF_SIZE];
	size_t i;

	repl_auth_prove(secret, slen, NONCE, proof);
	ck_assert(repl_auth_check(secret, slen, NONCE, proof, REPL_PROOF_SIZE));
	/* Wrong secret: other bytes, one byte short, a prefix. */
	ck_assert(!repl_auth_check("s3cr3t with spaceS", slen, NONCE, proof, REPL_PROOF_SIZE));
	ck_assert(!repl_auth_check(secret, slen - 1, NONCE, proof, REPL_PROOF_SIZE));
	ck_assert(!repl_auth_check("x", 1, NONCE, proof, REPL_PROOF_SIZE));
	/* Wrong nonce (one bit). */
	memcpy(nonce2, NONCE, sizeof(nonce2));
	nonce2[31] ^= 1;
	ck_assert(!repl_auth_check(secret, slen, nonce2, proof, REPL_PROOF_SIZE));
	/* Short, long, empty proofs. */
	ck_assert(!repl_auth_check(secret, slen, NONCE, proof, REPL_PROOF_SIZE - 1));
	proof[REPL_PROOF_SIZE] = 0;
	ck_assert(!repl_auth_check(secret, slen, NONCE, proof, REPL_PROOF_SIZE + 1));
	ck_assert(!repl_auth_check(secret, slen, NONCE, proof, 0));
	ck_assert(!repl_auth_check(secret, slen, NONCE, NULL, 0));
	/* Any single flipped bit. */
	for (i = 0; i < REPL_PROOF_SIZE * 8; i++) {
		memcpy(bad, proof, sizeof(bad));
		bad[i / 8] ^= (uint8_t)(1u << (i % 8));
		ck_assert(!repl_auth_check(secret, slen, NONCE, bad, sizeof(bad)));
	}
}
END_TEST

START_TEST(test_auth_nonce_random)
{
	uint8_t a[REPL_NONCE_SIZE], b[REPL_NONCE_SIZE];

	ck_assert(repl_auth_nonce(a));
	ck_assert(repl_auth_nonce(b));
	ck_assert_int_ne(memcmp(a, b, sizeof(a)), 0);
}
END_TEST

static char *
write_temp(const char *data, size_t len)
{
	char *path = strdup("/tmp/check_repl_secret_XXXXXX");
	int fd = mkstemp(path);

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, data, len), (ssize_t)len);
	close(fd);
	return path;
}

START_TEST(test_auth_load_secret)
{
	char err[256], *path, *s;
	size_t len = 0;

	path = write_temp("hunter2\r\n\n", 10);
	s = repl_auth_load_secret(path, &len, err, sizeof(err));
	ck_assert_ptr_nonnull(s);
	ck_assert_uint_eq(len, 7);
	ck_assert_int_eq(memcmp(s, "hunter2", 7), 0);
	free(s);
	unlink(path);
	free(path);

	/* Binary secrets keep their bytes (inner newlines, NULs). */
	path = write_temp("a\nb\0c", 5);
	s = repl_auth_load_secret(path, &len, err, sizeof(err));
	ck_assert_ptr_nonnull(s);
	ck_assert_uint_eq(len, 5);
	ck_assert_int_eq(memcmp(s, "a\nb\0c", 5), 0);
	free(s);
	unlink(path);
	free(path);

	path = write_temp("\n\n", 2);
	ck_assert_ptr_null(repl_auth_load_secret(path, &len, err, sizeof(err)));
	ck_assert_ptr_nonnull(strstr(err, "empty"));
	unlink(path);
	ck_assert_ptr_null(repl_auth_load_secret(path, &len, err, sizeof(err)));
	ck_assert_ptr_nonnull(strstr(err, path));
	free(path);
}
END_TEST

static Suite *
repl_wire_suite(void)
{
	Suite *s = suite_create("repl_wire");
	TCase *codec = tcase_create("codec");
	TCase *framing = tcase_create("framing");
	TCase *auth = tcase_create("auth");

	tcase_add_test(codec, test_rt_challenge);
	tcase_add_test(codec, test_rt_hello);
	tcase_add_test(codec, test_rt_welcome);
	tcase_add_test(codec, test_rt_snapshot_chunk);
	tcase_add_test(codec, test_rt_snapshot_end);
	tcase_add_test(codec, test_rt_wal_batch);
	tcase_add_test(codec, test_rt_ack_heartbeat_refused);
	tcase_add_test(codec, test_back_to_back);
	suite_add_tcase(s, codec);

	tcase_set_timeout(framing, 60);
	tcase_add_test(framing, test_byte_at_a_time);
	tcase_add_test(framing, test_split_every_boundary);
	tcase_add_test(framing, test_dispatch_scratch);
	tcase_add_test(framing, test_truncated_is_more);
	tcase_add_test(framing, test_oversized_and_zero_length_are_bad);
	tcase_add_test(framing, test_send_too_large_is_refused);
	tcase_add_test(framing, test_garbage_bodies_are_bad);
	suite_add_tcase(s, framing);

	tcase_add_test(auth, test_auth_known_answer);
	tcase_add_test(auth, test_auth_check);
	tcase_add_test(auth, test_auth_nonce_random);
	tcase_add_test(auth, test_auth_load_secret);
	suite_add_tcase(s, auth);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(repl_wire_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
