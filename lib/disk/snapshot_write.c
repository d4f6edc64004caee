/*
 * Writing .miren.zst snapshots; see snapshot.h and docs/backup-format.md.
 *
 * The pipeline, on the caller's thread unless said otherwise:
 *
 *   read(2), 1 MiB at a time, into one of NBUF buffers
 *     -> libarchive pax writer -> write callback:
 *          per-file SHA-256 of a member's data    (hashing thread 1)
 *          archive SHA-256                        (hashing thread 2)
 *          ZSTD_compressStream2 -> sink           (zstd's worker threads)
 *
 * Both digests are taken in the write callback, from the very bytes that
 * go on to zstd: what the manifest records for a file is, by construction,
 * the digest of the data its member holds, whatever happens to the file
 * while it is read.  Every digest update goes through digest_add(), which
 * keeps each digest's updates in stream order (an update made on this
 * thread first waits for the queued ones).
 *
 * Each file is read once; its bytes go from the read buffer through
 * libarchive to zstd without further copies, and the hashing threads read
 * the same buffer, which is not reused until both are done with it (chunks
 * under 64 KiB, and bytes in libarchive's own buffers, are hashed on this
 * thread).  The two digests are most of the CPU time besides compression,
 * so running them beside the reads and zstd keeps them off the critical
 * path when there are cores for it.
 *
 * libarchive runs unblocked (bytes_per_block 0): every tar byte reaches the
 * callback as soon as it is produced and no record padding is added, so
 * "archive_sha256" is exactly the SHA-256 of the tar bytes from offset 0 up
 * to the first byte of the manifest member's header (the end of the
 * previous member's 512-byte padding), computed before that header is
 * written.
 *
 * Errors are sticky: after any failure every later call fails, and the
 * output is not a usable snapshot.  snap_writer_free() of an unfinished
 * writer sends nothing more to the sink.  Symlinks whose target could leave
 * the disk (absolute, or climbing above it) are refused with MIREN_EINVAL,
 * since the reader would refuse to restore them.
 */
#include "disk/snapshot.h"
#include "util/compiler.h"
#include "util/io.h"
#include "util/sha256.h"

#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zstd.h>

#define SNAP_READ_CHUNK (1u << 20)
#define NBUF 4                      /* read buffers */
#define SNAP_HASH_ASYNC (64u << 10) /* smaller chunks are hashed inline */
#define HQ_N 16                     /* queued digest updates per hashing thread */

/* The hashing thread: a FIFO of digest updates (see the top comment). */
struct hjob {
	struct sha256 *h;
	const void *data;
	size_t len;
};
struct hasher {
	pthread_t thr;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool started, quit;
	struct hjob q[HQ_N];
	uint64_t posted, done; /* job j (1-based) is finished once done >= j */
};

struct snap_writer {
	snap_sink_fn sink;
	void *user;
	struct archive *ar;
	struct archive_entry *entry; /* reused for every member */
	ZSTD_CCtx *cctx;
	unsigned char *zout;
	size_t zout_cap;
	unsigned char *rbuf;        /* NBUF * SNAP_READ_CHUNK, for file contents */
	const unsigned char *chunk; /* the file chunk being archived */
	size_t chunk_len;
	uint64_t chunk_seq_file, chunk_seq_tar; /* its digest jobs */
	struct sha256 tar_sha;
	bool tar_sha_open;
	struct sha256 *file_sha; /* set while a file member's data is written */
	unsigned tree_flags;     /* SNAP_TREE_* of the snap_add_tree running */
	bool raw;                /* snap_writer_new_raw: the tar stream goes to the sink as is */
	bool has_reuse;          /* snap_writer_set_reuse: hooks set, archive digest deferred */
	struct snap_reuse reuse;
	bool added;         /* a member besides the header was added */
	uint64_t skip_left; /* output bytes to swallow: a reused file's data */
	struct deferred {   /* files whose digest the sink fills in */
		char *name;
		uint64_t from, size;
	} * deferred;
	size_t n_deferred, cap_deferred;
	bool discard; /* being freed unfinished: swallow libarchive's output */
	bool finished;
	int failed;                /* sticky error code */
	struct miren_error cb_err; /* raised inside the write callback */
	json_t *files;             /* "disk/rel" -> sha256 hex */
	uint64_t nfiles, bytes_in, tar_bytes, zst_bytes;
	char *path; /* "disk/..." of the member being walked */
	size_t path_len, path_cap;
	struct hasher hs_file; /* per-file digests */
	struct hasher hs_tar;  /* the archive digest */
};

/* The placeholder of deferred digest i (see snap_writer_set_reuse):
   unique in the manifest but for a 2^-224 chance. */
static void placeholder(size_t i, char hex[65])
{
	memset(hex, 'f', 48);
	snprintf(hex + 48, 17, "%016zx", i);
}

static void *hasher_main(void *arg)
{
	struct hasher *hs = arg;
	pthread_mutex_lock(&hs->mu);
	for (;;) {
		while (hs->done == hs->posted && !hs->quit)
			pthread_cond_wait(&hs->cv, &hs->mu);
		if (hs->done == hs->posted)
			break;
		struct hjob j = hs->q[hs->done % HQ_N];
		pthread_mutex_unlock(&hs->mu);
		sha256_update(j.h, j.data, j.len);
		pthread_mutex_lock(&hs->mu);
		hs->done++;
		pthread_cond_broadcast(&hs->cv);
	}
	pthread_mutex_unlock(&hs->mu);
	return NULL;
}

static void hasher_start(struct hasher *hs)
{
	pthread_mutex_init(&hs->mu, NULL);
	pthread_cond_init(&hs->cv, NULL);
	hs->started = pthread_create(&hs->thr, NULL, hasher_main, hs) == 0;
	if (!hs->started) {
		pthread_cond_destroy(&hs->cv);
		pthread_mutex_destroy(&hs->mu);
	}
}

/* Queues h += data (which must stay unchanged until then); returns the job's
   number for hash_wait_for (0: done inline, without a thread). */
static uint64_t hash_post(struct hasher *hs, struct sha256 *h, const void *data, size_t len)
{
	if (!hs->started) {
		sha256_update(h, data, len);
		return 0;
	}
	pthread_mutex_lock(&hs->mu);
	while (hs->posted - hs->done == HQ_N)
		pthread_cond_wait(&hs->cv, &hs->mu);
	hs->q[hs->posted % HQ_N] = (struct hjob){ h, data, len };
	uint64_t seq = ++hs->posted;
	pthread_cond_broadcast(&hs->cv);
	pthread_mutex_unlock(&hs->mu);
	return seq;
}

static void hash_wait_for(struct hasher *hs, uint64_t seq)
{
	if (!hs->started || !seq)
		return;
	pthread_mutex_lock(&hs->mu);
	while (hs->done < seq)
		pthread_cond_wait(&hs->cv, &hs->mu);
	pthread_mutex_unlock(&hs->mu);
}

static void hash_wait_all(struct hasher *hs)
{
	if (!hs->started)
		return;
	pthread_mutex_lock(&hs->mu);
	while (hs->done < hs->posted)
		pthread_cond_wait(&hs->cv, &hs->mu);
	pthread_mutex_unlock(&hs->mu);
}

static void hasher_stop(struct hasher *hs)
{
	if (!hs->started)
		return;
	pthread_mutex_lock(&hs->mu);
	hs->quit = true;
	pthread_cond_broadcast(&hs->cv);
	pthread_mutex_unlock(&hs->mu);
	pthread_join(hs->thr, NULL);
	pthread_cond_destroy(&hs->cv);
	pthread_mutex_destroy(&hs->mu);
	hs->started = false;
}

/*
 * The one way to update a digest: h += data, after every update queued
 * before it.  stable: data stays unchanged until the returned job is done
 * (then a large update is handed to the hashing thread); otherwise, or for
 * a small one, it is hashed here once the queue is empty.  Returns the job
 * number for hash_wait_for (0: already done).
 */
static uint64_t digest_add(struct hasher *hs, struct sha256 *h, const void *data, size_t len,
			   bool stable)
{
	if (stable && len >= SNAP_HASH_ASYNC)
		return hash_post(hs, h, data, len);
	hash_wait_all(hs);
	sha256_update(h, data, len);
	return 0;
}

/* Sends n bytes at data (zout, or tar bytes in raw mode) to the sink. */
static int w_emit(struct snap_writer *w, const void *data, size_t n)
{
	if (!n)
		return 0;
	errno = 0;
	int rc = w->sink(w->user, data, n);
	if (rc) {
		int e = errno;
		if (rc < MIREN_EINVAL || rc > MIREN_EINTERNAL)
			rc = MIREN_EIO;
		if (e == ENOSPC || e == EDQUOT)
			return miren_error_set(&w->cb_err, rc,
					       "cannot write the backup: the disk is full");
		if (e)
			return miren_error_set(&w->cb_err, rc, "cannot write the backup: %s",
					       io_strerror(e));
		return miren_error_set(&w->cb_err, rc,
				       "cannot write the backup (its destination failed)");
	}
	w->zst_bytes += n;
	return 0;
}

/* One ZSTD_compressStream2 step; *left gets zstd's "still to flush" hint. */
static int w_zstd(struct snap_writer *w, ZSTD_inBuffer *in, ZSTD_EndDirective mode, size_t *left)
{
	ZSTD_outBuffer out = { w->zout, w->zout_cap, 0 };
	size_t r = ZSTD_compressStream2(w->cctx, &out, in, mode);
	if (ZSTD_isError(r))
		return miren_error_set(&w->cb_err, MIREN_EINTERNAL, "zstd compression failed: %s",
				       ZSTD_getErrorName(r));
	*left = r;
	return w_emit(w, w->zout, out.pos);
}

static la_ssize_t w_write_cb(struct archive *a MIREN_UNUSED, void *u, const void *buf, size_t len)
{
	struct snap_writer *w = u;
	/* A failed stream swallows the rest and the caller reads cb_err after
	   each libarchive call: a callback that returned -1 would leave the
	   archive FATAL, and libarchive 3.6 then never closes (nor frees) its
	   client filter in archive_write_free. */
	if (w->discard || w->cb_err.code)
		return (la_ssize_t)len;
	size_t whole = len;
	if (w->skip_left) {
		/* The zeros libarchive writes in place of a reused file's data
		   (see snap_writer_set_reuse): they are in the sink already. */
		size_t d = len < w->skip_left ? len : (size_t)w->skip_left;
		w->skip_left -= d;
		w->tar_bytes += d;
		buf = (const char *)buf + d;
		len -= d;
		if (!len)
			return (la_ssize_t)whole;
	}
	/* File data in the read buffer stays put until its jobs are done;
	   headers, padding and anything else live in libarchive's buffers. */
	uintptr_t b = (uintptr_t)buf, c = (uintptr_t)w->chunk;
	bool stable = w->chunk && b >= c && b + len <= c + w->chunk_len;
	if (w->file_sha) {
		uint64_t j = digest_add(&w->hs_file, w->file_sha, buf, len, stable);
		if (j)
			w->chunk_seq_file = j;
	}
	if (w->tar_sha_open) {
		uint64_t j = digest_add(&w->hs_tar, &w->tar_sha, buf, len, stable);
		if (j)
			w->chunk_seq_tar = j;
	}
	w->tar_bytes += len;
	if (w->raw) {
		(void)w_emit(w, buf, len); /* cb_err holds why */
		return (la_ssize_t)whole;
	}
	ZSTD_inBuffer in = { buf, len, 0 };
	while (in.pos < in.size) {
		size_t left;
		if (w_zstd(w, &in, ZSTD_e_continue, &left))
			break; /* cb_err holds why */
	}
	return (la_ssize_t)whole;
}

/* Records a failure: copies the callback's error if there is one. */
static enum miren_err w_fail(struct snap_writer *w, struct miren_error *err, int code,
			     const char *what)
{
	if (w->cb_err.code) {
		code = w->cb_err.code;
		if (err && err != &w->cb_err)
			*err = w->cb_err;
	} else if (what) {
		miren_error_set(err, code, "cannot write the backup (%s: %s)", what,
				archive_error_string(w->ar) ? archive_error_string(w->ar)
							    : "unknown error");
	}
	if (!w->failed)
		w->failed = code;
	return code;
}

static enum miren_err w_check(struct snap_writer *w, struct miren_error *err)
{
	if (w->finished)
		return miren_error_set(err, MIREN_EINTERNAL, "the backup was already finished");
	if (w->failed)
		return miren_error_set(err, w->failed, "the backup already failed");
	return 0;
}

/* Writes one member's header; size only for regular files. */
static enum miren_err w_header(struct snap_writer *w, const char *name, mode_t type, mode_t perm,
			       uid_t uid, gid_t gid, time_t mtime, long mtime_ns, int64_t size,
			       const char *link, struct miren_error *err)
{
	struct archive_entry *e = w->entry;
	archive_entry_clear(e);
	archive_entry_copy_pathname(e, name);
	archive_entry_set_filetype(e, type);
	archive_entry_set_perm(e, perm & 07777);
	archive_entry_set_uid(e, uid);
	archive_entry_set_gid(e, gid);
	archive_entry_set_mtime(e, mtime, mtime_ns);
	archive_entry_set_size(e, type == AE_IFREG ? size : 0);
	if (link)
		archive_entry_copy_symlink(e, link);
	/* ARCHIVE_WARN: a name not valid in the locale's charset; stored raw. */
	if (archive_write_header(w->ar, e) < ARCHIVE_WARN || w->cb_err.code)
		return w_fail(w, err, MIREN_EIO, name);
	return 0;
}

static enum miren_err w_data(struct snap_writer *w, const void *data, size_t len, const char *name,
			     struct miren_error *err)
{
	const char *p = data;
	while (len) {
		la_ssize_t n = archive_write_data(w->ar, p, len);
		if (n <= 0 || w->cb_err.code)
			return w_fail(w, err, MIREN_EIO, name);
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static enum miren_err w_end_entry(struct snap_writer *w, const char *name, struct miren_error *err)
{
	if (archive_write_finish_entry(w->ar) < ARCHIVE_WARN || w->cb_err.code)
		return w_fail(w, err, MIREN_EIO, name);
	return 0;
}

/* A whole in-memory member (header, manifest, snap_add_data); hex (may be
   NULL) gets the SHA-256 of the data the member holds. */
static enum miren_err w_member_mem(struct snap_writer *w, const char *name, const void *data,
				   size_t len, mode_t mode, char hex[65], uint64_t *data_at,
				   struct miren_error *err)
{
	struct timespec now;
	clock_gettime(CLOCK_REALTIME, &now);
	enum miren_err rc = w_header(w, name, AE_IFREG, mode, geteuid(), getegid(), now.tv_sec, 0,
				     (int64_t)len, NULL, err);
	if (rc)
		return rc;
	if (data_at)
		*data_at = w->tar_bytes; /* unblocked: the header is out */
	struct sha256 h;
	sha256_init(&h);
	w->file_sha = hex ? &h : NULL;
	rc = w_data(w, data, len, name, err);
	w->file_sha = NULL;
	hash_wait_all(&w->hs_file);
	if (hex)
		sha256_final_hex(&h, hex);
	else
		sha256_final_hex(&h, (char[65]){ 0 }); /* releases it */
	if (!rc)
		rc = w_end_entry(w, name, err);
	return rc;
}

static struct snap_writer *writer_new(snap_sink_fn sink, void *user, const json_t *header,
				      int level, int threads, bool raw, struct miren_error *err)
{
	if (header && !json_is_object(header)) {
		miren_error_set(err, MIREN_EINVAL, "the backup header must be a JSON object");
		return NULL;
	}
	struct snap_writer *w = xcalloc(1, sizeof(*w));
	w->sink = sink;
	w->user = user;
	w->raw = raw;
	w->files = json_object();
	w->zout_cap = ZSTD_CStreamOutSize() * 4;
	w->zout = xmalloc(w->zout_cap);
	w->rbuf = xmalloc(NBUF * (size_t)SNAP_READ_CHUNK);
	hasher_start(&w->hs_file);
	hasher_start(&w->hs_tar);
	w->path_cap = 256;
	w->path = xmalloc(w->path_cap);
	sha256_init(&w->tar_sha);
	w->tar_sha_open = true;
	char *text = NULL;
	json_t *h = header ? json_deep_copy(header) : json_object();

	if (level == 0)
		level = 3;
	if (threads <= 0) {
		long n = sysconf(_SC_NPROCESSORS_ONLN);
		threads = n > 0 ? (int)(n > 200 ? 200 : n) : 1;
	}
	if (!raw) {
		w->cctx = ZSTD_createCCtx();
		if (!w->cctx)
			abort();
		size_t r = ZSTD_CCtx_setParameter(w->cctx, ZSTD_c_compressionLevel, level);
		if (!ZSTD_isError(r))
			r = ZSTD_CCtx_setParameter(w->cctx, ZSTD_c_checksumFlag, 1);
		if (ZSTD_isError(r)) {
			miren_error_set(err, MIREN_EINVAL, "bad zstd level %d: %s", level,
					ZSTD_getErrorName(r));
			goto fail;
		}
		/* Fails only on a libzstd built without threads: then one thread it is. */
		(void)ZSTD_CCtx_setParameter(w->cctx, ZSTD_c_nbWorkers, threads);
	}

	w->ar = archive_write_new();
	w->entry = archive_entry_new();
	if (!w->ar || !w->entry)
		abort();
	if (archive_write_set_format_pax_restricted(w->ar) != ARCHIVE_OK ||
	    archive_write_set_bytes_per_block(w->ar, 0) != ARCHIVE_OK ||
	    archive_write_open2(w->ar, w, NULL, w_write_cb, NULL, NULL) != ARCHIVE_OK) {
		w_fail(w, err, MIREN_EINTERNAL, "libarchive setup");
		goto fail;
	}

	json_object_set_new(h, "format", json_string("miren-disk-backup"));
	json_object_set_new(h, "format_version", json_integer(SNAP_FORMAT_VERSION));
	text = json_dumps(h, JSON_INDENT(2) | JSON_SORT_KEYS);
	if (!text) {
		miren_error_set(err, MIREN_EINVAL, "the backup header cannot be encoded as JSON");
		goto fail;
	}
	size_t tl = strlen(text);
	text = xrealloc(text, tl + 2);
	text[tl++] = '\n';
	text[tl] = '\0';
	if (w_member_mem(w, "miren-backup.json", text, tl, 0644, NULL, NULL, err))
		goto fail;
	free(text);
	json_decref(h);
	return w;
fail:
	free(text);
	json_decref(h);
	snap_writer_free(w);
	return NULL;
}

struct snap_writer *snap_writer_new(snap_sink_fn sink, void *user, const json_t *header, int level,
				    int threads, struct miren_error *err)
{
	return writer_new(sink, user, header, level, threads, false, err);
}

struct snap_writer *snap_writer_new_raw(snap_sink_fn sink, void *user, const json_t *header,
					struct miren_error *err)
{
	return writer_new(sink, user, header, 0, 1, true, err);
}

enum miren_err snap_writer_set_reuse(struct snap_writer *w, const struct snap_reuse *r,
				     struct miren_error *err)
{
	enum miren_err rc = w_check(w, err);
	if (rc)
		return rc;
	if (!w->raw || w->added || !r || !r->data_begin || !r->data_end || !r->digest_at)
		return miren_error_set(err, MIREN_EINVAL,
				       "file reuse needs a raw writer with nothing added yet");
	w->reuse = *r;
	w->has_reuse = true;
	/* The archive digest is deferred: stop taking it. */
	hash_wait_all(&w->hs_tar);
	char hex[65];
	sha256_final_hex(&w->tar_sha, hex);
	w->tar_sha_open = false;
	return 0;
}

/* Path buffer "disk/<rel>": append a component / cut back. */
static void w_path_push(struct snap_writer *w, const char *name)
{
	size_t n = strlen(name);
	size_t need = w->path_len + 1 + n + 1;
	if (need > w->path_cap) {
		while (w->path_cap < need)
			w->path_cap *= 2;
		w->path = xrealloc(w->path, w->path_cap);
	}
	if (w->path_len && w->path[w->path_len - 1] != '/')
		w->path[w->path_len++] = '/';
	memcpy(w->path + w->path_len, name, n + 1);
	w->path_len += n;
}

static void w_path_cut(struct snap_writer *w, size_t len)
{
	w->path_len = len;
	w->path[len] = '\0';
}

static enum miren_err w_read_error(struct snap_writer *w, int e, const char *what,
				   struct miren_error *err)
{
	enum miren_err rc;
	if (e == ENOENT)
		rc = miren_error_set(err, MIREN_EIO, "%s vanished while being backed up", what);
	else
		rc = miren_error_set(err, MIREN_EIO, "cannot read %s: %s", what, io_strerror(e));
	w->failed = rc;
	return rc;
}

/* A file or directory that is gone when opened: left out of a volatile tree. */
static bool w_vanished(struct snap_writer *w, int e)
{
	return e == ENOENT && (w->tree_flags & SNAP_TREE_VOLATILE);
}

static enum miren_err w_file(struct snap_writer *w, int dfd, const char *name,
			     struct miren_error *err)
{
	const char *path = w->path;
	enum miren_err rc = 0;
	int fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOATIME);
	if (fd < 0 && errno == EPERM)
		fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return w_vanished(w, errno) ? 0 : w_read_error(w, errno, path, err);
	struct stat st;
	struct timespec stat_time; /* for the reuse hooks: see snapshot.h */
	clock_gettime(CLOCK_REALTIME, &stat_time);
	if (fstat(fd, &st) != 0) {
		rc = w_read_error(w, errno, path, err);
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		rc = w->failed = miren_error_set(err, MIREN_EIO,
						 "%s changed type while being backed up", path);
		goto out;
	}
	if (json_object_get(w->files, path)) {
		rc = w->failed = miren_error_set(err, MIREN_EINVAL, "%s is already in the backup",
						 path);
		goto out;
	}
	/* The manifest is JSON: its keys, the file names, must be UTF-8. */
	if (json_object_set_new(w->files, path, json_null()) != 0) {
		rc = w->failed =
			miren_error_set(err, MIREN_EINVAL,
					"file name %s is not valid UTF-8; it cannot be backed up",
					path);
		miren_error_hint(err, "rename the file");
		goto out;
	}
	(void)posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
	rc = w_header(w, path, AE_IFREG, st.st_mode, st.st_uid, st.st_gid, st.st_mtim.tv_sec,
		      st.st_mtim.tv_nsec, st.st_size, NULL, err);
	if (rc)
		goto out;
	char hex[65];
	int kind = w->has_reuse ? w->reuse.data_begin(w->reuse.u, path, &st,
						      (int64_t)stat_time.tv_sec * 1000000000 +
							      stat_time.tv_nsec)
				: SNAP_REUSE_READ;
	if (kind != SNAP_REUSE_READ) {
		if (w->n_deferred == w->cap_deferred) {
			w->cap_deferred = w->cap_deferred ? 2 * w->cap_deferred : 64;
			w->deferred = xrealloc(w->deferred, w->cap_deferred * sizeof(*w->deferred));
		}
		w->deferred[w->n_deferred] = (struct deferred){ xstrdup(path), w->tar_bytes,
								(uint64_t)st.st_size };
		placeholder(w->n_deferred++, hex);
	}
	if (kind == SNAP_REUSE_SKIP) {
		/* The sink has these bytes: libarchive's zeros in their
		   place are swallowed (w_write_cb). */
		w->reuse.data_end(w->reuse.u, path, &st, true);
		w->skip_left = (uint64_t)st.st_size;
		rc = w_end_entry(w, path, err);
		if (!rc && w->skip_left)
			rc = w->failed = miren_error_set(err, MIREN_EINTERNAL,
							 "%s: the archive did not pad a reused "
							 "file as expected",
							 path);
		if (rc)
			goto out;
		json_object_set_new(w->files, path, json_string(hex));
		w->nfiles++;
		w->bytes_in += (uint64_t)st.st_size;
		goto out;
	}
	/* The member's data is digested in the write callback (see the top),
	   unless the sink does it. */
	struct sha256 h;
	sha256_init(&h);
	w->file_sha = kind == SNAP_REUSE_READ ? &h : NULL;
	/* NBUF buffers: one is read into while the others may still be hashed. */
	uint64_t job_file[NBUF] = { 0 }, job_tar[NBUF] = { 0 };
	uint64_t left = (uint64_t)st.st_size;
	bool padding = false;
	for (unsigned k = 0; left; k = (k + 1) % NBUF) {
		unsigned char *buf = w->rbuf + (size_t)k * SNAP_READ_CHUNK;
		size_t want = left < SNAP_READ_CHUNK ? (size_t)left : SNAP_READ_CHUNK;
		hash_wait_for(&w->hs_file, job_file[k]);
		hash_wait_for(&w->hs_tar, job_tar[k]);
		ssize_t n = 0;
		if (!padding) {
			do
				n = read(fd, buf, want);
			while (n < 0 && errno == EINTR);
		}
		if (n < 0) {
			rc = w_read_error(w, errno, path, err);
			break;
		}
		if (n == 0) {
			if (!(w->tree_flags & SNAP_TREE_VOLATILE)) {
				rc = w->failed = miren_error_set(err, MIREN_EIO,
								 "%s shrank while being backed up",
								 path);
				break;
			}
			/* As a database's own base backup does: zeros to the
			   size in the header; its log replay rewrites what
			   counts. */
			padding = true;
			memset(buf, 0, want);
			n = (ssize_t)want;
		}
		w->chunk = buf;
		w->chunk_len = (size_t)n;
		w->chunk_seq_file = w->chunk_seq_tar = 0;
		rc = w_data(w, buf, (size_t)n, path, err);
		w->chunk = NULL;
		job_file[k] = w->chunk_seq_file;
		job_tar[k] = w->chunk_seq_tar;
		if (rc)
			break;
		left -= (uint64_t)n;
	}
	/* h is finished, and no job points into rbuf any more. */
	w->file_sha = NULL;
	hash_wait_all(&w->hs_file);
	hash_wait_all(&w->hs_tar);
	if (kind == SNAP_REUSE_READ)
		sha256_final_hex(&h, hex);
	else
		sha256_final_hex(&h, (char[65]){ 0 }); /* releases it */
	if (rc)
		goto out;
	if (w->has_reuse) {
		struct stat after;
		bool stable = !padding && fstat(fd, &after) == 0 && after.st_size == st.st_size &&
			      after.st_ino == st.st_ino &&
			      after.st_mtim.tv_sec == st.st_mtim.tv_sec &&
			      after.st_mtim.tv_nsec == st.st_mtim.tv_nsec &&
			      after.st_ctim.tv_sec == st.st_ctim.tv_sec &&
			      after.st_ctim.tv_nsec == st.st_ctim.tv_nsec;
		w->reuse.data_end(w->reuse.u, path, &st, stable);
	}
	rc = w_end_entry(w, path, err);
	if (rc)
		goto out;
	json_object_set_new(w->files, path, json_string(hex));
	w->nfiles++;
	w->bytes_in += (uint64_t)st.st_size;
out:
	close(fd);
	return rc;
}

static int cmp_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Archives the contents of the directory dfd (whose member is w->path). */
static enum miren_err w_dir(struct snap_writer *w, int dfd,
			    bool (*skip)(const char *, bool, void *), void *u,
			    struct miren_error *err)
{
	enum miren_err rc = 0;
	char **names = NULL;
	size_t n = 0, cap = 0;
	int lfd = dup(dfd);
	DIR *d = lfd >= 0 ? fdopendir(lfd) : NULL;
	if (!d) {
		if (lfd >= 0)
			close(lfd);
		return w_read_error(w, errno, w->path, err);
	}
	rewinddir(d); /* the dup shares its offset with dfd */
	struct dirent *de;
	errno = 0;
	while ((de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if (n == cap) {
			cap = cap ? cap * 2 : 64;
			names = xrealloc(names, cap * sizeof(*names));
		}
		names[n++] = xstrdup(de->d_name);
		errno = 0;
	}
	if (errno && !w_vanished(w, errno)) {
		rc = w_read_error(w, errno, w->path, err);
		goto out;
	}
	if (n > 1)
		qsort(names, n, sizeof(*names), cmp_names);

	size_t base = w->path_len;
	for (size_t i = 0; i < n && !rc; i++) {
		w_path_push(w, names[i]);
		const char *rel = w->path + strlen("disk/");
		struct stat st;
		if (fstatat(dfd, names[i], &st, AT_SYMLINK_NOFOLLOW) != 0) {
			if (!w_vanished(w, errno))
				rc = w_read_error(w, errno, w->path, err);
			w_path_cut(w, base);
			continue;
		}
		bool is_dir = S_ISDIR(st.st_mode);
		if (!(S_ISREG(st.st_mode) || is_dir || S_ISLNK(st.st_mode)) ||
		    (skip && skip(rel, is_dir, u))) {
			w_path_cut(w, base);
			continue;
		}
		if (S_ISREG(st.st_mode)) {
			rc = w_file(w, dfd, names[i], err);
		} else if (S_ISLNK(st.st_mode)) {
			char *target = xmalloc((size_t)st.st_size + 2);
			ssize_t tl = readlinkat(dfd, names[i], target, (size_t)st.st_size + 1);
			if (tl < 0 && w_vanished(w, errno)) {
				/* gone: left out */
			} else if (tl < 0 || tl > st.st_size) {
				rc = w_read_error(w, tl < 0 ? errno : EAGAIN, w->path, err);
			} else {
				target[tl] = '\0';
				if (!snap_link_target_inside(rel, target)) {
					rc = w->failed = miren_error_set(err, MIREN_EINVAL,
									 "symlink %s points "
									 "outside the disk ('%s'); "
									 "it cannot be backed up",
									 w->path, target);
					miren_error_hint(err, "replace it with a relative link "
							      "inside the disk, or remove it");
				} else {
					rc = w_header(w, w->path, AE_IFLNK, 0777, st.st_uid,
						      st.st_gid, st.st_mtim.tv_sec,
						      st.st_mtim.tv_nsec, 0, target, err);
				}
			}
			free(target);
		} else {
			int cfd = openat(dfd, names[i],
					 O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			if (cfd < 0) {
				if (!w_vanished(w, errno))
					rc = w_read_error(w, errno, w->path, err);
			} else {
				rc = w_header(w, w->path, AE_IFDIR, st.st_mode, st.st_uid,
					      st.st_gid, st.st_mtim.tv_sec, st.st_mtim.tv_nsec, 0,
					      NULL, err);
				if (!rc)
					rc = w_dir(w, cfd, skip, u, err);
				close(cfd);
			}
		}
		w_path_cut(w, base);
	}
out:
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
	closedir(d);
	return rc;
}

enum miren_err snap_add_tree(struct snap_writer *w, const char *root, unsigned flags,
			     bool (*skip)(const char *rel, bool is_dir, void *u), void *u,
			     struct miren_error *err)
{
	enum miren_err rc = w_check(w, err);
	if (rc)
		return rc;
	w->added = true;
	w->tree_flags = flags;
	w_path_cut(w, 0);
	w_path_push(w, "disk/");
	int fd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return w_read_error(w, errno, root, err);
	struct stat st;
	if (fstat(fd, &st) != 0) {
		rc = w_read_error(w, errno, root, err);
		goto out;
	}
	rc = w_header(w, "disk/", AE_IFDIR, st.st_mode, st.st_uid, st.st_gid, st.st_mtim.tv_sec,
		      st.st_mtim.tv_nsec, 0, NULL, err);
	if (!rc)
		rc = w_dir(w, fd, skip, u, err);
out:
	close(fd);
	return rc;
}

enum miren_err snap_add_data(struct snap_writer *w, const char *rel, const void *data, size_t len,
			     mode_t mode, struct miren_error *err)
{
	enum miren_err rc = w_check(w, err);
	if (rc)
		return rc;
	rc = snap_check_rel(rel, err);
	if (rc)
		return rc; /* nothing written: the writer stays usable */
	w->added = true;
	char *name = xasprintf("disk/%s", rel);
	if (json_object_get(w->files, name)) {
		rc = miren_error_set(err, MIREN_EINVAL, "%s is already in the backup", name);
		free(name);
		return rc;
	}
	if (json_object_set_new(w->files, name, json_null()) != 0) {
		rc = miren_error_set(err, MIREN_EINVAL, "file name %s is not valid UTF-8", name);
		free(name);
		return rc;
	}
	char hex[65];
	rc = w_member_mem(w, name, data, len, mode, hex, NULL, err);
	if (rc) {
		json_object_del(w->files, name);
	} else {
		json_object_set_new(w->files, name, json_string(hex));
		w->nfiles++;
		w->bytes_in += len;
	}
	free(name);
	return rc;
}

enum miren_err snap_writer_finish(struct snap_writer *w, struct snap_stats *st,
				  struct miren_error *err)
{
	enum miren_err rc = w_check(w, err);
	if (rc)
		return rc;
	char *text = NULL;
	json_t *m = NULL;
	/* Pad the last member so the digest ends where the manifest begins. */
	rc = w_end_entry(w, "the last member", err);
	if (rc)
		goto out;
	char hex[65];
	if (w->tar_sha_open) {
		sha256_final_hex(&w->tar_sha, hex);
		w->tar_sha_open = false;
	} else { /* deferred: see snap_writer_set_reuse */
		memset(hex, '0', 64);
		hex[64] = '\0';
	}
	uint64_t covered = w->tar_bytes;
	m = json_pack("{s:O, s:s, s:I, s:I}", "files", w->files, "archive_sha256", hex,
		      "file_count", (json_int_t)w->nfiles, "bytes", (json_int_t)w->bytes_in);
	if (!m)
		abort();
	text = json_dumps(m, JSON_INDENT(1) | JSON_SORT_KEYS);
	if (!text)
		abort(); /* only out of memory: every key was checked */
	size_t tl = strlen(text);
	text = xrealloc(text, tl + 2);
	text[tl++] = '\n';
	text[tl] = '\0';
	uint64_t data_at = 0;
	rc = w_member_mem(w, "miren-manifest.json", text, tl, 0644, NULL, &data_at, err);
	if (rc)
		goto out;
	if (w->has_reuse) {
		const char *key = "\"archive_sha256\": \"";
		const char *at = strstr(text, key); /* the first key: nothing before it */
		if (!at)
			abort();
		w->reuse.digest_at(w->reuse.u, NULL, 0, covered,
				   data_at + (uint64_t)(at - text) + strlen(key));
		for (size_t i = 0; i < w->n_deferred; i++) {
			char ph[67];
			ph[0] = '"';
			placeholder(i, ph + 1);
			ph[65] = '"';
			ph[66] = '\0';
			at = strstr(text, ph);
			if (!at)
				abort();
			struct deferred *d = &w->deferred[i];
			w->reuse.digest_at(w->reuse.u, d->name, d->from, d->from + d->size,
					   data_at + (uint64_t)(at - text) + 1);
		}
	}
	if (archive_write_close(w->ar) != ARCHIVE_OK || w->cb_err.code) {
		rc = w_fail(w, err, MIREN_EIO, "end of archive");
		goto out;
	}
	ZSTD_inBuffer in = { NULL, 0, 0 };
	size_t left = 0;
	do {
		if (!w->raw && w_zstd(w, &in, ZSTD_e_end, &left)) {
			rc = w_fail(w, err, MIREN_EIO, NULL);
			goto out;
		}
	} while (left);
	if (w->cb_err.code) { /* a raw sink's failure on the last bytes */
		rc = w_fail(w, err, MIREN_EIO, NULL);
		goto out;
	}
	w->finished = true;
	if (st) {
		st->files = w->nfiles;
		st->bytes_in = w->bytes_in;
		st->tar_bytes = w->tar_bytes;
		st->zst_bytes = w->zst_bytes;
	}
out:
	free(text);
	json_decref(m);
	return rc;
}

void snap_writer_free(struct snap_writer *w)
{
	if (!w)
		return;
	w->discard = true;
	hasher_stop(&w->hs_file);
	hasher_stop(&w->hs_tar);
	if (w->ar)
		archive_write_free(w->ar);
	if (w->entry)
		archive_entry_free(w->entry);
	ZSTD_freeCCtx(w->cctx);
	if (w->tar_sha_open) {
		char hex[65];
		sha256_final_hex(&w->tar_sha, hex); /* releases it */
	}
	json_decref(w->files);
	for (size_t i = 0; i < w->n_deferred; i++)
		free(w->deferred[i].name);
	free(w->deferred);
	free(w->zout);
	free(w->rbuf);
	free(w->path);
	free(w);
}
