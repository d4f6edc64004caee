/* miren addon info: what an app's addon is and how it is doing. */
#include "api/client.h"
#include "cli/cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* "-" for a fact the engine could not give (null). */
#define UNKNOWN "-"

/* "3d 4h", "2h 5m", "4m 10s", "12s". */
static void duration_text(long long s, char *out, size_t len)
{
	if (s >= 86400)
		snprintf(out, len, "%lldd %lldh", s / 86400, s % 86400 / 3600);
	else if (s >= 3600)
		snprintf(out, len, "%lldh %lldm", s / 3600, s % 3600 / 60);
	else if (s >= 60)
		snprintf(out, len, "%lldm %llds", s / 60, s % 60);
	else
		snprintf(out, len, "%llds", s);
}

/* A backup reference {"id","created_at"}: "ID (taken T UTC)". */
static void backup_text(const json_t *b, char *out, size_t len)
{
	if (!json_is_object(b)) {
		snprintf(out, len, "%s", UNKNOWN);
		return;
	}
	char when[32];
	cli_utc_text(json_integer_value(json_object_get(b, "created_at")), when, sizeof(when));
	snprintf(out, len, "%s (taken %s UTC)", json_string_value(json_object_get(b, "id")), when);
}

static void print_human(const json_t *o)
{
	char a[96], b[96], line[256];
	printf("Addon:            %s (%s %s)\n", json_string_value(json_object_get(o, "addon")),
	       json_string_value(json_object_get(o, "engine")),
	       json_string_value(json_object_get(o, "version")));
	printf("Variant:          %s (%s)\n", json_string_value(json_object_get(o, "variant")),
	       json_is_true(json_object_get(o, "shared")) ? "a tenant of a shared server"
							  : "a dedicated server");
	printf("Status:           %s\n", json_string_value(json_object_get(o, "status")));
	printf("Address:          %s\n", json_string_value(json_object_get(o, "address")));
	const json_t *disk = json_object_get(o, "disk");
	if (json_is_object(disk)) {
		cli_human_bytes((unsigned long long)json_integer_value(
					json_object_get(disk, "used")),
				a, sizeof(a));
		cli_human_bytes((unsigned long long)json_integer_value(
					json_object_get(disk, "size")),
				b, sizeof(b));
		printf("Disk:             %s used of %s (%d%%, disk %s)\n", a, b,
		       (int)json_integer_value(json_object_get(disk, "used_percent")),
		       json_string_value(json_object_get(disk, "name")));
	} else {
		printf("Disk:             %s\n", UNKNOWN);
	}
	const json_t *data = json_object_get(o, "data_bytes");
	if (json_is_integer(data))
		cli_human_bytes((unsigned long long)json_integer_value(data), a, sizeof(a));
	printf("Data:             %s\n", json_is_integer(data) ? a : UNKNOWN);
	const json_t *c = json_object_get(o, "connections"),
		     *m = json_object_get(o, "max_connections");
	snprintf(a, sizeof(a), "%lld", json_integer_value(c));
	snprintf(b, sizeof(b), "%lld", json_integer_value(m));
	printf("Connections:      %s of %s\n", json_is_integer(c) ? a : UNKNOWN,
	       json_is_integer(m) ? b : UNKNOWN);
	const json_t *up = json_object_get(o, "uptime_s");
	if (json_is_integer(up)) {
		duration_text(json_integer_value(up), a, sizeof(a));
		cli_utc_text(json_integer_value(json_object_get(o, "started_at")), b, sizeof(b));
		printf("Uptime:           %s (since %s UTC)\n", a, b);
	} else {
		printf("Uptime:           %s\n", UNKNOWN);
	}
	backup_text(json_object_get(o, "last_backup"), line, sizeof(line));
	printf("Last backup:      %s\n", line);
	backup_text(json_object_get(o, "last_verified_backup"), line, sizeof(line));
	printf("Last verified:    %s\n", line);
	const json_t *w = json_object_get(o, "pitr_window");
	if (json_is_object(w)) {
		cli_utc_text(json_integer_value(json_object_get(w, "from")), a, sizeof(a));
		cli_utc_text(json_integer_value(json_object_get(w, "to")), b, sizeof(b));
		printf("Point in time:    %s to %s UTC\n", a, b);
	} else {
		printf("Point in time:    %s\n", UNKNOWN);
	}
	const json_t *cred = json_object_get(o, "credentials_issued_at");
	if (json_is_integer(cred)) {
		cli_utc_text(json_integer_value(cred), a, sizeof(a));
		duration_text(json_integer_value(json_object_get(o, "credential_age_s")), b,
			      sizeof(b));
		printf("Credentials:      issued %s UTC (%s ago)\n", a, b);
	} else {
		printf("Credentials:      %s\n", UNKNOWN);
	}
	const json_t *maint = json_object_get(o, "maintenance");
	if (json_array_size(maint) == 0) {
		printf("Maintenance:      none pending\n");
	} else {
		printf("Maintenance:\n");
		size_t i;
		const json_t *e;
		json_array_foreach (maint, i, e)
			printf("  - %s\n", json_string_value(e));
	}
}

static int exec(struct cli *cli, int argc, char **argv)
{
	(void)argc;
	char *esc = api_escape(argv[0]);
	char *suffix = xasprintf("/addons/%s/info", esc);
	char *path = cli_app_path(cli, suffix);
	json_t *res = NULL;
	int rc = cli_call(cli, "GET", path, NULL, &res);
	free(path);
	free(suffix);
	free(esc);
	if (rc)
		return rc;
	if (!cli_json_output(cli, res)) {
		print_human(res);
		json_decref(res);
	}
	return CLI_OK;
}

const struct cmd_entry cmd_addon_info_entry = {
	.name = "addon info",
	.summary = "show what an app's addon is and how it is doing",
	.operands = "ADDON",
	.min_operands = 1,
	.max_operands = 1,
	.operands_missing = "which addon? give its name",
	.app = CLI_APP_OPTION,
	.help = "Shows the app's addon: the engine and its version, the variant (a dedicated\n"
		"server or a tenant of a shared one), the address it listens on, the disk\n"
		"its server uses (used and size) and the app's own data, the connections\n"
		"open now and how many it may open, how long the server has run, the last\n"
		"backup and the last verified one, the point-in-time window (engines that\n"
		"archive their log), when the app's current credentials were issued, and\n"
		"what needs attention (log archiving that fails or lags, a nearly full\n"
		"disk, a backup that failed verification, a server that does not answer).\n"
		"A fact the engine cannot give shows as '-' (null in JSON).  No secret is\n"
		"shown.  The addon must be active.\n",
	.json_help = "print the facts as JSON (unknown ones null)",
	.flags = CMD_NEEDS_SERVER | CMD_JSON,
	.exec = exec,
};
