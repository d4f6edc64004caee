/*
 * The hardened tar extractor; see extract.h.
 *
 * Safety: every path is checked before anything is created; creation uses
 * openat/mkdirat/symlinkat relative to a directory fd reached from the
 * destination's fd with O_NOFOLLOW|O_DIRECTORY (so an entry below a
 * symlink or a file is refused), files are created O_EXCL|O_NOFOLLOW, so
 * an entry can never be written through a symlink or outside the
 * destination, nor replace one written before.
 */
#include "util/extract.h"
#include "util/io.h"
#include "util/sha256.h"

#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct dirfix {
	char *rel;
	mode_t mode;
	struct timespec mtime;
};

struct extractor {
	struct extract_opts o;
	int root;   /* the destination; -1: check only */
	char *pdir; /* cached parent directory (rel) and its fd */
	int pdir_fd;
	uint64_t files, bytes, entries;
	struct dirfix *fix; /* directories' modes and times, set last */
	size_t nfix, capfix;
	bool root_fix;
	mode_t root_mode;
	struct timespec root_mtime;
};

const char *extract_show(const char *s, char buf[128])
{
	size_t n = 0;
	for (; s && *s && n < 120; s++)
		buf[n++] = (*s >= 0x20 && *s < 0x7f) ? *s : '?';
	if (s && *s) {
		memcpy(buf + n, "...", 3);
		n += 3;
	}
	buf[n] = '\0';
	return buf;
}

static enum miren_err bad(struct miren_error *err, const char *fmt, const char *name,
			  const char *what)
{
	char b[128];
	return miren_error_set(err, MIREN_EINVAL, fmt, extract_show(name, b), what);
}

/* --- path rules ------------------------------------------------------------- */

enum miren_err extract_check_name(const char *name, struct miren_error *err)
{
	char b[128];
	if (name[0] == '/')
		return miren_error_set(err, MIREN_EINVAL, "member '%s' has an absolute path",
				       extract_show(name, b));
	for (const char *p = name; *p;) {
		const char *slash = strchr(p, '/');
		size_t n = slash ? (size_t)(slash - p) : strlen(p);
		if (n == 2 && p[0] == '.' && p[1] == '.')
			return miren_error_set(err, MIREN_EINVAL,
					       "member '%s' has a '..' path component",
					       extract_show(name, b));
		p += n + (slash ? 1 : 0);
	}
	return 0;
}

enum miren_err extract_check_rel(const char *rel, const char *what, struct miren_error *err)
{
	if (!rel || !*rel)
		return miren_error_set(err, MIREN_EINVAL, "empty path in the %s", what);
	if (rel[0] == '/')
		return miren_error_set(err, MIREN_EINVAL, "path '%s' is absolute", rel);
	const char *p = rel;
	for (;;) {
		const char *slash = strchr(p, '/');
		size_t n = slash ? (size_t)(slash - p) : strlen(p);
		if (n == 2 && p[0] == '.' && p[1] == '.')
			return miren_error_set(err, MIREN_EINVAL, "path '%s' has a '..' component",
					       rel);
		if (n == 0 || (n == 1 && p[0] == '.'))
			return miren_error_set(err, MIREN_EINVAL,
					       "path '%s' has an empty or '.' component", rel);
		if (!slash)
			return 0;
		p = slash + 1;
	}
}

bool extract_link_inside(const char *rel, const char *target)
{
	if (!rel || !target || !*target || target[0] == '/')
		return false;
	size_t depth = 0; /* parent directories of rel below the root */
	for (const char *s = rel; *s; s++)
		if (*s == '/')
			depth++;
	size_t ups = 0;
	bool named = false; /* seen a component other than "..", "." or "" */
	const char *p = target;
	for (;;) {
		const char *slash = strchr(p, '/');
		size_t n = slash ? (size_t)(slash - p) : strlen(p);
		if (n == 2 && p[0] == '.' && p[1] == '.') {
			if (named || ++ups > depth)
				return false;
		} else if (!(n == 0 || (n == 1 && p[0] == '.'))) {
			named = true;
		}
		if (!slash)
			return true;
		p = slash + 1;
	}
}

/* --- writing ------------------------------------------------------------------ */

static enum miren_err local_error(struct extractor *x, int e, const char *verb, const char *name,
				  struct miren_error *err)
{
	char b[128];
	if (e == ENOSPC)
		return miren_error_set(err, MIREN_EIO, "cannot extract the %s: the disk is full",
				       x->o.what);
	if (e == EDQUOT)
		return miren_error_set(err, MIREN_EIO,
				       "cannot extract the %s: the disk quota is exceeded",
				       x->o.what);
	if (e == ENAMETOOLONG)
		return miren_error_set(err, MIREN_EINVAL,
				       "member '%s' has a name too long to extract",
				       extract_show(name, b));
	return miren_error_set(err, MIREN_EIO, "cannot %s %s while extracting the %s: %s", verb,
			       extract_show(name, b), x->o.what, io_strerror(e));
}

static bool owner_given(const struct extractor *x)
{
	return x->o.uid != (uid_t)-1 || x->o.gid != (gid_t)-1;
}

static enum miren_err chown_fd(struct extractor *x, int fd, const char *name,
			       struct miren_error *err)
{
	if (owner_given(x) && fchown(fd, x->o.uid, x->o.gid) != 0)
		return local_error(x, errno, "change the owner of", name, err);
	return 0;
}

/* base in dfd, a symlink itself when it is one. */
static enum miren_err chown_at(struct extractor *x, int dfd, const char *base, const char *name,
			       struct miren_error *err)
{
	if (owner_given(x) && fchownat(dfd, base, x->o.uid, x->o.gid, AT_SYMLINK_NOFOLLOW) != 0)
		return local_error(x, errno, "change the owner of", name, err);
	return 0;
}

/* The directory holding rel (walked from the root, never through a symlink,
 * made with parent_mode where missing); *base gets rel's last component.
 * The fd stays owned by the cache. */
static enum miren_err parent_dir(struct extractor *x, const char *rel, const char *name,
				 const char **base, int *out, struct miren_error *err)
{
	const char *slash = strrchr(rel, '/');
	*base = slash ? slash + 1 : rel;
	if (!slash) {
		*out = x->root;
		return 0;
	}
	size_t dl = (size_t)(slash - rel);
	if (x->pdir && strlen(x->pdir) == dl && !memcmp(x->pdir, rel, dl)) {
		*out = x->pdir_fd;
		return 0;
	}
	if (x->pdir) {
		close(x->pdir_fd);
		free(x->pdir);
		x->pdir = NULL;
	}
	char *dir = xstrndup(rel, dl);
	int fd = x->root, rc = 0;
	mode_t mode = x->o.parent_mode ? x->o.parent_mode : 0700;
	for (char *c = dir, *next; c; c = next) {
		next = strchr(c, '/');
		if (next)
			*next++ = '\0';
		int nfd = openat(fd, c, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (nfd < 0 && errno == ENOENT) {
			if (mkdirat(fd, c, mode) != 0 && errno != EEXIST) {
				rc = local_error(x, errno, "create a directory for", name, err);
				break;
			}
			nfd = openat(fd, c, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			if (nfd >= 0 && (rc = chown_fd(x, nfd, name, err))) {
				close(nfd);
				break;
			}
		}
		if (nfd < 0) {
			if (errno == ENOTDIR || errno == ELOOP)
				rc = bad(err, "member '%s' lies below a symlink or a file", name,
					 "");
			else
				rc = local_error(x, errno, "open a directory for", name, err);
			break;
		}
		if (fd != x->root)
			close(fd);
		fd = nfd;
	}
	if (rc) {
		if (fd != x->root)
			close(fd);
		free(dir);
		return rc;
	}
	free(dir); /* cut into components by the walk */
	x->pdir = xstrndup(rel, dl);
	x->pdir_fd = fd;
	*out = fd;
	return 0;
}

static enum miren_err archive_fail(struct extractor *x, struct archive *a, const char *name,
				   struct miren_error *err)
{
	char b[128];
	const char *msg = archive_error_string(a);
	return miren_error_set(err, MIREN_EINVAL, "%s is corrupt (at %s: %s)", x->o.what,
			       extract_show(name, b), msg ? msg : "unreadable tar data");
}

static void set_times(struct extractor *x, int fd, struct archive_entry *e)
{
	(void)x;
	struct timespec ts[2] = {
		{ .tv_sec = 0, .tv_nsec = UTIME_OMIT },
		{ .tv_sec = archive_entry_mtime(e), .tv_nsec = archive_entry_mtime_nsec(e) },
	};
	(void)futimens(fd, ts);
}

static enum miren_err write_file(struct extractor *x, struct archive *a, struct archive_entry *e,
				 const char *rel, const char *name, char sha256_hex[65],
				 struct miren_error *err)
{
	int64_t size = archive_entry_size(e);
	if (size < 0)
		return bad(err, "member '%s' has no size", name, "");
	if (x->o.max_bytes && (uint64_t)size > x->o.max_bytes - x->bytes) {
		return miren_error_set(err, MIREN_ETOOBIG,
				       "the %s holds more than %llu bytes of files", x->o.what,
				       x->o.max_bytes);
	}
	if (archive_entry_sparse_count(e) > 0)
		return bad(err, "member '%s' is a sparse file, which a %s cannot contain", name,
			   x->o.what);
	const char *base;
	int dfd, fd = -1;
	if (x->root >= 0) {
		enum miren_err rc = parent_dir(x, rel, name, &base, &dfd, err);
		if (rc)
			return rc;
		fd = openat(dfd, base, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
		if (fd < 0)
			return errno == EEXIST ? bad(err, "member '%s' appears twice in the %s",
						     name, x->o.what)
					       : local_error(x, errno, "create", name, err);
	}
	struct sha256 h;
	sha256_init(&h);
	uint64_t written = 0;
	enum miren_err rc = 0;
	for (;;) {
		const void *buf;
		size_t len;
		la_int64_t off;
		int ar = archive_read_data_block(a, &buf, &len, &off);
		if (ar == ARCHIVE_EOF)
			break;
		if (ar != ARCHIVE_OK) {
			rc = archive_fail(x, a, name, err);
			break;
		}
		if (off != (la_int64_t)written) {
			rc = bad(err, "member '%s' is a sparse file, which a %s cannot contain",
				 name, x->o.what);
			break;
		}
		if (fd >= 0 && io_write_all(fd, buf, len) != 0) {
			rc = local_error(x, errno, "write", name, err);
			break;
		}
		sha256_update(&h, buf, len);
		written += len;
	}
	char hex[65];
	sha256_final_hex(&h, hex);
	if (!rc && written != (uint64_t)size)
		rc = bad(err,
			 "member '%s' holds a different number of bytes than its header declares",
			 name, "");
	if (fd >= 0) {
		if (!rc)
			rc = chown_fd(x, fd, name, err);
		if (!rc && fchmod(fd, archive_entry_perm(e) & 0777) != 0)
			rc = local_error(x, errno, "set the mode of", name, err);
		if (!rc && x->o.keep_times)
			set_times(x, fd, e);
		/* Start writeback now, so a sync at the end has less to wait for. */
		if (!rc && written && x->o.sync)
			(void)sync_file_range(fd, 0, 0, SYNC_FILE_RANGE_WRITE);
		if (close(fd) != 0 && !rc)
			rc = local_error(x, errno, "write", name, err);
	}
	if (rc)
		return rc;
	if (sha256_hex)
		memcpy(sha256_hex, hex, 65);
	x->files++;
	x->bytes += written;
	return 0;
}

static enum miren_err write_dir(struct extractor *x, struct archive_entry *e, const char *rel,
				const char *name, struct miren_error *err)
{
	struct timespec mt = { archive_entry_mtime(e), archive_entry_mtime_nsec(e) };
	mode_t mode = archive_entry_perm(e) & 01777;
	if (!*rel) {
		x->root_fix = true;
		x->root_mode = mode;
		x->root_mtime = mt;
		return 0;
	}
	if (x->root < 0)
		return 0;
	const char *base;
	int dfd;
	enum miren_err rc = parent_dir(x, rel, name, &base, &dfd, err);
	if (rc)
		return rc;
	if (mkdirat(dfd, base, 0700) != 0) {
		struct stat st;
		if (errno != EEXIST)
			return local_error(x, errno, "create", name, err);
		if (fstatat(dfd, base, &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISDIR(st.st_mode))
			return bad(err, "member '%s' appears twice in the %s", name, x->o.what);
	}
	rc = chown_at(x, dfd, base, name, err);
	if (rc)
		return rc;
	if (x->nfix == x->capfix) {
		x->capfix = x->capfix ? x->capfix * 2 : 64;
		x->fix = xrealloc(x->fix, x->capfix * sizeof(*x->fix));
	}
	x->fix[x->nfix++] = (struct dirfix){ xstrdup(rel), mode, mt };
	return 0;
}

static enum miren_err write_link(struct extractor *x, struct archive_entry *e, const char *rel,
				 const char *name, struct miren_error *err)
{
	char b1[128], b2[128];
	const char *target = archive_entry_symlink(e);
	if (!target || !*target)
		return bad(err, "symlink '%s' has no target", name, "");
	if (x->o.links_inside && target[0] == '/')
		return miren_error_set(err, MIREN_EINVAL,
				       "symlink '%s' has an absolute target ('%s'); a %s cannot "
				       "contain it",
				       extract_show(name, b1), extract_show(target, b2), x->o.what);
	if (x->o.links_inside && !extract_link_inside(rel, target))
		return miren_error_set(err, MIREN_EINVAL,
				       "symlink '%s' points outside the %s ('%s')",
				       extract_show(name, b1), x->o.what, extract_show(target, b2));
	if (x->root < 0)
		return 0;
	const char *base;
	int dfd;
	enum miren_err rc = parent_dir(x, rel, name, &base, &dfd, err);
	if (rc)
		return rc;
	if (symlinkat(target, dfd, base) != 0)
		return errno == EEXIST
			       ? bad(err, "member '%s' appears twice in the %s", name, x->o.what)
			       : local_error(x, errno, "create", name, err);
	rc = chown_at(x, dfd, base, name, err);
	if (rc)
		return rc;
	if (x->o.keep_times) {
		struct timespec ts[2] = {
			{ .tv_sec = 0, .tv_nsec = UTIME_OMIT },
			{ .tv_sec = archive_entry_mtime(e),
			  .tv_nsec = archive_entry_mtime_nsec(e) },
		};
		(void)utimensat(dfd, base, ts, AT_SYMLINK_NOFOLLOW);
	}
	return 0;
}

enum miren_err extractor_entry(struct extractor *x, struct archive *a, struct archive_entry *e,
			       const char *rel, const char *name, char sha256_hex[65],
			       struct miren_error *err)
{
	const char *what = x->o.what;
	if (x->o.max_entries && ++x->entries > x->o.max_entries)
		return miren_error_set(err, MIREN_ETOOBIG, "the %s holds more than %lu entries",
				       what, x->o.max_entries);
	if (archive_entry_hardlink(e))
		return bad(err, "member '%s' is a hard link; a %s cannot contain hard links", name,
			   what);
	mode_t type = archive_entry_filetype(e);
	switch (type) {
	case AE_IFREG:
	case AE_IFDIR:
	case AE_IFLNK:
		break;
	case AE_IFCHR:
	case AE_IFBLK:
		return bad(err, "member '%s' is a device node; a %s cannot contain devices", name,
			   what);
	case AE_IFIFO:
		return bad(err, "member '%s' is a fifo; a %s cannot contain fifos", name, what);
	case AE_IFSOCK:
		return bad(err, "member '%s' is a socket; a %s cannot contain sockets", name, what);
	default:
		return bad(err, "member '%s' has an unsupported type", name, "");
	}
	if (*rel ? extract_check_rel(rel, what, NULL) != 0 : type != AE_IFDIR)
		return bad(err, "member '%s' has an invalid path", name, "");
	if (type == AE_IFREG)
		return write_file(x, a, e, rel, name, sha256_hex, err);
	if (type == AE_IFDIR)
		return write_dir(x, e, rel, name, err);
	return write_link(x, e, rel, name, err);
}

/* --- the extractor ---------------------------------------------------------- */

static int is_empty_dir(int dfd)
{
	int lfd = dup(dfd);
	DIR *d = lfd >= 0 ? fdopendir(lfd) : NULL;
	if (!d) {
		if (lfd >= 0)
			close(lfd);
		return -1;
	}
	rewinddir(d);
	int empty = 1;
	struct dirent *de;
	while ((de = readdir(d)))
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
			empty = 0;
	closedir(d);
	return empty;
}

/* Empties the directory dfd (best effort), never following symlinks. */
static void empty_dir(int dfd)
{
	int lfd = dup(dfd);
	DIR *d = lfd >= 0 ? fdopendir(lfd) : NULL;
	if (!d) {
		if (lfd >= 0)
			close(lfd);
		return;
	}
	rewinddir(d); /* the dup shares its offset with dfd */
	struct dirent *de;
	while ((de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if (unlinkat(dfd, de->d_name, 0) == 0)
			continue;
		int cfd = openat(dfd, de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (cfd < 0)
			continue;
		(void)fchmod(cfd, 0700);
		empty_dir(cfd);
		close(cfd);
		(void)unlinkat(dfd, de->d_name, AT_REMOVEDIR);
	}
	closedir(d);
}

enum miren_err extractor_open(const char *dest, const struct extract_opts *opts,
			      struct extractor **out, struct miren_error *err)
{
	*out = NULL;
	int root = -1;
	if (dest) {
		root = open(dest, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (root < 0)
			return miren_error_set(err, MIREN_EIO, "cannot open the directory %s: %s",
					       dest, io_strerror(errno));
		if (is_empty_dir(root) != 1) {
			close(root);
			return miren_error_set(err, MIREN_EINTERNAL, "directory %s is not empty",
					       dest);
		}
	}
	struct extractor *x = xcalloc(1, sizeof(*x));
	x->o = *opts;
	if (!x->o.what)
		x->o.what = "archive";
	x->root = root;
	x->pdir_fd = -1;
	*out = x;
	return 0;
}

uint64_t extractor_files(const struct extractor *x)
{
	return x->files;
}

uint64_t extractor_bytes(const struct extractor *x)
{
	return x->bytes;
}

enum miren_err extractor_finish(struct extractor *x, struct miren_error *err)
{
	if (x->root < 0)
		return 0;
	for (size_t i = x->nfix; i-- > 0;) {
		struct dirfix *f = &x->fix[i];
		const char *base;
		int dfd;
		enum miren_err rc = parent_dir(x, f->rel, f->rel, &base, &dfd, err);
		if (rc)
			return rc;
		int fd = openat(dfd, base, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (fd < 0)
			return local_error(x, errno, "open", f->rel, err);
		struct timespec ts[2] = { { .tv_sec = 0, .tv_nsec = UTIME_OMIT }, f->mtime };
		rc = fchmod(fd, f->mode) != 0 || (x->o.keep_times && futimens(fd, ts) != 0)
			     ? local_error(x, errno, "set the mode of", f->rel, err)
			     : 0;
		close(fd);
		if (rc)
			return rc;
	}
	/* The destination is the tree's root: it gets the owner too. */
	enum miren_err rc = chown_fd(x, x->root, "the destination directory", err);
	if (rc)
		return rc;
	if (x->root_fix) {
		struct timespec ts[2] = { { .tv_sec = 0, .tv_nsec = UTIME_OMIT }, x->root_mtime };
		if (fchmod(x->root, x->root_mode) != 0 ||
		    (x->o.keep_times && futimens(x->root, ts) != 0))
			return local_error(x, errno, "set the mode of", "the destination directory",
					   err);
	}
	if (x->o.sync && syncfs(x->root) != 0)
		return local_error(x, errno, "sync", "the extracted files", err);
	return 0;
}

void extractor_close(struct extractor *x, bool discard)
{
	if (!x)
		return;
	if (x->pdir) {
		close(x->pdir_fd);
		free(x->pdir);
	}
	if (x->root >= 0) {
		if (discard)
			empty_dir(x->root);
		close(x->root);
	}
	for (size_t i = 0; i < x->nfix; i++)
		free(x->fix[i].rel);
	free(x->fix);
	free(x);
}

/* --- a tar file --------------------------------------------------------------- */

enum miren_err extract_tar(const char *tar_path, const char *dest, const struct extract_limits *lim,
			   struct miren_error *err)
{
	const struct extract_opts o = { .what = lim->what,
					.max_bytes = lim->max_bytes,
					.max_entries = lim->max_entries,
					.uid = (uid_t)-1,
					.gid = (gid_t)-1,
					.parent_mode = 0755 };
	struct extractor *x = NULL;
	struct archive *a = archive_read_new();
	archive_read_support_format_tar(a);
	archive_read_support_filter_all(a);
	char *rel = NULL;
	enum miren_err rc = extractor_open(dest, &o, &x, err);
	if (rc)
		goto out;
	if (archive_read_open_filename(a, tar_path, 65536) != ARCHIVE_OK) {
		rc = miren_error_set(err, MIREN_EINVAL, "the %s is not a tar archive: %s",
				     lim->what, archive_error_string(a));
		goto out;
	}
	struct archive_entry *e;
	int r;
	while ((r = archive_read_next_header(a, &e)) == ARCHIVE_OK) {
		const char *name = archive_entry_pathname(e);
		if (!name || !*name) {
			rc = miren_error_set(err, MIREN_EINVAL,
					     "the %s has a member without a name", lim->what);
			goto out;
		}
		if ((rc = extract_check_name(name, err)))
			goto out;
		/* "dir/" names a directory; "./x" is "x". */
		free(rel);
		rel = xstrdup(name);
		size_t n = strlen(rel);
		while (n && rel[n - 1] == '/')
			rel[--n] = '\0';
		const char *p = rel;
		while (p[0] == '.' && p[1] == '/')
			p += 2;
		if (!strcmp(p, "."))
			p = "";
		if ((rc = extractor_entry(x, a, e, p, name, NULL, err)))
			goto out;
	}
	if (r != ARCHIVE_EOF)
		rc = miren_error_set(err, MIREN_EINVAL, "the %s is damaged: %s", lim->what,
				     archive_error_string(a));
	if (!rc)
		rc = extractor_finish(x, err);
out:
	free(rel);
	archive_read_free(a);
	extractor_close(x, rc != 0);
	return rc;
}
