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

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <signal.h>
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
} *locks;
static size_t n_locks, cap_locks;

static struct disk_lock_ent *lock_find(const char *name)
{
	for (size_t i = 0; i < n_locks; i++)
		if (!strcmp(locks[i].name, name))
			return &locks[i];
	return NULL;
}

int disk_lock(const char *name, const char *what, int wait_ms, struct miren_error *err)
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
		log_info("disk %s: %s waits for %s to finish", name, what, held->what);
	int w = 0;
	while (lock_find(name) && w == 0)
		w = pthread_cond_timedwait(&locks_cv, &locks_mu, &until);
	int rc = 0;
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
		locks[n_locks++] = (struct disk_lock_ent){ xstrdup(name), xstrdup(what) };
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
	struct pg_backup *pg; /* NULL: offline copy */
	bool locked;
	/* Offline copy: the server that must not run meanwhile (NULL: none). */
	char *offline_sv_id;
	int64_t offline_started_at;
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

/* True when DISK/pgdata/postmaster.pid names a live PostgreSQL process. */
static bool postmaster_alive(const char *disk_dir, pid_t *pid_out)
{
	char *path = xasprintf("%s/pgdata/postmaster.pid", disk_dir);
	FILE *f = fopen(path, "r");
	free(path);
	long pid = 0;
	if (f) {
		char line[32];
		if (fgets(line, sizeof(line), f))
			pid = strtol(line, NULL, 10);
		fclose(f);
	}
	*pid_out = (pid_t)pid;
	if (pid <= 0)
		return false;
	char comm[64] = "";
	char *cpath = xasprintf("/proc/%ld/comm", pid);
	FILE *c = fopen(cpath, "r");
	free(cpath);
	if (c) {
		if (!fgets(comm, sizeof(comm), c))
			comm[0] = '\0';
		fclose(c);
	}
	return !strncmp(comm, "postgres", 8);
}

/*
 * An offline copy is consistent only if no server runs on the disk for the
 * whole copy: at the start, the supervisor has the disk's server stopped
 * (or does not know it) and no postmaster runs there; at the end, the same,
 * and the supervisor has not started it in between.
 */
static int offline_check(struct disk_backup_job *job, bool after, struct miren_error *err)
{
	pid_t pid;
	if (postmaster_alive(job->dir, &pid)) {
		miren_error_set(err, MIREN_ECONFLICT,
				"a PostgreSQL server (pid %ld) %s on disk '%s', which miren does not "
				"supervise",
				(long)pid, after ? "started during the copy" : "runs", job->name);
		miren_error_hint(err, "stop it, or let miren run it: its online backup is consistent");
		return MIREN_ECONFLICT;
	}
	struct sv_status st;
	if (after && job->offline_sv_id && sv_status(job->ctx->sv, job->offline_sv_id, &st) == 0 &&
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
	rc = disk_lock(name, "a backup", DISK_LOCK_WAIT_MS, err);
	if (rc) {
		disk_rec_release(&d);
		return rc;
	}
	struct disk_backup_job *job = xcalloc(1, sizeof(*job));
	job->ctx = ctx;
	job->name = xstrdup(name);
	job->dir = pgp_disk_dir(ctx, name);
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
		char *sid = pgp_server_sv_id(srv.id);
		struct sv_status st;
		bool known = sv_status(ctx->sv, sid, &st) == 0;
		if (known && st.state != SV_STOPPED) {
			/* Running, starting, or about to restart after a crash: it
			 * may write the directory at any moment, so only its own
			 * online backup is consistent.  Wait for it to answer. */
			rc = pg_wait_ready(job->dir, srv.port, pgp_jstr(sstate, "su_password"),
					   DISK_READY_WAIT_MS, err);
			if (rc) {
				char why[sizeof(err->message)];
				snprintf(why, sizeof(why), "%s", err->message);
				miren_error_set(err, MIREN_EUNAVAIL,
						"the database server of disk '%s' does not answer, so "
						"it cannot be backed up: %s",
						name, why);
				miren_error_hint(err, "it may be restarting after a crash: see "
						      "'miren addon list' and try again");
			}
			if (!rc)
				rc = pg_backup_begin(job->dir, srv.port,
						     pgp_jstr(sstate, "su_password"), &job->pg, err);
			if (!rc)
				json_object_set_new(job->header, "method",
						    json_string("postgresql-online-backup"));
			if (!rc)
				fault_point("backup:started");
		} else {
			job->offline_sv_id = sid;
			job->offline_started_at = known ? st.started_at_ms : 0;
			sid = NULL;
		}
		free(sid);
		json_decref(sstate);
		server_rec_release(&srv);
	}
	if (!rc && !job->pg) {
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

const json_t *disk_backup_header(const struct disk_backup_job *job)
{
	return job->header;
}

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
static bool skip_online(const char *rel, bool is_dir, void *u)
{
	static const char *const files[] = { "pgdata/postmaster.pid", "pgdata/postmaster.opts",
					     "pgdata/backup_label", "pgdata/backup_label.old",
					     "pgdata/tablespace_map", "pgdata/postgresql.auto.conf.tmp",
					     "pgdata/current_logfiles.tmp", NULL };
	static const char *const emptied[] = { "pgdata/pg_wal/", "pgdata/pg_replslot/",
					       "pgdata/pg_dynshmem/", "pgdata/pg_notify/",
					       "pgdata/pg_serial/", "pgdata/pg_snapshots/",
					       "pgdata/pg_stat_tmp/", "pgdata/pg_subtrans/", NULL };
	bool online = *(bool *)u;
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
	/* Online, the server writes on while the files are copied; WAL replay
	   repairs the copy, as with PostgreSQL's own base backup. */
	int rc = snap_add_tree(w, job->dir, online ? SNAP_TREE_VOLATILE : 0, skip_online, &online,
			       err);
	if (!rc && !online)
		rc = offline_check(job, true, err);
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
		disk_unlock(job->name);
	free(job->offline_sv_id);
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

/* The major version of a server's version string ("15" -> 15). */
static int version_major(const char *v)
{
	return (int)strtol(v, NULL, 10);
}

/*
 * Before anything is swapped: a restored PostgreSQL cluster must be of the
 * major version of the server that will run it (have_server) and of one
 * this host has, and must start (its recovery runs in single-user mode).
 */
static int prove_cluster(struct addon_ctx *ctx, const char *staging, const char *name,
			 struct miren_error *err)
{
	char *pgdata = fs_join(staging, "pgdata");
	char *ver = fs_join(pgdata, "PG_VERSION");
	int rc = 0;
	if (!fs_exists(ver))
		goto out; /* not a PostgreSQL disk */
	int major = pg_cluster_major(pgdata, err);
	if (major < 0) {
		rc = MIREN_EINVAL;
		goto out;
	}
	struct server_rec srv;
	if (server_of_disk(ctx, name, &srv) == 0) {
		json_t *sstate = json_loads(srv.state_json, 0, NULL);
		int want = version_major(pgp_jstr(sstate, "version"));
		if (want != major) {
			rc = miren_error_set(err, MIREN_EINVAL,
					     "the backup holds a PostgreSQL %d cluster and the server "
					     "of disk '%s' runs PostgreSQL %d; nothing was changed",
					     major, name, want);
			miren_error_hint(err, "restore it under a new name with -n, or on a host "
					      "that runs PostgreSQL %d", major);
		}
		json_decref(sstate);
		server_rec_release(&srv);
		if (rc)
			goto out;
	}
	struct pg_install inst[8];
	int n = pg_find_installs(inst, 8);
	const struct pg_install *pg = NULL;
	for (int i = 0; i < n; i++)
		if (inst[i].major == major)
			pg = &inst[i];
	if (!pg) {
		rc = miren_error_set(err, MIREN_EINVAL,
				     "the backup holds a PostgreSQL %d cluster and this host has no "
				     "PostgreSQL %d; nothing was changed",
				     major, major);
		miren_error_hint(err, "install the Debian package postgresql-%d, or restore it on "
				      "a host that has it", major);
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

/*
 * Makes every tenant of the server agree with its record after a restore:
 * its role (with the recorded password) and database exist.  A tenant
 * added after the backup was taken gets an empty database.
 */
static int reconcile_tenants(struct addon_ctx *ctx, const struct server_rec *srv,
			     struct miren_error *err)
{
	struct addon_rec *recs;
	size_t n;
	int rc = store_addon_list(ctx->store, NULL, &recs, &n, err);
	if (rc)
		return rc;
	json_t *sstate = json_loads(srv->state_json, 0, NULL);
	char *dir = pgp_disk_dir(ctx, srv->disk);
	for (size_t i = 0; i < n && !rc; i++) {
		json_t *st = json_loads(recs[i].state_json, 0, NULL);
		if (!strcmp(pgp_jstr(st, "server"), srv->id) && *pgp_jstr(st, "role") &&
		    !strcmp(recs[i].status, "active"))
			rc = pg_tenant_create(dir, srv->port, pgp_jstr(sstate, "su_password"),
					      pgp_jstr(st, "role"), pgp_jstr(st, "db"),
					      pgp_jstr(st, "password"), err);
		json_decref(st);
	}
	free(dir);
	json_decref(sstate);
	addon_recs_free(recs, n);
	return rc;
}

/* Stops a postmaster running on disk_dir (fast shutdown, then SIGKILL). */
static void stop_postmaster(const char *disk_dir)
{
	pid_t pid;
	if (!postmaster_alive(disk_dir, &pid))
		return;
	kill(pid, SIGINT);
	for (int i = 0; i < 300 && postmaster_alive(disk_dir, &pid); i++)
		usleep(100000);
	if (postmaster_alive(disk_dir, &pid))
		kill(pid, SIGKILL);
	for (int i = 0; i < 50 && kill(pid, 0) == 0; i++)
		usleep(100000);
}

/* Renames a, then fsyncs root; 0 or -1 (errno). */
static int move(const char *root, const char *from, const char *to)
{
	if (rename(from, to) != 0)
		return -1;
	fs_fsync_dir(root);
	return 0;
}

int disk_restore(struct addon_ctx *ctx, snap_source_fn source, void *user, const char *name,
		 bool force, bool (*abandoned)(void *), void *abandoned_user, json_t **result,
		 struct miren_error *err)
{
	*result = NULL;
	if (name && disk_name_check(name, err))
		return MIREN_EINVAL;
	char *root = disks_root(ctx);
	char *hex = secret_hex(6);
	char *staging = xasprintf("%s/.restore-%s", root, hex);
	char *trash = xasprintf("%s/.trash-%s", root, hex);
	char *target = NULL, *old = NULL;
	json_t *hdr = NULL;
	struct snap_stats st = { 0 };
	struct server_rec srv = { 0 };
	bool have_server = false, replaced = false, restarted = false, locked = false;
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
	rc = prove_cluster(ctx, staging, name, err);
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
	have_server = server_of_disk(ctx, name, &srv) == 0;
	if (have_server && strcmp(source_disk, name)) {
		rc = miren_error_set(err, MIREN_ECONFLICT,
				     "disk '%s' belongs to a running addon and this backup is of "
				     "disk '%s'",
				     name, source_disk);
		miren_error_hint(err, "restore it under a new name with -n, or restore a backup of "
				      "'%s' itself", name);
		goto out;
	}
	char *sv_id = have_server ? pgp_server_sv_id(srv.id) : NULL;
	if (have_server)
		sv_stop(ctx->sv, sv_id);
	/* The swap: each rename is atomic; until the old copy is moved to the
	 * trash, disk_recover() puts it back after a crash. */
	if (exists && move(root, target, old) != 0) {
		rc = miren_error_set(err, MIREN_EIO, "cannot move disk '%s' aside: %s", name,
				     strerror(errno));
		goto restart;
	}
	if (exists)
		fault_point("restore:aside");
	if (move(root, staging, target) != 0) {
		rc = miren_error_set(err, MIREN_EIO, "cannot put the restored disk in place: %s",
				     strerror(errno));
		if (exists)
			move(root, old, target);
		goto restart;
	}
	fault_point("restore:swapped");
	if (have_server) {
		/* Proven only when its server answers and its tenants agree
		 * with their records; otherwise the old disk goes back. */
		struct miren_error e2;
		miren_error_clear(&e2);
		int src = pgp_ensure_server(ctx, srv.id, true, &e2);
		if (!src)
			src = reconcile_tenants(ctx, &srv, &e2);
		if (src) {
			sv_stop(ctx->sv, sv_id);
			stop_postmaster(target);
			move(root, target, staging);
			if (exists)
				move(root, old, target);
			/* Why it did not start is the server's FATAL line, when
			 * there is one, not the connection attempt that timed out. */
			static const char says[] = "the server's log says: ";
			const char *why = strstr(e2.hint, says);
			log_warn("disk %s: the restored copy's server did not start: %s", name,
				 e2.message);
			rc = miren_error_set(err, src,
					     "the restored disk's server did not start, so %s: %s",
					     exists ? "the previous data was put back"
						    : "nothing was restored",
					     why ? why + strlen(says) : e2.message);
			goto restart;
		}
		restarted = true;
		fault_point("restore:started");
	}
	if (exists) {
		if (move(root, old, trash) != 0)
			log_warn("disk %s: cannot move the replaced copy %s aside: %s", name, old,
				 strerror(errno));
		fault_point("restore:proven");
		if (fs_remove_tree(trash) != 0)
			log_warn("disk %s: cannot remove the replaced copy %s", name, trash);
	}
	replaced = exists;
	if (!exists) {
		fault_point("restore:placed");
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
	if (have_server && rc) {
		/* What is in place now is the data from before: serve it again. */
		struct miren_error e3;
		if (pgp_ensure_server(ctx, srv.id, true, &e3) != 0)
			log_warn("disk %s: its server does not start again: %s", name, e3.message);
	}
	free(sv_id);
out:
	if (locked)
		disk_unlock(name);
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
	free(trash);
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
		if (!strncmp(n, ".restore-", 9) || !strncmp(n, ".trash-", 7)) {
			stop_postmaster(path);
			fs_remove_tree(path);
		} else if (!strncmp(n, ".old-", 5)) {
			/* The restored copy in place was never proven: the old
			 * one goes back. */
			char *target = fs_join(root, n + 5);
			char *hex = secret_hex(6);
			char *trash = xasprintf("%s/.trash-%s", root, hex);
			if (fs_exists(target)) {
				stop_postmaster(target);
				if (move(root, target, trash) != 0)
					log_error("disk %s: cannot move the unproven restored copy "
						  "aside: %s", n + 5, strerror(errno));
			}
			if (!fs_exists(target) && move(root, path, target) == 0)
				log_warn("disk %s: an interrupted restore was rolled back", n + 5);
			fs_remove_tree(trash);
			free(trash);
			free(hex);
			free(target);
		} else if (n[0] != '.' && disk_name_check(n, NULL) == 0) {
			/* A restore under a new name put the disk in place and
			 * died before recording it: the new disk stays. */
			struct disk_rec rec;
			if (store_disk_get(ctx->store, n, &rec, NULL) == 0) {
				disk_rec_release(&rec);
			} else {
				struct disk_rec nd = { .name = (char *)n, .size_bytes = 0,
						       .created_by = "restore (recorded at start)",
						       .status = "unused" };
				if (store_disk_put(ctx->store, &nd, NULL) == 0)
					log_warn("disk %s: recorded the disk an interrupted restore "
						 "put in place", n);
			}
		}
		free(path);
	}
	if (d)
		closedir(d);
	free(root);
}
