/* Store: the one path through which every change reaches memory and the log.
 *
 * The log is the truth and memory is its projection.  Every writer (the
 * protocol's commands, the evictor's journal, a replica applying its
 * primary's stream) calls the store; the store orders "change memory, append
 * the after-image to the WAL" for one key under that key's *writer lock*, so
 * that the LSN order of the changes to one key is the order they reached
 * memory.  The cache itself (storage/cache.h) is pure memory.
 *
 * Why writer locks of its own, and not the cache's stripe locks: appending
 * may wait (for buffer space, behind a slow disk).  Only writers take the
 * store's locks; a get takes only the cache's stripe lock, for the moment of
 * a lookup, so no read ever waits for the disk or the WAL writer.
 *
 * Roles:
 *   - no log attached (--ephemeral, or while persist replaces the whole
 *     contents): changes reach memory only;
 *   - leader (a primary): local changes get the next LSN; evictions are
 *     logged as EVICT records (drained from the cache's eviction journal
 *     after each change, logged only if the key is still absent);
 *   - follower (a replica): local commands are refused by node/; every
 *     record received is appended to the WAL in LSN order whatever memory
 *     holds, then applied to memory if it can be (an evicted key, a delete of
 *     a key never held, a SET that does not fit), so the replica's LSN always
 *     reaches its primary's.  A follower never logs an eviction of its own
 *     (it would need an LSN of its own).
 *
 * Lock order: store writer lock (one, or all in index order for FLUSH and
 * role changes) -> cache stripe lock -> cache LRU lock; store writer lock ->
 * WAL lock.
 *
 * Threads: every function may be called from any thread.
 */
#ifndef CAIRN_STORAGE_STORE_H
#define CAIRN_STORAGE_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "storage/cache.h"

struct wal;
struct wal_record;
struct store;

/* A store over `cache` (not owned), with no log attached.  NULL when out of
 * memory. */
struct store *store_create(struct cache *cache);
void store_destroy(struct store *s);

struct cache *store_cache(struct store *s);

/* Attach the log that changes go to (NULL detaches it).  Waits for the
 * changes in flight, so that none is half-way between memory and the log. */
void store_attach_log(struct store *s, struct wal *w);

/* Follower (replica) or leader (primary).  Waits like store_attach_log(). */
void store_set_follower(struct store *s, bool follower);

/* While a restarted node's checkpoint is still loading (storage/warmup.h),
 * reads that miss memory and changes that depend on an item's old value
 * consult the checkpoint, and every change is noted so the loader leaves
 * its key alone.  NULL: none (after warmup_stop(), before warmup_destroy()).
 * Set by persist. */
struct warmup;
void store_set_warmup(struct store *s, struct warmup *w);

/* A get: cache_get(), or while warming up, the checkpoint's item. */
struct item *store_get(struct store *s, const char *key, size_t nkey);

/* The protocol's changes: as the cache_* functions of the same names, plus
 * the log.  Each records the LSN it appended for store_take_thread_lsn(). */
enum cache_status store_store(struct store *s, struct item *it, enum cache_store_mode mode,
                              uint64_t cas, uint64_t *cas_out);
struct item *store_get_and_touch(struct store *s, const char *key, size_t nkey,
                                 uint32_t exptime);
enum cache_status store_delete(struct store *s, const char *key, size_t nkey);
void store_discard(struct store *s, const char *key, size_t nkey);
enum cache_status store_incr(struct store *s, const char *key, size_t nkey, bool incr,
                             uint64_t delta, uint64_t *result);
void store_flush(struct store *s, uint32_t when);

/* The meta protocol's changes (node/proto_meta.h): as the cache_* functions
 * of the same names (storage/cache.h), plus the log.
 *
 * The per-item meta marks key_binary, stale and win_sent (struct item)
 * travel with the item: every SET in the log, the checkpoint and a full
 * sync's snapshot carries them (CACHE_MARK_*), and replay, a checkpoint
 * load and a replica restore them, so mg shows the same X, W/Z and k on
 * every node and after a restart, as CAS uniques are the same.  An md I is
 * logged as the SET of the same value under its new CAS, TTL and marks.
 *
 * store_meta_claim_win() is a change too: a won claim is logged as the SET
 * of the item (same value and CAS) with win_sent, so that a replica, once
 * promoted, or a restarted node says Z and never hands the same win out a
 * second time.  A full SET rather than a record of its own: it is an
 * after-image like every other (replay, checkpoint folding and replicas
 * need nothing new), and a win is handed out once per invalidation or
 * recache, not per read.  A follower claims nothing (false: mg says Z):
 * the win is its primary's to hand out. */
enum cache_status store_store_opts(struct store *s, struct item *it,
                                   enum cache_store_mode mode,
                                   const struct cache_store_opts *o, uint64_t *cas_out);
enum cache_status store_arith(struct store *s, const char *key, size_t nkey,
                              const struct cache_arith *a, struct cache_arith_result *r);
/* A read (no writer lock, like store_get()) unless rd touches or vivifies. */
struct item *store_meta_get(struct store *s, const char *key, size_t nkey,
                            const struct cache_meta_read *rd,
                            struct cache_meta_view *view);
bool store_meta_claim_win(struct store *s, struct item *it);
enum cache_status store_meta_delete(struct store *s, const char *key, size_t nkey,
                                    const struct cache_meta_delete *d);

/* A delayed flush_all whose time has come, logged as an immediate flush. */
void store_run_due_flush(struct store *s);

/* A follower's apply: append `rec` (it must carry the log's next LSN) and
 * apply it to memory if memory can take it.  Returns 0, -EPERM when this
 * store is not a follower (promoted meanwhile: the record is not ours), or
 * the negative errno of the append (-EILSEQ: not the next LSN).  `more`:
 * more records follow at once, and store_apply_end() comes after the last
 * (the log's writer then wakes once for the run). */
int store_apply_record(struct store *s, const struct wal_record *rec, bool more);
void store_apply_end(struct store *s);

/* Apply a change that is already in the log (the WAL tail at startup, a
 * follower's record) to memory, telling a warm-up about it.  No lock taken:
 * the caller holds the key's writer lock or is alone. */
void store_replay_change(struct store *s, const struct cache_change *ch);

/* The highest LSN this thread appended since the previous call (0 if none),
 * and forget it: a connection waits for that LSN to be durable before it
 * replies.  UINT64_MAX when an append failed (the reply must never say the
 * change is stored). */
uint64_t store_take_thread_lsn(void);

#endif
