/* miren debug disk list: every disk with its size, usage and user. */
#include "cli/cli.h"

#include <stdio.h>

static int exec(struct cli *cli, int argc, char **argv)
{
	(void)argc;
	(void)argv;
	json_t *list, *mode = NULL;
	int rc = cli_call(cli, "GET", "/v1/disks", NULL, &list);
	if (rc)
		return rc;
	if (cli_json_output(cli, list))
		return CLI_OK;
	rc = cli_call(cli, "GET", "/v1/debug/disks", NULL, &mode);
	if (rc) {
		json_decref(list);
		return rc;
	}
	struct cli_table *t = cli_table_new(7, "NAME", "SIZE", "USED", "USE%", "MODE", "STATUS",
					    "CREATED BY");
	size_t i;
	json_t *d;
	json_array_foreach (list, i, d) {
		char size[32], used[32], pct[16];
		cli_human_bytes((unsigned long long)json_integer_value(json_object_get(d, "size")),
				size, sizeof(size));
		cli_human_bytes((unsigned long long)json_integer_value(json_object_get(d, "used")),
				used, sizeof(used));
		snprintf(pct, sizeof(pct), "%d%%",
			 (int)json_integer_value(json_object_get(d, "used_percent")));
		cli_table_row(t, json_string_value(json_object_get(d, "name")), size, used, pct,
			      json_string_value(json_object_get(d, "mode")),
			      json_string_value(json_object_get(d, "status")),
			      json_string_value(json_object_get(d, "created_by")));
	}
	cli_table_print(t);
	json_array_foreach (list, i, d) {
		const char *w = json_string_value(json_object_get(d, "warning"));
		if (w)
			cli_warn("%s", w);
	}
	printf("\nDisk mode: %s (%s)\n", json_string_value(json_object_get(mode, "mode")),
	       json_string_value(json_object_get(mode, "reason")));
	json_decref(mode);
	json_decref(list);
	return CLI_OK;
}

const struct cmd_entry cmd_debug_disk_list_entry = {
	.name = "debug disk list",
	.summary = "list the disks (addon storage) with size, usage, mode and owner",
	.help = "Each addon's data lives on a disk named after its addon and app; a\n"
		"shared server's disk is named after the server.\n"
		"SIZE is the disk's size (1 GiB for a small addon, 10 GiB for a shared\n"
		"server unless resized), USED and USE% its filesystem's own numbers.  MODE\n"
		"is ext4 (a sparse image, loop-mounted at DATA/disks/NAME: a full disk is\n"
		"full for its server only) or dirs (a plain directory: the size is recorded,\n"
		"not enforced; used when the daemon is not root, the kernel has no loop\n"
		"devices, or MIREN_DISKS=dirs).  A disk over 90% full, or an image that is\n"
		"not mounted, gets a warning line.  The last line says which mode the\n"
		"daemon uses for new disks, and why.\n",
	.json_help = "print JSON (sizes in bytes)",
	.flags = CMD_NEEDS_SERVER | CMD_JSON,
	.exec = exec,
};
