/* miren disk restore: send a snapshot file to the server, which verifies it
 * whole and only then puts the disk in place. */
#include "api/client.h"
#include "cli/backup-file.h"
#include "cli/cli.h"
#include "util/compiler.h"
#include "util/io.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const struct cli_optdef options[] = {
	{ .name = "snapshot",
	  .letter = 's',
	  .kind = CLI_OPT_STRING,
	  .value = "FILE",
	  .help = "the .miren.zst file",
	  .required = "which snapshot? give -s FILE" },
	{ .name = "name",
	  .letter = 'n',
	  .kind = CLI_OPT_STRING,
	  .value = "NAME",
	  .help = "restore as this disk (default: the name in the file)" },
	{ .name = "force", .kind = CLI_OPT_FLAG, .help = "replace the disk if it exists" },
	{ 0 },
};

static int exec(struct cli *cli, int argc, char **argv)
{
	(void)argc;
	(void)argv;
	const char *snapshot = cli_str(cli, "snapshot"), *name = cli_str(cli, "name");
	bool force = cli_flag(cli, "force");
	char *path;
	char *esc = name ? api_escape(name) : NULL;
	path = xasprintf("/v1/disks/restore?force=%d%s%s", force ? 1 : 0, esc ? "&name=" : "",
			 esc ? esc : "");
	free(esc);
	json_t *res = NULL;
	int rc = cli_backup_send(cli, snapshot, "snapshot", path, &res);
	free(path);
	if (rc)
		return rc;
	if (cli->json) {
		cli_print_json(res);
	} else {
		char size[32];
		cli_human_bytes((unsigned long long)json_integer_value(
					json_object_get(res, "bytes")),
				size, sizeof(size));
		const char *disk = json_string_value(json_object_get(res, "disk"));
		printf("Restored disk %s from %s (%lld files, %s, every checksum verified)\n", disk,
		       snapshot, json_integer_value(json_object_get(res, "files")), size);
		if (json_is_true(json_object_get(res, "replaced")))
			printf("The previous contents of %s were replaced%s\n", disk,
			       json_is_true(json_object_get(res, "restarted"))
				       ? "; its database server was restarted"
				       : "");
		const char *app = json_string_value(json_object_get(res, "app"));
		if (json_is_true(json_object_get(res, "replaced")))
			printf("Run 'miren app restart %s' to serve the restored data\n",
			       app ? app : "APP");
	}
	json_decref(res);
	return CLI_OK;
}

const struct cmd_entry cmd_disk_restore_entry = {
	.name = "disk restore",
	.summary = "restore a disk from a snapshot file (verified before anything changes)",
	.help = "The server checks the whole snapshot (zstd checksums, the SHA-256 of every\n"
		"file, paths and sizes) while writing it to a staging directory, and only then\n"
		"puts the disk in place under its original name (or -n NAME).  A bad file\n"
		"changes nothing; nor does a copy the disk's database server cannot run (one\n"
		"of another major version, or one that does not start: its recovery is tried\n"
		"first).  An existing disk is\n"
		"replaced only with --force; a database server using it is stopped for the\n"
		"swap and started on the restored data, and the old disk is kept until that\n"
		"server answers (else it is put back).  Another operation on the disk is\n"
		"waited for up to 10 s.  Then run 'miren app restart APP' so the app\n"
		"reconnects to the restored data.\n",
	.options = options,
	.json_help = "print the result as JSON",
	.flags = CMD_NEEDS_SERVER | CMD_JSON,
	.exec = exec,
};
