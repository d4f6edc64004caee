/* API client over libcurl; see client.h. */
#include "api/client.h"
#include "util/compiler.h"
#include "util/io.h"
#include "util/strbuf.h"

#include <curl/curl.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#define REPLY_MAX (64u << 20)
/* A cluster that does not answer within this is reported as unreachable. */
#define CONNECT_TIMEOUT_S 20L

/* The SSL_CTX slot where a transfer's state waits for the verify callback. */
static int ctx_index = -1;
static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static void curl_init(void)
{
	curl_global_init(CURL_GLOBAL_DEFAULT);
	ctx_index = SSL_CTX_get_ex_new_index(0, NULL, NULL, NULL, NULL);
}

void api_target_release(struct api_target *t)
{
	free(t->socket);
	free(t->cluster);
	free(t->url);
	if (t->token) {
		explicit_bzero(t->token, strlen(t->token));
		free(t->token);
	}
	*t = (struct api_target){ 0 };
}

char *api_escape(const char *s)
{
	struct strbuf sb = STRBUF_INIT;
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') ||
		    (*p >= '0' && *p <= '9') || *p == '-' || *p == '_' || *p == '.' || *p == '~')
			strbuf_addch(&sb, (char)*p);
		else
			strbuf_addf(&sb, "%%%02X", *p);
	}
	return strbuf_detach(&sb, NULL);
}

/* One transfer's state, shared by the callbacks and the caller. */
struct xfer {
	CURL *c;
	const struct api_target *t;
	char *url;
	struct curl_slist *hdrs; /* may hold the token: cleared before freed */
	char errbuf[CURL_ERROR_SIZE];
	struct strbuf body; /* JSON replies, and error bodies of streams */
	api_sink_fn sink;   /* streams: where 2xx bodies go */
	void *user;
	int sink_rc;
	long status;
	const char *want_header;
	char *header_value;
	api_progress_fn progress;
	void *puser;
	int fd; /* uploads */
	/* TLS: the fingerprint of the server's certificate as seen in the
	 * handshake ("" until then); with probe the handshake ends there. */
	char seen[TLS_FINGERPRINT_MAX];
	bool probe;
};

static size_t on_data(char *ptr, size_t size, size_t nmemb, void *arg)
{
	struct xfer *x = arg;
	size_t n = size * nmemb;
	if (!x->status)
		curl_easy_getinfo(x->c, CURLINFO_RESPONSE_CODE, &x->status);
	if (x->sink && x->status >= 200 && x->status < 300) {
		x->sink_rc = x->sink(x->user, ptr, n);
		return x->sink_rc ? 0 : n;
	}
	return strbuf_add(&x->body, ptr, n) ? 0 : n;
}

static size_t on_header(char *buf, size_t size, size_t nitems, void *arg)
{
	struct xfer *x = arg;
	size_t n = size * nitems, l = x->want_header ? strlen(x->want_header) : 0;
	if (l && n > l + 1 && !strncasecmp(buf, x->want_header, l) && buf[l] == ':') {
		const char *v = buf + l + 1;
		size_t vl = n - l - 1;
		while (vl && (*v == ' ' || *v == '\t'))
			v++, vl--;
		while (vl && (v[vl - 1] == '\r' || v[vl - 1] == '\n'))
			vl--;
		free(x->header_value);
		x->header_value = xstrndup(v, vl);
	}
	return n;
}

static size_t on_read(char *buf, size_t size, size_t nitems, void *arg)
{
	struct xfer *x = arg;
	ssize_t n = read(x->fd, buf, size * nitems);
	return n < 0 ? CURL_READFUNC_ABORT : (size_t)n;
}

static int on_progress(void *arg, curl_off_t dltotal MIREN_UNUSED, curl_off_t dlnow,
		       curl_off_t ultotal MIREN_UNUSED, curl_off_t ulnow)
{
	struct xfer *x = arg;
	if (x->progress)
		x->progress(x->puser, (unsigned long long)ulnow, (unsigned long long)dlnow);
	return 0;
}

/*
 * The certificate check of a cluster's handshake: the leaf certificate's
 * fingerprint must be the pinned one (whatever the chain; no CA is
 * trusted).  Records what it saw for the error message.  With probe it
 * refuses every certificate: the fingerprint is all that was wanted.
 */
static int on_verify(int preverify_ok MIREN_UNUSED, X509_STORE_CTX *sc)
{
	SSL *ssl = X509_STORE_CTX_get_ex_data(sc, SSL_get_ex_data_X509_STORE_CTX_idx());
	struct xfer *x = ssl ? SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), ctx_index) : NULL;
	X509 *leaf = X509_STORE_CTX_get0_cert(sc);
	if (!x || !leaf)
		return 0;
	tls_fingerprint_x509(leaf, x->seen);
	return !x->probe && x->t->fingerprint[0] && !strcmp(x->seen, x->t->fingerprint);
}

static CURLcode on_ssl_ctx(CURL *c MIREN_UNUSED, void *ctx, void *arg)
{
	SSL_CTX_set_ex_data(ctx, ctx_index, arg);
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, on_verify);
	return CURLE_OK;
}

/* The TLS settings of a cluster's transfer: pinned, not CA-checked. */
static bool xfer_tls(struct xfer *x)
{
	curl_easy_setopt(x->c, CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2);
	curl_easy_setopt(x->c, CURLOPT_SSL_VERIFYPEER, 0L);
	curl_easy_setopt(x->c, CURLOPT_SSL_VERIFYHOST, 0L);
	curl_easy_setopt(x->c, CURLOPT_SSL_SESSIONID_CACHE, 0L);
	curl_easy_setopt(x->c, CURLOPT_CONNECTTIMEOUT, CONNECT_TIMEOUT_S);
	curl_easy_setopt(x->c, CURLOPT_SSL_CTX_DATA, x);
	return curl_easy_setopt(x->c, CURLOPT_SSL_CTX_FUNCTION, on_ssl_ctx) == CURLE_OK;
}

/* Sets up x for method path on x->t; content_type ("Content-Type: ...")
 * may be NULL.  False when libcurl cannot (its TLS is not OpenSSL's). */
static bool xfer_init(struct xfer *x, const char *method, const char *path,
		      const char *content_type)
{
	pthread_once(&curl_once, curl_init);
	x->c = curl_easy_init();
	strbuf_init(&x->body, REPLY_MAX);
	if (!x->c)
		return false;
	if (x->t->socket) {
		x->url = xasprintf("http://miren%s", path);
		curl_easy_setopt(x->c, CURLOPT_UNIX_SOCKET_PATH, x->t->socket);
	} else {
		x->url = xasprintf("%s%s", x->t->url, path);
		if (!xfer_tls(x))
			return false;
		if (x->t->token) {
			char *auth = xasprintf("Authorization: Bearer %s", x->t->token);
			x->hdrs = curl_slist_append(x->hdrs, auth);
			explicit_bzero(auth, strlen(auth));
			free(auth);
		}
	}
	if (content_type) {
		x->hdrs = curl_slist_append(x->hdrs, content_type);
		x->hdrs = curl_slist_append(x->hdrs, "Expect:");
	}
	curl_easy_setopt(x->c, CURLOPT_HTTPHEADER, x->hdrs);
	curl_easy_setopt(x->c, CURLOPT_URL, x->url);
	curl_easy_setopt(x->c, CURLOPT_CUSTOMREQUEST, method);
	curl_easy_setopt(x->c, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(x->c, CURLOPT_WRITEDATA, x);
	curl_easy_setopt(x->c, CURLOPT_ERRORBUFFER, x->errbuf);
	curl_easy_setopt(x->c, CURLOPT_NOSIGNAL, 1L);
	if (x->want_header) {
		curl_easy_setopt(x->c, CURLOPT_HEADERFUNCTION, on_header);
		curl_easy_setopt(x->c, CURLOPT_HEADERDATA, x);
	}
	if (x->progress) {
		curl_easy_setopt(x->c, CURLOPT_NOPROGRESS, 0L);
		curl_easy_setopt(x->c, CURLOPT_XFERINFOFUNCTION, on_progress);
		curl_easy_setopt(x->c, CURLOPT_XFERINFODATA, x);
	}
	return true;
}

static enum miren_err init_failed(struct miren_error *err)
{
	return miren_error_set(err, MIREN_EINTERNAL,
			       "cannot set up libcurl (pinned HTTPS needs its OpenSSL build)");
}

/* Why a transfer with the unix socket did not connect. */
static enum miren_err socket_error(const struct xfer *x, struct miren_error *err)
{
	const char *sock = x->t->socket;
	if (access(sock, F_OK) == 0 && access(sock, R_OK | W_OK) != 0) {
		miren_error_set(err, MIREN_EPERM, "permission denied on the miren socket '%s'",
				sock);
		miren_error_hint(err,
				 "run the command as root or as the user running 'miren server'");
		return MIREN_EPERM;
	}
	miren_error_set(err, MIREN_EUNAVAIL, "the miren server is not running (no answer on '%s')",
			sock);
	miren_error_hint(err, "start it with 'miren server', or point MIREN_DATA_DIR or "
			      "--socket at a running one");
	return MIREN_EUNAVAIL;
}

/* Why a transfer with a cluster failed before a reply: a certificate
 * that is not the pinned one, or no (TLS) answer. */
static enum miren_err cluster_error(const struct xfer *x, CURLcode cc, struct miren_error *err)
{
	const struct api_target *t = x->t;
	const char *name = t->cluster ? t->cluster : t->url;
	if (x->seen[0] && !x->probe && strcmp(x->seen, t->fingerprint)) {
		miren_error_set(err, MIREN_EAUTH,
				"the certificate of cluster '%s' (%s) no longer matches the pinned "
				"fingerprint: refusing to connect",
				name, t->url);
		miren_error_detail(err, "pinned %s, the server presented %s", t->fingerprint,
				   x->seen);
		miren_error_hint(err,
				 "someone may be intercepting the connection; if the server's "
				 "certificate was replaced on purpose, check the new fingerprint "
				 "with 'miren server info' on the server, then run 'miren cluster "
				 "remove %s' and 'miren cluster add %s %s --token-file FILE "
				 "--fingerprint SHA256:...'",
				 name, name, t->url);
		return MIREN_EAUTH;
	}
	miren_error_set(err, MIREN_EUNAVAIL, "cluster '%s' does not answer at %s: %s", name, t->url,
			x->errbuf[0] ? x->errbuf : curl_easy_strerror(cc));
	miren_error_hint(err, "check that 'miren server --listen' runs there and that the "
			      "address is right ('miren cluster list')");
	return MIREN_EUNAVAIL;
}

/*
 * Runs the transfer and turns its outcome into a miren_err: the server not
 * running, an error reply's {"error":...}, or a broken transfer.  On a 2xx
 * JSON reply (no sink) *reply gets the parsed body.
 */
static enum miren_err xfer_perform(struct xfer *x, json_t **reply, struct miren_error *err)
{
	CURLcode cc = curl_easy_perform(x->c);
	curl_easy_getinfo(x->c, CURLINFO_RESPONSE_CODE, &x->status);
	if (x->t->socket && (cc == CURLE_COULDNT_CONNECT || cc == CURLE_COULDNT_RESOLVE_HOST))
		return socket_error(x, err);
	if (!x->t->socket && cc != CURLE_OK && !x->status)
		return cluster_error(x, cc, err);
	if (x->sink_rc)
		return miren_error_set(err, x->sink_rc, "writing the received data failed: %s",
				       miren_strerror(x->sink_rc));
	if (cc != CURLE_OK && !(x->status >= 300 && x->body.len))
		return miren_error_set(err, MIREN_EUNAVAIL,
				       "the transfer with the miren server broke off: %s",
				       x->errbuf[0] ? x->errbuf : curl_easy_strerror(cc));
	json_t *j = x->body.len ? json_loadb(x->body.buf, x->body.len, 0, NULL) : NULL;
	if (x->status >= 200 && x->status < 300) {
		if (x->sink) {
			json_decref(j);
			return 0;
		}
		if (!j)
			return miren_error_set(err, MIREN_EINTERNAL,
					       "the server sent a reply that is not JSON");
		*reply = j;
		return 0;
	}
	json_t *e = json_object_get(j, "error");
	const char *msg = json_string_value(json_object_get(e, "message"));
	const char *detail = json_string_value(json_object_get(e, "detail"));
	const char *hint = json_string_value(json_object_get(e, "hint"));
	enum miren_err rc = miren_err_from_code_name(json_string_value(json_object_get(e, "code")));
	if (x->status == 401)
		rc = MIREN_EAUTH;
	if (rc == MIREN_OK)
		rc = MIREN_EINTERNAL;
	miren_error_set(err, rc, "%s", msg ? msg : "the server answered with an error");
	if (detail && *detail)
		miren_error_detail(err, "%s", detail);
	if (x->status == 401 && x->t->cluster)
		miren_error_hint(err,
				 "cluster '%s' refused its token (wrong, expired or revoked): make "
				 "a new one with 'miren auth token create' on the server, then "
				 "'miren cluster remove %s' and 'miren cluster add' it again",
				 x->t->cluster, x->t->cluster);
	else if (hint && *hint)
		miren_error_hint(err, "%s", hint);
	json_decref(j);
	return rc;
}

static void xfer_cleanup(struct xfer *x)
{
	for (struct curl_slist *h = x->hdrs; h; h = h->next)
		explicit_bzero(h->data, strlen(h->data));
	curl_slist_free_all(x->hdrs);
	curl_easy_cleanup(x->c);
	free(x->url);
	free(x->header_value);
	strbuf_release(&x->body);
}

enum miren_err api_fingerprint(const char *url, char out[TLS_FINGERPRINT_MAX],
			       struct miren_error *err)
{
	struct api_target t = { .url = (char *)url };
	struct xfer x = { .t = &t, .probe = true };
	enum miren_err rc = 0;
	if (!xfer_init(&x, "GET", "/v1/version", NULL)) {
		rc = init_failed(err);
	} else {
		curl_easy_setopt(x.c, CURLOPT_CONNECT_ONLY, 1L);
		CURLcode cc = curl_easy_perform(x.c);
		if (x.seen[0])
			snprintf(out, TLS_FINGERPRINT_MAX, "%s", x.seen);
		else
			rc = cluster_error(&x, cc, err);
	}
	xfer_cleanup(&x);
	return rc;
}

enum miren_err api_call(const struct api_target *t, const char *method, const char *path,
			const void *body, size_t body_len, const char *content_type, json_t **reply,
			struct miren_error *err)
{
	*reply = NULL;
	struct xfer x = { .t = t };
	enum miren_err rc;
	if (!xfer_init(&x, method, path,
		       !body          ? NULL
		       : content_type ? content_type
				      : "Content-Type: application/json")) {
		rc = init_failed(err);
		goto out;
	}
	if (body) {
		curl_easy_setopt(x.c, CURLOPT_POSTFIELDS, body);
		curl_easy_setopt(x.c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body_len);
	}
	rc = xfer_perform(&x, reply, err);
out:
	xfer_cleanup(&x);
	return rc;
}

enum miren_err api_stream(const struct api_target *t, const char *method, const char *path,
			  const char *want_header, char **header_value, api_sink_fn sink,
			  void *user, api_progress_fn progress, void *puser,
			  struct miren_error *err)
{
	struct xfer x = { .t = t,
			  .sink = sink,
			  .user = user,
			  .want_header = want_header,
			  .progress = progress,
			  .puser = puser };
	enum miren_err rc;
	if (!xfer_init(&x, method, path, NULL)) {
		rc = init_failed(err);
		goto out;
	}
	curl_easy_setopt(x.c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)0);
	curl_easy_setopt(x.c, CURLOPT_POSTFIELDS, "");
	json_t *unused = NULL;
	rc = xfer_perform(&x, &unused, err);
	if (header_value) {
		*header_value = x.header_value;
		x.header_value = NULL;
	}
out:
	xfer_cleanup(&x);
	return rc;
}

enum miren_err api_upload(const struct api_target *t, const char *method, const char *path, int fd,
			  unsigned long long size, api_progress_fn progress, void *puser,
			  json_t **reply, struct miren_error *err)
{
	*reply = NULL;
	struct xfer x = { .t = t, .fd = fd, .progress = progress, .puser = puser };
	enum miren_err rc;
	if (!xfer_init(&x, method, path, "Content-Type: application/zstd")) {
		rc = init_failed(err);
		goto out;
	}
	curl_easy_setopt(x.c, CURLOPT_POST, 1L);
	curl_easy_setopt(x.c, CURLOPT_READFUNCTION, on_read);
	curl_easy_setopt(x.c, CURLOPT_READDATA, &x);
	curl_easy_setopt(x.c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)size);
	rc = xfer_perform(&x, reply, err);
out:
	xfer_cleanup(&x);
	return rc;
}

enum miren_err api_call_json(const struct api_target *t, const char *method, const char *path,
			     const json_t *body, json_t **reply, struct miren_error *err)
{
	char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
	enum miren_err rc = api_call(t, method, path, text, text ? strlen(text) : 0,
				     "Content-Type: application/json", reply, err);
	free(text);
	return rc;
}
