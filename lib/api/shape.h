/*
 * JSON shaping: every object the API sends is built here, from the
 * records the daemon's modules hold, so the wire format is in one place.
 * Each function returns a new reference the caller owns.
 */
#ifndef MIREN_API_SHAPE_H
#define MIREN_API_SHAPE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "util/err.h"

struct addon_def;
struct addon_rec;
struct server_rec;
struct app_rec;
struct release_rec;
struct disk_rec;
struct env_rec;
struct sv_status;

/* What stands for a sensitive value in default output. */
#define SHAPE_MASK "********"

/* {"name","command","port"[,"url"],"state","pid","restarts",...}: st NULL
 * when the supervisor does not know the service ("stopped", or
 * "waiting-for-addons" when !addons_ready). */
json_t *shape_service(const char *name, const char *command, int port, const struct sv_status *st,
		      bool addons_ready);
/* {"name","release","created_at","services","running"} of app list. */
json_t *shape_app_summary(const struct app_rec *r, json_t *services);
/* {"name","release","created_at","services","addons","start_held"}; takes
 * services and addons.  start_held: the services wait for an addon to be
 * active, and any that run are an earlier run. */
json_t *shape_app_status(const struct app_rec *r, const char *app, json_t *services, json_t *addons,
			 bool start_held);
/* {"name","value","service","source","sensitive","description"}; the value
 * of a sensitive variable is SHAPE_MASK unless unmask. */
json_t *shape_env(const struct env_rec *e, bool unmask);
/* {"service","data","offset","more"}: more when the log goes on past
 * offset (the slice stopped short of its end). */
json_t *shape_log_slice(const char *service, const char *data, size_t len, long long offset,
			bool more);
/* [{"name","description","details","default"}] */
json_t *shape_variants(const struct addon_def *def);
/* {"name","description","variants","default_variant","versions"} */
json_t *shape_addon_def(const struct addon_def *def);
/* {"name","default_variant","variants"} */
json_t *shape_addon_variants(const struct addon_def *def);
/* {"app","release","unchanged","warnings","services","addons",
 *  "addons_created","addons_retried"}; takes warnings, services, addons,
 *  adds references to created and retried. */
json_t *shape_deploy(const char *app, int release, bool unchanged, json_t *warnings,
		     json_t *services, json_t *addons, json_t *created, json_t *retried);
/* {"release","created_at","source_sha256","size_bytes","current",
 * "rollback_of"}: rollback_of the release a rollback copied, null for a
 * deploy's. */
json_t *shape_release(const struct release_rec *r, bool current);
/* {"app","release","rollback_of","previous","services","addons",
 * "addons_not_restored"}; takes services and addons, not not_restored
 * (the addons rollback_of's app.toml declared that the app no longer
 * has: the caller's still). */
json_t *shape_rollback(const char *app, int release, int rollback_of, int previous,
		       json_t *services, json_t *addons, json_t *not_restored);
/* The records of `miren debug state`: an app with its release numbers
 * (taken), an addon instance, a server, a disk.  Values under a key ending
 * in "password" in a record's state are SHAPE_MASK unless unmask. */
json_t *shape_app_rec(const struct app_rec *r, json_t *releases);
json_t *shape_addon_rec(const struct addon_rec *a, bool unmask);
json_t *shape_server_rec(const struct server_rec *s, bool unmask);
json_t *shape_disk_rec(const struct disk_rec *d);
/* {"schema","apps","addons","servers","disks"}; takes the arrays. */
json_t *shape_state(int schema, json_t *apps, json_t *addons, json_t *servers, json_t *disks);
/* {"error":{"code","message","detail","hint"}} ("" when none) */
json_t *shape_error(const struct miren_error *err);

#endif
