/*
 * Preparing a PostgreSQL start; see pg_start.h.
 */
#include "addon/postgresql/pg_start.h"
#include "addon/postgresql/pg.h"
#include "util/err.h"
#include "util/fs.h"
#include "util/io.h"
#include "util/log.h"
#include "util/strbuf.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct pg_prestart {
	char *disk_dir;
	uid_t uid;
	gid_t gid;
};

/* readlink of /proc/<pid>/<what> into a malloc'd string, or NULL. */
static char *proc_link(pid_t pid, const char *what)
{
	char path[64], buf[PATH_MAX];
	snprintf(path, sizeof(path), "/proc/%d/%s", (int)pid, what);
	ssize_t n = readlink(path, buf, sizeof(buf) - 1);
	if (n <= 0)
		return NULL;
	buf[n] = '\0';
	return xstrdup(buf);
}

bool pg_is_postmaster_of(pid_t pid, const char *pgdata)
{
	if (pid <= 1)
		return false;
	char *exe = proc_link(pid, "exe");
	const char *base = exe ? strrchr(exe, '/') : NULL;
	bool ours = false;
	if (base && (!strcmp(base, "/postgres") || !strcmp(base, "/postmaster"))) {
		char *cwd = proc_link(pid, "cwd");
		char *real = realpath(pgdata, NULL);
		ours = cwd && (!strcmp(cwd, pgdata) || (real && !strcmp(cwd, real)));
		free(cwd);
		free(real);
		if (!ours) {
			char path[64];
			snprintf(path, sizeof(path), "/proc/%d/cmdline", (int)pid);
			struct strbuf cl = STRBUF_INIT;
			if (strbuf_read_file(&cl, path) == 0)
				for (size_t i = 0; i + 3 < cl.len && !ours;
				     i += strlen(cl.buf + i) + 1)
					ours = !strcmp(cl.buf + i, "-D") &&
					       !strcmp(cl.buf + i + 3, pgdata);
			strbuf_release(&cl);
		}
	}
	free(exe);
	return ours;
}

/* Removes lock file path unless the pid on its first line is a live
 * postgres of pgdata.  Returns 0 or MIREN_EIO with err set. */
static enum miren_err clear_stale_lock(const char *path, const char *pgdata,
				       struct miren_error *err)
{
	struct strbuf sb = STRBUF_INIT;
	enum miren_err rc = 0;
	if (strbuf_read_file(&sb, path) != 0)
		goto out; /* none */
	long pid = strtol(sb.buf, NULL, 10);
	if (pid < 0)
		pid = -pid; /* a standalone backend writes -pid */
	if (pg_is_postmaster_of((pid_t)pid, pgdata)) {
		/* It runs: PostgreSQL refuses to start beside it, which is
		 * right (an unsupervised postmaster is stopped elsewhere). */
		log_info("%s names the running postmaster %ld of %s; left alone", path, pid,
			 pgdata);
		goto out;
	}
	if (unlink(path) != 0 && errno != ENOENT) {
		rc = miren_error_set(err, MIREN_EIO, "cannot remove the stale lock file %s", path);
		miren_error_detail(err, "%s", io_strerror(errno));
		goto out;
	}
	log_info("removed the stale lock file %s (pid %ld is not a postmaster of %s)", path, pid,
		 pgdata);
out:
	strbuf_release(&sb);
	return rc;
}

void *pg_prestart_new(const char *disk_dir, uid_t uid, gid_t gid)
{
	struct pg_prestart *p = xcalloc(1, sizeof(*p));
	p->disk_dir = xstrdup(disk_dir);
	p->uid = uid;
	p->gid = gid;
	return p;
}

void pg_prestart_free(void *arg)
{
	struct pg_prestart *p = arg;
	if (!p)
		return;
	free(p->disk_dir);
	free(p);
}

enum miren_err pg_prestart_run(void *arg, struct miren_error *err)
{
	struct pg_prestart *p = arg;
	enum miren_err rc = pg_socket_dir_ensure(p->disk_dir, p->uid, p->gid, err);
	if (rc)
		return rc;
	char *pgdata = fs_join(p->disk_dir, "pgdata");
	char *pidfile = fs_join(pgdata, "postmaster.pid");
	rc = clear_stale_lock(pidfile, pgdata, err);
	char *sock = pg_socket_dir(p->disk_dir);
	DIR *d = rc ? NULL : opendir(sock);
	struct dirent *de;
	while (d && !rc && (de = readdir(d)) != NULL) {
		size_t n = strlen(de->d_name);
		if (strncmp(de->d_name, ".s.PGSQL.", 9) != 0 || n < 5 ||
		    strcmp(de->d_name + n - 5, ".lock") != 0)
			continue;
		char *lock = fs_join(sock, de->d_name);
		rc = clear_stale_lock(lock, pgdata, err);
		free(lock);
	}
	if (d)
		closedir(d);
	free(sock);
	free(pidfile);
	free(pgdata);
	return rc;
}
