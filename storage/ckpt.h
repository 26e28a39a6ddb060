/* LMDB checkpoint: the cache contents as of a WAL position, on disk.
 *
 * Objects: one `struct ckpt`, an LMDB environment under DATA/lmdb with two
 * named databases ("items" and "meta"; layout at the top of ckpt.c).  This is
 * the only module that sees LMDB: its error codes stop here.
 *
 * Threads: ckpt_apply() and ckpt_set_meta() are called by one thread at a
 * time (the checkpointer); ckpt_load() and the getters at startup; LMDB read
 * transactions (ckpt_scan) may run on any thread concurrently with them.
 */
#ifndef CAIRN_STORAGE_CKPT_H
#define CAIRN_STORAGE_CKPT_H

#include <stddef.h>
#include <stdint.h>

#include "storage/wal.h"

struct ckpt;

/* Open (creating if needed) DATA/lmdb.  Returns 0 and *out, or a negative
 * errno: -EINVAL when the files are not a cairn checkpoint or are damaged
 * (a message says which file and what to do). */
int ckpt_open(const char *data_dir, struct ckpt **out);

/* Close; NULL is a no-op. */
void ckpt_close(struct ckpt *ck);

/* The LSN of the last WAL record folded into the checkpoint (0 if none). */
uint64_t ckpt_applied_lsn(struct ckpt *ck);

/* Called with one item as a SET change (lsn 0); non-zero stops the walk. */
typedef int ckpt_item_fn(void *arg, const struct cache_change *set);

/* The highest CAS unique folded in (items, flush_all thresholds). */
uint64_t ckpt_max_cas(struct ckpt *ck);

/* How many items the checkpoint holds (expired ones included). */
uint64_t ckpt_item_count(struct ckpt *ck);

/* Look one key up, from a read transaction of its own: 1 after calling fn
 * with the item as a SET change (pointing into LMDB's pages, valid only
 * during the call), 0 when the key is not there, or a negative errno (fn's
 * own negative return included). */
int ckpt_get(struct ckpt *ck, const char *key, size_t nkey, ckpt_item_fn *fn, void *arg);

/* The first and the last key (buffers of CACHE_KEY_MAX bytes).  Returns 0,
 * -ENOENT when there are no items, or a negative errno. */
int ckpt_key_bounds(struct ckpt *ck, char *first, size_t *nfirst, char *last, size_t *nlast);

/* Apply records (consecutive LSNs, all above the applied LSN) in one write
 * transaction that also stores the last one's LSN as the applied LSN, so the
 * checkpoint is always exactly "the log up to applied LSN".  Only the last
 * version of each key is written (records a later one in the batch undoes
 * are skipped: see FOLDING ONLY THE LAST VERSION in ckpt.c).  The map grows
 * as needed.  Returns 0 or a negative errno (nothing applied). */
int ckpt_apply(struct ckpt *ck, const struct wal_record *recs, size_t n);

/* Call fn for every item in the checkpoint, as a SET change (lsn 0), from
 * one read transaction: a consistent point-in-time view.  Returns 0 or a
 * negative errno; *applied_lsn (OUT, may be NULL) gets the view's LSN. */
int ckpt_scan(struct ckpt *ck, ckpt_item_fn *fn, void *arg, uint64_t *applied_lsn);

/* Delete every item whose exptime has passed (expiry is not logged, so the
 * checkpoint would otherwise keep them).  *purged (OUT) counts them.  Returns
 * 0 or a negative errno. */
int ckpt_purge_expired(struct ckpt *ck, uint32_t now, uint64_t *purged);

/* Named metadata values (history ids, epoch, role) kept with the
 * checkpoint.  get returns 0, -ENOENT, or a negative errno; a string is
 * NUL-terminated into buf.  put writes every value of a list ended by
 * {NULL, NULL} in one transaction: all of them or none. */
struct ckpt_meta_str {
	const char *name;
	const char *value;
};
int ckpt_meta_get_str(struct ckpt *ck, const char *name, char *buf, size_t buflen);
int ckpt_meta_put_strs(struct ckpt *ck, const struct ckpt_meta_str *values);

/* Full resync of a replica: drop every item and set the applied LSN to 0
 * (ckpt_reset), store snapshot items as they arrive (ckpt_put_items, lsn of
 * the changes ignored), then declare the snapshot's LSN (ckpt_set_applied). */
int ckpt_reset(struct ckpt *ck);
int ckpt_put_items(struct ckpt *ck, const struct cache_change *items, size_t n);
int ckpt_set_applied(struct ckpt *ck, uint64_t lsn);

/* An incremental read of every item, in key order (a full sync's source),
 * on one thread.  Not a point-in-time view: items may be newer than *lsn,
 * never older, so the snapshot followed by every WAL record after *lsn
 * gives the current state (records are idempotent after-images).
 * open:  0 and *out (+ the applied LSN it starts from), or a negative errno.
 * next:  1 and *item, 0 at the end, or < 0.  *item stays valid until the
 *        next call or ckpt_snapshot_pause().
 * pause: end the current chunk's read transaction, so that nothing pins
 *        LMDB's map (its growth) between chunks; next resumes after the
 *        last key returned. */
struct ckpt_snapshot;
int ckpt_snapshot_open(struct ckpt *ck, struct ckpt_snapshot **out, uint64_t *lsn);
int ckpt_snapshot_next(struct ckpt_snapshot *snap, struct cache_change *item);
void ckpt_snapshot_pause(struct ckpt_snapshot *snap);
/* Before the first next: read only the keys in [from, to) (nfrom 0: from
 * the first key; nto 0: to the end), so that threads can share the work. */
void ckpt_snapshot_set_range(struct ckpt_snapshot *snap, const char *from, size_t nfrom,
                             const char *to, size_t nto);
void ckpt_snapshot_close(struct ckpt_snapshot *snap);

/* The time of a delayed flush_all folded in but not yet carried out, or 0. */
uint32_t ckpt_pending_flush(struct ckpt *ck);

/* Bytes of the LMDB data file. */
uint64_t ckpt_file_bytes(struct ckpt *ck);

#endif
