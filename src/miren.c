/*
 * miren: the daemon (`miren server`) and the CLI in one binary.
 *
 * Dispatch: the longest run of leading words that names an entry of
 * cmd_table[] picks the command ("app list" before "app"); its options are
 * parsed with getopt_long (the common ones added), then exec runs with the
 * operands.  Unknown commands get the list of candidates.
 */
#include "addon/addon.h"
#include "cli/cli.h"
#include "util/paths.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const struct option common_longopts[] = {
	{ "help", no_argument, NULL, OPT_HELP },
	{ "socket", required_argument, NULL, OPT_SOCKET },
	{ "format", required_argument, NULL, OPT_FORMAT },
};
#define N_COMMON (sizeof(common_longopts) / sizeof(common_longopts[0]))

/* How many words of argv spell the command name (0: they do not). */
static int words_match(const char *name, int argc, char **argv)
{
	int n = 0;
	const char *p = name;
	while (*p) {
		size_t len = strcspn(p, " ");
		if (n >= argc || strlen(argv[n]) != len || strncmp(argv[n], p, len))
			return 0;
		n++;
		p += len;
		while (*p == ' ')
			p++;
	}
	return n;
}

static void print_command_list(FILE *f, const char *group)
{
	for (const struct cmd_entry *const *e = cmd_table; *e; e++) {
		if ((*e)->flags & CMD_HIDDEN)
			continue;
		if (group && strncmp((*e)->name, group, strlen(group)))
			continue;
		fprintf(f, "  %-28s %s\n", (*e)->name, (*e)->summary);
	}
}

static void print_main_help(FILE *f)
{
	fprintf(f, "usage: miren <command> [options]\n\n"
		   "The addon system of a self-hosted app platform: `miren server` runs the\n"
		   "daemon, every other command talks to it.\n\ncommands:\n");
	print_command_list(f, NULL);
	fprintf(f, "\nRun 'miren <command> --help' for the options of a command.\n");
}

static void print_cmd_help(const struct cmd_entry *e)
{
	printf("usage: %s\n\n%s\n", e->usage, e->summary);
	if (e->help && *e->help)
		printf("\n%s", e->help);
	printf("\ncommon options:\n"
	       "  -h, --help          show this help\n");
	if (e->flags & CMD_NEEDS_SERVER)
		printf("  --socket PATH       the server's API socket (default: $MIREN_SOCKET,\n"
		       "                      else $MIREN_DATA_DIR/miren.sock)\n");
}

static int run(const struct cmd_entry *e, int argc, char **argv)
{
	struct cli cli = { .cmd = e };
	size_t n_own = 0;
	while (e->longopts && e->longopts[n_own].name)
		n_own++;
	struct option *opts = calloc(N_COMMON + n_own + 1, sizeof(*opts));
	memcpy(opts, common_longopts, sizeof(common_longopts));
	if (n_own)
		memcpy(opts + N_COMMON, e->longopts, n_own * sizeof(*opts));
	char *shortopts = xasprintf(":h%s", e->shortopts ? e->shortopts : "");
	const char *socket_opt = NULL;
	int rc = CLI_OK, c;
	optind = 1;
	opterr = 0;
	while (rc == CLI_OK && (c = getopt_long(argc, argv, shortopts, opts, NULL)) != -1) {
		switch (c) {
		case OPT_HELP:
			print_cmd_help(e);
			rc = -1;
			break;
		case OPT_SOCKET:
			rc = cli_opt_once(&cli, "--socket", &socket_opt, optarg);
			break;
		case OPT_FORMAT:
			if (!strcmp(optarg, "json"))
				cli.json = true;
			else if (strcmp(optarg, "table") && strcmp(optarg, "text"))
				rc = cli_usage_error(&cli, "unknown format '%s' (use 'json' or 'table')",
						     optarg);
			break;
		case '?':
			rc = cli_usage_error(&cli, "unknown option '%s'", argv[optind - 1]);
			break;
		case ':':
			rc = cli_usage_error(&cli, "option '%s' needs a value", argv[optind - 1]);
			break;
		default:
			rc = e->option ? e->option(&cli, c, optarg)
				       : cli_usage_error(&cli, "unknown option '%s'", argv[optind - 1]);
		}
	}
	if (rc == CLI_OK) {
		cli.socket = paths_socket(socket_opt);
		rc = e->exec(&cli, argc - optind, argv + optind);
	} else if (rc < 0) {
		rc = CLI_OK;
	}
	free(cli.socket);
	free(cli.app);
	free(shortopts);
	free(opts);
	return rc;
}

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
	if (argc < 2) {
		print_main_help(stderr);
		return CLI_USAGE;
	}
	if (!strcmp(argv[1], "--version") || !strcmp(argv[1], "version")) {
		printf("miren %s\n", MIREN_VERSION);
		return CLI_OK;
	}
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
		print_main_help(stdout);
		return CLI_OK;
	}
	const struct cmd_entry *best = NULL;
	int best_used = 0;
	for (const struct cmd_entry *const *e = cmd_table; *e; e++) {
		int used = words_match((*e)->name, argc - 1, argv + 1);
		if (used > best_used) {
			best = *e;
			best_used = used;
		}
	}
	if (!best) {
		/* A group word alone ("miren app") or an unknown word. */
		int known_group = 0;
		for (const struct cmd_entry *const *e = cmd_table; *e; e++) {
			size_t l = strlen(argv[1]);
			known_group |= !strncmp((*e)->name, argv[1], l) && (*e)->name[l] == ' ';
		}
		bool help = argc == 3 && (!strcmp(argv[2], "--help") || !strcmp(argv[2], "-h"));
		if (known_group && (argc == 2 || help)) {
			fprintf(help ? stdout : stderr, "usage: miren %s <command>\n\ncommands:\n",
				argv[1]);
		} else if (known_group) {
			fprintf(stderr, "error: unknown command 'miren %s %s'\n\ncandidates:\n",
				argv[1], argv[2]);
		} else {
			fprintf(stderr, "error: unknown command '%s'\n", argv[1]);
			fprintf(stderr, "hint: run 'miren help' to see the commands\n");
			return CLI_USAGE;
		}
		char *group = xasprintf("%s ", argv[1]);
		print_command_list(help ? stdout : stderr, group);
		free(group);
		return help ? CLI_OK : CLI_USAGE;
	}
	return run(best, argc - best_used, argv + best_used);
}
