/* Error codes, their names and HTTP statuses; allocation helpers. */
#include "util/err.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const struct {
	const char *name;
	const char *text;
	int http;
} err_table[] = {
	[MIREN_OK] = { "ok", "success", 200 },
	[MIREN_EINVAL] = { "invalid", "invalid input", 400 },
	[MIREN_ENOTFOUND] = { "not_found", "not found", 404 },
	[MIREN_EEXISTS] = { "exists", "already exists", 409 },
	[MIREN_ECONFLICT] = { "conflict", "conflicting state", 409 },
	[MIREN_ETOOBIG] = { "too_big", "too large", 413 },
	[MIREN_EIO] = { "io", "input/output error", 500 },
	[MIREN_EDB] = { "store", "state store error", 500 },
	[MIREN_EUNAVAIL] = { "unavailable", "service unavailable", 503 },
	[MIREN_EPERM] = { "forbidden", "permission denied", 403 },
	[MIREN_EAUTH] = { "unauthorized", "not authenticated", 401 },
	[MIREN_EINTERNAL] = { "internal", "internal error", 500 },
};
#define N_ERRS (sizeof(err_table) / sizeof(err_table[0]))

const char *miren_strerror(enum miren_err code)
{
	return (unsigned)code < N_ERRS ? err_table[code].text : "unknown error";
}

const char *miren_err_code_name(enum miren_err code)
{
	return (unsigned)code < N_ERRS ? err_table[code].name : "internal";
}

enum miren_err miren_err_from_code_name(const char *name)
{
	for (size_t i = 0; i < N_ERRS; i++)
		if (name && strcmp(err_table[i].name, name) == 0)
			return (enum miren_err)i;
	return MIREN_EINTERNAL;
}

int miren_err_http_status(enum miren_err code)
{
	return (unsigned)code < N_ERRS ? err_table[code].http : 500;
}

/* In parentheses: not the analysers' stand-in macro of err.h. */
enum miren_err(miren_error_set)(struct miren_error *err, enum miren_err code, const char *fmt, ...)
{
	if (!err)
		return code;
	err->code = code;
	err->detail[0] = err->hint[0] = '\0';
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err->message, sizeof(err->message), fmt, ap);
	va_end(ap);
	return code;
}

void miren_error_detail(struct miren_error *err, const char *fmt, ...)
{
	if (!err)
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err->detail, sizeof(err->detail), fmt, ap);
	va_end(ap);
}

void miren_error_hint(struct miren_error *err, const char *fmt, ...)
{
	if (!err)
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err->hint, sizeof(err->hint), fmt, ap);
	va_end(ap);
}

void miren_error_clear(struct miren_error *err)
{
	if (err) {
		err->code = MIREN_OK;
		err->message[0] = err->detail[0] = err->hint[0] = '\0';
	}
}

void *xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);
	if (!p)
		abort();
	return p;
}

void *xcalloc(size_t n, size_t size)
{
	void *p = calloc(n ? n : 1, size ? size : 1);
	if (!p)
		abort();
	return p;
}

void *xrealloc(void *p, size_t n)
{
	p = realloc(p, n ? n : 1);
	if (!p)
		abort();
	return p;
}

char *xstrdup(const char *s)
{
	char *p = strdup(s);
	if (!p)
		abort();
	return p;
}

char *xstrndup(const char *s, size_t n)
{
	char *p = strndup(s, n);
	if (!p)
		abort();
	return p;
}

char *xasprintf(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char *p = NULL;
	if (vasprintf(&p, fmt, ap) < 0)
		abort();
	va_end(ap);
	return p;
}
