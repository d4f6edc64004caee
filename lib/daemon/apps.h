/*
 * Apps, their releases and their services.  Lock scope: the app's own
 * lock (daemon_int.h) for deploy (from the config check to the start of
 * the services; the upload is unpacked before it is taken), restart and
 * destroy; list and status take no lock.
 */
#ifndef MIREN_DAEMON_APPS_H
#define MIREN_DAEMON_APPS_H

#include <jansson.h>
#include <stdbool.h>

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
 * The kept releases of app, newest first: {"app","current","keep",
 * "releases":[shape_release]} (current: the current release's number, 0
 * before the first deploy; keep: how many the server keeps).  Takes no
 * lock.  MIREN_ENOTFOUND for an unknown app.
 */
enum miren_err apps_releases(struct daemon *d, const char *app, json_t **result,
			     struct miren_error *err);
/*
 * Rolls app back to its kept release `to` (0: the newest one before the
 * current one), as Heroku does: a new release <n> is made, a copy of
 * release `to`'s directory with its app.toml's services and [[env]], but
 * the addons section of the current release (a rollback changes code,
 * not addons: no addon is created or removed, and the variables, addon
 * and `miren env set` ones, are today's, read when the services start);
 * its services replace the current ones.  Three steps, each ended by a
 * fault point: rollback:copied (the copy in tmp/, nothing recorded),
 * rollback:moved (in releases/<n>, not recorded: removed at start),
 * rollback:recorded (current, its services not yet started: started at
 * start).  *result: shape_rollback.  Errors, with nothing changed:
 * MIREN_ENOTFOUND (no such app, no releases, no release `to`, `to`
 * pruned, nothing before the current one), MIREN_ECONFLICT (`to` is the
 * current one), MIREN_EINVAL (release `to` requires a variable with no
 * value), MIREN_EIO or MIREN_ETOOBIG (the copy failed).
 */
enum miren_err apps_rollback(struct daemon *d, const char *app, int to, json_t **result,
			     struct miren_error *err);
/*
 * Stops the app's services, moves its addons to deprovisioning, deletes
 * the app with its releases and env, then waits (up to 120 s) until the
 * addons are gone.  MIREN_EUNAVAIL when one is still being removed then
 * (the app itself is gone; the reconciler keeps retrying).
 */
/* With final_backup, first takes each active addon's final backup
 * (backups_final; one that fails refuses the destroy, nothing removed).
 * *result: {"app","final_backups":[{"addon","id"}]}. */
enum miren_err apps_destroy(struct daemon *d, const char *app, bool final_backup, json_t **result,
			    struct miren_error *err);

#endif
