/* Unit tests for storage/cache.c: hash table, LRU eviction, TTL, flush, CAS,
 * store modes, incr/decr, refcounts, the sweeper and thread safety.
 *
 * Time is moved with cache_set_time_offset(), never slept; every fixture
 * resets the offset to 0 in teardown. */
#include "storage/cache.h"

#include <check.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static struct cache *cache;

static struct cache *
make_cache(size_t mem_limit, size_t item_size_max, unsigned hashpower, bool use_cas)
{
	struct cache_config cfg = {
		.mem_limit = mem_limit,
		.item_size_max = item_size_max,
		.hashpower = hashpower,
		.use_cas = use_cas,
	};
	struct cache *c = cache_create(&cfg);

	ck_assert_msg(c != NULL, "cache_create(mem_limit=%zu) returned NULL", mem_limit);
	return c;
}

static void
setup_default(void)
{
	cache_set_time_offset(0);
	cache = make_cache((size_t)64 * 1024 * 1024, 1024 * 1024, 10, true);
}

static void
teardown(void)
{
	cache_destroy(cache);
	cache = NULL;
	cache_set_time_offset(0);
}

/* Make cache_now() return `t`.  The offset does not stop the wall clock, so
 * a check made right before a second boundary could see t + 1; when less
 * than 100 ms of the current second are left, first wait for the next one
 * (a guard against the tick, at most ~150 ms, not a way to move time). */
static void
set_now(uint32_t t)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	if (ts.tv_nsec > 900000000L || ts.tv_nsec < 20000000L) {
		struct timespec pause = {0, 1000000000L - ts.tv_nsec + 50000000L};

		if (pause.tv_nsec >= 1000000000L)
			pause.tv_nsec = 50000000L;
		nanosleep(&pause, NULL);
	}
	cache_set_time_offset((int64_t)t - (int64_t)time(NULL));
}

/* Store key=value with the given mode; returns the status. */
static enum cache_status
store_full(struct cache *c, const char *key, const char *value, uint32_t flags,
           uint32_t exptime, enum cache_store_mode mode, uint64_t cas,
           uint64_t *cas_out)
{
	size_t nvalue = strlen(value);
	struct item *it = cache_item_create(c, key, strlen(key), flags, exptime,
	                                    (uint32_t)nvalue);
	enum cache_status st;

	ck_assert_msg(it != NULL, "cache_item_create(%s, %zu bytes) returned NULL", key, nvalue);
	memcpy(item_value(it), value, nvalue);
	st = cache_store(c, it, mode, cas, cas_out, NULL);
	cache_item_put(c, it);
	return st;
}

static enum cache_status
store(struct cache *c, const char *key, const char *value)
{
	return store_full(c, key, value, 0, 0, CACHE_SET, 0, NULL);
}

/* Copy the live value of `key` into buf (NUL-terminated); false when missing. */
static bool
fetch(struct cache *c, const char *key, char *buf, size_t buflen)
{
	struct item *it = cache_get(c, key, strlen(key));

	if (it == NULL)
		return false;
	ck_assert_msg(it->nbytes < buflen, "value of %s is %u bytes, buffer %zu",
	              key, it->nbytes, buflen);
	memcpy(buf, item_value(it), it->nbytes);
	buf[it->nbytes] = '\0';
	ck_assert_msg(memcmp(item_value(it) + it->nbytes, "\r\n", 2) == 0,
	              "value of %s is not followed by \\r\\n", key);
	cache_item_put(c, it);
	return true;
}

/* Is `key` live at cache time `t`?  A lookup of a dead item unlinks it, so
 * ask for times in increasing order. */
static bool
live_at(struct cache *c, const char *key, uint32_t t)
{
	struct item *it;

	set_now(t);
	it = cache_get(c, key, strlen(key));
	ck_assert_msg(cache_now() == t, "clock moved to %u during a check at %u", cache_now(), t);
	cache_item_put(c, it);
	return it != NULL;
}

static struct cache_stats
stats_of(struct cache *c)
{
	struct cache_stats st;

	cache_get_stats(c, &st);
	return st;
}

/******** META PROTOCOL STATE ********/

static struct cache_meta_view
view_of(struct cache *c, const char *key)
{
	struct cache_meta_read rd = {0};
	struct cache_meta_view v;
	struct item *it = cache_meta_get(c, key, strlen(key), &rd, &v, NULL);

	ck_assert_msg(it != NULL, "%s missing", key);
	cache_item_put(c, it);
	return v;
}

/* md I keeps the item under a new CAS, stale and with no win sent, and
 * describes itself as a SET (what the WAL logs); one reader wins. */
START_TEST(test_meta_invalidate_and_win_once)
{
	struct cache_meta_delete d = {.invalidate = true};
	struct cache_meta_read rd = {0};
	struct cache_meta_view v;
	struct cache_effect eff;
	uint64_t cas;
	struct item *it;

	ck_assert_msg(sizeof(struct item) == 56, "item header %zu bytes", sizeof(struct item));
	ck_assert(store_full(cache, "k", "v", 0, 0, CACHE_SET, 0, &cas) == CACHE_STORED);
	ck_assert(cache_meta_delete(cache, "k", 1, &d, &eff) == CACHE_STORED);
	ck_assert_msg(eff.changed && eff.change.type == CACHE_CHANGE_SET && eff.change.cas > cas,
	              "md I effect: changed %d type %d cas %" PRIu64, eff.changed,
	              eff.change.type, eff.change.cas);
	cache_effect_release(cache, &eff);
	it = cache_meta_get(cache, "k", 1, &rd, &v, NULL);
	ck_assert(it != NULL && v.stale && !v.win_sent);
	ck_assert_msg(cache_meta_claim_win(cache, it, NULL), "first reader did not win");
	ck_assert_msg(!cache_meta_claim_win(cache, it, NULL), "second reader won too");
	cache_item_put(cache, it);
	/* A stale store (older CAS, I) keeps the win sent; a plain set clears both. */
	{
		struct cache_store_opts o = {.compare = true, .cas = cas, .invalidate = true};
		struct item *n = cache_item_create(cache, "k", 1, 0, 0, 1);

		memcpy(item_value(n), "w", 1);
		ck_assert(cache_store_opts(cache, n, CACHE_CAS, &o, NULL, NULL) == CACHE_STORED);
		cache_item_put(cache, n);
	}
	v = view_of(cache, "k");
	ck_assert_msg(v.stale && v.win_sent, "stale store: stale %d win_sent %d", v.stale, v.win_sent);
	ck_assert(store(cache, "k", "x") == CACHE_STORED);
	v = view_of(cache, "k");
	ck_assert_msg(!v.stale && !v.win_sent, "set: stale %d win_sent %d", v.stale, v.win_sent);
}
END_TEST

/* ma's compare, and an in-place change keeps the marks. */
START_TEST(test_meta_arith_compare_and_marks)
{
	struct cache_meta_delete d = {.invalidate = true};
	struct cache_arith a = {.incr = true, .delta = 1, .compare = true, .cas = 1};
	struct cache_arith_result r;
	uint64_t cas;

	ck_assert(store_full(cache, "n", "10", 0, 0, CACHE_SET, 0, &cas) == CACHE_STORED);
	a.cas = cas + 100;
	ck_assert(cache_arith(cache, "n", 1, &a, &r, NULL) == CACHE_EXISTS);
	ck_assert(cache_meta_delete(cache, "n", 1, &d, NULL) == CACHE_STORED);
	a.compare = false;
	ck_assert(cache_arith(cache, "n", 1, &a, &r, NULL) == CACHE_STORED && r.value == 11);
	ck_assert_msg(view_of(cache, "n").stale, "an in-place incr dropped the stale mark");
	ck_assert_msg(view_of(cache, "n").cas == r.cas, "result CAS is not the item's");
}
END_TEST

/******** HASH TABLE ********/

START_TEST(test_table_growth_keeps_every_key)
{
	enum { N = 20000 };
	struct cache_stats st;
	char key[32], val[32], got[64];
	int i;

	for (i = 0; i < N; i++) {
		snprintf(key, sizeof(key), "key:%d", i);
		snprintf(val, sizeof(val), "value-%d", i * 7);
		ck_assert_msg(store(cache, key, val) == CACHE_STORED, "set %s failed", key);
	}
	st = stats_of(cache);
	ck_assert_msg(st.curr_items == N, "curr_items %" PRIu64 ", expected %d", st.curr_items, N);
	ck_assert_msg(st.total_items == N, "total_items %" PRIu64 ", expected %d", st.total_items, N);
	ck_assert_msg(st.hash_power > 10, "hash_power %" PRIu64 " did not grow from 10 with %d items",
	              st.hash_power, N);
	ck_assert_msg(st.hash_bytes == (UINT64_C(1) << st.hash_power) * sizeof(void *),
	              "hash_bytes %" PRIu64 " for power %" PRIu64, st.hash_bytes, st.hash_power);
	for (i = 0; i < N; i++) {
		snprintf(key, sizeof(key), "key:%d", i);
		snprintf(val, sizeof(val), "value-%d", i * 7);
		ck_assert_msg(fetch(cache, key, got, sizeof(got)), "%s lost after table growth", key);
		ck_assert_msg(strcmp(got, val) == 0, "%s = '%s', expected '%s'", key, got, val);
	}
}
END_TEST

/* The table grows a few buckets at a time while other threads read and
 * write: every key a writer stored is found by readers at every moment, and
 * the table ends several doublings larger. */
struct growth_arg {
	struct cache *c;
	int first, count;        /* keys this writer stores */
	volatile int *stored;    /* writers publish how far they got */
	int misses;
};

static void *
growth_writer(void *p)
{
	struct growth_arg *a = p;
	char key[32];

	for (int i = a->first; i < a->first + a->count; i++) {
		snprintf(key, sizeof(key), "grow:%d", i);
		if (store(a->c, key, key) != CACHE_STORED)
			a->misses++;
		__atomic_store_n(&a->stored[i], 1, __ATOMIC_RELEASE);
	}
	return NULL;
}

static void *
growth_reader(void *p)
{
	struct growth_arg *a = p;
	char key[32], got[64];
	unsigned seed = 99;

	for (int n = 0; n < 400000; n++) {
		int i = (int)(rand_r(&seed) % (unsigned)a->count);

		if (!__atomic_load_n(&a->stored[i], __ATOMIC_ACQUIRE))
			continue;
		snprintf(key, sizeof(key), "grow:%d", i);
		if (!fetch(a->c, key, got, sizeof(got)) || strcmp(got, key) != 0)
			a->misses++;
	}
	return NULL;
}

START_TEST(test_incremental_growth_under_concurrent_access)
{
	enum { N = 120000, WRITERS = 3 };
	volatile int *stored = calloc(N, sizeof(int));
	struct growth_arg w[WRITERS], r = {cache, 0, N, stored, 0};
	pthread_t wt[WRITERS], rt;
	struct cache_stats st;
	char key[32], got[64];
	int i;

	ck_assert_ptr_nonnull((void *)stored);
	ck_assert_int_eq(pthread_create(&rt, NULL, growth_reader, &r), 0);
	for (i = 0; i < WRITERS; i++) {
		w[i] = (struct growth_arg){cache, i * (N / WRITERS), N / WRITERS, stored, 0};
		ck_assert_int_eq(pthread_create(&wt[i], NULL, growth_writer, &w[i]), 0);
	}
	for (i = 0; i < WRITERS; i++) {
		pthread_join(wt[i], NULL);
		ck_assert_int_eq(w[i].misses, 0);
	}
	pthread_join(rt, NULL);
	ck_assert_msg(r.misses == 0, "%d stored keys were not found while the table grew", r.misses);
	st = stats_of(cache);
	ck_assert_msg(st.hash_power >= 16, "hash_power %" PRIu64 " after %d items", st.hash_power, N);
	for (i = 0; i < N; i++) {
		snprintf(key, sizeof(key), "grow:%d", i);
		ck_assert_msg(fetch(cache, key, got, sizeof(got)), "%s lost after growth", key);
	}
	free((void *)stored);
}
END_TEST

START_TEST(test_delete_removes_only_the_deleted_keys)
{
	enum { N = 4000 };
	char key[32], got[64];
	struct cache_stats st;
	int i;

	for (i = 0; i < N; i++) {
		snprintf(key, sizeof(key), "k%d", i);
		store(cache, key, key);
	}
	for (i = 0; i < N; i += 2) {
		enum cache_status s;

		snprintf(key, sizeof(key), "k%d", i);
		s = cache_delete(cache, key, strlen(key), NULL);
		ck_assert_msg(s == CACHE_STORED, "delete %s gave %d, expected CACHE_STORED", key, s);
	}
	for (i = 0; i < N; i++) {
		bool found;

		snprintf(key, sizeof(key), "k%d", i);
		found = fetch(cache, key, got, sizeof(got));
		ck_assert_msg(found == (i % 2 == 1), "%s found=%d after deleting the even keys", key, found);
	}
	st = stats_of(cache);
	ck_assert_msg(st.curr_items == N / 2, "curr_items %" PRIu64 ", expected %d", st.curr_items, N / 2);
	{
		uint64_t expect = 0;

		for (i = 1; i < N; i += 2) {
			snprintf(key, sizeof(key), "k%d", i);
			expect += cache_item_size(strlen(key), strlen(key));
		}
		ck_assert_msg(st.bytes == expect, "bytes %" PRIu64 ", expected %" PRIu64, st.bytes, expect);
	}
	ck_assert_msg(st.mem_used == st.bytes, "mem_used %" PRIu64 " != bytes %" PRIu64
	              " with no references held", st.mem_used, st.bytes);
}
END_TEST

START_TEST(test_delete_of_missing_key_is_not_found)
{
	enum cache_status s = cache_delete(cache, "nope", 4, NULL);

	ck_assert_msg(s == CACHE_NOT_FOUND, "delete missing gave %d, expected CACHE_NOT_FOUND", s);
	store(cache, "a", "1");
	ck_assert_int_eq(cache_delete(cache, "a", 1, NULL), CACHE_STORED);
	s = cache_delete(cache, "a", 1, NULL);
	ck_assert_msg(s == CACHE_NOT_FOUND, "second delete gave %d, expected CACHE_NOT_FOUND", s);
}
END_TEST

START_TEST(test_keys_differing_only_in_length_are_distinct)
{
	char got[16];

	store(cache, "ab", "two");
	store(cache, "abc", "three");
	ck_assert_msg(fetch(cache, "ab", got, sizeof(got)) && strcmp(got, "two") == 0, "ab = '%s'", got);
	ck_assert_msg(fetch(cache, "abc", got, sizeof(got)) && strcmp(got, "three") == 0, "abc = '%s'", got);
	ck_assert_msg(!fetch(cache, "a", got, sizeof(got)), "prefix key 'a' found");
}
END_TEST

START_TEST(test_item_create_refuses_bad_key_lengths)
{
	char key[CACHE_KEY_MAX + 2];
	struct item *it;

	memset(key, 'k', sizeof(key));
	it = cache_item_create(cache, key, 0, 0, 0, 1);
	ck_assert_msg(it == NULL, "empty key accepted");
	it = cache_item_create(cache, key, CACHE_KEY_MAX + 1, 0, 0, 1);
	ck_assert_msg(it == NULL, "key of %d bytes accepted", CACHE_KEY_MAX + 1);
	it = cache_item_create(cache, key, CACHE_KEY_MAX, 0, 0, 1);
	ck_assert_msg(it != NULL, "key of %d bytes refused", CACHE_KEY_MAX);
	ck_assert_msg(it->nkey == CACHE_KEY_MAX, "nkey %u", it->nkey);
	ck_assert_msg(memcmp(item_value(it) + 1, "\r\n", 2) == 0, "no \\r\\n after the value");
	cache_item_put(cache, it);
}
END_TEST

/******** LRU AND EVICTION ********/

START_TEST(test_eviction_keeps_memory_under_limit_and_drops_oldest)
{
	enum { N = 5000, VLEN = 100 };
	const size_t limit = 64 * 1024;
	struct cache *c = make_cache(limit, 1024 * 1024, 10, true);
	char key[32], val[VLEN + 1], got[VLEN + 1];
	struct cache_stats st;
	int i;

	memset(val, 'v', VLEN);
	val[VLEN] = '\0';
	for (i = 0; i < N; i++) {
		snprintf(key, sizeof(key), "key%05d", i);
		ck_assert_msg(store(c, key, val) == CACHE_STORED, "set %s failed", key);
		st = stats_of(c);
		ck_assert_msg(st.bytes <= limit && st.mem_used <= limit,
		              "after %d sets bytes %" PRIu64 " mem_used %" PRIu64 " > limit %zu",
		              i + 1, st.bytes, st.mem_used, limit);
	}
	st = stats_of(c);
	ck_assert_msg(st.evictions > 0, "no evictions after %d items of %d bytes in %zu", N, VLEN, limit);
	ck_assert_msg(st.total_items == N, "total_items %" PRIu64, st.total_items);
	ck_assert_msg(st.curr_items + st.evictions == N,
	              "curr_items %" PRIu64 " + evictions %" PRIu64 " != %d",
	              st.curr_items, st.evictions, N);
	ck_assert_msg(st.curr_items * cache_item_size(8, VLEN) == st.bytes,
	              "bytes %" PRIu64 " != %" PRIu64 " items x %zu", st.bytes, st.curr_items,
	              cache_item_size(8, VLEN));
	/* The newest items are all there, the oldest all gone. */
	for (i = N - (int)st.curr_items; i < N; i++) {
		snprintf(key, sizeof(key), "key%05d", i);
		ck_assert_msg(fetch(c, key, got, sizeof(got)), "recent %s was evicted", key);
	}
	for (i = 0; i < N - (int)st.curr_items; i++) {
		snprintf(key, sizeof(key), "key%05d", i);
		ck_assert_msg(!fetch(c, key, got, sizeof(got)), "old %s survived", key);
	}
	cache_destroy(c);
}
END_TEST

START_TEST(test_read_item_gets_second_chance_while_unread_neighbours_are_evicted)
{
	enum { FIT = 20, VLEN = 50 };
	const size_t isz = cache_item_size(5, VLEN);
	struct cache *c = make_cache(FIT * isz, 1024 * 1024, 10, true);
	char key[32], val[VLEN + 1], got[VLEN + 1];
	struct cache_stats st;
	struct item *it;
	int i;

	memset(val, 'x', VLEN);
	val[VLEN] = '\0';
	for (i = 0; i < FIT; i++) {
		snprintf(key, sizeof(key), "k%04d", i);
		store(c, key, val);
	}
	st = stats_of(c);
	ck_assert_msg(st.curr_items == FIT && st.evictions == 0,
	              "%d items should fit exactly: curr %" PRIu64 " evictions %" PRIu64,
	              FIT, st.curr_items, st.evictions);
	/* Read the oldest item: it becomes active. */
	it = cache_get(c, "k0000", 5);
	ck_assert_msg(it != NULL, "k0000 missing before eviction");
	cache_item_put(c, it);
	/* Half a pass of new items: each needs one eviction. */
	for (i = FIT; i < FIT + FIT / 2; i++) {
		snprintf(key, sizeof(key), "k%04d", i);
		store(c, key, val);
	}
	st = stats_of(c);
	ck_assert_msg(st.evictions == FIT / 2, "evictions %" PRIu64 ", expected %d",
	              st.evictions, FIT / 2);
	/* The unread neighbours k0001.. were evicted in order (check them first:
	 * a miss does not mark anything). */
	for (i = 1; i <= FIT / 2; i++) {
		snprintf(key, sizeof(key), "k%04d", i);
		ck_assert_msg(!fetch(c, key, got, sizeof(got)), "unread %s survived eviction", key);
	}
	for (i = FIT / 2 + 1; i < FIT + FIT / 2; i++) {
		snprintf(key, sizeof(key), "k%04d", i);
		it = cache_get(c, key, 5);
		ck_assert_msg(it != NULL, "%s should still be cached", key);
		cache_item_put(c, it);
	}
	it = cache_get(c, "k0000", 5);
	ck_assert_msg(it != NULL, "k0000 was read before the eviction pass but was evicted");
	cache_item_put(c, it);
	cache_destroy(c);
}
END_TEST

START_TEST(test_unread_item_is_evicted_in_insertion_order)
{
	enum { FIT = 9, VLEN = 20 };  /* keys k0..k9: all the same size */
	struct cache *c = make_cache(FIT * cache_item_size(2, VLEN), 1024 * 1024, 10, true);
	char key[32], val[VLEN + 1], got[VLEN + 1];
	int i;

	memset(val, 'y', VLEN);
	val[VLEN] = '\0';
	for (i = 0; i < FIT + 1; i++) {
		snprintf(key, sizeof(key), "k%d", i);
		store(c, key, val);
	}
	ck_assert_msg(!fetch(c, "k0", got, sizeof(got)), "oldest k0 survived");
	for (i = 1; i < FIT + 1; i++) {
		snprintf(key, sizeof(key), "k%d", i);
		ck_assert_msg(fetch(c, key, got, sizeof(got)), "%s evicted instead of k0", key);
	}
	cache_destroy(c);
}
END_TEST

START_TEST(test_item_larger_than_memory_limit_is_refused)
{
	struct cache *c = make_cache(1000, 1024 * 1024, 10, true);
	struct item *it = cache_item_create(c, "big", 3, 0, 0, 2000);
	struct cache_stats st;

	ck_assert_msg(it == NULL, "2000-byte item created in a 1000-byte cache");
	st = stats_of(c);
	ck_assert_msg(st.mem_used == 0, "mem_used %" PRIu64 " after refusal", st.mem_used);
	cache_destroy(c);
}
END_TEST

START_TEST(test_eviction_prefers_expired_items_and_counts_them_reclaimed)
{
	enum { FIT = 10, VLEN = 20 };
	struct cache *c = make_cache(FIT * cache_item_size(2, VLEN), 1024 * 1024, 10, true);
	char key[32], val[VLEN + 1];
	uint32_t now = cache_now();
	struct cache_stats st;
	int i;

	memset(val, 'z', VLEN);
	val[VLEN] = '\0';
	for (i = 0; i < FIT; i++) {
		snprintf(key, sizeof(key), "k%d", i);
		store_full(c, key, val, 0, now + 5, CACHE_SET, 0, NULL);
	}
	set_now(now + 100);
	store(c, "n0", val);
	st = stats_of(c);
	ck_assert_msg(st.evictions == 0 && st.reclaimed == 1,
	              "making room past expired items: evictions %" PRIu64 " reclaimed %" PRIu64
	              ", expected 0 and 1", st.evictions, st.reclaimed);
	cache_destroy(c);
}
END_TEST

/******** TTL ********/

START_TEST(test_absolute_exptime_in_past_is_expired)
{
	uint32_t now = cache_now();
	char got[16];

	ck_assert_int_eq(store_full(cache, "old", "v", 0, now - 1, CACHE_SET, 0, NULL), CACHE_STORED);
	ck_assert_msg(!fetch(cache, "old", got, sizeof(got)), "item with exptime now-1 is live");
	ck_assert_int_eq(store_full(cache, "one", "v", 0, 1, CACHE_SET, 0, NULL), CACHE_STORED);
	ck_assert_msg(!fetch(cache, "one", got, sizeof(got)), "item with exptime 1 (1970) is live");
	ck_assert_msg(stats_of(cache).reclaimed == 2, "reclaimed %" PRIu64 ", expected 2",
	              stats_of(cache).reclaimed);
}
END_TEST

START_TEST(test_exptime_zero_never_expires)
{
	uint32_t now = cache_now();

	store_full(cache, "forever", "v", 0, 0, CACHE_SET, 0, NULL);
	ck_assert_msg(live_at(cache, "forever", now + 10u * 365 * 24 * 3600),
	              "exptime 0 item expired 10 years later");
	ck_assert_msg(live_at(cache, "forever", UINT32_MAX - 10), "exptime 0 item expired at 2106");
}
END_TEST

START_TEST(test_item_expires_exactly_when_now_reaches_exptime)
{
	uint32_t base = cache_now() + 1000;

	set_now(base);
	store_full(cache, "ttl", "v", 0, base + 10, CACHE_SET, 0, NULL);
	ck_assert_msg(live_at(cache, "ttl", base + 9), "item with exptime %u dead at %u",
	              base + 10, base + 9);
	ck_assert_msg(!live_at(cache, "ttl", base + 10), "item with exptime %u live at %u",
	              base + 10, base + 10);
}
END_TEST

START_TEST(test_touch_sets_new_exptime)
{
	uint32_t base = cache_now() + 1000;
	struct item *it;

	set_now(base);
	store_full(cache, "t", "v", 0, base + 10, CACHE_SET, 0, NULL);
	it = cache_get_and_touch(cache, "t", 1, base + 100, NULL);
	ck_assert_msg(it != NULL, "touch of a live item returned NULL");
	ck_assert_msg(it->exptime == base + 100, "exptime %u after touch, expected %u",
	              it->exptime, base + 100);
	cache_item_put(cache, it);
	ck_assert_msg(live_at(cache, "t", base + 50), "touched item dead before its new exptime");
	ck_assert_msg(!live_at(cache, "t", base + 100), "touched item live at its new exptime");
	ck_assert_msg(cache_get_and_touch(cache, "t", 1, 0, NULL) == NULL, "touch revived a dead item");
}
END_TEST

/******** FLUSH ********/

START_TEST(test_flush_now_kills_existing_items_but_later_stores_survive)
{
	char got[16];

	store(cache, "a", "1");
	store(cache, "b", "2");
	cache_flush(cache, cache_now(), NULL);
	ck_assert_msg(!fetch(cache, "a", got, sizeof(got)), "a survived flush");
	ck_assert_msg(!fetch(cache, "b", got, sizeof(got)), "b survived flush");
	/* Stored after the flush, in the same second: survives (by CAS). */
	store(cache, "a", "3");
	ck_assert_msg(fetch(cache, "a", got, sizeof(got)) && strcmp(got, "3") == 0,
	              "item stored right after flush is missing");
	cache_flush(cache, 0, NULL);
	ck_assert_msg(!fetch(cache, "a", got, sizeof(got)), "flush(0) did not flush");
}
END_TEST

START_TEST(test_delayed_flush_takes_effect_one_second_early_as_memcached)
{
	uint32_t base = cache_now() + 1000, when = base + 10;

	set_now(base);
	store(cache, "a", "1");
	cache_flush(cache, when, NULL);
	ck_assert_msg(live_at(cache, "a", base), "delayed flush to %u killed the item at once (%u)",
	              when, base);
	ck_assert_msg(live_at(cache, "a", when - 2),
	              "flush delayed to %u already took effect at %u", when, when - 2);
	/* memcached: oldest_live = realtime(delay) - 1. */
	ck_assert_msg(!live_at(cache, "a", when - 1), "flush delayed to %u has not taken effect at %u",
	              when, when - 1);
}
END_TEST

START_TEST(test_delayed_flush_spares_items_stored_after_it_took_effect)
{
	uint32_t base = cache_now() + 1000, when = base + 10;

	set_now(base);
	store(cache, "a", "1");
	cache_flush(cache, when, NULL);
	ck_assert_msg(!live_at(cache, "a", when + 1), "a survived the delayed flush");
	set_now(when + 2);
	store(cache, "b", "2");
	ck_assert_msg(live_at(cache, "b", when + 3), "b stored after the flush took effect was flushed");
	ck_assert_msg(live_at(cache, "b", when + 1000), "b flushed later on");
}
END_TEST

START_TEST(test_immediate_flush_replaces_pending_delayed_flush)
{
	/* memcached keeps one flush deadline: a flush_all 0 after a
	 * flush_all 100 replaces it, so items stored after the second flush
	 * are not killed when the first one's delay runs out. */
	uint32_t base = cache_now() + 1000;

	set_now(base);
	cache_flush(cache, base + 100, NULL);
	cache_flush(cache, base, NULL);
	store(cache, "after", "1");
	ck_assert_msg(live_at(cache, "after", base + 1), "item stored after flush is missing");
	ck_assert_msg(live_at(cache, "after", base + 200),
	              "item stored after an immediate flush was killed by the earlier, "
	              "delayed flush it should have replaced");
}
END_TEST

/******** CAS ********/

START_TEST(test_cas_unique_increases_with_every_store)
{
	uint64_t c1 = 0, c2 = 0, c3 = 0;

	ck_assert_int_eq(store_full(cache, "a", "1", 0, 0, CACHE_SET, 0, &c1), CACHE_STORED);
	ck_assert_int_eq(store_full(cache, "b", "1", 0, 0, CACHE_SET, 0, &c2), CACHE_STORED);
	ck_assert_int_eq(store_full(cache, "a", "2", 0, 0, CACHE_SET, 0, &c3), CACHE_STORED);
	ck_assert_msg(c1 > 0 && c2 > c1 && c3 > c2, "cas uniques %" PRIu64 ", %" PRIu64 ", %" PRIu64
	              " not increasing", c1, c2, c3);
}
END_TEST

START_TEST(test_cas_with_current_unique_stores_and_stale_unique_gives_exists)
{
	uint64_t cas = 0, cas2 = 0;
	enum cache_status s;
	char got[16];

	store_full(cache, "k", "v1", 0, 0, CACHE_SET, 0, &cas);
	s = store_full(cache, "k", "v2", 0, 0, CACHE_CAS, cas, &cas2);
	ck_assert_msg(s == CACHE_STORED, "cas with current unique %" PRIu64 " gave %d", cas, s);
	ck_assert_msg(cas2 > cas, "new unique %" PRIu64 " not above %" PRIu64, cas2, cas);
	s = store_full(cache, "k", "v3", 0, 0, CACHE_CAS, cas, NULL);
	ck_assert_msg(s == CACHE_EXISTS, "cas with stale unique %" PRIu64 " gave %d, expected CACHE_EXISTS",
	              cas, s);
	ck_assert_msg(fetch(cache, "k", got, sizeof(got)) && strcmp(got, "v2") == 0,
	              "value '%s' after failed cas, expected v2", got);
}
END_TEST

START_TEST(test_cas_on_missing_key_gives_not_found)
{
	enum cache_status s = store_full(cache, "missing", "v", 0, 0, CACHE_CAS, 1, NULL);
	char got[16];

	ck_assert_msg(s == CACHE_NOT_FOUND, "cas on missing key gave %d, expected CACHE_NOT_FOUND", s);
	ck_assert_msg(!fetch(cache, "missing", got, sizeof(got)), "cas on missing key stored it");
}
END_TEST

START_TEST(test_get_reports_the_unique_of_the_last_store)
{
	uint64_t cas = 0;
	struct item *it;

	store_full(cache, "k", "v", 0, 0, CACHE_SET, 0, &cas);
	it = cache_get(cache, "k", 1);
	ck_assert_msg(it != NULL && it->cas == cas, "item cas %" PRIu64 ", store said %" PRIu64,
	              it ? it->cas : 0, cas);
	cache_item_put(cache, it);
}
END_TEST

/******** STORE MODES ********/

START_TEST(test_add_stores_only_when_missing_or_dead)
{
	uint32_t now = cache_now();
	char got[16];

	ck_assert_int_eq(store_full(cache, "k", "1", 0, 0, CACHE_ADD, 0, NULL), CACHE_STORED);
	ck_assert_msg(store_full(cache, "k", "2", 0, 0, CACHE_ADD, 0, NULL) == CACHE_NOT_STORED,
	              "add on a live key did not give CACHE_NOT_STORED");
	ck_assert_msg(fetch(cache, "k", got, sizeof(got)) && strcmp(got, "1") == 0, "k = '%s'", got);
	store_full(cache, "e", "old", 0, now - 1, CACHE_SET, 0, NULL);
	ck_assert_msg(store_full(cache, "e", "new", 0, 0, CACHE_ADD, 0, NULL) == CACHE_STORED,
	              "add on an expired key refused");
	ck_assert_msg(fetch(cache, "e", got, sizeof(got)) && strcmp(got, "new") == 0, "e = '%s'", got);
}
END_TEST

START_TEST(test_replace_stores_only_when_present)
{
	char got[16];

	ck_assert_msg(store_full(cache, "k", "1", 0, 0, CACHE_REPLACE, 0, NULL) == CACHE_NOT_STORED,
	              "replace on a missing key did not give CACHE_NOT_STORED");
	ck_assert_msg(!fetch(cache, "k", got, sizeof(got)), "replace stored a missing key");
	store(cache, "k", "1");
	ck_assert_int_eq(store_full(cache, "k", "2", 5, 0, CACHE_REPLACE, 0, NULL), CACHE_STORED);
	ck_assert_msg(fetch(cache, "k", got, sizeof(got)) && strcmp(got, "2") == 0, "k = '%s'", got);
	ck_assert_msg(stats_of(cache).curr_items == 1, "curr_items %" PRIu64,
	              stats_of(cache).curr_items);
}
END_TEST

START_TEST(test_append_keeps_old_flags_and_exptime)
{
	uint32_t exp = cache_now() + 500;
	struct item *it;

	ck_assert_msg(store_full(cache, "k", "x", 0, 0, CACHE_APPEND, 0, NULL) == CACHE_NOT_STORED,
	              "append to a missing key did not give CACHE_NOT_STORED");
	store_full(cache, "k", "abc", 7, exp, CACHE_SET, 0, NULL);
	ck_assert_int_eq(store_full(cache, "k", "def", 9, 0, CACHE_APPEND, 0, NULL), CACHE_STORED);
	it = cache_get(cache, "k", 1);
	ck_assert_msg(it != NULL, "k missing after append");
	ck_assert_msg(it->nbytes == 6 && memcmp(item_value(it), "abcdef\r\n", 8) == 0,
	              "appended value '%.*s' (%u bytes), expected 'abcdef'", (int)it->nbytes,
	              item_value(it), it->nbytes);
	ck_assert_msg(it->flags == 7, "flags %u after append, expected the old 7", it->flags);
	ck_assert_msg(it->exptime == exp, "exptime %u after append, expected the old %u",
	              it->exptime, exp);
	cache_item_put(cache, it);
}
END_TEST

START_TEST(test_prepend_keeps_old_flags_and_exptime)
{
	uint32_t exp = cache_now() + 500;
	struct item *it;

	ck_assert_msg(store_full(cache, "k", "x", 0, 0, CACHE_PREPEND, 0, NULL) == CACHE_NOT_STORED,
	              "prepend to a missing key did not give CACHE_NOT_STORED");
	store_full(cache, "k", "abc", 3, exp, CACHE_SET, 0, NULL);
	ck_assert_int_eq(store_full(cache, "k", "xyz", 4, exp + 99, CACHE_PREPEND, 0, NULL),
	                 CACHE_STORED);
	it = cache_get(cache, "k", 1);
	ck_assert_msg(it != NULL, "k missing after prepend");
	ck_assert_msg(it->nbytes == 6 && memcmp(item_value(it), "xyzabc\r\n", 8) == 0,
	              "prepended value '%.*s', expected 'xyzabc'", (int)it->nbytes, item_value(it));
	ck_assert_msg(it->flags == 3 && it->exptime == exp, "flags %u exptime %u, expected 3 and %u",
	              it->flags, it->exptime, exp);
	cache_item_put(cache, it);
}
END_TEST

START_TEST(test_append_beyond_item_size_max_is_not_stored)
{
	struct cache *c = make_cache(1024 * 1024, 1024, 10, true);
	char big[901], got[1024];

	memset(big, 'b', 900);
	big[900] = '\0';
	ck_assert_int_eq(store(c, "k", big), CACHE_STORED);
	ck_assert_msg(store_full(c, "k", big, 0, 0, CACHE_APPEND, 0, NULL) == CACHE_NOT_STORED,
	              "append making a 1800-byte value under -I 1024 was stored");
	ck_assert_msg(fetch(c, "k", got, sizeof(got)) && strlen(got) == 900,
	              "old value changed by a refused append (%zu bytes)", strlen(got));
	cache_destroy(c);
}
END_TEST

/******** INCR / DECR ********/

static enum cache_status
incr(struct cache *c, const char *key, bool up, uint64_t delta, uint64_t *result)
{
	return cache_incr(c, key, strlen(key), up, delta, result, NULL);
}

START_TEST(test_incr_adds_and_decr_subtracts)
{
	uint64_t r = 0;
	char got[32];

	store(cache, "n", "10");
	ck_assert_int_eq(incr(cache, "n", true, 5, &r), CACHE_STORED);
	ck_assert_msg(r == 15, "10 incr 5 = %" PRIu64, r);
	ck_assert_int_eq(incr(cache, "n", false, 3, &r), CACHE_STORED);
	ck_assert_msg(r == 12, "15 decr 3 = %" PRIu64, r);
	ck_assert_msg(fetch(cache, "n", got, sizeof(got)) && strcmp(got, "12") == 0,
	              "stored value '%s', expected '12'", got);
}
END_TEST

START_TEST(test_incr_wraps_at_2_pow_64)
{
	uint64_t r = 1;
	char got[32];

	store(cache, "n", "18446744073709551615");
	ck_assert_int_eq(incr(cache, "n", true, 1, &r), CACHE_STORED);
	ck_assert_msg(r == 0, "UINT64_MAX incr 1 = %" PRIu64 ", expected 0", r);
	ck_assert_msg(fetch(cache, "n", got, sizeof(got)), "n missing");
	ck_assert_msg(strcmp(got, "0                   ") == 0,
	              "wrapped value '%s', expected '0' padded to 20 bytes", got);
	store(cache, "m", "5");
	ck_assert_int_eq(incr(cache, "m", true, UINT64_MAX, &r), CACHE_STORED);
	ck_assert_msg(r == 4, "5 incr 2^64-1 = %" PRIu64 ", expected 4", r);
}
END_TEST

START_TEST(test_decr_stops_at_zero)
{
	uint64_t r = 99;
	char got[32];

	store(cache, "n", "5");
	ck_assert_int_eq(incr(cache, "n", false, 10, &r), CACHE_STORED);
	ck_assert_msg(r == 0, "5 decr 10 = %" PRIu64 ", expected 0", r);
	ck_assert_msg(fetch(cache, "n", got, sizeof(got)) && strcmp(got, "0") == 0, "value '%s'", got);
	ck_assert_int_eq(incr(cache, "n", false, 1, &r), CACHE_STORED);
	ck_assert_msg(r == 0, "0 decr 1 = %" PRIu64 ", expected 0", r);
}
END_TEST

START_TEST(test_incr_on_non_numeric_value_gives_non_numeric)
{
	static const char *const values[] = {"abc", "12abc", "-5", "", " ", "1.5",
	                                     "99999999999999999999999"};
	uint64_t r = 0;
	size_t i;

	for (i = 0; i < sizeof(values) / sizeof(values[0]); i++) {
		enum cache_status s;
		char got[64];

		store(cache, "n", values[i]);
		s = incr(cache, "n", true, 1, &r);
		ck_assert_msg(s == CACHE_NON_NUMERIC, "incr on '%s' gave %d, expected CACHE_NON_NUMERIC",
		              values[i], s);
		ck_assert_msg(fetch(cache, "n", got, sizeof(got)) && strcmp(got, values[i]) == 0,
		              "value '%s' changed to '%s' by a refused incr", values[i], got);
	}
}
END_TEST

START_TEST(test_incr_on_missing_key_gives_not_found)
{
	uint64_t r = 0;
	enum cache_status s = incr(cache, "none", true, 1, &r);

	ck_assert_msg(s == CACHE_NOT_FOUND, "incr on missing key gave %d", s);
	s = incr(cache, "none", false, 1, &r);
	ck_assert_msg(s == CACHE_NOT_FOUND, "decr on missing key gave %d", s);
}
END_TEST

START_TEST(test_shorter_decr_result_is_rewritten_in_place_padded_with_spaces)
{
	uint64_t r = 0, cas_before = 0;
	struct item *before, *after;

	store_full(cache, "n", "100", 0, 0, CACHE_SET, 0, &cas_before);
	before = cache_get(cache, "n", 1);
	ck_assert_msg(before != NULL, "n missing");
	cache_item_put(cache, before);  /* keep the address only, to compare */
	ck_assert_int_eq(incr(cache, "n", false, 1, &r), CACHE_STORED);
	ck_assert_msg(r == 99, "100 decr 1 = %" PRIu64, r);
	after = cache_get(cache, "n", 1);
	ck_assert_msg(after != NULL, "n missing after decr");
	ck_assert_msg(after->nbytes == 3 && memcmp(item_value(after), "99 \r\n", 5) == 0,
	              "value '%.*s' (%u bytes), expected '99 ' (3 bytes)", (int)after->nbytes,
	              item_value(after), after->nbytes);
	ck_assert_msg(after == before, "decr made a new item instead of rewriting in place");
	ck_assert_msg(after->cas > cas_before, "in-place decr kept cas %" PRIu64, after->cas);
	cache_item_put(cache, after);
	/* The padded value still counts. */
	ck_assert_int_eq(incr(cache, "n", true, 1, &r), CACHE_STORED);
	ck_assert_msg(r == 100, "'99 ' incr 1 = %" PRIu64, r);
}
END_TEST

START_TEST(test_longer_incr_result_makes_a_new_item)
{
	uint64_t r = 0;
	char got[32];

	store(cache, "n", "99");
	ck_assert_int_eq(incr(cache, "n", true, 1, &r), CACHE_STORED);
	ck_assert_msg(r == 100, "99 incr 1 = %" PRIu64, r);
	ck_assert_msg(fetch(cache, "n", got, sizeof(got)) && strcmp(got, "100") == 0,
	              "value '%s', expected '100'", got);
	ck_assert_msg(stats_of(cache).curr_items == 1, "curr_items %" PRIu64,
	              stats_of(cache).curr_items);
}
END_TEST

START_TEST(test_incr_never_rewrites_an_item_a_reader_holds)
{
	uint64_t r = 0;
	struct item *held;
	char got[32];

	store(cache, "n", "10");
	held = cache_get(cache, "n", 1);
	ck_assert_int_eq(incr(cache, "n", true, 5, &r), CACHE_STORED);
	ck_assert_msg(held->nbytes == 2 && memcmp(item_value(held), "10", 2) == 0,
	              "held item changed to '%.*s' under the reader", (int)held->nbytes,
	              item_value(held));
	ck_assert_msg(fetch(cache, "n", got, sizeof(got)) && strcmp(got, "15") == 0,
	              "new value '%s', expected '15'", got);
	cache_item_put(cache, held);
}
END_TEST

START_TEST(test_incr_keeps_flags_and_exptime)
{
	uint32_t exp = cache_now() + 300;
	uint64_t r = 0;
	struct item *it;

	store_full(cache, "n", "9", 42, exp, CACHE_SET, 0, NULL);
	ck_assert_int_eq(incr(cache, "n", true, 1, &r), CACHE_STORED);
	it = cache_get(cache, "n", 1);
	ck_assert_msg(it != NULL && it->flags == 42 && it->exptime == exp,
	              "flags %u exptime %u after incr, expected 42 and %u",
	              it ? it->flags : 0, it ? it->exptime : 0, exp);
	cache_item_put(cache, it);
}
END_TEST

/******** REFCOUNTS ********/

START_TEST(test_held_item_stays_valid_after_delete_and_replace)
{
	struct item *a, *b;
	struct cache_stats st;

	store(cache, "a", "alpha");
	store(cache, "b", "beta");
	a = cache_get(cache, "a", 1);
	b = cache_get(cache, "b", 1);
	ck_assert_msg(a != NULL && b != NULL, "items missing");
	ck_assert_int_eq(cache_delete(cache, "a", 1, NULL), CACHE_STORED);
	store(cache, "b", "BETA-2");
	/* The readers' copies are intact. */
	ck_assert_msg(a->nbytes == 5 && memcmp(item_value(a), "alpha\r\n", 7) == 0,
	              "deleted-but-held item reads '%.*s'", (int)a->nbytes, item_value(a));
	ck_assert_msg(b->nbytes == 4 && memcmp(item_value(b), "beta\r\n", 6) == 0,
	              "replaced-but-held item reads '%.*s'", (int)b->nbytes, item_value(b));
	ck_assert_msg(!a->linked && !b->linked, "held old items still marked linked");
	st = stats_of(cache);
	ck_assert_msg(st.mem_used > st.bytes, "held items not counted in mem_used (%" PRIu64
	              " vs bytes %" PRIu64 ")", st.mem_used, st.bytes);
	cache_item_put(cache, a);
	cache_item_put(cache, b);
	st = stats_of(cache);
	ck_assert_msg(st.mem_used == st.bytes && st.bytes == cache_item_size(1, 6),
	              "after puts mem_used %" PRIu64 " bytes %" PRIu64 ", expected %zu",
	              st.mem_used, st.bytes, cache_item_size(1, 6));
}
END_TEST

START_TEST(test_unstored_item_is_freed_by_its_last_put)
{
	struct item *it = cache_item_create(cache, "k", 1, 0, 0, 10);

	ck_assert_msg(stats_of(cache).mem_used == cache_item_size(1, 10),
	              "mem_used %" PRIu64 " for one unlinked item", stats_of(cache).mem_used);
	cache_item_put(cache, it);
	ck_assert_msg(stats_of(cache).mem_used == 0, "mem_used %" PRIu64 " after put",
	              stats_of(cache).mem_used);
	cache_item_put(cache, NULL);
}
END_TEST

/******** SWEEP ********/

START_TEST(test_sweep_removes_expired_and_flushed_items)
{
	uint32_t base = cache_now() + 1000;
	struct cache_stats st;
	char key[32];
	size_t removed;
	int i;

	set_now(base);
	for (i = 0; i < 300; i++) {
		snprintf(key, sizeof(key), "k%d", i);
		store_full(cache, key, "v", 0, i < 100 ? base + 5 : 0, CACHE_SET, 0, NULL);
	}
	set_now(base + 10);
	removed = cache_sweep(cache, 1u << 10);
	st = stats_of(cache);
	ck_assert_msg(removed == 100, "sweep removed %zu, expected the 100 expired", removed);
	ck_assert_msg(st.curr_items == 200, "curr_items %" PRIu64 " after sweep", st.curr_items);
	ck_assert_msg(st.reclaimed == 100, "reclaimed %" PRIu64, st.reclaimed);
	/* Left: k100..k299, all 4-byte keys. */
	ck_assert_msg(st.mem_used == 200 * cache_item_size(4, 1),
	              "mem_used %" PRIu64 " not returned after sweep, expected %zu", st.mem_used,
	              200 * cache_item_size(4, 1));
	cache_flush(cache, cache_now(), NULL);
	removed = cache_sweep(cache, 1u << 10);
	ck_assert_msg(removed == 200, "sweep after flush removed %zu, expected 200", removed);
	st = stats_of(cache);
	ck_assert_msg(st.curr_items == 0 && st.bytes == 0 && st.mem_used == 0,
	              "after sweeping everything: curr %" PRIu64 " bytes %" PRIu64 " mem %" PRIu64,
	              st.curr_items, st.bytes, st.mem_used);
	ck_assert_msg(cache_sweep(cache, 1u << 10) == 0, "second sweep removed something");
}
END_TEST

START_TEST(test_sweep_continues_where_it_stopped)
{
	uint32_t base = cache_now() + 1000;
	size_t total = 0;
	char key[32];
	int i;

	set_now(base);
	for (i = 0; i < 500; i++) {
		snprintf(key, sizeof(key), "k%d", i);
		store_full(cache, key, "v", 0, base + 1, CACHE_SET, 0, NULL);
	}
	set_now(base + 2);
	for (i = 0; i < 16; i++)
		total += cache_sweep(cache, 64);  /* 16 x 64 = the 1024 buckets */
	ck_assert_msg(total == 500, "16 sweeps of 64 buckets removed %zu of 500", total);
}
END_TEST

/******** WALK ********/

enum { WALK_KEYS = 3000 };

/* What a walk saw: how often each "s<n>" key came (stable keys), how many
 * other keys, the largest count of one key, and the fields of one key. */
struct seen {
	unsigned stable[WALK_KEYS];
	size_t total;
	size_t refuse_after;       /* fn says false at this call (0: never) */
	size_t calls;
	char dup[CACHE_KEY_MAX + 1];  /* a key seen twice, if any */
	struct cache_walk_item probe; /* the last item whose key is "probe" */
	bool probe_seen;
	char other[64][CACHE_KEY_MAX + 1];  /* non-"s" keys, up to 64 */
	size_t others;
};

static bool
note_item(void *arg, const struct cache_walk_item *w)
{
	struct seen *sn = arg;
	char *end;
	long n;

	sn->calls++;
	if (sn->refuse_after != 0 && sn->calls == sn->refuse_after)
		return false;
	ck_assert_msg(strlen(w->key) == w->nkey, "key %s not NUL-terminated at %u", w->key, w->nkey);
	sn->total++;
	if (w->key[0] == 's' && (n = strtol(w->key + 1, &end, 10)) >= 0 && n < WALK_KEYS &&
	    *end == '\0') {
		if (++sn->stable[n] > 1)
			snprintf(sn->dup, sizeof(sn->dup), "%s", w->key);
	} else if (strcmp(w->key, "probe") == 0) {
		sn->probe = *w;
		sn->probe_seen = true;
	} else if (sn->others < 64) {
		snprintf(sn->other[sn->others++], sizeof(sn->other[0]), "%s", w->key);
	}
	return true;
}

static void
store_stable_keys(struct cache *c, int n)
{
	char key[32];
	int i;

	for (i = 0; i < n; i++) {
		snprintf(key, sizeof(key), "s%d", i);
		ck_assert_int_eq(store(c, key, "v"), CACHE_STORED);
	}
}

static void
assert_each_stable_key_once(const struct seen *sn, int n)
{
	int i;

	ck_assert_msg(sn->dup[0] == '\0', "key %s handed over twice", sn->dup);
	for (i = 0; i < n; i++)
		ck_assert_msg(sn->stable[i] == 1, "key s%d seen %u times", i, sn->stable[i]);
}

START_TEST(test_walk_visits_every_live_item_once)
{
	struct seen *sn = calloc(1, sizeof(*sn));
	uint64_t cursor = 0;
	size_t n;

	store_stable_keys(cache, 1000);
	n = cache_walk(cache, &cursor, 0, note_item, sn);
	ck_assert_msg(n == 1000 && sn->total == 1000, "walk took %zu, saw %zu of 1000", n, sn->total);
	ck_assert_msg(cursor == 0, "a complete walk left the cursor at %" PRIu64, cursor);
	assert_each_stable_key_once(sn, 1000);
	free(sn);
}
END_TEST

START_TEST(test_walk_cursor_resumes_with_a_bounded_count)
{
	struct seen *sn = calloc(1, sizeof(*sn));
	uint64_t cursor = 0;
	size_t n, calls = 0, sum = 0;

	store_stable_keys(cache, 1000);
	do {
		n = cache_walk(cache, &cursor, 16, note_item, sn);
		/* 1000 keys in 1024 buckets: no bucket holds 16 (far too
		 * unlikely), so no call may go over. */
		ck_assert_msg(n <= 16, "call %zu handed %zu items, max 16", calls, n);
		sum += n;
		calls++;
		ck_assert_msg(calls <= 1000, "walk not done after %zu calls", calls);
	} while (cursor != 0);
	ck_assert_msg(sum == 1000 && sn->total == 1000, "resumed walk took %zu, saw %zu of 1000",
	              sum, sn->total);
	ck_assert_msg(calls >= 1000 / 16, "only %zu calls of at most 16 items", calls);
	assert_each_stable_key_once(sn, 1000);
	free(sn);
}
END_TEST

START_TEST(test_walk_skips_expired_and_flushed_items)
{
	struct seen *sn = calloc(1, sizeof(*sn));
	uint32_t base = cache_now() + 1000;
	uint64_t cursor = 0;
	char key[32];
	int i;

	set_now(base);
	for (i = 0; i < 100; i++) {
		snprintf(key, sizeof(key), "x%d", i);  /* expire at base + 5 */
		store_full(cache, key, "v", 0, base + 5, CACHE_SET, 0, NULL);
	}
	for (i = 0; i < 100; i++) {
		snprintf(key, sizeof(key), "f%d", i);  /* flushed below */
		store(cache, key, "v");
	}
	cache_flush(cache, 0, NULL);
	store_stable_keys(cache, 100);              /* stored after the flush */
	store_full(cache, "probe", "v", 0, base + 100, CACHE_SET, 0, NULL);
	set_now(base + 5);                          /* x* expire now (exptime <= now) */
	cache_walk(cache, &cursor, 0, note_item, sn);
	ck_assert_msg(sn->others == 0, "dead item %s listed", sn->other[0]);
	ck_assert_msg(sn->total == 101 && sn->probe_seen, "saw %zu items of 101, probe %d",
	              sn->total, sn->probe_seen);
	assert_each_stable_key_once(sn, 100);
	/* Not listing is not removing: the dead items are still linked,
	 * for the sweeper to reclaim. */
	ck_assert_uint_eq(stats_of(cache).curr_items, 301);
	free(sn);
}
END_TEST

START_TEST(test_walk_copies_the_fields_of_an_item)
{
	struct seen *sn = calloc(1, sizeof(*sn));
	uint32_t base = cache_now() + 1000;
	uint64_t cursor = 0, cas = 0;
	struct item *it;

	set_now(base);
	ck_assert_int_eq(store_full(cache, "probe", "hello", 42, base + 60, CACHE_SET, 0, &cas),
	                 CACHE_STORED);
	cache_walk(cache, &cursor, 0, note_item, sn);
	ck_assert_msg(sn->probe_seen, "probe not listed");
	ck_assert_msg(sn->probe.nkey == 5 && sn->probe.nbytes == 5 && sn->probe.flags == 42 &&
	              sn->probe.exptime == base + 60 && sn->probe.cas == cas &&
	              sn->probe.stored_time == base && !sn->probe.fetched,
	              "copied nkey %u nbytes %u flags %u exptime %u (want %u) cas %" PRIu64
	              " (want %" PRIu64 ") stored %u (want %u) fetched %d",
	              sn->probe.nkey, sn->probe.nbytes, sn->probe.flags, sn->probe.exptime,
	              base + 60, sn->probe.cas, cas, sn->probe.stored_time, base,
	              sn->probe.fetched);
	/* A read marks it fetched (memcached's fetch=yes); so does a touch. */
	it = cache_get(cache, "probe", 5);
	cache_item_put(cache, it);
	memset(sn, 0, sizeof(*sn));
	cursor = 0;
	cache_walk(cache, &cursor, 0, note_item, sn);
	ck_assert_msg(sn->probe_seen && sn->probe.fetched, "a read item is not marked fetched");
	store(cache, "t", "v");
	it = cache_get_and_touch(cache, "t", 1, 0, NULL);
	ck_assert_msg(it != NULL && it->fetched, "a touched item is not marked fetched");
	cache_item_put(cache, it);
	free(sn);
}
END_TEST

START_TEST(test_walk_replayed_touch_is_not_a_fetch)
{
	struct cache_change ch = {.type = CACHE_CHANGE_TOUCH, .key = "probe", .nkey = 5,
	                          .exptime = 0};
	struct seen *sn = calloc(1, sizeof(*sn));
	uint64_t cursor = 0;

	/* A touch replayed from the WAL or a primary is no client's read. */
	store(cache, "probe", "v");
	ck_assert_int_eq(cache_apply(cache, &ch), CACHE_STORED);
	cache_walk(cache, &cursor, 0, note_item, sn);
	ck_assert_msg(sn->probe_seen && !sn->probe.fetched,
	              "an applied touch marked the item fetched (seen %d)", sn->probe_seen);
	free(sn);
}
END_TEST

/* fn refusing an item stops the walk at that item's bucket: resuming
 * hands the refused item over again, and nothing is lost. */
START_TEST(test_walk_stops_when_fn_refuses_and_resumes_there)
{
	struct seen *sn = calloc(1, sizeof(*sn));
	uint64_t cursor = 0;
	size_t n, rounds = 0;
	int i;

	store_stable_keys(cache, 500);
	sn->refuse_after = 100;
	n = cache_walk(cache, &cursor, 0, note_item, sn);
	ck_assert_msg(n == 99 && sn->total == 99, "refusing the 100th: took %zu, saw %zu", n,
	              sn->total);
	ck_assert_msg(cursor != 0, "a stopped walk says it is done");
	/* Resume: items of the refused one's bucket may come twice, no other. */
	sn->refuse_after = 0;
	while (cursor != 0) {
		cache_walk(cache, &cursor, 0, note_item, sn);
		ck_assert_msg(++rounds < 10, "resumed walk did not finish");
	}
	for (i = 0; i < 500; i++)
		ck_assert_msg(sn->stable[i] >= 1 && sn->stable[i] <= 2, "s%d seen %u times", i,
		              sn->stable[i]);
	ck_assert_msg(sn->total <= 500 + 8, "%zu items for 500 keys: more than one bucket again",
	              sn->total);
	free(sn);
}
END_TEST

/* The table doubles (several times) between the calls of one walk: keys
 * present throughout are seen exactly once, and no key twice. */
START_TEST(test_walk_sees_each_key_once_while_the_table_grows)
{
	struct seen *sn = calloc(1, sizeof(*sn));
	uint64_t cursor = 0;
	size_t calls = 0, before = stats_of(cache).hash_power;
	char key[32];
	int added = 0, i;

	store_stable_keys(cache, WALK_KEYS);
	do {
		cache_walk(cache, &cursor, 40, note_item, sn);
		for (i = 0; i < 200 && added < 20000; i++, added++) {
			snprintf(key, sizeof(key), "g%d", added);
			store(cache, key, "v");
		}
		ck_assert_msg(++calls < 100000, "walk not done after %zu calls", calls);
	} while (cursor != 0);
	ck_assert_msg(stats_of(cache).hash_power >= before + 2, "table did not grow (power %zu)",
	              (size_t)stats_of(cache).hash_power);
	assert_each_stable_key_once(sn, WALK_KEYS);
	free(sn);
}
END_TEST

/* The table starts doubling at 1.5 items per bucket and moves its old
 * buckets over a few hundred per change: right after the 1537th item in
 * 1024 buckets, every item is still in an old bucket, which holds the keys
 * of two new ones.  A walk then, and one that goes on while the buckets
 * move, sees each key once. */
START_TEST(test_walk_during_incremental_growth)
{
	struct seen *sn = calloc(1, sizeof(*sn));
	uint64_t cursor = 0;
	size_t calls = 0;
	char key[32];
	int added = 0;

	ck_assert_uint_eq(stats_of(cache).hash_power, 10);
	store_stable_keys(cache, 1537);
	ck_assert_uint_eq(stats_of(cache).hash_power, 11);
	cache_walk(cache, &cursor, 0, note_item, sn);
	ck_assert_msg(cursor == 0 && sn->total == 1537, "walk while growing saw %zu of 1537",
	              sn->total);
	assert_each_stable_key_once(sn, 1537);

	memset(sn, 0, sizeof(*sn));
	do {
		cache_walk(cache, &cursor, 8, note_item, sn);
		snprintf(key, sizeof(key), "g%d", added++);  /* moves 256 old buckets */
		store(cache, key, "v");
		ck_assert_msg(++calls < 100000, "walk not done after %zu calls", calls);
	} while (cursor != 0);
	assert_each_stable_key_once(sn, 1537);
	free(sn);
}
END_TEST

struct churn {
	struct cache *c;
	volatile bool stop;
	int added;
};

static void *
churn_thread(void *arg)
{
	struct churn *ch = arg;
	char key[32];
	int i;

	for (i = 0; !__atomic_load_n(&ch->stop, __ATOMIC_RELAXED) && i < 2000000; i++) {
		snprintf(key, sizeof(key), "c%d", i % 5000);
		if (i % 3 == 2)
			cache_delete(ch->c, key, strlen(key), NULL);
		else
			store(ch->c, key, "churn");
		if (i % 4 == 0) {
			snprintf(key, sizeof(key), "g%d", i);
			store(ch->c, key, "grow");
		}
	}
	return NULL;
}

/* Writers change and grow the table while a walk runs in small steps:
 * the keys nobody touches are each seen once. */
START_TEST(test_walk_with_concurrent_writers)
{
	struct seen *sn = calloc(1, sizeof(*sn));
	struct churn ch = {.c = cache};
	uint64_t cursor = 0;
	size_t calls = 0;
	pthread_t t;

	store_stable_keys(cache, WALK_KEYS);
	ck_assert_int_eq(pthread_create(&t, NULL, churn_thread, &ch), 0);
	do {
		cache_walk(cache, &cursor, 8, note_item, sn);
		ck_assert_msg(++calls < 10000000, "walk not done after %zu calls", calls);
	} while (cursor != 0);
	__atomic_store_n(&ch.stop, true, __ATOMIC_RELAXED);
	pthread_join(t, NULL);
	assert_each_stable_key_once(sn, WALK_KEYS);
	free(sn);
}
END_TEST

START_TEST(test_memcached_size_counts_as_memcached)
{
	struct cache *nocas = make_cache(1024 * 1024, 1024 * 1024, 10, false);

	/* Observed on memcached 1.6.18 (metadump size=): key "a", 1-byte
	 * value: 61; with flags: 65; key "plain": 65. */
	ck_assert_uint_eq(cache_item_memcached_size(cache, 1, 1, 0), 61);
	ck_assert_uint_eq(cache_item_memcached_size(cache, 1, 1, 7), 65);
	ck_assert_uint_eq(cache_item_memcached_size(cache, 5, 1, 0), 65);
	ck_assert_uint_eq(cache_item_memcached_size(nocas, 1, 1, 0), 53);
	cache_destroy(nocas);
}
END_TEST

/******** SIZE LIMIT ********/

START_TEST(test_item_too_large_boundary_matches_memcached)
{
	/* memcached: 48-byte header + key + 1 + value + 2 (+4 flags) (+8 cas). */
	const size_t max = 1024 * 1024;
	struct cache *nocas = make_cache(1024 * 1024, max, 10, false);
	size_t limit = max - 48 - 1 - 1 - 2 - 8;

	ck_assert_msg(!cache_item_too_large(cache, 1, limit, 0), "%zu-byte value refused", limit);
	ck_assert_msg(cache_item_too_large(cache, 1, limit + 1, 0), "%zu-byte value accepted", limit + 1);
	ck_assert_msg(!cache_item_too_large(cache, 1, limit - 4, 1), "flags: %zu refused", limit - 4);
	ck_assert_msg(cache_item_too_large(cache, 1, limit - 3, 1), "flags: %zu accepted", limit - 3);
	ck_assert_msg(!cache_item_too_large(cache, 250, limit - 249, 0), "250-byte key: %zu refused",
	              limit - 249);
	ck_assert_msg(cache_item_too_large(cache, 250, limit - 248, 0), "250-byte key: %zu accepted",
	              limit - 248);
	ck_assert_msg(!cache_item_too_large(nocas, 1, limit + 8, 0), "-C: %zu refused", limit + 8);
	ck_assert_msg(cache_item_too_large(nocas, 1, limit + 9, 0), "-C: %zu accepted", limit + 9);
	cache_destroy(nocas);
}
END_TEST

/******** STATS ********/

START_TEST(test_reset_stats_keeps_gauges)
{
	struct cache_stats st;

	store(cache, "a", "1");
	store(cache, "a", "2");
	cache_reset_stats(cache);
	st = stats_of(cache);
	ck_assert_msg(st.total_items == 0 && st.evictions == 0 && st.reclaimed == 0,
	              "counters not reset: total %" PRIu64, st.total_items);
	ck_assert_msg(st.curr_items == 1 && st.bytes == cache_item_size(1, 1),
	              "gauges changed by reset: curr %" PRIu64 " bytes %" PRIu64,
	              st.curr_items, st.bytes);
}
END_TEST

START_TEST(test_oldest_item_age_follows_time)
{
	uint32_t base = cache_now() + 1000;

	set_now(base);
	store(cache, "a", "1");
	set_now(base + 42);
	ck_assert_msg(stats_of(cache).oldest_item_age == 42, "age %" PRIu64 ", expected 42",
	              stats_of(cache).oldest_item_age);
}
END_TEST

/******** THREADS ********/

enum { THREADS = 4, INCRS = 20000, OPS = 20000, SHARED_KEYS = 64, MIXED_VALUE = 48 };

static void *
incr_worker(void *arg)
{
	struct cache *c = arg;
	uint64_t r;
	int i;

	for (i = 0; i < INCRS; i++) {
		if (cache_incr(c, "counter", 7, true, 1, &r, NULL) != CACHE_STORED)
			return (void *)1;
	}
	return NULL;
}

START_TEST(test_concurrent_incr_counts_exactly)
{
	pthread_t tids[THREADS];
	char got[32];
	void *rv;
	int i, failures = 0;

	store(cache, "counter", "0");
	for (i = 0; i < THREADS; i++)
		ck_assert_int_eq(pthread_create(&tids[i], NULL, incr_worker, cache), 0);
	for (i = 0; i < THREADS; i++) {
		pthread_join(tids[i], &rv);
		failures += rv != NULL;
	}
	ck_assert_msg(failures == 0, "%d threads saw a failed incr", failures);
	ck_assert_msg(fetch(cache, "counter", got, sizeof(got)), "counter missing");
	ck_assert_msg(strtoull(got, NULL, 10) == (unsigned long long)THREADS * INCRS,
	              "counter '%s', expected %d", got, THREADS * INCRS);
}
END_TEST

struct mixed_arg {
	struct cache *c;
	unsigned seed;
	int bad;
};

static void *
mixed_worker(void *p)
{
	struct mixed_arg *a = p;
	char key[32], val[64];
	int i;

	for (i = 0; i < OPS; i++) {
		unsigned r = (unsigned)rand_r(&a->seed);
		int k = (int)(r % SHARED_KEYS);
		struct item *it;

		snprintf(key, sizeof(key), "shared%d", k);
		switch ((r >> 8) % 4) {
		case 0:
		case 1: {
			/* The value always encodes its key and its own length,
			 * padded to 48 bytes: 2/3 of the 64 keys live then take
			 * about 5 KB, so a 4096-byte cache must evict (with ~14-byte
			 * values it sometimes never did: the eviction test's
			 * "evictions > 0" failed about 1 run in 40). */
			int n = snprintf(val, sizeof(val), "%s:%u", key, (r >> 12) % 100000);

			if (n < MIXED_VALUE) {
				memset(val + n, '.', (size_t)(MIXED_VALUE - n));
				n = MIXED_VALUE;
			}
			struct item *w = cache_item_create(a->c, key, strlen(key), (uint32_t)k, 0,
			                                   (uint32_t)n);

			if (w == NULL)
				break;
			memcpy(item_value(w), val, (size_t)n);
			cache_store(a->c, w, (r >> 10) & 1 ? CACHE_SET : CACHE_APPEND, 0, NULL, NULL);
			cache_item_put(a->c, w);
			break;
		}
		case 2:
			it = cache_get(a->c, key, strlen(key));
			if (it != NULL) {
				if (it->flags != (uint32_t)k || it->nkey != strlen(key) ||
				    memcmp(item_key(it), key, it->nkey) != 0 ||
				    memcmp(item_value(it), key, strlen(key)) != 0 ||
				    memcmp(item_value(it) + it->nbytes, "\r\n", 2) != 0)
					a->bad++;
				cache_item_put(a->c, it);
			}
			break;
		default:
			cache_delete(a->c, key, strlen(key), NULL);
			break;
		}
	}
	return NULL;
}

static void
run_mixed(struct cache *c)
{
	pthread_t tids[THREADS];
	struct mixed_arg args[THREADS];
	struct cache_stats st;
	uint64_t live = 0, bytes = 0;
	char key[32];
	int i;

	for (i = 0; i < THREADS; i++) {
		args[i].c = c;
		args[i].seed = 1234u + (unsigned)i * 77u;
		args[i].bad = 0;
		ck_assert_int_eq(pthread_create(&tids[i], NULL, mixed_worker, &args[i]), 0);
	}
	for (i = 0; i < THREADS; i++) {
		pthread_join(tids[i], NULL);
		ck_assert_msg(args[i].bad == 0, "thread %d read %d inconsistent items", i, args[i].bad);
	}
	for (i = 0; i < SHARED_KEYS; i++) {
		struct item *it;

		snprintf(key, sizeof(key), "shared%d", i);
		it = cache_get(c, key, strlen(key));
		if (it != NULL) {
			live++;
			bytes += cache_item_size(it->nkey, it->nbytes);
			cache_item_put(c, it);
		}
	}
	st = stats_of(c);
	ck_assert_msg(st.curr_items == live, "curr_items %" PRIu64 " but %" PRIu64 " keys readable",
	              st.curr_items, live);
	ck_assert_msg(st.bytes == bytes, "bytes %" PRIu64 " but readable items take %" PRIu64,
	              st.bytes, bytes);
	ck_assert_msg(st.mem_used == st.bytes, "mem_used %" PRIu64 " != bytes %" PRIu64
	              " with no references held (leak or double count)", st.mem_used, st.bytes);
}

START_TEST(test_concurrent_set_get_delete_stay_consistent)
{
	run_mixed(cache);
}
END_TEST

START_TEST(test_concurrent_set_get_delete_under_eviction_stay_consistent)
{
	struct cache *c = make_cache(4096, 2048, 10, true);
	struct cache_stats st;

	run_mixed(c);
	st = stats_of(c);
	ck_assert_msg(st.evictions > 0, "no evictions in a 4096-byte cache");
	cache_destroy(c);
}
END_TEST

static Suite *
cache_suite(void)
{
	Suite *s = suite_create("cache");
	TCase *tc;

	tc = tcase_create("hash");
	tcase_add_checked_fixture(tc, setup_default, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_table_growth_keeps_every_key);
	tcase_add_test(tc, test_incremental_growth_under_concurrent_access);
	tcase_add_test(tc, test_delete_removes_only_the_deleted_keys);
	tcase_add_test(tc, test_delete_of_missing_key_is_not_found);
	tcase_add_test(tc, test_keys_differing_only_in_length_are_distinct);
	tcase_add_test(tc, test_item_create_refuses_bad_key_lengths);
	suite_add_tcase(s, tc);

	tc = tcase_create("lru");
	tcase_add_checked_fixture(tc, setup_default, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_eviction_keeps_memory_under_limit_and_drops_oldest);
	tcase_add_test(tc, test_read_item_gets_second_chance_while_unread_neighbours_are_evicted);
	tcase_add_test(tc, test_unread_item_is_evicted_in_insertion_order);
	tcase_add_test(tc, test_item_larger_than_memory_limit_is_refused);
	tcase_add_test(tc, test_eviction_prefers_expired_items_and_counts_them_reclaimed);
	suite_add_tcase(s, tc);

	tc = tcase_create("ttl");
	tcase_add_checked_fixture(tc, setup_default, teardown);
	tcase_add_test(tc, test_absolute_exptime_in_past_is_expired);
	tcase_add_test(tc, test_exptime_zero_never_expires);
	tcase_add_test(tc, test_item_expires_exactly_when_now_reaches_exptime);
	tcase_add_test(tc, test_touch_sets_new_exptime);
	suite_add_tcase(s, tc);

	tc = tcase_create("flush");
	tcase_add_checked_fixture(tc, setup_default, teardown);
	tcase_add_test(tc, test_flush_now_kills_existing_items_but_later_stores_survive);
	tcase_add_test(tc, test_delayed_flush_takes_effect_one_second_early_as_memcached);
	tcase_add_test(tc, test_delayed_flush_spares_items_stored_after_it_took_effect);
	tcase_add_test(tc, test_immediate_flush_replaces_pending_delayed_flush);
	suite_add_tcase(s, tc);

	tc = tcase_create("meta");
	tcase_add_checked_fixture(tc, setup_default, teardown);
	tcase_add_test(tc, test_meta_invalidate_and_win_once);
	tcase_add_test(tc, test_meta_arith_compare_and_marks);
	suite_add_tcase(s, tc);

	tc = tcase_create("cas");
	tcase_add_checked_fixture(tc, setup_default, teardown);
	tcase_add_test(tc, test_cas_unique_increases_with_every_store);
	tcase_add_test(tc, test_cas_with_current_unique_stores_and_stale_unique_gives_exists);
	tcase_add_test(tc, test_cas_on_missing_key_gives_not_found);
	tcase_add_test(tc, test_get_reports_the_unique_of_the_last_store);
	suite_add_tcase(s, tc);

	tc = tcase_create("store_modes");
	tcase_add_checked_fixture(tc, setup_default, teardown);
	tcase_add_test(tc, test_add_stores_only_when_missing_or_dead);
	tcase_add_test(tc, test_replace_stores_only_when_present);
	tcase_add_test(tc, test_append_keeps_old_flags_and_exptime);
	tcase_add_test(tc, test_prepend_keeps_old_flags_and_exptime);
	tcase_add_test(tc, test_append_beyond_item_size_max_is_not_stored);
	suite_add_tcase(s, tc);

	tc = tcase_create("incr");
	tcase_add_checked_fixture(tc, setup_default, teardown);
	tcase_add_test(tc, test_incr_adds_and_decr_subtracts);
	tcase_add_test(tc, test_incr_wraps_at_2_pow_64);
	tcase_add_test(tc, test_decr_stops_at_zero);
	tcase_add_test(tc, test_incr_on_non_numeric_value_gives_non_numeric);
	tcase_add_test(tc, test_incr_on_missing_key_gives_not_found);
	tcase_add_test(tc, test_shorter_decr_result_is_rewritten_in_place_padded_with_spaces);
	tcase_add_test(tc, test_longer_incr_result_makes_a_new_item);
	tcase_add_test(tc, test_incr_never_rewrites_an_item_a_reader_holds);
	tcase_add_test(tc, test_incr_keeps_flags_and_exptime);
	suite_add_tcase(s, tc);

	tc = tcase_create("refcount");
	tcase_add_checked_fixture(tc, setup_default, teardown);
	tcase_add_test(tc, test_held_item_stays_valid_after_delete_and_replace);
	tcase_add_test(tc, test_unstored_item_is_freed_by_its_last_put);
	suite_add_tcase(s, tc);

	tc = tcase_create("sweep");
	tcase_add_checked_fixture(tc, setup_default, teardown);
	tcase_add_test(tc, test_sweep_removes_expired_and_flushed_items);
	tcase_add_test(tc, test_sweep_continues_where_it_stopped);
	suite_add_tcase(s, tc);

	tc = tcase_create("walk");
	tcase_add_checked_fixture(tc, setup_default, teardown);
	tcase_set_timeout(tc, 100);
	tcase_add_test(tc, test_walk_visits_every_live_item_once);
	tcase_add_test(tc, test_walk_cursor_resumes_with_a_bounded_count);
	tcase_add_test(tc, test_walk_skips_expired_and_flushed_items);
	tcase_add_test(tc, test_walk_copies_the_fields_of_an_item);
	tcase_add_test(tc, test_walk_replayed_touch_is_not_a_fetch);
	tcase_add_test(tc, test_walk_stops_when_fn_refuses_and_resumes_there);
	tcase_add_test(tc, test_walk_sees_each_key_once_while_the_table_grows);
	tcase_add_test(tc, test_walk_during_incremental_growth);
	tcase_add_test(tc, test_walk_with_concurrent_writers);
	tcase_add_test(tc, test_memcached_size_counts_as_memcached);
	suite_add_tcase(s, tc);

	tc = tcase_create("limits_and_stats");
	tcase_add_checked_fixture(tc, setup_default, teardown);
	tcase_add_test(tc, test_item_too_large_boundary_matches_memcached);
	tcase_add_test(tc, test_reset_stats_keeps_gauges);
	tcase_add_test(tc, test_oldest_item_age_follows_time);
	suite_add_tcase(s, tc);

	tc = tcase_create("threads");
	tcase_add_checked_fixture(tc, setup_default, teardown);
	tcase_set_timeout(tc, 100);
	tcase_add_test(tc, test_concurrent_incr_counts_exactly);
	tcase_add_test(tc, test_concurrent_set_get_delete_stay_consistent);
	tcase_add_test(tc, test_concurrent_set_get_delete_under_eviction_stay_consistent);
	suite_add_tcase(s, tc);

	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(cache_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
