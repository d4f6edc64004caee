/*
 * Addon-aware backups: an app's data in one of its addons, taken into the
 * backup store (lib/backup/bstore.h) and restored into the app's current
 * addon, whatever its variant.  Lock scope: the app's lock while a
 * restore changes the app's data and restarts it; a disk backup holds the
 * disk's lock (disk_lock) while it runs.
 */
#ifndef MIREN_DAEMON_BACKUPS_H
#define MIREN_DAEMON_BACKUPS_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "daemon/daemon.h"

struct bstore;

/*
 * Takes a backup of app's addon (the addon's name, e.g. the one app.toml
 * names) into the store.  trigger: "manual", "schedule", "destroy",
 * "deploy".  keep_until: 0, or unix seconds after which retention removes
 * it (final backups: now + 7 days).  *result: {"id","kind","size",
 * "stored_bytes","created_at"} (caller decrefs).  The manifest's meta is
 * {"app","addon","addon_id","variant","engine_version","kind","trigger",
 * "server","disk","keep_until"}.  Errors: MIREN_ENOTFOUND (no such app or
 * addon), MIREN_ECONFLICT (the addon is not active, the disk is busy),
 * MIREN_EIO (e.g. "the backup store is full": nothing is kept).
 */
enum miren_err backups_take(struct daemon *d, const char *app, const char *addon,
			    const char *trigger, int64_t keep_until, json_t **result,
			    struct miren_error *err);
/*
 * Restores into app's current addon instance from the stored backup id,
 * or (id NULL) from the .miren.zst file open on fd, and restarts the app
 * once, holding the app's lock throughout.  Refused before any change
 * (MIREN_EINVAL) for a backup of another addon, a newer format, a
 * truncated or damaged one; (MIREN_ECONFLICT) for another app's backup
 * unless force.  A failed restore leaves the current data as it was.
 * *result: {"app","addon","variant","kind" (the backup's: "disk"|"dump"),
 * "route" ("load"|"disk"|"scratch"),"from_app","from_variant","backup"
 * (id or null),"restarted"} (caller decrefs).  A third source (a point in
 * time, `--to`) is a route of its own in backups.c, beside these.
 */
enum miren_err backups_restore(struct daemon *d, const char *app, const char *addon, const char *id,
			       int fd, bool force, json_t **result, struct miren_error *err);

/*
 * Point-in-time recovery: gives app's addon its data as it was at `when`
 * (when_parse: "2026-11-30 12:34:56+00" or "10m-ago"), and restarts the
 * app once.  The engine (pitr_source) says where that instant's data
 * comes from (a base backup in the store and the options that recover a
 * scratch server on it to the instant); the app's tenant is dumped there
 * and loaded into the current instance (all or nothing): on a shared
 * server only that app's database changes.  Refused before any change:
 * MIREN_EINVAL for a time that is no time or outside the window (the
 * message names it), MIREN_ECONFLICT for an addon that is not active.
 * *result: {"app","addon","variant","kind","route" ("point-in-time"),
 * "backup","to","restarted"} (caller decrefs).
 */
enum miren_err backups_restore_to(struct daemon *d, const char *app, const char *addon,
				  const char *when, json_t **result, struct miren_error *err);

/* The manifest of stored backup id (caller decrefs); MIREN_ENOTFOUND. */
enum miren_err backups_get(struct daemon *d, const char *id, json_t **manifest,
			   struct miren_error *err);
/* Writes stored backup id to sink as a standalone .miren.zst stream. */
enum miren_err backups_export(struct daemon *d, const char *id,
			      int (*sink)(void *, const void *, size_t), void *user,
			      struct miren_error *err);

/* The backup store the daemon opened (owned by the daemon); NULL when it
 * could not be opened (logged at start). */
struct bstore *daemon_bstore(struct daemon *d);

/* At daemon start, after the apps started: finishes what restores a crash
 * cut short once their data had changed (restarts the app). */
void backups_recover(struct daemon *d);

#endif
