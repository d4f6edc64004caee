/*
 * Reading .miren.zst snapshots; see snapshot.h and docs/backup-format.md.
 *
 * Two threads share a ring of RB_N buffers of RB_CAP tar bytes each:
 *
 *   producer: source -> ZSTD_decompressStream -> a free buffer; then the
 *             running SHA-256 of the tar stream takes the buffer, and the
 *             digest state from before it is kept beside it (rb.pre);
 *   caller:   libarchive's tar reader reads the buffers in place (its read
 *             callback hands them out) -> member checks -> files created
 *             with *at() calls below the staging directory's fd, each
 *             hashed while written.
 *
 * archive_sha256 covers the tar bytes before the manifest member's header,
 * whose offset libarchive reports (archive_read_header_position).  The
 * caller keeps the last two buffers it took (cur, prev), so that offset lies
 * in one of them and the digest is rb.pre plus the bytes before it.  A
 * manifest header longer than a buffer is refused.
 *
 * Safety: every path is checked before anything is created; creation uses
 * openat/mkdirat/symlinkat relative to a directory fd reached from the
 * staging fd with O_NOFOLLOW|O_DIRECTORY, files are created O_EXCL|
 * O_NOFOLLOW, so a member can never be written through a symlink or outside
 * staging.  Symlinks must satisfy snap_link_target_inside().
 *
 * Staging must be an empty directory (else MIREN_EINTERNAL, and it is left
 * alone); it gets the mode of the archive's "disk/" entry and, like every
 * restored entry, the owner uid/gid.  Set-id bits are dropped.
 *
 * Errors: when the caller finds a bad file (MIREN_EINVAL) it first lets the
 * producer run to the end of the input, and reports the producer's error
 * instead if there is one: a flipped bit can decode to garbage that only
 * the zstd checksum at the end of the frame explains.  On any failure the
 * staging directory is emptied again.  The producer may be blocked in the
 * source when the caller stops it: snap_read waits for that read to return.
 */
#include "disk/snapshot.h"
#include "util/io.h"
#include "util/sha256.h"

#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zstd.h>
#include <zstd_errors.h>

#define RB_N 4
#define RB_CAP (1u << 20)
#define IN_CAP (1u << 20)
#define HEADER_MAX (1u << 20)

enum rb_state { RB_FREE, RB_FILLING, RB_FULL, RB_HELD };

struct rb {
	unsigned char *data;
	size_t len;
	uint64_t start;  /* tar offset of data[0] */
	EVP_MD_CTX *pre; /* archive digest of the tar bytes before data[0] */
	enum rb_state state;
};

struct dirfix {
	char *rel;
	mode_t mode;
	struct timespec mtime;
};

struct rd {
	/* Shared; under mu. */
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct rb ring[RB_N];
	uint64_t n_pub; /* buffers published */
	bool done;      /* the producer has stopped */
	bool cancel;
	struct miren_error perr; /* the producer's error, if any */

	/* Producer's; the caller reads them after joining. */
	snap_source_fn source;
	void *user;
	ZSTD_DCtx *dctx;
	unsigned char *in;
	EVP_MD_CTX *run;
	uint64_t tar_bytes, zst_bytes;

	/* Caller's. */
	bool thread_started;
	uint64_t n_taken;
	struct rb *cur, *prev;
	struct archive *ar;
	int root;
	bool verify_only; /* staging NULL: check everything, write nothing */
	uid_t uid;
	gid_t gid;
	uint64_t max_bytes;
	char *pdir; /* cached parent directory (rel) and its fd */
	int pdir_fd;
	json_t *seen; /* "disk/rel" -> sha256 hex */
	uint64_t files, bytes;
	struct dirfix *fix;
	size_t nfix, capfix;
	bool root_fix;
	mode_t root_mode;
	struct timespec root_mtime;
	json_t *header;
};

static void hex_of(const unsigned char md[32], char hex[65])
{
	static const char digits[] = "0123456789abcdef";
	for (int i = 0; i < 32; i++) {
		hex[2 * i] = digits[md[i] >> 4];
		hex[2 * i + 1] = digits[md[i] & 15];
	}
	hex[64] = '\0';
}

/* A member name fit for a message: printable ASCII, bounded. */
static const char *show(const char *s, char buf[128])
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

/* ---------------------------------------------------------------- producer */

static void *producer(void *arg)
{
	struct rd *r = arg;
	struct miren_error e = { 0 };
	ZSTD_inBuffer in = { r->in, 0, 0 };
	bool eof = false, frame_done = false, finished = false;
	uint64_t produced = 0;

	size_t have = 0;
	while (have < 4 && !eof) {
		ssize_t n = r->source(r->user, r->in + have, IN_CAP - have);
		if (n < 0) {
			miren_error_set(&e, MIREN_EIO, "cannot read the backup: %s",
					io_strerror(errno));
			goto out;
		}
		if (n == 0)
			eof = true;
		have += (size_t)n;
	}
	r->zst_bytes = have;
	if (have == 0) {
		miren_error_set(&e, MIREN_EINVAL, "backup file is empty");
		goto out;
	}
	if (have < 4 || (r->in[0] | r->in[1] << 8 | r->in[2] << 16 | (uint32_t)r->in[3] << 24) !=
				ZSTD_MAGICNUMBER) {
		miren_error_set(&e, MIREN_EINVAL, "not a zstd file");
		miren_error_hint(&e,
				 "miren backups are .miren.zst files written by 'miren' itself");
		goto out;
	}
	in.size = have;

	while (!finished && !e.code) {
		pthread_mutex_lock(&r->mu);
		struct rb *b = &r->ring[r->n_pub % RB_N];
		while (b->state != RB_FREE && !r->cancel)
			pthread_cond_wait(&r->cv, &r->mu);
		bool cancel = r->cancel;
		if (!cancel)
			b->state = RB_FILLING;
		pthread_mutex_unlock(&r->mu);
		if (cancel)
			break;

		b->start = produced;
		b->len = 0;
		if (EVP_MD_CTX_copy_ex(b->pre, r->run) != 1)
			abort();
		while (b->len < RB_CAP && !finished && !e.code) {
			if (frame_done || (in.pos == in.size && !eof)) {
				if (frame_done && in.pos < in.size) {
					miren_error_set(&e, MIREN_EINVAL,
							"backup file has unexpected data after the "
							"end of its compressed stream");
					break;
				}
				ssize_t n = r->source(r->user, r->in, IN_CAP);
				if (n < 0) {
					miren_error_set(&e, MIREN_EIO, "cannot read the backup: %s",
							io_strerror(errno));
					break;
				}
				in.pos = 0;
				in.size = (size_t)n;
				r->zst_bytes += (uint64_t)n;
				if (n == 0) {
					eof = true;
					finished = frame_done;
				}
				continue;
			}
			ZSTD_outBuffer out = { b->data, RB_CAP, b->len };
			size_t before = out.pos;
			size_t ret = ZSTD_decompressStream(r->dctx, &out, &in);
			b->len = out.pos;
			if (ZSTD_isError(ret)) {
				ZSTD_ErrorCode c = ZSTD_getErrorCode(ret);
				if (c == ZSTD_error_checksum_wrong)
					miren_error_set(&e, MIREN_EINVAL,
							"backup file is corrupt (zstd checksum "
							"mismatch)");
				else if (c == ZSTD_error_frameParameter_windowTooLarge)
					miren_error_set(&e, MIREN_EINVAL,
							"backup file needs too much memory to "
							"decompress (zstd window too large)");
				else
					miren_error_set(&e, MIREN_EINVAL,
							"backup file is corrupt (zstd: %s)",
							ZSTD_getErrorName(ret));
				break;
			}
			if (ret == 0)
				frame_done = true;
			else if (eof && in.pos == in.size && out.pos == before)
				miren_error_set(&e, MIREN_EINVAL,
						"backup file is truncated (the compressed stream "
						"ends early)");
		}
		if (b->len && EVP_DigestUpdate(r->run, b->data, b->len) != 1)
			abort();
		produced += b->len;

		pthread_mutex_lock(&r->mu);
		if (b->len) {
			b->state = RB_FULL;
			r->n_pub++;
		} else {
			b->state = RB_FREE;
		}
		pthread_cond_broadcast(&r->cv);
		pthread_mutex_unlock(&r->mu);
	}
out:
	r->tar_bytes = produced;
	pthread_mutex_lock(&r->mu);
	r->done = true;
	if (e.code)
		r->perr = e;
	pthread_cond_broadcast(&r->cv);
	pthread_mutex_unlock(&r->mu);
	return NULL;
}

/* ------------------------------------------------------- buffer hand-over */

/* Takes the next published buffer (keeping the previous one held);
   NULL at the end of the stream. */
static struct rb *take(struct rd *r)
{
	pthread_mutex_lock(&r->mu);
	if (r->prev) {
		r->prev->state = RB_FREE;
		pthread_cond_broadcast(&r->cv);
	}
	r->prev = r->cur;
	r->cur = NULL;
	while (r->n_taken == r->n_pub && !r->done)
		pthread_cond_wait(&r->cv, &r->mu);
	struct rb *b = NULL;
	if (r->n_taken < r->n_pub) {
		b = &r->ring[r->n_taken % RB_N];
		b->state = RB_HELD;
		r->n_taken++;
		r->cur = b;
	}
	pthread_mutex_unlock(&r->mu);
	return b;
}

static la_ssize_t read_cb(struct archive *a, void *u, const void **buf)
{
	struct rd *r = u;
	struct rb *b = take(r);
	if (b) {
		*buf = b->data;
		return (la_ssize_t)b->len;
	}
	*buf = NULL;
	if (r->perr.code) { /* stable once done */
		archive_set_error(a, EIO, "%s", r->perr.message);
		return -1;
	}
	return 0;
}

/* Reads the rest of the stream, discarding it; returns the producer's
   error code (its message in *pe) or 0. */
static enum miren_err drain(struct rd *r, struct miren_error *pe)
{
	while (take(r))
		;
	take(r); /* releases the last two */
	*pe = r->perr;
	return r->perr.code;
}

/* ------------------------------------------------------------- the tree */

static enum miren_err local_error(int e, const char *what, const char *name,
				  struct miren_error *err)
{
	char b[128];
	if (e == ENOSPC)
		return miren_error_set(err, MIREN_EIO,
				       "cannot restore the backup: the disk is full");
	if (e == EDQUOT)
		return miren_error_set(err, MIREN_EIO,
				       "cannot restore the backup: the disk quota is exceeded");
	if (e == ENAMETOOLONG)
		return miren_error_set(err, MIREN_EINVAL,
				       "member '%s' has a name too long to restore", show(name, b));
	return miren_error_set(err, MIREN_EIO, "cannot %s %s in the staging directory: %s", what,
			       show(name, b), io_strerror(e));
}

/* Gives the open fd, or base in dfd (a symlink itself), the restore's owner. */
static enum miren_err chown_fd(struct rd *r, int fd, const char *name, struct miren_error *err)
{
	if (r->uid == (uid_t)-1 && r->gid == (gid_t)-1)
		return 0;
	if (fchown(fd, r->uid, r->gid) != 0)
		return local_error(errno, "change the owner of", name, err);
	return 0;
}

static enum miren_err chown_at(struct rd *r, int dfd, const char *base, const char *name,
			       struct miren_error *err)
{
	if (r->uid == (uid_t)-1 && r->gid == (gid_t)-1)
		return 0;
	if (fchownat(dfd, base, r->uid, r->gid, AT_SYMLINK_NOFOLLOW) != 0)
		return local_error(errno, "change the owner of", name, err);
	return 0;
}

/* The directory holding rel (walked from the root, never through a symlink,
   made 0700 where missing); *base gets rel's last component.  The fd stays
   owned by the cache. */
static enum miren_err parent_dir(struct rd *r, const char *rel, const char **base, int *out,
				 struct miren_error *err)
{
	char b[128];
	const char *slash = strrchr(rel, '/');
	*base = slash ? slash + 1 : rel;
	if (!slash) {
		*out = r->root;
		return 0;
	}
	size_t dl = (size_t)(slash - rel);
	if (r->pdir && strlen(r->pdir) == dl && !memcmp(r->pdir, rel, dl)) {
		*out = r->pdir_fd;
		return 0;
	}
	if (r->pdir) {
		close(r->pdir_fd);
		free(r->pdir);
		r->pdir = NULL;
	}
	char *dir = xstrndup(rel, dl);
	int fd = r->root, rc = 0;
	for (char *c = dir, *next; c; c = next) {
		next = strchr(c, '/');
		if (next)
			*next++ = '\0';
		int nfd = openat(fd, c, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (nfd < 0 && errno == ENOENT) {
			if (mkdirat(fd, c, 0700) != 0 && errno != EEXIST) {
				rc = local_error(errno, "create a directory for", rel, err);
				break;
			}
			nfd = openat(fd, c, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			if (nfd >= 0 && (rc = chown_fd(r, nfd, rel, err))) {
				close(nfd);
				break;
			}
		}
		if (nfd < 0) {
			if (errno == ENOTDIR || errno == ELOOP)
				rc = miren_error_set(err, MIREN_EINVAL,
						     "member 'disk/%s' lies below a symlink or a "
						     "file",
						     show(rel, b));
			else
				rc = local_error(errno, "open a directory for", rel, err);
			break;
		}
		if (fd != r->root)
			close(fd);
		fd = nfd;
	}
	if (rc) {
		if (fd != r->root)
			close(fd);
		free(dir);
		return rc;
	}
	free(dir); /* cut into components by the walk */
	r->pdir = xstrndup(rel, dl);
	r->pdir_fd = fd;
	*out = fd;
	return 0;
}

static enum miren_err bad(struct miren_error *err, const char *fmt, const char *name)
{
	char b[128];
	return miren_error_set(err, MIREN_EINVAL, fmt, show(name, b));
}

static enum miren_err archive_fail(struct rd *r, const char *name, struct miren_error *err)
{
	char b[128];
	const char *msg = archive_error_string(r->ar);
	return miren_error_set(err, MIREN_EINVAL, "backup file is corrupt (at %s: %s)",
			       show(name, b), msg ? msg : "unreadable tar data");
}

static enum miren_err extract_file(struct rd *r, struct archive_entry *e, const char *rel,
				   const char *name, struct miren_error *err)
{
	int64_t size = archive_entry_size(e);
	if (size < 0)
		return bad(err, "member '%s' has no size", name);
	if (r->max_bytes && (uint64_t)size > r->max_bytes - r->bytes) {
		miren_error_set(err, MIREN_ETOOBIG,
				"backup holds more than %llu bytes of files, more than the disk "
				"allows",
				(unsigned long long)r->max_bytes);
		miren_error_hint(err, "restore it into a larger disk");
		return MIREN_ETOOBIG;
	}
	if (archive_entry_sparse_count(e) > 0)
		return bad(err, "member '%s' is a sparse file, which backups cannot contain", name);
	const char *base;
	int dfd;
	int rc = 0, fd = -1;
	char *key = xasprintf("disk/%s", rel);
	if (r->verify_only) {
		if (json_object_get(r->seen, key))
			rc = bad(err, "member '%s' appears twice in the backup", name);
	} else {
		rc = parent_dir(r, rel, &base, &dfd, err);
		if (!rc) {
			fd = openat(dfd, base, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
				    0600);
			if (fd < 0)
				rc = errno == EEXIST
					     ? bad(err, "member '%s' appears twice in the backup",
						   name)
					     : local_error(errno, "create", name, err);
		}
	}
	if (rc) {
		free(key);
		return rc;
	}
	struct sha256 h;
	sha256_init(&h);
	uint64_t written = 0;
	for (;;) {
		const void *buf;
		size_t len;
		la_int64_t off;
		int ar = archive_read_data_block(r->ar, &buf, &len, &off);
		if (ar == ARCHIVE_EOF)
			break;
		if (ar != ARCHIVE_OK) {
			rc = archive_fail(r, name, err);
			break;
		}
		if (off != (la_int64_t)written) {
			rc = bad(err, "member '%s' is a sparse file, which backups cannot contain",
				 name);
			break;
		}
		if (fd >= 0 && io_write_all(fd, buf, len) != 0) {
			rc = local_error(errno, "write", name, err);
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
			 name);
	if (fd < 0)
		goto done;
	if (!rc)
		rc = chown_fd(r, fd, name, err);
	if (!rc && fchmod(fd, archive_entry_perm(e) & 0777) != 0)
		rc = local_error(errno, "set the mode of", name, err);
	if (!rc) {
		struct timespec ts[2] = {
			{ .tv_sec = 0, .tv_nsec = UTIME_OMIT },
			{ .tv_sec = archive_entry_mtime(e),
			  .tv_nsec = archive_entry_mtime_nsec(e) },
		};
		if (futimens(fd, ts) != 0)
			rc = local_error(errno, "set the time of", name, err);
	}
	/* Start writeback now, so the syncfs at the end has less to wait for. */
	if (!rc && written)
		(void)sync_file_range(fd, 0, 0, SYNC_FILE_RANGE_WRITE);
	if (close(fd) != 0 && !rc)
		rc = local_error(errno, "write", name, err);
done:
	if (rc) {
		free(key);
		return rc;
	}
	json_object_set_new(r->seen, key, json_string(hex));
	free(key);
	r->files++;
	r->bytes += written;
	return 0;
}

static enum miren_err extract_dir(struct rd *r, struct archive_entry *e, const char *rel,
				  const char *name, struct miren_error *err)
{
	struct timespec mt = { archive_entry_mtime(e), archive_entry_mtime_nsec(e) };
	mode_t mode = archive_entry_perm(e) & 01777;
	if (!*rel) {
		r->root_fix = true;
		r->root_mode = mode;
		r->root_mtime = mt;
		return 0;
	}
	if (r->verify_only)
		return 0;
	const char *base;
	int dfd;
	enum miren_err rc = parent_dir(r, rel, &base, &dfd, err);
	if (rc)
		return rc;
	if (mkdirat(dfd, base, 0700) != 0) {
		struct stat st;
		if (errno != EEXIST)
			return local_error(errno, "create", name, err);
		if (fstatat(dfd, base, &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISDIR(st.st_mode))
			return bad(err, "member '%s' appears twice in the backup", name);
	}
	rc = chown_at(r, dfd, base, name, err);
	if (rc)
		return rc;
	if (r->nfix == r->capfix) {
		r->capfix = r->capfix ? r->capfix * 2 : 64;
		r->fix = xrealloc(r->fix, r->capfix * sizeof(*r->fix));
	}
	r->fix[r->nfix++] = (struct dirfix){ xstrdup(rel), mode, mt };
	return 0;
}

static enum miren_err extract_link(struct rd *r, struct archive_entry *e, const char *rel,
				   const char *name, struct miren_error *err)
{
	char b1[128], b2[128];
	const char *target = archive_entry_symlink(e);
	if (!target || !*target)
		return bad(err, "symlink '%s' has no target", name);
	if (target[0] == '/')
		return miren_error_set(err, MIREN_EINVAL,
				       "symlink '%s' has an absolute target ('%s'); backups cannot "
				       "contain it",
				       show(name, b1), show(target, b2));
	if (!snap_link_target_inside(rel, target))
		return miren_error_set(err, MIREN_EINVAL,
				       "symlink '%s' points outside the backup ('%s')",
				       show(name, b1), show(target, b2));
	if (r->verify_only)
		return 0;
	const char *base;
	int dfd;
	enum miren_err rc = parent_dir(r, rel, &base, &dfd, err);
	if (rc)
		return rc;
	if (symlinkat(target, dfd, base) != 0)
		return errno == EEXIST ? bad(err, "member '%s' appears twice in the backup", name)
				       : local_error(errno, "create", name, err);
	rc = chown_at(r, dfd, base, name, err);
	if (rc)
		return rc;
	struct timespec ts[2] = {
		{ .tv_sec = 0, .tv_nsec = UTIME_OMIT },
		{ .tv_sec = archive_entry_mtime(e), .tv_nsec = archive_entry_mtime_nsec(e) },
	};
	(void)utimensat(dfd, base, ts, AT_SYMLINK_NOFOLLOW);
	return 0;
}

/* Checks a member's path and type, then creates it. */
static enum miren_err extract(struct rd *r, struct archive_entry *e, const char *name,
			      struct miren_error *err)
{
	if (name[0] == '/')
		return bad(err, "member '%s' has an absolute path", name);
	for (const char *p = name; *p;) {
		const char *slash = strchr(p, '/');
		size_t n = slash ? (size_t)(slash - p) : strlen(p);
		if (n == 2 && p[0] == '.' && p[1] == '.')
			return bad(err, "member '%s' has a '..' path component", name);
		p += n + (slash ? 1 : 0);
	}
	if (strncmp(name, "disk/", 5) != 0 && strcmp(name, "disk") != 0)
		return bad(err, "unexpected member '%s' (not under disk/)", name);
	if (archive_entry_hardlink(e))
		return bad(err, "member '%s' is a hard link; backups cannot contain hard links",
			   name);
	mode_t type = archive_entry_filetype(e);
	switch (type) {
	case AE_IFREG:
	case AE_IFDIR:
	case AE_IFLNK:
		break;
	case AE_IFCHR:
	case AE_IFBLK:
		return bad(err, "member '%s' is a device node; backups cannot contain devices",
			   name);
	case AE_IFIFO:
		return bad(err, "member '%s' is a fifo; backups cannot contain fifos", name);
	case AE_IFSOCK:
		return bad(err, "member '%s' is a socket; backups cannot contain sockets", name);
	default:
		return bad(err, "member '%s' has an unsupported type", name);
	}
	char *rel = xstrdup(name[4] ? name + 5 : "");
	size_t n = strlen(rel);
	enum miren_err rc = 0;
	if (type == AE_IFDIR)
		while (n && rel[n - 1] == '/')
			rel[--n] = '\0';
	if (*rel ? snap_check_rel(rel, NULL) != 0 : type != AE_IFDIR)
		rc = bad(err, "member '%s' has an invalid path", name);
	else if (type == AE_IFREG)
		rc = extract_file(r, e, rel, name, err);
	else if (type == AE_IFDIR)
		rc = extract_dir(r, e, rel, name, err);
	else
		rc = extract_link(r, e, rel, name, err);
	free(rel);
	return rc;
}

/* Reads a small member whole; *out is NUL-terminated (caller frees). */
static enum miren_err slurp(struct rd *r, struct archive_entry *e, const char *name, char **out,
			    size_t *outlen, struct miren_error *err)
{
	int64_t size = archive_entry_size(e);
	char *buf = xmalloc((size_t)size + 1);
	size_t got = 0;
	for (;;) {
		const void *p;
		size_t len;
		la_int64_t off;
		int ar = archive_read_data_block(r->ar, &p, &len, &off);
		if (ar == ARCHIVE_EOF)
			break;
		if (ar != ARCHIVE_OK || off != (la_int64_t)got || len > (size_t)size - got) {
			free(buf);
			return archive_fail(r, name, err);
		}
		memcpy(buf + got, p, len);
		got += len;
	}
	if (got != (size_t)size) {
		free(buf);
		return bad(err,
			   "member '%s' holds a different number of bytes than its header declares",
			   name);
	}
	buf[got] = '\0';
	*out = buf;
	*outlen = got;
	return 0;
}

static enum miren_err check_header(struct rd *r, struct archive_entry *e, const char *name,
				   struct miren_error *err)
{
	char *text = NULL;
	size_t len;
	if (strcmp(name, "miren-backup.json") != 0)
		return bad(err, "not a miren backup (first member is '%s')", name);
	if (archive_entry_filetype(e) != AE_IFREG || archive_entry_hardlink(e))
		return bad(err, "not a miren backup (%s is not a regular file)", name);
	if (archive_entry_size(e) < 0 || archive_entry_size(e) > HEADER_MAX)
		return bad(err, "not a miren backup (%s is too large)", name);
	enum miren_err rc = slurp(r, e, name, &text, &len, err);
	if (rc)
		return rc;
	json_error_t je;
	json_t *h = json_loadb(text, len, 0, &je);
	free(text);
	if (!json_is_object(h)) {
		json_decref(h);
		return bad(err, "not a miren backup (%s is not a JSON object)", name);
	}
	r->header = h;
	const char *format = json_string_value(json_object_get(h, "format"));
	json_t *ver = json_object_get(h, "format_version");
	if (!format || strcmp(format, "miren-disk-backup") != 0)
		return bad(err,
			   "not a miren backup (%s does not say \"format\": \"miren-disk-backup\")",
			   name);
	if (!json_is_integer(ver) || json_integer_value(ver) < 1)
		return bad(err, "not a miren backup (%s has no valid format_version)", name);
	if (json_integer_value(ver) > SNAP_FORMAT_VERSION) {
		miren_error_set(err, MIREN_EINVAL,
				"backup format version %lld is newer than this miren supports "
				"(%d); upgrade miren",
				(long long)json_integer_value(ver), SNAP_FORMAT_VERSION);
		miren_error_hint(err,
				 "restore it with the miren version that wrote it, or a newer one");
		return MIREN_EINVAL;
	}
	return 0;
}

/* archive_sha256 as of tar offset pos (the manifest header's). */
static int archive_digest_at(struct rd *r, uint64_t pos, char hex[65])
{
	struct rb *cands[2] = { r->cur, r->prev };
	for (int i = 0; i < 2; i++) {
		struct rb *b = cands[i];
		if (!b || pos < b->start || pos > b->start + b->len)
			continue;
		EVP_MD_CTX *c = EVP_MD_CTX_new();
		unsigned char md[32];
		unsigned int n = 0;
		if (!c || EVP_MD_CTX_copy_ex(c, b->pre) != 1 ||
		    EVP_DigestUpdate(c, b->data, (size_t)(pos - b->start)) != 1 ||
		    EVP_DigestFinal_ex(c, md, &n) != 1 || n != 32)
			abort();
		EVP_MD_CTX_free(c);
		hex_of(md, hex);
		return 0;
	}
	return -1;
}

static enum miren_err check_manifest(struct rd *r, struct archive_entry *e, const char *name,
				     struct miren_error *err)
{
	char *text = NULL;
	size_t len;
	json_t *m = NULL;
	enum miren_err rc;
	if (archive_entry_filetype(e) != AE_IFREG || archive_entry_hardlink(e))
		return bad(err, "backup file is corrupt (%s is not a regular file)", name);
	char ahex[65];
	if (archive_digest_at(r, (uint64_t)archive_read_header_position(r->ar), ahex) != 0)
		return bad(err, "backup file is corrupt (the header of %s is too large)", name);
	uint64_t cap = (16u << 20) + (uint64_t)json_object_size(r->seen) * 4400;
	if (archive_entry_size(e) < 0 || (uint64_t)archive_entry_size(e) > cap)
		return bad(err, "backup file is corrupt (%s is too large)", name);
	rc = slurp(r, e, name, &text, &len, err);
	if (rc)
		return rc;
	json_error_t je;
	m = json_loadb(text, len, 0, &je);
	json_t *files = json_object_get(m, "files");
	const char *want = json_string_value(json_object_get(m, "archive_sha256"));
	json_t *count = json_object_get(m, "file_count"), *bytes = json_object_get(m, "bytes");
	if (!json_is_object(files) || !want || !json_is_integer(count) || !json_is_integer(bytes)) {
		rc = bad(err, "backup file is corrupt (%s is not a valid manifest)", name);
		goto out;
	}
	const char *key;
	json_t *v;
	json_object_foreach (r->seen, key, v) {
		json_t *mv = json_object_get(files, key);
		if (!mv) {
			rc = bad(err, "file %s is in the backup but not in its manifest", key);
			goto out;
		}
		if (!json_is_string(mv) ||
		    strcmp(json_string_value(mv), json_string_value(v)) != 0) {
			rc = bad(err, "checksum mismatch for %s", key);
			goto out;
		}
	}
	json_object_foreach (files, key, v) {
		if (!json_object_get(r->seen, key)) {
			rc = bad(err, "file %s listed in the manifest is missing from the backup",
				 key);
			goto out;
		}
	}
	if ((uint64_t)json_integer_value(count) != r->files ||
	    (uint64_t)json_integer_value(bytes) != r->bytes) {
		rc = miren_error_set(err, MIREN_EINVAL,
				     "backup file is corrupt (the manifest counts %lld files of "
				     "%lld bytes, the backup has %llu of %llu)",
				     (long long)json_integer_value(count),
				     (long long)json_integer_value(bytes),
				     (unsigned long long)r->files, (unsigned long long)r->bytes);
		goto out;
	}
	if (strcmp(want, ahex) != 0) {
		rc = miren_error_set(err, MIREN_EINVAL,
				     "archive checksum mismatch (the backup is corrupt)");
		goto out;
	}
out:
	free(text);
	json_decref(m);
	return rc;
}

/* After the end of the archive only zero bytes may follow. */
static enum miren_err check_tail(struct rd *r, struct miren_error *err)
{
	uint64_t used = (uint64_t)archive_filter_bytes(r->ar, 0);
	struct rb *held[2] = { r->prev, r->cur };
	for (int i = 0; i < 2; i++) {
		struct rb *b = held[i];
		if (!b)
			continue;
		for (uint64_t o = used > b->start ? used - b->start : 0; o < b->len; o++)
			if (b->data[o])
				goto junk;
	}
	struct rb *b;
	while ((b = take(r)))
		for (size_t o = 0; o < b->len; o++)
			if (b->data[o])
				goto junk;
	if (r->perr.code) {
		*err = r->perr;
		return r->perr.code;
	}
	return 0;
junk:
	return miren_error_set(err, MIREN_EINVAL,
			       "backup file has unexpected data after the end of its archive");
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

/* Directory modes and times, set last (creating entries changes them). */
static enum miren_err apply_dir_fixes(struct rd *r, struct miren_error *err)
{
	for (size_t i = r->nfix; i-- > 0;) {
		struct dirfix *f = &r->fix[i];
		const char *base;
		int dfd;
		enum miren_err rc = parent_dir(r, f->rel, &base, &dfd, err);
		if (rc)
			return rc;
		int fd = openat(dfd, base, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (fd < 0)
			return local_error(errno, "open", f->rel, err);
		struct timespec ts[2] = { { .tv_sec = 0, .tv_nsec = UTIME_OMIT }, f->mtime };
		rc = (fchmod(fd, f->mode) != 0 || futimens(fd, ts) != 0)
			     ? local_error(errno, "set the mode of", f->rel, err)
			     : 0;
		close(fd);
		if (rc)
			return rc;
	}
	/* Staging becomes the disk's root: it gets the owner too. */
	enum miren_err rc = chown_fd(r, r->root, "the staging directory", err);
	if (rc)
		return rc;
	if (r->root_fix) {
		struct timespec ts[2] = { { .tv_sec = 0, .tv_nsec = UTIME_OMIT }, r->root_mtime };
		if (fchmod(r->root, r->root_mode) != 0 || futimens(r->root, ts) != 0)
			return local_error(errno, "set the mode of", "the staging directory", err);
	}
	return 0;
}

/* ----------------------------------------------------------------- main */

static enum miren_err run(struct rd *r, struct miren_error *err)
{
	if (archive_read_open(r->ar, r, NULL, read_cb, NULL) != ARCHIVE_OK)
		return miren_error_set(err, MIREN_EINVAL,
				       "not a miren backup (its zstd stream does not hold a tar "
				       "archive)");
	bool manifest = false;
	for (uint64_t i = 0;; i++) {
		struct archive_entry *e;
		int ar = archive_read_next_header(r->ar, &e);
		if (ar == ARCHIVE_EOF) {
			if (manifest)
				break;
			if (i == 0)
				return miren_error_set(err, MIREN_EINVAL,
						       "not a miren backup (the archive is empty)");
			return miren_error_set(err, MIREN_EINVAL,
					       "backup file is truncated (no manifest)");
		}
		if (ar != ARCHIVE_OK && ar != ARCHIVE_WARN) {
			const char *msg = archive_error_string(r->ar);
			if (i == 0)
				return miren_error_set(err, MIREN_EINVAL, "not a miren backup (%s)",
						       msg ? msg : "unreadable tar data");
			return miren_error_set(err, MIREN_EINVAL, "backup file is corrupt (%s)",
					       msg ? msg : "unreadable tar data");
		}
		const char *name = archive_entry_pathname(e);
		if (!name || !*name)
			return miren_error_set(err, MIREN_EINVAL,
					       "backup file is corrupt (a member has no readable "
					       "name)");
		enum miren_err rc;
		if (manifest)
			return bad(err, "unexpected member '%s' after the manifest", name);
		if (i == 0)
			rc = check_header(r, e, name, err);
		else if (!strcmp(name, "miren-manifest.json"))
			rc = check_manifest(r, e, name, err), manifest = true;
		else
			rc = extract(r, e, name, err);
		if (rc)
			return rc;
	}
	enum miren_err rc = check_tail(r, err);
	if (r->verify_only)
		return rc;
	if (!rc)
		rc = apply_dir_fixes(r, err);
	if (!rc && syncfs(r->root) != 0)
		rc = local_error(errno, "sync", "the restored files", err);
	return rc;
}

enum miren_err snap_read(snap_source_fn source, void *user, const char *staging, uid_t uid,
			 gid_t gid, uint64_t max_bytes, json_t **header, struct snap_stats *st,
			 struct miren_error *err)
{
	struct miren_error e = { 0 };
	struct rd r = { .source = source,
			.user = user,
			.uid = uid,
			.gid = gid,
			.max_bytes = max_bytes,
			.root = -1,
			.pdir_fd = -1 };
	pthread_t thr = { 0 }; /* joined only when r.thread_started */
	enum miren_err rc;
	if (header)
		*header = NULL;
	pthread_mutex_init(&r.mu, NULL);
	pthread_cond_init(&r.cv, NULL);
	r.seen = json_object();
	r.verify_only = staging == NULL;
	if (!r.verify_only) {
		r.root = open(staging, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (r.root < 0) {
			rc = miren_error_set(&e, MIREN_EIO,
					     "cannot open the staging directory %s: %s", staging,
					     io_strerror(errno));
			goto out;
		}
		if (is_empty_dir(r.root) != 1) {
			rc = miren_error_set(&e, MIREN_EINTERNAL,
					     "staging directory %s is not empty", staging);
			close(r.root);
			r.root = -1;
			goto out;
		}
	}
	r.in = xmalloc(IN_CAP);
	r.run = EVP_MD_CTX_new();
	r.dctx = ZSTD_createDCtx();
	if (!r.run || EVP_DigestInit_ex(r.run, EVP_sha256(), NULL) != 1 || !r.dctx)
		abort();
	for (int i = 0; i < RB_N; i++) {
		r.ring[i].data = xmalloc(RB_CAP);
		r.ring[i].pre = EVP_MD_CTX_new();
		if (!r.ring[i].pre)
			abort();
	}
	if (pthread_create(&thr, NULL, producer, &r) != 0) {
		rc = miren_error_set(&e, MIREN_EINTERNAL, "cannot start a thread: %s",
				     io_strerror(errno));
		goto out;
	}
	r.thread_started = true;
	r.ar = archive_read_new();
	if (!r.ar || archive_read_support_format_tar(r.ar) != ARCHIVE_OK)
		abort();

	rc = run(&r, &e);
	if (rc == MIREN_EINVAL) {
		/* A producer error (truncation, checksum) explains garbage best. */
		struct miren_error pe;
		if (drain(&r, &pe)) {
			e = pe;
			rc = pe.code;
		}
	}
out:
	if (r.thread_started) {
		pthread_mutex_lock(&r.mu);
		r.cancel = true;
		pthread_cond_broadcast(&r.cv);
		pthread_mutex_unlock(&r.mu);
		pthread_join(thr, NULL);
	}
	if (r.ar)
		archive_read_free(r.ar);
	if (r.pdir) {
		close(r.pdir_fd);
		free(r.pdir);
	}
	if (rc && r.root >= 0)
		empty_dir(r.root);
	if (r.root >= 0)
		close(r.root);
	if (!rc) {
		if (header)
			*header = json_incref(r.header);
		if (st) {
			st->files = r.files;
			st->bytes_in = r.bytes;
			st->tar_bytes = r.tar_bytes;
			st->zst_bytes = r.zst_bytes;
		}
	} else if (err) {
		*err = e;
	}
	json_decref(r.header);
	json_decref(r.seen);
	for (size_t i = 0; i < r.nfix; i++)
		free(r.fix[i].rel);
	free(r.fix);
	for (int i = 0; i < RB_N; i++) {
		free(r.ring[i].data);
		EVP_MD_CTX_free(r.ring[i].pre);
	}
	EVP_MD_CTX_free(r.run);
	ZSTD_freeDCtx(r.dctx);
	free(r.in);
	pthread_cond_destroy(&r.cv);
	pthread_mutex_destroy(&r.mu);
	return rc;
}
