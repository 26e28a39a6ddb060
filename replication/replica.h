/* Replication, replica side: the link to the primary we follow, as a state
 * machine (down -> connecting -> syncing -> up), applying its stream
 * through the store and acknowledging it.  See replica.c.
 *
 * Threads: everything runs on the replication thread, except
 * replica_side_write_stats(), which any thread may call.  Knows nothing of
 * the primary side: repl.c, the only module that knows both, tells it whom
 * to follow and when to stop.  Not for use outside replication/. */
#ifndef CAIRN_REPLICATION_REPLICA_H
#define CAIRN_REPLICATION_REPLICA_H

#include <stddef.h>
#include <stdint.h>

#include "replication/repl_internal.h"

struct event_base;
struct persist;
struct replica_side;
struct store;

struct replica_side_config {
	const char *node_id;        /* ours, sent in Hello */
	const char *listen_addr;    /* with client_port: our address, sent in Hello */
	int client_port;
	const char *secret;         /* the cluster secret, or NULL */
	size_t secret_len;
};

/* Returns NULL when out of memory.  Follows nobody until told to. */
struct replica_side *replica_side_create(const struct replica_side_config *cfg,
                                         struct event_base *base, struct store *store,
                                         struct persist *persist);
/* Close the link and free.  NULL is a no-op. */
void replica_side_destroy(struct replica_side *rs);

/* Follow the primary whose replication port is host:port: (re)start the
 * link now, reconnecting with backoff whenever it drops. */
void replica_side_follow(struct replica_side *rs, const char *host, int port);

/* Stop following (a promotion): close the link, cancel reconnects. */
void replica_side_unfollow(struct replica_side *rs);

/* Our WAL wrote more: acknowledge it. */
void replica_side_on_progress(struct replica_side *rs);

/* Once a second: the ack doubles as a heartbeat; a primary silent for 5 s
 * means the link is down. */
void replica_side_tick(struct replica_side *rs);

/* `stats replication` lines of a replica: link, lag_lsn (our_lsn
 * is the last LSN in our log). */
void replica_side_write_stats(struct replica_side *rs, uint64_t our_lsn, repl_stat_fn *emit,
                              void *arg);

/* Add this side's counters into *sum. */
void replica_side_counters(struct replica_side *rs, struct repl_counters *sum);

#endif
