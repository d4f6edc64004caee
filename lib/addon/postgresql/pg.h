/*
 * PostgreSQL mechanics for the miren-postgresql addon: template clusters,
 * cloning a template into a disk, the server's command line, readiness,
 * and the SQL that creates and drops isolated tenants.  No state store and
 * no threads here: the provider (provider.c) sequences these steps and
 * records each one.
 *
 * Layout of a server's disk directory DISK (disks/<disk-name>):
 *   DISK/pgdata/   the cluster (0700, owned by the service user)
 *   pg_socket_dir(DISK)  its unix socket directory (0700, service user),
 *                  outside the disk: socket paths are limited to 107 bytes
 *
 * Authentication: pg_hba.conf has no trust line.  The superuser "postgres"
 * may connect only over the unix socket (scram-sha-256); every other role
 * connects over TCP on the server's loopback address (scram-sha-256).
 * Passwords are sent only as SCRAM verifiers (PQencryptPasswordConn).
 *
 * Every function returns 0 or a miren_err with err filled; none prints.
 * Idempotent steps treat "already exists"/"does not exist" as success.
 */
#ifndef MIREN_ADDON_PG_H
#define MIREN_ADDON_PG_H

#include <jansson.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "util/err.h"

/* The addon's name, and the names of its fault points ("<addon>:<what>"). */
#define PG_ADDON "miren-postgresql"
#define PG_FAULT(what) PG_ADDON ":" what

/* Where a major version's binaries are: /usr/lib/postgresql/<major>/bin. */
struct pg_install {
	int major; /* 15 */
	char bindir[256];
};

/* Finds installed major versions (newest first) below /usr/lib/postgresql
 * (or $MIREN_PG_ROOT); returns how many (0: none). */
int pg_find_installs(struct pg_install *out, int max);

/*
 * Makes sure DIR (templates/pg<major>) holds an initdb'd cluster tuned for
 * small idle servers, with superuser "postgres" whose password is
 * template_password.  Runs initdb as uid/gid ((uid_t)-1: as the caller)
 * into DIR.tmp and renames it into place, so a crash never leaves a
 * half-made template.  No-op when DIR exists.  A leftover DIR.tmp is
 * removed first, after ending the processes still working in it (the
 * postgres children of a dead daemon's initdb, see pg_stop_workers).
 */
enum miren_err pg_template_ensure(const struct pg_install *pg, const char *dir,
				  const char *template_password, uid_t uid, gid_t gid,
				  struct miren_error *err);

/*
 * SIGKILLs every process whose working directory is dir or below it (an
 * initdb and its postgres children run in the directory they make) and
 * waits up to 5 s until they are gone (dir's parent is resolved first, as
 * /proc shows resolved paths).  Returns how many it found.  The caller
 * must own dir (no live work of its own may run there).
 */
int pg_stop_workers(const char *dir);

/* Whether process pid exists and is not a zombie waiting to be reaped. */
bool pg_process_runs(pid_t pid);

/*
 * Clones the template into DISK/pgdata (DISK/pgdata.spare renamed when the
 * disk holds a spare clone of this template, else a copy; into
 * DISK/pgdata.tmp, then renamed; an existing DISK/pgdata is kept as is)
 * and writes the server-specific settings: listen_addresses = address,
 * port, and unix_socket_directories = pg_socket_dir(DISK).  Owned by
 * uid/gid.
 */
enum miren_err pg_clone(const char *template_dir, const char *disk_dir, const char *address,
			int port, uid_t uid, gid_t gid, struct miren_error *err);

/*
 * Writes a spare clone of the template into disk_dir (DISK/pgdata.spare,
 * owned by uid/gid, flushed), which pg_clone on that disk renames into
 * place instead of copying.  Meant for a filled spare disk
 * (addon_disk_spare_fill): the copy (the slow part of a clone, one inode
 * per catalog file) then happens off the path of making a server, and the
 * disk holding it becomes the server's disk by a rename.  No-op when a
 * spare of this template is there; one of an earlier template (other
 * system identifier) is replaced.
 */
enum miren_err pg_spare_fill(const char *template_dir, const char *disk_dir, uid_t uid, gid_t gid,
			     struct miren_error *err);

/* The directory holding the server's unix socket (short, outside the
 * disk: socket paths are limited to 107 bytes).  Caller frees. */
char *pg_socket_dir(const char *disk_dir);
/* Makes the socket directory of disk_dir exist (0700, owned by uid/gid
 * when they are not -1), and its base (0711, the daemon's; refused when it
 * is a link or someone else's): both are under /run or /tmp and vanish
 * with a reboot.  Returns 0 or a miren_err with err set. */
enum miren_err pg_socket_dir_ensure(const char *disk_dir, uid_t uid, gid_t gid,
				    struct miren_error *err);

/* The argv to run the server in the foreground: {bindir/postgres, "-D",
 * DISK/pgdata, NULL}, plus "-c", "NAME=VALUE" for each of settings (a
 * NULL-terminated list; may be NULL): settings given on the command line
 * stay with this server, never with a copy of its data directory.  Caller
 * frees with pg_argv_free. */
char **pg_server_argv(const struct pg_install *pg, const char *disk_dir,
		      const char *const *settings);
void pg_argv_free(char **argv);

/*
 * Waits until the server of DISK accepts superuser connections
 * (connecting with password), up to timeout_ms.  Returns 0, or
 * MIREN_EUNAVAIL with the last connection error (without secrets).  A
 * rejected password ends the wait at once with MIREN_EPERM (waiting
 * cannot help).
 */
enum miren_err pg_wait_ready(const char *disk_dir, int port, const char *password, int timeout_ms,
			     struct miren_error *err);
/* The same, ending early (MIREN_EUNAVAIL) once *stop is true (stop may be
 * NULL): a server still starting must not hold up a daemon's stop. */
enum miren_err pg_wait_ready_or_stop(const char *disk_dir, int port, const char *password,
				     int timeout_ms, const atomic_bool *stop,
				     struct miren_error *err);

/*
 * Over the superuser unix socket connection (authenticating with
 * old_password, then, if that fails, with new_password so a retried step
 * succeeds), sets the superuser password to new_password.
 */
enum miren_err pg_rotate_superuser(const char *disk_dir, int port, const char *old_password,
				   const char *new_password, struct miren_error *err);

/*
 * Creates (idempotently) role `role` with LOGIN and password, no SUPERUSER,
 * CREATEDB, CREATEROLE, REPLICATION or BYPASSRLS; database `db` owned by it;
 * revokes CONNECT and TEMP on `db` and on "postgres" from PUBLIC and grants
 * CONNECT and TEMP on `db` to the role; revokes CREATE on schema public of
 * `db` from PUBLIC (the owner keeps it).  If the role exists its password is
 * reset to `password` and its attributes put back.  CONNECT and TEMP on
 * template1 are revoked from PUBLIC too.  Sessions a dead daemon left
 * running tenant statements on the server are ended first (their
 * transactions roll back), and a role or database a concurrent session
 * made counts as made.  Reserved names (roles
 * "postgres", "public", "none", "current_user", "current_role",
 * "session_user", "pg_..."; databases postgres, template0, template1,
 * PG_SPARE_DB...) are refused with MIREN_EINVAL before connecting;
 * pg_ident_for_app never gives one.
 */
enum miren_err pg_tenant_create(const char *disk_dir, int port, const char *su_password,
				const char *role, const char *db, const char *password,
				struct miren_error *err);

/* Spare databases are named PG_SPARE_DB "_0", "_1", ...; pg_tenant_create
 * renames one into place. */
#define PG_SPARE_DB "miren_spare"

/*
 * Makes sure the server has `count` spare databases (nobody may connect to
 * them) for the next pg_tenant_create calls to take by renaming: a tenant
 * then costs milliseconds instead of a CREATE DATABASE.  Idempotent.
 */
enum miren_err pg_spare_db_ensure(const char *disk_dir, int port, const char *su_password,
				  int count, struct miren_error *err);

/*
 * The server's own online backup, for crash-consistent disk snapshots
 * without stopping writers: pg_backup_begin() reserves WAL (a temporary
 * replication slot) and runs pg_backup_start (fast checkpoint); the caller
 * copies the data directory except pg_wal; pg_backup_end() runs
 * pg_backup_stop and returns the backup_label content to store as
 * pgdata/backup_label, after which the caller copies pg_wal.  Restored,
 * the copy replays that WAL to the moment pg_backup_stop ran.
 * pg_backup_free() closes the session (aborting an unfinished backup).
 */
struct pg_backup;
enum miren_err pg_backup_begin(const char *disk_dir, int port, const char *su_password,
			       struct pg_backup **out, struct miren_error *err);
const char *pg_backup_start_lsn(const struct pg_backup *b);
/* Fills label (backup_label content), stop_lsn and stop_walfile (the
 * segment holding stop_lsn); caller frees each. */
enum miren_err pg_backup_end(struct pg_backup *b, char **label, char **stop_lsn,
			     char **stop_walfile, struct miren_error *err);
void pg_backup_free(struct pg_backup *b);

/* The major version in PGDATA/PG_VERSION (e.g. 15), or -1 with err set
 * when the file is missing or holds something else. */
enum miren_err pg_cluster_major(const char *pgdata, struct miren_error *err);

/*
 * Proves that a restored cluster starts, before it is put in place: runs
 * its recovery (the backup's WAL) in single-user mode (no socket, no port)
 * as uid/gid with pg's binaries, which then shuts it down cleanly.
 * Returns 0, or MIREN_EINVAL with the server's FATAL (or PANIC) line.
 * The cluster may have been changed by the recovery either way.
 */
enum miren_err pg_trial_recover(const struct pg_install *pg, const char *pgdata, uid_t uid,
				gid_t gid, struct miren_error *err);

/* Terminates the tenant's sessions, drops database `db`, role `role`
 * and its second login (pg_alt_login; missing ones are fine).  When other databases still grant the
 * role something, DROP OWNED BY runs in each of them first. */
enum miren_err pg_tenant_drop(const char *disk_dir, int port, const char *su_password,
			      const char *role, const char *db, struct miren_error *err);

/*
 * The tenant's second login role, the one its credentials rotate to and
 * from (pg_tenant_logins): role + "_r__" (or, for a role of more than 59
 * bytes, its first 41 bytes + "_" + 16 hex digits of its SHA-256 +
 * "_r__").  No app's role ends that way (pg_ident_for_app's names end in
 * a letter or digit, "<letter or digit>_" or "<hex digit>__"), so it is
 * nobody else's.  0 with out[64] filled, or MIREN_EINVAL for a role name
 * a tenant cannot have.
 */
enum miren_err pg_alt_login(const char *role, char out[64], struct miren_error *err);

/*
 * Makes login (role itself or pg_alt_login(role)) a working login of the
 * tenant with password (sent as a SCRAM verifier), over the superuser
 * unix socket.  The second login is created when missing, as a member of
 * role whose sessions start as role (ALTER ROLE ... SET role): whatever
 * it makes belongs to role and it may do everything role may, so the two
 * logins can take turns.  With revoke_other the other of the two stops
 * working (NOLOGIN, no password) and its open sessions are ended; without
 * it, it is left as it is: a rotation's old credentials keep working
 * beside the new ones.  Running it again changes nothing more.
 * MIREN_EINVAL for a login that is neither, before connecting.
 */
enum miren_err pg_tenant_logins(const char *disk_dir, int port, const char *su_password,
				const char *role, const char *login, const char *password,
				bool revoke_other, struct miren_error *err);

/* The roles of the server that may log in (other than the superuser),
 * sorted (array and strings to free); MIREN_EUNAVAIL when the server
 * cannot be asked. */
enum miren_err pg_login_roles(const char *disk_dir, int port, const char *su_password, char ***out,
			      size_t *n, struct miren_error *err);

/*
 * How a client reaches a tenant: over TCP to host (a numeric address):port
 * as role with password, in database db.  role and db must be names
 * pg_ident_for_app gives (1..63 of [a-z0-9_]): they go on command lines
 * as they are.  The password never does: the tools get it in their
 * environment (PGPASSWORD), which only their own user (and root) can read.
 */
struct pg_client {
	const char *host;
	int port;
	const char *role;
	const char *password;
	const char *db;
};

/*
 * A logical dump of the tenant's database in PostgreSQL's custom format
 * (pg_dump -Fc: compressed, one consistent snapshot, read by pg_restore),
 * written to fd (left open).  pg_dump of pg's version runs as uid/gid
 * ((uid_t)-1: as the caller) and logs in as the tenant, so it holds
 * exactly what the tenant can read.  Returns 0, MIREN_EUNAVAIL when the
 * server cannot be reached, MIREN_EIO with pg_dump's complaint otherwise
 * (what was written to fd then is not a whole dump).
 */
enum miren_err pg_tenant_dump(const struct pg_install *pg, const struct pg_client *t, uid_t uid,
			      gid_t gid, int fd, struct miren_error *err);

/*
 * Loads a custom-format dump (pg_tenant_dump's, or any pg_dump -Fc of a
 * database) from fd into the tenant's database, replacing what it holds:
 * pg_restore turns the dump into SQL (owned by the tenant's role whoever
 * owned it in the dump: --no-owner; without the dump's grants:
 * --no-privileges, they name roles of another server), which psql, logged
 * in as the tenant, runs after dropping the tenant's schemas and making
 * public again empty, all in one transaction that is committed only when
 * the whole dump was read.  So afterwards the database holds exactly the
 * dump's objects, and a load that fails anywhere (not a dump, a truncated
 * one, an object the tenant may not make) changes nothing and returns
 * MIREN_EINVAL with the tool's complaint; MIREN_EUNAVAIL when the server
 * cannot be reached.  A lock another session holds on an object is waited
 * for 30 s (lock_timeout), then the load fails.
 */
enum miren_err pg_tenant_load(const struct pg_install *pg, const struct pg_client *t, uid_t uid,
			      gid_t gid, int fd, struct miren_error *err);

/*
 * The psql command that connects as the tenant: argv {bindir/psql,
 * --host=, --port=, --username=, --dbname=, NULL} and env {"PGPASSWORD=...",
 * NULL} (to add to the caller's environment), each NULL-terminated and
 * malloc'd (free with pg_argv_free; the env holds the password: the caller
 * wipes it).  MIREN_EINVAL for names that are not an ident's.
 */
enum miren_err pg_client_command(const struct pg_install *pg, const struct pg_client *t,
				 char ***argv, char ***env, struct miren_error *err);

/* What a server says of one tenant's database. */
struct pg_tenant_info {
	char version[64];     /* server_version up to its first space, e.g. "15.8" */
	long long size_bytes; /* pg_database_size of the database */
	int connections;      /* sessions on the database now */
	/* How many sessions the tenant may open: max_connections minus the
	 * superuser's reserved ones, or less when the role or the database
	 * has a connection limit. */
	int max_connections;
	long long uptime_s; /* since the postmaster started */
};

/* Asks the server of disk_dir (superuser, unix socket) about role's
 * database db.  MIREN_ENOTFOUND when either does not exist. */
enum miren_err pg_tenant_info(const char *disk_dir, int port, const char *su_password,
			      const char *role, const char *db, struct pg_tenant_info *out,
			      struct miren_error *err);

/*
 * The role and database name of an app: the app name with '-' as '_'
 * (app names are [a-z][a-z0-9-]*, never ending in '-', so distinct apps map
 * to distinct names that never end in '_').  Names PostgreSQL or miren
 * reserves, the ones pg_tenant_create refuses ("postgres", "template0",
 * "template1", "public", "none", "current_user", "current_role",
 * "session_user", PG_SPARE_DB..., "pg_..."), become "u_" + name + "_": the
 * trailing '_' keeps them apart from every ordinary name, so the mapping
 * stays one-to-one.  A reserved name too long for that (61..63 characters)
 * becomes "u_" + its first 41 bytes + "_" + 16 hex digits of its SHA-256 +
 * "__" (62 bytes).  Every valid app name maps (at most 63 bytes, NAMEDATALEN
 * - 1); returns 0 with out[64] filled, or MIREN_EINVAL for a string that is
 * not an app name.
 */
enum miren_err pg_ident_for_app(const char *app, char out[64], struct miren_error *err);

/*
 * The tenants a server holds: its databases other than postgres, the
 * templates and the spares, and its roles other than the superuser and
 * the pg_ ones, each sorted (arrays and strings to free).  Over the
 * superuser unix socket; MIREN_EUNAVAIL when the server cannot be asked.
 */
enum miren_err pg_tenant_names(const char *disk_dir, int port, const char *su_password, char ***dbs,
			       size_t *n_dbs, char ***roles, size_t *n_roles,
			       struct miren_error *err);

/* --- a tenant's move to another server (pg_change.c) --------------------
 * A variant change copies a tenant's database from one server to another
 * with logical replication while the tenant keeps writing: a publication
 * of every table of the database on the old server, a subscription of
 * the same name as its slot on the new one, then the tenant's pause, the
 * catch-up and the sequences.  Every statement runs as the superuser over
 * the server's unix socket. */

/* A server as these functions reach it. */
struct pg_side {
	const char *disk_dir;
	int port;
	const char *su_password;
};

/* The value of setting name on the server (current_setting). */
enum miren_err pg_setting(const struct pg_side *s, const char *name, char out[64],
			  struct miren_error *err);

/*
 * pause: the tenant's role and its second login (pg_alt_login) may no
 * longer log in, and its sessions are ended (their open transactions roll
 * back), waiting up to 10 s until none is left: afterwards nothing the
 * tenant commits can reach the server.  !pause: login (the current one)
 * may log in again.  Idempotent either way.
 */
enum miren_err pg_tenant_pause(const struct pg_side *s, const char *role, const char *login,
			       bool pause, struct miren_error *err);

/*
 * Starts copying database db of from into db of to (which holds the same
 * schema, empty): tables without a primary key get REPLICA IDENTITY FULL
 * on from (else their updates and deletes could not be published), from
 * publishes every table of db, and to subscribes as subscription and slot
 * `name` ([a-z0-9_]); returns once every table's initial copy is done and
 * the subscription follows from (MIREN_EIO once its workers reported 5
 * errors, each retried by the server meanwhile;
 * MIREN_EUNAVAIL once *stop, which may be NULL).  Needs wal_level=logical
 * on from and free replication workers on to.  Run again after a failure
 * only once pg_copy_cancel ran.
 */
enum miren_err pg_copy_start(const struct pg_side *from, const struct pg_side *to, const char *db,
			     const char *name, const atomic_bool *stop, struct miren_error *err);
/*
 * Connects to both, then pauses the tenant `role` on from (as
 * pg_tenant_pause), waits (up to 30 s) until the subscription has
 * everything from's log holds (its slot's confirmed flush position past
 * the log's end, so on to's disk), checks that no session of the tenant
 * came back meanwhile, and sets to's sequences to from's values.  The
 * subscription stays (with nothing left to apply) until pg_copy_cancel:
 * dropping it takes longer than the rest.  The pause stays either way.
 */
enum miren_err pg_copy_finish(const struct pg_side *from, const struct pg_side *to, const char *db,
			      const char *role, const char *name, struct miren_error *err);
/*
 * Removes whatever pg_copy_start made: the subscription on to (to NULL,
 * or its server or database gone: none), the slots on from (the
 * subscription's and its table copies'; their senders ended), the
 * publication (from NULL: its server is gone, and they with it; the
 * subscription then goes without its slot).  Idempotent.
 */
enum miren_err pg_copy_cancel(const struct pg_side *from, const struct pg_side *to, const char *db,
			      const char *name, struct miren_error *err);
/* Appends to out (strings) every subscription, copy slot and (in each of
 * dbs) publication the server holds: a change leaves none behind. */
enum miren_err pg_copy_leftovers(const struct pg_side *s, char *const *dbs, size_t n_dbs,
				 json_t *out, struct miren_error *err);

/* pg_tenant_dump of the schema only (no rows, no sequence values). */
enum miren_err pg_tenant_dump_schema(const struct pg_install *pg, const struct pg_client *t,
				     uid_t uid, gid_t gid, int fd, struct miren_error *err);

/* --- WAL archive (pg_wal.c) ---------------------------------------------
 * An archive directory holds, for each archived WAL file NAME (segment,
 * timeline or backup history file), NAME.sha256 ("<hex>  NAME\n", the
 * SHA-256 of the file as PostgreSQL wrote it) and NAME.zst (the file,
 * zstd with its frame checksum), each written crash-safely (temporary
 * file, fsync, rename, fsync of the directory), the checksum first:
 * NAME.zst is the commit point. */

/* Whether name is a WAL file's name PostgreSQL archives. */
bool pg_wal_name_ok(const char *name);
/* Archives the file src as name into dir (archive_command).  Archiving a
 * name that is there with the same checksum succeeds (a retry); another
 * content for it is refused with MIREN_ECONFLICT and nothing changes.
 * MIREN_EIO when dir cannot be written. */
enum miren_err pg_wal_archive(const char *dir, const char *src, const char *name,
			      struct miren_error *err);
/* Writes archived name from dir to dst (restore_command), after checking
 * the frame and the recorded SHA-256 (MIREN_EINVAL naming the damaged
 * file); MIREN_ENOTFOUND when the archive does not hold it. */
enum miren_err pg_wal_fetch(const char *dir, const char *name, const char *dst,
			    struct miren_error *err);
/* Removes the segments (and backup history files) that come before
 * segment keep_from (a 24-hex name; any timeline), and writers'
 * temporary files older than an hour; timeline history files stay.
 * *removed: how many files went. */
enum miren_err pg_wal_tidy(const char *dir, const char *keep_from, int *removed,
			   struct miren_error *err);
/* The unix time the newest segment was archived (0: none), its name in
 * name. */
int64_t pg_wal_newest(const char *dir, char name[64]);

/* The WAL file the server of disk_dir writes now (superuser socket). */
enum miren_err pg_wal_current(const char *disk_dir, int port, const char *su_password, char seg[64],
			      struct miren_error *err);
/* Commits a transaction (a commit record with the time now) and switches
 * to a new WAL file: seg gets the one just finished, which the archiver
 * takes next. */
enum miren_err pg_wal_switch(const char *disk_dir, int port, const char *su_password, char seg[64],
			     struct miren_error *err);

/* What the archive command last did, kept in the data directory (its
 * working directory) as PG_ARCHIVE_STATUS: {"ok","wal","at"[,"error",
 * "detail"]}.  failed NULL: archived. */
#define PG_ARCHIVE_STATUS "miren-archive.status"
void pg_wal_status_write(const char *pgdata, const char *wal, const struct miren_error *failed);
/* The status (caller decrefs), NULL when there is none. */
json_t *pg_wal_status_read(const char *pgdata);

#endif
