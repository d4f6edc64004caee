/*
 * Credential rotation (see rotate.h).  The steps, each recorded in the
 * store before the next begins (the engine's state says which phase it is
 * in: addon_def.rotate_phase):
 *
 *   plan      the engine chooses new credentials (state only)      rotate:planned
 *   issue     they work beside the old ones; the state and the
 *             app's env switched in one transaction                rotate:switched
 *   restart   the app's services restarted on the new env          rotate:restarted
 *   revoke    the old credentials stop working                     rotate:revoked
 *
 * A daemon killed anywhere leaves a recorded phase: rotations_recover
 * (at start) or the next `addon rotate` runs the rest, every hook being
 * idempotent; a rotation planned but never issued is issued then (the
 * planned password was recorded before the server saw it, so nothing is
 * left working that the store does not know).  After a crash past the
 * switch the app is restarted again before the revocation: its services
 * may still be the ones started with the old env.
 */
#include "daemon/rotate.h"
#include "addon/addon.h"
#include "app/config.h"
#include "daemon/apps.h"
#include "daemon/daemon_int.h"
#include "store/store.h"
#include "util/fault.h"
#include "util/log.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Records inst's state (with its env when with_env, in one transaction). */
static enum miren_err save(struct daemon *d, const struct addon_def *def, struct addon_inst *inst,
			   bool with_env, struct miren_error *err)
{
	char *state = def->state_json(inst->state);
	free(inst->rec.state_json);
	inst->rec.state_json = state;
	if (!with_env)
		return store_addon_update(d->store, &inst->rec, inst->rec.status, inst->rec.step,
					  err);
	struct env_rec *vars = NULL;
	size_t n = 0;
	enum miren_err rc = def->env(&d->actx, inst, &vars, &n, err);
	if (!rc)
		rc = store_addon_activate(d->store, &inst->rec, inst->rec.status, inst->rec.step,
					  vars, n, err);
	env_recs_free(vars, n);
	return rc;
}

/* Runs the phases from the recorded one to the end, under the app's lock. */
static enum miren_err finish(struct daemon *d, const struct addon_def *def, struct addon_inst *inst,
			     bool *restarted, struct miren_error *err)
{
	const char *app = inst->rec.app;
	enum miren_err rc = 0;
	*restarted = false;
	if (def->rotate_phase(inst->state) == ADDON_ROTATE_PLANNED) {
		if ((rc = def->rotate_issue(&d->actx, inst, err)) ||
		    (rc = save(d, def, inst, true, err)))
			return rc;
		fault_point("rotate:switched");
	}
	if (def->rotate_phase(inst->state) != ADDON_ROTATE_SWITCHED)
		return 0;
	rc = apps_restart_locked(d, app, err);
	if (rc) {
		char why[sizeof(err->message)];
		snprintf(why, sizeof(why), "%s", err->message);
		miren_error_set(err, rc,
				"the services of app '%s' did not restart on the new credentials "
				"of %s; the old ones still work too",
				app, def->name);
		miren_error_detail(err, "%s", why);
		miren_error_hint(err,
				 "fix the app, then run 'miren addon rotate %s -a %s' again "
				 "to finish the rotation",
				 def->name, app);
		return rc;
	}
	*restarted = true;
	fault_point("rotate:restarted");
	if ((rc = def->rotate_revoke(&d->actx, inst, err)) || (rc = save(d, def, inst, false, err)))
		return rc;
	fault_point("rotate:revoked");
	return 0;
}

static bool can_rotate(const struct addon_def *def)
{
	return def->rotate_plan && def->rotate_phase && def->rotate_issue && def->rotate_revoke;
}

enum miren_err rotations_rotate(struct daemon *d, const char *app, const char *addon,
				const char *credential, json_t **result, struct miren_error *err)
{
	*result = NULL;
	if (!credential)
		credential = "user";
	struct addon_rec rec = { 0 };
	struct addon_inst inst;
	bool loaded = false, restarted = false;
	const struct addon_def *def = NULL;
	app_lock(d, app);
	struct app_rec arec;
	enum miren_err rc = store_app_get(d->store, app, &arec, err);
	if (rc)
		goto out;
	app_rec_release(&arec);
	rc = store_addon_get(d->store, app, addon, &rec, NULL);
	if (rc == MIREN_ENOTFOUND) {
		miren_error_set(err, MIREN_ENOTFOUND, "app '%s' has no addon '%s'", app, addon);
		miren_error_hint(err, "see its addons with 'miren addon list -a %s'", app);
		goto out;
	}
	if (rc) {
		miren_error_set(err, rc, "cannot read addon '%s' of app '%s'", addon, app);
		goto out;
	}
	if (strcmp(rec.status, "active") != 0) {
		rc = miren_error_set(err, MIREN_ECONFLICT,
				     "addon %s of app '%s' is %s, so its credentials cannot be "
				     "rotated",
				     addon, app, rec.status);
		miren_error_hint(err, "wait until 'miren addon list -a %s' shows it active", app);
		goto out;
	}
	def = addon_find(rec.addon);
	if (!def) {
		rc = miren_error_set(err, MIREN_EINTERNAL, "addon '%s' is not in this build",
				     rec.addon);
		goto out;
	}
	if (!can_rotate(def)) {
		rc = addon_unsupported(def, "rotating credentials without a failed connection",
				       err);
		goto out;
	}
	if ((rc = addon_inst_load(def, &rec, &inst, err)))
		goto out;
	loaded = true;
	bool resumed = def->rotate_phase(inst.state) != ADDON_ROTATE_NONE;
	if (resumed) {
		log_info("app %s: finishing the rotation of %s's credentials a stopped daemon "
			 "left",
			 app, def->name);
	} else {
		if ((rc = def->rotate_plan(&d->actx, &inst, credential, err)) ||
		    (rc = save(d, def, &inst, false, err)))
			goto out;
		fault_point("rotate:planned");
	}
	if ((rc = finish(d, def, &inst, &restarted, err)))
		goto out;
	int64_t issued = def->credentials_issued_at ? def->credentials_issued_at(inst.state) : 0;
	*result = json_pack("{s:s, s:s, s:s, s:s, s:I, s:b, s:b}", "app", app, "addon", def->name,
			    "variant", rec.variant, "credential", credential,
			    "credentials_issued_at", (json_int_t)(issued ? issued : rec.created_at),
			    "resumed", resumed, "restarted", restarted);
	log_info("app %s: credentials of %s rotated (the old ones revoked)", app, def->name);
out:
	app_unlock(d, app);
	if (loaded)
		addon_inst_release(def, &inst);
	addon_rec_release(&rec);
	return rc;
}

void rotations_recover(struct daemon *d)
{
	struct addon_rec *recs = NULL;
	size_t n = 0;
	if (store_addon_list(d->store, NULL, &recs, &n, NULL) != 0)
		return;
	for (size_t i = 0; i < n; i++) {
		const struct addon_def *def = addon_find(recs[i].addon);
		struct addon_inst inst;
		if (!def || !can_rotate(def) || strcmp(recs[i].status, "active") != 0 ||
		    addon_inst_load(def, &recs[i], &inst, NULL) != 0)
			continue;
		bool moving = def->rotate_phase(inst.state) != ADDON_ROTATE_NONE;
		addon_inst_release(def, &inst);
		if (!moving)
			continue;
		/* Its server may still be starting. */
		struct server_rec srv;
		struct miren_error err;
		miren_error_clear(&err);
		if (def->ready && store_server_get(d->store, recs[i].server, &srv, NULL) == 0) {
			def->ready(&d->actx, &srv, 30000, &err);
			server_rec_release(&srv);
		}
		json_t *res = NULL;
		miren_error_clear(&err);
		if (rotations_rotate(d, recs[i].app, recs[i].addon, NULL, &res, &err) != 0)
			log_error("app %s: cannot finish the rotation of %s's credentials: %s%s%s",
				  recs[i].app, def->name, err.message, *err.detail ? ": " : "",
				  err.detail);
		json_decref(res);
	}
	addon_recs_free(recs, n);
}

/* Whether app's addon rec is due for a rotation (rotate_every_s). */
static bool due(const struct addon_rec *rec, int64_t every_s, int64_t now)
{
	const struct addon_def *def = addon_find(rec->addon);
	struct addon_inst inst;
	if (!def || !can_rotate(def) || strcmp(rec->status, "active") != 0 ||
	    addon_inst_load(def, rec, &inst, NULL) != 0)
		return false;
	int64_t issued = def->credentials_issued_at ? def->credentials_issued_at(inst.state) : 0;
	bool moving = def->rotate_phase(inst.state) != ADDON_ROTATE_NONE;
	addon_inst_release(def, &inst);
	return moving || now - (issued ? issued : rec->created_at) >= every_s;
}

void rotations_due(struct daemon *d)
{
	struct app_rec *apps = NULL;
	size_t n_apps = 0;
	if (store_app_list(d->store, &apps, &n_apps, NULL) != 0)
		return;
	for (size_t i = 0; i < n_apps && !daemon_is_stopping(d); i++) {
		struct app_rec rec;
		struct app_config *cfg = NULL;
		if (apps_load_current(d, apps[i].name, &rec, &cfg, NULL) != 0)
			continue;
		for (size_t k = 0; cfg && k < cfg->n_addons; k++) {
			const struct app_addon *a = &cfg->addons[k];
			struct addon_rec arec;
			if (!a->rotate_every_s ||
			    store_addon_get(d->store, apps[i].name, a->name, &arec, NULL) != 0)
				continue;
			if (due(&arec, a->rotate_every_s, (int64_t)time(NULL))) {
				json_t *res = NULL;
				struct miren_error err;
				miren_error_clear(&err);
				if (rotations_rotate(d, apps[i].name, a->name, NULL, &res, &err) ==
				    0)
					log_info("app %s: credentials of %s rotated on schedule "
						 "(rotate_every)",
						 apps[i].name, a->name);
				else
					log_error("app %s: the scheduled rotation of %s failed: %s",
						  apps[i].name, a->name, err.message);
				json_decref(res);
			}
			addon_rec_release(&arec);
		}
		app_config_free(cfg);
		app_rec_release(&rec);
	}
	app_recs_free(apps, n_apps);
}
