/* Client connections: socket I/O and buffering around the protocol parser.
 *
 * A connection belongs to one worker thread for its whole life: it is created
 * there (conn_create) and all of its events run on that worker's event_base,
 * so nothing in it is locked.  Reads go into a flat buffer that the protocol
 * parser consumes; replies collect in an evbuffer and leave in one writev per
 * batch of requests, so a pipelined batch costs one system call each way.
 * When a client stops reading its replies, the connection stops reading its
 * requests (bounded output, see CONN_OUTPUT_LIMIT).
 */
#ifndef CAIRN_NODE_CONN_H
#define CAIRN_NODE_CONN_H

struct event_base;
struct proto_env;
struct thread_stats;
struct conn;

/* Replies buffered beyond this stop the parser until the client reads. */
#define CONN_OUTPUT_LIMIT (4 * 1024 * 1024)

/* A worker's connections, so that shutdown can free them all, and those of
 * them parked until their writes are durable (--fsync always). */
struct conn_list {
	struct conn *head;
	struct conn *parked;
};

/* Take ownership of the non-blocking socket `fd` and start serving it on
 * `base`.  The listener counted it in conn_stats.curr_connections (so the
 * -c limit holds while hand-offs are in flight); closing uncounts it.  On
 * failure the socket is closed.  The connection frees itself when
 * the client leaves or sends `quit`. */
void conn_create(struct event_base *base, int fd, const struct proto_env *env,
                 struct thread_stats *stats, struct conn_list *list);

/* Send the replies of parked connections whose writes are now durable and
 * resume them.  When the WAL failed before their writes became durable, the
 * reply of each such write becomes "SERVER_ERROR write-ahead log failed
 * before this write was durable: <why>" (never STORED; the write stays
 * applied in memory and may still reach the disk once it takes writes
 * again), the other replies of the batch are
 * kept, and the connection goes on (see struct held_write in conn.c).
 * Called on the worker's thread when the WAL reports progress. */
void conn_wake_parked(struct conn_list *list);

/* Close and free every connection in `list` (worker shutdown). */
void conn_close_all(struct conn_list *list);

#endif
