/* miren disk backup: stream a disk's snapshot from the server into a file. */
#include "api/client.h"
#include "cli/backup-file.h"
#include "cli/cli.h"

#include <stdio.h>
#include <stdlib.h>

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

static void print_summary(struct cli *cli, const char *name, const char *out,
			  const struct cli_backup_file *f)
{
	json_t *hdr = f->header ? json_loads(f->header, 0, NULL) : NULL;
	double secs = f->seconds;
	const struct snap_stats *st = &f->st;
	const char *hex = f->sha256;
	double ratio = f->zst_bytes ? (double)st->tar_bytes / (double)f->zst_bytes : 0;
	if (cli->json) {
		json_t *j = json_pack("{s:s, s:s, s:I, s:I, s:f, s:s, s:f, s:I, s:b}", "disk", name,
				      "file", out, "original_bytes", (json_int_t)st->tar_bytes,
				      "compressed_bytes", (json_int_t)f->zst_bytes, "ratio", ratio,
				      "sha256", hex, "seconds", secs, "files",
				      (json_int_t)st->files, "verified", 1);
		if (hdr)
			json_object_set(j, "header", hdr);
		cli_print_json(j);
		json_decref(j);
	} else {
		char raw[32], zst[32];
		cli_human_bytes(st->tar_bytes, raw, sizeof(raw));
		cli_human_bytes(f->zst_bytes, zst, sizeof(zst));
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
	char *out = output ? xstrdup(output) : cli_backup_default_name(name);
	char *esc = api_escape(name);
	char *path = xasprintf("/v1/disks/%s/backup", esc);
	char *what = xasprintf("disk '%s'", name);
	struct cli_backup_file f;
	int rc = cli_backup_receive(cli, "POST", path, out, what, &f);
	if (rc == CLI_OK)
		print_summary(cli, name, out, &f);
	free(f.header);
	free(what);
	free(path);
	free(esc);
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
