/*
 * Unit tests of the disk lock (lib/addon/disk_ops.c): one holder per disk
 * name, a bounded wait that ends with "another operation ... is in
 * progress (WHAT)", other names independent, and a release from another
 * thread than the one that locked (a backup is prepared on an API thread
 * and finished on its producer thread) waking a waiter.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "addon/disk_ops.h"
#include "util/compiler.h"

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void test_busy_after_bounded_wait(void **state MIREN_UNUSED)
{
	struct miren_error err = { 0 };
	assert_int_equal(disk_lock("d1", "a backup", 0, &err), 0);
	double t0 = now_s();
	assert_int_equal(disk_lock("d1", "a restore", 300, &err), MIREN_ECONFLICT);
	double took = now_s() - t0;
	assert_true(took >= 0.29 && took < 5);
	assert_string_equal(err.message,
			    "another operation on disk 'd1' is in progress (a backup)");
	/* Another disk is not affected. */
	assert_int_equal(disk_lock("d2", "a backup", 0, &err), 0);
	disk_unlock("d2");
	disk_unlock("d1");
	assert_int_equal(disk_lock("d1", "a restore", 0, &err), 0);
	disk_unlock("d1");
}

static void *unlock_later(void *arg)
{
	usleep(200000);
	disk_unlock(arg);
	return NULL;
}

static void test_released_by_another_thread(void **state MIREN_UNUSED)
{
	struct miren_error err = { 0 };
	assert_int_equal(disk_lock("d3", "a backup", 0, &err), 0);
	pthread_t t;
	assert_int_equal(pthread_create(&t, NULL, unlock_later, "d3"), 0);
	double t0 = now_s();
	assert_int_equal(disk_lock("d3", "a restore", 5000, &err), 0);
	assert_true(now_s() - t0 < 4);
	pthread_join(t, NULL);
	disk_unlock("d3");
}

/* A yielding holder: its flag is set by the next disk_lock, which gets
 * the lock once the holder lets go; it never takes a held lock. */
static atomic_bool yield_flag;

static void *give_way(void *arg)
{
	for (int i = 0; i < 500 && !atomic_load(&yield_flag); i++)
		usleep(10 * 1000);
	disk_unlock(arg);
	return NULL;
}

static void test_yielding(void **state MIREN_UNUSED)
{
	struct miren_error err = { 0 };
	assert_int_equal(disk_lock("d4", "a backup", 0, &err), 0);
	assert_int_equal(disk_lock_yielding("d4", "a background backup", &yield_flag, &err),
			 MIREN_ECONFLICT);
	disk_unlock("d4");
	assert_int_equal(disk_lock_yielding("d4", "a background backup", &yield_flag, &err), 0);
	assert_false(atomic_load(&yield_flag));
	pthread_t t;
	assert_int_equal(pthread_create(&t, NULL, give_way, "d4"), 0);
	double t0 = now_s();
	assert_int_equal(disk_lock("d4", "a restore", 5000, &err), 0);
	assert_true(atomic_load(&yield_flag));
	assert_true(now_s() - t0 < 2);
	pthread_join(t, NULL);
	disk_unlock("d4");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_busy_after_bounded_wait),
		cmocka_unit_test(test_released_by_another_thread),
		cmocka_unit_test(test_yielding),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
