/* Backup schedules, retention and final backups; see schedules.h. */
#include "daemon/schedules.h"
#include "addon/addon.h"
#include "addon/registry.h"
#include "app/config.h"
#include "backup/bstore.h"
#include "daemon/backups.h"
#include "daemon/change.h"
#include "daemon/daemon_int.h"
#include "daemon/rotate.h"
#include "daemon/verify.h"
#include "store/store.h"
#include "util/duration.h"
#include "util/fault.h"
#include "util/log.h"
#include "util/num.h"

#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <time.h>

struct scheduler {
	struct daemon *d;
	int tick_ms;
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t cv; /* CLOCK_MONOTONIC */
	bool stop, kicked;
	int64_t last_expiry; /* when expired final backups were last looked for */
};

int64_t sched_retry_s(int64_t every_s)
{
	int64_t r = every_s / 6;
	return r < 60 ? 60 : r > 1800 ? 1800 : r;
}

/* When the schedule is due next (unix seconds). */
static int64_t next_at(const struct schedule_rec *s)
{
	int64_t due = s->last_ok_at ? s->last_ok_at + s->every_s : s->created_at;
	if (s->last_try_at > s->last_ok_at) {
		int64_t retry = s->last_try_at + sched_retry_s(s->every_s);
		if (retry > due)
			due = retry;
	}
	return due;
}

static const char *meta_str(const json_t *entry, const char *key)
{
	const char *v = json_string_value(json_object_get(json_object_get(entry, "meta"), key));
	return v ? v : "";
}

static int64_t keep_until_of(const json_t *entry)
{
	return json_integer_value(json_object_get(json_object_get(entry, "meta"), "keep_until"));
}

/* Whether a stored backup was verified: restored into a scratch server
 * and passed the engine's checker (verify.h records it). */
static bool backup_verified(struct daemon *d, const json_t *entry)
{
	json_t *v = backups_verification_of(d, json_string_value(json_object_get(entry, "id")));
	bool ok = json_is_true(json_object_get(v, "ok"));
	json_decref(v);
	return ok;
}

/* A scheduled backup's verification (backups_verify records the outcome,
 * which `addon list` shows when it failed). */
static void verify_scheduled(struct daemon *d, const char *app, const char *addon, const char *id)
{
	json_t *res = NULL;
	struct miren_error err;
	miren_error_clear(&err);
	if (backups_verify(d, app, addon, id, &res, &err) != 0)
		log_error("scheduled backup %s of addon %s of app %s failed its verification: "
			  "%s%s%s",
			  id, addon, app, err.message, *err.detail ? ": " : "", err.detail);
	else
		log_info("scheduled backup %s of addon %s of app %s verified", id, addon, app);
	json_decref(res);
}

/*
 * A backup that failed while the backup store's filesystem is (nearly)
 * full failed because of it, whatever the writer's own words ("its
 * destination failed"): says so, with what is free, in err's message.
 */
static void explain_full(struct daemon *d, struct miren_error *err)
{
	struct bstore *bs = daemon_bstore(d);
	struct statvfs sv;
	if (!err || !bs || statvfs(bstore_dir(bs), &sv) != 0)
		return;
	unsigned long long avail = (unsigned long long)sv.f_bavail * sv.f_frsize;
	if (avail >= (64ULL << 20) || strstr(err->message, "full"))
		return;
	struct miren_error why = *err;
	miren_error_set(err, why.code, "the backup store is full (%llu KiB free in %s): %s",
			avail >> 10, bstore_dir(bs), why.message);
	if (*why.detail)
		miren_error_detail(err, "%s", why.detail);
	miren_error_hint(err, "free space there (fewer backups kept: --keep), or give the store "
			      "more room");
}

/* The backups of app's addon in the store, oldest first (NULL: no store). */
static json_t *addon_backups(struct bstore *bs, const char *app, const char *addon)
{
	if (!bs)
		return NULL;
	json_t *filter = json_pack("{s:s, s:s}", "app", app, "addon", addon);
	json_t *list = bstore_list(bs, filter);
	json_decref(filter);
	return list;
}

/* Removes backup id (a retention or an expiry); logs why. */
static bool remove_backup(struct bstore *bs, const json_t *entry, const char *why)
{
	const char *id = json_string_value(json_object_get(entry, "id"));
	struct miren_error err;
	miren_error_clear(&err);
	if (bstore_remove(bs, id, &err) != 0) {
		log_error("backup %s: cannot remove it (%s): %s", id, why, err.message);
		return false;
	}
	log_info("backup %s of addon %s of app %s removed: %s", id, meta_str(entry, "addon"),
		 meta_str(entry, "app"), why);
	return true;
}

/* Frees the chunks no manifest names any more. */
static void collect_garbage(struct bstore *bs)
{
	fault_point("prune:pruned");
	uint64_t freed = 0;
	struct miren_error err;
	miren_error_clear(&err);
	if (bstore_gc(bs, &freed, &err) != 0)
		log_error("backup store: garbage collection failed: %s", err.message);
	else if (freed)
		log_info("backup store: %llu bytes of chunks no backup uses freed",
			 (unsigned long long)freed);
}

/*
 * Retention of app's addon: its backups not kept until a future time,
 * beyond keep, removed oldest first, never the newest verified one.
 * Returns how many were removed.
 */
static size_t prune(struct daemon *d, struct bstore *bs, const char *app, const char *addon,
		    int keep)
{
	json_t *list = addon_backups(bs, app, addon);
	size_t counted = 0, removed = 0, i;
	json_t *e;
	const json_t *newest_verified = NULL;
	json_array_foreach (list, i, e) {
		if (keep_until_of(e) != 0)
			continue; /* a final backup: its own expiry decides */
		counted++;
		if (backup_verified(d, e))
			newest_verified = e;
	}
	json_array_foreach (list, i, e) {
		if (counted - removed <= (size_t)keep)
			break;
		if (keep_until_of(e) != 0 || e == newest_verified)
			continue;
		char why[64];
		snprintf(why, sizeof(why), "beyond the %d its schedule keeps", keep);
		if (remove_backup(bs, e, why)) {
			removed++;
			fault_point("prune:removed");
		}
	}
	json_decref(list);
	return removed;
}

/* Removes every backup whose keep_until passed (final backups). */
static size_t expire(struct bstore *bs)
{
	json_t *list = bs ? bstore_list(bs, NULL) : NULL;
	int64_t now = time(NULL);
	size_t removed = 0, i;
	json_t *e;
	json_array_foreach (list, i, e) {
		int64_t until = keep_until_of(e);
		if (until > 0 && until <= now && remove_backup(bs, e, "its keep time passed")) {
			removed++;
			fault_point("prune:removed");
		}
	}
	json_decref(list);
	return removed;
}

/* Takes the scheduled backup of s, records it, verifies it, prunes. */
static void run_one(struct scheduler *sc, const struct schedule_rec *s)
{
	struct daemon *d = sc->d;
	int64_t at = time(NULL);
	json_t *res = NULL;
	struct miren_error err;
	miren_error_clear(&err);
	/* An addon that is not active (being provisioned, failed, being
	 * removed) has nothing to back up yet: looked at again next tick,
	 * not counted as a failure. */
	struct addon_rec a;
	if (store_addon_get(d->store, s->app, s->addon, &a, NULL) != 0)
		return;
	bool active = addon_status_parse(a.status) == ADDON_ACTIVE;
	addon_rec_release(&a);
	if (!active)
		return;
	enum miren_err rc = backups_take(d, s->app, s->addon, "schedule", 0, &res, &err);
	if (rc == MIREN_ENOTFOUND) {
		/* The app has no such addon (now): nothing to back up. */
		log_debug("backup schedule of addon %s of app %s: %s", s->addon, s->app,
			  err.message);
		return;
	}
	if (rc) {
		explain_full(d, &err);
		log_error("scheduled backup of addon %s of app %s failed: %s%s%s (retried in %lld "
			  "s)",
			  s->addon, s->app, err.message, *err.detail ? ": " : "", err.detail,
			  (long long)sched_retry_s(s->every_s));
		store_schedule_ran(d->store, s->app, s->addon, at, NULL, err.message, NULL);
		return;
	}
	const char *id = json_string_value(json_object_get(res, "id"));
	log_info("scheduled backup %s of addon %s of app %s taken", id, s->addon, s->app);
	fault_point("schedule:taken");
	store_schedule_ran(d->store, s->app, s->addon, at, id, NULL, NULL);
	fault_point("schedule:recorded");
	verify_scheduled(d, s->app, s->addon, id);
	struct bstore *bs = daemon_bstore(d);
	size_t removed = prune(d, bs, s->app, s->addon, s->keep) + expire(bs);
	if (removed)
		collect_garbage(bs);
	json_decref(res);
}

/* Retention for every schedule and the expiry of final backups, then
 * gc: at start (what a crash left unpruned) and every hour. */
static void prune_all(struct scheduler *sc)
{
	struct bstore *bs = daemon_bstore(sc->d);
	if (!bs)
		return;
	struct schedule_rec *s;
	size_t n, removed = 0;
	if (store_schedule_list(sc->d->store, NULL, &s, &n, NULL) == 0) {
		for (size_t i = 0; i < n; i++)
			removed += prune(sc->d, bs, s[i].app, s[i].addon, s[i].keep);
		schedule_recs_free(s, n);
	}
	removed += expire(bs);
	if (removed)
		collect_garbage(bs);
}

static void pass(struct scheduler *sc)
{
	int64_t now = time(NULL);
	if (now - sc->last_expiry >= 3600) {
		sc->last_expiry = now;
		prune_all(sc);
	}
	struct schedule_rec *s;
	size_t n;
	if (store_schedule_list(sc->d->store, NULL, &s, &n, NULL) != 0)
		return;
	for (size_t i = 0; i < n && !daemon_is_stopping(sc->d); i++)
		if (next_at(&s[i]) <= time(NULL))
			run_one(sc, &s[i]);
	schedule_recs_free(s, n);
	/* Credentials too old for their app.toml's rotate_every. */
	rotations_due(sc->d);
	changes_recover(sc->d, false); /* what a failure left, tried again */
}

static void *sched_run(void *arg)
{
	struct scheduler *sc = arg;
	pthread_mutex_lock(&sc->mu);
	while (!sc->stop) {
		sc->kicked = false;
		pthread_mutex_unlock(&sc->mu);
		pass(sc);
		pthread_mutex_lock(&sc->mu);
		struct timespec until;
		io_mono_deadline(&until, sc->tick_ms);
		while (!sc->stop && !sc->kicked &&
		       pthread_cond_timedwait(&sc->cv, &sc->mu, &until) == 0)
			;
	}
	pthread_mutex_unlock(&sc->mu);
	return NULL;
}

struct scheduler *scheduler_start(struct daemon *d)
{
	struct scheduler *sc = xcalloc(1, sizeof(*sc));
	sc->d = d;
	long long v;
	sc->tick_ms = num_parse(getenv("MIREN_BACKUP_TICK_MS"), 100, INT_MAX, &v) ? (int)v
										  : SCHED_TICK_MS;
	pthread_mutex_init(&sc->mu, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&sc->cv, &ca);
	pthread_condattr_destroy(&ca);
	if (pthread_create(&sc->thread, NULL, sched_run, sc) != 0) {
		log_error("cannot start the backup scheduler: scheduled backups are not taken");
		pthread_cond_destroy(&sc->cv);
		pthread_mutex_destroy(&sc->mu);
		free(sc);
		return NULL;
	}
	return sc;
}

void scheduler_kick(struct scheduler *sc)
{
	if (!sc)
		return;
	pthread_mutex_lock(&sc->mu);
	sc->kicked = true;
	pthread_cond_signal(&sc->cv);
	pthread_mutex_unlock(&sc->mu);
}

void scheduler_stop(struct scheduler *sc)
{
	if (!sc)
		return;
	pthread_mutex_lock(&sc->mu);
	sc->stop = true;
	pthread_cond_signal(&sc->cv);
	pthread_mutex_unlock(&sc->mu);
	pthread_join(sc->thread, NULL);
	pthread_cond_destroy(&sc->cv);
	pthread_mutex_destroy(&sc->mu);
	free(sc);
}

/* --- the API's ------------------------------------------------------------ */

static json_t *schedule_json(const struct schedule_rec *s)
{
	char *every = duration_text(s->every_s);
	json_t *o = json_pack("{s:s, s:I, s:i, s:s, s:I, s:I, s:s, s:s, s:I}", "every", every,
			      "every_s", (json_int_t)s->every_s, "keep", s->keep, "source",
			      s->source, "last_ok_at", (json_int_t)s->last_ok_at, "last_try_at",
			      (json_int_t)s->last_try_at, "last_error", s->last_error, "last_id",
			      s->last_id, "next_at", (json_int_t)next_at(s));
	free(every);
	return o;
}

/*
 * The point-in-time window of app's addon ({"from","to"} in unix seconds),
 * or NULL when it has none: the engine's pitr_window hook.
 */
static json_t *pitr_window(struct daemon *d, const char *app, const char *addon)
{
	struct addon_rec rec;
	if (store_addon_get(d->store, app, addon, &rec, NULL) != 0)
		return NULL;
	const struct addon_def *def = addon_find(rec.addon);
	json_t *w = NULL;
	struct addon_inst inst;
	if (def && def->pitr_window && !strcmp(rec.status, "active") &&
	    addon_inst_load(def, &rec, &inst, NULL) == 0) {
		w = def->pitr_window(&d->actx, daemon_bstore(d), &inst);
		addon_inst_release(def, &inst);
	}
	addon_rec_release(&rec);
	/* w is the engine's new object, not part of inst. */
	// cppcheck-suppress returnDanglingLifetime
	return w;
}

enum miren_err schedules_backups(struct daemon *d, const char *app, const char *addon,
				 json_t **result, struct miren_error *err)
{
	struct bstore *bs = daemon_bstore(d);
	if (!bs)
		return miren_error_set(err, MIREN_EUNAVAIL, "the backup store is not open");
	json_t *list = addon_backups(bs, app, addon);
	struct app_rec rec;
	enum miren_err rc = store_app_get(d->store, app, &rec, NULL);
	app_rec_release(&rec);
	if (rc && json_array_size(list) == 0) {
		json_decref(list);
		miren_error_set(err, MIREN_ENOTFOUND, "app '%s' not found, and it has no backups",
				app);
		miren_error_hint(err, "run 'miren app list' to see the apps");
		return MIREN_ENOTFOUND;
	}
	json_t *out = json_array(), *e;
	const char *last_verified = NULL;
	size_t i;
	json_array_foreach (list, i, e) {
		bool verified = backup_verified(d, e);
		if (verified)
			last_verified = json_string_value(json_object_get(e, "id"));
		json_array_append_new(out, json_pack("{s:O, s:O, s:s, s:s, s:O, s:O, s:b, s:I}",
						     "id", json_object_get(e, "id"), "created_at",
						     json_object_get(e, "created_at"), "kind",
						     meta_str(e, "kind"), "trigger",
						     meta_str(e, "trigger"), "size",
						     json_object_get(e, "size"), "stored_bytes",
						     json_object_get(e, "stored_bytes"), "verified",
						     verified, "keep_until",
						     (json_int_t)keep_until_of(e)));
	}
	struct schedule_rec s;
	json_t *sched = json_null();
	if (store_schedule_get(d->store, app, addon, &s, NULL) == 0) {
		sched = schedule_json(&s);
		schedule_rec_release(&s);
	}
	json_t *window = pitr_window(d, app, addon);
	*result = json_pack("{s:s, s:s, s:o, s:o, s:o, s:o}", "app", app, "addon", addon, "backups",
			    out, "schedule", sched, "last_verified",
			    last_verified ? json_string(last_verified) : json_null(), "window",
			    window ? window : json_null());
	json_decref(list);
	return 0;
}

enum miren_err schedules_set(struct daemon *d, const char *app, const char *addon,
			     const char *every, bool keep_given, long long keep, json_t **result,
			     struct miren_error *err)
{
	app_lock(d, app);
	struct app_rec rec;
	struct addon_rec a;
	memset(&a, 0, sizeof(a));
	enum miren_err rc = store_app_get(d->store, app, &rec, err);
	app_rec_release(&rec);
	if (!rc && (rc = store_addon_get(d->store, app, addon, &a, err)) != 0)
		miren_error_hint(err,
				 "a schedule is for an addon the app has: see 'miren addon list "
				 "-a %s'",
				 app);
	addon_rec_release(&a);
	struct schedule_rec cur;
	bool have = !rc && store_schedule_get(d->store, app, addon, &cur, NULL) == 0;
	if (rc)
		goto out;
	if (every && !strcmp(every, "off")) {
		if (keep_given) {
			rc = miren_error_set(err, MIREN_EINVAL,
					     "--keep cannot go with --every off (no schedule)");
			goto out;
		}
		if (have) {
			rc = store_schedule_delete(d->store, app, addon, err);
			if (!rc)
				log_info("app %s: backup schedule of addon %s removed", app, addon);
		}
		goto out;
	}
	int64_t secs = have ? cur.every_s : 0;
	if (every && (rc = duration_parse(every, "--every", &secs, err)) != 0)
		goto out;
	if (!secs) {
		rc = miren_error_set(err, MIREN_EINVAL,
				     "addon %s of app '%s' has no backup "
				     "schedule to change",
				     addon, app);
		miren_error_hint(err, "give --every, e.g. --every 6h --keep 28");
		goto out;
	}
	long long k = keep_given ? keep : have ? cur.keep : APP_BACKUPS_KEEP_DEFAULT;
	if ((rc = app_backups_check(secs, k, err)) != 0)
		goto out;
	struct schedule_rec s = { .app = (char *)app,
				  .addon = (char *)addon,
				  .every_s = secs,
				  .keep = (int)k,
				  .source = "cli" };
	rc = store_schedule_put(d->store, &s, err);
	if (!rc) {
		log_info("app %s: addon %s backed up every %llds, keeping %lld", app, addon,
			 (long long)secs, k);
		scheduler_kick(d->sched);
	}
out:
	if (have)
		schedule_rec_release(&cur);
	app_unlock(d, app);
	if (!rc)
		rc = schedules_backups(d, app, addon, result, err);
	return rc;
}

enum miren_err schedules_sync_config(struct daemon *d, const struct app_config *cfg,
				     struct miren_error *err)
{
	enum miren_err rc = 0;
	bool changed = false;
	for (size_t i = 0; i < cfg->n_addons && !rc; i++) {
		const struct app_addon *a = &cfg->addons[i];
		if (!a->backups_every_s)
			continue;
		struct schedule_rec cur;
		if (store_schedule_get(d->store, cfg->name, a->name, &cur, NULL) == 0) {
			bool same = cur.every_s == a->backups_every_s &&
				    cur.keep == a->backups_keep && !strcmp(cur.source, "config");
			schedule_rec_release(&cur);
			if (same)
				continue;
		}
		struct schedule_rec s = { .app = cfg->name,
					  .addon = a->name,
					  .every_s = a->backups_every_s,
					  .keep = a->backups_keep,
					  .source = "config" };
		rc = store_schedule_put(d->store, &s, err);
		changed = true;
	}
	struct schedule_rec *s;
	size_t n;
	if (!rc && store_schedule_list(d->store, cfg->name, &s, &n, NULL) == 0) {
		for (size_t i = 0; i < n && !rc; i++) {
			if (strcmp(s[i].source, "config"))
				continue;
			bool declared = false;
			for (size_t k = 0; k < cfg->n_addons; k++)
				declared |= !strcmp(cfg->addons[k].name, s[i].addon) &&
					    cfg->addons[k].backups_every_s;
			if (!declared) {
				rc = store_schedule_delete(d->store, s[i].app, s[i].addon, err);
				changed = true;
			}
		}
		schedule_recs_free(s, n);
	}
	if (changed)
		scheduler_kick(d->sched);
	return rc;
}

enum miren_err backups_final(struct daemon *d, const char *app, const char *addon,
			     const char *trigger, json_t **result, struct miren_error *err)
{
	*result = NULL;
	struct addon_rec a;
	enum miren_err rc = store_addon_get(d->store, app, addon, &a, err);
	if (rc)
		return rc;
	bool active = addon_status_parse(a.status) == ADDON_ACTIVE;
	if (!active)
		log_info("addon %s of app %s: no final backup (it is %s: it holds no data)", addon,
			 app, a.status);
	addon_rec_release(&a);
	if (!active)
		return 0;
	rc = backups_take(d, app, addon, trigger, (int64_t)time(NULL) + FINAL_BACKUP_KEEP_S, result,
			  err);
	if (rc) {
		explain_full(d, err);
		struct miren_error why;
		miren_error_clear(&why);
		if (err)
			why = *err;
		miren_error_set(err, rc,
				"cannot take the final backup of addon %s of app '%s', so it "
				"is not removed: %s",
				addon, app, why.message);
		if (*why.detail)
			miren_error_detail(err, "%s", why.detail);
		miren_error_hint(err,
				 "to remove it without a final backup: 'miren addon destroy %s -a "
				 "%s --no-final-backup'",
				 addon, app);
		return rc;
	}
	log_info("addon %s of app %s: final backup %s (kept %d days)", addon, app,
		 json_string_value(json_object_get(*result, "id")), FINAL_BACKUP_KEEP_S / 86400);
	return 0;
}
