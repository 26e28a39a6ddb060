/* Unit tests for storage/warmup.c, the checkpoint loaded behind a serving
 * node, on a real LMDB checkpoint in a temp dir and a real cache + store.
 * Most tests call the store's functions between warmup_create() and
 * warmup_start(), so that the order "change, then loader" is certain:
 *   - a key set, deleted or replayed (WAL tail) before the loader runs keeps
 *     what memory says; the checkpoint's older version never replaces it;
 *   - a read or a change that depends on the old value (add, incr, append,
 *     delete) sees the checkpoint's version, CAS included;
 *   - expired checkpoint items are never loaded;
 *   - an immediate flush_all ends the warm-up, and no checkpoint item
 *     survives it;
 *   - new CAS uniques are above the checkpoint's highest;
 *   - warmup_split_keys() splits key ranges in order, or refuses to;
 *   - several loader threads load every item exactly once, and stop (with
 *     no eviction and no crash) when memory is full.
 * Each test makes its own temp dir under basedir; every wait is bounded. */
#include "tests/durability/testfs.h"

#include <check.h>
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "storage/cache.h"
#include "storage/ckpt.h"
#include "storage/store.h"
#include "storage/warmup.h"

static char basedir[128];
static char tmpdir[256];

static void
setup(void)
{
	make_test_dir(tmpdir, sizeof(tmpdir), basedir);
}

static void
teardown(void)
{
	rm_rf(tmpdir);
}

/******** FIXTURE: CHECKPOINT, CACHE, STORE, WARM-UP ********/

struct env {
	struct ckpt *ck;
	struct cache *c;
	struct store *s;
	struct warmup *w;
};

static struct ckpt *
open_ckpt(void)
{
	struct ckpt *ck = NULL;

	ck_assert_int_eq(ckpt_open(tmpdir, &ck), 0);
	ck_assert_ptr_nonnull(ck);
	return ck;
}

/* One item into the checkpoint (its own write transaction). */
static void
ckpt_put(struct ckpt *ck, const char *key, const char *value, uint32_t flags, uint32_t exptime,
         uint64_t cas)
{
	struct cache_change set = test_set(key, value, flags, exptime, cas);

	ck_assert_int_eq(ckpt_put_items(ck, &set, 1), 0);
}

/* n items "key:%08u" (i in [0, n)) with values made by value_of(), CAS i+1,
 * flags i, in batches of one write transaction each. */
typedef size_t value_fn(char *buf, size_t len, unsigned i);

static void
ckpt_put_many(struct ckpt *ck, unsigned n, value_fn *value_of)
{
	enum { BATCH = 5000 };
	struct cache_change *sets = calloc(BATCH, sizeof(*sets));
	char (*keys)[16] = calloc(BATCH, sizeof(*keys));
	char (*values)[256] = calloc(BATCH, sizeof(*values));

	ck_assert_ptr_nonnull(sets);
	ck_assert_ptr_nonnull(keys);
	ck_assert_ptr_nonnull(values);
	for (unsigned base = 0; base < n; base += BATCH) {
		size_t m = n - base < BATCH ? n - base : BATCH;

		for (size_t j = 0; j < m; j++) {
			unsigned i = base + (unsigned)j;

			snprintf(keys[j], sizeof(keys[j]), "key:%08u", i);
			sets[j] = (struct cache_change){
				.type = CACHE_CHANGE_SET,
				.key = keys[j],
				.nkey = strlen(keys[j]),
				.flags = i,
				.cas = (uint64_t)i + 1,
				.value = values[j],
				.nbytes = (uint32_t)value_of(values[j], sizeof(values[j]), i),
			};
		}
		ck_assert_int_eq(ckpt_put_items(ck, sets, m), 0);
	}
	free(values);
	free(keys);
	free(sets);
}

/* The cache, the store and a warm-up of the checkpoint in tmpdir (already
 * filled), not started: the caller orders its changes before the loader. */
static struct env
env_open(struct ckpt *ck, size_t mem_limit)
{
	struct env e = {.ck = ck};

	e.c = test_cache(mem_limit);
	e.s = store_create(e.c);
	ck_assert_ptr_nonnull(e.s);
	e.w = warmup_create(e.c, ck);
	ck_assert_ptr_nonnull(e.w);
	ck_assert(warmup_loading(e.w));
	store_set_warmup(e.s, e.w);
	return e;
}

static void
env_close(struct env *e)
{
	warmup_stop(e->w);
	store_set_warmup(e->s, NULL);
	warmup_destroy(e->w);
	store_destroy(e->s);
	cache_destroy(e->c);
	ckpt_close(e->ck);
}

/* Start the loader and wait (at most 10 s) until the warm-up has ended. */
static void
run_loader(struct warmup *w)
{
	int i;

	ck_assert_int_eq(warmup_start(w), 0);
	for (i = 0; i < 10000 && warmup_loading(w); i++)
		usleep(1000);
	ck_assert_msg(!warmup_loading(w), "warm-up still loading after 10 s");
}

/* store_store() of a fresh item; returns the status, *cas_out the CAS. */
static enum cache_status
store_value(struct env *e, const char *key, const char *value, uint32_t flags,
            enum cache_store_mode mode, uint64_t *cas_out)
{
	size_t n = strlen(value);
	struct item *it = cache_item_create(e->c, key, strlen(key), flags, 0, (uint32_t)n);
	enum cache_status st;

	ck_assert_ptr_nonnull(it);
	memcpy(item_value(it), value, n);
	st = store_store(e->s, it, mode, 0, cas_out);
	cache_item_put(e->c, it);
	return st;
}

/* What `it` holds equals value/flags (and cas, unless 0); puts it. */
static void
check_item(struct cache *c, struct item *it, const char *key, const char *value, uint32_t flags,
           uint64_t cas)
{
	ck_assert_msg(it != NULL, "%s: missing, want \"%s\"", key, value);
	ck_assert_uint_eq(it->nkey, strlen(key));
	ck_assert(memcmp(item_key(it), key, it->nkey) == 0);
	ck_assert_msg(it->nbytes == strlen(value) && memcmp(item_value(it), value, it->nbytes) == 0,
	              "%s: holds \"%.*s\", want \"%s\"", key, (int)it->nbytes, item_value(it), value);
	ck_assert_uint_eq(it->flags, flags);
	if (cas != 0)
		ck_assert_uint_eq(it->cas, cas);
	cache_item_put(c, it);
}

/* In memory (cache_get, not the store: no checkpoint read). */
static void
expect_cached(struct env *e, const char *key, const char *value, uint32_t flags, uint64_t cas)
{
	check_item(e->c, cache_get(e->c, key, strlen(key)), key, value, flags, cas);
}

static void
expect_not_cached(struct env *e, const char *key)
{
	struct item *it = cache_get(e->c, key, strlen(key));

	ck_assert_msg(it == NULL, "%s: in memory with \"%.*s\", want none", key,
	              it ? (int)it->nbytes : 0, it ? item_value(it) : "");
}

static void
expect_store_miss(struct env *e, const char *key)
{
	struct item *it = store_get(e->s, key, strlen(key));

	ck_assert_msg(it == NULL, "%s: store_get found \"%.*s\", want a miss", key,
	              it ? (int)it->nbytes : 0, it ? item_value(it) : "");
}

static uint64_t
curr_items(struct cache *c)
{
	struct cache_stats st;

	cache_get_stats(c, &st);
	return st.curr_items;
}

static uint64_t
warmup_items(struct warmup *w)
{
	struct warmup_stats st;

	warmup_get_stats(w, &st);
	return st.items;
}

/******** 1. A KEY SET BEFORE THE LOADER KEEPS ITS NEWER VALUE ********/

START_TEST(test_set_during_warmup_keeps_newer_value)
{
	struct ckpt *ck = open_ckpt();
	struct env e;
	uint64_t cas;

	ckpt_put(ck, "a", "old-a", 1, 0, 10);
	ckpt_put(ck, "b", "old-b", 2, 0, 11);
	ckpt_put(ck, "c", "old-c", 3, 0, 12);
	e = env_open(ck, 64 << 20);

	ck_assert_int_eq(store_value(&e, "b", "new-b", 20, CACHE_SET, &cas), CACHE_STORED);
	ck_assert_uint_gt(cas, 12);
	run_loader(e.w);

	expect_cached(&e, "a", "old-a", 1, 10);
	expect_cached(&e, "b", "new-b", 20, cas);
	expect_cached(&e, "c", "old-c", 3, 12);
	ck_assert_uint_eq(curr_items(e.c), 3);
	ck_assert_uint_eq(warmup_items(e.w), 2);  /* "b" was not loaded */
	env_close(&e);
}
END_TEST

/******** 2. A KEY DELETED DURING WARM-UP STAYS DELETED ********/

START_TEST(test_delete_during_warmup_stays_deleted)
{
	struct ckpt *ck = open_ckpt();
	struct env e;

	ckpt_put(ck, "gone", "old", 0, 0, 5);
	ckpt_put(ck, "kept", "here", 0, 0, 6);
	e = env_open(ck, 64 << 20);

	/* The checkpoint's version is faulted in, so the delete finds it. */
	ck_assert_int_eq(store_delete(e.s, "gone", 4), CACHE_STORED);
	expect_store_miss(&e, "gone");
	ck_assert_int_eq(store_delete(e.s, "gone", 4), CACHE_NOT_FOUND);
	ck_assert_int_eq(store_delete(e.s, "never", 5), CACHE_NOT_FOUND);
	run_loader(e.w);

	expect_not_cached(&e, "gone");
	expect_store_miss(&e, "gone");
	expect_cached(&e, "kept", "here", 0, 6);
	ck_assert_uint_eq(curr_items(e.c), 1);
	env_close(&e);
}
END_TEST

/******** 3. A READ BEFORE THE LOADER SEES THE CHECKPOINT'S ITEM ********/

START_TEST(test_read_before_load_returns_checkpoint_item)
{
	struct ckpt *ck = open_ckpt();
	struct env e;
	struct item *it;

	ckpt_put(ck, "k", "ckpt-value", 0xdeadbeef, 0, 777);
	ckpt_put(ck, "other", "x", 0, 0, 778);
	e = env_open(ck, 64 << 20);

	expect_not_cached(&e, "k");
	it = store_get(e.s, "k", 1);
	/* A client read it: metadump says fetch=yes, as for any read. */
	ck_assert_msg(it != NULL && it->fetched, "an item read from the checkpoint is not "
	              "marked fetched");
	check_item(e.c, it, "k", "ckpt-value", 0xdeadbeef, 777);
	/* Now in memory: an add is refused and memory keeps the checkpoint's. */
	ck_assert_int_eq(store_value(&e, "k", "added", 0, CACHE_ADD, NULL), CACHE_NOT_STORED);
	expect_cached(&e, "k", "ckpt-value", 0xdeadbeef, 777);
	/* An add of a key the checkpoint does not hold succeeds. */
	ck_assert_int_eq(store_value(&e, "fresh", "f", 0, CACHE_ADD, NULL), CACHE_STORED);
	run_loader(e.w);

	expect_cached(&e, "k", "ckpt-value", 0xdeadbeef, 777);
	expect_cached(&e, "other", "x", 0, 778);
	expect_cached(&e, "fresh", "f", 0, 0);
	ck_assert_uint_eq(curr_items(e.c), 3);
	/* "k" was brought in once, by the read; the loader left it alone. */
	ck_assert_uint_eq(warmup_items(e.w), 2);
	env_close(&e);
}
END_TEST

/******** 4. EXPIRED CHECKPOINT ITEMS ARE NEVER LOADED ********/

START_TEST(test_expired_items_never_loaded)
{
	struct ckpt *ck = open_ckpt();
	uint32_t now = cache_now();
	struct env e;

	ckpt_put(ck, "dead1", "x", 0, now - 1000, 1);
	ckpt_put(ck, "dead2", "x", 0, now - 1, 2);
	ckpt_put(ck, "dead3", "x", 0, 1, 3);
	ckpt_put(ck, "dead4", "x", 0, now - 50, 4);
	ckpt_put(ck, "live1", "y", 0, now + 3600, 5);
	ckpt_put(ck, "live2", "z", 0, 0, 6);
	ckpt_put(ck, "live3", "w", 0, now + 3600, 7);
	e = env_open(ck, 64 << 20);

	expect_store_miss(&e, "dead1");
	expect_store_miss(&e, "dead2");
	ck_assert_int_eq(store_delete(e.s, "dead4", 5), CACHE_NOT_FOUND);
	check_item(e.c, store_get(e.s, "live1", 5), "live1", "y", 0, 5);
	run_loader(e.w);

	for (int i = 1; i <= 4; i++) {
		char key[8];

		snprintf(key, sizeof(key), "dead%d", i);
		expect_not_cached(&e, key);
		expect_store_miss(&e, key);
	}
	expect_cached(&e, "live1", "y", 0, 5);
	expect_cached(&e, "live2", "z", 0, 6);
	expect_cached(&e, "live3", "w", 0, 7);
	ck_assert_uint_eq(curr_items(e.c), 3);
	ck_assert_uint_eq(warmup_items(e.w), 3);
	env_close(&e);
}
END_TEST

/******** 5. AN IMMEDIATE FLUSH_ALL ENDS THE WARM-UP ********/

START_TEST(test_flush_ends_warmup_and_hides_checkpoint)
{
	struct ckpt *ck = open_ckpt();
	struct env e;

	ckpt_put(ck, "a", "1", 0, 0, 100);
	ckpt_put(ck, "b", "2", 0, 0, 101);
	ckpt_put(ck, "c", "3", 0, 0, 102);
	e = env_open(ck, 64 << 20);

	/* "a" is in memory already (read), "b" set anew, "c" checkpoint-only. */
	check_item(e.c, store_get(e.s, "a", 1), "a", "1", 0, 100);
	ck_assert_int_eq(store_value(&e, "b", "new", 0, CACHE_SET, NULL), CACHE_STORED);
	store_flush(e.s, 0);
	ck_assert(!warmup_loading(e.w));
	/* Started after the flush: nothing to load. */
	ck_assert_int_eq(warmup_start(e.w), 0);
	ck_assert(!warmup_loading(e.w));
	expect_store_miss(&e, "a");
	expect_store_miss(&e, "b");
	expect_store_miss(&e, "c");
	ck_assert_int_eq(store_value(&e, "after", "v", 7, CACHE_SET, NULL), CACHE_STORED);
	check_item(e.c, store_get(e.s, "after", 5), "after", "v", 7, 0);
	/* An add of a flushed checkpoint key is a fresh add. */
	ck_assert_int_eq(store_value(&e, "c", "c2", 0, CACHE_ADD, NULL), CACHE_STORED);
	expect_cached(&e, "c", "c2", 0, 0);
	ck_assert_uint_eq(curr_items(e.c), 2);
	env_close(&e);
}
END_TEST

static size_t
short_value(char *buf, size_t len, unsigned i)
{
	return (size_t)snprintf(buf, len, "v%u", i);
}

/* The same, with the flush racing a running loader (whatever it loaded
 * before the flush is dead: its CAS is below the flush's threshold). */
START_TEST(test_flush_while_loader_runs)
{
	struct ckpt *ck = open_ckpt();
	struct env e;
	char key[16];
	int i;

	ckpt_put_many(ck, 100000, short_value);
	e = env_open(ck, 256 << 20);
	ck_assert_int_eq(warmup_start(e.w), 0);
	usleep(2000);
	store_flush(e.s, 0);
	ck_assert(!warmup_loading(e.w));
	warmup_stop(e.w);  /* joins the loaders */
	for (i = 0; i < 100000; i += 997) {
		snprintf(key, sizeof(key), "key:%08u", i);
		expect_store_miss(&e, key);
	}
	expect_store_miss(&e, "key:00099999");
	ck_assert_int_eq(store_value(&e, "key:00000000", "after", 0, CACHE_SET, NULL), CACHE_STORED);
	check_item(e.c, store_get(e.s, "key:00000000", 12), "key:00000000", "after", 0, 0);
	env_close(&e);
}
END_TEST

/******** 6. INCR AND APPEND START FROM THE CHECKPOINT'S VALUE ********/

START_TEST(test_incr_and_append_use_checkpoint_value)
{
	struct ckpt *ck = open_ckpt();
	struct env e;
	uint64_t result = 0;

	ckpt_put(ck, "n", "41", 0, 0, 1);
	ckpt_put(ck, "m", "100", 0, 0, 2);
	ckpt_put(ck, "s", "abc", 9, 0, 3);
	ckpt_put(ck, "p", "xyz", 8, 0, 4);
	e = env_open(ck, 64 << 20);

	ck_assert_int_eq(store_incr(e.s, "n", 1, true, 1, &result), CACHE_STORED);
	ck_assert_uint_eq(result, 42);
	ck_assert_int_eq(store_incr(e.s, "m", 1, false, 30, &result), CACHE_STORED);
	ck_assert_uint_eq(result, 70);
	ck_assert_int_eq(store_value(&e, "s", "def", 0, CACHE_APPEND, NULL), CACHE_STORED);
	ck_assert_int_eq(store_value(&e, "p", "uvw", 0, CACHE_PREPEND, NULL), CACHE_STORED);
	ck_assert_int_eq(store_value(&e, "nothing", "q", 0, CACHE_APPEND, NULL), CACHE_NOT_STORED);
	ck_assert_int_eq(store_incr(e.s, "nothing2", 8, true, 1, &result), CACHE_NOT_FOUND);
	run_loader(e.w);

	expect_cached(&e, "n", "42", 0, 0);
	/* Shorter after decr: padded with spaces in place, as memcached does. */
	expect_cached(&e, "m", "70 ", 0, 0);
	expect_cached(&e, "s", "abcdef", 9, 0);
	expect_cached(&e, "p", "uvwxyz", 8, 0);
	expect_not_cached(&e, "nothing");
	expect_not_cached(&e, "nothing2");
	ck_assert_uint_eq(curr_items(e.c), 4);
	env_close(&e);
}
END_TEST

/******** 7. THE REPLAYED WAL TAIL IS NOT UNDONE BY THE LOADER ********/

START_TEST(test_replayed_changes_not_undone)
{
	struct ckpt *ck = open_ckpt();
	struct env e;
	struct cache_change del = {.type = CACHE_CHANGE_DELETE, .key = "del", .nkey = 3};
	struct cache_change set = {
		.type = CACHE_CHANGE_SET, .key = "upd", .nkey = 3, .flags = 4,
		.cas = 900, .value = "replayed", .nbytes = 8,
	};
	struct cache_change add = {
		.type = CACHE_CHANGE_SET, .key = "new", .nkey = 3, .flags = 5,
		.cas = 901, .value = "born", .nbytes = 4,
	};

	ckpt_put(ck, "del", "old", 0, 0, 50);
	ckpt_put(ck, "upd", "old", 0, 0, 51);
	ckpt_put(ck, "same", "kept", 0, 0, 52);
	e = env_open(ck, 64 << 20);

	store_replay_change(e.s, &del);
	store_replay_change(e.s, &set);
	store_replay_change(e.s, &add);
	run_loader(e.w);

	expect_not_cached(&e, "del");
	expect_store_miss(&e, "del");
	expect_cached(&e, "upd", "replayed", 4, 900);
	expect_cached(&e, "new", "born", 5, 901);
	expect_cached(&e, "same", "kept", 0, 52);
	ck_assert_uint_eq(curr_items(e.c), 3);
	ck_assert_uint_eq(warmup_items(e.w), 1);
	env_close(&e);
}
END_TEST

/* A TOUCH in the WAL tail of a key only the checkpoint holds brings the
 * item in during the replay: it is then in memory, counted with the
 * replayed items, and the warm-up says so (items_at_start), for persist's
 * recovered_items = curr_items after the replay + items - items_at_start. */
START_TEST(test_replayed_touch_counted_once)
{
	struct ckpt *ck = open_ckpt();
	struct env e;
	struct cache_change touch = {
		.type = CACHE_CHANGE_TOUCH, .key = "touched", .nkey = 7, .exptime = 0,
	};
	struct warmup_stats ws;
	uint64_t after_replay;

	ckpt_put(ck, "touched", "old", 3, cache_now() + 3600, 60);
	ckpt_put(ck, "other", "kept", 0, 0, 61);
	e = env_open(ck, 64 << 20);

	store_replay_change(e.s, &touch);
	after_replay = curr_items(e.c);
	ck_assert_uint_eq(after_replay, 1);
	run_loader(e.w);

	expect_cached(&e, "touched", "old", 3, 60);
	expect_cached(&e, "other", "kept", 0, 61);
	ck_assert_uint_eq(curr_items(e.c), 2);
	warmup_get_stats(e.w, &ws);
	ck_assert_uint_eq(ws.items, 2);
	ck_assert_uint_eq(ws.items_at_start, 1);
	ck_assert_uint_eq(after_replay + ws.items - ws.items_at_start, curr_items(e.c));
	env_close(&e);
}
END_TEST

/******** 8. NEW CAS UNIQUES ARE ABOVE THE CHECKPOINT'S ********/

START_TEST(test_new_cas_above_checkpoint_max)
{
	struct ckpt *ck = open_ckpt();
	struct env e;
	uint64_t cas = 0, cas2 = 0, max;

	ckpt_put(ck, "low", "1", 0, 0, 3);
	ckpt_put(ck, "high", "2", 0, 0, 5000000);
	ckpt_put(ck, "mid", "3", 0, 0, 40);
	max = ckpt_max_cas(ck);
	ck_assert_uint_eq(max, 5000000);
	e = env_open(ck, 64 << 20);

	ck_assert_int_eq(store_value(&e, "fresh", "v", 0, CACHE_SET, &cas), CACHE_STORED);
	ck_assert_uint_gt(cas, max);
	/* Overwriting a checkpoint key too. */
	ck_assert_int_eq(store_value(&e, "low", "w", 0, CACHE_SET, &cas2), CACHE_STORED);
	ck_assert_uint_gt(cas2, max);
	ck_assert_uint_ne(cas2, cas);
	run_loader(e.w);
	expect_cached(&e, "high", "2", 0, 5000000);
	expect_cached(&e, "low", "w", 0, cas2);
	expect_cached(&e, "fresh", "v", 0, cas);
	env_close(&e);
}
END_TEST

/******** 9. SPLITTING THE KEY RANGE BETWEEN LOADERS ********/

/* memcmp order, the shorter first on a tie (LMDB's default). */
static int
key_cmp(const char *a, size_t na, const char *b, size_t nb)
{
	int r = memcmp(a, b, na < nb ? na : nb);

	return r != 0 ? r : na < nb ? -1 : na > nb ? 1 : 0;
}

static void
check_splits(const char *first, size_t nfirst, const char *last, size_t nlast, unsigned n)
{
	char splits[8][CACHE_KEY_MAX];
	size_t nsplit[8];
	unsigned got;

	ck_assert_uint_le(n, 9);
	got = warmup_split_keys(first, nfirst, last, nlast, n, splits, nsplit);
	ck_assert_uint_eq(got, n);
	for (unsigned i = 0; i + 1 < got; i++) {
		ck_assert_uint_ge(nsplit[i], 1);
		ck_assert_uint_le(nsplit[i], CACHE_KEY_MAX);
		ck_assert_msg(key_cmp(first, nfirst, splits[i], nsplit[i]) < 0,
		              "n=%u: split %u not above first", n, i);
		ck_assert_msg(key_cmp(splits[i], nsplit[i], last, nlast) < 0,
		              "n=%u: split %u not below last", n, i);
		if (i > 0)
			ck_assert_msg(key_cmp(splits[i - 1], nsplit[i - 1], splits[i], nsplit[i]) < 0,
			              "n=%u: splits %u and %u not increasing", n, i - 1, i);
	}
}

START_TEST(test_split_keys)
{
	const char *first = "key:00000000", *last = "key:00999999";
	char splits[8][CACHE_KEY_MAX];
	size_t nsplit[8];
	char a[CACHE_KEY_MAX], b[CACHE_KEY_MAX];

	check_splits(first, 12, last, 12, 2);
	check_splits(first, 12, last, 12, 3);
	check_splits(first, 12, last, 12, 4);
	/* Keys of different lengths, one a prefix of the other. */
	check_splits("user", 4, "user:99999999", 13, 4);
	check_splits("a", 1, "z", 1, 4);
	/* The split of "key:%08u" keys lands about half way. */
	ck_assert_uint_eq(warmup_split_keys(first, 12, last, 12, 2, splits, nsplit), 2);
	ck_assert_msg(key_cmp(splits[0], nsplit[0], "key:00400000", 12) > 0 &&
	              key_cmp(splits[0], nsplit[0], "key:00600000", 12) < 0,
	              "split %.*s not near the middle", (int)nsplit[0], splits[0]);

	/* No room to split. */
	ck_assert_uint_eq(warmup_split_keys(first, 12, first, 12, 2, splits, nsplit), 1);
	ck_assert_uint_eq(warmup_split_keys(first, 12, first, 12, 4, splits, nsplit), 1);
	ck_assert_uint_eq(warmup_split_keys(first, 12, last, 12, 1, splits, nsplit), 1);
	memset(a, 'p', sizeof(a));
	memcpy(b, a, sizeof(b));
	a[245] = 'a';
	b[245] = 'z';
	/* A common prefix of 245 bytes leaves 5 of 250: under 8. */
	ck_assert_uint_eq(warmup_split_keys(a, 250, b, 250, 2, splits, nsplit), 1);
	ck_assert_uint_eq(warmup_split_keys(a, 250, b, 250, 4, splits, nsplit), 1);
	/* 243 bytes leave 7. */
	a[243] = 'a';
	b[243] = 'z';
	ck_assert_uint_eq(warmup_split_keys(a, 246, b, 246, 2, splits, nsplit), 1);
	/* 242 leave 8: room enough. */
	memset(a, 'p', sizeof(a));
	memcpy(b, a, sizeof(b));
	a[242] = 'a';
	b[242] = 'z';
	check_splits(a, 250, b, 250, 2);
}
END_TEST

/******** 10. SEVERAL LOADERS LOAD EVERY ITEM EXACTLY ONCE ********/

static size_t
value_of_i(char *buf, size_t len, unsigned i)
{
	return (size_t)snprintf(buf, len, "value-%u-%u", i, i * 2654435761u);
}

START_TEST(test_loaders_load_every_item_once)
{
	enum { N = 200000 };
	struct ckpt *ck = open_ckpt();
	struct env e;
	struct warmup_stats ws;
	char key[16], value[64];

	ckpt_put_many(ck, N, value_of_i);
	ck_assert_uint_eq(ckpt_item_count(ck), N);
	e = env_open(ck, 512 << 20);
	run_loader(e.w);

	ck_assert_uint_eq(curr_items(e.c), N);
	warmup_get_stats(e.w, &ws);
	ck_assert(!ws.loading);
	ck_assert_uint_eq(ws.items, N);
	for (unsigned i = 0; i < N; i += 613) {
		snprintf(key, sizeof(key), "key:%08u", i);
		value_of_i(value, sizeof(value), i);
		expect_cached(&e, key, value, i, (uint64_t)i + 1);
	}
	snprintf(key, sizeof(key), "key:%08u", N - 1);
	value_of_i(value, sizeof(value), N - 1);
	expect_cached(&e, key, value, N - 1, N);
	expect_not_cached(&e, "key:00200000");
	env_close(&e);
}
END_TEST

/******** MORE: GAT AND CAS ON A CHECKPOINT-ONLY KEY; WRITES RACING THE LOADER ********/

/* get-and-touch and a cas-store depend on the old item too: both see the
 * checkpoint's before the loader has run, and the loader keeps off them. */
START_TEST(test_gat_and_cas_on_checkpoint_only_keys)
{
	struct ckpt *ck = open_ckpt();
	uint32_t later = cache_now() + 7200;
	struct env e;
	struct item *it;
	uint64_t cas = 0;

	ckpt_put(ck, "t", "touched", 3, 0, 60);
	ckpt_put(ck, "c", "old", 4, 0, 61);
	ckpt_put(ck, "x", "stale-cas", 5, 0, 62);
	e = env_open(ck, 64 << 20);

	it = store_get_and_touch(e.s, "t", 1, later);
	ck_assert_ptr_nonnull(it);
	ck_assert_uint_eq(it->exptime, later);
	check_item(e.c, it, "t", "touched", 3, 60);
	it = store_get_and_touch(e.s, "none", 4, later);
	ck_assert_ptr_null(it);
	/* A cas with the checkpoint's unique, the key not loaded yet. */
	it = cache_item_create(e.c, "c", 1, 4, 0, 3);
	ck_assert_ptr_nonnull(it);
	memcpy(item_value(it), "new", 3);
	ck_assert_int_eq(store_store(e.s, it, CACHE_CAS, 61, &cas), CACHE_STORED);
	cache_item_put(e.c, it);
	/* A cas with a wrong unique: EXISTS (the key is there), not NOT_FOUND. */
	it = cache_item_create(e.c, "x", 1, 5, 0, 3);
	ck_assert_ptr_nonnull(it);
	memcpy(item_value(it), "bad", 3);
	ck_assert_int_eq(store_store(e.s, it, CACHE_CAS, 1, NULL), CACHE_EXISTS);
	cache_item_put(e.c, it);
	run_loader(e.w);

	it = cache_get(e.c, "t", 1);
	ck_assert_ptr_nonnull(it);
	ck_assert_uint_eq(it->exptime, later);
	check_item(e.c, it, "t", "touched", 3, 60);
	expect_cached(&e, "c", "new", 4, cas);
	expect_cached(&e, "x", "stale-cas", 5, 62);
	ck_assert_uint_eq(curr_items(e.c), 3);
	env_close(&e);
}
END_TEST

/* Sets, deletes and reads while the loaders run (no ordering forced): the
 * final contents are what the writes say, whichever came first. */
START_TEST(test_writes_racing_the_loader_win)
{
	enum { N = 150000 };
	struct ckpt *ck = open_ckpt();
	struct env e;
	char key[16], value[64];
	unsigned deleted = 0, during = 0, bad = 0;
	char first_bad[128] = "";
	struct item *it;

	ckpt_put_many(ck, N, value_of_i);
	e = env_open(ck, 512 << 20);
	ck_assert_int_eq(warmup_start(e.w), 0);
	for (unsigned i = 0; i < N; i++) {
		if (i % 7 != 0 && i % 11 != 0 && i % 13 != 0)
			continue;
		if (warmup_loading(e.w))
			during++;
		snprintf(key, sizeof(key), "key:%08u", i);
		if (i % 13 == 0) {
			value_of_i(value, sizeof(value), i);
			check_item(e.c, store_get(e.s, key, 12), key, value, i, (uint64_t)i + 1);
		}
		if (i % 7 == 0) {
			snprintf(value, sizeof(value), "w%u", i);
			ck_assert_int_eq(store_value(&e, key, value, 1, CACHE_SET, NULL), CACHE_STORED);
		} else if (i % 11 == 0) {
			ck_assert_msg(store_delete(e.s, key, 12) == CACHE_STORED, "%s: delete missed", key);
			deleted++;
		}
	}
	for (int i = 0; i < 10000 && warmup_loading(e.w); i++)
		usleep(1000);
	ck_assert(!warmup_loading(e.w));
	ck_assert_msg(during > 0, "no write happened while loading");

	/* Every key checked; one assertion at the end (each ck_assert costs a
	 * write to Check's pipe). */
	for (unsigned i = 0; i < N; i++) {
		bool ok;

		snprintf(key, sizeof(key), "key:%08u", i);
		it = cache_get(e.c, key, 12);
		if (i % 7 == 0) {
			snprintf(value, sizeof(value), "w%u", i);
			ok = it != NULL && it->flags == 1;
		} else if (i % 11 == 0) {
			ok = it == NULL;
		} else {
			value_of_i(value, sizeof(value), i);
			ok = it != NULL && it->flags == i && it->cas == (uint64_t)i + 1;
		}
		if (ok && it != NULL)
			ok = it->nbytes == strlen(value) && memcmp(item_value(it), value, it->nbytes) == 0;
		if (!ok && bad++ == 0)
			snprintf(first_bad, sizeof(first_bad), "%s: holds \"%.*s\" (flags %u)", key,
			         it ? (int)it->nbytes : 4, it ? item_value(it) : "none",
			         it ? it->flags : 0);
		cache_item_put(e.c, it);
	}
	ck_assert_msg(bad == 0, "%u keys wrong, first %s", bad, first_bad);
	ck_assert_uint_eq(curr_items(e.c), N - deleted);
	env_close(&e);
}
END_TEST

/******** 11. MEMORY FULL: THE WARM-UP ENDS WITHOUT EVICTING ********/

static size_t
value_100(char *buf, size_t len, unsigned i)
{
	ck_assert_uint_gt(len, 100);
	memset(buf, 'a' + (char)(i % 26), 100);
	return 100;
}

START_TEST(test_memory_full_ends_warmup)
{
	enum { N = 100000 };
	const size_t limit = 2 << 20;
	struct ckpt *ck = open_ckpt();
	struct env e;
	struct cache_stats cs;
	struct warmup_stats ws;

	ckpt_put_many(ck, N, value_100);
	e = env_open(ck, limit);
	run_loader(e.w);
	/* The loader that found memory full ended the warm-up; the other may
	 * still be putting its last batch: join both before counting. */
	warmup_stop(e.w);

	warmup_get_stats(e.w, &ws);
	cache_get_stats(e.c, &cs);
	ck_assert(!ws.loading);
	ck_assert_uint_gt(ws.items, 0);
	ck_assert_uint_lt(ws.items, N);
	ck_assert_uint_eq(cs.curr_items, ws.items);
	ck_assert_uint_eq(cs.evictions, 0);
	/* Loaders check the limit and then add to mem_used, so loader
	 * threads allocating at the same moment may each overshoot it by one
	 * item (cache.h says so of every allocation); there are at most 4. */
	ck_assert_msg(cs.mem_used <= limit + 4 * cache_item_size(12, 100),
	              "mem_used %" PRIu64 " over the limit %zu by %" PRIu64 " (an item takes %zu)",
	              cs.mem_used, limit, cs.mem_used - limit, cache_item_size(12, 100));
	/* Still a working cache: a set evicts to make room. */
	ck_assert_int_eq(store_value(&e, "after", "v", 0, CACHE_SET, NULL), CACHE_STORED);
	expect_cached(&e, "after", "v", 0, 0);
	env_close(&e);
}
END_TEST

static Suite *
warmup_suite(void)
{
	Suite *s = suite_create("warmup");
	TCase *tc = tcase_create("warmup");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_set_during_warmup_keeps_newer_value);
	tcase_add_test(tc, test_delete_during_warmup_stays_deleted);
	tcase_add_test(tc, test_read_before_load_returns_checkpoint_item);
	tcase_add_test(tc, test_expired_items_never_loaded);
	tcase_add_test(tc, test_flush_ends_warmup_and_hides_checkpoint);
	tcase_add_test(tc, test_flush_while_loader_runs);
	tcase_add_test(tc, test_incr_and_append_use_checkpoint_value);
	tcase_add_test(tc, test_replayed_changes_not_undone);
	tcase_add_test(tc, test_replayed_touch_counted_once);
	tcase_add_test(tc, test_new_cas_above_checkpoint_max);
	tcase_add_test(tc, test_split_keys);
	tcase_add_test(tc, test_loaders_load_every_item_once);
	tcase_add_test(tc, test_memory_full_ends_warmup);
	tcase_add_test(tc, test_gat_and_cas_on_checkpoint_only_keys);
	tcase_add_test(tc, test_writes_racing_the_loader_win);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	return run_suite_in_tmpdir(warmup_suite(), "warmup", basedir, sizeof(basedir));
}
