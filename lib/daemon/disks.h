/*
 * Disks (the directories addon servers keep their data in), their
 * backups and restores, and the daemon-wide views for debugging (the
 * invariants, the recorded state).  Lock scope: none here; every
 * operation on one disk holds that disk's lock (disk_lock, lib/addon) for
 * its whole length.
 */
#ifndef MIREN_DAEMON_DISKS_H
#define MIREN_DAEMON_DISKS_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "daemon/daemon.h"

struct disk_backup_job;

/* Every disk with its usage (see disk_list). */
enum miren_err disks_list(struct daemon *d, json_t **result, struct miren_error *err);
/* How disks are stored: {"mode": "ext4"|"dirs", "reason", "online_resize"}. */
json_t *disks_mode(struct daemon *d);
/* Grows a disk (see disk_resize). */
enum miren_err disks_resize(struct daemon *d, const char *name, uint64_t size_bytes,
			    json_t **result, struct miren_error *err);
/* Deletes a disk nothing uses (see disk_delete). */
enum miren_err disks_delete(struct daemon *d, const char *name, json_t **result,
			    struct miren_error *err);
/* Starts a backup of disk name (errors come here, before any byte). */
enum miren_err disks_backup_prepare(struct daemon *d, const char *name,
				    struct disk_backup_job **job, struct miren_error *err);
/* Restores the snapshot in file fd as disk name (NULL: its own name);
 * abandoned (may be NULL) as for disk_restore. */
enum miren_err disks_restore(struct daemon *d, int fd, const char *name, bool force,
			     bool (*abandoned)(void *), void *abandoned_user, json_t **result,
			     struct miren_error *err);
/* The daemon's invariants: {"violations":[...],"in_motion":N,"checks":[...]}
 * (see addon_invariants_check). */
enum miren_err daemon_invariants(struct daemon *d, json_t **result, struct miren_error *err);
/*
 * Everything the store records, for tests and debugging:
 * {"schema","apps":[{"name","release","created_at","releases":[n...]}],
 *  "addons":[{"id","app","addon","variant","version","status","step",
 *  "message","source","created_at","state"}],"servers":[{"id","kind","disk",
 *  "address","port","created_at","state"}],"disks":[{"name","size_bytes",
 *  "created_by","status","created_at"}]}.  Values under a key ending in
 * "password" in a "state" are SHAPE_MASK unless unmask.
 */
enum miren_err daemon_state(struct daemon *d, bool unmask, json_t **result,
			    struct miren_error *err);

#endif
