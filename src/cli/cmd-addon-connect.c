/* miren addon connect: the engine's own client, logged in as the app. */
#include "api/client.h"
#include "cli/cli.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

extern char **environ;

static const struct cli_optdef options[] = {
	{ .name = "command",
	  .letter = 'c',
	  .kind = CLI_OPT_STRING,
	  .value = "COMMAND",
	  .help = "run this one statement and exit with the client's status" },
	{ 0 },
};

/* The caller's environment with the client's variables (K=V) in place of
 * any of the same name.  The strings of vars are the caller's; the array
 * is malloc'd. */
static char **client_env(const json_t *vars, char **strings)
{
	size_t n = 0, k = 0;
	while (environ[n])
		n++;
	char **env = xcalloc(n + json_object_size(vars) + 1, sizeof(*env));
	for (size_t i = 0; i < n; i++) {
		size_t len = strcspn(environ[i], "=");
		char *key = xasprintf("%.*s", (int)len, environ[i]);
		if (!json_object_get(vars, key))
			env[k++] = environ[i];
		free(key);
	}
	for (size_t i = 0; strings[i]; i++)
		env[k++] = strings[i];
	env[k] = NULL;
	return env;
}

static int exec(struct cli *cli, int argc, char **argv)
{
	(void)argc;
	const char *command = cli_str(cli, "command");
	if (command && !*command)
		return cli_usage_error(cli, "-c needs a statement");
	char *esc = api_escape(argv[0]);
	char *suffix = xasprintf("/addons/%s/connect", esc);
	char *path = cli_app_path(cli, suffix);
	json_t *body = command ? json_pack("{s:s}", "command", command) : json_object();
	json_t *res = NULL;
	int rc = cli_call(cli, "POST", path, body, &res);
	json_decref(body);
	free(path);
	free(suffix);
	free(esc);
	if (rc)
		return rc;
	/* The credentials go only into the client's environment (readable by
	 * its own user), never onto its command line. */
	const json_t *jargv = json_object_get(res, "argv"), *jenv = json_object_get(res, "env");
	size_t n = json_array_size(jargv);
	if (n == 0) {
		json_decref(res);
		return cli_failf(MIREN_EINTERNAL, NULL, "the server gave no client to run");
	}
	char **cargv = xcalloc(n + 1, sizeof(*cargv));
	for (size_t i = 0; i < n; i++)
		cargv[i] = xstrdup(json_string_value(json_array_get(jargv, i)));
	char **strings = xcalloc(json_object_size(jenv) + 1, sizeof(*strings));
	size_t k = 0;
	const char *key;
	const json_t *v;
	json_object_foreach ((json_t *)jenv, key, v)
		strings[k++] = xasprintf("%s=%s", key, json_string_value(v));
	char **env = client_env(jenv, strings);
	json_decref(res);
	fflush(stdout);
	fflush(stderr);
	execve(cargv[0], cargv, env);
	int e = errno;
	rc = cli_failf(e == ENOENT ? MIREN_ENOTFOUND : MIREN_EIO,
		       "install the engine's client (scripts/bootstrap does)", "cannot run %s: %s",
		       cargv[0], strerror(e));
	for (size_t i = 0; strings[i]; i++) {
		explicit_bzero(strings[i], strlen(strings[i]));
		free(strings[i]);
	}
	free(strings);
	free(env);
	for (size_t i = 0; i < n; i++)
		free(cargv[i]);
	free(cargv);
	return rc;
}

const struct cmd_entry cmd_addon_connect_entry = {
	.name = "addon connect",
	.summary = "open the engine's own client on an app's addon, as the app",
	.operands = "ADDON",
	.min_operands = 1,
	.max_operands = 1,
	.operands_missing = "which addon? give its name",
	.app = CLI_APP_OPTION,
	.options = options,
	.help = "Runs the engine's own interactive client connected to the app's addon\n"
		"with the app's own credentials, on this terminal.  The credentials travel\n"
		"in the client's environment (readable only by your user), never on its\n"
		"command line, so no one sees them in the process list.  With -c COMMAND\n"
		"the client runs that one statement (SQL, or a key-value store's command\n"
		"with its arguments) and exits; the exit status is the client's: 0 when\n"
		"the statement succeeded, not 0 when it failed.  The addon must be active;\n"
		"this command runs on the server's host.\n",
	.flags = CMD_NEEDS_SERVER | CMD_SERVER_HOST,
	.exec = exec,
};
