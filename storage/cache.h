/* Item cache: the in-memory key/value store behind the memcache protocol.
 *
 * Objects: one `struct cache` (the hash table, the LRU list and the memory
 * account) and refcounted `struct item`s.  Pure memory: this module knows
 * nothing of sockets, the protocol text, LSNs, the WAL or replication.  Each
 * call that changes the contents can describe what it did as a physical
 * after-image (`struct cache_effect`); storage/store.c logs those.
 *
 * Threads: every function may be called from any thread.  The hash table is
 * protected by a fixed array of striped mutexes (a key's stripe is chosen by
 * its hash); the LRU list by one mutex.  Lock order: stripe lock, then LRU
 * lock.  Eviction walks the LRU tail holding the LRU lock and only *tries*
 * stripe locks, so the order is never inverted.  See docs/architecture.md.
 *
 * Ownership: an item returned by cache_item_create() or by a lookup carries a
 * reference owned by the caller, who drops it with cache_item_put().  While an
 * item is linked into the table the table holds one more reference.  The last
 * put frees the item and returns its bytes to the memory account.  A linked
 * item's key, flags and value never change (incr/decr may rewrite a value in
 * place only when nobody else holds a reference), so a reader may use a
 * referenced item without any lock.
 *
 * Time: all exptimes here are absolute unix seconds (0 = never expires);
 * node/ converts the protocol's relative/absolute/negative forms.
 */
#ifndef CAIRN_STORAGE_CACHE_H
#define CAIRN_STORAGE_CACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A cached item.  The key and the value live in the same allocation:
 * data[0 .. nkey) is the key, data[nkey .. nkey + nbytes) the value, followed
 * by "\r\n" so that a protocol reply can send value and terminator in one
 * piece. */
struct item {
	struct item *hash_next;  /* next item in the same hash bucket */
	struct item *lru_prev;   /* towards the LRU head (most recently linked) */
	struct item *lru_next;   /* towards the LRU tail (next to evict) */
	uint64_t cas;            /* unique version, assigned when linked */
	uint32_t exptime;        /* absolute unix time, 0 = never */
	uint32_t stored_time;    /* unix time when linked or last touched */
	uint32_t flags;          /* opaque client flags */
	uint32_t nbytes;         /* value length, without the "\r\n" */
	uint32_t refcount;       /* atomic; the table's link counts as one */
	uint8_t nkey;            /* key length, 1..250 */
	uint8_t linked;          /* in the hash table and LRU (under stripe lock) */
	uint8_t active;          /* read since it last reached the LRU tail */
	/* Bits rather than bytes so the header stays 56 bytes (the memory
	 * account counts it).  All four are read and written only under the
	 * key's stripe lock. */
	uint8_t fetched : 1;     /* read or touched by a client since it was
	                          * created (memcached's ITEM_FETCHED, metadump's
	                          * fetch=) */
	uint8_t key_binary : 1;  /* stored by ms with a base64 (b) key: meta
	                          * replies print the key in base64 */
	uint8_t stale : 1;       /* invalidated (md I, ms C<older> I): mg says X */
	uint8_t win_sent : 1;    /* an mg was told W (it wins the recache):
	                          * later ones are told Z */
	char data[];             /* key, value, "\r\n" */
};

#define CACHE_KEY_MAX 250

static inline const char *
item_key(const struct item *it)
{
	return it->data;
}

static inline char *
item_value(struct item *it)
{
	return it->data + it->nkey;
}

/* Outcomes of cache operations; node/ maps each onto a protocol reply. */
enum cache_status {
	CACHE_STORED = 0,    /* stored, deleted, touched or counted */
	CACHE_NOT_STORED,    /* add on a live key, replace/append/prepend on a missing one */
	CACHE_EXISTS,        /* cas with a stale unique */
	CACHE_NOT_FOUND,     /* no live item under that key */
	CACHE_NON_NUMERIC,   /* incr/decr on a value that is not a decimal number */
	CACHE_NO_MEMORY,     /* nothing left to evict */
};

/* How cache_store() links a new item, as the protocol's storage commands. */
enum cache_store_mode {
	CACHE_SET,
	CACHE_ADD,
	CACHE_REPLACE,
	CACHE_APPEND,
	CACHE_PREPEND,
	CACHE_CAS,
};

struct cache_config {
	size_t mem_limit;          /* bytes of items before LRU eviction */
	size_t item_size_max;      /* largest item, counted as memcached does (-I) */
	unsigned hashpower;        /* initial table size is 2^hashpower buckets */
	bool use_cas;              /* false with -C: items count no CAS bytes */
};

/* Counters kept by the cache itself (the protocol layer counts commands). */
struct cache_stats {
	uint64_t curr_items;
	uint64_t total_items;      /* items ever linked */
	uint64_t bytes;            /* bytes of linked items */
	uint64_t mem_used;         /* bytes of all live allocations */
	uint64_t evictions;        /* live items evicted for memory */
	uint64_t reclaimed;        /* expired or flushed items removed */
	uint64_t hash_power;
	uint64_t hash_bytes;
	uint64_t oldest_item_age;  /* seconds since the LRU tail was linked */
};

struct cache;

/* A change to the cache's contents, as a physical after-image: what the
 * WAL records, the checkpoint folds and replicas apply.  Reads, lazy expiry
 * and the sweep of dead items are not changes: they follow from the data and
 * the clock. */
enum cache_change_type {
	CACHE_CHANGE_SET = 1,    /* key now holds this item (any storage command, incr/decr) */
	CACHE_CHANGE_DELETE = 2, /* key deleted */
	CACHE_CHANGE_TOUCH = 3,  /* key's exptime changed (touch, gat, gats) */
	CACHE_CHANGE_FLUSH = 4,  /* flush_all: now (items with cas below `cas` are
	                          * gone) or delayed to `exptime` */
	CACHE_CHANGE_EVICT = 5,  /* key evicted for memory */
};

/* An item's meta marks (struct item's key_binary, stale and win_sent) as
 * one byte: what a SET carries to the log, the checkpoint and replicas. */
#define CACHE_MARK_KEY_BINARY 0x01
#define CACHE_MARK_STALE      0x02
#define CACHE_MARK_WIN_SENT   0x04
#define CACHE_MARKS_ALL       0x07

struct cache_change {
	enum cache_change_type type;
	const char *key;       /* SET, DELETE, TOUCH, EVICT */
	size_t nkey;
	uint32_t flags;        /* SET */
	uint32_t exptime;      /* SET, TOUCH: absolute unix time, 0 = never;
	                        * FLUSH: the delayed time, 0 = now */
	uint64_t cas;          /* SET; FLUSH now: the first CAS that survives */
	const char *value;     /* SET: nbytes bytes (no "\r\n") */
	uint32_t nbytes;
	uint8_t marks;         /* SET: CACHE_MARK_* bits */
};

/* What one call changed, if anything.  For a keyed change, `item` holds a
 * reference to the item changed (SET: now linked; DELETE: just unlinked),
 * into which change.key and change.value point, so the caller may read the
 * after-image after the cache's locks are released; cache_effect_release()
 * drops it. */
struct cache_effect {
	bool changed;
	struct cache_change change;
	struct item *item;
};

void cache_effect_release(struct cache *c, struct cache_effect *eff);

/* Create an empty cache.  Returns NULL when out of memory.  Destroy with
 * cache_destroy(), after every item reference has been put. */
struct cache *cache_create(const struct cache_config *cfg);

/* Free the cache and every linked item.  NULL is a no-op. */
void cache_destroy(struct cache *c);

/* Bytes an item of this key and value size takes from the memory account. */
size_t cache_item_size(size_t nkey, size_t nbytes);

/* An item's size as memcached 1.6 counts it (ITEM_ntotal of an unchunked
 * item: its 48-byte header, the key's NUL, the "\r\n", 4 bytes of flags
 * when they are non-zero, 8 of CAS unless -C).  Dumps report it as size=. */
size_t cache_item_memcached_size(const struct cache *c, size_t nkey, size_t nbytes,
                                 uint32_t flags);

/* True when an item is over the -I limit.  The size is counted as memcached
 * 1.6 counts it (cache_item_memcached_size), so that the largest storable
 * value is byte for byte the same as memcached's. */
bool cache_item_too_large(const struct cache *c, size_t nkey, size_t nbytes,
                          uint32_t flags);

/* Allocate an unlinked item whose value the caller then fills in
 * (item_value(it), nbytes bytes; the "\r\n" after it is written here).
 * Evicts from the LRU tail until the new item fits under the memory limit
 * (threads allocating at the same moment may overshoot it by one item each).
 * Returns the item with one reference owned by the caller, or NULL when the
 * limit cannot be met or malloc fails. */
struct item *cache_item_create(struct cache *c, const char *key, size_t nkey,
                               uint32_t flags, uint32_t exptime, uint32_t nbytes);

/* cache_item_create() that never evicts: NULL when the item does not fit
 * under the memory limit as it is (a warm-up loads only into free memory;
 * evicting what clients wrote since the restart to make room for older
 * items would be a loss). */
struct item *cache_item_create_unevicting(struct cache *c, const char *key, size_t nkey,
                                          uint32_t flags, uint32_t exptime, uint32_t nbytes);

/* Give an item not linked yet (a checkpoint's, a replayed SET's) the
 * marks it was logged with (CACHE_MARK_* bits). */
void cache_item_set_marks(struct item *it, uint8_t marks);

/* Drop a reference; the last one frees the item.  NULL is a no-op. */
void cache_item_put(struct cache *c, struct item *it);

/* Link `it` (from cache_item_create) under its key according to `mode`.
 * For CACHE_CAS, `cas` is the unique the client read.  For APPEND/PREPEND a
 * new combined item is built, keeping the old item's flags and exptime.
 * On CACHE_STORED, *cas_out (if not NULL) receives the new unique and *eff
 * (if not NULL) the SET of what is now linked.
 * The caller keeps its reference to `it` and must still put it.
 * In every call below, `eff` may be NULL; when not, it is filled in
 * (eff->changed false if nothing changed) and must be released. */
enum cache_status cache_store(struct cache *c, struct item *it,
                              enum cache_store_mode mode, uint64_t cas,
                              uint64_t *cas_out, struct cache_effect *eff);

/******** The meta protocol (mg, ms, md, ma, me: node/proto_meta.h) ********/

/* cache_store() with ms's extras.  `compare`: the store is conditional on
 * the item's CAS being `cas` (CACHE_CAS is always; APPEND and PREPEND are
 * when set, EXISTS otherwise; SET, ADD and REPLACE ignore it).  For
 * CACHE_CAS, `invalidate` turns a `cas` *lower* than the item's from
 * EXISTS into a stale store: the new item is marked stale and keeps the old
 * one's win_sent.  `key_binary` marks the new item (APPEND/PREPEND keep the
 * old item's mark). */
struct cache_store_opts {
	bool compare;
	uint64_t cas;
	bool invalidate;
	bool key_binary;
	uint64_t new_cas;        /* ms E: the stored item's CAS (0: the next) */
	bool vivify;             /* ms N: APPEND/PREPEND on a miss store the
	                          * data as a new item, expiring at... */
	uint32_t vivify_exptime;
	uint32_t *nbytes_out;    /* ms s: the stored item's size, if not NULL */
};
enum cache_status cache_store_opts(struct cache *c, struct item *it,
                                   enum cache_store_mode mode,
                                   const struct cache_store_opts *o,
                                   uint64_t *cas_out, struct cache_effect *eff);

/* What a meta read does besides the lookup. */
struct cache_meta_read {
	bool bump;               /* a client's read: mark it fetched and active
	                          * (not for mg u, nor me) */
	bool touch;              /* on a hit, set exptime (mg T, ma T) */
	uint32_t exptime;
	bool vivify;             /* on a miss, link an empty item with flags 0
	                          * and vivify_exptime (mg N) */
	uint32_t vivify_exptime;
	uint64_t new_cas;        /* mg E: the vivified item's CAS (0: the next) */
};

/* What the read found, copied under the stripe lock, as it was *before*
 * this read changed anything. */
struct cache_meta_view {
	uint64_t cas;
	uint32_t exptime;        /* before a touch */
	uint32_t stored_time;
	bool fetched;
	bool key_binary;
	bool stale;
	bool win_sent;
	bool created;            /* vivified by this call */
};

/* Look up a live item for a meta command.  Returns it with a reference, or
 * NULL; fills *view for a returned item.  A touch is described in *eff as a
 * TOUCH, a vivified item as a SET. */
struct item *cache_meta_get(struct cache *c, const char *key, size_t nkey,
                            const struct cache_meta_read *rd,
                            struct cache_meta_view *view, struct cache_effect *eff);

/* Mark `it` win_sent; true when this call did (no other reader won
 * before).  A won claim on an item still linked is a change, described in
 * *eff as the SET of the item with its new marks: a replica or a restarted
 * node must not hand the same win out again. */
bool cache_meta_claim_win(struct cache *c, struct item *it, struct cache_effect *eff);

/* md.  With `compare`, EXISTS unless the item's CAS is `cas`.  Without
 * `invalidate` the item is deleted (DELETE); with it the item stays, is
 * marked stale, loses win_sent and takes a new CAS, and with `touch` a new
 * exptime (a SET of the same value).  Else with `remove_value` (md x) the
 * item is replaced by an empty one with `client_flags`, the same exptime
 * and a new CAS (a SET).  `new_cas` (md E): that new CAS, 0 for the next.
 * CACHE_STORED, CACHE_NOT_FOUND, CACHE_EXISTS or CACHE_NO_MEMORY. */
struct cache_meta_delete {
	bool compare;
	uint64_t cas;
	bool invalidate;
	bool touch;
	uint32_t exptime;
	bool remove_value;
	uint32_t client_flags;
	uint64_t new_cas;
};
enum cache_status cache_meta_delete(struct cache *c, const char *key, size_t nkey,
                                    const struct cache_meta_delete *d,
                                    struct cache_effect *eff);

/* incr/decr with ma's extras: `compare` as md's (checked on a hit only),
 * `touch`.  On CACHE_STORED *r holds the new value and CAS. */
struct cache_arith {
	bool incr;
	uint64_t delta;
	bool compare;
	uint64_t cas;
	bool touch;              /* on success also set exptime (ma T), in the
	                          * same logged SET */
	uint32_t exptime;
	uint64_t new_cas;        /* ma E: the result's CAS (0: the next) */
};
struct cache_arith_result {
	uint64_t value;
	uint64_t cas;
	uint32_t old_exptime;    /* before a touch */
};
enum cache_status cache_arith(struct cache *c, const char *key, size_t nkey,
                              const struct cache_arith *a, struct cache_arith_result *r,
                              struct cache_effect *eff);

/* Look up a live item.  Returns it with a reference the caller must put, or
 * NULL (missing, expired or flushed; expired items are unlinked here).
 * Marks the item active so the LRU gives it a second chance. */
struct item *cache_get(struct cache *c, const char *key, size_t nkey);

/* cache_get() that also sets a new absolute exptime (gat/gats/touch). */
struct item *cache_get_and_touch(struct cache *c, const char *key, size_t nkey,
                                 uint32_t exptime, struct cache_effect *eff);

/* Unlink a live item.  CACHE_STORED when deleted, CACHE_NOT_FOUND otherwise. */
enum cache_status cache_delete(struct cache *c, const char *key, size_t nkey,
                               struct cache_effect *eff);

/* Unlink the item if it exists, live or not (memcached drops the old value
 * when a set fails for size). */
void cache_discard(struct cache *c, const char *key, size_t nkey,
                   struct cache_effect *eff);

/* True if an item, live or dead, is linked under the key. */
bool cache_contains(struct cache *c, const char *key, size_t nkey);

/* incr (incr=true) or decr a decimal value by delta.  incr wraps at 2^64,
 * decr stops at 0.  On CACHE_STORED, *result holds the new value.  May also
 * return CACHE_NOT_FOUND, CACHE_NON_NUMERIC or CACHE_NO_MEMORY. */
enum cache_status cache_incr(struct cache *c, const char *key, size_t nkey,
                             bool incr, uint64_t delta, uint64_t *result,
                             struct cache_effect *eff);

/* Invalidate items as memcached's flush_all does: when <= now flushes
 * everything linked so far (by CAS, so items stored later in the same second
 * survive); a future `when` takes effect at when - 1 (memcached stores
 * oldest_live = when - 1) for every item stored up to then.  Invalid items
 * are removed lazily and by cache_sweep(). */
void cache_flush(struct cache *c, uint32_t when, struct cache_effect *eff);

/* Unlink every item now and forget CAS and flush state, as a new cache.
 * Not a change (never logged): for replacing the whole contents (a replica's
 * full resync, rolling back to a fork point). */
void cache_clear(struct cache *c);

/* Carry out a delayed flush_all whose time has come, as an immediate flush
 * (so that it is logged as one).  Called once a second.  Returns true if it
 * did. */
bool cache_run_due_flush(struct cache *c, struct cache_effect *eff);

/* True if a delayed flush_all has come due (no lock taken). */
bool cache_flush_due(struct cache *c);

/* Visit `budget` hash buckets, continuing from where the last call stopped,
 * and remove the dead (expired or flushed) items in them.  Returns how many
 * were removed.  Called by a background thread so that memory is reclaimed
 * without reads. */
size_t cache_sweep(struct cache *c, size_t budget);

/* The eviction journal: when on, every live item evicted for memory leaves
 * its key here (evictions happen inside cache_item_create(), deep under the
 * LRU lock, where nothing may be logged); the store drains it after each
 * change and logs an EVICT for each key still absent.  Off (the default)
 * evictions are forgotten.  cache_drain_evictions() calls fn (if not NULL)
 * for each key and returns how many there were. */
typedef void cache_evicted_fn(void *arg, const char *key, size_t nkey);
void cache_journal_evictions(struct cache *c, bool on);
size_t cache_drain_evictions(struct cache *c, cache_evicted_fn *fn, void *arg);

/* Apply a change that was made elsewhere (WAL replay, checkpoint load, a
 * primary's stream), keeping its CAS and a SET's marks.  SET returns CACHE_NO_MEMORY if the
 * item cannot be allocated, DELETE/TOUCH/EVICT of a missing key
 * CACHE_NOT_FOUND, everything else CACHE_STORED. */
enum cache_status cache_apply(struct cache *c, const struct cache_change *change);

/******** Walking: every live item, for dumps (node/proto_dump.h) ********/

/* What cache_walk() copies out of one live item while it holds the item's
 * stripe lock.  The copy is all the callback sees: it runs with no lock
 * held, so the item itself may have changed or gone by then. */
struct cache_walk_item {
	uint64_t cas;
	uint32_t exptime;          /* absolute unix time, 0 = never */
	uint32_t stored_time;      /* unix time when linked (stored); reads
	                            * and touches do not move it */
	uint32_t flags;
	uint32_t nbytes;           /* value length, without the "\r\n" */
	bool fetched;              /* struct item's `fetched` */
	uint8_t nkey;
	char key[CACHE_KEY_MAX + 1];  /* NUL-terminated for the caller's ease */
};

/* Called once per item; return false to stop the walk at this item (it
 * counts as not taken: see cache_walk). */
typedef bool cache_walk_fn(void *arg, const struct cache_walk_item *item);

/* Visit the live (unexpired, unflushed) items, hash bucket by hash bucket,
 * starting at *cursor (0 for a new walk), and hand each to fn.
 *
 * Locking: each bucket is read holding only its stripe lock, and what fn
 * needs is copied into a small batch there; fn is called with no lock held
 * (it may write to a socket or an evbuffer, or call back into the cache).
 * A walk therefore never stops writers for more than one bucket.
 *
 * The order is the table's, in reversed-bit bucket order (as Redis's SCAN):
 * the table may grow during a walk, and with that order every item linked
 * for the whole walk is visited exactly once, before and after growth.
 * Items linked or unlinked while the walk runs may or may not be seen; a
 * key is never seen twice in one walk.  Items a warm-up has not linked yet
 * (storage/warmup.h) are not in the table and are not visited.
 *
 * Bounds: stops after max_items items (0: no bound), never splitting a
 * bucket, so one call may hand over fewer; only a single bucket holding
 * more than max_items items (far beyond the table's fill) makes a call that
 * has handed nothing yet exceed it, so that every call makes progress.
 * *cursor is then where the next call goes on; it is 0 once the walk has
 * visited every bucket.  When fn returns false, the walk stops and *cursor
 * is left at that item's bucket, so a walk resumed from it hands fn that
 * bucket's items again, the refused one included.
 *
 * Returns the number of items fn took (returned true for).  Out of memory
 * for its batch, a call stops early, *cursor at the first bucket it could
 * not copy (a call that cannot allocate at all hands over nothing). */
size_t cache_walk(struct cache *c, uint64_t *cursor, size_t max_items,
                  cache_walk_fn *fn, void *arg);

/******** Loading: a warm-up brings a checkpoint's items in (storage/warmup.h) ********/

/* Grow the hash table at once to hold `nitems` without growing again (one
 * rehash of what is linked now, under every stripe: call it before the
 * cache is busy).  Without memory for the table, growth stays incremental. */
void cache_reserve(struct cache *c, uint64_t nitems);

/* Every CAS unique handed out from now on is above `cas` (the highest of a
 * checkpoint whose items are loaded later, keeping theirs: a flush_all's
 * CAS threshold must be above all of them). */
void cache_raise_cas(struct cache *c, uint64_t cas);

/* Link `it` (from cache_item_create*, keeping its CAS if
 * set) only if nothing, live or dead, is linked under its key and it would
 * not be dead at once (expired, below a flush_all's CAS threshold, or
 * stored before a delayed flush_all that has come due).  With may_exist
 * false the caller knows that no item is linked under the key, and the
 * lookup is skipped (asserted in debug builds): a warm-up's loader, whose
 * keys are unique and whose other writers are all noted (warmup.c).
 * CACHE_STORED or CACHE_NOT_STORED; the caller keeps its reference. */
enum cache_status cache_link_loaded(struct cache *c, struct item *it, bool may_exist);

/* A hint: the key's hash bucket will be needed soon (a loader issues it for
 * a batch of keys before linking them, so that their cache misses overlap). */
void cache_prefetch(struct cache *c, const char *key, size_t nkey);

/* Fill *out with the current counters. */
void cache_get_stats(struct cache *c, struct cache_stats *out);

/* Zero the resettable counters (stats reset). */
void cache_reset_stats(struct cache *c);

/* The current time as the cache sees it (unix seconds).  Tests may move it. */
uint32_t cache_now(void);
void cache_set_time_offset(int64_t seconds);

#endif
