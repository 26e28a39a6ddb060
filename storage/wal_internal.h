/* Internals shared by the WAL module's files (storage/wal_*.c): the record
 * offsets, byte helpers, file names, and `struct wal` with its segment index
 * and registry of positions.  Nothing outside storage/wal_*.c includes it.
 *
 * Who owns what:
 *   wal_record.c   the record format, its codec and validity rules
 *   wal_writer.c   segment files, struct wal, append, group commit, fsync
 *                  policies, repair, reset, truncate, the segment index
 *   wal_retain.c   registered positions (readers, slots), the slots file,
 *                  trimming
 *   wal_reader.c   following the live log
 *   wal_recover.c  listing and reading segments, recovery at startup
 */
#ifndef CAIRN_STORAGE_WAL_INTERNAL_H
#define CAIRN_STORAGE_WAL_INTERNAL_H

#include "storage/wal.h"

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

/* Record layout (specified in wal_record.c). */
#define WAL_OFF_LENGTH 0
#define WAL_OFF_CHECKSUM 4
#define WAL_OFF_LSN 8
#define WAL_OFF_EPOCH 16
#define WAL_OFF_TYPE 20
#define WAL_OFF_BODY 21
#define WAL_LENGTH_FIXED 13       /* lsn + epoch + type */

/* Segment header (specified in wal_writer.c). */
#define WAL_MAGIC "CAIRNWAL"
#define WAL_FORMAT_VERSION 2      /* bump when a reader of the old format cannot read the new */
#define WAL_FORMAT_OLDEST 1       /* the oldest segment format still read */

/* Little-endian integers. */
static inline void
put_u32(char *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (char)(v >> (8 * i));
}

static inline void
put_u64(char *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (char)(v >> (8 * i));
}

static inline uint32_t
get_u32(const char *p)
{
	uint32_t v = 0;

	for (int i = 3; i >= 0; i--)
		v = (v << 8) | (uint8_t)p[i];
	return v;
}

static inline uint64_t
get_u64(const char *p)
{
	uint64_t v = 0;

	for (int i = 7; i >= 0; i--)
		v = (v << 8) | (uint8_t)p[i];
	return v;
}

/******** FILES (wal_writer.c) ********/

/* DATA/wal into out.  Returns 0 or -ENAMETOOLONG. */
int wal_dir_path(const char *data_dir, char *out, size_t outlen);

/* DATA/wal/<first_lsn as 16 hex>.log into out (4096 bytes is enough for
 * any data dir wal_dir_path accepts). */
void wal_segment_path(const char *data_dir, uint64_t first_lsn, char *out, size_t outlen);

/* True when buf holds a valid segment header (magic and version). */
bool wal_segment_header_ok(const char *buf, size_t len);

/* write(2) all of it, retrying on EINTR.  Returns 0 or a negative errno. */
int wal_write_all(int fd, const char *p, size_t n);

/* fsync DATA/wal itself (after creating, renaming or deleting in it). */
int wal_fsync_dir(const char *data_dir);

/******** THE LOG ********/

/* One segment in the index.  Segment i holds LSNs
 * [first_lsn, next segment's first_lsn); the last one is the active one. */
struct wal_seg {
	uint64_t first_lsn;
	uint64_t size;        /* bytes on disk; the active one's as of the last write */
	bool closed;          /* no byte will be added (a later segment exists) */
};

/* A registered position that is not a named slot: an open reader's.  The
 * log keeps every segment holding an LSN >= lsn. */
struct wal_hold {
	uint64_t lsn;
	struct wal_hold *prev, *next;
};

struct wal_slot {
	char name[WAL_SLOT_NAME_MAX + 1];
	uint64_t lsn;         /* the first LSN it still needs */
	unsigned flags;       /* WAL_SLOT_* */
};

struct wal {
	char *data_dir;
	enum wal_fsync fsync;
	size_t segment_size;
	uint32_t epoch;

	pthread_mutex_t lock;
	pthread_cond_t work;        /* writer waits for records or stop */
	pthread_cond_t space;       /* appenders wait for buffer space */
	char *buf;                  /* records not yet handed to the writer */
	size_t len, cap;
	uint32_t appenders_waiting; /* atomic: appends waiting for buffer space */
	/* The unfolded tail (wal_tail_*), under lock: appenders wait on
	 * `folded` while it is full. */
	pthread_cond_t folded;
	uint64_t tail_max_records;  /* 0: no bound */
	uint64_t tail_max_bytes;
	uint64_t folded_lsn;        /* the checkpoint's LSN */
	uint64_t unfolded_bytes;    /* bytes of records after folded_lsn */
	uint64_t tail_waits;        /* appends that waited for the checkpointer */
	bool sync_wanted;           /* atomic: fsync at the next round, whatever the policy */
	uint64_t buf_first_lsn;     /* LSN of the first record in buf */
	uint64_t next_lsn;          /* under lock */
	uint64_t last_lsn;          /* last handed out; atomic reads */
	bool stop;
	bool writing;               /* someone does file I/O (begin_io/end_io) */
	char *spare;                /* the other buffer of the double buffer */
	size_t spare_cap;
	uint64_t reported_lsn;      /* written LSN last reported (writer thread) */

	/* Segment index and registered positions: under lock. */
	struct wal_seg *segs;       /* oldest first; never empty once open */
	size_t nsegs, segs_cap;
	struct wal_hold *holds;     /* open readers' positions */
	struct wal_slot *slots;     /* named slots */
	size_t nslots, slots_cap;
	uint64_t slots_gen;         /* bumped when a saved slot changes */
	uint64_t slots_saved_gen;   /* slots_gen the slots file holds */

	/* Writer thread only (read atomically by others where noted). */
	pthread_t thread;
	int fd;
	uint64_t segment_first_lsn; /* atomic */
	uint64_t segment_bytes;
	uint64_t written_lsn;       /* atomic */
	uint64_t synced_lsn;        /* atomic */
	int error;                  /* atomic; set by a failed write, cleared by repair */
	struct timespec last_sync;
	/* Everything written since the last successful fsync, kept so that a
	 * failed write or fsync can be repaired by rewriting it from here
	 * (never by trusting the kernel's copy: PostgreSQL's fsync lesson). */
	uint64_t synced_offset;     /* segment bytes known to be on disk */
	char *unsynced;
	size_t unsynced_len, unsynced_cap;
	uint64_t unsynced_first_lsn, unsynced_last_lsn;

	wal_progress_fn *progress_fn;
	void *progress_arg;
};

/* Segment index (wal_writer.c); the caller holds w->lock.
 * do_index_find: the entry holding `lsn` (the last one whose first LSN is
 * <= lsn), or SIZE_MAX when lsn is below the oldest segment. */
size_t do_index_find(const struct wal *w, uint64_t lsn);

/* Registered positions (wal_retain.c); the caller holds w->lock. */
void do_hold_add(struct wal *w, struct wal_hold *h, uint64_t lsn);
void do_hold_move(struct wal *w, struct wal_hold *h, uint64_t lsn);
void do_hold_remove(struct wal *w, struct wal_hold *h);

/* After wal_reset / wal_truncate_after the log holds LSNs [lo, next_lsn):
 * replica slots outside [lo, next_lsn] are dropped (their replica must
 * resync in full), other slots are moved into it.  Caller holds w->lock. */
void do_slots_rebase(struct wal *w, uint64_t lo, uint64_t next_lsn);

/* Load DATA/wal/slots into w (wal_open, before the writer starts).  A
 * missing file is no slot; a damaged one is logged and ignored. */
void wal_slots_load(struct wal *w);

/* Free the slots (wal_close). */
void wal_slots_free(struct wal *w);

#endif
