/* Persistence: recovery at startup, the checkpointer thread, shutdown. */
#include "storage/persist.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "storage/cache.h"
#include "storage/ckpt.h"
#include "storage/log.h"

#define CKPT_BATCH 4096             /* records per LMDB write transaction (its dirty pages are in memory) */
#define CKPT_BATCH_BYTES (4u << 20) /* ... or this many bytes of records */
#define CKPT_MIN_RECORDS 65536       /* fold once this many records wait... */
#define CKPT_MAX_DELAY 5             /* ... or they have waited this many seconds */
#define CKPT_PURGE_INTERVAL 60     /* seconds between purges of expired items */

struct persist {
	struct persist_config cfg;
	char *data_dir;
	int lock_fd;                   /* flock()ed DATA/LOCK */
	struct cache *cache;
	struct wal *wal;
	struct ckpt *ckpt;

	pthread_t checkpointer;
	pthread_mutex_t lock;          /* guards stop */
	pthread_cond_t wake;
	bool stop;

	pthread_mutex_t ckpt_lock;     /* a checkpoint round, or a full resync */
	struct wal_reader *ckpt_reader; /* where the checkpointer reads on (ckpt_lock) */
	pthread_mutex_t id_lock;
	struct persist_identity id;

	uint64_t checkpoint_lsn;       /* atomic */
	time_t last_fold;              /* checkpointer thread only */
	int checkpoint_error;          /* atomic */
	uint64_t last_recovery_ms;
	uint64_t recovered_items;
	uint64_t wal_dropped_bytes;
};

/******** RECOVERY ********/

struct load_ctx {
	struct cache *cache;
	uint32_t now;
	uint64_t skipped;
};

static int
load_item(void *arg, const struct cache_change *set)
{
	struct load_ctx *ctx = arg;

	if (set->exptime != 0 && set->exptime <= ctx->now) {
		ctx->skipped++;
		return 0;
	}
	/* Beyond -m the cache evicts, as it would have at run time. */
	cache_apply(ctx->cache, set);
	return 0;
}

static void
replay_record(void *arg, const struct wal_record *rec)
{
	struct cache *cache = arg;
	struct cache_change ch = rec->change;

	ch.lsn = 0;  /* no listener yet: nothing is logged twice */
	cache_apply(cache, &ch);
}

/* Transitional adapter, until storage/store.c orders "apply to memory,
 * append to the WAL" itself: the cache's change listener appends each
 * change (a local one with the next LSN, a replicated one with its own),
 * and remembers this thread's last LSN for node/conn.c. */
static __thread uint64_t thread_last_lsn;

static void
log_change(void *arg, const struct cache_change *ch)
{
	struct wal *w = arg;
	struct wal_record rec = {.lsn = ch->lsn, .epoch = ch->epoch, .change = *ch};

	if (ch->lsn == 0) {
		thread_last_lsn = wal_append(w, ch);
	} else if (ch->lsn != wal_next_lsn(w)) {
		/* The cache skipped a record (memory differed): not logged. */
		log_msg(LOG_ALWAYS, "wal: replicated change LSN %" PRIu64 " not logged: the log is at LSN %"
		        PRIu64, ch->lsn, wal_next_lsn(w) - 1);
	} else if (wal_append_record(w, &rec) == 0) {
		thread_last_lsn = ch->lsn;
	}
}

uint64_t
wal_take_thread_lsn(void)
{
	uint64_t lsn = thread_last_lsn;

	thread_last_lsn = 0;
	return lsn;
}

static uint64_t
elapsed_ms(const struct timespec *start)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (uint64_t)(((int64_t)now.tv_sec - start->tv_sec) * 1000 +
	                  ((int64_t)now.tv_nsec - start->tv_nsec) / 1000000);
}

/* One node per data directory: a second one would interleave WAL writes. */
static int
lock_data_dir(struct persist *p)
{
	char path[4200];

	if (mkdir(p->data_dir, 0755) != 0 && errno != EEXIST) {
		log_msg(LOG_ALWAYS, "cannot create data directory %s: %s", p->data_dir, strerror(errno));
		return -errno;
	}
	snprintf(path, sizeof(path), "%s/LOCK", p->data_dir);
	p->lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (p->lock_fd < 0) {
		log_msg(LOG_ALWAYS, "cannot open %s: %s", path, strerror(errno));
		return -errno;
	}
	if (flock(p->lock_fd, LOCK_EX | LOCK_NB) != 0) {
		log_msg(LOG_ALWAYS, "data directory %s is in use by another cairn process", p->data_dir);
		close(p->lock_fd);
		p->lock_fd = -1;
		return -EBUSY;
	}
	return 0;
}

static void
random_id(char *out, size_t outlen)
{
	unsigned char raw[16];
	size_t i;
	int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);

	if (fd < 0 || read(fd, raw, sizeof(raw)) != (ssize_t)sizeof(raw)) {
		/* Unique enough without urandom: time and pid. */
		uint64_t t = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);

		memcpy(raw, &t, sizeof(t));
		memcpy(raw + 8, &t, sizeof(t));
	}
	if (fd >= 0)
		close(fd);
	for (i = 0; i < sizeof(raw) && 2 * i + 2 < outlen; i++)
		snprintf(out + 2 * i, 3, "%02x", raw[i]);
}

static int
save_identity(struct persist *p, const struct persist_identity *id)
{
	char num[32];
	int rc;

	snprintf(num, sizeof(num), "%u", id->epoch);
	if ((rc = ckpt_meta_put_str(p->ckpt, "history_id", id->history_id)) != 0 ||
	    (rc = ckpt_meta_put_str(p->ckpt, "epoch", num)) != 0 ||
	    (rc = ckpt_meta_put_str(p->ckpt, "prev_history_id", id->prev_history_id)) != 0)
		return rc;
	snprintf(num, sizeof(num), "%" PRIu64, id->fork_lsn);
	if ((rc = ckpt_meta_put_str(p->ckpt, "fork_lsn", num)) != 0)
		return rc;
	return ckpt_meta_put_str(p->ckpt, "replica_of", id->replica_of);
}

/* Read the identity; a new data directory gets a fresh history, epoch 1. */
static int
load_identity(struct persist *p)
{
	struct persist_identity *id = &p->id;
	char num[32];

	memset(id, 0, sizeof(*id));
	if (ckpt_meta_get_str(p->ckpt, "history_id", id->history_id, sizeof(id->history_id)) != 0) {
		random_id(id->history_id, sizeof(id->history_id));
		id->epoch = 1;
		return save_identity(p, id);
	}
	if (ckpt_meta_get_str(p->ckpt, "epoch", num, sizeof(num)) == 0)
		id->epoch = (uint32_t)strtoul(num, NULL, 10);
	ckpt_meta_get_str(p->ckpt, "prev_history_id", id->prev_history_id, sizeof(id->prev_history_id));
	if (ckpt_meta_get_str(p->ckpt, "fork_lsn", num, sizeof(num)) == 0)
		id->fork_lsn = strtoull(num, NULL, 10);
	ckpt_meta_get_str(p->ckpt, "replica_of", id->replica_of, sizeof(id->replica_of));
	if (id->epoch == 0)
		id->epoch = 1;
	return 0;
}

static int
recover(struct persist *p, uint64_t *next_lsn, uint32_t *epoch)
{
	struct load_ctx ctx = {.cache = p->cache, .now = cache_now()};
	struct wal_recovery rec;
	uint64_t applied;
	uint32_t pending_flush;
	int rc;

	if ((rc = ckpt_scan(p->ckpt, load_item, &ctx, &applied)) != 0)
		return rc;
	pending_flush = ckpt_pending_flush(p->ckpt);
	if (pending_flush != 0) {
		struct cache_change flush = {.type = CACHE_CHANGE_FLUSH, .exptime = pending_flush};

		cache_apply(p->cache, &flush);
	}
	if ((rc = wal_recover(p->data_dir, applied, replay_record, p->cache, &rec)) != 0) {
		log_msg(LOG_ALWAYS, "cannot read the WAL in %s/wal: %s", p->data_dir, strerror(-rc));
		return rc;
	}
	p->checkpoint_lsn = applied;
	*next_lsn = (rec.last_lsn > applied ? rec.last_lsn : applied) + 1;
	*epoch = rec.last_epoch != 0 ? rec.last_epoch : 1;
	p->wal_dropped_bytes = rec.dropped_bytes;
	log_msg(LOG_ALWAYS, "recovery: checkpoint at LSN %" PRIu64 " (%" PRIu64 " expired items skipped), %"
	        PRIu64 " WAL records replayed up to LSN %" PRIu64 "%s", applied, ctx.skipped,
	        rec.replayed, *next_lsn - 1, rec.dropped_bytes ? ", damaged tail cut off" : "");
	return 0;
}

/* After recovery, with the WAL open: carry out a delayed flush_all whose time
 * passed while the node was down (logged, so the next recovery sees it), drop
 * what expired, and count what is left. */
static void
finish_recovery(struct persist *p, const struct timespec *start)
{
	struct cache_stats cs;

	cache_run_due_flush(p->cache);
	cache_get_stats(p->cache, &cs);
	cache_sweep(p->cache, (size_t)1 << cs.hash_power);
	cache_get_stats(p->cache, &cs);
	p->last_recovery_ms = elapsed_ms(start);
	p->recovered_items = cs.curr_items;
	log_msg(LOG_ALWAYS, "recovered %" PRIu64 " items in %" PRIu64 " ms",
	        p->recovered_items, p->last_recovery_ms);
}

/******** CHECKPOINTER ********/

/* Apply the batch of raw records in buf (n records, back to back) to LMDB. */
static int
fold_batch(struct persist *p, const char *buf, size_t n, struct wal_record *recs)
{
	size_t i, pos = 0, used;
	int rc;

	for (i = 0; i < n; i++, pos += used) {
		if (wal_decode(buf + pos, SIZE_MAX / 2, &recs[i], &used) != WAL_DECODE_OK)
			return -EILSEQ;
	}
	rc = ckpt_apply(p->ckpt, recs, n);
	if (rc == 0)
		__atomic_store_n(&p->checkpoint_lsn, recs[n - 1].lsn, __ATOMIC_RELAXED);
	return rc;
}

/* Fold every record above the checkpoint up to end_lsn (the synced end of
 * the log: the checkpoint never holds what a crash could take from the WAL)
 * into LMDB.  The WAL is read as a stream that stays open between rounds, in
 * batches of at most CKPT_BATCH records or CKPT_BATCH_BYTES, so memory stays
 * bounded whatever the segment size.  Caller holds ckpt_lock. */
static int
fold_until(struct persist *p, uint64_t end_lsn)
{
	struct wal_record *recs = malloc(CKPT_BATCH * sizeof(*recs));
	size_t cap = CKPT_BATCH_BYTES, used = 0, n = 0;
	char *buf = malloc(cap);
	int rc = 0;

	if (recs == NULL || buf == NULL) {
		rc = -ENOMEM;
		goto out;
	}
	if (p->ckpt_reader == NULL)
		rc = wal_reader_open(p->wal, __atomic_load_n(&p->checkpoint_lsn, __ATOMIC_RELAXED) + 1,
		                     &p->ckpt_reader);
	while (rc == 0) {
		const char *rec;
		size_t len;
		uint64_t lsn;
		int got = wal_reader_next(p->ckpt_reader, &rec, &len, &lsn);

		if (got < 0) {
			rc = got;
			break;
		}
		if (got == 0)
			break;
		if (lsn > end_lsn) {
			wal_reader_unread(p->ckpt_reader);  /* next round's */
			break;
		}
		if (used + len > cap) {
			/* The batch is full (rec stays valid: it is the reader's). */
			if (n > 0) {
				rc = fold_batch(p, buf, n, recs);
				used = n = 0;
				if (rc != 0)
					break;
			}
			if (len > cap) {
				char *bigger = realloc(buf, len);

				if (bigger == NULL) {
					rc = -ENOMEM;
					break;
				}
				buf = bigger;
				cap = len;
			}
		}
		memcpy(buf + used, rec, len);
		used += len;
		if (++n == CKPT_BATCH) {
			rc = fold_batch(p, buf, n, recs);
			used = n = 0;
		}
	}
	if (rc == 0 && n > 0)
		rc = fold_batch(p, buf, n, recs);
out:
	if (rc != 0) {
		/* Start over from the checkpoint next round. */
		wal_reader_close(p->ckpt_reader);
		p->ckpt_reader = NULL;
	}
	free(buf);
	free(recs);
	return rc;
}

static void
checkpoint_round(struct persist *p)
{
	uint64_t synced, applied;
	int rc = 0;

	synced = wal_synced_lsn(p->wal);
	applied = __atomic_load_n(&p->checkpoint_lsn, __ATOMIC_RELAXED);
	/* Fold in large rounds (LMDB pays per transaction and per page), but
	 * never let more than CKPT_MAX_DELAY seconds of the log wait; after a
	 * failure, retry every second. */
	if (synced > applied &&
	    (synced - applied >= CKPT_MIN_RECORDS || time(NULL) - p->last_fold >= CKPT_MAX_DELAY ||
	     __atomic_load_n(&p->checkpoint_error, __ATOMIC_RELAXED) != 0)) {
		rc = fold_until(p, synced);
		p->last_fold = time(NULL);
	}
	if (rc == 0) {
		rc = wal_trim(p->wal, __atomic_load_n(&p->checkpoint_lsn, __ATOMIC_RELAXED), p->cfg.backlog);
		rc = rc < 0 ? rc : wal_slots_save(p->wal);
	}
	if (rc != 0 && __atomic_load_n(&p->checkpoint_error, __ATOMIC_RELAXED) == 0)
		log_msg(LOG_ALWAYS, "checkpointer: %s; the WAL keeps the changes, retrying",
		        strerror(-rc));
	__atomic_store_n(&p->checkpoint_error, -rc, __ATOMIC_RELAXED);
}

static void *
checkpointer_main(void *arg)
{
	struct persist *p = arg;
	time_t last_purge = time(NULL);

	pthread_mutex_lock(&p->lock);
	while (!p->stop) {
		struct timespec deadline;

		clock_gettime(CLOCK_REALTIME, &deadline);
		deadline.tv_sec += 1;
		pthread_cond_timedwait(&p->wake, &p->lock, &deadline);
		if (p->stop)
			break;
		pthread_mutex_unlock(&p->lock);
		pthread_mutex_lock(&p->ckpt_lock);
		checkpoint_round(p);
		pthread_mutex_unlock(&p->ckpt_lock);
		if (time(NULL) - last_purge >= CKPT_PURGE_INTERVAL) {
			uint64_t purged;

			if (ckpt_purge_expired(p->ckpt, cache_now(), &purged) == 0 && purged > 0)
				log_msg(LOG_INFO, "checkpointer: purged %" PRIu64 " expired items", purged);
			last_purge = time(NULL);
		}
		pthread_mutex_lock(&p->lock);
	}
	pthread_mutex_unlock(&p->lock);
	return NULL;
}

/******** LIFECYCLE ********/

int
persist_open(const struct persist_config *cfg, struct cache *cache,
             wal_progress_fn *progress_fn, void *progress_arg, struct persist **out)
{
	struct persist *p = calloc(1, sizeof(*p));
	struct timespec start;
	struct wal_config wcfg;
	uint64_t next_lsn;
	uint32_t epoch;
	int rc;

	if (p == NULL)
		return -ENOMEM;
	p->cfg = *cfg;
	p->cache = cache;
	p->lock_fd = -1;
	p->data_dir = strdup(cfg->data_dir);
	if (p->data_dir == NULL) {
		rc = -ENOMEM;
		goto fail;
	}
	p->cfg.data_dir = p->data_dir;
	if ((rc = lock_data_dir(p)) != 0)
		goto fail;
	if ((rc = ckpt_open(p->data_dir, &p->ckpt)) != 0)
		goto fail;
	if ((rc = load_identity(p)) != 0)
		goto fail;
	clock_gettime(CLOCK_MONOTONIC, &start);
	if ((rc = recover(p, &next_lsn, &epoch)) != 0)
		goto fail;
	if (epoch < p->id.epoch)
		epoch = p->id.epoch;
	wcfg.data_dir = p->data_dir;
	wcfg.fsync = cfg->fsync;
	wcfg.segment_size = cfg->segment_size;
	if ((rc = wal_open(&wcfg, next_lsn, epoch, progress_fn, progress_arg, &p->wal)) != 0) {
		log_msg(LOG_ALWAYS, "cannot open the WAL in %s/wal: %s", p->data_dir, strerror(-rc));
		goto fail;
	}
	cache_set_change_fn(cache, log_change, p->wal);
	finish_recovery(p, &start);
	pthread_mutex_init(&p->lock, NULL);
	pthread_mutex_init(&p->ckpt_lock, NULL);
	pthread_mutex_init(&p->id_lock, NULL);
	pthread_cond_init(&p->wake, NULL);
	if (pthread_create(&p->checkpointer, NULL, checkpointer_main, p) != 0) {
		rc = -EAGAIN;
		cache_set_change_fn(cache, NULL, NULL);
		wal_close(p->wal);
		goto fail;
	}
	*out = p;
	return 0;
fail:
	ckpt_close(p->ckpt);
	if (p->lock_fd >= 0)
		close(p->lock_fd);
	free(p->data_dir);
	free(p);
	return rc;
}

void
persist_close(struct persist *p)
{
	if (p == NULL)
		return;
	pthread_mutex_lock(&p->lock);
	p->stop = true;
	pthread_cond_signal(&p->wake);
	pthread_mutex_unlock(&p->lock);
	pthread_join(p->checkpointer, NULL);
	wal_reader_close(p->ckpt_reader);
	cache_set_change_fn(p->cache, NULL, NULL);
	wal_close(p->wal);
	ckpt_close(p->ckpt);
	pthread_mutex_destroy(&p->lock);
	pthread_mutex_destroy(&p->ckpt_lock);
	pthread_mutex_destroy(&p->id_lock);
	pthread_cond_destroy(&p->wake);
	close(p->lock_fd);
	free(p->data_dir);
	free(p);
}

uint64_t
persist_durable_lsn(struct persist *p)
{
	switch (p->cfg.fsync) {
	case WAL_FSYNC_ALWAYS:
		return wal_synced_lsn(p->wal);
	case WAL_FSYNC_EVERYSEC:
		return wal_written_lsn(p->wal);
	case WAL_FSYNC_NO:
		break;
	}
	return UINT64_MAX;
}

int
persist_write_error(struct persist *p)
{
	return wal_error(p->wal);
}

void
persist_get_stats(struct persist *p, struct persist_stats *out)
{
	struct wal_segment *segs;
	size_t n, i;

	memset(out, 0, sizeof(*out));
	out->fsync = p->cfg.fsync;
	out->wal_lsn = wal_last_lsn(p->wal);
	out->wal_synced_lsn = wal_synced_lsn(p->wal);
	out->checkpoint_lsn = __atomic_load_n(&p->checkpoint_lsn, __ATOMIC_RELAXED);
	if (wal_list_segments(p->data_dir, &segs, &n) == 0) {
		for (i = 0; i < n; i++)
			out->wal_bytes += segs[i].size;
		free(segs);
	}
	out->checkpoint_bytes = ckpt_file_bytes(p->ckpt);
	out->last_recovery_ms = p->last_recovery_ms;
	out->recovered_items = p->recovered_items;
	out->wal_dropped_bytes = p->wal_dropped_bytes;
	out->wal_error = wal_error(p->wal);
	out->checkpoint_error = __atomic_load_n(&p->checkpoint_error, __ATOMIC_RELAXED);
}

/******** REPLICATION SUPPORT ********/

void
persist_get_identity(struct persist *p, struct persist_identity *out)
{
	pthread_mutex_lock(&p->id_lock);
	*out = p->id;
	pthread_mutex_unlock(&p->id_lock);
}

int
persist_set_identity(struct persist *p, const struct persist_identity *id)
{
	int rc;

	pthread_mutex_lock(&p->id_lock);
	p->id = *id;
	rc = save_identity(p, id);
	pthread_mutex_unlock(&p->id_lock);
	wal_set_epoch(p->wal, id->epoch);
	return rc;
}

uint64_t
persist_last_lsn(struct persist *p)
{
	return wal_last_lsn(p->wal);
}

uint64_t
persist_written_lsn(struct persist *p)
{
	return wal_written_lsn(p->wal);
}

uint64_t
persist_oldest_lsn(struct persist *p)
{
	return wal_oldest_lsn(p->wal);
}

int
persist_wal_reader_open(struct persist *p, uint64_t lsn, struct wal_reader **out)
{
	return wal_reader_open(p->wal, lsn, out);
}

void
persist_set_retain_lsn(struct persist *p, uint64_t lsn)
{
	/* Transitional: one uncapped, unsaved slot for every connected replica,
	 * until replication keeps a slot per replica. */
	if (lsn != 0)
		wal_slot_set(p->wal, "replicas", lsn, WAL_SLOT_TEMPORARY);
	else
		wal_slot_drop(p->wal, "replicas");
}

int
persist_snapshot_open(struct persist *p, struct ckpt_snapshot **out, uint64_t *lsn)
{
	return ckpt_snapshot_open(p->ckpt, out, lsn);
}

int
persist_full_sync_begin(struct persist *p)
{
	struct persist_identity id;
	int rc;

	/* The checkpointer stays out until persist_full_sync_end(). */
	pthread_mutex_lock(&p->ckpt_lock);
	wal_reader_close(p->ckpt_reader);
	p->ckpt_reader = NULL;
	cache_set_change_fn(p->cache, NULL, NULL);
	cache_clear(p->cache);
	persist_get_identity(p, &id);
	id.history_id[0] = '\0';  /* a crash from here on means: resync in full */
	if ((rc = persist_set_identity(p, &id)) != 0 ||
	    (rc = ckpt_reset(p->ckpt)) != 0 ||
	    (rc = wal_reset(p->wal, 1)) != 0) {
		cache_set_change_fn(p->cache, log_change, p->wal);
		pthread_mutex_unlock(&p->ckpt_lock);
		return rc;
	}
	__atomic_store_n(&p->checkpoint_lsn, 0, __ATOMIC_RELAXED);
	return 0;
}

int
persist_full_sync_items(struct persist *p, const struct cache_change *items, size_t n)
{
	size_t i;
	int rc = ckpt_put_items(p->ckpt, items, n);

	for (i = 0; i < n; i++)
		cache_apply(p->cache, &items[i]);
	return rc;
}

int
persist_full_sync_end(struct persist *p, uint64_t lsn, const struct persist_identity *id)
{
	int rc;

	if ((rc = ckpt_set_applied(p->ckpt, lsn)) == 0 &&
	    (rc = wal_reset(p->wal, lsn + 1)) == 0)
		rc = persist_set_identity(p, id);
	__atomic_store_n(&p->checkpoint_lsn, lsn, __ATOMIC_RELAXED);
	cache_set_change_fn(p->cache, log_change, p->wal);
	pthread_mutex_unlock(&p->ckpt_lock);
	return rc;
}

void
persist_full_sync_abort(struct persist *p)
{
	cache_set_change_fn(p->cache, log_change, p->wal);
	pthread_mutex_unlock(&p->ckpt_lock);
}

int64_t
persist_truncate_after(struct persist *p, uint64_t lsn)
{
	struct load_ctx ctx = {.cache = p->cache, .now = cache_now()};
	struct wal_recovery rec;
	uint64_t applied;
	int64_t discarded;
	int rc;

	pthread_mutex_lock(&p->ckpt_lock);
	if (__atomic_load_n(&p->checkpoint_lsn, __ATOMIC_RELAXED) > lsn) {
		pthread_mutex_unlock(&p->ckpt_lock);
		return -ERANGE;
	}
	cache_set_change_fn(p->cache, NULL, NULL);
	wal_reader_close(p->ckpt_reader);
	p->ckpt_reader = NULL;
	discarded = wal_truncate_after(p->wal, lsn);
	if (discarded >= 0) {
		/* Rebuild memory as it was at `lsn`: checkpoint, then the WAL. */
		cache_clear(p->cache);
		rc = ckpt_scan(p->ckpt, load_item, &ctx, &applied);
		if (rc == 0)
			rc = wal_recover(p->data_dir, applied, replay_record, p->cache, &rec);
		if (rc != 0)
			discarded = rc;
	}
	cache_set_change_fn(p->cache, log_change, p->wal);
	pthread_mutex_unlock(&p->ckpt_lock);
	return discarded;
}
