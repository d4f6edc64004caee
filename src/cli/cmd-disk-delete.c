/* miren disk delete: delete a disk that nothing uses. */
#include "addon/disk_ops.h"
#include "api/client.h"
#include "cli/cli.h"

#include <stdio.h>
#include <stdlib.h>

static const struct cli_optdef options[] = {
	{ .name = "name",
	  .letter = 'n',
	  .kind = CLI_OPT_STRING,
	  .value = "NAME",
	  .help = "the disk (see 'miren debug disk list')",
	  .required = "which disk? give -n NAME (see 'miren debug disk list')" },
	{ .name = "force",
	  .letter = 'f',
	  .kind = CLI_OPT_FLAG,
	  .help = "do not ask for confirmation" },
	{ 0 },
};

static int exec(struct cli *cli, int argc, char **argv)
{
	(void)argc;
	(void)argv;
	const char *name = cli_str(cli, "name");
	struct miren_error err;
	if (disk_name_check(name, &err) != 0)
		return cli_fail(&err);
	if (!cli_flag(cli, "force") &&
	    !cli_confirm("Delete disk '%s' and all its data? This cannot be undone.", name))
		return cli_failf(MIREN_EINTERNAL, "pass -f to delete without asking",
				 "not deleting disk '%s' without confirmation", name);
	char *esc = api_escape(name);
	char *path = xasprintf("/v1/disks/%s", esc);
	free(esc);
	json_t *res;
	int rc = cli_call(cli, "DELETE", path, NULL, &res);
	free(path);
	if (rc)
		return rc;
	if (cli_json_output(cli, res))
		return CLI_OK;
	char size[32];
	cli_human_bytes((unsigned long long)json_integer_value(json_object_get(res, "size_bytes")),
			size, sizeof(size));
	printf("Deleted disk %s (%s)\n", name, size);
	json_decref(res);
	return CLI_OK;
}

const struct cmd_entry cmd_disk_delete_entry = {
	.name = "disk delete",
	.summary = "delete a disk that nothing uses",
	.help = "Deletes the disk and its data, after asking (unless -f; without a terminal\n"
		"to ask on, nothing is deleted without -f).  A disk an addon's server uses\n"
		"is refused, with the server and its app: an addon's disk goes with the\n"
		"addon ('miren addon destroy').  Meant for the disks nothing uses, such as\n"
		"the copy 'miren disk restore -n NAME' made.  A deletion a crash\n"
		"interrupted is finished when the server starts.\n",
	.options = options,
	.json_help = "print the deleted disk as JSON",
	.flags = CMD_NEEDS_SERVER | CMD_JSON,
	.exec = exec,
};
