/*
 * Disk sizes and fullness (see disk_ops.h): the disk list with each disk's
 * mode and its filesystem's usage, `miren disk resize`, the warning for a
 * disk over DISK_WARN_PERCENT, and the watcher thread that logs it.
 */
#include "addon/disk_ops.h"
#include "addon/server.h"
#include "disk/volume.h"
#include "util/log.h"
#include "util/num.h"

#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Largest size a disk may be given: ext4 with 4 KiB blocks and the
 * resize_inode mkfs reserves grows to 16 TiB. */
#define DISK_MAX_BYTES (16ULL << 40)
#define DISK_MIN_BYTES (16ULL << 20)

char *disk_warning_text(const char *name, int percent, uint64_t used, uint64_t size)
{
	return xasprintf("disk '%s' is %d%% full (%" PRIu64 " MiB of %" PRIu64 " MiB)", name,
			 percent, used >> 20, size >> 20);
}

json_t *disk_usage_json(struct addon_ctx *ctx, const char *name, long long recorded_size)
{
	struct volume_info vi;
	volume_info(ctx->volumes, name, recorded_size > 0 ? (uint64_t)recorded_size : 0, &vi);
	int pct = volume_percent_used(&vi);
	json_t *o = json_pack("{s:s, s:I, s:I, s:I, s:i, s:b}", "mode", volume_mode_name(vi.mode),
			      "size", (json_int_t)vi.size_bytes, "used", (json_int_t)vi.used_bytes,
			      "avail", (json_int_t)vi.avail_bytes, "used_percent", pct, "mounted",
			      vi.mounted);
	if (vi.mode == VOLUME_EXT4 && vi.device[0])
		json_object_set_new(o, "device", json_string(vi.device));
	if (vi.mode == VOLUME_EXT4 && !vi.mounted)
		json_object_set_new(o, "warning",
				    json_sprintf("disk '%s' is not mounted (see the daemon's log)",
						 name));
	else if (pct >= DISK_WARN_PERCENT) {
		char *w = disk_warning_text(name, pct, vi.used_bytes,
					    vi.used_bytes + vi.avail_bytes);
		json_object_set_new(o, "warning", json_string(w));
		free(w);
	}
	return o;
}

enum miren_err disk_list(struct addon_ctx *ctx, json_t **result, struct miren_error *err)
{
	struct disk_rec *disks;
	size_t n;
	enum miren_err rc = store_disk_list(ctx->store, &disks, &n, err);
	if (rc)
		return rc;
	*result = json_array();
	for (size_t i = 0; i < n; i++) {
		json_t *o = disk_usage_json(ctx, disks[i].name, disks[i].size_bytes);
		json_object_set_new(o, "name", json_string(disks[i].name));
		json_object_set_new(o, "status", json_string(disks[i].status));
		json_object_set_new(o, "created_by", json_string(disks[i].created_by));
		json_object_set_new(o, "created_at", json_integer(disks[i].created_at));
		json_array_append_new(*result, o);
	}
	disk_recs_free(disks, n);
	return 0;
}

enum miren_err disk_resize(struct addon_ctx *ctx, const char *name, uint64_t size_bytes,
			   json_t **result, struct miren_error *err)
{
	*result = NULL;
	enum miren_err rc = disk_name_check(name, err);
	if (rc)
		return rc;
	if (size_bytes < DISK_MIN_BYTES || size_bytes > DISK_MAX_BYTES) {
		rc = miren_error_set(err, MIREN_EINVAL, "disk size %" PRIu64 " MiB is out of range",
				     size_bytes >> 20);
		miren_error_hint(err, "a disk has from 16 MiB to 16 TiB");
		return rc;
	}
	size_bytes = (size_bytes + 4095) & ~4095ULL;
	struct disk_rec d;
	rc = store_disk_get(ctx->store, name, &d, err);
	if (rc)
		return rc;
	struct volume_info vi;
	volume_info(ctx->volumes, name, (uint64_t)d.size_bytes, &vi);
	uint64_t cur = vi.mode == VOLUME_EXT4 ? vi.size_bytes : (uint64_t)d.size_bytes;
	if (size_bytes < cur) {
		rc = miren_error_set(err, MIREN_EINVAL,
				     "disk '%s' has %" PRIu64 " MiB and cannot shrink to %" PRIu64
				     " MiB; nothing was changed",
				     name, cur >> 20, size_bytes >> 20);
		miren_error_hint(err, "give a size of at least %" PRIu64 " MiB", cur >> 20);
		disk_rec_release(&d);
		return rc;
	}
	rc = disk_lock(name, "a resize", DISK_LOCK_WAIT_MS, err);
	if (rc) {
		disk_rec_release(&d);
		return rc;
	}
	/* Without an online resize, the disk's server stops for it and
	 * starts again on the grown disk. */
	struct server_rec srv = { 0 };
	const struct addon_def *def = NULL;
	bool stopped = false;
	/* (Also when the image grew and the filesystem did not: a resize a
	 * crash cut short.) */
	bool grows = size_bytes > cur || vi.fs_bytes + (1u << 20) < size_bytes;
	if (vi.mode == VOLUME_EXT4 && !volumes_grow_online(ctx->volumes) && grows &&
	    addon_server_of_disk(ctx, name, &srv) == 0) {
		def = addon_find(srv.engine);
		addon_server_stop(ctx, srv.id);
		if (def && def->disk_server) {
			char *dir = addon_disk_dir(ctx, name);
			def->disk_server(ctx, dir, true);
			free(dir);
		}
		stopped = true;
	}
	rc = volume_resize(ctx->volumes, name, size_bytes, err);
	if (!rc && (uint64_t)d.size_bytes != size_bytes) {
		d.size_bytes = (long long)size_bytes;
		rc = store_disk_put(ctx->store, &d, err);
	}
	bool restarted = false;
	if (stopped && def && def->restore_start) {
		struct miren_error e2;
		miren_error_clear(&e2);
		if (def->restore_start(ctx, &srv, &e2) != 0) {
			log_warn("disk %s: its server did not start again after the resize: %s",
				 name, e2.message);
			if (!rc)
				rc = miren_error_set(err, e2.code,
						     "disk '%s' was resized but its server did not "
						     "start again: %s",
						     name, e2.message);
		} else {
			restarted = true;
		}
	}
	disk_unlock(name);
	if (!rc) {
		log_info("disk %s resized to %" PRIu64 " MiB (%s)", name, size_bytes >> 20,
			 vi.mode != VOLUME_EXT4 ? "recorded only: a directory disk"
			 : stopped              ? "its server stopped for it"
						: "online");
		*result = disk_usage_json(ctx, name, d.size_bytes);
		json_object_set_new(*result, "name", json_string(name));
		json_object_set_new(*result, "previous_size", json_integer((json_int_t)cur));
		json_object_set_new(*result, "online", json_boolean(!stopped));
		json_object_set_new(*result, "server_restarted", json_boolean(restarted));
	}
	server_rec_release(&srv);
	disk_rec_release(&d);
	return rc;
}

/* --- the watcher ------------------------------------------------------------- */

struct disk_watch {
	struct addon_ctx ctx;
	int interval_ms;
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool stop;
	char **warned; /* names logged as full, until they are not */
	size_t n_warned;
};

static bool warned_has(struct disk_watch *w, const char *name, bool remove)
{
	for (size_t i = 0; i < w->n_warned; i++)
		if (!strcmp(w->warned[i], name)) {
			if (remove) {
				free(w->warned[i]);
				w->warned[i] = w->warned[--w->n_warned];
			}
			return true;
		}
	return false;
}

/* One look at every disk: a warning when one went over the mark, a note
 * when it is back under. */
static void watch_once(struct disk_watch *w)
{
	struct disk_rec *disks;
	size_t n;
	if (store_disk_list(w->ctx.store, &disks, &n, NULL) != 0)
		return;
	for (size_t i = 0; i < n; i++) {
		struct volume_info vi;
		volume_info(w->ctx.volumes, disks[i].name, (uint64_t)disks[i].size_bytes, &vi);
		int pct = volume_percent_used(&vi);
		bool full = vi.exists && pct >= DISK_WARN_PERCENT;
		if (full && !warned_has(w, disks[i].name, false)) {
			char *t = disk_warning_text(disks[i].name, pct, vi.used_bytes,
						    vi.used_bytes + vi.avail_bytes);
			log_warn("%s: grow it with 'miren disk resize -n %s --size SIZE'", t,
				 disks[i].name);
			free(t);
			w->warned = xrealloc(w->warned, (w->n_warned + 1) * sizeof(*w->warned));
			w->warned[w->n_warned++] = xstrdup(disks[i].name);
		} else if (!full && warned_has(w, disks[i].name, true)) {
			log_info("disk '%s' is %d%% full again, under %d%%", disks[i].name, pct,
				 DISK_WARN_PERCENT);
		}
	}
	disk_recs_free(disks, n);
}

static void *watch_run(void *arg)
{
	struct disk_watch *w = arg;
	pthread_mutex_lock(&w->mu);
	while (!w->stop) {
		pthread_mutex_unlock(&w->mu);
		watch_once(w);
		pthread_mutex_lock(&w->mu);
		struct timespec until;
		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_sec += w->interval_ms / 1000;
		until.tv_nsec += (long)(w->interval_ms % 1000) * 1000000L;
		if (until.tv_nsec >= 1000000000L) {
			until.tv_sec++;
			until.tv_nsec -= 1000000000L;
		}
		while (!w->stop && pthread_cond_timedwait(&w->cv, &w->mu, &until) == 0)
			;
	}
	pthread_mutex_unlock(&w->mu);
	return NULL;
}

struct disk_watch *disk_watch_start(const struct addon_ctx *ctx)
{
	struct disk_watch *w = xcalloc(1, sizeof(*w));
	w->ctx = *ctx;
	const char *ms = getenv("MIREN_DISK_WATCH_MS");
	long long v;
	w->interval_ms = num_parse(ms, 100, INT_MAX, &v) ? (int)v : DISK_WATCH_MS;
	pthread_mutex_init(&w->mu, NULL);
	pthread_cond_init(&w->cv, NULL);
	if (pthread_create(&w->thread, NULL, watch_run, w) != 0) {
		log_error("cannot start the disk watcher: disks filling up are not logged");
		pthread_cond_destroy(&w->cv);
		pthread_mutex_destroy(&w->mu);
		free(w);
		return NULL;
	}
	return w;
}

void disk_watch_stop(struct disk_watch *w)
{
	if (!w)
		return;
	pthread_mutex_lock(&w->mu);
	w->stop = true;
	pthread_cond_signal(&w->cv);
	pthread_mutex_unlock(&w->mu);
	pthread_join(w->thread, NULL);
	for (size_t i = 0; i < w->n_warned; i++)
		free(w->warned[i]);
	free(w->warned);
	pthread_cond_destroy(&w->cv);
	pthread_mutex_destroy(&w->mu);
	free(w);
}
