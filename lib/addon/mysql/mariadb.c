/*
 * MariaDB mechanics for the miren-mysql addon; see mariadb.h.
 *
 * Deliberate choices:
 * - The server's whole configuration is its command line (--no-defaults):
 *   no option file of the host or the data directory changes it.
 * - Copies of the template are made by cp(1) (--reflink=auto: a copy on
 *   write where the filesystem can) run as the service user, so the copy
 *   is the service user's without a chown walk.
 * - The root password is set in the template by mariadb-install-db's
 *   --extra-file (bootstrap runs without grant tables, so it is an UPDATE
 *   of mysql.global_priv), and rotated per server at its first start.
 */
#include "addon/mysql/mariadb.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <mysql.h>
#include <mysqld_error.h>
#include <errmsg.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>

#include "supervise/supervise.h"
#include "util/fault.h"
#include "util/fs.h"
#include "util/names.h"
#include "util/secret.h"
#include "util/sha256.h"
#include "util/strbuf.h"

#define MARIADB_ROOT "root"
#define MARIADB_INSTALL_TIMEOUT_MS 180000
#define MARIADB_COPY_TIMEOUT_MS 600000
#define MARIADB_BACKUP_TIMEOUT_MS 0 /* as long as the data takes */
#define MARIADB_READY_POLL_MS 20
#define MARIADB_NAME_MAX 64

/*
 * Settings of every server (and of the bootstrap that makes the template,
 * so the redo log it writes has the size the servers expect).  Small
 * idle servers: a 16 MiB buffer pool, no performance_schema, few caches.
 */
static const char *const small_settings[] = {
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

static int64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void nap_ms(int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

/* strerror without its shared buffer (the daemon has threads). */
static const char *errtext(int e)
{
	const char *s = strerrordesc_np(e);
	return s ? s : "unknown error";
}

static bool ids_given(uid_t uid, gid_t gid)
{
	return uid != (uid_t)-1 || gid != (gid_t)-1;
}

/* The last max bytes of a command's output on one line (whitespace runs
 * made one space). */
static void output_tail(char *dst, size_t len, const char *out, size_t max)
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
static int write_owned(const char *path, const char *data, mode_t mode, uid_t uid, gid_t gid,
		       struct miren_error *err)
{
	if (fs_write_atomic(path, data, strlen(data), mode) != 0)
		return miren_error_set(err, MIREN_EIO, "cannot write %s: %s", path,
				       errtext(errno));
	if (ids_given(uid, gid) && chown(path, uid, gid) != 0)
		return miren_error_set(err, MIREN_EIO, "cannot give %s to the service user: %s",
				       path, errtext(errno));
	return 0;
}

/* mkdir path (an existing directory is fine), then exact mode and owner
 * through a descriptor opened without following symlinks. */
static int ensure_dir(const char *path, mode_t mode, uid_t uid, gid_t gid,
		      struct miren_error *err)
{
	if (mkdir(path, mode) != 0 && errno != EEXIST)
		return miren_error_set(err, MIREN_EIO, "cannot create directory %s: %s", path,
				       errtext(errno));
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return miren_error_set(err, MIREN_EIO, "%s is not a directory: %s", path,
				       errtext(errno));
	int rc = 0;
	if (fchmod(fd, mode) != 0 || (ids_given(uid, gid) && fchown(fd, uid, gid) != 0))
		rc = miren_error_set(err, MIREN_EIO, "cannot set owner and mode of %s: %s", path,
				     errtext(errno));
	close(fd);
	return rc;
}

static int sync_fs_of(const char *path, struct miren_error *err)
{
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return miren_error_set(err, MIREN_EIO, "cannot open %s: %s", path, errtext(errno));
	int rc = 0;
	if (syncfs(fd) != 0)
		rc = miren_error_set(err, MIREN_EIO, "cannot flush the filesystem of %s: %s", path,
				     errtext(errno));
	close(fd);
	return rc;
}

static int fsync_parent(const char *path, struct miren_error *err)
{
	char *d = xstrdup(path);
	int rc = 0;
	if (fs_fsync_dir(dirname(d)) != 0)
		rc = miren_error_set(err, MIREN_EIO, "cannot fsync the directory of %s", path);
	free(d);
	return rc;
}

/* Runs argv as uid/gid; a failure becomes "<what> failed (exit N): tail". */
static int run_tool(char *const *argv, const char *cwd, uid_t uid, gid_t gid, int timeout_ms,
		    const char *what, struct miren_error *err)
{
	char *env[] = { "PATH=/usr/sbin:/usr/bin:/sbin:/bin", "TZ=UTC", "LC_ALL=C", NULL };
	char *out = NULL;
	int rc = 0;
	int st = sv_run(argv, env, cwd, uid, gid, timeout_ms, &out);
	if (st != 0) {
		char tail[360];
		output_tail(tail, sizeof(tail), out, 340);
		if (st < 0)
			rc = miren_error_set(err, MIREN_EIO, "%s did not run to the end: %s", what,
					     tail);
		else
			rc = miren_error_set(err, MIREN_EIO, "%s failed (exit %d): %s", what, st,
					     tail);
		if (out && strstr(out, "ermission denied"))
			miren_error_hint(err, "the service user must be able to reach %s: every "
					      "parent directory needs search (x) permission for it",
					 cwd);
	}
	free(out);
	return rc;
}

/* Passwords the option files and SQL literals here carry: 1..255 printable
 * ASCII characters without quotes, backslash or spaces (miren's are
 * [A-Za-z0-9]). */
static bool password_ok(const char *pw)
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
static void native_hash(const char *pw, char out[42])
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

/* ---- install ------------------------------------------------------------ */

static bool executable(const char *path)
{
	return access(path, X_OK) == 0;
}

static pthread_mutex_t version_lock = PTHREAD_MUTEX_INITIALIZER;
static char version_cache[16];
static char version_of[256];

/* "mariadbd  Ver 10.11.19-MariaDB-0+deb12u1 for ..." -> "10.11". */
static int ask_version(const char *server, char out[16])
{
	char *argv[] = { (char *)server, "--version", NULL };
	char *text = NULL;
	int st = sv_run(argv, NULL, "/", (uid_t)-1, (gid_t)-1, 30000, &text);
	int rc = -1;
	const char *v = text ? strstr(text, "Ver ") : NULL;
	int major = 0, minor = 0;
	if (st == 0 && v && sscanf(v + 4, "%d.%d", &major, &minor) == 2 && major > 0) {
		snprintf(out, 16, "%d.%d", major, minor);
		rc = 0;
	}
	free(text);
	return rc;
}

int mariadb_find(struct mariadb_install *out, struct miren_error *err)
{
	const char *root = getenv("MIREN_MARIADB_ROOT");
	if (!root || !*root)
		root = "/usr";
	memset(out, 0, sizeof(*out));
	snprintf(out->server, sizeof(out->server), "%s/sbin/mariadbd", root);
	snprintf(out->install_db, sizeof(out->install_db), "%s/bin/mariadb-install-db", root);
	snprintf(out->backup, sizeof(out->backup), "%s/bin/mariadb-backup", root);
	snprintf(out->client, sizeof(out->client), "%s/bin/mariadb", root);
	snprintf(out->dump, sizeof(out->dump), "%s/bin/mariadb-dump", root);
	const char *missing = !executable(out->server)       ? out->server
			      : !executable(out->install_db) ? out->install_db
			      : !executable(out->backup)     ? out->backup
			      : !executable(out->client)     ? out->client
			      : !executable(out->dump)       ? out->dump
							     : NULL;
	if (missing) {
		miren_error_set(err, MIREN_EUNAVAIL, "MariaDB is not installed: %s not found",
				missing);
		miren_error_hint(err, "install the Debian packages mariadb-server, mariadb-client "
				      "and mariadb-backup (scripts/bootstrap does)");
		return MIREN_EUNAVAIL;
	}
	int rc = 0;
	pthread_mutex_lock(&version_lock);
	if (strcmp(version_of, out->server) != 0) {
		if (ask_version(out->server, version_cache) == 0)
			snprintf(version_of, sizeof(version_of), "%s", out->server);
		else
			version_cache[0] = '\0';
	}
	if (version_cache[0])
		memcpy(out->version, version_cache, sizeof(out->version));
	else
		rc = miren_error_set(err, MIREN_EUNAVAIL, "%s --version did not say its version",
				     out->server);
	pthread_mutex_unlock(&version_lock);
	return rc;
}

/* ---- processes ---------------------------------------------------------- */

/* Whether process pid's command line has an argument "--datadir=DIR..."
 * naming dir or a path below it. */
static bool works_on(pid_t pid, const char *dir)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/cmdline", (int)pid);
	struct strbuf cl = STRBUF_INIT;
	bool hit = false;
	size_t len = strlen(dir);
	if (strbuf_read_file(&cl, path) == 0) {
		for (size_t i = 0; i < cl.len && !hit; i += strlen(cl.buf + i) + 1) {
			const char *a = cl.buf + i;
			if (strncmp(a, "--datadir=", 10) != 0)
				continue;
			a += 10;
			hit = !strncmp(a, dir, len) && (a[len] == '\0' || a[len] == '/');
		}
	}
	strbuf_release(&cl);
	return hit;
}

int mariadb_stop_workers(const char *dir)
{
	pid_t pids[64];
	int n = 0;
	DIR *d = opendir("/proc");
	struct dirent *de;
	while (d && n < 64 && (de = readdir(d)) != NULL) {
		pid_t pid = (pid_t)atoi(de->d_name);
		if (pid > 1 && pid != getpid() && works_on(pid, dir))
			pids[n++] = pid;
	}
	if (d)
		closedir(d);
	for (int i = 0; i < n; i++)
		kill(pids[i], SIGKILL);
	for (int t = 0; t < 500; t++) {
		bool any = false;
		for (int i = 0; i < n && !any; i++)
			any = works_on(pids[i], dir);
		if (!any)
			break;
		nap_ms(10);
	}
	return n;
}

/* ---- template ----------------------------------------------------------- */

/* Bootstrap SQL (no grant tables loaded, so plain table updates): root
 * gets the password, every other account but mariadb.sys goes. */
static char *template_sql(const char *password)
{
	char hash[42];
	native_hash(password, hash);
	char *sql = xasprintf(
		"UPDATE mysql.global_priv SET Priv = JSON_REMOVE(JSON_SET(Priv, '$.plugin', "
		"'mysql_native_password', '$.authentication_string', '%s'), '$.auth_or') "
		"WHERE User = 'root' AND Host = 'localhost';\n"
		"DELETE FROM mysql.global_priv WHERE NOT (User = 'root' AND Host = 'localhost') "
		"AND User <> 'mariadb.sys';\n"
		"DELETE FROM mysql.proxies_priv WHERE NOT (User = 'root' AND Host = 'localhost');\n"
		"DELETE FROM mysql.db;\n"
		"DROP DATABASE IF EXISTS test;\n",
		hash);
	return sql;
}

int mariadb_template_ensure(const struct mariadb_install *in, const char *dir,
			    const char *template_password, uid_t uid, gid_t gid,
			    struct miren_error *err)
{
	if (!in || !dir || dir[0] != '/')
		return miren_error_set(err, MIREN_EINVAL, "the template directory must be an "
							  "absolute path");
	if (fs_is_dir(dir))
		return 0;
	if (!password_ok(template_password))
		return miren_error_set(err, MIREN_EINVAL, "the template password must be 1..255 "
							  "printable characters without quotes");
	if (geteuid() == 0 && uid == (uid_t)-1) {
		miren_error_set(err, MIREN_EINVAL, "MariaDB servers are not run as root here");
		miren_error_hint(err, "give a service user (uid/gid) to run mariadb-install-db as");
		return MIREN_EINVAL;
	}
	int rc = 0, lock_fd = -1;
	char *tmp = xasprintf("%s.tmp", dir);
	char *sqlfile = xasprintf("%s.sql", dir);
	char *lock = xasprintf("%s.lock", dir);
	char *parent_buf = xstrdup(dir);
	char *parent = dirname(parent_buf);
	char *id_path = fs_join(tmp, MARIADB_TEMPLATE_ID);
	char *sql = NULL, *id = NULL;
	char *datadir_arg = xasprintf("--datadir=%s", tmp);
	char *extra_arg = xasprintf("--extra-file=%s", sqlfile);

	if (fs_mkdir_p(parent, 0755) != 0) {
		rc = miren_error_set(err, MIREN_EIO, "cannot create directory %s: %s", parent,
				     errtext(errno));
		goto out;
	}
	lock_fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (lock_fd < 0) {
		rc = miren_error_set(err, MIREN_EIO, "cannot open %s: %s", lock, errtext(errno));
		goto out;
	}
	while (flock(lock_fd, LOCK_EX) != 0) {
		if (errno != EINTR) {
			rc = miren_error_set(err, MIREN_EIO, "cannot lock %s: %s", lock,
					     errtext(errno));
			goto out;
		}
	}
	if (fs_is_dir(dir))
		goto out; /* made meanwhile */
	/* A daemon killed while mariadb-install-db ran leaves its bootstrap
	 * mariadbd writing into tmp for a while: end it before removing. */
	mariadb_stop_workers(tmp);
	if (fs_remove_tree(tmp) != 0) {
		rc = miren_error_set(err, MIREN_EIO, "cannot remove the leftover %s", tmp);
		goto out;
	}
	if ((rc = ensure_dir(tmp, 0700, uid, gid, err)))
		goto out;
	sql = template_sql(template_password);
	if ((rc = write_owned(sqlfile, sql, 0600, uid, gid, err)))
		goto out;

	fault_point(MY_FAULT("template:install"));
	const char *args[32];
	size_t n = 0;
	args[n++] = in->install_db;
	args[n++] = "--no-defaults";
	args[n++] = datadir_arg;
	args[n++] = "--auth-root-authentication-method=socket";
	args[n++] = "--auth-root-socket-user=root";
	args[n++] = "--skip-test-db";
	args[n++] = extra_arg;
	for (const char *const *s = small_settings; *s; s++)
		args[n++] = *s;
	args[n] = NULL;
	if ((rc = run_tool((char *const *)args, parent, uid, gid, MARIADB_INSTALL_TIMEOUT_MS,
			   "mariadb-install-db", err)))
		goto out;
	id = secret_hex(16);
	if ((rc = write_owned(id_path, id, 0600, uid, gid, err)) ||
	    (rc = ensure_dir(tmp, 0700, uid, gid, err)) || (rc = sync_fs_of(tmp, err)))
		goto out;
	if (rename(tmp, dir) != 0) {
		rc = miren_error_set(err, MIREN_EIO, "cannot rename %s to %s: %s", tmp, dir,
				     errtext(errno));
		goto out;
	}
	if (fs_fsync_dir(parent) != 0)
		rc = miren_error_set(err, MIREN_EIO, "cannot fsync directory %s", parent);
out:
	if (sql) {
		explicit_bzero(sql, strlen(sql));
		free(sql);
	}
	unlink(sqlfile);
	if (rc && lock_fd >= 0)
		fs_remove_tree(tmp);
	if (lock_fd >= 0)
		close(lock_fd);
	free(id);
	free(extra_arg);
	free(datadir_arg);
	free(id_path);
	free(parent_buf);
	free(lock);
	free(sqlfile);
	free(tmp);
	return rc;
}

/* ---- spares and clones -------------------------------------------------- */

/* The template identity held in dir, or "" (into out[64]). */
static void template_id(const char *dir, char out[64])
{
	char *path = fs_join(dir, MARIADB_TEMPLATE_ID);
	struct strbuf sb = STRBUF_INIT;
	out[0] = '\0';
	if (strbuf_read_file(&sb, path) == 0)
		snprintf(out, 64, "%s", sb.buf);
	strbuf_release(&sb);
	free(path);
}

/* Copies the contents of src into the existing directory dst as uid/gid. */
static int copy_as(const char *src, const char *dst, uid_t uid, gid_t gid,
		   struct miren_error *err)
{
	char *from = xasprintf("%s/.", src);
	char *argv[] = { "/bin/cp", "-a", "--reflink=auto", from, (char *)dst, NULL };
	int rc = run_tool(argv, dst, uid, gid, MARIADB_COPY_TIMEOUT_MS, "copying the template",
			  err);
	free(from);
	return rc;
}

static char *spare_path(const char *template_dir)
{
	return xasprintf("%s.spare", template_dir);
}

/* Moves the template's spare to dst when it is of this template, owned as
 * wanted and on dst's filesystem.  Returns whether it did. */
static bool take_spare(const char *template_dir, const char *dst, uid_t uid, gid_t gid)
{
	char *spare = spare_path(template_dir);
	bool taken = false;
	struct stat st;
	char want[64], have[64];
	if (lstat(spare, &st) != 0 || !S_ISDIR(st.st_mode))
		goto out;
	uid_t want_uid = uid != (uid_t)-1 ? uid : geteuid();
	if (st.st_uid != want_uid || (gid != (gid_t)-1 && st.st_gid != gid))
		goto out;
	template_id(template_dir, want);
	template_id(spare, have);
	if (!want[0] || strcmp(want, have) != 0)
		goto out;
	if (rename(spare, dst) != 0)
		goto out;
	taken = true;
	fsync_parent(template_dir, NULL);
out:
	free(spare);
	return taken;
}

int mariadb_spare_prepare(const char *template_dir, uid_t uid, gid_t gid,
			  struct miren_error *err)
{
	if (!template_dir || !*template_dir)
		return miren_error_set(err, MIREN_EINVAL, "no template directory");
	char want[64], have[64];
	template_id(template_dir, want);
	if (!want[0])
		return miren_error_set(err, MIREN_ENOTFOUND, "%s is not a miren MariaDB template",
				       template_dir);
	char *spare = spare_path(template_dir);
	char *tmp = xasprintf("%s.tmp", spare);
	char *lock = xasprintf("%s.lock", spare);
	int rc = 0, lock_fd = -1;
	template_id(spare, have);
	if (!strcmp(want, have))
		goto out;
	lock_fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (lock_fd < 0) {
		rc = miren_error_set(err, MIREN_EIO, "cannot open %s: %s", lock, errtext(errno));
		goto out;
	}
	if (flock(lock_fd, LOCK_EX | LOCK_NB) != 0) {
		close(lock_fd);
		lock_fd = -1;
		if (errno != EWOULDBLOCK)
			rc = miren_error_set(err, MIREN_EIO, "cannot lock %s: %s", lock,
					     errtext(errno));
		goto out;
	}
	template_id(spare, have);
	if (!strcmp(want, have))
		goto out; /* made meanwhile */
	if (fs_remove_tree(spare) != 0 || fs_remove_tree(tmp) != 0) {
		rc = miren_error_set(err, MIREN_EIO, "cannot remove the stale %s", spare);
		goto out;
	}
	if ((rc = ensure_dir(tmp, 0700, uid, gid, err)))
		goto out;
	fault_point(MY_FAULT("spare:copying"));
	if ((rc = copy_as(template_dir, tmp, uid, gid, err)) || (rc = sync_fs_of(tmp, err)))
		goto out;
	if (rename(tmp, spare) != 0) {
		rc = miren_error_set(err, MIREN_EIO, "cannot rename %s to %s: %s", tmp, spare,
				     errtext(errno));
		goto out;
	}
	rc = fsync_parent(spare, err);
out:
	if (rc && lock_fd >= 0)
		fs_remove_tree(tmp);
	if (lock_fd >= 0)
		close(lock_fd);
	free(lock);
	free(tmp);
	free(spare);
	return rc;
}

char *mariadb_data_dir(const char *disk_dir)
{
	return fs_join(disk_dir, "data");
}

static char *run_base(void)
{
	if (geteuid() == 0)
		return xstrdup("/run/miren-mysql");
	return xasprintf("/tmp/miren-mysql-%u", (unsigned)geteuid());
}

char *mariadb_run_dir(const char *disk_dir)
{
	char hex[65];
	sha256_hex(disk_dir, strlen(disk_dir), hex);
	hex[16] = '\0';
	char *base = run_base();
	char *dir = xasprintf("%s/%s", base, hex);
	free(base);
	return dir;
}

char *mariadb_socket_path(const char *disk_dir)
{
	char *run = mariadb_run_dir(disk_dir);
	char *s = fs_join(run, "mysqld.sock");
	free(run);
	return s;
}

int mariadb_run_dir_ensure(const char *disk_dir, uid_t uid, gid_t gid, struct miren_error *err)
{
	char *base = run_base();
	char *run = mariadb_run_dir(disk_dir);
	int rc = 0;
	struct stat st;
	if (mkdir(base, 0711) != 0 && errno != EEXIST)
		rc = miren_error_set(err, MIREN_EIO, "cannot create %s: %s", base, errtext(errno));
	else if (lstat(base, &st) != 0 || !S_ISDIR(st.st_mode) || st.st_uid != geteuid())
		rc = miren_error_set(err, MIREN_EPERM,
				     "%s is not a directory of this user; refusing to put "
				     "database sockets there",
				     base);
	else if ((st.st_mode & 0777) != 0711 && chmod(base, 0711) != 0)
		rc = miren_error_set(err, MIREN_EIO, "cannot chmod %s: %s", base, errtext(errno));
	if (!rc)
		rc = ensure_dir(run, 0700, uid, gid, err);
	free(run);
	free(base);
	return rc;
}

int mariadb_clone(const char *template_dir, const char *disk_dir, uid_t uid, gid_t gid,
		  struct miren_error *err)
{
	if (!template_dir || !disk_dir || disk_dir[0] != '/')
		return miren_error_set(err, MIREN_EINVAL, "the disk directory must be an "
							  "absolute path");
	char want[64];
	template_id(template_dir, want);
	if (!want[0])
		return miren_error_set(err, MIREN_ENOTFOUND, "%s is not a miren MariaDB template",
				       template_dir);
	int rc = 0;
	char *data = mariadb_data_dir(disk_dir);
	char *tmp = fs_join(disk_dir, "data.tmp");
	if (!fs_is_dir(disk_dir) && fs_mkdir_p(disk_dir, 0755) != 0) {
		rc = miren_error_set(err, MIREN_EIO, "cannot create directory %s: %s", disk_dir,
				     errtext(errno));
		goto out;
	}
	if ((rc = mariadb_run_dir_ensure(disk_dir, uid, gid, err)))
		goto out;
	if (fs_is_dir(data))
		goto out; /* kept as is */
	if (fs_remove_tree(tmp) != 0) {
		rc = miren_error_set(err, MIREN_EIO, "cannot remove the leftover %s", tmp);
		goto out;
	}
	if (!take_spare(template_dir, tmp, uid, gid)) {
		if ((rc = ensure_dir(tmp, 0700, uid, gid, err)) ||
		    (rc = copy_as(template_dir, tmp, uid, gid, err)) ||
		    (rc = sync_fs_of(tmp, err)))
			goto out;
	}
	fault_point(MY_FAULT("clone:copied"));
	if (rename(tmp, data) != 0) {
		rc = miren_error_set(err, MIREN_EIO, "cannot rename %s to %s: %s", tmp, data,
				     errtext(errno));
		goto out;
	}
	if (fs_fsync_dir(disk_dir) != 0)
		rc = miren_error_set(err, MIREN_EIO, "cannot fsync directory %s", disk_dir);
out:
	if (rc)
		fs_remove_tree(tmp);
	free(tmp);
	free(data);
	return rc;
}

/* ---- server command line ------------------------------------------------ */

char **mariadb_server_argv(const struct mariadb_install *in, const char *disk_dir,
			   const char *address, int port)
{
	unsigned char buf[16];
	if (!address || (inet_pton(AF_INET, address, buf) != 1 &&
			 inet_pton(AF_INET6, address, buf) != 1))
		return NULL;
	if (port < 1 || port > 65535)
		return NULL;
	size_t n_settings = 0;
	while (small_settings[n_settings])
		n_settings++;
	char **argv = xcalloc(8 + n_settings + 1, sizeof(*argv));
	char *run = mariadb_run_dir(disk_dir);
	size_t n = 0;
	argv[n++] = xstrdup(in->server);
	argv[n++] = xstrdup("--no-defaults");
	argv[n++] = xasprintf("--datadir=%s/data", disk_dir);
	argv[n++] = xasprintf("--socket=%s/mysqld.sock", run);
	argv[n++] = xasprintf("--pid-file=%s/mysqld.pid", run);
	argv[n++] = xasprintf("--bind-address=%s", address);
	argv[n++] = xasprintf("--port=%d", port);
	for (size_t i = 0; i < n_settings; i++)
		argv[n++] = xstrdup(small_settings[i]);
	argv[n] = NULL;
	free(run);
	return argv;
}

void mariadb_argv_free(char **argv)
{
	if (!argv)
		return;
	for (char **p = argv; *p; p++)
		free(*p);
	free(argv);
}

/* ---- connections -------------------------------------------------------- */

static pthread_once_t lib_once = PTHREAD_ONCE_INIT;

static void lib_init(void)
{
	mysql_library_init(0, NULL, NULL);
}

/* A root connection over the socket of DISK (NULL with err set).  On a
 * refused password the code is MIREN_EPERM. */
static MYSQL *root_connect(const char *disk_dir, const char *password, int timeout_s,
			   struct miren_error *err)
{
	pthread_once(&lib_once, lib_init);
	MYSQL *m = mysql_init(NULL);
	if (!m) {
		miren_error_set(err, MIREN_EINTERNAL, "cannot make a MariaDB client handle");
		return NULL;
	}
	unsigned int t = (unsigned)timeout_s;
	unsigned int rw = 60;
	bool no = false;
	mysql_optionsv(m, MYSQL_OPT_CONNECT_TIMEOUT, &t);
	mysql_optionsv(m, MYSQL_OPT_READ_TIMEOUT, &rw);
	mysql_optionsv(m, MYSQL_OPT_WRITE_TIMEOUT, &rw);
	mysql_optionsv(m, MYSQL_OPT_LOCAL_INFILE, &no);
	char *sock = mariadb_socket_path(disk_dir);
	MYSQL *ok = mysql_real_connect(m, "localhost", MARIADB_ROOT, password, NULL, 0, sock,
				       CLIENT_MULTI_STATEMENTS);
	free(sock);
	if (!ok) {
		unsigned int e = mysql_errno(m);
		enum miren_err code = (e == ER_ACCESS_DENIED_ERROR || e == ER_DBACCESS_DENIED_ERROR)
					      ? MIREN_EPERM
					      : MIREN_EUNAVAIL;
		miren_error_set(err, code, "cannot connect to the MariaDB server of %s: %s",
				disk_dir, mysql_error(m));
		mysql_close(m);
		return NULL;
	}
	return m;
}

/* Runs one or more statements, discarding results.  what names them for
 * the message (never the SQL: it may hold a password hash). */
static int run_sql(MYSQL *m, const char *sql, const char *what, struct miren_error *err)
{
	if (mysql_query(m, sql) != 0)
		goto fail;
	do {
		MYSQL_RES *r = mysql_store_result(m);
		if (r)
			mysql_free_result(r);
		else if (mysql_field_count(m) != 0)
			goto fail;
		int next = mysql_next_result(m);
		if (next > 0)
			goto fail;
		if (next < 0)
			break;
	} while (1);
	return 0;
fail:;
	unsigned int e = mysql_errno(m);
	enum miren_err code = MIREN_EDB;
	if (e >= 2000 && e < 3000)
		code = MIREN_EUNAVAIL; /* client side: the connection went */
	return miren_error_set(err, code, "%s failed: %s", what, mysql_error(m));
}

/* Every row's first column of sql, in order (arrays to free). */
static int query_column(MYSQL *m, const char *sql, const char *what, char ***out, size_t *n,
			struct miren_error *err)
{
	*out = NULL;
	*n = 0;
	if (mysql_query(m, sql) != 0)
		return miren_error_set(err, MIREN_EDB, "%s failed: %s", what, mysql_error(m));
	MYSQL_RES *r = mysql_store_result(m);
	if (!r || mysql_num_fields(r) < 1) {
		if (r)
			mysql_free_result(r);
		return miren_error_set(err, MIREN_EDB, "%s returned no rows: %s", what,
				       mysql_error(m));
	}
	size_t rows = (size_t)mysql_num_rows(r);
	char **v = xcalloc(rows + 1, sizeof(*v));
	MYSQL_ROW row;
	size_t i = 0;
	while ((row = mysql_fetch_row(r)) && i < rows)
		v[i++] = xstrdup(row[0] ? row[0] : "");
	mysql_free_result(r);
	*out = v;
	*n = i;
	return 0;
}

static char *query_value(MYSQL *m, const char *sql, const char *what, struct miren_error *err)
{
	char **v;
	size_t n;
	if (query_column(m, sql, what, &v, &n, err))
		return NULL;
	char *s = n ? v[0] : NULL;
	for (size_t i = 1; i < n; i++)
		free(v[i]);
	free(v);
	if (!s)
		miren_error_set(err, MIREN_EDB, "%s returned no rows", what);
	return s;
}

void mariadb_names_free(char **names, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
}

int mariadb_wait_ready(const char *disk_dir, const char *password, int timeout_ms,
		       const atomic_bool *stop, struct miren_error *err)
{
	int64_t deadline = mono_ms() + timeout_ms;
	struct miren_error last = { 0 };
	for (;;) {
		miren_error_clear(&last);
		MYSQL *m = root_connect(disk_dir, password, 2, &last);
		if (m) {
			mysql_close(m);
			return 0;
		}
		if (last.code == MIREN_EPERM) {
			miren_error_set(err, MIREN_EPERM, "%s", last.message);
			miren_error_hint(err, "the root password miren holds for this server is "
					      "not the server's");
			return MIREN_EPERM;
		}
		if (mono_ms() >= deadline || (stop && atomic_load(stop)))
			break;
		nap_ms(MARIADB_READY_POLL_MS);
	}
	return miren_error_set(err, MIREN_EUNAVAIL, "the MariaDB server of %s is not ready: %s",
			       disk_dir, last.message);
}

int mariadb_rotate_root(const char *disk_dir, const char *old_password,
			const char *new_password, struct miren_error *err)
{
	if (!password_ok(new_password) || !password_ok(old_password))
		return miren_error_set(err, MIREN_EINVAL, "a root password must be 1..255 "
							  "printable characters without quotes");
	struct miren_error first = { 0 };
	MYSQL *m = root_connect(disk_dir, old_password, 5, &first);
	if (!m && first.code == MIREN_EPERM)
		m = root_connect(disk_dir, new_password, 5, err);
	else if (!m)
		return miren_error_set(err, first.code, "%s", first.message);
	if (!m)
		return err ? err->code : MIREN_EUNAVAIL;
	char hash[42];
	native_hash(new_password, hash);
	char *sql = xasprintf("ALTER USER 'root'@'localhost' IDENTIFIED BY PASSWORD '%s'", hash);
	int rc = run_sql(m, sql, "setting the root password", err);
	free(sql);
	mysql_close(m);
	return rc;
}

/* ---- tenants ------------------------------------------------------------ */

static const char *const reserved[] = {
	"mysql", "information_schema", "performance_schema", "sys", "test", "root",
	"public", "none", "current_user", "current_role", "mariadb_sys", NULL,
};

bool mariadb_reserved(const char *name)
{
	for (const char *const *r = reserved; *r; r++)
		if (!strcmp(name, *r))
			return true;
	return false;
}

/* [a-z_][a-z0-9_]*, 1..64 bytes, not reserved. */
static int check_name(const char *name, const char *what, struct miren_error *err)
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

int mariadb_ident_for_app(const char *app, char out[65], struct miren_error *err)
{
	int rc = name_check_app(app, err);
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

/* KILLs every session of user (not ours). */
static int end_sessions(MYSQL *m, const char *user, struct miren_error *err)
{
	char *sql = xasprintf("SELECT ID FROM information_schema.PROCESSLIST WHERE USER = '%s' "
			      "AND ID <> CONNECTION_ID()",
			      user);
	char **ids;
	size_t n;
	int rc = query_column(m, sql, "listing the tenant's sessions", &ids, &n, err);
	free(sql);
	for (size_t i = 0; !rc && i < n; i++) {
		char *kill = xasprintf("KILL CONNECTION %s", ids[i]);
		if (mysql_query(m, kill) != 0 && mysql_errno(m) != ER_NO_SUCH_THREAD)
			rc = miren_error_set(err, MIREN_EDB, "ending a tenant session failed: %s",
					     mysql_error(m));
		free(kill);
	}
	mariadb_names_free(ids, n);
	return rc;
}

int mariadb_tenant_create(const char *disk_dir, const char *root_password, const char *user,
			  const char *db, const char *password, struct miren_error *err)
{
	int rc;
	if ((rc = check_name(user, "a user", err)) || (rc = check_name(db, "a database", err)))
		return rc;
	if (!password_ok(password))
		return miren_error_set(err, MIREN_EINVAL, "a tenant password must be 1..255 "
							  "printable characters without quotes");
	MYSQL *m = root_connect(disk_dir, root_password, 5, err);
	if (!m)
		return err ? err->code : MIREN_EUNAVAIL;
	char hash[42];
	native_hash(password, hash);
	char *sql = xasprintf(
		"CREATE DATABASE IF NOT EXISTS `%s` CHARACTER SET utf8mb4;"
		"CREATE USER IF NOT EXISTS '%s'@'%%' IDENTIFIED BY PASSWORD '%s';"
		"ALTER USER '%s'@'%%' IDENTIFIED BY PASSWORD '%s';"
		"REVOKE ALL PRIVILEGES, GRANT OPTION FROM '%s'@'%%';"
		"GRANT ALL PRIVILEGES ON `%s`.* TO '%s'@'%%'",
		db, user, hash, user, hash, user, db, user);
	fault_point(MY_FAULT("tenant:create"));
	rc = run_sql(m, sql, "creating the tenant", err);
	free(sql);
	mysql_close(m);
	return rc;
}

int mariadb_tenant_password(const char *disk_dir, const char *root_password, const char *user,
			    const char *password, struct miren_error *err)
{
	int rc;
	if ((rc = check_name(user, "a user", err)))
		return rc;
	if (!password_ok(password))
		return miren_error_set(err, MIREN_EINVAL, "a tenant password must be 1..255 "
							  "printable characters without quotes");
	MYSQL *m = root_connect(disk_dir, root_password, 5, err);
	if (!m)
		return err ? err->code : MIREN_EUNAVAIL;
	char hash[42];
	native_hash(password, hash);
	char *sql = xasprintf("ALTER USER '%s'@'%%' IDENTIFIED BY PASSWORD '%s'", user, hash);
	rc = run_sql(m, sql, "setting the tenant's password", err);
	free(sql);
	mysql_close(m);
	return rc;
}

int mariadb_tenant_drop(const char *disk_dir, const char *root_password, const char *user,
			const char *db, struct miren_error *err)
{
	int rc;
	if ((rc = check_name(user, "a user", err)) || (rc = check_name(db, "a database", err)))
		return rc;
	MYSQL *m = root_connect(disk_dir, root_password, 5, err);
	if (!m)
		return err ? err->code : MIREN_EUNAVAIL;
	/* The user first: no new session can start while the rest goes. */
	char *sql = xasprintf("DROP USER IF EXISTS '%s'@'%%'", user);
	rc = run_sql(m, sql, "dropping the tenant's user", err);
	free(sql);
	if (!rc)
		rc = end_sessions(m, user, err);
	if (!rc) {
		sql = xasprintf("DROP DATABASE IF EXISTS `%s`", db);
		rc = run_sql(m, sql, "dropping the tenant's database", err);
		free(sql);
	}
	mysql_close(m);
	return rc;
}

int mariadb_tenant_names(const char *disk_dir, const char *root_password, char ***dbs,
			 size_t *n_dbs, char ***users, size_t *n_users, struct miren_error *err)
{
	*dbs = *users = NULL;
	*n_dbs = *n_users = 0;
	MYSQL *m = root_connect(disk_dir, root_password, 5, err);
	if (!m)
		return err ? err->code : MIREN_EUNAVAIL;
	int rc = query_column(m,
			      "SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE "
			      "SCHEMA_NAME NOT IN ('mysql', 'information_schema', "
			      "'performance_schema', 'sys') ORDER BY 1",
			      "listing databases", dbs, n_dbs, err);
	if (!rc)
		rc = query_column(m,
				  "SELECT DISTINCT User FROM mysql.user WHERE User NOT IN "
				  "('root', 'mariadb.sys') AND is_role = 'N' ORDER BY 1",
				  "listing users", users, n_users, err);
	mysql_close(m);
	if (rc) {
		mariadb_names_free(*dbs, *n_dbs);
		mariadb_names_free(*users, *n_users);
		*dbs = *users = NULL;
		*n_dbs = *n_users = 0;
	}
	return rc;
}

/* ---- backup ------------------------------------------------------------- */

int mariadb_backup(const struct mariadb_install *in, const char *disk_dir,
		   const char *root_password, const char *target_dir, uid_t uid, gid_t gid,
		   struct miren_error *err)
{
	if (!password_ok(root_password))
		return miren_error_set(err, MIREN_EINVAL, "bad root password");
	if (fs_exists(target_dir))
		return miren_error_set(err, MIREN_EEXISTS, "backup directory %s exists",
				       target_dir);
	char *optfile = xasprintf("%s.cnf", target_dir);
	char *sock = mariadb_socket_path(disk_dir);
	char *conf = xasprintf("[client]\nuser=root\npassword=\"%s\"\nsocket=%s\n", root_password,
			       sock);
	char *defaults = xasprintf("--defaults-file=%s", optfile);
	char *datadir = xasprintf("--datadir=%s/data", disk_dir);
	char *target = xasprintf("--target-dir=%s", target_dir);
	char *parent_buf = xstrdup(target_dir);
	char *argv[] = { (char *)in->backup, defaults, "--backup", datadir, target,
			 "--parallel=2", NULL };
	int rc = write_owned(optfile, conf, 0600, uid, gid, err);
	explicit_bzero(conf, strlen(conf));
	if (!rc)
		rc = ensure_dir(target_dir, 0700, uid, gid, err);
	if (!rc) {
		rc = run_tool(argv, dirname(parent_buf), uid, gid, MARIADB_BACKUP_TIMEOUT_MS,
			      "mariadb-backup --backup", err);
	}
	unlink(optfile);
	if (rc)
		fs_remove_tree(target_dir);
	free(parent_buf);
	free(target);
	free(datadir);
	free(defaults);
	free(conf);
	free(sock);
	free(optfile);
	return rc;
}

int mariadb_backup_prepare(const struct mariadb_install *in, const char *dir, uid_t uid,
			   gid_t gid, struct miren_error *err)
{
	char *target = xasprintf("--target-dir=%s", dir);
	char *argv[] = { (char *)in->backup, "--no-defaults", "--prepare", target, NULL };
	int rc = run_tool(argv, dir, uid, gid, 0, "mariadb-backup --prepare", err);
	free(target);
	return rc;
}

/* ---- connect and info --------------------------------------------------- */

int mariadb_client_file(const struct mariadb_install *in, const char *path, const char *host,
			int port, const char *user, const char *password, const char *db,
			uid_t uid, gid_t gid, char ***argv_out, struct miren_error *err)
{
	unsigned char buf[16];
	if (!host || (inet_pton(AF_INET, host, buf) != 1 && inet_pton(AF_INET6, host, buf) != 1))
		return miren_error_set(err, MIREN_EINVAL, "host must be a numeric ip address");
	int rc;
	if ((rc = check_name(user, "a user", err)) || (rc = check_name(db, "a database", err)))
		return rc;
	if (!password_ok(password))
		return miren_error_set(err, MIREN_EINVAL, "bad password");
	char *conf = xasprintf("[client]\nhost=%s\nport=%d\nuser=%s\npassword=\"%s\"\n"
			       "database=%s\n",
			       host, port, user, password, db);
	rc = write_owned(path, conf, 0600, uid, gid, err);
	explicit_bzero(conf, strlen(conf));
	free(conf);
	if (!rc && argv_out) {
		char **argv = xcalloc(3, sizeof(*argv));
		argv[0] = xstrdup(in->client);
		argv[1] = xasprintf("--defaults-extra-file=%s", path);
		*argv_out = argv;
	}
	return rc;
}

/* Runs argv with stdin in_fd / stdout out_fd (-1: /dev/null) and
 * MYSQL_PWD=password in its environment; what it says on stderr (the
 * last 340 bytes) goes into the error.  what names it for messages. */
static int run_client(char *const *argv, const char *password, int in_fd, int out_fd,
		      const char *what, struct miren_error *err)
{
	int errp[2];
	if (pipe2(errp, O_CLOEXEC) != 0)
		return miren_error_set(err, MIREN_EIO, "cannot make a pipe: %s", errtext(errno));
	char *pwenv = xasprintf("MYSQL_PWD=%s", password);
	char *env[] = { "PATH=/usr/bin:/bin", "LC_ALL=C", "TZ=UTC", pwenv, NULL };
	pid_t pid = fork();
	if (pid == 0) {
		int null = open("/dev/null", O_RDWR);
		if (dup2(in_fd >= 0 ? in_fd : null, 0) < 0 || dup2(out_fd >= 0 ? out_fd : null, 1) < 0 ||
		    dup2(errp[1], 2) < 0)
			_exit(126);
		execve(argv[0], argv, env);
		_exit(127);
	}
	explicit_bzero(pwenv, strlen(pwenv));
	free(pwenv);
	close(errp[1]);
	if (pid < 0) {
		close(errp[0]);
		return miren_error_set(err, MIREN_EIO, "cannot start %s: %s", what, errtext(errno));
	}
	struct strbuf sb;
	strbuf_init(&sb, 1 << 20);
	strbuf_read_fd(&sb, errp[0]);
	close(errp[0]);
	int st = 0;
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	int rc = 0;
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
		char tail[360];
		output_tail(tail, sizeof(tail), sb.buf, 340);
		rc = miren_error_set(err, MIREN_EIO, "%s failed (%s %d): %s", what,
				     WIFEXITED(st) ? "exit" : "signal",
				     WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st), tail);
	}
	strbuf_release(&sb);
	return rc;
}

/*
 * Runs tool as the tenant user on db (host:port over TCP), the password in
 * its environment: its argv is tool, the connection options, then the
 * NULL-terminated extra arguments, then db (as --database=DB with
 * db_option, else as an operand).  stdin in_fd, stdout out_fd.
 */
static int tenant_tool(const char *tool, const char *what, const char *host, int port,
		       const char *user, const char *password, const char *db,
		       const char *const *extra, bool db_option, int in_fd, int out_fd,
		       struct miren_error *err)
{
	int rc;
	if ((rc = check_name(user, "a user", err)) || (rc = check_name(db, "a database", err)))
		return rc;
	if (!password_ok(password))
		return miren_error_set(err, MIREN_EINVAL, "bad password");
	unsigned char buf[16];
	if (!host || (inet_pton(AF_INET, host, buf) != 1 && inet_pton(AF_INET6, host, buf) != 1))
		return miren_error_set(err, MIREN_EINVAL, "host must be a numeric ip address");
	char *argv[16] = { 0 };
	size_t n = 0;
	argv[n++] = xstrdup(tool);
	argv[n++] = xstrdup("--no-defaults");
	argv[n++] = xasprintf("--host=%s", host);
	argv[n++] = xasprintf("--port=%d", port);
	argv[n++] = xasprintf("--user=%s", user);
	for (const char *const *e = extra; *e && n < 14; e++)
		argv[n++] = xstrdup(*e);
	argv[n++] = db_option ? xasprintf("--database=%s", db) : xstrdup(db);
	rc = run_client(argv, password, in_fd, out_fd, what, err);
	for (size_t i = 0; i < n; i++)
		free(argv[i]);
	return rc;
}

int mariadb_dump(const struct mariadb_install *in, const char *host, int port, const char *user,
		 const char *password, const char *db, int fd, struct miren_error *err)
{
	static const char *const extra[] = { "--single-transaction", "--routines", "--triggers",
					     "--events", "--no-tablespaces", NULL };
	return tenant_tool(in->dump, "mariadb-dump", host, port, user, password, db, extra, false,
			   -1, fd, err);
}

int mariadb_load(const struct mariadb_install *in, const char *host, int port, const char *user,
		 const char *password, const char *db, int fd, struct miren_error *err)
{
	static const char *const extra[] = { "--batch", NULL };
	return tenant_tool(in->client, "loading the dump with mariadb", host, port, user, password,
			   db, extra, true, fd, -1, err);
}

int mariadb_info(const char *disk_dir, const char *root_password, const char *db,
		 struct mariadb_info *out, struct miren_error *err)
{
	memset(out, 0, sizeof(*out));
	if (db && check_name(db, "a database", err))
		return MIREN_EINVAL;
	MYSQL *m = root_connect(disk_dir, root_password, 5, err);
	if (!m)
		return err ? err->code : MIREN_EUNAVAIL;
	int rc = 0;
	char *v = query_value(m, "SELECT VERSION()", "asking the version", err);
	char *size_sql = db ? xasprintf("SELECT COALESCE(SUM(DATA_LENGTH + INDEX_LENGTH), 0) FROM "
					"information_schema.TABLES WHERE TABLE_SCHEMA = '%s'",
					db)
			    : xstrdup("SELECT COALESCE(SUM(DATA_LENGTH + INDEX_LENGTH), 0) FROM "
				      "information_schema.TABLES");
	char *conn_sql = db ? xasprintf("SELECT COUNT(*) FROM information_schema.PROCESSLIST "
					"WHERE USER = '%s' OR DB = '%s'",
					db, db)
			    : xstrdup("SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE "
				      "COMMAND <> 'Daemon' AND ID <> CONNECTION_ID()");
	char *size = v ? query_value(m, size_sql, "asking the size", err) : NULL;
	char *conns = size ? query_value(m, conn_sql, "counting sessions", err) : NULL;
	if (!conns)
		rc = err ? err->code : MIREN_EDB;
	else {
		snprintf(out->version, sizeof(out->version), "%s", v);
		out->size_bytes = atoll(size);
		out->connections = atol(conns);
	}
	free(conns);
	free(size);
	free(v);
	free(conn_sql);
	free(size_sql);
	mysql_close(m);
	return rc;
}
