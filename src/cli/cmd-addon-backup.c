/* miren addon backup: take an app's data in one addon into the backup
 * store, and with -o also write it to a file. */
#include "api/client.h"
#include "cli/backup-file.h"
#include "cli/cli.h"
#include "util/fs.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const struct cli_optdef options[] = {
	{ .name = "output",
	  .letter = 'o',
	  .kind = CLI_OPT_STRING,
	  .value = "PATH",
	  .help = "also write the backup to this file (a standalone .miren.zst);\n"
		  "-o with the name of an existing directory writes\n"
		  "APP-ADDON-YYYYMMDD-HHMMSS.miren.zst there; never overwritten" },
	{ 0 },
};

static int exec(struct cli *cli, int argc, char **argv)
{
	(void)argc;
	const char *addon = argv[0], *output = cli_str(cli, "output");
	char *esc = api_escape(addon);
	char *suffix = xasprintf("/addons/%s/backup", esc);
	char *path = cli_app_path(cli, suffix);
	json_t *res = NULL;
	char *out = NULL;
	struct cli_backup_file f = { .header = NULL };
	int rc = cli_call(cli, "POST", path, NULL, &res);
	free(path);
	free(suffix);
	free(esc);
	if (rc)
		return rc;
	const char *id = json_string_value(json_object_get(res, "id"));
	if (output) {
		char *base = xasprintf("%s-%s", cli->app, addon);
		char *name = cli_backup_default_name(base);
		out = fs_is_dir(output) ? xasprintf("%s/%s", output, name) : xstrdup(output);
		free(name);
		free(base);
		char *eid = api_escape(id), *eaddon = api_escape(addon);
		char *xsuffix = xasprintf("/addons/%s/backups/%s/export", eaddon, eid);
		char *xpath = cli_app_path(cli, xsuffix);
		free(xsuffix);
		free(eaddon);
		char *what = xasprintf("addon %s of app '%s' (stored as %s)", addon, cli->app, id);
		rc = cli_backup_receive(cli, "GET", xpath, out, what, &f);
		free(what);
		free(xpath);
		free(eid);
		if (rc) {
			fprintf(stderr,
				"The backup is stored as %s; only the file was not written\n", id);
			goto done;
		}
		json_object_set_new(res, "file", json_string(out));
		json_object_set_new(res, "file_bytes", json_integer((json_int_t)f.zst_bytes));
		json_object_set_new(res, "file_sha256", json_string(f.sha256));
	}
	if (cli->json) {
		cli_print_json(res);
	} else {
		char size[32];
		cli_human_bytes((unsigned long long)json_integer_value(
					json_object_get(res, "size")),
				size, sizeof(size));
		printf("%s\n", id);
		printf("  addon   %s of %s (%s)\n", addon, cli->app,
		       json_string_value(json_object_get(res, "variant")));
		printf("  kind    %s\n",
		       !strcmp(json_string_value(json_object_get(res, "kind")), "dump")
			       ? "dump (the app's own database, the engine's logical dump)"
			       : "disk (the dedicated server's whole disk, online)");
		printf("  size    %s\n", size);
		if (out) {
			char zst[32];
			cli_human_bytes(f.zst_bytes, zst, sizeof(zst));
			printf("  file    %s (%s, every checksum verified)\n", out, zst);
		}
		printf("Restore it with 'miren addon restore %s -a %s --backup %s'\n", addon,
		       cli->app, id);
	}
done:
	free(f.header);
	free(out);
	json_decref(res);
	return rc;
}

const struct cmd_entry cmd_addon_backup_entry = {
	.name = "addon backup",
	.summary = "back up an app's data in an addon into the backup store",
	.operands = "ADDON",
	.min_operands = 1,
	.max_operands = 1,
	.operands_missing = "which addon? give its name (see 'miren addon list')",
	.app = CLI_APP_OPTION,
	.options = options,
	.help = "Prints the backup's ID.  On a dedicated variant (small) the backup is the\n"
		"server's whole disk, taken online (writers do not stop, as with 'miren disk\n"
		"backup'); on a shared variant it is the app's own database or keyspace only\n"
		"(the engine's logical dump).  Either way it is checksummed, stored in the\n"
		"backup store (DATA/backups) and can be restored into the app's addon\n"
		"whatever its variant then ('miren addon restore').  With -o it is also\n"
		"written as a standalone .miren.zst file, verified whole before it is put\n"
		"in place.\n",
	.json_help = "print the result as JSON",
	.flags = CMD_NEEDS_SERVER | CMD_JSON,
	.exec = exec,
};
