/*
 * Scratch servers of the miren-postgresql provider (the framework's side
 * is lib/addon/scratch.c): a postmaster on a restored disk or on a fresh
 * clone of the template, listening on no address (a unix socket in its
 * private socket directory only), with an hba file of its own that lets
 * in only the daemon's own OS user, as the superuser, by peer
 * authentication: no password is needed (a restored cluster's superuser
 * password is another server's), and no app (the service user) can log
 * in.  The daemon runs the client tools (pg_restore, pg_dump,
 * pg_amcheck) as itself.  WAL archiving is off whatever the copy's
 * configuration says: a scratch server must never write into the
 * archive of the server it was copied from.
 */
#include "addon/scratch.h"
#include "addon/postgresql/pg_internal.h"
#include "addon/postgresql/provider.h"
#include "addon/server.h"
#include "supervise/supervise.h"
#include "util/fs.h"
#include "util/io.h"
#include "util/log.h"
#include "util/strbuf.h"

#include <errno.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define SCRATCH_READY_MS 120000
#define PITR_READY_MS (30 * 60 * 1000)
#define SCRATCH_DB "miren_scratch"
#define HBA_FILE "miren-scratch-hba.conf"
#define IDENT_FILE "miren-scratch-ident.conf"

struct pgs {
	struct pg_install pg;
	char *dir;
	char *sock;
	bool loaded; /* scratch_load made SCRATCH_DB */
};

json_t *pgp_tenant_facts(struct addon_ctx *ctx, struct addon_inst *inst)
{
	(void)ctx;
	const struct pgp_tenant *t = inst->state;
	return json_pack("{s:s, s:s}", "database", t->db, "user", t->role);
}

static enum miren_err install_of(int major, struct pg_install *out, struct miren_error *err)
{
	struct pg_install inst[8];
	int n = pg_find_installs(inst, 8);
	for (int i = 0; i < n; i++)
		if (major < 0 || inst[i].major == major) {
			*out = inst[i];
			return 0;
		}
	if (major < 0)
		return miren_error_set(err, MIREN_EUNAVAIL, "PostgreSQL is not installed");
	miren_error_set(err, MIREN_EINVAL,
			"the backup holds a PostgreSQL %d cluster and this host has no "
			"PostgreSQL %d",
			major, major);
	miren_error_hint(err, "install the Debian package postgresql-%d", major);
	return MIREN_EINVAL;
}

/* The hba and ident files that let in only the daemon's OS user as the
 * superuser, over the socket. */
static enum miren_err write_auth(struct addon_ctx *ctx, const char *dir, struct miren_error *err)
{
	struct passwd *pw = getpwuid(geteuid());
	if (!pw ||
	    strspn(pw->pw_name, "abcdefghijklmnopqrstuvwxyz0123456789_-.") != strlen(pw->pw_name))
		return miren_error_set(err, MIREN_EINTERNAL,
				       "cannot name the daemon's user for the scratch server");
	char *hba_path = fs_join(dir, HBA_FILE);
	char *ident_path = fs_join(dir, IDENT_FILE);
	char *ident = xasprintf("miren %s " PG_SUPERUSER "\n", pw->pw_name);
	enum miren_err rc = pgi_write_owned(hba_path, "local all " PG_SUPERUSER " peer map=miren\n",
					    0600, ctx->uid, ctx->gid, err);
	if (!rc)
		rc = pgi_write_owned(ident_path, ident, 0600, ctx->uid, ctx->gid, err);
	free(ident);
	free(ident_path);
	free(hba_path);
	return rc;
}

enum miren_err pgp_scratch_start(struct addon_ctx *ctx, const json_t *header, const json_t *opts,
				 const char *dir, struct addon_scratch *out,
				 struct miren_error *err)
{
	(void)header;
	out->engine = NULL;
	out->checker = "pg_amcheck";
	struct pgs *p = xcalloc(1, sizeof(*p));
	p->dir = xstrdup(dir);
	p->sock = pg_socket_dir(dir);
	char *pgdata = fs_join(dir, "pgdata");
	char *tdir = NULL;
	char *argv[40] = { 0 };
	char **recovery = NULL;
	size_t n = 0;
	enum miren_err rc = 0;
	const char *target = opts ? addon_jstr(opts, "recovery_target_time") : "";
	if (*target && !header) {
		rc = miren_error_set(err, MIREN_EINVAL,
				     "a point-in-time recovery starts from a base backup");
		goto out;
	}
	if (header) {
		int major = pg_cluster_major(pgdata, err);
		if (major < 0) {
			rc = miren_error_set(err, MIREN_EINVAL,
					     "the backup holds no PostgreSQL cluster");
			goto out;
		}
		rc = install_of(major, &p->pg, err);
	} else {
		rc = install_of(-1, &p->pg, err);
		if (!rc)
			rc = pgp_template_ready(ctx, &p->pg, &tdir, err);
		/* The clone's address and port are overridden below. */
		if (!rc)
			rc = pg_clone(tdir, dir, "127.0.0.1", PG_PORT, ctx->uid, ctx->gid, err);
	}
	/* Point-in-time recovery: the copy replays the server's WAL archive
	 * up to the target, then is promoted (wal.c). */
	if (!rc && *target)
		rc = pgp_recovery_settings(ctx, addon_jstr(opts, "server"), pgdata, target,
					   &recovery, err);
	if (!rc)
		rc = write_auth(ctx, dir, err);
	if (!rc)
		rc = pg_socket_dir_ensure(dir, ctx->uid, ctx->gid, err);
	if (rc)
		goto out;
	argv[n++] = fs_join(p->pg.bindir, "postgres");
	argv[n++] = xstrdup("-D");
	argv[n++] = xstrdup(pgdata);
	argv[n++] = xstrdup("-c");
	argv[n++] = xstrdup("listen_addresses=");
	argv[n++] = xstrdup("-c");
	argv[n++] = xasprintf("port=%d", PG_PORT);
	argv[n++] = xstrdup("-c");
	argv[n++] = xasprintf("unix_socket_directories=%s", p->sock);
	argv[n++] = xstrdup("-c");
	argv[n++] = xasprintf("hba_file=%s/" HBA_FILE, dir);
	argv[n++] = xstrdup("-c");
	argv[n++] = xasprintf("ident_file=%s/" IDENT_FILE, dir);
	argv[n++] = xstrdup("-c");
	argv[n++] = xstrdup("archive_mode=off");
	for (char **r = recovery; r && *r && n + 3 < sizeof(argv) / sizeof(argv[0]); r++) {
		argv[n++] = xstrdup("-c");
		argv[n++] = xstrdup(*r);
	}
	rc = scratch_spawn(ctx, dir, argv, SIGINT, err);
	if (rc)
		goto out;
	/* A recovery replays as much WAL as the target needs: it may take a
	 * while longer than a start. */
	int64_t deadline = io_mono_ms() + (recovery ? PITR_READY_MS : SCRATCH_READY_MS);
	for (;;) {
		rc = pg_wait_ready_or_stop(dir, PG_PORT, "", 1000, ctx->stopping, err);
		if (!rc || io_mono_ms() >= deadline || addon_stopping(ctx))
			break;
		if (scratch_exited(ctx, dir)) {
			rc = miren_error_set(err, MIREN_EINVAL,
					     "the PostgreSQL scratch server does not start");
			break;
		}
	}
	if (rc) {
		char *tail = scratch_log_tail(ctx, dir, 400);
		char line[420];
		pgi_one_line(line, sizeof(line), tail);
		if (*line)
			miren_error_detail(err, "%s", line);
		free(tail);
		scratch_kill(ctx, dir);
	}
out:
	for (size_t i = 0; i < n; i++)
		free(argv[i]);
	pg_argv_free(recovery);
	free(tdir);
	free(pgdata);
	if (rc) {
		fs_remove_tree(p->sock);
		free(p->sock);
		free(p->dir);
		free(p);
	} else {
		out->engine = p;
	}
	return rc;
}

/*
 * Runs a client tool of the scratch server as the daemon, logged in as
 * the superuser over the socket to database db, with the NULL-terminated
 * extra options, stdin in_fd and stdout out_fd (-1: none).  *said gets
 * what the tool said (caller frees; said must not be NULL).  Returns the tool's exit
 * status (-1: not started / timed out).
 */
static int run_tool(struct pgs *p, const char *tool, const char *db, const char *const *extra,
		    int in_fd, int out_fd, char **said)
{
	char *argv[24] = { fs_join(p->pg.bindir, tool) };
	size_t n = 1;
	argv[n++] = xasprintf("--host=%s", p->sock);
	argv[n++] = xasprintf("--port=%d", PG_PORT);
	argv[n++] = xstrdup("--username=" PG_SUPERUSER);
	if (db)
		argv[n++] = xasprintf("--dbname=%s", db);
	for (const char *const *e = extra; *e && n < sizeof(argv) / sizeof(argv[0]) - 1; e++)
		argv[n++] = xstrdup(*e);
	static char appname[] = "PGAPPNAME=" APP_MIREN;
	char *env[] = { "PATH=/usr/bin:/bin",   "LC_ALL=C", "TZ=UTC",
			"PGCONNECT_TIMEOUT=10", appname,    NULL };
	*said = NULL;
	int st = sv_run_fds(argv, env, "/", (uid_t)-1, (gid_t)-1, 0, in_fd, out_fd, said);
	for (size_t i = 0; i < n; i++)
		free(argv[i]);
	return st;
}

/* err from a failed tool run: "<what>: <its complaint>". */
static enum miren_err tool_error(enum miren_err code, const char *what, const char *tool, int st,
				 const char *said, struct miren_error *err)
{
	const char *why = said ? strstr(said, "error: ") : NULL;
	char detail[600];
	if (why)
		pgi_one_line(detail, sizeof(detail), why + strlen("error: "));
	else
		pgi_output_tail(detail, sizeof(detail), said, 560);
	if (said && strstr(said, "connection to server"))
		code = MIREN_EUNAVAIL;
	miren_error_set(err, code, "%s: %s", what, detail);
	miren_error_detail(err, "%s exited with %d", tool, st);
	return code;
}

enum miren_err pgp_scratch_load(struct addon_ctx *ctx, struct addon_scratch *s, int fd,
				struct miren_error *err)
{
	(void)ctx;
	struct pgs *p = s->engine;
	char why[400];
	PGconn *c = pgi_su_connect(p->dir, PG_PORT, "", "postgres", APP_MIREN, 10, why, sizeof(why),
				   NULL);
	if (!c)
		return miren_error_set(err, MIREN_EUNAVAIL, "cannot reach the scratch server: %s",
				       why);
	static const char *const exists[] = { "42P04", NULL };
	enum miren_err rc = pgi_run_sql(c, "CREATE DATABASE " SCRATCH_DB, exists,
					"create the scratch database", NULL, err);
	PQfinish(c);
	if (rc)
		return rc;
	p->loaded = true;
	static const char *const extra[] = { "--no-owner", "--no-privileges",
					     "--single-transaction", "--exit-on-error", NULL };
	char *said = NULL;
	int st = run_tool(p, "pg_restore", SCRATCH_DB, extra, fd, -1, &said);
	if (st != 0)
		rc = tool_error(MIREN_EINVAL, "the dump does not load", "pg_restore", st, said,
				err);
	free(said);
	return rc;
}

enum miren_err pgp_scratch_dump(struct addon_ctx *ctx, struct addon_scratch *s,
				const json_t *tenant, int fd, struct miren_error *err)
{
	(void)ctx;
	struct pgs *p = s->engine;
	const char *db = tenant ? addon_jstr(tenant, "database") : SCRATCH_DB;
	size_t len = db ? strlen(db) : 0;
	if (!len || len > 63 || strspn(db, "abcdefghijklmnopqrstuvwxyz0123456789_") != len)
		return miren_error_set(err, MIREN_EINVAL,
				       "the backup names no tenant database to read (got '%.64s')",
				       db ? db : "");
	static const char *const extra[] = { "--format=custom", NULL };
	char *said = NULL;
	int st = run_tool(p, "pg_dump", db, extra, -1, fd, &said);
	enum miren_err rc = 0;
	if (st != 0) {
		char *what = xasprintf("cannot read database %s out of the backup", db);
		rc = tool_error(MIREN_EIO, what, "pg_dump", st, said, err);
		if (said && strstr(said, "does not exist"))
			err->code = rc = MIREN_ENOTFOUND;
		free(what);
	}
	free(said);
	return rc;
}

enum miren_err pgp_scratch_check(struct addon_ctx *ctx, struct addon_scratch *s,
				 struct miren_error *err)
{
	(void)ctx;
	struct pgs *p = s->engine;
	/* Every database, its tables and their btree indexes; amcheck is
	 * installed where it is missing (in the copy only). */
	static const char *const extra[] = { "--all", "--install-missing", "--heapallindexed",
					     NULL };
	char *said = NULL;
	int st = run_tool(p, "pg_amcheck", NULL, extra, -1, -1, &said);
	enum miren_err rc = 0;
	if (st != 0) {
		char line[600];
		pgi_output_tail(line, sizeof(line), said, 560);
		if (said && strstr(said, "connection to server")) {
			rc = miren_error_set(err, MIREN_EUNAVAIL,
					     "cannot run pg_amcheck on the scratch server: %s",
					     line);
		} else {
			/* Its first complaint: where ("heap table \"db.s.t\", block
			 * 0, offset 1:"), then what, on the next line. */
			const char *first = said ? said : "";
			size_t l = strcspn(first, "\n");
			const char *next = first[l] ? first + l + 1 : first + l;
			char two[400], head[300];
			snprintf(two, sizeof(two), "%.*s %.*s", (int)(l < 190 ? l : 190), first,
				 (int)strcspn(next, "\n"), next);
			pgi_one_line(head, sizeof(head), two);
			rc = miren_error_set(err, MIREN_EINVAL, "the data is damaged: %s", head);
			miren_error_detail(err, "pg_amcheck exited with %d: %s", st, line);
		}
	}
	free(said);
	return rc;
}

void pgp_scratch_stop(struct addon_ctx *ctx, struct addon_scratch *s)
{
	struct pgs *p = s->engine;
	if (!p)
		return;
	scratch_kill(ctx, p->dir);
	pgp_disk_server(ctx, p->dir, true);
	fs_remove_tree(p->sock);
	free(p->sock);
	free(p->dir);
	free(p);
	s->engine = NULL;
}
