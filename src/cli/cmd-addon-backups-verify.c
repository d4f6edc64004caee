/* miren addon backups verify: restore a backup into a scratch server and
 * run the engine's own checker over it. */
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
	{ .name = "backup",
	  .kind = CLI_OPT_STRING,
	  .value = "ID",
	  .help = "the stored backup to verify (default: the newest)" },
	{ .name = "snapshot",
	  .letter = 's',
	  .kind = CLI_OPT_STRING,
	  .value = "FILE",
	  .help = "verify this .miren.zst file instead (not recorded)" },
	{ 0 },
};

/* Sends FILE; *res gets the answer.  Returns an exit code. */
static int verify_file(struct cli *cli, const char *addon, const char *file, json_t **res)
{
	char *esc = api_escape(addon);
	char *suffix = xasprintf("/addons/%s/backups/verify-file", esc);
	char *path = cli_app_path(cli, suffix);
	int rc = cli_backup_send(cli, file, "backup file", path, res);
	free(path);
	free(suffix);
	free(esc);
	return rc;
}

static int exec(struct cli *cli, int argc, char **argv)
{
	(void)argc;
	const char *addon = argv[0], *file = cli_str(cli, "snapshot"), *id = cli_str(cli, "backup");
	if (file && id)
		return cli_usage_error(cli, "give --backup ID or -s FILE, not both");
	json_t *res = NULL;
	int rc;
	if (file) {
		rc = verify_file(cli, addon, file, &res);
	} else {
		char *esc = api_escape(addon);
		char *idesc = id ? api_escape(id) : NULL;
		char *suffix = xasprintf("/addons/%s/backups/verify%s%s", esc,
					 idesc ? "?backup=" : "", idesc ? idesc : "");
		char *path = cli_app_path(cli, suffix);
		rc = cli_call(cli, "POST", path, NULL, &res);
		free(path);
		free(suffix);
		free(idesc);
		free(esc);
	}
	if (rc)
		return rc;
	if (cli->json) {
		cli_print_json(res);
	} else {
		const char *bid = json_string_value(json_object_get(res, "id"));
		char size[32];
		cli_human_bytes((unsigned long long)json_integer_value(
					json_object_get(res, "bytes")),
				size, sizeof(size));
		printf("Backup %s of %s verified: restored into a scratch server (%s, %lld "
		       "files) and checked by %s in %.1f s; no damage found\n",
		       bid ? bid : file, addon, size,
		       json_integer_value(json_object_get(res, "files")),
		       json_string_value(json_object_get(res, "checker")),
		       json_real_value(json_object_get(res, "seconds")));
	}
	json_decref(res);
	return CLI_OK;
}

const struct cmd_entry cmd_addon_backups_verify_entry = {
	.name = "addon backups verify",
	.summary = "prove a backup restores: load it into a scratch server and check it",
	.operands = "ADDON",
	.min_operands = 1,
	.max_operands = 1,
	.operands_missing = "which addon? give its name",
	.app = CLI_APP_OPTION,
	.options = options,
	.help = "Restores a stored backup of the app's addon (the newest, or --backup ID)\n"
		"into a scratch server of its own, off the app's path (reachable only by the\n"
		"server, over a private socket), and runs the engine's own consistency\n"
		"checker over it (the output names it).  A disk backup is started as it\n"
		"was; a database's dump is loaded into a fresh server first.  The outcome\n"
		"is recorded: 'miren addon backups' shows the last verified backup, and a\n"
		"failed verification is an error in 'miren addon list'.  A damaged stored\n"
		"chunk fails the verification and names every backup that uses it.  The\n"
		"app's data and its running server are not touched.  With -s FILE, a\n"
		".miren.zst file is verified the same way instead, and nothing is recorded.\n",
	.json_help = "print the result as JSON",
	.flags = CMD_NEEDS_SERVER | CMD_JSON,
	.exec = exec,
};
