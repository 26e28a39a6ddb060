/* Persistence: the data directory's WAL and checkpoint, and their lifecycle.
 *
 * Every change reaches memory and the WAL through the store
 * (storage/store.h); persist_open() recovers memory from the data directory
 * and then attaches the WAL to the store.  Persist detaches it only while it
 * replaces the whole contents (a replica's full resync, a rollback to a fork
 * point).
 *
 * Objects: one `struct persist` per node.  It owns the WAL (and its writer
 * thread), the LMDB checkpoint and the checkpointer thread, which folds
 * closed WAL segments into LMDB and deletes the segments it no longer needs.
 *
 * Startup (persist_open): lock DATA, open the checkpoint, replay the WAL
 * after the checkpoint's LSN (cutting off a torn or corrupt tail), open the
 * WAL for appending, and start the warm-up (storage/warmup.h), which loads
 * the checkpoint's items while the node serves.
 */
#ifndef CAIRN_STORAGE_PERSIST_H
#define CAIRN_STORAGE_PERSIST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "storage/wal.h"

struct store;

struct persist_config {
	const char *data_dir;
	enum wal_fsync fsync;
	size_t segment_size;    /* WAL segment rotation size */
	size_t backlog;         /* bytes of checkpointed WAL kept for replicas */
};

struct persist_stats {
	enum wal_fsync fsync;
	uint64_t wal_lsn;            /* last LSN appended */
	uint64_t wal_synced_lsn;     /* last LSN on disk */
	uint64_t checkpoint_lsn;     /* last LSN folded into LMDB */
	uint64_t wal_bytes;          /* bytes of WAL segments on disk */
	uint64_t checkpoint_bytes;   /* bytes of the LMDB data file */
	uint64_t last_recovery_ms;   /* exec's persist_open until it could serve */
	uint64_t recovered_items;    /* items recovered: the WAL tail's, then the warm-up's */
	bool warmup_loading;         /* the checkpoint is still loading (storage/warmup.h) */
	uint64_t warmup_items;       /* checkpoint items the warm-up brought into memory */
	uint64_t warmup_ms;          /* how long it took, or has taken so far */
	uint64_t wal_dropped_bytes;  /* damaged WAL bytes cut off at startup */
	uint32_t wal_appends_waiting; /* writes waiting now for WAL buffer space or folding */
	struct wal_tail_stats tail;   /* the unfolded tail and its bound */
	int wal_error;               /* errno of a failed WAL write, or 0 */
	int checkpoint_error;        /* errno of the last failed checkpoint, or 0 */
};

struct persist;

/* Recover DATA into the store's cache and attach the WAL to the store.  `progress_fn`
 * is called (from the WAL writer thread) whenever more of the log is written
 * or synced.
 * Returns 0 and *out, or a negative errno after logging why (-EBUSY: another
 * process uses DATA; -EINVAL: the checkpoint is damaged). */
int persist_open(const struct persist_config *cfg, struct store *store,
                 wal_progress_fn *progress_fn, void *progress_arg, struct persist **out);

/* Stop the checkpointer, write and fsync the rest of the WAL, close.  The
 * cache must no longer change.  NULL is a no-op. */
void persist_close(struct persist *p);

/* Every change up to this LSN is as durable as the fsync policy promises
 * before a reply: on disk with `always`, handed to the kernel (it survives
 * the death of this process) with `everysec`; with `no`, everything
 * (UINT64_MAX: replies never wait). */
uint64_t persist_durable_lsn(struct persist *p);

/* 0, or the errno that makes this node refuse writes (the WAL cannot write). */
int persist_write_error(struct persist *p);

void persist_get_stats(struct persist *p, struct persist_stats *out);

/* Once a second, from the server's timer: the warm-up's progress line. */
void persist_tick(struct persist *p);

/******** For replication ********/

/* Who this node's data belongs to, kept with the checkpoint so that a
 * restarted node knows its history, epoch and role. */
#define PERSIST_ID_MAX 64
struct persist_identity {
	char history_id[PERSIST_ID_MAX];      /* history of the records we hold */
	uint32_t epoch;                       /* highest primary epoch seen */
	char prev_history_id[PERSIST_ID_MAX]; /* history before our promotion */
	uint64_t fork_lsn;                    /* last LSN of prev_history_id */
	char replica_of[320];                 /* HOST:PORT followed, "" = primary */
};

void persist_get_identity(struct persist *p, struct persist_identity *out);

/* A new random history id (128 bits from getrandom(2), as 32 hex digits)
 * into out.  Returns 0, or -EIO when no randomness could be had (there is
 * no weaker fallback: two nodes must never share a history). */
int persist_new_history_id(char *out, size_t outlen);

/* Store the identity (with the checkpoint, in one transaction) and adopt
 * it.  Returns 0, or a negative errno (then nothing changed). */
int persist_set_identity(struct persist *p, const struct persist_identity *id);

/* LSNs of the log: last appended, last written to the segment file, and the
 * oldest one still on disk (the start of the replication backlog). */
uint64_t persist_last_lsn(struct persist *p);
uint64_t persist_written_lsn(struct persist *p);
uint64_t persist_oldest_lsn(struct persist *p);

/* Follow the WAL from `lsn` on (see wal_reader_*). */
struct wal_reader;
int persist_wal_reader_open(struct persist *p, uint64_t lsn, struct wal_reader **out);

/* Retention (storage/wal.h, "slots"): a replica's position, by its node
 * id: the first LSN it still needs.  The log keeps it across disconnects
 * and restarts of either side, within --wal-backlog; beyond it the slot is
 * invalidated and the replica gets a full resync.  Returns 0 or a negative
 * errno.  drop: forget it.  list: every slot (the checkpointer's, each
 * replica's), for `stats replication`; returns how many there are. */
int persist_replica_slot_set(struct persist *p, const char *replica_id, uint64_t lsn);
void persist_replica_slot_drop(struct persist *p, const char *replica_id);
struct wal_slot_info;
size_t persist_slot_list(struct persist *p, struct wal_slot_info *out, size_t max);

/* Open a snapshot of the checkpoint (see ckpt_snapshot_*: every item, none
 * older than *lsn) and a reader of the WAL from *lsn + 1, registered before
 * anything after *lsn can be trimmed: the snapshot then the reader's
 * records give the primary's state.  Returns 0 or a negative errno. */
struct ckpt_snapshot;
int persist_snapshot_open(struct persist *p, struct ckpt_snapshot **out, uint64_t *lsn,
                          struct wal_reader **reader);

/* A replica's full resync replaces everything this node holds:
 *   begin: stop logging, forget the cache, the checkpoint and the WAL;
 *   items: store a batch of snapshot items in the checkpoint and the cache;
 *   end:   the snapshot covers up to `lsn`; the WAL resumes at lsn + 1.
 * If the node dies in between it restarts with an empty history and is
 * resynced in full again.  Return 0 or a negative errno; after begin
 * fails, nothing has started (do not call end). */
int persist_full_sync_begin(struct persist *p);
int persist_full_sync_items(struct persist *p, const struct cache_change *items, size_t n);
int persist_full_sync_end(struct persist *p, uint64_t lsn, const struct persist_identity *id);

/* Roll this node back to `lsn` (an old primary whose last writes never
 * reached the new primary): discard later records from the WAL and reload
 * the cache from the checkpoint and the remaining WAL.  Returns the number of
 * changes discarded, -ERANGE when the checkpoint already holds later changes
 * (then only a full resync helps), or a negative errno. */
int64_t persist_truncate_after(struct persist *p, uint64_t lsn);

/* The link dropped mid-way: keep what arrived (with an empty history, so the
 * next attempt is a full resync again) and resume normal logging. */
void persist_full_sync_abort(struct persist *p);

#endif
