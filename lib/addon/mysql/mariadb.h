/*
 * MariaDB mechanics for the miren-mysql addon (MariaDB 10.11 from Debian,
 * MySQL-compatible): the template data directory, spares and clones, the
 * server's command line, readiness, the root account the platform keeps,
 * tenants (a database and a user limited to it), online backups with
 * mariadb-backup, the connect command and facts for `info`.  No state
 * store and no threads here: the provider (provider.c) sequences these
 * steps and records each one.  Implemented in mariadb_install.c (finding
 * the install, stray processes), mariadb_files.c (template, spare, clone,
 * run directory, argv), mariadb_sql.c (over a root connection: readiness,
 * root, tenants, info) and mariadb_tools.c (mariadb-backup, option file,
 * dump and load), sharing mariadb_internal.h.
 *
 * Layout of a server's disk directory DISK (disks/<disk-name>):
 *   DISK/data/   the data directory (0700, owned by the service user)
 *   mariadb_run_dir(DISK)  its unix socket and pid file (0700, service
 *                user), outside the disk: socket paths are limited to 107
 *                bytes, and a reboot empties it
 *
 * Authentication: the only administrative account is root@localhost,
 * reachable only over the unix socket (skip-name-resolve: a TCP client is
 * never "localhost"), with a password the platform holds.  No anonymous
 * users, no test database, no unix_socket account.  Tenants are
 * 'user'@'%' with ALL on their own database and nothing global.  Passwords
 * go over the wire only as mysql_native_password hashes ('*' + SHA1 of
 * SHA1), computed here.
 *
 * Every function returns 0 or a miren_err with err filled; none prints or
 * logs, and no error text holds a password.  Idempotent steps treat
 * "already exists"/"does not exist" as success.
 */
#ifndef MIREN_ADDON_MYSQL_MARIADB_H
#define MIREN_ADDON_MYSQL_MARIADB_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "util/err.h"

/* The addon's name, and the names of the fault points inside its steps
 * ("miren-mysql:<what>"; the provider lists them all). */
#define MYSQL_ADDON "miren-mysql"
#define MY_FAULT(what) MYSQL_ADDON ":" what

/* Where the binaries are, and the server's major.minor version. */
struct mariadb_install {
	char version[16];     /* "10.11" */
	char server[256];     /* /usr/sbin/mariadbd */
	char install_db[256]; /* /usr/bin/mariadb-install-db */
	char backup[256];     /* /usr/bin/mariadb-backup */
	char client[256];     /* /usr/bin/mariadb */
	char dump[256];       /* /usr/bin/mariadb-dump */
};

/* Finds the install (below $MIREN_MARIADB_ROOT, default "/usr": its sbin
 * and bin) and asks the server its version once per process.  Returns 0,
 * or MIREN_EUNAVAIL with a hint naming the Debian packages. */
enum miren_err mariadb_find(struct mariadb_install *out, struct miren_error *err);

/* The file a template, its spare and each clone hold: the template's
 * identity (random hex written when it was made). */
#define MARIADB_TEMPLATE_ID "miren-template-id"

/*
 * Makes sure DIR (templates/mysql<version>) holds a data directory made by
 * mariadb-install-db, with root@localhost's password template_password
 * and no other account but the locked mariadb.sys.  Runs as uid/gid
 * ((uid_t)-1: as the caller; refused as root) into DIR.tmp and renames it
 * into place, so a crash never leaves a half-made template.  No-op when
 * DIR exists.  Makers are serialised by DIR.lock.
 */
enum miren_err mariadb_template_ensure(const struct mariadb_install *in, const char *dir,
				       const char *template_password, uid_t uid, gid_t gid,
				       struct miren_error *err);

/*
 * SIGKILLs every process whose command line names dir or a path below it
 * as its --datadir (the bootstrap mariadbd of a mariadb-install-db, a
 * server) and waits up to 5 s until they are gone.  Returns how many it
 * found.  The caller must own dir (no live work of its own may run there).
 */
int mariadb_stop_workers(const char *dir);

/*
 * Makes TEMPLATE.spare, a copy of the template owned by uid/gid, which the
 * next mariadb_clone with that owner renames into place: the copy happens
 * off the path of making a server.  No-op when a spare of this template
 * exists or another call is making one; a spare of an earlier template is
 * replaced.
 */
enum miren_err mariadb_spare_prepare(const char *template_dir, uid_t uid, gid_t gid,
				     struct miren_error *err);

/*
 * Makes DISK/data a copy of the template (the spare when it fits, else a
 * copy into DISK/data.tmp and a rename); an existing DISK/data is kept.
 * Owned by uid/gid, 0700.  Also makes the run directory.
 */
enum miren_err mariadb_clone(const char *template_dir, const char *disk_dir, uid_t uid, gid_t gid,
			     struct miren_error *err);

/* The data directory of a disk: DISK/data.  Caller frees. */
char *mariadb_data_dir(const char *disk_dir);
/* The short directory holding the server's socket and pid file:
 * /run/miren-mysql/<16 hex of DISK> as root, else
 * /tmp/miren-mysql-<uid>/<16 hex>.  Caller frees. */
char *mariadb_run_dir(const char *disk_dir);
/* mariadb_run_dir(DISK)/mysqld.sock.  Caller frees. */
char *mariadb_socket_path(const char *disk_dir);
/* Makes the run directory exist (0700, uid/gid), below a base that is a
 * real directory of the caller (0711). */
enum miren_err mariadb_run_dir_ensure(const char *disk_dir, uid_t uid, gid_t gid,
				      struct miren_error *err);

/*
 * The argv running the server of DISK in the foreground, logging to
 * stderr: mariadbd --no-defaults --datadir --socket --pid-file
 * --bind-address=address --port=port --skip-name-resolve and the small
 * memory settings (16 MiB buffer pool, performance_schema off, ...).
 * Caller frees with mariadb_argv_free.  NULL for an address that is not a
 * numeric IP address or a port out of range.
 */
char **mariadb_server_argv(const struct mariadb_install *in, const char *disk_dir,
			   const char *address, int port);
void mariadb_argv_free(char **argv);

/*
 * Waits until the server of DISK accepts root over its socket with
 * password, up to timeout_ms, ending early (MIREN_EUNAVAIL) once *stop is
 * true (stop may be NULL).  Returns 0; MIREN_EPERM at once when the
 * password is refused (waiting cannot help); MIREN_EUNAVAIL with the last
 * connection error otherwise.
 */
enum miren_err mariadb_wait_ready(const char *disk_dir, const char *password, int timeout_ms,
				  const atomic_bool *stop, struct miren_error *err);

/*
 * Sets root@localhost's password to new_password, authenticating with
 * old_password or, when that is refused, with new_password (a retried
 * step then succeeds).
 */
enum miren_err mariadb_rotate_root(const char *disk_dir, const char *old_password,
				   const char *new_password, struct miren_error *err);

/*
 * Creates (idempotently) database `db` (utf8mb4) and user 'user'@'%' with
 * password, holding ALL PRIVILEGES on `db`.* and nothing else (every other
 * privilege and GRANT OPTION revoked, so a re-run puts them back); an
 * existing user gets the password again.  Reserved names (mariadb_reserved)
 * and names that are not [a-z_][a-z0-9_]* of at most 64 bytes are refused
 * with MIREN_EINVAL before connecting.
 */
enum miren_err mariadb_tenant_create(const char *disk_dir, const char *root_password,
				     const char *user, const char *db, const char *password,
				     struct miren_error *err);

/* Sets the tenant user's password (sessions already open stay open). */
enum miren_err mariadb_tenant_password(const char *disk_dir, const char *root_password,
				       const char *user, const char *password,
				       struct miren_error *err);

/*
 * The tenant's second user, the one its credentials rotate to and from:
 * user + "_r__" (for a user of more than 60 bytes, its first 43 bytes +
 * "_" + 16 hex digits of its SHA-256 + "_r__"), which no app's user can
 * be (mariadb_ident_for_app's names end in a letter, a digit or one '_'
 * after one).  0 with out[65], or MIREN_EINVAL for a name a tenant cannot
 * have.
 */
enum miren_err mariadb_alt_user(const char *user, char out[65], struct miren_error *err);

/*
 * Makes login (user or mariadb_alt_user(user)) a working user of the
 * tenant with password (sent as a hash), holding ALL PRIVILEGES on
 * `db`.* and nothing else (the second one created when missing).  With
 * revoke_other, the other one is locked (ACCOUNT LOCK) and its sessions
 * ended; without, it is left as it is.  Idempotent.  MIREN_EINVAL for a
 * login that is neither, before connecting.
 */
enum miren_err mariadb_tenant_logins(const char *disk_dir, const char *root_password,
				     const char *user, const char *db, const char *login,
				     const char *password, bool revoke_other,
				     struct miren_error *err);

/*
 * pause: the tenant's user and its second one (when it exists) may only
 * read `db` (SELECT, SHOW VIEW, TRIGGER, EVENT: what a dump needs) and their
 * sessions are ended, waiting up to 10 s until none is left (a killed
 * session's transaction rolls back); afterwards nothing the tenant
 * commits can reach the server.  !pause: both hold ALL PRIVILEGES on
 * `db`.* again.  Idempotent either way.
 */
enum miren_err mariadb_tenant_pause(const char *disk_dir, const char *root_password,
				    const char *user, const char *db, bool pause,
				    struct miren_error *err);

/* The users of the server that may log in (not locked; not root and
 * mariadb.sys), sorted (to free with mariadb_names_free). */
enum miren_err mariadb_login_users(const char *disk_dir, const char *root_password, char ***out,
				   size_t *n, struct miren_error *err);

/* Ends the user's sessions (and its second user's), drops database `db`,
 * user 'user'@'%' and the second user (missing ones are fine). */
enum miren_err mariadb_tenant_drop(const char *disk_dir, const char *root_password,
				   const char *user, const char *db, struct miren_error *err);

/* Whether name is one MariaDB or miren keeps for itself as a database or
 * user name: mysql, information_schema, performance_schema, sys, test,
 * root, public, none, current_user, current_role, mariadb_sys. */
bool mariadb_reserved(const char *name);

/*
 * The user and database name of an app: the app name with '-' as '_'
 * (app names are [a-z][a-z0-9-]*, at most 63 bytes, never ending in '-',
 * so distinct apps map to distinct names that never end in '_').
 * Reserved names become "u_" + name + "_" (the trailing '_' keeps them
 * apart from every ordinary name; the reserved names are short, so this
 * fits).  Returns 0 with out[65] filled, or MIREN_EINVAL for a string
 * that is not an app name.
 */
enum miren_err mariadb_ident_for_app(const char *app, char out[65], struct miren_error *err);

/*
 * The tenants a server holds: its databases other than the system ones,
 * and its users other than root and mariadb.sys, each sorted (arrays and
 * strings to free with mariadb_names_free).
 */
enum miren_err mariadb_tenant_names(const char *disk_dir, const char *root_password, char ***dbs,
				    size_t *n_dbs, char ***users, size_t *n_users,
				    struct miren_error *err);
void mariadb_names_free(char **names, size_t n);

/*
 * An online, consistent physical backup of the running server of DISK:
 * mariadb-backup --backup into target_dir (which must not exist; it is
 * made 0700, owned by uid/gid), run as uid/gid, authenticating as root
 * through a 0600 option file that is removed afterwards.  Writers go on
 * meanwhile; the copy holds every transaction committed before the backup
 * ended.  On failure target_dir is removed.
 */
enum miren_err mariadb_backup(const struct mariadb_install *in, const char *disk_dir,
			      const char *root_password, const char *target_dir, uid_t uid,
			      gid_t gid, struct miren_error *err);

/*
 * mariadb-backup --prepare on a backup copy (as uid/gid), which makes it
 * a data directory the server starts from, consistent as of the end of
 * the backup.  Idempotent.
 */
enum miren_err mariadb_backup_prepare(const struct mariadb_install *in, const char *dir, uid_t uid,
				      gid_t gid, struct miren_error *err);

/*
 * Writes a client option file ([client] host, port, user, password,
 * database) to path (0600, owned by uid/gid when given), for the connect
 * command: the password never appears on a command line.  The caller
 * removes it.  argv_out (may be NULL) gets {client,
 * "--defaults-extra-file=PATH", NULL}, freed with mariadb_argv_free.
 */
enum miren_err mariadb_client_file(const struct mariadb_install *in, const char *path,
				   const char *host, int port, const char *user,
				   const char *password, const char *db, uid_t uid, gid_t gid,
				   char ***argv_out, struct miren_error *err);

/*
 * A logical dump of database db as its tenant user (over TCP to host:port,
 * the password in the client's environment, never its command line):
 * mariadb-dump --single-transaction (a consistent snapshot, writers go on)
 * with routines, triggers and events, written to fd (which stays open).
 * mariadb_load runs the SQL read from fd in db as that same user, so a
 * dump can do nothing the tenant could not.  Each returns 0, or MIREN_EIO
 * with the tool's last words (no password).
 */
enum miren_err mariadb_dump(const struct mariadb_install *in, const char *host, int port,
			    const char *user, const char *password, const char *db, int fd,
			    struct miren_error *err);
enum miren_err mariadb_load(const struct mariadb_install *in, const char *host, int port,
			    const char *user, const char *password, const char *db, int fd,
			    struct miren_error *err);
/* Empties db as its tenant user: drops every view and table (a load's
 * first step, so that afterwards the database holds what the dump holds). */
enum miren_err mariadb_clear(const struct mariadb_install *in, const char *host, int port,
			     const char *user, const char *password, const char *db,
			     struct miren_error *err);

struct mariadb_info {
	char version[64];     /* SELECT VERSION() */
	long long size_bytes; /* of db (data + index), or of every table when db is NULL */
	long connections;     /* sessions of db's users, or all client sessions */
	long max_connections; /* @@max_connections */
	long long uptime_s;   /* the server's Uptime status */
};

/* Facts about the server of DISK, or about one tenant database db. */
enum miren_err mariadb_info(const char *disk_dir, const char *root_password, const char *db,
			    struct mariadb_info *out, struct miren_error *err);

#endif
