/* Unit tests of lib/util: strbuf, names, secrets, sha256, errors, fs. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "api/request.h"
#include "util/compiler.h"
#include "util/err.h"
#include "util/fs.h"
#include "util/names.h"
#include "util/num.h"
#include "util/secret.h"
#include "util/sha256.h"
#include "util/strbuf.h"
#include "util/text.h"

static void test_strbuf_invariants(void **state MIREN_UNUSED)
{
	struct strbuf sb = STRBUF_INIT;
	assert_non_null(sb.buf);
	assert_string_equal(sb.buf, "");
	assert_int_equal(strbuf_adds(&sb, "abc"), 0);
	assert_int_equal(strbuf_addf(&sb, "-%d-%s", 42, "x"), 0);
	assert_string_equal(sb.buf, "abc-42-x");
	assert_int_equal(sb.len, 8);
	for (int i = 0; i < 1000; i++)
		strbuf_addch(&sb, 'z');
	assert_int_equal(sb.len, 1008);
	assert_int_equal(sb.buf[sb.len], '\0');
	size_t len;
	char *p = strbuf_detach(&sb, &len);
	assert_int_equal(len, 1008);
	assert_string_equal(sb.buf, "");
	assert_int_equal(sb.len, 0);
	free(p);
	/* Detaching an empty buffer still gives a freeable string. */
	p = strbuf_detach(&sb, NULL);
	assert_string_equal(p, "");
	free(p);
	strbuf_release(&sb);
}

static void test_strbuf_cap(void **state MIREN_UNUSED)
{
	struct strbuf sb;
	strbuf_init(&sb, 10);
	assert_int_equal(strbuf_adds(&sb, "0123456789"), 0);
	assert_int_equal(strbuf_addch(&sb, 'x'), MIREN_ETOOBIG);
	assert_int_equal(sb.len, 10);
	assert_string_equal(sb.buf, "0123456789");
	assert_int_equal(strbuf_addf(&sb, "%s", "more"), MIREN_ETOOBIG);
	assert_string_equal(sb.buf, "0123456789");
	strbuf_reset(&sb);
	assert_int_equal(sb.len, 0);
	assert_int_equal(strbuf_add(&sb, "abc", (size_t)-1), MIREN_ETOOBIG);
	strbuf_release(&sb);
}

static void test_strbuf_trim_and_file(void **state MIREN_UNUSED)
{
	char path[] = "/tmp/miren-test-XXXXXX";
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "hello \n\n", 8), 8);
	close(fd);
	struct strbuf sb = STRBUF_INIT;
	assert_int_equal(strbuf_read_file(&sb, path), 0);
	strbuf_trim_end(&sb);
	assert_string_equal(sb.buf, "hello");
	strbuf_release(&sb);
	unlink(path);
	assert_int_equal(strbuf_read_file(&sb, path), MIREN_ENOTFOUND);
	strbuf_release(&sb);
}

static void test_app_names(void **state MIREN_UNUSED)
{
	struct miren_error err;
	const char *good[] = { "a", "hello", "my-app-2", "x1" };
	for (size_t i = 0; i < sizeof(good) / sizeof(*good); i++)
		assert_int_equal(name_check_app(good[i], &err), 0);
	const char *bad[] = { "", "1app", "-app", "app-", "App", "my_app", "my.app", "a b", "é" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
		assert_int_equal(name_check_app(bad[i], &err), MIREN_EINVAL);
		assert_non_null(strstr(err.message, "invalid app name"));
		assert_non_null(strstr(err.hint, "lowercase"));
	}
	char n63[64], n64[65];
	memset(n63, 'a', 63);
	n63[63] = '\0';
	memset(n64, 'a', 64);
	n64[64] = '\0';
	assert_int_equal(name_check_app(n63, &err), 0);
	assert_int_equal(name_check_app(n64, &err), MIREN_EINVAL);
}

static void test_env_names(void **state MIREN_UNUSED)
{
	struct miren_error err;
	assert_int_equal(name_check_env("DATABASE_URL", &err), 0);
	assert_int_equal(name_check_env("_x9", &err), 0);
	assert_int_equal(name_check_env("9X", &err), MIREN_EINVAL);
	assert_int_equal(name_check_env("A-B", &err), MIREN_EINVAL);
	assert_int_equal(name_check_env("", &err), MIREN_EINVAL);
	assert_int_equal(name_check_env("A=B", &err), MIREN_EINVAL);
}

static void test_secrets(void **state MIREN_UNUSED)
{
	char *a = secret_password(), *b = secret_password();
	assert_int_equal(strlen(a), 32);
	assert_string_not_equal(a, b);
	for (const char *p = a; *p; p++)
		assert_true((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
			    (*p >= '0' && *p <= '9'));
	free(a);
	free(b);
	char *h = secret_hex(4);
	assert_int_equal(strlen(h), 8);
	assert_int_equal(strspn(h, "0123456789abcdef"), 8);
	free(h);
}

static void test_sha256(void **state MIREN_UNUSED)
{
	char hex[65];
	sha256_hex("abc", 3, hex);
	assert_string_equal(hex,
			    "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
	struct sha256 h;
	sha256_init(&h);
	sha256_update(&h, "a", 1);
	sha256_update(&h, "bc", 2);
	char hex2[65];
	sha256_final_hex(&h, hex2);
	assert_string_equal(hex, hex2);
}

static void test_errors(void **state MIREN_UNUSED)
{
	struct miren_error err;
	assert_int_equal(miren_error_set(&err, MIREN_ENOTFOUND, "app '%s' not found", "x"),
			 MIREN_ENOTFOUND);
	assert_string_equal(err.message, "app 'x' not found");
	assert_string_equal(err.hint, "");
	assert_int_equal(miren_err_http_status(MIREN_ENOTFOUND), 404);
	assert_int_equal(miren_err_http_status(MIREN_ETOOBIG), 413);
	assert_int_equal(miren_err_http_status(MIREN_EINVAL), 400);
	assert_int_equal(miren_err_from_code_name(miren_err_code_name(MIREN_ECONFLICT)),
			 MIREN_ECONFLICT);
	assert_int_equal(miren_error_set(NULL, MIREN_EIO, "x"), MIREN_EIO);
	/* message, detail and hint stay apart; a new error clears the old
	 * detail and hint */
	miren_error_detail(&err, "FATAL: %s", "disk full");
	miren_error_hint(&err, "free some space");
	assert_string_equal(err.message, "app 'x' not found");
	assert_string_equal(err.detail, "FATAL: disk full");
	assert_string_equal(err.hint, "free some space");
	miren_error_set(&err, MIREN_EIO, "cannot write");
	assert_string_equal(err.detail, "");
	assert_string_equal(err.hint, "");
	miren_error_detail(NULL, "ignored");
	miren_error_clear(&err);
	assert_int_equal(err.code, MIREN_OK);
	assert_string_equal(err.message, "");
	assert_string_equal(err.detail, "");
}

static void test_fs(void **state MIREN_UNUSED)
{
	char base[] = "/tmp/miren-fs-XXXXXX";
	assert_non_null(mkdtemp(base));
	char *deep = xasprintf("%s/a/b/c", base);
	assert_int_equal(fs_mkdir_p(deep, 0755), 0);
	assert_true(fs_is_dir(deep));
	char *file = fs_join(deep, "f");
	assert_int_equal(fs_write_atomic(file, "data", 4, 0600), 0);
	struct stat st;
	assert_int_equal(stat(file, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	assert_int_equal(st.st_size, 4);
	assert_true(fs_disk_usage(base) > 0);
	assert_int_equal(fs_remove_tree(base), 0);
	assert_false(fs_exists(base));
	assert_int_equal(fs_remove_tree(base), 0);
	char *j = fs_join("/a/", "/b");
	assert_string_equal(j, "/a/b");
	free(j);
	free(deep);
	free(file);
}

static void expect_escaped(const char *in, size_t len, const char *want)
{
	char *got = text_escaped(in, len);
	assert_string_equal(got, want);
	free(got);
}

static void test_text(void **state MIREN_UNUSED)
{
	/* Printable text, wide characters and combining marks pass as they are. */
	expect_escaped("plain text", 10, "plain text");
	expect_escaped("日本語 é", strlen("日本語 é"), "日本語 é");
	/* Control characters, backslashes, NULs, C1, invalid UTF-8: escaped. */
	expect_escaped("a\nb\r\tc\\", 7, "a\\nb\\r\\tc\\\\");
	expect_escaped("k\0x", 3, "k\\u0000x");
	expect_escaped("\x1b[31m\x7f", 6, "\\u001b[31m\\u007f");
	expect_escaped("\xc2\x85|\xe2\x80\xa8", 6, "\\u0085|\\u2028");
	expect_escaped("\xff\xc3", 2, "\\xff\\xc3");
	const char *pem = "-----BEGIN KEY-----\nMIIB\n-----END KEY-----\n";
	expect_escaped(pem, strlen(pem), "-----BEGIN KEY-----\\nMIIB\\n-----END KEY-----\\n");
	assert_false(text_has_control("日本 a\\b", strlen("日本 a\\b")));
	assert_true(text_has_control("ab\0", 3));
	assert_true(text_has_control("a\nb", 3));
	assert_true(text_has_control("\xc2\x9f", 2));
	assert_true(text_has_control("\xff", 1));
	/* Columns, not bytes: CJK is 2 wide, a combining acute 0. */
	assert_int_equal(text_width("abc"), 3);
	assert_int_equal(text_width("日本語"), 6);
	assert_int_equal(text_width("e\xcc\x81"), 1);
	assert_int_equal(text_width("\xff"), 1);
	assert_int_equal(text_width(""), 0);
}

static void expect_unescaped(const char *in, const char *want)
{
	char buf[128];
	snprintf(buf, sizeof(buf), "%s", in);
	size_t n = api_unescape(buf);
	assert_string_equal(buf, want);
	assert_int_equal(n, strlen(want));
}

/* Numbers from text: all of it a number (or its first line), in range,
 * else false and the output untouched (atoi would say 0 or 12). */
static void test_num(void **state MIREN_UNUSED)
{
	long long v = 7;
	assert_true(num_parse("42", 0, 100, &v));
	assert_int_equal(v, 42);
	assert_true(num_parse("-3\nrest of a file", -10, 10, &v));
	assert_int_equal(v, -3);
	v = 7;
	assert_false(num_parse("12abc", 0, 100, &v));
	assert_false(num_parse("", 0, 100, &v));
	assert_false(num_parse(NULL, 0, 100, &v));
	assert_false(num_parse(" 1", 0, 100, &v));
	assert_false(num_parse("+1", 0, 100, &v));
	assert_false(num_parse("101", 0, 100, &v));
	assert_false(num_parse("99999999999999999999", 0, LLONG_MAX, &v));
	assert_int_equal(v, 7);

	unsigned long long u = 0;
	const char *end = NULL;
	assert_true(num_parse_u("3fffffffff\n", 16, ULLONG_MAX, &u, NULL));
	assert_true(u == 0x3fffffffffULL);
	assert_true(num_parse_u("259:3", 10, UINT_MAX, &u, &end));
	assert_int_equal(u, 259);
	assert_string_equal(end, ":3");
	assert_false(num_parse_u("259:3", 10, UINT_MAX, &u, NULL));
	assert_false(num_parse_u("0x10", 16, ULLONG_MAX, &u, NULL));
	assert_false(num_parse_u("-1", 10, ULLONG_MAX, &u, NULL));

	assert_int_equal(num_pid("1234"), 1234);
	assert_int_equal(num_pid("1234\n"), 1234);
	assert_int_equal(num_pid("self"), 0);
	assert_int_equal(num_pid("0"), 0);
	assert_int_equal(num_pid("4294967297"), 0);
}

static void test_api_unescape(void **state MIREN_UNUSED)
{
	expect_unescaped("/v1/apps/hello", "/v1/apps/hello");
	expect_unescaped("/v1/apps/a%2Db/env/K%5f1", "/v1/apps/a-b/env/K_1");
	expect_unescaped("/v1/apps/%E6%97%A5", "/v1/apps/\xe6\x97\xa5");
	/* Control characters stay escaped: a NUL never cuts a name short. */
	expect_unescaped("/v1/apps/a1%00x", "/v1/apps/a1%00x");
	expect_unescaped("/v1/apps/a/env/K%0aX%7F%1f", "/v1/apps/a/env/K%0aX%7F%1f");
	/* Broken escapes are kept as they are. */
	expect_unescaped("%", "%");
	expect_unescaped("%4", "%4");
	expect_unescaped("%zz%4g", "%zz%4g");
	expect_unescaped("a%2", "a%2");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_strbuf_invariants),
		cmocka_unit_test(test_strbuf_cap),
		cmocka_unit_test(test_strbuf_trim_and_file),
		cmocka_unit_test(test_app_names),
		cmocka_unit_test(test_env_names),
		cmocka_unit_test(test_secrets),
		cmocka_unit_test(test_sha256),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_fs),
		cmocka_unit_test(test_text),
		cmocka_unit_test(test_num),
		cmocka_unit_test(test_api_unescape),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
