/* JSON shaping; see shape.h. */
#include "api/shape.h"
#include "addon/addon.h"
#include "store/store.h"
#include "supervise/supervise.h"

#include <string.h>
#include <sys/wait.h>

json_t *shape_service(const char *name, const char *command, int port, const struct sv_status *st,
		      bool addons_ready)
{
	json_t *o = json_pack("{s:s, s:s, s:i}", "name", name, "command", command, "port", port);
	if (port)
		json_object_set_new(o, "url", json_sprintf("http://127.0.0.1:%d/", port));
	if (!st) {
		json_object_set_new(o, "state",
				    json_string(addons_ready ? "stopped" : "waiting-for-addons"));
		json_object_set_new(o, "pid", json_integer(0));
		json_object_set_new(o, "restarts", json_integer(0));
		return o;
	}
	json_object_set_new(o, "state", json_string(sv_state_name(st->state)));
	json_object_set_new(o, "pid", json_integer(st->pid));
	json_object_set_new(o, "restarts", json_integer(st->restarts));
	if (st->state == SV_DETACHED) /* exited 0, its processes run on */
		json_object_set_new(o, "detached_processes", json_integer(st->detached));
	if (st->last_exit >= 0 && WIFEXITED(st->last_exit))
		json_object_set_new(o, "last_exit", json_integer(WEXITSTATUS(st->last_exit)));
	else if (st->last_exit >= 0 && WIFSIGNALED(st->last_exit))
		json_object_set_new(o, "last_signal", json_integer(WTERMSIG(st->last_exit)));
	if (st->started_at_ms)
		json_object_set_new(o, "started_at", json_integer(st->started_at_ms / 1000));
	return o;
}

json_t *shape_app_summary(const struct app_rec *r, json_t *services)
{
	size_t running = 0, idx;
	json_t *s;
	json_array_foreach (services, idx, s) {
		const char *state = json_string_value(json_object_get(s, "state"));
		running += state && (!strcmp(state, "running") || !strcmp(state, "starting"));
	}
	return json_pack("{s:s, s:i, s:I, s:i, s:i}", "name", r->name, "release",
			 r->current_release, "created_at", (json_int_t)r->created_at, "services",
			 (int)json_array_size(services), "running", (int)running);
}

json_t *shape_app_status(const struct app_rec *r, const char *app, json_t *services, json_t *addons,
			 bool start_held)
{
	return json_pack("{s:s, s:i, s:I, s:o, s:o, s:b}", "name", app, "release",
			 r->current_release, "created_at", (json_int_t)r->created_at, "services",
			 services, "addons", addons, "start_held", start_held);
}

json_t *shape_release(const struct release_rec *r, bool current)
{
	return json_pack("{s:i, s:I, s:s, s:I, s:b, s:o}", "release", r->n, "created_at",
			 (json_int_t)r->created_at, "source_sha256", r->source_sha256, "size_bytes",
			 (json_int_t)r->size_bytes, "current", current, "rollback_of",
			 r->rollback_of ? json_integer(r->rollback_of) : json_null());
}

json_t *shape_rollback(const char *app, int release, int rollback_of, int previous,
		       json_t *services, json_t *addons, json_t *not_restored)
{
	return json_pack("{s:s, s:i, s:i, s:i, s:o, s:o, s:O}", "app", app, "release", release,
			 "rollback_of", rollback_of, "previous", previous, "services", services,
			 "addons", addons, "addons_not_restored", not_restored);
}

json_t *shape_env(const struct env_rec *e, bool unmask)
{
	return json_pack("{s:s, s:s, s:s, s:s, s:b, s:s}", "name", e->key, "value",
			 e->sensitive && !unmask ? SHAPE_MASK : e->value, "service", e->service,
			 "source", env_source_name(e->source), "sensitive", e->sensitive,
			 "description", e->description);
}

json_t *shape_log_slice(const char *service, const char *data, size_t len, long long offset,
			bool more)
{
	return json_pack("{s:s, s:s%, s:I, s:b}", "service", service, "data", data, len, "offset",
			 (json_int_t)offset, "more", more);
}

json_t *shape_variants(const struct addon_def *def)
{
	json_t *arr = json_array();
	for (size_t i = 0; i < def->n_variants; i++)
		json_array_append_new(arr, json_pack("{s:s, s:s, s:s, s:b}", "name",
						     def->variants[i].name, "description",
						     def->variants[i].description, "details",
						     def->variants[i].details, "default",
						     !strcmp(def->variants[i].name,
							     def->default_variant)));
	return arr;
}

json_t *shape_addon_def(const struct addon_def *def)
{
	char versions[8][16];
	size_t n = def->versions(versions, 8);
	json_t *vs = json_array();
	for (size_t i = 0; i < n; i++)
		json_array_append_new(vs, json_string(versions[i]));
	return json_pack("{s:s, s:s, s:o, s:s, s:o}", "name", def->name, "description",
			 def->description, "variants", shape_variants(def), "default_variant",
			 def->default_variant, "versions", vs);
}

json_t *shape_addon_variants(const struct addon_def *def)
{
	return json_pack("{s:s, s:s, s:o}", "name", def->name, "default_variant",
			 def->default_variant, "variants", shape_variants(def));
}

json_t *shape_deploy(const char *app, int release, bool unchanged, json_t *warnings,
		     json_t *services, json_t *addons, json_t *created, json_t *retried)
{
	return json_pack("{s:s, s:i, s:b, s:o, s:o, s:o, s:O, s:O}", "app", app, "release", release,
			 "unchanged", unchanged, "warnings", warnings, "services", services,
			 "addons", addons, "addons_created", created, "addons_retried", retried);
}

json_t *shape_app_rec(const struct app_rec *r, json_t *releases)
{
	return json_pack("{s:s, s:i, s:I, s:o}", "name", r->name, "release", r->current_release,
			 "created_at", (json_int_t)r->created_at, "releases", releases);
}

/* A record's state_json as an object, secrets masked unless unmask. */
static json_t *state_object(const char *text, bool unmask)
{
	json_t *j = json_loads(text ? text : "{}", 0, NULL);
	if (!json_is_object(j)) {
		json_decref(j);
		return json_object();
	}
	const char *key;
	json_t *v;
	json_object_foreach (j, key, v) {
		size_t len = strlen(key);
		if (!unmask && len >= 8 && !strcmp(key + len - 8, "password"))
			json_object_set_new(j, key, json_string(SHAPE_MASK));
	}
	return j;
}

json_t *shape_addon_rec(const struct addon_rec *a, bool unmask)
{
	return json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:i, s:s, s:s, s:s, s:I, s:o}", "id",
			 a->id, "app", a->app, "addon", a->addon, "variant", a->variant, "version",
			 a->version, "status", a->status, "step", a->step, "message", a->message,
			 "source", a->source, "server", a->server, "created_at",
			 (json_int_t)a->created_at, "state", state_object(a->state_json, unmask));
}

json_t *shape_server_rec(const struct server_rec *s, bool unmask)
{
	return json_pack("{s:s, s:s, s:s, s:s, s:s, s:i, s:I, s:o}", "id", s->id, "engine",
			 s->engine, "kind", s->kind, "disk", s->disk, "address", s->address, "port",
			 s->port, "created_at", (json_int_t)s->created_at, "state",
			 state_object(s->state_json, unmask));
}

json_t *shape_disk_rec(const struct disk_rec *d)
{
	return json_pack("{s:s, s:I, s:s, s:s, s:I}", "name", d->name, "size_bytes",
			 (json_int_t)d->size_bytes, "created_by", d->created_by, "status",
			 d->status, "created_at", (json_int_t)d->created_at);
}

json_t *shape_state(int schema, json_t *apps, json_t *addons, json_t *servers, json_t *disks)
{
	return json_pack("{s:i, s:o, s:o, s:o, s:o}", "schema", schema, "apps", apps, "addons",
			 addons, "servers", servers, "disks", disks);
}

json_t *shape_error(const struct miren_error *err)
{
	/* The error whole: message, detail and hint apart, never pasted. */
	json_t *e = json_pack("{s:s, s:s, s:s, s:s}", "code", miren_err_code_name(err->code),
			      "message", err->message, "detail", err->detail, "hint", err->hint);
	return json_pack("{s:o}", "error", e);
}
