/* Filesystem helpers; see fs.h. */
#include "util/fs.h"
#include "util/compiler.h"
#include "util/err.h"
#include "util/io.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <libgen.h>
#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Bytes per copy_file_range call (fs_copy_tree). */
#define COPY_CHUNK (1 << 20)

enum miren_err fs_mkdir_p(const char *path, mode_t mode)
{
	char *p = xstrdup(path);
	enum miren_err rc = 0;
	for (char *s = p + 1;; s++) {
		if (*s == '/' || *s == '\0') {
			char c = *s;
			*s = '\0';
			if (mkdir(p, mode) != 0 && errno != EEXIST) {
				rc = MIREN_EIO;
				break;
			}
			*s = c;
			if (!c)
				break;
		}
	}
	free(p);
	if (!rc && !fs_is_dir(path))
		rc = MIREN_EIO;
	return rc;
}

static int rm_one(const char *path, const struct stat *st MIREN_UNUSED, int flag,
		  struct FTW *ftw MIREN_UNUSED)
{
	int r = (flag == FTW_DP) ? rmdir(path) : unlink(path);
	return (r != 0 && errno != ENOENT) ? -1 : 0;
}

enum miren_err fs_remove_tree(const char *path)
{
	struct stat st;
	if (lstat(path, &st) != 0)
		return errno == ENOENT ? 0 : MIREN_EIO;
	if (!S_ISDIR(st.st_mode))
		return unlink(path) == 0 ? 0 : MIREN_EIO;
	return nftw(path, rm_one, 32, FTW_DEPTH | FTW_PHYS) == 0 ? 0 : MIREN_EIO;
}

enum miren_err fs_fsync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0 && (errno == ENOTDIR || errno == ENOENT)) {
		/* A file, or a name just renamed away: its directory. */
		char *d = xstrdup(dir);
		fd = open(dirname(d), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		free(d);
	}
	if (fd < 0)
		return MIREN_EIO;
	enum miren_err rc = fsync(fd) == 0 ? 0 : MIREN_EIO;
	close(fd);
	return rc;
}

enum miren_err fs_write_atomic(const char *path, const void *data, size_t len, mode_t mode)
{
	return fs_write_atomic_owned(path, data, len, mode, (uid_t)-1, (gid_t)-1);
}

enum miren_err fs_write_atomic_owned(const char *path, const void *data, size_t len, mode_t mode,
				     uid_t uid, gid_t gid)
{
	char *tmp = xasprintf("%s.tmp.%d", path, (int)getpid());
	enum miren_err rc = MIREN_EIO;
	/* A leftover of a crash is replaced; a link planted there is never
	 * followed. */
	unlink(tmp);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, mode);
	if (fd < 0)
		goto out;
	if (io_write_all(fd, data, len) != 0 || fchmod(fd, mode) != 0 ||
	    ((uid != (uid_t)-1 || gid != (gid_t)-1) && fchown(fd, uid, gid) != 0)) {
		close(fd);
		unlink(tmp);
		goto out;
	}
	if (fsync(fd) != 0 || close(fd) != 0 || rename(tmp, path) != 0) {
		unlink(tmp);
		goto out;
	}
	char *d = xstrdup(path);
	rc = fs_fsync_dir(dirname(d));
	free(d);
out:
	free(tmp);
	return rc;
}

int fs_exists(const char *path)
{
	struct stat st;
	return lstat(path, &st) == 0;
}

int fs_is_dir(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

static long long du_total;
static int du_one(const char *path MIREN_UNUSED, const struct stat *st, int flag MIREN_UNUSED,
		  struct FTW *ftw MIREN_UNUSED)
{
	du_total += (long long)st->st_blocks * 512;
	return 0;
}

long long fs_disk_usage(const char *path)
{
	/* nftw has no user pointer; serialise the walk. */
	static pthread_mutex_t du_lock = PTHREAD_MUTEX_INITIALIZER;
	pthread_mutex_lock(&du_lock);
	du_total = 0;
	long long total = nftw(path, du_one, 32, FTW_PHYS) == 0 ? du_total : -1;
	pthread_mutex_unlock(&du_lock);
	return total;
}

static uid_t chown_uid;
static gid_t chown_gid;
static int chown_one(const char *path, const struct stat *st MIREN_UNUSED, int flag MIREN_UNUSED,
		     struct FTW *ftw MIREN_UNUSED)
{
	return lchown(path, chown_uid, chown_gid) == 0 ? 0 : -1;
}

enum miren_err fs_chown_tree(const char *path, uid_t uid, gid_t gid)
{
	static pthread_mutex_t chown_lock = PTHREAD_MUTEX_INITIALIZER;
	pthread_mutex_lock(&chown_lock);
	chown_uid = uid;
	chown_gid = gid;
	enum miren_err rc = nftw(path, chown_one, 32, FTW_PHYS) == 0 ? 0 : MIREN_EIO;
	pthread_mutex_unlock(&chown_lock);
	return rc;
}

char *fs_join(const char *a, const char *b)
{
	size_t la = strlen(a);
	while (la > 1 && a[la - 1] == '/')
		la--;
	while (*b == '/')
		b++;
	return xasprintf("%.*s/%s", (int)la, a, b);
}

/* Copies the content of in to out: copy_file_range (in the kernel; shares
 * extents where the filesystem can), else read/write. */
static int copy_fd(int in, int out)
{
	bool plain = false;
	for (;;) {
		ssize_t n;
		if (!plain) {
			n = copy_file_range(in, NULL, out, NULL, COPY_CHUNK, 0);
			if (n < 0 && (errno == EXDEV || errno == ENOSYS || errno == EOPNOTSUPP ||
				      errno == EINVAL)) {
				plain = true;
				continue;
			}
		} else {
			char buf[65536];
			n = read(in, buf, sizeof(buf));
			if (n > 0 && io_write_all(out, buf, (size_t)n) != 0)
				return -1;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? -1 : 0;
	}
}

/* Copies the regular file name of sfd into dfd; something else found
 * there by then (it changed since it was looked at) is skipped. */
static int copy_file_at(int sfd, int dfd, const char *name)
{
	int in = openat(sfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (in < 0)
		return errno == ELOOP || errno == ENOENT ? 0 : -1;
	struct stat st;
	int rc = -1, out = -1;
	if (fstat(in, &st) != 0)
		goto done;
	if (!S_ISREG(st.st_mode)) {
		rc = 0;
		goto done;
	}
	out = openat(dfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (out < 0 || copy_fd(in, out) != 0 || fchmod(out, st.st_mode & 0777) != 0)
		goto done;
	struct timespec times[2] = { st.st_atim, st.st_mtim };
	rc = futimens(out, times);
done:
	if (out >= 0 && close(out) != 0)
		rc = -1;
	close(in);
	return rc;
}

/* Copies the entries of directory sfd into directory dfd (both fds stay
 * open: the caller's). */
static int copy_dir_at(int sfd, int dfd, int depth)
{
	if (depth > FS_COPY_MAX_DEPTH) {
		errno = ELOOP;
		return -1;
	}
	int lfd = dup(sfd);
	DIR *dh = lfd < 0 ? NULL : fdopendir(lfd);
	if (!dh) {
		if (lfd >= 0)
			close(lfd);
		return -1;
	}
	int rc = 0;
	struct dirent *de;
	while (!rc && (errno = 0, de = readdir(dh))) {
		const char *name = de->d_name;
		if (!strcmp(name, ".") || !strcmp(name, ".."))
			continue;
		struct stat st;
		if (fstatat(sfd, name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
			rc = errno == ENOENT ? 0 : -1; /* gone meanwhile */
			continue;
		}
		if (S_ISREG(st.st_mode)) {
			rc = copy_file_at(sfd, dfd, name);
		} else if (S_ISLNK(st.st_mode)) {
			char target[PATH_MAX];
			ssize_t n = readlinkat(sfd, name, target, sizeof(target) - 1);
			if (n < 0) {
				rc = errno == EINVAL || errno == ENOENT ? 0 : -1;
				continue;
			}
			target[n] = '\0';
			rc = symlinkat(target, dfd, name);
		} else if (S_ISDIR(st.st_mode)) {
			int s2 = -1, d2 = -1;
			rc = -1;
			if (mkdirat(dfd, name, 0700) == 0 &&
			    (s2 = openat(sfd, name,
					 O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) >= 0 &&
			    (d2 = openat(dfd, name,
					 O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) >= 0 &&
			    copy_dir_at(s2, d2, depth + 1) == 0)
				rc = fchmod(d2, st.st_mode & 0777);
			int saved = errno;
			if (s2 >= 0)
				close(s2);
			if (d2 >= 0)
				close(d2);
			errno = saved;
		}
	}
	if (!rc && errno != 0 && !de)
		rc = -1;
	int saved = errno;
	closedir(dh);
	errno = saved;
	return rc;
}

enum miren_err fs_copy_tree(const char *src, const char *dst)
{
	int sfd = open(src, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC), dfd = -1;
	struct stat st;
	int rc = -1;
	if (sfd < 0 || fstat(sfd, &st) != 0 || mkdir(dst, 0700) != 0)
		goto out;
	dfd = open(dst, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (dfd >= 0 && copy_dir_at(sfd, dfd, 1) == 0 && fchmod(dfd, st.st_mode & 0777) == 0)
		rc = syncfs(dfd);
out:;
	int saved = errno;
	if (sfd >= 0)
		close(sfd);
	if (dfd >= 0)
		close(dfd);
	errno = saved;
	return rc == 0 ? 0 : MIREN_EIO;
}
