/*
 * Backup and restore hooks of the miren-postgresql provider (the
 * framework's side is disk_ops.c).
 *
 * A snapshot of a disk whose server runs is taken with PostgreSQL's own
 * online backup: pg_backup_start (a fast checkpoint, after a temporary
 * replication slot reserved the WAL), a copy of every file but the WAL,
 * pg_backup_stop, then backup_label and the WAL segments from the start
 * segment to the stop segment.  Started on the copy, PostgreSQL replays
 * that WAL and is consistent as of pg_backup_stop: one point in time, and
 * writers never pause.
 *
 * A restored copy must be a cluster of the disk's server's major version
 * (and one this host has), and must start: its recovery runs in
 * single-user mode in the staging directory before anything is swapped.
 */
#include "addon/postgresql/provider.h"
#include "addon/server.h"
#include "util/fs.h"
#include "util/io.h"
#include "util/log.h"
#include "util/num.h"
#include "util/strbuf.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The basename of a relative path. */
static const char *base_of(const char *rel)
{
	const char *s = strrchr(rel, '/');
	return s ? s + 1 : rel;
}

/* PostgreSQL's temporary relation files: t<digits>_<digits>[_<fork>][.<n>]. */
static bool temp_rel_name(const char *b)
{
	if (b[0] != 't' || !isdigit((unsigned char)b[1]))
		return false;
	b += 1 + strspn(b + 1, "0123456789");
	if (*b != '_' || !isdigit((unsigned char)b[1]))
		return false;
	b += 1 + strspn(b + 1, "0123456789");
	if (*b == '_')
		b += 1 + strspn(b + 1, "abcdefghijklmnopqrstuvwxyz");
	if (*b == '.' && isdigit((unsigned char)b[1]))
		b += 1 + strspn(b + 1, "0123456789");
	return *b == '\0';
}

/*
 * What a copy leaves out, following PostgreSQL's own base backup
 * (basebackup.c): files that are never copied, temporary files and
 * temporary relations, the relation cache init file pg_internal.init
 * (rebuilt at start, and invalid on a restored copy); online, also the
 * WAL (added after pg_backup_stop) and the contents of the directories
 * that start empty.  The socket dir "run/" is never copied.
 */
static bool skip(const char *rel, bool is_dir, bool online)
{
	static const char *const files[] = { "pgdata/postmaster.pid", "pgdata/postmaster.opts",
					     "pgdata/backup_label", "pgdata/backup_label.old",
					     "pgdata/tablespace_map",
					     "pgdata/postgresql.auto.conf.tmp",
					     "pgdata/current_logfiles.tmp",
					     /* NOLINTNEXTLINE(bugprone-suspicious-missing-comma) */
					     "pgdata/" PG_ARCHIVE_STATUS,
					     /* NOLINTNEXTLINE(bugprone-suspicious-missing-comma) */
					     "pgdata/" PG_ARCHIVE_STATUS ".tmp", NULL };
	static const char *const emptied[] = {
		"pgdata/pg_wal/",      "pgdata/pg_replslot/", "pgdata/pg_dynshmem/",
		"pgdata/pg_notify/",   "pgdata/pg_serial/",   "pgdata/pg_snapshots/",
		"pgdata/pg_stat_tmp/", "pgdata/pg_subtrans/", NULL
	};
	const char *b = base_of(rel);
	if (!strcmp(rel, "run") || !strncmp(rel, "run/", 4))
		return true;
	for (const char *const *f = files; *f; f++)
		if (!strcmp(rel, *f))
			return true;
	if (!strncmp(b, "pgsql_tmp", 9))
		return true;
	if (!is_dir && (!strncmp(b, "pg_internal.init", 16) ||
			(!strncmp(rel, "pgdata/base/", 12) && temp_rel_name(b))))
		return true;
	if (!online)
		return false;
	for (const char *const *d = emptied; *d; d++) {
		size_t l = strlen(*d);
		/* Keep the directory itself and pg_wal/archive_status. */
		if (!strncmp(rel, *d, l) &&
		    !(is_dir && !strcmp(rel, "pgdata/pg_wal/archive_status")))
			return true;
	}
	return false;
}

bool pgp_copy_skip(const char *rel, bool is_dir)
{
	return skip(rel, is_dir, false);
}

static bool skip_online(const char *rel, bool is_dir, void *user)
{
	(void)user;
	return skip(rel, is_dir, true);
}

/* The online backup in progress (addon_backup.engine). */
struct pgp_backup {
	struct pg_backup *pg;
	char *disk_dir;
	char *disk;
};

enum miren_err pgp_backup_begin(struct addon_ctx *ctx, const struct server_rec *srv,
				struct addon_backup *b, struct miren_error *err)
{
	struct pgp_server ss;
	pgp_server_parse(srv, &ss);
	struct pgp_backup *pb = xcalloc(1, sizeof(*pb));
	pb->disk_dir = addon_disk_dir(ctx, srv->disk);
	pb->disk = xstrdup(srv->disk);
	b->engine = pb;
	b->method = "postgresql-online-backup";
	/* Online, the server writes on while the files are copied; WAL replay
	 * repairs the copy, as with PostgreSQL's own base backup. */
	b->tree_flags = SNAP_TREE_VOLATILE;
	b->skip = skip_online;
	b->header = json_pack("{s:s}", "postgresql_version", ss.version);
	enum miren_err rc = pg_backup_begin(pb->disk_dir, srv->port, ss.su_password, &pb->pg, err);
	pgp_server_release(&ss);
	return rc;
}

/* Adds pg_wal segments named from..to (same timeline, string order). */
static enum miren_err add_wal(const char *disk_dir, struct snap_writer *w, const char *from,
			      const char *to, struct miren_error *err)
{
	char *wal = fs_join(disk_dir, "pgdata/pg_wal");
	struct dirent **names;
	int n = scandir(wal, &names, NULL, alphasort);
	enum miren_err rc = 0;
	if (n < 0)
		rc = miren_error_set(err, MIREN_EIO, "cannot list '%s': %s", wal,
				     io_strerror(errno));
	for (int i = 0; i < n; i++) {
		const char *f = names[i]->d_name;
		bool seg = strlen(f) == 24 && strspn(f, "0123456789ABCDEF") == 24;
		bool history = strstr(f, ".history") != NULL;
		if (!rc && ((seg && strcmp(f, from) >= 0 && strcmp(f, to) <= 0) || history)) {
			char *path = fs_join(wal, f);
			struct strbuf sb;
			strbuf_init(&sb, 64u << 20);
			if (strbuf_read_file(&sb, path) != 0)
				rc = miren_error_set(err, MIREN_EIO, "cannot read WAL segment %s",
						     f);
			char *rel = xasprintf("pgdata/pg_wal/%s", f);
			if (!rc)
				rc = snap_add_data(w, rel, sb.buf, sb.len, 0600, err);
			free(rel);
			strbuf_release(&sb);
			free(path);
		}
		free(names[i]);
	}
	if (n >= 0)
		free(names);
	free(wal);
	return rc;
}

enum miren_err pgp_backup_end(struct addon_ctx *ctx, struct addon_backup *b, struct snap_writer *w,
			      struct miren_error *err)
{
	(void)ctx;
	struct pgp_backup *pb = b->engine;
	char *label = NULL, *stop_lsn = NULL, *stop_wal = NULL;
	enum miren_err rc = pg_backup_end(pb->pg, &label, &stop_lsn, &stop_wal, err);
	const char *p = label ? strstr(label, "(file ") : NULL;
	char start_wal[32] = "";
	if (!rc && (!p || sscanf(p, "(file %24[0-9A-F])", start_wal) != 1))
		rc = miren_error_set(err, MIREN_EINTERNAL,
				     "cannot read the start segment from backup_label");
	if (!rc)
		rc = snap_add_data(w, "pgdata/backup_label", label, strlen(label), 0600, err);
	if (!rc)
		rc = add_wal(pb->disk_dir, w, start_wal, stop_wal, err);
	if (!rc)
		log_info("disk %s: online backup consistent at %s (WAL %s..%s)", pb->disk, stop_lsn,
			 start_wal, stop_wal);
	free(label);
	free(stop_lsn);
	free(stop_wal);
	return rc;
}

void pgp_backup_free(struct addon_ctx *ctx, struct addon_backup *b)
{
	(void)ctx;
	struct pgp_backup *pb = b->engine;
	if (!pb)
		return;
	pg_backup_free(pb->pg);
	free(pb->disk_dir);
	free(pb->disk);
	free(pb);
	b->engine = NULL;
}

enum miren_err pgp_restore_prepare(struct addon_ctx *ctx, const struct server_rec *srv,
				   const json_t *header, const char *staging,
				   struct miren_error *err)
{
	(void)header;
	char *pgdata = fs_join(staging, "pgdata");
	char *ver = fs_join(pgdata, "PG_VERSION");
	enum miren_err rc = 0;
	if (!fs_exists(ver)) {
		if (srv)
			rc = miren_error_set(err, MIREN_EINVAL,
					     "the backup holds no PostgreSQL cluster, and disk "
					     "'%s' "
					     "belongs to a PostgreSQL server; nothing was changed",
					     srv->disk);
		goto out; /* not a PostgreSQL disk: nothing to prove */
	}
	int major = pg_cluster_major(pgdata, err);
	if (major < 0) {
		rc = MIREN_EINVAL;
		goto out;
	}
	if (srv) {
		struct pgp_server ss;
		pgp_server_parse(srv, &ss);
		long long v = 0; /* not a number: 0, no cluster's */
		num_parse(ss.version, 0, INT_MAX, &v);
		int want = (int)v;
		pgp_server_release(&ss);
		if (want != major) {
			rc = miren_error_set(err, MIREN_EINVAL,
					     "the backup holds a PostgreSQL %d cluster and the "
					     "server "
					     "of disk '%s' runs PostgreSQL %d; nothing was changed",
					     major, srv->disk, want);
			miren_error_hint(err,
					 "restore it under a new name with -n, or on a host "
					 "that runs PostgreSQL %d",
					 major);
			goto out;
		}
	}
	struct pg_install inst[8];
	int n = pg_find_installs(inst, 8);
	const struct pg_install *pg = NULL;
	for (int i = 0; i < n; i++)
		if (inst[i].major == major)
			pg = &inst[i];
	if (!pg) {
		rc = miren_error_set(err, MIREN_EINVAL,
				     "the backup holds a PostgreSQL %d cluster and this host has "
				     "no "
				     "PostgreSQL %d; nothing was changed",
				     major, major);
		miren_error_hint(err,
				 "install the Debian package postgresql-%d, or restore it on "
				 "a host that has it",
				 major);
		goto out;
	}
	rc = pg_trial_recover(pg, pgdata, ctx->uid, ctx->gid, err);
	if (rc)
		miren_error_hint(err, "nothing was changed");
out:
	free(ver);
	free(pgdata);
	return rc;
}

enum miren_err pgp_restore_start(struct addon_ctx *ctx, const struct server_rec *srv,
				 struct miren_error *err)
{
	return pgp_ensure_server(ctx, srv->id, true, err);
}

/*
 * Makes every tenant of the server agree with its record after a restore:
 * its role (with the recorded password) and database exist.  The WAL
 * archive and base backups of the server start again (pgp_pitr_reset).  A tenant
 * added after the backup was taken gets an empty database.
 */
enum miren_err pgp_restore_verify(struct addon_ctx *ctx, const struct server_rec *srv,
				  struct addon_inst *tenants, size_t n, struct miren_error *err)
{
	pgp_pitr_reset(ctx, srv);
	struct pgp_server ss;
	pgp_server_parse(srv, &ss);
	char *dir = addon_disk_dir(ctx, srv->disk);
	enum miren_err rc = 0;
	for (size_t i = 0; i < n && !rc; i++) {
		const struct pgp_tenant *t = tenants[i].state;
		if (!*t->role)
			continue;
		/* The role (and database) as recorded, then its logins: the
		 * recorded one working, the other not (a backup may be of
		 * before a rotation). */
		rc = pg_tenant_create(dir, srv->port, ss.su_password, t->role, t->db, t->password,
				      err);
		if (!rc && (t->lg.alt || strcmp(t->lg.login, t->role) != 0))
			rc = pg_tenant_logins(dir, srv->port, ss.su_password, t->role, t->lg.login,
					      t->password, true, err);
	}
	free(dir);
	pgp_server_release(&ss);
	return rc;
}
