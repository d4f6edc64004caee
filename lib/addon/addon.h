/*
 * The addon framework: a registry of addon definitions, the providers that
 * implement them as ordered idempotent steps, and the reconciler thread
 * that drives each instance
 *
 *   pending -> provisioning -> active      (or error, with a message)
 *   deprovisioning -> (gone)
 *
 * recording each completed step in the store before running the next, so
 * a daemon killed at any instant resumes where it was and converges with
 * no duplicate and no orphan.  Every resource name comes from the
 * instance's stored id (never from a secret) and is recorded before the
 * resource is created.
 *
 * One reconciler thread runs every step of every instance, one at a time
 * (a second one only prepares spares, see addon_def.idle):
 * that serialises, for instance, the creation and removal of the shared
 * server and its tenant count without further locking.
 *
 * A step that fails for a cause a retry can fix (the code says so:
 * MIREN_EUNAVAIL, MIREN_EIO, MIREN_EDB, MIREN_EINTERNAL; see
 * addon_err_retryable) is run again after a capped exponential backoff
 * (1 s doubling to 30 s, ADDON_RETRY_MAX attempts), the instance staying
 * in provisioning with "retrying ..." as its message; any other code, or
 * the last attempt, ends in error with the cause and its hint.  Removal
 * steps are retried the same way, without a limit.
 */
#ifndef MIREN_ADDON_H
#define MIREN_ADDON_H

#include <jansson.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <sys/types.h>

#include "store/store.h"
#include "supervise/supervise.h"
#include "util/err.h"

struct volumes;

struct addon_variant {
	const char *name;
	const char *description;
	const char *details; /* a paragraph for `miren addon variants` */
};

struct reconciler;

/* What a step may use.  Owned by the reconciler. */
struct addon_ctx {
	struct store *store;
	struct sv *sv;
	const char *data_dir;
	uid_t uid; /* run servers as; (uid_t)-1: as the daemon */
	gid_t gid;
	/* The storage behind disks (lib/disk/volume.h): sized ext4 images or
	 * plain directories. */
	struct volumes *volumes;
	uint32_t pool_base; /* address pool, host order */
	uint32_t pool_size;
	/* Set by reconciler_stop (NULL outside a reconciler): long waits in
	 * steps end early when it is true, and the step then fails; the
	 * reconciler records nothing for a step that failed while stopping, so
	 * the next daemon runs it again. */
	const atomic_bool *stopping;
};

/* How many times a provisioning step is tried for a retryable cause. */
#define ADDON_RETRY_MAX 8

/* Whether a step failure with this code may go away by itself (a server
 * still starting, a leftover of a dead daemon still at work, a busy
 * store), so that running the step again is worth it. */
bool addon_err_retryable(enum miren_err code);

/* One instance as a step sees it: the record plus its parsed state. */
struct addon_inst {
	struct addon_rec rec;
	json_t *state; /* steps read and write it; saved after each step */
	/* What the store holds as far as the reconciler knows: the expected
	 * side of its compare-and-set writes (store_addon_update). */
	char *stored_status;
	int stored_step;
};

/* Notes inst->rec's status and step as what the store holds. */
void addon_inst_stored(struct addon_inst *inst);

struct addon_step {
	const char *name;
	/* Returns 0, or a miren_err with err filled: the instance goes to
	 * error with err's message (provision) or is retried (deprovision). */
	int (*run)(struct addon_ctx *ctx, struct addon_inst *inst, struct miren_error *err);
};

struct addon_def {
	const char *name;
	const char *description;
	const struct addon_variant *variants;
	size_t n_variants;
	const char *default_variant;
	/* Versions this host can run, newest (the default) first. */
	size_t (*versions)(char out[][16], size_t max);
	const struct addon_step *(*provision_steps)(const char *variant, size_t *n);
	const struct addon_step *(*deprovision_steps)(const char *variant, size_t *n);
	/* The env an active instance injects; caller frees with env_recs_free. */
	int (*env)(struct addon_ctx *ctx, struct addon_inst *inst, struct env_rec **out,
		   size_t *n, struct miren_error *err);
	/* Called once at daemon start, before any step: restart or adopt every
	 * server the store knows. */
	void (*resume)(struct addon_ctx *ctx);
	/* Called on the reconciler's second thread after a pass that changed
	 * something (and once at start), while provisioning goes on: prepares
	 * what makes the next provisioning fast.  Must tolerate running
	 * alongside any step.  May be NULL. */
	void (*idle)(struct addon_ctx *ctx);
	/* Called by reconciler_stop from another thread before it waits for
	 * the reconciler's threads: ends the helper processes a step may be
	 * waiting for (initdb), so that the daemon stops promptly.  The step
	 * then fails and is run again by the next daemon.  May be NULL. */
	void (*interrupt)(struct addon_ctx *ctx);
	/* Extra facts for `miren addon list` (no secrets); may be NULL. */
	json_t *(*describe)(struct addon_ctx *ctx, struct addon_inst *inst);
};

/* The registry. */
const struct addon_def *addon_find(const char *name);
const struct addon_def *const *addon_all(void);
const struct addon_variant *addon_variant_find(const struct addon_def *def, const char *variant);

/*
 * Checks "name" and "variant" (NULL: the default) and "version" (NULL: the
 * newest) against the registry.  On success returns 0 with the definition
 * and the effective variant/version; otherwise MIREN_EINVAL (or
 * MIREN_ENOTFOUND for an unknown addon) with a message listing the valid
 * choices.
 */
int addon_resolve(const char *name, const char *variant, const char *version,
		  const struct addon_def **def, const char **variant_out, char version_out[16],
		  struct miren_error *err);

/* Called by the reconciler (on its thread) when an app's addons changed:
 * one became active, went to error, or was removed. */
typedef void (*addon_changed_fn)(void *user, const char *app);

struct reconciler *reconciler_start(const struct addon_ctx *ctx, addon_changed_fn changed,
				    void *user);
/* Asks the thread to look for work now. */
void reconciler_kick(struct reconciler *r);
/* Stops the threads: sets ctx.stopping, calls every interrupt hook, and
 * waits for the step in progress to end or fail (servers keep running). */
void reconciler_stop(struct reconciler *r);

/* The JSON of an instance for the API (no secrets). */
json_t *addon_inst_json(struct reconciler *r, const struct addon_rec *rec);

#endif
