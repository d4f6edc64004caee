/* miren app destroy: stop an app and delete it with its releases and env. */
#include "cli/cli.h"

#include <stdio.h>
#include <stdlib.h>

static const struct option longopts[] = {
	CLI_APP_LONGOPT,
	{ "force", no_argument, NULL, 'f' },
	{ 0 },
};

static bool force;

static int option(struct cli *cli, int opt, const char *arg)
{
	if (opt == 'f') {
		force = true;
		return 0;
	}
	return cli_opt_app(cli, opt, arg);
}

static int exec(struct cli *cli, int argc, char **argv)
{
	int rc = cli_require_app_operand(cli, argc, argv);
	if (rc)
		return rc;
	if (!force && !cli_confirm("Destroy app '%s', its releases, logs, variables and addons "
					  "(with their databases and data)?", cli->app)) {
		cli_error("not destroying app '%s' without confirmation", cli->app);
		cli_hint("pass -f to destroy without asking");
		return CLI_FAIL;
	}
	char *path = cli_app_path(cli, NULL);
	rc = cli_call(cli, "DELETE", path, NULL, NULL);
	free(path);
	if (!rc)
		printf("Destroyed %s\n", cli->app);
	return rc;
}

const struct cmd_entry cmd_app_destroy_entry = {
	.name = "app destroy",
	.summary = "stop an app and delete it with its releases, logs, variables and addons",
	.usage = "miren app destroy [APP] [-a APP] [-f]",
	.help = "Returns once the app's addons are removed too (their servers stopped,\n"
		"their disks deleted), waiting up to 120 s; a deploy of the same name\n"
		"after it starts from nothing.\n"
		"\noptions:\n"
		"  -a, --app APP   the app (default: APP, else the one of .miren/app.toml here);\n"
		"                  with APP too, both must name the same app (else exit 2)\n"
		"  -f, --force     do not ask for confirmation\n",
	.shortopts = "a:f",
	.longopts = longopts,
	.flags = CMD_NEEDS_SERVER,
	.option = option,
	.exec = exec,
};
