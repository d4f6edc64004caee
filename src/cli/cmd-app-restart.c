/* miren app restart: restart every service of an app. */
#include "cli/cli.h"

#include <stdio.h>
#include <stdlib.h>

static const struct option longopts[] = { CLI_APP_LONGOPT, { 0 } };

static int exec(struct cli *cli, int argc, char **argv)
{
	int rc = cli_require_app_operand(cli, argc, argv);
	if (rc)
		return rc;
	char *path = cli_app_path(cli, "/restart");
	rc = cli_call(cli, "POST", path, NULL, NULL);
	free(path);
	if (!rc)
		printf("Restarted %s\n", cli->app);
	return rc;
}

const struct cmd_entry cmd_app_restart_entry = {
	.name = "app restart",
	.summary = "restart every service of an app",
	.usage = "miren app restart [APP] [-a APP]",
	.help = "Each service is stopped (SIGTERM, then SIGKILL after 10 s) and started\n"
		"again from the current release with fresh environment variables.\n"
		"\noptions:\n"
		"  -a, --app APP   the app (default: APP, else the one of .miren/app.toml here);\n"
		"                  with APP too, both must name the same app (else exit 2)\n",
	.shortopts = "a:",
	.longopts = longopts,
	.flags = CMD_NEEDS_SERVER,
	.option = cli_opt_app,
	.exec = exec,
};
