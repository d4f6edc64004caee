/*
 * What the daemon's modules share (not for use outside lib/daemon): the
 * root object and the lock primitives.
 *
 * Lock scopes (the whole picture is in docs/architecture.md):
 *  - app locks: one per app name, taken through app_lock()/app_unlock();
 *    held by an operation that changes one app (deploy from its config
 *    check to its services' start, restart, destroy, env set/delete, addon
 *    create/destroy, the reconciler's restart of an app).  Never held
 *    across unpacking an upload; held across stopping that app's services
 *    only.  Reads (status, lists, logs) take none: the store serialises
 *    its own calls and the supervisor its own.
 *  - locks_mu: only while looking up or inserting in the app lock table.
 *  - ports_mu: only while looking up or inserting a service's port.
 *  - changes_mu: the addon-change counter, the stopping flag and the
 *    held-start set; waiters for an addon's removal wait on changes_cv
 *    with their app lock released.
 */
#ifndef MIREN_DAEMON_INT_H
#define MIREN_DAEMON_INT_H

#include <jansson.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "addon/addon.h"
#include "daemon/daemon.h"
#include "util/io.h"
#include "util/paths.h"

struct app_config;
struct app_rec;
struct app_lock_entry;
struct port_slot;
struct held_app;
struct fork_waiter;

struct daemon {
	struct data_paths *paths;
	json_t *listeners; /* [{"address","fingerprint"}]: daemon_add_listener */
	struct store *store;
	struct sv *sv;
	uid_t run_uid; /* (uid_t)-1: as the daemon */
	gid_t run_gid;
	int keep_releases; /* releases kept per app (>= 1), the current one included */
	struct addon_ctx actx;
	char *backup_dir;              /* the backup store's directory (actx.backup_dir) */
	struct disk_watch *disk_watch; /* the 90 % warnings */
	struct addon_ticker *ticker;   /* the engines' periodic work */
	struct reconciler *rec;
	struct scheduler *sched; /* backup schedules (schedules.h) */
	struct bstore *bstore;   /* <data>/backups; NULL when it cannot be opened */

	pthread_mutex_t locks_mu;
	struct app_lock_entry *locks;

	pthread_mutex_t ports_mu;
	struct port_slot *ports;

	pthread_mutex_t changes_mu;
	pthread_cond_t changes_cv;        /* CLOCK_MONOTONIC */
	uint64_t changes;                 /* bumped when any app's addons changed */
	bool stopping;                    /* set by daemon_stop_waits */
	struct held_app *held;            /* apps whose services wait for their addons */
	struct fork_waiter *fork_waiters; /* `addon fork`s waiting (fork.c) */
};

/* Takes app's lock (waiting while another operation holds it). */
void app_lock(struct daemon *d, const char *app);
void app_unlock(struct daemon *d, const char *app);
/* Takes app's lock only when nobody holds or waits for it; true if it
 * did (release with app_unlock). */
bool app_trylock(struct daemon *d, const char *app);

/* How long an operation waits for an addon's removal before it gives up. */
#define REMOVAL_WAIT_MS (120 * 1000)

/* The current addon-change count; read before dropping the app lock. */
uint64_t daemon_changes(struct daemon *d);
/*
 * Waits, with app's lock released (the caller holds it; it is held again
 * on return), until the addon-change count passes seen, at most 1 s or
 * until deadline_ms (io_mono_ms).  Returns 0 to look again, MIREN_EUNAVAIL
 * when the deadline passed or the daemon is stopping.
 */
int daemon_wait_changes(struct daemon *d, const char *app, uint64_t seen, int64_t deadline_ms);
bool daemon_is_stopping(struct daemon *d);
/*
 * The held-start set: apps that got an addon, or whose last start was held
 * back, while an addon was not active (their services, if any run, are an
 * earlier run); an app leaves it when its services start.  Kept in memory
 * only: recovery starts every app again and so rebuilds it.
 */
void daemon_set_held(struct daemon *d, const char *app, bool held);
bool daemon_is_held(struct daemon *d, const char *app);
/* The error of a wait that ended with the daemon stopping. */
enum miren_err daemon_stopping_error(struct miren_error *err);

/* The port of a service id: its configured one (0: none), else one picked
 * once and kept for the daemon's lifetime so restarts keep the URL. */
int daemon_service_port(struct daemon *d, const char *id, int configured);
/* The port known for id, 0 when none was picked. */
int daemon_service_port_known(struct daemon *d, const char *id);

/* --- apps.c, for the other modules -------------------------------------- */

/* Loads the config of the app's current release; *cfg NULL if never
 * deployed.  MIREN_ENOTFOUND (err filled) when the app does not exist. */
enum miren_err apps_load_current(struct daemon *d, const char *app, struct app_rec *rec,
				 struct app_config **cfg, struct miren_error *err);
/* Restarts every service of app with fresh env; caller holds app's lock. */
enum miren_err apps_restart_locked(struct daemon *d, const char *app, struct miren_error *err);
/* Starts every app's current release (daemon_open); removes release
 * directories the store does not know. */
void apps_start_all(struct daemon *d);
/* Removes app directories with no app in the store (a destroy cut short). */
void apps_prune_dirs(struct daemon *d);

/* --- backups.c, for the other modules ----------------------------------- */

/* An app's active addon as an operation on its data sees it. */
struct addon_target {
	struct addon_rec rec;
	const struct addon_def *def;
	struct addon_inst inst;
	bool inst_loaded;
	struct server_rec srv;
	bool shared; /* its server holds many apps' tenants */
};
/* Loads app's addon `addon` into t (released with addon_target_release
 * whatever the outcome): MIREN_ENOTFOUND for no such app or addon,
 * MIREN_ECONFLICT ("... so it cannot be <doing>") when it is not active. */
enum miren_err addon_target_load(struct daemon *d, const char *app, const char *addon,
				 const char *doing, struct addon_target *t,
				 struct miren_error *err);
void addon_target_release(struct addon_target *t);
/* Writes the engine's logical dump of inst (def->dump) to the new file
 * path (0600, the service user's), fsynced.  MIREN_EINVAL when the engine
 * has no dump; a failed dump leaves the file for the caller to remove. */
enum miren_err backups_dump_file(struct daemon *d, const struct addon_def *def,
				 struct addon_inst *inst, const char *path,
				 struct miren_error *err);
/* Reads the tenant `tenant` (tenant_facts) out of the stored backup id
 * through a scratch server of def's engine (opts: NULL, or the recovery
 * target pitr_source gave) into the new file dump_path, in load's format.
 * Nothing outside the scratch area and dump_path changes. */
enum miren_err backups_scratch_dump(struct daemon *d, const struct addon_def *def, const char *id,
				    const json_t *opts, const json_t *tenant, const char *dump_path,
				    struct miren_error *err);

/* --- addons.c, for the other modules ------------------------------------ */

/* Adds app's instance of addon (pending; the reconciler provisions it).
 * fork: NULL, or the fork's source (fork.c) recorded in the same row.
 * MIREN_EEXISTS (with a hint) when app has the addon. */
enum miren_err addons_create_locked(struct daemon *d, const char *app, const char *addon,
				    const char *variant, const char *version, const char *source,
				    const char *fork, struct addon_rec *out,
				    struct miren_error *err);
/* Moves app's addon to deprovisioning (compare-and-set from what it read;
 * read again when the reconciler moved it meanwhile); 0 also when it is
 * being removed already.  *id_out (if not NULL) gets its id, to free. */
enum miren_err addons_destroy_locked(struct daemon *d, const char *app, const char *addon,
				     char **id_out, struct miren_error *err);
/* The app's addons as JSON (an array). */
enum miren_err addons_list_json(struct daemon *d, const char *app, json_t **result,
				struct miren_error *err);
/* The error line of an addon whose last backup verification failed
 * (backups_verification's answer), a JSON string; NULL when none. */
json_t *addons_backup_error(const json_t *verification);
/* Whether every addon of app is active (those being removed do not hold
 * the app back).  *what (if not NULL) names the first that is not, to free. */
bool addons_ready(struct daemon *d, const char *app, char **what);
/* Moves addons of apps that no longer exist to deprovisioning (start). */
void addons_remove_orphans(struct daemon *d);
/* The reconciler's callback: an app's addons changed. */
void addons_changed(void *user, const char *app);

#endif
