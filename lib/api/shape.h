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
struct app_rec;
struct disk_rec;
struct env_rec;
struct sv_status;

/* What stands for a sensitive value in default output. */
#define SHAPE_MASK "********"

/* {"name","command","port"[,"url"],"state","pid","restarts",...}: st NULL
 * when the supervisor does not know the service ("stopped", or
 * "waiting-for-addons" when !addons_ready). */
json_t *shape_service(const char *name, const char *command, int port,
		      const struct sv_status *st, bool addons_ready);
/* {"name","release","created_at","services","running"} of app list. */
json_t *shape_app_summary(const struct app_rec *r, json_t *services);
/* {"name","release","created_at","services","addons"}; takes services, addons. */
json_t *shape_app_status(const struct app_rec *r, const char *app, json_t *services,
			 json_t *addons);
/* {"name","value","service","source","sensitive","description"}; the value
 * of a sensitive variable is SHAPE_MASK unless unmask. */
json_t *shape_env(const struct env_rec *e, bool unmask);
/* {"service","data","offset"} */
json_t *shape_log_slice(const char *service, const char *data, size_t len, long long offset);
/* [{"name","description","details","default"}] */
json_t *shape_variants(const struct addon_def *def);
/* {"name","description","variants","default_variant","versions"} */
json_t *shape_addon_def(const struct addon_def *def);
/* {"name","size","used","status","created_by","created_at"}; used < 0: 0 */
json_t *shape_disk(const struct disk_rec *r, long long used);
/* {"error":{"code","message"[,"hint"]}} */
json_t *shape_error(const struct miren_error *err);

#endif
