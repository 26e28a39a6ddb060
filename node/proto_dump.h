/* Dumping keys: `stats cachedump` and the `lru_crawler` commands, with
 * replies shaped byte for byte as memcached 1.6.18's, so that tools written
 * for memcached (libmemcached's memcdump, which sends `stats cachedump N 0`
 * for N = 0 .. 63) list cairn's keys.
 *
 * cairn has no slab classes: every item is reported in class 1, as
 * `stats items` and `stats slabs` report it.  Other class ids answer as
 * memcached does for a class with no items.
 *
 * Both dumps read the cache through cache_walk() (storage/cache.h): bucket
 * by bucket under one stripe lock at a time, formatting and appending to
 * the output buffer with no lock held.  Only live items are listed: unlike
 * memcached, expired and flushed items that have not been reclaimed yet
 * are left out.  Items a warm-up has not loaded yet are not listed either.
 * docs/protocol.md describes both commands and where they differ from
 * memcached.
 *
 * Called from node/proto_text.c, on a worker thread, with the words of the
 * request line.  A cachedump reply is written whole (it is capped at 2 MB);
 * a metadump, which lists every item, is streamed: it is written a slice at
 * a time, as the client reads it (struct proto_dump_stream).
 */
#ifndef CAIRN_NODE_PROTO_DUMP_H
#define CAIRN_NODE_PROTO_DUMP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct evbuffer;
struct proto_env;

/* memcached's cap on a cachedump reply (item_cachedump's 2 MB buffer): lines
 * are added while the reply, END included, stays below it. */
#define PROTO_CACHEDUMP_MAX (2 * 1024 * 1024)

/* `stats cachedump <class> <limit>`: `class_id` and `limit` are the two
 * words after "cachedump", NULL when the line has fewer (then the reply is
 * memcached's "CLIENT_ERROR bad command line"); words after them are
 * ignored, as memcached ignores them.  Lists at most `limit` items (0: no
 * limit) as "ITEM <key> [<bytes> b; <exptime> s]\r\n", then "END\r\n". */
void proto_dump_cachedump(const struct proto_env *env, const char *class_id,
                          const char *limit, struct evbuffer *out);

/* A metadump being sent, in a connection's protocol state: while `active`,
 * the connection sends the rest of it before reading the next request, so
 * the reply never has to be held in memory whole (memcached also streams
 * it, from its crawler thread). */
struct proto_dump_stream {
	bool active;
	uint64_t cursor;   /* cache_walk()'s position */
};

/* Append more of the metadump in `s` to `out`, until `out` holds more than
 * `out_limit` bytes or the dump is complete (then "END\r\n" is appended and
 * `active` cleared).  Returns s->active. */
bool proto_dump_continue(const struct proto_env *env, struct proto_dump_stream *s,
                         struct evbuffer *out, size_t out_limit);

/* `lru_crawler <sub> [<arg>]`: `nargs` is the number of words after
 * "lru_crawler" on the line, `sub` the first and `arg` the second (NULL
 * when missing).  metadump lists every live item as
 * "key=<uri-encoded key> exp=.. la=.. cas=.. fetch=.. cls=1 size=..\n",
 * then "END\r\n": it only starts `stream` (proto_dump_continue sends it);
 * crawl, enable, disable, sleep and tocrawl answer as docs/protocol.md
 * says. */
void proto_dump_lru_crawler(const struct proto_env *env, size_t nargs,
                            const char *sub, const char *arg, struct evbuffer *out,
                            struct proto_dump_stream *stream);

#endif
