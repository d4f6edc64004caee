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
int db_fail(struct store *st, struct miren_error *err, const char *what);
int exec_sql(struct store *st, const char *sql, struct miren_error *err);
/* NULL with err filled on failure. */
sqlite3_stmt *prep(struct store *st, const char *sql, struct miren_error *err);
/* A copy of column i ("" for NULL). */
char *col_text(sqlite3_stmt *s, int i);
/* Steps a statement that returns no rows and finalizes it. */
int step_done(struct store *st, sqlite3_stmt *s, struct miren_error *err);

#endif
