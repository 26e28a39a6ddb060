/* Replication, primary side: hand each replica a snapshot or the WAL from
 * where it stopped, then stream every new record, and count acks.
 *
 * Per replica connection (replication thread only):
 *
 *   P_HELLO ----Hello, PARTIAL----> P_STREAM  (WAL from the replica's LSN)
 *      |                               ^
 *      +------Hello, FULL-----> P_SNAPSHOT ---SnapshotEnd---+
 *
 * The resync decision (decide_sync) lists every case.  Memory stays bounded
 * however slow a replica is: we only read more of the WAL or the snapshot
 * while the connection's output holds less than REPL_OUTPUT_LIMIT; the rest
 * waits on disk.  A replica whose next record was trimmed from the backlog is
 * dropped and gets a full resync when it reconnects.
 */
#include "replication/primary.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "replication/auth.h"
#include "storage/ckpt.h"
#include "storage/log.h"
#include "storage/persist.h"
#include "storage/wal.h"

#define SNAPSHOT_CHUNK_ITEMS 1024
#define PEER_SILENCE_LIMIT (3 * REPL_LINK_TIMEOUT_SECONDS)

enum pconn_state {
	P_HELLO,     /* Challenge sent, waiting for Hello */
	P_SNAPSHOT,  /* sending a full snapshot */
	P_STREAM,    /* sending WAL records */
};

/* The primary side's own state.  The replication thread runs it; stats
 * and the quorum are read from any thread. */
struct primary_side {
	char *node_id;
	char *secret;                 /* NULL: no authentication */
	size_t secret_len;
	int sync_replicas;
	struct event_base *base;
	struct persist *persist;
	repl_wake_fn *wake;
	void *wake_arg;

	bool serving;                 /* false while this node follows a primary */
	pthread_mutex_t lock;         /* conns' stats fields and nconns, for readers */
	struct primary_conn *conns;   /* replication thread (+ lock for readers) */
	int nconns;
	uint64_t quorum_lsn;          /* atomic */
	/* Replicas (node ids) whose stream met a hole: full resync next time. */
	char full_sync_ids[REPL_MAX_REPLICAS][64];
	struct repl_counters counters; /* atomics */
};

struct primary_conn {
	struct primary_side *ps;
	struct bufferevent *bev;
	/* state, id, addr and acked_lsn are written by the replication thread
	 * under ps->lock, which primary_write_stats (any thread) holds. */
	enum pconn_state state;
	uint8_t nonce[REPL_NONCE_SIZE];
	char id[64];                 /* the replica's node id */
	char addr[128];              /* its client address, or the peer address */
	uint64_t acked_lsn;          /* in its WAL (lock for readers) */
	struct wal_reader *reader;   /* P_STREAM */
	struct ckpt_snapshot *snap;  /* P_SNAPSHOT */
	uint64_t snap_lsn;
	uint64_t snap_items;
	time_t last_heard;
	bool refused;                /* close once the Refused frame is sent */
	struct primary_conn *next;
};

static void pconn_read_cb(struct bufferevent *bev, void *arg);
static void pconn_write_cb(struct bufferevent *bev, void *arg);
static void pconn_event_cb(struct bufferevent *bev, short what, void *arg);

static const char *
state_name(enum pconn_state s)
{
	switch (s) {
	case P_HELLO: return "handshake";
	case P_SNAPSHOT: return "snapshot";
	case P_STREAM: return "streaming";
	}
	return "?";
}

/* Frames go to the socket at once, from the replication thread, while it
 * takes them; the bufferevent's write event is enabled only when the socket
 * is full (or failed: the bufferevent then reports the error), and disabled
 * again once the output is drained.  A write event per frame cost two
 * epoll_ctl and a loop iteration for every batch sent to every replica. */
static void
send_frame(struct primary_conn *pc, const Cairn__Repl__Frame *f)
{
	struct evbuffer *out = bufferevent_get_output(pc->bev);
	size_t n = repl_wire_send(out, f);

	__atomic_add_fetch(&pc->ps->counters.bytes_sent, n, __ATOMIC_RELAXED);
	if (bufferevent_get_enabled(pc->bev) & EV_WRITE)
		return;  /* waiting for room: the bufferevent writes the rest */
	evbuffer_write(out, bufferevent_getfd(pc->bev));
	if (evbuffer_get_length(out) > 0)
		bufferevent_enable(pc->bev, EV_WRITE);
}

/* Move this replica's slot to the first LSN it still needs: the log keeps
 * it (within --wal-backlog) across disconnects and restarts of either side.
 * Its open reader is a registered position too, so nothing it is about to
 * read can go meanwhile. */
static void
update_slot(struct primary_conn *pc)
{
	uint64_t need = pc->state == P_SNAPSHOT ? pc->snap_lsn + 1 : pc->acked_lsn + 1;

	if (pc->state != P_HELLO && pc->id[0] != '\0')
		persist_replica_slot_set(pc->ps->persist, pc->id, need);
}

/* A replica whose stream met a hole (its next record is gone) resyncs in
 * full at its next handshake, whatever LSN it then asks for. */
static void
require_full_sync(struct primary_side *ps, const char *id)
{
	int i, free_slot = -1;

	for (i = 0; i < REPL_MAX_REPLICAS; i++) {
		if (strcmp(ps->full_sync_ids[i], id) == 0)
			return;
		if (free_slot < 0 && ps->full_sync_ids[i][0] == '\0')
			free_slot = i;
	}
	if (free_slot >= 0)
		snprintf(ps->full_sync_ids[free_slot], sizeof(ps->full_sync_ids[0]), "%s", id);
	persist_replica_slot_drop(ps->persist, id);
}

/* True (and forgotten) if `id` must resync in full. */
static bool
take_full_sync(struct primary_side *ps, const char *id)
{
	for (int i = 0; i < REPL_MAX_REPLICAS; i++) {
		if (id[0] != '\0' && strcmp(ps->full_sync_ids[i], id) == 0) {
			ps->full_sync_ids[i][0] = '\0';
			return true;
		}
	}
	return false;
}

static int
cmp_desc(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x > y ? -1 : x < y;
}

/* The LSN at least sync_replicas streaming replicas hold. */
static void
update_quorum(struct primary_side *ps)
{
	uint64_t acked[REPL_MAX_REPLICAS], quorum = 0;
	struct primary_conn *pc;
	int n = 0;

	if (ps->sync_replicas == 0)
		return;
	for (pc = ps->conns; pc != NULL && n < REPL_MAX_REPLICAS; pc = pc->next) {
		if (pc->state == P_STREAM)
			acked[n++] = pc->acked_lsn;
	}
	if (n >= ps->sync_replicas) {
		qsort(acked, (size_t)n, sizeof(acked[0]), cmp_desc);
		quorum = acked[ps->sync_replicas - 1];
	}
	if (quorum != __atomic_load_n(&ps->quorum_lsn, __ATOMIC_RELAXED)) {
		__atomic_store_n(&ps->quorum_lsn, quorum, __ATOMIC_RELEASE);
		ps->wake(ps->wake_arg);
	}
}

static void
pconn_destroy(struct primary_conn *pc, const char *why)
{
	struct primary_side *ps = pc->ps;
	struct primary_conn **pp;

	log_msg(LOG_ALWAYS, "replication: replica %s (%s) disconnected: %s",
	        pc->id[0] ? pc->id : "?", pc->addr, why);
	pthread_mutex_lock(&ps->lock);
	for (pp = &ps->conns; *pp != NULL; pp = &(*pp)->next) {
		if (*pp == pc) {
			*pp = pc->next;
			break;
		}
	}
	ps->nconns--;
	pthread_mutex_unlock(&ps->lock);
	bufferevent_free(pc->bev);
	wal_reader_close(pc->reader);
	ckpt_snapshot_close(pc->snap);
	free(pc);
	update_quorum(ps);
}

static void
refuse(struct primary_conn *pc, const char *reason)
{
	Cairn__Repl__Frame f = CAIRN__REPL__FRAME__INIT;
	Cairn__Repl__Refused m = CAIRN__REPL__REFUSED__INIT;

	m.reason = (char *)reason;
	f.msg_case = CAIRN__REPL__FRAME__MSG_REFUSED;
	f.refused = &m;
	log_msg(LOG_ALWAYS, "replication: refused %s (%s): %s",
	        pc->id[0] ? pc->id : "a replica", pc->addr, reason);
	/* Let the bufferevent write the reason, then close (write callback). */
	bufferevent_disable(pc->bev, EV_READ);
	bufferevent_setcb(pc->bev, NULL, pconn_write_cb, pconn_event_cb, pc);
	bufferevent_setwatermark(pc->bev, EV_WRITE, 0, 0);
	bufferevent_enable(pc->bev, EV_WRITE);
	send_frame(pc, &f);
	pthread_mutex_lock(&pc->ps->lock);   /* `stats replication` reads state */
	pc->state = P_HELLO;
	pthread_mutex_unlock(&pc->ps->lock);
	pc->refused = true;
}

void
primary_side_accept(struct primary_side *ps, int fd, const char *peer)
{
	Cairn__Repl__Frame f = CAIRN__REPL__FRAME__INIT;
	Cairn__Repl__Challenge m = CAIRN__REPL__CHALLENGE__INIT;
	struct primary_conn *pc = calloc(1, sizeof(*pc));

	if (pc == NULL) {
		evutil_closesocket(fd);
		return;
	}
	pc->ps = ps;
	pc->bev = bufferevent_socket_new(ps->base, fd, BEV_OPT_CLOSE_ON_FREE);
	if (pc->bev == NULL || !repl_auth_nonce(pc->nonce)) {
		if (pc->bev != NULL)
			bufferevent_free(pc->bev);
		else
			evutil_closesocket(fd);
		free(pc);
		return;
	}
	snprintf(pc->addr, sizeof(pc->addr), "%s", peer);
	pc->last_heard = time(NULL);
	bufferevent_setcb(pc->bev, pconn_read_cb, pconn_write_cb, pconn_event_cb, pc);
	bufferevent_setwatermark(pc->bev, EV_WRITE, REPL_OUTPUT_LIMIT / 2, 0);
	bufferevent_enable(pc->bev, EV_READ);  /* EV_WRITE: see send_frame */
	pthread_mutex_lock(&ps->lock);
	pc->next = ps->conns;
	ps->conns = pc;
	ps->nconns++;
	pthread_mutex_unlock(&ps->lock);

	m.nonce.data = pc->nonce;
	m.nonce.len = sizeof(pc->nonce);
	m.auth_required = ps->secret != NULL;
	f.msg_case = CAIRN__REPL__FRAME__MSG_CHALLENGE;
	f.challenge = &m;
	send_frame(pc, &f);
}

/******** RESYNC DECISION ********/

struct sync_plan {
	Cairn__Repl__SyncMode mode;
	uint64_t start_lsn;     /* PARTIAL */
	uint64_t truncate_to;   /* PARTIAL: the replica discards above this */
};

/* Partial when we still hold every record the replica lacks:
 *  1. same history, its LSN <= ours, and LSN + 1 still on disk;
 *  2. it follows the history we were promoted from, and its LSN <= the fork
 *     point: it is a prefix of ours (Redis PSYNC2's replid2/offset);
 *  3. same previous history but its LSN runs past the fork (an old primary
 *     whose last writes never reached us): it must first discard everything
 *     above the fork point (Kafka's leader-epoch truncation), then resume;
 *  4. a replica with an empty log while our log still starts at LSN 1.
 * Otherwise (other history, trimmed backlog, a log ahead of ours): full. */
static struct sync_plan
decide_sync(struct primary_side *ps, const Cairn__Repl__Hello *h)
{
	struct persist_identity id;
	struct sync_plan plan = {CAIRN__REPL__SYNC_MODE__FULL, 0, 0};
	uint64_t last = persist_last_lsn(ps->persist);
	uint64_t oldest = persist_oldest_lsn(ps->persist);

	persist_get_identity(ps->persist, &id);
	if (h->history_id[0] != '\0' && strcmp(h->history_id, id.history_id) == 0) {
		if (h->last_lsn <= last && h->last_lsn + 1 >= oldest)
			plan.start_lsn = h->last_lsn + 1;
	} else if (h->history_id[0] != '\0' && id.prev_history_id[0] != '\0' &&
	           strcmp(h->history_id, id.prev_history_id) == 0) {
		if (h->last_lsn <= id.fork_lsn && h->last_lsn + 1 >= oldest) {
			plan.start_lsn = h->last_lsn + 1;
		} else if (h->last_lsn > id.fork_lsn && id.fork_lsn + 1 >= oldest) {
			plan.start_lsn = id.fork_lsn + 1;
			plan.truncate_to = id.fork_lsn;
		}
	} else if (h->last_lsn == 0 && oldest == 1) {
		plan.start_lsn = 1;
	}
	if (plan.start_lsn != 0)
		plan.mode = CAIRN__REPL__SYNC_MODE__PARTIAL;
	return plan;
}

static bool pump(struct primary_conn *pc);

/* Returns false if pc was destroyed. */
static bool
handle_hello(struct primary_conn *pc, const Cairn__Repl__Hello *h)
{
	struct primary_side *ps = pc->ps;
	Cairn__Repl__Frame f = CAIRN__REPL__FRAME__INIT;
	Cairn__Repl__Welcome w = CAIRN__REPL__WELCOME__INIT;
	struct persist_identity id;
	struct sync_plan plan;
	char reason[160];
	int rc;

	/* id, addr and state are what `stats replication` shows: written under
	 * ps->lock (primary_write_stats reads them under it). */
	pthread_mutex_lock(&ps->lock);
	snprintf(pc->id, sizeof(pc->id), "%s", h->node_id);
	if (h->listen_addr[0] != '\0')
		snprintf(pc->addr, sizeof(pc->addr), "%s", h->listen_addr);
	pthread_mutex_unlock(&ps->lock);
	if (h->protocol_version != REPL_PROTOCOL_VERSION) {
		snprintf(reason, sizeof(reason), "protocol version %u not supported (this node speaks %d)",
		         h->protocol_version, REPL_PROTOCOL_VERSION);
		refuse(pc, reason);
		return true;
	}
	if (ps->secret != NULL &&
	    !repl_auth_check(ps->secret, ps->secret_len, pc->nonce, h->auth_proof.data, h->auth_proof.len)) {
		refuse(pc, "authentication failed: wrong or missing cluster secret");
		return true;
	}
	if (!ps->serving) {
		refuse(pc, "this node is a replica; connect to the primary");
		return true;
	}
	persist_get_identity(ps->persist, &id);
	if (h->epoch > id.epoch) {
		snprintf(reason, sizeof(reason), "the replica has seen epoch %u, newer than ours (%u)",
		         h->epoch, id.epoch);
		refuse(pc, reason);
		return true;
	}
	plan = decide_sync(ps, h);
	if (take_full_sync(ps, pc->id))
		plan.mode = CAIRN__REPL__SYNC_MODE__FULL;
	if (plan.mode == CAIRN__REPL__SYNC_MODE__PARTIAL) {
		rc = persist_wal_reader_open(ps->persist, plan.start_lsn, &pc->reader);
		if (rc != 0)
			plan.mode = CAIRN__REPL__SYNC_MODE__FULL;  /* trimmed meanwhile */
	}
	if (plan.mode == CAIRN__REPL__SYNC_MODE__FULL) {
		plan.truncate_to = 0;
		plan.start_lsn = 0;
		rc = persist_snapshot_open(ps->persist, &pc->snap, &pc->snap_lsn, &pc->reader);
		if (rc != 0) {
			refuse(pc, "cannot read the checkpoint for a snapshot");
			return true;
		}
		__atomic_add_fetch(&ps->counters.full_syncs, 1, __ATOMIC_RELAXED);
	} else {
		__atomic_add_fetch(&ps->counters.partial_syncs, 1, __ATOMIC_RELAXED);
	}
	w.mode = plan.mode;
	w.epoch = id.epoch;
	w.history_id = id.history_id;
	w.start_lsn = plan.start_lsn;
	w.truncate_to = plan.truncate_to;
	w.primary_id = ps->node_id;
	f.msg_case = CAIRN__REPL__FRAME__MSG_WELCOME;
	f.welcome = &w;
	send_frame(pc, &f);
	log_msg(LOG_ALWAYS, "replication: replica %s (%s) at LSN %" PRIu64 ": %s sync%s",
	        pc->id, pc->addr, h->last_lsn,
	        plan.mode == CAIRN__REPL__SYNC_MODE__FULL ? "full" : "partial",
	        plan.truncate_to ? " after discarding its records past the fork" : "");
	pthread_mutex_lock(&ps->lock);
	pc->acked_lsn = plan.mode == CAIRN__REPL__SYNC_MODE__FULL ? 0 : plan.start_lsn - 1;
	pc->state = plan.mode == CAIRN__REPL__SYNC_MODE__FULL ? P_SNAPSHOT : P_STREAM;
	pthread_mutex_unlock(&ps->lock);
	update_slot(pc);
	return pump(pc);
}

/******** STREAMING ********/

/* One SnapshotChunk of up to SNAPSHOT_CHUNK_ITEMS items; at the end, the
 * SnapshotEnd and the switch to streaming from the snapshot's LSN. */
static int
send_snapshot_chunk(struct primary_conn *pc)
{
	Cairn__Repl__Frame f = CAIRN__REPL__FRAME__INIT;
	Cairn__Repl__SnapshotChunk chunk = CAIRN__REPL__SNAPSHOT_CHUNK__INIT;
	Cairn__Repl__Item items[SNAPSHOT_CHUNK_ITEMS], *ptrs[SNAPSHOT_CHUNK_ITEMS];
	size_t n = 0, bytes = 0;
	int rc = 1;

	while (n < SNAPSHOT_CHUNK_ITEMS && bytes < REPL_BATCH_BYTES) {
		struct cache_change it;

		rc = ckpt_snapshot_next(pc->snap, &it);
		if (rc <= 0)
			break;
		cairn__repl__item__init(&items[n]);
		/* LMDB read-only pages stay valid until the snapshot closes. */
		items[n].key.data = (uint8_t *)it.key;
		items[n].key.len = it.nkey;
		items[n].flags = it.flags;
		items[n].exptime = it.exptime;
		items[n].cas = it.cas;
		items[n].value.data = (uint8_t *)it.value;
		items[n].value.len = it.nbytes;
		items[n].marks = it.marks;
		ptrs[n] = &items[n];
		bytes += it.nkey + it.nbytes;
		n++;
	}
	if (rc < 0)
		return rc;
	if (n > 0) {
		chunk.n_items = n;
		chunk.items = ptrs;
		f.msg_case = CAIRN__REPL__FRAME__MSG_SNAPSHOT_CHUNK;
		f.snapshot_chunk = &chunk;
		send_frame(pc, &f);
		pc->snap_items += n;
	}
	/* The items point into LMDB pages; they are serialized now. */
	ckpt_snapshot_pause(pc->snap);
	if (rc == 0) {
		Cairn__Repl__SnapshotEnd end = CAIRN__REPL__SNAPSHOT_END__INIT;

		end.lsn = pc->snap_lsn;
		end.items = pc->snap_items;
		f.msg_case = CAIRN__REPL__FRAME__MSG_SNAPSHOT_END;
		f.snapshot_end = &end;
		send_frame(pc, &f);
		ckpt_snapshot_close(pc->snap);
		pc->snap = NULL;
		/* pc->reader has waited at snap_lsn + 1 since the snapshot began. */
		pthread_mutex_lock(&pc->ps->lock);
		pc->acked_lsn = pc->snap_lsn;
		pc->state = P_STREAM;
		pthread_mutex_unlock(&pc->ps->lock);
		log_msg(LOG_INFO, "replication: snapshot of %" PRIu64 " items sent to %s",
		        pc->snap_items, pc->id);
	}
	return 1;
}

/* One WalBatch of the records written since the last one.  Returns 1 if
 * something was sent, 0 if there was nothing new, < 0 on error. */
static int
send_wal_batch(struct primary_conn *pc)
{
	Cairn__Repl__Frame f = CAIRN__REPL__FRAME__INIT;
	Cairn__Repl__WalBatch batch = CAIRN__REPL__WAL_BATCH__INIT;
	ProtobufCBinaryData recs[1024];
	size_t n = 0, used = 0, cap = REPL_BATCH_BYTES * 2, i;
	char *copy = malloc(cap);
	int rc = 0;

	if (copy == NULL)
		return -ENOMEM;
	/* The reader's buffer moves on the next call: copy each record. */
	while (n < sizeof(recs) / sizeof(recs[0]) && used < REPL_BATCH_BYTES) {
		const char *rec;
		size_t len;
		uint64_t lsn;

		rc = wal_reader_next(pc->reader, &rec, &len, &lsn);
		if (rc <= 0)
			break;
		if (used + len > cap) {
			char *p;

			cap = (used + len) * 2;
			p = realloc(copy, cap);
			if (p == NULL) {
				free(copy);
				return -ENOMEM;
			}
			copy = p;
		}
		memcpy(copy + used, rec, len);
		recs[n].len = len;
		recs[n].data = (uint8_t *)(uintptr_t)used;  /* offset until copy settles */
		used += len;
		n++;
	}
	if (n > 0) {
		ProtobufCBinaryData *ptrs = recs;

		for (i = 0; i < n; i++)
			ptrs[i].data = (uint8_t *)copy + (uintptr_t)ptrs[i].data;
		batch.n_records = n;
		batch.records = ptrs;
		f.msg_case = CAIRN__REPL__FRAME__MSG_WAL_BATCH;
		f.wal_batch = &batch;
		send_frame(pc, &f);
	}
	free(copy);
	if (rc < 0)
		return rc;
	return n > 0 ? 1 : 0;
}

/* Send while the output has room.  Returns false if pc was destroyed. */
static bool
pump(struct primary_conn *pc)
{
	struct evbuffer *out = bufferevent_get_output(pc->bev);
	int rc = 0;

	while (evbuffer_get_length(out) < REPL_OUTPUT_LIMIT) {
		if (pc->state == P_SNAPSHOT)
			rc = send_snapshot_chunk(pc);
		else if (pc->state == P_STREAM)
			rc = send_wal_batch(pc);
		else
			return true;
		if (rc <= 0)
			break;
	}
	if (rc == -ENOENT) {
		require_full_sync(pc->ps, pc->id);
		pconn_destroy(pc, "its next record left the backlog; it will resync in full");
	} else if (rc == -EILSEQ) {
		/* Damage in the backlog (startup does not read the segments the
		 * checkpoint covers): streaming past it is impossible, resending
		 * it would fail the same way for ever. */
		require_full_sync(pc->ps, pc->id);
		pconn_destroy(pc, "its next record is damaged in the backlog; it will resync in full");
	}
	else if (rc < 0)
		pconn_destroy(pc, strerror(-rc));
	return rc >= 0;
}

void
primary_side_pump(struct primary_side *ps)
{
	struct primary_conn *pc, *next;

	for (pc = ps->conns; pc != NULL; pc = next) {
		next = pc->next;
		pump(pc);
	}
}

/******** EVENTS ********/

/* Returns false if pc was destroyed. */
static bool
handle_frame(struct primary_conn *pc, const Cairn__Repl__Frame *f)
{
	pc->last_heard = time(NULL);
	if (pc->state == P_HELLO) {
		if (f->msg_case == CAIRN__REPL__FRAME__MSG_HELLO)
			return handle_hello(pc, f->hello);
		pconn_destroy(pc, "expected Hello");
		return false;
	}
	switch (f->msg_case) {
	case CAIRN__REPL__FRAME__MSG_ACK:
		pthread_mutex_lock(&pc->ps->lock);
		if (f->ack->lsn > pc->acked_lsn)
			pc->acked_lsn = f->ack->lsn;
		pthread_mutex_unlock(&pc->ps->lock);
		update_slot(pc);
		update_quorum(pc->ps);
		break;
	case CAIRN__REPL__FRAME__MSG_HEARTBEAT:
		break;
	default:
		pconn_destroy(pc, "unexpected message");
		return false;
	}
	return true;
}

/* repl_frame_fn: go on while the connection lives and was not refused. */
static bool
pconn_frame(void *arg, const Cairn__Repl__Frame *f)
{
	struct primary_conn *pc = arg;

	return handle_frame(pc, f) && !pc->refused;
}

static void
pconn_read_cb(struct bufferevent *bev, void *arg)
{
	struct primary_conn *pc = arg;
	struct evbuffer *in = bufferevent_get_input(bev);

	/* Acks and heartbeats: small frames, no scratch needed. */
	if (repl_wire_dispatch(in, NULL, pconn_frame, pc, &pc->ps->counters.bytes_received) == REPL_WIRE_BAD)
		pconn_destroy(pc, "malformed frame");
}

static void
pconn_write_cb(struct bufferevent *bev, void *arg)
{
	struct primary_conn *pc = arg;

	if (pc->refused) {  /* the reason has been handed to the kernel? */
		if (evbuffer_get_length(bufferevent_get_output(bev)) == 0)
			pconn_destroy(pc, "refused");
		return;
	}
	if (!pump(pc))
		return;
	if (evbuffer_get_length(bufferevent_get_output(bev)) == 0)
		bufferevent_disable(bev, EV_WRITE);  /* back to writing directly */
}

static void
pconn_event_cb(struct bufferevent *bev, short what, void *arg)
{
	(void)bev;
	pconn_destroy(arg, (what & BEV_EVENT_EOF) ? "closed by the replica" : "connection error");
}

void
primary_side_tick(struct primary_side *ps)
{
	Cairn__Repl__Frame f = CAIRN__REPL__FRAME__INIT;
	Cairn__Repl__Heartbeat hb = CAIRN__REPL__HEARTBEAT__INIT;
	struct primary_conn *pc, *next;
	time_t now = time(NULL);

	hb.lsn = persist_last_lsn(ps->persist);
	f.msg_case = CAIRN__REPL__FRAME__MSG_HEARTBEAT;
	f.heartbeat = &hb;
	for (pc = ps->conns; pc != NULL; pc = next) {
		next = pc->next;
		if (now - pc->last_heard > PEER_SILENCE_LIMIT) {
			pconn_destroy(pc, "silent for too long");
			continue;
		}
		if (pc->state != P_HELLO)
			send_frame(pc, &f);
	}
}

static void
close_all(struct primary_side *ps, const char *why)
{
	while (ps->conns != NULL)
		pconn_destroy(ps->conns, why);
}

void
primary_side_set_serving(struct primary_side *ps, bool serving)
{
	ps->serving = serving;
	if (!serving)
		close_all(ps, "this node stopped being a primary");
}

uint64_t
primary_side_quorum_lsn(struct primary_side *ps)
{
	return __atomic_load_n(&ps->quorum_lsn, __ATOMIC_ACQUIRE);
}

void
primary_side_counters(struct primary_side *ps, struct repl_counters *sum)
{
	repl_counters_add(sum, &ps->counters);
}

void
primary_side_write_stats(struct primary_side *ps, repl_stat_fn *emit, void *arg)
{
	uint64_t last = persist_last_lsn(ps->persist);
	struct primary_conn *pc;
	char name[32], value[512];
	int i = 0;

	pthread_mutex_lock(&ps->lock);
	snprintf(value, sizeof(value), "%d", ps->nconns);
	emit(arg, "connected_replicas", value);
	snprintf(value, sizeof(value), "%d", ps->sync_replicas);
	emit(arg, "sync_replicas", value);
	for (pc = ps->conns; pc != NULL; pc = pc->next) {
		if (pc->state == P_HELLO)
			continue;
		snprintf(name, sizeof(name), "replica%d", i++);
		snprintf(value, sizeof(value), "id=%s,addr=%s,acked_lsn=%" PRIu64 ",lag=%" PRIu64 ",state=%s",
		         pc->id, pc->addr, pc->acked_lsn,
		         last > pc->acked_lsn ? last - pc->acked_lsn : 0, state_name(pc->state));
		emit(arg, name, value);
	}
	pthread_mutex_unlock(&ps->lock);
}

struct primary_side *
primary_side_create(const struct primary_side_config *cfg, struct event_base *base,
                    struct persist *persist, repl_wake_fn *wake, void *wake_arg)
{
	struct primary_side *ps = calloc(1, sizeof(*ps));

	if (ps == NULL)
		return NULL;
	ps->node_id = strdup(cfg->node_id);
	if (cfg->secret != NULL) {
		ps->secret = malloc(cfg->secret_len);
		if (ps->secret != NULL)
			memcpy(ps->secret, cfg->secret, cfg->secret_len);
		ps->secret_len = cfg->secret_len;
	}
	if (ps->node_id == NULL || (cfg->secret != NULL && ps->secret == NULL)) {
		free(ps->node_id);
		free(ps->secret);
		free(ps);
		return NULL;
	}
	ps->sync_replicas = cfg->sync_replicas;
	ps->base = base;
	ps->persist = persist;
	ps->wake = wake;
	ps->wake_arg = wake_arg;
	ps->serving = true;
	pthread_mutex_init(&ps->lock, NULL);
	return ps;
}

void
primary_side_destroy(struct primary_side *ps)
{
	if (ps == NULL)
		return;
	close_all(ps, "this node is stopping");
	pthread_mutex_destroy(&ps->lock);
	free(ps->node_id);
	free(ps->secret);
	free(ps);
}
