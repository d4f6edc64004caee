/* miren logs: the output of an app's services, optionally followed. */
#include "api/client.h"
#include "cli/cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const struct cli_optdef options[] = {
	{ .name = "service",
	  .letter = 's',
	  .kind = CLI_OPT_STRING,
	  .value = "SERVICE",
	  .help = "only this service (default: all, lines prefixed\nwith the service name)" },
	{ .name = "follow",
	  .letter = 'f',
	  .kind = CLI_OPT_FLAG,
	  .help = "keep printing new output until interrupted" },
	{ .name = "lines",
	  .letter = 'n',
	  .kind = CLI_OPT_INT,
	  .value = "LINES",
	  .min = 0,
	  .max = 1000000,
	  .help = "start with the last LINES lines (default 100)" },
	{ 0 },
};

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

/* Prints what service's log holds from *offset on (from its last `lines`
 * lines when *offset < 0) to its end, a slice (at most 1 MiB) per call;
 * *offset: where the next read goes on.  Returns a CLI exit code. */
static int read_service(struct cli *cli, const char *svc, int lines, bool prefix, long long *offset,
			bool *line_start)
{
	bool more = true;
	int rc = CLI_OK;
	while (more && !rc) {
		char *esc = api_escape(svc);
		char *suffix = *offset < 0 ? xasprintf("/logs/%s?tail=%d", esc, lines)
					   : xasprintf("/logs/%s?offset=%lld", esc, *offset);
		char *path = cli_app_path(cli, suffix);
		json_t *r;
		rc = cli_call(cli, "GET", path, NULL, &r);
		more = false;
		if (!rc) {
			const json_t *data = json_object_get(r, "data");
			print_chunk(svc, json_string_value(data) ? json_string_value(data) : "",
				    json_string_length(data), prefix, line_start);
			*offset = json_integer_value(json_object_get(r, "offset"));
			more = json_is_true(json_object_get(r, "more"));
			json_decref(r);
		}
		free(path);
		free(suffix);
		free(esc);
	}
	return rc;
}

static int exec(struct cli *cli, int argc, char **argv)
{
	(void)argc;
	(void)argv;
	const char *service = cli_str(cli, "service");
	bool follow = cli_flag(cli, "follow");
	int lines = (int)cli_int(cli, "lines", 100);
	int rc = CLI_OK;
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
		json_array_foreach (json_object_get(st, "services"), i, s)
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
		for (size_t i = 0; i < n && !rc; i++)
			rc = read_service(cli, json_string_value(json_array_get(names, i)), lines,
					  prefix, &offsets[i], &line_start[i]);
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
	.app = CLI_APP_OPTION,
	.options = options,
	.flags = CMD_NEEDS_SERVER,
	.exec = exec,
};
