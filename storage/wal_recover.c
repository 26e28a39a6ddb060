/* WAL recovery: listing and reading segment files, and the startup pass
 * that replays the log after the checkpoint and repairs what is damaged.
 *
 * RECOVERY RULES (relative to the checkpoint C, the LSN LMDB holds up to)
 *   Segments are read in first-LSN order.  Inside a segment every record
 *   must be valid (wal_record.c) and have the previous LSN + 1, the first one
 *   the LSN in the file name.  Records above C are handed to the callback.
 *   (1) A segment that does not start where the previous one ended (a gap,
 *       LSNs e..f-1 missing) is fine when the checkpoint covers the gap
 *       (f <= C + 1): every segment before it then only holds LSNs <= C, and
 *       they are renamed *.covered (logged) so that the retained log is
 *       gap-free and starts after the checkpoint.
 *   (2) Real damage, a torn or corrupt record or a segment header that is
 *       not valid, is cut where it starts: the segment is truncated after
 *       its last valid record (a segment without even a valid header is
 *       deleted, or renamed *.damaged when it held more than a header).
 *       The log line says which LSNs and how many bytes were lost.
 *   (3) After damage, the next segment is kept and read on when it starts
 *       at or after the first missing LSN and at or before C + 1 (the
 *       checkpoint covers what the damage took; rule 1 then applies);
 *       otherwise it and every later segment are renamed *.damaged, never
 *       replayed: records the checkpoint does not cover are never skipped
 *       over.
 *   (4) A gap the checkpoint does not cover is damage (rule 3 from there).
 *   (5) When the log ends below C (its tail was lost, the checkpoint has
 *       it), the log will go on at C + 1: the segments left are set aside
 *       as *.covered by rule 1.
 *   (6) Segments wholly below C (the next one starts at or below C + 1)
 *       are not read at all: they are the replication backlog, and reading
 *       it would make startup time grow with --wal-backlog.  Damage in them
 *       is found when a replica reads them (wal_reader: -EILSEQ), and sends
 *       that replica to a full resync; the checkpoint holds their records.
 *   Segments wholly below C are kept: they are the replication backlog.  The first segment may start above C + 1 (its predecessors
 *   were trimmed and the checkpoint was moved aside by the operator): that
 *   is logged, not cut.  Nothing here crashes on any content.
 */
#include "storage/wal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "storage/log.h"
#include "storage/wal_internal.h"

/******** SEGMENT FILES ********/

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
	int rc = wal_dir_path(data_dir, dir, sizeof(dir));

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
	char *map;
	int fd = open(path, O_RDONLY | O_CLOEXEC), rc = 0;

	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) != 0) {
		rc = -errno;
		goto out_close;
	}
	if ((size_t)st.st_size < WAL_SEGMENT_HDR_SIZE) {
		rc = -EINVAL;
		goto out_close;
	}
	/* Mapped, not read into the heap: a 64 MiB segment costs no copy and no
	 * fresh anonymous pages (startup time, docs/warm-restart.md). */
	map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE | MAP_POPULATE, fd, 0);
	if (map == MAP_FAILED) {
		rc = -errno;
		goto out_close;
	}
	if (!wal_segment_header_ok(map, (size_t)st.st_size)) {
		munmap(map, (size_t)st.st_size);
		rc = -EINVAL;
		goto out_close;
	}
	*buf = map + WAL_SEGMENT_HDR_SIZE;
	*len = (size_t)st.st_size - WAL_SEGMENT_HDR_SIZE;
out_close:
	close(fd);
	return rc;
}

void
wal_release_segment(char *buf, size_t len)
{
	if (buf != NULL)
		munmap(buf - WAL_SEGMENT_HDR_SIZE, len + WAL_SEGMENT_HDR_SIZE);
}


/******** RECOVERY ********/

/* Rename a segment to <path><suffix> (kept for inspection, never read). */
static bool
set_aside(struct wal_segment *seg, const char *suffix)
{
	char aside[sizeof(seg->path) + 16];

	snprintf(aside, sizeof(aside), "%s%s", seg->path, suffix);
	if (rename(seg->path, aside) != 0) {
		log_msg(LOG_ALWAYS, "wal: cannot set aside %s: %s", seg->path, strerror(errno));
		return false;
	}
	return true;
}

/* Rule (1)/(5): segments [from, to) hold only LSNs the checkpoint has. */
static void
set_aside_covered(struct wal_segment *segs, const bool *gone, size_t from, size_t to,
                  uint64_t checkpoint_lsn, struct wal_recovery *out)
{
	for (size_t i = from; i < to; i++) {
		if (gone[i] || !set_aside(&segs[i], ".covered"))
			continue;
		out->covered_segments++;
		log_msg(LOG_ALWAYS, "wal: set aside %s.covered: its records are all in the checkpoint "
		        "(LSN %" PRIu64 ") and a gap follows them; not replayed",
		        segs[i].path, checkpoint_lsn);
	}
}

/* Rule (2): keep the first `keep` bytes of a damaged segment (0: none). */
static void
cut_segment(struct wal_segment *seg, uint64_t keep, uint64_t last_lsn, struct wal_recovery *out)
{
	uint64_t lost = seg->size - keep;
	int rc;

	if (keep == 0 && seg->size > WAL_SEGMENT_HDR_SIZE)
		rc = set_aside(seg, ".damaged") ? 0 : -1;
	else
		rc = keep == 0 ? unlink(seg->path) : truncate(seg->path, (off_t)keep);
	if (rc != 0 && keep != 0)
		log_msg(LOG_ALWAYS, "wal: cannot cut %s: %s", seg->path, strerror(errno));
	out->dropped_bytes += lost;
	log_msg(LOG_ALWAYS, "wal: %s is damaged at byte %" PRIu64 ": %" PRIu64 " bytes dropped "
	        "(records after LSN %" PRIu64 " in it are lost)%s", seg->path, keep, lost, last_lsn,
	        keep == 0 && seg->size > WAL_SEGMENT_HDR_SIZE ? "; the file is kept as *.damaged" : "");
}

/* Rule (3)/(4): set aside segments [from, n) that come after the damage. */
static void
set_aside_damaged(struct wal_segment *segs, size_t from, size_t n, uint64_t last_lsn,
                  struct wal_recovery *out)
{
	for (size_t i = from; i < n; i++) {
		if (!set_aside(&segs[i], ".damaged"))
			continue;
		out->dropped_segments++;
		out->dropped_bytes += segs[i].size;
		log_msg(LOG_ALWAYS, "wal: set aside %s.damaged (%" PRIu64 " bytes, LSNs from %" PRIu64
		        " on): it comes after damage the checkpoint does not cover, and is not replayed; "
		        "the log now ends at LSN %" PRIu64, segs[i].path, segs[i].size,
		        segs[i].first_lsn, last_lsn);
	}
}

/* Replay the valid records of one segment (buf holds its records).  Returns
 * the bytes that are valid; *expect is the LSN the next record must have. */
static size_t
replay_segment(const char *buf, size_t len, uint64_t checkpoint_lsn, uint64_t *expect,
               wal_replay_fn *fn, void *arg, struct wal_recovery *out)
{
	size_t pos = 0;

	while (pos < len) {
		struct wal_record rec;
		size_t used;

		if (wal_decode(buf + pos, len - pos, &rec, &used) != WAL_DECODE_OK ||
		    rec.lsn != *expect)
			break;
		if (rec.lsn > checkpoint_lsn) {
			fn(arg, &rec);
			out->replayed++;
			out->replayed_bytes += used;
		}
		out->last_lsn = rec.lsn;
		out->last_epoch = rec.epoch;
		(*expect)++;
		pos += used;
	}
	return pos;
}

int
wal_recover(const char *data_dir, uint64_t checkpoint_lsn, wal_replay_fn *fn, void *arg,
            struct wal_recovery *out)
{
	struct wal_segment *segs;
	uint64_t expect = 0;     /* the LSN the next record must have; 0 before any */
	size_t n, i, keep_from = 0, kept_end;
	bool *gone;
	int rc;

	memset(out, 0, sizeof(*out));
	rc = wal_list_segments(data_dir, &segs, &n);
	if (rc == -ENOENT)
		return 0;
	if (rc != 0)
		return rc;
	gone = calloc(n + 1, sizeof(*gone));
	if (gone == NULL) {
		free(segs);
		return -ENOMEM;
	}
	kept_end = n;  /* segments [keep_from, kept_end) stay the log */
	/* Rule (6): segments wholly below the checkpoint are not read. */
	for (i = 0; i + 1 < n && segs[i + 1].first_lsn <= checkpoint_lsn + 1; i++)
		;
	for (; i < n; i++) {
		char *buf = NULL;
		size_t len = 0, good = 0;

		if (expect == 0 && segs[i].first_lsn > checkpoint_lsn + 1)
			log_msg(LOG_ALWAYS, "wal: the log starts at LSN %" PRIu64 " but the checkpoint ends at "
			        "LSN %" PRIu64 ": LSNs in between are in neither", segs[i].first_lsn,
			        checkpoint_lsn);
		if (expect != 0 && segs[i].first_lsn != expect) {
			if (segs[i].first_lsn > expect && segs[i].first_lsn <= checkpoint_lsn + 1) {
				log_msg(LOG_ALWAYS, "wal: LSNs %" PRIu64 "..%" PRIu64 " are missing before %s; "
				        "the checkpoint (LSN %" PRIu64 ") has them", expect,
				        segs[i].first_lsn - 1, segs[i].path, checkpoint_lsn);
				set_aside_covered(segs, gone, keep_from, i, checkpoint_lsn, out);
				keep_from = i;
				out->last_lsn = 0;
				out->last_epoch = 0;
			} else {
				log_msg(LOG_ALWAYS, "wal: %s starts at LSN %" PRIu64 " where LSN %" PRIu64
				        " was due, and the checkpoint (LSN %" PRIu64 ") does not cover it",
				        segs[i].path, segs[i].first_lsn, expect, checkpoint_lsn);
				set_aside_damaged(segs, i, n, expect - 1, out);
				kept_end = i;
				break;
			}
		}
		expect = segs[i].first_lsn;
		rc = wal_read_segment(segs[i].path, &buf, &len);
		if (rc != 0 && rc != -EINVAL) {
			log_msg(LOG_ALWAYS, "wal: cannot read %s: %s", segs[i].path, strerror(-rc));
			break;
		}
		if (rc == 0)
			good = replay_segment(buf, len, checkpoint_lsn, &expect, fn, arg, out);
		wal_release_segment(buf, len);
		if (rc == 0 && good == len)
			continue;
		/* Damage: cut here; read on only if the checkpoint covers the loss. */
		cut_segment(&segs[i], rc == 0 ? WAL_SEGMENT_HDR_SIZE + good : 0, expect - 1, out);
		gone[i] = rc != 0;
		rc = 0;
		if (i + 1 < n && segs[i + 1].first_lsn >= expect &&
		    segs[i + 1].first_lsn <= checkpoint_lsn + 1)
			continue;
		set_aside_damaged(segs, i + 1, n, expect - 1, out);
		kept_end = i + 1;
		break;
	}
	if (rc == 0 && expect != 0 && expect <= checkpoint_lsn) {
		/* Rule (5): the log goes on at checkpoint + 1. */
		log_msg(LOG_ALWAYS, "wal: the log ends at LSN %" PRIu64 ", below the checkpoint (LSN %"
		        PRIu64 "): it goes on after the checkpoint", expect - 1, checkpoint_lsn);
		set_aside_covered(segs, gone, keep_from, kept_end, checkpoint_lsn, out);
		out->last_lsn = 0;
		out->last_epoch = 0;
	}
	free(gone);
	free(segs);
	return rc;
}
