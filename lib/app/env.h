/*
 * Env resolution: which value each variable of an app's service gets.
 *
 * Sources, lowest precedence first:
 *   config  app.toml [[env]], then [[services.<name>.env]]
 *   addon   variables an active addon injects (DATABASE_URL, PG*)
 *   manual  values set with `miren env set`
 * An addon variable overrides a config entry of the same name, never a
 * manual one.
 */
#ifndef MIREN_APP_ENV_H
#define MIREN_APP_ENV_H

#include "app/config.h"
#include "store/store.h"

/*
 * The effective variables of an app as `miren env list` shows them: one
 * record per (key, service scope), from the winning source, sorted by key.
 * stored holds the manual and addon records.  Caller frees with
 * env_recs_free().
 */
void env_effective(const struct app_config *cfg, const struct env_rec *stored, size_t n_stored,
		   struct env_rec **out, size_t *n_out);

/*
 * The environment of one service process: a base (PATH, LANG, HOME), the
 * merged variables, then PORT and MIREN_APP/MIREN_SERVICE/MIREN_RELEASE.
 * Returns a NULL-terminated "K=V" array; free with env_array_free().
 */
char **env_for_service(const struct app_config *cfg, const char *service,
		       const struct env_rec *stored, size_t n_stored, int port, int release,
		       const char *home);
void env_array_free(char **env);

/* The first required variable that no source gives a value, or NULL. */
const char *env_missing_required(const struct app_config *cfg, const struct env_rec *stored,
				 size_t n_stored);

#endif
