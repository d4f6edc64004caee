/*
 * Credential rotation with no failed connection: `miren addon rotate`.
 * New credentials are issued while the old ones still work, the app's env
 * switched and its services restarted on the new ones, and only then are
 * the old ones revoked, so a client that reconnects with the app's env
 * never sees an authentication failure.  Lock scope: the app's lock for
 * the whole rotation (the app is restarted under it).
 */
#ifndef MIREN_DAEMON_ROTATE_H
#define MIREN_DAEMON_ROTATE_H

#include <jansson.h>

#include "daemon/daemon.h"

/*
 * Rotates `credential` ("user" when NULL) of app's addon `addon`; a
 * rotation a crash left unfinished is finished instead ("resumed").
 * *result: {"app","addon","variant","credential","credentials_issued_at",
 * "resumed","restarted"} (caller decrefs; no secret).  Errors:
 * MIREN_ENOTFOUND (no such app or addon), MIREN_ECONFLICT (not active),
 * MIREN_EINVAL (the engine does not rotate that credential, or not
 * without failed connections); a failure after the new credentials were
 * issued leaves both working and the rotation recorded, finished by the
 * next `addon rotate` or daemon start.
 */
enum miren_err rotations_rotate(struct daemon *d, const char *app, const char *addon,
				const char *credential, json_t **result, struct miren_error *err);

/* At daemon start, after the apps started: finishes every rotation a
 * crash left unfinished (logged; a failure is retried by the next
 * `addon rotate` of that addon or the next start). */
void rotations_recover(struct daemon *d);

/* The scheduler's pass: rotates the credentials of every active addon
 * whose app.toml section says rotate_every and whose credentials are at
 * least that old (or whose rotation is unfinished).  Logs what it did. */
void rotations_due(struct daemon *d);

#endif
