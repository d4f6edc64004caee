/*
 * Connections and SQL: the superuser connection over the unix socket,
 * statements with their SQLSTATE mapped to miren errors, readiness, the
 * superuser password; see pg.h and pg_internal.h.
 */
#include "addon/postgresql/pg_internal.h"

#include "supervise/supervise.h"
#include "util/err.h"
#include "util/fault.h"
#include "util/fs.h"
#include "util/io.h"
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

/* ---- connections and SQL ------------------------------------------------ */

static void quiet_notice(void *arg, const char *message)
{
	(void)arg;
	(void)message;
}

/* application_name of the sessions of each kind of work: a session of a
 * dead daemon still running its statement is found by it (see
 * end_leftovers). */

/*
 * Connects as the superuser over the unix socket to dbname, as
 * application_name appname.  Returns the connection, or NULL with the
 * (one-line, secret-free) reason in why.  *used_password tells whether the
 * server got as far as asking for it.
 */
PGconn *pgi_su_connect(const char *disk_dir, int port, const char *password, const char *dbname,
		       const char *appname, int timeout_s, char *why, size_t whylen,
		       bool *used_password)
{
	char *host = pg_socket_dir(disk_dir);
	char port_s[16], timeout[16];
	snprintf(port_s, sizeof(port_s), "%d", port);
	snprintf(timeout, sizeof(timeout), "%d", timeout_s < 2 ? 2 : timeout_s);
	const char *keys[] = { "host",
			       "port",
			       "user",
			       "dbname",
			       "password",
			       "connect_timeout",
			       "application_name",
			       "sslmode",
			       "gssencmode",
			       "options",
			       "client_encoding",
			       NULL };
	const char *vals[] = { host,
			       port_s,
			       PG_SUPERUSER,
			       dbname,
			       password ? password : "",
			       timeout,
			       appname,
			       "disable",
			       "disable",
			       "-c log_statement=none -c log_min_error_statement=panic",
			       "UTF8",
			       NULL };
	PGconn *c = PQconnectdbParams(keys, vals, 0);
	free(host);
	if (used_password)
		*used_password = c && PQconnectionUsedPassword(c);
	if (c && PQstatus(c) == CONNECTION_OK) {
		PQsetNoticeProcessor(c, quiet_notice, NULL);
		return c;
	}
	pgi_one_line(why, whylen, c ? PQerrorMessage(c) : "out of memory");
	PQfinish(c);
	return NULL;
}

static bool auth_failed(const char *why)
{
	return strstr(why, "password authentication failed") != NULL;
}

/* Maps a failed result (or connection) to a miren_err. */
enum miren_err pgi_sql_code(PGconn *c, const char *state)
{
	if (PQstatus(c) != CONNECTION_OK || !state || !strncmp(state, "08", 2) ||
	    !strncmp(state, "57P", 3))
		return MIREN_EUNAVAIL;
	if (!strcmp(state, "42501"))
		return MIREN_EPERM;
	if (!strncmp(state, "53", 2) || !strncmp(state, "58", 2))
		return MIREN_EIO;
	return MIREN_EINTERNAL;
}

/*
 * Runs sql (one statement, or several in an implicit transaction).  A
 * SQLSTATE listed in ok (NULL-terminated) counts as success; *state_out
 * (if given) receives the SQLSTATE of a failure or "".  Returns 0 or a
 * miren_err with err "cannot <what>: ...".
 */

enum miren_err pgi_run_sql(PGconn *c, const char *sql, const char *const *ok, const char *what,
			   char state_out[6], struct miren_error *err)
{
	return pgi_run_sql_at(c, sql, ok, what, state_out, NULL, err);
}

/* The same; with fault, the fault point of that name is passed once the
 * statement was sent, before its result is read (a crash there leaves the
 * backend running it).  With fault, sql must be one statement. */
enum miren_err pgi_run_sql_at(PGconn *c, const char *sql, const char *const *ok, const char *what,
			      char state_out[6], const char *fault, struct miren_error *err)
{
	PGresult *r = NULL;
	if (!fault)
		r = PQexec(c, sql);
	else if (PQsendQuery(c, sql)) {
		fault_point(fault);
		for (PGresult *next; (next = PQgetResult(c)) != NULL;) {
			PQclear(r);
			r = next;
		}
	}
	ExecStatusType st = r ? PQresultStatus(r) : PGRES_FATAL_ERROR;
	if (state_out)
		state_out[0] = '\0';
	if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) {
		PQclear(r);
		return 0;
	}
	const char *state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
	if (state && state_out)
		snprintf(state_out, 6, "%s", state);
	for (const char *const *p = ok; state && p && *p; p++) {
		if (!strcmp(state, *p)) {
			PQclear(r);
			return 0;
		}
	}
	char msg[360];
	const char *primary = r ? PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY) : NULL;
	pgi_one_line(msg, sizeof(msg), primary ? primary : PQerrorMessage(c));
	enum miren_err rc = miren_error_set(err, pgi_sql_code(c, state), "cannot %s: %s%s%s%s",
					    what, msg, state ? " (SQLSTATE " : "",
					    state ? state : "", state ? ")" : "");
	PQclear(r);
	return rc;
}

/* An escaped identifier (caller frees with PQfreemem) or NULL with err. */
char *pgi_quote_ident(PGconn *c, const char *name, struct miren_error *err)
{
	char *q = PQescapeIdentifier(c, name, strlen(name));
	if (!q) {
		char msg[300];
		pgi_one_line(msg, sizeof(msg), PQerrorMessage(c));
		miren_error_set(err, MIREN_EINVAL, "cannot quote name '%s': %s", name, msg);
	}
	return q;
}

/* The SCRAM verifier of password for role, as an escaped SQL literal
 * (caller frees with free()), or NULL with err. */
char *pgi_verifier_literal(PGconn *c, const char *password, const char *role,
			   struct miren_error *err)
{
	char *v = PQencryptPasswordConn(c, password, role, "scram-sha-256");
	if (!v) {
		char msg[300];
		pgi_one_line(msg, sizeof(msg), PQerrorMessage(c));
		miren_error_set(err, MIREN_EINTERNAL,
				"cannot compute the password verifier for "
				"role %s: %s",
				role, msg);
		return NULL;
	}
	char *lit = PQescapeLiteral(c, v, strlen(v));
	explicit_bzero(v, strlen(v));
	PQfreemem(v);
	if (!lit) {
		miren_error_set(err, MIREN_EINTERNAL, "cannot quote the password verifier");
		return NULL;
	}
	char *out = xstrdup(lit);
	explicit_bzero(lit, strlen(lit));
	PQfreemem(lit);
	return out;
}

void pgi_free_secret(char *s)
{
	if (s) {
		explicit_bzero(s, strlen(s));
		free(s);
	}
}

/* ---- readiness and superuser password ----------------------------------- */

enum miren_err pg_wait_ready(const char *disk_dir, int port, const char *password, int timeout_ms,
			     struct miren_error *err)
{
	return pg_wait_ready_or_stop(disk_dir, port, password, timeout_ms, NULL, err);
}

enum miren_err pg_wait_ready_or_stop(const char *disk_dir, int port, const char *password,
				     int timeout_ms, const atomic_bool *stop,
				     struct miren_error *err)
{
	int64_t deadline = io_mono_ms() + (timeout_ms > 0 ? timeout_ms : 0);
	char why[400] = "";
	for (;;) {
		int64_t left = deadline - io_mono_ms();
		bool used_pw = false;
		/* At most 2 s per attempt (the least libpq takes), so a stop
		 * is noticed soon. */
		int slice_s = left > 2000 ? 2 : (int)((left + 999) / 1000);
		PGconn *c = pgi_su_connect(disk_dir, port, password, "postgres", APP_MIREN, slice_s,
					   why, sizeof(why), &used_pw);
		if (c) {
			PQfinish(c);
			return 0;
		}
		if (used_pw && auth_failed(why))
			return miren_error_set(err, MIREN_EPERM,
					       "the postgresql server of %s (port %d) rejects the "
					       "superuser password: %s",
					       disk_dir, port, why);
		if (io_mono_ms() >= deadline)
			break;
		if (stop && atomic_load(stop))
			return miren_error_set(err, MIREN_EUNAVAIL,
					       "stopped waiting for the postgresql server of %s "
					       "(port %d): the daemon stops",
					       disk_dir, port);
		pgi_nap_ms(PG_READY_POLL_MS);
	}
	return miren_error_set(err, MIREN_EUNAVAIL,
			       "the postgresql server of %s (port %d) is not ready after %d ms: %s",
			       disk_dir, port, timeout_ms, why);
}

enum miren_err pg_rotate_superuser(const char *disk_dir, int port, const char *old_password,
				   const char *new_password, struct miren_error *err)
{
	if (!pgi_password_ok(new_password))
		return miren_error_set(err, MIREN_EINVAL,
				       "the new superuser password must be 1..1023 bytes "
				       "without line breaks");
	char why[400] = "";
	PGconn *c = pgi_su_connect(disk_dir, port, old_password, "postgres", APP_MIREN, 10, why,
				   sizeof(why), NULL);
	if (!c) {
		/* A retried rotation: the new password may be in place already. */
		c = pgi_su_connect(disk_dir, port, new_password, "postgres", APP_MIREN, 10, why,
				   sizeof(why), NULL);
		if (!c)
			return miren_error_set(err, MIREN_EUNAVAIL,
					       "cannot connect to the postgresql server of %s "
					       "(port %d) "
					       "as superuser with the old or the new password: %s",
					       disk_dir, port, why);
	}
	enum miren_err rc = pgi_set_password(c, PG_SUPERUSER, new_password,
					     "set the superuser password", err);
	PQfinish(c);
	return rc;
}

/* ALTER ROLE role PASSWORD <its SCRAM verifier> on c; "cannot <what>: ..." */
enum miren_err pgi_set_password(PGconn *c, const char *role, const char *password, const char *what,
				struct miren_error *err)
{
	enum miren_err rc = 0;
	char *qrole = NULL, *sql = NULL, *lit = NULL;
	if (!(qrole = pgi_quote_ident(c, role, err)) ||
	    !(lit = pgi_verifier_literal(c, password, role, err))) {
		rc = err ? err->code : MIREN_EINTERNAL;
		goto out;
	}
	sql = xasprintf("ALTER ROLE %s PASSWORD %s", qrole, lit);
	rc = pgi_run_sql(c, sql, NULL, what, NULL, err);
out:
	pgi_free_secret(sql);
	pgi_free_secret(lit);
	PQfreemem(qrole);
	return rc;
}
