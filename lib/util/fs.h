/*
 * Filesystem helpers.  Each returns 0 or a miren_err; none prints.
 */
#ifndef MIREN_FS_H
#define MIREN_FS_H

#include "util/err.h"

#include <stddef.h>
#include <sys/types.h>

/* mkdir -p with the given mode for every directory created. */
enum miren_err fs_mkdir_p(const char *path, mode_t mode);
/* rm -rf; a missing path is success. */
enum miren_err fs_remove_tree(const char *path);
/* Writes data to path atomically (temp file path.tmp.<pid> created anew,
 * never through a symlink; fsync, rename, fsync dir).  0 or MIREN_EIO
 * (errno set); on failure path is untouched. */
enum miren_err fs_write_atomic(const char *path, const void *data, size_t len, mode_t mode);
/* The same, the file owned by uid:gid ((uid_t)-1/(gid_t)-1: unchanged) and
 * of exactly mode (no umask) before it appears under path. */
enum miren_err fs_write_atomic_owned(const char *path, const void *data, size_t len, mode_t mode,
				     uid_t uid, gid_t gid);
/* fsync the directory holding path (or path itself when it is a directory). */
enum miren_err fs_fsync_dir(const char *dir);
int fs_exists(const char *path);
int fs_is_dir(const char *path);
/* Sum of st_blocks*512 of every file below path (du -s). */
long long fs_disk_usage(const char *path);
/* chown -R; used to hand trees to the unprivileged service user. */
enum miren_err fs_chown_tree(const char *path, uid_t uid, gid_t gid);
/* Joins two path parts with one '/'. Caller frees. */
char *fs_join(const char *a, const char *b);

#endif
