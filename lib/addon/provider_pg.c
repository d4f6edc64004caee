/*
 * The miren-postgresql provider: `small` (a dedicated server per app) and
 * `shared` (one server, a database and role per app), built from the
 * mechanics in pg.c and sequenced as recorded steps (see addon.h).
 *
 * Resources and their names, all recorded before they are made:
 *   server row   "s-<id>" (small) or "shared-<8 hex>" (shared)
 *   disk         pg-pg-<app>-s<id>-data (small), pg-shared-data-<8 hex>
 *   address      the lowest free one of the pool, recorded on the server row
 *   role, db     pg_ident_for_app(app)
 * The instance's state holds {"server","role","db","password"}; a server's
 * state holds {"su_password","version"}.
 */
#include "addon/addon.h"
#include "addon/disk_ops.h"
#include "addon/pg.h"
#include "addon/pg_start.h"
#include "addon/provider_pg.h"
#include "util/compiler.h"
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

#define PG_PORT 5432
#define DISK_SIZE (1024LL * 1024 * 1024)
#define READY_TIMEOUT_MS 30000
/* Spare databases kept ready on the shared server: a burst of new tenants
 * takes them while the preparer thread makes more. */
#define SPARE_DATABASES 4

static const struct addon_variant variants[] = {
	{ "small", "Dedicated PostgreSQL server (1 GB storage)",
	  "Each app gets its own PostgreSQL server with dedicated storage, on its own\n"
	  "address. Best for production workloads that need isolation and predictable\n"
	  "performance. Start here if your app might grow." },
	{ "shared", "Multi-app shared PostgreSQL server",
	  "Apps share one PostgreSQL server, each with its own database and\n"
	  "credentials; no app can reach another's data. The server does not isolate\n"
	  "workloads: a heavy query in one app can slow the others. For small internal\n"
	  "tools, staging environments and apps you know will stay lightweight." },
};

static size_t pg_versions(char out[][16], size_t max)
{
	struct pg_install inst[8];
	int n = pg_find_installs(inst, 8);
	size_t k = 0;
	for (int i = 0; i < n && k < max; i++)
		snprintf(out[k++], 16, "%d", inst[i].major);
	return k;
}

/* The install for the instance's (or server's) version string. */
static int install_for(const char *version, struct pg_install *out, struct miren_error *err)
{
	struct pg_install inst[8];
	int n = pg_find_installs(inst, 8);
	for (int i = 0; i < n; i++)
		if (strtol(version, NULL, 10) == inst[i].major) {
			*out = inst[i];
			return 0;
		}
	/* Not retried: it takes a person to install it. */
	miren_error_set(err, MIREN_ENOTFOUND, "PostgreSQL %s is not installed on this host",
			version);
	miren_error_hint(err, "install the Debian package postgresql-%s", version);
	return MIREN_ENOTFOUND;
}

char *pgp_disk_dir(struct addon_ctx *ctx, const char *disk)
{
	return xasprintf("%s/disks/%s", ctx->data_dir, disk);
}

char *pgp_server_sv_id(const char *server_id)
{
	return xasprintf("addon/%s", server_id);
}

const char *pgp_jstr(const json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));
	return s ? s : "";
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
				"the address pool %s/%d is exhausted (%u addresses, all in use)", base,
				prefix, ctx->pool_size - 2);
		miren_error_hint(err, "destroy unused addons, or restart the server with a larger --addr-pool");
	}
	return rc;
}

/* --- servers ---------------------------------------------------------------- */

/* The template password, made once per daemon data directory. */
static int template_password(struct addon_ctx *ctx, char **out, struct miren_error *err)
{
	char *fresh = secret_password();
	int rc = store_setting_ensure(ctx->store, "pg.template_password", fresh, out, err);
	free(fresh);
	return rc;
}

static int start_server(struct addon_ctx *ctx, const struct server_rec *srv, const json_t *sstate,
			bool adopt, struct miren_error *err)
{
	struct pg_install pg;
	int rc = install_for(pgp_jstr(sstate, "version"), &pg, err);
	if (rc)
		return rc;
	char *dir = pgp_disk_dir(ctx, srv->disk);
	char **argv = pg_server_argv(&pg, dir);
	char *id = pgp_server_sv_id(srv->id);
	char *logdir = xasprintf("%s/logs/addons", ctx->data_dir);
	char *log = xasprintf("%s/%s.log", logdir, srv->id);
	fs_mkdir_p(logdir, 0750);
	if (ctx->uid != (uid_t)-1 && chown(logdir, ctx->uid, ctx->gid) != 0)
		log_warn("cannot hand %s to the service user: %s", logdir, strerror(errno));
	char *env[] = { "LANG=C.UTF-8", "PATH=/usr/bin:/bin", NULL };
	struct sv_spec spec = {
		.id = id,
		.argv = argv,
		.cwd = dir,
		.env = env,
		.log_path = log,
		.uid = ctx->uid,
		.gid = ctx->gid,
		.stop_signal = SIGINT, /* fast shutdown: abort transactions, checkpoint */
		.stop_timeout_ms = 30000,
		.keep_on_daemon_exit = true,
		.adopt = adopt,
		/* every start: the socket directory back, stale lock files gone */
		.prestart = pg_prestart_run,
		.prestart_arg = pg_prestart_new(dir, ctx->uid, ctx->gid),
		.prestart_free = pg_prestart_free,
	};
	char ebuf[256];
	rc = sv_start(ctx->sv, &spec, ebuf, sizeof(ebuf));
	if (rc)
		miren_error_set(err, rc, "cannot start PostgreSQL for disk %s: %s", srv->disk, ebuf);
	free(log);
	free(logdir);
	free(id);
	pg_argv_free(argv);
	free(dir);
	return rc;
}

static bool is_stopping(const struct addon_ctx *ctx)
{
	return ctx->stopping && atomic_load(ctx->stopping);
}

/* Puts the last FATAL line of the server's own log into err's hint: why
 * PostgreSQL did not start is there, not in the connection error. */
static void add_server_log_hint(struct addon_ctx *ctx, const char *server_id,
				struct miren_error *err)
{
	char *path = xasprintf("%s/logs/addons/%s.log", ctx->data_dir, server_id);
	struct strbuf sb;
	strbuf_init(&sb, 0);
	if (strbuf_read_file(&sb, path) == 0) {
		const char *fatal = NULL;
		for (const char *p = sb.buf; (p = strstr(p, "FATAL:")); p++)
			fatal = p;
		if (fatal)
			miren_error_hint(err, "the server's log says: %.*s", (int)strcspn(fatal, "\n"),
					 fatal);
	}
	strbuf_release(&sb);
	free(path);
}

/*
 * Makes the server of srv exist, run and answer with its own superuser
 * password: template, clone, start (unless already supervised), wait,
 * rotate.  Each part is idempotent.
 */
int pgp_ensure_server(struct addon_ctx *ctx, const char *server_id, bool disk_held,
		      struct miren_error *err)
{
	struct server_rec srv;
	int rc = store_server_get(ctx->store, server_id, &srv, err);
	if (rc)
		return rc;
	json_t *sstate = json_loads(srv.state_json, 0, NULL);
	char *tpw = NULL, *tdir = NULL, *dir = pgp_disk_dir(ctx, srv.disk);
	bool locked = false;
	struct pg_install pg;
	rc = install_for(pgp_jstr(sstate, "version"), &pg, err);
	if (!rc)
		rc = template_password(ctx, &tpw, err);
	if (rc)
		goto out;
	/* A server that has run for a while with its own password is ready:
	 * the next tenant only needs its connection. */
	char *sid = pgp_server_sv_id(srv.id);
	struct sv_status st;
	bool running = sv_status(ctx->sv, sid, &st) == 0;
	free(sid);
	if (running && st.state == SV_RUNNING && json_is_true(json_object_get(sstate, "rotated")))
		goto out;
	/* Making or starting the server is an operation on its disk: never
	 * under a restore or a backup of it.  Busy is worth a retry. */
	if (!disk_held &&
	    disk_lock(srv.disk, "the start of its server", DISK_LOCK_WAIT_MS, err) != 0) {
		err->code = rc = MIREN_EUNAVAIL;
		goto out;
	}
	locked = !disk_held;
	tdir = xasprintf("%s/templates/pg%d", ctx->data_dir, pg.major);
	char *tparent = xasprintf("%s/templates", ctx->data_dir);
	char *dparent = xasprintf("%s/disks", ctx->data_dir);
	if (fs_mkdir_p(tparent, 0711) != 0 || fs_mkdir_p(dparent, 0711) != 0) {
		/* Not retried: it takes a person to repair the data directory. */
		rc = miren_error_set(err, MIREN_ECONFLICT, "cannot create '%s': %s", dparent,
				     strerror(errno));
		miren_error_hint(err, "check that the data directory '%s' is writable", ctx->data_dir);
	}
	free(tparent);
	free(dparent);
	if (!rc && is_stopping(ctx))
		rc = miren_error_set(err, MIREN_EUNAVAIL, "the daemon stops");
	if (!rc)
		rc = pg_template_ensure(&pg, tdir, tpw, ctx->uid, ctx->gid, err);
	if (!rc)
		rc = pg_clone(tdir, dir, srv.address, srv.port, ctx->uid, ctx->gid, err);
	if (rc)
		goto out;
	if (!running)
		rc = start_server(ctx, &srv, sstate, true, err);
	if (!rc)
		fault_point("server:started");
	const char *su = pgp_jstr(sstate, "su_password");
	if (!rc) {
		/* A fresh clone answers to the template's password, a rotated one
		 * to its own: wait for either (a rejection ends a wait at once). */
		rc = pg_wait_ready_or_stop(dir, srv.port, su, READY_TIMEOUT_MS, ctx->stopping,
					   err);
		if (rc == MIREN_EPERM)
			rc = pg_wait_ready_or_stop(dir, srv.port, tpw, 2000, ctx->stopping, err);
		if (rc)
			add_server_log_hint(ctx, srv.id, err);
	}
	/* Rotated once, the password stays: later tenants skip the step. */
	if (!rc && !json_is_true(json_object_get(sstate, "rotated"))) {
		rc = pg_rotate_superuser(dir, srv.port, tpw, su, err);
		if (!rc)
			fault_point("server:rotated");
		if (!rc) {
			json_object_set_new(sstate, "rotated", json_true());
			char *sj = json_dumps(sstate, JSON_COMPACT);
			rc = store_server_update_state(ctx->store, srv.id, sj, err);
			free(sj);
		}
	}
out:
	if (locked)
		disk_unlock(srv.disk);
	free(tpw);
	free(tdir);
	free(dir);
	json_decref(sstate);
	server_rec_release(&srv);
	return rc;
}

/* Stops the server, removes its disk and forgets both. Idempotent. */
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
	/* The disk lock: never remove a disk under a backup or a restore. */
	rc = disk_lock(srv.disk, "the removal of its addon", DISK_LOCK_WAIT_MS, err);
	if (rc) {
		server_rec_release(&srv);
		return rc;
	}
	char *id = pgp_server_sv_id(srv.id);
	sv_stop(ctx->sv, id);
	free(id);
	char *dir = pgp_disk_dir(ctx, srv.disk);
	char *sock = pg_socket_dir(dir);
	fs_remove_tree(sock);
	free(sock);
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
	char *su = secret_password();
	json_t *sstate = json_pack("{s:s, s:s}", "su_password", su, "version", version);
	char *sjson = json_dumps(sstate, JSON_COMPACT);
	struct server_rec srv = { .id = (char *)id, .kind = (char *)kind, .disk = (char *)disk,
				  .address = addr, .port = PG_PORT, .state_json = sjson };
	rc = store_server_add(ctx->store, &srv, err);
	free(sjson);
	json_decref(sstate);
	free(su);
	if (rc)
		return rc;
	struct disk_rec d = { .name = (char *)disk, .size_bytes = DISK_SIZE,
			      .created_by = (char *)created_by, .status = "in use" };
	return store_disk_put(ctx->store, &d, err);
}

/* --- provisioning steps ----------------------------------------------------- */

/* Role, database and password of the instance (kept if already planned). */
static int plan_tenant(struct addon_inst *inst, struct miren_error *err)
{
	if (json_object_get(inst->state, "role"))
		return 0;
	char ident[64];
	int rc = pg_ident_for_app(inst->rec.app, ident, err);
	if (rc)
		return rc;
	char *pw = secret_password();
	json_object_set_new(inst->state, "role", json_string(ident));
	json_object_set_new(inst->state, "db", json_string(ident));
	json_object_set_new(inst->state, "password", json_string(pw));
	free(pw);
	return 0;
}

static int step_plan_small(struct addon_ctx *ctx, struct addon_inst *inst, struct miren_error *err)
{
	int rc = plan_tenant(inst, err);
	if (rc)
		return rc;
	char *server = xasprintf("s-%s", inst->rec.id);
	char *disk = xasprintf("pg-pg-%s-s%s-data", inst->rec.app, inst->rec.id);
	char *by = xasprintf("addon miren-postgresql (app %s)", inst->rec.app);
	struct server_rec existing;
	rc = store_server_get(ctx->store, server, &existing, err);
	if (rc == MIREN_ENOTFOUND)
		rc = add_server(ctx, server, "small", disk, inst->rec.version, by, err);
	else if (!rc)
		server_rec_release(&existing);
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
	int rc = plan_tenant(inst, err);
	if (rc || json_object_get(inst->state, "server"))
		return rc;
	struct server_rec srv;
	rc = store_server_find_kind(ctx->store, "shared", &srv, err);
	if (rc == MIREN_ENOTFOUND) {
		miren_error_clear(err);
		char *hex = secret_hex(4);
		char *id = xasprintf("shared-%s", hex);
		char *disk = xasprintf("pg-shared-data-%s", hex);
		rc = add_server(ctx, id, "shared", disk, inst->rec.version,
				"addon miren-postgresql (shared)", err);
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
	return pgp_ensure_server(ctx, pgp_jstr(inst->state, "server"), false, err);
}

/* Runs fn against the instance's server with its superuser password. */
static int with_server(struct addon_ctx *ctx, struct addon_inst *inst, bool tolerate_missing,
		       int (*fn)(const char *dir, int port, const char *su, struct addon_inst *inst,
				 struct miren_error *err),
		       struct miren_error *err)
{
	struct server_rec srv;
	int rc = store_server_get(ctx->store, pgp_jstr(inst->state, "server"), &srv, err);
	if (rc == MIREN_ENOTFOUND && tolerate_missing) {
		miren_error_clear(err);
		return 0;
	}
	if (rc)
		return rc;
	json_t *sstate = json_loads(srv.state_json, 0, NULL);
	char *dir = pgp_disk_dir(ctx, srv.disk);
	rc = fn(dir, srv.port, pgp_jstr(sstate, "su_password"), inst, err);
	free(dir);
	json_decref(sstate);
	server_rec_release(&srv);
	return rc;
}

static int tenant_create(const char *dir, int port, const char *su, struct addon_inst *inst,
			 struct miren_error *err)
{
	return pg_tenant_create(dir, port, su, pgp_jstr(inst->state, "role"), pgp_jstr(inst->state, "db"),
				pgp_jstr(inst->state, "password"), err);
}

static int tenant_drop(const char *dir, int port, const char *su, struct addon_inst *inst,
		       struct miren_error *err)
{
	return pg_tenant_drop(dir, port, su, pgp_jstr(inst->state, "role"), pgp_jstr(inst->state, "db"), err);
}

static int step_tenant(struct addon_ctx *ctx, struct addon_inst *inst, struct miren_error *err)
{
	return with_server(ctx, inst, false, tenant_create, err);
}

/* --- deprovisioning steps --------------------------------------------------- */

static int step_drop_tenant(struct addon_ctx *ctx, struct addon_inst *inst,
			    struct miren_error *err)
{
	if (!json_object_get(inst->state, "server") || !json_object_get(inst->state, "role"))
		return 0;
	/* The last tenant of a server goes with the server (next step);
	 * otherwise the server must run for the drop to happen. */
	int count = 0;
	int rc = store_addon_count_on_server(ctx->store, pgp_jstr(inst->state, "server"), &count, err);
	if (rc || count <= 1)
		return rc;
	rc = pgp_ensure_server(ctx, pgp_jstr(inst->state, "server"), false, err);
	if (rc == MIREN_ENOTFOUND) {
		miren_error_clear(err);
		return 0;
	}
	return rc ? rc : with_server(ctx, inst, true, tenant_drop, err);
}

static int step_release_server(struct addon_ctx *ctx, struct addon_inst *inst,
			       struct miren_error *err)
{
	const char *server = pgp_jstr(inst->state, "server");
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
	bool shared = !strcmp(variant, "shared");
	*n = 3;
	return shared ? shared_provision : small_provision;
}

static const struct addon_step *deprovision_steps(const char *variant MIREN_UNUSED, size_t *n)
{
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

static int pg_env(struct addon_ctx *ctx, struct addon_inst *inst, struct env_rec **out, size_t *n,
		  struct miren_error *err)
{
	struct server_rec srv;
	int rc = store_server_get(ctx->store, pgp_jstr(inst->state, "server"), &srv, err);
	if (rc)
		return rc;
	const char *role = pgp_jstr(inst->state, "role"), *db = pgp_jstr(inst->state, "db"),
		   *pw = pgp_jstr(inst->state, "password");
	char port[16];
	snprintf(port, sizeof(port), "%d", srv.port);
	char *url = xasprintf("postgres://%s:%s@%s:%d/%s", role, pw, srv.address, srv.port, db);
	*out = NULL;
	*n = 0;
	add_var(out, n, "DATABASE_URL", url, true);
	add_var(out, n, "PGHOST", srv.address, false);
	add_var(out, n, "PGPORT", port, false);
	add_var(out, n, "PGUSER", role, false);
	add_var(out, n, "PGPASSWORD", pw, true);
	add_var(out, n, "PGDATABASE", db, false);
	free(url);
	server_rec_release(&srv);
	return 0;
}

/*
 * A daemon killed between starting a postmaster and recording its pid
 * leaves that postmaster running unsupervised, holding the data directory:
 * the supervised one cannot start beside it.  Stops such an orphan (the one
 * postmaster.pid names, running on this disk, not the supervisor's).
 */
static void stop_orphan(struct addon_ctx *ctx, const struct server_rec *srv)
{
	char *dir = pgp_disk_dir(ctx, srv->disk);
	char *pidfile = xasprintf("%s/pgdata/postmaster.pid", dir);
	char *pgdata = xasprintf("%s/pgdata", dir);
	struct strbuf sb = STRBUF_INIT;
	pid_t pid = strbuf_read_file(&sb, pidfile) == 0 ? (pid_t)strtol(sb.buf, NULL, 10) : 0;
	strbuf_release(&sb);
	char *id = pgp_server_sv_id(srv->id);
	struct sv_status st = { 0 };
	sv_status(ctx->sv, id, &st);
	if (pid > 1 && pid != st.pid && pg_process_runs(pid)) {
		if (pg_is_postmaster_of(pid, pgdata)) {
			log_warn("addon server %s: stopping an unsupervised postmaster (pid %d) left "
				 "by a crash", srv->id, (int)pid);
			kill(pid, SIGQUIT);
			for (int i = 0; i < 100 && pg_process_runs(pid); i++)
				usleep(50 * 1000);
			if (pg_process_runs(pid))
				kill(pid, SIGKILL);
			sv_restart(ctx->sv, id); /* start ours now, not after the backoff */
		}
	}
	free(id);
	free(pgdata);
	free(pidfile);
	free(dir);
}

static void pg_resume(struct addon_ctx *ctx)
{
	struct server_rec *srvs;
	size_t n;
	struct miren_error err;
	if (store_server_list(ctx->store, &srvs, &n, &err) != 0) {
		log_error("cannot list addon servers: %s", err.message);
		return;
	}
	for (size_t i = 0; i < n; i++) {
		char *dir = pgp_disk_dir(ctx, srvs[i].disk);
		char *pgdata = fs_join(dir, "pgdata");
		json_t *sstate = json_loads(srvs[i].state_json, 0, NULL);
		if (fs_is_dir(pgdata) && start_server(ctx, &srvs[i], sstate, true, &err) != 0)
			log_error("addon server %s: %s", srvs[i].id, err.message);
		else if (fs_is_dir(pgdata))
			stop_orphan(ctx, &srvs[i]);
		json_decref(sstate);
		free(pgdata);
		free(dir);
	}
	server_recs_free(srvs, n);
}

/*
 * Between provisionings: a spare clone of each template (the next small
 * server starts from a rename), and a spare database on each shared server
 * (the next tenant is a rename too).
 */
static void pg_idle(struct addon_ctx *ctx)
{
	struct miren_error err;
	struct server_rec *srvs;
	size_t ns;
	/* The spare database first: it takes a fraction of a clone's time. */
	if (store_server_list(ctx->store, &srvs, &ns, &err) == 0) {
		for (size_t i = 0; i < ns; i++) {
			char *id = pgp_server_sv_id(srvs[i].id);
			struct sv_status st;
			bool running = sv_status(ctx->sv, id, &st) == 0 &&
				       (st.state == SV_RUNNING || st.state == SV_STARTING);
			free(id);
			if (strcmp(srvs[i].kind, "shared") || !running)
				continue;
			json_t *sstate = json_loads(srvs[i].state_json, 0, NULL);
			char *dir = pgp_disk_dir(ctx, srvs[i].disk);
			if (pg_spare_db_ensure(dir, srvs[i].port, pgp_jstr(sstate, "su_password"),
					       SPARE_DATABASES, &err))
				log_warn("shared server %s: cannot prepare a spare database: %s",
					 srvs[i].id, err.message);
			free(dir);
			json_decref(sstate);
		}
		server_recs_free(srvs, ns);
	}
	struct pg_install inst[8];
	int n = pg_find_installs(inst, 8);
	for (int i = 0; i < n; i++) {
		char *tdir = xasprintf("%s/templates/pg%d", ctx->data_dir, inst[i].major);
		if (fs_is_dir(tdir) && pg_spare_prepare(tdir, ctx->uid, ctx->gid, &err) != 0)
			log_warn("cannot prepare a spare PostgreSQL %d cluster: %s", inst[i].major,
				 err.message);
		free(tdir);
	}
}

/* The stop: ends an initdb a step waits for (see addon_def.interrupt). */
static void pg_interrupt(struct addon_ctx *ctx)
{
	struct pg_install inst[8];
	int n = pg_find_installs(inst, 8);
	for (int i = 0; i < n; i++) {
		char *tmp = xasprintf("%s/templates/pg%d.tmp", ctx->data_dir, inst[i].major);
		if (pg_stop_workers(tmp) > 0)
			log_info("stopping: ended the initdb of %s", tmp);
		free(tmp);
	}
}

static json_t *pg_describe(struct addon_ctx *ctx, struct addon_inst *inst)
{
	const char *server = pgp_jstr(inst->state, "server");
	struct server_rec srv;
	if (!*server || store_server_get(ctx->store, server, &srv, NULL) != 0)
		return NULL;
	json_t *o = json_pack("{s:s, s:s, s:i, s:s, s:s}", "disk", srv.disk, "host", srv.address,
			      "port", srv.port, "database", pgp_jstr(inst->state, "db"), "user",
			      pgp_jstr(inst->state, "role"));
	char *id = pgp_server_sv_id(srv.id);
	struct sv_status st;
	if (sv_status(ctx->sv, id, &st) == 0) {
		json_object_set_new(o, "server_state", json_string(sv_state_name(st.state)));
		json_object_set_new(o, "server_restarts", json_integer(st.restarts));
	}
	free(id);
	server_rec_release(&srv);
	return o;
}

const struct addon_def addon_postgresql = {
	.name = "miren-postgresql",
	.description = "Managed PostgreSQL database",
	.variants = variants,
	.n_variants = sizeof(variants) / sizeof(variants[0]),
	.default_variant = "small",
	.versions = pg_versions,
	.provision_steps = provision_steps,
	.deprovision_steps = deprovision_steps,
	.env = pg_env,
	.resume = pg_resume,
	.idle = pg_idle,
	.interrupt = pg_interrupt,
	.describe = pg_describe,
};
