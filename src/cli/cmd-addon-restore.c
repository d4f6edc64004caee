/* miren addon restore: put a backup's data into the app's current addon. */
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

/* Where the data comes from: exactly one of --backup, -s and --to (a
 * point in time, which the daemon parses). */
static const struct cli_optdef options[] = {
	{ .name = "backup",
	  .kind = CLI_OPT_STRING,
	  .value = "ID",
	  .help = "a stored backup (the ID 'miren addon backup' printed)" },
	{ .name = "snapshot",
	  .letter = 's',
	  .kind = CLI_OPT_STRING,
	  .value = "FILE",
	  .help = "a .miren.zst file ('miren addon backup -o' or 'miren disk backup')" },
	{ .name = "to",
	  .kind = CLI_OPT_STRING,
	  .value = "TIME",
	  .help = "the data as it was at TIME: \"2026-11-30 12:34:56+00\" or \"10m-ago\"\n"
		  "(point-in-time recovery; within the window 'addon list' and the\n"
		  "refusal name)" },
	{ .name = "force",
	  .kind = CLI_OPT_FLAG,
	  .help = "restore a backup of another app into this one" },
	{ 0 },
};

static int exec(struct cli *cli, int argc, char **argv)
{
	(void)argc;
	const char *addon = argv[0], *id = cli_str(cli, "backup"), *file = cli_str(cli, "snapshot");
	const char *to = cli_str(cli, "to");
	bool force = cli_flag(cli, "force");
	int sources = !!id + !!file + !!to;
	if (sources != 1)
		return cli_usage_error(cli, sources ? "give one of --backup ID, -s FILE and --to "
						      "TIME"
						    : "which backup? give --backup ID, -s FILE or "
						      "--to TIME");
	char *esc = api_escape(addon);
	char *suffix = xasprintf("/addons/%s/restore%s", esc,
				 file ? (force ? "/file?force=1" : "/file") : "");
	char *path = cli_app_path(cli, suffix);
	json_t *res = NULL;
	int rc;
	if (file) {
		rc = cli_backup_send(cli, file, "backup file", path, &res);
	} else if (to) {
		json_t *body = json_pack("{s:s}", "to", to);
		rc = cli_call(cli, "POST", path, body, &res);
		json_decref(body);
	} else {
		json_t *body = json_pack("{s:s, s:b}", "backup", id, "force", force);
		rc = cli_call(cli, "POST", path, body, &res);
		json_decref(body);
	}
	free(path);
	free(suffix);
	free(esc);
	if (rc)
		return rc;
	if (cli->json) {
		cli_print_json(res);
	} else if (to) {
		printf("Restored addon %s of %s (%s) to %s\n", addon, cli->app,
		       json_string_value(json_object_get(res, "variant")),
		       json_string_value(json_object_get(res, "to")));
		printf("  the app's data was recovered from base backup %s and the archived WAL, "
		       "and replaced this addon's (one transaction)\n",
		       json_string_value(json_object_get(res, "backup")));
		if (json_is_true(json_object_get(res, "restarted")))
			printf("The app was restarted\n");
		else
			cli_warn("the app was not restarted (%s); run 'miren app restart %s'",
				 json_string_value(json_object_get(res, "restart_error")),
				 cli->app);
	} else {
		const char *route = json_string_value(json_object_get(res, "route"));
		printf("Restored addon %s of %s (%s) from %s\n", addon, cli->app,
		       json_string_value(json_object_get(res, "variant")), id ? id : file);
		printf("  %s\n",
		       !strcmp(route, "disk")
			       ? "the server's disk was replaced by the backup's (verified first)"
		       : !strcmp(route, "load")
			       ? "the app's data was replaced by the backup's dump (one "
				 "transaction)"
			       : "the app's data was read out of the backup's server and replaced "
				 "this addon's (one transaction)");
		if (json_is_true(json_object_get(res, "restarted")))
			printf("The app was restarted\n");
		else
			cli_warn("the app was not restarted (%s); run 'miren app restart %s'",
				 json_string_value(json_object_get(res, "restart_error")),
				 cli->app);
	}
	json_decref(res);
	return CLI_OK;
}

const struct cmd_entry cmd_addon_restore_entry = {
	.name = "addon restore",
	.summary = "restore an app's data in an addon from a backup",
	.operands = "ADDON",
	.min_operands = 1,
	.max_operands = 1,
	.operands_missing = "which addon? give its name (see 'miren addon list')",
	.app = CLI_APP_OPTION,
	.options = options,
	.help = "Puts the backup's data into the app's current addon, whatever its variant\n"
		"and server now (a backup of a small addon restores into a shared one and\n"
		"back), owned by the app's current user with its current password, then\n"
		"restarts the app once.  The backup is verified whole (every checksum)\n"
		"before anything changes, and the change itself is all or nothing: a failed\n"
		"restore leaves the current data as it was.  Refused, with the reason, for\n"
		"a backup of another addon, a newer format, a truncated or damaged file,\n"
		"and (without --force) a backup of another app.\n"
		"\n"
		"--to TIME recovers the addon to an instant (point-in-time recovery, for\n"
		"engines with a write-ahead log): every server's log is archived\n"
		"continuously and base backups are taken in the background, so any\n"
		"instant from the oldest kept base backup to now can be had.  On a shared\n"
		"server only this app's database comes back.  A TIME outside that window\n"
		"is refused, naming it.\n",
	.json_help = "print the result as JSON",
	.flags = CMD_NEEDS_SERVER | CMD_JSON,
	.exec = exec,
};
