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
 * resumes partially, and its LSN always reaches its primary's.  Acks carry the LSN written
 * to our WAL.  Reconnects back off from 100 ms to 5 s.
 */
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <inttypes.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "replication/auth.h"
#include "replication/repl_internal.h"
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

struct replica_link {
	struct repl *r;
	struct bufferevent *bev;
	enum link_stage stage;
	time_t last_heard;
	uint64_t acked_sent;
	struct persist_identity next_id;  /* adopted at SnapshotEnd */
	/* The primary this link dials: r->primary_host/port copied under
	 * r->lock when the link starts.  A worker's `replicaof` rewrites those
	 * (under the lock) while we run, then re-points, which restarts the
	 * link; this thread reads them only under the lock. */
	char host[256];
	int port;
};

static void set_link_state(struct repl *r, enum link_state st)
{
	pthread_mutex_lock(&r->lock);
	r->link_state = st;
	pthread_mutex_unlock(&r->lock);
}

static void
send_frame(struct replica_link *l, const Cairn__Repl__Frame *f)
{
	size_t n = repl_wire_send(bufferevent_get_output(l->bev), f);

	__atomic_add_fetch(&l->r->bytes_sent, n, __ATOMIC_RELAXED);
}

void
replica_retry_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	replica_link_restart(arg);
}

/* Drop the link and try again after the backoff. */
static void
link_lost(struct repl *r, const char *why)
{
	struct timeval tv;

	if (r->link != NULL)
		log_msg(LOG_ALWAYS, "replication: link to %s:%d down: %s", r->link->host,
		        r->link->port, why);
	replica_link_close(r);
	if (!repl_is_replica(r))
		return;
	set_link_state(r, LINK_DOWN);
	r->backoff_ms = r->backoff_ms == 0 ? BACKOFF_MIN_MS : r->backoff_ms * 2;
	if (r->backoff_ms > BACKOFF_MAX_MS)
		r->backoff_ms = BACKOFF_MAX_MS;
	tv.tv_sec = r->backoff_ms / 1000;
	tv.tv_usec = (r->backoff_ms % 1000) * 1000;
	event_add(r->retry_ev, &tv);
}

void
replica_link_close(struct repl *r)
{
	struct replica_link *l = r->link;

	if (l == NULL)
		return;
	if (l->stage == R_SNAPSHOT)
		persist_full_sync_abort(r->persist);
	bufferevent_free(l->bev);
	free(l);
	r->link = NULL;
	set_link_state(r, repl_is_replica(r) ? LINK_DOWN : LINK_NONE);
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
	struct repl *r = l->r;
	Cairn__Repl__Frame f = CAIRN__REPL__FRAME__INIT;
	Cairn__Repl__Hello h = CAIRN__REPL__HELLO__INIT;
	struct persist_identity id;
	uint8_t proof[REPL_PROOF_SIZE];
	char addr[300];

	persist_get_identity(r->persist, &id);
	snprintf(addr, sizeof(addr), "%s:%d", r->listen_addr, r->client_port);
	h.protocol_version = REPL_PROTOCOL_VERSION;
	h.node_id = r->node_id;
	h.history_id = id.history_id;
	h.last_lsn = persist_last_lsn(r->persist);
	h.epoch = id.epoch;
	h.listen_addr = addr;
	if (r->secret != NULL && c->nonce.len == REPL_NONCE_SIZE) {
		repl_auth_prove(r->secret, r->secret_len, c->nonce.data, proof);
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
force_full_resync(struct repl *r)
{
	struct persist_identity id;

	persist_get_identity(r->persist, &id);
	id.history_id[0] = '\0';
	persist_set_identity(r->persist, &id);
}

/* Returns false if the link was dropped. */
static bool
handle_welcome(struct replica_link *l, const Cairn__Repl__Welcome *w)
{
	struct repl *r = l->r;
	struct persist_identity id;
	uint64_t last = persist_last_lsn(r->persist);

	persist_get_identity(r->persist, &id);
	if (w->epoch < id.epoch) {
		/* Fencing: never follow a primary from an older term. */
		log_msg(LOG_ALWAYS, "replication: %s:%d is at epoch %u, older than ours (%u); not following it",
		        l->host, l->port, w->epoch, id.epoch);
		link_lost(r, "primary epoch too old");
		return false;
	}
	snprintf(id.history_id, sizeof(id.history_id), "%s", w->history_id);
	id.epoch = w->epoch;
	pthread_mutex_lock(&r->lock);   /* a `replicaof` may be rewriting them */
	snprintf(id.replica_of, sizeof(id.replica_of), "%s:%d", r->primary_host, r->primary_port);
	pthread_mutex_unlock(&r->lock);
	if (w->mode == CAIRN__REPL__SYNC_MODE__FULL) {
		if (persist_full_sync_begin(r->persist) != 0) {
			link_lost(r, "cannot reset local data for a full resync");
			return false;
		}
		l->next_id = id;
		l->stage = R_SNAPSHOT;
		set_link_state(r, LINK_SYNCING);
		log_msg(LOG_ALWAYS, "replication: full resync from %s:%d (history %s, epoch %u)",
		        l->host, l->port, w->history_id, w->epoch);
		return true;
	}
	if (w->truncate_to != 0 && last > w->truncate_to) {
		/* Our log runs past the new primary's fork point: those changes
		 * never reached it.  Discard them and resume from the fork. */
		int64_t discarded = persist_truncate_after(r->persist, w->truncate_to);

		if (discarded < 0) {
			log_msg(LOG_ALWAYS, "replication: cannot roll back to the fork at LSN %" PRIu64
			        " (%s); resyncing in full", w->truncate_to,
			        discarded == -ERANGE ? "already checkpointed past it" : strerror((int)-discarded));
			force_full_resync(r);
			link_lost(r, "diverged from the new primary");
			return false;
		}
		__atomic_add_fetch(&r->discarded_changes, (uint64_t)discarded, __ATOMIC_RELAXED);
		log_msg(LOG_ALWAYS, "replication: discarded %" PRId64 " changes past the fork at LSN %" PRIu64
		        " that never reached the new primary", discarded, w->truncate_to);
		last = persist_last_lsn(r->persist);
	}
	if (w->start_lsn != last + 1) {
		force_full_resync(r);
		link_lost(r, "primary offered a stream that does not continue our log");
		return false;
	}
	persist_set_identity(r->persist, &id);
	l->stage = R_STREAM;
	r->backoff_ms = 0;
	set_link_state(r, LINK_UP);
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
		link_lost(l->r, "out of memory");
		return false;
	}
	for (i = 0; i < c->n_items; i++) {
		const Cairn__Repl__Item *it = c->items[i];

		if (it->key.len == 0 || it->key.len > CACHE_KEY_MAX) {
			free(items);
			link_lost(l->r, "bad key in snapshot");
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
	}
	rc = persist_full_sync_items(l->r->persist, items, c->n_items);
	free(items);
	if (rc != 0) {
		link_lost(l->r, "cannot store snapshot items");
		return false;
	}
	return true;
}

static bool
handle_snapshot_end(struct replica_link *l, const Cairn__Repl__SnapshotEnd *e)
{
	struct repl *r = l->r;

	l->stage = R_STREAM;  /* persist_full_sync_end ends the resync either way */
	if (persist_full_sync_end(r->persist, e->lsn, &l->next_id) != 0) {
		link_lost(r, "cannot finish the full resync");
		return false;
	}
	r->backoff_ms = 0;
	set_link_state(r, LINK_UP);
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
	struct repl *r = l->r;
	const char *why = NULL;
	size_t i;

	if (persist_write_error(r->persist) != 0) {
		/* Our disk fails: stop here and resume from our log once it works. */
		link_lost(r, "our WAL cannot write");
		return false;
	}
	for (i = 0; i < b->n_records && why == NULL; i++) {
		struct wal_record rec;
		size_t used;
		uint64_t expect = persist_last_lsn(r->persist) + 1;
		int rc;

		if (wal_decode((const char *)b->records[i].data, b->records[i].len, &rec, &used) != WAL_DECODE_OK ||
		    used != b->records[i].len) {
			why = "damaged record in the stream";
		} else if (rec.lsn > expect) {
			why = "gap in the stream";
		} else if (rec.lsn == expect && (rc = store_apply_record(r->store, &rec)) != 0) {
			if (rc == -EPERM)
				return true;  /* promoted or re-pointed meanwhile: not ours */
			why = "cannot append to our WAL";
		}
	}
	if (why != NULL) {
		link_lost(r, why);
		return false;
	}
	return true;
}

/* Returns false if the link was dropped. */
static bool
handle_frame(struct replica_link *l, const Cairn__Repl__Frame *f)
{
	struct repl *r = l->r;

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
		link_lost(r, "refused");
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
		__atomic_store_n(&r->primary_lsn, f->heartbeat->lsn, __ATOMIC_RELAXED);
		return true;
	default:
		break;
	}
	link_lost(r, "unexpected message from the primary");
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

	if (repl_wire_dispatch(in, link_frame, l, &l->r->bytes_received) == REPL_WIRE_BAD)
		link_lost(l->r, "malformed frame");
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
	link_lost(l->r, (what & BEV_EVENT_EOF) ? "closed by the primary" : "connection failed");
}

void
replica_link_restart(struct repl *r)
{
	struct addrinfo hints = {0}, *res = NULL;
	struct replica_link *l;
	char port[16];

	replica_link_close(r);
	event_del(r->retry_ev);
	if (!repl_is_replica(r))
		return;
	l = calloc(1, sizeof(*l));
	if (l == NULL)
		return;
	l->r = r;
	l->last_heard = time(NULL);
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	pthread_mutex_lock(&r->lock);
	snprintf(l->host, sizeof(l->host), "%s", r->primary_host);
	l->port = r->primary_port;
	pthread_mutex_unlock(&r->lock);
	snprintf(port, sizeof(port), "%d", l->port);
	l->bev = bufferevent_socket_new(r->base, -1, BEV_OPT_CLOSE_ON_FREE);
	r->link = l;
	set_link_state(r, LINK_CONNECTING);
	if (l->bev == NULL || getaddrinfo(l->host, port, &hints, &res) != 0) {
		if (res != NULL)
			freeaddrinfo(res);
		link_lost(r, "cannot resolve the primary's address");
		return;
	}
	bufferevent_setcb(l->bev, link_read_cb, NULL, link_event_cb, l);
	bufferevent_enable(l->bev, EV_READ | EV_WRITE);
	if (bufferevent_socket_connect(l->bev, res->ai_addr, (int)res->ai_addrlen) != 0) {
		freeaddrinfo(res);
		link_lost(r, "connect failed");
		return;
	}
	freeaddrinfo(res);
}

void
replica_on_progress(struct repl *r)
{
	struct replica_link *l = r->link;
	uint64_t written;

	if (l == NULL || l->stage != R_STREAM)
		return;
	written = persist_written_lsn(r->persist);
	if (written > l->acked_sent)
		send_ack(l, written);
}

void
replica_tick(struct repl *r)
{
	struct replica_link *l = r->link;

	if (l == NULL)
		return;
	if (time(NULL) - l->last_heard > REPL_LINK_TIMEOUT_SECONDS) {
		link_lost(r, "no word from the primary for 5 s");
		return;
	}
	/* The ack doubles as our heartbeat. */
	if (l->stage == R_STREAM)
		send_ack(l, persist_written_lsn(r->persist));
}
