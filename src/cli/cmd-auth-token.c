/* miren auth token create|list|revoke: the API tokens of the TCP
 * listeners (lib/daemon/auth.c). */
#include "api/client.h"
#include "cli/cli.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>

static const struct cli_optdef create_options[] = {
	{ .name = "name",
	  .kind = CLI_OPT_STRING,
	  .value = "NAME",
	  .help = "what the token is called (in lists and logs)",
	  .required = "name the token: give --name NAME" },
	{ .name = "role",
	  .kind = CLI_OPT_STRING,
	  .value = "ROLE",
	  .help = "admin, deployer or reader (default: deployer)" },
	{ .name = "app",
	  .kind = CLI_OPT_LIST,
	  .value = "APP",
	  .help = "the token acts on APP only (repeatable; default:\nevery app)" },
	{ .name = "expires",
	  .kind = CLI_OPT_STRING,
	  .value = "DURATION",
	  .help = "the token stops working after DURATION (90d, 12h;\ndefault: never)" },
	{ 0 },
};

static int create(struct cli *cli, int argc, char **argv)
{
	(void)argc;
	(void)argv;
	size_t n;
	const char *const *apps = cli_list(cli, "app", &n);
	json_t *body = json_pack("{s:s, s:[]}", "name", cli_str(cli, "name"), "apps");
	for (size_t i = 0; i < n; i++)
		json_array_append_new(json_object_get(body, "apps"), json_string(apps[i]));
	if (cli_str(cli, "role"))
		json_object_set_new(body, "role", json_string(cli_str(cli, "role")));
	if (cli_str(cli, "expires"))
		json_object_set_new(body, "expires", json_string(cli_str(cli, "expires")));
	json_t *res = NULL;
	int rc = cli_call(cli, "POST", "/v1/auth/tokens", body, &res);
	json_decref(body);
	if (rc || cli_json_output(cli, res))
		return rc;
	/* The token on stdout alone (for a file or a pipe); the rest on stderr. */
	fprintf(stderr, "Token %s (%s) made; it is shown only now:\n",
		json_string_value(json_object_get(res, "name")),
		json_string_value(json_object_get(res, "role")));
	printf("%s\n", json_string_value(json_object_get(res, "token")));
	json_decref(res);
	return CLI_OK;
}

const struct cmd_entry cmd_auth_token_create_entry = {
	.name = "auth token create",
	.summary = "make an API token for the server's HTTPS listeners",
	.options = create_options,
	.help = "Prints the token once, on stdout (the server keeps only its hash).  A\n"
		"deployer deploys and manages env, addons, backups and logs of its apps;\n"
		"a reader only reads them, never a secret; an admin does everything,\n"
		"tokens and disks included.  Run it on the server (through the unix\n"
		"socket) or with an admin token.\n",
	.flags = CMD_NEEDS_SERVER | CMD_JSON,
	.exec = create,
};

static int list(struct cli *cli, int argc, char **argv)
{
	(void)argc;
	(void)argv;
	json_t *res = NULL;
	int rc = cli_call(cli, "GET", "/v1/auth/tokens", NULL, &res);
	if (rc || cli_json_output(cli, res))
		return rc;
	if (!json_array_size(res)) {
		printf("No tokens; make one with 'miren auth token create --name NAME'\n");
		json_decref(res);
		return CLI_OK;
	}
	struct cli_table *t = cli_table_new(6, "NAME", "ROLE", "APPS", "STATE", "EXPIRES",
					    "LAST USED");
	size_t i;
	json_t *v;
	json_array_foreach (res, i, v) {
		char *apps = json_array_size(json_object_get(v, "apps"))
				     ? json_dumps(json_object_get(v, "apps"), JSON_COMPACT)
				     : NULL;
		char exp[32] = "never", used[32] = "never";
		if (json_integer_value(json_object_get(v, "expires_at")))
			cli_utc_text(json_integer_value(json_object_get(v, "expires_at")), exp,
				     sizeof(exp));
		if (json_integer_value(json_object_get(v, "last_used_at")))
			cli_utc_text(json_integer_value(json_object_get(v, "last_used_at")), used,
				     sizeof(used));
		cli_table_row(t, json_string_value(json_object_get(v, "name")),
			      json_string_value(json_object_get(v, "role")), apps ? apps : "all",
			      json_string_value(json_object_get(v, "state")), exp, used);
		free(apps);
	}
	cli_table_print(t);
	json_decref(res);
	return CLI_OK;
}

const struct cmd_entry cmd_auth_token_list_entry = {
	.name = "auth token list",
	.summary = "list the API tokens (never the tokens themselves)",
	.flags = CMD_NEEDS_SERVER | CMD_JSON,
	.exec = list,
};

static int revoke(struct cli *cli, int argc, char **argv)
{
	(void)argc;
	char *esc = api_escape(argv[0]);
	char *path = xasprintf("/v1/auth/tokens/%s", esc);
	free(esc);
	int rc = cli_call(cli, "DELETE", path, NULL, NULL);
	free(path);
	if (!rc && !cli->json)
		printf("Revoked token %s\n", argv[0]);
	else if (!rc)
		printf("{\"revoked\": true}\n");
	return rc;
}

const struct cmd_entry cmd_auth_token_revoke_entry = {
	.name = "auth token revoke",
	.summary = "revoke an API token (requests with it are refused from now on)",
	.operands = "NAME",
	.min_operands = 1,
	.max_operands = 1,
	.operands_missing = "which token? give its NAME ('miren auth token list')",
	.flags = CMD_NEEDS_SERVER | CMD_JSON,
	.exec = revoke,
};
