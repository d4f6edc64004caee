/* miren debug disk list: every disk with its size, usage and user. */
#include "cli/cli.h"

#include <stdio.h>

static int exec(struct cli *cli, int argc, char **argv)
{
	(void)argc;
	(void)argv;
	json_t *list;
	int rc = cli_call(cli, "GET", "/v1/disks", NULL, &list);
	if (rc)
		return rc;
	if (cli_json_output(cli, list))
		return CLI_OK;
	struct cli_table *t = cli_table_new(5, "NAME", "SIZE", "USED", "STATUS", "CREATED BY");
	size_t i;
	json_t *d;
	json_array_foreach(list, i, d) {
		char size[32], used[32];
		cli_human_bytes((unsigned long long)json_integer_value(json_object_get(d, "size")), size,
				sizeof(size));
		cli_human_bytes((unsigned long long)json_integer_value(json_object_get(d, "used")), used,
				sizeof(used));
		cli_table_row(t, json_string_value(json_object_get(d, "name")), size, used,
			      json_string_value(json_object_get(d, "status")),
			      json_string_value(json_object_get(d, "created_by")));
	}
	cli_table_print(t);
	json_decref(list);
	return CLI_OK;
}

const struct cmd_entry cmd_debug_disk_list_entry = {
	.name = "debug disk list",
	.summary = "list the disks (addon storage) with size, usage and owner",
	.help = "Each addon's data lives on a disk named after its addon and app; a\n"
		"shared server's disk is named after the server.\n",
	.json_help = "print JSON (sizes in bytes)",
	.flags = CMD_NEEDS_SERVER | CMD_JSON,
	.exec = exec,
};
