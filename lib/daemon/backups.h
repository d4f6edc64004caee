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
 * once.  A failed restore leaves the current data as it was.  *result
 * describes what was done (caller decrefs).
 */
enum miren_err backups_restore(struct daemon *d, const char *app, const char *addon, const char *id,
			       int fd, bool force, json_t **result, struct miren_error *err);

/* The backup store the daemon opened (owned by the daemon). */
struct bstore *daemon_bstore(struct daemon *d);

#endif
