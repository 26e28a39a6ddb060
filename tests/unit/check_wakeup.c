/* Unit tests for storage/wakeup.c: coalesced eventfd wake-ups. */
#include "storage/wakeup.h"

#include <check.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

static bool
readable(const struct wakeup *wk, int timeout_ms)
{
	struct pollfd p = {.fd = wk->fd, .events = POLLIN};

	return poll(&p, 1, timeout_ms) == 1 && (p.revents & POLLIN);
}

/* Signals before the loop runs cost one write: the eventfd counts 1. */
START_TEST(test_signals_coalesce)
{
	struct wakeup wk;
	uint64_t count = 0;

	ck_assert_int_eq(wakeup_open(&wk, "test"), 0);
	ck_assert(!readable(&wk, 0));
	for (int i = 0; i < 5; i++)
		wakeup_signal(&wk);
	ck_assert(readable(&wk, 0));
	ck_assert_int_eq(read(wk.fd, &count, sizeof(count)), (ssize_t)sizeof(count));
	ck_assert_uint_eq(count, 1);
	wakeup_close(&wk);
	wakeup_close(&wk);  /* closed twice: a no-op */
}
END_TEST

/* After consume, the next signal wakes the loop again. */
START_TEST(test_signal_after_consume_wakes_again)
{
	struct wakeup wk;

	ck_assert_int_eq(wakeup_open(&wk, "test"), 0);
	wakeup_signal(&wk);
	wakeup_consume(&wk);
	ck_assert(!readable(&wk, 0));
	wakeup_signal(&wk);
	ck_assert(readable(&wk, 0));
	wakeup_close(&wk);
}
END_TEST

/* Another thread asks for work N times; the loop, woken, does all the work
 * asked so far.  It must never sleep on a request it has not seen: the
 * last request is always followed by a wake-up or covered by the work.
 * (Clearing the pending flag before reading the eventfd lost wake-ups this
 * way: a node's worker slept through its stop.) */
#define REQUESTS 200000
static struct wakeup race_wk;
static uint64_t requested;  /* atomic */

static void *
requester(void *arg)
{
	(void)arg;
	for (uint64_t i = 1; i <= REQUESTS; i++) {
		__atomic_store_n(&requested, i, __ATOMIC_SEQ_CST);
		wakeup_signal(&race_wk);
	}
	return NULL;
}

START_TEST(test_no_request_is_slept_through)
{
	pthread_t t;
	uint64_t done = 0;

	ck_assert_int_eq(wakeup_open(&race_wk, "test"), 0);
	__atomic_store_n(&requested, 0, __ATOMIC_SEQ_CST);
	ck_assert_int_eq(pthread_create(&t, NULL, requester, NULL), 0);
	while (done < REQUESTS) {
		/* 2 s without a wake-up while work is owed: lost. */
		ck_assert_msg(readable(&race_wk, 2000), "wake-up lost: did %llu of %d requests",
		              (unsigned long long)done, REQUESTS);
		wakeup_consume(&race_wk);
		done = __atomic_load_n(&requested, __ATOMIC_SEQ_CST);  /* the work */
	}
	pthread_join(t, NULL);
	wakeup_close(&race_wk);
}
END_TEST

static Suite *
wakeup_suite(void)
{
	Suite *s = suite_create("wakeup");
	TCase *tc = tcase_create("wakeup");

	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_signals_coalesce);
	tcase_add_test(tc, test_signal_after_consume_wakes_again);
	tcase_add_test(tc, test_no_request_is_slept_through);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(wakeup_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
