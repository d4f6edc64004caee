/*
 * strbuf: the one growable byte buffer of libmiren.
 *
 * Invariants: buf is never NULL and always NUL-terminated (an empty strbuf
 * points at a shared static ""), len excludes the terminator, and len never
 * exceeds cap when cap is non-zero.  strbuf_detach() hands ownership of the
 * bytes to the caller and leaves the strbuf empty and reusable.
 *
 * cap bounds anything read from a socket or a file: an append that would
 * pass it fails with MIREN_ETOOBIG and leaves the buffer as it was.
 */
#ifndef MIREN_STRBUF_H
#define MIREN_STRBUF_H

#include "util/err.h"

#include <stdarg.h>
#include <stddef.h>

struct strbuf {
	char *buf;
	size_t len;
	size_t alloc; /* 0 while buf points at the static empty string */
	size_t cap;   /* 0: unbounded */
};

#define STRBUF_INIT                                                  \
	{                                                            \
		.buf = strbuf_empty_, .len = 0, .alloc = 0, .cap = 0 \
	}
extern char strbuf_empty_[];

void strbuf_init(struct strbuf *sb, size_t cap);
void strbuf_release(struct strbuf *sb);
/* Returns the bytes (caller frees) and resets sb to empty. */
char *strbuf_detach(struct strbuf *sb, size_t *len);
void strbuf_reset(struct strbuf *sb);

/* Each returns 0 or MIREN_ETOOBIG (cap reached; sb unchanged). */
enum miren_err strbuf_add(struct strbuf *sb, const void *data, size_t len);
enum miren_err strbuf_adds(struct strbuf *sb, const char *s);
enum miren_err strbuf_addch(struct strbuf *sb, char c);
enum miren_err strbuf_addf(struct strbuf *sb, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
enum miren_err strbuf_vaddf(struct strbuf *sb, const char *fmt, va_list ap);
/* Reads all of fd (until EOF) into sb. Returns 0, MIREN_ETOOBIG or MIREN_EIO. */
enum miren_err strbuf_read_fd(struct strbuf *sb, int fd);
/* Reads a whole file. Returns 0, MIREN_ENOTFOUND, MIREN_ETOOBIG or MIREN_EIO. */
enum miren_err strbuf_read_file(struct strbuf *sb, const char *path);
void strbuf_trim_end(struct strbuf *sb);

#endif
