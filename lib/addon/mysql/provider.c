/*
 * The miren-mysql provider (MariaDB 10.11 from Debian, MySQL-compatible):
 * `small` (a dedicated mariadbd per app) and `shared` (one server, a
 * database and user per app, isolated by grants), built from the
 * mechanics in mariadb.h and sequenced as recorded steps (see addon.h);
 * the names of what it makes are in provider.h.
 *
 * Secrets (passwords) live only in the states and the injected env;
 * nothing here logs them.
 */
#include "addon/mysql/provider.h"
#include "addon/server.h"
#include "util/fs.h"
#include "util/io.h"
#include "util/paths.h"
#include "util/secret.h"
#include "util/strbuf.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define GiB (1024LL * 1024 * 1024)

static const struct addon_variant variants[] = {
	{ "small", "Dedicated MySQL-compatible server, MariaDB (1 GB storage)",
	  "Each app gets its own MariaDB server (MySQL-compatible: MySQL clients,\n"
	  "drivers and mysql:// URLs work) with dedicated storage, on its own address,\n"
	  "port 3306. The app's user has every right on its own database and nothing\n"
	  "else; the server's root account stays with the platform.",
	  1 * GiB, false },
	{ "shared", "Multi-app shared MySQL-compatible server, MariaDB",
	  "Apps share one MariaDB server (MySQL-compatible), each with its own database\n"
	  "and user; grants keep every app out of the others' databases (it can neither\n"
	  "see, connect to nor read them). The server does not isolate workloads: a\n"
	  "heavy query in one app can slow the others. For small internal tools,\n"
	  "staging environments and apps you know will stay lightweight.",
	  10 * GiB, true },
};

static long long disk_bytes(const char *variant)
{
	for (size_t i = 0; i < sizeof(variants) / sizeof(variants[0]); i++)
		if (!strcmp(variants[i].name, variant))
			return variants[i].disk_bytes;
	return 0;
}

/* The points inside steps, each reached by an `addon create` of some
 * variant (the fault walk, t0307, crashes there and converges). */
static const char *const fault_points[] = {
	MY_FAULT("template:install"),
	MY_FAULT("spare:copying"),
	MY_FAULT("clone:copied"),
	MY_FAULT("server:started"),
	MY_FAULT("server:rotated"),
	MY_FAULT("tenant:create"),
	NULL,
};

static size_t my_versions(char out[][16], size_t max)
{
	struct mariadb_install in;
	if (max == 0 || mariadb_find(&in, NULL) != 0)
		return 0;
	memcpy(out[0], in.version, 16);
	return 1;
}

enum miren_err myp_install_for(const char *version, struct mariadb_install *out,
			       struct miren_error *err)
{
	enum miren_err rc = mariadb_find(out, err);
	if (rc)
		return rc;
	if (strcmp(out->version, version) != 0) {
		/* Not retried: it takes a person to install it. */
		miren_error_set(err, MIREN_ENOTFOUND,
				"MariaDB %s is not installed on this host (it has %s)", version,
				out->version);
		miren_error_hint(err, "install the Debian package mariadb-server of version %s",
				 version);
		return MIREN_ENOTFOUND;
	}
	return 0;
}

/* ---- state ------------------------------------------------------------------- */

static char *member(const json_t *o, const char *key)
{
	return xstrdup(addon_jstr(o, key));
}

static void free_secret(char *s)
{
	if (s)
		explicit_bzero(s, strlen(s));
	free(s);
}

static enum miren_err my_state_parse(const char *json, void **out, struct miren_error *err)
{
	json_t *o = *json ? json_loads(json, 0, NULL) : json_object();
	if (!json_is_object(o)) {
		json_decref(o);
		return miren_error_set(err, MIREN_EINVAL,
				       "the state of a %s addon is not a JSON object", MYSQL_ADDON);
	}
	struct myp_tenant *t = xcalloc(1, sizeof(*t));
	t->user = member(o, "user");
	t->db = member(o, "db");
	t->password = member(o, "password");
	addon_logins_parse(&t->lg, o, t->user);
	json_decref(o);
	*out = t;
	return 0;
}

static char *my_state_json(const void *state)
{
	const struct myp_tenant *t = state;
	json_t *o = json_object();
	if (*t->user) {
		json_object_set_new(o, "user", json_string(t->user));
		json_object_set_new(o, "db", json_string(t->db));
		json_object_set_new(o, "password", json_string(t->password));
		addon_logins_json(&t->lg, t->user, o);
	}
	char *s = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(o);
	return s;
}

static void my_state_free(void *state)
{
	struct myp_tenant *t = state;
	if (!t)
		return;
	free(t->user);
	free(t->db);
	free_secret(t->password);
	addon_logins_release(&t->lg);
	free(t);
}

void myp_server_parse(const struct server_rec *srv, struct myp_server *out)
{
	json_t *o = json_loads(srv->state_json ? srv->state_json : "", 0, NULL);
	out->root_password = member(o, "root_password");
	out->version = member(o, "version");
	out->rotated = json_is_true(json_object_get(o, "rotated"));
	json_decref(o);
}

void myp_server_release(struct myp_server *s)
{
	free_secret(s->root_password);
	free(s->version);
	memset(s, 0, sizeof(*s));
}

/* ---- provisioning steps -------------------------------------------------------- */

/* User, database and password of the instance (kept if already planned). */
static enum miren_err plan_tenant(struct addon_inst *inst, struct miren_error *err)
{
	struct myp_tenant *t = inst->state;
	if (*t->user)
		return 0;
	char ident[65];
	enum miren_err rc = mariadb_ident_for_app(inst->rec.app, ident, err);
	if (rc)
		return rc;
	free(t->user);
	free(t->db);
	free_secret(t->password);
	t->user = xstrdup(ident);
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
	char *root = secret_password();
	json_t *sstate = json_pack("{s:s, s:s}", "root_password", root, "version", version);
	char *sjson = json_dumps(sstate, JSON_COMPACT);
	enum miren_err rc = addon_server_add(ctx, MYSQL_ADDON, id, kind, disk, MYSQL_PORT, sjson,
					     disk_bytes(kind), created_by, NULL, err);
	free_secret(sjson);
	json_decref(sstate);
	free_secret(root);
	return rc;
}

static enum miren_err step_plan_small(struct addon_ctx *ctx, struct addon_inst *inst,
				      struct miren_error *err)
{
	enum miren_err rc = plan_tenant(inst, err);
	if (rc)
		return rc;
	char *server = xasprintf("mysql-s-%s", inst->rec.id);
	char *disk = xasprintf("mysql-mysql-%s-s%s-data", inst->rec.app, inst->rec.id);
	char *by = xasprintf("addon %s (app %s)", MYSQL_ADDON, inst->rec.app);
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
	rc = store_server_find_kind(ctx->store, MYSQL_ADDON, "shared", &srv, err);
	if (rc == MIREN_ENOTFOUND) {
		miren_error_clear(err);
		char *hex = secret_hex(4);
		char *id = xasprintf("mysql-shared-%s", hex);
		char *disk = xasprintf("mysql-shared-data-%s", hex);
		rc = add_server(ctx, id, "shared", disk, inst->rec.version,
				"addon " MYSQL_ADDON " (shared)", err);
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
				"addon " MYSQL_ADDON " (shared)", err);
		if (!rc)
			addon_inst_set_server(inst, srv.id);
		server_rec_release(&srv);
	}
	return rc;
}

static enum miren_err step_server(struct addon_ctx *ctx, struct addon_inst *inst,
				  struct miren_error *err)
{
	return myp_ensure_server(ctx, inst->rec.server, false, err);
}

/* The instance's server (srv) with its disk directory and parsed state;
 * release with server_done. */
struct server_view {
	struct server_rec srv;
	struct myp_server ss;
	char *dir;
};

static enum miren_err server_view(struct addon_ctx *ctx, struct addon_inst *inst,
				  struct server_view *v, struct miren_error *err)
{
	memset(v, 0, sizeof(*v));
	enum miren_err rc = store_server_get(ctx->store, inst->rec.server, &v->srv, err);
	if (rc)
		return rc;
	myp_server_parse(&v->srv, &v->ss);
	v->dir = addon_disk_dir(ctx, v->srv.disk);
	return 0;
}

static void server_done(struct server_view *v)
{
	free(v->dir);
	myp_server_release(&v->ss);
	server_rec_release(&v->srv);
}

static enum miren_err step_tenant(struct addon_ctx *ctx, struct addon_inst *inst,
				  struct miren_error *err)
{
	const struct myp_tenant *t = inst->state;
	struct server_view v;
	enum miren_err rc = server_view(ctx, inst, &v, err);
	if (rc)
		return rc;
	rc = mariadb_tenant_create(v.dir, v.ss.root_password, t->user, t->db, t->password, err);
	server_done(&v);
	return rc;
}

/* ---- deprovisioning steps ------------------------------------------------------ */

static enum miren_err step_drop_tenant(struct addon_ctx *ctx, struct addon_inst *inst,
				       struct miren_error *err)
{
	const struct myp_tenant *t = inst->state;
	if (!*inst->rec.server || !*t->user)
		return 0;
	/* The last tenant of a server goes with the server (next step);
	 * otherwise the server must run for the drop to happen. */
	int count = 0;
	enum miren_err rc = store_addon_count_on_server(ctx->store, inst->rec.server, &count, err);
	if (rc || count <= 1)
		return rc;
	rc = myp_ensure_server(ctx, inst->rec.server, false, err);
	struct server_view v;
	if (!rc)
		rc = server_view(ctx, inst, &v, err);
	if (rc == MIREN_ENOTFOUND) {
		miren_error_clear(err);
		return 0;
	}
	if (rc)
		return rc;
	rc = mariadb_tenant_drop(v.dir, v.ss.root_password, t->user, t->db, err);
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
	return addon_server_release(ctx, inst->rec.server, myp_server_cleanup, err);
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
	return !strcmp(variant, "shared") ? shared_provision : small_provision;
}

static const struct addon_step *deprovision_steps(const char *variant, size_t *n)
{
	(void)variant;
	*n = sizeof(deprovision) / sizeof(deprovision[0]);
	return deprovision;
}

/* ---- env, tenant hooks, describe -------------------------------------------------- */

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

static enum miren_err my_env(struct addon_ctx *ctx, struct addon_inst *inst, struct env_rec **out,
			     size_t *n, struct miren_error *err)
{
	struct server_rec srv;
	enum miren_err rc = store_server_get(ctx->store, inst->rec.server, &srv, err);
	if (rc)
		return rc;
	const struct myp_tenant *t = inst->state;
	char port[16];
	snprintf(port, sizeof(port), "%d", srv.port);
	/* user, password and db are [A-Za-z0-9_]: nothing to escape. */
	char *url = xasprintf("mysql://%s:%s@%s:%d/%s", t->lg.login, t->password, srv.address,
			      srv.port, t->db);
	*out = NULL;
	*n = 0;
	add_var(out, n, "DATABASE_URL", url, true);
	add_var(out, n, "MYSQL_HOST", srv.address, false);
	add_var(out, n, "MYSQL_PORT", port, false);
	add_var(out, n, "MYSQL_USER", t->lg.login, false);
	add_var(out, n, "MYSQL_PASSWORD", t->password, true);
	add_var(out, n, "MYSQL_DATABASE", t->db, false);
	free_secret(url);
	server_rec_release(&srv);
	return 0;
}

/* Rotation (addon.h, addon/logins.h): the tenant's user and its second
 * user take turns, each holding the database's privileges. */
static enum miren_err my_rotate_plan(struct addon_ctx *ctx, struct addon_inst *inst,
				     const char *credential, struct miren_error *err)
{
	struct myp_tenant *t = inst->state;
	struct server_view v;
	enum miren_err rc = server_view(ctx, inst, &v, err);
	if (rc)
		return rc;
	server_done(&v);
	if (strcmp(credential, "user") != 0) {
		miren_error_set(err, MIREN_EINVAL,
				"addon %s rotates the app's own credentials only, not '%s'",
				MYSQL_ADDON, credential);
		miren_error_hint(err, "give --credential user (root never leaves the daemon: it "
				      "logs in over a private unix socket only)");
		return MIREN_EINVAL;
	}
	addon_logins_plan(&t->lg);
	return 0;
}

static enum addon_rotate_phase my_rotate_phase(const void *state)
{
	return addon_logins_phase(&((const struct myp_tenant *)state)->lg);
}

static enum miren_err my_rotate_issue(struct addon_ctx *ctx, struct addon_inst *inst,
				      struct miren_error *err)
{
	struct myp_tenant *t = inst->state;
	if (!*t->lg.next_password)
		return 0; /* issued already */
	char alt[65];
	struct server_view v;
	enum miren_err rc = mariadb_alt_user(t->user, alt, err);
	if (!rc)
		rc = server_view(ctx, inst, &v, err);
	if (rc)
		return rc;
	const char *next = addon_logins_other(&t->lg, t->user, alt);
	rc = mariadb_tenant_logins(v.dir, v.ss.root_password, t->user, t->db, next,
				   t->lg.next_password, false, err);
	server_done(&v);
	if (!rc)
		addon_logins_switch(&t->lg, next, &t->password);
	return rc;
}

static enum miren_err my_rotate_revoke(struct addon_ctx *ctx, struct addon_inst *inst,
				       struct miren_error *err)
{
	struct myp_tenant *t = inst->state;
	if (!*t->lg.retired)
		return 0;
	struct server_view v;
	enum miren_err rc = server_view(ctx, inst, &v, err);
	if (rc)
		return rc;
	rc = mariadb_tenant_logins(v.dir, v.ss.root_password, t->user, t->db, t->lg.login,
				   t->password, true, err);
	server_done(&v);
	if (!rc)
		addon_logins_revoked(&t->lg);
	return rc;
}

static int64_t my_issued_at(const void *state)
{
	return ((const struct myp_tenant *)state)->lg.issued_at;
}

/*
 * The load hook's "replaces, all or nothing" on a server whose DDL is not
 * transactional: the tenant's data is dumped aside first (an unlinked file
 * in the data directory's tmp/), the database emptied, the dump loaded;
 * when that fails, the database is emptied again and the copy put back.
 * (A daemon killed in the middle leaves the database partly loaded.)
 */
static enum miren_err load_replacing(struct addon_ctx *ctx, const struct mariadb_install *in,
				     const struct server_rec *srv, const struct myp_tenant *t,
				     int fd, struct miren_error *err)
{
	char *tmp = data_paths_tmp(ctx->paths);
	int aside = open(tmp, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	free(tmp);
	if (aside < 0)
		return miren_error_set(err, MIREN_EIO,
				       "cannot make a file for the current data: %s",
				       io_strerror(errno));
	enum miren_err rc = mariadb_dump(in, srv->address, srv->port, t->lg.login, t->password,
					 t->db, aside, err);
	if (!rc)
		rc = mariadb_clear(in, srv->address, srv->port, t->lg.login, t->password, t->db,
				   err);
	if (!rc) {
		rc = mariadb_load(in, srv->address, srv->port, t->lg.login, t->password, t->db, fd,
				  err);
		if (rc) {
			struct miren_error back;
			miren_error_clear(&back);
			if (lseek(aside, 0, SEEK_SET) != 0 ||
			    mariadb_clear(in, srv->address, srv->port, t->lg.login, t->password,
					  t->db, &back) ||
			    mariadb_load(in, srv->address, srv->port, t->lg.login, t->password,
					 t->db, aside, &back)) {
				char why[sizeof(err->message)];
				snprintf(why, sizeof(why), "%s", err->message);
				miren_error_set(err, rc,
						"%s; and the data from before could not be put "
						"back: %s",
						why, back.message);
			}
		}
	}
	close(aside);
	return rc;
}

/* A logical dump of the tenant's database (or a load into it, replacing
 * what it holds), as the tenant's own user. */
static enum miren_err dump_or_load(struct addon_ctx *ctx, struct addon_inst *inst, int fd,
				   bool load, struct miren_error *err)
{
	const struct myp_tenant *t = inst->state;
	struct mariadb_install in;
	struct server_rec srv;
	enum miren_err rc = mariadb_find(&in, err);
	if (!rc)
		rc = store_server_get(ctx->store, inst->rec.server, &srv, err);
	if (rc)
		return rc;
	rc = load ? load_replacing(ctx, &in, &srv, t, fd, err)
		  : mariadb_dump(&in, srv.address, srv.port, t->lg.login, t->password, t->db, fd,
				 err);
	server_rec_release(&srv);
	return rc;
}

static enum miren_err my_dump(struct addon_ctx *ctx, struct addon_inst *inst, int fd,
			      struct miren_error *err)
{
	return dump_or_load(ctx, inst, fd, false, err);
}

static enum miren_err my_load(struct addon_ctx *ctx, struct addon_inst *inst, int fd,
			      struct miren_error *err)
{
	return dump_or_load(ctx, inst, fd, true, err);
}

/* A variant change's pause (addon.h): the tenant reads only, so that the
 * framework's dump (as the tenant) goes on while nothing is written. */
static enum miren_err my_writes_pause(struct addon_ctx *ctx, struct addon_inst *inst, bool pause,
				      struct miren_error *err)
{
	const struct myp_tenant *t = inst->state;
	struct server_view v;
	enum miren_err rc = server_view(ctx, inst, &v, err);
	if (rc)
		return rc;
	rc = mariadb_tenant_pause(v.dir, v.ss.root_password, t->user, t->db, pause, err);
	server_done(&v);
	return rc;
}

/* The MariaDB client as the tenant; the password in MYSQL_PWD. */
static enum miren_err my_connect(struct addon_ctx *ctx, struct addon_inst *inst,
				 struct addon_connect *out, struct miren_error *err)
{
	const struct myp_tenant *t = inst->state;
	struct mariadb_install in;
	struct server_rec srv;
	enum miren_err rc = mariadb_find(&in, err);
	if (!rc)
		rc = store_server_get(ctx->store, inst->rec.server, &srv, err);
	if (rc)
		return rc;
	char **argv = xcalloc(10, sizeof(*argv));
	size_t k = 0;
	argv[k++] = xstrdup(in.client);
	/* No option file: one naming a password would win over MYSQL_PWD. */
	argv[k++] = xstrdup("--no-defaults");
	argv[k++] = xasprintf("--host=%s", srv.address);
	argv[k++] = xasprintf("--port=%d", srv.port);
	argv[k++] = xasprintf("--user=%s", t->lg.login);
	argv[k++] = xasprintf("--database=%s", t->db);
	char **env = xcalloc(2, sizeof(*env));
	env[0] = xasprintf("MYSQL_PWD=%s", t->password);
	out->argv = argv;
	out->env = env;
	/* A statement: --execute, whose failure is the client's exit status. */
	if (out->command)
		addon_connect_args(out, (const char *const[]){ "--execute", out->command, NULL });
	server_rec_release(&srv);
	return 0;
}

static enum miren_err my_info(struct addon_ctx *ctx, struct addon_inst *inst,
			      struct addon_info *out, struct miren_error *err)
{
	const struct myp_tenant *t = inst->state;
	struct server_view v;
	enum miren_err rc = server_view(ctx, inst, &v, err);
	if (rc)
		return rc;
	struct mariadb_info mi;
	rc = mariadb_info(v.dir, v.ss.root_password, t->db, &mi, err);
	if (!rc) {
		snprintf(out->version, sizeof(out->version), "%s", mi.version);
		out->size_bytes = mi.size_bytes;
		out->connections = (int)mi.connections;
		out->max_connections = (int)mi.max_connections;
		out->uptime_s = mi.uptime_s;
	}
	server_done(&v);
	return rc;
}

static json_t *my_describe(struct addon_ctx *ctx, struct addon_inst *inst)
{
	struct server_rec srv;
	if (!*inst->rec.server || store_server_get(ctx->store, inst->rec.server, &srv, NULL) != 0)
		return NULL;
	const struct myp_tenant *t = inst->state;
	json_t *o = json_pack("{s:s, s:s, s:i, s:s, s:s}", "disk", srv.disk, "host", srv.address,
			      "port", srv.port, "database", t->db, "user", t->lg.login);
	server_rec_release(&srv);
	return o;
}

const struct addon_def addon_engine_mysql = {
	.name = MYSQL_ADDON,
	.engine = "MariaDB",
	.description = "Managed MySQL-compatible database (MariaDB)",
	.variants = variants,
	.n_variants = sizeof(variants) / sizeof(variants[0]),
	.default_variant = "small",
	.versions = my_versions,
	.install_hint = "install the Debian packages mariadb-server, mariadb-client and "
			"mariadb-backup (scripts/bootstrap does)",
	.provision_steps = provision_steps,
	.deprovision_steps = deprovision_steps,
	.fault_points = fault_points,
	.state_parse = my_state_parse,
	.state_json = my_state_json,
	.state_free = my_state_free,
	.env = my_env,
	.resume = myp_resume,
	.ready = myp_ready,
	.disk_server = myp_disk_server,
	.check_server = myp_check_server,
	.copy_skip = myp_copy_skip,
	.backup_begin = myp_backup_begin,
	.backup_free = myp_backup_free,
	.restore_prepare = myp_restore_prepare,
	.restore_start = myp_restore_start,
	.restore_verify = myp_restore_verify,
	.dump = my_dump,
	.load = my_load,
	.rotate_plan = my_rotate_plan,
	.rotate_phase = my_rotate_phase,
	.rotate_issue = my_rotate_issue,
	.rotate_revoke = my_rotate_revoke,
	.credentials_issued_at = my_issued_at,
	.writes_pause = my_writes_pause,
	.connect = my_connect,
	.info = my_info,
	.tenant_facts = myp_tenant_facts,
	.scratch_start = myp_scratch_start,
	.scratch_load = myp_scratch_load,
	.scratch_dump = myp_scratch_dump,
	.scratch_check = myp_scratch_check,
	.scratch_stop = myp_scratch_stop,
	.idle = myp_idle,
	.interrupt = myp_interrupt,
	.describe = my_describe,
};
