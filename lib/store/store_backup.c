/* Backup schedules in the SQLite store; see store.h. */
#include "store/store.h"
#include "store/store_internal.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#define SCHED_COLS                                                                            \
	"app, addon, every_s, keep, source, created_at, last_ok_at, last_try_at, last_error," \
	" last_id"

static void sched_row(sqlite3_stmt *s, void *p)
{
	struct schedule_rec *r = p;
	r->app = col_text(s, 0);
	r->addon = col_text(s, 1);
	r->every_s = sqlite3_column_int64(s, 2);
	r->keep = sqlite3_column_int(s, 3);
	r->source = col_text(s, 4);
	r->created_at = sqlite3_column_int64(s, 5);
	r->last_ok_at = sqlite3_column_int64(s, 6);
	r->last_try_at = sqlite3_column_int64(s, 7);
	r->last_error = col_text(s, 8);
	r->last_id = col_text(s, 9);
}

enum miren_err store_schedule_put(struct store *st, const struct schedule_rec *rec,
				  struct miren_error *err)
{
	pthread_mutex_lock(&st->lock);
	enum miren_err rc = MIREN_EDB;
	sqlite3_stmt *s = prep(st,
			       "INSERT INTO backup_schedules (app, addon, every_s, keep, source,"
			       " created_at) VALUES (?,?,?,?,?,?)"
			       " ON CONFLICT (app, addon) DO UPDATE SET every_s = excluded.every_s,"
			       " keep = excluded.keep, source = excluded.source",
			       err);
	if (s) {
		const char *v[] = { rec->app, rec->addon };
		bind_texts(s, 1, 2, v);
		sqlite3_bind_int64(s, 3, rec->every_s);
		sqlite3_bind_int(s, 4, rec->keep);
		sqlite3_bind_text(s, 5, rec->source, -1, SQLITE_TRANSIENT);
		sqlite3_bind_int64(s, 6,
				   rec->created_at ? rec->created_at : (sqlite3_int64)time(NULL));
		rc = step_done(st, s, err);
	}
	pthread_mutex_unlock(&st->lock);
	return rc;
}

enum miren_err store_schedule_get(struct store *st, const char *app, const char *addon,
				  struct schedule_rec *out, struct miren_error *err)
{
	memset(out, 0, sizeof(*out));
	pthread_mutex_lock(&st->lock);
	enum miren_err rc = MIREN_EDB;
	sqlite3_stmt *s = prep(st,
			       "SELECT " SCHED_COLS " FROM backup_schedules WHERE app = ? AND"
			       " addon = ?",
			       err);
	if (s) {
		const char *v[] = { app, addon };
		bind_texts(s, 1, 2, v);
		rc = one(st, s, sched_row, out, err, "backup schedule of", addon);
	}
	pthread_mutex_unlock(&st->lock);
	return rc;
}

enum miren_err store_schedule_list(struct store *st, const char *app, struct schedule_rec **out,
				   size_t *n, struct miren_error *err)
{
	pthread_mutex_lock(&st->lock);
	enum miren_err rc = MIREN_EDB;
	sqlite3_stmt *s = prep(st,
			       app ? "SELECT " SCHED_COLS " FROM backup_schedules WHERE app = ?"
				     " ORDER BY app, addon"
				   : "SELECT " SCHED_COLS
				     " FROM backup_schedules ORDER BY app, addon",
			       err);
	if (s) {
		if (app)
			sqlite3_bind_text(s, 1, app, -1, SQLITE_TRANSIENT);
		rc = collect(st, s, sizeof(**out), sched_row, (void **)out, n, err);
	}
	pthread_mutex_unlock(&st->lock);
	return rc;
}

enum miren_err store_schedule_delete(struct store *st, const char *app, const char *addon,
				     struct miren_error *err)
{
	pthread_mutex_lock(&st->lock);
	enum miren_err rc = MIREN_EDB;
	sqlite3_stmt *s = prep(st, "DELETE FROM backup_schedules WHERE app = ? AND addon = ?", err);
	if (s) {
		const char *v[] = { app, addon };
		bind_texts(s, 1, 2, v);
		rc = step_done(st, s, err);
		if (!rc && sqlite3_changes(st->db) == 0)
			rc = miren_error_set(err, MIREN_ENOTFOUND,
					     "addon %s of app '%s' has no "
					     "backup schedule",
					     addon, app);
	}
	pthread_mutex_unlock(&st->lock);
	return rc;
}

enum miren_err store_schedule_ran(struct store *st, const char *app, const char *addon, int64_t at,
				  const char *id, const char *error, struct miren_error *err)
{
	pthread_mutex_lock(&st->lock);
	enum miren_err rc = MIREN_EDB;
	sqlite3_stmt *s = prep(st,
			       id ? "UPDATE backup_schedules SET last_try_at = ?1, last_ok_at = ?1,"
				    " last_error = '', last_id = ?4 WHERE app = ?2 AND addon = ?3"
				  : "UPDATE backup_schedules SET last_try_at = ?1, last_error = ?4"
				    " WHERE app = ?2 AND addon = ?3",
			       err);
	if (s) {
		sqlite3_bind_int64(s, 1, at);
		const char *v[] = { app, addon, id ? id : (error ? error : "") };
		bind_texts(s, 2, 3, v);
		rc = step_done(st, s, err);
	}
	pthread_mutex_unlock(&st->lock);
	return rc;
}

void schedule_rec_release(struct schedule_rec *r)
{
	free(r->app);
	free(r->addon);
	free(r->source);
	free(r->last_error);
	free(r->last_id);
	memset(r, 0, sizeof(*r));
}

void schedule_recs_free(struct schedule_rec *r, size_t n)
{
	for (size_t i = 0; i < n; i++)
		schedule_rec_release(&r[i]);
	free(r);
}
