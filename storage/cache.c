/* Item cache: hash table with striped locks, refcounted items, one LRU list
 * with second-chance eviction, memory accounting, TTL and flush_all.
 *
 * Why second chance instead of bumping on every read: moving an item to the
 * LRU head needs the LRU lock, and taking it on every get would make every
 * worker thread contend for it.  memcached throttles bumps (at most one a
 * minute per item) and its segmented LRU moves items read while COLD back to
 * WARM.  We keep the same effect with less machinery: a read only sets the
 * item's `active` byte (no lock); when eviction finds an active item at the
 * tail it clears the byte and moves the item to the head instead of evicting
 * it.  Items read since they were last near the tail survive; items never read
 * again are evicted in insertion order.
 */
#include "storage/cache.h"

#include <assert.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <xxhash.h>

#define STRIPE_COUNT 1024            /* power of two; <= 2^HASHPOWER_MIN */
#define HASHPOWER_MIN 10
#define HASHPOWER_MAX 32
#define EVICT_TRIES 64               /* tail items examined per eviction */
#define MEMCACHED_ITEM_HEADER 48     /* sizeof(item) in memcached 1.6, 64-bit */

struct cache {
	pthread_mutex_t stripes[STRIPE_COUNT];
	struct item **buckets;           /* 2^hashpower chains, under stripe locks */
	unsigned hashpower;              /* changes only with every stripe held */
	/* Incremental growth (memcached's assoc expansion): while `expanding`,
	 * old bucket b (of 2^(hashpower-1)) is still in old_buckets if
	 * b >= expand_bucket, else it has moved to buckets.  Old bucket b and
	 * its two new buckets share one stripe (the stripe is the hash's low
	 * bits), so moving it under that stripe is invisible to readers. */
	struct item **old_buckets;       /* changes only with every stripe held */
	bool expanding;                  /* atomic; written with every stripe held */
	uint64_t expand_bucket;          /* atomic; advanced under the bucket's stripe */
	pthread_mutex_t expand_lock;     /* one mover at a time; taken before a stripe */

	pthread_mutex_t lru_lock;        /* guards the list and its links */
	struct item *lru_head;
	struct item *lru_tail;

	size_t mem_limit;
	size_t item_size_max;
	bool use_cas;

	uint64_t next_cas;               /* atomic */
	uint64_t flush_cas;              /* atomic: items with cas below are dead */
	uint32_t flush_time;             /* atomic: delayed flush_all deadline */

	uint64_t sweep_bucket;           /* sweeper's position, sweeper thread only */

	bool journal_evictions;          /* atomic: keep evicted keys for the store */
	struct evicted_key *evicted;     /* atomic stack of evicted keys */

	/* Counters, updated with relaxed atomics. */
	uint64_t curr_items;
	uint64_t total_items;
	uint64_t bytes;
	uint64_t mem_used;
	uint64_t evictions;
	uint64_t reclaimed;
};

#define ATOMIC_ADD(p, v) __atomic_add_fetch((p), (v), __ATOMIC_RELAXED)
#define ATOMIC_SUB(p, v) __atomic_sub_fetch((p), (v), __ATOMIC_RELAXED)
#define ATOMIC_LOAD(p) __atomic_load_n((p), __ATOMIC_RELAXED)
#define ATOMIC_STORE(p, v) __atomic_store_n((p), (v), __ATOMIC_RELAXED)

/* *p = max(*p, v), atomically. */
static void
atomic_raise(uint64_t *p, uint64_t v)
{
	uint64_t seen = ATOMIC_LOAD(p);

	while (seen < v &&
	       !__atomic_compare_exchange_n(p, &seen, v, false, __ATOMIC_RELAXED, __ATOMIC_RELAXED))
		;
}

/******** TIME ********/

static int64_t time_offset;

uint32_t
cache_now(void)
{
	return (uint32_t)(time(NULL) + ATOMIC_LOAD(&time_offset));
}

void
cache_set_time_offset(int64_t seconds)
{
	ATOMIC_STORE(&time_offset, seconds);
}

/* A zeroed bucket array.  A big one is asked for in transparent huge
 * pages: its first touches (random, one per bucket page) would otherwise
 * cost a page fault every 512 buckets, which a warm-up's loader pays. */
static struct item **
buckets_alloc(uint64_t nbuckets)
{
	size_t size = nbuckets * sizeof(struct item *), huge = (size_t)2 << 20;
	void *p;

	if (size < huge)
		return calloc(nbuckets, sizeof(struct item *));
	p = aligned_alloc(huge, (size + huge - 1) & ~(huge - 1));
	if (p != NULL) {
		madvise(p, size, MADV_HUGEPAGE);  /* a hint: refused is fine */
		memset(p, 0, size);
	}
	return p;
}

/******** HASHING AND LOCKS ********/

static inline uint64_t
hash_key(const char *key, size_t nkey)
{
	return XXH3_64bits(key, nkey);
}

static inline pthread_mutex_t *
stripe_of(struct cache *c, uint64_t hv)
{
	return &c->stripes[hv & (STRIPE_COUNT - 1)];
}

static inline struct item **
bucket_of(struct cache *c, uint64_t hv)
{
	if (c->expanding) {
		uint64_t old = hv & ((UINT64_C(1) << (c->hashpower - 1)) - 1);

		if (old >= ATOMIC_LOAD(&c->expand_bucket))
			return &c->old_buckets[old];
	}
	return &c->buckets[hv & ((UINT64_C(1) << c->hashpower) - 1)];
}

static void
lock_all_stripes(struct cache *c)
{
	int s;

	for (s = 0; s < STRIPE_COUNT; s++)
		pthread_mutex_lock(&c->stripes[s]);
}

static void
unlock_all_stripes(struct cache *c)
{
	int s;

	for (s = STRIPE_COUNT - 1; s >= 0; s--)
		pthread_mutex_unlock(&c->stripes[s]);
}

/******** ITEM LIFETIME ********/

size_t
cache_item_size(size_t nkey, size_t nbytes)
{
	return sizeof(struct item) + nkey + nbytes + 2;
}

size_t
cache_item_memcached_size(const struct cache *c, size_t nkey, size_t nbytes,
                          uint32_t flags)
{
	size_t total = MEMCACHED_ITEM_HEADER + nkey + 1 + nbytes + 2;

	if (flags != 0)
		total += sizeof(uint32_t);
	if (c->use_cas)
		total += sizeof(uint64_t);
	return total;
}

bool
cache_item_too_large(const struct cache *c, size_t nkey, size_t nbytes,
                     uint32_t flags)
{
	return cache_item_memcached_size(c, nkey, nbytes, flags) > c->item_size_max;
}

static void
item_free(struct cache *c, struct item *it)
{
	ATOMIC_SUB(&c->mem_used, cache_item_size(it->nkey, it->nbytes));
	free(it);
}

/* An item's marks as CACHE_MARK_* bits (stripe lock held, or the item not
 * linked yet). */
static uint8_t
item_marks(const struct item *it)
{
	return (uint8_t)((it->key_binary ? CACHE_MARK_KEY_BINARY : 0) |
	                 (it->stale ? CACHE_MARK_STALE : 0) |
	                 (it->win_sent ? CACHE_MARK_WIN_SENT : 0));
}

void
cache_item_set_marks(struct item *it, uint8_t marks)
{
	assert((marks & ~CACHE_MARKS_ALL) == 0);
	it->key_binary = (marks & CACHE_MARK_KEY_BINARY) != 0;
	it->stale = (marks & CACHE_MARK_STALE) != 0;
	it->win_sent = (marks & CACHE_MARK_WIN_SENT) != 0;
}

void
cache_item_put(struct cache *c, struct item *it)
{
	uint32_t left;

	if (it == NULL)
		return;
	left = __atomic_sub_fetch(&it->refcount, 1, __ATOMIC_ACQ_REL);
	assert(left != UINT32_MAX);  /* put without a reference */
	if (left == 0) {
		assert(!it->linked);  /* the table's own reference is gone */
		item_free(c, it);
	}
}

static inline bool
item_is_dead(struct cache *c, const struct item *it, uint32_t now)
{
	/* exptime and cas are read atomically: touch and an in-place incr
	 * change them under the key's stripe lock, while the evictor reads them
	 * holding only the LRU lock. */
	uint32_t exptime = __atomic_load_n(&it->exptime, __ATOMIC_RELAXED), flush_time;

	if (exptime != 0 && exptime <= now)
		return true;
	if (__atomic_load_n(&it->cas, __ATOMIC_RELAXED) < ATOMIC_LOAD(&c->flush_cas))
		return true;
	flush_time = ATOMIC_LOAD(&c->flush_time);
	return flush_time != 0 && flush_time <= now && it->stored_time <= flush_time;
}

/******** EFFECTS AND THE EVICTION JOURNAL ********/

/* Start every changing call with "nothing changed" (eff may be NULL). */
static void
effect_clear(struct cache_effect *eff)
{
	if (eff != NULL)
		memset(eff, 0, sizeof(*eff));
}

/* Describe what a call changed to `it`'s key, for the caller to log (eff
 * may be NULL).  The after-image points into the item (its key, its value),
 * which the effect keeps a reference to, so the caller may read it after the
 * stripe lock is gone, even if the item is unlinked (DELETE) meanwhile. */
static void
effect_key(struct cache_effect *eff, enum cache_change_type type, struct item *it)
{
	if (eff == NULL)
		return;
	effect_clear(eff);
	eff->changed = true;
	eff->change.type = type;
	eff->change.key = item_key(it);
	eff->change.nkey = it->nkey;
	eff->change.exptime = it->exptime;
	__atomic_add_fetch(&it->refcount, 1, __ATOMIC_RELAXED);
	eff->item = it;
}

static void
effect_set(struct cache_effect *eff, struct item *it)
{
	if (eff == NULL)
		return;
	effect_key(eff, CACHE_CHANGE_SET, it);
	eff->change.flags = it->flags;
	eff->change.cas = it->cas;
	eff->change.value = it->data + it->nkey;
	eff->change.nbytes = it->nbytes;
	eff->change.marks = item_marks(it);
}

void
cache_effect_release(struct cache *c, struct cache_effect *eff)
{
	cache_item_put(c, eff->item);
	eff->item = NULL;
	eff->changed = false;
}

struct evicted_key {
	struct evicted_key *next;
	uint8_t nkey;
	char key[];
};

/* Remember that `it` was evicted (a lock-free push: the evictor holds the
 * LRU lock and a stripe lock, and must not wait for anything else). */
static void
journal_eviction(struct cache *c, const struct item *it)
{
	struct evicted_key *e;

	if (!__atomic_load_n(&c->journal_evictions, __ATOMIC_RELAXED))
		return;
	e = malloc(sizeof(*e) + it->nkey);
	if (e == NULL)
		return;  /* the log keeps the key: a restart evicts it again */
	e->nkey = it->nkey;
	memcpy(e->key, item_key(it), it->nkey);
	e->next = __atomic_load_n(&c->evicted, __ATOMIC_RELAXED);
	while (!__atomic_compare_exchange_n(&c->evicted, &e->next, e, true,
	                                    __ATOMIC_RELEASE, __ATOMIC_RELAXED))
		;
}

void
cache_journal_evictions(struct cache *c, bool on)
{
	__atomic_store_n(&c->journal_evictions, on, __ATOMIC_RELAXED);
}

size_t
cache_drain_evictions(struct cache *c, cache_evicted_fn *fn, void *arg)
{
	struct evicted_key *e = __atomic_exchange_n(&c->evicted, NULL, __ATOMIC_ACQUIRE), *next;
	size_t n = 0;

	for (; e != NULL; e = next, n++) {
		next = e->next;
		if (fn != NULL)
			fn(arg, e->key, e->nkey);
		free(e);
	}
	return n;
}


/******** LRU (caller holds lru_lock) ********/

static void
do_lru_push_head(struct cache *c, struct item *it)
{
	it->lru_prev = NULL;
	it->lru_next = c->lru_head;
	if (c->lru_head != NULL)
		c->lru_head->lru_prev = it;
	c->lru_head = it;
	if (c->lru_tail == NULL)
		c->lru_tail = it;
}

static void
do_lru_remove(struct cache *c, struct item *it)
{
	if (it->lru_prev != NULL)
		it->lru_prev->lru_next = it->lru_next;
	else
		c->lru_head = it->lru_next;
	if (it->lru_next != NULL)
		it->lru_next->lru_prev = it->lru_prev;
	else
		c->lru_tail = it->lru_prev;
	it->lru_prev = it->lru_next = NULL;
}

/******** HASH TABLE (caller holds the key's stripe lock) ********/

static struct item *
do_find(struct cache *c, const char *key, size_t nkey, uint64_t hv)
{
	struct item *it;

	for (it = *bucket_of(c, hv); it != NULL; it = it->hash_next) {
		if (it->nkey == nkey && memcmp(item_key(it), key, nkey) == 0)
			return it;
	}
	return NULL;
}

/* The CAS a change gives an item: the client's explicit one (meta E), or
 * the next unique.  An explicit one raises the counter as an applied
 * change's does (do_link), so that later uniques stay above it. */
static uint64_t
take_cas(struct cache *c, uint64_t explicit_cas)
{
	if (explicit_cas == 0)
		return ATOMIC_ADD(&c->next_cas, 1);
	atomic_raise(&c->next_cas, explicit_cas);
	return explicit_cas;
}

static void
do_link(struct cache *c, struct item *it, uint64_t hv)
{
	struct item **bucket = bucket_of(c, hv);

	if (it->cas == 0)
		it->cas = ATOMIC_ADD(&c->next_cas, 1);
	else
		atomic_raise(&c->next_cas, it->cas);  /* an applied change keeps its CAS; ours stay above */
	it->stored_time = cache_now();
	it->active = 0;
	it->linked = 1;
	__atomic_add_fetch(&it->refcount, 1, __ATOMIC_RELAXED);
	it->hash_next = *bucket;
	*bucket = it;

	pthread_mutex_lock(&c->lru_lock);
	do_lru_push_head(c, it);
	pthread_mutex_unlock(&c->lru_lock);

	ATOMIC_ADD(&c->curr_items, 1);
	ATOMIC_ADD(&c->total_items, 1);
	ATOMIC_ADD(&c->bytes, cache_item_size(it->nkey, it->nbytes));
}

/* Take `it` out of its bucket chain and update the counters; the caller then
 * takes it off the LRU and drops the table's reference. */
static void
do_hash_remove(struct cache *c, struct item *it, uint64_t hv)
{
	struct item **pp = bucket_of(c, hv);

	while (*pp != it)
		pp = &(*pp)->hash_next;
	*pp = it->hash_next;
	it->hash_next = NULL;
	it->linked = 0;
	ATOMIC_SUB(&c->curr_items, 1);
	ATOMIC_SUB(&c->bytes, cache_item_size(it->nkey, it->nbytes));
}

static void
do_unlink(struct cache *c, struct item *it, uint64_t hv)
{
	do_hash_remove(c, it, hv);
	pthread_mutex_lock(&c->lru_lock);
	do_lru_remove(c, it);
	pthread_mutex_unlock(&c->lru_lock);
	cache_item_put(c, it);
}

/* Replace linked `old` by unlinked `it` under the same key. */
static void
do_replace(struct cache *c, struct item *old, struct item *it, uint64_t hv)
{
	do_unlink(c, old, hv);
	do_link(c, it, hv);
}

/* Find a live item, unlinking it if it is dead. */
static struct item *
do_find_live(struct cache *c, const char *key, size_t nkey, uint64_t hv,
             uint32_t now)
{
	struct item *it = do_find(c, key, nkey, hv);

	if (it != NULL && item_is_dead(c, it, now)) {
		ATOMIC_ADD(&c->reclaimed, 1);
		do_unlink(c, it, hv);
		it = NULL;
	}
	return it;
}

bool
cache_contains(struct cache *c, const char *key, size_t nkey)
{
	uint64_t hv = hash_key(key, nkey);
	pthread_mutex_t *stripe = stripe_of(c, hv);
	bool found;

	pthread_mutex_lock(stripe);
	found = do_find(c, key, nkey, hv) != NULL;
	pthread_mutex_unlock(stripe);
	return found;
}

#define EXPAND_STEP 256   /* old buckets moved per change while growing */

/* Move old bucket b's items to their new buckets (caller holds b's stripe). */
static void
do_move_bucket(struct cache *c, uint64_t b)
{
	uint64_t mask = (UINT64_C(1) << c->hashpower) - 1;
	struct item *it = c->old_buckets[b], *next;

	for (; it != NULL; it = next) {
		struct item **slot = &c->buckets[hash_key(item_key(it), it->nkey) & mask];

		next = it->hash_next;
		it->hash_next = *slot;
		*slot = it;
	}
	c->old_buckets[b] = NULL;
	ATOMIC_STORE(&c->expand_bucket, b + 1);
}

/* Every old bucket has moved: drop the old table (a moment under every
 * stripe, with no rehashing). */
static void
end_expansion(struct cache *c)
{
	lock_all_stripes(c);
	if (c->expanding && ATOMIC_LOAD(&c->expand_bucket) == UINT64_C(1) << (c->hashpower - 1)) {
		free(c->old_buckets);
		c->old_buckets = NULL;
		__atomic_store_n(&c->expanding, false, __ATOMIC_RELEASE);
	}
	unlock_all_stripes(c);
}

/* Move up to `budget` old buckets (each under its own stripe).  Called with
 * no stripe held, after changes, so growth costs every writer a little and
 * no reader ever waits for a whole-table rehash. */
static void
expand_steps(struct cache *c, uint64_t budget)
{
	uint64_t old_size, b;
	bool done = false;

	if (!__atomic_load_n(&c->expanding, __ATOMIC_ACQUIRE) || pthread_mutex_trylock(&c->expand_lock) != 0)
		return;
	if (c->expanding) {
		old_size = UINT64_C(1) << (c->hashpower - 1);
		for (b = ATOMIC_LOAD(&c->expand_bucket); budget-- > 0 && b < old_size; b++) {
			pthread_mutex_lock(stripe_of(c, b));
			do_move_bucket(c, b);
			pthread_mutex_unlock(stripe_of(c, b));
		}
		done = b == old_size;
	}
	if (done)
		end_expansion(c);
	pthread_mutex_unlock(&c->expand_lock);
}

/* Start doubling the table once it holds 1.5 items per bucket: a new table
 * is allocated outside any lock, swapped in under every stripe, and the old
 * buckets then move over a few at a time (expand_steps). */
static void
maybe_grow(struct cache *c)
{
	uint64_t nbuckets = UINT64_C(1) << ATOMIC_LOAD(&c->hashpower);
	struct item **bigger;

	expand_steps(c, EXPAND_STEP);
	if (ATOMIC_LOAD(&c->curr_items) <= nbuckets + nbuckets / 2 ||
	    ATOMIC_LOAD(&c->hashpower) >= HASHPOWER_MAX ||
	    __atomic_load_n(&c->expanding, __ATOMIC_ACQUIRE))
		return;
	if (pthread_mutex_trylock(&c->expand_lock) != 0)
		return;
	bigger = buckets_alloc(nbuckets * 2);
	if (bigger != NULL) {
		lock_all_stripes(c);
		if (!c->expanding && (UINT64_C(1) << c->hashpower) == nbuckets) {
			c->old_buckets = c->buckets;
			c->buckets = bigger;
			ATOMIC_STORE(&c->expand_bucket, 0);
			ATOMIC_STORE(&c->hashpower, c->hashpower + 1);
			__atomic_store_n(&c->expanding, true, __ATOMIC_RELEASE);
			bigger = NULL;
		}
		unlock_all_stripes(c);
		free(bigger);
	}
	pthread_mutex_unlock(&c->expand_lock);
}

/* Finish a growth in progress (caller holds every stripe and expand_lock). */
static void
do_finish_expansion(struct cache *c)
{
	uint64_t b, old_size;

	if (!c->expanding)
		return;
	old_size = UINT64_C(1) << (c->hashpower - 1);
	for (b = ATOMIC_LOAD(&c->expand_bucket); b < old_size; b++)
		do_move_bucket(c, b);
	free(c->old_buckets);
	c->old_buckets = NULL;
	__atomic_store_n(&c->expanding, false, __ATOMIC_RELEASE);
}

/******** EVICTION ********/

/* Free one item from the LRU tail: a dead one if found, else the least
 * recently used one that has not been read since it was last at the tail.
 * Returns false if nothing could be freed. */
static bool
evict_one(struct cache *c)
{
	uint32_t now = cache_now();
	struct item *it, *victim = NULL;
	uint64_t hv = 0;
	int tries;

	pthread_mutex_lock(&c->lru_lock);
	it = c->lru_tail;
	for (tries = 0; it != NULL && tries < EVICT_TRIES; tries++) {
		struct item *prev = it->lru_prev;
		bool dead = item_is_dead(c, it, now);

		if (!dead && __atomic_exchange_n(&it->active, 0, __ATOMIC_RELAXED)) {
			/* Second chance: read since it was last here. */
			do_lru_remove(c, it);
			do_lru_push_head(c, it);
			it = prev;
			continue;
		}
		hv = hash_key(item_key(it), it->nkey);
		/* Lock order is stripe then LRU: only try the stripe. */
		if (pthread_mutex_trylock(stripe_of(c, hv)) != 0) {
			it = prev;
			continue;
		}
		victim = it;
		if (dead) {
			ATOMIC_ADD(&c->reclaimed, 1);
		} else {
			ATOMIC_ADD(&c->evictions, 1);
		}
		do_lru_remove(c, victim);
		break;
	}
	pthread_mutex_unlock(&c->lru_lock);
	if (victim == NULL)
		return false;
	if (!item_is_dead(c, victim, now))
		journal_eviction(c, victim);
	do_hash_remove(c, victim, hv);
	pthread_mutex_unlock(stripe_of(c, hv));
	cache_item_put(c, victim);
	return true;
}

/* A fresh unlinked item with one reference (the caller's). */
static struct item *
item_init(struct item *it, const char *key, size_t nkey, uint32_t flags, uint32_t exptime,
          uint32_t nbytes)
{
	memset(it, 0, sizeof(*it));
	it->refcount = 1;
	it->nkey = (uint8_t)nkey;
	it->nbytes = nbytes;
	it->flags = flags;
	it->exptime = exptime;
	memcpy(it->data, key, nkey);
	memcpy(it->data + nkey + nbytes, "\r\n", 2);
	return it;
}

static struct item *
item_alloc(struct cache *c, const char *key, size_t nkey, uint32_t flags,
           uint32_t exptime, uint32_t nbytes, bool may_evict)
{
	size_t need = cache_item_size(nkey, nbytes);
	struct item *it;

	if (nkey == 0 || nkey > CACHE_KEY_MAX || need > c->mem_limit)
		return NULL;
	while (ATOMIC_LOAD(&c->mem_used) + need > c->mem_limit) {
		if (!may_evict || !evict_one(c))
			return NULL;
	}
	it = malloc(need);
	if (it == NULL)
		return NULL;
	ATOMIC_ADD(&c->mem_used, need);
	return item_init(it, key, nkey, flags, exptime, nbytes);
}

struct item *
cache_item_create(struct cache *c, const char *key, size_t nkey, uint32_t flags,
                  uint32_t exptime, uint32_t nbytes)
{
	return item_alloc(c, key, nkey, flags, exptime, nbytes, true);
}

struct item *
cache_item_create_unevicting(struct cache *c, const char *key, size_t nkey, uint32_t flags,
                             uint32_t exptime, uint32_t nbytes)
{
	return item_alloc(c, key, nkey, flags, exptime, nbytes, false);
}

/******** OPERATIONS ********/

/* Build old+new (append) or new+old (prepend) with old's flags and exptime. */
static struct item *
do_combine(struct cache *c, const struct item *old, struct item *it,
           bool append)
{
	const struct item *first = append ? old : it;
	const struct item *second = append ? it : old;
	size_t nbytes = (size_t)old->nbytes + it->nbytes;
	struct item *combined;

	if (nbytes > UINT32_MAX ||
	    cache_item_too_large(c, old->nkey, nbytes, old->flags))
		return NULL;
	combined = cache_item_create(c, item_key(old), old->nkey, old->flags,
	                             old->exptime, (uint32_t)nbytes);
	if (combined == NULL)
		return NULL;
	memcpy(item_value(combined), first->data + first->nkey, first->nbytes);
	memcpy(item_value(combined) + first->nbytes, second->data + second->nkey,
	       second->nbytes);
	return combined;
}

enum cache_status
cache_store(struct cache *c, struct item *it, enum cache_store_mode mode,
            uint64_t cas, uint64_t *cas_out, struct cache_effect *eff)
{
	struct cache_store_opts o = {.compare = mode == CACHE_CAS, .cas = cas};

	return cache_store_opts(c, it, mode, &o, cas_out, eff);
}

/* Does `old` fail a compare against `cas`?  With -C items have no unique,
 * so no compare can match (memcached). */
static bool
cas_mismatch(const struct cache *c, const struct item *old, uint64_t cas)
{
	return !c->use_cas || __atomic_load_n(&old->cas, __ATOMIC_RELAXED) != cas;
}

/* cache_store_opts(); with keep_marks, `it` comes with the marks it was
 * logged with (cache_apply) instead of taking them from the command. */
static enum cache_status
do_store(struct cache *c, struct item *it, enum cache_store_mode mode,
         const struct cache_store_opts *o, bool keep_marks, uint64_t *cas_out,
         struct cache_effect *eff)
{
	uint64_t hv = hash_key(item_key(it), it->nkey);
	pthread_mutex_t *stripe = stripe_of(c, hv);
	enum cache_status status = CACHE_STORED;
	struct item *old, *linked = it;
	bool stale = false;

	effect_clear(eff);
	pthread_mutex_lock(stripe);
	old = do_find_live(c, item_key(it), it->nkey, hv, cache_now());
	switch (mode) {
	case CACHE_SET:
		break;
	case CACHE_ADD:
		if (old != NULL) {
			/* memcached refreshes an item that add found. */
			__atomic_store_n(&old->active, 1, __ATOMIC_RELAXED);
			status = CACHE_NOT_STORED;
		}
		break;
	case CACHE_REPLACE:
		if (old == NULL)
			status = CACHE_NOT_STORED;
		break;
	case CACHE_CAS:
		if (old == NULL)
			status = CACHE_NOT_FOUND;
		else if (!cas_mismatch(c, old, o->cas))
			break;
		else if (o->invalidate && c->use_cas && o->cas < old->cas)
			stale = true;  /* an older writer's value, kept but marked */
		else
			status = CACHE_EXISTS;
		break;
	case CACHE_APPEND:
	case CACHE_PREPEND:
		if (old == NULL) {
			if (o->vivify)
				it->exptime = o->vivify_exptime;  /* stored as it is */
			else
				status = CACHE_NOT_STORED;
			break;
		}
		if (o->compare && cas_mismatch(c, old, o->cas)) {
			status = CACHE_EXISTS;
			break;
		}
		linked = do_combine(c, old, it, mode == CACHE_APPEND);
		if (linked == NULL)
			status = CACHE_NOT_STORED;
		else
			linked->key_binary = old->key_binary;
		break;
	}
	if (status == CACHE_STORED && !keep_marks) {
		if (linked == it)
			linked->key_binary = o->key_binary;
		linked->stale = stale;
		/* A stale store keeps the old item's win: one W per invalidation. */
		linked->win_sent = stale && old->win_sent;
	}
	if (status == CACHE_STORED) {
		if (o->new_cas != 0)
			linked->cas = o->new_cas;  /* do_link keeps it */
		if (o->nbytes_out != NULL)
			*o->nbytes_out = linked->nbytes;
		if (old != NULL)
			do_replace(c, old, linked, hv);
		else
			do_link(c, linked, hv);
		if (cas_out != NULL)
			*cas_out = linked->cas;
		effect_set(eff, linked);
	}
	pthread_mutex_unlock(stripe);
	if (linked != it)
		cache_item_put(c, linked);
	if (status == CACHE_STORED)
		maybe_grow(c);
	return status;
}

enum cache_status
cache_store_opts(struct cache *c, struct item *it, enum cache_store_mode mode,
                 const struct cache_store_opts *o, uint64_t *cas_out,
                 struct cache_effect *eff)
{
	return do_store(c, it, mode, o, false, cas_out, eff);
}

struct item *
cache_meta_get(struct cache *c, const char *key, size_t nkey,
               const struct cache_meta_read *rd, struct cache_meta_view *view,
               struct cache_effect *eff)
{
	uint64_t hv = hash_key(key, nkey);
	pthread_mutex_t *stripe = stripe_of(c, hv);
	struct item *it;
	bool created = false;

	effect_clear(eff);
	pthread_mutex_lock(stripe);
	it = do_find_live(c, key, nkey, hv, cache_now());
	if (it == NULL && rd->vivify) {
		/* Allocating under the stripe lock is safe: eviction only tries
		 * stripe locks (as do_combine does). */
		it = cache_item_create(c, key, nkey, 0, rd->vivify_exptime, 0);
		if (it != NULL) {
			it->cas = rd->new_cas;  /* 0: do_link takes the next */
			do_link(c, it, hv);
			effect_set(eff, it);
			created = true;
		}
	} else if (it != NULL) {
		__atomic_add_fetch(&it->refcount, 1, __ATOMIC_RELAXED);
	}
	if (it != NULL) {
		view->cas = __atomic_load_n(&it->cas, __ATOMIC_RELAXED);
		view->exptime = __atomic_load_n(&it->exptime, __ATOMIC_RELAXED);
		view->stored_time = it->stored_time;
		view->fetched = it->fetched;
		view->key_binary = it->key_binary;
		view->stale = it->stale;
		view->win_sent = it->win_sent;
		view->created = created;
		if (rd->bump) {
			__atomic_store_n(&it->active, 1, __ATOMIC_RELAXED);
			it->fetched = 1;
		}
		if (rd->touch && !created) {
			__atomic_store_n(&it->exptime, rd->exptime, __ATOMIC_RELAXED);
			effect_key(eff, CACHE_CHANGE_TOUCH, it);
		}
	}
	pthread_mutex_unlock(stripe);
	if (created)
		maybe_grow(c);
	return it;
}

bool
cache_meta_claim_win(struct cache *c, struct item *it, struct cache_effect *eff)
{
	pthread_mutex_t *stripe = stripe_of(c, hash_key(item_key(it), it->nkey));
	bool won;

	effect_clear(eff);
	pthread_mutex_lock(stripe);
	won = !it->win_sent;
	it->win_sent = 1;
	/* An item replaced or deleted meanwhile is no longer the key's: its
	 * SET would bring it back. */
	if (won && it->linked)
		effect_set(eff, it);
	pthread_mutex_unlock(stripe);
	return won;
}

enum cache_status
cache_meta_delete(struct cache *c, const char *key, size_t nkey,
                  const struct cache_meta_delete *d, struct cache_effect *eff)
{
	uint64_t hv = hash_key(key, nkey);
	pthread_mutex_t *stripe = stripe_of(c, hv);
	enum cache_status status = CACHE_STORED;
	struct item *it;

	effect_clear(eff);
	pthread_mutex_lock(stripe);
	it = do_find_live(c, key, nkey, hv, cache_now());
	if (it == NULL) {
		status = CACHE_NOT_FOUND;
	} else if (d->compare && cas_mismatch(c, it, d->cas)) {
		status = CACHE_EXISTS;
	} else if (d->invalidate) {
		/* The item stays (readers are served the old value, told X) under
		 * a new CAS, so that the writer that invalidated can tell its own
		 * refill from an older one (ms C<old> I is stored stale). */
		__atomic_store_n(&it->cas, take_cas(c, d->new_cas), __ATOMIC_RELAXED);
		if (d->touch)
			__atomic_store_n(&it->exptime, d->exptime, __ATOMIC_RELAXED);
		it->stale = 1;
		it->win_sent = 0;
		effect_set(eff, it);
	} else if (d->remove_value) {
		/* Allocating under the stripe lock is safe (cache_meta_get). */
		struct item *empty = cache_item_create(c, key, nkey, d->client_flags,
		                                       __atomic_load_n(&it->exptime, __ATOMIC_RELAXED),
		                                       0);

		if (empty == NULL) {
			status = CACHE_NO_MEMORY;
		} else {
			empty->key_binary = it->key_binary;
			empty->cas = d->new_cas;  /* 0: do_link takes the next */
			do_replace(c, it, empty, hv);
			effect_set(eff, empty);
			cache_item_put(c, empty);
		}
	} else {
		effect_key(eff, CACHE_CHANGE_DELETE, it);
		do_unlink(c, it, hv);
	}
	pthread_mutex_unlock(stripe);
	return status;
}

/* A lookup for a client (`fetch`: the item is marked fetched, as memcached
 * marks what get/gets/gat/touch find) or for a change applied from
 * elsewhere (a replayed or replicated touch is no client's read). */
static struct item *
get_common(struct cache *c, const char *key, size_t nkey, bool touch,
           uint32_t exptime, struct cache_effect *eff, bool fetch)
{
	uint64_t hv = hash_key(key, nkey);
	pthread_mutex_t *stripe = stripe_of(c, hv);
	struct item *it;

	effect_clear(eff);
	pthread_mutex_lock(stripe);
	it = do_find_live(c, key, nkey, hv, cache_now());
	if (it != NULL) {
		__atomic_add_fetch(&it->refcount, 1, __ATOMIC_RELAXED);
		__atomic_store_n(&it->active, 1, __ATOMIC_RELAXED);
		if (fetch)
			it->fetched = 1;  /* only ever read under this stripe */
		if (touch) {
			__atomic_store_n(&it->exptime, exptime, __ATOMIC_RELAXED);
			effect_key(eff, CACHE_CHANGE_TOUCH, it);
		}
	}
	pthread_mutex_unlock(stripe);
	return it;
}

struct item *
cache_get(struct cache *c, const char *key, size_t nkey)
{
	return get_common(c, key, nkey, false, 0, NULL, true);
}

struct item *
cache_get_and_touch(struct cache *c, const char *key, size_t nkey,
                    uint32_t exptime, struct cache_effect *eff)
{
	return get_common(c, key, nkey, true, exptime, eff, true);
}

enum cache_status
cache_delete(struct cache *c, const char *key, size_t nkey, struct cache_effect *eff)
{
	uint64_t hv = hash_key(key, nkey);
	pthread_mutex_t *stripe = stripe_of(c, hv);
	struct item *it;

	effect_clear(eff);
	pthread_mutex_lock(stripe);
	it = do_find_live(c, key, nkey, hv, cache_now());
	if (it != NULL) {
		effect_key(eff, CACHE_CHANGE_DELETE, it);
		do_unlink(c, it, hv);
	}
	pthread_mutex_unlock(stripe);
	return it != NULL ? CACHE_STORED : CACHE_NOT_FOUND;
}

void
cache_discard(struct cache *c, const char *key, size_t nkey, struct cache_effect *eff)
{
	uint64_t hv = hash_key(key, nkey);
	pthread_mutex_t *stripe = stripe_of(c, hv);
	struct item *it;

	effect_clear(eff);
	pthread_mutex_lock(stripe);
	it = do_find(c, key, nkey, hv);
	if (it != NULL) {
		effect_key(eff, CACHE_CHANGE_DELETE, it);
		do_unlink(c, it, hv);
	}
	pthread_mutex_unlock(stripe);
}

/* memcached's safe_strtoull on a value: optional leading blanks, digits, then
 * a blank or the end ("\r\n" counts as blanks). */
static bool
parse_counter(const struct item *it, uint64_t *out)
{
	const char *p = it->data + it->nkey;
	const char *end = p + it->nbytes;
	uint64_t v = 0;
	bool digits = false;

	while (p < end && (*p == ' ' || *p == '\t'))
		p++;
	for (; p < end && *p >= '0' && *p <= '9'; p++) {
		uint64_t d = (uint64_t)(*p - '0');

		if (v > (UINT64_MAX - d) / 10)
			return false;
		v = v * 10 + d;
		digits = true;
	}
	if (!digits || (p < end && *p != ' ' && *p != '\t' && *p != '\r' && *p != '\n'))
		return false;
	*out = v;
	return true;
}

enum cache_status
cache_incr(struct cache *c, const char *key, size_t nkey, bool incr,
           uint64_t delta, uint64_t *result, struct cache_effect *eff)
{
	struct cache_arith a = {.incr = incr, .delta = delta};
	struct cache_arith_result r;
	enum cache_status st = cache_arith(c, key, nkey, &a, &r, eff);

	if (st == CACHE_STORED)
		*result = r.value;
	return st;
}

enum cache_status
cache_arith(struct cache *c, const char *key, size_t nkey, const struct cache_arith *a,
            struct cache_arith_result *r, struct cache_effect *eff)
{
	uint64_t hv = hash_key(key, nkey);
	pthread_mutex_t *stripe = stripe_of(c, hv);
	enum cache_status status = CACHE_STORED;
	char digits[24];
	struct item *it, *fresh;
	uint64_t value;
	size_t len;

	effect_clear(eff);
	pthread_mutex_lock(stripe);
	it = do_find_live(c, key, nkey, hv, cache_now());
	if (it == NULL) {
		status = CACHE_NOT_FOUND;
		goto out_unlock;
	}
	if (a->compare && cas_mismatch(c, it, a->cas)) {
		status = CACHE_EXISTS;
		goto out_unlock;
	}
	if (it->nbytes == 0 || !parse_counter(it, &value)) {
		status = CACHE_NON_NUMERIC;
		goto out_unlock;
	}
	if (a->incr)
		value += a->delta;
	else
		value = a->delta > value ? 0 : value - a->delta;
	len = (size_t)snprintf(digits, sizeof(digits), "%llu", (unsigned long long)value);
	r->value = value;
	r->old_exptime = __atomic_load_n(&it->exptime, __ATOMIC_RELAXED);
	if (len <= it->nbytes && __atomic_load_n(&it->refcount, __ATOMIC_ACQUIRE) == 1) {
		/* Nobody else holds it and we hold its stripe: rewrite in place,
		 * padding with spaces as memcached does.  The item, and so its
		 * meta marks (stale, win_sent), stay. */
		memcpy(item_value(it), digits, len);
		memset(item_value(it) + len, ' ', it->nbytes - len);
		if (a->touch)
			__atomic_store_n(&it->exptime, a->exptime, __ATOMIC_RELAXED);
		r->cas = take_cas(c, a->new_cas);
		__atomic_store_n(&it->cas, r->cas, __ATOMIC_RELAXED);
		effect_set(eff, it);
		goto out_unlock;
	}
	fresh = cache_item_create(c, key, nkey, it->flags,
	                          a->touch ? a->exptime : r->old_exptime, (uint32_t)len);
	if (fresh == NULL) {
		status = CACHE_NO_MEMORY;
		goto out_unlock;
	}
	memcpy(item_value(fresh), digits, len);
	fresh->key_binary = it->key_binary;
	fresh->cas = a->new_cas;  /* 0: do_link takes the next */
	do_replace(c, it, fresh, hv);
	r->cas = fresh->cas;
	effect_set(eff, fresh);
	cache_item_put(c, fresh);
out_unlock:
	pthread_mutex_unlock(stripe);
	return status;
}

/* Everything linked so far becomes dead: items whose CAS is below
 * `threshold` (0: take the next CAS value, as memcached's flush uses one up).
 * No stripe lock is needed: readers compare CAS values with flush_cas.  The
 * store makes sure no writer is between taking its CAS and reaching the log
 * meanwhile, so that in the log FLUSH separates exactly the items it killed
 * from the ones it spared, and replaying it gives the same cut. */
static void
flush_now(struct cache *c, uint64_t threshold, struct cache_effect *eff)
{
	if (threshold == 0)
		threshold = ATOMIC_ADD(&c->next_cas, 1);
	else
		atomic_raise(&c->next_cas, threshold);
	atomic_raise(&c->flush_cas, threshold);
	ATOMIC_STORE(&c->flush_time, 0);
	if (eff != NULL) {
		effect_clear(eff);
		eff->changed = true;
		eff->change.type = CACHE_CHANGE_FLUSH;
		eff->change.cas = threshold;
	}
}

/* flush_all with a delay: logged now, so that a restart before `when` still
 * flushes; it takes effect lazily at when - 1 (memcached's oldest_live). */
static void
flush_later(struct cache *c, uint32_t when, struct cache_effect *eff)
{
	ATOMIC_STORE(&c->flush_time, when - 1);
	if (eff != NULL) {
		effect_clear(eff);
		eff->changed = true;
		eff->change.type = CACHE_CHANGE_FLUSH;
		eff->change.exptime = when;
	}
}

void
cache_flush(struct cache *c, uint32_t when, struct cache_effect *eff)
{
	effect_clear(eff);
	if (when <= cache_now())
		flush_now(c, 0, eff);
	else
		flush_later(c, when, eff);
}

void
cache_clear(struct cache *c)
{
	uint64_t b, nbuckets;

	pthread_mutex_lock(&c->expand_lock);
	lock_all_stripes(c);
	do_finish_expansion(c);
	nbuckets = UINT64_C(1) << c->hashpower;
	for (b = 0; b < nbuckets; b++) {
		while (c->buckets[b] != NULL)
			do_unlink(c, c->buckets[b], b);
	}
	ATOMIC_STORE(&c->next_cas, 0);
	ATOMIC_STORE(&c->flush_cas, 0);
	ATOMIC_STORE(&c->flush_time, 0);
	unlock_all_stripes(c);
	pthread_mutex_unlock(&c->expand_lock);
}

bool
cache_flush_due(struct cache *c)
{
	uint32_t flush_time = ATOMIC_LOAD(&c->flush_time);

	return flush_time != 0 && flush_time <= cache_now();
}

bool
cache_run_due_flush(struct cache *c, struct cache_effect *eff)
{
	uint32_t flush_time = ATOMIC_LOAD(&c->flush_time);

	effect_clear(eff);
	if (flush_time == 0 || flush_time > cache_now())
		return false;
	flush_now(c, 0, eff);
	return true;
}

enum cache_status
cache_apply(struct cache *c, const struct cache_change *ch)
{
	enum cache_status status = CACHE_STORED;
	struct item *it;

	switch (ch->type) {
	case CACHE_CHANGE_SET:
		it = cache_item_create(c, ch->key, ch->nkey, ch->flags, ch->exptime, ch->nbytes);
		if (it == NULL) {
			status = CACHE_NO_MEMORY;
			break;
		}
		if (ch->nbytes > 0)  /* an empty value may come as NULL (protobuf) */
			memcpy(item_value(it), ch->value, ch->nbytes);
		it->cas = ch->cas;
		cache_item_set_marks(it, ch->marks);
		status = do_store(c, it, CACHE_SET, &(struct cache_store_opts){0}, true, NULL, NULL);
		cache_item_put(c, it);
		break;
	case CACHE_CHANGE_DELETE:
	case CACHE_CHANGE_EVICT:
		status = cache_delete(c, ch->key, ch->nkey, NULL);
		break;
	case CACHE_CHANGE_TOUCH:
		it = get_common(c, ch->key, ch->nkey, true, ch->exptime, NULL, false);
		if (it == NULL)
			status = CACHE_NOT_FOUND;
		cache_item_put(c, it);
		break;
	case CACHE_CHANGE_FLUSH:
		if (ch->exptime != 0)
			flush_later(c, ch->exptime, NULL);
		else
			flush_now(c, ch->cas, NULL);
		break;
	}
	return status;
}

size_t
cache_sweep(struct cache *c, size_t budget)
{
	uint32_t now = cache_now();
	size_t removed = 0, visited;

	for (visited = 0; visited < budget; visited++) {
		uint64_t b = c->sweep_bucket++;
		pthread_mutex_t *stripe = stripe_of(c, b);
		struct item *it, *next;

		pthread_mutex_lock(stripe);
		/* The bucket index wraps with the current table size; while the
		 * table grows, bucket_of() finds the chain (old or new) that holds
		 * the keys hashing here. */
		b &= (UINT64_C(1) << c->hashpower) - 1;
		for (it = *bucket_of(c, b); it != NULL; it = next) {
			uint64_t hv = hash_key(item_key(it), it->nkey);

			next = it->hash_next;
			if (item_is_dead(c, it, now)) {
				ATOMIC_ADD(&c->reclaimed, 1);
				do_unlink(c, it, hv);
				removed++;
			}
		}
		pthread_mutex_unlock(stripe);
	}
	return removed;
}

/******** WALKING (dumps) ********/

#define WALK_BATCH 64   /* items copied per round of callbacks */

/* One copied item and the cursor of the bucket it came from. */
struct walk_entry {
	uint64_t bucket;
	struct cache_walk_item item;
};

static uint64_t
reverse_bits(uint64_t v)
{
	v = ((v >> 1) & UINT64_C(0x5555555555555555)) | ((v & UINT64_C(0x5555555555555555)) << 1);
	v = ((v >> 2) & UINT64_C(0x3333333333333333)) | ((v & UINT64_C(0x3333333333333333)) << 2);
	v = ((v >> 4) & UINT64_C(0x0f0f0f0f0f0f0f0f)) | ((v & UINT64_C(0x0f0f0f0f0f0f0f0f)) << 4);
	return __builtin_bswap64(v);
}

/* The bucket after `v` in reversed-bit order for a table of mask + 1
 * buckets; 0 once every bucket has been visited.  Counting on the reversed
 * bits means that the buckets visited so far are exactly those whose
 * reversed index is below the cursor's, which stays true when the table
 * doubles: a visited bucket's two halves are both below it. */
static uint64_t
walk_next(uint64_t v, uint64_t mask)
{
	v |= ~mask;
	return reverse_bits(reverse_bits(v) + 1);
}

/* Does `it` belong to logical bucket b of the current table?  While the
 * table grows, bucket_of() may give an old chain that also holds the keys
 * of b's sibling, which must wait for their own visit. */
static bool
walk_owns(struct cache *c, const struct item *it, uint64_t b, uint64_t mask)
{
	return !c->expanding || (hash_key(item_key(it), it->nkey) & mask) == b;
}

static void
walk_copy(struct walk_entry *e, uint64_t bucket, const struct item *it)
{
	struct cache_walk_item *w = &e->item;

	e->bucket = bucket;
	w->cas = __atomic_load_n(&it->cas, __ATOMIC_RELAXED);
	w->exptime = __atomic_load_n(&it->exptime, __ATOMIC_RELAXED);
	w->stored_time = it->stored_time;
	w->flags = it->flags;
	w->nbytes = it->nbytes;
	w->fetched = it->fetched != 0;
	w->nkey = it->nkey;
	memcpy(w->key, item_key(it), it->nkey);
	w->key[it->nkey] = '\0';
}

/* Hand batch[0 .. n) to fn (no lock held).  Returns the index of the item
 * fn refused, or n. */
static size_t
walk_deliver(struct walk_entry *batch, size_t n, cache_walk_fn *fn, void *arg)
{
	size_t i;

	for (i = 0; i < n; i++) {
		if (!fn(arg, &batch[i].item))
			break;
	}
	return i;
}

size_t
cache_walk(struct cache *c, uint64_t *cursor, size_t max_items,
           cache_walk_fn *fn, void *arg)
{
	size_t cap = WALK_BATCH, n = 0, taken = 0, i;
	struct walk_entry *batch = malloc(cap * sizeof(*batch));
	uint64_t v = *cursor;
	bool done = false;

	if (batch == NULL)
		return 0;
	while (!done && (max_items == 0 || taken + n < max_items)) {
		pthread_mutex_t *stripe = stripe_of(c, v);  /* v's low bits: any table size */
		uint32_t now = cache_now();
		uint64_t mask, b;
		struct item *it;
		size_t live = 0;

		pthread_mutex_lock(stripe);
		/* hashpower and the table change only with every stripe held. */
		mask = (UINT64_C(1) << c->hashpower) - 1;
		b = v & mask;
		for (it = *bucket_of(c, b); it != NULL; it = it->hash_next) {
			if (walk_owns(c, it, b, mask) && !item_is_dead(c, it, now))
				live++;
		}
		if (n + live > cap || (max_items != 0 && taken + n + live > max_items &&
		                       taken + n > 0)) {
			pthread_mutex_unlock(stripe);
			if (n == 0 && live > cap) {
				/* A chain longer than the batch: grow it and look again. */
				struct walk_entry *bigger = realloc(batch, live * sizeof(*batch));

				if (bigger == NULL)
					break;
				batch = bigger;
				cap = live;
				continue;
			}
			if (n == 0)
				break;  /* the bucket would exceed max_items */
			i = walk_deliver(batch, n, fn, arg);
			taken += i;
			if (i < n) {
				v = batch[i].bucket;
				goto out;
			}
			n = 0;
			continue;  /* the same bucket again, with room */
		}
		for (it = *bucket_of(c, b); it != NULL; it = it->hash_next) {
			if (walk_owns(c, it, b, mask) && !item_is_dead(c, it, now))
				walk_copy(&batch[n++], v, it);
		}
		v = walk_next(v, mask);
		pthread_mutex_unlock(stripe);
		done = v == 0;
	}
	i = walk_deliver(batch, n, fn, arg);
	taken += i;
	if (i < n)
		v = batch[i].bucket;
out:
	*cursor = v;
	free(batch);
	return taken;
}

/******** LOADING (a warm-up brings the checkpoint in) ********/

void
cache_reserve(struct cache *c, uint64_t nitems)
{
	unsigned power = ATOMIC_LOAD(&c->hashpower);
	struct item **bigger, **old;
	uint64_t b, old_size, mask;

	/* maybe_grow() doubles past 1.5 items per bucket: stay below that. */
	while (power < HASHPOWER_MAX &&
	       (UINT64_C(1) << power) + (UINT64_C(1) << power) / 2 < nitems)
		power++;
	pthread_mutex_lock(&c->expand_lock);
	if (power <= c->hashpower || (bigger = buckets_alloc(UINT64_C(1) << power)) == NULL) {
		/* Already big enough, or no memory: growth stays incremental. */
		pthread_mutex_unlock(&c->expand_lock);
		return;
	}
	lock_all_stripes(c);
	do_finish_expansion(c);
	old = c->buckets;
	old_size = UINT64_C(1) << c->hashpower;
	mask = (UINT64_C(1) << power) - 1;
	for (b = 0; b < old_size; b++) {
		struct item *it, *next;

		for (it = old[b]; it != NULL; it = next) {
			struct item **slot = &bigger[hash_key(item_key(it), it->nkey) & mask];

			next = it->hash_next;
			it->hash_next = *slot;
			*slot = it;
		}
	}
	c->buckets = bigger;
	ATOMIC_STORE(&c->hashpower, power);
	unlock_all_stripes(c);
	pthread_mutex_unlock(&c->expand_lock);
	free(old);
}

void
cache_raise_cas(struct cache *c, uint64_t cas)
{
	atomic_raise(&c->next_cas, cas);
}

enum cache_status
cache_link_loaded(struct cache *c, struct item *it, bool may_exist)
{
	uint64_t hv = hash_key(item_key(it), it->nkey);
	pthread_mutex_t *stripe = stripe_of(c, hv);
	enum cache_status status = CACHE_NOT_STORED;

	assert(!it->linked);
	pthread_mutex_lock(stripe);
	assert(may_exist || do_find(c, item_key(it), it->nkey, hv) == NULL);
	/* Unlinked, `it` has stored_time 0: a delayed flush_all that has come
	 * due kills it, as it killed everything stored before it. */
	if ((!may_exist || do_find(c, item_key(it), it->nkey, hv) == NULL) &&
	    !item_is_dead(c, it, cache_now())) {
		do_link(c, it, hv);
		status = CACHE_STORED;
	}
	pthread_mutex_unlock(stripe);
	if (status == CACHE_STORED)
		maybe_grow(c);
	return status;
}

/******** PREFETCH ********/

void
cache_prefetch(struct cache *c, const char *key, size_t nkey)
{
	uint64_t hv = hash_key(key, nkey);
	pthread_mutex_t *stripe = stripe_of(c, hv);

	/* The table may be growing: find the bucket under the stripe lock. */
	pthread_mutex_lock(stripe);
	__builtin_prefetch(bucket_of(c, hv));
	pthread_mutex_unlock(stripe);
}

/******** SETUP AND STATS ********/

struct cache *
cache_create(const struct cache_config *cfg)
{
	struct cache *c = calloc(1, sizeof(*c));
	int s;

	if (c == NULL)
		return NULL;
	c->hashpower = cfg->hashpower < HASHPOWER_MIN ? HASHPOWER_MIN : cfg->hashpower;
	if (c->hashpower > HASHPOWER_MAX)
		c->hashpower = HASHPOWER_MAX;
	c->buckets = buckets_alloc(UINT64_C(1) << c->hashpower);
	if (c->buckets == NULL) {
		free(c);
		return NULL;
	}
	for (s = 0; s < STRIPE_COUNT; s++)
		pthread_mutex_init(&c->stripes[s], NULL);
	pthread_mutex_init(&c->lru_lock, NULL);
	pthread_mutex_init(&c->expand_lock, NULL);
	c->mem_limit = cfg->mem_limit;
	c->item_size_max = cfg->item_size_max;
	c->use_cas = cfg->use_cas;
	return c;
}

void
cache_destroy(struct cache *c)
{
	struct item *it, *next;
	int s;

	if (c == NULL)
		return;
	for (it = c->lru_head; it != NULL; it = next) {
		next = it->lru_next;
		it->linked = 0;
		cache_item_put(c, it);
	}
	cache_drain_evictions(c, NULL, NULL);
	for (s = 0; s < STRIPE_COUNT; s++)
		pthread_mutex_destroy(&c->stripes[s]);
	pthread_mutex_destroy(&c->lru_lock);
	pthread_mutex_destroy(&c->expand_lock);
	free(c->old_buckets);
	free(c->buckets);
	free(c);
}

void
cache_get_stats(struct cache *c, struct cache_stats *out)
{
	uint32_t now = cache_now();

	out->curr_items = ATOMIC_LOAD(&c->curr_items);
	out->total_items = ATOMIC_LOAD(&c->total_items);
	out->bytes = ATOMIC_LOAD(&c->bytes);
	out->mem_used = ATOMIC_LOAD(&c->mem_used);
	out->evictions = ATOMIC_LOAD(&c->evictions);
	out->reclaimed = ATOMIC_LOAD(&c->reclaimed);
	out->hash_power = ATOMIC_LOAD(&c->hashpower);
	out->hash_bytes = (UINT64_C(1) << out->hash_power) * sizeof(struct item *);
	pthread_mutex_lock(&c->lru_lock);
	out->oldest_item_age = c->lru_tail != NULL && c->lru_tail->stored_time <= now
	                       ? now - c->lru_tail->stored_time : 0;
	pthread_mutex_unlock(&c->lru_lock);
}

void
cache_reset_stats(struct cache *c)
{
	ATOMIC_STORE(&c->total_items, 0);
	ATOMIC_STORE(&c->evictions, 0);
	ATOMIC_STORE(&c->reclaimed, 0);
}
