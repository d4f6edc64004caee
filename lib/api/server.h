/*
 * The daemon's JSON API over a unix socket (libmicrohttpd).
 *
 * Every response is JSON.  Errors are
 *   {"error":{"code":"not_found","message":"app 'x' not found","hint":"..."}}
 * with the HTTP status of the miren_err.  Request bodies are bounded by their
 * route's limit (api/routes.h): 1 MiB for JSON; uploads are spooled to a
 * file under the data directory's tmp/ while they are hashed.  Only the daemon's own
 * user and root may call it (SO_PEERCRED on every connection).
 */
#ifndef MIREN_API_SERVER_H
#define MIREN_API_SERVER_H

#include "daemon/daemon.h"
#include "util/err.h"

struct api_server;

/* Binds socket_path (replacing a stale socket, refusing a live one),
 * mode 0660, and serves d's routes (api/routes.h) on it from internal
 * threads. */
enum miren_err api_server_start(struct daemon *d, const char *socket_path, struct api_server **out,
				struct miren_error *err);
void api_server_stop(struct api_server *s);

#endif
