/* Client connections: read, parse, reply, with backpressure. */
#include "node/conn.h"

#include <assert.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "node/proto_binary.h"
#include "node/proto_text.h"
#include "node/settings.h"
#include "node/stats.h"
#include "replication/repl.h"
#include "storage/log.h"
#include "storage/persist.h"
#include "storage/store.h"

#define RBUF_INITIAL 16384
#define REPLICATION_TIMEOUT "SERVER_ERROR replication timeout\r\n"
#define PAUSE_RETRY_MS 5       /* how often a write waiting out a pause retries */

/* Parked replies and a failing WAL.
 *
 * A batch of pipelined requests is answered in one write, and with --fsync
 * always/everysec the whole batch waits (the connection is parked) until the
 * records of its writes are durable.  If the WAL fails meanwhile, those
 * records may never become durable: their STORED/DELETED/... must not be
 * sent, but the client is owed an answer for each request, and the replies
 * to its reads in the same batch are fine.  So while a batch is parsed we
 * note, for every request that appended a WAL record, where its reply sits
 * in `out` and the record's LSN (struct held_write).  When the WAL reports
 * an error, each noted reply whose LSN is not durable is replaced in place by
 * "SERVER_ERROR write-ahead log failed before this write was durable:
 * <strerror>", everything else is sent as it is, and the connection goes on
 * serving.  The text differs on purpose from "write-ahead log unavailable"
 * (a write refused up front, never applied): like SERVER_ERROR replication
 * timeout, this error does not undo the change in memory, and the WAL writer
 * keeps the record to rewrite once the disk recovers, so it may yet become
 * durable.  It says "not acknowledged", not "not done".
 * Positions are noted relative to the end of the batch in `out`, since
 * nothing is added to `out` while parked.  An ASCII noreply write has an
 * empty reply and gets nothing; a binary quiet write also answered nothing,
 * but a quiet request promises an answer to every failure, so it gets its
 * error packet at its place (the request it was is noted with it).  If the notes cannot be kept (out of memory) the
 * connection is closed instead, as before: never a false STORED. */
#define WAL_FAILED_TEXT "write-ahead log failed before this write was durable"
struct held_write {
	size_t start, end;         /* reply bytes in `out` when the batch was parsed */
	uint64_t lsn;              /* last WAL record the request appended */
	struct proto_quiet_write quiet; /* a binary quiet write's silence */
};

struct conn {
	int fd;
	struct event *read_ev;
	struct event *write_ev;
	char *rbuf;                /* unparsed request bytes */
	size_t rsize;              /* allocated size of rbuf */
	size_t rlen;               /* bytes in rbuf */
	size_t rbuf_max;           /* largest rbuf a request may need */
	struct evbuffer *out;      /* replies not yet written */
	struct proto_state proto;
	struct thread_stats *stats;
	bool reading;              /* read_ev is armed */
	bool closing;              /* close once `out` is written */
	bool parked;               /* replies held until wait_lsn is durable */
	uint64_t wait_lsn;         /* last LSN our writes produced */
	struct persist *persist;   /* NULL with --ephemeral */
	struct repl *repl;         /* NULL with --ephemeral */
	struct proto_quiet_write held_quiet; /* --sync-replicas: the held write
	                           * was binary quiet (its reply is empty) */
	struct evbuffer *held;     /* --sync-replicas: the reply of the write
	                            * waiting for replicas */
	struct event *timeout_ev;  /* --sync-timeout-ms for that write */
	struct event *pause_ev;    /* retry a write held by pause_writes */
	struct conn_list *list;
	struct conn *prev, *next;
	struct conn *parked_next;
	struct held_write *hw;     /* writes of the parsed batch (see above) */
	size_t nhw, hw_cap;
	size_t hw_batch_end;       /* length of `out` after the batch was parsed */
	bool hw_lost;              /* a note could not be kept */
};

static void conn_read_cb(evutil_socket_t fd, short what, void *arg);
static void conn_write_cb(evutil_socket_t fd, short what, void *arg);
static void conn_timeout_cb(evutil_socket_t fd, short what, void *arg);
static void conn_pause_cb(evutil_socket_t fd, short what, void *arg);

static void
unpark(struct conn *c)
{
	struct conn **pp = &c->list->parked;

	while (*pp != c)
		pp = &(*pp)->parked_next;
	*pp = c->parked_next;
	c->parked_next = NULL;
	c->parked = false;
}

static void
conn_destroy(struct conn *c)
{
	if (c->parked)
		unpark(c);
	if (c->prev != NULL)
		c->prev->next = c->next;
	else
		c->list->head = c->next;
	if (c->next != NULL)
		c->next->prev = c->prev;
	event_free(c->read_ev);
	event_free(c->write_ev);
	event_free(c->timeout_ev);
	event_free(c->pause_ev);
	evbuffer_free(c->out);
	evbuffer_free(c->held);
	close(c->fd);
	free(c->rbuf);
	free(c->hw);
	free(c);
	__atomic_sub_fetch(&conn_stats.curr_connections, 1, __ATOMIC_RELAXED);
}

void
conn_create(struct event_base *base, int fd, const struct proto_env *env,
            struct thread_stats *stats, struct conn_list *list)
{
	struct conn *c = calloc(1, sizeof(*c));

	if (c == NULL)
		goto out_close_fd;
	c->fd = fd;
	c->rsize = RBUF_INITIAL;
	c->rbuf = malloc(c->rsize);
	c->out = evbuffer_new();
	c->held = evbuffer_new();
	c->read_ev = event_new(base, fd, EV_READ | EV_PERSIST, conn_read_cb, c);
	c->write_ev = event_new(base, fd, EV_WRITE, conn_write_cb, c);
	c->timeout_ev = evtimer_new(base, conn_timeout_cb, c);
	c->pause_ev = evtimer_new(base, conn_pause_cb, c);
	if (c->rbuf == NULL || c->out == NULL || c->held == NULL || c->read_ev == NULL ||
	    c->write_ev == NULL || c->timeout_ev == NULL || c->pause_ev == NULL ||
	    event_add(c->read_ev, NULL) != 0)
		goto out_free;
	/* Room for the largest storable value plus its command line. */
	c->rbuf_max = env->settings->item_size_max + PROTO_GET_LINE_MAX;
	c->stats = stats;
	c->persist = env->persist;
	c->repl = env->repl;
	c->reading = true;
	proto_state_init(&c->proto, env, stats);
	c->list = list;
	c->next = list->head;
	if (list->head != NULL)
		list->head->prev = c;
	list->head = c;
	return;

out_free:
	if (c->read_ev != NULL)
		event_free(c->read_ev);
	if (c->write_ev != NULL)
		event_free(c->write_ev);
	if (c->timeout_ev != NULL)
		event_free(c->timeout_ev);
	if (c->pause_ev != NULL)
		event_free(c->pause_ev);
	if (c->out != NULL)
		evbuffer_free(c->out);
	if (c->held != NULL)
		evbuffer_free(c->held);
	free(c->rbuf);
	free(c);
out_close_fd:
	close(fd);
	__atomic_sub_fetch(&conn_stats.curr_connections, 1, __ATOMIC_RELAXED);
	log_msg(LOG_ALWAYS, "out of memory accepting a connection");
}

void
conn_close_all(struct conn_list *list)
{
	while (list->head != NULL)
		conn_destroy(list->head);
}

static bool
rbuf_resize(struct conn *c, size_t size)
{
	char *p = realloc(c->rbuf, size);

	if (p == NULL)
		return false;
	c->rbuf = p;
	c->rsize = size;
	return true;
}

/* Write what we can.  Returns false if the connection was destroyed. */
static bool
conn_flush(struct conn *c)
{
	while (evbuffer_get_length(c->out) > 0) {
		int n = evbuffer_write(c->out, c->fd);

		if (n > 0) {
			STATS_ADD(c->stats, bytes_written, (uint64_t)n);
			continue;
		}
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
			event_add(c->write_ev, NULL);
			/* Stop taking requests while replies pile up unread. */
			if (evbuffer_get_length(c->out) > CONN_OUTPUT_LIMIT && c->reading) {
				event_del(c->read_ev);
				c->reading = false;
			}
			return true;
		}
		conn_destroy(c);  /* the peer is gone */
		return false;
	}
	if (c->closing) {
		conn_destroy(c);
		return false;
	}
	return true;
}

/* --sync-replicas: each write is answered once enough replicas hold it, or
 * with SERVER_ERROR replication timeout, so requests run one at a time and
 * each reply is held apart until then. */
static bool
sync_mode(const struct conn *c)
{
	return repl_sync_replicas(c->repl) > 0 && !repl_is_replica(c->repl);
}

/* Replies to writes leave only once the writes are as durable as promised:
 * on disk with --fsync always (the group commit), in the kernel with
 * everysec (a crash of this process loses nothing acknowledged), and in N
 * replicas' WALs with --sync-replicas N.  The worker serves other
 * connections meanwhile, reads included, however slow the disk. */
static bool
must_wait(const struct conn *c)
{
	if (c->proto.role_ticket != 0)
		return true;  /* a promote/replicaof owes its reply */
	if (c->persist == NULL)
		return false;
	if (c->wait_lsn > persist_durable_lsn(c->persist))
		return true;
	return sync_mode(c) && c->wait_lsn > repl_quorum_lsn(c->repl);
}

/* Hold the connection's replies (see must_wait).  Its read event stays
 * registered: what arrives meanwhile is read into rbuf and parsed once it
 * resumes (conn_read_cb), so parking and resuming cost no epoll_ctl, which
 * was a fifth of a worker's time with one write in flight per client. */
static void
park(struct conn *c)
{
	if (!c->parked) {
		c->parked = true;
		c->parked_next = c->list->parked;
		c->list->parked = c;
	}
	if (evbuffer_get_length(c->held) > 0 || sync_mode(c)) {
		int ms = repl_sync_timeout_ms(c->repl);
		struct timeval tv = {ms / 1000, (ms % 1000) * 1000};

		event_add(c->timeout_ev, &tv);
	}
}

/* Drain the held reply of one write (`len` bytes at the head of `from`)
 * and append the error that replaces it to `to`: "SERVER_ERROR <why>" on
 * a text connection (nothing for noreply), on a binary one an error packet
 * with the held reply's opcode and opaque, or the quiet request's. */
static void
replace_reply(const struct conn *c, struct evbuffer *from, size_t len,
              const struct proto_quiet_write *quiet, const char *why, const char *msg,
              struct evbuffer *to)
{
	uint8_t header[24];

	if (c->proto.wire != PROTO_WIRE_BINARY) {
		evbuffer_drain(from, len);
		if (len > 0)
			evbuffer_add(to, msg, strlen(msg));
		return;
	}
	if (len == 0) {
		if (quiet->valid)
			proto_binary_write_failed(NULL, quiet, why, to);
		return;
	}
	/* A held reply is a whole packet: proto_binary never holds less. */
	if (evbuffer_copyout(from, header, sizeof(header)) != (ev_ssize_t)sizeof(header)) {
		assert(!"a held binary reply shorter than its header");
		evbuffer_drain(from, len);
		return;
	}
	evbuffer_drain(from, len);
	proto_binary_write_failed(header, NULL, why, to);
}

/* Parked no more: the held reply (if any) goes out with the others. */
static void
resume(struct conn *c, bool timed_out)
{
	unpark(c);
	event_del(c->timeout_ev);
	if (timed_out) {
		/* Stop waiting for that write; later requests do not inherit it.
		 * An ASCII noreply write held nothing and gets nothing. */
		c->wait_lsn = 0;
		replace_reply(c, c->held, evbuffer_get_length(c->held), &c->held_quiet,
		              "replication timeout", REPLICATION_TIMEOUT, c->out);
		c->held_quiet.valid = false;
	} else {
		evbuffer_add_buffer(c->out, c->held);
		c->held_quiet.valid = false;  /* it made it: no error owed */
	}
	if (!c->reading) {
		event_add(c->read_ev, NULL);
		c->reading = true;
	}
}

static void
note_write(struct conn *c, size_t start, size_t end, uint64_t lsn,
           const struct proto_quiet_write *quiet)
{
	if (c->nhw == c->hw_cap) {
		size_t cap = c->hw_cap ? c->hw_cap * 2 : 16;
		struct held_write *p = realloc(c->hw, cap * sizeof(*p));

		if (p == NULL) {
			c->hw_lost = true;
			return;
		}
		c->hw = p;
		c->hw_cap = cap;
	}
	c->hw[c->nhw++] = (struct held_write){start, end, lsn, *quiet};
}

/* proto_process() one request at a time, so that each write's reply and
 * LSN are known (see struct held_write); the same result as one call. */
static size_t
parse_batch(struct conn *c, struct evbuffer *dst, size_t *need)
{
	size_t used = 0, n;

	c->nhw = 0;
	c->hw_lost = false;
	c->proto.quiet_write.valid = false;
	if (c->persist == NULL || dst != c->out) {  /* --sync-replicas: one write, in held */
		n = proto_process(&c->proto, c->rbuf, c->rlen, dst, CONN_OUTPUT_LIMIT, need);
		c->held_quiet = c->proto.quiet_write;
		return n;
	}
	c->proto.max_requests = 1;
	do {
		size_t start = evbuffer_get_length(dst);
		uint64_t lsn;

		c->proto.quiet_write.valid = false;
		n = proto_process(&c->proto, c->rbuf + used, c->rlen - used, dst, CONN_OUTPUT_LIMIT, need);
		used += n;
		lsn = store_take_thread_lsn();
		if (lsn > 0) {
			note_write(c, start, evbuffer_get_length(dst), lsn, &c->proto.quiet_write);
			if (lsn > c->wait_lsn)
				c->wait_lsn = lsn;
		}
	} while (n > 0 && used < c->rlen && !c->proto.paused && !c->proto.close &&
	         evbuffer_get_length(dst) < CONN_OUTPUT_LIMIT);
	c->proto.max_requests = 0;
	c->hw_batch_end = evbuffer_get_length(dst);
	return used;
}

/* The WAL failed while c was parked: replace the held reply of every write
 * that is not durable by SERVER_ERROR (see struct held_write).  Returns
 * false if that cannot be done (then the caller closes the connection). */
static bool
fail_held_writes(struct conn *c, int err)
{
	uint64_t durable = persist_durable_lsn(c->persist);
	size_t len = evbuffer_get_length(c->out), sent, pos = 0, i;
	struct evbuffer *rest;
	char why[128], msg[160];

	snprintf(why, sizeof(why), "%s: %s", WAL_FAILED_TEXT, strerror(err));
	snprintf(msg, sizeof(msg), "SERVER_ERROR %s\r\n", why);
	if (evbuffer_get_length(c->held) > 0 || c->held_quiet.valid) {
		/* --sync-replicas: the one write held apart. */
		struct evbuffer *failed = evbuffer_new();

		if (failed == NULL)
			return false;
		replace_reply(c, c->held, evbuffer_get_length(c->held), &c->held_quiet, why, msg,
		              failed);
		evbuffer_add_buffer(c->held, failed);
		evbuffer_free(failed);
		c->held_quiet.valid = false;
	}
	if (c->hw_lost)
		return false;
	if (c->nhw == 0)
		return true;
	if (len > c->hw_batch_end)
		return false;
	sent = c->hw_batch_end - len;   /* bytes of the batch already written */
	if ((rest = evbuffer_new()) == NULL)
		return false;
	for (i = 0; i < c->nhw; i++) {
		const struct held_write *h = &c->hw[i];

		if (h->lsn <= durable || (h->start == h->end && !h->quiet.valid))
			continue;
		if (h->start < sent + pos)
			return evbuffer_free(rest), false;  /* partly sent already */
		evbuffer_remove_buffer(c->out, rest, h->start - sent - pos);
		replace_reply(c, c->out, h->end - h->start, &h->quiet, why, msg, rest);
		pos = h->end - sent;
	}
	evbuffer_add_buffer(rest, c->out);
	evbuffer_add_buffer(c->out, rest);
	evbuffer_free(rest);
	c->nhw = 0;
	return true;
}

/* Parse what has been read and send the replies, until the input holds no
 * complete request or the client stops reading.  Returns false if the
 * connection was destroyed. */
static bool
conn_process(struct conn *c)
{
	size_t used, need;

	for (;;) {
		bool one_at_a_time = sync_mode(c);
		uint64_t lsn;

		c->proto.max_requests = one_at_a_time ? 1 : 0;
		store_take_thread_lsn();  /* forget other connections' LSNs */
		used = parse_batch(c, one_at_a_time ? c->held : c->out, &need);
		lsn = store_take_thread_lsn();
		if (lsn > c->wait_lsn)
			c->wait_lsn = lsn;
		if (used > 0) {
			c->rlen -= used;
			memmove(c->rbuf, c->rbuf + used, c->rlen);
		}
		if (c->proto.close)
			c->closing = true;
		if (need > c->rsize && !rbuf_resize(c, need))
			c->closing = true;
		/* A large value was read: give the memory back. */
		if (need == 0 && c->rsize > RBUF_INITIAL * 4 && c->rlen <= RBUF_INITIAL)
			rbuf_resize(c, RBUF_INITIAL);
		if (must_wait(c)) {
			park(c);
			return true;
		}
		evbuffer_add_buffer(c->out, c->held);
		if (!conn_flush(c))
			return false;
		if (c->proto.paused) {
			/* A write waits out pause_writes: stop reading, retry soon. */
			struct timeval tv = {0, PAUSE_RETRY_MS * 1000};

			if (c->reading) {
				event_del(c->read_ev);
				c->reading = false;
			}
			event_add(c->pause_ev, &tv);
			return true;
		}
		/* The parser pauses when output piles up; go on once it is sent
		 * (conn_write_cb).  A metadump goes on without new input. */
		if (evbuffer_get_length(c->out) > 0)
			return true;
		if (c->proto.dump.active)
			continue;
		if (used == 0 || c->rlen == 0)
			return true;
	}
}

static void
conn_read_cb(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c = arg;
	ssize_t n;

	(void)what;
	if (c->parked && c->rlen == c->rsize) {
		/* Parked with rbuf full: stop reading until it resumes. */
		event_del(c->read_ev);
		c->reading = false;
		return;
	}
	if (c->rlen == c->rsize) {
		/* A request line that has not ended yet: let it grow, up to the
		 * limit the parser enforces. */
		size_t bigger = c->rsize * 2;

		if (bigger > c->rbuf_max || !rbuf_resize(c, bigger)) {
			conn_destroy(c);
			return;
		}
	}
	n = read(fd, c->rbuf + c->rlen, c->rsize - c->rlen);
	if (n == 0 && c->parked) {
		/* The client is done sending; its held replies still go out.
		 * The end of input is seen again once it resumes. */
		event_del(c->read_ev);
		c->reading = false;
		return;
	}
	if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
		conn_destroy(c);
		return;
	}
	if (n < 0)
		return;
	c->rlen += (size_t)n;
	STATS_ADD(c->stats, bytes_read, (uint64_t)n);
	if (!c->parked)
		conn_process(c);
}

static void
conn_write_cb(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c = arg;

	(void)fd;
	(void)what;
	if (!conn_flush(c))
		return;
	if (evbuffer_get_length(c->out) > 0 || c->parked)
		return;  /* still blocked, or waiting for durability */
	if (!c->reading) {
		event_add(c->read_ev, NULL);
		c->reading = true;
	}
	/* Requests may be waiting in rbuf since the parser paused, or the
	 * rest of a metadump. */
	if (c->rlen > 0 || c->proto.dump.active)
		conn_process(c);
}

static void
conn_pause_cb(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c = arg;

	(void)fd;
	(void)what;
	if (c->parked)
		return;
	if (!c->reading) {
		event_add(c->read_ev, NULL);
		c->reading = true;
	}
	conn_process(c);
}

static void
conn_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c = arg;

	(void)fd;
	(void)what;
	if (!c->parked)
		return;
	resume(c, true);
	if (conn_flush(c) && c->rlen > 0)
		conn_process(c);
}

void
conn_wake_parked(struct conn_list *list)
{
	struct conn *c = list->parked, *next;

	for (; c != NULL; c = next) {
		int err;

		next = c->parked_next;
		if (c->proto.role_ticket != 0)
			proto_role_reply(&c->proto, c->out);  /* its reply, if it is done */
		if (c->proto.role_ticket == 0 && must_wait(c) &&
		    (err = persist_write_error(c->persist)) != 0) {
			/* Its writes may never become durable: no STORED, but an
			 * answer for each, and the connection goes on. */
			if (!fail_held_writes(c, err)) {
				conn_destroy(c);
				continue;
			}
			c->wait_lsn = 0;
		} else if (must_wait(c)) {
			continue;
		}
		resume(c, false);
		if (!conn_flush(c))
			continue;
		if (c->rlen > 0)
			conn_process(c);
	}
}
