/* WAL writer: the open log (struct wal), appends, the writer thread with
 * group commit and the fsync policies, repair after a failed write, reset
 * and truncation, and the in-memory index of segments.  The record format
 * is in wal_record.c; retention (positions, slots, trimming) in
 * wal_retain.c.
 *
 * WAL SEGMENT FILES
 *   DATA/wal/<first LSN as 16 lowercase hex digits>.log, e.g.
 *   wal/000000000000002a.log holds records from LSN 42 on, each the previous
 *   one's LSN + 1.  Records are only ever appended; a segment is closed when
 *   the next record would take it past the segment size, and a new one is
 *   started at that record's LSN, so segment i holds exactly the LSNs from
 *   its name up to the next segment's name - 1.  wal_open always starts a
 *   segment at the next LSN (reusing it if it exists and is empty).  The
 *   checkpointer deletes a prefix of closed segments (wal_trim).  Other
 *   files in DATA/wal: `slots` (wal_retain.c), *.covered and *.damaged
 *   (set aside by recovery, wal_recover.c; never read again).
 *
 * SEGMENT HEADER (16 bytes)
 *    0: magic "CAIRNWAL" (8 bytes)
 *    8: format version, u32 little-endian (WAL_FORMAT_VERSION, 2).  Both
 *       versions are read: format 2 added the MSET record (wal_record.c),
 *       which a format 1 reader would take for damage and truncate the log
 *       at, so new segments say 2 and an older binary refuses them
 *       whole.  A segment reused empty keeps the header it was created with.
 *   12: reserved, u32, zero
 *   A segment enters the index only once its header is written.
 *
 * GROUP COMMIT
 *   Appenders encode records into w->buf under w->lock (no I/O); the writer
 *   thread swaps it with the spare buffer and writes a batch without the
 *   lock, then fsyncs as the policy says (always: every batch; everysec: at
 *   least once a second; no: at rotation and every WAL_UNSYNCED_MAX bytes).
 *   A copy of everything written since the last fsync is kept so that a
 *   failed write or fsync is repaired by rewriting it (wal_repair).
 */
#include "storage/wal.h"

#include <assert.h>
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

#include "storage/log.h"
#include "storage/wal_internal.h"

#define WAL_BUFFER_MAX (8u << 20) /* appenders wait beyond this much unwritten */
#define WAL_UNSYNCED_MAX (8u << 20) /* fsync at least this often, whatever the policy */

_Static_assert(sizeof(WAL_MAGIC) - 1 + 8 == WAL_SEGMENT_HDR_SIZE, "segment header is 16 bytes");

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

/******** FILES ********/

int
wal_dir_path(const char *data_dir, char *out, size_t outlen)
{
	int n = snprintf(out, outlen, "%s/wal", data_dir);

	return n < 0 || (size_t)n >= outlen ? -ENAMETOOLONG : 0;
}

void
wal_segment_path(const char *data_dir, uint64_t first_lsn, char *out, size_t outlen)
{
	snprintf(out, outlen, "%s/wal/%016" PRIx64 ".log", data_dir, first_lsn);
}

bool
wal_segment_header_ok(const char *buf, size_t len)
{
	return len >= WAL_SEGMENT_HDR_SIZE && memcmp(buf, WAL_MAGIC, 8) == 0 &&
	       get_u32(buf + 8) >= WAL_FORMAT_OLDEST && get_u32(buf + 8) <= WAL_FORMAT_VERSION;
}

int
wal_write_all(int fd, const char *p, size_t n)
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

int
wal_fsync_dir(const char *data_dir)
{
	char dir[4096];
	int fd, rc = wal_dir_path(data_dir, dir, sizeof(dir));

	if (rc != 0)
		return rc;
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	rc = fsync(fd) == 0 ? 0 : -errno;
	close(fd);
	return rc;
}

/******** SEGMENT INDEX (under w->lock) ********/

size_t
do_index_find(const struct wal *w, uint64_t lsn)
{
	size_t i = w->nsegs;

	while (i-- > 0) {
		if (w->segs[i].first_lsn <= lsn)
			return i;
	}
	return SIZE_MAX;
}

/* Room for one more entry, so that adding one after a segment is created
 * cannot fail. */
static int
do_index_reserve(struct wal *w)
{
	struct wal_seg *p;
	size_t cap;

	if (w->nsegs < w->segs_cap)
		return 0;
	cap = w->segs_cap ? w->segs_cap * 2 : 16;
	p = realloc(w->segs, cap * sizeof(*p));
	if (p == NULL)
		return -ENOMEM;
	w->segs = p;
	w->segs_cap = cap;
	return 0;
}

/* The segment starting at first_lsn (header written) is the active one now:
 * the previous active one is closed.  Room was reserved. */
static void
do_index_push(struct wal *w, uint64_t first_lsn, uint64_t size)
{
	struct wal_seg *last = w->nsegs > 0 ? &w->segs[w->nsegs - 1] : NULL;

	assert(w->nsegs < w->segs_cap);
	if (last != NULL && last->first_lsn == first_lsn) {
		last->size = size;  /* reopened (an empty segment reused) */
		last->closed = false;
		return;
	}
	assert(last == NULL || last->first_lsn < first_lsn);
	if (last != NULL)
		last->closed = true;
	w->segs[w->nsegs++] = (struct wal_seg){.first_lsn = first_lsn, .size = size};
}

/* The index from the directory: every segment below `below` (closed). */
static int
do_index_load(struct wal *w, uint64_t below)
{
	struct wal_segment *segs;
	size_t n, i;
	int rc = wal_list_segments(w->data_dir, &segs, &n);

	if (rc != 0)
		return rc;
	w->nsegs = 0;
	for (i = 0; i < n && segs[i].first_lsn < below && rc == 0; i++) {
		if ((rc = do_index_reserve(w)) == 0)
			w->segs[w->nsegs++] = (struct wal_seg){segs[i].first_lsn, segs[i].size, true};
	}
	free(segs);
	return rc == 0 ? do_index_reserve(w) : rc;
}

/******** THE LOG AND ITS WRITER THREAD ********/

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

/* Queue one record (caller holds w->lock).  want_lsn 0: the next LSN;
 * else it must be the next LSN.  Returns 0 and *lsn, -EILSEQ, or -ENOMEM
 * (the log then fails like a disk: wal_error). */
/* Would one more record of `size` bytes overfill the unfolded tail?
 * (Caller holds w->lock.)  A record bigger than the byte bound still goes
 * in when the tail is empty. */
static bool
tail_full(const struct wal *w, size_t size)
{
	if (w->tail_max_records == 0)
		return false;
	return w->next_lsn - 1 - w->folded_lsn >= w->tail_max_records ||
	       (w->unfolded_bytes > 0 && w->unfolded_bytes + size > w->tail_max_bytes);
}

static int
do_queue(struct wal *w, const struct cache_change *ch, uint64_t want_lsn, uint32_t epoch,
         bool wake, uint64_t *lsn)
{
	size_t size = wal_record_size(ch);

	while (tail_full(w, size) && __atomic_load_n(&w->error, __ATOMIC_RELAXED) == 0) {
		/* The checkpointer folds only what is on disk: sync now. */
		__atomic_store_n(&w->sync_wanted, true, __ATOMIC_RELAXED);
		pthread_cond_signal(&w->work);
		w->tail_waits++;
		__atomic_add_fetch(&w->appenders_waiting, 1, __ATOMIC_RELAXED);
		pthread_cond_wait(&w->folded, &w->lock);
		__atomic_sub_fetch(&w->appenders_waiting, 1, __ATOMIC_RELAXED);
	}
	while (w->len > 0 && w->len + size > WAL_BUFFER_MAX &&
	       __atomic_load_n(&w->error, __ATOMIC_RELAXED) == 0) {
		/* A run of records (wake false) has not woken the writer yet:
		 * wake it rather than wait for its periodic round. */
		pthread_cond_signal(&w->work);
		__atomic_add_fetch(&w->appenders_waiting, 1, __ATOMIC_RELAXED);
		pthread_cond_wait(&w->space, &w->lock);
		__atomic_sub_fetch(&w->appenders_waiting, 1, __ATOMIC_RELAXED);
	}
	if (want_lsn != 0 && want_lsn != w->next_lsn) {
		log_msg(LOG_ALWAYS, "wal: record with LSN %" PRIu64 " refused: the log's next LSN is %"
		        PRIu64, want_lsn, w->next_lsn);
		return -EILSEQ;
	}
	if (w->len + size > w->cap) {
		size_t cap = grown_capacity(w->cap, w->len + size);
		char *p;

		p = realloc(w->buf, cap);
		if (p == NULL) {
			/* Cannot log it: fail like a disk error, never pretend. */
			__atomic_store_n(&w->error, ENOMEM, __ATOMIC_RELAXED);
			return -ENOMEM;
		}
		w->buf = p;
		w->cap = cap;
	}
	*lsn = w->next_lsn;
	assert(*lsn == __atomic_load_n(&w->last_lsn, __ATOMIC_RELAXED) + 1);
	w->next_lsn = *lsn + 1;
	wal_encode(w->buf + w->len, ch, *lsn, epoch);
	if (w->len == 0) {
		w->buf_first_lsn = *lsn;
		if (wake)
			pthread_cond_signal(&w->work);
	}
	w->len += size;
	w->unfolded_bytes += size;
	__atomic_store_n(&w->last_lsn, *lsn, __ATOMIC_RELEASE);
	return 0;
}

uint64_t
wal_append(struct wal *w, const struct cache_change *ch)
{
	uint64_t lsn;
	int rc;

	pthread_mutex_lock(&w->lock);
	rc = do_queue(w, ch, 0, w->epoch, true, &lsn);
	pthread_mutex_unlock(&w->lock);
	return rc == 0 ? lsn : 0;
}

int
wal_append_record(struct wal *w, const struct wal_record *rec, bool more)
{
	uint64_t lsn;
	int rc;

	pthread_mutex_lock(&w->lock);
	rc = do_queue(w, &rec->change, rec->lsn, rec->epoch, !more, &lsn);
	pthread_mutex_unlock(&w->lock);
	return rc;
}

void
wal_kick(struct wal *w)
{
	pthread_mutex_lock(&w->lock);
	if (w->len > 0)
		pthread_cond_signal(&w->work);
	pthread_mutex_unlock(&w->lock);
}

/* Start segment <first_lsn>.log; the previous one must be synced and closed. */
static int
segment_create(struct wal *w, uint64_t first_lsn)
{
	char path[4096], header[WAL_SEGMENT_HDR_SIZE] = {0};
	int fd, rc;

	wal_segment_path(w->data_dir, first_lsn, path, sizeof(path));
	fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
	if (fd < 0)
		return -errno;
	memcpy(header, WAL_MAGIC, 8);
	put_u32(header + 8, WAL_FORMAT_VERSION);
	if (lseek(fd, 0, SEEK_END) == 0 && (rc = wal_write_all(fd, header, sizeof(header))) != 0) {
		close(fd);
		return rc;
	}
	w->fd = fd;
	w->segment_bytes = (uint64_t)lseek(fd, 0, SEEK_END);
	w->synced_offset = w->segment_bytes;
	__atomic_store_n(&w->segment_first_lsn, first_lsn, __ATOMIC_RELAXED);
	return wal_fsync_dir(w->data_dir);
}

static int
do_sync(struct wal *w)
{
	if (fdatasync(w->fd) != 0)
		return -errno;
	clock_gettime(CLOCK_MONOTONIC, &w->last_sync);
	__atomic_store_n(&w->sync_wanted, false, __ATOMIC_RELAXED);
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

/* Start segment first_lsn and make it the active one in the index (writer
 * thread, or a caller that has stopped it; w->lock not held). */
static int
segment_start(struct wal *w, uint64_t first_lsn)
{
	int rc;

	pthread_mutex_lock(&w->lock);
	rc = do_index_reserve(w);
	pthread_mutex_unlock(&w->lock);
	if (rc != 0)
		return rc;
	rc = segment_create(w, first_lsn);
	if (w->fd >= 0) {
		/* The file is there with its header (even if the directory's
		 * fsync failed): readers may open it. */
		pthread_mutex_lock(&w->lock);
		do_index_push(w, first_lsn, w->segment_bytes);
		pthread_mutex_unlock(&w->lock);
	}
	return rc;
}

/* Start the next segment at first_lsn (the current one is full). */
static int
rotate(struct wal *w, uint64_t first_lsn)
{
	int rc = do_sync(w);

	if (rc != 0)
		return rc;
	pthread_mutex_lock(&w->lock);
	w->segs[w->nsegs - 1].size = w->segment_bytes;  /* its final size */
	pthread_mutex_unlock(&w->lock);
	close(w->fd);
	w->fd = -1;
	return segment_start(w, first_lsn);
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
		if ((rc = wal_write_all(w->fd, batch + pos, take)) != 0) {
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
	return w->fsync == WAL_FSYNC_ALWAYS || __atomic_load_n(&w->sync_wanted, __ATOMIC_RELAXED) ||
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
	if (w->fd >= 0)
		w->segs[w->nsegs - 1].size = w->segment_bytes;
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
		wal_segment_path(w->data_dir, w->unsynced_first_lsn, path, sizeof(path));
		unlink(path);
		if ((rc = segment_start(w, w->unsynced_first_lsn)) != 0)
			return rc;
	}
	if (ftruncate(w->fd, (off_t)w->synced_offset) != 0)
		return -errno;
	w->segment_bytes = w->synced_offset;
	if ((rc = wal_write_all(w->fd, w->unsynced, w->unsynced_len)) != 0)
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

/* The log (re)starts at next_lsn: the index is what DATA/wal holds below
 * it, and a segment at next_lsn is the active one.  Caller holds w->lock,
 * and the writer is idle. */
static int
do_start_at(struct wal *w, uint64_t next_lsn)
{
	int rc = do_index_load(w, next_lsn);

	if (rc != 0)
		return rc;
	rc = segment_create(w, next_lsn);
	if (w->fd >= 0)
		do_index_push(w, next_lsn, w->segment_bytes);
	return rc;
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
	if ((rc = wal_dir_path(cfg->data_dir, dir, sizeof(dir))) != 0)
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
	pthread_mutex_init(&w->lock, NULL);
	pthread_cond_init(&w->work, NULL);
	pthread_cond_init(&w->space, NULL);
	pthread_cond_init(&w->folded, NULL);
	w->folded_lsn = next_lsn - 1;
	/* Always a fresh segment: the last one may end in a cut-off tail. */
	pthread_mutex_lock(&w->lock);
	rc = do_start_at(w, next_lsn);
	pthread_mutex_unlock(&w->lock);
	if (rc != 0)
		goto out_destroy;
	wal_slots_load(w);
	if (pthread_create(&w->thread, NULL, writer_main, w) != 0) {
		rc = -EAGAIN;
		goto out_destroy;
	}
	pthread_setname_np(w->thread, "cairn-wal");  /* for top -H, perf */
	*out = w;
	return 0;
out_destroy:
	if (w->fd >= 0)
		close(w->fd);
	pthread_mutex_destroy(&w->lock);
	pthread_cond_destroy(&w->work);
	pthread_cond_destroy(&w->space);
	pthread_cond_destroy(&w->folded);
	wal_slots_free(w);
	free(w->segs);
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
	if (wal_slots_save(w) != 0)
		log_msg(LOG_ALWAYS, "wal: cannot save the slots in %s/wal at shutdown", w->data_dir);
	/* Every reader must be closed before its log. */
	assert(w->holds == NULL);
	pthread_mutex_destroy(&w->lock);
	pthread_cond_destroy(&w->work);
	pthread_cond_destroy(&w->space);
	pthread_cond_destroy(&w->folded);
	wal_slots_free(w);
	free(w->segs);
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
		rc = do_start_at(w, next_lsn);
	}
	do_slots_rebase(w, next_lsn, next_lsn);
	w->next_lsn = next_lsn;
	w->unsynced_len = 0;
	w->folded_lsn = next_lsn - 1;  /* a full resync: the checkpoint has it all */
	w->unfolded_bytes = 0;
	pthread_cond_broadcast(&w->folded);
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
	wal_release_segment(buf, len);
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
		rc = do_start_at(w, lsn + 1);
	do_slots_rebase(w, 0, lsn + 1);
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
wal_oldest_lsn(struct wal *w)
{
	uint64_t lsn;

	pthread_mutex_lock(&w->lock);
	lsn = w->nsegs > 0 ? w->segs[0].first_lsn : w->next_lsn;
	pthread_mutex_unlock(&w->lock);
	return lsn;
}

uint64_t
wal_disk_bytes(struct wal *w)
{
	uint64_t bytes = 0;

	pthread_mutex_lock(&w->lock);
	for (size_t i = 0; i < w->nsegs; i++)
		bytes += w->segs[i].size;
	pthread_mutex_unlock(&w->lock);
	return bytes;
}

void
wal_tail_init(struct wal *w, uint64_t folded_lsn, uint64_t unfolded_bytes)
{
	pthread_mutex_lock(&w->lock);
	w->folded_lsn = folded_lsn;
	w->unfolded_bytes = unfolded_bytes;
	pthread_mutex_unlock(&w->lock);
}

void
wal_tail_limit(struct wal *w, uint64_t max_records, uint64_t max_bytes)
{
	pthread_mutex_lock(&w->lock);
	w->tail_max_records = max_records;
	w->tail_max_bytes = max_bytes;
	pthread_cond_broadcast(&w->folded);
	pthread_mutex_unlock(&w->lock);
}

void
wal_tail_folded(struct wal *w, uint64_t lsn, uint64_t bytes)
{
	pthread_mutex_lock(&w->lock);
	if (lsn > w->folded_lsn)
		w->folded_lsn = lsn;
	w->unfolded_bytes = bytes < w->unfolded_bytes ? w->unfolded_bytes - bytes : 0;
	if (w->folded_lsn >= w->next_lsn - 1)
		w->unfolded_bytes = 0;  /* nothing left: no drift either */
	pthread_cond_broadcast(&w->folded);
	pthread_mutex_unlock(&w->lock);
}

void
wal_tail_stats(struct wal *w, struct wal_tail_stats *out)
{
	pthread_mutex_lock(&w->lock);
	out->records = w->next_lsn - 1 - w->folded_lsn;
	out->bytes = w->unfolded_bytes;
	out->max_records = w->tail_max_records;
	out->max_bytes = w->tail_max_bytes;
	out->waits = w->tail_waits;
	pthread_mutex_unlock(&w->lock);
}

void
wal_sync_soon(struct wal *w)
{
	pthread_mutex_lock(&w->lock);
	__atomic_store_n(&w->sync_wanted, true, __ATOMIC_RELAXED);
	pthread_cond_signal(&w->work);
	pthread_mutex_unlock(&w->lock);
}

uint32_t
wal_appenders_waiting(struct wal *w)
{
	return __atomic_load_n(&w->appenders_waiting, __ATOMIC_RELAXED);
}

int
wal_error(struct wal *w)
{
	return __atomic_load_n(&w->error, __ATOMIC_RELAXED);
}
