/*
 * The API client the CLI uses: one request, one JSON reply (or a streamed
 * body), to a target: the daemon's unix socket (libcurl with
 * CURLOPT_UNIX_SOCKET_PATH), or a remote server's HTTPS listener (a
 * cluster, api/clusters.h) with a token and a pinned certificate.
 *
 * Pinning: the server's certificate is accepted when the SHA-256
 * fingerprint of its DER bytes (api/tls.h) is the pinned one, checked in
 * the TLS handshake (an OpenSSL verify callback), so nothing, the token
 * least, is sent to a server that does not match; no certificate
 * authority and no host name are consulted.  TLS 1.2 at least.
 */
#ifndef MIREN_API_CLIENT_H
#define MIREN_API_CLIENT_H

#include <jansson.h>
#include <stddef.h>

#include "api/tls.h"
#include "util/err.h"

/* Where requests go: a unix socket, or a cluster's HTTPS address. */
struct api_target {
	char *socket;  /* the unix socket's path; NULL for a cluster */
	char *cluster; /* the cluster's name (for messages) */
	char *url;     /* "https://HOST:PORT" */
	char *token;   /* sent as "Authorization: Bearer"; a secret: never in
			* output, errors or logs */
	char fingerprint[TLS_FINGERPRINT_MAX]; /* the pinned certificate */
};

/* Frees what t holds (the token's bytes cleared first). */
void api_target_release(struct api_target *t);

/*
 * Connects to url ("https://HOST:PORT") and stores the fingerprint of the
 * certificate the server presents in out, ending the handshake there: no
 * request is sent.  MIREN_EUNAVAIL when the server cannot be reached or
 * speaks no TLS.
 */
enum miren_err api_fingerprint(const char *url, char out[TLS_FINGERPRINT_MAX],
			       struct miren_error *err);

/*
 * Sends method path (e.g. "GET", "/v1/apps") with an optional body
 * (content_type "application/json" or "application/x-tar").  On a 2xx
 * reply returns 0 with *reply set (caller decrefs).  On an error reply
 * returns its code with err filled from the body's message and hint.  When
 * the server cannot be reached returns MIREN_EUNAVAIL with a message that
 * says how to start it (for a cluster: that it does not answer).  A
 * cluster whose certificate does not match the pinned fingerprint is
 * MIREN_EAUTH, and no request is sent; an HTTP 401 is MIREN_EAUTH.
 */
enum miren_err api_call(const struct api_target *t, const char *method, const char *path,
			const void *body, size_t body_len, const char *content_type, json_t **reply,
			struct miren_error *err);

/* The same with a JSON body (may be NULL); the body is not taken. */
enum miren_err api_call_json(const struct api_target *t, const char *method, const char *path,
			     const json_t *body, json_t **reply, struct miren_error *err);

/* Where a streamed reply body goes; returns 0 or a miren_err to abort. */
typedef int (*api_sink_fn)(void *user, const void *data, size_t len);
/* Called now and then with the bytes moved so far. */
typedef void (*api_progress_fn)(void *user, unsigned long long up, unsigned long long down);

/*
 * A request whose reply body is a stream (a backup): on a 2xx reply every
 * body byte goes to sink, and the value of reply header `want_header` (if
 * not NULL) is stored in *header_value (caller frees; NULL if absent).  An
 * error reply or a broken stream returns a miren_err with err filled.
 */
enum miren_err api_stream(const struct api_target *t, const char *method, const char *path,
			  const char *want_header, char **header_value, api_sink_fn sink,
			  void *user, api_progress_fn progress, void *puser,
			  struct miren_error *err);

/* A request whose body is read from fd (size bytes), with a JSON reply. */
enum miren_err api_upload(const struct api_target *t, const char *method, const char *path, int fd,
			  unsigned long long size, api_progress_fn progress, void *puser,
			  json_t **reply, struct miren_error *err);

/* Escapes s for use as one path segment or query value. Caller frees. */
char *api_escape(const char *s);

#endif
