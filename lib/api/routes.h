/*
 * The API's route table: each route is (method, path pattern, body kind,
 * body limit, handler), like tmux's command table.  Patterns are /v1 paths
 * whose ":name" segments match any one segment and are handed to the
 * handler in order (params).  Matching is independent of the HTTP server,
 * so the table is unit-tested (tests/unit/test_api.c) and fuzzed
 * (tests/fuzz/fuzz_api.c, with the handlers' daemon calls stubbed out).
 */
#ifndef MIREN_API_ROUTES_H
#define MIREN_API_ROUTES_H

#include <jansson.h>
#include <stdbool.h>

#include "util/err.h"

#define API_MAX_PARAMS 4
/* Largest JSON body (and largest body of a route that takes none). */
#define API_JSON_MAX (1ull << 20)
/* Largest snapshot a restore accepts (compressed). */
#define API_RESTORE_MAX (64ull << 30)

enum api_body {
	API_BODY_NONE, /* ignored (a client may send an empty one) */
	API_BODY_JSON, /* a JSON object, parsed before the handler runs */
	API_BODY_FILE, /* spooled to a file under tmp/ while hashed */
};

struct daemon;
struct disk_backup_job;

/* A reply body another producer writes (the export of a stored backup):
 * run writes it to sink on a thread of its own (sink returns 0, or a
 * miren_err to stop); release frees user.  header: the value of the
 * X-Miren-Backup-Header reply header (malloc'd; NULL: none); what names
 * it in the log. */
struct api_stream {
	enum miren_err (*run)(void *user, int (*sink)(void *, const void *, size_t),
			      void *sink_user, struct miren_error *err);
	void (*release)(void *user);
	void *user;
	char *header;
	char *what;
};

/* One request as a handler sees it; filled by the HTTP server. */
struct api_req {
	struct daemon *d;
	const char *params[API_MAX_PARAMS]; /* the ":name" segments, in order */
	json_t *body;                       /* API_BODY_JSON: the object, else NULL */
	const char *upload_path;            /* API_BODY_FILE: the spooled body */
	const char *upload_sha256;          /* its SHA-256, hex */
	/* A query argument, or NULL. */
	const char *(*query)(void *conn, const char *key);
	/* Whether the client has gone (it gave up waiting). */
	bool (*client_gone)(void *conn);
	void *conn;
	/* Set by a handler whose reply is a backup stream (then *result is
	 * NULL): the server streams it and frees it. */
	struct disk_backup_job *stream;
	/* Or one an api_stream writes (malloc'd; the server frees it). */
	struct api_stream *gstream;
};

/* Returns 0 with *result (may stay NULL: an empty object is sent) or a
 * miren_err with err filled. */
typedef enum miren_err (*api_handler)(struct api_req *r, json_t **result, struct miren_error *err);

struct api_route {
	const char *method;
	const char *path; /* "/v1/apps/:app/env/:key" */
	enum api_body body;
	unsigned long long body_limit; /* bytes */
	api_handler handler;
};

/* The table, ending with an entry whose method is NULL. */
extern const struct api_route api_routes[];

/* Whom a route serves over TCP (a token's role and apps; see
 * daemon/auth.h).  Derived from its path, in one place:
 * /v1/apps/:app/... act on the app in params[0] (but destroying an app
 * is an admin's); /v1/apps lists the apps
 * (a scoped token sees its own); /v1/version and the addon catalogue
 * (/v1/addons...) serve any valid token; everything else (disks, backups
 * by id, tokens, debug) is an admin's. */
enum api_scope {
	API_SCOPE_APP,
	API_SCOPE_APP_LIST,
	API_SCOPE_ANY,
	API_SCOPE_ADMIN,
};
enum api_scope api_route_scope(const struct api_route *r);

struct auth_principal;
/* 0 when p may call route r with params (unmask: the request asks for
 * secret values), else MIREN_EPERM with err naming the token and what
 * it lacks. */
enum miren_err api_authorize(const struct api_route *r, const char *const *params, bool unmask,
			     const struct auth_principal *p, struct miren_error *err);

/*
 * The route for method and the (unescaped) path, its ":name" segments
 * pointed to in params (into path_copy, which the function splits: a
 * writable copy of the path the caller keeps while params are used).
 * NULL when no route matches.
 */
const struct api_route *api_route_find(const char *method, char *path_copy,
				       const char *params[API_MAX_PARAMS]);
/* The body limit for method and path (API_JSON_MAX when no route
 * matches: the request then gets "no such API endpoint"). */
unsigned long long api_route_body_limit(const char *method, const char *path);

#endif
