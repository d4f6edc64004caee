/* miren addon list: the addons of an app and their status. */
#include "cli/cli.h"

#include <stdio.h>
#include <stdlib.h>

static int exec(struct cli *cli, int argc, char **argv)
{
	(void)argc;
	(void)argv;
	char *path = cli_app_path(cli, "/addons");
	json_t *list;
	int rc = cli_call(cli, "GET", path, NULL, &list);
	free(path);
	if (rc)
		return rc;
	if (cli_json_output(cli, list))
		return CLI_OK;
	if (json_array_size(list) == 0) {
		printf("App %s has no addons\n", cli->app);
		json_decref(list);
		return CLI_OK;
	}
	struct cli_table *t = cli_table_new(5, "ADDON", "VARIANT", "STATUS", "DISK", "MESSAGE");
	size_t i;
	json_t *a;
	json_array_foreach (list, i, a) {
		char disk[16] = "";
		if (json_object_get(a, "disk_used_percent"))
			snprintf(disk, sizeof(disk), "%d%%",
				 (int)json_integer_value(json_object_get(a, "disk_used_percent")));
		cli_table_row(t, json_string_value(json_object_get(a, "addon")),
			      json_string_value(json_object_get(a, "variant")),
			      json_string_value(json_object_get(a, "status")), disk,
			      json_string_value(json_object_get(a, "message")));
	}
	cli_table_print(t);
	cli_print_disk_warnings(list);
	/* An error's cause and what to do, which the table has no room for. */
	json_array_foreach (list, i, a) {
		json_t *e = json_object_get(a, "error");
		const char *name = json_string_value(json_object_get(a, "addon"));
		const char *detail = json_string_value(json_object_get(e, "detail"));
		const char *hint = json_string_value(json_object_get(e, "hint"));
		if (detail && *detail)
			printf("\n%s: detail: %s", name, detail);
		if (hint && *hint)
			printf("\n%s: hint: %s", name, hint);
		if ((detail && *detail) || (hint && *hint))
			printf("\n");
	}
	/* A backup that failed verification: its data may not restore. */
	json_array_foreach (list, i, a) {
		const char *bad = json_string_value(json_object_get(a, "backup_error"));
		if (bad)
			printf("\nerror: %s: %s\nhint: run 'miren addon backups verify %s -a %s' "
			       "once the cause is fixed, or take a new backup\n",
			       json_string_value(json_object_get(a, "addon")), bad,
			       json_string_value(json_object_get(a, "addon")), cli->app);
	}
	json_decref(list);
	return CLI_OK;
}

const struct cmd_entry cmd_addon_list_entry = {
	.name = "addon list",
	.summary = "list the addons of an app with their status",
	.app = CLI_APP_OPTION,
	.help = "Statuses: pending, provisioning, active, error (MESSAGE says why),\n"
		"deprovisioning; an active addon whose server the supervisor sees down shows\n"
		"restarting (it exited and is being started again), error (it keeps\n"
		"crashing) or down (it is stopped), with a MESSAGE.\n",
	.json_help = "print JSON (with disk, host, port, database and user)",
	.flags = CMD_NEEDS_SERVER | CMD_JSON,
	.exec = exec,
};
