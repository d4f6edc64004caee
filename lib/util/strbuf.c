/* strbuf: see strbuf.h for the invariants. */
#include "util/strbuf.h"
#include "util/err.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

char strbuf_empty_[1];

void strbuf_init(struct strbuf *sb, size_t cap)
{
	sb->buf = strbuf_empty_;
	sb->len = 0;
	sb->alloc = 0;
	sb->cap = cap;
}

void strbuf_release(struct strbuf *sb)
{
	if (sb->alloc)
		free(sb->buf);
	strbuf_init(sb, sb->cap);
}

char *strbuf_detach(struct strbuf *sb, size_t *len)
{
	char *out = sb->alloc ? sb->buf : xstrdup("");
	if (len)
		*len = sb->len;
	strbuf_init(sb, sb->cap);
	return out;
}

void strbuf_reset(struct strbuf *sb)
{
	sb->len = 0;
	/* Without an allocation buf is the shared empty string, which every
	 * thread reads: never written. */
	if (sb->alloc)
		sb->buf[0] = '\0';
}

static int strbuf_grow(struct strbuf *sb, size_t extra)
{
	if (sb->cap && (extra > sb->cap || sb->len > sb->cap - extra))
		return MIREN_ETOOBIG;
	size_t need = sb->len + extra + 1;
	if (need <= sb->alloc)
		return 0;
	size_t n = sb->alloc ? sb->alloc : 64;
	while (n < need)
		n *= 2;
	char *p = sb->alloc ? realloc(sb->buf, n) : malloc(n);
	if (!p)
		abort();
	if (!sb->alloc)
		p[0] = '\0';
	sb->buf = p;
	sb->alloc = n;
	return 0;
}

enum miren_err strbuf_add(struct strbuf *sb, const void *data, size_t len)
{
	enum miren_err rc = strbuf_grow(sb, len);
	if (rc)
		return rc;
	memcpy(sb->buf + sb->len, data, len);
	sb->len += len;
	sb->buf[sb->len] = '\0';
	return 0;
}

enum miren_err strbuf_adds(struct strbuf *sb, const char *s)
{
	return strbuf_add(sb, s, strlen(s));
}

enum miren_err strbuf_addch(struct strbuf *sb, char c)
{
	return strbuf_add(sb, &c, 1);
}

enum miren_err strbuf_vaddf(struct strbuf *sb, const char *fmt, va_list ap)
{
	va_list cp;
	va_copy(cp, ap);
	int n = vsnprintf(NULL, 0, fmt, cp);
	va_end(cp);
	if (n < 0)
		return MIREN_EINVAL;
	enum miren_err rc = strbuf_grow(sb, (size_t)n);
	if (rc)
		return rc;
	vsnprintf(sb->buf + sb->len, (size_t)n + 1, fmt, ap);
	sb->len += (size_t)n;
	return 0;
}

enum miren_err strbuf_addf(struct strbuf *sb, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	enum miren_err rc = strbuf_vaddf(sb, fmt, ap);
	va_end(ap);
	return rc;
}

enum miren_err strbuf_read_fd(struct strbuf *sb, int fd)
{
	char tmp[65536];
	for (;;) {
		ssize_t n = read(fd, tmp, sizeof(tmp));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return MIREN_EIO;
		if (n == 0)
			return 0;
		enum miren_err rc = strbuf_add(sb, tmp, (size_t)n);
		if (rc)
			return rc;
	}
}

enum miren_err strbuf_read_file(struct strbuf *sb, const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? MIREN_ENOTFOUND : MIREN_EIO;
	enum miren_err rc = strbuf_read_fd(sb, fd);
	close(fd);
	return rc;
}

void strbuf_trim_end(struct strbuf *sb)
{
	while (sb->len && (sb->buf[sb->len - 1] == '\n' || sb->buf[sb->len - 1] == ' ' ||
			   sb->buf[sb->len - 1] == '\r' || sb->buf[sb->len - 1] == '\t'))
		sb->buf[--sb->len] = '\0';
}
