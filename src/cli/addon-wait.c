/* Waiting for an app's addons to become active, with progress lines; used
 * by `miren deploy` and `miren addon create`. */
#include "cli/cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define WAIT_LIMIT_S 600

int cli_wait_addons(struct cli *cli, const char *only)
{
	char *path = cli_app_path(cli, "/addons");
	json_t *announced = json_object();
	time_t start = time(NULL);
	int rc = CLI_OK;
	for (;;) {
		json_t *list;
		if (cli_call(cli, "GET", path, NULL, &list)) {
			rc = CLI_FAIL;
			break;
		}
		bool waiting = false;
		size_t i;
		json_t *a;
		json_array_foreach(list, i, a) {
			const char *name = json_string_value(json_object_get(a, "addon"));
			const char *variant = json_string_value(json_object_get(a, "variant"));
			const char *status = json_string_value(json_object_get(a, "status"));
			if (!name || !status || (only && strcmp(only, name)) ||
			    !strcmp(status, "deprovisioning"))
				continue;
			const char *said = json_string_value(json_object_get(announced, name));
			if (!strcmp(status, "active")) {
				if (said)
					fprintf(stderr, "Addon %s ready\n", name);
				json_object_set_new(announced, name, json_string("done"));
				continue;
			}
			if (!strcmp(status, "error")) {
				if (said && !strcmp(said, "done"))
					continue;
				const char *msg = json_string_value(json_object_get(a, "message"));
				cli_error("addon %s (%s) failed: %s", name, variant,
					  msg ? msg : "unknown error");
				cli_hint("fix the cause, then run 'miren addon destroy %s -a %s -f' and "
					 "'miren addon create %s:%s -a %s' (or deploy again)",
					 name, cli->app, name, variant, cli->app);
				json_object_set_new(announced, name, json_string("done"));
				rc = CLI_FAIL;
				continue;
			}
			if (!said) {
				fprintf(stderr, "Provisioning addon %s (%s)...\n", name, variant);
				json_object_set_new(announced, name, json_string("said"));
			}
			waiting = true;
		}
		json_decref(list);
		if (!waiting)
			break;
		if (time(NULL) - start > WAIT_LIMIT_S) {
			cli_error("addons of app '%s' are still provisioning after %d s", cli->app,
				  WAIT_LIMIT_S);
			cli_hint("follow them with 'miren addon list -a %s'", cli->app);
			rc = CLI_FAIL;
			break;
		}
		/* Poll fast at first (a shared addon takes tens of milliseconds),
		 * then settle to a calmer pace. */
		usleep(time(NULL) - start < 3 ? 10 * 1000 : 100 * 1000);
	}
	json_decref(announced);
	free(path);
	return rc;
}
