/*
 * Two logins taking turns (see logins.h).
 */
#include "addon/logins.h"
#include "addon/server.h"
#include "util/secret.h"
#include "util/strbuf.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

static void wipe(char *s)
{
	if (s)
		explicit_bzero(s, strlen(s));
	free(s);
}

void addon_logins_parse(struct addon_logins *l, const json_t *o, const char *first)
{
	const char *login = addon_jstr(o, "login");
	l->login = xstrdup(*login ? login : first);
	l->next_password = xstrdup(addon_jstr(o, "next_password"));
	l->retired = xstrdup(addon_jstr(o, "retired"));
	l->alt = json_is_true(json_object_get(o, "alt"));
	l->issued_at = json_integer_value(json_object_get(o, "issued_at"));
}

void addon_logins_json(const struct addon_logins *l, const char *first, json_t *o)
{
	if (strcmp(l->login, first) != 0)
		json_object_set_new(o, "login", json_string(l->login));
	if (*l->next_password)
		json_object_set_new(o, "next_password", json_string(l->next_password));
	if (*l->retired)
		json_object_set_new(o, "retired", json_string(l->retired));
	if (l->alt)
		json_object_set_new(o, "alt", json_true());
	if (l->issued_at)
		json_object_set_new(o, "issued_at", json_integer(l->issued_at));
}

void addon_logins_release(struct addon_logins *l)
{
	free(l->login);
	free(l->retired);
	wipe(l->next_password);
	memset(l, 0, sizeof(*l));
}

void addon_logins_init(struct addon_logins *l, const char *first)
{
	addon_logins_release(l);
	l->login = xstrdup(first);
	l->next_password = xstrdup("");
	l->retired = xstrdup("");
	l->issued_at = (int64_t)time(NULL);
}

void addon_logins_plan(struct addon_logins *l)
{
	if (*l->next_password || *l->retired)
		return;
	wipe(l->next_password);
	l->next_password = secret_password();
	l->alt = true;
}

enum addon_rotate_phase addon_logins_phase(const struct addon_logins *l)
{
	if (*l->next_password)
		return ADDON_ROTATE_PLANNED;
	return *l->retired ? ADDON_ROTATE_SWITCHED : ADDON_ROTATE_NONE;
}

const char *addon_logins_other(const struct addon_logins *l, const char *first, const char *second)
{
	return strcmp(l->login, second) == 0 ? first : second;
}

void addon_logins_switch(struct addon_logins *l, const char *next, char **password)
{
	free(l->retired);
	l->retired = l->login;
	l->login = xstrdup(next);
	wipe(*password);
	*password = l->next_password;
	l->next_password = xstrdup("");
	l->issued_at = (int64_t)time(NULL);
}

void addon_logins_revoked(struct addon_logins *l)
{
	free(l->retired);
	l->retired = xstrdup("");
}

static bool has_name(char *const *s, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (!strcmp(s[i], name))
			return true;
	return false;
}

void addon_logins_check(const struct addon_logins *l, const char *server_id, const char *app,
			const char *first, const char *second, char *const *logins, size_t n,
			json_t *violations)
{
	if (addon_logins_phase(l) != ADDON_ROTATE_NONE)
		return;
	const char *other = addon_logins_other(l, first, second);
	if (!has_name(logins, n, l->login))
		json_array_append_new(violations,
				      json_sprintf("server %s: the recorded login %s of app %s "
						   "cannot log in",
						   server_id, l->login, app));
	if (has_name(logins, n, other))
		json_array_append_new(violations,
				      json_sprintf("server %s: login %s of app %s still works "
						   "beside the recorded %s",
						   server_id, other, app, l->login));
}

bool addon_logins_want_second(const struct addon_logins *l, const char *second, char *const *have,
			      size_t n)
{
	if (!l->alt)
		return false;
	return addon_logins_phase(l) == ADDON_ROTATE_NONE || has_name(have, n, second);
}
