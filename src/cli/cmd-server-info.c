/* miren server info: what the running server is and where it listens. */
#include "cli/cli.h"

#include <jansson.h>
#include <stdio.h>

static int exec(struct cli *cli, int argc, char **argv)
{
	(void)argc;
	(void)argv;
	json_t *res = NULL;
	int rc = cli_call(cli, "GET", "/v1/server", NULL, &res);
	if (rc || cli_json_output(cli, res))
		return rc;
	printf("version         %s\n", json_string_value(json_object_get(res, "version")));
	printf("data directory  %s\n", json_string_value(json_object_get(res, "data_dir")));
	printf("socket          %s\n", json_string_value(json_object_get(res, "socket")));
	size_t i;
	json_t *v;
	if (!json_array_size(json_object_get(res, "listen")))
		printf("listen          none (start the server with --listen ADDR:PORT)\n");
	json_array_foreach (json_object_get(res, "listen"), i, v)
		printf("listen          https://%s  %s\n",
		       json_string_value(json_object_get(v, "address")),
		       json_string_value(json_object_get(v, "fingerprint")));
	json_t *disks = json_object_get(res, "disks");
	printf("disk mode       %s\n", json_string_value(json_object_get(disks, "mode")));
	json_decref(res);
	return CLI_OK;
}

const struct cmd_entry cmd_server_info_entry = {
	.name = "server info",
	.summary = "show the running server's version, data directory, listeners and disk mode",
	.help = "Each HTTPS listener is shown with its certificate's fingerprint, the\n"
		"value a remote CLI pins.\n",
	.flags = CMD_NEEDS_SERVER | CMD_JSON,
	.exec = exec,
};
