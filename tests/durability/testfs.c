/* File-system helpers shared by the durability unit tests. */
#include "tests/durability/testfs.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

void
rm_rf(const char *path)
{
	struct stat st;

	if (lstat(path, &st) != 0)
		return;
	if (S_ISDIR(st.st_mode)) {
		DIR *d = opendir(path);
		struct dirent *de;

		while (d != NULL && (de = readdir(d)) != NULL) {
			char sub[4096];

			if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
				continue;
			snprintf(sub, sizeof(sub), "%s/%s", path, de->d_name);
			rm_rf(sub);
		}
		if (d != NULL)
			closedir(d);
		rmdir(path);
	} else {
		unlink(path);
	}
}

int
run_suite_in_tmpdir(Suite *suite, const char *name, char *basedir, size_t basedir_len)
{
	SRunner *sr;
	int failed;

	snprintf(basedir, basedir_len, "/tmp/cairn-check-%s-XXXXXX", name);
	if (mkdtemp(basedir) == NULL) {
		perror("mkdtemp");
		return EXIT_FAILURE;
	}
	sr = srunner_create(suite);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	rm_rf(basedir);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

void
make_test_dir(char *dir, size_t len, const char *basedir)
{
	snprintf(dir, len, "%s/t-XXXXXX", basedir);
	ck_assert_ptr_nonnull(mkdtemp(dir));
}

struct cache *
test_cache(size_t mem_limit)
{
	struct cache_config cfg = {
		.mem_limit = mem_limit,
		.item_size_max = 1 << 20,
		.hashpower = 10,
		.use_cas = true,
	};
	struct cache *c = cache_create(&cfg);

	ck_assert_ptr_nonnull(c);
	return c;
}

struct cache_change
test_set(const char *key, const char *value, uint32_t flags, uint32_t exptime, uint64_t cas)
{
	struct cache_change ch = {
		.type = CACHE_CHANGE_SET,
		.key = key,
		.nkey = strlen(key),
		.flags = flags,
		.exptime = exptime,
		.cas = cas,
		.value = value,
		.nbytes = (uint32_t)strlen(value),
	};

	return ch;
}
