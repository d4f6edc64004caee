/*
 * What the files of the miren-postgresql provider share (provider.c: the
 * definition, steps and env; server.c: its servers; disk.c: backup and
 * restore hooks); not an interface for anything outside this directory.
 *
 * Resources and their names, all recorded before they are made:
 *   server row   "s-<id>" (small) or "shared-<8 hex>" (shared), engine
 *                PG_ADDON, port 5432, state {"su_password","version",
 *                "rotated"} (struct pgp_server)
 *   disk         pg-pg-<app>-s<id>-data (small), pg-shared-data-<8 hex>
 *   address      the lowest free one of the pool, on the server row
 *   role, db     pg_ident_for_app(app)
 * An instance's state is {"role","db","password"} (struct pgp_tenant);
 * its server is the framework's field (addon_inst.rec.server).
 */
#ifndef MIREN_ADDON_PG_PROVIDER_H
#define MIREN_ADDON_PG_PROVIDER_H

#include "addon/addon.h"
#include "addon/postgresql/pg.h"

#define PG_PORT 5432
#define READY_TIMEOUT_MS 30000

/* An instance's state (addon_inst.state): strings malloc'd, "" when not
 * planned yet. */
struct pgp_tenant {
	char *role;
	char *db;
	char *password;
};

/* A server's state (server_rec.state_json), as the provider reads it. */
struct pgp_server {
	char *su_password;
	char *version; /* the major version, "15" */
	bool rotated;  /* the superuser has the server's own password */
};
/* Parses srv's state; a missing member is "" / false.  Free with
 * pgp_server_release. */
void pgp_server_parse(const struct server_rec *srv, struct pgp_server *out);
void pgp_server_release(struct pgp_server *s);

/* The state hooks (addon_def.state_parse/state_json/state_free). */
enum miren_err pgp_state_parse(const char *json, void **out, struct miren_error *err);
char *pgp_state_json(const void *state);
void pgp_state_free(void *state);

/* The install of a version string ("15"); MIREN_ENOTFOUND (not retried)
 * with a hint when it is not installed. */
enum miren_err pgp_install_for(const char *version, struct pg_install *out,
			       struct miren_error *err);

/* Makes the server exist, run and answer with its own superuser password
 * (template, clone, start, wait, rotate; each part idempotent).  Unless the
 * caller holds its disk's lock (disk_held), takes it for the slow path;
 * MIREN_EUNAVAIL (worth a retry) while another operation holds it. */
enum miren_err pgp_ensure_server(struct addon_ctx *ctx, const char *server_id, bool disk_held,
				 struct miren_error *err);
/* Starts (or adopts) srv under the supervisor. */
enum miren_err pgp_start_server(struct addon_ctx *ctx, const struct server_rec *srv,
				struct miren_error *err);
/* Removes what a server keeps outside its disk (the socket directory):
 * addon_server_release's cleanup. */
void pgp_server_cleanup(struct addon_ctx *ctx, const struct server_rec *srv);

/* Server hooks (server.c). */
void pgp_resume(struct addon_ctx *ctx);
void pgp_idle(struct addon_ctx *ctx);
/* The kind of filled spare disk (addon_disk_spare_fill) holding a clone
 * of the template of PostgreSQL `major`: "pg<major>".  Caller frees. */
char *pgp_spare_kind(int major);
void pgp_interrupt(struct addon_ctx *ctx);
enum miren_err pgp_ready(struct addon_ctx *ctx, const struct server_rec *srv, int timeout_ms,
			 struct miren_error *err);
pid_t pgp_disk_server(struct addon_ctx *ctx, const char *disk_dir, bool stop);
void pgp_check_server(struct addon_ctx *ctx, const struct server_rec *srv,
		      const struct addon_inst *tenants, size_t n, json_t *violations);

/* Disk hooks (disk.c). */
bool pgp_copy_skip(const char *rel, bool is_dir);
enum miren_err pgp_backup_begin(struct addon_ctx *ctx, const struct server_rec *srv,
				struct addon_backup *b, struct miren_error *err);
enum miren_err pgp_backup_end(struct addon_ctx *ctx, struct addon_backup *b, struct snap_writer *w,
			      struct miren_error *err);
void pgp_backup_free(struct addon_ctx *ctx, struct addon_backup *b);
enum miren_err pgp_restore_prepare(struct addon_ctx *ctx, const struct server_rec *srv,
				   const json_t *header, const char *staging,
				   struct miren_error *err);
enum miren_err pgp_restore_start(struct addon_ctx *ctx, const struct server_rec *srv,
				 struct miren_error *err);
enum miren_err pgp_restore_verify(struct addon_ctx *ctx, const struct server_rec *srv,
				  struct addon_inst *tenants, size_t n, struct miren_error *err);

#endif
