/* Unit tests for storage/ckpt.c: the LMDB checkpoint.  Apply a batch, scan
 * it back (flags, exptime, cas, value), the applied LSN (stored in the same
 * transaction, kept across a reopen, untouched by a failed batch), every
 * record type, the items' meta marks (kept, and a format 1 checkpoint
 * written before them upgraded on open), map growth past the initial 256
 * MB map, purging expired items, and refusing a garbage data.mdb with
 * -EINVAL.  Each test uses its
 * own temp data dir. */
#include "tests/durability/testfs.h"
#include "storage/ckpt.h"

#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <lmdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "storage/cache.h"

/* Every test's dir lives under basedir, made by main() and removed by it
 * after all tests ran (a failed check exits the forked test before its
 * teardown could remove its own dir). */
static char basedir[128];
static char tmpdir[256];
static struct ckpt *ck;

static void
setup(void)
{
	make_test_dir(tmpdir, sizeof(tmpdir), basedir);
	ck = NULL;
}

static void
teardown(void)
{
	ckpt_close(ck);
	ck = NULL;
	rm_rf(tmpdir);
}

static void
open_ckpt(void)
{
	ck = NULL;
	ck_assert_int_eq(ckpt_open(tmpdir, &ck), 0);
	ck_assert_ptr_nonnull(ck);
}

static struct wal_record
rec_set(uint64_t lsn, const char *key, const char *value, uint32_t flags, uint32_t exptime,
        uint64_t cas)
{
	struct wal_record r = {.lsn = lsn, .epoch = 1};

	r.change.type = CACHE_CHANGE_SET;
	r.change.key = key;
	r.change.nkey = strlen(key);
	r.change.flags = flags;
	r.change.exptime = exptime;
	r.change.cas = cas;
	r.change.value = value;
	r.change.nbytes = (uint32_t)strlen(value);
	return r;
}

static struct wal_record
rec_keyed(uint64_t lsn, enum cache_change_type type, const char *key, uint32_t exptime)
{
	struct wal_record r = {.lsn = lsn, .epoch = 1};

	r.change.type = type;
	r.change.key = key;
	r.change.nkey = key ? strlen(key) : 0;
	r.change.exptime = exptime;
	return r;
}

/* What a scan returned, by key. */
#define ITEMS_MAX 512
struct scanned {
	size_t n;
	char key[ITEMS_MAX][64];
	char value[ITEMS_MAX][64];
	uint32_t nbytes[ITEMS_MAX];
	uint32_t flags[ITEMS_MAX], exptime[ITEMS_MAX];
	uint64_t cas[ITEMS_MAX];
	uint8_t marks[ITEMS_MAX];
	int bad_value;             /* large values: content mismatch seen */
};

static const char *big_a, *big_b;   /* large values of the growth test */
static size_t big_len;

static int
scan_fn(void *arg, const struct cache_change *set)
{
	struct scanned *s = arg;

	ck_assert_int_eq(set->type, CACHE_CHANGE_SET);
	ck_assert_uint_lt(s->n, ITEMS_MAX);
	snprintf(s->key[s->n], sizeof(s->key[0]), "%.*s", (int)set->nkey, set->key);
	snprintf(s->value[s->n], sizeof(s->value[0]), "%.*s", (int)set->nbytes, set->value);
	s->nbytes[s->n] = set->nbytes;
	s->flags[s->n] = set->flags;
	s->exptime[s->n] = set->exptime;
	s->cas[s->n] = set->cas;
	s->marks[s->n] = set->marks;
	if (big_len != 0 && set->nbytes == big_len) {
		const char *want = set->key[set->nkey - 1] % 2 ? big_a : big_b;

		if (memcmp(set->value, want, big_len) != 0)
			s->bad_value = 1;
	}
	s->n++;
	return 0;
}

static struct scanned *
scan_of(struct ckpt *c, uint64_t *applied)
{
	struct scanned *s = calloc(1, sizeof(*s));

	ck_assert_ptr_nonnull(s);
	ck_assert_int_eq(ckpt_scan(c, scan_fn, s, applied), 0);
	return s;
}

static struct scanned *
scan(uint64_t *applied)
{
	return scan_of(ck, applied);
}

static int
find(const struct scanned *s, const char *key)
{
	for (size_t i = 0; i < s->n; i++)
		if (strcmp(s->key[i], key) == 0)
			return (int)i;
	return -1;
}

START_TEST(test_apply_and_scan)
{
	struct wal_record recs[] = {
		rec_set(1, "alpha", "value-a", 0xdeadbeefu, 1900000000u, 0x0102030405060708ull),
		rec_set(2, "beta", "", 0, 0, 2),
		rec_set(3, "gamma", "g", 7, 0, UINT64_MAX),
	};
	struct scanned *s;
	uint64_t applied = 99;
	int i;

	open_ckpt();
	ck_assert_uint_eq(ckpt_applied_lsn(ck), 0);
	s = scan(&applied);
	ck_assert_uint_eq(s->n, 0);
	ck_assert_uint_eq(applied, 0);
	free(s);

	ck_assert_int_eq(ckpt_apply(ck, recs, 3), 0);
	ck_assert_uint_eq(ckpt_applied_lsn(ck), 3);
	s = scan(&applied);
	ck_assert_uint_eq(applied, 3);
	ck_assert_uint_eq(s->n, 3);
	i = find(s, "alpha");
	ck_assert_int_ge(i, 0);
	ck_assert_str_eq(s->value[i], "value-a");
	ck_assert_uint_eq(s->flags[i], 0xdeadbeefu);
	ck_assert_uint_eq(s->exptime[i], 1900000000u);
	ck_assert_uint_eq(s->cas[i], 0x0102030405060708ull);
	i = find(s, "beta");
	ck_assert_int_ge(i, 0);
	ck_assert_uint_eq(s->nbytes[i], 0);
	ck_assert_uint_eq(s->cas[i], 2);
	i = find(s, "gamma");
	ck_assert_int_ge(i, 0);
	ck_assert_str_eq(s->value[i], "g");
	ck_assert_uint_eq(s->flags[i], 7);
	ck_assert_uint_eq(s->cas[i], UINT64_MAX);
	free(s);
	ck_assert_uint_gt(ckpt_file_bytes(ck), 0);

	/* closed and reopened: the same items and applied LSN */
	ckpt_close(ck);
	open_ckpt();
	ck_assert_uint_eq(ckpt_applied_lsn(ck), 3);
	s = scan(&applied);
	ck_assert_uint_eq(applied, 3);
	ck_assert_uint_eq(s->n, 3);
	i = find(s, "alpha");
	ck_assert_int_ge(i, 0);
	ck_assert_str_eq(s->value[i], "value-a");
	free(s);

	/* an empty batch changes nothing */
	ck_assert_int_eq(ckpt_apply(ck, recs, 0), 0);
	ck_assert_uint_eq(ckpt_applied_lsn(ck), 3);
}
END_TEST

START_TEST(test_every_record_type)
{
	struct wal_record batch1[] = {
		rec_set(1, "a", "a1", 1, 0, 1),
		rec_set(2, "b", "b1", 2, 0, 2),
		rec_set(3, "c", "c1", 3, 0, 3),
		rec_set(4, "d", "d1", 4, 0, 4),
		rec_set(5, "a", "a2", 5, 1234, 5),          /* overwrite */
		rec_keyed(6, CACHE_CHANGE_DELETE, "b", 0),
		rec_keyed(7, CACHE_CHANGE_TOUCH, "c", 1999999999u),
		rec_keyed(8, CACHE_CHANGE_EVICT, "d", 0),
		rec_keyed(9, CACHE_CHANGE_DELETE, "missing", 0),  /* no-ops, not errors */
		rec_keyed(10, CACHE_CHANGE_TOUCH, "missing", 5),
		rec_keyed(11, CACHE_CHANGE_EVICT, "missing", 0),
	};
	struct wal_record batch2[] = {
		rec_keyed(12, CACHE_CHANGE_FLUSH, NULL, 0),
		rec_set(13, "e", "e1", 6, 0, 13),
	};
	struct scanned *s;
	uint64_t applied;
	int i;

	open_ckpt();
	ck_assert_int_eq(ckpt_apply(ck, batch1, sizeof(batch1) / sizeof(batch1[0])), 0);
	s = scan(&applied);
	ck_assert_uint_eq(applied, 11);
	ck_assert_uint_eq(s->n, 2);
	i = find(s, "a");
	ck_assert_int_ge(i, 0);
	ck_assert_str_eq(s->value[i], "a2");
	ck_assert_uint_eq(s->flags[i], 5);
	ck_assert_uint_eq(s->exptime[i], 1234);
	ck_assert_uint_eq(s->cas[i], 5);
	i = find(s, "c");
	ck_assert_int_ge(i, 0);
	ck_assert_str_eq(s->value[i], "c1");   /* touch keeps value, flags, cas */
	ck_assert_uint_eq(s->flags[i], 3);
	ck_assert_uint_eq(s->cas[i], 3);
	ck_assert_uint_eq(s->exptime[i], 1999999999u);
	ck_assert_int_lt(find(s, "b"), 0);
	ck_assert_int_lt(find(s, "d"), 0);
	ck_assert_int_lt(find(s, "missing"), 0);
	free(s);

	ck_assert_int_eq(ckpt_apply(ck, batch2, 2), 0);
	s = scan(&applied);
	ck_assert_uint_eq(applied, 13);
	ck_assert_uint_eq(s->n, 1);
	ck_assert_str_eq(s->key[0], "e");
	free(s);

	/* applying the same records again (replay) gives the same result */
	ck_assert_int_eq(ckpt_apply(ck, batch2, 2), 0);
	s = scan(&applied);
	ck_assert_uint_eq(s->n, 1);
	ck_assert_str_eq(s->key[0], "e");
	free(s);
}
END_TEST

/* Folding only the last version of each key (ckpt.c) gives exactly the
 * state of applying every record: a random mix of sets, deletes, evictions,
 * touches and flushes over a few keys, applied as one batch to one
 * checkpoint and one record per transaction to another, scans the same. */
START_TEST(test_batch_folds_like_one_by_one)
{
	static const char *keys[] = {"k0", "k1", "k2", "k3", "k4"};
	static const char *values[] = {"v0", "v1", "v2", "v3"};
	struct wal_record recs[400];
	struct ckpt *one_by_one = NULL;
	struct scanned *batched, *single;
	char dir[300];
	unsigned seed = 12345;
	size_t n = sizeof(recs) / sizeof(recs[0]);

	for (size_t i = 0; i < n; i++) {
		const char *key = keys[rand_r(&seed) % 5];
		unsigned kind = rand_r(&seed) % 100;
		uint64_t lsn = i + 1;

		if (kind < 50)
			recs[i] = rec_set(lsn, key, values[rand_r(&seed) % 4], kind, 0, lsn);
		else if (kind < 65)
			recs[i] = rec_keyed(lsn, CACHE_CHANGE_DELETE, key, 0);
		else if (kind < 75)
			recs[i] = rec_keyed(lsn, CACHE_CHANGE_EVICT, key, 0);
		else if (kind < 97)
			recs[i] = rec_keyed(lsn, CACHE_CHANGE_TOUCH, key, 1000000000u + (uint32_t)lsn);
		else
			recs[i] = rec_keyed(lsn, CACHE_CHANGE_FLUSH, NULL, kind == 99 ? 2000000000u : 0);
	}
	open_ckpt();
	snprintf(dir, sizeof(dir), "%s/single", tmpdir);
	ck_assert_int_eq(mkdir(dir, 0755), 0);
	ck_assert_int_eq(ckpt_open(dir, &one_by_one), 0);
	/* In batches of 100 (each ends in another state) and record by record. */
	for (size_t i = 0; i < n; i += 100)
		ck_assert_int_eq(ckpt_apply(ck, recs + i, 100), 0);
	for (size_t i = 0; i < n; i++)
		ck_assert_int_eq(ckpt_apply(one_by_one, recs + i, 1), 0);
	batched = scan(NULL);
	single = scan_of(one_by_one, NULL);
	ck_assert_uint_eq(ckpt_pending_flush(ck), ckpt_pending_flush(one_by_one));
	ckpt_close(one_by_one);
	ck_assert_uint_eq(batched->n, single->n);
	for (size_t i = 0; i < single->n; i++) {
		int j = find(batched, single->key[i]);

		ck_assert_int_ge(j, 0);
		ck_assert_str_eq(batched->value[j], single->value[i]);
		ck_assert_uint_eq(batched->flags[j], single->flags[i]);
		ck_assert_uint_eq(batched->exptime[j], single->exptime[i]);
		ck_assert_uint_eq(batched->cas[j], single->cas[i]);
	}
	free(batched);
	free(single);
}
END_TEST

/* A batch that fails part-way applies nothing: neither its items nor its LSN. */
START_TEST(test_failed_batch_applies_nothing)
{
	struct wal_record good[] = {rec_set(1, "keep", "k", 0, 0, 1)};
	struct wal_record bad[] = {
		rec_set(2, "new", "n", 0, 0, 2),
		rec_keyed(3, CACHE_CHANGE_DELETE, "keep", 0),
		rec_keyed(4, (enum cache_change_type)99, "x", 0),
	};
	struct scanned *s;
	uint64_t applied;

	open_ckpt();
	ck_assert_int_eq(ckpt_apply(ck, good, 1), 0);
	ck_assert_int_lt(ckpt_apply(ck, bad, 3), 0);
	ck_assert_uint_eq(ckpt_applied_lsn(ck), 1);
	s = scan(&applied);
	ck_assert_uint_eq(applied, 1);
	ck_assert_uint_eq(s->n, 1);
	ck_assert_str_eq(s->key[0], "keep");
	free(s);
}
END_TEST

static int
stop_fn(void *arg, const struct cache_change *set)
{
	(void)set;
	++*(int *)arg;
	return -ECANCELED;
}

/* The callback's own error stops the scan and is returned as is. */
START_TEST(test_scan_callback_error)
{
	struct wal_record recs[] = {rec_set(1, "a", "1", 0, 0, 1), rec_set(2, "b", "2", 0, 0, 2)};
	int calls = 0;

	open_ckpt();
	ck_assert_int_eq(ckpt_apply(ck, recs, 2), 0);
	ck_assert_int_eq(ckpt_scan(ck, stop_fn, &calls, NULL), -ECANCELED);
	ck_assert_int_eq(calls, 1);
}
END_TEST

/* More data than the initial 256 MB map in one batch: ckpt_apply grows the
 * map and retries; everything is there, also after a reopen.  300 values of
 * 1 MB (two alternating patterns, so a mix-up would show). */
START_TEST(test_map_growth)
{
	enum { NBIG = 300 };
	static char keys[NBIG][16];
	struct wal_record *recs = calloc(NBIG, sizeof(*recs));
	char *a, *b;
	struct scanned *s;
	uint64_t applied;
	size_t i;

	big_len = 1 << 20;
	a = malloc(big_len);
	b = malloc(big_len);
	for (i = 0; i < big_len; i++) {
		a[i] = (char)('a' + i % 23);
		b[i] = (char)('A' + i % 19);
	}
	big_a = a;
	big_b = b;
	for (i = 0; i < NBIG; i++) {
		snprintf(keys[i], sizeof(keys[i]), "big%03u", (unsigned)i);
		recs[i].lsn = i + 1;
		recs[i].epoch = 1;
		recs[i].change.type = CACHE_CHANGE_SET;
		recs[i].change.key = keys[i];
		recs[i].change.nkey = strlen(keys[i]);
		recs[i].change.cas = i + 1;
		recs[i].change.value = i % 2 ? a : b;
		recs[i].change.nbytes = (uint32_t)big_len;
	}
	open_ckpt();
	ck_assert_int_eq(ckpt_apply(ck, recs, NBIG), 0);
	ck_assert_uint_eq(ckpt_applied_lsn(ck), NBIG);
	ck_assert_uint_gt(ckpt_file_bytes(ck), (uint64_t)256 << 20);
	s = scan(&applied);
	ck_assert_uint_eq(s->n, NBIG);
	ck_assert_uint_eq(applied, NBIG);
	ck_assert_int_eq(s->bad_value, 0);
	for (i = 0; i < NBIG; i++)
		ck_assert_uint_eq(s->nbytes[i], big_len);
	free(s);
	ckpt_close(ck);
	open_ckpt();
	s = scan(&applied);
	ck_assert_uint_eq(s->n, NBIG);
	ck_assert_uint_eq(applied, NBIG);
	ck_assert_int_eq(s->bad_value, 0);
	free(s);
	/* and it still takes more after the reopen */
	{
		struct wal_record more = rec_set(NBIG + 1, "after", "x", 0, 0, 1);

		ck_assert_int_eq(ckpt_apply(ck, &more, 1), 0);
		ck_assert_uint_eq(ckpt_applied_lsn(ck), NBIG + 1);
	}
	big_len = 0;
	free(a);
	free(b);
	free(recs);
}
END_TEST

START_TEST(test_purge_expired)
{
	uint32_t now = 1700000000u;
	struct wal_record recs[] = {
		rec_set(1, "past", "p", 0, now - 10, 1),
		rec_set(2, "exactly-now", "n", 0, now, 2),
		rec_set(3, "future", "f", 0, now + 10, 3),
		rec_set(4, "never", "v", 0, 0, 4),
		rec_set(5, "long-ago", "l", 0, 1, 5),
	};
	struct scanned *s;
	uint64_t purged = 99, applied;

	open_ckpt();
	ck_assert_int_eq(ckpt_apply(ck, recs, 5), 0);
	ck_assert_int_eq(ckpt_purge_expired(ck, now, &purged), 0);
	ck_assert_uint_eq(purged, 3);
	s = scan(&applied);
	ck_assert_uint_eq(s->n, 2);
	ck_assert_int_ge(find(s, "future"), 0);
	ck_assert_int_ge(find(s, "never"), 0);
	ck_assert_uint_eq(applied, 5);  /* purging is not a logged change */
	free(s);
	ck_assert_int_eq(ckpt_purge_expired(ck, now, &purged), 0);
	ck_assert_uint_eq(purged, 0);
	ck_assert_int_eq(ckpt_purge_expired(ck, now + 10, &purged), 0);
	ck_assert_uint_eq(purged, 1);
}
END_TEST

static void
write_garbage(const char *name, size_t len, int pattern)
{
	char dir[512], path[600];
	FILE *f;

	snprintf(dir, sizeof(dir), "%s/lmdb", tmpdir);
	mkdir(dir, 0755);
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "wb");
	ck_assert_ptr_nonnull(f);
	for (size_t i = 0; i < len; i++)
		fputc(pattern >= 0 ? pattern : (int)((i * 2654435761u) >> 13) & 0xff, f);
	ck_assert_int_eq(fclose(f), 0);
}

/* A data.mdb that is not an LMDB file: -EINVAL, no crash, *out untouched. */
START_TEST(test_garbage_small)
{
	struct ckpt *out = (struct ckpt *)&out;

	write_garbage("data.mdb", 100, 'g');
	ck_assert_int_eq(ckpt_open(tmpdir, &out), -EINVAL);
	ck_assert_ptr_eq(out, (struct ckpt *)&out);
}
END_TEST

START_TEST(test_garbage_large)
{
	struct ckpt *out = NULL;

	write_garbage("data.mdb", 256 * 1024, -1);
	ck_assert_int_eq(ckpt_open(tmpdir, &out), -EINVAL);
	ck_assert_ptr_null(out);
}
END_TEST

/* A real checkpoint whose first pages (LMDB's meta pages) were overwritten. */
START_TEST(test_garbage_over_real_file)
{
	struct wal_record recs[] = {rec_set(1, "a", "1", 0, 0, 1)};
	struct ckpt *out = NULL;
	char path[600];
	FILE *f;

	open_ckpt();
	ck_assert_int_eq(ckpt_apply(ck, recs, 1), 0);
	ckpt_close(ck);
	ck = NULL;
	snprintf(path, sizeof(path), "%s/lmdb/data.mdb", tmpdir);
	f = fopen(path, "r+b");
	ck_assert_ptr_nonnull(f);
	for (int i = 0; i < 8192; i++)
		fputc(0x5a, f);
	ck_assert_int_eq(fclose(f), 0);
	ck_assert_int_eq(ckpt_open(tmpdir, &out), -EINVAL);
	ck_assert_ptr_null(out);
}
END_TEST

/* A SET's marks are folded in with it, kept by a TOUCH, replaced by the
 * next SET, and read back by a scan and a get, across a reopen. */
static int
get_marks_fn(void *arg, const struct cache_change *set)
{
	*(uint8_t *)arg = set->marks;
	return 0;
}

START_TEST(test_marks_kept)
{
	struct wal_record recs[4];
	struct scanned *s;
	uint8_t marks = 0xff;

	open_ckpt();
	recs[0] = rec_set(1, "m", "old", 1, 0, 10);
	recs[0].change.marks = CACHE_MARK_STALE | CACHE_MARK_WIN_SENT;
	recs[1] = rec_set(2, "b", "bin", 0, 0, 11);
	recs[1].change.marks = CACHE_MARK_KEY_BINARY;
	recs[2] = rec_keyed(3, CACHE_CHANGE_TOUCH, "m", 1900000000u);
	recs[3] = rec_set(4, "b", "plain", 0, 0, 12);
	ck_assert_int_eq(ckpt_apply(ck, recs, 3), 0);
	ck_assert_int_eq(ckpt_get(ck, "b", 1, get_marks_fn, &marks), 1);
	ck_assert_uint_eq(marks, CACHE_MARK_KEY_BINARY);
	ck_assert_int_eq(ckpt_apply(ck, recs + 3, 1), 0);
	ckpt_close(ck);
	open_ckpt();
	s = scan(NULL);
	ck_assert_uint_eq(s->n, 2);
	ck_assert_uint_eq(s->marks[find(s, "m")], CACHE_MARK_STALE | CACHE_MARK_WIN_SENT);
	ck_assert_uint_eq(s->exptime[find(s, "m")], 1900000000u);
	ck_assert_uint_eq(s->marks[find(s, "b")], 0);
	free(s);
}
END_TEST

/* A checkpoint as format 1 wrote it (items: flags | exptime | cas | value,
 * no marks byte) opens: its items are read back unmarked and unchanged,
 * and it takes marked items from then on. */
START_TEST(test_format1_upgraded)
{
	unsigned char item[16 + 5], fmt[8] = {1}, lsn[8] = {3};
	MDB_val k = {3, "old"}, v = {sizeof(item), item};
	MDB_val fk = {6, "format"}, fv = {8, fmt}, lk = {11, "applied_lsn"}, lv = {8, lsn};
	char path[512];
	MDB_env *env;
	MDB_txn *txn;
	MDB_dbi items, meta;
	struct wal_record rec;
	struct scanned *s;
	uint64_t applied;

	memset(item, 0, sizeof(item));
	item[0] = 7;                /* flags */
	item[8] = 42;               /* cas */
	memcpy(item + 16, "value", 5);
	snprintf(path, sizeof(path), "%s/lmdb", tmpdir);
	ck_assert_int_eq(mkdir(path, 0755), 0);
	ck_assert_int_eq(mdb_env_create(&env), 0);
	mdb_env_set_maxdbs(env, 4);
	ck_assert_int_eq(mdb_env_open(env, path, 0, 0644), 0);
	ck_assert_int_eq(mdb_txn_begin(env, NULL, 0, &txn), 0);
	ck_assert_int_eq(mdb_dbi_open(txn, "items", MDB_CREATE, &items), 0);
	ck_assert_int_eq(mdb_dbi_open(txn, "meta", MDB_CREATE, &meta), 0);
	ck_assert_int_eq(mdb_put(txn, items, &k, &v, 0), 0);
	ck_assert_int_eq(mdb_put(txn, meta, &fk, &fv, 0), 0);
	ck_assert_int_eq(mdb_put(txn, meta, &lk, &lv, 0), 0);
	ck_assert_int_eq(mdb_txn_commit(txn), 0);
	mdb_env_close(env);

	open_ckpt();
	s = scan(&applied);
	ck_assert_uint_eq(applied, 3);
	ck_assert_uint_eq(s->n, 1);
	ck_assert_str_eq(s->key[0], "old");
	ck_assert_str_eq(s->value[0], "value");
	ck_assert_uint_eq(s->flags[0], 7);
	ck_assert_uint_eq(s->cas[0], 42);
	ck_assert_uint_eq(s->marks[0], 0);
	ck_assert_uint_eq(ckpt_max_cas(ck), 42);
	free(s);
	rec = rec_set(4, "new", "v", 0, 0, 43);
	rec.change.marks = CACHE_MARK_STALE;
	ck_assert_int_eq(ckpt_apply(ck, &rec, 1), 0);
	ckpt_close(ck);
	open_ckpt();                /* format 2 now: opened as it is */
	s = scan(NULL);
	ck_assert_uint_eq(s->n, 2);
	ck_assert_str_eq(s->value[find(s, "old")], "value");
	ck_assert_uint_eq(s->marks[find(s, "new")], CACHE_MARK_STALE);
	free(s);
}
END_TEST

/* The upgrade of a full-sized format 1 checkpoint: many items to a page
 * (each rewritten item moves the page's other entries) and values on
 * overflow pages.  Item i: key "k%05u", flags i, CAS i + 1, a value of
 * upgrade_size(i) bytes of upgrade_byte(i, j). */
#define UPGRADE_ITEMS 3000

static size_t
upgrade_size(unsigned i)
{
	return i % 7 == 0 ? 3000 + i : 10 + i % 50;
}

static char
upgrade_byte(unsigned i, size_t j)
{
	return (char)('a' + (i + j) % 26);
}

struct upgrade_check {
	unsigned seen;
	unsigned bad;
};

static int
upgrade_scan_fn(void *arg, const struct cache_change *set)
{
	struct upgrade_check *u = arg;
	unsigned i = u->seen++;
	char key[16];
	bool ok;

	snprintf(key, sizeof(key), "k%05u", i);
	ok = set->nkey == strlen(key) && memcmp(set->key, key, set->nkey) == 0 &&
	     set->flags == i && set->cas == (uint64_t)i + 1 && set->marks == 0 &&
	     set->nbytes == upgrade_size(i);
	for (size_t j = 0; ok && j < set->nbytes; j++)
		ok = set->value[j] == upgrade_byte(i, j);
	u->bad += !ok;
	return 0;
}

START_TEST(test_format1_upgrade_of_many_items)
{
	unsigned char fmt[8] = {1}, *item = malloc(16 + 3000 + UPGRADE_ITEMS);
	MDB_val fk = {6, "format"}, fv = {8, fmt};
	struct upgrade_check u = {0, 0};
	char path[512], key[16];
	MDB_env *env;
	MDB_txn *txn;
	MDB_dbi items, meta;

	ck_assert_ptr_nonnull(item);
	snprintf(path, sizeof(path), "%s/lmdb", tmpdir);
	ck_assert_int_eq(mkdir(path, 0755), 0);
	ck_assert_int_eq(mdb_env_create(&env), 0);
	mdb_env_set_maxdbs(env, 4);
	mdb_env_set_mapsize(env, (size_t)64 << 20);
	ck_assert_int_eq(mdb_env_open(env, path, 0, 0644), 0);
	ck_assert_int_eq(mdb_txn_begin(env, NULL, 0, &txn), 0);
	ck_assert_int_eq(mdb_dbi_open(txn, "items", MDB_CREATE, &items), 0);
	ck_assert_int_eq(mdb_dbi_open(txn, "meta", MDB_CREATE, &meta), 0);
	for (unsigned i = 0; i < UPGRADE_ITEMS; i++) {
		size_t n = upgrade_size(i);
		MDB_val k = {0, key}, v = {16 + n, item};

		k.mv_size = (size_t)snprintf(key, sizeof(key), "k%05u", i);
		memset(item, 0, 16);
		item[0] = (unsigned char)i;           /* flags, little-endian */
		item[1] = (unsigned char)(i >> 8);
		item[8] = (unsigned char)(i + 1);     /* cas */
		item[9] = (unsigned char)((i + 1) >> 8);
		for (size_t j = 0; j < n; j++)
			item[16 + j] = (unsigned char)upgrade_byte(i, j);
		ck_assert_int_eq(mdb_put(txn, items, &k, &v, 0), 0);
	}
	ck_assert_int_eq(mdb_put(txn, meta, &fk, &fv, 0), 0);
	ck_assert_int_eq(mdb_txn_commit(txn), 0);
	mdb_env_close(env);
	free(item);

	open_ckpt();
	ck_assert_int_eq(ckpt_scan(ck, upgrade_scan_fn, &u, NULL), 0);
	ck_assert_uint_eq(u.seen, UPGRADE_ITEMS);
	ck_assert_msg(u.bad == 0, "%u of %u items changed by the upgrade", u.bad, u.seen);
	ck_assert_uint_eq(ckpt_max_cas(ck), UPGRADE_ITEMS);
}
END_TEST

static Suite *
ckpt_suite(void)
{
	Suite *s = suite_create("ckpt");
	TCase *tc = tcase_create("ckpt");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 90);
	tcase_add_test(tc, test_apply_and_scan);
	tcase_add_test(tc, test_every_record_type);
	tcase_add_test(tc, test_batch_folds_like_one_by_one);
	tcase_add_test(tc, test_failed_batch_applies_nothing);
	tcase_add_test(tc, test_scan_callback_error);
	tcase_add_test(tc, test_map_growth);
	tcase_add_test(tc, test_purge_expired);
	tcase_add_test(tc, test_marks_kept);
	tcase_add_test(tc, test_format1_upgraded);
	tcase_add_test(tc, test_format1_upgrade_of_many_items);
	tcase_add_test(tc, test_garbage_small);
	tcase_add_test(tc, test_garbage_large);
	tcase_add_test(tc, test_garbage_over_real_file);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	return run_suite_in_tmpdir(ckpt_suite(), "ckpt", basedir, sizeof(basedir));
}
