/*
 * The server's online backup (pg_backup_start/stop) and the proof that a
 * restored cluster starts; see pg.h and pg_internal.h.
 */
#include "addon/postgresql/pg_internal.h"

#include "supervise/supervise.h"
#include "util/err.h"
#include "util/fault.h"
#include "util/fs.h"
#include "util/num.h"
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

/* ---- online backup -------------------------------------------------------- */

struct pg_backup {
	PGconn *conn;
	char start_lsn[32];
};

enum miren_err pg_backup_begin(const char *disk_dir, int port, const char *su_password,
			       struct pg_backup **out, struct miren_error *err)
{
	*out = NULL;
	PGconn *c = pgi_tenant_connect(disk_dir, port, su_password, "postgres", APP_MIREN, err);
	if (!c)
		return MIREN_EUNAVAIL;
	/* A temporary slot keeps every WAL segment from here on until this
	 * session ends, so none the backup needs is recycled while files are
	 * copied; it goes away by itself if the daemon dies. */
	enum miren_err rc =
		pgi_run_sql(c,
			    "SELECT pg_create_physical_replication_slot('miren_backup_' || "
			    "pg_backend_pid(),"
			    " true, true)",
			    NULL, "reserve WAL for the backup", NULL, err);
	char *lsn = NULL;
	if (!rc) {
		lsn = pgi_query_value(c, "SELECT pg_backup_start('miren', true)::text",
				      "start the online backup", err);
		rc = lsn ? 0 : MIREN_EUNAVAIL;
	}
	if (rc) {
		PQfinish(c);
		return rc;
	}
	struct pg_backup *b = xcalloc(1, sizeof(*b));
	b->conn = c;
	snprintf(b->start_lsn, sizeof(b->start_lsn), "%s", lsn);
	free(lsn);
	*out = b;
	return 0;
}

const char *pg_backup_start_lsn(const struct pg_backup *b)
{
	return b->start_lsn;
}

enum miren_err pg_backup_end(struct pg_backup *b, char **label, char **stop_lsn,
			     char **stop_walfile, struct miren_error *err)
{
	*label = *stop_lsn = *stop_walfile = NULL;
	/* wait_for_archive = false: there is no WAL archive; the segments go
	 * into the snapshot itself. */
	PGresult *r = PQexec(b->conn, "SELECT lsn::text, labelfile, pg_walfile_name(lsn)"
				      " FROM pg_backup_stop(false)");
	enum miren_err rc = 0;
	if (r && PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1 && PQnfields(r) == 3) {
		*stop_lsn = xstrdup(PQgetvalue(r, 0, 0));
		*label = xstrdup(PQgetvalue(r, 0, 1));
		*stop_walfile = xstrdup(PQgetvalue(r, 0, 2));
	} else {
		char msg[360];
		pgi_one_line(msg, sizeof(msg), PQerrorMessage(b->conn));
		rc = miren_error_set(err, MIREN_EUNAVAIL, "cannot finish the online backup: %s",
				     msg);
	}
	PQclear(r);
	return rc;
}

void pg_backup_free(struct pg_backup *b)
{
	if (!b)
		return;
	PQfinish(b->conn); /* aborts a backup not ended; drops the slot */
	free(b);
}

/* ---- restored clusters ----------------------------------------------------- */

/* Recovery replays the WAL of the backup: it may take a while. */
#define PG_TRIAL_TIMEOUT_MS (10 * 60 * 1000)

enum miren_err pg_cluster_major(const char *pgdata, struct miren_error *err)
{
	char *path = xasprintf("%s/PG_VERSION", pgdata);
	struct strbuf sb;
	strbuf_init(&sb, 64);
	long long v;
	int major = -1;
	if (strbuf_read_file(&sb, path) == 0 && num_parse(sb.buf, 10, 9999, &v))
		major = (int)v;
	if (major < 0)
		miren_error_set(err, MIREN_EINVAL, "'%s' does not name a PostgreSQL major version",
				path);
	strbuf_release(&sb);
	free(path);
	return major;
}

/* The message of a server log line, from its level ("LOG:  ...") on;
 * NULL when the line has none. */
static const char *log_message(const char *line)
{
	static const char *const levels[] = {
		"PANIC:", "FATAL:", "ERROR:", "WARNING:", "LOG:", NULL
	};
	size_t n = strcspn(line, "\n");
	const char *best = NULL;
	for (const char *const *l = levels; *l; l++) {
		const char *p = strstr(line, *l);
		if (p && p < line + n && (!best || p < best))
			best = p;
	}
	return best;
}

enum miren_err pg_trial_recover(const struct pg_install *pg, const char *pgdata, uid_t uid,
				gid_t gid, struct miren_error *err)
{
	/* Single-user mode opens no socket and listens nowhere: it runs
	 * recovery, reads stdin (/dev/null: nothing) and shuts down with a
	 * checkpoint, all in this one process. */
	char *bin = xasprintf("%s/postgres", pg->bindir);
	char *const argv[] = { bin, "--single", "-D", (char *)pgdata, "postgres", NULL };
	char *const env[] = { "LANG=C.UTF-8", "PATH=/usr/bin:/bin", NULL };
	char *out = NULL;
	int st = sv_run(argv, env, pgdata, uid, gid, PG_TRIAL_TIMEOUT_MS, &out);
	enum miren_err rc = 0;
	if (st != 0) {
		const char *fatal = NULL;
		for (const char *p = out; p && (p = strstr(p, "FATAL:")); p++)
			fatal = p;
		if (!fatal)
			for (const char *p = out; p && (p = strstr(p, "PANIC:")); p++)
				fatal = p;
		/* The line before the FATAL one often says what it is about
		 * ("invalid value for parameter ..."). */
		const char *prev = NULL;
		if (fatal) {
			const char *ls = fatal;
			while (ls > out && ls[-1] != '\n')
				ls--;
			if (ls > out + 1) {
				prev = ls - 1;
				while (prev > out && prev[-1] != '\n')
					prev--;
				prev = log_message(prev);
			}
		}
		char *text = fatal ? xstrndup(fatal, strcspn(fatal, "\n"))
				   : xstrdup(out ? out : "");
		if (prev && strncmp(prev, "FATAL:", 6)) {
			char *both = xasprintf("%s (%.*s)", text, (int)strcspn(prev, "\n"), prev);
			free(text);
			text = both;
		}
		char line[500];
		pgi_one_line(line, sizeof(line), text);
		free(text);
		rc = miren_error_set(err, MIREN_EINVAL,
				     "the restored PostgreSQL cluster does not start: %s", line);
	}
	free(out);
	free(bin);
	return rc;
}
