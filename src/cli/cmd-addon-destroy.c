/* miren addon destroy: remove an addon from an app, deleting its data. */
#include "api/client.h"
#include "cli/cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const struct cli_optdef options[] = {
	{ .name = "force",
	  .letter = 'f',
	  .kind = CLI_OPT_FLAG,
	  .help = "do not ask for confirmation" },
	{ .name = "no-wait", .kind = CLI_OPT_FLAG, .help = "return once the removal has started" },
	{ .name = "no-final-backup",
	  .kind = CLI_OPT_FLAG,
	  .help = "remove it without taking a final backup first" },
	{ 0 },
};

/* Waits until the app no longer lists the addon. */
static int wait_gone(struct cli *cli, const char *addon)
{
	char *path = cli_app_path(cli, "/addons");
	int rc = CLI_OK;
	for (time_t start = time(NULL);;) {
		json_t *list;
		rc = cli_call(cli, "GET", path, NULL, &list);
		if (rc)
			break;
		bool present = false;
		const char *msg = NULL;
		size_t i;
		json_t *a;
		json_array_foreach (list, i, a)
			if (!strcmp(json_string_value(json_object_get(a, "addon")), addon)) {
				present = true;
				msg = json_string_value(json_object_get(a, "message"));
			}
		if (present && time(NULL) - start > 120) {
			struct miren_error err;
			miren_error_set(&err, MIREN_EUNAVAIL, "addon %s is still being removed",
					addon);
			miren_error_detail(&err, "%s", msg && *msg ? msg : "no progress");
			miren_error_hint(&err,
					 "the server retries; follow it with 'miren addon list -a "
					 "%s'",
					 cli->app);
			rc = cli_fail(&err);
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
	(void)argc;
	bool final = !cli_flag(cli, "no-final-backup");
	if (!cli_flag(cli, "force") &&
	    !cli_confirm(final ? "Destroy addon %s of app '%s'? Its database and all its data will "
				 "be deleted (a final backup is kept for 7 days)."
			       : "Destroy addon %s of app '%s'? Its database and all its data will "
				 "be deleted; this cannot be undone.",
			 argv[0], cli->app)) {
		return cli_failf(MIREN_EINTERNAL, "pass -f to destroy without asking",
				 "not destroying addon %s without confirmation", argv[0]);
	}
	bool no_wait = cli_flag(cli, "no-wait");
	char *esc = api_escape(argv[0]);
	char *suffix = xasprintf("/addons/%s%s", esc, final ? "" : "?final_backup=0");
	char *path = cli_app_path(cli, suffix);
	json_t *res = NULL;
	int rc = cli_call(cli, "DELETE", path, NULL, &res);
	const char *fid = json_string_value(
		json_object_get(json_object_get(res, "final_backup"), "id"));
	char *id = xstrdup(fid ? fid : "");
	json_decref(res);
	free(path);
	free(suffix);
	free(esc);
	if (!rc && !no_wait)
		rc = wait_gone(cli, argv[0]);
	if (!rc)
		printf(no_wait ? "Removing addon %s from %s\n" : "Destroyed addon %s of %s\n",
		       argv[0], cli->app);
	if (!rc && *id)
		printf("  final backup %s, kept 7 days ('miren addon backups %s -a %s' lists it;\n"
		       "  'miren addon restore %s -a %s --backup %s' restores it into a new "
		       "addon)\n",
		       id, argv[0], cli->app, argv[0], cli->app, id);
	else if (!rc && final)
		printf("  no final backup: the addon was not active, so it held no data\n");
	free(id);
	return rc;
}

const struct cmd_entry cmd_addon_destroy_entry = {
	.name = "addon destroy",
	.summary = "remove an addon from an app and delete its data",
	.operands = "ADDON",
	.min_operands = 1,
	.max_operands = 1,
	.operands_missing = "which addon? give its name",
	.app = CLI_APP_OPTION,
	.options = options,
	.help = "Destroying an addon deletes its database and data.  First it takes a\n"
		"final backup into the backup store, kept for 7 days and listed by 'miren\n"
		"addon backups ADDON -a APP', from which 'miren addon restore --backup ID'\n"
		"restores the data into the addon once it is created again; if that backup\n"
		"fails, nothing is destroyed (--no-final-backup skips it).  An addon that is\n"
		"not active holds no data and gets none.  Its backup schedule is removed.\n"
		"The app's services are restarted without the addon's variables.\n",
	.flags = CMD_NEEDS_SERVER,
	.exec = exec,
};
