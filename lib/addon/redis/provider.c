/*
 * The miren-redis provider: `small` (a dedicated redis-server per app) and
 * `shared` (one server, an ACL user per app limited to keys and channels
 * under "<app>:"), built from the mechanics in redis.c and sequenced as
 * recorded steps (see addon.h).
 *
 * Resources and their names, all recorded before they are made:
 *   server row   "s-<id>" (small) or "redis-shared-<8 hex>" (shared), engine
 *                "miren-redis"
 *   disk         redis-redis-<app>-s<id>-data (small, 1 GiB),
 *                redis-shared-data-<8 hex> (shared, 10 GiB)
 *   address      the lowest free one of the pool, recorded on the server row
 *   ACL user     redis_user_for_app(app); on shared, prefix "<app>:"
 * The instance's state (struct tenant) is {"user","password","prefix"}; a
 * server's state is {"admin_password","version"}.
 *
 * A server is started under the supervisor; before every start (the first,
 * each restart) its prestart hook ends a redis-server a crashed daemon
 * left running on the disk and rewrites the configuration and the admin's
 * line of the ACL file from the server's record, so a server always starts
 * as its record says, whatever a crash or a restore left.
 *
 * Backups: an RDB snapshot the server takes (BGSAVE, waited for), copied
 * with the ACL file; a restore checks the snapshot (redis-check-rdb),
 * makes it the base of a fresh append-only file, starts the server and
 * puts every tenant's user back as its record says.
 */
#include "addon/addon.h"
#include "addon/disk_ops.h"
#include "addon/logins.h"
#include "addon/redis/redis.h"
#include "addon/server.h"
#include "util/fault.h"
#include "util/fs.h"
#include "util/log.h"
#include "util/secret.h"
#include "util/strbuf.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define ADDON "miren-redis"
#define GiB (1024LL * 1024 * 1024)
/* At most a quarter (small, 1 GiB) or a fifth (shared, 10 GiB) of the
 * disk: the append-only file, its rewrite and a snapshot of the data set
 * must fit beside each other. */
#define SMALL_MAXMEMORY (256LL * 1024 * 1024)
#define SHARED_MAXMEMORY (2048LL * 1024 * 1024)
#define READY_TIMEOUT_MS 30000
#define SNAPSHOT_TIMEOUT_MS 600000
#define FAULT(what) ADDON ":" what
/* The method a snapshot's header records for an online backup. */
#define SNAPSHOT_METHOD "redis-rdb-snapshot"

static const struct addon_variant variants[] = {
	{ "small", "Dedicated Redis server (1 GB storage)",
	  "Each app gets its own Redis server with dedicated storage, on its own\n"
	  "address, persisted to disk (append-only file, fsync every second). The\n"
	  "app's user may use every key and database but no administrative\n"
	  "command. Start here if your app might grow.",
	  1 * GiB, false },
	{ "shared", "Multi-app shared Redis server",
	  "Apps share one Redis server. Each app's user may only touch keys and\n"
	  "channels that begin with its prefix (REDIS_PREFIX, \"<app>:\"); commands\n"
	  "that list or flush the whole server (KEYS, SCAN, FLUSHDB, INFO, ...) are\n"
	  "refused. The server does not isolate workloads: a heavy app slows the\n"
	  "others. For small internal tools, staging environments and caches.",
	  10 * GiB, true },
};

static const char *const fault_points[] = {
	FAULT("server:started"),
	REDIS_FAULT_TENANT_SET,
	NULL,
};

static long long disk_bytes(const char *kind)
{
	for (size_t i = 0; i < sizeof(variants) / sizeof(variants[0]); i++)
		if (!strcmp(variants[i].name, kind))
			return variants[i].disk_bytes;
	return 0;
}

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

static bool is_shared(const struct server_rec *srv)
{
	return !strcmp(srv->kind, "shared");
}

/* --- state ------------------------------------------------------------------ */

struct tenant {
	char *user;     /* the first login, named from the app; "" until planned */
	char *password; /* of lg.login */
	char *prefix;   /* "" on small */
	/* Its logins: user and user + "_r__" (alt_user), taking turns at each
	 * rotation (addon/logins.h); the one not in use does not exist. */
	struct addon_logins lg;
};

/* The tenant's second login: no app's user holds "_r" (app names have no
 * '_', and "app_default" does not end so). Caller frees. */
static char *alt_user(const struct tenant *t)
{
	return xasprintf("%s_r__", t->user);
}

static enum miren_err state_parse(const char *json, void **out, struct miren_error *err)
{
	json_t *o = *json ? json_loads(json, 0, NULL) : json_object();
	if (!json_is_object(o)) {
		json_decref(o);
		return miren_error_set(err, MIREN_EINVAL,
				       "the state of a " ADDON " addon is not a JSON object");
	}
	struct tenant *t = xcalloc(1, sizeof(*t));
	t->user = xstrdup(addon_jstr(o, "user"));
	t->password = xstrdup(addon_jstr(o, "password"));
	t->prefix = xstrdup(addon_jstr(o, "prefix"));
	addon_logins_parse(&t->lg, o, t->user);
	json_decref(o);
	*out = t;
	return 0;
}

static char *state_json(const void *state)
{
	const struct tenant *t = state;
	json_t *o = json_object();
	if (*t->user) {
		json_object_set_new(o, "user", json_string(t->user));
		json_object_set_new(o, "password", json_string(t->password));
		if (*t->prefix)
			json_object_set_new(o, "prefix", json_string(t->prefix));
		addon_logins_json(&t->lg, t->user, o);
	}
	char *s = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(o);
	return s;
}

static void state_free(void *state)
{
	struct tenant *t = state;
	if (!t)
		return;
	if (t->password)
		explicit_bzero(t->password, strlen(t->password));
	free(t->user);
	free(t->password);
	free(t->prefix);
	addon_logins_release(&t->lg);
	free(t);
}

/* A server's own state. */
struct server_state {
	char *admin_password;
	char *version;
};

static void server_parse(const struct server_rec *srv, struct server_state *out)
{
	json_t *o = json_loads(srv->state_json ? srv->state_json : "", 0, NULL);
	out->admin_password = xstrdup(addon_jstr(o, "admin_password"));
	out->version = xstrdup(addon_jstr(o, "version"));
	json_decref(o);
}

static void server_state_release(struct server_state *s)
{
	if (s->admin_password)
		explicit_bzero(s->admin_password, strlen(s->admin_password));
	free(s->admin_password);
	free(s->version);
	memset(s, 0, sizeof(*s));
}

/* The record and parsed state of the instance's server; release both
 * with instance_server_release. */
static enum miren_err instance_server(struct addon_ctx *ctx, const struct addon_inst *inst,
				      struct server_rec *srv, struct server_state *ss,
				      struct miren_error *err)
{
	enum miren_err rc = store_server_get(ctx->store, inst->rec.server, srv, err);
	if (!rc)
		server_parse(srv, ss);
	return rc;
}

static void instance_server_release(struct server_rec *srv, struct server_state *ss)
{
	server_state_release(ss);
	server_rec_release(srv);
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

static enum miren_err prestart_run(void *arg, struct miren_error *err)
{
	struct prestart *p = arg;
	int n = redis_stop_orphans(p->disk_dir, 0);
	if (n > 0)
		log_warn("ended %d unsupervised redis-server left by a crash on %s", n,
			 p->disk_dir);
	struct redis_conf conf = { .address = p->address,
				   .port = p->port,
				   .maxmemory = p->maxmemory,
				   .databases = p->databases };
	return redis_server_init(p->disk_dir, &conf, p->admin_password, p->uid, p->gid, err);
}

/* Starts srv under the supervisor (or adopts the running one). */
static enum miren_err start_server(struct addon_ctx *ctx, const struct server_rec *srv,
				   struct miren_error *err)
{
	struct server_state ss;
	server_parse(srv, &ss);
	char *dir = addon_disk_dir(ctx, srv->disk);
	char **argv = redis_server_argv(dir);
	struct prestart *p = xcalloc(1, sizeof(*p));
	*p = (struct prestart){ .disk_dir = xstrdup(dir),
				.address = xstrdup(srv->address),
				.port = srv->port,
				.maxmemory = is_shared(srv) ? SHARED_MAXMEMORY : SMALL_MAXMEMORY,
				.databases = is_shared(srv) ? 1 : 16,
				.admin_password = xstrdup(ss.admin_password),
				.uid = ctx->uid,
				.gid = ctx->gid };
	struct addon_server_spec spec = {
		.argv = argv,
		.stop_signal = SIGTERM, /* flushes the append-only file and exits */
		.prestart = prestart_run,
		.prestart_arg = p,
		.prestart_free = prestart_free,
	};
	enum miren_err rc = addon_server_start(ctx, srv, &spec, err);
	redis_argv_free(argv);
	free(dir);
	server_state_release(&ss);
	return rc;
}

static enum miren_err ready(struct addon_ctx *ctx, const struct server_rec *srv, int timeout_ms,
			    struct miren_error *err)
{
	struct server_state ss;
	server_parse(srv, &ss);
	enum miren_err rc = redis_wait_ready(srv->address, srv->port, ss.admin_password, timeout_ms,
					     ctx->stopping, err);
	server_state_release(&ss);
	return rc;
}

/*
 * Makes the server of server_id run (unless already supervised) and
 * answer.  disk_held: the caller holds the disk's lock (a restore).
 */
static enum miren_err ensure_server(struct addon_ctx *ctx, const char *server_id, bool disk_held,
				    struct miren_error *err)
{
	struct server_rec srv;
	enum miren_err rc = store_server_get(ctx->store, server_id, &srv, err);
	if (rc)
		return rc;
	bool locked = false;
	if (!addon_server_supervised(ctx, srv.id, NULL)) {
		/* Starting a server is an operation on its disk: never under a
		 * restore or a backup of it.  Busy is worth a retry. */
		if (!disk_held &&
		    disk_lock(srv.disk, "the start of its server", DISK_LOCK_WAIT_MS, err) != 0) {
			err->code = rc = MIREN_EUNAVAIL;
			goto out;
		}
		locked = !disk_held;
		if (addon_stopping(ctx))
			rc = miren_error_set(err, MIREN_EUNAVAIL, "the daemon stops");
		if (!rc)
			rc = start_server(ctx, &srv, err);
		if (!rc)
			fault_point(FAULT("server:started"));
	}
	if (!rc) {
		rc = ready(ctx, &srv, READY_TIMEOUT_MS, err);
		if (rc)
			addon_server_log_hint(ctx, srv.id, " # ", err);
	}
out:
	if (locked)
		disk_unlock(srv.disk);
	server_rec_release(&srv);
	return rc;
}

/* Before a disk is removed: a server nobody supervises on it goes too. */
static void server_cleanup(struct addon_ctx *ctx, const struct server_rec *srv)
{
	char *dir = addon_disk_dir(ctx, srv->disk);
	redis_stop_orphans(dir, 0);
	free(dir);
}

static pid_t disk_server(struct addon_ctx *ctx, const char *dir, bool stop)
{
	(void)ctx;
	return redis_disk_server(dir, stop, 30000);
}

static enum miren_err resume_one(struct addon_ctx *ctx, const struct server_rec *srv,
				 struct miren_error *err)
{
	return start_server(ctx, srv, err);
}

static void resume(struct addon_ctx *ctx)
{
	addon_resume_servers(ctx, ADDON, resume_one);
}

/* Records server id (a new row with its disk, unless it exists). */
static enum miren_err add_server(struct addon_ctx *ctx, const char *id, const char *kind,
				 const char *disk, const char *version, const char *created_by,
				 struct miren_error *err)
{
	char *pw = secret_password();
	json_t *sstate = json_pack("{s:s, s:s}", "admin_password", pw, "version", version);
	char *sjson = json_dumps(sstate, JSON_COMPACT);
	enum miren_err rc = addon_server_add(ctx, ADDON, id, kind, disk, REDIS_PORT, sjson,
					     disk_bytes(kind), created_by, NULL, err);
	explicit_bzero(sjson, strlen(sjson));
	free(sjson);
	json_decref(sstate);
	explicit_bzero(pw, strlen(pw));
	free(pw);
	return rc;
}

/* --- provisioning steps ----------------------------------------------------- */

/* User, password and (shared) prefix of the instance (kept if planned). */
static enum miren_err plan_tenant(struct addon_inst *inst, bool shared, struct miren_error *err)
{
	struct tenant *t = inst->state;
	if (*t->user)
		return 0;
	char user[64];
	enum miren_err rc = redis_user_for_app(inst->rec.app, user, err);
	if (rc)
		return rc;
	free(t->user);
	free(t->password);
	free(t->prefix);
	t->user = xstrdup(user);
	t->password = secret_password();
	t->prefix = shared ? xasprintf("%s:", inst->rec.app) : xstrdup("");
	addon_logins_init(&t->lg, user);
	return 0;
}

static enum miren_err step_plan_small(struct addon_ctx *ctx, struct addon_inst *inst,
				      struct miren_error *err)
{
	enum miren_err rc = plan_tenant(inst, false, err);
	if (rc)
		return rc;
	char *server = xasprintf("s-%s", inst->rec.id);
	char *disk = xasprintf("redis-redis-%s-s%s-data", inst->rec.app, inst->rec.id);
	char *by = xasprintf("addon " ADDON " (app %s)", inst->rec.app);
	rc = add_server(ctx, server, "small", disk, inst->rec.version, by, err);
	if (!rc)
		addon_inst_set_server(inst, server);
	free(by);
	free(disk);
	free(server);
	return rc;
}

static enum miren_err step_plan_shared(struct addon_ctx *ctx, struct addon_inst *inst,
				       struct miren_error *err)
{
	enum miren_err rc = plan_tenant(inst, true, err);
	if (rc || *inst->rec.server)
		return rc;
	struct server_rec srv;
	rc = store_server_find_kind(ctx->store, ADDON, "shared", &srv, err);
	if (rc == MIREN_ENOTFOUND) {
		miren_error_clear(err);
		char *hex = secret_hex(4);
		char *id = xasprintf("redis-shared-%s", hex);
		char *disk = xasprintf("redis-shared-data-%s", hex);
		rc = add_server(ctx, id, "shared", disk, inst->rec.version,
				"addon " ADDON " (shared)", err);
		if (!rc)
			addon_inst_set_server(inst, id);
		free(disk);
		free(id);
		free(hex);
		return rc;
	}
	if (!rc) {
		/* Its disk too: a crash may have cut the server's first plan
		 * between the row and the disk. */
		rc = add_server(ctx, srv.id, srv.kind, srv.disk, inst->rec.version,
				"addon " ADDON " (shared)", err);
		if (!rc)
			addon_inst_set_server(inst, srv.id);
		server_rec_release(&srv);
	}
	return rc;
}

static enum miren_err step_server(struct addon_ctx *ctx, struct addon_inst *inst,
				  struct miren_error *err)
{
	return ensure_server(ctx, inst->rec.server, false, err);
}

/* Creates (or resets) login of tenant t on srv with password, with the
 * tenant's rules. */
static enum miren_err tenant_login(const struct server_rec *srv, const struct tenant *t,
				   const char *login, const char *password, struct miren_error *err)
{
	struct server_state ss;
	server_parse(srv, &ss);
	bool shared = is_shared(srv);
	enum miren_err rc = redis_tenant_create(srv->address, srv->port, ss.admin_password, login,
						password,
						shared ? REDIS_TENANT_PREFIXED : REDIS_TENANT_OWNER,
						shared ? t->prefix : NULL, err);
	server_state_release(&ss);
	return rc;
}

/* Creates (or resets) tenant t on srv: its current login. */
static enum miren_err tenant_create(const struct server_rec *srv, const struct tenant *t,
				    struct miren_error *err)
{
	return tenant_login(srv, t, t->lg.login, t->password, err);
}

/* Removes login of tenant t from srv (its keys stay). */
static enum miren_err tenant_unlogin(const struct server_rec *srv, const char *login,
				     struct miren_error *err)
{
	struct server_state ss;
	server_parse(srv, &ss);
	enum miren_err rc = redis_tenant_drop(srv->address, srv->port, ss.admin_password, login,
					      NULL, err);
	server_state_release(&ss);
	return rc;
}

/* Runs fn on the instance's server record. */
static enum miren_err with_server(struct addon_ctx *ctx, struct addon_inst *inst,
				  enum miren_err (*fn)(const struct server_rec *srv,
						       const struct tenant *t,
						       struct miren_error *err),
				  struct miren_error *err)
{
	struct server_rec srv;
	enum miren_err rc = store_server_get(ctx->store, inst->rec.server, &srv, err);
	if (rc)
		return rc;
	rc = fn(&srv, inst->state, err);
	server_rec_release(&srv);
	return rc;
}

static enum miren_err step_tenant(struct addon_ctx *ctx, struct addon_inst *inst,
				  struct miren_error *err)
{
	return with_server(ctx, inst, tenant_create, err);
}

/* --- deprovisioning steps --------------------------------------------------- */

static enum miren_err tenant_drop(const struct server_rec *srv, const struct tenant *t,
				  struct miren_error *err)
{
	struct server_state ss;
	server_parse(srv, &ss);
	enum miren_err rc = redis_tenant_drop(srv->address, srv->port, ss.admin_password, t->user,
					      is_shared(srv) && *t->prefix ? t->prefix : NULL, err);
	server_state_release(&ss);
	return rc;
}

static enum miren_err step_drop_tenant(struct addon_ctx *ctx, struct addon_inst *inst,
				       struct miren_error *err)
{
	const struct tenant *t = inst->state;
	if (!*inst->rec.server || !*t->user)
		return 0;
	/* The last tenant of a server goes with the server (next step);
	 * otherwise the server must run for the drop to happen. */
	int count = 0;
	enum miren_err rc = store_addon_count_on_server(ctx->store, inst->rec.server, &count, err);
	if (rc || count <= 1)
		return rc;
	rc = ensure_server(ctx, inst->rec.server, false, err);
	if (rc == MIREN_ENOTFOUND) {
		miren_error_clear(err);
		return 0;
	}
	return rc ? rc : with_server(ctx, inst, tenant_drop, err);
}

static enum miren_err step_release_server(struct addon_ctx *ctx, struct addon_inst *inst,
					  struct miren_error *err)
{
	if (!*inst->rec.server)
		return 0;
	int count = 0;
	enum miren_err rc = store_addon_count_on_server(ctx->store, inst->rec.server, &count, err);
	if (rc || count > 1)
		return rc; /* other tenants still use it */
	return addon_server_release(ctx, inst->rec.server, server_cleanup, err);
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

/* --- env, describe, connect, info, rotate ---------------------------------------- */

static void add_var(struct env_rec **v, size_t *n, const char *key, const char *value,
		    bool sensitive)
{
	*v = xrealloc(*v, (*n + 1) * sizeof(**v));
	(*v)[(*n)++] = (struct env_rec){ .key = xstrdup(key),
					 .value = xstrdup(value),
					 .service = xstrdup(""),
					 .source = ENV_SOURCE_ADDON,
					 .sensitive = sensitive,
					 .description = xstrdup("") };
}

static enum miren_err tenant_env(struct addon_ctx *ctx, struct addon_inst *inst,
				 struct env_rec **out, size_t *n, struct miren_error *err)
{
	struct server_rec srv;
	enum miren_err rc = store_server_get(ctx->store, inst->rec.server, &srv, err);
	if (rc)
		return rc;
	const struct tenant *t = inst->state;
	/* User names are app names ([a-z0-9-]) or app_default and passwords
	 * letters and digits: nothing in the URL needs escaping. */
	char port[16];
	snprintf(port, sizeof(port), "%d", srv.port);
	char *url = xasprintf("redis://%s:%s@%s:%d/0", t->lg.login, t->password, srv.address,
			      srv.port);
	*out = NULL;
	*n = 0;
	add_var(out, n, "REDIS_URL", url, true);
	add_var(out, n, "REDIS_HOST", srv.address, false);
	add_var(out, n, "REDIS_PORT", port, false);
	add_var(out, n, "REDIS_USERNAME", t->lg.login, false);
	add_var(out, n, "REDIS_PASSWORD", t->password, true);
	if (is_shared(&srv))
		add_var(out, n, "REDIS_PREFIX", t->prefix, false);
	explicit_bzero(url, strlen(url));
	free(url);
	server_rec_release(&srv);
	return 0;
}

static json_t *describe(struct addon_ctx *ctx, struct addon_inst *inst)
{
	struct server_rec srv;
	if (!*inst->rec.server || store_server_get(ctx->store, inst->rec.server, &srv, NULL) != 0)
		return NULL;
	const struct tenant *t = inst->state;
	json_t *o = json_pack("{s:s, s:s, s:i, s:s}", "disk", srv.disk, "host", srv.address, "port",
			      srv.port, "user", t->lg.login);
	if (is_shared(&srv))
		json_object_set_new(o, "prefix", json_string(t->prefix));
	server_rec_release(&srv);
	return o;
}

static char *strv_dup_env(const char *key, const char *value)
{
	return xasprintf("%s=%s", key, value);
}

static enum miren_err connect_cmd(struct addon_ctx *ctx, struct addon_inst *inst,
				  struct addon_connect *out, struct miren_error *err)
{
	struct server_rec srv;
	enum miren_err rc = store_server_get(ctx->store, inst->rec.server, &srv, err);
	if (rc)
		return rc;
	const struct tenant *t = inst->state;
	/* A statement: its words after -e, which makes a failed command the
	 * client's exit status (in a statement read from stdin it is not). */
	char **words = NULL;
	if (out->command && (rc = redis_split_command(out->command, &words, err)) != 0) {
		server_rec_release(&srv);
		return rc;
	}
	out->argv = redis_connect_argv(srv.address, srv.port, t->lg.login);
	out->env = xcalloc(2, sizeof(*out->env));
	out->env[0] = strv_dup_env(REDIS_CONNECT_PASSWORD_ENV, t->password);
	if (words) {
		addon_connect_args(out, (const char *const[]){ "-e", NULL });
		for (char **w = words; *w; w++) {
			addon_connect_args(out, (const char *const[]){ *w, NULL });
			free(*w);
		}
		free(words);
	}
	server_rec_release(&srv);
	return 0;
}

static enum miren_err tenant_info(struct addon_ctx *ctx, struct addon_inst *inst,
				  struct addon_info *out, struct miren_error *err)
{
	struct server_rec srv;
	struct server_state ss;
	enum miren_err rc = instance_server(ctx, inst, &srv, &ss, err);
	if (rc)
		return rc;
	const struct tenant *t = inst->state;
	struct redis_info ri;
	out->version[0] = '\0';
	out->size_bytes = -1;
	out->connections = -1;
	out->max_connections = -1;
	out->uptime_s = -1;
	rc = redis_info(srv.address, srv.port, ss.admin_password, &ri, err);
	if (!rc) {
		snprintf(out->version, sizeof(out->version), "%s", ri.version);
		out->max_connections = ri.maxclients > 0 ? (int)ri.maxclients : -1;
		out->uptime_s = ri.uptime_s;
		rc = redis_tenant_usage(srv.address, srv.port, ss.admin_password, t->lg.login,
					is_shared(&srv) ? t->prefix : NULL, &out->size_bytes,
					&out->connections, err);
	}
	instance_server_release(&srv, &ss);
	return rc;
}

/* Runs the dump or the load of the instance's keys (its prefix on shared,
 * database 0 on small). */
static enum miren_err dump_or_load(struct addon_ctx *ctx, struct addon_inst *inst, int fd,
				   bool load, struct miren_error *err)
{
	struct server_rec srv;
	struct server_state ss;
	enum miren_err rc = instance_server(ctx, inst, &srv, &ss, err);
	if (rc)
		return rc;
	const struct tenant *t = inst->state;
	const char *prefix = is_shared(&srv) ? t->prefix : NULL;
	/* A load names the tenant's prefix ("" for the whole server), so
	 * that another tenant's keys are renamed into it. */
	rc = load ? redis_tenant_load(srv.address, srv.port, ss.admin_password,
				      prefix ? prefix : "", fd, err)
		  : redis_tenant_dump(srv.address, srv.port, ss.admin_password, prefix, fd, err);
	instance_server_release(&srv, &ss);
	return rc;
}

static enum miren_err tenant_dump(struct addon_ctx *ctx, struct addon_inst *inst, int fd,
				  struct miren_error *err)
{
	return dump_or_load(ctx, inst, fd, false, err);
}

static enum miren_err tenant_load(struct addon_ctx *ctx, struct addon_inst *inst, int fd,
				  struct miren_error *err)
{
	return dump_or_load(ctx, inst, fd, true, err);
}

/* Rotation (addon.h, addon/logins.h): user and alt_user take turns,
 * with the same rules; the old one is deleted (its keys stay). */
static enum miren_err rotate_plan(struct addon_ctx *ctx, struct addon_inst *inst,
				  const char *credential, struct miren_error *err)
{
	(void)ctx;
	struct tenant *t = inst->state;
	if (!*t->user)
		return miren_error_set(err, MIREN_ECONFLICT, "the addon has no user yet");
	if (strcmp(credential, "user") != 0) {
		miren_error_set(err, MIREN_EINVAL,
				"addon %s rotates the app's own credentials only, not '%s'", ADDON,
				credential);
		miren_error_hint(err, "give --credential user (the admin user never leaves the "
				      "daemon)");
		return MIREN_EINVAL;
	}
	addon_logins_plan(&t->lg);
	return 0;
}

static enum addon_rotate_phase rotate_phase(const void *state)
{
	return addon_logins_phase(&((const struct tenant *)state)->lg);
}

static enum miren_err rotate_issue(struct addon_ctx *ctx, struct addon_inst *inst,
				   struct miren_error *err)
{
	struct tenant *t = inst->state;
	if (!*t->lg.next_password)
		return 0; /* issued already */
	struct server_rec srv;
	enum miren_err rc = store_server_get(ctx->store, inst->rec.server, &srv, err);
	if (rc)
		return rc;
	char *alt = alt_user(t);
	const char *next = addon_logins_other(&t->lg, t->user, alt);
	rc = tenant_login(&srv, t, next, t->lg.next_password, err);
	if (!rc)
		addon_logins_switch(&t->lg, next, &t->password);
	free(alt);
	server_rec_release(&srv);
	return rc;
}

static enum miren_err rotate_revoke(struct addon_ctx *ctx, struct addon_inst *inst,
				    struct miren_error *err)
{
	struct tenant *t = inst->state;
	if (!*t->lg.retired)
		return 0;
	struct server_rec srv;
	enum miren_err rc = store_server_get(ctx->store, inst->rec.server, &srv, err);
	if (rc)
		return rc;
	rc = tenant_unlogin(&srv, t->lg.retired, err);
	if (!rc)
		addon_logins_revoked(&t->lg);
	server_rec_release(&srv);
	return rc;
}

static int64_t issued_at(const void *state)
{
	return ((const struct tenant *)state)->lg.issued_at;
}

/* --- invariants ------------------------------------------------------------------ */

static void check_server(struct addon_ctx *ctx, const struct server_rec *srv,
			 const struct addon_inst *tenants, size_t n, json_t *violations)
{
	(void)ctx;
	struct server_state ss;
	server_parse(srv, &ss);
	char **users;
	size_t nu;
	struct miren_error err = { 0 };
	if (redis_tenant_users(srv->address, srv->port, ss.admin_password, &users, &nu, &err)) {
		json_array_append_new(violations, json_sprintf("redis server %s cannot be asked "
							       "for its users: %s",
							       srv->id, err.message));
		server_state_release(&ss);
		return;
	}
	/* Each tenant has its recorded login and, unless a rotation is in
	 * motion, no other. */
	for (size_t i = 0; i < n; i++) {
		const struct tenant *t = tenants[i].state;
		if (!*t->user)
			continue;
		char *alt = alt_user(t);
		addon_logins_check(&t->lg, srv->id, tenants[i].rec.app, t->user, alt, users, nu,
				   violations);
		free(alt);
	}
	for (size_t k = 0; k < nu; k++) {
		bool known = false;
		for (size_t i = 0; i < n && !known; i++) {
			const struct tenant *t = tenants[i].state;
			char *alt = alt_user(t);
			known = !strcmp(users[k], t->lg.login) ||
				(addon_logins_phase(&t->lg) != ADDON_ROTATE_NONE &&
				 (!strcmp(users[k], t->user) || !strcmp(users[k], alt)));
			free(alt);
		}
		if (!known)
			json_array_append_new(violations, json_sprintf("redis server %s has user "
								       "%s of no addon",
								       srv->id, users[k]));
	}
	redis_strv_free(users, nu);
	server_state_release(&ss);
}

/* --- backup and restore ---------------------------------------------------------- */

/* Files any copy leaves out: a save or rewrite in progress. */
static bool copy_skip(const char *rel, bool is_dir)
{
	const char *b = strrchr(rel, '/');
	b = b ? b + 1 : rel;
	if (is_dir)
		return !strcmp(rel, "data/appendonlydir.tmp");
	return !strncmp(b, "temp-", 5) || (strlen(b) > 4 && !strcmp(b + strlen(b) - 4, ".tmp"));
}

/* Online, only the snapshot and the users go: the append-only file is
 * what the snapshot replaces. */
static bool skip_online(const char *rel, bool is_dir, void *user)
{
	(void)user;
	if (is_dir)
		return strcmp(rel, "data");
	return strcmp(rel, REDIS_SNAPSHOT_PATH) && strcmp(rel, "users.acl");
}

static enum miren_err backup_begin(struct addon_ctx *ctx, const struct server_rec *srv,
				   struct addon_backup *b, struct miren_error *err)
{
	struct server_state ss;
	server_parse(srv, &ss);
	b->method = SNAPSHOT_METHOD;
	b->skip = skip_online;
	b->header = json_pack("{s:s}", "redis_version", ss.version);
	enum miren_err rc = redis_snapshot(srv->address, srv->port, ss.admin_password,
					   SNAPSHOT_TIMEOUT_MS, ctx->stopping, err);
	if (!rc)
		log_info("disk %s: Redis snapshot taken", srv->disk);
	server_state_release(&ss);
	return rc;
}

static enum miren_err backup_end(struct addon_ctx *ctx, struct addon_backup *b,
				 struct snap_writer *w, struct miren_error *err)
{
	(void)ctx;
	(void)b;
	(void)w;
	(void)err;
	return 0; /* the snapshot is whole as copied */
}

/* --- scratch servers (scratch.c) -------------------------------------------- */

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

/* Which keys are the tenant's: {"user", "prefix"} ("" on small: all). */
static json_t *tenant_facts(struct addon_ctx *ctx, struct addon_inst *inst)
{
	(void)ctx;
	const struct tenant *t = inst->state;
	return json_pack("{s:s, s:s}", "user", t->user, "prefix", t->prefix);
}

static enum miren_err restore_prepare(struct addon_ctx *ctx, const struct server_rec *srv,
				      const json_t *header, const char *staging,
				      struct miren_error *err)
{
	char *rdb = fs_join(staging, REDIS_SNAPSHOT_PATH);
	char *aof = fs_join(staging, "data/appendonlydir");
	bool snapshot = !strcmp(addon_jstr(header, "method"), SNAPSHOT_METHOD);
	enum miren_err rc = 0;
	if (!snapshot && fs_is_dir(aof))
		goto out; /* an offline copy: the append-only file is whole as copied */
	if (!fs_exists(rdb)) {
		if (srv)
			rc = miren_error_set(err, MIREN_EINVAL,
					     "the backup holds no Redis snapshot, and disk '%s' "
					     "belongs to a Redis server; nothing was changed",
					     srv->disk);
		goto out;
	}
	rc = redis_check_snapshot(rdb, ctx->uid, ctx->gid, err);
	if (!rc)
		rc = redis_restore_prepare(staging, ctx->uid, ctx->gid, err);
	if (rc)
		miren_error_hint(err, "nothing was changed");
out:
	free(aof);
	free(rdb);
	return rc;
}

static enum miren_err restore_start(struct addon_ctx *ctx, const struct server_rec *srv,
				    struct miren_error *err)
{
	return ensure_server(ctx, srv->id, true, err);
}

/*
 * Every tenant as its record says (its user, password and rules; a
 * tenant added after the backup gets its user, with no keys), and the
 * users of tenants removed since the backup gone with their keys.
 */
static enum miren_err restore_verify(struct addon_ctx *ctx, const struct server_rec *srv,
				     struct addon_inst *tenants, size_t n, struct miren_error *err)
{
	(void)ctx;
	enum miren_err rc = 0;
	for (size_t i = 0; i < n && !rc; i++) {
		const struct tenant *t = tenants[i].state;
		if (*t->user)
			rc = tenant_create(srv, t, err);
	}
	struct server_state ss;
	server_parse(srv, &ss);
	char **users = NULL;
	size_t nu = 0;
	if (!rc)
		rc = redis_tenant_users(srv->address, srv->port, ss.admin_password, &users, &nu,
					err);
	for (size_t k = 0; k < nu && !rc; k++) {
		bool known = false, other = false;
		for (size_t i = 0; i < n && !known && !other; i++) {
			const struct tenant *t = tenants[i].state;
			char *alt = alt_user(t);
			known = !strcmp(users[k], t->lg.login);
			other = !strcmp(users[k], t->user) || !strcmp(users[k], alt);
			free(alt);
		}
		if (known)
			continue;
		if (other) {
			/* A tenant's login from before a rotation: gone, keys stay. */
			rc = tenant_unlogin(srv, users[k], err);
			continue;
		}
		const char *app = strncmp(users[k], "app_", 4) ? users[k] : users[k] + 4;
		char *prefix = xasprintf("%s:", app);
		rc = redis_tenant_drop(srv->address, srv->port, ss.admin_password, users[k],
				       is_shared(srv) ? prefix : NULL, err);
		free(prefix);
	}
	redis_strv_free(users, nu);
	server_state_release(&ss);
	return rc;
}

const struct addon_def addon_engine_redis = {
	.name = ADDON,
	.engine = "Redis",
	.description = "Managed Redis key-value store",
	.variants = variants,
	.n_variants = sizeof(variants) / sizeof(variants[0]),
	.default_variant = "small",
	.versions = redis_versions,
	.install_hint = "install the Debian package redis-server (scripts/bootstrap does)",
	.provision_steps = provision_steps,
	.deprovision_steps = deprovision_steps,
	.fault_points = fault_points,
	.state_parse = state_parse,
	.state_json = state_json,
	.state_free = state_free,
	.env = tenant_env,
	.resume = resume,
	.ready = ready,
	.disk_server = disk_server,
	.check_server = check_server,
	.copy_skip = copy_skip,
	.backup_begin = backup_begin,
	.backup_end = backup_end,
	.restore_prepare = restore_prepare,
	.restore_start = restore_start,
	.restore_verify = restore_verify,
	.dump = tenant_dump,
	.load = tenant_load,
	.rotate_plan = rotate_plan,
	.rotate_phase = rotate_phase,
	.rotate_issue = rotate_issue,
	.rotate_revoke = rotate_revoke,
	.credentials_issued_at = issued_at,
	.connect = connect_cmd,
	.info = tenant_info,
	.tenant_facts = tenant_facts,
	.scratch_start = redis_scratch_start,
	.scratch_load = redis_scratch_load,
	.scratch_dump = redis_scratch_dump,
	.scratch_check = redis_scratch_check,
	.scratch_stop = redis_scratch_stop,
	.describe = describe,
};
