/* The server process: listener, worker threads, signals, background sweep.
 *
 * Threads (memcached's model):
 *  - the main thread runs the listener, the signal handlers and a once-a-
 *    second timer that sweeps expired items out of the cache;
 *  - `-t` worker threads each run their own event_base; the main thread hands
 *    each accepted socket to the next worker in turn (round-robin) through
 *    the worker's queue and eventfd, and the connection stays on that worker.
 * SIGTERM or SIGINT stops the listener and the workers, frees everything and
 * returns 0.
 */
#ifndef CAIRN_NODE_SERVER_H
#define CAIRN_NODE_SERVER_H

struct settings;

/* Bind the client port, daemonize / write the pid file / drop privileges as
 * the settings ask, then serve until SIGTERM or SIGINT.  Returns the process
 * exit status: 0 after a clean stop, 1 when the server could not start (the
 * reason is logged). */
int server_run(const struct settings *s);

#endif
