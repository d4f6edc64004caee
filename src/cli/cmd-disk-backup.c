/* miren disk backup: stream a disk's snapshot from the server into a file. */
#include "cli/cli.h"
#include "api/client.h"
#include "util/sha256.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <zstd.h>

static const struct option longopts[] = {
	{ "name", required_argument, NULL, 'n' },
	{ "output", required_argument, NULL, 'o' },
	{ 0 },
};

static const char *name, *output;

static int option(struct cli *cli, int opt, const char *arg)
{
	if (opt == 'n')
		return cli_opt_once(cli, "-n", &name, arg);
	if (opt == 'o')
		return cli_opt_once(cli, "-o", &output, arg);
	return cli_usage_error(cli, "unknown option");
}

/*
 * The receiving end: every byte goes to the file and the SHA-256, and is
 * decompressed (into a scratch buffer) to count the original size and to
 * check the zstd frame and its checksum before the file is kept.
 */
struct recv {
	int fd;
	struct sha256 hash;
	ZSTD_DStream *z;
	void *scratch;
	size_t scratch_len;
	unsigned long long zst_bytes, raw_bytes;
	size_t frame_left; /* ZSTD_decompressStream's last hint: 0 = frame complete */
	bool corrupt;
	struct cli_progress progress;
};

static int recv_sink(void *user, const void *data, size_t len)
{
	struct recv *r = user;
	const char *p = data;
	for (size_t left = len; left;) {
		ssize_t n = write(r->fd, p, left);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return errno == ENOSPC ? MIREN_ETOOBIG : MIREN_EIO;
		p += n;
		left -= (size_t)n;
	}
	sha256_update(&r->hash, data, len);
	r->zst_bytes += len;
	ZSTD_inBuffer in = { data, len, 0 };
	while (in.pos < in.size && !r->corrupt) {
		ZSTD_outBuffer out = { r->scratch, r->scratch_len, 0 };
		size_t ret = ZSTD_decompressStream(r->z, &out, &in);
		if (ZSTD_isError(ret))
			r->corrupt = true;
		else
			r->frame_left = ret;
		r->raw_bytes += out.pos;
	}
	cli_progress_update(&r->progress, r->zst_bytes);
	return 0;
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

static int exec(struct cli *cli, int argc, char **argv)
{
	if (argc)
		return cli_usage_error(cli, "unexpected argument '%s'", argv[0]);
	if (!name)
		return cli_usage_error(cli, "which disk? give -n NAME (see 'miren debug disk list')");
	char *out = output ? xstrdup(output) : default_output(name);
	char *partial = xasprintf("%s.partial", out);
	int rc = CLI_FAIL;
	struct recv r = { .fd = -1 };
	char *hdr_text = NULL;
	if (access(out, F_OK) == 0) {
		cli_error("'%s' already exists", out);
		cli_hint("choose another file with -o, or remove it first");
		goto out;
	}
	r.fd = open(partial, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (r.fd < 0) {
		cli_error("cannot create '%s': %s", partial, strerror(errno));
		goto out;
	}
	sha256_init(&r.hash);
	r.z = ZSTD_createDStream();
	r.scratch_len = ZSTD_DStreamOutSize();
	r.scratch = xmalloc(r.scratch_len);
	r.frame_left = 1;
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
	if (arc) {
		if (arc == MIREN_ETOOBIG)
			cli_error("the disk holding '%s' is full; the backup was not written", out);
		else
			cli_fail(&err);
	} else if (r.corrupt || r.frame_left != 0) {
		cli_error("the backup stream of disk '%s' is incomplete or damaged; nothing was kept",
			  name);
		cli_hint("see the server log (DATA/logs/server.log) for why it stopped");
	} else if (fsync(r.fd) != 0 || close(r.fd) != 0) {
		r.fd = -1;
		cli_error("cannot write '%s': %s", partial, strerror(errno));
	} else if ((r.fd = -1, rename(partial, out) != 0)) {
		cli_error("cannot rename '%s' to '%s': %s", partial, out, strerror(errno));
	} else {
		rc = CLI_OK;
	}
	if (rc == CLI_OK) {
		json_t *hdr = hdr_text ? json_loads(hdr_text, 0, NULL) : NULL;
		double secs = cli_progress_elapsed(&r.progress);
		double ratio = r.zst_bytes ? (double)r.raw_bytes / (double)r.zst_bytes : 0;
		if (cli->json) {
			json_t *j = json_pack("{s:s, s:s, s:I, s:I, s:f, s:s, s:f}", "disk", name,
					      "file", out, "original_bytes",
					      (json_int_t)r.raw_bytes, "compressed_bytes",
					      (json_int_t)r.zst_bytes, "ratio", ratio, "sha256", hex,
					      "seconds", secs);
			if (hdr)
				json_object_set(j, "header", hdr);
			cli_print_json(j);
			json_decref(j);
		} else {
			char raw[32], zst[32];
			cli_human_bytes(r.raw_bytes, raw, sizeof(raw));
			cli_human_bytes(r.zst_bytes, zst, sizeof(zst));
			printf("%s\n", out);
			printf("  disk        %s (%s)\n", name,
			       hdr ? json_string_value(json_object_get(hdr, "method")) : "?");
			printf("  original    %s\n", raw);
			printf("  compressed  %s (ratio %.1f)\n", zst, ratio);
			printf("  sha256      %s\n", hex);
			printf("  took        %.2f s\n", secs);
		}
		json_decref(hdr);
	}
out:
	if (r.fd >= 0)
		close(r.fd);
	if (rc != CLI_OK)
		unlink(partial);
	ZSTD_freeDStream(r.z);
	free(r.scratch);
	free(hdr_text);
	free(partial);
	free(out);
	return rc;
}

const struct cmd_entry cmd_disk_backup_entry = {
	.name = "disk backup",
	.summary = "back up a disk to a checksummed zstd snapshot file",
	.usage = "miren disk backup -n NAME [-o PATH] [--format json]",
	.help = "The server streams a crash-consistent snapshot of the disk, even while its\n"
		"database runs (PostgreSQL's online backup: writers do not stop).  The file\n"
		"is a zstd-compressed tar archive with a header and SHA-256 checksums of\n"
		"every file (docs/backup-format.md); 'tar --zstd -tvf FILE' lists it.\n"
		"\noptions:\n"
		"  -n, --name NAME     the disk (see 'miren debug disk list')\n"
		"  -o, --output PATH   the file to write (default: NAME-YYYYMMDD-HHMMSS.miren.zst\n"
		"                      in the current directory); never overwritten\n"
		"  --format json       print the summary as JSON\n",
	.shortopts = "n:o:",
	.longopts = longopts,
	.flags = CMD_NEEDS_SERVER,
	.option = option,
	.exec = exec,
};
