/* libFuzzer target: the WAL record codec and recovery (storage/wal.c).
 *
 * 1. wal_decode() over the raw input, record after record: every record it
 *    accepts must re-encode (wal_encode) to exactly the same bytes, and
 *    `used` must be within the input.
 * 2. The input (after a 4-byte prefix) is written as one or two segment
 *    files, each starting with a valid 16-byte header ("CAIRNWAL", version 2,
 *    4 zero bytes), into DIR/wal/ of a private temp dir; wal_recover() runs
 *    with a callback that applies each record to a small cache through
 *    cache_apply() (as storage/persist.c's replay does).  Then a second
 *    wal_recover() must find a clean log: the same records (count, last LSN,
 *    epoch, same LSN sequence) and nothing dropped.
 *
 * Input layout:
 *   byte 0     bit 0: two segments; bit 1: the second segment gets no header
 *              (its bytes start with whatever the input holds);
 *              bit 2: replay only records after LSN byte3 (after_lsn)
 *   bytes 1-2  split point of the two segments (big-endian, mod length + 1)
 *   byte 3     second segment's name: first LSN 2 + byte3; after_lsn
 *   bytes 4..  the segment bytes after the header(s)
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "storage/cache.h"
#include "storage/log.h"
#include "storage/wal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

#define CHECK(cond)                                                          \
	do {                                                                 \
		if (!(cond)) {                                               \
			fprintf(stderr, "fuzz_wal: invariant failed: %s (%s:%d)\n", \
			        #cond, __FILE__, __LINE__);                  \
			abort();                                             \
		}                                                            \
	} while (0)

static char data_dir[256];
static char wal_dir[300];

static void
clean_wal_dir(void)
{
	DIR *d = opendir(wal_dir);
	struct dirent *de;
	char path[600];

	if (d == NULL)
		return;
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", wal_dir, de->d_name);
		unlink(path);
	}
	closedir(d);
}

static void
cleanup(void)
{
	clean_wal_dir();
	rmdir(wal_dir);
	rmdir(data_dir);
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	const char *base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";

	(void)argc;
	(void)argv;
	if (getenv("TMPDIR") != NULL)
		base = getenv("TMPDIR");
	snprintf(data_dir, sizeof(data_dir), "%s/cairn-fuzz-wal-XXXXXX", base);
	if (mkdtemp(data_dir) == NULL) {
		perror("mkdtemp");
		abort();
	}
	snprintf(wal_dir, sizeof(wal_dir), "%s/wal", data_dir);
	if (mkdir(wal_dir, 0700) != 0) {
		perror("mkdir");
		abort();
	}
	atexit(cleanup);
	/* wal_recover logs each repair at LOG_ALWAYS; that is expected here. */
	log_set_level(0);
	return 0;
}

static void
write_file(const char *path, const uint8_t *hdr, size_t hlen, const uint8_t *p, size_t n)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);

	CHECK(fd >= 0);
	CHECK(hlen == 0 || write(fd, hdr, hlen) == (ssize_t)hlen);
	CHECK(n == 0 || write(fd, p, n) == (ssize_t)n);
	close(fd);
}

struct replay {
	struct cache *cache;
	uint64_t count, prev_lsn;
	uint64_t lsn_sum;   /* a fingerprint of the replayed LSNs */
	uint64_t after;
};

static void
replay_record(void *arg, const struct wal_record *rec)
{
	struct replay *r = arg;

	/* Replayed in order, gap-free, and only above after_lsn. */
	CHECK(rec->lsn > r->after);
	CHECK(r->prev_lsn == 0 || rec->lsn == r->prev_lsn + 1);
	CHECK(rec->change.type >= CACHE_CHANGE_SET && rec->change.type <= CACHE_CHANGE_EVICT);
	r->prev_lsn = rec->lsn;
	r->count++;
	r->lsn_sum = r->lsn_sum * 31 + rec->lsn;
	cache_apply(r->cache, &rec->change);
}

/* Decode successive records; each accepted one must round-trip. */
static void
decode_raw(const uint8_t *data, size_t size)
{
	size_t pos = 0;

	while (pos < size) {
		struct wal_record rec;
		size_t used = 0, n;
		char *re;
		enum wal_decode_status st = wal_decode((const char *)data + pos, size - pos, &rec, &used);

		CHECK(st == WAL_DECODE_OK || st == WAL_DECODE_SHORT || st == WAL_DECODE_CORRUPT);
		if (st != WAL_DECODE_OK)
			break;
		CHECK(used >= WAL_REC_HDR_SIZE && used <= size - pos);
		CHECK(rec.lsn != 0);
		n = wal_record_size(&rec.change);
		CHECK(n == used);
		re = malloc(n);
		CHECK(re != NULL);
		wal_encode(re, &rec.change, rec.lsn, rec.epoch);
		CHECK(memcmp(re, data + pos, n) == 0);
		free(re);
		pos += used;
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint8_t hdr[WAL_SEGMENT_HDR_SIZE] = {
		'C', 'A', 'I', 'R', 'N', 'W', 'A', 'L', 2, 0, 0, 0, 0, 0, 0, 0,
	};
	struct cache_config cfg = {
		.mem_limit = 2u << 20, .item_size_max = 1u << 20, .hashpower = 4, .use_cas = true,
	};
	struct wal_recovery r1, r2;
	struct replay p1, p2;
	char path[600];
	uint8_t mode, b3;
	size_t split;
	int rc;

	decode_raw(data, size);
	if (size < 4)
		return 0;
	mode = data[0];
	split = ((size_t)data[1] << 8 | data[2]);
	b3 = data[3];
	data += 4;
	size -= 4;
	split = (mode & 1) ? split % (size + 1) : size;

	clean_wal_dir();
	snprintf(path, sizeof(path), "%s/%016x.log", wal_dir, 1u);
	write_file(path, hdr, sizeof(hdr), data, split);
	if (mode & 1) {
		snprintf(path, sizeof(path), "%s/%016x.log", wal_dir, 2u + b3);
		if (mode & 2)
			write_file(path, NULL, 0, data + split, size - split);
		else
			write_file(path, hdr, sizeof(hdr), data + split, size - split);
	}

	memset(&p1, 0, sizeof(p1));
	p1.after = (mode & 4) ? b3 : 0;
	p1.cache = cache_create(&cfg);
	CHECK(p1.cache != NULL);
	p2 = p1;
	p2.cache = cache_create(&cfg);
	CHECK(p2.cache != NULL);

	rc = wal_recover(data_dir, p1.after, replay_record, &p1, &r1);
	CHECK(rc == 0);
	CHECK(r1.replayed == p1.count);
	CHECK(r1.last_lsn >= p1.prev_lsn);
	CHECK(p1.count == 0 || r1.last_lsn == p1.prev_lsn);

	/* The log is now a valid prefix: replaying it again drops nothing and
	 * yields the same records. */
	rc = wal_recover(data_dir, p2.after, replay_record, &p2, &r2);
	CHECK(rc == 0);
	if (r2.replayed != r1.replayed || r2.last_lsn != r1.last_lsn ||
	    r2.last_epoch != r1.last_epoch || r2.dropped_bytes != 0 ||
	    r2.dropped_segments != 0 || p2.lsn_sum != p1.lsn_sum) {
		fprintf(stderr,
		        "fuzz_wal: second recovery differs: replayed %llu/%llu last_lsn %llu/%llu "
		        "epoch %u/%u dropped_bytes %llu (first %llu) dropped_segments %llu (first %llu)\n",
		        (unsigned long long)r1.replayed, (unsigned long long)r2.replayed,
		        (unsigned long long)r1.last_lsn, (unsigned long long)r2.last_lsn,
		        r1.last_epoch, r2.last_epoch, (unsigned long long)r2.dropped_bytes,
		        (unsigned long long)r1.dropped_bytes, (unsigned long long)r2.dropped_segments,
		        (unsigned long long)r1.dropped_segments);
		abort();
	}

	cache_destroy(p1.cache);
	cache_destroy(p2.cache);
	return 0;
}
