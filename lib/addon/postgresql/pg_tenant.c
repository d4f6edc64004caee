/*
 * Tenants: a role and a database per app, isolated; their names; the
 * shared server's spare databases; what a server holds; see pg.h and
 * pg_internal.h.
 */
#include "addon/postgresql/pg_internal.h"

#include "supervise/supervise.h"
#include "util/err.h"
#include "util/fault.h"
#include "util/fs.h"
#include "util/sha256.h"
#include "util/strbuf.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <libpq-fe.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

/* ---- tenants ------------------------------------------------------------ */

static enum miren_err query_column(PGconn *c, const char *sql, const char *what, char ***out,
				   size_t *n, struct miren_error *err);

static enum miren_err check_name(const char *name, const char *what, struct miren_error *err)
{
	if (!name || !*name || strlen(name) > 63)
		return miren_error_set(err, MIREN_EINVAL, "%s name must be 1..63 bytes", what);
	for (const char *p = name; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			return miren_error_set(err, MIREN_EINVAL, "%s name has a control character",
					       what);
	return 0;
}

/*
 * The names PostgreSQL (or miren) keeps for itself: one list for the refusal
 * in check_tenant and for the mapping in pg_ident_for_app, so that no app
 * name maps to a name refused here.  Roles: CREATE ROLE refuses "public" and
 * "none" even quoted; current_user, current_role and session_user name the
 * session's role wherever a role is written unquoted (GRANT ... TO, OWNER
 * TO), so a tenant never gets them; "pg_..." is reserved; "postgres" is our
 * superuser.  Databases: postgres, the templates and our spares.  Every other
 * keyword (user, table, select, all...) is an ordinary name here, as every
 * statement quotes its identifiers (test_pg creates a tenant for each).
 */
static bool role_reserved(const char *role)
{
	static const char *const bad[] = { "postgres",     "public",       "none", "current_user",
					   "current_role", "session_user", NULL };
	for (const char *const *p = bad; *p; p++)
		if (!strcmp(role, *p))
			return true;
	return !strncmp(role, "pg_", 3);
}

static bool db_reserved(const char *db)
{
	return !strcmp(db, "postgres") || !strcmp(db, "template0") || !strcmp(db, "template1") ||
	       !strncmp(db, PG_SPARE_DB, strlen(PG_SPARE_DB));
}

static enum miren_err check_role(const char *role, struct miren_error *err)
{
	enum miren_err rc = check_name(role, "role", err);
	if (!rc && role_reserved(role))
		rc = miren_error_set(err, MIREN_EINVAL, "role name '%s' is reserved", role);
	return rc;
}

static enum miren_err check_tenant(const char *role, const char *db, struct miren_error *err)
{
	enum miren_err rc;
	if ((rc = check_role(role, err)) || (rc = check_name(db, "database", err)))
		return rc;
	if (db_reserved(db))
		return miren_error_set(err, MIREN_EINVAL, "database name '%s' is reserved", db);
	return 0;
}

/* Connects as superuser for a tenant step (application_name appname);
 * MIREN_EUNAVAIL with err. */
PGconn *pgi_tenant_connect(const char *disk_dir, int port, const char *su_password,
			   const char *dbname, const char *appname, struct miren_error *err)
{
	char why[400] = "";
	PGconn *c = pgi_su_connect(disk_dir, port, su_password, dbname, appname, 10, why,
				   sizeof(why), NULL);
	if (!c)
		miren_error_set(err, MIREN_EUNAVAIL,
				"cannot connect to the postgresql server of %s (port %d) as "
				"superuser: %s",
				disk_dir, port, why);
	return c;
}

/*
 * Ends the sessions of appname on the server other than c's own, waiting
 * up to 10 s for each: the steps that use appname run one at a time, so
 * another such session is a leftover of a dead daemon, perhaps still
 * running a CREATE DATABASE or a rename whose outcome the next statement
 * must see.  An ended session's transaction is rolled back.  Returns 0, or
 * MIREN_EUNAVAIL with err when one did not end in time.
 */
static enum miren_err end_leftovers(PGconn *c, const char *appname, struct miren_error *err)
{
	const char *params[] = { appname };
	PGresult *r =
		PQexecParams(c,
			     "SELECT count(*) FILTER (WHERE NOT pg_terminate_backend(pid, 10000))"
			     " FROM pg_stat_activity"
			     " WHERE application_name = $1 AND pid <> pg_backend_pid()",
			     1, NULL, params, NULL, NULL, 0);
	enum miren_err rc = 0;
	if (!r || PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1) {
		char msg[300];
		pgi_one_line(msg, sizeof(msg), PQerrorMessage(c));
		rc = miren_error_set(err, MIREN_EUNAVAIL,
				     "cannot end the sessions a stopped miren left: %s", msg);
	} else if (strcmp(PQgetvalue(r, 0, 0), "0") != 0) {
		rc = miren_error_set(err, MIREN_EUNAVAIL,
				     "%s sessions a stopped miren left are still running after 10 "
				     "s",
				     PQgetvalue(r, 0, 0));
	}
	PQclear(r);
	return rc;
}

/* The one value of a one-row, one-column query, or NULL with err. */
char *pgi_query_value(PGconn *c, const char *sql, const char *what, struct miren_error *err)
{
	PGresult *r = PQexec(c, sql);
	char *out = NULL;
	if (r && PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1 && PQnfields(r) >= 1)
		out = xstrdup(PQgetvalue(r, 0, 0));
	else {
		char msg[360];
		pgi_one_line(msg, sizeof(msg), PQerrorMessage(c));
		miren_error_set(err, MIREN_EUNAVAIL, "cannot %s: %s", what, msg);
	}
	PQclear(r);
	return out;
}

enum miren_err pg_tenant_create(const char *disk_dir, int port, const char *su_password,
				const char *role, const char *db, const char *password,
				struct miren_error *err)
{
	/* 23505: the same name inserted by a concurrent session (a leftover
	 * that committed after end_leftovers looked): the same as existing. */
	static const char *const dup_role[] = { "42710", "23505", NULL };
	static const char *const dup_db[] = { "42P04", "23505", NULL };
	enum miren_err rc;
	if ((rc = check_tenant(role, db, err)) || (rc = pgi_check_password(role, password, err)))
		return rc;
	PGconn *c = pgi_tenant_connect(disk_dir, port, su_password, "postgres", APP_TENANT, err);
	if (!c)
		return MIREN_EUNAVAIL;
	char *qrole = NULL, *qdb = NULL, *lit = NULL, *sql = NULL;
	char state[6];

	if ((rc = end_leftovers(c, APP_TENANT, err)))
		goto out;
	if (!(qrole = pgi_quote_ident(c, role, err)) || !(qdb = pgi_quote_ident(c, db, err)) ||
	    !(lit = pgi_verifier_literal(c, password, role, err))) {
		rc = err ? err->code : MIREN_EINTERNAL;
		goto out;
	}
	static const char attrs[] =
		"LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS";
	sql = xasprintf("CREATE ROLE %s %s PASSWORD %s", qrole, attrs, lit);
	rc = pgi_run_sql(c, sql, NULL, "create the role", state, err);
	pgi_free_secret(sql);
	sql = NULL;
	if (rc && (!strcmp(state, dup_role[0]) || !strcmp(state, dup_role[1]))) {
		sql = xasprintf("ALTER ROLE %s %s PASSWORD %s", qrole, attrs, lit);
		rc = pgi_run_sql(c, sql, NULL, "update the existing role", NULL, err);
		pgi_free_secret(sql);
		sql = NULL;
	}
	if (rc)
		goto out;
	fault_point(PG_FAULT("tenant:role"));

	/* A spare database made ahead of time (pg_spare_db_ensure) becomes the
	 * tenant's by a rename, which is instant; CREATE DATABASE copies
	 * template1 and syncs it.  Without a spare: create one. */
	char *spare = pgi_query_value(c,
				      "SELECT coalesce(min(datname), '') FROM pg_database"
				      " WHERE datname LIKE '" PG_SPARE_DB "\\_%'",
				      "look for a spare database", NULL);
	rc = MIREN_ENOTFOUND;
	if (spare && *spare) {
		char *qspare = pgi_quote_ident(c, spare, NULL);
		sql = qspare ? xasprintf("ALTER DATABASE %s RENAME TO %s", qspare, qdb) : NULL;
		rc = sql ? pgi_run_sql_at(c, sql, NULL, "take the spare database", state,
					  PG_FAULT("tenant:database"), NULL)
			 : MIREN_EINTERNAL;
		PQfreemem(qspare);
		free(sql);
		sql = NULL;
	}
	free(spare);
	if (rc == 0) {
		sql = xasprintf("ALTER DATABASE %s OWNER TO %s", qdb, qrole);
		rc = pgi_run_sql(c, sql, NULL, "give the database to its role", NULL, err);
		free(sql);
		sql = NULL;
		if (rc)
			goto out;
	} else {
		/* CREATE DATABASE cannot run in a transaction block: alone. */
		sql = xasprintf("CREATE DATABASE %s OWNER %s", qdb, qrole);
		rc = pgi_run_sql_at(c, sql, NULL, "create the database", state,
				    PG_FAULT("tenant:database"), err);
		free(sql);
		sql = NULL;
	}
	if (rc && (!strcmp(state, dup_db[0]) || !strcmp(state, dup_db[1]))) {
		sql = xasprintf("ALTER DATABASE %s OWNER TO %s", qdb, qrole);
		rc = pgi_run_sql(c, sql, NULL, "set the owner of the existing database", NULL, err);
		free(sql);
		sql = NULL;
	}
	if (rc)
		goto out;

	/* template1 too: PUBLIC may connect to it by default. */
	sql = xasprintf("REVOKE CONNECT, TEMPORARY ON DATABASE %s FROM PUBLIC; "
			"GRANT CONNECT, TEMPORARY ON DATABASE %s TO %s; "
			"REVOKE CONNECT, TEMPORARY ON DATABASE postgres FROM PUBLIC; "
			"REVOKE CONNECT, TEMPORARY ON DATABASE template1 FROM PUBLIC",
			qdb, qdb, qrole);
	if ((rc = pgi_run_sql(c, sql, NULL, "set the database privileges", NULL, err)))
		goto out;

	/* Since PostgreSQL 15 PUBLIC has no CREATE on schema public of a new
	 * database (it belongs to pg_database_owner); older ones need a REVOKE
	 * inside the database. */
	if (PQserverVersion(c) < 150000) {
		PQfinish(c);
		if (!(c = pgi_tenant_connect(disk_dir, port, su_password, db, APP_TENANT, err))) {
			rc = MIREN_EUNAVAIL;
			goto out;
		}
		rc = pgi_run_sql(c, "REVOKE CREATE ON SCHEMA public FROM PUBLIC", NULL,
				 "revoke create on schema public", NULL, err);
	}
out:
	free(sql);
	pgi_free_secret(lit);
	PQfreemem(qdb);
	PQfreemem(qrole);
	PQfinish(c);
	return rc;
}

enum miren_err pg_alt_login(const char *role, char out[64], struct miren_error *err)
{
	out[0] = '\0';
	enum miren_err rc = check_role(role, err);
	if (rc)
		return rc;
	size_t n = strlen(role);
	if (n <= 59) {
		snprintf(out, 64, "%s_r__", role);
		return 0;
	}
	char hex[65];
	sha256_hex(role, n, hex);
	snprintf(out, 64, "%.41s_%.16s_r__", role, hex);
	return 0;
}

/* Ends the sessions whose login is role (waiting up to 5 s for each). */
static enum miren_err end_sessions_of(PGconn *c, const char *role, struct miren_error *err)
{
	const char *params[] = { role };
	PGresult *r = PQexecParams(c,
				   "SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity "
				   "WHERE usename = $1 AND pid <> pg_backend_pid()",
				   1, NULL, params, NULL, NULL, 0);
	enum miren_err rc = 0;
	if (PQresultStatus(r) != PGRES_TUPLES_OK) {
		char msg[300];
		pgi_one_line(msg, sizeof(msg), PQerrorMessage(c));
		rc = miren_error_set(err, pgi_sql_code(c, PQresultErrorField(r, PG_DIAG_SQLSTATE)),
				     "cannot end the sessions of role %s: %s", role, msg);
	}
	PQclear(r);
	return rc;
}

enum miren_err pg_tenant_logins(const char *disk_dir, int port, const char *su_password,
				const char *role, const char *login, const char *password,
				bool revoke_other, struct miren_error *err)
{
	static const char *const dup_role[] = { "42710", "23505", NULL };
	static const char *const undef_role[] = { "42704", NULL };
	char alt[64];
	enum miren_err rc;
	if ((rc = pg_alt_login(role, alt, err)))
		return rc;
	bool to_alt = !strcmp(login, alt);
	if (!to_alt && strcmp(login, role) != 0)
		return miren_error_set(err, MIREN_EINVAL, "role %s is not a login of tenant %s",
				       login, role);
	if ((rc = pgi_check_password(login, password, err)))
		return rc;
	/* Not APP_TENANT: a tenant step ends that name's other sessions. */
	PGconn *c = pgi_tenant_connect(disk_dir, port, su_password, "postgres", APP_MIREN, err);
	if (!c)
		return MIREN_EUNAVAIL;
	const char *other = to_alt ? role : alt;
	char *qrole = NULL, *qlogin = NULL, *qother = NULL, *lit = NULL, *rlit = NULL;
	char *sql = NULL;
	char state[6];
	if (!(qrole = pgi_quote_ident(c, role, err)) ||
	    !(qlogin = pgi_quote_ident(c, login, err)) ||
	    !(qother = pgi_quote_ident(c, other, err)) ||
	    !(lit = pgi_verifier_literal(c, password, login, err))) {
		rc = err ? err->code : MIREN_EINTERNAL;
		goto out;
	}
	static const char attrs[] =
		"LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS INHERIT";
	if (to_alt) {
		sql = xasprintf("CREATE ROLE %s %s PASSWORD %s IN ROLE %s", qlogin, attrs, lit,
				qrole);
		rc = pgi_run_sql(c, sql, NULL, "create the second login", state, err);
		pgi_free_secret(sql);
		sql = NULL;
		if (rc && (!strcmp(state, dup_role[0]) || !strcmp(state, dup_role[1])))
			rc = 0; /* made by an earlier run: brought in line below */
		if (rc)
			goto out;
		/* Its sessions start as the tenant's role: what it creates is the
		 * role's, and it may alter what the role owns. */
		rlit = PQescapeLiteral(c, role, strlen(role));
		sql = rlit ? xasprintf("GRANT %s TO %s; ALTER ROLE %s SET role = %s", qrole, qlogin,
				       qlogin, rlit)
			   : NULL;
		rc = sql ? pgi_run_sql(c, sql, NULL, "make the second login act as the role", NULL,
				       err)
			 : miren_error_set(err, MIREN_EINTERNAL, "cannot quote role %s", role);
		free(sql);
		sql = NULL;
		if (rc)
			goto out;
	}
	sql = xasprintf("ALTER ROLE %s %s PASSWORD %s", qlogin, attrs, lit);
	rc = pgi_run_sql(c, sql, NULL, "let the new login in", NULL, err);
	pgi_free_secret(sql);
	sql = NULL;
	if (rc || !revoke_other)
		goto out;
	/* The old login: no password, no login, no session left.  (The role
	 * stays: it owns the tenant's objects, or takes the next turn.) */
	sql = xasprintf("ALTER ROLE %s NOLOGIN PASSWORD NULL", qother);
	rc = pgi_run_sql(c, sql, to_alt ? NULL : undef_role, "revoke the old login", NULL, err);
	free(sql);
	sql = NULL;
	if (!rc)
		rc = end_sessions_of(c, other, err);
out:
	free(sql);
	pgi_free_secret(lit);
	if (rlit)
		PQfreemem(rlit);
	PQfreemem(qother);
	PQfreemem(qlogin);
	PQfreemem(qrole);
	PQfinish(c);
	return rc;
}

enum miren_err pg_login_roles(const char *disk_dir, int port, const char *su_password, char ***out,
			      size_t *n, struct miren_error *err)
{
	*out = NULL;
	*n = 0;
	PGconn *c = pgi_tenant_connect(disk_dir, port, su_password, "postgres", APP_MIREN, err);
	if (!c)
		return MIREN_EUNAVAIL;
	enum miren_err rc = query_column(c,
					 "SELECT rolname FROM pg_roles WHERE rolcanlogin AND"
					 " rolname <> '" PG_SUPERUSER "' ORDER BY 1",
					 "list the login roles", out, n, err);
	PQfinish(c);
	return rc;
}

/* DROP OWNED BY role in every database that takes connections, so the role
 * can be dropped after other databases granted it something. */
static enum miren_err drop_owned_everywhere(PGconn *c, const char *disk_dir, int port,
					    const char *su_password, const char *qrole,
					    struct miren_error *err)
{
	static const char *const undef_role[] = { "42704", NULL };
	PGresult *r = PQexec(c, "SELECT datname FROM pg_database WHERE datallowconn");
	if (PQresultStatus(r) != PGRES_TUPLES_OK || PQnfields(r) != 1) {
		char msg[300];
		pgi_one_line(msg, sizeof(msg), PQerrorMessage(c));
		PQclear(r);
		return miren_error_set(err, pgi_sql_code(c, NULL), "cannot list the databases: %s",
				       msg);
	}
	enum miren_err rc = 0;
	char *sql = xasprintf("DROP OWNED BY %s", qrole);
	for (int i = 0; i < PQntuples(r) && !rc; i++) {
		PGconn *dc = pgi_tenant_connect(disk_dir, port, su_password, PQgetvalue(r, i, 0),
						APP_TENANT, err);
		if (!dc) {
			rc = MIREN_EUNAVAIL;
			break;
		}
		rc = pgi_run_sql(dc, sql, undef_role, "drop what the role owns", NULL, err);
		PQfinish(dc);
	}
	free(sql);
	PQclear(r);
	return rc;
}

enum miren_err pg_tenant_drop(const char *disk_dir, int port, const char *su_password,
			      const char *role, const char *db, struct miren_error *err)
{
	static const char *const undef_db[] = { "3D000", NULL };
	static const char *const undef_role[] = { "42704", NULL };
	enum miren_err rc;
	if ((rc = check_tenant(role, db, err)))
		return rc;
	PGconn *c = pgi_tenant_connect(disk_dir, port, su_password, "postgres", APP_TENANT, err);
	if (!c)
		return MIREN_EUNAVAIL;
	char *qrole = NULL, *qdb = NULL, *sql = NULL;
	char state[6];
	if ((rc = end_leftovers(c, APP_TENANT, err)))
		goto out;
	if (!(qrole = pgi_quote_ident(c, role, err)) || !(qdb = pgi_quote_ident(c, db, err))) {
		rc = err ? err->code : MIREN_EINTERNAL;
		goto out;
	}
	/* WITH (FORCE) ends the sessions on the database itself. */
	sql = xasprintf("DROP DATABASE IF EXISTS %s WITH (FORCE)", qdb);
	if ((rc = pgi_run_sql(c, sql, undef_db, "drop the database", NULL, err)))
		goto out;

	/* The second login (it owns nothing: its sessions act as the role),
	 * then the role's sessions elsewhere. */
	char alt[64];
	char *qalt = NULL;
	if ((rc = pg_alt_login(role, alt, err)) || (rc = end_sessions_of(c, alt, err)))
		goto out;
	if (!(qalt = pgi_quote_ident(c, alt, err))) {
		rc = err ? err->code : MIREN_EINTERNAL;
		goto out;
	}
	free(sql);
	sql = xasprintf("DROP ROLE IF EXISTS %s", qalt);
	PQfreemem(qalt);
	if ((rc = pgi_run_sql(c, sql, undef_role, "drop the second login", NULL, err)) ||
	    (rc = end_sessions_of(c, role, err)))
		goto out;

	free(sql);
	sql = xasprintf("DROP ROLE IF EXISTS %s", qrole);
	rc = pgi_run_sql(c, sql, undef_role, "drop the role", state, err);
	if (rc && !strcmp(state, "2BP01")) {
		/* Objects or privileges in other databases depend on it. */
		if ((rc = drop_owned_everywhere(c, disk_dir, port, su_password, qrole, err)))
			goto out;
		rc = pgi_run_sql(c, sql, undef_role, "drop the role", NULL, err);
	}
out:
	free(sql);
	PQfreemem(qdb);
	PQfreemem(qrole);
	PQfinish(c);
	return rc;
}

/* ---- names -------------------------------------------------------------- */

enum miren_err pg_ident_for_app(const char *app, char out[64], struct miren_error *err)
{
	out[0] = '\0';
	size_t n = app ? strlen(app) : 0;
	if (!n || !(app[0] >= 'a' && app[0] <= 'z') || app[n - 1] == '-' ||
	    strspn(app, "abcdefghijklmnopqrstuvwxyz0123456789-") != n)
		return miren_error_set(err, MIREN_EINVAL,
				       "app name '%.64s' is not valid for a database name "
				       "(lowercase letters, digits and '-', starting with a "
				       "letter, not ending in '-')",
				       app ? app : "");
	/* The plain mapping ('-' as '_'), and the marked one when the plain
	 * name is one PostgreSQL or miren keeps (see role_reserved). */
	char plain[64];
	size_t i;
	for (i = 0; i < n && i < sizeof(plain) - 1; i++)
		plain[i] = app[i] == '-' ? '_' : app[i];
	plain[i] = '\0';
	bool reserved = role_reserved(plain) || db_reserved(plain);
	if (n > 63)
		return miren_error_set(err, MIREN_EINVAL,
				       "app name '%.64s...' is too long for a postgresql role and "
				       "database name (at most 63 bytes)",
				       app);
	if (!reserved) {
		snprintf(out, 64, "%s", plain);
		return 0;
	}
	if (n + 3 <= 63) {
		snprintf(out, 64, "u_%.60s_", plain); /* n <= 60 here */
		return 0;
	}
	/* A reserved name too long for "u_<name>_" (61..63 characters): its
	 * first 41 bytes, then 16 hex digits of the SHA-256 of the whole app
	 * name, ending in "__", which no "u_<name>_" ends with (names never end
	 * in '_'), so the forms stay apart; 64 bits keep a made-up name from
	 * reaching another app's role. */
	char hex[65];
	sha256_hex(app, n, hex);
	snprintf(out, 64, "u_%.41s_%.16s__", plain, hex);
	return 0;
}

enum miren_err pg_spare_db_ensure(const char *disk_dir, int port, const char *su_password,
				  int count, struct miren_error *err)
{
	static const char *const dup_db[] = { "42P04", "23505", NULL };
	PGconn *c = pgi_tenant_connect(disk_dir, port, su_password, "postgres", APP_SPARE, err);
	if (!c)
		return MIREN_EUNAVAIL;
	enum miren_err rc = end_leftovers(c, APP_SPARE, err);
	for (int i = 0; i < count && !rc; i++) {
		char *sql =
			xasprintf("SELECT count(*) FROM pg_database WHERE datname = '" PG_SPARE_DB
				  "_%d'",
				  i);
		char *have = pgi_query_value(c, sql, "look for a spare database", err);
		free(sql);
		if (!have) {
			rc = MIREN_EUNAVAIL;
			break;
		}
		bool exists = strcmp(have, "0") != 0;
		free(have);
		if (exists)
			continue;
		sql = xasprintf("CREATE DATABASE " PG_SPARE_DB "_%d", i);
		rc = pgi_run_sql(c, sql, dup_db, "create a spare database", NULL, err);
		free(sql);
		if (!rc) {
			sql = xasprintf("REVOKE CONNECT, TEMPORARY ON DATABASE " PG_SPARE_DB
					"_%d FROM PUBLIC",
					i);
			rc = pgi_run_sql(c, sql, NULL, "close the spare database", NULL, err);
			free(sql);
		}
	}
	PQfinish(c);
	return rc;
}

/* ---- what a server holds, for the invariant checks ---------------------- */

/* The values of the one-column query sql, sorted, or MIREN_EUNAVAIL. */
static enum miren_err query_column(PGconn *c, const char *sql, const char *what, char ***out,
				   size_t *n, struct miren_error *err)
{
	PGresult *r = PQexec(c, sql);
	enum miren_err rc = 0;
	*out = NULL;
	*n = 0;
	if (r && PQresultStatus(r) == PGRES_TUPLES_OK && PQnfields(r) == 1) {
		*n = (size_t)PQntuples(r);
		*out = xcalloc(*n + 1, sizeof(**out));
		for (size_t i = 0; i < *n; i++)
			(*out)[i] = xstrdup(PQgetvalue(r, (int)i, 0));
	} else {
		char msg[360];
		pgi_one_line(msg, sizeof(msg), PQerrorMessage(c));
		rc = miren_error_set(err, MIREN_EUNAVAIL, "cannot %s: %s", what, msg);
	}
	PQclear(r);
	return rc;
}

enum miren_err pg_tenant_names(const char *disk_dir, int port, const char *su_password, char ***dbs,
			       size_t *n_dbs, char ***roles, size_t *n_roles,
			       struct miren_error *err)
{
	*dbs = *roles = NULL;
	*n_dbs = *n_roles = 0;
	PGconn *c = pgi_tenant_connect(disk_dir, port, su_password, "postgres", APP_MIREN, err);
	if (!c)
		return MIREN_EUNAVAIL;
	enum miren_err rc =
		query_column(c,
			     "SELECT datname FROM pg_database WHERE datname NOT IN"
			     " ('postgres', 'template0', 'template1') AND datname NOT LIKE "
			     "'" PG_SPARE_DB "\\_%' ORDER BY 1",
			     "list the databases", dbs, n_dbs, err);
	if (!rc)
		rc = query_column(c,
				  "SELECT rolname FROM pg_roles WHERE rolname !~ '^pg_' AND"
				  " rolname <> '" PG_SUPERUSER "' ORDER BY 1",
				  "list the roles", roles, n_roles, err);
	PQfinish(c);
	return rc;
}
