/* WAL retention: the registry of positions that still need the log, the
 * slots file that keeps named positions across restarts, and trimming.
 *
 * POSITIONS (PostgreSQL's replication slots are the model)
 *   Under w->lock the log keeps every position that still needs it: each
 *   open reader's (struct wal_hold, registered by wal_reader_open, moved as
 *   the reader crosses segments) and named slots (the checkpointer's,
 *   "checkpoint", set by wal_trim; each replica's, by its node id).  A
 *   position is the first LSN its owner still needs.  wal_trim deletes only
 *   a prefix of closed segments, each wholly below every position.
 *   A slot flagged WAL_SLOT_REPLICA is capped by the backlog: when keeping
 *   it would keep checkpointed segments beyond `backlog` bytes, the slot is
 *   invalidated (dropped, logged) and its records go; a reader opened there
 *   later gets -ENOENT (its replica resyncs in full).  Readers and other
 *   slots are never capped.
 *
 * SLOTS FILE: DATA/wal/slots (all integers little-endian)
 *    0: magic "CAIRNSLT" (8 bytes)
 *    8: format version u32 (WAL_SLOTS_VERSION, 1)
 *   12: count u32: slots that follow
 *   16: count entries, each 10 + nlen bytes:
 *         0: nlen  u8   name length, 1..WAL_SLOT_NAME_MAX
 *         1: flags u8   WAL_SLOT_* (bit 0 REPLICA); TEMPORARY is never saved
 *         2: lsn   u64  the first LSN the slot needs
 *        10: name  nlen bytes (no NUL)
 *   then: checksum u32: low 32 bits of XXH3_64bits over every byte before it.
 *   Written by wal_slots_save (the checkpointer, each round; wal_close;
 *   skipped when no saved slot changed since the last write) as
 *   DATA/wal/slots.tmp, fsynced, renamed over DATA/wal/slots, and the
 *   directory fsynced; read by wal_open.  A slot read back may be older than
 *   it was at the crash, which is safe (it keeps more).  A damaged file is
 *   logged and ignored: the slots are lost, never the log.
 *   Example: one slot "r1" at LSN 42, not a replica slot: 32 bytes
 *     43 41 49 52 4e 53 4c 54  01 00 00 00  01 00 00 00
 *     02  00  2a 00 00 00 00 00 00 00  72 31  <checksum 4 bytes>
 */
#include "storage/wal.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include "storage/log.h"
#include "storage/wal_internal.h"

#define WAL_SLOTS_MAGIC "CAIRNSLT"
#define WAL_SLOTS_VERSION 1
#define WAL_SLOTS_HDR 16
#define WAL_SLOT_ENTRY_FIXED 10   /* nlen + flags + lsn */
#define WAL_CHECKPOINT_SLOT "checkpoint"

/******** READERS' POSITIONS (caller holds w->lock) ********/

void
do_hold_add(struct wal *w, struct wal_hold *h, uint64_t lsn)
{
	h->lsn = lsn;
	h->prev = NULL;
	h->next = w->holds;
	if (w->holds != NULL)
		w->holds->prev = h;
	w->holds = h;
}

void
do_hold_move(struct wal *w, struct wal_hold *h, uint64_t lsn)
{
	(void)w;
	assert(lsn >= h->lsn);  /* a reader only moves forward */
	h->lsn = lsn;
}

void
do_hold_remove(struct wal *w, struct wal_hold *h)
{
	if (h->prev != NULL)
		h->prev->next = h->next;
	else
		w->holds = h->next;
	if (h->next != NULL)
		h->next->prev = h->prev;
	h->prev = h->next = NULL;
}

/******** NAMED SLOTS ********/

static struct wal_slot *
do_slot_find(struct wal *w, const char *name)
{
	for (size_t i = 0; i < w->nslots; i++) {
		if (strcmp(w->slots[i].name, name) == 0)
			return &w->slots[i];
	}
	return NULL;
}

static void
do_slot_remove(struct wal *w, struct wal_slot *s)
{
	if (!(s->flags & WAL_SLOT_TEMPORARY))
		w->slots_gen++;
	*s = w->slots[--w->nslots];
}

static int
do_slot_set(struct wal *w, const char *name, uint64_t lsn, unsigned flags)
{
	struct wal_slot *s = do_slot_find(w, name);
	size_t nlen = strlen(name);

	if (nlen == 0 || nlen > WAL_SLOT_NAME_MAX || lsn == 0 ||
	    (flags & ~(unsigned)(WAL_SLOT_REPLICA | WAL_SLOT_TEMPORARY)) != 0)
		return -EINVAL;
	if (s == NULL) {
		if (w->nslots == w->slots_cap) {
			size_t cap = w->slots_cap ? w->slots_cap * 2 : 8;
			struct wal_slot *p = realloc(w->slots, cap * sizeof(*p));

			if (p == NULL)
				return -ENOMEM;
			w->slots = p;
			w->slots_cap = cap;
		}
		s = &w->slots[w->nslots++];
		memcpy(s->name, name, nlen + 1);
		s->lsn = 0;
		s->flags = WAL_SLOT_TEMPORARY;
	}
	if ((s->lsn != lsn || s->flags != flags) &&
	    !((s->flags & flags) & WAL_SLOT_TEMPORARY))
		w->slots_gen++;
	s->lsn = lsn;
	s->flags = flags;
	return 0;
}

int
wal_slot_set(struct wal *w, const char *name, uint64_t lsn, unsigned flags)
{
	int rc;

	pthread_mutex_lock(&w->lock);
	rc = do_slot_set(w, name, lsn, flags);
	pthread_mutex_unlock(&w->lock);
	return rc;
}

int
wal_slot_drop(struct wal *w, const char *name)
{
	struct wal_slot *s;

	pthread_mutex_lock(&w->lock);
	s = do_slot_find(w, name);
	if (s != NULL)
		do_slot_remove(w, s);
	pthread_mutex_unlock(&w->lock);
	return s != NULL ? 0 : -ENOENT;
}

size_t
wal_slot_list(struct wal *w, struct wal_slot_info *out, size_t max)
{
	size_t n;

	pthread_mutex_lock(&w->lock);
	n = w->nslots;
	for (size_t i = 0; i < n && i < max; i++) {
		memcpy(out[i].name, w->slots[i].name, sizeof(out[i].name));
		out[i].lsn = w->slots[i].lsn;
		out[i].flags = w->slots[i].flags;
	}
	pthread_mutex_unlock(&w->lock);
	return n;
}

void
do_slots_rebase(struct wal *w, uint64_t lo, uint64_t next_lsn)
{
	size_t i = 0;

	while (i < w->nslots) {
		struct wal_slot *s = &w->slots[i];

		if ((s->flags & WAL_SLOT_REPLICA) && (s->lsn < lo || s->lsn > next_lsn)) {
			log_msg(LOG_ALWAYS, "wal: slot %s (LSN %" PRIu64 ") dropped: the log was started over "
			        "at LSN %" PRIu64, s->name, s->lsn, next_lsn);
			do_slot_remove(w, s);
			continue;
		}
		if (s->lsn < lo || s->lsn > next_lsn) {
			s->lsn = s->lsn < lo ? lo : next_lsn;
			w->slots_gen++;
		}
		i++;
	}
}

void
wal_slots_free(struct wal *w)
{
	free(w->slots);
	w->slots = NULL;
	w->nslots = w->slots_cap = 0;
}

/******** THE SLOTS FILE ********/

static void
slots_file_path(const struct wal *w, const char *name, char *out, size_t outlen)
{
	snprintf(out, outlen, "%s/wal/%s", w->data_dir, name);
}

int
wal_slots_save(struct wal *w)
{
	char path[4096], tmp[4096], *buf;
	size_t len = WAL_SLOTS_HDR + 4, i;
	uint64_t gen;
	uint32_t count = 0;
	int fd, rc = 0;

	pthread_mutex_lock(&w->lock);
	gen = w->slots_gen;
	if (gen == w->slots_saved_gen) {
		pthread_mutex_unlock(&w->lock);
		return 0;  /* the file already says this */
	}
	for (i = 0; i < w->nslots; i++)
		len += WAL_SLOT_ENTRY_FIXED + strlen(w->slots[i].name);
	buf = malloc(len);
	if (buf == NULL) {
		pthread_mutex_unlock(&w->lock);
		return -ENOMEM;
	}
	len = WAL_SLOTS_HDR;
	for (i = 0; i < w->nslots; i++) {
		const struct wal_slot *s = &w->slots[i];
		size_t nlen = strlen(s->name);

		if (s->flags & WAL_SLOT_TEMPORARY)
			continue;
		buf[len] = (char)nlen;
		buf[len + 1] = (char)s->flags;
		put_u64(buf + len + 2, s->lsn);
		memcpy(buf + len + WAL_SLOT_ENTRY_FIXED, s->name, nlen);
		len += WAL_SLOT_ENTRY_FIXED + nlen;
		count++;
	}
	pthread_mutex_unlock(&w->lock);
	memcpy(buf, WAL_SLOTS_MAGIC, 8);
	put_u32(buf + 8, WAL_SLOTS_VERSION);
	put_u32(buf + 12, count);
	put_u32(buf + len, (uint32_t)XXH3_64bits(buf, len));
	len += 4;

	slots_file_path(w, "slots", path, sizeof(path));
	slots_file_path(w, "slots.tmp", tmp, sizeof(tmp));
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0) {
		rc = -errno;
		goto out_free;
	}
	rc = wal_write_all(fd, buf, len);
	if (rc == 0 && fsync(fd) != 0)
		rc = -errno;
	close(fd);
	if (rc == 0 && rename(tmp, path) != 0)
		rc = -errno;
	if (rc == 0)
		rc = wal_fsync_dir(w->data_dir);
	if (rc == 0) {
		pthread_mutex_lock(&w->lock);
		if (gen > w->slots_saved_gen)
			w->slots_saved_gen = gen;
		pthread_mutex_unlock(&w->lock);
	}
out_free:
	free(buf);
	return rc;
}

/* Parse a slots file into w; false when it is damaged. */
static bool
slots_parse(struct wal *w, const char *buf, size_t len)
{
	size_t pos = WAL_SLOTS_HDR;
	uint32_t count, i;

	if (len < WAL_SLOTS_HDR + 4 || memcmp(buf, WAL_SLOTS_MAGIC, 8) != 0 ||
	    get_u32(buf + 8) != WAL_SLOTS_VERSION ||
	    get_u32(buf + len - 4) != (uint32_t)XXH3_64bits(buf, len - 4))
		return false;
	count = get_u32(buf + 12);
	for (i = 0; i < count; i++) {
		char name[WAL_SLOT_NAME_MAX + 1];
		size_t nlen;

		if (len - 4 - pos < WAL_SLOT_ENTRY_FIXED)
			return false;
		nlen = (uint8_t)buf[pos];
		if (nlen == 0 || nlen > WAL_SLOT_NAME_MAX ||
		    len - 4 - pos - WAL_SLOT_ENTRY_FIXED < nlen)
			return false;
		memcpy(name, buf + pos + WAL_SLOT_ENTRY_FIXED, nlen);
		name[nlen] = '\0';
		if (strlen(name) != nlen ||
		    do_slot_set(w, name, get_u64(buf + pos + 2),
		                (uint8_t)buf[pos + 1] & ~(unsigned)WAL_SLOT_TEMPORARY) != 0)
			return false;
		pos += WAL_SLOT_ENTRY_FIXED + nlen;
	}
	return pos == len - 4;
}

void
wal_slots_load(struct wal *w)
{
	char path[4096], buf[WAL_SLOTS_HDR + 4 + 256 * (WAL_SLOT_ENTRY_FIXED + WAL_SLOT_NAME_MAX)];
	ssize_t n;
	int fd;

	slots_file_path(w, "slots", path, sizeof(path));
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		if (errno != ENOENT)
			log_msg(LOG_ALWAYS, "wal: cannot read %s: %s; starting without slots", path,
			        strerror(errno));
		return;
	}
	n = read(fd, buf, sizeof(buf));
	close(fd);
	if (n < 0 || (size_t)n == sizeof(buf) || !slots_parse(w, buf, (size_t)n)) {
		log_msg(LOG_ALWAYS, "wal: %s is damaged; starting without slots (replicas that "
		        "relied on one may need a full resync)", path);
		wal_slots_free(w);
		return;
	}
	for (size_t i = 0; i < w->nslots; i++)
		log_msg(LOG_INFO, "wal: slot %s at LSN %" PRIu64, w->slots[i].name, w->slots[i].lsn);
	w->slots_saved_gen = w->slots_gen;  /* the file says this already */
}

/******** TRIMMING ********/

/* The lowest position the log must keep, replica slots aside (those are
 * capped by the backlog instead).  Caller holds w->lock. */
static uint64_t
do_floor(const struct wal *w, uint64_t floor)
{
	const struct wal_hold *h;

	for (h = w->holds; h != NULL; h = h->next) {
		if (h->lsn < floor)
			floor = h->lsn;
	}
	for (size_t i = 0; i < w->nslots; i++) {
		if (!(w->slots[i].flags & WAL_SLOT_REPLICA) && w->slots[i].lsn < floor)
			floor = w->slots[i].lsn;
	}
	return floor;
}

/* Drop the replica slots that need a segment below `keep_from` (they would
 * keep more than the backlog).  Caller holds w->lock. */
static void
do_invalidate_slots(struct wal *w, uint64_t keep_from, uint64_t backlog)
{
	size_t i = 0;

	while (i < w->nslots) {
		struct wal_slot *s = &w->slots[i];

		if ((s->flags & WAL_SLOT_REPLICA) && s->lsn < keep_from) {
			log_msg(LOG_ALWAYS, "wal: slot %s invalidated: it needs LSN %" PRIu64 " but the "
			        "backlog (%" PRIu64 " bytes) keeps LSNs from %" PRIu64 " on; its replica "
			        "will resync in full", s->name, s->lsn, backlog, keep_from);
			do_slot_remove(w, s);
			continue;
		}
		i++;
	}
}

int
wal_trim(struct wal *w, uint64_t checkpoint_lsn, uint64_t backlog)
{
	uint64_t *gone = NULL, floor, kept = 0;
	size_t k = 0, i;
	const struct wal_hold *h;
	int rc;

	pthread_mutex_lock(&w->lock);
	if ((rc = do_slot_set(w, WAL_CHECKPOINT_SLOT, checkpoint_lsn + 1, 0)) != 0)
		goto out_unlock;
	floor = do_floor(w, checkpoint_lsn + 1);
	/* Closed segments wholly below every position: segment i ends where
	 * segment i + 1 starts; the last (active) one never goes. */
	while (k + 1 < w->nsegs && w->segs[k + 1].first_lsn - 1 < floor)
		k++;
	/* The newest of them, up to `backlog` bytes, stay for replicas. */
	while (k > 0 && kept + w->segs[k - 1].size <= backlog)
		kept += w->segs[--k].size;
	if (w->nsegs > 0)
		do_invalidate_slots(w, w->segs[k].first_lsn, backlog);
	if (k == 0)
		goto out_unlock;
	gone = malloc(k * sizeof(*gone));
	if (gone == NULL) {
		rc = -ENOMEM;
		goto out_unlock;
	}
	for (i = 0; i < k; i++)
		gone[i] = w->segs[i].first_lsn;
	memmove(w->segs, w->segs + k, (w->nsegs - k) * sizeof(*w->segs));
	w->nsegs -= k;
	/* Trim never passes a registered position. */
	for (h = w->holds; h != NULL; h = h->next)
		assert(h->lsn >= w->segs[0].first_lsn);
	pthread_mutex_unlock(&w->lock);

	/* Out of the index: no reader can open them any more; delete them
	 * oldest first without holding the lock. */
	for (i = 0; i < k; i++) {
		char path[4096];

		wal_segment_path(w->data_dir, gone[i], path, sizeof(path));
		if (unlink(path) != 0)
			log_msg(LOG_ALWAYS, "wal: cannot delete %s: %s", path, strerror(errno));
		else
			log_msg(LOG_INFO, "wal: deleted %s", path);
	}
	free(gone);
	return (int)k;
out_unlock:
	pthread_mutex_unlock(&w->lock);
	return rc;
}
