/* What the two sides of replication share: limits, the link states, the
 * counters.  primary.h and replica.h each declare one side's state machine;
 * repl.c (the facade, the thread, the role) is the only module that knows
 * both.  Not for use outside replication/. */
#ifndef CAIRN_REPLICATION_REPL_INTERNAL_H
#define CAIRN_REPLICATION_REPL_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

#include "replication/repl.h"
#include "replication/wire.h"

#define REPL_HEARTBEAT_SECONDS 1
#define REPL_LINK_TIMEOUT_SECONDS 5
#define REPL_OUTPUT_LIMIT (8u << 20)     /* per link, before we stop pumping */
#define REPL_BATCH_BYTES (256u << 10)    /* WAL bytes per WalBatch frame */
#define REPL_MAX_REPLICAS 64

/* The replica side's view of its link (Redis's repl_state, simplified). */
enum link_state {
	LINK_NONE = 0,   /* not a replica */
	LINK_DOWN,       /* waiting to (re)connect */
	LINK_CONNECTING, /* TCP connect or handshake in progress */
	LINK_SYNCING,    /* receiving a full snapshot */
	LINK_UP,         /* streaming */
};

/* Counters each side keeps (relaxed atomics); `stats replication` shows
 * their sum. */
struct repl_counters {
	uint64_t full_syncs;         /* primary: full resyncs served */
	uint64_t partial_syncs;      /* primary: partial resyncs served */
	uint64_t bytes_sent;
	uint64_t bytes_received;
	uint64_t discarded_changes;  /* replica: rolled back past a fork point */
};

static inline void
repl_counters_add(struct repl_counters *sum, const struct repl_counters *c)
{
	sum->full_syncs += __atomic_load_n(&c->full_syncs, __ATOMIC_RELAXED);
	sum->partial_syncs += __atomic_load_n(&c->partial_syncs, __ATOMIC_RELAXED);
	sum->bytes_sent += __atomic_load_n(&c->bytes_sent, __ATOMIC_RELAXED);
	sum->bytes_received += __atomic_load_n(&c->bytes_received, __ATOMIC_RELAXED);
	sum->discarded_changes += __atomic_load_n(&c->discarded_changes, __ATOMIC_RELAXED);
}

#endif
