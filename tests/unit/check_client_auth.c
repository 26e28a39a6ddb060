/* Unit tests for node/client_auth.c: loading the user:password file, and
 * the three checks (a pair, SASL PLAIN's message, the ASCII `set` token). */
#include "node/client_auth.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char path[64];
static char err[512];

/* Write `text` (len bytes: it may hold NULs) to a fresh file and load it. */
static int
load(const char *text, size_t len, struct client_auth **a)
{
	int fd;

	snprintf(path, sizeof(path), "/tmp/check_client_auth.XXXXXX");
	fd = mkstemp(path);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, text, len), (ssize_t)len);
	close(fd);
	err[0] = '\0';
	return client_auth_load(path, a, err, sizeof(err));
}

static void
unload(struct client_auth *a)
{
	client_auth_free(a);
	unlink(path);
}

#define LOAD_OK(text, a) do { \
	ck_assert_msg(load((text), sizeof(text) - 1, (a)) == 0, "load failed: %s", err); \
} while (0)

#define CHECK(a, user, pw) \
	client_auth_check((a), (user), strlen(user), (pw), strlen(pw))

#define PLAIN(a, msg) client_auth_plain((a), (msg), sizeof(msg) - 1)

START_TEST(test_load_skips_empty_lines_and_crlf)
{
	struct client_auth *a;

	LOAD_OK("\nalice:secret\r\n\r\nbob:hunter2\n\ncarol:pass:with:colons", &a);
	ck_assert(CHECK(a, "alice", "secret"));
	ck_assert(CHECK(a, "bob", "hunter2"));
	ck_assert(CHECK(a, "carol", "pass:with:colons"));  /* the first ':' splits */
	ck_assert(!CHECK(a, "alice", "secret\r"));
	ck_assert(!CHECK(a, "", ""));
	unload(a);
}
END_TEST

START_TEST(test_load_empty_password_and_empty_file)
{
	struct client_auth *a;

	LOAD_OK("nopass:\n", &a);
	ck_assert(CHECK(a, "nopass", ""));
	ck_assert(!CHECK(a, "nopass", "x"));
	unload(a);
	LOAD_OK("", &a);
	ck_assert(!CHECK(a, "", ""));
	unload(a);
}
END_TEST

START_TEST(test_malformed_line_is_named_file_colon_line)
{
	static const char text[] = "alice:secret\n\nno colon here\nbob:x\n";
	struct client_auth *a = (struct client_auth *)1;
	char want[128];

	ck_assert_int_eq(load(text, sizeof(text) - 1, &a), -1);
	ck_assert_ptr_null(a);
	snprintf(want, sizeof(want), "%s:3: malformed entry", path);
	ck_assert_msg(strncmp(err, want, strlen(want)) == 0, "error '%s', want '%s...'", err, want);
	unlink(path);
}
END_TEST

START_TEST(test_missing_file_is_an_error)
{
	struct client_auth *a;

	ck_assert_int_eq(client_auth_load("/nonexistent/auth", &a, err, sizeof(err)), -1);
	ck_assert_ptr_null(a);
	ck_assert_ptr_nonnull(strstr(err, "/nonexistent/auth"));
	ck_assert_ptr_nonnull(strstr(err, "No such file"));
}
END_TEST

START_TEST(test_check_needs_exact_user_and_password)
{
	struct client_auth *a;

	LOAD_OK("alice:secret\nbob:hunter2\n", &a);
	ck_assert(CHECK(a, "alice", "secret"));
	ck_assert(!CHECK(a, "alice", "hunter2"));   /* another user's password */
	ck_assert(!CHECK(a, "ALICE", "secret"));
	ck_assert(!CHECK(a, "alice", "secre"));
	ck_assert(!CHECK(a, "alice", "secret2"));
	ck_assert(!CHECK(a, "alic", "secret"));
	unload(a);
}
END_TEST

START_TEST(test_plain_authzid)
{
	struct client_auth *a;

	LOAD_OK("alice:secret\nbob:hunter2\n", &a);
	ck_assert(PLAIN(a, "\0alice\0secret"));          /* empty authzid */
	ck_assert(PLAIN(a, "alice\0alice\0secret"));     /* authzid = user */
	ck_assert(!PLAIN(a, "bob\0alice\0secret"));      /* acting as another user */
	ck_assert(!PLAIN(a, "alic\0alice\0secret"));
	ck_assert(!PLAIN(a, "\0alice\0wrong"));
	ck_assert(!PLAIN(a, "\0nobody\0secret"));
	unload(a);
}
END_TEST

START_TEST(test_plain_malformed_messages)
{
	struct client_auth *a;

	LOAD_OK("alice:secret\n", &a);
	ck_assert(!PLAIN(a, ""));
	ck_assert(!PLAIN(a, "alice secret"));            /* no NUL at all */
	ck_assert(!PLAIN(a, "\0alicesecret"));           /* one NUL */
	ck_assert(!PLAIN(a, "\0alice\0secret\0"));       /* a third NUL */
	ck_assert(!PLAIN(a, "\0alice\0sec\0ret"));
	ck_assert(!PLAIN(a, "\0\0"));
	unload(a);
}
END_TEST

START_TEST(test_ascii_token)
{
	struct client_auth *a;

	LOAD_OK("alice:secret\n", &a);
#define TOKEN(s) client_auth_ascii_token(a, (s), strlen(s))
	ck_assert_int_eq(TOKEN("alice secret"), CLIENT_AUTH_OK);
	ck_assert_int_eq(TOKEN("  alice   secret  "), CLIENT_AUTH_OK);   /* extra spaces */
	ck_assert_int_eq(TOKEN("alice secret more tokens"), CLIENT_AUTH_OK);
	ck_assert_int_eq(TOKEN("alice wrong"), CLIENT_AUTH_FAILURE);
	ck_assert_int_eq(TOKEN("Alice secret"), CLIENT_AUTH_FAILURE);
	ck_assert_int_eq(TOKEN("alicesecret"), CLIENT_AUTH_BAD_FORMAT);  /* one token */
	ck_assert_int_eq(TOKEN("   alice   "), CLIENT_AUTH_BAD_FORMAT);
	ck_assert_int_eq(TOKEN(""), CLIENT_AUTH_BAD_FORMAT);
#undef TOKEN
	unload(a);
}
END_TEST

static Suite *
client_auth_suite(void)
{
	Suite *su = suite_create("client_auth");
	TCase *tc = tcase_create("load");

	tcase_add_test(tc, test_load_skips_empty_lines_and_crlf);
	tcase_add_test(tc, test_load_empty_password_and_empty_file);
	tcase_add_test(tc, test_malformed_line_is_named_file_colon_line);
	tcase_add_test(tc, test_missing_file_is_an_error);
	suite_add_tcase(su, tc);

	tc = tcase_create("checks");
	tcase_add_test(tc, test_check_needs_exact_user_and_password);
	tcase_add_test(tc, test_plain_authzid);
	tcase_add_test(tc, test_plain_malformed_messages);
	tcase_add_test(tc, test_ascii_token);
	suite_add_tcase(su, tc);
	return su;
}

int
main(void)
{
	SRunner *sr = srunner_create(client_auth_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
