/*
 * Addon-aware backups (see backups.h): an app's data in one addon, taken
 * into the backup store and restored into the app's current instance of
 * that addon, whatever its variant or server.
 *
 * What a backup holds depends on the instance's server:
 *   dedicated  the server's whole disk, online (disk_backup_prepare/run, the
 *              engine's own consistency point), its header naming the app's
 *              tenant (tenant_facts) so the data can be read out of it later
 *   shared     the tenant's logical dump (the engine's dump hook) as the one
 *              member disk/dump of a snapshot whose header says
 *              {"kind":"dump","addon","dump_format_version","tenant"}
 * Both are snapshots (lib/disk/snapshot.h) written in raw mode, their tar
 * stream going into the backup store (bstore_sink), which exports each as
 * a standalone .miren.zst.
 *
 * A restore goes one of three ways, decided before anything changes:
 *   load     a dump backup: the engine's load (one transaction: all or
 *            nothing, and afterwards the tenant holds exactly the dump)
 *   disk     a disk backup of the very disk the instance's dedicated server
 *            runs on: disk_restore in place (verified into staging, the old
 *            disk kept until the restored one's server answers)
 *   scratch  a disk backup of another server (the addon was recreated, its
 *            variant changed): the backup is read into a scratch area and
 *            a scratch server there dumps the app's tenant
 *            (scratch_tenant_dump, lib/addon/scratch.h); that dump is
 *            loaded as above
 * then the app is restarted once.  Every backup is verified whole
 * (snap_read: zstd frames, every file's SHA-256, the archive digest) before
 * the current data is touched, so a truncated or tampered file, a backup
 * of another engine or a newer format changes nothing.
 *
 * Crash safety: the current data changes in one step only (the load's
 * transaction, or disk_restore's journalled swap, undone by disk_recover).
 * Scratch areas are removed (their servers stopped) by scratch_recover at
 * the next start; dumps live in the data directory's tmp/, emptied at
 * start.  What a restore must still do once the
 * data changed (restart the app) is journalled in restores/<addon id>.json
 * before the change and done by backups_recover() when the daemon was
 * killed in between.
 */
#include "daemon/backups.h"
#include "addon/disk_ops.h"
#include "addon/scratch.h"
#include "addon/server.h"
#include "backup/bstore.h"
#include "daemon/apps.h"
#include "daemon/daemon_int.h"
#include "store/store.h"
#include "util/fault.h"
#include "util/fs.h"
#include "util/io.h"
#include "util/log.h"
#include "util/when.h"

#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* The version of the dump container (header keys, one member disk/dump)
 * this miren writes and reads; a newer one is refused. */
#define DUMP_FORMAT_VERSION 1
/* The largest header a backup may carry. */
#define HEADER_MAX (1 << 20)

struct bstore *daemon_bstore(struct daemon *d)
{
	return d->bstore;
}

static enum miren_err store_missing(struct miren_error *err)
{
	miren_error_set(err, MIREN_EUNAVAIL, "the backup store is not open");
	miren_error_hint(err, "the server log (DATA/logs/server.log) says why");
	return MIREN_EUNAVAIL;
}

enum miren_err backups_get(struct daemon *d, const char *id, json_t **manifest,
			   struct miren_error *err)
{
	*manifest = NULL;
	if (!d->bstore)
		return store_missing(err);
	enum miren_err rc = bstore_get(d->bstore, id, manifest, err);
	if (rc == MIREN_ENOTFOUND)
		miren_error_hint(err, "list the backups with 'miren addon backups ADDON -a APP'");
	return rc;
}

enum miren_err backups_export(struct daemon *d, const char *id,
			      int (*sink)(void *, const void *, size_t), void *user,
			      struct miren_error *err)
{
	if (!d->bstore)
		return store_missing(err);
	return bstore_export(d->bstore, id, sink, user, err);
}

/* --- the app's addon instance ------------------------------------------- */

void addon_target_release(struct addon_target *t)
{
	if (t->inst_loaded)
		addon_inst_release(t->def, &t->inst);
	addon_rec_release(&t->rec);
	server_rec_release(&t->srv);
	memset(t, 0, sizeof(*t));
}

enum miren_err addon_target_load(struct daemon *d, const char *app, const char *addon,
				 const char *doing, struct addon_target *t, struct miren_error *err)
{
	memset(t, 0, sizeof(*t));
	struct app_rec arec;
	enum miren_err rc = store_app_get(d->store, app, &arec, err);
	if (rc)
		return rc;
	app_rec_release(&arec);
	rc = store_addon_get(d->store, app, addon, &t->rec, NULL);
	if (rc == MIREN_ENOTFOUND) {
		miren_error_set(err, MIREN_ENOTFOUND, "app '%s' has no addon '%s'", app, addon);
		miren_error_hint(err, "see its addons with 'miren addon list -a %s'", app);
		return rc;
	}
	if (rc)
		return miren_error_set(err, rc, "cannot read addon '%s' of app '%s'", addon, app);
	if (strcmp(t->rec.status, "active") || !*t->rec.server) {
		miren_error_set(err, MIREN_ECONFLICT,
				"addon %s of app '%s' is %s, so it cannot be %s", addon, app,
				t->rec.status, doing);
		miren_error_hint(err, "wait until 'miren addon list -a %s' shows it active", app);
		return MIREN_ECONFLICT;
	}
	t->def = addon_find(t->rec.addon);
	if (!t->def)
		return miren_error_set(err, MIREN_EINTERNAL, "addon '%s' is not in this build",
				       t->rec.addon);
	const struct addon_variant *v = addon_variant_find(t->def, t->rec.variant);
	t->shared = v && v->shared;
	rc = store_server_get(d->store, t->rec.server, &t->srv, err);
	if (rc)
		return rc;
	rc = addon_inst_load(t->def, &t->rec, &t->inst, err);
	t->inst_loaded = rc == 0;
	return rc;
}

/* --- streams -------------------------------------------------------------- */

/*
 * A source giving the .miren.zst export of a stored backup: a thread runs
 * bstore_export into a pipe.  Closing the read end stops it (EPIPE).
 */
struct export_src {
	struct bstore *bs;
	char *id;
	int rfd, wfd;
	pthread_t thread;
	bool started;
	enum miren_err rc;
	struct miren_error err;
};

static void *export_run(void *arg)
{
	struct export_src *x = arg;
	x->rc = bstore_export(x->bs, x->id, snap_sink_fd, &x->wfd, &x->err);
	close(x->wfd);
	x->wfd = -1;
	return NULL;
}

static enum miren_err export_open(struct export_src *x, struct bstore *bs, const char *id,
				  struct miren_error *err)
{
	memset(x, 0, sizeof(*x));
	x->rfd = x->wfd = -1;
	int fds[2];
	if (pipe2(fds, O_CLOEXEC) != 0)
		return miren_error_set(err, MIREN_EIO, "cannot read backup '%s': %s", id,
				       io_strerror(errno));
	fcntl(fds[1], F_SETPIPE_SZ, 1 << 20);
	x->bs = bs;
	x->id = xstrdup(id);
	x->rfd = fds[0];
	x->wfd = fds[1];
	miren_error_clear(&x->err);
	if (pthread_create(&x->thread, NULL, export_run, x) != 0) {
		close(fds[0]);
		close(fds[1]);
		free(x->id);
		return miren_error_set(err, MIREN_EIO, "cannot start reading backup '%s'", id);
	}
	x->started = true;
	return 0;
}

static ssize_t export_source(void *user, void *buf, size_t len)
{
	struct export_src *x = user;
	return snap_source_fd(&x->rfd, buf, len);
}

/* Stops the export; its error (0 when it completed). */
static enum miren_err export_close(struct export_src *x, struct miren_error *err)
{
	if (!x->started)
		return 0;
	close(x->rfd);
	pthread_join(x->thread, NULL);
	x->started = false;
	free(x->id);
	if (x->rc && err)
		*err = x->err;
	return x->rc;
}

/* --- taking a backup ------------------------------------------------------ */

/* The header facts every addon backup carries (the snapshot header of a
 * disk backup gets them too). */
static void describe_backup(struct daemon *d, struct addon_target *t, json_t *h)
{
	json_object_set_new(h, "app", json_string(t->rec.app));
	json_object_set_new(h, "addon", json_string(t->def->name));
	json_object_set_new(h, "addon_id", json_string(t->rec.id));
	json_object_set_new(h, "variant", json_string(t->rec.variant));
	json_object_set_new(h, "engine_version", json_string(t->rec.version));
	if (t->def->tenant_facts) {
		json_t *facts = t->def->tenant_facts(&d->actx, &t->inst);
		if (facts)
			json_object_set_new(h, "tenant", facts);
	}
}

/* Makes the new file path (0600, the service user's: the engine's tools
 * write it as that user); *fd open for writing. */
static enum miren_err dump_file_open(struct daemon *d, const char *path, int *fd,
				     struct miren_error *err)
{
	*fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (*fd >= 0 && (d->run_uid == (uid_t)-1 || fchown(*fd, d->run_uid, d->run_gid) == 0))
		return 0;
	enum miren_err rc = miren_error_set(err, MIREN_EIO, "cannot make the dump's file '%s': %s",
					    path, io_strerror(errno));
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
	return rc;
}

/* The engine's dump of inst into fd, fsynced. */
static enum miren_err dump_into(struct daemon *d, const struct addon_def *def,
				struct addon_inst *inst, int fd, struct miren_error *err)
{
	if (!def->dump)
		return addon_unsupported(def, "a logical dump", err);
	enum miren_err rc = def->dump(&d->actx, inst, fd, err);
	if (!rc && fsync(fd) != 0)
		rc = miren_error_set(err, MIREN_EIO, "cannot write the dump: %s",
				     io_strerror(errno));
	return rc;
}

enum miren_err backups_dump_file(struct daemon *d, const struct addon_def *def,
				 struct addon_inst *inst, const char *path, struct miren_error *err)
{
	int fd;
	enum miren_err rc = dump_file_open(d, path, &fd, err);
	if (rc)
		return rc;
	rc = dump_into(d, def, inst, fd, err);
	close(fd);
	return rc;
}

/* Writes the tenant's logical dump of t as a snapshot to sink. */
static enum miren_err take_dump(struct daemon *d, struct addon_target *t, snap_sink_fn sink,
				void *user, struct miren_error *err)
{
	if (!t->def->dump)
		return addon_unsupported(t->def, "a logical dump", err);
	char *dir = data_paths_tmp_unique(d->paths, "dump");
	char *path = fs_join(dir, "dump");
	struct snap_writer *w = NULL;
	json_t *h = NULL;
	enum miren_err rc = 0;
	int fd = -1;
	if (mkdir(dir, 0700) != 0) {
		rc = miren_error_set(err, MIREN_EIO, "cannot make the dump's file '%s': %s", path,
				     io_strerror(errno));
		goto out;
	}
	rc = dump_file_open(d, path, &fd, err);
	if (!rc)
		rc = dump_into(d, t->def, &t->inst, fd, err);
	if (rc)
		goto out;
	fault_point("addon-backup:dumped");
	struct stat st;
	long long size = fstat(fd, &st) == 0 ? (long long)st.st_size : 0;
	h = json_pack("{s:s, s:s, s:I, s:I, s:i, s:s}", "kind", "dump", "disk", "", "size",
		      (json_int_t)size, "created_at", (json_int_t)time(NULL), "dump_format_version",
		      DUMP_FORMAT_VERSION, "method", "logical-dump");
	describe_backup(d, t, h);
	w = snap_writer_new_raw(sink, user, h, err);
	if (!w) {
		rc = err ? err->code : MIREN_EIO;
		goto out;
	}
	rc = snap_add_tree(w, dir, 0, NULL, NULL, err);
	if (!rc)
		rc = snap_writer_finish(w, NULL, err);
out:
	snap_writer_free(w);
	json_decref(h);
	if (fd >= 0)
		close(fd);
	fs_remove_tree(dir);
	free(path);
	free(dir);
	return rc;
}

/* Writes the online backup of t's dedicated server's disk to sink. */
static enum miren_err take_disk(struct daemon *d, struct addon_target *t, snap_sink_fn sink,
				void *user, struct miren_error *err)
{
	struct disk_backup_job *job;
	enum miren_err rc = disk_backup_prepare(&d->actx, t->srv.disk, &job, err);
	if (rc)
		return rc;
	json_t *h = json_object();
	describe_backup(d, t, h);
	json_object_set_new(h, "kind", json_string("disk"));
	const char *key;
	json_t *v;
	json_object_foreach (h, key, v)
		disk_backup_annotate(job, key, json_incref(v));
	json_decref(h);
	/* Files unchanged since the disk's last stored backup are taken from
	   it (user is the store's writer: see backups_take). */
	disk_backup_reuse(job, bstore_reuse(user));
	struct snap_stats st;
	rc = disk_backup_run(job, sink, user, &st, err);
	disk_backup_free(job);
	return rc;
}

enum miren_err backups_take(struct daemon *d, const char *app, const char *addon,
			    const char *trigger, int64_t keep_until, json_t **result,
			    struct miren_error *err)
{
	*result = NULL;
	struct bstore *bs = daemon_bstore(d);
	struct addon_target t;
	struct bstore_writer *w = NULL;
	json_t *meta = NULL, *man = NULL;
	char *id = NULL;
	enum miren_err rc = addon_target_load(d, app, addon, "backed up", &t, err);
	if (rc)
		goto out;
	if (!bs) {
		rc = store_missing(err);
		goto out;
	}
	rc = bstore_write_begin(bs, &w, err);
	if (rc)
		goto out;
	if (!t.shared) { /* the lineage whose unchanged files are reused */
		json_t *lineage = json_pack("{s:s, s:s}", "kind", "disk", "disk", t.srv.disk);
		rc = bstore_write_base(w, lineage, err);
		json_decref(lineage);
		if (rc)
			goto out;
	}
	rc = t.shared ? take_dump(d, &t, bstore_sink, w, err)
		      : take_disk(d, &t, bstore_sink, w, err);
	if (rc)
		bstore_write_failed(w, err); /* the store's own cause (e.g. full) */
	if (rc)
		goto out;
	meta = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s}", "app", app, "addon",
			 t.def->name, "addon_id", t.rec.id, "variant", t.rec.variant,
			 "engine_version", t.rec.version, "kind", t.shared ? "dump" : "disk",
			 "trigger", trigger ? trigger : "manual", "server", t.srv.id, "disk",
			 t.shared ? "" : t.srv.disk);
	json_object_set_new(meta, "keep_until", json_integer(keep_until));
	rc = bstore_write_commit(w, meta, &id, err);
	if (rc)
		goto out;
	fault_point("addon-backup:stored");
	rc = bstore_get(bs, id, &man, err);
	if (rc)
		goto out;
	*result = json_pack("{s:s, s:s, s:O, s:O, s:O, s:s, s:s, s:s}", "id", id, "kind",
			    t.shared ? "dump" : "disk", "size", json_object_get(man, "size"),
			    "stored_bytes", json_object_get(man, "stored_bytes"), "created_at",
			    json_object_get(man, "created_at"), "app", app, "addon", t.def->name,
			    "variant", t.rec.variant);
	log_info("app %s: addon %s backed up as %s (%s)", app, t.def->name, id,
		 t.shared ? "the tenant's dump" : "the server's disk");
out:
	bstore_write_free(w);
	json_decref(meta);
	json_decref(man);
	free(id);
	addon_target_release(&t);
	return rc;
}

/* --- restoring ------------------------------------------------------------ */

/* Reads the header (the first member) of the .miren.zst file open on fd,
 * and rewinds fd.  MIREN_EINVAL when it is not a miren backup. */
static enum miren_err peek_header(int fd, json_t **out, struct miren_error *err)
{
	*out = NULL;
	enum miren_err rc = 0;
	char *buf = NULL;
	struct archive *a = archive_read_new();
	struct archive_entry *e;
	archive_read_support_filter_zstd(a);
	archive_read_support_format_tar(a);
	if (lseek(fd, 0, SEEK_SET) != 0) {
		rc = miren_error_set(err, MIREN_EIO, "cannot read the backup file: %s",
				     io_strerror(errno));
		goto out;
	}
	if (archive_read_open_fd(a, fd, 1 << 16) != ARCHIVE_OK ||
	    archive_read_next_header(a, &e) != ARCHIVE_OK ||
	    strcmp(archive_entry_pathname(e), "miren-backup.json") != 0 ||
	    archive_entry_size(e) <= 0 || archive_entry_size(e) > HEADER_MAX) {
		rc = miren_error_set(err, MIREN_EINVAL,
				     "not a miren backup (no zstd-compressed archive starting with "
				     "miren-backup.json)");
		goto out;
	}
	size_t n = (size_t)archive_entry_size(e);
	buf = xmalloc(n);
	if (archive_read_data(a, buf, n) != (la_ssize_t)n ||
	    !(*out = json_loadb(buf, n, 0, NULL)) || !json_is_object(*out)) {
		json_decref(*out);
		*out = NULL;
		rc = miren_error_set(err, MIREN_EINVAL,
				     "not a miren backup (its header is damaged)");
		goto out;
	}
	json_t *ver = json_object_get(*out, "format_version");
	if (!json_is_integer(ver) || json_integer_value(ver) > SNAP_FORMAT_VERSION) {
		rc = miren_error_set(err, MIREN_EINVAL,
				     "backup format version %lld is newer than this miren supports "
				     "(%d)",
				     (long long)json_integer_value(ver), SNAP_FORMAT_VERSION);
		miren_error_hint(err, "restore it with the miren version that wrote it, or a "
				      "newer one");
	}
out:
	if (rc) {
		json_decref(*out);
		*out = NULL;
	}
	free(buf);
	archive_read_free(a);
	if (lseek(fd, 0, SEEK_SET) != 0 && !rc)
		rc = miren_error_set(err, MIREN_EIO, "cannot read the backup file: %s",
				     io_strerror(errno));
	return rc;
}

/* Where a restore reads the backup from: a stored one (id) or a file. */
struct source {
	struct bstore *bs;
	const char *id; /* NULL: fd */
	int fd;
	struct export_src ex;
	bool open;
};

static enum miren_err source_open(struct source *s, snap_source_fn *fn, void **user,
				  struct miren_error *err)
{
	if (!s->id) {
		if (lseek(s->fd, 0, SEEK_SET) != 0)
			return miren_error_set(err, MIREN_EIO, "cannot read the backup file: %s",
					       io_strerror(errno));
		*fn = snap_source_fd;
		*user = &s->fd;
		return 0;
	}
	enum miren_err rc = export_open(&s->ex, s->bs, s->id, err);
	s->open = rc == 0;
	*fn = export_source;
	*user = &s->ex;
	return rc;
}

/* Ends reading; when the read itself failed (rc), the store's reason for
 * it replaces err's (a damaged chunk says more than a short stream). */
static enum miren_err source_close(struct source *s, enum miren_err rc, struct miren_error *err)
{
	if (!s->open)
		return rc;
	s->open = false;
	struct miren_error why;
	miren_error_clear(&why);
	enum miren_err xrc = export_close(&s->ex, &why);
	if (rc && xrc) {
		miren_error_set(err, MIREN_EINVAL, "stored backup '%s' cannot be read: %s", s->id,
				why.message);
		miren_error_hint(err, "it is damaged; restore another backup");
		return MIREN_EINVAL;
	}
	return rc;
}

/* The journal of a restore whose data change may have happened:
 * restores/<addon id>.json, {"app","addon","route"}. */
static char *journal_path(struct daemon *d, const char *addon_id)
{
	char *dir = fs_join(data_paths_root(d->paths), "restores");
	char *name = xasprintf("%s.json", addon_id);
	char *p = fs_join(dir, name);
	free(name);
	free(dir);
	return p;
}

static enum miren_err journal_write(struct daemon *d, struct addon_target *t, const char *route,
				    struct miren_error *err)
{
	char *dir = fs_join(data_paths_root(d->paths), "restores");
	char *path = journal_path(d, t->rec.id);
	json_t *j = json_pack("{s:s, s:s, s:s}", "app", t->rec.app, "addon", t->def->name, "route",
			      route);
	char *text = json_dumps(j, JSON_COMPACT);
	enum miren_err rc = 0;
	if (fs_mkdir_p(dir, 0700) != 0 || fs_write_atomic(path, text, strlen(text), 0600) != 0)
		rc = miren_error_set(err, MIREN_EIO, "cannot write the restore's journal '%s': %s",
				     path, io_strerror(errno));
	free(text);
	json_decref(j);
	free(path);
	free(dir);
	return rc;
}

static void journal_remove(struct daemon *d, struct addon_target *t)
{
	char *path = journal_path(d, t->rec.id);
	if (unlink(path) != 0 && errno != ENOENT)
		log_warn("cannot remove the restore journal %s: %s", path, io_strerror(errno));
	free(path);
}

void backups_recover(struct daemon *d)
{
	char *dir = fs_join(data_paths_root(d->paths), "restores");
	DIR *dh = opendir(dir);
	struct dirent *de;
	while (dh && (de = readdir(dh))) {
		if (de->d_name[0] == '.')
			continue;
		char *path = fs_join(dir, de->d_name);
		json_t *j = json_load_file(path, 0, NULL);
		const char *app = addon_jstr(j, "app");
		if (*app) {
			struct miren_error err;
			miren_error_clear(&err);
			if (apps_restart(d, app, &err) == 0 || err.code == MIREN_ENOTFOUND)
				log_warn("app %s: restarted after an interrupted restore of its "
					 "addon "
					 "%s (the addon holds either its data from before or the "
					 "backup's, never a mix)",
					 app, addon_jstr(j, "addon"));
			else
				log_error("app %s: cannot restart it after an interrupted restore: "
					  "%s",
					  app, err.message);
		}
		json_decref(j);
		if (unlink(path) != 0)
			log_error("cannot remove %s: %s", path, io_strerror(errno));
		free(path);
	}
	if (dh)
		closedir(dh);
	free(dir);
}

/* Rewords err (MIREN_EINVAL from reading a backup) as a refusal that
 * changed nothing, unless it says so already; its hint is kept. */
static void refused(struct miren_error *err)
{
	if (strstr(err->message, "nothing was changed"))
		return;
	char why[sizeof(err->message)], hint[sizeof(err->hint)];
	snprintf(why, sizeof(why), "%s", err->message);
	snprintf(hint, sizeof(hint), "%s", err->hint);
	miren_error_set(err, MIREN_EINVAL, "the backup is refused: %s; nothing was changed", why);
	if (*hint)
		miren_error_hint(err, "%s", hint);
}

/* Checks what a backup says of itself against the instance it goes to. */
static enum miren_err check_backup(struct addon_target *t, const json_t *h, bool force,
				   struct miren_error *err)
{
	const char *addon = addon_jstr(h, "addon");
	if (strcmp(addon, t->def->name) != 0) {
		miren_error_set(err, MIREN_EINVAL,
				"this backup is of %s, not of %s; nothing was "
				"changed",
				*addon ? addon : "no addon (a plain disk)", t->def->name);
		miren_error_hint(err, "restore it into an app's %s addon",
				 *addon ? addon : "matching");
		return MIREN_EINVAL;
	}
	json_t *dv = json_object_get(h, "dump_format_version");
	/* (A manifest's meta has no dump_format_version: the header it
	 * describes is checked when it is read.) */
	bool header = json_object_get(h, "format") != NULL;
	if (!strcmp(addon_jstr(h, "kind"), "dump") && (dv || header) &&
	    (!json_is_integer(dv) || json_integer_value(dv) > DUMP_FORMAT_VERSION)) {
		if (!json_is_integer(dv))
			miren_error_set(err, MIREN_EINVAL,
					"this backup's dump has no format version (it was not "
					"written by 'miren addon backup'); nothing was changed");
		else
			miren_error_set(err, MIREN_EINVAL,
					"this backup's dump format version %lld is newer than this "
					"miren supports (%d); nothing was changed",
					(long long)json_integer_value(dv), DUMP_FORMAT_VERSION);
		miren_error_hint(err,
				 "restore it with the miren version that wrote it, or a newer one");
		return MIREN_EINVAL;
	}
	const char *app = addon_jstr(h, "app");
	if (*app && strcmp(app, t->rec.app) != 0 && !force) {
		miren_error_set(err, MIREN_ECONFLICT,
				"this backup is of app '%s'; restoring it would replace the data "
				"of app '%s' with that app's",
				app, t->rec.app);
		miren_error_hint(err, "pass --force to restore another app's data");
		return MIREN_ECONFLICT;
	}
	return 0;
}

/*
 * Reads the backup, verifying it whole, into staging (an empty directory);
 * *hdr: its header, checked against t.  Nothing else changes.
 */
static enum miren_err stage(struct daemon *d, struct addon_target *t, struct source *src,
			    const char *staging, bool force, json_t **hdr, struct miren_error *err)
{
	*hdr = NULL;
	enum miren_err rc;
	if (src->id) {
		/* A stored backup as the store keeps it: its tar stream, every
		 * chunk checked against its SHA-256. */
		struct bstore_reader *r;
		rc = bstore_read_open(src->bs, src->id, &r, err);
		if (!rc) {
			rc = snap_read_raw(bstore_source, r, staging, d->actx.uid, d->actx.gid, 0,
					   hdr, NULL, err);
			const struct miren_error *why = bstore_read_error(r);
			if (rc && why && why->code) {
				/* A damaged or missing chunk says more. */
				*err = *why;
				rc = MIREN_EINVAL;
			}
			bstore_read_close(r);
		}
	} else {
		snap_source_fn fn;
		void *user;
		rc = source_open(src, &fn, &user, err);
		if (!rc)
			rc = snap_read(fn, user, staging, d->actx.uid, d->actx.gid, 0, hdr, NULL,
				       err);
		rc = source_close(src, rc, err);
	}
	if (rc && rc != MIREN_EINVAL && rc != MIREN_ECONFLICT) {
		char why[sizeof(err->message)];
		snprintf(why, sizeof(why), "%s", err->message);
		miren_error_set(err, rc, "cannot read the backup; nothing was changed");
		miren_error_detail(err, "%s", why);
	} else if (rc == MIREN_EINVAL) {
		refused(err);
	}
	if (!rc)
		rc = check_backup(t, *hdr, force, err);
	return rc;
}

/* Loads the dump at path into t's tenant (all or nothing), journalled. */
static enum miren_err load_dump(struct daemon *d, struct addon_target *t, const char *path,
				const char *route, struct miren_error *err)
{
	if (!t->def->load)
		return addon_unsupported(t->def, "loading a dump", err);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return miren_error_set(err, MIREN_EIO, "the backup holds no dump (%s): %s", path,
				       io_strerror(errno));
	enum miren_err rc = journal_write(d, t, route, err);
	if (!rc) {
		rc = t->def->load(&d->actx, &t->inst, fd, err);
		if (rc) {
			char why[sizeof(err->message)];
			snprintf(why, sizeof(why), "%s", err->message);
			miren_error_set(err, rc,
					"the backup could not be loaded into addon %s of app '%s'; "
					"its data is as it was",
					t->def->name, t->rec.app);
			miren_error_detail(err, "%s", why);
		}
	}
	close(fd);
	return rc;
}

/* Reads the app's tenant out of a disk backup of another server: the
 * backup restored into a scratch area, a scratch server started there
 * (lib/addon/scratch.h; opts: NULL, or a recovery target), its dump of
 * tenant (NULL: the one the header names) written to dump_path.  A stored
 * backup is read as the store keeps it (its tar stream, every chunk
 * checked).  Nothing of the app's changes. */
static enum miren_err scratch_extract(struct daemon *d, const struct addon_def *def,
				      struct source *src, const char *dump_path, const json_t *opts,
				      const json_t *tenant, struct miren_error *err)
{
	int fd;
	enum miren_err rc = dump_file_open(d, dump_path, &fd, err);
	if (rc)
		return rc;
	struct bstore_reader *r = NULL;
	struct scratch_source ss = { .fn = snap_source_fd, .user = &src->fd, .raw = false };
	if (src->id) {
		rc = bstore_read_open(src->bs, src->id, &r, err);
		ss = (struct scratch_source){ .fn = bstore_source, .user = r, .raw = true };
	} else if (lseek(src->fd, 0, SEEK_SET) != 0) {
		rc = miren_error_set(err, MIREN_EIO, "cannot read the backup file: %s",
				     io_strerror(errno));
	}
	if (!rc)
		rc = scratch_tenant_dump(&d->actx, def, &ss, tenant, opts, fd, err);
	if (rc && r && bstore_read_error(r) && bstore_read_error(r)->code) {
		/* A damaged or missing chunk says more than a short stream. */
		*err = *bstore_read_error(r);
		rc = MIREN_EINVAL;
	}
	if (r)
		bstore_read_close(r);
	if (!rc && fsync(fd) != 0)
		rc = miren_error_set(err, MIREN_EIO, "cannot write '%s': %s", dump_path,
				     io_strerror(errno));
	close(fd);
	if (rc == MIREN_EINVAL && !opts)
		refused(err); /* (a recovery's refusal says its own reason) */
	return rc;
}

enum miren_err backups_scratch_dump(struct daemon *d, const struct addon_def *def, const char *id,
				    const json_t *opts, const json_t *tenant, const char *dump_path,
				    struct miren_error *err)
{
	if (!d->bstore)
		return store_missing(err);
	struct source src = { .bs = d->bstore, .id = id, .fd = -1 };
	return scratch_extract(d, def, &src, dump_path, opts, tenant, err);
}

/* What the stored backup id says of itself (its manifest's meta). */
static enum miren_err stored_facts(struct bstore *bs, const char *id, json_t **facts,
				   struct miren_error *err)
{
	json_t *man;
	enum miren_err rc = bstore_get(bs, id, &man, err);
	if (rc == MIREN_ENOTFOUND)
		miren_error_hint(err, "list the backups with 'miren addon backups ADDON -a APP'");
	if (rc)
		return rc;
	*facts = json_incref(json_object_get(man, "meta"));
	if (!*facts)
		*facts = json_object();
	json_decref(man);
	return 0;
}

enum miren_err backups_restore(struct daemon *d, const char *app, const char *addon, const char *id,
			       int fd, bool force, json_t **result, struct miren_error *err)
{
	*result = NULL;
	struct bstore *bs = daemon_bstore(d);
	struct addon_target t;
	json_t *facts = NULL, *hdr = NULL, *dres = NULL;
	struct source src = { .bs = bs, .id = id, .fd = fd };
	char *tmp = NULL, *dump = NULL;
	const char *route = NULL;
	app_lock(d, app);
	enum miren_err rc = addon_target_load(d, app, addon, "restored", &t, err);
	if (rc)
		goto out;
	if (id && !bs) {
		rc = store_missing(err);
		goto out;
	}
	/* Which way, from what the backup says of itself; everything is
	 * checked again from the verified header before any change. */
	rc = id ? stored_facts(bs, id, &facts, err) : peek_header(fd, &facts, err);
	if (rc == MIREN_EINVAL && !id) {
		/* The whole file's verification says more precisely what is wrong
		 * (truncated, a checksum); a file that passes it is used as is. */
		struct miren_error why;
		miren_error_clear(&why);
		if (lseek(fd, 0, SEEK_SET) == 0 && snap_read(snap_source_fd, &fd, NULL, (uid_t)-1,
							     (gid_t)-1, 0, &facts, NULL, &why) == 0)
			rc = 0;
		else if (why.code)
			*err = why;
	}
	if (rc == MIREN_EINVAL && !id) {
		refused(err);
		if (!*err->hint)
			miren_error_hint(err, "give a .miren.zst file written by 'miren addon "
					      "backup -o' or 'miren disk backup'");
	}
	if (!rc)
		rc = check_backup(&t, facts, force, err);
	if (rc)
		goto out;
	/* The route.  (A point-in-time restore, `--to`, has no backup to read
	 * facts from: it gets its dump from a scratch server recovered to that
	 * instant, then goes on as the scratch route does from its dump.) */
	const char *kind = addon_jstr(facts, "kind");
	bool is_dump = !strcmp(kind, "dump");
	if (is_dump)
		route = "load";
	else if (!t.shared && !strcmp(addon_jstr(facts, "disk"), t.srv.disk))
		route = "disk";
	else
		route = "scratch";

	/* A dump, from the backup or from a scratch server, goes here. */
	tmp = data_paths_tmp_unique(d->paths, "restore");
	if (mkdir(tmp, 0700) != 0 ||
	    (d->run_uid != (uid_t)-1 && chown(tmp, d->run_uid, d->run_gid) != 0)) {
		rc = miren_error_set(err, MIREN_EIO, "cannot make '%s': %s", tmp,
				     io_strerror(errno));
		goto out;
	}
	if (!strcmp(route, "load")) {
		rc = stage(d, &t, &src, tmp, force, &hdr, err);
		if (!rc && strcmp(addon_jstr(hdr, "kind"), "dump"))
			rc = miren_error_set(err, MIREN_EINVAL,
					     "the backup's header changed while it was read; "
					     "nothing "
					     "was changed");
		dump = fs_join(tmp, "dump");
	} else if (!strcmp(route, "scratch")) {
		dump = fs_join(tmp, "tenant.dump");
		rc = scratch_extract(d, t.def, &src, dump, NULL, NULL, err);
		if (!rc)
			fault_point("addon-restore:scratch-dumped");
	}
	if (rc)
		goto out;
	if (dump) {
		fault_point("addon-restore:staged");
		rc = load_dump(d, &t, dump, route, err);
	} else {
		/* The dedicated server's own disk: replaced in place, verified
		 * first, the old disk kept until the restored one answers. */
		snap_source_fn fn;
		void *user;
		rc = source_open(&src, &fn, &user, err);
		if (!rc)
			rc = journal_write(d, &t, route, err);
		if (!rc)
			rc = disk_restore(&d->actx, fn, user, t.srv.disk, true, NULL, NULL, &dres,
					  err);
		rc = source_close(&src, rc, err);
		if (rc == MIREN_EINVAL)
			refused(err); /* (disk_restore refuses only before any change) */
	}
	if (rc) {
		journal_remove(d, &t);
		goto out;
	}
	fault_point("addon-restore:loaded");
	struct miren_error rerr;
	miren_error_clear(&rerr);
	bool restarted = apps_restart_locked(d, app, &rerr) == 0;
	if (!restarted)
		log_warn("app %s: not restarted after the restore of %s: %s", app, t.def->name,
			 rerr.message);
	journal_remove(d, &t);
	*result = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:b}", "app", app, "addon", t.def->name,
			    "variant", t.rec.variant, "kind", is_dump ? "dump" : "disk", "route",
			    route, "from_app", addon_jstr(facts, "app"), "restarted", restarted);
	json_object_set_new(*result, "backup", id ? json_string(id) : json_null());
	json_object_set_new(*result, "from_variant", json_string(addon_jstr(facts, "variant")));
	if (!restarted)
		json_object_set_new(*result, "restart_error", json_string(rerr.message));
	log_info("app %s: addon %s restored from %s (%s)", app, t.def->name,
		 id ? id : "an uploaded file", route);
out:
	app_unlock(d, app);
	if (tmp)
		fs_remove_tree(tmp);
	free(tmp);
	free(dump);
	json_decref(facts);
	json_decref(hdr);
	json_decref(dres);
	addon_target_release(&t);
	return rc;
}

enum miren_err backups_restore_to(struct daemon *d, const char *app, const char *addon,
				  const char *when, json_t **result, struct miren_error *err)
{
	*result = NULL;
	int64_t target;
	enum miren_err rc = when_parse(when, time(NULL), &target, err);
	if (rc)
		return rc;
	struct bstore *bs = daemon_bstore(d);
	struct addon_target t;
	char *id = NULL, *tmp = NULL, *dump = NULL;
	json_t *opts = NULL, *hdr = NULL, *facts = NULL;
	app_lock(d, app);
	rc = addon_target_load(d, app, addon, "restored", &t, err);
	if (rc)
		goto out;
	if (!bs) {
		rc = store_missing(err);
		goto out;
	}
	if (!t.def->pitr_source || !t.def->tenant_facts) {
		rc = addon_unsupported(t.def, "point-in-time recovery", err);
		goto out;
	}
	/* Outside the window, or nothing to recover from: refused here,
	 * before anything changes. */
	rc = t.def->pitr_source(&d->actx, bs, &t.inst, target, &id, &opts, err);
	if (rc)
		goto out;
	tmp = data_paths_tmp_unique(d->paths, "restore");
	if (mkdir(tmp, 0700) != 0 ||
	    (d->run_uid != (uid_t)-1 && chown(tmp, d->run_uid, d->run_gid) != 0)) {
		rc = miren_error_set(err, MIREN_EIO, "cannot make '%s': %s", tmp,
				     io_strerror(errno));
		goto out;
	}
	dump = fs_join(tmp, "tenant.dump");
	/* The app's own tenant, as it is named on the server the base backup
	 * is of (its own server: a point-in-time recovery never crosses
	 * servers). */
	facts = t.def->tenant_facts(&d->actx, &t.inst);
	struct source src = { .bs = bs, .id = id, .fd = -1 };
	rc = scratch_extract(d, t.def, &src, dump, opts, facts, err);
	if (rc)
		goto out;
	fault_point("pitr:recovered");
	rc = load_dump(d, &t, dump, "point-in-time", err);
	if (rc) {
		journal_remove(d, &t);
		goto out;
	}
	fault_point("pitr:loaded");
	struct miren_error rerr;
	miren_error_clear(&rerr);
	bool restarted = apps_restart_locked(d, app, &rerr) == 0;
	if (!restarted)
		log_warn("app %s: not restarted after the point-in-time recovery of %s: %s", app,
			 t.def->name, rerr.message);
	journal_remove(d, &t);
	*result = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:O, s:b}", "app", app, "addon",
			    t.def->name, "variant", t.rec.variant, "kind", "point-in-time", "route",
			    "point-in-time", "backup", id, "to",
			    json_object_get(opts, "recovery_target_time"), "restarted", restarted);
	if (!restarted)
		json_object_set_new(*result, "restart_error", json_string(rerr.message));
	log_info("app %s: addon %s recovered to %s (base backup %s)", app, t.def->name,
		 addon_jstr(opts, "recovery_target_time"), id);
out:
	app_unlock(d, app);
	if (tmp)
		fs_remove_tree(tmp);
	free(tmp);
	free(dump);
	free(id);
	json_decref(opts);
	json_decref(hdr);
	json_decref(facts);
	addon_target_release(&t);
	return rc;
}
