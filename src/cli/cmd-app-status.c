/* miren app status: an app's release and each service's state. */
#include "cli/cli.h"

#include <stdio.h>
#include <stdlib.h>

static int exec(struct cli *cli, int argc, char **argv)
{
	(void)argc;
	(void)argv;
	json_t *st;
	char *path = cli_app_path(cli, NULL);
	int rc = cli_call(cli, "GET", path, NULL, &st);
	free(path);
	if (rc)
		return rc;
	if (cli_json_output(cli, st))
		return CLI_OK;
	long long rel = json_integer_value(json_object_get(st, "release"));
	printf("app:     %s\n", json_string_value(json_object_get(st, "name")));
	if (rel)
		printf("release: %lld\n\n", rel);
	else
		printf("release: none (not deployed yet)\n\n");
	struct cli_table *t = cli_table_new(6, "SERVICE", "STATE", "PID", "PORT", "URL",
					    "RESTARTS");
	size_t i;
	json_t *s;
	json_array_foreach (json_object_get(st, "services"), i, s) {
		char pid[32], port[32], restarts[32];
		snprintf(pid, sizeof(pid), "%lld", json_integer_value(json_object_get(s, "pid")));
		snprintf(port, sizeof(port), "%lld",
			 json_integer_value(json_object_get(s, "port")));
		snprintf(restarts, sizeof(restarts), "%lld",
			 json_integer_value(json_object_get(s, "restarts")));
		cli_table_row(t, json_string_value(json_object_get(s, "name")),
			      json_string_value(json_object_get(s, "state")), pid, port,
			      json_string_value(json_object_get(s, "url")), restarts);
	}
	cli_table_print(t);
	json_t *addons = json_object_get(st, "addons");
	if (json_array_size(addons))
		printf("\n");
	json_array_foreach (addons, i, s) {
		const char *msg = json_string_value(json_object_get(s, "message"));
		printf("addon %s (%s): %s%s%s\n", json_string_value(json_object_get(s, "addon")),
		       json_string_value(json_object_get(s, "variant")),
		       json_string_value(json_object_get(s, "status")), msg && *msg ? ": " : "",
		       msg && *msg ? msg : "");
		json_t *e = json_object_get(s, "error");
		const char *detail = json_string_value(json_object_get(e, "detail"));
		const char *hint = json_string_value(json_object_get(e, "hint"));
		if (detail && *detail)
			printf("  detail: %s\n", detail);
		if (hint && *hint)
			printf("  hint: %s\n", hint);
	}
	cli_print_disk_warnings(addons);
	json_decref(st);
	return CLI_OK;
}

const struct cmd_entry cmd_app_status_entry = {
	.name = "app status",
	.summary = "show an app's release and the state of its services",
	.app = CLI_APP_OPTION,
	.help = "States: starting, running, backoff (exited, restarting soon), crashloop\n"
		"(exited quickly several times in a row), detached (exited 0 while\n"
		"processes it started still run; restarted once they are gone), stopping,\n"
		"stopped, and waiting-for-addons (held until every addon of the app is\n"
		"active).\n",
	.flags = CMD_NEEDS_SERVER | CMD_JSON,
	.exec = exec,
};
