/* Receiving a streamed backup into a verified file; see backup-file.h. */
#include "cli/backup-file.h"
#include "api/client.h"
#include "util/compiler.h"
#include "util/io.h"
#include "util/sha256.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/*
 * The receiving end: every byte goes to the temporary file and the
 * SHA-256.  Once the stream is complete the file is read back and verified
 * whole (snap_read without a staging directory: zstd checksums, every
 * file's SHA-256 against the manifest, the archive digest), so a backup
 * that says it succeeded is one that restore accepts.
 */
struct recv {
	int fd;
	struct sha256 hash;
	unsigned long long zst_bytes;
	struct cli_progress progress;
};

static int recv_sink(void *user, const void *data, size_t len)
{
	struct recv *r = user;
	if (io_write_all(r->fd, data, len))
		return errno == ENOSPC ? MIREN_ETOOBIG : MIREN_EIO;
	sha256_update(&r->hash, data, len);
	r->zst_bytes += len;
	cli_progress_update(&r->progress, r->zst_bytes);
	return 0;
}

/*
 * The temporary file, unique to this process (FILE.XXXXXX.partial next to
 * FILE), is removed on every way out, a fatal signal included; what a
 * SIGKILL leaves never stands in the way of a later backup.
 */
static char *tmp_path;
static bool stderr_tty; /* read before the handler is installed */
static const int fatal_signals[] = { SIGINT, SIGTERM, SIGHUP, SIGQUIT };

static void on_fatal_signal(int sig)
{
	static const char msg[] = "error: interrupted; the backup was not written\n";
	if (tmp_path)
		unlink(tmp_path); /* async-signal-safe, as write(2) is */
	if (stderr_tty)
		(void)!write(STDERR_FILENO, "\n", 1); /* after a progress line */
	(void)!write(STDERR_FILENO, msg, sizeof(msg) - 1);
	signal(sig, SIG_DFL);
	raise(sig);
}

static void catch_signals(bool on)
{
	stderr_tty = isatty(STDERR_FILENO);
	struct sigaction sa = { .sa_handler = on ? on_fatal_signal : SIG_DFL };
	sigemptyset(&sa.sa_mask);
	for (size_t i = 0; i < sizeof(fatal_signals) / sizeof(fatal_signals[0]); i++)
		sigaddset(&sa.sa_mask, fatal_signals[i]);
	for (size_t i = 0; i < sizeof(fatal_signals) / sizeof(fatal_signals[0]); i++)
		sigaction(fatal_signals[i], &sa, NULL);
}

char *cli_backup_default_name(const char *base)
{
	char stamp[32];
	time_t now = time(NULL);
	struct tm tm;
	localtime_r(&now, &tm);
	strftime(stamp, sizeof(stamp), "%Y%m%d-%H%M%S", &tm);
	return xasprintf("%s-%s.miren.zst", base, stamp);
}

/* Puts tmp in place as out, never replacing a file (link, then unlink). */
static int publish(const char *tmp, const char *out)
{
	if (link(tmp, out) != 0) {
		if (errno == EEXIST)
			return cli_failf(
				MIREN_EEXISTS, "choose another file with -o",
				"'%s' appeared while the backup ran (another backup to the "
				"same file?); it was left alone and this backup was not kept",
				out);
		return cli_failf(MIREN_EIO, NULL, "cannot create '%s': %s", out,
				 io_strerror(errno));
	}
	unlink(tmp);
	char *dir = xstrdup(out);
	char *slash = strrchr(dir, '/');
	if (slash)
		slash[slash == dir ? 1 : 0] = '\0';
	int dfd = open(slash ? dir : ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd >= 0) {
		(void)fsync(dfd);
		close(dfd);
	}
	free(dir);
	return CLI_OK;
}

int cli_backup_receive(struct cli *cli, const char *method, const char *path, const char *out,
		       const char *what, struct cli_backup_file *res)
{
	memset(res, 0, sizeof(*res));
	char *tmp = xasprintf("%s.XXXXXX.partial", out);
	int rc = CLI_FAIL;
	struct recv r = { .fd = -1 };
	if (access(out, F_OK) == 0) {
		rc = cli_failf(MIREN_EEXISTS, "choose another file with -o, or remove it first",
			       "'%s' already exists", out);
		goto out;
	}
	catch_signals(true);
	r.fd = mkostemps(tmp, (int)strlen(".partial"), O_CLOEXEC);
	if (r.fd < 0) {
		rc = cli_failf(MIREN_EIO, NULL, "cannot create '%s': %s", tmp, io_strerror(errno));
		goto out;
	}
	tmp_path = tmp;
	sha256_init(&r.hash);
	cli_progress_init(&r.progress, "received");

	struct miren_error err;
	int arc = api_stream(&cli->target, method, path, "X-Miren-Backup-Header", &res->header,
			     recv_sink, &r, NULL, NULL, &err);
	cli_progress_done(&r.progress);
	sha256_final_hex(&r.hash, res->sha256);
	res->seconds = cli_progress_elapsed(&r.progress);
	res->zst_bytes = r.zst_bytes;
	if (arc) {
		if (arc == MIREN_ETOOBIG) {
			rc = cli_failf(MIREN_ETOOBIG, NULL,
				       "the disk holding '%s' is full; the backup was not written",
				       out);
		} else if (res->header) {
			/* The stream had started: the server gave up midway. */
			struct miren_error e;
			miren_error_set(&e, arc,
					"the backup of %s stopped midway; nothing was kept", what);
			miren_error_detail(&e, "%s", err.message);
			miren_error_hint(&e, "the server log (DATA/logs/server.log) says why");
			rc = cli_fail(&e);
		} else {
			rc = cli_fail(&err);
		}
		goto out;
	}
	if (fsync(r.fd) != 0 || lseek(r.fd, 0, SEEK_SET) != 0) {
		rc = cli_failf(MIREN_EIO, NULL, "cannot write '%s': %s", tmp, io_strerror(errno));
		goto out;
	}
	miren_error_clear(&err);
	if (snap_read(snap_source_fd, &r.fd, NULL, (uid_t)-1, (gid_t)-1, 0, NULL, &res->st, &err) !=
	    0) {
		struct miren_error e;
		miren_error_set(&e, MIREN_EINVAL,
				"the backup of %s does not verify; nothing was kept", what);
		miren_error_detail(&e, "%s", err.message);
		miren_error_hint(&e,
				 "see the server log (DATA/logs/server.log) for why it stopped");
		rc = cli_fail(&e);
		goto out;
	}
	rc = publish(tmp, out);
out:
	if (r.fd >= 0) {
		close(r.fd);
		unlink(tmp); /* gone already when published */
	}
	tmp_path = NULL;
	catch_signals(false);
	free(tmp);
	if (rc != CLI_OK) {
		free(res->header);
		res->header = NULL;
	}
	return rc;
}

static void on_sent(void *user, unsigned long long up, unsigned long long down MIREN_UNUSED)
{
	cli_progress_update(user, up);
}

int cli_backup_send(struct cli *cli, const char *file, const char *what, const char *path,
		    json_t **res)
{
	*res = NULL;
	int fd = open(file, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return cli_failf(errno == ENOENT ? MIREN_ENOTFOUND : MIREN_EIO, NULL,
				 "cannot read %s '%s': %s", what, file, io_strerror(errno));
	struct stat st;
	int stat_errno = fstat(fd, &st) != 0 ? errno : 0;
	if (stat_errno || !S_ISREG(st.st_mode)) {
		close(fd);
		return cli_failf(stat_errno ? MIREN_EIO : MIREN_EINVAL, NULL,
				 "cannot read %s '%s': %s", what, file,
				 stat_errno ? io_strerror(stat_errno) : "not a regular file");
	}
	struct cli_progress progress;
	cli_progress_init(&progress, "sent");
	struct miren_error err;
	int rc = api_upload(&cli->target, "POST", path, fd, (unsigned long long)st.st_size, on_sent,
			    &progress, res, &err);
	cli_progress_done(&progress);
	close(fd);
	return rc ? cli_fail(&err) : CLI_OK;
}
