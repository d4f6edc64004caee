/* miren debug state: what the server's state store records, for tests and
 * debugging (so that nothing needs to read the store's file). */
#include "cli/cli.h"

#include <stdio.h>

static const struct cli_optdef options[] = {
	{ .name = "unmask", .kind = CLI_OPT_FLAG, .help = "show passwords in provider state" },
	{ 0 },
};

static int exec(struct cli *cli, int argc, char **argv)
{
	(void)argc;
	(void)argv;
	bool unmask = cli_flag(cli, "unmask");
	json_t *res;
	int rc = cli_call(cli, "GET", unmask ? "/v1/debug/state?unmask=1" : "/v1/debug/state", NULL,
			  &res);
	if (rc)
		return rc;
	if (cli_json_output(cli, res))
		return CLI_OK;
	size_t i;
	json_t *v;
	printf("schema %lld\n", json_integer_value(json_object_get(res, "schema")));
	json_array_foreach (json_object_get(res, "apps"), i, v)
		printf("app %s release %lld\n", json_string_value(json_object_get(v, "name")),
		       json_integer_value(json_object_get(v, "release")));
	json_array_foreach (json_object_get(res, "addons"), i, v)
		printf("addon %s %s of app %s (%s, %s step %lld)\n",
		       json_string_value(json_object_get(v, "id")),
		       json_string_value(json_object_get(v, "addon")),
		       json_string_value(json_object_get(v, "app")),
		       json_string_value(json_object_get(v, "variant")),
		       json_string_value(json_object_get(v, "status")),
		       json_integer_value(json_object_get(v, "step")));
	json_array_foreach (json_object_get(res, "servers"), i, v)
		printf("server %s %s on disk %s at %s:%lld\n",
		       json_string_value(json_object_get(v, "id")),
		       json_string_value(json_object_get(v, "kind")),
		       json_string_value(json_object_get(v, "disk")),
		       json_string_value(json_object_get(v, "address")),
		       json_integer_value(json_object_get(v, "port")));
	json_array_foreach (json_object_get(res, "disks"), i, v)
		printf("disk %s (%s)\n", json_string_value(json_object_get(v, "name")),
		       json_string_value(json_object_get(v, "status")));
	json_decref(res);
	return CLI_OK;
}

const struct cmd_entry cmd_debug_state_entry = {
	.name = "debug state",
	.summary = "show what the server's state store records",
	.help = "Shows the records of the server's state store: apps with their\n"
		"releases, addon instances with their status, step and provider state,\n"
		"servers and disks.  Tests read the daemon's state through this command\n"
		"(and 'miren debug invariants'), never through the store's file.\n"
		"Passwords in provider state are masked unless --unmask.\n",
	.options = options,
	.json_help = "print {\"schema\", \"apps\", \"addons\", \"servers\", \"disks\"}",
	.flags = CMD_NEEDS_SERVER | CMD_JSON,
	.exec = exec,
};
