/*
 * API tokens for the TCP listeners: issuing, listing, revoking, and
 * checking the token a request carries (Authorization: Bearer TOKEN).
 *
 * A token is "miren_" and 40 random hex digits (160 bits); the store
 * keeps only its SHA-256, so it is shown once, when it is made.  Roles:
 * admin (everything), deployer (deploy, env, addons, backups and logs of
 * its apps), reader (what a deployer may read, never a secret).  A token
 * made with --app acts on those apps only; without, on every app.
 * Failed checks are counted per client address: after AUTH_FAIL_MAX in
 * AUTH_FAIL_WINDOW_S seconds that address is refused until the window
 * passes, and each refusal is logged without the token.
 */
#ifndef MIREN_DAEMON_AUTH_H
#define MIREN_DAEMON_AUTH_H

#include <jansson.h>
#include <stdbool.h>

#include "daemon/daemon.h"
#include "util/err.h"

#define AUTH_FAIL_MAX 10
#define AUTH_FAIL_WINDOW_S 60

enum auth_role {
	AUTH_ADMIN,
	AUTH_DEPLOYER,
	AUTH_READER,
};

/* Who a request acts as. */
struct auth_principal {
	char name[128];
	enum auth_role role;
	json_t *apps; /* array of app names; empty: every app (owned) */
};

/* body {"name", "role" ("deployer" if absent), "apps": [..], "expires":
 * "90d" (absent: never)}.  Returns the token's record with "token" (the
 * only time it is shown) in *res.  MIREN_EINVAL for a bad name, role,
 * app or duration; MIREN_EEXISTS for a name in use. */
enum miren_err auth_token_create(struct daemon *d, const json_t *body, json_t **res,
				 struct miren_error *err);
/* [{"name", "role", "apps", "created_at", "expires_at", "revoked_at",
 * "last_used_at", "state": "active"|"expired"|"revoked"}], by name. */
enum miren_err auth_token_list(struct daemon *d, json_t **res, struct miren_error *err);
enum miren_err auth_token_revoke(struct daemon *d, const char *name, struct miren_error *err);

/* Checks the Authorization header value `authorization` (may be NULL)
 * of a request from `peer` (its address, for the log and the rate limit)
 * and fills *p (release with auth_principal_release).  MIREN_EAUTH for a
 * missing, unknown, expired or revoked token, or a peer over its limit. */
enum miren_err auth_check(struct daemon *d, const char *authorization, const char *peer,
			  struct auth_principal *p, struct miren_error *err);
/* Whether p may act on app. */
bool auth_app_allowed(const struct auth_principal *p, const char *app);
void auth_principal_release(struct auth_principal *p);

#endif
