/* File-system helpers shared by the durability unit tests. */
#ifndef CAIRN_TESTS_DURABILITY_TESTFS_H
#define CAIRN_TESTS_DURABILITY_TESTFS_H

/* Remove `path` and everything below it (like rm -rf); errors are ignored. */
void rm_rf(const char *path);

#endif
