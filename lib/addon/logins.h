/*
 * Two logins taking turns: the part of credential rotation (addon.h:
 * rotate_plan, rotate_phase, rotate_issue, rotate_revoke) that engines
 * with named logins share (database roles, users, ACL users).  A
 * tenant has its first login (named from the app) and a second one; the
 * env names one of them; a rotation plans a password for the other, lets
 * it in beside the current one (the engine's work), switches to it, then
 * revokes the old one (the engine's work).  The engine keeps the current
 * password in its own state; this keeps the rest, as members of the
 * engine's state JSON: "login" (when not the first), "next_password"
 * (planned), "retired" (switched, to revoke), "alt" (the second login may
 * exist), "issued_at" (unix seconds).
 */
#ifndef MIREN_ADDON_LOGINS_H
#define MIREN_ADDON_LOGINS_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "addon/addon.h"

struct addon_logins {
	char *login;         /* the login the env gives */
	char *next_password; /* planned: the other login's new password, else "" */
	char *retired;       /* switched: the login to revoke, else "" */
	bool alt;            /* the second login may exist (a rotation was planned) */
	int64_t issued_at;   /* when the current password was made; 0: unknown */
};

/* Reads the members of o (NULL: none); login defaults to first.  Strings
 * malloc'd; release with addon_logins_release (which wipes the password). */
void addon_logins_parse(struct addon_logins *l, const json_t *o, const char *first);
/* Adds the members to o (login only when it is not first). */
void addon_logins_json(const struct addon_logins *l, const char *first, json_t *o);
void addon_logins_release(struct addon_logins *l);
/* A tenant just planned: login first, issued now. */
void addon_logins_init(struct addon_logins *l, const char *first);

/* rotate_plan: a new password for the other login, unless a rotation is
 * in motion already. */
void addon_logins_plan(struct addon_logins *l);
enum addon_rotate_phase addon_logins_phase(const struct addon_logins *l);
/* Of first and second, the one that is not l->login. */
const char *addon_logins_other(const struct addon_logins *l, const char *first, const char *second);
/* rotate_issue, once the engine let `next` in with l->next_password: the
 * env's login becomes next, *password (the engine's current password)
 * takes the planned one (the old one wiped), the old login is retired. */
void addon_logins_switch(struct addon_logins *l, const char *next, char **password);
/* rotate_revoke, once the engine revoked l->retired. */
void addon_logins_revoked(struct addon_logins *l);

/* For the invariants (addon_def.check_server).  logins: the server's
 * logins that may log in.  Unless a rotation is in motion, appends a
 * violation when l->login may not log in or the other one (of first and
 * second) may. */
void addon_logins_check(const struct addon_logins *l, const char *server_id, const char *app,
			const char *first, const char *second, char *const *logins, size_t n,
			json_t *violations);
/* Whether the server's names (have) must hold the second login: once a
 * rotation made it, and while one is in motion only if it is there. */
bool addon_logins_want_second(const struct addon_logins *l, const char *second, char *const *have,
			      size_t n);

#endif
