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
