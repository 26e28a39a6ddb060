/* LMDB checkpoint: the WAL folded into a B-tree, for a fast warm restart.
 *
 * FILES: DATA/lmdb/data.mdb and DATA/lmdb/lock.mdb (an LMDB environment).
 *
 * NAMED DATABASES
 *   "items"  key:   the item key (1..250 bytes)
 *            value: flags u32 | exptime u32 | cas u64 | marks u8 | value bytes
 *                   (little-endian; exptime absolute unix seconds, 0 = never;
 *                   marks: the item's meta marks, CACHE_MARK_* bits, as an
 *                   MSET record carries them in the WAL)
 *   "meta"   "format"      -> u32, CKPT_FORMAT_VERSION (2).  Format 1 had no
 *                             marks byte; an open rewrites a format 1
 *                             checkpoint's items once with marks 0 (in the
 *                             same transaction as the new format number), so
 *                             an older binary refuses the result instead of
 *                             misreading it
 *            "applied_lsn" -> u64, the last WAL record folded in
 *            "flush_at"    -> u64, a pending delayed flush_all (0: none)
 *            "max_cas"     -> u64, the highest CAS unique of any SET or
 *                             flush_all folded in (a restarted node hands
 *                             out uniques above it before it has loaded
 *                             the items; added by an open that lacks it)
 *            "history_id", "epoch", "prev_history_id", "fork_lsn",
 *            "replica_of"  -> strings (replication state, see persist.c)
 *
 * RULE: the applied LSN is written in the same write transaction as the
 * changes it covers, so after any crash the checkpoint is exactly "the log up
 * to applied_lsn" and replay resumes after it.  Replay is idempotent anyway
 * (records are after-images), so applying a record twice does no harm.
 *
 * Expired items are not logged (expiry follows from the clock), so the
 * checkpoint purges them itself from time to time (ckpt_purge_expired) and a
 * load skips them.
 */
#include "storage/ckpt.h"

#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <lmdb.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <xxhash.h>

#include "storage/log.h"

#define CKPT_FORMAT_VERSION 2
#define CKPT_FORMAT_NO_MARKS 1  /* the format before the marks byte: upgraded on open */
#define CKPT_MAP_INITIAL ((size_t)256 << 20)
#define CKPT_ITEM_HDR 17   /* flags + exptime + cas + marks */
#define CKPT_OFF_MARKS 16

struct ckpt {
	MDB_env *env;
	MDB_dbi items;
	MDB_dbi meta;
	size_t map_size;
	pthread_rwlock_t resize_lock;  /* read txns share it; a map resize takes it alone */
	char path[4096];
};

/* LMDB's own codes become errnos; the message is logged here. */
static int
lmdb_error(const char *what, const char *path, int rc)
{
	log_msg(LOG_ALWAYS, "checkpoint %s: %s: %s", path, what, mdb_strerror(rc));
	switch (rc) {
	case MDB_INVALID:
	case MDB_CORRUPTED:
	case MDB_VERSION_MISMATCH:
	case MDB_PAGE_NOTFOUND:
	case MDB_BAD_TXN:
		return -EINVAL;
	case MDB_MAP_FULL:
		return -ENOSPC;
	default:
		return rc > 0 ? -rc : -EIO;
	}
}

static void
put_u32(unsigned char *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}

static void
put_u64(unsigned char *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}

static uint32_t
get_u32(const unsigned char *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t
get_u64(const unsigned char *p)
{
	return (uint64_t)get_u32(p) | (uint64_t)get_u32(p + 4) << 32;
}

/* mdb_txn_begin, or EIO while the environment is closed after a failed
 * reopen (see reopen_env). */
static int
begin_txn(struct ckpt *ck, unsigned int flags, MDB_txn **txn)
{
	return ck->env != NULL ? mdb_txn_begin(ck->env, NULL, flags, txn) : EIO;
}

static int
meta_get_u64(MDB_txn *txn, MDB_dbi meta, const char *name, uint64_t *out)
{
	MDB_val k = {strlen(name), (void *)name}, v;
	int rc = mdb_get(txn, meta, &k, &v);

	if (rc == 0 && (v.mv_size != 8 && v.mv_size != 4))
		return MDB_CORRUPTED;
	if (rc == 0)
		*out = v.mv_size == 8 ? get_u64(v.mv_data) : get_u32(v.mv_data);
	return rc;
}

static int
meta_put_u64(MDB_txn *txn, MDB_dbi meta, const char *name, uint64_t value)
{
	unsigned char buf[8];
	MDB_val k = {strlen(name), (void *)name}, v = {8, buf};

	put_u64(buf, value);
	return mdb_put(txn, meta, &k, &v, 0);
}

/* Open the environment at ck->path and its databases; LMDB's code on error
 * (ck->env is then closed and NULL). */
/* Raise "max_cas" to `cas` if it is below. */
static int
raise_max_cas(MDB_txn *txn, struct ckpt *ck, uint64_t cas)
{
	uint64_t stored = 0;
	int rc = meta_get_u64(txn, ck->meta, "max_cas", &stored);

	if (rc != 0 && rc != MDB_NOTFOUND)
		return rc;
	return rc == 0 && stored >= cas ? 0 : meta_put_u64(txn, ck->meta, "max_cas", cas);
}

/* A checkpoint written before "max_cas" existed gets it from one pass over
 * its items (once; every fold keeps it from then on). */
static int
ensure_max_cas(MDB_txn *txn, struct ckpt *ck)
{
	MDB_cursor *cur;
	MDB_val k, v;
	uint64_t max = 0, stored;
	int rc = meta_get_u64(txn, ck->meta, "max_cas", &stored);

	if (rc != MDB_NOTFOUND)
		return rc;
	if ((rc = mdb_cursor_open(txn, ck->items, &cur)) != 0)
		return rc;
	for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
	     rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		if (v.mv_size >= CKPT_ITEM_HDR && get_u64((const unsigned char *)v.mv_data + 8) > max)
			max = get_u64((const unsigned char *)v.mv_data + 8);
	}
	mdb_cursor_close(cur);
	return rc != MDB_NOTFOUND ? rc : meta_put_u64(txn, ck->meta, "max_cas", max);
}

/* A format 1 checkpoint's items gain a marks byte (0: format 1 had no
 * marks), each rewritten in place by the cursor.  Once, at the open that
 * finds format 1. */
static int
add_marks_byte(MDB_txn *txn, struct ckpt *ck)
{
	const size_t old_hdr = CKPT_ITEM_HDR - 1;
	char key[CACHE_KEY_MAX];
	unsigned char *buf = NULL;
	size_t cap = 0;
	MDB_cursor *cur;
	MDB_val k, v;
	int rc;

	if ((rc = mdb_cursor_open(txn, ck->items, &cur)) != 0)
		return rc;
	for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
	     rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		if (v.mv_size < old_hdr) {
			rc = MDB_CORRUPTED;
			break;
		}
		if (cap < v.mv_size + 1) {
			unsigned char *p = realloc(buf, v.mv_size + 1);

			if (p == NULL) {
				rc = ENOMEM;
				break;
			}
			buf = p;
			cap = v.mv_size + 1;
		}
		/* Key and value copied out first: both point into the page being
		 * rewritten, and a longer value moves its other entries (the
		 * put deletes, then inserts from the moved bytes). */
		if (k.mv_size > sizeof(key)) {
			rc = MDB_CORRUPTED;
			break;
		}
		memcpy(key, k.mv_data, k.mv_size);
		k.mv_data = key;
		memcpy(buf, v.mv_data, old_hdr);
		buf[CKPT_OFF_MARKS] = 0;
		memcpy(buf + CKPT_ITEM_HDR, (unsigned char *)v.mv_data + old_hdr, v.mv_size - old_hdr);
		v.mv_data = buf;
		v.mv_size++;
		if ((rc = mdb_cursor_put(cur, &k, &v, MDB_CURRENT)) != 0)
			break;
	}
	mdb_cursor_close(cur);
	free(buf);
	if (rc != MDB_NOTFOUND)
		return rc;
	log_msg(LOG_ALWAYS, "checkpoint %s: format %d upgraded to %d (items gained meta marks)",
	        ck->path, CKPT_FORMAT_NO_MARKS, CKPT_FORMAT_VERSION);
	return meta_put_u64(txn, ck->meta, "format", CKPT_FORMAT_VERSION);
}

/* The highest CAS of the changes (SET's unique, FLUSH's threshold). */
static uint64_t
changes_max_cas(const struct cache_change *ch, size_t n, size_t stride)
{
	uint64_t max = 0;

	for (size_t i = 0; i < n; i++, ch = (const void *)((const char *)ch + stride)) {
		if ((ch->type == CACHE_CHANGE_SET || ch->type == CACHE_CHANGE_FLUSH) && ch->cas > max)
			max = ch->cas;
	}
	return max;
}

static int
open_env(struct ckpt *ck, size_t map_size)
{
	MDB_envinfo info;
	MDB_stat stat;
	MDB_txn *txn;
	uint64_t format = 0;
	int rc;

	if ((rc = mdb_env_create(&ck->env)) != 0) {
		ck->env = NULL;
		return rc;
	}
	mdb_env_set_maxdbs(ck->env, 4);
	mdb_env_set_mapsize(ck->env, map_size);
	/* NOTLS: read transactions may live on threads other than their creator's. */
	if ((rc = mdb_env_open(ck->env, ck->path, MDB_NOTLS, 0644)) != 0)
		goto fail;
	mdb_env_info(ck->env, &info);
	/* Room to rewrite every page once: a format upgrade (add_marks_byte)
	 * changes every item in one transaction, and LMDB frees the old pages
	 * only at its commit.  The map is address space, not disk. */
	if (mdb_env_stat(ck->env, &stat) == 0) {
		size_t used = (size_t)(info.me_last_pgno + 1) * stat.ms_psize;

		if (info.me_mapsize < 2 * used + CKPT_MAP_INITIAL &&
		    mdb_env_set_mapsize(ck->env, 2 * used + CKPT_MAP_INITIAL) == 0)
			mdb_env_info(ck->env, &info);
	}
	ck->map_size = info.me_mapsize;
	if ((rc = begin_txn(ck, 0, &txn)) != 0)
		goto fail;
	if ((rc = mdb_dbi_open(txn, "items", MDB_CREATE, &ck->items)) != 0 ||
	    (rc = mdb_dbi_open(txn, "meta", MDB_CREATE, &ck->meta)) != 0)
		goto fail_abort;
	rc = meta_get_u64(txn, ck->meta, "format", &format);
	if (rc == MDB_NOTFOUND) {
		rc = meta_put_u64(txn, ck->meta, "format", CKPT_FORMAT_VERSION);
		format = CKPT_FORMAT_VERSION;
	}
	if (rc == 0 && format == CKPT_FORMAT_NO_MARKS)
		rc = add_marks_byte(txn, ck);
	else if (rc == 0 && format != CKPT_FORMAT_VERSION)
		rc = MDB_VERSION_MISMATCH;
	if (rc == 0)
		rc = ensure_max_cas(txn, ck);
	if (rc != 0)
		goto fail_abort;
	if ((rc = mdb_txn_commit(txn)) != 0)
		goto fail;
	return 0;
fail_abort:
	mdb_txn_abort(txn);
fail:
	mdb_env_close(ck->env);
	ck->env = NULL;
	return rc;
}

int
ckpt_open(const char *data_dir, struct ckpt **out)
{
	struct ckpt *ck = calloc(1, sizeof(*ck));
	int rc;

	if (ck == NULL)
		return -ENOMEM;
	snprintf(ck->path, sizeof(ck->path), "%s/lmdb", data_dir);
	if (mkdir(ck->path, 0755) != 0 && errno != EEXIST) {
		rc = -errno;
		log_msg(LOG_ALWAYS, "checkpoint: cannot create %s: %s", ck->path, strerror(errno));
		free(ck);
		return rc;
	}
	pthread_rwlock_init(&ck->resize_lock, NULL);
	if ((rc = open_env(ck, CKPT_MAP_INITIAL)) != 0) {
		rc = lmdb_error("cannot open", ck->path, rc);
		log_msg(LOG_ALWAYS, "checkpoint %s is unusable. The WAL in %s/wal still holds "
		        "recent changes. To start anyway, move %s aside (the node then "
		        "recovers from the WAL segments still present), or start with "
		        "--ephemeral", ck->path, data_dir, ck->path);
		pthread_rwlock_destroy(&ck->resize_lock);
		free(ck);
		return rc;
	}
	*out = ck;
	return 0;
}

/* After MDB_PANIC (a failed meta page write) the environment refuses every
 * transaction until it is reopened; what is on disk is the last committed
 * state, so reopening is safe.  Waits for open read transactions. */
static int
reopen_env(struct ckpt *ck)
{
	int rc;

	pthread_rwlock_wrlock(&ck->resize_lock);
	if (ck->env != NULL)
		mdb_env_close(ck->env);
	rc = open_env(ck, ck->map_size);
	pthread_rwlock_unlock(&ck->resize_lock);
	if (rc == 0)
		log_msg(LOG_ALWAYS, "checkpoint %s reopened after a failed write", ck->path);
	return rc;
}

void
ckpt_close(struct ckpt *ck)
{
	if (ck == NULL)
		return;
	if (ck->env != NULL)
		mdb_env_close(ck->env);
	pthread_rwlock_destroy(&ck->resize_lock);
	free(ck);
}

/* One metadata number from its own read transaction (0 if absent). */
static uint64_t
read_meta_u64(struct ckpt *ck, const char *name)
{
	MDB_txn *txn;
	uint64_t value = 0;

	pthread_rwlock_rdlock(&ck->resize_lock);
	if (begin_txn(ck, MDB_RDONLY, &txn) == 0) {
		meta_get_u64(txn, ck->meta, name, &value);
		mdb_txn_abort(txn);
	}
	pthread_rwlock_unlock(&ck->resize_lock);
	return value;
}

uint64_t
ckpt_applied_lsn(struct ckpt *ck)
{
	return read_meta_u64(ck, "applied_lsn");
}

uint64_t
ckpt_max_cas(struct ckpt *ck)
{
	return read_meta_u64(ck, "max_cas");
}

uint64_t
ckpt_item_count(struct ckpt *ck)
{
	MDB_txn *txn;
	MDB_stat st = {0};

	pthread_rwlock_rdlock(&ck->resize_lock);
	if (begin_txn(ck, MDB_RDONLY, &txn) == 0) {
		mdb_stat(txn, ck->items, &st);
		mdb_txn_abort(txn);
	}
	pthread_rwlock_unlock(&ck->resize_lock);
	return st.ms_entries;
}

/* An "items" record as a SET change pointing into LMDB's pages; false when
 * it is malformed. */
static bool
decode_item(const MDB_val *k, const MDB_val *v, struct cache_change *set)
{
	const unsigned char *p = v->mv_data;

	if (k->mv_size == 0 || k->mv_size > CACHE_KEY_MAX || v->mv_size < CKPT_ITEM_HDR)
		return false;
	memset(set, 0, sizeof(*set));
	set->type = CACHE_CHANGE_SET;
	set->key = k->mv_data;
	set->nkey = k->mv_size;
	set->flags = get_u32(p);
	set->exptime = get_u32(p + 4);
	set->cas = get_u64(p + 8);
	set->value = (const char *)p + CKPT_ITEM_HDR;
	set->nbytes = (uint32_t)(v->mv_size - CKPT_ITEM_HDR);
	set->marks = p[CKPT_OFF_MARKS];
	return (set->marks & ~CACHE_MARKS_ALL) == 0;
}

int
ckpt_get(struct ckpt *ck, const char *key, size_t nkey, ckpt_item_fn *fn, void *arg)
{
	MDB_val k = {nkey, (void *)key}, v;
	struct cache_change set;
	MDB_txn *txn;
	int rc;

	pthread_rwlock_rdlock(&ck->resize_lock);
	rc = begin_txn(ck, MDB_RDONLY, &txn);
	if (rc == 0) {
		rc = mdb_get(txn, ck->items, &k, &v);
		if (rc == 0)
			rc = decode_item(&k, &v, &set) ? fn(arg, &set) : MDB_CORRUPTED;
		mdb_txn_abort(txn);
	}
	pthread_rwlock_unlock(&ck->resize_lock);
	if (rc == MDB_NOTFOUND)
		return 0;
	if (rc == 0)
		return 1;
	return rc < 0 ? rc : lmdb_error("cannot read an item", ck->path, rc);
}

int
ckpt_key_bounds(struct ckpt *ck, char *first, size_t *nfirst, char *last, size_t *nlast)
{
	MDB_txn *txn;
	MDB_cursor *cur;
	MDB_val k, v;
	int rc;

	pthread_rwlock_rdlock(&ck->resize_lock);
	if ((rc = begin_txn(ck, MDB_RDONLY, &txn)) == 0) {
		if ((rc = mdb_cursor_open(txn, ck->items, &cur)) == 0) {
			if ((rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST)) == 0 && k.mv_size <= CACHE_KEY_MAX) {
				memcpy(first, k.mv_data, k.mv_size);
				*nfirst = k.mv_size;
				rc = mdb_cursor_get(cur, &k, &v, MDB_LAST);
			}
			if (rc == 0 && k.mv_size <= CACHE_KEY_MAX) {
				memcpy(last, k.mv_data, k.mv_size);
				*nlast = k.mv_size;
			} else if (rc == 0) {
				rc = MDB_CORRUPTED;
			}
			mdb_cursor_close(cur);
		}
		mdb_txn_abort(txn);
	}
	pthread_rwlock_unlock(&ck->resize_lock);
	if (rc == MDB_NOTFOUND)
		return -ENOENT;
	return rc == 0 ? 0 : lmdb_error("cannot read the key range", ck->path, rc);
}

static int
apply_one(MDB_txn *txn, struct ckpt *ck, const struct cache_change *ch)
{
	MDB_val k = {ch->nkey, (void *)ch->key}, v;
	unsigned char *p;
	int rc;

	switch (ch->type) {
	case CACHE_CHANGE_SET:
		v.mv_size = CKPT_ITEM_HDR + ch->nbytes;
		if ((rc = mdb_put(txn, ck->items, &k, &v, MDB_RESERVE)) != 0)
			return rc;
		p = v.mv_data;
		put_u32(p, ch->flags);
		put_u32(p + 4, ch->exptime);
		put_u64(p + 8, ch->cas);
		p[CKPT_OFF_MARKS] = ch->marks;
		memcpy(p + CKPT_ITEM_HDR, ch->value, ch->nbytes);
		return 0;
	case CACHE_CHANGE_DELETE:
	case CACHE_CHANGE_EVICT:
		rc = mdb_del(txn, ck->items, &k, NULL);
		return rc == MDB_NOTFOUND ? 0 : rc;
	case CACHE_CHANGE_TOUCH: {
		unsigned char *copy;

		rc = mdb_get(txn, ck->items, &k, &v);
		if (rc == MDB_NOTFOUND)
			return 0;
		if (rc != 0 || v.mv_size < CKPT_ITEM_HDR)
			return rc != 0 ? rc : MDB_CORRUPTED;
		/* LMDB's pages are read-only: write a modified copy. */
		copy = malloc(v.mv_size);
		if (copy == NULL)
			return ENOMEM;
		memcpy(copy, v.mv_data, v.mv_size);
		put_u32(copy + 4, ch->exptime);
		v.mv_data = copy;
		rc = mdb_put(txn, ck->items, &k, &v, 0);
		free(copy);
		return rc;
	}
	case CACHE_CHANGE_FLUSH:
		if (ch->exptime != 0) {
			/* Delayed: the deadline is kept until an immediate flush. */
			rc = meta_put_u64(txn, ck->meta, "flush_at", ch->exptime);
			return rc;
		}
		rc = meta_put_u64(txn, ck->meta, "flush_at", 0);
		return rc != 0 ? rc : mdb_drop(txn, ck->items, 0);
	}
	return MDB_CORRUPTED;
}

/* Double the map; only possible with no transaction open in this process. */
static int
grow_map(struct ckpt *ck)
{
	int rc;

	pthread_rwlock_wrlock(&ck->resize_lock);
	rc = mdb_env_set_mapsize(ck->env, ck->map_size * 2);
	if (rc == 0) {
		ck->map_size *= 2;
		log_msg(LOG_INFO, "checkpoint: map size now %zu MB", ck->map_size >> 20);
	}
	pthread_rwlock_unlock(&ck->resize_lock);
	return rc;
}

struct record_batch {
	const struct wal_record *recs;
	size_t n;
	const bool *skip;     /* superseded within the batch (mark_superseded) */
};

static int
apply_records(MDB_txn *txn, struct ckpt *ck, const void *arg)
{
	const struct record_batch *b = arg;
	size_t i;
	int rc = 0;

	for (i = 0; rc == 0 && i < b->n; i++) {
		if (!b->skip[i])
			rc = apply_one(txn, ck, &b->recs[i].change);
	}
	if (rc == 0)
		rc = raise_max_cas(txn, ck, changes_max_cas(&b->recs[0].change, b->n, sizeof(b->recs[0])));
	return rc != 0 ? rc : meta_put_u64(txn, ck->meta, "applied_lsn", b->recs[b->n - 1].lsn);
}

static bool
sets_whole_item(const struct cache_change *ch)
{
	return ch->type == CACHE_CHANGE_SET || ch->type == CACHE_CHANGE_DELETE ||
	       ch->type == CACHE_CHANGE_EVICT;
}

/* FOLDING ONLY THE LAST VERSION.  Within one batch (one transaction), mark
 * in skip[] the records whose effect a later record of the batch undoes:
 *   - every item record (SET, DELETE, EVICT, TOUCH) before the last
 *     immediate flush_all of the batch (it drops every item);
 *   - a SET, DELETE or EVICT followed, after that flush, by another SET,
 *     DELETE or EVICT of the same key (which replaces or removes whatever
 *     it left).  A TOUCH is always applied, in order.
 * The transaction then ends in exactly the state of applying every record,
 * with one B-tree update per key instead of one per write (a hot key
 * written a thousand times in a batch is put once).  Returns 0 or
 * -ENOMEM. */
static int
mark_superseded(const struct wal_record *recs, size_t n, bool *skip)
{
	size_t cap = 16, last_flush = 0, i;
	uint32_t *latest;  /* open addressing: index + 1 of a key's latest record; 0 = empty */

	while (cap < 2 * n)
		cap *= 2;
	latest = calloc(cap, sizeof(*latest));
	if (latest == NULL)
		return -ENOMEM;
	for (i = 0; i < n; i++) {
		if (recs[i].change.type == CACHE_CHANGE_FLUSH && recs[i].change.exptime == 0)
			last_flush = i + 1;
	}
	for (i = n; i-- > 0;) {
		const struct cache_change *ch = &recs[i].change;
		size_t j;

		skip[i] = i + 1 < last_flush && ch->type != CACHE_CHANGE_FLUSH;
		if (skip[i] || !sets_whole_item(ch))
			continue;
		for (j = XXH3_64bits(ch->key, ch->nkey) & (cap - 1);; j = (j + 1) & (cap - 1)) {
			const struct cache_change *later;

			if (latest[j] == 0) {
				latest[j] = (uint32_t)i + 1;  /* seen first from the end: the latest */
				break;
			}
			later = &recs[latest[j] - 1].change;
			if (later->nkey == ch->nkey && memcmp(later->key, ch->key, ch->nkey) == 0) {
				skip[i] = true;
				break;
			}
		}
	}
	free(latest);
	return 0;
}

typedef int txn_body_fn(MDB_txn *txn, struct ckpt *ck, const void *arg);
static int write_txn(struct ckpt *ck, txn_body_fn *body, const void *arg, const char *what);

int
ckpt_apply(struct ckpt *ck, const struct wal_record *recs, size_t n)
{
	bool *skip;
	int rc;

	if (n == 0)
		return 0;
	assert(n <= UINT32_MAX);
	for (size_t i = 1; i < n; i++)
		assert(recs[i].lsn == recs[i - 1].lsn + 1);  /* a contiguous stretch of the log */
	skip = malloc(n * sizeof(*skip));
	if (skip == NULL || mark_superseded(recs, n, skip) != 0) {
		free(skip);
		return -ENOMEM;
	}
	rc = write_txn(ck, apply_records, &(struct record_batch){recs, n, skip},
	               "cannot apply WAL records");
	free(skip);
	return rc;
}

uint32_t
ckpt_pending_flush(struct ckpt *ck)
{
	return (uint32_t)read_meta_u64(ck, "flush_at");
}

int
ckpt_scan(struct ckpt *ck, ckpt_item_fn *fn, void *arg, uint64_t *applied_lsn)
{
	MDB_txn *txn;
	MDB_cursor *cur;
	MDB_val k, v;
	uint64_t lsn = 0;
	int rc, op = MDB_FIRST;

	pthread_rwlock_rdlock(&ck->resize_lock);
	if ((rc = begin_txn(ck, MDB_RDONLY, &txn)) != 0)
		goto out_unlock;
	meta_get_u64(txn, ck->meta, "applied_lsn", &lsn);
	if ((rc = mdb_cursor_open(txn, ck->items, &cur)) != 0)
		goto out_abort;
	while ((rc = mdb_cursor_get(cur, &k, &v, op)) == 0) {
		struct cache_change set;

		op = MDB_NEXT;
		if (!decode_item(&k, &v, &set)) {
			rc = MDB_CORRUPTED;
			break;
		}
		if ((rc = fn(arg, &set)) != 0)
			break;
	}
	if (rc == MDB_NOTFOUND)
		rc = 0;
	mdb_cursor_close(cur);
out_abort:
	mdb_txn_abort(txn);
out_unlock:
	pthread_rwlock_unlock(&ck->resize_lock);
	if (applied_lsn != NULL)
		*applied_lsn = lsn;
	if (rc < 0 && rc != MDB_CORRUPTED)
		return rc;  /* the callback's own error */
	return rc == 0 ? 0 : lmdb_error("cannot read items", ck->path, rc);
}

int
ckpt_purge_expired(struct ckpt *ck, uint32_t now, uint64_t *purged)
{
	MDB_txn *txn;
	MDB_cursor *cur;
	MDB_val k, v;
	int rc, op = MDB_FIRST;

	*purged = 0;
	pthread_rwlock_rdlock(&ck->resize_lock);
	if ((rc = begin_txn(ck, 0, &txn)) != 0)
		goto out_unlock;
	if ((rc = mdb_cursor_open(txn, ck->items, &cur)) != 0) {
		mdb_txn_abort(txn);
		goto out_unlock;
	}
	while ((rc = mdb_cursor_get(cur, &k, &v, op)) == 0) {
		uint32_t exptime = v.mv_size >= CKPT_ITEM_HDR ? get_u32((unsigned char *)v.mv_data + 4) : 0;

		op = MDB_NEXT;
		if (exptime != 0 && exptime <= now) {
			if ((rc = mdb_cursor_del(cur, 0)) != 0)
				break;
			(*purged)++;
		}
	}
	mdb_cursor_close(cur);
	if (rc == MDB_NOTFOUND)
		rc = mdb_txn_commit(txn);
	else
		mdb_txn_abort(txn);
out_unlock:
	pthread_rwlock_unlock(&ck->resize_lock);
	return rc == 0 ? 0 : lmdb_error("cannot purge expired items", ck->path, rc);
}

uint64_t
ckpt_file_bytes(struct ckpt *ck)
{
	char path[4200];
	struct stat st;

	snprintf(path, sizeof(path), "%s/data.mdb", ck->path);
	return stat(path, &st) == 0 ? (uint64_t)st.st_size : 0;
}

int
ckpt_meta_get_str(struct ckpt *ck, const char *name, char *buf, size_t buflen)
{
	MDB_val k = {strlen(name), (void *)name}, v;
	MDB_txn *txn;
	int rc;

	pthread_rwlock_rdlock(&ck->resize_lock);
	rc = begin_txn(ck, MDB_RDONLY, &txn);
	if (rc == 0) {
		rc = mdb_get(txn, ck->meta, &k, &v);
		if (rc == 0) {
			size_t n = v.mv_size < buflen - 1 ? v.mv_size : buflen - 1;

			memcpy(buf, v.mv_data, n);
			buf[n] = '\0';
		}
		mdb_txn_abort(txn);
	}
	pthread_rwlock_unlock(&ck->resize_lock);
	if (rc == MDB_NOTFOUND)
		return -ENOENT;
	return rc == 0 ? 0 : lmdb_error("cannot read metadata", ck->path, rc);
}

/* Run one write transaction, growing the map and retrying when it is full. */
static int
write_txn(struct ckpt *ck, txn_body_fn *body, const void *arg, const char *what)
{
	MDB_txn *txn;
	int rc;

	if (ck->env == NULL && reopen_env(ck) != 0)
		return -EIO;
	for (;;) {
		txn = NULL;
		pthread_rwlock_rdlock(&ck->resize_lock);
		rc = begin_txn(ck, 0, &txn);
		if (rc == 0)
			rc = body(txn, ck, arg);
		if (rc == 0)
			rc = mdb_txn_commit(txn);
		else if (txn != NULL)
			mdb_txn_abort(txn);
		pthread_rwlock_unlock(&ck->resize_lock);
		if (rc == MDB_PANIC) {
			/* Report this failure; the next attempt gets a fresh env. */
			int err = lmdb_error(what, ck->path, rc);

			if (reopen_env(ck) != 0)
				log_msg(LOG_ALWAYS, "checkpoint %s: cannot reopen; retrying later", ck->path);
			return err;
		}
		if (rc != MDB_MAP_FULL || grow_map(ck) != 0)
			break;
	}
	return rc == 0 ? 0 : lmdb_error(what, ck->path, rc);
}

static int
put_meta_strs(MDB_txn *txn, struct ckpt *ck, const void *arg)
{
	const struct ckpt_meta_str *m;
	int rc = 0;

	for (m = arg; rc == 0 && m->name != NULL; m++) {
		MDB_val k = {strlen(m->name), (void *)m->name};
		MDB_val v = {strlen(m->value), (void *)m->value};

		rc = mdb_put(txn, ck->meta, &k, &v, 0);
	}
	return rc;
}

int
ckpt_meta_put_strs(struct ckpt *ck, const struct ckpt_meta_str *values)
{
	return write_txn(ck, put_meta_strs, values, "cannot write metadata");
}

static int
reset_items(MDB_txn *txn, struct ckpt *ck, const void *arg)
{
	int rc = mdb_drop(txn, ck->items, 0);

	(void)arg;
	return rc != 0 ? rc : meta_put_u64(txn, ck->meta, "applied_lsn", 0);
}

int
ckpt_reset(struct ckpt *ck)
{
	return write_txn(ck, reset_items, NULL, "cannot reset");
}

struct item_batch {
	const struct cache_change *items;
	size_t n;
};

static int
put_items(MDB_txn *txn, struct ckpt *ck, const void *arg)
{
	const struct item_batch *b = arg;
	size_t i;
	int rc = 0;

	for (i = 0; rc == 0 && i < b->n; i++)
		rc = apply_one(txn, ck, &b->items[i]);
	return rc != 0 ? rc : raise_max_cas(txn, ck, changes_max_cas(b->items, b->n, sizeof(b->items[0])));
}

int
ckpt_put_items(struct ckpt *ck, const struct cache_change *items, size_t n)
{
	struct item_batch b = {items, n};

	return write_txn(ck, put_items, &b, "cannot store snapshot items");
}

static int
put_applied(MDB_txn *txn, struct ckpt *ck, const void *arg)
{
	return meta_put_u64(txn, ck->meta, "applied_lsn", *(const uint64_t *)arg);
}

int
ckpt_set_applied(struct ckpt *ck, uint64_t lsn)
{
	return write_txn(ck, put_applied, &lsn, "cannot set the applied LSN");
}

/* A full sync's snapshot is read in chunks, each from its own short read
 * transaction that resumes after the last key sent.  A long read
 * transaction would pin the map: LMDB cannot grow it while one is open, so
 * the checkpointer would stall for as long as a slow replica takes.  The
 * chunks are then not one point-in-time view, but they need not be: every
 * change after the snapshot's LSN (read when it opens) is in the WAL, which
 * the replica replays after the snapshot, and records are idempotent
 * after-images (PostgreSQL's base backup plus WAL works the same way). */
struct ckpt_snapshot {
	struct ckpt *ck;
	MDB_txn *txn;          /* NULL between chunks */
	MDB_cursor *cur;
	bool started;          /* last_key holds the last key returned */
	size_t nlast;
	char last_key[CACHE_KEY_MAX];
	size_t nfrom, nto;     /* ckpt_snapshot_set_range(); 0: unbounded */
	char from[CACHE_KEY_MAX], to[CACHE_KEY_MAX];
};

void
ckpt_snapshot_set_range(struct ckpt_snapshot *snap, const char *from, size_t nfrom,
                        const char *to, size_t nto)
{
	assert(!snap->started && nfrom <= CACHE_KEY_MAX && nto <= CACHE_KEY_MAX);
	memcpy(snap->from, from, nfrom);
	snap->nfrom = nfrom;
	memcpy(snap->to, to, nto);
	snap->nto = nto;
}

/* memcmp order of LMDB's default comparator: bytes, then length. */
static int
key_cmp(const void *a, size_t na, const void *b, size_t nb)
{
	int c = memcmp(a, b, na < nb ? na : nb);

	return c != 0 ? c : (na > nb) - (na < nb);
}

int
ckpt_snapshot_open(struct ckpt *ck, struct ckpt_snapshot **out, uint64_t *lsn)
{
	struct ckpt_snapshot *snap = calloc(1, sizeof(*snap));
	MDB_txn *txn;
	int rc;

	if (snap == NULL)
		return -ENOMEM;
	snap->ck = ck;
	*lsn = 0;
	pthread_rwlock_rdlock(&ck->resize_lock);
	rc = begin_txn(ck, MDB_RDONLY, &txn);
	if (rc == 0) {
		meta_get_u64(txn, ck->meta, "applied_lsn", lsn);
		mdb_txn_abort(txn);
	}
	pthread_rwlock_unlock(&ck->resize_lock);
	if (rc != 0) {
		free(snap);
		return lmdb_error("cannot open a snapshot", ck->path, rc);
	}
	*out = snap;
	return 0;
}

/* Start a chunk: a fresh read transaction, positioned after the last key. */
static int
snapshot_resume(struct ckpt_snapshot *snap, MDB_val *k, MDB_val *v)
{
	struct ckpt *ck = snap->ck;
	int rc;

	pthread_rwlock_rdlock(&ck->resize_lock);
	rc = begin_txn(ck, MDB_RDONLY, &snap->txn);
	if (rc == 0 && (rc = mdb_cursor_open(snap->txn, ck->items, &snap->cur)) != 0)
		mdb_txn_abort(snap->txn);
	if (rc != 0) {
		snap->txn = NULL;
		pthread_rwlock_unlock(&ck->resize_lock);
		return rc;
	}
	if (!snap->started && snap->nfrom == 0)
		return mdb_cursor_get(snap->cur, k, v, MDB_FIRST);
	if (!snap->started) {
		k->mv_size = snap->nfrom;
		k->mv_data = snap->from;
		return mdb_cursor_get(snap->cur, k, v, MDB_SET_RANGE);
	}
	k->mv_size = snap->nlast;
	k->mv_data = snap->last_key;
	rc = mdb_cursor_get(snap->cur, k, v, MDB_SET_RANGE);
	if (rc == 0 && k->mv_size == snap->nlast && memcmp(k->mv_data, snap->last_key, snap->nlast) == 0)
		rc = mdb_cursor_get(snap->cur, k, v, MDB_NEXT);
	return rc;
}

void
ckpt_snapshot_pause(struct ckpt_snapshot *snap)
{
	if (snap == NULL || snap->txn == NULL)
		return;
	mdb_cursor_close(snap->cur);
	mdb_txn_abort(snap->txn);
	snap->txn = NULL;
	pthread_rwlock_unlock(&snap->ck->resize_lock);
}

int
ckpt_snapshot_next(struct ckpt_snapshot *snap, struct cache_change *item)
{
	MDB_val k, v;
	int rc = snap->txn == NULL ? snapshot_resume(snap, &k, &v)
	                           : mdb_cursor_get(snap->cur, &k, &v, MDB_NEXT);

	if (rc == MDB_NOTFOUND ||
	    (rc == 0 && snap->nto != 0 && key_cmp(k.mv_data, k.mv_size, snap->to, snap->nto) >= 0))
		return 0;
	if (rc == 0 && !decode_item(&k, &v, item))
		rc = MDB_CORRUPTED;
	if (rc != 0)
		return lmdb_error("cannot read a snapshot", snap->ck->path, rc);
	snap->started = true;
	snap->nlast = k.mv_size;
	memcpy(snap->last_key, k.mv_data, k.mv_size);
	return 1;
}

void
ckpt_snapshot_close(struct ckpt_snapshot *snap)
{
	if (snap == NULL)
		return;
	ckpt_snapshot_pause(snap);
	free(snap);
}
