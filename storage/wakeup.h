/* Wake-up of a thread's event loop from other threads: an eventfd that the
 * loop watches for reading, written at most once until the loop has run.
 *
 * Used by the workers (new sockets, WAL progress, stop) and the replication
 * thread.  WAL progress can be reported after every batch, so most wake-ups
 * come while one is already pending; they cost an atomic exchange, not a
 * write(2).
 *
 * Threads: wakeup_signal() from any thread; wakeup_consume() only from the
 * loop's read callback, before the work the wake-up asks for.
 */
#ifndef CAIRN_STORAGE_WAKEUP_H
#define CAIRN_STORAGE_WAKEUP_H

#include <stdbool.h>

struct wakeup {
	int fd;             /* eventfd, non-blocking; -1 when closed */
	bool pending;       /* atomic: fd written and not yet read */
	const char *name;   /* for the log: "worker", "replication" */
};

/* Open: *wk ready, fd to be watched for EV_READ.  Returns 0 or a negative
 * errno (wk->fd is then -1). */
int wakeup_open(struct wakeup *wk, const char *name);

/* Close the eventfd; a closed or never opened (fd -1) wakeup is a no-op. */
void wakeup_close(struct wakeup *wk);

/* Make the loop run its read callback (soon, once for any number of
 * signals before it runs). */
void wakeup_signal(struct wakeup *wk);

/* In the read callback, before doing the work: read the eventfd and clear
 * the pending flag, in that order (a signal whose write the read consumed
 * must not leave the flag set with nothing to read: that wake-up, and every
 * later one, would be lost).  A signal after this call writes again. */
void wakeup_consume(struct wakeup *wk);

#endif
