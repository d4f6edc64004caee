/* miren addon list-available: the addons this server offers. */
#include "cli/cli.h"
#include "util/strbuf.h"

static int exec(struct cli *cli, int argc, char **argv)
{
	(void)argc;
	(void)argv;
	json_t *list;
	int rc = cli_call(cli, "GET", "/v1/addons", NULL, &list);
	if (rc)
		return rc;
	if (cli_json_output(cli, list))
		return CLI_OK;
	struct cli_table *t = cli_table_new(5, "ADDON", "DESCRIPTION", "VARIANTS",
					    "DEFAULT VARIANT", "DEFAULT VERSION");
	size_t i, k;
	json_t *a, *v;
	json_array_foreach (list, i, a) {
		struct strbuf sb = STRBUF_INIT;
		json_array_foreach (json_object_get(a, "variants"), k, v)
			strbuf_addf(&sb, "%s%s", k ? ", " : "",
				    json_string_value(json_object_get(v, "name")));
		/* versions: newest first, and the newest is the default. */
		const char *version = json_string_value(
			json_array_get(json_object_get(a, "versions"), 0));
		cli_table_row(t, json_string_value(json_object_get(a, "name")),
			      json_string_value(json_object_get(a, "description")), sb.buf,
			      json_string_value(json_object_get(a, "default_variant")),
			      version ? version : "(not installed)");
		strbuf_release(&sb);
	}
	cli_table_print(t);
	json_decref(list);
	return CLI_OK;
}

const struct cmd_entry cmd_addon_list_available_entry = {
	.name = "addon list-available",
	.summary = "list the addons available on this server",
	.help = "DEFAULT VERSION is the server version 'miren addon create' uses without\n"
		"--version: the newest installed on this host ('(not installed)' when none).\n",
	.json_help = "print JSON (with each variant's details and the versions\n"
		     "installed on this host)",
	.flags = CMD_NEEDS_SERVER | CMD_JSON,
	.exec = exec,
};
