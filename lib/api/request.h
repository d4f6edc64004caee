/*
 * The parsing half of the API server, apart from libmicrohttpd so it can
 * be unit-tested and fuzzed: request paths, which requests carry a file
 * body, and JSON bodies.
 */
#ifndef MIREN_API_REQUEST_H
#define MIREN_API_REQUEST_H

#include <jansson.h>
#include <stddef.h>

#define API_MAX_PARTS 8

/* Splits url "/v1/a/b" in place into at most max non-empty segments after
 * /v1.  Returns how many, or -1 when it is not a /v1 path or has more. */
int api_split_path(char *url, const char **parts, int max);
/*
 * Decodes the %XX escapes of a request path in place (the URI unescaper of
 * the HTTP server), except those of a control character (%00..%1F, %7F):
 * they stay as the three characters, so "a1%00x" is the name "a1%00x",
 * which every name rule refuses, and never "a1" cut at a NUL.  Returns the
 * new length; s stays NUL-terminated.
 */
size_t api_unescape(char *s);
/* For requests whose body is a file to spool (deploy, restore): the
 * largest body accepted.  0 for every other request (JSON bodies). */
unsigned long long api_spool_limit(const char *method, const char *url);
/* A JSON object from a request body, or NULL when it is not one. */
json_t *api_parse_body(const char *buf, size_t len);

#endif
