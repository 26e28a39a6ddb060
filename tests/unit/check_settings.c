/* Unit tests for node/settings.c: defaults, every flag, and the refusal of
 * bad values with an error line that names the flag. */
#include "node/settings.h"

#include <check.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_ARGS 32

static struct settings s;
static char err[512];

/* Run settings_parse() on "cairn" followed by the given arguments (NULL
 * terminated).  The strings must outlive `s` (-u and -P keep pointers), so
 * callers pass literals. */
static enum settings_result
parse(const char *first, ...)
{
	static char *argv[MAX_ARGS + 2];
	const char *arg;
	va_list ap;
	int argc = 0;

	argv[argc++] = (char *)"cairn";
	va_start(ap, first);
	for (arg = first; arg != NULL; arg = va_arg(ap, const char *)) {
		ck_assert_msg(argc <= MAX_ARGS, "too many arguments in a test");
		argv[argc++] = (char *)arg;
	}
	va_end(ap);
	argv[argc] = NULL;
	settings_free(&s);
	settings_init(&s);
	err[0] = '\0';
	return settings_parse(&s, argc, argv, err, sizeof(err));
}

#define ASSERT_RUN(call) do { \
	enum settings_result r_ = (call); \
	ck_assert_msg(r_ == SETTINGS_RUN, "%s returned %d, expected SETTINGS_RUN; err '%s'", \
	              #call, (int)r_, err); \
} while (0)

/* The arguments are refused with SETTINGS_EXIT_USAGE and an error line that
 * mentions `flag` and has no newline. */
#define ASSERT_USAGE(flag, ...) do { \
	enum settings_result r_ = parse(__VA_ARGS__, (const char *)NULL); \
	ck_assert_msg(r_ == SETTINGS_EXIT_USAGE, "%s: settings_parse returned %d, expected " \
	              "SETTINGS_EXIT_USAGE (err '%s')", #__VA_ARGS__, (int)r_, err); \
	ck_assert_msg(strstr(err, (flag)) != NULL, "%s: error line '%s' does not name '%s'", \
	              #__VA_ARGS__, err, (flag)); \
	ck_assert_msg(strchr(err, '\n') == NULL, "%s: error line '%s' contains a newline", \
	              #__VA_ARGS__, err); \
} while (0)

START_TEST(test_defaults_without_arguments)
{
	ASSERT_RUN(parse(NULL));
	ck_assert_msg(s.port == 11211, "port %d, expected 11211", s.port);
	ck_assert_msg(strcmp(s.listen_addr, "127.0.0.1") == 0, "listen '%s'", s.listen_addr);
	ck_assert_msg(s.mem_limit == (size_t)64 << 20, "mem_limit %zu, expected 64 MB", s.mem_limit);
	ck_assert_msg(s.conn_limit == 1024, "conn_limit %d", s.conn_limit);
	ck_assert_msg(s.threads == 4, "threads %d", s.threads);
	ck_assert_msg(s.item_size_max == 1024 * 1024, "item_size_max %zu", s.item_size_max);
	ck_assert_msg(s.verbose == 0, "verbose %d", s.verbose);
	ck_assert_msg(s.use_cas && s.flush_enabled, "use_cas %d flush_enabled %d", s.use_cas,
	              s.flush_enabled);
	ck_assert_msg(s.user == NULL && s.pid_file == NULL, "user %p pid_file %p",
	              (const void *)s.user, (const void *)s.pid_file);
	ck_assert_msg(!s.daemonize, "daemonize by default");
	ck_assert_msg(s.hashpower == 16, "hashpower %u", s.hashpower);
	ck_assert_msg(s.sweeper, "sweeper off by default");
}
END_TEST

START_TEST(test_port_flag_sets_port)
{
	ASSERT_RUN(parse("-p", "12345", NULL));
	ck_assert_msg(s.port == 12345, "-p 12345 gave port %d", s.port);
	ASSERT_RUN(parse("--port", "1", NULL));
	ck_assert_msg(s.port == 1, "--port 1 gave port %d", s.port);
	ASSERT_RUN(parse("-p65535", NULL));
	ck_assert_msg(s.port == 65535, "-p65535 gave port %d", s.port);
}
END_TEST

START_TEST(test_listen_flag_sets_address)
{
	ASSERT_RUN(parse("-l", "0.0.0.0", NULL));
	ck_assert_msg(strcmp(s.listen_addr, "0.0.0.0") == 0, "-l 0.0.0.0 gave '%s'", s.listen_addr);
	ASSERT_RUN(parse("--listen", "::1", NULL));
	ck_assert_msg(strcmp(s.listen_addr, "::1") == 0, "--listen ::1 gave '%s'", s.listen_addr);
}
END_TEST

START_TEST(test_memory_flag_sets_megabytes)
{
	ASSERT_RUN(parse("-m", "128", NULL));
	ck_assert_msg(s.mem_limit == (size_t)128 << 20, "-m 128 gave %zu bytes", s.mem_limit);
	ASSERT_RUN(parse("--memory-limit", "1", NULL));
	ck_assert_msg(s.mem_limit == (size_t)1 << 20, "-m 1 gave %zu bytes", s.mem_limit);
}
END_TEST

START_TEST(test_conn_limit_flag_sets_limit)
{
	ASSERT_RUN(parse("-c", "10", NULL));
	ck_assert_msg(s.conn_limit == 10, "-c 10 gave %d", s.conn_limit);
}
END_TEST

START_TEST(test_threads_flag_sets_threads)
{
	ASSERT_RUN(parse("-t", "8", NULL));
	ck_assert_msg(s.threads == 8, "-t 8 gave %d", s.threads);
	ASSERT_RUN(parse("--threads", "1", NULL));
	ck_assert_msg(s.threads == 1, "-t 1 gave %d", s.threads);
}
END_TEST

START_TEST(test_item_size_flag_takes_k_and_m_suffixes)
{
	ASSERT_RUN(parse("-I", "2m", NULL));
	ck_assert_msg(s.item_size_max == (size_t)2 << 20, "-I 2m gave %zu", s.item_size_max);
	ASSERT_RUN(parse("-I", "512k", NULL));
	ck_assert_msg(s.item_size_max == 512 * 1024, "-I 512k gave %zu", s.item_size_max);
	ASSERT_RUN(parse("-I", "4K", NULL));
	ck_assert_msg(s.item_size_max == 4096, "-I 4K gave %zu", s.item_size_max);
	ASSERT_RUN(parse("-I", "1024", NULL));
	ck_assert_msg(s.item_size_max == 1024, "-I 1024 gave %zu", s.item_size_max);
	ASSERT_RUN(parse("--max-item-size", "3M", NULL));
	ck_assert_msg(s.item_size_max == (size_t)3 << 20, "-I 3M gave %zu", s.item_size_max);
}
END_TEST

START_TEST(test_item_size_up_to_half_of_memory_is_accepted)
{
	ASSERT_RUN(parse("-m", "2", "-I", "1m", NULL));
	ck_assert_msg(s.item_size_max == 1 << 20 && s.mem_limit == (size_t)2 << 20,
	              "-m 2 -I 1m gave item %zu mem %zu", s.item_size_max, s.mem_limit);
	ASSERT_RUN(parse("-I", "1m", "-m", "2", NULL));
	ck_assert_msg(s.item_size_max == 1 << 20, "-I 1m -m 2 gave item %zu", s.item_size_max);
}
END_TEST

START_TEST(test_verbose_flags_count_up_to_two)
{
	ASSERT_RUN(parse("-v", NULL));
	ck_assert_msg(s.verbose == 1, "-v gave %d", s.verbose);
	ASSERT_RUN(parse("-vv", NULL));
	ck_assert_msg(s.verbose == 2, "-vv gave %d", s.verbose);
	ASSERT_RUN(parse("-v", "-v", "-v", NULL));
	ck_assert_msg(s.verbose == 2, "-v -v -v gave %d, expected 2", s.verbose);
	ASSERT_RUN(parse("--verbose", NULL));
	ck_assert_msg(s.verbose == 1, "--verbose gave %d", s.verbose);
}
END_TEST

START_TEST(test_udp_port_zero_is_accepted)
{
	ASSERT_RUN(parse("-U", "0", NULL));
	ck_assert_msg(s.port == 11211, "-U 0 changed the TCP port to %d", s.port);
}
END_TEST

START_TEST(test_switch_flags_set_their_booleans)
{
	ASSERT_RUN(parse("-C", NULL));
	ck_assert_msg(!s.use_cas && s.flush_enabled, "-C: use_cas %d flush_enabled %d", s.use_cas,
	              s.flush_enabled);
	ASSERT_RUN(parse("-F", NULL));
	ck_assert_msg(s.use_cas && !s.flush_enabled, "-F: use_cas %d flush_enabled %d", s.use_cas,
	              s.flush_enabled);
	ASSERT_RUN(parse("-d", NULL));
	ck_assert_msg(s.daemonize, "-d did not set daemonize");
	ASSERT_RUN(parse("--disable-cas", "--disable-flush-all", "--daemon", NULL));
	ck_assert_msg(!s.use_cas && !s.flush_enabled && s.daemonize,
	              "long forms: use_cas %d flush_enabled %d daemonize %d", s.use_cas,
	              s.flush_enabled, s.daemonize);
	ASSERT_RUN(parse("-CFd", NULL));
	ck_assert_msg(!s.use_cas && !s.flush_enabled && s.daemonize,
	              "-CFd: use_cas %d flush_enabled %d daemonize %d", s.use_cas,
	              s.flush_enabled, s.daemonize);
}
END_TEST

START_TEST(test_user_and_pidfile_flags_keep_their_values)
{
	ASSERT_RUN(parse("-u", "nobody", "-P", "/tmp/cairn.pid", NULL));
	ck_assert_msg(s.user != NULL && strcmp(s.user, "nobody") == 0, "-u nobody gave '%s'",
	              s.user ? s.user : "(null)");
	ck_assert_msg(s.pid_file != NULL && strcmp(s.pid_file, "/tmp/cairn.pid") == 0,
	              "-P gave '%s'", s.pid_file ? s.pid_file : "(null)");
}
END_TEST

/* -d changes directory to /: every path is made absolute at parse time. */
START_TEST(test_paths_are_made_absolute)
{
	char cwd[PATH_MAX], want[PATH_MAX + 64];

	ck_assert(getcwd(cwd, sizeof(cwd)) != NULL);
	ASSERT_RUN(parse("-P", "x.pid", "--log-file", "./x.log", "--data-dir", "d", NULL));
	snprintf(want, sizeof(want), "%s/x.pid", cwd);
	ck_assert_str_eq(s.pid_file, want);
	snprintf(want, sizeof(want), "%s/x.log", cwd);
	ck_assert_str_eq(s.log_file, want);
	snprintf(want, sizeof(want), "%s/d", cwd);
	ck_assert_str_eq(s.data_dir, want);
}
END_TEST

/* Without --data-dir: one directory per client port. */
START_TEST(test_default_data_dir_is_per_port)
{
	char cwd[PATH_MAX], want[PATH_MAX + 64];

	ck_assert(getcwd(cwd, sizeof(cwd)) != NULL);
	ck_assert_msg(access("./cairn-data/LOCK", F_OK) != 0, "run from a directory without "
	              "an old-layout ./cairn-data");
	ASSERT_RUN(parse("-p", "11311", NULL));
	snprintf(want, sizeof(want), "%s/cairn-data/11311", cwd);
	ck_assert_str_eq(s.data_dir, want);
}
END_TEST

START_TEST(test_memcached_tuning_options_are_accepted_and_listed)
{
	ASSERT_RUN(parse("-o", "modern,slab_automove=1,lru_crawler", "-o",
	                 "slab_chunk_max=524288,hashpower=18", NULL));
	ck_assert_str_eq(s.ignored_options, "modern,slab_automove,slab_chunk_max");
	ck_assert_msg(s.hashpower == 18 && s.sweeper, "honoured options lost");
	ASSERT_USAGE("-o modern", "-o", "modern=1");
	ASSERT_USAGE("-o slab_chunk_max", "-o", "slab_chunk_max");
	ASSERT_USAGE("no_such_thing", "-o", "modern,no_such_thing");
}
END_TEST

START_TEST(test_metrics_port_is_checked)
{
	ASSERT_RUN(parse("--metrics-port", "9150", NULL));
	ck_assert_int_eq(s.metrics_port, 9150);
	ASSERT_USAGE("--metrics-port", "--metrics-port", "0");
	ASSERT_USAGE("--metrics-port", "--metrics-port", "abc");
	ASSERT_USAGE("--metrics-port", "-p", "5000", "--metrics-port", "5000");
}
END_TEST

/* A config file in /etc/memcached.conf's format; the command line wins. */
START_TEST(test_config_file_then_command_line)
{
	char path[] = "/tmp/cairn-settings-XXXXXX";
	static const char text[] = "# comment\n\n  -m 32\n-p 11999\n--fsync always\n"
	                           "logfile /var/log/x.log\n-vv\n";
	int fd = mkstemp(path);

	ck_assert(fd >= 0);
	ck_assert(write(fd, text, sizeof(text) - 1) == (ssize_t)(sizeof(text) - 1));
	close(fd);
	ASSERT_RUN(parse("--config", path, "-m", "48", NULL));
	ck_assert_msg(s.mem_limit == (size_t)48 << 20, "the command line's -m must win");
	ck_assert_int_eq(s.port, 11999);
	ck_assert_int_eq(s.fsync, WAL_FSYNC_ALWAYS);
	ck_assert_str_eq(s.log_file, "/var/log/x.log");
	ck_assert_int_eq(s.verbose, 2);
	ASSERT_USAGE("--config", "--config", path, "--config", path);
	unlink(path);
	ASSERT_USAGE("--config", "--config", path);
}
END_TEST

START_TEST(test_extended_options_set_hashpower_and_sweeper)
{
	ASSERT_RUN(parse("-o", "hashpower=20", NULL));
	ck_assert_msg(s.hashpower == 20 && s.sweeper, "-o hashpower=20: hashpower %u sweeper %d",
	              s.hashpower, s.sweeper);
	ASSERT_RUN(parse("-o", "no_lru_crawler", NULL));
	ck_assert_msg(!s.sweeper && s.hashpower == 16, "-o no_lru_crawler: sweeper %d hashpower %u",
	              s.sweeper, s.hashpower);
	ASSERT_RUN(parse("-o", "hashpower=12,no_lru_crawler", NULL));
	ck_assert_msg(s.hashpower == 12 && !s.sweeper, "combined -o: hashpower %u sweeper %d",
	              s.hashpower, s.sweeper);
	ASSERT_RUN(parse("-o", "no_lru_crawler,lru_crawler", NULL));
	ck_assert_msg(s.sweeper, "-o no_lru_crawler,lru_crawler left the sweeper off");
	ASSERT_RUN(parse("--extended", "hashpower=32", NULL));
	ck_assert_msg(s.hashpower == 32, "--extended hashpower=32 gave %u", s.hashpower);
}
END_TEST

START_TEST(test_all_flags_together)
{
	ASSERT_RUN(parse("-p", "2000", "-l", "10.0.0.1", "-m", "100", "-c", "50", "-t", "2",
	                 "-I", "2m", "-vv", "-U", "0", "-C", "-F", "-o", "hashpower=14", NULL));
	ck_assert_msg(s.port == 2000 && strcmp(s.listen_addr, "10.0.0.1") == 0 &&
	              s.mem_limit == (size_t)100 << 20 && s.conn_limit == 50 && s.threads == 2 &&
	              s.item_size_max == (size_t)2 << 20 && s.verbose == 2 && !s.use_cas &&
	              !s.flush_enabled && s.hashpower == 14,
	              "port %d listen %s mem %zu conns %d threads %d item %zu verbose %d cas %d "
	              "flush %d hashpower %u", s.port, s.listen_addr, s.mem_limit, s.conn_limit,
	              s.threads, s.item_size_max, s.verbose, s.use_cas, s.flush_enabled, s.hashpower);
}
END_TEST

/* Bad values. */

START_TEST(test_bad_port_is_refused_naming_p)
{
	ASSERT_USAGE("-p", "-p", "0");
	ASSERT_USAGE("-p", "-p", "70000");
	ASSERT_USAGE("-p", "-p", "65536");
	ASSERT_USAGE("-p", "-p", "abc");
	ASSERT_USAGE("-p", "-p", "-1");
	ASSERT_USAGE("-p", "-p", "80x");
	ASSERT_USAGE("-p", "-p", "");
	ASSERT_USAGE("--port", "--port", "0");
}
END_TEST

START_TEST(test_bad_threads_are_refused_naming_t)
{
	ASSERT_USAGE("-t", "-t", "0");
	ASSERT_USAGE("-t", "-t", "-2");
	ASSERT_USAGE("-t", "-t", "many");
	ASSERT_USAGE("-t", "-t", "257");
}
END_TEST

START_TEST(test_bad_item_size_is_refused_naming_I)
{
	ASSERT_USAGE("-I", "-I", "512");
	ASSERT_USAGE("-I", "-I", "1023");
	ASSERT_USAGE("-I", "-I", "2g");
	ASSERT_USAGE("-I", "-I", "abc");
	ASSERT_USAGE("-I", "-I", "1x");
	ASSERT_USAGE("-I", "-I", "1mb");
	ASSERT_USAGE("-I", "-I", "-1m");
	ASSERT_USAGE("-I", "-I", "");
}
END_TEST

START_TEST(test_item_size_above_half_of_memory_is_refused_naming_I)
{
	ASSERT_USAGE("-I", "-m", "1", "-I", "1m");
	ASSERT_USAGE("-I", "-I", "2m", "-m", "3");
	ASSERT_USAGE("-I", "-I", "64m");  /* default -m 64 */
}
END_TEST

START_TEST(test_bad_memory_is_refused_naming_m)
{
	ASSERT_USAGE("-m", "-m", "0");
	ASSERT_USAGE("-m", "-m", "-5");
	ASSERT_USAGE("-m", "-m", "lots");
	ASSERT_USAGE("-m", "-m", "64m");
}
END_TEST

START_TEST(test_bad_conn_limit_is_refused_naming_c)
{
	ASSERT_USAGE("-c", "-c", "0");
	ASSERT_USAGE("-c", "-c", "x");
}
END_TEST

START_TEST(test_udp_port_other_than_zero_is_refused_naming_U)
{
	ASSERT_USAGE("-U", "-U", "1");
	ASSERT_USAGE("-U", "-U", "11211");
}
END_TEST

START_TEST(test_bad_extended_options_are_refused_naming_o)
{
	ASSERT_USAGE("-o", "-o", "bogus");
	ASSERT_USAGE("bogus", "-o", "bogus");
	ASSERT_USAGE("-o", "-o", "hashpower");
	ASSERT_USAGE("-o", "-o", "hashpower=11");
	ASSERT_USAGE("-o", "-o", "hashpower=33");
	ASSERT_USAGE("-o", "-o", "hashpower=x");
	ASSERT_USAGE("-o", "-o", "no_lru_crawler=1");
	ASSERT_USAGE("-o", "-o", "hashpower=20,bogus");
}
END_TEST

START_TEST(test_bad_listen_address_is_refused_naming_l)
{
	ASSERT_USAGE("-l", "-l", "");
}
END_TEST

START_TEST(test_unknown_options_are_refused_by_name)
{
	ASSERT_USAGE("--bogus", "--bogus");
	ASSERT_USAGE("-z", "-z");
	ASSERT_USAGE("extra", "extra");
	ASSERT_USAGE("extra", "-p", "2000", "extra");
}
END_TEST

START_TEST(test_missing_value_is_refused_naming_the_flag)
{
	ASSERT_USAGE("-p", "-p");
	ASSERT_USAGE("-m", "-m");
	ASSERT_USAGE("-I", "-I");
	ASSERT_USAGE("-o", "-o");
	ASSERT_USAGE("--port", "--port");
	ASSERT_USAGE("-t", "-v", "-t");
}
END_TEST

START_TEST(test_help_and_version_exit_ok)
{
	enum settings_result r;

	r = parse("-h", NULL);
	ck_assert_msg(r == SETTINGS_EXIT_OK, "-h returned %d", (int)r);
	r = parse("--help", NULL);
	ck_assert_msg(r == SETTINGS_EXIT_OK, "--help returned %d", (int)r);
	r = parse("-V", NULL);
	ck_assert_msg(r == SETTINGS_EXIT_OK, "-V returned %d", (int)r);
	r = parse("--version", NULL);
	ck_assert_msg(r == SETTINGS_EXIT_OK, "--version returned %d", (int)r);
	r = parse("-p", "2000", "-V", NULL);
	ck_assert_msg(r == SETTINGS_EXIT_OK, "-p 2000 -V returned %d", (int)r);
	fflush(stdout);
}
END_TEST

START_TEST(test_parse_can_be_called_repeatedly)
{
	int i;

	/* A failure part-way through must not leave getopt mid-argv. */
	for (i = 0; i < 3; i++) {
		ASSERT_USAGE("-p", "-v", "-p", "0", "-t", "2");
		ASSERT_RUN(parse("-t", "3", "-p", "4000", NULL));
		ck_assert_msg(s.threads == 3 && s.port == 4000, "round %d: threads %d port %d", i,
		              s.threads, s.port);
		ASSERT_USAGE("--bogus", "-v", "--bogus");
		ASSERT_RUN(parse("-vv", NULL));
		ck_assert_msg(s.verbose == 2, "round %d: -vv gave %d", i, s.verbose);
	}
}
END_TEST

START_TEST(test_error_line_fits_a_small_buffer)
{
	char small[16];
	char *argv[] = {(char *)"cairn", (char *)"-p", (char *)"99999999999999999999", NULL};
	enum settings_result r;

	settings_init(&s);
	memset(small, 'X', sizeof(small));
	r = settings_parse(&s, 3, argv, small, sizeof(small));
	ck_assert_msg(r == SETTINGS_EXIT_USAGE, "returned %d", (int)r);
	ck_assert_msg(memchr(small, '\0', sizeof(small)) != NULL, "error not NUL-terminated in %zu bytes",
	              sizeof(small));
}
END_TEST

static Suite *
settings_suite(void)
{
	Suite *su = suite_create("settings");
	TCase *tc;

	tc = tcase_create("flags");
	tcase_add_test(tc, test_defaults_without_arguments);
	tcase_add_test(tc, test_port_flag_sets_port);
	tcase_add_test(tc, test_listen_flag_sets_address);
	tcase_add_test(tc, test_memory_flag_sets_megabytes);
	tcase_add_test(tc, test_conn_limit_flag_sets_limit);
	tcase_add_test(tc, test_threads_flag_sets_threads);
	tcase_add_test(tc, test_item_size_flag_takes_k_and_m_suffixes);
	tcase_add_test(tc, test_item_size_up_to_half_of_memory_is_accepted);
	tcase_add_test(tc, test_verbose_flags_count_up_to_two);
	tcase_add_test(tc, test_udp_port_zero_is_accepted);
	tcase_add_test(tc, test_switch_flags_set_their_booleans);
	tcase_add_test(tc, test_user_and_pidfile_flags_keep_their_values);
	tcase_add_test(tc, test_paths_are_made_absolute);
	tcase_add_test(tc, test_default_data_dir_is_per_port);
	tcase_add_test(tc, test_memcached_tuning_options_are_accepted_and_listed);
	tcase_add_test(tc, test_metrics_port_is_checked);
	tcase_add_test(tc, test_config_file_then_command_line);
	tcase_add_test(tc, test_extended_options_set_hashpower_and_sweeper);
	tcase_add_test(tc, test_all_flags_together);
	suite_add_tcase(su, tc);

	tc = tcase_create("errors");
	tcase_add_test(tc, test_bad_port_is_refused_naming_p);
	tcase_add_test(tc, test_bad_threads_are_refused_naming_t);
	tcase_add_test(tc, test_bad_item_size_is_refused_naming_I);
	tcase_add_test(tc, test_item_size_above_half_of_memory_is_refused_naming_I);
	tcase_add_test(tc, test_bad_memory_is_refused_naming_m);
	tcase_add_test(tc, test_bad_conn_limit_is_refused_naming_c);
	tcase_add_test(tc, test_udp_port_other_than_zero_is_refused_naming_U);
	tcase_add_test(tc, test_bad_extended_options_are_refused_naming_o);
	tcase_add_test(tc, test_bad_listen_address_is_refused_naming_l);
	tcase_add_test(tc, test_unknown_options_are_refused_by_name);
	tcase_add_test(tc, test_missing_value_is_refused_naming_the_flag);
	tcase_add_test(tc, test_error_line_fits_a_small_buffer);
	suite_add_tcase(su, tc);

	tc = tcase_create("exit_and_repeat");
	tcase_add_test(tc, test_help_and_version_exit_ok);
	tcase_add_test(tc, test_parse_can_be_called_repeatedly);
	suite_add_tcase(su, tc);
	return su;
}

int
main(void)
{
	SRunner *sr = srunner_create(settings_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	settings_free(&s);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
