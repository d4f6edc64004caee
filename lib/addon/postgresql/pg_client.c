/*
 * One tenant as its own client sees it: the logical dump and load of its
 * database (pg_dump / pg_restore, logged in as the tenant), the psql
 * command that connects as it, and what the server says of its database;
 * see pg.h and pg_internal.h.
 *
 * The tools run under sv_run_fds (no shell) with an environment of their
 * own: the password travels in PGPASSWORD, never in argv (anyone may read
 * a command line in /proc; a process's environment only its own user and
 * root).  Names go on the command line as they are, so they are checked
 * to be an ident's (pg_ident_for_app: [a-z0-9_]) first.
 */
#include "addon/postgresql/pg_internal.h"

#include "supervise/supervise.h"
#include "util/err.h"
#include "util/io.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* pg_restore waits this long for a lock another session holds. */
#define PG_LOAD_LOCK_TIMEOUT "30s"

/* 1..63 of [a-z0-9_]: what pg_ident_for_app gives. */
static enum miren_err check_ident(const char *name, const char *what, struct miren_error *err)
{
	size_t n = name ? strlen(name) : 0;
	if (n == 0 || n > 63 || strspn(name, "abcdefghijklmnopqrstuvwxyz0123456789_") != n)
		return miren_error_set(err, MIREN_EINVAL,
				       "%s name '%.64s' is not a tenant's (1..63 of a-z, 0-9 and "
				       "'_')",
				       what, name ? name : "");
	return 0;
}

static enum miren_err check_client(const struct pg_client *t, struct miren_error *err)
{
	enum miren_err rc;
	if ((rc = check_ident(t->role, "role", err)) || (rc = check_ident(t->db, "database", err)))
		return rc;
	unsigned char addr[16];
	if (!t->host ||
	    (inet_pton(AF_INET, t->host, addr) != 1 && inet_pton(AF_INET6, t->host, addr) != 1))
		return miren_error_set(err, MIREN_EINVAL, "host '%s' is not a numeric address",
				       t->host ? t->host : "");
	if (t->port <= 0 || t->port > 65535)
		return miren_error_set(err, MIREN_EINVAL, "port %d is out of range 1..65535",
				       t->port);
	return pgi_check_password(t->role, t->password, err);
}

/* bindir/tool when it can be run, else NULL with err (and a hint). */
static char *tool_path(const struct pg_install *pg, const char *tool, struct miren_error *err)
{
	char *path = xasprintf("%s/%s", pg->bindir, tool);
	if (access(path, X_OK) == 0)
		return path;
	miren_error_set(err, MIREN_EUNAVAIL, "%s is not installed (no %s)", tool, path);
	miren_error_hint(err, "install the Debian package postgresql-client-%d", pg->major);
	free(path);
	return NULL;
}

/* The connection options of a tool: --host= --port= --username= --dbname=
 * appended to argv at *n (4 strings, malloc'd). */
static void add_login(char **argv, size_t *n, const struct pg_client *t)
{
	argv[(*n)++] = xasprintf("--host=%s", t->host);
	argv[(*n)++] = xasprintf("--port=%d", t->port);
	argv[(*n)++] = xasprintf("--username=%s", t->role);
	argv[(*n)++] = xasprintf("--dbname=%s", t->db);
}

/*
 * Runs tool (in pg's bindir) with the tenant's login, the NULL-terminated
 * extra options, stdin in_fd and stdout out_fd (-1: none), as uid/gid.
 * Returns 0, or fills err: MIREN_EUNAVAIL when the tool could not reach
 * the server, else fail_code, each with message "cannot <what>", the
 * tool's complaint as the detail and, unless it is a connection's, hint.
 */
static enum miren_err run_tool(const struct pg_install *pg, const char *tool,
			       const struct pg_client *t, const char *const *extra,
			       const char *options, int in_fd, int out_fd, uid_t uid, gid_t gid,
			       enum miren_err fail_code, const char *what, const char *hint,
			       struct miren_error *err)
{
	enum miren_err rc = check_client(t, err);
	if (rc)
		return rc;
	if (in_fd < 0 && out_fd < 0)
		return miren_error_set(err, MIREN_EINVAL, "%s needs a file descriptor", tool);
	char *path = tool_path(pg, tool, err);
	if (!path)
		return MIREN_EUNAVAIL;
	char *argv[24] = { path };
	size_t n = 1;
	add_login(argv, &n, t);
	for (const char *const *e = extra; *e && n < sizeof(argv) / sizeof(argv[0]) - 1; e++)
		argv[n++] = xstrdup(*e);
	char *appname = xasprintf("PGAPPNAME=miren-%s", tool);
	char *password = xasprintf("PGPASSWORD=%s", t->password);
	char *pgoptions = options ? xasprintf("PGOPTIONS=%s", options) : NULL;
	char *env[] = { "PATH=/usr/bin:/bin",
			"LC_ALL=C",
			"TZ=UTC",
			"PGCONNECT_TIMEOUT=10",
			"PGSSLMODE=disable",
			"PGGSSENCMODE=disable",
			appname,
			password,
			pgoptions,
			NULL };
	char *out = NULL;
	int st = sv_run_fds(argv, env, "/", uid, gid, 0, in_fd, out_fd, &out);
	if (st != 0) {
		/* From the line that says what went wrong ("pg_restore: error:
		 * ..."), else the end of what it said. */
		const char *why = strstr(out, "error: ");
		char detail[600];
		if (why)
			pgi_one_line(detail, sizeof(detail), why + strlen("error: "));
		else
			pgi_output_tail(detail, sizeof(detail), out, 560);
		bool unreachable = strstr(out, "connection to server") != NULL;
		rc = miren_error_set(err, unreachable ? MIREN_EUNAVAIL : fail_code, "cannot %s",
				     what);
		miren_error_detail(err, "%s (%s exited with %d)", detail, tool, st);
		if (!unreachable && hint)
			miren_error_hint(err, "%s", hint);
	}
	free(out);
	pgi_free_secret(password);
	free(appname);
	free(pgoptions);
	for (size_t i = 0; i < n; i++)
		free(argv[i]);
	return rc;
}

enum miren_err pg_tenant_dump(const struct pg_install *pg, const struct pg_client *t, uid_t uid,
			      gid_t gid, int fd, struct miren_error *err)
{
	static const char *const extra[] = { "--format=custom", "--no-password", NULL };
	char *what = xasprintf("dump database %s", t->db ? t->db : "");
	enum miren_err rc = run_tool(pg, "pg_dump", t, extra, NULL, -1, fd, uid, gid, MIREN_EIO,
				     what, NULL, err);
	free(what);
	return rc;
}

enum miren_err pg_tenant_dump_schema(const struct pg_install *pg, const struct pg_client *t,
				     uid_t uid, gid_t gid, int fd, struct miren_error *err)
{
	static const char *const extra[] = { "--format=custom", "--no-password", "--schema-only",
					     NULL };
	char *what = xasprintf("dump the schema of database %s", t->db ? t->db : "");
	enum miren_err rc = run_tool(pg, "pg_dump", t, extra, NULL, -1, fd, uid, gid, MIREN_EIO,
				     what, NULL, err);
	free(what);
	return rc;
}

/*
 * A load replaces: before the dump's objects, in the same transaction, the
 * tenant's own schemas go and public comes back empty, as a fresh
 * database (PostgreSQL 15) has it, so that afterwards the database holds
 * exactly what the dump holds.  The tenant owns its database, so it may
 * drop public (owned by pg_database_owner) and make it again.
 */
static const char load_begin[] =
	"BEGIN;\n"
	"DO $miren$DECLARE r record; BEGIN\n"
	"  FOR r IN SELECT nspname FROM pg_namespace WHERE nspowner = current_user::regrole LOOP\n"
	"    EXECUTE format('DROP SCHEMA %I CASCADE', r.nspname);\n"
	"  END LOOP;\n"
	"END$miren$;\n"
	"DROP SCHEMA IF EXISTS public CASCADE;\n"
	"CREATE SCHEMA public AUTHORIZATION pg_database_owner;\n"
	"GRANT USAGE ON SCHEMA public TO PUBLIC;\n"
	"COMMENT ON SCHEMA public IS 'standard public schema';\n";

/* pg_restore turning the dump on in_fd into SQL on out_fd, framed by
 * load_begin and (only when it succeeded) COMMIT: a dump that fails to
 * convert midway ends the script without COMMIT, so nothing is kept. */
struct load_convert {
	const struct pg_install *pg;
	const char *what, *hint; /* for the error, as run_tool's */
	int in_fd, out_fd;
	uid_t uid;
	gid_t gid;
	enum miren_err rc;
	struct miren_error err;
};

static void *load_convert_run(void *arg)
{
	struct load_convert *c = arg;
	char *path = tool_path(c->pg, "pg_restore", &c->err);
	if (!path) {
		c->rc = MIREN_EUNAVAIL;
	} else if (io_write_all(c->out_fd, load_begin, strlen(load_begin)) != 0) {
		c->rc = miren_error_set(&c->err, MIREN_EIO, "cannot hand the dump to psql");
	} else {
		char *argv[] = { path, "--no-owner", "--no-privileges", "--file=-", NULL };
		char *env[] = { "PATH=/usr/bin:/bin", "LC_ALL=C", "TZ=UTC", NULL };
		char *out = NULL;
		int st = sv_run_fds(argv, env, "/", c->uid, c->gid, 0, c->in_fd, c->out_fd, &out);
		if (st != 0) {
			const char *why = strstr(out ? out : "", "error: ");
			char detail[600];
			if (why)
				pgi_one_line(detail, sizeof(detail), why + strlen("error: "));
			else
				pgi_output_tail(detail, sizeof(detail), out ? out : "", 560);
			c->rc = miren_error_set(&c->err, MIREN_EINVAL, "cannot %s", c->what);
			miren_error_detail(&c->err, "%s (pg_restore exited with %d)", detail, st);
			miren_error_hint(&c->err, "%s", c->hint);
		} else if (io_write_all(c->out_fd, "COMMIT;\n", 8) != 0) {
			c->rc = miren_error_set(&c->err, MIREN_EIO, "cannot hand the dump to psql");
		}
		free(out);
	}
	free(path);
	close(c->out_fd);
	return NULL;
}

enum miren_err pg_tenant_load(const struct pg_install *pg, const struct pg_client *t, uid_t uid,
			      gid_t gid, int fd, struct miren_error *err)
{
	static const char *const extra[] = { "--no-password",         "--no-psqlrc", "--quiet",
					     "--set=ON_ERROR_STOP=1", "--file=-",    NULL };
	enum miren_err rc = check_client(t, err);
	if (rc)
		return rc;
	static const char hint[] =
		"the database is unchanged (the load is one transaction); give a dump in "
		"PostgreSQL's custom format (pg_dump -Fc) whose objects a database owner may make";
	int fds[2];
	if (pipe2(fds, O_CLOEXEC) != 0)
		return miren_error_set(err, MIREN_EIO, "cannot make a pipe: %s", strerror(errno));
	char *what = xasprintf("load the dump into database %s", t->db ? t->db : "");
	struct load_convert c = { .pg = pg,
				  .what = what,
				  .hint = hint,
				  .in_fd = fd,
				  .out_fd = fds[1],
				  .uid = uid,
				  .gid = gid };
	miren_error_clear(&c.err);
	pthread_t th;
	if (pthread_create(&th, NULL, load_convert_run, &c) != 0) {
		close(fds[0]);
		close(fds[1]);
		free(what);
		return miren_error_set(err, MIREN_EIO, "cannot start reading the dump");
	}
	rc = run_tool(pg, "psql", t, extra, "-c lock_timeout=" PG_LOAD_LOCK_TIMEOUT, fds[0], -1,
		      uid, gid, MIREN_EINVAL, what, hint, err);
	/* psql gone (done, or stopped at an error): a conversion still
	 * writing gets EPIPE and ends. */
	close(fds[0]);
	pthread_join(th, NULL);
	free(what);
	if (c.rc && (!rc || rc == MIREN_EINVAL)) {
		/* psql saw no COMMIT: the transaction was rolled back. */
		*err = c.err;
		rc = c.rc;
	}
	return rc;
}

enum miren_err pg_client_command(const struct pg_install *pg, const struct pg_client *t,
				 char ***argv_out, char ***env_out, struct miren_error *err)
{
	*argv_out = *env_out = NULL;
	enum miren_err rc = check_client(t, err);
	if (rc)
		return rc;
	char *path = tool_path(pg, "psql", err);
	if (!path)
		return MIREN_EUNAVAIL;
	char **argv = xcalloc(6, sizeof(*argv));
	size_t n = 0;
	argv[n++] = path;
	add_login(argv, &n, t);
	char **env = xcalloc(2, sizeof(*env));
	env[0] = xasprintf("PGPASSWORD=%s", t->password);
	*argv_out = argv;
	*env_out = env;
	return 0;
}

enum miren_err pg_tenant_info(const char *disk_dir, int port, const char *su_password,
			      const char *role, const char *db, struct pg_tenant_info *out,
			      struct miren_error *err)
{
	memset(out, 0, sizeof(*out));
	enum miren_err rc;
	if ((rc = check_ident(role, "role", err)) || (rc = check_ident(db, "database", err)))
		return rc;
	PGconn *c = pgi_tenant_connect(disk_dir, port, su_password, "postgres", APP_MIREN, err);
	if (!c)
		return MIREN_EUNAVAIL;
	/* What the tenant may open: the slots left to non-superusers, less
	 * when its role or its database is limited (-1: no limit). */
	static const char sql[] =
		"SELECT split_part(current_setting('server_version'), ' ', 1),"
		" pg_database_size(d.oid),"
		" (SELECT count(*) FROM pg_stat_activity a WHERE a.datid = d.oid),"
		" least(current_setting('max_connections')::int"
		"       - current_setting('superuser_reserved_connections')::int,"
		"       nullif(r.rolconnlimit, -1), nullif(d.datconnlimit, -1)),"
		" extract(epoch FROM now() - pg_postmaster_start_time())::bigint"
		" FROM pg_database d, pg_roles r WHERE d.datname = $1 AND r.rolname = $2";
	const char *params[] = { db, role };
	PGresult *r = PQexecParams(c, sql, 2, NULL, params, NULL, NULL, 0);
	if (!r || PQresultStatus(r) != PGRES_TUPLES_OK || PQnfields(r) != 5) {
		char msg[360];
		pgi_one_line(msg, sizeof(msg), PQerrorMessage(c));
		rc = miren_error_set(err, pgi_sql_code(c, PQresultErrorField(r, PG_DIAG_SQLSTATE)),
				     "cannot ask the server about database %s", db);
		miren_error_detail(err, "%s", msg);
	} else if (PQntuples(r) != 1) {
		rc = miren_error_set(err, MIREN_ENOTFOUND,
				     "the server has no database %s with a role %s", db, role);
	} else {
		snprintf(out->version, sizeof(out->version), "%s", PQgetvalue(r, 0, 0));
		out->size_bytes = strtoll(PQgetvalue(r, 0, 1), NULL, 10);
		out->connections = (int)strtol(PQgetvalue(r, 0, 2), NULL, 10);
		out->max_connections = (int)strtol(PQgetvalue(r, 0, 3), NULL, 10);
		out->uptime_s = strtoll(PQgetvalue(r, 0, 4), NULL, 10);
	}
	PQclear(r);
	PQfinish(c);
	return rc;
}
