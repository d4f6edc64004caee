/* Filesystem helpers; see fs.h. */
#include "util/fs.h"
#include "util/compiler.h"
#include "util/err.h"
#include "util/io.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <libgen.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

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
