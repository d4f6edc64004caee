/* The API's route table and its handlers; see routes.h. */
#include "api/routes.h"
#include "api/request.h"
#include "app/source.h"
#include "daemon/addons.h"
#include "daemon/appenv.h"
#include "daemon/apps.h"
#include "daemon/disks.h"
#include "daemon/logs.h"

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

static enum miren_err h_app_destroy(struct api_req *r, json_t **res, struct miren_error *err)
{
	(void)res;
	return apps_destroy(r->d, r->params[0], err);
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
	(void)res;
	return addons_destroy(r->d, r->params[0], r->params[1], err);
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
	{ "GET", "/v1/disks", NONE, h_disk_list },
	{ "POST", "/v1/disks/restore", API_BODY_FILE, API_RESTORE_MAX, h_disk_restore },
	{ "POST", "/v1/disks/:disk/backup", NONE, h_disk_backup },
	{ "POST", "/v1/disks/:disk/resize", JSON, h_disk_resize },
	{ "GET", "/v1/debug/disks", NONE, h_disk_mode },
	{ "GET", "/v1/debug/invariants", NONE, h_invariants },
	{ "GET", "/v1/debug/state", NONE, h_state },
	{ NULL, NULL, API_BODY_NONE, 0, NULL },
};

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
