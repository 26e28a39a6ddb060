/* Replication, replica side: connect to the primary, prove the secret, get
 * a partial or full resync, apply the stream, acknowledge, reconnect.
 *
 *   LINK_DOWN --connect--> LINK_CONNECTING --Welcome FULL--> LINK_SYNCING
 *       ^                        |                               |
 *       |                  Welcome PARTIAL                  SnapshotEnd
 *       |                        v                               v
 *       +--- lost, silent 5 s, refused, bad frame ------------ LINK_UP
 *
 * Every record goes through the store (storage/store.h), which appends it to
 * our own WAL under the primary's LSN and epoch whatever our memory holds,
 * then applies it to memory, so a replica is warm after its own restart,
 * resumes partially, and its LSN always reaches its primary's.  Acks carry
 * the LSN written to our WAL.  Reconnects back off from 100 ms to 5 s.
 */
#include "replication/replica.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <inttypes.h>
#include <netdb.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "replication/auth.h"
#include "storage/cache.h"
#include "storage/log.h"
#include "storage/persist.h"
#include "storage/store.h"
#include "storage/wal.h"

#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 5000

enum link_stage {
	R_CHALLENGE,  /* connected, waiting for the primary's Challenge */
	R_WELCOME,    /* Hello sent */
	R_SNAPSHOT,   /* full resync in progress */
	R_STREAM,     /* applying WAL batches */
};

/* The replica side's own state.  The replication thread runs it; `stats
 * replication` reads what is under `lock` from any thread. */
struct replica_side {
	char *node_id;
	char *listen_addr;
	int client_port;
	char *secret;                 /* NULL: the primary asks for none */
	size_t secret_len;
	struct event_base *base;
	struct store *store;
	struct persist *persist;

	bool following;               /* replication thread only */
	struct replica_link *link;    /* replication thread only */
	struct event *retry_ev;       /* reconnect after backoff_ms */
	int backoff_ms;

	pthread_mutex_t lock;         /* what stats read: */
	char primary_host[256];       /* the primary followed */
	int primary_port;
	enum link_state link_state;
	uint64_t primary_lsn;         /* atomic: from the primary's heartbeats */
	struct repl_counters counters; /* atomics */
};

struct replica_link {
	struct replica_side *rs;
	struct bufferevent *bev;
	enum link_stage stage;
	time_t last_heard;
	uint64_t acked_sent;
	struct repl_wire_scratch scratch; /* frames split across input chunks */
	struct persist_identity next_id;  /* adopted at SnapshotEnd */
	char host[256];                   /* the primary it dials */
	int port;
};

static void set_link_state(struct replica_side *rs, enum link_state st)
{
	pthread_mutex_lock(&rs->lock);
	rs->link_state = st;
	pthread_mutex_unlock(&rs->lock);
}

static void
send_frame(struct replica_link *l, const Cairn__Repl__Frame *f)
{
	size_t n = repl_wire_send(bufferevent_get_output(l->bev), f);

	__atomic_add_fetch(&l->rs->counters.bytes_sent, n, __ATOMIC_RELAXED);
}

static void link_restart(struct replica_side *rs);
static void link_close(struct replica_side *rs);

static void
retry_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	link_restart(arg);
}

/* Drop the link and try again after the backoff. */
static void
link_lost(struct replica_side *rs, const char *why)
{
	struct timeval tv;

	if (rs->link != NULL)
		log_msg(LOG_ALWAYS, "replication: link to %s:%d down: %s", rs->link->host,
		        rs->link->port, why);
	link_close(rs);
	if (!rs->following)
		return;
	set_link_state(rs, LINK_DOWN);
	rs->backoff_ms = rs->backoff_ms == 0 ? BACKOFF_MIN_MS : rs->backoff_ms * 2;
	if (rs->backoff_ms > BACKOFF_MAX_MS)
		rs->backoff_ms = BACKOFF_MAX_MS;
	tv.tv_sec = rs->backoff_ms / 1000;
	tv.tv_usec = (rs->backoff_ms % 1000) * 1000;
	event_add(rs->retry_ev, &tv);
}

static void
link_close(struct replica_side *rs)
{
	struct replica_link *l = rs->link;

	if (l == NULL)
		return;
	if (l->stage == R_SNAPSHOT)
		persist_full_sync_abort(rs->persist);
	bufferevent_free(l->bev);
	repl_wire_scratch_free(&l->scratch);
	free(l);
	rs->link = NULL;
	set_link_state(rs, rs->following ? LINK_DOWN : LINK_NONE);
}

static void
send_ack(struct replica_link *l, uint64_t lsn)
{
	Cairn__Repl__Frame f = CAIRN__REPL__FRAME__INIT;
	Cairn__Repl__Ack ack = CAIRN__REPL__ACK__INIT;

	ack.lsn = lsn;
	f.msg_case = CAIRN__REPL__FRAME__MSG_ACK;
	f.ack = &ack;
	send_frame(l, &f);
	l->acked_sent = lsn;
}

static void
handle_challenge(struct replica_link *l, const Cairn__Repl__Challenge *c)
{
	struct replica_side *rs = l->rs;
	Cairn__Repl__Frame f = CAIRN__REPL__FRAME__INIT;
	Cairn__Repl__Hello h = CAIRN__REPL__HELLO__INIT;
	struct persist_identity id;
	uint8_t proof[REPL_PROOF_SIZE];
	char addr[300];

	persist_get_identity(rs->persist, &id);
	snprintf(addr, sizeof(addr), "%s:%d", rs->listen_addr, rs->client_port);
	h.protocol_version = REPL_PROTOCOL_VERSION;
	h.node_id = rs->node_id;
	h.history_id = id.history_id;
	h.last_lsn = persist_last_lsn(rs->persist);
	h.epoch = id.epoch;
	h.listen_addr = addr;
	if (rs->secret != NULL && c->nonce.len == REPL_NONCE_SIZE) {
		repl_auth_prove(rs->secret, rs->secret_len, c->nonce.data, proof);
		h.auth_proof.data = proof;
		h.auth_proof.len = sizeof(proof);
	}
	f.msg_case = CAIRN__REPL__FRAME__MSG_HELLO;
	f.hello = &h;
	send_frame(l, &f);
	l->stage = R_WELCOME;
}

/* Forget our history so that the next handshake asks for a full resync. */
static void
force_full_resync(struct replica_side *rs)
{
	struct persist_identity id;

	persist_get_identity(rs->persist, &id);
	id.history_id[0] = '\0';
	persist_set_identity(rs->persist, &id);
}

/* Returns false if the link was dropped. */
static bool
handle_welcome(struct replica_link *l, const Cairn__Repl__Welcome *w)
{
	struct replica_side *rs = l->rs;
	struct persist_identity id;
	uint64_t last = persist_last_lsn(rs->persist);

	persist_get_identity(rs->persist, &id);
	if (w->epoch < id.epoch) {
		/* Fencing: never follow a primary from an older term. */
		log_msg(LOG_ALWAYS, "replication: %s:%d is at epoch %u, older than ours (%u); not following it",
		        l->host, l->port, w->epoch, id.epoch);
		link_lost(rs, "primary epoch too old");
		return false;
	}
	snprintf(id.history_id, sizeof(id.history_id), "%s", w->history_id);
	id.epoch = w->epoch;
	snprintf(id.replica_of, sizeof(id.replica_of), "%s:%d", l->host, l->port);
	if (w->mode == CAIRN__REPL__SYNC_MODE__FULL) {
		if (persist_full_sync_begin(rs->persist) != 0) {
			link_lost(rs, "cannot reset local data for a full resync");
			return false;
		}
		l->next_id = id;
		l->stage = R_SNAPSHOT;
		set_link_state(rs, LINK_SYNCING);
		log_msg(LOG_ALWAYS, "replication: full resync from %s:%d (history %s, epoch %u)",
		        l->host, l->port, w->history_id, w->epoch);
		return true;
	}
	if (w->truncate_to != 0 && last > w->truncate_to) {
		/* Our log runs past the new primary's fork point: those changes
		 * never reached it.  Discard them and resume from the fork. */
		int64_t discarded = persist_truncate_after(rs->persist, w->truncate_to);

		if (discarded < 0) {
			log_msg(LOG_ALWAYS, "replication: cannot roll back to the fork at LSN %" PRIu64
			        " (%s); resyncing in full", w->truncate_to,
			        discarded == -ERANGE ? "already checkpointed past it" : strerror((int)-discarded));
			force_full_resync(rs);
			link_lost(rs, "diverged from the new primary");
			return false;
		}
		__atomic_add_fetch(&rs->counters.discarded_changes, (uint64_t)discarded, __ATOMIC_RELAXED);
		log_msg(LOG_ALWAYS, "replication: discarded %" PRId64 " changes past the fork at LSN %" PRIu64
		        " that never reached the new primary", discarded, w->truncate_to);
		last = persist_last_lsn(rs->persist);
	}
	if (w->start_lsn != last + 1) {
		force_full_resync(rs);
		link_lost(rs, "primary offered a stream that does not continue our log");
		return false;
	}
	persist_set_identity(rs->persist, &id);
	l->stage = R_STREAM;
	rs->backoff_ms = 0;
	set_link_state(rs, LINK_UP);
	log_msg(LOG_ALWAYS, "replication: following %s:%d from LSN %" PRIu64 " (partial resync)",
	        l->host, l->port, w->start_lsn);
	return true;
}

static bool
handle_snapshot_chunk(struct replica_link *l, const Cairn__Repl__SnapshotChunk *c)
{
	struct cache_change *items = calloc(c->n_items ? c->n_items : 1, sizeof(*items));
	size_t i;
	int rc;

	if (items == NULL) {
		link_lost(l->rs, "out of memory");
		return false;
	}
	for (i = 0; i < c->n_items; i++) {
		const Cairn__Repl__Item *it = c->items[i];

		if (it->key.len == 0 || it->key.len > CACHE_KEY_MAX ||
		    (it->marks & ~CACHE_MARKS_ALL) != 0) {
			free(items);
			link_lost(l->rs, "bad item in snapshot");
			return false;
		}
		items[i].type = CACHE_CHANGE_SET;
		items[i].key = (const char *)it->key.data;
		items[i].nkey = it->key.len;
		items[i].flags = it->flags;
		items[i].exptime = it->exptime;
		items[i].cas = it->cas;
		items[i].value = (const char *)it->value.data;
		items[i].nbytes = (uint32_t)it->value.len;
		items[i].marks = (uint8_t)it->marks;
	}
	rc = persist_full_sync_items(l->rs->persist, items, c->n_items);
	free(items);
	if (rc != 0) {
		link_lost(l->rs, "cannot store snapshot items");
		return false;
	}
	return true;
}

static bool
handle_snapshot_end(struct replica_link *l, const Cairn__Repl__SnapshotEnd *e)
{
	struct replica_side *rs = l->rs;

	l->stage = R_STREAM;  /* persist_full_sync_end ends the resync either way */
	if (persist_full_sync_end(rs->persist, e->lsn, &l->next_id) != 0) {
		link_lost(rs, "cannot finish the full resync");
		return false;
	}
	rs->backoff_ms = 0;
	set_link_state(rs, LINK_UP);
	log_msg(LOG_ALWAYS, "replication: full resync done: %" PRIu64 " items up to LSN %" PRIu64,
	        e->items, e->lsn);
	send_ack(l, e->lsn);
	return true;
}

/* Append every record to our WAL in LSN order and apply it to memory if it
 * can be (storage/store.h): which LSNs we hold never depends on what our
 * memory happened to keep.  Records we already hold (a resent prefix) are
 * skipped; a gap drops the link.  No lock is held across the batch: a
 * promotion in the middle makes the store refuse the rest (-EPERM). */
static bool
handle_wal_batch(struct replica_link *l, const Cairn__Repl__WalBatch *b)
{
	struct replica_side *rs = l->rs;
	const char *why = NULL;
	size_t i;

	if (persist_write_error(rs->persist) != 0) {
		/* Our disk fails: stop here and resume from our log once it works. */
		link_lost(rs, "our WAL cannot write");
		return false;
	}
	for (i = 0; i < b->n_records && why == NULL; i++) {
		struct wal_record rec;
		size_t used;
		uint64_t expect = persist_last_lsn(rs->persist) + 1;
		bool more = i + 1 < b->n_records;
		int rc;

		if (wal_decode((const char *)b->records[i].data, b->records[i].len, &rec, &used) != WAL_DECODE_OK ||
		    used != b->records[i].len) {
			why = "damaged record in the stream";
		} else if (rec.lsn > expect) {
			why = "gap in the stream";
		} else if (rec.lsn == expect && (rc = store_apply_record(rs->store, &rec, more)) != 0) {
			if (rc == -EPERM)
				break;  /* promoted or re-pointed meanwhile: not ours */
			why = "cannot append to our WAL";
		}
	}
	/* The batch goes to our log's writer in one piece. */
	store_apply_end(rs->store);
	if (why != NULL) {
		link_lost(rs, why);
		return false;
	}
	return true;
}

/* Returns false if the link was dropped. */
static bool
handle_frame(struct replica_link *l, const Cairn__Repl__Frame *f)
{
	struct replica_side *rs = l->rs;

	l->last_heard = time(NULL);
	switch (f->msg_case) {
	case CAIRN__REPL__FRAME__MSG_CHALLENGE:
		if (l->stage != R_CHALLENGE)
			break;
		handle_challenge(l, f->challenge);
		return true;
	case CAIRN__REPL__FRAME__MSG_REFUSED:
		log_msg(LOG_ALWAYS, "replication: %s:%d refused us: %s", l->host,
		        l->port, f->refused->reason);
		link_lost(rs, "refused");
		return false;
	case CAIRN__REPL__FRAME__MSG_WELCOME:
		if (l->stage != R_WELCOME)
			break;
		return handle_welcome(l, f->welcome);
	case CAIRN__REPL__FRAME__MSG_SNAPSHOT_CHUNK:
		if (l->stage != R_SNAPSHOT)
			break;
		return handle_snapshot_chunk(l, f->snapshot_chunk);
	case CAIRN__REPL__FRAME__MSG_SNAPSHOT_END:
		if (l->stage != R_SNAPSHOT)
			break;
		return handle_snapshot_end(l, f->snapshot_end);
	case CAIRN__REPL__FRAME__MSG_WAL_BATCH:
		if (l->stage != R_STREAM)
			break;
		return handle_wal_batch(l, f->wal_batch);
	case CAIRN__REPL__FRAME__MSG_HEARTBEAT:
		__atomic_store_n(&rs->primary_lsn, f->heartbeat->lsn, __ATOMIC_RELAXED);
		return true;
	default:
		break;
	}
	link_lost(rs, "unexpected message from the primary");
	return false;
}

static bool
link_frame(void *arg, const Cairn__Repl__Frame *f)
{
	return handle_frame(arg, f);
}

static void
link_read_cb(struct bufferevent *bev, void *arg)
{
	struct replica_link *l = arg;
	struct evbuffer *in = bufferevent_get_input(bev);

	if (repl_wire_dispatch(in, &l->scratch, link_frame, l, &l->rs->counters.bytes_received) == REPL_WIRE_BAD)
		link_lost(l->rs, "malformed frame");
}

static void
link_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct replica_link *l = arg;

	(void)bev;
	if (what & BEV_EVENT_CONNECTED) {
		log_msg(LOG_INFO, "replication: connected to %s:%d", l->host, l->port);
		return;
	}
	link_lost(l->rs, (what & BEV_EVENT_EOF) ? "closed by the primary" : "connection failed");
}

static void
link_restart(struct replica_side *rs)
{
	struct addrinfo hints = {0}, *res = NULL;
	struct replica_link *l;
	char port[16];

	link_close(rs);
	event_del(rs->retry_ev);
	if (!rs->following)
		return;
	l = calloc(1, sizeof(*l));
	if (l == NULL)
		return;
	l->rs = rs;
	l->last_heard = time(NULL);
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	pthread_mutex_lock(&rs->lock);
	snprintf(l->host, sizeof(l->host), "%s", rs->primary_host);
	l->port = rs->primary_port;
	pthread_mutex_unlock(&rs->lock);
	snprintf(port, sizeof(port), "%d", l->port);
	l->bev = bufferevent_socket_new(rs->base, -1, BEV_OPT_CLOSE_ON_FREE);
	rs->link = l;
	set_link_state(rs, LINK_CONNECTING);
	if (l->bev == NULL || getaddrinfo(l->host, port, &hints, &res) != 0) {
		if (res != NULL)
			freeaddrinfo(res);
		link_lost(rs, "cannot resolve the primary's address");
		return;
	}
	bufferevent_setcb(l->bev, link_read_cb, NULL, link_event_cb, l);
	/* Take a whole batch per read (libevent's default is 16 KB): one
	 * wake-up and one read per frame rather than several. */
	bufferevent_set_max_single_read(l->bev, 2 * REPL_BATCH_BYTES);
	bufferevent_enable(l->bev, EV_READ | EV_WRITE);
	if (bufferevent_socket_connect(l->bev, res->ai_addr, (int)res->ai_addrlen) != 0) {
		freeaddrinfo(res);
		link_lost(rs, "connect failed");
		return;
	}
	freeaddrinfo(res);
}

void
replica_side_on_progress(struct replica_side *rs)
{
	struct replica_link *l = rs->link;
	uint64_t written;

	if (l == NULL || l->stage != R_STREAM)
		return;
	written = persist_written_lsn(rs->persist);
	if (written > l->acked_sent)
		send_ack(l, written);
}

void
replica_side_tick(struct replica_side *rs)
{
	struct replica_link *l = rs->link;

	if (l == NULL)
		return;
	if (time(NULL) - l->last_heard > REPL_LINK_TIMEOUT_SECONDS) {
		link_lost(rs, "no word from the primary for 5 s");
		return;
	}
	/* The ack doubles as our heartbeat. */
	if (l->stage == R_STREAM)
		send_ack(l, persist_written_lsn(rs->persist));
}

/******** THE SIDE ********/

struct replica_side *
replica_side_create(const struct replica_side_config *cfg, struct event_base *base,
                    struct store *store, struct persist *persist)
{
	struct replica_side *rs = calloc(1, sizeof(*rs));

	if (rs == NULL)
		return NULL;
	rs->node_id = strdup(cfg->node_id);
	rs->listen_addr = strdup(cfg->listen_addr);
	rs->client_port = cfg->client_port;
	if (cfg->secret != NULL) {
		rs->secret = malloc(cfg->secret_len);
		if (rs->secret != NULL)
			memcpy(rs->secret, cfg->secret, cfg->secret_len);
		rs->secret_len = cfg->secret_len;
	}
	rs->base = base;
	rs->store = store;
	rs->persist = persist;
	rs->retry_ev = evtimer_new(base, retry_cb, rs);
	pthread_mutex_init(&rs->lock, NULL);
	if (rs->node_id == NULL || rs->listen_addr == NULL || rs->retry_ev == NULL ||
	    (cfg->secret != NULL && rs->secret == NULL)) {
		replica_side_destroy(rs);
		return NULL;
	}
	return rs;
}

void
replica_side_destroy(struct replica_side *rs)
{
	if (rs == NULL)
		return;
	rs->following = false;
	link_close(rs);
	if (rs->retry_ev != NULL)
		event_free(rs->retry_ev);
	pthread_mutex_destroy(&rs->lock);
	free(rs->node_id);
	free(rs->listen_addr);
	free(rs->secret);
	free(rs);
}

void
replica_side_follow(struct replica_side *rs, const char *host, int port)
{
	pthread_mutex_lock(&rs->lock);
	snprintf(rs->primary_host, sizeof(rs->primary_host), "%s", host);
	rs->primary_port = port;
	pthread_mutex_unlock(&rs->lock);
	rs->following = true;
	rs->backoff_ms = 0;
	link_restart(rs);
}

void
replica_side_unfollow(struct replica_side *rs)
{
	rs->following = false;
	link_close(rs);
	event_del(rs->retry_ev);
	pthread_mutex_lock(&rs->lock);
	rs->primary_host[0] = '\0';
	rs->link_state = LINK_NONE;
	pthread_mutex_unlock(&rs->lock);
}

static const char *
link_name(enum link_state st)
{
	switch (st) {
	case LINK_NONE:  /* a replica whose link has not started yet */
	case LINK_DOWN: return "down";
	case LINK_CONNECTING: return "down";
	case LINK_SYNCING: return "syncing";
	case LINK_UP: return "up";
	}
	return "?";
}

void
replica_side_write_stats(struct replica_side *rs, uint64_t our_lsn, repl_stat_fn *emit, void *arg)
{
	uint64_t primary_lsn = __atomic_load_n(&rs->primary_lsn, __ATOMIC_RELAXED);
	char buf[320];

	pthread_mutex_lock(&rs->lock);
	emit(arg, "link", link_name(rs->link_state));
	pthread_mutex_unlock(&rs->lock);
	snprintf(buf, sizeof(buf), "%" PRIu64, primary_lsn > our_lsn ? primary_lsn - our_lsn : 0);
	emit(arg, "lag_lsn", buf);
}

void
replica_side_counters(struct replica_side *rs, struct repl_counters *sum)
{
	repl_counters_add(sum, &rs->counters);
}
