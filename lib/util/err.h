/*
 * One error type for libmiren.  Functions return an enum miren_err (0 is
 * success); where a person needs more than the code, they also fill a
 * struct miren_error that the caller owns: the message (what failed), an
 * optional detail (the underlying cause: a server's own words, an errno
 * text) and an optional hint (what to do).  The CLI prints them as
 * "error: ..." / "detail: ..." / "hint: ..." (or JSON with --format json),
 * the API sends {"error":{"code","message","detail","hint"}} with the HTTP
 * status of the code, and the store keeps the three apart; they are never
 * pasted into one string.
 */
#ifndef MIREN_ERR_H
#define MIREN_ERR_H

#include <stddef.h>

enum miren_err {
	MIREN_OK = 0,
	MIREN_EINVAL,    /* bad input from the user: 400 */
	MIREN_ENOTFOUND, /* no such app/addon/disk/...: 404 */
	MIREN_EEXISTS,   /* already there: 409 */
	MIREN_ECONFLICT, /* wrong state for the request: 409 */
	MIREN_ETOOBIG,   /* over a size bound: 413 */
	MIREN_EIO,       /* filesystem or pipe trouble: 500 */
	MIREN_EDB,       /* the state store failed: 500 */
	MIREN_EUNAVAIL,  /* a needed server/process is not reachable: 503 */
	MIREN_EPERM,     /* not allowed: 403 */
	MIREN_EAUTH,     /* no valid credentials (a token): 401 */
	MIREN_EINTERNAL, /* a bug or an impossible state: 500 */
};

struct miren_error {
	enum miren_err code;
	char message[512];
	char detail[1024]; /* "" when none */
	char hint[512];    /* "" when none */
};

const char *miren_strerror(enum miren_err code);
/* Machine-readable code used in the API ("not_found", ...). */
const char *miren_err_code_name(enum miren_err code);
enum miren_err miren_err_from_code_name(const char *name);
int miren_err_http_status(enum miren_err code);

/*
 * Fills err (which may be NULL) and returns code, so a failure site reads
 *   return miren_error_set(err, MIREN_ENOTFOUND, "app '%s' not found", name);
 */
enum miren_err miren_error_set(struct miren_error *err, enum miren_err code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* Set the detail / the hint of err (which may be NULL); set after
 * miren_error_set, which clears both. */
void miren_error_detail(struct miren_error *err, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
#ifdef __clang_analyzer__
/* clang-tidy's analyser does not see err.c: this tells it that the result
 * is code, so "rc = miren_error_set(...); if (rc) ..." is not followed down
 * a path where rc is 0. */
#define miren_error_set(err, code, ...)                      \
	({                                                   \
		miren_error_set((err), (code), __VA_ARGS__); \
		(code);                                      \
	})
#endif
void miren_error_hint(struct miren_error *err, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
void miren_error_clear(struct miren_error *err);

/* Allocation that cannot fail: libmiren aborts on out-of-memory. */
void *xmalloc(size_t n);
void *xcalloc(size_t n, size_t size);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
