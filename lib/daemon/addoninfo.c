/* An app's addon: its facts and its client command; see addoninfo.h. */
#include "daemon/addoninfo.h"
#include "addon/disk_ops.h"
#include "daemon/daemon_int.h"
#include "daemon/schedules.h"
#include "daemon/verify.h"
#include "util/log.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

/* The largest statement `connect -c` takes. */
#define CONNECT_COMMAND_MAX (64 * 1024)

/* n as a JSON integer, or null when the engine could not say (< 0). */
static json_t *known(long long n)
{
	return n < 0 ? json_null() : json_integer(n);
}

/* Appends the strings of array src (may be NULL) to dst. */
static void add_lines(json_t *dst, const json_t *src)
{
	size_t i;
	const json_t *w;
	json_array_foreach (src, i, w)
		if (json_is_string(w))
			json_array_append(dst, (json_t *)w);
}

/* {"id","created_at"} of the backup named id in list (an array of
 * schedules_backups), or null. */
static json_t *backup_ref(const json_t *list, const char *id)
{
	size_t i;
	const json_t *b;
	json_array_foreach (list, i, b)
		if (id && !strcmp(json_string_value(json_object_get(b, "id")), id))
			return json_pack("{s:s, s:O}", "id", id, "created_at",
					 json_object_get(b, "created_at"));
	return json_null();
}

/* The backup facts: the newest backup, the newest verified one, the
 * point-in-time window, and the schedule's last failure as maintenance. */
static void add_backups(struct daemon *d, const char *app, const char *addon, json_t *o,
			json_t *maint)
{
	json_t *b = NULL;
	struct miren_error e;
	if (schedules_backups(d, app, addon, &b, &e) != 0) {
		json_object_set_new(o, "last_backup", json_null());
		json_object_set_new(o, "last_verified_backup", json_null());
		json_object_set_new(o, "pitr_window", json_null());
		json_array_append_new(maint, json_sprintf("backups cannot be read: %s", e.message));
		return;
	}
	const json_t *list = json_object_get(b, "backups");
	size_t n = json_array_size(list);
	const char *newest = n ? json_string_value(
					 json_object_get(json_array_get(list, n - 1), "id"))
			       : NULL;
	json_object_set_new(o, "last_backup", backup_ref(list, newest));
	json_object_set_new(o, "last_verified_backup",
			    backup_ref(list,
				       json_string_value(json_object_get(b, "last_verified"))));
	json_t *w = json_object_get(b, "window");
	json_object_set(o, "pitr_window", w ? w : json_null());
	const char *last_error = json_string_value(
		json_object_get(json_object_get(b, "schedule"), "last_error"));
	if (last_error && *last_error)
		json_array_append_new(maint, json_sprintf("the last scheduled backup failed: %s",
							  last_error));
	json_decref(b);
}

/* The disk the instance's server runs on: {"name","used","size",
 * "used_percent"}, its nearly-full warning into maint. */
static json_t *disk_facts(struct daemon *d, const struct server_rec *srv, json_t *maint)
{
	struct disk_rec dr;
	if (!srv->disk || !*srv->disk || store_disk_get(d->store, srv->disk, &dr, NULL) != 0)
		return json_null();
	json_t *u = disk_usage_json(&d->actx, srv->disk, dr.size_bytes);
	json_t *o = json_pack("{s:s, s:O, s:O, s:O}", "name", srv->disk, "used",
			      json_object_get(u, "used"), "size", json_object_get(u, "size"),
			      "used_percent", json_object_get(u, "used_percent"));
	const char *w = json_string_value(json_object_get(u, "warning"));
	if (w)
		json_array_append_new(maint, json_string(w));
	json_decref(u);
	disk_rec_release(&dr);
	return o;
}

enum miren_err addons_info(struct daemon *d, const char *app, const char *addon, json_t **result,
			   struct miren_error *err)
{
	struct addon_target t;
	enum miren_err rc = addon_target_load(d, app, addon, "described", &t, err);
	if (rc) {
		addon_target_release(&t);
		return rc;
	}
	json_t *maint = json_array();
	struct addon_info ai = {
		.size_bytes = -1, .connections = -1, .max_connections = -1, .uptime_s = -1
	};
	struct miren_error ie;
	if (!t.def->info)
		addon_unsupported(t.def, "info", &ie);
	else if (t.def->info(&d->actx, &t.inst, &ai, &ie) != 0)
		json_array_append_new(maint,
				      json_sprintf("the server does not answer: %s%s%s", ie.message,
						   *ie.detail ? ": " : "", ie.detail));
	/* What the framework knows: status, the server's truth, warnings. */
	json_t *base = addon_inst_json(d->rec, &t.rec);
	int64_t now = time(NULL);
	json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:s, s:b, s:O, s:s, s:s}", "app", app, "addon",
			      t.rec.addon, "engine", t.def->engine ? t.def->engine : t.def->name,
			      "version", *ai.version ? ai.version : t.rec.version, "variant",
			      t.rec.variant, "shared", t.shared, "status",
			      json_object_get(base, "status"), "server", t.srv.id, "address", "");
	json_object_set_new(o, "address", json_sprintf("%s:%d", t.srv.address, t.srv.port));
	json_object_set_new(o, "disk", disk_facts(d, &t.srv, maint));
	json_object_set_new(o, "data_bytes", known(ai.size_bytes));
	json_object_set_new(o, "connections", known(ai.connections));
	json_object_set_new(o, "max_connections", known(ai.max_connections));
	json_object_set_new(o, "uptime_s", known(ai.uptime_s));
	json_object_set_new(o, "started_at", known(ai.uptime_s < 0 ? -1 : now - ai.uptime_s));
	add_backups(d, app, t.rec.addon, o, maint);
	/* The engine's record of its last rotation, else the activation's. */
	int64_t rotated = t.inst_loaded && t.def->credentials_issued_at
				  ? t.def->credentials_issued_at(t.inst.state)
				  : 0;
	int64_t cred = rotated > 0 ? rotated : t.rec.credentials_at;
	json_object_set_new(o, "credentials_issued_at",
			    cred > 0 ? json_integer(cred) : json_null());
	json_object_set_new(o, "credential_age_s",
			    cred > 0 ? json_integer(now > cred ? now - cred : 0) : json_null());
	/* What needs attention: the server not running as it should, the
	 * engine's warnings (its archiving), a nearly full disk (above), a
	 * failed verification of its backups. */
	const char *msg = json_string_value(json_object_get(base, "message"));
	if (strcmp(json_string_value(json_object_get(base, "status")), "active") && msg)
		json_array_append_new(maint, json_string(msg));
	json_t *details = t.def->describe ? t.def->describe(&d->actx, &t.inst) : NULL;
	if (details) {
		add_lines(maint, json_object_get(details, "warnings"));
		json_object_del(details, "warnings");
	}
	json_t *v = backups_verification(d, app, t.rec.addon);
	json_t *be = addons_backup_error(v);
	if (be)
		json_array_append_new(maint, be);
	json_decref(v);
	json_object_set_new(o, "maintenance", maint);
	json_object_set_new(o, "details", details ? details : json_object());
	json_decref(base);
	addon_target_release(&t);
	*result = o;
	return 0;
}

enum miren_err addons_connect(struct daemon *d, const char *app, const char *addon,
			      const char *command, json_t **result, struct miren_error *err)
{
	if (command && !*command)
		return miren_error_set(err, MIREN_EINVAL, "the command is empty");
	if (command && strlen(command) > CONNECT_COMMAND_MAX)
		return miren_error_set(err, MIREN_ETOOBIG, "the command is longer than %d bytes",
				       CONNECT_COMMAND_MAX);
	struct addon_target t;
	enum miren_err rc = addon_target_load(d, app, addon, "connected to", &t, err);
	struct addon_connect c = { .command = command };
	if (!rc && !t.def->connect)
		rc = addon_unsupported(t.def, "connect", err);
	else if (!rc)
		rc = t.def->connect(&d->actx, &t.inst, &c, err);
	if (!rc) {
		json_t *argv = json_array(), *env = json_object();
		for (char **a = c.argv; a && *a; a++)
			json_array_append_new(argv, json_string(*a));
		for (char **e = c.env; e && *e; e++) {
			char *eq = strchr(*e, '=');
			if (!eq)
				continue;
			*eq = '\0';
			json_object_set_new(env, *e, json_string(eq + 1));
			*eq = '=';
		}
		*result = json_pack("{s:o, s:o}", "argv", argv, "env", env);
		log_info("addon %s of app %s: a client session handed out%s", addon, app,
			 command ? " (one statement)" : "");
	}
	addon_connect_release(&c);
	addon_target_release(&t);
	return rc;
}
