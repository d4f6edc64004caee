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
/*
 * Copies the tree at src into dst, which must not exist (made 0700, then
 * given src's permission bits): directories, regular files (content,
 * permission bits without set-id, modification time) and symlinks (as
 * links, their target kept as text); anything else (fifos, sockets,
 * devices) is skipped.  Never follows a symlink, also when src changes
 * meanwhile: every entry is read and made with *at() calls relative to
 * directory fds opened O_NOFOLLOW, files opened O_NOFOLLOW and checked
 * regular.  At most FS_COPY_MAX_DEPTH directories deep (ELOOP beyond).
 * Entries get the process's owner.  Flushes dst's filesystem (syncfs)
 * before returning, so the copy is durable.  0, or MIREN_EIO with errno
 * set; on failure dst may hold part of the copy: the caller removes it.
 */
#define FS_COPY_MAX_DEPTH 128
enum miren_err fs_copy_tree(const char *src, const char *dst);
/* chown -R; used to hand trees to the unprivileged service user. */
enum miren_err fs_chown_tree(const char *path, uid_t uid, gid_t gid);
/* Joins two path parts with one '/'. Caller frees. */
char *fs_join(const char *a, const char *b);

#endif
