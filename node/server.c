/* The server process: listener, workers, signals, sweeper. */
#include "node/server.h"

#include <errno.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <pwd.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include "node/client_auth.h"
#include "node/conn.h"
#include "node/metrics.h"
#include "storage/log.h"
#include "node/proto_text.h"
#include "node/settings.h"
#include "node/stats.h"
#include "replication/auth.h"
#include "replication/repl.h"
#include "storage/cache.h"
#include "storage/persist.h"
#include "storage/wakeup.h"
#include "storage/store.h"

#define LISTEN_BACKLOG 1024
#define SWEEP_BUCKETS_MIN 16384   /* per second; a full pass takes <= ~10 s */
#define TOO_MANY_CONNS "ERROR Too many open connections\r\n"

struct worker {
	pthread_t thread;
	struct event_base *base;
	struct wakeup wake;             /* new sockets, WAL progress, stop */
	struct event *notify_ev;
	pthread_mutex_t lock;           /* guards pending and stop */
	int *pending;                   /* accepted sockets to adopt */
	size_t npending, cap;
	bool stop;
	struct thread_stats stats;
	struct conn_list conns;
	const struct proto_env *env;
};

struct server {
	const struct settings *settings;
	struct proto_env env;
	struct event_base *base;
	struct evconnlistener *listener;
	struct worker *workers;
	int nworkers;
	int next_worker;                /* round-robin position */
	pthread_mutex_t wake_lock;      /* guards awake_workers, notify_repl */
	int awake_workers;              /* workers the WAL may wake */
	struct repl *notify_repl;       /* replication, while the WAL may notify it */
	struct event *sigterm_ev, *sigint_ev, *sighup_ev, *sweep_ev, *tick_ev;
	struct metrics *metrics;        /* --metrics-port, or NULL */
	struct client_auth *auth;       /* -Y/-S, or NULL */
};

/******** WORKERS ********/

static void
worker_notify_cb(evutil_socket_t fd, short what, void *arg)
{
	struct worker *w = arg;
	int *fds;
	size_t n, i;
	bool stop;

	(void)fd;
	(void)what;
	wakeup_consume(&w->wake);
	pthread_mutex_lock(&w->lock);
	fds = w->pending;
	n = w->npending;
	w->pending = NULL;
	w->npending = w->cap = 0;
	stop = w->stop;
	pthread_mutex_unlock(&w->lock);
	for (i = 0; i < n; i++)
		conn_create(w->base, fds[i], w->env, &w->stats, &w->conns);
	free(fds);
	conn_wake_parked(&w->conns);
	if (stop)
		event_base_loopbreak(w->base);
}

static void
worker_wake(struct worker *w)
{
	wakeup_signal(&w->wake);
}

/* Queue `fd` for worker `w`.  Returns false (fd untouched) without memory. */
static bool
worker_hand_off(struct worker *w, int fd)
{
	pthread_mutex_lock(&w->lock);
	if (w->npending == w->cap) {
		size_t cap = w->cap ? w->cap * 2 : 16;
		int *p = realloc(w->pending, cap * sizeof(*p));

		if (p == NULL) {
			pthread_mutex_unlock(&w->lock);
			return false;
		}
		w->pending = p;
		w->cap = cap;
	}
	w->pending[w->npending++] = fd;
	pthread_mutex_unlock(&w->lock);
	worker_wake(w);
	return true;
}

static void *
worker_main(void *arg)
{
	struct worker *w = arg;

	event_base_dispatch(w->base);
	conn_close_all(&w->conns);
	return NULL;
}

static int
worker_start(struct worker *w, const struct proto_env *env)
{
	w->env = env;
	pthread_mutex_init(&w->lock, NULL);
	stats_register(&w->stats);
	w->base = event_base_new();
	if (w->base == NULL || wakeup_open(&w->wake, "worker") != 0)
		return -1;
	w->notify_ev = event_new(w->base, w->wake.fd, EV_READ | EV_PERSIST,
	                         worker_notify_cb, w);
	if (w->notify_ev == NULL || event_add(w->notify_ev, NULL) != 0)
		return -1;
	if (pthread_create(&w->thread, NULL, worker_main, w) != 0)
		return -1;
	pthread_setname_np(w->thread, "cairn-worker");  /* for top -H, perf */
	return 0;
}

static void
worker_stop(struct worker *w)
{
	size_t i;

	pthread_mutex_lock(&w->lock);
	w->stop = true;
	pthread_mutex_unlock(&w->lock);
	worker_wake(w);
	pthread_join(w->thread, NULL);
	for (i = 0; i < w->npending; i++) {
		close(w->pending[i]);
		__atomic_sub_fetch(&conn_stats.curr_connections, 1, __ATOMIC_RELAXED);
	}
	free(w->pending);
	event_free(w->notify_ev);
	wakeup_close(&w->wake);
	event_base_free(w->base);
	pthread_mutex_destroy(&w->lock);
}

/* More writes are durable (WAL synced, or acknowledged by replicas): wake
 * the workers so that parked connections get their replies. */
static void
wake_workers(void *arg)
{
	struct server *srv = arg;
	int i;

	pthread_mutex_lock(&srv->wake_lock);
	for (i = 0; i < srv->awake_workers; i++)
		worker_wake(&srv->workers[i]);
	pthread_mutex_unlock(&srv->wake_lock);
}

/* WAL writer thread: more is written or synced: stream it, and answer
 * connections waiting for their fsync. */
static void
wal_progress_cb(void *arg)
{
	struct server *srv = arg;

	pthread_mutex_lock(&srv->wake_lock);
	if (srv->notify_repl != NULL)
		repl_notify(srv->notify_repl);
	pthread_mutex_unlock(&srv->wake_lock);
	wake_workers(srv);
}

/******** LISTENER ********/

static void
accept_cb(struct evconnlistener *listener, evutil_socket_t fd,
          struct sockaddr *addr, int socklen, void *arg)
{
	struct server *srv = arg;
	struct worker *w;
	int one = 1;

	(void)listener;
	(void)addr;
	(void)socklen;
	if (__atomic_load_n(&conn_stats.curr_connections, __ATOMIC_RELAXED) >=
	    (uint64_t)srv->settings->conn_limit) {
		/* As memcached: say why, then hang up; everyone else goes on. */
		if (write(fd, TOO_MANY_CONNS, strlen(TOO_MANY_CONNS)) < 0)
			log_msg(LOG_INFO, "refusing connection: %s", strerror(errno));
		close(fd);
		__atomic_add_fetch(&conn_stats.rejected_connections, 1, __ATOMIC_RELAXED);
		return;
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	__atomic_add_fetch(&conn_stats.total_connections, 1, __ATOMIC_RELAXED);
	__atomic_add_fetch(&conn_stats.curr_connections, 1, __ATOMIC_RELAXED);
	w = &srv->workers[srv->next_worker];
	srv->next_worker = (srv->next_worker + 1) % srv->nworkers;
	if (!worker_hand_off(w, fd)) {
		close(fd);
		__atomic_sub_fetch(&conn_stats.curr_connections, 1, __ATOMIC_RELAXED);
	}
}

static void
accept_error_cb(struct evconnlistener *listener, void *arg)
{
	(void)listener;
	(void)arg;
	/* EMFILE and friends: the listener retries on the next event. */
	log_msg(LOG_INFO, "accept failed: %s", strerror(errno));
}

/* Bind and listen on the client address before daemonizing, so that a port
 * in use is reported to the user's terminal.  Returns the socket or -1. */
static int
bind_client_socket(const struct settings *s)
{
	struct addrinfo hints = {0}, *res = NULL, *ai;
	char port[16];
	int fd = -1, rc, one = 1;

	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE;
	snprintf(port, sizeof(port), "%d", s->port);
	rc = getaddrinfo(s->listen_addr, port, &hints, &res);
	if (rc != 0) {
		log_msg(LOG_ALWAYS, "cannot resolve listen address %s: %s",
		        s->listen_addr, gai_strerror(rc));
		return -1;
	}
	for (ai = res; ai != NULL; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
		            ai->ai_protocol);
		if (fd < 0)
			continue;
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 &&
		    listen(fd, LISTEN_BACKLOG) == 0)
			break;
		close(fd);
		fd = -1;
	}
	if (fd < 0)
		log_msg(LOG_ALWAYS, "cannot listen on %s:%d: %s", s->listen_addr,
		        s->port, strerror(errno));
	freeaddrinfo(res);
	return fd;
}

/******** PROCESS SETUP ********/

/* -d: until it serves, the daemon's stderr is a pipe to the parent, which
 * waits on it.  A NUL byte means "serving"; anything else is log text. */
#define DAEMON_SERVING '\0'
#define DAEMON_LOG_KEPT 65536   /* the parent keeps the log's last bytes */

/* Write the last line of log[0 .. len) to stderr. */
static void
print_last_line(const char *log, size_t len)
{
	size_t start;

	while (len > 0 && log[len - 1] == '\n')
		len--;
	for (start = len; start > 0 && log[start - 1] != '\n'; start--)
		;
	if (len > start)
		fprintf(stderr, "%.*s\n", (int)(len - start), log + start);
}

/* The -d parent: wait until the daemon serves or exits, and return the
 * exit status the parent should have.  On failure the daemon's last log
 * line (its error) is printed; with -v, everything it logged. */
static int
wait_for_daemon(pid_t pid, int pipe_fd, bool verbose)
{
	static char log[DAEMON_LOG_KEPT];
	size_t len = 0;
	char buf[4096], *serving = NULL;
	ssize_t n;
	int status;

	while (serving == NULL) {
		n = read(pipe_fd, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		serving = memchr(buf, DAEMON_SERVING, (size_t)n);
		if (serving != NULL)
			n = serving - buf;
		if (len + (size_t)n > sizeof(log))  /* keep the tail */
			len = 0;
		memcpy(log + len, buf, (size_t)n);
		len += (size_t)n;
	}
	if (verbose)
		fwrite(log, 1, len, stderr);
	if (serving != NULL)
		return 0;
	if (!verbose)
		print_last_line(log, len);
	while (waitpid(pid, &status, 0) < 0) {
		if (errno != EINTR) {
			fprintf(stderr, "cairn: lost the daemon (pid %ld): %s\n", (long)pid,
			        strerror(errno));
			return 1;
		}
	}
	if (WIFSIGNALED(status)) {
		fprintf(stderr, "cairn: the daemon was killed by signal %d before it served\n",
		        WTERMSIG(status));
		return 1;
	}
	if (WIFEXITED(status) && WEXITSTATUS(status) != 0)
		return WEXITSTATUS(status);
	fprintf(stderr, "cairn: the daemon stopped before it served\n");
	return 1;
}

/* The caller's stderr, kept by a -v daemon to log to once it serves. */
static int daemon_saved_stderr = -1;

/* -d: fork.  The parent never returns: it exits once the daemon serves (0)
 * or has failed (its status, and its error line on stderr), so that
 * `cairn -d` in a script or an init system reports the node's fate.  In the
 * daemon, *ready_fd is the pipe to announce serving on (daemon_ready). */
static int
daemonize(const struct settings *s, int *ready_fd)
{
	int pipefd[2], devnull;
	pid_t pid;

	if (pipe2(pipefd, O_CLOEXEC) != 0) {
		log_msg(LOG_ALWAYS, "-d: pipe: %s", strerror(errno));
		return -1;
	}
	fflush(stderr);
	pid = fork();
	if (pid < 0) {
		log_msg(LOG_ALWAYS, "-d: fork: %s", strerror(errno));
		return -1;
	}
	if (pid > 0) {
		close(pipefd[1]);
		_exit(wait_for_daemon(pid, pipefd[0], s->verbose > 0));
	}
	close(pipefd[0]);
	*ready_fd = pipefd[1];
	if (s->verbose > 0)
		daemon_saved_stderr = fcntl(STDERR_FILENO, F_DUPFD_CLOEXEC, 3);
	dup2(pipefd[1], STDERR_FILENO);
	/* Every path was made absolute by settings_parse(). */
	if (setsid() < 0 || chdir("/") != 0) {
		log_msg(LOG_ALWAYS, "-d: cannot detach: %s", strerror(errno));
		return -1;
	}
	devnull = open("/dev/null", O_RDWR);
	if (devnull < 0)
		return -1;
	dup2(devnull, STDIN_FILENO);
	dup2(devnull, STDOUT_FILENO);
	close(devnull);
	return 0;
}

/* -d: the daemon serves.  Its stderr leaves the pipe for the log file, or
 * with -v the caller's stderr, or else /dev/null (as memcached's), and the
 * parent is told, and exits 0.  A no-op without -d. */
static void
daemon_ready(int *ready_fd)
{
	int fd;

	if (*ready_fd < 0)
		return;
	fd = log_file_fd();
	if (fd < 0)
		fd = daemon_saved_stderr;
	if (fd >= 0) {
		dup2(fd, STDERR_FILENO);
	} else if ((fd = open("/dev/null", O_WRONLY)) >= 0) {
		dup2(fd, STDERR_FILENO);
		close(fd);
	}
	if (daemon_saved_stderr >= 0)
		close(daemon_saved_stderr);
	daemon_saved_stderr = -1;
	if (write(*ready_fd, "", 1) != 1)  /* DAEMON_SERVING */
		log_msg(LOG_ALWAYS, "-d: cannot tell the parent process: %s", strerror(errno));
	close(*ready_fd);
	*ready_fd = -1;
}

/* -P: the pid file is opened at startup (as root, before -u), without
 * truncating it, and written only once the node serves: a second node that
 * fails to start (its data directory in use) leaves the first one's pid in
 * place. */
struct pid_file {
	int fd;           /* -1: none, or written */
	bool created;     /* by us: removed if we never serve */
};

static int
pid_file_open(struct pid_file *pf, const char *path)
{
	pf->fd = -1;
	pf->created = false;
	if (path == NULL)
		return 0;
	pf->fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	if (pf->fd >= 0)
		pf->created = true;
	else if (errno == EEXIST)
		pf->fd = open(path, O_WRONLY | O_CLOEXEC);
	if (pf->fd < 0) {
		log_msg(LOG_ALWAYS, "cannot write pid file %s: %s", path, strerror(errno));
		return -1;
	}
	return 0;
}

static int
pid_file_write(struct pid_file *pf, const char *path)
{
	char line[32];
	int n = snprintf(line, sizeof(line), "%ld\n", (long)getpid()), rc = 0;

	if (pf->fd < 0)
		return 0;
	if (ftruncate(pf->fd, 0) != 0 || write(pf->fd, line, (size_t)n) != n) {
		log_msg(LOG_ALWAYS, "cannot write pid file %s: %s", path, strerror(errno));
		rc = -1;
	}
	close(pf->fd);
	pf->fd = -1;
	pf->created = false;
	return rc;
}

/* Startup failed: close the pid file, and remove it if we made it. */
static void
pid_file_abandon(struct pid_file *pf, const char *path)
{
	if (pf->fd < 0)
		return;
	close(pf->fd);
	pf->fd = -1;
	if (pf->created)
		unlink(path);
}

/* -u USER when started as root (as memcached): who to become, or NULL. */
static int
lookup_user(const struct settings *s, struct passwd **out)
{
	*out = NULL;
	if (getuid() != 0 || s->user == NULL)
		return 0;
	*out = getpwnam(s->user);
	if (*out == NULL) {
		log_msg(LOG_ALWAYS, "-u: no such user '%s'", s->user);
		return -1;
	}
	return 0;
}

/* Create the data directory and any missing parent (./cairn-data/PORT).
 * With -u, what we create belongs to that user, who will write it once
 * privileges are dropped. */
static int
make_data_dir(const char *dir, const struct passwd *pw)
{
	char path[PATH_MAX];
	char *slash;

	snprintf(path, sizeof(path), "%s", dir);
	for (slash = strchr(path + 1, '/');; slash = strchr(slash + 1, '/')) {
		if (slash != NULL)
			*slash = '\0';
		if (mkdir(path, 0755) == 0) {
			if (pw != NULL && chown(path, pw->pw_uid, pw->pw_gid) != 0) {
				log_msg(LOG_ALWAYS, "-u %s: cannot give %s to that user: %s",
				        pw->pw_name, path, strerror(errno));
				return -1;
			}
		} else if (errno != EEXIST) {
			log_msg(LOG_ALWAYS, "cannot create data directory %s: %s", path,
			        strerror(errno));
			return -1;
		}
		if (slash == NULL)
			return 0;
		*slash = '/';
	}
}

/* Become -u's user (a no-op when pw is NULL).  The data directory must
 * then be ours to write: say so now, naming the user, rather than fail
 * later on a file inside it. */
static int
drop_privileges(const struct settings *s, const struct passwd *pw)
{
	if (pw == NULL)
		return 0;
	if (setgroups(0, NULL) < 0 || setgid(pw->pw_gid) < 0 || setuid(pw->pw_uid) < 0) {
		log_msg(LOG_ALWAYS, "-u %s: cannot switch user: %s", s->user, strerror(errno));
		return -1;
	}
	if (!s->ephemeral && access(s->data_dir, R_OK | W_OK | X_OK) != 0) {
		log_msg(LOG_ALWAYS, "-u %s: data directory %s is not writable by user %s "
		        "(chown it, or choose another with --data-dir)", s->user, s->data_dir, s->user);
		return -1;
	}
	return 0;
}

/* Room for -c connections plus our own files. */
static void
raise_fd_limit(const struct settings *s)
{
	struct rlimit rl;
	rlim_t want = (rlim_t)s->conn_limit + 64;

	if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur >= want)
		return;
	rl.rlim_cur = want;
	if (rl.rlim_max < want)
		rl.rlim_max = want;
	if (setrlimit(RLIMIT_NOFILE, &rl) != 0) {
		getrlimit(RLIMIT_NOFILE, &rl);
		log_msg(LOG_ALWAYS, "warning: open file limit is %llu, below -c %d",
		        (unsigned long long)rl.rlim_cur, s->conn_limit);
	}
}

/******** MAIN LOOP ********/

static void
signal_cb(evutil_socket_t sig, short what, void *arg)
{
	struct server *srv = arg;

	(void)what;
	log_msg(LOG_ALWAYS, "signal %d: shutting down", (int)sig);
	event_base_loopbreak(srv->base);
}

/* SIGHUP: reopen the --log-file (logrotate has moved it). */
static void
sighup_cb(evutil_socket_t sig, short what, void *arg)
{
	int rc = log_reopen();

	(void)sig;
	(void)what;
	(void)arg;
	if (rc != 0)
		log_msg(LOG_ALWAYS, "SIGHUP: cannot reopen the log file: %s", strerror(-rc));
	else
		log_msg(LOG_INFO, "SIGHUP: log file reopened");
}

static void
sweep_cb(evutil_socket_t fd, short what, void *arg)
{
	struct server *srv = arg;
	struct cache_stats cs;
	size_t budget;

	(void)fd;
	(void)what;
	store_run_due_flush(srv->env.store);
	cache_get_stats(srv->env.cache, &cs);
	budget = (size_t)((UINT64_C(1) << cs.hash_power) / 10);
	if (budget < SWEEP_BUCKETS_MIN)
		budget = SWEEP_BUCKETS_MIN;
	cache_sweep(srv->env.cache, budget);
}

/* Once a second: the warm-up's progress line (its loaders run at idle
 * priority and may not get the CPU to log it themselves). */
static void
tick_cb(evutil_socket_t fd, short what, void *arg)
{
	struct server *srv = arg;

	(void)fd;
	(void)what;
	persist_tick(srv->env.persist);
}

static int
server_start_events(struct server *srv, int listen_fd)
{
	const struct timeval one_second = {1, 0};

	srv->base = event_base_new();
	if (srv->base == NULL)
		return -1;
	srv->listener = evconnlistener_new(srv->base, accept_cb, srv,
	                                   LEV_OPT_CLOSE_ON_FREE, -1, listen_fd);
	if (srv->listener == NULL)
		return -1;
	evconnlistener_set_error_cb(srv->listener, accept_error_cb);
	srv->sigterm_ev = evsignal_new(srv->base, SIGTERM, signal_cb, srv);
	srv->sigint_ev = evsignal_new(srv->base, SIGINT, signal_cb, srv);
	srv->sighup_ev = evsignal_new(srv->base, SIGHUP, sighup_cb, srv);
	if (srv->sigterm_ev == NULL || srv->sigint_ev == NULL || srv->sighup_ev == NULL ||
	    event_add(srv->sigterm_ev, NULL) != 0 || event_add(srv->sigint_ev, NULL) != 0 ||
	    event_add(srv->sighup_ev, NULL) != 0)
		return -1;
	if (srv->env.persist != NULL) {
		srv->tick_ev = event_new(srv->base, -1, EV_PERSIST, tick_cb, srv);
		if (srv->tick_ev == NULL || event_add(srv->tick_ev, &one_second) != 0)
			return -1;
	}
	if (srv->settings->sweeper) {
		srv->sweep_ev = event_new(srv->base, -1, EV_PERSIST, sweep_cb, srv);
		if (srv->sweep_ev == NULL || event_add(srv->sweep_ev, &one_second) != 0)
			return -1;
	}
	return 0;
}

static void
server_teardown(struct server *srv)
{
	int i;

	/* The metrics thread reads the cache, store and replication: first. */
	metrics_stop(srv->metrics);
	if (srv->listener != NULL)
		evconnlistener_free(srv->listener);
	pthread_mutex_lock(&srv->wake_lock);
	srv->awake_workers = 0;
	srv->notify_repl = NULL;
	pthread_mutex_unlock(&srv->wake_lock);
	for (i = 0; i < srv->nworkers; i++)
		worker_stop(&srv->workers[i]);
	repl_stop(srv->env.repl);
	/* Every acknowledged write is in the WAL buffer: write and fsync it. */
	persist_close(srv->env.persist);
	free(srv->workers);
	if (srv->sweep_ev != NULL)
		event_free(srv->sweep_ev);
	if (srv->tick_ev != NULL)
		event_free(srv->tick_ev);
	if (srv->sigterm_ev != NULL)
		event_free(srv->sigterm_ev);
	if (srv->sigint_ev != NULL)
		event_free(srv->sigint_ev);
	if (srv->sighup_ev != NULL)
		event_free(srv->sighup_ev);
	if (srv->base != NULL)
		event_base_free(srv->base);
	store_destroy(srv->env.store);
	cache_destroy(srv->env.cache);
	client_auth_free(srv->auth);
	pthread_mutex_destroy(&srv->wake_lock);
}

static int
open_persistence(struct server *srv)
{
	const struct settings *s = srv->settings;
	struct persist_config pcfg = {
		.data_dir = s->data_dir,
		.fsync = s->fsync,
		.segment_size = s->wal_segment_size,
		.backlog = s->wal_backlog,
	};

	if (s->ephemeral)
		return 0;
	return persist_open(&pcfg, srv->env.store, wal_progress_cb, srv, &srv->env.persist);
}

/* Every persistent node listens for replicas (any node may become primary). */
static int
start_replication(struct server *srv)
{
	const struct settings *s = srv->settings;
	struct repl_config rcfg = {
		.listen_addr = s->listen_addr,
		.client_port = s->port,
		.repl_port = s->repl_port,
		.node_id = s->node_id,
		.replica_of = s->replica_of,
		.sync_replicas = s->sync_replicas,
		.sync_timeout_ms = s->sync_timeout_ms,
	};
	struct repl *repl;
	char err[300];
	char *secret = NULL;
	int rc;

	if (srv->env.persist == NULL)
		return 0;
	if (s->secret_file != NULL) {
		secret = repl_auth_load_secret(s->secret_file, &rcfg.secret_len, err, sizeof(err));
		if (secret == NULL) {
			log_msg(LOG_ALWAYS, "--cluster-secret-file: %s", err);
			return -EINVAL;
		}
		rcfg.secret = secret;
	}
	rc = repl_start(&rcfg, srv->env.store, srv->env.persist, wake_workers, srv, &repl);
	free(secret);
	if (rc == 0) {
		srv->env.repl = repl;
		pthread_mutex_lock(&srv->wake_lock);
		srv->notify_repl = repl;
		pthread_mutex_unlock(&srv->wake_lock);
	}
	return rc;
}

/* Everything before recovery that may still be told to the terminal: the
 * log file, the client and metrics sockets (bound as root, before -u), the
 * pid file, -d, the data directory, -u.  Returns 0 or -1 (said in the log). */
static int
server_prepare(struct server *srv, int *listen_fd, struct pid_file *pf, int *ready_fd)
{
	const struct settings *s = srv->settings;
	struct passwd *pw;
	int rc;

	if (s->log_file != NULL && (rc = log_open_file(s->log_file)) != 0) {
		log_msg(LOG_ALWAYS, "--log-file: cannot open %s: %s", s->log_file, strerror(-rc));
		return -1;
	}
	raise_fd_limit(s);
	*listen_fd = bind_client_socket(s);
	if (*listen_fd < 0)
		return -1;
	if (s->metrics_port != 0 &&
	    (srv->metrics = metrics_open(s->listen_addr, s->metrics_port)) == NULL)
		return -1;
	if (pid_file_open(pf, s->pid_file) != 0)
		return -1;
	if (s->daemonize && daemonize(s, ready_fd) != 0)
		return -1;
	if (lookup_user(s, &pw) != 0 ||
	    (!s->ephemeral && make_data_dir(s->data_dir, pw) != 0) ||
	    drop_privileges(s, pw) != 0)
		return -1;
	if (srv->metrics != NULL && metrics_start(srv->metrics) != 0)
		return -1;
	return 0;
}

int
server_run(const struct settings *s)
{
	struct server srv = {0};
	struct cache_config cfg = {
		.mem_limit = s->mem_limit,
		.item_size_max = s->item_size_max,
		.hashpower = s->hashpower,
		.use_cas = s->use_cas,
	};
	struct pid_file pid_file = {-1, false};
	char auth_err[PATH_MAX + 128];
	sigset_t stop_signals, old_mask;
	int listen_fd = -1, ready_fd = -1, i, status = 1;

	signal(SIGPIPE, SIG_IGN);
	/* A SIGTERM or SIGINT that arrives while we start (clients can connect
	 * as soon as the socket is bound) must stop us cleanly, not kill us,
	 * and a SIGHUP (logrotate) must not kill us either: keep them blocked,
	 * in this thread and in every thread started below, until their
	 * handlers are installed and the workers run; a pending one is then
	 * delivered to this thread's event loop. */
	sigemptyset(&stop_signals);
	sigaddset(&stop_signals, SIGTERM);
	sigaddset(&stop_signals, SIGINT);
	sigaddset(&stop_signals, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &stop_signals, &old_mask);
	pthread_mutex_init(&srv.wake_lock, NULL);
	srv.settings = s;
	/* Read before -u drops privileges: the file may be readable by root
	 * only, as a password file should be. */
	if (s->auth_file != NULL &&
	    client_auth_load(s->auth_file, &srv.auth, auth_err, sizeof(auth_err)) != 0) {
		log_msg(LOG_ALWAYS, "client auth file %s", auth_err);
		goto out;
	}
	srv.env.auth = srv.auth;
	if (server_prepare(&srv, &listen_fd, &pid_file, &ready_fd) != 0) {
		if (listen_fd >= 0)
			close(listen_fd);
		goto out;
	}
	srv.env.settings = s;
	srv.env.started = time(NULL);
	srv.env.worker_threads = s->threads;
	srv.env.cache = cache_create(&cfg);
	srv.env.store = srv.env.cache != NULL ? store_create(srv.env.cache) : NULL;
	srv.workers = calloc((size_t)s->threads, sizeof(*srv.workers));
	if (srv.env.store == NULL || srv.workers == NULL) {
		log_msg(LOG_ALWAYS, "out of memory at startup");
		close(listen_fd);
		goto out;
	}
	if (open_persistence(&srv) != 0 || start_replication(&srv) != 0) {
		close(listen_fd);
		goto out;
	}
	if (server_start_events(&srv, listen_fd) != 0) {
		log_msg(LOG_ALWAYS, "cannot set up the event loop");
		if (srv.listener == NULL)
			close(listen_fd);
		goto out;
	}
	for (i = 0; i < s->threads; i++) {
		if (worker_start(&srv.workers[i], &srv.env) != 0) {
			log_msg(LOG_ALWAYS, "cannot start worker thread %d", i);
			goto out;
		}
		srv.nworkers++;
		pthread_mutex_lock(&srv.wake_lock);
		srv.awake_workers = srv.nworkers;
		pthread_mutex_unlock(&srv.wake_lock);
	}
	log_msg(LOG_ALWAYS, "cairn %s serving on %s:%d (%d threads, %zu MB, %s)",
	        CAIRN_VERSION, s->listen_addr, s->port, s->threads,
	        s->mem_limit / (1024 * 1024), s->ephemeral ? "ephemeral" : s->data_dir);
	/* Under systemd (Type=notify), and for the parent of -d, the node is
	 * up from here: every request is answered, even while the checkpoint
	 * still loads (warm-up).  sd_notify is a no-op without $NOTIFY_SOCKET. */
	if (pid_file_write(&pid_file, s->pid_file) != 0)
		goto out;
	if (srv.metrics != NULL)
		metrics_serving(srv.metrics, &srv.env);
	sd_notifyf(0, "READY=1\nSTATUS=serving on %s:%d\nMAINPID=%ld", s->listen_addr, s->port,
	           (long)getpid());
	daemon_ready(&ready_fd);
	log_set_echo(false);
	pthread_sigmask(SIG_SETMASK, &old_mask, NULL);
	event_base_dispatch(srv.base);
	status = 0;
out:
	server_teardown(&srv);
	pid_file_abandon(&pid_file, s->pid_file);
	if (s->pid_file != NULL && status == 0)
		unlink(s->pid_file);
	if (status == 0)
		log_msg(LOG_ALWAYS, "stopped");
	return status;
}
