/* miren env get: the value of one variable of an app. */
#include "cli/cli.h"

#include <stdio.h>
#include <stdlib.h>

static const struct cli_optdef options[] = {
	{ .name = "unmask",
	  .kind = CLI_OPT_FLAG,
	  .help = "print a sensitive value instead of ********" },
	{ 0 },
};

static int exec(struct cli *cli, int argc, char **argv)
{
	(void)argc;
	char *path = cli_env_path(cli, argv[0], cli_flag(cli, "unmask") ? "?unmask=1" : NULL);
	if (!path)
		return CLI_INVALID;
	json_t *v;
	int rc = cli_call(cli, "GET", path, NULL, &v);
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
	.operands = "KEY",
	.min_operands = 1,
	.max_operands = 1,
	.operands_missing = "which variable? give its KEY",
	.app = CLI_APP_OPTION,
	.options = options,
	.json_help = "print JSON (name, value, service, source, sensitive)",
	.flags = CMD_NEEDS_SERVER | CMD_JSON,
	.exec = exec,
};
