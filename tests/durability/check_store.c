/* Unit tests for storage/store.c, the one path from a change to memory and
 * the WAL, on a real WAL in a temp dir:
 *   - a follower logs every record it is sent, whatever its memory holds
 *     (delete/touch/evict of a key it never had, a SET too big for it), so
 *     its LSN reaches its primary's;
 *   - a follower refuses records once promoted (-EPERM) and records that do
 *     not continue its log (-EILSEQ);
 *   - a leader logs an EVICT for each key it evicted, unless the key was
 *     stored again meanwhile.
 * Each test makes and removes its own temp dir; loops are bounded. */
#include "tests/durability/testfs.h"

#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "storage/cache.h"
#include "storage/store.h"
#include "storage/wal.h"

static char basedir[64];
static char tmpdir[256];

static void
setup_dir(void)
{
	make_test_dir(tmpdir, sizeof(tmpdir), basedir);
}

static void
teardown_dir(void)
{
	rm_rf(tmpdir);
}

static struct wal *
open_wal(uint64_t next_lsn)
{
	struct wal_config cfg = {.data_dir = tmpdir, .fsync = WAL_FSYNC_NO, .segment_size = 1 << 20};
	struct wal *w = NULL;

	ck_assert_int_eq(wal_open(&cfg, next_lsn, 1, NULL, NULL, &w), 0);
	return w;
}

/* Every record recovered from the log, in order. */
struct logged {
	size_t n;
	uint64_t lsn[4096];
	enum cache_change_type type[4096];
	char key[4096][16];
};

static void
collect(void *arg, const struct wal_record *rec)
{
	struct logged *l = arg;

	ck_assert_uint_lt(l->n, 4096);
	l->lsn[l->n] = rec->lsn;
	l->type[l->n] = rec->change.type;
	snprintf(l->key[l->n], sizeof(l->key[0]), "%.*s", (int)rec->change.nkey,
	         rec->change.key ? rec->change.key : "");
	l->n++;
}

static struct logged *
read_log(void)
{
	struct logged *l = calloc(1, sizeof(*l));
	struct wal_recovery rec;

	ck_assert_ptr_nonnull(l);
	ck_assert_int_eq(wal_recover(tmpdir, 0, collect, l, &rec), 0);
	return l;
}

static struct wal_record
record(uint64_t lsn, enum cache_change_type type, const char *key, const char *value)
{
	struct wal_record r = {.lsn = lsn, .epoch = 3};

	r.change.type = type;
	r.change.key = key;
	r.change.nkey = key ? strlen(key) : 0;
	if (type == CACHE_CHANGE_SET) {
		r.change.value = value;
		r.change.nbytes = (uint32_t)strlen(value);
		r.change.cas = lsn;
	}
	return r;
}

/* The bug this guards: a replica that had evicted a key skipped the
 * primary's DELETE of it (nothing changed in memory, so nothing was logged),
 * its WAL skipped that LSN, and the next record was refused as a gap. */
START_TEST(test_follower_logs_changes_to_absent_keys)
{
	struct cache *c = test_cache(64 << 20);
	struct store *s = store_create(c);
	struct wal *w = open_wal(1);
	struct wal_record r;
	struct logged *l;

	store_set_follower(s, true);
	store_attach_log(s, w);
	r = record(1, CACHE_CHANGE_DELETE, "never-had", NULL);
	ck_assert_int_eq(store_apply_record(s, &r, false), 0);
	r = record(2, CACHE_CHANGE_TOUCH, "never-had", NULL);
	ck_assert_int_eq(store_apply_record(s, &r, false), 0);
	r = record(3, CACHE_CHANGE_EVICT, "never-had", NULL);
	ck_assert_int_eq(store_apply_record(s, &r, false), 0);
	r = record(4, CACHE_CHANGE_SET, "k", "v");
	ck_assert_int_eq(store_apply_record(s, &r, false), 0);
	ck_assert_uint_eq(wal_last_lsn(w), 4);
	ck_assert_uint_eq(store_take_thread_lsn(), 4);
	/* Not the next LSN: refused, nothing logged. */
	r = record(6, CACHE_CHANGE_SET, "k", "v");
	ck_assert_int_eq(store_apply_record(s, &r, false), -EILSEQ);
	ck_assert_uint_eq(wal_last_lsn(w), 4);
	/* Promoted: a late record of the old primary is not ours. */
	store_set_follower(s, false);
	r = record(5, CACHE_CHANGE_SET, "k", "late");
	ck_assert_int_eq(store_apply_record(s, &r, false), -EPERM);
	store_attach_log(s, NULL);
	wal_close(w);

	l = read_log();
	ck_assert_uint_eq(l->n, 4);
	for (size_t i = 0; i < 4; i++)
		ck_assert_uint_eq(l->lsn[i], i + 1);
	ck_assert_int_eq(l->type[0], CACHE_CHANGE_DELETE);
	ck_assert_int_eq(l->type[3], CACHE_CHANGE_SET);
	free(l);
	store_destroy(s);
	cache_destroy(c);
}
END_TEST

/* A SET the follower's memory cannot hold is still logged. */
START_TEST(test_follower_logs_a_set_memory_cannot_hold)
{
	struct cache *c = test_cache(16 << 10);
	struct store *s = store_create(c);
	struct wal *w = open_wal(10);
	char *big = malloc(64 << 10);
	struct wal_record r;
	struct item *it;

	memset(big, 'x', (64 << 10) - 1);
	big[(64 << 10) - 1] = '\0';
	store_set_follower(s, true);
	store_attach_log(s, w);
	r = record(10, CACHE_CHANGE_SET, "huge", big);
	ck_assert_int_eq(store_apply_record(s, &r, false), 0);
	ck_assert_uint_eq(wal_last_lsn(w), 10);
	it = cache_get(c, "huge", 4);
	ck_assert_ptr_null(it);
	store_attach_log(s, NULL);
	wal_close(w);
	store_destroy(s);
	cache_destroy(c);
	free(big);
}
END_TEST

static void
put(struct store *s, struct cache *c, const char *key, size_t nbytes)
{
	struct item *it = cache_item_create(c, key, strlen(key), 0, 0, (uint32_t)nbytes);

	ck_assert_ptr_nonnull(it);
	memset(item_value(it), 'v', nbytes);
	ck_assert_int_eq(store_store(s, it, CACHE_SET, 0, NULL), CACHE_STORED);
	cache_item_put(c, it);
}

/* A leader logs what it evicts, so that a restart and its replicas drop it
 * too; a key stored again after its eviction is not logged as evicted. */
START_TEST(test_leader_logs_evictions)
{
	struct cache *c = test_cache(64 << 10);
	struct store *s = store_create(c);
	struct wal *w = open_wal(1);
	struct logged *l;
	size_t sets = 0, evicts = 0, i;
	char key[16];

	store_attach_log(s, w);
	for (i = 0; i < 64; i++) {
		snprintf(key, sizeof(key), "k%zu", i);
		put(s, c, key, 4000);
	}
	store_attach_log(s, NULL);
	wal_close(w);

	l = read_log();
	for (i = 0; i < l->n; i++) {
		ck_assert_uint_eq(l->lsn[i], i + 1);
		if (l->type[i] == CACHE_CHANGE_SET)
			sets++;
		if (l->type[i] == CACHE_CHANGE_EVICT) {
			evicts++;
			/* never the key that is in memory now */
			ck_assert_msg(!cache_contains(c, l->key[i], strlen(l->key[i])),
			              "EVICT logged for %s, which is in memory", l->key[i]);
		}
	}
	ck_assert_uint_eq(sets, 64);
	ck_assert_uint_gt(evicts, 0);
	free(l);
	store_destroy(s);
	cache_destroy(c);
}
END_TEST

static Suite *
store_suite(void)
{
	Suite *s = suite_create("store");
	TCase *tc = tcase_create("store");

	tcase_add_checked_fixture(tc, setup_dir, teardown_dir);
	tcase_set_timeout(tc, 90);
	tcase_add_test(tc, test_follower_logs_changes_to_absent_keys);
	tcase_add_test(tc, test_follower_logs_a_set_memory_cannot_hold);
	tcase_add_test(tc, test_leader_logs_evictions);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	return run_suite_in_tmpdir(store_suite(), "store", basedir, sizeof(basedir));
}
