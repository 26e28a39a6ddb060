/* memcache ASCII protocol: tokenizing, command dispatch, replies.
 *
 * Request framing (memcached 1.6):
 *   <command line>\r\n            ("\n" alone is accepted too)
 *   <data block of vlen bytes>\r\n (storage commands only)
 * The command line is split on spaces (runs of spaces count as one).  After
 * 23 tokens the rest of the line is left for the command to tokenize again,
 * which only get/gets use (long multi-key gets).
 */
#include "node/proto_text.h"
#include "node/proto_binary.h"
#include "node/proto_meta.h"
#include "node/proto_shared.h"

#include <assert.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "storage/log.h"
#include "node/client_auth.h"
#include "node/proto_dump.h"
#include "node/settings.h"
#include "node/stats.h"
#include "node/stats_report.h"
#include "storage/cache.h"
#include "storage/store.h"
#include "storage/persist.h"
#include "replication/repl.h"

#define REALTIME_MAXDELTA (60 * 60 * 24 * 30)  /* 30 days: relative vs absolute */
#define VALUE_BY_REFERENCE 16384               /* larger values are not copied */
#define VERSION_STRING STATS_VERSION_STRING

/* Split `line` (NUL-terminated, modified in place) like memcached's
 * tokenize_command: returns the token count including a terminal token of
 * length 0 whose value points at the unparsed rest of the line, or is NULL
 * when the whole line was consumed. */
size_t
proto_tokenize(char *line, struct token *tokens, size_t max_tokens)
{
	size_t ntokens = 0, len = strlen(line), i;
	char *s = line, *e = line;

	for (i = 0; i < len; i++, e++) {
		if (*e != ' ')
			continue;
		if (s != e) {
			tokens[ntokens].value = s;
			tokens[ntokens].length = (size_t)(e - s);
			ntokens++;
			*e = '\0';
			if (ntokens == max_tokens - 1) {
				e++;
				s = e;
				break;
			}
		}
		s = e + 1;
	}
	if (s != e) {
		tokens[ntokens].value = s;
		tokens[ntokens].length = (size_t)(e - s);
		ntokens++;
	}
	tokens[ntokens].value = *e == '\0' ? NULL : e;
	tokens[ntokens].length = 0;
	return ntokens + 1;
}

/******** NUMBERS, as memcached's safe_strto* read them ********/

static bool
ends_number(const char *end, const char *start)
{
	return end != start && (*end == '\0' || *end == ' ' || *end == '\t' ||
	                        *end == '\r' || *end == '\n');
}

bool
proto_parse_u64(const char *s, uint64_t *out)
{
	unsigned long long v;
	char *end;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno == ERANGE || !ends_number(end, s))
		return false;
	/* strtoull accepts "-1" as 2^64-1: refuse negative numbers. */
	if ((long long)v < 0 && memchr(s, '-', (size_t)(end - s)) != NULL)
		return false;
	*out = v;
	return true;
}

bool
proto_parse_u32(const char *s, uint32_t *out)
{
	unsigned long v;
	char *end;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno == ERANGE || !ends_number(end, s))
		return false;
	if ((long)v < 0 && strchr(s, '-') != NULL)
		return false;
	if (v > UINT32_MAX)
		return false;
	*out = (uint32_t)v;
	return true;
}

bool
proto_parse_i32(const char *s, int32_t *out)
{
	long v;
	char *end;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno == ERANGE || !ends_number(end, s) || v > INT32_MAX || v < INT32_MIN)
		return false;
	*out = (int32_t)v;
	return true;
}

/* The protocol's exptime (0 never; up to 30 days relative; beyond, a unix
 * time; negative, already expired) as an absolute unix time for the cache. */
uint32_t
proto_absolute_exptime(int32_t exptime)
{
	if (exptime < 0)
		return 1;  /* long past: expired */
	return proto_absolute_exptime_u32((uint32_t)exptime);
}

uint32_t
proto_absolute_exptime_u32(uint32_t exptime)
{
	if (exptime == 0)
		return 0;
	if (exptime > REALTIME_MAXDELTA)
		return exptime;
	return cache_now() + exptime;
}

/******** REPLIES ********/

void
proto_reply(struct evbuffer *out, bool noreply, const char *text)
{
	if (noreply)
		return;
	evbuffer_add(out, text, strlen(text));
	evbuffer_add(out, "\r\n", 2);
}

char *
proto_format_u64(char *p, uint64_t v)
{
	char tmp[21];
	int n = 0;

	do {
		tmp[n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v != 0);
	while (n > 0)
		*p++ = tmp[--n];
	return p;
}

/* A large value handed to the output buffer without copying it. */
struct value_ref {
	struct cache *cache;
	struct item *it;
};

static void
release_value_ref(const void *data, size_t len, void *arg)
{
	struct value_ref *ref = arg;

	(void)data;
	(void)len;
	cache_item_put(ref->cache, ref->it);
	free(ref);
}

void
proto_add_value(struct proto_state *ps, struct evbuffer *out, struct item *it)
{
	proto_add_item_bytes(ps, out, it, (size_t)it->nbytes + 2);
}

void
proto_add_item_bytes(struct proto_state *ps, struct evbuffer *out, struct item *it, size_t len)
{
	assert(len <= (size_t)it->nbytes + 2);
	if (len >= VALUE_BY_REFERENCE) {
		struct value_ref *ref = malloc(sizeof(*ref));

		/* The item reference is dropped once the bytes have been written. */
		if (ref != NULL) {
			ref->cache = ps->env->cache;
			ref->it = it;
			if (evbuffer_add_reference(out, item_value(it), len,
			                           release_value_ref, ref) == 0)
				return;
			free(ref);
		}
	}
	evbuffer_add(out, item_value(it), len);
	cache_item_put(ps->env->cache, it);
}

struct item *
proto_fetch(struct proto_state *ps, const char *key, size_t nkey, bool touch, uint32_t exptime)
{
	struct item *it;

	if (touch) {
		it = store_get_and_touch(ps->env->store, key, nkey, exptime);
		STATS_INCR(ps->stats, cmd_touch);
		if (it != NULL)
			STATS_INCR(ps->stats, touch_hits);
		else
			STATS_INCR(ps->stats, touch_misses);
	} else {
		it = store_get(ps->env->store, key, nkey);
		STATS_INCR(ps->stats, cmd_get);
		if (it != NULL)
			STATS_INCR(ps->stats, get_hits);
		else
			STATS_INCR(ps->stats, get_misses);
	}
	return it;
}

/* "VALUE <key> <flags> <bytes>[ <cas>]\r\n<value>\r\n" */
static void
reply_value(struct proto_state *ps, struct evbuffer *out, struct item *it,
            bool with_cas)
{
	char header[CACHE_KEY_MAX + 80];
	char *p = header;

	memcpy(p, "VALUE ", 6);
	p += 6;
	memcpy(p, item_key(it), it->nkey);
	p += it->nkey;
	*p++ = ' ';
	p = proto_format_u64(p, it->flags);
	*p++ = ' ';
	p = proto_format_u64(p, it->nbytes);
	if (with_cas) {
		*p++ = ' ';
		p = proto_format_u64(p, ps->env->settings->use_cas ? it->cas : 0);
	}
	*p++ = '\r';
	*p++ = '\n';
	evbuffer_add(out, header, (size_t)(p - header));
	proto_add_value(ps, out, it);
}

static bool
wants_noreply(const struct token *tokens, size_t ntokens)
{
	const char *last = tokens[ntokens - 2].value;

	return last != NULL && strcmp(last, "noreply") == 0;
}

/* A replica refuses changes (its primary is the only writer), and so does a
 * node whose WAL cannot write: nothing is acknowledged that is not logged.
 * Reads go on in both cases. */
enum proto_refusal
proto_write_refusal(struct proto_state *ps, char *msg, size_t msglen)
{
	int err;

	if (repl_is_replica(ps->env->repl)) {
		snprintf(msg, msglen, "readonly replica");
		return PROTO_REFUSE_REPLICA;
	}
	if (ps->env->persist == NULL || (err = persist_write_error(ps->env->persist)) == 0)
		return PROTO_WRITE_OK;
	snprintf(msg, msglen, "write-ahead log unavailable: %s", strerror(err));
	return PROTO_REFUSE_WAL;
}

bool
proto_refuse_write(struct proto_state *ps, struct evbuffer *out)
{
	char msg[160];

	if (proto_write_refusal(ps, msg, sizeof(msg)) == PROTO_WRITE_OK)
		return false;
	evbuffer_add_printf(out, "SERVER_ERROR %s\r\n", msg);
	return true;
}

/******** COMMANDS ********/

/* Is any space-separated word of `rest` longer than a key may be? */
static bool
has_long_key(const char *rest)
{
	size_t run = 0;

	for (; *rest != '\0'; rest++) {
		run = *rest == ' ' ? 0 : run + 1;
		if (run > CACHE_KEY_MAX)
			return true;
	}
	return false;
}

/* get, gets, gat, gats: one VALUE block per hit, then END. */
static void
process_get(struct proto_state *ps, struct token *tokens, struct evbuffer *out,
            bool with_cas, bool touch)
{
	struct token *key = &tokens[1];
	uint32_t exptime = 0;
	int32_t exptime_arg;
	struct token *t;


	if (touch) {
		if (proto_refuse_write(ps, out))
			return;
		if (!proto_parse_i32(tokens[1].value, &exptime_arg)) {
			proto_reply(out, false, "CLIENT_ERROR invalid exptime argument");
			return;
		}
		exptime = proto_absolute_exptime(exptime_arg);
		key++;
	}
	/* memcached drops the partial reply when a key is too long: check every
	 * key first, including those beyond this tokenize pass, so nothing is
	 * sent (or touched) for such a request. */
	for (t = key; t->length != 0; t++) {
		if (t->length > CACHE_KEY_MAX) {
			proto_reply(out, false, "CLIENT_ERROR bad command line format");
			return;
		}
	}
	if (t->value != NULL && has_long_key(t->value)) {
		proto_reply(out, false, "CLIENT_ERROR bad command line format");
		return;
	}
	for (;;) {
		for (; key->length != 0; key++) {
			struct item *it = proto_fetch(ps, key->value, key->length, touch, exptime);

			if (it != NULL)
				reply_value(ps, out, it, with_cas);
		}
		if (key->value == NULL)
			break;
		/* More keys than one tokenize pass holds (all checked above). */
		proto_tokenize(key->value, tokens, PROTO_MAX_TOKENS);
		key = tokens;
	}
	evbuffer_add(out, "END\r\n", 5);
}

enum store_parse {
	STORE_DONE,      /* replied (an error), line consumed */
	STORE_SWALLOW,   /* replied, line consumed, value must be skipped */
	STORE_READY,     /* parsed: value follows */
};

struct store_request {
	enum cache_store_mode mode;
	const char *key;
	size_t nkey;
	uint32_t flags;
	uint32_t exptime;
	uint64_t cas;
	uint32_t vlen;
	bool noreply;
};

/* Parse "<cmd> <key> <flags> <exptime> <bytes> [<cas>] [noreply]". */
static enum store_parse
parse_store(struct proto_state *ps, struct token *tokens, size_t ntokens,
            enum cache_store_mode mode, struct store_request *req,
            struct evbuffer *out)
{
	int32_t exptime, vlen;

	req->mode = mode;
	req->noreply = wants_noreply(tokens, ntokens);
	if (tokens[1].length > CACHE_KEY_MAX) {
		proto_reply(out, req->noreply, "CLIENT_ERROR bad command line format");
		return STORE_DONE;
	}
	req->key = tokens[1].value;
	req->nkey = tokens[1].length;
	if (!(proto_parse_u32(tokens[2].value, &req->flags) &&
	      proto_parse_i32(tokens[3].value, &exptime) &&
	      proto_parse_i32(tokens[4].value, &vlen))) {
		proto_reply(out, req->noreply, "CLIENT_ERROR bad command line format");
		return STORE_DONE;
	}
	req->exptime = proto_absolute_exptime(exptime);
	req->cas = 0;
	if (mode == CACHE_CAS && !proto_parse_u64(tokens[5].value, &req->cas)) {
		proto_reply(out, req->noreply, "CLIENT_ERROR bad command line format");
		return STORE_DONE;
	}
	if (vlen < 0 || vlen > INT32_MAX - 2) {
		proto_reply(out, req->noreply, "CLIENT_ERROR bad command line format");
		return STORE_DONE;
	}
	req->vlen = (uint32_t)vlen;
	/* memcached drops the old value so a failed set leaves no stale data. */
	if (proto_refuse_too_large(ps, req->key, req->nkey, req->vlen, req->flags,
	                           mode == CACHE_SET, req->noreply, out))
		return STORE_SWALLOW;
	return STORE_READY;
}

bool
proto_value_too_large(struct proto_state *ps, const char *key, size_t nkey, uint64_t vlen,
                      uint32_t flags, bool discard)
{
	if (vlen <= UINT32_MAX && !cache_item_too_large(ps->env->cache, nkey, (uint32_t)vlen, flags))
		return false;
	STATS_INCR(ps->stats, store_too_large);
	if (discard)
		store_discard(ps->env->store, key, nkey);
	return true;
}

bool
proto_refuse_too_large(struct proto_state *ps, const char *key, size_t nkey, uint32_t vlen,
                       uint32_t flags, bool discard, bool noreply, struct evbuffer *out)
{
	if (!proto_value_too_large(ps, key, nkey, vlen, flags, discard))
		return false;
	proto_reply(out, noreply, "SERVER_ERROR object too large for cache");
	ps->swallow = (uint64_t)vlen + 2;
	return true;
}

bool
proto_data_arrived(size_t avail, uint32_t vlen, size_t *data_used)
{
	*data_used = (size_t)vlen + 2;
	return avail >= *data_used;
}

struct item *
proto_data_item(struct proto_state *ps, const char *key, size_t nkey, uint32_t flags,
                uint32_t exptime, const char *data, uint32_t vlen, bool noreply,
                bool discard, struct evbuffer *out)
{
	struct item *it;

	if (data[vlen] != '\r' || data[vlen + 1] != '\n') {
		proto_reply(out, noreply, "CLIENT_ERROR bad data chunk");
		return NULL;
	}
	if (proto_refuse_write(ps, out))
		return NULL;
	it = cache_item_create(ps->env->cache, key, nkey, flags, exptime, vlen);
	if (it == NULL) {
		STATS_INCR(ps->stats, store_no_memory);
		proto_reply(out, false, "SERVER_ERROR out of memory storing object");
		if (discard)
			store_discard(ps->env->store, key, nkey);
		return NULL;
	}
	memcpy(item_value(it), data, vlen);
	return it;
}

enum cache_status
proto_store(struct proto_state *ps, struct item *it, enum cache_store_mode mode, uint64_t cas,
            uint64_t *cas_out)
{
	enum cache_status status = store_store(ps->env->store, it, mode, cas, cas_out);

	cache_item_put(ps->env->cache, it);
	if (mode == CACHE_CAS) {
		if (status == CACHE_STORED)
			STATS_INCR(ps->stats, cas_hits);
		else if (status == CACHE_EXISTS)
			STATS_INCR(ps->stats, cas_badval);
		else if (status == CACHE_NOT_FOUND)
			STATS_INCR(ps->stats, cas_misses);
	}
	return status;
}

/* Store a value whose data block `data` (vlen + 2 bytes) has arrived. */
static void
complete_store(struct proto_state *ps, const struct store_request *req,
               const char *data, struct evbuffer *out)
{
	enum cache_status status;
	struct item *it;

	STATS_INCR(ps->stats, cmd_set);
	it = proto_data_item(ps, req->key, req->nkey, req->flags, req->exptime, data,
	                     req->vlen, req->noreply, req->mode == CACHE_SET, out);
	if (it == NULL)
		return;
	status = proto_store(ps, it, req->mode, req->cas, NULL);
	switch (status) {
	case CACHE_STORED:
		proto_reply(out, req->noreply, "STORED");
		break;
	case CACHE_EXISTS:
		proto_reply(out, req->noreply, "EXISTS");
		break;
	case CACHE_NOT_FOUND:
		proto_reply(out, req->noreply, "NOT_FOUND");
		break;
	case CACHE_NO_MEMORY:
		STATS_INCR(ps->stats, store_no_memory);
		proto_reply(out, false, "SERVER_ERROR out of memory storing object");
		break;
	default:
		proto_reply(out, req->noreply, "NOT_STORED");
		break;
	}
}

static void
process_arithmetic(struct proto_state *ps, struct token *tokens, size_t ntokens,
                   struct evbuffer *out, bool incr)
{
	bool noreply = wants_noreply(tokens, ntokens);
	char digits[24];
	uint64_t delta, result;

	if (tokens[1].length > CACHE_KEY_MAX) {
		proto_reply(out, noreply, "CLIENT_ERROR bad command line format");
		return;
	}
	if (!proto_parse_u64(tokens[2].value, &delta)) {
		proto_reply(out, noreply, "CLIENT_ERROR invalid numeric delta argument");
		return;
	}
	if (proto_refuse_write(ps, out))
		return;
	switch (store_incr(ps->env->store, tokens[1].value, tokens[1].length, incr,
	                   delta, &result)) {
	case CACHE_STORED:
		if (incr)
			STATS_INCR(ps->stats, incr_hits);
		else
			STATS_INCR(ps->stats, decr_hits);
		*proto_format_u64(digits, result) = '\0';
		proto_reply(out, noreply, digits);
		break;
	case CACHE_NON_NUMERIC:
		proto_reply(out, noreply, "CLIENT_ERROR cannot increment or decrement non-numeric value");
		break;
	case CACHE_NOT_FOUND:
		if (incr)
			STATS_INCR(ps->stats, incr_misses);
		else
			STATS_INCR(ps->stats, decr_misses);
		proto_reply(out, noreply, "NOT_FOUND");
		break;
	default:
		proto_reply(out, false, "SERVER_ERROR out of memory");
		break;
	}
}

static void
process_delete(struct proto_state *ps, struct token *tokens, size_t ntokens,
               struct evbuffer *out)
{
	bool noreply = false;

	if (ntokens > 3) {
		bool hold_is_zero = strcmp(tokens[2].value, "0") == 0;
		bool valid;

		noreply = wants_noreply(tokens, ntokens);
		valid = (ntokens == 4 && (hold_is_zero || noreply)) ||
		        (ntokens == 5 && hold_is_zero && noreply);
		if (!valid) {
			proto_reply(out, noreply, "CLIENT_ERROR bad command line format.  "
			      "Usage: delete <key> [noreply]");
			return;
		}
	}
	if (tokens[1].length > CACHE_KEY_MAX) {
		proto_reply(out, noreply, "CLIENT_ERROR bad command line format");
		return;
	}
	if (proto_refuse_write(ps, out))
		return;
	if (store_delete(ps->env->store, tokens[1].value, tokens[1].length) == CACHE_STORED) {
		STATS_INCR(ps->stats, delete_hits);
		proto_reply(out, noreply, "DELETED");
	} else {
		STATS_INCR(ps->stats, delete_misses);
		proto_reply(out, noreply, "NOT_FOUND");
	}
}

static void
process_touch(struct proto_state *ps, struct token *tokens, size_t ntokens,
              struct evbuffer *out)
{
	bool noreply = wants_noreply(tokens, ntokens);
	int32_t exptime;
	struct item *it;

	if (tokens[1].length > CACHE_KEY_MAX) {
		proto_reply(out, noreply, "CLIENT_ERROR bad command line format");
		return;
	}
	if (!proto_parse_i32(tokens[2].value, &exptime)) {
		proto_reply(out, noreply, "CLIENT_ERROR invalid exptime argument");
		return;
	}
	if (proto_refuse_write(ps, out))
		return;
	it = store_get_and_touch(ps->env->store, tokens[1].value, tokens[1].length,
	                         proto_absolute_exptime(exptime));
	STATS_INCR(ps->stats, cmd_touch);
	if (it != NULL) {
		STATS_INCR(ps->stats, touch_hits);
		cache_item_put(ps->env->cache, it);
		proto_reply(out, noreply, "TOUCHED");
	} else {
		STATS_INCR(ps->stats, touch_misses);
		proto_reply(out, noreply, "NOT_FOUND");
	}
}

static void
process_flush_all(struct proto_state *ps, struct token *tokens, size_t ntokens,
                  struct evbuffer *out)
{
	bool noreply = wants_noreply(tokens, ntokens);
	int32_t delay = 0;

	STATS_INCR(ps->stats, cmd_flush);
	if (!ps->env->settings->flush_enabled) {
		proto_reply(out, noreply, "CLIENT_ERROR flush_all not allowed");
		return;
	}
	if (ntokens != (noreply ? 3u : 2u) && !proto_parse_i32(tokens[1].value, &delay)) {
		proto_reply(out, noreply, "CLIENT_ERROR invalid exptime argument");
		return;
	}
	if (proto_refuse_write(ps, out))
		return;
	store_flush(ps->env->store, delay > 0 ? proto_absolute_exptime(delay) : 0);
	proto_reply(out, noreply, "OK");
}

static void
process_verbosity(struct token *tokens, size_t ntokens, struct evbuffer *out)
{
	bool noreply = wants_noreply(tokens, ntokens);
	uint32_t level;

	if (!proto_parse_u32(tokens[1].value, &level)) {
		proto_reply(out, noreply, "CLIENT_ERROR bad command line format");
		return;
	}
	log_set_level(level > 2 ? 2 : (int)level);
	proto_reply(out, noreply, "OK");
}

/******** STATS ********/

/* The stats themselves come from node/stats_report.c, which the metrics
 * endpoint shares: here each pair becomes a "STAT name value" line. */
static void
emit_stat(void *arg, const char *name, const char *value)
{
	evbuffer_add_printf(arg, "STAT %s %s\r\n", name, value);
}

static void
process_stats(struct proto_state *ps, struct token *tokens, size_t ntokens,
              struct evbuffer *out)
{
	const char *sub = tokens[1].value;

	if (ntokens == 2) {
		proto_stats_group(ps->env, "", emit_stat, out);
	} else if (strcmp(sub, "reset") == 0) {
		proto_stats_reset(ps->env);
		proto_reply(out, false, "RESET");
		return;
	} else if (strcmp(sub, "cachedump") == 0) {
		proto_dump_cachedump(ps->env, ntokens > 4 ? tokens[2].value : NULL,
		                     ntokens > 4 ? tokens[3].value : NULL, out);
		return;
	} else if (!proto_stats_group(ps->env, sub, emit_stat, out)) {
		proto_reply(out, false, "ERROR");
		return;
	}
	evbuffer_add(out, "END\r\n", 5);
}

void
proto_stats_reset(const struct proto_env *env)
{
	stats_reset();
	cache_reset_stats(env->cache);
}

bool
proto_stats_group(const struct proto_env *env, const char *group, stats_emit_fn *emit,
                  void *arg)
{
	if (group[0] == '\0')
		stats_report_general(env, emit, arg);
	else if (strcmp(group, "settings") == 0)
		stats_report_settings(env, emit, arg);
	else if (strcmp(group, "items") == 0)
		stats_report_items(env, emit, arg);
	else if (strcmp(group, "slabs") == 0)
		stats_report_slabs(env, emit, arg);
	else if (strcmp(group, "persistence") == 0)
		stats_report_persistence(env, emit, arg);
	else if (strcmp(group, "replication") != 0)
		return false;
	else if (env->repl != NULL)
		repl_write_stats(env->repl, emit, arg);
	else
		emit(arg, "role", "none");
	return true;
}

/******** ADMIN: promote, replicaof, pause_writes ********/

/* Monotonic milliseconds until which writes wait (0: not paused). */
static uint64_t writes_paused_until;

static uint64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

bool
proto_writes_paused(void)
{
	uint64_t until = __atomic_load_n(&writes_paused_until, __ATOMIC_ACQUIRE);

	return until != 0 && now_ms() < until;
}

/* pause_writes <ms>: writes wait (they are not refused) until resume_writes
 * or the time runs out, so a replica can catch up before a switchover. */
static void
process_pause_writes(struct token *tokens, size_t ntokens, struct evbuffer *out)
{
	uint32_t ms;

	if (ntokens != 3 || !proto_parse_u32(tokens[1].value, &ms) || ms == 0) {
		proto_reply(out, false, "CLIENT_ERROR usage: pause_writes <milliseconds>");
		return;
	}
	__atomic_store_n(&writes_paused_until, now_ms() + ms, __ATOMIC_RELEASE);
	log_msg(LOG_ALWAYS, "writes paused for up to %u ms", ms);
	proto_reply(out, false, "OK");
}

static void
process_resume_writes(struct evbuffer *out)
{
	__atomic_store_n(&writes_paused_until, 0, __ATOMIC_RELEASE);
	log_msg(LOG_ALWAYS, "writes resumed");
	proto_reply(out, false, "OK");
}

static bool
is_write_command(const char *cmd)
{
	static const char *const writes[] = {
		"set", "add", "replace", "append", "prepend", "cas", "incr", "decr",
		"delete", "touch", "gat", "gats", "flush_all",
	};
	size_t i;

	for (i = 0; i < sizeof(writes) / sizeof(writes[0]); i++) {
		if (strcmp(cmd, writes[i]) == 0)
			return true;
	}
	return false;
}

static bool
no_replication(struct proto_state *ps, struct evbuffer *out)
{
	if (ps->env->repl != NULL)
		return false;
	proto_reply(out, false, "SERVER_ERROR replication needs persistence (started with --ephemeral)");
	return true;
}

/* promote and replicaof are carried out by the replication thread; the
 * reply waits for it (the connection parks on ps->role_ticket). */
static void
process_promote(struct proto_state *ps, struct evbuffer *out)
{
	if (no_replication(ps, out))
		return;
	if (repl_request_promote(ps->env->repl, &ps->role_ticket) != 0)
		proto_reply(out, false, "SERVER_ERROR too many role changes queued");
}

bool
proto_role_reply(struct proto_state *ps, struct evbuffer *out)
{
	int rc = repl_request_result(ps->env->repl, ps->role_ticket);
	char msg[128];

	if (rc == 0)
		return false;
	if (rc < 0) {
		snprintf(msg, sizeof(msg), "SERVER_ERROR role change failed: %s", strerror(-rc));
		proto_reply(out, false, msg);
	} else {
		proto_reply(out, false, "OK");
	}
	ps->role_ticket = 0;
	return true;
}

/* replicaof HOST PORT (the primary's replication port); replicaof no one
 * is promote, as in Redis. */
static void
process_replicaof(struct proto_state *ps, struct token *tokens, size_t ntokens,
                  struct evbuffer *out)
{
	uint32_t port;

	if (ntokens != 4) {
		proto_reply(out, false, "CLIENT_ERROR usage: replicaof <host> <port>");
		return;
	}
	if (strcmp(tokens[1].value, "no") == 0 && strcmp(tokens[2].value, "one") == 0) {
		process_promote(ps, out);
		return;
	}
	if (!proto_parse_u32(tokens[2].value, &port) || port == 0 || port > 65535) {
		proto_reply(out, false, "CLIENT_ERROR bad port");
		return;
	}
	if (no_replication(ps, out))
		return;
	switch (repl_request_replicaof(ps->env->repl, tokens[1].value, (int)port, &ps->role_ticket)) {
	case 0:
		break;
	case -EINVAL:
		proto_reply(out, false, "CLIENT_ERROR bad primary address");
		break;
	default:
		proto_reply(out, false, "SERVER_ERROR too many role changes queued");
		break;
	}
}

/******** DISPATCH ********/

static bool
token_count_in(size_t ntokens, size_t a, size_t b)
{
	return ntokens == a || ntokens == b;
}

static bool
parse_store_mode(const char *cmd, enum cache_store_mode *mode)
{
	static const struct { const char *name; enum cache_store_mode mode; } modes[] = {
		{"set", CACHE_SET}, {"add", CACHE_ADD}, {"replace", CACHE_REPLACE},
		{"append", CACHE_APPEND}, {"prepend", CACHE_PREPEND}, {"cas", CACHE_CAS},
	};
	size_t i;

	for (i = 0; i < sizeof(modes) / sizeof(modes[0]); i++) {
		if (strcmp(cmd, modes[i].name) == 0) {
			*mode = modes[i].mode;
			return true;
		}
	}
	return false;
}

/* Longest data block an unauthenticated client may send: an auth `set`
 * holds "user password"; nobody unauthenticated makes us buffer more. */
#define AUTH_BLOCK_MAX 1024

/* A line before the client has authenticated (-Y): memcached's convention
 * is `set <key> <flags> <exptime> <bytes>` with "user password" as its data
 * block; the key, flags, exptime and noreply are ignored and nothing is
 * stored.  Every other line gets CLIENT_ERROR unauthenticated. */
static enum line_result
process_unauthenticated(struct proto_state *ps, struct token *tokens, size_t ntokens,
                        const char *data, size_t avail, size_t *data_used, struct evbuffer *out)
{
	uint32_t vlen;

	if (ntokens < 6 || strcmp(tokens[0].value, "set") != 0 ||
	    !proto_parse_u32(tokens[4].value, &vlen)) {
		proto_reply(out, false, "CLIENT_ERROR unauthenticated");
		return LINE_DONE;
	}
	if (vlen > AUTH_BLOCK_MAX) {
		proto_reply(out, false, "CLIENT_ERROR bad data chunk");
		ps->close = true;
		return LINE_DONE;
	}
	if (!proto_data_arrived(avail, vlen, data_used))
		return LINE_NEED_DATA;
	STATS_INCR(ps->stats, auth_cmds);
	if (data[vlen] != '\r' || data[vlen + 1] != '\n') {
		STATS_INCR(ps->stats, auth_errors);
		proto_reply(out, false, "CLIENT_ERROR bad command line termination");
		return LINE_DONE;
	}
	switch (client_auth_ascii_token(ps->env->auth, data, vlen)) {
	case CLIENT_AUTH_OK:
		ps->authenticated = true;
		proto_reply(out, false, "STORED");
		break;
	case CLIENT_AUTH_BAD_FORMAT:
		STATS_INCR(ps->stats, auth_errors);
		proto_reply(out, false, "CLIENT_ERROR bad authentication token format");
		break;
	case CLIENT_AUTH_FAILURE:
		STATS_INCR(ps->stats, auth_errors);
		proto_reply(out, false, "CLIENT_ERROR authentication failure");
		break;
	}
	return LINE_DONE;
}

/* Run one command line (NUL-terminated copy, `\r\n` stripped).  `data` and
 * `avail` are the bytes after the line, for storage commands. */
static enum line_result
process_line(struct proto_state *ps, char *line, const char *data, size_t avail,
             size_t *data_used, struct evbuffer *out)
{
	struct token tokens[PROTO_MAX_TOKENS];
	size_t ntokens = proto_tokenize(line, tokens, PROTO_MAX_TOKENS);
	enum cache_store_mode mode;
	const char *cmd;

	*data_used = 0;
	if (ps->env->auth != NULL && !ps->authenticated)
		return process_unauthenticated(ps, tokens, ntokens, data, avail, data_used, out);
	if (ntokens < 2 || tokens[0].length < 2) {
		proto_reply(out, false, "ERROR");
		return LINE_DONE;
	}
	cmd = tokens[0].value;
	if (log_get_level() >= LOG_DEBUG)
		log_msg(LOG_DEBUG, "<%s", cmd);
	if (proto_meta_command(cmd)) {
		if (proto_writes_paused() && proto_meta_is_write(tokens, ntokens))
			return LINE_PAUSED;
		return proto_meta_process(ps, tokens, ntokens, data, avail, data_used, out);
	}
	if (proto_writes_paused() && is_write_command(cmd))
		return LINE_PAUSED;

	if (cmd[0] == 'g') {
		bool with_cas = strcmp(cmd, "gets") == 0 || strcmp(cmd, "gats") == 0;
		bool touch = strcmp(cmd, "gat") == 0 || strcmp(cmd, "gats") == 0;

		if (ntokens < 3 || !(with_cas || touch || strcmp(cmd, "get") == 0))
			proto_reply(out, false, "ERROR");
		else
			process_get(ps, tokens, out, with_cas, touch);
	} else if (parse_store_mode(cmd, &mode)) {
		struct store_request req;
		bool is_cas = mode == CACHE_CAS;

		if (!token_count_in(ntokens, is_cas ? 7 : 6, is_cas ? 8 : 7)) {
			proto_reply(out, false, "ERROR");
			return LINE_DONE;
		}
		switch (parse_store(ps, tokens, ntokens, mode, &req, out)) {
		case STORE_DONE:
		case STORE_SWALLOW:
			return LINE_DONE;
		case STORE_READY:
			break;
		}
		if (!proto_data_arrived(avail, req.vlen, data_used))
			return LINE_NEED_DATA;
		complete_store(ps, &req, data, out);
	} else if (strcmp(cmd, "incr") == 0 || strcmp(cmd, "decr") == 0) {
		if (!token_count_in(ntokens, 4, 5))
			proto_reply(out, false, "ERROR");
		else
			process_arithmetic(ps, tokens, ntokens, out, cmd[0] == 'i');
	} else if (strcmp(cmd, "delete") == 0) {
		if (ntokens < 3 || ntokens > 5)
			proto_reply(out, false, "ERROR");
		else
			process_delete(ps, tokens, ntokens, out);
	} else if (strcmp(cmd, "touch") == 0) {
		if (!token_count_in(ntokens, 4, 5))
			proto_reply(out, false, "ERROR");
		else
			process_touch(ps, tokens, ntokens, out);
	} else if (strcmp(cmd, "stats") == 0) {
		process_stats(ps, tokens, ntokens, out);
	} else if (strcmp(cmd, "flush_all") == 0) {
		if (ntokens > 4)
			proto_reply(out, false, "ERROR");
		else
			process_flush_all(ps, tokens, ntokens, out);
	} else if (strcmp(cmd, "version") == 0) {
		proto_reply(out, false, "VERSION " VERSION_STRING);
	} else if (strcmp(cmd, "quit") == 0) {
		ps->close = true;
	} else if (strcmp(cmd, "verbosity") == 0) {
		if (!token_count_in(ntokens, 3, 4))
			proto_reply(out, false, "ERROR");
		else
			process_verbosity(tokens, ntokens, out);
	} else if (strcmp(cmd, "shutdown") == 0) {
		proto_reply(out, false, "ERROR: shutdown not enabled");
	} else if (strcmp(cmd, "pause_writes") == 0) {
		process_pause_writes(tokens, ntokens, out);
	} else if (strcmp(cmd, "resume_writes") == 0) {
		process_resume_writes(out);
	} else if (strcmp(cmd, "promote") == 0) {
		process_promote(ps, out);
	} else if (strcmp(cmd, "replicaof") == 0) {
		process_replicaof(ps, tokens, ntokens, out);
	} else if (strcmp(cmd, "lru_crawler") == 0) {
		proto_dump_lru_crawler(ps->env, ntokens - 2, tokens[1].value,
		                       ntokens > 3 ? tokens[2].value : NULL, out, &ps->dump);
	} else if (tokens[ntokens - 2].value != NULL &&
	           strncmp(tokens[ntokens - 2].value, "HTTP/", 5) == 0) {
		ps->close = true;  /* a web browser: drop it, as memcached does */
	} else {
		proto_reply(out, false, "ERROR");
	}
	return LINE_DONE;
}

/* A line with no newline yet: may it keep growing?  memcached allows long
 * lines only for get/gets (after at most 100 leading spaces). */
static bool
line_may_grow(const char *buf, size_t len)
{
	size_t spaces = 0;

	if (len <= PROTO_LINE_MAX)
		return true;
	if (len > PROTO_GET_LINE_MAX)
		return false;
	while (spaces < len && buf[spaces] == ' ')
		spaces++;
	if (spaces > 100)
		return false;
	return (len - spaces >= 4 && memcmp(buf + spaces, "get ", 4) == 0) ||
	       (len - spaces >= 5 && memcmp(buf + spaces, "gets ", 5) == 0);
}

void
proto_state_init(struct proto_state *ps, const struct proto_env *env,
                 struct thread_stats *stats)
{
	memset(ps, 0, sizeof(*ps));
	ps->env = env;
	ps->stats = stats;
}

size_t
proto_process(struct proto_state *ps, char *buf, size_t len,
              struct evbuffer *out, size_t out_limit, size_t *need)
{
	char scratch[PROTO_LINE_MAX + 1];
	size_t pos = 0;
	unsigned done = 0;

	*need = 0;
	ps->paused = false;
	if (ps->wire == PROTO_WIRE_UNDECIDED) {
		if (len == 0)
			return 0;
		ps->wire = proto_binary_wire(ps->env->settings->protocol, (uint8_t)buf[0]);
	}
	if (ps->wire == PROTO_WIRE_BINARY)
		return proto_binary_process(ps, (const uint8_t *)buf, len, out, out_limit, need);
	/* A metadump goes out whole before the next request is read. */
	if (ps->dump.active && proto_dump_continue(ps->env, &ps->dump, out, out_limit))
		return 0;
	while (pos < len && !ps->close && evbuffer_get_length(out) <= out_limit &&
	       ps->role_ticket == 0 && !ps->dump.active &&
	       (ps->max_requests == 0 || done < ps->max_requests)) {
		size_t rest = len - pos, linelen, data_used;
		char *nl, *line;
		enum line_result r;

		if (ps->swallow > 0) {
			size_t n = ps->swallow < rest ? (size_t)ps->swallow : rest;

			pos += n;
			ps->swallow -= n;
			continue;
		}
		nl = memchr(buf + pos, '\n', rest);
		if (nl == NULL) {
			/* Before authenticating no line may grow long, get's neither:
			 * an unauthenticated client makes us buffer little. */
			if (!line_may_grow(buf + pos, rest) ||
			    (ps->env->auth != NULL && !ps->authenticated && rest > PROTO_LINE_MAX))
				ps->close = true;
			break;
		}
		linelen = (size_t)(nl - (buf + pos));
		if (linelen > 1 && nl[-1] == '\r')
			linelen--;
		line = linelen < sizeof(scratch) ? scratch : malloc(linelen + 1);
		if (line == NULL) {
			proto_reply(out, false, "SERVER_ERROR out of memory reading request");
			ps->close = true;
			break;
		}
		memcpy(line, buf + pos, linelen);
		line[linelen] = '\0';
		r = process_line(ps, line, nl + 1, len - (size_t)(nl + 1 - buf),
		                 &data_used, out);
		if (line != scratch)
			free(line);
		if (r == LINE_NEED_DATA) {
			*need = (size_t)(nl + 1 - (buf + pos)) + data_used;
			break;
		}
		if (r == LINE_PAUSED) {
			ps->paused = true;
			break;
		}
		pos = (size_t)(nl + 1 - buf) + data_used;
		done++;
		if (ps->dump.active)  /* a metadump began: what fits now */
			proto_dump_continue(ps->env, &ps->dump, out, out_limit);
	}
	return pos;
}
