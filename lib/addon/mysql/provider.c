/*
 * The miren-mysql provider (MariaDB 10.11, MySQL-compatible): `small` (a
 * dedicated mariadbd per app) and `shared` (one server, a database and
 * user per app, isolated by grants), built from the mechanics in
 * mariadb.c and sequenced as recorded steps (see addon.h).
 *
 * Resources and their names, all recorded before they are made:
 *   server row   "mysql-s-<id>" (small) or "mysql-shared-<8 hex>" (shared),
 *                kinds "mysql-small" / "mysql-shared"
 *   disk         mysql-mysql-<app>-s<id>-data (small),
 *                mysql-shared-data-<8 hex> (shared)
 *   address      the lowest free one of the pool, recorded on the server row;
 *                port 3306
 *   user, db     mariadb_ident_for_app(app)
 * The instance's state holds {"server","user","db","password"}; a
 * server's state holds {"root_password","version","rotated"}.
 *
 * Secrets (passwords) live only in those states and in the injected env;
 * nothing here logs them.
 */
#include "addon/addon.h"
#include "addon/disk_ops.h"
#include "addon/mysql/mariadb.h"
#include "util/fault.h"
#include "util/fs.h"
#include "util/log.h"
#include "util/secret.h"
#include "util/strbuf.h"

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MYSQL_PORT 3306
#define SMALL_DISK_SIZE (1024LL * 1024 * 1024)
#define SHARED_DISK_SIZE (10LL * 1024 * 1024 * 1024)
#define READY_TIMEOUT_MS 60000
#define KIND_SMALL "mysql-small"
#define KIND_SHARED "mysql-shared"

static const struct addon_variant variants[] = {
	{ "small", "Dedicated MySQL-compatible server, MariaDB (1 GB storage)",
	  "Each app gets its own MariaDB server (MySQL-compatible: MySQL clients,\n"
	  "drivers and mysql:// URLs work) with dedicated storage, on its own address,\n"
	  "port 3306. The app's user has every right on its own database and nothing\n"
	  "else; the server's root account stays with the platform." },
	{ "shared", "Multi-app shared MySQL-compatible server, MariaDB",
	  "Apps share one MariaDB server (MySQL-compatible), each with its own database\n"
	  "and user; grants keep every app out of the others' databases (it can neither\n"
	  "see, connect to nor read them). The server does not isolate workloads: a\n"
	  "heavy query in one app can slow the others. For small internal tools,\n"
	  "staging environments and apps you know will stay lightweight." },
};

/* ---- small helpers ------------------------------------------------------- */

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

static bool our_kind(const char *kind)
{
	return !strcmp(kind, KIND_SMALL) || !strcmp(kind, KIND_SHARED);
}

static size_t my_versions(char out[][16], size_t max)
{
	struct mariadb_install in;
	if (max == 0 || mariadb_find(&in, NULL) != 0)
		return 0;
	memcpy(out[0], in.version, 16);
	return 1;
}

/* The install for a recorded version ("10.11"). */
static int install_for(const char *version, struct mariadb_install *out,
		       struct miren_error *err)
{
	int rc = mariadb_find(out, err);
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

/* ---- the address pool ------------------------------------------------------ */

static int alloc_address(struct addon_ctx *ctx, char out[INET_ADDRSTRLEN],
			 struct miren_error *err)
{
	char **used;
	size_t n;
	int rc = store_server_addresses(ctx->store, &used, &n, err);
	if (rc)
		return rc;
	rc = MIREN_ECONFLICT;
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
		miren_error_set(err, MIREN_ECONFLICT, "the address pool is exhausted (%u addresses, "
						      "all in use)",
				ctx->pool_size - 2);
		miren_error_hint(err, "destroy unused addons, or restart the server with a larger "
				      "--addr-pool");
	}
	return rc;
}

/* ---- servers ----------------------------------------------------------------- */

static int template_password(struct addon_ctx *ctx, char **out, struct miren_error *err)
{
	char *fresh = secret_password();
	int rc = store_setting_ensure(ctx->store, "mysql.template_password", fresh, out, err);
	free(fresh);
	return rc;
}

static char *template_dir(struct addon_ctx *ctx, const char *version)
{
	return xasprintf("%s/templates/mysql%s", ctx->data_dir, version);
}

struct prestart {
	char *disk_dir;
	uid_t uid;
	gid_t gid;
};

/* Before every start: the run directory (under /run or /tmp) back. */
static int prestart_run(void *arg, char *errbuf, size_t errlen)
{
	struct prestart *p = arg;
	struct miren_error err;
	if (mariadb_run_dir_ensure(p->disk_dir, p->uid, p->gid, &err) != 0) {
		snprintf(errbuf, errlen, "%s", err.message);
		return -1;
	}
	return 0;
}

static void prestart_free(void *arg)
{
	struct prestart *p = arg;
	if (p)
		free(p->disk_dir);
	free(p);
}

static int start_server(struct addon_ctx *ctx, const struct server_rec *srv,
			const json_t *sstate, struct miren_error *err)
{
	struct mariadb_install in;
	int rc = install_for(jstr(sstate, "version"), &in, err);
	if (rc)
		return rc;
	char *dir = disk_dir(ctx, srv->disk);
	char **argv = mariadb_server_argv(&in, dir, srv->address, srv->port);
	if (!argv) {
		free(dir);
		return miren_error_set(err, MIREN_EINTERNAL, "server %s has a bad address", srv->id);
	}
	char *id = sv_id(srv->id);
	char *logdir = xasprintf("%s/logs/addons", ctx->data_dir);
	char *log = xasprintf("%s/%s.log", logdir, srv->id);
	fs_mkdir_p(logdir, 0750);
	if (ctx->uid != (uid_t)-1 && chown(logdir, ctx->uid, ctx->gid) != 0)
		log_warn("cannot hand %s to the service user: %s", logdir, strerror(errno));
	struct prestart *pre = xcalloc(1, sizeof(*pre));
	pre->disk_dir = xstrdup(dir);
	pre->uid = ctx->uid;
	pre->gid = ctx->gid;
	char *env[] = { "LANG=C.UTF-8", "PATH=/usr/sbin:/usr/bin:/bin", "TZ=UTC", NULL };
	struct sv_spec spec = {
		.id = id,
		.argv = argv,
		.cwd = dir,
		.env = env,
		.log_path = log,
		.uid = ctx->uid,
		.gid = ctx->gid,
		.stop_signal = SIGTERM, /* a clean shutdown */
		.stop_timeout_ms = 60000,
		.keep_on_daemon_exit = true,
		.adopt = true,
		.prestart = prestart_run,
		.prestart_arg = pre,
		.prestart_free = prestart_free,
	};
	char ebuf[256];
	rc = sv_start(ctx->sv, &spec, ebuf, sizeof(ebuf));
	if (rc)
		miren_error_set(err, rc, "cannot start MariaDB for disk %s: %s", srv->disk, ebuf);
	free(log);
	free(logdir);
	free(id);
	mariadb_argv_free(argv);
	free(dir);
	return rc;
}

/* The last "[ERROR]" line of the server's log as err's hint. */
static void add_server_log_hint(struct addon_ctx *ctx, const char *server_id,
				struct miren_error *err)
{
	char *path = xasprintf("%s/logs/addons/%s.log", ctx->data_dir, server_id);
	struct strbuf sb;
	strbuf_init(&sb, 0);
	if (strbuf_read_file(&sb, path) == 0) {
		const char *line = NULL;
		for (const char *p = sb.buf; (p = strstr(p, "[ERROR]")); p++)
			line = p;
		if (line)
			miren_error_hint(err, "the server's log says: %.*s",
					 (int)strcspn(line, "\n"), line);
	}
	strbuf_release(&sb);
	free(path);
}

/*
 * Makes the server exist, run and answer with its own root password:
 * template, clone, start (unless supervised), wait, rotate.  Each part is
 * idempotent.
 */
static int ensure_server(struct addon_ctx *ctx, const char *server_id, struct miren_error *err)
{
	struct server_rec srv;
	int rc = store_server_get(ctx->store, server_id, &srv, err);
	if (rc)
		return rc;
	json_t *sstate = json_loads(srv.state_json, 0, NULL);
	char *tpw = NULL, *tdir = NULL, *dir = disk_dir(ctx, srv.disk);
	bool locked = false;
	struct mariadb_install in;
	rc = install_for(jstr(sstate, "version"), &in, err);
	if (!rc)
		rc = template_password(ctx, &tpw, err);
	if (rc)
		goto out;
	char *sid = sv_id(srv.id);
	struct sv_status st;
	bool running = sv_status(ctx->sv, sid, &st) == 0;
	free(sid);
	if (running && st.state == SV_RUNNING && json_is_true(json_object_get(sstate, "rotated")))
		goto out;
	if (disk_lock(srv.disk, "the start of its server", DISK_LOCK_WAIT_MS, err) != 0) {
		err->code = rc = MIREN_EUNAVAIL;
		goto out;
	}
	locked = true;
	tdir = template_dir(ctx, in.version);
	char *tparent = xasprintf("%s/templates", ctx->data_dir);
	char *dparent = xasprintf("%s/disks", ctx->data_dir);
	if (fs_mkdir_p(tparent, 0711) != 0 || fs_mkdir_p(dparent, 0711) != 0) {
		rc = miren_error_set(err, MIREN_ECONFLICT, "cannot create '%s': %s", dparent,
				     strerror(errno));
		miren_error_hint(err, "check that the data directory '%s' is writable",
				 ctx->data_dir);
	}
	free(tparent);
	free(dparent);
	if (!rc && is_stopping(ctx))
		rc = miren_error_set(err, MIREN_EUNAVAIL, "the daemon stops");
	if (!rc)
		rc = mariadb_template_ensure(&in, tdir, tpw, ctx->uid, ctx->gid, err);
	if (!rc)
		rc = mariadb_clone(tdir, dir, ctx->uid, ctx->gid, err);
	if (rc)
		goto out;
	fault_point("mysql:server:cloned");
	if (!running)
		rc = start_server(ctx, &srv, sstate, err);
	if (!rc)
		fault_point("mysql:server:started");
	const char *root = jstr(sstate, "root_password");
	if (!rc) {
		/* A fresh clone answers to the template's password, a rotated
		 * one to its own: wait for the likely one, then try the other
		 * (a crash may have come between the rotation and its record). */
		bool rotated = json_is_true(json_object_get(sstate, "rotated"));
		const char *first = rotated ? root : tpw, *second = rotated ? tpw : root;
		rc = mariadb_wait_ready(dir, first, READY_TIMEOUT_MS, ctx->stopping, err);
		if (rc == MIREN_EPERM)
			rc = mariadb_wait_ready(dir, second, 2000, ctx->stopping, err);
		if (rc)
			add_server_log_hint(ctx, srv.id, err);
	}
	if (!rc && !json_is_true(json_object_get(sstate, "rotated"))) {
		rc = mariadb_rotate_root(dir, tpw, root, err);
		if (!rc)
			fault_point("mysql:server:rotated");
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
	fault_point("mysql:release:stopped");
	char *dir = disk_dir(ctx, srv.disk);
	char *run = mariadb_run_dir(dir);
	fs_remove_tree(run);
	free(run);
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
		      long long size, const char *version, const char *created_by,
		      struct miren_error *err)
{
	char addr[INET_ADDRSTRLEN];
	int rc = alloc_address(ctx, addr, err);
	if (rc)
		return rc;
	char *root = secret_password();
	json_t *sstate = json_pack("{s:s, s:s}", "root_password", root, "version", version);
	char *sjson = json_dumps(sstate, JSON_COMPACT);
	struct server_rec srv = { .id = (char *)id, .kind = (char *)kind, .disk = (char *)disk,
				  .address = addr, .port = MYSQL_PORT, .state_json = sjson };
	rc = store_server_add(ctx->store, &srv, err);
	explicit_bzero(sjson, strlen(sjson));
	free(sjson);
	json_decref(sstate);
	explicit_bzero(root, strlen(root));
	free(root);
	if (rc)
		return rc;
	fault_point("mysql:plan:server-recorded");
	struct disk_rec d = { .name = (char *)disk, .size_bytes = size,
			      .created_by = (char *)created_by, .status = "in use" };
	return store_disk_put(ctx->store, &d, err);
}

/* ---- provisioning steps ------------------------------------------------------ */

static int plan_tenant(struct addon_inst *inst, struct miren_error *err)
{
	if (json_object_get(inst->state, "user"))
		return 0;
	char ident[65];
	int rc = mariadb_ident_for_app(inst->rec.app, ident, err);
	if (rc)
		return rc;
	char *pw = secret_password();
	json_object_set_new(inst->state, "user", json_string(ident));
	json_object_set_new(inst->state, "db", json_string(ident));
	json_object_set_new(inst->state, "password", json_string(pw));
	free(pw);
	return 0;
}

static int step_plan_small(struct addon_ctx *ctx, struct addon_inst *inst,
			   struct miren_error *err)
{
	int rc = plan_tenant(inst, err);
	if (rc)
		return rc;
	char *server = xasprintf("mysql-s-%s", inst->rec.id);
	char *disk = xasprintf("mysql-mysql-%s-s%s-data", inst->rec.app, inst->rec.id);
	char *by = xasprintf("addon miren-mysql (app %s)", inst->rec.app);
	struct server_rec existing;
	rc = store_server_get(ctx->store, server, &existing, err);
	if (rc == MIREN_ENOTFOUND) {
		miren_error_clear(err);
		rc = add_server(ctx, server, KIND_SMALL, disk, SMALL_DISK_SIZE, inst->rec.version,
				by, err);
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
	int rc = plan_tenant(inst, err);
	if (rc || json_object_get(inst->state, "server"))
		return rc;
	struct server_rec srv;
	rc = store_server_find_kind(ctx->store, KIND_SHARED, &srv, err);
	if (rc == MIREN_ENOTFOUND) {
		miren_error_clear(err);
		char *hex = secret_hex(4);
		char *id = xasprintf("mysql-shared-%s", hex);
		char *disk = xasprintf("mysql-shared-data-%s", hex);
		rc = add_server(ctx, id, KIND_SHARED, disk, SHARED_DISK_SIZE, inst->rec.version,
				"addon miren-mysql (shared)", err);
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

/* The instance's server: its disk directory and root password (caller
 * frees both), or MIREN_ENOTFOUND. */
static int server_of(struct addon_ctx *ctx, struct addon_inst *inst, char **dir, char **root,
		     struct miren_error *err)
{
	struct server_rec srv;
	int rc = store_server_get(ctx->store, jstr(inst->state, "server"), &srv, err);
	if (rc)
		return rc;
	json_t *sstate = json_loads(srv.state_json, 0, NULL);
	*dir = disk_dir(ctx, srv.disk);
	*root = xstrdup(jstr(sstate, "root_password"));
	json_decref(sstate);
	server_rec_release(&srv);
	return 0;
}

static void free_secret(char *s)
{
	if (s)
		explicit_bzero(s, strlen(s));
	free(s);
}

static int step_tenant(struct addon_ctx *ctx, struct addon_inst *inst, struct miren_error *err)
{
	char *dir, *root;
	int rc = server_of(ctx, inst, &dir, &root, err);
	if (rc)
		return rc;
	rc = mariadb_tenant_create(dir, root, jstr(inst->state, "user"), jstr(inst->state, "db"),
				   jstr(inst->state, "password"), err);
	free(dir);
	free_secret(root);
	return rc;
}

/* ---- deprovisioning steps ---------------------------------------------------- */

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
	if (rc)
		return rc;
	char *dir, *root;
	rc = server_of(ctx, inst, &dir, &root, err);
	if (rc == MIREN_ENOTFOUND) {
		miren_error_clear(err);
		return 0;
	}
	if (rc)
		return rc;
	rc = mariadb_tenant_drop(dir, root, jstr(inst->state, "user"), jstr(inst->state, "db"),
				 err);
	free(dir);
	free_secret(root);
	return rc;
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
		return rc;
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
	return !strcmp(variant, "shared") ? shared_provision : small_provision;
}

static const struct addon_step *deprovision_steps(const char *variant, size_t *n)
{
	(void)variant;
	*n = sizeof(deprovision) / sizeof(deprovision[0]);
	return deprovision;
}

/* ---- env, resume, idle, describe --------------------------------------------- */

static void add_var(struct env_rec **v, size_t *n, const char *key, const char *value,
		    bool sensitive)
{
	*v = xrealloc(*v, (*n + 1) * sizeof(**v));
	(*v)[(*n)++] = (struct env_rec){ .key = xstrdup(key), .value = xstrdup(value),
					 .service = xstrdup(""), .source = ENV_SOURCE_ADDON,
					 .sensitive = sensitive, .description = xstrdup("") };
}

static int my_env(struct addon_ctx *ctx, struct addon_inst *inst, struct env_rec **out,
		  size_t *n, struct miren_error *err)
{
	struct server_rec srv;
	int rc = store_server_get(ctx->store, jstr(inst->state, "server"), &srv, err);
	if (rc)
		return rc;
	const char *user = jstr(inst->state, "user"), *db = jstr(inst->state, "db"),
		   *pw = jstr(inst->state, "password");
	char port[16];
	snprintf(port, sizeof(port), "%d", srv.port);
	char *url = xasprintf("mysql://%s:%s@%s:%d/%s", user, pw, srv.address, srv.port, db);
	*out = NULL;
	*n = 0;
	add_var(out, n, "DATABASE_URL", url, true);
	add_var(out, n, "MYSQL_HOST", srv.address, false);
	add_var(out, n, "MYSQL_PORT", port, false);
	add_var(out, n, "MYSQL_USER", user, false);
	add_var(out, n, "MYSQL_PASSWORD", pw, true);
	add_var(out, n, "MYSQL_DATABASE", db, false);
	free_secret(url);
	server_rec_release(&srv);
	return 0;
}

/* Is pid a mariadbd serving data_dir (its --datadir argument)? */
static bool serves(pid_t pid, const char *data)
{
	char path[64], exe[PATH_MAX];
	snprintf(path, sizeof(path), "/proc/%d/exe", (int)pid);
	ssize_t len = readlink(path, exe, sizeof(exe) - 1);
	if (len <= 0)
		return false;
	exe[len] = '\0';
	const char *base = strrchr(exe, '/');
	if (!base || (strcmp(base, "/mariadbd") != 0 && strcmp(base, "/mysqld") != 0))
		return false;
	snprintf(path, sizeof(path), "/proc/%d/cmdline", (int)pid);
	struct strbuf cl = STRBUF_INIT;
	char *want = xasprintf("--datadir=%s", data);
	bool ours = false;
	if (strbuf_read_file(&cl, path) == 0)
		for (size_t i = 0; i < cl.len && !ours; i += strlen(cl.buf + i) + 1)
			ours = !strcmp(cl.buf + i, want);
	free(want);
	strbuf_release(&cl);
	return ours;
}

/*
 * A daemon killed between starting a mariadbd and recording it leaves the
 * server running unsupervised, holding the data directory's InnoDB locks:
 * the supervised one cannot start beside it.  Stops such an orphan (the
 * one the pid file names, serving this disk, not the supervisor's).
 */
static void stop_orphan(struct addon_ctx *ctx, const struct server_rec *srv)
{
	char *dir = disk_dir(ctx, srv->disk);
	char *run = mariadb_run_dir(dir);
	char *pidfile = xasprintf("%s/mysqld.pid", run);
	char *data = mariadb_data_dir(dir);
	struct strbuf sb = STRBUF_INIT;
	pid_t pid = strbuf_read_file(&sb, pidfile) == 0 ? (pid_t)atoi(sb.buf) : 0;
	strbuf_release(&sb);
	char *id = sv_id(srv->id);
	struct sv_status st = { 0 };
	sv_status(ctx->sv, id, &st);
	if (pid > 1 && pid != st.pid && serves(pid, data)) {
		log_warn("addon server %s: stopping an unsupervised mariadbd (pid %d) left by a "
			 "crash",
			 srv->id, (int)pid);
		kill(pid, SIGTERM);
		for (int i = 0; i < 600 && serves(pid, data); i++)
			usleep(50 * 1000);
		if (serves(pid, data))
			kill(pid, SIGKILL);
		sv_restart(ctx->sv, id);
	}
	free(id);
	free(data);
	free(pidfile);
	free(run);
	free(dir);
}

static void my_resume(struct addon_ctx *ctx)
{
	struct server_rec *srvs;
	size_t n;
	struct miren_error err;
	if (store_server_list(ctx->store, &srvs, &n, &err) != 0) {
		log_error("cannot list addon servers: %s", err.message);
		return;
	}
	for (size_t i = 0; i < n; i++) {
		if (!our_kind(srvs[i].kind))
			continue;
		char *dir = disk_dir(ctx, srvs[i].disk);
		char *data = mariadb_data_dir(dir);
		json_t *sstate = json_loads(srvs[i].state_json, 0, NULL);
		if (fs_is_dir(data)) {
			if (start_server(ctx, &srvs[i], sstate, &err) != 0)
				log_error("addon server %s: %s", srvs[i].id, err.message);
			else
				stop_orphan(ctx, &srvs[i]);
		}
		json_decref(sstate);
		free(data);
		free(dir);
	}
	server_recs_free(srvs, n);
}

/* Between provisionings: a spare copy of the template, so the next small
 * server starts from a rename. */
static void my_idle(struct addon_ctx *ctx)
{
	struct mariadb_install in;
	struct miren_error err;
	if (mariadb_find(&in, NULL) != 0)
		return;
	char *tdir = template_dir(ctx, in.version);
	if (fs_is_dir(tdir) && mariadb_spare_prepare(tdir, ctx->uid, ctx->gid, &err) != 0)
		log_warn("cannot prepare a spare MariaDB %s data directory: %s", in.version,
			 err.message);
	free(tdir);
}

static json_t *my_describe(struct addon_ctx *ctx, struct addon_inst *inst)
{
	const char *server = jstr(inst->state, "server");
	struct server_rec srv;
	if (!*server || store_server_get(ctx->store, server, &srv, NULL) != 0)
		return NULL;
	json_t *o = json_pack("{s:s, s:s, s:i, s:s, s:s}", "disk", srv.disk, "host", srv.address,
			      "port", srv.port, "database", jstr(inst->state, "db"), "user",
			      jstr(inst->state, "user"));
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

const struct addon_def addon_engine_mysql = {
	.name = "miren-mysql",
	.description = "Managed MySQL-compatible database (MariaDB)",
	.variants = variants,
	.n_variants = sizeof(variants) / sizeof(variants[0]),
	.default_variant = "small",
	.versions = my_versions,
	.provision_steps = provision_steps,
	.deprovision_steps = deprovision_steps,
	.env = my_env,
	.resume = my_resume,
	.idle = my_idle,
	.describe = my_describe,
};
