/* miren env get: the value of one variable of an app. */
#include "cli/cli.h"

#include <stdio.h>
#include <stdlib.h>

enum { OPT_UNMASK = OPT_FIRST_COMMAND_OPT };

static const struct option longopts[] = {
	CLI_APP_LONGOPT,
	{ "unmask", no_argument, NULL, OPT_UNMASK },
	{ 0 },
};

static bool unmask;

static int option(struct cli *cli, int opt, const char *arg)
{
	if (opt == OPT_UNMASK) {
		unmask = true;
		return 0;
	}
	return cli_opt_app(cli, opt, arg);
}

static int exec(struct cli *cli, int argc, char **argv)
{
	if (argc != 1)
		return cli_usage_error(cli, argc ? "give one KEY" : "which variable? give its KEY");
	int rc = cli_require_app(cli);
	if (rc)
		return rc;
	char *path = cli_env_path(cli, argv[0], unmask ? "?unmask=1" : NULL);
	if (!path)
		return CLI_FAIL;
	json_t *v;
	rc = cli_call(cli, "GET", path, NULL, &v);
	free(path);
	if (rc)
		return rc;
	if (cli->json)
		cli_print_json(v);
	else
		printf("%s\n", json_string_value(json_object_get(v, "value")));
	json_decref(v);
	return CLI_OK;
}

const struct cmd_entry cmd_env_get_entry = {
	.name = "env get",
	.summary = "print the value of one environment variable of an app",
	.usage = "miren env get [-a APP] KEY [--unmask] [--format json]",
	.help = "options:\n"
		"  -a, --app APP   the app (default: the one of .miren/app.toml here)\n"
		"  --unmask        print a sensitive value instead of ********\n"
		"  --format json   print JSON (name, value, service, source, sensitive)\n",
	.shortopts = "a:",
	.longopts = longopts,
	.flags = CMD_NEEDS_SERVER,
	.option = option,
	.exec = exec,
};
