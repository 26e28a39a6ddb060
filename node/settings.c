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
	s->data_dir = "./cairn-data";
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
	       "  -o, --extended OPT[=V],.. hashpower=N, lru_crawler, no_lru_crawler\n"
	       "      --data-dir DIR        WAL and checkpoint directory (default ./cairn-data)\n"
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

static enum settings_result
fail(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;
	int n = snprintf(err, errlen, "cairn: ");

	va_start(ap, fmt);
	if (n >= 0 && (size_t)n < errlen)
		vsnprintf(err + n, errlen - (size_t)n, fmt, ap);
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

/* -o: memcached's extended options that mean something in cairn. */
static enum settings_result
parse_extended(struct settings *s, const char *arg, char *err, size_t errlen)
{
	char buf[512];
	char *save = NULL, *opt;

	if (strlen(arg) >= sizeof(buf))
		return fail(err, errlen, "-o: option list too long");
	snprintf(buf, sizeof(buf), "%s", arg);
	for (opt = strtok_r(buf, ",", &save); opt != NULL; opt = strtok_r(NULL, ",", &save)) {
		char *value = strchr(opt, '=');
		long long v;

		if (value != NULL)
			*value++ = '\0';
		if (strcmp(opt, "hashpower") == 0) {
			if (value == NULL || !parse_int(value, 12, 32, &v))
				return fail(err, errlen, "-o hashpower: needs a number from 12 to 32");
			s->hashpower = (unsigned)v;
		} else if (strcmp(opt, "lru_crawler") == 0 && value == NULL) {
			s->sweeper = true;
		} else if (strcmp(opt, "no_lru_crawler") == 0 && value == NULL) {
			s->sweeper = false;
		} else {
			return fail(err, errlen, "-o: '%s' is not an option cairn supports "
			            "(supported: hashpower=N, lru_crawler, no_lru_crawler)", opt);
		}
	}
	return SETTINGS_RUN;
}

enum settings_result
settings_parse(struct settings *s, int argc, char **argv, char *err, size_t errlen)
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
		{NULL, 0, NULL, 0},
	};
	bool item_size_given = false;
	long long v;
	uint64_t size;
	int opt;

	optind = 0;  /* full re-initialisation, so tests may parse repeatedly */
	opterr = 0;
	while ((opt = getopt_long(argc, argv, ":p:l:m:c:t:I:vU:CFu:P:do:hV", longopts, NULL)) != -1) {
		switch (opt) {
		case 'p':
			if (!parse_int(optarg, 1, 65535, &v))
				return fail(err, errlen, "-p/--port: '%s' is not a port number (1-65535)", optarg);
			s->port = (int)v;
			break;
		case 'l':
			if (optarg[0] == '\0' || strlen(optarg) >= sizeof(s->listen_addr))
				return fail(err, errlen, "-l/--listen: '%s' is not an address", optarg);
			snprintf(s->listen_addr, sizeof(s->listen_addr), "%s", optarg);
			break;
		case 'm':
			if (!parse_int(optarg, 1, 1024LL * 1024 * 1024, &v))
				return fail(err, errlen, "-m/--memory-limit: '%s' is not a number of megabytes (at least 1)", optarg);
			s->mem_limit = (size_t)v * 1024 * 1024;
			break;
		case 'c':
			if (!parse_int(optarg, 1, INT_MAX, &v))
				return fail(err, errlen, "-c/--conn-limit: '%s' is not a positive number", optarg);
			s->conn_limit = (int)v;
			break;
		case 't':
			if (!parse_int(optarg, 1, THREADS_MAX, &v))
				return fail(err, errlen, "-t/--threads: '%s' is not a thread count (1-%d)", optarg, THREADS_MAX);
			s->threads = (int)v;
			break;
		case 'I':
			if (!parse_size(optarg, &size) || size < ITEM_SIZE_MIN || size > ITEM_SIZE_MAX_LIMIT)
				return fail(err, errlen, "-I/--max-item-size: '%s' is not a size from 1k to 1g", optarg);
			s->item_size_max = (size_t)size;
			item_size_given = true;
			break;
		case 'v':
			if (s->verbose < 2)
				s->verbose++;
			break;
		case 'U':
			if (strcmp(optarg, "0") != 0)
				return fail(err, errlen, "-U/--udp-port: UDP is not supported; only -U 0 is accepted");
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
			s->pid_file = optarg;
			break;
		case 'd':
			s->daemonize = true;
			break;
		case 'o':
			if (parse_extended(s, optarg, err, errlen) != SETTINGS_RUN)
				return SETTINGS_EXIT_USAGE;
			break;
		case 'h':
			usage();
			return SETTINGS_EXIT_OK;
		case 'V':
			printf("cairn %s\n", CAIRN_VERSION);
			return SETTINGS_EXIT_OK;
		case OPT_DATA_DIR:
			if (optarg[0] == '\0')
				return fail(err, errlen, "--data-dir: needs a directory");
			s->data_dir = optarg;
			break;
		case OPT_EPHEMERAL:
			s->ephemeral = true;
			break;
		case OPT_FSYNC:
			if (!wal_fsync_parse(optarg, &s->fsync))
				return fail(err, errlen, "--fsync: '%s' is not one of always, everysec, no", optarg);
			break;
		case OPT_WAL_SEGMENT_SIZE:
			if (!parse_size(optarg, &size) || size < WAL_SEGMENT_MIN || size > ((uint64_t)1 << 32))
				return fail(err, errlen, "--wal-segment-size: '%s' is not a size from 4k to 4g", optarg);
			s->wal_segment_size = (size_t)size;
			break;
		case OPT_WAL_BACKLOG:
			if (!parse_size(optarg, &size))
				return fail(err, errlen, "--wal-backlog: '%s' is not a size", optarg);
			s->wal_backlog = (size_t)size;
			break;
		case OPT_REPL_PORT:
			if (!parse_int(optarg, 1, 65535, &v))
				return fail(err, errlen, "--repl-port: '%s' is not a port number (1-65535)", optarg);
			s->repl_port = (int)v;
			break;
		case OPT_REPLICA_OF: {
			const char *colon = strrchr(optarg, ':');

			if (colon == NULL || colon == optarg || !parse_int(colon + 1, 1, 65535, &v))
				return fail(err, errlen, "--replica-of: '%s' is not HOST:PORT", optarg);
			s->replica_of = optarg;
			break;
		}
		case OPT_NODE_ID:
			if (optarg[0] == '\0' || strlen(optarg) >= 64 || strpbrk(optarg, " ,=\r\n") != NULL)
				return fail(err, errlen, "--node-id: '%s' must be 1-63 characters without spaces, ',' or '='", optarg);
			snprintf(s->node_id, sizeof(s->node_id), "%s", optarg);
			break;
		case OPT_SYNC_REPLICAS:
			if (!parse_int(optarg, 0, 64, &v))
				return fail(err, errlen, "--sync-replicas: '%s' is not a number from 0 to 64", optarg);
			s->sync_replicas = (int)v;
			break;
		case OPT_SYNC_TIMEOUT_MS:
			if (!parse_int(optarg, 1, 3600000, &v))
				return fail(err, errlen, "--sync-timeout-ms: '%s' is not a number of milliseconds", optarg);
			s->sync_timeout_ms = (int)v;
			break;
		case OPT_SECRET_FILE:
			if (access(optarg, R_OK) != 0)
				return fail(err, errlen, "--cluster-secret-file: cannot read '%s': %s", optarg, strerror(errno));
			s->secret_file = optarg;
			break;
		case ':':
			return fail(err, errlen, "%s: needs a value", argv[optind - 1]);
		default:
			if (optopt != 0)
				return fail(err, errlen, "-%c: unknown option (see --help)", optopt);
			return fail(err, errlen, "%s: unknown option (see --help)", argv[optind - 1]);
		}
	}
	if (optind < argc)
		return fail(err, errlen, "'%s': unexpected argument (see --help)", argv[optind]);
	if (s->ephemeral && (s->replica_of != NULL || s->sync_replicas > 0))
		return fail(err, errlen, "--ephemeral: replication streams the WAL, so it needs persistence");
	if (s->repl_port == 0)
		s->repl_port = s->port + 10000 <= 65535 ? s->port + 10000 : s->port - 10000;
	if (s->repl_port == s->port)
		return fail(err, errlen, "--repl-port: must differ from the client port %d", s->port);
	if (s->node_id[0] == '\0')
		snprintf(s->node_id, sizeof(s->node_id), "%s:%d", s->listen_addr, s->port);
	if (item_size_given && s->item_size_max > s->mem_limit / 2)
		return fail(err, errlen, "-I/--max-item-size: cannot be more than half of -m (%zu MB)",
		            s->mem_limit / (1024 * 1024));
	return SETTINGS_RUN;
}
