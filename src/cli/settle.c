/* After a deploy or a rollback: waiting for the app's services to settle,
 * and saying which one exited at once (see cli.h). */
#include "cli/cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Whether a service (from app status) has exited since it was started. */
bool cli_service_exited(json_t *svc)
{
	const char *st = json_string_value(json_object_get(svc, "state"));
	return (st && (!strcmp(st, "backoff") || !strcmp(st, "crashloop"))) ||
	       json_integer_value(json_object_get(svc, "restarts")) > 0;
}

/*
 * Waits until every started service of the app is past the supervisor's
 * first second ("starting") or one has exited, at most SETTLE_MS; services
 * waiting for addons are not waited for.  While the server holds the app's
 * start back (an addon is not active yet; a service that runs is an
 * earlier run) it waits too when wait_held, else it returns at once with
 * *held set.  Returns the services as app status shows them then (to
 * decref), or NULL when status cannot be read.
 */
#define SETTLE_MS 10000
json_t *cli_settled_services(struct cli *cli, bool wait_held, bool *held)
{
	char *spath = cli_app_path(cli, NULL);
	json_t *svcs = NULL;
	*held = false;
	for (int waited = 0;; waited += 100) {
		json_t *st = NULL;
		json_decref(svcs);
		svcs = NULL;
		if (cli_call(cli, "GET", spath, NULL, &st))
			break;
		svcs = json_incref(json_object_get(st, "services"));
		*held = json_is_true(json_object_get(st, "start_held"));
		json_decref(st);
		bool starting = *held, exited = false;
		size_t i;
		json_t *v;
		json_array_foreach (svcs, i, v) {
			const char *state = json_string_value(json_object_get(v, "state"));
			/* "stopped": the addons just became active and the server
			 * is starting the services. */
			starting |= state &&
				    (!strcmp(state, "starting") || !strcmp(state, "stopped"));
			exited |= !*held && cli_service_exited(v);
		}
		if ((*held && !wait_held) || exited || !starting || waited >= SETTLE_MS)
			break;
		usleep(100 * 1000);
	}
	free(spath);
	return svcs;
}

/* Says which service exited right after the deploy started it, pointing
 * at its log; returns how many did. */
size_t cli_report_exited(const char *app, long long rel, json_t *svcs)
{
	size_t i, n = 0;
	json_t *v;
	json_array_foreach (svcs, i, v) {
		if (!cli_service_exited(v))
			continue;
		const char *name = json_string_value(json_object_get(v, "name"));
		json_t *code = json_object_get(v, "last_exit"),
		       *sig = json_object_get(v, "last_signal");
		char how[64] = "";
		if (code)
			snprintf(how, sizeof(how), " (exit status %lld)", json_integer_value(code));
		else if (sig)
			snprintf(how, sizeof(how), " (signal %lld)", json_integer_value(sig));
		char *hint = xasprintf("see its output with 'miren logs -a %s -s %s'; the server "
				       "keeps restarting it",
				       app, name);
		/* The service's failure, not the command line's: exit 1. */
		cli_failf(MIREN_EIO, hint,
			  "release %lld of %s is recorded, but its service '%s' exited at once%s",
			  rel, app, name, how);
		free(hint);
		n++;
	}
	return n;
}
