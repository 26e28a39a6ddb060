/* Server settings: defaults, command-line parsing and validation. */
#include "node/settings.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define ITEM_SIZE_MIN 1024
#define ITEM_SIZE_MAX_LIMIT (1024 * 1024 * 1024)
#define THREADS_MAX 256
#define WAL_SEGMENT_MIN 4096

/* Long options without a short form. */
enum {
	OPT_DATA_DIR = 256,
	OPT_EPHEMERAL,
	OPT_FSYNC,
	OPT_WAL_SEGMENT_SIZE,
	OPT_WAL_BACKLOG,
	OPT_REPL_PORT,
	OPT_REPLICA_OF,
	OPT_NODE_ID,
	OPT_SYNC_REPLICAS,
	OPT_SYNC_TIMEOUT_MS,
	OPT_SECRET_FILE,
	OPT_CONFIG,
	OPT_LOG_FILE,
	OPT_METRICS_PORT,
};

void
settings_init(struct settings *s)
{
	memset(s, 0, sizeof(*s));
	s->port = 11211;
	snprintf(s->listen_addr, sizeof(s->listen_addr), "127.0.0.1");
	s->mem_limit = (size_t)64 * 1024 * 1024;
	s->conn_limit = 1024;
	s->threads = 4;
	s->item_size_max = 1024 * 1024;
	s->use_cas = true;
	s->flush_enabled = true;
	s->hashpower = 16;
	s->sweeper = true;
	s->fsync = WAL_FSYNC_EVERYSEC;
	s->wal_segment_size = (size_t)64 << 20;
	s->wal_backlog = (size_t)256 << 20;
	s->sync_timeout_ms = 1000;
}

static void
usage(void)
{
	printf("cairn " CAIRN_VERSION ": a memcached-compatible cache node\n"
	       "Usage: cairn [options]\n"
	       "  -p, --port N              client TCP port (default 11211)\n"
	       "  -l, --listen ADDR         address to bind (default 127.0.0.1)\n"
	       "  -m, --memory-limit MB     item memory in megabytes (default 64)\n"
	       "  -c, --conn-limit N        max simultaneous connections (default 1024)\n"
	       "  -t, --threads N           worker threads (default 4)\n"
	       "  -I, --max-item-size SIZE  largest item, with k/m suffix (default 1m)\n"
	       "  -v, -vv                   more logging to stderr\n"
	       "  -U, --udp-port 0          accepted for compatibility; UDP is never served\n"
	       "  -C, --disable-cas         disable CAS\n"
	       "  -F, --disable-flush-all   refuse flush_all\n"
	       "  -u, --user USER           user to run as when started as root\n"
	       "  -P, --pidfile FILE        write the process id to FILE\n"
	       "  -d, --daemon              run in the background\n"
	       "  -o, --extended OPT[=V],.. hashpower=N, lru_crawler, no_lru_crawler; memcached's\n"
	       "                            slab and LRU tuning options are accepted and ignored\n"
	       "      --config FILE         read flags from FILE (/etc/memcached.conf format);\n"
	       "                            the command line overrides it\n"
	       "      --log-file FILE       log to FILE instead of stderr (reopened on SIGHUP)\n"
	       "      --metrics-port N      HTTP /metrics (Prometheus) and /health on port N\n"
	       "  -B, --protocol P          auto | ascii | binary: which protocols clients speak\n"
	       "                            (default auto: each connection's first byte decides)\n"
	       "  -Y, --auth-file FILE      clients authenticate as a user:password line of FILE\n"
	       "                            (ASCII: memcached's set convention; binary: SASL PLAIN)\n"
	       "  -S, --enable-sasl         binary clients authenticate with SASL PLAIN (against\n"
	       "                            -Y FILE, or $MEMCACHED_SASL_PWDB)\n"
	       "      --data-dir DIR        WAL and checkpoint directory (default ./cairn-data/PORT)\n"
	       "      --ephemeral           no persistence at all (like memcached)\n"
	       "      --fsync POLICY        always | everysec | no (default everysec)\n"
	       "      --wal-segment-size S  WAL segment size, k/m suffix (default 64m)\n"
	       "      --wal-backlog S       checkpointed WAL kept for replicas (default 256m)\n"
	       "      --repl-port N         replication port (default port + 10000)\n"
	       "      --replica-of HOST:PORT  follow the primary with this replication port\n"
	       "      --node-id NAME        name in stats and to peers (default listen:port)\n"
	       "      --sync-replicas N     answer a write once N replicas hold it (default 0)\n"
	       "      --sync-timeout-ms MS  then SERVER_ERROR replication timeout (default 1000)\n"
	       "      --cluster-secret-file FILE  peers must prove they know this secret\n"
	       "  -h, --help                this text\n"
	       "  -V, --version             print the version\n");
}

/* Where the flags being parsed come from, and where an error goes. */
struct parse_ctx {
	char *err;
	size_t errlen;
	const char *where;   /* "FILE:LINE: " for --config lines, else "" */
};

static enum settings_result
fail(const struct parse_ctx *ctx, const char *fmt, ...)
{
	va_list ap;
	int n = snprintf(ctx->err, ctx->errlen, "cairn: %s", ctx->where);

	va_start(ap, fmt);
	if (n >= 0 && (size_t)n < ctx->errlen)
		vsnprintf(ctx->err + n, ctx->errlen - (size_t)n, fmt, ap);
	va_end(ap);
	return SETTINGS_EXIT_USAGE;
}

/* A whole decimal integer in [min, max]. */
static bool
parse_int(const char *arg, long long min, long long max, long long *out)
{
	char *end;
	long long v;

	errno = 0;
	v = strtoll(arg, &end, 10);
	if (errno != 0 || end == arg || *end != '\0' || v < min || v > max)
		return false;
	*out = v;
	return true;
}

/* A byte count with an optional k/m/g suffix (binary multiples). */
static bool
parse_size(const char *arg, uint64_t *out)
{
	char *end;
	unsigned long long v;
	uint64_t mult = 1;

	if (arg[0] < '0' || arg[0] > '9')
		return false;
	errno = 0;
	v = strtoull(arg, &end, 10);
	if (errno != 0 || end == arg)
		return false;
	switch (*end) {
	case '\0': break;
	case 'k': case 'K': mult = 1024; end++; break;
	case 'm': case 'M': mult = 1024 * 1024; end++; break;
	case 'g': case 'G': mult = 1024 * 1024 * 1024; end++; break;
	default: return false;
	}
	if (*end != '\0' || v > UINT64_MAX / mult)
		return false;
	*out = v * mult;
	return true;
}

/* memcached's -o options for its slab allocator, LRU threads and logging,
 * which cairn (one allocator, no LRU threads) has no use for.  They are in
 * every memcached.conf written for 1.5/1.6, so they are accepted, each
 * with or without its value as memcached takes it, and named in one
 * notice line. */
enum option_value { VALUE_NONE, VALUE_REQUIRED, VALUE_OPTIONAL };

static const struct {
	const char *name;
	enum option_value value;
} unused_options[] = {
	{"modern", VALUE_NONE},
	{"no_modern", VALUE_NONE},
	{"slab_reassign", VALUE_NONE},
	{"no_slab_reassign", VALUE_NONE},
	{"slab_automove", VALUE_OPTIONAL},
	{"slab_chunk_max", VALUE_REQUIRED},
	{"lru_maintainer", VALUE_NONE},
	{"no_lru_maintainer", VALUE_NONE},
	{"lru_segmented", VALUE_NONE},
	{"no_lru_segmented", VALUE_NONE},
	{"hash_algorithm", VALUE_REQUIRED},
	{"maxconns_fast", VALUE_NONE},
	{"no_maxconns_fast", VALUE_NONE},
	{"idle_timeout", VALUE_REQUIRED},
	{"watcher_logbuf_size", VALUE_REQUIRED},
	{"worker_logbuf_size", VALUE_REQUIRED},
	{"track_sizes", VALUE_NONE},
	{"no_inline_ascii_resp", VALUE_NONE},
	{"temporary_ttl", VALUE_REQUIRED},
};

/* Add `opt` to the list of -o options accepted and ignored. */
static void
note_unused_option(struct settings *s, const char *opt)
{
	size_t used = strlen(s->ignored_options);

	snprintf(s->ignored_options + used, sizeof(s->ignored_options) - used, "%s%s",
	         used > 0 ? "," : "", opt);
}

/* -o: memcached's extended options. */
static enum settings_result
parse_extended(struct settings *s, const char *arg, const struct parse_ctx *ctx)
{
	char buf[512];
	char *save = NULL, *opt;
	size_t i;

	if (strlen(arg) >= sizeof(buf))
		return fail(ctx, "-o: option list too long");
	snprintf(buf, sizeof(buf), "%s", arg);
	for (opt = strtok_r(buf, ",", &save); opt != NULL; opt = strtok_r(NULL, ",", &save)) {
		char *value = strchr(opt, '=');
		long long v;

		if (value != NULL)
			*value++ = '\0';
		if (strcmp(opt, "hashpower") == 0) {
			if (value == NULL || !parse_int(value, 12, 32, &v))
				return fail(ctx, "-o hashpower: needs a number from 12 to 32");
			s->hashpower = (unsigned)v;
			continue;
		} else if (strcmp(opt, "lru_crawler") == 0 && value == NULL) {
			s->sweeper = true;
			continue;
		} else if (strcmp(opt, "no_lru_crawler") == 0 && value == NULL) {
			s->sweeper = false;
			continue;
		}
		for (i = 0; i < sizeof(unused_options) / sizeof(unused_options[0]); i++) {
			if (strcmp(opt, unused_options[i].name) == 0)
				break;
		}
		if (i == sizeof(unused_options) / sizeof(unused_options[0]))
			return fail(ctx, "-o: '%s' is not an option cairn supports (see cairn(1))", opt);
		if (unused_options[i].value == VALUE_NONE && value != NULL)
			return fail(ctx, "-o %s: takes no value", opt);
		if (unused_options[i].value == VALUE_REQUIRED && (value == NULL || *value == '\0'))
			return fail(ctx, "-o %s: needs a value (%s=...)", opt, opt);
		note_unused_option(s, opt);
	}
	return SETTINGS_RUN;
}

/* `path` made absolute against the working directory, into buf.  -d
 * changes directory to /: a relative path must mean what it meant where
 * the node was started. */
static bool
make_absolute(const char *path, char *buf, size_t len)
{
	char cwd[PATH_MAX];
	int n;

	if (path[0] == '/') {
		n = snprintf(buf, len, "%s", path);
	} else {
		if (getcwd(cwd, sizeof(cwd)) == NULL)
			return false;
		n = snprintf(buf, len, "%s/%s", cwd, strncmp(path, "./", 2) == 0 ? path + 2 : path);
	}
	return n >= 0 && (size_t)n < len;
}

/* Set *field to a malloc'd absolute copy of `path` (replacing an earlier
 * one); settings_free() frees it. */
static bool
own_path(char **field, const char *path)
{
	char buf[PATH_MAX];
	char *copy;

	if (!make_absolute(path, buf, sizeof(buf)) || (copy = strdup(buf)) == NULL)
		return false;
	free(*field);
	*field = copy;
	return true;
}

/* What the flags said that matters after all of them are read. */
struct parse_state {
	bool item_size_given;
	bool data_dir_given;
	bool protocol_given;
};

/* Parse one argument vector (the command line, or one --config line). */
static enum settings_result
parse_args(struct settings *s, int argc, char **argv, const struct parse_ctx *ctx,
           struct parse_state *st)
{
	static const struct option longopts[] = {
		{"port", required_argument, NULL, 'p'},
		{"listen", required_argument, NULL, 'l'},
		{"memory-limit", required_argument, NULL, 'm'},
		{"conn-limit", required_argument, NULL, 'c'},
		{"threads", required_argument, NULL, 't'},
		{"max-item-size", required_argument, NULL, 'I'},
		{"verbose", no_argument, NULL, 'v'},
		{"udp-port", required_argument, NULL, 'U'},
		{"disable-cas", no_argument, NULL, 'C'},
		{"disable-flush-all", no_argument, NULL, 'F'},
		{"user", required_argument, NULL, 'u'},
		{"pidfile", required_argument, NULL, 'P'},
		{"daemon", no_argument, NULL, 'd'},
		{"extended", required_argument, NULL, 'o'},
		{"help", no_argument, NULL, 'h'},
		{"version", no_argument, NULL, 'V'},
		{"data-dir", required_argument, NULL, OPT_DATA_DIR},
		{"ephemeral", no_argument, NULL, OPT_EPHEMERAL},
		{"fsync", required_argument, NULL, OPT_FSYNC},
		{"wal-segment-size", required_argument, NULL, OPT_WAL_SEGMENT_SIZE},
		{"wal-backlog", required_argument, NULL, OPT_WAL_BACKLOG},
		{"repl-port", required_argument, NULL, OPT_REPL_PORT},
		{"replica-of", required_argument, NULL, OPT_REPLICA_OF},
		{"node-id", required_argument, NULL, OPT_NODE_ID},
		{"sync-replicas", required_argument, NULL, OPT_SYNC_REPLICAS},
		{"sync-timeout-ms", required_argument, NULL, OPT_SYNC_TIMEOUT_MS},
		{"cluster-secret-file", required_argument, NULL, OPT_SECRET_FILE},
		{"config", required_argument, NULL, OPT_CONFIG},
		{"log-file", required_argument, NULL, OPT_LOG_FILE},
		{"metrics-port", required_argument, NULL, OPT_METRICS_PORT},
		{"protocol", required_argument, NULL, 'B'},
		{"auth-file", required_argument, NULL, 'Y'},
		{"enable-sasl", no_argument, NULL, 'S'},
		{NULL, 0, NULL, 0},
	};
	long long v;
	uint64_t size;
	int opt;

	optind = 0;  /* full re-initialisation, so tests may parse repeatedly */
	opterr = 0;
	while ((opt = getopt_long(argc, argv, ":p:l:m:c:t:I:vU:CFu:P:do:hVB:Y:S", longopts, NULL)) != -1) {
		switch (opt) {
		case 'p':
			if (!parse_int(optarg, 1, 65535, &v))
				return fail(ctx, "-p/--port: '%s' is not a port number (1-65535)", optarg);
			s->port = (int)v;
			break;
		case 'l':
			if (optarg[0] == '\0' || strlen(optarg) >= sizeof(s->listen_addr))
				return fail(ctx, "-l/--listen: '%s' is not an address", optarg);
			snprintf(s->listen_addr, sizeof(s->listen_addr), "%s", optarg);
			break;
		case 'm':
			if (!parse_int(optarg, 1, 1024LL * 1024 * 1024, &v))
				return fail(ctx, "-m/--memory-limit: '%s' is not a number of megabytes (at least 1)", optarg);
			s->mem_limit = (size_t)v * 1024 * 1024;
			break;
		case 'c':
			if (!parse_int(optarg, 1, INT_MAX, &v))
				return fail(ctx, "-c/--conn-limit: '%s' is not a positive number", optarg);
			s->conn_limit = (int)v;
			break;
		case 't':
			if (!parse_int(optarg, 1, THREADS_MAX, &v))
				return fail(ctx, "-t/--threads: '%s' is not a thread count (1-%d)", optarg, THREADS_MAX);
			s->threads = (int)v;
			break;
		case 'I':
			if (!parse_size(optarg, &size) || size < ITEM_SIZE_MIN || size > ITEM_SIZE_MAX_LIMIT)
				return fail(ctx, "-I/--max-item-size: '%s' is not a size from 1k to 1g", optarg);
			s->item_size_max = (size_t)size;
			st->item_size_given = true;
			break;
		case 'v':
			if (s->verbose < 2)
				s->verbose++;
			break;
		case 'U':
			if (strcmp(optarg, "0") != 0)
				return fail(ctx, "-U/--udp-port: UDP is not supported; only -U 0 is accepted");
			break;
		case 'C':
			s->use_cas = false;
			break;
		case 'F':
			s->flush_enabled = false;
			break;
		case 'u':
			s->user = optarg;
			break;
		case 'P':
			if (!own_path(&s->pid_file, optarg))
				return fail(ctx, "-P/--pidfile: '%s' cannot be made an absolute path", optarg);
			break;
		case 'd':
			s->daemonize = true;
			break;
		case 'o':
			if (parse_extended(s, optarg, ctx) != SETTINGS_RUN)
				return SETTINGS_EXIT_USAGE;
			break;
		case 'h':
			usage();
			return SETTINGS_EXIT_OK;
		case 'V':
			printf("cairn %s\n", CAIRN_VERSION);
			return SETTINGS_EXIT_OK;
		case OPT_DATA_DIR:
			if (optarg[0] == '\0' || strlen(optarg) >= sizeof(s->data_dir) - 256)
				return fail(ctx, "--data-dir: needs a directory");
			snprintf(s->data_dir, sizeof(s->data_dir), "%s", optarg);
			st->data_dir_given = true;
			break;
		case OPT_EPHEMERAL:
			s->ephemeral = true;
			break;
		case OPT_FSYNC:
			if (!wal_fsync_parse(optarg, &s->fsync))
				return fail(ctx, "--fsync: '%s' is not one of always, everysec, no", optarg);
			break;
		case OPT_WAL_SEGMENT_SIZE:
			if (!parse_size(optarg, &size) || size < WAL_SEGMENT_MIN || size > ((uint64_t)1 << 32))
				return fail(ctx, "--wal-segment-size: '%s' is not a size from 4k to 4g", optarg);
			s->wal_segment_size = (size_t)size;
			break;
		case OPT_WAL_BACKLOG:
			if (!parse_size(optarg, &size))
				return fail(ctx, "--wal-backlog: '%s' is not a size", optarg);
			s->wal_backlog = (size_t)size;
			break;
		case OPT_REPL_PORT:
			if (!parse_int(optarg, 1, 65535, &v))
				return fail(ctx, "--repl-port: '%s' is not a port number (1-65535)", optarg);
			s->repl_port = (int)v;
			break;
		case OPT_REPLICA_OF: {
			const char *colon = strrchr(optarg, ':');

			if (colon == NULL || colon == optarg || !parse_int(colon + 1, 1, 65535, &v))
				return fail(ctx, "--replica-of: '%s' is not HOST:PORT", optarg);
			s->replica_of = optarg;
			break;
		}
		case OPT_NODE_ID:
			if (optarg[0] == '\0' || strlen(optarg) >= 64 || strpbrk(optarg, " ,=\r\n") != NULL)
				return fail(ctx, "--node-id: '%s' must be 1-63 characters without spaces, ',' or '='", optarg);
			snprintf(s->node_id, sizeof(s->node_id), "%s", optarg);
			break;
		case OPT_SYNC_REPLICAS:
			if (!parse_int(optarg, 0, 64, &v))
				return fail(ctx, "--sync-replicas: '%s' is not a number from 0 to 64", optarg);
			s->sync_replicas = (int)v;
			break;
		case OPT_SYNC_TIMEOUT_MS:
			if (!parse_int(optarg, 1, 3600000, &v))
				return fail(ctx, "--sync-timeout-ms: '%s' is not a number of milliseconds", optarg);
			s->sync_timeout_ms = (int)v;
			break;
		case OPT_SECRET_FILE:
			if (access(optarg, R_OK) != 0)
				return fail(ctx, "--cluster-secret-file: cannot read '%s': %s", optarg, strerror(errno));
			if (!own_path(&s->secret_file, optarg))
				return fail(ctx, "--cluster-secret-file: '%s' cannot be made an absolute path", optarg);
			break;
		case OPT_CONFIG:
			/* settings_parse() read it before the command line. */
			if (ctx->where[0] != '\0')
				return fail(ctx, "--config: a config file cannot name another");
			break;
		case OPT_LOG_FILE:
			if (optarg[0] == '\0')
				return fail(ctx, "--log-file: needs a file name");
			if (!own_path(&s->log_file, optarg))
				return fail(ctx, "--log-file: '%s' cannot be made an absolute path", optarg);
			break;
		case OPT_METRICS_PORT:
			if (!parse_int(optarg, 1, 65535, &v))
				return fail(ctx, "--metrics-port: '%s' is not a port number (1-65535)", optarg);
			s->metrics_port = (int)v;
			break;
		case 'B':
			if (strcmp(optarg, "auto") == 0)
				s->protocol = CLIENT_PROTOCOL_AUTO;
			else if (strcmp(optarg, "ascii") == 0)
				s->protocol = CLIENT_PROTOCOL_ASCII;
			else if (strcmp(optarg, "binary") == 0)
				s->protocol = CLIENT_PROTOCOL_BINARY;
			else
				return fail(ctx, "-B/--protocol: '%s' is not one of auto, ascii, binary", optarg);
			st->protocol_given = true;
			break;
		case 'Y':
			if (access(optarg, R_OK) != 0)
				return fail(ctx, "-Y/--auth-file: cannot read '%s': %s", optarg, strerror(errno));
			if (!own_path(&s->auth_file, optarg))
				return fail(ctx, "-Y/--auth-file: '%s' cannot be made an absolute path", optarg);
			break;
		case 'S':
			s->sasl = true;
			break;
		case ':':
			return fail(ctx, "%s: needs a value", argv[optind - 1]);
		default:
			if (optopt != 0)
				return fail(ctx, "-%c: unknown option (see --help)", optopt);
			return fail(ctx, "%s: unknown option (see --help)", argv[optind - 1]);
		}
	}
	if (optind < argc)
		return fail(ctx, "'%s': unexpected argument (see --help)", argv[optind]);
	return SETTINGS_RUN;
}

/******** --config FILE ********/

#define CONFIG_MAX_BYTES (1024 * 1024)

/* The --config FILE named in argv (as "--config F" or "--config=F"), NULL
 * if none.  *twice is set when it is given more than once. */
static const char *
find_config_flag(int argc, char **argv, bool *twice)
{
	const char *file = NULL;
	int i, found = 0;

	for (i = 1; i < argc && strcmp(argv[i], "--") != 0; i++) {
		if (strcmp(argv[i], "--config") == 0 && i + 1 < argc) {
			file = argv[++i];
			found++;
		} else if (strncmp(argv[i], "--config=", 9) == 0) {
			file = argv[i] + 9;
			found++;
		}
	}
	*twice = found > 1;
	return file;
}

/* Read FILE whole into s->config_text (NUL-terminated). */
static enum settings_result
read_config(struct settings *s, const char *file, const struct parse_ctx *ctx)
{
	FILE *f = fopen(file, "r");
	size_t n;

	if (f == NULL)
		return fail(ctx, "--config: cannot read '%s': %s", file, strerror(errno));
	s->config_text = malloc(CONFIG_MAX_BYTES + 1);
	if (s->config_text == NULL) {
		fclose(f);
		return fail(ctx, "--config: out of memory");
	}
	n = fread(s->config_text, 1, CONFIG_MAX_BYTES + 1, f);
	if (ferror(f) || n > CONFIG_MAX_BYTES) {
		fclose(f);
		return fail(ctx, "--config: '%s' is unreadable or larger than 1 MB", file);
	}
	fclose(f);
	s->config_text[n] = '\0';
	return SETTINGS_RUN;
}

/* Apply FILE, in /etc/memcached.conf's format: one flag per line with its
 * value after the first run of blanks ("-m 64", "--fsync always"), blank
 * lines and lines starting with '#' ignored.  Debian's memcached.conf also
 * has "logfile FILE" (read by its start script): taken as --log-file. */
static enum settings_result
parse_config(struct settings *s, const char *file, char *err, size_t errlen,
             struct parse_state *st)
{
	struct parse_ctx ctx = {err, errlen, ""};
	char where[PATH_MAX + 32];
	char *line, *next;
	unsigned lineno = 0;

	if (read_config(s, file, &ctx) != SETTINGS_RUN)
		return SETTINGS_EXIT_USAGE;
	ctx.where = where;
	for (line = s->config_text; line != NULL; line = next) {
		char *argv[4] = {(char *)"cairn", NULL, NULL, NULL};
		char *flag, *value, *end;
		int argc = 2;

		next = strchr(line, '\n');
		if (next != NULL)
			*next++ = '\0';
		lineno++;
		snprintf(where, sizeof(where), "%s:%u: ", file, lineno);
		flag = line + strspn(line, " \t\r");
		if (*flag == '\0' || *flag == '#')
			continue;
		value = flag + strcspn(flag, " \t\r");
		if (*value != '\0') {
			*value++ = '\0';
			value += strspn(value, " \t\r");
			end = value + strlen(value);
			while (end > value && strchr(" \t\r", end[-1]) != NULL)
				*--end = '\0';
		}
		if (strcmp(flag, "logfile") == 0)
			flag = (char *)"--log-file";
		if (flag[0] != '-')
			return fail(&ctx, "'%s' is not a flag (lines look like \"-m 64\")", flag);
		argv[1] = flag;
		if (*value != '\0')
			argv[argc++] = value;
		if (parse_args(s, argc, argv, &ctx, st) != SETTINGS_RUN)
			return SETTINGS_EXIT_USAGE;
	}
	return SETTINGS_RUN;
}

/******** AFTER THE FLAGS ********/

/* Without --data-dir: ./cairn-data/PORT, one directory per client port, so
 * that several nodes started from one directory do not collide.  A
 * ./cairn-data laid out as before (data directly in it: its LOCK file) is
 * still used as it is, so an upgraded node comes back warm. */
static void
default_data_dir(struct settings *s)
{
	if (access("./cairn-data/LOCK", F_OK) == 0)
		snprintf(s->data_dir, sizeof(s->data_dir), "./cairn-data");
	else
		snprintf(s->data_dir, sizeof(s->data_dir), "./cairn-data/%d", s->port);
}

/* -Y and -S: where the passwords come from, and which protocols are
 * served.  Without -B, as memcached: -Y alone serves ASCII only (its `set`
 * convention), -S alone binary only (SASL).  Both: either protocol, each
 * authenticating its own way against the same file (memcached refuses that
 * combination; cairn's contract has -Y cover both protocols). */
static enum settings_result
check_client_auth(struct settings *s, const struct parse_ctx *ctx, const struct parse_state *st)
{
	const char *pwdb = getenv("MEMCACHED_SASL_PWDB");
	bool ascii_auth = s->auth_file != NULL;

	if (s->sasl && s->auth_file == NULL) {
		if (pwdb == NULL || pwdb[0] == '\0')
			return fail(ctx, "-S/--enable-sasl: needs -Y FILE (or MEMCACHED_SASL_PWDB=FILE) "
			            "with the user:password lines SASL PLAIN checks");
		if (access(pwdb, R_OK) != 0)
			return fail(ctx, "-S/--enable-sasl: cannot read MEMCACHED_SASL_PWDB '%s': %s", pwdb,
			            strerror(errno));
		if (!own_path(&s->auth_file, pwdb))
			return fail(ctx, "-S/--enable-sasl: '%s' cannot be made an absolute path", pwdb);
	}
	if (!st->protocol_given && (ascii_auth || s->sasl))
		s->protocol = !s->sasl ? CLIENT_PROTOCOL_ASCII
		            : ascii_auth ? CLIENT_PROTOCOL_AUTO : CLIENT_PROTOCOL_BINARY;
	return SETTINGS_RUN;
}

static enum settings_result
check_settings(struct settings *s, const struct parse_ctx *ctx, const struct parse_state *st)
{
	char dir[PATH_MAX];
	enum settings_result r;

	if (s->ephemeral && (s->replica_of != NULL || s->sync_replicas > 0))
		return fail(ctx, "--ephemeral: replication streams the WAL, so it needs persistence");
	if (s->repl_port == 0)
		s->repl_port = s->port + 10000 <= 65535 ? s->port + 10000 : s->port - 10000;
	if (s->repl_port == s->port)
		return fail(ctx, "--repl-port: must differ from the client port %d", s->port);
	if (s->metrics_port != 0 && (s->metrics_port == s->port || s->metrics_port == s->repl_port))
		return fail(ctx, "--metrics-port: must differ from the client and replication ports");
	if (s->node_id[0] == '\0')
		snprintf(s->node_id, sizeof(s->node_id), "%s:%d", s->listen_addr, s->port);
	if (st->item_size_given && s->item_size_max > s->mem_limit / 2)
		return fail(ctx, "-I/--max-item-size: cannot be more than half of -m (%zu MB)",
		            s->mem_limit / (1024 * 1024));
	if ((r = check_client_auth(s, ctx, st)) != SETTINGS_RUN)
		return r;
	if (!st->data_dir_given)
		default_data_dir(s);
	/* Absolute, as every path (make_absolute), and so stats say where. */
	if (!make_absolute(s->data_dir, dir, sizeof(dir)))
		return fail(ctx, "--data-dir: '%s' cannot be made an absolute path", s->data_dir);
	snprintf(s->data_dir, sizeof(s->data_dir), "%s", dir);
	return SETTINGS_RUN;
}

enum settings_result
settings_parse(struct settings *s, int argc, char **argv, char *err, size_t errlen)
{
	struct parse_ctx ctx = {err, errlen, ""};
	struct parse_state st = {false, false, false};
	enum settings_result r;
	bool twice;

	s->config_file = find_config_flag(argc, argv, &twice);
	if (twice)
		return fail(&ctx, "--config: given more than once");
	if (s->config_file != NULL &&
	    (r = parse_config(s, s->config_file, err, errlen, &st)) != SETTINGS_RUN)
		return r;
	if ((r = parse_args(s, argc, argv, &ctx, &st)) != SETTINGS_RUN)
		return r;
	return check_settings(s, &ctx, &st);
}

void
settings_print_notices(const struct settings *s, FILE *f)
{
	if (s->ignored_options[0] != '\0')
		fprintf(f, "cairn: -o %s: accepted for memcached compatibility and ignored "
		        "(cairn has no slab allocator or LRU threads to tune)\n", s->ignored_options);
}

void
settings_free(struct settings *s)
{
	free(s->config_text);
	free(s->pid_file);
	free(s->log_file);
	free(s->secret_file);
	free(s->auth_file);
	s->config_text = s->pid_file = s->log_file = s->secret_file = s->auth_file = NULL;
}
