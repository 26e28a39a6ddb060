/* Logging with a timestamp, filtered by verbosity, to stderr or a file. */
#include "storage/log.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static int current_level;
static int log_fd = -1;            /* set once at startup; kept by reopen */
static bool echo_stderr;
static char log_path[PATH_MAX];

static int
open_log(const char *path)
{
	return open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
}

int
log_open_file(const char *path)
{
	int fd;

	if (strlen(path) >= sizeof(log_path))
		return -ENAMETOOLONG;
	fd = open_log(path);
	if (fd < 0)
		return -errno;
	snprintf(log_path, sizeof(log_path), "%s", path);
	__atomic_store_n(&echo_stderr, true, __ATOMIC_RELAXED);
	__atomic_store_n(&log_fd, fd, __ATOMIC_RELEASE);
	return 0;
}

int
log_reopen(void)
{
	int fd = __atomic_load_n(&log_fd, __ATOMIC_ACQUIRE), fresh, rc = 0;

	if (fd < 0)
		return 0;
	fresh = open_log(log_path);
	if (fresh < 0)
		return -errno;
	/* dup2 swaps the file under the same number in one step. */
	if (dup2(fresh, fd) < 0)
		rc = -errno;
	close(fresh);
	return rc;
}

void
log_set_echo(bool echo)
{
	__atomic_store_n(&echo_stderr, echo, __ATOMIC_RELAXED);
}

int
log_file_fd(void)
{
	return __atomic_load_n(&log_fd, __ATOMIC_ACQUIRE);
}

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
	char out[1100];
	struct tm tm;
	time_t now;
	va_list ap;
	size_t n;
	int len, fd;

	if (level > log_get_level())
		return;
	now = time(NULL);
	localtime_r(&now, &tm);
	/* "YYYY-mm-dd HH:MM:SS cairn: " then the message, in one buffer: one
	 * write per line, so lines from different threads do not mix. */
	n = strftime(out, sizeof(out), "%Y-%m-%d %H:%M:%S cairn: ", &tm);
	va_start(ap, fmt);
	len = vsnprintf(out + n, sizeof(out) - n - 1, fmt, ap);
	va_end(ap);
	if (len < 0)
		return;
	n += (size_t)len < sizeof(out) - n - 1 ? (size_t)len : sizeof(out) - n - 2;
	out[n++] = '\n';
	/* A line the log file refuses goes to stderr; one stderr refuses too is
	 * lost, with nowhere left to say so. */
	fd = log_file_fd();
	if (fd >= 0 && write(fd, out, n) < 0)
		fd = -1;
	if (fd < 0 || __atomic_load_n(&echo_stderr, __ATOMIC_RELAXED))
		(void)!write(STDERR_FILENO, out, n);
}
