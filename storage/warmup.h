/* Warm-up: a restarted node's checkpoint brought into memory while it serves.
 *
 * A restarted node replays only the WAL tail after its checkpoint, then
 * serves at once; loader threads bring the LMDB checkpoint's items into
 * memory behind it.  Until they are done ("loading"):
 *   - a read that misses memory looks the key up in the checkpoint
 *     (warmup_read) and links what it finds;
 *   - a change to a key first brings in the key's checkpoint version when
 *     the change depends on it (add, append, incr, delete, touch...:
 *     warmup_before_change with fault_in), then records the key as
 *     *changed*, before the change reaches memory;
 *   - nothing of the checkpoint is ever linked for a changed key: what
 *     memory holds for it (or its absence, after a delete or an eviction)
 *     is newer;
 *   - an immediate flush_all ends the warm-up: nothing in the checkpoint is
 *     live any more (warmup_note_flush).
 * Why that is enough: every change after the checkpoint's LSN is either in
 * the replayed tail or made since, and each one is noted here before it
 * reaches memory.  Every other key has had no change since that LSN, so
 * every version of the checkpoint the loader or a read can see (the
 * checkpointer keeps folding meanwhile) holds the same item for it.
 *
 * The changed set holds 64-bit key hashes, striped under mutexes of their
 * own (never the store's writer locks, which a writer may hold across a
 * wait for the disk).  Two keys sharing a hash only cost a checkpoint item
 * that is not loaded (a miss), never a stale value.  It is freed when the
 * warm-up ends.
 *
 * Loading never evicts (an item written since the restart is worth more
 * than an old one): when memory is full the warm-up ends there.
 *
 * Lock order: store writer lock -> changed-set stripe -> cache stripe lock.
 * No lock is held while LMDB is read (a read may fault a page in from disk).
 *
 * Threads: every function may be called from any thread; the loader
 * threads are started by warmup_start() and joined by warmup_stop().
 */
#ifndef CAIRN_STORAGE_WARMUP_H
#define CAIRN_STORAGE_WARMUP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "storage/cache.h"

struct ckpt;
struct warmup;

/* A warm-up of `cache` from `ck` (neither owned), "loading" from now on:
 * changes are noted from here (the WAL tail's replay included), loading
 * starts with warmup_start().  The hash table is sized for the checkpoint
 * and CAS uniques are raised above its highest.  NULL when out of memory. */
struct warmup *warmup_create(struct cache *cache, struct ckpt *ck);

/* Start the loader threads (as many as there are CPUs, up to 4).  Returns
 * 0, or a negative errno (then the warm-up has ended). */
int warmup_start(struct warmup *w);

/* End the warm-up if it still runs and join its threads.  After this, the
 * cache is a plain cache again.  Idempotent. */
void warmup_stop(struct warmup *w);

/* warmup_stop(), then free.  NULL is a no-op. */
void warmup_destroy(struct warmup *w);

/* True while loading (a relaxed atomic read: callers check it first). */
bool warmup_loading(const struct warmup *w);

/* Before a change to `key` reaches memory (caller holds the key's store
 * writer lock): with fault_in, bring the checkpoint's version in if the key
 * is not changed yet and not in memory (it may evict: this is a write);
 * then note the key as changed.  A no-op once the warm-up has ended. */
void warmup_before_change(struct warmup *w, const char *key, size_t nkey, bool fault_in);

/* An immediate flush_all: nothing in the checkpoint is live; the warm-up
 * ends. */
void warmup_note_flush(struct warmup *w);

/* A read that missed memory: the key's checkpoint item, linked into memory
 * (if it fits without evicting), with a reference for the caller; or what
 * memory holds for it if it has changed meanwhile; or NULL. */
struct item *warmup_read(struct warmup *w, const char *key, size_t nkey);

/* Log a progress line if a second has passed since the last one (the
 * loaders also do, between chunks; a timer makes sure of one a second even
 * when they get little CPU). */
void warmup_report(struct warmup *w);

struct warmup_stats {
	bool loading;
	uint64_t items;  /* checkpoint items brought into memory (counted before
	                  * a client can read them) */
	uint64_t items_at_start;  /* of those, brought in before warmup_start():
	                           * by the WAL tail's replay (a TOUCH), so in
	                           * memory when the replay ended */
	uint64_t bytes;  /* their keys and values */
	uint64_t ms;     /* since warmup_create(), or how long it took */
};

void warmup_get_stats(const struct warmup *w, struct warmup_stats *out);

/* Where n loader threads split [first, last] (exposed for its unit test):
 * fills splits[0 .. n-2] (CACHE_KEY_MAX bytes each, lengths in nsplit) with
 * increasing keys between them, so that thread i reads [split[i-1],
 * split[i]).  Returns how many threads to use (<= n; 1 when the keys give
 * no room to split). */
unsigned warmup_split_keys(const char *first, size_t nfirst, const char *last, size_t nlast,
                           unsigned n, char (*splits)[CACHE_KEY_MAX], size_t *nsplit);

#endif
