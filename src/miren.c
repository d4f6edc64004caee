/*
 * miren: the daemon (`miren server`) and the CLI in one binary.  The
 * commands and their dispatch are in src/cli (cli.h, run.c, table.c).
 */
#include "cli/cli.h"

int main(int argc, char **argv)
{
	return cli_main(argc, argv);
}
