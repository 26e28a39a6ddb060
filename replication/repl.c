/* Replication: the facade, its thread, the node's role (promote,
 * replicaof), stats.  The only module that knows both sides: the primary
 * side (primary.h) serves our replicas, the replica side (replica.h)
 * follows our primary; the role decides which one works. */
#include "replication/repl.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <inttypes.h>
#include <netdb.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "replication/primary.h"
#include "replication/replica.h"
#include "replication/repl_internal.h"
#include "storage/log.h"
#include "storage/persist.h"
#include "storage/store.h"
#include "storage/wakeup.h"
#include "storage/wal.h"

#define ROLE_QUEUE 16
#define ROLE_RESULTS 64

struct role_request {
	uint64_t ticket;
	bool promote;                  /* else replicaof host:port */
	char host[256];
	int port;
};

struct repl {
	char *listen_addr;
	char *node_id;
	int repl_port;
	int sync_replicas;
	int sync_timeout_ms;
	struct store *store;
	struct persist *persist;

	/* The replication thread. */
	struct event_base *base;
	pthread_t thread;
	struct wakeup loop_wake;       /* work for the thread */
	struct event *notify_ev;
	struct event *tick_ev;         /* once a second */
	struct evconnlistener *listener;

	struct primary_side *primary;  /* serving our replicas */
	struct replica_side *replica_side; /* following our primary */

	/* The role: changed by the replication thread (run_role_requests),
	 * read by any thread (stats, repl_is_replica). */
	pthread_mutex_t lock;
	bool replica;                  /* also read atomically without lock */
	char primary_host[256];
	int primary_port;
	bool stop;
	/* promote/replicaof requests, carried out in order by the thread;
	 * the results of the last ROLE_RESULTS are kept for their callers. */
	struct role_request requests[ROLE_QUEUE];
	int nrequests;
	uint64_t next_ticket;
	uint64_t done_ticket;          /* atomic */
	struct {
		uint64_t ticket;
		int rc;
	} results[ROLE_RESULTS];
	repl_wake_fn *wake;            /* a role change is done */
	void *wake_arg;
};

static void
thread_wake(struct repl *r)
{
	wakeup_signal(&r->loop_wake);
}

/******** THE REPLICATION THREAD ********/

static void run_role_requests(struct repl *r);

/* The role or the primary changed (or the thread starts): set both sides
 * to work accordingly (replication thread). */
static void
apply_repoint(struct repl *r)
{
	char host[sizeof(r->primary_host)];
	bool replica;
	int port;

	pthread_mutex_lock(&r->lock);
	replica = r->replica;
	snprintf(host, sizeof(host), "%s", r->primary_host);
	port = r->primary_port;
	pthread_mutex_unlock(&r->lock);
	primary_side_set_serving(r->primary, !replica);
	if (replica)
		replica_side_follow(r->replica_side, host, port);
	else
		replica_side_unfollow(r->replica_side);
}

static void
notify_cb(evutil_socket_t fd, short what, void *arg)
{
	struct repl *r = arg;
	bool stop;

	(void)fd;
	(void)what;
	wakeup_consume(&r->loop_wake);
	pthread_mutex_lock(&r->lock);
	stop = r->stop;
	pthread_mutex_unlock(&r->lock);
	if (stop) {
		event_base_loopbreak(r->base);
		return;
	}
	run_role_requests(r);
	primary_side_pump(r->primary);
	replica_side_on_progress(r->replica_side);
}

static void
tick_cb(evutil_socket_t fd, short what, void *arg)
{
	struct repl *r = arg;

	(void)fd;
	(void)what;
	primary_side_tick(r->primary);
	replica_side_tick(r->replica_side);
}

static void
accept_cb(struct evconnlistener *listener, evutil_socket_t fd,
          struct sockaddr *addr, int socklen, void *arg)
{
	char host[NI_MAXHOST], serv[NI_MAXSERV], peer[NI_MAXHOST + NI_MAXSERV + 2];

	(void)listener;
	if (getnameinfo(addr, (socklen_t)socklen, host, sizeof(host), serv, sizeof(serv),
	                NI_NUMERICHOST | NI_NUMERICSERV) != 0)
		snprintf(peer, sizeof(peer), "?");
	else
		snprintf(peer, sizeof(peer), "%s:%s", host, serv);
	primary_side_accept(((struct repl *)arg)->primary, fd, peer);
}

static void *
repl_main(void *arg)
{
	struct repl *r = arg;

	apply_repoint(r);
	event_base_dispatch(r->base);
	primary_side_set_serving(r->primary, false);
	replica_side_unfollow(r->replica_side);
	return NULL;
}

/******** SETUP ********/

static int
bind_listener(struct repl *r)
{
	struct addrinfo hints = {0}, *res = NULL;
	char port[16];
	int rc;

	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE;
	snprintf(port, sizeof(port), "%d", r->repl_port);
	rc = getaddrinfo(r->listen_addr, port, &hints, &res);
	if (rc != 0) {
		log_msg(LOG_ALWAYS, "replication: cannot resolve %s: %s", r->listen_addr, gai_strerror(rc));
		return -EINVAL;
	}
	r->listener = evconnlistener_new_bind(r->base, accept_cb, r,
	                                      LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE |
	                                      LEV_OPT_CLOSE_ON_EXEC, -1, res->ai_addr,
	                                      (int)res->ai_addrlen);
	freeaddrinfo(res);
	if (r->listener == NULL) {
		log_msg(LOG_ALWAYS, "replication: cannot listen on %s:%d: %s", r->listen_addr,
		        r->repl_port, strerror(errno));
		return -EADDRINUSE;
	}
	return 0;
}

/* "HOST:PORT" into host and port. */
static bool
split_host_port(const char *s, char *host, size_t hostlen, int *port)
{
	const char *colon = strrchr(s, ':');
	char *end;
	long p;

	if (colon == NULL || colon == s || (size_t)(colon - s) >= hostlen)
		return false;
	p = strtol(colon + 1, &end, 10);
	if (*end != '\0' || p < 1 || p > 65535)
		return false;
	memcpy(host, s, (size_t)(colon - s));
	host[colon - s] = '\0';
	*port = (int)p;
	return true;
}

/* Free what repl_start() set up (any part of it); the thread is not running. */
static void
repl_free(struct repl *r)
{
	if (r->listener != NULL)
		evconnlistener_free(r->listener);
	if (r->notify_ev != NULL)
		event_free(r->notify_ev);
	if (r->tick_ev != NULL)
		event_free(r->tick_ev);
	primary_side_destroy(r->primary);
	replica_side_destroy(r->replica_side);
	wakeup_close(&r->loop_wake);
	if (r->base != NULL)
		event_base_free(r->base);
	pthread_mutex_destroy(&r->lock);
	free(r->node_id);
	free(r->listen_addr);
	free(r);
}

void
repl_stop(struct repl *r)
{
	if (r == NULL)
		return;
	pthread_mutex_lock(&r->lock);
	r->stop = true;
	pthread_mutex_unlock(&r->lock);
	thread_wake(r);
	pthread_join(r->thread, NULL);
	repl_free(r);
}

int
repl_start(const struct repl_config *cfg, struct store *store, struct persist *persist,
           repl_wake_fn *wake, void *wake_arg, struct repl **out)
{
	const struct timeval one_second = {REPL_HEARTBEAT_SECONDS, 0};
	struct repl *r = calloc(1, sizeof(*r));
	struct primary_side_config pcfg = {
		.node_id = cfg->node_id,
		.secret = cfg->secret,
		.secret_len = cfg->secret_len,
		.sync_replicas = cfg->sync_replicas,
	};
	struct replica_side_config rcfg = {
		.node_id = cfg->node_id,
		.listen_addr = cfg->listen_addr,
		.client_port = cfg->client_port,
		.secret = cfg->secret,
		.secret_len = cfg->secret_len,
	};
	struct persist_identity id;
	int rc = -ENOMEM;

	if (r == NULL)
		return -ENOMEM;
	pthread_mutex_init(&r->lock, NULL);
	r->loop_wake.fd = -1;
	r->node_id = strdup(cfg->node_id);
	r->listen_addr = strdup(cfg->listen_addr);
	r->repl_port = cfg->repl_port;
	r->sync_replicas = cfg->sync_replicas;
	r->sync_timeout_ms = cfg->sync_timeout_ms;
	r->store = store;
	r->persist = persist;
	r->wake = wake;
	r->wake_arg = wake_arg;

	/* Whom to follow: the flag, else what we followed before a restart. */
	persist_get_identity(persist, &id);
	if (cfg->replica_of != NULL) {
		if (!split_host_port(cfg->replica_of, r->primary_host, sizeof(r->primary_host), &r->primary_port)) {
			rc = -EINVAL;
			goto fail;
		}
		snprintf(id.replica_of, sizeof(id.replica_of), "%s", cfg->replica_of);
		persist_set_identity(persist, &id);
	} else if (id.replica_of[0] != '\0' &&
	           !split_host_port(id.replica_of, r->primary_host, sizeof(r->primary_host), &r->primary_port)) {
		id.replica_of[0] = '\0';
	}
	r->replica = r->primary_host[0] != '\0';
	store_set_follower(store, r->replica);

	if (r->node_id == NULL || r->listen_addr == NULL)
		goto fail;
	r->base = event_base_new();
	if (r->base == NULL || wakeup_open(&r->loop_wake, "replication") != 0)
		goto fail;
	r->primary = primary_side_create(&pcfg, r->base, persist, wake, wake_arg);
	r->replica_side = replica_side_create(&rcfg, r->base, store, persist);
	r->notify_ev = event_new(r->base, r->loop_wake.fd, EV_READ | EV_PERSIST, notify_cb, r);
	r->tick_ev = event_new(r->base, -1, EV_PERSIST, tick_cb, r);
	if (r->primary == NULL || r->replica_side == NULL || r->notify_ev == NULL || r->tick_ev == NULL)
		goto fail;
	if (event_add(r->notify_ev, NULL) != 0 || event_add(r->tick_ev, &one_second) != 0) {
		rc = -ENOMEM;
		goto fail;
	}
	if ((rc = bind_listener(r)) != 0)
		goto fail;
	if (pthread_create(&r->thread, NULL, repl_main, r) != 0) {
		rc = -EAGAIN;
		goto fail;
	}
	pthread_setname_np(r->thread, "cairn-repl");
	log_msg(LOG_ALWAYS, "replication: listening on %s:%d%s%s", r->listen_addr, r->repl_port,
	        r->replica ? ", replica of " : " as primary", r->replica ? id.replica_of : "");
	*out = r;
	return 0;
fail:
	repl_free(r);
	return rc;
}

/******** THREAD-SAFE QUERIES AND COMMANDS ********/

bool
repl_is_replica(struct repl *r)
{
	return r != NULL && __atomic_load_n(&r->replica, __ATOMIC_ACQUIRE);
}

void
repl_notify(struct repl *r)
{
	thread_wake(r);
}

int
repl_sync_replicas(const struct repl *r)
{
	return r != NULL ? r->sync_replicas : 0;
}

int
repl_sync_timeout_ms(const struct repl *r)
{
	return r->sync_timeout_ms;
}

uint64_t
repl_quorum_lsn(struct repl *r)
{
	return primary_side_quorum_lsn(r->primary);
}

/******** ROLE CHANGES ********/

/* promote and replicaof are queued by the worker that reads the command and
 * carried out here, on the replication thread, which also applies the
 * stream: a promotion can never interleave with a half-applied batch, and
 * the identity's LMDB commit never blocks a worker.  The worker parks the
 * client's connection until repl_request_result() says the ticket is done,
 * then answers.  Each returns 0 or a negative errno. */
static int
do_promote(struct repl *r)
{
	struct persist_identity id;
	int rc;

	if (!repl_is_replica(r))
		return 0;
	/* From here on no record of the old primary reaches the log, so the
	 * fork point is exact. */
	store_set_follower(r->store, false);
	persist_get_identity(r->persist, &id);
	snprintf(id.prev_history_id, sizeof(id.prev_history_id), "%s", id.history_id);
	id.fork_lsn = persist_last_lsn(r->persist);
	id.epoch++;
	id.replica_of[0] = '\0';
	/* The new epoch is durable (and stamped on the log) before any write
	 * of the new term is accepted. */
	if ((rc = persist_new_history_id(id.history_id, sizeof(id.history_id))) != 0 ||
	    (rc = persist_set_identity(r->persist, &id)) != 0) {
		store_set_follower(r->store, true);  /* still the replica we were */
		return rc;
	}
	pthread_mutex_lock(&r->lock);
	__atomic_store_n(&r->replica, false, __ATOMIC_RELEASE);
	r->primary_host[0] = '\0';
	pthread_mutex_unlock(&r->lock);
	apply_repoint(r);
	log_msg(LOG_ALWAYS, "replication: promoted to primary: epoch %u, history %s (forked from %s at LSN %"
	        PRIu64 ")", id.epoch, id.history_id, id.prev_history_id, id.fork_lsn);
	return 0;
}

static int
do_replicaof(struct repl *r, const char *host, int port)
{
	struct persist_identity id;
	bool same;
	int rc;

	pthread_mutex_lock(&r->lock);
	same = r->replica && r->primary_port == port && strcmp(r->primary_host, host) == 0;
	pthread_mutex_unlock(&r->lock);
	if (same)
		return 0;
	persist_get_identity(r->persist, &id);
	snprintf(id.replica_of, sizeof(id.replica_of), "%s:%d", host, port);
	if ((rc = persist_set_identity(r->persist, &id)) != 0)
		return rc;
	/* Writes are refused from here on (repl_is_replica), then the store
	 * takes only the new primary's records. */
	pthread_mutex_lock(&r->lock);
	snprintf(r->primary_host, sizeof(r->primary_host), "%s", host);
	r->primary_port = port;
	__atomic_store_n(&r->replica, true, __ATOMIC_RELEASE);
	pthread_mutex_unlock(&r->lock);
	store_set_follower(r->store, true);
	apply_repoint(r);
	log_msg(LOG_ALWAYS, "replication: now a replica of %s:%d", host, port);
	return 0;
}

/* Carry out the queued role changes, in order (replication thread). */
static void
run_role_requests(struct repl *r)
{
	for (;;) {
		struct role_request req;
		int rc;

		pthread_mutex_lock(&r->lock);
		if (r->nrequests == 0) {
			pthread_mutex_unlock(&r->lock);
			return;
		}
		req = r->requests[0];
		memmove(r->requests, r->requests + 1, --r->nrequests * sizeof(r->requests[0]));
		pthread_mutex_unlock(&r->lock);
		rc = req.promote ? do_promote(r) : do_replicaof(r, req.host, req.port);
		pthread_mutex_lock(&r->lock);
		r->results[req.ticket % ROLE_RESULTS].ticket = req.ticket;
		r->results[req.ticket % ROLE_RESULTS].rc = rc;
		__atomic_store_n(&r->done_ticket, req.ticket, __ATOMIC_RELEASE);
		pthread_mutex_unlock(&r->lock);
		r->wake(r->wake_arg);
	}
}

static int
queue_role_request(struct repl *r, bool promote, const char *host, int port, uint64_t *ticket)
{
	struct role_request *req;

	pthread_mutex_lock(&r->lock);
	if (r->nrequests == ROLE_QUEUE) {
		pthread_mutex_unlock(&r->lock);
		return -EBUSY;
	}
	req = &r->requests[r->nrequests++];
	req->ticket = *ticket = ++r->next_ticket;
	req->promote = promote;
	snprintf(req->host, sizeof(req->host), "%s", host);
	req->port = port;
	pthread_mutex_unlock(&r->lock);
	thread_wake(r);
	return 0;
}

int
repl_request_promote(struct repl *r, uint64_t *ticket)
{
	return queue_role_request(r, true, "", 0, ticket);
}

int
repl_request_replicaof(struct repl *r, const char *host, int port, uint64_t *ticket)
{
	if (host[0] == '\0' || strlen(host) >= sizeof(r->primary_host) || port < 1 || port > 65535)
		return -EINVAL;
	return queue_role_request(r, false, host, port, ticket);
}

int
repl_request_result(struct repl *r, uint64_t ticket)
{
	int rc = 1;

	if (__atomic_load_n(&r->done_ticket, __ATOMIC_ACQUIRE) < ticket)
		return 0;
	pthread_mutex_lock(&r->lock);
	if (r->results[ticket % ROLE_RESULTS].ticket == ticket && r->results[ticket % ROLE_RESULTS].rc != 0)
		rc = r->results[ticket % ROLE_RESULTS].rc;
	pthread_mutex_unlock(&r->lock);
	return rc;
}

/* Every retained position of the log (storage/wal.h slots): the
 * checkpointer's and each known replica's, connected or not. */
static void
write_slot_stats(struct repl *r, repl_stat_fn *emit, void *arg)
{
	struct wal_slot_info slots[REPL_MAX_REPLICAS + 4];
	size_t n = persist_slot_list(r->persist, slots, sizeof(slots) / sizeof(slots[0])), i;
	char name[32], value[128];

	for (i = 0; i < n && i < sizeof(slots) / sizeof(slots[0]); i++) {
		snprintf(name, sizeof(name), "slot%zu", i);
		snprintf(value, sizeof(value), "name=%.*s,lsn=%" PRIu64, WAL_SLOT_NAME_MAX, slots[i].name,
		         slots[i].lsn);
		emit(arg, name, value);
	}
}

static void
emit_u64(repl_stat_fn *emit, void *arg, const char *name, uint64_t v)
{
	char buf[24];

	snprintf(buf, sizeof(buf), "%" PRIu64, v);
	emit(arg, name, buf);
}

void
repl_write_stats(struct repl *r, repl_stat_fn *emit, void *arg)
{
	struct persist_identity id;
	struct repl_counters sum = {0};
	uint64_t lsn = persist_last_lsn(r->persist);
	bool replica;
	char buf[320];

	persist_get_identity(r->persist, &id);
	pthread_mutex_lock(&r->lock);
	emit(arg, "role", r->replica ? "replica" : "primary");
	emit(arg, "node_id", r->node_id);
	snprintf(buf, sizeof(buf), "%s:%d", r->listen_addr, r->repl_port);
	emit(arg, "repl_addr", buf);
	snprintf(buf, sizeof(buf), "%u", id.epoch);
	emit(arg, "epoch", buf);
	emit(arg, "history_id", id.history_id);
	snprintf(buf, sizeof(buf), "%" PRIu64, lsn);
	emit(arg, "lsn", buf);
	if (id.prev_history_id[0] != '\0') {
		emit(arg, "prev_history_id", id.prev_history_id);
		snprintf(buf, sizeof(buf), "%" PRIu64, id.fork_lsn);
		emit(arg, "fork_lsn", buf);
	}
	replica = r->replica;
	snprintf(buf, sizeof(buf), "%s:%d", r->primary_host, r->primary_port);
	pthread_mutex_unlock(&r->lock);
	if (replica) {
		emit(arg, "primary", buf);
		replica_side_write_stats(r->replica_side, lsn, emit, arg);
	} else {
		primary_side_write_stats(r->primary, emit, arg);
	}
	primary_side_counters(r->primary, &sum);
	replica_side_counters(r->replica_side, &sum);
	emit_u64(emit, arg, "full_syncs", sum.full_syncs);
	emit_u64(emit, arg, "partial_syncs", sum.partial_syncs);
	emit_u64(emit, arg, "bytes_sent", sum.bytes_sent);
	emit_u64(emit, arg, "bytes_received", sum.bytes_received);
	emit_u64(emit, arg, "discarded_changes", sum.discarded_changes);
	write_slot_stats(r, emit, arg);
}
