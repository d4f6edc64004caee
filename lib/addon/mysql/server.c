/*
 * The servers of the miren-mysql provider: making one exist and answer
 * (template, clone, start, wait, rotate), starting and adopting them, the
 * spare prepared between provisionings, stray servers, the shared
 * server's check, and the backup and restore hooks (see provider.h).
 *
 * Backups: mariadb-backup --backup copies the running server into a
 * directory shaped like the disk (disks/.mysql-backup-<hex>/data), which
 * the framework archives; writers go on meanwhile and the copy holds every
 * transaction committed before the backup ended.  A restore runs
 * mariadb-backup --prepare on the staged copy (its redo log applied, as a
 * crash recovery would) before anything is swapped.
 */
#include "addon/server.h"
#include "addon/disk_ops.h"
#include "addon/mysql/provider.h"
#include "util/fault.h"
#include "util/fs.h"
#include "util/io.h"
#include "util/log.h"
#include "util/num.h"
#include "util/paths.h"
#include "util/secret.h"
#include "util/strbuf.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define BACKUP_PREFIX ".mysql-backup-"

static enum miren_err template_password(struct addon_ctx *ctx, char **out, struct miren_error *err)
{
	char *fresh = secret_password();
	enum miren_err rc = store_setting_ensure(ctx->store, "mysql.template_password", fresh, out,
						 err);
	free(fresh);
	return rc;
}

/* templates/mysql<version><suffix> ("" or ".tmp") */
static char *template_dir(struct addon_ctx *ctx, const char *version, const char *suffix)
{
	char name[64];
	snprintf(name, sizeof(name), "mysql%s%s", version, suffix);
	return data_paths_template(ctx->paths, name);
}

enum miren_err myp_template_ready(struct addon_ctx *ctx, const struct mariadb_install *in,
				  char **dir, struct miren_error *err)
{
	*dir = NULL;
	char *tpw = NULL;
	enum miren_err rc = template_password(ctx, &tpw, err);
	char *tparent = data_paths_templates(ctx->paths);
	if (!rc && fs_mkdir_p(tparent, 0711) != 0)
		rc = miren_error_set(err, MIREN_EIO, "cannot create '%s': %s", tparent,
				     io_strerror(errno));
	free(tparent);
	char *tdir = template_dir(ctx, in->version, "");
	if (!rc)
		rc = mariadb_template_ensure(in, tdir, tpw, ctx->uid, ctx->gid, err);
	if (tpw) {
		explicit_bzero(tpw, strlen(tpw));
		free(tpw);
	}
	if (rc)
		free(tdir);
	else
		*dir = tdir;
	return rc;
}

struct prestart {
	char *disk_dir;
	uid_t uid;
	gid_t gid;
};

static bool serves(pid_t pid, const char *data);

/* Before every start: the run directory (under /run or /tmp, gone after
 * a reboot) back, and a pid file that names no live mariadbd of this data
 * directory removed (mariadbd would write over it, but not over one it
 * cannot write; a stale socket it removes itself). */
static enum miren_err prestart_run(void *arg, struct miren_error *err)
{
	struct prestart *p = arg;
	enum miren_err rc = mariadb_run_dir_ensure(p->disk_dir, p->uid, p->gid, err);
	if (rc != 0)
		return rc;
	char *run = mariadb_run_dir(p->disk_dir);
	char *pidfile = fs_join(run, "mysqld.pid");
	char *data = mariadb_data_dir(p->disk_dir);
	struct strbuf sb = STRBUF_INIT;
	if (strbuf_read_file(&sb, pidfile) == 0) {
		pid_t pid = num_pid(sb.buf);
		if (!(pid > 1 && serves(pid, data))) {
			if (unlink(pidfile) != 0 && errno != ENOENT) {
				rc = miren_error_set(err, MIREN_EIO,
						     "cannot remove the stale pid file %s",
						     pidfile);
				miren_error_detail(err, "%s", io_strerror(errno));
			} else {
				log_info("removed the stale pid file %s (pid %d is no mariadbd of "
					 "%s)",
					 pidfile, (int)pid, data);
			}
		}
	}
	strbuf_release(&sb);
	free(data);
	free(pidfile);
	free(run);
	return rc;
}

static void prestart_free(void *arg)
{
	struct prestart *p = arg;
	if (p)
		free(p->disk_dir);
	free(p);
}

/* Starts (or adopts) srv under the supervisor. */
static enum miren_err start_server(struct addon_ctx *ctx, const struct server_rec *srv,
				   struct miren_error *err)
{
	struct myp_server ss;
	myp_server_parse(srv, &ss);
	struct mariadb_install in;
	enum miren_err rc = myp_install_for(ss.version, &in, err);
	myp_server_release(&ss);
	if (rc)
		return rc;
	char *dir = addon_disk_dir(ctx, srv->disk);
	char **argv = mariadb_server_argv(&in, dir, srv->address, srv->port);
	if (!argv) {
		free(dir);
		return miren_error_set(err, MIREN_EINTERNAL, "server %s has a bad address '%s'",
				       srv->id, srv->address);
	}
	struct prestart *pre = xcalloc(1, sizeof(*pre));
	pre->disk_dir = xstrdup(dir);
	pre->uid = ctx->uid;
	pre->gid = ctx->gid;
	char *env[] = { "LANG=C.UTF-8", "PATH=/usr/sbin:/usr/bin:/bin", "TZ=UTC", NULL };
	struct addon_server_spec spec = {
		.argv = argv,
		.env = env,
		.stop_signal = SIGTERM, /* a clean shutdown */
		.stop_timeout_ms = 60000,
		.prestart = prestart_run,
		.prestart_arg = pre,
		.prestart_free = prestart_free,
	};
	rc = addon_server_start(ctx, srv, &spec, err);
	mariadb_argv_free(argv);
	free(dir);
	return rc;
}

void myp_server_cleanup(struct addon_ctx *ctx, const struct server_rec *srv)
{
	char *dir = addon_disk_dir(ctx, srv->disk);
	char *run = mariadb_run_dir(dir);
	fs_remove_tree(run);
	free(run);
	free(dir);
}

/* Records rotated=true in srv's state. */
static enum miren_err record_rotated(struct addon_ctx *ctx, const struct server_rec *srv,
				     struct miren_error *err)
{
	json_t *o = json_loads(srv->state_json, 0, NULL);
	if (!json_is_object(o)) {
		json_decref(o);
		o = json_object();
	}
	json_object_set_new(o, "rotated", json_true());
	char *sj = json_dumps(o, JSON_COMPACT);
	enum miren_err rc = store_server_update_state(ctx->store, srv->id, sj, err);
	explicit_bzero(sj, strlen(sj));
	free(sj);
	json_decref(o);
	return rc;
}

enum miren_err myp_ensure_server(struct addon_ctx *ctx, const char *server_id, bool disk_held,
				 struct miren_error *err)
{
	struct server_rec srv;
	enum miren_err rc = store_server_get(ctx->store, server_id, &srv, err);
	if (rc)
		return rc;
	struct myp_server ss;
	myp_server_parse(&srv, &ss);
	char *tpw = NULL, *tdir = NULL, *dir = addon_disk_dir(ctx, srv.disk);
	bool locked = false;
	struct mariadb_install in;
	rc = myp_install_for(ss.version, &in, err);
	if (!rc)
		rc = template_password(ctx, &tpw, err);
	if (rc)
		goto out;
	/* A server that runs with its own password is ready: the next tenant
	 * only needs its connection. */
	struct sv_status st;
	bool running = addon_server_supervised(ctx, srv.id, &st);
	if (running && st.state == SV_RUNNING && ss.rotated)
		goto out;
	/* Never under a restore or a backup of the disk; busy is worth a retry. */
	if (!disk_held &&
	    disk_lock(srv.disk, "the start of its server", DISK_LOCK_WAIT_MS, err) != 0) {
		err->code = rc = MIREN_EUNAVAIL;
		goto out;
	}
	locked = !disk_held;
	tdir = template_dir(ctx, in.version, "");
	char *tparent = data_paths_templates(ctx->paths);
	if (fs_mkdir_p(tparent, 0711) != 0) {
		rc = miren_error_set(err, MIREN_ECONFLICT, "cannot create '%s': %s", tparent,
				     io_strerror(errno));
		miren_error_hint(err, "check that the data directory '%s' is writable",
				 ctx->data_dir);
	}
	free(tparent);
	if (!rc && addon_stopping(ctx))
		rc = miren_error_set(err, MIREN_EUNAVAIL, "the daemon stops");
	if (!rc)
		rc = mariadb_template_ensure(&in, tdir, tpw, ctx->uid, ctx->gid, err);
	if (!rc)
		rc = mariadb_clone(tdir, dir, ctx->uid, ctx->gid, err);
	if (rc)
		goto out;
	if (!running)
		rc = start_server(ctx, &srv, err);
	if (!rc)
		fault_point(MY_FAULT("server:started"));
	if (!rc) {
		/* A fresh clone answers to the template's password, a rotated
		 * one to its own: the likely one first, then the other (a crash
		 * may have come between the rotation and its record). */
		const char *first = ss.rotated ? ss.root_password : tpw;
		const char *second = ss.rotated ? tpw : ss.root_password;
		rc = mariadb_wait_ready(dir, first, MYSQL_READY_TIMEOUT_MS, ctx->stopping, err);
		if (rc == MIREN_EPERM)
			rc = mariadb_wait_ready(dir, second, 2000, ctx->stopping, err);
		if (rc)
			addon_server_log_hint(ctx, srv.id, "[ERROR]", err);
	}
	if (!rc && !ss.rotated) {
		rc = mariadb_rotate_root(dir, tpw, ss.root_password, err);
		if (!rc)
			fault_point(MY_FAULT("server:rotated"));
		if (!rc)
			rc = record_rotated(ctx, &srv, err);
	}
out:
	if (locked)
		disk_unlock(srv.disk);
	if (tpw)
		explicit_bzero(tpw, strlen(tpw));
	free(tpw);
	free(tdir);
	free(dir);
	myp_server_release(&ss);
	server_rec_release(&srv);
	return rc;
}

/* ---- stray servers ------------------------------------------------------------ */

/* Is pid a mariadbd serving data (its --datadir argument)? */
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

/* The live mariadbd of disk_dir: the one its pid file names, else any
 * process serving its data directory (a server whose run directory went). */
static pid_t server_of_dir(const char *disk_dir)
{
	char *run = mariadb_run_dir(disk_dir);
	char *pidfile = fs_join(run, "mysqld.pid");
	char *data = mariadb_data_dir(disk_dir);
	struct strbuf sb = STRBUF_INIT;
	pid_t pid = strbuf_read_file(&sb, pidfile) == 0 ? num_pid(sb.buf) : 0;
	strbuf_release(&sb);
	if (pid <= 1 || !serves(pid, data)) {
		pid = 0;
		DIR *d = opendir("/proc");
		struct dirent *de;
		while (d && !pid && (de = readdir(d)) != NULL) {
			pid_t p = num_pid(de->d_name);
			if (p > 1 && serves(p, data))
				pid = p;
		}
		if (d)
			closedir(d);
	}
	free(data);
	free(pidfile);
	free(run);
	return pid;
}

/* A clean shutdown (SIGTERM), SIGKILL after wait_ms. */
static void stop_pid(pid_t pid, const char *data, int wait_ms)
{
	kill(pid, SIGTERM);
	for (int i = 0; i < wait_ms / 50 && serves(pid, data); i++)
		usleep(50 * 1000);
	if (serves(pid, data))
		kill(pid, SIGKILL);
	for (int i = 0; i < 100 && serves(pid, data); i++)
		usleep(50 * 1000);
}

pid_t myp_disk_server(struct addon_ctx *ctx, const char *disk_dir, bool stop)
{
	(void)ctx;
	pid_t pid = server_of_dir(disk_dir);
	if (pid && stop) {
		char *data = mariadb_data_dir(disk_dir);
		stop_pid(pid, data, 60000);
		free(data);
	}
	return pid;
}

/*
 * A daemon killed between starting a mariadbd and recording it leaves the
 * server running unsupervised, holding the data directory's InnoDB locks:
 * the supervised one cannot start beside it.  Stops such an orphan.
 */
static void stop_orphan(struct addon_ctx *ctx, const struct server_rec *srv)
{
	char *dir = addon_disk_dir(ctx, srv->disk);
	pid_t pid = server_of_dir(dir);
	struct sv_status st = { 0 };
	addon_server_supervised(ctx, srv->id, &st);
	if (pid && pid != st.pid) {
		log_warn("addon server %s: stopping an unsupervised mariadbd (pid %d) left by a "
			 "crash",
			 srv->id, (int)pid);
		char *data = mariadb_data_dir(dir);
		stop_pid(pid, data, 60000);
		free(data);
		char *id = addon_server_sv_id(srv->id);
		sv_restart(ctx->sv, id); /* start ours now, not after the backoff */
		free(id);
	}
	free(dir);
}

static enum miren_err resume_one(struct addon_ctx *ctx, const struct server_rec *srv,
				 struct miren_error *err)
{
	char *dir = addon_disk_dir(ctx, srv->disk);
	char *data = mariadb_data_dir(dir);
	enum miren_err rc = 0;
	if (fs_is_dir(data)) {
		rc = start_server(ctx, srv, err);
		if (!rc)
			stop_orphan(ctx, srv);
	}
	free(data);
	free(dir);
	return rc;
}

/* Removes the backup copies a crash left in disks/ (no backup runs while
 * the daemon starts). */
static void remove_backup_leftovers(struct addon_ctx *ctx)
{
	char *root = data_paths_disks(ctx->paths);
	DIR *d = opendir(root);
	struct dirent *de;
	while (d && (de = readdir(d)) != NULL) {
		if (strncmp(de->d_name, BACKUP_PREFIX, strlen(BACKUP_PREFIX)) != 0)
			continue;
		char *path = fs_join(root, de->d_name);
		log_info("removing %s, the copy of a backup a crash interrupted", path);
		fs_remove_tree(path);
		free(path);
	}
	if (d)
		closedir(d);
	free(root);
}

void myp_resume(struct addon_ctx *ctx)
{
	remove_backup_leftovers(ctx);
	addon_resume_servers(ctx, MYSQL_ADDON, resume_one);
}

enum miren_err myp_ready(struct addon_ctx *ctx, const struct server_rec *srv, int timeout_ms,
			 struct miren_error *err)
{
	struct myp_server ss;
	myp_server_parse(srv, &ss);
	char *dir = addon_disk_dir(ctx, srv->disk);
	enum miren_err rc = mariadb_wait_ready(dir, ss.root_password, timeout_ms, ctx->stopping,
					       err);
	free(dir);
	myp_server_release(&ss);
	return rc;
}

/* Between provisionings: a spare copy of the template, so the next small
 * server starts from a rename. */
void myp_idle(struct addon_ctx *ctx)
{
	struct mariadb_install in;
	struct miren_error err;
	if (mariadb_find(&in, NULL) != 0)
		return;
	char *tdir = template_dir(ctx, in.version, "");
	if (fs_is_dir(tdir) && mariadb_spare_prepare(tdir, ctx->uid, ctx->gid, &err) != 0)
		log_warn("cannot prepare a spare MariaDB %s data directory: %s", in.version,
			 err.message);
	free(tdir);
}

/* The stop: ends a mariadb-install-db a step waits for (see
 * addon_def.interrupt); the step fails and the next daemon makes the
 * template again. */
void myp_interrupt(struct addon_ctx *ctx)
{
	struct mariadb_install in;
	if (mariadb_find(&in, NULL) != 0)
		return;
	char *tmp = template_dir(ctx, in.version, ".tmp");
	if (mariadb_stop_workers(tmp) > 0)
		log_info("stopping: ended the mariadb-install-db of %s", tmp);
	free(tmp);
}

/* ---- invariants ----------------------------------------------------------------- */

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Compares what the server holds (have, sorted) with its tenants' records. */
static void compare_names(json_t *v, const char *id, const char *what, char **have, size_t n_have,
			  char **want, size_t n_want)
{
	qsort(want, n_want, sizeof(*want), cmp_str);
	qsort(have, n_have, sizeof(*have), cmp_str);
	bool same = n_have == n_want;
	for (size_t i = 0; same && i < n_have; i++)
		same = !strcmp(have[i], want[i]);
	if (same)
		return;
	struct strbuf h = STRBUF_INIT, w = STRBUF_INIT;
	for (size_t i = 0; i < n_have; i++)
		strbuf_addf(&h, "%s%s", i ? ", " : "", have[i]);
	for (size_t i = 0; i < n_want; i++)
		strbuf_addf(&w, "%s%s", i ? ", " : "", want[i]);
	json_array_append_new(v, json_sprintf("shared server %s has the %s [%s], its active "
					      "tenants [%s]",
					      id, what, h.buf, w.buf));
	strbuf_release(&h);
	strbuf_release(&w);
}

/* Each tenant not in the middle of a rotation has exactly one working
 * user (addon_logins_check). */
static void check_logins(const struct server_rec *srv, const char *dir, const char *root,
			 const struct addon_inst *tenants, size_t n, json_t *violations)
{
	char **logins;
	size_t n_logins;
	struct miren_error err;
	if (mariadb_login_users(dir, root, &logins, &n_logins, &err) != 0) {
		json_array_append_new(violations,
				      json_sprintf("server %s cannot be asked for its users: %s",
						   srv->id, err.message));
		return;
	}
	for (size_t i = 0; i < n; i++) {
		const struct myp_tenant *t = tenants[i].state;
		char alt[65];
		if (*t->user && mariadb_alt_user(t->user, alt, NULL) == 0)
			addon_logins_check(&t->lg, srv->id, tenants[i].rec.app, t->user, alt,
					   logins, n_logins, violations);
	}
	mariadb_names_free(logins, n_logins);
}

/* A shared server holds exactly the databases and users of its tenants
 * (with their second users once a rotation made them); every server's
 * tenants have one working user each. */
void myp_check_server(struct addon_ctx *ctx, const struct server_rec *srv,
		      const struct addon_inst *tenants, size_t n, json_t *violations)
{
	struct myp_server ss;
	myp_server_parse(srv, &ss);
	char *dir = addon_disk_dir(ctx, srv->disk);
	if (n > 0) /* (a server with no active tenant may still be starting) */
		check_logins(srv, dir, ss.root_password, tenants, n, violations);
	char **dbs, **users;
	size_t n_dbs, n_users;
	struct miren_error err;
	if (strcmp(srv->kind, "shared") != 0) {
		/* (a dedicated server holds its one tenant) */
	} else if (mariadb_tenant_names(dir, ss.root_password, &dbs, &n_dbs, &users, &n_users,
					&err)) {
		json_array_append_new(violations,
				      json_sprintf("shared server %s cannot be asked for its "
						   "tenants: %s",
						   srv->id, err.message));
	} else {
		char **want = xcalloc(2 * n + 1, sizeof(*want));
		char(*alts)[65] = xcalloc(n + 1, sizeof(*alts));
		for (size_t i = 0; i < n; i++)
			want[i] = ((const struct myp_tenant *)tenants[i].state)->db;
		compare_names(violations, srv->id, "databases", dbs, n_dbs, want, n);
		size_t k = 0;
		for (size_t i = 0; i < n; i++) {
			const struct myp_tenant *t = tenants[i].state;
			want[k++] = t->user;
			if (mariadb_alt_user(t->user, alts[i], NULL) == 0 &&
			    addon_logins_want_second(&t->lg, alts[i], users, n_users))
				want[k++] = alts[i];
		}
		compare_names(violations, srv->id, "users", users, n_users, want, k);
		free(alts);
		free(want);
		mariadb_names_free(dbs, n_dbs);
		mariadb_names_free(users, n_users);
	}
	free(dir);
	myp_server_release(&ss);
}

/* ---- backup and restore ----------------------------------------------------------- */

bool myp_copy_skip(const char *rel, bool is_dir)
{
	(void)is_dir;
	/* The temporary tablespace (made anew at every start) and a clone's
	 * unfinished copy. */
	return !strcmp(rel, "data/ibtmp1") || !strcmp(rel, "data.tmp") ||
	       !strncmp(rel, "data.tmp/", 9);
}

enum miren_err myp_backup_begin(struct addon_ctx *ctx, const struct server_rec *srv,
				struct addon_backup *b, struct miren_error *err)
{
	struct myp_server ss;
	myp_server_parse(srv, &ss);
	struct mariadb_install in;
	enum miren_err rc = myp_install_for(ss.version, &in, err);
	char *hex = secret_hex(8);
	char *copy = xasprintf(BACKUP_PREFIX "%s", hex);
	char *root = data_paths_disk(ctx->paths, copy);
	free(copy);
	char *target = fs_join(root, "data");
	char *dir = addon_disk_dir(ctx, srv->disk);
	free(hex);
	b->method = "mariadb-backup";
	b->header = json_pack("{s:s}", "mariadb_version", ss.version);
	b->engine = xstrdup(root); /* removed by backup_free */
	if (!rc && mkdir(root, 0711) != 0)
		rc = miren_error_set(err, MIREN_EIO, "cannot create '%s': %s", root,
				     io_strerror(errno));
	if (!rc)
		rc = mariadb_backup(&in, dir, ss.root_password, target, ctx->uid, ctx->gid, err);
	if (!rc) {
		b->root = root;
		root = NULL;
		log_info("disk %s: online backup by mariadb-backup made", srv->disk);
	}
	free(root);
	free(dir);
	free(target);
	myp_server_release(&ss);
	return rc;
}

void myp_backup_free(struct addon_ctx *ctx, struct addon_backup *b)
{
	(void)ctx;
	char *root = b->engine;
	if (!root)
		return;
	fs_remove_tree(root);
	free(root);
	b->engine = NULL;
}

enum miren_err myp_restore_prepare(struct addon_ctx *ctx, const struct server_rec *srv,
				   const json_t *header, const char *staging,
				   struct miren_error *err)
{
	char *data = fs_join(staging, "data");
	char *system = fs_join(data, "mysql");
	char *checkpoints = fs_join(data, "xtrabackup_checkpoints");
	enum miren_err rc = 0;
	if (!fs_is_dir(system)) {
		if (srv)
			rc = miren_error_set(err, MIREN_EINVAL,
					     "the backup holds no MariaDB data directory, and disk "
					     "'%s' belongs to a MariaDB server; nothing was "
					     "changed",
					     srv->disk);
		goto out; /* not a MariaDB disk: nothing to prove */
	}
	const char *have = json_string_value(json_object_get(header, "mariadb_version"));
	struct mariadb_install in;
	if ((rc = mariadb_find(&in, err)))
		goto out;
	if (srv) {
		struct myp_server ss;
		myp_server_parse(srv, &ss);
		if (have && strcmp(have, ss.version) != 0) {
			rc = miren_error_set(err, MIREN_EINVAL,
					     "the backup holds a MariaDB %s data directory and the "
					     "server of disk '%s' runs MariaDB %s; nothing was "
					     "changed",
					     have, srv->disk, ss.version);
		}
		myp_server_release(&ss);
		if (rc)
			goto out;
	}
	if (fs_exists(checkpoints)) {
		/* An online backup: apply its redo log (idempotent). */
		rc = mariadb_backup_prepare(&in, data, ctx->uid, ctx->gid, err);
		if (rc)
			miren_error_hint(err, "nothing was changed");
	}
out:
	free(checkpoints);
	free(system);
	free(data);
	return rc;
}

enum miren_err myp_restore_start(struct addon_ctx *ctx, const struct server_rec *srv,
				 struct miren_error *err)
{
	return myp_ensure_server(ctx, srv->id, true, err);
}

static bool has_tenant(const struct addon_inst *tenants, size_t n, const char *name, bool db)
{
	for (size_t i = 0; i < n; i++) {
		const struct myp_tenant *t = tenants[i].state;
		char alt[65];
		if (!strcmp(db ? t->db : t->user, name) ||
		    (!db && mariadb_alt_user(t->user, alt, NULL) == 0 && !strcmp(alt, name)))
			return true;
	}
	return false;
}

/* Drops database and user `name`; a name no tenant could have (not a
 * mapped app name) is left alone with a warning. */
static enum miren_err drop_stray(const char *dir, const char *root, const char *name,
				 struct miren_error *err)
{
	enum miren_err rc = mariadb_tenant_drop(dir, root, name, name, err);
	if (rc == MIREN_EINVAL) {
		log_warn("leaving '%s' alone on %s: %s", name, dir, err->message);
		miren_error_clear(err);
		rc = 0;
	}
	return rc;
}

/* Every tenant of the server agrees with its record after a restore: its
 * user (with the recorded password and grants) and database exist; a
 * tenant added after the backup gets an empty database; the database and
 * user of a tenant removed since the backup are dropped again (its app's
 * addon was destroyed, and with it its data). */
enum miren_err myp_restore_verify(struct addon_ctx *ctx, const struct server_rec *srv,
				  struct addon_inst *tenants, size_t n, struct miren_error *err)
{
	struct myp_server ss;
	myp_server_parse(srv, &ss);
	char *dir = addon_disk_dir(ctx, srv->disk);
	enum miren_err rc = 0;
	for (size_t i = 0; i < n && !rc; i++) {
		const struct myp_tenant *t = tenants[i].state;
		if (!*t->user)
			continue;
		/* Its user and database as recorded, then its logins: the
		 * recorded one working, the other locked (a backup may be of
		 * before a rotation). */
		rc = mariadb_tenant_create(dir, ss.root_password, t->user, t->db, t->password, err);
		if (!rc && (t->lg.alt || strcmp(t->lg.login, t->user) != 0))
			rc = mariadb_tenant_logins(dir, ss.root_password, t->user, t->db,
						   t->lg.login, t->password, true, err);
	}
	char **dbs = NULL, **users = NULL;
	size_t n_dbs = 0, n_users = 0;
	if (!rc)
		rc = mariadb_tenant_names(dir, ss.root_password, &dbs, &n_dbs, &users, &n_users,
					  err);
	for (size_t i = 0; i < n_dbs && !rc; i++)
		if (!has_tenant(tenants, n, dbs[i], true) && !mariadb_reserved(dbs[i])) {
			log_info("disk %s: dropping database %s of a tenant removed since the "
				 "backup",
				 srv->disk, dbs[i]);
			rc = drop_stray(dir, ss.root_password, dbs[i], err);
		}
	for (size_t i = 0; i < n_users && !rc; i++)
		if (!has_tenant(tenants, n, users[i], false) && !mariadb_reserved(users[i])) {
			log_info("disk %s: dropping user %s of a tenant removed since the backup",
				 srv->disk, users[i]);
			rc = drop_stray(dir, ss.root_password, users[i], err);
		}
	mariadb_names_free(dbs, n_dbs);
	mariadb_names_free(users, n_users);
	free(dir);
	myp_server_release(&ss);
	return rc;
}
