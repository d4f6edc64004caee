/*
 * Forks (see fork.h), built from what addons, backups and point-in-time
 * recovery already have:
 *
 *   check     everything refusable is refused here, nothing changed: the
 *             apps, the addon (active), the variant, the target has no
 *             such addon, the engine can dump and load, and for --at the
 *             engine's pitr_source (the instant inside the window: the
 *             base backup and recovery options are chosen now)
 *   record    the target's instance is added (pending, source "cli") with
 *             its source in the same row (addons.fork_json), under the
 *             target's lock                                  fork:recorded
 *   provision the reconciler runs the engine's steps as for any new
 *             instance (a variant of one's choosing, its own server or
 *             tenant, its own credentials)
 *   fill      one more recorded step (forks_fill, on the reconciler's
 *             thread): the source tenant's logical dump (the live one,
 *             or one read out of a scratch server recovered to the
 *             instant) into tmp/                             fork:dumped
 *             then the engine's load into the new tenant     fork:filled
 *   activate  env and status in one transaction; the target app is
 *             restarted on it (the reconciler's callback) as for any
 *             addon that became active
 *
 * So the target's services never see the new addon empty: it is not
 * active, and its env not written, before its data is in.  A daemon
 * killed anywhere after the record finishes the fork at start (the
 * reconciler resumes the step it was in; the fill is run again from the
 * start, and a load replaces); one killed before it leaves nothing.  A
 * fork whose fill fails (the source addon gone, the base backup pruned,
 * a load refused) goes to error like any provisioning (its server, disk
 * or tenant released) and is then removed: by the `addon fork` waiting
 * for it, which reports the cause, or, when none waits (the daemon was
 * restarted meanwhile), by forks_settle from the reconciler's callback.
 * Either way the target is left as it was.
 *
 * "Now" is when the fill dumps the source (a few seconds after the
 * command: the new instance's steps run first); a fill run again after a
 * crash dumps it again.  A fork from an instant always gives that
 * instant's data.
 */
#include "daemon/fork.h"
#include "addon/server.h"
#include "daemon/addons.h"
#include "daemon/backups.h"
#include "daemon/daemon_int.h"
#include "store/store.h"
#include "util/fault.h"
#include "util/fs.h"
#include "util/io.h"
#include "util/log.h"
#include "util/when.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* How long `addon fork` waits for the new instance to be made and
 * filled before it answers that the fork goes on without it. */
#define FORK_WAIT_MS (30 * 60 * 1000)

/* An `addon fork` waiting for its instance (the daemon's fork_waiters,
 * under changes_mu): forks_settle leaves a failed one to it. */
struct fork_waiter {
	char *id;
	struct fork_waiter *next;
};

static void waiter_add(struct daemon *d, const char *id)
{
	struct fork_waiter *w = xcalloc(1, sizeof(*w));
	w->id = xstrdup(id);
	pthread_mutex_lock(&d->changes_mu);
	w->next = d->fork_waiters;
	d->fork_waiters = w;
	pthread_mutex_unlock(&d->changes_mu);
}

static void waiter_remove(struct daemon *d, const char *id)
{
	pthread_mutex_lock(&d->changes_mu);
	for (struct fork_waiter **pp = &d->fork_waiters; *pp; pp = &(*pp)->next) {
		struct fork_waiter *w = *pp;
		if (!strcmp(w->id, id)) {
			*pp = w->next;
			free(w->id);
			free(w);
			break;
		}
	}
	pthread_mutex_unlock(&d->changes_mu);
}

static bool waited_for(struct daemon *d, const char *id)
{
	pthread_mutex_lock(&d->changes_mu);
	struct fork_waiter *w = d->fork_waiters;
	while (w && strcmp(w->id, id))
		w = w->next;
	pthread_mutex_unlock(&d->changes_mu);
	return w != NULL;
}

/* --- checking ------------------------------------------------------------ */

/* The target app: it must exist (as on Heroku, a fork goes to an app
 * that is there) and not have the addon. */
static enum miren_err check_target(struct daemon *d, const char *to, const char *addon,
				   struct miren_error *err)
{
	struct app_rec arec;
	enum miren_err rc = store_app_get(d->store, to, &arec, err);
	if (rc == MIREN_ENOTFOUND) {
		miren_error_hint(err,
				 "a fork goes to an app that exists: deploy '%s' first (or pick "
				 "another with --to; 'miren app list' shows them)",
				 to);
		return rc;
	}
	if (rc)
		return rc;
	app_rec_release(&arec);
	struct addon_rec cur;
	if (store_addon_get(d->store, to, addon, &cur, NULL) != 0)
		return 0;
	miren_error_set(err, MIREN_EEXISTS, "app '%s' already has addon %s (%s, %s)", to, addon,
			cur.variant, cur.status);
	if (addon_status_parse(cur.status) == ADDON_DEPROVISIONING)
		miren_error_hint(err,
				 "it is being removed; fork again when 'miren addon list -a %s' no "
				 "longer shows it",
				 to);
	else
		miren_error_hint(err,
				 "a fork makes the addon: destroy the one it has first with 'miren "
				 "addon destroy %s -a %s' (its data goes), then fork again",
				 addon, to);
	addon_rec_release(&cur);
	return MIREN_EEXISTS;
}

/* What the engine needs for a fork from now (live dump) or from an
 * instant (a scratch server recovered there). */
static enum miren_err check_engine(const struct addon_def *def, bool at, struct miren_error *err)
{
	if (!def->load || (!at && !def->dump))
		return addon_unsupported(def, "forking", err);
	if (at && (!def->pitr_source || !def->tenant_facts || !def->scratch_dump)) {
		addon_unsupported(def, "forking from a point in time (--at)", err);
		miren_error_hint(err, "leave out --at to fork its data as it is now");
		return MIREN_EINVAL;
	}
	return 0;
}

/*
 * For --at: the instant, and from the engine where its data comes from
 * (a base backup in the store and the options that recover a scratch
 * server on it to the instant), added to the fork's source f.  Refused
 * (MIREN_EINVAL, the engine names the window) outside the window.
 */
static enum miren_err plan_instant(struct daemon *d, struct addon_target *src, const char *at,
				   json_t *f, struct miren_error *err)
{
	int64_t target;
	enum miren_err rc = when_parse(at, time(NULL), &target, err);
	if (rc)
		return rc;
	if (!d->bstore) {
		miren_error_set(err, MIREN_EUNAVAIL, "the backup store is not open");
		miren_error_hint(err, "the server log (DATA/logs/server.log) says why");
		return MIREN_EUNAVAIL;
	}
	char *id = NULL;
	json_t *opts = NULL;
	rc = src->def->pitr_source(&d->actx, d->bstore, &src->inst, target, &id, &opts, err);
	if (rc)
		return rc;
	json_object_set_new(f, "at", json_integer((json_int_t)target));
	json_object_set_new(f, "backup", json_string(id));
	json_object_set_new(f, "opts", opts);
	/* The tenant as it is named on the server the base backup is of. */
	json_t *tenant = src->def->tenant_facts(&d->actx, &src->inst);
	json_object_set_new(f, "tenant", tenant ? tenant : json_object());
	free(id);
	return 0;
}

/* --- waiting -------------------------------------------------------------- */

/*
 * Waits (to's lock held on entry and on return, released meanwhile) until
 * to's instance id is active.  A failed one is removed and its cause
 * returned (MIREN_EIO); one removed meanwhile is MIREN_ECONFLICT.
 */
static enum miren_err await_fork(struct daemon *d, const char *to, const char *addon,
				 const char *id, const char *from, struct addon_rec *out,
				 struct miren_error *err)
{
	int64_t deadline = io_mono_ms() + FORK_WAIT_MS;
	for (;;) {
		uint64_t seen = daemon_changes(d);
		struct addon_rec cur;
		enum miren_err rc = store_addon_get(d->store, to, addon, &cur, NULL);
		if (rc || strcmp(cur.id, id) != 0 ||
		    addon_status_parse(cur.status) == ADDON_DEPROVISIONING) {
			if (!rc)
				addon_rec_release(&cur);
			miren_error_set(err, MIREN_ECONFLICT,
					"the fork of addon %s into app '%s' was removed before it "
					"was done",
					addon, to);
			miren_error_hint(err, "fork again when nothing else changes '%s'", to);
			return MIREN_ECONFLICT;
		}
		enum addon_status st = addon_status_parse(cur.status);
		if (st == ADDON_ACTIVE) {
			*out = cur;
			return 0;
		}
		if (st == ADDON_ERROR) {
			miren_error_set(err, MIREN_EIO,
					"cannot fork addon %s of app '%s' into app '%s': %s; app "
					"'%s' is as it was",
					addon, from, to, cur.message, to);
			if (*cur.detail)
				miren_error_detail(err, "%s", cur.detail);
			if (*cur.hint && !strstr(cur.hint, "addon destroy"))
				miren_error_hint(err, "%s", cur.hint);
			addon_rec_release(&cur);
			struct miren_error derr;
			miren_error_clear(&derr);
			if (addons_destroy_locked(d, to, addon, NULL, &derr) != 0)
				log_error("app %s: cannot remove the failed fork of %s: %s", to,
					  addon, derr.message);
			return MIREN_EIO;
		}
		addon_rec_release(&cur);
		if (daemon_wait_changes(d, to, seen, deadline) != 0) {
			if (daemon_is_stopping(d))
				return daemon_stopping_error(err);
			miren_error_set(err, MIREN_EUNAVAIL,
					"the fork of addon %s into app '%s' is not done yet", addon,
					to);
			miren_error_hint(err,
					 "it goes on; 'miren addon list -a %s' shows when it is "
					 "active",
					 to);
			return MIREN_EUNAVAIL;
		}
	}
}

/* --- the command ---------------------------------------------------------- */

enum miren_err forks_fork(struct daemon *d, const char *app, const char *addon, const char *to,
			  const char *variant, const char *at, json_t **result,
			  struct miren_error *err)
{
	*result = NULL;
	struct addon_target src;
	memset(&src, 0, sizeof(src));
	json_t *f = NULL;
	char *text = NULL;
	struct addon_rec made = { 0 }, done = { 0 };
	bool locked = false, waiting = false;
	enum miren_err rc;
	if (!to || !*to) {
		rc = miren_error_set(err, MIREN_EINVAL, "which app gets the copy? give --to OTHER");
		goto out;
	}
	if (!strcmp(app, to)) {
		rc = miren_error_set(err, MIREN_EINVAL,
				     "app '%s' cannot be forked into itself; nothing was changed",
				     app);
		miren_error_hint(err,
				 "give another app with --to; to take an app's own data back in "
				 "time use 'miren addon restore %s -a %s --to TIME'",
				 addon, app);
		goto out;
	}
	if ((rc = addon_target_load(d, app, addon, "forked", &src, err)))
		goto out;
	const struct addon_def *def;
	const char *v;
	char ver[16];
	if ((rc = addon_resolve(src.def->name, variant ? variant : src.rec.variant, src.rec.version,
				&def, &v, ver, err)) ||
	    (rc = check_engine(def, at != NULL, err)) || (rc = check_target(d, to, def->name, err)))
		goto out;
	f = json_pack("{s:s, s:s, s:s, s:I}", "app", app, "addon_id", src.rec.id, "variant",
		      src.rec.variant, "requested_at", (json_int_t)time(NULL));
	if (at && (rc = plan_instant(d, &src, at, f, err)))
		goto out;
	text = json_dumps(f, JSON_COMPACT);

	app_lock(d, to);
	locked = true;
	/* Again under the lock: the target may have changed meanwhile. */
	if ((rc = check_target(d, to, def->name, err)) ||
	    (rc = addons_create_locked(d, to, def->name, v, ver,
				       addon_source_name(ADDON_SOURCE_CLI), text, &made, err)))
		goto out;
	/* Registered before the lock goes: the reconciler's callback, which
	 * would remove a failed fork nobody waits for, needs it. */
	waiter_add(d, made.id);
	waiting = true;
	log_info("app %s: forking addon %s of app %s into it (%s%s%s)", to, def->name, app, v,
		 at ? ", as at " : ", from now", at ? at : "");
	fault_point("fork:recorded");
	if ((rc = await_fork(d, to, def->name, made.id, app, &done, err)))
		goto out;
	json_t *tt = json_object_get(json_object_get(f, "opts"), "recovery_target_time");
	*result = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:O, s:s}", "app", to, "addon",
			    def->name, "variant", done.variant, "id", done.id, "from_app", app,
			    "from_variant", src.rec.variant, "at", tt ? tt : json_null(), "status",
			    done.status);
	log_info("app %s: addon %s forked from app %s", to, def->name, app);
out:
	if (waiting)
		waiter_remove(d, made.id);
	if (locked)
		app_unlock(d, to);
	addon_rec_release(&made);
	addon_rec_release(&done);
	free(text);
	json_decref(f);
	addon_target_release(&src);
	return rc;
}

/* --- the fill (the reconciler's thread) ------------------------------------ */

/* Dumps the fork's source (f) into path. */
static enum miren_err dump_source(struct daemon *d, const struct addon_def *def, const json_t *f,
				  const char *path, struct miren_error *err)
{
	const char *backup = addon_jstr(f, "backup");
	if (*backup)
		return backups_scratch_dump(d, def, backup, json_object_get(f, "opts"),
					    json_object_get(f, "tenant"), path, err);
	const char *from = addon_jstr(f, "app");
	struct addon_target src;
	enum miren_err rc = addon_target_load(d, from, def->name, "forked", &src, err);
	if (!rc && strcmp(src.rec.id, addon_jstr(f, "addon_id")) != 0) {
		rc = miren_error_set(err, MIREN_EINVAL,
				     "addon %s of app '%s' was replaced by another since the fork "
				     "began",
				     def->name, from);
		miren_error_hint(err, "fork again to copy the data it has now");
	}
	if (!rc)
		rc = backups_dump_file(d, def, &src.inst, path, err);
	addon_target_release(&src);
	return rc;
}

enum miren_err forks_fill(void *user, const struct addon_def *def, struct addon_inst *inst,
			  struct miren_error *err)
{
	struct daemon *d = user;
	json_t *f = json_loads(inst->rec.fork, 0, NULL);
	if (!json_is_object(f)) {
		json_decref(f);
		return miren_error_set(err, MIREN_EINVAL,
				       "the fork's record of addon %s of app '%s' cannot be read",
				       def->name, inst->rec.app);
	}
	if (!def->load) {
		json_decref(f);
		return addon_unsupported(def, "forking", err);
	}
	char *tmp = data_paths_tmp_unique(d->paths, "fork");
	char *path = fs_join(tmp, "tenant.dump");
	enum miren_err rc = 0;
	if (mkdir(tmp, 0700) != 0 ||
	    (d->run_uid != (uid_t)-1 && chown(tmp, d->run_uid, d->run_gid) != 0)) {
		rc = miren_error_set(err, MIREN_EIO, "cannot make '%s': %s", tmp,
				     io_strerror(errno));
		goto out;
	}
	rc = dump_source(d, def, f, path, err);
	if (rc) {
		char why[sizeof(err->message)];
		snprintf(why, sizeof(why), "%s", err->message);
		miren_error_set(err, rc, "the data of app '%s' could not be read: %s",
				addon_jstr(f, "app"), why);
		goto out;
	}
	fault_point("fork:dumped");
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		rc = miren_error_set(err, MIREN_EIO, "cannot read the dump '%s': %s", path,
				     io_strerror(errno));
		goto out;
	}
	rc = def->load(&d->actx, inst, fd, err);
	close(fd);
	if (rc) {
		char why[sizeof(err->message)];
		snprintf(why, sizeof(why), "%s", err->message);
		miren_error_set(err, rc, "the data of app '%s' could not be loaded: %s",
				addon_jstr(f, "app"), why);
		goto out;
	}
	log_info("app %s: addon %s filled with the data of app %s", inst->rec.app, def->name,
		 addon_jstr(f, "app"));
out:
	fs_remove_tree(tmp);
	free(path);
	free(tmp);
	json_decref(f);
	return rc;
}

/* --- failed forks ---------------------------------------------------------- */

void forks_settle(struct daemon *d, const char *app)
{
	struct addon_rec *recs = NULL;
	size_t n = 0;
	if (store_addon_list(d->store, app, &recs, &n, NULL) != 0)
		return;
	for (size_t i = 0; i < n; i++) {
		if (!*recs[i].fork || addon_status_parse(recs[i].status) != ADDON_ERROR ||
		    waited_for(d, recs[i].id))
			continue;
		struct miren_error err;
		miren_error_clear(&err);
		log_error("app %s: the fork of addon %s failed (%s): removing it", recs[i].app,
			  recs[i].addon, recs[i].message);
		if (addons_destroy_locked(d, recs[i].app, recs[i].addon, NULL, &err) != 0)
			log_error("app %s: cannot remove the failed fork of %s: %s", recs[i].app,
				  recs[i].addon, err.message);
	}
	addon_recs_free(recs, n);
}

void forks_recover(struct daemon *d)
{
	struct addon_rec *recs = NULL;
	size_t n = 0;
	if (store_addon_list(d->store, NULL, &recs, &n, NULL) != 0)
		return;
	for (size_t i = 0; i < n; i++) {
		if (!*recs[i].fork || addon_status_parse(recs[i].status) != ADDON_ERROR)
			continue;
		app_lock(d, recs[i].app);
		forks_settle(d, recs[i].app);
		app_unlock(d, recs[i].app);
	}
	addon_recs_free(recs, n);
}
