/*
 * The backup store; see bstore.h for the layout and the contracts.
 *
 * Chunking: a backup's tar stream is cut where a gear hash of the last 64
 * bytes has its top CDC_BITS bits zero (content-defined, so an insertion
 * moves the cuts after it only locally), never before CHUNK_MIN bytes and
 * always at CHUNK_MAX: about 1.25 MiB a chunk on average.  A regular file
 * of FILE_MIN bytes or more (with bstore_snap_writer) is cut apart from
 * the rest: a cut before and after its data, and every FILE_CHUNK bytes
 * inside it; the manifest's "files" records its chunks and identity, so
 * the next backup of the same lineage takes it whole when it has not
 * changed (see hook_data_begin).  A chunk is named by the SHA-256 of its
 * bytes; a chunk that is already stored is not written again (that is the
 * whole of the deduplication).  Naming, compressing and writing chunks is
 * the work of a pool of threads (one per CPU, at most 8).
 *
 * Quick check: a tracked file that did change is mostly the same bytes
 * (a database's table with a few pages written), and hashing all of it
 * with SHA-256 would cost most of a full backup's time.  So each chunk also
 * carries an XXH3-128 of its bytes (third element of its manifest entry),
 * with a seed drawn at random for a lineage's first backup and handed on
 * from base to base ("xxh3_seed"); a file chunk whose XXH3-128 and length
 * equal those of the base's chunk at the same place in the same file is
 * that chunk, and takes its name unhashed.  XXH3 is not a cryptographic
 * hash (a collision would put the base's bytes in that chunk's place), but
 * a chance one needs about 2^64 chunks, and a chosen one the seed, which
 * never leaves the store.
 *
 * Crash safety (the order of durable steps is the design):
 *   1. each new chunk is written into this handle's tmp directory, fsynced
 *      and renamed into chunks/<2 hex>/ (fault point bstore:chunk-written);
 *   2. at commit, every chunks/ directory this backup names a chunk in
 *      (written or found) is fsynced, and chunks/ itself
 *      (bstore:chunks-synced), so every chunk the manifest will name is
 *      durable, even one another writer renamed a moment ago; not for a
 *      chunk taken from the base (a reused file's, or the quick check's):
 *      it was durable when the base was committed, and gc, which alone
 *      removes chunks, cannot run while this writer holds the lock;
 *   3. the manifest is written in tmp, fsynced (bstore:manifest-written),
 *      renamed into manifests/ without replacing anything
 *      (bstore:committed), and manifests/ is fsynced.
 * A crash before 3's rename leaves chunks no manifest names (the next gc
 * removes them) and files in tmp (the next open removes them).
 * bstore_remove unlinks the manifest (bstore:removed) and fsyncs manifests/.
 *
 * Garbage collection and concurrency: the file "lock" at the top is
 * flock(2)ed shared by every writer (from begin to commit or free), reader,
 * export and check, and exclusively by gc, across threads and processes
 * alike (each holder opens it anew: flock locks belong to open file
 * descriptions).  So gc runs only while no backup is being written or
 * read, and no manifest can appear while it runs.  It keeps every chunk
 * whose name appears, as 64 hex digits, anywhere in any file of
 * manifests/ (bstore:gc-marked once it has read them all), so even a
 * damaged manifest keeps its chunks; it fails, removing nothing, if any
 * manifest cannot be read.  Killed at any instant it has removed some
 * unnamed chunks (bstore:gc-removed after the first) and nothing else.
 *
 * tmp/: each open handle owns tmp/<pid>-<8 hex>/ and holds an exclusive
 * flock on tmp/<pid>-<8 hex>.lock while open.  bstore_open, holding a flock
 * on tmp/ itself so two opens do not interleave, removes every entry of
 * tmp/ whose lock is not held (a crashed process's) and then makes its own.
 */
#include "backup/bstore.h"
#include "util/compiler.h"
#include "util/fault.h"
#include "util/fs.h"
#include "util/io.h"
#include "util/log.h"
#include "util/strbuf.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <xxhash.h>
#include <zstd.h>
#include <zstd_errors.h>

#define CHUNK_MIN (256u << 10)
#define CHUNK_MAX (4u << 20)
#define CDC_BITS 20
/* A stored chunk may be up to this long (room for other chunk sizes later). */
#define CHUNK_LEN_LIMIT (64u << 20)
/* A file this large gets chunks of its own, so an unchanged one can be
   taken whole from the previous backup without being read. */
#define FILE_MIN (1u << 20)
/* Such a file's data is cut every FILE_CHUNK bytes from its start rather
   than by content: a database's files change in place, page by page, or
   grow at the end, so fixed blocks line up from one backup to the next,
   and no rolling hash has to run over them. */
#define FILE_CHUNK (1u << 20)
/* See hook_data_end. */
#define RACY_NS (2 * 1000000000LL)
/* ... and on one with sub-second times: a few ticks of the coarse clock
   that stamps files (racy_fine_ns, at least 20 ms). */
#define RACY_FINE_NS (20 * 1000000LL)
static int64_t racy_fine_ns = RACY_FINE_NS;
#define ZSTD_LEVEL 3
#define MANIFEST_FORMAT "miren-backup-manifest"
#define MANIFEST_VERSION 1
#define MANIFEST_MAX (256u << 20)

struct bstore {
	char *dir;
	char *tmp;    /* this handle's tmp/<name> */
	char *tmplck; /* tmp/<name>.lock */
	int tmplck_fd;
	unsigned long seq; /* tmp file names; under mu */
	pthread_mutex_t mu;
};

/* ---------------------------------------------------------------- helpers */

static uint64_t gear[256];
static pthread_once_t gear_once = PTHREAD_ONCE_INIT;

static int64_t ns_of(const struct timespec *t)
{
	return (int64_t)t->tv_sec * 1000000000 + t->tv_nsec;
}

/* The gear table: fixed pseudo-random values (splitmix64 from a constant),
   the same in every build, so cuts (and so deduplication) stay stable. */
static void gear_init(void)
{
	uint64_t x = 0x6d6972656e2d6364ULL;
	for (int i = 0; i < 256; i++) {
		uint64_t z = (x += 0x9e3779b97f4a7c15ULL);
		z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
		z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
		gear[i] = z ^ (z >> 31);
	}
	struct timespec res;
	if (clock_getres(CLOCK_REALTIME_COARSE, &res) == 0 && 4 * ns_of(&res) > racy_fine_ns)
		racy_fine_ns = 4 * ns_of(&res);
}

/* 2n hex digits and a NUL into hex */
static void hex_n(const unsigned char *b, size_t n, char *hex)
{
	static const char digits[] = "0123456789abcdef";
	for (size_t i = 0; i < n; i++) {
		hex[2 * i] = digits[b[i] >> 4];
		hex[2 * i + 1] = digits[b[i] & 15];
	}
	hex[2 * n] = '\0';
}

static void hex_of(const unsigned char md[32], char hex[65])
{
	hex_n(md, 32, hex);
}

static int64_t jint(const json_t *o, const char *k)
{
	return (int64_t)json_integer_value(json_object_get(o, k));
}

static bool is_hex_digit(char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
}

static bool is_chunk_name(const char *s)
{
	for (int i = 0; i < 64; i++)
		if (!is_hex_digit(s[i]))
			return false;
	return s[64] == '\0';
}

/* n bytes from 2n hex digits (checked by the caller) */
static void bytes_of_hex(const char *hex, unsigned char *out, size_t n)
{
	for (size_t k = 0; k < n; k++)
		out[k] = (unsigned char)strtoul((char[3]){ hex[2 * k], hex[2 * k + 1], 0 }, NULL,
						16);
}

static bool is_xx_name(const char *s)
{
	for (size_t i = 0; i < 2 * sizeof(XXH128_canonical_t); i++)
		if (!is_hex_digit(s[i]))
			return false;
	return s[2 * sizeof(XXH128_canonical_t)] == '\0';
}

/* "YYYYMMDD-HHMMSS-xxxx" */
static bool is_backup_id(const char *s)
{
	static const char pat[] = "dddddddd-dddddd-hhhh";
	for (size_t i = 0; i < sizeof(pat) - 1; i++) {
		char c = s[i];
		if (pat[i] == 'd'   ? !(c >= '0' && c <= '9')
		    : pat[i] == 'h' ? !is_hex_digit(c)
				    : c != pat[i])
			return false;
	}
	return s[sizeof(pat) - 1] == '\0';
}

static void sha256_raw(const void *data, size_t len, unsigned char md[32])
{
	unsigned int n = 0;
	if (EVP_Digest(data, len, md, &n, EVP_sha256(), NULL) != 1 || n != 32)
		abort();
}

static char *chunk_path(const struct bstore *s, const char *hex)
{
	return xasprintf("%s/chunks/%.2s/%s", s->dir, hex, hex);
}

static char *manifest_path(const struct bstore *s, const char *id)
{
	return xasprintf("%s/manifests/%s.json", s->dir, id);
}

/* A fresh file name in this handle's tmp directory. */
static char *tmp_name(struct bstore *s, const char *what)
{
	pthread_mutex_lock(&s->mu);
	unsigned long n = ++s->seq;
	pthread_mutex_unlock(&s->mu);
	return xasprintf("%s/%s-%lu", s->tmp, what, n);
}

/* An error for a failed write into the store (ENOSPC: the store is full). */
static enum miren_err store_write_error(const struct bstore *s, int e, const char *what,
					struct miren_error *err)
{
	if (e == ENOSPC || e == EDQUOT) {
		miren_error_set(err, MIREN_EIO, "the backup store '%s' is full", s->dir);
		miren_error_hint(err, "free space there (remove old backups), or move the store "
				      "to a larger volume");
		return MIREN_EIO;
	}
	return miren_error_set(err, MIREN_EIO, "cannot write %s in the backup store '%s': %s", what,
			       s->dir, io_strerror(e));
}

/* Writes data to a new file path and fsyncs it; 0 or -1 (errno set; the
   file removed). */
static int write_synced(const char *path, const void *data, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0)
		return -1;
	if (io_write_all(fd, data, len) != 0 || fsync(fd) != 0) {
		int e = errno;
		close(fd);
		unlink(path);
		errno = e;
		return -1;
	}
	if (close(fd) != 0) {
		int e = errno;
		unlink(path);
		errno = e;
		return -1;
	}
	return 0;
}

static int fsync_path(const char *path)
{
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	int rc = fsync(fd);
	int e = errno;
	close(fd);
	errno = e;
	return rc;
}

/* The store-wide lock (see the top): a new open file description of
   "lock", flocked; *fd gets it (close to unlock). */
static enum miren_err store_lock(const struct bstore *s, bool exclusive, int *fd,
				 struct miren_error *err)
{
	enum miren_err rc = 0;
	char *p = xasprintf("%s/lock", s->dir);
	*fd = open(p, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (*fd < 0) {
		rc = miren_error_set(err, MIREN_EIO, "cannot open %s: %s", p, io_strerror(errno));
		free(p);
		return rc;
	}
	int r;
	do
		r = flock(*fd, exclusive ? LOCK_EX : LOCK_SH);
	while (r != 0 && errno == EINTR);
	if (r != 0) {
		rc = miren_error_set(err, MIREN_EIO, "cannot lock %s: %s", p, io_strerror(errno));
		close(*fd);
		*fd = -1;
	}
	free(p);
	return rc;
}

/* ------------------------------------------------------------ open/close */

/* Removes the entries of tmp/ (open as tfd, flocked) that no live handle
   owns. */
static void tmp_sweep(const char *tmp, int tfd)
{
	int dfd = dup(tfd);
	DIR *d = dfd >= 0 ? fdopendir(dfd) : NULL;
	if (!d) {
		if (dfd >= 0)
			close(dfd);
		return;
	}
	rewinddir(d);
	struct dirent *de;
	while ((de = readdir(d))) {
		const char *n = de->d_name;
		if (!strcmp(n, ".") || !strcmp(n, ".."))
			continue;
		size_t len = strlen(n);
		char *path = xasprintf("%s/%s", tmp, n);
		if (len > 5 && !strcmp(n + len - 5, ".lock")) {
			int fd = open(path, O_RDWR | O_CLOEXEC);
			if (fd >= 0 && flock(fd, LOCK_EX | LOCK_NB) == 0) {
				char *owned = xstrndup(path, strlen(path) - 5);
				fs_remove_tree(owned);
				unlink(path);
				free(owned);
			}
			if (fd >= 0)
				close(fd);
		} else {
			char *lck = xasprintf("%s.lock", path);
			if (!fs_exists(lck))
				fs_remove_tree(path);
			free(lck);
		}
		free(path);
	}
	closedir(d);
}

enum miren_err bstore_open(const char *dir, struct bstore **out, struct miren_error *err)
{
	*out = NULL;
	static const char *const subs[] = { "chunks", "manifests", "tmp" };
	for (size_t i = 0; i < 3; i++) {
		char *p = xasprintf("%s/%s", dir, subs[i]);
		enum miren_err rc = fs_mkdir_p(p, 0700);
		free(p);
		if (rc)
			return miren_error_set(err, MIREN_EIO,
					       "cannot create the backup store '%s': %s", dir,
					       io_strerror(errno));
	}
	pthread_once(&gear_once, gear_init);
	struct bstore *s = xcalloc(1, sizeof(*s));
	s->dir = xstrdup(dir);
	s->tmplck_fd = -1;
	pthread_mutex_init(&s->mu, NULL);
	char *tmp = xasprintf("%s/tmp", dir);
	int tfd = open(tmp, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (tfd < 0 || flock(tfd, LOCK_EX) != 0) {
		miren_error_set(err, MIREN_EIO, "cannot open the backup store's %s: %s", tmp,
				io_strerror(errno));
		goto fail;
	}
	tmp_sweep(tmp, tfd);
	uint32_t r = 0;
	if (getrandom(&r, sizeof(r), 0) != sizeof(r))
		r = (uint32_t)io_mono_ms() ^ (uint32_t)getpid() << 16;
	s->tmp = xasprintf("%s/%ld-%08x", tmp, (long)getpid(), r);
	s->tmplck = xasprintf("%s.lock", s->tmp);
	s->tmplck_fd = open(s->tmplck, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (s->tmplck_fd < 0 || flock(s->tmplck_fd, LOCK_EX) != 0 || mkdir(s->tmp, 0700) != 0) {
		miren_error_set(err, MIREN_EIO, "cannot create %s: %s", s->tmp, io_strerror(errno));
		goto fail;
	}
	close(tfd);
	free(tmp);
	*out = s;
	return 0;
fail:
	if (tfd >= 0)
		close(tfd);
	free(tmp);
	bstore_close(s);
	return err ? err->code : MIREN_EIO;
}

void bstore_close(struct bstore *s)
{
	if (!s)
		return;
	if (s->tmplck_fd >= 0) {
		fs_remove_tree(s->tmp);
		unlink(s->tmplck);
		close(s->tmplck_fd);
	}
	pthread_mutex_destroy(&s->mu);
	free(s->tmp);
	free(s->tmplck);
	free(s->dir);
	free(s);
}

const char *bstore_dir(const struct bstore *s)
{
	return s->dir;
}

static enum miren_err load_manifest(struct bstore *s, const char *id, json_t **out,
				    struct miren_error *err);

/* ---------------------------------------------------------------- writing */

/* The chunk list lives in blocks that never move, so a worker can fill
   its entry while the list grows. */
#define BLOCK_N 4096

struct bchunk {
	unsigned char md[32];
	uint32_t len;
	bool has_xx;
	XXH128_canonical_t xx; /* with the writer's xxh3_seed */
};

/* A chunk on its way to the store: the workers name (SHA-256, or the
   hint's name when the quick check says it is the hint's bytes), compress
   and write it unless it is there already, and fill *slot. */
struct cjob {
	unsigned char *data;
	size_t len;
	struct bchunk *slot;
	bool has_hint;
	struct bchunk hint; /* the base's chunk at the same place of the file */
};

#define QUEUE_N 8
/* Chunk buffers kept for reuse: one per queued job, per worker, and the
   one being filled.  A fresh CHUNK_MAX buffer is fresh pages the kernel
   must fault in and zero, which cost more than the quick check saves. */
#define POOL_N (QUEUE_N + 8 + 1)

struct bstore_writer {
	struct bstore *s;
	int lock_fd;
	unsigned char *buf; /* bytes not yet cut into a chunk (CHUNK_MAX) */
	size_t len, scan;   /* scan: where the gear hash h stands */
	uint64_t h;
	struct bchunk **blocks;
	size_t n, nblocks;
	uint64_t size; /* stream bytes so far, buf included */

	/* The workers; everything below up to `err` is under mu. */
	pthread_mutex_t mu;
	pthread_cond_t cv;
	pthread_t *thr;
	int nthr;
	struct cjob q[QUEUE_N];
	size_t q_head, q_len, busy;
	bool quit;
	uint64_t stored;
	bool dirty[256];             /* chunks/<xx> directories to fsync at commit */
	unsigned char *pool[POOL_N]; /* spare CHUNK_MAX buffers */
	size_t npool;
	struct miren_error err; /* sticky; err.code also read unlocked by the caller's thread */

	/* File reuse (bstore_snap_writer). */
	json_t *base;                 /* the base backup's manifest, or NULL */
	uint64_t xxh3_seed;           /* see "Quick check" at the top */
	json_t *hints;                /* the base's "chunks" while a file it has is read, or NULL */
	size_t hint_from, hint_count; /* that file's chunks there */
	json_t *files;                /* this backup's "files" */
	bool tracked;                 /* the file being written has its own chunks */
	bool reused;                  /* ... taken from the base */
	bool fixed;                   /* inside a tracked file's data: cut every FILE_CHUNK bytes */
	size_t file_first;
	int64_t file_t0; /* CLOCK_REALTIME ns before its fstat */
	json_t *digests; /* [[from, to, pos], ...]: see snap_writer_set_reuse */
	struct snap_reuse hooks;
	bool committed;
};

/* A CHUNK_MAX buffer, from the pool when it has one (to buf_put). */
static unsigned char *buf_get(struct bstore_writer *w)
{
	pthread_mutex_lock(&w->mu);
	unsigned char *b = w->npool ? w->pool[--w->npool] : NULL;
	pthread_mutex_unlock(&w->mu);
	return b ? b : xmalloc(CHUNK_MAX);
}

/* Gives a buffer of buf_get back (NULL: nothing). */
static void buf_put(struct bstore_writer *w, unsigned char *b)
{
	pthread_mutex_lock(&w->mu);
	if (b && w->npool < POOL_N) {
		w->pool[w->npool++] = b;
		b = NULL;
	}
	pthread_mutex_unlock(&w->mu);
	free(b);
}

static struct bchunk *slot_at(struct bstore_writer *w, size_t i)
{
	return &w->blocks[i / BLOCK_N][i % BLOCK_N];
}

static struct bchunk *slot_new(struct bstore_writer *w)
{
	if (w->n == w->nblocks * BLOCK_N) {
		w->blocks = xrealloc(w->blocks, (w->nblocks + 1) * sizeof(struct bchunk *));
		w->blocks[w->nblocks++] = xcalloc(BLOCK_N, sizeof(struct bchunk));
	}
	return slot_at(w, w->n++);
}

static enum miren_err failed(struct bstore_writer *w)
{
	pthread_mutex_lock(&w->mu);
	enum miren_err rc = w->err.code;
	pthread_mutex_unlock(&w->mu);
	return rc;
}

static void set_error(struct bstore_writer *w, const struct miren_error *e)
{
	pthread_mutex_lock(&w->mu);
	if (!w->err.code)
		w->err = *e;
	pthread_cond_broadcast(&w->cv);
	pthread_mutex_unlock(&w->mu);
}

/* A worker's part of one chunk; 0 or a miren_err in *e. */
static enum miren_err store_chunk(struct bstore_writer *w, ZSTD_CCtx *cctx, void *zbuf, size_t zcap,
				  struct cjob *j, struct miren_error *e)
{
	struct bstore *s = w->s;
	struct bchunk *b = j->slot;
	XXH128_canonicalFromHash(&b->xx, XXH3_128bits_withSeed(j->data, j->len, w->xxh3_seed));
	b->has_xx = true;
	b->len = (uint32_t)j->len;
	bool base = j->has_hint && j->hint.len == b->len &&
		    memcmp(&j->hint.xx, &b->xx, sizeof(b->xx)) == 0;
	if (base)
		memcpy(b->md, j->hint.md, sizeof(b->md)); /* (its file: checked below) */
	else
		sha256_raw(j->data, j->len, b->md);
	char hex[65];
	hex_of(j->slot->md, hex);
	unsigned sub = (unsigned)j->slot->md[0];
	char *path = chunk_path(s, hex);
	enum miren_err rc = 0;
	struct stat st;
	if (stat(path, &st) != 0) {
		char *dir = xasprintf("%s/chunks/%.2s", s->dir, hex);
		if (mkdir(dir, 0700) != 0 && errno != EEXIST)
			rc = store_write_error(s, errno, "a chunk directory", e);
		free(dir);
		if (rc)
			goto out;
		size_t z = ZSTD_compress2(cctx, zbuf, zcap, j->data, j->len);
		if (ZSTD_isError(z)) {
			rc = miren_error_set(e, MIREN_EINTERNAL, "zstd compression failed: %s",
					     ZSTD_getErrorName(z));
			goto out;
		}
		char *tmp = tmp_name(s, "chunk");
		if (write_synced(tmp, zbuf, z) != 0) {
			rc = store_write_error(s, errno, "a chunk", e);
		} else if (rename(tmp, path) != 0) {
			rc = store_write_error(s, errno, "a chunk", e);
			unlink(tmp);
		} else {
			pthread_mutex_lock(&w->mu);
			w->stored += z;
			pthread_mutex_unlock(&w->mu);
			fault_point("bstore:chunk-written");
		}
		free(tmp);
		if (rc)
			goto out;
		base = false;
	}
	/* (A base's chunk was durable when the base was committed.) */
	pthread_mutex_lock(&w->mu);
	w->dirty[sub] |= !base;
	pthread_mutex_unlock(&w->mu);
out:
	free(path);
	return rc;
}

static void *worker_main(void *arg)
{
	struct bstore_writer *w = arg;
	ZSTD_CCtx *cctx = ZSTD_createCCtx();
	if (!cctx ||
	    ZSTD_isError(ZSTD_CCtx_setParameter(cctx, ZSTD_c_compressionLevel, ZSTD_LEVEL)) ||
	    ZSTD_isError(ZSTD_CCtx_setParameter(cctx, ZSTD_c_checksumFlag, 1)))
		abort();
	size_t zcap = ZSTD_compressBound(CHUNK_MAX);
	void *zbuf = xmalloc(zcap);
	pthread_mutex_lock(&w->mu);
	for (;;) {
		while (!w->q_len && !w->quit)
			pthread_cond_wait(&w->cv, &w->mu);
		if (!w->q_len)
			break;
		struct cjob j = w->q[w->q_head];
		w->q_head = (w->q_head + 1) % QUEUE_N;
		w->q_len--;
		w->busy++;
		bool stopped = w->err.code != 0;
		pthread_cond_broadcast(&w->cv);
		pthread_mutex_unlock(&w->mu);
		struct miren_error e = { 0 };
		if (!stopped && store_chunk(w, cctx, zbuf, zcap, &j, &e))
			set_error(w, &e);
		buf_put(w, j.data);
		pthread_mutex_lock(&w->mu);
		w->busy--;
		pthread_cond_broadcast(&w->cv);
	}
	pthread_mutex_unlock(&w->mu);
	free(zbuf);
	ZSTD_freeCCtx(cctx);
	return NULL;
}

/* A loaded manifest's chunk entry ["<sha256 hex>", len] or, since the
   quick check, ["<sha256 hex>", len, "<xxh3-128 hex>"] into *out (NULL
   e: nothing).  Returns whether it had the XXH3-128. */
static bool base_chunk(const json_t *e, struct bchunk *out)
{
	const char *h = json_string_value(json_array_get(e, 0));
	const char *x = json_string_value(json_array_get(e, 2));
	if (!h)
		return false;
	bytes_of_hex(h, out->md, sizeof(out->md));
	out->len = (uint32_t)json_integer_value(json_array_get(e, 1));
	out->has_xx = x != NULL;
	if (x)
		bytes_of_hex(x, out->xx.digest, sizeof(out->xx.digest));
	return out->has_xx;
}

/* Hands the first len bytes of buf to the workers as the next chunk. */
static enum miren_err put_chunk(struct bstore_writer *w, size_t len)
{
	struct cjob j = { .data = w->buf, .len = len };
	if (w->fixed && w->hints && w->n - w->file_first < w->hint_count)
		j.has_hint = base_chunk(json_array_get(w->hints,
						       w->hint_from + w->n - w->file_first),
					&j.hint);
	j.slot = slot_new(w);
	w->buf = buf_get(w);
	memcpy(w->buf, j.data + len, w->len - len);
	w->len -= len;
	w->scan = 0;
	w->h = 0;
	if (!w->nthr) { /* no threads: here */
		struct miren_error e = { 0 };
		ZSTD_CCtx *c = ZSTD_createCCtx();
		size_t zcap = ZSTD_compressBound(CHUNK_MAX);
		void *zb = xmalloc(zcap);
		if (!c || ZSTD_isError(ZSTD_CCtx_setParameter(c, ZSTD_c_checksumFlag, 1)))
			abort();
		if (store_chunk(w, c, zb, zcap, &j, &e))
			set_error(w, &e);
		ZSTD_freeCCtx(c);
		free(zb);
		buf_put(w, j.data);
		return failed(w);
	}
	pthread_mutex_lock(&w->mu);
	while (w->q_len == QUEUE_N && !w->err.code)
		pthread_cond_wait(&w->cv, &w->mu);
	enum miren_err rc = w->err.code;
	if (!rc) {
		w->q[(w->q_head + w->q_len) % QUEUE_N] = j;
		w->q_len++;
		pthread_cond_broadcast(&w->cv);
	}
	pthread_mutex_unlock(&w->mu);
	if (rc)
		buf_put(w, j.data);
	return rc;
}

/* Waits until every queued chunk is stored (or failed). */
static void drain_jobs(struct bstore_writer *w)
{
	pthread_mutex_lock(&w->mu);
	while (w->q_len || w->busy)
		pthread_cond_wait(&w->cv, &w->mu);
	pthread_mutex_unlock(&w->mu);
}

static void stop_workers(struct bstore_writer *w)
{
	pthread_mutex_lock(&w->mu);
	w->quit = true;
	pthread_cond_broadcast(&w->cv);
	pthread_mutex_unlock(&w->mu);
	for (int i = 0; i < w->nthr; i++)
		pthread_join(w->thr[i], NULL);
	w->nthr = 0;
	/* jobs never taken (after an error) */
	for (; w->q_len; w->q_len--, w->q_head = (w->q_head + 1) % QUEUE_N)
		free(w->q[w->q_head].data);
}

enum miren_err bstore_write_begin(struct bstore *s, struct bstore_writer **out,
				  struct miren_error *err)
{
	*out = NULL;
	int fd;
	enum miren_err rc = store_lock(s, false, &fd, err);
	if (rc)
		return rc;
	struct bstore_writer *w = xcalloc(1, sizeof(*w));
	w->s = s;
	w->lock_fd = fd;
	w->buf = xmalloc(CHUNK_MAX);
	w->files = json_object();
	w->digests = json_array();
	if (getrandom(&w->xxh3_seed, sizeof(w->xxh3_seed), 0) != sizeof(w->xxh3_seed))
		abort(); /* (8 bytes from a blocking getrandom: only a broken kernel) */
	pthread_mutex_init(&w->mu, NULL);
	pthread_cond_init(&w->cv, NULL);
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	int n = cpus < 1 ? 1 : cpus > 8 ? 8 : (int)cpus;
	w->thr = xcalloc((size_t)n, sizeof(*w->thr));
	for (int i = 0; i < n; i++) {
		if (pthread_create(&w->thr[i], NULL, worker_main, w) != 0)
			break; /* fewer threads (none: put_chunk works alone) */
		w->nthr++;
	}
	*out = w;
	return 0;
}

/* The next cut in buf (0: none yet); keeps the scan state between calls. */
static size_t find_cut(struct bstore_writer *w)
{
	if (w->fixed)
		return w->len >= FILE_CHUNK ? FILE_CHUNK : 0;
	size_t i = w->scan;
	uint64_t h = w->h;
	if (i < CHUNK_MIN - 64)
		i = CHUNK_MIN - 64;
	const uint64_t mask = ~0ULL << (64 - CDC_BITS);
	const unsigned char *b = w->buf;
	for (; i < w->len; i++) {
		h = (h << 1) + gear[b[i]];
		if (!(h & mask) && i + 1 >= CHUNK_MIN)
			return i + 1;
	}
	if (w->len == CHUNK_MAX)
		return CHUNK_MAX;
	w->scan = i;
	w->h = h;
	return 0;
}

/*
 * The quick check where the bytes lie: a whole tracked-file chunk at p
 * (FILE_CHUNK bytes, nothing pending before it) whose XXH3-128 equals
 * that of the base's chunk at the same place, and whose chunk is in the
 * store, takes that chunk's name here, neither copied nor queued (most of
 * a changed table's chunks).  Returns false, having done nothing, when it
 * cannot: the caller then copies the bytes as for any chunk.
 */
static bool quick_take(struct bstore_writer *w, const unsigned char *p)
{
	struct bchunk hint;
	size_t at = w->n - w->file_first;
	if (!w->hints || at >= w->hint_count ||
	    !base_chunk(json_array_get(w->hints, w->hint_from + at), &hint) ||
	    hint.len != FILE_CHUNK)
		return false;
	XXH128_canonical_t xx;
	XXH128_canonicalFromHash(&xx, XXH3_128bits_withSeed(p, FILE_CHUNK, w->xxh3_seed));
	if (memcmp(&xx, &hint.xx, sizeof(xx)) != 0)
		return false;
	char hex[65];
	hex_of(hint.md, hex);
	char *path = chunk_path(w->s, hex);
	struct stat st;
	bool there = stat(path, &st) == 0;
	free(path);
	if (!there)
		return false;
	*slot_new(w) = hint; /* (durable since the base was committed) */
	return true;
}

int bstore_sink(void *user, const void *data, size_t len)
{
	struct bstore_writer *w = user;
	enum miren_err rc = failed(w);
	if (rc)
		return rc;
	const unsigned char *p = data;
	w->size += len;
	while (len) {
		if (w->fixed && !w->len && len >= FILE_CHUNK && quick_take(w, p)) {
			p += FILE_CHUNK;
			len -= FILE_CHUNK;
			continue;
		}
		size_t take = CHUNK_MAX - w->len;
		if (take > len)
			take = len;
		memcpy(w->buf + w->len, p, take);
		w->len += take;
		p += take;
		len -= take;
		size_t cut;
		while ((cut = find_cut(w)))
			if ((rc = put_chunk(w, cut)))
				return rc;
	}
	return 0;
}

/* Cuts what is pending into a chunk (a file boundary). */
static enum miren_err cut_here(struct bstore_writer *w)
{
	if (!w->len)
		return 0;
	return put_chunk(w, w->len);
}

/* The base's record of name when st still identifies it and its chunks
   are all in the store; NULL otherwise. */
static json_t *reusable(struct bstore_writer *w, const char *name, const struct stat *st)
{
	json_t *f = json_object_get(json_object_get(w->base, "files"), name);
	json_t *chunks = json_object_get(w->base, "chunks");
	if (!json_is_object(f) || !json_is_integer(json_object_get(f, "ino")) ||
	    jint(f, "size") != (int64_t)st->st_size || jint(f, "mtime_ns") != ns_of(&st->st_mtim) ||
	    jint(f, "ctime_ns") != ns_of(&st->st_ctim) || jint(f, "ino") != (int64_t)st->st_ino)
		return NULL;
	int64_t first = jint(f, "first"), count = jint(f, "count");
	if (first < 0 || count < 1 || (size_t)(first + count) > json_array_size(chunks))
		return NULL;
	uint64_t sum = 0;
	for (int64_t i = first; i < first + count; i++) {
		json_t *c = json_array_get(chunks, (size_t)i);
		const char *ch = json_string_value(json_array_get(c, 0));
		sum += (uint64_t)json_integer_value(json_array_get(c, 1));
		char *p = chunk_path(w->s, ch);
		struct stat cs;
		int r = stat(p, &cs);
		free(p);
		if (r != 0)
			return NULL;
	}
	return sum == (uint64_t)st->st_size ? f : NULL;
}

static int hook_data_begin(void *u, const char *name, const struct stat *st, int64_t stat_ns)
{
	struct bstore_writer *w = u;
	w->tracked = w->reused = false;
	if (failed(w) || st->st_size < FILE_MIN)
		return SNAP_REUSE_READ;
	if (cut_here(w))
		return SNAP_REUSE_READ; /* the error shows at the next sink call */
	w->tracked = true;
	w->file_first = w->n;
	w->file_t0 = stat_ns;
	json_t *f = w->base ? reusable(w, name, st) : NULL;
	json_t *chunks = json_object_get(w->base, "chunks");
	if (!f) {
		/* read again; the base's chunks of it, if any, for the quick check */
		json_t *old = json_object_get(json_object_get(w->base, "files"), name);
		int64_t first = jint(old, "first"), count = jint(old, "count");
		if (first >= 0 && count > 0 && (size_t)(first + count) <= json_array_size(chunks)) {
			w->hints = chunks;
			w->hint_from = (size_t)first;
			w->hint_count = (size_t)count;
		}
		w->fixed = true;
		return SNAP_REUSE_DEFER; /* its digest: from the chunks, when read */
	}
	int64_t first = jint(f, "first"), count = jint(f, "count");
	/* (Its chunks were durable when the base was committed.) */
	for (int64_t i = first; i < first + count; i++)
		base_chunk(json_array_get(chunks, (size_t)i), slot_new(w));
	w->size += (uint64_t)st->st_size;
	json_t *nf = json_deep_copy(f);
	json_object_set_new(nf, "first", json_integer((json_int_t)w->file_first));
	json_object_set_new(w->files, name, nf);
	w->reused = true;
	return SNAP_REUSE_SKIP;
}

static void hook_data_end(void *u, const char *name, const struct stat *st, bool stable)
{
	struct bstore_writer *w = u;
	bool fixed = w->fixed;
	w->fixed = false;
	w->hints = NULL;
	if (!w->tracked || w->reused || failed(w))
		return;
	if (fixed && cut_here(w))
		return;
	/* Its chunks, for the next backup's quick check; its identity only
	   when that can be trusted: */
	json_t *rec = json_pack("{s:I, s:I}", "first", (json_int_t)w->file_first, "count",
				(json_int_t)(w->n - w->file_first));
	json_object_set_new(w->files, name, rec);
	/* A file changed shortly before its fstat may change again without
	   its times moving (their granularity: a clock tick, or a whole
	   second on a filesystem without sub-second times, taken to be one
	   whose times have no nanoseconds): its identity is not trusted next
	   time, and it is read again then.  A change after the fstat that
	   moved the times made it unstable (the writer's check). */
	int64_t margin = st->st_mtim.tv_nsec || st->st_ctim.tv_nsec ? racy_fine_ns : RACY_NS;
	if (!stable || ns_of(&st->st_ctim) > w->file_t0 - margin ||
	    ns_of(&st->st_mtim) > w->file_t0 - margin)
		return;
	json_object_update_new(rec,
			       json_pack("{s:I, s:I, s:I, s:I}", "size", (json_int_t)st->st_size,
					 "mtime_ns", (json_int_t)ns_of(&st->st_mtim), "ctime_ns",
					 (json_int_t)ns_of(&st->st_ctim), "ino",
					 (json_int_t)st->st_ino));
}

static void hook_digest_at(void *u, const char *name MIREN_UNUSED, uint64_t from, uint64_t to,
			   uint64_t pos)
{
	struct bstore_writer *w = u;
	json_array_append_new(w->digests, json_pack("[I,I,I]", (json_int_t)from, (json_int_t)to,
						    (json_int_t)pos));
}

enum miren_err bstore_write_base(struct bstore_writer *w, const json_t *lineage,
				 struct miren_error *err)
{
	json_decref(w->base);
	w->base = NULL;
	if (!lineage)
		return 0;
	json_t *l = bstore_list(w->s, lineage);
	size_t n = json_array_size(l);
	if (n) {
		/* (list left out damaged ones; this one may have gone since:
		   then no base, and every file is read) */
		const char *id = json_string_value(json_object_get(json_array_get(l, n - 1), "id"));
		struct miren_error e = { 0 };
		if (load_manifest(w->s, id, &w->base, &e))
			log_warn("backup store: %s; the backup reads every file", e.message);
		const char *seed = json_string_value(json_object_get(w->base, "xxh3_seed"));
		if (seed) /* (checked at load) */
			w->xxh3_seed = strtoull(seed, NULL, 16);
	}
	json_decref(l);
	(void)err;
	return 0;
}

const struct snap_reuse *bstore_reuse(struct bstore_writer *w)
{
	w->hooks = (struct snap_reuse){ .u = w,
					.data_begin = hook_data_begin,
					.data_end = hook_data_end,
					.digest_at = hook_digest_at };
	return &w->hooks;
}

struct snap_writer *bstore_snap_writer(struct bstore_writer *w, const json_t *header,
				       struct miren_error *err)
{
	struct snap_writer *sw = snap_writer_new_raw(bstore_sink, w, header, err);
	if (!sw)
		return NULL;
	if (snap_writer_set_reuse(sw, bstore_reuse(w), err)) {
		snap_writer_free(sw);
		return NULL;
	}
	return sw;
}

/* The digest of a chunk list, "chunks_sha256": SHA-256 of the text
   "<hex> <len>\n" of each chunk in order. */
static void chunks_digest(const json_t *chunks, char hex[65])
{
	EVP_MD_CTX *c = EVP_MD_CTX_new();
	if (!c || EVP_DigestInit_ex(c, EVP_sha256(), NULL) != 1)
		abort();
	size_t i;
	json_t *v;
	json_array_foreach (chunks, i, v) {
		char line[96];
		int n = snprintf(line, sizeof(line), "%s %lld\n",
				 json_string_value(json_array_get(v, 0)),
				 (long long)json_integer_value(json_array_get(v, 1)));
		if (EVP_DigestUpdate(c, line, (size_t)n) != 1)
			abort();
	}
	unsigned char md[32];
	unsigned int n = 0;
	if (EVP_DigestFinal_ex(c, md, &n) != 1)
		abort();
	EVP_MD_CTX_free(c);
	hex_of(md, hex);
}

static void new_id(char id[32])
{
	time_t t = time(NULL);
	struct tm tm;
	gmtime_r(&t, &tm);
	uint16_t r = 0;
	if (getrandom(&r, sizeof(r), 0) != sizeof(r))
		r = (uint16_t)io_mono_ms();
	size_t n = strftime(id, 32, "%Y%m%d-%H%M%S", &tm);
	snprintf(id + n, 32 - n, "-%04x", r);
}

bool bstore_write_failed(struct bstore_writer *w, struct miren_error *out)
{
	pthread_mutex_lock(&w->mu);
	bool has_failed = w->err.code != 0;
	if (has_failed && out)
		*out = w->err;
	pthread_mutex_unlock(&w->mu);
	return has_failed;
}

enum miren_err bstore_write_commit(struct bstore_writer *w, const json_t *meta, char **id,
				   struct miren_error *err)
{
	struct bstore *s = w->s;
	*id = NULL;
	if (w->committed)
		return miren_error_set(err, MIREN_EINTERNAL, "the backup was already committed");
	if (meta && !json_is_object(meta))
		return miren_error_set(err, MIREN_EINTERNAL, "a backup's meta must be an object");
	if (!failed(w))
		cut_here(w);
	drain_jobs(w);
	stop_workers(w);
	if (w->err.code) {
		if (err)
			*err = w->err;
		return w->err.code;
	}
	/* 2: every chunk named durable (see the top). */
	for (unsigned i = 0; i < 256; i++) {
		if (!w->dirty[i])
			continue;
		char *d = xasprintf("%s/chunks/%02x", s->dir, i);
		int r = fsync_path(d);
		free(d);
		if (r != 0)
			return store_write_error(s, errno, "a chunk directory", err);
	}
	char *cd = xasprintf("%s/chunks", s->dir);
	int r = fsync_path(cd);
	free(cd);
	if (r != 0)
		return store_write_error(s, errno, "the chunk directory", err);
	fault_point("bstore:chunks-synced");

	/* 3: the manifest. */
	json_t *chunks = json_array();
	for (size_t i = 0; i < w->n; i++) {
		char hex[65];
		struct bchunk *c = slot_at(w, i);
		hex_of(c->md, hex);
		json_t *e = json_pack("[s,I]", hex, (json_int_t)c->len);
		if (c->has_xx) {
			char xx[2 * sizeof(c->xx.digest) + 1];
			hex_n(c->xx.digest, sizeof(c->xx.digest), xx);
			json_array_append_new(e, json_string(xx));
		}
		json_array_append_new(chunks, e);
	}
	char digest[65];
	chunks_digest(chunks, digest);
	struct timespec now;
	clock_gettime(CLOCK_REALTIME, &now);
	enum miren_err rc = 0;
	char idb[32];
	char *tmp = tmp_name(s, "manifest");
	for (int attempt = 0;; attempt++) {
		new_id(idb);
		json_t *m = json_pack("{s:s, s:i, s:s, s:I, s:I, s:I, s:I, s:s, s:o, s:O}",
				      "format", MANIFEST_FORMAT, "format_version", MANIFEST_VERSION,
				      "id", idb, "created_at", (json_int_t)now.tv_sec, "created_ms",
				      (json_int_t)now.tv_sec * 1000 + now.tv_nsec / 1000000, "size",
				      (json_int_t)w->size, "stored_bytes", (json_int_t)w->stored,
				      "chunks_sha256", digest, "meta",
				      meta ? json_deep_copy(meta) : json_object(), "chunks",
				      chunks);
		if (!m)
			abort();
		if (json_object_size(w->files))
			json_object_set(m, "files", w->files);
		char seed[17];
		snprintf(seed, sizeof(seed), "%016llx", (unsigned long long)w->xxh3_seed);
		json_object_set_new(m, "xxh3_seed", json_string(seed));
		if (json_array_size(w->digests))
			json_object_set(m, "digests", w->digests);
		char *text = json_dumps(m, JSON_COMPACT);
		json_decref(m);
		if (!text) {
			rc = miren_error_set(err, MIREN_EINVAL,
					     "the backup's meta cannot be encoded as JSON");
			break;
		}
		size_t tl = strlen(text);
		int wr = write_synced(tmp, text, tl);
		free(text);
		if (wr != 0) {
			rc = store_write_error(s, errno, "a manifest", err);
			break;
		}
		fault_point("bstore:manifest-written");
		char *path = manifest_path(s, idb);
		int rr = renameat2(AT_FDCWD, tmp, AT_FDCWD, path, RENAME_NOREPLACE);
		int e = errno;
		free(path);
		if (rr == 0)
			break;
		unlink(tmp);
		if (e != EEXIST || attempt > 100) {
			rc = store_write_error(s, e, "a manifest", err);
			break;
		}
	}
	free(tmp);
	json_decref(chunks);
	if (rc)
		return rc;
	fault_point("bstore:committed");
	char *md = xasprintf("%s/manifests", s->dir);
	r = fsync_path(md);
	free(md);
	if (r != 0) /* the manifest is in place; only its durability is in doubt */
		log_warn("backup store: cannot fsync %s/manifests: %s", s->dir, io_strerror(errno));
	w->committed = true;
	close(w->lock_fd);
	w->lock_fd = -1;
	*id = xstrdup(idb);
	return 0;
}

void bstore_write_free(struct bstore_writer *w)
{
	if (!w)
		return;
	/* An uncommitted writer's chunks are named by nothing: gc's. */
	stop_workers(w);
	if (w->lock_fd >= 0)
		close(w->lock_fd);
	for (size_t i = 0; i < w->nblocks; i++)
		free(w->blocks[i]);
	free(w->blocks);
	free(w->thr);
	while (w->npool)
		free(w->pool[--w->npool]);
	json_decref(w->base);
	json_decref(w->files);
	json_decref(w->digests);
	pthread_cond_destroy(&w->cv);
	pthread_mutex_destroy(&w->mu);
	free(w->buf);
	free(w);
}

/* -------------------------------------------------------------- manifests */

/* Loads and checks manifest id; MIREN_ENOTFOUND "no backup 'ID'" or
   MIREN_EINVAL "backup 'ID' is damaged (...)". */
static enum miren_err load_manifest(struct bstore *s, const char *id, json_t **out,
				    struct miren_error *err)
{
	*out = NULL;
	if (!is_backup_id(id))
		return miren_error_set(err, MIREN_ENOTFOUND, "no backup '%.64s'", id);
	char *path = manifest_path(s, id);
	struct strbuf sb = STRBUF_INIT;
	sb.cap = MANIFEST_MAX;
	enum miren_err rc = strbuf_read_file(&sb, path);
	free(path);
	if (rc == MIREN_ENOTFOUND) {
		strbuf_release(&sb);
		return miren_error_set(err, MIREN_ENOTFOUND, "no backup '%s'", id);
	}
	if (rc) {
		strbuf_release(&sb);
		return miren_error_set(err, MIREN_EIO, "cannot read backup '%s''s manifest: %s", id,
				       io_strerror(errno));
	}
	json_error_t je;
	json_t *m = json_loadb(sb.buf, sb.len, 0, &je);
	strbuf_release(&sb);
	const char *why = NULL;
	json_t *chunks = json_object_get(m, "chunks");
	const char *f = json_string_value(json_object_get(m, "format"));
	json_t *ver = json_object_get(m, "format_version");
	const char *digest = json_string_value(json_object_get(m, "chunks_sha256"));
	json_t *size = json_object_get(m, "size");
	if (!json_is_object(m))
		why = "its manifest is not valid JSON (truncated?)";
	else if (!f || strcmp(f, MANIFEST_FORMAT) != 0 || !json_is_integer(ver))
		why = "its manifest is not a backup manifest";
	else if (json_integer_value(ver) > MANIFEST_VERSION)
		why = "its manifest is of a newer format; upgrade miren";
	else if (!json_is_string(json_object_get(m, "id")) ||
		 strcmp(json_string_value(json_object_get(m, "id")), id) != 0)
		why = "its manifest names another backup";
	else if (!json_is_array(chunks) || !digest || !json_is_integer(size) ||
		 !json_is_integer(json_object_get(m, "created_at")) ||
		 !json_is_integer(json_object_get(m, "stored_bytes")) ||
		 !json_is_object(json_object_get(m, "meta")))
		why = "its manifest lacks fields";
	if (!why) {
		uint64_t sum = 0;
		size_t i;
		json_t *v;
		json_array_foreach (chunks, i, v) {
			const char *h = json_string_value(json_array_get(v, 0));
			json_t *l = json_array_get(v, 1);
			const char *x = json_string_value(json_array_get(v, 2));
			size_t vn = json_array_size(v);
			if (!json_is_array(v) || (vn != 2 && vn != 3) ||
			    (vn == 3 && !(x && is_xx_name(x))) || !h || !is_chunk_name(h) ||
			    !json_is_integer(l) || json_integer_value(l) <= 0 ||
			    json_integer_value(l) > CHUNK_LEN_LIMIT) {
				why = "its manifest has a bad chunk entry";
				break;
			}
			sum += (uint64_t)json_integer_value(l);
		}
		if (!why && sum != (uint64_t)json_integer_value(size))
			why = "its manifest's chunks do not add up to its size";
		json_t *ds = json_object_get(m, "digests");
		json_t *files = json_object_get(m, "files");
		if (!why && ds && !json_is_array(ds))
			why = "its manifest's digest list is bad";
		json_array_foreach (ds, i, v) {
			json_int_t a = json_integer_value(json_array_get(v, 0));
			json_int_t b = json_integer_value(json_array_get(v, 1));
			json_int_t at = json_integer_value(json_array_get(v, 2));
			if (!json_is_array(v) || json_array_size(v) != 3 ||
			    !json_is_integer(json_array_get(v, 2)) || a < 0 || a > b || b > at ||
			    (uint64_t)at + 64 > sum) {
				why = "its manifest's digest list is bad";
				break;
			}
		}
		if (!why && files && !json_is_object(files))
			why = "its manifest's file list is bad";
		const char *seed = json_string_value(json_object_get(m, "xxh3_seed"));
		if (!why && json_object_get(m, "xxh3_seed") &&
		    !(seed && strlen(seed) == 16 && strspn(seed, "0123456789abcdef") == 16))
			why = "its manifest's xxh3_seed is bad";
	}
	if (!why) {
		char hex[65];
		chunks_digest(chunks, hex);
		if (strcmp(hex, digest) != 0)
			why = "its manifest's chunk list does not match its checksum";
	}
	if (why) {
		json_decref(m);
		return miren_error_set(err, MIREN_EINVAL, "backup '%s' is damaged (%s)", id, why);
	}
	*out = m;
	return 0;
}

enum miren_err bstore_get(struct bstore *s, const char *id, json_t **manifest,
			  struct miren_error *err)
{
	return load_manifest(s, id, manifest, err);
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The ids of manifests/, sorted (which is by time to the second); with
   all_files, the names of every file there.  NULL on error. */
static json_t *manifest_ids(struct bstore *s, bool all_files, struct miren_error *err)
{
	char *md = xasprintf("%s/manifests", s->dir);
	DIR *d = opendir(md);
	if (!d) {
		miren_error_set(err, MIREN_EIO, "cannot read %s: %s", md, io_strerror(errno));
		free(md);
		return NULL;
	}
	free(md);
	json_t *ids = json_array();
	struct dirent *de;
	errno = 0;
	while ((de = readdir(d))) {
		const char *n = de->d_name;
		size_t len = strlen(n);
		if (n[0] == '.')
			continue;
		if (all_files) {
			json_array_append_new(ids, json_string(n));
		} else if (len > 5 && !strcmp(n + len - 5, ".json")) {
			char *id = xstrndup(n, len - 5);
			if (is_backup_id(id))
				json_array_append_new(ids, json_string(id));
			free(id);
		}
		errno = 0;
	}
	int e = errno;
	closedir(d);
	if (e) {
		json_decref(ids);
		miren_error_set(err, MIREN_EIO, "cannot read %s/manifests: %s", s->dir,
				io_strerror(e));
		return NULL;
	}
	size_t n = json_array_size(ids);
	const char **v = xcalloc(n ? n : 1, sizeof(*v));
	for (size_t i = 0; i < n; i++)
		v[i] = json_string_value(json_array_get(ids, i));
	qsort(v, n, sizeof(*v), cmp_str);
	json_t *sorted = json_array();
	for (size_t i = 0; i < n; i++)
		json_array_append_new(sorted, json_string(v[i]));
	free(v);
	json_decref(ids);
	return sorted;
}

static bool meta_matches(const json_t *meta, const json_t *filter)
{
	if (!filter)
		return true;
	const char *k;
	json_t *v;
	json_object_foreach ((json_t *)filter, k, v) {
		if (!json_equal(json_object_get(meta, k), v))
			return false;
	}
	return true;
}

static int cmp_created(const void *a, const void *b)
{
	const json_t *x = *(json_t *const *)a, *y = *(json_t *const *)b;
	json_int_t cx = json_integer_value(json_object_get(x, "created_ms"));
	json_int_t cy = json_integer_value(json_object_get(y, "created_ms"));
	if (cx != cy)
		return cx < cy ? -1 : 1;
	return strcmp(json_string_value(json_object_get(x, "id")),
		      json_string_value(json_object_get(y, "id")));
}

json_t *bstore_list(struct bstore *s, const json_t *filter)
{
	struct miren_error e = { 0 };
	json_t *ids = manifest_ids(s, false, &e);
	json_t *out = json_array();
	if (!ids) {
		log_warn("backup store: %s", e.message);
		return out;
	}
	size_t n = json_array_size(ids), k = 0;
	json_t **v = xcalloc(n ? n : 1, sizeof(json_t *));
	for (size_t i = 0; i < n; i++) {
		json_t *m;
		const char *id = json_string_value(json_array_get(ids, i));
		if (load_manifest(s, id, &m, &e)) {
			if (e.code != MIREN_ENOTFOUND) /* removed meanwhile: not a problem */
				log_warn("backup store: %s", e.message);
			continue;
		}
		json_t *meta = json_object_get(m, "meta");
		if (meta_matches(meta, filter)) {
			json_t *ms = json_object_get(m, "created_ms");
			v[k++] = json_pack("{s:O, s:O, s:O, s:O, s:O, s:I}", "id",
					   json_object_get(m, "id"), "created_at",
					   json_object_get(m, "created_at"), "size",
					   json_object_get(m, "size"), "stored_bytes",
					   json_object_get(m, "stored_bytes"), "meta", meta,
					   "created_ms",
					   json_is_integer(ms)
						   ? json_integer_value(ms)
						   : json_integer_value(
							     json_object_get(m, "created_at")) *
							     1000);
		}
		json_decref(m);
	}
	qsort(v, k, sizeof(json_t *), cmp_created);
	for (size_t i = 0; i < k; i++) {
		json_object_del(v[i], "created_ms");
		json_array_append_new(out, v[i]);
	}
	free(v);
	json_decref(ids);
	return out;
}

enum miren_err bstore_remove(struct bstore *s, const char *id, struct miren_error *err)
{
	if (!is_backup_id(id))
		return miren_error_set(err, MIREN_ENOTFOUND, "no backup '%.64s'", id);
	char *path = manifest_path(s, id);
	int r = unlink(path);
	int e = errno;
	free(path);
	if (r != 0) {
		if (e == ENOENT)
			return miren_error_set(err, MIREN_ENOTFOUND, "no backup '%s'", id);
		return miren_error_set(err, MIREN_EIO, "cannot remove backup '%s': %s", id,
				       io_strerror(e));
	}
	fault_point("bstore:removed");
	char *md = xasprintf("%s/manifests", s->dir);
	if (fsync_path(md) != 0)
		log_warn("backup store: cannot fsync %s: %s", md, io_strerror(errno));
	free(md);
	return 0;
}

/* ---------------------------------------------------------------- reading */

/* Reads chunk hex of backup id, expected len bytes, into out (len bytes),
   checking its zstd frame and SHA-256.  MIREN_EINVAL naming the chunk and
   the backup when it is missing or damaged. */
static enum miren_err load_chunk(struct bstore *s, ZSTD_DCtx *dctx, const char *id, const char *hex,
				 size_t len, unsigned char *out, struct strbuf *zb,
				 struct miren_error *err)
{
	char *path = chunk_path(s, hex);
	strbuf_reset(zb);
	zb->cap = ZSTD_compressBound(len) + 1024;
	enum miren_err rc = strbuf_read_file(zb, path);
	free(path);
	if (rc == MIREN_ENOTFOUND)
		return miren_error_set(err, MIREN_EINVAL, "chunk %s of backup '%s' is missing", hex,
				       id);
	if (rc == MIREN_ETOOBIG)
		return miren_error_set(err, MIREN_EINVAL,
				       "chunk %s of backup '%s' is damaged (too large)", hex, id);
	if (rc)
		return miren_error_set(err, MIREN_EIO, "cannot read chunk %s of backup '%s': %s",
				       hex, id, io_strerror(errno));
	unsigned long long cs = ZSTD_getFrameContentSize(zb->buf, zb->len);
	if (cs != len)
		return miren_error_set(err, MIREN_EINVAL,
				       "chunk %s of backup '%s' is damaged (not a zstd frame of "
				       "the expected size)",
				       hex, id);
	size_t n = ZSTD_decompressDCtx(dctx, out, len, zb->buf, zb->len);
	if (ZSTD_isError(n))
		return miren_error_set(err, MIREN_EINVAL, "chunk %s of backup '%s' is damaged (%s)",
				       hex, id,
				       ZSTD_getErrorCode(n) == ZSTD_error_checksum_wrong
					       ? "zstd checksum mismatch"
					       : ZSTD_getErrorName(n));
	unsigned char md[32];
	char got[65];
	sha256_raw(out, len, md);
	hex_of(md, got);
	if (n != len || strcmp(got, hex) != 0)
		return miren_error_set(err, MIREN_EINVAL,
				       "chunk %s of backup '%s' is damaged (checksum mismatch)",
				       hex, id);
	return 0;
}

struct bstore_reader {
	struct bstore *s;
	json_t *m;
	const char *id;
	json_t *chunks;
	size_t next; /* index of the next chunk to load */
	int lock_fd;
	unsigned char *buf;
	size_t cap, len, pos;
	struct strbuf zb;
	ZSTD_DCtx *dctx;
	struct miren_error err;
	/* The deferred digests (snap_writer_set_reuse): the SHA-256 of the
	   stream's bytes [from, to) goes at offset at. */
	struct ddigest {
		uint64_t from, to, at;
		EVP_MD_CTX *sha;
		char hex[65];
	} * dd;
	size_t ndd;
	uint64_t off; /* stream offset of buf[pos] */
};

enum miren_err bstore_read_open(struct bstore *s, const char *id, struct bstore_reader **out,
				struct miren_error *err)
{
	*out = NULL;
	json_t *m;
	int fd;
	enum miren_err rc = store_lock(s, false, &fd, err);
	if (rc)
		return rc;
	rc = load_manifest(s, id, &m, err);
	if (rc) {
		close(fd);
		return rc;
	}
	struct bstore_reader *r = xcalloc(1, sizeof(*r));
	r->s = s;
	r->m = m;
	r->id = json_string_value(json_object_get(m, "id"));
	r->chunks = json_object_get(m, "chunks");
	r->lock_fd = fd;
	strbuf_init(&r->zb, 0);
	r->dctx = ZSTD_createDCtx();
	if (!r->dctx)
		abort();
	json_t *ds = json_object_get(m, "digests");
	r->ndd = json_array_size(ds);
	r->dd = xcalloc(r->ndd ? r->ndd : 1, sizeof(*r->dd));
	for (size_t i = 0; i < r->ndd; i++) {
		json_t *v = json_array_get(ds, i);
		struct ddigest *d = &r->dd[i];
		d->from = (uint64_t)json_integer_value(json_array_get(v, 0));
		d->to = (uint64_t)json_integer_value(json_array_get(v, 1));
		d->at = (uint64_t)json_integer_value(json_array_get(v, 2));
		d->sha = EVP_MD_CTX_new();
		if (!d->sha || EVP_DigestInit_ex(d->sha, EVP_sha256(), NULL) != 1)
			abort();
	}
	*out = r;
	return 0;
}

/* Takes the k bytes just copied to out (at stream offset r->off) into
   the deferred digests, and puts each digest in its place.  Every range
   ends before the place of its digest (checked when the manifest was
   loaded), so each is complete when its place comes. */
static void fill_digests(struct bstore_reader *r, unsigned char *out, size_t k)
{
	uint64_t a = r->off, b = r->off + k;
	for (size_t i = 0; i < r->ndd; i++) {
		struct ddigest *d = &r->dd[i];
		if (d->hex[0] == '\0' && a < d->to && b > d->from) {
			uint64_t lo = a > d->from ? a : d->from, hi = b < d->to ? b : d->to;
			if (EVP_DigestUpdate(d->sha, out + (lo - a), (size_t)(hi - lo)) != 1)
				abort();
		}
		if (d->hex[0] == '\0' && b >= d->to) {
			unsigned char md[32];
			unsigned int n = 0;
			if (EVP_DigestFinal_ex(d->sha, md, &n) != 1)
				abort();
			hex_of(md, d->hex);
		}
		uint64_t lo = a > d->at ? a : d->at, hi = b < d->at + 64 ? b : d->at + 64;
		for (uint64_t o = lo; o < hi; o++)
			out[o - a] = (unsigned char)d->hex[o - d->at];
	}
}

ssize_t bstore_source(void *user, void *buf, size_t len)
{
	struct bstore_reader *r = user;
	if (r->err.code) {
		errno = EIO;
		return -1;
	}
	while (r->pos == r->len) {
		if (r->next == json_array_size(r->chunks))
			return 0;
		json_t *c = json_array_get(r->chunks, r->next);
		const char *hex = json_string_value(json_array_get(c, 0));
		size_t n = (size_t)json_integer_value(json_array_get(c, 1));
		if (n > r->cap) {
			r->cap = n;
			r->buf = xrealloc(r->buf, n);
		}
		if (load_chunk(r->s, r->dctx, r->id, hex, n, r->buf, &r->zb, &r->err)) {
			errno = EIO;
			return -1;
		}
		r->next++;
		r->len = n;
		r->pos = 0;
	}
	size_t k = r->len - r->pos;
	if (k > len)
		k = len;
	memcpy(buf, r->buf + r->pos, k);
	if (r->ndd)
		fill_digests(r, buf, k);
	r->pos += k;
	r->off += k;
	return (ssize_t)k;
}

const struct miren_error *bstore_read_error(const struct bstore_reader *r)
{
	return r && r->err.code ? &r->err : NULL;
}

void bstore_read_close(struct bstore_reader *r)
{
	if (!r)
		return;
	if (r->lock_fd >= 0)
		close(r->lock_fd);
	json_decref(r->m);
	for (size_t i = 0; i < r->ndd; i++)
		EVP_MD_CTX_free(r->dd[i].sha);
	free(r->dd);
	free(r->buf);
	strbuf_release(&r->zb);
	ZSTD_freeDCtx(r->dctx);
	free(r);
}

enum miren_err bstore_export(struct bstore *s, const char *id, snap_sink_fn sink, void *user,
			     struct miren_error *err)
{
	struct bstore_reader *r;
	enum miren_err rc = bstore_read_open(s, id, &r, err);
	if (rc)
		return rc;
	ZSTD_CCtx *cctx = ZSTD_createCCtx();
	if (!cctx ||
	    ZSTD_isError(ZSTD_CCtx_setParameter(cctx, ZSTD_c_compressionLevel, ZSTD_LEVEL)) ||
	    ZSTD_isError(ZSTD_CCtx_setParameter(cctx, ZSTD_c_checksumFlag, 1)))
		abort();
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	(void)ZSTD_CCtx_setParameter(cctx, ZSTD_c_nbWorkers, cpus > 1 ? (int)cpus : 0);
	size_t icap = 1u << 20, ocap = ZSTD_CStreamOutSize() * 4;
	unsigned char *ib = xmalloc(icap), *ob = xmalloc(ocap);
	bool end = false;
	while (!rc) {
		ssize_t n = end ? 0 : bstore_source(r, ib, icap);
		if (n < 0) {
			rc = MIREN_EINVAL;
			if (err)
				*err = r->err;
			break;
		}
		if (n == 0)
			end = true;
		ZSTD_inBuffer in = { ib, (size_t)n, 0 };
		size_t left;
		do {
			ZSTD_outBuffer o = { ob, ocap, 0 };
			left = ZSTD_compressStream2(cctx, &o, &in,
						    end ? ZSTD_e_end : ZSTD_e_continue);
			if (ZSTD_isError(left)) {
				rc = miren_error_set(err, MIREN_EINTERNAL,
						     "zstd compression failed: %s",
						     ZSTD_getErrorName(left));
				break;
			}
			if (o.pos) {
				errno = 0;
				int sr = sink(user, ob, o.pos);
				if (sr) {
					rc = miren_error_set(err, MIREN_EIO,
							     "cannot write the exported backup%s%s",
							     errno ? ": " : "",
							     errno ? io_strerror(errno) : "");
					break;
				}
			}
		} while (end ? left != 0 : in.pos < in.size);
		if (end)
			break;
	}
	free(ib);
	free(ob);
	ZSTD_freeCCtx(cctx);
	bstore_read_close(r);
	return rc;
}

enum miren_err bstore_check(struct bstore *s, const char *id, struct miren_error *err)
{
	struct bstore_reader *r;
	enum miren_err rc = bstore_read_open(s, id, &r, err);
	if (rc)
		return rc;
	size_t n = json_array_size(r->chunks);
	for (size_t i = 0; i < n && !rc; i++) {
		json_t *c = json_array_get(r->chunks, i);
		const char *hex = json_string_value(json_array_get(c, 0));
		size_t len = (size_t)json_integer_value(json_array_get(c, 1));
		if (len > r->cap) {
			r->cap = len;
			r->buf = xrealloc(r->buf, len);
		}
		rc = load_chunk(s, r->dctx, r->id, hex, len, r->buf, &r->zb, err);
	}
	bstore_read_close(r);
	return rc;
}

/* ----------------------------------------------------- gc and chunk users */

/* Adds every run of exactly 64 hex digits in text to names (an object used
   as a set). */
static void scan_names(const char *text, size_t len, json_t *names)
{
	size_t i = 0;
	while (i < len) {
		if (!is_hex_digit(text[i])) {
			i++;
			continue;
		}
		size_t j = i;
		while (j < len && is_hex_digit(text[j]))
			j++;
		if (j - i == 64) {
			char hex[65];
			memcpy(hex, text + i, 64);
			hex[64] = '\0';
			json_object_set_new(names, hex, json_true());
		}
		i = j;
	}
}

enum miren_err bstore_gc(struct bstore *s, uint64_t *removed_bytes, struct miren_error *err)
{
	if (removed_bytes)
		*removed_bytes = 0;
	int fd;
	enum miren_err rc = store_lock(s, true, &fd, err);
	if (rc)
		return rc;
	json_t *names = json_object();
	json_t *files = manifest_ids(s, true, err);
	if (!files) {
		rc = err ? err->code : MIREN_EIO;
		goto out;
	}
	/* Mark: every name in every file of manifests/. */
	size_t i;
	json_t *v;
	json_array_foreach (files, i, v) {
		char *path = xasprintf("%s/manifests/%s", s->dir, json_string_value(v));
		struct strbuf sb = STRBUF_INIT;
		sb.cap = MANIFEST_MAX;
		enum miren_err r = strbuf_read_file(&sb, path);
		if (r && r != MIREN_ENOTFOUND) /* removed meanwhile: names nothing */
			rc = miren_error_set(err, MIREN_EIO,
					     "cannot read %s, so no chunk can safely be removed: "
					     "%s",
					     path,
					     r == MIREN_ETOOBIG ? "too large" : io_strerror(errno));
		else if (!r)
			scan_names(sb.buf, sb.len, names);
		strbuf_release(&sb);
		free(path);
		if (rc)
			goto out;
	}
	fault_point("bstore:gc-marked");
	/* Sweep. */
	bool first = true;
	for (unsigned sub = 0; sub < 256; sub++) {
		char *dp = xasprintf("%s/chunks/%02x", s->dir, sub);
		DIR *d = opendir(dp);
		if (!d) {
			if (errno != ENOENT)
				rc = miren_error_set(err, MIREN_EIO, "cannot read %s: %s", dp,
						     io_strerror(errno));
			free(dp);
			if (rc)
				goto out;
			continue;
		}
		struct dirent *de;
		bool removed = false;
		while ((de = readdir(d))) {
			if (!is_chunk_name(de->d_name) || json_object_get(names, de->d_name))
				continue;
			struct stat st;
			if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0)
				continue;
			if (unlinkat(dirfd(d), de->d_name, 0) != 0)
				continue; /* left for the next gc */
			removed = true;
			if (removed_bytes)
				*removed_bytes += (uint64_t)st.st_size;
			if (first) {
				first = false;
				fault_point("bstore:gc-removed");
			}
		}
		if (removed)
			(void)fsync(dirfd(d));
		closedir(d);
		free(dp);
	}
out:
	json_decref(files);
	json_decref(names);
	close(fd);
	return rc;
}

json_t *bstore_chunk_users(struct bstore *s, const char *hex)
{
	json_t *out = json_array();
	if (!hex || !is_chunk_name(hex))
		return out;
	json_t *ids = manifest_ids(s, false, NULL);
	size_t i;
	json_t *v;
	json_array_foreach (ids, i, v) {
		const char *id = json_string_value(v);
		char *path = manifest_path(s, id);
		struct strbuf sb = STRBUF_INIT;
		sb.cap = MANIFEST_MAX;
		if (!strbuf_read_file(&sb, path)) {
			json_t *names = json_object();
			scan_names(sb.buf, sb.len, names);
			if (json_object_get(names, hex))
				json_array_append_new(out, json_string(id));
			json_decref(names);
		}
		strbuf_release(&sb);
		free(path);
	}
	json_decref(ids);
	return out;
}
