/* Replication, primary side: a state machine per replica connection
 * (handshake -> snapshot -> streaming), serving WAL records and snapshots
 * to our replicas and counting their acks.  See primary.c.
 *
 * Threads: everything runs on the replication thread, except
 * primary_side_write_stats() and primary_side_quorum_lsn(), which any thread
 * may call.  Knows nothing of the replica side: repl.c, the only module
 * that knows both, turns serving off while this node follows a primary.
 * Not for use outside replication/. */
#ifndef CAIRN_REPLICATION_PRIMARY_H
#define CAIRN_REPLICATION_PRIMARY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "replication/repl_internal.h"

struct event_base;
struct persist;
struct primary_side;

struct primary_side_config {
	const char *node_id;        /* ours, sent in Welcome */
	const char *secret;         /* replicas must prove it; NULL: no auth */
	size_t secret_len;
	int sync_replicas;          /* --sync-replicas N */
};

/* `wake` is called when the LSN acknowledged by N replicas advances.
 * Returns NULL when out of memory. */
struct primary_side *primary_side_create(const struct primary_side_config *cfg,
                                         struct event_base *base, struct persist *persist,
                                         repl_wake_fn *wake, void *wake_arg);
/* Close every replica connection and free.  NULL is a no-op. */
void primary_side_destroy(struct primary_side *ps);

/* Serving (the default) or not: while this node follows a primary, every
 * replica connection is closed and new ones are refused at their Hello. */
void primary_side_set_serving(struct primary_side *ps, bool serving);

/* A new connection on the replication port (fd is ours to close). */
void primary_side_accept(struct primary_side *ps, int fd, const char *peer);

/* More WAL was written: send it to every streaming replica with room. */
void primary_side_pump(struct primary_side *ps);

/* Once a second: heartbeats, and closing replicas silent for too long. */
void primary_side_tick(struct primary_side *ps);

/* The highest LSN that at least --sync-replicas replicas hold. */
uint64_t primary_side_quorum_lsn(struct primary_side *ps);

/* `stats replication` lines of a primary: connected_replicas,
 * sync_replicas and one replica<i> line per replica. */
void primary_side_write_stats(struct primary_side *ps, repl_stat_fn *emit, void *arg);

/* Add this side's counters into *sum. */
void primary_side_counters(struct primary_side *ps, struct repl_counters *sum);

#endif
