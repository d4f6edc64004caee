/*
 * Backup and restore of addon disks (see disk_ops.h): the framework's
 * half.  It owns the disk lock, the snapshot stream, staging,
 * verify-before-swap, the swap back, and the recovery of an interrupted
 * restore; what is particular to an engine (how its server makes a
 * consistent copy online, whether a restored copy can run, starting and
 * verifying it) it asks the provider of the disk's server through its
 * hooks (addon.h), found through the server record's engine.
 *
 * A disk whose server runs is backed up online (backup_begin, the copy,
 * backup_end); a disk whose server is stopped is copied as is.
 *
 * A restore verifies everything into a staging disk of its own
 * (.restore-<hex>: a volume, so an ext4 image when disks are images), then
 * swaps volumes: <name> -> .old-<name>, staging -> <name>, remove the old
 * (volume_move: image renames and remounts, or directory renames).
 * disk_recover() finishes or undoes a swap a crash cut short.
 */
#include "addon/disk_ops.h"
#include "addon/server.h"
#include "disk/volume.h"
#include "util/fault.h"
#include "util/fs.h"
#include "util/log.h"
#include "util/paths.h"
#include "util/secret.h"
#include "util/strbuf.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/*
 * zstd level 1: on database files it compresses within 1% of level 3 for
 * about two thirds of the CPU (bench/backup), which is what decides the
 * speed on a small machine.
 */
#define BACKUP_ZSTD_LEVEL 1

/* How long a backup waits for its disk's server to answer (it may be
 * restarting after a crash). */
#define DISK_READY_WAIT_MS 30000

/*
 * The disk locks: the names of the disks some operation holds.  A lock is
 * held by an operation, not a thread (a backup is prepared on an API thread
 * and finished on its producer thread), so it is a set under a mutex, not
 * a mutex per disk.
 */
static pthread_mutex_t locks_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t locks_cv = PTHREAD_COND_INITIALIZER;
static struct disk_lock_ent {
	char *name;
	char *what;
	/* Non-NULL: the holder gives way (disk_lock_yielding): set to true
	 * when another operation asks for the lock. */
	atomic_bool *yield;
} * locks;
static size_t n_locks, cap_locks;

static struct disk_lock_ent *lock_find(const char *name)
{
	for (size_t i = 0; i < n_locks; i++)
		if (!strcmp(locks[i].name, name))
			return &locks[i];
	return NULL;
}

enum miren_err disk_lock(const char *name, const char *what, int wait_ms, struct miren_error *err)
{
	struct timespec until;
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += wait_ms / 1000;
	until.tv_nsec += (long)(wait_ms % 1000) * 1000000L;
	if (until.tv_nsec >= 1000000000L) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&locks_mu);
	struct disk_lock_ent *held = lock_find(name);
	if (held)
		log_info("disk %s: %s waits for %s to %s", name, what, held->what,
			 held->yield ? "give way" : "finish");
	int w = 0;
	while ((held = lock_find(name)) && w == 0) {
		if (held->yield)
			atomic_store(held->yield, true);
		w = pthread_cond_timedwait(&locks_cv, &locks_mu, &until);
	}
	enum miren_err rc = 0;
	if ((held = lock_find(name))) {
		log_warn("disk %s: %s gave up waiting for %s", name, what, held->what);
		rc = miren_error_set(err, MIREN_ECONFLICT,
				     "another operation on disk '%s' is in progress (%s)", name,
				     held->what);
		miren_error_hint(err, "try again when it has finished");
	} else {
		if (n_locks == cap_locks) {
			cap_locks = cap_locks ? cap_locks * 2 : 8;
			locks = xrealloc(locks, cap_locks * sizeof(*locks));
		}
		locks[n_locks++] = (struct disk_lock_ent){ xstrdup(name), xstrdup(what), NULL };
	}
	pthread_mutex_unlock(&locks_mu);
	return rc;
}

enum miren_err disk_lock_yielding(const char *name, const char *what, atomic_bool *yield,
				  struct miren_error *err)
{
	pthread_mutex_lock(&locks_mu);
	struct disk_lock_ent *held = lock_find(name);
	enum miren_err rc = 0;
	if (held) {
		rc = miren_error_set(err, MIREN_ECONFLICT,
				     "another operation on disk '%s' is in progress (%s)", name,
				     held->what);
	} else {
		if (n_locks == cap_locks) {
			cap_locks = cap_locks ? cap_locks * 2 : 8;
			locks = xrealloc(locks, cap_locks * sizeof(*locks));
		}
		atomic_store(yield, false);
		locks[n_locks++] = (struct disk_lock_ent){ xstrdup(name), xstrdup(what), yield };
	}
	pthread_mutex_unlock(&locks_mu);
	return rc;
}

void disk_unlock(const char *name)
{
	pthread_mutex_lock(&locks_mu);
	struct disk_lock_ent *e = lock_find(name);
	if (e) {
		free(e->name);
		free(e->what);
		*e = locks[--n_locks];
		pthread_cond_broadcast(&locks_cv);
	}
	pthread_mutex_unlock(&locks_mu);
}

struct disk_backup_job {
	struct addon_ctx *ctx;
	char *name;
	char *dir;
	json_t *header;
	/* The engine of the disk's server (NULL: no server uses the disk). */
	const struct addon_def *def;
	struct addon_backup b;
	bool online;                    /* b is an online backup begun (backup_free pending) */
	bool raw;                       /* the sink takes the tar stream (disk_backup_raw) */
	const struct snap_reuse *reuse; /* disk_backup_reuse, or NULL */
	bool locked;
	/* Offline copy: the server that must not run meanwhile (NULL: none). */
	char *offline_server;
	int64_t offline_started_at;
};

enum miren_err disk_name_check(const char *name, struct miren_error *err)
{
	size_t n = strlen(name);
	bool ok = n > 0 && n <= 128 &&
		  ((name[0] >= 'a' && name[0] <= 'z') || (name[0] >= '0' && name[0] <= '9'));
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

/*
 * The instances on server_id (every status, or only active ones), with
 * their states parsed by def; *n of them, each to addon_inst_release and
 * the array to free.  Instances whose state cannot be read are left out.
 */
static struct addon_inst *tenants_of(struct addon_ctx *ctx, const struct addon_def *def,
				     const char *server_id, bool active_only, size_t *n,
				     struct miren_error *err)
{
	struct addon_rec *recs;
	size_t nr;
	*n = 0;
	if (store_addon_list(ctx->store, NULL, &recs, &nr, err) != 0)
		return NULL;
	struct addon_inst *out = xcalloc(nr + 1, sizeof(*out));
	for (size_t i = 0; i < nr; i++) {
		if (strcmp(recs[i].server, server_id) || strcmp(recs[i].addon, def->name) ||
		    (active_only && strcmp(recs[i].status, "active")))
			continue;
		if (addon_inst_load(def, &recs[i], &out[*n], NULL) == 0)
			(*n)++;
	}
	addon_recs_free(recs, nr);
	return out;
}

static void tenants_free(const struct addon_def *def, struct addon_inst *t, size_t n)
{
	for (size_t i = 0; i < n; i++)
		addon_inst_release(def, &t[i]);
	free(t);
}

/* The apps whose addons live on server_id, as a JSON array. */
static json_t *apps_on_server(struct addon_ctx *ctx, const char *server_id)
{
	json_t *apps = json_array();
	struct addon_rec *recs;
	size_t n;
	if (store_addon_list(ctx->store, NULL, &recs, &n, NULL) != 0)
		return apps;
	for (size_t i = 0; i < n; i++)
		if (!strcmp(recs[i].server, server_id))
			json_array_append_new(apps, json_string(recs[i].app));
	addon_recs_free(recs, n);
	return apps;
}

/* A server process some engine runs on disk_dir (def's, or any engine's
 * when def is NULL), stopping it with stop; its pid, 0 if none. */
static pid_t server_on_dir(struct addon_ctx *ctx, const struct addon_def *def, const char *disk_dir,
			   bool stop)
{
	for (const struct addon_def *const *d = addon_all(); *d; d++) {
		if ((def && *d != def) || !(*d)->disk_server)
			continue;
		pid_t pid = (*d)->disk_server(ctx, disk_dir, stop);
		if (pid)
			return pid;
	}
	return 0;
}

/*
 * An offline copy is consistent only if no server runs on the disk for the
 * whole copy: at the start, the supervisor has the disk's server stopped
 * (or does not know it) and no server process runs there; at the end, the
 * same, and the supervisor has not started it in between.
 */
static enum miren_err offline_check(struct disk_backup_job *job, bool after,
				    struct miren_error *err)
{
	pid_t pid = server_on_dir(job->ctx, job->def, job->dir, false);
	if (pid) {
		miren_error_set(err, MIREN_ECONFLICT,
				"a database server (pid %ld) %s on disk '%s', which miren does not "
				"supervise",
				(long)pid, after ? "started during the copy" : "runs", job->name);
		miren_error_hint(err,
				 "stop it, or let miren run it: its online backup is consistent");
		return MIREN_ECONFLICT;
	}
	struct sv_status st;
	if (after && job->offline_server &&
	    addon_server_supervised(job->ctx, job->offline_server, &st) &&
	    (st.state != SV_STOPPED || st.started_at_ms != job->offline_started_at)) {
		miren_error_set(err, MIREN_ECONFLICT,
				"the database server of disk '%s' started during the offline copy, "
				"which is therefore not consistent",
				job->name);
		miren_error_hint(err, "run the backup again: a running server is backed up online");
		return MIREN_ECONFLICT;
	}
	return 0;
}

/* Starts the online backup of srv (running or about to restart): waits
 * for it to answer, then the engine's backup_begin. */
static enum miren_err online_begin(struct disk_backup_job *job, const struct server_rec *srv,
				   struct miren_error *err)
{
	const struct addon_def *def = job->def;
	if (!def->backup_begin || !def->ready)
		return addon_unsupported(def, "an online backup", err);
	enum miren_err rc = def->ready(job->ctx, srv, DISK_READY_WAIT_MS, err);
	if (rc) {
		char why[sizeof(err->message)];
		snprintf(why, sizeof(why), "%s", err->message);
		miren_error_set(err, MIREN_EUNAVAIL,
				"the database server of disk '%s' does not answer, so it cannot be "
				"backed up: %s",
				job->name, why);
		miren_error_hint(err, "it may be restarting after a crash: see 'miren addon list' "
				      "and try again");
		return rc;
	}
	job->online = true;
	rc = def->backup_begin(job->ctx, srv, &job->b, err);
	if (job->b.header)
		json_object_update(job->header, job->b.header);
	if (!rc)
		json_object_set_new(job->header, "method", json_string(job->b.method));
	if (!rc)
		fault_point("backup:started");
	return rc;
}

static enum miren_err backup_prepare(struct addon_ctx *ctx, const char *name, atomic_bool *yield,
				     struct disk_backup_job **out, struct miren_error *err)
{
	*out = NULL;
	enum miren_err rc = disk_name_check(name, err);
	if (rc)
		return rc;
	struct disk_rec d;
	rc = store_disk_get(ctx->store, name, &d, err);
	if (rc)
		return rc;
	rc = yield ? disk_lock_yielding(name, "a background backup", yield, err)
		   : disk_lock(name, "a backup", DISK_LOCK_WAIT_MS, err);
	if (rc) {
		disk_rec_release(&d);
		return rc;
	}
	struct disk_backup_job *job = xcalloc(1, sizeof(*job));
	job->ctx = ctx;
	job->name = xstrdup(name);
	job->dir = addon_disk_dir(ctx, name);
	job->locked = true;
	job->header = json_pack("{s:s, s:I, s:I, s:s}", "disk", name, "size",
				(json_int_t)d.size_bytes, "created_at", (json_int_t)time(NULL),
				"created_by", d.created_by);
	disk_rec_release(&d);

	struct server_rec srv;
	if (addon_server_of_disk(ctx, name, &srv) == 0) {
		job->def = addon_find(srv.engine);
		json_t *apps = apps_on_server(ctx, srv.id);
		json_object_set_new(job->header, "addon", json_string(srv.engine));
		json_object_set_new(job->header, "variant", json_string(srv.kind));
		if (json_array_size(apps) == 1)
			json_object_set(job->header, "app", json_array_get(apps, 0));
		json_object_set_new(job->header, "apps", apps);
		struct sv_status st;
		bool known = addon_server_supervised(ctx, srv.id, &st);
		if (!job->def) {
			rc = miren_error_set(err, MIREN_EINTERNAL,
					     "disk '%s' belongs to server %s "
					     "of the unknown addon '%s'",
					     name, srv.id, srv.engine);
		} else if (known && st.state != SV_STOPPED) {
			/* Running, starting, or about to restart after a crash: it
			 * may write the directory at any moment, so only its own
			 * online backup is consistent. */
			rc = online_begin(job, &srv, err);
		} else {
			job->offline_server = xstrdup(srv.id);
			job->offline_started_at = known ? st.started_at_ms : 0;
		}
		server_rec_release(&srv);
	}
	if (!rc && !job->online) {
		json_object_set_new(job->header, "method", json_string("offline-copy"));
		rc = offline_check(job, false, err);
	}
	if (!rc && !fs_is_dir(job->dir))
		rc = miren_error_set(err, MIREN_EIO, "disk directory '%s' is missing", job->dir);
	if (rc) {
		disk_backup_free(job);
		return rc;
	}
	*out = job;
	return 0;
}

enum miren_err disk_backup_prepare(struct addon_ctx *ctx, const char *name,
				   struct disk_backup_job **out, struct miren_error *err)
{
	return backup_prepare(ctx, name, NULL, out, err);
}

enum miren_err disk_backup_prepare_yielding(struct addon_ctx *ctx, const char *name,
					    atomic_bool *yield, struct disk_backup_job **out,
					    struct miren_error *err)
{
	return backup_prepare(ctx, name, yield, out, err);
}

const json_t *disk_backup_header(const struct disk_backup_job *job)
{
	return job->header;
}

void disk_backup_annotate(struct disk_backup_job *job, const char *key, json_t *value)
{
	json_object_set_new(job->header, key, value);
}

void disk_backup_raw(struct disk_backup_job *job)
{
	job->raw = true;
}

void disk_backup_reuse(struct disk_backup_job *job, const struct snap_reuse *reuse)
{
	job->raw = true;
	job->reuse = reuse;
}

/* What an offline copy leaves out: what the disk's engine says (any
 * engine's, for a disk no server uses). */
static bool skip_offline(const char *rel, bool is_dir, void *u)
{
	const struct addon_def *def = u;
	for (const struct addon_def *const *d = addon_all(); *d; d++)
		if ((!def || *d == def) && (*d)->copy_skip && (*d)->copy_skip(rel, is_dir))
			return true;
	return false;
}

enum miren_err disk_backup_run(struct disk_backup_job *job, snap_sink_fn sink, void *user,
			       struct snap_stats *st, struct miren_error *err)
{
	struct snap_writer *w = job->raw ? snap_writer_new_raw(sink, user, job->header, err)
					 : snap_writer_new(sink, user, job->header,
							   BACKUP_ZSTD_LEVEL, 0, err);
	if (!w)
		return err ? (int)err->code : MIREN_EIO;
	enum miren_err rc = job->reuse ? snap_writer_set_reuse(w, job->reuse, err) : 0;
	if (!rc && job->online)
		rc = snap_add_tree(w, job->b.root ? job->b.root : job->dir, job->b.tree_flags,
				   job->b.skip, job->b.skip_user, err);
	else if (!rc)
		rc = snap_add_tree(w, job->dir, 0, skip_offline, (void *)job->def, err);
	if (!rc && !job->online)
		rc = offline_check(job, true, err);
	if (!rc && job->online) {
		fault_point("backup:copied");
		if (job->def->backup_end)
			rc = job->def->backup_end(job->ctx, &job->b, w, err);
	}
	if (!rc)
		rc = snap_writer_finish(w, st, err);
	snap_writer_free(w);
	return rc;
}

void disk_backup_free(struct disk_backup_job *job)
{
	if (!job)
		return;
	if (job->online && job->def && job->def->backup_free)
		job->def->backup_free(job->ctx, &job->b);
	free(job->b.root);
	json_decref(job->b.header);
	if (job->locked)
		disk_unlock(job->name);
	free(job->offline_server);
	json_decref(job->header);
	free(job->name);
	free(job->dir);
	free(job);
}

/* --- restore --------------------------------------------------------------- */

/* A restore stages into a disk of its target's size when it knows the
 * target, else of this size (sparse: it costs nothing) fitted to the
 * backup's disk size once the header has been read. */
#define RESTORE_STAGING_SIZE (10ULL << 30)
/* The size of a restored disk when neither a record nor the backup says. */
#define RESTORE_DEFAULT_SIZE (1ULL << 30)

static char *disks_root(struct addon_ctx *ctx)
{
	return data_paths_disks(ctx->paths);
}

/* Renames disk `from` to `to` (image and mount, or directory: see
 * volume_move); 0 or a miren_err with the reason in *why. */
static enum miren_err move(struct addon_ctx *ctx, const char *from, const char *to,
			   struct miren_error *why)
{
	miren_error_clear(why);
	return volume_move(ctx->volumes, from, to, why);
}

/* The recorded size of disk name in bytes; 0 for no such record (or NULL). */
static int64_t recorded_size(struct addon_ctx *ctx, const char *name)
{
	struct disk_rec d;
	int64_t size = 0;
	if (name && store_disk_get(ctx->store, name, &d, NULL) == 0) {
		size = d.size_bytes;
		disk_rec_release(&d);
	}
	return size;
}

/* The size a restored disk gets: its record's, else the backup's, else
 * the small size. */
static uint64_t restore_size(struct addon_ctx *ctx, const char *name, const json_t *hdr)
{
	int64_t size = recorded_size(ctx, name);
	if (size < (16 << 20) && hdr)
		size = json_integer_value(json_object_get(hdr, "size"));
	return size >= (16 << 20) ? (uint64_t)size : RESTORE_DEFAULT_SIZE;
}

/* Starts srv on its restored disk and makes its tenants agree with their
 * records (the engine's restore_start and restore_verify). */
static enum miren_err start_restored(struct addon_ctx *ctx, const struct addon_def *def,
				     const struct server_rec *srv, struct miren_error *err)
{
	if (!def->restore_start)
		return addon_unsupported(def, "a restore", err);
	enum miren_err rc = def->restore_start(ctx, srv, err);
	if (rc || !def->restore_verify)
		return rc;
	size_t n;
	struct addon_inst *t = tenants_of(ctx, def, srv->id, true, &n, err);
	if (!t)
		return MIREN_EDB;
	rc = def->restore_verify(ctx, srv, t, n, err);
	tenants_free(def, t, n);
	return rc;
}

enum miren_err disk_restore(struct addon_ctx *ctx, snap_source_fn source, void *user,
			    const char *name, bool force, bool (*abandoned)(void *),
			    void *abandoned_user, json_t **result, struct miren_error *err)
{
	*result = NULL;
	if (name && disk_name_check(name, err))
		return MIREN_EINVAL;
	char *hex = secret_hex(6);
	/* Volume names (disks/<name> is where each is mounted). */
	char *staging_n = xasprintf(".restore-%s", hex);
	char *trash_n = xasprintf(".trash-%s", hex);
	char *old_n = NULL;
	char *staging = volume_dir(ctx->volumes, staging_n);
	char *target = NULL;
	json_t *hdr = NULL;
	struct snap_stats st = { 0 };
	struct server_rec srv = { 0 };
	const struct addon_def *def = NULL;
	struct miren_error why;
	bool have_server = false, replaced = false, restarted = false, locked = false;
	/* The staging disk is a volume of its own: the swap renames volumes,
	 * and a restore cannot fill the data directory's filesystem. */
	int64_t known = recorded_size(ctx, name);
	enum miren_err rc = volume_ensure(ctx->volumes, staging_n,
					  known >= (16 << 20) ? (uint64_t)known
							      : RESTORE_STAGING_SIZE,
					  NULL, err);
	if (rc)
		goto out;
	rc = snap_read(source, user, staging, ctx->uid, ctx->gid, 0, &hdr, &st, err);
	if (rc == MIREN_EIO && volumes_host_full(ctx->volumes)) {
		char cause[sizeof err->message];
		snprintf(cause, sizeof cause, "%s", err->message);
		miren_error_set(err, MIREN_EIO,
				"cannot restore the backup: the disk holding the data directory is "
				"full");
		miren_error_detail(err, "%s", cause);
		miren_error_hint(err, "free space there, then run the restore again");
	}
	if (rc)
		goto out;
	fault_point("restore:verified");
	const char *source_disk = addon_jstr(hdr, "disk");
	if (!name) {
		name = source_disk;
		if (disk_name_check(name, err)) {
			rc = MIREN_EINVAL;
			goto out;
		}
	}
	target = volume_dir(ctx->volumes, name);
	old_n = xasprintf(".old-%s", name);
	/* The engine that will run the copy proves it first: the one of the
	 * disk's server, else the one that made the backup. */
	have_server = addon_server_of_disk(ctx, name, &srv) == 0;
	def = addon_find(have_server ? srv.engine : addon_jstr(hdr, "addon"));
	if (have_server && !def) {
		rc = miren_error_set(err, MIREN_EINTERNAL,
				     "disk '%s' belongs to server %s of the "
				     "unknown addon '%s'; nothing was changed",
				     name, srv.id, srv.engine);
		goto out;
	}
	if (def && def->restore_prepare)
		rc = def->restore_prepare(ctx, have_server ? &srv : NULL, hdr, staging, err);
	if (!rc)
		rc = volume_fit(ctx->volumes, staging_n, restore_size(ctx, name, hdr), err);
	if (rc)
		goto out;

	rc = disk_lock(name, "a restore", DISK_LOCK_WAIT_MS, err);
	if (rc)
		goto out;
	locked = true;
	if (abandoned && abandoned(abandoned_user)) {
		log_warn("disk %s: the client of its restore is gone; nothing was changed", name);
		rc = miren_error_set(err, MIREN_ECONFLICT,
				     "the client of the restore of disk '%s' is gone; nothing was "
				     "changed",
				     name);
		goto out;
	}
	struct disk_rec d;
	bool exists = store_disk_get(ctx->store, name, &d, NULL) == 0 || fs_exists(target);
	disk_rec_release(&d);
	if (exists && !force) {
		rc = miren_error_set(err, MIREN_EEXISTS, "disk '%s' already exists", name);
		miren_error_hint(err, "pass --force to replace it, or -n NAME to restore under "
				      "another name");
		goto out;
	}
	/* Under the lock, the disk's server as it is now. */
	server_rec_release(&srv);
	have_server = addon_server_of_disk(ctx, name, &srv) == 0;
	if (have_server && strcmp(source_disk, name)) {
		rc = miren_error_set(err, MIREN_ECONFLICT,
				     "disk '%s' belongs to a running addon and this backup is of "
				     "disk '%s'",
				     name, source_disk);
		miren_error_hint(err,
				 "restore it under a new name with -n, or restore a backup of "
				 "'%s' itself",
				 name);
		goto out;
	}
	if (have_server && (!def || strcmp(def->name, srv.engine))) {
		rc = miren_error_set(err, MIREN_ECONFLICT,
				     "disk '%s' changed owner during the "
				     "restore; nothing was changed",
				     name);
		goto out;
	}
	if (!exists) {
		/* A new disk: recorded the way every disk is, then the verified
		 * copy becomes its volume. */
		char *by = xasprintf("restore of %s", source_disk);
		rc = addon_disk_record(ctx, name, (long long)restore_size(ctx, name, hdr), by, err);
		free(by);
		if (rc)
			goto out;
	}
	if (have_server)
		addon_server_stop(ctx, srv.id);
	/* The swap: each rename is atomic; until the old copy is moved to the
	 * trash, disk_recover() puts it back after a crash. */
	if (exists && move(ctx, name, old_n, &why) != 0) {
		rc = miren_error_set(err, MIREN_EIO, "cannot move disk '%s' aside: %s", name,
				     why.message);
		goto restart;
	}
	if (exists)
		fault_point("restore:aside");
	if (move(ctx, staging_n, name, &why) != 0) {
		rc = miren_error_set(err, MIREN_EIO, "cannot put the restored disk in place: %s",
				     why.message);
		if (exists)
			move(ctx, old_n, name, &why);
		else
			addon_disk_remove(ctx, name, NULL);
		goto restart;
	}
	fault_point("restore:swapped");
	if (have_server) {
		/* Proven only when its server answers and its tenants agree
		 * with their records; otherwise the old disk goes back. */
		struct miren_error e2;
		miren_error_clear(&e2);
		int src = start_restored(ctx, def, &srv, &e2);
		if (src) {
			addon_server_stop(ctx, srv.id);
			server_on_dir(ctx, def, target, true);
			move(ctx, name, staging_n, &why);
			if (exists)
				move(ctx, old_n, name, &why);
			/* Why it did not start is the server's own log line, when
			 * there is one, not the connection attempt that timed out. */
			static const char says[] = "the server's log says: ";
			const char *said = strstr(e2.detail, says);
			log_warn("disk %s: the restored copy's server did not start: %s", name,
				 e2.message);
			rc = miren_error_set(err, src,
					     "the restored disk's server did not start, so %s",
					     exists ? "the previous data was put back"
						    : "nothing was restored");
			miren_error_detail(err, "%s", said ? said + strlen(says) : e2.message);
			goto restart;
		}
		restarted = true;
		fault_point("restore:started");
	}
	if (exists) {
		if (move(ctx, old_n, trash_n, &why) != 0)
			log_warn("disk %s: cannot move the replaced copy %s aside: %s", name, old_n,
				 why.message);
		fault_point("restore:proven");
		if (volume_remove(ctx->volumes, trash_n, &why) != 0)
			log_warn("disk %s: cannot remove the replaced copy %s: %s", name, trash_n,
				 why.message);
	} else {
		fault_point("restore:placed");
	}
	replaced = exists;
	log_info("disk %s restored from a backup of %s (%llu files)", name, source_disk,
		 (unsigned long long)st.files);
restart:
	if (have_server && rc) {
		/* What is in place now is the data from before: serve it again. */
		struct miren_error e3;
		if (def->restore_start && def->restore_start(ctx, &srv, &e3) != 0)
			log_warn("disk %s: its server does not start again: %s", name, e3.message);
	}
out:
	if (locked)
		disk_unlock(name);
	if (volume_remove(ctx->volumes, staging_n, &why) != 0)
		log_warn("cannot remove the restore's staging disk %s: %s", staging_n, why.message);
	if (!rc)
		*result = json_pack("{s:s, s:s, s:O, s:I, s:I, s:b, s:b}", "disk", name,
				    "source_disk", addon_jstr(hdr, "disk"), "method",
				    json_object_get(hdr, "method") ? json_object_get(hdr, "method")
								   : json_null(),
				    "files", (json_int_t)st.files, "bytes", (json_int_t)st.bytes_in,
				    "replaced", replaced, "restarted", restarted);
	if (!rc && json_object_get(hdr, "app"))
		json_object_set(*result, "app", json_object_get(hdr, "app"));
	json_decref(hdr);
	server_rec_release(&srv);
	free(target);
	free(old_n);
	free(staging);
	free(staging_n);
	free(trash_n);
	free(hex);
	return rc;
}

enum miren_err disk_delete(struct addon_ctx *ctx, const char *name, json_t **result,
			   struct miren_error *err)
{
	enum miren_err rc = disk_name_check(name, err);
	if (rc)
		return rc;
	rc = disk_lock(name, "a deletion", DISK_LOCK_WAIT_MS, err);
	if (rc)
		return rc;
	struct disk_rec d;
	struct server_rec srv;
	memset(&srv, 0, sizeof(srv));
	rc = store_disk_get(ctx->store, name, &d, err);
	if (rc)
		goto out;
	if (addon_server_of_disk(ctx, name, &srv) == 0) {
		json_t *apps = apps_on_server(ctx, srv.id);
		struct strbuf sb;
		strbuf_init(&sb, 0);
		size_t i;
		json_t *a;
		json_array_foreach (apps, i, a)
			strbuf_addf(&sb, "%s'%s'", i ? ", " : "", json_string_value(a));
		rc = miren_error_set(err, MIREN_ECONFLICT,
				     "disk '%s' is in use by %s server %s%s%s; nothing was deleted",
				     name, srv.engine, srv.id, sb.len ? " of app " : "",
				     sb.len ? sb.buf : "");
		if (json_array_size(apps) == 1)
			miren_error_hint(err,
					 "an addon's disk goes with the addon: 'miren addon "
					 "destroy "
					 "%s -a %s'",
					 srv.engine, json_string_value(json_array_get(apps, 0)));
		else
			miren_error_hint(err, "an addon's disk goes with its server, once no addon "
					      "uses it");
		strbuf_release(&sb);
		json_decref(apps);
		disk_rec_release(&d);
		goto out;
	}
	/* Recorded first: a crash from here on leaves a record that says
	 * what to finish (disk_recover). */
	struct disk_rec mark = d;
	mark.status = (char *)disk_status_name(DISK_DELETING);
	rc = store_disk_put(ctx->store, &mark, err);
	if (!rc) {
		fault_point("disk-delete:marked");
		rc = volume_remove(ctx->volumes, name, err);
	}
	if (!rc) {
		fault_point("disk-delete:removed");
		rc = store_disk_delete(ctx->store, name, err);
	}
	if (!rc) {
		log_info("disk %s deleted (it was %s, made by %s)", name, d.status, d.created_by);
		*result = json_pack("{s:s, s:I, s:s}", "disk", name, "size_bytes",
				    (json_int_t)d.size_bytes, "created_by", d.created_by);
	} else if (rc == MIREN_EIO) {
		miren_error_hint(err, "run the same command again to finish the deletion");
	}
	disk_rec_release(&d);
out:
	server_rec_release(&srv);
	disk_unlock(name);
	return rc;
}

/* Finishes the deletions a crash cut short (disk_delete). */
static void recover_deletions(struct addon_ctx *ctx)
{
	struct disk_rec *disks;
	size_t n;
	if (store_disk_list(ctx->store, &disks, &n, NULL) != 0)
		return;
	for (size_t i = 0; i < n; i++) {
		if (disk_status_parse(disks[i].status) != DISK_DELETING)
			continue;
		struct miren_error why;
		if (volume_remove(ctx->volumes, disks[i].name, &why) != 0)
			log_error("disk %s: cannot finish its deletion: %s", disks[i].name,
				  why.message);
		else if (store_disk_delete(ctx->store, disks[i].name, &why) == 0)
			log_warn("disk %s: finished a deletion a crash interrupted", disks[i].name);
	}
	disk_recs_free(disks, n);
}

void disk_recover(struct addon_ctx *ctx)
{
	recover_deletions(ctx);
	char *root = disks_root(ctx);
	DIR *d = opendir(root);
	struct dirent *de;
	while (d && (de = readdir(d))) {
		const char *n = de->d_name;
		char *path = fs_join(root, n);
		struct miren_error why;
		if (!strncmp(n, ".restore-", 9) || !strncmp(n, ".trash-", 7)) {
			server_on_dir(ctx, NULL, path, true);
			if (volume_remove(ctx->volumes, n, &why) != 0)
				log_error("cannot remove %s: %s", path, why.message);
		} else if (!strncmp(n, ".old-", 5)) {
			/* The restored copy in place was never proven: the old
			 * one goes back. */
			char *target = fs_join(root, n + 5);
			char *hex = secret_hex(6);
			char *trash_n = xasprintf(".trash-%s", hex);
			if (fs_exists(target)) {
				server_on_dir(ctx, NULL, target, true);
				if (move(ctx, n + 5, trash_n, &why) != 0)
					log_error("disk %s: cannot move the unproven restored copy "
						  "aside: %s",
						  n + 5, why.message);
			}
			if (!fs_exists(target) && move(ctx, n, n + 5, &why) == 0)
				log_warn("disk %s: an interrupted restore was rolled back", n + 5);
			volume_remove(ctx->volumes, trash_n, &why);
			free(trash_n);
			free(hex);
			free(target);
		} else if (n[0] != '.' && disk_name_check(n, NULL) == 0) {
			/* A directory without a record (a store older than the
			 * restore that records a new disk first): it stays. */
			struct disk_rec rec;
			if (store_disk_get(ctx->store, n, &rec, NULL) == 0) {
				disk_rec_release(&rec);
			} else {
				struct disk_rec nd = { .name = (char *)n,
						       .size_bytes = 0,
						       .created_by = "restore (recorded at start)",
						       .status = "unused" };
				if (store_disk_put(ctx->store, &nd, NULL) == 0)
					log_warn("disk %s: recorded the disk an interrupted "
						 "restore "
						 "put in place",
						 n);
			}
		}
		free(path);
	}
	if (d)
		closedir(d);
	free(root);
}
