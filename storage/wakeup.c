/* Coalesced eventfd wake-ups (see wakeup.h). */
#include "storage/wakeup.h"

#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "storage/log.h"

int
wakeup_open(struct wakeup *wk, const char *name)
{
	wk->name = name;
	wk->pending = false;
	wk->fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	return wk->fd >= 0 ? 0 : -errno;
}

void
wakeup_close(struct wakeup *wk)
{
	if (wk->fd >= 0)
		close(wk->fd);
	wk->fd = -1;
}

void
wakeup_signal(struct wakeup *wk)
{
	uint64_t one = 1;

	if (__atomic_exchange_n(&wk->pending, true, __ATOMIC_SEQ_CST))
		return;  /* written, not read yet: the loop will run */
	if (write(wk->fd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		log_msg(LOG_ALWAYS, "%s: wake-up write: %s", wk->name, strerror(errno));
}

void
wakeup_consume(struct wakeup *wk)
{
	uint64_t count;

	if (read(wk->fd, &count, sizeof(count)) < 0 && errno != EAGAIN)
		log_msg(LOG_ALWAYS, "%s: wake-up read: %s", wk->name, strerror(errno));
	__atomic_store_n(&wk->pending, false, __ATOMIC_SEQ_CST);
}
