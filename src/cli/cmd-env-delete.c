/* miren env delete: remove a variable set with `miren env set`. */
#include "cli/cli.h"

#include <stdio.h>
#include <stdlib.h>

static const struct option longopts[] = { CLI_APP_LONGOPT, { 0 } };

static int exec(struct cli *cli, int argc, char **argv)
{
	if (argc != 1)
		return cli_usage_error(cli, argc ? "give one KEY" : "which variable? give its KEY");
	int rc = cli_require_app(cli);
	if (rc)
		return rc;
	char *path = cli_env_path(cli, argv[0], NULL);
	if (!path)
		return CLI_FAIL;
	rc = cli_call(cli, "DELETE", path, NULL, NULL);
	if (!rc)
		printf("Deleted %s from %s\n", argv[0], cli->app);
	free(path);
	return rc;
}

const struct cmd_entry cmd_env_delete_entry = {
	.name = "env delete",
	.summary = "delete a variable set with 'miren env set' (and restart the app)",
	.usage = "miren env delete [-a APP] KEY",
	.help = "Variables from .miren/app.toml or from an addon cannot be deleted here:\n"
		"remove them from app.toml, or destroy the addon.\n"
		"\noptions:\n"
		"  -a, --app APP   the app (default: the one of .miren/app.toml here)\n",
	.shortopts = "a:",
	.longopts = longopts,
	.flags = CMD_NEEDS_SERVER,
	.option = cli_opt_app,
	.exec = exec,
};
