/* Write-ahead log: segmented, append-only, checksummed records of every
 * change to the cache, written by one thread with group commit.
 *
 * Objects: `struct wal` (the open log being appended to) and the record
 * codec (wal_encode/wal_decode) that recovery, the checkpointer and
 * replication share.  The byte format is specified at the top of wal.c and
 * summarised in docs/formats.md.
 *
 * Threads: wal_append() is called by any thread (from the cache's change
 * listener, under the key's stripe lock) and only copies the record into a
 * buffer; a writer thread owned by the wal writes batches to the current
 * segment and fsyncs them according to the policy.  Lock order: cache stripe
 * lock, then the wal's lock.
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

/* Read a whole segment into memory: *buf (malloc'd, free() it) holds *len
 * bytes of records after the segment header.  Returns 0, -EINVAL for a bad
 * header, or a negative errno. */
int wal_read_segment(const char *path, char **buf, size_t *len);

/******** READING A LIVE LOG (replication) ********/

/* Follows the log from an LSN on, across segments, while it is written.
 * One thread at a time per reader. */
struct wal_reader;

/* Position a reader at from_lsn.  Returns 0 and *out, -ENOENT when from_lsn
 * is no longer on disk (older than the oldest segment), or a negative errno. */
int wal_reader_open(const char *data_dir, uint64_t from_lsn, struct wal_reader **out);

/* The next record: 1 with *rec / *len (the raw record bytes, valid until the
 * next call) and *lsn; 0 when no further record is written yet; -ENOENT when
 * the next segment is gone (trimmed) or -EILSEQ on a damaged record. */
int wal_reader_next(struct wal_reader *r, const char **rec, size_t *len, uint64_t *lsn);

/* The LSN the next record will have. */
uint64_t wal_reader_next_lsn(const struct wal_reader *r);

/* Give back the record the last wal_reader_next() returned: the next call
 * returns it again. */
void wal_reader_unread(struct wal_reader *r);

void wal_reader_close(struct wal_reader *r);

/******** RECOVERY ********/

typedef void wal_replay_fn(void *arg, const struct wal_record *rec);

struct wal_recovery {
	uint64_t last_lsn;         /* last valid record in the log (0 if none) */
	uint32_t last_epoch;
	uint64_t replayed;         /* records handed to the callback */
	uint64_t dropped_bytes;    /* torn or corrupt bytes cut off */
	uint64_t dropped_segments; /* later segments set aside after damage */
};

/* Read every segment in order, call fn for each record whose LSN is above
 * `after_lsn`, and stop at the first torn or corrupt record: the segment is
 * truncated there and any later segments are renamed to *.damaged, each with
 * a log line saying how much was dropped.  Returns 0 (also after repairing
 * damage) or a negative errno when the log cannot be read at all. */
int wal_recover(const char *data_dir, uint64_t after_lsn, wal_replay_fn *fn,
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
 * LSN next_lsn.  Starts the writer thread.  Returns 0 and *out, or a negative
 * errno (*out untouched). */
int wal_open(const struct wal_config *cfg, uint64_t next_lsn, uint32_t epoch,
             wal_progress_fn *progress_fn, void *progress_arg, struct wal **out);

/* Flush and fsync everything appended, stop the writer, close.  NULL is a
 * no-op. */
void wal_close(struct wal *w);

/* Append a local change with the next LSN and the log's epoch; returns that
 * LSN.  Waits while WAL_BUFFER_MAX bytes are unwritten.  After a write error
 * the log queues records, the node refuses writes (wal_error), and the
 * writer retries each second to rewrite everything not known to be on disk
 * from its own copy; once that succeeds writes are accepted again.  Returns
 * 0 only when the record could not be queued (out of memory: wal_error is
 * set). */
uint64_t wal_append(struct wal *w, const struct cache_change *ch);

/* Append a record received from a primary, keeping its LSN and epoch.  Its
 * LSN must be the log's next one.  Returns 0, -EILSEQ (not the next LSN) or
 * -ENOMEM. */
int wal_append_record(struct wal *w, const struct wal_record *rec);

/* The LSN the next record will have. */
uint64_t wal_next_lsn(struct wal *w);

/* Durable under the fsync policy: every record up to this LSN is on disk. */
uint64_t wal_synced_lsn(struct wal *w);

/* Every record up to this LSN has been written to the segment file (it
 * survives a crash of this process, not of the machine). */
uint64_t wal_written_lsn(struct wal *w);

/* The last LSN handed out. */
uint64_t wal_last_lsn(struct wal *w);

/* First LSN of the segment being written; segments below it are closed. */
uint64_t wal_active_segment_lsn(struct wal *w);

/* Start over at next_lsn: every segment is deleted and a new one begins.
 * For a replica's full resync; nothing may be appended meanwhile (the
 * caller has removed the cache's listener).  Returns 0 or a negative errno. */
int wal_reset(struct wal *w, uint64_t next_lsn);

/* Cut the log after `lsn`: later records are removed from the segment
 * files and the next record gets lsn + 1 (an old primary rolling back to the
 * point where its successor's history forked).  Nothing may be appended
 * meanwhile.  Returns the number of records discarded, or a negative errno. */
int64_t wal_truncate_after(struct wal *w, uint64_t lsn);

/* Epoch stamped on local changes from now on (a promotion raises it). */
void wal_set_epoch(struct wal *w, uint32_t epoch);

/* 0, or the errno of the write or fsync that failed, until it is repaired. */
int wal_error(struct wal *w);

#endif
