/*
 * The state store: every durable fact of the daemon, and the only module
 * that knows SQL.  The embedded engine is SQLite in WAL mode with
 * synchronous=FULL; the interface below is engine-neutral so that a
 * distributed engine can replace it for a multi-node control plane.
 *
 * Every function returns 0 or a miren_err (MIREN_ENOTFOUND when the thing
 * asked for is absent, MIREN_EDB when the engine failed) and fills err
 * when one is given.  Records handed out are owned by the caller and freed
 * with the matching *_free function.  A failed call changes nothing.
 *
 * Thread safety: one struct store may be used from any thread; calls are
 * serialised inside.
 */
#ifndef MIREN_STORE_H
#define MIREN_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/err.h"

struct store;

struct app_rec {
	char *name;
	int64_t created_at;  /* unix seconds */
	int current_release; /* 0: never deployed */
};

struct release_rec {
	int n;
	int64_t created_at;
	char *source_sha256;
	char *config_json;    /* the app config of this release (app_config_to_json) */
	long long size_bytes; /* its directory's size on disk when made (du); 0: not known */
	int rollback_of;      /* the release a rollback copied; 0: a deploy made it */
};

enum env_source { ENV_SOURCE_CONFIG, ENV_SOURCE_MANUAL, ENV_SOURCE_ADDON };

struct env_rec {
	char *key;
	char *value;
	char *service; /* "" for every service of the app */
	enum env_source source;
	bool sensitive;
	char *description; /* "" when none */
};

/* Opens (creating 0600 if needed) and migrates the store at path. */
enum miren_err store_open(const char *path, struct store **out, struct miren_error *err);
void store_close(struct store *st);
/* The schema version the open store is at. */
int store_schema_version(struct store *st);

enum miren_err store_app_list(struct store *st, struct app_rec **out, size_t *n,
			      struct miren_error *err);
enum miren_err store_app_get(struct store *st, const char *name, struct app_rec *out,
			     struct miren_error *err);
/* Creates the app if it does not exist; 0 either way. */
enum miren_err store_app_ensure(struct store *st, const char *name, struct miren_error *err);
/* Deletes the app with its releases and env. MIREN_ENOTFOUND if absent. */
enum miren_err store_app_delete(struct store *st, const char *name, struct miren_error *err);
void app_rec_release(struct app_rec *r);
void app_recs_free(struct app_rec *r, size_t n);

/*
 * Records release rel->n of app (creating the app if needed) with rel's
 * source_sha256, config_json, size_bytes and rollback_of (created_at is
 * now) and makes it the current one, in one transaction.  rel->n must be
 * store_release_next().
 */
enum miren_err store_release_add(struct store *st, const char *app, const struct release_rec *rel,
				 struct miren_error *err);
/* The number the next release of app gets (max+1, 1 for a new app). */
enum miren_err store_release_next(struct store *st, const char *app, int *n,
				  struct miren_error *err);
enum miren_err store_release_get(struct store *st, const char *app, int n, struct release_rec *out,
				 struct miren_error *err);
/* Every release of app, newest first (*out to free with
 * release_recs_free; none: *n 0). */
enum miren_err store_release_list(struct store *st, const char *app, struct release_rec **out,
				  size_t *n, struct miren_error *err);
/* Release numbers of app, ascending. */
enum miren_err store_release_numbers(struct store *st, const char *app, int **out, size_t *n,
				     struct miren_error *err);
/* Forgets releases of app numbered below keep_from. */
enum miren_err store_release_prune(struct store *st, const char *app, int keep_from,
				   struct miren_error *err);
void release_rec_release(struct release_rec *r);
void release_recs_free(struct release_rec *r, size_t n);

/* Env values set by hand or by addons (config env lives in the release). */
enum miren_err store_env_list(struct store *st, const char *app, struct env_rec **out, size_t *n,
			      struct miren_error *err);
enum miren_err store_env_set(struct store *st, const char *app, const struct env_rec *rec,
			     struct miren_error *err);
/* Deletes key of the given source for app.  MIREN_ENOTFOUND if absent. */
enum miren_err store_env_delete(struct store *st, const char *app, const char *key,
				enum env_source source, struct miren_error *err);
void env_recs_free(struct env_rec *r, size_t n);
const char *env_source_name(enum env_source s);

/*
 * The closed sets of words the store records, as enums with name/parse
 * functions.  The store refuses any other word (migration 3: triggers that
 * act as CHECK constraints, since SQLite cannot add a CHECK to a table
 * without rebuilding it).  Records keep the words as strings; compare them
 * through *_parse.  *_parse returns -1 for a word outside the set (also
 * for NULL); *_name returns "unknown" for a value outside it.
 */
enum addon_status {
	ADDON_PENDING,
	ADDON_PROVISIONING,
	ADDON_ACTIVE,
	ADDON_ERROR,
	ADDON_DEPROVISIONING,
};
enum addon_source { ADDON_SOURCE_CONFIG, ADDON_SOURCE_CLI };
enum server_kind { SERVER_SMALL, SERVER_SHARED };
enum disk_status { DISK_IN_USE, DISK_UNUSED, DISK_DELETING };

const char *addon_status_name(enum addon_status s);
int addon_status_parse(const char *name);
const char *addon_source_name(enum addon_source s);
int addon_source_parse(const char *name);
const char *server_kind_name(enum server_kind k);
int server_kind_parse(const char *name);
const char *disk_status_name(enum disk_status s);
int disk_status_parse(const char *name);
int env_source_parse(const char *name);

/* --- addons ------------------------------------------------------------
 * An addon instance is one addon attached to one app.  Its provider's
 * progress is (status, step): step counts the completed steps of the
 * current operation, and state_json holds what the steps recorded (resource
 * names, secrets).  Servers are the processes addons run on (one per
 * `small` addon, one for every `shared` one); disks are their directories.
 */

struct addon_rec {
	char *id; /* short, random, stable: names every resource */
	char *app;
	char *addon; /* the addon's name, as the registry knows it */
	char *variant;
	char *version;
	char *status; /* pending, provisioning, active, error, deprovisioning */
	int step;
	char *message;    /* the error, when status is error (or a note while
			   * retrying) */
	char *detail;     /* the error's cause ("" when none) */
	char *hint;       /* what to do about it ("" when none) */
	char *state_json; /* the provider's own state: opaque text to the store */
	char *source;     /* "config" (app.toml) or "cli" */
	int64_t created_at;
	char *server; /* the server it runs on ("" before one is planned) */
	/* When its current credentials were issued (unix seconds; 0: not
	 * yet, or not known): set by store_addon_activate and
	 * store_addon_credentials_issued. */
	int64_t credentials_at;
	/* Where a forked instance's data comes from (`miren addon fork`):
	 * JSON text the daemon writes with the instance and nothing changes
	 * later; "" for an instance that is not a fork.  The reconciler
	 * loads it (addon_fill_fn) before the instance becomes active. */
	char *fork;
};

struct server_rec {
	char *id;
	char *engine; /* the addon that runs it (its provider's name) */
	char *kind;   /* the variant that made it, e.g. "small" or "shared" */
	char *disk;
	char *address;
	int port;
	char *state_json; /* the provider's own state: opaque text to the store */
	int64_t created_at;
};

struct disk_rec {
	char *name;
	long long size_bytes; /* the declared size; 0: unknown */
	char *created_by;
	char *status;
	int64_t created_at;
};

/* Inserts a new instance.  MIREN_EEXISTS when app already has this addon. */
enum miren_err store_addon_add(struct store *st, const struct addon_rec *rec,
			       struct miren_error *err);
/* Every instance (app NULL) or those of app, ordered by app, addon. */
enum miren_err store_addon_list(struct store *st, const char *app, struct addon_rec **out,
				size_t *n, struct miren_error *err);
enum miren_err store_addon_get(struct store *st, const char *app, const char *addon,
			       struct addon_rec *out, struct miren_error *err);
/*
 * Status writes are compare-and-set: each names the (status, step) it read,
 * and is refused with MIREN_ECONFLICT ("moved from A to B meanwhile") when
 * another writer moved the instance first, so no writer (the reconciler,
 * an API call) ever overwrites a transition it has not seen.  The loser
 * re-reads and decides again.  MIREN_ENOTFOUND when the instance is gone.
 *
 * The reconciler's write: status, step, message, state_json and server of
 * rec->id when the row is (expect_status, expect_step).  On
 * MIREN_ECONFLICT state_json and server alone are still recorded: they
 * hold the names of what the last step made, which whoever won (a
 * removal) needs to undo it.  Only the reconciler writes state_json and
 * server.
 */
enum miren_err store_addon_update(struct store *st, const struct addon_rec *rec,
				  const char *expect_status, int expect_step,
				  struct miren_error *err);
/* An API call's write: status, step and message of id (never its state),
 * when the row is (expect_status, expect_step). */
enum miren_err store_addon_set_status(struct store *st, const char *id, const char *expect_status,
				      int expect_step, const char *status, int step,
				      const char *message, struct miren_error *err);
/* Deletes the instance, if it is in expect_status (else MIREN_ECONFLICT),
 * and every env value it injected, in one transaction. */
enum miren_err store_addon_delete(struct store *st, const char *id, const char *expect_status,
				  struct miren_error *err);
/*
 * Moves the instance from (expect_status, expect_step) to rec's status,
 * step, message and state_json and replaces the app's addon env with vars,
 * in one transaction, so the app never sees an active addon without its
 * env.  MIREN_ECONFLICT (nothing written) when the instance moved.
 */
enum miren_err store_addon_activate(struct store *st, const struct addon_rec *rec,
				    const char *expect_status, int expect_step,
				    const struct env_rec *vars, size_t n_vars,
				    struct miren_error *err);
/* Records that id's current credentials were issued at (unix seconds;
 * 0: now), e.g. by a rotation.  MIREN_ENOTFOUND when id is gone. */
enum miren_err store_addon_credentials_issued(struct store *st, const char *id, int64_t at,
					      struct miren_error *err);
/* How many instances use server_id (their server column), counting the
 * instance of a variant change in motion (store_change_*) as one. */
enum miren_err store_addon_count_on_server(struct store *st, const char *server_id, int *count,
					   struct miren_error *err);
void addon_rec_release(struct addon_rec *r);
void addon_recs_free(struct addon_rec *r, size_t n);

/* --- variant changes (store_change.c) ---------------------------------
 * A variant change in motion (lib/daemon/change.c): the app's instance
 * (addon_id, the addons row) and the instance beside it, which the row
 * here holds: before the switch the new one being made and filled
 * (phases provisioning, copying, paused), after it the old one being
 * removed (phase switched).  step counts the completed provisioning steps
 * of the new instance, or after the switch the removal steps of the old
 * one.  Its server counts as used (store_addon_count_on_server), and
 * while one exists the store's settled invariants are not checked.
 */
struct change_rec {
	char *addon_id; /* the app's instance (addons.id) */
	char *app;
	char *addon;
	char *phase; /* provisioning, copying, paused, switched */
	int step;
	char *id;                /* names the new instance's resources */
	char *variant, *version; /* of the instance held here */
	char *from_variant, *to_variant;
	char *state_json; /* the instance's state (its provider's) */
	char *server;
	bool online; /* the data is being copied while the app writes */
	int64_t created_at;
};
/* Inserts rec.  MIREN_EEXISTS when addon_id has a change in motion. */
enum miren_err store_change_add(struct store *st, const struct change_rec *rec,
				struct miren_error *err);
/* MIREN_ENOTFOUND when addon_id has none. */
enum miren_err store_change_get(struct store *st, const char *addon_id, struct change_rec *out,
				struct miren_error *err);
/* Every change in motion, oldest first. */
enum miren_err store_change_list(struct store *st, struct change_rec **out, size_t *n,
				 struct miren_error *err);
/* Records rec's phase, step, state_json, server and online. */
enum miren_err store_change_update(struct store *st, const struct change_rec *rec,
				   struct miren_error *err);
enum miren_err store_change_delete(struct store *st, const char *addon_id, struct miren_error *err);
/*
 * The switch, in one transaction: the app's instance `now` (active) takes
 * the new instance's variant, version, state_json and server (its
 * credentials issued now), the app's env of that instance becomes vars,
 * and the change row takes the old instance (old: variant, version,
 * state_json, server; phase switched, step 0).  MIREN_ECONFLICT, nothing
 * written, when the instance is no longer active or the change not
 * paused.
 */
enum miren_err store_change_switch(struct store *st, const struct addon_rec *now,
				   const struct change_rec *old, const struct env_rec *vars,
				   size_t n_vars, struct miren_error *err);
void change_rec_release(struct change_rec *r);
void change_recs_free(struct change_rec *r, size_t n);

/* Inserts the server unless one with its id exists (0 either way). */
enum miren_err store_server_add(struct store *st, const struct server_rec *rec,
				struct miren_error *err);
enum miren_err store_server_get(struct store *st, const char *id, struct server_rec *out,
				struct miren_error *err);
/* The oldest server of engine and kind, MIREN_ENOTFOUND if none. */
enum miren_err store_server_find_kind(struct store *st, const char *engine, const char *kind,
				      struct server_rec *out, struct miren_error *err);
enum miren_err store_server_list(struct store *st, struct server_rec **out, size_t *n,
				 struct miren_error *err);
enum miren_err store_server_update_state(struct store *st, const char *id, const char *state_json,
					 struct miren_error *err);
enum miren_err store_server_delete(struct store *st, const char *id, struct miren_error *err);
/* Addresses of every server, for the address pool. */
enum miren_err store_server_addresses(struct store *st, char ***out, size_t *n,
				      struct miren_error *err);
void server_rec_release(struct server_rec *r);
void server_recs_free(struct server_rec *r, size_t n);

/* Inserts or replaces the disk record. */
enum miren_err store_disk_put(struct store *st, const struct disk_rec *rec,
			      struct miren_error *err);
enum miren_err store_disk_get(struct store *st, const char *name, struct disk_rec *out,
			      struct miren_error *err);
enum miren_err store_disk_list(struct store *st, struct disk_rec **out, size_t *n,
			       struct miren_error *err);
enum miren_err store_disk_delete(struct store *st, const char *name, struct miren_error *err);
void disk_rec_release(struct disk_rec *r);
void disk_recs_free(struct disk_rec *r, size_t n);

/*
 * Checks what the records must say of each other, in one read transaction:
 * every addon not being removed belongs to an existing app and has a known
 * status; an active addon has its server and its variables; addon
 * variables belong to an active (or departing) addon; a small server has
 * one addon; an addon in error holds no small server.  When no addon is in
 * motion (*in_motion = how many are pending, provisioning or
 * deprovisioning is 0), also: every server is used by an addon and has a
 * disk record, every disk "in use" belongs to a server.  *out gets one
 * message per violation (n of them, possibly 0), each and the array to
 * free.  A failure returns MIREN_EDB with nothing in *out.
 */
enum miren_err store_invariants(struct store *st, char ***out, size_t *n, int *in_motion,
				struct miren_error *err);

/* --- backup schedules (store_backup.c) ----------------------------------
 * One per app and addon: a backup every every_s seconds, keep backups
 * kept; set from app.toml (source "config") or the CLI ("cli"); the
 * outcome of its runs.  Deleted with the app.
 */
struct schedule_rec {
	char *app;
	char *addon;
	int64_t every_s;
	int keep;
	char *source; /* "config" or "cli" */
	int64_t created_at;
	int64_t last_ok_at;  /* unix seconds of the last scheduled backup taken; 0: none */
	int64_t last_try_at; /* of the last attempt (a failed one when > last_ok_at) */
	char *last_error;    /* "" unless the last attempt failed */
	char *last_id;       /* the last scheduled backup's id ("" none) */
};

/* Inserts or replaces the schedule of rec->app, rec->addon (every_s, keep,
 * source); what its runs recorded is kept, and created_at too. */
enum miren_err store_schedule_put(struct store *st, const struct schedule_rec *rec,
				  struct miren_error *err);
enum miren_err store_schedule_get(struct store *st, const char *app, const char *addon,
				  struct schedule_rec *out, struct miren_error *err);
/* Every schedule (app NULL) or app's, ordered by app, addon. */
enum miren_err store_schedule_list(struct store *st, const char *app, struct schedule_rec **out,
				   size_t *n, struct miren_error *err);
/* MIREN_ENOTFOUND when there is none. */
enum miren_err store_schedule_delete(struct store *st, const char *app, const char *addon,
				     struct miren_error *err);
/* Records an attempt at `at`: a success (id not NULL: last_ok_at, last_id,
 * error cleared) or a failure (id NULL: error). */
enum miren_err store_schedule_ran(struct store *st, const char *app, const char *addon, int64_t at,
				  const char *id, const char *error, struct miren_error *err);
void schedule_rec_release(struct schedule_rec *r);
void schedule_recs_free(struct schedule_rec *r, size_t n);

/* An API token (miren auth token): only the SHA-256 of its secret is kept. */
struct token_rec {
	char *name;
	char *hash;         /* hex SHA-256 of the token */
	char *role;         /* "admin", "deployer" or "reader" */
	char *apps;         /* JSON array of the apps it may act on; "[]": every app */
	int64_t created_at; /* unix seconds */
	int64_t expires_at; /* 0: never */
	int64_t revoked_at; /* 0: not revoked */
	int64_t last_used_at;
};

/* Adds a token; MIREN_EEXISTS when one of that name exists (revoked or
 * not: names are never reused, so logs stay unambiguous). */
enum miren_err store_token_insert(struct store *st, const struct token_rec *rec,
				  struct miren_error *err);
/* The token whose hash is hash; MIREN_ENOTFOUND when none. */
enum miren_err store_token_by_hash(struct store *st, const char *hash, struct token_rec *out,
				   struct miren_error *err);
/* Every token, by name. */
enum miren_err store_token_list(struct store *st, struct token_rec **out, size_t *n,
				struct miren_error *err);
/* Marks name revoked at `at`; MIREN_ENOTFOUND when there is no such token. */
enum miren_err store_token_revoke(struct store *st, const char *name, int64_t at,
				  struct miren_error *err);
/* Records that the token of hash was used at `at`. */
enum miren_err store_token_used(struct store *st, const char *hash, int64_t at,
				struct miren_error *err);
void token_rec_release(struct token_rec *r);
void token_recs_free(struct token_rec *r, size_t n);

/* Daemon-wide values (e.g. the template clusters' password). */
enum miren_err store_setting_get(struct store *st, const char *key, char **value,
				 struct miren_error *err);
/* Stores value unless key has one; *value_out gets the value in force. */
enum miren_err store_setting_ensure(struct store *st, const char *key, const char *value,
				    char **value_out, struct miren_error *err);
/* Sets key to value (NULL: removes it). */
enum miren_err store_setting_set(struct store *st, const char *key, const char *value,
				 struct miren_error *err);

#endif
