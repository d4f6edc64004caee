/*
 * Backup schedules, retention and final backups: the store's backups of
 * an app's addon taken every so often (a scheduler thread), pruned to
 * `keep`, and the final backup an addon's removal takes first.
 *
 * A schedule (lib/store: backup_schedules) comes from app.toml
 * (`[addons.<name>] backups = { every = "6h", keep = 28 }`, applied at
 * each deploy) or from `miren addon backups --every`.  The scheduler
 * thread looks every SCHED_TICK_MS (MIREN_BACKUP_TICK_MS overrides) for
 * schedules that are due: a schedule with no backup yet is due at once;
 * then every `every` after the last scheduled backup it took, so a daemon
 * that was down for many periods takes one backup when it starts, not one
 * per missed period.  A failed attempt (a full backup store, an addon
 * that is not active) is recorded with its error and retried after
 * sched_retry_s(every), not a whole period later.
 *
 * After each scheduled backup: its verification (verify_scheduled, the
 * one call site), then retention: the addon's backups beyond `keep` are
 * removed oldest first, never the newest verified one; backups whose
 * keep_until is in the future (final backups) are neither counted nor
 * removed, and those whose keep_until passed are removed (for every app,
 * also for addons and apps that are gone); then the store's garbage
 * collection frees the chunks no backup names.  A crash at any step
 * leaves backups that the next pass prunes (each pass starts with
 * retention for every schedule).
 *
 * Lock scope: none of the daemon's locks are held by the scheduler while
 * a backup runs (backups_take holds what it needs); the thread's own
 * mutex guards only its stop flag.
 */
#ifndef MIREN_DAEMON_SCHEDULES_H
#define MIREN_DAEMON_SCHEDULES_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "daemon/daemon.h"

struct app_config;

/* How often the scheduler looks for due schedules. */
#define SCHED_TICK_MS 30000
/* How long a final backup is kept. */
#define FINAL_BACKUP_KEEP_S (7 * 86400)

/* Seconds until a failed scheduled backup is tried again: a sixth of the
 * period, from 1 minute to 30 minutes. */
int64_t sched_retry_s(int64_t every_s);

struct scheduler;
/* Starts the thread (NULL when it cannot: logged).  Stop joins it. */
struct scheduler *scheduler_start(struct daemon *d);
void scheduler_stop(struct scheduler *s);
/* Wakes it up to look now (a schedule changed). */
void scheduler_kick(struct scheduler *s);

/*
 * The stored backups of app's addon (also of an addon, or an app, that is
 * gone: final backups), oldest first, with its schedule and the
 * point-in-time window: {"app","addon","backups":[{"id","created_at",
 * "kind","trigger","size","stored_bytes","verified","keep_until"}],
 * "schedule":{"every","every_s","keep","source","last_ok_at","last_try_at",
 * "last_error","next_at"}|null,"last_verified":ID|null,"window":...|null}.
 * MIREN_ENOTFOUND when the app does not exist and has no backups.
 */
enum miren_err schedules_backups(struct daemon *d, const char *app, const char *addon,
				 json_t **result, struct miren_error *err);
/*
 * Sets app's addon's schedule (source "cli"): every (duration text, or
 * "off" to remove the schedule; NULL: keep the current period), keep
 * (when keep_given; 1..APP_BACKUPS_KEEP_MAX; else the current count, or
 * APP_BACKUPS_KEEP_DEFAULT for a new schedule).  The app must
 * have the addon.  Returns what schedules_backups returns.  Bad input:
 * MIREN_EINVAL, nothing changed.
 */
enum miren_err schedules_set(struct daemon *d, const char *app, const char *addon,
			     const char *every, bool keep_given, long long keep, json_t **result,
			     struct miren_error *err);
/* Makes app's schedules what cfg declares (deploy; the caller holds the
 * app's lock): sets those app.toml declares, removes those app.toml set
 * before and no longer declares; schedules set from the CLI for addons
 * app.toml gives none stay. */
enum miren_err schedules_sync_config(struct daemon *d, const struct app_config *cfg,
				     struct miren_error *err);

/*
 * The final backup of app's addon before its removal: a backup kept for
 * FINAL_BACKUP_KEEP_S (trigger "destroy" or "deploy").  *result: the
 * backup ({"id",...}), or NULL when the addon holds no data to keep (it is
 * not active: never provisioned, or failed).  Fails with the backup's
 * error and a hint to remove the addon with --no-final-backup.
 */
enum miren_err backups_final(struct daemon *d, const char *app, const char *addon,
			     const char *trigger, json_t **result, struct miren_error *err);

#endif
