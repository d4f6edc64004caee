/*
 * The addon catalogue and an app's addons.  Lock scope: create and destroy
 * take the app's lock (daemon_int.h); the catalogue and lists take none.
 * Provisioning itself is the reconciler's (lib/addon), which calls back
 * into the daemon when an app's addons changed.
 */
#ifndef MIREN_DAEMON_ADDONS_H
#define MIREN_DAEMON_ADDONS_H

#include <jansson.h>

#include "daemon/daemon.h"

/* [{"name","description","variants":[...],"default_variant","versions"}] */
enum miren_err addons_available(struct daemon *d, json_t **result, struct miren_error *err);
/* {"name","variants":[{"name","description","details","default"}]} */
enum miren_err addons_variants(struct daemon *d, const char *addon, json_t **result,
			       struct miren_error *err);
/* The app's addons: [{"addon","variant","status","message",...}] */
enum miren_err addons_list(struct daemon *d, const char *app, json_t **result,
			   struct miren_error *err);
/* Attaches addon (variant/version NULL: defaults) to app; returns the
 * instance (status pending).  The reconciler provisions it. */
enum miren_err addons_create(struct daemon *d, const char *app, const char *addon,
			     const char *variant, const char *version, json_t **result,
			     struct miren_error *err);
/* Starts removing the addon from app (status deprovisioning), first
 * taking its final backup when final_backup (see backups_final: refused,
 * nothing changed, when it fails) and removing its backup schedule.
 * *result: {"addon","final_backup":{"id",...}|null}. */
enum miren_err addons_destroy(struct daemon *d, const char *app, const char *addon,
			      bool final_backup, json_t **result, struct miren_error *err);

#endif
