/*
 * Redis mechanics for the miren-redis addon: the server's configuration
 * and ACL files, its command line, readiness, the ACL users of tenants,
 * RDB snapshots for backups and the restore of one.  No state store and
 * no threads here: the provider (provider.c) sequences these steps and
 * records each one.
 *
 * Layout of a server's disk directory DISK (disks/<disk-name>):
 *   DISK/redis.conf  the configuration, written by redis_server_init
 *                    (0600, the service user's)
 *   DISK/users.acl   the ACL file (0600): passwords only as SHA-256
 *                    ("#<hex>"), never in clear; ACL SAVE rewrites it
 *   DISK/data/       the server's `dir` (0700): dump.rdb (snapshots) and
 *                    appendonlydir/ (the append-only file, fsync every
 *                    second: what a restart loads)
 *
 * Users: "default" is off (no connection works without a user and a
 * password); REDIS_ADMIN_USER is the platform's (every command, every
 * key); one user per tenant (redis_user_for_app):
 *   REDIS_TENANT_OWNER (the `small` variant, the app owns the server):
 *     every key and channel; every command but the @admin and @dangerous
 *     ones (CONFIG, DEBUG, SHUTDOWN, MODULE, ACL, MONITOR, CLIENT
 *     LIST/KILL, MIGRATE, RESTORE, SAVE, REPLICAOF, ...), with FLUSHDB,
 *     FLUSHALL, KEYS, INFO, SORT and SORT_RO given back: they touch only
 *     the app's own data, and tests, caches and admin pages use them.
 *   REDIS_TENANT_PREFIXED (the `shared` variant): keys `<prefix>*` and
 *     channels `<prefix>*` only; besides the @admin and @dangerous
 *     commands (FLUSHDB, FLUSHALL, KEYS, INFO, SORT stay refused) every
 *     command that names no key but reveals or changes what other tenants
 *     hold is refused: SCAN (ACL key patterns do not filter what SCAN
 *     returns, so it is refused whole; HSCAN/SSCAN/ZSCAN on the tenant's
 *     own keys work), RANDOMKEY, DBSIZE, SELECT, SWAPDB, MOVE, OBJECT,
 *     PUBSUB (channel names), FUNCTION (the libraries are the server's),
 *     SCRIPT FLUSH/KILL, MEMORY but MEMORY USAGE, CLIENT but
 *     SETNAME/GETNAME/ID/INFO/REPLY (CLIENT TRACKING BCAST would report
 *     every key's changes).  The server of a shared variant has one
 *     database (`databases 1`), so neither SELECT nor COPY ... DB reach
 *     another.  A refused command answers -NOPERM.
 *
 * Every function returns 0 or a miren_err with err filled (never a
 * password in it); none prints.  Idempotent steps treat "already exists"
 * and "does not exist" as success.
 */
#ifndef MIREN_ADDON_REDIS_H
#define MIREN_ADDON_REDIS_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "util/err.h"

#define REDIS_PORT 6379
/* The platform's user: '_' never appears in an app name, so no tenant
 * user can take it. */
#define REDIS_ADMIN_USER "miren_admin"
/* The server binary, the RDB checker and the CLI ($MIREN_REDIS_BINDIR
 * overrides the directory, /usr/bin). */
#define REDIS_SERVER_BIN "redis-server"
#define REDIS_CHECK_RDB_BIN "redis-check-rdb"
#define REDIS_CLI_BIN "redis-cli"
/* The snapshot a backup copies and a restore brings back, relative to
 * the disk directory. */
#define REDIS_SNAPSHOT_PATH "data/dump.rdb"

/* The fault point (util/fault.h) inside redis_tenant_create: the user is
 * set in the running server, its ACL file not yet saved. */
#define REDIS_FAULT_TENANT_SET "miren-redis:tenant:set"

/* What a server is configured with. */
struct redis_conf {
	const char *address; /* the loopback address it binds */
	int port;            /* REDIS_PORT */
	long long maxmemory; /* bytes; over it, writes fail with -OOM */
	int databases;       /* 16 for a dedicated server, 1 for a shared one */
};

/* The directory of the Redis binaries (/usr/bin or $MIREN_REDIS_BINDIR);
 * a static string. */
const char *redis_bindir(void);

/* The installed server's version ("7.0.15") into out[32]; 0, or
 * MIREN_ENOTFOUND with a hint naming the Debian package. */
enum miren_err redis_installed_version(char out[32], struct miren_error *err);

/*
 * Makes DISK a server directory: DISK/data (0700), DISK/redis.conf (always
 * rewritten, atomically, 0600) and DISK/users.acl, in which the lines of
 * "default" (off) and REDIS_ADMIN_USER (admin_password's SHA-256) are
 * (re)written and every other user's line is kept, so that a disk brought
 * back by a restore answers to this server's admin password.  Files and
 * directories are owned by uid/gid ((uid_t)-1: the caller's).  The server
 * must not run while the ACL file is rewritten (the provider calls it
 * before a start); idempotent.
 */
enum miren_err redis_server_init(const char *disk_dir, const struct redis_conf *conf,
				 const char *admin_password, uid_t uid, gid_t gid,
				 struct miren_error *err);

/* The server in the foreground, logging to stdout, with umask 077 (Redis
 * has no setting for the mode of the files it writes: ACL SAVE, the RDB
 * and the append-only file would be 0644): {"/bin/sh", "-c", "umask 077
 * && exec \"$0\" \"$1\"", bindir/redis-server, DISK/redis.conf, NULL};
 * the shell execs, so the supervised pid is the server's.  Free with
 * redis_argv_free. */
char **redis_server_argv(const char *disk_dir);
void redis_argv_free(char **argv);

/*
 * Waits until the server at address:port accepts REDIS_ADMIN_USER with
 * password and has loaded its data (PING answers PONG, not -LOADING), up
 * to timeout_ms, ending early with MIREN_EUNAVAIL once *stop (may be NULL)
 * is true.  Returns 0; MIREN_EUNAVAIL with the last error; MIREN_EPERM at
 * once when the password is refused (waiting cannot help).
 */
enum miren_err redis_wait_ready(const char *address, int port, const char *password, int timeout_ms,
				const atomic_bool *stop, struct miren_error *err);

/*
 * The ACL user name of an app: the app name itself, except "default"
 * (Redis's own user), which becomes "app_default" (app names never hold
 * '_', so the mapping is one-to-one and never gives REDIS_ADMIN_USER).
 * Returns 0 with out[64] filled, or MIREN_EINVAL for a string that is not
 * an app name.
 */
enum miren_err redis_user_for_app(const char *app, char out[64], struct miren_error *err);

enum redis_tenant_kind {
	REDIS_TENANT_OWNER,    /* the only tenant: all keys (small) */
	REDIS_TENANT_PREFIXED, /* keys and channels under a prefix (shared) */
};

/*
 * Creates or resets user `user` (its password to `password`, its rules to
 * those of kind, see the top of this file; prefix is "<app>:" for
 * REDIS_TENANT_PREFIXED, ignored otherwise) and saves the ACL file.  Also
 * the rotation of a tenant's password: the old one stops working at once
 * (connections already authenticated stay).  Connects as REDIS_ADMIN_USER
 * with admin_password.  Idempotent.
 */
enum miren_err redis_tenant_create(const char *address, int port, const char *admin_password,
				   const char *user, const char *password,
				   enum redis_tenant_kind kind, const char *prefix,
				   struct miren_error *err);

/*
 * Removes a tenant: turns user off and closes its connections, deletes
 * every key matching "<prefix>*" when prefix is not NULL (SCAN MATCH and
 * UNLINK, in batches), then deletes the user and saves the ACL file.
 * Missing parts are fine; run again after a crash at any point, it
 * finishes the job.
 */
enum miren_err redis_tenant_drop(const char *address, int port, const char *admin_password,
				 const char *user, const char *prefix, struct miren_error *err);

/* The ACL users other than "default" and REDIS_ADMIN_USER, sorted (array
 * and strings to free with redis_strv_free). */
enum miren_err redis_tenant_users(const char *address, int port, const char *admin_password,
				  char ***users, size_t *n, struct miren_error *err);
void redis_strv_free(char **v, size_t n);

/*
 * A consistent snapshot taken by the server: BGSAVE (waiting first for a
 * save already running: it may have begun before writes the caller must
 * see), then waits until it ended (INFO persistence: rdb_saves grew, no
 * save in progress) and checks it succeeded.  DISK/REDIS_SNAPSHOT_PATH
 * then holds every write the server acknowledged before the call; the
 * server renames a later snapshot into place, so a reader that opened the
 * file keeps a whole one.  Up to timeout_ms; *stop as in redis_wait_ready.
 */
enum miren_err redis_snapshot(const char *address, int port, const char *admin_password,
			      int timeout_ms, const atomic_bool *stop, struct miren_error *err);

/*
 * Checks an RDB file with redis-check-rdb (run as uid/gid, (uid_t)-1: the
 * caller); MIREN_EINVAL with its verdict when the file is damaged.
 */
enum miren_err redis_check_snapshot(const char *rdb_path, uid_t uid, gid_t gid,
				    struct miren_error *err);

/*
 * Makes a restored disk start from its snapshot: the server (appendonly)
 * loads its append-only file, not dump.rdb, so DISK/data/appendonlydir is
 * rebuilt with the snapshot as its base (a copy of
 * DISK/REDIS_SNAPSHOT_PATH and a manifest naming only it).  The server must
 * not run on DISK.  Owned by uid/gid.  Idempotent.
 */
enum miren_err redis_restore_prepare(const char *disk_dir, uid_t uid, gid_t gid,
				     struct miren_error *err);

/*
 * A tenant's logical dump: every key matching "<prefix>*" (prefix NULL:
 * every key of database 0), each as the Redis protocol command RESTORE key
 * ttl-ms payload REPLACE (what DUMP gives), after a first command PREFIX
 * <prefix> ("" for NULL) that says which prefix the keys carry, so that a
 * load into another tenant renames them to its own; written to fd (left
 * open).  Keys are read with SCAN: a key written during the dump may or
 * may not be in it.
 */
enum miren_err redis_tenant_dump(const char *address, int port, const char *admin_password,
				 const char *prefix, int fd, struct miren_error *err);
/*
 * Loads a dump (redis_tenant_dump's format) from fd into the server,
 * replacing the tenant's keys: one MULTI/EXEC transaction that unlinks
 * every key under prefix (NULL: every key) and restores the dump's.  With
 * a prefix ("" for a tenant that has the whole server), a key the dump
 * names under its PREFIX P is restored as prefix followed by the rest of
 * the key (P "app:" and prefix "other:": "app:k" becomes "other:k"); a
 * dump without a PREFIX line (written before it had one) must name keys
 * under prefix, kept as they are.  prefix NULL: every key as the dump
 * names it (a scratch server).  Every other command must be RESTORE key
 * ttl payload REPLACE of a key under the dump's prefix, else
 * MIREN_EINVAL naming what is wrong and the
 * transaction is discarded: a dump that is not well-formed, cut short or
 * of another tenant changes nothing.  The server checks each payload
 * whole (sanitize-dump-payload) only when EXEC runs: a payload it refuses
 * then fails the load (MIREN_EINVAL) with the transaction's other
 * commands applied, which a dump written by redis_tenant_dump and kept
 * checksummed does not have.
 */
enum miren_err redis_tenant_load(const char *address, int port, const char *admin_password,
				 const char *prefix, int fd, struct miren_error *err);

/* What `miren addon list` and info show about a server. */
struct redis_info {
	char version[32];
	long long used_memory; /* bytes */
	long long keys;        /* in database 0 */
	long long clients;     /* connected, the platform's own included */
	long long maxmemory;   /* bytes, 0: none */
	long long maxclients;  /* the clients it takes at once */
	long long uptime_s;    /* uptime_in_seconds */
};
enum miren_err redis_info(const char *address, int port, const char *admin_password,
			  struct redis_info *out, struct miren_error *err);

/*
 * One tenant's share of a server: *connections, the sessions logged in as
 * user (CLIENT LIST); *bytes, with prefix the sum of MEMORY USAGE of the
 * keys under it (SCAN, at most a million keys), without prefix (the
 * tenant owns the server) the data set's memory (used_memory_dataset).
 */
enum miren_err redis_tenant_usage(const char *address, int port, const char *admin_password,
				  const char *user, const char *prefix, long long *bytes,
				  int *connections, struct miren_error *err);

/*
 * The command line of an interactive session as user: {bindir/redis-cli,
 * "-h", address, "-p", port, "--user", user, NULL}.  The password goes in
 * the environment as REDISCLI_AUTH (redis_connect_env_name), never on the
 * command line.  Free with redis_argv_free.
 */
char **redis_connect_argv(const char *address, int port, const char *user);
#define REDIS_CONNECT_PASSWORD_ENV "REDISCLI_AUTH"
/* Splits one redis-cli command line into its words as redis-cli does
 * (sdssplitargs): blanks separate, "..." with \n \r \t \b \a \xHH and
 * \<c> escapes, '...' with \'.  *out: the words, NULL-terminated, each
 * and the array malloc'd.  MIREN_EINVAL for unbalanced quotes or none. */
enum miren_err redis_split_command(const char *line, char ***out, struct miren_error *err);

/*
 * SIGKILLs every redis-server whose working directory is DISK/data (a
 * server chdirs to its `dir`) other than keep (0: none): the server of a
 * daemon killed between starting it and recording its pid, which holds
 * the address the supervised one needs.  Returns how many it ended.
 */
int redis_stop_orphans(const char *disk_dir, pid_t keep);

/*
 * The pid of a redis-server working on disk_dir (supervised or not), 0 if
 * none.  With stop, ends it first: SIGTERM (it flushes the append-only
 * file and exits), SIGKILL after timeout_ms.
 */
pid_t redis_disk_server(const char *disk_dir, bool stop, int timeout_ms);

/*
 * Makes DISK the directory of a scratch server (lib/addon/scratch.h): a
 * DISK/redis.conf listening on no port, only on the unix socket
 * socket_path (mode 0700), loading the append-only file of DISK/data (a
 * restored disk after redis_restore_prepare; none: it starts empty); a DISK/users.acl with
 * "default" off and REDIS_ADMIN_USER with admin_password only.  Every function here that takes an
 * address also takes such a socket's path (starting with '/'; the port is then unused).
 */
enum miren_err redis_scratch_init(const char *disk_dir, const char *socket_path,
				  const char *admin_password, uid_t uid, gid_t gid,
				  struct miren_error *err);

#endif
