/*
 * Disk backup and restore for addon disks: crash-consistent snapshots of a
 * disk whose database server keeps running (its engine's own online backup,
 * through the provider's hooks: writers do not stop), and verified
 * restores that swap a disk only after every checksum matched and the
 * engine proved the copy.  The format itself is lib/disk/snapshot.h.
 */
#ifndef MIREN_DISK_OPS_H
#define MIREN_DISK_OPS_H

#include "addon/addon.h"
#include "disk/snapshot.h"

#include <stdatomic.h>

struct disk_backup_job;

/* How long an operation on a disk waits for another one to finish. */
#define DISK_LOCK_WAIT_MS 10000

/*
 * The disk lock: every operation on a disk (backup, restore, removal of an
 * addon's disk) holds it for the disk's name.  Waits up to wait_ms for
 * another holder; then MIREN_ECONFLICT "another operation on disk 'NAME' is
 * in progress (WHAT)" where WHAT is the holder's `what` ("a backup").
 * Held by the operation, not the thread: any thread may disk_unlock().
 */
enum miren_err disk_lock(const char *name, const char *what, int wait_ms, struct miren_error *err);
void disk_unlock(const char *name);
/*
 * The lock for work that gives way to every other operation on the disk
 * (a background backup): taken only when free (else MIREN_ECONFLICT at
 * once); while it is held, any disk_lock of the same name sets *yield
 * (cleared here) and waits, so the holder must watch *yield, end its work
 * promptly and disk_unlock.
 */
enum miren_err disk_lock_yielding(const char *name, const char *what, atomic_bool *yield,
				  struct miren_error *err);

/*
 * Checks that disk `name` exists, takes its lock (held until
 * disk_backup_free) and starts the snapshot's consistency point, so that
 * errors come before any byte is streamed.  A disk whose server the
 * supervisor runs or will restart is backed up online (after waiting for
 * the server to answer); only a disk on which no server runs is copied as
 * is, and that copy fails if a server starts meanwhile.  Returns 0 with
 * *out, or a miren_err.
 */
enum miren_err disk_backup_prepare(struct addon_ctx *ctx, const char *name,
				   struct disk_backup_job **out, struct miren_error *err);
/* The same for a background backup that gives way (disk_lock_yielding):
 * fails at once while another operation holds the disk, and *yield turns
 * true when one asks for it meanwhile; the caller's sink must then fail,
 * so that disk_backup_run ends and disk_backup_free releases the disk.
 * Waits for the server to answer with ctx's stopping flag: pass a ctx
 * whose stopping is yield (or turns true with it). */
enum miren_err disk_backup_prepare_yielding(struct addon_ctx *ctx, const char *name,
					    atomic_bool *yield, struct disk_backup_job **out,
					    struct miren_error *err);
/* The header the snapshot will carry (owned by the job). */
const json_t *disk_backup_header(const struct disk_backup_job *job);
/* Sets key of that header to value (taken): what the caller knows of the
 * backup (e.g. the app and addon instance of an addon backup). */
void disk_backup_annotate(struct disk_backup_job *job, const char *key, json_t *value);
/* Makes disk_backup_run write the uncompressed tar stream
 * (snap_writer_new_raw), for the backup store, which compresses chunks. */
void disk_backup_raw(struct disk_backup_job *job);
/* The same, with the sink's file reuse hooks (snap_writer_set_reuse; the
 * backup store's: bstore_reuse), which must outlive the job. */
void disk_backup_reuse(struct disk_backup_job *job, const struct snap_reuse *reuse);
/* Writes the whole snapshot to sink. */
enum miren_err disk_backup_run(struct disk_backup_job *job, snap_sink_fn sink, void *user,
			       struct snap_stats *st, struct miren_error *err);
/* Ends the job (aborting an unfinished online backup). */
void disk_backup_free(struct disk_backup_job *job);

/*
 * Reads a snapshot from source into a staging directory, verifying it
 * whole, then puts it in place as disk `name` (NULL: the name in the
 * snapshot).  The engine of the disk's server (else the one named in the
 * header) proves the copy first (restore_prepare: e.g. of the server's
 * major version, and it starts) before anything is swapped.  A new disk
 * is made with addon_disk_ensure.  Then the disk lock is taken (bounded wait), and
 * abandoned(abandoned_user) (may be NULL) is asked whether the caller gave
 * up; if so nothing changes.  An existing disk is replaced only with
 * force; a server using it is stopped for the swap and started on the new
 * data (restore_start), and its tenants are made to match their records
 * (restore_verify); if that fails, the old disk is put back and its server started
 * again.  The old disk is removed only after that.  Returns {"disk",
 * "source_disk", "method", "files", "bytes", "replaced", "restarted"}.
 * On failure the disk holds what it held before, and the staging
 * directory is gone.
 */
enum miren_err disk_restore(struct addon_ctx *ctx, snap_source_fn source, void *user,
			    const char *name, bool force, bool (*abandoned)(void *),
			    void *abandoned_user, json_t **result, struct miren_error *err);

/* At daemon start: finishes deletions a crash cut short (disks recorded
 * "deleting"), rolls back a swap a crash interrupted (the old disk comes
 * back unless the new one was proven) and removes staging and trash
 * directories, stopping any database server left running in them (every
 * engine's disk_server hook). */
void disk_recover(struct addon_ctx *ctx);

/*
 * Deletes disk `name`, which nothing uses (an orphan a restore under a
 * new name left, say): refused with MIREN_ECONFLICT, naming the server
 * and its apps, when a server record names the disk; MIREN_ENOTFOUND for
 * an unknown disk.  Holds the disk lock.  Crash-safe: the record is
 * marked "deleting" first, then the volume is removed, then the record;
 * disk_recover finishes a deletion a crash cut short.  Returns {"disk",
 * "size_bytes", "created_by"}.
 */
enum miren_err disk_delete(struct addon_ctx *ctx, const char *name, json_t **result,
			   struct miren_error *err);

/* Disk names: lowercase letters, digits, '.', '_' and '-', starting with a
 * letter or digit, at most 128 characters. */
enum miren_err disk_name_check(const char *name, struct miren_error *err);

/* --- sizes and fullness (disk_size.c) -------------------------------------- */

/* A disk this full (percent of its filesystem) is warned about: in `miren
 * debug disk list`, `addon list`, `app status` and the daemon's log. */
#define DISK_WARN_PERCENT 90
/* How often the watcher looks (MIREN_DISK_WATCH_MS overrides, >= 100). */
#define DISK_WATCH_MS 30000

/* "disk 'NAME' is 93% full (951 MiB of 1008 MiB)".  Caller frees. */
char *disk_warning_text(const char *name, int percent, uint64_t used, uint64_t size);

/*
 * The storage facts of disk `name` (recorded_size: its record's size, used
 * in dirs mode): {"mode": "ext4"|"dirs", "size", "used", "avail" (bytes;
 * the filesystem's own numbers for an image), "used_percent", "mounted",
 * "device" (a mounted image), "warning" (over DISK_WARN_PERCENT, or an
 * image not mounted)}.  Caller decrefs.
 */
json_t *disk_usage_json(struct addon_ctx *ctx, const char *name, long long recorded_size);

/* Every recorded disk: disk_usage_json plus "name", "status", "created_by",
 * "created_at". */
enum miren_err disk_list(struct addon_ctx *ctx, json_t **result, struct miren_error *err);

/*
 * Grows disk `name` to size_bytes (rounded up to 4 KiB).  An ext4 image
 * grows online when the kernel lets the daemon (volumes_grow_online);
 * otherwise the disk's server is stopped, the disk grown unmounted and the
 * server started again (restore_start).  A directory disk only records the
 * size.  The new size is recorded.  Errors: MIREN_EINVAL for a size out of
 * range or smaller than the disk (shrinking is refused; nothing changes),
 * MIREN_ENOTFOUND for an unknown disk, MIREN_ECONFLICT when another
 * operation holds the disk, MIREN_EIO when a step failed (running it again
 * finishes it).  Returns disk_usage_json plus "name", "previous_size",
 * "online", "server_restarted".
 */
enum miren_err disk_resize(struct addon_ctx *ctx, const char *name, uint64_t size_bytes,
			   json_t **result, struct miren_error *err);

/* A thread that logs, every DISK_WATCH_MS, a warning when a disk goes over
 * DISK_WARN_PERCENT (once, until it is under again).  NULL when it cannot
 * start (logged).  Stop joins it. */
struct disk_watch;
struct disk_watch *disk_watch_start(const struct addon_ctx *ctx);
void disk_watch_stop(struct disk_watch *w);

#endif
