/* memcache binary protocol: header checks, dispatch, replies.
 *
 * Packet (all integers big-endian):
 *   0 magic  1 opcode  2 key length  4 extras length  5 data type
 *   6 vbucket (request) / status (reply)  8 body length  12 opaque  16 CAS
 * then extras, key and value; body length = extras + key + value.
 *
 * Each packet goes through, in memcached's order: magic (else a silent
 * close), body length >= key + extras (else Unknown command and close),
 * authentication under -S (else Auth failure and close), key length <= 250
 * and the opcode's own shape (else Invalid arguments and close), and only
 * then is its body awaited.  Unknown opcodes and refused bodies (value too
 * large, SASL without -S) are answered once the body has been swallowed,
 * and the connection stays open.
 */
#include "node/proto_binary.h"
#include "node/proto_shared.h"

#include <assert.h>
#include <event2/buffer.h>
#include <stdbool.h>
#include <string.h>

#include "node/client_auth.h"
#include "node/settings.h"
#include "node/stats.h"
#include "node/stats_report.h"
#include "storage/cache.h"
#include "storage/store.h"

#define HEADER_LEN 24
#define RESPONSE_MAGIC 0x81
#define SASL_MECH_MAX 32      /* memcached's longest mechanism name */
#define SASL_BODY_MAX 1024    /* an unauthenticated client's PLAIN message */
#define NO_CREATE 0xffffffffu /* INCR/DECR exptime: do not create a missing key */

enum opcode {
	OP_GET = 0x00, OP_SET = 0x01, OP_ADD = 0x02, OP_REPLACE = 0x03,
	OP_DELETE = 0x04, OP_INCREMENT = 0x05, OP_DECREMENT = 0x06, OP_QUIT = 0x07,
	OP_FLUSH = 0x08, OP_GETQ = 0x09, OP_NOOP = 0x0a, OP_VERSION = 0x0b,
	OP_GETK = 0x0c, OP_GETKQ = 0x0d, OP_APPEND = 0x0e, OP_PREPEND = 0x0f,
	OP_STAT = 0x10, OP_SETQ = 0x11, OP_ADDQ = 0x12, OP_REPLACEQ = 0x13,
	OP_DELETEQ = 0x14, OP_INCREMENTQ = 0x15, OP_DECREMENTQ = 0x16, OP_QUITQ = 0x17,
	OP_FLUSHQ = 0x18, OP_APPENDQ = 0x19, OP_PREPENDQ = 0x1a,
	OP_TOUCH = 0x1c, OP_GAT = 0x1d, OP_GATQ = 0x1e,
	OP_SASL_LIST_MECHS = 0x20, OP_SASL_AUTH = 0x21, OP_SASL_STEP = 0x22,
	OP_GATK = 0x23, OP_GATKQ = 0x24,
};

enum status {
	ST_OK = 0x0000,
	ST_KEY_ENOENT = 0x0001,
	ST_KEY_EEXISTS = 0x0002,
	ST_E2BIG = 0x0003,
	ST_EINVAL = 0x0004,
	ST_NOT_STORED = 0x0005,
	ST_DELTA_BADVAL = 0x0006,
	ST_AUTH_ERROR = 0x0020,
	ST_AUTH_CONTINUE = 0x0021,
	ST_UNKNOWN_COMMAND = 0x0081,
	ST_ENOMEM = 0x0082,
	ST_NOT_SUPPORTED = 0x0083,  /* a write on a replica */
	ST_EINTERNAL = 0x0084,      /* a write while the WAL cannot write */
};

/* What a request must look like (checked on the header alone). */
enum shape {
	SHAPE_UNKNOWN,  /* not an opcode we serve */
	SHAPE_KEY,      /* key, nothing else: GET*, DELETE */
	SHAPE_STORE,    /* 8 extras, key, value: SET, ADD, REPLACE */
	SHAPE_CONCAT,   /* key, value: APPEND, PREPEND */
	SHAPE_ARITH,    /* 20 extras, key: INCREMENT, DECREMENT */
	SHAPE_EMPTY,    /* nothing: QUIT, NOOP, VERSION, SASL_LIST_MECHS */
	SHAPE_FLUSH,    /* 0 or 4 extras */
	SHAPE_STAT,     /* an optional key (the group) */
	SHAPE_TOUCH,    /* 4 extras, key: TOUCH, GAT* */
	SHAPE_SASL,     /* key (the mechanism), value */
};

struct command {
	uint8_t shape;
	uint8_t base;   /* the opcode of the loud form */
	bool quiet;     /* success (and a get's miss) is not answered */
	bool write;     /* changes the cache: waits out pause_writes */
};

static const struct command commands[256] = {
	[OP_GET] = {SHAPE_KEY, OP_GET, false, false},
	[OP_GETQ] = {SHAPE_KEY, OP_GET, true, false},
	[OP_GETK] = {SHAPE_KEY, OP_GETK, false, false},
	[OP_GETKQ] = {SHAPE_KEY, OP_GETK, true, false},
	[OP_SET] = {SHAPE_STORE, OP_SET, false, true},
	[OP_SETQ] = {SHAPE_STORE, OP_SET, true, true},
	[OP_ADD] = {SHAPE_STORE, OP_ADD, false, true},
	[OP_ADDQ] = {SHAPE_STORE, OP_ADD, true, true},
	[OP_REPLACE] = {SHAPE_STORE, OP_REPLACE, false, true},
	[OP_REPLACEQ] = {SHAPE_STORE, OP_REPLACE, true, true},
	[OP_APPEND] = {SHAPE_CONCAT, OP_APPEND, false, true},
	[OP_APPENDQ] = {SHAPE_CONCAT, OP_APPEND, true, true},
	[OP_PREPEND] = {SHAPE_CONCAT, OP_PREPEND, false, true},
	[OP_PREPENDQ] = {SHAPE_CONCAT, OP_PREPEND, true, true},
	[OP_DELETE] = {SHAPE_KEY, OP_DELETE, false, true},
	[OP_DELETEQ] = {SHAPE_KEY, OP_DELETE, true, true},
	[OP_INCREMENT] = {SHAPE_ARITH, OP_INCREMENT, false, true},
	[OP_INCREMENTQ] = {SHAPE_ARITH, OP_INCREMENT, true, true},
	[OP_DECREMENT] = {SHAPE_ARITH, OP_DECREMENT, false, true},
	[OP_DECREMENTQ] = {SHAPE_ARITH, OP_DECREMENT, true, true},
	[OP_QUIT] = {SHAPE_EMPTY, OP_QUIT, false, false},
	[OP_QUITQ] = {SHAPE_EMPTY, OP_QUIT, true, false},
	[OP_FLUSH] = {SHAPE_FLUSH, OP_FLUSH, false, true},
	[OP_FLUSHQ] = {SHAPE_FLUSH, OP_FLUSH, true, true},
	[OP_NOOP] = {SHAPE_EMPTY, OP_NOOP, false, false},
	[OP_VERSION] = {SHAPE_EMPTY, OP_VERSION, false, false},
	[OP_STAT] = {SHAPE_STAT, OP_STAT, false, false},
	[OP_TOUCH] = {SHAPE_TOUCH, OP_TOUCH, false, true},
	[OP_GAT] = {SHAPE_TOUCH, OP_GAT, false, true},
	[OP_GATQ] = {SHAPE_TOUCH, OP_GAT, true, true},
	[OP_GATK] = {SHAPE_TOUCH, OP_GATK, false, true},
	[OP_GATKQ] = {SHAPE_TOUCH, OP_GATK, true, true},
	[OP_SASL_LIST_MECHS] = {SHAPE_EMPTY, OP_SASL_LIST_MECHS, false, false},
	[OP_SASL_AUTH] = {SHAPE_SASL, OP_SASL_AUTH, false, false},
	[OP_SASL_STEP] = {SHAPE_SASL, OP_SASL_STEP, false, false},
};

/* One request: the header's fields, and once the packet has arrived, its
 * parts (pointers into the caller's buffer). */
struct request {
	uint8_t opcode;
	uint8_t extlen;
	uint16_t keylen;
	uint32_t bodylen;
	uint32_t opaque;
	uint64_t cas;
	const struct command *cmd;
	const uint8_t *ext;
	const char *key;
	const char *value;
	uint32_t vlen;
};

static uint16_t
get16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static uint32_t
get32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static uint64_t
get64(const uint8_t *p)
{
	return (uint64_t)get32(p) << 32 | get32(p + 4);
}

static void
put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static void
put32(uint8_t *p, uint32_t v)
{
	put16(p, (uint16_t)(v >> 16));
	put16(p + 2, (uint16_t)v);
}

static void
put64(uint8_t *p, uint64_t v)
{
	put32(p, (uint32_t)(v >> 32));
	put32(p + 4, (uint32_t)v);
}

/* memcached's texts for the error statuses (write_bin_error). */
static const char *
status_text(uint16_t status)
{
	switch (status) {
	case ST_KEY_ENOENT: return "Not found";
	case ST_KEY_EEXISTS: return "Data exists for key.";
	case ST_E2BIG: return "Too large.";
	case ST_EINVAL: return "Invalid arguments";
	case ST_NOT_STORED: return "Not stored.";
	case ST_DELTA_BADVAL: return "Non-numeric server-side value for incr or decr";
	case ST_AUTH_ERROR: return "Auth failure.";
	case ST_ENOMEM: return "Out of memory";
	default: return "Unknown command";
	}
}

/******** REPLIES ********/

static void
add_header(struct evbuffer *out, uint8_t opcode, uint32_t opaque, uint16_t status,
           uint8_t extlen, uint16_t keylen, uint32_t bodylen, uint64_t cas)
{
	uint8_t h[HEADER_LEN];

	h[0] = RESPONSE_MAGIC;
	h[1] = opcode;
	put16(h + 2, keylen);
	h[4] = extlen;
	h[5] = 0;
	put16(h + 6, status);
	put32(h + 8, bodylen);
	put32(h + 12, opaque);
	put64(h + 16, cas);
	evbuffer_add(out, h, sizeof(h));
}

/* A reply without extras: key and value (either may be empty). */
static void
reply(struct evbuffer *out, const struct request *rq, uint16_t status, const void *key,
      size_t nkey, const void *value, size_t nvalue, uint64_t cas)
{
	assert(nkey <= CACHE_KEY_MAX && nvalue <= UINT32_MAX - nkey);
	add_header(out, rq->opcode, rq->opaque, status, 0, (uint16_t)nkey,
	           (uint32_t)(nkey + nvalue), cas);
	evbuffer_add(out, key, nkey);
	evbuffer_add(out, value, nvalue);
}

static void
reply_error(struct evbuffer *out, const struct request *rq, uint16_t status)
{
	const char *text = status_text(status);

	reply(out, rq, status, NULL, 0, text, strlen(text), 0);
}

/* Success, with a CAS: nothing for a quiet request (which node/conn.c is
 * told of: a write whose durability then fails still owes an error). */
static void
reply_ok(struct proto_state *ps, struct evbuffer *out, const struct request *rq,
         const void *value, size_t nvalue, uint64_t cas)
{
	if (rq->cmd->quiet)
		ps->quiet_write = (struct proto_quiet_write){true, rq->opcode, rq->opaque};
	else
		reply(out, rq, ST_OK, NULL, 0, value, nvalue,
		      ps->env->settings->use_cas ? cas : 0);
}

/* A write this node may not make (replica, WAL down): reply and say so.
 * The closest statuses memcached's clients know: "Not supported" on a
 * replica, "Internal error" when the log cannot write; the body says why,
 * as ASCII's SERVER_ERROR does. */
static bool
refuse_write(struct proto_state *ps, struct evbuffer *out, const struct request *rq)
{
	char msg[160];

	switch (proto_write_refusal(ps, msg, sizeof(msg))) {
	case PROTO_WRITE_OK:
		return false;
	case PROTO_REFUSE_REPLICA:
		reply(out, rq, ST_NOT_SUPPORTED, NULL, 0, msg, strlen(msg), 0);
		return true;
	case PROTO_REFUSE_WAL:
		reply(out, rq, ST_EINTERNAL, NULL, 0, msg, strlen(msg), 0);
		return true;
	}
	return true;
}

void
proto_binary_write_failed(const uint8_t *held, const struct proto_quiet_write *quiet,
                          const char *why, struct evbuffer *out)
{
	struct request rq = held != NULL
	    ? (struct request){.opcode = held[1], .opaque = get32(held + 12)}
	    : (struct request){.opcode = quiet->opcode, .opaque = quiet->opaque};

	assert(held != NULL || quiet->valid);
	reply(out, &rq, ST_EINTERNAL, NULL, 0, why, strlen(why), 0);
}

/* A hit: flags, the key for GETK/GATK, the value (sent from the item when
 * large), and the item's CAS; drops the caller's reference. */
static void
reply_item(struct proto_state *ps, struct evbuffer *out, const struct request *rq,
           struct item *it, bool with_key, bool with_value)
{
	uint16_t nkey = with_key ? it->nkey : 0;
	uint32_t nvalue = with_value ? it->nbytes : 0;
	uint8_t flags[4];

	add_header(out, rq->opcode, rq->opaque, ST_OK, sizeof(flags), nkey,
	           (uint32_t)sizeof(flags) + nkey + nvalue,
	           ps->env->settings->use_cas ? it->cas : 0);
	put32(flags, it->flags);
	evbuffer_add(out, flags, sizeof(flags));
	evbuffer_add(out, item_key(it), nkey);
	if (with_value)
		proto_add_item_bytes(ps, out, it, nvalue);
	else
		cache_item_put(ps->env->cache, it);
}

/******** COMMANDS ********/

/* GET, GETK, GAT, GATK and their quiet forms, and TOUCH. */
static void
process_get(struct proto_state *ps, struct evbuffer *out, const struct request *rq)
{
	uint8_t base = rq->cmd->base;
	bool touch = rq->cmd->shape == SHAPE_TOUCH;
	bool with_key = base == OP_GETK || base == OP_GATK;
	struct item *it;

	if (touch && refuse_write(ps, out, rq))
		return;
	/* memcached counts a binary GAT as a touch, not a get. */
	it = proto_fetch(ps, rq->key, rq->keylen, touch,
	                 touch ? proto_absolute_exptime_u32(get32(rq->ext)) : 0);
	if (it != NULL)
		reply_item(ps, out, rq, it, with_key, base != OP_TOUCH);
	else if (rq->cmd->quiet)
		return;
	else if (with_key)  /* the key, and no text */
		reply(out, rq, ST_KEY_ENOENT, rq->key, rq->keylen, NULL, 0, 0);
	else
		reply_error(out, rq, ST_KEY_ENOENT);
}

/* A new item for a store request's key and value; NULL after replying. */
static struct item *
request_item(struct proto_state *ps, struct evbuffer *out, const struct request *rq,
             uint32_t flags, uint32_t exptime)
{
	struct item *it;

	if (refuse_write(ps, out, rq))
		return NULL;
	it = cache_item_create(ps->env->cache, rq->key, rq->keylen, flags,
	                       proto_absolute_exptime_u32(exptime), rq->vlen);
	if (it == NULL) {
		STATS_INCR(ps->stats, store_no_memory);
		reply_error(out, rq, ST_ENOMEM);
		if (rq->cmd->base == OP_SET)
			store_discard(ps->env->store, rq->key, rq->keylen);
		return NULL;
	}
	memcpy(item_value(it), rq->value, rq->vlen);
	return it;
}

static void
reply_store(struct proto_state *ps, struct evbuffer *out, const struct request *rq,
            enum cache_status status, uint64_t cas)
{
	switch (status) {
	case CACHE_STORED:
		reply_ok(ps, out, rq, NULL, 0, cas);
		break;
	case CACHE_EXISTS:
		reply_error(out, rq, ST_KEY_EEXISTS);
		break;
	case CACHE_NOT_FOUND:
		reply_error(out, rq, ST_KEY_ENOENT);
		break;
	case CACHE_NOT_STORED:
		/* ADD on a live key; REPLACE, APPEND, PREPEND on a missing one */
		reply_error(out, rq, rq->cmd->base == OP_ADD ? ST_KEY_EEXISTS
		                   : rq->cmd->base == OP_REPLACE ? ST_KEY_ENOENT
		                   : ST_NOT_STORED);
		break;
	case CACHE_NO_MEMORY:
		STATS_INCR(ps->stats, store_no_memory);
		reply_error(out, rq, ST_ENOMEM);
		break;
	default:
		reply_error(out, rq, ST_NOT_STORED);
		break;
	}
}

/* The request's CAS as the store should see it: with -C memcached's items
 * have none, so a CAS on SET/ADD/REPLACE/APPEND/PREPEND is ignored. */
static uint64_t
request_cas(struct proto_state *ps, const struct request *rq)
{
	return ps->env->settings->use_cas ? rq->cas : 0;
}

/* SET, ADD, REPLACE: with a CAS, each is a compare-and-swap (ADD too, as
 * in memcached). */
static void
process_store(struct proto_state *ps, struct evbuffer *out, const struct request *rq)
{
	static const enum cache_store_mode modes[] = {
		[OP_SET] = CACHE_SET, [OP_ADD] = CACHE_ADD, [OP_REPLACE] = CACHE_REPLACE,
	};
	uint64_t cas = request_cas(ps, rq), new_cas = 0;
	enum cache_store_mode mode = cas != 0 ? CACHE_CAS : modes[rq->cmd->base];
	enum cache_status status;
	struct item *it;

	STATS_INCR(ps->stats, cmd_set);
	it = request_item(ps, out, rq, get32(rq->ext), get32(rq->ext + 4));
	if (it == NULL)
		return;
	status = proto_store(ps, it, mode, cas, &new_cas);
	reply_store(ps, out, rq, status, new_cas);
}

/* APPEND, PREPEND: a CAS makes them conditional. */
static void
process_concat(struct proto_state *ps, struct evbuffer *out, const struct request *rq)
{
	uint64_t cas = request_cas(ps, rq), new_cas = 0;
	struct cache_store_opts opts = {.compare = cas != 0, .cas = cas};
	enum cache_status status;
	struct item *it;

	STATS_INCR(ps->stats, cmd_set);
	it = request_item(ps, out, rq, 0, 0);
	if (it == NULL)
		return;
	status = store_store_opts(ps->env->store, it,
	                          rq->cmd->base == OP_APPEND ? CACHE_APPEND : CACHE_PREPEND,
	                          &opts, &new_cas);
	cache_item_put(ps->env->cache, it);
	reply_store(ps, out, rq, status, new_cas);
}

static void
process_delete(struct proto_state *ps, struct evbuffer *out, const struct request *rq)
{
	enum cache_status status;

	if (refuse_write(ps, out, rq))
		return;
	if (rq->cas != 0) {
		/* With -C memcached's items all have CAS 0, so a non-zero
		 * request CAS never matches: compare against 0, which no item
		 * of ours has. */
		struct cache_meta_delete d = {.compare = true, .cas = request_cas(ps, rq)};

		status = store_meta_delete(ps->env->store, rq->key, rq->keylen, &d);
	} else {
		status = store_delete(ps->env->store, rq->key, rq->keylen);
	}
	if (status == CACHE_STORED)
		STATS_INCR(ps->stats, delete_hits);
	else if (status == CACHE_NOT_FOUND)
		STATS_INCR(ps->stats, delete_misses);
	/* A delete's reply carries no CAS. */
	reply_store(ps, out, rq, status, 0);
}

/* INCREMENT, DECREMENT: a missing key is created with the initial value
 * (the delta not applied) unless the exptime is 0xffffffff. */
static void
process_arith(struct proto_state *ps, struct evbuffer *out, const struct request *rq)
{
	bool incr = rq->cmd->base == OP_INCREMENT;
	uint64_t initial = get64(rq->ext + 8);
	uint32_t exptime = get32(rq->ext + 16);
	/* A CAS under -C compares with 0 and mismatches, as in process_delete. */
	struct cache_arith a = {.incr = incr, .delta = get64(rq->ext),
	                        .compare = rq->cas != 0, .cas = request_cas(ps, rq)};
	struct cache_arith_result r;
	enum cache_status status;
	bool created = false;
	uint8_t value[8];

	if (refuse_write(ps, out, rq))
		return;
	for (;;) {
		char digits[24];
		struct item *it;

		status = store_arith(ps->env->store, rq->key, rq->keylen, &a, &r);
		if (status != CACHE_NOT_FOUND)
			break;
		/* As memcached counts: a miss only when nothing is created, and
		 * a created key neither a miss nor a hit. */
		if (exptime == NO_CREATE) {
			if (incr)
				STATS_INCR(ps->stats, incr_misses);
			else
				STATS_INCR(ps->stats, decr_misses);
			break;
		}
		it = cache_item_create(ps->env->cache, rq->key, rq->keylen, 0,
		                       proto_absolute_exptime_u32(exptime),
		                       (uint32_t)(proto_format_u64(digits, initial) - digits));
		if (it == NULL) {
			status = CACHE_NO_MEMORY;
			break;
		}
		memcpy(item_value(it), digits, it->nbytes);
		status = store_store(ps->env->store, it, CACHE_ADD, 0, &r.cas);
		cache_item_put(ps->env->cache, it);
		r.value = initial;
		created = status == CACHE_STORED;
		/* Not stored: another client created the key meanwhile; count
		 * on what it stored. */
		if (status != CACHE_NOT_STORED)
			break;
	}
	switch (status) {
	case CACHE_STORED:
		if (!created && incr)
			STATS_INCR(ps->stats, incr_hits);
		else if (!created)
			STATS_INCR(ps->stats, decr_hits);
		put64(value, r.value);
		reply_ok(ps, out, rq, value, sizeof(value), r.cas);
		break;
	case CACHE_NON_NUMERIC:
		reply_error(out, rq, ST_DELTA_BADVAL);
		break;
	default:
		reply_store(ps, out, rq, status, 0);
		break;
	}
}

static void
process_flush(struct proto_state *ps, struct evbuffer *out, const struct request *rq)
{
	uint32_t delay = rq->extlen == 4 ? get32(rq->ext) : 0;

	STATS_INCR(ps->stats, cmd_flush);
	if (!ps->env->settings->flush_enabled) {  /* -F: memcached's answer */
		reply_error(out, rq, ST_AUTH_ERROR);
		return;
	}
	if (refuse_write(ps, out, rq))
		return;
	store_flush(ps->env->store, delay > 0 ? proto_absolute_exptime_u32(delay) : 0);
	reply_ok(ps, out, rq, NULL, 0, 0);
}

struct stat_sink {
	struct evbuffer *out;
	const struct request *rq;
};

/* One STAT packet per pair: the key is the name, the value its text. */
static void
emit_stat(void *arg, const char *name, const char *value)
{
	struct stat_sink *sink = arg;

	reply(sink->out, sink->rq, ST_OK, name, strlen(name), value, strlen(value), 0);
}

/* STAT [group]: the ASCII groups' pairs, then an empty packet.  Groups are
 * matched exactly (memcached compares only the group name's length of the
 * key). */
static void
process_stat(struct proto_state *ps, struct evbuffer *out, const struct request *rq)
{
	struct stat_sink sink = {out, rq};
	char group[CACHE_KEY_MAX + 1];

	assert(rq->keylen <= CACHE_KEY_MAX);
	memcpy(group, rq->key, rq->keylen);
	group[rq->keylen] = '\0';
	if (strlen(group) != rq->keylen) {  /* a NUL in the key: no such group */
		reply_error(out, rq, ST_KEY_ENOENT);
		return;
	}
	if (strcmp(group, "reset") == 0) {
		proto_stats_reset(ps->env);
	} else if (!proto_stats_group(ps->env, group, emit_stat, &sink)) {
		reply_error(out, rq, ST_KEY_ENOENT);
		return;
	}
	reply(out, rq, ST_OK, NULL, 0, NULL, 0, 0);
}

/* SASL AUTH and STEP, PLAIN only.  Every AUTH starts over unauthenticated;
 * an AUTH without a message is answered "continue" and its STEP carries
 * the message. */
static void
process_sasl(struct proto_state *ps, struct evbuffer *out, const struct request *rq)
{
	static const char authenticated[] = "Authenticated";
	bool step = rq->cmd->base == OP_SASL_STEP;
	bool started = ps->sasl_started;

	STATS_INCR(ps->stats, auth_cmds);
	ps->sasl_started = false;
	if (!step)
		ps->authenticated = false;
	if (rq->keylen != strlen(CLIENT_AUTH_MECHS) ||
	    memcmp(rq->key, CLIENT_AUTH_MECHS, rq->keylen) != 0 || (step && !started))
		goto fail;
	if (!step && rq->vlen == 0) {
		ps->sasl_started = true;
		reply(out, rq, ST_AUTH_CONTINUE, NULL, 0, NULL, 0, 0);
		return;
	}
	if (!client_auth_plain(ps->env->auth, rq->value, rq->vlen))
		goto fail;
	ps->authenticated = true;
	reply(out, rq, ST_OK, NULL, 0, authenticated, strlen(authenticated), 0);
	return;
fail:
	STATS_INCR(ps->stats, auth_errors);
	reply_error(out, rq, ST_AUTH_ERROR);
}

/* Run a request whose whole packet has arrived. */
static void
execute(struct proto_state *ps, struct evbuffer *out, const struct request *rq)
{
	switch (rq->cmd->shape) {
	case SHAPE_KEY:
		if (rq->cmd->base == OP_DELETE)
			process_delete(ps, out, rq);
		else
			process_get(ps, out, rq);
		break;
	case SHAPE_TOUCH:
		process_get(ps, out, rq);
		break;
	case SHAPE_STORE:
		process_store(ps, out, rq);
		break;
	case SHAPE_CONCAT:
		process_concat(ps, out, rq);
		break;
	case SHAPE_ARITH:
		process_arith(ps, out, rq);
		break;
	case SHAPE_FLUSH:
		process_flush(ps, out, rq);
		break;
	case SHAPE_STAT:
		process_stat(ps, out, rq);
		break;
	case SHAPE_SASL:
		process_sasl(ps, out, rq);
		break;
	case SHAPE_EMPTY:
		switch (rq->cmd->base) {
		case OP_QUIT:
			if (!rq->cmd->quiet)
				reply(out, rq, ST_OK, NULL, 0, NULL, 0, 0);
			ps->close = true;
			break;
		case OP_VERSION:
			reply(out, rq, ST_OK, NULL, 0, STATS_VERSION_STRING,
			      strlen(STATS_VERSION_STRING), 0);
			break;
		case OP_SASL_LIST_MECHS:
			reply(out, rq, ST_OK, NULL, 0, CLIENT_AUTH_MECHS,
			      strlen(CLIENT_AUTH_MECHS), 0);
			break;
		default:
			assert(rq->cmd->base == OP_NOOP);
			reply(out, rq, ST_OK, NULL, 0, NULL, 0, 0);
			break;
		}
		break;
	default:
		assert(!"unknown opcodes are refused before their body is read");
	}
}

/******** FRAMING ********/

/* Does the header fit its opcode's shape? */
static bool
valid_shape(const struct request *rq)
{
	uint32_t keyext = (uint32_t)rq->keylen + rq->extlen;

	switch (rq->cmd->shape) {
	case SHAPE_KEY:
		return rq->extlen == 0 && rq->keylen > 0 && rq->bodylen == rq->keylen;
	case SHAPE_STORE:
		return rq->extlen == 8 && rq->keylen > 0;
	case SHAPE_CONCAT:
	case SHAPE_SASL:
		return rq->extlen == 0 && rq->keylen > 0;
	case SHAPE_ARITH:
		return rq->extlen == 20 && rq->keylen > 0 && rq->bodylen == keyext;
	case SHAPE_EMPTY:
		return rq->bodylen == 0;
	case SHAPE_FLUSH:
		return rq->keylen == 0 && (rq->extlen == 0 || rq->extlen == 4) &&
		       rq->bodylen == rq->extlen;
	case SHAPE_STAT:
		return rq->extlen == 0 && rq->bodylen == rq->keylen;
	case SHAPE_TOUCH:
		return rq->extlen == 4 && rq->keylen > 0 && rq->bodylen == keyext;
	default:
		return true;  /* an unknown opcode's body is swallowed, whatever it is */
	}
}

/* Must this client authenticate first, and has it not?  Whenever clients
 * must (-Y or -S: env->auth), a binary one does so with SASL, whether -S
 * was given or the binary protocol was allowed by -B next to -Y. */
static bool
needs_auth(const struct proto_state *ps, uint8_t opcode)
{
	return ps->env->auth != NULL && !ps->authenticated &&
	       opcode != OP_SASL_LIST_MECHS && opcode != OP_SASL_AUTH &&
	       opcode != OP_SASL_STEP && opcode != OP_VERSION;
}

/* Refuse rq with `status` but keep the connection: its body is skipped
 * and the reply sent once the body has been (here, or after
 * ps->swallow), so replies stay in order.  Returns the bytes consumed. */
static size_t
refuse_body(struct proto_state *ps, struct evbuffer *out, const struct request *rq,
            uint16_t status, size_t avail)
{
	size_t body = avail - HEADER_LEN;

	if (body >= rq->bodylen) {
		reply_error(out, rq, status);
		return HEADER_LEN + (size_t)rq->bodylen;
	}
	ps->swallow = rq->bodylen - body;
	ps->owed = (struct proto_binary_owed){true, rq->opcode, status, rq->opaque};
	return avail;
}

/* What handling one packet came to. */
enum step {
	STEP_DONE,     /* consumed *used bytes */
	STEP_WAIT,     /* more bytes needed (*need) */
	STEP_PAUSED,   /* a write while writes are paused: not consumed */
	STEP_CLOSE,    /* closing (after any reply written) */
};

static enum step
process_packet(struct proto_state *ps, const uint8_t *p, size_t avail,
               struct evbuffer *out, size_t *used, size_t *need)
{
	struct request rq;
	uint32_t keyext;

	if (avail < HEADER_LEN)
		return STEP_WAIT;
	if (p[0] != PROTO_BINARY_REQUEST)
		return STEP_CLOSE;  /* memcached drops such a client silently */
	rq = (struct request){
		.opcode = p[1], .keylen = get16(p + 2), .extlen = p[4],
		.bodylen = get32(p + 8), .opaque = get32(p + 12), .cas = get64(p + 16),
	};
	rq.cmd = &commands[rq.opcode];
	keyext = (uint32_t)rq.keylen + rq.extlen;
	if (keyext > rq.bodylen) {
		reply_error(out, &rq, ST_UNKNOWN_COMMAND);
		return STEP_CLOSE;
	}
	if (needs_auth(ps, rq.opcode)) {
		reply_error(out, &rq, ST_AUTH_ERROR);
		return STEP_CLOSE;
	}
	if (rq.keylen > CACHE_KEY_MAX || !valid_shape(&rq)) {
		reply_error(out, &rq, ST_EINVAL);
		return STEP_CLOSE;
	}
	if (rq.cmd->shape == SHAPE_UNKNOWN ||
	    (rq.cmd->base >= OP_SASL_LIST_MECHS && rq.cmd->base <= OP_SASL_STEP &&
	     ps->env->auth == NULL)) {
		*used = refuse_body(ps, out, &rq, ST_UNKNOWN_COMMAND, avail);
		return STEP_DONE;
	}
	if (rq.cmd->shape == SHAPE_SASL && rq.keylen > SASL_MECH_MAX) {
		*used = refuse_body(ps, out, &rq, ST_EINVAL, avail);
		return STEP_DONE;
	}
	if (rq.cmd->shape == SHAPE_SASL && rq.bodylen - rq.keylen > SASL_BODY_MAX) {
		/* No PLAIN message is that long: a failed attempt, unbuffered. */
		STATS_INCR(ps->stats, auth_cmds);
		STATS_INCR(ps->stats, auth_errors);
		*used = refuse_body(ps, out, &rq, ST_AUTH_ERROR, avail);
		return STEP_DONE;
	}
	if (rq.cmd->write && proto_writes_paused())
		return STEP_PAUSED;
	rq.vlen = rq.bodylen - keyext;
	if (rq.cmd->shape == SHAPE_STORE || rq.cmd->shape == SHAPE_CONCAT) {
		/* Too large: refused once the key and flags are known (SET drops
		 * the old item), without buffering the value. */
		if (avail < HEADER_LEN + keyext) {
			*need = HEADER_LEN + keyext;
			return STEP_WAIT;
		}
		if (proto_value_too_large(ps, (const char *)p + HEADER_LEN + rq.extlen, rq.keylen,
		                          rq.vlen, rq.extlen == 8 ? get32(p + HEADER_LEN) : 0,
		                          rq.cmd->base == OP_SET)) {
			*used = refuse_body(ps, out, &rq, ST_E2BIG, avail);
			return STEP_DONE;
		}
	}
	if (avail - HEADER_LEN < rq.bodylen) {
		*need = HEADER_LEN + (size_t)rq.bodylen;
		return STEP_WAIT;
	}
	rq.ext = p + HEADER_LEN;
	rq.key = (const char *)rq.ext + rq.extlen;
	rq.value = rq.key + rq.keylen;
	execute(ps, out, &rq);
	*used = HEADER_LEN + (size_t)rq.bodylen;
	return STEP_DONE;
}

enum proto_wire
proto_binary_wire(enum client_protocol protocol, uint8_t first)
{
	switch (protocol) {
	case CLIENT_PROTOCOL_ASCII:
		return PROTO_WIRE_ASCII;
	case CLIENT_PROTOCOL_BINARY:
		return PROTO_WIRE_BINARY;
	default:
		return first == PROTO_BINARY_REQUEST ? PROTO_WIRE_BINARY : PROTO_WIRE_ASCII;
	}
}

size_t
proto_binary_process(struct proto_state *ps, const uint8_t *buf, size_t len,
                     struct evbuffer *out, size_t out_limit, size_t *need)
{
	size_t pos = 0;
	unsigned done = 0;

	while (pos < len && !ps->close && evbuffer_get_length(out) <= out_limit &&
	       (ps->max_requests == 0 || done < ps->max_requests)) {
		size_t used = 0;

		if (ps->swallow > 0) {
			size_t n = ps->swallow < len - pos ? (size_t)ps->swallow : len - pos;

			pos += n;
			ps->swallow -= n;
			if (ps->swallow == 0 && ps->owed.active) {
				struct request rq = {.opcode = ps->owed.opcode,
				                     .opaque = ps->owed.opaque};

				reply_error(out, &rq, ps->owed.status);
				ps->owed.active = false;
				done++;
			}
			continue;
		}
		switch (process_packet(ps, buf + pos, len - pos, out, &used, need)) {
		case STEP_DONE:
			pos += used;
			done++;
			continue;
		case STEP_WAIT:
			break;
		case STEP_PAUSED:
			ps->paused = true;
			break;
		case STEP_CLOSE:
			ps->close = true;
			break;
		}
		break;
	}
	return pos;
}
