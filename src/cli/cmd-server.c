/* miren server: run the daemon. */
#include "cli/cli.h"
#include "server/server.h"
#include "util/paths.h"

#include <stdlib.h>

enum { OPT_DATA_DIR = OPT_FIRST_COMMAND_OPT, OPT_SERVICE_USER, OPT_QUIET, OPT_ADDR_POOL };

static const struct option longopts[] = {
	{ "data-dir", required_argument, NULL, OPT_DATA_DIR },
	{ "service-user", required_argument, NULL, OPT_SERVICE_USER },
	{ "quiet", no_argument, NULL, OPT_QUIET },
	{ "addr-pool", required_argument, NULL, OPT_ADDR_POOL },
	{ 0 },
};

static struct server_options opts;

static int option(struct cli *cli, int opt, const char *arg)
{
	switch (opt) {
	case OPT_DATA_DIR:
		opts.data_dir = arg;
		return 0;
	case OPT_SERVICE_USER:
		opts.service_user = arg;
		return 0;
	case OPT_QUIET:
		opts.quiet = 1;
		return 0;
	case OPT_ADDR_POOL:
		opts.addr_pool = arg;
		return 0;
	}
	return cli_usage_error(cli, "unknown option");
}

static int exec(struct cli *cli, int argc, char **argv)
{
	if (argc)
		return cli_usage_error(cli, "unexpected argument '%s'", argv[0]);
	char *dir = NULL;
	if (!opts.data_dir)
		opts.data_dir = dir = paths_data_dir();
	int rc = server_main(&opts);
	free(dir);
	return rc;
}

const struct cmd_entry cmd_server_entry = {
	.name = "server",
	.summary = "run the miren daemon (API, addons, app processes)",
	.usage = "miren server [--data-dir DIR] [--addr-pool CIDR] [--service-user USER] [--quiet]",
	.help = "options:\n"
		"  --data-dir DIR       state, releases, disks and the API socket\n"
		"                       (default: $MIREN_DATA_DIR, else /var/lib/miren as root,\n"
		"                       else $XDG_DATA_HOME/miren)\n"
		"  --addr-pool CIDR     loopback addresses for addon servers, one each\n"
		"                       (default: 127.77.0.0/16)\n"
		"  --service-user USER  run app services and addon servers as USER when\n"
		"                       started as root (default: miren)\n"
		"  --quiet              log only to DIR/logs/server.log, not to stderr\n"
		"\nOn SIGTERM or SIGINT the daemon stops every app service cleanly.  Addon\n"
		"database servers keep running; the next daemon adopts them.\n",
	.longopts = longopts,
	.option = option,
	.exec = exec,
};
