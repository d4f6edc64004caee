/* miren env list: an app's variables with where each comes from. */
#include "cli/cli.h"

#include <stdio.h>
#include <stdlib.h>

static int exec(struct cli *cli, int argc, char **argv)
{
	(void)argc;
	(void)argv;
	json_t *vars;
	char *path = cli_app_path(cli, "/env");
	int rc = cli_call(cli, "GET", path, NULL, &vars);
	free(path);
	if (rc)
		return rc;
	if (cli_json_output(cli, vars))
		return CLI_OK;
	struct cli_table *t = cli_table_new(4, "NAME", "VALUE", "SERVICE", "SOURCE");
	size_t i;
	json_t *v;
	json_array_foreach (vars, i, v) {
		const char *svc = json_string_value(json_object_get(v, "service"));
		cli_table_row(t, json_string_value(json_object_get(v, "name")),
			      json_string_value(json_object_get(v, "value")),
			      svc && *svc ? svc : "(all)",
			      json_string_value(json_object_get(v, "source")));
	}
	cli_table_print(t);
	json_decref(vars);
	return CLI_OK;
}

const struct cmd_entry cmd_env_list_entry = {
	.name = "env list",
	.summary = "list an app's environment variables",
	.help = "Shows the value each variable has in the app's services, with SOURCE\n"
		"config (.miren/app.toml), addon (injected by an addon) or manual\n"
		"(miren env set).  Sensitive values are masked; see 'miren env get --unmask'.\n"
		"Control characters and backslashes in the table are escaped (\\n, \\t,\n"
		"\\\\, \\u001b); --format json and 'miren env get' give the raw value.\n",
	.app = CLI_APP_OPTION,
	.json_help = "print JSON instead of a table",
	.flags = CMD_NEEDS_SERVER | CMD_JSON,
	.exec = exec,
};
