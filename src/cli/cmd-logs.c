/* miren logs: the output of an app's services, optionally followed. */
#include "cli/cli.h"
#include "api/client.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const struct option longopts[] = {
	CLI_APP_LONGOPT,
	{ "service", required_argument, NULL, 's' },
	{ "follow", no_argument, NULL, 'f' },
	{ "lines", required_argument, NULL, 'n' },
	{ 0 },
};

static const char *service;
static bool follow;
static int lines = 100;

static int option(struct cli *cli, int opt, const char *arg)
{
	switch (opt) {
	case 's':
		return cli_opt_once(cli, "-s", &service, arg);
	case 'f':
		follow = true;
		return 0;
	case 'n': {
		char *end;
		long v = strtol(arg, &end, 10);
		if (*end || v < 0 || v > 1000000)
			return cli_usage_error(cli, "--lines needs a number, not '%s'", arg);
		lines = (int)v;
		return 0;
	}
	}
	return cli_opt_app(cli, opt, arg);
}

/* Prints data, each line prefixed with the service name when prefix. */
static void print_chunk(const char *svc, const char *data, size_t len, bool prefix,
			bool *at_line_start)
{
	for (size_t i = 0; i < len; i++) {
		if (prefix && *at_line_start)
			printf("%s | ", svc);
		putchar(data[i]);
		*at_line_start = data[i] == '\n';
	}
	fflush(stdout);
}

static int exec(struct cli *cli, int argc, char **argv)
{
	if (argc)
		return cli_usage_error(cli, "unexpected argument '%s'", argv[0]);
	int rc = cli_require_app(cli);
	if (rc)
		return rc;
	/* Which services: the one asked for, else all of the app. */
	json_t *names = json_array();
	if (service) {
		json_array_append_new(names, json_string(service));
	} else {
		json_t *st;
		char *path = cli_app_path(cli, NULL);
		rc = cli_call(cli, "GET", path, NULL, &st);
		free(path);
		if (rc) {
			json_decref(names);
			return rc;
		}
		size_t i;
		json_t *s;
		json_array_foreach(json_object_get(st, "services"), i, s)
			json_array_append(names, json_object_get(s, "name"));
		json_decref(st);
	}
	size_t n = json_array_size(names);
	long long *offsets = calloc(n ? n : 1, sizeof(long long));
	bool *line_start = calloc(n ? n : 1, sizeof(bool));
	for (size_t i = 0; i < n; i++) {
		offsets[i] = -1;
		line_start[i] = true;
	}
	bool prefix = n > 1;
	for (;;) {
		for (size_t i = 0; i < n && !rc; i++) {
			const char *svc = json_string_value(json_array_get(names, i));
			char *esc = api_escape(svc);
			char *suffix = offsets[i] < 0 ? xasprintf("/logs/%s?tail=%d", esc, lines)
						       : xasprintf("/logs/%s?offset=%lld", esc, offsets[i]);
			char *path = cli_app_path(cli, suffix);
			json_t *r;
			rc = cli_call(cli, "GET", path, NULL, &r);
			if (!rc) {
				const char *data = json_string_value(json_object_get(r, "data"));
				size_t len = json_string_length(json_object_get(r, "data"));
				print_chunk(svc, data ? data : "", len, prefix, &line_start[i]);
				offsets[i] = json_integer_value(json_object_get(r, "offset"));
				json_decref(r);
			}
			free(path);
			free(suffix);
			free(esc);
		}
		if (rc || !follow)
			break;
		usleep(250 * 1000);
	}
	free(offsets);
	free(line_start);
	json_decref(names);
	return rc;
}

const struct cmd_entry cmd_logs_entry = {
	.name = "logs",
	.summary = "show (and follow) the output of an app's services",
	.usage = "miren logs [-a APP] [-s SERVICE] [-f] [-n LINES]",
	.help = "options:\n"
		"  -a, --app APP          the app (default: the one of .miren/app.toml here)\n"
		"  -s, --service SERVICE  only this service (default: all, lines prefixed\n"
		"                         with the service name)\n"
		"  -f, --follow           keep printing new output until interrupted\n"
		"  -n, --lines LINES      start with the last LINES lines (default 100)\n",
	.shortopts = "a:s:fn:",
	.longopts = longopts,
	.flags = CMD_NEEDS_SERVER,
	.option = option,
	.exec = exec,
};
