/*
 * Continuous WAL archiving of every miren-postgresql server, for
 * point-in-time recovery: the settings a server starts with
 * (archive_command runs `miren addon-helper miren-postgresql wal-archive`,
 * the engine's helper hook, as the server's user), the archive directory
 * in the backup store (wal/<server id>/, mechanics in pg_wal.c), what
 * `miren addon list` shows of it, and the restore_command of a recovering
 * copy.
 *
 * PostgreSQL retries a failed archive_command by itself (and keeps the
 * WAL meanwhile); the helper records each outcome in the data directory
 * (PG_ARCHIVE_STATUS), which describe turns into a warning while the last
 * attempt failed.
 */
#include "addon/postgresql/pg_internal.h"
#include "addon/postgresql/provider.h"
#include "addon/server.h"
#include "util/fs.h"
#include "util/io.h"
#include "util/log.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* A segment is archived at least this often while the server writes
 * (PostgreSQL's archive_timeout); a recovery to "now" forces a switch. */
#define ARCHIVE_TIMEOUT_S 300

/* Safe between sh's single quotes: no quote, no control character. */
static bool quotable(const char *s)
{
	for (; *s; s++)
		if (*s == '\'' || (unsigned char)*s < 0x20 || *s == 0x7f)
			return false;
	return true;
}

char *pgp_wal_dir(const struct addon_ctx *ctx, const char *server_id)
{
	if (!ctx->backup_dir || !*ctx->backup_dir)
		return NULL;
	return xasprintf("%s/wal/%s", ctx->backup_dir, server_id);
}

enum miren_err pgp_wal_dir_ensure(struct addon_ctx *ctx, const char *server_id, char **out,
				  struct miren_error *err)
{
	*out = NULL;
	char *dir = pgp_wal_dir(ctx, server_id);
	if (!dir)
		return 0;
	char *parent = xasprintf("%s/wal", ctx->backup_dir);
	enum miren_err rc = 0;
	/* The server's user must reach wal/<server>/: the store's directory
	 * and wal/ are searchable (not listable) by it. */
	struct stat st;
	if (fs_mkdir_p(parent, 0711) != 0 ||
	    (stat(ctx->backup_dir, &st) == 0 && !(st.st_mode & S_IXOTH) &&
	     chmod(ctx->backup_dir, (st.st_mode & 07777) | 0011) != 0) ||
	    chmod(parent, 0711) != 0 || (mkdir(dir, 0700) != 0 && errno != EEXIST) ||
	    ((ctx->uid != (uid_t)-1 || ctx->gid != (gid_t)-1) &&
	     chown(dir, ctx->uid, ctx->gid) != 0)) {
		rc = miren_error_set(err, MIREN_EIO, "cannot make the WAL archive directory %s",
				     dir);
		miren_error_detail(err, "%s", io_strerror(errno));
	}
	free(parent);
	if (rc)
		free(dir);
	else
		*out = dir;
	return rc;
}

char **pgp_archive_settings(struct addon_ctx *ctx, const struct server_rec *srv)
{
	char *dir = NULL;
	struct miren_error err;
	if (pgp_wal_dir_ensure(ctx, srv->id, &dir, &err) != 0) {
		/* Archiving stays on: each attempt fails visibly and is
		 * retried, and the WAL is kept until it succeeds. */
		log_warn("server %s: %s: %s", srv->id, err.message, err.detail);
		dir = pgp_wal_dir(ctx, srv->id);
	}
	char *helper = addon_helper_command(PG_ADDON);
	char **out = NULL;
	if (!dir) {
		/* no backup store: nothing to archive into */
	} else if (!helper || !quotable(dir)) {
		log_warn("server %s: WAL archiving is off: the path of the miren binary or of "
			 "%s cannot be quoted for a shell",
			 srv->id, dir);
	} else {
		out = xcalloc(4, sizeof(*out));
		out[0] = xstrdup("archive_mode=on");
		out[1] = xasprintf("archive_command=%s wal-archive '%s' %%p %%f", helper, dir);
		out[2] = xasprintf("archive_timeout=%d", ARCHIVE_TIMEOUT_S);
	}
	free(helper);
	free(dir);
	return out;
}

/* `wal-archive DIR PATH NAME` (archive_command, run in the data
 * directory) and `wal-restore DIR NAME PATH` (restore_command). */
int pgp_helper(int argc, char **argv)
{
	struct miren_error err;
	miren_error_clear(&err);
	if (argc == 4 && !strcmp(argv[0], "wal-archive")) {
		enum miren_err rc = pg_wal_archive(argv[1], argv[2], argv[3], &err);
		/* PostgreSQL runs it in the server's data directory; the status
		 * is written only there. */
		if (access("PG_VERSION", F_OK) == 0)
			pg_wal_status_write(".", argv[3], rc ? &err : NULL);
		if (!rc)
			return 0;
		fprintf(stderr, "miren: cannot archive %s: %s%s%s\n", argv[3], err.message,
			err.detail[0] ? ": " : "", err.detail);
		return 1;
	}
	if (argc == 4 && !strcmp(argv[0], "wal-restore")) {
		enum miren_err rc = pg_wal_fetch(argv[1], argv[2], argv[3], &err);
		if (!rc)
			return 0;
		/* PostgreSQL asks for files that do not exist (the next
		 * timeline's history, the segment after the last): quiet. */
		if (rc != MIREN_ENOTFOUND)
			fprintf(stderr, "miren: cannot restore %s: %s\n", argv[2], err.message);
		return 1;
	}
	fprintf(stderr,
		"usage: miren addon-helper %s wal-archive DIR PATH NAME | "
		"wal-restore DIR NAME PATH\n",
		PG_ADDON);
	return 2;
}

/* "2026-11-30 12:34:56+00" of t (UTC). */
static void utc_text(int64_t t, char out[32])
{
	time_t tt = (time_t)t;
	struct tm tm;
	gmtime_r(&tt, &tm);
	strftime(out, 32, "%Y-%m-%d %H:%M:%S+00", &tm);
}

/* Archive lag worth a warning: a finished segment waiting this long. */
#define ARCHIVE_LAG_WARN_S 120

/* Appends w (a string) to o's "warnings" array, made when missing. */
static void add_warning(json_t *o, json_t *w)
{
	json_t *warnings = json_object_get(o, "warnings");
	if (!json_is_array(warnings)) {
		warnings = json_array();
		json_object_set_new(o, "warnings", warnings);
	}
	json_array_append_new(warnings, w);
}

/* How many finished segments of pgdata wait for archive_command (their
 * pg_wal/archive_status/<segment>.ready files), the oldest's time in
 * *oldest (0: none). */
static int archive_waiting(const char *pgdata, int64_t *oldest)
{
	*oldest = 0;
	char *dir = fs_join(pgdata, "pg_wal/archive_status");
	DIR *d = opendir(dir);
	int n = 0;
	for (struct dirent *e; d && (e = readdir(d));) {
		size_t len = strlen(e->d_name);
		struct stat sb;
		if (len < 6 || strcmp(e->d_name + len - 6, ".ready") ||
		    fstatat(dirfd(d), e->d_name, &sb, 0) != 0)
			continue;
		n++;
		if (!*oldest || sb.st_mtime < *oldest)
			*oldest = sb.st_mtime;
	}
	if (d)
		closedir(d);
	free(dir);
	return n;
}

void pgp_wal_describe(struct addon_ctx *ctx, const struct server_rec *srv, const char *disk_dir,
		      json_t *o)
{
	char *pgdata = fs_join(disk_dir, "pgdata");
	json_t *st = pg_wal_status_read(pgdata);
	int64_t oldest;
	int waiting = archive_waiting(pgdata, &oldest);
	free(pgdata);
	char *dir = pgp_wal_dir(ctx, srv->id);
	char newest[64] = "";
	int64_t at = dir ? pg_wal_newest(dir, newest) : 0;
	free(dir);
	if (!st && !at && !waiting)
		return;
	json_t *w = json_object();
	bool ok = !st || json_is_true(json_object_get(st, "ok"));
	json_object_set_new(w, "status", json_string(ok ? "ok" : "failing"));
	/* The lag: finished segments not archived yet, and for how long. */
	int64_t lag = waiting ? time(NULL) - oldest : 0;
	json_object_set_new(w, "waiting_segments", json_integer(waiting));
	json_object_set_new(w, "lag_s", json_integer(lag < 0 ? 0 : lag));
	if (ok && lag > ARCHIVE_LAG_WARN_S) {
		add_warning(o, json_sprintf("WAL archiving of server %s lags: %d segment%s "
					    "waiting, the oldest for %lld s",
					    srv->id, waiting, waiting == 1 ? "" : "s",
					    (long long)lag));
	}
	if (at) {
		char t[32];
		utc_text(at, t);
		json_object_set_new(w, "last_archived", json_string(newest));
		json_object_set_new(w, "last_archived_at", json_string(t));
	}
	if (!ok) {
		const char *e = json_string_value(json_object_get(st, "error"));
		const char *d = json_string_value(json_object_get(st, "detail"));
		const char *wal = json_string_value(json_object_get(st, "wal"));
		char t[32];
		utc_text(json_integer_value(json_object_get(st, "at")), t);
		json_object_set_new(w, "error", json_string(e ? e : ""));
		json_object_set_new(w, "failed_at", json_string(t));
		add_warning(o, json_sprintf("WAL archiving of server %s fails (%s at %s): "
					    "%s%s%s; it is retried, and the WAL is kept "
					    "until it succeeds",
					    srv->id, wal ? wal : "?", t, e ? e : "",
					    d && *d ? ": " : "", d && *d ? d : ""));
	}
	json_object_set_new(o, "wal_archive", w);
	json_decref(st);
}

enum miren_err pgp_recovery_settings(struct addon_ctx *ctx, const char *server_id,
				     const char *pgdata, const char *target_time, char ***out,
				     struct miren_error *err)
{
	*out = NULL;
	char *dir = pgp_wal_dir(ctx, server_id);
	char *helper = addon_helper_command(PG_ADDON);
	enum miren_err rc = 0;
	if (!target_time || !*target_time || strlen(target_time) > 40 ||
	    strspn(target_time, "0123456789-: +.") != strlen(target_time)) {
		rc = miren_error_set(err, MIREN_EINVAL, "'%.40s' is not a recovery target time",
				     target_time ? target_time : "");
		goto out;
	}
	if (!dir || !helper || !quotable(dir)) {
		rc = miren_error_set(err, MIREN_EUNAVAIL,
				     "server %s has no WAL archive to recover from", server_id);
		goto out;
	}
	char *signal = fs_join(pgdata, "recovery.signal");
	char *standby = fs_join(pgdata, "standby.signal");
	unlink(standby);
	rc = pgi_write_owned(signal, "", 0600, ctx->uid, ctx->gid, err);
	free(standby);
	free(signal);
	if (rc)
		goto out;
	char **s = xcalloc(8, sizeof(*s));
	s[0] = xasprintf("restore_command=%s wal-restore '%s' %%f %%p", helper, dir);
	s[1] = xasprintf("recovery_target_time=%s", target_time);
	s[2] = xstrdup("recovery_target_action=promote");
	s[3] = xstrdup("recovery_target_timeline=current");
	/* No connection before the target is reached and the copy promoted:
	 * what a dump reads is the data as at the target. */
	s[4] = xstrdup("hot_standby=off");
	s[5] = xstrdup("archive_mode=off");
	*out = s;
out:
	free(helper);
	free(dir);
	return rc;
}
