/*
 * Point-in-time recovery of the miren-postgresql provider: base backups
 * of every server into the backup store, taken in the background and
 * giving way to every other operation on the disk; their retention and
 * the tidying of the WAL archive (wal.c) they make obsolete; the window
 * an instance can be recovered to; and where a recovery to an instant
 * starts from (the newest base backup before it, plus the archive).
 *
 * A base backup is the server's online disk backup (disk_ops.h) stored
 * raw in the backup store with the meta {"addon", "kind": "pitr-base",
 * "trigger": "pitr", "server", "disk", "variant", "engine_version",
 * "wal_start" (the WAL file the server wrote before the backup began: the
 * oldest the recovery from it needs), "consistent_at" (unix seconds, once
 * the backup ended: the earliest instant it can be recovered to)}.
 * Every PITR_EVERY_MIN minutes (MIREN_PITR_BASE_MINUTES; tests:
 * MIREN_PITR_BASE_SECONDS) a server gets one; the newest PITR_KEEP (MIREN_PITR_BASE_KEEP) are kept,
 * and archived WAL older than the oldest kept one's wal_start is removed.  The archive and base
 * backups of a server that no longer exists go too.
 *
 * Crash safety: nothing is journalled because nothing is half-made for
 * long: a base backup is one bstore commit (a kill before leaves only
 * the store's temporary files, removed at its next open, and an online
 * backup the server ends with the connection); pruning removes whole
 * manifests, oldest first, and only then tidies the WAL their recovery
 * needed.  Fault points: pitr:base-started, pitr:base-stored,
 * pitr:base-pruned, pitr:wal-tidied.
 */
#include "addon/disk_ops.h"
#include "addon/postgresql/provider.h"
#include "addon/server.h"
#include "backup/bstore.h"
#include "util/fault.h"
#include "util/fs.h"
#include "util/io.h"
#include "util/log.h"
#include "util/num.h"
#include "util/secret.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define PITR_KIND "pitr-base"
#define PITR_EVERY_MIN (24 * 60)
#define PITR_KEEP 7
/* How long a recovery to "now" waits for the WAL it forced out to be
 * archived. */
#define PITR_ARCHIVE_WAIT_MS 30000

static long long env_num(const char *name, long long min, long long dflt)
{
	long long v;
	return num_parse(getenv(name), min, INT_MAX, &v) ? v : dflt;
}

/* The base backups of server_id, oldest first (caller decrefs). */
static json_t *bases_of(struct bstore *bs, const char *server_id)
{
	json_t *f = json_pack("{s:s, s:s, s:s}", "addon", PG_ADDON, "kind", PITR_KIND, "server",
			      server_id);
	json_t *l = bstore_list(bs, f);
	json_decref(f);
	return l ? l : json_array();
}

static int64_t meta_int(const json_t *backup, const char *key)
{
	return json_integer_value(json_object_get(json_object_get(backup, "meta"), key));
}

static const char *meta_str(const json_t *backup, const char *key)
{
	const char *s = json_string_value(json_object_get(json_object_get(backup, "meta"), key));
	return s ? s : "";
}

/* A base backup's sink: the store's, until the backup must give way. */
struct base_sink {
	struct bstore_writer *w;
	atomic_bool *yield;
	const struct addon_ctx *ctx;
};

static int base_sink(void *user, const void *data, size_t len)
{
	struct base_sink *b = user;
	if (atomic_load(b->yield) || addon_stopping(b->ctx))
		return MIREN_ECONFLICT;
	return bstore_sink(b->w, data, len);
}

/* Takes a base backup of srv into bs.  0 also when it gave way or the
 * server does not answer (the next tick tries again). */
static enum miren_err take_base(struct addon_ctx *ctx, struct bstore *bs,
				const struct server_rec *srv, struct miren_error *err)
{
	struct pgp_server ss;
	pgp_server_parse(srv, &ss);
	char *dir = addon_disk_dir(ctx, srv->disk);
	struct disk_backup_job *job = NULL;
	struct bstore_writer *w = NULL;
	char seg[64], *id = NULL;
	atomic_bool yield;
	atomic_init(&yield, false);
	/* The job's waits end when it must give way. */
	struct addon_ctx jctx = *ctx;
	jctx.stopping = &yield;
	enum miren_err rc = pgp_ready(ctx, srv, 1000, err);
	if (rc) {
		rc = 0; /* not answering now: later */
		goto out;
	}
	rc = pg_wal_current(dir, srv->port, ss.su_password, seg, err);
	if (!rc)
		rc = disk_backup_prepare_yielding(&jctx, srv->disk, &yield, &job, err);
	if (rc == MIREN_ECONFLICT) {
		rc = 0; /* the disk is busy: later */
		goto out;
	}
	if (rc)
		goto out;
	log_info("server %s: a base backup for point-in-time recovery begins", srv->id);
	fault_point(PG_FAULT("pitr:base-started"));
	disk_backup_raw(job);
	rc = bstore_write_begin(bs, &w, err);
	struct base_sink sink = { w, &yield, ctx };
	struct snap_stats st;
	int64_t t0 = io_mono_ms();
	if (!rc)
		rc = disk_backup_run(job, base_sink, &sink, &st, err);
	int64_t consistent_at = time(NULL);
	disk_backup_free(job); /* the disk is free again */
	job = NULL;
	if (rc && (atomic_load(&yield) || addon_stopping(ctx))) {
		log_info("server %s: the base backup gave way to another operation on disk %s",
			 srv->id, srv->disk);
		rc = 0;
		goto out;
	}
	if (rc)
		goto out;
	json_t *meta = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:I}", "addon", PG_ADDON,
				 "kind", PITR_KIND, "trigger", "pitr", "server", srv->id, "disk",
				 srv->disk, "variant", srv->kind, "engine_version", ss.version,
				 "wal_start", seg, "consistent_at", (json_int_t)consistent_at);
	rc = bstore_write_commit(w, meta, &id, err);
	json_decref(meta);
	if (!rc) {
		fault_point(PG_FAULT("pitr:base-stored"));
		log_info("server %s: base backup %s for point-in-time recovery (%llu bytes, "
			 "%.1f s)",
			 srv->id, id, (unsigned long long)st.tar_bytes,
			 (double)(io_mono_ms() - t0) / 1000.0);
	}
out:
	disk_backup_free(job);
	bstore_write_free(w);
	free(id);
	free(dir);
	pgp_server_release(&ss);
	return rc;
}

/* Keeps the newest `keep` base backups of server_id and the WAL they
 * need. */
static void prune(struct addon_ctx *ctx, struct bstore *bs, const char *server_id, size_t keep)
{
	json_t *bases = bases_of(bs, server_id);
	struct miren_error err;
	bool removed = false;
	while (json_array_size(bases) > keep) {
		const char *id = json_string_value(json_object_get(json_array_get(bases, 0), "id"));
		if (bstore_remove(bs, id, &err) != 0) {
			log_warn("server %s: cannot remove the base backup %s: %s", server_id, id,
				 err.message);
			break;
		}
		log_info("server %s: removed the base backup %s (keeping the newest %zu)",
			 server_id, id, keep);
		fault_point(PG_FAULT("pitr:base-pruned"));
		json_array_remove(bases, 0);
		removed = true;
	}
	char *wal = pgp_wal_dir(ctx, server_id);
	if (wal && json_array_size(bases) > 0) {
		const char *from = meta_str(json_array_get(bases, 0), "wal_start");
		int n = 0;
		if (pg_wal_tidy(wal, from, &n, &err) != 0)
			log_warn("server %s: cannot tidy its WAL archive: %s", server_id,
				 err.message);
		else if (n > 0) {
			log_info("server %s: removed %d archived WAL files older than %s",
				 server_id, n, from);
			fault_point(PG_FAULT("pitr:wal-tidied"));
		}
	}
	free(wal);
	json_decref(bases);
	uint64_t freed = 0;
	if (removed && bstore_gc(bs, &freed, &err) != 0)
		log_warn("the backup store's garbage collection failed: %s", err.message);
}

/* The archives and base backups of servers that no longer exist. */
static void forget_gone(struct addon_ctx *ctx, struct bstore *bs, struct server_rec *srvs, size_t n)
{
	char *root = xasprintf("%s/wal", ctx->backup_dir);
	DIR *d = opendir(root);
	struct dirent *de;
	json_t *f = json_pack("{s:s, s:s}", "addon", PG_ADDON, "kind", PITR_KIND);
	json_t *all = bstore_list(bs, f);
	json_decref(f);
	size_t i;
	json_t *b;
	struct miren_error err;
	json_array_foreach (all, i, b) {
		const char *sid = meta_str(b, "server");
		bool known = false;
		for (size_t k = 0; k < n && !known; k++)
			known = !strcmp(srvs[k].id, sid);
		if (!known &&
		    bstore_remove(bs, json_string_value(json_object_get(b, "id")), &err) == 0)
			log_info("server %s is gone: removed its base backup %s", sid,
				 json_string_value(json_object_get(b, "id")));
	}
	json_decref(all);
	while (d && (de = readdir(d)) != NULL) {
		if (!strncmp(de->d_name, ".reset-", 7)) {
			/* An archive a crash left half-removed (pgp_pitr_reset). */
			char *p = fs_join(root, de->d_name);
			fs_remove_tree(p);
			free(p);
		}
		if (de->d_name[0] == '.')
			continue;
		bool known = false;
		for (size_t k = 0; k < n && !known; k++)
			known = !strcmp(srvs[k].id, de->d_name);
		/* Asked again: a server made since the list was read. */
		struct server_rec now;
		if (!known && store_server_get(ctx->store, de->d_name, &now, NULL) == 0) {
			server_rec_release(&now);
			known = true;
		}
		if (known)
			continue;
		char *p = fs_join(root, de->d_name);
		if (fs_remove_tree(p) == 0)
			log_info("server %s is gone: removed its WAL archive", de->d_name);
		free(p);
	}
	if (d)
		closedir(d);
	free(root);
}

void pgp_tick(struct addon_ctx *ctx)
{
	if (!ctx->backup_dir)
		return;
	struct bstore *bs;
	struct miren_error err;
	if (bstore_open(ctx->backup_dir, &bs, &err) != 0) {
		log_warn("no base backups for point-in-time recovery: %s", err.message);
		return;
	}
	int64_t every = env_num("MIREN_PITR_BASE_MINUTES", 1, PITR_EVERY_MIN) * 60;
	every = env_num("MIREN_PITR_BASE_SECONDS", 1, every); /* tests */
	size_t keep = (size_t)env_num("MIREN_PITR_BASE_KEEP", 1, PITR_KEEP);
	struct server_rec *srvs = NULL;
	size_t n = 0;
	if (store_server_list(ctx->store, &srvs, &n, &err) != 0) {
		bstore_close(bs);
		return;
	}
	size_t ours = 0;
	for (size_t i = 0; i < n; i++) {
		if (!strcmp(srvs[i].engine, PG_ADDON))
			srvs[ours++] = srvs[i];
		else
			server_rec_release(&srvs[i]);
	}
	for (size_t i = 0; i < ours && !addon_stopping(ctx); i++) {
		struct sv_status st;
		if (!addon_server_supervised(ctx, srvs[i].id, &st) || st.state != SV_RUNNING)
			continue;
		json_t *bases = bases_of(bs, srvs[i].id);
		size_t nb = json_array_size(bases);
		int64_t last = nb ? meta_int(json_array_get(bases, nb - 1), "consistent_at") : 0;
		json_decref(bases);
		if (time(NULL) - last >= every && take_base(ctx, bs, &srvs[i], &err) != 0)
			log_warn("server %s: the base backup for point-in-time recovery failed: "
				 "%s",
				 srvs[i].id, err.message);
		if (!addon_stopping(ctx))
			prune(ctx, bs, srvs[i].id, keep);
	}
	if (!addon_stopping(ctx))
		forget_gone(ctx, bs, srvs, ours);
	server_recs_free(srvs, ours);
	bstore_close(bs);
}

/* "2026-11-30 12:34:56+00" of t (UTC). */
static void utc_text(int64_t t, char out[32])
{
	time_t tt = (time_t)t;
	struct tm tm;
	gmtime_r(&tt, &tm);
	strftime(out, 32, "%Y-%m-%d %H:%M:%S+00", &tm);
}

json_t *pgp_pitr_window(struct addon_ctx *ctx, struct bstore *bs, struct addon_inst *inst)
{
	if (!*inst->rec.server || !bs)
		return NULL;
	json_t *bases = bases_of(bs, inst->rec.server);
	char *wal = pgp_wal_dir(ctx, inst->rec.server);
	char newest[64];
	int64_t to = wal ? pg_wal_newest(wal, newest) : 0;
	free(wal);
	/* While archiving works, a recovery archives the log up to now
	 * first (pitr_source): the window reaches now. */
	struct server_rec srv;
	if (to && store_server_get(ctx->store, inst->rec.server, &srv, NULL) == 0) {
		char *dir = addon_disk_dir(ctx, srv.disk);
		char *pgdata = fs_join(dir, "pgdata");
		json_t *st = pg_wal_status_read(pgdata);
		if (!st || json_is_true(json_object_get(st, "ok")))
			to = time(NULL);
		json_decref(st);
		free(pgdata);
		free(dir);
		server_rec_release(&srv);
	}
	json_t *o = NULL;
	if (json_array_size(bases) > 0 && to > 0) {
		int64_t from = meta_int(json_array_get(bases, 0), "consistent_at");
		o = json_pack("{s:I, s:I}", "from", (json_int_t)from, "to",
			      (json_int_t)(to > from ? to : from));
	}
	json_decref(bases);
	return o;
}

enum miren_err pgp_pitr_source(struct addon_ctx *ctx, struct bstore *bs, struct addon_inst *inst,
			       int64_t target, char **backup, json_t **opts,
			       struct miren_error *err)
{
	*backup = NULL;
	*opts = NULL;
	struct server_rec srv;
	enum miren_err rc = store_server_get(ctx->store, inst->rec.server, &srv, err);
	if (rc)
		return rc;
	struct pgp_server ss;
	pgp_server_parse(&srv, &ss);
	char *dir = addon_disk_dir(ctx, srv.disk);
	char *wal = pgp_wal_dir(ctx, srv.id);
	json_t *bases = bases_of(bs, srv.id);
	char a[32], b[32], t[32], seg[64];
	utc_text(target, t);
	if (!wal || json_array_size(bases) == 0) {
		rc = miren_error_set(err, MIREN_EINVAL,
				     "addon %s of app '%s' cannot be recovered to a point in time "
				     "yet: its server %s has no base backup; nothing was changed",
				     PG_ADDON, inst->rec.app, srv.id);
		miren_error_hint(err, "the first one is taken in the background soon after the "
				      "server starts; try again in a minute");
		goto out;
	}
	int64_t from = meta_int(json_array_get(bases, 0), "consistent_at");
	int64_t to = time(NULL);
	utc_text(from, a);
	utc_text(to, b);
	if (target < from || target > to) {
		rc = miren_error_set(err, MIREN_EINVAL,
				     "%s is outside the point-in-time window of addon %s of app "
				     "'%s', %s .. %s; nothing was changed",
				     t, PG_ADDON, inst->rec.app, a, b);
		miren_error_hint(err, "give --to a time in that window");
		goto out;
	}
	/* The WAL up to now: a commit after the target, then archived. */
	rc = pg_wal_switch(dir, srv.port, ss.su_password, seg, err);
	if (rc)
		goto out;
	char *zst = xasprintf("%s/%s.zst", wal, seg);
	int64_t deadline = io_mono_ms() + PITR_ARCHIVE_WAIT_MS;
	while (!fs_exists(zst) && io_mono_ms() < deadline && !addon_stopping(ctx))
		usleep(100 * 1000);
	bool archived = fs_exists(zst);
	free(zst);
	if (!archived) {
		char *pgdata = fs_join(dir, "pgdata");
		json_t *st = pg_wal_status_read(pgdata);
		free(pgdata);
		const char *why = json_string_value(json_object_get(st, "error"));
		rc = miren_error_set(err, MIREN_EUNAVAIL,
				     "the WAL of server %s up to now is not archived (%s); nothing "
				     "was changed",
				     srv.id, why ? why : "the archiver is behind");
		miren_error_hint(err, "see 'miren addon list -a %s'", inst->rec.app);
		json_decref(st);
		goto out;
	}
	/* The newest base backup consistent by the target. */
	const char *id = NULL;
	size_t i;
	json_t *x;
	json_array_foreach (bases, i, x)
		if (meta_int(x, "consistent_at") <= target)
			id = json_string_value(json_object_get(x, "id"));
	if (!id) {
		rc = miren_error_set(err, MIREN_EINVAL,
				     "no base backup of server %s is consistent by that time; "
				     "nothing was changed",
				     srv.id);
		goto out;
	}
	*backup = xstrdup(id);
	*opts = json_pack("{s:s, s:s}", "recovery_target_time", t, "server", srv.id);
	log_info("app %s: recovery to %s from base backup %s and the WAL archive of %s",
		 inst->rec.app, t, id, srv.id);
out:
	json_decref(bases);
	free(wal);
	free(dir);
	pgp_server_release(&ss);
	server_rec_release(&srv);
	return rc;
}

void pgp_pitr_reset(struct addon_ctx *ctx, const struct server_rec *srv)
{
	char *wal = pgp_wal_dir(ctx, srv->id);
	if (!wal)
		return;
	/* The archive first (one rename): a restored cluster writes WAL
	 * files under names the archive holds with other contents, which it
	 * would refuse for ever. */
	char *hex = secret_hex(4);
	char *aside = xasprintf("%s/wal/.reset-%s-%s", ctx->backup_dir, srv->id, hex);
	if (rename(wal, aside) == 0) {
		fs_remove_tree(aside);
		log_info("server %s: its disk was restored, so its WAL archive and base backups "
			 "start again (point-in-time recovery reaches back to the next base "
			 "backup)",
			 srv->id);
	} else if (errno != ENOENT) {
		log_warn("server %s: cannot move its WAL archive aside after a restore: %s",
			 srv->id, io_strerror(errno));
	}
	char *dir = NULL;
	struct miren_error err;
	if (pgp_wal_dir_ensure(ctx, srv->id, &dir, &err) != 0)
		log_warn("server %s: %s", srv->id, err.message);
	free(dir);
	struct bstore *bs;
	if (bstore_open(ctx->backup_dir, &bs, &err) == 0) {
		json_t *bases = bases_of(bs, srv->id);
		size_t i;
		json_t *b;
		json_array_foreach (bases, i, b)
			bstore_remove(bs, json_string_value(json_object_get(b, "id")), &err);
		json_decref(bases);
		bstore_close(bs);
	}
	free(aside);
	free(hex);
	free(wal);
}
