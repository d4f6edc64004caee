/*
 * Disk backup and restore for addon disks: crash-consistent snapshots of a
 * disk whose PostgreSQL server keeps running (its own online backup API:
 * writers do not stop), and verified restores that swap a disk only after
 * every checksum matched.  The format itself is lib/disk/snapshot.h.
 */
#ifndef MIREN_DISK_OPS_H
#define MIREN_DISK_OPS_H

#include "addon/addon.h"
#include "disk/snapshot.h"

struct disk_backup_job;

/*
 * Checks that disk `name` exists and starts the snapshot's consistency
 * point (pg_backup_start when its server runs), so that errors come before
 * any byte is streamed.  Returns 0 with *out, or a miren_err.
 */
int disk_backup_prepare(struct addon_ctx *ctx, const char *name, struct disk_backup_job **out,
			struct miren_error *err);
/* The header the snapshot will carry (owned by the job). */
const json_t *disk_backup_header(const struct disk_backup_job *job);
/* Writes the whole snapshot to sink. */
int disk_backup_run(struct disk_backup_job *job, snap_sink_fn sink, void *user,
		    struct snap_stats *st, struct miren_error *err);
/* Ends the job (aborting an unfinished online backup). */
void disk_backup_free(struct disk_backup_job *job);

/*
 * Reads a snapshot from source into a staging directory, verifying it
 * whole, then puts it in place as disk `name` (NULL: the name in the
 * snapshot).  An existing disk is replaced only with force; a server using
 * it is stopped for the swap and started again.  Returns {"disk",
 * "source_disk", "method", "files", "bytes", "replaced", "restarted"}.
 * On failure nothing outside the staging directory changed, and the
 * staging directory is gone.
 */
int disk_restore(struct addon_ctx *ctx, snap_source_fn source, void *user, const char *name,
		 bool force, json_t **result, struct miren_error *err);

/* At daemon start: finishes or rolls back a swap a crash interrupted and
 * removes staging directories. */
void disk_recover(struct addon_ctx *ctx);

/* Disk names: lowercase letters, digits, '.', '_' and '-', starting with a
 * letter or digit, at most 128 characters. */
int disk_name_check(const char *name, struct miren_error *err);

#endif
