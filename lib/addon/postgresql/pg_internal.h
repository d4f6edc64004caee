/*
 * What the files of the PostgreSQL mechanics (pg_*.c; their interface is
 * pg.h) share; not an interface for anything else.  The files:
 *   pg_util.c      clocks, error text, owned files, flushing
 *   pg_install.c   installed versions; processes left working in a directory
 *   pg_template.c  template clusters (initdb)
 *   pg_copy.c      copying a cluster tree; holes in never-written WAL
 *   pg_clone.c     a server's cluster, spare, socket dir, command line
 *   pg_conn.c      connections and SQL, readiness, the superuser password
 *   pg_tenant.c    tenants, their names, spare databases, what a server holds
 *   pg_backup.c    online backup; proving a restored cluster starts
 *   pg_client.c    a tenant's dump, load, client command and info
 *
 * Contract notes beyond pg.h:
 *  - Templates are made by initdb (--no-sync), then miren replaces
 *    postgresql.conf (a small-idle-server tuning that ends with
 *    "include 'miren-server.conf'") and pg_hba.conf (three/four lines, no
 *    trust), punches holes into the never-written zero tail of the WAL
 *    segment (so clones copy ~28 MB, not ~39 MB), flushes the filesystem
 *    with syncfs() and renames DIR.tmp to DIR.  The template is never
 *    started.  A lock file DIR.lock serialises concurrent makers.
 *  - pg_clone copies the tree itself (copy_file_range, read/write when the
 *    kernel cannot; holes of the source are fallocate()d, so the WAL
 *    segment stays fully allocated), keeping modes, giving every entry to
 *    uid/gid, skipping postmaster.pid/postmaster.opts, then writes
 *    miren-server.conf, flushes with one syncfs() (one journal commit
 *    instead of one fsync per file) and renames pgdata.tmp to pgdata.
 *    When the disk came with a spare clone of the template
 *    (DISK/pgdata.spare, written by pg_spare_fill into a filled spare
 *    disk: same cluster, same owner) it is renamed into place instead of
 *    copying; a spare of another template is removed.  With an existing
 *    pgdata only miren-server.conf is rewritten (atomically) and the
 *    socket directory ensured.
 *  - Superuser connections go over the unix socket with
 *    log_statement=none and log_min_error_statement=panic, so no statement
 *    text (and no password verifier) reaches the server log; notices are
 *    swallowed.
 *  - Tenant names are checked: 1..63 bytes, no control characters, none
 *    of the reserved names of role_reserved/db_reserved (MIREN_EINVAL);
 *    pg_ident_for_app maps every app name around them.
 *  - Error codes of SQL steps: a lost/refused connection is MIREN_EUNAVAIL,
 *    42501 MIREN_EPERM, SQLSTATE classes 53/58 MIREN_EIO, anything else
 *    MIREN_EINTERNAL; messages carry the server's text and SQLSTATE, never
 *    a password.
 */
#ifndef MIREN_ADDON_PG_INTERNAL_H
#define MIREN_ADDON_PG_INTERNAL_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "addon/postgresql/pg.h"

#define PG_LIBDIR "/usr/lib/postgresql"
#define PG_SUPERUSER "postgres"
#define PG_SERVER_CONF "miren-server.conf"
#define PG_SPARE_DIR "pgdata.spare"
#define PG_INITDB_TIMEOUT_MS 180000
#define PG_READY_POLL_MS 10
#define APP_MIREN "miren"
#define APP_TENANT "miren-tenant"
#define APP_SPARE "miren-spare"

void pgi_nap_ms(int ms);
bool pgi_ids_given(uid_t uid, gid_t gid);
void pgi_one_line(char *dst, size_t len, const char *src);
void pgi_output_tail(char *dst, size_t len, const char *out, size_t max);
enum miren_err pgi_write_owned(const char *path, const char *data, mode_t mode, uid_t uid,
			       gid_t gid, struct miren_error *err);
enum miren_err pgi_sync_fs_of(const char *path, struct miren_error *err);
enum miren_err pgi_ensure_dir(const char *path, mode_t mode, uid_t uid, gid_t gid,
			      struct miren_error *err);
bool pgi_install_ok(const char *bindir);
bool pgi_password_ok(const char *pw);
enum miren_err pgi_check_password(const char *role, const char *password, struct miren_error *err);
enum miren_err pgi_sparsify_dir(const char *dir, struct miren_error *err);
enum miren_err pgi_copy_tree(const char *src, const char *dst, uid_t uid, gid_t gid,
			     struct miren_error *err);
PGconn *pgi_su_connect(const char *disk_dir, int port, const char *password, const char *dbname,
		       const char *appname, int timeout_s, char *why, size_t whylen,
		       bool *used_password);
enum miren_err pgi_sql_code(PGconn *c, const char *state);
enum miren_err pgi_run_sql_at(PGconn *c, const char *sql, const char *const *ok, const char *what,
			      char state_out[6], const char *fault, struct miren_error *err);
enum miren_err pgi_run_sql(PGconn *c, const char *sql, const char *const *ok, const char *what,
			   char state_out[6], struct miren_error *err);
char *pgi_quote_ident(PGconn *c, const char *name, struct miren_error *err);
char *pgi_verifier_literal(PGconn *c, const char *password, const char *role,
			   struct miren_error *err);
enum miren_err pgi_set_password(PGconn *c, const char *role, const char *password, const char *what,
				struct miren_error *err);
void pgi_free_secret(char *s);
PGconn *pgi_tenant_connect(const char *disk_dir, int port, const char *su_password,
			   const char *dbname, const char *appname, struct miren_error *err);
char *pgi_query_value(PGconn *c, const char *sql, const char *what, struct miren_error *err);

#endif
