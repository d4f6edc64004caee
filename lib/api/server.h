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
struct tls_identity;
/* Listens on addr ("HOST:PORT", a numeric host; an IPv6 one in brackets)
 * over TLS 1.2 or newer with id (not taken; it must outlive the server)
 * and serves d's routes there; every request must carry a valid token.
 * MIREN_EINVAL for an address that is not HOST:PORT, MIREN_EIO when it
 * cannot be bound. */
enum miren_err api_server_listen_tcp(struct daemon *d, const char *addr,
				     const struct tls_identity *id, struct api_server **out,
				     struct miren_error *err);
/* Stops a server of either kind (NULL: nothing). */
void api_server_stop(struct api_server *s);

#endif
