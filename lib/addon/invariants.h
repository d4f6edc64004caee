/*
 * The daemon's invariants, as `miren debug invariants` shows them: what the
 * state store, the disks, the supervised servers and the tenants on the
 * shared server must say of each other once nothing is in motion.
 */
#ifndef MIREN_ADDON_INVARIANTS_H
#define MIREN_ADDON_INVARIANTS_H

#include <jansson.h>

#include "addon/addon.h"

/*
 * Checks, beyond the store's own invariants (store_invariants: addons ↔
 * apps, addons ↔ servers and variables, servers ↔ disk records), when no
 * addon is in motion: disk directories are exactly the disk records (no
 * staging left), every server runs under the supervisor, and each shared
 * server holds exactly the databases and roles of its active tenants.
 * *result = {"violations": [message...], "in_motion": N, "checks": [what
 * was checked...]} (to json_decref); N > 0 means the checks that hold only
 * at rest were skipped.  Returns 0 whether or not something is violated;
 * MIREN_EDB when the store cannot be read.
 */
enum miren_err addon_invariants_check(struct addon_ctx *ctx, json_t **result,
				      struct miren_error *err);

#endif
