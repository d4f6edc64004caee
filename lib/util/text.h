/*
 * Text for a person's screen: user-supplied strings (app.toml keys, env
 * values, names) shown on one line, and their width in terminal columns.
 *
 * Both read the bytes as UTF-8 whatever the process locale is (they use a
 * C.UTF-8 locale of their own, per call, thread-safe): miren's names and
 * values are UTF-8, and the column count must not depend on LANG.
 */
#ifndef MIREN_TEXT_H
#define MIREN_TEXT_H

#include "util/err.h"

#include <stdbool.h>
#include <stddef.h>

#include "util/strbuf.h"

/*
 * Appends len bytes of s (which may hold NULs) to out as one printable line:
 * '\\' becomes "\\\\", LF/CR/TAB "\\n" "\\r" "\\t", every other character that
 * is not printable (C0, DEL, C1, U+2028...) "\\u" + 4 or "\\U" + 8 hex digits,
 * and a byte that is not part of valid UTF-8 "\\x" + 2 hex digits.  Printable
 * text, wide characters included, is copied as it is.  Returns what
 * strbuf_add returns (0, or MIREN_ETOOBIG when out has a cap).
 */
enum miren_err text_escape(struct strbuf *out, const char *s, size_t len);

/* The same into a new malloc'd string; the caller frees it. */
char *text_escaped(const char *s, size_t len);

/* True when s[0..len) holds a character text_escape would escape other
 * than '\\': a control or other non-printable character (NUL included), or
 * a byte that is not valid UTF-8. */
bool text_has_control(const char *s, size_t len);

/* The value of hex digit c (0..15), or -1 when c is not one. */
int text_hex_value(int c);

/*
 * The number of terminal columns the NUL-terminated UTF-8 text s takes
 * (wcwidth: 2 for wide CJK characters, 0 for combining marks).  Bytes that
 * are not valid UTF-8 and characters wcwidth does not know count 1 each.
 */
size_t text_width(const char *s);

#endif
