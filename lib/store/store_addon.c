/*
 * The store's addon tables: addon instances, the servers they run on, and
 * disks (see store.h).  Same rules as store.c: every call is serialised,
 * records handed out are the caller's, a failed call changes nothing.
 */
#include "store/store.h"
#include "store/store_internal.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

/* --- addons -------------------------------------------------------------- */

#define ADDON_COLS                                                                                 \
	"id, app, addon, variant, version, status, step, message, state_json, source, created_at," \
	" server, error_detail, error_hint, credentials_at, fork_json"

static void addon_row(sqlite3_stmt *s, void *p)
{
	struct addon_rec *r = p;
	r->id = col_text(s, 0);
	r->app = col_text(s, 1);
	r->addon = col_text(s, 2);
	r->variant = col_text(s, 3);
	r->version = col_text(s, 4);
	r->status = col_text(s, 5);
	r->step = sqlite3_column_int(s, 6);
	r->message = col_text(s, 7);
	r->state_json = col_text(s, 8);
	r->source = col_text(s, 9);
	r->created_at = sqlite3_column_int64(s, 10);
	r->server = col_text(s, 11);
	r->detail = col_text(s, 12);
	r->hint = col_text(s, 13);
	r->credentials_at = sqlite3_column_int64(s, 14);
	r->fork = col_text(s, 15);
}

/* Whether the last statement failed on a word outside its set (one of
 * migration 4's triggers), which is a caller's bug, not a duplicate. */
static bool word_refused(struct store *st)
{
	return sqlite3_extended_errcode(st->db) == SQLITE_CONSTRAINT_TRIGGER;
}

enum miren_err store_addon_add(struct store *st, const struct addon_rec *rec,
			       struct miren_error *err)
{
	pthread_mutex_lock(&st->lock);
	enum miren_err rc;
	sqlite3_stmt *s = prep(st,
			       "INSERT INTO addons (" ADDON_COLS
			       ") VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
			       err);
	if (!s) {
		rc = MIREN_EDB;
		goto out;
	}
	const char *v[] = {
		rec->id, rec->app, rec->addon, rec->variant, rec->version, rec->status
	};
	bind_texts(s, 1, 6, v);
	sqlite3_bind_int(s, 7, rec->step);
	const char *w[] = { rec->message ? rec->message : "",
			    rec->state_json ? rec->state_json : "{}",
			    rec->source ? rec->source : "cli" };
	bind_texts(s, 8, 3, w);
	sqlite3_bind_int64(s, 11, rec->created_at ? rec->created_at : (sqlite3_int64)time(NULL));
	sqlite3_bind_text(s, 12, rec->server ? rec->server : "", -1, SQLITE_TRANSIENT);
	const char *e[] = { rec->detail ? rec->detail : "", rec->hint ? rec->hint : "" };
	bind_texts(s, 13, 2, e);
	sqlite3_bind_int64(s, 15, rec->credentials_at);
	sqlite3_bind_text(s, 16, rec->fork ? rec->fork : "", -1, SQLITE_TRANSIENT);
	int r = sqlite3_step(s);
	sqlite3_finalize(s);
	if (r == SQLITE_DONE)
		rc = 0;
	else if (r == SQLITE_CONSTRAINT && !word_refused(st))
		rc = miren_error_set(err, MIREN_EEXISTS, "app '%s' already has addon '%s'",
				     rec->app, rec->addon);
	else
		rc = db_fail(st, err, "add addon");
out:
	pthread_mutex_unlock(&st->lock);
	return rc;
}

enum miren_err store_addon_list(struct store *st, const char *app, struct addon_rec **out,
				size_t *n, struct miren_error *err)
{
	pthread_mutex_lock(&st->lock);
	enum miren_err rc = MIREN_EDB;
	sqlite3_stmt *s = prep(st,
			       app ? "SELECT " ADDON_COLS
				     " FROM addons WHERE app = ? ORDER BY addon"
				   : "SELECT " ADDON_COLS " FROM addons ORDER BY app, addon",
			       err);
	if (s) {
		if (app)
			sqlite3_bind_text(s, 1, app, -1, SQLITE_TRANSIENT);
		rc = collect(st, s, sizeof(**out), addon_row, (void **)out, n, err);
	}
	pthread_mutex_unlock(&st->lock);
	return rc;
}

enum miren_err store_addon_get(struct store *st, const char *app, const char *addon,
			       struct addon_rec *out, struct miren_error *err)
{
	memset(out, 0, sizeof(*out));
	pthread_mutex_lock(&st->lock);
	enum miren_err rc = MIREN_EDB;
	sqlite3_stmt *s = prep(st, "SELECT " ADDON_COLS " FROM addons WHERE app = ? AND addon = ?",
			       err);
	if (s) {
		const char *v[] = { app, addon };
		bind_texts(s, 1, 2, v);
		rc = one(st, s, addon_row, out, err, "addon", addon);
		if (rc == MIREN_ENOTFOUND)
			miren_error_set(err, MIREN_ENOTFOUND, "app '%s' has no addon '%s'", app,
					addon);
	}
	pthread_mutex_unlock(&st->lock);
	return rc;
}

/*
 * The compare-and-set at the heart of every status write: sets status, step
 * and message (with its detail and hint; NULL: "") of id (and state_json
 * and server when state_json is not NULL) only if
 * the row is still (expect_status, expect_step).  Caller holds the lock.
 * Returns 0, MIREN_ECONFLICT when another writer moved the row first (the
 * row is then untouched), MIREN_ENOTFOUND when it is gone.
 */
static enum miren_err addon_cas_locked(struct store *st, const char *id, const char *expect_status,
				       int expect_step, const char *status, int step,
				       const char *message, const char *detail, const char *hint,
				       const char *state_json, const char *server,
				       struct miren_error *err)
{
	sqlite3_stmt *s = prep(st,
			       state_json
				       ? "UPDATE addons SET status = ?1, step = ?2, message = ?3,"
					 " error_detail = ?9, error_hint = ?10, state_json = ?4,"
					 " server = ?8 WHERE id = ?5 AND status = ?6 AND step = ?7"
				       : "UPDATE addons SET status = ?1, step = ?2, message = ?3,"
					 " error_detail = ?9, error_hint = ?10"
					 " WHERE id = ?5 AND status = ?6 AND step = ?7",
			       err);
	if (!s)
		return MIREN_EDB;
	sqlite3_bind_text(s, 1, status, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int(s, 2, step);
	sqlite3_bind_text(s, 3, message ? message : "", -1, SQLITE_TRANSIENT);
	if (state_json) {
		sqlite3_bind_text(s, 4, state_json, -1, SQLITE_TRANSIENT);
		sqlite3_bind_text(s, 8, server ? server : "", -1, SQLITE_TRANSIENT);
	}
	sqlite3_bind_text(s, 5, id, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(s, 6, expect_status, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int(s, 7, expect_step);
	sqlite3_bind_text(s, 9, detail ? detail : "", -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(s, 10, hint ? hint : "", -1, SQLITE_TRANSIENT);
	enum miren_err rc = step_done(st, s, err);
	if (rc || sqlite3_changes(st->db) == 1)
		return rc;
	/* Lost: say what the row is now. */
	s = prep(st, "SELECT status, step FROM addons WHERE id = ?", err);
	if (!s)
		return MIREN_EDB;
	sqlite3_bind_text(s, 1, id, -1, SQLITE_TRANSIENT);
	if (sqlite3_step(s) == SQLITE_ROW)
		rc = miren_error_set(err, MIREN_ECONFLICT,
				     "addon %s moved from %s (step %d) to %s (step %d) meanwhile",
				     id, expect_status, expect_step,
				     (const char *)sqlite3_column_text(s, 0),
				     sqlite3_column_int(s, 1));
	else
		rc = miren_error_set(err, MIREN_ENOTFOUND, "addon %s no longer exists", id);
	sqlite3_finalize(s);
	return rc;
}

/* Records state_json and server of id alone (the facts a step made). */
static enum miren_err addon_state_locked(struct store *st, const char *id, const char *state_json,
					 const char *server, struct miren_error *err)
{
	sqlite3_stmt *s = prep(st, "UPDATE addons SET state_json = ?, server = ? WHERE id = ?",
			       err);
	if (!s)
		return MIREN_EDB;
	const char *v[] = { state_json, server ? server : "", id };
	bind_texts(s, 1, 3, v);
	return step_done(st, s, err);
}

enum miren_err store_addon_update(struct store *st, const struct addon_rec *rec,
				  const char *expect_status, int expect_step,
				  struct miren_error *err)
{
	const char *state = rec->state_json ? rec->state_json : "{}";
	pthread_mutex_lock(&st->lock);
	enum miren_err rc = addon_cas_locked(st, rec->id, expect_status, expect_step, rec->status,
					     rec->step, rec->message, rec->detail, rec->hint, state,
					     rec->server, err);
	if (rc == MIREN_ECONFLICT && addon_state_locked(st, rec->id, state, rec->server, NULL) != 0)
		rc = db_fail(st, err, "record addon state");
	pthread_mutex_unlock(&st->lock);
	return rc;
}

enum miren_err store_addon_set_status(struct store *st, const char *id, const char *expect_status,
				      int expect_step, const char *status, int step,
				      const char *message, struct miren_error *err)
{
	pthread_mutex_lock(&st->lock);
	enum miren_err rc = addon_cas_locked(st, id, expect_status, expect_step, status, step,
					     message, NULL, NULL, NULL, NULL, err);
	pthread_mutex_unlock(&st->lock);
	return rc;
}

/* The env keys an instance injected are kept under its id in description
 * so several addons of one app keep their variables apart. */
enum miren_err store_addon_delete(struct store *st, const char *id, const char *expect_status,
				  struct miren_error *err)
{
	pthread_mutex_lock(&st->lock);
	enum miren_err rc = exec_sql(st, "BEGIN IMMEDIATE", err);
	if (rc)
		goto out;
	sqlite3_stmt *s = prep(st, "DELETE FROM env WHERE source = ? AND description = ?", err);
	if (!s) {
		rc = MIREN_EDB;
		goto rollback;
	}
	sqlite3_bind_int(s, 1, ENV_SOURCE_ADDON);
	char *tag = xasprintf("addon:%s", id);
	sqlite3_bind_text(s, 2, tag, -1, SQLITE_TRANSIENT);
	free(tag);
	rc = step_done(st, s, err);
	if (rc)
		goto rollback;
	s = prep(st, "DELETE FROM addons WHERE id = ? AND status = ?", err);
	if (!s) {
		rc = MIREN_EDB;
		goto rollback;
	}
	const char *v[] = { id, expect_status };
	bind_texts(s, 1, 2, v);
	rc = step_done(st, s, err);
	if (!rc && sqlite3_changes(st->db) != 1)
		rc = miren_error_set(err, MIREN_ECONFLICT, "addon %s is no longer %s", id,
				     expect_status);
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

enum miren_err addon_env_replace_locked(struct store *st, const char *app, const char *id,
					const struct env_rec *vars, size_t n_vars,
					struct miren_error *err)
{
	char *tag = xasprintf("addon:%s", id);
	enum miren_err rc = 0;
	sqlite3_stmt *s = prep(st, "DELETE FROM env WHERE source = ? AND description = ?", err);
	if (!s) {
		rc = MIREN_EDB;
		goto out;
	}
	sqlite3_bind_int(s, 1, ENV_SOURCE_ADDON);
	sqlite3_bind_text(s, 2, tag, -1, SQLITE_TRANSIENT);
	rc = step_done(st, s, err);
	for (size_t i = 0; !rc && i < n_vars; i++) {
		s = prep(st,
			 "INSERT OR REPLACE INTO env (app, service, key, source, value, sensitive,"
			 " description) VALUES (?, '', ?, ?, ?, ?, ?)",
			 err);
		if (!s) {
			rc = MIREN_EDB;
			break;
		}
		sqlite3_bind_text(s, 1, app, -1, SQLITE_TRANSIENT);
		sqlite3_bind_text(s, 2, vars[i].key, -1, SQLITE_TRANSIENT);
		sqlite3_bind_int(s, 3, ENV_SOURCE_ADDON);
		sqlite3_bind_text(s, 4, vars[i].value, -1, SQLITE_TRANSIENT);
		sqlite3_bind_int(s, 5, vars[i].sensitive);
		sqlite3_bind_text(s, 6, tag, -1, SQLITE_TRANSIENT);
		rc = step_done(st, s, err);
	}
out:
	free(tag);
	return rc;
}

enum miren_err store_addon_activate(struct store *st, const struct addon_rec *rec,
				    const char *expect_status, int expect_step,
				    const struct env_rec *vars, size_t n_vars,
				    struct miren_error *err)
{
	pthread_mutex_lock(&st->lock);
	enum miren_err rc = exec_sql(st, "BEGIN IMMEDIATE", err);
	if (rc)
		goto out;
	/* The transition first: a lost race writes no env (for an app that
	 * may be gone). */
	rc = addon_cas_locked(st, rec->id, expect_status, expect_step, rec->status, rec->step,
			      rec->message, rec->detail, rec->hint,
			      rec->state_json ? rec->state_json : "{}", rec->server, err);
	if (rc)
		goto rollback;
	/* The env written below holds the credentials issued now. */
	sqlite3_stmt *s = prep(st, "UPDATE addons SET credentials_at = ? WHERE id = ?", err);
	if (!s) {
		rc = MIREN_EDB;
		goto rollback;
	}
	sqlite3_bind_int64(s, 1, (sqlite3_int64)time(NULL));
	sqlite3_bind_text(s, 2, rec->id, -1, SQLITE_TRANSIENT);
	rc = step_done(st, s, err);
	if (!rc)
		rc = addon_env_replace_locked(st, rec->app, rec->id, vars, n_vars, err);
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

enum miren_err store_addon_credentials_issued(struct store *st, const char *id, int64_t at,
					      struct miren_error *err)
{
	pthread_mutex_lock(&st->lock);
	enum miren_err rc = MIREN_EDB;
	sqlite3_stmt *s = prep(st, "UPDATE addons SET credentials_at = ? WHERE id = ?", err);
	if (s) {
		sqlite3_bind_int64(s, 1, at ? (sqlite3_int64)at : (sqlite3_int64)time(NULL));
		sqlite3_bind_text(s, 2, id, -1, SQLITE_TRANSIENT);
		rc = step_done(st, s, err);
		if (!rc && sqlite3_changes(st->db) != 1)
			rc = miren_error_set(err, MIREN_ENOTFOUND, "addon %s not found", id);
	}
	pthread_mutex_unlock(&st->lock);
	return rc;
}

enum miren_err store_addon_count_on_server(struct store *st, const char *server_id, int *count,
					   struct miren_error *err)
{
	pthread_mutex_lock(&st->lock);
	enum miren_err rc = MIREN_EDB;
	sqlite3_stmt *s = prep(st,
			       "SELECT (SELECT COUNT(*) FROM addons WHERE server = ?1) +"
			       " (SELECT COUNT(*) FROM addon_changes WHERE server = ?1)",
			       err);
	if (s) {
		sqlite3_bind_text(s, 1, server_id, -1, SQLITE_TRANSIENT);
		if (sqlite3_step(s) == SQLITE_ROW) {
			*count = sqlite3_column_int(s, 0);
			rc = 0;
		} else {
			rc = db_fail(st, err, "count addons");
		}
		sqlite3_finalize(s);
	}
	pthread_mutex_unlock(&st->lock);
	return rc;
}

void addon_rec_release(struct addon_rec *r)
{
	free(r->id);
	free(r->app);
	free(r->addon);
	free(r->variant);
	free(r->version);
	free(r->status);
	free(r->message);
	free(r->detail);
	free(r->hint);
	free(r->state_json);
	free(r->source);
	free(r->server);
	free(r->fork);
	memset(r, 0, sizeof(*r));
}

void addon_recs_free(struct addon_rec *r, size_t n)
{
	for (size_t i = 0; i < n; i++)
		addon_rec_release(&r[i]);
	free(r);
}

/* --- servers ------------------------------------------------------------- */

#define SERVER_COLS "id, kind, disk, address, port, state_json, created_at, engine"

static void server_row(sqlite3_stmt *s, void *p)
{
	struct server_rec *r = p;
	r->id = col_text(s, 0);
	r->kind = col_text(s, 1);
	r->disk = col_text(s, 2);
	r->address = col_text(s, 3);
	r->port = sqlite3_column_int(s, 4);
	r->state_json = col_text(s, 5);
	r->created_at = sqlite3_column_int64(s, 6);
	r->engine = col_text(s, 7);
}

enum miren_err store_server_add(struct store *st, const struct server_rec *rec,
				struct miren_error *err)
{
	pthread_mutex_lock(&st->lock);
	enum miren_err rc;
	sqlite3_stmt *s = prep(st,
			       "INSERT INTO servers (" SERVER_COLS ") VALUES (?,?,?,?,?,?,?,?)"
			       " ON CONFLICT (id) DO NOTHING",
			       err);
	if (!s) {
		rc = MIREN_EDB;
		goto out;
	}
	const char *v[] = { rec->id, rec->kind, rec->disk, rec->address };
	bind_texts(s, 1, 4, v);
	sqlite3_bind_int(s, 5, rec->port);
	sqlite3_bind_text(s, 6, rec->state_json ? rec->state_json : "{}", -1, SQLITE_TRANSIENT);
	sqlite3_bind_int64(s, 7, rec->created_at ? rec->created_at : (sqlite3_int64)time(NULL));
	sqlite3_bind_text(s, 8, rec->engine ? rec->engine : "", -1, SQLITE_TRANSIENT);
	int r = sqlite3_step(s);
	sqlite3_finalize(s);
	if (r == SQLITE_DONE)
		rc = 0;
	else if (r == SQLITE_CONSTRAINT && !word_refused(st))
		rc = miren_error_set(err, MIREN_EEXISTS, "address %s or disk %s is already in use",
				     rec->address, rec->disk);
	else
		rc = db_fail(st, err, "add server");
out:
	pthread_mutex_unlock(&st->lock);
	return rc;
}

enum miren_err store_server_get(struct store *st, const char *id, struct server_rec *out,
				struct miren_error *err)
{
	memset(out, 0, sizeof(*out));
	pthread_mutex_lock(&st->lock);
	enum miren_err rc = MIREN_EDB;
	sqlite3_stmt *s = prep(st, "SELECT " SERVER_COLS " FROM servers WHERE id = ?", err);
	if (s) {
		sqlite3_bind_text(s, 1, id, -1, SQLITE_TRANSIENT);
		rc = one(st, s, server_row, out, err, "server", id);
	}
	pthread_mutex_unlock(&st->lock);
	return rc;
}

enum miren_err store_server_find_kind(struct store *st, const char *engine, const char *kind,
				      struct server_rec *out, struct miren_error *err)
{
	memset(out, 0, sizeof(*out));
	pthread_mutex_lock(&st->lock);
	enum miren_err rc = MIREN_EDB;
	sqlite3_stmt *s = prep(st,
			       "SELECT " SERVER_COLS " FROM servers WHERE engine = ? AND kind = ?"
			       " ORDER BY created_at, id LIMIT 1",
			       err);
	if (s) {
		const char *v[] = { engine, kind };
		bind_texts(s, 1, 2, v);
		rc = one(st, s, server_row, out, err, "server of kind", kind);
	}
	pthread_mutex_unlock(&st->lock);
	return rc;
}

enum miren_err store_server_list(struct store *st, struct server_rec **out, size_t *n,
				 struct miren_error *err)
{
	pthread_mutex_lock(&st->lock);
	enum miren_err rc = MIREN_EDB;
	sqlite3_stmt *s = prep(st, "SELECT " SERVER_COLS " FROM servers ORDER BY id", err);
	if (s)
		rc = collect(st, s, sizeof(**out), server_row, (void **)out, n, err);
	pthread_mutex_unlock(&st->lock);
	return rc;
}

enum miren_err store_server_update_state(struct store *st, const char *id, const char *state_json,
					 struct miren_error *err)
{
	pthread_mutex_lock(&st->lock);
	enum miren_err rc = MIREN_EDB;
	sqlite3_stmt *s = prep(st, "UPDATE servers SET state_json = ? WHERE id = ?", err);
	if (s) {
		const char *v[] = { state_json, id };
		bind_texts(s, 1, 2, v);
		rc = step_done(st, s, err);
	}
	pthread_mutex_unlock(&st->lock);
	return rc;
}

/* Deletes by key from table; a missing row is success (idempotent steps). */
static enum miren_err delete_by(struct store *st, const char *sql, const char *key,
				struct miren_error *err)
{
	pthread_mutex_lock(&st->lock);
	enum miren_err rc = MIREN_EDB;
	sqlite3_stmt *s = prep(st, sql, err);
	if (s) {
		sqlite3_bind_text(s, 1, key, -1, SQLITE_TRANSIENT);
		rc = step_done(st, s, err);
	}
	pthread_mutex_unlock(&st->lock);
	return rc;
}

enum miren_err store_server_delete(struct store *st, const char *id, struct miren_error *err)
{
	return delete_by(st, "DELETE FROM servers WHERE id = ?", id, err);
}

enum miren_err store_server_addresses(struct store *st, char ***out, size_t *n,
				      struct miren_error *err)
{
	pthread_mutex_lock(&st->lock);
	enum miren_err rc = MIREN_EDB;
	sqlite3_stmt *s = prep(st, "SELECT address FROM servers", err);
	if (s)
		rc = collect(st, s, sizeof(char *), text_row, (void **)out, n, err);
	pthread_mutex_unlock(&st->lock);
	return rc;
}

void server_rec_release(struct server_rec *r)
{
	free(r->id);
	free(r->engine);
	free(r->kind);
	free(r->disk);
	free(r->address);
	free(r->state_json);
	memset(r, 0, sizeof(*r));
}

void server_recs_free(struct server_rec *r, size_t n)
{
	for (size_t i = 0; i < n; i++)
		server_rec_release(&r[i]);
	free(r);
}

/* --- disks --------------------------------------------------------------- */

#define DISK_COLS "name, size_bytes, created_by, status, created_at"

static void disk_row(sqlite3_stmt *s, void *p)
{
	struct disk_rec *r = p;
	r->name = col_text(s, 0);
	r->size_bytes = sqlite3_column_int64(s, 1);
	r->created_by = col_text(s, 2);
	r->status = col_text(s, 3);
	r->created_at = sqlite3_column_int64(s, 4);
}

enum miren_err store_disk_put(struct store *st, const struct disk_rec *rec, struct miren_error *err)
{
	pthread_mutex_lock(&st->lock);
	enum miren_err rc = MIREN_EDB;
	sqlite3_stmt *s = prep(st,
			       "INSERT INTO disks (" DISK_COLS ") VALUES (?,?,?,?,?)"
			       " ON CONFLICT (name) DO UPDATE SET size_bytes = excluded.size_bytes,"
			       " created_by = excluded.created_by, status = excluded.status",
			       err);
	if (s) {
		sqlite3_bind_text(s, 1, rec->name, -1, SQLITE_TRANSIENT);
		sqlite3_bind_int64(s, 2, rec->size_bytes);
		const char *v[] = { rec->created_by, rec->status };
		bind_texts(s, 3, 2, v);
		sqlite3_bind_int64(s, 5,
				   rec->created_at ? rec->created_at : (sqlite3_int64)time(NULL));
		rc = step_done(st, s, err);
	}
	pthread_mutex_unlock(&st->lock);
	return rc;
}

enum miren_err store_disk_get(struct store *st, const char *name, struct disk_rec *out,
			      struct miren_error *err)
{
	memset(out, 0, sizeof(*out));
	pthread_mutex_lock(&st->lock);
	enum miren_err rc = MIREN_EDB;
	sqlite3_stmt *s = prep(st, "SELECT " DISK_COLS " FROM disks WHERE name = ?", err);
	if (s) {
		sqlite3_bind_text(s, 1, name, -1, SQLITE_TRANSIENT);
		rc = one(st, s, disk_row, out, err, "disk", name);
		if (rc == MIREN_ENOTFOUND)
			miren_error_hint(err, "run 'miren debug disk list' to see the disks");
	}
	pthread_mutex_unlock(&st->lock);
	return rc;
}

enum miren_err store_disk_list(struct store *st, struct disk_rec **out, size_t *n,
			       struct miren_error *err)
{
	pthread_mutex_lock(&st->lock);
	enum miren_err rc = MIREN_EDB;
	sqlite3_stmt *s = prep(st, "SELECT " DISK_COLS " FROM disks ORDER BY name", err);
	if (s)
		rc = collect(st, s, sizeof(**out), disk_row, (void **)out, n, err);
	pthread_mutex_unlock(&st->lock);
	return rc;
}

enum miren_err store_disk_delete(struct store *st, const char *name, struct miren_error *err)
{
	return delete_by(st, "DELETE FROM disks WHERE name = ?", name, err);
}

void disk_rec_release(struct disk_rec *r)
{
	free(r->name);
	free(r->created_by);
	free(r->status);
	memset(r, 0, sizeof(*r));
}

void disk_recs_free(struct disk_rec *r, size_t n)
{
	for (size_t i = 0; i < n; i++)
		disk_rec_release(&r[i]);
	free(r);
}

/* --- settings ------------------------------------------------------------ */

enum miren_err store_setting_get(struct store *st, const char *key, char **value,
				 struct miren_error *err)
{
	*value = NULL;
	pthread_mutex_lock(&st->lock);
	enum miren_err rc = MIREN_EDB;
	sqlite3_stmt *s = prep(st, "SELECT value FROM settings WHERE key = ?", err);
	if (s) {
		sqlite3_bind_text(s, 1, key, -1, SQLITE_TRANSIENT);
		rc = one(st, s, text_row, value, err, "setting", key);
	}
	pthread_mutex_unlock(&st->lock);
	return rc;
}

enum miren_err store_setting_ensure(struct store *st, const char *key, const char *value,
				    char **value_out, struct miren_error *err)
{
	pthread_mutex_lock(&st->lock);
	enum miren_err rc = MIREN_EDB;
	sqlite3_stmt *s = prep(st,
			       "INSERT INTO settings (key, value) VALUES (?, ?)"
			       " ON CONFLICT (key) DO NOTHING",
			       err);
	if (s) {
		const char *v[] = { key, value };
		bind_texts(s, 1, 2, v);
		rc = step_done(st, s, err);
	}
	pthread_mutex_unlock(&st->lock);
	return rc ? rc : store_setting_get(st, key, value_out, err);
}

enum miren_err store_setting_set(struct store *st, const char *key, const char *value,
				 struct miren_error *err)
{
	pthread_mutex_lock(&st->lock);
	enum miren_err rc = MIREN_EDB;
	sqlite3_stmt *s = prep(st,
			       value ? "INSERT INTO settings (key, value) VALUES (?, ?)"
				       " ON CONFLICT (key) DO UPDATE SET value = excluded.value"
				     : "DELETE FROM settings WHERE key = ?",
			       err);
	if (s) {
		const char *v[] = { key, value };
		bind_texts(s, 1, value ? 2 : 1, v);
		rc = step_done(st, s, err);
	}
	pthread_mutex_unlock(&st->lock);
	return rc;
}
