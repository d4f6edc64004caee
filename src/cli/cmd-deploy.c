/* miren deploy: pack the project, send it, and report the new release. */
#include "cli/cli.h"
#include "api/client.h"
#include "app/config.h"
#include "app/source.h"
#include "util/fs.h"
#include "util/strbuf.h"

#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const struct option longopts[] = {
	{ "dir", required_argument, NULL, 'C' },
	{ 0 },
};

static const char *dir; /* NULL: "." */

static int option(struct cli *cli, int opt, const char *arg)
{
	if (opt == 'C')
		return cli_opt_once(cli, "-C", &dir, arg);
	return cli_usage_error(cli, "unknown option");
}

/* Reads and checks DIR/.miren/app.toml here, so mistakes show before any
 * upload; the server checks again. */
static int load_config(const char *root, struct app_config **cfg)
{
	char *path = fs_join(root, ".miren/app.toml");
	struct strbuf sb;
	strbuf_init(&sb, 1 << 20);
	int rc = strbuf_read_file(&sb, path);
	if (rc == MIREN_ENOTFOUND) {
		cli_error("no .miren/app.toml in '%s'", root);
		cli_hint("create it with at least:\n  [services.web]\n  command = \"...\"");
		rc = CLI_FAIL;
	} else if (rc) {
		cli_error("cannot read '%s': %s", path, miren_strerror(rc));
		rc = CLI_FAIL;
	} else {
		char *copy = xstrdup(root);
		struct miren_error err;
		rc = app_config_parse(sb.buf, sb.len, path, basename(copy), cfg, &err);
		free(copy);
		if (rc)
			rc = cli_fail(&err);
	}
	strbuf_release(&sb);
	free(path);
	return rc;
}

/* What the deploy did to addons although the code is unchanged, as
 * " addon A re-created, addon B retried" (to free; "" when nothing). */
static char *addons_made(json_t *res)
{
	struct strbuf sb = STRBUF_INIT;
	size_t i, k;
	json_t *v, *w;
	json_array_foreach(json_object_get(res, "addons_created"), i, v) {
		bool retried = false;
		json_array_foreach(json_object_get(res, "addons_retried"), k, w)
			retried |= json_equal(v, w);
		strbuf_addf(&sb, "%s addon %s %s", i ? "," : "", json_string_value(v),
			    retried ? "retried" : "re-created");
	}
	return strbuf_detach(&sb, NULL);
}

static int exec(struct cli *cli, int argc, char **argv)
{
	if (argc)
		return cli_usage_error(cli, "unexpected argument '%s'", argv[0]);
	char root[PATH_MAX];
	if (!dir)
		dir = ".";
	if (!realpath(dir, root)) {
		cli_error("cannot open directory '%s'", dir);
		return CLI_FAIL;
	}
	struct app_config *cfg = NULL;
	int rc = load_config(root, &cfg);
	if (rc)
		return rc;

	struct strbuf tar;
	strbuf_init(&tar, 0);
	struct miren_error err = { 0 };
	if (source_pack(root, &tar, &err) != 0) {
		rc = cli_fail(&err);
		goto out;
	}
	if (!cli->json)
		fprintf(stderr, "Deploying %s from %s (%.1f KiB)...\n", cfg->name, root,
			(double)tar.len / 1024);
	char *esc = api_escape(cfg->name);
	char *path = xasprintf("/v1/apps/%s/deploy", esc);
	free(esc);
	json_t *res = NULL;
	rc = api_call(cli->socket, "POST", path, tar.buf, tar.len,
		      "Content-Type: application/x-tar", &res, &err);
	free(path);
	if (rc) {
		rc = cli_fail(&err);
		goto out;
	}
	if (cli->json) {
		cli_print_json(res);
		json_decref(res);
		goto out;
	}
	size_t i;
	json_t *v;
	json_array_foreach(json_object_get(res, "warnings"), i, v)
		cli_warn("%s", json_string_value(v));
	json_array_foreach(json_object_get(res, "addons_retried"), i, v)
		fprintf(stderr, "Provisioning of addon %s failed before; retrying it\n",
			json_string_value(v));
	/* Held start: the services run once every addon is active. */
	bool pending = false;
	json_array_foreach(json_object_get(res, "addons"), i, v) {
		const char *st = json_string_value(json_object_get(v, "status"));
		pending |= st && strcmp(st, "active") && strcmp(st, "deprovisioning");
	}
	if (pending) {
		cli->app = xstrdup(cfg->name);
		rc = cli_wait_addons(cli, NULL);
		char *spath = cli_app_path(cli, NULL);
		json_t *st = NULL;
		if (!cli_call(cli, "GET", spath, NULL, &st))
			json_object_set(res, "services", json_object_get(st, "services"));
		json_decref(st);
		free(spath);
	}
	long long rel = json_integer_value(json_object_get(res, "release"));
	char *made = addons_made(res);
	if (rc)
		printf("Release %lld of %s is recorded; its services wait for its addons\n", rel,
		       cfg->name);
	else if (json_is_true(json_object_get(res, "unchanged")) && *made)
		printf("Release %lld of %s is current (no code changes);%s\n", rel, cfg->name, made);
	else if (json_is_true(json_object_get(res, "unchanged")))
		printf("No changes: release %lld of %s is current\n", rel, cfg->name);
	else
		printf("Release %lld of %s is live\n", rel, cfg->name);
	free(made);
	json_array_foreach(json_object_get(res, "services"), i, v) {
		const char *url = json_string_value(json_object_get(v, "url"));
		printf("  %-12s %-10s %s\n", json_string_value(json_object_get(v, "name")),
		       json_string_value(json_object_get(v, "state")), url ? url : "");
	}
	json_decref(res);
out:
	strbuf_release(&tar);
	app_config_free(cfg);
	return rc;
}

const struct cmd_entry cmd_deploy_entry = {
	.name = "deploy",
	.summary = "deploy the app in this directory (or -C DIR)",
	.usage = "miren deploy [-C DIR] [--format json]",
	.help = "Reads DIR/.miren/app.toml (the app is its 'name', else the directory's\n"
		"name), packs DIR (without .git), sends it to the server, which stores it\n"
		"as a new release and (re)starts the app's services from it.  Deploying an\n"
		"unchanged tree creates no release and restarts nothing.\n"
		"\noptions:\n"
		"  -C, --dir DIR   the project directory (default: .)\n"
		"  --format json   print the result as JSON\n",
	.shortopts = "C:",
	.longopts = longopts,
	.flags = CMD_NEEDS_SERVER,
	.option = option,
	.exec = exec,
};
