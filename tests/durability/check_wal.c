/* Unit tests for storage/wal_*.c: the record codec (round trip of every
 * type, the documented example, bit flips, torn tails at every offset,
 * impossible fields); recovery on real segment files in a temp dir
 * (truncation at every offset of the last record, bit flips, damaged earlier
 * segments, headers, and relative to the checkpoint: a checkpoint ahead of a
 * torn tail, damage the checkpoint covers or not), plus replay into a cache:
 * idempotence and absolute TTLs; the live reader (a segment whose header is
 * not written yet, a hole); retention (trimming while readers open and
 * close, replica slots capped by the backlog, slots across a reopen).
 *
 * Segments are built by the real writer: wal_open (fsync no), wal_append,
 * wal_close.  Each open starts a fresh segment, so N open/close sessions give
 * exactly N segments.  Every test makes and removes its own temp dir. */
#include "tests/durability/testfs.h"
#include "storage/wal.h"

#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <xxhash.h>

#include "storage/cache.h"
#include "storage/store.h"

/******** HELPERS ********/

static struct cache_change
mk_keyed(enum cache_change_type type, const char *key, uint32_t exptime)
{
	struct cache_change ch = {.type = type, .key = key, .nkey = strlen(key), .exptime = exptime};
	return ch;
}

/* Encode into an exactly sized malloc'd buffer (ASan catches over-reads). */
static char *
encode(const struct cache_change *ch, uint64_t lsn, uint32_t epoch, size_t *size)
{
	char *buf;

	*size = wal_record_size(ch);
	buf = malloc(*size);
	ck_assert_ptr_nonnull(buf);
	wal_encode(buf, ch, lsn, epoch);
	return buf;
}

static void
assert_same_change(const struct cache_change *a, const struct cache_change *b)
{
	ck_assert_int_eq(a->type, b->type);
	if (a->type == CACHE_CHANGE_FLUSH)
		return;
	ck_assert_uint_eq(a->nkey, b->nkey);
	ck_assert_mem_eq(a->key, b->key, a->nkey);
	if (a->type == CACHE_CHANGE_SET || a->type == CACHE_CHANGE_TOUCH)
		ck_assert_uint_eq(a->exptime, b->exptime);
	if (a->type == CACHE_CHANGE_SET) {
		ck_assert_uint_eq(a->flags, b->flags);
		ck_assert_uint_eq(a->cas, b->cas);
		ck_assert_uint_eq(a->nbytes, b->nbytes);
		ck_assert_uint_eq(a->marks, b->marks);
		if (a->nbytes > 0)
			ck_assert_mem_eq(a->value, b->value, a->nbytes);
	}
}

static void
put32(char *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (char)(v >> (8 * i));
}

static uint32_t
get32(const char *p)
{
	return (uint32_t)(uint8_t)p[0] | (uint32_t)(uint8_t)p[1] << 8 |
	       (uint32_t)(uint8_t)p[2] << 16 | (uint32_t)(uint8_t)p[3] << 24;
}

/* Recompute a record's checksum after editing it (to reach rules 4 and 5). */
static void
reseal(char *rec)
{
	uint32_t length = get32(rec);

	put32(rec + 4, (uint32_t)XXH3_64bits(rec + 8, length));
}

/* Every test's dir lives under basedir, made by main() and removed by it
 * after all tests ran (a failed check exits the forked test before its
 * teardown could remove its own dir). */
static char basedir[128];
static char tmpdir[256];

static void
make_tmpdir(void)
{
	make_test_dir(tmpdir, sizeof(tmpdir), basedir);
}

static void
setup_dir(void)
{
	cache_set_time_offset(0);
	make_tmpdir();
}

static void
teardown_dir(void)
{
	rm_rf(tmpdir);
	cache_set_time_offset(0);
}

/* One writer session: open at next_lsn, append n changes, close. */
static void
write_session(uint64_t next_lsn, const struct cache_change *chs, size_t n)
{
	struct wal_config cfg = {.data_dir = tmpdir, .fsync = WAL_FSYNC_NO, .segment_size = 1 << 20};
	struct wal *w = NULL;
	size_t i;

	ck_assert_int_eq(wal_open(&cfg, next_lsn, 1, NULL, NULL, &w), 0);
	ck_assert_ptr_nonnull(w);
	for (i = 0; i < n; i++)
		wal_append(w, &chs[i]);
	ck_assert_uint_eq(wal_last_lsn(w), next_lsn + n - 1);
	ck_assert_int_eq(wal_error(w), 0);
	wal_close(w);
}

static char *
read_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *buf;
	long n;

	ck_assert_msg(f != NULL, "cannot open %s", path);
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	fseek(f, 0, SEEK_SET);
	buf = malloc((size_t)n + 1);
	ck_assert_ptr_nonnull(buf);
	ck_assert_uint_eq(fread(buf, 1, (size_t)n, f), (size_t)n);
	fclose(f);
	*len = (size_t)n;
	return buf;
}

static void
write_file(const char *path, const char *buf, size_t len)
{
	FILE *f = fopen(path, "wb");

	ck_assert_msg(f != NULL, "cannot create %s", path);
	ck_assert_uint_eq(fwrite(buf, 1, len, f), len);
	ck_assert_int_eq(fclose(f), 0);
}

static uint64_t
file_size(const char *path)
{
	struct stat st;

	ck_assert_msg(stat(path, &st) == 0, "stat %s: %s", path, strerror(errno));
	return (uint64_t)st.st_size;
}

static bool
file_exists(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0;
}

static void
list_segments(struct wal_segment **segs, size_t *n)
{
	ck_assert_int_eq(wal_list_segments(tmpdir, segs, n), 0);
}

/* What a replay callback saw. */
#define SEEN_MAX 4096
struct seen {
	size_t n;
	uint64_t lsn[SEEN_MAX];
	int type[SEEN_MAX];
	char key[SEEN_MAX][32];
	char value[SEEN_MAX][64];
	uint32_t exptime[SEEN_MAX];
};

static void
seen_fn(void *arg, const struct wal_record *rec)
{
	struct seen *s = arg;

	ck_assert_uint_lt(s->n, SEEN_MAX);
	s->lsn[s->n] = rec->lsn;
	s->type[s->n] = rec->change.type;
	snprintf(s->key[s->n], sizeof(s->key[0]), "%.*s", (int)rec->change.nkey,
	         rec->change.key ? rec->change.key : "");
	snprintf(s->value[s->n], sizeof(s->value[0]), "%.*s", (int)rec->change.nbytes,
	         rec->change.value ? rec->change.value : "");
	s->exptime[s->n] = rec->change.exptime;
	s->n++;
}

/* N distinct SETs "k<i>" = "value-<i>". */
static struct cache_change *
make_sets(size_t n, char keys[][16], char vals[][32])
{
	struct cache_change *chs = calloc(n, sizeof(*chs));
	size_t i;

	ck_assert_ptr_nonnull(chs);
	for (i = 0; i < n; i++) {
		snprintf(keys[i], 16, "k%u", (unsigned)i);
		snprintf(vals[i], 32, "value-%u-%s", (unsigned)i, i % 3 ? "x" : "longer-one");
		chs[i] = test_set(keys[i], vals[i], (uint32_t)i, 0, 1000 + i);
	}
	return chs;
}

/******** CODEC ********/

START_TEST(test_roundtrip_every_type)
{
	char bigval[3000];
	char key250[251];
	struct cache_change chs[10];
	size_t i, n = 0;

	memset(bigval, 'v', sizeof(bigval) - 1);
	bigval[sizeof(bigval) - 1] = '\0';
	memset(key250, 'K', 250);
	key250[250] = '\0';
	chs[n++] = test_set("alpha", "hello world", 0xdeadbeefu, 1900000000u, 0x0102030405060708ull);
	chs[n++] = test_set("e", "", 0, 0, 1);                   /* empty value */
	chs[n++] = test_set(key250, bigval, 7, 12345, UINT64_MAX); /* longest key */
	chs[n++] = mk_keyed(CACHE_CHANGE_DELETE, "gone", 0);
	chs[n++] = mk_keyed(CACHE_CHANGE_TOUCH, "touched", 1999999999u);
	chs[n++] = mk_keyed(CACHE_CHANGE_FLUSH, "", 0);
	chs[n - 1].key = NULL;
	chs[n - 1].nkey = 0;
	chs[n++] = mk_keyed(CACHE_CHANGE_EVICT, "evicted", 0);
	chs[n] = test_set("marked", "v", 3, 4, 5);               /* an MSET */
	chs[n++].marks = CACHE_MARK_STALE | CACHE_MARK_WIN_SENT;
	chs[n] = test_set(key250, "", 0, 0, 6);
	chs[n++].marks = CACHE_MARKS_ALL;
	for (i = 0; i < n; i++) {
		struct wal_record rec;
		size_t size, used = 0;
		uint64_t lsn = 1 + i * 0x100000001ull;
		char *buf = encode(&chs[i], lsn, 7 + (uint32_t)i, &size);

		ck_assert_uint_eq(get32(buf), size - 8);  /* length field */
		ck_assert_int_eq(wal_decode(buf, size, &rec, &used), WAL_DECODE_OK);
		ck_assert_uint_eq(used, size);
		ck_assert_uint_eq(rec.lsn, lsn);
		ck_assert_uint_eq(rec.epoch, 7 + i);
		assert_same_change(&chs[i], &rec.change);
		free(buf);
	}
}
END_TEST

/* Records back to back: each decodes with used = its own size. */
START_TEST(test_decode_consecutive)
{
	struct cache_change a = test_set("a", "1", 1, 0, 5), b = mk_keyed(CACHE_CHANGE_DELETE, "a", 0);
	size_t sa = wal_record_size(&a), sb = wal_record_size(&b), used;
	char *buf = malloc(sa + sb);
	struct wal_record rec;

	wal_encode(buf, &a, 10, 1);
	wal_encode(buf + sa, &b, 11, 1);
	ck_assert_int_eq(wal_decode(buf, sa + sb, &rec, &used), WAL_DECODE_OK);
	ck_assert_uint_eq(used, sa);
	ck_assert_uint_eq(rec.lsn, 10);
	ck_assert_int_eq(wal_decode(buf + sa, sb, &rec, &used), WAL_DECODE_OK);
	ck_assert_uint_eq(used, sb);
	ck_assert_uint_eq(rec.lsn, 11);
	ck_assert_int_eq(rec.change.type, CACHE_CHANGE_DELETE);
	free(buf);
}
END_TEST

/* The example at the top of wal.c, byte for byte (except checksum and cas). */
START_TEST(test_documented_example)
{
	struct cache_change ch = test_set("k", "hi", 5, 0, 0x1122334455667788ull);
	static const unsigned char expect_head[4] = {0x25, 0, 0, 0};
	static const unsigned char expect_mid[] = {
		1, 0, 0, 0, 0, 0, 0, 0,  /* lsn */
		1, 0, 0, 0,              /* epoch */
		1,                       /* SET */
		1,                       /* nkey */
		5, 0, 0, 0,              /* flags */
		0, 0, 0, 0,              /* exptime */
	};
	static const unsigned char expect_tail[] = {2, 0, 0, 0, 'k', 'h', 'i'};
	size_t size;
	char *buf = encode(&ch, 1, 1, &size);

	ck_assert_uint_eq(size, 45);
	ck_assert_mem_eq(buf, expect_head, 4);
	ck_assert_mem_eq(buf + 8, expect_mid, sizeof(expect_mid));
	ck_assert_mem_eq(buf + 38, expect_tail, sizeof(expect_tail));
	ck_assert_uint_eq(get32(buf + 4), (uint32_t)XXH3_64bits(buf + 8, 37));
	free(buf);
}
END_TEST

/* The MSET example of docs/formats.md: the same set, marked stale, is one
 * byte longer, type 6, the marks byte after nbytes. */
START_TEST(test_documented_mset_example)
{
	struct cache_change ch = test_set("k", "hi", 5, 0, 0x1122334455667788ull);
	static const unsigned char expect_tail[] = {2, 0, 0, 0, 0x02, 'k', 'h', 'i'};
	struct wal_record rec;
	size_t size, used;
	char *buf;

	ch.marks = CACHE_MARK_STALE;
	buf = encode(&ch, 1, 1, &size);
	ck_assert_uint_eq(size, 46);
	ck_assert_uint_eq(get32(buf), 38);
	ck_assert_uint_eq((unsigned char)buf[20], 6);
	ck_assert_mem_eq(buf + 38, expect_tail, sizeof(expect_tail));
	ck_assert_uint_eq(get32(buf + 4), (uint32_t)XXH3_64bits(buf + 8, 38));
	ck_assert_int_eq(wal_decode(buf, size, &rec, &used), WAL_DECODE_OK);
	ck_assert_int_eq(rec.change.type, CACHE_CHANGE_SET);
	ck_assert_uint_eq(rec.change.marks, CACHE_MARK_STALE);
	free(buf);
}
END_TEST

/* A SET record as format 1 wrote it, built byte by byte (not by the
 * encoder, which writes an unmarked item the same way): it decodes to a
 * SET without marks, and replays as an unmarked item. */
START_TEST(test_format1_set_decodes)
{
	char buf[45] = {0x25, 0, 0, 0, 0, 0, 0, 0,
	                2, 0, 0, 0, 0, 0, 0, 0,   /* lsn 2 */
	                1, 0, 0, 0,               /* epoch */
	                1,                        /* SET */
	                1,                        /* nkey */
	                5, 0, 0, 0,               /* flags */
	                0, 0, 0, 0,               /* exptime */
	                9, 0, 0, 0, 0, 0, 0, 0,   /* cas */
	                2, 0, 0, 0,               /* nbytes */
	                'k', 'h', 'i'};
	struct cache_config cfg = {.mem_limit = 1 << 20, .item_size_max = 1 << 20,
	                           .hashpower = 4, .use_cas = true};
	struct cache_meta_read rd = {0};
	struct cache_meta_view view;
	struct cache *c = cache_create(&cfg);
	struct wal_record rec;
	struct item *it;
	size_t used;

	reseal(buf);
	ck_assert_int_eq(wal_decode(buf, sizeof(buf), &rec, &used), WAL_DECODE_OK);
	ck_assert_uint_eq(used, sizeof(buf));
	ck_assert_int_eq(rec.change.type, CACHE_CHANGE_SET);
	ck_assert_uint_eq(rec.change.marks, 0);
	ck_assert_uint_eq(rec.change.cas, 9);
	ck_assert_int_eq(cache_apply(c, &rec.change), CACHE_STORED);
	it = cache_meta_get(c, "k", 1, &rd, &view, NULL);
	ck_assert_ptr_nonnull(it);
	ck_assert(!view.stale && !view.win_sent && !view.key_binary);
	ck_assert_uint_eq(view.cas, 9);
	cache_item_put(c, it);
	cache_destroy(c);
}
END_TEST

/* An MSET replays with its marks and CAS, replacing an unmarked item. */
START_TEST(test_mset_replays_marks)
{
	struct cache_config cfg = {.mem_limit = 1 << 20, .item_size_max = 1 << 20,
	                           .hashpower = 4, .use_cas = true};
	struct cache_change plain = test_set("k", "v", 0, 0, 3), marked = test_set("k", "v", 0, 0, 4);
	struct cache_meta_read rd = {0};
	struct cache_meta_view view;
	struct cache *c = cache_create(&cfg);
	struct wal_record rec;
	struct item *it;
	size_t size, used;
	char *buf;

	marked.marks = CACHE_MARK_KEY_BINARY | CACHE_MARK_WIN_SENT;
	ck_assert_int_eq(cache_apply(c, &plain), CACHE_STORED);
	buf = encode(&marked, 2, 1, &size);
	ck_assert_int_eq(wal_decode(buf, size, &rec, &used), WAL_DECODE_OK);
	ck_assert_int_eq(cache_apply(c, &rec.change), CACHE_STORED);
	it = cache_meta_get(c, "k", 1, &rd, &view, NULL);
	ck_assert_ptr_nonnull(it);
	ck_assert(view.key_binary && view.win_sent && !view.stale);
	ck_assert_uint_eq(view.cas, 4);
	cache_item_put(c, it);
	free(buf);
	cache_destroy(c);
}
END_TEST

/* Flip every bit of every byte in turn: the result never decodes OK. */
START_TEST(test_bit_flips_detected)
{
	struct cache_change chs[5] = {
		test_set("flipkey", "some value bytes", 3, 1800000000u, 99),
		mk_keyed(CACHE_CHANGE_DELETE, "flipkey", 0),
		mk_keyed(CACHE_CHANGE_TOUCH, "flipkey", 1800000001u),
		mk_keyed(CACHE_CHANGE_FLUSH, "", 0),
		mk_keyed(CACHE_CHANGE_EVICT, "flipkey", 0),
	};

	chs[3].key = NULL;
	chs[3].nkey = 0;
	for (size_t t = 0; t < 5; t++) {
		size_t size;
		char *orig = encode(&chs[t], 77, 3, &size);
		char *buf = malloc(size);

		for (size_t i = 0; i < size; i++) {
			for (int bit = 0; bit < 8; bit++) {
				struct wal_record rec;
				size_t used = 0;
				enum wal_decode_status st;

				memcpy(buf, orig, size);
				buf[i] ^= (char)(1 << bit);
				st = wal_decode(buf, size, &rec, &used);
				ck_assert_msg(st != WAL_DECODE_OK,
				              "type %d: flipping bit %d of byte %zu still decodes OK",
				              chs[t].type, bit, i);
			}
			/* and a whole-byte change */
			{
				struct wal_record rec;
				size_t used = 0;

				memcpy(buf, orig, size);
				buf[i] = (char)~buf[i];
				ck_assert_msg(wal_decode(buf, size, &rec, &used) != WAL_DECODE_OK,
				              "type %d: inverting byte %zu still decodes OK", chs[t].type, i);
			}
		}
		free(buf);
		free(orig);
	}
}
END_TEST

/* A record cut at every byte offset is SHORT (a torn tail), never OK. */
START_TEST(test_torn_tail_every_offset)
{
	char val[200];
	struct cache_change chs[5];

	memset(val, 'x', sizeof(val) - 1);
	val[sizeof(val) - 1] = '\0';
	chs[0] = test_set("tornkey", val, 1, 2, 3);
	chs[1] = mk_keyed(CACHE_CHANGE_DELETE, "tornkey", 0);
	chs[2] = mk_keyed(CACHE_CHANGE_TOUCH, "tornkey", 5);
	chs[3] = mk_keyed(CACHE_CHANGE_FLUSH, "", 0);
	chs[3].key = NULL;
	chs[3].nkey = 0;
	chs[4] = mk_keyed(CACHE_CHANGE_EVICT, "tornkey", 0);
	for (size_t t = 0; t < 5; t++) {
		size_t size;
		char *orig = encode(&chs[t], 5, 1, &size);

		for (size_t cut = 0; cut < size; cut++) {
			/* exactly `cut` bytes: ASan flags any read past them */
			char *buf = malloc(cut ? cut : 1);
			struct wal_record rec;
			size_t used = 12345;

			memcpy(buf, orig, cut);
			ck_assert_msg(wal_decode(buf, cut, &rec, &used) == WAL_DECODE_SHORT,
			              "type %d cut at %zu of %zu: not SHORT", chs[t].type, cut, size);
			ck_assert_uint_eq(used, 12345);
			free(buf);
		}
		free(orig);
	}
}
END_TEST

/* Rule (2): a length below 13 or above 13 + WAL_REC_BODY_MAX is corrupt at
 * once, even with only the 8-byte prefix present (no waiting for 4 GB). */
START_TEST(test_impossible_lengths)
{
	static const uint32_t bad[] = {0, 1, 12, 13u + WAL_REC_BODY_MAX + 1, 0x80000000u, UINT32_MAX};
	char buf[64] = {0};
	struct wal_record rec;
	size_t used;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		put32(buf, bad[i]);
		ck_assert_msg(wal_decode(buf, 8, &rec, &used) == WAL_DECODE_CORRUPT,
		              "length %u with 8 bytes: not CORRUPT", bad[i]);
		ck_assert_msg(wal_decode(buf, sizeof(buf), &rec, &used) == WAL_DECODE_CORRUPT,
		              "length %u: not CORRUPT", bad[i]);
	}
	/* the largest legal length with a short buffer is a torn tail */
	put32(buf, 13u + WAL_REC_BODY_MAX);
	ck_assert_int_eq(wal_decode(buf, sizeof(buf), &rec, &used), WAL_DECODE_SHORT);
}
END_TEST

/* Rules (4) and (5) with a valid checksum: lsn 0, unknown types, bad key
 * lengths, body sizes that do not add up. */
START_TEST(test_impossible_fields)
{
	struct cache_change set = test_set("key", "value", 1, 2, 3);
	struct cache_change del = mk_keyed(CACHE_CHANGE_DELETE, "key", 0);
	struct cache_change touch = mk_keyed(CACHE_CHANGE_TOUCH, "key", 9);
	struct wal_record rec;
	size_t size, used;
	char *buf;

	/* lsn 0 */
	buf = encode(&set, 0, 1, &size);
	ck_assert_int_eq(wal_decode(buf, size, &rec, &used), WAL_DECODE_CORRUPT);
	free(buf);

	/* unknown types 0, 7, 255 */
	for (int t = 0; t < 3; t++) {
		static const unsigned char types[] = {0, 7, 255};

		buf = encode(&del, 1, 1, &size);
		buf[20] = (char)types[t];
		reseal(buf);
		ck_assert_msg(wal_decode(buf, size, &rec, &used) == WAL_DECODE_CORRUPT,
		              "type %u accepted", types[t]);
		free(buf);
	}

	/* SET: nkey 0; nkey larger than the body; nbytes too large / small */
	buf = encode(&set, 1, 1, &size);
	buf[21] = 0;
	reseal(buf);
	ck_assert_int_eq(wal_decode(buf, size, &rec, &used), WAL_DECODE_CORRUPT);
	free(buf);
	buf = encode(&set, 1, 1, &size);
	buf[21] = 4;
	reseal(buf);
	ck_assert_int_eq(wal_decode(buf, size, &rec, &used), WAL_DECODE_CORRUPT);
	free(buf);
	buf = encode(&set, 1, 1, &size);
	put32(buf + 21 + 17, 6);
	reseal(buf);
	ck_assert_int_eq(wal_decode(buf, size, &rec, &used), WAL_DECODE_CORRUPT);
	free(buf);
	buf = encode(&set, 1, 1, &size);
	put32(buf + 21 + 17, UINT32_MAX);
	reseal(buf);
	ck_assert_int_eq(wal_decode(buf, size, &rec, &used), WAL_DECODE_CORRUPT);
	free(buf);

	/* MSET: marks 0 (an unmarked item is a SET), a bit outside 0x07; a
	 * SET retyped MSET (its sizes no longer add up) */
	for (int m = 0; m < 2; m++) {
		struct cache_change ms = test_set("key", "value", 1, 2, 3);

		ms.marks = CACHE_MARK_STALE;
		buf = encode(&ms, 1, 1, &size);
		buf[21 + 21] = m == 0 ? 0 : 0x0a;
		reseal(buf);
		ck_assert_int_eq(wal_decode(buf, size, &rec, &used), WAL_DECODE_CORRUPT);
		free(buf);
	}
	buf = encode(&set, 1, 1, &size);
	buf[20] = 6;
	reseal(buf);
	ck_assert_int_eq(wal_decode(buf, size, &rec, &used), WAL_DECODE_CORRUPT);
	free(buf);

	/* SET record whose body is shorter than the fixed SET fields */
	buf = encode(&del, 1, 1, &size);
	buf[20] = CACHE_CHANGE_SET;
	reseal(buf);
	ck_assert_int_eq(wal_decode(buf, size, &rec, &used), WAL_DECODE_CORRUPT);
	free(buf);

	/* DELETE: nkey 0, nkey too large, nkey 251 with 251 bytes of key */
	buf = encode(&del, 1, 1, &size);
	buf[21] = 0;
	reseal(buf);
	ck_assert_int_eq(wal_decode(buf, size, &rec, &used), WAL_DECODE_CORRUPT);
	free(buf);
	buf = encode(&del, 1, 1, &size);
	buf[21] = 9;
	reseal(buf);
	ck_assert_int_eq(wal_decode(buf, size, &rec, &used), WAL_DECODE_CORRUPT);
	free(buf);
	{
		char key251[252];
		struct cache_change big;

		memset(key251, 'q', 251);
		key251[251] = '\0';
		big = mk_keyed(CACHE_CHANGE_EVICT, key251, 0);
		buf = encode(&big, 1, 1, &size);  /* nkey byte is 251 */
		ck_assert_int_eq(wal_decode(buf, size, &rec, &used), WAL_DECODE_CORRUPT);
		free(buf);
	}

	/* TOUCH: nkey mismatch; FLUSH with a body */
	buf = encode(&touch, 1, 1, &size);
	buf[21] = 2;
	reseal(buf);
	ck_assert_int_eq(wal_decode(buf, size, &rec, &used), WAL_DECODE_CORRUPT);
	free(buf);
	buf = encode(&del, 1, 1, &size);
	buf[20] = CACHE_CHANGE_FLUSH;
	reseal(buf);
	ck_assert_int_eq(wal_decode(buf, size, &rec, &used), WAL_DECODE_CORRUPT);
	free(buf);
}
END_TEST

/******** RECOVERY ON DISK ********/

/* Two sessions (two segments), then cut the last segment at every byte
 * offset inside its last record: recovery replays exactly the complete
 * records, truncates the file at the last complete one and reports the cut
 * bytes as dropped.  A fresh copy of the segment is written for each cut. */
START_TEST(test_recover_truncated_every_offset)
{
	enum { N1 = 20, N2 = 15 };
	char keys[N1 + N2][16], vals[N1 + N2][32];
	struct cache_change *chs = make_sets(N1 + N2, keys, vals);
	struct wal_segment *segs;
	size_t nseg, full_len, last_size, last_start;
	char *full, last_path[4096];

	write_session(1, chs, N1);
	write_session(N1 + 1, chs + N1, N2);
	list_segments(&segs, &nseg);
	ck_assert_uint_eq(nseg, 2);
	ck_assert_uint_eq(segs[0].first_lsn, 1);
	ck_assert_uint_eq(segs[1].first_lsn, N1 + 1);
	snprintf(last_path, sizeof(last_path), "%s", segs[1].path);
	free(segs);
	full = read_file(last_path, &full_len);
	last_size = wal_record_size(&chs[N1 + N2 - 1]);
	ck_assert_uint_gt(full_len, last_size + WAL_SEGMENT_HDR_SIZE);
	last_start = full_len - last_size;

	for (size_t cut = last_start; cut <= full_len; cut++) {
		struct seen *s = calloc(1, sizeof(*s));
		struct wal_recovery rec;
		size_t complete = cut == full_len ? N1 + N2 : N1 + N2 - 1;

		write_file(last_path, full, cut);
		ck_assert_int_eq(wal_recover(tmpdir, 0, seen_fn, s, &rec), 0);
		ck_assert_msg(s->n == complete, "cut %zu: replayed %zu, want %zu", cut, s->n, complete);
		ck_assert_uint_eq(rec.replayed, complete);
		ck_assert_uint_eq(rec.last_lsn, complete);
		ck_assert_uint_eq(rec.last_epoch, 1);
		ck_assert_uint_eq(rec.dropped_segments, 0);
		ck_assert_msg(rec.dropped_bytes == (cut == full_len ? 0 : cut - last_start),
		              "cut %zu: dropped_bytes %" PRIu64 ", want %zu", cut, rec.dropped_bytes,
		              cut == full_len ? 0 : cut - last_start);
		ck_assert_uint_eq(file_size(last_path), cut == full_len ? full_len : last_start);
		for (size_t i = 0; i < s->n; i++) {
			ck_assert_uint_eq(s->lsn[i], i + 1);
			ck_assert_int_eq(s->type[i], CACHE_CHANGE_SET);
			ck_assert_str_eq(s->key[i], keys[i]);
			ck_assert_str_eq(s->value[i], vals[i]);
		}
		/* a second recovery finds a clean log */
		s->n = 0;
		ck_assert_int_eq(wal_recover(tmpdir, 0, seen_fn, s, &rec), 0);
		ck_assert_uint_eq(s->n, complete);
		ck_assert_uint_eq(rec.dropped_bytes, 0);
		free(s);
	}
	free(full);
	free(chs);
}
END_TEST

/* after_lsn: records at or below it are skipped, last_lsn still counts them. */
START_TEST(test_recover_after_lsn)
{
	enum { N = 30 };
	char keys[N][16], vals[N][32];
	struct cache_change *chs = make_sets(N, keys, vals);
	struct seen *s = calloc(1, sizeof(*s));
	struct wal_recovery rec;

	write_session(1, chs, 10);
	write_session(11, chs + 10, 20);
	ck_assert_int_eq(wal_recover(tmpdir, 17, seen_fn, s, &rec), 0);
	ck_assert_uint_eq(s->n, N - 17);
	ck_assert_uint_eq(s->lsn[0], 18);
	ck_assert_uint_eq(rec.replayed, N - 17);
	ck_assert_uint_eq(rec.last_lsn, N);
	ck_assert_uint_eq(rec.dropped_bytes, 0);
	free(s);
	free(chs);
}
END_TEST

/* A flipped byte in the middle of the last segment: replay stops at the
 * record holding it, the file is cut at that record's start. */
START_TEST(test_recover_bitflip_last_segment)
{
	enum { N = 40 };
	char keys[N][16], vals[N][32];
	struct cache_change *chs = make_sets(N, keys, vals);
	struct wal_segment *segs;
	struct seen *s = calloc(1, sizeof(*s));
	struct wal_recovery rec;
	size_t nseg, len, off = WAL_SEGMENT_HDR_SIZE, bad = N / 2;
	char *data, path[4096];

	write_session(1, chs, N);
	list_segments(&segs, &nseg);
	ck_assert_uint_eq(nseg, 1);
	snprintf(path, sizeof(path), "%s", segs[0].path);
	free(segs);
	data = read_file(path, &len);
	for (size_t i = 0; i < bad; i++)
		off += wal_record_size(&chs[i]);
	data[off + wal_record_size(&chs[bad]) / 2] ^= 0x10;
	write_file(path, data, len);

	ck_assert_int_eq(wal_recover(tmpdir, 0, seen_fn, s, &rec), 0);
	ck_assert_uint_eq(s->n, bad);
	ck_assert_uint_eq(rec.last_lsn, bad);
	ck_assert_uint_eq(rec.dropped_bytes, len - off);
	ck_assert_uint_eq(file_size(path), off);
	for (size_t i = 0; i < s->n; i++)
		ck_assert_str_eq(s->key[i], keys[i]);
	free(data);
	free(s);
	free(chs);
}
END_TEST

/* Damage in an earlier segment: it is cut there and every later segment is
 * set aside as *.damaged (never replayed), even though they are intact. */
START_TEST(test_recover_damaged_earlier_segment)
{
	enum { N = 30 };
	char keys[N][16], vals[N][32], p0[4096], p1[4096], p2[4096], aside[4200];
	struct cache_change *chs = make_sets(N, keys, vals);
	struct wal_segment *segs;
	struct seen *s = calloc(1, sizeof(*s));
	struct wal_recovery rec;
	size_t nseg, len, off = WAL_SEGMENT_HDR_SIZE;
	uint64_t size1, size2;
	char *data;

	write_session(1, chs, 10);
	write_session(11, chs + 10, 10);
	write_session(21, chs + 20, 10);
	list_segments(&segs, &nseg);
	ck_assert_uint_eq(nseg, 3);
	snprintf(p0, sizeof(p0), "%s", segs[0].path);
	snprintf(p1, sizeof(p1), "%s", segs[1].path);
	snprintf(p2, sizeof(p2), "%s", segs[2].path);
	size1 = segs[1].size;
	size2 = segs[2].size;
	free(segs);
	/* corrupt record 4 (LSN 5) of the first segment */
	data = read_file(p0, &len);
	for (size_t i = 0; i < 4; i++)
		off += wal_record_size(&chs[i]);
	data[off + 25] ^= 0x01;
	write_file(p0, data, len);

	ck_assert_int_eq(wal_recover(tmpdir, 0, seen_fn, s, &rec), 0);
	ck_assert_uint_eq(s->n, 4);
	ck_assert_uint_eq(rec.last_lsn, 4);
	ck_assert_uint_eq(rec.dropped_segments, 2);
	ck_assert_uint_eq(rec.dropped_bytes, (len - off) + size1 + size2);
	ck_assert_uint_eq(file_size(p0), off);
	ck_assert(!file_exists(p1));
	ck_assert(!file_exists(p2));
	snprintf(aside, sizeof(aside), "%s.damaged", p1);
	ck_assert_uint_eq(file_size(aside), size1);
	snprintf(aside, sizeof(aside), "%s.damaged", p2);
	ck_assert_uint_eq(file_size(aside), size2);
	list_segments(&segs, &nseg);
	ck_assert_uint_eq(nseg, 1);  /* *.damaged are not segments */
	free(segs);
	/* the next writer continues the log after the valid prefix */
	write_session(rec.last_lsn + 1, chs + 4, 3);
	s->n = 0;
	ck_assert_int_eq(wal_recover(tmpdir, 0, seen_fn, s, &rec), 0);
	ck_assert_uint_eq(s->n, 7);
	ck_assert_uint_eq(rec.dropped_bytes, 0);
	free(data);
	free(s);
	free(chs);
}
END_TEST

/* A gap in the LSNs between segments (a lost segment) is damage too. */
START_TEST(test_recover_lsn_gap)
{
	enum { N = 20 };
	char keys[N][16], vals[N][32];
	struct cache_change *chs = make_sets(N, keys, vals);
	struct seen *s = calloc(1, sizeof(*s));
	struct wal_recovery rec;

	write_session(1, chs, 10);
	write_session(15, chs + 10, 10);   /* LSNs 11..14 missing */
	ck_assert_int_eq(wal_recover(tmpdir, 0, seen_fn, s, &rec), 0);
	ck_assert_uint_eq(s->n, 10);
	ck_assert_uint_eq(rec.last_lsn, 10);
	ck_assert_uint_gt(rec.dropped_bytes, 0);
	free(s);
	free(chs);
}
END_TEST

/* A last segment with a bad magic is dropped whole; its bytes are reported. */
START_TEST(test_recover_bad_segment_header)
{
	enum { N = 10 };
	char keys[N][16], vals[N][32];
	struct cache_change *chs = make_sets(N, keys, vals);
	struct wal_segment *segs;
	struct seen *s = calloc(1, sizeof(*s));
	struct wal_recovery rec;
	size_t nseg, len;
	char *data, path[4096];

	write_session(1, chs, 5);
	write_session(6, chs + 5, 5);
	list_segments(&segs, &nseg);
	ck_assert_uint_eq(nseg, 2);
	snprintf(path, sizeof(path), "%s", segs[1].path);
	free(segs);
	data = read_file(path, &len);
	data[0] = 'X';
	write_file(path, data, len);
	ck_assert_int_eq(wal_recover(tmpdir, 0, seen_fn, s, &rec), 0);
	ck_assert_uint_eq(s->n, 5);
	ck_assert_uint_eq(rec.last_lsn, 5);
	ck_assert_uint_eq(rec.dropped_bytes, len);
	free(data);
	free(s);
	free(chs);
}
END_TEST

/* The newest segment torn inside its own 16-byte header (a crash right after
 * creating it): it holds no record; the bytes dropped are exactly its size. */
START_TEST(test_recover_torn_segment_header)
{
	enum { N = 10 };
	char keys[N][16], vals[N][32];
	struct cache_change *chs = make_sets(N, keys, vals);
	struct wal_segment *segs;
	size_t nseg, len;
	char *data, path[4096];

	write_session(1, chs, 5);
	write_session(6, chs + 5, 5);
	list_segments(&segs, &nseg);
	ck_assert_uint_eq(nseg, 2);
	snprintf(path, sizeof(path), "%s", segs[1].path);
	free(segs);
	data = read_file(path, &len);
	for (size_t cut = 0; cut < WAL_SEGMENT_HDR_SIZE; cut++) {
		struct seen *s = calloc(1, sizeof(*s));
		struct wal_recovery rec;

		write_file(path, data, cut);
		ck_assert_int_eq(wal_recover(tmpdir, 0, seen_fn, s, &rec), 0);
		ck_assert_uint_eq(s->n, 5);
		ck_assert_uint_eq(rec.last_lsn, 5);
		ck_assert_msg(rec.dropped_bytes == cut,
		              "segment header torn at %zu bytes: dropped_bytes %" PRIu64 ", want %zu",
		              cut, rec.dropped_bytes, cut);
		free(s);
	}
	free(data);
	free(chs);
}
END_TEST

/* An empty data dir (no wal/ at all) recovers nothing and succeeds. */
START_TEST(test_recover_empty)
{
	struct seen *s = calloc(1, sizeof(*s));
	struct wal_recovery rec;

	ck_assert_int_eq(wal_recover(tmpdir, 0, seen_fn, s, &rec), 0);
	ck_assert_uint_eq(s->n, 0);
	ck_assert_uint_eq(rec.last_lsn, 0);
	ck_assert_uint_eq(rec.dropped_bytes, 0);
	free(s);
}
END_TEST

/* Re-opening at the LSN of an empty segment reuses it without a second
 * header (the file still parses). */
START_TEST(test_reopen_empty_segment)
{
	char keys[3][16], vals[3][32];
	struct cache_change *chs = make_sets(3, keys, vals);
	struct seen *s = calloc(1, sizeof(*s));
	struct wal_recovery rec;

	write_session(1, chs, 0);
	write_session(1, chs, 3);
	ck_assert_int_eq(wal_recover(tmpdir, 0, seen_fn, s, &rec), 0);
	ck_assert_uint_eq(s->n, 3);
	ck_assert_uint_eq(rec.dropped_bytes, 0);
	free(s);
	free(chs);
}
END_TEST

/******** REPLAY INTO A CACHE ********/

static struct cache *
new_cache(void)
{
	struct cache_config cfg = {
		.mem_limit = 64u << 20, .item_size_max = 1 << 20, .hashpower = 10, .use_cas = true,
	};
	struct cache *c = cache_create(&cfg);

	ck_assert_ptr_nonnull(c);
	return c;
}

static void
replay_fn(void *arg, const struct wal_record *rec)
{
	cache_apply(arg, &rec->change);
}

struct snapshot {
	int present;
	char value[64];
	uint32_t flags, exptime;
	uint64_t cas;
};

static void
snap(struct cache *c, const char *key, struct snapshot *out)
{
	struct item *it = cache_get(c, key, strlen(key));

	memset(out, 0, sizeof(*out));
	if (it == NULL)
		return;
	out->present = 1;
	snprintf(out->value, sizeof(out->value), "%.*s", (int)it->nbytes, item_value(it));
	out->flags = it->flags;
	out->exptime = it->exptime;
	out->cas = it->cas;
	cache_item_put(c, it);
}

static const char *const idem_keys[] = {"a", "b", "c", "d", "e", "f", "never"};
#define NIDEM (sizeof(idem_keys) / sizeof(idem_keys[0]))

static void
check_idempotent(const struct cache_change *chs, size_t n)
{
	struct cache *once = new_cache(), *twice = new_cache();
	struct wal_recovery rec;

	write_session(1, chs, n);
	ck_assert_int_eq(wal_recover(tmpdir, 0, replay_fn, once, &rec), 0);
	ck_assert_uint_eq(rec.replayed, n);
	ck_assert_int_eq(wal_recover(tmpdir, 0, replay_fn, twice, &rec), 0);
	ck_assert_int_eq(wal_recover(tmpdir, 0, replay_fn, twice, &rec), 0);
	for (size_t i = 0; i < NIDEM; i++) {
		struct snapshot a, b;

		snap(once, idem_keys[i], &a);
		snap(twice, idem_keys[i], &b);
		ck_assert_msg(a.present == b.present, "key %s: present %d after one replay, %d after two",
		              idem_keys[i], a.present, b.present);
		ck_assert_str_eq(a.value, b.value);
		ck_assert_uint_eq(a.flags, b.flags);
		ck_assert_uint_eq(a.exptime, b.exptime);
		ck_assert_uint_eq(a.cas, b.cas);
	}
	cache_destroy(once);
	cache_destroy(twice);
}

/* SET/overwrite/DELETE/TOUCH/EVICT replayed twice = replayed once, and the
 * state is the one the records describe. */
START_TEST(test_replay_idempotent)
{
	uint32_t far = cache_now() + 100000;
	struct cache_change chs[] = {
		test_set("a", "a1", 1, 0, 10),
		test_set("b", "b1", 2, 0, 11),
		test_set("c", "c1", 3, 0, 12),
		test_set("a", "a2", 4, far, 13),
		mk_keyed(CACHE_CHANGE_DELETE, "b", 0),
		mk_keyed(CACHE_CHANGE_TOUCH, "c", far + 5),
		test_set("d", "d1", 5, 0, 14),
		mk_keyed(CACHE_CHANGE_EVICT, "d", 0),
		test_set("e", "e1", 6, 0, 15),
		mk_keyed(CACHE_CHANGE_DELETE, "never", 0),   /* of a missing key */
		mk_keyed(CACHE_CHANGE_TOUCH, "never", far),
	};
	struct cache *c = new_cache();
	struct wal_recovery rec;
	struct snapshot s;

	check_idempotent(chs, sizeof(chs) / sizeof(chs[0]));
	ck_assert_int_eq(wal_recover(tmpdir, 0, replay_fn, c, &rec), 0);
	snap(c, "a", &s);
	ck_assert(s.present);
	ck_assert_str_eq(s.value, "a2");
	ck_assert_uint_eq(s.flags, 4);
	ck_assert_uint_eq(s.exptime, far);
	ck_assert_uint_eq(s.cas, 13);
	snap(c, "b", &s);
	ck_assert(!s.present);
	snap(c, "c", &s);
	ck_assert(s.present);
	ck_assert_uint_eq(s.exptime, far + 5);
	ck_assert_uint_eq(s.cas, 12);
	snap(c, "d", &s);
	ck_assert(!s.present);
	snap(c, "e", &s);
	ck_assert(s.present);
	ck_assert_str_eq(s.value, "e1");
	snap(c, "never", &s);
	ck_assert(!s.present);
	cache_destroy(c);
}
END_TEST

/* The same with a FLUSH in the middle: items set before it are gone, items
 * set after it survive, however many times the records are replayed. */
START_TEST(test_replay_idempotent_with_flush)
{
	struct cache_change chs[] = {
		test_set("a", "a1", 1, 0, 10),
		test_set("b", "b1", 2, 0, 11),
		mk_keyed(CACHE_CHANGE_FLUSH, "", 0),
		test_set("c", "c1", 3, 0, 13),
		test_set("a", "a2", 4, 0, 14),
	};
	struct cache *c = new_cache();
	struct wal_recovery rec;
	struct snapshot s;

	chs[2].key = NULL;
	chs[2].nkey = 0;
	chs[2].cas = 12;  /* a logged flush carries its cut: items below CAS 12 */
	write_session(1, chs, 5);
	ck_assert_int_eq(wal_recover(tmpdir, 0, replay_fn, c, &rec), 0);
	snap(c, "a", &s);
	ck_assert(s.present);
	ck_assert_str_eq(s.value, "a2");
	snap(c, "b", &s);
	ck_assert(!s.present);
	snap(c, "c", &s);
	ck_assert(s.present);
	cache_destroy(c);
	rm_rf(tmpdir);
	make_tmpdir();
	check_idempotent(chs, 5);
}
END_TEST

/* The store logs TTLs as absolute unix times: a record replayed later
 * (clock moved on) still expires at the same moment. */
START_TEST(test_ttl_absolute)
{
	struct wal_config cfg = {.data_dir = tmpdir, .fsync = WAL_FSYNC_NO, .segment_size = 1 << 20};
	struct cache *live = new_cache(), *later;
	struct store *st = store_create(live);
	struct wal *w = NULL;
	struct seen *s = calloc(1, sizeof(*s));
	struct wal_recovery rec;
	struct snapshot sn;
	uint32_t now = cache_now(), exp = now + 100;
	struct item *it;

	ck_assert_int_eq(wal_open(&cfg, 1, 1, NULL, NULL, &w), 0);
	store_attach_log(st, w);
	it = cache_item_create(live, "ttl", 3, 0, exp, 2);
	memcpy(item_value(it), "xy", 2);
	ck_assert_int_eq(store_store(st, it, CACHE_SET, 0, NULL), CACHE_STORED);
	cache_item_put(live, it);
	it = cache_item_create(live, "forever", 7, 0, 0, 1);
	memcpy(item_value(it), "z", 1);
	ck_assert_int_eq(store_store(st, it, CACHE_SET, 0, NULL), CACHE_STORED);
	cache_item_put(live, it);
	it = store_get_and_touch(st, "forever", 7, exp + 50);
	ck_assert_ptr_nonnull(it);
	cache_item_put(live, it);
	store_attach_log(st, NULL);
	wal_close(w);
	store_destroy(st);
	cache_destroy(live);

	ck_assert_int_eq(wal_recover(tmpdir, 0, seen_fn, s, &rec), 0);
	ck_assert_uint_eq(s->n, 3);
	ck_assert_uint_eq(s->exptime[0], exp);   /* absolute, not "100" */
	ck_assert_uint_eq(s->exptime[1], 0);
	ck_assert_int_eq(s->type[2], CACHE_CHANGE_TOUCH);
	ck_assert_uint_eq(s->exptime[2], exp + 50);

	/* replayed 60 s later: still alive, same deadline */
	cache_set_time_offset(60);
	later = new_cache();
	ck_assert_int_eq(wal_recover(tmpdir, 0, replay_fn, later, &rec), 0);
	snap(later, "ttl", &sn);
	ck_assert(sn.present);
	ck_assert_uint_eq(sn.exptime, exp);
	cache_destroy(later);
	/* replayed 101 s later: expired (and "forever" was touched to +150) */
	cache_set_time_offset(101);
	later = new_cache();
	ck_assert_int_eq(wal_recover(tmpdir, 0, replay_fn, later, &rec), 0);
	snap(later, "ttl", &sn);
	ck_assert(!sn.present);
	snap(later, "forever", &sn);
	ck_assert(sn.present);
	ck_assert_uint_eq(sn.exptime, exp + 50);
	cache_destroy(later);
	free(s);
}
END_TEST

/* Segment rotation by size during one session keeps a gap-free log. */
START_TEST(test_rotation_gap_free)
{
	struct wal_config cfg = {.data_dir = tmpdir, .fsync = WAL_FSYNC_ALWAYS, .segment_size = 4096};
	struct seen *s = calloc(1, sizeof(*s));
	struct wal_segment *segs;
	struct wal_recovery rec;
	struct wal *w = NULL;
	size_t nseg;
	char val[60];

	memset(val, 'r', sizeof(val) - 1);
	val[sizeof(val) - 1] = '\0';
	ck_assert_int_eq(wal_open(&cfg, 1, 2, NULL, NULL, &w), 0);
	for (int i = 0; i < 1000; i++) {
		struct cache_change ch = test_set("rot", val, 0, 0, (uint64_t)i + 1);

		wal_append(w, &ch);
		/* let the writer take small batches so that it rotates */
		if (i % 50 == 49) {
			while (wal_synced_lsn(w) < wal_last_lsn(w))
				usleep(1000);
		}
	}
	while (wal_synced_lsn(w) < wal_last_lsn(w))
		usleep(1000);
	ck_assert_uint_eq(wal_synced_lsn(w), 1000);
	wal_close(w);
	list_segments(&segs, &nseg);
	ck_assert_uint_gt(nseg, 3);
	free(segs);
	ck_assert_int_eq(wal_recover(tmpdir, 0, seen_fn, s, &rec), 0);
	ck_assert_uint_eq(s->n, 1000);
	ck_assert_uint_eq(rec.last_lsn, 1000);
	ck_assert_uint_eq(rec.last_epoch, 2);
	ck_assert_uint_eq(rec.dropped_bytes, 0);
	free(s);
}
END_TEST

/******** RECOVERY RELATIVE TO THE CHECKPOINT ********/

/* Cut a segment file to its first `keep` bytes. */
static void
cut_file(const char *path, size_t keep)
{
	ck_assert_msg(truncate(path, (off_t)keep) == 0, "truncate %s: %s", path, strerror(errno));
}

static void
segment_path(uint64_t first_lsn, char *out, size_t outlen)
{
	snprintf(out, outlen, "%s/wal/%016" PRIx64 ".log", tmpdir, first_lsn);
}

/* Bytes of a session's segment holding its first n records (header
 * included). */
static size_t
prefix_bytes(const struct cache_change *chs, size_t n)
{
	size_t off = WAL_SEGMENT_HDR_SIZE;

	for (size_t i = 0; i < n; i++)
		off += wal_record_size(&chs[i]);
	return off;
}

/* The checkpoint (LSN 30) is ahead of a WAL whose tail was torn (valid to
 * LSN 24): the log goes on at 31, and the next recovery keeps LSNs 31..40
 * (the bug: it read the jump 24 -> 31 as damage and cut the new writes). */
START_TEST(test_recover_checkpoint_ahead_of_torn_tail)
{
	enum { N = 40 };
	char keys[N][16], vals[N][32], path[4096], aside[4200];
	struct cache_change *chs = make_sets(N, keys, vals);
	struct seen *s = calloc(1, sizeof(*s));
	struct wal_recovery rec;
	struct wal_segment *segs;
	uint64_t next;
	size_t nseg;

	write_session(1, chs, 30);
	segment_path(1, path, sizeof(path));
	cut_file(path, prefix_bytes(chs, 24) + 7);   /* LSN 25 torn */
	ck_assert_int_eq(wal_recover(tmpdir, 30, seen_fn, s, &rec), 0);
	ck_assert_uint_eq(s->n, 0);
	next = (rec.last_lsn > 30 ? rec.last_lsn : 30) + 1;
	ck_assert_uint_eq(next, 31);
	/* A reopened wal appends the new writes after the checkpoint. */
	write_session(next, chs + 30, 10);
	s->n = 0;
	ck_assert_int_eq(wal_recover(tmpdir, 30, seen_fn, s, &rec), 0);
	ck_assert_msg(s->n == 10, "replayed %zu records after the restart, want 10", s->n);
	ck_assert_uint_eq(s->lsn[0], 31);
	ck_assert_uint_eq(s->lsn[9], 40);
	ck_assert_uint_eq(rec.last_lsn, 40);
	ck_assert_uint_eq(rec.dropped_segments, 0);
	/* The retained log is gap-free and starts after the checkpoint. */
	list_segments(&segs, &nseg);
	ck_assert_uint_eq(nseg, 1);
	ck_assert_uint_eq(segs[0].first_lsn, 31);
	free(segs);
	snprintf(aside, sizeof(aside), "%s.covered", path);
	ck_assert(file_exists(aside));
	/* and a third recovery finds it clean */
	s->n = 0;
	ck_assert_int_eq(wal_recover(tmpdir, 30, seen_fn, s, &rec), 0);
	ck_assert_uint_eq(s->n, 10);
	ck_assert_uint_eq(rec.dropped_bytes, 0);
	ck_assert_uint_eq(rec.covered_segments, 0);
	free(s);
	free(chs);
}
END_TEST

/* Damage in the first of three segments (LSN 5 corrupt).  With the
 * checkpoint at 15 the first segment is wholly covered (the second starts
 * at 11): recovery does not read it (rule 6: startup time must not grow
 * with the backlog), keeps it as it is and replays LSNs 16..30; a replica
 * reading it later gets -EILSEQ and a full resync.  With the checkpoint at
 * 3 the damage is not covered: the later segments are set aside. */
START_TEST(test_recover_covered_damage_keeps_later_segments)
{
	enum { N = 30 };
	char keys[N][16], vals[N][32], p0[4096], p1[4096], p2[4096], aside[4200];
	struct cache_change *chs = make_sets(N, keys, vals);
	struct seen *s = calloc(1, sizeof(*s));
	struct wal_recovery rec;
	size_t len, off = prefix_bytes(chs, 4);
	char *data;

	for (int round = 0; round < 2; round++) {
		uint64_t ckpt = round == 0 ? 15 : 3;

		rm_rf(tmpdir);
		ck_assert_int_eq(mkdir(tmpdir, 0755), 0);
		write_session(1, chs, 10);
		write_session(11, chs + 10, 10);
		write_session(21, chs + 20, 10);
		segment_path(1, p0, sizeof(p0));
		segment_path(11, p1, sizeof(p1));
		segment_path(21, p2, sizeof(p2));
		data = read_file(p0, &len);
		data[off + 25] ^= 0x01;
		write_file(p0, data, len);
		free(data);
		s->n = 0;
		ck_assert_int_eq(wal_recover(tmpdir, ckpt, seen_fn, s, &rec), 0);
		if (ckpt == 15) {
			ck_assert_msg(s->n == 15, "checkpoint 15: replayed %zu, want 15", s->n);
			ck_assert_uint_eq(s->lsn[0], 16);
			ck_assert_uint_eq(rec.last_lsn, 30);
			ck_assert_uint_eq(rec.dropped_segments, 0);
			ck_assert_uint_eq(rec.dropped_bytes, 0);
			ck_assert_uint_eq(rec.covered_segments, 0);
			ck_assert(file_exists(p1));
			ck_assert(file_exists(p2));
			ck_assert_uint_eq(file_size(p0), len);  /* not read, not cut */
			snprintf(aside, sizeof(aside), "%s.covered", p0);
			ck_assert(!file_exists(aside));
		} else {
			ck_assert_uint_eq(s->n, 1);   /* LSN 4 */
			ck_assert_uint_eq(rec.last_lsn, 4);
			ck_assert_uint_eq(rec.dropped_segments, 2);
			ck_assert(!file_exists(p1));
			ck_assert(!file_exists(p2));
			ck_assert_uint_eq(file_size(p0), off);
		}
		/* either way the second pass finds a clean log */
		s->n = 0;
		ck_assert_int_eq(wal_recover(tmpdir, ckpt, seen_fn, s, &rec), 0);
		ck_assert_uint_eq(s->n, ckpt == 15 ? 15 : 1);
		ck_assert_uint_eq(rec.dropped_bytes, 0);
	}
	free(s);
	free(chs);
}
END_TEST

/******** LIVE READER ********/

#define POLL_DEADLINE_S 10

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void
wait_written(struct wal *w, uint64_t lsn)
{
	double deadline = now_s() + POLL_DEADLINE_S;

	while (wal_written_lsn(w) < lsn) {
		ck_assert_msg(now_s() < deadline, "written LSN %" PRIu64 " never reached %" PRIu64,
		              wal_written_lsn(w), lsn);
		usleep(1000);
	}
}

static struct wal *
open_wal(uint64_t next_lsn, size_t segment_size)
{
	struct wal_config cfg = {.data_dir = tmpdir, .fsync = WAL_FSYNC_NO, .segment_size = segment_size};
	struct wal *w = NULL;

	ck_assert_int_eq(wal_open(&cfg, next_lsn, 1, NULL, NULL, &w), 0);
	return w;
}

static void
append_all(struct wal *w, const struct cache_change *chs, size_t n)
{
	for (size_t i = 0; i < n; i++)
		ck_assert_uint_ne(wal_append(w, &chs[i]), 0);
}

/* Expect the reader's next record to be `lsn`. */
static void
expect_record(struct wal_reader *r, uint64_t lsn)
{
	const char *rec;
	size_t len;
	uint64_t got = 0;
	int rc = wal_reader_next(r, &rec, &len, &got);

	ck_assert_msg(rc == 1 && got == lsn, "reader: rc %d LSN %" PRIu64 ", want LSN %" PRIu64,
	              rc, got, lsn);
}

/* A follower's run of records appended with `more` (the writer not woken
 * per record), larger than the writer's buffer limit so the appender waits
 * for space in the middle of the run, then wal_kick(): every record is
 * written once, in order, with its LSN. */
START_TEST(test_append_run_then_kick)
{
	enum { N = 200, VALUE = 64 << 10 };   /* 12.5 MiB: over WAL_BUFFER_MAX */
	char *value = malloc(VALUE + 1), key[16];
	struct wal_reader *r = NULL;
	struct wal *w = open_wal(1, 4 << 20);
	uint64_t i;

	ck_assert_ptr_nonnull(value);
	memset(value, 'v', VALUE);
	value[VALUE] = '\0';
	for (i = 1; i <= N; i++) {
		struct wal_record rec = {.lsn = i, .epoch = 7};

		snprintf(key, sizeof(key), "k%" PRIu64, i);
		rec.change = test_set(key, value, 0, 0, i);
		ck_assert_int_eq(wal_append_record(w, &rec, i < N), 0);
	}
	wal_kick(w);
	wait_written(w, N);
	ck_assert_int_eq(wal_reader_open(w, 1, &r), 0);
	for (i = 1; i <= N; i++)
		expect_record(r, i);
	wal_reader_close(r);
	ck_assert_int_eq(wal_error(w), 0);
	wal_close(w);
	free(value);
}
END_TEST

/* The unfolded tail's bound: with room for 8 records, the 9th append waits
 * (an appender thread, not the test's) until the checkpointer says it has
 * folded; lifting the bound lets appends through at once; stats count the
 * wait. */
struct tail_appender {
	struct wal *w;
	int done;          /* atomic: records appended */
};

static void *
tail_append_main(void *arg)
{
	struct tail_appender *a = arg;
	struct cache_change ch = test_set("k", "v", 0, 0, 1);

	for (int i = 0; i < 4; i++) {
		ck_assert_uint_ne(wal_append(a->w, &ch), 0);
		__atomic_add_fetch(&a->done, 1, __ATOMIC_RELEASE);
	}
	return NULL;
}

static void
wait_appended(struct tail_appender *a, int n)
{
	for (int i = 0; i < 10000 && __atomic_load_n(&a->done, __ATOMIC_ACQUIRE) < n; i++)
		usleep(1000);
	ck_assert_int_eq(__atomic_load_n(&a->done, __ATOMIC_ACQUIRE), n);
}

START_TEST(test_tail_bound_waits_for_folding)
{
	struct cache_change ch = test_set("k", "v", 0, 0, 1);
	struct wal *w = open_wal(1, 1 << 20);
	struct tail_appender a = {.w = w};
	struct wal_tail_stats st;
	pthread_t t;

	wal_tail_init(w, 0, 0);
	wal_tail_limit(w, 8, 1 << 20);
	for (int i = 0; i < 6; i++)
		ck_assert_uint_ne(wal_append(w, &ch), 0);
	ck_assert_int_eq(pthread_create(&t, NULL, tail_append_main, &a), 0);
	wait_appended(&a, 2);                       /* records 7 and 8 fit */
	wal_tail_stats(w, &st);
	ck_assert_uint_eq(st.records, 8);
	ck_assert_uint_eq(st.max_records, 8);
	usleep(50 * 1000);                          /* the 9th must still wait */
	ck_assert_int_eq(__atomic_load_n(&a.done, __ATOMIC_ACQUIRE), 2);
	wal_tail_folded(w, 1, 0);                   /* room for one more */
	wait_appended(&a, 3);
	wal_tail_limit(w, 0, 0);                    /* lifted: the last goes through */
	wait_appended(&a, 4);
	ck_assert_int_eq(pthread_join(t, NULL), 0);
	wal_tail_stats(w, &st);
	ck_assert_uint_eq(st.records, 9);           /* LSNs 2..10 unfolded */
	ck_assert_uint_ge(st.waits, 2);
	wal_tail_folded(w, 10, 0);                  /* everything: no bytes left either */
	wal_tail_stats(w, &st);
	ck_assert_uint_eq(st.records, 0);
	ck_assert_uint_eq(st.bytes, 0);
	wal_close(w);
}
END_TEST

/* The next segment's file exists but its header is not written yet: the
 * reader says "nothing yet" and reads the records once they are there (the
 * bug: it had moved to that segment already and returned 0 for ever). */
START_TEST(test_reader_segment_header_not_yet_written)
{
	enum { N = 6 };
	char keys[N][16], vals[N][32], path[4096], *hdr;
	struct cache_change *chs = make_sets(N, keys, vals);
	struct wal_reader *r = NULL;
	const char *rec;
	size_t len, hlen;
	uint64_t lsn;
	struct wal *w;

	write_session(1, chs, 3);
	w = open_wal(4, 1 << 20);   /* segment 4: header only */
	segment_path(4, path, sizeof(path));
	hdr = read_file(path, &hlen);
	ck_assert_uint_eq(hlen, WAL_SEGMENT_HDR_SIZE);
	ck_assert_int_eq(wal_reader_open(w, 1, &r), 0);
	for (uint64_t i = 1; i <= 3; i++)
		expect_record(r, i);
	cut_file(path, 0);   /* as between the writer's open() and its header */
	for (int i = 0; i < 3; i++)
		ck_assert_int_eq(wal_reader_next(r, &rec, &len, &lsn), 0);
	write_file(path, hdr, hlen);
	append_all(w, chs + 3, 3);
	wait_written(w, 6);
	for (uint64_t i = 4; i <= 6; i++)
		expect_record(r, i);
	ck_assert_int_eq(wal_reader_next(r, &rec, &len, &lsn), 0);
	wal_reader_close(r);
	wal_close(w);
	free(hdr);
	free(chs);
}
END_TEST

/* A middle segment deleted behind the log's back: the reader that reaches
 * it has left the backlog (-ENOENT), never "nothing yet". */
START_TEST(test_reader_hole_is_enoent)
{
	enum { N = 9 };
	char keys[N][16], vals[N][32], path[4096];
	struct cache_change *chs = make_sets(N, keys, vals);
	struct wal_reader *r = NULL;
	const char *rec;
	size_t len;
	uint64_t lsn;
	struct wal *w;

	write_session(1, chs, 3);
	write_session(4, chs + 3, 3);
	w = open_wal(7, 1 << 20);
	append_all(w, chs + 6, 3);
	wait_written(w, 9);
	ck_assert_int_eq(wal_reader_open(w, 1, &r), 0);
	for (uint64_t i = 1; i <= 3; i++)
		expect_record(r, i);
	segment_path(4, path, sizeof(path));
	ck_assert_int_eq(unlink(path), 0);
	for (int i = 0; i < 3; i++)
		ck_assert_int_eq(wal_reader_next(r, &rec, &len, &lsn), -ENOENT);
	wal_reader_close(r);
	/* below the oldest segment: the open itself says so */
	ck_assert_int_eq(wal_trim(w, 9, 0), 2);
	ck_assert_int_eq(wal_reader_open(w, 2, &r), -ENOENT);
	wal_close(w);
	free(chs);
}
END_TEST

/******** RETENTION ********/

struct trim_run {
	struct wal *w;
	unsigned seed;
	double until;
	uint64_t reads, opens, refused;  /* counted by the reader threads */
	uint64_t failures;               /* > 0: a reader lost a record it was promised */
	char why[256];
};

static void
trim_fail(struct trim_run *t, const char *what, int rc, uint64_t lsn)
{
	if (__atomic_fetch_add(&t->failures, 1, __ATOMIC_RELAXED) == 0)
		snprintf(t->why, sizeof(t->why), "%s: rc %d at LSN %" PRIu64, what, rc, lsn);
}

/* Open readers at random positions in the backlog, read a random number
 * of records in order, close; never lose a record once open. */
static void *
trim_reader(void *arg)
{
	struct trim_run *t = arg;
	unsigned seed = __atomic_add_fetch(&t->seed, 7919, __ATOMIC_RELAXED);

	while (now_s() < t->until) {
		uint64_t oldest = wal_oldest_lsn(t->w), written = wal_written_lsn(t->w);
		uint64_t from = oldest + (written > oldest ? (uint64_t)rand_r(&seed) % (written - oldest) : 0);
		uint64_t want = from, n = 1 + (uint64_t)rand_r(&seed) % 2000;
		struct wal_reader *r;
		int rc = wal_reader_open(t->w, from, &r);

		if (rc == -ENOENT) {   /* trimmed between the two calls */
			__atomic_add_fetch(&t->refused, 1, __ATOMIC_RELAXED);
			continue;
		}
		if (rc != 0) {
			trim_fail(t, "open", rc, from);
			break;
		}
		__atomic_add_fetch(&t->opens, 1, __ATOMIC_RELAXED);
		while (want < from + n && now_s() < t->until) {
			const char *rec;
			size_t len;
			uint64_t lsn;

			rc = wal_reader_next(r, &rec, &len, &lsn);
			if (rc == 0) {
				usleep(200);
				continue;
			}
			if (rc < 0 || lsn != want) {
				trim_fail(t, "next", rc, want);
				break;
			}
			want++;
			__atomic_add_fetch(&t->reads, 1, __ATOMIC_RELAXED);
		}
		wal_reader_close(r);
	}
	return NULL;
}

/* Readers open and close while the log is written and trimmed as hard as
 * it can be (everything written counts as checkpointed, no backlog): no
 * reader ever misses a segment its registered position needs. */
START_TEST(test_trim_respects_open_readers)
{
	enum { NREADERS = 3 };
	struct trim_run t = {.seed = 12345, .until = now_s() + 2.0};
	pthread_t th[NREADERS];
	char val[40];
	uint64_t trimmed = 0;
	unsigned i = 0;

	memset(val, 'v', sizeof(val) - 1);
	val[sizeof(val) - 1] = '\0';
	t.w = open_wal(1, 2048);
	for (int k = 0; k < NREADERS; k++)
		ck_assert_int_eq(pthread_create(&th[k], NULL, trim_reader, &t), 0);
	while (now_s() < t.until && i < 40000) {
		struct cache_change ch = test_set("trim", val, 0, 0, ++i);
		int rc;

		ck_assert_uint_ne(wal_append(t.w, &ch), 0);
		if (i % 64 == 0) {
			rc = wal_trim(t.w, wal_written_lsn(t.w), 0);
			ck_assert_int_ge(rc, 0);
			trimmed += (uint64_t)rc;
		}
		if (i % 512 == 0)
			usleep(2000);   /* let the readers catch up now and then */
	}
	for (int k = 0; k < NREADERS; k++)
		pthread_join(th[k], NULL);
	ck_assert_msg(t.failures == 0, "%" PRIu64 " reader failures, first: %s", t.failures, t.why);
	ck_assert_msg(trimmed > 0 && t.opens > 0 && t.reads > 0,
	              "trimmed %" PRIu64 " segments, %" PRIu64 " opens, %" PRIu64 " reads",
	              trimmed, t.opens, t.reads);
	wal_close(t.w);
}
END_TEST

static bool
has_slot(struct wal *w, const char *name, uint64_t *lsn, unsigned *flags)
{
	struct wal_slot_info info[16];
	size_t n = wal_slot_list(w, info, 16);

	ck_assert_uint_le(n, 16);
	for (size_t i = 0; i < n; i++) {
		if (strcmp(info[i].name, name) == 0) {
			if (lsn != NULL)
				*lsn = info[i].lsn;
			if (flags != NULL)
				*flags = info[i].flags;
			return true;
		}
	}
	return false;
}

/* A replica slot keeps the log only within the backlog: beyond it the slot
 * is invalidated, the segments go, and a reader opened at the slot's
 * position is told it left the backlog.  Other slots are not capped. */
START_TEST(test_slot_beyond_backlog_invalidated)
{
	char val[40];
	struct wal_reader *r = NULL;
	struct wal *w = open_wal(1, 1024);
	struct wal_segment *segs;
	size_t nseg;

	memset(val, 's', sizeof(val) - 1);
	val[sizeof(val) - 1] = '\0';
	ck_assert_int_eq(wal_slot_set(w, "replica-1", 1, WAL_SLOT_REPLICA), 0);
	ck_assert_int_eq(wal_slot_set(w, "pin", 1, 0), 0);
	for (int i = 0; i < 200; i++) {
		struct cache_change ch = test_set("slot", val, 0, 0, (uint64_t)i + 1);

		ck_assert_uint_ne(wal_append(w, &ch), 0);
	}
	wait_written(w, 200);
	/* "pin" (not capped) keeps everything, so the replica slot costs nothing */
	ck_assert_int_eq(wal_trim(w, 200, 0), 0);
	ck_assert(has_slot(w, "replica-1", NULL, NULL));
	ck_assert_uint_eq(wal_oldest_lsn(w), 1);
	ck_assert_int_eq(wal_slot_drop(w, "pin"), 0);
	ck_assert_int_eq(wal_slot_drop(w, "pin"), -ENOENT);
	ck_assert_int_gt(wal_trim(w, 200, 1024), 0);
	ck_assert(!has_slot(w, "replica-1", NULL, NULL));
	ck_assert(has_slot(w, "checkpoint", NULL, NULL));
	ck_assert_uint_gt(wal_oldest_lsn(w), 1);
	ck_assert_int_eq(wal_reader_open(w, 1, &r), -ENOENT);
	/* what is left on disk is what the index holds: a gap-free suffix */
	list_segments(&segs, &nseg);
	ck_assert_uint_ge(nseg, 2);
	ck_assert_uint_eq(segs[0].first_lsn, wal_oldest_lsn(w));
	free(segs);
	ck_assert_int_eq(wal_reader_open(w, wal_oldest_lsn(w), &r), 0);
	expect_record(r, wal_oldest_lsn(w));
	wal_reader_close(r);
	wal_close(w);
}
END_TEST

/* Named slots survive close and reopen (temporary ones do not); a damaged
 * slots file is ignored, never fatal. */
START_TEST(test_slots_survive_reopen)
{
	char keys[3][16], vals[3][32], path[4096], *data;
	struct cache_change *chs = make_sets(3, keys, vals);
	struct wal *w = open_wal(1, 1 << 20);
	uint64_t lsn = 0;
	unsigned flags = 0;
	size_t len;

	append_all(w, chs, 3);
	ck_assert_int_eq(wal_slot_set(w, "replica-a", 2, WAL_SLOT_REPLICA), 0);
	ck_assert_int_eq(wal_slot_set(w, "keeper", 3, 0), 0);
	ck_assert_int_eq(wal_slot_set(w, "gone", 1, WAL_SLOT_TEMPORARY), 0);
	ck_assert_int_eq(wal_slot_set(w, "", 1, 0), -EINVAL);
	ck_assert_int_eq(wal_slots_save(w), 0);
	wal_close(w);

	w = open_wal(4, 1 << 20);
	ck_assert(has_slot(w, "replica-a", &lsn, &flags));
	ck_assert_uint_eq(lsn, 2);
	ck_assert_uint_eq(flags, WAL_SLOT_REPLICA);
	ck_assert(has_slot(w, "keeper", &lsn, &flags));
	ck_assert_uint_eq(lsn, 3);
	ck_assert_uint_eq(flags, 0);
	ck_assert(!has_slot(w, "gone", NULL, NULL));
	wal_close(w);

	snprintf(path, sizeof(path), "%s/wal/slots", tmpdir);
	data = read_file(path, &len);
	data[len / 2] ^= 0x10;
	write_file(path, data, len);
	w = open_wal(4, 1 << 20);
	ck_assert(!has_slot(w, "replica-a", NULL, NULL));
	wal_close(w);
	free(data);
	free(chs);
}
END_TEST

static Suite *
wal_suite(void)
{
	Suite *s = suite_create("wal");
	TCase *codec = tcase_create("codec");
	TCase *recovery = tcase_create("recovery");
	TCase *reader = tcase_create("reader");
	TCase *retention = tcase_create("retention");

	tcase_add_test(codec, test_roundtrip_every_type);
	tcase_add_test(codec, test_decode_consecutive);
	tcase_add_test(codec, test_documented_example);
	tcase_add_test(codec, test_documented_mset_example);
	tcase_add_test(codec, test_format1_set_decodes);
	tcase_add_test(codec, test_mset_replays_marks);
	tcase_add_test(codec, test_bit_flips_detected);
	tcase_add_test(codec, test_torn_tail_every_offset);
	tcase_add_test(codec, test_impossible_lengths);
	tcase_add_test(codec, test_impossible_fields);
	suite_add_tcase(s, codec);

	tcase_add_checked_fixture(recovery, setup_dir, teardown_dir);
	tcase_set_timeout(recovery, 60);
	tcase_add_test(recovery, test_recover_truncated_every_offset);
	tcase_add_test(recovery, test_recover_after_lsn);
	tcase_add_test(recovery, test_recover_bitflip_last_segment);
	tcase_add_test(recovery, test_recover_damaged_earlier_segment);
	tcase_add_test(recovery, test_recover_lsn_gap);
	tcase_add_test(recovery, test_recover_bad_segment_header);
	tcase_add_test(recovery, test_recover_torn_segment_header);
	tcase_add_test(recovery, test_recover_empty);
	tcase_add_test(recovery, test_reopen_empty_segment);
	tcase_add_test(recovery, test_replay_idempotent);
	tcase_add_test(recovery, test_replay_idempotent_with_flush);
	tcase_add_test(recovery, test_ttl_absolute);
	tcase_add_test(recovery, test_rotation_gap_free);
	tcase_add_test(recovery, test_recover_checkpoint_ahead_of_torn_tail);
	tcase_add_test(recovery, test_recover_covered_damage_keeps_later_segments);
	suite_add_tcase(s, recovery);

	tcase_add_checked_fixture(reader, setup_dir, teardown_dir);
	tcase_set_timeout(reader, 60);
	tcase_add_test(reader, test_reader_segment_header_not_yet_written);
	tcase_add_test(reader, test_reader_hole_is_enoent);
	tcase_add_test(reader, test_append_run_then_kick);
	tcase_add_test(reader, test_tail_bound_waits_for_folding);
	suite_add_tcase(s, reader);

	tcase_add_checked_fixture(retention, setup_dir, teardown_dir);
	tcase_set_timeout(retention, 60);
	tcase_add_test(retention, test_trim_respects_open_readers);
	tcase_add_test(retention, test_slot_beyond_backlog_invalidated);
	tcase_add_test(retention, test_slots_survive_reopen);
	suite_add_tcase(s, retention);
	return s;
}

int
main(void)
{
	return run_suite_in_tmpdir(wal_suite(), "wal", basedir, sizeof(basedir));
}
