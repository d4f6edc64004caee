/*
 * Small helpers the PostgreSQL mechanics share: clocks, error text, owned
 * files, flushing; see pg.h and pg_internal.h.
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

/* ---- small helpers ------------------------------------------------------ */

void pgi_nap_ms(int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

bool pgi_ids_given(uid_t uid, gid_t gid)
{
	return uid != (uid_t)-1 || gid != (gid_t)-1;
}

/* Copies src into dst[len] with runs of whitespace (newlines, tabs) made one
 * space and the ends trimmed: libpq and initdb messages span lines. */
void pgi_one_line(char *dst, size_t len, const char *src)
{
	size_t o = 0;
	bool space = false;
	if (!len)
		return;
	for (const char *p = src ? src : ""; *p && o + 1 < len; p++) {
		if (isspace((unsigned char)*p)) {
			space = o > 0;
			continue;
		}
		if (space && o + 2 < len)
			dst[o++] = ' ';
		space = false;
		dst[o++] = *p;
	}
	dst[o] = '\0';
}

/* The last max bytes of a command's output, on one line. */
void pgi_output_tail(char *dst, size_t len, const char *out, size_t max)
{
	size_t n = out ? strlen(out) : 0;
	pgi_one_line(dst, len, n > max ? out + n - max : (out ? out : ""));
}

/* Writes data to path via path.tmp: owned by uid/gid (when given), mode,
 * fsync'd, renamed, directory fsync'd.  Returns 0 or MIREN_EIO with err. */
enum miren_err pgi_write_owned(const char *path, const char *data, mode_t mode, uid_t uid,
			       gid_t gid, struct miren_error *err)
{
	enum miren_err rc = 0;
	char *tmp = xasprintf("%s.tmp", path);
	unlink(tmp);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, mode);
	if (fd < 0) {
		rc = miren_error_set(err, MIREN_EIO, "cannot create %s: %s", tmp,
				     io_strerror(errno));
		goto out;
	}
	size_t left = strlen(data);
	const char *p = data;
	while (left) {
		ssize_t n = write(fd, p, left);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			rc = miren_error_set(err, MIREN_EIO, "cannot write %s: %s", tmp,
					     io_strerror(errno));
			goto out;
		}
		p += n;
		left -= (size_t)n;
	}
	if (fchmod(fd, mode) != 0 || (pgi_ids_given(uid, gid) && fchown(fd, uid, gid) != 0)) {
		rc = miren_error_set(err, MIREN_EIO, "cannot set owner and mode of %s: %s", tmp,
				     io_strerror(errno));
		goto out;
	}
	if (fsync(fd) != 0) {
		rc = miren_error_set(err, MIREN_EIO, "cannot fsync %s: %s", tmp,
				     io_strerror(errno));
		goto out;
	}
	close(fd);
	fd = -1;
	if (rename(tmp, path) != 0) {
		rc = miren_error_set(err, MIREN_EIO, "cannot rename %s: %s", tmp,
				     io_strerror(errno));
		goto out;
	}
	char *d = xstrdup(path);
	if (fs_fsync_dir(dirname(d)) != 0)
		rc = miren_error_set(err, MIREN_EIO, "cannot fsync the directory of %s", path);
	free(d);
out:
	if (fd >= 0)
		close(fd);
	if (rc)
		unlink(tmp);
	free(tmp);
	return rc;
}

/* Flushes the filesystem holding path (syncfs: one journal commit). */
enum miren_err pgi_sync_fs_of(const char *path, struct miren_error *err)
{
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return miren_error_set(err, MIREN_EIO, "cannot open %s: %s", path,
				       io_strerror(errno));
	enum miren_err rc = 0;
	if (syncfs(fd) != 0)
		rc = miren_error_set(err, MIREN_EIO, "cannot flush the filesystem of %s: %s", path,
				     io_strerror(errno));
	close(fd);
	return rc;
}

/* mkdir path mode (an existing directory is fine), then exact mode and
 * owner, set through a descriptor opened without following symlinks. */
enum miren_err pgi_ensure_dir(const char *path, mode_t mode, uid_t uid, gid_t gid,
			      struct miren_error *err)
{
	if (mkdir(path, mode) != 0 && errno != EEXIST)
		return miren_error_set(err, MIREN_EIO, "cannot create directory %s: %s", path,
				       io_strerror(errno));
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return miren_error_set(err, MIREN_EIO, "%s is not a directory: %s", path,
				       io_strerror(errno));
	enum miren_err rc = 0;
	if (fchmod(fd, mode) != 0 || (pgi_ids_given(uid, gid) && fchown(fd, uid, gid) != 0))
		rc = miren_error_set(err, MIREN_EIO, "cannot set owner and mode of %s: %s", path,
				     io_strerror(errno));
	close(fd);
	return rc;
}
