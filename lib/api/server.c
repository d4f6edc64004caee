/*
 * API server: HTTP plumbing over libmicrohttpd and the route table.
 * See server.h for the contract.
 */
#include "api/server.h"
#include "addon/disk_ops.h"
#include "api/request.h"
#include "api/routes.h"
#include "api/shape.h"
#include "api/tls.h"
#include "daemon/auth.h"
#include "util/compiler.h"
#include "util/io.h"
#include "util/log.h"
#include "util/paths.h"
#include "util/sha256.h"
#include "util/strbuf.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <microhttpd.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

struct api_server {
	struct MHD_Daemon *mhd;
	struct daemon *d;
	const struct data_paths *paths;
	char *socket_path; /* the unix socket's; NULL for a TCP listener */
	int fd;
};

/* Per-request state, created on the first call of the access handler. */
struct request {
	const struct api_route *route; /* NULL: no such endpoint */
	char *path;                    /* split in place; params point into it */
	const char *params[API_MAX_PARAMS];
	struct strbuf body; /* JSON bodies */
	int spool_fd;       /* deploy uploads go to a file */
	char *spool_path;
	struct sha256 hash;
	unsigned long long spooled;
	unsigned long long body_max;
	int spool_errno;
	int too_big;
	/* Refused before its body is read (deny.code set): a unix-socket
	 * peer of another user, or over TCP a token missing, invalid or not
	 * allowed this route. */
	struct miren_error deny;
	bool tcp;
	struct auth_principal who; /* over TCP, once the token is checked */
};

static enum MHD_Result send_json(struct MHD_Connection *conn, unsigned status, json_t *j)
{
	char *text = json_dumps(j, JSON_COMPACT);
	json_decref(j);
	if (!text)
		text = xstrdup(
			"{\"error\":{\"code\":\"internal\",\"message\":\"cannot encode reply\"}}");
	size_t len = strlen(text);
	text = xrealloc(text, len + 2);
	text[len++] = '\n';
	struct MHD_Response *r = MHD_create_response_from_buffer(len, text, MHD_RESPMEM_MUST_FREE);
	MHD_add_response_header(r, "Content-Type", "application/json");
	enum MHD_Result ret = MHD_queue_response(conn, status, r);
	MHD_destroy_response(r);
	return ret;
}

static enum MHD_Result send_error(struct MHD_Connection *conn, const struct miren_error *err)
{
	return send_json(conn, (unsigned)miren_err_http_status(err->code), shape_error(err));
}

static enum MHD_Result send_err(struct MHD_Connection *conn, enum miren_err code, const char *msg,
				const char *hint)
{
	struct miren_error e;
	miren_error_set(&e, code, "%s", msg);
	if (hint)
		miren_error_hint(&e, "%s", hint);
	return send_error(conn, &e);
}

static const char *query(void *conn, const char *key)
{
	return MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, key);
}

/* A backup streamed as the response body: a producer thread writes the
 * snapshot into a pipe, MHD's callback reads from it. */
struct backup_stream {
	struct disk_backup_job *job;
	struct api_stream *gen; /* or this */
	pthread_t thread;
	int rfd, wfd;
	atomic_int failed;
};

static void api_stream_free(struct api_stream *g)
{
	if (!g)
		return;
	if (g->release)
		g->release(g->user);
	free(g->header);
	free(g->what);
	free(g);
}

static void *backup_produce(void *arg)
{
	struct backup_stream *b = arg;
	struct miren_error err;
	struct snap_stats st;
	miren_error_clear(&err);
	if (b->gen) {
		if (b->gen->run(b->gen->user, snap_sink_fd, &b->wfd, &err) != 0) {
			log_error("%s failed: %s", b->gen->what, err.message);
			atomic_store(&b->failed, 1);
		}
		close(b->wfd);
		return NULL;
	}
	int rc = disk_backup_run(b->job, snap_sink_fd, &b->wfd, &st, &err);
	if (rc) {
		log_error("backup of disk %s failed: %s",
			  json_string_value(json_object_get(disk_backup_header(b->job), "disk")),
			  err.message);
		atomic_store(&b->failed, 1);
	} else {
		log_info("backup of disk %s: %llu files, %llu bytes, %llu compressed",
			 json_string_value(json_object_get(disk_backup_header(b->job), "disk")),
			 (unsigned long long)st.files, (unsigned long long)st.bytes_in,
			 (unsigned long long)st.zst_bytes);
	}
	close(b->wfd);
	disk_backup_free(b->job);
	b->job = NULL;
	return NULL;
}

static ssize_t backup_read(void *cls, uint64_t pos MIREN_UNUSED, char *buf, size_t max)
{
	struct backup_stream *b = cls;
	for (;;) {
		ssize_t n = read(b->rfd, buf, max);
		if (n > 0)
			return n;
		if (n < 0 && errno == EINTR)
			continue;
		if (n == 0 && !atomic_load(&b->failed))
			return MHD_CONTENT_READER_END_OF_STREAM;
		return MHD_CONTENT_READER_END_WITH_ERROR;
	}
}

static void backup_done(void *cls)
{
	struct backup_stream *b = cls;
	close(b->rfd); /* a producer still writing now gets EPIPE and stops */
	pthread_join(b->thread, NULL);
	api_stream_free(b->gen);
	free(b);
}

/* Streams the snapshot of job, or what gen writes (taking either), as
 * the response. */
static enum MHD_Result stream_backup(struct MHD_Connection *conn, struct disk_backup_job *job,
				     struct api_stream *gen)
{
	struct backup_stream *b = xcalloc(1, sizeof(*b));
	int fds[2];
	if (pipe2(fds, O_CLOEXEC) != 0) {
		disk_backup_free(job);
		api_stream_free(gen);
		free(b);
		return send_err(conn, MIREN_EIO, "cannot start the backup stream", NULL);
	}
	fcntl(fds[1], F_SETPIPE_SZ, 1 << 20);
	b->job = job;
	b->gen = gen;
	b->rfd = fds[0];
	b->wfd = fds[1];
	char *hdr = job           ? json_dumps(disk_backup_header(job), JSON_COMPACT)
		    : gen->header ? xstrdup(gen->header)
				  : NULL;
	if (pthread_create(&b->thread, NULL, backup_produce, b) != 0) {
		close(fds[0]);
		close(fds[1]);
		disk_backup_free(job);
		api_stream_free(gen);
		free(b);
		free(hdr);
		return send_err(conn, MIREN_EIO, "cannot start the backup thread", NULL);
	}
	struct MHD_Response *r = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 1 << 20,
								   backup_read, b, backup_done);
	MHD_add_response_header(r, "Content-Type", "application/zstd");
	if (hdr)
		MHD_add_response_header(r, "X-Miren-Backup-Header", hdr);
	free(hdr);
	enum MHD_Result ret = MHD_queue_response(conn, 200, r);
	MHD_destroy_response(r);
	return ret;
}

/* True when the client of conn has closed its end (it gave up waiting). */
static bool client_gone(void *conn)
{
	const union MHD_ConnectionInfo *ci =
		MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
	if (!ci)
		return false;
	struct pollfd pfd = { .fd = ci->connect_fd, .events = POLLIN | POLLRDHUP };
	return poll(&pfd, 1, 0) == 1 && (pfd.revents & (POLLRDHUP | POLLHUP | POLLERR));
}

/* Runs the handler of route with the request's parts and replies; a
 * token that acts on some apps (who) sees only those in the app list. */
static enum MHD_Result dispatch(struct MHD_Connection *conn, const struct api_route *route,
				struct api_req *r, const struct auth_principal *who)
{
	struct miren_error err;
	miren_error_clear(&err);
	json_t *res = NULL;
	int rc = route->handler(r, &res, &err);
	if (rc) {
		json_decref(res);
		return send_error(conn, &err);
	}
	if (r->stream || r->gstream)
		return stream_backup(conn, r->stream, r->gstream);
	if (who && api_route_scope(route) == API_SCOPE_APP_LIST && json_is_array(res)) {
		for (size_t i = json_array_size(res); i-- > 0;)
			if (!auth_app_allowed(who, json_string_value(
							   json_object_get(json_array_get(res, i),
									   "name"))))
				json_array_remove(res, i);
	}
	return send_json(conn, 200, res ? res : json_object());
}

/* The client's address of a TCP connection, numeric, into out[64]. */
static void peer_address(struct MHD_Connection *conn, char out[64])
{
	const union MHD_ConnectionInfo *ci =
		MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	snprintf(out, 64, "?");
	if (ci && ci->client_addr)
		getnameinfo(ci->client_addr,
			    ci->client_addr->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6)
								   : sizeof(struct sockaddr_in),
			    out, 64, NULL, 0, NI_NUMERICHOST);
}

static bool query_bool_of(struct MHD_Connection *conn, const char *key)
{
	const char *v = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, key);
	return v && (!strcmp(v, "1") || !strcmp(v, "true"));
}

static bool peer_trusted(struct MHD_Connection *conn)
{
	const union MHD_ConnectionInfo *ci =
		MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
	if (!ci)
		return false;
	struct ucred cred;
	socklen_t len = sizeof(cred);
	if (getsockopt(ci->connect_fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0)
		return false;
	return cred.uid == 0 || cred.uid == geteuid();
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
				  const char *method, const char *version MIREN_UNUSED,
				  const char *upload_data, size_t *upload_size, void **con_cls)
{
	struct api_server *s = cls;
	struct request *req = *con_cls;
	if (!req) {
		req = xcalloc(1, sizeof(*req));
		req->path = xstrdup(url);
		req->route = api_route_find(method, req->path, req->params);
		req->body_max = req->route ? req->route->body_limit : API_JSON_MAX;
		strbuf_init(&req->body, req->body_max);
		req->spool_fd = -1;
		*con_cls = req;
		if (!s->socket_path) {
			req->tcp = true;
			char peer[64];
			peer_address(conn, peer);
			if (auth_check(s->d,
				       MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
								   MHD_HTTP_HEADER_AUTHORIZATION),
				       peer, &req->who, &req->deny) == 0 &&
			    req->route)
				api_authorize(req->route, req->params,
					      query_bool_of(conn, "unmask"), &req->who, &req->deny);
		} else if (!peer_trusted(conn)) {
			miren_error_set(&req->deny, MIREN_EPERM,
					"this user may not use the miren API");
			miren_error_hint(&req->deny,
					 "run the command as root or as the user running "
					 "'miren server'");
		}
		if (!req->deny.code && req->route && req->route->body == API_BODY_FILE) {
			req->spool_path = data_paths_tmp_unique(s->paths, "upload");
			req->spool_fd = open(req->spool_path,
					     O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
			sha256_init(&req->hash);
		}
		return MHD_YES;
	}
	if (*upload_size) {
		if (req->deny.code || req->too_big) {
			/* Drain; the reply comes once the body is read. */
		} else if (req->spool_path) {
			req->spooled += *upload_size;
			if (req->spooled > req->body_max) {
				req->too_big = 1;
			} else if (req->spool_fd >= 0) {
				sha256_update(&req->hash, upload_data, *upload_size);
				if (io_write_all(req->spool_fd, upload_data, *upload_size)) {
					req->spool_errno = errno;
					close(req->spool_fd);
					req->spool_fd = -1;
				}
			}
		} else if (strbuf_add(&req->body, upload_data, *upload_size)) {
			req->too_big = 1;
		}
		*upload_size = 0;
		return MHD_YES;
	}

	if (req->deny.code)
		return send_error(conn, &req->deny);
	if (req->too_big)
		return send_err(conn, MIREN_ETOOBIG, "request body is too large", NULL);
	if (req->spool_path && req->spool_fd < 0)
		return send_err(conn, MIREN_EIO,
				req->spool_errno == ENOSPC
					? "the server's disk is full: cannot store the upload"
					: "cannot store the upload in the data directory",
				"check free space and permissions of the data directory");

	if (!req->route)
		return send_err(conn, MIREN_ENOTFOUND, "no such API endpoint",
				"the CLI and the server may be of different versions");
	struct api_req r = { .d = s->d, .query = query, .client_gone = client_gone, .conn = conn };
	memcpy(r.params, req->params, sizeof(r.params));
	char hex[65];
	if (req->spool_path) {
		close(req->spool_fd);
		req->spool_fd = -1;
		sha256_final_hex(&req->hash, hex);
		r.upload_path = req->spool_path;
		r.upload_sha256 = hex;
	} else if (req->body.len) {
		r.body = api_parse_body(req->body.buf, req->body.len);
		if (!r.body)
			return send_err(conn, MIREN_EINVAL, "request body is not a JSON object",
					NULL);
	}
	enum MHD_Result ret = dispatch(conn, req->route, &r, req->tcp ? &req->who : NULL);
	json_decref(r.body);
	return ret;
}

/* Request paths and arguments are decoded by api_unescape: no %00 cuts a
 * name short. */
static size_t unescape_uri(void *cls, struct MHD_Connection *conn, char *uri)
{
	(void)cls;
	(void)conn;
	return api_unescape(uri);
}

static void on_completed(void *cls MIREN_UNUSED, struct MHD_Connection *conn MIREN_UNUSED,
			 void **con_cls, enum MHD_RequestTerminationCode toe MIREN_UNUSED)
{
	struct request *req = *con_cls;
	if (!req)
		return;
	if (req->spool_fd >= 0)
		close(req->spool_fd);
	if (req->spool_path) {
		unlink(req->spool_path);
		free(req->spool_path);
		if (req->hash.ctx) {
			char hex[65];
			sha256_final_hex(&req->hash, hex);
		}
	}
	free(req->path);
	strbuf_release(&req->body);
	auth_principal_release(&req->who);
	free(req);
	*con_cls = NULL;
}

enum miren_err api_server_start(struct daemon *d, const char *socket_path, struct api_server **out,
				struct miren_error *err)
{
	*out = NULL;
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	if (strlen(socket_path) >= sizeof(sa.sun_path))
		return miren_error_set(err, MIREN_EINVAL, "socket path '%s' is too long",
				       socket_path);
	strcpy(sa.sun_path, socket_path);

	/* A live server already listening: refuse.  A stale socket: replace. */
	int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (probe >= 0 && connect(probe, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
		close(probe);
		miren_error_set(err, MIREN_EEXISTS, "a miren server is already running on '%s'",
				socket_path);
		miren_error_hint(err, "stop it first, or use another --data-dir");
		return MIREN_EEXISTS;
	}
	if (probe >= 0)
		close(probe);
	unlink(socket_path);

	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	mode_t old = umask(0117);
	int ok = fd >= 0 && bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
	umask(old);
	if (!ok || chmod(socket_path, 0660) != 0 || listen(fd, 64) != 0) {
		int e = errno;
		if (fd >= 0)
			close(fd);
		return miren_error_set(err, MIREN_EIO, "cannot listen on '%s': %s", socket_path,
				       io_strerror(e));
	}
	struct api_server *s = xcalloc(1, sizeof(*s));
	s->d = d;
	s->paths = daemon_paths(d);
	s->fd = fd;
	s->socket_path = xstrdup(socket_path);
	s->mhd = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION |
					  MHD_USE_POLL,
				  0, NULL, NULL, on_request, s, MHD_OPTION_LISTEN_SOCKET, fd,
				  MHD_OPTION_NOTIFY_COMPLETED, on_completed, s,
				  MHD_OPTION_UNESCAPE_CALLBACK, unescape_uri, NULL,
				  MHD_OPTION_CONNECTION_LIMIT, 128, MHD_OPTION_CONNECTION_TIMEOUT,
				  (unsigned)600, MHD_OPTION_END);
	if (!s->mhd) {
		close(fd);
		unlink(socket_path);
		free(s->socket_path);
		free(s);
		return miren_error_set(err, MIREN_EIO, "cannot start the API server on '%s'",
				       socket_path);
	}
	*out = s;
	return 0;
}

/* A listening TCP socket on addr ("HOST:PORT", HOST numeric, an IPv6
   one in brackets) into *fd_out. */
static enum miren_err tcp_listen(const char *addr, int *fd_out, struct miren_error *err)
{
	const char *colon = strrchr(addr, ':');
	char *host = colon ? xstrndup(addr, (size_t)(colon - addr)) : NULL;
	if (host && host[0] == '[' && host[strlen(host) - 1] == ']') {
		memmove(host, host + 1, strlen(host) - 2);
		host[strlen(host) - 2] = '\0';
	}
	struct addrinfo hints = { .ai_family = AF_UNSPEC,
				  .ai_socktype = SOCK_STREAM,
				  .ai_flags = AI_NUMERICHOST | AI_NUMERICSERV | AI_PASSIVE },
			*ai = NULL;
	int fd = -1;
	if (!host || !*host || !colon[1] || getaddrinfo(host, colon + 1, &hints, &ai) != 0) {
		miren_error_set(err, MIREN_EINVAL, "cannot listen on '%s': not ADDRESS:PORT", addr);
		miren_error_hint(err, "give a numeric address and a port, such as 0.0.0.0:8443 or "
				      "[::1]:8443");
		goto out;
	}
	fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int one = 1;
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
	    bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 || listen(fd, 64) != 0) {
		miren_error_set(err, MIREN_EIO, "cannot listen on '%s': %s", addr,
				io_strerror(errno));
		if (fd >= 0)
			close(fd);
		fd = -1;
	}
out:
	if (ai)
		freeaddrinfo(ai);
	free(host);
	*fd_out = fd;
	return fd < 0 ? err->code : 0;
}

enum miren_err api_server_listen_tcp(struct daemon *d, const char *addr,
				     const struct tls_identity *id, struct api_server **out,
				     struct miren_error *err)
{
	*out = NULL;
	int fd = -1;
	enum miren_err rc = tcp_listen(addr, &fd, err);
	if (rc)
		return rc;
	struct api_server *s = xcalloc(1, sizeof(*s));
	s->d = d;
	s->paths = daemon_paths(d);
	s->fd = fd;
	/* TLS 1.2 at least, 1.3 first (GnuTLS priority string). */
	s->mhd = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION |
					  MHD_USE_POLL | MHD_USE_TLS,
				  0, NULL, NULL, on_request, s, MHD_OPTION_LISTEN_SOCKET, fd,
				  MHD_OPTION_HTTPS_MEM_KEY, id->key_pem, MHD_OPTION_HTTPS_MEM_CERT,
				  id->cert_pem, MHD_OPTION_HTTPS_PRIORITIES,
				  "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2",
				  MHD_OPTION_NOTIFY_COMPLETED, on_completed, s,
				  MHD_OPTION_UNESCAPE_CALLBACK, unescape_uri, NULL,
				  MHD_OPTION_CONNECTION_LIMIT, 128,
				  MHD_OPTION_PER_IP_CONNECTION_LIMIT, 32,
				  MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)60, MHD_OPTION_END);
	if (!s->mhd) {
		close(fd);
		free(s);
		return miren_error_set(err, MIREN_EIO, "cannot start the TLS API server on '%s'",
				       addr);
	}
	*out = s;
	return 0;
}

void api_server_stop(struct api_server *s)
{
	if (!s)
		return;
	MHD_stop_daemon(s->mhd);
	close(s->fd);
	if (s->socket_path)
		unlink(s->socket_path);
	free(s->socket_path);
	free(s);
}
