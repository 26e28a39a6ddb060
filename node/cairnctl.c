/* cairnctl: the admin client.  Talks the memcache text protocol to a node's
 * client port (`stats replication`, `stats persistence`, `promote`,
 * `replicaof`, `pause_writes`, `resume_writes`) and prints for humans.
 *
 *   cairnctl [-s HOST:PORT] status
 *   cairnctl [-s HOST:PORT] promote
 *   cairnctl [-s HOST:PORT] replicaof HOST:PORT      (the primary's replication port)
 *   cairnctl -s PRIMARY failover [--to HOST:PORT] [--timeout-ms N]
 *
 * Exit status: 0 done, 1 the node refused or could not be reached (the
 * message says why), 2 bad usage.
 */
#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define IO_TIMEOUT_MS 5000
#define FAILOVER_TIMEOUT_MS 10000
#define POLL_INTERVAL_MS 20
#define STATS_MAX 64

struct node {
	char host[256];
	char port[16];
	int fd;
};

/* One `stats` reply, as name/value pairs. */
struct stats {
	int n;
	char name[STATS_MAX][64];
	char value[STATS_MAX][320];
};

static void __attribute__((noreturn, format(printf, 1, 2)))
die(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "cairnctl: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(1);
}

static void __attribute__((noreturn))
usage(const char *why)
{
	if (why != NULL)
		fprintf(stderr, "cairnctl: %s\n", why);
	fprintf(stderr,
	        "usage: cairnctl [-s HOST:PORT] status\n"
	        "       cairnctl [-s HOST:PORT] promote\n"
	        "       cairnctl [-s HOST:PORT] replicaof HOST:REPL_PORT\n"
	        "       cairnctl -s PRIMARY failover [--to HOST:PORT] [--timeout-ms N]\n"
	        "-s defaults to 127.0.0.1:11211 (a node's client port).\n");
	exit(2);
}

static bool
split_addr(const char *s, char *host, size_t hostlen, char *port, size_t portlen)
{
	const char *colon = strrchr(s, ':');

	if (colon == NULL || colon == s || (size_t)(colon - s) >= hostlen ||
	    strlen(colon + 1) == 0 || strlen(colon + 1) >= portlen ||
	    strspn(colon + 1, "0123456789") != strlen(colon + 1))
		return false;
	memcpy(host, s, (size_t)(colon - s));
	host[colon - s] = '\0';
	snprintf(port, portlen, "%s", colon + 1);
	return true;
}

static void
node_connect(struct node *n)
{
	struct addrinfo hints = {0}, *res, *ai;
	int rc;

	hints.ai_socktype = SOCK_STREAM;
	rc = getaddrinfo(n->host, n->port, &hints, &res);
	if (rc != 0)
		die("%s:%s: %s", n->host, n->port, gai_strerror(rc));
	n->fd = -1;
	for (ai = res; ai != NULL && n->fd < 0; ai = ai->ai_next) {
		n->fd = socket(ai->ai_family, ai->ai_socktype, ai->ai_protocol);
		if (n->fd >= 0 && connect(n->fd, ai->ai_addr, ai->ai_addrlen) != 0) {
			close(n->fd);
			n->fd = -1;
		}
	}
	freeaddrinfo(res);
	if (n->fd < 0)
		die("cannot connect to %s:%s: %s", n->host, n->port, strerror(errno));
}

static void
node_init(struct node *n, const char *addr)
{
	if (!split_addr(addr, n->host, sizeof(n->host), n->port, sizeof(n->port)))
		usage("addresses are HOST:PORT");
	node_connect(n);
}

/* Has the whole reply arrived?  One line when `end` is NULL; otherwise up to
 * `end`, or a single error line instead. */
static bool
reply_complete(const char *buf, size_t len, const char *end)
{
	size_t endlen;

	if (strstr(buf, "\r\n") == NULL)
		return false;
	if (end == NULL)
		return true;
	endlen = strlen(end);
	if (len >= endlen && strcmp(buf + len - endlen, end) == 0)
		return true;
	return strncmp(buf, "ERROR", 5) == 0 || strncmp(buf, "SERVER_ERROR", 12) == 0 ||
	       strncmp(buf, "CLIENT_ERROR", 12) == 0;
}

/* Send `req` and read the reply (see reply_complete) into buf, waiting at
 * most timeout_ms for each read.  Returns NULL (why in `err`) when the node
 * does not answer in time or closes the connection. */
static char *
node_try_call(struct node *n, const char *req, const char *end, char *buf, size_t buflen,
              int timeout_ms, char *err, size_t errlen)
{
	size_t len = 0, reqlen = strlen(req);

	if (write(n->fd, req, reqlen) != (ssize_t)reqlen) {
		snprintf(err, errlen, "%s:%s: write failed: %s", n->host, n->port, strerror(errno));
		return NULL;
	}
	for (;;) {
		struct pollfd pfd = {n->fd, POLLIN, 0};
		ssize_t k;

		buf[len] = '\0';
		if (reply_complete(buf, len, end))
			return buf;
		if (len + 1 >= buflen) {
			snprintf(err, errlen, "%s:%s: reply too long", n->host, n->port);
			return NULL;
		}
		if (poll(&pfd, 1, timeout_ms) != 1) {
			snprintf(err, errlen, "%s:%s: no reply within %d ms", n->host, n->port, timeout_ms);
			return NULL;
		}
		k = read(n->fd, buf + len, buflen - 1 - len);
		if (k <= 0) {
			snprintf(err, errlen, "%s:%s: connection closed", n->host, n->port);
			return NULL;
		}
		len += (size_t)k;
	}
}

static char *
node_call(struct node *n, const char *req, const char *end, char *buf, size_t buflen)
{
	char err[512];

	if (node_try_call(n, req, end, buf, buflen, IO_TIMEOUT_MS, err, sizeof(err)) == NULL)
		die("%s", err);
	return buf;
}

/* A one-line command that must answer OK. */
static void
node_command(struct node *n, const char *req)
{
	char buf[512];

	node_call(n, req, NULL, buf, sizeof(buf));
	if (strncmp(buf, "OK\r\n", 4) != 0) {
		buf[strcspn(buf, "\r\n")] = '\0';
		die("%s:%s refused '%.*s': %s", n->host, n->port, (int)strcspn(req, "\r\n"), req, buf);
	}
}

static void
parse_stats(char *buf, struct stats *st)
{
	char *line, *save = NULL;

	st->n = 0;
	for (line = strtok_r(buf, "\r\n", &save); line != NULL && st->n < STATS_MAX;
	     line = strtok_r(NULL, "\r\n", &save)) {
		char *name, *value;

		if (strncmp(line, "STAT ", 5) != 0)
			continue;
		name = line + 5;
		value = strchr(name, ' ');
		if (value == NULL)
			continue;
		*value++ = '\0';
		snprintf(st->name[st->n], sizeof(st->name[0]), "%s", name);
		snprintf(st->value[st->n], sizeof(st->value[0]), "%s", value);
		st->n++;
	}
}

static void
node_stats(struct node *n, const char *which, struct stats *st)
{
	char req[64], buf[16384];

	snprintf(req, sizeof(req), "stats %s\r\n", which);
	node_call(n, req, "END\r\n", buf, sizeof(buf));
	if (strncmp(buf, "STAT ", 5) != 0 && strncmp(buf, "END", 3) != 0) {
		buf[strcspn(buf, "\r\n")] = '\0';
		die("%s:%s: stats %s: %s", n->host, n->port, which, buf);
	}
	parse_stats(buf, st);
}

static const char *
stat_get(const struct stats *st, const char *name)
{
	int i;

	for (i = 0; i < st->n; i++) {
		if (strcmp(st->name[i], name) == 0)
			return st->value[i];
	}
	return "";
}

/* A field of a "replica<i>" line: id=..,addr=..,acked_lsn=.. */
static bool
replica_field(const char *line, const char *field, char *out, size_t outlen)
{
	char key[32];
	const char *p;
	size_t n;

	snprintf(key, sizeof(key), "%s=", field);
	for (p = line; (p = strstr(p, key)) != NULL; p++) {
		if (p == line || p[-1] == ',') {
			p += strlen(key);
			n = strcspn(p, ",");
			if (n >= outlen)
				n = outlen - 1;
			memcpy(out, p, n);
			out[n] = '\0';
			return true;
		}
	}
	return false;
}

static uint64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/******** COMMANDS ********/

static int
cmd_status(struct node *n)
{
	struct stats repl, pers, gen;
	int i;

	node_stats(n, "replication", &repl);
	node_stats(n, "persistence", &pers);
	node_stats(n, "", &gen);
	printf("node        %s (%s:%s)\n", stat_get(&repl, "node_id"), n->host, n->port);
	printf("role        %s, epoch %s, history %s\n", stat_get(&repl, "role"),
	       stat_get(&repl, "epoch"), stat_get(&repl, "history_id"));
	printf("lsn         %s\n", stat_get(&repl, "lsn"));
	printf("items       %s (%s bytes)\n", stat_get(&gen, "curr_items"), stat_get(&gen, "bytes"));
	if (strcmp(stat_get(&repl, "role"), "replica") == 0) {
		printf("primary     %s, link %s, %s records behind\n", stat_get(&repl, "primary"),
		       stat_get(&repl, "link"), stat_get(&repl, "lag_lsn"));
	} else if (strcmp(stat_get(&repl, "role"), "primary") == 0) {
		printf("replicas    %s connected\n", stat_get(&repl, "connected_replicas"));
		for (i = 0; i < repl.n; i++) {
			if (strncmp(repl.name[i], "replica", 7) == 0)
				printf("  %-9s %s\n", repl.name[i], repl.value[i]);
		}
	}
	if (strcmp(stat_get(&pers, "enabled"), "yes") == 0)
		printf("persistence fsync %s, synced to LSN %s, checkpoint at LSN %s, WAL %s bytes\n",
		       stat_get(&pers, "fsync"), stat_get(&pers, "wal_synced_lsn"),
		       stat_get(&pers, "checkpoint_lsn"), stat_get(&pers, "wal_bytes"));
	else
		printf("persistence off (--ephemeral)\n");
	return 0;
}

static int
cmd_replicaof(struct node *n, const char *target)
{
	char host[256], port[16], req[320];

	if (!split_addr(target, host, sizeof(host), port, sizeof(port)))
		usage("replicaof needs HOST:PORT (the primary's replication port)");
	snprintf(req, sizeof(req), "replicaof %s %s\r\n", host, port);
	node_command(n, req);
	printf("%s:%s now follows %s\n", n->host, n->port, target);
	return 0;
}

/* Planned switchover that loses nothing (Redis 6.2 FAILOVER): pause writes
 * on the primary, wait until the chosen replica holds every LSN, promote it,
 * make the old primary and the other replicas follow it, resume.  If the
 * replica does not catch up in time, writes resume and nothing changes. */
static int
cmd_failover(struct node *primary, const char *to, int timeout_ms)
{
	struct stats pst, tst;
	char target_addr[128] = "", addr[128], best_lsn_s[32];
	char req[400], repl_host[256], repl_port[16];
	struct node target;
	uint64_t best_lsn = 0, deadline;
	int i;

	node_stats(primary, "replication", &pst);
	if (strcmp(stat_get(&pst, "role"), "primary") != 0)
		die("%s:%s is not a primary (role %s)", primary->host, primary->port, stat_get(&pst, "role"));
	for (i = 0; i < pst.n; i++) {
		if (strncmp(pst.name[i], "replica", 7) != 0 ||
		    !replica_field(pst.value[i], "addr", addr, sizeof(addr)) ||
		    !replica_field(pst.value[i], "acked_lsn", best_lsn_s, sizeof(best_lsn_s)))
			continue;
		if (to != NULL ? strcmp(addr, to) == 0
		               : (target_addr[0] == '\0' || strtoull(best_lsn_s, NULL, 10) > best_lsn)) {
			snprintf(target_addr, sizeof(target_addr), "%s", addr);
			best_lsn = strtoull(best_lsn_s, NULL, 10);
		}
	}
	if (target_addr[0] == '\0')
		die(to != NULL ? "%s is not a connected replica of %s:%s" : "%s%s:%s has no connected replica",
		    to != NULL ? to : "", primary->host, primary->port);
	node_init(&target, target_addr);

	snprintf(req, sizeof(req), "pause_writes %d\r\n", timeout_ms + 2000);
	node_command(primary, req);
	printf("writes paused on %s:%s\n", primary->host, primary->port);
	deadline = now_ms() + (uint64_t)timeout_ms;
	for (;;) {
		uint64_t plsn, tlsn = 0, now;
		char buf[16384], err[512];

		node_stats(primary, "replication", &pst);
		plsn = strtoull(stat_get(&pst, "lsn"), NULL, 10);
		/* The target may hang: never wait for it past our deadline. */
		now = now_ms();
		if (now < deadline &&
		    node_try_call(&target, "stats replication\r\n", "END\r\n", buf, sizeof(buf),
		                  (int)(deadline - now), err, sizeof(err)) != NULL) {
			parse_stats(buf, &tst);
			tlsn = strtoull(stat_get(&tst, "lsn"), NULL, 10);
			if (tlsn >= plsn)
				break;
		}
		if (now_ms() >= deadline) {
			node_command(primary, "resume_writes\r\n");
			die("failover aborted: %s stayed at LSN %llu, the primary is at %llu; writes resumed",
			    target_addr, (unsigned long long)tlsn, (unsigned long long)plsn);
		}
		usleep(POLL_INTERVAL_MS * 1000);
	}
	node_command(&target, "promote\r\n");
	node_stats(&target, "replication", &tst);
	printf("promoted %s: epoch %s\n", target_addr, stat_get(&tst, "epoch"));
	if (!split_addr(stat_get(&tst, "repl_addr"), repl_host, sizeof(repl_host), repl_port, sizeof(repl_port)))
		die("%s reports no replication address", target_addr);
	snprintf(req, sizeof(req), "replicaof %s %s\r\n", repl_host, repl_port);
	/* The other replicas first, then the old primary (whose stats list them). */
	for (i = 0; i < pst.n; i++) {
		struct node other;

		if (strncmp(pst.name[i], "replica", 7) != 0 ||
		    !replica_field(pst.value[i], "addr", addr, sizeof(addr)) || strcmp(addr, target_addr) == 0)
			continue;
		node_init(&other, addr);
		node_command(&other, req);
		printf("%s now follows %s\n", addr, target_addr);
		close(other.fd);
	}
	node_command(primary, req);
	node_command(primary, "resume_writes\r\n");
	printf("%s:%s is now a replica of %s; failover done\n", primary->host, primary->port, target_addr);
	close(target.fd);
	return 0;
}

int
main(int argc, char **argv)
{
	const char *server = "127.0.0.1:11211", *to = NULL;
	int timeout_ms = FAILOVER_TIMEOUT_MS, i = 1, rc;
	struct node n;

	if (i + 1 < argc && strcmp(argv[i], "-s") == 0) {
		server = argv[i + 1];
		i += 2;
	}
	if (i >= argc)
		usage(NULL);
	if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0)
		usage(NULL);
	if (strcmp(argv[i], "status") == 0 && i + 1 == argc) {
		node_init(&n, server);
		rc = cmd_status(&n);
	} else if (strcmp(argv[i], "promote") == 0 && i + 1 == argc) {
		node_init(&n, server);
		node_command(&n, "promote\r\n");
		printf("%s is primary\n", server);
		rc = 0;
	} else if (strcmp(argv[i], "replicaof") == 0 && i + 2 == argc) {
		node_init(&n, server);
		rc = cmd_replicaof(&n, argv[i + 1]);
	} else if (strcmp(argv[i], "failover") == 0) {
		for (i++; i < argc; i += 2) {
			if (i + 1 >= argc)
				usage("failover options take a value");
			if (strcmp(argv[i], "--to") == 0) {
				to = argv[i + 1];
			} else if (strcmp(argv[i], "--timeout-ms") == 0) {
				timeout_ms = atoi(argv[i + 1]);
				if (timeout_ms <= 0)
					usage("--timeout-ms needs a positive number");
			} else {
				usage("unknown failover option");
			}
		}
		node_init(&n, server);
		rc = cmd_failover(&n, to, timeout_ms);
	} else {
		usage("unknown command or wrong arguments");
	}
	close(n.fd);
	return rc;
}
