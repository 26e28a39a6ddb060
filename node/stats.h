/* Command counters: per worker thread, summed when a client asks `stats`.
 *
 * Each worker owns one `struct thread_stats` and increments its fields with
 * relaxed atomics (no lock, no shared cache line on the hot path); `stats`
 * reads every registered block and adds them up.  Connection counters are
 * process-wide atomics kept here too.  To add a counter, add one line to
 * THREAD_STATS_FIELDS: it is then counted, summed, reset and printed under
 * its own name, as memcached prints it.
 */
#ifndef CAIRN_NODE_STATS_H
#define CAIRN_NODE_STATS_H

#include <stdint.h>

#define THREAD_STATS_FIELDS(X) \
	X(cmd_get)         \
	X(cmd_set)         \
	X(cmd_flush)       \
	X(cmd_touch)       \
	X(cmd_meta)        \
	X(get_hits)        \
	X(get_misses)      \
	X(delete_misses)   \
	X(delete_hits)     \
	X(incr_misses)     \
	X(incr_hits)       \
	X(decr_misses)     \
	X(decr_hits)       \
	X(cas_misses)      \
	X(cas_hits)        \
	X(cas_badval)      \
	X(touch_hits)      \
	X(touch_misses)    \
	X(store_too_large) \
	X(store_no_memory) \
	X(auth_cmds)       \
	X(auth_errors)     \
	X(bytes_read)      \
	X(bytes_written)

struct thread_stats {
#define STATS_DECLARE(name) uint64_t name;
	THREAD_STATS_FIELDS(STATS_DECLARE)
#undef STATS_DECLARE
};

#define STATS_ADD(ts, field, n) \
	__atomic_add_fetch(&(ts)->field, (n), __ATOMIC_RELAXED)
#define STATS_INCR(ts, field) STATS_ADD(ts, field, 1)

/* Process-wide connection counters (atomics). */
struct conn_stats {
	uint64_t curr_connections;
	uint64_t total_connections;
	uint64_t rejected_connections;
};

extern struct conn_stats conn_stats;

/* Register a worker's block so that stats_sum() sees it.  Called once per
 * worker at startup, before clients connect; blocks live until exit. */
void stats_register(struct thread_stats *ts);

/* Sum every registered block into *out. */
void stats_sum(struct thread_stats *out);

/* Zero every registered block and the resettable connection counters. */
void stats_reset(void);

#endif
