/* miren disk resize: grow a disk (its image and filesystem) to a new size. */
#include "cli/cli.h"
#include "api/client.h"
#include "disk/volume.h"

#include <getopt.h>
#include <stdio.h>
#include <string.h>

static const struct option longopts[] = {
	{ "name", required_argument, NULL, 'n' },
	{ "size", required_argument, NULL, 's' },
	{ NULL, 0, NULL, 0 },
};

static const char *name, *size;

static int option(struct cli *cli, int opt, const char *arg)
{
	if (opt == 'n')
		return cli_opt_once(cli, "-n", &name, arg);
	if (opt == 's')
		return cli_opt_once(cli, "--size", &size, arg);
	return cli_usage_error(cli, "unknown option");
}

static int exec(struct cli *cli, int argc, char **argv)
{
	if (argc)
		return cli_usage_error(cli, "unexpected argument '%s'", argv[0]);
	if (!name)
		return cli_usage_error(cli, "which disk? give -n NAME (see 'miren debug disk list')");
	if (!size)
		return cli_usage_error(cli, "which size? give --size SIZE, e.g. --size 2G");
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
	cli_human_bytes((unsigned long long)json_integer_value(json_object_get(res, "previous_size")),
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
		printf("  grown while unmounted: its database server was stopped and started again\n");
	else
		printf("  grown online\n");
	json_decref(res);
	return CLI_OK;
}

const struct cmd_entry cmd_disk_resize_entry = {
	.name = "disk resize",
	.summary = "grow a disk to a new size",
	.usage = "miren disk resize -n NAME --size SIZE [--format json]",
	.help = "Grows the disk's ext4 image and its filesystem to SIZE while its database\n"
		"keeps running (when the daemon may resize a mounted filesystem, which needs\n"
		"CAP_SYS_RESOURCE; otherwise its server stops for the resize, a second or\n"
		"two, and starts again).  Disks only grow: a SIZE under the disk's size is\n"
		"refused and nothing changes.  Where disks are plain directories ('miren debug\n"
		"disk list' shows the mode) only the recorded size changes.  Running it again\n"
		"after an interruption finishes the resize.\n"
		"\noptions:\n"
		"  -n, --name NAME     the disk (see 'miren debug disk list')\n"
		"  -s, --size SIZE     the new size: a number with K, M, G or T (powers of\n"
		"                      1024; KiB, MB, GiB, ... mean the same), e.g. 2G, 1536M\n"
		"  --format json       print the disk's new state as JSON\n",
	.shortopts = "n:s:",
	.longopts = longopts,
	.flags = CMD_NEEDS_SERVER,
	.option = option,
	.exec = exec,
};
