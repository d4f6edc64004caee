/*
 * Unit tests for lib/toml: the TOML 1.0 parser (toml.c) and the toml-test
 * tagged JSON encoder (toml_json.c).
 *
 * Walks the spec section by section with documents that must parse (and
 * checks the values) and documents that must be rejected (and, for a
 * sample, checks the reported line:column and reason).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "toml/toml.h"
#include "util/compiler.h"

/* ---- helpers -------------------------------------------------------------- */

static struct toml_value *parse_len_ok(const char *doc, size_t len)
{
	struct toml_error err;
	struct toml_value *v = toml_parse(doc, len, &err);
	if (!v) {
		fail_msg("document should parse: %s\n  -> %d:%d: %s", doc, err.line, err.col,
			 err.reason);
		return NULL; /* not reached: fail_msg does not return */
	}
	assert_int_equal(v->type, TOML_TABLE);
	return v;
}

static struct toml_value *parse_ok(const char *doc)
{
	return parse_len_ok(doc, strlen(doc));
}

static void check_invalid_len(const char *doc, size_t len)
{
	struct toml_error err;
	struct toml_value *v = toml_parse(doc, len, &err);
	if (v) {
		toml_free(v);
		fail_msg("document should be rejected: %s", doc);
	}
	assert_true(err.line >= 1);
	assert_true(err.col >= 1);
	assert_true(err.reason[0] != '\0');
}

static void check_invalid(const char *doc)
{
	check_invalid_len(doc, strlen(doc));
}

/* Rejected at line:col with a reason containing want. */
static void check_error(const char *doc, int line, int col, const char *want)
{
	struct toml_error err;
	struct toml_value *v = toml_parse(doc, strlen(doc), &err);
	if (v) {
		toml_free(v);
		fail_msg("document should be rejected: %s", doc);
	}
	if (err.line != line || err.col != col || !strstr(err.reason, want))
		fail_msg("doc %s\n  want %d:%d: ...%s...\n  got  %d:%d: %s", doc, line, col, want,
			 err.line, err.col, err.reason);
}

static void check_valid_list(const char *const *docs, size_t n)
{
	for (size_t i = 0; i < n; i++)
		toml_free(parse_ok(docs[i]));
}

static void check_invalid_list(const char *const *docs, size_t n)
{
	for (size_t i = 0; i < n; i++)
		check_invalid(docs[i]);
}

#define VALID(...)                                                         \
	do {                                                               \
		static const char *const docs_[] = { __VA_ARGS__ };        \
		check_valid_list(docs_, sizeof(docs_) / sizeof(docs_[0])); \
	} while (0)

#define INVALID(...)                                                         \
	do {                                                                 \
		static const char *const docs_[] = { __VA_ARGS__ };          \
		check_invalid_list(docs_, sizeof(docs_) / sizeof(docs_[0])); \
	} while (0)

static void check_json(const char *doc, const char *want)
{
	struct toml_value *v = parse_ok(doc);
	char *got = toml_to_tagged_json(v);
	assert_non_null(got);
	if (strcmp(got, want) != 0)
		fail_msg("doc %s\n  want %s\n  got  %s", doc, want, got);
	free(got);
	toml_free(v);
}

/* Follows a path of keys from the root, asserting each exists. */
static const struct toml_value *path_get(const struct toml_value *root, int n, ...)
{
	va_list ap;
	const struct toml_value *v = root;
	const char *k = NULL;
	va_start(ap, n);
	for (int i = 0; i < n && v; i++) {
		k = va_arg(ap, const char *);
		v = toml_get(v, k);
	}
	va_end(ap);
	if (!v)
		fail_msg("key '%s' missing", k);
	return v;
}

static void check_str(const char *doc, const char *want, size_t want_len)
{
	struct toml_value *root = parse_ok(doc);
	const struct toml_value *v = toml_get(root, "a");
	assert_non_null(v);
	assert_int_equal(v->type, TOML_STRING);
	if (v->u.str.len != want_len || memcmp(v->u.str.ptr, want, want_len) != 0)
		fail_msg("doc %s: string value differs (len %zu, want %zu): '%s'", doc,
			 v->u.str.len, want_len, v->u.str.ptr);
	assert_int_equal(v->u.str.ptr[v->u.str.len], '\0');
	toml_free(root);
}

#define CHECK_STR(doc, lit) check_str(doc, lit, sizeof(lit) - 1)

static void check_int(const char *doc, int64_t want)
{
	struct toml_value *root = parse_ok(doc);
	const struct toml_value *v = toml_get(root, "a");
	assert_non_null(v);
	if (v->type != TOML_INTEGER || v->u.integer != want)
		fail_msg("doc %s: want integer %lld", doc, (long long)want);
	toml_free(root);
}

static void check_float(const char *doc, double want)
{
	struct toml_value *root = parse_ok(doc);
	const struct toml_value *v = toml_get(root, "a");
	assert_non_null(v);
	if (v->type != TOML_FLOAT)
		fail_msg("doc %s: want a float", doc);
	if (isnan(want)) {
		assert_true(isnan(v->u.flt));
	} else if (v->u.flt != want || signbit(v->u.flt) != signbit(want)) {
		fail_msg("doc %s: want %.17g got %.17g", doc, want, v->u.flt);
	}
	toml_free(root);
}

static void check_dt(const char *doc, enum toml_type type, const char *want)
{
	struct toml_value *root = parse_ok(doc);
	const struct toml_value *v = toml_get(root, "a");
	assert_non_null(v);
	if (v->type != type || strcmp(v->u.datetime, want) != 0)
		fail_msg("doc %s: want %s '%s', got %s '%s'", doc, toml_type_name(type), want,
			 toml_type_name(v->type), v->type == type ? v->u.datetime : "");
	toml_free(root);
}

/* ---- comments and key/value pairs ----------------------------------------- */

static void test_comments(void **state MIREN_UNUSED)
{
	VALID("", "# only a comment", "# comment\n\n# another\n", "a = 1 # trailing",
	      "a = 1# no space", "# unicode ☃ comment\na = \"# not a comment\"",
	      "   \t# indented\n", "a = [ # inside array\n 1 ]", "[t] # after header\n");
	check_json("# c\na = \"x # y\" # z", "{\"a\":{\"type\":\"string\",\"value\":\"x # y\"}}");
	check_error("# ok\n# bad \x01 char", 2, 7, "control character U+0001");
	INVALID("# del \x7f", "a = 1 # \x1f", "# \x08");
	check_invalid_len("# nul \0 x", 9);
}

static void test_keyvals(void **state MIREN_UNUSED)
{
	VALID("a = 1", "a=1", "a\t=\t1", "  a = 1  ", "a = 1\nb = 2\n\n\nc = 3\n");
	check_error("a 1", 1, 3, "expected '=' after key");
	check_error("a = 1\nb", 2, 2, "expected '=' after key");
	check_error("a =", 1, 4, "expected a value");
	check_error("a =\n1", 1, 4, "expected a value");
	check_error("= 1", 1, 1, "expected a key");
	check_error("a = 1 b = 2", 1, 7, "expected a newline after value");
	check_error("a = 1\nb = @", 2, 5, "expected a value, found '@'");
	check_error("a = bare", 1, 5, "strings must be quoted");
	INVALID("a", "a = 1 2", "a = # c");
}

static void test_keys(void **state MIREN_UNUSED)
{
	struct toml_value *root = parse_ok("bare_key-9 = 1\nABC = 2\n1234 = 3\n-_- = 4\n"
					   "\"quoted key\" = 5\n'literal \\key' = 6\n\"\" = 7\n"
					   "\"ʎǝʞ\" = 8\ntrue = 9\ninf = 10\n");
	assert_int_equal(toml_get(root, "bare_key-9")->u.integer, 1);
	assert_int_equal(toml_get(root, "ABC")->u.integer, 2);
	assert_int_equal(toml_get(root, "1234")->u.integer, 3);
	assert_int_equal(toml_get(root, "-_-")->u.integer, 4);
	assert_int_equal(toml_get(root, "quoted key")->u.integer, 5);
	assert_int_equal(toml_get(root, "literal \\key")->u.integer, 6);
	assert_int_equal(toml_get(root, "")->u.integer, 7);
	assert_int_equal(toml_get(root, "ʎǝʞ")->u.integer, 8);
	assert_int_equal(toml_get(root, "true")->u.integer, 9);
	assert_int_equal(toml_get(root, "inf")->u.integer, 10);
	toml_free(root);

	/* Escapes in quoted keys; a key may hold a NUL. */
	root = parse_ok("\"a\\tb\\u00e9\" = 1\n\"x\\u0000y\" = 2\n\"x\\u0000z\" = 3\n");
	assert_non_null(toml_get(root, "a\tb\xc3\xa9"));
	assert_int_equal(root->u.table.len, 3);
	assert_int_equal(root->u.table.items[1].key_len, 3);
	assert_memory_equal(root->u.table.items[1].key, "x\0y", 4);
	/* Lookups compare the whole key: "x" is neither "x\0y" nor "x\0z". */
	assert_null(toml_get(root, "x"));
	assert_false(toml_key_is(&root->u.table.items[1], "x"));
	assert_true(toml_key_is(&root->u.table.items[0], "a\tb\xc3\xa9"));
	toml_free(root);

	/* Dotted keys, with whitespace around the dots and quoted parts. */
	root = parse_ok("name.first = \"a\"\nname . last = \"b\"\nsite.\"google.com\" = true\n"
			"3.14159 = \"pi\"\n'x'.\"y\".z = 1\n");
	assert_string_equal(path_get(root, 2, "name", "first")->u.str.ptr, "a");
	assert_string_equal(path_get(root, 2, "name", "last")->u.str.ptr, "b");
	assert_true(path_get(root, 2, "site", "google.com")->u.boolean);
	assert_string_equal(path_get(root, 2, "3", "14159")->u.str.ptr, "pi");
	assert_int_equal(path_get(root, 3, "x", "y", "z")->u.integer, 1);
	toml_free(root);

	check_error("a$b = 1", 1, 2, "invalid character '$' in key");
	check_error("\"\"\"key\"\"\" = 1", 1, 1, "multi-line strings cannot be used as keys");
	check_error("'''key''' = 1", 1, 1, "multi-line strings cannot be used as keys");
	INVALID("a. = 1", ".a = 1", "a..b = 1", "\"a\"b = 1", "a\"b\" = 1", "'a = 1", "\"a = 1",
		"a\nb = 1", "é = 1", "a b = 1", "[a b]", "\"a\nb\" = 1");
}

static void test_duplicate_keys(void **state MIREN_UNUSED)
{
	check_error("name = 1\nname = 2", 2, 1, "duplicate key 'name'");
	check_error("a = 1\n\"a\" = 2", 2, 1, "duplicate key 'a'");
	check_error("a = 1\n'a' = 2", 2, 1, "duplicate key");
	check_error("a.b = 1\na.b = 2", 2, 3, "duplicate key 'a.b'");
	check_error("a.b = 1\na = 2", 2, 1, "duplicate key 'a'");
	check_error("a = 1\na.b = 2", 2, 1, "key 'a' is already an integer, not a table");
	check_error("[t]\nx = 1\nx = 2", 3, 1, "duplicate key 'x'");
	check_error("\"a b\" = 1\n\"a b\" = 2", 2, 1, "duplicate key '\"a b\"'");
	VALID("a.b = 1\na.c = 2", "a = 1\nA = 2", "\"a\" = 1\n\"a \" = 2");

	/* Large tables use a hash index: duplicates must still be found. */
	char doc[4096];
	size_t off = 0;
	for (int i = 0; i < 200; i++)
		off += (size_t)snprintf(doc + off, sizeof(doc) - off, "k%d = %d\n", i, i);
	struct toml_value *root = parse_ok(doc);
	assert_int_equal(root->u.table.len, 200);
	assert_int_equal(toml_get(root, "k150")->u.integer, 150);
	toml_free(root);
	snprintf(doc + off, sizeof(doc) - off, "k77 = 0\n");
	check_error(doc, 201, 1, "duplicate key 'k77'");
}

/* ---- strings ------------------------------------------------------------ */

static void test_basic_strings(void **state MIREN_UNUSED)
{
	CHECK_STR("a = \"\"", "");
	CHECK_STR("a = \"hello\"", "hello");
	CHECK_STR("a = \"\\b\\t\\n\\f\\r\\\"\\\\\"", "\b\t\n\f\r\"\\");
	CHECK_STR("a = \"\\u00E9\\u00e9\"", "\xc3\xa9\xc3\xa9");
	CHECK_STR("a = \"\\u20AC \\U0001F600\"", "\xe2\x82\xac \xf0\x9f\x98\x80");
	CHECK_STR("a = \"\\U0010FFFF\"", "\xf4\x8f\xbf\xbf");
	CHECK_STR("a = \"\\u0000x\"", "\0x");
	CHECK_STR("a = \"tab\there\"", "tab\there");
	CHECK_STR("a = \"ünïcödé ☃\"", "ünïcödé ☃");
	CHECK_STR("a = \"# not a comment\"", "# not a comment");
	CHECK_STR("a = \"'single'\"", "'single'");

	check_error("a = \"bad \\q\"", 1, 10, "invalid escape sequence '\\q'");
	check_error("a = \"\\x41\"", 1, 6, "invalid escape sequence '\\x'");
	check_error("a = \"\\e\"", 1, 6, "invalid escape sequence '\\e'");
	check_error("a = \"\\ \"", 1, 6, "invalid escape sequence '\\ '");
	check_error("a = \"\\é\"", 1, 6, "invalid escape sequence '\\é'");
	check_error("a = \"\\uD800\"", 1, 6, "not a unicode scalar value");
	check_error("a = \"\\uDFFF\"", 1, 6, "not a unicode scalar value");
	check_error("a = \"\\U00110000\"", 1, 6, "not a unicode scalar value");
	check_error("a = \"\\u12\"", 1, 6, "needs 4 hex digits");
	check_error("a = \"\\U1234567\"", 1, 6, "needs 8 hex digits");
	check_error("a = \"\\uGGGG\"", 1, 6, "invalid unicode escape");
	check_error("a = \"open", 1, 5, "unterminated string");
	check_error("a = \"line\nbreak\"", 1, 5, "unterminated string");
	check_error("a = \"ctl \x01\"", 1, 10, "control character U+0001");
	check_error("a = \"ctl \x1b\"", 1, 10, "control character U+001B");
	check_error("a = \"del \x7f\"", 1, 10, "control character U+007F");
	check_error("a = \"x\\", 1, 7, "unterminated string");
	check_invalid_len("a = \"nul \0\"", 11);
	INVALID("a = \"\\\n\"", "a = \"a\"b\"", "a = \"\r\n\"");
}

static void test_multiline_basic_strings(void **state MIREN_UNUSED)
{
	CHECK_STR("a = \"\"\"\"\"\"", "");
	CHECK_STR("a = \"\"\"\nfirst\nsecond\"\"\"", "first\nsecond");
	CHECK_STR("a = \"\"\"\r\nfirst\r\nsecond\r\n\"\"\"", "first\nsecond\n");
	CHECK_STR("a = \"\"\"\n\nblank\"\"\"", "\nblank");
	CHECK_STR("a = \"\"\"one \\\n    two \\\n\n\n   three\"\"\"", "one two three");
	CHECK_STR("a = \"\"\"one \\   \t\n  two\"\"\"", "one two");
	CHECK_STR("a = \"\"\"one \\\r\n  two\"\"\"", "one two");
	CHECK_STR("a = \"\"\"\\\n\"\"\"", "");
	CHECK_STR("a = \"\"\"tab\t\\t\\u00e9\"\"\"", "tab\t\t\xc3\xa9");
	CHECK_STR("a = \"\"\"q \" qq \"\" done\"\"\"", "q \" qq \"\" done");
	CHECK_STR("a = \"\"\"one quote at end\"\"\"\"", "one quote at end\"");
	CHECK_STR("a = \"\"\"two quotes at end\"\"\"\"\"", "two quotes at end\"\"");
	CHECK_STR("a = \"\"\"\"start\"\"\"", "\"start");
	CHECK_STR("a = \"\"\"\"\"start\"\"\"", "\"\"start");
	CHECK_STR("a = \"\"\"esc \\\"\\\"\\\" quotes\"\"\"", "esc \"\"\" quotes");

	check_error("a = \"\"\"six quotes\"\"\"\"\"\"", 1, 18, "too many quotes");
	check_error("a = \"\"\"x\\ y\"\"\"", 1, 9,
		    "backslash followed by whitespace must end the line");
	check_error("a = \"\"\"\nok\n\\q\"\"\"", 3, 1, "invalid escape sequence '\\q'");
	check_error("a = \"\"\"\nno end\n", 1, 5, "unterminated string");
	check_error("a = \"\"\"ctl \x02\"\"\"", 1, 12, "control character U+0002");
	INVALID("a = \"\"\"a\"\"\"\"\"\"\"", "a = \"\"\"a\rb\"\"\"", "a = \"\"\"\\uD800\"\"\"");
}

static void test_literal_strings(void **state MIREN_UNUSED)
{
	CHECK_STR("a = ''", "");
	CHECK_STR("a = 'C:\\Users\\nodejs\\templates'", "C:\\Users\\nodejs\\templates");
	CHECK_STR("a = '<\\i\\c*\\s*>'", "<\\i\\c*\\s*>");
	CHECK_STR("a = 'Tom \"Dubs\" Preston'", "Tom \"Dubs\" Preston");
	CHECK_STR("a = 'tab\tok'", "tab\tok");
	CHECK_STR("a = '''I [dw]on't need \\d{2} apples'''", "I [dw]on't need \\d{2} apples");
	CHECK_STR("a = '''\nfirst\n  second\n'''", "first\n  second\n");
	CHECK_STR("a = '''\r\nx\r\ny'''", "x\ny");
	CHECK_STR("a = '''no \\\n trim'''", "no \\\n trim");
	CHECK_STR("a = ''''one quote'''", "'one quote");
	CHECK_STR("a = '''''two quotes'''", "''two quotes");
	CHECK_STR("a = '''end one''''", "end one'");
	CHECK_STR("a = '''end two'''''", "end two''");
	CHECK_STR("a = '''in '' the middle'''", "in '' the middle");

	check_error("a = 'open", 1, 5, "unterminated string");
	check_error("a = 'line\nbreak'", 1, 5, "unterminated string");
	check_error("a = '''x''''''", 1, 9, "too many quotes");
	check_error("a = 'ctl \x01'", 1, 10, "control character");
	check_error("a = '''ctl \x7f'''", 1, 12, "control character");
	INVALID("a = 'a'b'", "a = '''\nunterminated", "a = '''''''''");
	CHECK_STR("a = ''''''''", "''");
}

/* ---- numbers and booleans ------------------------------------------------ */

static void test_integers(void **state MIREN_UNUSED)
{
	check_int("a = 0", 0);
	check_int("a = +0", 0);
	check_int("a = -0", 0);
	check_int("a = 99", 99);
	check_int("a = +17", 17);
	check_int("a = -17", -17);
	check_int("a = 1_000", 1000);
	check_int("a = 5_349_221", 5349221);
	check_int("a = 53_49_221", 5349221);
	check_int("a = 1_2_3_4_5", 12345);
	check_int("a = 0xDEADBEEF", 0xDEADBEEF);
	check_int("a = 0xdeadbeef", 0xdeadbeef);
	check_int("a = 0xdead_beef", 0xdeadbeef);
	check_int("a = 0x00ff", 255);
	check_int("a = 0o01234567", 01234567);
	check_int("a = 0o755", 0755);
	check_int("a = 0b11010110", 214);
	check_int("a = 0b1_0", 2);
	check_int("a = 0x0", 0);
	check_int("a = 9223372036854775807", INT64_MAX);
	check_int("a = -9223372036854775808", INT64_MIN);
	check_int("a = 0x7FFFFFFFFFFFFFFF", INT64_MAX);
	check_int("a = 0o777777777777777777777", INT64_MAX);
	check_int("a = 0b111111111111111111111111111111111111111111111111111111111111111",
		  INT64_MAX);

	check_error("a = 01", 1, 5, "leading zeros are not allowed in '01'");
	check_error("a = -012", 1, 5, "leading zeros");
	check_error("a = 0_0", 1, 5, "leading zeros");
	check_error("a = 1__000", 1, 5, "underscores must be between digits");
	check_error("a = 1_", 1, 5, "underscores must be between digits");
	check_error("a = 0x_1", 1, 5, "underscores must be between digits");
	check_error("a = +0x1", 1, 5, "sign is not allowed");
	check_error("a = -0b1", 1, 5, "sign is not allowed");
	check_error("a = 9223372036854775808", 1, 5, "out of 64-bit range");
	check_error("a = -9223372036854775809", 1, 5, "out of 64-bit range");
	check_error("a = 0x8000000000000000", 1, 5, "out of 64-bit range");
	check_error("a = 0xFFFFFFFFFFFFFFFFFF", 1, 5, "out of 64-bit range");
	check_error("a = 99999999999999999999999", 1, 5, "out of 64-bit range");
	check_error("a = 0o8", 1, 5, "invalid digit");
	check_error("a = 0b102", 1, 5, "invalid digit");
	check_error("a = 0xG", 1, 5, "invalid digit");
	check_error("a = 0x", 1, 5, "digits required");
	INVALID("a = _1", "a = ++1", "a = +-1", "a = 1-2", "a = 0X1F", "a = 0O7", "a = 0B1",
		"a = 1a", "a = 12__3", "a = +", "a = -", "a = 1 000", "a = 0b", "a = 0o");
}

static void test_floats(void **state MIREN_UNUSED)
{
	check_float("a = +1.0", 1.0);
	check_float("a = 3.1415", 3.1415);
	check_float("a = -0.01", -0.01);
	check_float("a = 5e+22", 5e22);
	check_float("a = 1e06", 1e6);
	check_float("a = -2E-2", -2e-2);
	check_float("a = 6.626e-34", 6.626e-34);
	check_float("a = 224_617.445_991_228", 224617.445991228);
	check_float("a = 1_0e1_0", 10e10);
	check_float("a = 0.0", 0.0);
	check_float("a = -0.0", -0.0);
	check_float("a = +0.0", 0.0);
	check_float("a = 0e0", 0.0);
	check_float("a = 1e-400", 0.0);
	check_float("a = 1.7976931348623157e308", 1.7976931348623157e308);
	check_float("a = inf", INFINITY);
	check_float("a = +inf", INFINITY);
	check_float("a = -inf", -INFINITY);
	check_float("a = nan", NAN);
	check_float("a = +nan", NAN);
	check_float("a = -nan", NAN);

	check_error("a = .5", 1, 5, "digit is required before '.'");
	check_error("a = +.5", 1, 5, "digit is required before '.'");
	check_error("a = 5.", 1, 5, "digits required after '.'");
	check_error("a = 1e", 1, 5, "digits required in exponent");
	check_error("a = 1e+", 1, 5, "digits required in exponent");
	check_error("a = 1.e5", 1, 5, "digits required after '.'");
	check_error("a = 01.5", 1, 5, "leading zeros");
	check_error("a = 3.14_", 1, 5, "underscores must be between digits");
	check_error("a = 3_.14", 1, 5, "underscores must be between digits");
	check_error("a = 3._14", 1, 5, "underscores must be between digits");
	check_error("a = 1e_5", 1, 5, "underscores must be between digits");
	check_error("a = 1e400", 1, 5, "out of range");
	INVALID("a = 1.2.3", "a = 1e5e5", "a = 1e5.0", "a = 1.5x", "a = Inf", "a = NaN",
		"a = infinity", "a = -inf1", "a = in", "a = nan_", "a = 1..2", "a = 0x1.5",
		"a = 1,5", "a = e5", "a = 1 .5");
}

static void test_booleans(void **state MIREN_UNUSED)
{
	struct toml_value *root = parse_ok("t = true\nf = false\n");
	assert_int_equal(toml_get(root, "t")->type, TOML_BOOL);
	assert_true(toml_get(root, "t")->u.boolean);
	assert_false(toml_get(root, "f")->u.boolean);
	toml_free(root);
	check_error("a = True", 1, 5, "strings must be quoted");
	INVALID("a = TRUE", "a = truex", "a = tru", "a = false1", "a = f", "a = yes");
}

/* ---- dates and times ------------------------------------------------------ */

static void test_datetimes(void **state MIREN_UNUSED)
{
	check_dt("a = 1979-05-27T07:32:00Z", TOML_DATETIME, "1979-05-27T07:32:00Z");
	check_dt("a = 1979-05-27T00:32:00-07:00", TOML_DATETIME, "1979-05-27T00:32:00-07:00");
	check_dt("a = 1979-05-27T00:32:00.999999-07:00", TOML_DATETIME,
		 "1979-05-27T00:32:00.999999-07:00");
	check_dt("a = 1979-05-27 07:32:00Z", TOML_DATETIME, "1979-05-27T07:32:00Z");
	check_dt("a = 1979-05-27t07:32:00z", TOML_DATETIME, "1979-05-27T07:32:00Z");
	check_dt("a = 1979-05-27T07:32:00+05:30", TOML_DATETIME, "1979-05-27T07:32:00+05:30");
	check_dt("a = 1979-05-27T07:32:00.123456789Z", TOML_DATETIME,
		 "1979-05-27T07:32:00.123456789Z");
	check_dt("a = 1979-05-27T07:32:00", TOML_DATETIME_LOCAL, "1979-05-27T07:32:00");
	check_dt("a = 1979-05-27 07:32:00.5", TOML_DATETIME_LOCAL, "1979-05-27T07:32:00.5");
	check_dt("a = 1979-05-27", TOML_DATE_LOCAL, "1979-05-27");
	check_dt("a = 1979-05-27 # date then comment", TOML_DATE_LOCAL, "1979-05-27");
	check_dt("a = 07:32:00", TOML_TIME_LOCAL, "07:32:00");
	check_dt("a = 00:32:00.999999", TOML_TIME_LOCAL, "00:32:00.999999");
	check_dt("a = 23:59:60", TOML_TIME_LOCAL, "23:59:60");
	check_dt("a = 2000-02-29", TOML_DATE_LOCAL, "2000-02-29");
	check_dt("a = 2024-02-29", TOML_DATE_LOCAL, "2024-02-29");
	check_dt("a = 2021-12-31", TOML_DATE_LOCAL, "2021-12-31");

	struct toml_value *root = parse_ok("a = [1979-05-27, 07:32:00, 1979-05-27T07:32:00Z]");
	const struct toml_value *arr = toml_get(root, "a");
	assert_int_equal(arr->u.array.len, 3);
	assert_int_equal(arr->u.array.items[0]->type, TOML_DATE_LOCAL);
	assert_int_equal(arr->u.array.items[1]->type, TOML_TIME_LOCAL);
	assert_int_equal(arr->u.array.items[2]->type, TOML_DATETIME);
	toml_free(root);
	root = parse_ok("a = {d = 1979-05-27T07:32:00}");
	assert_int_equal(path_get(root, 2, "a", "d")->type, TOML_DATETIME_LOCAL);
	toml_free(root);
}

static void test_invalid_datetimes(void **state MIREN_UNUSED)
{
	check_error("a = 1979-13-27", 1, 5, "month 13 out of range");
	check_error("a = 1979-00-27", 1, 5, "month 00 out of range");
	check_error("a = 2021-02-30", 1, 5, "day 30 out of range for 2021-02");
	check_error("a = 2021-02-29", 1, 5, "day 29 out of range");
	check_error("a = 1900-02-29", 1, 5, "day 29 out of range");
	check_error("a = 2021-04-31", 1, 5, "day 31 out of range");
	check_error("a = 2021-01-32", 1, 5, "day 32 out of range");
	check_error("a = 2021-01-00", 1, 5, "day 00 out of range");
	check_error("a = 1979-05-27T24:00:00", 1, 5, "hour 24 out of range");
	check_error("a = 1979-05-27T23:60:00", 1, 5, "minute 60 out of range");
	check_error("a = 1979-05-27T23:59:61", 1, 5, "second 61 out of range");
	check_error("a = 07:32", 1, 5, "seconds are required");
	check_error("a = 1979-05-27T07:32Z", 1, 5, "seconds are required");
	check_error("a = 1979-05-27T07:32:00.Z", 1, 5, "digits required after '.'");
	check_error("a = 1979-05-27T07:32:00+24:00", 1, 5, "offset +24:00 out of range");
	check_error("a = 1979-05-27T07:32:00+0700", 1, 5, "offset must be Z or +HH:MM");
	check_error("a = 1979-05-27T07:32:00Zx", 1, 25, "invalid date-time");
	check_error("a = 07:32:00Z", 1, 13, "invalid time");
	check_error("a = 1979-05-27x", 1, 15, "invalid date");
	INVALID("a = 1979-5-27", "a = 1979-05-7", "a = 79-05-27", "a = 1979-05-27T",
		"a = 1979-05-27 07", "a = 1979-05-27 07:32:00 Z", "a = 7:32:00", "a = 07:32:0",
		"a = 1979-05-27T07:32:00-7:00", "a = 1979-05-27_07:32:00", "a = 1979/05/27",
		"a = 1979-05-27T07:32:00.", "a = 12:34:56.78.9");
}

/* ---- arrays --------------------------------------------------------------- */

static void test_arrays(void **state MIREN_UNUSED)
{
	struct toml_value *root = parse_ok("integers = [ 1, 2, 3 ]\n"
					   "colors = [ \"red\", \"yellow\", \"green\" ]\n"
					   "nested = [ [ 1, 2 ], [3, 4, 5] ]\n"
					   "mixed = [ 0.1, \"s\", true, [], {x = 1}, 1979-05-27 ]\n"
					   "empty = []\n"
					   "trailing = [ 1, 2, ]\n"
					   "multi = [\n  1, # one\n  # alone\n  2\n  ,3\n]\n"
					   "crlf = [\r\n1,\r\n2\r\n]\n");
	const struct toml_value *v = toml_get(root, "integers");
	assert_int_equal(v->type, TOML_ARRAY);
	assert_int_equal(v->u.array.len, 3);
	assert_int_equal(v->u.array.items[2]->u.integer, 3);
	v = toml_get(root, "nested");
	assert_int_equal(v->u.array.items[1]->u.array.len, 3);
	v = toml_get(root, "mixed");
	assert_int_equal(v->u.array.len, 6);
	assert_int_equal(v->u.array.items[0]->type, TOML_FLOAT);
	assert_int_equal(v->u.array.items[1]->type, TOML_STRING);
	assert_int_equal(v->u.array.items[2]->type, TOML_BOOL);
	assert_int_equal(v->u.array.items[3]->type, TOML_ARRAY);
	assert_int_equal(v->u.array.items[4]->type, TOML_TABLE);
	assert_int_equal(v->u.array.items[5]->type, TOML_DATE_LOCAL);
	assert_int_equal(toml_get(root, "empty")->u.array.len, 0);
	assert_int_equal(toml_get(root, "trailing")->u.array.len, 2);
	assert_int_equal(toml_get(root, "multi")->u.array.len, 3);
	assert_int_equal(toml_get(root, "crlf")->u.array.len, 2);
	toml_free(root);

	check_error("a = [1 2]", 1, 8, "expected ',' or ']'");
	check_error("a = [,]", 1, 6, "expected a value, found ','");
	check_error("a = [1,,2]", 1, 8, "expected a value, found ','");
	check_error("a = [1,\n2", 2, 2,
		    "expected ',' or ']' after array element, found end of file");
	check_error("a = [", 1, 6, "expected a value, found end of file");
	INVALID("a = [1,]]", "a = ]", "a = [1 # c ]", "a = [[1]", "a = [ , 1]");
}

/* ---- tables --------------------------------------------------------------- */

static void test_tables(void **state MIREN_UNUSED)
{
	struct toml_value *root = parse_ok("top = 0\n"
					   "[table-1]\nkey1 = \"some string\"\nkey2 = 123\n\n"
					   "[table-2]\nkey1 = \"another string\"\n"
					   "[dog.\"tater.man\"]\ntype.name = \"pug\"\n"
					   "[ j . \"ʞ\" . 'l' ]\n"
					   "[x.y.z.w] # implicit parents\n"
					   "[x] # super-table afterwards is fine\n"
					   "k = 1\n"
					   "[empty]\n");
	assert_int_equal(toml_get(root, "top")->u.integer, 0);
	assert_int_equal(path_get(root, 2, "table-1", "key2")->u.integer, 123);
	assert_string_equal(path_get(root, 4, "dog", "tater.man", "type", "name")->u.str.ptr,
			    "pug");
	assert_int_equal(path_get(root, 3, "j", "ʞ", "l")->type, TOML_TABLE);
	assert_int_equal(path_get(root, 4, "x", "y", "z", "w")->u.table.len, 0);
	assert_int_equal(path_get(root, 2, "x", "k")->u.integer, 1);
	assert_int_equal(path_get(root, 1, "empty")->u.table.len, 0);
	toml_free(root);

	/* Dotted keys may define sub-tables; [header]s may add sub-tables to them. */
	static const char fruit[] = "[fruit]\napple.color = \"red\"\napple.taste.sweet = true\n"
				    "[fruit.apple.texture]\nsmooth = true";
	VALID(fruit, "a.b.c = 1\n[a.b.d]\ne = 2", "[a.b.c]\n[a]\nb.d = 1", "[a]\n[b]\n[a.c]",
	      "[a.b]\n[a.c]\n[a]");

	check_error("[a]\nb = 1\n[a]", 3, 1, "table 'a' defined twice");
	check_error("[a.b]\n[a.b]", 2, 1, "table 'a.b' defined twice");
	check_error("[a]\n[x]\n[a]", 3, 1, "table 'a' defined twice");
	check_error("[fruit]\napple.color = \"red\"\n[fruit.apple]", 3, 1,
		    "table 'fruit.apple' already defined by dotted keys");
	check_error("[fruit]\napple.taste.sweet = true\n[fruit.apple.taste]", 3, 1,
		    "already defined by dotted keys");
	check_error("a.b = 1\n[a]", 2, 1, "table 'a' already defined by dotted keys");
	check_error("[a]\nb = 1\n[a.b]", 3, 1, "key already holds an integer");
	check_error("[a]\nb = 1\n[a.b.c]", 3, 4, "key 'a.b' is already an integer, not a table");
	check_error("[a.b.c]\nz = 9\n[a]\nb.c.t = 1", 4, 3,
		    "cannot add to table 'b.c' with dotted keys");
	check_error("[a.b.c]\n[a]\nb.d = 1\n[a.b]", 4, 1, "already defined by dotted keys");
	check_error("[]", 1, 2, "expected a key");
	check_error("[a", 1, 3, "expected ']' to close the table header");
	check_error("[a]b = 1", 1, 4, "expected a newline after table header");
	check_error("[a]\n[a.]", 2, 4, "expected a key");
	INVALID("[.a]", "[a..b]", "[a] ]", "[a b]", "[\"a\nb\"]", "[a]]", "[ [a] ]x", "[[a]\n",
		"[a]\n[\"a\"]", "['''a''']");
}

static void test_inline_tables(void **state MIREN_UNUSED)
{
	struct toml_value *root = parse_ok(
		"name = { first = \"Tom\", last = \"Preston-Werner\" }\n"
		"point = {x=1,y=2}\n"
		"animal = { type.name = \"pug\", type.size = 1 }\n"
		"empty = {}\n"
		"spaced = {  }\n"
		"nested = { a = { b = { c = [1, {d = 2}] } } }\n"
		"multi_value = { a = [\n 1,\n 2\n], s = \"\"\"\nx\"\"\" }\n");
	assert_string_equal(path_get(root, 2, "name", "last")->u.str.ptr, "Preston-Werner");
	assert_int_equal(path_get(root, 2, "point", "y")->u.integer, 2);
	assert_int_equal(path_get(root, 3, "animal", "type", "size")->u.integer, 1);
	assert_int_equal(toml_get(root, "empty")->u.table.len, 0);
	assert_int_equal(toml_get(root, "spaced")->u.table.len, 0);
	assert_int_equal(path_get(root, 4, "nested", "a", "b", "c")->u.array.len, 2);
	assert_int_equal(path_get(root, 2, "multi_value", "a")->u.array.len, 2);
	toml_free(root);

	check_error("a = {b = 1,}", 1, 12, "trailing comma not allowed in inline table");
	check_error("a = {b = 1\n}", 1, 11, "newlines and comments are not allowed");
	check_error("a = {\nb = 1}", 1, 6, "newlines and comments are not allowed");
	check_error("a = {b = 1 # c\n}", 1, 12, "newlines and comments are not allowed");
	check_error("a = {b = 1 c = 2}", 1, 12, "expected ',' or '}' in inline table");
	check_error("a = {b = 1, b = 2}", 1, 13, "duplicate key 'b'");
	check_error("a = {b = {c = 1}, b.d = 2}", 1, 19, "cannot add to inline table 'b'");
	/* Inline tables are immutable once defined. */
	check_error("a = {b = 1}\na.c = 2", 2, 1, "cannot add to inline table 'a'");
	check_error("a = {b = 1}\n[a]", 2, 1, "table 'a' already defined as an inline table");
	check_error("a = {b = 1}\n[a.c]", 2, 2, "cannot add to inline table 'a'");
	check_error("a = {b.c = 1}\n[a.b.d]", 2, 2, "cannot add to inline table 'a'");
	check_error("[t]\na = {}\n[t.a]", 3, 1, "already defined as an inline table");
	check_error("a = [{b = 1}]\n[[a]]", 2, 1, "cannot append to static array 'a'");
	INVALID("a = {", "a = {b}", "a = {b =}", "a = {, }", "a = {b = 1,, c = 2}", "a = {b = 1",
		"a = {,b = 1}", "a = {b = 1}}");
}

static void test_arrays_of_tables(void **state MIREN_UNUSED)
{
	struct toml_value *root = parse_ok("[[products]]\nname = \"Hammer\"\nsku = 738594937\n\n"
					   "[[products]]  # empty table within the array\n\n"
					   "[[products]]\nname = \"Nail\"\ncolor = \"gray\"\n");
	const struct toml_value *p = toml_get(root, "products");
	assert_int_equal(p->type, TOML_ARRAY);
	assert_int_equal(p->u.array.len, 3);
	assert_string_equal(toml_get(p->u.array.items[0], "name")->u.str.ptr, "Hammer");
	assert_int_equal(p->u.array.items[1]->u.table.len, 0);
	assert_string_equal(toml_get(p->u.array.items[2], "color")->u.str.ptr, "gray");
	toml_free(root);

	root = parse_ok("[[fruits]]\nname = \"apple\"\n"
			"[fruits.physical]\ncolor = \"red\"\n"
			"[[fruits.varieties]]\nname = \"red delicious\"\n"
			"[[fruits.varieties]]\nname = \"granny smith\"\n"
			"[[fruits]]\nname = \"banana\"\n"
			"[[fruits.varieties]]\nname = \"plantain\"\n");
	const struct toml_value *f = toml_get(root, "fruits");
	assert_int_equal(f->u.array.len, 2);
	assert_string_equal(path_get(f->u.array.items[0], 2, "physical", "color")->u.str.ptr,
			    "red");
	assert_int_equal(toml_get(f->u.array.items[0], "varieties")->u.array.len, 2);
	assert_int_equal(toml_get(f->u.array.items[1], "varieties")->u.array.len, 1);
	toml_free(root);

	VALID("[[a.b]]\n[[a.b]]\n[a]\nx = 1", "[[a]]\nb.c = 1\n[[a]]\nb.c = 2",
	      "[[a]]\n[a.b]\n[[a]]\n[a.b]", "[[ a . b ]]", "[a]\n[[a.b]]\n[[a.b]]");

	check_error("fruits = []\n[[fruits]]", 2, 1, "cannot append to static array 'fruits'");
	check_error("a = [1]\n[a.b]", 2, 2, "key 'a' is a static array, not a table");
	check_error("[[fruits]]\n[fruits]", 2, 1, "already defined as an array of tables");
	check_error("[fruits]\n[[fruits]]", 2, 1, "it cannot become an array of tables");
	check_error("[[a]]\nb.c = 1\n[a.b]", 3, 1, "already defined by dotted keys");
	check_error("[[a.b]]\n[a]\nb.x = 1", 3, 1, "cannot add to array of tables 'b'");
	check_error("a = 1\n[[a]]", 2, 1, "key already holds an integer");
	check_error("[[a]", 1, 4, "expected ']]' to close the array of tables header");
	INVALID("[[a] ]", "[ [a]]", "[[]]", "[[a]]]", "[[a.b]]\n[a.b]");
}

/* ---- encoding ------------------------------------------------------------- */

static void test_encoding(void **state MIREN_UNUSED)
{
	/* BOM at the start is skipped; elsewhere it is just a character. */
	struct toml_value *root = parse_ok("\xEF\xBB\xBF"
					   "a = 1\n");
	assert_int_equal(toml_get(root, "a")->u.integer, 1);
	toml_free(root);
	check_invalid("a = 1\n\xEF\xBB\xBF"
		      "b = 2");

	/* CRLF line endings. */
	root = parse_ok("a = 1\r\n[t]\r\nb = \"x\"\r\n# c\r\nc = '''\r\ny'''\r\n");
	assert_int_equal(path_get(root, 2, "t", "b")->type, TOML_STRING);
	assert_string_equal(path_get(root, 2, "t", "c")->u.str.ptr, "y");
	toml_free(root);

	check_error("a = 1\rb = 2", 1, 6, "carriage return must be followed by a newline");
	check_error("a = 1\r", 1, 6, "carriage return");
	check_error("# \r", 1, 3, "carriage return");
	check_error("a = \"\xff\"", 1, 6, "invalid utf-8 byte 0xff");
	check_error("a = \"\xc0\x80\"", 1, 6, "invalid utf-8 byte 0xc0");
	check_error("a = \"\xe0\x80\x80\"", 1, 6, "invalid utf-8 sequence");
	check_error("a = \"\xed\xa0\x80\"", 1, 6, "invalid utf-8 sequence");
	check_error("a = \"\xf4\x90\x80\x80\"", 1, 6, "invalid utf-8 sequence");
	check_error("# ok\n# \xc3\x28", 2, 3, "invalid utf-8 sequence");
	check_error("a = \"\xc3", 1, 6, "truncated utf-8 sequence");
	check_error("a = 1\n\x80", 2, 1, "invalid utf-8 byte 0x80");
	VALID("a = \"\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 \xf4\x8f\xbf\xbf\"");

	/* A NULL or empty text is an empty document. */
	struct toml_error err;
	root = toml_parse(NULL, 0, &err);
	assert_non_null(root);
	assert_int_equal(root->u.table.len, 0);
	toml_free(root);
	root = toml_parse("a = 1 trailing", 5, NULL);
	assert_non_null(root);
	assert_int_equal(toml_get(root, "a")->u.integer, 1);
	toml_free(root);
	assert_null(toml_parse("a = @", 5, NULL));
}

/* ---- errors and positions ------------------------------------------------ */

static void test_error_positions(void **state MIREN_UNUSED)
{
	check_error("a = 1\nb = @", 2, 5, "expected a value");
	check_error("\n\n  x = \"\\z\"", 3, 8, "invalid escape sequence '\\z'");
	check_error("a = [\n  1,\n  2,\n  oops\n]", 4, 3, "strings must be quoted");
	check_error("a = \"\"\"\nline\n  \\q\"\"\"", 3, 3, "invalid escape");
	check_error("a = '''\n\n'''\nb = 1\nb = 2", 5, 1, "duplicate key 'b'");
	check_error("[server]\nport = 80\n\n[server]", 4, 1, "table 'server' defined twice");
	check_error("a = 2021-02-30", 1, 5, "day 30");
	check_error("a\t=\t1\t\tx", 1, 8, "found 'x'");
	check_error("a = 1\r\nb = @", 2, 5, "expected a value");
	check_error("\xEF\xBB\xBF"
		    "a = @",
		    1, 5, "expected a value");
	check_error("k = \"é\\q\"", 1, 8, "invalid escape sequence '\\q'");

	/* Each reason fits and is lowercase at the start. */
	struct toml_error err;
	assert_null(toml_parse("[a]\n[a]", 7, &err));
	assert_true(err.reason[0] >= 'a' && err.reason[0] <= 'z');
}

static void test_positions_recorded(void **state MIREN_UNUSED)
{
	struct toml_value *root = parse_ok("# header\n"
					   "name = \"app\"\n"
					   "  port =   8080\n"
					   "[deploy]\n"
					   "site.\"x y\" = [1, 2]\n"
					   "[[job]]\n"
					   "[[job]]\n"
					   "id = { n = 7 }\n");
	const struct toml_kv *kv = toml_get_kv(root, "name");
	assert_non_null(kv);
	assert_int_equal(kv->pos.line, 2);
	assert_int_equal(kv->pos.col, 1);
	assert_int_equal(kv->value->pos.line, 2);
	assert_int_equal(kv->value->pos.col, 8);

	kv = toml_get_kv(root, "port");
	assert_int_equal(kv->pos.line, 3);
	assert_int_equal(kv->pos.col, 3);
	assert_int_equal(kv->value->pos.col, 12);

	kv = toml_get_kv(root, "deploy");
	assert_int_equal(kv->pos.line, 4);
	assert_int_equal(kv->pos.col, 2);
	assert_int_equal(kv->value->pos.line, 4);
	assert_int_equal(kv->value->pos.col, 1);

	const struct toml_value *deploy = kv->value;
	kv = toml_get_kv(deploy, "site");
	assert_int_equal(kv->pos.line, 5);
	assert_int_equal(kv->pos.col, 1);
	kv = toml_get_kv(kv->value, "x y");
	assert_non_null(kv);
	assert_int_equal(kv->pos.line, 5);
	assert_int_equal(kv->pos.col, 6);
	assert_int_equal(kv->value->pos.col, 14);
	assert_int_equal(kv->value->u.array.items[1]->pos.col, 18);

	const struct toml_value *job = toml_get(root, "job");
	assert_int_equal(job->pos.line, 6);
	assert_int_equal(job->u.array.items[0]->pos.line, 6);
	assert_int_equal(job->u.array.items[1]->pos.line, 7);
	kv = toml_get_kv(toml_get(job->u.array.items[1], "id"), "n");
	assert_int_equal(kv->pos.line, 8);
	assert_int_equal(kv->pos.col, 8);
	assert_int_equal(kv->value->pos.col, 12);

	/* Key order is document order. */
	assert_string_equal(root->u.table.items[0].key, "name");
	assert_string_equal(root->u.table.items[1].key, "port");
	assert_string_equal(root->u.table.items[2].key, "deploy");
	assert_string_equal(root->u.table.items[3].key, "job");
	toml_free(root);

	/* A header that makes an implicit table explicit moves its position. */
	root = parse_ok("[a.b]\n\n[a]\n");
	assert_int_equal(toml_get(root, "a")->pos.line, 3);
	assert_int_equal(path_get(root, 2, "a", "b")->pos.line, 1);
	toml_free(root);
}

/* ---- limits ---------------------------------------------------------------- */

static char *repeat_doc(const char *pre, const char *open, int n, const char *mid,
			const char *close)
{
	size_t len = strlen(pre) + (strlen(open) + strlen(close)) * (size_t)n + strlen(mid) + 1;
	char *s = malloc(len), *p = s;
	assert_non_null(s);
	p = stpcpy(p, pre);
	for (int i = 0; i < n; i++)
		p = stpcpy(p, open);
	p = stpcpy(p, mid);
	for (int i = 0; i < n; i++)
		p = stpcpy(p, close);
	return s;
}

static void test_depth_limit(void **state MIREN_UNUSED)
{
	struct toml_error err;
	char *doc = repeat_doc("a = ", "[", 100, "1", "]");
	toml_free(parse_ok(doc));
	free(doc);

	doc = repeat_doc("a = ", "[", 129, "", "]");
	assert_null(toml_parse(doc, strlen(doc), &err));
	assert_non_null(strstr(err.reason, "nesting too deep"));
	free(doc);

	doc = repeat_doc("a = ", "[", 100000, "", "");
	assert_null(toml_parse(doc, strlen(doc), &err));
	assert_non_null(strstr(err.reason, "nesting too deep"));
	free(doc);

	doc = repeat_doc("a = ", "{b = ", 200, "1", "}");
	assert_null(toml_parse(doc, strlen(doc), &err));
	assert_non_null(strstr(err.reason, "nesting too deep"));
	free(doc);

	doc = repeat_doc("a = ", "[{b = ", 100, "1", "}]");
	assert_null(toml_parse(doc, strlen(doc), &err));
	free(doc);

	doc = repeat_doc("", "a.", 500, "b = 1", "");
	assert_null(toml_parse(doc, strlen(doc), &err));
	assert_non_null(strstr(err.reason, "nesting too deep"));
	free(doc);

	doc = repeat_doc("[", "a.", 500, "b]", "");
	assert_null(toml_parse(doc, strlen(doc), &err));
	assert_non_null(strstr(err.reason, "nesting too deep"));
	free(doc);

	doc = repeat_doc("[[", "a.", 500, "b]]", "");
	assert_null(toml_parse(doc, strlen(doc), &err));
	free(doc);

	doc = repeat_doc("", "a.", 50, "b = 1", "");
	toml_free(parse_ok(doc));
	free(doc);
}

/* ---- lookups and names ----------------------------------------------------- */

static void test_lookup_api(void **state MIREN_UNUSED)
{
	struct toml_value *root = parse_ok("a = 1\nb = [1]\n");
	assert_null(toml_get(root, "missing"));
	assert_null(toml_get_kv(root, "missing"));
	assert_null(toml_get(toml_get(root, "a"), "x"));
	assert_null(toml_get(toml_get(root, "b"), "x"));
	assert_null(toml_get(NULL, "a"));
	toml_free(root);
	toml_free(NULL);

	assert_string_equal(toml_type_name(TOML_STRING), "string");
	assert_string_equal(toml_type_name(TOML_INTEGER), "integer");
	assert_string_equal(toml_type_name(TOML_FLOAT), "float");
	assert_string_equal(toml_type_name(TOML_BOOL), "bool");
	assert_string_equal(toml_type_name(TOML_DATETIME), "datetime");
	assert_string_equal(toml_type_name(TOML_DATETIME_LOCAL), "datetime-local");
	assert_string_equal(toml_type_name(TOML_DATE_LOCAL), "date-local");
	assert_string_equal(toml_type_name(TOML_TIME_LOCAL), "time-local");
	assert_string_equal(toml_type_name(TOML_ARRAY), "array");
	assert_string_equal(toml_type_name(TOML_TABLE), "table");
}

/* ---- tagged JSON -------------------------------------------------------------- */

static void test_tagged_json(void **state MIREN_UNUSED)
{
	check_json("", "{}");
	check_json("b = 1\na = \"x\"\n", "{\"b\":{\"type\":\"integer\",\"value\":\"1\"},"
					 "\"a\":{\"type\":\"string\",\"value\":\"x\"}}");
	check_json("i = -9223372036854775808\nh = 0xff\nt = true\nf = false",
		   "{\"i\":{\"type\":\"integer\",\"value\":\"-9223372036854775808\"},"
		   "\"h\":{\"type\":\"integer\",\"value\":\"255\"},"
		   "\"t\":{\"type\":\"bool\",\"value\":\"true\"},"
		   "\"f\":{\"type\":\"bool\",\"value\":\"false\"}}");
	check_json("a = 1.5\nb = 3.0\nc = 0.1\nd = -0.0\ne = 1e20\nf = inf\ng = -inf\nh = nan\n"
		   "i = 6.626e-34\nj = -nan",
		   "{\"a\":{\"type\":\"float\",\"value\":\"1.5\"},"
		   "\"b\":{\"type\":\"float\",\"value\":\"3.0\"},"
		   "\"c\":{\"type\":\"float\",\"value\":\"0.1\"},"
		   "\"d\":{\"type\":\"float\",\"value\":\"-0.0\"},"
		   "\"e\":{\"type\":\"float\",\"value\":\"1e+20\"},"
		   "\"f\":{\"type\":\"float\",\"value\":\"inf\"},"
		   "\"g\":{\"type\":\"float\",\"value\":\"-inf\"},"
		   "\"h\":{\"type\":\"float\",\"value\":\"nan\"},"
		   "\"i\":{\"type\":\"float\",\"value\":\"6.626e-34\"},"
		   "\"j\":{\"type\":\"float\",\"value\":\"nan\"}}");
	check_json("a = 1979-05-27 07:32:00z\nb = 1979-05-27T07:32:00.5\nc = 1979-05-27\nd = "
		   "07:32:00",
		   "{\"a\":{\"type\":\"datetime\",\"value\":\"1979-05-27T07:32:00Z\"},"
		   "\"b\":{\"type\":\"datetime-local\",\"value\":\"1979-05-27T07:32:00.5\"},"
		   "\"c\":{\"type\":\"date-local\",\"value\":\"1979-05-27\"},"
		   "\"d\":{\"type\":\"time-local\",\"value\":\"07:32:00\"}}");
	check_json("s = \"q\\\"\\n\\u00e9\\u0000\"",
		   "{\"s\":{\"type\":\"string\",\"value\":\"q\\\"\\n\xc3\xa9\\u0000\"}}");
	check_json("a = [1, [\"x\"], [], {}]\n[t]\nz.y = 1\n[[arr]]\n[[arr]]\nk = 'v'\n",
		   "{\"a\":[{\"type\":\"integer\",\"value\":\"1\"},[{\"type\":\"string\",\"value\":"
		   "\"x\"}],[],{}],"
		   "\"t\":{\"z\":{\"y\":{\"type\":\"integer\",\"value\":\"1\"}}},"
		   "\"arr\":[{},{\"k\":{\"type\":\"string\",\"value\":\"v\"}}]}");
	check_json("\"a\\u0000b\" = 1", "{\"a\\u0000b\":{\"type\":\"integer\",\"value\":\"1\"}}");
	assert_null(toml_to_tagged_json(NULL));
}

/* A larger realistic document. */
static void test_example_document(void **state MIREN_UNUSED)
{
	struct toml_value *root = parse_ok(
		"# This is a TOML document\n\n"
		"title = \"TOML Example\"\n\n"
		"[owner]\nname = \"Tom Preston-Werner\"\ndob = 1979-05-27T07:32:00-08:00\n\n"
		"[database]\nenabled = true\nports = [ 8000, 8001, 8002 ]\n"
		"data = [ [\"delta\", \"phi\"], [3.14] ]\n"
		"temp_targets = { cpu = 79.5, case = 72.0 }\n\n"
		"[servers]\n\n[servers.alpha]\nip = \"10.0.0.1\"\nrole = \"frontend\"\n\n"
		"[servers.beta]\nip = \"10.0.0.2\"\nrole = \"backend\"\n");
	assert_string_equal(toml_get(root, "title")->u.str.ptr, "TOML Example");
	assert_int_equal(path_get(root, 2, "owner", "dob")->type, TOML_DATETIME);
	assert_int_equal(path_get(root, 2, "database", "ports")->u.array.len, 3);
	assert_true(path_get(root, 3, "database", "temp_targets", "case")->u.flt == 72.0);
	assert_string_equal(path_get(root, 3, "servers", "beta", "role")->u.str.ptr, "backend");
	toml_free(root);
}

/* Keys holding NULs, and one key spelt several ways (escapes, literal and
 * basic strings): lookups compare whole keys, and a key written twice in
 * different spellings is a duplicate. */
static void test_key_spellings(void **state MIREN_UNUSED)
{
	/* "a\u0000" is not "a": two keys; lookups by C string find only "a". */
	struct toml_value *root = parse_ok("\"a\\u0000\" = 1\na = 2\n\"a\\U00000000b\" = 3\n");
	assert_int_equal(root->u.table.len, 3);
	assert_int_equal(toml_get(root, "a")->u.integer, 2);
	assert_int_equal(root->u.table.items[0].key_len, 2);
	assert_int_equal(root->u.table.items[2].key_len, 3);
	assert_false(toml_key_is(&root->u.table.items[0], "a"));
	assert_true(toml_key_is(&root->u.table.items[1], "a"));
	toml_free(root);
	/* The same above INDEX_MIN keys (hashed lookups). */
	root = parse_ok("k1=1\nk2=2\nk3=3\nk4=4\nk5=5\nk6=6\nk7=7\n\"name\\u0000\" = 8\nk9=9\n");
	assert_null(toml_get(root, "name"));
	toml_free(root);
	/* A literal string does not unescape: '\u0000' is six characters. */
	root = parse_ok("'a\\u0000' = 1\n");
	assert_int_equal(root->u.table.items[0].key_len, 7);
	assert_non_null(toml_get(root, "a\\u0000"));
	toml_free(root);
	/* Escape-equivalent spellings are the same key. */
	root = parse_ok("\"na\\u006de\" = 1\n");
	assert_int_equal(toml_get(root, "name")->u.integer, 1);
	toml_free(root);
	check_error("name = 1\n\"na\\u006de\" = 2\n", 2, 1, "duplicate key 'name'");
	check_error("'name' = 1\n\"name\" = 2\n", 2, 1, "duplicate key");
	check_error("\"\\U0000006eame\" = 1\nname = 2\n", 2, 1, "duplicate key");
	check_error("\"a\\u0000\" = 1\n\"a\\u0000\" = 2\n", 2, 1, "duplicate key");
	check_error("[services.web]\n[services.\"w\\u0065b\"]\n", 2, 1, "defined twice");
	check_error("a.\"b\\u0000\" = 1\na.'b' = 2\na.\"b\\u0000\" = 3\n", 3, 3, "duplicate key");
	/* Messages show control characters of a key as '?', never raw. */
	struct toml_error err;
	const char *twice = "\"k\\u0000\\n\" = 1\n\"k\\u0000\\n\" = 2\n";
	assert_null(toml_parse(twice, strlen(twice), &err));
	assert_non_null(strstr(err.reason, "duplicate key"));
	assert_null(strchr(err.reason, '\n'));
	/* "\x00" is not a TOML escape. */
	check_error("\"name\\x00\" = 1\n", 1, 6, "escape");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_comments),
		cmocka_unit_test(test_keyvals),
		cmocka_unit_test(test_keys),
		cmocka_unit_test(test_key_spellings),
		cmocka_unit_test(test_duplicate_keys),
		cmocka_unit_test(test_basic_strings),
		cmocka_unit_test(test_multiline_basic_strings),
		cmocka_unit_test(test_literal_strings),
		cmocka_unit_test(test_integers),
		cmocka_unit_test(test_floats),
		cmocka_unit_test(test_booleans),
		cmocka_unit_test(test_datetimes),
		cmocka_unit_test(test_invalid_datetimes),
		cmocka_unit_test(test_arrays),
		cmocka_unit_test(test_tables),
		cmocka_unit_test(test_inline_tables),
		cmocka_unit_test(test_arrays_of_tables),
		cmocka_unit_test(test_encoding),
		cmocka_unit_test(test_error_positions),
		cmocka_unit_test(test_positions_recorded),
		cmocka_unit_test(test_depth_limit),
		cmocka_unit_test(test_lookup_api),
		cmocka_unit_test(test_tagged_json),
		cmocka_unit_test(test_example_document),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
