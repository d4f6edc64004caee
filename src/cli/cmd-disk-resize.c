/* miren disk resize: grow a disk (its image and filesystem) to a new size. */
#include "api/client.h"
#include "cli/cli.h"
#include "disk/volume.h"

#include <stdio.h>
#include <string.h>

static const struct cli_optdef options[] = {
	{ .name = "name",
	  .letter = 'n',
	  .kind = CLI_OPT_STRING,
	  .value = "NAME",
	  .help = "the disk (see 'miren debug disk list')",
	  .required = "which disk? give -n NAME (see 'miren debug disk list')" },
	{ .name = "size",
	  .letter = 's',
	  .kind = CLI_OPT_STRING,
	  .value = "SIZE",
	  .help = "the new size: a number with K, M, G or T (powers of\n1024; KiB, MB, GiB, ... "
		  "mean the same), e.g. 2G, 1536M",
	  .required = "which size? give --size SIZE, e.g. --size 2G" },
	{ 0 },
};

static int exec(struct cli *cli, int argc, char **argv)
{
	(void)argc;
	(void)argv;
	const char *name = cli_str(cli, "name"), *size = cli_str(cli, "size");
	uint64_t bytes;
	struct miren_error err;
	miren_error_clear(&err);
	if (volume_parse_size(size, &bytes, &err) != 0)
		return cli_usage_error(cli, "%s (%s)", err.message, err.hint);
	char *esc = api_escape(name);
	char *path = xasprintf("/v1/disks/%s/resize", esc);
	free(esc);
	json_t *body = json_pack("{s:I}", "size", (json_int_t)bytes);
	json_t *res;
	int rc = cli_call(cli, "POST", path, body, &res);
	json_decref(body);
	free(path);
	if (rc)
		return rc;
	if (cli_json_output(cli, res))
		return CLI_OK;
	char from[32], to[32], used[32];
	cli_human_bytes((unsigned long long)json_integer_value(
				json_object_get(res, "previous_size")),
			from, sizeof(from));
	cli_human_bytes((unsigned long long)json_integer_value(json_object_get(res, "size")), to,
			sizeof(to));
	cli_human_bytes((unsigned long long)json_integer_value(json_object_get(res, "used")), used,
			sizeof(used));
	const char *mode = json_string_value(json_object_get(res, "mode"));
	printf("Disk %s: %s -> %s (%s used, %d%%)\n", name, from, to, used,
	       (int)json_integer_value(json_object_get(res, "used_percent")));
	if (mode && !strcmp(mode, "dirs"))
		printf("  the disk is a plain directory: the size is recorded, not enforced\n");
	else if (json_is_true(json_object_get(res, "server_restarted")))
		printf("  grown while unmounted: its database server was stopped and started "
		       "again\n");
	else
		printf("  grown online\n");
	json_decref(res);
	return CLI_OK;
}

const struct cmd_entry cmd_disk_resize_entry = {
	.name = "disk resize",
	.summary = "grow a disk to a new size",
	.help = "Grows the disk's ext4 image and its filesystem to SIZE while its database\n"
		"keeps running (when the daemon may resize a mounted filesystem, which needs\n"
		"CAP_SYS_RESOURCE; otherwise its server stops for the resize, a second or\n"
		"two, and starts again).  Disks only grow: a SIZE under the disk's size is\n"
		"refused and nothing changes.  Where disks are plain directories ('miren debug\n"
		"disk list' shows the mode) only the recorded size changes.  Running it again\n"
		"after an interruption finishes the resize.\n",
	.options = options,
	.json_help = "print the disk's new state as JSON",
	.flags = CMD_NEEDS_SERVER | CMD_JSON,
	.exec = exec,
};
