/* Replication wire format: length-prefixed protobuf frames on a TCP stream.
 *
 * The only module that packs and unpacks the generated protobuf-c types
 * (proto/replication.proto); primary.c and replica.c build messages with the
 * generated initialisers and hand them here.  Framing is specified at the top
 * of wire.c.  Any thread; no state.
 */
#ifndef CAIRN_REPLICATION_WIRE_H
#define CAIRN_REPLICATION_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto/replication.pb-c.h"

struct evbuffer;

#define REPL_PROTOCOL_VERSION 1
#define REPL_FRAME_MAX (64u << 20)   /* largest frame body accepted */

/* Append `frame` to `out` as one length-prefixed frame.  Returns the bytes
 * added, or 0 when the frame is too large or memory ran out. */
size_t repl_wire_send(struct evbuffer *out, const Cairn__Repl__Frame *frame);

enum repl_wire_status {
	REPL_WIRE_OK = 0,     /* *frame set; free it with repl_wire_free() */
	REPL_WIRE_MORE,       /* no complete frame yet */
	REPL_WIRE_BAD,        /* oversized or undecodable: drop the peer */
};

/* Take one frame from the front of `in`. */
enum repl_wire_status repl_wire_recv(struct evbuffer *in, Cairn__Repl__Frame **frame);

/* A receiver's reusable buffer for frames that arrive split across the
 * evbuffer's chunks (a frame already in one chunk is decoded where it is).
 * Zero-initialise it; free it with repl_wire_scratch_free().  Without one,
 * a split frame is made contiguous in the evbuffer itself (a fresh
 * allocation per frame: fine for small frames, page faults for batches). */
struct repl_wire_scratch {
	uint8_t *buf;
	size_t cap;
};
void repl_wire_scratch_free(struct repl_wire_scratch *s);

/* Hand each complete frame at the front of `in` to fn, in order, while fn
 * returns true (false: it dropped the connection; stop).  The frame is freed
 * after fn returns.  Returns REPL_WIRE_BAD on a malformed frame (the caller
 * drops the peer), else REPL_WIRE_MORE or REPL_WIRE_OK (fn stopped). */
typedef bool repl_frame_fn(void *arg, const Cairn__Repl__Frame *frame);
enum repl_wire_status repl_wire_dispatch(struct evbuffer *in, struct repl_wire_scratch *scratch,
                                         repl_frame_fn *fn, void *arg,
                                         uint64_t *bytes);  /* OUT: += bytes of the frames taken */

/* Decode one frame body (no length prefix); NULL if it is not a Frame. */
Cairn__Repl__Frame *repl_wire_decode(const uint8_t *body, size_t len);

/* Free a received frame; NULL is a no-op. */
void repl_wire_free(Cairn__Repl__Frame *frame);

#endif
