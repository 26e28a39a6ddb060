/* File-system helpers shared by the durability unit tests. */
#ifndef CAIRN_TESTS_DURABILITY_TESTFS_H
#define CAIRN_TESTS_DURABILITY_TESTFS_H

#include <check.h>
#include <stddef.h>

/* Remove `path` and everything below it (like rm -rf); errors are ignored. */
void rm_rf(const char *path);

/* One test's fresh directory: dir (len bytes) becomes basedir/t-XXXXXX,
 * created (a failed check otherwise). */
void make_test_dir(char *dir, size_t len, const char *basedir);

/* A unit test program's main(): make basedir (basedir_len bytes) a fresh
 * /tmp/cairn-check-<name>-XXXXXX, run the suite in it, remove it.  Returns
 * the exit status (EXIT_SUCCESS when every test passed). */
int run_suite_in_tmpdir(Suite *suite, const char *name, char *basedir, size_t basedir_len);

#endif
