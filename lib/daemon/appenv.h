/*
 * An app's variables: the effective env (app.toml, addons, `miren env
 * set`) and the manual values.  Lock scope: set and delete take the app's
 * lock (they write and restart the app); list and get take none.
 */
#ifndef MIREN_DAEMON_APPENV_H
#define MIREN_DAEMON_APPENV_H

#include <jansson.h>
#include <stdbool.h>

#include "daemon/daemon.h"

/* [{"name","value","service","source","sensitive","description"}]; values
 * of sensitive variables are masked unless unmask. */
enum miren_err appenv_list(struct daemon *d, const char *app, bool unmask, json_t **result,
			   struct miren_error *err);
enum miren_err appenv_get(struct daemon *d, const char *app, const char *key, bool unmask,
			  json_t **result, struct miren_error *err);
/*
 * Sets a manual variable of app and restarts its services.  The app must
 * exist (MIREN_ENOTFOUND "app 'X' not found", nothing changed) unless
 * create, which creates it without a release first, so that `required`
 * variables can be given before the first deploy.  MIREN_EINVAL for a bad
 * name, PORT or MIREN_*; MIREN_ETOOBIG for a value over 64 KiB.
 */
enum miren_err appenv_set(struct daemon *d, const char *app, const char *key, const char *value,
			  bool sensitive, bool create, struct miren_error *err);
enum miren_err appenv_delete(struct daemon *d, const char *app, const char *key,
			     struct miren_error *err);

#endif
