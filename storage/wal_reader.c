/* WAL live reader: follows the log from an LSN on, across segments, while
 * the writer appends to it (replication streams it, the checkpointer folds
 * it).
 *
 * READER ALGORITHM
 *   A reader is opened from the struct wal: its position (the first LSN it
 *   still needs) is registered with the log under w->lock, so wal_trim never
 *   deletes a segment it will read; the position moves forward each time the
 *   reader enters a segment.  It reads its segment in chunks and decodes
 *   records (wal_record.c); records below its start are skipped, a record
 *   with another LSN than the one due is damage (-EILSEQ).
 *   At the end of its segment's bytes:
 *     - the segment is still the active one in the index: nothing more yet
 *       (returns 0; a partial record is a record being written);
 *     - it is closed: it is read once more (closing happens after its last
 *       write), and if nothing came, the reader looks up the segment that
 *       starts at its next LSN in the index.
 *   Entering a segment changes the reader's state only once the file is
 *   open and its 16-byte header read: a segment whose file or header is not
 *   there yet is "nothing yet" (0) and is tried again on the next call, as
 *   long as the next LSN is above the written end of the log.  When the
 *   next LSN is at or below the written end and its segment is not in the
 *   index or not on disk (trimmed, or a hole), the reader has left the
 *   backlog: -ENOENT, never 0, so that a replica resyncs in full.
 */
#include "storage/wal.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "storage/wal_internal.h"

#define READER_CHUNK (1u << 20)

struct wal_reader {
	struct wal *w;
	struct wal_hold hold; /* registered position (under w->lock) */
	int fd;               /* current segment, or -1 before the first */
	uint64_t seg_first;   /* first LSN of the current segment */
	uint64_t next_lsn;    /* the LSN the next record must have */
	char *buf;            /* bytes read and not yet returned */
	size_t pos, len, cap;
	size_t last_len;      /* size of the record returned last, for unread */
};

int
wal_reader_open(struct wal *w, uint64_t from_lsn, struct wal_reader **out)
{
	struct wal_reader *r = calloc(1, sizeof(*r));

	if (r == NULL)
		return -ENOMEM;
	r->w = w;
	r->fd = -1;
	pthread_mutex_lock(&w->lock);
	if (from_lsn == 0)  /* the oldest retained LSN, read under the lock */
		from_lsn = w->nsegs > 0 ? w->segs[0].first_lsn : w->next_lsn;
	r->next_lsn = from_lsn;
	if (do_index_find(w, from_lsn) == SIZE_MAX) {
		/* Below the oldest segment: left the backlog. */
		pthread_mutex_unlock(&w->lock);
		free(r);
		return -ENOENT;
	}
	do_hold_add(w, &r->hold, from_lsn);
	pthread_mutex_unlock(&w->lock);
	*out = r;
	return 0;
}

/* Enter the segment holding r->next_lsn.  Returns 1 (entered), 0 (not there
 * yet) or a negative errno; r changes only on 1. */
static int
reader_enter(struct wal_reader *r)
{
	struct wal *w = r->w;
	char path[4096], header[WAL_SEGMENT_HDR_SIZE];
	uint64_t written, first;
	size_t i;
	ssize_t n;
	int fd;

	pthread_mutex_lock(&w->lock);
	/* The written end first: a header is written before any record. */
	written = __atomic_load_n(&w->written_lsn, __ATOMIC_ACQUIRE);
	i = do_index_find(w, r->next_lsn);
	first = i == SIZE_MAX ? 0 : w->segs[i].first_lsn;
	if (i != SIZE_MAX && r->fd >= 0 && first <= r->seg_first)
		i = SIZE_MAX;  /* ours is closed yet has no successor: a hole */
	if (i != SIZE_MAX)
		do_hold_move(w, &r->hold, r->next_lsn);
	pthread_mutex_unlock(&w->lock);
	if (i == SIZE_MAX)
		return r->next_lsn <= written ? -ENOENT : 0;
	if (r->fd >= 0 && first != r->next_lsn)
		return -EILSEQ;  /* the next segment does not start where ours ended */
	wal_segment_path(w->data_dir, first, path, sizeof(path));
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		if (errno != ENOENT)
			return -errno;
		return r->next_lsn <= written ? -ENOENT : 0;
	}
	n = read(fd, header, sizeof(header));
	if (n < 0) {
		n = -errno;
		close(fd);
		return (int)n;
	}
	if ((size_t)n < sizeof(header)) {
		close(fd);
		return r->next_lsn <= written ? -EILSEQ : 0;  /* being created */
	}
	if (!wal_segment_header_ok(header, sizeof(header))) {
		close(fd);
		return -EILSEQ;
	}
	if (r->fd >= 0)
		close(r->fd);
	r->fd = fd;
	r->seg_first = first;
	r->pos = r->len = 0;
	r->last_len = 0;
	return 1;
}

/* Is the reader's segment closed (no byte will be added)? */
static bool
reader_segment_closed(struct wal_reader *r)
{
	struct wal *w = r->w;
	bool closed;
	size_t i;

	pthread_mutex_lock(&w->lock);
	i = do_index_find(w, r->seg_first);
	closed = i == SIZE_MAX || w->segs[i].first_lsn != r->seg_first || w->segs[i].closed;
	pthread_mutex_unlock(&w->lock);
	return closed;
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
	while (r->fd < 0) {
		int rc = reader_enter(r);

		if (rc <= 0)
			return rc;
	}
	for (;;) {
		struct wal_record decoded;
		size_t used;
		ssize_t n;
		int rc;

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
		/* Caught up with the writer: nothing more is in any file yet.
		 * Saves a read() that returns 0 and a look at the index under
		 * the appenders' lock on every call of a streaming reader. */
		if (wal_written_lsn(r->w) < r->next_lsn)
			return 0;
		n = reader_fill(r);
		if (n < 0)
			return (int)n;
		if (n > 0)
			continue;
		/* End of the bytes so far.  Closed segments do not grow: read
		 * once more after learning it is closed, then move on. */
		if (!reader_segment_closed(r))
			return 0;
		n = reader_fill(r);
		if (n < 0)
			return (int)n;
		if (n > 0)
			continue;
		if (r->pos != r->len)
			return -EILSEQ;  /* a closed segment ends inside a record */
		rc = reader_enter(r);
		if (rc <= 0)
			return rc;
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
	assert(r->last_len > 0 && r->last_len <= r->pos);
	r->pos -= r->last_len;
	r->last_len = 0;
	r->next_lsn--;
}

void
wal_reader_close(struct wal_reader *r)
{
	if (r == NULL)
		return;
	pthread_mutex_lock(&r->w->lock);
	do_hold_remove(r->w, &r->hold);
	pthread_mutex_unlock(&r->w->lock);
	if (r->fd >= 0)
		close(r->fd);
	free(r->buf);
	free(r);
}
