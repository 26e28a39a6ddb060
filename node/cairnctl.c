/* cairnctl: the admin client.  Talks the memcache text protocol to a node's
 * client port (`stats replication`, `stats persistence`, `promote`,
 * `replicaof`, `pause_writes`, `resume_writes`) and prints for humans.
 *
 *   cairnctl [-s HOST:PORT] status
 *   cairnctl [-s HOST:PORT] promote
 *   cairnctl [-s HOST:PORT] replicaof [--no-check] HOST:PORT  (the primary's replication port)
 *   cairnctl -s PRIMARY failover [--to HOST:PORT] [--timeout-ms N]
 *   cairnctl -h | --help | -V | --version
 *
 * Before `replicaof`, cairnctl connects to HOST:PORT itself and checks that
 * it is a replication port (see probe_repl_port), so a client port given by
 * mistake is refused with the right address instead of a link that stays
 * down.
 *
 * Exit status: 0 done, 1 the node refused or could not be reached (the
 * message says why), 2 bad usage (one line on stderr).
 */
#include <errno.h>
#include <fcntl.h>
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
/* A replication port speaks first (a Challenge frame, replication/wire.c);
 * a client port waits for a command.  How long to wait for that greeting
 * before asking the port for its `version`. */
#define PROBE_GREETING_MS 1000
#define PROBE_BYTES 8

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

#define USAGE_LINE \
	"cairnctl [-s HOST:PORT] status|promote|replicaof [--no-check] HOST:REPL_PORT|" \
	"failover [--to HOST:PORT] [--timeout-ms N]"

/* --help: the whole text on stdout, exit 0. */
static void __attribute__((noreturn))
help(void)
{
	printf("cairnctl " CAIRN_VERSION ": admin client for cairn nodes\n"
	       "usage: cairnctl [-s HOST:PORT] status\n"
	       "       cairnctl [-s HOST:PORT] promote\n"
	       "       cairnctl [-s HOST:PORT] replicaof [--no-check] HOST:REPL_PORT\n"
	       "       cairnctl -s PRIMARY failover [--to HOST:PORT] [--timeout-ms N]\n"
	       "       cairnctl -h | --help | -V | --version\n"
	       "\n"
	       "  -s HOST:PORT  the node to talk to: its client port (default 127.0.0.1:11211)\n"
	       "  status        role, epoch, LSN, items, replication link and persistence\n"
	       "  promote       make the node a primary (epoch + 1); a no-op on a primary\n"
	       "  replicaof HOST:REPL_PORT\n"
	       "                make the node follow the primary whose replication port\n"
	       "                this is (its client port + 10000 by default); refused if\n"
	       "                HOST:REPL_PORT is not a replication port (--no-check: skip\n"
	       "                that check, e.g. when only the node can reach the primary)\n"
	       "  failover      planned switchover that loses nothing: pause writes on\n"
	       "                PRIMARY, wait until the replica holds every write, promote\n"
	       "                it, make the others follow it, resume writes\n"
	       "    --to HOST:PORT   the replica to promote: its client address, as addr= in\n"
	       "                     PRIMARY's `stats replication` (default: the connected\n"
	       "                     replica with the highest acked LSN)\n"
	       "    --timeout-ms N   give up (and resume writes) after N ms (default %d)\n"
	       "\n"
	       "Exit status: 0 done, 1 refused or unreachable (the message says why),\n"
	       "2 bad usage.\n",
	       FAILOVER_TIMEOUT_MS);
	exit(0);
}

/* Bad usage: one line on stderr, exit 2. */
static void __attribute__((noreturn))
usage(const char *why)
{
	fprintf(stderr, "cairnctl: %s; usage: " USAGE_LINE " (cairnctl --help for more)\n", why);
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

/* Connect to host:port within timeout_ms; returns a blocking socket, or -1
 * with the reason in err. */
static int
connect_to(const char *host, const char *port, int timeout_ms, char *err, size_t errlen)
{
	struct addrinfo hints = {0}, *res, *ai;
	int rc, fd = -1, soerr = 0;

	hints.ai_socktype = SOCK_STREAM;
	rc = getaddrinfo(host, port, &hints, &res);
	if (rc != 0) {
		snprintf(err, errlen, "%s:%s: %s", host, port, gai_strerror(rc));
		return -1;
	}
	for (ai = res; ai != NULL && fd < 0; ai = ai->ai_next) {
		struct pollfd pfd;
		socklen_t len = sizeof(soerr);

		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, ai->ai_protocol);
		if (fd < 0) {
			soerr = errno;
			continue;
		}
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0) {
			soerr = 0;
		} else if (errno != EINPROGRESS) {
			soerr = errno;
		} else {
			pfd.fd = fd;
			pfd.events = POLLOUT;
			pfd.revents = 0;
			rc = poll(&pfd, 1, timeout_ms);
			if (rc == 0)
				soerr = ETIMEDOUT;
			else if (rc < 0 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len) != 0)
				soerr = errno;
		}
		if (soerr != 0 || fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK) != 0) {
			if (soerr == 0)
				soerr = errno;
			close(fd);
			fd = -1;
		}
	}
	freeaddrinfo(res);
	if (fd < 0)
		snprintf(err, errlen, "cannot connect to %s:%s: %s", host, port, strerror(soerr));
	return fd;
}

static void
node_connect(struct node *n)
{
	char err[512];

	n->fd = connect_to(n->host, n->port, IO_TIMEOUT_MS, err, sizeof(err));
	if (n->fd < 0)
		die("%s", err);
}

static void
node_init(struct node *n, const char *addr)
{
	if (!split_addr(addr, n->host, sizeof(n->host), n->port, sizeof(n->port)))
		die("'%s' is not HOST:PORT", addr);
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

/* Wait up to timeout_ms until buf holds at least `want` bytes (or, when
 * `until` is not NULL, text containing it), the peer closes, or time runs
 * out.  Returns the bytes in buf (NUL-terminated). */
static size_t
read_some(int fd, char *buf, size_t buflen, size_t want, const char *until, int timeout_ms)
{
	uint64_t deadline = now_ms() + (uint64_t)timeout_ms;
	size_t len = 0;

	buf[0] = '\0';
	while (len < want && len + 1 < buflen && !(until != NULL && strstr(buf, until) != NULL)) {
		struct pollfd pfd = {fd, POLLIN, 0};
		uint64_t now = now_ms();
		ssize_t k;

		if (now >= deadline || poll(&pfd, 1, (int)(deadline - now)) != 1)
			break;
		k = read(fd, buf + len, buflen - 1 - len);
		if (k <= 0)
			break;
		len += (size_t)k;
		buf[len] = '\0';
	}
	return len;
}

/* The first bytes a replication port sends on every new connection: a
 * Frame (u32 big-endian length, then protobuf) whose field 1 is a
 * Challenge whose field 1 is the nonce:
 *   00 00 00 L   0a L-2   0a 20 <32-byte nonce> [10 01]
 * (proto/replication.proto, replication/wire.c, primary_side_accept). */
static bool
is_challenge(const unsigned char *b, size_t len)
{
	uint32_t flen;

	if (len < PROBE_BYTES)
		return false;
	flen = (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
	return flen >= 4 && flen < 128 && b[4] == 0x0a && b[5] == flen - 2 && b[6] == 0x0a;
}

/* Is host:port a cairn replication port?  It speaks first (a Challenge);
 * a client port stays silent, then answers `version` with `VERSION ...`,
 * and its `stats replication` names the node's replication address, which
 * the message suggests.  Returns true, or false with the reason in why. */
static bool
probe_repl_port(const char *host, const char *port, char *why, size_t whylen)
{
	char buf[4096], err[512], hint[300] = "";
	size_t len;
	int fd = connect_to(host, port, IO_TIMEOUT_MS, err, sizeof(err));

	if (fd < 0) {
		snprintf(why, whylen, "%s (to skip this check: replicaof --no-check)", err);
		return false;
	}
	len = read_some(fd, buf, sizeof(buf), PROBE_BYTES, NULL, PROBE_GREETING_MS);
	if (len == 0) {
		/* Silent so far: a client port?  (A slow replication port may
		 * still send its Challenge: it is recognised below.) */
		if (write(fd, "version\r\n", 9) == 9)
			len = read_some(fd, buf, sizeof(buf), sizeof(buf), "\n", IO_TIMEOUT_MS);
	}
	if (is_challenge((const unsigned char *)buf, len)) {
		close(fd);
		return true;
	}
	if (strncmp(buf, "VERSION ", 8) == 0) {
		char *p = NULL, *colon;
		long rport = strtol(port, NULL, 10) + 10000;

		/* The node's own word for its replication port, if it gives it. */
		if (write(fd, "stats replication\r\n", 19) == 19 &&
		    read_some(fd, buf, sizeof(buf), sizeof(buf), "END\r\n", IO_TIMEOUT_MS) > 0)
			p = strstr(buf, "STAT repl_addr ");
		if (p != NULL && (colon = strchr(p, ':')) != NULL)
			rport = strtol(colon + 1, NULL, 10);
		if (rport > 0 && rport <= 65535)
			snprintf(hint, sizeof(hint), " (try %s:%ld)", host, rport);
		snprintf(why, whylen, "%s:%s is a client port, not a replication port%s", host, port, hint);
	} else if (len == 0) {
		snprintf(why, whylen, "%s:%s did not answer like a cairn replication port "
		         "(it sent nothing)", host, port);
	} else {
		snprintf(why, whylen, "%s:%s is not a cairn replication port (it answered '%.*s')",
		         host, port, (int)strcspn(buf, "\r\n"), buf);
	}
	close(fd);
	return false;
}

static int
cmd_replicaof(struct node *n, const char *server, const char *target, bool check)
{
	char host[256], port[16], req[320], why[1024];

	if (!split_addr(target, host, sizeof(host), port, sizeof(port)))
		usage("replicaof needs HOST:PORT (the primary's replication port)");
	if (check && !probe_repl_port(host, port, why, sizeof(why)))
		die("%s", why);
	node_init(n, server);
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
	char host[256], port[16];
	bool check = true;
	struct node n;

	if (argc == 2 && (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0))
		help();
	if (argc == 2 && (strcmp(argv[1], "-V") == 0 || strcmp(argv[1], "--version") == 0)) {
		printf("cairnctl %s\n", CAIRN_VERSION);
		return 0;
	}
	if (i < argc && strcmp(argv[i], "-s") == 0) {
		if (i + 1 >= argc)
			usage("-s needs HOST:PORT");
		server = argv[i + 1];
		i += 2;
	}
	if (i >= argc)
		usage("no command");
	if (!split_addr(server, host, sizeof(host), port, sizeof(port)))
		usage("-s: addresses are HOST:PORT");
	if (strcmp(argv[i], "status") == 0 && i + 1 == argc) {
		node_init(&n, server);
		rc = cmd_status(&n);
	} else if (strcmp(argv[i], "promote") == 0 && i + 1 == argc) {
		node_init(&n, server);
		node_command(&n, "promote\r\n");
		printf("%s is primary\n", server);
		rc = 0;
	} else if (strcmp(argv[i], "replicaof") == 0) {
		if (i + 1 < argc && strcmp(argv[i + 1], "--no-check") == 0) {
			check = false;
			i++;
		}
		if (i + 2 != argc)
			usage("replicaof needs HOST:PORT (the primary's replication port)");
		rc = cmd_replicaof(&n, server, argv[i + 1], check);
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
	} else if (strcmp(argv[i], "status") == 0 || strcmp(argv[i], "promote") == 0) {
		usage("too many arguments");
	} else {
		char why[128];

		snprintf(why, sizeof(why), "unknown command '%.64s'", argv[i]);
		usage(why);
	}
	close(n.fd);
	return rc;
}
