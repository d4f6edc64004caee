/* miren app destroy: stop an app and delete it with its releases and env. */
#include "cli/cli.h"

#include <stdio.h>
#include <stdlib.h>

static const struct cli_optdef options[] = {
	{ .name = "force",
	  .letter = 'f',
	  .kind = CLI_OPT_FLAG,
	  .help = "do not ask for confirmation" },
	{ .name = "no-final-backup",
	  .kind = CLI_OPT_FLAG,
	  .help = "destroy it without final backups of its addons" },
	{ 0 },
};

static int exec(struct cli *cli, int argc, char **argv)
{
	(void)argc;
	(void)argv;
	if (!cli_flag(cli, "force") &&
	    !cli_confirm("Destroy app '%s', its releases, logs, variables and addons (with their "
			 "databases and data)?",
			 cli->app)) {
		return cli_failf(MIREN_EINTERNAL, "pass -f to destroy without asking",
				 "not destroying app '%s' without confirmation", cli->app);
	}
	bool final = !cli_flag(cli, "no-final-backup");
	char *path = cli_app_path(cli, final ? NULL : "?final_backup=0");
	json_t *res = NULL;
	int rc = cli_call(cli, "DELETE", path, NULL, &res);
	free(path);
	size_t i;
	json_t *b;
	if (!rc)
		printf("Destroyed %s\n", cli->app);
	json_array_foreach (rc ? NULL : json_object_get(res, "final_backups"), i, b)
		printf("  final backup %s of addon %s, kept 7 days ('miren addon backups %s -a %s' "
		       "lists it)\n",
		       json_string_value(json_object_get(b, "id")),
		       json_string_value(json_object_get(b, "addon")),
		       json_string_value(json_object_get(b, "addon")), cli->app);
	json_decref(res);
	return rc;
}

const struct cmd_entry cmd_app_destroy_entry = {
	.name = "app destroy",
	.summary = "stop an app and delete it with its releases, logs, variables and addons",
	.operands = "[APP]",
	.max_operands = 1,
	.operands_help = "  APP                   the app (same as -a APP)\n",
	.app = CLI_APP_OPERAND,
	.options = options,
	.help = "First takes a final backup of each active addon, kept for 7 days in the\n"
		"backup store ('miren addon backups ADDON -a APP' lists them after the app is\n"
		"gone); if one fails, nothing is destroyed (--no-final-backup skips them).\n"
		"Returns once the app's addons are removed too (their servers stopped,\n"
		"their disks deleted), waiting up to 120 s; a deploy of the same name\n"
		"after it starts from nothing.\n",
	.flags = CMD_NEEDS_SERVER,
	.exec = exec,
};
