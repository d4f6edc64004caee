/*
 * The daemon's core: opens the data directory (store, supervisor, addon
 * reconciler), recovers what a crash left half-done, and closes.  The
 * operations the API offers live in one module per resource, each with
 * its own lock scope (docs/architecture.md, "Module map"):
 *
 *   daemon/apps.h    apps, releases, services (deploy, status, restart, destroy)
 *   daemon/appenv.h  an app's variables
 *   daemon/logs.h    services' logs
 *   daemon/addons.h  the addon catalogue and an app's addons
 *   daemon/disks.h   disks, backups and restores; invariants; state dump
 *
 * Crash safety: a deploy unpacks into <data>/tmp, moves the tree to
 * apps/<app>/releases/<n>, then records release n in the store; on start,
 * daemon_open() removes whatever a crash left half-done (tmp, release
 * directories with no record, directories of apps that no longer exist)
 * and starts the services of every app's current release.
 *
 * Results are JSON objects (jansson, shaped by lib/api/shape.h) the
 * caller owns; failures fill err.
 */
#ifndef MIREN_DAEMON_H
#define MIREN_DAEMON_H

#include <jansson.h>
#include <stdbool.h>

#include "util/err.h"

struct daemon;
struct data_paths;

struct daemon_options {
	const char *data_dir;
	const char *service_user; /* run services as this user when root; NULL: "miren" */
	int keep_releases;        /* releases kept per app, the current one included; 0: 5 */
	const char *addr_pool;    /* addon server addresses, CIDR; NULL: 127.77.0.0/16 */
};

enum miren_err daemon_open(const struct daemon_options *opts, struct daemon **out,
			   struct miren_error *err);
/* Stops every service and closes the store. */
void daemon_close(struct daemon *d);
/* The paths of its data directory (owned by d). */
const struct data_paths *daemon_paths(const struct daemon *d);
/* Records an HTTPS listener (its address and certificate fingerprint) for
 * daemon_server_info; called before the API serves requests. */
void daemon_add_listener(struct daemon *d, const char *address, const char *fingerprint);
/* What `miren server info` shows: {"version", "data_dir", "socket",
 * "listen": [{"address", "fingerprint"}], "disks": disks_mode's}.  The
 * caller decrefs. */
json_t *daemon_server_info(struct daemon *d);

/* Ends every wait for an addon's removal at once (calls that wait fail
 * with MIREN_EUNAVAIL): the daemon is stopping.  Call before stopping the
 * API server. */
void daemon_stop_waits(struct daemon *d);

#endif
