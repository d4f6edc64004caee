/*
 * The miren-postgresql provider: `small` (a dedicated server per app) and
 * `shared` (one server, a database and role per app), built from the
 * mechanics in pg.h and sequenced as recorded steps (see addon.h); the
 * names of what it makes are in provider.h.
 */
#include "addon/postgresql/provider.h"
#include "addon/server.h"
#include "util/log.h"
#include "util/num.h"
#include "util/secret.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define GiB (1024LL * 1024 * 1024)

static const struct addon_variant variants[] = {
	{ "small", "Dedicated PostgreSQL server (1 GB storage)",
	  "Each app gets its own PostgreSQL server with dedicated storage, on its own\n"
	  "address. Best for production workloads that need isolation and predictable\n"
	  "performance. Start here if your app might grow.",
	  1 * GiB, false },
	{ "shared", "Multi-app shared PostgreSQL server",
	  "Apps share one PostgreSQL server, each with its own database and\n"
	  "credentials; no app can reach another's data. The server does not isolate\n"
	  "workloads: a heavy query in one app can slow the others. For small internal\n"
	  "tools, staging environments and apps you know will stay lightweight.",
	  10 * GiB, true },
};

static long long disk_bytes(const char *variant)
{
	for (size_t i = 0; i < sizeof(variants) / sizeof(variants[0]); i++)
		if (!strcmp(variants[i].name, variant))
			return variants[i].disk_bytes;
	return 0;
}

static const char *const fault_points[] = {
	PG_FAULT("pitr:base-started"), PG_FAULT("pitr:base-stored"),
	PG_FAULT("pitr:base-pruned"),  PG_FAULT("pitr:wal-tidied"),
	PG_FAULT("template:initdb"),   PG_FAULT("template:made"),
	PG_FAULT("clone:copying"),     PG_FAULT("clone:copied"),
	PG_FAULT("spare:copying"),     PG_FAULT("server:started"),
	PG_FAULT("server:rotated"),    PG_FAULT("tenant:role"),
	PG_FAULT("tenant:database"),   NULL,
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

enum miren_err pgp_install_for(const char *version, struct pg_install *out, struct miren_error *err)
{
	struct pg_install inst[8];
	int n = pg_find_installs(inst, 8);
	long long major = 0;
	num_parse(version, 0, INT_MAX, &major); /* not a number: 0, no install's */
	for (int i = 0; i < n; i++)
		if (major == inst[i].major) {
			*out = inst[i];
			return 0;
		}
	/* Not retried: it takes a person to install it. */
	miren_error_set(err, MIREN_ENOTFOUND, "PostgreSQL %s is not installed on this host",
			version);
	miren_error_hint(err, "install the Debian package postgresql-%s", version);
	return MIREN_ENOTFOUND;
}

/* --- state ------------------------------------------------------------------ */

static char *member(const json_t *o, const char *key)
{
	return xstrdup(addon_jstr(o, key));
}

enum miren_err pgp_state_parse(const char *json, void **out, struct miren_error *err)
{
	json_t *o = *json ? json_loads(json, 0, NULL) : json_object();
	if (!json_is_object(o)) {
		json_decref(o);
		return miren_error_set(err, MIREN_EINVAL,
				       "the state of a %s addon is not a JSON "
				       "object",
				       PG_ADDON);
	}
	struct pgp_tenant *t = xcalloc(1, sizeof(*t));
	t->role = member(o, "role");
	t->db = member(o, "db");
	t->password = member(o, "password");
	addon_logins_parse(&t->lg, o, t->role);
	json_decref(o);
	*out = t;
	return 0;
}

char *pgp_state_json(const void *state)
{
	const struct pgp_tenant *t = state;
	json_t *o = json_object();
	if (*t->role) {
		json_object_set_new(o, "role", json_string(t->role));
		json_object_set_new(o, "db", json_string(t->db));
		json_object_set_new(o, "password", json_string(t->password));
		addon_logins_json(&t->lg, t->role, o);
	}
	char *s = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(o);
	return s;
}

void pgp_state_free(void *state)
{
	struct pgp_tenant *t = state;
	if (!t)
		return;
	free(t->role);
	free(t->db);
	addon_logins_release(&t->lg);
	if (t->password)
		explicit_bzero(t->password, strlen(t->password));
	free(t->password);
	free(t);
}

void pgp_server_parse(const struct server_rec *srv, struct pgp_server *out)
{
	json_t *o = json_loads(srv->state_json ? srv->state_json : "", 0, NULL);
	out->su_password = member(o, "su_password");
	out->version = member(o, "version");
	out->rotated = json_is_true(json_object_get(o, "rotated"));
	json_decref(o);
}

void pgp_server_release(struct pgp_server *s)
{
	free(s->su_password);
	free(s->version);
	memset(s, 0, sizeof(*s));
}

/* --- provisioning steps ----------------------------------------------------- */

/* Role, database and password of the instance (kept if already planned). */
static enum miren_err plan_tenant(struct addon_inst *inst, struct miren_error *err)
{
	struct pgp_tenant *t = inst->state;
	if (*t->role)
		return 0;
	char ident[64];
	enum miren_err rc = pg_ident_for_app(inst->rec.app, ident, err);
	if (rc)
		return rc;
	free(t->role);
	free(t->db);
	free(t->password);
	t->role = xstrdup(ident);
	t->db = xstrdup(ident);
	t->password = secret_password();
	addon_logins_init(&t->lg, ident);
	return 0;
}

/* Records server id (a new row with its disk, unless it exists). */
static enum miren_err add_server(struct addon_ctx *ctx, const char *id, const char *kind,
				 const char *disk, const char *version, const char *created_by,
				 struct miren_error *err)
{
	char *su = secret_password();
	json_t *sstate = json_pack("{s:s, s:s}", "su_password", su, "version", version);
	char *sjson = json_dumps(sstate, JSON_COMPACT);
	/* A new disk comes with a spare clone of the template when one is
	 * ready (pgp_idle). */
	long long major = 0;
	num_parse(version, 0, INT_MAX, &major); /* not a number: no spare of it */
	char *spare = pgp_spare_kind((int)major);
	enum miren_err rc = addon_server_add(ctx, PG_ADDON, id, kind, disk, PG_PORT, sjson,
					     disk_bytes(kind), created_by, spare, err);
	free(spare);
	free(sjson);
	json_decref(sstate);
	free(su);
	return rc;
}

static enum miren_err step_plan_small(struct addon_ctx *ctx, struct addon_inst *inst,
				      struct miren_error *err)
{
	enum miren_err rc = plan_tenant(inst, err);
	if (rc)
		return rc;
	char *server = xasprintf("s-%s", inst->rec.id);
	char *disk = xasprintf("pg-pg-%s-s%s-data", inst->rec.app, inst->rec.id);
	char *by = xasprintf("addon %s (app %s)", PG_ADDON, inst->rec.app);
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
	enum miren_err rc = plan_tenant(inst, err);
	if (rc || *inst->rec.server)
		return rc;
	struct server_rec srv;
	rc = store_server_find_kind(ctx->store, PG_ADDON, "shared", &srv, err);
	if (rc == MIREN_ENOTFOUND) {
		miren_error_clear(err);
		char *hex = secret_hex(4);
		char *id = xasprintf("shared-%s", hex);
		char *disk = xasprintf("pg-shared-data-%s", hex);
		rc = add_server(ctx, id, "shared", disk, inst->rec.version,
				"addon " PG_ADDON " (shared)", err);
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
				"addon " PG_ADDON " (shared)", err);
		if (!rc)
			addon_inst_set_server(inst, srv.id);
		server_rec_release(&srv);
	}
	return rc;
}

static enum miren_err step_server(struct addon_ctx *ctx, struct addon_inst *inst,
				  struct miren_error *err)
{
	return pgp_ensure_server(ctx, inst->rec.server, false, err);
}

/* The instance's server: its record, parsed state and disk directory;
 * release with server_done. */
struct server_view {
	struct server_rec srv;
	struct pgp_server ss;
	char *dir;
};

static enum miren_err server_view(struct addon_ctx *ctx, struct addon_inst *inst,
				  struct server_view *v, struct miren_error *err)
{
	memset(v, 0, sizeof(*v));
	enum miren_err rc = store_server_get(ctx->store, inst->rec.server, &v->srv, err);
	if (rc)
		return rc;
	pgp_server_parse(&v->srv, &v->ss);
	v->dir = addon_disk_dir(ctx, v->srv.disk);
	return 0;
}

static void server_done(struct server_view *v)
{
	free(v->dir);
	pgp_server_release(&v->ss);
	server_rec_release(&v->srv);
}

static enum miren_err step_tenant(struct addon_ctx *ctx, struct addon_inst *inst,
				  struct miren_error *err)
{
	const struct pgp_tenant *t = inst->state;
	struct server_view v;
	enum miren_err rc = server_view(ctx, inst, &v, err);
	if (rc)
		return rc;
	rc = pg_tenant_create(v.dir, v.srv.port, v.ss.su_password, t->role, t->db, t->password,
			      err);
	server_done(&v);
	return rc;
}

/* --- deprovisioning steps --------------------------------------------------- */

static enum miren_err step_drop_tenant(struct addon_ctx *ctx, struct addon_inst *inst,
				       struct miren_error *err)
{
	const struct pgp_tenant *t = inst->state;
	if (!*inst->rec.server || !*t->role)
		return 0;
	/* The last tenant of a server goes with the server (next step);
	 * otherwise the server must run for the drop to happen. */
	int count = 0;
	enum miren_err rc = store_addon_count_on_server(ctx->store, inst->rec.server, &count, err);
	if (rc || count <= 1)
		return rc;
	rc = pgp_ensure_server(ctx, inst->rec.server, false, err);
	struct server_view v;
	if (!rc)
		rc = server_view(ctx, inst, &v, err);
	if (rc == MIREN_ENOTFOUND) {
		miren_error_clear(err);
		return 0;
	}
	if (rc)
		return rc;
	rc = pg_tenant_drop(v.dir, v.srv.port, v.ss.su_password, t->role, t->db, err);
	server_done(&v);
	return rc;
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
	return addon_server_release(ctx, inst->rec.server, pgp_server_cleanup, err);
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

static const struct addon_step *deprovision_steps(const char *variant, size_t *n)
{
	(void)variant;
	*n = sizeof(deprovision) / sizeof(deprovision[0]);
	return deprovision;
}

/* --- env, describe ------------------------------------------------------------ */

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

static enum miren_err pg_env(struct addon_ctx *ctx, struct addon_inst *inst, struct env_rec **out,
			     size_t *n, struct miren_error *err)
{
	struct server_rec srv;
	enum miren_err rc = store_server_get(ctx->store, inst->rec.server, &srv, err);
	if (rc)
		return rc;
	const struct pgp_tenant *t = inst->state;
	char port[16];
	snprintf(port, sizeof(port), "%d", srv.port);
	char *url = xasprintf("postgres://%s:%s@%s:%d/%s", t->lg.login, t->password, srv.address,
			      srv.port, t->db);
	*out = NULL;
	*n = 0;
	add_var(out, n, "DATABASE_URL", url, true);
	add_var(out, n, "PGHOST", srv.address, false);
	add_var(out, n, "PGPORT", port, false);
	add_var(out, n, "PGUSER", t->lg.login, false);
	add_var(out, n, "PGPASSWORD", t->password, true);
	add_var(out, n, "PGDATABASE", t->db, false);
	free(url);
	server_rec_release(&srv);
	return 0;
}

/* --- one tenant: rotate, dump, load, connect, info --------------------------- */

/* The instance's server (as server_view) once the instance has a role and
 * a server; MIREN_ECONFLICT before. */
static enum miren_err tenant_server(struct addon_ctx *ctx, struct addon_inst *inst,
				    struct server_view *v, struct miren_error *err)
{
	const struct pgp_tenant *t = inst->state;
	if (!*t->role || !*inst->rec.server) {
		miren_error_set(err, MIREN_ECONFLICT, "addon %s of app '%s' has no database yet",
				PG_ADDON, inst->rec.app);
		miren_error_hint(err, "wait until 'miren addon list -a %s' shows it active",
				 inst->rec.app);
		return MIREN_ECONFLICT;
	}
	return server_view(ctx, inst, v, err);
}

/*
 * Rotation (addon.h): the two logins of the tenant (its role and the
 * second login, pg_alt_login) take turns.  plan: the other login and a new
 * password in the state; issue: the other login works with it beside the
 * current one, and becomes the current one in the state (the old one
 * noted as retired); revoke: the retired one may no longer log in.
 */
static enum miren_err pg_rotate_plan(struct addon_ctx *ctx, struct addon_inst *inst,
				     const char *credential, struct miren_error *err)
{
	struct pgp_tenant *t = inst->state;
	struct server_view v;
	enum miren_err rc = tenant_server(ctx, inst, &v, err);
	if (rc)
		return rc;
	server_done(&v);
	if (strcmp(credential, "user") != 0) {
		miren_error_set(err, MIREN_EINVAL,
				"addon %s rotates the app's own credentials only, not '%s'",
				PG_ADDON, credential);
		miren_error_hint(err, "give --credential user (the superuser never leaves the "
				      "daemon: it logs in over a private unix socket only)");
		return MIREN_EINVAL;
	}
	addon_logins_plan(&t->lg);
	return 0;
}

static enum addon_rotate_phase pg_rotate_phase(const void *state)
{
	return addon_logins_phase(&((const struct pgp_tenant *)state)->lg);
}

static enum miren_err pg_rotate_issue(struct addon_ctx *ctx, struct addon_inst *inst,
				      struct miren_error *err)
{
	struct pgp_tenant *t = inst->state;
	if (!*t->lg.next_password)
		return 0; /* issued already */
	char alt[64];
	struct server_view v;
	enum miren_err rc = pg_alt_login(t->role, alt, err);
	if (!rc)
		rc = tenant_server(ctx, inst, &v, err);
	if (rc)
		return rc;
	const char *next = addon_logins_other(&t->lg, t->role, alt);
	rc = pg_tenant_logins(v.dir, v.srv.port, v.ss.su_password, t->role, next,
			      t->lg.next_password, false, err);
	server_done(&v);
	if (!rc)
		addon_logins_switch(&t->lg, next, &t->password);
	return rc;
}

static enum miren_err pg_rotate_revoke(struct addon_ctx *ctx, struct addon_inst *inst,
				       struct miren_error *err)
{
	struct pgp_tenant *t = inst->state;
	if (!*t->lg.retired)
		return 0;
	struct server_view v;
	enum miren_err rc = tenant_server(ctx, inst, &v, err);
	if (rc)
		return rc;
	rc = pg_tenant_logins(v.dir, v.srv.port, v.ss.su_password, t->role, t->lg.login,
			      t->password, true, err);
	server_done(&v);
	if (!rc)
		addon_logins_revoked(&t->lg);
	return rc;
}

static int64_t pg_issued_at(const void *state)
{
	return ((const struct pgp_tenant *)state)->lg.issued_at;
}

/* Runs the tenant's dump, load or client command: the client tools of the
 * server's version, logged in as the tenant over TCP. */
enum client_op { OP_DUMP, OP_LOAD, OP_CONNECT };

static enum miren_err as_client(struct addon_ctx *ctx, struct addon_inst *inst, enum client_op op,
				int fd, struct addon_connect *conn, struct miren_error *err)
{
	const struct pgp_tenant *t = inst->state;
	struct server_view v;
	enum miren_err rc = tenant_server(ctx, inst, &v, err);
	if (rc)
		return rc;
	struct pg_install pg;
	rc = pgp_install_for(v.ss.version, &pg, err);
	struct pg_client c = { v.srv.address, v.srv.port, t->lg.login, t->password, t->db };
	if (!rc && op == OP_DUMP)
		rc = pg_tenant_dump(&pg, &c, ctx->uid, ctx->gid, fd, err);
	else if (!rc && op == OP_LOAD)
		rc = pg_tenant_load(&pg, &c, ctx->uid, ctx->gid, fd, err);
	else if (!rc)
		rc = pg_client_command(&pg, &c, &conn->argv, &conn->env, err);
	server_done(&v);
	return rc;
}

static enum miren_err pg_dump_hook(struct addon_ctx *ctx, struct addon_inst *inst, int fd,
				   struct miren_error *err)
{
	return as_client(ctx, inst, OP_DUMP, fd, NULL, err);
}

static enum miren_err pg_load_hook(struct addon_ctx *ctx, struct addon_inst *inst, int fd,
				   struct miren_error *err)
{
	return as_client(ctx, inst, OP_LOAD, fd, NULL, err);
}

/* psql as the tenant; the password in PGPASSWORD.  A statement goes to
 * -c, with ON_ERROR_STOP so that its failure is psql's exit status, and
 * without ~/.psqlrc. */
static enum miren_err pg_connect(struct addon_ctx *ctx, struct addon_inst *inst,
				 struct addon_connect *out, struct miren_error *err)
{
	out->argv = out->env = NULL;
	enum miren_err rc = as_client(ctx, inst, OP_CONNECT, -1, out, err);
	if (!rc && out->command)
		addon_connect_args(out,
				   (const char *const[]){ "--no-psqlrc", "--set=ON_ERROR_STOP=1",
							  "--command", out->command, NULL });
	return rc;
}

static enum miren_err pg_info(struct addon_ctx *ctx, struct addon_inst *inst,
			      struct addon_info *out, struct miren_error *err)
{
	const struct pgp_tenant *t = inst->state;
	struct server_view v;
	enum miren_err rc = tenant_server(ctx, inst, &v, err);
	if (rc)
		return rc;
	struct pg_tenant_info pi;
	rc = pg_tenant_info(v.dir, v.srv.port, v.ss.su_password, t->role, t->db, &pi, err);
	if (!rc) {
		snprintf(out->version, sizeof(out->version), "%s", pi.version);
		out->size_bytes = pi.size_bytes;
		out->connections = pi.connections;
		out->max_connections = pi.max_connections;
		out->uptime_s = pi.uptime_s;
	}
	server_done(&v);
	return rc;
}

static json_t *pg_describe(struct addon_ctx *ctx, struct addon_inst *inst)
{
	struct server_rec srv;
	if (!*inst->rec.server || store_server_get(ctx->store, inst->rec.server, &srv, NULL) != 0)
		return NULL;
	const struct pgp_tenant *t = inst->state;
	json_t *o = json_pack("{s:s, s:s, s:i, s:s, s:s}", "disk", srv.disk, "host", srv.address,
			      "port", srv.port, "database", t->db, "user", t->lg.login);
	char *dir = addon_disk_dir(ctx, srv.disk);
	pgp_wal_describe(ctx, &srv, dir, o);
	free(dir);
	server_rec_release(&srv);
	return o;
}

const struct addon_def addon_engine_postgresql = {
	.name = PG_ADDON,
	.engine = "PostgreSQL",
	.description = "Managed PostgreSQL database",
	.variants = variants,
	.n_variants = sizeof(variants) / sizeof(variants[0]),
	.default_variant = "small",
	.versions = pg_versions,
	.install_hint = "install the Debian package postgresql-15 (scripts/bootstrap does)",
	.provision_steps = provision_steps,
	.deprovision_steps = deprovision_steps,
	.fault_points = fault_points,
	.state_parse = pgp_state_parse,
	.state_json = pgp_state_json,
	.state_free = pgp_state_free,
	.env = pg_env,
	.resume = pgp_resume,
	.ready = pgp_ready,
	.disk_server = pgp_disk_server,
	.check_server = pgp_check_server,
	.copy_skip = pgp_copy_skip,
	.backup_begin = pgp_backup_begin,
	.backup_end = pgp_backup_end,
	.backup_free = pgp_backup_free,
	.restore_prepare = pgp_restore_prepare,
	.restore_start = pgp_restore_start,
	.restore_verify = pgp_restore_verify,
	.dump = pg_dump_hook,
	.load = pg_load_hook,
	.rotate_plan = pg_rotate_plan,
	.rotate_phase = pg_rotate_phase,
	.rotate_issue = pg_rotate_issue,
	.rotate_revoke = pg_rotate_revoke,
	.credentials_issued_at = pg_issued_at,
	.connect = pg_connect,
	.info = pg_info,
	.copy_start = pgp_copy_start,
	.writes_pause = pgp_writes_pause,
	.copy_finish = pgp_copy_finish,
	.copy_cancel = pgp_copy_cancel,
	.tenant_facts = pgp_tenant_facts,
	.scratch_start = pgp_scratch_start,
	.scratch_load = pgp_scratch_load,
	.scratch_dump = pgp_scratch_dump,
	.scratch_check = pgp_scratch_check,
	.scratch_stop = pgp_scratch_stop,
	.idle = pgp_idle,
	.interrupt = pgp_interrupt,
	.describe = pg_describe,
	.helper = pgp_helper,
	.tick = pgp_tick,
	.pitr_window = pgp_pitr_window,
	.pitr_source = pgp_pitr_source,
};
