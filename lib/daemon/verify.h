/*
 * Verified backups: a backup of an app's addon restored into a scratch
 * server (lib/addon/scratch.h) off the app's path, where the engine's own
 * checker runs over it; the outcome is recorded.  Lock scope: none of the
 * app's or the disk's (the scratch server works on a copy).
 *
 * Records (the store's settings, no secrets):
 *   "verify:<app>/<addon>"  {"last_verified": {"id","at","seconds"} | null,
 *                            "last_failure": {"id","at","message"} | null,
 *                            "last": the newest of the two}
 *   "verify:backup:<id>"    {"ok", "at", "message" (failures)}
 * ("at": unix seconds).  A failed verification newer than the last
 * success is an error `addon list` shows.
 */
#ifndef MIREN_DAEMON_VERIFY_H
#define MIREN_DAEMON_VERIFY_H

#include <jansson.h>
#include <stdbool.h>

#include "daemon/daemon.h"

/*
 * Verifies a .miren.zst file on fd as a backup of app's addon (nothing
 * recorded).  *result as scratch_verify's plus "app", "addon".  The
 * checker's MIREN_EINVAL "the data is damaged: ..." and every reading or
 * starting error come back as they are.
 */
enum miren_err backups_verify_file(struct daemon *d, const char *app, const char *addon, int fd,
				   json_t **result, struct miren_error *err);

/*
 * Verifies stored backup id (NULL or "": the newest) of app's addon:
 * read from the backup store (every chunk checked), restored into a
 * scratch server, the engine's checker run, the app's tenant read out
 * (see backups_verify_file), and the outcome recorded.  *result as
 * backups_verify_file's plus "id".  A damaged or missing stored chunk
 * fails with MIREN_EINVAL naming the chunk and every backup that uses it.
 * MIREN_ENOTFOUND: no such app, addon or backup (of this app's addon).
 * The schedule calls it after each scheduled backup.
 */
enum miren_err backups_verify(struct daemon *d, const char *app, const char *addon, const char *id,
			      json_t **result, struct miren_error *err);

/*
 * Records the outcome of verifying backup id of app's addon: rc 0 (ok,
 * result: scratch_verify's) or the error in why.
 */
void backups_verify_record(struct daemon *d, const char *app, const char *addon, const char *id,
			   enum miren_err rc, const json_t *result, const struct miren_error *why);

/* The verification record of app's addon (see above; an object with
 * nulls when none).  Caller decrefs. */
json_t *backups_verification(struct daemon *d, const char *app, const char *addon);
/* The record of backup id: {"id","ok","at","message"|"seconds"} or NULL
 * when it was never verified.  Caller decrefs. */
json_t *backups_verification_of(struct daemon *d, const char *id);
/* Whether backup id's last verification passed (retention keeps the
 * newest such backup). */
bool backups_verified(struct daemon *d, const char *id);
/* Forgets backup id's record (call when the backup is removed). */
void backups_verification_forget(struct daemon *d, const char *id);

#endif
