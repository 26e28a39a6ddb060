/* Replication: a primary streams its WAL to replicas over protobuf frames; a
 * replica applies the stream to its own cache, WAL and checkpoint.
 *
 * Objects: one `struct repl` per node.  Every node listens on its
 * replication port (any node may become primary); a node started with
 * --replica-of, or told `replicaof`, follows that primary.
 *
 * Threads: the replication side runs its own thread and event_base (the
 * listener, every replica connection of a primary, the link of a replica).
 * Other threads talk to it only through the functions below, which are
 * thread-safe: workers ask whether the node is read-only and how far the
 * replicas have acknowledged; the WAL writer reports progress; admin
 * commands promote or re-point the node.
 *
 * Dependencies: uses storage/ (cache, persist, wal); only replication/ sees
 * the protobuf types.  The protocol is in replication/wire.c and
 * docs/replication.md.
 */
#ifndef CAIRN_REPLICATION_REPL_H
#define CAIRN_REPLICATION_REPL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct persist;
struct store;

struct repl_config {
	const char *listen_addr;    /* -l: the replication port binds here too */
	int client_port;            /* -p, reported to the primary */
	int repl_port;              /* --repl-port */
	const char *node_id;        /* --node-id */
	const char *replica_of;     /* --replica-of HOST:PORT, or NULL */
	int sync_replicas;          /* --sync-replicas N */
	int sync_timeout_ms;        /* --sync-timeout-ms */
	const char *secret;         /* from --cluster-secret-file, or NULL */
	size_t secret_len;
};

/* Called (from the replication thread) when the LSN acknowledged by enough
 * replicas advances, or a role change is done, so that parked client
 * connections can be answered. */
typedef void repl_wake_fn(void *arg);

struct repl;

/* Bind the replication port and start the replication thread.  Returns 0
 * and *out, or a negative errno after logging why. */
int repl_start(const struct repl_config *cfg, struct store *store,
               struct persist *persist, repl_wake_fn *wake, void *wake_arg,
               struct repl **out);

/* Stop the thread, close every link.  NULL is a no-op. */
void repl_stop(struct repl *r);

/* True while this node follows a primary (writes are refused). */
bool repl_is_replica(struct repl *r);

/* The WAL wrote or synced more: stream it to replicas, or ack it to our
 * primary.  Any thread; cheap. */
void repl_notify(struct repl *r);

/* --sync-replicas N (0: writes do not wait for replicas). */
int repl_sync_replicas(const struct repl *r);
int repl_sync_timeout_ms(const struct repl *r);

/* The highest LSN that at least N replicas hold in their WALs. */
uint64_t repl_quorum_lsn(struct repl *r);

/* Role changes, carried out in order by the replication thread (the
 * identity's LMDB commit never blocks the caller):
 *   promote:   become a primary: epoch + 1 and a new history that
 *              remembers the old one and where it forked (a no-op on a
 *              primary);
 *   replicaof: follow the primary whose replication port is HOST:PORT (a
 *              no-op when already following it).
 * Each returns 0 and a ticket, -EINVAL for a bad address, or -EBUSY when
 * too many are queued.  repl_request_result(): 0 while the ticket is not
 * done, 1 when it succeeded, a negative errno when it failed (the role is
 * then unchanged).  `wake` (repl_start) is called as each one finishes. */
int repl_request_promote(struct repl *r, uint64_t *ticket);
int repl_request_replicaof(struct repl *r, const char *host, int port, uint64_t *ticket);
int repl_request_result(struct repl *r, uint64_t ticket);

/* `stats replication`: one line per field, written through `emit`. */
typedef void repl_stat_fn(void *arg, const char *name, const char *value);
void repl_write_stats(struct repl *r, repl_stat_fn *emit, void *arg);

#endif
