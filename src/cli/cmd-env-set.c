/* miren env set: set variables of an app by hand, then restart it. */
#include "cli/cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { OPT_SENSITIVE = OPT_FIRST_COMMAND_OPT, OPT_CREATE };

static const struct option longopts[] = {
	CLI_APP_LONGOPT,
	{ "sensitive", no_argument, NULL, OPT_SENSITIVE },
	{ "create", no_argument, NULL, OPT_CREATE },
	{ 0 },
};

static bool sensitive, create;

static int option(struct cli *cli, int opt, const char *arg)
{
	if (opt == OPT_SENSITIVE) {
		sensitive = true;
		return 0;
	}
	if (opt == OPT_CREATE) {
		create = true;
		return 0;
	}
	return cli_opt_app(cli, opt, arg);
}

static int exec(struct cli *cli, int argc, char **argv)
{
	if (argc == 0)
		return cli_usage_error(cli, "give at least one KEY=VALUE");
	for (int i = 0; i < argc; i++)
		if (!strchr(argv[i], '=') || argv[i][0] == '=')
			return cli_usage_error(cli, "'%s' is not KEY=VALUE", argv[i]);
	int rc = cli_require_app(cli);
	if (rc)
		return rc;
	for (int i = 0; i < argc && !rc; i++) {
		char *eq = strchr(argv[i], '=');
		char *key = xstrndup(argv[i], (size_t)(eq - argv[i]));
		char *path = cli_env_path(cli, key, NULL);
		if (!path) {
			free(key);
			return CLI_FAIL;
		}
		json_t *body = json_pack("{s:s, s:b, s:b}", "value", eq + 1, "sensitive", sensitive,
					 "create", create);
		rc = cli_call(cli, "PUT", path, body, NULL);
		if (!rc)
			printf("Set %s on %s%s\n", key, cli->app, sensitive ? " (sensitive)" : "");
		json_decref(body);
		free(path);
		free(key);
	}
	return rc;
}

const struct cmd_entry cmd_env_set_entry = {
	.name = "env set",
	.summary = "set environment variables of an app (and restart it)",
	.usage = "miren env set [-a APP] KEY=VALUE... [--sensitive] [--create]",
	.help = "A value set here wins over .miren/app.toml and over addon variables.\n"
		"The app must exist; with --create a new app is created (without a\n"
		"release), so variables marked required can be given before its first\n"
		"deploy.  PORT and MIREN_* are reserved.  The app's services are\n"
		"restarted to pick it up.\n"
		"\noptions:\n"
		"  -a, --app APP   the app (default: the one of .miren/app.toml here)\n"
		"  --sensitive     mask the value in 'miren env list' and 'miren env get'\n"
		"  --create        create the app when it does not exist yet\n",
	.shortopts = "a:",
	.longopts = longopts,
	.flags = CMD_NEEDS_SERVER,
	.option = option,
	.exec = exec,
};
