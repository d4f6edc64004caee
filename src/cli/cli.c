/* Helpers shared by every CLI command; see cli.h. */
#include "cli/cli.h"
#include "api/client.h"
#include "util/io.h"
#include "util/names.h"
#include "util/text.h"

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

void cli_warn(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vmsg("warning: ", fmt, ap);
	va_end(ap);
}

static bool json_errors;

void cli_set_json_errors(bool on)
{
	json_errors = on;
}

int cli_exit_code(enum miren_err code)
{
	switch (code) {
	case MIREN_OK:
		return CLI_OK;
	case MIREN_ENOTFOUND:
		return CLI_NOTFOUND;
	case MIREN_EEXISTS:
	case MIREN_ECONFLICT:
		return CLI_CONFLICT;
	case MIREN_EUNAVAIL:
		return CLI_UNAVAIL;
	case MIREN_EINVAL:
		return CLI_INVALID;
	case MIREN_EPERM:
	case MIREN_EAUTH:
		return CLI_DENIED;
	case MIREN_ETOOBIG:
		return CLI_TOOBIG;
	default:
		return CLI_FAIL;
	}
}

/* An error as JSON on stderr: {"error":{"code","message","detail","hint"}},
 * the shape the API sends. */
static void print_json_error(const char *code, const char *message, const char *detail,
			     const char *hint)
{
	json_t *j = json_pack("{s:{s:s, s:s, s:s, s:s}}", "error", "code", code, "message", message,
			      "detail", detail, "hint", hint);
	json_dumpf(j, stderr, JSON_COMPACT | JSON_PRESERVE_ORDER);
	fputc('\n', stderr);
	json_decref(j);
}

int(cli_fail)(const struct miren_error *err)
{
	if (json_errors) {
		print_json_error(miren_err_code_name(err->code), err->message, err->detail,
				 err->hint);
	} else {
		fprintf(stderr, "error: %s\n", err->message);
		if (err->detail[0])
			fprintf(stderr, "detail: %s\n", err->detail);
		if (err->hint[0])
			fprintf(stderr, "hint: %s\n", err->hint);
	}
	enum miren_err code = err->code ? err->code : MIREN_EINTERNAL;
	return cli_exit_code(code);
}

int(cli_failf)(enum miren_err code, const char *hint, const char *fmt, ...)
{
	struct miren_error err;
	miren_error_clear(&err);
	err.code = code;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err.message, sizeof(err.message), fmt, ap);
	va_end(ap);
	if (hint)
		snprintf(err.hint, sizeof(err.hint), "%s", hint);
	return cli_fail(&err);
}

int cli_usage_error(const struct cli *cli, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	char *usage = cli->cmd ? cli_usage_line(cli->cmd) : NULL;
	if (json_errors) {
		char *hint = usage ? xasprintf("usage: %s", usage) : xstrdup("");
		print_json_error("usage", msg, "", hint);
		free(hint);
	} else {
		fprintf(stderr, "error: %s\n", msg);
		if (usage)
			fprintf(stderr, "usage: %s\n", usage);
	}
	free(usage);
	return CLI_USAGE;
}

int cli_call(struct cli *cli, const char *method, const char *path, const json_t *body,
	     json_t **reply)
{
	struct miren_error err;
	json_t *r = NULL;
	if (api_call_json(&cli->target, method, path, body, &r, &err))
		return cli_fail(&err);
	if (reply)
		*reply = r;
	else
		json_decref(r);
	return CLI_OK;
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

char *cli_env_path(const struct cli *cli, const char *key, const char *query)
{
	struct miren_error err;
	if (name_check_env(key, &err)) {
		cli_fail(&err); /* MIREN_EINVAL: CLI_INVALID */
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
	json_array_foreach (addons, i, a) {
		const char *w = json_string_value(json_object_get(a, "disk_warning"));
		const char *disk = json_string_value(json_object_get(a, "disk"));
		if (w && disk)
			printf("warning: %s; grow it with 'miren disk resize -n %s --size SIZE'\n",
			       w, disk);
		/* The engine's own (addon_def.describe's "warnings"). */
		size_t k;
		json_t *x;
		json_array_foreach (json_object_get(a, "warnings"), k, x)
			if (json_is_string(x))
				printf("warning: %s: %s\n",
				       json_string_value(json_object_get(a, "addon")),
				       json_string_value(x));
	}
}
