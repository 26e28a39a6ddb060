/* Store: memory, then the log, under one writer lock per key.  See store.h. */
#include "storage/store.h"

#include <assert.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <xxhash.h>

#include "storage/wal.h"
#include "storage/warmup.h"

#define WRITER_LOCKS 1024  /* power of two */

struct store {
	struct cache *cache;
	pthread_mutex_t writers[WRITER_LOCKS];
	/* Read under any one writer lock, written under all of them. */
	struct wal *log;
	bool follower;
	struct warmup *warmup;   /* atomic; see store_set_warmup() */
};

/* The highest LSN appended by this thread since store_take_thread_lsn(). */
static __thread uint64_t thread_lsn;

/******** WRITER LOCKS ********/

static pthread_mutex_t *
writer_lock(struct store *s, const char *key, size_t nkey)
{
	return &s->writers[XXH3_64bits(key, nkey) & (WRITER_LOCKS - 1)];
}

static void
lock_all_writers(struct store *s)
{
	for (int i = 0; i < WRITER_LOCKS; i++)
		pthread_mutex_lock(&s->writers[i]);
}

static void
unlock_all_writers(struct store *s)
{
	for (int i = WRITER_LOCKS - 1; i >= 0; i--)
		pthread_mutex_unlock(&s->writers[i]);
}

/******** WARM-UP ********/

static struct warmup *
loading_warmup(struct store *s)
{
	struct warmup *w = __atomic_load_n(&s->warmup, __ATOMIC_ACQUIRE);

	return w != NULL && warmup_loading(w) ? w : NULL;
}

/* Before a change to one key reaches memory (key's writer lock held):
 * while the checkpoint is still loading, the key's checkpoint version is
 * brought in first if the change depends on it, and the loader is told to
 * leave the key alone (warmup.h). */
static void
before_change(struct store *s, const char *key, size_t nkey, bool depends_on_old)
{
	struct warmup *w = loading_warmup(s);

	if (w != NULL)
		warmup_before_change(w, key, nkey, depends_on_old);
}

/* An immediate flush_all: nothing still in the checkpoint is live. */
static void
after_flush(struct store *s, const struct cache_effect *eff)
{
	struct warmup *w = loading_warmup(s);

	if (w != NULL && eff->changed && eff->change.exptime == 0)
		warmup_note_flush(w);
}

/******** LOGGING ********/

static void
note_lsn(uint64_t lsn)
{
	if (lsn > thread_lsn)
		thread_lsn = lsn;
}

/* Append what a cache call changed (caller holds the key's writer lock, or
 * all of them), and release the effect. */
static void
log_effect(struct store *s, struct cache_effect *eff)
{
	if (eff->changed && s->log != NULL) {
		uint64_t lsn = wal_append(s->log, &eff->change);

		/* Not queued: the reply must not claim the change is stored. */
		note_lsn(lsn != 0 ? lsn : UINT64_MAX);
	}
	cache_effect_release(s->cache, eff);
}

/* An evicted key: log EVICT unless the key was stored again meanwhile (that
 * SET is in the log after the evicted version, and wins). */
static void
log_eviction(void *arg, const char *key, size_t nkey)
{
	struct store *s = arg;
	pthread_mutex_t *lock = writer_lock(s, key, nkey);

	pthread_mutex_lock(lock);
	if (s->log != NULL && !s->follower && !cache_contains(s->cache, key, nkey)) {
		struct cache_change evict = {.type = CACHE_CHANGE_EVICT, .key = key, .nkey = nkey};

		before_change(s, key, nkey, false);
		wal_append(s->log, &evict);
	}
	pthread_mutex_unlock(lock);
}

/* After a change, with no writer lock held: log the evictions it caused. */
static void
log_evictions(struct store *s)
{
	cache_drain_evictions(s->cache, log_eviction, s);
}

/******** LIFECYCLE AND ROLES ********/

struct store *
store_create(struct cache *cache)
{
	struct store *s = calloc(1, sizeof(*s));

	if (s == NULL)
		return NULL;
	s->cache = cache;
	for (int i = 0; i < WRITER_LOCKS; i++)
		pthread_mutex_init(&s->writers[i], NULL);
	return s;
}

void
store_destroy(struct store *s)
{
	if (s == NULL)
		return;
	for (int i = 0; i < WRITER_LOCKS; i++)
		pthread_mutex_destroy(&s->writers[i]);
	free(s);
}

struct cache *
store_cache(struct store *s)
{
	return s->cache;
}

/* Evictions are journaled only where they are logged: a leader with a log. */
static void
update_journal(struct store *s)
{
	cache_journal_evictions(s->cache, s->log != NULL && !s->follower);
}

void
store_attach_log(struct store *s, struct wal *w)
{
	lock_all_writers(s);
	s->log = w;
	update_journal(s);
	unlock_all_writers(s);
	cache_drain_evictions(s->cache, NULL, NULL);
}

void
store_set_follower(struct store *s, bool follower)
{
	lock_all_writers(s);
	s->follower = follower;
	update_journal(s);
	unlock_all_writers(s);
}

/******** CHANGES ********/

enum cache_status
store_store(struct store *s, struct item *it, enum cache_store_mode mode, uint64_t cas,
            uint64_t *cas_out)
{
	struct cache_store_opts o = {.compare = mode == CACHE_CAS, .cas = cas};

	return store_store_opts(s, it, mode, &o, cas_out);
}

enum cache_status
store_store_opts(struct store *s, struct item *it, enum cache_store_mode mode,
                 const struct cache_store_opts *o, uint64_t *cas_out)
{
	pthread_mutex_t *lock = writer_lock(s, item_key(it), it->nkey);
	struct cache_effect eff;
	enum cache_status st;

	pthread_mutex_lock(lock);
	before_change(s, item_key(it), it->nkey, mode != CACHE_SET);
	st = cache_store_opts(s->cache, it, mode, o, cas_out, &eff);
	log_effect(s, &eff);
	pthread_mutex_unlock(lock);
	log_evictions(s);
	return st;
}

struct item *
store_get_and_touch(struct store *s, const char *key, size_t nkey, uint32_t exptime)
{
	pthread_mutex_t *lock = writer_lock(s, key, nkey);
	struct cache_effect eff;
	struct item *it;

	pthread_mutex_lock(lock);
	before_change(s, key, nkey, true);
	it = cache_get_and_touch(s->cache, key, nkey, exptime, &eff);
	log_effect(s, &eff);
	pthread_mutex_unlock(lock);
	return it;
}

enum cache_status
store_delete(struct store *s, const char *key, size_t nkey)
{
	pthread_mutex_t *lock = writer_lock(s, key, nkey);
	struct cache_effect eff;
	enum cache_status st;

	pthread_mutex_lock(lock);
	before_change(s, key, nkey, true);  /* the reply says whether it was there */
	st = cache_delete(s->cache, key, nkey, &eff);
	log_effect(s, &eff);
	pthread_mutex_unlock(lock);
	return st;
}

void
store_discard(struct store *s, const char *key, size_t nkey)
{
	pthread_mutex_t *lock = writer_lock(s, key, nkey);
	struct cache_effect eff;

	pthread_mutex_lock(lock);
	before_change(s, key, nkey, true);  /* its DELETE must reach the log */
	cache_discard(s->cache, key, nkey, &eff);
	log_effect(s, &eff);
	pthread_mutex_unlock(lock);
}

enum cache_status
store_incr(struct store *s, const char *key, size_t nkey, bool incr, uint64_t delta,
           uint64_t *result)
{
	struct cache_arith a = {.incr = incr, .delta = delta};
	struct cache_arith_result r;
	enum cache_status st = store_arith(s, key, nkey, &a, &r);

	if (st == CACHE_STORED)
		*result = r.value;
	return st;
}

enum cache_status
store_arith(struct store *s, const char *key, size_t nkey, const struct cache_arith *a,
            struct cache_arith_result *r)
{
	pthread_mutex_t *lock = writer_lock(s, key, nkey);
	struct cache_effect eff;
	enum cache_status st;

	pthread_mutex_lock(lock);
	before_change(s, key, nkey, true);
	st = cache_arith(s->cache, key, nkey, a, r, &eff);
	log_effect(s, &eff);
	pthread_mutex_unlock(lock);
	log_evictions(s);
	return st;
}

struct item *
store_meta_get(struct store *s, const char *key, size_t nkey,
               const struct cache_meta_read *rd, struct cache_meta_view *view)
{
	pthread_mutex_t *lock;
	struct cache_effect eff;
	struct item *it;
	struct warmup *w;

	if (!rd->touch && !rd->vivify) {
		/* A pure read takes no writer lock, as store_get().  An item the
		 * checkpoint still holds is brought in first, then looked up
		 * again for its meta view. */
		it = cache_meta_get(s->cache, key, nkey, rd, view, NULL);
		if (it == NULL && (w = loading_warmup(s)) != NULL &&
		    (it = warmup_read(w, key, nkey)) != NULL) {
			cache_item_put(s->cache, it);
			it = cache_meta_get(s->cache, key, nkey, rd, view, NULL);
		}
		return it;
	}
	lock = writer_lock(s, key, nkey);
	pthread_mutex_lock(lock);
	before_change(s, key, nkey, true);
	it = cache_meta_get(s->cache, key, nkey, rd, view, &eff);
	log_effect(s, &eff);
	pthread_mutex_unlock(lock);
	if (rd->vivify)
		log_evictions(s);
	return it;
}

bool
store_meta_claim_win(struct store *s, struct item *it)
{
	pthread_mutex_t *lock = writer_lock(s, item_key(it), it->nkey);
	struct cache_effect eff;
	bool won = false;

	pthread_mutex_lock(lock);
	/* A follower's marks are its primary's: a win it claimed could not be
	 * logged, and would be handed out again by the primary. */
	if (!s->follower) {
		before_change(s, item_key(it), it->nkey, true);
		won = cache_meta_claim_win(s->cache, it, &eff);
		log_effect(s, &eff);
	}
	pthread_mutex_unlock(lock);
	return won;
}

enum cache_status
store_meta_delete(struct store *s, const char *key, size_t nkey,
                  const struct cache_meta_delete *d)
{
	pthread_mutex_t *lock = writer_lock(s, key, nkey);
	struct cache_effect eff;
	enum cache_status st;

	pthread_mutex_lock(lock);
	before_change(s, key, nkey, true);
	st = cache_meta_delete(s->cache, key, nkey, d, &eff);
	log_effect(s, &eff);
	pthread_mutex_unlock(lock);
	if (d->remove_value)
		log_evictions(s);  /* md x allocates its emptied item */
	return st;
}

/* Every writer lock is held, so that no change is between taking its CAS
 * and reaching the log: FLUSH separates in the log exactly the items it
 * killed from those it spared.  Reads go on meanwhile. */
void
store_flush(struct store *s, uint32_t when)
{
	struct cache_effect eff;

	lock_all_writers(s);
	cache_flush(s->cache, when, &eff);
	after_flush(s, &eff);
	log_effect(s, &eff);
	unlock_all_writers(s);
}

void
store_run_due_flush(struct store *s)
{
	struct cache_effect eff;

	/* Called every second by the main thread (which also accepts
	 * connections): take the writer locks only when there is work, never
	 * to find out, since one may be held by a writer waiting for the disk. */
	if (!cache_flush_due(s->cache))
		return;
	lock_all_writers(s);
	if (cache_run_due_flush(s->cache, &eff)) {
		after_flush(s, &eff);
		log_effect(s, &eff);
	}
	unlock_all_writers(s);
}

int
store_apply_record(struct store *s, const struct wal_record *rec, bool more)
{
	const struct cache_change *ch = &rec->change;
	bool all = ch->type == CACHE_CHANGE_FLUSH;
	pthread_mutex_t *lock = all ? NULL : writer_lock(s, ch->key, ch->nkey);
	int rc = 0;

	if (all)
		lock_all_writers(s);
	else
		pthread_mutex_lock(lock);
	/* The log first, whatever memory holds: which LSNs exist never
	 * depends on what this node happened to keep in memory.  A leader
	 * (promoted meanwhile) takes no record of another primary. */
	if (!s->follower)
		rc = -EPERM;
	else if (s->log != NULL)
		rc = wal_append_record(s->log, rec, more);  /* -EILSEQ: a gap or a repeat */
	if (rc == 0) {
		note_lsn(rec->lsn);
		store_replay_change(s, ch);
	}
	if (all)
		unlock_all_writers(s);
	else
		pthread_mutex_unlock(lock);
	return rc;
}

void
store_replay_change(struct store *s, const struct cache_change *ch)
{
	struct warmup *w = loading_warmup(s);

	if (w != NULL && ch->type == CACHE_CHANGE_FLUSH && ch->exptime == 0)
		warmup_note_flush(w);
	else if (w != NULL && ch->type != CACHE_CHANGE_FLUSH)
		/* A TOUCH changes the item the checkpoint holds: bring it in. */
		warmup_before_change(w, ch->key, ch->nkey, ch->type == CACHE_CHANGE_TOUCH);
	cache_apply(s->cache, ch);
}

void
store_set_warmup(struct store *s, struct warmup *w)
{
	__atomic_store_n(&s->warmup, w, __ATOMIC_RELEASE);
}

struct item *
store_get(struct store *s, const char *key, size_t nkey)
{
	struct item *it = cache_get(s->cache, key, nkey);
	struct warmup *w;

	if (it == NULL && (w = loading_warmup(s)) != NULL)
		it = warmup_read(w, key, nkey);
	return it;
}

void
store_apply_end(struct store *s)
{
	if (s->log != NULL)
		wal_kick(s->log);
}

uint64_t
store_take_thread_lsn(void)
{
	uint64_t lsn = thread_lsn;

	thread_lsn = 0;
	return lsn;
}
