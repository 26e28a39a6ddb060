/* Warm-up: the checkpoint loaded behind a serving node.  See warmup.h. */
#include "storage/warmup.h"

#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <xxhash.h>

#include "storage/ckpt.h"
#include "storage/log.h"

#define CHANGED_STRIPES 256     /* power of two; a stripe is a hash's top bits */
#define LOADERS_MAX 4
#define LOADERS_MIN_ITEMS 65536 /* fewer items: one loader thread is enough */
#define LOAD_CHUNK 4096         /* items per LMDB read transaction (see ckpt_snapshot_pause) */
#define LOAD_BATCH 32           /* items copied out before they are linked (prefetching) */
#define REPORT_EVERY_MS 1000
#define REPORT_SLACK_MS 100

/* One stripe of the changed set: open addressing over 64-bit key hashes
 * (0 = empty slot), grown at half full. */
struct changed_stripe {
	pthread_mutex_t lock;
	uint64_t *slots;
	size_t cap;
	size_t n;
	bool closed;         /* the warm-up has ended: slots freed */
} __attribute__((aligned(64)));

struct loader {
	struct warmup *w;
	pthread_t thread;
	size_t nfrom, nto;   /* the key range [from, to); 0 = unbounded */
	char from[CACHE_KEY_MAX], to[CACHE_KEY_MAX];
};

struct warmup {
	struct cache *cache;
	struct ckpt *ck;
	bool loading;                 /* atomic; true until finish() has closed every stripe */
	bool ending;                  /* atomic; finish() has begun (it runs once) */
	uint64_t total;               /* items in the checkpoint at the start */
	uint64_t items;               /* atomic: checkpoint items linked */
	uint64_t items_at_start;      /* of those, linked before warmup_start() */
	uint64_t bytes;               /* atomic */
	uint64_t ms;                  /* atomic: the warm-up's length, once over */
	uint64_t next_report_ms;      /* atomic */
	struct timespec start;
	unsigned nloaders;
	unsigned running;             /* atomic: loaders still reading */
	bool joined;                  /* warmup_stop() has joined the loaders */
	struct loader loaders[LOADERS_MAX];
	struct changed_stripe changed[CHANGED_STRIPES];
};

/******** THE CHANGED SET ********/

static uint64_t
key_hash(const char *key, size_t nkey)
{
	uint64_t h = XXH3_64bits(key, nkey);

	return h != 0 ? h : 1;
}

static struct changed_stripe *
stripe_of(struct warmup *w, uint64_t h)
{
	return &w->changed[h >> 56 & (CHANGED_STRIPES - 1)];
}

/* Caller holds cs->lock. */
static bool
changed_contains(const struct changed_stripe *cs, uint64_t h)
{
	size_t i;

	if (cs->cap == 0)
		return false;
	for (i = h & (cs->cap - 1); cs->slots[i] != 0; i = (i + 1) & (cs->cap - 1)) {
		if (cs->slots[i] == h)
			return true;
	}
	return false;
}

static void
slot_put(uint64_t *slots, size_t cap, uint64_t h)
{
	size_t i;

	for (i = h & (cap - 1); slots[i] != 0 && slots[i] != h; i = (i + 1) & (cap - 1))
		;
	slots[i] = h;
}

/* Caller holds cs->lock.  Returns false when out of memory. */
static bool
changed_add(struct changed_stripe *cs, uint64_t h)
{
	if (changed_contains(cs, h))
		return true;
	if (2 * (cs->n + 1) > cs->cap) {
		size_t cap = cs->cap != 0 ? 2 * cs->cap : 64, i;
		uint64_t *bigger = calloc(cap, sizeof(*bigger));

		if (bigger == NULL)
			return false;
		for (i = 0; i < cs->cap; i++) {
			if (cs->slots[i] != 0)
				slot_put(bigger, cap, cs->slots[i]);
		}
		free(cs->slots);
		cs->slots = bigger;
		cs->cap = cap;
	}
	slot_put(cs->slots, cs->cap, h);
	cs->n++;
	return true;
}

/******** THE END ********/

/* End the warm-up (the first call only): from here the cache is a plain
 * cache, and the changed set is freed.  Takes every stripe lock: never
 * call it holding one.
 * Order matters: every stripe is closed (no loader or read links anything
 * in it from then on) before `loading` turns false (writers stop noting
 * changes).  The other way round, a loader still holding a batch could link
 * a key's checkpoint version, without looking, next to a set made in
 * between (found by a stress test of check_warmup.c's author). */
static void
finish(struct warmup *w, const char *how)
{
	uint64_t ms, items, bytes;
	int i;

	if (__atomic_exchange_n(&w->ending, true, __ATOMIC_ACQ_REL))
		return;
	for (i = 0; i < CHANGED_STRIPES; i++) {
		struct changed_stripe *cs = &w->changed[i];

		pthread_mutex_lock(&cs->lock);
		free(cs->slots);
		cs->slots = NULL;
		cs->cap = cs->n = 0;
		cs->closed = true;
		pthread_mutex_unlock(&cs->lock);
	}
	__atomic_store_n(&w->loading, false, __ATOMIC_RELEASE);
	ms = log_ms_since(&w->start);
	__atomic_store_n(&w->ms, ms, __ATOMIC_RELAXED);
	items = __atomic_load_n(&w->items, __ATOMIC_RELAXED);
	bytes = __atomic_load_n(&w->bytes, __ATOMIC_RELAXED);
	log_msg(LOG_ALWAYS, "warm-up %s: %" PRIu64 " items (%" PRIu64 " MB) loaded in %" PRIu64
	        " ms (%.0f items/s)", how, items, bytes >> 20, ms,
	        ms > 0 ? (double)items * 1000 / (double)ms : (double)items);
}

/* One progress line a second, from whichever caller notices first: the
 * server's timer (warmup_report) or a loader between chunks. */
static void
report_progress(struct warmup *w)
{
	uint64_t ms = log_ms_since(&w->start), due = __atomic_load_n(&w->next_report_ms, __ATOMIC_RELAXED);
	uint64_t items, bytes;
	double rate;

	/* The next is due a little under a second later, so that the server's
	 * one-second timer never finds it not yet due by a hair. */
	if (ms < due || !__atomic_compare_exchange_n(&w->next_report_ms, &due,
	                                             ms + REPORT_EVERY_MS - REPORT_SLACK_MS, false,
	                                             __ATOMIC_RELAXED, __ATOMIC_RELAXED))
		return;
	items = __atomic_load_n(&w->items, __ATOMIC_RELAXED);
	bytes = __atomic_load_n(&w->bytes, __ATOMIC_RELAXED);
	rate = ms > 0 ? (double)items * 1000 / (double)ms : 0;
	log_msg(LOG_ALWAYS, "warm-up: %" PRIu64 " of about %" PRIu64 " items (%" PRIu64
	        " MB) loaded, %.0f items/s, about %.1f s to go", items, w->total, bytes >> 20, rate,
	        rate > 0 && w->total > items ? (double)(w->total - items) / rate : 0.0);
}

/******** BRINGING ONE ITEM IN ********/

struct fetch {
	struct warmup *w;
	bool may_evict;
	struct item *it;     /* OUT: an unlinked copy, or NULL */
};

/* A new item's value, CAS and marks from the checkpoint's SET. */
static void
fill_loaded(struct item *it, const struct cache_change *set)
{
	memcpy(item_value(it), set->value, set->nbytes);
	it->cas = set->cas;
	cache_item_set_marks(it, set->marks);
}

/* ckpt_item_fn: copy a live checkpoint item out of LMDB's pages. */
static int
fetch_item(void *arg, const struct cache_change *set)
{
	struct fetch *f = arg;
	struct cache *c = f->w->cache;

	if (set->exptime != 0 && set->exptime <= cache_now())
		return 0;  /* expiry is not logged: the checkpoint still has it */
	f->it = f->may_evict
	        ? cache_item_create(c, set->key, set->nkey, set->flags, set->exptime, set->nbytes)
	        : cache_item_create_unevicting(c, set->key, set->nkey, set->flags, set->exptime,
	                                       set->nbytes);
	if (f->it != NULL)
		fill_loaded(f->it, set);
	return 0;
}

/* Link a checkpoint item (may_exist: unless its key is in memory); true if
 * it was linked.  It is counted before it is linked, so that a client who
 * has read it finds it in recovered_items: the count never lags what can
 * be read, however long a loader is preempted (a loader runs at
 * SCHED_IDLE). */
static bool
link_counted(struct warmup *w, struct item *it, bool may_exist)
{
	uint64_t bytes = it->nkey + it->nbytes;

	__atomic_add_fetch(&w->items, 1, __ATOMIC_RELAXED);
	__atomic_add_fetch(&w->bytes, bytes, __ATOMIC_RELAXED);
	if (cache_link_loaded(w->cache, it, may_exist) == CACHE_STORED)
		return true;
	__atomic_sub_fetch(&w->items, 1, __ATOMIC_RELAXED);
	__atomic_sub_fetch(&w->bytes, bytes, __ATOMIC_RELAXED);
	return false;
}

/* Link a checkpoint item unless its key has changed; caller holds cs->lock.
 * by_loader: the loader's own, which skips the cache's lookup.  That is
 * safe because every other way a key reaches memory while loading notes it
 * as changed first (the WAL tail's replay, every write, and the reads that
 * bring a checkpoint item in: link_noted), and the loaders read disjoint
 * key ranges, each key once. */
static bool
link_unchanged(struct warmup *w, struct changed_stripe *cs, uint64_t h, struct item *it,
               bool by_loader)
{
	return !cs->closed && !changed_contains(cs, h) && link_counted(w, it, !by_loader);
}

/* A read's link_unchanged(): the key is then noted as changed, so that the
 * loader (which does not look) never links it twice.  Without memory to
 * note it, nothing is linked. */
static bool
link_noted(struct warmup *w, struct changed_stripe *cs, uint64_t h, struct item *it)
{
	if (cs->closed || changed_contains(cs, h) || !changed_add(cs, h))
		return false;
	return link_counted(w, it, true);
}

/* Has the key changed (or the warm-up ended)? */
static bool
key_changed(struct warmup *w, uint64_t h)
{
	struct changed_stripe *cs = stripe_of(w, h);
	bool changed;

	pthread_mutex_lock(&cs->lock);
	changed = cs->closed || changed_contains(cs, h);
	pthread_mutex_unlock(&cs->lock);
	return changed;
}

struct item *
warmup_read(struct warmup *w, const char *key, size_t nkey)
{
	uint64_t h = key_hash(key, nkey);
	struct changed_stripe *cs = stripe_of(w, h);
	struct fetch f = {.w = w, .may_evict = false};
	bool linked;

	if (key_changed(w, h))
		return cache_get(w->cache, key, nkey);
	/* LMDB is read with no lock held; the item is linked only if the key
	 * has not changed meanwhile. */
	if (ckpt_get(w->ck, key, nkey, fetch_item, &f) <= 0 || f.it == NULL)
		return cache_get(w->cache, key, nkey);
	/* A client reads it (metadump's fetch=yes); set while no other thread
	 * can see the item yet. */
	f.it->fetched = 1;
	pthread_mutex_lock(&cs->lock);
	linked = link_noted(w, cs, h, f.it);
	pthread_mutex_unlock(&cs->lock);
	if (linked) {
		__atomic_store_n(&f.it->active, 1, __ATOMIC_RELAXED);  /* it was read */
		return f.it;
	}
	cache_item_put(w->cache, f.it);
	return cache_get(w->cache, key, nkey);
}

void
warmup_before_change(struct warmup *w, const char *key, size_t nkey, bool fault_in)
{
	uint64_t h = key_hash(key, nkey);
	struct changed_stripe *cs = stripe_of(w, h);
	struct fetch f = {.w = w, .may_evict = true};
	bool noted = true;

	if (fault_in && !key_changed(w, h) && !cache_contains(w->cache, key, nkey))
		ckpt_get(w->ck, key, nkey, fetch_item, &f);
	pthread_mutex_lock(&cs->lock);
	if (!cs->closed) {
		if (f.it != NULL)
			link_unchanged(w, cs, h, f.it, false);
		noted = changed_add(cs, h);
	}
	pthread_mutex_unlock(&cs->lock);
	cache_item_put(w->cache, f.it);
	if (!noted)
		finish(w, "ended early (no memory to note a change)");
}

void
warmup_note_flush(struct warmup *w)
{
	finish(w, "ended by flush_all");
}

/******** LOADER THREADS ********/

/* Link a batch of the loader's items (their buckets were prefetched while
 * the batch was read) and drop the loader's references. */
static void
link_batch(struct warmup *w, struct item **batch, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		uint64_t h = key_hash(item_key(batch[i]), batch[i]->nkey);
		struct changed_stripe *cs = stripe_of(w, h);

		pthread_mutex_lock(&cs->lock);
		link_unchanged(w, cs, h, batch[i], true);
		pthread_mutex_unlock(&cs->lock);
		cache_item_put(w->cache, batch[i]);
	}
}

/* Copy live items out of the snapshot, in batches.
 * Returns NULL when done, or why it stopped early. */
static const char *
load_range(struct warmup *w, struct ckpt_snapshot *snap)
{
	struct item *batch[LOAD_BATCH];
	struct cache_change set;
	size_t n = 0;
	uint64_t read = 0;
	const char *why = NULL;
	int rc = 0;

	while (__atomic_load_n(&w->loading, __ATOMIC_RELAXED) &&
	       (rc = ckpt_snapshot_next(snap, &set)) > 0) {
		struct item *it;

		if (++read % LOAD_CHUNK == 0) {
			/* Let the checkpointer grow the map between chunks. */
			ckpt_snapshot_pause(snap);
			report_progress(w);
		}
		if (set.exptime != 0 && set.exptime <= cache_now())
			continue;  /* expiry is not logged: the checkpoint still has it */
		it = cache_item_create_unevicting(w->cache, set.key, set.nkey, set.flags, set.exptime,
		                                  set.nbytes);
		if (it == NULL) {
			why = "ended early (memory full: -m reached)";
			break;
		}
		fill_loaded(it, &set);
		cache_prefetch(w->cache, set.key, set.nkey);
		batch[n++] = it;
		if (n == LOAD_BATCH) {
			link_batch(w, batch, n);
			n = 0;
		}
	}
	link_batch(w, batch, n);
	return rc < 0 ? "ended early (cannot read the checkpoint)" : why;
}

static void *
loader_main(void *arg)
{
	struct loader *l = arg;
	struct warmup *w = l->w;
	struct ckpt_snapshot *snap;
	const struct sched_param idle = {0};
	const char *why;
	uint64_t lsn;

	/* Serving comes first: a loader runs on the CPU the workers leave.
	 * At the workers' priority two loaders on two cores delayed gets by up
	 * to 30-110 ms (p99 1-5 ms); at nice 10 still p99 1.3-3.7 ms
	 * (docs/warm-restart.md). */
	pthread_setschedparam(pthread_self(), SCHED_IDLE, &idle);

	if (ckpt_snapshot_open(w->ck, &snap, &lsn) != 0) {
		finish(w, "ended early (cannot read the checkpoint)");
		return NULL;
	}
	ckpt_snapshot_set_range(snap, l->from, l->nfrom, l->to, l->nto);
	why = load_range(w, snap);
	ckpt_snapshot_close(snap);
	if (why != NULL)
		finish(w, why);
	else if (__atomic_sub_fetch(&w->running, 1, __ATOMIC_ACQ_REL) == 0)
		finish(w, "done");
	return NULL;
}

/* Big-endian value of the 8 bytes at key[from...] (zeros past the end). */
static uint64_t
key_bits(const char *key, size_t nkey, size_t from)
{
	uint64_t v = 0;

	for (size_t i = 0; i < 8; i++)
		v = v << 8 | (from + i < nkey ? (unsigned char)key[from + i] : 0);
	return v;
}

unsigned
warmup_split_keys(const char *first, size_t nfirst, const char *last, size_t nlast,
                  unsigned n, char (*splits)[CACHE_KEY_MAX], size_t *nsplit)
{
	size_t prefix = 0;
	uint64_t a, b;
	unsigned i;

	while (prefix < nfirst && prefix < nlast && first[prefix] == last[prefix])
		prefix++;
	if (n < 2 || prefix + 8 > CACHE_KEY_MAX)
		return 1;
	/* Interpolate on the 8 bytes after the common prefix: keys such as
	 * "user:%08u" split into ranges of about the same number of items. */
	a = key_bits(first, nfirst, prefix);
	b = key_bits(last, nlast, prefix);
	if (b <= a || b - a < n)
		return 1;
	for (i = 1; i < n; i++) {
		uint64_t m = a + (b - a) / n * i;

		memcpy(splits[i - 1], first, prefix);
		for (int k = 0; k < 8; k++)
			splits[i - 1][prefix + k] = (char)(m >> (56 - 8 * k));
		nsplit[i - 1] = prefix + 8;
	}
	return n;
}

/******** LIFECYCLE ********/

struct warmup *
warmup_create(struct cache *cache, struct ckpt *ck)
{
	struct warmup *w = calloc(1, sizeof(*w));

	if (w == NULL)
		return NULL;
	w->cache = cache;
	w->ck = ck;
	w->loading = true;
	w->joined = true;  /* nothing to join until warmup_start() */
	clock_gettime(CLOCK_MONOTONIC, &w->start);
	w->next_report_ms = REPORT_EVERY_MS;
	for (int i = 0; i < CHANGED_STRIPES; i++)
		pthread_mutex_init(&w->changed[i].lock, NULL);
	w->total = ckpt_item_count(ck);
	cache_reserve(cache, w->total);
	cache_raise_cas(cache, ckpt_max_cas(ck));
	return w;
}

int
warmup_start(struct warmup *w)
{
	char first[CACHE_KEY_MAX], last[CACHE_KEY_MAX], splits[LOADERS_MAX - 1][CACHE_KEY_MAX];
	size_t nfirst, nlast, nsplit[LOADERS_MAX - 1];
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	unsigned n = cpus < 1 ? 1 : cpus > LOADERS_MAX ? LOADERS_MAX : (unsigned)cpus, i;
	int rc;

	/* Before any loader or client thread exists: nothing links meanwhile. */
	w->items_at_start = __atomic_load_n(&w->items, __ATOMIC_RELAXED);
	if (!warmup_loading(w))
		return 0;  /* over already: a flush_all in the WAL tail */
	rc = ckpt_key_bounds(w->ck, first, &nfirst, last, &nlast);
	if (rc == -ENOENT) {
		finish(w, "done (the checkpoint is empty)");
		return 0;
	}
	if (rc != 0) {
		finish(w, "ended early (cannot read the checkpoint)");
		return rc;
	}
	if (w->total < LOADERS_MIN_ITEMS)
		n = 1;
	n = warmup_split_keys(first, nfirst, last, nlast, n, splits, nsplit);
	log_msg(LOG_ALWAYS, "warm-up: loading about %" PRIu64 " items from the checkpoint "
	        "with %u threads; serving meanwhile", w->total, n);
	w->running = n;
	w->joined = false;
	for (i = 0; i < n; i++) {
		struct loader *l = &w->loaders[i];

		l->w = w;
		if (i > 0) {
			memcpy(l->from, splits[i - 1], nsplit[i - 1]);
			l->nfrom = nsplit[i - 1];
		}
		if (i + 1 < n) {
			memcpy(l->to, splits[i], nsplit[i]);
			l->nto = nsplit[i];
		}
	}
	for (i = 0; i < n; i++) {
		if (pthread_create(&w->loaders[i].thread, NULL, loader_main, &w->loaders[i]) != 0)
			break;
		pthread_setname_np(w->loaders[i].thread, "cairn-warmup");
	}
	w->nloaders = i;
	if (i < n) {
		/* The ranges of the threads not started would never load. */
		finish(w, "ended early (cannot start a loader thread)");
		return -EAGAIN;
	}
	return 0;
}

void
warmup_stop(struct warmup *w)
{
	finish(w, "stopped");
	if (w->joined)
		return;
	for (unsigned i = 0; i < w->nloaders; i++)
		pthread_join(w->loaders[i].thread, NULL);
	w->joined = true;
}

void
warmup_destroy(struct warmup *w)
{
	if (w == NULL)
		return;
	warmup_stop(w);
	for (int i = 0; i < CHANGED_STRIPES; i++)
		pthread_mutex_destroy(&w->changed[i].lock);
	free(w);
}

bool
warmup_loading(const struct warmup *w)
{
	return __atomic_load_n(&w->loading, __ATOMIC_RELAXED);
}

void
warmup_report(struct warmup *w)
{
	report_progress(w);
}

void
warmup_get_stats(const struct warmup *w, struct warmup_stats *out)
{
	out->loading = warmup_loading(w);
	out->items = __atomic_load_n(&w->items, __ATOMIC_RELAXED);
	out->items_at_start = w->items_at_start;
	out->bytes = __atomic_load_n(&w->bytes, __ATOMIC_RELAXED);
	out->ms = out->loading ? log_ms_since(&w->start) : __atomic_load_n(&w->ms, __ATOMIC_RELAXED);
}
