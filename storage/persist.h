/* Persistence: the data directory's WAL and checkpoint, wired to the cache.
 *
 * This is the facade that orders "apply to memory, append to the WAL" for
 * every writer: persist_open() installs the WAL as the cache's change
 * listener, so every path that changes the cache (protocol commands, the
 * evictor, and later the replica's apply loop) is logged, under the key's
 * lock, in the order the changes reached memory.
 *
 * Objects: one `struct persist` per node.  It owns the WAL (and its writer
 * thread), the LMDB checkpoint and the checkpointer thread, which folds
 * closed WAL segments into LMDB and deletes the segments it no longer needs.
 *
 * Startup (persist_open): lock DATA, open the checkpoint, load its unexpired
 * items into the cache, replay the WAL after the checkpoint's LSN (cutting
 * off a torn or corrupt tail), then open the WAL for appending.
 */
#ifndef CAIRN_STORAGE_PERSIST_H
#define CAIRN_STORAGE_PERSIST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "storage/wal.h"

struct cache;

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
	uint64_t last_recovery_ms;
	uint64_t recovered_items;    /* items in memory after recovery */
	uint64_t wal_dropped_bytes;  /* damaged WAL bytes cut off at startup */
	int wal_error;               /* errno of a failed WAL write, or 0 */
	int checkpoint_error;        /* errno of the last failed checkpoint, or 0 */
};

struct persist;

/* Recover DATA into `cache` and start logging its changes.  `synced_fn` is
 * called (from the WAL writer thread) whenever more of the log is on disk.
 * Returns 0 and *out, or a negative errno after logging why (-EBUSY: another
 * process uses DATA; -EINVAL: the checkpoint is damaged). */
int persist_open(const struct persist_config *cfg, struct cache *cache,
                 wal_synced_fn *synced_fn, void *synced_arg, struct persist **out);

/* Stop the checkpointer, write and fsync the rest of the WAL, close.  The
 * cache must no longer change.  NULL is a no-op. */
void persist_close(struct persist *p);

/* True when replies to writes must wait for their fsync (--fsync always). */
bool persist_waits_for_fsync(const struct persist *p);

/* Every change up to this LSN is on disk. */
uint64_t persist_synced_lsn(struct persist *p);

/* 0, or the errno that makes this node refuse writes (the WAL cannot write). */
int persist_write_error(struct persist *p);

void persist_get_stats(struct persist *p, struct persist_stats *out);

#endif
