/* Unit tests of lib/api/clusters.c: clusters.toml read and written back,
 * its errors, the checks of URLs, tokens and fingerprints, and the file's
 * mode and atomic replacement. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "api/clusters.h"
#include "util/compiler.h"
#include "util/fs.h"

#define FP "SHA256:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU"

static const char *const sample = "current = \"prod\"\n"
				  "\n"
				  "[clusters.prod]\n"
				  "url = \"https://192.0.2.10:8443\"\n"
				  "fingerprint = \"" FP "\"\n"
				  "token = \"miren_abc\"\n"
				  "later = 1\n"
				  "\n"
				  "[clusters.staging]\n"
				  "url = \"https://[2001:db8::1]:9000\"\n"
				  "fingerprint = \"" FP "\"\n"
				  "token = \"miren_def\"\n";

static void parse_err(const char *text, const char *want)
{
	struct clusters c;
	struct miren_error err;
	assert_int_equal(clusters_parse(text, strlen(text), "c.toml", &c, &err), MIREN_EINVAL);
	assert_int_equal(c.n, 0);
	if (!strstr(err.message, want))
		fail_msg("error '%s' does not contain '%s'", err.message, want);
}

static void test_parse_format(void **state MIREN_UNUSED)
{
	struct clusters c, back;
	struct miren_error err;
	assert_int_equal(clusters_parse(sample, strlen(sample), "c.toml", &c, &err), 0);
	assert_int_equal(c.n, 2);
	assert_string_equal(c.current, "prod");
	assert_string_equal(c.items[0].url, "https://192.0.2.10:8443");
	assert_string_equal(c.items[0].token, "miren_abc");
	assert_string_equal(c.items[0].fingerprint, FP);
	assert_string_equal(c.items[1].name, "staging");
	assert_string_equal(c.items[1].url, "https://[2001:db8::1]:9000");
	/* Written and read back: the same. */
	char *text = clusters_format(&c);
	assert_int_equal(clusters_parse(text, strlen(text), "c.toml", &back, &err), 0);
	assert_int_equal(back.n, 2);
	assert_string_equal(back.current, "prod");
	assert_string_equal(back.items[1].token, "miren_def");
	free(text);
	/* Removing the current one clears it. */
	assert_true(clusters_remove(&back, "prod"));
	assert_false(clusters_remove(&back, "prod"));
	assert_null(back.current);
	assert_int_equal(back.n, 1);
	assert_string_equal(back.items[0].name, "staging");
	assert_non_null(clusters_find(&back, "staging"));
	assert_null(clusters_find(&back, "prod"));
	clusters_release(&back);
	clusters_release(&c);
}

static void test_parse_errors(void **state MIREN_UNUSED)
{
	parse_err("current = \n", "c.toml:1:");
	parse_err("current = \"x\"\n", "the current cluster 'x' is not listed");
	parse_err("clusters = 1\n", "clusters must be a table");
	parse_err("[clusters.p]\nurl = \"https://h:1\"\nfingerprint = \"" FP "\"\n",
		  "has no token");
	parse_err("[clusters.p]\nurl = 1\n", "url must be a string");
	parse_err("[clusters.P]\nurl = \"https://h:1\"\nfingerprint = \"" FP "\"\ntoken = \"t\"\n",
		  "invalid cluster name 'P'");
	parse_err("[clusters.p]\nurl = \"http://h:1\"\nfingerprint = \"" FP "\"\ntoken = \"t\"\n",
		  "'http://h:1' is not an https:// URL");
	parse_err("[clusters.p]\nurl = \"https://h:1\"\nfingerprint = \"SHA256:x\"\ntoken = "
		  "\"t\"\n",
		  "is not a certificate fingerprint");
	parse_err("[clusters.p]\nurl = \"https://h:1\"\nfingerprint = \"" FP
		  "\"\ntoken = \"a b\"\n",
		  "the token is not valid");
}

static void test_checks(void **state MIREN_UNUSED)
{
	struct miren_error err;
	char *u = NULL;
	assert_int_equal(clusters_check_url("https://example.org", &u, &err), 0);
	assert_string_equal(u, "https://example.org:443");
	free(u);
	assert_int_equal(clusters_check_url("https://h:8443/", &u, &err), 0);
	assert_string_equal(u, "https://h:8443");
	free(u);
	assert_int_equal(clusters_check_url("https://h:8443/v1", &u, &err), MIREN_EINVAL);
	assert_null(u);
	assert_int_equal(clusters_check_url("https://u:p@h:8443", &u, &err), MIREN_EINVAL);
	assert_int_equal(clusters_check_url("h:8443", &u, &err), MIREN_EINVAL);
	assert_int_equal(clusters_check_fingerprint(FP, &err), 0);
	assert_int_equal(clusters_check_fingerprint(FP "A", &err), MIREN_EINVAL);
	assert_int_equal(clusters_check_fingerprint("SHA1:abc", &err), MIREN_EINVAL);
	assert_int_equal(clusters_check_token("miren_0123", &err), 0);
	assert_int_equal(clusters_check_token("", &err), MIREN_EINVAL);
	assert_int_equal(clusters_check_token("a\r\nX-Evil: 1", &err), MIREN_EINVAL);
	/* The message never shows the token. */
	assert_null(strstr(err.message, "Evil"));
}

static void test_load_save(void **state MIREN_UNUSED)
{
	char dir[] = "/tmp/miren-clusters-XXXXXX";
	assert_non_null(mkdtemp(dir));
	char *path = xasprintf("%s/sub/clusters.toml", dir);
	struct clusters c, back;
	struct miren_error err;
	/* A missing file: no clusters. */
	assert_int_equal(clusters_load(path, &c, &err), 0);
	assert_int_equal(c.n, 0);
	struct cluster cl = { .name = "prod", .url = "https://h:1", .token = "miren_x" };
	strcpy(cl.fingerprint, FP);
	clusters_add(&c, &cl);
	c.current = xstrdup("prod");
	umask(022);
	assert_int_equal(clusters_save(path, &c, &err), 0);
	struct stat st;
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	assert_int_equal(clusters_load(path, &back, &err), 0);
	assert_int_equal(back.n, 1);
	assert_string_equal(back.current, "prod");
	assert_string_equal(back.items[0].token, "miren_x");
	clusters_release(&back);
	/* A broken file is an error naming it. */
	assert_int_equal(fs_write_atomic(path, "current = [", 11, 0600), 0);
	assert_int_equal(clusters_load(path, &back, &err), MIREN_EINVAL);
	assert_non_null(strstr(err.message, "clusters.toml:1:"));
	clusters_release(&c);
	free(path);
	assert_int_equal(fs_remove_tree(dir), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_format),
		cmocka_unit_test(test_parse_errors),
		cmocka_unit_test(test_checks),
		cmocka_unit_test(test_load_save),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
