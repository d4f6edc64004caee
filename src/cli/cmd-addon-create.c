/* miren addon create: attach an addon to an app and wait until it is active. */
#include "cli/cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { OPT_NO_WAIT = OPT_FIRST_COMMAND_OPT, OPT_VERSION };

static const struct option longopts[] = {
	CLI_APP_LONGOPT,
	{ "no-wait", no_argument, NULL, OPT_NO_WAIT },
	{ "version", required_argument, NULL, OPT_VERSION },
	{ 0 },
};

static bool no_wait;
static const char *version;

static int option(struct cli *cli, int opt, const char *arg)
{
	if (opt == OPT_NO_WAIT) {
		no_wait = true;
		return 0;
	}
	if (opt == OPT_VERSION) {
		version = arg;
		return 0;
	}
	return cli_opt_app(cli, opt, arg);
}

static int exec(struct cli *cli, int argc, char **argv)
{
	if (argc != 1)
		return cli_usage_error(cli, argc ? "give one ADDON[:VARIANT]"
						 : "which addon? give ADDON[:VARIANT]");
	int rc = cli_require_app(cli);
	if (rc)
		return rc;
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
	rc = cli_call(cli, "POST", path, body, &inst);
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
			json_array_foreach(list, i, a)
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
	.usage = "miren addon create ADDON[:VARIANT] [-a APP] [--version V] [--no-wait] [--format json]",
	.help = "Provisions the addon (ADDON as 'miren addon list-available' shows it,\n"
		"VARIANT one of 'miren addon variants ADDON'; without a variant the addon's\n"
		"default) and injects its variables into the app; the app's services are\n"
		"(re)started once every addon is active.\n"
		"\noptions:\n"
		"  -a, --app APP   the app (default: the one of .miren/app.toml here)\n"
		"  --version V     the server version (default: the newest installed)\n"
		"  --no-wait       return once the addon is attached, without waiting\n"
		"  --format json   print the addon as JSON\n",
	.shortopts = "a:",
	.longopts = longopts,
	.flags = CMD_NEEDS_SERVER,
	.option = option,
	.exec = exec,
};
