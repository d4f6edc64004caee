/*
 * app.toml schema: validation on top of the TOML parser.  See config.h.
 *
 * Recognised keys:
 *   name = "app"
 *   [[env]] key, value, sensitive, required, description
 *   [services.<name>] command, port, [[services.<name>.env]] (as [[env]])
 *   [addons.<name>] variant, version, backups = { every = "6h", keep = 28 },
 *                   rotate_every = "30d"
 *
 * Keys are matched with their whole length (toml_key_is), so "name\u0000x"
 * is not `name`; an escape-equivalent spelling ("na\u006de") is the key it
 * spells, and the parser refuses it next to that key as a duplicate.  Every
 * key the schema walks, and every string that becomes a name (app name, env
 * key, addon variant and version), is refused with FILE:LINE:COL when it
 * holds a control character: no such name can reach the store, a process
 * environment or an engine.
 */
#include "app/config.h"
#include "toml/toml.h"
#include "util/duration.h"
#include "util/names.h"
#include "util/text.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct parse_ctx {
	const char *file;
	struct app_config *cfg;
	struct miren_error *err;
};

static void report_at(struct parse_ctx *c, struct toml_pos pos, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Fills c->err with "file:line:col: reason" and evaluates to MIREN_EINVAL.
 * A macro, so that static analysers, which do not follow variadic calls,
 * see the result. */
#define fail_at(c, pos, ...)                        \
	({                                          \
		report_at((c), (pos), __VA_ARGS__); \
		MIREN_EINVAL;                       \
	})

static void report_at(struct parse_ctx *c, struct toml_pos pos, const char *fmt, ...)
{
	char reason[400];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(reason, sizeof(reason), fmt, ap);
	va_end(ap);
	miren_error_set(c->err, MIREN_EINVAL, "%s:%d:%d: %s", c->file, pos.line, pos.col, reason);
}

static void warn_unknown(struct parse_ctx *c, const struct toml_kv *kv, const char *where)
{
	struct app_config *cfg = c->cfg;
	cfg->warnings = xrealloc(cfg->warnings, (cfg->n_warnings + 1) * sizeof(char *));
	cfg->warnings[cfg->n_warnings++] = xasprintf("%s:%d: unknown key '%s'%s%s", c->file,
						     kv->pos.line, kv->key, where ? " in " : "",
						     where ? where : "");
}

static const char *article(const char *noun)
{
	return strchr("aeiou", noun[0]) ? "an" : "a";
}

/* The value of kv must be of type t; returns 0 or fills the error. */
static int want_type(struct parse_ctx *c, const struct toml_kv *kv, enum toml_type t,
		     const char *where)
{
	if (kv->value->type == t)
		return 0;
	const char *want = toml_type_name(t), *got = toml_type_name(kv->value->type);
	return fail_at(c, kv->value->pos, "'%s'%s%s must be %s %s, not %s %s", kv->key,
		       where ? " in " : "", where ? where : "", article(want), want, article(got),
		       got);
}

/* Every key the schema looks at: no control characters (NUL included). */
static int check_key(struct parse_ctx *c, const struct toml_kv *kv)
{
	if (!text_has_control(kv->key, kv->key_len))
		return 0;
	char *esc = text_escaped(kv->key, kv->key_len);
	int rc = fail_at(c, kv->pos, "key \"%.100s\" holds a control character", esc);
	free(esc);
	return rc;
}

static int want_string(struct parse_ctx *c, const struct toml_kv *kv, const char *where, char **out)
{
	int rc = want_type(c, kv, TOML_STRING, where);
	if (rc)
		return rc;
	if (strlen(kv->value->u.str.ptr) != kv->value->u.str.len)
		return fail_at(c, kv->value->pos, "'%s' must not contain NUL characters", kv->key);
	free(*out);
	*out = xstrdup(kv->value->u.str.ptr);
	return 0;
}

/* A string that names something (an app, a variable, a variant): no
 * control characters either. */
static int want_name(struct parse_ctx *c, const struct toml_kv *kv, const char *where, char **out)
{
	int rc = want_type(c, kv, TOML_STRING, where);
	if (rc)
		return rc;
	const struct toml_value *v = kv->value;
	if (text_has_control(v->u.str.ptr, v->u.str.len)) {
		char *esc = text_escaped(v->u.str.ptr, v->u.str.len);
		rc = fail_at(c, v->pos, "'%s'%s%s \"%.100s\" holds a control character", kv->key,
			     where ? " in " : "", where ? where : "", esc);
		free(esc);
		return rc;
	}
	return want_string(c, kv, where, out);
}

static int parse_env_array(struct parse_ctx *c, const struct toml_kv *kv, const char *where,
			   struct app_env **envp, size_t *np)
{
	if (kv->value->type != TOML_ARRAY)
		return fail_at(c, kv->value->pos, "'%s'%s%s must be an array of tables ([[%s]])",
			       kv->key, where ? " in " : "", where ? where : "", kv->key);
	const struct toml_value *arr = kv->value;
	for (size_t i = 0; i < arr->u.array.len; i++) {
		const struct toml_value *t = arr->u.array.items[i];
		if (t->type != TOML_TABLE)
			return fail_at(c, t->pos,
				       "each env entry must be a table with 'key' and 'value'");
		struct app_env e = { 0 };
		const struct toml_kv *keykv = NULL;
		int rc = 0;
		for (size_t k = 0; k < t->u.table.len && !rc; k++) {
			const struct toml_kv *f = &t->u.table.items[k];
			if ((rc = check_key(c, f)))
				break;
			if (toml_key_is(f, "key")) {
				keykv = f;
				rc = want_name(c, f, "env entry", &e.key);
			} else if (toml_key_is(f, "value")) {
				rc = want_string(c, f, "env entry", &e.value);
			} else if (toml_key_is(f, "description")) {
				rc = want_string(c, f, "env entry", &e.description);
			} else if (toml_key_is(f, "sensitive")) {
				rc = want_type(c, f, TOML_BOOL, "env entry");
				if (!rc)
					e.sensitive = f->value->u.boolean;
			} else if (toml_key_is(f, "required")) {
				rc = want_type(c, f, TOML_BOOL, "env entry");
				if (!rc)
					e.required = f->value->u.boolean;
			} else {
				warn_unknown(c, f, "env entry");
			}
		}
		if (!rc && !keykv)
			rc = fail_at(c, t->pos, "env entry is missing the required 'key'");
		if (!rc) {
			struct miren_error nerr;
			if (name_check_env(e.key, &nerr))
				rc = fail_at(c, keykv->value->pos, "%s", nerr.message);
			else if (!strcmp(e.key, "PORT") || !strncmp(e.key, "MIREN_", 6))
				rc = fail_at(c, keykv->value->pos,
					     "'%s' is set by miren itself (use the service's "
					     "'port')",
					     e.key);
		}
		for (size_t j = 0; !rc && j < *np; j++)
			if (!strcmp((*envp)[j].key, e.key))
				rc = fail_at(c, keykv->value->pos, "env '%s' is declared twice",
					     e.key);
		if (rc) {
			free(e.key);
			free(e.value);
			free(e.description);
			return rc;
		}
		*envp = xrealloc(*envp, (*np + 1) * sizeof(**envp));
		(*envp)[(*np)++] = e;
	}
	return 0;
}

static int parse_service(struct parse_ctx *c, const struct toml_kv *kv)
{
	struct miren_error nerr;
	int krc = check_key(c, kv);
	if (krc)
		return krc;
	if (name_check_service(kv->key, &nerr))
		return fail_at(c, kv->pos, "%s", nerr.message);
	if (kv->value->type != TOML_TABLE)
		return fail_at(c, kv->value->pos, "service '%s' must be a table", kv->key);
	struct app_config *cfg = c->cfg;
	cfg->services = xrealloc(cfg->services, (cfg->n_services + 1) * sizeof(*cfg->services));
	struct app_service *s = &cfg->services[cfg->n_services++];
	memset(s, 0, sizeof(*s));
	s->name = xstrdup(kv->key);
	char where[128];
	snprintf(where, sizeof(where), "[services.%s]", kv->key);
	const struct toml_value *t = kv->value;
	for (size_t i = 0; i < t->u.table.len; i++) {
		const struct toml_kv *f = &t->u.table.items[i];
		int rc = check_key(c, f);
		if (rc)
			return rc;
		if (toml_key_is(f, "command")) {
			rc = want_string(c, f, where, &s->command);
			if (!rc && s->command[strspn(s->command, " \t")] == '\0')
				rc = fail_at(c, f->value->pos, "'command' in %s is empty", where);
		} else if (toml_key_is(f, "port")) {
			rc = want_type(c, f, TOML_INTEGER, where);
			if (!rc && (f->value->u.integer < 1 || f->value->u.integer > 65535))
				rc = fail_at(c, f->value->pos, "'port' in %s must be 1..65535",
					     where);
			if (!rc)
				s->port = (int)f->value->u.integer;
		} else if (toml_key_is(f, "env")) {
			rc = parse_env_array(c, f, where, &s->env, &s->n_env);
		} else {
			warn_unknown(c, f, where);
		}
		if (rc)
			return rc;
	}
	if (!s->command)
		return fail_at(c, t->pos, "%s is missing the required 'command'", where);
	return 0;
}

enum miren_err app_backups_check(int64_t every_s, long long keep, struct miren_error *err)
{
	if (every_s < APP_BACKUPS_EVERY_MIN || every_s > APP_BACKUPS_EVERY_MAX) {
		miren_error_set(err, MIREN_EINVAL,
				"a backup schedule's 'every' must be from 1m to 366d");
		miren_error_hint(err, "e.g. every = \"6h\" or \"1d\"");
		return MIREN_EINVAL;
	}
	if (keep < 1 || keep > APP_BACKUPS_KEEP_MAX) {
		miren_error_set(err, MIREN_EINVAL,
				"a backup schedule's 'keep' must be from 1 to %d (got %lld)",
				APP_BACKUPS_KEEP_MAX, keep);
		miren_error_hint(err, "keep is how many scheduled backups are kept, e.g. keep = "
				      "28; to stop taking backups, remove the schedule");
		return MIREN_EINVAL;
	}
	return 0;
}

/* backups = { every = "6h", keep = 28 } of [addons.<name>]. */
static int parse_backups(struct parse_ctx *c, const struct toml_kv *kv, const char *where,
			 struct app_addon *a)
{
	int rc = want_type(c, kv, TOML_TABLE, where);
	if (rc) {
		miren_error_hint(c->err, "write backups = { every = \"6h\", keep = 28 }");
		return rc;
	}
	const struct toml_value *t = kv->value;
	const struct toml_kv *every = NULL;
	long long keep = APP_BACKUPS_KEEP_DEFAULT;
	struct toml_pos keep_pos = kv->value->pos;
	char bwhere[200];
	snprintf(bwhere, sizeof(bwhere), "backups of %s", where);
	for (size_t i = 0; i < t->u.table.len; i++) {
		const struct toml_kv *f = &t->u.table.items[i];
		if ((rc = check_key(c, f)))
			return rc;
		if (toml_key_is(f, "every")) {
			if ((rc = want_type(c, f, TOML_STRING, bwhere)))
				return rc;
			every = f;
		} else if (toml_key_is(f, "keep")) {
			if ((rc = want_type(c, f, TOML_INTEGER, bwhere)))
				return rc;
			keep = f->value->u.integer;
			keep_pos = f->value->pos;
		} else {
			warn_unknown(c, f, bwhere);
		}
	}
	if (!every) {
		rc = fail_at(c, kv->value->pos, "%s has no 'every'", bwhere);
		miren_error_hint(c->err,
				 "say how often, e.g. backups = { every = \"6h\", keep = 28 }");
		return rc;
	}
	struct miren_error why;
	int64_t secs = 0;
	miren_error_clear(&why);
	if (duration_parse(every->value->u.str.ptr, NULL, &secs, &why) != 0) {
		char *esc = text_escaped(every->value->u.str.ptr, every->value->u.str.len);
		rc = fail_at(c, every->value->pos, "'every' in %s: invalid duration \"%.60s\"",
			     bwhere, esc);
		free(esc);
		miren_error_hint(c->err, "%s", why.hint);
		return rc;
	}
	if (app_backups_check(secs, APP_BACKUPS_KEEP_DEFAULT, &why) != 0) {
		rc = fail_at(c, every->value->pos, "'every' in %s: %s", bwhere, why.message);
		miren_error_hint(c->err, "%s", why.hint);
		return rc;
	}
	if (app_backups_check(secs, keep, &why) != 0) {
		rc = fail_at(c, keep_pos, "'keep' in %s: %s", bwhere, why.message);
		miren_error_hint(c->err, "%s", why.hint);
		return rc;
	}
	a->backups_every_s = secs;
	a->backups_keep = (int)keep;
	return 0;
}

/* rotate_every = "30d" of an addon. */
static int parse_rotate_every(struct parse_ctx *c, const struct toml_kv *f, const char *where,
			      struct app_addon *a)
{
	int rc = want_type(c, f, TOML_STRING, where);
	if (rc)
		return rc;
	struct miren_error why;
	int64_t secs = 0;
	miren_error_clear(&why);
	if (duration_parse(f->value->u.str.ptr, NULL, &secs, &why) != 0) {
		char *esc = text_escaped(f->value->u.str.ptr, f->value->u.str.len);
		rc = fail_at(c, f->value->pos, "'rotate_every' in %s: invalid duration \"%.60s\"",
			     where, esc);
		free(esc);
		miren_error_hint(c->err, "%s", why.hint);
		return rc;
	}
	if (secs < APP_ROTATE_EVERY_MIN || secs > APP_ROTATE_EVERY_MAX) {
		rc = fail_at(c, f->value->pos,
			     "'rotate_every' in %s must be from 1 minute to 366 days", where);
		miren_error_hint(c->err, "for example rotate_every = \"30d\"");
		return rc;
	}
	a->rotate_every_s = secs;
	return 0;
}

static int parse_addon(struct parse_ctx *c, const struct toml_kv *kv)
{
	int krc = check_key(c, kv);
	if (krc)
		return krc;
	if (kv->value->type != TOML_TABLE)
		return fail_at(c, kv->value->pos, "addon '%s' must be a table", kv->key);
	struct app_config *cfg = c->cfg;
	cfg->addons = xrealloc(cfg->addons, (cfg->n_addons + 1) * sizeof(*cfg->addons));
	struct app_addon *a = &cfg->addons[cfg->n_addons++];
	memset(a, 0, sizeof(*a));
	a->name = xstrdup(kv->key);
	char where[160];
	snprintf(where, sizeof(where), "[addons.%.100s]", kv->key);
	const struct toml_value *t = kv->value;
	for (size_t i = 0; i < t->u.table.len; i++) {
		const struct toml_kv *f = &t->u.table.items[i];
		int rc = check_key(c, f);
		if (rc)
			return rc;
		if (toml_key_is(f, "variant"))
			rc = want_name(c, f, where, &a->variant);
		else if (toml_key_is(f, "version"))
			rc = want_name(c, f, where, &a->version);
		else if (toml_key_is(f, "backups"))
			rc = parse_backups(c, f, where, a);
		else if (toml_key_is(f, "rotate_every"))
			rc = parse_rotate_every(c, f, where, a);
		else
			warn_unknown(c, f, where);
		if (rc)
			return rc;
	}
	return 0;
}

/* Runs fn over the entries of a [section] table. */
static int each_entry(struct parse_ctx *c, const struct toml_kv *kv,
		      int (*fn)(struct parse_ctx *, const struct toml_kv *))
{
	if (kv->value->type != TOML_TABLE)
		return fail_at(c, kv->value->pos, "'%s' must be a table", kv->key);
	for (size_t i = 0; i < kv->value->u.table.len; i++) {
		int rc = fn(c, &kv->value->u.table.items[i]);
		if (rc)
			return rc;
	}
	return 0;
}

enum miren_err app_config_parse(const char *text, size_t len, const char *filename,
				const char *fallback_name, struct app_config **out,
				struct miren_error *err)
{
	*out = NULL;
	struct toml_error terr;
	struct toml_value *root = toml_parse(text, len, &terr);
	if (!root) {
		miren_error_set(err, MIREN_EINVAL, "%s:%d:%d: %s", filename, terr.line, terr.col,
				terr.reason);
		miren_error_hint(err,
				 "fix the file; the TOML syntax is described at https://toml.io");
		return MIREN_EINVAL;
	}
	struct app_config *cfg = xcalloc(1, sizeof(*cfg));
	struct parse_ctx c = { filename, cfg, err };
	enum miren_err rc = 0;
	const struct toml_kv *namekv = NULL;
	for (size_t i = 0; i < root->u.table.len && !rc; i++) {
		const struct toml_kv *kv = &root->u.table.items[i];
		if ((rc = check_key(&c, kv)))
			break;
		if (toml_key_is(kv, "name")) {
			namekv = kv;
			rc = want_name(&c, kv, NULL, &cfg->name);
		} else if (toml_key_is(kv, "env")) {
			rc = parse_env_array(&c, kv, NULL, &cfg->env, &cfg->n_env);
		} else if (toml_key_is(kv, "services")) {
			rc = each_entry(&c, kv, parse_service);
		} else if (toml_key_is(kv, "addons")) {
			rc = each_entry(&c, kv, parse_addon);
		} else {
			warn_unknown(&c, kv, NULL);
		}
	}
	if (!rc && !cfg->name) {
		if (!fallback_name || !*fallback_name)
			rc = miren_error_set(err, MIREN_EINVAL, "%s: no 'name' given", filename);
		else
			cfg->name = xstrdup(fallback_name);
	}
	if (!rc) {
		struct miren_error nerr;
		if (name_check_app(cfg->name, &nerr)) {
			if (namekv)
				rc = fail_at(&c, namekv->value->pos, "%s", nerr.message);
			else
				rc = miren_error_set(err, MIREN_EINVAL,
						     "%s (taken from the directory name)",
						     nerr.message);
			miren_error_hint(err, "%s; set a valid 'name' in %s", nerr.hint, filename);
		}
	}
	toml_free(root);
	if (rc) {
		app_config_free(cfg);
		return rc;
	}
	*out = cfg;
	return 0;
}

static void env_free(struct app_env *e, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(e[i].key);
		free(e[i].value);
		free(e[i].description);
	}
	free(e);
}

void app_config_free(struct app_config *cfg)
{
	if (!cfg)
		return;
	free(cfg->name);
	for (size_t i = 0; i < cfg->n_services; i++) {
		free(cfg->services[i].name);
		free(cfg->services[i].command);
		env_free(cfg->services[i].env, cfg->services[i].n_env);
	}
	free(cfg->services);
	env_free(cfg->env, cfg->n_env);
	for (size_t i = 0; i < cfg->n_addons; i++) {
		free(cfg->addons[i].name);
		free(cfg->addons[i].variant);
		free(cfg->addons[i].version);
	}
	free(cfg->addons);
	for (size_t i = 0; i < cfg->n_warnings; i++)
		free(cfg->warnings[i]);
	free(cfg->warnings);
	free(cfg);
}

static json_t *env_to_json(const struct app_env *e, size_t n)
{
	json_t *a = json_array();
	for (size_t i = 0; i < n; i++) {
		json_t *o = json_pack("{s:s, s:b, s:b}", "key", e[i].key, "sensitive",
				      e[i].sensitive, "required", e[i].required);
		if (e[i].value)
			json_object_set_new(o, "value", json_string(e[i].value));
		if (e[i].description)
			json_object_set_new(o, "description", json_string(e[i].description));
		json_array_append_new(a, o);
	}
	return a;
}

json_t *app_config_to_json(const struct app_config *cfg)
{
	json_t *services = json_array();
	for (size_t i = 0; i < cfg->n_services; i++) {
		const struct app_service *s = &cfg->services[i];
		json_array_append_new(services, json_pack("{s:s, s:s, s:i, s:o}", "name", s->name,
							  "command", s->command, "port", s->port,
							  "env", env_to_json(s->env, s->n_env)));
	}
	json_t *addons = json_array();
	for (size_t i = 0; i < cfg->n_addons; i++) {
		const struct app_addon *a = &cfg->addons[i];
		json_t *o = json_pack("{s:s}", "name", a->name);
		if (a->variant)
			json_object_set_new(o, "variant", json_string(a->variant));
		if (a->version)
			json_object_set_new(o, "version", json_string(a->version));
		if (a->backups_every_s)
			json_object_set_new(o, "backups",
					    json_pack("{s:I, s:i}", "every_s",
						      (json_int_t)a->backups_every_s, "keep",
						      a->backups_keep));
		if (a->rotate_every_s)
			json_object_set_new(o, "rotate_every_s",
					    json_integer((json_int_t)a->rotate_every_s));
		json_array_append_new(addons, o);
	}
	return json_pack("{s:s, s:o, s:o, s:o}", "name", cfg->name, "services", services, "env",
			 env_to_json(cfg->env, cfg->n_env), "addons", addons);
}

static char *opt_str(const json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));
	return s ? xstrdup(s) : NULL;
}

static int env_from_json(const json_t *a, struct app_env **out, size_t *n)
{
	*out = NULL;
	*n = 0;
	if (!json_is_array(a))
		return -1;
	*n = json_array_size(a);
	*out = xcalloc(*n, sizeof(**out));
	for (size_t i = 0; i < *n; i++) {
		const json_t *o = json_array_get(a, i);
		struct app_env *e = &(*out)[i];
		e->key = opt_str(o, "key");
		e->value = opt_str(o, "value");
		e->description = opt_str(o, "description");
		e->sensitive = json_is_true(json_object_get(o, "sensitive"));
		e->required = json_is_true(json_object_get(o, "required"));
		if (!e->key)
			return -1;
	}
	return 0;
}

struct app_config *app_config_from_json(const json_t *j)
{
	struct app_config *cfg = xcalloc(1, sizeof(*cfg));
	const json_t *services = json_object_get(j, "services");
	const json_t *addons = json_object_get(j, "addons");
	cfg->name = opt_str(j, "name");
	if (!cfg->name || !json_is_array(services) || !json_is_array(addons))
		goto bad;
	if (env_from_json(json_object_get(j, "env"), &cfg->env, &cfg->n_env))
		goto bad;
	cfg->n_services = json_array_size(services);
	cfg->services = xcalloc(cfg->n_services, sizeof(*cfg->services));
	for (size_t i = 0; i < cfg->n_services; i++) {
		const json_t *o = json_array_get(services, i);
		struct app_service *s = &cfg->services[i];
		s->name = opt_str(o, "name");
		s->command = opt_str(o, "command");
		s->port = (int)json_integer_value(json_object_get(o, "port"));
		if (!s->name || !s->command ||
		    env_from_json(json_object_get(o, "env"), &s->env, &s->n_env))
			goto bad;
	}
	cfg->n_addons = json_array_size(addons);
	cfg->addons = xcalloc(cfg->n_addons, sizeof(*cfg->addons));
	for (size_t i = 0; i < cfg->n_addons; i++) {
		const json_t *o = json_array_get(addons, i);
		cfg->addons[i].name = opt_str(o, "name");
		cfg->addons[i].variant = opt_str(o, "variant");
		cfg->addons[i].version = opt_str(o, "version");
		const json_t *b = json_object_get(o, "backups");
		cfg->addons[i].backups_every_s = json_integer_value(json_object_get(b, "every_s"));
		cfg->addons[i].backups_keep = (int)json_integer_value(json_object_get(b, "keep"));
		cfg->addons[i].rotate_every_s = json_integer_value(
			json_object_get(o, "rotate_every_s"));
		if (!cfg->addons[i].name)
			goto bad;
	}
	return cfg;
bad:
	app_config_free(cfg);
	return NULL;
}

const struct app_service *app_config_service(const struct app_config *cfg, const char *name)
{
	for (size_t i = 0; i < cfg->n_services; i++)
		if (!strcmp(cfg->services[i].name, name))
			return &cfg->services[i];
	return NULL;
}
