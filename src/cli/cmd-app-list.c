/* miren app list: every app with its release and running services. */
#include "cli/cli.h"

#include <stdio.h>

static int exec(struct cli *cli, int argc, char **argv)
{
	(void)argc;
	(void)argv;
	json_t *apps;
	int rc = cli_call(cli, "GET", "/v1/apps", NULL, &apps);
	if (rc)
		return rc;
	if (cli_json_output(cli, apps))
		return CLI_OK;
	struct cli_table *t = cli_table_new(3, "NAME", "RELEASE", "SERVICES");
	size_t i;
	json_t *a;
	json_array_foreach (apps, i, a) {
		char rel[32], svcs[64];
		snprintf(rel, sizeof(rel), "%lld",
			 json_integer_value(json_object_get(a, "release")));
		snprintf(svcs, sizeof(svcs), "%lld/%lld running",
			 json_integer_value(json_object_get(a, "running")),
			 json_integer_value(json_object_get(a, "services")));
		cli_table_row(t, json_string_value(json_object_get(a, "name")), rel, svcs);
	}
	cli_table_print(t);
	json_decref(apps);
	return CLI_OK;
}

const struct cmd_entry cmd_app_list_entry = {
	.name = "app list",
	.summary = "list the apps",
	.json_help = "print JSON instead of a table",
	.flags = CMD_NEEDS_SERVER | CMD_JSON,
	.exec = exec,
};
