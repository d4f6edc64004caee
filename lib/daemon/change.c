/*
 * Variant change in place (see change.h).  The phases, each recorded in
 * the change's row (store_change_*) before the next begins, with the
 * fault point after it:
 *
 *   plan        the row: the new instance's id and variant     change:planned
 *   provision   the new variant's provision steps, each saved
 *               (the row's step) under reconciler_hold          change:provisioned
 *   copying     the engine's copy_start (the app writes on)     change:copying
 *   paused      recorded before the pause begins                change:paused
 *   (copy)      copy_finish (which pauses), or writes_pause and
 *               a dump loaded into the new one                  change:copied
 *   switched    the app's instance and env take the new one,
 *               the row the old one (one transaction)           change:switched
 *   restart     the app's services restarted on the new env     change:restarted
 *   removed     the new one answered; the old one's removal
 *               steps, each saved; then the row goes            change:removed
 *
 * Undo (a failure before the switch, at once; a daemon killed before it,
 * at the next start): the copy cancelled (copy_cancel), writes let in
 * again (writes_pause off), the new instance's removal steps (after its
 * plan step runs again when a crash may have cut it before its record, so
 * that the names of what it made are known), the row deleted.  Each of
 * these is idempotent, so a daemon killed during the undo undoes again.
 * After the switch a crash is finished forward: the app restarted (its
 * services may have the old env), the old instance removed.
 */
#include "daemon/change.h"
#include "addon/addon.h"
#include "daemon/daemon_int.h"
#include "store/store.h"
#include "util/fault.h"
#include "util/io.h"
#include "util/log.h"
#include "util/secret.h"

#include <stdlib.h>
#include <string.h>

#define PHASE_PROVISIONING "provisioning"
#define PHASE_COPYING "copying"
#define PHASE_PAUSED "paused"
#define PHASE_SWITCHED "switched"

/* A retryable step failure (a server still starting) is tried this many
 * times, a second apart. */
#define STEP_TRIES 3

struct change {
	struct daemon *d;
	const struct addon_def *def;
	bool have_app; /* app_inst holds the app's active instance */
	struct addon_inst app_inst;
	struct change_rec ch; /* the row */
	bool have_other;
	struct addon_inst other; /* the instance the row holds */
};

static void change_release(struct change *c)
{
	if (c->have_app)
		addon_inst_release(c->def, &c->app_inst);
	if (c->have_other)
		addon_inst_release(c->def, &c->other);
	change_rec_release(&c->ch);
	memset(c, 0, sizeof(*c));
}

static void set_str(char **dst, const char *v)
{
	free(*dst);
	*dst = xstrdup(v ? v : "");
}

/* (Re)loads c->other from the row. */
static enum miren_err other_load(struct change *c, struct miren_error *err)
{
	if (c->have_other)
		addon_inst_release(c->def, &c->other);
	c->have_other = false;
	bool before = strcmp(c->ch.phase, PHASE_SWITCHED) != 0;
	struct addon_rec r = {
		.id = c->ch.id,
		.app = c->ch.app,
		.addon = c->ch.addon,
		.variant = c->ch.variant,
		.version = c->ch.version,
		.status = before ? "provisioning" : "deprovisioning",
		.step = c->ch.step,
		.state_json = c->ch.state_json,
		.source = "cli",
		.created_at = c->ch.created_at,
		.server = c->ch.server,
	};
	enum miren_err rc = addon_inst_load(c->def, &r, &c->other, err);
	c->have_other = rc == 0;
	return rc;
}

/* Records c->other's state and server, and the row's phase and step. */
static enum miren_err save(struct change *c, struct miren_error *err)
{
	char *state = c->def->state_json(c->other.state);
	free(c->ch.state_json);
	c->ch.state_json = state;
	set_str(&c->ch.server, c->other.rec.server);
	return store_change_update(c->d->store, &c->ch, err);
}

static enum miren_err set_phase(struct change *c, const char *phase, struct miren_error *err)
{
	set_str(&c->ch.phase, phase);
	return save(c, err);
}

/*
 * Runs steps[c->ch.step..n) on c->other, saving after each, the
 * reconciler held around each step and its record (so a shared server's
 * tenant count never misses the instance).
 */
static enum miren_err run_steps(struct change *c, const struct addon_step *steps, size_t n,
				const char *what, struct miren_error *err)
{
	struct daemon *d = c->d;
	while (c->ch.step < (int)n) {
		const struct addon_step *s = &steps[c->ch.step];
		enum miren_err rc = 0;
		for (int tries = 1;; tries++) {
			reconciler_hold(d->rec);
			rc = s->run(&d->actx, &c->other, err);
			if (!rc)
				c->ch.step++;
			/* Recorded also after a failure: the names the step made. */
			enum miren_err src = save(c, rc ? NULL : err);
			reconciler_release(d->rec);
			if (!rc)
				rc = src;
			if (!rc || !addon_err_retryable(rc) || tries >= STEP_TRIES ||
			    daemon_is_stopping(d))
				break;
			log_warn("app %s: %s %s, step %s failed (attempt %d of %d): %s", c->ch.app,
				 what, c->def->name, s->name, tries, STEP_TRIES, err->message);
			io_sleep_ms(1000);
		}
		if (rc)
			return rc;
	}
	return 0;
}

static enum miren_err provision_new(struct change *c, struct miren_error *err)
{
	size_t n;
	const struct addon_step *steps = c->def->provision_steps(c->ch.variant, &n);
	return run_steps(c, steps, n, "making the new instance of", err);
}

static enum miren_err remove_other(struct change *c, struct miren_error *err)
{
	size_t n;
	const struct addon_step *steps = c->def->deprovision_steps(c->ch.variant, &n);
	return run_steps(c, steps, n, "removing an instance of", err);
}

/* Makes err "cannot change addon X of app 'A' to V" (before the switch
 * adding that it stays as it was), what failed its detail, how its hint
 * (unless it has one). */
static void explain(struct change *c, const char *how, struct miren_error *err)
{
	struct miren_error why = *err;
	bool before = strcmp(c->ch.phase, PHASE_SWITCHED) != 0;
	miren_error_set(err, why.code ? why.code : MIREN_EINTERNAL,
			"cannot change addon %s of app '%s' to %s%s%s%s", c->def->name, c->ch.app,
			c->ch.to_variant, before ? ": it stays " : "",
			before ? c->ch.from_variant : "", before ? ", as it was" : "");
	if (*why.detail)
		miren_error_detail(err, "%.200s: %.300s", why.message, why.detail);
	else
		miren_error_detail(err, "%.500s", why.message);
	miren_error_hint(err, "%s", *why.hint ? why.hint : how);
}

/*
 * Before the switch: puts everything back as it was (see the file's
 * comment).  Returns 0 once the row is gone; a failure keeps the row for
 * the next start.
 */
static enum miren_err undo(struct change *c, struct miren_error *err)
{
	struct daemon *d = c->d;
	enum miren_err rc = 0;
	if (c->have_app && c->def->copy_cancel &&
	    (rc = c->def->copy_cancel(&d->actx, &c->app_inst, &c->other, c->ch.id, err)))
		return rc;
	if (c->have_app && (rc = c->def->writes_pause(&d->actx, &c->app_inst, false, err)))
		return rc;
	if (!strcmp(c->ch.phase, PHASE_PROVISIONING) && c->ch.step == 0) {
		/* The plan may have made records a crash kept from its save:
		 * running it again names them. */
		size_t n;
		const struct addon_step *steps = c->def->provision_steps(c->ch.variant, &n);
		struct miren_error ignored;
		reconciler_hold(d->rec);
		if (n > 0 && steps[0].run(&d->actx, &c->other, &ignored) == 0)
			save(c, NULL);
		reconciler_release(d->rec);
	}
	c->ch.step = 0; /* now counting the removal's steps */
	size_t n;
	const struct addon_step *steps = c->def->deprovision_steps(c->ch.variant, &n);
	if ((rc = run_steps(c, steps, n, "removing the new instance of", err)))
		return rc;
	if ((rc = store_change_delete(d->store, c->ch.addon_id, err)))
		return rc;
	log_info("app %s: the change of %s to %s was undone; the app stays on %s", c->ch.app,
		 c->def->name, c->ch.to_variant, c->ch.from_variant);
	return 0;
}

/* Undoes after a failure (err: that failure, kept; the undo's own is
 * logged). */
static void undo_after(struct change *c, const struct miren_error *why)
{
	struct miren_error e;
	miren_error_clear(&e);
	if (undo(c, &e) != 0)
		log_error("app %s: cannot undo the change of %s to %s after '%s' (retried at the "
			  "next start): %s%s%s",
			  c->ch.app, c->def->name, c->ch.to_variant, why->message, e.message,
			  *e.detail ? ": " : "", e.detail);
}

/* The old instance's dump into the new one (no copy_start). */
static enum miren_err dl_dump(void *user, int fd, struct miren_error *err)
{
	struct change *c = user;
	return c->def->dump(&c->d->actx, &c->app_inst, fd, err);
}

static enum miren_err dl_load(void *user, int fd, struct miren_error *err)
{
	struct change *c = user;
	return c->def->load(&c->d->actx, &c->other, fd, err);
}

/*
 * The switch: the app's instance and env take c->other, the row the app's
 * old instance.  Afterwards c->app_inst is the new one, c->other the old.
 */
static enum miren_err do_switch(struct change *c, struct miren_error *err)
{
	struct daemon *d = c->d;
	struct env_rec *vars = NULL;
	size_t n_vars = 0;
	enum miren_err rc = c->def->env(&d->actx, &c->other, &vars, &n_vars, err);
	if (rc)
		return rc;
	struct addon_rec now = c->app_inst.rec;
	now.variant = c->other.rec.variant;
	now.version = c->other.rec.version;
	now.state_json = c->def->state_json(c->other.state);
	now.server = c->other.rec.server;
	struct change_rec old = c->ch;
	old.phase = PHASE_SWITCHED;
	old.step = 0;
	old.variant = c->app_inst.rec.variant;
	old.version = c->app_inst.rec.version;
	old.state_json = c->def->state_json(c->app_inst.state);
	old.server = c->app_inst.rec.server;
	rc = store_change_switch(d->store, &now, &old, vars, n_vars, err);
	env_recs_free(vars, n_vars);
	if (!rc) {
		/* In memory as in the store: the row holds the old instance. */
		set_str(&c->ch.phase, PHASE_SWITCHED);
		c->ch.step = 0;
		set_str(&c->ch.variant, old.variant);
		set_str(&c->ch.version, old.version);
		set_str(&c->ch.state_json, old.state_json);
		set_str(&c->ch.server, old.server);
		struct addon_inst t = c->app_inst;
		c->app_inst = c->other;
		c->other = t;
		set_str(&c->app_inst.rec.status, "active");
		set_str(&c->other.rec.status, "deprovisioning");
		c->other.rec.step = 0;
	}
	free(now.state_json);
	free(old.state_json);
	return rc;
}

/* Up to the switch, from a fresh row.  *paused_ms: how long writes were
 * refused (0 before the pause). */
static enum miren_err forward(struct change *c, long long *paused_ms, struct miren_error *err)
{
	struct daemon *d = c->d;
	const struct addon_def *def = c->def;
	*paused_ms = 0;
	enum miren_err rc = provision_new(c, err);
	if (rc) {
		explain(c, "see the daemon's log (logs/server.log in its data directory)", err);
		return rc;
	}
	fault_point("change:provisioned");
	bool online = false;
	if (def->copy_start &&
	    (rc = def->copy_start(&d->actx, &c->app_inst, &c->other, c->ch.id, &online, err))) {
		explain(c, "run the command again once the cause is fixed", err);
		return rc;
	}
	c->ch.online = online;
	if ((rc = set_phase(c, PHASE_COPYING, err)))
		return rc;
	fault_point("change:copying");
	/* Recorded first: whatever happens from here on, an undo lets the
	 * app write again. */
	if ((rc = set_phase(c, PHASE_PAUSED, err)))
		return rc;
	fault_point("change:paused");
	int64_t t0 = io_mono_ms();
	if (online)
		rc = def->copy_finish(&d->actx, &c->app_inst, &c->other, c->ch.id, err);
	else if (!(rc = def->writes_pause(&d->actx, &c->app_inst, true, err)))
		rc = addon_pipe(dl_dump, c, dl_load, c, err);
	if (rc) {
		explain(c, "run the command again once the cause is fixed", err);
		return rc;
	}
	int64_t t1 = io_mono_ms();
	fault_point("change:copied");
	if ((rc = do_switch(c, err)))
		return rc;
	*paused_ms = io_mono_ms() - t0;
	log_info("app %s: %s: writes paused for %lld ms at most (the copy's end %lld ms, the "
		 "switch %lld ms)",
		 c->ch.app, def->name, *paused_ms, (long long)(t1 - t0),
		 (long long)(io_mono_ms() - t1));
	fault_point("change:switched");
	return 0;
}

/* After the switch: the app restarted unless it was, the new instance
 * answering, the old one removed, the row deleted.  Services that do not
 * restart do not keep the old instance (the data is on the new one): the
 * failure is returned after its removal. */
static enum miren_err finish(struct change *c, bool restart, bool *restarted,
			     struct miren_error *err)
{
	struct daemon *d = c->d;
	enum miren_err rc = 0, restart_rc = 0;
	struct miren_error restart_err;
	miren_error_clear(&restart_err);
	*restarted = false;
	struct app_rec arec;
	if (restart && store_app_get(d->store, c->ch.app, &arec, NULL) == 0) {
		app_rec_release(&arec);
		restart_rc = apps_restart_locked(d, c->ch.app, &restart_err);
		if (restart_rc) {
			struct miren_error why = restart_err;
			miren_error_set(&restart_err, restart_rc,
					"the services of app '%s' did not restart on %s %s; its "
					"data is there",
					c->ch.app, c->def->name, c->ch.to_variant);
			miren_error_detail(&restart_err, "%s", why.message);
			miren_error_hint(&restart_err, "fix the app, then 'miren app restart %s'",
					 c->ch.app);
		}
		/* A held start (another addon not active yet) restarts the app
		 * once it is: not now. */
		*restarted = restart_rc == 0 && !daemon_is_held(d, c->ch.app);
	}
	fault_point("change:restarted");
	/* The new instance answers (with the tenant's data) before the old
	 * one goes. */
	if (c->have_app && c->def->info) {
		struct addon_info info;
		if ((rc = c->def->info(&d->actx, &c->app_inst, &info, err))) {
			explain(c, "the old instance is kept; the next daemon start tries again",
				err);
			return rc;
		}
	}
	/* The copy's leftovers (a subscription with nothing left to apply)
	 * go before the server they reach. */
	if (c->have_app && c->def->copy_cancel &&
	    (rc = c->def->copy_cancel(&d->actx, &c->other, &c->app_inst, c->ch.id, err))) {
		explain(c,
			"the app runs on the new variant; the old instance's removal is "
			"tried again at the next daemon start",
			err);
		return rc;
	}
	if ((rc = remove_other(c, err))) {
		explain(c,
			"the app runs on the new variant; the old instance's removal is "
			"tried again at the next daemon start",
			err);
		return rc;
	}
	fault_point("change:removed");
	if ((rc = store_change_delete(d->store, c->ch.addon_id, err)))
		return rc;
	log_info("app %s: addon %s changed from %s to %s; the old instance is removed", c->ch.app,
		 c->def->name, c->ch.from_variant, c->ch.to_variant);
	if (restart_rc)
		*err = restart_err;
	return restart_rc;
}

/* Loads the change of the app's instance id (whose record is rec, NULL
 * when it is gone) into c. */
static enum miren_err change_load(struct daemon *d, const struct addon_rec *rec,
				  const char *addon_id, struct change *c, struct miren_error *err)
{
	memset(c, 0, sizeof(*c));
	c->d = d;
	enum miren_err rc = store_change_get(d->store, addon_id, &c->ch, err);
	if (rc)
		return rc;
	c->def = addon_find(c->ch.addon);
	if (!c->def)
		return miren_error_set(err, MIREN_EINTERNAL, "addon '%s' is not in this build",
				       c->ch.addon);
	if (rec && !strcmp(rec->status, "active")) {
		if ((rc = addon_inst_load(c->def, rec, &c->app_inst, err)))
			return rc;
		c->have_app = true;
	}
	return other_load(c, err);
}

/* Undoes or finishes a change left in the store (app locked). */
static enum miren_err resume(struct daemon *d, const struct addon_rec *rec, const char *addon_id,
			     struct miren_error *err)
{
	struct change c;
	enum miren_err rc = change_load(d, rec, addon_id, &c, err);
	if (!rc) {
		bool restarted;
		if (!strcmp(c.ch.phase, PHASE_SWITCHED))
			rc = finish(&c, true, &restarted, err);
		else
			rc = undo(&c, err);
	}
	change_release(&c);
	return rc;
}

bool changes_supported(const char *addon)
{
	const struct addon_def *def = addon_find(addon);
	return def && def->writes_pause && def->dump && def->load && def->env;
}

enum miren_err changes_unsupported(const struct addon_def *def, const char *app,
				   struct miren_error *err)
{
	addon_unsupported(def, "changing the variant in place", err);
	miren_error_hint(err,
			 "move the data by hand: 'miren addon backup %s -a %s', 'miren addon "
			 "destroy %s -a %s', deploy with the new variant in app.toml (it recreates "
			 "the addon), then 'miren addon restore %s -a %s --backup ID'",
			 def->name, app, def->name, app, def->name, app);
	return MIREN_EINVAL;
}

/* The checks before anything changes: the app's active instance of addon
 * in *rec (release it) and the engine in *def. */
static enum miren_err check(struct daemon *d, const char *app, const char *addon,
			    const char *variant, struct addon_rec *rec,
			    const struct addon_def **def, struct miren_error *err)
{
	struct app_rec arec;
	enum miren_err rc = store_app_get(d->store, app, &arec, err);
	if (rc)
		return rc;
	app_rec_release(&arec);
	rc = store_addon_get(d->store, app, addon, rec, NULL);
	if (rc == MIREN_ENOTFOUND) {
		miren_error_set(err, MIREN_ENOTFOUND, "app '%s' has no addon '%s'", app, addon);
		miren_error_hint(err, "see its addons with 'miren addon list -a %s'", app);
		return rc;
	}
	if (rc)
		return miren_error_set(err, rc, "cannot read addon '%s' of app '%s'", addon, app);
	const char *v;
	char version[16];
	if ((rc = addon_resolve(rec->addon, variant, rec->version, def, &v, version, err)))
		return rc;
	if (!changes_supported(rec->addon))
		return changes_unsupported(*def, app, err);
	if (strcmp(rec->status, "active") != 0) {
		rc = miren_error_set(err, MIREN_ECONFLICT,
				     "addon %s of app '%s' is %s, so its variant cannot be changed",
				     addon, app, rec->status);
		miren_error_hint(err, "wait until 'miren addon list -a %s' shows it active", app);
		return rc;
	}
	if (!strcmp(rec->variant, v)) {
		rc = miren_error_set(err, MIREN_ECONFLICT, "addon %s of app '%s' is '%s' already",
				     addon, app, v);
		miren_error_hint(err,
				 "nothing to change; 'miren addon variants %s' lists the others",
				 addon);
		return rc;
	}
	const struct addon_def *e = *def;
	struct addon_inst inst;
	if (e->rotate_phase && addon_inst_load(e, rec, &inst, NULL) == 0) {
		bool moving = e->rotate_phase(inst.state) != ADDON_ROTATE_NONE;
		addon_inst_release(e, &inst);
		if (moving) {
			rc = miren_error_set(err, MIREN_ECONFLICT,
					     "addon %s of app '%s' is in the middle of a "
					     "credential "
					     "rotation",
					     addon, app);
			miren_error_hint(err, "finish it with 'miren addon rotate %s -a %s' first",
					 addon, app);
			return rc;
		}
	}
	return 0;
}

enum miren_err changes_change_locked(struct daemon *d, const char *app, const char *addon,
				     const char *variant, bool *switched, json_t **result,
				     struct miren_error *err)
{
	*switched = false;
	*result = NULL;
	struct addon_rec rec = { 0 };
	const struct addon_def *def = NULL;
	enum miren_err rc = store_addon_get(d->store, app, addon, &rec, NULL);
	if (!rc) {
		/* A change a failure left: undone or finished first. */
		struct change_rec left;
		if (store_change_get(d->store, rec.id, &left, NULL) == 0) {
			change_rec_release(&left);
			rc = resume(d, &rec, rec.id, err);
			if (rc)
				goto out;
		}
	}
	addon_rec_release(&rec);
	if ((rc = check(d, app, addon, variant, &rec, &def, err)))
		goto out;
	int64_t t0 = io_mono_ms();
	char *id = secret_hex(5);
	struct change c = { .d = d, .def = def };
	c.ch = (struct change_rec){ .addon_id = xstrdup(rec.id),
				    .app = xstrdup(app),
				    .addon = xstrdup(def->name),
				    .phase = xstrdup(PHASE_PROVISIONING),
				    .id = id,
				    .variant = xstrdup(variant),
				    .version = xstrdup(rec.version),
				    .from_variant = xstrdup(rec.variant),
				    .to_variant = xstrdup(variant),
				    .state_json = xstrdup("{}"),
				    .server = xstrdup("") };
	if ((rc = addon_inst_load(def, &rec, &c.app_inst, err))) {
		change_release(&c);
		goto out;
	}
	c.have_app = true;
	if ((rc = store_change_add(d->store, &c.ch, err)) || (rc = other_load(&c, err))) {
		change_release(&c);
		goto out;
	}
	log_info("app %s: changing addon %s from %s to %s", app, def->name, rec.variant, variant);
	fault_point("change:planned");
	long long paused_ms = 0;
	rc = forward(&c, &paused_ms, err);
	if (rc && strcmp(c.ch.phase, PHASE_SWITCHED) != 0) {
		undo_after(&c, err);
	} else if (!rc) {
		*switched = true;
		*result = json_pack("{s:s, s:s, s:s, s:s, s:s, s:I, s:b, s:I}", "app", app, "addon",
				    def->name, "from", rec.variant, "to", variant, "method",
				    c.ch.online ? "replication" : "dump", "writes_paused_ms",
				    (json_int_t)paused_ms, "restarted", false, "duration_ms",
				    (json_int_t)(io_mono_ms() - t0));
		log_info("app %s: addon %s switched to %s (writes refused for %lld ms)", app,
			 def->name, variant, paused_ms);
	}
	change_release(&c);
out:
	addon_rec_release(&rec);
	return rc;
}

enum miren_err changes_finish_locked(struct daemon *d, const char *app, const char *addon,
				     bool restarted, struct miren_error *err)
{
	struct addon_rec rec;
	enum miren_err rc = store_addon_get(d->store, app, addon, &rec, err);
	if (rc)
		return rc;
	struct change c;
	rc = change_load(d, &rec, rec.id, &c, err);
	if (!rc && strcmp(c.ch.phase, PHASE_SWITCHED) != 0)
		rc = miren_error_set(err, MIREN_EINTERNAL, "the change of %s is not switched",
				     addon);
	bool r;
	if (!rc)
		rc = finish(&c, !restarted, &r, err);
	change_release(&c);
	addon_rec_release(&rec);
	return rc;
}

enum miren_err changes_change(struct daemon *d, const char *app, const char *addon,
			      const char *variant, json_t **result, struct miren_error *err)
{
	app_lock(d, app);
	int64_t t0 = io_mono_ms();
	bool switched = false;
	enum miren_err rc = changes_change_locked(d, app, addon, variant, &switched, result, err);
	if (!rc && switched) {
		struct addon_rec rec;
		struct change c;
		bool restarted = false;
		rc = store_addon_get(d->store, app, addon, &rec, err);
		if (!rc) {
			rc = change_load(d, &rec, rec.id, &c, err);
			if (!rc)
				rc = finish(&c, true, &restarted, err);
			change_release(&c);
			addon_rec_release(&rec);
		}
		json_object_set_new(*result, "restarted", json_boolean(restarted));
		json_object_set_new(*result, "duration_ms", json_integer(io_mono_ms() - t0));
		if (rc) {
			json_decref(*result);
			*result = NULL;
		}
	}
	app_unlock(d, app);
	return rc;
}

void changes_recover(struct daemon *d, bool wait)
{
	struct change_rec *chs = NULL;
	size_t n = 0;
	if (store_change_list(d->store, &chs, &n, NULL) != 0)
		return;
	for (size_t i = 0; i < n && !daemon_is_stopping(d); i++) {
		if (!wait && !app_trylock(d, chs[i].app))
			continue;
		if (wait)
			app_lock(d, chs[i].app);
		struct addon_rec *recs = NULL, *rec = NULL;
		size_t n_recs = 0;
		store_addon_list(d->store, chs[i].app, &recs, &n_recs, NULL);
		for (size_t k = 0; k < n_recs; k++)
			if (!strcmp(recs[k].id, chs[i].addon_id))
				rec = &recs[k];
		/* Their servers may still be starting. */
		const struct addon_def *def = addon_find(chs[i].addon);
		const char *servers[] = { rec ? rec->server : "", chs[i].server };
		for (size_t k = 0; def && def->ready && k < 2; k++) {
			struct server_rec srv;
			struct miren_error e;
			if (*servers[k] &&
			    store_server_get(d->store, servers[k], &srv, NULL) == 0) {
				def->ready(&d->actx, &srv, 30000, &e);
				server_rec_release(&srv);
			}
		}
		struct miren_error err;
		miren_error_clear(&err);
		struct change_rec again;
		/* (a change running meanwhile may have ended it) */
		if (store_change_get(d->store, chs[i].addon_id, &again, NULL) == 0) {
			change_rec_release(&again);
			log_info("app %s: %s the change of %s to %s a stopped daemon left",
				 chs[i].app,
				 strcmp(chs[i].phase, PHASE_SWITCHED) ? "undoing" : "finishing",
				 chs[i].addon, chs[i].to_variant);
			if (resume(d, rec, chs[i].addon_id, &err) != 0)
				log_error("app %s: the change of %s to %s: %s%s%s", chs[i].app,
					  chs[i].addon, chs[i].to_variant, err.message,
					  *err.detail ? ": " : "", err.detail);
		}
		addon_recs_free(recs, n_recs);
		app_unlock(d, chs[i].app);
	}
	change_recs_free(chs, n);
}
