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
 * An instance's state is {"role","db","password"} (struct pgp_tenant)
 * plus, once its credentials were rotated, "login", "alt", "issued_at",
 * and during a rotation "next_password" or "retired"; its server is the
 * framework's field (addon_inst.rec.server).
 */
#ifndef MIREN_ADDON_PG_PROVIDER_H
#define MIREN_ADDON_PG_PROVIDER_H

#include "addon/addon.h"
#include "addon/logins.h"
#include "addon/postgresql/pg.h"

#define PG_PORT 5432
#define READY_TIMEOUT_MS 30000

/* An instance's state (addon_inst.state): strings malloc'd, "" when not
 * planned yet. */
struct pgp_tenant {
	char *role; /* owns the database and every object in it */
	char *db;
	char *password; /* of lg.login */
	/* Its logins: role itself and its second login (pg_alt_login), taking
	 * turns at each rotation (addon/logins.h). */
	struct addon_logins lg;
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
/* Makes the template cluster of pg exist (templates/pg<major>); *dir
 * gets its path (caller frees). */
enum miren_err pgp_template_ready(struct addon_ctx *ctx, const struct pg_install *pg, char **dir,
				  struct miren_error *err);
/* Starts (or adopts) srv under the supervisor. */
enum miren_err pgp_start_server(struct addon_ctx *ctx, const struct server_rec *srv,
				struct miren_error *err);
/* What every server runs with beyond its template (given on its command
 * line, so a copy of its data directory does not keep them) so that a
 * variant change can copy a tenant out of it and into it with logical
 * replication: wal_level=logical, senders, slots and workers for one
 * subscription and its table copies, beside the online backup's slot. */
#define PGP_REPLICATION_SETTINGS_N 6
extern const char *const pgp_replication_settings[PGP_REPLICATION_SETTINGS_N];
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

/* Variant change hooks (change.c). */
enum miren_err pgp_copy_start(struct addon_ctx *ctx, struct addon_inst *from, struct addon_inst *to,
			      const char *id, bool *online, struct miren_error *err);
enum miren_err pgp_writes_pause(struct addon_ctx *ctx, struct addon_inst *from, bool pause,
				struct miren_error *err);
enum miren_err pgp_copy_finish(struct addon_ctx *ctx, struct addon_inst *from,
			       struct addon_inst *to, const char *id, struct miren_error *err);
enum miren_err pgp_copy_cancel(struct addon_ctx *ctx, struct addon_inst *from,
			       struct addon_inst *to, const char *id, struct miren_error *err);
/* The leftovers of copies on srv (subscriptions, slots, publications in
 * dbs) as violations. */
void pgp_copy_check(struct addon_ctx *ctx, const struct server_rec *srv, char *const *dbs,
		    size_t n_dbs, json_t *violations);

/* Scratch servers (scratch.c). */
json_t *pgp_tenant_facts(struct addon_ctx *ctx, struct addon_inst *inst);
enum miren_err pgp_scratch_start(struct addon_ctx *ctx, const json_t *header, const json_t *opts,
				 const char *dir, struct addon_scratch *out,
				 struct miren_error *err);
enum miren_err pgp_scratch_load(struct addon_ctx *ctx, struct addon_scratch *s, int fd,
				struct miren_error *err);
enum miren_err pgp_scratch_dump(struct addon_ctx *ctx, struct addon_scratch *s,
				const json_t *tenant, int fd, struct miren_error *err);
enum miren_err pgp_scratch_check(struct addon_ctx *ctx, struct addon_scratch *s,
				 struct miren_error *err);
void pgp_scratch_stop(struct addon_ctx *ctx, struct addon_scratch *s);

/* WAL archiving (wal.c).  pgp_wal_dir: the server's archive directory in
 * the backup store, <backup_dir>/wal/<server id> (NULL without a store);
 * pgp_wal_dir_ensure makes it (the server's user owns it; the store and
 * wal/ searchable), *out NULL without a store. */
char *pgp_wal_dir(const struct addon_ctx *ctx, const char *server_id);
enum miren_err pgp_wal_dir_ensure(struct addon_ctx *ctx, const char *server_id, char **out,
				  struct miren_error *err);
/* The settings (for pg_server_argv) that archive srv's WAL into its
 * archive directory; NULL (nothing archived) without a store.  Free with
 * pg_argv_free. */
char **pgp_archive_settings(struct addon_ctx *ctx, const struct server_rec *srv);
/* The helper hook: wal-archive and wal-restore. */
int pgp_helper(int argc, char **argv);
/* A scratch copy (pgdata: a restored online backup of server_id, its
 * backup_label in place) set up to recover from the server's WAL archive
 * to target_time ("YYYY-MM-DD HH:MM:SS+00"): writes recovery.signal and
 * gives the settings its postgres command line adds (restore_command
 * through the helper, checking each file's checksum; the target, then
 * promote; no connection before; no archiving).  Free with pg_argv_free.
 * MIREN_EINVAL for a bad time, MIREN_EUNAVAIL without an archive. */
enum miren_err pgp_recovery_settings(struct addon_ctx *ctx, const char *server_id,
				     const char *pgdata, const char *target_time, char ***out,
				     struct miren_error *err);
/* Point-in-time recovery (pitr.c): the tick hook (base backups, their
 * retention, the archive's tidying) and the pitr_window and pitr_source
 * hooks. */
void pgp_tick(struct addon_ctx *ctx);
json_t *pgp_pitr_window(struct addon_ctx *ctx, struct bstore *bs, struct addon_inst *inst);
enum miren_err pgp_pitr_source(struct addon_ctx *ctx, struct bstore *bs, struct addon_inst *inst,
			       int64_t target, char **backup, json_t **opts,
			       struct miren_error *err);
/* After srv's disk was restored (restore_verify): its WAL archive and
 * base backups start again (the restored cluster's WAL takes names the
 * archive holds with other contents). */
void pgp_pitr_reset(struct addon_ctx *ctx, const struct server_rec *srv);
/* Adds "wal_archive" (and a "warnings" line while archiving fails) to a
 * describe object o. */
void pgp_wal_describe(struct addon_ctx *ctx, const struct server_rec *srv, const char *disk_dir,
		      json_t *o);

#endif
