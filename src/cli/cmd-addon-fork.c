/* miren addon fork: give another app its own copy of an app's data in an
 * addon, as it is now or as it was at a point in time. */
#include "api/client.h"
#include "cli/cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const struct cli_optdef options[] = {
	{ .name = "to",
	  .kind = CLI_OPT_STRING,
	  .value = "OTHER",
	  .help = "the app that gets the copy (it must exist and not have the addon)",
	  .required = "which app gets the copy? give --to OTHER" },
	{ .name = "variant",
	  .kind = CLI_OPT_STRING,
	  .value = "V",
	  .help = "the variant of the copy (default: the one APP's addon has)" },
	{ .name = "at",
	  .kind = CLI_OPT_STRING,
	  .value = "TIME",
	  .help = "copy the data as it was at TIME, inside the point-in-time\n"
		  "window ('miren addon backups' shows it): \"2026-11-30 12:34:56+00\"\n"
		  "or \"10m-ago\" (engines with point-in-time recovery; default: now)" },
	{ 0 },
};

static int exec(struct cli *cli, int argc, char **argv)
{
	(void)argc;
	const char *addon = argv[0], *to = cli_str(cli, "to");
	const char *variant = cli_str(cli, "variant"), *at = cli_str(cli, "at");
	json_t *body = json_pack("{s:s}", "to", to), *res = NULL;
	if (variant)
		json_object_set_new(body, "variant", json_string(variant));
	if (at)
		json_object_set_new(body, "at", json_string(at));
	char *esc = api_escape(addon);
	char *suffix = xasprintf("/addons/%s/fork", esc);
	char *path = cli_app_path(cli, suffix);
	if (!cli->json && isatty(STDERR_FILENO))
		fprintf(stderr, "Forking addon %s of %s into %s...\n", addon, cli->app, to);
	int rc = cli_call(cli, "POST", path, body, &res);
	json_decref(body);
	free(path);
	free(suffix);
	free(esc);
	if (rc)
		return rc;
	if (cli->json) {
		cli_print_json(res);
	} else {
		const char *when = json_string_value(json_object_get(res, "at"));
		printf("Forked addon %s of %s (%s) into %s (%s)\n", addon, cli->app,
		       json_string_value(json_object_get(res, "from_variant")), to,
		       json_string_value(json_object_get(res, "variant")));
		printf("  %s has its own copy of the data%s%s; changes on either side stay there\n",
		       to, when ? " as at " : ", as it was now", when ? when : "");
	}
	json_decref(res);
	return CLI_OK;
}

const struct cmd_entry cmd_addon_fork_entry = {
	.name = "addon fork",
	.summary = "give another app its own copy of an app's addon data",
	.operands = "ADDON",
	.min_operands = 1,
	.max_operands = 1,
	.operands_missing = "which addon? give its name (see 'miren addon list')",
	.app = CLI_APP_OPTION,
	.options = options,
	.help = "Makes addon ADDON of app OTHER (--to) and fills it with a copy of APP's\n"
		"data in that addon: as it is now, or with --at as it was at a point in\n"
		"time of its point-in-time window (engines that have one: see 'miren addon\n"
		"backups ADDON -a APP').  Like Heroku's --fork, the\n"
		"copy is an addon of OTHER, which must exist (deploy it first) and must not\n"
		"have ADDON yet (destroy it first).  The copy has its own server or tenant\n"
		"(--variant picks which, by default APP's variant) and its own credentials;\n"
		"from then on it is an addon of OTHER like any other (listed, backed up,\n"
		"destroyed), and changes on either side never reach the other.  OTHER's\n"
		"services are restarted once with the new addon's variables, after its data\n"
		"is in.  APP and its data are only read.  Every step is recorded: a daemon\n"
		"stopped in the middle finishes the fork when it starts again, and a fork\n"
		"that fails is removed, leaving OTHER as it was.\n",
	.json_help = "print the new addon as JSON",
	.flags = CMD_NEEDS_SERVER | CMD_JSON,
	.exec = exec,
};
