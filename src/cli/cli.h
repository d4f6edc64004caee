/*
 * The CLI's command table and the helpers every command shares.
 *
 * Each subcommand lives in src/cli/cmd-<name>.c and exports one
 * `const struct cmd_entry`; src/cli/table.c gathers them in cmd_table[].
 * A command is declared once (struct cmd_entry: its options with their
 * kinds and ranges, its operand counts, the app it acts on); src/cli/run.c
 * parses the command line from that, and prints --help, `miren help CMD`,
 * usage errors and `miren help --format json` (the docs check) from it.
 * Adding a command is one entry and one exec function
 * (docs/architecture.md, "CLI").
 */
#ifndef MIREN_CLI_H
#define MIREN_CLI_H

#include <jansson.h>
#include <stdbool.h>

#include "api/client.h"
#include "util/err.h"

/*
 * Exit codes by error kind (README.md and docs/commands/README.md list
 * them): a script can tell "no such app" from "the server is down".
 */
enum cli_exit {
	CLI_OK = 0,       /* done */
	CLI_FAIL = 1,     /* failed for another reason (internal, I/O, store,
			   * declined confirmation, an addon that failed) */
	CLI_USAGE = 2,    /* the command line is wrong */
	CLI_NOTFOUND = 3, /* no such app, addon, variable, service or disk */
	CLI_CONFLICT = 4, /* already there, or in a state that forbids it */
	CLI_UNAVAIL = 5,  /* the server (or a server it needs) does not answer */
	CLI_INVALID = 6,  /* invalid input: app.toml, a name, a value */
	CLI_DENIED = 7,   /* permission denied */
	CLI_TOOBIG = 8,   /* over a size bound, or a disk is full */
};

/* The exit code of an error kind (MIREN_OK: CLI_OK). */
int cli_exit_code(enum miren_err code);

enum cmd_flags {
	CMD_NEEDS_SERVER = 1 << 0, /* talks to the daemon: takes --socket and
				    * --cluster (cli->target) */
	CMD_HIDDEN = 1 << 1,       /* not listed in `miren help` */
	CMD_JSON = 1 << 2,         /* --format json changes its output */
	CMD_SERVER_HOST = 1 << 3,  /* works only on the server's host: refused
				    * with a cluster selected */
};

/* Which app a command acts on. */
enum cli_app_target {
	CLI_APP_NONE = 0, /* none (or its own way: deploy's -C DIR) */
	CLI_APP_OPTION,   /* -a/--app, else .miren/app.toml in the cwd */
	CLI_APP_OPERAND,  /* its first operand, else -a, else app.toml; an
			   * operand and -a naming different apps: usage error */
};

enum cli_opt_kind {
	CLI_OPT_FLAG,   /* no value */
	CLI_OPT_STRING, /* one value; given twice with different values: usage error */
	CLI_OPT_INT,    /* a decimal integer in [min, max] */
	CLI_OPT_LIST,   /* one value per use; may be given many times */
};

/*
 * One option of a command, declared once: parsing, the usage line, --help,
 * `miren help --format json` (the docs check) all come from it.
 */
struct cli_optdef {
	const char *name; /* long name without "--": "lines" */
	char letter;      /* short name ('n'), 0 for none */
	enum cli_opt_kind kind;
	const char *value;  /* placeholder shown for the value: "LINES" */
	long long min, max; /* CLI_OPT_INT: the range, both included */
	const char *help;   /* for --help; lines after the first are indented */
	/* Non-NULL: the option must be given, and this is the error without it
	 * ("which disk? give -n NAME"). */
	const char *required;
};

struct cli;

struct cmd_entry {
	const char *name;    /* "app list"; words form groups ("debug disk") */
	const char *summary; /* one line for `miren help` */
	/* Operands as the usage line shows them ("ADDON[:VARIANT]", "[APP]",
	 * "KEY=VALUE..."; NULL: none) and how many: fewer than min_operands is
	 * a usage error (operands_missing, else "missing OPERANDS"), more than
	 * max_operands (-1: no limit) one too. */
	const char *operands;
	int min_operands, max_operands;
	const char *operands_missing;
	/* One line per operand for --help: "APP  the app..." (NULL: none). */
	const char *operands_help;
	enum cli_app_target app;
	const struct cli_optdef *options; /* terminated by { 0 }; may be NULL */
	const char *help;                 /* what --help says besides the options */
	const char *json_help;            /* --help's line for --format json (CMD_JSON;
					   * NULL: "print JSON instead of text") */
	int flags;                        /* enum cmd_flags */
	/* Runs the command with its operands, once options are parsed, their
	 * counts and ranges checked and the app (per .app) resolved into
	 * cli->app.  Returns the exit code (enum cli_exit). */
	int (*exec)(struct cli *cli, int argc, char **argv);
};

/* A parsed option. */
struct cli_optval {
	bool set;
	const char *str;   /* CLI_OPT_STRING: the value */
	long long num;     /* CLI_OPT_INT */
	const char **list; /* CLI_OPT_LIST: the values in order (n_list) */
	size_t n_list;
};

struct cli {
	const struct cmd_entry *cmd;
	struct api_target target; /* the server it talks to (CMD_NEEDS_SERVER):
				   * the unix socket or a cluster */
	bool json;                /* --format json */
	char *app;                /* -a/--app, the operand, or from .miren/app.toml */
	const char *app_how;      /* where app came from: "-a", "the operand" */
	struct cli_optval *opts;  /* one per cmd->options entry */
};

extern const struct cmd_entry *const cmd_table[];

/* Runs the CLI: the whole of main(); returns the exit code. */
int cli_main(int argc, char **argv);
/* The usage line built from e's declaration ("miren logs [-a APP] ...").
 * Caller frees. */
char *cli_usage_line(const struct cmd_entry *e);
/* With on, errors are printed as JSON on stderr (--format json). */
void cli_set_json_errors(bool on);

/* The value of the command's option `name` (aborts when the command does
 * not declare it: a programming error). */
bool cli_flag(const struct cli *cli, const char *name);
const char *cli_str(const struct cli *cli, const char *name); /* NULL: not given */
/* CLI_OPT_LIST: the values given, in order, *n of them (NULL when none). */
const char *const *cli_list(const struct cli *cli, const char *name, size_t *n);
long long cli_int(const struct cli *cli, const char *name, long long dflt);

/* "warning: ..." on stderr (also with --format json). */
void cli_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Prints err (message, detail, hint; with --format json as
 * {"error":{"code","message","detail","hint"}} on stderr); returns the
 * exit code of its kind. */
int cli_fail(const struct miren_error *err);
/* Builds an error of kind code with an optional hint, prints it as
 * cli_fail does and returns its exit code. */
int cli_failf(enum miren_err code, const char *hint, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
#ifdef __clang_analyzer__
/* clang-tidy's analyser does not see cli.c: this tells it that a failure's
 * exit code is never CLI_OK (cli_fail takes MIREN_OK for MIREN_EINTERNAL),
 * so "rc = cli_fail(...); ... if (rc)" is not followed down a path where
 * rc is 0 (as util/err.h does for miren_error_set). */
#define cli_fail(err)                                   \
	({                                              \
		int cli_fail_rc_ = cli_fail(err);       \
		cli_fail_rc_ ? cli_fail_rc_ : CLI_FAIL; \
	})
#define cli_failf(code, ...)                                       \
	({                                                         \
		int cli_fail_rc_ = cli_failf((code), __VA_ARGS__); \
		cli_fail_rc_ ? cli_fail_rc_ : CLI_FAIL;            \
	})
#endif
/* Prints "error: MSG" and the usage line of the command; returns CLI_USAGE. */
int cli_usage_error(const struct cli *cli, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* "/v1/apps/<app><suffix>" with the app name escaped. Caller frees. */
char *cli_app_path(const struct cli *cli, const char *suffix);

/* "/v1/apps/<app>/env/<key><query>" for a variable's requests, with key
 * checked first (name_check_env: its message shows the key escaped).
 * Caller frees; NULL after printing the error (the command then exits
 * CLI_INVALID). */
char *cli_env_path(const struct cli *cli, const char *key, const char *query);

/* One API call; prints the error and returns its exit code on failure. */
int cli_call(struct cli *cli, const char *method, const char *path, const json_t *body,
	     json_t **reply);

/* Waits until every addon of cli->app (or only the one named) is active,
 * printing "Provisioning addon X (variant)..." and "Addon X ready" on
 * stderr.  Returns CLI_OK, or CLI_FAIL after printing the error of an
 * addon that failed (with the commands that fix it). */
int cli_wait_addons(struct cli *cli, const char *only);

/* After a deploy or a rollback (settle.c).  Whether a service (as app
 * status shows it) has exited since it was started. */
bool cli_service_exited(json_t *svc);
/*
 * Waits until every started service of cli->app is past the supervisor's
 * first second ("starting") or one has exited, at most 10 s; services
 * waiting for addons are not waited for.  While the server holds the
 * app's start back (an addon is not active yet) it waits too when
 * wait_held, else returns at once with *held set.  Returns the services
 * as app status shows them then (to decref), or NULL when status cannot
 * be read.
 */
json_t *cli_settled_services(struct cli *cli, bool wait_held, bool *held);
/* Prints an error for each service of svcs that exited right after
 * release rel of app started it, pointing at its log; returns how many. */
size_t cli_report_exited(const char *app, long long rel, json_t *svcs);

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
/* "2026-12-01 17:40:00": unix seconds t in UTC. */
void cli_utc_text(long long t, char *out, size_t len);
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
