/* miren addon create: attach an addon to an app and wait until it is active. */
#include "cli/cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const struct cli_optdef options[] = {
	{ .name = "version",
	  .kind = CLI_OPT_STRING,
	  .value = "V",
	  .help = "the server version (default: the newest installed)" },
	{ .name = "no-wait",
	  .kind = CLI_OPT_FLAG,
	  .help = "return once the addon is attached, without waiting" },
	{ 0 },
};

static int exec(struct cli *cli, int argc, char **argv)
{
	(void)argc;
	const char *version = cli_str(cli, "version");
	bool no_wait = cli_flag(cli, "no-wait");
	char *name = xstrdup(argv[0]);
	char *variant = strchr(name, ':');
	if (variant)
		*variant++ = '\0';
	json_t *body = json_pack("{s:s}", "addon", name);
	if (variant && *variant)
		json_object_set_new(body, "variant", json_string(variant));
	if (version)
		json_object_set_new(body, "version", json_string(version));
	char *path = cli_app_path(cli, "/addons");
	json_t *inst = NULL;
	int rc = cli_call(cli, "POST", path, body, &inst);
	free(path);
	json_decref(body);
	if (!rc && !no_wait) {
		rc = cli_wait_addons(cli, name);
		/* Show the addon as it is now, not as it was attached. */
		char *lpath = cli_app_path(cli, "/addons");
		json_t *list = NULL;
		if (!rc && !cli_call(cli, "GET", lpath, NULL, &list)) {
			size_t i;
			json_t *a;
			json_array_foreach (list, i, a)
				if (!strcmp(json_string_value(json_object_get(a, "addon")), name)) {
					json_decref(inst);
					inst = json_incref(a);
				}
		}
		json_decref(list);
		free(lpath);
	}
	if (!rc) {
		if (cli->json)
			cli_print_json(inst);
		else if (no_wait)
			printf("Addon %s (%s) attached to %s; provisioning\n", name,
			       json_string_value(json_object_get(inst, "variant")), cli->app);
		else
			printf("Addon %s (%s) is active on %s\n", name,
			       json_string_value(json_object_get(inst, "variant")), cli->app);
	}
	json_decref(inst);
	free(name);
	return rc;
}

const struct cmd_entry cmd_addon_create_entry = {
	.name = "addon create",
	.summary = "attach an addon to an app and wait until it is active",
	.operands = "ADDON[:VARIANT]",
	.min_operands = 1,
	.max_operands = 1,
	.operands_missing = "which addon? give ADDON[:VARIANT]",
	.operands_help = "  ADDON[:VARIANT]       the addon, and optionally the variant\n",
	.app = CLI_APP_OPTION,
	.options = options,
	.help = "Provisions the addon (ADDON as 'miren addon list-available' shows it,\n"
		"VARIANT one of 'miren addon variants ADDON'; without a variant the addon's\n"
		"default) and injects its variables into the app; the app's services are\n"
		"(re)started once every addon is active.\n",
	.json_help = "print the addon as JSON",
	.flags = CMD_NEEDS_SERVER | CMD_JSON,
	.exec = exec,
};
