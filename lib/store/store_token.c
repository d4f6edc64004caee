/* API tokens in the SQLite store; see store.h. */
#include "store/store.h"
#include "store/store_internal.h"

#include <stdlib.h>
#include <string.h>

#define TOKEN_COLS "name, hash, role, apps, created_at, expires_at, revoked_at, last_used_at"

static void token_row(sqlite3_stmt *s, void *p)
{
	struct token_rec *r = p;
	r->name = col_text(s, 0);
	r->hash = col_text(s, 1);
	r->role = col_text(s, 2);
	r->apps = col_text(s, 3);
	r->created_at = sqlite3_column_int64(s, 4);
	r->expires_at = sqlite3_column_int64(s, 5);
	r->revoked_at = sqlite3_column_int64(s, 6);
	r->last_used_at = sqlite3_column_int64(s, 7);
}

enum miren_err store_token_insert(struct store *st, const struct token_rec *rec,
				  struct miren_error *err)
{
	pthread_mutex_lock(&st->lock);
	enum miren_err rc = MIREN_EDB;
	sqlite3_stmt *s = prep(st,
			       "INSERT INTO tokens (name, hash, role, apps, created_at, expires_at)"
			       " VALUES (?,?,?,?,?,?) ON CONFLICT (name) DO NOTHING",
			       err);
	if (s) {
		const char *v[] = { rec->name, rec->hash, rec->role, rec->apps };
		bind_texts(s, 1, 4, v);
		sqlite3_bind_int64(s, 5, rec->created_at);
		sqlite3_bind_int64(s, 6, rec->expires_at);
		rc = step_done(st, s, err);
		if (!rc && sqlite3_changes(st->db) == 0) {
			rc = miren_error_set(err, MIREN_EEXISTS, "a token named '%s' exists",
					     rec->name);
			miren_error_hint(err,
					 "choose another name, or revoke it first with "
					 "'miren auth token revoke %s'",
					 rec->name);
		}
	}
	pthread_mutex_unlock(&st->lock);
	return rc;
}

enum miren_err store_token_by_hash(struct store *st, const char *hash, struct token_rec *out,
				   struct miren_error *err)
{
	memset(out, 0, sizeof(*out));
	pthread_mutex_lock(&st->lock);
	enum miren_err rc = MIREN_EDB;
	sqlite3_stmt *s = prep(st, "SELECT " TOKEN_COLS " FROM tokens WHERE hash = ?", err);
	if (s) {
		sqlite3_bind_text(s, 1, hash, -1, SQLITE_TRANSIENT);
		rc = one(st, s, token_row, out, err, "token", "(given)");
	}
	pthread_mutex_unlock(&st->lock);
	return rc;
}

enum miren_err store_token_list(struct store *st, struct token_rec **out, size_t *n,
				struct miren_error *err)
{
	pthread_mutex_lock(&st->lock);
	enum miren_err rc = MIREN_EDB;
	sqlite3_stmt *s = prep(st, "SELECT " TOKEN_COLS " FROM tokens ORDER BY name", err);
	if (s)
		rc = collect(st, s, sizeof(**out), token_row, (void **)out, n, err);
	pthread_mutex_unlock(&st->lock);
	return rc;
}

enum miren_err store_token_revoke(struct store *st, const char *name, int64_t at,
				  struct miren_error *err)
{
	pthread_mutex_lock(&st->lock);
	enum miren_err rc = MIREN_EDB;
	sqlite3_stmt *s = prep(st, "UPDATE tokens SET revoked_at = ? WHERE name = ?", err);
	if (s) {
		sqlite3_bind_int64(s, 1, at);
		sqlite3_bind_text(s, 2, name, -1, SQLITE_TRANSIENT);
		rc = step_done(st, s, err);
		if (!rc && sqlite3_changes(st->db) == 0) {
			rc = miren_error_set(err, MIREN_ENOTFOUND, "token '%s' not found", name);
			miren_error_hint(err, "'miren auth token list' shows the tokens");
		}
	}
	pthread_mutex_unlock(&st->lock);
	return rc;
}

enum miren_err store_token_used(struct store *st, const char *hash, int64_t at,
				struct miren_error *err)
{
	pthread_mutex_lock(&st->lock);
	enum miren_err rc = MIREN_EDB;
	sqlite3_stmt *s = prep(st, "UPDATE tokens SET last_used_at = ? WHERE hash = ?", err);
	if (s) {
		sqlite3_bind_int64(s, 1, at);
		sqlite3_bind_text(s, 2, hash, -1, SQLITE_TRANSIENT);
		rc = step_done(st, s, err);
	}
	pthread_mutex_unlock(&st->lock);
	return rc;
}

void token_rec_release(struct token_rec *r)
{
	free(r->name);
	free(r->hash);
	free(r->role);
	free(r->apps);
	memset(r, 0, sizeof(*r));
}

void token_recs_free(struct token_rec *r, size_t n)
{
	for (size_t i = 0; i < n; i++)
		token_rec_release(&r[i]);
	free(r);
}
