/* `stats cachedump` and `lru_crawler`: memcached 1.6.18's replies, over
 * cache_walk().
 *
 * Every reply and error string here was checked against memcached 1.6.18
 * itself (tests/integration/test_dump.py runs each case against both).
 * Where memcached's answer comes from machinery cairn does not have (its
 * crawler thread, its per-item sleep) the choice made is written next to
 * the code and in docs/protocol.md.
 */
#include "node/proto_dump.h"

#include <ctype.h>
#include <errno.h>
#include <event2/buffer.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "node/proto_text.h"
#include "node/settings.h"
#include "storage/cache.h"

#define SLAB_CLASSES 64          /* memcached's MAX_NUMBER_OF_SLAB_CLASSES */
#define CAIRN_CLASS 1            /* the one class cairn reports */
#define SLEEP_MAX 1000000        /* lru_crawler sleep: at most one second */
#define CHUNK 16384              /* metadump lines are appended this many bytes at a time */

static void
reply(struct evbuffer *out, const char *text)
{
	evbuffer_add(out, text, strlen(text));
	evbuffer_add(out, "\r\n", 2);
}

/* memcached's safe_strtoul: a decimal number (strtoul's leading blanks and
 * sign allowed) ending the word; negative numbers refused only when they
 * wrap to a huge value; the result truncated to 32 bits, as memcached
 * stores it in a uint32_t (so "4294967297" reads as 1, as there). */
static bool
safe_strtoul(const char *s, uint32_t *out)
{
	unsigned long v;
	char *end;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno == ERANGE || end == s)
		return false;
	if (*end != '\0' && !isspace((unsigned char)*end))
		return false;
	if ((long)v < 0 && memchr(s, '-', (size_t)(end - s)) != NULL)
		return false;
	*out = (uint32_t)v;
	return true;
}

/******** stats cachedump ********/

struct cachedump {
	struct evbuffer *out;
	size_t bytes;   /* reply bytes so far, for the 2 MB cap */
};

static bool
cachedump_line(void *arg, const struct cache_walk_item *it)
{
	struct cachedump *d = arg;
	char line[CACHE_KEY_MAX + 64];
	int len;

	/* memcached prints the key as it is (no encoding) and the exptime as
	 * an absolute unix time, 0 for never. */
	len = snprintf(line, sizeof(line), "ITEM %s [%u b; %u s]\r\n", it->key,
	               (unsigned)it->nbytes, (unsigned)it->exptime);
	/* memcached stops once a line and "END\r\n\0" would not fit. */
	if (d->bytes + (size_t)len + 6 > PROTO_CACHEDUMP_MAX)
		return false;
	evbuffer_add(d->out, line, (size_t)len);
	d->bytes += (size_t)len;
	return true;
}

void
proto_dump_cachedump(const struct proto_env *env, const char *class_id,
                     const char *limit, struct evbuffer *out)
{
	struct cachedump d = {.out = out, .bytes = 0};
	uint32_t id, max;
	uint64_t cursor = 0;

	if (class_id == NULL || limit == NULL) {
		reply(out, "CLIENT_ERROR bad command line");
		return;
	}
	if (!safe_strtoul(class_id, &id) || !safe_strtoul(limit, &max)) {
		reply(out, "CLIENT_ERROR bad command line format");
		return;
	}
	if (id >= SLAB_CLASSES) {
		reply(out, "CLIENT_ERROR Illegal slab id");
		return;
	}
	/* One pass: the walk stops at `max` items or at the first line over
	 * the cap, and the rest of the table is not read. */
	if (id == CAIRN_CLASS)
		cache_walk(env->cache, &cursor, max, cachedump_line, &d);
	evbuffer_add(out, "END\r\n", 5);
}

/******** lru_crawler metadump ********/

/* memcached's uriencode(): everything but ASCII letters, digits and
 * "-._~" becomes %XX (upper case). */
static char *
uri_encode(char *p, const char *key, size_t nkey)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t i;

	for (i = 0; i < nkey; i++) {
		unsigned char ch = (unsigned char)key[i];

		if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
		    (ch >= '0' && ch <= '9') || ch == '-' || ch == '.' || ch == '_' || ch == '~') {
			*p++ = (char)ch;
		} else {
			*p++ = '%';
			*p++ = hex[ch >> 4];
			*p++ = hex[ch & 15];
		}
	}
	return p;
}

struct metadump {
	const struct proto_env *env;
	struct evbuffer *out;
	size_t used;
	char chunk[CHUNK];
};

static void
metadump_flush(struct metadump *d)
{
	evbuffer_add(d->out, d->chunk, d->used);
	d->used = 0;
}

static char *
put_str(char *p, const char *s)
{
	size_t n = strlen(s);

	memcpy(p, s, n);
	return p + n;
}

/* Longest line: the key encoded (3 bytes a byte) and six fields. */
#define METADUMP_LINE_MAX (4 + CACHE_KEY_MAX * 3 + 160)

static bool
metadump_line(void *arg, const struct cache_walk_item *it)
{
	struct metadump *d = arg;
	char *p;

	if (d->used + METADUMP_LINE_MAX > sizeof(d->chunk))
		metadump_flush(d);
	/* Formatted by hand, not by snprintf: a dump formats every item, and
	 * this is most of its cost.  The fields and their order are memcached
	 * 1.6.18's.  exp: absolute unix time, -1 for never.  la: memcached's
	 * last access time, which it moves on a read at most once a minute;
	 * cairn keeps the time the item was stored.  cas: 0 with -C, as `gets`
	 * says.  size: as memcached counts the item.  Lines end in "\n" alone,
	 * as memcached's do. */
	p = put_str(d->chunk + d->used, "key=");
	p = uri_encode(p, it->key, it->nkey);
	p = put_str(p, " exp=");
	p = it->exptime == 0 ? put_str(p, "-1") : proto_format_u64(p, it->exptime);
	p = put_str(p, " la=");
	p = proto_format_u64(p, it->stored_time);
	p = put_str(p, " cas=");
	p = proto_format_u64(p, d->env->settings->use_cas ? it->cas : 0);
	p = put_str(p, it->fetched ? " fetch=yes cls=" : " fetch=no cls=");
	p = proto_format_u64(p, CAIRN_CLASS);
	p = put_str(p, " size=");
	p = proto_format_u64(p, cache_item_memcached_size(d->env->cache, it->nkey, it->nbytes, it->flags));
	*p++ = '\n';
	d->used = (size_t)(p - d->chunk);
	return true;
}

enum class_list {
	CLASSES_BAD,       /* a word that is not a class id 1 .. 63 */
	CLASSES_NONE,      /* no class named (",") */
	CLASSES_OURS,      /* names class 1 ("all" too) */
	CLASSES_OTHERS,    /* only classes cairn has no items in */
	CLASSES_HASH,      /* "hash" */
};

/* lru_crawler_crawl()'s argument: "all", "hash", or class ids separated by
 * commas (empty words skipped, as strtok skips them). */
static enum class_list
parse_classes(const char *arg)
{
	enum class_list found = CLASSES_NONE;
	const char *p = arg;

	if (strcmp(arg, "all") == 0)
		return CLASSES_OURS;
	if (strcmp(arg, "hash") == 0)
		return CLASSES_HASH;
	while (*p != '\0') {
		char word[32];
		size_t n = strcspn(p, ",");
		uint32_t id;

		if (n == 0) {
			p++;
			continue;
		}
		if (n >= sizeof(word))
			return CLASSES_BAD;  /* no number that long is in range */
		memcpy(word, p, n);
		word[n] = '\0';
		if (!safe_strtoul(word, &id) || id < 1 || id >= SLAB_CLASSES)
			return CLASSES_BAD;
		if (id == CAIRN_CLASS)
			found = CLASSES_OURS;
		else if (found == CLASSES_NONE)
			found = CLASSES_OTHERS;
		p += n;
	}
	return found;
}

/* What metadump and crawl both check first, with memcached's answers:
 * the crawler is on, and `arg` names classes.  Returns false once the
 * refusal is written to `out`; else *classes says which were named. */
static bool
crawler_request_ok(const struct proto_env *env, const char *arg, struct evbuffer *out,
                   enum class_list *classes)
{
	/* memcached refuses while its crawler is off; cairn's crawler is the
	 * sweeper (-o no_lru_crawler), which a dump does not need, but
	 * clients are told what memcached would tell them. */
	if (!env->settings->sweeper) {
		reply(out, "CLIENT_ERROR lru crawler disabled");
		return false;
	}
	*classes = parse_classes(arg);
	if (*classes == CLASSES_BAD) {
		reply(out, "BADCLASS invalid class id");
		return false;
	}
	if (*classes == CLASSES_NONE) {
		reply(out, "NOTSTARTED no items to crawl");
		return false;
	}
	return true;
}

/* Items formatted per proto_dump_continue() round: small enough that the
 * output limit is overshot by little, large enough to cost few walks. */
#define METADUMP_SLICE 512

static void
metadump(const struct proto_env *env, const char *arg, struct evbuffer *out,
         struct proto_dump_stream *stream)
{
	enum class_list classes;

	if (!crawler_request_ok(env, arg, out, &classes))
		return;
	if (classes == CLASSES_OTHERS) {
		evbuffer_add(out, "END\r\n", 5);
		return;
	}
	/* memcached walks the LRUs ("all", class ids) or the hash table
	 * ("hash"); cairn has one table and walks it for both.  Unlike
	 * cachedump there is no cap: the whole table is listed, a slice at a
	 * time (proto_dump_continue). */
	stream->active = true;
	stream->cursor = 0;
}

bool
proto_dump_continue(const struct proto_env *env, struct proto_dump_stream *s,
                    struct evbuffer *out, size_t out_limit)
{
	struct metadump *d;

	if (!s->active)
		return false;
	d = malloc(sizeof(*d));
	if (d == NULL) {
		reply(out, "SERVER_ERROR out of memory");
		s->active = false;
		return false;
	}
	d->env = env;
	d->out = out;
	d->used = 0;
	/* cache_walk() starts at cursor 0 and sets it back to 0 at the end. */
	do {
		cache_walk(env->cache, &s->cursor, METADUMP_SLICE, metadump_line, d);
		metadump_flush(d);
	} while (s->cursor != 0 && evbuffer_get_length(out) <= out_limit);
	free(d);
	if (s->cursor == 0) {
		evbuffer_add(out, "END\r\n", 5);
		s->active = false;
	}
	return s->active;
}

/******** lru_crawler ********/

static void
crawl(const struct proto_env *env, const char *arg, struct evbuffer *out)
{
	enum class_list classes;

	if (!crawler_request_ok(env, arg, out, &classes))
		return;
	if (classes == CLASSES_HASH) {
		/* memcached 1.6.18 takes "hash" and fails to start the crawl. */
		reply(out, "ERROR an unknown error happened");
		return;
	}
	/* The sweeper is always crawling: it visits a tenth of the table
	 * every second and reclaims what has expired, so there is nothing to
	 * start, and never a crawl to be BUSY with. */
	reply(out, "OK");
}

void
proto_dump_lru_crawler(const struct proto_env *env, size_t nargs,
                       const char *sub, const char *arg, struct evbuffer *out,
                       struct proto_dump_stream *stream)
{
	uint32_t v;

	if (nargs == 2 && strcmp(sub, "metadump") == 0) {
		metadump(env, arg, out, stream);
	} else if (nargs == 2 && strcmp(sub, "crawl") == 0) {
		crawl(env, arg, out);
	} else if (nargs == 2 && (strcmp(sub, "sleep") == 0 || strcmp(sub, "tocrawl") == 0)) {
		/* Checked as memcached checks them, then accepted and ignored:
		 * the sweeper paces itself by buckets per second and has no
		 * per-item sleep nor per-class budget to set.  Refusing would
		 * break memcached tuning scripts for no gain. */
		if (!safe_strtoul(arg, &v))
			reply(out, "CLIENT_ERROR bad command line format");
		else if (sub[0] == 's' && v > SLEEP_MAX)
			reply(out, "CLIENT_ERROR sleep must be one second or less");
		else
			reply(out, "OK");
	} else if (nargs == 1 && strcmp(sub, "enable") == 0) {
		/* The sweeper is set at start (-o no_lru_crawler) and cannot be
		 * started later.  When it runs, this is also exactly memcached's
		 * answer: its crawler thread is already running. */
		reply(out, "ERROR failed to start lru crawler thread");
	} else if (nargs == 1 && strcmp(sub, "disable") == 0) {
		/* Nor can it be stopped; when it is off there is nothing to do. */
		reply(out, env->settings->sweeper ? "ERROR failed to stop lru crawler thread" : "OK");
	} else {
		/* Anything else, mgdump included (memcached 1.6.18 has none). */
		reply(out, "ERROR");
	}
}
