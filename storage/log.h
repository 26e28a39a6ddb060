/* Logging, filtered by the verbosity level (-v, -vv, `verbosity`): to
 * stderr, or to the --log-file, which SIGHUP reopens (logrotate). */
#ifndef CAIRN_NODE_LOG_H
#define CAIRN_NODE_LOG_H

#include <stdbool.h>

enum log_level {
	LOG_ALWAYS = 0,   /* startup, shutdown, errors: printed at any level */
	LOG_INFO = 1,     /* -v: connections, notable events */
	LOG_DEBUG = 2,    /* -vv: every command */
};

/* Set or read the current level (any thread). */
void log_set_level(int level);
int log_get_level(void);

/* Milliseconds of CLOCK_MONOTONIC since *start (durations in log lines and
 * stats). */
struct timespec;
unsigned long long log_ms_since(const struct timespec *start);

/* Send lines to `path` (opened for append, created 0640) instead of
 * stderr; until log_set_echo(false), each line also goes to stderr, so that
 * startup errors reach the terminal that started the node.  Returns 0 or
 * -errno.  Called once, before threads start. */
int log_open_file(const char *path);

/* Reopen the log file by its name (after logrotate moved it).  The log's
 * descriptor keeps its number, so a line being written in another thread
 * goes to one file or the other, whole.  Returns 0 (also without a log
 * file) or -errno, in which case the old file is kept. */
int log_reopen(void);

/* Whether lines also go to stderr while a log file is in use. */
void log_set_echo(bool echo);

/* The log file's descriptor, or -1 while logging to stderr. */
int log_file_fd(void);

/* Print one line (a newline is added) if `level` <= the current level. */
void log_msg(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
