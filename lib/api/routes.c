/* The API's route table and its handlers; see routes.h. */
#include "api/routes.h"
#include "api/request.h"
#include "app/source.h"
#include "daemon/addoninfo.h"
#include "daemon/addons.h"
#include "daemon/appenv.h"
#include "daemon/apps.h"
#include "daemon/auth.h"
#include "daemon/backups.h"
#include "daemon/change.h"
#include "daemon/disks.h"
#include "daemon/fork.h"
#include "daemon/logs.h"
#include "daemon/rotate.h"
#include "daemon/schedules.h"
#include "daemon/verify.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static bool query_bool(struct api_req *r, const char *key)
{
	const char *v = r->query(r->conn, key);
	return v && (!strcmp(v, "1") || !strcmp(v, "true"));
}

static enum miren_err h_version(struct api_req *r, json_t **res, struct miren_error *err)
{
	(void)r;
	(void)err;
	*res = json_pack("{s:s}", "version", MIREN_VERSION);
	return 0;
}

static enum miren_err h_app_list(struct api_req *r, json_t **res, struct miren_error *err)
{
	return apps_list(r->d, res, err);
}

static enum miren_err h_app_status(struct api_req *r, json_t **res, struct miren_error *err)
{
	return apps_status(r->d, r->params[0], res, err);
}

/* final_backup=0: without the final backup (default: with one). */
static bool query_final_backup(struct api_req *r)
{
	const char *v = r->query(r->conn, "final_backup");
	return !v || !(!strcmp(v, "0") || !strcmp(v, "false"));
}

static enum miren_err h_app_destroy(struct api_req *r, json_t **res, struct miren_error *err)
{
	return apps_destroy(r->d, r->params[0], query_final_backup(r), res, err);
}

static enum miren_err h_app_restart(struct api_req *r, json_t **res, struct miren_error *err)
{
	(void)res;
	return apps_restart(r->d, r->params[0], err);
}

static enum miren_err h_deploy(struct api_req *r, json_t **res, struct miren_error *err)
{
	return apps_deploy(r->d, r->params[0], r->upload_path, r->upload_sha256, res, err);
}

static enum miren_err h_app_releases(struct api_req *r, json_t **res, struct miren_error *err)
{
	return apps_releases(r->d, r->params[0], res, err);
}

/* Body {"release": N} (N >= 1), or {} for the release before the current
 * one. */
static enum miren_err h_app_rollback(struct api_req *r, json_t **res, struct miren_error *err)
{
	json_t *v = json_object_get(r->body, "release");
	json_int_t to = v ? json_integer_value(v) : 0;
	if (v && (!json_is_integer(v) || to < 1 || to > INT_MAX))
		return miren_error_set(err, MIREN_EINVAL,
				       "\"release\" must be a release number (1 or more)");
	return apps_rollback(r->d, r->params[0], (int)to, res, err);
}

static enum miren_err h_env_list(struct api_req *r, json_t **res, struct miren_error *err)
{
	return appenv_list(r->d, r->params[0], query_bool(r, "unmask"), res, err);
}

static enum miren_err h_env_get(struct api_req *r, json_t **res, struct miren_error *err)
{
	return appenv_get(r->d, r->params[0], r->params[1], query_bool(r, "unmask"), res, err);
}

static enum miren_err h_env_set(struct api_req *r, json_t **res, struct miren_error *err)
{
	(void)res;
	const char *value = json_string_value(json_object_get(r->body, "value"));
	if (!value)
		return miren_error_set(err, MIREN_EINVAL, "body must be {\"value\": \"...\"}");
	return appenv_set(r->d, r->params[0], r->params[1], value,
			  json_is_true(json_object_get(r->body, "sensitive")),
			  json_is_true(json_object_get(r->body, "create")), err);
}

static enum miren_err h_env_delete(struct api_req *r, json_t **res, struct miren_error *err)
{
	(void)res;
	return appenv_delete(r->d, r->params[0], r->params[1], err);
}

/* The whole number in query argument key, min..max, in *out (dflt when the
 * argument is absent).  Returns false when it is not such a number. */
static bool query_number(struct api_req *r, const char *key, long long min, long long max,
			 long long dflt, long long *out)
{
	const char *v = r->query(r->conn, key);
	*out = dflt;
	if (!v)
		return true;
	char *end;
	errno = 0;
	long long n = strtoll(v, &end, 10);
	if (!*v || *end || errno || n < min || n > max)
		return false;
	*out = n;
	return true;
}

static enum miren_err h_logs(struct api_req *r, json_t **res, struct miren_error *err)
{
	long long off, tail;
	if (!query_number(r, "offset", -1, LLONG_MAX, -1, &off))
		return miren_error_set(err, MIREN_EINVAL,
				       "query argument 'offset' must be a whole number >= -1");
	if (!query_number(r, "tail", 0, INT_MAX, 100, &tail))
		return miren_error_set(err, MIREN_EINVAL,
				       "query argument 'tail' must be a whole number >= 0");
	return logs_read(r->d, r->params[0], r->params[1], off, (int)tail, res, err);
}

static enum miren_err h_addon_available(struct api_req *r, json_t **res, struct miren_error *err)
{
	return addons_available(r->d, res, err);
}

static enum miren_err h_addon_variants(struct api_req *r, json_t **res, struct miren_error *err)
{
	return addons_variants(r->d, r->params[0], res, err);
}

static enum miren_err h_addon_list(struct api_req *r, json_t **res, struct miren_error *err)
{
	return addons_list(r->d, r->params[0], res, err);
}

static enum miren_err h_addon_create(struct api_req *r, json_t **res, struct miren_error *err)
{
	const char *addon = json_string_value(json_object_get(r->body, "addon"));
	if (!addon)
		return miren_error_set(err, MIREN_EINVAL, "body must be {\"addon\": \"...\"}");
	return addons_create(r->d, r->params[0], addon,
			     json_string_value(json_object_get(r->body, "variant")),
			     json_string_value(json_object_get(r->body, "version")), res, err);
}

static enum miren_err h_addon_destroy(struct api_req *r, json_t **res, struct miren_error *err)
{
	return addons_destroy(r->d, r->params[0], r->params[1], query_final_backup(r), res, err);
}

static enum miren_err h_addon_info(struct api_req *r, json_t **res, struct miren_error *err)
{
	return addons_info(r->d, r->params[0], r->params[1], res, err);
}

static enum miren_err h_addon_connect(struct api_req *r, json_t **res, struct miren_error *err)
{
	const json_t *cmd = json_object_get(r->body, "command");
	if (cmd && !json_is_string(cmd) && !json_is_null(cmd))
		return miren_error_set(err, MIREN_EINVAL,
				       "body must be {} or {\"command\": \"...\"}");
	return addons_connect(r->d, r->params[0], r->params[1], json_string_value(cmd), res, err);
}

static enum miren_err h_addon_backups(struct api_req *r, json_t **res, struct miren_error *err)
{
	return schedules_backups(r->d, r->params[0], r->params[1], res, err);
}

static enum miren_err h_addon_schedule(struct api_req *r, json_t **res, struct miren_error *err)
{
	const json_t *every = json_object_get(r->body, "every"),
		     *keep = json_object_get(r->body, "keep");
	if ((every && !json_is_string(every) && !json_is_null(every)) ||
	    (keep && !json_is_integer(keep) && !json_is_null(keep)) || (!every && !keep))
		return miren_error_set(err, MIREN_EINVAL,
				       "body must be {\"every\": \"6h\"|\"off\", \"keep\": N}");
	return schedules_set(r->d, r->params[0], r->params[1], json_string_value(every),
			     json_is_integer(keep), json_integer_value(keep), res, err);
}

static enum miren_err h_addon_backup(struct api_req *r, json_t **res, struct miren_error *err)
{
	return backups_take(r->d, r->params[0], r->params[1], "manual", 0, res, err);
}

/* The export of a stored backup, streamed by the server's thread. */
struct export_job {
	struct daemon *d;
	char *id;
};

static enum miren_err export_run(void *user, int (*sink)(void *, const void *, size_t),
				 void *sink_user, struct miren_error *err)
{
	struct export_job *x = user;
	return backups_export(x->d, x->id, sink, sink_user, err);
}

static void export_release(void *user)
{
	struct export_job *x = user;
	free(x->id);
	free(x);
}

/* Streams the stored backup id (its manifest man, taken) as the reply. */
static enum miren_err export_stream(struct api_req *r, const char *id, json_t *man)
{
	struct export_job *x = xcalloc(1, sizeof(*x));
	x->d = r->d;
	x->id = xstrdup(id);
	struct api_stream *g = xcalloc(1, sizeof(*g));
	g->run = export_run;
	g->release = export_release;
	g->user = x;
	g->header = json_dumps(json_object_get(man, "meta"), JSON_COMPACT);
	g->what = xasprintf("the export of backup %s", id);
	json_decref(man);
	r->gstream = g;
	return 0;
}

/* Any stored backup, by id: an admin's. */
static enum miren_err h_backup_export(struct api_req *r, json_t **res, struct miren_error *err)
{
	(void)res;
	json_t *man;
	enum miren_err rc = backups_get(r->d, r->params[0], &man, err);
	return rc ? rc : export_stream(r, r->params[0], man);
}

/* A backup of the app's addon (what `addon backup -o` fetches): in the
 * app's scope, so a deployer of the app may; another app's backup is not
 * found here. */
static enum miren_err h_addon_backup_export(struct api_req *r, json_t **res,
					    struct miren_error *err)
{
	(void)res;
	json_t *man;
	enum miren_err rc = backups_get(r->d, r->params[2], &man, err);
	if (rc)
		return rc;
	json_t *meta = json_object_get(man, "meta");
	const char *app = json_string_value(json_object_get(meta, "app"));
	const char *addon = json_string_value(json_object_get(meta, "addon"));
	if (!app || !addon || strcmp(app, r->params[0]) || strcmp(addon, r->params[1])) {
		json_decref(man);
		miren_error_set(err, MIREN_ENOTFOUND, "addon %s of app '%s' has no backup %s",
				r->params[1], r->params[0], r->params[2]);
		miren_error_hint(err, "list the backups with 'miren addon backups %s -a %s'",
				 r->params[1], r->params[0]);
		return MIREN_ENOTFOUND;
	}
	return export_stream(r, r->params[2], man);
}

static enum miren_err h_addon_restore(struct api_req *r, json_t **res, struct miren_error *err)
{
	const char *id = json_string_value(json_object_get(r->body, "backup"));
	const char *to = json_string_value(json_object_get(r->body, "to"));
	if (to && !id)
		return backups_restore_to(r->d, r->params[0], r->params[1], to, res, err);
	if (!id || !*id)
		return miren_error_set(err, MIREN_EINVAL,
				       "body must be {\"backup\": \"ID\"} or {\"to\": \"TIME\"}");
	return backups_restore(r->d, r->params[0], r->params[1], id, -1,
			       json_is_true(json_object_get(r->body, "force")), res, err);
}

/* {"credential": "user"|"superuser"} (absent: "user"). */
static enum miren_err h_addon_rotate(struct api_req *r, json_t **res, struct miren_error *err)
{
	json_t *c = json_object_get(r->body, "credential");
	const char *cred = c ? json_string_value(c) : "user";
	if (!cred || (strcmp(cred, "user") != 0 && strcmp(cred, "superuser") != 0))
		return miren_error_set(err, MIREN_EINVAL,
				       "credential must be \"user\" or \"superuser\"");
	return rotations_rotate(r->d, r->params[0], r->params[1], cred, res, err);
}

/* {"variant": "NAME"}. */
static enum miren_err h_addon_change(struct api_req *r, json_t **res, struct miren_error *err)
{
	const char *variant = json_string_value(json_object_get(r->body, "variant"));
	if (!variant || !*variant)
		return miren_error_set(err, MIREN_EINVAL, "body must be {\"variant\": \"NAME\"}");
	return changes_change(r->d, r->params[0], r->params[1], variant, res, err);
}

/* {"to": OTHER, "variant"?, "at"?}: app's addon forked into OTHER. */
static enum miren_err h_addon_fork(struct api_req *r, json_t **res, struct miren_error *err)
{
	const json_t *b = r->body;
	const char *to = json_string_value(json_object_get(b, "to"));
	json_t *v = json_object_get(b, "variant"), *at = json_object_get(b, "at");
	if (!to || (v && !json_is_string(v)) || (at && !json_is_string(at)))
		return miren_error_set(err, MIREN_EINVAL,
				       "body must be {\"to\": \"APP\", \"variant\"?: \"V\", "
				       "\"at\"?: \"TIME\"}");
	return forks_fork(r->d, r->params[0], r->params[1], to, json_string_value(v),
			  json_string_value(at), res, err);
}

static enum miren_err h_addon_restore_file(struct api_req *r, json_t **res, struct miren_error *err)
{
	int fd = open(r->upload_path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return miren_error_set(err, MIREN_EIO, "cannot read the uploaded backup");
	enum miren_err rc = backups_restore(r->d, r->params[0], r->params[1], NULL, fd,
					    query_bool(r, "force"), res, err);
	close(fd);
	return rc;
}

static enum miren_err h_disk_list(struct api_req *r, json_t **res, struct miren_error *err)
{
	return disks_list(r->d, res, err);
}

static enum miren_err h_disk_backup(struct api_req *r, json_t **res, struct miren_error *err)
{
	(void)res;
	return disks_backup_prepare(r->d, r->params[0], &r->stream, err);
}

static enum miren_err h_disk_restore(struct api_req *r, json_t **res, struct miren_error *err)
{
	int fd = open(r->upload_path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return miren_error_set(err, MIREN_EIO, "cannot read the uploaded snapshot");
	const char *name = r->query(r->conn, "name");
	enum miren_err rc = disks_restore(r->d, fd, name && *name ? name : NULL,
					  query_bool(r, "force"), r->client_gone, r->conn, res,
					  err);
	close(fd);
	return rc;
}

static enum miren_err h_disk_delete(struct api_req *r, json_t **res, struct miren_error *err)
{
	return disks_delete(r->d, r->params[0], res, err);
}

static enum miren_err h_backup_verify(struct api_req *r, json_t **res, struct miren_error *err)
{
	const char *id = r->query(r->conn, "backup");
	return backups_verify(r->d, r->params[0], r->params[1], id && *id ? id : NULL, res, err);
}

static enum miren_err h_backup_verify_file(struct api_req *r, json_t **res, struct miren_error *err)
{
	int fd = open(r->upload_path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return miren_error_set(err, MIREN_EIO, "cannot read the uploaded backup");
	enum miren_err rc = backups_verify_file(r->d, r->params[0], r->params[1], fd, res, err);
	close(fd);
	return rc;
}

static enum miren_err h_disk_mode(struct api_req *r, json_t **res, struct miren_error *err)
{
	(void)err;
	*res = disks_mode(r->d);
	return 0;
}

static enum miren_err h_disk_resize(struct api_req *r, json_t **res, struct miren_error *err)
{
	json_t *size = json_object_get(r->body, "size");
	if (!json_is_integer(size) || json_integer_value(size) <= 0)
		return miren_error_set(err, MIREN_EINVAL,
				       "body must be {\"size\": <bytes, a positive integer>}");
	return disks_resize(r->d, r->params[0], (uint64_t)json_integer_value(size), res, err);
}

static enum miren_err h_invariants(struct api_req *r, json_t **res, struct miren_error *err)
{
	return daemon_invariants(r->d, res, err);
}

static enum miren_err h_state(struct api_req *r, json_t **res, struct miren_error *err)
{
	return daemon_state(r->d, query_bool(r, "unmask"), res, err);
}

static enum miren_err h_server_info(struct api_req *r, json_t **res, struct miren_error *err)
{
	(void)err;
	*res = daemon_server_info(r->d);
	return 0;
}

static enum miren_err h_token_create(struct api_req *r, json_t **res, struct miren_error *err)
{
	return auth_token_create(r->d, r->body, res, err);
}

static enum miren_err h_token_list(struct api_req *r, json_t **res, struct miren_error *err)
{
	return auth_token_list(r->d, res, err);
}

static enum miren_err h_token_revoke(struct api_req *r, json_t **res, struct miren_error *err)
{
	(void)res;
	return auth_token_revoke(r->d, r->params[0], err);
}

#define NONE API_BODY_NONE, API_JSON_MAX
#define JSON API_BODY_JSON, API_JSON_MAX

/* Literal segments first where a pattern could also match them
 * (/v1/disks/restore before /v1/disks/:disk/...): the first match wins. */
const struct api_route api_routes[] = {
	{ "GET", "/v1/version", NONE, h_version },
	{ "GET", "/v1/apps", NONE, h_app_list },
	{ "GET", "/v1/apps/:app", NONE, h_app_status },
	{ "DELETE", "/v1/apps/:app", NONE, h_app_destroy },
	{ "POST", "/v1/apps/:app/deploy", API_BODY_FILE, SOURCE_MAX_BYTES, h_deploy },
	{ "POST", "/v1/apps/:app/restart", NONE, h_app_restart },
	{ "GET", "/v1/apps/:app/releases", NONE, h_app_releases },
	{ "POST", "/v1/apps/:app/rollback", JSON, h_app_rollback },
	{ "GET", "/v1/apps/:app/env", NONE, h_env_list },
	{ "GET", "/v1/apps/:app/env/:key", NONE, h_env_get },
	{ "PUT", "/v1/apps/:app/env/:key", JSON, h_env_set },
	{ "DELETE", "/v1/apps/:app/env/:key", NONE, h_env_delete },
	{ "GET", "/v1/apps/:app/logs/:service", NONE, h_logs },
	{ "GET", "/v1/addons", NONE, h_addon_available },
	{ "GET", "/v1/addons/:addon", NONE, h_addon_variants },
	{ "GET", "/v1/apps/:app/addons", NONE, h_addon_list },
	{ "POST", "/v1/apps/:app/addons", JSON, h_addon_create },
	{ "DELETE", "/v1/apps/:app/addons/:addon", NONE, h_addon_destroy },
	{ "GET", "/v1/apps/:app/addons/:addon/info", NONE, h_addon_info },
	{ "POST", "/v1/apps/:app/addons/:addon/connect", JSON, h_addon_connect },
	{ "GET", "/v1/apps/:app/addons/:addon/backups", NONE, h_addon_backups },
	{ "GET", "/v1/apps/:app/addons/:addon/backups/:id/export", NONE, h_addon_backup_export },
	{ "PUT", "/v1/apps/:app/addons/:addon/backups/schedule", JSON, h_addon_schedule },
	{ "POST", "/v1/apps/:app/addons/:addon/backup", NONE, h_addon_backup },
	{ "POST", "/v1/apps/:app/addons/:addon/restore", JSON, h_addon_restore },
	{ "POST", "/v1/apps/:app/addons/:addon/restore/file", API_BODY_FILE, API_RESTORE_MAX,
	  h_addon_restore_file },
	{ "POST", "/v1/apps/:app/addons/:addon/rotate", JSON, h_addon_rotate },
	{ "POST", "/v1/apps/:app/addons/:addon/fork", JSON, h_addon_fork },
	{ "POST", "/v1/apps/:app/addons/:addon/change", JSON, h_addon_change },
	{ "GET", "/v1/backups/:id/export", NONE, h_backup_export },
	{ "POST", "/v1/apps/:app/addons/:addon/backups/verify", NONE, h_backup_verify },
	{ "POST", "/v1/apps/:app/addons/:addon/backups/verify-file", API_BODY_FILE, API_RESTORE_MAX,
	  h_backup_verify_file },
	{ "GET", "/v1/disks", NONE, h_disk_list },
	{ "POST", "/v1/disks/restore", API_BODY_FILE, API_RESTORE_MAX, h_disk_restore },
	{ "POST", "/v1/disks/:disk/backup", NONE, h_disk_backup },
	{ "POST", "/v1/disks/:disk/resize", JSON, h_disk_resize },
	{ "DELETE", "/v1/disks/:disk", NONE, h_disk_delete },
	{ "GET", "/v1/debug/disks", NONE, h_disk_mode },
	{ "GET", "/v1/debug/invariants", NONE, h_invariants },
	{ "GET", "/v1/debug/state", NONE, h_state },
	{ "GET", "/v1/server", NONE, h_server_info },
	{ "POST", "/v1/auth/tokens", JSON, h_token_create },
	{ "GET", "/v1/auth/tokens", NONE, h_token_list },
	{ "DELETE", "/v1/auth/tokens/:name", NONE, h_token_revoke },
	{ NULL, NULL, API_BODY_NONE, 0, NULL },
};

enum api_scope api_route_scope(const struct api_route *r)
{
	if (!strcmp(r->path, "/v1/apps/:app") && !strcmp(r->method, "DELETE"))
		return API_SCOPE_ADMIN; /* (destroying an app is not deploying it) */
	if (!strncmp(r->path, "/v1/apps/:app", 13))
		return API_SCOPE_APP;
	if (!strcmp(r->path, "/v1/apps"))
		return API_SCOPE_APP_LIST;
	if (!strcmp(r->path, "/v1/version") || !strncmp(r->path, "/v1/addons", 10))
		return API_SCOPE_ANY;
	return API_SCOPE_ADMIN;
}

enum miren_err api_authorize(const struct api_route *r, const char *const *params, bool unmask,
			     const struct auth_principal *p, struct miren_error *err)
{
	enum api_scope sc = api_route_scope(r);
	if (p->role == AUTH_ADMIN)
		return 0;
	if (sc == API_SCOPE_ADMIN) {
		miren_error_set(err, MIREN_EPERM, "token '%s' (%s) may not use %s %s", p->name,
				p->role == AUTH_READER ? "reader" : "deployer", r->method, r->path);
		miren_error_hint(err, "this needs an admin token");
		return MIREN_EPERM;
	}
	if (sc == API_SCOPE_APP && !auth_app_allowed(p, params[0])) {
		miren_error_set(err, MIREN_EPERM, "token '%s' may not act on app '%s'", p->name,
				params[0]);
		miren_error_hint(err, "use a token made with --app %s", params[0]);
		return MIREN_EPERM;
	}
	/* A reader reads, and never a secret: no change, no unmasked value,
	 * no connection (it hands out credentials). */
	if (p->role == AUTH_READER && (strcmp(r->method, "GET") || unmask)) {
		miren_error_set(err, MIREN_EPERM, "token '%s' is a reader: it may not %s", p->name,
				unmask ? "see secret values" : "change anything");
		miren_error_hint(err, "this needs a deployer or admin token");
		return MIREN_EPERM;
	}
	return 0;
}

/* Whether pattern's segments match parts; fills params. */
static bool match(const char *pattern, const char *const *parts, int n,
		  const char *params[API_MAX_PARAMS])
{
	int i = 0, k = 0;
	const char *p = pattern + 4; /* after "/v1/" */
	while (*p) {
		const char *end = strchr(p, '/');
		size_t len = end ? (size_t)(end - p) : strlen(p);
		if (i >= n)
			return false;
		if (*p == ':') {
			if (k == API_MAX_PARAMS)
				return false;
			params[k++] = parts[i];
		} else if (strlen(parts[i]) != len || strncmp(parts[i], p, len)) {
			return false;
		}
		i++;
		p += len + (end != NULL);
	}
	return i == n;
}

const struct api_route *api_route_find(const char *method, char *path_copy,
				       const char *params[API_MAX_PARAMS])
{
	const char *parts[API_MAX_PARTS];
	int n = api_split_path(path_copy, parts, API_MAX_PARTS);
	if (n < 1)
		return NULL;
	for (const struct api_route *r = api_routes; r->method; r++)
		if (!strcmp(r->method, method) && match(r->path, parts, n, params))
			return r;
	return NULL;
}

unsigned long long api_route_body_limit(const char *method, const char *path)
{
	char *copy = xstrdup(path);
	const char *params[API_MAX_PARAMS];
	const struct api_route *r = api_route_find(method, copy, params);
	free(copy);
	return r ? r->body_limit : API_JSON_MAX;
}

unsigned long long api_spool_limit(const char *method, const char *url)
{
	char *copy = xstrdup(url);
	const char *params[API_MAX_PARAMS];
	const struct api_route *r = api_route_find(method, copy, params);
	free(copy);
	return r && r->body == API_BODY_FILE ? r->body_limit : 0;
}
