/* miren addon rotate: give an app new credentials for an addon with no
 * failed connection (the old ones are revoked only after the app's
 * services restarted on the new ones). */
#include "api/client.h"
#include "cli/cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const struct cli_optdef options[] = {
	{ .name = "credential",
	  .kind = CLI_OPT_STRING,
	  .value = "WHICH",
	  .help = "which credentials: user (the app's own, the default) or\n"
		  "superuser (engines that give the app one)" },
	{ 0 },
};

static int exec(struct cli *cli, int argc, char **argv)
{
	(void)argc;
	const char *addon = argv[0], *cred = cli_str(cli, "credential");
	if (!cred)
		cred = "user";
	if (strcmp(cred, "user") != 0 && strcmp(cred, "superuser") != 0)
		return cli_usage_error(cli, "--credential must be user or superuser, not '%s'",
				       cred);
	char *esc = api_escape(addon);
	char *suffix = xasprintf("/addons/%s/rotate", esc);
	char *path = cli_app_path(cli, suffix);
	json_t *body = json_pack("{s:s}", "credential", cred), *res = NULL;
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
		time_t at = (time_t)json_integer_value(
			json_object_get(res, "credentials_issued_at"));
		struct tm tm;
		char when[64] = "";
		if (gmtime_r(&at, &tm))
			strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S UTC", &tm);
		printf("Rotated the %s credentials of addon %s of %s (%s)%s\n", cred, addon,
		       cli->app, json_string_value(json_object_get(res, "variant")),
		       json_is_true(json_object_get(res, "resumed"))
			       ? ", finishing a rotation a stopped daemon left"
			       : "");
		printf("  new credentials issued %s; the app's env has them\n", when);
		printf("  the app was restarted on them, then the old ones were revoked\n");
	}
	json_decref(res);
	return CLI_OK;
}

const struct cmd_entry cmd_addon_rotate_entry = {
	.name = "addon rotate",
	.summary = "give an app new credentials for an addon, with no failed connection",
	.operands = "ADDON",
	.min_operands = 1,
	.max_operands = 1,
	.operands_missing = "which addon? give its name (see 'miren addon list')",
	.app = CLI_APP_OPTION,
	.options = options,
	.help = "Issues new credentials while the old ones still work, switches the app's\n"
		"env (DATABASE_URL and the engine's variables) to them, restarts the app's\n"
		"services on them, and only then revokes the old ones (their sessions are\n"
		"ended): a client that reconnects with the app's env never sees an\n"
		"authentication failure.  Where the engine has roles, the app has two\n"
		"logins that act as its one owner role and take turns, so its tables keep\n"
		"their owner and the app can still alter every one of them.  Every step is\n"
		"recorded: a daemon stopped in the middle finishes the rotation when it\n"
		"starts again (or at the next 'miren addon rotate').  No credential is\n"
		"printed; read them with 'miren env get -a APP DATABASE_URL --unmask'.\n"
		"'miren addon list --format json' gives when the current ones were issued\n"
		"(credentials_issued_at, unix seconds).\n",
	.json_help = "print the result as JSON",
	.flags = CMD_NEEDS_SERVER | CMD_JSON,
	.exec = exec,
};
