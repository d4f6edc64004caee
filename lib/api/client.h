/*
 * The API client the CLI uses: one request, one JSON reply, over the
 * daemon's unix socket (libcurl with CURLOPT_UNIX_SOCKET_PATH).
 */
#ifndef MIREN_API_CLIENT_H
#define MIREN_API_CLIENT_H

#include <jansson.h>
#include <stddef.h>

#include "util/err.h"

/*
 * Sends method path (e.g. "GET", "/v1/apps") with an optional body
 * (content_type "application/json" or "application/x-tar").  On a 2xx
 * reply returns 0 with *reply set (caller decrefs).  On an error reply
 * returns its code with err filled from the body's message and hint.  When
 * the server cannot be reached returns MIREN_EUNAVAIL with a message that
 * says how to start it.
 */
int api_call(const char *socket_path, const char *method, const char *path, const void *body,
	     size_t body_len, const char *content_type, json_t **reply, struct miren_error *err);

/* The same with a JSON body (may be NULL); the body is not taken. */
int api_call_json(const char *socket_path, const char *method, const char *path,
		  const json_t *body, json_t **reply, struct miren_error *err);

/* Escapes s for use as one path segment or query value. Caller frees. */
char *api_escape(const char *s);

#endif
