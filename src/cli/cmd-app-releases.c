/* miren app releases: the kept releases of an app, newest first. */
#include "cli/cli.h"

#include <stdio.h>
#include <stdlib.h>

static int exec(struct cli *cli, int argc, char **argv)
{
	(void)argc;
	(void)argv;
	json_t *res;
	char *path = cli_app_path(cli, "/releases");
	int rc = cli_call(cli, "GET", path, NULL, &res);
	free(path);
	if (rc)
		return rc;
	if (cli_json_output(cli, res))
		return CLI_OK;
	const char *app = json_string_value(json_object_get(res, "app"));
	const json_t *list = json_object_get(res, "releases");
	if (json_array_size(list) == 0) {
		printf("App %s has no releases (not deployed yet)\n", app);
		json_decref(res);
		return CLI_OK;
	}
	struct cli_table *t = cli_table_new(6, "RELEASE", "CURRENT", "CREATED (UTC)", "SOURCE",
					    "SIZE", "DESCRIPTION");
	size_t i;
	json_t *r;
	json_array_foreach (list, i, r) {
		char num[32], when[32], size[32], what[64] = "deploy";
		snprintf(num, sizeof(num), "%lld",
			 json_integer_value(json_object_get(r, "release")));
		cli_utc_text(json_integer_value(json_object_get(r, "created_at")), when,
			     sizeof(when));
		cli_human_bytes((unsigned long long)json_integer_value(
					json_object_get(r, "size_bytes")),
				size, sizeof(size));
		const json_t *of = json_object_get(r, "rollback_of");
		if (json_is_integer(of))
			snprintf(what, sizeof(what), "rollback to release %lld",
				 json_integer_value(of));
		/* The hash's first 12 hex digits, as git shortens ids. */
		char sha[13];
		snprintf(sha, sizeof(sha), "%s",
			 json_string_value(json_object_get(r, "source_sha256")));
		cli_table_row(t, num, json_is_true(json_object_get(r, "current")) ? "*" : "", when,
			      sha, size, what);
	}
	cli_table_print(t);
	printf("The server keeps the newest %lld releases of each app (miren server "
	       "--keep-releases)\n",
	       json_integer_value(json_object_get(res, "keep")));
	json_decref(res);
	return CLI_OK;
}

const struct cmd_entry cmd_app_releases_entry = {
	.name = "app releases",
	.summary = "list an app's kept releases (the current one marked)",
	.app = CLI_APP_OPTION,
	.help = "Newest first: each release's number, when it was made, the first 12 hex\n"
		"digits of its source's SHA-256, its directory's size on disk, and whether a\n"
		"deploy made it or a rollback (to which release).  The current one is\n"
		"marked '*'.  The server keeps the newest N releases of each app ('miren\n"
		"server --keep-releases N', default 5); older ones are pruned from disk.\n"
		"Roll back with 'miren app rollback'.\n",
	.json_help = "print the releases as JSON (with the whole SHA-256)",
	.flags = CMD_NEEDS_SERVER | CMD_JSON,
	.exec = exec,
};
