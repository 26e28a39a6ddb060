/* WAL record codec: the byte format of one record, its validity rules,
 * encode and decode.  Segment files are specified in wal_writer.c, the
 * retention slots file in wal_retain.c, recovery in wal_recover.c.
 *
 * RECORD FORMAT (all integers little-endian)
 *    0: length    u32  bytes from offset 8 to the end of the record
 *                      (13 + body size)
 *    4: checksum  u32  low 32 bits of XXH3_64bits over bytes [8, 8 + length)
 *    8: lsn       u64  log sequence number, +1 per record
 *   16: epoch     u32  primary term that wrote the record
 *   20: type      u8   1 SET, 2 DELETE, 3 TOUCH, 4 FLUSH, 5 EVICT,
 *                      6 MSET (a SET with meta marks; segment format 2 on)
 *   21: body
 *
 * RECORD BODIES (physical after-images, so replay is idempotent)
 *   SET     nkey u8, flags u32, exptime u32, cas u64, nbytes u32,
 *           key[nkey], value[nbytes]            (21 + nkey + nbytes bytes)
 *   MSET    nkey u8, flags u32, exptime u32, cas u64, nbytes u32, marks u8,
 *           key[nkey], value[nbytes]            (22 + nkey + nbytes bytes)
 *           marks: 0x01 key_binary (stored with a base64 key: meta replies
 *           print it base64), 0x02 stale (md I: mg says X), 0x04 win_sent
 *           (a recache win was handed out: mg says Z); no other bit.
 *   DELETE  nkey u8, key[nkey]
 *   TOUCH   nkey u8, exptime u32, key[nkey]
 *   FLUSH   when u32, cas u64: when = 0: every item whose CAS is below cas
 *           is gone (flush_all now); else flush_all delayed to unix time when
 *   EVICT   nkey u8, key[nkey]
 *   exptime is an absolute unix time (0 = never), so a TTL means the same
 *   after a restart.  append/prepend/incr/decr/cas are logged as the SET of
 *   their result.  A SET whose item has marks is written as MSET, one
 *   without as SET (so a log without meta marks is byte for byte as a
 *   format 1 log); both decode to a SET change (marks 0 for SET).  A won
 *   recache claim (mg W) is logged as the MSET of the item with win_sent.
 *
 * VALIDITY: a record is valid if and only if
 *   (1) all 8 + length bytes are present (else it is a torn tail),
 *   (2) 13 <= length <= 13 + WAL_REC_BODY_MAX,
 *   (3) the checksum matches,
 *   (4) lsn > 0 and the type is known,
 *   (5) the body's own sizes add up to exactly length - 13, with 1 <= nkey
 *       <= 250 for keyed records,
 *   (6) an MSET's marks are not 0 and have no bit outside 0x07 (one
 *       encoding per change: an item without marks is a SET).
 * Whether its LSN is the one expected where it stands (the previous record's
 * + 1) is the reader's and recovery's rule, not the codec's.
 *
 * EXAMPLE: "set k 5 0 2\r\nhi\r\n" at LSN 1, epoch 1 is 45 bytes:
 *   25 00 00 00  <checksum 4 bytes>  01 00 00 00 00 00 00 00  01 00 00 00
 *   01  01  05 00 00 00  00 00 00 00  <cas 8 bytes>  02 00 00 00  6b  68 69
 */
#include "storage/wal.h"

#include <assert.h>
#include <string.h>
#include <xxhash.h>

#include "storage/wal_internal.h"

#define WAL_SET_FIXED 21          /* nkey + flags + exptime + cas + nbytes */
#define WAL_MSET_FIXED 22         /* ... + marks */
#define WAL_TYPE_MSET 6           /* the record type of a SET with marks */

_Static_assert(WAL_TYPE_MSET == CACHE_CHANGE_EVICT + 1, "MSET follows the change types");

_Static_assert(WAL_REC_HDR_SIZE == WAL_OFF_BODY, "record header is 21 bytes");
_Static_assert(WAL_OFF_BODY - WAL_OFF_LSN == WAL_LENGTH_FIXED, "length covers lsn..type");

static uint32_t
record_checksum(const char *rec, uint32_t length)
{
	return (uint32_t)XXH3_64bits(rec + WAL_OFF_LSN, length);
}

/******** RECORD CODEC ********/

/* A SET's fixed part: an MSET's carries the marks. */
static size_t
set_fixed(const struct cache_change *ch)
{
	return ch->marks != 0 ? WAL_MSET_FIXED : WAL_SET_FIXED;
}

static size_t
body_size(const struct cache_change *ch)
{
	switch (ch->type) {
	case CACHE_CHANGE_SET:
		return set_fixed(ch) + ch->nkey + ch->nbytes;
	case CACHE_CHANGE_TOUCH:
		return 1 + 4 + ch->nkey;
	case CACHE_CHANGE_DELETE:
	case CACHE_CHANGE_EVICT:
		return 1 + ch->nkey;
	case CACHE_CHANGE_FLUSH:
		return 4 + 8;
	}
	return 0;
}

size_t
wal_record_size(const struct cache_change *ch)
{
	return WAL_REC_HDR_SIZE + body_size(ch);
}

void
wal_encode(char *buf, const struct cache_change *ch, uint64_t lsn, uint32_t epoch)
{
	uint32_t length = (uint32_t)(WAL_LENGTH_FIXED + body_size(ch));
	char *b = buf + WAL_OFF_BODY;

	put_u32(buf + WAL_OFF_LENGTH, length);
	put_u64(buf + WAL_OFF_LSN, lsn);
	put_u32(buf + WAL_OFF_EPOCH, epoch);
	buf[WAL_OFF_TYPE] = (char)ch->type;
	switch (ch->type) {
	case CACHE_CHANGE_SET:
		assert((ch->marks & ~CACHE_MARKS_ALL) == 0);
		if (ch->marks != 0) {
			buf[WAL_OFF_TYPE] = WAL_TYPE_MSET;
			b[WAL_SET_FIXED] = (char)ch->marks;
		}
		b[0] = (char)ch->nkey;
		put_u32(b + 1, ch->flags);
		put_u32(b + 5, ch->exptime);
		put_u64(b + 9, ch->cas);
		put_u32(b + 17, ch->nbytes);
		memcpy(b + set_fixed(ch), ch->key, ch->nkey);
		memcpy(b + set_fixed(ch) + ch->nkey, ch->value, ch->nbytes);
		break;
	case CACHE_CHANGE_TOUCH:
		b[0] = (char)ch->nkey;
		put_u32(b + 1, ch->exptime);
		memcpy(b + 5, ch->key, ch->nkey);
		break;
	case CACHE_CHANGE_DELETE:
	case CACHE_CHANGE_EVICT:
		b[0] = (char)ch->nkey;
		memcpy(b + 1, ch->key, ch->nkey);
		break;
	case CACHE_CHANGE_FLUSH:
		put_u32(b, ch->exptime);
		put_u64(b + 4, ch->cas);
		break;
	}
	put_u32(buf + WAL_OFF_CHECKSUM, record_checksum(buf, length));
}

/* Rules (5) and (6): the body's sizes add up, the key length is legal, an
 * MSET's marks are.  `marked`: the record is an MSET. */
static bool
decode_body(const char *b, size_t n, bool marked, struct cache_change *ch)
{
	size_t nkey, fixed = marked ? WAL_MSET_FIXED : WAL_SET_FIXED;

	switch (ch->type) {
	case CACHE_CHANGE_SET:
		if (n < fixed)
			return false;
		nkey = (uint8_t)b[0];
		ch->flags = get_u32(b + 1);
		ch->exptime = get_u32(b + 5);
		ch->cas = get_u64(b + 9);
		ch->nbytes = get_u32(b + 17);
		ch->marks = marked ? (uint8_t)b[WAL_SET_FIXED] : 0;
		if (nkey == 0 || nkey > CACHE_KEY_MAX ||
		    (uint64_t)fixed + nkey + ch->nbytes != n ||
		    (marked && (ch->marks == 0 || (ch->marks & ~CACHE_MARKS_ALL) != 0)))
			return false;
		ch->key = b + fixed;
		ch->nkey = nkey;
		ch->value = b + fixed + nkey;
		return true;
	case CACHE_CHANGE_TOUCH:
		if (n < 5)
			return false;
		nkey = (uint8_t)b[0];
		ch->exptime = get_u32(b + 1);
		ch->key = b + 5;
		ch->nkey = nkey;
		return nkey >= 1 && nkey <= CACHE_KEY_MAX && 5 + nkey == n;
	case CACHE_CHANGE_DELETE:
	case CACHE_CHANGE_EVICT:
		if (n < 1)
			return false;
		nkey = (uint8_t)b[0];
		ch->key = b + 1;
		ch->nkey = nkey;
		return nkey >= 1 && nkey <= CACHE_KEY_MAX && 1 + nkey == n;
	case CACHE_CHANGE_FLUSH:
		if (n != 12)
			return false;
		ch->exptime = get_u32(b);
		ch->cas = get_u64(b + 4);
		return true;
	}
	return false;
}

enum wal_decode_status
wal_decode(const char *buf, size_t len, struct wal_record *rec, size_t *used)
{
	uint32_t length;
	uint8_t type;

	if (len < WAL_OFF_LSN)
		return WAL_DECODE_SHORT;
	length = get_u32(buf + WAL_OFF_LENGTH);
	/* Rule (2) before (1): a garbage length must not make us wait. */
	if (length < WAL_LENGTH_FIXED || length > WAL_LENGTH_FIXED + WAL_REC_BODY_MAX)
		return WAL_DECODE_CORRUPT;
	if (len - WAL_OFF_LSN < length)
		return WAL_DECODE_SHORT;
	if (get_u32(buf + WAL_OFF_CHECKSUM) != record_checksum(buf, length))
		return WAL_DECODE_CORRUPT;
	memset(rec, 0, sizeof(*rec));
	rec->lsn = get_u64(buf + WAL_OFF_LSN);
	rec->epoch = get_u32(buf + WAL_OFF_EPOCH);
	type = (uint8_t)buf[WAL_OFF_TYPE];
	if (rec->lsn == 0 || type < CACHE_CHANGE_SET || type > WAL_TYPE_MSET)
		return WAL_DECODE_CORRUPT;
	rec->change.type = type == WAL_TYPE_MSET ? CACHE_CHANGE_SET : (enum cache_change_type)type;
	if (!decode_body(buf + WAL_OFF_BODY, length - WAL_LENGTH_FIXED, type == WAL_TYPE_MSET,
	                 &rec->change))
		return WAL_DECODE_CORRUPT;
	*used = WAL_OFF_LSN + (size_t)length;
	return WAL_DECODE_OK;
}
