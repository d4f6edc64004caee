/*
 * Apps, their releases and their services.  Lock scope: the app's own
 * lock (daemon_int.h) for deploy (from the config check to the start of
 * the services; the upload is unpacked before it is taken), restart and
 * destroy; list and status take no lock.
 */
#ifndef MIREN_DAEMON_APPS_H
#define MIREN_DAEMON_APPS_H

#include <jansson.h>

#include "daemon/daemon.h"

/*
 * Deploys the source archive at tar_path (whose SHA-256 is sha256) as app.
 * Returns {"app","release","unchanged","warnings":[...],"services":[...],
 * "addons":[...],"addons_created":[names],"addons_retried":[names]}:
 * addons_created are the instances this deploy made (new in app.toml, or
 * re-made after a destroy), addons_retried those of them that replace one
 * in error.  A declared addon that is being removed is waited for (up to
 * 120 s, then MIREN_EUNAVAIL with nothing recorded) and made anew, never
 * adopted.
 */
enum miren_err apps_deploy(struct daemon *d, const char *app, const char *tar_path,
			   const char *sha256, json_t **result, struct miren_error *err);
/* [{"name","release","services","running","created_at"}] */
enum miren_err apps_list(struct daemon *d, json_t **result, struct miren_error *err);
/* {"name","release","services":[{"name","state","pid","port","url","restarts",...}],"addons"} */
enum miren_err apps_status(struct daemon *d, const char *app, json_t **result,
			   struct miren_error *err);
enum miren_err apps_restart(struct daemon *d, const char *app, struct miren_error *err);
/*
 * Stops the app's services, moves its addons to deprovisioning, deletes
 * the app with its releases and env, then waits (up to 120 s) until the
 * addons are gone.  MIREN_EUNAVAIL when one is still being removed then
 * (the app itself is gone; the reconciler keeps retrying).
 */
enum miren_err apps_destroy(struct daemon *d, const char *app, struct miren_error *err);

#endif
