/* Escaping and display width of UTF-8 text; see text.h. */
#include "util/text.h"
#include "util/compiler.h"
#include "util/err.h"

#include <locale.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <wchar.h>
#include <wctype.h>

static locale_t utf8_loc;
static pthread_once_t utf8_once = PTHREAD_ONCE_INIT;

static void utf8_init(void)
{
	utf8_loc = newlocale(LC_CTYPE_MASK, "C.UTF-8", (locale_t)0);
}

/*
 * Walks s[0..len) one character at a time under the C.UTF-8 locale, calling
 * fn with the character's bytes and its code point (WEOF for a byte that is
 * not valid UTF-8); stops when fn returns non-zero and returns that.  The
 * calling thread's locale is put back before returning.  Without a C.UTF-8
 * locale (never on a supported system) every byte >= 0x80 counts as a
 * character of its own.
 */
static int each_char(const char *s, size_t len, int (*fn)(void *, const char *, size_t, wint_t),
		     void *arg)
{
	pthread_once(&utf8_once, utf8_init);
	locale_t old = utf8_loc ? uselocale(utf8_loc) : (locale_t)0;
	mbstate_t st;
	memset(&st, 0, sizeof(st));
	int rc = 0;
	for (size_t i = 0; i < len && !rc;) {
		wchar_t wc;
		size_t n = utf8_loc ? mbrtowc(&wc, s + i, len - i, &st) : (size_t)-1;
		if (n == 0) { /* a NUL */
			n = 1;
			wc = 0;
		}
		if (n == (size_t)-1 || n == (size_t)-2) {
			memset(&st, 0, sizeof(st));
			unsigned char b = (unsigned char)s[i];
			rc = fn(arg, s + i, 1, b < 0x80 ? (wint_t)b : WEOF);
			i++;
			continue;
		}
		rc = fn(arg, s + i, n, (wint_t)wc);
		i += n;
	}
	if (utf8_loc)
		uselocale(old);
	return rc;
}

/* The escape of one character, written to buf (at least 16 bytes); "" when
 * the character is printed as it is. */
static const char *escape_of(const char *bytes, wint_t wc, char *buf)
{
	buf[0] = '\0';
	if (wc == WEOF)
		snprintf(buf, 16, "\\x%02x", (unsigned char)bytes[0]);
	else if (wc == '\\')
		strcpy(buf, "\\\\");
	else if (wc == '\n')
		strcpy(buf, "\\n");
	else if (wc == '\r')
		strcpy(buf, "\\r");
	else if (wc == '\t')
		strcpy(buf, "\\t");
	else if (wc < 0x80 ? (wc < 0x20 || wc == 0x7f) : !iswprint(wc))
		snprintf(buf, 16, wc > 0xffff ? "\\U%08x" : "\\u%04x", (unsigned)wc);
	return buf;
}

struct esc_state {
	struct strbuf *out;
	int rc;
};

static int esc_one(void *arg, const char *bytes, size_t n, wint_t wc)
{
	struct esc_state *e = arg;
	char buf[16];
	const char *esc = escape_of(bytes, wc, buf);
	e->rc = *esc ? strbuf_adds(e->out, esc) : strbuf_add(e->out, bytes, n);
	return e->rc;
}

enum miren_err text_escape(struct strbuf *out, const char *s, size_t len)
{
	struct esc_state e = { out, 0 };
	each_char(s, len, esc_one, &e);
	return e.rc;
}

char *text_escaped(const char *s, size_t len)
{
	struct strbuf sb = STRBUF_INIT;
	text_escape(&sb, s, len);
	return strbuf_detach(&sb, NULL);
}

static int control_one(void *arg MIREN_UNUSED, const char *bytes, size_t n MIREN_UNUSED, wint_t wc)
{
	char buf[16];
	return wc != '\\' && *escape_of(bytes, wc, buf);
}

bool text_has_control(const char *s, size_t len)
{
	return each_char(s, len, control_one, NULL) != 0;
}

int text_hex_value(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

static int width_one(void *arg, const char *bytes MIREN_UNUSED, size_t n MIREN_UNUSED, wint_t wc)
{
	int w = wc == WEOF ? 1 : wcwidth((wchar_t)wc);
	*(size_t *)arg += w < 0 ? 1 : (size_t)w;
	return 0;
}

size_t text_width(const char *s)
{
	size_t w = 0;
	each_char(s, strlen(s), width_one, &w);
	return w;
}
