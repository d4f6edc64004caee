/*
 * Unit tests of the WAL archive's files (lib/addon/postgresql/pg_wal.c)
 * and of points in time people type (lib/util/when.c): archive, retry,
 * refusal of another content, fetch with its checksum checked, tidying.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "addon/postgresql/pg.h"
#include "util/compiler.h"
#include "util/fs.h"
#include "util/strbuf.h"
#include "util/when.h"

static char *tmpdir(void)
{
	char t[] = "/tmp/miren-test-wal.XXXXXX";
	assert_non_null(mkdtemp(t));
	return strdup(t);
}

static void put(const char *path, const char *s)
{
	assert_int_equal(fs_write_atomic(path, s, strlen(s), 0600), 0);
}

static void test_archive_fetch(void **state MIREN_UNUSED)
{
	char *d = tmpdir();
	char *src = fs_join(d, "seg"), *dst = fs_join(d, "back");
	const char *name = "000000010000000000000003";
	struct miren_error err = { 0 };
	put(src, "the segment's bytes");
	assert_int_equal(pg_wal_archive(d, src, name, &err), 0);
	/* A retry with the same content. */
	assert_int_equal(pg_wal_archive(d, src, name, &err), 0);
	put(src, "other bytes");
	assert_int_equal(pg_wal_archive(d, src, name, &err), MIREN_ECONFLICT);
	assert_int_equal(pg_wal_fetch(d, name, dst, &err), 0);
	struct strbuf sb = STRBUF_INIT;
	assert_int_equal(strbuf_read_file(&sb, dst), 0);
	assert_string_equal(sb.buf, "the segment's bytes");
	strbuf_release(&sb);
	assert_int_equal(pg_wal_fetch(d, "000000010000000000000004", dst, &err), MIREN_ENOTFOUND);
	assert_int_equal(pg_wal_archive(d, src, "../x", &err), MIREN_EINVAL);
	/* A damaged checksum file. */
	char *sum = fs_join(d, "000000010000000000000003.sha256");
	put(sum, "00000000000000000000000000000000000000000000000000000000000000ff  x\n");
	assert_int_equal(pg_wal_fetch(d, name, dst, &err), MIREN_EINVAL);
	assert_non_null(strstr(err.message, "is damaged"));
	free(sum);
	char newest[64];
	assert_true(pg_wal_newest(d, newest) > 0);
	assert_string_equal(newest, name);
	/* Tidying keeps what the oldest base backup needs, and history. */
	put(src, "x");
	assert_int_equal(pg_wal_archive(d, src, "000000010000000000000005", &err), 0);
	assert_int_equal(pg_wal_archive(d, src, "00000002.history", &err), 0);
	int n = 0;
	assert_int_equal(pg_wal_tidy(d, "000000020000000000000005", &n, &err), 0);
	assert_int_equal(n, 2); /* ...03.zst and .sha256 */
	char *kept = fs_join(d, "000000010000000000000005.zst");
	char *hist = fs_join(d, "00000002.history.zst");
	assert_true(fs_exists(kept) && fs_exists(hist));
	free(kept);
	free(hist);
	fs_remove_tree(d);
	free(src);
	free(dst);
	free(d);
}

static void test_when(void **state MIREN_UNUSED)
{
	struct miren_error err = { 0 };
	int64_t t;
	assert_int_equal(when_parse("2026-11-30 12:34:56+00", 0, &t, &err), 0);
	assert_int_equal(t, 1796042096);
	assert_int_equal(when_parse("2026-11-30T13:34:56+01:00", 0, &t, &err), 0);
	assert_int_equal(t, 1796042096);
	assert_int_equal(when_parse("2026-11-30 12:34:56Z", 0, &t, &err), 0);
	assert_int_equal(t, 1796042096);
	assert_int_equal(when_parse("2026-11-30 12:34", 0, &t, &err), 0);
	assert_int_equal(t, 1796042040);
	assert_int_equal(when_parse("10m-ago", 1000000, &t, &err), 0);
	assert_int_equal(t, 1000000 - 600);
	assert_int_equal(when_parse("2d-ago", 1000000, &t, &err), 0);
	assert_int_equal(t, 1000000 - 2 * 86400);
	const char *bad[] = { "",
			      "yesterday",
			      "10x-ago",
			      "-ago",
			      "m-ago",
			      "2026-02-30 00:00:00",
			      "2026-11-30 25:00:00",
			      "2026-11-30 12:34:56+0",
			      "2026-11-30" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(when_parse(bad[i], 0, &t, &err), MIREN_EINVAL);
	assert_non_null(strstr(err.hint, "10m-ago"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_archive_fetch),
		cmocka_unit_test(test_when),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
