/* miren addon variants: what each variant of an addon offers. */
#include "api/client.h"
#include "cli/cli.h"

#include <stdio.h>
#include <stdlib.h>

static int exec(struct cli *cli, int argc, char **argv)
{
	(void)argc;
	char *esc = api_escape(argv[0]);
	char *path = xasprintf("/v1/addons/%s", esc);
	json_t *def;
	int rc = cli_call(cli, "GET", path, NULL, &def);
	free(path);
	free(esc);
	if (rc)
		return rc;
	if (cli_json_output(cli, def))
		return CLI_OK;
	struct cli_table *t = cli_table_new(3, "VARIANT", "DESCRIPTION", "DEFAULT");
	size_t i;
	json_t *v;
	json_t *variants = json_object_get(def, "variants");
	json_array_foreach (variants, i, v)
		cli_table_row(t, json_string_value(json_object_get(v, "name")),
			      json_string_value(json_object_get(v, "description")),
			      json_is_true(json_object_get(v, "default")) ? "yes" : "");
	cli_table_print(t);
	json_array_foreach (variants, i, v)
		printf("\n%s:\n%s\n", json_string_value(json_object_get(v, "name")),
		       json_string_value(json_object_get(v, "details")));
	json_decref(def);
	return CLI_OK;
}

const struct cmd_entry cmd_addon_variants_entry = {
	.name = "addon variants",
	.summary = "show the variants of an addon and what each offers",
	.operands = "ADDON",
	.min_operands = 1,
	.max_operands = 1,
	.operands_missing = "which addon? give its name",
	.operands_help = "  ADDON                 the addon (see 'miren addon list-available')\n",
	.flags = CMD_NEEDS_SERVER | CMD_JSON,
	.exec = exec,
};
