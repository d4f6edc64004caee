/*
 * The CLI's driver: picks the command from argv, parses its options from
 * its declaration (struct cmd_entry, cli.h), checks operand counts and
 * number ranges, resolves the app it acts on, and runs it.  The usage line,
 * --help, `miren help [CMD | GROUP]` and `miren help --format json` (what
 * the docs check compares the pages with) are printed from the same
 * declarations, so they cannot disagree with what is parsed.
 *
 * Dispatch: the longest run of leading words that names an entry of
 * cmd_table[] picks the command ("app list" before "app"); a run that only
 * names a group ("debug disk") lists that group's commands.
 */
#include "api/clusters.h"
#include "app/config.h"
#include "cli/cli.h"
#include "util/names.h"
#include "util/strbuf.h"

#include <errno.h>
#include <getopt.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum { OPT_HELP = 'h', OPT_SOCKET = 1000, OPT_CLUSTER, OPT_FORMAT, OPT_APP, OPT_OWN_BASE = 2000 };

static const struct cli_optdef app_option = {
	.name = "app",
	.letter = 'a',
	.kind = CLI_OPT_STRING,
	.value = "APP",
};

/* How many words of argv spell `name` (0: they do not). */
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

/* True when some visible command's name starts with the words "group ". */
static bool is_group(const char *group)
{
	size_t l = strlen(group);
	for (const struct cmd_entry *const *e = cmd_table; *e; e++)
		if (!strncmp((*e)->name, group, l) && (*e)->name[l] == ' ')
			return true;
	return false;
}

static void print_command_list(FILE *f, const char *group)
{
	size_t l = group ? strlen(group) : 0;
	for (const struct cmd_entry *const *e = cmd_table; *e; e++) {
		if ((*e)->flags & CMD_HIDDEN)
			continue;
		if (group && (strncmp((*e)->name, group, l) || (*e)->name[l] != ' '))
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
	fprintf(f, "\nRun 'miren help <command>' (or 'miren <command> --help') for the options\n"
		   "of a command.\n");
}

static void print_group(FILE *f, const char *group)
{
	fprintf(f, "usage: miren %s <command>\n\ncommands:\n", group);
	print_command_list(f, group);
}

/* "-n NAME", "--no-wait", "-f". */
static void opt_spelling(struct strbuf *sb, const struct cli_optdef *o)
{
	if (o->letter)
		strbuf_addf(sb, "-%c", o->letter);
	else
		strbuf_addf(sb, "--%s", o->name);
	if (o->kind != CLI_OPT_FLAG)
		strbuf_addf(sb, " %s", o->value ? o->value : "VALUE");
}

/* The name an error message uses for an option: "-n", "--version". */
static char *opt_label(const struct cli_optdef *o)
{
	return o->letter ? xasprintf("-%c", o->letter) : xasprintf("--%s", o->name);
}

char *cli_usage_line(const struct cmd_entry *e)
{
	struct strbuf sb = STRBUF_INIT;
	strbuf_addf(&sb, "miren %s", e->name);
	if (e->operands)
		strbuf_addf(&sb, " %s", e->operands);
	if (e->app != CLI_APP_NONE)
		strbuf_adds(&sb, " [-a APP]");
	for (const struct cli_optdef *o = e->options; o && o->name; o++) {
		strbuf_adds(&sb, o->required ? " " : " [");
		opt_spelling(&sb, o);
		if (!o->required)
			strbuf_adds(&sb, "]");
	}
	if (e->flags & CMD_JSON)
		strbuf_adds(&sb, " [--format json]");
	return strbuf_detach(&sb, NULL);
}

/* "  -n, --lines LINES": the left column of an option's help. */
static char *opt_left(const struct cli_optdef *o)
{
	struct strbuf left = STRBUF_INIT;
	strbuf_adds(&left, "  ");
	if (o->letter)
		strbuf_addf(&left, "-%c, ", o->letter);
	strbuf_addf(&left, "--%s", o->name);
	if (o->kind != CLI_OPT_FLAG)
		strbuf_addf(&left, " %s", o->value ? o->value : "VALUE");
	return strbuf_detach(&left, NULL);
}

/* One option's help: its left column padded to col, then the help lines,
 * the later ones indented to col; a number's range is added to the end
 * ("(default 100; 0..1000000)"). */
static void print_opt_help(const struct cli_optdef *o, const char *help, int col)
{
	char *left = opt_left(o);
	printf("%-*s", col, left);
	free(left);
	size_t len = strlen(help);
	bool paren = o->kind == CLI_OPT_INT && len && help[len - 1] == ')';
	for (size_t i = 0; i < len - (paren ? 1 : 0); i++) {
		putchar(help[i]);
		if (help[i] == '\n')
			printf("%*s", col, "");
	}
	if (o->kind == CLI_OPT_INT)
		printf("%s%lld..%lld)", paren ? "; " : " (", o->min, o->max);
	printf("\n");
}

static const char *app_help(const struct cmd_entry *e)
{
	return e->app == CLI_APP_OPERAND
		       ? "the app (default: APP, else the one of .miren/app.toml here);\n"
			 "with APP too, both must name the same app (else exit 2)"
		       : "the app (default: the one of .miren/app.toml here)";
}

/* The column where option help starts: 2 past the widest left column. */
static int help_column(const struct cmd_entry *e)
{
	int col = 24;
	for (const struct cli_optdef *o = e->options; o && o->name; o++) {
		char *left = opt_left(o);
		if ((int)strlen(left) + 2 > col)
			col = (int)strlen(left) + 2;
		free(left);
	}
	return col;
}

static void print_cmd_help(const struct cmd_entry *e)
{
	const int COL = help_column(e);
	char *usage = cli_usage_line(e);
	printf("usage: %s\n\n%s\n", usage, e->summary);
	free(usage);
	if (e->help && *e->help)
		printf("\n%s", e->help);
	if (e->operands_help)
		printf("\noperands:\n%s", e->operands_help);
	if (e->app != CLI_APP_NONE || (e->options && e->options->name) || (e->flags & CMD_JSON)) {
		printf("\noptions:\n");
		if (e->app != CLI_APP_NONE)
			print_opt_help(&app_option, app_help(e), COL);
		for (const struct cli_optdef *o = e->options; o && o->name; o++)
			print_opt_help(o, o->help ? o->help : "", COL);
		if (e->flags & CMD_JSON) {
			static const struct cli_optdef format = { .name = "format",
								  .kind = CLI_OPT_STRING,
								  .value = "json" };
			print_opt_help(&format,
				       e->json_help ? e->json_help : "print JSON instead of text",
				       COL);
		}
	}
	printf("\ncommon options:\n  %-*s%s\n", COL - 2, "-h, --help", "show this help");
	if (e->flags & CMD_NEEDS_SERVER) {
		printf("  %-*s%s\n%*s%s\n", COL - 2, "--cluster NAME",
		       "talk to this cluster ('miren cluster list'; default:", COL, "",
		       "$MIREN_CLUSTER, else the one of 'miren cluster use')");
		printf("  %-*s%s\n%*s%s\n", COL - 2, "--socket PATH",
		       "the local server's API socket (default: $MIREN_SOCKET,", COL, "",
		       "else $MIREN_DATA_DIR/miren.sock)");
	}
}

static json_t *opt_json(const struct cli_optdef *o, const char *help)
{
	static const char *const kinds[] = { "flag", "string", "int", "list" };
	json_t *j = json_pack("{s:s, s:s, s:s}", "name", o->name, "kind", kinds[o->kind], "help",
			      help ? help : "");
	if (o->letter)
		json_object_set_new(j, "letter", json_sprintf("%c", o->letter));
	if (o->kind != CLI_OPT_FLAG)
		json_object_set_new(j, "value", json_string(o->value ? o->value : "VALUE"));
	if (o->kind == CLI_OPT_INT) {
		json_object_set_new(j, "min", json_integer(o->min));
		json_object_set_new(j, "max", json_integer(o->max));
	}
	json_object_set_new(j, "required", json_boolean(o->required != NULL));
	return j;
}

/* `miren help --format json`: every command's declaration. */
static void print_table_json(void)
{
	static const char *const targets[] = { "none", "option", "operand" };
	json_t *all = json_array();
	for (const struct cmd_entry *const *e = cmd_table; *e; e++) {
		const struct cmd_entry *c = *e;
		char *usage = cli_usage_line(c);
		json_t *opts = json_array();
		if (c->app != CLI_APP_NONE)
			json_array_append_new(opts, opt_json(&app_option, app_help(c)));
		for (const struct cli_optdef *o = c->options; o && o->name; o++)
			json_array_append_new(opts, opt_json(o, o->help));
		json_t *j =
			json_pack("{s:s, s:s, s:s, s:{s:s?, s:i, s:i}, s:s, s:o, s:b, s:b, s:b}",
				  "name", c->name, "summary", c->summary, "usage", usage,
				  "operands", "usage", c->operands, "min", c->min_operands, "max",
				  c->max_operands, "app", targets[c->app], "options", opts, "json",
				  (c->flags & CMD_JSON) != 0, "server",
				  (c->flags & CMD_NEEDS_SERVER) != 0, "hidden",
				  (c->flags & CMD_HIDDEN) != 0);
		json_array_append_new(all, j);
		free(usage);
	}
	cli_print_json(all);
	json_decref(all);
}

static const struct cmd_entry *find_command(int argc, char **argv, int *used)
{
	const struct cmd_entry *best = NULL;
	*used = 0;
	for (const struct cmd_entry *const *e = cmd_table; *e; e++) {
		int n = words_match((*e)->name, argc, argv);
		if (n > *used) {
			best = *e;
			*used = n;
		}
	}
	return best;
}

/* The longest run of leading words that is a group, joined by spaces (to
 * free; NULL when argv[0] is not one); *used counts the words. */
static char *find_group(int argc, char **argv, int *used)
{
	char *best = NULL;
	struct strbuf sb = STRBUF_INIT;
	*used = 0;
	for (int i = 0; i < argc && argv[i][0] != '-'; i++) {
		strbuf_addf(&sb, "%s%s", i ? " " : "", argv[i]);
		if (!is_group(sb.buf))
			break;
		free(best);
		best = xstrdup(sb.buf);
		*used = i + 1;
	}
	strbuf_release(&sb);
	return best;
}

/* Words that name neither a command nor a group: the error, with the
 * candidates of the group they are in. */
static int unknown_command(int argc, char **argv)
{
	int gused;
	char *group = find_group(argc, argv, &gused);
	if (!group) {
		cli_failf(MIREN_EINVAL, "run 'miren help' to see the commands",
			  "unknown command '%s'", argv[0]);
		return CLI_USAGE;
	}
	bool help = gused == argc - 1 &&
		    (!strcmp(argv[gused], "--help") || !strcmp(argv[gused], "-h"));
	int rc;
	if (gused == argc || help) {
		print_group(help ? stdout : stderr, group);
		rc = help ? CLI_OK : CLI_USAGE;
	} else {
		fprintf(stderr, "error: unknown command 'miren %s %s'\n\ncandidates:\n", group,
			argv[gused]);
		print_command_list(stderr, group);
		rc = CLI_USAGE;
	}
	free(group);
	return rc;
}

/* `miren help [--format json] [WORDS...]`. */
static int help_command(int argc, char **argv)
{
	bool json = false;
	int n = 0;
	char **words = xcalloc((size_t)argc + 1, sizeof(char *));
	for (int i = 0; i < argc; i++) {
		if (!strcmp(argv[i], "--format") && i + 1 < argc) {
			json = !strcmp(argv[++i], "json");
		} else if (!strcmp(argv[i], "--format=json")) {
			json = true;
		} else {
			words[n++] = argv[i];
		}
	}
	int rc = CLI_OK;
	if (json && !n) {
		print_table_json();
	} else if (!n) {
		print_main_help(stdout);
	} else {
		int used;
		const struct cmd_entry *e = find_command(n, words, &used);
		if (e && used == n) {
			print_cmd_help(e);
		} else {
			char *all = xstrdup("");
			for (int i = 0; i < n; i++) {
				char *next = xasprintf("%s%s%s", all, i ? " " : "", words[i]);
				free(all);
				all = next;
			}
			if (is_group(all)) {
				print_group(stdout, all);
			} else {
				cli_failf(MIREN_EINVAL, "run 'miren help' to see the commands",
					  "unknown command '%s'", all);
				rc = CLI_USAGE;
			}
			free(all);
		}
	}
	free(words);
	return rc;
}

static size_t count_options(const struct cmd_entry *e)
{
	size_t n = 0;
	while (e->options && e->options[n].name)
		n++;
	return n;
}

/* An app name from the command line (-a or the operand, `how` says which),
 * checked before it goes into a URL; a second, different one is a usage
 * error naming both: a destructive command never picks one of two. */
static int set_app(struct cli *cli, const char *name, const char *how)
{
	struct miren_error err;
	if (name_check_app(name, &err))
		return cli_fail(&err);
	if (cli->app && strcmp(cli->app, name))
		return cli_usage_error(cli, "conflicting apps: '%s' (%s) and '%s' (%s)", cli->app,
				       cli->app_how, name, how);
	free(cli->app);
	cli->app = xstrdup(name);
	cli->app_how = how;
	return CLI_OK;
}

/* The app of .miren/app.toml in the cwd, when neither -a nor an operand
 * named one. */
static int app_from_toml(struct cli *cli)
{
	struct strbuf sb;
	strbuf_init(&sb, 1 << 20);
	enum miren_err rc = strbuf_read_file(&sb, ".miren/app.toml");
	if (rc == MIREN_ENOTFOUND) {
		strbuf_release(&sb);
		cli_failf(MIREN_EINVAL,
			  "pass -a APP, or run the command in a directory with .miren/app.toml",
			  "no app given");
		return CLI_USAGE;
	}
	if (rc) {
		strbuf_release(&sb);
		return cli_failf(rc, NULL, "cannot read .miren/app.toml: %s", miren_strerror(rc));
	}
	char cwd[4096];
	const char *base = getcwd(cwd, sizeof(cwd)) ? basename(cwd) : NULL;
	struct app_config *cfg;
	struct miren_error err;
	rc = app_config_parse(sb.buf, sb.len, ".miren/app.toml", base, &cfg, &err);
	strbuf_release(&sb);
	if (rc)
		return cli_fail(&err);
	cli->app = xstrdup(cfg->name);
	app_config_free(cfg);
	return CLI_OK;
}

/* Stores one parsed option; returns CLI_OK or CLI_USAGE. */
static int take_option(struct cli *cli, const struct cli_optdef *o, struct cli_optval *v,
		       const char *arg)
{
	char *label = opt_label(o);
	int rc = CLI_OK;
	switch (o->kind) {
	case CLI_OPT_FLAG:
		v->set = true;
		break;
	case CLI_OPT_STRING:
		if (v->set && strcmp(v->str, arg))
			rc = cli_usage_error(cli, "conflicting values for %s: '%s' and '%s'", label,
					     v->str, arg);
		v->set = true;
		v->str = arg;
		break;
	case CLI_OPT_LIST:
		v->set = true;
		v->list = xrealloc(v->list, (v->n_list + 1) * sizeof(*v->list));
		v->list[v->n_list++] = arg;
		break;
	case CLI_OPT_INT: {
		char *end;
		free(label);
		label = xasprintf("--%s", o->name);
		errno = 0;
		long long n = strtoll(arg, &end, 10);
		if (!*arg || *end || errno == ERANGE)
			rc = cli_usage_error(cli, "%s: '%s' is not a number", label, arg);
		else if (n < o->min || n > o->max)
			rc = cli_usage_error(cli, "%s: %lld is out of range %lld..%lld", label, n,
					     o->min, o->max);
		else if (v->set && v->num != n)
			rc = cli_usage_error(cli, "conflicting values for %s: '%lld' and '%lld'",
					     label, v->num, n);
		v->set = true;
		v->num = n;
		break;
	}
	}
	free(label);
	return rc;
}

/* The server the command talks to (api/clusters.h has the order); a
 * command that works only on the server's host is refused with a cluster. */
static int choose_target(struct cli *cli, const char *cluster, const char *socket)
{
	if (cluster && socket)
		return cli_usage_error(cli, "conflicting servers: --cluster '%s' and --socket '%s'",
				       cluster, socket);
	struct miren_error err;
	if (clusters_target(cluster, socket, &cli->target, &err))
		return cli_fail(&err);
	if ((cli->cmd->flags & CMD_SERVER_HOST) && cli->target.cluster) {
		cli_failf(MIREN_EINVAL,
			  "log in to the server's host and run it there against the local server "
			  "(no --cluster, MIREN_CLUSTER or 'miren cluster use')",
			  "'miren %s' works only on the server's host, not with cluster '%s'",
			  cli->cmd->name, cli->target.cluster);
		return CLI_USAGE;
	}
	return CLI_OK;
}

/* Parses the options, checks the declaration's rules, resolves the app. */
static int prepare(struct cli *cli, int argc, char **argv, int *first)
{
	const struct cmd_entry *e = cli->cmd;
	size_t n_own = count_options(e);
	struct option *opts = xcalloc(n_own + 6, sizeof(*opts));
	struct strbuf shortopts = STRBUF_INIT;
	strbuf_adds(&shortopts, ":h");
	size_t k = 0;
	opts[k++] = (struct option){ "help", no_argument, NULL, OPT_HELP };
	opts[k++] = (struct option){ "socket", required_argument, NULL, OPT_SOCKET };
	opts[k++] = (struct option){ "cluster", required_argument, NULL, OPT_CLUSTER };
	opts[k++] = (struct option){ "format", required_argument, NULL, OPT_FORMAT };
	if (e->app != CLI_APP_NONE) {
		opts[k++] = (struct option){ "app", required_argument, NULL, OPT_APP };
		strbuf_adds(&shortopts, "a:");
	}
	for (size_t i = 0; i < n_own; i++) {
		const struct cli_optdef *o = &e->options[i];
		int has_arg = o->kind == CLI_OPT_FLAG ? no_argument : required_argument;
		opts[k++] = (struct option){ o->name, has_arg, NULL, OPT_OWN_BASE + (int)i };
		if (o->letter)
			strbuf_addf(&shortopts, "%c%s", o->letter, has_arg ? ":" : "");
	}
	struct cli_optval socket = { 0 }, cluster = { 0 };
	static const struct cli_optdef socket_def = { .name = "socket", .kind = CLI_OPT_STRING };
	static const struct cli_optdef cluster_def = { .name = "cluster", .kind = CLI_OPT_STRING };
	int rc = CLI_OK, c;
	optind = 1;
	opterr = 0;
	while (rc == CLI_OK && (c = getopt_long(argc, argv, shortopts.buf, opts, NULL)) != -1) {
		if (c == 'a' && e->app != CLI_APP_NONE)
			c = OPT_APP;
		for (size_t i = 0; i < n_own && c < OPT_OWN_BASE; i++)
			if (e->options[i].letter && c == e->options[i].letter)
				c = OPT_OWN_BASE + (int)i;
		switch (c) {
		case OPT_HELP:
			print_cmd_help(e);
			rc = -1;
			break;
		case OPT_SOCKET:
			rc = take_option(cli, &socket_def, &socket, optarg);
			break;
		case OPT_CLUSTER:
			rc = take_option(cli, &cluster_def, &cluster, optarg);
			break;
		case OPT_FORMAT:
			if (!strcmp(optarg, "json"))
				cli->json = true;
			else if (strcmp(optarg, "table") && strcmp(optarg, "text"))
				rc = cli_usage_error(cli,
						     "unknown format '%s' (use 'json' or 'table')",
						     optarg);
			else
				cli->json = false;
			break;
		case OPT_APP:
			rc = set_app(cli, optarg, "-a");
			break;
		case '?':
			if (optopt > 0 && optopt < 256)
				rc = cli_usage_error(cli, "unknown option '-%c'", optopt);
			else
				rc = cli_usage_error(cli, "unknown option '%s'", argv[optind - 1]);
			break;
		case ':':
			rc = cli_usage_error(cli, "option '%s' needs a value", argv[optind - 1]);
			break;
		default:
			rc = take_option(cli, &e->options[c - OPT_OWN_BASE],
					 &cli->opts[c - OPT_OWN_BASE], optarg);
		}
	}
	*first = optind;
	int nargs = argc - optind;
	for (size_t i = 0; rc == CLI_OK && i < n_own; i++)
		if (e->options[i].required && !cli->opts[i].set)
			rc = cli_usage_error(cli, "%s", e->options[i].required);
	if (rc == CLI_OK && nargs < e->min_operands) {
		if (e->operands_missing)
			rc = cli_usage_error(cli, "%s", e->operands_missing);
		else
			rc = cli_usage_error(cli, "missing %s",
					     e->operands ? e->operands : "operand");
	}
	if (rc == CLI_OK && e->max_operands >= 0 && nargs > e->max_operands)
		rc = cli_usage_error(cli, "unexpected argument '%s'",
				     argv[optind + e->max_operands]);
	if (rc == CLI_OK && e->app == CLI_APP_OPERAND && nargs > 0) {
		rc = set_app(cli, argv[optind], "the operand");
		(*first)++;
	}
	if (rc == CLI_OK && e->app != CLI_APP_NONE && !cli->app)
		rc = app_from_toml(cli);
	if (rc == CLI_OK && (e->flags & CMD_NEEDS_SERVER))
		rc = choose_target(cli, cluster.str, socket.str);
	strbuf_release(&shortopts);
	free(opts);
	return rc;
}

static int run(const struct cmd_entry *e, int argc, char **argv)
{
	struct cli cli = { .cmd = e };
	cli.opts = xcalloc(count_options(e) + 1, sizeof(*cli.opts));
	/* --format json before the error: usage errors are JSON too. */
	for (int i = 1; i < argc && strcmp(argv[i], "--"); i++)
		if (!strcmp(argv[i], "--format=json") ||
		    (!strcmp(argv[i], "--format") && i + 1 < argc && !strcmp(argv[i + 1], "json")))
			cli_set_json_errors(true);
	int first;
	int rc = prepare(&cli, argc, argv, &first);
	if (rc == CLI_OK)
		rc = e->exec(&cli, argc - first, argv + first);
	else if (rc < 0)
		rc = CLI_OK;
	api_target_release(&cli.target);
	free(cli.app);
	for (size_t i = 0; i < count_options(e); i++)
		free(cli.opts[i].list);
	free(cli.opts);
	return rc;
}

static const struct cli_optdef *find_def(const struct cli *cli, const char *name, size_t *i)
{
	for (*i = 0; cli->cmd->options && cli->cmd->options[*i].name; (*i)++)
		if (!strcmp(cli->cmd->options[*i].name, name))
			return &cli->cmd->options[*i];
	fprintf(stderr, "miren: bug: command '%s' has no option '%s'\n", cli->cmd->name, name);
	abort();
}

bool cli_flag(const struct cli *cli, const char *name)
{
	size_t i;
	find_def(cli, name, &i);
	return cli->opts[i].set;
}

const char *cli_str(const struct cli *cli, const char *name)
{
	size_t i;
	find_def(cli, name, &i);
	return cli->opts[i].set ? cli->opts[i].str : NULL;
}

const char *const *cli_list(const struct cli *cli, const char *name, size_t *n)
{
	size_t i;
	find_def(cli, name, &i);
	*n = cli->opts[i].n_list;
	return cli->opts[i].list;
}

long long cli_int(const struct cli *cli, const char *name, long long dflt)
{
	size_t i;
	find_def(cli, name, &i);
	return cli->opts[i].set ? cli->opts[i].num : dflt;
}

int cli_main(int argc, char **argv)
{
	if (argc < 2) {
		print_main_help(stderr);
		return CLI_USAGE;
	}
	if (!strcmp(argv[1], "--version") || !strcmp(argv[1], "version")) {
		printf("miren %s\n", MIREN_VERSION);
		return CLI_OK;
	}
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
		print_main_help(stdout);
		return CLI_OK;
	}
	if (!strcmp(argv[1], "help"))
		return help_command(argc - 2, argv + 2);
	int used;
	const struct cmd_entry *e = find_command(argc - 1, argv + 1, &used);
	if (!e)
		return unknown_command(argc - 1, argv + 1);
	return run(e, argc - used, argv + used);
}
