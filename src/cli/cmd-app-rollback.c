/* miren app rollback: start an earlier release's code again, with today's
 * addons and variables, as a new release. */
#include "cli/cli.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The release number of an operand: "3" or "v3" (Heroku's spelling);
 * 0 when it is not one. */
static long long release_number(const char *s)
{
	if (*s == 'v' || *s == 'V')
		s++;
	if (*s < '1' || *s > '9' || strlen(s) > 9)
		return 0;
	char *end;
	errno = 0;
	long long n = strtoll(s, &end, 10);
	return *end || errno ? 0 : n;
}

/* The lines a rollback prints besides the services: which addons of the
 * old app.toml it left out. */
static void print_addon_notes(const char *app, long long to, const json_t *res)
{
	size_t i;
	json_t *v;
	json_array_foreach (json_object_get(res, "addons_not_restored"), i, v)
		cli_warn("release %lld's app.toml declares addon %s, which %s no longer has; a "
			 "rollback changes code, not addons: add it back with 'miren addon create "
			 "%s -a %s' if the code needs it",
			 to, json_string_value(v), app, json_string_value(v), app);
}

static int exec(struct cli *cli, int argc, char **argv)
{
	long long to = 0;
	if (argc > 0 && !(to = release_number(argv[0])))
		return cli_usage_error(cli,
				       "'%s' is not a release number (such as 3; 'miren app "
				       "releases' lists them)",
				       argv[0]);
	json_t *body = to ? json_pack("{s:I}", "release", (json_int_t)to) : json_object();
	json_t *res = NULL;
	char *path = cli_app_path(cli, "/rollback");
	int rc = cli_call(cli, "POST", path, body, &res);
	free(path);
	json_decref(body);
	if (rc)
		return rc;
	long long rel = json_integer_value(json_object_get(res, "release"));
	to = json_integer_value(json_object_get(res, "rollback_of"));
	/* As after a deploy: a service that exits at once is not live. */
	bool held = false;
	json_t *svcs = cli_settled_services(cli, !cli->json, &held);
	if (svcs)
		json_object_set(res, "services", svcs);
	json_decref(svcs);
	size_t exited = 0, i;
	json_t *v;
	json_array_foreach (held ? NULL : json_object_get(res, "services"), i, v)
		exited += cli_service_exited(v);
	if (cli->json) {
		cli_print_json(res);
		json_decref(res);
		return exited ? CLI_FAIL : CLI_OK;
	}
	print_addon_notes(cli->app, to, res);
	if (!held && cli_report_exited(cli->app, rel, json_object_get(res, "services"))) {
		json_decref(res);
		return CLI_FAIL;
	}
	printf("Rolled back %s to release %lld: release %lld is live (release %lld's code, "
	       "today's addons and variables)\n",
	       cli->app, to, rel, to);
	json_array_foreach (json_object_get(res, "services"), i, v) {
		const char *url = json_string_value(json_object_get(v, "url"));
		printf("  %-12s %-10s %s\n", json_string_value(json_object_get(v, "name")),
		       json_string_value(json_object_get(v, "state")), url ? url : "");
	}
	json_decref(res);
	return CLI_OK;
}

const struct cmd_entry cmd_app_rollback_entry = {
	.name = "app rollback",
	.summary = "start an earlier release again (today's addons and variables)",
	.operands = "[RELEASE]",
	.max_operands = 1,
	.operands_help = "  RELEASE               the release to roll back to (3 or v3; default:\n"
			 "                        the one before the current one)\n",
	.app = CLI_APP_OPTION,
	.help = "Makes a new release that is a copy of RELEASE's code and app.toml\n"
		"(services, commands, [[env]]), as Heroku does ('rollback to release N'\n"
		"in 'miren app releases'), and restarts the app's services on it.  A\n"
		"rollback changes code, not addons: no addon is created or removed, the\n"
		"addon variables (DATABASE_URL, ...) and 'miren env set' values are\n"
		"today's, and the addon settings of the current app.toml stay.  An addon\n"
		"RELEASE's app.toml declared that the app no longer has is named in a\n"
		"warning, not made again.  The next deploy of the same tree as RELEASE\n"
		"says 'No changes' unless the app's addons differ from what its app.toml\n"
		"declares; then it makes a new release that applies app.toml.  A service\n"
		"that exits within its first second is reported and the command exits 1.\n",
	.json_help = "print the result as JSON",
	.flags = CMD_NEEDS_SERVER | CMD_JSON,
	.exec = exec,
};
