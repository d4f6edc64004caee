/* An app's variables; see appenv.h. */
#include "daemon/appenv.h"
#include "api/shape.h"
#include "app/config.h"
#include "app/env.h"
#include "daemon/daemon_int.h"
#include "store/store.h"
#include "util/log.h"
#include "util/names.h"

#include <string.h>

/* The effective env of app. */
static enum miren_err effective_env(struct daemon *d, const char *app, struct env_rec **eff,
				    size_t *n, struct miren_error *err)
{
	struct app_rec rec;
	struct app_config *cfg;
	struct env_rec *stored = NULL;
	size_t n_stored = 0;
	enum miren_err rc = apps_load_current(d, app, &rec, &cfg, err);
	if (!rc)
		rc = store_env_list(d->store, app, &stored, &n_stored, err);
	if (!rc)
		env_effective(cfg, stored, n_stored, eff, n);
	env_recs_free(stored, n_stored);
	app_config_free(cfg);
	app_rec_release(&rec);
	return rc;
}

enum miren_err appenv_list(struct daemon *d, const char *app, bool unmask, json_t **result,
			   struct miren_error *err)
{
	struct env_rec *eff;
	size_t n;
	enum miren_err rc = effective_env(d, app, &eff, &n, err);
	if (!rc) {
		*result = json_array();
		for (size_t i = 0; i < n; i++)
			json_array_append_new(*result, shape_env(&eff[i], unmask));
		env_recs_free(eff, n);
	}
	return rc;
}

enum miren_err appenv_get(struct daemon *d, const char *app, const char *key, bool unmask,
			  json_t **result, struct miren_error *err)
{
	struct env_rec *eff;
	size_t n;
	*result = NULL;
	enum miren_err rc = effective_env(d, app, &eff, &n, err);
	if (!rc) {
		/* The app-wide value if there is one, else the first scoped one. */
		for (size_t i = 0; i < n; i++)
			if (!strcmp(eff[i].key, key) && (!*result || !*eff[i].service)) {
				json_decref(*result);
				*result = shape_env(&eff[i], unmask);
			}
		env_recs_free(eff, n);
		if (!*result) {
			rc = miren_error_set(err, MIREN_ENOTFOUND,
					     "variable '%s' is not set on app '%s'", key, app);
			miren_error_hint(err, "run 'miren env list -a %s' to see its variables",
					 app);
		}
	}
	return rc;
}

enum miren_err appenv_set(struct daemon *d, const char *app, const char *key, const char *value,
			  bool sensitive, bool create, struct miren_error *err)
{
	enum miren_err rc = name_check_env(key, err);
	if (rc)
		return rc;
	if (!strcmp(key, "PORT") || !strncmp(key, "MIREN_", 6)) {
		miren_error_set(err, MIREN_EINVAL, "variable '%s' is set by miren itself", key);
		miren_error_hint(err, "PORT comes from the service's 'port' in app.toml; MIREN_* "
				      "describe the app and release");
		return MIREN_EINVAL;
	}
	if (strlen(value) > 65536)
		return miren_error_set(err, MIREN_ETOOBIG, "value of '%s' is longer than 64 KiB",
				       key);
	rc = name_check_app(app, err);
	if (rc)
		return rc;
	app_lock(d, app);
	/* Only an explicit create makes a new app (a `required` variable given
	 * before the first deploy); a mistyped name must not become an app. */
	if (create) {
		rc = store_app_ensure(d->store, app, err);
	} else {
		struct app_rec rec;
		rc = store_app_get(d->store, app, &rec, err);
		if (!rc)
			app_rec_release(&rec);
		else if (rc == MIREN_ENOTFOUND)
			miren_error_hint(err, "run 'miren app list' to see the apps; to give a "
					      "new app variables before its first deploy, pass "
					      "--create");
	}
	struct env_rec e = { .key = (char *)key,
			     .value = (char *)value,
			     .service = "",
			     .source = ENV_SOURCE_MANUAL,
			     .sensitive = sensitive,
			     .description = "" };
	if (!rc)
		rc = store_env_set(d->store, app, &e, err);
	if (!rc) {
		log_info("app %s: variable %s set", app, key);
		rc = apps_restart_locked(d, app, err);
	}
	app_unlock(d, app);
	return rc;
}

enum miren_err appenv_delete(struct daemon *d, const char *app, const char *key,
			     struct miren_error *err)
{
	app_lock(d, app);
	struct app_rec rec;
	enum miren_err rc = store_app_get(d->store, app, &rec, err);
	app_rec_release(&rec);
	if (!rc)
		rc = store_env_delete(d->store, app, key, ENV_SOURCE_MANUAL, err);
	if (rc == MIREN_ENOTFOUND) {
		struct env_rec *eff;
		size_t n;
		struct miren_error e2;
		if (effective_env(d, app, &eff, &n, &e2) == 0) {
			for (size_t i = 0; i < n; i++)
				if (!strcmp(eff[i].key, key)) {
					miren_error_set(err, MIREN_ECONFLICT,
							"variable '%s' comes from %s, not from "
							"'miren env set'",
							key,
							eff[i].source == ENV_SOURCE_CONFIG
								? ".miren/app.toml"
								: "an addon");
					miren_error_hint(err, "%s",
							 eff[i].source == ENV_SOURCE_CONFIG
								 ? "remove it from .miren/app.toml "
								   "and deploy again"
								 : "destroy the addon to remove "
								   "its variables");
					rc = MIREN_ECONFLICT;
					break;
				}
			env_recs_free(eff, n);
		}
	}
	if (!rc) {
		log_info("app %s: variable %s deleted", app, key);
		rc = apps_restart_locked(d, app, err);
	}
	app_unlock(d, app);
	return rc;
}
