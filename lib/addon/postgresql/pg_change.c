/*
 * Moving a tenant's data from one server to another while it keeps
 * writing (a variant change): logical replication from the old server
 * (the publisher, only the tenant's database published) to the new one
 * (the subscriber), the tenant's write pause, the wait until the copy
 * holds every committed row, the sequences, and the removal of what the
 * copy made.  See pg.h; the provider sequences it (change.c).
 *
 * Every statement runs as the superuser over each server's private unix
 * socket; the subscription reaches the publisher the same way (both
 * servers run as the same user), so its connection string holds the
 * publisher's superuser password: it lives in the subscriber's catalog
 * (readable by its superuser only) until the subscription is dropped, and
 * is never logged (superuser sessions run with log_statement=none).
 */
#include "addon/postgresql/pg_internal.h"

#include "util/err.h"
#include "util/io.h"
#include "util/log.h"
#include "util/num.h"
#include "util/strbuf.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The publication every change makes in the tenant's database. */
#define PUBLICATION "miren_change"
#define APP_CHANGE "miren-change"
/* How long the initial copy may take, and the catch-up under the pause. */
#define SYNC_POLL_MS 20
#define CATCHUP_TIMEOUT_MS 30000

static PGconn *connect_to(const struct pg_side *s, const char *db, struct miren_error *err)
{
	return pgi_tenant_connect(s->disk_dir, s->port, s->su_password, db, APP_CHANGE, err);
}

/* The first value of a query with text parameters, malloc'd; NULL with
 * err when it fails or gives no row. */
static char *value_of(PGconn *c, const char *sql, int n, const char *const *params,
		      const char *what, struct miren_error *err)
{
	PGresult *r = PQexecParams(c, sql, n, NULL, params, NULL, NULL, 0);
	char *out = NULL;
	if (r && PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) >= 1 && PQnfields(r) >= 1)
		out = xstrdup(PQgetisnull(r, 0, 0) ? "" : PQgetvalue(r, 0, 0));
	else if (r && PQresultStatus(r) == PGRES_TUPLES_OK)
		out = xstrdup("");
	else {
		char msg[360];
		pgi_one_line(msg, sizeof(msg), PQerrorMessage(c));
		miren_error_set(err,
				pgi_sql_code(c, r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL),
				"cannot %s: %s", what, msg);
	}
	PQclear(r);
	return out;
}

enum miren_err pg_setting(const struct pg_side *s, const char *name, char out[64],
			  struct miren_error *err)
{
	PGconn *c = connect_to(s, "postgres", err);
	if (!c)
		return MIREN_EUNAVAIL;
	const char *p[] = { name };
	char *v = value_of(c, "SELECT current_setting($1)", 1, p, "read a setting", err);
	PQfinish(c);
	if (!v)
		return err->code;
	snprintf(out, 64, "%s", v);
	free(v);
	return 0;
}

/*
 * The tenant's pause over c (any database of the server): its role and
 * second login refused in one transaction, then its sessions ended and
 * waited for (10 s at most) until none is left.
 */
static enum miren_err pause_on(PGconn *c, const char *role, const char *alt,
			       struct miren_error *err)
{
	char *rlit = PQescapeLiteral(c, role, strlen(role)),
	     *alit = PQescapeLiteral(c, alt, strlen(alt));
	char *sql =
		rlit && alit
			? xasprintf("DO $miren$BEGIN\n"
				    "  EXECUTE format('ALTER ROLE %%I NOLOGIN', %s);\n"
				    "  IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = %s) THEN\n"
				    "    EXECUTE format('ALTER ROLE %%I NOLOGIN', %s);\n"
				    "  END IF;\n"
				    "END$miren$",
				    rlit, alit, alit)
			: NULL;
	enum miren_err rc = sql ? pgi_run_sql(c, sql, NULL, "pause the tenant's writes", NULL, err)
				: miren_error_set(err, MIREN_EINTERNAL, "cannot quote role %s",
						  role);
	free(sql);
	PQfreemem(rlit);
	PQfreemem(alit);
	if (rc)
		return rc;
	/* Its sessions end (their open transactions roll back); none may be
	 * left, so that nothing it commits comes after the copy. */
	const char *p[] = { role, alt };
	int64_t deadline = io_mono_ms() + 10000;
	for (;;) {
		char *left = value_of(c,
				      "SELECT count(*) FILTER (WHERE NOT pg_terminate_backend(pid, "
				      "5000))::text FROM pg_stat_activity"
				      " WHERE usename IN ($1, $2) AND pid <> pg_backend_pid()",
				      2, p, "end the tenant's sessions", err);
		if (!left)
			return err->code;
		bool none = !strcmp(left, "0");
		free(left);
		if (none)
			return 0;
		if (io_mono_ms() > deadline)
			return miren_error_set(err, MIREN_EUNAVAIL,
					       "the sessions of role %s did not end within 10 s",
					       role);
		pgi_nap_ms(5);
	}
}

/* How many sessions role and alt have, in *count. */
static enum miren_err sessions_of(PGconn *c, const char *role, const char *alt, long long *count,
				  struct miren_error *err)
{
	*count = 0;
	const char *p[] = { role, alt };
	char *n = value_of(c,
			   "SELECT count(*)::text FROM pg_stat_activity WHERE usename IN ($1, $2)",
			   2, p, "count the tenant's sessions", err);
	if (!n)
		return err->code;
	enum miren_err rc =
		num_parse(n, 0, INT_MAX, count)
			? 0
			: miren_error_set(err, MIREN_EINTERNAL,
					  "the tenant's sessions were counted as '%.40s'", n);
	free(n);
	return rc;
}

enum miren_err pg_tenant_pause(const struct pg_side *s, const char *role, const char *login,
			       bool pause, struct miren_error *err)
{
	char alt[64];
	enum miren_err rc = pg_alt_login(role, alt, err);
	if (rc)
		return rc;
	PGconn *c = connect_to(s, "postgres", err);
	if (!c)
		return MIREN_EUNAVAIL;
	if (pause) {
		rc = pause_on(c, role, alt, err);
	} else {
		char *q = pgi_quote_ident(c, login, err);
		char *sql = q ? xasprintf("ALTER ROLE %s LOGIN", q) : NULL;
		rc = sql ? pgi_run_sql(c, sql, NULL, "let the tenant write again", NULL, err)
			 : err->code;
		free(sql);
		PQfreemem(q);
	}
	PQfinish(c);
	return rc;
}

/* 'value' for a connection string: quoted, \ and ' escaped. */
static void conninfo_value(struct strbuf *sb, const char *v)
{
	strbuf_addch(sb, '\'');
	for (const char *p = v; *p; p++) {
		if (*p == '\\' || *p == '\'')
			strbuf_addch(sb, '\\');
		strbuf_addch(sb, *p);
	}
	strbuf_addch(sb, '\'');
}

/* The subscription's connection string to the publisher's socket (to free,
 * wiped: it holds the password). */
static char *publisher_conninfo(const struct pg_side *from, const char *db)
{
	struct strbuf sb;
	strbuf_init(&sb, 0);
	char *sock = pg_socket_dir(from->disk_dir);
	strbuf_adds(&sb, "host=");
	conninfo_value(&sb, sock);
	strbuf_addf(&sb, " port=%d user=" PG_SUPERUSER " dbname=", from->port);
	conninfo_value(&sb, db);
	strbuf_adds(&sb, " application_name=" APP_CHANGE " password=");
	conninfo_value(&sb, from->su_password);
	free(sock);
	return strbuf_detach(&sb, NULL);
}

/* How many errors the copy's workers may report (each is retried by the
 * server after wal_retrieve_retry_interval, 5 s: a worker cut off under
 * load comes back) before the copy counts as failed. */
#define COPY_ERRORS_MAX "5"

/* Whether every table of the subscription is ready ('r'), in *ready; an
 * error when it cannot be told or the copy failed. */
static enum miren_err synced(PGconn *to, const char *name, bool *ready, struct miren_error *err)
{
	*ready = false;
	const char *p[] = { name };
	char *v = value_of(to,
			   "SELECT CASE WHEN s.oid IS NULL THEN 'gone'"
			   " WHEN coalesce(st.sync_error_count, 0) + "
			   "coalesce(st.apply_error_count, 0)"
			   " >= " COPY_ERRORS_MAX " THEN 'failed'"
			   " ELSE (SELECT count(*) FILTER (WHERE srsubstate <> 'r')::text"
			   " FROM pg_subscription_rel WHERE srsubid = s.oid) END"
			   " FROM (SELECT $1::name AS n) q LEFT JOIN pg_subscription s"
			   " ON s.subname = q.n LEFT JOIN pg_stat_subscription_stats st"
			   " ON st.subid = s.oid",
			   1, p, "read the copy's progress", err);
	if (!v)
		return err->code;
	enum miren_err rc = 0;
	*ready = !strcmp(v, "0");
	if (!strcmp(v, "gone") || !strcmp(v, "failed")) {
		rc = miren_error_set(err, MIREN_EIO, "the copy of the data failed");
		miren_error_detail(err, "subscription %s %s; the new server's log says why", name,
				   !strcmp(v, "gone") ? "is gone" : "reports errors");
	}
	free(v);
	return rc;
}

enum miren_err pg_copy_start(const struct pg_side *from, const struct pg_side *to, const char *db,
			     const char *name, const atomic_bool *stop, struct miren_error *err)
{
	static const char *const dup[] = { "42710", NULL };
	enum miren_err rc = 0;
	PGconn *pc = connect_to(from, db, err), *sc = NULL;
	char *qname = NULL, *lit = NULL, *conninfo = NULL, *sql = NULL;
	if (!pc)
		return MIREN_EUNAVAIL;
	/* A table without a key cannot be published for updates and deletes
	 * (the app's would fail): such tables identify rows by all columns. */
	rc = pgi_run_sql(pc,
			 "DO $miren$DECLARE r record; BEGIN\n"
			 "  FOR r IN SELECT c.oid::regclass AS t FROM pg_class c"
			 "   JOIN pg_namespace n ON n.oid = c.relnamespace"
			 "   WHERE c.relkind IN ('r', 'p') AND c.relreplident = 'd'"
			 "   AND n.nspname NOT IN ('pg_catalog', 'information_schema')"
			 "   AND n.nspname NOT LIKE 'pg_toast%'"
			 "   AND NOT EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid"
			 "    AND i.indisprimary) LOOP\n"
			 "    EXECUTE format('ALTER TABLE %s REPLICA IDENTITY FULL', r.t);\n"
			 "  END LOOP;\n"
			 "END$miren$",
			 NULL, "give the tables without a key a replica identity", NULL, err);
	if (!rc)
		rc = pgi_run_sql(pc, "CREATE PUBLICATION " PUBLICATION " FOR ALL TABLES", dup,
				 "publish the tenant's tables", NULL, err);
	if (rc)
		goto out;
	if (!(sc = connect_to(to, db, err))) {
		rc = MIREN_EUNAVAIL;
		goto out;
	}
	conninfo = publisher_conninfo(from, db);
	if (!(qname = pgi_quote_ident(sc, name, err)) ||
	    !(lit = PQescapeLiteral(sc, conninfo, strlen(conninfo)))) {
		rc = miren_error_set(err, MIREN_EINTERNAL, "cannot quote the subscription");
		goto out;
	}
	/* The apply worker flushes each commit it applies before it answers,
	 * so what the publisher's slot says was received is on disk. */
	sql = xasprintf("CREATE SUBSCRIPTION %s CONNECTION %s PUBLICATION " PUBLICATION
			" WITH (slot_name = %s, copy_data = true, synchronous_commit = 'on')",
			qname, lit, qname);
	rc = pgi_run_sql(sc, sql, dup, "subscribe to the tenant's tables", NULL, err);
	if (rc)
		goto out;
	for (;;) {
		bool done;
		if ((rc = synced(sc, name, &done, err)) || done)
			break;
		if (stop && atomic_load(stop)) {
			rc = miren_error_set(err, MIREN_EUNAVAIL, "the daemon stops");
			break;
		}
		pgi_nap_ms(SYNC_POLL_MS);
	}
out:
	pgi_free_secret(sql);
	if (lit) {
		explicit_bzero(lit, strlen(lit));
		PQfreemem(lit);
	}
	pgi_free_secret(conninfo);
	PQfreemem(qname);
	PQfinish(sc);
	PQfinish(pc);
	return rc;
}

/* Sets every sequence of to's database to its value in from's. */
static enum miren_err copy_sequences(PGconn *pc, PGconn *sc, struct miren_error *err)
{
	PGresult *r = PQexec(pc,
			     "SELECT format('%I.%I', schemaname, sequencename),"
			     " last_value::text FROM pg_sequences WHERE last_value IS NOT NULL");
	enum miren_err rc = 0;
	if (!r || PQresultStatus(r) != PGRES_TUPLES_OK) {
		char msg[360];
		pgi_one_line(msg, sizeof(msg), PQerrorMessage(pc));
		rc = miren_error_set(err, MIREN_EUNAVAIL, "cannot read the sequences: %s", msg);
	}
	for (int i = 0; !rc && i < PQntuples(r); i++) {
		const char *p[] = { PQgetvalue(r, i, 0), PQgetvalue(r, i, 1) };
		char *v = value_of(sc, "SELECT setval($1::regclass, $2::bigint, true)", 2, p,
				   "set a sequence", err);
		if (!v)
			rc = err->code;
		free(v);
	}
	PQclear(r);
	return rc;
}

enum miren_err pg_copy_finish(const struct pg_side *from, const struct pg_side *to, const char *db,
			      const char *role, const char *name, struct miren_error *err)
{
	char alt[64];
	enum miren_err rc = pg_alt_login(role, alt, err);
	if (rc)
		return rc;
	/* Both connections first: the pause lasts only for what needs it. */
	PGconn *pc = connect_to(from, db, err), *sc = NULL;
	char *lsn = NULL;
	if (!pc)
		return MIREN_EUNAVAIL;
	if (!(sc = connect_to(to, db, err))) {
		rc = MIREN_EUNAVAIL;
		goto out;
	}
	int64_t t_pause = io_mono_ms();
	if ((rc = pause_on(pc, role, alt, err)))
		goto out;
	int64_t t_paused = io_mono_ms();
	/* Everything the tenant committed is before this point (its sessions
	 * are gone); a commit of our own flushes the log up to it. */
	lsn = value_of(pc, "SELECT pg_current_wal_insert_lsn()::text", 0, NULL,
		       "read the log's position", err);
	char *x = lsn ? value_of(pc, "SELECT txid_current()::text", 0, NULL, "flush the log", err)
		      : NULL;
	if (!x) {
		rc = err->code;
		goto out;
	}
	free(x);
	const char *p[] = { name, lsn };
	int64_t deadline = io_mono_ms() + CATCHUP_TIMEOUT_MS;
	for (;;) {
		char *v = value_of(pc,
				   "SELECT coalesce((SELECT confirmed_flush_lsn >= $2::pg_lsn FROM"
				   " pg_replication_slots WHERE slot_name = $1), false)::text",
				   2, p, "read how far the copy got", err);
		if (!v) {
			rc = err->code;
			goto out;
		}
		bool there = !strcmp(v, "true");
		free(v);
		bool ready = false;
		if (there && (rc = synced(sc, name, &ready, err)))
			goto out;
		if (ready)
			break;
		if (io_mono_ms() > deadline) {
			rc = miren_error_set(err, MIREN_EUNAVAIL,
					     "the copy did not catch up within %d s",
					     CATCHUP_TIMEOUT_MS / 1000);
			goto out;
		}
		pgi_nap_ms(2);
	}
	int64_t t_caught = io_mono_ms();
	/* A session that logged in as the pause began would have shown by
	 * now: none may have written past the copy. */
	long long n = 0;
	if ((rc = sessions_of(pc, role, alt, &n, err)))
		goto out;
	if (n != 0) {
		rc = miren_error_set(err, MIREN_EUNAVAIL,
				     "a session of role %s began during the pause", role);
		goto out;
	}
	rc = copy_sequences(pc, sc, err);
	log_debug("copy %s: the pause took %lld ms, the catch-up %lld ms, the sequences %lld ms",
		  name, (long long)(t_paused - t_pause), (long long)(t_caught - t_paused),
		  (long long)(io_mono_ms() - t_caught));
out:
	free(lsn);
	PQfinish(sc);
	PQfinish(pc);
	return rc;
}

/* Drops the subscription name on to (its slots on the publisher with it
 * when it can reach it, else not); *suboid gets its oid ("" when none). */
static enum miren_err drop_subscription(const struct pg_side *to, const char *db, const char *name,
					char **suboid, struct miren_error *err)
{
	static const char *const undef[] = { "42704", NULL };
	*suboid = NULL;
	PGconn *sc = connect_to(to, db, err);
	if (!sc) {
		/* No database, no server: no subscription. */
		miren_error_clear(err);
		return 0;
	}
	const char *p[] = { name };
	enum miren_err rc = 0;
	char *qname = NULL, *sql = NULL;
	*suboid = value_of(sc, "SELECT oid::text FROM pg_subscription WHERE subname = $1", 1, p,
			   "find the copy's subscription", err);
	if (!*suboid) {
		rc = err->code;
		goto out;
	}
	if (!**suboid)
		goto out;
	if (!(qname = pgi_quote_ident(sc, name, err))) {
		rc = err->code;
		goto out;
	}
	sql = xasprintf("ALTER SUBSCRIPTION %s DISABLE", qname);
	rc = pgi_run_sql(sc, sql, undef, "stop the copy", NULL, err);
	free(sql);
	sql = xasprintf("DROP SUBSCRIPTION IF EXISTS %s", qname);
	if (!rc && pgi_run_sql(sc, sql, NULL, "end the copy", NULL, err) != 0) {
		/* The publisher cannot be reached: its slots are dropped there
		 * by name; the subscription goes without them. */
		free(sql);
		sql = xasprintf("ALTER SUBSCRIPTION %s SET (slot_name = NONE)", qname);
		rc = pgi_run_sql(sc, sql, undef, "detach the copy", NULL, err);
		free(sql);
		sql = xasprintf("DROP SUBSCRIPTION IF EXISTS %s", qname);
		if (!rc)
			rc = pgi_run_sql(sc, sql, NULL, "end the copy", NULL, err);
	}
out:
	free(sql);
	PQfreemem(qname);
	PQfinish(sc);
	return rc;
}

enum miren_err pg_copy_cancel(const struct pg_side *from, const struct pg_side *to, const char *db,
			      const char *name, struct miren_error *err)
{
	char *suboid = NULL;
	enum miren_err rc = to ? drop_subscription(to, db, name, &suboid, err) : 0;
	if (rc || !from) {
		free(suboid);
		return rc;
	}
	PGconn *pc = connect_to(from, "postgres", err);
	if (!pc) {
		free(suboid);
		return MIREN_EUNAVAIL;
	}
	/* The slots the copy made there: its own and its table copies'
	 * (pg_<subscription oid>_sync_...), their senders ended first. */
	char *pattern = xasprintf("pg\\_%s\\_sync\\_%%", suboid && *suboid ? suboid : "0");
	const char *p[] = { name, pattern };
	for (int tries = 0; tries < 50; tries++) {
		char *v = value_of(pc,
				   "SELECT count(pg_terminate_backend(active_pid))::text"
				   " FROM pg_replication_slots WHERE active"
				   " AND (slot_name = $1 OR slot_name LIKE $2)",
				   2, p, "end the copy's senders", err);
		free(v);
		/* (one that became active meanwhile refuses: the next try) */
		v = value_of(pc,
			     "SELECT count(pg_drop_replication_slot(slot_name))::text"
			     " FROM pg_replication_slots WHERE NOT active"
			     " AND (slot_name = $1 OR slot_name LIKE $2)",
			     2, p, "drop the copy's slots", err);
		free(v);
		char *n = value_of(pc,
				   "SELECT count(*)::text FROM pg_replication_slots"
				   " WHERE slot_name = $1 OR slot_name LIKE $2",
				   2, p, "find the copy's slots", err);
		bool none = n && !strcmp(n, "0");
		free(n);
		if (none) {
			miren_error_clear(err);
			break;
		}
		pgi_nap_ms(100);
	}
	if (!rc) {
		char *n = value_of(pc,
				   "SELECT count(*) FROM pg_replication_slots WHERE slot_name = $1"
				   " OR slot_name LIKE $2",
				   2, p, "find the copy's slots", err);
		if (!n)
			rc = err->code;
		else if (strcmp(n, "0") != 0)
			rc = miren_error_set(err, MIREN_EUNAVAIL,
					     "the copy's replication slots are still in use");
		free(n);
	}
	free(pattern);
	PQfinish(pc);
	free(suboid);
	if (rc)
		return rc;
	/* The publication, in the tenant's database (gone with it: fine). */
	pc = connect_to(from, db, err);
	if (!pc) {
		miren_error_clear(err);
		return 0;
	}
	rc = pgi_run_sql(pc, "DROP PUBLICATION IF EXISTS " PUBLICATION, NULL, "end the publication",
			 NULL, err);
	PQfinish(pc);
	return rc;
}

enum miren_err pg_copy_leftovers(const struct pg_side *s, char *const *dbs, size_t n_dbs,
				 json_t *out, struct miren_error *err)
{
	PGconn *c = connect_to(s, "postgres", err);
	if (!c)
		return MIREN_EUNAVAIL;
	PGresult *r = PQexec(c, "SELECT 'subscription ' || subname FROM pg_subscription UNION ALL"
				" SELECT 'replication slot ' || slot_name FROM pg_replication_slots"
				" WHERE slot_name LIKE 'miren\\_chg\\_%' OR slot_name LIKE"
				" 'pg\\_%\\_sync\\_%' ORDER BY 1");
	enum miren_err rc = 0;
	if (!r || PQresultStatus(r) != PGRES_TUPLES_OK)
		rc = miren_error_set(err, MIREN_EUNAVAIL, "cannot list the server's copies");
	for (int i = 0; !rc && i < PQntuples(r); i++)
		json_array_append_new(out, json_string(PQgetvalue(r, i, 0)));
	PQclear(r);
	PQfinish(c);
	for (size_t i = 0; !rc && i < n_dbs; i++) {
		if (!(c = connect_to(s, dbs[i], err))) {
			miren_error_clear(err);
			continue;
		}
		r = PQexec(c, "SELECT 'publication ' || pubname || ' in database ' ||"
			      " current_database() FROM pg_publication");
		for (int k = 0; r && PQresultStatus(r) == PGRES_TUPLES_OK && k < PQntuples(r); k++)
			json_array_append_new(out, json_string(PQgetvalue(r, k, 0)));
		PQclear(r);
		PQfinish(c);
	}
	return rc;
}
