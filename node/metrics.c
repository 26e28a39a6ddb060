/* The metrics endpoint (--metrics-port): see node/metrics.h and
 * docs/metrics.md, which lists every metric.
 *
 * The HTTP thread runs its own event_base with an evhttp on the socket that
 * metrics_open() bound.  A scrape reads the node's stats exactly as a
 * worker answering `stats` does (node/stats_report.c, repl_write_stats):
 * relaxed atomics and short locks of their own, none of them held while
 * this thread writes to a socket, so a slow or stuck scraper cannot hold up
 * a client, and a scrape never waits behind one.  The pairs are collected
 * first and then rendered, because a Prometheus family must be contiguous
 * and some metrics combine several stats (memcached_commands_total).
 *
 * Stopping: cairn does not call evthread_use_pthreads(), so
 * event_base_loopbreak() from another thread would race with the loop;
 * metrics_stop() signals an eventfd (storage/wakeup.h) that the loop
 * watches, and the loop breaks itself.
 */
#include "node/metrics.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <inttypes.h>
#include <netdb.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "node/proto_text.h"
#include "node/settings.h"
#include "node/stats_report.h"
#include "replication/repl.h"
#include "storage/log.h"
#include "storage/persist.h"
#include "storage/wakeup.h"

#define METRICS_BACKLOG 64
/* A connection idle (or a request slow) this long is closed: keep-alive
 * scrapers reconnect, and a stuck client does not pin a socket forever. */
#define METRICS_TIMEOUT_S 30
/* Requests are a line and a few headers; nothing we serve takes a body. */
#define METRICS_MAX_HEADERS 16384
#define METRICS_MAX_BODY 4096

#define CONTENT_TYPE_METRICS "text/plain; version=0.0.4; charset=utf-8"
#define CONTENT_TYPE_TEXT "text/plain; charset=utf-8"

struct metrics {
	int fd;                        /* bound socket; evhttp's (or -1) once started */
	struct event_base *base;       /* the HTTP thread's */
	struct evhttp *http;
	struct wakeup stop;            /* metrics_stop() -> the loop */
	struct event *stop_ev;
	pthread_t thread;
	bool running;                  /* `thread` was started */
	const struct proto_env *env;   /* atomic: NULL until metrics_serving() */
};

/******** COLLECTING STATS ********/

struct stat_pair {
	char *name;
	char *value;
};

/* Every (name, value) pair of one scrape, in the order they came. */
struct statset {
	struct stat_pair *v;
	size_t n, cap;
	bool oom;
};

/* stats_emit_fn and repl_stat_fn: copy one pair into the set. */
static void
collect(void *arg, const char *name, const char *value)
{
	struct statset *s = arg;
	char *n, *v;

	if (s->oom)
		return;
	if (s->n == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 128;
		struct stat_pair *p = realloc(s->v, cap * sizeof(*p));

		if (p == NULL) {
			s->oom = true;
			return;
		}
		s->v = p;
		s->cap = cap;
	}
	n = strdup(name);
	v = strdup(value);
	if (n == NULL || v == NULL) {
		free(n);
		free(v);
		s->oom = true;
		return;
	}
	s->v[s->n].name = n;
	s->v[s->n].value = v;
	s->n++;
}

static void
statset_free(struct statset *s)
{
	size_t i;

	for (i = 0; i < s->n; i++) {
		free(s->v[i].name);
		free(s->v[i].value);
	}
	free(s->v);
}

/* The value of stat `name`, or NULL.  The first one wins: names are unique
 * within a stats group, and each group is collected into its own set. */
static const char *
stat_get(const struct statset *s, const char *name)
{
	size_t i;

	for (i = 0; i < s->n; i++)
		if (strcmp(s->v[i].name, name) == 0)
			return s->v[i].value;
	return NULL;
}

/* A stats value that is a plain decimal number ("123", "0.012000"): it is
 * then written to the scrape as it is, which keeps every digit of a
 * 64-bit counter. */
static bool
is_number(const char *v)
{
	const char *p = v;

	if (*p == '\0')
		return false;
	while (*p >= '0' && *p <= '9')
		p++;
	if (*p == '.') {
		p++;
		while (*p >= '0' && *p <= '9')
			p++;
	}
	return *p == '\0' && p != v && v[0] != '.';
}

static bool
stat_u64(const struct statset *s, const char *name, uint64_t *out)
{
	const char *v = stat_get(s, name);
	char *end;

	if (v == NULL || *v < '0' || *v > '9')
		return false;
	errno = 0;
	*out = strtoull(v, &end, 10);
	return errno == 0 && *end == '\0';
}

/******** RENDERING ********/

static void
family(struct evbuffer *out, const char *name, const char *type, const char *help)
{
	evbuffer_add_printf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* A label value, escaped as the text format wants (\\, \", \n). */
static void
add_label_value(struct evbuffer *out, const char *v)
{
	for (; *v != '\0'; v++) {
		if (*v == '\\')
			evbuffer_add(out, "\\\\", 2);
		else if (*v == '"')
			evbuffer_add(out, "\\\"", 2);
		else if (*v == '\n')
			evbuffer_add(out, "\\n", 2);
		else
			evbuffer_add(out, v, 1);
	}
}

/* name{k1="v1",k2="v2"} value\n: labels come as NULL-terminated pairs. */
static void
sample_str(struct evbuffer *out, const char *name, const char *const *labels,
           const char *value)
{
	const char *sep = "{";

	evbuffer_add_printf(out, "%s", name);
	for (; labels != NULL && labels[0] != NULL; labels += 2) {
		evbuffer_add_printf(out, "%s%s=\"", sep, labels[0]);
		add_label_value(out, labels[1]);
		evbuffer_add(out, "\"", 1);
		sep = ",";
	}
	evbuffer_add_printf(out, "%s %s\n", sep[0] == ',' ? "}" : "", value);
}

static void
sample_u64(struct evbuffer *out, const char *name, const char *const *labels, uint64_t v)
{
	char buf[24];

	snprintf(buf, sizeof(buf), "%" PRIu64, v);
	sample_str(out, name, labels, buf);
}

enum conv {
	AS_IS,     /* a number, written as stats wrote it */
	MS,        /* milliseconds, written as seconds */
	IS,        /* 1 when the value is `word`, else 0 */
	IS_NOT,    /* 0 when the value is `word`, else 1 */
};

/* One stat, one family, one sample (with constant labels, or none). */
struct simple_metric {
	const char *stat;
	const char *name;
	const char *type;
	const char *help;
	enum conv conv;
	const char *word;       /* for IS, IS_NOT */
	const char *labels[3];  /* {k, v, NULL} or {NULL} */
};

#define GAUGE "gauge"
#define COUNTER "counter"

static void
render_simple(struct evbuffer *out, const struct statset *s,
              const struct simple_metric *tab, size_t n)
{
	const char *v;
	char buf[48];
	uint64_t u;
	size_t i;

	for (i = 0; i < n; i++) {
		const struct simple_metric *m = &tab[i];

		v = stat_get(s, m->stat);
		if (v == NULL)
			continue;
		switch (m->conv) {
		case AS_IS:
			if (!is_number(v))
				continue;
			break;
		case MS:
			if (!stat_u64(s, m->stat, &u))
				continue;
			snprintf(buf, sizeof(buf), "%" PRIu64 ".%03u", u / 1000, (unsigned)(u % 1000));
			v = buf;
			break;
		case IS:
			v = strcmp(v, m->word) == 0 ? "1" : "0";
			break;
		case IS_NOT:
			v = strcmp(v, m->word) != 0 ? "1" : "0";
			break;
		}
		family(out, m->name, m->type, m->help);
		sample_str(out, m->name, m->labels, v);
	}
}

#define N(tab) (sizeof(tab) / sizeof((tab)[0]))

/* `stats`, `stats settings`, `stats items`, `stats slabs`: the names,
 * types, labels and help texts of memcached_exporter where it has the
 * stat.  One deviation: the exporter types memcached_uptime_seconds as a
 * counter, which `promtool check metrics` rejects for a name without
 * _total; it is a gauge here (PromQL does not care). */
static const struct simple_metric memcached_metrics[] = {
	{"uptime", "memcached_uptime_seconds", GAUGE,
	 "Number of seconds since the server started.", AS_IS, NULL, {NULL}},
	{"time", "memcached_time_seconds", GAUGE,
	 "current UNIX time according to the server.", AS_IS, NULL, {NULL}},
	{"rusage_user", "memcached_process_user_cpu_seconds_total", COUNTER,
	 "Accumulated user time for this process.", AS_IS, NULL, {NULL}},
	{"rusage_system", "memcached_process_system_cpu_seconds_total", COUNTER,
	 "Accumulated system time for this process.", AS_IS, NULL, {NULL}},
	{"bytes_read", "memcached_read_bytes_total", COUNTER,
	 "Total number of bytes read by this server from network.", AS_IS, NULL, {NULL}},
	{"bytes_written", "memcached_written_bytes_total", COUNTER,
	 "Total number of bytes sent by this server to network.", AS_IS, NULL, {NULL}},
	{"curr_connections", "memcached_current_connections", GAUGE,
	 "Current number of open connections.", AS_IS, NULL, {NULL}},
	{"maxconns", "memcached_max_connections", GAUGE,
	 "Maximum number of clients allowed.", AS_IS, NULL, {NULL}},
	{"total_connections", "memcached_connections_total", COUNTER,
	 "Total number of connections opened since the server started running.", AS_IS, NULL, {NULL}},
	{"rejected_connections", "memcached_connections_rejected_total", COUNTER,
	 "Total number of connections rejected due to hitting the memcached's -c limit in maxconns_fast mode.",
	 AS_IS, NULL, {NULL}},
	{"bytes", "memcached_current_bytes", GAUGE,
	 "Current number of bytes used to store items.", AS_IS, NULL, {NULL}},
	{"limit_maxbytes", "memcached_limit_bytes", GAUGE,
	 "Number of bytes this server is allowed to use for storage.", AS_IS, NULL, {NULL}},
	{"curr_items", "memcached_current_items", GAUGE,
	 "Current number of items stored by this instance.", AS_IS, NULL, {NULL}},
	{"total_items", "memcached_items_total", COUNTER,
	 "Total number of items stored during the life of this instance.", AS_IS, NULL, {NULL}},
	{"evictions", "memcached_items_evicted_total", COUNTER,
	 "Total number of valid items removed from cache to free memory for new items.", AS_IS, NULL, {NULL}},
	{"reclaimed", "memcached_items_reclaimed_total", COUNTER,
	 "Total number of times an entry was stored using memory from an expired entry.", AS_IS, NULL, {NULL}},
	{"store_too_large", "memcached_item_too_large_total", COUNTER,
	 "The number of times an item exceeded the max-item-size when being stored.", AS_IS, NULL, {NULL}},
	{"store_no_memory", "memcached_item_no_memory_total", COUNTER,
	 "The number of times an item could not be stored due to no more memory.", AS_IS, NULL, {NULL}},
	{"total_malloced", "memcached_malloced_bytes", GAUGE,
	 "Number of bytes of memory allocated to slab pages.", AS_IS, NULL, {NULL}},
	{"lru_crawler", "memcached_lru_crawler_enabled", GAUGE,
	 "Whether the LRU crawler is enabled.", IS, "yes", {NULL}},
	{"items:1:number", "memcached_slab_current_items", GAUGE,
	 "Number of items currently stored in this slab class.", AS_IS, NULL, {"slab", "1", NULL}},
	{"items:1:age", "memcached_slab_items_age_seconds", GAUGE,
	 "Number of seconds the oldest item has been in the slab class.", AS_IS, NULL, {"slab", "1", NULL}},
	{"items:1:evicted", "memcached_slab_items_evicted_total", COUNTER,
	 "Total number of times an item had to be evicted from the LRU before it expired.",
	 AS_IS, NULL, {"slab", "1", NULL}},
	{"items:1:reclaimed", "memcached_slab_items_reclaimed_total", COUNTER,
	 "Total number of items reclaimed.", AS_IS, NULL, {"slab", "1", NULL}},
	/* memcached has these stats, the exporter does not export them. */
	{"threads", "cairn_threads", GAUGE,
	 "Worker threads serving clients (-t).", AS_IS, NULL, {NULL}},
	{"hash_power_level", "cairn_hash_power_level", GAUGE,
	 "The hash table has 2^this buckets.", AS_IS, NULL, {NULL}},
	{"hash_bytes", "cairn_hash_bytes", GAUGE,
	 "Bytes of the hash table's buckets.", AS_IS, NULL, {NULL}},
};

/* `stats persistence` (not with --ephemeral). */
static const struct simple_metric persistence_metrics[] = {
	{"wal_lsn", "cairn_wal_lsn", GAUGE,
	 "Last LSN appended to the write-ahead log.", AS_IS, NULL, {NULL}},
	{"wal_synced_lsn", "cairn_wal_synced_lsn", GAUGE,
	 "Last LSN of the write-ahead log on disk.", AS_IS, NULL, {NULL}},
	{"checkpoint_lsn", "cairn_checkpoint_lsn", GAUGE,
	 "Last LSN folded into the checkpoint.", AS_IS, NULL, {NULL}},
	{"wal_bytes", "cairn_wal_bytes", GAUGE,
	 "Bytes of write-ahead log segments on disk.", AS_IS, NULL, {NULL}},
	{"checkpoint_bytes", "cairn_checkpoint_bytes", GAUGE,
	 "Bytes of the checkpoint's data file.", AS_IS, NULL, {NULL}},
	{"last_recovery_ms", "cairn_last_recovery_seconds", GAUGE,
	 "How long the last recovery took, until the node could serve.", MS, NULL, {NULL}},
	{"recovered_items", "cairn_recovered_items", GAUGE,
	 "Items recovered at startup: the log tail's, then the warm-up's.", AS_IS, NULL, {NULL}},
	{"warmup", "cairn_warmup_loading", GAUGE,
	 "1 while the checkpoint is still loading into memory (warm-up), else 0.", IS, "loading", {NULL}},
	{"warmup_items", "cairn_warmup_items", GAUGE,
	 "Checkpoint items the warm-up brought into memory.", AS_IS, NULL, {NULL}},
	{"warmup_ms", "cairn_warmup_seconds", GAUGE,
	 "How long the warm-up took, or has taken so far.", MS, NULL, {NULL}},
	{"wal_dropped_bytes", "cairn_wal_dropped_bytes", GAUGE,
	 "Damaged write-ahead log bytes cut off at startup.", AS_IS, NULL, {NULL}},
	{"wal_appends_waiting", "cairn_wal_appends_waiting", GAUGE,
	 "Writes waiting now for log buffer space or for the checkpoint to fold.", AS_IS, NULL, {NULL}},
	{"wal_tail_records", "cairn_wal_tail_records", GAUGE,
	 "Records of the log not yet folded into the checkpoint.", AS_IS, NULL, {NULL}},
	{"wal_tail_bytes", "cairn_wal_tail_bytes", GAUGE,
	 "Bytes of the log not yet folded into the checkpoint.", AS_IS, NULL, {NULL}},
	{"wal_tail_max_records", "cairn_wal_tail_max_records", GAUGE,
	 "Bound on the unfolded log's records; writes wait beyond it.", AS_IS, NULL, {NULL}},
	{"wal_tail_max_bytes", "cairn_wal_tail_max_bytes", GAUGE,
	 "Bound on the unfolded log's bytes; writes wait beyond it.", AS_IS, NULL, {NULL}},
	{"wal_tail_waits", "cairn_wal_tail_waits_total", COUNTER,
	 "Times a write waited for the checkpoint to fold the log tail.", AS_IS, NULL, {NULL}},
	{"wal_error", "cairn_wal_error", GAUGE,
	 "1 while the write-ahead log cannot write (writes are refused), else 0.", IS_NOT, "none", {NULL}},
	{"checkpoint_error", "cairn_checkpoint_error", GAUGE,
	 "1 when the last checkpoint failed, else 0.", IS_NOT, "none", {NULL}},
};

/* `stats replication`: the plain numbers.  The rest (role, link, replicas,
 * slots) is rendered by render_replication(). */
static const struct simple_metric replication_metrics[] = {
	{"epoch", "cairn_replication_epoch", GAUGE,
	 "Highest primary epoch this node has seen.", AS_IS, NULL, {NULL}},
	{"lsn", "cairn_replication_lsn", GAUGE,
	 "Last LSN of this node's log.", AS_IS, NULL, {NULL}},
	{"fork_lsn", "cairn_replication_fork_lsn", GAUGE,
	 "Last LSN of the history this node forked from when promoted.", AS_IS, NULL, {NULL}},
	{"link", "cairn_replication_link_up", GAUGE,
	 "On a replica: 1 while the link to the primary streams, else 0.", IS, "up", {NULL}},
	{"lag_lsn", "cairn_replication_lag_lsn", GAUGE,
	 "On a replica: LSNs the primary has that this node does not.", AS_IS, NULL, {NULL}},
	{"connected_replicas", "cairn_replication_connected_replicas", GAUGE,
	 "On a primary: replicas connected now.", AS_IS, NULL, {NULL}},
	{"sync_replicas", "cairn_replication_sync_replicas", GAUGE,
	 "On a primary: replicas a write waits for (--sync-replicas).", AS_IS, NULL, {NULL}},
	{"full_syncs", "cairn_replication_full_syncs_total", COUNTER,
	 "Full synchronisations (a snapshot, then the log) served or received.", AS_IS, NULL, {NULL}},
	{"partial_syncs", "cairn_replication_partial_syncs_total", COUNTER,
	 "Partial synchronisations (the log from a replica's position) served or received.",
	 AS_IS, NULL, {NULL}},
	{"bytes_sent", "cairn_replication_sent_bytes_total", COUNTER,
	 "Bytes sent on replication links.", AS_IS, NULL, {NULL}},
	{"bytes_received", "cairn_replication_received_bytes_total", COUNTER,
	 "Bytes received on replication links.", AS_IS, NULL, {NULL}},
	{"discarded_changes", "cairn_replication_discarded_changes_total", COUNTER,
	 "Changes discarded because they diverged from a new primary's history.", AS_IS, NULL, {NULL}},
};

static void
render_version(struct evbuffer *out, const struct statset *s)
{
	const char *v = stat_get(s, "version");
	const char *labels[] = {"version", v, NULL};

	if (v == NULL)
		return;
	family(out, "memcached_version", GAUGE, "The version of this memcached server.");
	sample_str(out, "memcached_version", labels, "1");
}

/* memcached_commands_total{command, status}: the exporter's mapping. */
static void
render_commands(struct evbuffer *out, const struct statset *s)
{
	static const char *const ops[] = {"get", "delete", "incr", "decr", "cas", "touch"};
	const char *labels[] = {"command", NULL, "status", NULL, NULL};
	const char *name = "memcached_commands_total";
	uint64_t v, set, cas = 0, c;
	char stat[32];
	size_t i;

	family(out, name, COUNTER,
	       "Total number of all requests broken down by command (get, set, etc.) and status.");
	for (i = 0; i < N(ops); i++) {
		labels[1] = ops[i];
		snprintf(stat, sizeof(stat), "%s_hits", ops[i]);
		labels[3] = "hit";
		if (stat_u64(s, stat, &v))
			sample_u64(out, name, labels, v);
		snprintf(stat, sizeof(stat), "%s_misses", ops[i]);
		labels[3] = "miss";
		if (stat_u64(s, stat, &v))
			sample_u64(out, name, labels, v);
	}
	labels[1] = "cas";
	labels[3] = "badval";
	if (stat_u64(s, "cas_badval", &v))
		sample_u64(out, name, labels, v);
	labels[1] = "flush";
	labels[3] = "hit";
	if (stat_u64(s, "cmd_flush", &v))
		sample_u64(out, name, labels, v);
	/* cmd_set counts cas commands too (as memcached's does). */
	if (stat_u64(s, "cmd_set", &set)) {
		if (stat_u64(s, "cas_misses", &c))
			cas += c;
		if (stat_u64(s, "cas_hits", &c))
			cas += c;
		if (stat_u64(s, "cas_badval", &c))
			cas += c;
		labels[1] = "set";
		/* A `stats reset` between the reads could make it negative. */
		sample_u64(out, name, labels, set > cas ? set - cas : 0);
	}
}

/* "id=X,addr=Y,acked_lsn=N,lag=N,state=S" (replication/primary.c).  The
 * numbers are read from the last ",acked_lsn=", so an id or address with
 * commas in it cannot shift them. */
static bool
parse_replica(char *v, const char **id, uint64_t *acked, uint64_t *lag, char *state, size_t statelen)
{
	char *p = strstr(v, ",addr="), *q = NULL, *r;
	char fmt[64];

	if (strncmp(v, "id=", 3) != 0 || p == NULL)
		return false;
	for (r = strstr(p, ",acked_lsn="); r != NULL; r = strstr(r + 1, ",acked_lsn="))
		q = r;
	if (q == NULL)
		return false;
	snprintf(fmt, sizeof(fmt), ",acked_lsn=%%" SCNu64 ",lag=%%" SCNu64 ",state=%%%zus", statelen - 1);
	if (sscanf(q, fmt, acked, lag, state) != 3)
		return false;
	*p = '\0';
	*id = v + 3;
	return true;
}

/* "name=X,lsn=N" (replication/repl.c). */
static bool
parse_slot(char *v, const char **name, uint64_t *lsn)
{
	char *p = NULL, *r, *end;

	if (strncmp(v, "name=", 5) != 0)
		return false;
	for (r = strstr(v, ",lsn="); r != NULL; r = strstr(r + 1, ",lsn="))
		p = r;
	if (p == NULL)
		return false;
	errno = 0;
	*lsn = strtoull(p + 5, &end, 10);
	if (errno != 0 || *end != '\0' || end == p + 5)
		return false;
	*p = '\0';
	*name = v + 5;
	return true;
}

/* Stats named prefix<digits> (replica0, slot3). */
static bool
numbered(const char *name, const char *prefix)
{
	size_t n = strlen(prefix);

	if (strncmp(name, prefix, n) != 0 || name[n] == '\0')
		return false;
	for (name += n; *name != '\0'; name++)
		if (*name < '0' || *name > '9')
			return false;
	return true;
}

/* Whether an entry before s->v[before] lists replica `id` too (a replica
 * that reconnects while its old link is still being closed): a second
 * sample of one series would make Prometheus reject the whole scrape, so
 * the first listing wins. */
static bool
replica_listed_before(const struct statset *s, size_t before, const char *id)
{
	const char *other;
	uint64_t acked, lag;
	char state[32];
	bool same = false;
	size_t j;

	for (j = 0; j < before && !same; j++) {
		char *copy;

		if (!numbered(s->v[j].name, "replica") || (copy = strdup(s->v[j].value)) == NULL)
			continue;
		same = parse_replica(copy, &other, &acked, &lag, state, sizeof(state)) &&
		       strcmp(other, id) == 0;
		free(copy);
	}
	return same;
}

static void
render_replication(struct evbuffer *out, const struct statset *s)
{
	static const char *const roles[] = {"primary", "replica"};
	const char *role = stat_get(s, "role");
	const char *node_id = stat_get(s, "node_id"), *addr = stat_get(s, "repl_addr");
	const char *hist = stat_get(s, "history_id"), *prev = stat_get(s, "prev_history_id");
	const char *primary = stat_get(s, "primary");
	const char *info[] = {"node_id", node_id ? node_id : "", "repl_addr", addr ? addr : "",
	                      "history_id", hist ? hist : "", "prev_history_id", prev ? prev : "",
	                      "primary", primary ? primary : "", NULL};
	const char *labels[] = {NULL, NULL, NULL};
	const char *id, *slot;
	uint64_t acked, lag, lsn;
	char state[32];
	bool first;
	size_t i, k;

	if (role == NULL)
		return;
	family(out, "cairn_replication_role", GAUGE,
	       "1 for the role this node has now (primary or replica), 0 for the other.");
	labels[0] = "role";
	for (i = 0; i < N(roles); i++) {
		labels[1] = roles[i];
		sample_str(out, "cairn_replication_role", labels, strcmp(role, roles[i]) == 0 ? "1" : "0");
	}
	family(out, "cairn_replication_info", GAUGE,
	       "Always 1: this node's replication identity in the labels.");
	sample_str(out, "cairn_replication_info", info, "1");
	render_simple(out, s, replication_metrics, N(replication_metrics));

	/* One sample per replica of a primary, labelled with its node id. */
	labels[0] = "replica";
	for (k = 0; k < 3; k++) {
		static const char *const names[] = {"cairn_replication_replica_acked_lsn",
		                                    "cairn_replication_replica_lag_lsn",
		                                    "cairn_replication_replica_streaming"};
		static const char *const helps[] = {
			"On a primary: the last LSN this replica acknowledged.",
			"On a primary: LSNs this node has that this replica has not acknowledged.",
			"On a primary: 1 when this replica streams the log, 0 while it handshakes or loads a snapshot.",
		};

		first = true;
		for (i = 0; i < s->n; i++) {
			char *copy;

			if (!numbered(s->v[i].name, "replica"))
				continue;
			copy = strdup(s->v[i].value);
			if (copy == NULL)
				continue;
			if (parse_replica(copy, &id, &acked, &lag, state, sizeof(state)) &&
			    !replica_listed_before(s, i, id)) {
				if (first)
					family(out, names[k], GAUGE, helps[k]);
				first = false;
				labels[1] = id;
				if (k == 0)
					sample_u64(out, names[k], labels, acked);
				else if (k == 1)
					sample_u64(out, names[k], labels, lag);
				else
					sample_str(out, names[k], labels, strcmp(state, "streaming") == 0 ? "1" : "0");
			}
			free(copy);
		}
	}

	/* The log keeps what each slot (a replica's position) still needs. */
	labels[0] = "slot";
	first = true;
	for (i = 0; i < s->n; i++) {
		char *copy;

		if (!numbered(s->v[i].name, "slot"))
			continue;
		copy = strdup(s->v[i].value);
		if (copy == NULL)
			continue;
		if (parse_slot(copy, &slot, &lsn)) {
			if (first)
				family(out, "cairn_replication_slot_lsn", GAUGE,
				       "First LSN the log keeps for this retention slot (a replica's position).");
			first = false;
			labels[1] = slot;
			sample_u64(out, "cairn_replication_slot_lsn", labels, lsn);
		}
		free(copy);
	}
}

static void
render_persistence(struct evbuffer *out, const struct statset *s, const struct proto_env *env)
{
	const char *fsync = stat_get(s, "fsync");
	const char *info[] = {"data_dir", env->settings->data_dir, "fsync", fsync ? fsync : "", NULL};

	family(out, "cairn_persistence_info", GAUGE,
	       "Always 1: the data directory and fsync policy in the labels.");
	sample_str(out, "cairn_persistence_info", info, "1");
	render_simple(out, s, persistence_metrics, N(persistence_metrics));
}

/* The whole scrape into `out`.  False without memory. */
static bool
render_metrics(struct evbuffer *out, const struct proto_env *env)
{
	struct statset general = {0}, persist = {0}, repl = {0};
	bool ok;

	family(out, "memcached_up", GAUGE, "Could the memcached server be reached.");
	if (env == NULL) {
		/* Recovering: the scrape works, the cache does not serve yet. */
		sample_str(out, "memcached_up", NULL, "0");
		return true;
	}
	sample_str(out, "memcached_up", NULL, "1");
	stats_report_general(env, collect, &general);
	stats_report_settings(env, collect, &general);
	stats_report_items(env, collect, &general);
	stats_report_slabs(env, collect, &general);
	if (env->persist != NULL)
		stats_report_persistence(env, collect, &persist);
	if (env->repl != NULL)
		repl_write_stats(env->repl, collect, &repl);
	ok = !general.oom && !persist.oom && !repl.oom;
	if (ok) {
		render_version(out, &general);
		render_commands(out, &general);
		render_simple(out, &general, memcached_metrics, N(memcached_metrics));
		if (env->persist != NULL)
			render_persistence(out, &persist, env);
		if (env->repl != NULL)
			render_replication(out, &repl);
	}
	statset_free(&general);
	statset_free(&persist);
	statset_free(&repl);
	return ok;
}

/******** HEALTH ********/

/* Why this node should not get traffic, into buf; false when it serves. */
static bool
unhealthy(const struct proto_env *env, char *buf, size_t len)
{
	struct statset repl = {0};
	const char *role, *link;
	bool down = false;
	char ebuf[128];
	int err;

	if (env == NULL) {
		snprintf(buf, len, "recovering");
		return true;
	}
	if (env->persist != NULL && (err = persist_write_error(env->persist)) != 0) {
		/* GNU strerror_r: this thread must not share strerror's buffer. */
		snprintf(buf, len, "wal error: %s", strerror_r(err, ebuf, sizeof(ebuf)));
		return true;
	}
	if (env->repl == NULL || !repl_is_replica(env->repl))
		return false;
	/* The link's state is only published through the stats. */
	repl_write_stats(env->repl, collect, &repl);
	role = stat_get(&repl, "role");
	link = stat_get(&repl, "link");
	if (role != NULL && strcmp(role, "replica") == 0 && (link == NULL || strcmp(link, "up") != 0)) {
		snprintf(buf, len, "replica link %s", link != NULL ? link : "down");
		down = true;
	}
	statset_free(&repl);
	return down;
}

/******** HTTP ********/

static void
reply_text(struct evhttp_request *req, int code, const char *reason, const char *body)
{
	struct evbuffer *buf = evbuffer_new();

	evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type", CONTENT_TYPE_TEXT);
	if (buf == NULL) {
		evhttp_send_error(req, HTTP_INTERNAL, NULL);
		return;
	}
	evbuffer_add_printf(buf, "%s\n", body);
	evhttp_send_reply(req, code, reason, buf);
	evbuffer_free(buf);
}

static void
serve_metrics(struct evhttp_request *req, const struct proto_env *env)
{
	struct evbuffer *buf = evbuffer_new();

	if (buf == NULL || !render_metrics(buf, env)) {
		if (buf != NULL)
			evbuffer_free(buf);
		reply_text(req, HTTP_INTERNAL, "Internal Server Error", "out of memory");
		return;
	}
	evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type", CONTENT_TYPE_METRICS);
	evhttp_send_reply(req, HTTP_OK, "OK", buf);
	evbuffer_free(buf);
}

static void
serve_health(struct evhttp_request *req, const struct proto_env *env)
{
	char why[256];

	if (unhealthy(env, why, sizeof(why)))
		reply_text(req, HTTP_SERVUNAVAIL, "Service Unavailable", why);
	else
		reply_text(req, HTTP_OK, "OK", "serving");
}

static void
request_cb(struct evhttp_request *req, void *arg)
{
	struct metrics *m = arg;
	const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
	const char *path = uri != NULL ? evhttp_uri_get_path(uri) : NULL;
	enum evhttp_cmd_type cmd = evhttp_request_get_command(req);
	const struct proto_env *env = __atomic_load_n(&m->env, __ATOMIC_ACQUIRE);
	bool metrics, health;

	metrics = path != NULL && strcmp(path, "/metrics") == 0;
	health = path != NULL && strcmp(path, "/health") == 0;
	if (!metrics && !health) {
		reply_text(req, HTTP_NOTFOUND, "Not Found", "not found");
		return;
	}
	if (cmd != EVHTTP_REQ_GET && cmd != EVHTTP_REQ_HEAD) {
		evhttp_add_header(evhttp_request_get_output_headers(req), "Allow", "GET, HEAD");
		reply_text(req, HTTP_BADMETHOD, "Method Not Allowed", "method not allowed");
		return;
	}
	/* evhttp leaves the body out of a reply to HEAD by itself. */
	if (metrics)
		serve_metrics(req, env);
	else
		serve_health(req, env);
}

static void
stop_cb(evutil_socket_t fd, short what, void *arg)
{
	struct metrics *m = arg;

	(void)fd;
	(void)what;
	wakeup_consume(&m->stop);
	event_base_loopbreak(m->base);
}

static void *
metrics_main(void *arg)
{
	struct metrics *m = arg;

	event_base_dispatch(m->base);
	return NULL;
}

/******** LIFE CYCLE ********/

struct metrics *
metrics_open(const char *addr, int port)
{
	struct addrinfo hints = {0}, *res = NULL, *ai;
	struct metrics *m;
	char portstr[16];
	int fd = -1, rc, one = 1, err = 0;

	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE;
	snprintf(portstr, sizeof(portstr), "%d", port);
	rc = getaddrinfo(addr, portstr, &hints, &res);
	if (rc != 0) {
		log_msg(LOG_ALWAYS, "--metrics-port: cannot resolve %s: %s", addr, gai_strerror(rc));
		return NULL;
	}
	for (ai = res; ai != NULL; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
		            ai->ai_protocol);
		if (fd < 0) {
			err = errno;
			continue;
		}
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 &&
		    listen(fd, METRICS_BACKLOG) == 0)
			break;
		err = errno;
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	if (fd < 0) {
		log_msg(LOG_ALWAYS, "--metrics-port: cannot listen on %s:%d: %s", addr, port,
		        strerror(err));
		return NULL;
	}
	m = calloc(1, sizeof(*m));
	if (m == NULL) {
		log_msg(LOG_ALWAYS, "--metrics-port: out of memory");
		close(fd);
		return NULL;
	}
	m->fd = fd;
	m->stop.fd = -1;
	return m;
}

int
metrics_start(struct metrics *m)
{
	struct event_config *cfg;
	sigset_t all, old;
	int rc;

	/* Created here, not in metrics_open(), so that it does not cross the
	 * fork of -d.  poll(2), not epoll: there are a few connections at most,
	 * and libevent 2.1's evhttp takes a connection's socket out of the
	 * backend after closing it; with epoll that is an epoll_ctl() on a
	 * closed fd, which ThreadSanitizer takes for a race with the thread
	 * that gets the number next (the WAL recovery's opendir, say) and dies
	 * reporting.  With poll, taking a socket out makes no system call. */
	cfg = event_config_new();
	if (cfg == NULL || event_config_avoid_method(cfg, "epoll") != 0)
		goto fail;
	m->base = event_base_new_with_config(cfg);
	if (m->base == NULL || wakeup_open(&m->stop, "metrics") != 0)
		goto fail;
	m->stop_ev = event_new(m->base, m->stop.fd, EV_READ | EV_PERSIST, stop_cb, m);
	if (m->stop_ev == NULL || event_add(m->stop_ev, NULL) != 0)
		goto fail;
	m->http = evhttp_new(m->base);
	if (m->http == NULL)
		goto fail;
	/* Every method reaches request_cb, which answers 405 (evhttp itself
	 * would say 501 to the ones not allowed). */
	evhttp_set_allowed_methods(m->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_HEAD |
	                                    EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE | EVHTTP_REQ_OPTIONS |
	                                    EVHTTP_REQ_TRACE | EVHTTP_REQ_CONNECT | EVHTTP_REQ_PATCH);
	evhttp_set_timeout(m->http, METRICS_TIMEOUT_S);
	evhttp_set_max_headers_size(m->http, METRICS_MAX_HEADERS);
	evhttp_set_max_body_size(m->http, METRICS_MAX_BODY);
	evhttp_set_gencb(m->http, request_cb, m);
	/* evhttp owns the socket from here on, even if this fails (it then
	 * closed it, or lost it to an allocation failure at startup). */
	rc = evhttp_accept_socket(m->http, m->fd);
	m->fd = -1;
	if (rc != 0)
		goto fail;
	/* The thread takes no signals: SIGTERM and SIGINT are the main loop's. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	rc = pthread_create(&m->thread, NULL, metrics_main, m);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc != 0)
		goto fail;
	pthread_setname_np(m->thread, "cairn-metrics");
	m->running = true;
	event_config_free(cfg);
	return 0;
fail:
	if (cfg != NULL)
		event_config_free(cfg);
	log_msg(LOG_ALWAYS, "--metrics-port: cannot start the HTTP server");
	return -1;
}

void
metrics_serving(struct metrics *m, const struct proto_env *env)
{
	__atomic_store_n(&m->env, env, __ATOMIC_RELEASE);
}

void
metrics_stop(struct metrics *m)
{
	if (m == NULL)
		return;
	if (m->running) {
		wakeup_signal(&m->stop);
		pthread_join(m->thread, NULL);
	}
	/* The loop is stopped: freeing its objects here is safe. */
	if (m->http != NULL)
		evhttp_free(m->http);   /* closes the socket and every connection */
	if (m->fd >= 0)
		close(m->fd);
	if (m->stop_ev != NULL)
		event_free(m->stop_ev);
	wakeup_close(&m->stop);
	if (m->base != NULL)
		event_base_free(m->base);
	free(m);
}
