/*
 * PostgreSQL mechanics of the miren-postgresql addon; see pg.h.
 *
 * Contract notes beyond pg.h:
 *  - Templates are made by initdb (--no-sync), then miren replaces
 *    postgresql.conf (a small-idle-server tuning that ends with
 *    "include 'miren-server.conf'") and pg_hba.conf (three/four lines, no
 *    trust), punches holes into the never-written zero tail of the WAL
 *    segment (so clones copy ~28 MB, not ~39 MB), flushes the filesystem
 *    with syncfs() and renames DIR.tmp to DIR.  The template is never
 *    started.  A lock file DIR.lock serialises concurrent makers.
 *  - pg_clone copies the tree itself (copy_file_range, read/write when the
 *    kernel cannot; holes of the source are fallocate()d, so the WAL
 *    segment stays fully allocated), keeping modes, giving every entry to
 *    uid/gid, skipping postmaster.pid/postmaster.opts, then writes
 *    miren-server.conf, flushes with one syncfs() (one journal commit
 *    instead of one fsync per file) and renames pgdata.tmp to pgdata.
 *    When pg_spare_prepare left a spare clone of the template
 *    (TEMPLATE.spare: same cluster, same owner, same filesystem) it is
 *    renamed into place instead of copying.  With an existing pgdata only
 *    miren-server.conf is rewritten (atomically) and the socket directory ensured.
 *  - Superuser connections go over the unix socket with
 *    log_statement=none and log_min_error_statement=panic, so no statement
 *    text (and no password verifier) reaches the server log; notices are
 *    swallowed.
 *  - Tenant names are checked: 1..63 bytes, no control characters, none
 *    of the reserved names of role_reserved/db_reserved (MIREN_EINVAL);
 *    pg_ident_for_app maps every app name around them.
 *  - Error codes of SQL steps: a lost/refused connection is MIREN_EUNAVAIL,
 *    42501 MIREN_EPERM, SQLSTATE classes 53/58 MIREN_EIO, anything else
 *    MIREN_EINTERNAL; messages carry the server's text and SQLSTATE, never
 *    a password.
 */
#include "addon/pg.h"
#include "util/compiler.h"

#include "supervise/supervise.h"
#include "util/err.h"
#include "util/fault.h"
#include "util/fs.h"
#include "util/sha256.h"
#include "util/strbuf.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <libpq-fe.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define PG_LIBDIR "/usr/lib/postgresql"
#define PG_SUPERUSER "postgres"
#define PG_SERVER_CONF "miren-server.conf"
#define PG_INITDB_TIMEOUT_MS 180000
#define PG_READY_POLL_MS 10

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

/* Copies src into dst[len] with runs of whitespace (newlines, tabs) made one
 * space and the ends trimmed: libpq and initdb messages span lines. */
static void one_line(char *dst, size_t len, const char *src)
{
	size_t o = 0;
	bool space = false;
	if (!len)
		return;
	for (const char *p = src ? src : ""; *p && o + 1 < len; p++) {
		if (isspace((unsigned char)*p)) {
			space = o > 0;
			continue;
		}
		if (space && o + 2 < len)
			dst[o++] = ' ';
		space = false;
		dst[o++] = *p;
	}
	dst[o] = '\0';
}

/* The last max bytes of a command's output, on one line. */
static void output_tail(char *dst, size_t len, const char *out, size_t max)
{
	size_t n = out ? strlen(out) : 0;
	one_line(dst, len, n > max ? out + n - max : (out ? out : ""));
}

/* Writes data to path via path.tmp: owned by uid/gid (when given), mode,
 * fsync'd, renamed, directory fsync'd.  Returns 0 or MIREN_EIO with err. */
static int write_owned(const char *path, const char *data, mode_t mode, uid_t uid, gid_t gid,
		       struct miren_error *err)
{
	int rc = 0;
	char *tmp = xasprintf("%s.tmp", path);
	unlink(tmp);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, mode);
	if (fd < 0) {
		rc = miren_error_set(err, MIREN_EIO, "cannot create %s: %s", tmp, errtext(errno));
		goto out;
	}
	size_t left = strlen(data);
	const char *p = data;
	while (left) {
		ssize_t n = write(fd, p, left);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			rc = miren_error_set(err, MIREN_EIO, "cannot write %s: %s", tmp,
					     errtext(errno));
			goto out;
		}
		p += n;
		left -= (size_t)n;
	}
	if (fchmod(fd, mode) != 0 || (ids_given(uid, gid) && fchown(fd, uid, gid) != 0)) {
		rc = miren_error_set(err, MIREN_EIO, "cannot set owner and mode of %s: %s", tmp,
				     errtext(errno));
		goto out;
	}
	if (fsync(fd) != 0) {
		rc = miren_error_set(err, MIREN_EIO, "cannot fsync %s: %s", tmp, errtext(errno));
		goto out;
	}
	close(fd);
	fd = -1;
	if (rename(tmp, path) != 0) {
		rc = miren_error_set(err, MIREN_EIO, "cannot rename %s: %s", tmp, errtext(errno));
		goto out;
	}
	char *d = xstrdup(path);
	if (fs_fsync_dir(dirname(d)) != 0)
		rc = miren_error_set(err, MIREN_EIO, "cannot fsync the directory of %s", path);
	free(d);
out:
	if (fd >= 0)
		close(fd);
	if (rc)
		unlink(tmp);
	free(tmp);
	return rc;
}

/* Flushes the filesystem holding path (syncfs: one journal commit). */
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

/* mkdir path mode (an existing directory is fine), then exact mode and
 * owner, set through a descriptor opened without following symlinks. */
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

/* ---- installs ----------------------------------------------------------- */

static int cmp_install_desc(const void *a, const void *b)
{
	const struct pg_install *x = a, *y = b;
	return (y->major > x->major) - (y->major < x->major);
}

static bool install_ok(const char *bindir)
{
	char path[300];
	snprintf(path, sizeof(path), "%s/postgres", bindir);
	if (access(path, X_OK) != 0)
		return false;
	snprintf(path, sizeof(path), "%s/initdb", bindir);
	return access(path, X_OK) == 0;
}

int pg_find_installs(struct pg_install *out, int max)
{
	/* MIREN_PG_ROOT replaces /usr/lib/postgresql, for tests of a host
	 * without PostgreSQL. */
	const char *root = getenv("MIREN_PG_ROOT");
	if (!root || !*root)
		root = PG_LIBDIR;
	DIR *d = opendir(root);
	if (!d || max <= 0 || !out) {
		if (d)
			closedir(d);
		return 0;
	}
	struct pg_install found[64] = { 0 };
	int n = 0;
	struct dirent *de;
	while ((de = readdir(d)) != NULL && n < (int)(sizeof(found) / sizeof(found[0]))) {
		const char *s = de->d_name;
		if (!*s || strlen(s) > 4 || strspn(s, "0123456789") != strlen(s))
			continue;
		int major = (int)strtol(s, NULL, 10);
		if (major < 10)
			continue;
		struct pg_install pi = { .major = major };
		snprintf(pi.bindir, sizeof(pi.bindir), "%s/%d/bin", root, major);
		if (install_ok(pi.bindir))
			found[n++] = pi;
	}
	closedir(d);
	qsort(found, (size_t)n, sizeof(found[0]), cmp_install_desc);
	if (n > max)
		n = max;
	memcpy(out, found, (size_t)n * sizeof(found[0]));
	return n;
}

/* ---- leftovers of a dead daemon ------------------------------------------ */

bool pg_process_runs(pid_t pid)
{
	char path[64], buf[512];
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	FILE *f = fopen(path, "re");
	if (!f)
		return false;
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	const char *p = strrchr(buf, ')');
	return p && p[1] == ' ' && p[2] != 'Z' && p[2] != 'X';
}

/* Whether the working directory of process pid is dir or below it. */
static bool works_in(pid_t pid, const char *dir)
{
	char link[64], cwd[4096];
	snprintf(link, sizeof(link), "/proc/%d/cwd", (int)pid);
	ssize_t n = readlink(link, cwd, sizeof(cwd) - 1);
	if (n <= 0)
		return false;
	cwd[n] = '\0';
	size_t len = strlen(dir);
	return !strncmp(cwd, dir, len) && (cwd[len] == '\0' || cwd[len] == '/');
}

int pg_stop_workers(const char *dir_in)
{
	/* /proc shows resolved paths: resolve the parent (dir may not exist). */
	char *copy = xstrdup(dir_in), *copy2 = xstrdup(dir_in);
	char *parent = realpath(dirname(copy), NULL);
	char *dir = parent ? xasprintf("%s/%s", parent, basename(copy2)) : xstrdup(dir_in);
	free(parent);
	free(copy);
	free(copy2);
	int found = 0;
	for (int round = 0; round < 100; round++) { /* up to ~5 s */
		DIR *d = opendir("/proc");
		if (!d)
			break;
		int alive = 0;
		struct dirent *de;
		while ((de = readdir(d)) != NULL) {
			if (strspn(de->d_name, "0123456789") != strlen(de->d_name))
				continue;
			pid_t pid = (pid_t)strtol(de->d_name, NULL, 10);
			if (pid <= 1 || pid == getpid() || !works_in(pid, dir))
				continue;
			if (!pg_process_runs(pid))
				continue; /* gone, or exited and waiting to be reaped */
			if (round == 0)
				found++;
			kill(pid, SIGKILL);
			alive++;
		}
		closedir(d);
		if (!alive)
			break;
		nap_ms(50);
	}
	free(dir);
	return found;
}

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

static bool password_ok(const char *pw)
{
	return pw && *pw && strlen(pw) < 1024 && !strpbrk(pw, "\r\n");
}

static int sparsify_dir(const char *dir, struct miren_error *err);

/* Runs initdb into tmp.  Returns 0 or a miren_err with err. */
static int run_initdb(const struct pg_install *pg, const char *tmp, const char *pwfile,
		      uid_t uid, gid_t gid, struct miren_error *err)
{
	char *initdb = fs_join(pg->bindir, "initdb");
	char *pwarg = xasprintf("--pwfile=%s", pwfile);
	char *argv[] = { initdb, "-D", (char *)tmp, "-U", PG_SUPERUSER,
			 "--auth-local=scram-sha-256", "--auth-host=scram-sha-256", pwarg,
			 "-E", "UTF8", "--locale=C.UTF-8", "--no-sync", "--no-instructions",
			 NULL };
	char *env[] = { "PATH=/usr/bin:/bin", "TZ=UTC", "LC_ALL=C", NULL };
	char *out = NULL;
	int rc = 0;
	int st = sv_run(argv, env, tmp, uid, gid, PG_INITDB_TIMEOUT_MS, &out);
	if (st != 0) {
		char tail[360];
		output_tail(tail, sizeof(tail), out, 340);
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

int pg_template_ensure(const struct pg_install *pg, const char *dir,
		       const char *template_password, uid_t uid, gid_t gid,
		       struct miren_error *err)
{
	if (!pg || !dir || !*dir)
		return miren_error_set(err, MIREN_EINVAL, "no postgresql install or template dir");
	if (fs_is_dir(dir))
		return 0;
	if (!password_ok(template_password))
		return miren_error_set(err, MIREN_EINVAL,
				       "the template password must be 1..1023 bytes without "
				       "line breaks");
	if (geteuid() == 0 && uid == (uid_t)-1) {
		miren_error_set(err, MIREN_EINVAL, "postgresql refuses to run as root");
		miren_error_hint(err, "give a service user (uid/gid) to run initdb as");
		return MIREN_EINVAL;
	}
	if (!install_ok(pg->bindir)) {
		miren_error_set(err, MIREN_EUNAVAIL, "postgresql %d binaries not found in %s",
				pg->major, pg->bindir);
		miren_error_hint(err, "install the Debian package postgresql-%d", pg->major);
		return MIREN_EUNAVAIL;
	}

	int rc = 0;
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
				     errtext(errno));
		goto out;
	}
	/* One maker at a time (threads or processes); the others then find DIR. */
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
	/* A daemon killed while initdb ran leaves initdb's postgres children
	 * writing into tmp for a while: end them before removing it. */
	pg_stop_workers(tmp);
	if (fs_remove_tree(tmp) != 0) {
		rc = miren_error_set(err, MIREN_EIO, "cannot remove the leftover %s: %s", tmp,
				     errtext(errno));
		goto out;
	}
	if ((rc = ensure_dir(tmp, 0700, uid, gid, err)))
		goto out;

	/* The password file: readable by the service user only, removed below. */
	unlink(pwfile);
	fd = open(pwfile, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0) {
		rc = miren_error_set(err, MIREN_EIO, "cannot create %s: %s", pwfile,
				     errtext(errno));
		goto out;
	}
	pw_made = true;
	char *line = xasprintf("%s\n", template_password);
	size_t len = strlen(line);
	bool wrote = write(fd, line, len) == (ssize_t)len;
	explicit_bzero(line, len);
	free(line);
	if (!wrote || (ids_given(uid, gid) && fchown(fd, uid, gid) != 0)) {
		rc = miren_error_set(err, MIREN_EIO, "cannot write %s: %s", pwfile,
				     errtext(errno));
		goto out;
	}
	close(fd);
	fd = -1;

	fault_point("template:initdb");
	if ((rc = run_initdb(pg, tmp, pwfile, uid, gid, err)))
		goto out;
	if ((rc = write_owned(conf, template_conf, 0600, uid, gid, err)) ||
	    (rc = write_owned(hba, template_hba, 0600, uid, gid, err)))
		goto out;
	if ((rc = sparsify_dir(wal, err)) || (rc = sync_fs_of(tmp, err)))
		goto out;
	fault_point("template:made");
	if (rename(tmp, dir) != 0) {
		rc = miren_error_set(err, MIREN_EIO, "cannot rename %s to %s: %s", tmp, dir,
				     errtext(errno));
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

/* ---- clone -------------------------------------------------------------- */

struct copy_ctx {
	uid_t uid;
	gid_t gid;
	char rel[4096]; /* path below the template, for messages */
	struct miren_error *err;
};

static int copy_fail(struct copy_ctx *c, const char *what, const char *name)
{
	return miren_error_set(c->err, MIREN_EIO, "cannot %s %s%s%s: %s", what, c->rel,
			       *c->rel ? "/" : "", name, errtext(errno));
}

/* Copies len bytes at off of sfd to the same offset of dfd.  Returns 0 or
 * -1 (errno set). */
static int copy_range(int sfd, int dfd, off_t off, off_t len)
{
	off_t in = off, out = off, end = off + len;
	bool plain = false;
	while (in < end) {
		if (!plain) {
			ssize_t n = copy_file_range(sfd, &in, dfd, &out, (size_t)(end - in), 0);
			if (n > 0)
				continue;
			if (n == 0)
				return 0; /* the source shrank: nothing more to copy */
			if (errno == EINTR)
				continue;
			if (errno != EXDEV && errno != ENOSYS && errno != EINVAL &&
			    errno != EOPNOTSUPP && errno != EPERM)
				return -1;
			plain = true; /* the kernel cannot: read and write */
		}
		char buf[65536];
		size_t want = end - in < (off_t)sizeof(buf) ? (size_t)(end - in) : sizeof(buf);
		ssize_t n = pread(sfd, buf, want, in);
		if (n == 0)
			return 0;
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		for (ssize_t done = 0; done < n;) {
			ssize_t w = pwrite(dfd, buf + done, (size_t)(n - done), out);
			if (w < 0 && errno == EINTR)
				continue;
			if (w < 0)
				return -1;
			done += w;
			out += w;
		}
		in += n;
	}
	return 0;
}

/* Allocates [off, off+len) of fd as zeros without writing them when the
 * filesystem can (so a later write cannot fail for lack of space, which
 * PostgreSQL expects of WAL segments), else writes zeros. */
static int zero_range(int fd, off_t off, off_t len)
{
	if (fallocate(fd, 0, off, len) == 0)
		return 0;
	if (errno != EOPNOTSUPP && errno != ENOSYS)
		return -1;
	static const char zeros[65536];
	while (len > 0) {
		size_t n = len < (off_t)sizeof(zeros) ? (size_t)len : sizeof(zeros);
		ssize_t w = pwrite(fd, zeros, n, off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -1;
		off += w;
		len -= w;
	}
	return 0;
}

/* Copies a regular file of st_size bytes.  Holes of a sparse source (the
 * template's WAL tail) are allocated, not copied.  Returns 0 or -1. */
static int copy_file(int sfd, int dfd, const struct stat *st)
{
	off_t size = st->st_size;
	if (size == 0)
		return 0;
	if ((off_t)st->st_blocks * 512 >= size)
		return copy_range(sfd, dfd, 0, size);
	off_t pos = 0;
	while (pos < size) {
		off_t data = lseek(sfd, pos, SEEK_DATA);
		if (data < 0 && errno != ENXIO)
			return copy_range(sfd, dfd, pos, size - pos); /* no SEEK_DATA */
		if (data < 0 || data > size)
			data = size;
		if (data > pos && zero_range(dfd, pos, data - pos) != 0)
			return -1;
		if (data >= size)
			break;
		off_t hole = lseek(sfd, data, SEEK_HOLE);
		if (hole < 0 || hole > size)
			hole = size;
		if (copy_range(sfd, dfd, data, hole - data) != 0)
			return -1;
		pos = hole;
	}
	return ftruncate(dfd, size);
}

/* Punches holes into the all-zero 64 KiB blocks of the regular files in
 * directory dir (the never-written tail of initdb's WAL segment), so clones
 * need not copy them.  Best effort: a filesystem without hole punching
 * keeps the zeros.  Returns 0 or MIREN_EIO with err. */
static int sparsify_dir(const char *dir, struct miren_error *err)
{
	DIR *d = opendir(dir);
	if (!d)
		return miren_error_set(err, MIREN_EIO, "cannot open %s: %s", dir, errtext(errno));
	int rc = 0;
	char *buf = xmalloc(65536);
	struct dirent *de;
	while (!rc && (de = readdir(d)) != NULL) {
		struct stat st;
		if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0 ||
		    !S_ISREG(st.st_mode))
			continue;
		int fd = openat(dirfd(d), de->d_name, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
		if (fd < 0) {
			rc = miren_error_set(err, MIREN_EIO, "cannot open %s/%s: %s", dir,
					     de->d_name, errtext(errno));
			break;
		}
		off_t off = 0;
		for (;;) {
			ssize_t n = pread(fd, buf, 65536, off);
			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0)
				break;
			bool zero = buf[0] == 0 && memcmp(buf, buf + 1, (size_t)n - 1) == 0;
			if (zero && n == 65536 &&
			    fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, off, n) != 0)
				break; /* not supported here: keep the zeros */
			off += n;
		}
		if (fsync(fd) != 0)
			rc = miren_error_set(err, MIREN_EIO, "cannot fsync %s/%s: %s", dir,
					     de->d_name, errtext(errno));
		close(fd);
	}
	free(buf);
	closedir(d);
	return rc;
}

/* Sets owner (when given) and the exact mode on fd. */
static int own_fd(struct copy_ctx *c, int fd, mode_t mode)
{
	if (ids_given(c->uid, c->gid) && fchown(fd, c->uid, c->gid) != 0)
		return -1;
	return fchmod(fd, mode & 07777);
}

static int copy_dir(struct copy_ctx *c, int sdir, int ddir, bool top);

static int copy_entry(struct copy_ctx *c, int sdir, int ddir, const char *name)
{
	struct stat st;
	if (fstatat(sdir, name, &st, AT_SYMLINK_NOFOLLOW) != 0)
		return copy_fail(c, "stat", name);
	if (S_ISREG(st.st_mode)) {
		int rc = 0;
		int sfd = openat(sdir, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
		if (sfd < 0)
			return copy_fail(c, "open", name);
		int dfd = openat(ddir, name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW,
				 0600);
		if (dfd < 0)
			rc = copy_fail(c, "create the copy of", name);
		else if (copy_file(sfd, dfd, &st) != 0)
			rc = copy_fail(c, "copy", name);
		else if (own_fd(c, dfd, st.st_mode) != 0)
			rc = copy_fail(c, "set owner and mode of the copy of", name);
		if (dfd >= 0 && close(dfd) != 0 && !rc)
			rc = copy_fail(c, "write the copy of", name);
		close(sfd);
		return rc;
	}
	if (S_ISDIR(st.st_mode)) {
		if (mkdirat(ddir, name, 0700) != 0)
			return copy_fail(c, "create the copy of", name);
		int sfd = openat(sdir, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
		if (sfd < 0)
			return copy_fail(c, "open", name);
		int dfd = openat(ddir, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
		if (dfd < 0) {
			int rc = copy_fail(c, "open the copy of", name);
			close(sfd);
			return rc;
		}
		size_t old = strlen(c->rel);
		snprintf(c->rel + old, sizeof(c->rel) - old, "%s%s", old ? "/" : "", name);
		int rc = copy_dir(c, sfd, dfd, false); /* closes sfd */
		c->rel[old] = '\0';
		if (!rc && own_fd(c, dfd, st.st_mode) != 0)
			rc = copy_fail(c, "set owner and mode of the copy of", name);
		close(dfd);
		return rc;
	}
	if (S_ISLNK(st.st_mode)) {
		char target[4096];
		ssize_t n = readlinkat(sdir, name, target, sizeof(target) - 1);
		if (n < 0)
			return copy_fail(c, "read the link", name);
		target[n] = '\0';
		if (symlinkat(target, ddir, name) != 0)
			return copy_fail(c, "create the copy of", name);
		if (ids_given(c->uid, c->gid) &&
		    fchownat(ddir, name, c->uid, c->gid, AT_SYMLINK_NOFOLLOW) != 0)
			return copy_fail(c, "set the owner of the copy of", name);
		return 0;
	}
	return miren_error_set(c->err, MIREN_EIO, "cannot copy %s%s%s: not a file, directory "
			       "or symbolic link", c->rel, *c->rel ? "/" : "", name);
}

/* Copies every entry of directory sdir into ddir; closes sdir. */
static int copy_dir(struct copy_ctx *c, int sdir, int ddir, bool top)
{
	DIR *d = fdopendir(sdir);
	if (!d) {
		int rc = copy_fail(c, "read directory", "");
		close(sdir);
		return rc;
	}
	int rc = 0;
	struct dirent *de;
	errno = 0;
	while (!rc && (de = readdir(d)) != NULL) {
		const char *n = de->d_name;
		if (!strcmp(n, ".") || !strcmp(n, ".."))
			continue;
		if (top && (!strcmp(n, "postmaster.pid") || !strcmp(n, "postmaster.opts") ||
			    !strcmp(n, PG_SERVER_CONF)))
			continue;
		rc = copy_entry(c, dirfd(d), ddir, n);
		errno = 0;
	}
	if (!rc && errno != 0)
		rc = copy_fail(c, "read directory", "");
	closedir(d);
	return rc;
}

/* Copies the tree src into the new directory dst (mode of src). */
static int copy_tree(const char *src, const char *dst, uid_t uid, gid_t gid,
		     struct miren_error *err)
{
	struct copy_ctx *c = xcalloc(1, sizeof(*c));
	c->uid = uid;
	c->gid = gid;
	c->err = err;
	int rc = 0, sfd = -1, dfd = -1;
	struct stat st;
	sfd = open(src, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (sfd < 0 || fstat(sfd, &st) != 0) {
		rc = miren_error_set(err, MIREN_EIO, "cannot open the template %s: %s", src,
				     errtext(errno));
		goto out;
	}
	if (mkdir(dst, 0700) != 0 ||
	    (dfd = open(dst, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW)) < 0) {
		rc = miren_error_set(err, MIREN_EIO, "cannot create directory %s: %s", dst,
				     errtext(errno));
		goto out;
	}
	rc = copy_dir(c, sfd, dfd, true);
	sfd = -1; /* closed by copy_dir */
	if (!rc && own_fd(c, dfd, st.st_mode) != 0)
		rc = miren_error_set(err, MIREN_EIO, "cannot set owner and mode of %s: %s", dst,
				     errtext(errno));
out:
	if (sfd >= 0)
		close(sfd);
	if (dfd >= 0)
		close(dfd);
	free(c);
	return rc;
}

/* A single-quoted postgresql.conf string. Caller frees. */
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

static char *spare_path(const char *template_dir)
{
	return xasprintf("%s.spare", template_dir);
}

/*
 * Moves the template's spare clone to dst when it is one of this template
 * (same system identifier), owned as wanted, and on dst's filesystem.
 * Returns whether it did; on false nothing changed.
 */
static bool take_spare(const char *template_dir, const char *dst, uid_t uid, gid_t gid)
{
	char *spare = spare_path(template_dir);
	bool taken = false;
	struct stat st;
	if (lstat(spare, &st) != 0 || !S_ISDIR(st.st_mode))
		goto out;
	uid_t want_uid = uid != (uid_t)-1 ? uid : geteuid();
	if (st.st_uid != want_uid || (gid != (gid_t)-1 && st.st_gid != gid))
		goto out;
	uint64_t id = cluster_id(template_dir);
	if (!id || cluster_id(spare) != id)
		goto out;
	if (rename(spare, dst) != 0)
		goto out; /* another filesystem, or another clone took it first */
	taken = true;
	char *parent = xstrdup(template_dir);
	fs_fsync_dir(dirname(parent)); /* the spare's old name must not come back */
	free(parent);
out:
	free(spare);
	return taken;
}

int pg_spare_prepare(const char *template_dir, uid_t uid, gid_t gid, struct miren_error *err)
{
	if (!template_dir || !*template_dir)
		return miren_error_set(err, MIREN_EINVAL, "no template dir");
	char *version = fs_join(template_dir, "PG_VERSION");
	char *spare = spare_path(template_dir);
	char *tmp = xasprintf("%s.tmp", spare);
	char *lock = xasprintf("%s.lock", spare);
	char *parent = xstrdup(template_dir);
	int rc = 0, lock_fd = -1;
	if (!fs_exists(version)) {
		rc = miren_error_set(err, MIREN_ENOTFOUND,
				     "template %s is not a postgresql cluster", template_dir);
		goto out;
	}
	uint64_t id = cluster_id(template_dir);
	if (fs_is_dir(spare) && cluster_id(spare) == id)
		goto out;
	/* One preparer at a time; a second one has nothing to do. */
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
	if (fs_is_dir(spare)) {
		if (cluster_id(spare) == id)
			goto out; /* made meanwhile */
		if (fs_remove_tree(spare) != 0) { /* of an earlier template */
			rc = miren_error_set(err, MIREN_EIO, "cannot remove the stale %s", spare);
			goto out;
		}
	}
	if (fs_remove_tree(tmp) != 0) {
		rc = miren_error_set(err, MIREN_EIO, "cannot remove the leftover %s", tmp);
		goto out;
	}
	fault_point("spare:copying");
	if ((rc = copy_tree(template_dir, tmp, uid, gid, err)) || (rc = sync_fs_of(tmp, err)))
		goto out;
	if (rename(tmp, spare) != 0) {
		rc = miren_error_set(err, MIREN_EIO, "cannot rename %s to %s: %s", tmp, spare,
				     errtext(errno));
		goto out;
	}
	if (fs_fsync_dir(dirname(parent)) != 0)
		rc = miren_error_set(err, MIREN_EIO, "cannot fsync the directory of %s", spare);
out:
	if (rc && lock_fd >= 0)
		fs_remove_tree(tmp);
	if (lock_fd >= 0)
		close(lock_fd);
	free(parent);
	free(lock);
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
static int ensure_socket_base(struct miren_error *err)
{
	char *base = socket_base();
	int rc = 0;
	struct stat st;
	if (mkdir(base, 0711) != 0 && errno != EEXIST)
		rc = miren_error_set(err, MIREN_EIO, "cannot create %s: %s", base, errtext(errno));
	else if (lstat(base, &st) != 0 || !S_ISDIR(st.st_mode) || st.st_uid != geteuid())
		rc = miren_error_set(err, MIREN_EPERM,
				     "%s is not a directory of this user; refusing to put "
				     "database sockets there", base);
	else if ((st.st_mode & 0777) != 0711)
		chmod(base, 0711);
	free(base);
	return rc;
}

int pg_socket_dir_ensure(const char *disk_dir, uid_t uid, gid_t gid, struct miren_error *err)
{
	char *run = pg_socket_dir(disk_dir);
	int rc = ensure_socket_base(err);
	if (!rc)
		rc = ensure_dir(run, 0700, uid, gid, err);
	free(run);
	return rc;
}

int pg_clone(const char *template_dir, const char *disk_dir, const char *address, int port,
	     uid_t uid, gid_t gid, struct miren_error *err)
{
	unsigned char addr_buf[16];
	if (!template_dir || !disk_dir || disk_dir[0] != '/')
		return miren_error_set(err, MIREN_EINVAL, "the disk directory must be an "
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
	int rc = 0;
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
				     errtext(errno));
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
			rc = write_owned(conf_path, conf, 0600, uid, gid, err);
		goto out;
	}
	if (fs_remove_tree(tmp) != 0) {
		rc = miren_error_set(err, MIREN_EIO, "cannot remove the leftover %s", tmp);
		goto out;
	}
	/* A spare (flushed when it was made) only needs the settings file. */
	bool spare = take_spare(template_dir, tmp, uid, gid);
	if (!spare)
		fault_point("clone:copying");
	if (!spare && (rc = copy_tree(template_dir, tmp, uid, gid, err)))
		goto out;
	conf_path = fs_join(tmp, PG_SERVER_CONF);
	if ((rc = write_owned(conf_path, conf, 0600, uid, gid, err)))
		goto out;
	if (!spare && (rc = sync_fs_of(tmp, err)))
		goto out;
	fault_point("clone:copied");
	if (rename(tmp, pgdata) != 0) {
		rc = miren_error_set(err, MIREN_EIO, "cannot rename %s to %s: %s", tmp, pgdata,
				     errtext(errno));
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

char **pg_server_argv(const struct pg_install *pg, const char *disk_dir)
{
	char **argv = xcalloc(4, sizeof(*argv));
	argv[0] = fs_join(pg->bindir, "postgres");
	argv[1] = xstrdup("-D");
	argv[2] = fs_join(disk_dir, "pgdata");
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

/* ---- connections and SQL ------------------------------------------------ */

static void quiet_notice(void *arg MIREN_UNUSED, const char *message MIREN_UNUSED)
{
}

/* application_name of the sessions of each kind of work: a session of a
 * dead daemon still running its statement is found by it (see
 * end_leftovers). */
#define APP_MIREN "miren"
#define APP_TENANT "miren-tenant"
#define APP_SPARE "miren-spare"

/*
 * Connects as the superuser over the unix socket to dbname, as
 * application_name appname.  Returns the connection, or NULL with the
 * (one-line, secret-free) reason in why.  *used_password tells whether the
 * server got as far as asking for it.
 */
static PGconn *su_connect(const char *disk_dir, int port, const char *password,
			  const char *dbname, const char *appname, int timeout_s, char *why,
			  size_t whylen, bool *used_password)
{
	char *host = pg_socket_dir(disk_dir);
	char port_s[16], timeout[16];
	snprintf(port_s, sizeof(port_s), "%d", port);
	snprintf(timeout, sizeof(timeout), "%d", timeout_s < 2 ? 2 : timeout_s);
	const char *keys[] = { "host", "port", "user", "dbname", "password",
			       "connect_timeout", "application_name", "sslmode", "gssencmode",
			       "options", "client_encoding", NULL };
	const char *vals[] = { host, port_s, PG_SUPERUSER, dbname, password ? password : "",
			       timeout, appname, "disable", "disable",
			       "-c log_statement=none -c log_min_error_statement=panic",
			       "UTF8", NULL };
	PGconn *c = PQconnectdbParams(keys, vals, 0);
	free(host);
	if (used_password)
		*used_password = c && PQconnectionUsedPassword(c);
	if (c && PQstatus(c) == CONNECTION_OK) {
		PQsetNoticeProcessor(c, quiet_notice, NULL);
		return c;
	}
	one_line(why, whylen, c ? PQerrorMessage(c) : "out of memory");
	PQfinish(c);
	return NULL;
}

static bool auth_failed(const char *why)
{
	return strstr(why, "password authentication failed") != NULL;
}

/* Maps a failed result (or connection) to a miren_err. */
static enum miren_err sql_code(PGconn *c, const char *state)
{
	if (PQstatus(c) != CONNECTION_OK || !state || !strncmp(state, "08", 2) ||
	    !strncmp(state, "57P", 3))
		return MIREN_EUNAVAIL;
	if (!strcmp(state, "42501"))
		return MIREN_EPERM;
	if (!strncmp(state, "53", 2) || !strncmp(state, "58", 2))
		return MIREN_EIO;
	return MIREN_EINTERNAL;
}

/*
 * Runs sql (one statement, or several in an implicit transaction).  A
 * SQLSTATE listed in ok (NULL-terminated) counts as success; *state_out
 * (if given) receives the SQLSTATE of a failure or "".  Returns 0 or a
 * miren_err with err "cannot <what>: ...".
 */
static int run_sql_at(PGconn *c, const char *sql, const char *const *ok, const char *what,
		      char state_out[6], const char *fault, struct miren_error *err);

static int run_sql(PGconn *c, const char *sql, const char *const *ok, const char *what,
		   char state_out[6], struct miren_error *err)
{
	return run_sql_at(c, sql, ok, what, state_out, NULL, err);
}

/* The same; with fault, the fault point of that name is passed once the
 * statement was sent, before its result is read (a crash there leaves the
 * backend running it).  With fault, sql must be one statement. */
static int run_sql_at(PGconn *c, const char *sql, const char *const *ok, const char *what,
		      char state_out[6], const char *fault, struct miren_error *err)
{
	PGresult *r = NULL;
	if (!fault)
		r = PQexec(c, sql);
	else if (PQsendQuery(c, sql)) {
		fault_point(fault);
		for (PGresult *next; (next = PQgetResult(c)) != NULL;) {
			PQclear(r);
			r = next;
		}
	}
	ExecStatusType st = r ? PQresultStatus(r) : PGRES_FATAL_ERROR;
	if (state_out)
		state_out[0] = '\0';
	if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) {
		PQclear(r);
		return 0;
	}
	const char *state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
	if (state && state_out)
		snprintf(state_out, 6, "%s", state);
	for (const char *const *p = ok; state && p && *p; p++) {
		if (!strcmp(state, *p)) {
			PQclear(r);
			return 0;
		}
	}
	char msg[360];
	const char *primary = r ? PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY) : NULL;
	one_line(msg, sizeof(msg), primary ? primary : PQerrorMessage(c));
	int rc = miren_error_set(err, sql_code(c, state), "cannot %s: %s%s%s%s", what, msg,
				 state ? " (SQLSTATE " : "", state ? state : "", state ? ")" : "");
	PQclear(r);
	return rc;
}

/* An escaped identifier (caller frees with PQfreemem) or NULL with err. */
static char *quote_ident(PGconn *c, const char *name, struct miren_error *err)
{
	char *q = PQescapeIdentifier(c, name, strlen(name));
	if (!q) {
		char msg[300];
		one_line(msg, sizeof(msg), PQerrorMessage(c));
		miren_error_set(err, MIREN_EINVAL, "cannot quote name '%s': %s", name, msg);
	}
	return q;
}

/* The SCRAM verifier of password for role, as an escaped SQL literal
 * (caller frees with free()), or NULL with err. */
static char *verifier_literal(PGconn *c, const char *password, const char *role,
			      struct miren_error *err)
{
	char *v = PQencryptPasswordConn(c, password, role, "scram-sha-256");
	if (!v) {
		char msg[300];
		one_line(msg, sizeof(msg), PQerrorMessage(c));
		miren_error_set(err, MIREN_EINTERNAL, "cannot compute the password verifier for "
				"role %s: %s", role, msg);
		return NULL;
	}
	char *lit = PQescapeLiteral(c, v, strlen(v));
	explicit_bzero(v, strlen(v));
	PQfreemem(v);
	if (!lit) {
		miren_error_set(err, MIREN_EINTERNAL, "cannot quote the password verifier");
		return NULL;
	}
	char *out = xstrdup(lit);
	explicit_bzero(lit, strlen(lit));
	PQfreemem(lit);
	return out;
}

static void free_secret(char *s)
{
	if (s) {
		explicit_bzero(s, strlen(s));
		free(s);
	}
}

/* ---- readiness and superuser password ----------------------------------- */

int pg_wait_ready(const char *disk_dir, int port, const char *password, int timeout_ms,
		  struct miren_error *err)
{
	return pg_wait_ready_or_stop(disk_dir, port, password, timeout_ms, NULL, err);
}

int pg_wait_ready_or_stop(const char *disk_dir, int port, const char *password, int timeout_ms,
			  const atomic_bool *stop, struct miren_error *err)
{
	int64_t deadline = mono_ms() + (timeout_ms > 0 ? timeout_ms : 0);
	char why[400] = "";
	for (;;) {
		int64_t left = deadline - mono_ms();
		bool used_pw = false;
		/* At most 2 s per attempt (the least libpq takes), so a stop
		 * is noticed soon. */
		int slice_s = left > 2000 ? 2 : (int)((left + 999) / 1000);
		PGconn *c = su_connect(disk_dir, port, password, "postgres", APP_MIREN,
				       slice_s, why, sizeof(why), &used_pw);
		if (c) {
			PQfinish(c);
			return 0;
		}
		if (used_pw && auth_failed(why))
			return miren_error_set(err, MIREN_EPERM,
					       "the postgresql server of %s (port %d) rejects the "
					       "superuser password: %s",
					       disk_dir, port, why);
		if (mono_ms() >= deadline)
			break;
		if (stop && atomic_load(stop))
			return miren_error_set(err, MIREN_EUNAVAIL,
					       "stopped waiting for the postgresql server of %s "
					       "(port %d): the daemon stops", disk_dir, port);
		nap_ms(PG_READY_POLL_MS);
	}
	return miren_error_set(err, MIREN_EUNAVAIL,
			       "the postgresql server of %s (port %d) is not ready after %d ms: %s",
			       disk_dir, port, timeout_ms, why);
}

int pg_rotate_superuser(const char *disk_dir, int port, const char *old_password,
			const char *new_password, struct miren_error *err)
{
	if (!password_ok(new_password))
		return miren_error_set(err, MIREN_EINVAL,
				       "the new superuser password must be 1..1023 bytes "
				       "without line breaks");
	char why[400] = "";
	PGconn *c = su_connect(disk_dir, port, old_password, "postgres", APP_MIREN, 10, why, sizeof(why),
			       NULL);
	if (!c) {
		/* A retried rotation: the new password may be in place already. */
		c = su_connect(disk_dir, port, new_password, "postgres", APP_MIREN, 10, why, sizeof(why),
			       NULL);
		if (!c)
			return miren_error_set(err, MIREN_EUNAVAIL,
					       "cannot connect to the postgresql server of %s (port %d) "
					       "as superuser with the old or the new password: %s",
					       disk_dir, port, why);
	}
	int rc = 0;
	char *sql = NULL;
	char *lit = verifier_literal(c, new_password, PG_SUPERUSER, err);
	if (!lit) {
		rc = err ? err->code : MIREN_EINTERNAL;
		goto out;
	}
	sql = xasprintf("ALTER ROLE " PG_SUPERUSER " PASSWORD %s", lit);
	rc = run_sql(c, sql, NULL, "set the superuser password", NULL, err);
out:
	free_secret(sql);
	free_secret(lit);
	PQfinish(c);
	return rc;
}

/* ---- tenants ------------------------------------------------------------ */

static int check_name(const char *name, const char *what, struct miren_error *err)
{
	if (!name || !*name || strlen(name) > 63)
		return miren_error_set(err, MIREN_EINVAL, "%s name must be 1..63 bytes", what);
	for (const char *p = name; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			return miren_error_set(err, MIREN_EINVAL,
					       "%s name has a control character", what);
	return 0;
}

/*
 * The names PostgreSQL (or miren) keeps for itself: one list for the refusal
 * in check_tenant and for the mapping in pg_ident_for_app, so that no app
 * name maps to a name refused here.  Roles: CREATE ROLE refuses "public" and
 * "none" even quoted; current_user, current_role and session_user name the
 * session's role wherever a role is written unquoted (GRANT ... TO, OWNER
 * TO), so a tenant never gets them; "pg_..." is reserved; "postgres" is our
 * superuser.  Databases: postgres, the templates and our spares.  Every other
 * keyword (user, table, select, all...) is an ordinary name here, as every
 * statement quotes its identifiers (test_pg creates a tenant for each).
 */
static bool role_reserved(const char *role)
{
	static const char *const bad[] = { "postgres", "public", "none", "current_user",
					   "current_role", "session_user", NULL };
	for (const char *const *p = bad; *p; p++)
		if (!strcmp(role, *p))
			return true;
	return !strncmp(role, "pg_", 3);
}

static bool db_reserved(const char *db)
{
	return !strcmp(db, "postgres") || !strcmp(db, "template0") || !strcmp(db, "template1") ||
	       !strncmp(db, PG_SPARE_DB, strlen(PG_SPARE_DB));
}

static int check_tenant(const char *role, const char *db, struct miren_error *err)
{
	int rc;
	if ((rc = check_name(role, "role", err)) || (rc = check_name(db, "database", err)))
		return rc;
	if (role_reserved(role))
		return miren_error_set(err, MIREN_EINVAL, "role name '%s' is reserved", role);
	if (db_reserved(db))
		return miren_error_set(err, MIREN_EINVAL, "database name '%s' is reserved", db);
	return 0;
}

/* Connects as superuser for a tenant step (application_name appname);
 * MIREN_EUNAVAIL with err. */
static PGconn *tenant_connect(const char *disk_dir, int port, const char *su_password,
			      const char *dbname, const char *appname, struct miren_error *err)
{
	char why[400] = "";
	PGconn *c = su_connect(disk_dir, port, su_password, dbname, appname, 10, why,
			       sizeof(why), NULL);
	if (!c)
		miren_error_set(err, MIREN_EUNAVAIL,
				"cannot connect to the postgresql server of %s (port %d) as superuser: %s",
				disk_dir, port, why);
	return c;
}

/*
 * Ends the sessions of appname on the server other than c's own, waiting
 * up to 10 s for each: the steps that use appname run one at a time, so
 * another such session is a leftover of a dead daemon, perhaps still
 * running a CREATE DATABASE or a rename whose outcome the next statement
 * must see.  An ended session's transaction is rolled back.  Returns 0, or
 * MIREN_EUNAVAIL with err when one did not end in time.
 */
static int end_leftovers(PGconn *c, const char *appname, struct miren_error *err)
{
	const char *params[] = { appname };
	PGresult *r = PQexecParams(c,
				   "SELECT count(*) FILTER (WHERE NOT pg_terminate_backend(pid, 10000))"
				   " FROM pg_stat_activity"
				   " WHERE application_name = $1 AND pid <> pg_backend_pid()",
				   1, NULL, params, NULL, NULL, 0);
	int rc = 0;
	if (!r || PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1) {
		char msg[300];
		one_line(msg, sizeof(msg), PQerrorMessage(c));
		rc = miren_error_set(err, MIREN_EUNAVAIL,
				     "cannot end the sessions a stopped miren left: %s", msg);
	} else if (strcmp(PQgetvalue(r, 0, 0), "0") != 0) {
		rc = miren_error_set(err, MIREN_EUNAVAIL,
				     "%s sessions a stopped miren left are still running after 10 s",
				     PQgetvalue(r, 0, 0));
	}
	PQclear(r);
	return rc;
}

/* The one value of a one-row, one-column query, or NULL with err. */
static char *query_value(PGconn *c, const char *sql, const char *what, struct miren_error *err)
{
	PGresult *r = PQexec(c, sql);
	char *out = NULL;
	if (r && PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1 && PQnfields(r) >= 1)
		out = xstrdup(PQgetvalue(r, 0, 0));
	else {
		char msg[360];
		one_line(msg, sizeof(msg), PQerrorMessage(c));
		miren_error_set(err, MIREN_EUNAVAIL, "cannot %s: %s", what, msg);
	}
	PQclear(r);
	return out;
}

int pg_tenant_create(const char *disk_dir, int port, const char *su_password, const char *role,
		     const char *db, const char *password, struct miren_error *err)
{
	/* 23505: the same name inserted by a concurrent session (a leftover
	 * that committed after end_leftovers looked): the same as existing. */
	static const char *const dup_role[] = { "42710", "23505", NULL };
	static const char *const dup_db[] = { "42P04", "23505", NULL };
	int rc;
	if ((rc = check_tenant(role, db, err)))
		return rc;
	if (!password_ok(password))
		return miren_error_set(err, MIREN_EINVAL,
				       "the password of role %s must be 1..1023 bytes without "
				       "line breaks", role);
	PGconn *c = tenant_connect(disk_dir, port, su_password, "postgres", APP_TENANT, err);
	if (!c)
		return MIREN_EUNAVAIL;
	char *qrole = NULL, *qdb = NULL, *lit = NULL, *sql = NULL;
	char state[6];

	if ((rc = end_leftovers(c, APP_TENANT, err)))
		goto out;
	if (!(qrole = quote_ident(c, role, err)) || !(qdb = quote_ident(c, db, err)) ||
	    !(lit = verifier_literal(c, password, role, err))) {
		rc = err ? err->code : MIREN_EINTERNAL;
		goto out;
	}
	static const char attrs[] =
		"LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS";
	sql = xasprintf("CREATE ROLE %s %s PASSWORD %s", qrole, attrs, lit);
	rc = run_sql(c, sql, NULL, "create the role", state, err);
	free_secret(sql);
	sql = NULL;
	if (rc && (!strcmp(state, dup_role[0]) || !strcmp(state, dup_role[1]))) {
		sql = xasprintf("ALTER ROLE %s %s PASSWORD %s", qrole, attrs, lit);
		rc = run_sql(c, sql, NULL, "update the existing role", NULL, err);
		free_secret(sql);
		sql = NULL;
	}
	if (rc)
		goto out;
	fault_point("tenant:role");

	/* A spare database made ahead of time (pg_spare_db_ensure) becomes the
	 * tenant's by a rename, which is instant; CREATE DATABASE copies
	 * template1 and syncs it.  Without a spare: create one. */
	char *spare = query_value(c, "SELECT coalesce(min(datname), '') FROM pg_database"
				     " WHERE datname LIKE '" PG_SPARE_DB "\\_%'",
				  "look for a spare database", NULL);
	rc = MIREN_ENOTFOUND;
	if (spare && *spare) {
		char *qspare = quote_ident(c, spare, NULL);
		sql = qspare ? xasprintf("ALTER DATABASE %s RENAME TO %s", qspare, qdb) : NULL;
		rc = sql ? run_sql_at(c, sql, NULL, "take the spare database", state,
				      "tenant:database", NULL)
			 : MIREN_EINTERNAL;
		PQfreemem(qspare);
		free(sql);
		sql = NULL;
	}
	free(spare);
	if (rc == 0) {
		sql = xasprintf("ALTER DATABASE %s OWNER TO %s", qdb, qrole);
		rc = run_sql(c, sql, NULL, "give the database to its role", NULL, err);
		free(sql);
		sql = NULL;
		if (rc)
			goto out;
	} else {
		/* CREATE DATABASE cannot run in a transaction block: alone. */
		sql = xasprintf("CREATE DATABASE %s OWNER %s", qdb, qrole);
		rc = run_sql_at(c, sql, NULL, "create the database", state, "tenant:database",
				err);
		free(sql);
		sql = NULL;
	}
	if (rc && (!strcmp(state, dup_db[0]) || !strcmp(state, dup_db[1]))) {
		sql = xasprintf("ALTER DATABASE %s OWNER TO %s", qdb, qrole);
		rc = run_sql(c, sql, NULL, "set the owner of the existing database", NULL, err);
		free(sql);
		sql = NULL;
	}
	if (rc)
		goto out;

	/* template1 too: PUBLIC may connect to it by default. */
	sql = xasprintf("REVOKE CONNECT, TEMPORARY ON DATABASE %s FROM PUBLIC; "
			"GRANT CONNECT, TEMPORARY ON DATABASE %s TO %s; "
			"REVOKE CONNECT, TEMPORARY ON DATABASE postgres FROM PUBLIC; "
			"REVOKE CONNECT, TEMPORARY ON DATABASE template1 FROM PUBLIC",
			qdb, qdb, qrole);
	if ((rc = run_sql(c, sql, NULL, "set the database privileges", NULL, err)))
		goto out;

	/* Since PostgreSQL 15 PUBLIC has no CREATE on schema public of a new
	 * database (it belongs to pg_database_owner); older ones need a REVOKE
	 * inside the database. */
	if (PQserverVersion(c) < 150000) {
		PQfinish(c);
		if (!(c = tenant_connect(disk_dir, port, su_password, db, APP_TENANT, err))) {
			rc = MIREN_EUNAVAIL;
			goto out;
		}
		rc = run_sql(c, "REVOKE CREATE ON SCHEMA public FROM PUBLIC", NULL,
			     "revoke create on schema public", NULL, err);
	}
out:
	free(sql);
	free_secret(lit);
	PQfreemem(qdb);
	PQfreemem(qrole);
	PQfinish(c);
	return rc;
}

/* DROP OWNED BY role in every database that takes connections, so the role
 * can be dropped after other databases granted it something. */
static int drop_owned_everywhere(PGconn *c, const char *disk_dir, int port,
				 const char *su_password, const char *qrole,
				 struct miren_error *err)
{
	static const char *const undef_role[] = { "42704", NULL };
	PGresult *r = PQexec(c, "SELECT datname FROM pg_database WHERE datallowconn");
	if (PQresultStatus(r) != PGRES_TUPLES_OK || PQnfields(r) != 1) {
		char msg[300];
		one_line(msg, sizeof(msg), PQerrorMessage(c));
		PQclear(r);
		return miren_error_set(err, sql_code(c, NULL), "cannot list the databases: %s",
				       msg);
	}
	int rc = 0;
	char *sql = xasprintf("DROP OWNED BY %s", qrole);
	for (int i = 0; i < PQntuples(r) && !rc; i++) {
		PGconn *dc = tenant_connect(disk_dir, port, su_password, PQgetvalue(r, i, 0),
					    APP_TENANT, err);
		if (!dc) {
			rc = MIREN_EUNAVAIL;
			break;
		}
		rc = run_sql(dc, sql, undef_role, "drop what the role owns", NULL, err);
		PQfinish(dc);
	}
	free(sql);
	PQclear(r);
	return rc;
}

int pg_tenant_drop(const char *disk_dir, int port, const char *su_password, const char *role,
		   const char *db, struct miren_error *err)
{
	static const char *const undef_db[] = { "3D000", NULL };
	static const char *const undef_role[] = { "42704", NULL };
	int rc;
	if ((rc = check_tenant(role, db, err)))
		return rc;
	PGconn *c = tenant_connect(disk_dir, port, su_password, "postgres", APP_TENANT, err);
	if (!c)
		return MIREN_EUNAVAIL;
	char *qrole = NULL, *qdb = NULL, *sql = NULL;
	char state[6];
	if ((rc = end_leftovers(c, APP_TENANT, err)))
		goto out;
	if (!(qrole = quote_ident(c, role, err)) || !(qdb = quote_ident(c, db, err))) {
		rc = err ? err->code : MIREN_EINTERNAL;
		goto out;
	}
	/* WITH (FORCE) ends the sessions on the database itself. */
	sql = xasprintf("DROP DATABASE IF EXISTS %s WITH (FORCE)", qdb);
	if ((rc = run_sql(c, sql, undef_db, "drop the database", NULL, err)))
		goto out;

	/* The role's sessions elsewhere (waiting up to 5 s for each to end). */
	const char *params[] = { role };
	PGresult *r = PQexecParams(c,
				   "SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity "
				   "WHERE usename = $1 AND pid <> pg_backend_pid()",
				   1, NULL, params, NULL, NULL, 0);
	if (PQresultStatus(r) != PGRES_TUPLES_OK) {
		char msg[300];
		one_line(msg, sizeof(msg), PQerrorMessage(c));
		rc = miren_error_set(err, sql_code(c, PQresultErrorField(r, PG_DIAG_SQLSTATE)),
				     "cannot end the sessions of role %s: %s", role, msg);
		PQclear(r);
		goto out;
	}
	PQclear(r);

	free(sql);
	sql = xasprintf("DROP ROLE IF EXISTS %s", qrole);
	rc = run_sql(c, sql, undef_role, "drop the role", state, err);
	if (rc && !strcmp(state, "2BP01")) {
		/* Objects or privileges in other databases depend on it. */
		if ((rc = drop_owned_everywhere(c, disk_dir, port, su_password, qrole, err)))
			goto out;
		rc = run_sql(c, sql, undef_role, "drop the role", NULL, err);
	}
out:
	free(sql);
	PQfreemem(qdb);
	PQfreemem(qrole);
	PQfinish(c);
	return rc;
}

/* ---- names -------------------------------------------------------------- */

int pg_ident_for_app(const char *app, char out[64], struct miren_error *err)
{
	out[0] = '\0';
	size_t n = app ? strlen(app) : 0;
	if (!n || !(app[0] >= 'a' && app[0] <= 'z') || app[n - 1] == '-' ||
	    strspn(app, "abcdefghijklmnopqrstuvwxyz0123456789-") != n)
		return miren_error_set(err, MIREN_EINVAL,
				       "app name '%.64s' is not valid for a database name "
				       "(lowercase letters, digits and '-', starting with a "
				       "letter, not ending in '-')",
				       app ? app : "");
	/* The plain mapping ('-' as '_'), and the marked one when the plain
	 * name is one PostgreSQL or miren keeps (see role_reserved). */
	char plain[64];
	size_t i;
	for (i = 0; i < n && i < sizeof(plain) - 1; i++)
		plain[i] = app[i] == '-' ? '_' : app[i];
	plain[i] = '\0';
	bool reserved = role_reserved(plain) || db_reserved(plain);
	if (n > 63)
		return miren_error_set(err, MIREN_EINVAL,
				       "app name '%.64s...' is too long for a postgresql role and "
				       "database name (at most 63 bytes)", app);
	if (!reserved) {
		snprintf(out, 64, "%s", plain);
		return 0;
	}
	if (n + 3 <= 63) {
		snprintf(out, 64, "u_%.60s_", plain); /* n <= 60 here */
		return 0;
	}
	/* A reserved name too long for "u_<name>_" (61..63 characters): its
	 * first 41 bytes, then 16 hex digits of the SHA-256 of the whole app
	 * name, ending in "__", which no "u_<name>_" ends with (names never end
	 * in '_'), so the forms stay apart; 64 bits keep a made-up name from
	 * reaching another app's role. */
	char hex[65];
	sha256_hex(app, n, hex);
	snprintf(out, 64, "u_%.41s_%.16s__", plain, hex);
	return 0;
}

int pg_spare_db_ensure(const char *disk_dir, int port, const char *su_password, int count,
		       struct miren_error *err)
{
	static const char *const dup_db[] = { "42P04", "23505", NULL };
	PGconn *c = tenant_connect(disk_dir, port, su_password, "postgres", APP_SPARE, err);
	if (!c)
		return MIREN_EUNAVAIL;
	int rc = end_leftovers(c, APP_SPARE, err);
	for (int i = 0; i < count && !rc; i++) {
		char *sql = xasprintf("SELECT count(*) FROM pg_database WHERE datname = '"
				      PG_SPARE_DB "_%d'", i);
		char *have = query_value(c, sql, "look for a spare database", err);
		free(sql);
		if (!have) {
			rc = MIREN_EUNAVAIL;
			break;
		}
		bool exists = strcmp(have, "0") != 0;
		free(have);
		if (exists)
			continue;
		sql = xasprintf("CREATE DATABASE " PG_SPARE_DB "_%d", i);
		rc = run_sql(c, sql, dup_db, "create a spare database", NULL, err);
		free(sql);
		if (!rc) {
			sql = xasprintf("REVOKE CONNECT, TEMPORARY ON DATABASE " PG_SPARE_DB
					"_%d FROM PUBLIC", i);
			rc = run_sql(c, sql, NULL, "close the spare database", NULL, err);
			free(sql);
		}
	}
	PQfinish(c);
	return rc;
}

/* ---- online backup -------------------------------------------------------- */

struct pg_backup {
	PGconn *conn;
	char start_lsn[32];
};


int pg_backup_begin(const char *disk_dir, int port, const char *su_password,
		    struct pg_backup **out, struct miren_error *err)
{
	*out = NULL;
	PGconn *c = tenant_connect(disk_dir, port, su_password, "postgres", APP_MIREN, err);
	if (!c)
		return MIREN_EUNAVAIL;
	/* A temporary slot keeps every WAL segment from here on until this
	 * session ends, so none the backup needs is recycled while files are
	 * copied; it goes away by itself if the daemon dies. */
	int rc = run_sql(c,
			 "SELECT pg_create_physical_replication_slot('miren_backup_' || pg_backend_pid(),"
			 " true, true)",
			 NULL, "reserve WAL for the backup", NULL, err);
	char *lsn = NULL;
	if (!rc) {
		lsn = query_value(c, "SELECT pg_backup_start('miren', true)::text",
				  "start the online backup", err);
		rc = lsn ? 0 : MIREN_EUNAVAIL;
	}
	if (rc) {
		PQfinish(c);
		return rc;
	}
	struct pg_backup *b = xcalloc(1, sizeof(*b));
	b->conn = c;
	snprintf(b->start_lsn, sizeof(b->start_lsn), "%s", lsn);
	free(lsn);
	*out = b;
	return 0;
}

const char *pg_backup_start_lsn(const struct pg_backup *b)
{
	return b->start_lsn;
}

int pg_backup_end(struct pg_backup *b, char **label, char **stop_lsn, char **stop_walfile,
		  struct miren_error *err)
{
	*label = *stop_lsn = *stop_walfile = NULL;
	/* wait_for_archive = false: there is no WAL archive; the segments go
	 * into the snapshot itself. */
	PGresult *r = PQexec(b->conn, "SELECT lsn::text, labelfile, pg_walfile_name(lsn)"
				      " FROM pg_backup_stop(false)");
	int rc = 0;
	if (r && PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1 && PQnfields(r) == 3) {
		*stop_lsn = xstrdup(PQgetvalue(r, 0, 0));
		*label = xstrdup(PQgetvalue(r, 0, 1));
		*stop_walfile = xstrdup(PQgetvalue(r, 0, 2));
	} else {
		char msg[360];
		one_line(msg, sizeof(msg), PQerrorMessage(b->conn));
		rc = miren_error_set(err, MIREN_EUNAVAIL, "cannot finish the online backup: %s", msg);
	}
	PQclear(r);
	return rc;
}

void pg_backup_free(struct pg_backup *b)
{
	if (!b)
		return;
	PQfinish(b->conn); /* aborts a backup not ended; drops the slot */
	free(b);
}

/* ---- what a server holds, for the invariant checks ---------------------- */

/* The values of the one-column query sql, sorted, or MIREN_EUNAVAIL. */
static int query_column(PGconn *c, const char *sql, const char *what, char ***out, size_t *n,
			struct miren_error *err)
{
	PGresult *r = PQexec(c, sql);
	int rc = 0;
	*out = NULL;
	*n = 0;
	if (r && PQresultStatus(r) == PGRES_TUPLES_OK && PQnfields(r) == 1) {
		*n = (size_t)PQntuples(r);
		*out = xcalloc(*n + 1, sizeof(**out));
		for (size_t i = 0; i < *n; i++)
			(*out)[i] = xstrdup(PQgetvalue(r, (int)i, 0));
	} else {
		char msg[360];
		one_line(msg, sizeof(msg), PQerrorMessage(c));
		rc = miren_error_set(err, MIREN_EUNAVAIL, "cannot %s: %s", what, msg);
	}
	PQclear(r);
	return rc;
}

int pg_tenant_names(const char *disk_dir, int port, const char *su_password, char ***dbs,
		    size_t *n_dbs, char ***roles, size_t *n_roles, struct miren_error *err)
{
	*dbs = *roles = NULL;
	*n_dbs = *n_roles = 0;
	PGconn *c = tenant_connect(disk_dir, port, su_password, "postgres", APP_MIREN, err);
	if (!c)
		return MIREN_EUNAVAIL;
	int rc = query_column(c,
			      "SELECT datname FROM pg_database WHERE datname NOT IN"
			      " ('postgres', 'template0', 'template1') AND datname NOT LIKE '"
			      PG_SPARE_DB "\\_%' ORDER BY 1",
			      "list the databases", dbs, n_dbs, err);
	if (!rc)
		rc = query_column(c,
				  "SELECT rolname FROM pg_roles WHERE rolname !~ '^pg_' AND"
				  " rolname <> '" PG_SUPERUSER "' ORDER BY 1",
				  "list the roles", roles, n_roles, err);
	PQfinish(c);
	return rc;
}

/* ---- restored clusters ----------------------------------------------------- */

/* Recovery replays the WAL of the backup: it may take a while. */
#define PG_TRIAL_TIMEOUT_MS (10 * 60 * 1000)

int pg_cluster_major(const char *pgdata, struct miren_error *err)
{
	char *path = xasprintf("%s/PG_VERSION", pgdata);
	struct strbuf sb;
	strbuf_init(&sb, 64);
	int major = -1;
	if (strbuf_read_file(&sb, path) == 0 && sb.len > 0 && sb.len < 8 &&
	    strspn(sb.buf, "0123456789") == strcspn(sb.buf, "\n"))
		major = (int)strtol(sb.buf, NULL, 10);
	if (major < 10)
		major = -1;
	if (major < 0)
		miren_error_set(err, MIREN_EINVAL, "'%s' does not name a PostgreSQL major version",
				path);
	strbuf_release(&sb);
	free(path);
	return major;
}

/* The message of a server log line, from its level ("LOG:  ...") on;
 * NULL when the line has none. */
static const char *log_message(const char *line)
{
	static const char *const levels[] = { "PANIC:", "FATAL:", "ERROR:", "WARNING:", "LOG:",
					      NULL };
	size_t n = strcspn(line, "\n");
	const char *best = NULL;
	for (const char *const *l = levels; *l; l++) {
		const char *p = strstr(line, *l);
		if (p && p < line + n && (!best || p < best))
			best = p;
	}
	return best;
}

int pg_trial_recover(const struct pg_install *pg, const char *pgdata, uid_t uid, gid_t gid,
		     struct miren_error *err)
{
	/* Single-user mode opens no socket and listens nowhere: it runs
	 * recovery, reads stdin (/dev/null: nothing) and shuts down with a
	 * checkpoint, all in this one process. */
	char *bin = xasprintf("%s/postgres", pg->bindir);
	char *const argv[] = { bin, "--single", "-D", (char *)pgdata, "postgres", NULL };
	char *const env[] = { "LANG=C.UTF-8", "PATH=/usr/bin:/bin", NULL };
	char *out = NULL;
	int st = sv_run(argv, env, pgdata, uid, gid, PG_TRIAL_TIMEOUT_MS, &out);
	int rc = 0;
	if (st != 0) {
		const char *fatal = NULL;
		for (const char *p = out; p && (p = strstr(p, "FATAL:")); p++)
			fatal = p;
		if (!fatal)
			for (const char *p = out; p && (p = strstr(p, "PANIC:")); p++)
				fatal = p;
		/* The line before the FATAL one often says what it is about
		 * ("invalid value for parameter ..."). */
		const char *prev = NULL;
		if (fatal) {
			const char *ls = fatal;
			while (ls > out && ls[-1] != '\n')
				ls--;
			if (ls > out + 1) {
				prev = ls - 1;
				while (prev > out && prev[-1] != '\n')
					prev--;
				prev = log_message(prev);
			}
		}
		char *text = fatal ? xstrndup(fatal, strcspn(fatal, "\n")) : xstrdup(out ? out : "");
		if (prev && strncmp(prev, "FATAL:", 6)) {
			char *both = xasprintf("%s (%.*s)", text, (int)strcspn(prev, "\n"), prev);
			free(text);
			text = both;
		}
		char line[500];
		one_line(line, sizeof(line), text);
		free(text);
		rc = miren_error_set(err, MIREN_EINVAL,
				     "the restored PostgreSQL cluster does not start: %s", line);
	}
	free(out);
	free(bin);
	return rc;
}
