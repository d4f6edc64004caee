/*
 * The store's variant changes in motion (see store.h, "variant changes").
 * Same rules as store.c: every call is serialised, records handed out are
 * the caller's, a failed call changes nothing.
 */
#include "store/store.h"
#include "store/store_internal.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#define CHANGE_COLS                                                              \
	"addon_id, app, addon, phase, step, id, variant, version, from_variant," \
	" to_variant, state_json, server, online, created_at"

static void change_row(sqlite3_stmt *s, void *p)
{
	struct change_rec *r = p;
	r->addon_id = col_text(s, 0);
	r->app = col_text(s, 1);
	r->addon = col_text(s, 2);
	r->phase = col_text(s, 3);
	r->step = sqlite3_column_int(s, 4);
	r->id = col_text(s, 5);
	r->variant = col_text(s, 6);
	r->version = col_text(s, 7);
	r->from_variant = col_text(s, 8);
	r->to_variant = col_text(s, 9);
	r->state_json = col_text(s, 10);
	r->server = col_text(s, 11);
	r->online = sqlite3_column_int(s, 12) != 0;
	r->created_at = sqlite3_column_int64(s, 13);
}

static const char *or_empty(const char *s)
{
	return s ? s : "";
}

enum miren_err store_change_add(struct store *st, const struct change_rec *rec,
				struct miren_error *err)
{
	pthread_mutex_lock(&st->lock);
	enum miren_err rc = MIREN_EDB;
	sqlite3_stmt *s = prep(st,
			       "INSERT INTO addon_changes (" CHANGE_COLS
			       ") VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
			       err);
	if (s) {
		const char *v[] = { rec->addon_id, rec->app, rec->addon, rec->phase };
		bind_texts(s, 1, 4, v);
		sqlite3_bind_int(s, 5, rec->step);
		const char *w[] = { rec->id,
				    rec->variant,
				    rec->version,
				    rec->from_variant,
				    rec->to_variant,
				    or_empty(rec->state_json),
				    or_empty(rec->server) };
		bind_texts(s, 6, 7, w);
		sqlite3_bind_int(s, 13, rec->online);
		sqlite3_bind_int64(s, 14,
				   rec->created_at ? rec->created_at : (sqlite3_int64)time(NULL));
		int r = sqlite3_step(s);
		sqlite3_finalize(s);
		if (r == SQLITE_DONE)
			rc = 0;
		else if (r == SQLITE_CONSTRAINT)
			rc = miren_error_set(err, MIREN_EEXISTS,
					     "addon %s of app '%s' is already changing variant",
					     rec->addon, rec->app);
		else
			rc = db_fail(st, err, "record a variant change");
	}
	pthread_mutex_unlock(&st->lock);
	return rc;
}

enum miren_err store_change_get(struct store *st, const char *addon_id, struct change_rec *out,
				struct miren_error *err)
{
	memset(out, 0, sizeof(*out));
	pthread_mutex_lock(&st->lock);
	enum miren_err rc = MIREN_EDB;
	sqlite3_stmt *s = prep(st, "SELECT " CHANGE_COLS " FROM addon_changes WHERE addon_id = ?",
			       err);
	if (s) {
		sqlite3_bind_text(s, 1, addon_id, -1, SQLITE_TRANSIENT);
		rc = one(st, s, change_row, out, err, "variant change of addon", addon_id);
	}
	pthread_mutex_unlock(&st->lock);
	return rc;
}

enum miren_err store_change_list(struct store *st, struct change_rec **out, size_t *n,
				 struct miren_error *err)
{
	pthread_mutex_lock(&st->lock);
	enum miren_err rc = MIREN_EDB;
	sqlite3_stmt *s = prep(st, "SELECT " CHANGE_COLS " FROM addon_changes ORDER BY created_at",
			       err);
	if (s)
		rc = collect(st, s, sizeof(**out), change_row, (void **)out, n, err);
	pthread_mutex_unlock(&st->lock);
	return rc;
}

/* The row's phase, step, state, server and online; caller holds the lock. */
static enum miren_err update_locked(struct store *st, const struct change_rec *rec,
				    const char *expect_phase, struct miren_error *err)
{
	sqlite3_stmt *s = prep(st,
			       "UPDATE addon_changes SET phase = ?, step = ?, variant = ?,"
			       " version = ?, state_json = ?, server = ?, online = ?"
			       " WHERE addon_id = ? AND (?9 IS NULL OR phase = ?9)",
			       err);
	if (!s)
		return MIREN_EDB;
	sqlite3_bind_text(s, 1, rec->phase, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int(s, 2, rec->step);
	const char *v[] = { rec->variant, rec->version, or_empty(rec->state_json),
			    or_empty(rec->server) };
	bind_texts(s, 3, 4, v);
	sqlite3_bind_int(s, 7, rec->online);
	sqlite3_bind_text(s, 8, rec->addon_id, -1, SQLITE_TRANSIENT);
	if (expect_phase)
		sqlite3_bind_text(s, 9, expect_phase, -1, SQLITE_TRANSIENT);
	enum miren_err rc = step_done(st, s, err);
	if (!rc && sqlite3_changes(st->db) != 1)
		rc = miren_error_set(err, MIREN_ECONFLICT,
				     "the variant change of addon %s of app '%s' moved meanwhile",
				     rec->addon, rec->app);
	return rc;
}

enum miren_err store_change_update(struct store *st, const struct change_rec *rec,
				   struct miren_error *err)
{
	pthread_mutex_lock(&st->lock);
	enum miren_err rc = update_locked(st, rec, NULL, err);
	pthread_mutex_unlock(&st->lock);
	return rc;
}

enum miren_err store_change_delete(struct store *st, const char *addon_id, struct miren_error *err)
{
	pthread_mutex_lock(&st->lock);
	enum miren_err rc = MIREN_EDB;
	sqlite3_stmt *s = prep(st, "DELETE FROM addon_changes WHERE addon_id = ?", err);
	if (s) {
		sqlite3_bind_text(s, 1, addon_id, -1, SQLITE_TRANSIENT);
		rc = step_done(st, s, err);
	}
	pthread_mutex_unlock(&st->lock);
	return rc;
}

enum miren_err store_change_switch(struct store *st, const struct addon_rec *now,
				   const struct change_rec *old, const struct env_rec *vars,
				   size_t n_vars, struct miren_error *err)
{
	pthread_mutex_lock(&st->lock);
	enum miren_err rc = exec_sql(st, "BEGIN IMMEDIATE", err);
	if (rc)
		goto out;
	sqlite3_stmt *s = prep(st,
			       "UPDATE addons SET variant = ?, version = ?, state_json = ?,"
			       " server = ?, credentials_at = ? WHERE id = ? AND status = 'active'",
			       err);
	if (!s) {
		rc = MIREN_EDB;
		goto rollback;
	}
	const char *v[] = { now->variant, now->version, or_empty(now->state_json),
			    or_empty(now->server) };
	bind_texts(s, 1, 4, v);
	sqlite3_bind_int64(s, 5, (sqlite3_int64)time(NULL));
	sqlite3_bind_text(s, 6, now->id, -1, SQLITE_TRANSIENT);
	rc = step_done(st, s, err);
	if (!rc && sqlite3_changes(st->db) != 1)
		rc = miren_error_set(err, MIREN_ECONFLICT,
				     "addon %s of app '%s' is no longer active", now->addon,
				     now->app);
	if (!rc)
		rc = addon_env_replace_locked(st, now->app, now->id, vars, n_vars, err);
	if (!rc)
		rc = update_locked(st, old, "paused", err);
	if (!rc)
		rc = exec_sql(st, "COMMIT", err);
	if (!rc)
		goto out;
rollback:
	exec_sql(st, "ROLLBACK", NULL);
out:
	pthread_mutex_unlock(&st->lock);
	return rc;
}

void change_rec_release(struct change_rec *r)
{
	if (!r)
		return;
	free(r->addon_id);
	free(r->app);
	free(r->addon);
	free(r->phase);
	free(r->id);
	free(r->variant);
	free(r->version);
	free(r->from_variant);
	free(r->to_variant);
	free(r->state_json);
	free(r->server);
	memset(r, 0, sizeof(*r));
}

void change_recs_free(struct change_rec *r, size_t n)
{
	for (size_t i = 0; i < n; i++)
		change_rec_release(&r[i]);
	free(r);
}
