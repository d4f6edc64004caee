/*
 * Reading .miren.zst snapshots; see snapshot.h and docs/backup-format.md.
 *
 * Two threads share a ring of RB_N buffers of RB_CAP tar bytes each:
 *
 *   producer: source -> ZSTD_decompressStream -> a free buffer; then the
 *             running SHA-256 of the tar stream takes the buffer, and the
 *             digest state from before it is kept beside it (rb.pre);
 *   caller:   libarchive's tar reader reads the buffers in place (its read
 *             callback hands them out) -> member checks -> the tree's one
 *             extractor (lib/util/extract.h) creates each member below the
 *             staging directory, hashing a file while it writes it.
 *
 * archive_sha256 covers the tar bytes before the manifest member's header,
 * whose offset libarchive reports (archive_read_header_position).  The
 * caller keeps the last two buffers it took (cur, prev), so that offset lies
 * in one of them and the digest is rb.pre plus the bytes before it.  A
 * manifest header longer than a buffer is refused.
 *
 * Safety is the extractor's (lib/util/extract.h): every path is checked
 * before anything is created, creation uses *at() calls that never follow a
 * symlink, so a member can never be written through a symlink or outside
 * staging; here its links must stay inside the disk
 * (snap_link_target_inside), and its times are kept.
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
#include "util/extract.h"
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
	bool raw; /* snap_read_raw: the source gives tar bytes */
	ZSTD_DCtx *dctx;
	unsigned char *in;
	EVP_MD_CTX *run;
	uint64_t tar_bytes, zst_bytes;

	/* Caller's. */
	bool thread_started;
	uint64_t n_taken;
	struct rb *cur, *prev;
	struct archive *ar;
	/* Writes the members below disk/ into staging (lib/util/extract.h);
	 * without staging it only checks them. */
	struct extractor *x;
	json_t *seen; /* "disk/rel" -> sha256 hex */
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

/* ---------------------------------------------------------------- producer */

/* Takes the next free buffer for filling; NULL when cancelled. */
static struct rb *producer_buffer(struct rd *r)
{
	pthread_mutex_lock(&r->mu);
	struct rb *b = &r->ring[r->n_pub % RB_N];
	while (b->state != RB_FREE && !r->cancel)
		pthread_cond_wait(&r->cv, &r->mu);
	if (r->cancel)
		b = NULL;
	else
		b->state = RB_FILLING;
	pthread_mutex_unlock(&r->mu);
	return b;
}

/* Publishes a filled buffer (an empty one goes back to the free ones). */
static void producer_publish(struct rd *r, struct rb *b)
{
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

/* The raw producer: the source's bytes are the tar stream; the first
   `have` of them are in r->in already.  Returns the tar bytes produced. */
static uint64_t produce_raw(struct rd *r, size_t have, bool eof, struct miren_error *e)
{
	uint64_t produced = 0;
	bool first = true;
	while (!e->code) {
		struct rb *b = producer_buffer(r);
		if (!b)
			break;
		b->start = produced;
		b->len = 0;
		if (EVP_MD_CTX_copy_ex(b->pre, r->run) != 1)
			abort();
		if (first) {
			memcpy(b->data, r->in, have); /* IN_CAP <= RB_CAP */
			b->len = have;
			first = false;
		}
		while (b->len < RB_CAP && !eof) {
			ssize_t n = r->source(r->user, b->data + b->len, RB_CAP - b->len);
			if (n < 0) {
				miren_error_set(e, MIREN_EIO, "cannot read the backup: %s",
						io_strerror(errno));
				break;
			}
			if (n == 0)
				eof = true;
			b->len += (size_t)n;
			r->zst_bytes += (uint64_t)n;
		}
		if (b->len && EVP_DigestUpdate(r->run, b->data, b->len) != 1)
			abort();
		produced += b->len;
		bool last = eof || e->code;
		producer_publish(r, b);
		if (last)
			break;
	}
	return produced;
}

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
	if (r->raw) {
		produced = produce_raw(r, have, eof, &e);
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
		struct rb *b = producer_buffer(r);
		if (!b)
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
		producer_publish(r, b);
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

static enum miren_err bad(struct miren_error *err, const char *fmt, const char *name)
{
	char b[128];
	return miren_error_set(err, MIREN_EINVAL, fmt, extract_show(name, b));
}

static enum miren_err archive_fail(struct rd *r, const char *name, struct miren_error *err)
{
	char b[128];
	const char *msg = archive_error_string(r->ar);
	return miren_error_set(err, MIREN_EINVAL, "backup file is corrupt (at %s: %s)",
			       extract_show(name, b), msg ? msg : "unreadable tar data");
}

/* Checks a member's name (below disk/), then the extractor checks its
 * type and path and creates it; a file's digest is kept for the
 * manifest. */
static enum miren_err extract(struct rd *r, struct archive_entry *e, const char *name,
			      struct miren_error *err)
{
	enum miren_err rc = extract_check_name(name, err);
	if (rc)
		return rc;
	if (strncmp(name, "disk/", 5) != 0 && strcmp(name, "disk") != 0)
		return bad(err, "unexpected member '%s' (not under disk/)", name);
	mode_t type = archive_entry_filetype(e);
	char *rel = xstrdup(name[4] ? name + 5 : "");
	size_t n = strlen(rel);
	if (type == AE_IFDIR)
		while (n && rel[n - 1] == '/')
			rel[--n] = '\0';
	bool file = type == AE_IFREG && !archive_entry_hardlink(e);
	char *key = xasprintf("disk/%s", rel);
	char hex[65];
	/* (Writing catches a second file of a name too, but checking alone
	 * writes nothing.) */
	if (file && json_object_get(r->seen, key))
		rc = bad(err, "member '%s' appears twice in the backup", name);
	else
		rc = extractor_entry(r->x, r->ar, e, rel, name, hex, err);
	if (rc == MIREN_ETOOBIG)
		miren_error_hint(err, "restore it into a larger disk");
	if (!rc && file)
		json_object_set_new(r->seen, key, json_string(hex));
	free(key);
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
	uint64_t nfiles = extractor_files(r->x), nbytes = extractor_bytes(r->x);
	if ((uint64_t)json_integer_value(count) != nfiles ||
	    (uint64_t)json_integer_value(bytes) != nbytes) {
		rc = miren_error_set(err, MIREN_EINVAL,
				     "backup file is corrupt (the manifest counts %lld files of "
				     "%lld bytes, the backup has %llu of %llu)",
				     (long long)json_integer_value(count),
				     (long long)json_integer_value(bytes),
				     (unsigned long long)nfiles, (unsigned long long)nbytes);
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
	if (!rc)
		rc = extractor_finish(r->x, err);
	return rc;
}

static enum miren_err read_any(snap_source_fn source, void *user, bool raw, const char *staging,
			       uid_t uid, gid_t gid, uint64_t max_bytes, json_t **header,
			       struct snap_stats *st, struct miren_error *err)
{
	struct miren_error e = { 0 };
	struct rd r = { .source = source, .user = user, .raw = raw };
	/* The disk's tree: owned by the disk's user, its times kept, links
	 * only inside, flushed before success. */
	const struct extract_opts xo = { .what = "backup",
					 .max_bytes = max_bytes,
					 .uid = uid,
					 .gid = gid,
					 .keep_times = true,
					 .links_inside = true,
					 .sync = true };
	pthread_t thr = { 0 }; /* joined only when r.thread_started */
	enum miren_err rc;
	if (header)
		*header = NULL;
	pthread_mutex_init(&r.mu, NULL);
	pthread_cond_init(&r.cv, NULL);
	r.seen = json_object();
	rc = extractor_open(staging, &xo, &r.x, &e);
	if (rc)
		goto out;
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
	if (!rc && st) {
		st->files = extractor_files(r.x);
		st->bytes_in = extractor_bytes(r.x);
	}
	extractor_close(r.x, rc != 0);
	if (!rc) {
		if (header)
			*header = json_incref(r.header);
		if (st) {
			st->tar_bytes = r.tar_bytes;
			st->zst_bytes = r.zst_bytes;
		}
	} else if (err) {
		*err = e;
	}
	json_decref(r.header);
	json_decref(r.seen);
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

enum miren_err snap_read(snap_source_fn source, void *user, const char *staging, uid_t uid,
			 gid_t gid, uint64_t max_bytes, json_t **header, struct snap_stats *st,
			 struct miren_error *err)
{
	return read_any(source, user, false, staging, uid, gid, max_bytes, header, st, err);
}

enum miren_err snap_read_raw(snap_source_fn source, void *user, const char *staging, uid_t uid,
			     gid_t gid, uint64_t max_bytes, json_t **header, struct snap_stats *st,
			     struct miren_error *err)
{
	return read_any(source, user, true, staging, uid, gid, max_bytes, header, st, err);
}
