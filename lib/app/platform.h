/*
 * The platform: the daemon's state and every operation the API offers on
 * apps (deploy, status, restart, destroy, env, logs).  It owns the store
 * and the supervisor; the HTTP layer only translates requests into calls.
 *
 * Crash safety: a deploy unpacks into <data>/tmp, moves the tree to
 * apps/<app>/releases/<n>, then records release n in the store; on start,
 * platform_open() removes whatever a crash left half-done (tmp, release
 * directories with no record, directories of apps that no longer exist)
 * and starts the services of every app's current release.
 *
 * Results are JSON objects (jansson) the caller owns; failures fill err.
 */
#ifndef MIREN_PLATFORM_H
#define MIREN_PLATFORM_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "util/err.h"

struct platform;

struct platform_options {
	const char *data_dir;
	const char *service_user; /* run services as this user when root; NULL: "miren" */
	int keep_releases;        /* 0: 5 */
	const char *addr_pool;    /* addon server addresses, CIDR; NULL: 127.77.0.0/16 */
};

int platform_open(const struct platform_options *opts, struct platform **out,
		  struct miren_error *err);
/* Stops every service and closes the store. */
void platform_close(struct platform *p);
const char *platform_data_dir(const struct platform *p);

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
int platform_deploy(struct platform *p, const char *app, const char *tar_path,
		    const char *sha256, json_t **result, struct miren_error *err);

/* [{"name","release","services","created_at"}] */
int platform_app_list(struct platform *p, json_t **result, struct miren_error *err);
/* {"name","release","services":[{"name","state","pid","port","url","restarts",...}]} */
int platform_app_status(struct platform *p, const char *app, json_t **result,
			struct miren_error *err);
int platform_app_restart(struct platform *p, const char *app, struct miren_error *err);
/*
 * Stops the app's services, moves its addons to deprovisioning, deletes
 * the app with its releases and env, then waits (up to 120 s) until the
 * addons are gone.  MIREN_EUNAVAIL when one is still being removed then
 * (the app itself is gone; the reconciler keeps retrying).
 */
int platform_app_destroy(struct platform *p, const char *app, struct miren_error *err);

/* Ends every wait for an addon's removal at once (calls that wait fail
 * with MIREN_EUNAVAIL): the daemon is stopping.  Call before stopping the
 * API server. */
void platform_stop_waits(struct platform *p);

/* [{"name","value","service","source","sensitive"}]; values of sensitive
 * variables are replaced by "********" unless unmask. */
int platform_env_list(struct platform *p, const char *app, bool unmask, json_t **result,
		      struct miren_error *err);
int platform_env_get(struct platform *p, const char *app, const char *key, bool unmask,
		     json_t **result, struct miren_error *err);
/*
 * Sets a manual variable of app and restarts its services.  The app must
 * exist (MIREN_ENOTFOUND "app 'X' not found", nothing changed) unless
 * create, which creates it without a release first, so that `required`
 * variables can be given before the first deploy.  MIREN_EINVAL for a bad
 * name, PORT or MIREN_*; MIREN_ETOOBIG for a value over 64 KiB.
 */
int platform_env_set(struct platform *p, const char *app, const char *key, const char *value,
		     bool sensitive, bool create, struct miren_error *err);
int platform_env_delete(struct platform *p, const char *app, const char *key,
			struct miren_error *err);

/*
 * A slice of a service's log.  With offset >= 0, the bytes from offset on
 * (at most 1 MiB); with offset < 0, the last `tail` lines.
 * Returns {"service","data","offset"} where offset is where to continue.
 */
int platform_logs(struct platform *p, const char *app, const char *service, long long offset,
		  int tail, json_t **result, struct miren_error *err);

/* --- addons ---------------------------------------------------------- */

/* [{"name","description","variants":[...],"default_variant","versions"}] */
int platform_addon_available(struct platform *p, json_t **result, struct miren_error *err);
/* {"name","variants":[{"name","description","details","default"}]} */
int platform_addon_variants(struct platform *p, const char *addon, json_t **result,
			    struct miren_error *err);
/* The app's addons: [{"addon","variant","status","message",...}] */
int platform_addon_list(struct platform *p, const char *app, json_t **result,
			struct miren_error *err);
/* Attaches addon (variant/version NULL: defaults) to app; returns the
 * instance (status pending).  The reconciler provisions it. */
int platform_addon_create(struct platform *p, const char *app, const char *addon,
			  const char *variant, const char *version, json_t **result,
			  struct miren_error *err);
/* Starts removing the addon from app (status deprovisioning). */
int platform_addon_destroy(struct platform *p, const char *app, const char *addon,
			   struct miren_error *err);
struct disk_backup_job;
/* Starts a backup of disk name (errors come here, before any byte). */
int platform_disk_backup_prepare(struct platform *p, const char *name,
				 struct disk_backup_job **job, struct miren_error *err);
/* Restores the snapshot in file fd as disk name (NULL: its own name);
 * abandoned (may be NULL) as for disk_restore. */
int platform_disk_restore(struct platform *p, int fd, const char *name, bool force,
			  bool (*abandoned)(void *), void *abandoned_user, json_t **result,
			  struct miren_error *err);

/* [{"name","size","used","status","created_by","created_at"}] */
/* Every disk (see disk_list). */
int platform_disk_list(struct platform *p, json_t **result, struct miren_error *err);
/* How disks are stored: {"mode": "ext4"|"dirs", "reason", "online_resize"}. */
json_t *platform_disk_mode(struct platform *p);
/* Grows a disk (see disk_resize). */
int platform_disk_resize(struct platform *p, const char *name, uint64_t size_bytes,
			 json_t **result, struct miren_error *err);

/* The daemon's invariants: {"violations":[...],"in_motion":N,"checks":[...]}
 * (see addon_invariants_check). */
int platform_invariants(struct platform *p, json_t **result, struct miren_error *err);

#endif
