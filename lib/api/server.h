/*
 * The daemon's JSON API over a unix socket (libmicrohttpd).
 *
 * Every response is JSON.  Errors are
 *   {"error":{"code":"not_found","message":"app 'x' not found","hint":"..."}}
 * with the HTTP status of the miren_err.  Request bodies are bounded: 1 MiB
 * for JSON, SOURCE_MAX_BYTES for a deploy upload (spooled to a file under
 * the data directory's tmp/ while it is hashed).  Only the daemon's own
 * user and root may call it (SO_PEERCRED on every connection).
 */
#ifndef MIREN_API_SERVER_H
#define MIREN_API_SERVER_H

#include "app/platform.h"
#include "util/err.h"

struct api_server;

/* Binds socket_path (replacing a stale socket, refusing a live one),
 * mode 0660, and serves p on it from internal threads. */
enum miren_err api_server_start(struct platform *p, const char *socket_path, struct api_server **out,
		     struct miren_error *err);
void api_server_stop(struct api_server *s);

#endif
