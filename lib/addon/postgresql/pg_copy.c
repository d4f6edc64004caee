/*
 * Copying a cluster tree (copy_file_range, holes kept or allocated, owner
 * set) and punching holes into never-written WAL tails; see pg.h and
 * pg_internal.h.
 */
#include "addon/postgresql/pg_internal.h"

#include "supervise/supervise.h"
#include "util/err.h"
#include "util/fault.h"
#include "util/fs.h"
#include "util/io.h"
#include "util/sha256.h"
#include "util/strbuf.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <libpq-fe.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

/* ---- clone -------------------------------------------------------------- */

struct copy_ctx {
	uid_t uid;
	gid_t gid;
	char rel[4096]; /* path below the template, for messages */
	struct miren_error *err;
};

static int copy_fail(struct copy_ctx *c, const char *what, const char *name)
{
	return miren_error_set(c->err, MIREN_EIO, "cannot %s %s%s%s: %s", what, c->rel,
			       *c->rel ? "/" : "", name, io_strerror(errno));
}

/* Copies len bytes at off of sfd to the same offset of dfd.  Returns 0 or
 * -1 (errno set). */
static int copy_range(int sfd, int dfd, off_t off, off_t len)
{
	off_t in = off, out = off, end = off + len;
	bool plain = false;
	while (in < end) {
		if (!plain) {
			ssize_t n = copy_file_range(sfd, &in, dfd, &out, (size_t)(end - in), 0);
			if (n > 0)
				continue;
			if (n == 0)
				return 0; /* the source shrank: nothing more to copy */
			if (errno == EINTR)
				continue;
			if (errno != EXDEV && errno != ENOSYS && errno != EINVAL &&
			    errno != EOPNOTSUPP && errno != EPERM)
				return -1;
			plain = true; /* the kernel cannot: read and write */
		}
		char buf[65536];
		size_t want = end - in < (off_t)sizeof(buf) ? (size_t)(end - in) : sizeof(buf);
		ssize_t n = pread(sfd, buf, want, in);
		if (n == 0)
			return 0;
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		for (ssize_t done = 0; done < n;) {
			ssize_t w = pwrite(dfd, buf + done, (size_t)(n - done), out);
			if (w < 0 && errno == EINTR)
				continue;
			if (w < 0)
				return -1;
			done += w;
			out += w;
		}
		in += n;
	}
	return 0;
}

/* Allocates [off, off+len) of fd as zeros without writing them when the
 * filesystem can (so a later write cannot fail for lack of space, which
 * PostgreSQL expects of WAL segments), else writes zeros. */
static int zero_range(int fd, off_t off, off_t len)
{
	if (fallocate(fd, 0, off, len) == 0)
		return 0;
	if (errno != EOPNOTSUPP && errno != ENOSYS)
		return -1;
	static const char zeros[65536];
	while (len > 0) {
		size_t n = len < (off_t)sizeof(zeros) ? (size_t)len : sizeof(zeros);
		ssize_t w = pwrite(fd, zeros, n, off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -1;
		off += w;
		len -= w;
	}
	return 0;
}

/* Copies a regular file of st_size bytes.  Holes of a sparse source (the
 * template's WAL tail) are allocated, not copied.  Returns 0 or -1. */
static int copy_file(int sfd, int dfd, const struct stat *st)
{
	off_t size = st->st_size;
	if (size == 0)
		return 0;
	if ((off_t)st->st_blocks * 512 >= size)
		return copy_range(sfd, dfd, 0, size);
	off_t pos = 0;
	while (pos < size) {
		off_t data = lseek(sfd, pos, SEEK_DATA);
		if (data < 0 && errno != ENXIO)
			return copy_range(sfd, dfd, pos, size - pos); /* no SEEK_DATA */
		if (data < 0 || data > size)
			data = size;
		if (data > pos && zero_range(dfd, pos, data - pos) != 0)
			return -1;
		if (data >= size)
			break;
		off_t hole = lseek(sfd, data, SEEK_HOLE);
		if (hole < 0 || hole > size)
			hole = size;
		if (copy_range(sfd, dfd, data, hole - data) != 0)
			return -1;
		pos = hole;
	}
	return ftruncate(dfd, size);
}

/* Punches holes into the all-zero 64 KiB blocks of the regular files in
 * directory dir (the never-written tail of initdb's WAL segment), so clones
 * need not copy them.  Best effort: a filesystem without hole punching
 * keeps the zeros.  Returns 0 or MIREN_EIO with err. */
enum miren_err pgi_sparsify_dir(const char *dir, struct miren_error *err)
{
	DIR *d = opendir(dir);
	if (!d)
		return miren_error_set(err, MIREN_EIO, "cannot open %s: %s", dir,
				       io_strerror(errno));
	enum miren_err rc = 0;
	char *buf = xmalloc(65536);
	struct dirent *de;
	while (!rc && (de = readdir(d)) != NULL) {
		struct stat st;
		if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0 ||
		    !S_ISREG(st.st_mode))
			continue;
		int fd = openat(dirfd(d), de->d_name, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
		if (fd < 0) {
			rc = miren_error_set(err, MIREN_EIO, "cannot open %s/%s: %s", dir,
					     de->d_name, io_strerror(errno));
			break;
		}
		off_t off = 0;
		for (;;) {
			ssize_t n = pread(fd, buf, 65536, off);
			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0)
				break;
			bool zero = buf[0] == 0 && memcmp(buf, buf + 1, (size_t)n - 1) == 0;
			if (zero && n == 65536 &&
			    fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, off, n) != 0)
				break; /* not supported here: keep the zeros */
			off += n;
		}
		if (fsync(fd) != 0)
			rc = miren_error_set(err, MIREN_EIO, "cannot fsync %s/%s: %s", dir,
					     de->d_name, io_strerror(errno));
		close(fd);
	}
	free(buf);
	closedir(d);
	return rc;
}

/* Sets owner (when given) and the exact mode on fd. */
static int own_fd(struct copy_ctx *c, int fd, mode_t mode)
{
	if (pgi_ids_given(c->uid, c->gid) && fchown(fd, c->uid, c->gid) != 0)
		return -1;
	return fchmod(fd, mode & 07777);
}

static int copy_dir(struct copy_ctx *c, int sdir, int ddir, bool top);

static int copy_entry(struct copy_ctx *c, int sdir, int ddir, const char *name)
{
	struct stat st;
	if (fstatat(sdir, name, &st, AT_SYMLINK_NOFOLLOW) != 0)
		return copy_fail(c, "stat", name);
	if (S_ISREG(st.st_mode)) {
		int rc = 0;
		int sfd = openat(sdir, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
		if (sfd < 0)
			return copy_fail(c, "open", name);
		int dfd = openat(ddir, name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW,
				 0600);
		if (dfd < 0)
			rc = copy_fail(c, "create the copy of", name);
		else if (copy_file(sfd, dfd, &st) != 0)
			rc = copy_fail(c, "copy", name);
		else if (own_fd(c, dfd, st.st_mode) != 0)
			rc = copy_fail(c, "set owner and mode of the copy of", name);
		if (dfd >= 0 && close(dfd) != 0 && !rc)
			rc = copy_fail(c, "write the copy of", name);
		close(sfd);
		return rc;
	}
	if (S_ISDIR(st.st_mode)) {
		if (mkdirat(ddir, name, 0700) != 0)
			return copy_fail(c, "create the copy of", name);
		int sfd = openat(sdir, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
		if (sfd < 0)
			return copy_fail(c, "open", name);
		int dfd = openat(ddir, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
		if (dfd < 0) {
			int rc = copy_fail(c, "open the copy of", name);
			close(sfd);
			return rc;
		}
		size_t old = strlen(c->rel);
		snprintf(c->rel + old, sizeof(c->rel) - old, "%s%s", old ? "/" : "", name);
		int rc = copy_dir(c, sfd, dfd, false); /* closes sfd */
		c->rel[old] = '\0';
		if (!rc && own_fd(c, dfd, st.st_mode) != 0)
			rc = copy_fail(c, "set owner and mode of the copy of", name);
		close(dfd);
		return rc;
	}
	if (S_ISLNK(st.st_mode)) {
		char target[4096];
		ssize_t n = readlinkat(sdir, name, target, sizeof(target) - 1);
		if (n < 0)
			return copy_fail(c, "read the link", name);
		target[n] = '\0';
		if (symlinkat(target, ddir, name) != 0)
			return copy_fail(c, "create the copy of", name);
		if (pgi_ids_given(c->uid, c->gid) &&
		    fchownat(ddir, name, c->uid, c->gid, AT_SYMLINK_NOFOLLOW) != 0)
			return copy_fail(c, "set the owner of the copy of", name);
		return 0;
	}
	return miren_error_set(c->err, MIREN_EIO,
			       "cannot copy %s%s%s: not a file, directory "
			       "or symbolic link",
			       c->rel, *c->rel ? "/" : "", name);
}

/* Copies every entry of directory sdir into ddir; closes sdir. */
static int copy_dir(struct copy_ctx *c, int sdir, int ddir, bool top)
{
	DIR *d = fdopendir(sdir);
	if (!d) {
		int rc = copy_fail(c, "read directory", "");
		close(sdir);
		return rc;
	}
	int rc = 0;
	struct dirent *de;
	errno = 0;
	while (!rc && (de = readdir(d)) != NULL) {
		const char *n = de->d_name;
		if (!strcmp(n, ".") || !strcmp(n, ".."))
			continue;
		if (top && (!strcmp(n, "postmaster.pid") || !strcmp(n, "postmaster.opts") ||
			    !strcmp(n, PG_SERVER_CONF)))
			continue;
		rc = copy_entry(c, dirfd(d), ddir, n);
		errno = 0;
	}
	if (!rc && errno != 0)
		rc = copy_fail(c, "read directory", "");
	closedir(d);
	return rc;
}

/* Copies the tree src into the new directory dst (mode of src). */
enum miren_err pgi_copy_tree(const char *src, const char *dst, uid_t uid, gid_t gid,
			     struct miren_error *err)
{
	struct copy_ctx *c = xcalloc(1, sizeof(*c));
	c->uid = uid;
	c->gid = gid;
	c->err = err;
	int rc = 0, sfd = -1, dfd = -1;
	struct stat st;
	sfd = open(src, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (sfd < 0 || fstat(sfd, &st) != 0) {
		rc = miren_error_set(err, MIREN_EIO, "cannot open the template %s: %s", src,
				     io_strerror(errno));
		goto out;
	}
	if (mkdir(dst, 0700) != 0 ||
	    (dfd = open(dst, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW)) < 0) {
		rc = miren_error_set(err, MIREN_EIO, "cannot create directory %s: %s", dst,
				     io_strerror(errno));
		goto out;
	}
	rc = copy_dir(c, sfd, dfd, true);
	sfd = -1; /* closed by copy_dir */
	if (!rc && own_fd(c, dfd, st.st_mode) != 0)
		rc = miren_error_set(err, MIREN_EIO, "cannot set owner and mode of %s: %s", dst,
				     io_strerror(errno));
out:
	if (sfd >= 0)
		close(sfd);
	if (dfd >= 0)
		close(dfd);
	free(c);
	return rc;
}

/* A single-quoted postgresql.conf string. Caller frees. */
