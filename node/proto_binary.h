/* memcache binary protocol (and its SASL PLAIN authentication), as
 * memcached 1.6 speaks it, reply for reply.
 *
 * A connection whose first byte is 0x80 speaks binary (or every connection,
 * with -B binary); node/proto_text.c's proto_process() decides and hands the
 * bytes here.  Like the ASCII parser this is a pure function of the bytes:
 * it consumes every complete packet, appends the reply packets to an
 * evbuffer (never writing per reply, so a pipeline of quiet requests and
 * its NOOP leave in one write) and says how much it used.
 *
 * Every packet is checked on its 24-byte header alone (lengths, auth, the
 * opcode's shape) before its body is waited for, so a malformed or
 * unauthenticated request never makes us buffer its body.  Where memcached
 * 1.6.18 has bugs (docs/protocol.md, "Binary protocol", lists them) cairn
 * reads exactly the body length a packet announces and answers sanely.
 * Every change goes through storage/store.h, as the ASCII commands' do.
 */
#ifndef CAIRN_NODE_PROTO_BINARY_H
#define CAIRN_NODE_PROTO_BINARY_H

#include <stddef.h>
#include <stdint.h>

#include "node/proto_text.h"
#include "node/settings.h"

struct evbuffer;

/* The magic byte that starts every binary request. */
#define PROTO_BINARY_REQUEST 0x80

/* The protocol of a connection whose first byte is `first`, under -B. */
enum proto_wire proto_binary_wire(enum client_protocol protocol, uint8_t first);

/* proto_process() for a binary connection: the same contract (consumed
 * bytes returned, *need, ps->close, ps->paused, out_limit,
 * ps->max_requests). */
size_t proto_binary_process(struct proto_state *ps, const uint8_t *buf, size_t len,
                            struct evbuffer *out, size_t out_limit, size_t *need);

/* The error that replaces the reply to a write whose WAL record failed
 * before it was durable, or that its replicas did not confirm in time
 * (node/conn.c): `held` is the reply packet produced (at least its 24-byte
 * header), or NULL for a quiet write that answered nothing, which `quiet`
 * then names.  The same opcode and opaque, status Internal error, `why` as
 * the body. */
void proto_binary_write_failed(const uint8_t *held, const struct proto_quiet_write *quiet,
                               const char *why, struct evbuffer *out);

#endif
