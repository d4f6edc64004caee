/* Helpers shared by every CLI command; see cli.h. */
#include "cli/cli.h"
#include "api/client.h"
#include "app/config.h"
#include "util/names.h"
#include "util/strbuf.h"
#include "util/text.h"
#include "util/io.h"

#include <libgen.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void vmsg(const char *prefix, const char *fmt, va_list ap)
{
	fputs(prefix, stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
}

void cli_error(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vmsg("error: ", fmt, ap);
	va_end(ap);
}

void cli_hint(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vmsg("hint: ", fmt, ap);
	va_end(ap);
}

void cli_warn(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vmsg("warning: ", fmt, ap);
	va_end(ap);
}

int cli_fail(const struct miren_error *err)
{
	cli_error("%s", err->message);
	if (err->hint[0])
		cli_hint("%s", err->hint);
	return CLI_FAIL;
}

int cli_usage_error(const struct cli *cli, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vmsg("error: ", fmt, ap);
	va_end(ap);
	if (cli->cmd)
		fprintf(stderr, "usage: %s\n", cli->cmd->usage);
	return CLI_USAGE;
}

int cli_require_app(struct cli *cli)
{
	if (cli->app)
		return 0;
	struct strbuf sb;
	strbuf_init(&sb, 1 << 20);
	int rc = strbuf_read_file(&sb, ".miren/app.toml");
	if (rc == MIREN_ENOTFOUND) {
		strbuf_release(&sb);
		cli_error("no app given");
		cli_hint("pass -a APP, or run the command in a directory with .miren/app.toml");
		return CLI_USAGE;
	}
	if (rc) {
		strbuf_release(&sb);
		cli_error("cannot read .miren/app.toml: %s", miren_strerror(rc));
		return CLI_FAIL;
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
	return 0;
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
	return 0;
}

int cli_require_app_operand(struct cli *cli, int argc, char **argv)
{
	if (argc > 1)
		return cli_usage_error(cli, "unexpected argument '%s'", argv[1]);
	if (argc == 1) {
		int rc = set_app(cli, argv[0], "the operand");
		if (rc)
			return rc;
	}
	return cli_require_app(cli);
}

int cli_opt_once(const struct cli *cli, const char *option, const char **slot, const char *arg)
{
	if (*slot && strcmp(*slot, arg))
		return cli_usage_error(cli, "conflicting values for %s: '%s' and '%s'", option, *slot,
				       arg);
	*slot = arg;
	return 0;
}

int cli_call(struct cli *cli, const char *method, const char *path, const json_t *body,
	     json_t **reply)
{
	struct miren_error err;
	json_t *r = NULL;
	int rc = api_call_json(cli->socket, method, path, body, &r, &err);
	if (rc)
		return cli_fail(&err);
	if (reply)
		*reply = r;
	else
		json_decref(r);
	return 0;
}

void cli_print_json(const json_t *j)
{
	json_dumpf(j, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	fputc('\n', stdout);
}

bool cli_json_output(const struct cli *cli, json_t *j)
{
	if (!cli->json)
		return false;
	cli_print_json(j);
	json_decref(j);
	return true;
}

struct cli_table {
	int ncols;
	char **cells; /* rows * ncols, row 0 the header */
	size_t rows;
};

struct cli_table *cli_table_new(int ncols, ...)
{
	struct cli_table *t = xcalloc(1, sizeof(*t));
	t->ncols = ncols;
	t->cells = xcalloc((size_t)ncols, sizeof(char *));
	va_list ap;
	va_start(ap, ncols);
	for (int i = 0; i < ncols; i++)
		t->cells[i] = xstrdup(va_arg(ap, const char *));
	va_end(ap);
	t->rows = 1;
	return t;
}

void cli_table_row(struct cli_table *t, ...)
{
	t->cells = xrealloc(t->cells, (t->rows + 1) * (size_t)t->ncols * sizeof(char *));
	va_list ap;
	va_start(ap, t);
	for (int i = 0; i < t->ncols; i++) {
		const char *s = va_arg(ap, const char *);
		t->cells[t->rows * (size_t)t->ncols + (size_t)i] = text_escaped(s ? s : "",
										 s ? strlen(s) : 0);
	}
	va_end(ap);
	t->rows++;
}

void cli_table_print(struct cli_table *t)
{
	size_t *w = xcalloc((size_t)t->ncols, sizeof(size_t));
	for (size_t r = 0; r < t->rows; r++)
		for (int c = 0; c < t->ncols; c++) {
			size_t l = text_width(t->cells[r * (size_t)t->ncols + (size_t)c]);
			if (l > w[c])
				w[c] = l;
		}
	for (size_t r = 0; r < t->rows; r++) {
		for (int c = 0; c < t->ncols; c++) {
			const char *s = t->cells[r * (size_t)t->ncols + (size_t)c];
			if (c == t->ncols - 1) {
				printf("%s\n", s);
				continue;
			}
			/* Padded to the column's width in terminal columns, not bytes. */
			printf("%s%*s  ", s, (int)(w[c] - text_width(s)), "");
		}
	}
	for (size_t i = 0; i < t->rows * (size_t)t->ncols; i++)
		free(t->cells[i]);
	free(t->cells);
	free(w);
	free(t);
}

bool cli_confirm(const char *fmt, ...)
{
	if (!isatty(STDIN_FILENO))
		return false;
	va_list ap;
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputs(" [y/N] ", stderr);
	char line[64];
	if (!fgets(line, sizeof(line), stdin))
		return false;
	return line[0] == 'y' || line[0] == 'Y';
}

bool cli_stdout_is_tty(void)
{
	return isatty(STDOUT_FILENO);
}

int cli_opt_app(struct cli *cli, int opt, const char *arg)
{
	if (opt != 'a')
		return cli_usage_error(cli, "unknown option");
	return set_app(cli, arg, "-a");
}

char *cli_env_path(const struct cli *cli, const char *key, const char *query)
{
	struct miren_error err;
	if (name_check_env(key, &err)) {
		cli_fail(&err);
		return NULL;
	}
	char *esc = api_escape(key);
	char *suffix = xasprintf("/env/%s%s", esc, query ? query : "");
	char *path = cli_app_path(cli, suffix);
	free(suffix);
	free(esc);
	return path;
}

char *cli_app_path(const struct cli *cli, const char *suffix)
{
	char *esc = api_escape(cli->app);
	char *path = xasprintf("/v1/apps/%s%s", esc, suffix ? suffix : "");
	free(esc);
	return path;
}

void cli_print_disk_warnings(const json_t *addons)
{
	size_t i;
	json_t *a;
	json_array_foreach(addons, i, a) {
		const char *w = json_string_value(json_object_get(a, "disk_warning"));
		const char *disk = json_string_value(json_object_get(a, "disk"));
		if (w && disk)
			printf("warning: %s; grow it with 'miren disk resize -n %s --size SIZE'\n", w,
			       disk);
	}
}
