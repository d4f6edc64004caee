/* miren server: run the daemon. */
#include "cli/cli.h"
#include "server/server.h"
#include "util/paths.h"

#include <stdlib.h>

static const struct cli_optdef options[] = {
	{ .name = "data-dir",
	  .kind = CLI_OPT_STRING,
	  .value = "DIR",
	  .help = "state, releases, disks and the API socket\n(default: $MIREN_DATA_DIR, else "
		  "/var/lib/miren as root,\nelse $XDG_DATA_HOME/miren)" },
	{ .name = "addr-pool",
	  .kind = CLI_OPT_STRING,
	  .value = "CIDR",
	  .help = "loopback addresses for addon servers, one each\n(default: 127.77.0.0/16)" },
	{ .name = "service-user",
	  .kind = CLI_OPT_STRING,
	  .value = "USER",
	  .help = "run app services and addon servers as USER when\nstarted as root (default: "
		  "miren)" },
	{ .name = "listen",
	  .kind = CLI_OPT_LIST,
	  .value = "ADDR:PORT",
	  .help = "also serve the API over HTTPS on ADDR:PORT (repeatable;\n"
		  "requests there need a token)" },
	{ .name = "tls-cert",
	  .kind = CLI_OPT_STRING,
	  .value = "FILE",
	  .help = "the PEM certificate for --listen (with --tls-key;\ndefault: one made in "
		  "DIR/tls/ on the first start)" },
	{ .name = "tls-key",
	  .kind = CLI_OPT_STRING,
	  .value = "FILE",
	  .help = "the PEM private key of --tls-cert" },
	{ .name = "keep-releases",
	  .kind = CLI_OPT_INT,
	  .value = "N",
	  .min = 1,
	  .max = 1000,
	  .help = "releases kept per app, the current one included;\nolder ones are pruned at "
		  "start and after each\ndeploy or rollback (default: 5)" },
	{ .name = "quiet",
	  .kind = CLI_OPT_FLAG,
	  .help = "log only to DIR/logs/server.log, not to stderr" },
	{ 0 },
};

static int exec(struct cli *cli, int argc, char **argv)
{
	(void)argc;
	(void)argv;
	struct server_options opts = {
		.data_dir = cli_str(cli, "data-dir"),
		.service_user = cli_str(cli, "service-user"),
		.addr_pool = cli_str(cli, "addr-pool"),
		.keep_releases = (int)cli_int(cli, "keep-releases", 0),
		.quiet = cli_flag(cli, "quiet"),
		.tls_cert = cli_str(cli, "tls-cert"),
		.tls_key = cli_str(cli, "tls-key"),
	};
	opts.listen = cli_list(cli, "listen", &opts.n_listen);
	if (!opts.tls_cert != !opts.tls_key)
		return cli_usage_error(cli, "--tls-cert and --tls-key go together");
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
	.help = "On SIGTERM or SIGINT the daemon stops every app service cleanly.  Addon\n"
		"database servers keep running; the next daemon adopts them.\n",
	.options = options,
	.exec = exec,
};
