/*
 * The servers of the miren-postgresql provider: making one exist and
 * answer (template, clone, start, wait, rotate), starting and adopting
 * them, the spares prepared between provisionings, and the checks and
 * stray-process handling the framework asks for (see provider.h).
 */
#include "addon/server.h"
#include "addon/disk_ops.h"
#include "addon/postgresql/pg_start.h"
#include "addon/postgresql/provider.h"
#include "util/fault.h"
#include "util/fs.h"
#include "util/io.h"
#include "util/log.h"
#include "util/num.h"
#include "util/paths.h"
#include "util/secret.h"
#include "util/strbuf.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Spare databases kept ready on the shared server: a burst of new tenants
 * takes them while the preparer thread makes more. */
#define SPARE_DATABASES 4

/* templates/pg<major><suffix> ("" or ".tmp") */
static char *template_dir(struct addon_ctx *ctx, int major, const char *suffix)
{
	char name[32];
	snprintf(name, sizeof(name), "pg%d%s", major, suffix);
	return data_paths_template(ctx->paths, name);
}

/* The template password, made once per daemon data directory. */
static enum miren_err template_password(struct addon_ctx *ctx, char **out, struct miren_error *err)
{
	char *fresh = secret_password();
	enum miren_err rc = store_setting_ensure(ctx->store, "pg.template_password", fresh, out,
						 err);
	free(fresh);
	return rc;
}

enum miren_err pgp_template_ready(struct addon_ctx *ctx, const struct pg_install *pg, char **dir,
				  struct miren_error *err)
{
	*dir = NULL;
	char *tpw = NULL;
	enum miren_err rc = template_password(ctx, &tpw, err);
	char *tparent = data_paths_templates(ctx->paths);
	if (!rc && fs_mkdir_p(tparent, 0711) != 0)
		rc = miren_error_set(err, MIREN_EIO, "cannot create '%s': %s", tparent,
				     io_strerror(errno));
	free(tparent);
	char *tdir = template_dir(ctx, pg->major, "");
	if (!rc)
		rc = pg_template_ensure(pg, tdir, tpw, ctx->uid, ctx->gid, err);
	free(tpw);
	if (rc)
		free(tdir);
	else
		*dir = tdir;
	return rc;
}

enum miren_err pgp_start_server(struct addon_ctx *ctx, const struct server_rec *srv,
				struct miren_error *err)
{
	struct pgp_server ss;
	pgp_server_parse(srv, &ss);
	struct pg_install pg;
	enum miren_err rc = pgp_install_for(ss.version, &pg, err);
	pgp_server_release(&ss);
	if (rc)
		return rc;
	char *dir = addon_disk_dir(ctx, srv->disk);
	char **archive = pgp_archive_settings(ctx, srv);
	size_t n = 0;
	while (archive && archive[n])
		n++;
	/* Then what a variant change's copy needs (logical replication out
	 * of the server and into it; see pgp_copy_start). */
	char **settings = xcalloc(n + PGP_REPLICATION_SETTINGS_N + 1, sizeof(*settings));
	for (size_t i = 0; i < n; i++)
		settings[i] = archive[i];
	free(archive);
	for (size_t i = 0; i < PGP_REPLICATION_SETTINGS_N; i++)
		settings[n + i] = xstrdup(pgp_replication_settings[i]);
	char **argv = pg_server_argv(&pg, dir, (const char *const *)settings);
	pg_argv_free(settings);
	struct addon_server_spec spec = {
		.argv = argv,
		.stop_signal = SIGINT, /* fast shutdown: abort transactions, checkpoint */
		.stop_timeout_ms = 30000,
		/* every start: the socket directory back, stale lock files gone */
		.prestart = pg_prestart_run,
		.prestart_arg = pg_prestart_new(dir, ctx->uid, ctx->gid),
		.prestart_free = pg_prestart_free,
	};
	rc = addon_server_start(ctx, srv, &spec, err);
	pg_argv_free(argv);
	free(dir);
	return rc;
}

void pgp_server_cleanup(struct addon_ctx *ctx, const struct server_rec *srv)
{
	char *dir = addon_disk_dir(ctx, srv->disk);
	char *sock = pg_socket_dir(dir);
	fs_remove_tree(sock);
	free(sock);
	free(dir);
}

/*
 * Makes the server of srv exist, run and answer with its own superuser
 * password: template, clone, start (unless already supervised), wait,
 * rotate.  Each part is idempotent.
 */
enum miren_err pgp_ensure_server(struct addon_ctx *ctx, const char *server_id, bool disk_held,
				 struct miren_error *err)
{
	struct server_rec srv;
	enum miren_err rc = store_server_get(ctx->store, server_id, &srv, err);
	if (rc)
		return rc;
	struct pgp_server ss;
	pgp_server_parse(&srv, &ss);
	char *tpw = NULL, *tdir = NULL, *dir = addon_disk_dir(ctx, srv.disk);
	bool locked = false;
	struct pg_install pg;
	rc = pgp_install_for(ss.version, &pg, err);
	if (!rc)
		rc = template_password(ctx, &tpw, err);
	if (rc)
		goto out;
	/* A server that has run for a while with its own password is ready:
	 * the next tenant only needs its connection. */
	struct sv_status st;
	bool running = addon_server_supervised(ctx, srv.id, &st);
	if (running && st.state == SV_RUNNING && ss.rotated)
		goto out;
	/* Making or starting the server is an operation on its disk: never
	 * under a restore or a backup of it.  Busy is worth a retry. */
	if (!disk_held &&
	    disk_lock(srv.disk, "the start of its server", DISK_LOCK_WAIT_MS, err) != 0) {
		err->code = rc = MIREN_EUNAVAIL;
		goto out;
	}
	locked = !disk_held;
	tdir = template_dir(ctx, pg.major, "");
	char *tparent = data_paths_templates(ctx->paths);
	if (fs_mkdir_p(tparent, 0711) != 0) {
		/* Not retried: it takes a person to repair the data directory. */
		rc = miren_error_set(err, MIREN_ECONFLICT, "cannot create '%s': %s", tparent,
				     io_strerror(errno));
		miren_error_hint(err, "check that the data directory '%s' is writable",
				 ctx->data_dir);
	}
	free(tparent);
	if (!rc && addon_stopping(ctx))
		rc = miren_error_set(err, MIREN_EUNAVAIL, "the daemon stops");
	if (!rc)
		rc = pg_template_ensure(&pg, tdir, tpw, ctx->uid, ctx->gid, err);
	if (!rc)
		rc = addon_disk_ready(ctx, srv.disk, err);
	if (!rc)
		rc = pg_clone(tdir, dir, srv.address, srv.port, ctx->uid, ctx->gid, err);
	if (rc)
		goto out;
	if (!running)
		rc = pgp_start_server(ctx, &srv, err);
	if (!rc)
		fault_point(PG_FAULT("server:started"));
	if (!rc) {
		/* A fresh clone answers to the template's password, a rotated one
		 * to its own: wait for either (a rejection ends a wait at once). */
		rc = pg_wait_ready_or_stop(dir, srv.port, ss.su_password, READY_TIMEOUT_MS,
					   ctx->stopping, err);
		if (rc == MIREN_EPERM)
			rc = pg_wait_ready_or_stop(dir, srv.port, tpw, 2000, ctx->stopping, err);
		if (rc)
			addon_server_log_hint(ctx, srv.id, "FATAL:", err);
	}
	/* Rotated once, the password stays: later tenants skip the step. */
	if (!rc && !ss.rotated) {
		rc = pg_rotate_superuser(dir, srv.port, tpw, ss.su_password, err);
		if (!rc)
			fault_point(PG_FAULT("server:rotated"));
		if (!rc) {
			json_t *o = json_loads(srv.state_json, 0, NULL);
			if (!json_is_object(o)) {
				json_decref(o);
				o = json_object();
			}
			json_object_set_new(o, "rotated", json_true());
			char *sj = json_dumps(o, JSON_COMPACT);
			rc = store_server_update_state(ctx->store, srv.id, sj, err);
			free(sj);
			json_decref(o);
		}
	}
out:
	if (locked)
		disk_unlock(srv.disk);
	free(tpw);
	free(tdir);
	free(dir);
	pgp_server_release(&ss);
	server_rec_release(&srv);
	return rc;
}

/* The pid postmaster.pid of disk_dir names, when that process is a live
 * postgres of this data directory; else 0. */
static pid_t postmaster_of(const char *disk_dir)
{
	char *pidfile = xasprintf("%s/pgdata/postmaster.pid", disk_dir);
	char *pgdata = xasprintf("%s/pgdata", disk_dir);
	struct strbuf sb = STRBUF_INIT;
	pid_t pid = strbuf_read_file(&sb, pidfile) == 0 ? num_pid(sb.buf) : 0;
	strbuf_release(&sb);
	if (pid <= 1 || !pg_process_runs(pid) || !pg_is_postmaster_of(pid, pgdata))
		pid = 0;
	free(pgdata);
	free(pidfile);
	return pid;
}

/* Stops a postmaster: fast shutdown, SIGKILL after wait_ms. */
static void stop_postmaster(pid_t pid, int wait_ms)
{
	kill(pid, SIGINT);
	for (int i = 0; i < wait_ms / 50 && pg_process_runs(pid); i++)
		usleep(50 * 1000);
	if (pg_process_runs(pid))
		kill(pid, SIGKILL);
	for (int i = 0; i < 100 && pg_process_runs(pid); i++)
		usleep(50 * 1000);
}

pid_t pgp_disk_server(struct addon_ctx *ctx, const char *disk_dir, bool stop)
{
	(void)ctx;
	pid_t pid = postmaster_of(disk_dir);
	if (pid && stop)
		stop_postmaster(pid, 30000);
	return pid;
}

/*
 * A daemon killed between starting a postmaster and recording its pid
 * leaves that postmaster running unsupervised, holding the data directory:
 * the supervised one cannot start beside it.  Stops such an orphan (the one
 * postmaster.pid names, running on this disk, not the supervisor's).
 */
static void stop_orphan(struct addon_ctx *ctx, const struct server_rec *srv)
{
	char *dir = addon_disk_dir(ctx, srv->disk);
	pid_t pid = postmaster_of(dir);
	struct sv_status st = { 0 };
	addon_server_supervised(ctx, srv->id, &st);
	if (pid && pid != st.pid) {
		log_warn("addon server %s: stopping an unsupervised postmaster (pid %d) left "
			 "by a crash",
			 srv->id, (int)pid);
		kill(pid, SIGQUIT);
		for (int i = 0; i < 100 && pg_process_runs(pid); i++)
			usleep(50 * 1000);
		if (pg_process_runs(pid))
			kill(pid, SIGKILL);
		char *id = addon_server_sv_id(srv->id);
		sv_restart(ctx->sv, id); /* start ours now, not after the backoff */
		free(id);
	}
	free(dir);
}

/* Starts or adopts srv when its cluster exists, then ends an orphan. */
static enum miren_err resume_one(struct addon_ctx *ctx, const struct server_rec *srv,
				 struct miren_error *err)
{
	char *dir = addon_disk_dir(ctx, srv->disk);
	char *pgdata = fs_join(dir, "pgdata");
	enum miren_err rc = 0;
	if (fs_is_dir(pgdata)) {
		rc = pgp_start_server(ctx, srv, err);
		if (!rc)
			stop_orphan(ctx, srv);
	}
	free(pgdata);
	free(dir);
	return rc;
}

void pgp_resume(struct addon_ctx *ctx)
{
	addon_resume_servers(ctx, PG_ADDON, resume_one);
}

enum miren_err pgp_ready(struct addon_ctx *ctx, const struct server_rec *srv, int timeout_ms,
			 struct miren_error *err)
{
	struct pgp_server ss;
	pgp_server_parse(srv, &ss);
	char *dir = addon_disk_dir(ctx, srv->disk);
	enum miren_err rc = pg_wait_ready_or_stop(dir, srv->port, ss.su_password, timeout_ms,
						  ctx->stopping, err);
	free(dir);
	pgp_server_release(&ss);
	return rc;
}

char *pgp_spare_kind(int major)
{
	return xasprintf("pg%d", major);
}

struct spare_fill {
	const char *template_dir;
	uid_t uid;
	gid_t gid;
};

static enum miren_err fill_spare(const char *dir, void *user, struct miren_error *err)
{
	const struct spare_fill *f = user;
	return pg_spare_fill(f->template_dir, dir, f->uid, f->gid, err);
}

/*
 * Between provisionings: a spare database on each shared server (the next
 * tenant is a rename), and for each template a filled spare disk of each
 * variant's size holding a clone of it (the next server's disk is a
 * rename of that disk, and its cluster a rename inside it).
 */
void pgp_idle(struct addon_ctx *ctx)
{
	struct miren_error err;
	struct server_rec *srvs;
	size_t ns;
	/* The spare database first: it takes a fraction of a clone's time. */
	if (store_server_list(ctx->store, &srvs, &ns, &err) == 0) {
		for (size_t i = 0; i < ns; i++) {
			if (strcmp(srvs[i].engine, PG_ADDON) || strcmp(srvs[i].kind, "shared"))
				continue;
			struct sv_status st;
			bool running = addon_server_supervised(ctx, srvs[i].id, &st) &&
				       (st.state == SV_RUNNING || st.state == SV_STARTING);
			if (!running)
				continue;
			struct pgp_server ss;
			pgp_server_parse(&srvs[i], &ss);
			char *dir = addon_disk_dir(ctx, srvs[i].disk);
			if (pg_spare_db_ensure(dir, srvs[i].port, ss.su_password, SPARE_DATABASES,
					       &err))
				log_warn("shared server %s: cannot prepare a spare database: %s",
					 srvs[i].id, err.message);
			free(dir);
			pgp_server_release(&ss);
		}
		server_recs_free(srvs, ns);
	}
	const struct addon_def *def = addon_find(PG_ADDON);
	struct pg_install inst[8];
	int n = def ? pg_find_installs(inst, 8) : 0;
	for (int i = 0; i < n && !addon_stopping(ctx); i++) {
		char *tdir = template_dir(ctx, inst[i].major, "");
		/* A spare clone beside the template: what daemons before
		 * filled spare disks made. */
		char *legacy = template_dir(ctx, inst[i].major, ".spare");
		fs_remove_tree(legacy);
		free(legacy);
		struct spare_fill f = { tdir, ctx->uid, ctx->gid };
		char *kind = pgp_spare_kind(inst[i].major);
		for (size_t v = 0; v < def->n_variants && fs_is_dir(tdir) && !addon_stopping(ctx);
		     v++)
			if (addon_disk_spare_fill(ctx, kind, def->variants[v].disk_bytes,
						  fill_spare, &f, &err) != 0)
				log_warn("cannot prepare a spare disk with a PostgreSQL %d "
					 "cluster: "
					 "%s",
					 inst[i].major, err.message);
		free(kind);
		free(tdir);
	}
}

/* The stop: ends an initdb a step waits for (see addon_def.interrupt). */
void pgp_interrupt(struct addon_ctx *ctx)
{
	struct pg_install inst[8];
	int n = pg_find_installs(inst, 8);
	for (int i = 0; i < n; i++) {
		char *tmp = template_dir(ctx, inst[i].major, ".tmp");
		if (pg_stop_workers(tmp) > 0)
			log_info("stopping: ended the initdb of %s", tmp);
		free(tmp);
	}
}

/* --- invariants --------------------------------------------------------------- */

static void strs_free(char **s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(s[i]);
	free(s);
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* "a, b, c" of names (to free). */
static char *joined(char **s, size_t n)
{
	struct strbuf sb = STRBUF_INIT;
	for (size_t i = 0; i < n; i++)
		strbuf_addf(&sb, "%s%s", i ? ", " : "", s[i]);
	return strbuf_detach(&sb, NULL);
}

/* Compares what the server holds (have) with its tenants' records (want,
 * sorted here). */
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
	char *h = joined(have, n_have), *w = joined(want, n_want);
	json_array_append_new(v, json_sprintf("shared server %s has the %s [%s], its active "
					      "tenants [%s]",
					      id, what, h, w));
	free(h);
	free(w);
}

/* Each tenant not in the middle of a rotation has exactly one working
 * login: the recorded one may log in, its other one may not. */
static void check_logins(const struct server_rec *srv, const char *dir, const struct pgp_server *ss,
			 const struct addon_inst *tenants, size_t n, json_t *violations)
{
	char **logins;
	size_t n_logins;
	struct miren_error err;
	if (pg_login_roles(dir, srv->port, ss->su_password, &logins, &n_logins, &err) != 0) {
		json_array_append_new(violations,
				      json_sprintf("server %s cannot be asked for its logins: %s",
						   srv->id, err.message));
		return;
	}
	for (size_t i = 0; i < n; i++) {
		const struct pgp_tenant *t = tenants[i].state;
		char alt[64];
		if (*t->role && pg_alt_login(t->role, alt, NULL) == 0)
			addon_logins_check(&t->lg, srv->id, tenants[i].rec.app, t->role, alt,
					   logins, n_logins, violations);
	}
	strs_free(logins, n_logins);
}

/* A shared server holds exactly the databases and roles of its active
 * tenants (a tenant's second login once a rotation made it); every
 * server's tenants have one working login each. */
void pgp_check_server(struct addon_ctx *ctx, const struct server_rec *srv,
		      const struct addon_inst *tenants, size_t n, json_t *violations)
{
	struct pgp_server ss;
	pgp_server_parse(srv, &ss);
	char *dir = addon_disk_dir(ctx, srv->disk);
	if (n > 0) /* (a server with no active tenant may still be starting) */
		check_logins(srv, dir, &ss, tenants, n, violations);
	char **dbs, **roles;
	size_t n_dbs, n_roles;
	struct miren_error err;
	if (strcmp(srv->kind, "shared") != 0) {
		/* (a dedicated server holds its one tenant) */
	} else if (pg_tenant_names(dir, srv->port, ss.su_password, &dbs, &n_dbs, &roles, &n_roles,
				   &err) != 0) {
		json_array_append_new(violations,
				      json_sprintf("shared server %s cannot be asked for its "
						   "tenants: %s",
						   srv->id, err.message));
	} else {
		char **want = xcalloc(2 * n + 1, sizeof(*want));
		char(*alts)[64] = xcalloc(n + 1, sizeof(*alts));
		for (size_t i = 0; i < n; i++)
			want[i] = ((const struct pgp_tenant *)tenants[i].state)->db;
		compare_names(violations, srv->id, "databases", dbs, n_dbs, want, n);
		size_t k = 0;
		for (size_t i = 0; i < n; i++) {
			const struct pgp_tenant *t = tenants[i].state;
			want[k++] = t->role;
			if (pg_alt_login(t->role, alts[i], NULL) == 0 &&
			    addon_logins_want_second(&t->lg, alts[i], roles, n_roles))
				want[k++] = alts[i];
		}
		compare_names(violations, srv->id, "roles", roles, n_roles, want, k);
		free(alts);
		free(want);
		strs_free(dbs, n_dbs);
		strs_free(roles, n_roles);
	}
	/* No copy of a variant change is left (the invariants are checked
	 * only while none is in motion). */
	char **tdbs = xcalloc(n + 1, sizeof(*tdbs));
	for (size_t i = 0; i < n; i++)
		tdbs[i] = ((const struct pgp_tenant *)tenants[i].state)->db;
	pgp_copy_check(ctx, srv, tdbs, n, violations);
	free(tdbs);
	free(dir);
	pgp_server_release(&ss);
}
