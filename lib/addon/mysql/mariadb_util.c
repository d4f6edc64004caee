/*
 * The helpers the MariaDB mechanics share (mariadb_internal.h): small
 * file and process helpers, the server settings, password and name rules.
 */
#include "addon/mysql/mariadb_internal.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "supervise/supervise.h"
#include "util/fs.h"
#include "util/io.h"
#include "util/names.h"

/*
 * Settings of every server (and of the bootstrap that makes the template,
 * so the redo log it writes has the size the servers expect).  Small
 * idle servers: a 16 MiB buffer pool, no performance_schema, few caches.
 */
const char *const mdbi_small_settings[] = {
	"--innodb-buffer-pool-size=16M",
	"--innodb-log-file-size=32M",
	"--innodb-log-buffer-size=2M",
	"--key-buffer-size=1M",
	"--performance-schema=OFF",
	"--max-connections=100",
	"--table-open-cache=400",
	"--table-definition-cache=400",
	"--thread-cache-size=4",
	"--character-set-server=utf8mb4",
	"--skip-name-resolve",
	"--skip-host-cache",
	"--local-infile=0",
	"--skip-symbolic-links",
	NULL,
};

/* ---- small helpers ------------------------------------------------------ */

void mdbi_nap_ms(int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

bool mdbi_ids_given(uid_t uid, gid_t gid)
{
	return uid != (uid_t)-1 || gid != (gid_t)-1;
}

/* The last max bytes of a command's output on one line (whitespace runs
 * made one space). */
void mdbi_output_tail(char *dst, size_t len, const char *out, size_t max)
{
	size_t n = out ? strlen(out) : 0;
	const char *p = n > max ? out + n - max : (out ? out : "");
	size_t o = 0;
	bool space = false;
	for (; *p && o + 2 < len; p++) {
		if (isspace((unsigned char)*p)) {
			space = o > 0;
			continue;
		}
		if (space)
			dst[o++] = ' ';
		space = false;
		dst[o++] = *p;
	}
	dst[o] = '\0';
}

/* Writes data to path atomically, then gives it to uid/gid. */
enum miren_err mdbi_write_owned(const char *path, const char *data, mode_t mode, uid_t uid,
				gid_t gid, struct miren_error *err)
{
	if (fs_write_atomic(path, data, strlen(data), mode) != 0)
		return miren_error_set(err, MIREN_EIO, "cannot write %s: %s", path,
				       io_strerror(errno));
	if (mdbi_ids_given(uid, gid) && chown(path, uid, gid) != 0)
		return miren_error_set(err, MIREN_EIO, "cannot give %s to the service user: %s",
				       path, io_strerror(errno));
	return 0;
}

/* mkdir path (an existing directory is fine), then exact mode and owner
 * through a descriptor opened without following symlinks. */
enum miren_err mdbi_ensure_dir(const char *path, mode_t mode, uid_t uid, gid_t gid,
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
	if (fchmod(fd, mode) != 0 || (mdbi_ids_given(uid, gid) && fchown(fd, uid, gid) != 0))
		rc = miren_error_set(err, MIREN_EIO, "cannot set owner and mode of %s: %s", path,
				     io_strerror(errno));
	close(fd);
	return rc;
}

enum miren_err mdbi_sync_fs_of(const char *path, struct miren_error *err)
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

enum miren_err mdbi_fsync_parent(const char *path, struct miren_error *err)
{
	char *d = xstrdup(path);
	enum miren_err rc = 0;
	if (fs_fsync_dir(dirname(d)) != 0)
		rc = miren_error_set(err, MIREN_EIO, "cannot fsync the directory of %s", path);
	free(d);
	return rc;
}

/* Runs argv as uid/gid; a failure becomes "<what> failed (exit N): tail". */
enum miren_err mdbi_run_tool(char *const *argv, const char *cwd, uid_t uid, gid_t gid,
			     int timeout_ms, const char *what, struct miren_error *err)
{
	char *env[] = { "PATH=/usr/sbin:/usr/bin:/sbin:/bin", "TZ=UTC", "LC_ALL=C", NULL };
	char *out = NULL;
	enum miren_err rc = 0;
	int st = sv_run(argv, env, cwd, uid, gid, timeout_ms, &out);
	if (st != 0) {
		char tail[360];
		mdbi_output_tail(tail, sizeof(tail), out, 340);
		if (st < 0)
			rc = miren_error_set(err, MIREN_EIO, "%s did not run to the end: %s", what,
					     tail);
		else
			rc = miren_error_set(err, MIREN_EIO, "%s failed (exit %d): %s", what, st,
					     tail);
		if (out && strstr(out, "ermission denied"))
			miren_error_hint(err,
					 "the service user must be able to reach %s: every "
					 "parent directory needs search (x) permission for it",
					 cwd);
	}
	free(out);
	return rc;
}

/* Passwords the option files and SQL literals here carry: 1..255 printable
 * ASCII characters without quotes, backslash or spaces (miren's are
 * [A-Za-z0-9]). */
bool mdbi_password_ok(const char *pw)
{
	if (!pw || !*pw || strlen(pw) > 255)
		return false;
	for (const char *p = pw; *p; p++)
		if (*p <= ' ' || *p > '~' || *p == '\'' || *p == '"' || *p == '\\' || *p == '`')
			return false;
	return true;
}

/* The mysql_native_password hash of pw: '*' + 40 upper-case hex digits of
 * SHA1(SHA1(pw)), into out[42]. */
void mdbi_native_hash(const char *pw, char out[42])
{
	unsigned char a[EVP_MAX_MD_SIZE], b[EVP_MAX_MD_SIZE];
	unsigned int na = 0, nb = 0;
	EVP_Digest(pw, strlen(pw), a, &na, EVP_sha1(), NULL);
	EVP_Digest(a, na, b, &nb, EVP_sha1(), NULL);
	out[0] = '*';
	for (unsigned int i = 0; i < nb && i < 20; i++)
		snprintf(out + 1 + 2 * i, 3, "%02X", b[i]);
	out[41] = '\0';
	explicit_bzero(a, sizeof(a));
}

static const char *const reserved[] = {
	"mysql",
	"information_schema",
	"performance_schema",
	"sys",
	"test",
	"root",
	"public",
	"none",
	"current_user",
	"current_role",
	"mariadb_sys",
	NULL,
};

bool mariadb_reserved(const char *name)
{
	for (const char *const *r = reserved; *r; r++)
		if (!strcmp(name, *r))
			return true;
	return false;
}

/* [a-z_][a-z0-9_]*, 1..64 bytes, not reserved. */
enum miren_err mdbi_check_name(const char *name, const char *what, struct miren_error *err)
{
	size_t len = name ? strlen(name) : 0;
	bool ok = len > 0 && len <= MARIADB_NAME_MAX && !isdigit((unsigned char)name[0]);
	for (size_t i = 0; ok && i < len; i++)
		ok = (name[i] >= 'a' && name[i] <= 'z') || isdigit((unsigned char)name[i]) ||
		     name[i] == '_';
	if (!ok)
		return miren_error_set(err, MIREN_EINVAL,
				       "%s name must be 1..%d of [a-z0-9_], not starting with a "
				       "digit",
				       what, MARIADB_NAME_MAX);
	if (mariadb_reserved(name))
		return miren_error_set(err, MIREN_EINVAL, "%s name '%s' is reserved", what, name);
	return 0;
}

enum miren_err mariadb_ident_for_app(const char *app, char out[65], struct miren_error *err)
{
	enum miren_err rc = name_check_app(app, err);
	if (rc)
		return rc;
	size_t len = strlen(app);
	char name[65];
	for (size_t i = 0; i <= len; i++)
		name[i] = app[i] == '-' ? '_' : app[i];
	if (mariadb_reserved(name))
		snprintf(out, 65, "u_%.18s_", name); /* reserved names are at most 18 bytes */
	else
		memcpy(out, name, len + 1);
	return 0;
}
