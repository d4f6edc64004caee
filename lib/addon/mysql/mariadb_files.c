/*
 * The template data directory, its spare copy, clones into disks, the run
 * directory and the server's command line; see mariadb.h.
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
#include "addon/mysql/mariadb_internal.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/fault.h"
#include "util/fs.h"
#include "util/io.h"
#include "util/secret.h"
#include "util/sha256.h"
#include "util/strbuf.h"

/* ---- template ----------------------------------------------------------- */

/* Bootstrap SQL (no grant tables loaded, so plain table updates): root
 * gets the password, every other account but mariadb.sys goes. */
static char *template_sql(const char *password)
{
	char hash[42];
	mdbi_native_hash(password, hash);
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

enum miren_err mariadb_template_ensure(const struct mariadb_install *in, const char *dir,
				       const char *template_password, uid_t uid, gid_t gid,
				       struct miren_error *err)
{
	if (!in || !dir || dir[0] != '/')
		return miren_error_set(err, MIREN_EINVAL,
				       "the template directory must be an "
				       "absolute path");
	if (fs_is_dir(dir))
		return 0;
	if (!mdbi_password_ok(template_password))
		return miren_error_set(err, MIREN_EINVAL,
				       "the template password must be 1..255 "
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
				     io_strerror(errno));
		goto out;
	}
	lock_fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (lock_fd < 0) {
		rc = miren_error_set(err, MIREN_EIO, "cannot open %s: %s", lock,
				     io_strerror(errno));
		goto out;
	}
	while (flock(lock_fd, LOCK_EX) != 0) {
		if (errno != EINTR) {
			rc = miren_error_set(err, MIREN_EIO, "cannot lock %s: %s", lock,
					     io_strerror(errno));
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
	if ((rc = mdbi_ensure_dir(tmp, 0700, uid, gid, err)))
		goto out;
	sql = template_sql(template_password);
	if ((rc = mdbi_write_owned(sqlfile, sql, 0600, uid, gid, err)))
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
	for (const char *const *s = mdbi_small_settings; *s; s++)
		args[n++] = *s;
	args[n] = NULL;
	if ((rc = mdbi_run_tool((char *const *)args, parent, uid, gid, MARIADB_INSTALL_TIMEOUT_MS,
				"mariadb-install-db", err)))
		goto out;
	id = secret_hex(16);
	if ((rc = mdbi_write_owned(id_path, id, 0600, uid, gid, err)) ||
	    (rc = mdbi_ensure_dir(tmp, 0700, uid, gid, err)) || (rc = mdbi_sync_fs_of(tmp, err)))
		goto out;
	if (rename(tmp, dir) != 0) {
		rc = miren_error_set(err, MIREN_EIO, "cannot rename %s to %s: %s", tmp, dir,
				     io_strerror(errno));
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
static enum miren_err copy_as(const char *src, const char *dst, uid_t uid, gid_t gid,
			      struct miren_error *err)
{
	char *from = xasprintf("%s/.", src);
	char *argv[] = { "/bin/cp", "-a", "--reflink=auto", from, (char *)dst, NULL };
	enum miren_err rc = mdbi_run_tool(argv, dst, uid, gid, MARIADB_COPY_TIMEOUT_MS,
					  "copying the template", err);
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
	mdbi_fsync_parent(template_dir, NULL);
out:
	free(spare);
	return taken;
}

enum miren_err mariadb_spare_prepare(const char *template_dir, uid_t uid, gid_t gid,
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
		rc = miren_error_set(err, MIREN_EIO, "cannot open %s: %s", lock,
				     io_strerror(errno));
		goto out;
	}
	if (flock(lock_fd, LOCK_EX | LOCK_NB) != 0) {
		close(lock_fd);
		lock_fd = -1;
		if (errno != EWOULDBLOCK)
			rc = miren_error_set(err, MIREN_EIO, "cannot lock %s: %s", lock,
					     io_strerror(errno));
		goto out;
	}
	template_id(spare, have);
	if (!strcmp(want, have))
		goto out; /* made meanwhile */
	if (fs_remove_tree(spare) != 0 || fs_remove_tree(tmp) != 0) {
		rc = miren_error_set(err, MIREN_EIO, "cannot remove the stale %s", spare);
		goto out;
	}
	if ((rc = mdbi_ensure_dir(tmp, 0700, uid, gid, err)))
		goto out;
	fault_point(MY_FAULT("spare:copying"));
	if ((rc = copy_as(template_dir, tmp, uid, gid, err)) || (rc = mdbi_sync_fs_of(tmp, err)))
		goto out;
	if (rename(tmp, spare) != 0) {
		rc = miren_error_set(err, MIREN_EIO, "cannot rename %s to %s: %s", tmp, spare,
				     io_strerror(errno));
		goto out;
	}
	rc = mdbi_fsync_parent(spare, err);
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

enum miren_err mariadb_run_dir_ensure(const char *disk_dir, uid_t uid, gid_t gid,
				      struct miren_error *err)
{
	char *base = run_base();
	char *run = mariadb_run_dir(disk_dir);
	enum miren_err rc = 0;
	struct stat st;
	if (mkdir(base, 0711) != 0 && errno != EEXIST)
		rc = miren_error_set(err, MIREN_EIO, "cannot create %s: %s", base,
				     io_strerror(errno));
	else if (lstat(base, &st) != 0 || !S_ISDIR(st.st_mode) || st.st_uid != geteuid())
		rc = miren_error_set(err, MIREN_EPERM,
				     "%s is not a directory of this user; refusing to put "
				     "database sockets there",
				     base);
	else if ((st.st_mode & 0777) != 0711 && chmod(base, 0711) != 0)
		rc = miren_error_set(err, MIREN_EIO, "cannot chmod %s: %s", base,
				     io_strerror(errno));
	if (!rc)
		rc = mdbi_ensure_dir(run, 0700, uid, gid, err);
	free(run);
	free(base);
	return rc;
}

enum miren_err mariadb_clone(const char *template_dir, const char *disk_dir, uid_t uid, gid_t gid,
			     struct miren_error *err)
{
	if (!template_dir || !disk_dir || disk_dir[0] != '/')
		return miren_error_set(err, MIREN_EINVAL,
				       "the disk directory must be an "
				       "absolute path");
	char want[64];
	template_id(template_dir, want);
	if (!want[0])
		return miren_error_set(err, MIREN_ENOTFOUND, "%s is not a miren MariaDB template",
				       template_dir);
	enum miren_err rc = 0;
	char *data = mariadb_data_dir(disk_dir);
	char *tmp = fs_join(disk_dir, "data.tmp");
	if (!fs_is_dir(disk_dir) && fs_mkdir_p(disk_dir, 0755) != 0) {
		rc = miren_error_set(err, MIREN_EIO, "cannot create directory %s: %s", disk_dir,
				     io_strerror(errno));
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
		if ((rc = mdbi_ensure_dir(tmp, 0700, uid, gid, err)) ||
		    (rc = copy_as(template_dir, tmp, uid, gid, err)) ||
		    (rc = mdbi_sync_fs_of(tmp, err)))
			goto out;
	}
	fault_point(MY_FAULT("clone:copied"));
	if (rename(tmp, data) != 0) {
		rc = miren_error_set(err, MIREN_EIO, "cannot rename %s to %s: %s", tmp, data,
				     io_strerror(errno));
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
	if (!address ||
	    (inet_pton(AF_INET, address, buf) != 1 && inet_pton(AF_INET6, address, buf) != 1))
		return NULL;
	if (port < 1 || port > 65535)
		return NULL;
	size_t n_settings = 0;
	while (mdbi_small_settings[n_settings])
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
		argv[n++] = xstrdup(mdbi_small_settings[i]);
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
