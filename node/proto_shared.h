/* What the protocol parsers share: node/proto_text.c (the classic ASCII
 * commands, the dispatcher), node/proto_meta.c (the meta commands) and
 * node/proto_binary.c (the binary protocol).  Internal to node/: tokens,
 * memcached's number parsing, the reply and value writers, the refusals of
 * writes and of values too large, the stats groups, and the handling of a
 * storage command's data block, so that set and ms frame, refuse and
 * swallow values the same way.  All defined in proto_text.c.
 */
#ifndef CAIRN_NODE_PROTO_SHARED_H
#define CAIRN_NODE_PROTO_SHARED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "storage/cache.h"

#include "node/stats_report.h"

struct evbuffer;
struct item;
struct proto_env;
struct proto_state;

/* memcached's MAX_TOKENS: a line is split into at most this many tokens,
 * the terminal one included. */
#define PROTO_MAX_TOKENS 24

struct token {
	char *value;   /* NUL-terminated; NULL in the terminal token if the line ended */
	size_t length; /* 0 only in the terminal token */
};

/* What running one command line did. */
enum line_result {
	LINE_DONE,       /* the line was handled */
	LINE_NEED_DATA,  /* a storage command waits for its value */
	LINE_PAUSED,     /* a write while writes are paused: not consumed */
};

/* Split `line` (NUL-terminated, modified in place) like memcached's
 * tokenize_command: returns the token count including a terminal token of
 * length 0 whose value points at the unparsed rest of the line, or is NULL
 * when the whole line was consumed. */
size_t proto_tokenize(char *line, struct token *tokens, size_t max_tokens);

/* memcached's safe_strtoull, safe_strtoul (32 bits) and safe_strtol:
 * false for anything but a whole decimal number in range (a minus sign is
 * refused by the unsigned ones). */
bool proto_parse_u64(const char *s, uint64_t *out);
bool proto_parse_u32(const char *s, uint32_t *out);
bool proto_parse_i32(const char *s, int32_t *out);

/* The protocol's exptime (0 never; up to 30 days relative; beyond, a unix
 * time; negative, already expired) as an absolute unix time for the cache. */
uint32_t proto_absolute_exptime(int32_t exptime);

/* The binary protocol's exptime: unsigned, so never "already expired" by
 * sign; 0xffffffff is 2106. */
uint32_t proto_absolute_exptime_u32(uint32_t exptime);

/* "<text>\r\n", unless noreply. */
void proto_reply(struct evbuffer *out, bool noreply, const char *text);

/* May this connection change the cache now?  Not on a replica, nor when
 * the WAL cannot write: then `msg` says why ("readonly replica", ...). */
enum proto_refusal {
	PROTO_WRITE_OK,
	PROTO_REFUSE_REPLICA,
	PROTO_REFUSE_WAL,
};
enum proto_refusal proto_write_refusal(struct proto_state *ps, char *msg, size_t msglen);

/* proto_write_refusal() for the ASCII protocol: reply "SERVER_ERROR <why>"
 * and return true when the change must not be made. */
bool proto_refuse_write(struct proto_state *ps, struct evbuffer *out);

/* Store `it` (store_store()) and drop the caller's reference; a
 * compare-and-swap is counted as memcached counts it (cas_hits, cas_badval,
 * cas_misses). */
enum cache_status proto_store(struct proto_state *ps, struct item *it,
                              enum cache_store_mode mode, uint64_t cas, uint64_t *cas_out);

/* One key of a get (or, with `touch`, a get-and-touch to `exptime`): the
 * item with a reference for the caller, or NULL; counted as memcached
 * counts it (cmd_get/get_hits/get_misses, or for a touch cmd_touch/
 * touch_hits/touch_misses). */
struct item *proto_fetch(struct proto_state *ps, const char *key, size_t nkey, bool touch,
                         uint32_t exptime);

/* Append it's value and its "\r\n", and drop the caller's reference to it
 * (large values are sent from the item, without a copy). */
void proto_add_value(struct proto_state *ps, struct evbuffer *out, struct item *it);

/* The same for the first `len` bytes of the value and its "\r\n" (the
 * binary protocol sends the value alone). */
void proto_add_item_bytes(struct proto_state *ps, struct evbuffer *out, struct item *it,
                          size_t len);

/* `stats <group>` ("" for plain `stats`) through `emit`: the groups both
 * protocols serve (reset and cachedump are the ASCII parser's).  False,
 * nothing emitted, for an unknown group. */
bool proto_stats_group(const struct proto_env *env, const char *group, stats_emit_fn *emit,
                       void *arg);

/* `stats reset`: clear the counters. */
void proto_stats_reset(const struct proto_env *env);

/* Is a value of vlen bytes over the item size limit (-I)?  If so count
 * it, delete the old item if `discard` (memcached drops it so a failed set
 * leaves no stale data) and return true; the caller refuses it. */
bool proto_value_too_large(struct proto_state *ps, const char *key, size_t nkey, uint64_t vlen,
                           uint32_t flags, bool discard);

/* A storage command's value over the item size limit (-I): reply
 * SERVER_ERROR, have its data block swallowed, delete the old item if
 * `discard`, and return true. */
bool proto_refuse_too_large(struct proto_state *ps, const char *key, size_t nkey,
                            uint32_t vlen, uint32_t flags, bool discard, bool noreply,
                            struct evbuffer *out);

/* Has the whole data block (vlen bytes and "\r\n") arrived after the line?
 * *data_used is its size either way: consumed when it has, awaited
 * (LINE_NEED_DATA) when not. */
bool proto_data_arrived(size_t avail, uint32_t vlen, size_t *data_used);

/* The unlinked item for a data block that has arrived, with one reference
 * for the caller; NULL after replying with the error (a block not ending
 * in "\r\n", a refused write, no memory: then the old item is deleted if
 * `discard`). */
struct item *proto_data_item(struct proto_state *ps, const char *key, size_t nkey,
                             uint32_t flags, uint32_t exptime, const char *data,
                             uint32_t vlen, bool noreply, bool discard,
                             struct evbuffer *out);

#endif
