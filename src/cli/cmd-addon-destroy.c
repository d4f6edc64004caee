/* miren addon destroy: remove an addon from an app, deleting its data. */
#include "cli/cli.h"
#include "api/client.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

enum { OPT_NO_WAIT = OPT_FIRST_COMMAND_OPT };

static const struct option longopts[] = {
	CLI_APP_LONGOPT,
	{ "force", no_argument, NULL, 'f' },
	{ "no-wait", no_argument, NULL, OPT_NO_WAIT },
	{ 0 },
};

static bool force, no_wait;

static int option(struct cli *cli, int opt, const char *arg)
{
	if (opt == 'f') {
		force = true;
		return 0;
	}
	if (opt == OPT_NO_WAIT) {
		no_wait = true;
		return 0;
	}
	return cli_opt_app(cli, opt, arg);
}

/* Waits until the app no longer lists the addon. */
static int wait_gone(struct cli *cli, const char *addon)
{
	char *path = cli_app_path(cli, "/addons");
	int rc = CLI_OK;
	for (time_t start = time(NULL);;) {
		json_t *list;
		if (cli_call(cli, "GET", path, NULL, &list)) {
			rc = CLI_FAIL;
			break;
		}
		bool present = false;
		const char *msg = NULL;
		size_t i;
		json_t *a;
		json_array_foreach(list, i, a)
			if (!strcmp(json_string_value(json_object_get(a, "addon")), addon)) {
				present = true;
				msg = json_string_value(json_object_get(a, "message"));
			}
		if (present && time(NULL) - start > 120) {
			cli_error("addon %s is still being removed: %s", addon,
				  msg && *msg ? msg : "no progress");
			cli_hint("the server retries; follow it with 'miren addon list -a %s'", cli->app);
			rc = CLI_FAIL;
		}
		json_decref(list);
		if (!present || rc)
			break;
		usleep(50 * 1000);
	}
	free(path);
	return rc;
}

static int exec(struct cli *cli, int argc, char **argv)
{
	if (argc != 1)
		return cli_usage_error(cli, argc ? "give one ADDON" : "which addon? give its name");
	int rc = cli_require_app(cli);
	if (rc)
		return rc;
	if (!force && !cli_confirm("Destroy addon %s of app '%s'? Its database and all its data "
				   "will be deleted; this cannot be undone.",
				   argv[0], cli->app)) {
		cli_error("not destroying addon %s without confirmation", argv[0]);
		cli_hint("pass -f to destroy without asking");
		return CLI_FAIL;
	}
	char *esc = api_escape(argv[0]);
	char *suffix = xasprintf("/addons/%s", esc);
	char *path = cli_app_path(cli, suffix);
	rc = cli_call(cli, "DELETE", path, NULL, NULL);
	free(path);
	free(suffix);
	free(esc);
	if (!rc && !no_wait)
		rc = wait_gone(cli, argv[0]);
	if (!rc)
		printf(no_wait ? "Removing addon %s from %s\n" : "Destroyed addon %s of %s\n",
		       argv[0], cli->app);
	return rc;
}

const struct cmd_entry cmd_addon_destroy_entry = {
	.name = "addon destroy",
	.summary = "remove an addon from an app and delete its data",
	.usage = "miren addon destroy ADDON [-a APP] [-f] [--no-wait]",
	.help = "Destroying an addon permanently deletes its database and all its data;\n"
		"back up its disk first (miren disk backup).  The app's services are\n"
		"restarted without the addon's variables.\n"
		"\noptions:\n"
		"  -a, --app APP   the app (default: the one of .miren/app.toml here)\n"
		"  -f, --force     do not ask for confirmation\n"
		"  --no-wait       return once the removal has started\n",
	.shortopts = "a:f",
	.longopts = longopts,
	.flags = CMD_NEEDS_SERVER,
	.option = option,
	.exec = exec,
};
