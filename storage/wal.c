/* Write-ahead log: record codec, segment files, recovery, group commit.
 *
 * WAL SEGMENT FILES
 *   DATA/wal/<first LSN as 16 lowercase hex digits>.log, e.g.
 *   wal/000000000000002a.log holds records from LSN 42 on.  Records are only
 *   ever appended; a segment is closed when it passes the segment size and a
 *   new one is started at the next LSN.  The checkpointer deletes segments
 *   wholly below its checkpoint, keeping a backlog for replicas.
 *
 * SEGMENT HEADER (16 bytes)
 *    0: magic "CAIRNWAL" (8 bytes)
 *    8: format version, u32 little-endian (WAL_FORMAT_VERSION)
 *   12: reserved, u32, zero
 *
 * RECORD FORMAT (all integers little-endian)
 *    0: length    u32  bytes from offset 8 to the end of the record
 *                      (13 + body size)
 *    4: checksum  u32  low 32 bits of XXH3_64bits over bytes [8, 8 + length)
 *    8: lsn       u64  log sequence number, +1 per record
 *   16: epoch     u32  primary term that wrote the record
 *   20: type      u8   1 SET, 2 DELETE, 3 TOUCH, 4 FLUSH, 5 EVICT
 *   21: body
 *
 * RECORD BODIES (physical after-images, so replay is idempotent)
 *   SET     nkey u8, flags u32, exptime u32, cas u64, nbytes u32,
 *           key[nkey], value[nbytes]            (21 + nkey + nbytes bytes)
 *   DELETE  nkey u8, key[nkey]
 *   TOUCH   nkey u8, exptime u32, key[nkey]
 *   FLUSH   when u32, cas u64: when = 0: every item whose CAS is below cas
 *           is gone (flush_all now); else flush_all delayed to unix time when
 *   EVICT   nkey u8, key[nkey]
 *   exptime is an absolute unix time (0 = never), so a TTL means the same
 *   after a restart.  append/prepend/incr/decr/cas are logged as the SET of
 *   their result.
 *
 * VALIDITY: a record is valid if and only if
 *   (1) all 8 + length bytes are present (else it is a torn tail),
 *   (2) 13 <= length <= 13 + WAL_REC_BODY_MAX,
 *   (3) the checksum matches,
 *   (4) lsn > 0 and the type is known,
 *   (5) the body's own sizes add up to exactly length - 13, with 1 <= nkey
 *       <= 250 for keyed records.
 *
 * RECOVERY: segments are read in LSN order; reading stops at the first
 * invalid record.  That segment is truncated at the end of the last valid
 * record and later segments are renamed *.damaged (kept for inspection, never
 * replayed): the log stays a gap-free prefix of what was written.
 *
 * EXAMPLE: "set k 5 0 2\r\nhi\r\n" at LSN 1, epoch 1 is 45 bytes:
 *   25 00 00 00  <checksum 4 bytes>  01 00 00 00 00 00 00 00  01 00 00 00
 *   01  01  05 00 00 00  00 00 00 00  <cas 8 bytes>  02 00 00 00  6b  68 69
 */
#include "storage/wal.h"

#include <assert.h>
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

#include "storage/log.h"


#define WAL_MAGIC "CAIRNWAL"
#define WAL_FORMAT_VERSION 1      /* bump when a reader of the old format cannot read the new */
#define WAL_OFF_LENGTH 0
#define WAL_OFF_CHECKSUM 4
#define WAL_OFF_LSN 8
#define WAL_OFF_EPOCH 16
#define WAL_OFF_TYPE 20
#define WAL_OFF_BODY 21
#define WAL_LENGTH_FIXED 13       /* lsn + epoch + type */
#define WAL_SET_FIXED 21          /* nkey + flags + exptime + cas + nbytes */
#define WAL_BUFFER_MAX (8u << 20) /* appenders wait beyond this much unwritten */
#define WAL_UNSYNCED_MAX (8u << 20) /* fsync at least this often, whatever the policy */

_Static_assert(WAL_REC_HDR_SIZE == WAL_OFF_BODY, "record header is 21 bytes");
_Static_assert(WAL_OFF_BODY - WAL_OFF_LSN == WAL_LENGTH_FIXED, "length covers lsn..type");
_Static_assert(sizeof(WAL_MAGIC) - 1 + 8 == WAL_SEGMENT_HDR_SIZE, "segment header is 16 bytes");

/******** BYTES ********/

static void
put_u32(char *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (char)(v >> (8 * i));
}

static void
put_u64(char *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (char)(v >> (8 * i));
}

static uint32_t
get_u32(const char *p)
{
	uint32_t v = 0;

	for (int i = 3; i >= 0; i--)
		v = (v << 8) | (uint8_t)p[i];
	return v;
}

static uint64_t
get_u64(const char *p)
{
	uint64_t v = 0;

	for (int i = 7; i >= 0; i--)
		v = (v << 8) | (uint8_t)p[i];
	return v;
}

static uint32_t
record_checksum(const char *rec, uint32_t length)
{
	return (uint32_t)XXH3_64bits(rec + WAL_OFF_LSN, length);
}

/******** POLICY NAMES ********/

bool
wal_fsync_parse(const char *name, enum wal_fsync *out)
{
	if (strcmp(name, "always") == 0)
		*out = WAL_FSYNC_ALWAYS;
	else if (strcmp(name, "everysec") == 0)
		*out = WAL_FSYNC_EVERYSEC;
	else if (strcmp(name, "no") == 0)
		*out = WAL_FSYNC_NO;
	else
		return false;
	return true;
}

const char *
wal_fsync_name(enum wal_fsync policy)
{
	switch (policy) {
	case WAL_FSYNC_ALWAYS: return "always";
	case WAL_FSYNC_EVERYSEC: return "everysec";
	case WAL_FSYNC_NO: return "no";
	}
	return "?";
}

/******** RECORD CODEC ********/

static size_t
body_size(const struct cache_change *ch)
{
	switch (ch->type) {
	case CACHE_CHANGE_SET:
		return WAL_SET_FIXED + ch->nkey + ch->nbytes;
	case CACHE_CHANGE_TOUCH:
		return 1 + 4 + ch->nkey;
	case CACHE_CHANGE_DELETE:
	case CACHE_CHANGE_EVICT:
		return 1 + ch->nkey;
	case CACHE_CHANGE_FLUSH:
		return 4 + 8;
	}
	return 0;
}

size_t
wal_record_size(const struct cache_change *ch)
{
	return WAL_REC_HDR_SIZE + body_size(ch);
}

void
wal_encode(char *buf, const struct cache_change *ch, uint64_t lsn, uint32_t epoch)
{
	uint32_t length = (uint32_t)(WAL_LENGTH_FIXED + body_size(ch));
	char *b = buf + WAL_OFF_BODY;

	put_u32(buf + WAL_OFF_LENGTH, length);
	put_u64(buf + WAL_OFF_LSN, lsn);
	put_u32(buf + WAL_OFF_EPOCH, epoch);
	buf[WAL_OFF_TYPE] = (char)ch->type;
	switch (ch->type) {
	case CACHE_CHANGE_SET:
		b[0] = (char)ch->nkey;
		put_u32(b + 1, ch->flags);
		put_u32(b + 5, ch->exptime);
		put_u64(b + 9, ch->cas);
		put_u32(b + 17, ch->nbytes);
		memcpy(b + WAL_SET_FIXED, ch->key, ch->nkey);
		memcpy(b + WAL_SET_FIXED + ch->nkey, ch->value, ch->nbytes);
		break;
	case CACHE_CHANGE_TOUCH:
		b[0] = (char)ch->nkey;
		put_u32(b + 1, ch->exptime);
		memcpy(b + 5, ch->key, ch->nkey);
		break;
	case CACHE_CHANGE_DELETE:
	case CACHE_CHANGE_EVICT:
		b[0] = (char)ch->nkey;
		memcpy(b + 1, ch->key, ch->nkey);
		break;
	case CACHE_CHANGE_FLUSH:
		put_u32(b, ch->exptime);
		put_u64(b + 4, ch->cas);
		break;
	}
	put_u32(buf + WAL_OFF_CHECKSUM, record_checksum(buf, length));
}

/* Rule (5): the body's sizes add up and the key length is legal. */
static bool
decode_body(const char *b, size_t n, struct cache_change *ch)
{
	size_t nkey;

	switch (ch->type) {
	case CACHE_CHANGE_SET:
		if (n < WAL_SET_FIXED)
			return false;
		nkey = (uint8_t)b[0];
		ch->flags = get_u32(b + 1);
		ch->exptime = get_u32(b + 5);
		ch->cas = get_u64(b + 9);
		ch->nbytes = get_u32(b + 17);
		if (nkey == 0 || nkey > CACHE_KEY_MAX ||
		    (uint64_t)WAL_SET_FIXED + nkey + ch->nbytes != n)
			return false;
		ch->key = b + WAL_SET_FIXED;
		ch->nkey = nkey;
		ch->value = b + WAL_SET_FIXED + nkey;
		return true;
	case CACHE_CHANGE_TOUCH:
		if (n < 5)
			return false;
		nkey = (uint8_t)b[0];
		ch->exptime = get_u32(b + 1);
		ch->key = b + 5;
		ch->nkey = nkey;
		return nkey >= 1 && nkey <= CACHE_KEY_MAX && 5 + nkey == n;
	case CACHE_CHANGE_DELETE:
	case CACHE_CHANGE_EVICT:
		if (n < 1)
			return false;
		nkey = (uint8_t)b[0];
		ch->key = b + 1;
		ch->nkey = nkey;
		return nkey >= 1 && nkey <= CACHE_KEY_MAX && 1 + nkey == n;
	case CACHE_CHANGE_FLUSH:
		if (n != 12)
			return false;
		ch->exptime = get_u32(b);
		ch->cas = get_u64(b + 4);
		return true;
	}
	return false;
}

enum wal_decode_status
wal_decode(const char *buf, size_t len, struct wal_record *rec, size_t *used)
{
	uint32_t length;
	uint8_t type;

	if (len < WAL_OFF_LSN)
		return WAL_DECODE_SHORT;
	length = get_u32(buf + WAL_OFF_LENGTH);
	/* Rule (2) before (1): a garbage length must not make us wait. */
	if (length < WAL_LENGTH_FIXED || length > WAL_LENGTH_FIXED + WAL_REC_BODY_MAX)
		return WAL_DECODE_CORRUPT;
	if (len - WAL_OFF_LSN < length)
		return WAL_DECODE_SHORT;
	if (get_u32(buf + WAL_OFF_CHECKSUM) != record_checksum(buf, length))
		return WAL_DECODE_CORRUPT;
	memset(rec, 0, sizeof(*rec));
	rec->lsn = get_u64(buf + WAL_OFF_LSN);
	rec->epoch = get_u32(buf + WAL_OFF_EPOCH);
	type = (uint8_t)buf[WAL_OFF_TYPE];
	if (rec->lsn == 0 || type < CACHE_CHANGE_SET || type > CACHE_CHANGE_EVICT)
		return WAL_DECODE_CORRUPT;
	rec->change.type = (enum cache_change_type)type;
	if (!decode_body(buf + WAL_OFF_BODY, length - WAL_LENGTH_FIXED, &rec->change))
		return WAL_DECODE_CORRUPT;
	*used = WAL_OFF_LSN + (size_t)length;
	return WAL_DECODE_OK;
}

/******** SEGMENT FILES ********/

static int
wal_dir(const char *data_dir, char *out, size_t outlen)
{
	int n = snprintf(out, outlen, "%s/wal", data_dir);

	return n < 0 || (size_t)n >= outlen ? -ENAMETOOLONG : 0;
}

static int
segment_cmp(const void *a, const void *b)
{
	const struct wal_segment *x = a, *y = b;

	return x->first_lsn < y->first_lsn ? -1 : x->first_lsn > y->first_lsn;
}

int
wal_list_segments(const char *data_dir, struct wal_segment **out, size_t *n)
{
	struct wal_segment *segs = NULL;
	size_t count = 0, cap = 0;
	char dir[3800];  /* leaves room for "/<name>" in wal_segment.path */
	struct dirent *de;
	DIR *d;
	int rc = wal_dir(data_dir, dir, sizeof(dir));

	if (rc != 0)
		return rc;
	d = opendir(dir);
	if (d == NULL)
		return -errno;
	while ((de = readdir(d)) != NULL) {
		struct wal_segment seg;
		struct stat st;
		char hex[17];
		int len = (int)strlen(de->d_name);

		if (len != 20 || strcmp(de->d_name + 16, ".log") != 0 ||
		    strspn(de->d_name, "0123456789abcdef") != 16)
			continue;
		memcpy(hex, de->d_name, 16);
		hex[16] = '\0';
		seg.first_lsn = strtoull(hex, NULL, 16);
		snprintf(seg.path, sizeof(seg.path), "%s/%s", dir, de->d_name);
		if (stat(seg.path, &st) != 0)
			continue;
		seg.size = (uint64_t)st.st_size;
		if (count == cap) {
			struct wal_segment *p;

			cap = cap ? cap * 2 : 16;
			p = realloc(segs, cap * sizeof(*p));
			if (p == NULL) {
				free(segs);
				closedir(d);
				return -ENOMEM;
			}
			segs = p;
		}
		segs[count++] = seg;
	}
	closedir(d);
	if (count > 0)
		qsort(segs, count, sizeof(*segs), segment_cmp);
	*out = segs;
	*n = count;
	return 0;
}

int
wal_read_segment(const char *path, char **buf, size_t *len)
{
	struct stat st;
	char *data;
	size_t got = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC), rc = 0;

	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) != 0) {
		rc = -errno;
		goto out_close;
	}
	data = malloc((size_t)st.st_size + 1);
	if (data == NULL) {
		rc = -ENOMEM;
		goto out_close;
	}
	while (got < (size_t)st.st_size) {
		ssize_t n = read(fd, data + got, (size_t)st.st_size - got);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			rc = n < 0 ? -errno : -EIO;
			free(data);
			goto out_close;
		}
		got += (size_t)n;
	}
	if (got < WAL_SEGMENT_HDR_SIZE || memcmp(data, WAL_MAGIC, 8) != 0 ||
	    get_u32(data + 8) != WAL_FORMAT_VERSION) {
		free(data);
		rc = -EINVAL;
		goto out_close;
	}
	memmove(data, data + WAL_SEGMENT_HDR_SIZE, got - WAL_SEGMENT_HDR_SIZE);
	*buf = data;
	*len = got - WAL_SEGMENT_HDR_SIZE;
out_close:
	close(fd);
	return rc;
}

static int
fsync_dir(const char *data_dir)
{
	char dir[4096];
	int fd, rc = wal_dir(data_dir, dir, sizeof(dir));

	if (rc != 0)
		return rc;
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	rc = fsync(fd) == 0 ? 0 : -errno;
	close(fd);
	return rc;
}

/******** LIVE READER ********/

#define READER_CHUNK (1u << 20)

struct wal_reader {
	char *data_dir;
	int fd;             /* current segment, or -1 */
	uint64_t seg_first; /* first LSN of the current segment */
	uint64_t next_lsn;  /* the LSN the next record must have */
	char *buf;          /* bytes read and not yet returned */
	size_t pos, len, cap;
	size_t last_len;    /* size of the record returned last, for unread */
};

/* Open the segment that must hold `lsn`, positioned after its header. */
static int
reader_open_segment(struct wal_reader *r, uint64_t lsn, bool exact)
{
	struct wal_segment *segs;
	size_t count, i, pick = SIZE_MAX;
	char header[WAL_SEGMENT_HDR_SIZE];
	ssize_t n;
	int rc = wal_list_segments(r->data_dir, &segs, &count), fd;

	if (rc != 0)
		return rc;
	for (i = 0; i < count; i++) {
		if (exact ? segs[i].first_lsn == lsn : segs[i].first_lsn <= lsn)
			pick = i;
	}
	if (pick == SIZE_MAX) {
		free(segs);
		return -ENOENT;
	}
	if (exact && r->fd >= 0 && segs[pick].first_lsn == r->seg_first) {
		free(segs);
		return -EAGAIN;  /* that is the one we are reading: nothing newer */
	}
	r->seg_first = segs[pick].first_lsn;
	fd = open(segs[pick].path, O_RDONLY | O_CLOEXEC);
	free(segs);
	if (fd < 0)
		return errno == ENOENT ? -ENOENT : -errno;
	n = read(fd, header, sizeof(header));
	if (n >= 0 && n < (ssize_t)sizeof(header) && exact) {
		close(fd);
		return -EAGAIN;  /* the writer is still creating it */
	}
	if (n != (ssize_t)sizeof(header) || memcmp(header, WAL_MAGIC, 8) != 0) {
		close(fd);
		return -EILSEQ;
	}
	if (r->fd >= 0)
		close(r->fd);
	r->fd = fd;
	r->pos = r->len = 0;
	return 0;
}

int
wal_reader_open(const char *data_dir, uint64_t from_lsn, struct wal_reader **out)
{
	struct wal_reader *r = calloc(1, sizeof(*r));
	int rc;

	if (r == NULL)
		return -ENOMEM;
	r->fd = -1;
	r->next_lsn = from_lsn;
	r->data_dir = strdup(data_dir);
	if (r->data_dir == NULL || (rc = reader_open_segment(r, from_lsn, false)) != 0) {
		rc = r->data_dir == NULL ? -ENOMEM : rc;
		free(r->data_dir);
		free(r);
		return rc;
	}
	*out = r;
	return 0;
}

/* Read more of the current segment.  Returns bytes read, 0 at its end. */
static ssize_t
reader_fill(struct wal_reader *r)
{
	ssize_t n;

	if (r->pos > 0) {
		memmove(r->buf, r->buf + r->pos, r->len - r->pos);
		r->len -= r->pos;
		r->pos = 0;
	}
	if (r->cap - r->len < READER_CHUNK) {
		size_t cap = r->cap ? r->cap * 2 : 2 * READER_CHUNK;
		char *p = realloc(r->buf, cap);

		if (p == NULL)
			return -ENOMEM;
		r->buf = p;
		r->cap = cap;
	}
	n = read(r->fd, r->buf + r->len, r->cap - r->len);
	if (n < 0)
		return -errno;
	r->len += (size_t)n;
	return n;
}

int
wal_reader_next(struct wal_reader *r, const char **rec, size_t *len, uint64_t *lsn)
{
	for (;;) {
		struct wal_record decoded;
		size_t used;
		ssize_t n;

		switch (wal_decode(r->buf + r->pos, r->len - r->pos, &decoded, &used)) {
		case WAL_DECODE_OK:
			if (decoded.lsn < r->next_lsn) {  /* before our start: skip */
				r->pos += used;
				continue;
			}
			if (decoded.lsn != r->next_lsn)
				return -EILSEQ;
			*rec = r->buf + r->pos;
			*len = used;
			*lsn = decoded.lsn;
			r->pos += used;
			r->last_len = used;
			r->next_lsn++;
			return 1;
		case WAL_DECODE_SHORT:
			break;
		case WAL_DECODE_CORRUPT:
			return -EILSEQ;
		}
		n = reader_fill(r);
		if (n < 0)
			return (int)n;
		if (n > 0)
			continue;
		/* End of this segment: has the next one begun? */
		if (r->pos != r->len)
			return 0;  /* a record is being written */
		n = reader_open_segment(r, r->next_lsn, true);
		if (n == -EAGAIN)
			return 0;
		if (n == -ENOENT) {
			/* Not yet rotated, or trimmed away: the oldest segment tells. */
			struct wal_segment *segs;
			size_t count;
			bool trimmed = false;

			if (wal_list_segments(r->data_dir, &segs, &count) == 0) {
				trimmed = count > 0 && segs[0].first_lsn > r->next_lsn;
				free(segs);
			}
			return trimmed ? -ENOENT : 0;
		}
		if (n != 0)
			return (int)n;
	}
}

uint64_t
wal_reader_next_lsn(const struct wal_reader *r)
{
	return r->next_lsn;
}

void
wal_reader_unread(struct wal_reader *r)
{
	r->pos -= r->last_len;
	r->last_len = 0;
	r->next_lsn--;
}

void
wal_reader_close(struct wal_reader *r)
{
	if (r == NULL)
		return;
	if (r->fd >= 0)
		close(r->fd);
	free(r->buf);
	free(r->data_dir);
	free(r);
}

/******** RECOVERY ********/

/* Keep the valid prefix of a damaged segment; set the rest aside. */
static void
cut_damage(struct wal_segment *segs, size_t n, size_t bad, uint64_t good_bytes,
           struct wal_recovery *out)
{
	uint64_t keep = WAL_SEGMENT_HDR_SIZE + good_bytes;
	size_t i;

	if (segs[bad].size < WAL_SEGMENT_HDR_SIZE || keep > segs[bad].size)
		keep = 0;  /* not even a header: nothing to keep */
	out->dropped_bytes += segs[bad].size - keep;
	if (keep == 0 ? unlink(segs[bad].path) : truncate(segs[bad].path, (off_t)keep))
		log_msg(LOG_ALWAYS, "wal: cannot cut %s: %s", segs[bad].path, strerror(errno));
	log_msg(LOG_ALWAYS, "wal: %s is damaged after byte %" PRIu64 ": dropped %" PRIu64
	            " bytes; the log now ends at LSN %" PRIu64,
	            segs[bad].path, keep, out->dropped_bytes, out->last_lsn);
	for (i = bad + 1; i < n; i++) {
		char aside[sizeof(segs[i].path) + 16];

		snprintf(aside, sizeof(aside), "%s.damaged", segs[i].path);
		if (rename(segs[i].path, aside) != 0)
			log_msg(LOG_ALWAYS, "wal: cannot set aside %s: %s", segs[i].path, strerror(errno));
		else
			log_msg(LOG_ALWAYS, "wal: set aside %s (after the damage; not replayed)", aside);
		out->dropped_segments++;
		out->dropped_bytes += segs[i].size;
	}
}

int
wal_recover(const char *data_dir, uint64_t after_lsn, wal_replay_fn *fn, void *arg,
            struct wal_recovery *out)
{
	struct wal_segment *segs;
	size_t n, i;
	int rc;

	memset(out, 0, sizeof(*out));
	rc = wal_list_segments(data_dir, &segs, &n);
	if (rc == -ENOENT)
		return 0;
	if (rc != 0)
		return rc;
	for (i = 0; i < n; i++) {
		char *buf = NULL;
		size_t len = 0, pos = 0;
		bool damaged = false;

		rc = wal_read_segment(segs[i].path, &buf, &len);
		if (rc == -EINVAL) {
			cut_damage(segs, n, i, (uint64_t)-WAL_SEGMENT_HDR_SIZE, out);
			rc = 0;
			break;
		}
		if (rc != 0) {
			log_msg(LOG_ALWAYS, "wal: cannot read %s: %s", segs[i].path, strerror(-rc));
			break;
		}
		while (pos < len) {
			struct wal_record rec;
			size_t used;
			enum wal_decode_status st = wal_decode(buf + pos, len - pos, &rec, &used);

			/* LSNs must continue where the previous record stopped. */
			if (st == WAL_DECODE_OK && out->last_lsn != 0 && rec.lsn != out->last_lsn + 1)
				st = WAL_DECODE_CORRUPT;
			if (st != WAL_DECODE_OK) {
				damaged = true;
				break;
			}
			if (rec.lsn > after_lsn) {
				fn(arg, &rec);
				out->replayed++;
			}
			out->last_lsn = rec.lsn;
			out->last_epoch = rec.epoch;
			pos += used;
		}
		free(buf);
		if (damaged) {
			cut_damage(segs, n, i, pos, out);
			break;
		}
	}
	free(segs);
	return rc;
}

/******** THE LOG AND ITS WRITER THREAD ********/

struct wal {
	char *data_dir;
	enum wal_fsync fsync;
	size_t segment_size;
	uint32_t epoch;

	pthread_mutex_t lock;
	pthread_cond_t work;        /* writer waits for records or stop */
	pthread_cond_t space;       /* appenders wait for buffer space */
	char *buf;                  /* records not yet handed to the writer */
	size_t len, cap;
	uint64_t buf_first_lsn;     /* LSN of the first record in buf */
	uint64_t next_lsn;          /* under lock */
	uint64_t last_lsn;          /* last handed out; atomic reads */
	bool stop;
	bool writing;               /* someone does file I/O (begin_io/end_io) */
	char *spare;                /* the other buffer of the double buffer */
	size_t spare_cap;
	uint64_t reported_lsn;      /* written LSN last reported (writer thread) */

	/* Writer thread only (read atomically by others where noted). */
	pthread_t thread;
	int fd;
	uint64_t segment_first_lsn; /* atomic */
	uint64_t segment_bytes;
	uint64_t written_lsn;       /* atomic */
	uint64_t synced_lsn;        /* atomic */
	int error;                  /* atomic; set by a failed write, cleared by repair */
	struct timespec last_sync;
	/* Everything written since the last successful fsync, kept so that a
	 * failed write or fsync can be repaired by rewriting it from here
	 * (never by trusting the kernel's copy: PostgreSQL's fsync lesson). */
	uint64_t synced_offset;     /* segment bytes known to be on disk */
	char *unsynced;
	size_t unsynced_len, unsynced_cap;
	uint64_t unsynced_first_lsn, unsynced_last_lsn;

	wal_progress_fn *progress_fn;
	void *progress_arg;
};


/* A buffer's new capacity for `need` bytes: doubling while small, then in
 * 1 MiB steps, so that a buffer bounded at N MiB never holds much more. */
static size_t
grown_capacity(size_t cap, size_t need)
{
	const size_t step = 1u << 20;

	if (cap == 0)
		cap = 1 << 16;
	while (cap < need && cap < step)
		cap *= 2;
	if (cap < need)
		cap = (need + step - 1) / step * step;
	return cap;
}

/* Queue one record with this LSN and epoch (caller holds w->lock).  Waits
 * while the buffer is full.  Returns false when it cannot be queued. */
static bool
append_locked(struct wal *w, const struct cache_change *ch, uint64_t lsn, uint32_t epoch)
{
	size_t size = wal_record_size(ch);

	while (w->len > 0 && w->len + size > WAL_BUFFER_MAX &&
	       __atomic_load_n(&w->error, __ATOMIC_RELAXED) == 0)
		pthread_cond_wait(&w->space, &w->lock);
	if (w->len + size > w->cap) {
		size_t cap = grown_capacity(w->cap, w->len + size);
		char *p;

		p = realloc(w->buf, cap);
		if (p == NULL) {
			/* Cannot log it: fail like a disk error, never pretend. */
			__atomic_store_n(&w->error, ENOMEM, __ATOMIC_RELAXED);
			return false;
		}
		w->buf = p;
		w->cap = cap;
	}
	assert(lsn == w->next_lsn);
	w->next_lsn = lsn + 1;
	wal_encode(w->buf + w->len, ch, lsn, epoch);
	if (w->len == 0) {
		w->buf_first_lsn = lsn;
		pthread_cond_signal(&w->work);
	}
	w->len += size;
	__atomic_store_n(&w->last_lsn, lsn, __ATOMIC_RELEASE);
	return true;
}

uint64_t
wal_append(struct wal *w, const struct cache_change *ch)
{
	uint64_t lsn;

	pthread_mutex_lock(&w->lock);
	lsn = w->next_lsn;
	if (!append_locked(w, ch, lsn, w->epoch))
		lsn = 0;
	pthread_mutex_unlock(&w->lock);
	return lsn;
}

int
wal_append_record(struct wal *w, const struct wal_record *rec)
{
	int rc = 0;

	pthread_mutex_lock(&w->lock);
	assert(rec->lsn == w->next_lsn);
	if (rec->lsn != w->next_lsn)
		rc = -EILSEQ;
	else if (!append_locked(w, &rec->change, rec->lsn, rec->epoch))
		rc = -ENOMEM;
	pthread_mutex_unlock(&w->lock);
	return rc;
}

uint64_t
wal_next_lsn(struct wal *w)
{
	uint64_t lsn;

	pthread_mutex_lock(&w->lock);
	lsn = w->next_lsn;
	pthread_mutex_unlock(&w->lock);
	return lsn;
}

static int
write_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t k = write(fd, p, n);

		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0)
			return -errno;
		p += k;
		n -= (size_t)k;
	}
	return 0;
}

/* Start segment <first_lsn>.log; the previous one must be synced and closed. */
static int
segment_create(struct wal *w, uint64_t first_lsn)
{
	char path[4096], header[WAL_SEGMENT_HDR_SIZE] = {0};
	int fd, rc;

	snprintf(path, sizeof(path), "%s/wal/%016" PRIx64 ".log", w->data_dir, first_lsn);
	fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
	if (fd < 0)
		return -errno;
	memcpy(header, WAL_MAGIC, 8);
	put_u32(header + 8, WAL_FORMAT_VERSION);
	if (lseek(fd, 0, SEEK_END) == 0 && (rc = write_all(fd, header, sizeof(header))) != 0) {
		close(fd);
		return rc;
	}
	w->fd = fd;
	w->segment_bytes = (uint64_t)lseek(fd, 0, SEEK_END);
	w->synced_offset = w->segment_bytes;
	__atomic_store_n(&w->segment_first_lsn, first_lsn, __ATOMIC_RELAXED);
	return fsync_dir(w->data_dir);
}

static int
do_sync(struct wal *w)
{
	if (fdatasync(w->fd) != 0)
		return -errno;
	clock_gettime(CLOCK_MONOTONIC, &w->last_sync);
	w->synced_offset = w->segment_bytes;
	w->unsynced_len = 0;
	__atomic_store_n(&w->synced_lsn, w->written_lsn, __ATOMIC_RELEASE);
	return 0;
}

static bool
second_elapsed(const struct timespec *since)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return now.tv_sec - since->tv_sec > 1 ||
	       (now.tv_sec - since->tv_sec == 1 && now.tv_nsec >= since->tv_nsec);
}

/* Keep a copy of a batch until it is synced. */
static int
keep_unsynced(struct wal *w, const char *batch, size_t n, uint64_t first_lsn,
              uint64_t last_lsn)
{
	if (w->unsynced_len + n > w->unsynced_cap) {
		size_t cap = grown_capacity(w->unsynced_cap, w->unsynced_len + n);
		char *p;

		p = realloc(w->unsynced, cap);
		if (p == NULL)
			return -ENOMEM;
		w->unsynced = p;
		w->unsynced_cap = cap;
	}
	if (w->unsynced_len == 0)
		w->unsynced_first_lsn = first_lsn;
	memcpy(w->unsynced + w->unsynced_len, batch, n);
	w->unsynced_len += n;
	w->unsynced_last_lsn = last_lsn;
	return 0;
}

/* Start the next segment at first_lsn (the current one is full). */
static int
rotate(struct wal *w, uint64_t first_lsn)
{
	int rc = do_sync(w);

	if (rc != 0)
		return rc;
	close(w->fd);
	w->fd = -1;
	return segment_create(w, first_lsn);
}

/* Write one batch (whole records from first_lsn to last_lsn), starting new
 * segments at record boundaries so that no segment grows much past the
 * segment size, and fsync as the policy says.  On failure what was not
 * written is still kept (unsynced) for wal_repair(). */
static int
write_batch(struct wal *w, const char *batch, size_t n, uint64_t first_lsn,
            uint64_t last_lsn)
{
	size_t pos = 0;
	uint64_t lsn = first_lsn;
	int rc;

	while (pos < n) {
		size_t take = 0, rec;
		uint64_t count = 0;

		/* As many whole records as fit; at least one in an empty segment. */
		while (pos + take < n) {
			rec = WAL_OFF_LSN + get_u32(batch + pos + take);
			if (w->segment_bytes + take + rec > w->segment_size &&
			    (take > 0 || w->segment_bytes > WAL_SEGMENT_HDR_SIZE))
				break;
			take += rec;
			count++;
		}
		if (take == 0) {
			rc = rotate(w, lsn);
			if (rc != 0) {
				keep_unsynced(w, batch + pos, n - pos, lsn, last_lsn);
				return rc;
			}
			continue;
		}
		if ((rc = keep_unsynced(w, batch + pos, take, lsn, lsn + count - 1)) != 0)
			return rc;
		if ((rc = write_all(w->fd, batch + pos, take)) != 0) {
			keep_unsynced(w, batch + pos + take, n - pos - take, lsn + count, last_lsn);
			return rc;
		}
		w->segment_bytes += take;
		pos += take;
		lsn += count;
		__atomic_store_n(&w->written_lsn, lsn - 1, __ATOMIC_RELEASE);
	}
	/* The copy for wal_repair() stays bounded whatever the policy. */
	return w->unsynced_len > WAL_UNSYNCED_MAX ? do_sync(w) : 0;
}

/* Is an fsync due now under the policy? */
static bool
sync_due(struct wal *w)
{
	if (__atomic_load_n(&w->written_lsn, __ATOMIC_RELAXED) ==
	    __atomic_load_n(&w->synced_lsn, __ATOMIC_RELAXED))
		return false;
	return w->fsync == WAL_FSYNC_ALWAYS ||
	       (w->fsync == WAL_FSYNC_EVERYSEC && second_elapsed(&w->last_sync));
}

/* File I/O is done by one thread at a time (the writer thread; wal_reset
 * and wal_truncate_after wait for it): begin_io()/end_io() bracket it, with
 * w->lock held on entry and exit. */
static void
begin_io(struct wal *w)
{
	while (w->writing)
		pthread_cond_wait(&w->space, &w->lock);
	w->writing = true;
}

static void
end_io(struct wal *w)
{
	w->writing = false;
	pthread_cond_broadcast(&w->space);
}

/* Write everything queued (caller did begin_io and holds w->lock, which is
 * released during the write).  Returns 0 or the failure's negative errno. */
static int
write_queued(struct wal *w)
{
	char *batch = w->buf;
	size_t n = w->len, cap = w->cap;
	uint64_t first = w->buf_first_lsn, last = w->last_lsn;
	int rc;

	if (n == 0)
		return 0;
	/* Appenders fill the spare meanwhile. */
	w->buf = w->spare;
	w->cap = w->spare_cap;
	w->len = 0;
	pthread_cond_broadcast(&w->space);
	pthread_mutex_unlock(&w->lock);
	rc = write_batch(w, batch, n, first, last);
	pthread_mutex_lock(&w->lock);
	w->spare = batch;
	w->spare_cap = cap;
	return rc;
}

static void
writer_fail(struct wal *w, int rc)
{
	log_msg(LOG_ALWAYS, "wal: write to %s/wal failed: %s; refusing writes until the "
	        "disk takes them again (retrying every second)", w->data_dir, strerror(-rc));
	__atomic_store_n(&w->error, -rc, __ATOMIC_RELAXED);
}

/* After a failed write or fsync: cut the segment back to what is known to be
 * on disk, write our own copy of everything since, and fsync.  Success clears
 * the error: the log is whole again and writes are accepted. */
static int
wal_repair(struct wal *w)
{
	int rc;

	if (w->fd < 0) {
		char path[4096];

		/* The failure was starting a segment: start it afresh. */
		snprintf(path, sizeof(path), "%s/wal/%016" PRIx64 ".log", w->data_dir,
		         w->unsynced_first_lsn);
		unlink(path);
		if ((rc = segment_create(w, w->unsynced_first_lsn)) != 0)
			return rc;
	}
	if (ftruncate(w->fd, (off_t)w->synced_offset) != 0)
		return -errno;
	w->segment_bytes = w->synced_offset;
	if ((rc = write_all(w->fd, w->unsynced, w->unsynced_len)) != 0)
		return rc;
	w->segment_bytes += w->unsynced_len;
	if (w->unsynced_len > 0)
		__atomic_store_n(&w->written_lsn, w->unsynced_last_lsn, __ATOMIC_RELEASE);
	if ((rc = do_sync(w)) != 0)
		return rc;
	__atomic_store_n(&w->error, 0, __ATOMIC_RELAXED);
	log_msg(LOG_ALWAYS, "wal: %s/wal writes again; log synced to LSN %" PRIu64 ", accepting writes",
	        w->data_dir, __atomic_load_n(&w->synced_lsn, __ATOMIC_RELAXED));
	return 0;
}

static void *
writer_main(void *arg)
{
	struct wal *w = arg;

	pthread_mutex_lock(&w->lock);
	for (;;) {
		uint64_t synced_before = __atomic_load_n(&w->synced_lsn, __ATOMIC_RELAXED);
		bool report;
		int rc = 0;

		if (__atomic_load_n(&w->error, __ATOMIC_RELAXED) != 0) {
			/* Failed: leave new records queued, try to repair each second. */
			struct timespec deadline;

			clock_gettime(CLOCK_REALTIME, &deadline);
			deadline.tv_sec += 1;
			pthread_cond_timedwait(&w->work, &w->lock, &deadline);
			if (w->stop)
				break;
			begin_io(w);
			pthread_mutex_unlock(&w->lock);
			rc = wal_repair(w);
			pthread_mutex_lock(&w->lock);
			end_io(w);
			if (rc == 0 && w->progress_fn != NULL) {
				pthread_mutex_unlock(&w->lock);
				w->progress_fn(w->progress_arg);
				pthread_mutex_lock(&w->lock);
			}
			continue;
		}
		while (w->len == 0 && !w->stop && !sync_due(w) &&
		       __atomic_load_n(&w->written_lsn, __ATOMIC_RELAXED) == w->reported_lsn) {
			struct timespec deadline;

			/* Wake at least once a second for everysec. */
			clock_gettime(CLOCK_REALTIME, &deadline);
			deadline.tv_sec += 1;
			pthread_cond_timedwait(&w->work, &w->lock, &deadline);
		}
		if (w->len == 0 && w->stop)
			break;
		begin_io(w);
		rc = write_queued(w);
		if (rc == 0 && sync_due(w)) {
			pthread_mutex_unlock(&w->lock);
			rc = do_sync(w);
			pthread_mutex_lock(&w->lock);
		}
		end_io(w);
		if (rc != 0)
			writer_fail(w, rc);
		/* Report what was written and what is synced. */
		report = rc != 0 || __atomic_load_n(&w->written_lsn, __ATOMIC_RELAXED) != w->reported_lsn ||
		         __atomic_load_n(&w->synced_lsn, __ATOMIC_RELAXED) != synced_before;
		w->reported_lsn = __atomic_load_n(&w->written_lsn, __ATOMIC_RELAXED);
		if (report && w->progress_fn != NULL) {
			pthread_mutex_unlock(&w->lock);
			w->progress_fn(w->progress_arg);
			pthread_mutex_lock(&w->lock);
		}
	}
	pthread_mutex_unlock(&w->lock);
	return NULL;
}

int
wal_open(const struct wal_config *cfg, uint64_t next_lsn, uint32_t epoch,
         wal_progress_fn *progress_fn, void *progress_arg, struct wal **out)
{
	struct wal *w = calloc(1, sizeof(*w));
	char dir[4096];
	int rc;

	if (w == NULL)
		return -ENOMEM;
	if ((rc = wal_dir(cfg->data_dir, dir, sizeof(dir))) != 0)
		goto out_free;
	if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
		rc = -errno;
		goto out_free;
	}
	w->data_dir = strdup(cfg->data_dir);
	w->fsync = cfg->fsync;
	w->segment_size = cfg->segment_size;
	w->epoch = epoch;
	w->next_lsn = next_lsn;
	w->last_lsn = next_lsn - 1;
	w->written_lsn = next_lsn - 1;
	w->synced_lsn = next_lsn - 1;
	w->reported_lsn = next_lsn - 1;
	w->progress_fn = progress_fn;
	w->progress_arg = progress_arg;
	w->fd = -1;
	clock_gettime(CLOCK_MONOTONIC, &w->last_sync);
	if (w->data_dir == NULL) {
		rc = -ENOMEM;
		goto out_free;
	}
	/* Always a fresh segment: the last one may end in a cut-off tail. */
	if ((rc = segment_create(w, next_lsn)) != 0)
		goto out_free;
	pthread_mutex_init(&w->lock, NULL);
	pthread_cond_init(&w->work, NULL);
	pthread_cond_init(&w->space, NULL);
	if (pthread_create(&w->thread, NULL, writer_main, w) != 0) {
		rc = -EAGAIN;
		close(w->fd);
		goto out_free;
	}
	*out = w;
	return 0;
out_free:
	free(w->data_dir);
	free(w);
	return rc;
}

void
wal_close(struct wal *w)
{
	if (w == NULL)
		return;
	pthread_mutex_lock(&w->lock);
	w->stop = true;
	pthread_cond_signal(&w->work);
	pthread_mutex_unlock(&w->lock);
	pthread_join(w->thread, NULL);
	if (__atomic_load_n(&w->error, __ATOMIC_RELAXED) != 0 && wal_repair(w) != 0) {
		/* The disk still fails: say exactly what cannot be saved. */
		log_msg(LOG_ALWAYS, "wal: the disk still fails at shutdown: changes after LSN %" PRIu64
		        " (up to LSN %" PRIu64 ") are lost", w->synced_lsn, w->last_lsn);
	} else if ((w->len > 0 && write_batch(w, w->buf, w->len, w->buf_first_lsn, w->last_lsn) != 0) ||
	           (w->fd >= 0 && do_sync(w) != 0)) {
		/* Records queued while the disk failed, written now, or not. */
		log_msg(LOG_ALWAYS, "wal: final write failed: %s; changes after LSN %" PRIu64 " are lost",
		        strerror(errno), w->synced_lsn);
	}
	if (w->fd >= 0)
		close(w->fd);
	pthread_mutex_destroy(&w->lock);
	pthread_cond_destroy(&w->work);
	pthread_cond_destroy(&w->space);
	free(w->buf);
	free(w->spare);
	free(w->unsynced);
	free(w->data_dir);
	free(w);
}

uint64_t
wal_synced_lsn(struct wal *w)
{
	return __atomic_load_n(&w->synced_lsn, __ATOMIC_ACQUIRE);
}

uint64_t
wal_written_lsn(struct wal *w)
{
	return __atomic_load_n(&w->written_lsn, __ATOMIC_ACQUIRE);
}

int
wal_reset(struct wal *w, uint64_t next_lsn)
{
	struct wal_segment *segs;
	size_t n, i;
	int rc;

	pthread_mutex_lock(&w->lock);
	while (w->len > 0 || w->writing)
		pthread_cond_wait(&w->space, &w->lock);
	/* The writer is idle and cannot start without the lock we hold. */
	if (w->fd >= 0)
		close(w->fd);
	w->fd = -1;
	rc = wal_list_segments(w->data_dir, &segs, &n);
	if (rc == 0) {
		for (i = 0; i < n; i++) {
			if (unlink(segs[i].path) != 0)
				log_msg(LOG_ALWAYS, "wal: cannot delete %s: %s", segs[i].path, strerror(errno));
		}
		free(segs);
		rc = segment_create(w, next_lsn);
	}
	w->next_lsn = next_lsn;
	w->unsynced_len = 0;
	__atomic_store_n(&w->last_lsn, next_lsn - 1, __ATOMIC_RELEASE);
	__atomic_store_n(&w->written_lsn, next_lsn - 1, __ATOMIC_RELEASE);
	__atomic_store_n(&w->synced_lsn, next_lsn - 1, __ATOMIC_RELEASE);
	if (rc != 0)
		__atomic_store_n(&w->error, -rc, __ATOMIC_RELAXED);
	pthread_mutex_unlock(&w->lock);
	return rc;
}

/* Bytes of segment `path` (header included) holding records up to `lsn`. */
static int64_t
segment_prefix_through(const char *path, uint64_t lsn)
{
	size_t len, pos = 0;
	char *buf;
	int rc = wal_read_segment(path, &buf, &len);

	if (rc != 0)
		return rc;
	while (pos < len) {
		struct wal_record rec;
		size_t used;

		if (wal_decode(buf + pos, len - pos, &rec, &used) != WAL_DECODE_OK || rec.lsn > lsn)
			break;
		pos += used;
	}
	free(buf);
	return (int64_t)(WAL_SEGMENT_HDR_SIZE + pos);
}

int64_t
wal_truncate_after(struct wal *w, uint64_t lsn)
{
	struct wal_segment *segs = NULL;
	uint64_t last;
	int64_t keep = 0;
	size_t n, i;
	int rc;

	pthread_mutex_lock(&w->lock);
	while (w->len > 0 || w->writing)
		pthread_cond_wait(&w->space, &w->lock);
	last = w->last_lsn;
	if (w->fd >= 0)
		close(w->fd);
	w->fd = -1;
	rc = wal_list_segments(w->data_dir, &segs, &n);
	for (i = n; rc == 0 && i-- > 0;) {
		if (segs[i].first_lsn > lsn) {
			if (unlink(segs[i].path) != 0)
				rc = -errno;
			continue;
		}
		keep = segment_prefix_through(segs[i].path, lsn);
		if (keep < 0 || truncate(segs[i].path, keep) != 0)
			rc = keep < 0 ? (int)keep : -errno;
		break;
	}
	free(segs);
	if (rc == 0)
		rc = segment_create(w, lsn + 1);
	w->next_lsn = lsn + 1;
	w->unsynced_len = 0;
	__atomic_store_n(&w->last_lsn, lsn, __ATOMIC_RELEASE);
	__atomic_store_n(&w->written_lsn, lsn, __ATOMIC_RELEASE);
	__atomic_store_n(&w->synced_lsn, lsn, __ATOMIC_RELEASE);
	if (rc != 0)
		__atomic_store_n(&w->error, -rc, __ATOMIC_RELAXED);
	pthread_mutex_unlock(&w->lock);
	if (rc != 0)
		return rc;
	log_msg(LOG_ALWAYS, "wal: cut after LSN %" PRIu64 ": %" PRIu64 " records discarded",
	        lsn, last > lsn ? last - lsn : 0);
	return (int64_t)(last > lsn ? last - lsn : 0);
}

void
wal_set_epoch(struct wal *w, uint32_t epoch)
{
	pthread_mutex_lock(&w->lock);
	w->epoch = epoch;
	pthread_mutex_unlock(&w->lock);
}

uint64_t
wal_last_lsn(struct wal *w)
{
	return __atomic_load_n(&w->last_lsn, __ATOMIC_ACQUIRE);
}

uint64_t
wal_active_segment_lsn(struct wal *w)
{
	return __atomic_load_n(&w->segment_first_lsn, __ATOMIC_RELAXED);
}

int
wal_error(struct wal *w)
{
	return __atomic_load_n(&w->error, __ATOMIC_RELAXED);
}
