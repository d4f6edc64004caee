/* miren addon-helper: what an addon's own server processes call back (an
 * engine's helper hook, e.g. a database's WAL archive command).  Hidden:
 * people never type it; the engine puts it in its server's settings. */
#include "addon/addon.h"
#include "cli/cli.h"
#include "util/compiler.h"

#include <stdio.h>

static int exec(struct cli *cli MIREN_UNUSED, int argc, char **argv)
{
	const struct addon_def *def = addon_find(argv[0]);
	if (!def || !def->helper) {
		fprintf(stderr, "error: addon '%s' has no helper\n", argv[0]);
		return CLI_USAGE;
	}
	return def->helper(argc - 1, argv + 1);
}

const struct cmd_entry cmd_addon_helper_entry = {
	.name = "addon-helper",
	.summary = "run an addon's helper (called by its servers)",
	.operands = "ADDON VERB [ARG...]",
	.min_operands = 2,
	.max_operands = -1,
	.help = "Runs what an addon's own server calls back, such as a database's WAL\n"
		"archive command; the daemon writes these command lines into the servers'\n"
		"settings. Not meant to be typed.\n",
	.flags = CMD_HIDDEN,
	.exec = exec,
};
