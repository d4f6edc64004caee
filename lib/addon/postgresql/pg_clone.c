/*
 * A server's cluster: a clone of the template (or the spare clone its disk
 * came with, renamed), its settings, its socket directory, its command
 * line; see pg.h and pg_internal.h.
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
#include <libpq-fe.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

static char *conf_quote(const char *s)
{
	struct strbuf sb = STRBUF_INIT;
	strbuf_addch(&sb, '\'');
	for (const char *p = s; *p; p++) {
		if (*p == '\'' || *p == '\\')
			strbuf_addch(&sb, *p);
		strbuf_addch(&sb, *p);
	}
	strbuf_addch(&sb, '\'');
	return strbuf_detach(&sb, NULL);
}

static char *server_conf(const char *address, int port, const char *run_dir)
{
	char *qa = conf_quote(address), *qr = conf_quote(run_dir);
	char *s = xasprintf("# Written by miren for this server.\n"
			    "listen_addresses = %s\n"
			    "port = %d\n"
			    "unix_socket_directories = %s\n",
			    qa, port, qr);
	free(qa);
	free(qr);
	return s;
}

/* The system identifier of the cluster in dir (the first field of
 * global/pg_control), or 0. */
static uint64_t cluster_id(const char *dir)
{
	char *path = fs_join(dir, "global/pg_control");
	uint64_t id = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		if (pread(fd, &id, sizeof(id), 0) != (ssize_t)sizeof(id))
			id = 0;
		close(fd);
	}
	free(path);
	return id;
}

/*
 * Takes DISK/pgdata.spare (pg_spare_fill) as dst when it is a clone of
 * this template (same system identifier) owned as wanted; a spare of
 * another template (made before the template was) is removed.  Returns
 * whether it did; on false dst is untouched.
 */
static bool take_spare(const char *template_dir, const char *disk_dir, const char *dst, uid_t uid,
		       gid_t gid)
{
	char *spare = fs_join(disk_dir, PG_SPARE_DIR);
	bool taken = false;
	struct stat st;
	if (lstat(spare, &st) != 0)
		goto out;
	uid_t want_uid = uid != (uid_t)-1 ? uid : geteuid();
	uint64_t id = cluster_id(template_dir);
	if (S_ISDIR(st.st_mode) && st.st_uid == want_uid &&
	    (gid == (gid_t)-1 || st.st_gid == gid) && id && cluster_id(spare) == id &&
	    rename(spare, dst) == 0)
		taken = true;
	else
		fs_remove_tree(spare);
out:
	free(spare);
	return taken;
}

enum miren_err pg_spare_fill(const char *template_dir, const char *disk_dir, uid_t uid, gid_t gid,
			     struct miren_error *err)
{
	if (!template_dir || !*template_dir || !disk_dir || !*disk_dir)
		return miren_error_set(err, MIREN_EINVAL, "no template or disk dir");
	char *version = fs_join(template_dir, "PG_VERSION");
	char *spare = fs_join(disk_dir, PG_SPARE_DIR);
	char *tmp = xasprintf("%s.tmp", spare);
	enum miren_err rc = 0;
	if (!fs_exists(version)) {
		rc = miren_error_set(err, MIREN_ENOTFOUND,
				     "template %s is not a postgresql cluster", template_dir);
		goto out;
	}
	if (fs_is_dir(spare) && cluster_id(spare) == cluster_id(template_dir))
		goto out;
	if (fs_remove_tree(spare) != 0 || fs_remove_tree(tmp) != 0) {
		rc = miren_error_set(err, MIREN_EIO, "cannot remove the stale %s", spare);
		goto out;
	}
	fault_point(PG_FAULT("spare:copying"));
	if ((rc = pgi_copy_tree(template_dir, tmp, uid, gid, err)) ||
	    (rc = pgi_sync_fs_of(tmp, err)))
		goto out;
	if (rename(tmp, spare) != 0) {
		rc = miren_error_set(err, MIREN_EIO, "cannot rename %s to %s: %s", tmp, spare,
				     io_strerror(errno));
		goto out;
	}
	if (fs_fsync_dir(disk_dir) != 0)
		rc = miren_error_set(err, MIREN_EIO, "cannot fsync directory %s", disk_dir);
out:
	if (rc)
		fs_remove_tree(tmp);
	free(tmp);
	free(spare);
	free(version);
	return rc;
}

/*
 * Unix socket paths are limited to 107 bytes, and a data directory can be
 * deep: sockets live in a short directory named from the disk's path,
 * /run/miren-pg/<16 hex> as root, else /tmp/miren-pg-<uid>/<16 hex>.
 */
static char *socket_base(void)
{
	if (geteuid() == 0)
		return xstrdup("/run/miren-pg");
	return xasprintf("/tmp/miren-pg-%u", (unsigned)geteuid());
}

char *pg_socket_dir(const char *disk_dir)
{
	char hex[65];
	sha256_hex(disk_dir, strlen(disk_dir), hex);
	hex[16] = '\0';
	char *base = socket_base();
	char *dir = xasprintf("%s/%s", base, hex);
	free(base);
	return dir;
}

/* The base exists, is a real directory and is ours (never a link planted
 * in /tmp by someone else); traversable so the service user reaches its
 * own subdirectory. */
static enum miren_err ensure_socket_base(struct miren_error *err)
{
	char *base = socket_base();
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
	else if ((st.st_mode & 0777) != 0711)
		chmod(base, 0711);
	free(base);
	return rc;
}

enum miren_err pg_socket_dir_ensure(const char *disk_dir, uid_t uid, gid_t gid,
				    struct miren_error *err)
{
	char *run = pg_socket_dir(disk_dir);
	enum miren_err rc = ensure_socket_base(err);
	if (!rc)
		rc = pgi_ensure_dir(run, 0700, uid, gid, err);
	free(run);
	return rc;
}

enum miren_err pg_clone(const char *template_dir, const char *disk_dir, const char *address,
			int port, uid_t uid, gid_t gid, struct miren_error *err)
{
	unsigned char addr_buf[16];
	if (!template_dir || !disk_dir || disk_dir[0] != '/')
		return miren_error_set(err, MIREN_EINVAL,
				       "the disk directory must be an "
				       "absolute path");
	if (strpbrk(disk_dir, "\n\r"))
		return miren_error_set(err, MIREN_EINVAL, "the disk directory has a line break");
	if (!address || (inet_pton(AF_INET, address, addr_buf) != 1 &&
			 inet_pton(AF_INET6, address, addr_buf) != 1))
		return miren_error_set(err, MIREN_EINVAL,
				       "listen address '%s' is not a numeric ip address",
				       address ? address : "");
	if (port < 1 || port > 65535)
		return miren_error_set(err, MIREN_EINVAL, "port %d is out of range", port);
	enum miren_err rc = 0;
	char *version = fs_join(template_dir, "PG_VERSION");
	char *run = pg_socket_dir(disk_dir);
	char *pgdata = fs_join(disk_dir, "pgdata");
	char *tmp = fs_join(disk_dir, "pgdata.tmp");
	char *conf = server_conf(address, port, run);
	char *conf_path = NULL;

	if (!fs_exists(version)) {
		rc = miren_error_set(err, MIREN_ENOTFOUND,
				     "template %s is not a postgresql cluster", template_dir);
		goto out;
	}
	if (!fs_is_dir(disk_dir) && fs_mkdir_p(disk_dir, 0755) != 0) {
		rc = miren_error_set(err, MIREN_EIO, "cannot create directory %s: %s", disk_dir,
				     io_strerror(errno));
		goto out;
	}
	if ((rc = pg_socket_dir_ensure(disk_dir, uid, gid, err)))
		goto out;

	if (fs_is_dir(pgdata)) {
		/* Kept as is; the settings are rewritten only when they differ. */
		conf_path = fs_join(pgdata, PG_SERVER_CONF);
		struct strbuf cur = STRBUF_INIT;
		bool same = strbuf_read_file(&cur, conf_path) == 0 && !strcmp(cur.buf, conf);
		strbuf_release(&cur);
		if (!same)
			rc = pgi_write_owned(conf_path, conf, 0600, uid, gid, err);
		goto out;
	}
	if (fs_remove_tree(tmp) != 0) {
		rc = miren_error_set(err, MIREN_EIO, "cannot remove the leftover %s", tmp);
		goto out;
	}
	/* A spare (flushed when it was made) only needs the settings file. */
	bool spare = take_spare(template_dir, disk_dir, tmp, uid, gid);
	if (!spare)
		fault_point(PG_FAULT("clone:copying"));
	if (!spare && (rc = pgi_copy_tree(template_dir, tmp, uid, gid, err)))
		goto out;
	conf_path = fs_join(tmp, PG_SERVER_CONF);
	if ((rc = pgi_write_owned(conf_path, conf, 0600, uid, gid, err)))
		goto out;
	if (!spare && (rc = pgi_sync_fs_of(tmp, err)))
		goto out;
	fault_point(PG_FAULT("clone:copied"));
	if (rename(tmp, pgdata) != 0) {
		rc = miren_error_set(err, MIREN_EIO, "cannot rename %s to %s: %s", tmp, pgdata,
				     io_strerror(errno));
		goto out;
	}
	if (fs_fsync_dir(disk_dir) != 0)
		rc = miren_error_set(err, MIREN_EIO, "cannot fsync directory %s", disk_dir);
out:
	if (rc)
		fs_remove_tree(tmp);
	free(conf_path);
	free(conf);
	free(tmp);
	free(pgdata);
	free(run);
	free(version);
	return rc;
}

/* ---- server command line ------------------------------------------------ */

char **pg_server_argv(const struct pg_install *pg, const char *disk_dir,
		      const char *const *settings)
{
	size_t n = 0;
	while (settings && settings[n])
		n++;
	char **argv = xcalloc(4 + 2 * n, sizeof(*argv));
	argv[0] = fs_join(pg->bindir, "postgres");
	argv[1] = xstrdup("-D");
	argv[2] = fs_join(disk_dir, "pgdata");
	for (size_t i = 0; i < n; i++) {
		argv[3 + 2 * i] = xstrdup("-c");
		argv[4 + 2 * i] = xstrdup(settings[i]);
	}
	return argv;
}

void pg_argv_free(char **argv)
{
	if (!argv)
		return;
	for (char **p = argv; *p; p++)
		free(*p);
	free(argv);
}
