/* Write-ahead log: segmented, append-only, checksummed records of every
 * change to the cache, written by one thread with group commit.  The log is
 * the truth: an LSN exists once it is appended here.
 *
 * Objects: `struct wal` (the open log: appends, its segment index and the
 * positions that still need it), `struct wal_reader` (follows the live
 * log), and the record codec (wal_encode/wal_decode) that recovery, the
 * checkpointer and replication share.
 *
 * Where the byte formats are specified (summarised in docs/formats.md):
 *   records              storage/wal_record.c
 *   segment files        storage/wal_writer.c
 *   slots file           storage/wal_retain.c
 *   recovery rules       storage/wal_recover.c
 *   reader algorithm     storage/wal_reader.c
 *
 * Threads: wal_append()/wal_append_record() are called by any thread (the
 * store facade, under the key's writer lock) and only copy the record into
 * a buffer; a writer thread owned by the wal writes batches to the current
 * segment and fsyncs them according to the policy.  Readers, slots and
 * wal_trim (the checkpointer) take the wal's lock briefly and never do file
 * I/O under it.  Lock order: store writer lock, then the wal's lock.
 */
#ifndef CAIRN_STORAGE_WAL_H
#define CAIRN_STORAGE_WAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "storage/cache.h"

enum wal_fsync {
	WAL_FSYNC_ALWAYS,    /* a write is acknowledged after its fsync (group commit) */
	WAL_FSYNC_EVERYSEC,  /* fsync at least once a second */
	WAL_FSYNC_NO,        /* leave it to the OS (and to segment rotation) */
};

/* Parse "always" / "everysec" / "no".  Returns false for anything else. */
bool wal_fsync_parse(const char *name, enum wal_fsync *out);
const char *wal_fsync_name(enum wal_fsync policy);

/******** RECORDS ********/

/* A decoded record.  change.key/value point into the decoded buffer. */
struct wal_record {
	uint64_t lsn;
	uint32_t epoch;
	struct cache_change change;
};

#define WAL_REC_HDR_SIZE 21        /* length, checksum, LSN, epoch, type */
#define WAL_REC_BODY_MAX (1u << 30)

/* Bytes wal_encode() writes for this change. */
size_t wal_record_size(const struct cache_change *ch);

/* Encode `ch` as a record with this LSN and epoch into buf, which has
 * wal_record_size(ch) bytes. */
void wal_encode(char *buf, const struct cache_change *ch, uint64_t lsn,
                uint32_t epoch);

enum wal_decode_status {
	WAL_DECODE_OK = 0,   /* *rec filled, *used bytes consumed */
	WAL_DECODE_SHORT,    /* buf ends inside the record (torn tail, or read more) */
	WAL_DECODE_CORRUPT,  /* checksum mismatch or impossible field */
};

/* Decode the record at the start of buf[0..len). */
enum wal_decode_status wal_decode(const char *buf, size_t len,
                                  struct wal_record *rec, size_t *used);

/******** SEGMENTS ********/

#define WAL_SEGMENT_HDR_SIZE 16

struct wal_segment {
	uint64_t first_lsn;  /* from the file name */
	uint64_t size;       /* bytes on disk */
	char path[4096];
};

/* List DIR/wal/<16 hex>.log sorted by first LSN.  Returns 0 and a malloc'd
 * array (*out, *n; free() it), or a negative errno. */
int wal_list_segments(const char *data_dir, struct wal_segment **out, size_t *n);

/* Map a whole segment read-only: *buf holds *len bytes of records after
 * the segment header; wal_release_segment() unmaps it (before anything
 * truncates the file).  Returns 0, -EINVAL for a bad header, or a negative
 * errno. */
int wal_read_segment(const char *path, char **buf, size_t *len);
void wal_release_segment(char *buf, size_t len);

/******** RECOVERY ********/

typedef void wal_replay_fn(void *arg, const struct wal_record *rec);

struct wal_recovery {
	uint64_t last_lsn;         /* last valid record of the retained log (0 if none) */
	uint32_t last_epoch;       /* its epoch (0 if none) */
	uint64_t replayed;         /* records handed to the callback */
	uint64_t replayed_bytes;   /* their encoded size (the unfolded tail) */
	uint64_t dropped_bytes;    /* torn or corrupt bytes cut off, and *.damaged bytes */
	uint64_t dropped_segments; /* segments set aside as *.damaged */
	uint64_t covered_segments; /* segments set aside as *.covered (the checkpoint has them) */
};

/* Recover DATA/wal relative to the checkpoint, which holds every change up
 * to checkpoint_lsn (0: no checkpoint).  Reads every segment in order and
 * calls fn for each valid record above checkpoint_lsn, in LSN order.  Gaps
 * the checkpoint covers are not damage: the segments before such a gap are
 * renamed *.covered.  Damage (a torn or corrupt record, a bad segment
 * header, a gap the checkpoint does not cover) is cut where it starts; later
 * segments are kept only when the checkpoint covers what was lost, else
 * renamed *.damaged.  Every repair is logged with what was lost (the rules
 * are in wal_recover.c).  Afterwards the log continues at
 * max(checkpoint_lsn, out->last_lsn) + 1.  Never crashes on any content.
 * Returns 0 (also after repairing damage) or a negative errno when the log
 * cannot be read at all.  Call it before wal_open (or with nothing being
 * appended). */
int wal_recover(const char *data_dir, uint64_t checkpoint_lsn, wal_replay_fn *fn,
                void *arg, struct wal_recovery *out);

/******** THE LOG ********/

struct wal_config {
	const char *data_dir;
	enum wal_fsync fsync;
	size_t segment_size;       /* rotate to a new segment beyond this */
};

/* Called by the writer thread each time the written or synced LSN advances
 * (and when a write error occurs), with no wal lock held. */
typedef void wal_progress_fn(void *arg);

struct wal;

/* Open the log for appending after recovery: the next local change gets
 * LSN next_lsn (max(checkpoint, recovered last LSN) + 1).  Builds the
 * segment index from DATA/wal, loads the slots file, starts a segment at
 * next_lsn and the writer thread.  Returns 0 and *out, or a negative errno
 * (*out untouched). */
int wal_open(const struct wal_config *cfg, uint64_t next_lsn, uint32_t epoch,
             wal_progress_fn *progress_fn, void *progress_arg, struct wal **out);

/* Flush and fsync everything appended, save the slots, stop the writer,
 * close.  Every reader must be closed first.  NULL is a no-op. */
void wal_close(struct wal *w);

 /* Append a local change with the log's next LSN and its epoch.
 * Returns that LSN, or 0 when it
 * could not be queued (ENOMEM): the log then fails like a disk (wal_error)
 * until repaired.  After a write error the log still queues records, the
 * node refuses writes (wal_error), and the writer retries each second to
 * rewrite everything not known to be on disk from its own copy; once that
 * succeeds writes are accepted again.  May wait while WAL_BUFFER_MAX bytes
 * are unwritten. */
uint64_t wal_append(struct wal *w, const struct cache_change *ch);

/* Append a record received from a primary, keeping its LSN and epoch.
 * Returns 0; -EILSEQ (logged, nothing appended) when rec->lsn is not
 * exactly the log's next LSN: the log never skips or repeats an LSN; -ENOMEM
 * as for wal_append.  `more`: the caller appends more records at once and
 * calls wal_kick() after the last, so the writer wakes once for the run and
 * writes it in one go, not once per record. */
int wal_append_record(struct wal *w, const struct wal_record *rec, bool more);

/* Wake the writer for what a run of wal_append_record(..., true) queued. */
void wal_kick(struct wal *w);

/* Durable under the fsync policy: every record up to this LSN is on disk. */
uint64_t wal_synced_lsn(struct wal *w);

/* Every record up to this LSN has been written to the segment file (it
 * survives a crash of this process, not of the machine). */
uint64_t wal_written_lsn(struct wal *w);

/* The last LSN handed out. */
uint64_t wal_last_lsn(struct wal *w);

/* First LSN of the oldest segment in the index (the start of the backlog). */
uint64_t wal_oldest_lsn(struct wal *w);

/* Bytes of the segments in the index (from memory: no directory scan). */
uint64_t wal_disk_bytes(struct wal *w);

/* Start over at next_lsn: every segment is deleted and a new one begins;
 * replica slots are dropped, other slots move to next_lsn.  For a
 * replica's full resync; nothing may be appended meanwhile and no reader
 * may be open.  Returns 0 or a negative errno. */
int wal_reset(struct wal *w, uint64_t next_lsn);

/* Cut the log after `lsn`: later records are removed from the segment
 * files and the next record gets lsn + 1 (an old primary rolling back to the
 * point where its successor's history forked); slots above lsn + 1 are
 * dropped (replica slots) or moved to it.  Nothing may be appended meanwhile
 * and no reader may be open.  Returns the number of records discarded, or a
 * negative errno. */
int64_t wal_truncate_after(struct wal *w, uint64_t lsn);

/* Epoch stamped on local changes from now on (a promotion raises it). */
void wal_set_epoch(struct wal *w, uint32_t epoch);

/* 0, or the errno of the write or fsync that failed, until it is repaired. */
int wal_error(struct wal *w);

/* Appends waiting right now for buffer space: the disk is slower than the
 * writes (backpressure). */
uint32_t wal_appenders_waiting(struct wal *w);

/* THE UNFOLDED TAIL: the records after the checkpoint's LSN, which a
 * restart replays before it serves.  With a bound set, an append waits
 * while the tail holds max_records records or would pass max_bytes bytes,
 * until the checkpointer folds (a write stall, as RocksDB's), and asks the
 * writer for an fsync (only what is on disk is folded).
 *   init:   after wal_open(), the checkpoint's LSN and the bytes of the
 *           records after it (recovery's replayed_bytes);
 *   limit:  set the bound (0, 0: none; persist lifts it while the
 *           checkpoint cannot be written, so that writes never hang on it);
 *   folded: the checkpoint now holds every record up to lsn, `bytes` of
 *           them since the last call. */
struct wal_tail_stats {
	uint64_t records, bytes;
	uint64_t max_records, max_bytes;
	uint64_t waits;          /* appends that waited for the checkpointer */
};
void wal_tail_init(struct wal *w, uint64_t folded_lsn, uint64_t unfolded_bytes);
void wal_tail_limit(struct wal *w, uint64_t max_records, uint64_t max_bytes);
void wal_tail_folded(struct wal *w, uint64_t lsn, uint64_t bytes);
void wal_tail_stats(struct wal *w, struct wal_tail_stats *out);

/* fsync at the writer's next round, whatever the policy. */
void wal_sync_soon(struct wal *w);

/******** RETENTION: SLOTS AND TRIMMING ********/

/* A slot is a named position: the first LSN its owner still needs (the
 * checkpointer's "checkpoint", a replica's node id).  The log never trims a
 * segment holding an LSN at or above a slot, except that a WAL_SLOT_REPLICA
 * slot is capped by the backlog (see wal_trim).  Open readers are registered
 * positions too (see wal_reader_open). */
#define WAL_SLOT_NAME_MAX 64
#define WAL_SLOT_REPLICA 1u    /* capped by the backlog; invalidated beyond it */
#define WAL_SLOT_TEMPORARY 2u  /* not saved: gone after a restart */

struct wal_slot_info {
	char name[WAL_SLOT_NAME_MAX + 1];
	uint64_t lsn;
	unsigned flags;
};

/* Create or move slot `name` (1..WAL_SLOT_NAME_MAX bytes) to lsn (> 0),
 * with these WAL_SLOT_* flags.  Returns 0, -EINVAL or -ENOMEM. */
int wal_slot_set(struct wal *w, const char *name, uint64_t lsn, unsigned flags);

/* Remove a slot.  Returns 0 or -ENOENT (no such slot). */
int wal_slot_drop(struct wal *w, const char *name);

/* Copy up to max slots into out (for `stats replication`).  Returns how
 * many slots there are (may exceed max). */
size_t wal_slot_list(struct wal *w, struct wal_slot_info *out, size_t max);

/* Save the non-temporary slots to DATA/wal/slots (temp file, fsync,
 * rename, directory fsync); wal_open loads them.  The checkpointer calls it
 * each round.  Returns 0 or a negative errno (the old file stays). */
int wal_slots_save(struct wal *w);

/* Delete old segments (the checkpointer, after checkpointing up to
 * checkpoint_lsn, which also moves the "checkpoint" slot to
 * checkpoint_lsn + 1).  Only a prefix of closed segments goes, each wholly
 * below checkpoint_lsn + 1, every open reader's position and every slot
 * that is not WAL_SLOT_REPLICA; of those, the newest up to `backlog` bytes
 * are kept (the replication backlog).  A replica slot that needs an older
 * segment than the backlog keeps is invalidated (dropped and logged), and a
 * reader opened at its position later gets -ENOENT.  Files are deleted
 * without the wal's lock held.  Returns the number of segments deleted, or
 * a negative errno. */
int wal_trim(struct wal *w, uint64_t checkpoint_lsn, uint64_t backlog);

/******** READING A LIVE LOG (replication, checkpointer) ********/

/* Follows the log from an LSN on, across segments, while it is written.
 * One thread at a time per reader. */
struct wal_reader;

/* Position a reader at from_lsn (0: the oldest LSN the log still holds,
 * taken under the log's lock, so no trim can come between) and register
 * that position with the log (nothing it will read is trimmed until
 * wal_reader_close).  Returns 0 and
 * *out; -ENOENT when from_lsn left the backlog (below the oldest segment:
 * resync in full); -ENOMEM.  `w` must outlive the reader. */
int wal_reader_open(struct wal *w, uint64_t from_lsn, struct wal_reader **out);

/* The next record: 1 with *rec / *len (the raw record bytes, valid until the
 * next call) and *lsn; 0 when no further record is written yet (call again
 * later: a segment being created is picked up then); -ENOENT when the next
 * record is at or below the written end of the log but its segment is not
 * there (trimmed, or a hole): it left the backlog, resync in full; -EILSEQ
 * on a damaged record; another negative errno on a read error. */
int wal_reader_next(struct wal_reader *r, const char **rec, size_t *len, uint64_t *lsn);

/* The LSN the next record will have. */
uint64_t wal_reader_next_lsn(const struct wal_reader *r);

/* Give back the record the last wal_reader_next() returned: the next call
 * returns it again.  Only right after a call that returned 1. */
void wal_reader_unread(struct wal_reader *r);

/* Unregister and free the reader.  NULL is a no-op. */
void wal_reader_close(struct wal_reader *r);

#endif
