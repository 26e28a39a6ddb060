/* Command counters: registration, summing and reset. */
#include "node/stats.h"

#include <pthread.h>
#include <string.h>

#define STATS_MAX_BLOCKS 1024

struct conn_stats conn_stats;

static pthread_mutex_t blocks_lock = PTHREAD_MUTEX_INITIALIZER;
static struct thread_stats *blocks[STATS_MAX_BLOCKS];
static int nblocks;

void
stats_register(struct thread_stats *ts)
{
	pthread_mutex_lock(&blocks_lock);
	if (nblocks < STATS_MAX_BLOCKS)
		blocks[nblocks++] = ts;
	pthread_mutex_unlock(&blocks_lock);
}

void
stats_sum(struct thread_stats *out)
{
	int i;

	memset(out, 0, sizeof(*out));
	pthread_mutex_lock(&blocks_lock);
	for (i = 0; i < nblocks; i++) {
#define STATS_SUM(name) out->name += __atomic_load_n(&blocks[i]->name, __ATOMIC_RELAXED);
		THREAD_STATS_FIELDS(STATS_SUM)
#undef STATS_SUM
	}
	pthread_mutex_unlock(&blocks_lock);
}

void
stats_reset(void)
{
	int i;

	pthread_mutex_lock(&blocks_lock);
	for (i = 0; i < nblocks; i++) {
#define STATS_ZERO(name) __atomic_store_n(&blocks[i]->name, 0, __ATOMIC_RELAXED);
		THREAD_STATS_FIELDS(STATS_ZERO)
#undef STATS_ZERO
	}
	pthread_mutex_unlock(&blocks_lock);
	__atomic_store_n(&conn_stats.total_connections, 0, __ATOMIC_RELAXED);
	__atomic_store_n(&conn_stats.rejected_connections, 0, __ATOMIC_RELAXED);
}
