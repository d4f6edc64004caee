/* miren env set: set variables of an app by hand, then restart it. */
#include "cli/cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const struct cli_optdef options[] = {
	{ .name = "sensitive",
	  .kind = CLI_OPT_FLAG,
	  .help = "mask the value in 'miren env list' and 'miren env get'" },
	{ .name = "create",
	  .kind = CLI_OPT_FLAG,
	  .help = "create the app when it does not exist yet" },
	{ 0 },
};

static int exec(struct cli *cli, int argc, char **argv)
{
	bool sensitive = cli_flag(cli, "sensitive");
	for (int i = 0; i < argc; i++)
		if (!strchr(argv[i], '=') || argv[i][0] == '=')
			return cli_usage_error(cli, "'%s' is not KEY=VALUE", argv[i]);
	int rc = CLI_OK;
	for (int i = 0; i < argc && !rc; i++) {
		char *eq = strchr(argv[i], '=');
		char *key = xstrndup(argv[i], (size_t)(eq - argv[i]));
		char *path = cli_env_path(cli, key, NULL);
		if (!path) {
			free(key);
			return CLI_INVALID;
		}
		json_t *body = json_pack("{s:s, s:b, s:b}", "value", eq + 1, "sensitive", sensitive,
					 "create", cli_flag(cli, "create"));
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
	.operands = "KEY=VALUE...",
	.min_operands = 1,
	.max_operands = -1,
	.operands_missing = "give at least one KEY=VALUE",
	.app = CLI_APP_OPTION,
	.options = options,
	.help = "A value set here wins over .miren/app.toml and over addon variables.\n"
		"The app must exist; with --create a new app is created (without a\n"
		"release), so variables marked required can be given before its first\n"
		"deploy.  PORT and MIREN_* are reserved.  The app's services are\n"
		"restarted to pick it up.\n",
	.flags = CMD_NEEDS_SERVER,
	.exec = exec,
};
