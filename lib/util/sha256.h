/*
 * SHA-256 over OpenSSL's EVP interface, incremental, with hex output.
 */
#ifndef MIREN_SHA256_H
#define MIREN_SHA256_H

#include <stddef.h>

struct sha256 {
	void *ctx; /* EVP_MD_CTX */
};

void sha256_init(struct sha256 *h);
void sha256_update(struct sha256 *h, const void *data, size_t len);
/* Writes 64 hex digits and a NUL into hex[65] and releases h. */
void sha256_final_hex(struct sha256 *h, char hex[65]);
/* One-shot helper. */
void sha256_hex(const void *data, size_t len, char hex[65]);

#endif
