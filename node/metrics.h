/* The metrics endpoint (--metrics-port): HTTP on libevent's evhttp, served
 * by a thread of its own so that a scrape never waits behind clients.
 *
 *   GET /metrics  Prometheus text format (version 0.0.4): the counters of
 *                 `stats`, `stats persistence` and `stats replication`,
 *                 named as memcached_exporter names memcached's where one
 *                 exists, cairn_... otherwise.
 *   GET /health   200 "serving", or 503 with the reason (recovering, the
 *                 WAL cannot write, a replica's link is down).
 *
 * Life cycle, as server_run() drives it:
 *   metrics_open()     binds the port, before -d detaches (a port in use is
 *                      reported to the user's terminal) and before -u drops
 *                      privileges;
 *   metrics_start()    starts the HTTP thread, before recovery, so /health
 *                      can answer "recovering" while the WAL is replayed;
 *   metrics_serving()  the node serves: from now on every counter is read
 *                      from `env`;
 *   metrics_stop()     stops and joins the thread and frees everything.
 */
#ifndef CAIRN_NODE_METRICS_H
#define CAIRN_NODE_METRICS_H

struct metrics;
struct proto_env;

/* Bind addr:port and listen.  NULL (after one log line) on failure. */
struct metrics *metrics_open(const char *addr, int port);

/* Start the HTTP thread.  0, or -1 after one log line. */
int metrics_start(struct metrics *m);

/* The node serves; `env` stays valid until metrics_stop(). */
void metrics_serving(struct metrics *m, const struct proto_env *env);

/* Stop, join and free.  NULL is a no-op. */
void metrics_stop(struct metrics *m);

#endif
