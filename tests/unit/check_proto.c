/* Unit tests for node/proto_text.c (and a few of node/proto_binary.c):
 * proto_process() driven directly with a
 * real cache and a real evbuffer, asserting the exact reply bytes of every
 * command and every malformed-input path, and the framing contract
 * (consumed count, *need, out_limit, ps.close). */
#include "node/proto_text.h"

#include <check.h>
#include <event2/buffer.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "node/settings.h"
#include "node/stats.h"
#include "storage/cache.h"
#include "storage/log.h"
#include "storage/store.h"

static struct settings settings;
static struct proto_env env;
static struct thread_stats tstats;
static struct proto_state ps;
static struct cache *cache;
static struct store *store;
static struct evbuffer *out;
static size_t last_need;

static struct cache *
new_cache(size_t mem_limit, size_t item_size_max)
{
	struct cache_config cfg = {
		.mem_limit = mem_limit,
		.item_size_max = item_size_max,
		.hashpower = 10,
		.use_cas = true,
	};
	struct cache *c = cache_create(&cfg);

	ck_assert_msg(c != NULL, "cache_create failed");
	return c;
}

static void
setup(void)
{
	cache_set_time_offset(0);
	log_set_level(0);
	settings_init(&settings);
	cache = new_cache(settings.mem_limit, settings.item_size_max);
	memset(&env, 0, sizeof(env));
	env.cache = cache;
	env.store = store = store_create(cache);
	ck_assert_ptr_nonnull(store);
	env.settings = &settings;
	env.started = time(NULL);
	env.worker_threads = 4;
	memset(&tstats, 0, sizeof(tstats));
	proto_state_init(&ps, &env, &tstats);
	out = evbuffer_new();
	ck_assert_msg(out != NULL, "evbuffer_new failed");
}

static void
teardown(void)
{
	evbuffer_free(out);  /* drops item references held by the buffer */
	out = NULL;
	store_destroy(store);
	store = NULL;
	cache_destroy(cache);
	cache = NULL;
	cache_set_time_offset(0);
	log_set_level(0);
}

/******** HELPERS ********/

/* Printable rendering of bytes for failure messages (rotating buffers). */
static const char *
esc(const char *p, size_t n)
{
	static char bufs[4][700];
	static int which;
	char *b = bufs[which++ % 4], *o = b;
	size_t i;

	for (i = 0; i < n && o < b + sizeof(bufs[0]) - 12; i++) {
		unsigned char ch = (unsigned char)p[i];

		if (ch == '\r') {
			*o++ = '\\';
			*o++ = 'r';
		} else if (ch == '\n') {
			*o++ = '\\';
			*o++ = 'n';
		} else if (ch < 32 || ch > 126) {
			o += sprintf(o, "\\x%02x", ch);
		} else {
			*o++ = (char)ch;
		}
	}
	if (i < n)
		o += sprintf(o, "...(%zu)", n);
	*o = '\0';
	return b;
}

/* Drain `out` into a malloc'd buffer; *len gets its length. */
static char *
take_output(size_t *len)
{
	size_t n = evbuffer_get_length(out);
	char *p = malloc(n + 1);

	ck_assert_msg(p != NULL, "malloc(%zu)", n + 1);
	ck_assert_msg(evbuffer_remove(out, p, n) == (int)n, "evbuffer_remove short");
	p[n] = '\0';
	*len = n;
	return p;
}

/* Feed bytes (copied to a private buffer) with a given out_limit. */
static size_t
feed_limit(const char *in, size_t len, size_t out_limit)
{
	char *buf = malloc(len + 1);
	size_t used;

	ck_assert_msg(buf != NULL, "malloc(%zu)", len + 1);
	memcpy(buf, in, len);
	last_need = 12345;
	used = proto_process(&ps, buf, len, out, out_limit, &last_need);
	free(buf);
	ck_assert_msg(used <= len, "consumed %zu of %zu bytes", used, len);
	return used;
}

static size_t
feed(const char *in, size_t len)
{
	return feed_limit(in, len, SIZE_MAX);
}

/* Feed `in` whole; everything must be consumed with no *need, and the
 * replies must be exactly `want`. */
static void
expect_bytes(int line, const char *in, size_t inlen, const char *want, size_t wantlen)
{
	size_t used = feed(in, inlen), gotlen;
	char *got;

	ck_assert_msg(used == inlen, "line %d: '%s': consumed %zu of %zu", line, esc(in, inlen),
	              used, inlen);
	ck_assert_msg(last_need == 0, "line %d: '%s': *need %zu, expected 0", line,
	              esc(in, inlen), last_need);
	got = take_output(&gotlen);
	ck_assert_msg(gotlen == wantlen && memcmp(got, want, wantlen) == 0,
	              "line %d: '%s'\n  replied '%s' (%zu bytes)\n  expected '%s' (%zu bytes)", line,
	              esc(in, inlen), esc(got, gotlen), gotlen, esc(want, wantlen), wantlen);
	free(got);
}

#define EXPECT(in, want) expect_bytes(__LINE__, (in), strlen(in), (want), strlen(want))

/* A string of n copies of ch (malloc'd, NUL-terminated). */
static char *
repeat(char ch, size_t n)
{
	char *p = malloc(n + 1);

	ck_assert_msg(p != NULL, "malloc(%zu)", n + 1);
	memset(p, ch, n);
	p[n] = '\0';
	return p;
}

static char *
concat(const char *a, const char *b, const char *c)
{
	size_t la = strlen(a), lb = strlen(b), lc = strlen(c);
	char *p = malloc(la + lb + lc + 1);

	ck_assert_msg(p != NULL, "malloc");
	memcpy(p, a, la);
	memcpy(p + la, b, lb);
	memcpy(p + la + lb, c, lc + 1);
	return p;
}

static uint64_t
cas_of(const char *key)
{
	struct item *it = cache_get(cache, key, strlen(key));
	uint64_t cas;

	ck_assert_msg(it != NULL, "%s missing", key);
	cas = it->cas;
	cache_item_put(cache, it);
	return cas;
}

/******** BASIC COMMANDS ********/

START_TEST(test_set_then_get_returns_the_value)
{
	EXPECT("set k 5 0 3\r\nabc\r\n", "STORED\r\n");
	EXPECT("get k\r\n", "VALUE k 5 3\r\nabc\r\nEND\r\n");
	EXPECT("set k 4294967295 0 1\r\nz\r\n", "STORED\r\n");
	EXPECT("get k\r\n", "VALUE k 4294967295 1\r\nz\r\nEND\r\n");
}
END_TEST

START_TEST(test_get_of_missing_key_is_just_end)
{
	EXPECT("get nope\r\n", "END\r\n");
}
END_TEST

START_TEST(test_get_of_several_keys_skips_misses)
{
	EXPECT("set a 0 0 1\r\n1\r\nset b 0 0 2\r\n22\r\n", "STORED\r\nSTORED\r\n");
	EXPECT("get a x b a\r\n", "VALUE a 0 1\r\n1\r\nVALUE b 0 2\r\n22\r\nVALUE a 0 1\r\n1\r\nEND\r\n");
	EXPECT("get   a    b  \r\n", "VALUE a 0 1\r\n1\r\nVALUE b 0 2\r\n22\r\nEND\r\n");
}
END_TEST

START_TEST(test_gets_shows_the_cas_unique)
{
	char want[128];

	EXPECT("set k 0 0 1\r\nx\r\n", "STORED\r\n");
	snprintf(want, sizeof(want), "VALUE k 0 1 %" PRIu64 "\r\nx\r\nEND\r\n", cas_of("k"));
	EXPECT("gets k\r\n", want);
}
END_TEST

START_TEST(test_gets_with_cas_disabled_shows_zero)
{
	settings.use_cas = false;
	EXPECT("set k 0 0 1\r\nx\r\n", "STORED\r\n");
	EXPECT("gets k\r\n", "VALUE k 0 1 0\r\nx\r\nEND\r\n");
}
END_TEST

START_TEST(test_cas_command_stores_then_exists_then_not_found)
{
	char cmd[128];
	uint64_t cas;

	EXPECT("set k 0 0 1\r\nx\r\n", "STORED\r\n");
	cas = cas_of("k");
	snprintf(cmd, sizeof(cmd), "cas k 0 0 1 %" PRIu64 "\r\ny\r\n", cas);
	EXPECT(cmd, "STORED\r\n");
	EXPECT(cmd, "EXISTS\r\n");
	EXPECT("get k\r\n", "VALUE k 0 1\r\ny\r\nEND\r\n");
	EXPECT("cas nope 0 0 1 1\r\nz\r\n", "NOT_FOUND\r\n");
	ck_assert_msg(tstats.cas_hits == 1 && tstats.cas_badval == 1 && tstats.cas_misses == 1,
	              "cas_hits %" PRIu64 " cas_badval %" PRIu64 " cas_misses %" PRIu64,
	              tstats.cas_hits, tstats.cas_badval, tstats.cas_misses);
}
END_TEST

START_TEST(test_add_replace_append_prepend_replies)
{
	EXPECT("add k 3 0 2\r\nmm\r\n", "STORED\r\n");
	EXPECT("add k 0 0 1\r\nx\r\n", "NOT_STORED\r\n");
	EXPECT("replace nope 0 0 1\r\nx\r\n", "NOT_STORED\r\n");
	EXPECT("append nope 0 0 1\r\nx\r\n", "NOT_STORED\r\n");
	EXPECT("prepend nope 0 0 1\r\nx\r\n", "NOT_STORED\r\n");
	EXPECT("append k 9 0 2\r\nzz\r\n", "STORED\r\n");
	EXPECT("prepend k 9 0 2\r\naa\r\n", "STORED\r\n");
	EXPECT("get k\r\n", "VALUE k 3 6\r\naammzz\r\nEND\r\n");
	EXPECT("replace k 7 0 1\r\nr\r\n", "STORED\r\n");
	EXPECT("get k nope\r\n", "VALUE k 7 1\r\nr\r\nEND\r\n");
}
END_TEST

START_TEST(test_value_containing_crlf_is_stored_verbatim)
{
	EXPECT("set k 0 0 8\r\nab\r\ncd\r\n\r\n", "STORED\r\n");
	EXPECT("get k\r\n", "VALUE k 0 8\r\nab\r\ncd\r\n\r\nEND\r\n");
	EXPECT("set e 0 0 2\r\n\r\n\r\n", "STORED\r\n");
	EXPECT("get e\r\n", "VALUE e 0 2\r\n\r\n\r\nEND\r\n");
}
END_TEST

START_TEST(test_zero_length_value)
{
	EXPECT("set k 0 0 0\r\n\r\n", "STORED\r\n");
	EXPECT("get k\r\n", "VALUE k 0 0\r\n\r\nEND\r\n");
}
END_TEST

START_TEST(test_large_value_is_returned_exactly)
{
	enum { N = 100000 };
	char *val = repeat('v', N), *in, *want;
	struct cache_stats cs;
	char head[64];
	size_t i;

	for (i = 0; i < N; i++)
		val[i] = (char)('a' + i % 26);
	snprintf(head, sizeof(head), "set big 0 0 %d\r\n", N);
	in = concat(head, val, "\r\n");
	EXPECT(in, "STORED\r\n");
	snprintf(head, sizeof(head), "VALUE big 0 %d\r\n", N);
	want = concat(head, val, "\r\nEND\r\n");
	EXPECT("get big\r\n", want);
	/* The reply buffer's reference to the item is gone once drained. */
	cache_get_stats(cache, &cs);
	ck_assert_msg(cs.mem_used == cs.bytes, "mem_used %" PRIu64 " != bytes %" PRIu64
	              " after the reply was drained", cs.mem_used, cs.bytes);
	free(val);
	free(in);
	free(want);
}
END_TEST

START_TEST(test_key_of_250_bytes_is_accepted)
{
	char *key = repeat('k', 250), line[400], want[400];

	snprintf(line, sizeof(line), "set %s 0 0 1\r\nx\r\n", key);
	EXPECT(line, "STORED\r\n");
	snprintf(line, sizeof(line), "get %s\r\n", key);
	snprintf(want, sizeof(want), "VALUE %s 0 1\r\nx\r\nEND\r\n", key);
	EXPECT(line, want);
	free(key);
}
END_TEST

START_TEST(test_get_with_more_than_24_keys_returns_every_hit)
{
	char line[1024], want[4096], cmd[64];
	size_t lp = 0, wp = 0;
	int i;

	for (i = 0; i < 60; i++) {
		snprintf(cmd, sizeof(cmd), "set key%d 0 0 %d\r\n%d\r\n", i, i < 10 ? 1 : 2, i);
		EXPECT(cmd, "STORED\r\n");
	}
	lp += (size_t)snprintf(line + lp, sizeof(line) - lp, "get");
	for (i = 0; i < 60; i++) {
		lp += (size_t)snprintf(line + lp, sizeof(line) - lp, " key%d", i);
		wp += (size_t)snprintf(want + wp, sizeof(want) - wp, "VALUE key%d 0 %d\r\n%d\r\n",
		                       i, i < 10 ? 1 : 2, i);
	}
	snprintf(line + lp, sizeof(line) - lp, "\r\n");
	snprintf(want + wp, sizeof(want) - wp, "END\r\n");
	EXPECT(line, want);
	ck_assert_msg(tstats.get_hits == 60, "get_hits %" PRIu64 ", expected 60", tstats.get_hits);
	/* The same with gets-style spacing: a double space at the 23rd key. */
	EXPECT("get key0 key1 key2 key3 key4 key5 key6 key7 key8 key9 key10 key11 key12 key13 "
	       "key14 key15 key16 key17 key18 key19 key20 key21  key22 key23\r\n",
	       "VALUE key0 0 1\r\n0\r\nVALUE key1 0 1\r\n1\r\nVALUE key2 0 1\r\n2\r\n"
	       "VALUE key3 0 1\r\n3\r\nVALUE key4 0 1\r\n4\r\nVALUE key5 0 1\r\n5\r\n"
	       "VALUE key6 0 1\r\n6\r\nVALUE key7 0 1\r\n7\r\nVALUE key8 0 1\r\n8\r\n"
	       "VALUE key9 0 1\r\n9\r\nVALUE key10 0 2\r\n10\r\nVALUE key11 0 2\r\n11\r\n"
	       "VALUE key12 0 2\r\n12\r\nVALUE key13 0 2\r\n13\r\nVALUE key14 0 2\r\n14\r\n"
	       "VALUE key15 0 2\r\n15\r\nVALUE key16 0 2\r\n16\r\nVALUE key17 0 2\r\n17\r\n"
	       "VALUE key18 0 2\r\n18\r\nVALUE key19 0 2\r\n19\r\nVALUE key20 0 2\r\n20\r\n"
	       "VALUE key21 0 2\r\n21\r\nVALUE key22 0 2\r\n22\r\nVALUE key23 0 2\r\n23\r\nEND\r\n");
}
END_TEST

START_TEST(test_too_long_key_anywhere_in_a_long_get_sends_only_the_error)
{
	/* The code promises (process_get) that a request with a too-long key
	 * sends nothing but the error, as memcached does: that must hold for a
	 * key after the first 22 too. */
	char line[2048], *key = repeat('x', 251);
	size_t lp = 0;
	int i;

	EXPECT("set a 0 0 1\r\n1\r\n", "STORED\r\n");
	lp += (size_t)snprintf(line + lp, sizeof(line) - lp, "get");
	for (i = 0; i < 30; i++)
		lp += (size_t)snprintf(line + lp, sizeof(line) - lp, " a");
	snprintf(line + lp, sizeof(line) - lp, " %s\r\n", key);
	EXPECT(line, "CLIENT_ERROR bad command line format\r\n");
	free(key);
}
END_TEST

/******** MALFORMED INPUT ********/

START_TEST(test_unknown_command_is_error)
{
	EXPECT("bogus\r\n", "ERROR\r\n");
	EXPECT("bogus a b c\r\n", "ERROR\r\n");
	EXPECT("GETS k\r\n", "ERROR\r\n");
	EXPECT("gx k\r\n", "ERROR\r\n");
	EXPECT("getx k\r\n", "ERROR\r\n");
	EXPECT("sets k 0 0 1\r\n", "ERROR\r\n");
}
END_TEST

START_TEST(test_too_short_command_is_error)
{
	EXPECT("\r\n", "ERROR\r\n");
	EXPECT("\n", "ERROR\r\n");
	EXPECT("a\r\n", "ERROR\r\n");
	EXPECT("g k\r\n", "ERROR\r\n");
	EXPECT("   \r\n", "ERROR\r\n");
}
END_TEST

START_TEST(test_wrong_token_counts_are_error)
{
	EXPECT("get\r\n", "ERROR\r\n");
	EXPECT("gets\r\n", "ERROR\r\n");
	EXPECT("gat 10\r\n", "END\r\n");  /* memcached: no keys, just END */
	EXPECT("set k 0 0\r\n", "ERROR\r\n");
	EXPECT("set k 0 0 1 noreply extra\r\n", "ERROR\r\n");
	EXPECT("add k\r\n", "ERROR\r\n");
	EXPECT("cas k 0 0 1\r\n", "ERROR\r\n");
	EXPECT("cas k 0 0 1 2 noreply extra\r\n", "ERROR\r\n");
	EXPECT("incr k\r\n", "ERROR\r\n");
	EXPECT("decr k 1 noreply extra\r\n", "ERROR\r\n");
	EXPECT("delete\r\n", "ERROR\r\n");
	EXPECT("delete k 0 noreply extra\r\n", "ERROR\r\n");
	EXPECT("touch k\r\n", "ERROR\r\n");
	EXPECT("touch k 1 noreply extra\r\n", "ERROR\r\n");
	EXPECT("flush_all 1 noreply extra\r\n", "ERROR\r\n");
	EXPECT("verbosity\r\n", "ERROR\r\n");
	EXPECT("verbosity 1 noreply extra\r\n", "ERROR\r\n");
}
END_TEST

START_TEST(test_key_of_251_bytes_is_bad_command_line_format)
{
	static const char *const around[][2] = {
		{"set ", " 0 0 1\r\n"}, {"add ", " 0 0 1\r\n"}, {"cas ", " 0 0 1 1\r\n"},
		{"get ", "\r\n"}, {"get a ", "\r\n"}, {"gets ", "\r\n"}, {"gat 0 ", "\r\n"},
		{"delete ", "\r\n"}, {"incr ", " 1\r\n"}, {"decr ", " 1\r\n"},
		{"touch ", " 0\r\n"},
	};
	char *key = repeat('k', 251), *line;
	size_t i;

	for (i = 0; i < sizeof(around) / sizeof(around[0]); i++) {
		line = concat(around[i][0], key, around[i][1]);
		EXPECT(line, "CLIENT_ERROR bad command line format\r\n");
		free(line);
	}
	free(key);
}
END_TEST

START_TEST(test_bad_numbers_in_storage_commands)
{
	static const char *const lines[] = {
		"set k abc 0 1\r\n", "set k -1 0 1\r\n", "set k 4294967296 0 1\r\n",
		"set k 1x 0 1\r\n", "set k 0 abc 1\r\n", "set k 0 99999999999 1\r\n",
		"set k 0 1.5 1\r\n", "set k 0 0 abc\r\n", "set k 0 0 -1\r\n", "set k 0 0 1.0\r\n",
		"set k 0 0 2147483646\r\n", "set k 0 0 99999999999\r\n", "cas k 0 0 1 abc\r\n",
		"cas k 0 0 1 -1\r\n", "cas k 0 0 1 18446744073709551616\r\n",
		"append k 0 0 -5\r\n",
	};
	size_t i;

	for (i = 0; i < sizeof(lines) / sizeof(lines[0]); i++)
		EXPECT(lines[i], "CLIENT_ERROR bad command line format\r\n");
	EXPECT("get k\r\n", "END\r\n");
}
END_TEST

START_TEST(test_bad_command_line_does_not_swallow_the_value)
{
	/* As memcached: the would-be value line is read as a command. */
	EXPECT("set k 0 0 -1\r\nget k\r\n", "CLIENT_ERROR bad command line format\r\nEND\r\n");
}
END_TEST

START_TEST(test_bad_data_chunk)
{
	EXPECT("set k 0 0 3\r\nabcXY", "CLIENT_ERROR bad data chunk\r\n");
	EXPECT("get k\r\n", "END\r\n");
	EXPECT("set k 0 0 3\r\nabcde\r\n", "CLIENT_ERROR bad data chunk\r\nERROR\r\n");
	EXPECT("set k 0 0 3 noreply\r\nabcXY", "");
	EXPECT("set k 0 0 1\r\nx\n\r", "CLIENT_ERROR bad data chunk\r\n");
	EXPECT("get k\r\n", "END\r\n");
}
END_TEST

START_TEST(test_object_too_large_swallows_exactly_the_value)
{
	/* 1 MB limit: 48 + 1 + 1 + n + 2 + 8 <= 1048576 for a 1-byte key. */
	const size_t fits = 1048576 - 60;
	char head[64], *val = repeat('x', fits + 1), *in;

	/* Put commands inside the swallowed bytes: none may run. */
	memcpy(val + 100, "\r\nget k\r\ndelete k\r\n", 19);
	EXPECT("set k 0 0 1\r\nv\r\n", "STORED\r\n");
	snprintf(head, sizeof(head), "set k 0 0 %zu\r\n", fits + 1);
	in = concat(head, val, "\r\nget k\r\n");
	/* memcached drops the old value when a set fails for size. */
	EXPECT(in, "SERVER_ERROR object too large for cache\r\nEND\r\n");
	ck_assert_msg(tstats.store_too_large == 1, "store_too_large %" PRIu64, tstats.store_too_large);
	free(in);
	/* Not a set: the old value stays. */
	EXPECT("set k 0 0 1\r\nv\r\n", "STORED\r\n");
	snprintf(head, sizeof(head), "append k 0 0 %zu\r\n", fits + 1);
	in = concat(head, val, "\r\nget k\r\n");
	EXPECT(in, "SERVER_ERROR object too large for cache\r\nVALUE k 0 1\r\nv\r\nEND\r\n");
	free(in);
	/* noreply: silent, still swallowed. */
	snprintf(head, sizeof(head), "set k 0 0 %zu noreply\r\n", fits + 1);
	in = concat(head, val, "\r\nget k\r\n");
	EXPECT(in, "END\r\n");
	free(in);
	/* The largest value that fits is stored. */
	val[fits] = '\0';
	snprintf(head, sizeof(head), "set k 0 0 %zu\r\n", fits);
	in = concat(head, val, "\r\n");
	EXPECT(in, "STORED\r\n");
	free(in);
	free(val);
}
END_TEST

START_TEST(test_swallow_continues_across_calls)
{
	char head[64], *val = repeat('y', 2000000);
	size_t used, gotlen;
	char *got;

	snprintf(head, sizeof(head), "set k 0 0 %d\r\n", 2000000);
	/* The line and part of the value. */
	used = feed(head, strlen(head));
	ck_assert_msg(used == strlen(head) && last_need == 0, "consumed %zu need %zu", used, last_need);
	got = take_output(&gotlen);
	ck_assert_msg(strcmp(got, "SERVER_ERROR object too large for cache\r\n") == 0, "got '%s'",
	              esc(got, gotlen));
	free(got);
	used = feed(val, 1000000);
	ck_assert_msg(used == 1000000, "swallowed %zu of 1000000", used);
	used = feed(val, 1000000);
	ck_assert_msg(used == 1000000, "swallowed %zu of 1000000", used);
	/* The value's \r\n and the next command in one piece. */
	EXPECT("\r\nget k\r\n", "END\r\n");
	free(val);
}
END_TEST

START_TEST(test_out_of_memory_storing_object_ignores_noreply)
{
	struct cache *small = new_cache(1024, 1024 * 1024);
	char *val = repeat('m', 2000), *in;

	env.cache = small;
	env.store = store_create(small);
	in = concat("set k 0 0 2000 noreply\r\n", val, "\r\n");
	EXPECT(in, "SERVER_ERROR out of memory storing object\r\n");
	free(in);
	in = concat("set k 0 0 2000\r\n", val, "\r\n");
	EXPECT(in, "SERVER_ERROR out of memory storing object\r\n");
	free(in);
	ck_assert_msg(tstats.store_no_memory == 2, "store_no_memory %" PRIu64, tstats.store_no_memory);
	store_destroy(env.store);
	env.cache = cache;
	env.store = store;
	cache_destroy(small);
	free(val);
}
END_TEST

START_TEST(test_noreply_silences_every_storage_command)
{
	char cmd[128];

	EXPECT("set k 1 0 1 noreply\r\na\r\n", "");
	EXPECT("add k 0 0 1 noreply\r\nb\r\n", "");
	EXPECT("add n 0 0 1 noreply\r\n5\r\n", "");
	EXPECT("replace k 2 0 1 noreply\r\nc\r\n", "");
	EXPECT("replace none 0 0 1 noreply\r\nc\r\n", "");
	EXPECT("append k 0 0 1 noreply\r\nd\r\n", "");
	EXPECT("prepend k 0 0 1 noreply\r\ne\r\n", "");
	EXPECT("append none 0 0 1 noreply\r\nd\r\n", "");
	EXPECT("get k n none\r\n", "VALUE k 2 3\r\necd\r\nVALUE n 0 1\r\n5\r\nEND\r\n");
	snprintf(cmd, sizeof(cmd), "cas k 0 0 1 %" PRIu64 " noreply\r\nf\r\n", cas_of("k"));
	EXPECT(cmd, "");
	EXPECT(cmd, "");  /* EXISTS, silenced */
	EXPECT("cas none 0 0 1 1 noreply\r\nf\r\n", "");
	EXPECT("incr n 2 noreply\r\n", "");
	EXPECT("decr n 1 noreply\r\n", "");
	EXPECT("incr none 1 noreply\r\n", "");
	EXPECT("touch k 100 noreply\r\n", "");
	EXPECT("touch none 100 noreply\r\n", "");
	EXPECT("get k n\r\n", "VALUE k 0 1\r\nf\r\nVALUE n 0 1\r\n6\r\nEND\r\n");
	EXPECT("delete k noreply\r\n", "");
	EXPECT("delete k noreply\r\n", "");
	EXPECT("delete n 0 noreply\r\n", "");
	EXPECT("get k n\r\n", "END\r\n");
	EXPECT("verbosity 0 noreply\r\n", "");
	EXPECT("flush_all noreply\r\n", "");
	EXPECT("flush_all 0 noreply\r\n", "");
}
END_TEST

START_TEST(test_noreply_silences_errors)
{
	EXPECT("set k abc 0 1 noreply\r\n", "");
	EXPECT("set k 0 0 -1 noreply\r\n", "");
	EXPECT("cas k 0 0 1 x noreply\r\n", "");
	EXPECT("set k 0 0 1 noreply\r\na\r\n", "");
	EXPECT("incr k 1 noreply\r\n", "");        /* non-numeric */
	EXPECT("incr k abc noreply\r\n", "");      /* invalid delta */
	EXPECT("delete k 5 noreply\r\n", "");      /* bad hold */
	EXPECT("touch k abc noreply\r\n", "");
	EXPECT("flush_all abc noreply\r\n", "");
	EXPECT("verbosity abc noreply\r\n", "");
	EXPECT("get k\r\n", "VALUE k 0 1\r\na\r\nEND\r\n");
}
END_TEST

START_TEST(test_noreply_is_only_recognised_as_the_last_token)
{
	EXPECT("set k 0 0 1 junk\r\nx\r\n", "STORED\r\n");
	EXPECT("set k 0 0 1 NOREPLY\r\nx\r\n", "STORED\r\n");
}
END_TEST

/******** INCR / DECR ********/

START_TEST(test_incr_and_decr_replies)
{
	EXPECT("incr n 1\r\n", "NOT_FOUND\r\n");
	EXPECT("decr n 1\r\n", "NOT_FOUND\r\n");
	EXPECT("set n 0 0 2\r\n10\r\n", "STORED\r\n");
	EXPECT("incr n 5\r\n", "15\r\n");
	EXPECT("decr n 100\r\n", "0\r\n");
	EXPECT("incr n 18446744073709551615\r\n", "18446744073709551615\r\n");
	EXPECT("incr n 1\r\n", "0\r\n");
	ck_assert_msg(tstats.incr_hits == 3 && tstats.incr_misses == 1 && tstats.decr_hits == 1 &&
	              tstats.decr_misses == 1, "incr hits %" PRIu64 " misses %" PRIu64
	              " decr hits %" PRIu64 " misses %" PRIu64, tstats.incr_hits,
	              tstats.incr_misses, tstats.decr_hits, tstats.decr_misses);
}
END_TEST

START_TEST(test_decr_to_shorter_number_pads_with_spaces)
{
	EXPECT("set n 0 0 3\r\n100\r\n", "STORED\r\n");
	EXPECT("decr n 1\r\n", "99\r\n");
	EXPECT("get n\r\n", "VALUE n 0 3\r\n99 \r\nEND\r\n");
	EXPECT("incr n 1\r\n", "100\r\n");
	EXPECT("get n\r\n", "VALUE n 0 3\r\n100\r\nEND\r\n");
	EXPECT("set m 5 0 2\r\n99\r\n", "STORED\r\n");
	EXPECT("incr m 1\r\n", "100\r\n");
	EXPECT("get m\r\n", "VALUE m 5 3\r\n100\r\nEND\r\n");
}
END_TEST

START_TEST(test_incr_on_non_numeric_value)
{
	EXPECT("set k 0 0 3\r\nabc\r\n", "STORED\r\n");
	EXPECT("incr k 1\r\n", "CLIENT_ERROR cannot increment or decrement non-numeric value\r\n");
	EXPECT("decr k 1\r\n", "CLIENT_ERROR cannot increment or decrement non-numeric value\r\n");
	EXPECT("set e 0 0 0\r\n\r\n", "STORED\r\n");
	EXPECT("incr e 1\r\n", "CLIENT_ERROR cannot increment or decrement non-numeric value\r\n");
}
END_TEST

START_TEST(test_incr_with_invalid_delta)
{
	EXPECT("set n 0 0 1\r\n1\r\n", "STORED\r\n");
	EXPECT("incr n abc\r\n", "CLIENT_ERROR invalid numeric delta argument\r\n");
	EXPECT("incr n -1\r\n", "CLIENT_ERROR invalid numeric delta argument\r\n");
	EXPECT("decr n 1x\r\n", "CLIENT_ERROR invalid numeric delta argument\r\n");
	EXPECT("incr n 18446744073709551616\r\n", "CLIENT_ERROR invalid numeric delta argument\r\n");
	EXPECT("incr missing abc\r\n", "CLIENT_ERROR invalid numeric delta argument\r\n");
	EXPECT("get n\r\n", "VALUE n 0 1\r\n1\r\nEND\r\n");
}
END_TEST

/******** DELETE / TOUCH / GAT ********/

START_TEST(test_delete_replies)
{
	EXPECT("delete k\r\n", "NOT_FOUND\r\n");
	EXPECT("set k 0 0 1\r\nx\r\n", "STORED\r\n");
	EXPECT("delete k\r\n", "DELETED\r\n");
	EXPECT("set k 0 0 1\r\nx\r\n", "STORED\r\n");
	EXPECT("delete k 0\r\n", "DELETED\r\n");
	EXPECT("delete k 0\r\n", "NOT_FOUND\r\n");
	ck_assert_msg(tstats.delete_hits == 2 && tstats.delete_misses == 2,
	              "delete_hits %" PRIu64 " delete_misses %" PRIu64, tstats.delete_hits,
	              tstats.delete_misses);
}
END_TEST

START_TEST(test_delete_with_junk_shows_usage)
{
	static const char usage[] =
	    "CLIENT_ERROR bad command line format.  Usage: delete <key> [noreply]\r\n";

	EXPECT("set k 0 0 1\r\nx\r\n", "STORED\r\n");
	EXPECT("delete k 1\r\n", usage);
	EXPECT("delete k junk\r\n", usage);
	EXPECT("delete k 00\r\n", usage);
	EXPECT("delete k 0 junk\r\n", usage);
	EXPECT("delete k 1 noreply\r\n", "");
	EXPECT("get k\r\n", "VALUE k 0 1\r\nx\r\nEND\r\n");
}
END_TEST

START_TEST(test_touch_replies_and_sets_ttl)
{
	uint32_t now = cache_now();

	EXPECT("touch k 10\r\n", "NOT_FOUND\r\n");
	EXPECT("set k 0 0 1\r\nx\r\n", "STORED\r\n");
	EXPECT("touch k abc\r\n", "CLIENT_ERROR invalid exptime argument\r\n");
	EXPECT("touch k 10\r\n", "TOUCHED\r\n");
	EXPECT("get k\r\n", "VALUE k 0 1\r\nx\r\nEND\r\n");
	cache_set_time_offset(11);  /* now + 10 has passed, whatever second we are in */
	ck_assert_msg(cache_now() >= now + 10, "offset did not move time");
	EXPECT("get k\r\n", "END\r\n");
	ck_assert_msg(tstats.touch_hits == 1 && tstats.touch_misses == 1 && tstats.cmd_touch == 2,
	              "touch hits %" PRIu64 " misses %" PRIu64 " cmd %" PRIu64, tstats.touch_hits,
	              tstats.touch_misses, tstats.cmd_touch);
}
END_TEST

START_TEST(test_gat_and_gats_return_values_and_set_ttl)
{
	char want[128];

	EXPECT("gat 100 k\r\n", "END\r\n");
	EXPECT("set k 3 0 2\r\nhi\r\nset j 0 0 1\r\nj\r\n", "STORED\r\nSTORED\r\n");
	EXPECT("gat 100 k nope j\r\n", "VALUE k 3 2\r\nhi\r\nVALUE j 0 1\r\nj\r\nEND\r\n");
	snprintf(want, sizeof(want), "VALUE k 3 2 %" PRIu64 "\r\nhi\r\nEND\r\n", cas_of("k"));
	EXPECT("gats 0 k\r\n", want);
	EXPECT("gat abc k\r\n", "CLIENT_ERROR invalid exptime argument\r\n");
	/* A negative exptime returns the value, then it is gone. */
	EXPECT("gat -1 j\r\n", "VALUE j 0 1\r\nj\r\nEND\r\n");
	EXPECT("get j\r\n", "END\r\n");
	EXPECT("gat 10 k\r\n", "VALUE k 3 2\r\nhi\r\nEND\r\n");
	cache_set_time_offset(11);
	EXPECT("get k\r\n", "END\r\n");
}
END_TEST

START_TEST(test_exptime_forms)
{
	EXPECT("set neg 0 -1 1\r\nx\r\n", "STORED\r\n");
	EXPECT("get neg\r\n", "END\r\n");
	/* Beyond 30 days it is a unix time: 1970 is long past. */
	EXPECT("set abs 0 2592001 1\r\nx\r\n", "STORED\r\n");
	EXPECT("get abs\r\n", "END\r\n");
	EXPECT("set rel 0 2592000 1\r\nx\r\n", "STORED\r\n");
	EXPECT("get rel\r\n", "VALUE rel 0 1\r\nx\r\nEND\r\n");
	EXPECT("set ttl 0 5 1\r\nx\r\n", "STORED\r\n");
	cache_set_time_offset(6);
	EXPECT("get ttl rel\r\n", "VALUE rel 0 1\r\nx\r\nEND\r\n");
}
END_TEST

/******** FLUSH_ALL ********/

START_TEST(test_flush_all_replies_and_flushes)
{
	EXPECT("set a 0 0 1\r\nx\r\nset b 0 100 1\r\ny\r\n", "STORED\r\nSTORED\r\n");
	EXPECT("flush_all\r\n", "OK\r\n");
	EXPECT("get a b\r\n", "END\r\n");
	EXPECT("set a 0 0 1\r\nz\r\n", "STORED\r\n");
	EXPECT("get a\r\n", "VALUE a 0 1\r\nz\r\nEND\r\n");
	EXPECT("flush_all 0\r\n", "OK\r\n");
	EXPECT("get a\r\n", "END\r\n");
	EXPECT("set a 0 0 1\r\nz\r\n", "STORED\r\n");
	EXPECT("flush_all -1\r\n", "OK\r\n");
	EXPECT("get a\r\n", "END\r\n");
	EXPECT("flush_all abc\r\n", "CLIENT_ERROR invalid exptime argument\r\n");
	ck_assert_msg(tstats.cmd_flush == 4, "cmd_flush %" PRIu64, tstats.cmd_flush);
}
END_TEST

START_TEST(test_flush_all_with_delay)
{
	EXPECT("set a 0 0 1\r\nx\r\n", "STORED\r\n");
	EXPECT("flush_all 10\r\n", "OK\r\n");
	EXPECT("get a\r\n", "VALUE a 0 1\r\nx\r\nEND\r\n");
	cache_set_time_offset(11);
	EXPECT("get a\r\n", "END\r\n");
	EXPECT("set b 0 0 1\r\ny\r\n", "STORED\r\n");
	EXPECT("flush_all 10 noreply\r\n", "");
	EXPECT("get b\r\n", "VALUE b 0 1\r\ny\r\nEND\r\n");
	cache_set_time_offset(22);
	EXPECT("get b\r\n", "END\r\n");
}
END_TEST

START_TEST(test_flush_all_when_disabled_is_refused)
{
	settings.flush_enabled = false;
	EXPECT("set a 0 0 1\r\nx\r\n", "STORED\r\n");
	EXPECT("flush_all\r\n", "CLIENT_ERROR flush_all not allowed\r\n");
	EXPECT("flush_all 0\r\n", "CLIENT_ERROR flush_all not allowed\r\n");
	EXPECT("flush_all noreply\r\n", "");
	EXPECT("get a\r\n", "VALUE a 0 1\r\nx\r\nEND\r\n");
}
END_TEST

/******** MISC COMMANDS ********/

START_TEST(test_verbosity_sets_the_log_level)
{
	EXPECT("verbosity 1\r\n", "OK\r\n");
	ck_assert_msg(log_get_level() == 1, "level %d after verbosity 1", log_get_level());
	EXPECT("verbosity 5\r\n", "OK\r\n");
	ck_assert_msg(log_get_level() == 2, "level %d after verbosity 5, expected 2", log_get_level());
	EXPECT("verbosity 0 noreply\r\n", "");
	ck_assert_msg(log_get_level() == 0, "level %d after verbosity 0", log_get_level());
	EXPECT("verbosity abc\r\n", "CLIENT_ERROR bad command line format\r\n");
	EXPECT("verbosity -1\r\n", "CLIENT_ERROR bad command line format\r\n");
	ck_assert_msg(log_get_level() == 0, "level %d after bad verbosity", log_get_level());
}
END_TEST

START_TEST(test_version_reply)
{
	size_t used, len;
	char *got;

	used = feed("version\r\n", 9);
	ck_assert_msg(used == 9, "consumed %zu", used);
	got = take_output(&len);
	ck_assert_msg(len > 10 && strncmp(got, "VERSION 1.6.", 12) == 0 &&
	              strcmp(got + len - 2, "\r\n") == 0 && memchr(got, '\n', len - 1) == NULL,
	              "version reply '%s'", esc(got, len));
	free(got);
}
END_TEST

START_TEST(test_mn_and_shutdown)
{
	EXPECT("mn\r\n", "MN\r\n");
	EXPECT("shutdown\r\n", "ERROR: shutdown not enabled\r\n");
}
END_TEST

/* The meta protocol's framing and state, without a socket (the
 * byte-for-byte cases are in tests/integration/test_meta.py). */
START_TEST(test_meta_ms_waits_for_its_data_block_like_set)
{
	size_t used;

	used = feed("ms k 10 T0\r\n", 12);
	ck_assert_msg(used == 0 && last_need == 12 + 12, "line only: consumed %zu need %zu",
	              used, last_need);
	used = feed("ms k 10 T0\r\n0123456789\r", 23);
	ck_assert_msg(used == 0 && last_need == 24, "all but one byte: consumed %zu need %zu",
	              used, last_need);
	EXPECT("ms k 10 T0 c\r\n0123456789\r\n", "HD c1\r\n");
	EXPECT("mg k v s\r\n", "VA 10 s10\r\n0123456789\r\n");
	/* A refused line swallows the block, even across calls. */
	EXPECT("ms k 3 Y\r\n", "CLIENT_ERROR invalid flag\r\n");
	EXPECT("abc\r\nmn\r\n", "MN\r\n");
}
END_TEST

START_TEST(test_meta_invalidate_then_one_winner)
{
	EXPECT("ms k 1\r\nx\r\n", "HD\r\n");
	EXPECT("md k I q\r\nmn\r\n", "MN\r\n");
	EXPECT("mg k v\r\n", "VA 1 X W\r\nx\r\n");
	EXPECT("mg k\r\n", "HD Z X\r\n");
	EXPECT("ma k\r\n", "CLIENT_ERROR cannot increment or decrement non-numeric value\r\n");
	EXPECT("ms k 1\r\ny\r\n", "HD\r\n");
	EXPECT("mg k v\r\n", "VA 1\r\ny\r\n");
	EXPECT("mg n N30 s\r\nmg n N30 s\r\n", "HD s0 W\r\nHD s0 Z\r\n");
}
END_TEST

/* A win claimed is a logged change: while writes are paused none is
 * handed out (Z), and the win is still there to take after. */
START_TEST(test_meta_no_win_while_writes_are_paused)
{
	EXPECT("ms k 1\r\nx\r\n", "HD\r\n");
	EXPECT("md k I\r\n", "HD\r\n");
	EXPECT("pause_writes 60000\r\n", "OK\r\n");
	EXPECT("mg k\r\n", "HD Z X\r\n");
	EXPECT("resume_writes\r\n", "OK\r\n");
	EXPECT("mg k\r\n", "HD X W\r\n");
	EXPECT("mg k\r\n", "HD Z X\r\n");
}
END_TEST

START_TEST(test_meta_base64_keys)
{
	EXPECT("ms AAEC/w== 2 b k\r\nbb\r\n", "HD kAAEC/w== b\r\n");
	EXPECT("mg AAEC/w== b v k\r\n", "VA 2 kAAEC/w== b\r\nbb\r\n");
	EXPECT("mg YWI=YWI= b k\r\n", "EN kYWI= b\r\n");
	EXPECT("mg YQ b\r\n", "CLIENT_ERROR error decoding key\r\n");
	EXPECT("md YQ b\r\n", "CLIENT_ERROR invalid or duplicate flag\r\n");
	EXPECT("me YQ b\r\n", "CLIENT_ERROR bad command line format\r\n");
}
END_TEST

START_TEST(test_stats_replies)
{
	size_t used, len;
	char *got;

	EXPECT("stats items\r\n", "END\r\n");
	EXPECT("stats slabs\r\n", "STAT active_slabs 0\r\nSTAT total_malloced 0\r\nEND\r\n");
	EXPECT("set k 0 0 1\r\nx\r\n", "STORED\r\n");
	used = feed("stats\r\n", 7);
	ck_assert_msg(used == 7, "consumed %zu", used);
	got = take_output(&len);
	ck_assert_msg(strncmp(got, "STAT pid ", 9) == 0, "stats starts '%s'", esc(got, 40));
	ck_assert_msg(len > 5 && strcmp(got + len - 5, "END\r\n") == 0, "stats ends '%s'",
	              esc(got + (len > 20 ? len - 20 : 0), 20));
	ck_assert_msg(strstr(got, "\r\nSTAT curr_items 1\r\n") != NULL, "no curr_items 1 in '%s'",
	              esc(got, len));
	ck_assert_msg(strstr(got, "\r\nSTAT limit_maxbytes 67108864\r\n") != NULL,
	              "no limit_maxbytes in '%s'", esc(got, len));
	ck_assert_msg(strstr(got, "\r\nSTAT threads 4\r\n") != NULL, "no threads 4 in '%s'",
	              esc(got, len));
	free(got);
	used = feed("stats settings\r\n", 16);
	got = take_output(&len);
	ck_assert_msg(strstr(got, "STAT maxbytes 67108864\r\n") != NULL &&
	              strstr(got, "STAT cas_enabled yes\r\n") != NULL &&
	              strstr(got, "STAT item_size_max 1048576\r\n") != NULL &&
	              strcmp(got + len - 5, "END\r\n") == 0, "stats settings '%s'", esc(got, len));
	free(got);
	used = feed("stats items\r\n", 13);
	got = take_output(&len);
	ck_assert_msg(strncmp(got, "STAT items:1:number 1\r\n", 23) == 0 &&
	              strcmp(got + len - 5, "END\r\n") == 0, "stats items '%s'", esc(got, len));
	free(got);
	EXPECT("stats reset\r\n", "RESET\r\n");
	EXPECT("stats bogus\r\n", "ERROR\r\n");
}
END_TEST

START_TEST(test_get_counters_follow_hits_and_misses)
{
	EXPECT("set a 0 0 1\r\nx\r\n", "STORED\r\n");
	EXPECT("get a b\r\n", "VALUE a 0 1\r\nx\r\nEND\r\n");
	EXPECT("gets a\r\n", "VALUE a 0 1 1\r\nx\r\nEND\r\n");
	ck_assert_msg(tstats.cmd_get == 3 && tstats.get_hits == 2 && tstats.get_misses == 1 &&
	              tstats.cmd_set == 1, "cmd_get %" PRIu64 " hits %" PRIu64 " misses %" PRIu64
	              " cmd_set %" PRIu64, tstats.cmd_get, tstats.get_hits, tstats.get_misses,
	              tstats.cmd_set);
}
END_TEST

/******** CONNECTION CONTROL ********/

START_TEST(test_quit_closes_and_stops_processing)
{
	static const char in[] = "get a\r\nquit\r\nset b 0 0 1\r\ny\r\n";
	size_t used = feed(in, strlen(in)), len;
	char *got = take_output(&len);

	ck_assert_msg(ps.close, "quit did not set close");
	ck_assert_msg(used == 13, "consumed %zu, expected 13 (through quit)", used);
	ck_assert_msg(strcmp(got, "END\r\n") == 0, "replied '%s'", esc(got, len));
	free(got);
	ck_assert_msg(cache_get(cache, "b", 1) == NULL, "command after quit ran");
}
END_TEST

START_TEST(test_http_request_closes)
{
	static const char in[] = "GET / HTTP/1.1\r\nHost: localhost\r\n\r\n";
	size_t used = feed(in, strlen(in)), len;
	char *got = take_output(&len);

	ck_assert_msg(ps.close, "HTTP request line did not close");
	ck_assert_msg(len == 0, "replied '%s' to HTTP", esc(got, len));
	ck_assert_msg(used == 16, "consumed %zu, expected the 16-byte request line", used);
	free(got);
}
END_TEST

static void
expect_partial_line(const char *prefix, size_t total, bool closes)
{
	char *line = repeat('a', total);
	size_t used, len;
	char *got;

	memcpy(line, prefix, strlen(prefix));
	used = feed(line, total);
	got = take_output(&len);
	ck_assert_msg(ps.close == closes, "%zu bytes starting '%s' without newline: close=%d, "
	              "expected %d", total, esc(prefix, strlen(prefix)), ps.close, closes);
	ck_assert_msg(used == 0 && len == 0, "%zu-byte partial line: consumed %zu, replied '%s'",
	              total, used, esc(got, len));
	free(got);
	free(line);
	ps.close = false;
}

START_TEST(test_long_line_without_newline_closes_unless_get)
{
	expect_partial_line("set ", 2048, false);
	expect_partial_line("set ", 2049, true);
	expect_partial_line("", 3000, true);
	expect_partial_line("get ", 3000, false);
	expect_partial_line("gets ", 3000, false);
	expect_partial_line("gat ", 3000, true);
	expect_partial_line("get", 3000, true);
}
END_TEST

START_TEST(test_long_get_line_may_have_up_to_100_leading_spaces)
{
	char prefix[128];

	memset(prefix, ' ', 100);
	memcpy(prefix + 100, "get ", 5);
	expect_partial_line(prefix, 3000, false);
	memset(prefix, ' ', 101);
	memcpy(prefix + 101, "get ", 5);
	expect_partial_line(prefix, 3000, true);
}
END_TEST

START_TEST(test_long_get_line_arriving_in_pieces_is_served)
{
	char *line = malloc(8192), *want = malloc(8192);
	size_t lp = 0, wp = 0, used, total;
	int i;

	EXPECT("set key0001 0 0 1\r\nx\r\n", "STORED\r\n");
	lp += (size_t)sprintf(line, "get");
	for (i = 0; i < 500; i++) {
		lp += (size_t)sprintf(line + lp, " key%04d", i % 3);
		if (i % 3 == 1)
			wp += (size_t)sprintf(want + wp, "VALUE key0001 0 1\r\nx\r\n");
	}
	lp += (size_t)sprintf(line + lp, "\r\n");
	wp += (size_t)sprintf(want + wp, "END\r\n");
	total = lp;
	used = feed(line, 3000);
	ck_assert_msg(used == 0 && !ps.close && last_need == 0,
	              "3000 bytes of a long get: consumed %zu close %d need %zu", used, ps.close,
	              last_need);
	expect_bytes(__LINE__, line, total, want, wp);
	free(line);
	free(want);
}
END_TEST

/******** FRAMING ********/

START_TEST(test_newline_without_carriage_return_is_accepted)
{
	EXPECT("set k 0 0 1\nx\r\nget k\n", "STORED\r\nVALUE k 0 1\r\nx\r\nEND\r\n");
	EXPECT("delete k\n", "DELETED\r\n");
}
END_TEST

START_TEST(test_partial_line_waits_for_more)
{
	size_t used = feed("get k", 5);

	ck_assert_msg(used == 0 && last_need == 0 && !ps.close,
	              "partial line: consumed %zu need %zu close %d", used, last_need, ps.close);
	used = feed("get k\r", 6);
	ck_assert_msg(used == 0 && last_need == 0, "line ending in \\r: consumed %zu need %zu", used,
	              last_need);
	ck_assert_msg(evbuffer_get_length(out) == 0, "replied to a partial line");
}
END_TEST

START_TEST(test_need_is_the_size_of_the_pending_request)
{
	static const char line[] = "set k 0 0 10\r\n";      /* 14 bytes */
	static const char pipe[] = "get a\r\nset k 0 0 10\r\nabc";
	size_t used;

	used = feed(line, strlen(line));
	ck_assert_msg(used == 0 && last_need == 14 + 12, "line only: consumed %zu need %zu, "
	              "expected 0 and 26", used, last_need);
	used = feed("set k 0 0 10\r\n0123456789\r", 25);
	ck_assert_msg(used == 0 && last_need == 26, "all but one byte: consumed %zu need %zu",
	              used, last_need);
	used = feed(pipe, strlen(pipe));
	ck_assert_msg(used == 7 && last_need == 26, "after a complete get: consumed %zu need %zu, "
	              "expected 7 and 26", used, last_need);
	ck_assert_msg(evbuffer_get_length(out) == 5, "the get was not answered exactly once");
	evbuffer_drain(out, evbuffer_get_length(out));
	used = feed("set k 0 0 100000\r\nabc", 21);
	ck_assert_msg(used == 0 && last_need == 18 + 100002, "large value: need %zu, expected %d",
	              last_need, 18 + 100002);
	EXPECT("set k 0 0 10\r\n0123456789\r\n", "STORED\r\n");
}
END_TEST

/* lru_crawler metadump lists every item, so it is streamed: with a small
 * output limit each call adds about one slice, nothing after it is read
 * until END has gone out, and the slices add up to every item once. */
START_TEST(test_metadump_is_streamed_under_the_output_limit)
{
	enum { ITEMS = 3000, LIMIT = 4096 };
	static const char req[] = "lru_crawler metadump all\r\nmn\r\n";
	char line[64], *got, *p;
	size_t used, len, calls = 0, lines = 0, most = 0, total = 0;
	char *seen = calloc(ITEMS, 1);
	int i;

	for (i = 0; i < ITEMS; i++) {
		snprintf(line, sizeof(line), "set key%d 0 0 1\r\nv\r\n", i);
		EXPECT(line, "STORED\r\n");
	}
	used = feed_limit(req, sizeof(req) - 1, LIMIT);
	ck_assert_msg(used == strlen("lru_crawler metadump all\r\n"),
	              "consumed %zu: the request after a metadump waits for its END", used);
	got = malloc(1);
	got[0] = '\0';
	for (;;) {
		size_t n = evbuffer_get_length(out);
		char *chunk;

		if (n > most)
			most = n;
		chunk = take_output(&len);
		got = realloc(got, total + len + 1);
		memcpy(got + total, chunk, len + 1);
		total += len;
		free(chunk);
		if (!ps.dump.active)
			break;
		ck_assert_msg(++calls < ITEMS, "the dump does not end");
		ck_assert_msg(feed_limit("mn\r\n", 4, LIMIT) == 0, "read a request mid-dump");
	}
	ck_assert_msg(calls > 3, "%zu calls: the dump was not sent in slices", calls);
	ck_assert_msg(most <= LIMIT + 512 * 120, "one call left %zu bytes in the output", most);
	ck_assert_msg(total > 5 && strcmp(got + total - 5, "END\r\n") == 0, "no END at the end");
	for (p = got; strncmp(p, "key=key", 7) == 0; p = strchr(p, '\n') + 1) {
		i = atoi(p + 7);
		ck_assert_msg(i >= 0 && i < ITEMS && !seen[i], "key%d listed twice or unknown", i);
		seen[i] = 1;
		lines++;
	}
	ck_assert_msg(lines == ITEMS, "%zu of %d items listed", lines, ITEMS);
	free(got);
	free(seen);
	/* The pipelined request is read once the dump is over. */
	EXPECT("mn\r\n", "MN\r\n");
}
END_TEST

START_TEST(test_out_limit_pauses_and_resumes)
{
	enum { GETS = 50 };
	char *val = repeat('p', 100), *in, *one, *want;
	size_t used, inlen, off = 0, first_len, calls = 0, reply_len, gotlen;
	char *got;
	int i;

	in = concat("set a 0 0 100\r\n", val, "\r\n");
	EXPECT(in, "STORED\r\n");
	free(in);
	one = concat("VALUE a 0 100\r\n", val, "\r\nEND\r\n");
	reply_len = strlen(one);
	inlen = (size_t)GETS * 7;
	in = malloc(inlen + 1);
	want = malloc(reply_len * GETS + 1);
	for (i = 0; i < GETS; i++) {
		memcpy(in + (size_t)i * 7, "get a\r\n", 7);
		memcpy(want + (size_t)i * reply_len, one, reply_len);
	}
	used = feed_limit(in, inlen, 500);
	first_len = evbuffer_get_length(out);
	ck_assert_msg(used > 0 && used < inlen, "with out_limit 500 consumed %zu of %zu", used, inlen);
	ck_assert_msg(first_len > 500 && first_len <= 500 + reply_len,
	              "stopped with %zu bytes of replies, expected just over 500", first_len);
	ck_assert_msg(used == (first_len / reply_len) * 7,
	              "consumed %zu bytes for %zu replies", used, first_len / reply_len);
	/* Until the output drains, nothing more is consumed. */
	ck_assert_msg(feed_limit(in + used, inlen - used, 500) == 0,
	              "consumed more while the output is over the limit");
	/* Drain to a collector and resume. */
	got = malloc(reply_len * GETS + 1);
	gotlen = 0;
	off = used;
	while (off < inlen && calls++ < 1000) {
		size_t n = evbuffer_get_length(out);

		evbuffer_remove(out, got + gotlen, n);
		gotlen += n;
		off += feed_limit(in + off, inlen - off, 500);
	}
	gotlen += (size_t)evbuffer_remove(out, got + gotlen, evbuffer_get_length(out));
	ck_assert_msg(off == inlen, "consumed %zu of %zu after %zu calls", off, inlen, calls);
	ck_assert_msg(gotlen == reply_len * GETS && memcmp(got, want, gotlen) == 0,
	              "resumed replies differ: %zu bytes, expected %zu", gotlen, reply_len * GETS);
	free(got);
	free(want);
	free(in);
	free(one);
	free(val);
}
END_TEST

/* Append string s at dst[at]; returns its length. */
static size_t
put(char *dst, size_t at, const char *s)
{
	size_t n = strlen(s);

	memcpy(dst + at, s, n);
	return n;
}

/* A pipelined stream touching every framing case.  Its replies, one-shot. */
static char *
build_stream(size_t *len, char **want, size_t *wantlen)
{
	static const char *const parts[][2] = {
		{"set a 1 0 3\r\nxyz\r\n", "STORED\r\n"},
		{"get a\n", "VALUE a 1 3\r\nxyz\r\nEND\r\n"},
		{"set b 0 0 6\r\nq\r\nw\r\n\r\n", "STORED\r\n"},
		{"gets a b\r\n", "VALUE a 1 3 1\r\nxyz\r\nVALUE b 0 6 2\r\nq\r\nw\r\n\r\nEND\r\n"},
		{"append a 0 0 2\r\n!!\r\n", "STORED\r\n"},
		{"@BIG@", "SERVER_ERROR object too large for cache\r\n"},
		{"get a\r\n", "VALUE a 1 5\r\nxyz!!\r\nEND\r\n"},
		{"incr n 1\r\n", "NOT_FOUND\r\n"},
		{"set n 0 0 2 noreply\r\n10\r\n", ""},
		{"incr n 5\r\n", "15\r\n"},
		{"decr n 100\r\n", "0\r\n"},
		{"set c 0 0 3\r\nabcXY", "CLIENT_ERROR bad data chunk\r\n"},
		{"delete a\r\n", "DELETED\r\n"},
		{"delete a noreply\r\n", ""},
		{"delete a 0\r\n", "NOT_FOUND\r\n"},
		{"delete b 5\r\n", "CLIENT_ERROR bad command line format.  Usage: delete <key> [noreply]\r\n"},
		{"touch b 100\r\n", "TOUCHED\r\n"},
		{"gat 0 b\r\n", "VALUE b 0 6\r\nq\r\nw\r\n\r\nEND\r\n"},
		{"set k 0 0 -1\r\n", "CLIENT_ERROR bad command line format\r\n"},
		{"bogus\r\n", "ERROR\r\n"},
		{"\r\n", "ERROR\r\n"},
		{"get b b b b b b b b b b b b b b b b b b b b b b b b b b b b b b\r\n", "@30B@"},
		{"set e 0 0 0\r\n\r\n", "STORED\r\n"},
		{"flush_all\r\n", "OK\r\n"},
		{"get b e\r\n", "END\r\n"},
		{"set z 0 0 1 noreply\r\n1\r\n", ""},
		{"get z\r\n", "VALUE z 0 1\r\n1\r\nEND\r\n"},
	};
	static const char big_value_start[] = "get a\r\ndelete a\r\n";
	size_t ip = 0, wp = 0, i;
	char *in = malloc(16384), *w = malloc(16384);
	int j;

	if (in == NULL || w == NULL)
		abort();
	for (i = 0; i < sizeof(parts) / sizeof(parts[0]); i++) {
		if (strcmp(parts[i][0], "@BIG@") == 0) {
			/* 1100 bytes > -I 1024: refused and swallowed, commands and all. */
			ip += put(in, ip, "set big 0 0 1100\r\n");
			memset(in + ip, 'B', 1100);
			memcpy(in + ip, big_value_start, strlen(big_value_start));
			memcpy(in + ip + 500, "\r\nquit\r\n", 8);
			ip += 1100;
			ip += put(in, ip, "\r\n");
		} else {
			ip += put(in, ip, parts[i][0]);
		}
		if (strcmp(parts[i][1], "@30B@") == 0) {
			for (j = 0; j < 30; j++)
				wp += put(w, wp, "VALUE b 0 6\r\nq\r\nw\r\n\r\n");
			wp += put(w, wp, "END\r\n");
		} else {
			wp += put(w, wp, parts[i][1]);
		}
	}
	*len = ip;
	*want = w;
	*wantlen = wp;
	return in;
}

/* Run `stream` through a fresh cache and connection, delivering the bytes in
 * chunks: first `first` bytes, then `step` at a time.  Like conn.c, keep the
 * unconsumed bytes and do not call again while fewer than *need are held.
 * Returns the concatenated replies. */
static char *
run_chunked(const char *stream, size_t len, size_t first, size_t step, size_t *outlen)
{
	struct cache *c = new_cache(64 * 1024 * 1024, 1024);
	struct proto_env e = env;
	struct thread_stats ts;
	struct proto_state st;
	struct evbuffer *o = evbuffer_new();
	char *buf = malloc(len + 1), *res;
	size_t have = 0, next = 0, need = 0, n;

	memset(&ts, 0, sizeof(ts));
	e.cache = c;
	e.store = store_create(c);
	proto_state_init(&st, &e, &ts);
	while (next < len) {
		size_t add = next == 0 ? first : step, used;

		if (add > len - next)
			add = len - next;
		memcpy(buf + have, stream + next, add);
		have += add;
		next += add;
		if (need > have)
			continue;  /* honour *need: not enough for the pending request */
		used = proto_process(&st, buf, have, o, SIZE_MAX, &need);
		ck_assert_msg(used <= have, "chunks %zu/%zu: consumed %zu of %zu", first, step, used, have);
		ck_assert_msg(!st.close, "chunks %zu/%zu: connection closed at stream byte %zu", first,
		              step, next);
		memmove(buf, buf + used, have - used);
		have -= used;
		ck_assert_msg(need == 0 || need > have, "chunks %zu/%zu: *need %zu but %zu bytes are held",
		              first, step, need, have);
	}
	ck_assert_msg(have == 0 && need == 0, "chunks %zu/%zu: %zu bytes left unconsumed, need %zu",
	              first, step, have, need);
	n = evbuffer_get_length(o);
	res = malloc(n + 1);
	evbuffer_remove(o, res, n);
	res[n] = '\0';
	*outlen = n;
	evbuffer_free(o);
	store_destroy(e.store);
	cache_destroy(c);
	free(buf);
	return res;
}

START_TEST(test_one_shot_stream_gives_the_expected_replies)
{
	size_t len, wantlen, gotlen;
	char *want, *stream = build_stream(&len, &want, &wantlen);
	char *got = run_chunked(stream, len, len, len, &gotlen);

	ck_assert_msg(gotlen == wantlen && memcmp(got, want, wantlen) == 0,
	              "one-shot replies\n  '%s'\nexpected\n  '%s'", esc(got, gotlen), esc(want, wantlen));
	free(got);
	free(want);
	free(stream);
}
END_TEST

START_TEST(test_stream_split_at_every_byte_boundary_gives_the_same_replies)
{
	size_t len, wantlen, gotlen, k;
	char *want, *stream = build_stream(&len, &want, &wantlen), *got;

	for (k = 1; k < len; k++) {
		got = run_chunked(stream, len, k, len, &gotlen);
		ck_assert_msg(gotlen == wantlen && memcmp(got, want, wantlen) == 0,
		              "split after byte %zu of %zu: replies\n  '%s'\nexpected\n  '%s'", k, len,
		              esc(got, gotlen), esc(want, wantlen));
		free(got);
	}
	free(want);
	free(stream);
}
END_TEST

START_TEST(test_stream_fed_one_byte_at_a_time_gives_the_same_replies)
{
	size_t len, wantlen, gotlen, step;
	char *want, *stream = build_stream(&len, &want, &wantlen), *got;

	for (step = 1; step <= 7; step++) {
		got = run_chunked(stream, len, step, step, &gotlen);
		ck_assert_msg(gotlen == wantlen && memcmp(got, want, wantlen) == 0,
		              "fed %zu byte(s) at a time: replies\n  '%s'\nexpected\n  '%s'", step,
		              esc(got, gotlen), esc(want, wantlen));
		free(got);
	}
	free(want);
	free(stream);
}
END_TEST

/******** BINARY PROTOCOL (node/proto_binary.c) ********/

/* A binary packet (request magic 0x80, or reply 0x81 with `status`) at p;
 * returns its length. */
static size_t
bin_packet(uint8_t *p, uint8_t magic, uint8_t opcode, uint16_t status, const char *ext,
           size_t next, const char *key, const char *value, uint32_t opaque, uint64_t cas)
{
	size_t nkey = strlen(key), nvalue = strlen(value), body = next + nkey + nvalue;

	memset(p, 0, 24);
	p[0] = magic;
	p[1] = opcode;
	p[3] = (uint8_t)nkey;
	p[4] = (uint8_t)next;
	p[6] = (uint8_t)(status >> 8);
	p[7] = (uint8_t)status;
	p[11] = (uint8_t)body;
	p[15] = (uint8_t)opaque;
	for (int i = 0; i < 8; i++)
		p[16 + i] = (uint8_t)(cas >> (56 - 8 * i));
	memcpy(p + 24, ext, next);
	memcpy(p + 24 + next, key, nkey);
	memcpy(p + 24 + next + nkey, value, nvalue);
	return 24 + body;
}

#define FLAGS_7 "\0\0\0\x07"

START_TEST(test_binary_packet_split_waits_with_need)
{
	uint8_t set[64], want[64];
	size_t n = bin_packet(set, 0x80, 0x01, 0, FLAGS_7 "\0\0\0\0", 8, "k", "value", 9, 0);
	size_t wn, gotlen;
	char *got;

	ck_assert_uint_eq(feed((char *)set, 10), 0);       /* a partial header */
	ck_assert_uint_eq(last_need, 0);
	ck_assert_uint_eq(feed((char *)set, 30), 0);       /* header, part of the extras */
	ck_assert_uint_eq(last_need, 24 + 8 + 1);          /* first extras and key (size check) */
	ck_assert_uint_eq(feed((char *)set, 34), 0);       /* and part of the value */
	ck_assert_uint_eq(last_need, n);
	ck_assert_uint_eq(evbuffer_get_length(out), 0);
	ck_assert_uint_eq(feed((char *)set, n), n);
	got = take_output(&gotlen);
	wn = bin_packet(want, 0x81, 0x01, 0, "", 0, "", "", 9, 1);
	ck_assert_msg(gotlen == wn && memcmp(got, want, wn) == 0, "SET reply '%s'",
	              esc(got, gotlen));
	free(got);
}
END_TEST

/* Quiet gets and their NOOP, pipelined: every reply lands in `out` from
 * one call (conn.c writes it once), the misses say nothing. */
START_TEST(test_binary_pipelined_quiet_gets_and_noop_in_one_buffer)
{
	uint8_t in[512], want[512];
	size_t n = 0, wn = 0, gotlen;
	char *got;

	n += bin_packet(in + n, 0x80, 0x11, 0, FLAGS_7 "\0\0\0\0", 8, "a", "x", 1, 0); /* SETQ */
	n += bin_packet(in + n, 0x80, 0x09, 0, "", 0, "a", "", 2, 0);    /* GETQ hit */
	n += bin_packet(in + n, 0x80, 0x09, 0, "", 0, "zz", "", 3, 0);   /* GETQ miss */
	n += bin_packet(in + n, 0x80, 0x0d, 0, "", 0, "a", "", 4, 0);    /* GETKQ hit */
	n += bin_packet(in + n, 0x80, 0x0d, 0, "", 0, "zz", "", 5, 0);   /* GETKQ miss */
	n += bin_packet(in + n, 0x80, 0x0a, 0, "", 0, "", "", 6, 0);     /* NOOP */
	wn += bin_packet(want + wn, 0x81, 0x09, 0, FLAGS_7, 4, "", "x", 2, 1);
	wn += bin_packet(want + wn, 0x81, 0x0d, 0, FLAGS_7, 4, "a", "x", 4, 1);
	wn += bin_packet(want + wn, 0x81, 0x0a, 0, "", 0, "", "", 6, 0);
	ck_assert_uint_eq(feed((char *)in, n), n);
	ck_assert_uint_eq(last_need, 0);
	got = take_output(&gotlen);
	ck_assert_msg(gotlen == wn && memcmp(got, want, wn) == 0, "replies '%s'\nexpected '%s'",
	              esc(got, gotlen), esc((char *)want, wn));
	free(got);
	ck_assert(!ps.close);
}
END_TEST

START_TEST(test_binary_bad_magic_closes_silently)
{
	uint8_t in[64];
	size_t n = bin_packet(in, 0x80, 0x0a, 0, "", 0, "", "", 1, 0);

	n += bin_packet(in + n, 0x81, 0x0a, 0, "", 0, "", "", 2, 0);
	ck_assert_uint_eq(feed((char *)in, n), 24);
	ck_assert(ps.close);
	ck_assert_uint_eq(evbuffer_get_length(out), 24);  /* the first NOOP's reply */
}
END_TEST

static Suite *
proto_suite(void)
{
	Suite *s = suite_create("proto");
	TCase *tc;

	tc = tcase_create("commands");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_set_then_get_returns_the_value);
	tcase_add_test(tc, test_get_of_missing_key_is_just_end);
	tcase_add_test(tc, test_get_of_several_keys_skips_misses);
	tcase_add_test(tc, test_gets_shows_the_cas_unique);
	tcase_add_test(tc, test_gets_with_cas_disabled_shows_zero);
	tcase_add_test(tc, test_cas_command_stores_then_exists_then_not_found);
	tcase_add_test(tc, test_add_replace_append_prepend_replies);
	tcase_add_test(tc, test_value_containing_crlf_is_stored_verbatim);
	tcase_add_test(tc, test_zero_length_value);
	tcase_add_test(tc, test_large_value_is_returned_exactly);
	tcase_add_test(tc, test_key_of_250_bytes_is_accepted);
	tcase_add_test(tc, test_get_with_more_than_24_keys_returns_every_hit);
	tcase_add_test(tc, test_too_long_key_anywhere_in_a_long_get_sends_only_the_error);
	tcase_add_test(tc, test_incr_and_decr_replies);
	tcase_add_test(tc, test_decr_to_shorter_number_pads_with_spaces);
	tcase_add_test(tc, test_incr_on_non_numeric_value);
	tcase_add_test(tc, test_incr_with_invalid_delta);
	tcase_add_test(tc, test_delete_replies);
	tcase_add_test(tc, test_delete_with_junk_shows_usage);
	tcase_add_test(tc, test_touch_replies_and_sets_ttl);
	tcase_add_test(tc, test_gat_and_gats_return_values_and_set_ttl);
	tcase_add_test(tc, test_exptime_forms);
	tcase_add_test(tc, test_flush_all_replies_and_flushes);
	tcase_add_test(tc, test_flush_all_with_delay);
	tcase_add_test(tc, test_flush_all_when_disabled_is_refused);
	tcase_add_test(tc, test_verbosity_sets_the_log_level);
	tcase_add_test(tc, test_version_reply);
	tcase_add_test(tc, test_mn_and_shutdown);
	tcase_add_test(tc, test_meta_ms_waits_for_its_data_block_like_set);
	tcase_add_test(tc, test_meta_invalidate_then_one_winner);
	tcase_add_test(tc, test_meta_no_win_while_writes_are_paused);
	tcase_add_test(tc, test_meta_base64_keys);
	tcase_add_test(tc, test_stats_replies);
	tcase_add_test(tc, test_get_counters_follow_hits_and_misses);
	suite_add_tcase(s, tc);

	tc = tcase_create("errors");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_unknown_command_is_error);
	tcase_add_test(tc, test_too_short_command_is_error);
	tcase_add_test(tc, test_wrong_token_counts_are_error);
	tcase_add_test(tc, test_key_of_251_bytes_is_bad_command_line_format);
	tcase_add_test(tc, test_bad_numbers_in_storage_commands);
	tcase_add_test(tc, test_bad_command_line_does_not_swallow_the_value);
	tcase_add_test(tc, test_bad_data_chunk);
	tcase_add_test(tc, test_object_too_large_swallows_exactly_the_value);
	tcase_add_test(tc, test_swallow_continues_across_calls);
	tcase_add_test(tc, test_out_of_memory_storing_object_ignores_noreply);
	tcase_add_test(tc, test_noreply_silences_every_storage_command);
	tcase_add_test(tc, test_noreply_silences_errors);
	tcase_add_test(tc, test_noreply_is_only_recognised_as_the_last_token);
	suite_add_tcase(s, tc);

	tc = tcase_create("connection");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_quit_closes_and_stops_processing);
	tcase_add_test(tc, test_http_request_closes);
	tcase_add_test(tc, test_long_line_without_newline_closes_unless_get);
	tcase_add_test(tc, test_long_get_line_may_have_up_to_100_leading_spaces);
	tcase_add_test(tc, test_long_get_line_arriving_in_pieces_is_served);
	suite_add_tcase(s, tc);

	tc = tcase_create("framing");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_newline_without_carriage_return_is_accepted);
	tcase_add_test(tc, test_partial_line_waits_for_more);
	tcase_add_test(tc, test_need_is_the_size_of_the_pending_request);
	tcase_add_test(tc, test_out_limit_pauses_and_resumes);
	tcase_add_test(tc, test_metadump_is_streamed_under_the_output_limit);
	tcase_add_test(tc, test_one_shot_stream_gives_the_expected_replies);
	tcase_add_test(tc, test_stream_split_at_every_byte_boundary_gives_the_same_replies);
	tcase_add_test(tc, test_stream_fed_one_byte_at_a_time_gives_the_same_replies);
	suite_add_tcase(s, tc);

	tc = tcase_create("binary");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_binary_packet_split_waits_with_need);
	tcase_add_test(tc, test_binary_pipelined_quiet_gets_and_noop_in_one_buffer);
	tcase_add_test(tc, test_binary_bad_magic_closes_silently);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(proto_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
