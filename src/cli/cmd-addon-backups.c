/* miren addon backups: list an addon's stored backups; set its schedule. */
#include "api/client.h"
#include "cli/cli.h"
#include "util/num.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const struct cli_optdef options[] = {
	{ .name = "every",
	  .kind = CLI_OPT_STRING,
	  .value = "DURATION",
	  .help = "take a backup this often (e.g. 1h, 6h, 1d; at least 1m);\n'off' removes the "
		  "schedule" },
	{ .name = "keep",
	  .kind = CLI_OPT_STRING,
	  .value = "N",
	  .help = "keep this many backups of the addon (1..1000; default 7)" },
	{ 0 },
};

static void print_human(const json_t *res)
{
	const char *app = json_string_value(json_object_get(res, "app"));
	const char *addon = json_string_value(json_object_get(res, "addon"));
	const json_t *list = json_object_get(res, "backups");
	if (json_array_size(list) == 0) {
		printf("Addon %s of app %s has no stored backups\n", addon, app);
	} else {
		struct cli_table *t = cli_table_new(8, "ID", "TAKEN (UTC)", "KIND", "TRIGGER",
						    "SIZE", "STORED", "VERIFIED", "KEPT UNTIL");
		size_t i;
		json_t *b;
		json_array_foreach (list, i, b) {
			char when[32], size[32], stored[32], until[32] = "";
			cli_utc_text(json_integer_value(json_object_get(b, "created_at")), when,
				     sizeof(when));
			cli_human_bytes((unsigned long long)json_integer_value(
						json_object_get(b, "size")),
					size, sizeof(size));
			cli_human_bytes((unsigned long long)json_integer_value(
						json_object_get(b, "stored_bytes")),
					stored, sizeof(stored));
			long long ku = json_integer_value(json_object_get(b, "keep_until"));
			if (ku)
				cli_utc_text(ku, until, sizeof(until));
			cli_table_row(t, json_string_value(json_object_get(b, "id")), when,
				      json_string_value(json_object_get(b, "kind")),
				      json_string_value(json_object_get(b, "trigger")), size,
				      stored,
				      json_is_true(json_object_get(b, "verified")) ? "yes" : "no",
				      ku ? until : "-");
		}
		cli_table_print(t);
	}
	const char *lv = json_string_value(json_object_get(res, "last_verified"));
	printf("Last verified: %s\n", lv ? lv : "none");
	const json_t *w = json_object_get(res, "window");
	if (json_is_object(w)) {
		char from[32], to[32];
		cli_utc_text(json_integer_value(json_object_get(w, "from")), from, sizeof(from));
		cli_utc_text(json_integer_value(json_object_get(w, "to")), to, sizeof(to));
		printf("Point-in-time window: %s to %s UTC ('miren addon restore %s -a %s --to "
		       "TIME')\n",
		       from, to, addon, app);
	} else {
		printf("Point-in-time window: none\n");
	}
	const json_t *s = json_object_get(res, "schedule");
	if (!json_is_object(s)) {
		printf("Schedule: none (set one with 'miren addon backups %s -a %s --every 6h "
		       "--keep 28')\n",
		       addon, app);
		return;
	}
	char next[32];
	cli_utc_text(json_integer_value(json_object_get(s, "next_at")), next, sizeof(next));
	const char *src = json_string_value(json_object_get(s, "source"));
	printf("Schedule: every %s, keeping %lld (%s); next at %s UTC\n",
	       json_string_value(json_object_get(s, "every")),
	       json_integer_value(json_object_get(s, "keep")),
	       src && !strcmp(src, "config") ? "from app.toml" : "set with --every", next);
	const char *e = json_string_value(json_object_get(s, "last_error"));
	if (e && *e) {
		char when[32];
		cli_utc_text(json_integer_value(json_object_get(s, "last_try_at")), when,
			     sizeof(when));
		printf("  the last scheduled backup failed at %s UTC: %s\n", when, e);
	}
}

static int exec(struct cli *cli, int argc, char **argv)
{
	(void)argc;
	const char *every = cli_str(cli, "every"), *keep = cli_str(cli, "keep");
	long long k = 0;
	if (keep && !num_parse(keep, 0, 1000000000LL, &k))
		return cli_usage_error(cli, "--keep must be a whole number, not '%s'", keep);
	char *esc = api_escape(argv[0]);
	char *suffix = xasprintf("/addons/%s/backups%s", esc, every || keep ? "/schedule" : "");
	char *path = cli_app_path(cli, suffix);
	json_t *body = NULL, *res = NULL;
	if (every || keep) {
		body = json_object();
		if (every)
			json_object_set_new(body, "every", json_string(every));
		if (keep)
			json_object_set_new(body, "keep", json_integer(k));
	}
	int rc = cli_call(cli, body ? "PUT" : "GET", path, body, &res);
	json_decref(body);
	free(path);
	free(suffix);
	free(esc);
	if (rc)
		return rc;
	if (cli_json_output(cli, res))
		return CLI_OK;
	print_human(res);
	json_decref(res);
	return CLI_OK;
}

const struct cmd_entry cmd_addon_backups_entry = {
	.name = "addon backups",
	.summary = "list an addon's stored backups and set its backup schedule",
	.operands = "ADDON",
	.min_operands = 1,
	.max_operands = 1,
	.operands_missing = "which addon? give its name",
	.app = CLI_APP_OPTION,
	.options = options,
	.help = "Lists the backups of the app's addon in the backup store, oldest first:\n"
		"each one's ID, time, kind, trigger (manual, schedule, destroy, deploy), size,\n"
		"stored bytes (what it added to the store), whether it was verified and, for\n"
		"a final backup, until when it is kept; then the last verified backup, the\n"
		"point-in-time window and the schedule.  Final backups of an addon the app no\n"
		"longer has (or of an app that is gone) are listed too.\n"
		"\n"
		"With --every and/or --keep it sets the schedule first: a backup every\n"
		"DURATION (the first at once), keeping the newest N of the addon's backups\n"
		"(final backups are not counted; the newest verified one is never removed).\n"
		"--every off removes the schedule.  A schedule in app.toml\n"
		"([addons.NAME] backups = { every = \"6h\", keep = 28 }) is applied at each\n"
		"deploy, replacing one set here.\n",
	.json_help = "print the backups and the schedule as JSON",
	.flags = CMD_NEEDS_SERVER | CMD_JSON,
	.exec = exec,
};
