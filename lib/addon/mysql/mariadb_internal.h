/*
 * What the files of the MariaDB mechanics share (mariadb_util.c,
 * mariadb_install.c, mariadb_files.c, mariadb_sql.c, mariadb_tools.c); not
 * an interface for anything outside them (the provider uses mariadb.h).
 */
#ifndef MIREN_ADDON_MYSQL_MARIADB_INTERNAL_H
#define MIREN_ADDON_MYSQL_MARIADB_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "addon/mysql/mariadb.h"
#include "util/err.h"

#define MARIADB_ROOT "root"
#define MARIADB_INSTALL_TIMEOUT_MS 180000
#define MARIADB_COPY_TIMEOUT_MS 600000
#define MARIADB_BACKUP_TIMEOUT_MS 0 /* as long as the data takes */
#define MARIADB_READY_POLL_MS 20
#define MARIADB_NAME_MAX 64

/* The settings of every server and of the bootstrap that makes the
 * template (NULL-terminated). */
extern const char *const mdbi_small_settings[];

/* A sleep of ms that EINTR does not cut short. */
void mdbi_nap_ms(int ms);
/* Whether an owner was given ((uid_t)-1/(gid_t)-1: keep the caller's). */
bool mdbi_ids_given(uid_t uid, gid_t gid);
/* The last max bytes of a command's output on one line into dst[len]. */
void mdbi_output_tail(char *dst, size_t len, const char *out, size_t max);
/* Writes data to path atomically, then gives it to uid/gid. */
enum miren_err mdbi_write_owned(const char *path, const char *data, mode_t mode, uid_t uid,
				gid_t gid, struct miren_error *err);
/* mkdir path (existing is fine), then exact mode and owner, not
 * following a symlink. */
enum miren_err mdbi_ensure_dir(const char *path, mode_t mode, uid_t uid, gid_t gid,
			       struct miren_error *err);
/* syncfs of the filesystem holding path; fsync of path's directory. */
enum miren_err mdbi_sync_fs_of(const char *path, struct miren_error *err);
enum miren_err mdbi_fsync_parent(const char *path, struct miren_error *err);
/* Runs argv (sv_run) as uid/gid in cwd; a failure becomes "<what> failed
 * (exit N): <the tail of its output>". */
enum miren_err mdbi_run_tool(char *const *argv, const char *cwd, uid_t uid, gid_t gid,
			     int timeout_ms, const char *what, struct miren_error *err);
/* Passwords carried in option files and SQL literals here: 1..255
 * printable ASCII characters without quotes, backslash or spaces. */
bool mdbi_password_ok(const char *pw);
/* The mysql_native_password hash of pw ('*' + 40 hex digits) into out. */
void mdbi_native_hash(const char *pw, char out[42]);
/* [a-z_][a-z0-9_]*, 1..64 bytes, not reserved: else MIREN_EINVAL naming
 * `what`. */
enum miren_err mdbi_check_name(const char *name, const char *what, struct miren_error *err);

#endif
