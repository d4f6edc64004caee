/* The daemon's TLS identity; see tls.h.  OpenSSL makes and reads the key
 * and certificate; libmicrohttpd (GnuTLS) serves them. */
#include "api/tls.h"
#include "util/fs.h"
#include "util/io.h"
#include "util/strbuf.h"

#include <errno.h>
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Bounds what is read from a PEM file. */
#define PEM_MAX (1u << 20)
#define CERT_DAYS 3650

void tls_fingerprint_der(const unsigned char *der, size_t der_len, char out[TLS_FINGERPRINT_MAX])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int n = 0;
	EVP_Digest(der, der_len, md, &n, EVP_sha256(), NULL);
	unsigned char b64[64];
	int len = EVP_EncodeBlock(b64, md, (int)n);
	while (len > 0 && b64[len - 1] == '=')
		len--;
	snprintf(out, TLS_FINGERPRINT_MAX, "SHA256:%.*s", len, (const char *)b64);
}

static X509 *cert_of_pem(const char *pem)
{
	BIO *b = BIO_new_mem_buf(pem, -1);
	X509 *x = b ? PEM_read_bio_X509(b, NULL, NULL, NULL) : NULL;
	BIO_free(b);
	return x;
}

void tls_fingerprint_x509(X509 *x, char out[TLS_FINGERPRINT_MAX])
{
	unsigned char *der = NULL;
	int n = i2d_X509(x, &der);
	tls_fingerprint_der(der, n > 0 ? (size_t)n : 0, out);
	OPENSSL_free(der);
}

enum miren_err tls_fingerprint_pem(const char *cert_pem, char out[TLS_FINGERPRINT_MAX],
				   struct miren_error *err)
{
	X509 *x = cert_of_pem(cert_pem);
	if (!x)
		return miren_error_set(err, MIREN_EINVAL, "no PEM certificate found");
	tls_fingerprint_x509(x, out);
	X509_free(x);
	return 0;
}

/* A BIO's bytes as a NUL-terminated string (caller frees). */
static char *bio_string(BIO *b)
{
	char *data;
	long n = BIO_get_mem_data(b, &data);
	char *s = xmalloc((size_t)n + 1);
	memcpy(s, data, (size_t)n);
	s[n] = '\0';
	return s;
}

/* A new EC P-256 key and a self-signed certificate for it, as PEM. */
static enum miren_err make_pair(char **cert_pem, char **key_pem, struct miren_error *err)
{
	enum miren_err rc = 0;
	EVP_PKEY *key = EVP_EC_gen("P-256");
	X509 *x = X509_new();
	BIO *kb = BIO_new(BIO_s_mem()), *cb = BIO_new(BIO_s_mem());
	unsigned char serial[16];
	BIGNUM *bn = NULL;
	X509_NAME *name = NULL;
	X509_EXTENSION *ext = NULL;
	if (!key || !x || !kb || !cb || RAND_bytes(serial, sizeof(serial)) != 1) {
		rc = miren_error_set(err, MIREN_EINTERNAL, "cannot make a TLS key");
		goto out;
	}
	serial[0] &= 0x7f; /* a positive serial number (RFC 5280 4.1.2.2) */
	bn = BN_bin2bn(serial, sizeof(serial), NULL);
	name = X509_NAME_new();
	ext = X509V3_EXT_conf_nid(NULL, NULL, NID_basic_constraints, "critical,CA:FALSE");
	if (!bn || !name || !ext || !X509_set_version(x, 2) ||
	    !BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)) ||
	    !X509_gmtime_adj(X509_getm_notBefore(x), -3600) ||
	    !X509_gmtime_adj(X509_getm_notAfter(x), (long)CERT_DAYS * 86400) ||
	    !X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)"miren",
					-1, -1, 0) ||
	    !X509_set_subject_name(x, name) || !X509_set_issuer_name(x, name) ||
	    !X509_add_ext(x, ext, -1) || !X509_set_pubkey(x, key) ||
	    !X509_sign(x, key, EVP_sha256()) ||
	    !PEM_write_bio_PrivateKey(kb, key, NULL, NULL, 0, NULL, NULL) ||
	    !PEM_write_bio_X509(cb, x)) {
		rc = miren_error_set(err, MIREN_EINTERNAL, "cannot make a TLS certificate");
		goto out;
	}
	*key_pem = bio_string(kb);
	*cert_pem = bio_string(cb);
out:
	X509_EXTENSION_free(ext);
	X509_NAME_free(name);
	BN_free(bn);
	BIO_free(kb);
	BIO_free(cb);
	X509_free(x);
	EVP_PKEY_free(key);
	return rc;
}

static enum miren_err read_pem(const char *path, const char *what, char **out,
			       struct miren_error *err)
{
	struct strbuf sb;
	strbuf_init(&sb, PEM_MAX);
	if (strbuf_read_file(&sb, path) != 0) {
		int e = errno;
		strbuf_release(&sb);
		return miren_error_set(err, MIREN_EIO, "cannot read the TLS %s '%s': %s", what,
				       path, io_strerror(e));
	}
	*out = strbuf_detach(&sb, NULL);
	return 0;
}

/* Whether key_pem is a private key that matches the certificate x. */
static bool key_matches(const char *key_pem, X509 *x)
{
	BIO *b = BIO_new_mem_buf(key_pem, -1);
	EVP_PKEY *k = b ? PEM_read_bio_PrivateKey(b, NULL, NULL, NULL) : NULL;
	bool ok = k && X509_check_private_key(x, k) == 1;
	EVP_PKEY_free(k);
	BIO_free(b);
	return ok;
}

enum miren_err tls_identity_load(const char *dir, const char *cert_path, const char *key_path,
				 struct tls_identity *id, struct miren_error *err)
{
	memset(id, 0, sizeof(*id));
	char *own_cert = fs_join(dir, "cert.pem"), *own_key = fs_join(dir, "key.pem");
	enum miren_err rc = 0;
	if (!cert_path && (!fs_exists(own_cert) || !fs_exists(own_key))) {
		/* First start (or a crash between the two renames): a new pair. */
		if (fs_mkdir_p(dir, 0700) != 0) {
			rc = miren_error_set(err, MIREN_EIO, "cannot create '%s': %s", dir,
					     io_strerror(errno));
			goto out;
		}
		if ((rc = make_pair(&id->cert_pem, &id->key_pem, err)) != 0)
			goto out;
		if (fs_write_atomic(own_key, id->key_pem, strlen(id->key_pem), 0600) != 0 ||
		    fs_write_atomic(own_cert, id->cert_pem, strlen(id->cert_pem), 0644) != 0) {
			rc = miren_error_set(err, MIREN_EIO,
					     "cannot write the TLS key and "
					     "certificate in '%s': %s",
					     dir, io_strerror(errno));
			goto out;
		}
	} else {
		const char *cp = cert_path ? cert_path : own_cert,
			   *kp = key_path ? key_path : own_key;
		if ((rc = read_pem(cp, "certificate", &id->cert_pem, err)) != 0 ||
		    (rc = read_pem(kp, "key", &id->key_pem, err)) != 0)
			goto out;
		X509 *x = cert_of_pem(id->cert_pem);
		if (!x) {
			rc = miren_error_set(err, MIREN_EINVAL, "'%s' holds no PEM certificate",
					     cp);
			goto out;
		}
		bool match = key_matches(id->key_pem, x);
		X509_free(x);
		if (!match) {
			rc = miren_error_set(err, MIREN_EINVAL,
					     "the TLS key '%s' is not the key of the certificate "
					     "'%s'",
					     kp, cp);
			miren_error_hint(err, "give the key the certificate was made for");
			goto out;
		}
	}
	rc = tls_fingerprint_pem(id->cert_pem, id->fingerprint, err);
out:
	if (rc)
		tls_identity_release(id);
	free(own_cert);
	free(own_key);
	return rc;
}

void tls_identity_release(struct tls_identity *id)
{
	if (id->key_pem)
		OPENSSL_cleanse(id->key_pem, strlen(id->key_pem));
	free(id->key_pem);
	free(id->cert_pem);
	memset(id, 0, sizeof(*id));
}
