/*
 * toml.c: the TOML 1.0 parser behind toml.h.
 *
 * A single pass over the text with a hand-written recursive-descent reader.
 * The input is first checked as a whole for invalid UTF-8, control
 * characters and bare carriage returns, so the reader below only ever sees
 * printable text, tabs, LF and CRLF.
 *
 * Every node of the tree is a struct node whose first member is the public
 * struct toml_value; the rest holds what the redefinition rules need (how a
 * table came to exist, whether an array was built by [[headers]]), the
 * nesting depth, capacities and, for large tables, a hash index so that lookups stay O(1) on
 * hostile input.
 *
 * Nesting (arrays, inline tables, tables) is bounded by TOML_MAX_DEPTH, so
 * neither the reader nor toml_free() can exhaust the stack.
 */
#include "toml/toml.h"
#include "util/err.h"
#include "util/strbuf.h"
#include "util/text.h"

#include <errno.h>
#include <limits.h>
#include <locale.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TOML_MAX_DEPTH 128
#define INDEX_MIN 8 /* tables with this many keys get a hash index */

enum node_flags {
	F_EXPLICIT = 1u << 0, /* table defined by a [header] (or the root) */
	F_IMPLICIT = 1u << 1, /* table created as a parent in a [header] path */
	F_DOTTED = 1u << 2,   /* table created by a dotted key */
	F_INLINE = 1u << 3,   /* inline table: closed to later additions */
	F_AOT = 1u << 4,      /* array built by [[header]]s */
};

struct node {
	struct toml_value v; /* must stay first: a toml_value * is a node * */
	unsigned flags;
	int depth;
	size_t cap;    /* capacity of v.u.array.items / v.u.table.items */
	size_t *index; /* tables: hash slots holding item index + 1, 0 = empty */
	size_t index_cap;
};

struct keyseg {
	char *s;
	size_t len;
	struct toml_pos pos;
};

struct keypath {
	struct keyseg *segs;
	size_t n;
	size_t cap;
};

struct parser {
	const char *p;
	const char *end;
	const char *line_start;
	int line;
	bool failed;
	struct toml_error *err;
	struct node *root;
	struct node *cur; /* table that receives key/value pairs */
	struct strbuf sb; /* scratch for decoding strings */
};

static struct node *as_node(const struct toml_value *v)
{
	return (struct node *)v;
}

/* ---- positions and errors ---------------------------------------------- */

static struct toml_pos here(const struct parser *ps)
{
	struct toml_pos pos;
	ptrdiff_t col = ps->p - ps->line_start + 1;
	pos.line = ps->line;
	pos.col = col > INT_MAX ? INT_MAX : (int)col;
	return pos;
}

static void report_at(struct parser *ps, struct toml_pos pos, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Records the first error (at pos) and evaluates to -1.  A macro, so that
 * static analysers, which do not follow variadic calls, see the result. */
#define fail_at(ps, pos, ...)                        \
	({                                           \
		report_at((ps), (pos), __VA_ARGS__); \
		-1;                                  \
	})

static void report_at(struct parser *ps, struct toml_pos pos, const char *fmt, ...)
{
	if (ps->failed)
		return;
	ps->failed = true;
	if (ps->err) {
		va_list ap;
		ps->err->line = pos.line;
		ps->err->col = pos.col;
		va_start(ap, fmt);
		vsnprintf(ps->err->reason, sizeof(ps->err->reason), fmt, ap);
		va_end(ap);
	}
}

static int peek_at(const struct parser *ps, size_t k)
{
	if ((size_t)(ps->end - ps->p) <= k)
		return -1;
	return (unsigned char)ps->p[k];
}

static int peek(const struct parser *ps)
{
	return peek_at(ps, 0);
}

/* Length of the UTF-8 sequence led by byte c (input is pre-validated). */
static size_t utf8_seq_len(unsigned char c)
{
	if (c < 0x80)
		return 1;
	if (c >= 0xF0)
		return 4;
	if (c >= 0xE0)
		return 3;
	return 2;
}

/* A short human description of the character at q, for "found X". */
static const char *describe(const struct parser *ps, const char *q, char *buf, size_t cap)
{
	if (q >= ps->end)
		return "end of file";
	unsigned char c = (unsigned char)*q;
	if (c == '\n' || c == '\r')
		return "newline";
	if (c == '\t')
		return "tab";
	if (c == ' ')
		return "space";
	size_t n = utf8_seq_len(c);
	if (n > (size_t)(ps->end - q))
		n = (size_t)(ps->end - q);
	snprintf(buf, cap, "'%.*s'", (int)n, q);
	return buf;
}

static const char *describe_here(const struct parser *ps, char *buf, size_t cap)
{
	return describe(ps, ps->p, buf, cap);
}

static bool is_bare_key_char(int c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
	       c == '_' || c == '-';
}

/* Appends one key segment to out, quoted when it is not a bare key and with
 * control bytes shown as '?'.  Stops (adding "...") when out is nearly full. */
static void fmt_seg(struct strbuf *out, const char *s, size_t len)
{
	bool bare = len > 0;
	for (size_t i = 0; i < len; i++)
		if (!is_bare_key_char((unsigned char)s[i]))
			bare = false;
	if (!bare)
		strbuf_addch(out, '"');
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (out->len > 80) {
			strbuf_adds(out, "...");
			break;
		}
		strbuf_addch(out, (c < 0x20 || c == 0x7f) ? '?' : (char)c);
	}
	if (!bare)
		strbuf_addch(out, '"');
}

/* The first n segments of kp joined by '.', into buf (for error messages). */
static const char *fmt_path(const struct keypath *kp, size_t n, char *buf, size_t cap)
{
	struct strbuf sb = STRBUF_INIT;
	for (size_t i = 0; i < n && sb.len <= 80; i++) {
		if (i)
			strbuf_addch(&sb, '.');
		fmt_seg(&sb, kp->segs[i].s, kp->segs[i].len);
	}
	snprintf(buf, cap, "%s", sb.buf);
	strbuf_release(&sb);
	return buf;
}

static const char *article_type(enum toml_type t)
{
	switch (t) {
	case TOML_STRING:
		return "a string";
	case TOML_INTEGER:
		return "an integer";
	case TOML_FLOAT:
		return "a float";
	case TOML_BOOL:
		return "a boolean";
	case TOML_DATETIME:
		return "a date-time";
	case TOML_DATETIME_LOCAL:
		return "a local date-time";
	case TOML_DATE_LOCAL:
		return "a local date";
	case TOML_TIME_LOCAL:
		return "a local time";
	case TOML_ARRAY:
		return "an array";
	case TOML_TABLE:
		return "a table";
	}
	return "a value";
}

/* ---- the input check ----------------------------------------------------- */

/* Rejects invalid UTF-8, control characters and CR without LF anywhere. */
static int check_text(struct parser *ps)
{
	const unsigned char *s = (const unsigned char *)ps->p;
	const unsigned char *e = (const unsigned char *)ps->end;
	const unsigned char *ls = s;
	int line = 1;
	for (const unsigned char *q = s; q < e;) {
		unsigned char c = *q;
		struct toml_pos pos = { line, (int)(q - ls + 1 > INT_MAX ? INT_MAX : q - ls + 1) };
		if (c == '\n') {
			if (line < INT_MAX)
				line++;
			q++;
			ls = q;
			continue;
		}
		if (c == '\r') {
			if (q + 1 >= e || q[1] != '\n')
				return fail_at(ps, pos,
					       "carriage return must be followed by a newline");
			q++;
			continue;
		}
		if ((c < 0x20 && c != '\t') || c == 0x7f)
			return fail_at(ps, pos,
				       "control character U+%04X not allowed; "
				       "use an escape sequence in a basic string",
				       c);
		if (c < 0x80) {
			q++;
			continue;
		}
		size_t need;
		unsigned char lo = 0x80, hi = 0xBF;
		if (c >= 0xC2 && c <= 0xDF) {
			need = 1;
		} else if (c >= 0xE0 && c <= 0xEF) {
			need = 2;
			if (c == 0xE0)
				lo = 0xA0;
			else if (c == 0xED)
				hi = 0x9F;
		} else if (c >= 0xF0 && c <= 0xF4) {
			need = 3;
			if (c == 0xF0)
				lo = 0x90;
			else if (c == 0xF4)
				hi = 0x8F;
		} else {
			return fail_at(ps, pos, "invalid utf-8 byte 0x%02x", c);
		}
		if ((size_t)(e - q) <= need)
			return fail_at(ps, pos, "truncated utf-8 sequence");
		if (q[1] < lo || q[1] > hi)
			return fail_at(ps, pos, "invalid utf-8 sequence");
		for (size_t i = 2; i <= need; i++)
			if (q[i] < 0x80 || q[i] > 0xBF)
				return fail_at(ps, pos, "invalid utf-8 sequence");
		q += need + 1;
	}
	return 0;
}

/* ---- tree nodes ------------------------------------------------------------ */

static struct node *node_new(enum toml_type type, struct toml_pos pos, int depth)
{
	struct node *n = xcalloc(1, sizeof(*n));
	n->v.type = type;
	n->v.pos = pos;
	n->depth = depth;
	return n;
}

void toml_free(struct toml_value *v)
{
	if (!v)
		return;
	struct node *n = as_node(v);
	switch (v->type) {
	case TOML_STRING:
		free(v->u.str.ptr);
		break;
	case TOML_DATETIME:
	case TOML_DATETIME_LOCAL:
	case TOML_DATE_LOCAL:
	case TOML_TIME_LOCAL:
		free(v->u.datetime);
		break;
	case TOML_ARRAY:
		for (size_t i = 0; i < v->u.array.len; i++)
			toml_free(v->u.array.items[i]);
		free(v->u.array.items);
		break;
	case TOML_TABLE:
		for (size_t i = 0; i < v->u.table.len; i++) {
			free(v->u.table.items[i].key);
			toml_free(v->u.table.items[i].value);
		}
		free(v->u.table.items);
		free(n->index);
		break;
	default:
		break;
	}
	free(n);
}

static uint64_t hash_key(const char *s, size_t len)
{
	uint64_t h = 1469598103934665603ull;
	for (size_t i = 0; i < len; i++) {
		h ^= (unsigned char)s[i];
		h *= 1099511628211ull;
	}
	return h;
}

static void index_insert(struct node *t, size_t item)
{
	const struct toml_kv *kv = &t->v.u.table.items[item];
	size_t mask = t->index_cap - 1;
	size_t slot = (size_t)hash_key(kv->key, kv->key_len) & mask;
	while (t->index[slot])
		slot = (slot + 1) & mask;
	t->index[slot] = item + 1;
}

static void index_rebuild(struct node *t)
{
	size_t cap = 16;
	while (cap < t->v.u.table.len * 2 + 2)
		cap *= 2;
	free(t->index);
	t->index = xcalloc(cap, sizeof(*t->index));
	t->index_cap = cap;
	for (size_t i = 0; i < t->v.u.table.len; i++)
		index_insert(t, i);
}

/* The item index of key in table t, or -1. */
static ptrdiff_t table_find(const struct node *t, const char *key, size_t len)
{
	const struct toml_kv *items = t->v.u.table.items;
	if (t->index_cap) {
		size_t mask = t->index_cap - 1;
		size_t slot = (size_t)hash_key(key, len) & mask;
		for (; t->index[slot]; slot = (slot + 1) & mask) {
			size_t i = t->index[slot] - 1;
			if (items[i].key_len == len && memcmp(items[i].key, key, len) == 0)
				return (ptrdiff_t)i;
		}
		return -1;
	}
	for (size_t i = 0; i < t->v.u.table.len; i++)
		if (items[i].key_len == len && memcmp(items[i].key, key, len) == 0)
			return (ptrdiff_t)i;
	return -1;
}

/* Adds a copy of key -> val (ownership taken) to table t; key must be absent. */
static void table_add(struct node *t, const char *key, size_t klen, struct toml_pos pos,
		      struct toml_value *val)
{
	char *copy = xmalloc(klen + 1);
	memcpy(copy, key, klen);
	copy[klen] = '\0';
	size_t len = t->v.u.table.len;
	if (len == t->cap) {
		t->cap = t->cap ? t->cap * 2 : 4;
		t->v.u.table.items = xrealloc(t->v.u.table.items, t->cap * sizeof(struct toml_kv));
	}
	t->v.u.table.items[len].key = copy;
	t->v.u.table.items[len].pos = pos;
	t->v.u.table.items[len].value = val;
	t->v.u.table.items[len].key_len = klen;
	t->v.u.table.len = len + 1;
	if (t->v.u.table.len >= INDEX_MIN) {
		if (t->v.u.table.len * 2 + 2 > t->index_cap)
			index_rebuild(t);
		else
			index_insert(t, len);
	}
}

static void array_add(struct node *a, struct toml_value *val)
{
	size_t len = a->v.u.array.len;
	if (len == a->cap) {
		a->cap = a->cap ? a->cap * 2 : 4;
		a->v.u.array.items = xrealloc(a->v.u.array.items,
					      a->cap * sizeof(struct toml_value *));
	}
	a->v.u.array.items[len] = val;
	a->v.u.array.len = len + 1;
}

/* ---- whitespace, comments, newlines -------------------------------------- */

static void skip_ws(struct parser *ps)
{
	while (ps->p < ps->end && (*ps->p == ' ' || *ps->p == '\t'))
		ps->p++;
}

static bool at_newline(const struct parser *ps)
{
	int c = peek(ps);
	return c == '\n' || (c == '\r' && peek_at(ps, 1) == '\n');
}

static void eat_newline(struct parser *ps)
{
	if (*ps->p == '\r')
		ps->p++;
	ps->p++;
	if (ps->line < INT_MAX)
		ps->line++;
	ps->line_start = ps->p;
}

static void skip_comment(struct parser *ps)
{
	if (peek(ps) != '#')
		return;
	while (ps->p < ps->end && *ps->p != '\n' && *ps->p != '\r')
		ps->p++;
}

/* Whitespace, comments and newlines, as allowed between array elements. */
static void skip_ws_nl(struct parser *ps)
{
	for (;;) {
		skip_ws(ps);
		skip_comment(ps);
		if (!at_newline(ps))
			return;
		eat_newline(ps);
	}
}

/* After a key/value pair or a header: optional comment, then end of line. */
static int expect_eol(struct parser *ps, const char *what)
{
	char buf[16];
	skip_ws(ps);
	skip_comment(ps);
	if (ps->p >= ps->end)
		return 0;
	if (at_newline(ps)) {
		eat_newline(ps);
		return 0;
	}
	return fail_at(ps, here(ps), "expected a newline after %s, found %s", what,
		       describe_here(ps, buf, sizeof(buf)));
}

/* ---- strings ---------------------------------------------------------------- */

static void add_utf8(struct strbuf *sb, uint32_t cp)
{
	char b[4];
	size_t n;
	if (cp < 0x80) {
		b[0] = (char)cp;
		n = 1;
	} else if (cp < 0x800) {
		b[0] = (char)(0xC0 | (cp >> 6));
		b[1] = (char)(0x80 | (cp & 0x3F));
		n = 2;
	} else if (cp < 0x10000) {
		b[0] = (char)(0xE0 | (cp >> 12));
		b[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
		b[2] = (char)(0x80 | (cp & 0x3F));
		n = 3;
	} else {
		b[0] = (char)(0xF0 | (cp >> 18));
		b[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
		b[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
		b[3] = (char)(0x80 | (cp & 0x3F));
		n = 4;
	}
	strbuf_add(sb, b, n);
}

/* One escape sequence in a basic string; ps->p is at the backslash. */
static int parse_escape(struct parser *ps, bool multiline)
{
	struct toml_pos pos = here(ps);
	char buf[16];
	ps->p++;
	int c = peek(ps);
	switch (c) {
	case 'b':
		strbuf_addch(&ps->sb, '\b');
		ps->p++;
		return 0;
	case 't':
		strbuf_addch(&ps->sb, '\t');
		ps->p++;
		return 0;
	case 'n':
		strbuf_addch(&ps->sb, '\n');
		ps->p++;
		return 0;
	case 'f':
		strbuf_addch(&ps->sb, '\f');
		ps->p++;
		return 0;
	case 'r':
		strbuf_addch(&ps->sb, '\r');
		ps->p++;
		return 0;
	case '"':
		strbuf_addch(&ps->sb, '"');
		ps->p++;
		return 0;
	case '\\':
		strbuf_addch(&ps->sb, '\\');
		ps->p++;
		return 0;
	case 'u':
	case 'U': {
		size_t n = c == 'u' ? 4 : 8;
		uint32_t cp = 0;
		for (size_t i = 1; i <= n; i++) {
			int h = text_hex_value(peek_at(ps, i));
			if (h < 0)
				return fail_at(ps, pos,
					       "invalid unicode escape: '\\%c' needs %zu hex "
					       "digits",
					       c, n);
			cp = cp << 4 | (uint32_t)h;
		}
		if ((cp >= 0xD800 && cp <= 0xDFFF) || cp > 0x10FFFF)
			return fail_at(ps, pos,
				       "invalid unicode escape '\\%.*s': not a unicode scalar "
				       "value",
				       (int)n + 1, ps->p);
		add_utf8(&ps->sb, cp);
		ps->p += n + 1;
		return 0;
	}
	case ' ':
	case '\t':
	case '\n':
	case '\r':
		if (multiline) {
			/* Line-ending backslash: trim whitespace and newlines. */
			skip_ws(ps);
			if (!at_newline(ps))
				return fail_at(ps, pos,
					       "a backslash followed by whitespace must end the "
					       "line");
			while (ps->p < ps->end) {
				if (*ps->p == ' ' || *ps->p == '\t')
					ps->p++;
				else if (at_newline(ps))
					eat_newline(ps);
				else
					break;
			}
			return 0;
		}
		break;
	case -1:
		return fail_at(ps, pos, "unterminated string");
	default:
		break;
	}
	if (c == '\n' || c == '\r')
		return fail_at(ps, pos, "invalid escape sequence: backslash at end of line");
	if (c == ' ' || c == '\t')
		return fail_at(ps, pos, "invalid escape sequence '\\%c'", c);
	describe_here(ps, buf, sizeof(buf));
	/* buf is "'X'": show it as '\X' */
	return fail_at(ps, pos, "invalid escape sequence '\\%.*s'", (int)strlen(buf) - 2, buf + 1);
}

/*
 * Reads a string of any of the four forms into ps->sb; ps->p is at the
 * opening quote.  q is '"' or '\''.
 */
static int parse_string_raw(struct parser *ps, bool allow_multiline)
{
	struct toml_pos start = here(ps);
	char q = *ps->p;
	bool basic = q == '"';
	bool multiline = peek_at(ps, 1) == q && peek_at(ps, 2) == q;

	strbuf_reset(&ps->sb);
	if (multiline && !allow_multiline)
		return fail_at(ps, start, "multi-line strings cannot be used as keys");
	ps->p += multiline ? 3 : 1;
	if (multiline && at_newline(ps))
		eat_newline(ps);

	for (;;) {
		if (ps->p >= ps->end)
			return fail_at(ps, start, "unterminated string");
		char c = *ps->p;
		if (c == q) {
			if (!multiline) {
				ps->p++;
				return 0;
			}
			size_t n = 0;
			while (peek_at(ps, n) == q)
				n++;
			if (n < 3) {
				strbuf_add(&ps->sb, ps->p, n);
				ps->p += n;
				continue;
			}
			if (n > 5)
				return fail_at(ps, here(ps),
					       "too many quotes in a row in multi-line string");
			strbuf_add(&ps->sb, ps->p, n - 3);
			ps->p += n;
			return 0;
		}
		if (c == '\\' && basic) {
			if (parse_escape(ps, multiline))
				return -1;
			continue;
		}
		if (c == '\n' || c == '\r') {
			if (!multiline)
				return fail_at(ps, start, "unterminated string");
			eat_newline(ps);
			strbuf_addch(&ps->sb, '\n');
			continue;
		}
		/* A run of ordinary bytes (control characters were rejected up front). */
		const char *r = ps->p;
		while (r < ps->end && *r != q && *r != '\n' && *r != '\r' && !(basic && *r == '\\'))
			r++;
		strbuf_add(&ps->sb, ps->p, (size_t)(r - ps->p));
		ps->p = r;
	}
}

/* ---- keys -------------------------------------------------------------------- */

static void keypath_release(struct keypath *kp)
{
	for (size_t i = 0; i < kp->n; i++)
		free(kp->segs[i].s);
	free(kp->segs);
	kp->segs = NULL;
	kp->n = kp->cap = 0;
}

static int parse_simple_key(struct parser *ps, struct keypath *kp)
{
	char buf[16];
	struct keyseg seg;
	seg.pos = here(ps);
	int c = peek(ps);
	if (c == '"' || c == '\'') {
		if (parse_string_raw(ps, false))
			return -1;
		seg.len = ps->sb.len;
		seg.s = xmalloc(seg.len + 1);
		memcpy(seg.s, ps->sb.buf, seg.len + 1);
	} else if (is_bare_key_char(c)) {
		const char *s = ps->p;
		while (ps->p < ps->end && is_bare_key_char((unsigned char)*ps->p))
			ps->p++;
		seg.len = (size_t)(ps->p - s);
		seg.s = xstrndup(s, seg.len);
		c = peek(ps);
		if (c != -1 && c != ' ' && c != '\t' && c != '.' && c != '=' && c != ']' &&
		    c != '\n' && c != '\r') {
			free(seg.s);
			return fail_at(ps, here(ps), "invalid character %s in key",
				       describe_here(ps, buf, sizeof(buf)));
		}
	} else {
		return fail_at(ps, here(ps), "expected a key, found %s",
			       describe_here(ps, buf, sizeof(buf)));
	}
	if (kp->n == kp->cap) {
		kp->cap = kp->cap ? kp->cap * 2 : 4;
		kp->segs = xrealloc(kp->segs, kp->cap * sizeof(*kp->segs));
	}
	kp->segs[kp->n++] = seg;
	return 0;
}

/* key = simple-key *( ws "." ws simple-key ); leaves ps->p after the key. */
static int parse_key(struct parser *ps, struct keypath *kp)
{
	if (parse_simple_key(ps, kp))
		return -1;
	for (;;) {
		const char *save = ps->p;
		skip_ws(ps);
		if (peek(ps) != '.') {
			ps->p = save;
			return 0;
		}
		ps->p++;
		skip_ws(ps);
		if (parse_simple_key(ps, kp))
			return -1;
	}
}

/* ---- scalars ------------------------------------------------------------------ */

static bool is_digit(int c)
{
	return c >= '0' && c <= '9';
}

/* Characters that can continue a number, date or time token. */
static bool is_token_char(int c)
{
	return is_bare_key_char(c) || c == '.' || c == '+' || c == ':';
}

static bool digits_at(const char *s, const char *end, size_t n)
{
	if ((size_t)(end - s) < n)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!is_digit((unsigned char)s[i]))
			return false;
	return true;
}

static int num2(const char *s)
{
	return (s[0] - '0') * 10 + (s[1] - '0');
}

static int days_in_month(int year, int month)
{
	static const int days[12] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
	if (month == 2 && ((year % 4 == 0 && year % 100 != 0) || year % 400 == 0))
		return 29;
	return days[month - 1];
}

/* HH:MM:SS[.frac] at *q; advances *q.  Returns 0 or fails. */
static int scan_time(struct parser *ps, const char **qp, struct toml_pos pos)
{
	const char *q = *qp;
	const char *e = ps->end;
	if (!digits_at(q, e, 2) || q + 2 >= e || q[2] != ':' || !digits_at(q + 3, e, 2))
		return fail_at(ps, pos, "invalid time: expected HH:MM:SS");
	if (q + 5 >= e || q[5] != ':' || !digits_at(q + 6, e, 2))
		return fail_at(ps, pos, "invalid time: seconds are required (HH:MM:SS)");
	int h = num2(q), m = num2(q + 3), s = num2(q + 6);
	if (h > 23)
		return fail_at(ps, pos, "invalid time: hour %02d out of range", h);
	if (m > 59)
		return fail_at(ps, pos, "invalid time: minute %02d out of range", m);
	if (s > 60)
		return fail_at(ps, pos, "invalid time: second %02d out of range", s);
	q += 8;
	if (q < e && *q == '.') {
		q++;
		if (q >= e || !is_digit((unsigned char)*q))
			return fail_at(ps, pos, "invalid time: digits required after '.'");
		while (q < e && is_digit((unsigned char)*q))
			q++;
	}
	*qp = q;
	return 0;
}

static struct toml_value *parse_datetime(struct parser *ps)
{
	struct toml_pos pos = here(ps);
	const char *e = ps->end;
	const char *q = ps->p;
	const char *date = NULL, *time = NULL, *time_end = NULL, *off = NULL;
	struct strbuf sb = STRBUF_INIT;
	enum toml_type type;

	if (digits_at(q, e, 4) && q + 4 < e && q[4] == '-') {
		date = q;
		if (!digits_at(q + 5, e, 2) || q + 7 >= e || q[7] != '-' ||
		    !digits_at(q + 8, e, 2)) {
			fail_at(ps, pos, "invalid date: expected YYYY-MM-DD");
			return NULL;
		}
		int y = (q[0] - '0') * 1000 + (q[1] - '0') * 100 + num2(q + 2);
		int mo = num2(q + 5), d = num2(q + 8);
		if (mo < 1 || mo > 12) {
			fail_at(ps, pos, "invalid date: month %02d out of range", mo);
			return NULL;
		}
		if (d < 1 || d > days_in_month(y, mo)) {
			fail_at(ps, pos, "invalid date: day %02d out of range for %04d-%02d", d, y,
				mo);
			return NULL;
		}
		q += 10;
		if (q < e && (*q == 'T' || *q == 't' ||
			      (*q == ' ' && digits_at(q + 1, e, 2) && q + 3 < e && q[3] == ':')))
			time = ++q;
	} else {
		time = q;
	}
	if (time) {
		if (scan_time(ps, &q, pos))
			return NULL;
		time_end = q;
	}
	if (date && time && q < e) {
		if (*q == 'Z' || *q == 'z') {
			off = q++;
		} else if (*q == '+' || *q == '-') {
			off = q;
			if (!digits_at(q + 1, e, 2) || q + 3 >= e || q[3] != ':' ||
			    !digits_at(q + 4, e, 2)) {
				fail_at(ps, pos, "invalid date-time: offset must be Z or +HH:MM");
				return NULL;
			}
			if (num2(q + 1) > 23 || num2(q + 4) > 59) {
				fail_at(ps, pos, "invalid date-time: offset %.6s out of range", q);
				return NULL;
			}
			q += 6;
		}
	}
	if (q < e && is_token_char((unsigned char)*q)) {
		const char *save = ps->p;
		ps->p = q;
		struct toml_pos bad = here(ps);
		char buf[16];
		describe_here(ps, buf, sizeof(buf));
		ps->p = save;
		fail_at(ps, bad, "invalid %s: unexpected %s",
			date && time ? "date-time"
			: date       ? "date"
				     : "time",
			buf);
		return NULL;
	}
	if (date)
		strbuf_add(&sb, date, 10);
	if (date && time)
		strbuf_addch(&sb, 'T');
	if (time)
		strbuf_add(&sb, time, (size_t)(time_end - time));
	if (off) {
		if (*off == 'Z' || *off == 'z')
			strbuf_addch(&sb, 'Z');
		else
			strbuf_add(&sb, off, 6);
	}
	if (date && time)
		type = off ? TOML_DATETIME : TOML_DATETIME_LOCAL;
	else
		type = date ? TOML_DATE_LOCAL : TOML_TIME_LOCAL;
	struct node *n = node_new(type, pos, 0);
	n->v.u.datetime = strbuf_detach(&sb, NULL);
	ps->p = q;
	return &n->v;
}

/*
 * Checks digits-with-underscores: at least one digit, each '_' between two
 * digits of the base.  Returns NULL or a reason.
 */
static const char *check_digits(const char *s, size_t n, int base)
{
	if (n == 0)
		return "digits required";
	for (size_t i = 0; i < n; i++) {
		int c = (unsigned char)s[i];
		if (c == '_') {
			if (i == 0 || i + 1 == n || s[i + 1] == '_' || s[i - 1] == '_')
				return "underscores must be between digits";
			continue;
		}
		int v = text_hex_value(c);
		if (v < 0 || v >= base)
			return "invalid digit";
	}
	return NULL;
}

/* Copies s without underscores, replacing '.' by the locale's decimal point. */
static char *strip_underscores(const char *s, size_t n)
{
	const char *dp = localeconv()->decimal_point;
	size_t dplen = dp && *dp ? strlen(dp) : 1;
	char *out = xmalloc(n * dplen + 1), *o = out;
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '_')
			continue;
		if (s[i] == '.' && dp && *dp) {
			memcpy(o, dp, dplen);
			o += dplen;
		} else {
			*o++ = s[i];
		}
	}
	*o = '\0';
	return out;
}

/* inf / nan with an optional sign; r is past the sign. */
static struct node *make_special(struct toml_pos pos, const char *r, bool neg)
{
	struct node *node = node_new(TOML_FLOAT, pos, 0);
	if (r[0] == 'i')
		node->v.u.flt = neg ? -__builtin_inf() : __builtin_inf();
	else
		node->v.u.flt = neg ? -__builtin_nan("") : __builtin_nan("");
	return node;
}

/* 0x / 0o / 0b integers; r points at the "0x" prefix, rn counts to the end. */
static struct node *parse_radix_int(struct parser *ps, struct toml_pos pos, const char *s,
				    const char *r, size_t rn, int shown, const char *ell)
{
	int base = r[1] == 'x' ? 16 : r[1] == 'o' ? 8 : 2;
	const char *why = check_digits(r + 2, rn - 2, base);
	if (why) {
		fail_at(ps, pos, "invalid integer '%.*s%s': %s", shown, s, ell, why);
		return NULL;
	}
	uint64_t v = 0;
	for (size_t i = 2; i < rn; i++) {
		if (r[i] == '_')
			continue;
		uint64_t d = (uint64_t)text_hex_value((unsigned char)r[i]);
		if (v > ((uint64_t)INT64_MAX - d) / (uint64_t)base) {
			fail_at(ps, pos, "integer '%.*s%s' out of 64-bit range", shown, s, ell);
			return NULL;
		}
		v = v * (uint64_t)base + d;
	}
	struct node *node = node_new(TOML_INTEGER, pos, 0);
	node->v.u.integer = (int64_t)v;
	return node;
}

/* Decimal integers and floats: int-part [ "." frac ] [ ("e"|"E") [sign] exp ]. */
static struct node *parse_decimal(struct parser *ps, struct toml_pos pos, const char *s,
				  const char *r, const char *t, bool neg, int shown,
				  const char *ell)
{
	size_t n = (size_t)(t - s);
	const char *ip = r, *ipe = r;
	while (ipe < t && (is_digit((unsigned char)*ipe) || *ipe == '_'))
		ipe++;
	const char *frac = NULL, *frace = NULL, *exp = NULL, *expe = NULL;
	const char *q = ipe;
	if (q < t && *q == '.') {
		frac = ++q;
		while (q < t && (is_digit((unsigned char)*q) || *q == '_'))
			q++;
		frace = q;
	}
	if (q < t && (*q == 'e' || *q == 'E')) {
		q++;
		if (q < t && (*q == '+' || *q == '-'))
			q++;
		exp = q;
		while (q < t && (is_digit((unsigned char)*q) || *q == '_'))
			q++;
		expe = q;
	}
	bool is_float = frac || exp;
	const char *kind = is_float ? "float" : "integer";
	if (ip == ipe && frac) {
		fail_at(ps, pos, "invalid float '%.*s%s': a digit is required before '.'", shown, s,
			ell);
		return NULL;
	}
	if (q != t || ip == ipe) {
		fail_at(ps, pos, "invalid %s '%.*s%s'", is_float ? "float" : "number", shown, s,
			ell);
		return NULL;
	}
	const char *why = check_digits(ip, (size_t)(ipe - ip), 10);
	if (!why && frac)
		why = frac == frace ? "digits required after '.'"
				    : check_digits(frac, (size_t)(frace - frac), 10);
	if (!why && exp)
		why = exp == expe ? "digits required in exponent"
				  : check_digits(exp, (size_t)(expe - exp), 10);
	if (why) {
		fail_at(ps, pos, "invalid %s '%.*s%s': %s", kind, shown, s, ell, why);
		return NULL;
	}
	if (ip[0] == '0' && ipe - ip > 1) {
		fail_at(ps, pos, "leading zeros are not allowed in '%.*s%s'", shown, s, ell);
		return NULL;
	}

	struct node *node;
	if (is_float) {
		char *txt = strip_underscores(s, n);
		errno = 0;
		double d = strtod(txt, NULL);
		int e = errno;
		free(txt);
		if (e == ERANGE && (d > 1.0 || d < -1.0)) {
			fail_at(ps, pos, "float '%.*s%s' out of range", shown, s, ell);
			return NULL;
		}
		node = node_new(TOML_FLOAT, pos, 0);
		node->v.u.flt = d;
		return node;
	}

	uint64_t v = 0, limit = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
	for (const char *c = ip; c < ipe; c++) {
		if (*c == '_')
			continue;
		uint64_t dgt = (uint64_t)(*c - '0');
		if (v > (limit - dgt) / 10) {
			fail_at(ps, pos, "integer '%.*s%s' out of 64-bit range", shown, s, ell);
			return NULL;
		}
		v = v * 10 + dgt;
	}
	node = node_new(TOML_INTEGER, pos, 0);
	if (neg)
		node->v.u.integer = v == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)v;
	else
		node->v.u.integer = (int64_t)v;
	return node;
}

static struct toml_value *parse_number(struct parser *ps)
{
	struct toml_pos pos = here(ps);
	const char *s = ps->p;
	const char *t = s;
	while (t < ps->end && is_token_char((unsigned char)*t) && *t != ':')
		t++;
	size_t n = (size_t)(t - s);
	int shown = n > 40 ? 40 : (int)n;
	const char *ell = n > 40 ? "..." : "";
	const char *r = s;
	bool neg = false, has_sign = false;
	struct node *node;

	if (*r == '+' || *r == '-') {
		has_sign = true;
		neg = *r == '-';
		r++;
	}
	size_t rn = (size_t)(t - r);
	if (rn == 3 && (memcmp(r, "inf", 3) == 0 || memcmp(r, "nan", 3) == 0)) {
		node = make_special(pos, r, neg);
	} else if (rn >= 2 && r[0] == '0' && (r[1] == 'x' || r[1] == 'o' || r[1] == 'b')) {
		if (has_sign) {
			fail_at(ps, pos,
				"a sign is not allowed on hex, octal or binary integers ('%.*s%s')",
				shown, s, ell);
			return NULL;
		}
		node = parse_radix_int(ps, pos, s, r, rn, shown, ell);
	} else {
		node = parse_decimal(ps, pos, s, r, t, neg, shown, ell);
	}
	if (!node)
		return NULL;
	ps->p = t;
	return &node->v;
}

/* ---- values ----------------------------------------------------------------- */

static struct toml_value *parse_value(struct parser *ps, int depth);
static int parse_keyval(struct parser *ps, struct node *tab);

static struct toml_value *parse_array(struct parser *ps, int depth)
{
	struct toml_pos pos = here(ps);
	char buf[16];
	if (depth > TOML_MAX_DEPTH) {
		fail_at(ps, pos, "nesting too deep (more than %d levels)", TOML_MAX_DEPTH);
		return NULL;
	}
	struct node *arr = node_new(TOML_ARRAY, pos, depth);
	struct toml_value *res = NULL;
	ps->p++;
	for (;;) {
		skip_ws_nl(ps);
		if (peek(ps) == ']')
			break;
		struct toml_value *item = parse_value(ps, depth + 1);
		if (!item)
			goto out;
		array_add(arr, item);
		skip_ws_nl(ps);
		if (peek(ps) == ',') {
			ps->p++;
			continue;
		}
		if (peek(ps) == ']')
			break;
		fail_at(ps, here(ps), "expected ',' or ']' after array element, found %s",
			describe_here(ps, buf, sizeof(buf)));
		goto out;
	}
	ps->p++;
	res = &arr->v;
	arr = NULL;
out:
	if (arr)
		toml_free(&arr->v);
	return res;
}

static struct toml_value *parse_inline_table(struct parser *ps, int depth)
{
	struct toml_pos pos = here(ps);
	char buf[16];
	if (depth > TOML_MAX_DEPTH) {
		fail_at(ps, pos, "nesting too deep (more than %d levels)", TOML_MAX_DEPTH);
		return NULL;
	}
	struct node *tab = node_new(TOML_TABLE, pos, depth);
	struct toml_value *res = NULL;
	tab->flags = F_INLINE;
	ps->p++;
	skip_ws(ps);
	bool first = true;
	while (!(first && peek(ps) == '}')) {
		skip_ws(ps);
		if (at_newline(ps) || peek(ps) == '#') {
			fail_at(ps, here(ps),
				"newlines and comments are not allowed in inline tables");
			goto out;
		}
		if (peek(ps) == '}') {
			fail_at(ps, here(ps), "trailing comma not allowed in inline table");
			goto out;
		}
		if (parse_keyval(ps, tab))
			goto out;
		first = false;
		skip_ws(ps);
		if (peek(ps) == ',') {
			ps->p++;
			continue;
		}
		if (peek(ps) == '}')
			break;
		if (at_newline(ps) || peek(ps) == '#')
			fail_at(ps, here(ps),
				"newlines and comments are not allowed in inline tables");
		else
			fail_at(ps, here(ps), "expected ',' or '}' in inline table, found %s",
				describe_here(ps, buf, sizeof(buf)));
		goto out;
	}
	ps->p++;
	res = &tab->v;
	tab = NULL;
out:
	if (tab)
		toml_free(&tab->v);
	return res;
}

static bool word_at(const struct parser *ps, const char *w)
{
	size_t n = strlen(w);
	if ((size_t)(ps->end - ps->p) < n || memcmp(ps->p, w, n) != 0)
		return false;
	return !(ps->p + n < ps->end && is_token_char((unsigned char)ps->p[n]));
}

/* A value whose container sits at depth - 1. */
static struct toml_value *parse_value(struct parser *ps, int depth)
{
	struct toml_pos pos = here(ps);
	char buf[16];
	int c = peek(ps);
	switch (c) {
	case '"':
	case '\'': {
		if (parse_string_raw(ps, true))
			return NULL;
		struct node *n = node_new(TOML_STRING, pos, depth);
		n->v.u.str.len = ps->sb.len;
		n->v.u.str.ptr = xmalloc(ps->sb.len + 1);
		memcpy(n->v.u.str.ptr, ps->sb.buf, ps->sb.len + 1);
		return &n->v;
	}
	case '[':
		return parse_array(ps, depth);
	case '{':
		return parse_inline_table(ps, depth);
	case 't':
	case 'f': {
		bool t = c == 't';
		if (!word_at(ps, t ? "true" : "false"))
			break;
		struct node *n = node_new(TOML_BOOL, pos, depth);
		n->v.u.boolean = t;
		ps->p += t ? 4 : 5;
		return &n->v;
	}
	case 'i':
	case 'n':
		if (word_at(ps, c == 'i' ? "inf" : "nan"))
			return parse_number(ps);
		break;
	case '+':
	case '-':
		return parse_number(ps);
	default:
		if (!is_digit(c))
			break;
		if ((digits_at(ps->p, ps->end, 4) && peek_at(ps, 4) == '-') ||
		    (digits_at(ps->p, ps->end, 2) && peek_at(ps, 2) == ':'))
			return parse_datetime(ps);
		return parse_number(ps);
	}
	if (c == '.')
		fail_at(ps, pos, "invalid float: a digit is required before '.'");
	else if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))
		fail_at(ps, pos, "invalid value; strings must be quoted");
	else
		fail_at(ps, pos, "expected a value, found %s", describe_here(ps, buf, sizeof(buf)));
	return NULL;
}

/* ---- key/value pairs and headers ------------------------------------------- */

/* Why a non-traversable existing value stops a dotted key or header path. */
static int fail_not_table(struct parser *ps, const struct keypath *kp, size_t i,
			  const struct toml_value *v, bool dotted)
{
	char path[160];
	fmt_path(kp, i + 1, path, sizeof(path));
	struct toml_pos pos = kp->segs[i].pos;
	const struct node *n = as_node(v);
	if (v->type == TOML_TABLE && (n->flags & F_INLINE))
		return fail_at(ps, pos,
			       "cannot add to inline table '%s'; inline tables cannot be extended",
			       path);
	if (v->type == TOML_TABLE && dotted)
		return fail_at(ps, pos,
			       "cannot add to table '%s' with dotted keys: it was defined "
			       "by a [table] header",
			       path);
	if (v->type == TOML_ARRAY && !(n->flags & F_AOT))
		return fail_at(ps, pos, "key '%s' is a static array, not a table", path);
	if (v->type == TOML_ARRAY)
		return fail_at(ps, pos, "cannot add to array of tables '%s' with dotted keys",
			       path);
	return fail_at(ps, pos, "key '%s' is already %s, not a table", path, article_type(v->type));
}

/* key = value, into table tab.  ps->p is at the key. */
static int parse_keyval(struct parser *ps, struct node *tab)
{
	struct keypath kp = { 0 };
	char buf[16], path[160];
	int rc = -1;
	struct node *t = tab;

	if (parse_key(ps, &kp))
		goto out;
	for (size_t i = 0; i + 1 < kp.n; i++) {
		struct keyseg *seg = &kp.segs[i];
		ptrdiff_t idx = table_find(t, seg->s, seg->len);
		if (idx < 0) {
			if (t->depth + 1 > TOML_MAX_DEPTH) {
				fail_at(ps, seg->pos, "nesting too deep (more than %d levels)",
					TOML_MAX_DEPTH);
				goto out;
			}
			struct node *sub = node_new(TOML_TABLE, seg->pos, t->depth + 1);
			sub->flags = F_DOTTED;
			table_add(t, seg->s, seg->len, seg->pos, &sub->v);
			t = sub;
			continue;
		}
		struct toml_value *v = t->v.u.table.items[idx].value;
		struct node *vn = as_node(v);
		if (v->type != TOML_TABLE || !(vn->flags & (F_DOTTED | F_IMPLICIT))) {
			fail_not_table(ps, &kp, i, v, true);
			goto out;
		}
		/* A parent that a [x.y.z] header created may be filled in with
		 * dotted keys; after that it counts as defined by them. */
		vn->flags = F_DOTTED;
		t = vn;
	}
	struct keyseg *last = &kp.segs[kp.n - 1];
	if (table_find(t, last->s, last->len) >= 0) {
		fail_at(ps, last->pos, "duplicate key '%s'",
			fmt_path(&kp, kp.n, path, sizeof(path)));
		goto out;
	}
	skip_ws(ps);
	if (peek(ps) != '=') {
		fail_at(ps, here(ps), "expected '=' after key, found %s",
			describe_here(ps, buf, sizeof(buf)));
		goto out;
	}
	ps->p++;
	skip_ws(ps);
	struct toml_value *val = parse_value(ps, t->depth + 1);
	if (!val)
		goto out;
	table_add(t, last->s, last->len, last->pos, val);
	rc = 0;
out:
	keypath_release(&kp);
	return rc;
}

/* [table] or [[array-of-tables]]; ps->p is at the first '['. */
static int parse_header(struct parser *ps)
{
	struct keypath kp = { 0 };
	struct toml_pos pos = here(ps);
	char buf[16], path[160];
	int rc = -1;
	bool aot = peek_at(ps, 1) == '[';
	struct node *t = ps->root;

	ps->p += aot ? 2 : 1;
	skip_ws(ps);
	if (parse_key(ps, &kp))
		goto out;
	skip_ws(ps);
	if (peek(ps) != ']' || (aot && peek_at(ps, 1) != ']')) {
		fail_at(ps, here(ps), "expected '%s' to close the %s header, found %s",
			aot ? "]]" : "]", aot ? "array of tables" : "table",
			describe_here(ps, buf, sizeof(buf)));
		goto out;
	}
	ps->p += aot ? 2 : 1;

	for (size_t i = 0; i + 1 < kp.n; i++) {
		struct keyseg *seg = &kp.segs[i];
		ptrdiff_t idx = table_find(t, seg->s, seg->len);
		if (idx < 0) {
			if (t->depth + 1 > TOML_MAX_DEPTH) {
				fail_at(ps, seg->pos, "nesting too deep (more than %d levels)",
					TOML_MAX_DEPTH);
				goto out;
			}
			struct node *sub = node_new(TOML_TABLE, pos, t->depth + 1);
			sub->flags = F_IMPLICIT;
			table_add(t, seg->s, seg->len, seg->pos, &sub->v);
			t = sub;
			continue;
		}
		struct toml_value *v = t->v.u.table.items[idx].value;
		struct node *vn = as_node(v);
		if (v->type == TOML_TABLE && !(vn->flags & F_INLINE)) {
			t = vn;
		} else if (v->type == TOML_ARRAY && (vn->flags & F_AOT)) {
			t = as_node(v->u.array.items[v->u.array.len - 1]);
		} else {
			fail_not_table(ps, &kp, i, v, false);
			goto out;
		}
	}

	struct keyseg *last = &kp.segs[kp.n - 1];
	fmt_path(&kp, kp.n, path, sizeof(path));
	ptrdiff_t idx = table_find(t, last->s, last->len);
	struct toml_value *v = idx < 0 ? NULL : t->v.u.table.items[idx].value;
	struct node *vn = v ? as_node(v) : NULL;
	if (t->depth + 1 + (aot ? 1 : 0) > TOML_MAX_DEPTH) {
		fail_at(ps, last->pos, "nesting too deep (more than %d levels)", TOML_MAX_DEPTH);
		goto out;
	}
	if (!aot) {
		if (!v) {
			struct node *sub = node_new(TOML_TABLE, pos, t->depth + 1);
			sub->flags = F_EXPLICIT;
			table_add(t, last->s, last->len, last->pos, &sub->v);
			ps->cur = sub;
		} else if (v->type == TOML_TABLE && (vn->flags & F_IMPLICIT)) {
			vn->flags = F_EXPLICIT;
			vn->v.pos = pos;
			ps->cur = vn;
		} else if (v->type == TOML_TABLE && (vn->flags & F_INLINE)) {
			fail_at(ps, pos, "table '%s' already defined as an inline table", path);
			goto out;
		} else if (v->type == TOML_TABLE && (vn->flags & F_DOTTED)) {
			fail_at(ps, pos, "table '%s' already defined by dotted keys", path);
			goto out;
		} else if (v->type == TOML_TABLE) {
			fail_at(ps, pos, "table '%s' defined twice", path);
			goto out;
		} else if (v->type == TOML_ARRAY && (vn->flags & F_AOT)) {
			fail_at(ps, pos, "table '%s' already defined as an array of tables", path);
			goto out;
		} else {
			fail_at(ps, pos, "cannot define table '%s': key already holds %s", path,
				article_type(v->type));
			goto out;
		}
	} else {
		struct node *arr = vn;
		if (!v) {
			arr = node_new(TOML_ARRAY, pos, t->depth + 1);
			arr->flags = F_AOT;
			table_add(t, last->s, last->len, last->pos, &arr->v);
		} else if (v->type == TOML_ARRAY && !(vn->flags & F_AOT)) {
			fail_at(ps, pos, "cannot append to static array '%s' with [[%s]]", path,
				path);
			goto out;
		} else if (v->type == TOML_TABLE) {
			fail_at(ps, pos,
				"table '%s' already defined; it cannot become an array of tables",
				path);
			goto out;
		} else if (v->type != TOML_ARRAY) {
			fail_at(ps, pos, "cannot define array of tables '%s': key already holds %s",
				path, article_type(v->type));
			goto out;
		}
		struct node *sub = node_new(TOML_TABLE, pos, arr->depth + 1);
		sub->flags = F_EXPLICIT;
		array_add(arr, &sub->v);
		ps->cur = sub;
	}
	rc = 0;
out:
	keypath_release(&kp);
	return rc;
}

/* ---- the document ----------------------------------------------------------- */

static int parse_document(struct parser *ps)
{
	while (ps->p < ps->end) {
		skip_ws(ps);
		skip_comment(ps);
		if (ps->p >= ps->end)
			break;
		if (at_newline(ps)) {
			eat_newline(ps);
			continue;
		}
		if (*ps->p == '[') {
			if (parse_header(ps) || expect_eol(ps, "table header"))
				return -1;
		} else {
			if (parse_keyval(ps, ps->cur) || expect_eol(ps, "value"))
				return -1;
		}
	}
	return 0;
}

struct toml_value *toml_parse(const char *text, size_t len, struct toml_error *err)
{
	struct parser ps = { 0 };
	struct toml_pos origin = { 1, 1 };
	struct toml_value *res = NULL;

	if (!text)
		len = 0;
	if (len >= 3 && memcmp(text, "\xEF\xBB\xBF", 3) == 0) {
		text += 3;
		len -= 3;
	}
	ps.p = text;
	ps.end = text + len;
	ps.line_start = text;
	ps.line = 1;
	ps.err = err;
	strbuf_init(&ps.sb, 0);
	ps.root = node_new(TOML_TABLE, origin, 0);
	ps.root->flags = F_EXPLICIT;
	ps.cur = ps.root;
	if (err) {
		err->line = 0;
		err->col = 0;
		err->reason[0] = '\0';
	}
	if (check_text(&ps) || parse_document(&ps)) {
		toml_free(&ps.root->v);
		goto out;
	}
	res = &ps.root->v;
out:
	strbuf_release(&ps.sb);
	return res;
}

/* ---- lookups -------------------------------------------------------------- */

const struct toml_kv *toml_get_kv(const struct toml_value *tab, const char *key)
{
	if (!tab || !key || tab->type != TOML_TABLE)
		return NULL;
	ptrdiff_t i = table_find(as_node(tab), key, strlen(key));
	return i < 0 ? NULL : &tab->u.table.items[i];
}

const struct toml_value *toml_get(const struct toml_value *tab, const char *key)
{
	const struct toml_kv *kv = toml_get_kv(tab, key);
	return kv ? kv->value : NULL;
}

bool toml_key_is(const struct toml_kv *kv, const char *name)
{
	size_t n = strlen(name);
	return kv->key_len == n && memcmp(kv->key, name, n) == 0;
}

const char *toml_type_name(enum toml_type t)
{
	switch (t) {
	case TOML_STRING:
		return "string";
	case TOML_INTEGER:
		return "integer";
	case TOML_FLOAT:
		return "float";
	case TOML_BOOL:
		return "bool";
	case TOML_DATETIME:
		return "datetime";
	case TOML_DATETIME_LOCAL:
		return "datetime-local";
	case TOML_DATE_LOCAL:
		return "date-local";
	case TOML_TIME_LOCAL:
		return "time-local";
	case TOML_ARRAY:
		return "array";
	case TOML_TABLE:
		return "table";
	}
	return "unknown";
}
