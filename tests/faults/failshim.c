/* failshim: an LD_PRELOAD library that makes disk writes fail on cue.
 *
 * Used by tests/faults/test_disk_faults.py to inject ENOSPC / EIO into a
 * running cairn without restarting it and without privileges.
 *
 * ENVIRONMENT (read once, at the first intercepted call)
 *   CAIRN_FAIL_DIR  only files under this directory can fail (normally the
 *                   node's --data-dir).  Unset: the shim never fails.
 *   CAIRN_FAIL_CTL  control file.  Its content says what fails; it is checked
 *                   on every intercepted call (one stat(); re-read only when
 *                   its mtime, size or inode changed), so a test switches
 *                   faults on and off while the process runs.  Missing or
 *                   empty file: nothing fails.
 *   CAIRN_FAIL_LOG  optional: one line appended per injected failure or
 *                   delay ("<op> <errno name>|delay <path>"), so a test can
 *                   prove the fault fired.
 *
 * CONTROL FILE: one rule per line (or separated by ';' or spaces):
 *     TARGET:ERRNO[:OPS[:COUNT]]
 *   TARGET  wal    files under $CAIRN_FAIL_DIR/wal/
 *           lmdb   files under $CAIRN_FAIL_DIR/lmdb/
 *           lmdbdata  the same, except LMDB's meta-page fd (opened O_DSYNC):
 *                  page writes and syncs only
 *           lmdbmeta  only LMDB's meta-page fd (a failed meta write puts
 *                  LMDB into MDB_PANIC until the environment is reopened)
 *           any    any file under $CAIRN_FAIL_DIR
 *   ERRNO   ENOSPC, EIO, EDQUOT, EROFS, EFBIG, or a number; or delayMS:
 *           the call is not failed but slowed by MS milliseconds (a slow
 *           disk), e.g. "wal:delay500:write"; or hold: the call waits
 *           until the rule is taken out of the control file (a stalled
 *           disk the test releases; at most 120 s), e.g. "wal:hold:write"
 *   OPS     comma-separated: write (write, pwrite, writev, pwritev,
 *           ftruncate, fallocate), fsync (fsync, fdatasync, msync,
 *           sync_file_range), open (open/openat/creat with O_CREAT), all.
 *           Default: all.
 *   COUNT   fail at most COUNT matching calls (counted from the moment
 *           the control file last changed), then pass.  Default: forever.
 *   Examples: "wal:ENOSPC"  "wal:EIO:fsync"  "lmdb:ENOSPC"  "any:EIO:write:1"
 *
 * Which file an fd is: readlink(/proc/self/fd/N), cached per fd and
 * validated with fstat (dev, inode), so a reused fd number (closed through
 * a path we do not see, e.g. fclose) is never mistaken for the old file.
 * Sockets and pipes are never under a directory, so client and replication
 * traffic is never affected.  Nothing is looked up while no rule is active.
 *
 * Intercepted: write, pwrite(64), writev, pwritev(64), pwritev2(64),
 * fsync, fdatasync, msync, sync_file_range, ftruncate(64), fallocate(64),
 * posix_fallocate(64), open(64), openat(64), __open_2, __open64_2,
 * __openat_2, __openat64_2, creat(64).  LMDB (liblmdb.so.0 on Debian 12)
 * imports pwrite, writev, write, fdatasync, fsync, msync, ftruncate, open;
 * cairn's WAL uses write, fdatasync, fsync, open.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#define OP_WRITE 1u
#define OP_FSYNC 2u
#define OP_OPEN 4u
#define OP_ALL (OP_WRITE | OP_FSYNC | OP_OPEN)

#define CLASS_UNKNOWN 0   /* cache slot empty */
#define CLASS_OUTSIDE 1
#define CLASS_WAL 2
#define CLASS_LMDB 3
#define CLASS_OTHER 4     /* under FAIL_DIR, not wal/ or lmdb/ */
#define CLASS_LMDB_META 5 /* lmdb/, opened O_DSYNC: LMDB's meta-page fd */
#define TARGET_LMDB_ANY (-1)

#define MAX_RULES 16
#define FD_CACHE 65536

struct rule {
	int target;          /* CLASS_WAL, CLASS_LMDB, or 0 for any */
	int err;             /* 0 with delay_ms or hold: slow, not failing */
	int delay_ms;
	bool hold;           /* wait while this rule is in the control file */
	unsigned ops;
	long count;          /* < 0: forever */
};

struct fd_entry {
	dev_t dev;
	ino_t ino;
	int cls;
	char path[128];      /* for the log only (truncated) */
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static int inited;
static char fail_dir[PATH_MAX];
static size_t fail_dir_len;
static char ctl_path[PATH_MAX];
static char log_path[PATH_MAX];
static int log_fd = -1;

static struct stat ctl_seen;    /* what the rules were read from */
static int ctl_present;
static struct rule rules[MAX_RULES];
static int nrules;
static struct fd_entry *fds;    /* FD_CACHE entries, allocated lazily */

/******** THE REAL FUNCTIONS ********/

#define REAL(name) real_##name
#define DECLARE_REAL(ret, name, ...) static ret (*real_##name)(__VA_ARGS__)
#define LOAD(name) \
	do { \
		if (real_##name == NULL) \
			real_##name = (__typeof__(real_##name))dlsym(RTLD_NEXT, #name); \
	} while (0)

DECLARE_REAL(ssize_t, write, int, const void *, size_t);
DECLARE_REAL(ssize_t, pwrite, int, const void *, size_t, off_t);
DECLARE_REAL(ssize_t, pwrite64, int, const void *, size_t, off64_t);
DECLARE_REAL(ssize_t, writev, int, const struct iovec *, int);
DECLARE_REAL(ssize_t, pwritev, int, const struct iovec *, int, off_t);
DECLARE_REAL(ssize_t, pwritev64, int, const struct iovec *, int, off64_t);
DECLARE_REAL(ssize_t, pwritev2, int, const struct iovec *, int, off_t, int);
DECLARE_REAL(ssize_t, pwritev64v2, int, const struct iovec *, int, off64_t, int);
DECLARE_REAL(int, fsync, int);
DECLARE_REAL(int, fdatasync, int);
DECLARE_REAL(int, msync, void *, size_t, int);
DECLARE_REAL(int, sync_file_range, int, off64_t, off64_t, unsigned int);
DECLARE_REAL(int, ftruncate, int, off_t);
DECLARE_REAL(int, ftruncate64, int, off64_t);
DECLARE_REAL(int, fallocate, int, int, off_t, off_t);
DECLARE_REAL(int, fallocate64, int, int, off64_t, off64_t);
DECLARE_REAL(int, posix_fallocate, int, off_t, off_t);
DECLARE_REAL(int, posix_fallocate64, int, off64_t, off64_t);
DECLARE_REAL(int, open, const char *, int, ...);
DECLARE_REAL(int, open64, const char *, int, ...);
DECLARE_REAL(int, openat, int, const char *, int, ...);
DECLARE_REAL(int, openat64, int, const char *, int, ...);
DECLARE_REAL(int, __open_2, const char *, int);
DECLARE_REAL(int, __open64_2, const char *, int);
DECLARE_REAL(int, __openat_2, int, const char *, int);
DECLARE_REAL(int, __openat64_2, int, const char *, int);
DECLARE_REAL(int, creat, const char *, mode_t);
DECLARE_REAL(int, creat64, const char *, mode_t);

/* glibc declares these only under _FORTIFY_SOURCE. */
int __open_2(const char *path, int flags);
int __open64_2(const char *path, int flags);
int __openat_2(int dirfd, const char *path, int flags);
int __openat64_2(int dirfd, const char *path, int flags);

/******** CONFIGURATION ********/

static void
init_locked(void)
{
	const char *d, *c, *l;
	char resolved[PATH_MAX];

	if (inited)
		return;
	inited = 1;
	d = getenv("CAIRN_FAIL_DIR");
	c = getenv("CAIRN_FAIL_CTL");
	l = getenv("CAIRN_FAIL_LOG");
	if (d != NULL && *d != '\0') {
		if (realpath(d, resolved) != NULL)
			d = resolved;
		snprintf(fail_dir, sizeof(fail_dir), "%s", d);
		fail_dir_len = strlen(fail_dir);
		while (fail_dir_len > 1 && fail_dir[fail_dir_len - 1] == '/')
			fail_dir[--fail_dir_len] = '\0';
	}
	if (c != NULL)
		snprintf(ctl_path, sizeof(ctl_path), "%s", c);
	if (l != NULL)
		snprintf(log_path, sizeof(log_path), "%s", l);
}

static int
errno_by_name(const char *s)
{
	static const struct { const char *name; int err; } names[] = {
		{"ENOSPC", ENOSPC}, {"EIO", EIO}, {"EDQUOT", EDQUOT},
		{"EROFS", EROFS}, {"EFBIG", EFBIG}, {"EACCES", EACCES},
		{"EPERM", EPERM}, {"ENOMEM", ENOMEM},
	};
	size_t i;

	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if (strcmp(s, names[i].name) == 0)
			return names[i].err;
	}
	if (*s >= '0' && *s <= '9')
		return atoi(s);
	return 0;
}

static const char *
errno_name(int err)
{
	switch (err) {
	case ENOSPC: return "ENOSPC";
	case EIO: return "EIO";
	case EDQUOT: return "EDQUOT";
	case EROFS: return "EROFS";
	case EFBIG: return "EFBIG";
	default: return "E?";
	}
}

/* One rule "TARGET:ERRNO[:OPS[:COUNT]]" (modified in place). */
static void
parse_rule(char *s)
{
	char *field[4] = {NULL, NULL, NULL, NULL};
	struct rule r = {.ops = OP_ALL, .count = -1};
	int n = 0;
	char *save = NULL, *p;

	for (p = strtok_r(s, ":", &save); p != NULL && n < 4; p = strtok_r(NULL, ":", &save))
		field[n++] = p;
	if (n < 2 || nrules >= MAX_RULES)
		return;
	if (strcmp(field[0], "wal") == 0)
		r.target = CLASS_WAL;
	else if (strcmp(field[0], "lmdb") == 0)
		r.target = TARGET_LMDB_ANY;
	else if (strcmp(field[0], "lmdbdata") == 0)
		r.target = CLASS_LMDB;
	else if (strcmp(field[0], "lmdbmeta") == 0)
		r.target = CLASS_LMDB_META;
	else if (strcmp(field[0], "any") == 0 || strcmp(field[0], "all") == 0)
		r.target = 0;
	else
		return;
	if (strncmp(field[1], "delay", 5) == 0)
		r.delay_ms = atoi(field[1] + 5);
	else if (strcmp(field[1], "hold") == 0)
		r.hold = true;
	else if ((r.err = errno_by_name(field[1])) == 0)
		return;
	if (r.err == 0 && r.delay_ms <= 0 && !r.hold)
		return;
	if (n >= 3 && *field[2] != '\0') {
		char *save2 = NULL, *op;

		r.ops = 0;
		for (op = strtok_r(field[2], ",", &save2); op != NULL; op = strtok_r(NULL, ",", &save2)) {
			if (strcmp(op, "write") == 0)
				r.ops |= OP_WRITE;
			else if (strcmp(op, "fsync") == 0 || strcmp(op, "sync") == 0)
				r.ops |= OP_FSYNC;
			else if (strcmp(op, "open") == 0)
				r.ops |= OP_OPEN;
			else if (strcmp(op, "all") == 0)
				r.ops |= OP_ALL;
		}
		if (r.ops == 0)
			return;
	}
	if (n >= 4)
		r.count = atol(field[3]);
	rules[nrules++] = r;
}

/* Re-read the control file if it changed since we last looked. */
static void
refresh_locked(void)
{
	struct stat st;
	char buf[2048];
	ssize_t n, got = 0;
	int fd;
	char *save = NULL, *tok;

	if (ctl_path[0] == '\0' || fail_dir_len == 0)
		return;
	if (stat(ctl_path, &st) != 0) {
		ctl_present = 0;
		nrules = 0;
		return;
	}
	if (ctl_present && st.st_ino == ctl_seen.st_ino && st.st_dev == ctl_seen.st_dev &&
	    st.st_size == ctl_seen.st_size && st.st_mtim.tv_sec == ctl_seen.st_mtim.tv_sec &&
	    st.st_mtim.tv_nsec == ctl_seen.st_mtim.tv_nsec)
		return;
	ctl_present = 1;
	ctl_seen = st;
	nrules = 0;
	/* The raw syscall: our own open() wrapper must not recurse here. */
	fd = (int)syscall(SYS_openat, AT_FDCWD, ctl_path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	while (got < (ssize_t)sizeof(buf) - 1 &&
	       (n = syscall(SYS_read, fd, buf + got, sizeof(buf) - 1 - (size_t)got)) > 0)
		got += n;
	syscall(SYS_close, fd);
	buf[got] = '\0';
	for (tok = strtok_r(buf, " \t\r\n;", &save); tok != NULL; tok = strtok_r(NULL, " \t\r\n;", &save))
		parse_rule(tok);
}

/******** WHICH FILE ********/

/* Copy with truncation (snprintf("%s") into a smaller buffer trips
 * -Werror=format-truncation). */
static void
copy_str(char *dst, size_t cap, const char *src)
{
	size_t n = strlen(src);

	if (n >= cap)
		n = cap - 1;
	memcpy(dst, src, n);
	dst[n] = '\0';
}

static int
classify_path(const char *abs)
{
	const char *rest;

	if (fail_dir_len == 0 || strncmp(abs, fail_dir, fail_dir_len) != 0)
		return CLASS_OUTSIDE;
	rest = abs + fail_dir_len;
	if (*rest != '/')
		return *rest == '\0' ? CLASS_OTHER : CLASS_OUTSIDE;
	rest++;
	if (strncmp(rest, "wal/", 4) == 0 || strcmp(rest, "wal") == 0)
		return CLASS_WAL;
	if (strncmp(rest, "lmdb/", 5) == 0 || strcmp(rest, "lmdb") == 0)
		return CLASS_LMDB;
	return CLASS_OTHER;
}

static int
classify_fd_locked(int fd, const char **path_out)
{
	char lnk[64], target[PATH_MAX];
	struct stat st;
	struct fd_entry *e;
	ssize_t n;

	*path_out = "?";
	if (fd < 0)
		return CLASS_OUTSIDE;
	if (fstat(fd, &st) != 0 || !(S_ISREG(st.st_mode) || S_ISDIR(st.st_mode)))
		return CLASS_OUTSIDE;  /* sockets, pipes, ttys: never */
	if (fds == NULL)
		fds = calloc(FD_CACHE, sizeof(*fds));
	e = fds != NULL && fd < FD_CACHE ? &fds[fd] : NULL;
	if (e != NULL && e->cls != CLASS_UNKNOWN && e->dev == st.st_dev && e->ino == st.st_ino) {
		*path_out = e->path;
		return e->cls;
	}
	snprintf(lnk, sizeof(lnk), "/proc/self/fd/%d", fd);
	n = readlink(lnk, target, sizeof(target) - 1);
	if (n <= 0)
		return CLASS_OUTSIDE;
	target[n] = '\0';
	if (e == NULL)
		return classify_path(target);
	e->dev = st.st_dev;
	e->ino = st.st_ino;
	e->cls = classify_path(target);
	if (e->cls == CLASS_LMDB) {
		int fl = fcntl(fd, F_GETFL);

		if (fl >= 0 && (fl & O_DSYNC) == O_DSYNC)
			e->cls = CLASS_LMDB_META;
	}
	copy_str(e->path, sizeof(e->path), target);
	*path_out = e->path;
	return e->cls;
}

/* Absolute form of `path` (relative to dirfd), parent resolved: the file
 * itself may not exist yet. */
static int
classify_open_locked(int dirfd, const char *path)
{
	char base[PATH_MAX], joined[PATH_MAX * 2], parent[PATH_MAX], resolved[PATH_MAX];
	char *slash;

	if (path == NULL)
		return CLASS_OUTSIDE;
	if (path[0] == '/') {
		snprintf(joined, sizeof(joined), "%s", path);
	} else {
		if (dirfd == AT_FDCWD) {
			if (getcwd(base, sizeof(base)) == NULL)
				return CLASS_OUTSIDE;
		} else {
			char lnk[64];
			ssize_t n;

			snprintf(lnk, sizeof(lnk), "/proc/self/fd/%d", dirfd);
			n = readlink(lnk, base, sizeof(base) - 1);
			if (n <= 0)
				return CLASS_OUTSIDE;
			base[n] = '\0';
		}
		snprintf(joined, sizeof(joined), "%s/%s", base, path);
	}
	copy_str(parent, sizeof(parent), joined);
	slash = strrchr(parent, '/');
	if (slash == NULL)
		return CLASS_OUTSIDE;
	if (slash == parent)
		slash[1] = '\0';
	else
		*slash = '\0';
	if (realpath(parent, resolved) == NULL)
		return classify_path(joined);
	snprintf(joined, sizeof(joined), "%s/%s", resolved, strrchr(path, '/') ? strrchr(path, '/') + 1 : path);
	return classify_path(joined);
}

/******** THE DECISION ********/

static void
log_injection(const char *op, int err, const char *path)
{
	char line[512];
	int n;

	if (log_path[0] == '\0')
		return;
	if (log_fd < 0)
		log_fd = (int)syscall(SYS_openat, AT_FDCWD, log_path,
		                      O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
	if (log_fd < 0)
		return;
	n = snprintf(line, sizeof(line), "%s %s %s\n", op, err != 0 ? errno_name(err) : "delay", path);
	if (n > 0)
		syscall(SYS_write, log_fd, line, (size_t)(n < (int)sizeof(line) ? n : (int)sizeof(line) - 1));
}

static __thread int pending_delay_ms;   /* sleep before the real call */
static __thread int pending_hold_cls;   /* wait while a hold rule matches */
static __thread unsigned pending_hold_op;

/* Returns the errno to fail with, or 0 to let the call through (after
 * pending_delay_ms, for a delay rule). */
static int
match_locked(int cls, unsigned op)
{
	int i;

	for (i = 0; i < nrules; i++) {
		struct rule *r = &rules[i];

		if (!(r->ops & op) || r->count == 0)
			continue;
		if (r->target == TARGET_LMDB_ANY ? (cls != CLASS_LMDB && cls != CLASS_LMDB_META)
		                                 : (r->target != 0 && r->target != cls))
			continue;
		if (cls == CLASS_OUTSIDE)
			continue;
		if (r->count > 0)
			r->count--;
		if (r->hold) {
			pending_hold_cls = cls;
			pending_hold_op = op;
			continue;   /* a hold; a later rule may still fail the call */
		}
		if (r->err == 0) {
			pending_delay_ms = r->delay_ms;
			continue;   /* a delay; a later rule may still fail the call */
		}
		return r->err;
	}
	return 0;
}

/* Is a hold rule for this class and operation still in the control file?
 * (caller holds lock) */
static bool
still_held_locked(int cls, unsigned op)
{
	for (int i = 0; i < nrules; i++) {
		const struct rule *r = &rules[i];

		if (r->hold && (r->ops & op) &&
		    (r->target == TARGET_LMDB_ANY ? (cls == CLASS_LMDB || cls == CLASS_LMDB_META)
		                                  : (r->target == 0 || r->target == cls)))
			return true;
	}
	return false;
}

#define HOLD_MAX_MS 120000   /* a forgotten hold rule still ends */

static void
take_delay(void)
{
	if (pending_hold_op != 0) {
		const struct timespec tick = {0, 10 * 1000000L};
		int waited = 0;
		bool held = true;

		while (held && waited < HOLD_MAX_MS) {
			nanosleep(&tick, NULL);
			waited += 10;
			pthread_mutex_lock(&lock);
			refresh_locked();
			held = still_held_locked(pending_hold_cls, pending_hold_op);
			pthread_mutex_unlock(&lock);
		}
		pending_hold_op = 0;
	}
	if (pending_delay_ms > 0) {
		struct timespec ts = {pending_delay_ms / 1000, (long)(pending_delay_ms % 1000) * 1000000L};

		pending_delay_ms = 0;
		nanosleep(&ts, NULL);
	}
}

static int
should_fail_fd(int fd, unsigned op, const char *opname)
{
	const char *path;
	int err = 0, saved = errno;

	pthread_mutex_lock(&lock);
	init_locked();
	refresh_locked();
	if (nrules > 0) {
		int cls = classify_fd_locked(fd, &path);

		err = match_locked(cls, op);
		if (err != 0 || pending_delay_ms > 0 || pending_hold_op != 0)
			log_injection(opname, err, path);
	}
	pthread_mutex_unlock(&lock);
	take_delay();
	errno = saved;
	return err;
}

static int
should_fail_open(int dirfd, const char *path, int flags, const char *opname)
{
	int err = 0, saved = errno;

	if (!(flags & O_CREAT))
		return 0;
	pthread_mutex_lock(&lock);
	init_locked();
	refresh_locked();
	if (nrules > 0) {
		err = match_locked(classify_open_locked(dirfd, path), OP_OPEN);
		if (err != 0 || pending_delay_ms > 0 || pending_hold_op != 0)
			log_injection(opname, err, path);
	}
	pthread_mutex_unlock(&lock);
	take_delay();
	errno = saved;
	return err;
}

/* msync: which file is mapped at addr?  /proc/self/maps (rarely called). */
static int
should_fail_msync(void *addr)
{
	char line[PATH_MAX + 128], path[PATH_MAX];
	uintptr_t a = (uintptr_t)addr;
	int err = 0, saved = errno, fd;
	FILE *f;

	pthread_mutex_lock(&lock);
	init_locked();
	refresh_locked();
	if (nrules == 0) {
		pthread_mutex_unlock(&lock);
		return 0;
	}
	fd = (int)syscall(SYS_openat, AT_FDCWD, "/proc/self/maps", O_RDONLY | O_CLOEXEC);
	f = fd >= 0 ? fdopen(fd, "r") : NULL;
	path[0] = '\0';
	while (f != NULL && fgets(line, sizeof(line), f) != NULL) {
		unsigned long lo, hi;
		int off = 0;

		if (sscanf(line, "%lx-%lx %*s %*s %*s %*s %n", &lo, &hi, &off) >= 2 &&
		    a >= lo && a < hi && off > 0) {
			copy_str(path, sizeof(path), line + off);
			path[strcspn(path, "\n")] = '\0';
			break;
		}
	}
	if (f != NULL)
		fclose(f);
	else if (fd >= 0)
		syscall(SYS_close, fd);
	if (path[0] == '/') {
		err = match_locked(classify_path(path), OP_FSYNC);
		if (err != 0)
			log_injection("msync", err, path);
	}
	pthread_mutex_unlock(&lock);
	errno = saved;
	return err;
}

#define FAIL_IF(cond_err) \
	do { \
		int e_ = (cond_err); \
		if (e_ != 0) { \
			errno = e_; \
			return -1; \
		} \
	} while (0)

/******** WRITES ********/

ssize_t
write(int fd, const void *buf, size_t n)
{
	LOAD(write);
	FAIL_IF(should_fail_fd(fd, OP_WRITE, "write"));
	return REAL(write)(fd, buf, n);
}

ssize_t
pwrite(int fd, const void *buf, size_t n, off_t off)
{
	LOAD(pwrite);
	FAIL_IF(should_fail_fd(fd, OP_WRITE, "pwrite"));
	return REAL(pwrite)(fd, buf, n, off);
}

ssize_t
pwrite64(int fd, const void *buf, size_t n, off64_t off)
{
	LOAD(pwrite64);
	FAIL_IF(should_fail_fd(fd, OP_WRITE, "pwrite64"));
	return REAL(pwrite64)(fd, buf, n, off);
}

ssize_t
writev(int fd, const struct iovec *iov, int cnt)
{
	LOAD(writev);
	FAIL_IF(should_fail_fd(fd, OP_WRITE, "writev"));
	return REAL(writev)(fd, iov, cnt);
}

ssize_t
pwritev(int fd, const struct iovec *iov, int cnt, off_t off)
{
	LOAD(pwritev);
	FAIL_IF(should_fail_fd(fd, OP_WRITE, "pwritev"));
	return REAL(pwritev)(fd, iov, cnt, off);
}

ssize_t
pwritev64(int fd, const struct iovec *iov, int cnt, off64_t off)
{
	LOAD(pwritev64);
	FAIL_IF(should_fail_fd(fd, OP_WRITE, "pwritev64"));
	return REAL(pwritev64)(fd, iov, cnt, off);
}

ssize_t
pwritev2(int fd, const struct iovec *iov, int cnt, off_t off, int flags)
{
	LOAD(pwritev2);
	FAIL_IF(should_fail_fd(fd, OP_WRITE, "pwritev2"));
	return REAL(pwritev2)(fd, iov, cnt, off, flags);
}

ssize_t
pwritev64v2(int fd, const struct iovec *iov, int cnt, off64_t off, int flags)
{
	LOAD(pwritev64v2);
	FAIL_IF(should_fail_fd(fd, OP_WRITE, "pwritev64v2"));
	return REAL(pwritev64v2)(fd, iov, cnt, off, flags);
}

int
ftruncate(int fd, off_t len)
{
	LOAD(ftruncate);
	FAIL_IF(should_fail_fd(fd, OP_WRITE, "ftruncate"));
	return REAL(ftruncate)(fd, len);
}

int
ftruncate64(int fd, off64_t len)
{
	LOAD(ftruncate64);
	FAIL_IF(should_fail_fd(fd, OP_WRITE, "ftruncate64"));
	return REAL(ftruncate64)(fd, len);
}

int
fallocate(int fd, int mode, off_t off, off_t len)
{
	LOAD(fallocate);
	FAIL_IF(should_fail_fd(fd, OP_WRITE, "fallocate"));
	return REAL(fallocate)(fd, mode, off, len);
}

int
fallocate64(int fd, int mode, off64_t off, off64_t len)
{
	LOAD(fallocate64);
	FAIL_IF(should_fail_fd(fd, OP_WRITE, "fallocate64"));
	return REAL(fallocate64)(fd, mode, off, len);
}

/* posix_fallocate returns the error number instead of setting errno. */
int
posix_fallocate(int fd, off_t off, off_t len)
{
	int e;

	LOAD(posix_fallocate);
	if ((e = should_fail_fd(fd, OP_WRITE, "posix_fallocate")) != 0)
		return e;
	return REAL(posix_fallocate)(fd, off, len);
}

int
posix_fallocate64(int fd, off64_t off, off64_t len)
{
	int e;

	LOAD(posix_fallocate64);
	if ((e = should_fail_fd(fd, OP_WRITE, "posix_fallocate64")) != 0)
		return e;
	return REAL(posix_fallocate64)(fd, off, len);
}

/******** SYNCS ********/

int
fsync(int fd)
{
	LOAD(fsync);
	FAIL_IF(should_fail_fd(fd, OP_FSYNC, "fsync"));
	return REAL(fsync)(fd);
}

int
fdatasync(int fd)
{
	LOAD(fdatasync);
	FAIL_IF(should_fail_fd(fd, OP_FSYNC, "fdatasync"));
	return REAL(fdatasync)(fd);
}

int
sync_file_range(int fd, off64_t off, off64_t n, unsigned int flags)
{
	LOAD(sync_file_range);
	FAIL_IF(should_fail_fd(fd, OP_FSYNC, "sync_file_range"));
	return REAL(sync_file_range)(fd, off, n, flags);
}

int
msync(void *addr, size_t len, int flags)
{
	LOAD(msync);
	FAIL_IF(should_fail_msync(addr));
	return REAL(msync)(addr, len, flags);
}

/******** OPENS (only with O_CREAT) ********/

static mode_t
mode_arg(int flags, va_list ap)
{
	return (flags & O_CREAT) || (flags & O_TMPFILE) == O_TMPFILE ? (mode_t)va_arg(ap, int) : 0;
}

int
open(const char *path, int flags, ...)
{
	va_list ap;
	mode_t mode;

	va_start(ap, flags);
	mode = mode_arg(flags, ap);
	va_end(ap);
	LOAD(open);
	FAIL_IF(should_fail_open(AT_FDCWD, path, flags, "open"));
	return REAL(open)(path, flags, mode);
}

int
open64(const char *path, int flags, ...)
{
	va_list ap;
	mode_t mode;

	va_start(ap, flags);
	mode = mode_arg(flags, ap);
	va_end(ap);
	LOAD(open64);
	FAIL_IF(should_fail_open(AT_FDCWD, path, flags, "open64"));
	return REAL(open64)(path, flags, mode);
}

int
openat(int dirfd, const char *path, int flags, ...)
{
	va_list ap;
	mode_t mode;

	va_start(ap, flags);
	mode = mode_arg(flags, ap);
	va_end(ap);
	LOAD(openat);
	FAIL_IF(should_fail_open(dirfd, path, flags, "openat"));
	return REAL(openat)(dirfd, path, flags, mode);
}

int
openat64(int dirfd, const char *path, int flags, ...)
{
	va_list ap;
	mode_t mode;

	va_start(ap, flags);
	mode = mode_arg(flags, ap);
	va_end(ap);
	LOAD(openat64);
	FAIL_IF(should_fail_open(dirfd, path, flags, "openat64"));
	return REAL(openat64)(dirfd, path, flags, mode);
}

/* _FORTIFY_SOURCE entry points (no mode: O_CREAT is not allowed there). */
int
__open_2(const char *path, int flags)
{
	LOAD(__open_2);
	FAIL_IF(should_fail_open(AT_FDCWD, path, flags, "__open_2"));
	return REAL(__open_2)(path, flags);
}

int
__open64_2(const char *path, int flags)
{
	LOAD(__open64_2);
	FAIL_IF(should_fail_open(AT_FDCWD, path, flags, "__open64_2"));
	return REAL(__open64_2)(path, flags);
}

int
__openat_2(int dirfd, const char *path, int flags)
{
	LOAD(__openat_2);
	FAIL_IF(should_fail_open(dirfd, path, flags, "__openat_2"));
	return REAL(__openat_2)(dirfd, path, flags);
}

int
__openat64_2(int dirfd, const char *path, int flags)
{
	LOAD(__openat64_2);
	FAIL_IF(should_fail_open(dirfd, path, flags, "__openat64_2"));
	return REAL(__openat64_2)(dirfd, path, flags);
}

int
creat(const char *path, mode_t mode)
{
	LOAD(creat);
	FAIL_IF(should_fail_open(AT_FDCWD, path, O_CREAT, "creat"));
	return REAL(creat)(path, mode);
}

int
creat64(const char *path, mode_t mode)
{
	LOAD(creat64);
	FAIL_IF(should_fail_open(AT_FDCWD, path, O_CREAT, "creat64"));
	return REAL(creat64)(path, mode);
}
