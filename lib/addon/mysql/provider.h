/*
 * What the files of the miren-mysql provider share (provider.c: the
 * definition, state, steps, env and tenant hooks; server.c: its servers,
 * backup and restore); not an interface for anything outside this
 * directory.
 *
 * Resources and their names, all recorded before they are made:
 *   server row   "mysql-s-<id>" (small) or "mysql-shared-<8 hex>" (shared),
 *                engine MYSQL_ADDON, kind = the variant, port 3306, state
 *                {"root_password","version","rotated"} (struct myp_server)
 *   disk         mysql-mysql-<app>-s<id>-data (small),
 *                mysql-shared-data-<8 hex> (shared)
 *   address      the lowest free one of the pool, on the server row
 *   user, db     mariadb_ident_for_app(app)
 * An instance's state is {"user","db","password"} (struct myp_tenant) and
 * the members of its logins (addon/logins.h); its server is the
 * framework's field (addon_inst.rec.server).
 */
#ifndef MIREN_ADDON_MYSQL_PROVIDER_H
#define MIREN_ADDON_MYSQL_PROVIDER_H

#include "addon/addon.h"
#include "addon/logins.h"
#include "addon/mysql/mariadb.h"

#define MYSQL_PORT 3306
#define MYSQL_READY_TIMEOUT_MS 60000

/* An instance's state (addon_inst.state): strings malloc'd, "" when not
 * planned yet. */
struct myp_tenant {
	char *user; /* the first login, named from the app */
	char *db;
	char *password; /* of lg.login */
	/* Its logins: user and its second user (mariadb_alt_user), taking
	 * turns at each rotation (addon/logins.h). */
	struct addon_logins lg;
};

/* A server's state (server_rec.state_json), as the provider reads it. */
struct myp_server {
	char *root_password;
	char *version; /* "10.11" */
	bool rotated;  /* root has the server's own password */
};
/* Parses srv's state; a missing member is "" / false.  Free with
 * myp_server_release (which wipes the password). */
void myp_server_parse(const struct server_rec *srv, struct myp_server *out);
void myp_server_release(struct myp_server *s);

/* The install of a recorded version ("10.11"); MIREN_ENOTFOUND (not
 * retried) with a hint when this host has another one or none. */
enum miren_err myp_install_for(const char *version, struct mariadb_install *out,
			       struct miren_error *err);

/* Makes the server exist, run and answer with its own root password
 * (template, clone, start, wait, rotate; each part idempotent).  Unless
 * the caller holds its disk's lock (disk_held), takes it for the slow
 * path; MIREN_EUNAVAIL (worth a retry) while another operation holds it. */
enum miren_err myp_ensure_server(struct addon_ctx *ctx, const char *server_id, bool disk_held,
				 struct miren_error *err);
/* Removes what a server keeps outside its disk (the run directory):
 * addon_server_release's cleanup. */
void myp_server_cleanup(struct addon_ctx *ctx, const struct server_rec *srv);

/* Server hooks (server.c). */
void myp_resume(struct addon_ctx *ctx);
void myp_idle(struct addon_ctx *ctx);
void myp_interrupt(struct addon_ctx *ctx);
enum miren_err myp_ready(struct addon_ctx *ctx, const struct server_rec *srv, int timeout_ms,
			 struct miren_error *err);
pid_t myp_disk_server(struct addon_ctx *ctx, const char *disk_dir, bool stop);
void myp_check_server(struct addon_ctx *ctx, const struct server_rec *srv,
		      const struct addon_inst *tenants, size_t n, json_t *violations);

/* Disk hooks (server.c). */
bool myp_copy_skip(const char *rel, bool is_dir);
enum miren_err myp_backup_begin(struct addon_ctx *ctx, const struct server_rec *srv,
				struct addon_backup *b, struct miren_error *err);
void myp_backup_free(struct addon_ctx *ctx, struct addon_backup *b);
enum miren_err myp_restore_prepare(struct addon_ctx *ctx, const struct server_rec *srv,
				   const json_t *header, const char *staging,
				   struct miren_error *err);
enum miren_err myp_restore_start(struct addon_ctx *ctx, const struct server_rec *srv,
				 struct miren_error *err);
enum miren_err myp_restore_verify(struct addon_ctx *ctx, const struct server_rec *srv,
				  struct addon_inst *tenants, size_t n, struct miren_error *err);

/* Makes the template data directory of in's version exist; *dir gets
 * its path (caller frees). */
enum miren_err myp_template_ready(struct addon_ctx *ctx, const struct mariadb_install *in,
				  char **dir, struct miren_error *err);

/* Scratch servers (scratch.c). */
json_t *myp_tenant_facts(struct addon_ctx *ctx, struct addon_inst *inst);
enum miren_err myp_scratch_start(struct addon_ctx *ctx, const json_t *header, const json_t *opts,
				 const char *dir, struct addon_scratch *out,
				 struct miren_error *err);
enum miren_err myp_scratch_load(struct addon_ctx *ctx, struct addon_scratch *s, int fd,
				struct miren_error *err);
enum miren_err myp_scratch_dump(struct addon_ctx *ctx, struct addon_scratch *s,
				const json_t *tenant, int fd, struct miren_error *err);
enum miren_err myp_scratch_check(struct addon_ctx *ctx, struct addon_scratch *s,
				 struct miren_error *err);
void myp_scratch_stop(struct addon_ctx *ctx, struct addon_scratch *s);

#endif
