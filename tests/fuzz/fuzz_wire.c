/* libFuzzer target: the replication wire format (replication/wire.c).
 *
 * 1. The input (after a 1-byte prefix) is a byte stream from a peer,
 *    appended to an evbuffer in reads of varying size; after each read
 *    repl_wire_recv() runs until MORE or BAD, as a bufferevent read callback
 *    would.  Invariants: OK drains exactly 4 + length bytes and gives a
 *    frame with a message set; MORE drains nothing; after BAD we stop (the
 *    peer is dropped).
 * 2. The same stream through repl_wire_dispatch() with a scratch buffer
 *    and a callback that stops at a frame chosen by the prefix; the stream
 *    is added as references of the step-1 read sizes, so frames span
 *    evbuffer chunks (copied into the scratch) or lie within one.
 * 3. repl_wire_decode() on the raw input (a frame body without prefix).
 * 4. Every decoded frame is re-sent with repl_wire_send() and received back
 *    with repl_wire_recv(): it must come back OK with the same message.
 * 5. The contents are handled as the replica does with them, without a
 *    socket (replica.c's handlers are static and need a persist/repl):
 *    WalBatch records go through wal_decode() (whole record required) and
 *    cache_apply(); SnapshotChunk items with a legal key become SETs applied
 *    to the cache.  All on a small cache (a few MB).
 *
 * Input layout:
 *   byte 0   chunking for step 1 (0 = one read; else reads of 1..byte0
 *            bytes); also which frame the dispatch callback stops at
 *   byte 1.. the stream (and, for step 3, the body)
 */
#include <event2/buffer.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "replication/wire.h"
#include "storage/cache.h"
#include "storage/log.h"
#include "storage/wal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                          \
	do {                                                                 \
		if (!(cond)) {                                               \
			fprintf(stderr, "fuzz_wire: invariant failed: %s (%s:%d)\n", \
			        #cond, __FILE__, __LINE__);                  \
			abort();                                             \
		}                                                            \
	} while (0)

static uint32_t
prng(uint32_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 17;
	*s ^= *s << 5;
	return *s;
}

/* What the replica would do with the frame's contents. */
static void
apply_like_replica(struct cache *cache, const Cairn__Repl__Frame *f)
{
	size_t i;

	switch (f->msg_case) {
	case CAIRN__REPL__FRAME__MSG_WAL_BATCH:
		for (i = 0; i < f->wal_batch->n_records; i++) {
			struct wal_record rec;
			size_t used;
			const ProtobufCBinaryData *b = &f->wal_batch->records[i];

			if (wal_decode((const char *)b->data, b->len, &rec, &used) != WAL_DECODE_OK ||
			    used != b->len)
				return;  /* "damaged record in the stream" */
			CHECK(used <= b->len);
			cache_apply(cache, &rec.change);
		}
		break;
	case CAIRN__REPL__FRAME__MSG_SNAPSHOT_CHUNK:
		for (i = 0; i < f->snapshot_chunk->n_items; i++) {
			const Cairn__Repl__Item *it = f->snapshot_chunk->items[i];
			struct cache_change ch = {.type = CACHE_CHANGE_SET};

			CHECK(it != NULL);
			if (it->key.len == 0 || it->key.len > CACHE_KEY_MAX ||
			    (it->marks & ~CACHE_MARKS_ALL) != 0)
				return;  /* "bad item in snapshot" */
			ch.key = (const char *)it->key.data;
			ch.nkey = it->key.len;
			ch.flags = it->flags;
			ch.exptime = it->exptime;
			ch.cas = it->cas;
			ch.value = (const char *)it->value.data;
			ch.nbytes = (uint32_t)it->value.len;
			ch.marks = (uint8_t)it->marks;
			cache_apply(cache, &ch);
		}
		break;
	case CAIRN__REPL__FRAME__MSG_CHALLENGE:
		CHECK(f->challenge != NULL);
		break;
	case CAIRN__REPL__FRAME__MSG_HELLO:
		CHECK(f->hello != NULL && f->hello->node_id != NULL &&
		      f->hello->history_id != NULL && f->hello->listen_addr != NULL);
		break;
	case CAIRN__REPL__FRAME__MSG_WELCOME:
		CHECK(f->welcome != NULL && f->welcome->history_id != NULL &&
		      f->welcome->primary_id != NULL);
		break;
	case CAIRN__REPL__FRAME__MSG_REFUSED:
		CHECK(f->refused != NULL && f->refused->reason != NULL);
		break;
	case CAIRN__REPL__FRAME__MSG_SNAPSHOT_END:
		CHECK(f->snapshot_end != NULL);
		break;
	case CAIRN__REPL__FRAME__MSG_ACK:
		CHECK(f->ack != NULL);
		break;
	case CAIRN__REPL__FRAME__MSG_HEARTBEAT:
		CHECK(f->heartbeat != NULL);
		break;
	default:
		/* Unknown oneof cases cannot come out of unpack. */
		fprintf(stderr, "fuzz_wire: unexpected msg_case %d\n", (int)f->msg_case);
		abort();
	}
}

/* Fields protobuf-c kept without knowing them, anywhere in the frame. */
static bool
has_unknown_fields(const Cairn__Repl__Frame *f)
{
	const ProtobufCMessage *sub = (const ProtobufCMessage *)f->challenge;  /* oneof */
	size_t i;

	if (f->base.n_unknown_fields != 0 || (sub != NULL && sub->n_unknown_fields != 0))
		return true;
	if (f->msg_case == CAIRN__REPL__FRAME__MSG_SNAPSHOT_CHUNK) {
		for (i = 0; i < f->snapshot_chunk->n_items; i++) {
			if (f->snapshot_chunk->items[i]->base.n_unknown_fields != 0)
				return true;
		}
	}
	return false;
}

/* Send a decoded frame and receive it back.  Frames carrying unknown fields
 * are only sent: protobuf-c keeps them and re-packs them, and it accepts a
 * non-minimal encoding of field number 0 ("80 00") on input that it then
 * writes as "00", which it refuses on input.  cairn never re-sends a frame
 * it received, so that quirk does not reach the wire. */
static void
round_trip(const Cairn__Repl__Frame *f)
{
	struct evbuffer *b = evbuffer_new();
	Cairn__Repl__Frame *g = NULL;
	size_t n, len = cairn__repl__frame__get_packed_size(f);

	CHECK(b != NULL);
	n = repl_wire_send(b, f);
	if (len > REPL_FRAME_MAX) {
		CHECK(n == 0);
	} else if (has_unknown_fields(f)) {
		CHECK(n == len + 4 && evbuffer_get_length(b) == n);
	} else {
		CHECK(n == len + 4 && evbuffer_get_length(b) == n);
		CHECK(repl_wire_recv(b, &g) == REPL_WIRE_OK);
		CHECK(g != NULL && g->msg_case == f->msg_case);
		CHECK(cairn__repl__frame__get_packed_size(g) == len);
		CHECK(evbuffer_get_length(b) == 0);
		repl_wire_free(g);
	}
	evbuffer_free(b);
}

struct dispatch_ctx {
	struct cache *cache;
	unsigned seen, stop_at;
};

static bool
on_frame(void *arg, const Cairn__Repl__Frame *f)
{
	struct dispatch_ctx *d = arg;

	CHECK(f != NULL && f->msg_case != CAIRN__REPL__FRAME__MSG__NOT_SET);
	apply_like_replica(d->cache, f);
	return ++d->seen != d->stop_at;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct cache_config cfg = {
		.mem_limit = 2u << 20, .item_size_max = 1u << 20, .hashpower = 4, .use_cas = true,
	};
	struct cache *cache;
	struct evbuffer *in;
	struct dispatch_ctx d;
	Cairn__Repl__Frame *f;
	uint8_t chunking;
	uint32_t seed;
	size_t pos = 0;
	bool bad = false;

	if (size < 1)
		return 0;
	log_set_level(0);
	chunking = data[0];
	data++;
	size--;
	cache = cache_create(&cfg);
	CHECK(cache != NULL);

	/* 1. Frames from a stream, read in pieces. */
	in = evbuffer_new();
	CHECK(in != NULL);
	seed = 0x2545f491u ^ chunking;
	while (pos < size && !bad) {
		size_t n = chunking == 0 ? size - pos : 1 + prng(&seed) % chunking;

		if (n > size - pos)
			n = size - pos;
		CHECK(evbuffer_add(in, data + pos, n) == 0);
		pos += n;
		for (;;) {
			size_t before = evbuffer_get_length(in);
			uint8_t hdr[4];
			enum repl_wire_status st;

			f = NULL;
			st = repl_wire_recv(in, &f);
			if (st == REPL_WIRE_MORE) {
				CHECK(evbuffer_get_length(in) == before);
				break;
			}
			if (st == REPL_WIRE_BAD) {
				CHECK(f == NULL);
				bad = true;
				break;
			}
			CHECK(st == REPL_WIRE_OK && f != NULL);
			CHECK(f->msg_case != CAIRN__REPL__FRAME__MSG__NOT_SET);
			CHECK(before >= 4);
			/* exactly one frame was taken: 4 + its length */
			memcpy(hdr, data + (pos - before), 4);
			CHECK(evbuffer_get_length(in) ==
			      before - 4 - ((size_t)hdr[0] << 24 | (size_t)hdr[1] << 16 |
			                    (size_t)hdr[2] << 8 | hdr[3]));
			apply_like_replica(cache, f);
			round_trip(f);
			repl_wire_free(f);
		}
	}
	evbuffer_free(in);

	/* 2. The same stream through repl_wire_dispatch. */
	in = evbuffer_new();
	CHECK(in != NULL);
	seed = 0x2545f491u ^ chunking;
	for (pos = 0; pos < size;) {
		size_t n = chunking == 0 ? size - pos : 1 + prng(&seed) % chunking;

		if (n > size - pos)
			n = size - pos;
		CHECK(evbuffer_add_reference(in, data + pos, n, NULL, NULL) == 0);
		pos += n;
	}
	memset(&d, 0, sizeof(d));
	d.cache = cache;
	d.stop_at = chunking % 4;
	{
		uint64_t taken = 0;
		struct repl_wire_scratch scratch = {0};
		enum repl_wire_status st = repl_wire_dispatch(in, &scratch, on_frame, &d, &taken);

		repl_wire_scratch_free(&scratch);
		CHECK(st == REPL_WIRE_OK || st == REPL_WIRE_MORE || st == REPL_WIRE_BAD);
		CHECK(st != REPL_WIRE_OK || d.seen == d.stop_at);
		CHECK(taken + evbuffer_get_length(in) <= size);
	}
	evbuffer_free(in);

	/* 3. A raw frame body. */
	f = repl_wire_decode(data, size);
	if (f != NULL) {
		CHECK(f->msg_case != CAIRN__REPL__FRAME__MSG__NOT_SET);
		apply_like_replica(cache, f);
		round_trip(f);
		repl_wire_free(f);
	}

	cache_destroy(cache);
	return 0;
}
