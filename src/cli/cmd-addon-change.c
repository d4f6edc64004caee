/* miren addon change: move an app's addon to another variant in place (the
 * data copied while the app runs, writes refused only for the last part). */
#include "api/client.h"
#include "cli/cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int exec(struct cli *cli, int argc, char **argv)
{
	(void)argc;
	char *name = xstrdup(argv[0]);
	char *variant = strchr(name, ':');
	if (variant)
		*variant++ = '\0';
	if (!*name || !variant || !*variant) {
		free(name);
		return cli_usage_error(cli, "give the addon and the variant to change it to, as "
					    "ADDON:VARIANT ('miren addon variants ADDON' lists the "
					    "variants)");
	}
	char *esc = api_escape(name);
	char *suffix = xasprintf("/addons/%s/change", esc);
	char *path = cli_app_path(cli, suffix);
	json_t *body = json_pack("{s:s}", "variant", variant), *res = NULL;
	int rc = cli_call(cli, "POST", path, body, &res);
	json_decref(body);
	free(path);
	free(suffix);
	free(esc);
	if (!rc && cli->json) {
		cli_print_json(res);
	} else if (!rc) {
		printf("Addon %s of %s changed from %s to %s\n", name, cli->app,
		       json_string_value(json_object_get(res, "from")),
		       json_string_value(json_object_get(res, "to")));
		printf("  data copied by %s; writes refused for %lld ms; the app %s\n",
		       !strcmp(json_string_value(json_object_get(res, "method")), "replication")
			       ? "logical replication while the app ran"
			       : "a dump and load",
		       (long long)json_integer_value(json_object_get(res, "writes_paused_ms")),
		       json_is_true(json_object_get(res, "restarted"))
			       ? "was restarted on the new one, then the old one was removed"
			       : "has no services; the old instance was removed");
	}
	json_decref(res);
	free(name);
	return rc;
}

const struct cmd_entry cmd_addon_change_entry = {
	.name = "addon change",
	.summary = "move an app's addon to another variant, keeping its data",
	.operands = "ADDON:VARIANT",
	.min_operands = 1,
	.max_operands = 1,
	.operands_missing = "which addon and variant? give ADDON:VARIANT",
	.operands_help = "  ADDON:VARIANT         the addon and the variant to move it to\n",
	.app = CLI_APP_OPTION,
	.help = "Makes a new instance of the addon in VARIANT beside the app's current one,\n"
		"copies the app's data into it while the app keeps running (an engine\n"
		"with logical replication copies it that way; the others by a dump and\n"
		"load during the pause), then refuses the app's writes for a moment\n"
		"while the last\n"
		"changes and the sequences are copied, switches the app's env\n"
		"(DATABASE_URL and the engine's variables) to the new instance, restarts\n"
		"the app's services once, and removes the old instance only after the new\n"
		"one answered.  A failure before the switch leaves the app on its old\n"
		"variant as it was, and the new instance is removed.  Every step is\n"
		"recorded: a daemon stopped in the middle undoes the change (before the\n"
		"switch) or finishes it (after) when it starts again.  Changing\n"
		"'variant' in app.toml and deploying does the same.\n",
	.json_help = "print the result as JSON",
	.flags = CMD_NEEDS_SERVER | CMD_JSON,
	.exec = exec,
};
