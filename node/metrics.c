/* The metrics endpoint: placeholder until the evhttp server lands. */
#include "node/metrics.h"

#include <stdlib.h>

struct metrics {
	const struct proto_env *env;
};

struct metrics *
metrics_open(const char *addr, int port)
{
	(void)addr;
	(void)port;
	return calloc(1, sizeof(struct metrics));
}

int
metrics_start(struct metrics *m)
{
	(void)m;
	return 0;
}

void
metrics_serving(struct metrics *m, const struct proto_env *env)
{
	m->env = env;
}

void
metrics_stop(struct metrics *m)
{
	free(m);
}
