/*
 * What the SQLite store's source files share; not part of the interface.
 */
#ifndef MIREN_STORE_INTERNAL_H
#define MIREN_STORE_INTERNAL_H

#include <pthread.h>
#include <sqlite3.h>

#include "util/err.h"

struct store {
	sqlite3 *db;
	pthread_mutex_t lock; /* every call holds it */
};

/* Fills err with the engine's message; returns MIREN_EDB. */
enum miren_err db_fail(struct store *st, struct miren_error *err, const char *what);
enum miren_err exec_sql(struct store *st, const char *sql, struct miren_error *err);
/* NULL with err filled on failure. */
sqlite3_stmt *prep(struct store *st, const char *sql, struct miren_error *err);
/* A copy of column i ("" for NULL). */
char *col_text(sqlite3_stmt *s, int i);
/* Steps a statement that returns no rows and finalizes it. */
enum miren_err step_done(struct store *st, sqlite3_stmt *s, struct miren_error *err);

/* Turns the current row of s into the record at rec. */
typedef void (*row_fn)(sqlite3_stmt *s, void *rec);
/* Steps s to the end (and finalizes it), appending each row to *out. */
enum miren_err collect(struct store *st, sqlite3_stmt *s, size_t elem, row_fn fn, void **out,
		       size_t *n, struct miren_error *err);
/* Steps s for one row into rec, or MIREN_ENOTFOUND ("WHAT 'NAME' not found"). */
enum miren_err one(struct store *st, sqlite3_stmt *s, row_fn fn, void *rec, struct miren_error *err,
		   const char *what, const char *name);
/* Binds v[0..n-1] as text from parameter first on. */
void bind_texts(sqlite3_stmt *s, int first, int n, const char *const *v);
/* Replaces the env of addon instance id (its rows tagged "addon:<id>")
 * of app with vars; the caller holds the lock, inside a transaction. */
struct env_rec;
enum miren_err addon_env_replace_locked(struct store *st, const char *app, const char *id,
					const struct env_rec *vars, size_t n_vars,
					struct miren_error *err);
/* Row function for a single text column (a char *). */
void text_row(sqlite3_stmt *s, void *rec);

#endif
