/* Logging to stderr with a timestamp, filtered by verbosity. */
#include "storage/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <time.h>

static int current_level;

void
log_set_level(int level)
{
	__atomic_store_n(&current_level, level, __ATOMIC_RELAXED);
}

int
log_get_level(void)
{
	return __atomic_load_n(&current_level, __ATOMIC_RELAXED);
}

unsigned long long
log_ms_since(const struct timespec *start)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (unsigned long long)(((long long)now.tv_sec - start->tv_sec) * 1000 +
	                            ((long long)now.tv_nsec - start->tv_nsec) / 1000000);
}

void
log_msg(int level, const char *fmt, ...)
{
	char line[1024], stamp[32];
	struct tm tm;
	time_t now;
	va_list ap;

	if (level > log_get_level())
		return;
	now = time(NULL);
	localtime_r(&now, &tm);
	strftime(stamp, sizeof(stamp), "%Y-%m-%d %H:%M:%S", &tm);
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	/* One fprintf per line, so lines from different threads do not mix. */
	fprintf(stderr, "%s cairn: %s\n", stamp, line);
}
