/* Writes the seed corpora of the fuzz targets (tests/fuzz/corpus/<target>/)
 * from real encoders: memcache request streams, WAL records made with
 * wal_encode(), replication frames made with repl_wire_send().
 *   build-fuzz/tests/fuzz/fuzz_gen_seeds tests/fuzz/corpus
 * Only the resulting files are committed; rerun after a format change.
 */
#include <event2/buffer.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "replication/wire.h"
#include "storage/cache.h"
#include "storage/wal.h"

static const char *root;

static void
put_file(const char *target, const char *name, const void *p, size_t n)
{
	char path[4096];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", root, target);
	if (mkdir(path, 0755) != 0 && errno != EEXIST) {
		perror(path);
		exit(1);
	}
	snprintf(path, sizeof(path), "%s/%s/%s", root, target, name);
	f = fopen(path, "wb");
	if (f == NULL || fwrite(p, 1, n, f) != n || fclose(f) != 0) {
		perror(path);
		exit(1);
	}
}

/******** fuzz_proto: 2 option bytes, then the stream ********/

static void
proto_seed(const char *name, uint8_t chunking, uint8_t opts, const char *stream)
{
	size_t n = strlen(stream);
	char *buf = malloc(n + 2);

	buf[0] = (char)chunking;
	buf[1] = (char)opts;
	memcpy(buf + 2, stream, n);
	put_file("fuzz_proto", name, buf, n + 2);
	free(buf);
}

static void
proto_seeds(void)
{
	proto_seed("storage", 0, 0,
	           "set k 5 0 2\r\nhi\r\n"
	           "add k 0 0 1\r\nx\r\n"
	           "add k2 0 0 1\r\ny\r\n"
	           "replace k 7 100 3\r\nabc\r\n"
	           "replace nokey 0 0 1\r\nz\r\n"
	           "append k 0 0 2\r\nde\r\n"
	           "prepend k 0 0 2\r\n01\r\n"
	           "append missing 0 0 1\r\nq\r\n"
	           "get k k2 missing\r\n"
	           "set n 0 -1 1 noreply\r\n5\r\n"
	           "get n\r\n");
	proto_seed("cas", 3, 0,
	           "set c 1 0 1\r\na\r\n"
	           "gets c\r\n"
	           "cas c 0 0 1 1\r\nb\r\n"
	           "cas c 0 0 1 999\r\nc\r\n"
	           "cas missing 0 0 1 1\r\nd\r\n"
	           "cas c 0 0 1 2 noreply\r\ne\r\n"
	           "gets c\r\n");
	proto_seed("arith", 7, 1,
	           "set n 0 0 2\r\n10\r\n"
	           "incr n 5\r\n"
	           "decr n 100\r\n"
	           "incr n 18446744073709551615\r\n"
	           "incr missing 1\r\n"
	           "set s 0 0 3\r\nabc\r\n"
	           "incr s 1\r\n"
	           "decr n 1 noreply\r\n"
	           "incr n -1\r\n"
	           "get n\r\n");
	proto_seed("touch_gat", 0, 2,
	           "set t 0 0 1\r\nv\r\n"
	           "touch t 100\r\n"
	           "touch nokey 10\r\n"
	           "gat 0 t\r\n"
	           "gats 3600 t nokey\r\n"
	           "gat -1 t\r\n"
	           "get t\r\n"
	           "touch t 10 noreply\r\n");
	proto_seed("delete_flush", 1, 0,
	           "set d 0 0 1\r\nv\r\n"
	           "delete d\r\n"
	           "delete d\r\n"
	           "delete d 0\r\n"
	           "delete d noreply\r\n"
	           "delete d 5\r\n"
	           "set e 0 0 1\r\nv\r\n"
	           "flush_all 0\r\n"
	           "get e\r\n"
	           "flush_all 10 noreply\r\n"
	           "flush_all\r\n");
	proto_seed("admin", 0, 0,
	           "version\r\n"
	           "verbosity 1\r\n"
	           "verbosity 0 noreply\r\n"
	           "stats\r\n"
	           "stats settings\r\n"
	           "stats items\r\n"
	           "stats slabs\r\n"
	           "stats persistence\r\n"
	           "stats replication\r\n"
	           "stats reset\r\n"
	           "stats bogus\r\n"
	           "mn\r\n"
	           "promote\r\n"
	           "replicaof 127.0.0.1 21211\r\n"
	           "replicaof no one\r\n"
	           "shutdown\r\n"
	           "pause_writes 50\r\n"
	           "set p 0 0 1\r\nx\r\n"
	           "resume_writes\r\n"
	           "quit\r\n"
	           "get after_quit\r\n");
	proto_seed("errors", 2, 0x18,
	           "bogus\r\n"
	           "\r\n"
	           "g\r\n"
	           "set k 0 0\r\n"
	           "set k abc 0 1\r\nx\r\n"
	           "set k 0 0 -1\r\n"
	           "set k 0 0 3\r\nabcdef\r\n"
	           "set big 0 0 400\r\n"
	           "0123456789012345678901234567890123456789012345678901234567890123456789"
	           "0123456789012345678901234567890123456789012345678901234567890123456789"
	           "0123456789012345678901234567890123456789012345678901234567890123456789"
	           "0123456789012345678901234567890123456789012345678901234567890123456789"
	           "0123456789012345678901234567890123456789012345678901234567890123456789"
	           "01234567890123456789012345678901234567890123456789\r\n"
	           "get kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk"
	           "kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk"
	           "kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk"
	           "kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk\r\n"
	           "incr k abc\r\n"
	           "touch k abc\r\n"
	           "verbosity x\r\n"
	           "GET / HTTP/1.1\r\n");
	proto_seed("multiget", 5, 0x04,
	           "set a 0 0 1\r\n1\r\nset b 0 0 1\r\n2\r\nset c 0 0 1\r\n3\r\n"
	           "get a b c d e f g h i j k l m n o p q r s t u v w x y z a b c\r\n"
	           "gets a b c\n"
	           "get a\n");
	proto_seed("dump", 3, 0,
	           "set a%b 0 0 1\r\nx\r\n"
	           "set \xc3\xa9t\xc3\xa9 7 100 2\r\nyy\r\n"
	           "set dead 0 -1 1\r\nz\r\n"
	           "get a%b\r\n"
	           "stats cachedump 1 0\r\n"
	           "stats cachedump 1 1\r\n"
	           "stats cachedump 2 0\r\n"
	           "stats cachedump 64 0\r\n"
	           "stats cachedump x 0\r\n"
	           "stats cachedump 1\r\n"
	           "lru_crawler metadump all\r\n"
	           "lru_crawler metadump hash\r\n"
	           "lru_crawler metadump 1,2\r\n"
	           "lru_crawler metadump ,\r\n"
	           "lru_crawler metadump 0\r\n"
	           "lru_crawler crawl all\r\n"
	           "lru_crawler crawl hash\r\n"
	           "lru_crawler sleep 1000001\r\n"
	           "lru_crawler tocrawl 10\r\n"
	           "lru_crawler enable\r\n"
	           "lru_crawler disable\r\n"
	           "lru_crawler mgdump all\r\n"
	           "lru_crawler\r\n");
	proto_seed("meta", 0, 0,
	           "ms a 3 T0 F5 c k O1\r\n"
	           "abc\r\n"
	           "mg a v c f t s k h l O2\r\n"
	           "mg a b\r\n"
	           "mg YQ== b k v\r\n"
	           "md a I T30 q\r\n"
	           "mg a v\r\n"
	           "mg a R30 N30 t\r\n"
	           "ms a 1 C1 I c\r\n"
	           "x\r\n"
	           "ms bWVvdw== 1 b MA\r\n"
	           "y\r\n"
	           "ma n N0 J7 v t T30 c\r\n"
	           "ma n MD D3 v\r\n"
	           "me a\r\n"
	           "me YQ== b\r\n"
	           "mg zz q\r\n"
	           "mn\r\n");
	proto_seed("partial", 1, 0x01,
	           "set x 0 0 10\r\n01234");
	proto_seed("noreply_pipeline", 4, 0x20,
	           "set a 0 0 1 noreply\r\n1\r\n"
	           "add a 0 0 1 noreply\r\n2\r\n"
	           "replace a 0 0 1 noreply\r\n3\r\n"
	           "append a 0 0 1 noreply\r\n4\r\n"
	           "prepend a 0 0 1 noreply\r\n5\r\n"
	           "incr a 1 noreply\r\n"
	           "touch a 0 noreply\r\n"
	           "delete a noreply\r\n"
	           "flush_all noreply\r\n"
	           "gets a\r\n");
}

/* One binary request packet (node/proto_binary.c's layout) appended to b. */
static void
bin_packet(struct evbuffer *b, uint8_t opcode, const void *ext, uint8_t extlen,
           const char *key, const void *value, size_t nvalue, uint32_t opaque, uint64_t cas)
{
	size_t nkey = strlen(key);
	uint32_t body = (uint32_t)(extlen + nkey + nvalue);
	uint8_t h[24] = {0x80, opcode, (uint8_t)(nkey >> 8), (uint8_t)nkey, extlen};

	for (int i = 0; i < 4; i++) {
		h[8 + i] = (uint8_t)(body >> (24 - 8 * i));
		h[12 + i] = (uint8_t)(opaque >> (24 - 8 * i));
	}
	for (int i = 0; i < 8; i++)
		h[16 + i] = (uint8_t)(cas >> (56 - 8 * i));
	evbuffer_add(b, h, sizeof(h));
	evbuffer_add(b, ext, extlen);
	evbuffer_add(b, key, nkey);
	evbuffer_add(b, value, nvalue);
}

/* A binary request with no extras and no value. */
static void
bin_simple(struct evbuffer *b, uint8_t opcode, const char *key)
{
	bin_packet(b, opcode, NULL, 0, key, NULL, 0, opcode, 0);
}

static void
bin_store(struct evbuffer *b, uint8_t opcode, const char *key, const char *value, uint64_t cas)
{
	static const uint8_t ext[8] = {0, 0, 0, 7, 0, 0, 0, 0};  /* flags 7, no exptime */

	bin_packet(b, opcode, ext, opcode <= 0x03 || (opcode >= 0x11 && opcode <= 0x13) ? 8 : 0,
	           key, value, strlen(value), opcode, cas);
}

static void
bin_arith(struct evbuffer *b, uint8_t opcode, const char *key, uint8_t delta, uint8_t initial,
          uint8_t exptime)
{
	uint8_t ext[20] = {0};

	ext[7] = delta;
	ext[15] = initial;
	ext[19] = exptime;
	bin_packet(b, opcode, ext, sizeof(ext), key, NULL, 0, opcode, 0);
}

static void
bin_seed(const char *name, uint8_t chunking, uint8_t opts, struct evbuffer *b)
{
	size_t n = evbuffer_get_length(b);
	uint8_t *buf = malloc(n + 2);

	buf[0] = chunking;
	buf[1] = opts;
	evbuffer_remove(b, buf + 2, n);
	put_file("fuzz_proto", name, buf, n + 2);
	free(buf);
	evbuffer_free(b);
}

/* Binary streams (first byte 0x80): every opcode, the quiet pipeline a
 * client sends, and the malformed packets the parser refuses. */
static void
binary_seeds(void)
{
	static const uint8_t exp4[4] = {0, 0, 0, 100}, delay[4] = {0, 0, 0, 2};
	/* SET, key "a", 8 extras, a body length of 4 GB */
	static const uint8_t oversize[24 + 8 + 1] = {0x80, 0x01, 0, 1, 8, 0, 0, 0,
	                                             0xff, 0xff, 0xff, 0xff, [32] = 'a'};
	struct evbuffer *b = evbuffer_new();
	char key[8];

	bin_store(b, 0x01, "a", "hello", 0);          /* SET */
	bin_simple(b, 0x00, "a");                     /* GET */
	bin_simple(b, 0x0c, "zz");                    /* GETK miss */
	bin_store(b, 0x02, "a", "x", 0);              /* ADD: exists */
	bin_store(b, 0x03, "a", "r", 0);              /* REPLACE */
	bin_store(b, 0x01, "a", "c", 1);              /* SET with a CAS */
	bin_store(b, 0x0e, "a", "+", 0);              /* APPEND */
	bin_store(b, 0x0f, "a", "-", 0);              /* PREPEND */
	bin_arith(b, 0x05, "n", 1, 5, 0);             /* INCR creates */
	bin_arith(b, 0x06, "n", 9, 0, 0);             /* DECR */
	bin_arith(b, 0x05, "m", 1, 0, 0xff);          /* INCR: exptime 0xff.. low byte */
	bin_packet(b, 0x1c, exp4, 4, "a", NULL, 0, 1, 0);  /* TOUCH */
	bin_packet(b, 0x1d, exp4, 4, "a", NULL, 0, 2, 0);  /* GAT */
	bin_packet(b, 0x24, exp4, 4, "a", NULL, 0, 3, 0);  /* GATKQ */
	bin_simple(b, 0x04, "a");                     /* DELETE */
	bin_simple(b, 0x10, "");                      /* STAT */
	bin_simple(b, 0x10, "settings");
	bin_simple(b, 0x10, "reset");
	bin_simple(b, 0x10, "bogus");
	bin_packet(b, 0x08, delay, 4, "", NULL, 0, 4, 0);  /* FLUSH with a delay */
	bin_simple(b, 0x08, "");                      /* FLUSH */
	bin_simple(b, 0x0b, "");                      /* VERSION */
	bin_simple(b, 0x0a, "");                      /* NOOP */
	bin_simple(b, 0x07, "");                      /* QUIT */
	bin_seed("binary_commands", 0, 0, b);

	b = evbuffer_new();
	for (int i = 0; i < 20; i++) {
		snprintf(key, sizeof(key), "p%d", i);
		bin_store(b, 0x11, key, "v", 0);      /* SETQ */
	}
	for (int i = 0; i < 25; i++) {
		snprintf(key, sizeof(key), "p%d", i);
		bin_simple(b, i % 2 ? 0x0d : 0x09, key);  /* GETKQ, GETQ */
	}
	bin_simple(b, 0x0a, "");
	bin_simple(b, 0x17, "");                      /* QUITQ */
	bin_seed("binary_quiet_pipeline", 3, 0x01, b);

	b = evbuffer_new();
	bin_packet(b, 0x44, NULL, 0, "k", "body", 4, 1, 0);  /* unknown opcode */
	bin_packet(b, 0x21, NULL, 0, "PLAIN", "\0u\0p", 4, 2, 0);  /* SASL without -S */
	bin_simple(b, 0x20, "");                      /* SASL_LIST_MECHS */
	bin_store(b, 0x01, "big", "0123456789012345678901234567890123456789", 0);
	evbuffer_add(b, oversize, sizeof(oversize));
	bin_seed("binary_errors", 2, 0x18, b);        /* -I 300: "big" too large */

	b = evbuffer_new();
	bin_simple(b, 0x0a, "");
	bin_packet(b, 0x00, exp4, 4, "a", NULL, 0, 5, 0);  /* GET with extras: closes */
	bin_seed("binary_einval", 1, 0, b);
}

/******** fuzz_wal: 4 prefix bytes, then records ********/

static size_t
add_record(char *buf, size_t at, const struct cache_change *ch, uint64_t lsn, uint32_t epoch)
{
	wal_encode(buf + at, ch, lsn, epoch);
	return at + wal_record_size(ch);
}

static size_t
wal_records(char *buf, size_t at, uint64_t first_lsn, uint32_t epoch)
{
	struct cache_change set = {.type = CACHE_CHANGE_SET, .key = "k", .nkey = 1,
	                           .flags = 5, .exptime = 0, .cas = 7, .value = "hi", .nbytes = 2};
	struct cache_change set2 = {.type = CACHE_CHANGE_SET, .key = "user_info_42", .nkey = 12,
	                            .flags = 0xdeadbeef, .exptime = 4000000000u, .cas = 1ull << 40,
	                            .value = "{\"name\":\"x\"}", .nbytes = 12};
	struct cache_change mset = {.type = CACHE_CHANGE_SET, .key = "k", .nkey = 1, .flags = 5,
	                            .cas = 8, .value = "hi", .nbytes = 2,
	                            .marks = CACHE_MARK_STALE | CACHE_MARK_WIN_SENT};
	struct cache_change touch = {.type = CACHE_CHANGE_TOUCH, .key = "k", .nkey = 1, .exptime = 99};
	struct cache_change del = {.type = CACHE_CHANGE_DELETE, .key = "k", .nkey = 1};
	struct cache_change flush = {.type = CACHE_CHANGE_FLUSH, .exptime = 0, .cas = 3};
	struct cache_change flush_later = {.type = CACHE_CHANGE_FLUSH, .exptime = 2000000000u};
	struct cache_change evict = {.type = CACHE_CHANGE_EVICT, .key = "user_info_42", .nkey = 12};
	uint64_t lsn = first_lsn;

	at = add_record(buf, at, &set, lsn++, epoch);
	at = add_record(buf, at, &set2, lsn++, epoch);
	at = add_record(buf, at, &mset, lsn++, epoch);
	at = add_record(buf, at, &touch, lsn++, epoch);
	at = add_record(buf, at, &del, lsn++, epoch);
	at = add_record(buf, at, &flush, lsn++, epoch);
	at = add_record(buf, at, &flush_later, lsn++, epoch + 1);
	at = add_record(buf, at, &evict, lsn++, epoch + 1);
	return at;
}

static void
wal_seeds(void)
{
	char buf[4096];
	size_t n, one;
	struct cache_change set = {.type = CACHE_CHANGE_SET, .key = "k", .nkey = 1,
	                           .flags = 5, .cas = 1, .value = "hi", .nbytes = 2};

	/* One segment, every record type. */
	memset(buf, 0, 4);
	n = wal_records(buf, 4, 1, 1);
	put_file("fuzz_wal", "one_segment", buf, n);

	/* Two segments: split after the third record, LSNs continue. */
	buf[0] = 1;
	one = 4;
	{
		struct cache_change c = set;

		one = add_record(buf, one, &c, 1, 1);
		one = add_record(buf, one, &c, 2, 1);
		one = add_record(buf, one, &c, 3, 1);
	}
	buf[1] = (char)((one - 4) >> 8);
	buf[2] = (char)(one - 4);
	buf[3] = 2;  /* second segment named 0000000000000004.log */
	n = wal_records(buf, one, 4, 1);
	put_file("fuzz_wal", "two_segments", buf, n);

	/* Torn tail: the last record cut in half. */
	memset(buf, 0, 4);
	n = wal_records(buf, 4, 1, 2);
	put_file("fuzz_wal", "torn_tail", buf, n - 9);

	/* A flipped byte in the middle record (checksum mismatch). */
	memset(buf, 0, 4);
	n = wal_records(buf, 4, 10, 3);
	buf[n / 2] ^= 0x40;
	put_file("fuzz_wal", "corrupt_middle", buf, n);

	/* Replay after LSN 2 only. */
	buf[0] = 4;
	buf[1] = buf[2] = 0;
	buf[3] = 2;
	n = wal_records(buf, 4, 1, 1);
	put_file("fuzz_wal", "after_lsn", buf, n);

	/* An LSN gap between segments, the second without its header. */
	buf[0] = 3;
	one = add_record(buf, 4, &set, 1, 1);
	buf[1] = (char)((one - 4) >> 8);
	buf[2] = (char)(one - 4);
	buf[3] = 0;
	n = wal_records(buf, one, 5, 1);
	put_file("fuzz_wal", "gap_no_header", buf, n);
}

/******** fuzz_wire: 1 chunking byte, then frames ********/

static size_t
take(struct evbuffer *b, char *out, size_t at)
{
	size_t n = evbuffer_get_length(b);

	evbuffer_remove(b, out + at, n);
	return at + n;
}

static void
wire_seeds(void)
{
	struct evbuffer *b = evbuffer_new();
	char buf[8192];
	size_t n;
	uint8_t nonce[32];
	char rec[256];
	struct cache_change set = {.type = CACHE_CHANGE_SET, .key = "k", .nkey = 1,
	                           .flags = 5, .cas = 1, .value = "hi", .nbytes = 2};
	struct cache_change del = {.type = CACHE_CHANGE_DELETE, .key = "k", .nkey = 1};
	char rec2[64];

	memset(nonce, 0xa5, sizeof(nonce));

	/* Handshake from the replica's side: Challenge, Welcome, WalBatch,
	 * Heartbeat. */
	{
		Cairn__Repl__Frame f = CAIRN__REPL__FRAME__INIT;
		Cairn__Repl__Challenge c = CAIRN__REPL__CHALLENGE__INIT;
		Cairn__Repl__Welcome w = CAIRN__REPL__WELCOME__INIT;
		Cairn__Repl__WalBatch wb = CAIRN__REPL__WAL_BATCH__INIT;
		Cairn__Repl__Heartbeat hb = CAIRN__REPL__HEARTBEAT__INIT;
		ProtobufCBinaryData recs[2];

		c.nonce.data = nonce;
		c.nonce.len = sizeof(nonce);
		c.auth_required = 1;
		f.msg_case = CAIRN__REPL__FRAME__MSG_CHALLENGE;
		f.challenge = &c;
		repl_wire_send(b, &f);
		w.mode = CAIRN__REPL__SYNC_MODE__PARTIAL;
		w.epoch = 2;
		w.history_id = "0123456789abcdef0123456789abcdef";
		w.start_lsn = 1;
		w.primary_id = "127.0.0.1:11211";
		w.truncate_to = 0;
		f.msg_case = CAIRN__REPL__FRAME__MSG_WELCOME;
		f.welcome = &w;
		repl_wire_send(b, &f);
		wal_encode(rec, &set, 1, 2);
		wal_encode(rec2, &del, 2, 2);
		recs[0].data = (uint8_t *)rec;
		recs[0].len = wal_record_size(&set);
		recs[1].data = (uint8_t *)rec2;
		recs[1].len = wal_record_size(&del);
		wb.n_records = 2;
		wb.records = recs;
		f.msg_case = CAIRN__REPL__FRAME__MSG_WAL_BATCH;
		f.wal_batch = &wb;
		repl_wire_send(b, &f);
		hb.lsn = 2;
		f.msg_case = CAIRN__REPL__FRAME__MSG_HEARTBEAT;
		f.heartbeat = &hb;
		repl_wire_send(b, &f);
		buf[0] = 0;
		n = take(b, buf, 1);
		put_file("fuzz_wire", "partial_stream", buf, n);
		buf[0] = 5;
		put_file("fuzz_wire", "partial_stream_chunked", buf, n);
	}
	/* Full resync: Welcome FULL, SnapshotChunk, SnapshotEnd. */
	{
		Cairn__Repl__Frame f = CAIRN__REPL__FRAME__INIT;
		Cairn__Repl__Welcome w = CAIRN__REPL__WELCOME__INIT;
		Cairn__Repl__SnapshotChunk sc = CAIRN__REPL__SNAPSHOT_CHUNK__INIT;
		Cairn__Repl__SnapshotEnd se = CAIRN__REPL__SNAPSHOT_END__INIT;
		Cairn__Repl__Item i1 = CAIRN__REPL__ITEM__INIT, i2 = CAIRN__REPL__ITEM__INIT;
		Cairn__Repl__Item *items[2] = {&i1, &i2};

		w.mode = CAIRN__REPL__SYNC_MODE__FULL;
		w.epoch = 1;
		w.history_id = "fedcba9876543210fedcba9876543210";
		w.primary_id = "node1";
		f.msg_case = CAIRN__REPL__FRAME__MSG_WELCOME;
		f.welcome = &w;
		repl_wire_send(b, &f);
		i1.key.data = (uint8_t *)"user_info_1";
		i1.key.len = 11;
		i1.flags = 32;
		i1.exptime = 0;
		i1.cas = 10;
		i1.value.data = (uint8_t *)"value one";
		i1.value.len = 9;
		i2.key.data = (uint8_t *)"k2";
		i2.key.len = 2;
		i2.flags = 0;
		i2.exptime = 4000000000u;
		i2.cas = 11;
		i2.value.data = (uint8_t *)"v";
		i2.value.len = 1;
		i2.marks = CACHE_MARK_KEY_BINARY | CACHE_MARK_STALE;
		sc.n_items = 2;
		sc.items = items;
		f.msg_case = CAIRN__REPL__FRAME__MSG_SNAPSHOT_CHUNK;
		f.snapshot_chunk = &sc;
		repl_wire_send(b, &f);
		se.lsn = 40;
		se.items = 2;
		f.msg_case = CAIRN__REPL__FRAME__MSG_SNAPSHOT_END;
		f.snapshot_end = &se;
		repl_wire_send(b, &f);
		buf[0] = 0;
		n = take(b, buf, 1);
		put_file("fuzz_wire", "full_sync", buf, n);
	}
	/* The primary's side: Hello, Ack, Refused. */
	{
		Cairn__Repl__Frame f = CAIRN__REPL__FRAME__INIT;
		Cairn__Repl__Hello h = CAIRN__REPL__HELLO__INIT;
		Cairn__Repl__Ack a = CAIRN__REPL__ACK__INIT;
		Cairn__Repl__Refused r = CAIRN__REPL__REFUSED__INIT;

		h.protocol_version = REPL_PROTOCOL_VERSION;
		h.node_id = "127.0.0.1:11212";
		h.history_id = "0123456789abcdef0123456789abcdef";
		h.last_lsn = 17;
		h.epoch = 3;
		h.auth_proof.data = nonce;
		h.auth_proof.len = sizeof(nonce);
		h.listen_addr = "127.0.0.1:11212";
		f.msg_case = CAIRN__REPL__FRAME__MSG_HELLO;
		f.hello = &h;
		repl_wire_send(b, &f);
		a.lsn = 17;
		f.msg_case = CAIRN__REPL__FRAME__MSG_ACK;
		f.ack = &a;
		repl_wire_send(b, &f);
		r.reason = "bad auth proof";
		f.msg_case = CAIRN__REPL__FRAME__MSG_REFUSED;
		f.refused = &r;
		repl_wire_send(b, &f);
		buf[0] = 2;
		n = take(b, buf, 1);
		put_file("fuzz_wire", "hello_ack_refused", buf, n);
		/* A raw body (no length prefix) for repl_wire_decode. */
		f.msg_case = CAIRN__REPL__FRAME__MSG_HELLO;
		f.hello = &h;
		repl_wire_send(b, &f);
		buf[0] = 0;
		n = take(b, buf, 1);
		memmove(buf + 1, buf + 5, n - 5);
		put_file("fuzz_wire", "raw_hello_body", buf, n - 4);
	}
	/* Oversized length prefix. */
	{
		static const char big[] = {0, 0x7f, 0xff, 0xff, 0xff, 0x0a, 0x00};

		put_file("fuzz_wire", "oversized", big, sizeof(big));
	}
	evbuffer_free(b);
}

int
main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: %s CORPUS_ROOT\n", argv[0]);
		return 2;
	}
	root = argv[1];
	proto_seeds();
	binary_seeds();
	wal_seeds();
	wire_seeds();
	return 0;
}
