/* miren app restart: restart every service of an app. */
#include "cli/cli.h"

#include <stdio.h>
#include <stdlib.h>

static int exec(struct cli *cli, int argc, char **argv)
{
	(void)argc;
	(void)argv;
	char *path = cli_app_path(cli, "/restart");
	int rc = cli_call(cli, "POST", path, NULL, NULL);
	free(path);
	if (!rc)
		printf("Restarted %s\n", cli->app);
	return rc;
}

const struct cmd_entry cmd_app_restart_entry = {
	.name = "app restart",
	.summary = "restart every service of an app",
	.operands = "[APP]",
	.max_operands = 1,
	.operands_help = "  APP                   the app (same as -a APP)\n",
	.app = CLI_APP_OPERAND,
	.help = "Each service is stopped (SIGTERM, then SIGKILL after 10 s) and started\n"
		"again from the current release with fresh environment variables.\n",
	.flags = CMD_NEEDS_SERVER,
	.exec = exec,
};
