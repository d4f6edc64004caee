/*
 * The WAL archive of a PostgreSQL server (pg.h, "WAL archive"): what its
 * archive_command and restore_command run (through `miren addon-helper`),
 * the archive's tidying and what the daemon reads of it.
 *
 * Each archived file NAME (a segment, a timeline history file, a backup
 * history file) is two files in the archive directory:
 *   NAME.sha256   "<64 hex>  NAME\n": the SHA-256 of the file as PostgreSQL
 *                 wrote it (`zstd -dc NAME.zst | sha256sum` agrees)
 *   NAME.zst      the file, zstd-compressed with the frame checksum on
 * each written as a temporary file, flushed, renamed and the directory
 * flushed (fs_write_atomic), the checksum first: NAME.zst is the commit
 * point, and an archived file always has its checksum.  Archiving a name
 * that is there already succeeds when the checksum is the same (PostgreSQL
 * retries a segment whose archiving it did not see succeed) and is refused
 * otherwise: the archive never changes what it holds.
 */
#include "addon/postgresql/pg_internal.h"
#include "util/fs.h"
#include "util/io.h"
#include "util/sha256.h"
#include "util/strbuf.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zstd.h>

/* The largest file the archive takes: PostgreSQL's largest WAL segment. */
#define WAL_MAX_BYTES (1024ULL << 20)
#define WAL_ZSTD_LEVEL 1

static bool hex_upper(const char *s, size_t n)
{
	return strlen(s) >= n && strspn(s, "0123456789ABCDEF") >= n;
}

bool pg_wal_name_ok(const char *name)
{
	size_t n = strlen(name);
	if (n == 24 && hex_upper(name, 24))
		return true; /* a segment */
	if (n == 8 + 8 && hex_upper(name, 8) && !strcmp(name + 8, ".history"))
		return true; /* a timeline history file */
	if (n == 24 + 8 + 1 + 7 && hex_upper(name, 24) && name[24] == '.' &&
	    hex_upper(name + 25, 8) && !strcmp(name + 33, ".backup"))
		return true; /* a backup history file */
	if (n == 24 + 8 && hex_upper(name, 24) && !strcmp(name + 24, ".partial"))
		return true; /* the last segment of a timeline left at a promotion */
	return false;
}

static enum miren_err bad_name(const char *name, struct miren_error *err)
{
	return miren_error_set(err, MIREN_EINVAL, "'%.80s' is not the name of a WAL file", name);
}

/* The recorded checksum of name in dir into hex[65]; 0, MIREN_ENOTFOUND
 * (no checksum file) or MIREN_EINVAL (unreadable). */
static enum miren_err read_sum(const char *dir, const char *name, char hex[65],
			       struct miren_error *err)
{
	char *path = xasprintf("%s/%s.sha256", dir, name);
	struct strbuf sb = STRBUF_INIT;
	enum miren_err rc = 0;
	if (strbuf_read_file(&sb, path) != 0) {
		rc = errno == ENOENT ? MIREN_ENOTFOUND : MIREN_EIO;
		miren_error_set(err, rc, "cannot read %s: %s", path, io_strerror(errno));
	} else if (sb.len < 66 || strspn(sb.buf, "0123456789abcdef") != 64) {
		rc = miren_error_set(err, MIREN_EINVAL, "%s holds no SHA-256", path);
	} else {
		memcpy(hex, sb.buf, 64);
		hex[64] = '\0';
	}
	strbuf_release(&sb);
	free(path);
	return rc;
}

static enum miren_err read_whole(const char *path, struct strbuf *sb, struct miren_error *err)
{
	strbuf_init(sb, WAL_MAX_BYTES + 1);
	if (strbuf_read_file(sb, path) != 0)
		return miren_error_set(err, errno == ENOENT ? MIREN_ENOTFOUND : MIREN_EIO,
				       "cannot read %s: %s", path, io_strerror(errno));
	return 0;
}

enum miren_err pg_wal_archive(const char *dir, const char *src, const char *name,
			      struct miren_error *err)
{
	if (!pg_wal_name_ok(name))
		return bad_name(name, err);
	struct strbuf data;
	enum miren_err rc = read_whole(src, &data, err);
	char hex[65], have[65];
	char *zpath = xasprintf("%s/%s.zst", dir, name);
	char *spath = xasprintf("%s/%s.sha256", dir, name);
	void *z = NULL;
	if (rc)
		goto out;
	sha256_hex(data.buf, data.len, hex);
	if (fs_exists(zpath)) {
		struct miren_error e2;
		rc = read_sum(dir, name, have, &e2);
		if (!rc && strcmp(have, hex))
			rc = miren_error_set(err, MIREN_ECONFLICT,
					     "the archive holds another %s (SHA-256 %.16s..., "
					     "this one %.16s...): not replaced",
					     name, have, hex);
		else if (rc)
			*err = e2;
		goto out; /* the same content: archived already */
	}
	char line[160];
	int ll = snprintf(line, sizeof(line), "%s  %s\n", hex, name);
	if (fs_write_atomic(spath, line, (size_t)ll, 0600) != 0) {
		rc = miren_error_set(err, MIREN_EIO, "cannot write %s: %s", spath,
				     io_strerror(errno));
		goto out;
	}
	size_t cap = ZSTD_compressBound(data.len);
	z = xcalloc(1, cap ? cap : 1);
	ZSTD_CCtx *cc = ZSTD_createCCtx();
	size_t zn = cc ? ZSTD_CCtx_setParameter(cc, ZSTD_c_compressionLevel, WAL_ZSTD_LEVEL) : 1;
	if (cc && !ZSTD_isError(zn))
		zn = ZSTD_CCtx_setParameter(cc, ZSTD_c_checksumFlag, 1);
	if (cc && !ZSTD_isError(zn))
		zn = ZSTD_compress2(cc, z, cap, data.buf, data.len);
	ZSTD_freeCCtx(cc);
	if (!cc || ZSTD_isError(zn)) {
		rc = miren_error_set(err, MIREN_EINTERNAL, "cannot compress %s: %s", name,
				     cc ? ZSTD_getErrorName(zn) : "out of memory");
		goto out;
	}
	if (fs_write_atomic(zpath, z, zn, 0600) != 0)
		rc = miren_error_set(err, MIREN_EIO, "cannot write %s: %s", zpath,
				     io_strerror(errno));
out:
	free(z);
	free(zpath);
	free(spath);
	strbuf_release(&data);
	return rc;
}

enum miren_err pg_wal_fetch(const char *dir, const char *name, const char *dst,
			    struct miren_error *err)
{
	if (!pg_wal_name_ok(name))
		return bad_name(name, err);
	char want[65], hex[65];
	char *zpath = xasprintf("%s/%s.zst", dir, name);
	struct strbuf z = STRBUF_INIT;
	void *data = NULL;
	enum miren_err rc = 0;
	if (!fs_exists(zpath)) {
		rc = miren_error_set(err, MIREN_ENOTFOUND, "the archive holds no %s", name);
		goto out;
	}
	rc = read_sum(dir, name, want, err);
	if (!rc)
		rc = read_whole(zpath, &z, err);
	if (rc)
		goto out;
	unsigned long long n = ZSTD_getFrameContentSize(z.buf, z.len);
	if (n == ZSTD_CONTENTSIZE_ERROR || n == ZSTD_CONTENTSIZE_UNKNOWN || n > WAL_MAX_BYTES) {
		rc = miren_error_set(err, MIREN_EINVAL, "%s is damaged: not a zstd frame", zpath);
		goto out;
	}
	data = xcalloc(1, n ? n : 1);
	size_t got = ZSTD_decompress(data, n, z.buf, z.len);
	if (ZSTD_isError(got) || got != n) {
		rc = miren_error_set(err, MIREN_EINVAL, "%s is damaged: %s", zpath,
				     ZSTD_isError(got) ? ZSTD_getErrorName(got) : "short");
		goto out;
	}
	sha256_hex(data, n, hex);
	if (strcmp(hex, want)) {
		rc = miren_error_set(err, MIREN_EINVAL,
				     "%s is damaged: its SHA-256 is %.16s..., the recorded one "
				     "%.16s...",
				     zpath, hex, want);
		goto out;
	}
	if (fs_write_atomic(dst, data, n, 0600) != 0)
		rc = miren_error_set(err, MIREN_EIO, "cannot write %s: %s", dst,
				     io_strerror(errno));
out:
	free(data);
	strbuf_release(&z);
	free(zpath);
	return rc;
}

/* The position part of a segment name (log and segment, no timeline). */
static const char *seg_pos(const char *name)
{
	return name + 8;
}

enum miren_err pg_wal_tidy(const char *dir, const char *keep_from, int *removed,
			   struct miren_error *err)
{
	*removed = 0;
	if (!pg_wal_name_ok(keep_from) || strlen(keep_from) != 24)
		return bad_name(keep_from, err);
	DIR *d = opendir(dir);
	if (!d)
		return errno == ENOENT ? 0
				       : miren_error_set(err, MIREN_EIO, "cannot list %s: %s", dir,
							 io_strerror(errno));
	struct dirent *de;
	time_t now = time(NULL);
	while ((de = readdir(d)) != NULL) {
		const char *f = de->d_name;
		char *path = fs_join(dir, f);
		bool drop = false;
		struct stat st;
		if (strstr(f, ".tmp.")) {
			/* A writer's temporary file, left by a crash if old. */
			drop = lstat(path, &st) == 0 && st.st_mtime < now - 3600;
		} else if (strlen(f) >= 24 && hex_upper(f, 24) && f[24] == '.' &&
			   !strstr(f, ".history")) {
			/* Segments, partial segments and backup history files
			 * before the oldest base backup's start. */
			drop = strncmp(seg_pos(f), seg_pos(keep_from), 16) < 0;
		}
		if (drop && unlink(path) == 0)
			(*removed)++;
		free(path);
	}
	closedir(d);
	return 0;
}

int64_t pg_wal_newest(const char *dir, char name[64])
{
	DIR *d = opendir(dir);
	int64_t best = 0;
	name[0] = '\0';
	struct dirent *de;
	while (d && (de = readdir(d)) != NULL) {
		size_t n = strlen(de->d_name);
		if (n != 24 + 4 || !hex_upper(de->d_name, 24) || strcmp(de->d_name + 24, ".zst"))
			continue;
		char *path = fs_join(dir, de->d_name);
		struct stat st;
		if (stat(path, &st) == 0 && (int64_t)st.st_mtime >= best) {
			best = st.st_mtime;
			snprintf(name, 64, "%.24s", de->d_name);
		}
		free(path);
	}
	if (d)
		closedir(d);
	return best;
}

void pg_wal_status_write(const char *pgdata, const char *wal, const struct miren_error *failed)
{
	char *path = fs_join(pgdata, PG_ARCHIVE_STATUS);
	json_t *o = json_pack("{s:b, s:s, s:I}", "ok", failed == NULL, "wal", wal, "at",
			      (json_int_t)time(NULL));
	if (failed) {
		json_object_set_new(o, "error", json_string(failed->message));
		if (failed->detail[0])
			json_object_set_new(o, "detail", json_string(failed->detail));
	}
	char *s = json_dumps(o, JSON_COMPACT);
	/* Not flushed: a status lost in a crash is written again at the
	 * next segment. */
	char *tmp = xasprintf("%s.tmp", path);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd >= 0) {
		bool ok = io_write_all(fd, s, strlen(s)) == 0;
		if (close(fd) == 0 && ok)
			rename(tmp, path);
	}
	free(tmp);
	free(s);
	json_decref(o);
	free(path);
}

json_t *pg_wal_status_read(const char *pgdata)
{
	char *path = fs_join(pgdata, PG_ARCHIVE_STATUS);
	json_t *o = json_load_file(path, 0, NULL);
	free(path);
	if (o && !json_is_object(o)) {
		json_decref(o);
		o = NULL;
	}
	return o;
}

/* Runs sql (one value) over the superuser socket into out. */
static enum miren_err su_value(const char *disk_dir, int port, const char *su_password,
			       const char *sql, const char *what, char *out, size_t len,
			       struct miren_error *err)
{
	char why[256];
	bool used;
	PGconn *c = pgi_su_connect(disk_dir, port, su_password, "postgres", APP_MIREN, 5, why,
				   sizeof(why), &used);
	if (!c)
		return miren_error_set(err, MIREN_EUNAVAIL, "cannot %s: %s", what, why);
	char *v = pgi_query_value(c, sql, what, err);
	PQfinish(c);
	if (!v)
		return err ? err->code : MIREN_EDB;
	snprintf(out, len, "%s", v);
	free(v);
	return 0;
}

enum miren_err pg_wal_current(const char *disk_dir, int port, const char *su_password, char seg[64],
			      struct miren_error *err)
{
	return su_value(disk_dir, port, su_password, "SELECT pg_walfile_name(pg_current_wal_lsn())",
			"read the current WAL file", seg, 64, err);
}

enum miren_err pg_wal_switch(const char *disk_dir, int port, const char *su_password, char seg[64],
			     struct miren_error *err)
{
	char xid[64];
	/* A transaction with an id commits: its commit record carries the
	 * time, which a recovery target needs after it. */
	enum miren_err rc = su_value(disk_dir, port, su_password, "SELECT txid_current()::text",
				     "write a commit record", xid, sizeof(xid), err);
	if (!rc)
		rc = su_value(disk_dir, port, su_password,
			      "SELECT pg_walfile_name(pg_switch_wal())", "switch the WAL file", seg,
			      64, err);
	return rc;
}
