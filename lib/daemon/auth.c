/* API tokens; see auth.h. */
#include "daemon/auth.h"
#include "daemon/daemon_int.h"
#include "store/store.h"
#include "util/duration.h"
#include "util/log.h"
#include "util/names.h"
#include "util/secret.h"
#include "util/sha256.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define TOKEN_PREFIX "miren_"
#define TOKEN_HEX_BYTES 20

static const char *const role_names[] = {
	[AUTH_ADMIN] = "admin", [AUTH_DEPLOYER] = "deployer", [AUTH_READER] = "reader"
};

static bool role_of(const char *s, enum auth_role *out)
{
	for (size_t i = 0; i < sizeof(role_names) / sizeof(role_names[0]); i++)
		if (!strcmp(s, role_names[i])) {
			*out = (enum auth_role)i;
			return true;
		}
	return false;
}

/* A token name: 1-63 of [a-z0-9-_.], starting with a letter or digit. */
static enum miren_err check_token_name(const char *name, struct miren_error *err)
{
	size_t n = name ? strlen(name) : 0;
	bool ok = n > 0 && n < 64 && strchr("abcdefghijklmnopqrstuvwxyz0123456789", name[0]);
	for (size_t i = 0; ok && i < n; i++)
		ok = strchr("abcdefghijklmnopqrstuvwxyz0123456789-_.", name[i]) != NULL;
	if (ok)
		return 0;
	miren_error_set(err, MIREN_EINVAL, "invalid token name '%s'", name ? name : "");
	miren_error_hint(err, "use 1 to 63 of a-z, 0-9, '-', '_' and '.', starting with a letter "
			      "or digit");
	return MIREN_EINVAL;
}

static const char *token_state(const struct token_rec *t, int64_t now)
{
	if (t->revoked_at)
		return "revoked";
	if (t->expires_at && t->expires_at <= now)
		return "expired";
	return "active";
}

static json_t *token_json(const struct token_rec *t, int64_t now)
{
	json_t *apps = json_loads(t->apps, 0, NULL);
	return json_pack("{s:s, s:s, s:o, s:I, s:I, s:I, s:I, s:s}", "name", t->name, "role",
			 t->role, "apps", apps ? apps : json_array(), "created_at",
			 (json_int_t)t->created_at, "expires_at", (json_int_t)t->expires_at,
			 "revoked_at", (json_int_t)t->revoked_at, "last_used_at",
			 (json_int_t)t->last_used_at, "state", token_state(t, now));
}

enum miren_err auth_token_create(struct daemon *d, const json_t *body, json_t **res,
				 struct miren_error *err)
{
	const char *name = json_string_value(json_object_get(body, "name"));
	const char *role = json_string_value(json_object_get(body, "role"));
	const char *expires = json_string_value(json_object_get(body, "expires"));
	json_t *apps = json_object_get(body, "apps");
	enum auth_role r;
	enum miren_err rc = check_token_name(name, err);
	if (rc)
		return rc;
	if (!role)
		role = "deployer";
	if (!role_of(role, &r)) {
		miren_error_set(err, MIREN_EINVAL, "unknown role '%s'", role);
		miren_error_hint(err, "the roles are admin, deployer and reader");
		return MIREN_EINVAL;
	}
	if (apps && !json_is_array(apps))
		return miren_error_set(err, MIREN_EINVAL, "'apps' must be a list of app names");
	size_t i;
	json_t *v;
	json_array_foreach (apps, i, v) {
		if (!json_is_string(v))
			return miren_error_set(err, MIREN_EINVAL,
					       "'apps' must be a list of app names");
		if ((rc = name_check_app(json_string_value(v), err)) != 0)
			return rc;
	}
	if (r == AUTH_ADMIN && json_array_size(apps)) {
		miren_error_set(err, MIREN_EINVAL, "an admin token acts on every app");
		miren_error_hint(err, "drop --app, or make a deployer or reader token");
		return MIREN_EINVAL;
	}
	int64_t now = (int64_t)time(NULL), ttl = 0;
	if (expires && (rc = duration_parse(expires, "--expires", &ttl, err)) != 0)
		return rc;
	char *hex = secret_hex(TOKEN_HEX_BYTES);
	char *token = NULL;
	if (asprintf(&token, TOKEN_PREFIX "%s", hex) < 0)
		abort();
	free(hex);
	char hash[65];
	sha256_hex(token, strlen(token), hash);
	char *apps_text = json_dumps(apps ? apps : json_array(), JSON_COMPACT);
	struct token_rec rec = { .name = (char *)name,
				 .hash = hash,
				 .role = (char *)role,
				 .apps = apps_text,
				 .created_at = now,
				 .expires_at = ttl ? now + ttl : 0 };
	rc = store_token_insert(d->store, &rec, err);
	if (!rc) {
		log_info("auth: token %s made (role %s, apps %s)", name, role, apps_text);
		*res = token_json(&rec, now);
		json_object_set_new(*res, "token", json_string(token));
	}
	free(apps_text);
	memset(token, 0, strlen(token));
	free(token);
	return rc;
}

enum miren_err auth_token_list(struct daemon *d, json_t **res, struct miren_error *err)
{
	struct token_rec *t;
	size_t n;
	enum miren_err rc = store_token_list(d->store, &t, &n, err);
	if (rc)
		return rc;
	int64_t now = (int64_t)time(NULL);
	*res = json_array();
	for (size_t i = 0; i < n; i++)
		json_array_append_new(*res, token_json(&t[i], now));
	token_recs_free(t, n);
	return 0;
}

enum miren_err auth_token_revoke(struct daemon *d, const char *name, struct miren_error *err)
{
	enum miren_err rc = store_token_revoke(d->store, name, (int64_t)time(NULL), err);
	if (!rc)
		log_info("auth: token %s revoked", name);
	return rc;
}

/* Failed checks per client address, in the current window. */
static pthread_mutex_t fails_mu = PTHREAD_MUTEX_INITIALIZER;
static struct fail_ent {
	char peer[64];
	int64_t since;
	int count;
} fails[256];

/* Counts a failure of peer (when count) and says whether it is over its
 * limit. */
static bool peer_limited(const char *peer, bool count)
{
	int64_t now = (int64_t)time(NULL);
	pthread_mutex_lock(&fails_mu);
	struct fail_ent *e = NULL, *oldest = &fails[0];
	for (size_t i = 0; i < sizeof(fails) / sizeof(fails[0]) && !e; i++) {
		if (!strcmp(fails[i].peer, peer))
			e = &fails[i];
		else if (fails[i].since < oldest->since)
			oldest = &fails[i];
	}
	if (e && now - e->since >= AUTH_FAIL_WINDOW_S) {
		e->since = now;
		e->count = 0;
	}
	if (!e && count) {
		e = oldest; /* (a full table forgets the oldest) */
		snprintf(e->peer, sizeof(e->peer), "%s", peer);
		e->since = now;
		e->count = 0;
	}
	if (e && count)
		e->count++;
	bool limited = e && e->count > AUTH_FAIL_MAX;
	pthread_mutex_unlock(&fails_mu);
	return limited;
}

enum miren_err auth_check(struct daemon *d, const char *authorization, const char *peer,
			  struct auth_principal *p, struct miren_error *err)
{
	memset(p, 0, sizeof(*p));
	if (peer_limited(peer, false)) {
		log_warn("auth: %s refused: too many failed attempts", peer);
		miren_error_set(err, MIREN_EAUTH, "too many failed attempts from this address");
		miren_error_hint(err, "wait a minute, then try again with a valid token");
		return MIREN_EAUTH;
	}
	const char *tok = NULL;
	if (authorization && !strncasecmp(authorization, "Bearer ", 7))
		tok = authorization + 7;
	const char *why = "no token";
	struct token_rec t = { 0 };
	if (tok && *tok) {
		char hash[65];
		sha256_hex(tok, strlen(tok), hash);
		struct miren_error e;
		int64_t now = (int64_t)time(NULL);
		if (store_token_by_hash(d->store, hash, &t, &e) != 0) {
			why = "an unknown token";
		} else if (strcmp(token_state(&t, now), "active")) {
			why = t.revoked_at ? "a revoked token" : "an expired token";
		} else {
			enum auth_role r = AUTH_READER;
			role_of(t.role, &r);
			snprintf(p->name, sizeof(p->name), "%s", t.name);
			p->role = r;
			p->apps = json_loads(t.apps, 0, NULL);
			if (!json_is_array(p->apps)) {
				json_decref(p->apps);
				p->apps = json_array();
			}
			store_token_used(d->store, hash, now, &e);
			token_rec_release(&t);
			return 0;
		}
	}
	log_warn("auth: %s refused: %s%s%s", peer, why, t.name ? " " : "", t.name ? t.name : "");
	token_rec_release(&t);
	peer_limited(peer, true);
	miren_error_set(err, MIREN_EAUTH, "this request needs a valid token (it had %s)", why);
	miren_error_hint(err, "create one on the server with 'miren auth token create'");
	return MIREN_EAUTH;
}

bool auth_app_allowed(const struct auth_principal *p, const char *app)
{
	if (!json_array_size(p->apps))
		return true;
	size_t i;
	json_t *v;
	json_array_foreach (p->apps, i, v)
		if (!strcmp(json_string_value(v), app))
			return true;
	return false;
}

void auth_principal_release(struct auth_principal *p)
{
	json_decref(p->apps);
	p->apps = NULL;
}
