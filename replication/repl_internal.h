/* Replication internals shared by repl.c (the facade and the thread),
 * primary.c (serving replicas) and replica.c (following a primary).
 * Not for use outside replication/. */
#ifndef CAIRN_REPLICATION_REPL_INTERNAL_H
#define CAIRN_REPLICATION_REPL_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "replication/repl.h"
#include "replication/wire.h"

struct event_base;
struct event;
struct evconnlistener;
struct primary_conn;
struct replica_link;

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

struct repl {
	/* Configuration (copied). */
	char *node_id;
	char *listen_addr;
	char *secret;
	size_t secret_len;
	int client_port;
	int repl_port;
	int sync_replicas;
	int sync_timeout_ms;

	struct store *store;
	struct persist *persist;
	repl_wake_fn *wake;
	void *wake_arg;

	/* The replication thread. */
	struct event_base *base;
	pthread_t thread;
	int notify_fd;                 /* eventfd: work for the thread */
	struct event *notify_ev;
	struct event *tick_ev;         /* once a second */
	struct evconnlistener *listener;

	/* Shared state, under lock: the role, whom we follow, and everything
	 * `stats replication` reads (including the primary's conn list). */
	pthread_mutex_t lock;
	pthread_mutex_t role_lock;     /* promote/replicaof, one at a time */
	bool replica;                  /* also read atomically without lock */
	char primary_host[256];
	int primary_port;
	bool repoint;                  /* role or primary changed: thread acts */
	bool stop;
	enum link_state link_state;
	uint64_t primary_lsn;          /* from the primary's heartbeats */
	struct primary_conn *conns;    /* replicas of ours (repl thread + lock) */
	int nconns;
	uint64_t quorum_lsn;           /* atomic */
	/* Replicas (node ids) whose stream met a hole: full resync next time
	 * (repl thread only). */
	char full_sync_ids[REPL_MAX_REPLICAS][64];

	struct replica_link *link;     /* repl thread only */
	struct event *retry_ev;        /* reconnect after backoff_ms */
	int backoff_ms;

	/* Counters (atomics). */
	uint64_t full_syncs;
	uint64_t partial_syncs;
	uint64_t bytes_sent;
	uint64_t bytes_received;
	uint64_t discarded_changes;    /* rolled back past a fork point */
};

/* primary.c: serving our replicas (replication thread only). */
void primary_accept(struct repl *r, int fd, const char *peer);
void primary_pump_all(struct repl *r);
void primary_tick(struct repl *r);
void primary_close_all(struct repl *r);
/* Under r->lock: one stats line per replica. */
void primary_write_stats(struct repl *r, repl_stat_fn *emit, void *arg);

/* replica.c: following a primary (replication thread only). */
void replica_link_restart(struct repl *r);
void replica_link_close(struct repl *r);
void replica_on_progress(struct repl *r);
void replica_tick(struct repl *r);
void replica_retry_cb(int fd, short what, void *arg);  /* r->retry_ev */

/* repl.c */
void repl_random_id(char *out, size_t outlen);

#endif
