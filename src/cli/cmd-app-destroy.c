/* miren app destroy: stop an app and delete it with its releases and env. */
#include "cli/cli.h"

#include <stdio.h>
#include <stdlib.h>

static const struct cli_optdef options[] = {
	{ .name = "force",
	  .letter = 'f',
	  .kind = CLI_OPT_FLAG,
	  .help = "do not ask for confirmation" },
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
	char *path = cli_app_path(cli, NULL);
	int rc = cli_call(cli, "DELETE", path, NULL, NULL);
	free(path);
	if (!rc)
		printf("Destroyed %s\n", cli->app);
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
	.help = "Returns once the app's addons are removed too (their servers stopped,\n"
		"their disks deleted), waiting up to 120 s; a deploy of the same name\n"
		"after it starts from nothing.\n",
	.flags = CMD_NEEDS_SERVER,
	.exec = exec,
};
