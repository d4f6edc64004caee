/*
 * The CLI's command table and the helpers every command shares.
 *
 * Each subcommand lives in src/cli/cmd-<name>.c and exports one
 * `const struct cmd_entry`; src/cli/table.c gathers them in cmd_table[].
 * A command's exec returns the process exit code: CLI_OK (0), CLI_FAIL
 * (1, the operation failed) or CLI_USAGE (2, the command line was wrong).
 */
#ifndef MIREN_CLI_H
#define MIREN_CLI_H

#include <getopt.h>
#include <jansson.h>
#include <stdbool.h>

#include "util/err.h"

enum { CLI_OK = 0, CLI_FAIL = 1, CLI_USAGE = 2 };

enum cmd_flags {
	CMD_NEEDS_SERVER = 1 << 0, /* talks to the daemon */
	CMD_HIDDEN = 1 << 1,       /* not listed in `miren help` */
};

/* Options every command accepts; commands add their own after these. */
enum cli_common_opt {
	OPT_HELP = 'h',
	OPT_SOCKET = 1000,
	OPT_FORMAT,
	OPT_FIRST_COMMAND_OPT, /* commands number their long-only options from here */
};

struct cli {
	const struct cmd_entry *cmd;
	char *socket;     /* resolved API socket path */
	bool json;        /* --format json */
	char *app;        /* -a/--app, or resolved from .miren/app.toml */
	const char *app_how; /* where app came from: "-a", "the operand" */
};

struct cmd_entry {
	const char *name;    /* "app list" */
	const char *summary; /* one line for `miren help` */
	const char *usage;   /* "miren app list [--format json]" */
	const char *help;    /* the options and a description, for --help */
	const char *shortopts;
	const struct option *longopts; /* NULL-terminated; common ones are added */
	int flags;
	/* Called once per parsed option; returns 0, or CLI_USAGE. */
	int (*option)(struct cli *cli, int opt, const char *arg);
	/* Runs the command with the operands left after the options. */
	int (*exec)(struct cli *cli, int argc, char **argv);
};

extern const struct cmd_entry *const cmd_table[];

/* Messages in the house style: "error: ..." and "hint: ..." on stderr. */
void cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void cli_hint(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void cli_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Prints err (and its hint); returns CLI_FAIL. */
int cli_fail(const struct miren_error *err);
/* Prints "error: MSG" and the usage line of the command; returns CLI_USAGE. */
int cli_usage_error(const struct cli *cli, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* The app to act on: -a, else .miren/app.toml in the cwd.  Returns 0 or
 * prints why there is none and returns CLI_USAGE / CLI_FAIL. */
int cli_require_app(struct cli *cli);

/* The option handler of commands whose only own option is -a/--app.  -a
 * given twice with different apps is a usage error (CLI_USAGE). */
int cli_opt_app(struct cli *cli, int opt, const char *arg);
#define CLI_APP_LONGOPT { "app", required_argument, NULL, 'a' }
/* "/v1/apps/<app><suffix>" with the app name escaped. Caller frees. */
char *cli_app_path(const struct cli *cli, const char *suffix);

/* "/v1/apps/<app>/env/<key><query>" for a variable's requests, with key
 * checked first (name_check_env: its message shows the key escaped).
 * Caller frees; NULL after printing the error (the command then exits
 * CLI_FAIL). */
char *cli_env_path(const struct cli *cli, const char *key, const char *query);

/* The same for commands that also take the app as their one operand
 * (`miren app restart APP`): APP, else -a, else app.toml.  An operand and an
 * -a that name different apps are a usage error naming both (CLI_USAGE): a
 * destructive command never guesses which one was meant. */
int cli_require_app_operand(struct cli *cli, int argc, char **argv);

/* For options naming what a command acts on (-n DISK, -s FILE, -o PATH,
 * -C DIR): sets *slot to arg, or, when the option was already given with
 * another value, prints a usage error naming both and returns CLI_USAGE. */
int cli_opt_once(const struct cli *cli, const char *option, const char **slot, const char *arg);

/* One API call; prints the error and returns CLI_FAIL on failure. */
int cli_call(struct cli *cli, const char *method, const char *path, const json_t *body,
	     json_t **reply);

/* Waits until every addon of cli->app (or only the one named) is active,
 * printing "Provisioning addon X (variant)..." and "Addon X ready" on
 * stderr.  Returns CLI_OK, or CLI_FAIL after printing the error of an
 * addon that failed (with the commands that fix it). */
int cli_wait_addons(struct cli *cli, const char *only);

/* Progress of a long transfer; see progress.c. */
struct cli_progress {
	const char *verb;
	double start, last;
	bool shown, enabled;
};
void cli_progress_init(struct cli_progress *p, const char *verb);
void cli_progress_update(struct cli_progress *p, unsigned long long bytes);
void cli_progress_done(struct cli_progress *p);
double cli_progress_elapsed(const struct cli_progress *p);
/* "1.0 GiB", "41.3 MiB". */
void cli_human_bytes(unsigned long long bytes, char *out, size_t len);
/* Prints "warning: <disk_warning>; grow it with 'miren disk resize ...'" on
 * stdout for every addon of the array (as the API returns them) whose disk
 * is nearly full. */
void cli_print_disk_warnings(const json_t *addons);

/* Prints j as indented JSON on stdout. */
void cli_print_json(const json_t *j);
/* With --format json: prints j, releases it and returns true; otherwise
 * false, and j is left to the caller's text output. */
bool cli_json_output(const struct cli *cli, json_t *j);

/* A plain-text table: columns padded to their widest cell, counted in
 * terminal columns (wide characters are 2).  Each cell is shown on one line:
 * control characters, backslashes and invalid UTF-8 are escaped (text_escape:
 * a PEM value prints as "-----BEGIN...\n..."); --format json has the raw
 * values. */
struct cli_table;
struct cli_table *cli_table_new(int ncols, ...);
void cli_table_row(struct cli_table *t, ...); /* ncols const char * cells */
void cli_table_print(struct cli_table *t);    /* prints and frees */

/* Asks a yes/no question on the terminal; false when stdin is not one. */
bool cli_confirm(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
bool cli_stdout_is_tty(void);

#endif
