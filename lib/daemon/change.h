/*
 * A variant change in place: `miren addon change ADDON:VARIANT -a APP`, or
 * a deploy whose app.toml names another variant of an active addon.  The
 * new instance is provisioned beside the app's own (the variant's own
 * steps), the data copied while the app keeps writing (the engine's
 * copy_start, where it has one), then writes are paused for the rest of
 * the copy (copy_finish, else a dump loaded into the new instance), the
 * app's instance and env switched to the new one in one transaction, the
 * app restarted once, and the old instance removed only after the new one
 * answered.  Every phase is recorded (store_change_*) before the next
 * begins; a failure, or a daemon killed, before the switch leaves the app
 * on the old instance as it was (the copy cancelled, writes let in again,
 * the new instance removed); after the switch the rest is finished.
 * Lock scope: the app's lock for the whole change, and the reconciler held
 * (reconciler_hold) around each step of the new or old instance.
 */
#ifndef MIREN_DAEMON_CHANGE_H
#define MIREN_DAEMON_CHANGE_H

#include <jansson.h>
#include <stdbool.h>

#include "addon/addon.h"
#include "daemon/daemon.h"

/*
 * Changes app's addon `addon` to `variant`, under the app's lock.
 * *result: {"app","addon","from","to","method": "replication"|"dump",
 * "writes_paused_ms","restarted","duration_ms"} (caller decrefs; no
 * secret).  Errors, nothing changed: MIREN_ENOTFOUND (no such app or
 * addon), MIREN_EINVAL (unknown variant, or the engine cannot change
 * variants), MIREN_ECONFLICT (the addon is not active, a rotation is in
 * motion, or it has that variant already); any later failure before the
 * switch is undone and returned.  A failure after the switch (the app's
 * restart, the old instance's removal) is returned with the data on the
 * new variant; what is left is finished at the next start or change.
 */
enum miren_err changes_change(struct daemon *d, const char *app, const char *addon,
			      const char *variant, json_t **result, struct miren_error *err);

/*
 * The same for a caller that holds app's lock and restarts the app itself
 * (a deploy: its start of the new release is the one restart): stops
 * after the switch; *switched tells whether it got there, and then the
 * caller calls changes_finish_locked once the app runs on the new env.
 */
enum miren_err changes_change_locked(struct daemon *d, const char *app, const char *addon,
				     const char *variant, bool *switched, json_t **result,
				     struct miren_error *err);
/* After the switch: restarts the app unless restarted says it was, waits
 * for the new instance to answer, removes the old one.  App locked. */
enum miren_err changes_finish_locked(struct daemon *d, const char *app, const char *addon,
				     bool restarted, struct miren_error *err);

/* Whether addon (an instance the store holds) can change variants. */
bool changes_supported(const char *addon);
/* MIREN_EINVAL: def cannot change app's addon in place; the hint gives
 * the way by hand (backup, destroy, deploy with the variant, restore). */
enum miren_err changes_unsupported(const struct addon_def *def, const char *app,
				   struct miren_error *err);

/* At daemon start (after the apps started; wait true) and on the
 * scheduler's pass (wait false: an app whose lock is taken, by a change
 * in progress say, is left for the next pass): every change a crash or a
 * failure left is undone (before its switch) or finished (after it).
 * Logged. */
void changes_recover(struct daemon *d, bool wait);

#endif
