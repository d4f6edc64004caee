/*
 * The daemon's TLS identity for its TCP listeners: a private key and a
 * certificate, either the operator's (--tls-cert/--tls-key) or a
 * self-signed pair made on the first start in DIR/tls/ (key.pem 0600,
 * cert.pem 0644), and the certificate's fingerprint, which clients pin
 * instead of trusting a certificate authority.
 *
 * Fingerprint: "SHA256:" and the unpadded base64 of the SHA-256 of the
 * certificate's DER bytes (the form ssh uses for host keys), which
 *   openssl x509 -in cert.pem -outform der | openssl dgst -sha256 -binary | base64 | tr -d =
 * prints too.
 */
#ifndef MIREN_API_TLS_H
#define MIREN_API_TLS_H

#include "util/err.h"

#include <stddef.h>

/* "SHA256:" + 43 base64 digits + NUL */
#define TLS_FINGERPRINT_MAX 51

struct tls_identity {
	char *cert_pem; /* PEM, NUL-terminated */
	char *key_pem;  /* PEM, NUL-terminated; a secret: never logged */
	char fingerprint[TLS_FINGERPRINT_MAX];
};

/*
 * Fills *id (release with tls_identity_release) from cert_path and
 * key_path when both are given (NULL: neither), else from dir/cert.pem and
 * dir/key.pem, made first when either is missing (a new EC P-256 key and
 * a self-signed certificate valid for 10 years; written key first, each
 * through a synced rename, so a crash leaves a whole pair or a pair made
 * anew next time).  Errors: MIREN_EINVAL for a file that is not PEM, or
 * a key that does not match the certificate; MIREN_EIO for one that
 * cannot be read or written.  On error *id is left empty.
 */
enum miren_err tls_identity_load(const char *dir, const char *cert_path, const char *key_path,
				 struct tls_identity *id, struct miren_error *err);

/* The fingerprint of the PEM certificate cert_pem into out; returns
 * MIREN_EINVAL if it holds no certificate. */
enum miren_err tls_fingerprint_pem(const char *cert_pem, char out[TLS_FINGERPRINT_MAX],
				   struct miren_error *err);

/* The fingerprint of a DER certificate (der_len bytes) into out. */
void tls_fingerprint_der(const unsigned char *der, size_t der_len, char out[TLS_FINGERPRINT_MAX]);

/* The fingerprint of an OpenSSL certificate (X509 *) into out: what a
 * client compares with the one it pinned. */
struct x509_st;
void tls_fingerprint_x509(struct x509_st *x, char out[TLS_FINGERPRINT_MAX]);

/* Frees what *id holds (the key's bytes are cleared first). */
void tls_identity_release(struct tls_identity *id);

#endif
