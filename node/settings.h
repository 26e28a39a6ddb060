/* Server settings: the command line, parsed and checked.
 *
 * One `struct settings` is filled by settings_parse() in main() before any
 * thread starts and is read-only afterwards, except `verbose`, which the
 * `verbosity` command changes at run time (atomically).  The flags follow
 * memcached's spelling and meaning wherever memcached has the flag.
 */
#ifndef CAIRN_NODE_SETTINGS_H
#define CAIRN_NODE_SETTINGS_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "storage/wal.h"

/* Which client protocols a connection may speak (-B): memcached's
 * "auto-negotiate" picks one per connection by its first byte. */
enum client_protocol {
	CLIENT_PROTOCOL_AUTO,
	CLIENT_PROTOCOL_ASCII,
	CLIENT_PROTOCOL_BINARY,
};

struct settings {
	int port;                 /* -p: client TCP port */
	char listen_addr[256];    /* -l: address to bind */
	size_t mem_limit;         /* -m: item memory in bytes */
	int conn_limit;           /* -c: simultaneous client connections */
	int threads;              /* -t: worker threads */
	size_t item_size_max;     /* -I: largest item, bytes */
	int verbose;              /* -v: 0, 1 or 2; atomic at run time */
	bool use_cas;             /* false with -C */
	bool flush_enabled;       /* false with -F */
	const char *user;         /* -u: user to switch to when root, or NULL */
	char *pid_file;           /* -P: where to write our pid, or NULL */
	bool daemonize;           /* -d */
	unsigned hashpower;       /* -o hashpower=N: initial table 2^N buckets */
	bool sweeper;             /* -o no_lru_crawler turns it off */
	char data_dir[PATH_MAX];  /* --data-dir, made absolute; default
	                           * ./cairn-data/PORT (settings_parse) */
	bool ephemeral;           /* --ephemeral: no persistence at all */
	enum wal_fsync fsync;     /* --fsync always|everysec|no */
	size_t wal_segment_size;  /* --wal-segment-size */
	size_t wal_backlog;       /* --wal-backlog: checkpointed WAL kept */
	int repl_port;            /* --repl-port (default port + 10000) */
	const char *replica_of;   /* --replica-of HOST:PORT, or NULL */
	char node_id[300];        /* --node-id (default listen:port) */
	int sync_replicas;        /* --sync-replicas N */
	int sync_timeout_ms;      /* --sync-timeout-ms */
	char *secret_file;        /* --cluster-secret-file */
	const char *config_file;  /* --config: flags read from this file */
	char *log_file;           /* --log-file (or `logfile` in --config) */
	int metrics_port;         /* --metrics-port: HTTP /metrics; 0 = off */
	enum client_protocol protocol; /* -B; with -Y or -S and no -B, as
	                           * memcached: -Y ascii, -S binary, both auto */
	char *auth_file;          /* -Y (or MEMCACHED_SASL_PWDB with -S): the
	                           * user:password file; NULL = no client auth */
	bool sasl;                /* -S: binary clients authenticate (SASL PLAIN) */
	char ignored_options[256];/* -o options accepted for memcached's sake
	                           * and ignored ("modern,lru_maintainer") */
	char *config_text;        /* the --config file's text, which string
	                           * fields may point into; settings_free() */
};

/* What main() should do after settings_parse(). */
enum settings_result {
	SETTINGS_RUN = 0,     /* start the server */
	SETTINGS_EXIT_OK,     /* --help or --version was printed: exit 0 */
	SETTINGS_EXIT_USAGE,  /* bad flag or value: `err` says which; exit 2 */
};

/* Fill *s with the defaults. */
void settings_init(struct settings *s);

/* Parse argv into *s (which settings_init() prepared).  A `--config FILE`
 * anywhere in argv is read first, line by line, so that every flag given on
 * the command line overrides the file.  Help and version text go to stdout.
 * On SETTINGS_EXIT_USAGE, `err` (errlen bytes) holds one line, without
 * newline, naming the flag (and the file and line, for --config) and what
 * is wrong with it.  -P, --log-file, --cluster-secret-file and --data-dir
 * are made absolute (-d changes directory to /); other string fields may
 * point into argv, which must outlive *s. */
enum settings_result settings_parse(struct settings *s, int argc, char **argv,
                                    char *err, size_t errlen);

/* One line on `f` naming the -o options accepted and ignored, if any. */
void settings_print_notices(const struct settings *s, FILE *f);

/* Free what settings_parse() allocated (the --config text, the paths). */
void settings_free(struct settings *s);

#endif
