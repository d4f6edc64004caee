/*
 * What the MariaDB mechanics do over a root connection (the server's unix
 * socket): readiness, root's password, tenants, their names, info; see
 * mariadb.h.
 */
#include "addon/mysql/mariadb_internal.h"

#include <errmsg.h>
#include <errno.h>
#include <limits.h>
#include <mysql.h>
#include <mysqld_error.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/fault.h"
#include "util/io.h"
#include "util/names.h"
#include "util/num.h"
#include "util/sha256.h"

/* ---- connections -------------------------------------------------------- */

static pthread_once_t lib_once = PTHREAD_ONCE_INIT;

static void lib_init(void)
{
	mysql_library_init(0, NULL, NULL);
}

/* A root connection over the socket of DISK (NULL with err set).  On a
 * refused password the code is MIREN_EPERM. */
static MYSQL *root_connect(const char *disk_dir, const char *password, int timeout_s,
			   struct miren_error *err)
{
	pthread_once(&lib_once, lib_init);
	MYSQL *m = mysql_init(NULL);
	if (!m) {
		miren_error_set(err, MIREN_EINTERNAL, "cannot make a MariaDB client handle");
		return NULL;
	}
	unsigned int t = (unsigned)timeout_s;
	unsigned int rw = 60;
	bool no = false;
	mysql_optionsv(m, MYSQL_OPT_CONNECT_TIMEOUT, &t);
	mysql_optionsv(m, MYSQL_OPT_READ_TIMEOUT, &rw);
	mysql_optionsv(m, MYSQL_OPT_WRITE_TIMEOUT, &rw);
	mysql_optionsv(m, MYSQL_OPT_LOCAL_INFILE, &no);
	char *sock = mariadb_socket_path(disk_dir);
	MYSQL *ok = mysql_real_connect(m, "localhost", MARIADB_ROOT, password, NULL, 0, sock,
				       CLIENT_MULTI_STATEMENTS);
	free(sock);
	if (!ok) {
		unsigned int e = mysql_errno(m);
		enum miren_err code = (e == ER_ACCESS_DENIED_ERROR || e == ER_DBACCESS_DENIED_ERROR)
					      ? MIREN_EPERM
					      : MIREN_EUNAVAIL;
		miren_error_set(err, code, "cannot connect to the MariaDB server of %s: %s",
				disk_dir, mysql_error(m));
		mysql_close(m);
		return NULL;
	}
	return m;
}

/* Runs one or more statements, discarding results.  what names them for
 * the message (never the SQL: it may hold a password hash). */
static enum miren_err run_sql(MYSQL *m, const char *sql, const char *what, struct miren_error *err)
{
	if (mysql_query(m, sql) != 0)
		goto fail;
	do {
		MYSQL_RES *r = mysql_store_result(m);
		if (r)
			mysql_free_result(r);
		else if (mysql_field_count(m) != 0)
			goto fail;
		int next = mysql_next_result(m);
		if (next > 0)
			goto fail;
		if (next < 0)
			break;
	} while (1);
	return 0;
fail:;
	unsigned int e = mysql_errno(m);
	enum miren_err code = MIREN_EDB;
	if (e >= 2000 && e < 3000)
		code = MIREN_EUNAVAIL; /* client side: the connection went */
	return miren_error_set(err, code, "%s failed: %s", what, mysql_error(m));
}

/* Every row's first column of sql, in order (arrays to free). */
static enum miren_err query_column(MYSQL *m, const char *sql, const char *what, char ***out,
				   size_t *n, struct miren_error *err)
{
	*out = NULL;
	*n = 0;
	if (mysql_query(m, sql) != 0)
		return miren_error_set(err, MIREN_EDB, "%s failed: %s", what, mysql_error(m));
	MYSQL_RES *r = mysql_store_result(m);
	if (!r || mysql_num_fields(r) < 1) {
		if (r)
			mysql_free_result(r);
		return miren_error_set(err, MIREN_EDB, "%s returned no rows: %s", what,
				       mysql_error(m));
	}
	size_t rows = (size_t)mysql_num_rows(r);
	char **v = xcalloc(rows + 1, sizeof(*v));
	MYSQL_ROW row;
	size_t i = 0;
	while ((row = mysql_fetch_row(r)) && i < rows)
		v[i++] = xstrdup(row[0] ? row[0] : "");
	mysql_free_result(r);
	*out = v;
	*n = i;
	return 0;
}

static char *query_value(MYSQL *m, const char *sql, const char *what, struct miren_error *err)
{
	char **v;
	size_t n;
	if (query_column(m, sql, what, &v, &n, err))
		return NULL;
	char *s = n ? v[0] : NULL;
	for (size_t i = 1; i < n; i++)
		free(v[i]);
	free(v);
	if (!s)
		miren_error_set(err, MIREN_EDB, "%s returned no rows", what);
	return s;
}

void mariadb_names_free(char **names, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
}

enum miren_err mariadb_wait_ready(const char *disk_dir, const char *password, int timeout_ms,
				  const atomic_bool *stop, struct miren_error *err)
{
	int64_t deadline = io_mono_ms() + timeout_ms;
	struct miren_error last = { 0 };
	for (;;) {
		miren_error_clear(&last);
		MYSQL *m = root_connect(disk_dir, password, 2, &last);
		if (m) {
			mysql_close(m);
			return 0;
		}
		if (last.code == MIREN_EPERM) {
			miren_error_set(err, MIREN_EPERM, "%s", last.message);
			miren_error_hint(err, "the root password miren holds for this server is "
					      "not the server's");
			return MIREN_EPERM;
		}
		if (io_mono_ms() >= deadline || (stop && atomic_load(stop)))
			break;
		mdbi_nap_ms(MARIADB_READY_POLL_MS);
	}
	return miren_error_set(err, MIREN_EUNAVAIL, "the MariaDB server of %s is not ready: %s",
			       disk_dir, last.message);
}

enum miren_err mariadb_rotate_root(const char *disk_dir, const char *old_password,
				   const char *new_password, struct miren_error *err)
{
	if (!mdbi_password_ok(new_password) || !mdbi_password_ok(old_password))
		return miren_error_set(err, MIREN_EINVAL,
				       "a root password must be 1..255 "
				       "printable characters without quotes");
	struct miren_error first = { 0 };
	MYSQL *m = root_connect(disk_dir, old_password, 5, &first);
	if (!m && first.code == MIREN_EPERM)
		m = root_connect(disk_dir, new_password, 5, err);
	else if (!m)
		return miren_error_set(err, first.code, "%s", first.message);
	if (!m)
		return err ? err->code : MIREN_EUNAVAIL;
	char hash[42];
	mdbi_native_hash(new_password, hash);
	char *sql = xasprintf("ALTER USER 'root'@'localhost' IDENTIFIED BY PASSWORD '%s'", hash);
	enum miren_err rc = run_sql(m, sql, "setting the root password", err);
	free(sql);
	mysql_close(m);
	return rc;
}

/* ---- tenants ------------------------------------------------------------ */

/* KILLs every session of user (not ours). */
static enum miren_err end_sessions(MYSQL *m, const char *user, struct miren_error *err)
{
	char *sql = xasprintf("SELECT ID FROM information_schema.PROCESSLIST WHERE USER = '%s' "
			      "AND ID <> CONNECTION_ID()",
			      user);
	char **ids;
	size_t n;
	enum miren_err rc = query_column(m, sql, "listing the tenant's sessions", &ids, &n, err);
	free(sql);
	for (size_t i = 0; !rc && i < n; i++) {
		char *kill = xasprintf("KILL CONNECTION %s", ids[i]);
		if (mysql_query(m, kill) != 0 && mysql_errno(m) != ER_NO_SUCH_THREAD)
			rc = miren_error_set(err, MIREN_EDB, "ending a tenant session failed: %s",
					     mysql_error(m));
		free(kill);
	}
	mariadb_names_free(ids, n);
	return rc;
}

/* A tenant's password: MIREN_EINVAL (never naming it) unless it may go
 * into a statement as it is. */
static enum miren_err check_password(const char *password, struct miren_error *err)
{
	if (mdbi_password_ok(password))
		return 0;
	return miren_error_set(err, MIREN_EINVAL,
			       "a tenant password must be 1..255 printable characters without "
			       "quotes");
}

enum miren_err mariadb_tenant_create(const char *disk_dir, const char *root_password,
				     const char *user, const char *db, const char *password,
				     struct miren_error *err)
{
	enum miren_err rc;
	if ((rc = mdbi_check_name(user, "a user", err)) ||
	    (rc = mdbi_check_name(db, "a database", err)))
		return rc;
	if ((rc = check_password(password, err)))
		return rc;
	MYSQL *m = root_connect(disk_dir, root_password, 5, err);
	if (!m)
		return err ? err->code : MIREN_EUNAVAIL;
	char hash[42];
	mdbi_native_hash(password, hash);
	char *sql = xasprintf("CREATE DATABASE IF NOT EXISTS `%s` CHARACTER SET utf8mb4;"
			      "CREATE USER IF NOT EXISTS '%s'@'%%' IDENTIFIED BY PASSWORD '%s';"
			      "ALTER USER '%s'@'%%' IDENTIFIED BY PASSWORD '%s';"
			      "REVOKE ALL PRIVILEGES, GRANT OPTION FROM '%s'@'%%';"
			      "GRANT ALL PRIVILEGES ON `%s`.* TO '%s'@'%%'",
			      db, user, hash, user, hash, user, db, user);
	fault_point(MY_FAULT("tenant:create"));
	rc = run_sql(m, sql, "creating the tenant", err);
	free(sql);
	mysql_close(m);
	return rc;
}

enum miren_err mariadb_tenant_password(const char *disk_dir, const char *root_password,
				       const char *user, const char *password,
				       struct miren_error *err)
{
	enum miren_err rc;
	if ((rc = mdbi_check_name(user, "a user", err)))
		return rc;
	if ((rc = check_password(password, err)))
		return rc;
	MYSQL *m = root_connect(disk_dir, root_password, 5, err);
	if (!m)
		return err ? err->code : MIREN_EUNAVAIL;
	char hash[42];
	mdbi_native_hash(password, hash);
	char *sql = xasprintf("ALTER USER '%s'@'%%' IDENTIFIED BY PASSWORD '%s'", user, hash);
	rc = run_sql(m, sql, "setting the tenant's password", err);
	free(sql);
	mysql_close(m);
	return rc;
}

enum miren_err mariadb_alt_user(const char *user, char out[65], struct miren_error *err)
{
	out[0] = '\0';
	enum miren_err rc = mdbi_check_name(user, "a user", err);
	if (rc)
		return rc;
	size_t n = strlen(user);
	if (n <= 60) {
		snprintf(out, 65, "%s_r__", user);
		return 0;
	}
	char hex[65];
	sha256_hex(user, n, hex);
	snprintf(out, 65, "%.43s_%.16s_r__", user, hex);
	return 0;
}

enum miren_err mariadb_tenant_logins(const char *disk_dir, const char *root_password,
				     const char *user, const char *db, const char *login,
				     const char *password, bool revoke_other,
				     struct miren_error *err)
{
	char alt[65];
	enum miren_err rc;
	if ((rc = mariadb_alt_user(user, alt, err)) ||
	    (rc = mdbi_check_name(db, "a database", err)))
		return rc;
	bool to_alt = !strcmp(login, alt);
	if (!to_alt && strcmp(login, user) != 0)
		return miren_error_set(err, MIREN_EINVAL, "user %s is not a login of tenant %s",
				       login, user);
	if ((rc = check_password(password, err)))
		return rc;
	MYSQL *m = root_connect(disk_dir, root_password, 5, err);
	if (!m)
		return err ? err->code : MIREN_EUNAVAIL;
	char hash[42];
	mdbi_native_hash(password, hash);
	/* The second user gets exactly the first one's grants. */
	char *sql = to_alt ? xasprintf("CREATE USER IF NOT EXISTS '%s'@'%%' IDENTIFIED BY PASSWORD "
				       "'%s';"
				       "REVOKE ALL PRIVILEGES, GRANT OPTION FROM '%s'@'%%';"
				       "GRANT ALL PRIVILEGES ON `%s`.* TO '%s'@'%%';",
				       login, hash, login, db, login)
			   : xstrdup("");
	char *all = xasprintf("%sALTER USER '%s'@'%%' IDENTIFIED BY PASSWORD '%s' ACCOUNT UNLOCK",
			      sql, login, hash);
	free(sql);
	rc = run_sql(m, all, "letting the new user in", err);
	explicit_bzero(hash, sizeof(hash));
	free(all);
	if (!rc && revoke_other) {
		const char *other = to_alt ? user : alt;
		sql = xasprintf("ALTER USER IF EXISTS '%s'@'%%' ACCOUNT LOCK", other);
		rc = run_sql(m, sql, "locking the old user", err);
		free(sql);
		if (!rc)
			rc = end_sessions(m, other, err);
	}
	mysql_close(m);
	return rc;
}

/* Whether 'user'@'%' exists, in *there. */
static enum miren_err user_exists(MYSQL *m, const char *user, bool *there, struct miren_error *err)
{
	*there = false;
	char *sql =
		xasprintf("SELECT User FROM mysql.global_priv WHERE User = '%s' AND Host = '%%'",
			  user);
	char **rows;
	size_t n;
	enum miren_err rc = query_column(m, sql, "looking for a user", &rows, &n, err);
	free(sql);
	if (rc)
		return rc;
	mariadb_names_free(rows, n);
	*there = n > 0;
	return 0;
}

enum miren_err mariadb_tenant_pause(const char *disk_dir, const char *root_password,
				    const char *user, const char *db, bool pause,
				    struct miren_error *err)
{
	char alt[65];
	enum miren_err rc;
	if ((rc = mariadb_alt_user(user, alt, err)) ||
	    (rc = mdbi_check_name(db, "a database", err)))
		return rc;
	MYSQL *m = root_connect(disk_dir, root_password, 5, err);
	if (!m)
		return err ? err->code : MIREN_EUNAVAIL;
	const char *users[] = { user, alt };
	for (size_t i = 0; !rc && i < 2; i++) {
		bool there;
		if ((rc = user_exists(m, users[i], &there, err)) || !there)
			continue;
		/* Read-only: what mariadb-dump needs of the database, no more
		 * (the GRANT first, so that the REVOKE has a grant to take). */
		char *sql =
			pause ? xasprintf("GRANT SELECT, SHOW VIEW, TRIGGER, EVENT ON `%s`.* TO "
					  "'%s'@'%%';"
					  "REVOKE ALL PRIVILEGES ON `%s`.* FROM '%s'@'%%';"
					  "GRANT SELECT, SHOW VIEW, TRIGGER, EVENT ON `%s`.* TO "
					  "'%s'@'%%'",
					  db, users[i], db, users[i], db, users[i])
			      : xasprintf("GRANT ALL PRIVILEGES ON `%s`.* TO '%s'@'%%'", db,
					  users[i]);
		rc = run_sql(m, sql,
			     pause ? "pausing the tenant's writes" : "letting the tenant write",
			     err);
		free(sql);
		if (!rc && pause)
			rc = end_sessions(m, users[i], err);
	}
	/* Killed sessions roll back; none may be left when the pause counts. */
	int64_t deadline = io_mono_ms() + 10000;
	while (!rc && pause) {
		char *sql = xasprintf("SELECT ID FROM information_schema.PROCESSLIST WHERE USER IN "
				      "('%s', '%s')",
				      user, alt);
		char **ids;
		size_t n;
		rc = query_column(m, sql, "listing the tenant's sessions", &ids, &n, err);
		free(sql);
		if (rc)
			break;
		mariadb_names_free(ids, n);
		if (n == 0)
			break;
		if (io_mono_ms() > deadline) {
			rc = miren_error_set(err, MIREN_EUNAVAIL,
					     "the sessions of user %s did not end within 10 s",
					     user);
			break;
		}
		for (size_t i = 0; !rc && i < 2; i++)
			rc = end_sessions(m, users[i], err);
		io_sleep_ms(5);
	}
	mysql_close(m);
	return rc;
}

enum miren_err mariadb_login_users(const char *disk_dir, const char *root_password, char ***out,
				   size_t *n, struct miren_error *err)
{
	*out = NULL;
	*n = 0;
	MYSQL *m = root_connect(disk_dir, root_password, 5, err);
	if (!m)
		return err ? err->code : MIREN_EUNAVAIL;
	enum miren_err rc =
		query_column(m,
			     "SELECT DISTINCT User FROM mysql.global_priv WHERE User NOT IN "
			     "('root', 'mariadb.sys') AND Host = '%' AND NOT "
			     "IFNULL(JSON_EXTRACT(Priv, '$.account_locked') = true, false) "
			     "ORDER BY 1",
			     "listing the users that may log in", out, n, err);
	mysql_close(m);
	return rc;
}

enum miren_err mariadb_tenant_drop(const char *disk_dir, const char *root_password,
				   const char *user, const char *db, struct miren_error *err)
{
	enum miren_err rc;
	if ((rc = mdbi_check_name(user, "a user", err)) ||
	    (rc = mdbi_check_name(db, "a database", err)))
		return rc;
	MYSQL *m = root_connect(disk_dir, root_password, 5, err);
	if (!m)
		return err ? err->code : MIREN_EUNAVAIL;
	/* The users first: no new session can start while the rest goes. */
	char alt[65];
	if ((rc = mariadb_alt_user(user, alt, err))) {
		mysql_close(m);
		return rc;
	}
	char *sql = xasprintf("DROP USER IF EXISTS '%s'@'%%', '%s'@'%%'", user, alt);
	rc = run_sql(m, sql, "dropping the tenant's users", err);
	free(sql);
	if (!rc)
		rc = end_sessions(m, user, err);
	if (!rc)
		rc = end_sessions(m, alt, err);
	if (!rc) {
		sql = xasprintf("DROP DATABASE IF EXISTS `%s`", db);
		rc = run_sql(m, sql, "dropping the tenant's database", err);
		free(sql);
	}
	mysql_close(m);
	return rc;
}

enum miren_err mariadb_tenant_names(const char *disk_dir, const char *root_password, char ***dbs,
				    size_t *n_dbs, char ***users, size_t *n_users,
				    struct miren_error *err)
{
	*dbs = *users = NULL;
	*n_dbs = *n_users = 0;
	MYSQL *m = root_connect(disk_dir, root_password, 5, err);
	if (!m)
		return err ? err->code : MIREN_EUNAVAIL;
	enum miren_err rc =
		query_column(m,
			     "SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE "
			     "SCHEMA_NAME NOT IN ('mysql', 'information_schema', "
			     "'performance_schema', 'sys') ORDER BY 1",
			     "listing databases", dbs, n_dbs, err);
	if (!rc)
		rc = query_column(m,
				  "SELECT DISTINCT User FROM mysql.user WHERE User NOT IN "
				  "('root', 'mariadb.sys') AND is_role = 'N' ORDER BY 1",
				  "listing users", users, n_users, err);
	mysql_close(m);
	if (rc) {
		mariadb_names_free(*dbs, *n_dbs);
		mariadb_names_free(*users, *n_users);
		*dbs = *users = NULL;
		*n_dbs = *n_users = 0;
	}
	return rc;
}

enum miren_err mariadb_info(const char *disk_dir, const char *root_password, const char *db,
			    struct mariadb_info *out, struct miren_error *err)
{
	memset(out, 0, sizeof(*out));
	if (db && mdbi_check_name(db, "a database", err))
		return MIREN_EINVAL;
	MYSQL *m = root_connect(disk_dir, root_password, 5, err);
	if (!m)
		return err ? err->code : MIREN_EUNAVAIL;
	enum miren_err rc = 0;
	char *v = query_value(m, "SELECT VERSION()", "asking the version", err);
	char *size_sql = db ? xasprintf("SELECT COALESCE(SUM(DATA_LENGTH + INDEX_LENGTH), 0) FROM "
					"information_schema.TABLES WHERE TABLE_SCHEMA = '%s'",
					db)
			    : xstrdup("SELECT COALESCE(SUM(DATA_LENGTH + INDEX_LENGTH), 0) FROM "
				      "information_schema.TABLES");
	char *conn_sql = db ? xasprintf("SELECT COUNT(*) FROM information_schema.PROCESSLIST "
					"WHERE USER = '%s' OR DB = '%s'",
					db, db)
			    : xstrdup("SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE "
				      "COMMAND <> 'Daemon' AND ID <> CONNECTION_ID()");
	char *size = v ? query_value(m, size_sql, "asking the size", err) : NULL;
	char *conns = size ? query_value(m, conn_sql, "counting sessions", err) : NULL;
	/* How many clients the server takes (max_connections; one more is
	 * kept for an administrator). */
	char *max = conns ? query_value(m, "SELECT @@max_connections", "asking max_connections",
					err)
			  : NULL;
	char *up = max ? query_value(m,
				     "SELECT VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS"
				     " WHERE VARIABLE_NAME = 'UPTIME'",
				     "asking the uptime", err)
		       : NULL;
	if (!up)
		rc = err ? err->code : MIREN_EDB;
	else {
		snprintf(out->version, sizeof(out->version), "%s", v);
		long long n = 0;
		out->size_bytes = num_parse(size, 0, LLONG_MAX, &n) ? n : 0;
		out->connections = num_parse(conns, 0, INT_MAX, &n) ? (int)n : 0;
		out->max_connections = num_parse(max, 0, INT_MAX, &n) ? (long)n : -1;
		out->uptime_s = num_parse(up, 0, LLONG_MAX, &n) ? n : -1;
	}
	free(up);
	free(max);
	free(conns);
	free(size);
	free(v);
	free(conn_sql);
	free(size_sql);
	mysql_close(m);
	return rc;
}
