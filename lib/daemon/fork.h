/*
 * Forks: `miren addon fork ADDON -a APP --to OTHER` gives app OTHER an
 * addon of its own holding a copy of APP's data in that addon, as it is
 * now or (--at) as it was at an instant of the point-in-time window.
 * From then on it is an addon of OTHER like any other.  Lock scope:
 * OTHER's lock while the fork is checked and recorded (released while
 * the reconciler makes and fills it); APP's addon is only read.
 */
#ifndef MIREN_DAEMON_FORK_H
#define MIREN_DAEMON_FORK_H

#include <jansson.h>

#include "addon/addon.h"
#include "daemon/daemon.h"

/*
 * Forks app's addon `addon` into app `to` (which must exist and not have
 * that addon), as variant `variant` (NULL: the one app's addon has), from
 * now (at NULL) or from the instant `at` (when_parse: "2026-11-30
 * 12:34:56+00", "10m-ago"; engines with point-in-time recovery only).
 * Records `to`'s new instance with its source (store.h: addon_rec.fork),
 * which the reconciler provisions and fills (forks_fill) before it
 * becomes active, and waits until it is.  Refused before any change:
 * MIREN_ENOTFOUND (no such app, or app has no such addon), MIREN_EINVAL
 * (to is app or missing, an unknown variant, a time that is no time or
 * outside the window, an engine that cannot fork or cannot fork from a
 * point in time), MIREN_EEXISTS (to has the addon already),
 * MIREN_ECONFLICT (app's addon is not active).  A fork whose fill fails
 * is removed again (MIREN_EIO with the cause; `to` is as it was).
 * *result: {"app" (to),"addon","variant","id","from_app","from_variant",
 * "at" (the instant, text, or null: now),"status"} (caller decrefs).
 */
enum miren_err forks_fork(struct daemon *d, const char *app, const char *addon, const char *to,
			  const char *variant, const char *at, json_t **result,
			  struct miren_error *err);

/* The reconciler's fill (addon_fill_fn; user: the daemon): dumps the
 * source named by inst->rec.fork (the live tenant of the app forked from,
 * or the tenant read out of a scratch server recovered to the instant)
 * into tmp/ and loads it into inst. */
enum miren_err forks_fill(void *user, const struct addon_def *def, struct addon_inst *inst,
			  struct miren_error *err);

/* Removes app's forks that ended in error with no `addon fork` waiting
 * for them (their fill failed after a daemon restart).  Caller holds the
 * app's lock (the reconciler's callback). */
void forks_settle(struct daemon *d, const char *app);
/* At start, after the reconciler started: forks_settle (under its lock)
 * for every app with a fork in error (a daemon killed between the error
 * and the callback). */
void forks_recover(struct daemon *d);

#endif
