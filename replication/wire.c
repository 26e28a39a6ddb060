/* Replication wire format.
 *
 * FRAMING
 *   0: length  u32 big-endian: bytes of the body that follows
 *              (0 < length <= REPL_FRAME_MAX, 64 MiB)
 *   4: body    a cairn.repl.Frame message, protobuf-encoded
 * A frame over the limit or a body that does not decode ends the connection.
 *
 * CONVERSATION (see docs/replication.md for the full state machines)
 *   primary -> replica  Challenge(nonce)
 *   replica -> primary  Hello(version, node id, history id, last LSN, epoch,
 *                       HMAC-SHA256(secret, nonce))
 *   primary -> replica  Welcome(PARTIAL from LSN | FULL) or Refused(reason)
 *   FULL:    primary -> replica  SnapshotChunk* SnapshotEnd(LSN)
 *   then     primary -> replica  WalBatch* (records in LSN order), Heartbeat
 *            replica -> primary  Ack(LSN in its WAL), every change and 1/s
 */
#include "replication/wire.h"

#include <event2/buffer.h>
#include <stdlib.h>

#define REPL_FRAME_HDR 4

size_t
repl_wire_send(struct evbuffer *out, const Cairn__Repl__Frame *frame)
{
	size_t len = cairn__repl__frame__get_packed_size(frame);
	struct evbuffer_iovec vec;
	uint8_t *p;

	if (len == 0 || len > REPL_FRAME_MAX)
		return 0;
	if (evbuffer_reserve_space(out, (ev_ssize_t)(REPL_FRAME_HDR + len), &vec, 1) < 1)
		return 0;
	p = vec.iov_base;
	p[0] = (uint8_t)(len >> 24);
	p[1] = (uint8_t)(len >> 16);
	p[2] = (uint8_t)(len >> 8);
	p[3] = (uint8_t)len;
	cairn__repl__frame__pack(frame, p + REPL_FRAME_HDR);
	vec.iov_len = REPL_FRAME_HDR + len;
	if (evbuffer_commit_space(out, &vec, 1) != 0)
		return 0;
	return REPL_FRAME_HDR + len;
}

Cairn__Repl__Frame *
repl_wire_decode(const uint8_t *body, size_t len)
{
	Cairn__Repl__Frame *frame = cairn__repl__frame__unpack(NULL, len, body);

	if (frame != NULL && frame->msg_case == CAIRN__REPL__FRAME__MSG__NOT_SET) {
		cairn__repl__frame__free_unpacked(frame, NULL);
		return NULL;
	}
	return frame;
}

/* The body of the frame at the front of `in`, contiguous: where it lies if
 * one chunk holds it, else copied into `scratch` (or, without one, pulled
 * up in the evbuffer). */
static const uint8_t *
frame_body(struct evbuffer *in, size_t total, struct repl_wire_scratch *scratch)
{
	struct evbuffer_iovec first;

	if (evbuffer_peek(in, (ev_ssize_t)total, NULL, &first, 1) >= 1 && first.iov_len >= total)
		return (const uint8_t *)first.iov_base + REPL_FRAME_HDR;
	if (scratch == NULL) {
		uint8_t *p = evbuffer_pullup(in, (ev_ssize_t)total);

		return p != NULL ? p + REPL_FRAME_HDR : NULL;
	}
	if (scratch->cap < total) {
		uint8_t *p = realloc(scratch->buf, total);

		if (p == NULL)
			return NULL;
		scratch->buf = p;
		scratch->cap = total;
	}
	if (evbuffer_copyout(in, scratch->buf, total) != (ev_ssize_t)total)
		return NULL;
	return scratch->buf + REPL_FRAME_HDR;
}

static enum repl_wire_status
take_frame(struct evbuffer *in, struct repl_wire_scratch *scratch, Cairn__Repl__Frame **frame)
{
	uint8_t hdr[REPL_FRAME_HDR];
	uint32_t len;
	const uint8_t *body;

	if (evbuffer_copyout(in, hdr, sizeof(hdr)) < (ev_ssize_t)sizeof(hdr))
		return REPL_WIRE_MORE;
	len = (uint32_t)hdr[0] << 24 | (uint32_t)hdr[1] << 16 | (uint32_t)hdr[2] << 8 | hdr[3];
	if (len == 0 || len > REPL_FRAME_MAX)
		return REPL_WIRE_BAD;
	if (evbuffer_get_length(in) < REPL_FRAME_HDR + (size_t)len)
		return REPL_WIRE_MORE;
	body = frame_body(in, REPL_FRAME_HDR + (size_t)len, scratch);
	if (body == NULL)
		return REPL_WIRE_BAD;
	/* protobuf-c copies what it keeps: the body may go now. */
	*frame = repl_wire_decode(body, len);
	evbuffer_drain(in, REPL_FRAME_HDR + (size_t)len);
	return *frame != NULL ? REPL_WIRE_OK : REPL_WIRE_BAD;
}

enum repl_wire_status
repl_wire_recv(struct evbuffer *in, Cairn__Repl__Frame **frame)
{
	return take_frame(in, NULL, frame);
}

void
repl_wire_scratch_free(struct repl_wire_scratch *s)
{
	free(s->buf);
	s->buf = NULL;
	s->cap = 0;
}

void
repl_wire_free(Cairn__Repl__Frame *frame)
{
	if (frame != NULL)
		cairn__repl__frame__free_unpacked(frame, NULL);
}

enum repl_wire_status
repl_wire_dispatch(struct evbuffer *in, struct repl_wire_scratch *scratch, repl_frame_fn *fn,
                   void *arg, uint64_t *bytes)
{
	for (;;) {
		size_t before = evbuffer_get_length(in);
		Cairn__Repl__Frame *frame;
		enum repl_wire_status st = take_frame(in, scratch, &frame);
		bool go_on;

		if (st != REPL_WIRE_OK)
			return st;
		__atomic_add_fetch(bytes, before - evbuffer_get_length(in), __ATOMIC_RELAXED);
		go_on = fn(arg, frame);
		repl_wire_free(frame);
		if (!go_on)
			return REPL_WIRE_OK;
	}
}
