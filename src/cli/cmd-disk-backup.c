/* miren disk backup: stream a disk's snapshot from the server into a file. */
#include "api/client.h"
#include "cli/cli.h"
#include "disk/snapshot.h"
#include "util/io.h"
#include "util/sha256.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const struct cli_optdef options[] = {
	{ .name = "name",
	  .letter = 'n',
	  .kind = CLI_OPT_STRING,
	  .value = "NAME",
	  .help = "the disk (see 'miren debug disk list')",
	  .required = "which disk? give -n NAME (see 'miren debug disk list')" },
	{ .name = "output",
	  .letter = 'o',
	  .kind = CLI_OPT_STRING,
	  .value = "PATH",
	  .help = "the file to write (default: NAME-YYYYMMDD-HHMMSS.miren.zst\nin the current "
		  "directory); never overwritten" },
	{ 0 },
};

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

static char *default_output(const char *disk)
{
	char stamp[32];
	time_t now = time(NULL);
	struct tm tm;
	localtime_r(&now, &tm);
	strftime(stamp, sizeof(stamp), "%Y%m%d-%H%M%S", &tm);
	return xasprintf("%s-%s.miren.zst", disk, stamp);
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

static void print_summary(struct cli *cli, const char *name, const char *out, const char *hdr_text,
			  const struct recv *r, const struct snap_stats *st, const char *hex)
{
	json_t *hdr = hdr_text ? json_loads(hdr_text, 0, NULL) : NULL;
	double secs = cli_progress_elapsed(&r->progress);
	double ratio = r->zst_bytes ? (double)st->tar_bytes / (double)r->zst_bytes : 0;
	if (cli->json) {
		json_t *j = json_pack("{s:s, s:s, s:I, s:I, s:f, s:s, s:f, s:I, s:b}", "disk", name,
				      "file", out, "original_bytes", (json_int_t)st->tar_bytes,
				      "compressed_bytes", (json_int_t)r->zst_bytes, "ratio", ratio,
				      "sha256", hex, "seconds", secs, "files",
				      (json_int_t)st->files, "verified", 1);
		if (hdr)
			json_object_set(j, "header", hdr);
		cli_print_json(j);
		json_decref(j);
	} else {
		char raw[32], zst[32];
		cli_human_bytes(st->tar_bytes, raw, sizeof(raw));
		cli_human_bytes(r->zst_bytes, zst, sizeof(zst));
		printf("%s\n", out);
		printf("  disk        %s (%s)\n", name,
		       hdr ? json_string_value(json_object_get(hdr, "method")) : "?");
		printf("  original    %s\n", raw);
		printf("  compressed  %s (ratio %.1f)\n", zst, ratio);
		printf("  verified    %llu files, every checksum\n", (unsigned long long)st->files);
		printf("  sha256      %s\n", hex);
		printf("  took        %.2f s\n", secs);
	}
	json_decref(hdr);
}

static int exec(struct cli *cli, int argc, char **argv)
{
	(void)argc;
	(void)argv;
	const char *name = cli_str(cli, "name"), *output = cli_str(cli, "output");
	char *out = output ? xstrdup(output) : default_output(name);
	char *tmp = xasprintf("%s.XXXXXX.partial", out);
	int rc = CLI_FAIL;
	struct recv r = { .fd = -1 };
	char *hdr_text = NULL;
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

	char *esc = api_escape(name);
	char *path = xasprintf("/v1/disks/%s/backup", esc);
	free(esc);
	struct miren_error err;
	int arc = api_stream(cli->socket, "POST", path, "X-Miren-Backup-Header", &hdr_text,
			     recv_sink, &r, NULL, NULL, &err);
	free(path);
	cli_progress_done(&r.progress);
	char hex[65];
	sha256_final_hex(&r.hash, hex);
	struct snap_stats st = { 0 };
	if (arc) {
		if (arc == MIREN_ETOOBIG) {
			rc = cli_failf(MIREN_ETOOBIG, NULL,
				       "the disk holding '%s' is full; the backup was not written",
				       out);
		} else if (hdr_text) {
			/* The stream had started: the server gave up midway. */
			struct miren_error e;
			miren_error_set(&e, arc,
					"the backup of disk '%s' stopped midway; nothing was kept",
					name);
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
	if (snap_read(snap_source_fd, &r.fd, NULL, (uid_t)-1, (gid_t)-1, 0, NULL, &st, &err) != 0) {
		struct miren_error e;
		miren_error_set(&e, MIREN_EINVAL,
				"the backup of disk '%s' does not verify; nothing was kept", name);
		miren_error_detail(&e, "%s", err.message);
		miren_error_hint(&e,
				 "see the server log (DATA/logs/server.log) for why it stopped");
		rc = cli_fail(&e);
		goto out;
	}
	rc = publish(tmp, out);
	if (rc == CLI_OK)
		print_summary(cli, name, out, hdr_text, &r, &st, hex);
out:
	if (r.fd >= 0) {
		close(r.fd);
		unlink(tmp); /* gone already when published */
	}
	tmp_path = NULL;
	catch_signals(false);
	free(hdr_text);
	free(tmp);
	free(out);
	return rc;
}

const struct cmd_entry cmd_disk_backup_entry = {
	.name = "disk backup",
	.summary = "back up a disk to a checksummed zstd snapshot file",
	.help = "The server streams a crash-consistent snapshot of the disk, even while its\n"
		"database runs (the engine's own online backup: writers do not stop).  The file\n"
		"is a zstd-compressed tar archive with a header and SHA-256 checksums of\n"
		"every file (docs/backup-format.md); 'tar --zstd -tvf FILE' lists it.\n"
		"The file is written as FILE.XXXXXX.partial, read back and verified whole\n"
		"(every checksum), then put in place; a failed or interrupted backup leaves\n"
		"nothing.  Only one operation runs on a disk at a time: another one waits up\n"
		"to 10 s, then fails with \"another operation on disk ... is in progress\".\n",
	.options = options,
	.json_help = "print the summary as JSON",
	.flags = CMD_NEEDS_SERVER | CMD_JSON,
	.exec = exec,
};
