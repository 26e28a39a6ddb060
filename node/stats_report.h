/* The statistics a node reports, as (name, value) pairs.
 *
 * One copy of what `stats`, `stats settings`, `stats items`, `stats slabs`
 * and `stats persistence` say, written through a callback: the memcache
 * protocol (node/proto_text.c) turns each pair into a "STAT name value"
 * line, the metrics endpoint (node/metrics.c) into Prometheus samples.  The
 * names, their order and the text of every value are memcached's (the
 * integration tests compare `stats` with the real memcached byte for byte),
 * so a change here changes both replies.
 *
 * The callback has the shape of replication's repl_stat_fn, so that one
 * emitter serves `stats replication` (repl_write_stats) too.
 *
 * Threads: any thread, concurrently; each function only reads atomics or
 * takes short locks of its own (stats_sum, cache_get_stats,
 * persist_get_stats), never across the callback's work beyond the pair
 * being emitted.
 */
#ifndef CAIRN_NODE_STATS_REPORT_H
#define CAIRN_NODE_STATS_REPORT_H

struct proto_env;

/* What `version` and `stats` report: memcached's version (clients and
 * tools check it) with ours appended. */
#define STATS_VERSION_STRING "1.6.21-cairn-" CAIRN_VERSION

/* `name` and `value` are NUL-terminated and valid only during the call. */
typedef void stats_emit_fn(void *arg, const char *name, const char *value);

/* `stats` */
void stats_report_general(const struct proto_env *env, stats_emit_fn *emit, void *arg);

/* `stats settings` */
void stats_report_settings(const struct proto_env *env, stats_emit_fn *emit, void *arg);

/* `stats items`: cairn has no slab classes, so every item is in class 1
 * (nothing at all while the cache is empty, as memcached). */
void stats_report_items(const struct proto_env *env, stats_emit_fn *emit, void *arg);

/* `stats slabs` */
void stats_report_slabs(const struct proto_env *env, stats_emit_fn *emit, void *arg);

/* `stats persistence`: "enabled no" alone with --ephemeral. */
void stats_report_persistence(const struct proto_env *env, stats_emit_fn *emit, void *arg);

#endif
