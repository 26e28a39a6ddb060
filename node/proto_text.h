/* memcache ASCII protocol: parse requests, run them against the cache, and
 * write the replies, byte for byte as memcached 1.6 does.  proto_process()
 * is also the entry point of the binary protocol (node/proto_binary.h): a
 * connection's first byte picks one of the two.
 *
 * The parser is a pure function of the bytes it is given: the connection
 * layer (node/conn.c) hands it everything read so far, it consumes every
 * complete request, appends the replies to an evbuffer and says how much it
 * used.  It never blocks and never reads a socket, so unit tests and fuzzers
 * can drive it directly.  Called from worker threads, one connection at a
 * time per proto_state.
 *
 * The reference for every reply is memcached's doc/protocol.txt plus the
 * behaviour of memcached 1.6 itself; docs/protocol.md lists the edge cases.
 * The meta commands (mg, ms, md, ma, me, mn) are node/proto_meta.h's,
 * dispatched from here; what both parsers share is node/proto_shared.h.
 */
#ifndef CAIRN_NODE_PROTO_TEXT_H
#define CAIRN_NODE_PROTO_TEXT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "node/proto_dump.h"

struct cache;
struct client_auth;
struct evbuffer;
struct persist;
struct repl;
struct settings;
struct store;
struct thread_stats;

/* What every connection shares; read-only once the server runs. */
struct proto_env {
	struct cache *cache;       /* reads */
	struct store *store;       /* every change (storage/store.h) */
	struct persist *persist;   /* NULL with --ephemeral */
	struct repl *repl;         /* NULL with --ephemeral */
	const struct settings *settings;
	const struct client_auth *auth; /* -Y/-S: clients must authenticate; else NULL */
	time_t started;            /* process start, for `stats uptime` */
	int worker_threads;        /* for `stats threads` */
};

/* Which protocol a connection speaks: chosen by its first byte (-B auto)
 * or by -B, once. */
enum proto_wire {
	PROTO_WIRE_UNDECIDED,
	PROTO_WIRE_ASCII,
	PROTO_WIRE_BINARY,
};

/* A binary error reply owed once the body of its request has been
 * swallowed (node/proto_binary.c): replies stay in request order. */
struct proto_binary_owed {
	bool active;
	uint8_t opcode;
	uint16_t status;
	uint32_t opaque;
};

/* A binary quiet write that succeeded answers nothing; should its WAL
 * record or its replicas fail it afterwards, node/conn.c must still send
 * an error, and this says for which request (opcode and opaque). */
struct proto_quiet_write {
	bool valid;
	uint8_t opcode;
	uint32_t opaque;
};

/* One connection's protocol state. */
struct proto_state {
	const struct proto_env *env;
	struct thread_stats *stats;  /* the worker's counters */
	uint64_t swallow;            /* bytes of a refused value still to skip */
	unsigned max_requests;       /* per proto_process call; 0 = no limit */
	bool paused;                 /* stopped at a write while writes are
	                              * paused (pause_writes): call again later */
	bool close;                  /* close once the replies are written */
	bool authenticated;          /* with env->auth: this client has */
	enum proto_wire wire;        /* ASCII or binary, once the first byte came */
	bool sasl_started;           /* binary: an empty SASL AUTH awaits its STEP */
	struct proto_binary_owed owed; /* binary: answered after ps->swallow */
	struct proto_quiet_write quiet_write; /* binary: set when a request was a
	                              * quiet write answered with silence (the
	                              * caller clears it before each request) */
	uint64_t role_ticket;        /* a promote/replicaof being carried out:
	                              * its reply is owed (proto_role_reply), and
	                              * no request after it is read until then */
	struct proto_dump_stream dump; /* a metadump being sent: the rest goes
	                              * out (proto_process, once `out` is below
	                              * its limit) before the next request */
};

/* Longest request line memcached accepts before a newline, except for
 * get/gets, whose key lists may be longer (up to PROTO_GET_LINE_MAX). */
#define PROTO_LINE_MAX 2048
#define PROTO_GET_LINE_MAX (1024 * 1024)

/* Writes paused (a planned failover): write commands wait, unconsumed,
 * until proto_writes_paused() turns false.  Process-wide; any thread. */
bool proto_writes_paused(void);

/* Append the decimal digits of v at p (no NUL); returns the end.  Replies
 * are formatted by hand where every item costs a format (get, metadump). */
char *proto_format_u64(char *p, uint64_t v);

void proto_state_init(struct proto_state *ps, const struct proto_env *env,
                      struct thread_stats *stats);

/* A promote/replicaof answered with ps->role_ticket set: once
 * repl_request_result() says it is done, write its reply to `out` and clear
 * the ticket.  Returns false (nothing written) while it is not done. */
bool proto_role_reply(struct proto_state *ps, struct evbuffer *out);

/* Consume complete requests from buf[0 .. len) and append their replies to
 * `out`.  Returns the number of bytes consumed; the caller keeps the rest and
 * calls again once more bytes arrive.  *need (OUT) is set to the total number
 * of unconsumed bytes required before the next request can complete (a
 * storage command waiting for its value), or 0 when any more bytes may help;
 * the caller must make room for that many.  Sets ps->close on `quit` and on
 * input memcached also drops the connection for (a line longer than
 * PROTO_LINE_MAX without a newline, an HTTP request).  Stops early, with
 * requests left unconsumed, once `out` holds more than `out_limit` bytes, so
 * a client that pipelines without reading cannot grow our memory.  A
 * metadump (`lru_crawler metadump`) is sent the same way, a slice at a
 * time: while ps->dump.active, the caller must call again once `out` has
 * been sent, even when no new bytes arrived. */
size_t proto_process(struct proto_state *ps, char *buf, size_t len,
                     struct evbuffer *out, size_t out_limit, size_t *need);

#endif
