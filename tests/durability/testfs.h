/* Helpers shared by the durability unit tests: files and directories, a
 * cache, a SET change. */
#ifndef CAIRN_TESTS_DURABILITY_TESTFS_H
#define CAIRN_TESTS_DURABILITY_TESTFS_H

#include <check.h>
#include <stddef.h>
#include <stdint.h>

#include "storage/cache.h"

/* Remove `path` and everything below it (like rm -rf); errors are ignored. */
void rm_rf(const char *path);

/* One test's fresh directory: dir (len bytes) becomes basedir/t-XXXXXX,
 * created (a failed check otherwise). */
void make_test_dir(char *dir, size_t len, const char *basedir);

/* A cache of mem_limit bytes (1 MiB items, CAS on); a failed check if
 * none. */
struct cache *test_cache(size_t mem_limit);

/* A SET of NUL-terminated key and value (pointing into them). */
struct cache_change test_set(const char *key, const char *value, uint32_t flags,
                             uint32_t exptime, uint64_t cas);

/* A unit test program's main(): make basedir (basedir_len bytes) a fresh
 * /tmp/cairn-check-<name>-XXXXXX, run the suite in it, remove it.  Returns
 * the exit status (EXIT_SUCCESS when every test passed). */
int run_suite_in_tmpdir(Suite *suite, const char *name, char *basedir, size_t basedir_len);

#endif
