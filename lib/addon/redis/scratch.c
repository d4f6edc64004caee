/*
 * Scratch servers of the miren-redis provider (the framework's side is
 * lib/addon/scratch.c): redis-server on a restored disk (its snapshot
 * made the base of the append-only file by restore_prepare) or on an
 * empty one, listening on no port, only on a unix socket (0700) in the
 * scratch area, with an ACL file of its own: "default" off and the
 * platform's user with a fresh password known only to this process.
 * The checker is redis-check-rdb: over the restored snapshot as it came
 * out of the backup, and over a snapshot the server takes of what it
 * holds (a loaded dump, and what it loaded from the disk).
 */
#include "addon/scratch.h"
#include "addon/redis/redis.h"
#include "addon/server.h"
#include "util/fs.h"
#include "util/io.h"
#include "util/secret.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define ADDON "miren-redis"
#define SCRATCH_READY_MS 120000
#define SCRATCH_SAVE_MS 600000

/* Declared in provider.c's list of hooks. */
enum miren_err redis_scratch_start(struct addon_ctx *ctx, const json_t *header, const json_t *opts,
				   const char *dir, struct addon_scratch *out,
				   struct miren_error *err);
enum miren_err redis_scratch_load(struct addon_ctx *ctx, struct addon_scratch *s, int fd,
				  struct miren_error *err);
enum miren_err redis_scratch_dump(struct addon_ctx *ctx, struct addon_scratch *s,
				  const json_t *tenant, int fd, struct miren_error *err);
enum miren_err redis_scratch_check(struct addon_ctx *ctx, struct addon_scratch *s,
				   struct miren_error *err);
void redis_scratch_stop(struct addon_ctx *ctx, struct addon_scratch *s);

struct rss {
	char *dir;
	char *sock;
	char *password;
	bool restored; /* started on a restored disk */
};

static void rss_free(struct rss *r)
{
	if (!r)
		return;
	if (r->password) {
		explicit_bzero(r->password, strlen(r->password));
		free(r->password);
	}
	free(r->sock);
	free(r->dir);
	free(r);
}

enum miren_err redis_scratch_start(struct addon_ctx *ctx, const json_t *header, const json_t *opts,
				   const char *dir, struct addon_scratch *out,
				   struct miren_error *err)
{
	out->engine = NULL;
	out->checker = "redis-check-rdb";
	struct rss *r = xcalloc(1, sizeof(*r));
	r->dir = xstrdup(dir);
	r->sock = fs_join(dir, "redis.sock");
	r->password = secret_password();
	r->restored = header != NULL;
	char **argv = NULL;
	enum miren_err rc = 0;
	char version[32];
	if (opts && json_object_get(opts, "recovery_target_time"))
		rc = miren_error_set(err, MIREN_EINVAL,
				     "point-in-time recovery is not supported by addon '%s'",
				     ADDON);
	if (!rc)
		rc = redis_installed_version(version, err);
	if (!rc && header) {
		char *aof = fs_join(dir, "data/appendonlydir");
		if (!fs_is_dir(aof))
			rc = miren_error_set(err, MIREN_EINVAL, "the backup holds no Redis data");
		free(aof);
	}
	if (!rc)
		rc = redis_scratch_init(dir, r->sock, r->password, ctx->uid, ctx->gid, err);
	if (rc)
		goto out;
	argv = redis_server_argv(dir);
	rc = scratch_spawn(ctx, dir, argv, SIGTERM, err);
	if (rc)
		goto out;
	int64_t deadline = io_mono_ms() + SCRATCH_READY_MS;
	for (;;) {
		rc = redis_wait_ready(r->sock, 0, r->password, 1000, ctx->stopping, err);
		if (!rc || io_mono_ms() >= deadline || addon_stopping(ctx))
			break;
		if (scratch_exited(ctx, dir)) {
			rc = miren_error_set(err, MIREN_EINVAL,
					     "the Redis scratch server does not start");
			break;
		}
	}
	if (rc) {
		char *tail = scratch_log_tail(ctx, dir, 300);
		for (char *p = tail; *p; p++)
			if (*p == '\n' || *p == '\r')
				*p = ' ';
		if (*tail)
			miren_error_detail(err, "%s", tail);
		free(tail);
		scratch_kill(ctx, dir);
	}
out:
	redis_argv_free(argv);
	if (rc)
		rss_free(r);
	else
		out->engine = r;
	return rc;
}

enum miren_err redis_scratch_load(struct addon_ctx *ctx, struct addon_scratch *s, int fd,
				  struct miren_error *err)
{
	(void)ctx;
	struct rss *r = s->engine;
	return redis_tenant_load(r->sock, 0, r->password, NULL, fd, err);
}

enum miren_err redis_scratch_dump(struct addon_ctx *ctx, struct addon_scratch *s,
				  const json_t *tenant, int fd, struct miren_error *err)
{
	(void)ctx;
	struct rss *r = s->engine;
	const char *prefix = tenant ? addon_jstr(tenant, "prefix") : NULL;
	return redis_tenant_dump(r->sock, 0, r->password, prefix && *prefix ? prefix : NULL, fd,
				 err);
}

/* "the data is damaged: ..." from redis_check_snapshot's verdict. */
static enum miren_err damaged(struct miren_error *err)
{
	char said[sizeof err->message];
	snprintf(said, sizeof said, "%s", err->message);
	miren_error_set(err, MIREN_EINVAL, "the data is damaged: %s", said);
	return MIREN_EINVAL;
}

enum miren_err redis_scratch_check(struct addon_ctx *ctx, struct addon_scratch *s,
				   struct miren_error *err)
{
	struct rss *r = s->engine;
	char *rdb = fs_join(r->dir, REDIS_SNAPSHOT_PATH);
	enum miren_err rc = 0;
	/* The snapshot as the backup held it (restore_prepare copied it into
	 * the append-only file's base, leaving this one as it was). */
	if (r->restored && fs_exists(rdb) && redis_check_snapshot(rdb, ctx->uid, ctx->gid, err))
		rc = damaged(err);
	/* Then what the server holds now, saved and checked. */
	if (!rc)
		rc = redis_snapshot(r->sock, 0, r->password, SCRATCH_SAVE_MS, ctx->stopping, err);
	if (!rc && redis_check_snapshot(rdb, ctx->uid, ctx->gid, err))
		rc = damaged(err);
	free(rdb);
	return rc;
}

void redis_scratch_stop(struct addon_ctx *ctx, struct addon_scratch *s)
{
	struct rss *r = s->engine;
	if (!r)
		return;
	scratch_kill(ctx, r->dir);
	redis_disk_server(r->dir, true, 30000);
	unlink(r->sock);
	rss_free(r);
	s->engine = NULL;
}
