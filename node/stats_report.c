/* The statistics a node reports: see node/stats_report.h. */
#include "node/stats_report.h"

#include <event2/event.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "node/proto_text.h"
#include "node/settings.h"
#include "node/stats.h"
#include "storage/cache.h"
#include "storage/log.h"
#include "storage/persist.h"

static void
emit_u64(stats_emit_fn *emit, void *arg, const char *name, uint64_t v)
{
	char buf[24];

	snprintf(buf, sizeof(buf), "%" PRIu64, v);
	emit(arg, name, buf);
}

/* memcached's "seconds.microseconds" (rusage_user, rusage_system). */
static void
emit_timeval(stats_emit_fn *emit, void *arg, const char *name, const struct timeval *tv)
{
	char buf[48];

	snprintf(buf, sizeof(buf), "%ld.%06ld", (long)tv->tv_sec, (long)tv->tv_usec);
	emit(arg, name, buf);
}

void
stats_report_general(const struct proto_env *env, stats_emit_fn *emit, void *arg)
{
	const struct settings *s = env->settings;
	struct thread_stats ts;
	struct cache_stats cs;
	struct rusage ru;
	time_t now = time(NULL);

	stats_sum(&ts);
	cache_get_stats(env->cache, &cs);
	getrusage(RUSAGE_SELF, &ru);
	emit_u64(emit, arg, "pid", (uint64_t)getpid());
	emit_u64(emit, arg, "uptime", (uint64_t)(now - env->started));
	emit_u64(emit, arg, "time", (uint64_t)now);
	emit(arg, "version", STATS_VERSION_STRING);
	emit(arg, "libevent", event_get_version());
	emit_u64(emit, arg, "pointer_size", sizeof(void *) * 8);
	emit_timeval(emit, arg, "rusage_user", &ru.ru_utime);
	emit_timeval(emit, arg, "rusage_system", &ru.ru_stime);
	emit_u64(emit, arg, "max_connections", (uint64_t)s->conn_limit);
	emit_u64(emit, arg, "curr_connections",
	         __atomic_load_n(&conn_stats.curr_connections, __ATOMIC_RELAXED));
	emit_u64(emit, arg, "total_connections",
	         __atomic_load_n(&conn_stats.total_connections, __ATOMIC_RELAXED));
	emit_u64(emit, arg, "rejected_connections",
	         __atomic_load_n(&conn_stats.rejected_connections, __ATOMIC_RELAXED));
#define STATS_EMIT(name) emit_u64(emit, arg, #name, ts.name);
	THREAD_STATS_FIELDS(STATS_EMIT)
#undef STATS_EMIT
	emit_u64(emit, arg, "limit_maxbytes", s->mem_limit);
	emit_u64(emit, arg, "threads", (uint64_t)env->worker_threads);
	emit_u64(emit, arg, "hash_power_level", cs.hash_power);
	emit_u64(emit, arg, "hash_bytes", cs.hash_bytes);
	emit_u64(emit, arg, "bytes", cs.bytes);
	emit_u64(emit, arg, "curr_items", cs.curr_items);
	emit_u64(emit, arg, "total_items", cs.total_items);
	emit_u64(emit, arg, "evictions", cs.evictions);
	emit_u64(emit, arg, "reclaimed", cs.reclaimed);
}

void
stats_report_settings(const struct proto_env *env, stats_emit_fn *emit, void *arg)
{
	const struct settings *s = env->settings;

	emit_u64(emit, arg, "maxbytes", s->mem_limit);
	emit_u64(emit, arg, "maxconns", (uint64_t)s->conn_limit);
	emit_u64(emit, arg, "tcpport", (uint64_t)s->port);
	emit_u64(emit, arg, "udpport", 0);
	emit(arg, "inter", s->listen_addr);
	emit_u64(emit, arg, "verbosity", (uint64_t)log_get_level());
	emit_u64(emit, arg, "num_threads", (uint64_t)env->worker_threads);
	emit(arg, "cas_enabled", s->use_cas ? "yes" : "no");
	emit(arg, "binding_protocol", s->protocol == CLIENT_PROTOCOL_ASCII ? "ascii"
	                              : s->protocol == CLIENT_PROTOCOL_BINARY ? "binary"
	                              : "auto-negotiate");
	/* As memcached: SASL is on when binary clients must authenticate; the
	 * ASCII convention, when text clients must (then the file's path). */
	emit(arg, "auth_enabled_sasl",
	     s->auth_file != NULL && s->protocol != CLIENT_PROTOCOL_ASCII ? "yes" : "no");
	emit(arg, "auth_enabled_ascii",
	     s->auth_file != NULL && s->protocol != CLIENT_PROTOCOL_BINARY ? s->auth_file : "no");
	emit(arg, "flush_enabled", s->flush_enabled ? "yes" : "no");
	emit_u64(emit, arg, "item_size_max", s->item_size_max);
	emit_u64(emit, arg, "hashpower_init", s->hashpower);
	emit(arg, "lru_crawler", s->sweeper ? "yes" : "no");
	emit(arg, "evictions", "on");
}

void
stats_report_items(const struct proto_env *env, stats_emit_fn *emit, void *arg)
{
	struct cache_stats cs;

	cache_get_stats(env->cache, &cs);
	if (cs.curr_items == 0)
		return;
	emit_u64(emit, arg, "items:1:number", cs.curr_items);
	emit_u64(emit, arg, "items:1:age", cs.oldest_item_age);
	emit_u64(emit, arg, "items:1:evicted", cs.evictions);
	emit_u64(emit, arg, "items:1:reclaimed", cs.reclaimed);
}

void
stats_report_slabs(const struct proto_env *env, stats_emit_fn *emit, void *arg)
{
	struct cache_stats cs;

	cache_get_stats(env->cache, &cs);
	if (cs.curr_items > 0) {
		emit_u64(emit, arg, "1:used_chunks", cs.curr_items);
		emit_u64(emit, arg, "1:total_chunks", cs.curr_items);
		emit_u64(emit, arg, "1:mem_requested", cs.bytes);
	}
	emit_u64(emit, arg, "active_slabs", cs.curr_items ? 1 : 0);
	emit_u64(emit, arg, "total_malloced", cs.mem_used);
}

void
stats_report_persistence(const struct proto_env *env, stats_emit_fn *emit, void *arg)
{
	struct persist_stats st;

	if (env->persist == NULL) {
		emit(arg, "enabled", "no");
		return;
	}
	persist_get_stats(env->persist, &st);
	emit(arg, "enabled", "yes");
	emit(arg, "data_dir", env->settings->data_dir);
	emit(arg, "fsync", wal_fsync_name(st.fsync));
	emit_u64(emit, arg, "wal_lsn", st.wal_lsn);
	emit_u64(emit, arg, "wal_synced_lsn", st.wal_synced_lsn);
	emit_u64(emit, arg, "checkpoint_lsn", st.checkpoint_lsn);
	emit_u64(emit, arg, "wal_bytes", st.wal_bytes);
	emit_u64(emit, arg, "checkpoint_bytes", st.checkpoint_bytes);
	emit_u64(emit, arg, "last_recovery_ms", st.last_recovery_ms);
	emit_u64(emit, arg, "recovered_items", st.recovered_items);
	emit(arg, "warmup", st.warmup_loading ? "loading" : "done");
	emit_u64(emit, arg, "warmup_items", st.warmup_items);
	emit_u64(emit, arg, "warmup_ms", st.warmup_ms);
	emit_u64(emit, arg, "wal_dropped_bytes", st.wal_dropped_bytes);
	emit_u64(emit, arg, "wal_appends_waiting", st.wal_appends_waiting);
	emit_u64(emit, arg, "wal_tail_records", st.tail.records);
	emit_u64(emit, arg, "wal_tail_bytes", st.tail.bytes);
	emit_u64(emit, arg, "wal_tail_max_records", st.tail.max_records);
	emit_u64(emit, arg, "wal_tail_max_bytes", st.tail.max_bytes);
	emit_u64(emit, arg, "wal_tail_waits", st.tail.waits);
	emit(arg, "wal_error", st.wal_error ? strerror(st.wal_error) : "none");
	emit(arg, "checkpoint_error", st.checkpoint_error ? strerror(st.checkpoint_error) : "none");
}
