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
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "storage/cache.h"
#include "storage/ckpt.h"
#include "storage/log.h"
#include "storage/store.h"
#include "storage/warmup.h"

/* Records per LMDB write transaction.  Measured (docs/benchmarks.md,
 * docs/warm-restart.md): with random keys each record rewrites about a
 * page, so larger transactions fold faster (4,096: 45k records/s; 16,384:
 * 63-74k/s; 32,768: 106k/s), but the heap keeps the dirty pages of the
 * largest one: RssAnon per item at 1M items 212 B, 217-219 B, ~225 B, where
 * memcached takes 196-198 B and the target is 1.1x. */
#define CKPT_BATCH 4096
#define CKPT_BATCH_BYTES (4u << 20) /* ... or this many bytes of records */
/* The checkpointer folds as soon as this much waits, so that the tail a
 * restart replays stays small whenever writes come slower than it folds
 * (docs/warm-restart.md: 16,384 records measured no better for writes on
 * the bench's one server core)... */
#define CKPT_MIN_RECORDS 65536
#define CKPT_MIN_BYTES ((uint64_t)64 << 20)
/* ...and the unfolded tail's hard bound (wal_tail_*): when writes outrun
 * the checkpointer for long, appends wait for it beyond this (about 0.7 s
 * of replay here).  A bound near the fold trigger cost writes dearly: at
 * 32,768 records / 16 MiB, 1 KB sets ran at 0.6x (1 in flight) and 0.4x
 * (16 in flight, p99 0.3 s) of the unbounded figures. */
#define TAIL_MAX_RECORDS 262144
#define TAIL_MAX_BYTES ((uint64_t)256 << 20)
#define CKPT_MAX_DELAY 5             /* ... or they have waited this many seconds */
#define CKPT_PURGE_INTERVAL 60     /* seconds between purges of expired items */
#define CKPT_POLL_MS 50            /* how often the checkpointer looks at the log */

struct persist {
	struct persist_config cfg;
	char *data_dir;
	int lock_fd;                   /* flock()ed DATA/LOCK */
	struct store *store;           /* where every change goes */
	struct cache *cache;           /* the store's memory (recovery fills it directly) */
	struct wal *wal;
	struct ckpt *ckpt;
	struct warmup *warmup;         /* loads the checkpoint after startup */

	pthread_t checkpointer;
	pthread_mutex_t lock;          /* guards stop */
	pthread_cond_t wake;
	bool stop;

	pthread_mutex_t ckpt_lock;     /* a checkpoint round, or a full resync */
	struct wal_reader *ckpt_reader; /* where the checkpointer reads on (ckpt_lock) */
	pthread_mutex_t id_lock;       /* guards id (readers) */
	pthread_mutex_t id_write_lock; /* one identity write at a time */
	struct persist_identity id;

	uint64_t checkpoint_lsn;       /* atomic */
	struct timespec last_fold;     /* CLOCK_MONOTONIC; checkpointer thread only */
	int checkpoint_error;          /* atomic */
	uint64_t last_recovery_ms;
	uint64_t replayed_items;       /* items in memory after the WAL tail's replay */
	uint64_t replayed_bytes;       /* bytes of the WAL tail replayed */
	bool tail_left_dead;           /* the tail's replay left dead items in memory */
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

struct replay_ctx {
	struct store *store;
	uint32_t now;
	bool left_dead;      /* a flush_all or an item already expired was replayed */
	const struct timespec *start;  /* of recovery (NULL: no progress lines) */
	uint64_t replayed;
	unsigned long long next_report_ms;
};

#define REPLAY_REPORT_MS 1000

/* A long tail (a burst just before a crash, a slow machine) logs progress
 * once a second, as the warm-up does after it. */
static void
report_replay(struct replay_ctx *ctx)
{
	unsigned long long ms;

	if (ctx->start == NULL || ++ctx->replayed % 1024 != 0 ||
	    (ms = log_ms_since(ctx->start)) < ctx->next_report_ms)
		return;
	ctx->next_report_ms = ms + REPLAY_REPORT_MS;
	log_msg(LOG_ALWAYS, "warm-up: replaying the WAL tail before serving: %" PRIu64
	        " records so far (%.0f records/s)", ctx->replayed,
	        ms > 0 ? (double)ctx->replayed * 1000 / (double)ms : 0.0);
}

static void
replay_record(void *arg, const struct wal_record *rec)
{
	struct replay_ctx *ctx = arg;
	const struct cache_change *ch = &rec->change;

	if (ch->type == CACHE_CHANGE_FLUSH ||
	    ((ch->type == CACHE_CHANGE_SET || ch->type == CACHE_CHANGE_TOUCH) &&
	     ch->exptime != 0 && ch->exptime <= ctx->now))
		ctx->left_dead = true;
	store_replay_change(ctx->store, ch);
	report_replay(ctx);
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

/* 128 random bits as 32 hex digits.  getrandom(2) blocks only until the
 * kernel's pool is first seeded; there is no weaker fallback, so that two
 * nodes never share an id. */
int
persist_new_history_id(char *out, size_t outlen)
{
	unsigned char raw[16];
	size_t i;

	if (getrandom(raw, sizeof(raw), 0) != (ssize_t)sizeof(raw)) {
		log_msg(LOG_ALWAYS, "cannot draw a random history id: %s", strerror(errno));
		return -EIO;
	}
	for (i = 0; i < sizeof(raw) && 2 * i + 2 < outlen; i++)
		snprintf(out + 2 * i, 3, "%02x", raw[i]);
	return 0;
}

/* The whole identity in one LMDB transaction: a crash leaves the old one or
 * the new one, never a mix (say a new history id with the old epoch). */
static int
save_identity(struct persist *p, const struct persist_identity *id)
{
	char epoch[16], fork_lsn[24];
	const struct ckpt_meta_str values[] = {
		{"history_id", id->history_id},
		{"epoch", epoch},
		{"prev_history_id", id->prev_history_id},
		{"fork_lsn", fork_lsn},
		{"replica_of", id->replica_of},
		{NULL, NULL},
	};

	snprintf(epoch, sizeof(epoch), "%u", id->epoch);
	snprintf(fork_lsn, sizeof(fork_lsn), "%" PRIu64, id->fork_lsn);
	return ckpt_meta_put_strs(p->ckpt, values);
}

/* Read the identity; a new data directory gets a fresh history, epoch 1. */
static int
load_identity(struct persist *p)
{
	struct persist_identity *id = &p->id;
	char num[32];

	memset(id, 0, sizeof(*id));
	if (ckpt_meta_get_str(p->ckpt, "history_id", id->history_id, sizeof(id->history_id)) != 0) {
		int rc = persist_new_history_id(id->history_id, sizeof(id->history_id));

		id->epoch = 1;
		return rc != 0 ? rc : save_identity(p, id);
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

/* Memory as of the end of the log, but for the checkpoint's items, which
 * the warm-up brings in after the node serves: replay the WAL after the
 * checkpoint (the warm-up notes each change, so that the loader never
 * brings back an older version). */
static int
recover(struct persist *p, const struct timespec *start, uint64_t *next_lsn, uint32_t *epoch)
{
	struct replay_ctx ctx = {.store = p->store, .now = cache_now(), .start = start,
	                         .next_report_ms = REPLAY_REPORT_MS};
	struct wal_recovery rec;
	uint64_t applied = ckpt_applied_lsn(p->ckpt);
	uint32_t pending_flush = ckpt_pending_flush(p->ckpt);
	int rc;

	p->warmup = warmup_create(p->cache, p->ckpt);
	if (p->warmup == NULL)
		return -ENOMEM;
	store_set_warmup(p->store, p->warmup);
	if (pending_flush != 0) {
		struct cache_change flush = {.type = CACHE_CHANGE_FLUSH, .exptime = pending_flush};

		cache_apply(p->cache, &flush);
	}
	if ((rc = wal_recover(p->data_dir, applied, replay_record, &ctx, &rec)) != 0) {
		log_msg(LOG_ALWAYS, "cannot read the WAL in %s/wal: %s", p->data_dir, strerror(-rc));
		return rc;
	}
	p->tail_left_dead = ctx.left_dead;
	p->checkpoint_lsn = applied;
	*next_lsn = (rec.last_lsn > applied ? rec.last_lsn : applied) + 1;
	*epoch = rec.last_epoch != 0 ? rec.last_epoch : 1;
	p->wal_dropped_bytes = rec.dropped_bytes;
	p->replayed_bytes = rec.replayed_bytes;
	log_msg(LOG_ALWAYS, "recovery: checkpoint at LSN %" PRIu64 ", %" PRIu64
	        " WAL records replayed up to LSN %" PRIu64 "%s", applied,
	        rec.replayed, *next_lsn - 1, rec.dropped_bytes ? ", damaged tail cut off" : "");
	return 0;
}

/* After recovery, with the WAL open: carry out a delayed flush_all whose time
 * passed while the node was down (logged, so the next recovery sees it),
 * then start loading the checkpoint behind the serving node. */
static int
finish_recovery(struct persist *p, const struct timespec *start)
{
	struct cache_stats cs;

	store_run_due_flush(p->store);
	cache_get_stats(p->cache, &cs);
	if (p->tail_left_dead) {
		/* The tail left dead items (flushed later in it, or expired while
		 * the node was down): count only what is served.  A sweep visits
		 * every bucket, so only then. */
		cache_sweep(p->cache, (size_t)1 << cs.hash_power);
		cache_get_stats(p->cache, &cs);
	}
	p->replayed_items = cs.curr_items;
	p->last_recovery_ms = log_ms_since(start);
	log_msg(LOG_ALWAYS, "recovered the WAL tail in %" PRIu64 " ms (%" PRIu64 " items)",
	        p->last_recovery_ms, p->replayed_items);
	return warmup_start(p->warmup);
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
	if (rc == 0) {
		__atomic_store_n(&p->checkpoint_lsn, recs[n - 1].lsn, __ATOMIC_RELAXED);
		wal_tail_folded(p->wal, recs[n - 1].lsn, pos);
	}
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
	struct wal_tail_stats tail;
	uint64_t synced, applied;
	bool due, attempted = false;
	int rc = 0;

	synced = wal_synced_lsn(p->wal);
	applied = __atomic_load_n(&p->checkpoint_lsn, __ATOMIC_RELAXED);
	wal_tail_stats(p->wal, &tail);
	/* Fold in large rounds (LMDB pays per transaction and per page), as
	 * soon as CKPT_MIN_RECORDS or CKPT_MIN_BYTES wait, and never let more
	 * than CKPT_MAX_DELAY seconds of the log wait; after a failure, retry
	 * every second. */
	due = tail.records >= CKPT_MIN_RECORDS || tail.bytes >= CKPT_MIN_BYTES ||
	      log_ms_since(&p->last_fold) >= CKPT_MAX_DELAY * 1000ULL;
	if (__atomic_load_n(&p->checkpoint_error, __ATOMIC_RELAXED) != 0)
		due = log_ms_since(&p->last_fold) >= 1000;
	/* Only what is on disk is folded: under everysec, ask for the fsync
	 * now rather than wait for the next second. */
	if (due && synced < wal_last_lsn(p->wal))
		wal_sync_soon(p->wal);
	if (due && synced > applied) {
		rc = fold_until(p, synced);
		clock_gettime(CLOCK_MONOTONIC, &p->last_fold);
		attempted = true;
	}
	if (rc == 0) {
		rc = wal_trim(p->wal, __atomic_load_n(&p->checkpoint_lsn, __ATOMIC_RELAXED), p->cfg.backlog);
		rc = rc < 0 ? rc : wal_slots_save(p->wal);
	}
	if (rc != 0 && __atomic_load_n(&p->checkpoint_error, __ATOMIC_RELAXED) == 0)
		log_msg(LOG_ALWAYS, "checkpointer: %s; the WAL keeps the changes, retrying "
		        "(the tail's bound is lifted meanwhile)", strerror(-rc));
	/* A fold's error stays until a fold succeeds or nothing is left to
	 * fold: the rounds in between (every 50 ms) say nothing about it. */
	if (rc != 0 || attempted || synced <= applied)
		__atomic_store_n(&p->checkpoint_error, -rc, __ATOMIC_RELAXED);
	/* Writes wait for folding only while folding works. */
	if (__atomic_load_n(&p->checkpoint_error, __ATOMIC_RELAXED) == 0)
		wal_tail_limit(p->wal, TAIL_MAX_RECORDS, TAIL_MAX_BYTES);
	else
		wal_tail_limit(p->wal, 0, 0);
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
		deadline.tv_nsec += CKPT_POLL_MS * 1000000L;
		if (deadline.tv_nsec >= 1000000000L) {
			deadline.tv_sec++;
			deadline.tv_nsec -= 1000000000L;
		}
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
persist_open(const struct persist_config *cfg, struct store *store,
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
	p->store = store;
	p->cache = store_cache(store);
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
	if ((rc = recover(p, &start, &next_lsn, &epoch)) != 0)
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
	wal_tail_init(p->wal, p->checkpoint_lsn, p->replayed_bytes);
	wal_tail_limit(p->wal, TAIL_MAX_RECORDS, TAIL_MAX_BYTES);
	store_attach_log(store, p->wal);
	if ((rc = finish_recovery(p, &start)) != 0) {
		store_attach_log(store, NULL);
		wal_close(p->wal);
		goto fail;
	}
	pthread_mutex_init(&p->lock, NULL);
	pthread_mutex_init(&p->ckpt_lock, NULL);
	pthread_mutex_init(&p->id_lock, NULL);
	pthread_mutex_init(&p->id_write_lock, NULL);
	pthread_cond_init(&p->wake, NULL);
	/* The first time-based fold comes a second after startup, as it did
	 * when the checkpointer looked once a second (a round 50 ms after
	 * startup would fold the tail a crash just left at once, before
	 * anything asks for it). */
	clock_gettime(CLOCK_MONOTONIC, &p->last_fold);
	p->last_fold.tv_sec -= CKPT_MAX_DELAY - 1;
	if (pthread_create(&p->checkpointer, NULL, checkpointer_main, p) != 0) {
		rc = -EAGAIN;
		store_attach_log(store, NULL);
		wal_close(p->wal);
		goto fail;
	}
	pthread_setname_np(p->checkpointer, "cairn-ckpt");
	*out = p;
	return 0;
fail:
	store_set_warmup(store, NULL);
	warmup_destroy(p->warmup);
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
	store_set_warmup(p->store, NULL);
	warmup_destroy(p->warmup);
	wal_reader_close(p->ckpt_reader);
	store_attach_log(p->store, NULL);
	wal_close(p->wal);
	ckpt_close(p->ckpt);
	pthread_mutex_destroy(&p->lock);
	pthread_mutex_destroy(&p->ckpt_lock);
	pthread_mutex_destroy(&p->id_lock);
	pthread_mutex_destroy(&p->id_write_lock);
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
persist_tick(struct persist *p)
{
	if (warmup_loading(p->warmup))
		warmup_report(p->warmup);
}

void
persist_get_stats(struct persist *p, struct persist_stats *out)
{
	struct warmup_stats ws;

	memset(out, 0, sizeof(*out));
	out->fsync = p->cfg.fsync;
	out->wal_lsn = wal_last_lsn(p->wal);
	out->wal_synced_lsn = wal_synced_lsn(p->wal);
	out->checkpoint_lsn = __atomic_load_n(&p->checkpoint_lsn, __ATOMIC_RELAXED);
	out->wal_bytes = wal_disk_bytes(p->wal);
	out->checkpoint_bytes = ckpt_file_bytes(p->ckpt);
	warmup_get_stats(p->warmup, &ws);
	out->last_recovery_ms = p->last_recovery_ms;
	/* replayed_items already has what the replay brought in from the
	 * checkpoint (warmup's items_at_start). */
	out->recovered_items = p->replayed_items + ws.items - ws.items_at_start;
	out->warmup_loading = ws.loading;
	out->warmup_items = ws.items;
	out->warmup_ms = ws.ms;
	out->wal_dropped_bytes = p->wal_dropped_bytes;
	out->wal_appends_waiting = wal_appenders_waiting(p->wal);
	wal_tail_stats(p->wal, &out->tail);
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

	/* Writers queue on id_write_lock across the LMDB commit; readers
	 * (stats, handshakes) take only id_lock, never held across it. */
	pthread_mutex_lock(&p->id_write_lock);
	rc = save_identity(p, id);
	if (rc == 0) {
		/* Only what is on disk is ours: a failed commit changes nothing. */
		pthread_mutex_lock(&p->id_lock);
		p->id = *id;
		pthread_mutex_unlock(&p->id_lock);
		wal_set_epoch(p->wal, id->epoch);
	}
	pthread_mutex_unlock(&p->id_write_lock);
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

/* A replica's slot is named after its node id, so that it survives the
 * replica's reconnects and restarts (and ours: slots are saved). */
static void
replica_slot_name(char *out, size_t outlen, const char *replica_id)
{
	snprintf(out, outlen, "replica:%s", replica_id);
}

int
persist_replica_slot_set(struct persist *p, const char *replica_id, uint64_t lsn)
{
	char name[WAL_SLOT_NAME_MAX + 1];

	replica_slot_name(name, sizeof(name), replica_id);
	return wal_slot_set(p->wal, name, lsn, WAL_SLOT_REPLICA);
}

void
persist_replica_slot_drop(struct persist *p, const char *replica_id)
{
	char name[WAL_SLOT_NAME_MAX + 1];

	replica_slot_name(name, sizeof(name), replica_id);
	wal_slot_drop(p->wal, name);
}

size_t
persist_slot_list(struct persist *p, struct wal_slot_info *out, size_t max)
{
	return wal_slot_list(p->wal, out, max);
}

int
persist_snapshot_open(struct persist *p, struct ckpt_snapshot **out, uint64_t *lsn,
                      struct wal_reader **reader)
{
	struct wal_reader *pin = NULL;
	int rc;

	/* Pin the whole log first (a reader at its oldest LSN is a registered
	 * position), so that the checkpointer cannot trim LSN + 1 between the
	 * moment we learn the snapshot's LSN and the moment our reader is
	 * registered there.  The checkpoint's own slot keeps the oldest
	 * segment at or below checkpoint + 1, so LSN + 1 is still there. */
	if ((rc = wal_reader_open(p->wal, 0, &pin)) != 0)
		return rc;
	rc = ckpt_snapshot_open(p->ckpt, out, lsn);
	if (rc == 0 && (rc = wal_reader_open(p->wal, *lsn + 1, reader)) != 0) {
		ckpt_snapshot_close(*out);
		*out = NULL;
	}
	wal_reader_close(pin);
	return rc;
}

int
persist_full_sync_begin(struct persist *p)
{
	struct persist_identity id;
	int rc;

	/* The checkpointer stays out until persist_full_sync_end(): no append
	 * may wait for it meanwhile (its next round sets the bound again). */
	pthread_mutex_lock(&p->ckpt_lock);
	wal_tail_limit(p->wal, 0, 0);
	warmup_stop(p->warmup);  /* what it would load is about to go */
	wal_reader_close(p->ckpt_reader);
	p->ckpt_reader = NULL;
	store_attach_log(p->store, NULL);
	cache_clear(p->cache);
	persist_get_identity(p, &id);
	id.history_id[0] = '\0';  /* a crash from here on means: resync in full */
	if ((rc = persist_set_identity(p, &id)) != 0 ||
	    (rc = ckpt_reset(p->ckpt)) != 0 ||
	    (rc = wal_reset(p->wal, 1)) != 0) {
		store_attach_log(p->store, p->wal);
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
	store_attach_log(p->store, p->wal);
	pthread_mutex_unlock(&p->ckpt_lock);
	return rc;
}

void
persist_full_sync_abort(struct persist *p)
{
	store_attach_log(p->store, p->wal);
	pthread_mutex_unlock(&p->ckpt_lock);
}

int64_t
persist_truncate_after(struct persist *p, uint64_t lsn)
{
	struct load_ctx ctx = {.cache = p->cache, .now = cache_now()};
	struct replay_ctx rctx = {.store = p->store, .now = ctx.now};
	struct wal_recovery rec;
	uint64_t applied;
	int64_t discarded;
	int rc;

	pthread_mutex_lock(&p->ckpt_lock);
	wal_tail_limit(p->wal, 0, 0);  /* as in persist_full_sync_begin() */
	if (__atomic_load_n(&p->checkpoint_lsn, __ATOMIC_RELAXED) > lsn) {
		pthread_mutex_unlock(&p->ckpt_lock);
		return -ERANGE;
	}
	warmup_stop(p->warmup);  /* memory is rebuilt in full below */
	store_attach_log(p->store, NULL);
	wal_reader_close(p->ckpt_reader);
	p->ckpt_reader = NULL;
	discarded = wal_truncate_after(p->wal, lsn);
	if (discarded >= 0) {
		/* Rebuild memory as it was at `lsn`: checkpoint, then the WAL. */
		cache_clear(p->cache);
		rc = ckpt_scan(p->ckpt, load_item, &ctx, &applied);
		if (rc == 0)
			rc = wal_recover(p->data_dir, applied, replay_record, &rctx, &rec);
		if (rc != 0)
			discarded = rc;
	}
	store_attach_log(p->store, p->wal);
	pthread_mutex_unlock(&p->ckpt_lock);
	return discarded;
}
