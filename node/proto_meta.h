/* memcached's meta protocol: mg, ms, md, ma, me and mn, byte for byte as
 * memcached 1.6.18 answers them.
 *
 *   mg <key> <flag>*                      get (and touch, vivify, recache)
 *   ms <key> <datalen> <flag>*\r\n<data>\r\n   store (set/add/append/
 *                                         prepend/replace, CAS, invalidate)
 *   md <key> <flag>*                      delete or invalidate (mark stale)
 *   ma <key> <flag>*                      incr/decr (and create)
 *   me <key> [b]                          an item's metadata (debugging)
 *   mn                                    "MN": the end of a quiet pipeline
 *
 * A flag is the first byte of its token, and the rest of the token is its
 * argument; reply flags come back in request order, then Z, X, W (win and
 * stale state).  docs/protocol.md lists what cairn serves and its edge
 * cases; the behaviour is pinned by tests/integration/test_meta.py, whose
 * every expected reply was observed from memcached 1.6.18.
 *
 * Called by node/proto_text.c's dispatcher for a line whose command is
 * two bytes starting with 'm'; shares its tokens, number parsing, replies
 * and data-block handling (node/proto_shared.h).  Every change goes
 * through the store (storage/store.h); what the log does not carry yet
 * (the stale / win / base64-key marks) is listed there.
 */
#ifndef CAIRN_NODE_PROTO_META_H
#define CAIRN_NODE_PROTO_META_H

#include <stdbool.h>
#include <stddef.h>

#include "node/proto_shared.h"

struct evbuffer;
struct proto_state;

/* Is tokens[0] (two bytes, 'm' first) a meta command? */
bool proto_meta_command(const char *cmd);

/* Would this meta request change the cache (ms, md, ma; mg with N or T)?
 * While writes are paused (pause_writes), such a request waits. */
bool proto_meta_is_write(const struct token *tokens, size_t ntokens);

/* Run one meta command line, as process_line() runs a classic one: `data`
 * and `avail` are the bytes after the line (for ms's data block), and
 * *data_used how many of them the command consumed (or, with
 * LINE_NEED_DATA, needs). */
enum line_result proto_meta_process(struct proto_state *ps, struct token *tokens,
                                    size_t ntokens, const char *data, size_t avail,
                                    size_t *data_used, struct evbuffer *out);

#endif
