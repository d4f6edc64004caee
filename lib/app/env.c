/* Env resolution; see env.h for the precedence rules. */
#include "app/env.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

struct env_list {
	struct env_rec *v;
	size_t n;
};

/* Sets (key, service) to the given value, replacing a lower source. */
static void put(struct env_list *l, const char *key, const char *value, const char *service,
		enum env_source src, bool sensitive, const char *desc)
{
	for (size_t i = 0; i < l->n; i++) {
		struct env_rec *e = &l->v[i];
		if (strcmp(e->key, key) || strcmp(e->service, service))
			continue;
		free(e->value);
		free(e->description);
		e->value = xstrdup(value);
		e->description = xstrdup(desc ? desc : "");
		e->source = src;
		e->sensitive = sensitive;
		return;
	}
	l->v = xrealloc(l->v, (l->n + 1) * sizeof(*l->v));
	l->v[l->n++] = (struct env_rec){
		.key = xstrdup(key),
		.value = xstrdup(value),
		.service = xstrdup(service),
		.source = src,
		.sensitive = sensitive,
		.description = xstrdup(desc ? desc : ""),
	};
}

static void put_config(struct env_list *l, const struct app_env *e, size_t n, const char *service)
{
	for (size_t i = 0; i < n; i++)
		if (e[i].value)
			put(l, e[i].key, e[i].value, service, ENV_SOURCE_CONFIG, e[i].sensitive,
			    e[i].description);
}

static void put_stored(struct env_list *l, const struct env_rec *s, size_t n, enum env_source src)
{
	for (size_t i = 0; i < n; i++)
		if (s[i].source == src)
			put(l, s[i].key, s[i].value, s[i].service, src, s[i].sensitive,
			    s[i].description);
}

static int cmp_rec(const void *a, const void *b)
{
	const struct env_rec *x = a, *y = b;
	int c = strcmp(x->key, y->key);
	return c ? c : strcmp(x->service, y->service);
}

void env_effective(const struct app_config *cfg, const struct env_rec *stored, size_t n_stored,
		   struct env_rec **out, size_t *n_out)
{
	struct env_list l = { 0 };
	if (cfg) {
		put_config(&l, cfg->env, cfg->n_env, "");
		for (size_t i = 0; i < cfg->n_services; i++)
			put_config(&l, cfg->services[i].env, cfg->services[i].n_env,
				   cfg->services[i].name);
	}
	put_stored(&l, stored, n_stored, ENV_SOURCE_ADDON);
	put_stored(&l, stored, n_stored, ENV_SOURCE_MANUAL);
	/* An app-wide addon or manual value also beats a service-scoped
	 * config entry of the same key: drop the shadowed ones (found first,
	 * then removed, so no test reads a dropped entry). */
	bool *drop = xcalloc(l.n ? l.n : 1, sizeof(*drop));
	for (size_t i = 0; i < l.n; i++) {
		const struct env_rec *e = &l.v[i];
		for (size_t j = 0; j < l.n && e->source == ENV_SOURCE_CONFIG && *e->service; j++)
			drop[i] |= !*l.v[j].service && l.v[j].source != ENV_SOURCE_CONFIG &&
				   !strcmp(l.v[j].key, e->key);
	}
	size_t kept = 0;
	for (size_t i = 0; i < l.n; i++) {
		if (!drop[i]) {
			l.v[kept++] = l.v[i];
			continue;
		}
		free(l.v[i].key);
		free(l.v[i].value);
		free(l.v[i].service);
		free(l.v[i].description);
	}
	l.n = kept;
	free(drop);
	if (l.n)
		qsort(l.v, l.n, sizeof(*l.v), cmp_rec);
	*out = l.v;
	*n_out = l.n;
}

static void arr_set(char ***arr, size_t *n, const char *key, const char *value)
{
	size_t klen = strlen(key);
	char *kv = xasprintf("%s=%s", key, value);
	for (size_t i = 0; i < *n; i++) {
		if (!strncmp((*arr)[i], key, klen) && (*arr)[i][klen] == '=') {
			free((*arr)[i]);
			(*arr)[i] = kv;
			return;
		}
	}
	*arr = xrealloc(*arr, (*n + 2) * sizeof(char *));
	(*arr)[(*n)++] = kv;
	(*arr)[*n] = NULL;
}

char **env_for_service(const struct app_config *cfg, const char *service,
		       const struct env_rec *stored, size_t n_stored, int port, int release,
		       const char *home)
{
	char **arr = xcalloc(1, sizeof(char *));
	size_t n = 0;
	const char *path = getenv("PATH");
	arr_set(&arr, &n, "PATH", path && *path ? path : "/usr/local/bin:/usr/bin:/bin");
	arr_set(&arr, &n, "LANG", "C.UTF-8");
	arr_set(&arr, &n, "HOME", home);

	struct env_rec *eff;
	size_t n_eff;
	env_effective(cfg, stored, n_stored, &eff, &n_eff);
	/* App-wide values first, then this service's own, so they win. */
	for (int pass = 0; pass < 2; pass++)
		for (size_t i = 0; i < n_eff; i++) {
			int app_wide = !*eff[i].service;
			if ((pass == 0 && app_wide) ||
			    (pass == 1 && !app_wide && !strcmp(eff[i].service, service)))
				arr_set(&arr, &n, eff[i].key, eff[i].value);
		}
	env_recs_free(eff, n_eff);

	char buf[32];
	snprintf(buf, sizeof(buf), "%d", port);
	arr_set(&arr, &n, "PORT", buf);
	arr_set(&arr, &n, "MIREN_APP", cfg->name);
	arr_set(&arr, &n, "MIREN_SERVICE", service);
	snprintf(buf, sizeof(buf), "%d", release);
	arr_set(&arr, &n, "MIREN_RELEASE", buf);
	return arr;
}

void env_array_free(char **env)
{
	if (!env)
		return;
	for (char **p = env; *p; p++)
		free(*p);
	free(env);
}

static int has_value(const struct app_config *cfg, const struct env_rec *stored, size_t n,
		     const char *key)
{
	for (size_t i = 0; i < cfg->n_env; i++)
		if (!strcmp(cfg->env[i].key, key) && cfg->env[i].value)
			return 1;
	for (size_t i = 0; i < n; i++)
		if (!strcmp(stored[i].key, key))
			return 1;
	return 0;
}

const char *env_missing_required(const struct app_config *cfg, const struct env_rec *stored,
				 size_t n_stored)
{
	for (size_t i = 0; i < cfg->n_env; i++)
		if (cfg->env[i].required && !has_value(cfg, stored, n_stored, cfg->env[i].key))
			return cfg->env[i].key;
	for (size_t s = 0; s < cfg->n_services; s++) {
		const struct app_service *svc = &cfg->services[s];
		for (size_t i = 0; i < svc->n_env; i++)
			if (svc->env[i].required && !svc->env[i].value &&
			    !has_value(cfg, stored, n_stored, svc->env[i].key))
				return svc->env[i].key;
	}
	return NULL;
}
