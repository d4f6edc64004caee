/* Generic plumbing for addon servers and their disks; see server.h. */
#include "addon/server.h"
#include "addon/disk_ops.h"
#include "disk/volume.h"
#include "util/fs.h"
#include "util/io.h"
#include "util/log.h"
#include "util/paths.h"
#include "util/strbuf.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define DEFAULT_STOP_TIMEOUT_MS 30000

enum miren_err addon_address_alloc(struct addon_ctx *ctx, char out[INET_ADDRSTRLEN],
				   struct miren_error *err)
{
	char **used;
	size_t n;
	enum miren_err rc = store_server_addresses(ctx->store, &used, &n, err);
	if (rc)
		return rc;
	rc = MIREN_ECONFLICT; /* not retried: it takes a person to free an address */
	/* Skip the pool's first and last address (network and broadcast). */
	for (uint32_t i = 1; i + 1 < ctx->pool_size; i++) {
		struct in_addr a = { .s_addr = htonl(ctx->pool_base + i) };
		inet_ntop(AF_INET, &a, out, INET_ADDRSTRLEN);
		bool taken = false;
		for (size_t k = 0; k < n && !taken; k++)
			taken = !strcmp(used[k], out);
		if (!taken) {
			rc = 0;
			break;
		}
	}
	for (size_t k = 0; k < n; k++)
		free(used[k]);
	free(used);
	if (rc) {
		struct in_addr a = { .s_addr = htonl(ctx->pool_base) };
		char base[INET_ADDRSTRLEN];
		inet_ntop(AF_INET, &a, base, sizeof(base));
		int prefix = 32;
		for (uint32_t s = ctx->pool_size; s > 1; s >>= 1)
			prefix--;
		miren_error_set(err, MIREN_ECONFLICT,
				"the address pool %s/%d is exhausted (%u addresses, all in use)",
				base, prefix, ctx->pool_size - 2);
		miren_error_hint(err, "destroy unused addons, or restart the server with a larger "
				      "--addr-pool");
	}
	return rc;
}

char *addon_disk_dir(const struct addon_ctx *ctx, const char *name)
{
	return data_paths_disk(ctx->paths, name);
}

enum miren_err addon_disk_record(struct addon_ctx *ctx, const char *name, long long size_bytes,
				 const char *created_by, struct miren_error *err)
{
	enum miren_err rc = disk_name_check(name, err);
	if (rc)
		return rc;
	/* "in use" when a server row names it (addon_server_add records the
	 * row first), else "unused" (a restore under a new name). */
	struct server_rec srv;
	bool used = addon_server_of_disk(ctx, name, &srv) == 0;
	server_rec_release(&srv);
	/* A disk never shrinks: a size `miren disk resize` gave stays when a
	 * later step names the variant's size again. */
	struct disk_rec cur;
	if (store_disk_get(ctx->store, name, &cur, NULL) == 0) {
		if (cur.size_bytes > size_bytes)
			size_bytes = cur.size_bytes;
		disk_rec_release(&cur);
	}
	struct disk_rec d = { .name = (char *)name,
			      .size_bytes = size_bytes,
			      .created_by = (char *)created_by,
			      .status = used ? "in use" : "unused" };
	return store_disk_put(ctx->store, &d, err);
}

enum miren_err addon_disk_ensure(struct addon_ctx *ctx, const char *name, long long size_bytes,
				 const char *created_by, const char *spare, struct miren_error *err)
{
	/* The size is recorded first: a crash before the volume is made
	 * leaves a record that the step, run again, completes. */
	enum miren_err rc = addon_disk_record(ctx, name, size_bytes, created_by, err);
	if (rc)
		return rc;
	rc = volume_ensure(ctx->volumes, name,
			   size_bytes > 0 ? (uint64_t)size_bytes : ADDON_DISK_DEFAULT_BYTES, spare,
			   err);
	if (rc == MIREN_EIO)
		/* Not retried: mkfs, the loop device or the mount failed. */
		miren_error_hint(err, "see the daemon's log; MIREN_DISKS=dirs makes disks plain "
				      "directories (sizes not enforced)");
	return rc;
}

enum miren_err addon_disk_ready(struct addon_ctx *ctx, const char *name, struct miren_error *err)
{
	struct disk_rec d;
	enum miren_err rc = store_disk_get(ctx->store, name, &d, err);
	if (rc)
		return rc;
	rc = volume_ensure(ctx->volumes, name,
			   d.size_bytes > 0 ? (uint64_t)d.size_bytes : ADDON_DISK_DEFAULT_BYTES,
			   NULL, err);
	disk_rec_release(&d);
	return rc;
}

void addon_disk_spares(struct addon_ctx *ctx)
{
	long long done[16];
	size_t n = 0;
	if (!ctx->volumes)
		return; /* a context without disks (unit tests of the reconciler) */
	for (const struct addon_def *const *d = addon_all(); *d; d++)
		for (size_t i = 0; i < (*d)->n_variants; i++) {
			long long size = (*d)->variants[i].disk_bytes;
			bool seen = size <= 0;
			for (size_t k = 0; k < n && !seen; k++)
				seen = done[k] == size;
			if (seen || n == sizeof(done) / sizeof(done[0]))
				continue;
			done[n++] = size;
			struct miren_error err;
			if (volume_spare_prepare(ctx->volumes, (uint64_t)size, &err) != 0)
				log_warn("cannot prepare a spare disk image of %lld MiB: %s",
					 size >> 20, err.message);
		}
}

enum miren_err addon_disk_spare_fill(struct addon_ctx *ctx, const char *spare, long long size_bytes,
				     enum miren_err (*fill)(const char *dir, void *user,
							    struct miren_error *err),
				     void *user, struct miren_error *err)
{
	if (!ctx->volumes)
		return 0; /* a context without disks (unit tests of the reconciler) */
	return volume_spare_fill(ctx->volumes, spare,
				 size_bytes > 0 ? (uint64_t)size_bytes : ADDON_DISK_DEFAULT_BYTES,
				 fill, user, err);
}

enum miren_err addon_disk_remove(struct addon_ctx *ctx, const char *name, struct miren_error *err)
{
	enum miren_err rc = volume_remove(ctx->volumes, name, err);
	if (!rc)
		rc = store_disk_delete(ctx->store, name, err);
	return rc;
}

char *addon_server_sv_id(const char *server_id)
{
	return xasprintf("addon/%s", server_id);
}

char *addon_server_log_path(const struct addon_ctx *ctx, const char *server_id)
{
	return data_paths_addon_log(ctx->paths, server_id);
}

enum miren_err addon_server_add(struct addon_ctx *ctx, const char *engine, const char *id,
				const char *kind, const char *disk, int port,
				const char *state_json, long long size_bytes,
				const char *created_by, const char *spare, struct miren_error *err)
{
	struct server_rec existing;
	enum miren_err rc = store_server_get(ctx->store, id, &existing, err);
	if (rc == MIREN_ENOTFOUND) {
		miren_error_clear(err);
		char addr[INET_ADDRSTRLEN];
		rc = addon_address_alloc(ctx, addr, err);
		struct server_rec srv = { .id = (char *)id,
					  .engine = (char *)engine,
					  .kind = (char *)kind,
					  .disk = (char *)disk,
					  .address = addr,
					  .port = port,
					  .state_json = (char *)state_json };
		if (!rc)
			rc = store_server_add(ctx->store, &srv, err);
	} else if (!rc) {
		server_rec_release(&existing);
	}
	if (!rc)
		rc = addon_disk_ensure(ctx, disk, size_bytes, created_by, spare, err);
	return rc;
}

enum miren_err addon_server_start(struct addon_ctx *ctx, const struct server_rec *srv,
				  const struct addon_server_spec *spec, struct miren_error *err)
{
	/* Never a server on a disk that is not mounted: it would write into
	 * the mount point, on the data directory's filesystem. */
	int drc = addon_disk_ready(ctx, srv->disk, err);
	if (drc)
		return drc;
	char *id = addon_server_sv_id(srv->id);
	char *dir = addon_disk_dir(ctx, srv->disk);
	char *logdir = data_paths_addon_logs(ctx->paths);
	char *log = addon_server_log_path(ctx, srv->id);
	fs_mkdir_p(logdir, 0750);
	if (ctx->uid != (uid_t)-1 && chown(logdir, ctx->uid, ctx->gid) != 0)
		log_warn("cannot hand %s to the service user: %s", logdir, io_strerror(errno));
	char *env[] = { "LANG=C.UTF-8", "PATH=/usr/bin:/bin", NULL };
	struct sv_spec sv = {
		.id = id,
		.argv = spec->argv,
		.cwd = spec->cwd ? spec->cwd : dir,
		.env = spec->env ? spec->env : env,
		.log_path = log,
		.uid = ctx->uid,
		.gid = ctx->gid,
		.stop_signal = spec->stop_signal ? spec->stop_signal : SIGTERM,
		.stop_timeout_ms = spec->stop_timeout_ms ? spec->stop_timeout_ms
							 : DEFAULT_STOP_TIMEOUT_MS,
		.keep_on_daemon_exit = true,
		.adopt = true,
		.prestart = spec->prestart,
		.prestart_arg = spec->prestart_arg,
		.prestart_free = spec->prestart_free,
	};
	struct miren_error why;
	enum miren_err rc = sv_start(ctx->sv, &sv, &why);
	if (rc) {
		miren_error_set(err, rc, "cannot start %s for disk %s", srv->engine, srv->disk);
		miren_error_detail(err, "%s%s%s", why.message, why.detail[0] ? ": " : "",
				   why.detail);
		miren_error_hint(err, "%s", why.hint);
	}
	free(log);
	free(logdir);
	free(dir);
	free(id);
	return rc;
}

void addon_server_stop(struct addon_ctx *ctx, const char *server_id)
{
	char *id = addon_server_sv_id(server_id);
	sv_stop(ctx->sv, id);
	free(id);
}

bool addon_server_supervised(struct addon_ctx *ctx, const char *server_id, struct sv_status *st)
{
	struct sv_status tmp;
	char *id = addon_server_sv_id(server_id);
	bool known = sv_status(ctx->sv, id, st ? st : &tmp) == 0;
	free(id);
	return known;
}

enum miren_err addon_server_release(struct addon_ctx *ctx, const char *server_id,
				    void (*cleanup)(struct addon_ctx *ctx,
						    const struct server_rec *srv),
				    struct miren_error *err)
{
	struct server_rec srv;
	enum miren_err rc = store_server_get(ctx->store, server_id, &srv, err);
	if (rc == MIREN_ENOTFOUND) {
		miren_error_clear(err);
		return 0;
	}
	if (rc)
		return rc;
	/* The disk lock: never remove a disk under a backup or a restore. */
	rc = disk_lock(srv.disk, "the removal of its addon", DISK_LOCK_WAIT_MS, err);
	if (rc) {
		server_rec_release(&srv);
		return rc;
	}
	addon_server_stop(ctx, srv.id);
	if (cleanup)
		cleanup(ctx, &srv);
	rc = addon_disk_remove(ctx, srv.disk, err);
	if (!rc)
		rc = store_server_delete(ctx->store, srv.id, err);
	if (!rc)
		log_info("addon server %s removed with its disk %s", srv.id, srv.disk);
	disk_unlock(srv.disk);
	server_rec_release(&srv);
	return rc;
}

void addon_resume_servers(struct addon_ctx *ctx, const char *engine,
			  enum miren_err (*start)(struct addon_ctx *ctx,
						  const struct server_rec *srv,
						  struct miren_error *err))
{
	struct server_rec *srvs;
	size_t n;
	struct miren_error err;
	if (store_server_list(ctx->store, &srvs, &n, &err) != 0) {
		log_error("cannot list addon servers: %s", err.message);
		return;
	}
	for (size_t i = 0; i < n; i++) {
		if (!addon_find(srvs[i].engine)) {
			/* Every engine's resume sees it: say it once, from the
			 * first engine of the registry. */
			if (addon_all()[0] && !strcmp(engine, addon_all()[0]->name))
				log_error("addon server %s belongs to the unknown addon '%s': not "
					  "started",
					  srvs[i].id, srvs[i].engine);
			continue;
		}
		if (strcmp(srvs[i].engine, engine))
			continue;
		char *dir = addon_disk_dir(ctx, srvs[i].disk);
		if (fs_is_dir(dir) && start(ctx, &srvs[i], &err) != 0)
			log_error("addon server %s: %s", srvs[i].id, err.message);
		free(dir);
	}
	server_recs_free(srvs, n);
}

int addon_server_of_disk(struct addon_ctx *ctx, const char *disk, struct server_rec *out)
{
	struct server_rec *srvs;
	size_t n;
	memset(out, 0, sizeof(*out));
	if (store_server_list(ctx->store, &srvs, &n, NULL) != 0)
		return MIREN_EDB;
	int rc = MIREN_ENOTFOUND;
	for (size_t i = 0; i < n; i++)
		if (rc && !strcmp(srvs[i].disk, disk)) {
			*out = srvs[i];
			memset(&srvs[i], 0, sizeof(srvs[i]));
			rc = 0;
		}
	server_recs_free(srvs, n);
	return rc;
}

void addon_server_log_hint(struct addon_ctx *ctx, const char *server_id, const char *marker,
			   struct miren_error *err)
{
	char *path = addon_server_log_path(ctx, server_id);
	struct strbuf sb;
	strbuf_init(&sb, 0);
	if (strbuf_read_file(&sb, path) == 0) {
		const char *last = NULL;
		for (const char *p = sb.buf; (p = strstr(p, marker)); p++)
			last = p;
		if (last)
			miren_error_detail(err, "the server's log says: %.*s",
					   (int)strcspn(last, "\n"), last);
	}
	strbuf_release(&sb);
	free(path);
}

const char *addon_jstr(const json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));
	return s ? s : "";
}

char *addon_helper_command(const char *addon)
{
	char exe[4096];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n <= 0)
		return NULL;
	exe[n] = '\0';
	/* A binary replaced while the daemon runs (a rebuild, an upgrade):
	 * the new one is at the same path. */
	static const char deleted[] = " (deleted)";
	size_t l = strlen(exe), dl = sizeof(deleted) - 1;
	if (l > dl && !strcmp(exe + l - dl, deleted))
		exe[l - dl] = '\0';
	for (const char *p = exe; *p; p++)
		if (*p == '\'' || (unsigned char)*p < 0x20 || *p == 0x7f)
			return NULL;
	for (const char *p = addon; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '-'))
			return NULL;
	return xasprintf("'%s' addon-helper '%s'", exe, addon);
}
