/*
 * Template clusters: initdb once per major version, tuned for small idle
 * servers; see pg.h and pg_internal.h.
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
#include <libgen.h>
#include <libpq-fe.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

/* ---- template ----------------------------------------------------------- */

/* The tuning of every server; the per-server part is in PG_SERVER_CONF. */
static const char template_conf[] =
	"# Written by miren: a small idle server.  Per-server settings (address,\n"
	"# port, socket directory) are in " PG_SERVER_CONF ", included last.\n"
	"listen_addresses = ''\n"
	"max_connections = 50\n"
	"superuser_reserved_connections = 3\n"
	"unix_socket_permissions = 0700\n"
	"password_encryption = 'scram-sha-256'\n"
	"ssl = off\n"
	"shared_buffers = 16MB\n"
	"huge_pages = off\n"
	"dynamic_shared_memory_type = posix\n"
	"work_mem = 4MB\n"
	"maintenance_work_mem = 16MB\n"
	"effective_cache_size = 128MB\n"
	"max_worker_processes = 4\n"
	"max_parallel_workers = 2\n"
	"max_parallel_workers_per_gather = 1\n"
	"max_parallel_maintenance_workers = 1\n"
	"max_logical_replication_workers = 0\n"
	"max_wal_senders = 0\n"
	"max_replication_slots = 2\n" /* a temporary slot holds WAL during backups */
	"autovacuum_max_workers = 2\n"
	"jit = off\n"
	"update_process_title = off\n"
	"fsync = on\n"
	"synchronous_commit = on\n"
	"full_page_writes = on\n"
	"wal_level = replica\n"
	"min_wal_size = 32MB\n"
	"max_wal_size = 256MB\n"
	"logging_collector = off\n"
	"log_destination = 'stderr'\n"
	"log_line_prefix = '%m [%p] %q%u@%d '\n"
	"log_timezone = 'UTC'\n"
	"timezone = 'UTC'\n"
	"datestyle = 'iso, mdy'\n"
	"lc_messages = 'C'\n"
	"lc_monetary = 'C.UTF-8'\n"
	"lc_numeric = 'C.UTF-8'\n"
	"lc_time = 'C.UTF-8'\n"
	"default_text_search_config = 'pg_catalog.english'\n"
	"include '" PG_SERVER_CONF "'\n";

static const char template_hba[] =
	"# Written by miren: scram-sha-256 only; the superuser only over the unix socket.\n"
	"local all postgres scram-sha-256\n"
	"host all postgres all reject\n"
	"host all all 127.0.0.0/8 scram-sha-256\n"
	"host all all ::1/128 scram-sha-256\n";

bool pgi_password_ok(const char *pw)
{
	return pw && *pw && strlen(pw) < 1024 && !strpbrk(pw, "\r\n");
}

/* 0, or MIREN_EINVAL with err when password is no role's (pgi_password_ok). */
enum miren_err pgi_check_password(const char *role, const char *password, struct miren_error *err)
{
	if (pgi_password_ok(password))
		return 0;
	return miren_error_set(err, MIREN_EINVAL,
			       "the password of role %s must be 1..1023 bytes without line breaks",
			       role ? role : "");
}

/* Runs initdb into tmp.  Returns 0 or a miren_err with err. */
static enum miren_err run_initdb(const struct pg_install *pg, const char *tmp, const char *pwfile,
				 uid_t uid, gid_t gid, struct miren_error *err)
{
	char *initdb = fs_join(pg->bindir, "initdb");
	char *pwarg = xasprintf("--pwfile=%s", pwfile);
	char *argv[] = { initdb,
			 "-D",
			 (char *)tmp,
			 "-U",
			 PG_SUPERUSER,
			 "--auth-local=scram-sha-256",
			 "--auth-host=scram-sha-256",
			 pwarg,
			 "-E",
			 "UTF8",
			 "--locale=C.UTF-8",
			 "--no-sync",
			 "--no-instructions",
			 NULL };
	char *env[] = { "PATH=/usr/bin:/bin", "TZ=UTC", "LC_ALL=C", NULL };
	char *out = NULL;
	enum miren_err rc = 0;
	int st = sv_run(argv, env, tmp, uid, gid, PG_INITDB_TIMEOUT_MS, &out);
	if (st != 0) {
		char tail[360];
		pgi_output_tail(tail, sizeof(tail), out, 340);
		if (st < 0)
			rc = miren_error_set(err, MIREN_EIO, "initdb did not run to the end: %s",
					     tail);
		else
			rc = miren_error_set(err, MIREN_EIO, "initdb failed (exit %d): %s", st,
					     tail);
		if (out && strstr(out, "ermission denied"))
			miren_error_hint(err,
					 "the service user must be able to reach %s: every "
					 "parent directory needs search (x) permission for it",
					 tmp);
	}
	free(out);
	free(pwarg);
	free(initdb);
	return rc;
}

enum miren_err pg_template_ensure(const struct pg_install *pg, const char *dir,
				  const char *template_password, uid_t uid, gid_t gid,
				  struct miren_error *err)
{
	if (!pg || !dir || !*dir)
		return miren_error_set(err, MIREN_EINVAL, "no postgresql install or template dir");
	if (fs_is_dir(dir))
		return 0;
	if (!pgi_password_ok(template_password))
		return miren_error_set(err, MIREN_EINVAL,
				       "the template password must be 1..1023 bytes without "
				       "line breaks");
	if (geteuid() == 0 && uid == (uid_t)-1) {
		miren_error_set(err, MIREN_EINVAL, "postgresql refuses to run as root");
		miren_error_hint(err, "give a service user (uid/gid) to run initdb as");
		return MIREN_EINVAL;
	}
	if (!pgi_install_ok(pg->bindir)) {
		miren_error_set(err, MIREN_EUNAVAIL, "postgresql %d binaries not found in %s",
				pg->major, pg->bindir);
		miren_error_hint(err, "install the Debian package postgresql-%d", pg->major);
		return MIREN_EUNAVAIL;
	}

	enum miren_err rc = 0;
	char *tmp = xasprintf("%s.tmp", dir);
	char *pwfile = xasprintf("%s.pwfile", dir);
	char *parent_buf = xstrdup(dir);
	char *parent = dirname(parent_buf);
	char *conf = fs_join(tmp, "postgresql.conf");
	char *hba = fs_join(tmp, "pg_hba.conf");
	char *wal = fs_join(tmp, "pg_wal");
	char *lock = xasprintf("%s.lock", dir);
	bool pw_made = false;
	int fd = -1, lock_fd = -1;

	if (fs_mkdir_p(parent, 0755) != 0) {
		rc = miren_error_set(err, MIREN_EIO, "cannot create directory %s: %s", parent,
				     io_strerror(errno));
		goto out;
	}
	/* One maker at a time (threads or processes); the others then find DIR. */
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
	/* A daemon killed while initdb ran leaves initdb's postgres children
	 * writing into tmp for a while: end them before removing it. */
	pg_stop_workers(tmp);
	if (fs_remove_tree(tmp) != 0) {
		rc = miren_error_set(err, MIREN_EIO, "cannot remove the leftover %s: %s", tmp,
				     io_strerror(errno));
		goto out;
	}
	if ((rc = pgi_ensure_dir(tmp, 0700, uid, gid, err)))
		goto out;

	/* The password file: readable by the service user only, removed below. */
	unlink(pwfile);
	fd = open(pwfile, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0) {
		rc = miren_error_set(err, MIREN_EIO, "cannot create %s: %s", pwfile,
				     io_strerror(errno));
		goto out;
	}
	pw_made = true;
	char *line = xasprintf("%s\n", template_password);
	size_t len = strlen(line);
	bool wrote = write(fd, line, len) == (ssize_t)len;
	explicit_bzero(line, len);
	free(line);
	if (!wrote || (pgi_ids_given(uid, gid) && fchown(fd, uid, gid) != 0)) {
		rc = miren_error_set(err, MIREN_EIO, "cannot write %s: %s", pwfile,
				     io_strerror(errno));
		goto out;
	}
	close(fd);
	fd = -1;

	fault_point(PG_FAULT("template:initdb"));
	if ((rc = run_initdb(pg, tmp, pwfile, uid, gid, err)))
		goto out;
	if ((rc = pgi_write_owned(conf, template_conf, 0600, uid, gid, err)) ||
	    (rc = pgi_write_owned(hba, template_hba, 0600, uid, gid, err)))
		goto out;
	if ((rc = pgi_sparsify_dir(wal, err)) || (rc = pgi_sync_fs_of(tmp, err)))
		goto out;
	fault_point(PG_FAULT("template:made"));
	if (rename(tmp, dir) != 0) {
		rc = miren_error_set(err, MIREN_EIO, "cannot rename %s to %s: %s", tmp, dir,
				     io_strerror(errno));
		goto out;
	}
	if (fs_fsync_dir(parent) != 0)
		rc = miren_error_set(err, MIREN_EIO, "cannot fsync directory %s", parent);
out:
	if (fd >= 0)
		close(fd);
	if (pw_made)
		unlink(pwfile);
	if (rc && lock_fd >= 0)
		fs_remove_tree(tmp);
	if (lock_fd >= 0)
		close(lock_fd); /* releases the lock */
	free(lock);
	free(wal);
	free(hba);
	free(conf);
	free(parent_buf);
	free(pwfile);
	free(tmp);
	return rc;
}
