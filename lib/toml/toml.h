/*
 * TOML 1.0 parser: text in, a tree of struct toml_value out.
 *
 * Complete per https://toml.io/en/v1.0.0: every value type, all string forms
 * and escapes, integer bases and underscores, inf/nan, offset/local
 * date-times, dates and times, inline tables, arrays of tables, dotted and
 * quoted keys, and the rules on redefining tables and keys.  Invalid
 * documents are rejected with a 1-based line:column and a reason.
 *
 * Every key and value records where it stands in the source, so callers can
 * report "app.toml:3:10: ..." for their own schema errors.
 *
 * Ownership: toml_parse() returns a tree the caller frees with toml_free();
 * every pointer inside it belongs to the tree.
 */
#ifndef MIREN_TOML_H
#define MIREN_TOML_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum toml_type {
	TOML_STRING,
	TOML_INTEGER,
	TOML_FLOAT,
	TOML_BOOL,
	TOML_DATETIME,       /* offset date-time: 1979-05-27T07:32:00Z */
	TOML_DATETIME_LOCAL, /* 1979-05-27T07:32:00 */
	TOML_DATE_LOCAL,     /* 1979-05-27 */
	TOML_TIME_LOCAL,     /* 07:32:00 */
	TOML_ARRAY,
	TOML_TABLE,
};

struct toml_pos {
	int line; /* 1-based */
	int col;  /* 1-based, in bytes */
};

struct toml_value;

struct toml_kv {
	/* The unquoted, unescaped key (one segment), NUL-terminated, but it may
	 * hold NULs of its own (from \u0000): compare with key_len, never as a
	 * C string (see toml_key_is). */
	char *key;
	size_t key_len; /* in bytes, without the terminating NUL */
	struct toml_pos pos;
	struct toml_value *value;
};

struct toml_value {
	enum toml_type type;
	struct toml_pos pos; /* where the value (or the table header) starts */
	union {
		struct {
			char *ptr; /* NUL-terminated; may hold embedded NULs from \u0000 */
			size_t len;
		} str;
		int64_t integer;
		double flt;
		bool boolean;
		/* date/time types: the source text normalised to RFC 3339 form
		 * ('T' separator, upper-case 'T' and 'Z'), as toml-test expects. */
		char *datetime;
		struct {
			struct toml_value **items;
			size_t len;
		} array;
		struct {
			struct toml_kv *items; /* in document order */
			size_t len;
		} table;
	} u;
};

struct toml_error {
	int line;
	int col;
	char reason[256];
};

/* Parses len bytes of text.  Returns the root table, or NULL with err filled. */
struct toml_value *toml_parse(const char *text, size_t len, struct toml_error *err);
void toml_free(struct toml_value *v);

/* Lookup of one key in a table, compared with its whole length (a key
 * "name\u0000x" is not "name"); NULL when absent or when tab is not a table.
 * O(1) on large tables. */
const struct toml_value *toml_get(const struct toml_value *tab, const char *key);
/* The same, returning the key/value record (for the key's position). */
const struct toml_kv *toml_get_kv(const struct toml_value *tab, const char *key);
/* True when kv's key is exactly name (same bytes, same length). */
bool toml_key_is(const struct toml_kv *kv, const char *name);
/* "string", "integer", "float", "bool", "datetime", "datetime-local",
 * "date-local", "time-local", "array", "table". */
const char *toml_type_name(enum toml_type t);

/*
 * The toml-test tagged JSON encoding of a document: tables as JSON objects,
 * arrays as JSON arrays, every other value as {"type": T, "value": "text"}.
 * Returns a malloc'd NUL-terminated string.
 */
char *toml_to_tagged_json(const struct toml_value *root);

#endif
