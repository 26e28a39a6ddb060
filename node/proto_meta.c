/* memcached's meta protocol (mg, ms, md, ma, me, mn).  See proto_meta.h.
 *
 * Each command follows memcached 1.6.18's order of checks, because the
 * order decides which error a client sees and whether an ms data block is
 * swallowed: the key's length, the number of tokens (and ms's length),
 * then the flags (memcached's _meta_flag_preparse, shared by all four),
 * then the command's own checks, the change, and the reply.
 */
#include "node/proto_meta.h"

#include <event2/buffer.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "node/proto_text.h"
#include "node/settings.h"
#include "node/stats.h"
#include "storage/cache.h"
#include "storage/store.h"

/* memcached's MFLAG_MAX_OPT_LENGTH: at most this many tokens (command, key,
 * ms's length, flags, and the terminal token). */
#define META_MAX_TOKENS 20
/* The largest CAS a client may choose with E (2^63 - 1). */
#define META_EXPLICIT_CAS_MAX (UINT64_MAX >> 1)
/* memcached's MFLAG_MAX_OPAQUE_LENGTH: an O token, the O included. */
#define META_MAX_OPAQUE 32
/* A reply line without the value: at most one base64 key (4/3 of 250
 * bytes), one opaque, and numbers for the other flags. */
#define META_REPLY_MAX 1024

#define ERR_BAD_FORMAT "CLIENT_ERROR bad command line format"
#define ERR_BAD_TOKEN "CLIENT_ERROR bad token in command line format"
#define ERR_INVALID_FLAG "CLIENT_ERROR invalid flag"
#define ERR_DUPLICATE_FLAG "CLIENT_ERROR duplicate flag"
#define ERR_MD_MA_FLAGS "CLIENT_ERROR invalid or duplicate flag"
#define ERR_OPAQUE "CLIENT_ERROR opaque token too long"
#define ERR_NON_NUMERIC "CLIENT_ERROR cannot increment or decrement non-numeric value"

/******** BASE64 KEYS (the b flag) ********/

static int
b64_value(unsigned char ch)
{
	if (ch >= 'A' && ch <= 'Z')
		return ch - 'A';
	if (ch >= 'a' && ch <= 'z')
		return ch - 'a' + 26;
	if (ch >= '0' && ch <= '9')
		return ch - '0' + 52;
	if (ch == '+')
		return 62;
	if (ch == '/')
		return 63;
	return -1;
}

/* Decode as memcached's base64_decode does: whole groups of four only, at
 * most two '=' at the end of a group, and decoding stops after the first
 * padded group ("YWI=YWI=" is "ab").  Returns the decoded length, 0 for
 * input memcached refuses. */
static size_t
b64_decode(const char *in, size_t len, char *out)
{
	size_t i, o = 0;

	if (len % 4 != 0)
		return 0;
	for (i = 0; i < len; i += 4) {
		uint32_t bits = 0;
		int j, pad = 0;

		for (j = 0; j < 4; j++) {
			int v = 0;

			if (in[i + j] == '=')
				pad++;
			else if (pad != 0 || (v = b64_value((unsigned char)in[i + j])) < 0)
				return 0;
			bits = bits << 6 | (uint32_t)v;
		}
		if (pad > 2)
			return 0;
		out[o++] = (char)(bits >> 16);
		if (pad < 2)
			out[o++] = (char)(bits >> 8);
		if (pad < 1)
			out[o++] = (char)bits;
		if (pad != 0)
			break;
	}
	return o;
}

static char *
b64_encode(const char *in, size_t len, char *p)
{
	static const char alphabet[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	size_t i;

	for (i = 0; i < len; i += 3) {
		uint32_t bits = (uint32_t)(unsigned char)in[i] << 16;
		size_t n = len - i < 3 ? len - i : 3;

		if (n > 1)
			bits |= (uint32_t)(unsigned char)in[i + 1] << 8;
		if (n > 2)
			bits |= (unsigned char)in[i + 2];
		*p++ = alphabet[bits >> 18 & 63];
		*p++ = alphabet[bits >> 12 & 63];
		*p++ = n > 1 ? alphabet[bits >> 6 & 63] : '=';
		*p++ = n > 2 ? alphabet[bits & 63] : '=';
	}
	return p;
}

/******** FLAGS ********/

/* A request's flags, as memcached's _meta_flag_preparse reads them.  Every
 * command accepts every command's flags (and ignores those it has no use
 * for); exptimes are already absolute (proto_absolute_exptime). */
struct meta_req {
	const char *key;
	size_t nkey;
	bool key_binary;         /* b */
	bool value;              /* v */
	bool quiet;              /* q */
	bool no_update;          /* u */
	bool invalidate;         /* I */
	bool has_ttl;            /* T */
	uint32_t exptime;
	bool vivify;             /* N */
	uint32_t vivify_exptime;
	bool recache;            /* R */
	uint32_t recache_time;
	bool has_cas;            /* C */
	uint64_t cas;
	uint64_t new_cas;        /* E: the CAS a change gives (0: the next) */
	bool remove_value;       /* x (md) */
	uint32_t client_flags;   /* F */
	uint64_t delta;          /* D */
	uint64_t initial;        /* J */
	char mode;               /* M, 0 if none */
	char keybuf[CACHE_KEY_MAX];  /* a decoded b key */
};

/* Read flags tokens[first .. ntokens - 1) into *r.  An unknown or repeated
 * flag stops at once; a bad argument is noted and parsing goes on, the
 * last one's message winning (F has none of its own).  Returns false with
 * *err set on any error. */
static bool
meta_parse(struct token *tokens, size_t first, size_t ntokens, struct meta_req *r,
           const char **err)
{
	bool seen[127] = {false};
	bool bad = false;
	int32_t n;
	size_t i;

	memset(r, 0, offsetof(struct meta_req, keybuf));
	r->key = tokens[1].value;
	r->nkey = tokens[1].length;
	r->delta = 1;
	*err = ERR_BAD_FORMAT;
	for (i = first; i < ntokens - 1; i++) {
		unsigned char f = (unsigned char)tokens[i].value[0];
		const char *arg = tokens[i].value + 1;

		if (f >= 127 || seen[f]) {
			*err = ERR_DUPLICATE_FLAG;
			return false;
		}
		seen[f] = true;
		switch (f) {
		case 'b':
			r->key_binary = true;
			r->nkey = b64_decode(tokens[1].value, tokens[1].length, r->keybuf);
			r->key = r->keybuf;
			if (r->nkey == 0) {
				*err = "CLIENT_ERROR error decoding key";
				bad = true;
			}
			break;
		case 'N':
		case 'T':
		case 'R':
			if (!proto_parse_i32(arg, &n)) {
				*err = ERR_BAD_TOKEN;
				bad = true;
			} else if (f == 'N') {
				r->vivify = true;
				r->vivify_exptime = proto_absolute_exptime(n);
			} else if (f == 'T') {
				r->has_ttl = true;
				r->exptime = proto_absolute_exptime(n);
			} else {
				r->recache = true;
				r->recache_time = proto_absolute_exptime(n);
			}
			break;
		case 'C':
			if (!proto_parse_u64(arg, &r->cas)) {
				*err = ERR_BAD_TOKEN;
				bad = true;
			}
			r->has_cas = true;
			break;
		case 'E':
			/* Later than 1.6.18 (protocol.txt): the client picks the
			 * CAS of what the command stores, e.g. a version number
			 * shared by several caches.  Later uniques continue above
			 * it, so it is bounded: near 2^64 the counter would wrap
			 * and repeat old uniques (or, after a flush_all, make
			 * every new item dead). */
			if (!proto_parse_u64(arg, &r->new_cas) || r->new_cas > META_EXPLICIT_CAS_MAX) {
				*err = ERR_BAD_TOKEN;
				bad = true;
			}
			break;
		case 'x':
			r->remove_value = true;
			break;
		case 'F': {
			uint64_t flags;

			/* Read as 64 bits and truncated, as memcached does. */
			if (!proto_parse_u64(arg, &flags))
				bad = true;
			r->client_flags = (uint32_t)flags;
			break;
		}
		case 'D':
			if (!proto_parse_u64(arg, &r->delta)) {
				*err = "CLIENT_ERROR invalid numeric delta value";
				bad = true;
			}
			break;
		case 'J':
			if (!proto_parse_u64(arg, &r->initial)) {
				*err = "CLIENT_ERROR invalid numeric initial value";
				bad = true;
			}
			break;
		case 'M':
			if (tokens[i].length != 2) {
				*err = "CLIENT_ERROR incorrect length for M token";
				bad = true;
			} else {
				r->mode = arg[0];
			}
			break;
		case 'v':
			r->value = true;
			break;
		case 'q':
			r->quiet = true;
			break;
		case 'u':
			r->no_update = true;
			break;
		case 'I':
			r->invalidate = true;
			break;
		case 'c': case 'f': case 'h': case 'k': case 'l': case 's': case 't':
		case 'O': case 'P': case 'L':
			break;  /* reply flags (written in request order), or ignored */
		default:
			*err = ERR_INVALID_FLAG;
			return false;
		}
	}
	return !bad;
}

/* Is any O token longer than memcached allows? */
static bool
opaque_too_long(const struct token *tokens, size_t first, size_t ntokens)
{
	size_t i;

	for (i = first; i < ntokens - 1; i++) {
		if (tokens[i].value[0] == 'O' && tokens[i].length > META_MAX_OPAQUE)
			return true;
	}
	return false;
}

/******** REPLIES ********/

/* One reply line being built: the code, then " <flag><value>" for each
 * flag (memcached's META_CHAR and friends). */
struct meta_line {
	char buf[META_REPLY_MAX];
	char *p;
};

static void
line_start(struct meta_line *l, const char *code)
{
	size_t n = strlen(code);

	memcpy(l->buf, code, n);
	l->p = l->buf + n;
}

static void
line_flag(struct meta_line *l, char flag)
{
	*l->p++ = ' ';
	*l->p++ = flag;
}

static void
line_u64(struct meta_line *l, char flag, uint64_t v)
{
	line_flag(l, flag);
	l->p = proto_format_u64(l->p, v);
}

/* t<remaining seconds>, t-1 for an item that never expires. */
static void
line_ttl(struct meta_line *l, uint32_t exptime)
{
	uint32_t now = cache_now();

	line_flag(l, 't');
	if (exptime == 0) {
		memcpy(l->p, "-1", 2);
		l->p += 2;
	} else {
		l->p = proto_format_u64(l->p, exptime > now ? exptime - now : 0);
	}
}

/* k<key>, or k<base64 key> b for a binary key. */
static void
line_key(struct meta_line *l, const char *key, size_t nkey, bool binary)
{
	line_flag(l, 'k');
	if (!binary) {
		memcpy(l->p, key, nkey);
		l->p += nkey;
		return;
	}
	l->p = b64_encode(key, nkey, l->p);
	memcpy(l->p, " b", 2);
	l->p += 2;
}

static void
line_opaque(struct meta_line *l, const struct token *t)
{
	*l->p++ = ' ';
	memcpy(l->p, t->value, t->length);
	l->p += t->length;
}

/* What an ms that stored reports: c and s. */
struct stored {
	bool stored;
	uint64_t cas;
	uint32_t nbytes;
};

/* The flags every reply code carries: O and k (and for ms, c and s), in
 * request order.  k follows the request's b.  `ms` is NULL for the other
 * commands; for ms, c says c0 when nothing was stored and s is said only
 * when something was. */
static void
line_echo(struct meta_line *l, const struct token *tokens, size_t first, size_t ntokens,
          const struct meta_req *r, const struct stored *ms)
{
	size_t i;

	for (i = first; i < ntokens - 1; i++) {
		switch (tokens[i].value[0]) {
		case 'O':
			line_opaque(l, &tokens[i]);
			break;
		case 'k':
			line_key(l, r->key, r->nkey, r->key_binary);
			break;
		case 'c':
			if (ms != NULL)
				line_u64(l, 'c', ms->stored ? ms->cas : 0);
			break;
		case 's':
			if (ms != NULL && ms->stored)
				line_u64(l, 's', ms->nbytes);
			break;
		}
	}
}

static void
line_end(struct meta_line *l, struct evbuffer *out, bool quiet)
{
	if (quiet)
		return;
	*l->p++ = '\r';
	*l->p++ = '\n';
	evbuffer_add(out, l->buf, (size_t)(l->p - l->buf));
}

static uint64_t
shown_cas(const struct proto_state *ps, uint64_t cas)
{
	return ps->env->settings->use_cas ? cas : 0;
}

/******** mg ********/

static void
process_mg(struct proto_state *ps, struct token *tokens, size_t ntokens,
           struct evbuffer *out)
{
	struct cache_meta_read rd = {0};
	struct cache_meta_view view;
	struct meta_line l;
	struct meta_req r;
	const char *err;
	struct item *it;
	uint32_t exptime, now = cache_now();
	bool may_win = false, won = false;
	size_t i;

	if (ntokens > META_MAX_TOKENS) {
		proto_reply(out, false, "CLIENT_ERROR options flags are too long");
		return;
	}
	if (!meta_parse(tokens, 2, ntokens, &r, &err)) {
		proto_reply(out, false, err);
		return;
	}
	if ((r.has_ttl || r.vivify) && proto_refuse_write(ps, out))
		return;
	rd.bump = !r.no_update;
	rd.touch = r.has_ttl;
	rd.exptime = r.exptime;
	rd.vivify = r.vivify;
	rd.vivify_exptime = r.vivify_exptime;
	rd.new_cas = r.new_cas;
	it = store_meta_get(ps->env->store, r.key, r.nkey, &rd, &view);
	STATS_INCR(ps->stats, cmd_get);
	if (it == NULL) {
		STATS_INCR(ps->stats, get_misses);
		if (opaque_too_long(tokens, 2, ntokens)) {
			proto_reply(out, false, ERR_OPAQUE);
			return;
		}
		line_start(&l, "EN");
		line_echo(&l, tokens, 2, ntokens, &r, NULL);
		line_end(&l, out, r.quiet);  /* q hides only a miss */
		return;
	}
	STATS_INCR(ps->stats, get_hits);
	if (view.created)
		may_win = true;
	line_start(&l, r.value ? "VA" : "HD");
	if (r.value) {
		*l.p++ = ' ';
		l.p = proto_format_u64(l.p, it->nbytes);
	}
	/* TTL flags take effect at their place in the request: t before T
	 * shows the old TTL (memcached sets exptime inside this loop). */
	exptime = view.created ? 0 : view.exptime;
	for (i = 2; i < ntokens - 1; i++) {
		switch (tokens[i].value[0]) {
		case 'T':
			exptime = r.exptime;
			break;
		case 'N':
			if (view.created)
				exptime = r.vivify_exptime;
			break;
		case 'R':
			/* Win the recache when the remaining TTL is below R's. */
			if (!view.win_sent && !view.created && exptime != 0 &&
			    exptime < r.recache_time)
				may_win = true;
			break;
		case 's':
			line_u64(&l, 's', it->nbytes);
			break;
		case 't':
			line_ttl(&l, exptime);
			break;
		case 'c':
			line_u64(&l, 'c', shown_cas(ps, view.cas));
			break;
		case 'f':
			line_u64(&l, 'f', it->flags);
			break;
		case 'l':
			line_u64(&l, 'l', now > view.stored_time ? now - view.stored_time : 0);
			break;
		case 'h':
			line_u64(&l, 'h', view.fetched ? 1 : 0);
			break;
		case 'O':
			if (tokens[i].length > META_MAX_OPAQUE) {
				/* After the touch or the vivify, as memcached; and no
				 * win is recorded. */
				cache_item_put(ps->env->cache, it);
				proto_reply(out, false, ERR_OPAQUE);
				return;
			}
			line_opaque(&l, &tokens[i]);
			break;
		case 'k':
			/* The item's own mark decides, not the request's b. */
			line_key(&l, item_key(it), it->nkey, view.key_binary);
			break;
		}
	}
	/* A stale item's first reader wins too: it refreshes the value. */
	if (view.stale && !view.win_sent)
		may_win = true;
	/* Claiming a win is logged (store.h).  While writes are paused (a
	 * planned failover) nothing may reach the log: the reader is told
	 * another won (Z), and the win stays to take once writes resume. */
	if (may_win && !proto_writes_paused())
		won = store_meta_claim_win(ps->env->store, it);
	if (view.win_sent || (may_win && !won))
		line_flag(&l, 'Z');
	if (view.stale)
		line_flag(&l, 'X');
	if (won)
		line_flag(&l, 'W');
	line_end(&l, out, false);
	if (r.value)
		proto_add_value(ps, out, it);  /* takes the reference */
	else
		cache_item_put(ps->env->cache, it);
}

/******** ms ********/

/* ms's M: which store, or false for a mode memcached refuses. */
static bool
ms_mode(const struct meta_req *r, enum cache_store_mode *mode)
{
	switch (r->mode) {
	case 0:
	case 'S':
		*mode = CACHE_SET;
		break;
	case 'E':
		*mode = CACHE_ADD;
		break;
	case 'A':
		*mode = CACHE_APPEND;
		break;
	case 'P':
		*mode = CACHE_PREPEND;
		break;
	case 'R':
		*mode = CACHE_REPLACE;
		break;
	default:
		return false;
	}
	/* A compare turns set and replace into cas (NF on a miss); add
	 * ignores it; append and prepend compare as they go. */
	if (r->has_cas && (*mode == CACHE_SET || *mode == CACHE_REPLACE))
		*mode = CACHE_CAS;
	return true;
}

static enum line_result
process_ms(struct proto_state *ps, struct token *tokens, size_t ntokens,
           const char *data, size_t avail, size_t *data_used, struct evbuffer *out)
{
	struct cache_store_opts o = {0};
	enum cache_store_mode mode;
	enum cache_status st;
	struct stored done = {0};
	struct meta_line l;
	struct meta_req r;
	const char *err;
	struct item *it;
	int32_t vlen;

	/* Refused before the length is read: the data block is not
	 * swallowed, and will be read as a command. */
	if (tokens[1].length > CACHE_KEY_MAX || ntokens == 3) {
		proto_reply(out, false, ERR_BAD_FORMAT);
		return LINE_DONE;
	}
	if (ntokens > META_MAX_TOKENS) {
		proto_reply(out, false, "CLIENT_ERROR options flags too long");
		return LINE_DONE;
	}
	if (!proto_parse_i32(tokens[2].value, &vlen) || vlen < 0 || vlen > INT32_MAX - 2) {
		proto_reply(out, false, ERR_BAD_FORMAT);
		return LINE_DONE;
	}
	/* From here on every refusal swallows the data block. */
	if (!meta_parse(tokens, 3, ntokens, &r, &err) ||
	    (!ms_mode(&r, &mode) && (err = "CLIENT_ERROR invalid mode for ms M token")) ||
	    (opaque_too_long(tokens, 3, ntokens) && (err = ERR_OPAQUE))) {
		proto_reply(out, false, err);
		ps->swallow = (uint64_t)vlen + 2;
		return LINE_DONE;
	}
	/* memcached drops the old item in every mode here, unlike set's. */
	if (proto_refuse_too_large(ps, r.key, r.nkey, (uint32_t)vlen, r.client_flags, true,
	                           false, out))
		return LINE_DONE;
	if (!proto_data_arrived(avail, (uint32_t)vlen, data_used))
		return LINE_NEED_DATA;
	STATS_INCR(ps->stats, cmd_set);
	it = proto_data_item(ps, r.key, r.nkey, r.client_flags,
	                     r.has_ttl ? r.exptime : 0, data, (uint32_t)vlen, false, true, out);
	if (it == NULL)
		return LINE_DONE;
	o.compare = r.has_cas;
	o.cas = r.cas;
	o.invalidate = r.invalidate;
	o.key_binary = r.key_binary;
	o.new_cas = r.new_cas;
	/* N: an append or prepend on a miss creates the item (protocol.txt,
	 * later than 1.6.18, which ignores ms N and s). */
	o.vivify = r.vivify;
	o.vivify_exptime = r.vivify_exptime;
	o.nbytes_out = &done.nbytes;
	st = store_store_opts(ps->env->store, it, mode, &o, &done.cas);
	cache_item_put(ps->env->cache, it);
	done.stored = st == CACHE_STORED;
	done.cas = shown_cas(ps, done.cas);
	switch (st) {
	case CACHE_STORED:
		line_start(&l, "HD");
		break;
	case CACHE_EXISTS:
		line_start(&l, "EX");
		break;
	case CACHE_NOT_FOUND:
		line_start(&l, "NF");
		break;
	case CACHE_NO_MEMORY:
		STATS_INCR(ps->stats, store_no_memory);
		proto_reply(out, false, "SERVER_ERROR out of memory storing object");
		return LINE_DONE;
	default:
		line_start(&l, "NS");
		break;
	}
	line_echo(&l, tokens, 3, ntokens, &r, &done);
	line_end(&l, out, r.quiet && st == CACHE_STORED);
	return LINE_DONE;
}

/******** md ********/

static void
process_md(struct proto_state *ps, struct token *tokens, size_t ntokens,
           struct evbuffer *out)
{
	struct cache_meta_delete d = {0};
	enum cache_status st;
	struct meta_line l;
	struct meta_req r;
	const char *err;

	if (ntokens > META_MAX_TOKENS) {
		proto_reply(out, false, "CLIENT_ERROR options flags too long");
		return;
	}
	if (!meta_parse(tokens, 2, ntokens, &r, &err)) {
		proto_reply(out, false, ERR_MD_MA_FLAGS);
		return;
	}
	if (opaque_too_long(tokens, 2, ntokens)) {
		proto_reply(out, false, ERR_OPAQUE);
		return;
	}
	if (proto_refuse_write(ps, out))
		return;
	d.compare = r.has_cas;
	d.cas = r.cas;
	d.invalidate = r.invalidate;
	d.touch = r.invalidate && r.has_ttl;  /* T without I: a plain delete */
	d.exptime = r.exptime;
	/* x and E: later than 1.6.18 (protocol.txt).  x empties the value and
	 * keeps the item, with F's client flags, as memcached does. */
	d.remove_value = r.remove_value;
	d.client_flags = r.client_flags;
	d.new_cas = r.new_cas;
	st = store_meta_delete(ps->env->store, r.key, r.nkey, &d);
	if (st == CACHE_NO_MEMORY) {
		proto_reply(out, false, "SERVER_ERROR out of memory");
		return;
	}
	if (st == CACHE_STORED) {
		STATS_INCR(ps->stats, delete_hits);
		line_start(&l, "HD");
	} else if (st == CACHE_EXISTS) {
		line_start(&l, "EX");
	} else {
		STATS_INCR(ps->stats, delete_misses);
		line_start(&l, "NF");
	}
	line_echo(&l, tokens, 2, ntokens, &r, NULL);
	line_end(&l, out, r.quiet && st == CACHE_STORED);
}

/******** ma ********/

/* ma on a miss with N: store J (the delta is not applied), with N's TTL. */
static enum cache_status
ma_vivify(struct proto_state *ps, const struct meta_req *r, struct cache_arith_result *res)
{
	char digits[24];
	size_t len = (size_t)(proto_format_u64(digits, r->initial) - digits);
	enum cache_status st;
	struct item *it;

	it = cache_item_create(ps->env->cache, r->key, r->nkey, 0, r->vivify_exptime,
	                       (uint32_t)len);
	if (it == NULL)
		return CACHE_NO_MEMORY;
	memcpy(item_value(it), digits, len);
	it->cas = r->new_cas;  /* E; 0: the next */
	/* Not marked binary even for a b key, as memcached. */
	st = store_store(ps->env->store, it, CACHE_ADD, 0, &res->cas);
	cache_item_put(ps->env->cache, it);
	res->value = r->initial;
	res->old_exptime = 0;
	return st;
}

static void
process_ma(struct proto_state *ps, struct token *tokens, size_t ntokens,
           struct evbuffer *out)
{
	struct cache_arith a = {0};
	struct cache_arith_result res;
	enum cache_status st;
	struct meta_line l;
	struct meta_req r;
	const char *err;
	char digits[24];
	size_t ndigits = 0, i;
	uint32_t exptime;
	bool created = false;

	if (ntokens > META_MAX_TOKENS) {
		proto_reply(out, false, "CLIENT_ERROR options flags too long");
		return;
	}
	if (!meta_parse(tokens, 2, ntokens, &r, &err)) {
		proto_reply(out, false, ERR_MD_MA_FLAGS);
		return;
	}
	switch (r.mode) {
	case 0:
	case 'I':
	case '+':
		a.incr = true;
		break;
	case 'D':
	case '-':
		a.incr = false;
		break;
	default:
		proto_reply(out, false, "CLIENT_ERROR invalid mode for ma M token");
		return;
	}
	if (proto_refuse_write(ps, out))
		return;
	a.delta = r.delta;
	a.compare = r.has_cas;
	a.cas = r.cas;
	a.touch = r.has_ttl;
	a.exptime = r.exptime;
	a.new_cas = r.new_cas;
	st = store_arith(ps->env->store, r.key, r.nkey, &a, &res);
	if (st == CACHE_NOT_FOUND && r.vivify) {
		st = ma_vivify(ps, &r, &res);
		created = st == CACHE_STORED;
	}
	switch (st) {
	case CACHE_STORED:
		if (created)
			break;
		if (a.incr)
			STATS_INCR(ps->stats, incr_hits);
		else
			STATS_INCR(ps->stats, decr_hits);
		break;
	case CACHE_NON_NUMERIC:
		proto_reply(out, false, ERR_NON_NUMERIC);
		return;
	case CACHE_NO_MEMORY:
		proto_reply(out, false, "SERVER_ERROR out of memory");
		return;
	default:
		if (st == CACHE_NOT_FOUND) {
			if (a.incr)
				STATS_INCR(ps->stats, incr_misses);
			else
				STATS_INCR(ps->stats, decr_misses);
		}
		if (opaque_too_long(tokens, 2, ntokens)) {
			proto_reply(out, false, ERR_OPAQUE);
			return;
		}
		line_start(&l, st == CACHE_EXISTS ? "EX" : st == CACHE_NOT_FOUND ? "NF" : "NS");
		line_echo(&l, tokens, 2, ntokens, &r, NULL);
		line_end(&l, out, false);
		return;
	}
	/* Changed: from here an error (the opaque) leaves the change made. */
	if (opaque_too_long(tokens, 2, ntokens)) {
		proto_reply(out, false, ERR_OPAQUE);
		return;
	}
	ndigits = (size_t)(proto_format_u64(digits, res.value) - digits);
	line_start(&l, r.value ? "VA" : "HD");
	if (r.value) {
		*l.p++ = ' ';
		l.p = proto_format_u64(l.p, ndigits);
	}
	exptime = res.old_exptime;
	for (i = 2; i < ntokens - 1; i++) {
		switch (tokens[i].value[0]) {
		case 'c':
			line_u64(&l, 'c', shown_cas(ps, res.cas));
			break;
		case 't':
			line_ttl(&l, exptime);
			break;
		case 'T':
			exptime = r.exptime;
			break;
		case 'N':
			if (created)
				exptime = r.vivify_exptime;
			break;
		case 'O':
			line_opaque(&l, &tokens[i]);
			break;
		case 'k':
			line_key(&l, r.key, r.nkey, r.key_binary);
			break;
		}
	}
	/* q hides a counted change, not the reply to an item just created. */
	if (r.quiet && !created)
		return;
	if (r.value) {
		*l.p++ = '\r';
		*l.p++ = '\n';
		memcpy(l.p, digits, ndigits);
		l.p += ndigits;
	}
	line_end(&l, out, false);
}

/******** me ********/

/* "ME <key> exp=… la=… cas=… fetch=… cls=1 size=…": memcached 1.6.18's
 * format, including its exp (now - expiry: negative for a live item). */
static void
process_me(struct proto_state *ps, struct token *tokens, size_t ntokens,
           struct evbuffer *out)
{
	struct cache_meta_read rd = {0};  /* me neither bumps nor marks */
	struct cache_meta_view view;
	char keybuf[CACHE_KEY_MAX], shown[3 + CACHE_KEY_MAX * 2];
	const char *key = tokens[1].value;
	size_t nkey = tokens[1].length;
	uint32_t now = cache_now();
	struct item *it;
	char *end;

	/* memcached 1.6.18's cmd_meta counts me requests (mg, ms, md and ma
	 * count as gets, sets, deletes and incrs). */
	STATS_INCR(ps->stats, cmd_meta);
	if (ntokens < 3 || nkey > CACHE_KEY_MAX) {
		proto_reply(out, false, ERR_BAD_FORMAT);
		return;
	}
	/* The only flag: b, and only right after the key. */
	if (ntokens >= 4 && strcmp(tokens[2].value, "b") == 0) {
		nkey = b64_decode(key, nkey, keybuf);
		key = keybuf;
		if (nkey == 0) {
			proto_reply(out, false, ERR_BAD_FORMAT);
			return;
		}
	}
	it = store_meta_get(ps->env->store, key, nkey, &rd, &view);
	if (it == NULL) {
		proto_reply(out, false, "EN");
		return;
	}
	/* The key as bytes (it may hold a NUL, from a b key ma created). */
	memcpy(shown, "ME ", 3);
	if (view.key_binary) {
		end = b64_encode(item_key(it), it->nkey, shown + 3);
	} else {
		memcpy(shown + 3, item_key(it), it->nkey);
		end = shown + 3 + it->nkey;
	}
	evbuffer_add(out, shown, (size_t)(end - shown));
	evbuffer_add_printf(out, " exp=%lld la=%u cas=%llu fetch=%s cls=1 size=%zu\r\n",
	                    view.exptime == 0 ? -1LL : (long long)now - view.exptime,
	                    now > view.stored_time ? now - view.stored_time : 0,
	                    (unsigned long long)shown_cas(ps, view.cas),
	                    view.fetched ? "yes" : "no",
	                    cache_item_memcached_size(ps->env->cache, it->nkey, it->nbytes,
	                                              it->flags));
	cache_item_put(ps->env->cache, it);
}

/******** DISPATCH ********/

bool
proto_meta_command(const char *cmd)
{
	return cmd[0] == 'm' && cmd[1] != '\0' && cmd[2] == '\0' &&
	       strchr("gsdaen", cmd[1]) != NULL;
}

bool
proto_meta_is_write(const struct token *tokens, size_t ntokens)
{
	const char *cmd = tokens[0].value;
	size_t i;

	if (cmd[1] == 's' || cmd[1] == 'd' || cmd[1] == 'a')
		return true;
	if (cmd[1] != 'g')
		return false;
	for (i = 2; i < ntokens - 1; i++) {
		if (tokens[i].value[0] == 'N' || tokens[i].value[0] == 'T')
			return true;
	}
	return false;
}

enum line_result
proto_meta_process(struct proto_state *ps, struct token *tokens, size_t ntokens,
                   const char *data, size_t avail, size_t *data_used,
                   struct evbuffer *out)
{
	char cmd = tokens[0].value[1];

	*data_used = 0;
	if (cmd == 'n') {
		proto_reply(out, false, "MN");
		return LINE_DONE;
	}
	if (cmd == 'e') {
		process_me(ps, tokens, ntokens, out);
		return LINE_DONE;
	}
	if (ntokens < 3) {  /* no key */
		proto_reply(out, false, "ERROR");
		return LINE_DONE;
	}
	if (cmd == 's')
		return process_ms(ps, tokens, ntokens, data, avail, data_used, out);
	if (tokens[1].length > CACHE_KEY_MAX) {
		proto_reply(out, false, ERR_BAD_FORMAT);
		return LINE_DONE;
	}
	if (cmd == 'g')
		process_mg(ps, tokens, ntokens, out);
	else if (cmd == 'd')
		process_md(ps, tokens, ntokens, out);
	else
		process_ma(ps, tokens, ntokens, out);
	return LINE_DONE;
}
