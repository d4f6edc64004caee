/* The addon catalogue and an app's addons; see addons.h. */
#include "daemon/addons.h"
#include "api/shape.h"
#include "daemon/daemon_int.h"
#include "daemon/schedules.h"
#include "daemon/verify.h"
#include "store/store.h"
#include "util/log.h"
#include "util/secret.h"

#include <stdlib.h>
#include <string.h>

bool addons_ready(struct daemon *d, const char *app, char **what)
{
	struct addon_rec *recs;
	size_t n;
	bool ready = true;
	if (what)
		*what = NULL;
	if (store_addon_list(d->store, app, &recs, &n, NULL) != 0)
		return false;
	for (size_t i = 0; i < n && ready; i++) {
		enum addon_status st = addon_status_parse(recs[i].status);
		if (st == ADDON_ACTIVE || st == ADDON_DEPROVISIONING)
			continue;
		ready = false;
		if (what)
			*what = xasprintf("%s (%s)", recs[i].addon, recs[i].status);
	}
	addon_recs_free(recs, n);
	return ready;
}

/*
 * Addons of apps that no longer exist are removed (moved to
 * deprovisioning).  None arise any more (app destroy marks them first,
 * under the app's lock), but a store written before status writes were
 * compare-and-set can hold some, which would otherwise stay in motion for
 * ever.
 */
void addons_remove_orphans(struct daemon *d)
{
	struct addon_rec *recs;
	size_t n;
	if (store_addon_list(d->store, NULL, &recs, &n, NULL) != 0)
		return;
	for (size_t i = 0; i < n; i++) {
		struct app_rec rec = { 0 };
		if (addon_status_parse(recs[i].status) == ADDON_DEPROVISIONING ||
		    store_app_get(d->store, recs[i].app, &rec, NULL) != MIREN_ENOTFOUND) {
			app_rec_release(&rec);
			continue;
		}
		struct miren_error err;
		if (store_addon_set_status(d->store, recs[i].id, recs[i].status, recs[i].step,
					   addon_status_name(ADDON_DEPROVISIONING), 0, "",
					   &err) == 0)
			log_info("addon %s of deleted app %s (%s): removing it", recs[i].addon,
				 recs[i].app, recs[i].status);
		else
			log_error("addon %s of deleted app %s: %s", recs[i].addon, recs[i].app,
				  err.message);
	}
	addon_recs_free(recs, n);
}

enum miren_err addons_available(struct daemon *d, json_t **result, struct miren_error *err)
{
	(void)d;
	(void)err;
	*result = json_array();
	for (const struct addon_def *const *def = addon_all(); *def; def++)
		json_array_append_new(*result, shape_addon_def(*def));
	return 0;
}

enum miren_err addons_variants(struct daemon *d, const char *addon, json_t **result,
			       struct miren_error *err)
{
	(void)d;
	const struct addon_def *def;
	const char *variant;
	char version[16];
	enum miren_err rc = addon_resolve(addon, NULL, NULL, &def, &variant, version, err);
	if (rc == MIREN_EUNAVAIL) /* the catalogue shows even when not installed */
		rc = 0;
	if (rc)
		return rc;
	*result = shape_addon_variants(def);
	return 0;
}

json_t *addons_backup_error(const json_t *verification)
{
	/* A failure newer than the last success is an error the operator
	 * must see. */
	const json_t *last = json_object_get(verification, "last");
	if (!json_is_false(json_object_get(last, "ok")))
		return NULL;
	return json_sprintf("backup %s failed verification: %s",
			    json_string_value(json_object_get(last, "id")),
			    json_string_value(json_object_get(last, "message")));
}

enum miren_err addons_list_json(struct daemon *d, const char *app, json_t **result,
				struct miren_error *err)
{
	struct addon_rec *recs;
	size_t n;
	enum miren_err rc = store_addon_list(d->store, app, &recs, &n, err);
	if (rc)
		return rc;
	*result = json_array();
	for (size_t i = 0; i < n; i++) {
		json_t *a = addon_inst_json(d->rec, &recs[i]);
		json_t *v = backups_verification(d, recs[i].app, recs[i].addon);
		json_t *be = addons_backup_error(v);
		if (be)
			json_object_set_new(a, "backup_error", be);
		json_object_set_new(a, "backups_verification", v);
		json_array_append_new(*result, a);
	}
	addon_recs_free(recs, n);
	return 0;
}

enum miren_err addons_list(struct daemon *d, const char *app, json_t **result,
			   struct miren_error *err)
{
	struct app_rec rec;
	enum miren_err rc = store_app_get(d->store, app, &rec, err);
	app_rec_release(&rec);
	if (!rc)
		rc = addons_list_json(d, app, result, err);
	return rc;
}

enum miren_err addons_create_locked(struct daemon *d, const char *app, const char *addon,
				    const char *variant, const char *version, const char *source,
				    const char *fork, struct addon_rec *out,
				    struct miren_error *err)
{
	const struct addon_def *def;
	const char *v;
	char ver[16];
	enum miren_err rc = addon_resolve(addon, variant, version, &def, &v, ver, err);
	if (rc)
		return rc;
	struct addon_rec cur;
	if (store_addon_get(d->store, app, addon, &cur, NULL) == 0) {
		miren_error_set(err, MIREN_EEXISTS, "app '%s' already has addon %s (%s, %s)", app,
				addon, cur.variant, cur.status);
		if (addon_status_parse(cur.status) == ADDON_DEPROVISIONING)
			miren_error_hint(err,
					 "it is being removed; try again when 'miren addon list -a "
					 "%s' no longer shows it",
					 app);
		else
			miren_error_hint(err,
					 "destroy it first with 'miren addon destroy %s -a %s'",
					 addon, app);
		addon_rec_release(&cur);
		return MIREN_EEXISTS;
	}
	char *id = secret_hex(5);
	*out = (struct addon_rec){ .id = id,
				   .app = xstrdup(app),
				   .addon = xstrdup(def->name),
				   .variant = xstrdup(v),
				   .version = xstrdup(ver),
				   .status = xstrdup(addon_status_name(ADDON_PENDING)),
				   .message = xstrdup(""),
				   .state_json = xstrdup("{}"),
				   .source = xstrdup(source),
				   .fork = xstrdup(fork ? fork : "") };
	rc = store_addon_add(d->store, out, err);
	if (rc) {
		addon_rec_release(out);
		return rc;
	}
	log_info("addon %s (%s) attached to app %s", def->name, v, app);
	/* Until it is active, a service that runs is an earlier run. */
	daemon_set_held(d, app, true);
	reconciler_kick(d->rec);
	return 0;
}

enum miren_err addons_create(struct daemon *d, const char *app, const char *addon,
			     const char *variant, const char *version, json_t **result,
			     struct miren_error *err)
{
	app_lock(d, app);
	struct app_rec rec;
	struct addon_rec made;
	enum miren_err rc = store_app_get(d->store, app, &rec, err);
	app_rec_release(&rec);
	if (!rc)
		rc = addons_create_locked(d, app, addon, variant, version,
					  addon_source_name(ADDON_SOURCE_CLI), NULL, &made, err);
	if (!rc) {
		*result = addon_inst_json(d->rec, &made);
		addon_rec_release(&made);
	}
	app_unlock(d, app);
	return rc;
}

enum miren_err addons_destroy_locked(struct daemon *d, const char *app, const char *addon,
				     char **id_out, struct miren_error *err)
{
	for (int tries = 0;; tries++) {
		struct addon_rec cur;
		enum miren_err rc = store_addon_get(d->store, app, addon, &cur, err);
		if (rc) {
			miren_error_hint(err, "run 'miren addon list -a %s' to see its addons",
					 app);
			return rc;
		}
		if (addon_status_parse(cur.status) != ADDON_DEPROVISIONING) {
			/* From what was read: the reconciler may be moving it. */
			rc = store_addon_set_status(d->store, cur.id, cur.status, cur.step,
						    addon_status_name(ADDON_DEPROVISIONING), 0, "",
						    err);
			if ((rc == MIREN_ECONFLICT || rc == MIREN_ENOTFOUND) && tries < 100) {
				addon_rec_release(&cur);
				continue;
			}
			if (!rc)
				log_info("addon %s of app %s: removal requested (it was %s)", addon,
					 app, cur.status);
		}
		if (!rc && id_out)
			*id_out = xstrdup(cur.id);
		addon_rec_release(&cur);
		reconciler_kick(d->rec);
		return rc;
	}
}

enum miren_err addons_destroy(struct daemon *d, const char *app, const char *addon,
			      bool final_backup, json_t **result, struct miren_error *err)
{
	app_lock(d, app);
	/* A missing app is named as such, not as "app 'x' has no addon". */
	struct app_rec rec;
	json_t *final = NULL;
	enum miren_err rc = store_app_get(d->store, app, &rec, err);
	app_rec_release(&rec);
	if (!rc && final_backup) {
		rc = backups_final(d, app, addon, "destroy", &final, err);
		if (rc == MIREN_ENOTFOUND)
			miren_error_hint(err, "run 'miren addon list -a %s' to see its addons",
					 app);
	}
	if (!rc)
		rc = addons_destroy_locked(d, app, addon, NULL, err);
	if (!rc) {
		/* Its schedule goes with it (a schedule app.toml declares comes
		 * back with the addon at the next deploy). */
		store_schedule_delete(d->store, app, addon, NULL);
		*result = json_pack("{s:s, s:o}", "addon", addon, "final_backup",
				    final ? json_incref(final) : json_null());
	}
	json_decref(final);
	app_unlock(d, app);
	return rc;
}
