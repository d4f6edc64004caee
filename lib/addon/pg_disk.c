/*
 * Backup and restore of addon disks (see disk_ops.h).
 *
 * A snapshot of a disk whose server runs is taken with PostgreSQL's own
 * online backup: pg_backup_start (a fast checkpoint, after a temporary
 * replication slot reserved the WAL), a copy of every file but the WAL,
 * pg_backup_stop, then backup_label and the WAL segments from the start
 * segment to the stop segment.  Started on the copy, PostgreSQL replays that
 * WAL and is consistent as of pg_backup_stop: one point in time, and
 * writers never pause.  A disk whose server is stopped is copied as is.
 *
 * A restore verifies everything into disks/.restore-<hex>, then swaps:
 * disks/<name> -> disks/.old-<name>, staging -> disks/<name>, remove the
 * old.  disk_recover() finishes or undoes a swap a crash cut short.
 */
#include "addon/disk_ops.h"
#include "addon/pg.h"
#include "addon/provider_pg.h"
#include "util/fault.h"
#include "util/fs.h"
#include "util/log.h"
#include "util/secret.h"
#include "util/strbuf.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/*
 * zstd level 1: on PostgreSQL data directories it compresses within 1% of
 * level 3 for about two thirds of the CPU (bench/backup), which is what
 * decides the speed on a small machine.
 */
#define BACKUP_ZSTD_LEVEL 1

/* One disk operation at a time: a restore never swaps a disk under a
 * running backup of it.  A semaphore, not a mutex: a backup is prepared on
 * an API thread and finished on its producer thread. */
static sem_t disk_ops_sem;
static pthread_once_t disk_ops_once = PTHREAD_ONCE_INIT;

static void disk_ops_init(void)
{
	sem_init(&disk_ops_sem, 0, 1);
}

static void disk_ops_lock(void)
{
	pthread_once(&disk_ops_once, disk_ops_init);
	while (sem_wait(&disk_ops_sem) != 0 && errno == EINTR)
		;
}

static void disk_ops_unlock(void)
{
	sem_post(&disk_ops_sem);
}

struct disk_backup_job {
	struct addon_ctx *ctx;
	char *name;
	char *dir;
	json_t *header;
	struct pg_backup *pg; /* NULL: offline copy */
	char start_walfile[32];
	bool locked;
};

int disk_name_check(const char *name, struct miren_error *err)
{
	size_t n = strlen(name);
	bool ok = n > 0 && n <= 128 && ((name[0] >= 'a' && name[0] <= 'z') ||
					(name[0] >= '0' && name[0] <= '9'));
	for (size_t i = 0; ok && i < n; i++)
		ok = (name[i] >= 'a' && name[i] <= 'z') || (name[i] >= '0' && name[i] <= '9') ||
		     name[i] == '-' || name[i] == '_' || name[i] == '.';
	if (ok && !strstr(name, ".."))
		return 0;
	miren_error_set(err, MIREN_EINVAL, "invalid disk name '%.130s'", name);
	miren_error_hint(err, "disk names use lowercase letters, digits, '.', '_' and '-', start "
			      "with a letter or digit, and have at most 128 characters");
	return MIREN_EINVAL;
}

/* The server whose disk is `disk`; MIREN_ENOTFOUND when none. */
static int server_of_disk(struct addon_ctx *ctx, const char *disk, struct server_rec *out)
{
	struct server_rec *srvs;
	size_t n;
	memset(out, 0, sizeof(*out));
	if (store_server_list(ctx->store, &srvs, &n, NULL) != 0)
		return MIREN_EDB;
	int rc = MIREN_ENOTFOUND;
	for (size_t i = 0; i < n; i++)
		if (rc && !strcmp(srvs[i].disk, disk)) {
			*out = srvs[i];
			memset(&srvs[i], 0, sizeof(srvs[i]));
			rc = 0;
		}
	server_recs_free(srvs, n);
	return rc;
}

static bool server_running(struct addon_ctx *ctx, const char *server_id)
{
	char *id = pgp_server_sv_id(server_id);
	struct sv_status st;
	bool up = sv_status(ctx->sv, id, &st) == 0 &&
		  (st.state == SV_RUNNING || st.state == SV_STARTING);
	free(id);
	return up;
}

/* The apps whose addons live on server_id, as a JSON array. */
static json_t *apps_on_server(struct addon_ctx *ctx, const char *server_id)
{
	json_t *apps = json_array();
	struct addon_rec *recs;
	size_t n;
	if (store_addon_list(ctx->store, NULL, &recs, &n, NULL) != 0)
		return apps;
	for (size_t i = 0; i < n; i++) {
		json_t *st = json_loads(recs[i].state_json, 0, NULL);
		if (!strcmp(pgp_jstr(st, "server"), server_id))
			json_array_append_new(apps, json_string(recs[i].app));
		json_decref(st);
	}
	addon_recs_free(recs, n);
	return apps;
}

int disk_backup_prepare(struct addon_ctx *ctx, const char *name, struct disk_backup_job **out,
			struct miren_error *err)
{
	*out = NULL;
	int rc = disk_name_check(name, err);
	if (rc)
		return rc;
	struct disk_rec d;
	rc = store_disk_get(ctx->store, name, &d, err);
	if (rc)
		return rc;
	struct disk_backup_job *job = xcalloc(1, sizeof(*job));
	job->ctx = ctx;
	job->name = xstrdup(name);
	job->dir = pgp_disk_dir(ctx, name);
	disk_ops_lock();
	job->locked = true;
	job->header = json_pack("{s:s, s:I, s:I, s:s}", "disk", name, "size",
				(json_int_t)d.size_bytes, "created_at", (json_int_t)time(NULL),
				"created_by", d.created_by);
	disk_rec_release(&d);

	struct server_rec srv;
	if (server_of_disk(ctx, name, &srv) == 0) {
		json_t *sstate = json_loads(srv.state_json, 0, NULL);
		json_t *apps = apps_on_server(ctx, srv.id);
		json_object_set_new(job->header, "addon", json_string("miren-postgresql"));
		json_object_set_new(job->header, "variant", json_string(srv.kind));
		json_object_set_new(job->header, "postgresql_version",
				    json_string(pgp_jstr(sstate, "version")));
		if (json_array_size(apps) == 1)
			json_object_set(job->header, "app", json_array_get(apps, 0));
		json_object_set_new(job->header, "apps", apps);
		if (server_running(ctx, srv.id)) {
			/* A server that just (re)started may still be recovering. */
			rc = pg_wait_ready(job->dir, srv.port, pgp_jstr(sstate, "su_password"),
					   30000, err);
			if (!rc)
				rc = pg_backup_begin(job->dir, srv.port,
						     pgp_jstr(sstate, "su_password"), &job->pg, err);
			if (!rc)
				json_object_set_new(job->header, "method",
						    json_string("postgresql-online-backup"));
			if (!rc)
				fault_point("backup:started");
		}
		json_decref(sstate);
		server_rec_release(&srv);
	}
	if (!rc && !job->pg)
		json_object_set_new(job->header, "method", json_string("offline-copy"));
	if (!rc && !fs_is_dir(job->dir))
		rc = miren_error_set(err, MIREN_EIO, "disk directory '%s' is missing", job->dir);
	if (rc) {
		disk_backup_free(job);
		return rc;
	}
	*out = job;
	return 0;
}

const json_t *disk_backup_header(const struct disk_backup_job *job)
{
	return job->header;
}

/* What an online copy leaves out: WAL (added after pg_backup_stop), the
 * files PostgreSQL documents as not to be copied, and the socket dir. */
static bool skip_online(const char *rel, bool is_dir, void *u)
{
	static const char *const files[] = { "pgdata/postmaster.pid", "pgdata/postmaster.opts",
					     "pgdata/backup_label", "pgdata/backup_label.old",
					     "pgdata/tablespace_map", NULL };
	static const char *const emptied[] = { "pgdata/pg_wal/", "pgdata/pg_replslot/",
					       "pgdata/pg_dynshmem/", "pgdata/pg_notify/",
					       "pgdata/pg_serial/", "pgdata/pg_snapshots/",
					       "pgdata/pg_stat_tmp/", "pgdata/pg_subtrans/", "run/",
					       NULL };
	bool online = *(bool *)u;
	for (const char *const *f = files; *f; f++)
		if (!strcmp(rel, *f))
			return true;
	if (strstr(rel, "pgsql_tmp"))
		return true;
	if (!online)
		return !strncmp(rel, "run/", 4);
	for (const char *const *d = emptied; *d; d++) {
		size_t l = strlen(*d);
		/* Keep the directory itself and pg_wal/archive_status. */
		if (!strncmp(rel, *d, l) && !(is_dir && !strcmp(rel, "pgdata/pg_wal/archive_status")))
			return true;
	}
	return false;
}

/* Adds pg_wal segments named from..to (same timeline, string order). */
static int add_wal(struct disk_backup_job *job, struct snap_writer *w, const char *from,
		   const char *to, struct miren_error *err)
{
	char *wal = fs_join(job->dir, "pgdata/pg_wal");
	struct dirent **names;
	int n = scandir(wal, &names, NULL, alphasort);
	int rc = 0;
	if (n < 0)
		rc = miren_error_set(err, MIREN_EIO, "cannot list '%s': %s", wal, strerror(errno));
	for (int i = 0; i < n; i++) {
		const char *f = names[i]->d_name;
		bool seg = strlen(f) == 24 && strspn(f, "0123456789ABCDEF") == 24;
		bool history = strstr(f, ".history") != NULL;
		if (!rc && ((seg && strcmp(f, from) >= 0 && strcmp(f, to) <= 0) || history)) {
			char *path = fs_join(wal, f);
			struct strbuf sb;
			strbuf_init(&sb, 64u << 20);
			if (strbuf_read_file(&sb, path) != 0)
				rc = miren_error_set(err, MIREN_EIO, "cannot read WAL segment %s", f);
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

int disk_backup_run(struct disk_backup_job *job, snap_sink_fn sink, void *user,
		    struct snap_stats *st, struct miren_error *err)
{
	struct snap_writer *w = snap_writer_new(sink, user, job->header, BACKUP_ZSTD_LEVEL, 0, err);
	if (!w)
		return err ? (int)err->code : MIREN_EIO;
	bool online = job->pg != NULL;
	int rc = snap_add_tree(w, job->dir, skip_online, &online, err);
	char *label = NULL, *stop_lsn = NULL, *stop_wal = NULL;
	if (!rc && online) {
		fault_point("backup:copied");
		rc = pg_backup_end(job->pg, &label, &stop_lsn, &stop_wal, err);
		const char *p = label ? strstr(label, "(file ") : NULL;
		char start_wal[32] = "";
		if (!rc && (!p || sscanf(p, "(file %24[0-9A-F])", start_wal) != 1))
			rc = miren_error_set(err, MIREN_EINTERNAL,
					     "cannot read the start segment from backup_label");
		if (!rc)
			rc = snap_add_data(w, "pgdata/backup_label", label, strlen(label), 0600, err);
		if (!rc)
			rc = add_wal(job, w, start_wal, stop_wal, err);
		if (!rc)
			log_info("disk %s: online backup consistent at %s (WAL %s..%s)", job->name,
				 stop_lsn, start_wal, stop_wal);
	}
	if (!rc)
		rc = snap_writer_finish(w, st, err);
	snap_writer_free(w);
	free(label);
	free(stop_lsn);
	free(stop_wal);
	return rc;
}

void disk_backup_free(struct disk_backup_job *job)
{
	if (!job)
		return;
	pg_backup_free(job->pg);
	if (job->locked)
		disk_ops_unlock();
	json_decref(job->header);
	free(job->name);
	free(job->dir);
	free(job);
}

/* --- restore --------------------------------------------------------------- */

static char *disks_root(struct addon_ctx *ctx)
{
	return xasprintf("%s/disks", ctx->data_dir);
}

int disk_restore(struct addon_ctx *ctx, snap_source_fn source, void *user, const char *name,
		 bool force, json_t **result, struct miren_error *err)
{
	*result = NULL;
	if (name && disk_name_check(name, err))
		return MIREN_EINVAL;
	char *root = disks_root(ctx);
	char *hex = secret_hex(6);
	char *staging = xasprintf("%s/.restore-%s", root, hex);
	char *target = NULL, *old = NULL;
	json_t *hdr = NULL;
	struct snap_stats st = { 0 };
	struct server_rec srv = { 0 };
	bool have_server = false, replaced = false, restarted = false;
	int rc = 0;
	if (fs_mkdir_p(root, 0711) != 0 || mkdir(staging, 0700) != 0) {
		rc = miren_error_set(err, MIREN_EIO, "cannot create '%s': %s", staging,
				     strerror(errno));
		goto out;
	}
	if (ctx->uid != (uid_t)-1 && chown(staging, ctx->uid, ctx->gid) != 0) {
		rc = miren_error_set(err, MIREN_EIO, "cannot hand '%s' to the service user: %s",
				     staging, strerror(errno));
		goto out;
	}
	rc = snap_read(source, user, staging, ctx->uid, ctx->gid, 0, &hdr, &st, err);
	if (rc)
		goto out;
	fault_point("restore:verified");
	const char *source_disk = pgp_jstr(hdr, "disk");
	if (!name) {
		name = source_disk;
		if (disk_name_check(name, err)) {
			rc = MIREN_EINVAL;
			goto out;
		}
	}
	target = xasprintf("%s/%s", root, name);
	old = xasprintf("%s/.old-%s", root, name);

	disk_ops_lock();
	struct disk_rec d;
	bool exists = store_disk_get(ctx->store, name, &d, NULL) == 0 || fs_exists(target);
	disk_rec_release(&d);
	if (exists && !force) {
		rc = miren_error_set(err, MIREN_EEXISTS, "disk '%s' already exists", name);
		miren_error_hint(err, "pass --force to replace it, or -n NAME to restore under "
				      "another name");
		goto unlock;
	}
	have_server = server_of_disk(ctx, name, &srv) == 0;
	if (have_server && strcmp(source_disk, name)) {
		rc = miren_error_set(err, MIREN_ECONFLICT,
				     "disk '%s' belongs to a running addon and this backup is of "
				     "disk '%s'",
				     name, source_disk);
		miren_error_hint(err, "restore it under a new name with -n, or restore a backup of "
				      "'%s' itself", name);
		goto unlock;
	}
	if (have_server) {
		char *id = pgp_server_sv_id(srv.id);
		sv_stop(ctx->sv, id);
		free(id);
	}
	/* The swap: each rename is atomic; disk_recover() completes or undoes
	 * it after a crash between them. */
	if (exists && rename(target, old) != 0) {
		rc = miren_error_set(err, MIREN_EIO, "cannot move disk '%s' aside: %s", name,
				     strerror(errno));
		goto restart;
	}
	if (exists)
		fault_point("restore:aside");
	if (rename(staging, target) != 0) {
		rc = miren_error_set(err, MIREN_EIO, "cannot put the restored disk in place: %s",
				     strerror(errno));
		if (exists)
			rename(old, target);
		goto restart;
	}
	fs_fsync_dir(root);
	fault_point("restore:swapped");
	replaced = exists;
	if (exists && fs_remove_tree(old) != 0)
		log_warn("disk %s: cannot remove the replaced copy %s", name, old);
	if (!exists) {
		char *by = xasprintf("restore of %s", source_disk);
		struct disk_rec nd = { .name = (char *)name,
				       .size_bytes = json_integer_value(json_object_get(hdr, "size")),
				       .created_by = by,
				       .status = have_server ? "in use" : "unused" };
		rc = store_disk_put(ctx->store, &nd, err);
		free(by);
	}
	log_info("disk %s restored from a backup of %s (%llu files)", name, source_disk,
		 (unsigned long long)st.files);
restart:
	if (have_server) {
		struct miren_error e2;
		int src = pgp_ensure_server(ctx, srv.id, &e2);
		if (src && !rc) {
			rc = src;
			miren_error_set(err, src, "the disk was restored but its server did not start: %s",
					e2.message);
		}
		restarted = src == 0;
	}
unlock:
	disk_ops_unlock();
out:
	if (fs_exists(staging))
		fs_remove_tree(staging);
	if (!rc)
		*result = json_pack("{s:s, s:s, s:O, s:I, s:I, s:b, s:b}", "disk", name,
				    "source_disk", pgp_jstr(hdr, "disk"), "method",
				    json_object_get(hdr, "method") ? json_object_get(hdr, "method")
								   : json_null(),
				    "files", (json_int_t)st.files, "bytes", (json_int_t)st.bytes_in,
				    "replaced", replaced, "restarted", restarted);
	if (!rc && json_object_get(hdr, "app"))
		json_object_set(*result, "app", json_object_get(hdr, "app"));
	json_decref(hdr);
	server_rec_release(&srv);
	free(target);
	free(old);
	free(staging);
	free(hex);
	free(root);
	return rc;
}

void disk_recover(struct addon_ctx *ctx)
{
	char *root = disks_root(ctx);
	DIR *d = opendir(root);
	struct dirent *de;
	while (d && (de = readdir(d))) {
		const char *n = de->d_name;
		char *path = fs_join(root, n);
		if (!strncmp(n, ".restore-", 9)) {
			fs_remove_tree(path);
		} else if (!strncmp(n, ".old-", 5)) {
			char *target = fs_join(root, n + 5);
			if (fs_exists(target)) {
				fs_remove_tree(path); /* the swap finished */
			} else if (rename(path, target) == 0) {
				log_warn("disk %s: an interrupted restore was rolled back", n + 5);
			}
			free(target);
		}
		free(path);
	}
	if (d)
		closedir(d);
	free(root);
}
