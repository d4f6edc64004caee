/*
 * What `miren addon info` and `miren addon connect` ask of the daemon
 * about one app's addon: the facts of its instance (the engine's own, its
 * disk, backups, credentials, what needs attention) and the client
 * command that connects to it.  Lock scope: none (reads; the engine's
 * hooks open their own connections).
 */
#ifndef MIREN_DAEMON_ADDONINFO_H
#define MIREN_DAEMON_ADDONINFO_H

#include <jansson.h>

#include "daemon/daemon.h"

/*
 * The facts of app's active addon, no secrets:
 * {"app","addon","engine","version","variant","shared","status","server",
 *  "address","disk":{"name","used","size","used_percent"}|null,
 *  "data_bytes","connections","max_connections","uptime_s","started_at",
 *  "last_backup":{"id","created_at"}|null,"last_verified_backup":...|null,
 *  "pitr_window":{"from","to"}|null,"credentials_issued_at","credential_age_s",
 *  "maintenance":[text...],"details":{the engine's describe, no warnings}}
 * A fact the engine cannot give (or a server that does not answer: then
 * a maintenance line says so) is null.  MIREN_ENOTFOUND for no such app
 * or addon, MIREN_ECONFLICT when the addon is not active.
 */
enum miren_err addons_info(struct daemon *d, const char *app, const char *addon, json_t **result,
			   struct miren_error *err);

/*
 * The client that connects to app's active addon as the app:
 * {"argv":[...],"env":{"K":"V"}} -- env holds the credentials, which the
 * caller passes to the client's environment only (never argv, never
 * printed).  command: one statement for the client to run and exit with
 * its status (NULL: interactive).  Errors as addons_info.
 */
enum miren_err addons_connect(struct daemon *d, const char *app, const char *addon,
			      const char *command, json_t **result, struct miren_error *err);

#endif
