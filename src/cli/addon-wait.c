/* Waiting for an app's addons to become active, with progress lines; used
 * by `miren deploy` and `miren addon create`. */
#include "cli/cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define WAIT_LIMIT_S 600

/* An addon in error: its message, the cause as the detail and the
 * provider's hint (the "error" object of the addon, as stored), then what
 * fixes it.  Returns CLI_FAIL. */
static int addon_failed(struct cli *cli, json_t *a, const char *name, const char *variant)
{
	json_t *e = json_object_get(a, "error");
	const char *msg = json_string_value(json_object_get(e, "message"));
	const char *detail = json_string_value(json_object_get(e, "detail"));
	const char *hint = json_string_value(json_object_get(e, "hint"));
	if (!msg)
		msg = json_string_value(json_object_get(a, "message"));
	struct miren_error err;
	miren_error_set(&err, MIREN_EINTERNAL, "addon %s (%s) failed: %s", name, variant,
			msg && *msg ? msg : "unknown error");
	if (detail && *detail)
		miren_error_detail(&err, "%s", detail);
	miren_error_hint(&err,
			 "%s%sthen run 'miren addon destroy %s -a %s -f' and 'miren addon create "
			 "%s:%s -a %s' (or deploy again)",
			 hint && *hint ? hint : "fix the cause", hint && *hint ? "; " : ", ", name,
			 cli->app, name, variant, cli->app);
	cli_fail(&err);
	return CLI_FAIL;
}

int cli_wait_addons(struct cli *cli, const char *only)
{
	char *path = cli_app_path(cli, "/addons");
	json_t *announced = json_object();
	time_t start = time(NULL);
	int rc = CLI_OK;
	for (;;) {
		json_t *list;
		rc = cli_call(cli, "GET", path, NULL, &list);
		if (rc)
			break;
		bool waiting = false;
		size_t i;
		json_t *a;
		json_array_foreach (list, i, a) {
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
				rc = addon_failed(cli, a, name, variant);
				json_object_set_new(announced, name, json_string("done"));
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
			char *hint = xasprintf("follow them with 'miren addon list -a %s'",
					       cli->app);
			rc = cli_failf(MIREN_EUNAVAIL, hint,
				       "addons of app '%s' are still provisioning after %d s",
				       cli->app, WAIT_LIMIT_S);
			free(hint);
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
