/* Random secrets; see secret.h. */
#include "util/secret.h"
#include "util/err.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/random.h>

enum miren_err secret_bytes(void *buf, size_t n)
{
	unsigned char *p = buf;
	while (n) {
		ssize_t r = getrandom(p, n, 0);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return MIREN_EIO;
		p += r;
		n -= (size_t)r;
	}
	return 0;
}

char *secret_password(void)
{
	static const char alphabet[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
	char *out = xmalloc(33);
	size_t i = 0;
	while (i < 32) {
		unsigned char b[64];
		if (secret_bytes(b, sizeof(b)))
			abort();
		for (size_t k = 0; k < sizeof(b) && i < 32; k++)
			if (b[k] < 248) /* 248 = 4*62: rejection keeps it uniform */
				out[i++] = alphabet[b[k] % 62];
	}
	out[32] = '\0';
	return out;
}

char *secret_hex(size_t n)
{
	unsigned char *b = xmalloc(n);
	char *out = xmalloc(2 * n + 1);
	if (secret_bytes(b, n))
		abort();
	for (size_t i = 0; i < n; i++) {
		static const char hex[] = "0123456789abcdef";
		out[2 * i] = hex[b[i] >> 4];
		out[2 * i + 1] = hex[b[i] & 15];
	}
	out[2 * n] = '\0';
	free(b);
	return out;
}
