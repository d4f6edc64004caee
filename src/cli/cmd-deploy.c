/* miren deploy: pack the project, send it, and report the new release. */
#include "api/client.h"
#include "app/config.h"
#include "app/source.h"
#include "cli/cli.h"
#include "util/fs.h"
#include "util/io.h"
#include "util/strbuf.h"

#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const struct cli_optdef options[] = {
	{ .name = "dir",
	  .letter = 'C',
	  .kind = CLI_OPT_STRING,
	  .value = "DIR",
	  .help = "the project directory (default: .)" },
	{ 0 },
};

/* Reads and checks DIR/.miren/app.toml here, so mistakes show before any
 * upload; the server checks again. */
static int load_config(const char *root, struct app_config **cfg)
{
	char *path = fs_join(root, ".miren/app.toml");
	struct strbuf sb;
	strbuf_init(&sb, 1 << 20);
	int rc = strbuf_read_file(&sb, path);
	if (rc == MIREN_ENOTFOUND) {
		rc = cli_failf(MIREN_ENOTFOUND,
			       "create it with at least:\n  [services.web]\n  command = \"...\"",
			       "no .miren/app.toml in '%s'", root);
	} else if (rc) {
		rc = cli_failf(rc, NULL, "cannot read '%s': %s", path, miren_strerror(rc));
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
	json_array_foreach (json_object_get(res, "addons_created"), i, v) {
		bool retried = false;
		json_array_foreach (json_object_get(res, "addons_retried"), k, w)
			retried |= json_equal(v, w);
		strbuf_addf(&sb, "%s addon %s %s", i ? "," : "", json_string_value(v),
			    retried ? "retried" : "re-created");
	}
	return strbuf_detach(&sb, NULL);
}

static int exec(struct cli *cli, int argc, char **argv)
{
	(void)argc;
	(void)argv;
	char root[PATH_MAX];
	const char *dir = cli_str(cli, "dir");
	if (!dir)
		dir = ".";
	if (!realpath(dir, root))
		return cli_failf(errno == ENOENT ? MIREN_ENOTFOUND : MIREN_EIO, NULL,
				 "cannot open directory '%s': %s", dir, io_strerror(errno));
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
	rc = api_call(&cli->target, "POST", path, tar.buf, tar.len,
		      "Content-Type: application/x-tar", &res, &err);
	free(path);
	if (rc) {
		rc = cli_fail(&err);
		goto out;
	}
	free(cli->app); /* the app is the one deployed */
	cli->app = xstrdup(cfg->name);
	long long rel = json_integer_value(json_object_get(res, "release"));
	if (cli->json) {
		/* Services waiting for addons are not started: nothing to wait for. */
		bool held = false;
		json_t *svcs = json_is_true(json_object_get(res, "unchanged"))
				       ? NULL
				       : cli_settled_services(cli, false, &held);
		size_t exited = 0, i;
		json_t *v;
		if (svcs)
			json_object_set(res, "services", svcs);
		json_array_foreach (held ? NULL : svcs, i, v)
			exited += cli_service_exited(v);
		json_decref(svcs);
		cli_print_json(res);
		json_decref(res);
		rc = exited ? CLI_FAIL : CLI_OK;
		goto out;
	}
	size_t i;
	json_t *v;
	json_array_foreach (json_object_get(res, "warnings"), i, v)
		cli_warn("%s", json_string_value(v));
	json_array_foreach (json_object_get(res, "addons_retried"), i, v)
		fprintf(stderr, "Provisioning of addon %s failed before; retrying it\n",
			json_string_value(v));
	/* An addon app.toml no longer lists goes, with its data: say so, and
	 * where its data is kept. */
	json_array_foreach (json_object_get(res, "addons_removed"), i, v) {
		const char *name = json_string_value(json_object_get(v, "addon"));
		const char *id = json_string_value(json_object_get(v, "final_backup"));
		if (id)
			printf("Addon %s is removed (app.toml no longer lists it); its data is in "
			       "final backup %s, kept 7 days ('miren addon backups %s -a %s')\n",
			       name, id, name, cfg->name);
		else
			printf("Addon %s is removed (app.toml no longer lists it); it held no data "
			       "(it was not active)\n",
			       name);
	}
	/* Held start: the services run once every addon is active. */
	bool pending = false;
	json_array_foreach (json_object_get(res, "addons"), i, v) {
		const char *st = json_string_value(json_object_get(v, "status"));
		pending |= st && strcmp(st, "active") && strcmp(st, "deprovisioning");
	}
	if (pending)
		rc = cli_wait_addons(cli, NULL);
	/* A service that exits at once is not live: wait out its first
	 * second, then say so and point at its log. */
	if (!json_is_true(json_object_get(res, "unchanged")) || pending) {
		bool held;
		json_t *svcs = cli_settled_services(cli, true, &held);
		if (svcs)
			json_object_set(res, "services", svcs);
		json_decref(svcs);
		if (!rc && !held &&
		    cli_report_exited(cfg->name, rel, json_object_get(res, "services"))) {
			json_decref(res);
			rc = CLI_FAIL;
			goto out;
		}
	}
	char *made = addons_made(res);
	if (rc)
		printf("Release %lld of %s is recorded; its services wait for its addons\n", rel,
		       cfg->name);
	else if (json_is_true(json_object_get(res, "unchanged")) && *made)
		printf("Release %lld of %s is current (no code changes);%s\n", rel, cfg->name,
		       made);
	else if (json_is_true(json_object_get(res, "unchanged")))
		printf("No changes: release %lld of %s is current\n", rel, cfg->name);
	else
		printf("Release %lld of %s is live\n", rel, cfg->name);
	free(made);
	json_array_foreach (json_object_get(res, "services"), i, v) {
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
	.options = options,
	.help = "Reads DIR/.miren/app.toml (the app is its 'name', else the directory's\n"
		"name), packs DIR (without .git), sends it to the server, which stores it\n"
		"as a new release and (re)starts the app's services from it.  Deploying an\n"
		"unchanged tree creates no release and restarts nothing.  A service that\n"
		"exits within its first second is reported (see 'miren logs') and the\n"
		"command exits 1.  An addon app.toml attached and no longer lists is\n"
		"removed, after a final backup of its data (kept 7 days; the deploy names\n"
		"it); if that backup fails, nothing is deployed.\n",
	.json_help = "print the result as JSON",
	.flags = CMD_NEEDS_SERVER | CMD_JSON,
	.exec = exec,
};
