/*
 * libFuzzer target for what the API does with a request before a handler
 * runs: the input is "METHOD\nPATH\nBODY".  The path is unescaped and
 * split, matched against the route table (api_route_find on api_routes,
 * api_route_body_limit, api_spool_limit), and the body parsed, checking
 * what each promises: a matched route has the request's method, its
 * pattern's literal segments equal the path's and its ":name" segments
 * are the params handed over, in order; the limits agree with the route
 * (or are the defaults when none matches); a body is a JSON object or
 * nothing.  The handlers are never called (tests/fuzz/run links stubs
 * that abort in place of the daemon functions they use).
 */
#include "api/request.h"
#include "api/routes.h"

#include <stdlib.h>
#include <string.h>

/* Checks route r against the path's segments (split from a fresh copy)
 * and the params api_route_find handed over. */
static void check_match(const struct api_route *r, const char *method, const char *path,
			const char *const params[API_MAX_PARAMS])
{
	if (strcmp(r->method, method) || strncmp(r->path, "/v1/", 4) || !r->handler)
		abort();
	char *copy = strdup(path);
	const char *parts[API_MAX_PARTS];
	int n = copy ? api_split_path(copy, parts, API_MAX_PARTS) : -1;
	if (n < 1)
		abort(); /* it matched, so the path splits */
	int i = 0, k = 0;
	for (const char *p = r->path + 4; *p; i++) {
		const char *end = strchr(p, '/');
		size_t len = end ? (size_t)(end - p) : strlen(p);
		if (i >= n)
			abort();
		if (*p == ':') {
			if (k >= API_MAX_PARAMS || !params[k] || strcmp(params[k], parts[i]))
				abort();
			k++;
		} else if (strlen(parts[i]) != len || strncmp(parts[i], p, len)) {
			abort();
		}
		p += len + (end != NULL);
	}
	if (i != n)
		abort();
	free(copy);
}

static void check_routes(const char *method, const char *path)
{
	char *copy = strdup(path);
	if (!copy)
		return;
	const char *params[API_MAX_PARAMS] = { 0 };
	const struct api_route *r = api_route_find(method, copy, params);
	unsigned long long limit = api_route_body_limit(method, path);
	unsigned long long spool = api_spool_limit(method, path);
	if (r) {
		check_match(r, method, path, params);
		if (limit != r->body_limit ||
		    spool != (r->body == API_BODY_FILE ? r->body_limit : 0))
			abort();
	} else if (limit != API_JSON_MAX || spool != 0) {
		abort();
	}
	free(copy);
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
	char *buf = malloc(size + 1);
	if (!buf)
		return 0;
	memcpy(buf, data, size);
	buf[size] = '\0';
	char *method = buf, *path = strchr(buf, '\n'), *body = NULL;
	if (path) {
		*path++ = '\0';
		body = strchr(path, '\n');
		if (body)
			*body++ = '\0';
	}
	if (path) {
		/* As the server does: unescape, then match. */
		size_t len = api_unescape(path);
		if (len != strlen(path))
			abort();
		check_routes(method, path);
		const char *parts[API_MAX_PARTS];
		int n = api_split_path(path, parts, API_MAX_PARTS);
		if (n > API_MAX_PARTS)
			abort();
		for (int i = 0; i < n; i++)
			if (!parts[i][0] || strchr(parts[i], '/'))
				abort();
	}
	if (body) {
		size_t len = size - (size_t)(body - buf);
		json_t *j = api_parse_body(body, len);
		if (j && !json_is_object(j))
			abort();
		json_decref(j);
	}
	free(buf);
	return 0;
}
