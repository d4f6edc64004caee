/* miren debug invariants: what the daemon's records, disks, servers and
 * tenants must say of each other; exit 1 with the list when violated. */
#include "cli/cli.h"

#include <stdio.h>

static int exec(struct cli *cli, int argc, char **argv)
{
	(void)argc;
	(void)argv;
	json_t *res;
	int rc = cli_call(cli, "GET", "/v1/debug/invariants", NULL, &res);
	if (rc)
		return rc;
	json_t *violations = json_object_get(res, "violations");
	size_t n = json_array_size(violations);
	long long in_motion = json_integer_value(json_object_get(res, "in_motion"));
	if (cli_json_output(cli, res))
		return n ? CLI_FAIL : CLI_OK;
	size_t i;
	json_t *v;
	if (n) {
		cli_failf(MIREN_EINTERNAL, NULL, "%zu invariant%s violated", n,
			  n == 1 ? " is" : "s are");
		json_array_foreach (violations, i, v)
			fprintf(stderr, "  %s\n", json_string_value(v));
	} else {
		printf("Every invariant holds:");
		json_array_foreach (json_object_get(res, "checks"), i, v)
			printf("%s %s", i ? "," : "", json_string_value(v));
		printf("\n");
	}
	if (in_motion)
		printf("%lld addon%s in motion: the checks that hold only at rest were skipped; "
		       "run again when they settle\n",
		       in_motion, in_motion == 1 ? " is" : "s are");
	json_decref(res);
	return n ? CLI_FAIL : CLI_OK;
}

const struct cmd_entry cmd_debug_invariants_entry = {
	.name = "debug invariants",
	.summary = "check that the daemon's records, disks, servers and tenants agree",
	.help = "Checks what must hold between the state store and the world: every\n"
		"addon belongs to an existing app; an active addon has its server and its\n"
		"variables; variables belong to an active addon; a small server serves one\n"
		"addon; an addon in error holds no server.  When no addon is being\n"
		"provisioned or removed, also: every server is used by an addon, has a\n"
		"disk record and runs under the supervisor; disk directories are exactly\n"
		"the disk records; the shared server holds exactly the databases and roles\n"
		"of its active tenants.\n"
		"\nExits 0 when every invariant holds, 1 with the list of violations.\n",
	.json_help = "print {\"violations\", \"in_motion\", \"checks\"}",
	.flags = CMD_NEEDS_SERVER | CMD_JSON,
	.exec = exec,
};
