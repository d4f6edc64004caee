/* miren env delete: remove a variable set with `miren env set`. */
#include "cli/cli.h"

#include <stdio.h>
#include <stdlib.h>

static int exec(struct cli *cli, int argc, char **argv)
{
	(void)argc;
	char *path = cli_env_path(cli, argv[0], NULL);
	if (!path)
		return CLI_INVALID;
	int rc = cli_call(cli, "DELETE", path, NULL, NULL);
	if (!rc)
		printf("Deleted %s from %s\n", argv[0], cli->app);
	free(path);
	return rc;
}

const struct cmd_entry cmd_env_delete_entry = {
	.name = "env delete",
	.summary = "delete a variable set with 'miren env set' (and restart the app)",
	.operands = "KEY",
	.min_operands = 1,
	.max_operands = 1,
	.operands_missing = "which variable? give its KEY",
	.app = CLI_APP_OPTION,
	.help = "Variables from .miren/app.toml or from an addon cannot be deleted here:\n"
		"remove them from app.toml, or destroy the addon.\n",
	.flags = CMD_NEEDS_SERVER,
	.exec = exec,
};
