/*
 * The miren-redis provider: `small` (a dedicated redis-server per app) and
 * `shared` (one server, an ACL user per app limited to keys and channels
 * under "<app>:"), built from the mechanics in redis.c and sequenced as
 * recorded steps (see addon.h).
 *
 * Resources and their names, all recorded before they are made:
 *   server row   "s-<id>" (small) or "redis-shared-<8 hex>" (shared)
 *   disk         redis-redis-<app>-s<id>-data (small),
 *                redis-shared-data-<8 hex> (shared)
 *   address      the lowest free one of the pool, recorded on the server row
 *   ACL user     redis_user_for_app(app); on shared, prefix "<app>:"
 * The instance's state holds {"server","user","password","prefix"}; a
 * server's state holds {"engine":"redis","admin_password","version"}.
 *
 * A server is started under the supervisor; before every start (the first,
 * each restart) its prestart hook rewrites the configuration and the
 * admin's line of the ACL file from the server's record and ends a
 * redis-server a crashed daemon left running on the disk, so a server
 * always starts as its record says, whatever a crash or a restore left.
 */
#include "addon/addon.h"
#include "addon/disk_ops.h"
#include "addon/redis/redis.h"
#include "util/fault.h"
#include "util/fs.h"
#include "util/log.h"
#include "util/secret.h"
#include "util/strbuf.h"

#include <arpa/inet.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define ENGINE "redis"
#define DISK_SIZE (1024LL * 1024 * 1024)
#define SHARED_DISK_SIZE (10LL * 1024 * 1024 * 1024)
/* A quarter of the disk: the append-only file and a snapshot of the data
 * set must fit beside each other, with room for a rewrite. */
#define SMALL_MAXMEMORY (256LL * 1024 * 1024)
#define SHARED_MAXMEMORY (1024LL * 1024 * 1024)
#define READY_TIMEOUT_MS 30000

static const struct addon_variant variants[] = {
	{ "small", "Dedicated Redis server (1 GB storage)",
	  "Each app gets its own Redis server with dedicated storage, on its own\n"
	  "address, persisted to disk (append-only file, fsync every second). The\n"
	  "app's user may use every key and database but no administrative\n"
	  "command. Start here if your app might grow." },
	{ "shared", "Multi-app shared Redis server",
	  "Apps share one Redis server. Each app's user may only touch keys and\n"
	  "channels that begin with its prefix (REDIS_PREFIX, \"<app>:\"); commands\n"
	  "that list or flush the whole server (KEYS, SCAN, FLUSHDB, INFO, ...) are\n"
	  "refused. The server does not isolate workloads: a heavy app slows the\n"
	  "others. For small internal tools, staging environments and caches." },
};

static size_t redis_versions(char out[][16], size_t max)
{
	char v[32];
	if (max < 1 || redis_installed_version(v, NULL) != 0)
		return 0;
	/* major.minor: "7.0" of "7.0.15" */
	const char *dot = strchr(v, '.');
	const char *end = dot ? strchr(dot + 1, '.') : NULL;
	snprintf(out[0], 16, "%.*s", end ? (int)(end - v) : (int)strlen(v), v);
	return 1;
}

static const char *jstr(const json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));
	return s ? s : "";
}

static char *disk_dir(struct addon_ctx *ctx, const char *disk)
{
	return xasprintf("%s/disks/%s", ctx->data_dir, disk);
}

static char *sv_id(const char *server_id)
{
	return xasprintf("addon/%s", server_id);
}

static bool is_stopping(const struct addon_ctx *ctx)
{
	return ctx->stopping && atomic_load(ctx->stopping);
}

/* Whether a server row is one of this engine's. */
static bool ours(const struct server_rec *srv)
{
	json_t *s = json_loads(srv->state_json, 0, NULL);
	bool yes = !strcmp(jstr(s, "engine"), ENGINE);
	json_decref(s);
	return yes;
}

/* The version the instance asked for must be the installed one. */
static int version_check(const char *version, struct miren_error *err)
{
	char have[16][16];
	size_t n = redis_versions(have, 16);
	for (size_t i = 0; i < n; i++)
		if (!strcmp(have[i], version))
			return 0;
	/* Not retried: it takes a person to install it. */
	miren_error_set(err, MIREN_ENOTFOUND, "Redis %s is not installed on this host", version);
	miren_error_hint(err, "install the Debian package redis-server");
	return MIREN_ENOTFOUND;
}

/* --- the address pool ----------------------------------------------------- */

static int alloc_address(struct addon_ctx *ctx, char out[INET_ADDRSTRLEN], struct miren_error *err)
{
	char **used;
	size_t n;
	int rc = store_server_addresses(ctx->store, &used, &n, err);
	if (rc)
		return rc;
	rc = MIREN_ECONFLICT; /* not retried: it takes a person to free an address */
	for (uint32_t i = 1; i + 1 < ctx->pool_size && rc; i++) {
		struct in_addr a = { .s_addr = htonl(ctx->pool_base + i) };
		inet_ntop(AF_INET, &a, out, INET_ADDRSTRLEN);
		bool taken = false;
		for (size_t k = 0; k < n && !taken; k++)
			taken = !strcmp(used[k], out);
		if (!taken)
			rc = 0;
	}
	for (size_t k = 0; k < n; k++)
		free(used[k]);
	free(used);
	if (rc) {
		miren_error_set(err, MIREN_ECONFLICT, "the address pool is exhausted (%u addresses, all in use)",
				ctx->pool_size - 2);
		miren_error_hint(err, "destroy unused addons, or restart the server with a larger --addr-pool");
	}
	return rc;
}

/* --- servers ---------------------------------------------------------------- */

/* What the prestart hook needs: everything to write the server's files. */
struct prestart {
	char *disk_dir;
	char *address;
	int port;
	long long maxmemory;
	int databases;
	char *admin_password;
	uid_t uid;
	gid_t gid;
};

static void prestart_free(void *arg)
{
	struct prestart *p = arg;
	if (!p)
		return;
	free(p->disk_dir);
	free(p->address);
	if (p->admin_password)
		explicit_bzero(p->admin_password, strlen(p->admin_password));
	free(p->admin_password);
	free(p);
}

static int prestart_run(void *arg, char *errbuf, size_t errlen)
{
	struct prestart *p = arg;
	int n = redis_stop_orphans(p->disk_dir, 0);
	if (n > 0)
		log_warn("ended %d unsupervised redis-server left by a crash on %s", n, p->disk_dir);
	struct redis_conf conf = { .address = p->address, .port = p->port,
				   .maxmemory = p->maxmemory, .databases = p->databases };
	struct miren_error err = { 0 };
	if (redis_server_init(p->disk_dir, &conf, p->admin_password, p->uid, p->gid, &err) != 0) {
		snprintf(errbuf, errlen, "%s", err.message);
		return -1;
	}
	return 0;
}

static bool is_shared(const struct server_rec *srv)
{
	return !strcmp(srv->kind, "shared");
}

static int start_server(struct addon_ctx *ctx, const struct server_rec *srv, const json_t *sstate,
			bool adopt, struct miren_error *err)
{
	char *dir = disk_dir(ctx, srv->disk);
	char **argv = redis_server_argv(dir);
	char *id = sv_id(srv->id);
	char *logdir = xasprintf("%s/logs/addons", ctx->data_dir);
	char *log = xasprintf("%s/%s.log", logdir, srv->id);
	fs_mkdir_p(logdir, 0750);
	if (ctx->uid != (uid_t)-1 && chown(logdir, ctx->uid, ctx->gid) != 0)
		log_warn("cannot hand %s to the service user: %s", logdir, strerror(errno));
	/* The server's directory must exist for the supervisor to chdir there;
	 * the hook fills it. */
	fs_mkdir_p(dir, 0700);
	struct prestart *p = xcalloc(1, sizeof(*p));
	*p = (struct prestart){ .disk_dir = xstrdup(dir), .address = xstrdup(srv->address),
				.port = srv->port,
				.maxmemory = is_shared(srv) ? SHARED_MAXMEMORY : SMALL_MAXMEMORY,
				.databases = is_shared(srv) ? 1 : 16,
				.admin_password = xstrdup(jstr(sstate, "admin_password")),
				.uid = ctx->uid, .gid = ctx->gid };
	char *env[] = { "LANG=C.UTF-8", "PATH=/usr/bin:/bin", NULL };
	struct sv_spec spec = {
		.id = id,
		.argv = argv,
		.cwd = dir,
		.env = env,
		.log_path = log,
		.uid = ctx->uid,
		.gid = ctx->gid,
		.stop_signal = SIGTERM, /* flushes the append-only file, exits */
		.stop_timeout_ms = 30000,
		.keep_on_daemon_exit = true,
		.adopt = adopt,
		.prestart = prestart_run,
		.prestart_arg = p,
		.prestart_free = prestart_free,
	};
	char ebuf[256];
	int rc = sv_start(ctx->sv, &spec, ebuf, sizeof(ebuf));
	if (rc)
		miren_error_set(err, rc, "cannot start Redis for disk %s: %s", srv->disk, ebuf);
	free(log);
	free(logdir);
	free(id);
	redis_argv_free(argv);
	free(dir);
	return rc;
}

/* Puts the server log's last warning ("#" lines) into err's hint. */
static void add_server_log_hint(struct addon_ctx *ctx, const char *server_id,
				struct miren_error *err)
{
	char *path = xasprintf("%s/logs/addons/%s.log", ctx->data_dir, server_id);
	struct strbuf sb = STRBUF_INIT;
	if (strbuf_read_file(&sb, path) == 0) {
		const char *last = NULL;
		for (const char *p = sb.buf; (p = strstr(p, " # ")); p++)
			last = p;
		if (last)
			miren_error_hint(err, "the server's log says:%.*s", (int)strcspn(last, "\n"),
					 last + 2);
	}
	strbuf_release(&sb);
	free(path);
}

/* Makes the server run (unless already supervised) and answer. */
static int ensure_server(struct addon_ctx *ctx, const char *server_id, struct miren_error *err)
{
	struct server_rec srv;
	int rc = store_server_get(ctx->store, server_id, &srv, err);
	if (rc)
		return rc;
	json_t *sstate = json_loads(srv.state_json, 0, NULL);
	char *id = sv_id(srv.id);
	struct sv_status st;
	bool running = sv_status(ctx->sv, id, &st) == 0;
	free(id);
	bool locked = false;
	if (!running) {
		/* Starting a server is an operation on its disk: never under a
		 * restore or a backup of it.  Busy is worth a retry. */
		if (disk_lock(srv.disk, "the start of its server", DISK_LOCK_WAIT_MS, err) != 0) {
			err->code = rc = MIREN_EUNAVAIL;
			goto out;
		}
		locked = true;
		char *dparent = xasprintf("%s/disks", ctx->data_dir);
		if (fs_mkdir_p(dparent, 0711) != 0) {
			rc = miren_error_set(err, MIREN_ECONFLICT, "cannot create '%s': %s", dparent,
					     strerror(errno));
			miren_error_hint(err, "check that the data directory '%s' is writable",
					 ctx->data_dir);
		}
		free(dparent);
		if (!rc && is_stopping(ctx))
			rc = miren_error_set(err, MIREN_EUNAVAIL, "the daemon stops");
		if (!rc)
			rc = start_server(ctx, &srv, sstate, true, err);
		if (!rc)
			fault_point("redis-server:started");
	}
	if (!rc) {
		rc = redis_wait_ready(srv.address, srv.port, jstr(sstate, "admin_password"),
				      READY_TIMEOUT_MS, ctx->stopping, err);
		if (rc)
			add_server_log_hint(ctx, srv.id, err);
	}
out:
	if (locked)
		disk_unlock(srv.disk);
	json_decref(sstate);
	server_rec_release(&srv);
	return rc;
}

/* Stops the server, removes its disk and forgets both.  Idempotent. */
static int release_server(struct addon_ctx *ctx, const char *server_id, struct miren_error *err)
{
	struct server_rec srv;
	int rc = store_server_get(ctx->store, server_id, &srv, err);
	if (rc == MIREN_ENOTFOUND) {
		miren_error_clear(err);
		return 0;
	}
	if (rc)
		return rc;
	rc = disk_lock(srv.disk, "the removal of its addon", DISK_LOCK_WAIT_MS, err);
	if (rc) {
		server_rec_release(&srv);
		return rc;
	}
	char *id = sv_id(srv.id);
	sv_stop(ctx->sv, id);
	free(id);
	char *dir = disk_dir(ctx, srv.disk);
	redis_stop_orphans(dir, 0);
	if (fs_remove_tree(dir) != 0)
		rc = miren_error_set(err, MIREN_EIO, "cannot remove disk directory '%s': %s", dir,
				     strerror(errno));
	free(dir);
	if (!rc)
		rc = store_disk_delete(ctx->store, srv.disk, err);
	if (!rc)
		rc = store_server_delete(ctx->store, srv.id, err);
	if (!rc)
		log_info("addon server %s removed with its disk %s", srv.id, srv.disk);
	disk_unlock(srv.disk);
	server_rec_release(&srv);
	return rc;
}

/* Records a new server row (address and names first) and its disk. */
static int add_server(struct addon_ctx *ctx, const char *id, const char *kind, const char *disk,
		      const char *version, const char *created_by, struct miren_error *err)
{
	char addr[INET_ADDRSTRLEN];
	int rc = alloc_address(ctx, addr, err);
	if (rc)
		return rc;
	char *pw = secret_password();
	json_t *sstate = json_pack("{s:s, s:s, s:s}", "engine", ENGINE, "admin_password", pw,
				   "version", version);
	char *sjson = json_dumps(sstate, JSON_COMPACT);
	struct server_rec srv = { .id = (char *)id, .kind = (char *)kind, .disk = (char *)disk,
				  .address = addr, .port = REDIS_PORT, .state_json = sjson };
	rc = store_server_add(ctx->store, &srv, err);
	free(sjson);
	json_decref(sstate);
	free(pw);
	if (rc)
		return rc;
	struct disk_rec d = { .name = (char *)disk,
			      .size_bytes = strcmp(kind, "shared") ? DISK_SIZE : SHARED_DISK_SIZE,
			      .created_by = (char *)created_by, .status = "in use" };
	return store_disk_put(ctx->store, &d, err);
}

/* The shared server of this engine, MIREN_ENOTFOUND if none. */
static int find_shared(struct addon_ctx *ctx, struct server_rec *out, struct miren_error *err)
{
	struct server_rec *srvs;
	size_t n;
	int rc = store_server_list(ctx->store, &srvs, &n, err);
	if (rc)
		return rc;
	rc = MIREN_ENOTFOUND;
	for (size_t i = 0; i < n && rc; i++)
		if (is_shared(&srvs[i]) && ours(&srvs[i])) {
			*out = srvs[i];
			memset(&srvs[i], 0, sizeof(srvs[i]));
			rc = 0;
		}
	for (size_t i = 0; i < n; i++)
		server_rec_release(&srvs[i]);
	free(srvs);
	return rc;
}

/* --- provisioning steps ----------------------------------------------------- */

/* User, password and (shared) prefix of the instance (kept if planned). */
static int plan_tenant(struct addon_inst *inst, bool shared, struct miren_error *err)
{
	if (json_object_get(inst->state, "user"))
		return 0;
	char user[64];
	int rc = redis_user_for_app(inst->rec.app, user, err);
	if (rc)
		return rc;
	char *pw = secret_password();
	json_object_set_new(inst->state, "user", json_string(user));
	json_object_set_new(inst->state, "password", json_string(pw));
	if (shared) {
		char *prefix = xasprintf("%s:", inst->rec.app);
		json_object_set_new(inst->state, "prefix", json_string(prefix));
		free(prefix);
	}
	free(pw);
	return 0;
}

static int step_plan_small(struct addon_ctx *ctx, struct addon_inst *inst, struct miren_error *err)
{
	int rc = version_check(inst->rec.version, err);
	if (!rc)
		rc = plan_tenant(inst, false, err);
	if (rc)
		return rc;
	char *server = xasprintf("s-%s", inst->rec.id);
	char *disk = xasprintf("redis-redis-%s-s%s-data", inst->rec.app, inst->rec.id);
	char *by = xasprintf("addon miren-redis (app %s)", inst->rec.app);
	struct server_rec existing;
	rc = store_server_get(ctx->store, server, &existing, err);
	if (rc == MIREN_ENOTFOUND) {
		miren_error_clear(err);
		rc = add_server(ctx, server, "small", disk, inst->rec.version, by, err);
	} else if (!rc) {
		server_rec_release(&existing);
	}
	if (!rc)
		json_object_set_new(inst->state, "server", json_string(server));
	free(by);
	free(disk);
	free(server);
	return rc;
}

static int step_plan_shared(struct addon_ctx *ctx, struct addon_inst *inst,
			    struct miren_error *err)
{
	int rc = version_check(inst->rec.version, err);
	if (!rc)
		rc = plan_tenant(inst, true, err);
	if (rc || json_object_get(inst->state, "server"))
		return rc;
	struct server_rec srv;
	rc = find_shared(ctx, &srv, err);
	if (rc == MIREN_ENOTFOUND) {
		miren_error_clear(err);
		char *hex = secret_hex(4);
		char *id = xasprintf("redis-shared-%s", hex);
		char *disk = xasprintf("redis-shared-data-%s", hex);
		rc = add_server(ctx, id, "shared", disk, inst->rec.version,
				"addon miren-redis (shared)", err);
		if (!rc)
			json_object_set_new(inst->state, "server", json_string(id));
		free(disk);
		free(id);
		free(hex);
		return rc;
	}
	if (!rc) {
		json_object_set_new(inst->state, "server", json_string(srv.id));
		server_rec_release(&srv);
	}
	return rc;
}

static int step_server(struct addon_ctx *ctx, struct addon_inst *inst, struct miren_error *err)
{
	return ensure_server(ctx, jstr(inst->state, "server"), err);
}

/* Runs fn against the instance's server with its admin password. */
static int with_server(struct addon_ctx *ctx, struct addon_inst *inst,
		       int (*fn)(const struct server_rec *srv, const char *admin,
				 struct addon_inst *inst, struct miren_error *err),
		       struct miren_error *err)
{
	struct server_rec srv;
	int rc = store_server_get(ctx->store, jstr(inst->state, "server"), &srv, err);
	if (rc)
		return rc;
	json_t *sstate = json_loads(srv.state_json, 0, NULL);
	rc = fn(&srv, jstr(sstate, "admin_password"), inst, err);
	json_decref(sstate);
	server_rec_release(&srv);
	return rc;
}

static int tenant_create(const struct server_rec *srv, const char *admin, struct addon_inst *inst,
			 struct miren_error *err)
{
	bool shared = is_shared(srv);
	return redis_tenant_create(srv->address, srv->port, admin, jstr(inst->state, "user"),
				   jstr(inst->state, "password"),
				   shared ? REDIS_TENANT_PREFIXED : REDIS_TENANT_OWNER,
				   shared ? jstr(inst->state, "prefix") : NULL, err);
}

static int tenant_drop(const struct server_rec *srv, const char *admin, struct addon_inst *inst,
		       struct miren_error *err)
{
	fault_point("redis-tenant:dropping");
	return redis_tenant_drop(srv->address, srv->port, admin, jstr(inst->state, "user"),
				 is_shared(srv) ? jstr(inst->state, "prefix") : NULL, err);
}

static int step_tenant(struct addon_ctx *ctx, struct addon_inst *inst, struct miren_error *err)
{
	return with_server(ctx, inst, tenant_create, err);
}

/* --- deprovisioning steps --------------------------------------------------- */

static int step_drop_tenant(struct addon_ctx *ctx, struct addon_inst *inst,
			    struct miren_error *err)
{
	if (!json_object_get(inst->state, "server") || !json_object_get(inst->state, "user"))
		return 0;
	/* The last tenant of a server goes with the server (next step). */
	int count = 0;
	int rc = store_addon_count_on_server(ctx->store, jstr(inst->state, "server"), &count, err);
	if (rc || count <= 1)
		return rc;
	rc = ensure_server(ctx, jstr(inst->state, "server"), err);
	if (rc == MIREN_ENOTFOUND) {
		miren_error_clear(err);
		return 0;
	}
	return rc ? rc : with_server(ctx, inst, tenant_drop, err);
}

static int step_release_server(struct addon_ctx *ctx, struct addon_inst *inst,
			       struct miren_error *err)
{
	const char *server = jstr(inst->state, "server");
	if (!*server)
		return 0;
	int count = 0;
	int rc = store_addon_count_on_server(ctx->store, server, &count, err);
	if (rc || count > 1)
		return rc; /* other tenants still use it */
	return release_server(ctx, server, err);
}

static const struct addon_step small_provision[] = {
	{ "plan", step_plan_small },
	{ "server", step_server },
	{ "tenant", step_tenant },
};
static const struct addon_step shared_provision[] = {
	{ "plan", step_plan_shared },
	{ "server", step_server },
	{ "tenant", step_tenant },
};
static const struct addon_step deprovision[] = {
	{ "drop-tenant", step_drop_tenant },
	{ "release-server", step_release_server },
};

static const struct addon_step *provision_steps(const char *variant, size_t *n)
{
	*n = 3;
	return strcmp(variant, "shared") ? small_provision : shared_provision;
}

static const struct addon_step *deprovision_steps(const char *variant, size_t *n)
{
	(void)variant;
	*n = sizeof(deprovision) / sizeof(deprovision[0]);
	return deprovision;
}

/* --- env, resume, describe --------------------------------------------------- */

static void add_var(struct env_rec **v, size_t *n, const char *key, const char *value,
		    bool sensitive)
{
	*v = xrealloc(*v, (*n + 1) * sizeof(**v));
	(*v)[(*n)++] = (struct env_rec){ .key = xstrdup(key), .value = xstrdup(value),
					 .service = xstrdup(""), .source = ENV_SOURCE_ADDON,
					 .sensitive = sensitive, .description = xstrdup("") };
}

static int redis_env(struct addon_ctx *ctx, struct addon_inst *inst, struct env_rec **out,
		     size_t *n, struct miren_error *err)
{
	struct server_rec srv;
	int rc = store_server_get(ctx->store, jstr(inst->state, "server"), &srv, err);
	if (rc)
		return rc;
	/* User names are app names ([a-z0-9-]) or app_default and passwords
	 * letters and digits: nothing in the URL needs escaping. */
	const char *user = jstr(inst->state, "user"), *pw = jstr(inst->state, "password");
	char port[16];
	snprintf(port, sizeof(port), "%d", srv.port);
	char *url = xasprintf("redis://%s:%s@%s:%d/0", user, pw, srv.address, srv.port);
	*out = NULL;
	*n = 0;
	add_var(out, n, "REDIS_URL", url, true);
	add_var(out, n, "REDIS_HOST", srv.address, false);
	add_var(out, n, "REDIS_PORT", port, false);
	add_var(out, n, "REDIS_USERNAME", user, false);
	add_var(out, n, "REDIS_PASSWORD", pw, true);
	if (is_shared(&srv))
		add_var(out, n, "REDIS_PREFIX", jstr(inst->state, "prefix"), false);
	free(url);
	server_rec_release(&srv);
	return 0;
}

/* Restarts (or adopts) every server of this engine the store knows. */
static void redis_resume(struct addon_ctx *ctx)
{
	struct server_rec *srvs;
	size_t n;
	struct miren_error err = { 0 };
	if (store_server_list(ctx->store, &srvs, &n, &err) != 0) {
		log_error("cannot list addon servers: %s", err.message);
		return;
	}
	for (size_t i = 0; i < n; i++) {
		if (!ours(&srvs[i]))
			continue;
		char *dir = disk_dir(ctx, srvs[i].disk);
		char *conf = fs_join(dir, "redis.conf");
		json_t *sstate = json_loads(srvs[i].state_json, 0, NULL);
		/* A server whose files were never written was never started: its
		 * provisioning's server step starts it. */
		if (fs_exists(conf) && start_server(ctx, &srvs[i], sstate, true, &err) != 0)
			log_error("addon server %s: %s", srvs[i].id, err.message);
		json_decref(sstate);
		free(conf);
		free(dir);
	}
	server_recs_free(srvs, n);
}

static json_t *redis_describe(struct addon_ctx *ctx, struct addon_inst *inst)
{
	const char *server = jstr(inst->state, "server");
	struct server_rec srv;
	if (!*server || store_server_get(ctx->store, server, &srv, NULL) != 0)
		return NULL;
	json_t *o = json_pack("{s:s, s:s, s:i, s:s}", "disk", srv.disk, "host", srv.address,
			      "port", srv.port, "user", jstr(inst->state, "user"));
	if (is_shared(&srv))
		json_object_set_new(o, "prefix", json_string(jstr(inst->state, "prefix")));
	char *id = sv_id(srv.id);
	struct sv_status st;
	if (sv_status(ctx->sv, id, &st) == 0) {
		json_object_set_new(o, "server_state", json_string(sv_state_name(st.state)));
		json_object_set_new(o, "server_restarts", json_integer(st.restarts));
	}
	free(id);
	server_rec_release(&srv);
	return o;
}

const struct addon_def addon_engine_redis = {
	.name = "miren-redis",
	.description = "Managed Redis key-value store",
	.variants = variants,
	.n_variants = sizeof(variants) / sizeof(variants[0]),
	.default_variant = "small",
	.versions = redis_versions,
	.provision_steps = provision_steps,
	.deprovision_steps = deprovision_steps,
	.env = redis_env,
	.resume = redis_resume,
	.describe = redis_describe,
};
