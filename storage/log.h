/* Logging to stderr, filtered by the verbosity level (-v, -vv, `verbosity`). */
#ifndef CAIRN_NODE_LOG_H
#define CAIRN_NODE_LOG_H

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

/* Print one line (a newline is added) if `level` <= the current level. */
void log_msg(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
