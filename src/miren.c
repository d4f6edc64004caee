/*
 * miren: the daemon (`miren server`) and the CLI in one binary.  The
 * commands and their dispatch are in src/cli (cli.h, run.c, table.c).
 */
#include "addon/addon.h"
#include "cli/cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void print_fault_point(void *user, const char *name, const char *kind)
{
	fprintf(user, "%s %s\n", kind, name);
}

int main(int argc, char **argv)
{
	/* MIREN_FAULT=list: every fault point of this build, whatever the
	 * command (util/fault.h); the fault walks iterate it. */
	const char *fault = getenv("MIREN_FAULT");
	if (fault && !strcmp(fault, "list")) {
		addon_fault_points(print_fault_point, stdout);
		return CLI_OK;
	}
	return cli_main(argc, argv);
}
