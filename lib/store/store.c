/*
 * SQLite implementation of the state store (see store.h).
 *
 * Schema changes are numbered migrations applied in order, each in its own
 * transaction together with the PRAGMA user_version bump, so a store is
 * never left half-migrated: a crash rolls the migration back whole.
 */
#include "store/store.h"
#include "util/err.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "store/store_internal.h"
#include "util/io.h"

static const char *const migrations[] = {
	/* 1: apps, releases, env */
	"CREATE TABLE apps ("
	"  name TEXT PRIMARY KEY,"
	"  created_at INTEGER NOT NULL,"
	"  current_release INTEGER NOT NULL DEFAULT 0);"
	"CREATE TABLE releases ("
	"  app TEXT NOT NULL REFERENCES apps(name) ON DELETE CASCADE,"
	"  n INTEGER NOT NULL,"
	"  created_at INTEGER NOT NULL,"
	"  source_sha256 TEXT NOT NULL,"
	"  config_json TEXT NOT NULL,"
	"  PRIMARY KEY (app, n));"
	"CREATE TABLE env ("
	"  app TEXT NOT NULL REFERENCES apps(name) ON DELETE CASCADE,"
	"  service TEXT NOT NULL DEFAULT '',"
	"  key TEXT NOT NULL,"
	"  source INTEGER NOT NULL,"
	"  value TEXT NOT NULL,"
	"  sensitive INTEGER NOT NULL DEFAULT 0,"
	"  description TEXT NOT NULL DEFAULT '',"
	"  PRIMARY KEY (app, service, key, source));",
	/* 2: addons, the servers they run on, disks */
	"CREATE TABLE addons ("
	"  id TEXT PRIMARY KEY,"
	"  app TEXT NOT NULL,"
	"  addon TEXT NOT NULL,"
	"  variant TEXT NOT NULL,"
	"  version TEXT NOT NULL,"
	"  status TEXT NOT NULL,"
	"  step INTEGER NOT NULL DEFAULT 0,"
	"  message TEXT NOT NULL DEFAULT '',"
	"  state_json TEXT NOT NULL DEFAULT '{}',"
	"  source TEXT NOT NULL DEFAULT 'cli',"
	"  created_at INTEGER NOT NULL,"
	"  UNIQUE (app, addon));"
	"CREATE TABLE servers ("
	"  id TEXT PRIMARY KEY,"
	"  kind TEXT NOT NULL,"
	"  disk TEXT NOT NULL UNIQUE,"
	"  address TEXT NOT NULL UNIQUE,"
	"  port INTEGER NOT NULL,"
	"  state_json TEXT NOT NULL DEFAULT '{}',"
	"  created_at INTEGER NOT NULL);"
	"CREATE TABLE disks ("
	"  name TEXT PRIMARY KEY,"
	"  size_bytes INTEGER NOT NULL,"
	"  created_by TEXT NOT NULL,"
	"  status TEXT NOT NULL,"
	"  created_at INTEGER NOT NULL);"
	"CREATE TABLE settings ("
	"  key TEXT PRIMARY KEY,"
	"  value TEXT NOT NULL);",
	/* 3: the engine (addon name) of each server, and the server of each
	 * addon instance as a column (the store never reads state_json after
	 * this).  Before it, every server was of the one engine of the addons
	 * of this store: a server takes the addon name of an instance on it,
	 * else of any instance. */
	"ALTER TABLE servers ADD COLUMN engine TEXT NOT NULL DEFAULT '';"
	"ALTER TABLE addons ADD COLUMN server TEXT NOT NULL DEFAULT '';"
	"UPDATE addons SET server = json_extract(state_json, '$.server')"
	"  WHERE json_valid(state_json) AND json_type(state_json, '$.server') = 'text';"
	"UPDATE servers SET engine = IFNULL((SELECT addon FROM addons WHERE"
	"  addons.server = servers.id LIMIT 1), IFNULL((SELECT addon FROM addons"
	"  ORDER BY created_at LIMIT 1), ''));",
	/* 4: the closed sets of words (store_enums.c) enforced: triggers
	 * standing for CHECK constraints, which SQLite cannot add to a table
	 * without rebuilding it (and a rebuild would have to know every
	 * column later migrations add). */
	"CREATE TRIGGER IF NOT EXISTS addons_words_insert BEFORE INSERT ON addons"
	"  WHEN NEW.status NOT IN ('pending','provisioning','active','error','deprovisioning')"
	"    OR NEW.source NOT IN ('config','cli')"
	"  BEGIN SELECT RAISE(ABORT, 'addon status or source out of range'); END;"
	"CREATE TRIGGER IF NOT EXISTS addons_words_update BEFORE UPDATE OF status, source ON addons"
	"  WHEN NEW.status NOT IN ('pending','provisioning','active','error','deprovisioning')"
	"    OR NEW.source NOT IN ('config','cli')"
	"  BEGIN SELECT RAISE(ABORT, 'addon status or source out of range'); END;"
	"CREATE TRIGGER IF NOT EXISTS servers_words_insert BEFORE INSERT ON servers"
	"  WHEN NEW.kind NOT IN ('small','shared')"
	"  BEGIN SELECT RAISE(ABORT, 'server kind out of range'); END;"
	"CREATE TRIGGER IF NOT EXISTS servers_words_update BEFORE UPDATE OF kind ON servers"
	"  WHEN NEW.kind NOT IN ('small','shared')"
	"  BEGIN SELECT RAISE(ABORT, 'server kind out of range'); END;"
	"CREATE TRIGGER IF NOT EXISTS disks_words_insert BEFORE INSERT ON disks"
	"  WHEN NEW.status NOT IN ('in use','unused')"
	"  BEGIN SELECT RAISE(ABORT, 'disk status out of range'); END;"
	"CREATE TRIGGER IF NOT EXISTS disks_words_update BEFORE UPDATE OF status ON disks"
	"  WHEN NEW.status NOT IN ('in use','unused')"
	"  BEGIN SELECT RAISE(ABORT, 'disk status out of range'); END;"
	"CREATE TRIGGER IF NOT EXISTS env_words_insert BEFORE INSERT ON env"
	"  WHEN NEW.source NOT IN (0, 1, 2)"
	"  BEGIN SELECT RAISE(ABORT, 'env source out of range'); END;"
	"CREATE TRIGGER IF NOT EXISTS env_words_update BEFORE UPDATE OF source ON env"
	"  WHEN NEW.source NOT IN (0, 1, 2)"
	"  BEGIN SELECT RAISE(ABORT, 'env source out of range'); END;",
	/* 5: an addon's error kept whole: message (in message), the cause and
	 * what to do apart, never pasted into one string */
	("ALTER TABLE addons ADD COLUMN error_detail TEXT NOT NULL DEFAULT '';"
	 "ALTER TABLE addons ADD COLUMN error_hint TEXT NOT NULL DEFAULT '';"),
	/* 6: a disk being deleted (`miren disk delete`): the record says so
	 * before its volume goes, so a daemon killed meanwhile finishes it */
	("DROP TRIGGER IF EXISTS disks_words_insert;"
	 "DROP TRIGGER IF EXISTS disks_words_update;"
	 "CREATE TRIGGER disks_words_insert BEFORE INSERT ON disks"
	 "  WHEN NEW.status NOT IN ('in use','unused','deleting')"
	 "  BEGIN SELECT RAISE(ABORT, 'disk status out of range'); END;"
	 "CREATE TRIGGER disks_words_update BEFORE UPDATE OF status ON disks"
	 "  WHEN NEW.status NOT IN ('in use','unused','deleting')"
	 "  BEGIN SELECT RAISE(ABORT, 'disk status out of range'); END;"),
	/* 7: backup schedules, one per app and addon: how often and how many
	 * to keep, from app.toml or the CLI, and how the last runs went */
	("CREATE TABLE IF NOT EXISTS backup_schedules ("
	 "  app TEXT NOT NULL REFERENCES apps(name) ON DELETE CASCADE,"
	 "  addon TEXT NOT NULL,"
	 "  every_s INTEGER NOT NULL CHECK (every_s > 0),"
	 "  keep INTEGER NOT NULL CHECK (keep > 0),"
	 "  source TEXT NOT NULL CHECK (source IN ('config','cli')),"
	 "  created_at INTEGER NOT NULL,"
	 "  last_ok_at INTEGER NOT NULL DEFAULT 0,"
	 "  last_try_at INTEGER NOT NULL DEFAULT 0,"
	 "  last_error TEXT NOT NULL DEFAULT '',"
	 "  last_id TEXT NOT NULL DEFAULT '',"
	 "  PRIMARY KEY (app, addon));"),
	/* 8: when an addon's current credentials were issued (its activation,
	 * later a rotation), for `miren addon info`.  Instances active before
	 * this got theirs when they were made. */
	("ALTER TABLE addons ADD COLUMN credentials_at INTEGER NOT NULL DEFAULT 0;"
	 "UPDATE addons SET credentials_at = created_at WHERE status = 'active';"),
	/* 9: API tokens for the TCP listeners (the hash of each, never the
	 * token), their role and the apps they may act on */
	("CREATE TABLE IF NOT EXISTS tokens ("
	 "  name TEXT PRIMARY KEY,"
	 "  hash TEXT NOT NULL UNIQUE,"
	 "  role TEXT NOT NULL CHECK (role IN ('admin','deployer','reader')),"
	 "  apps TEXT NOT NULL DEFAULT '[]',"
	 "  created_at INTEGER NOT NULL,"
	 "  expires_at INTEGER NOT NULL DEFAULT 0,"
	 "  revoked_at INTEGER NOT NULL DEFAULT 0,"
	 "  last_used_at INTEGER NOT NULL DEFAULT 0);"),
	/* 10: each release's size on disk when it was made, and which release a
	 * rollback copied (0: a deploy made it) */
	("ALTER TABLE releases ADD COLUMN size_bytes INTEGER NOT NULL DEFAULT 0;"
	 "ALTER TABLE releases ADD COLUMN rollback_of INTEGER NOT NULL DEFAULT 0;"),
	/* 11: where a forked instance's data comes from (`miren addon fork`):
	 * written with the instance, read by the reconciler's fill before the
	 * instance becomes active, kept afterwards as its origin */
	("ALTER TABLE addons ADD COLUMN fork_json TEXT NOT NULL DEFAULT '';"),
	/* 12: a variant change in motion (`miren addon change`, store_change.c):
	 * the instance beside the app's own one (the new one before the switch,
	 * the old one after it), whose resources it names; no foreign key: the
	 * old instance must be removed even when its app is gone */
	("CREATE TABLE IF NOT EXISTS addon_changes ("
	 "  addon_id TEXT PRIMARY KEY,"
	 "  app TEXT NOT NULL,"
	 "  addon TEXT NOT NULL,"
	 "  phase TEXT NOT NULL CHECK (phase IN"
	 "    ('provisioning', 'copying', 'paused', 'switched')),"
	 "  step INTEGER NOT NULL DEFAULT 0,"
	 "  id TEXT NOT NULL UNIQUE,"
	 "  variant TEXT NOT NULL,"
	 "  version TEXT NOT NULL,"
	 "  from_variant TEXT NOT NULL,"
	 "  to_variant TEXT NOT NULL,"
	 "  state_json TEXT NOT NULL DEFAULT '{}',"
	 "  server TEXT NOT NULL DEFAULT '',"
	 "  online INTEGER NOT NULL DEFAULT 0,"
	 "  created_at INTEGER NOT NULL);"),
};
#define N_MIGRATIONS ((int)(sizeof(migrations) / sizeof(migrations[0])))

enum miren_err db_fail(struct store *st, struct miren_error *err, const char *what)
{
	return miren_error_set(err, MIREN_EDB, "state store: %s: %s", what, sqlite3_errmsg(st->db));
}

enum miren_err exec_sql(struct store *st, const char *sql, struct miren_error *err)
{
	char *msg = NULL;
	if (sqlite3_exec(st->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
		miren_error_set(err, MIREN_EDB, "state store: %s", msg ? msg : "exec failed");
		sqlite3_free(msg);
		return MIREN_EDB;
	}
	return 0;
}

static int get_user_version(struct store *st)
{
	sqlite3_stmt *s;
	int v = -1;
	if (sqlite3_prepare_v2(st->db, "PRAGMA user_version", -1, &s, NULL) == SQLITE_OK) {
		if (sqlite3_step(s) == SQLITE_ROW)
			v = sqlite3_column_int(s, 0);
		sqlite3_finalize(s);
	}
	return v;
}

static enum miren_err migrate(struct store *st, struct miren_error *err)
{
	int v = get_user_version(st);
	if (v < 0)
		return db_fail(st, err, "reading schema version");
	if (v > N_MIGRATIONS)
		return miren_error_set(err, MIREN_EDB,
				       "state store schema version %d is newer than this miren "
				       "(%d)",
				       v, N_MIGRATIONS);
	for (int i = v; i < N_MIGRATIONS; i++) {
		char bump[64];
		snprintf(bump, sizeof(bump), "PRAGMA user_version = %d;", i + 1);
		enum miren_err rc = exec_sql(st, "BEGIN IMMEDIATE", err);
		if (!rc)
			rc = exec_sql(st, migrations[i], err);
		if (!rc)
			rc = exec_sql(st, bump, err);
		if (!rc)
			rc = exec_sql(st, "COMMIT", err);
		if (rc) {
			exec_sql(st, "ROLLBACK", NULL);
			return rc;
		}
	}
	return 0;
}

enum miren_err store_open(const char *path, struct store **out, struct miren_error *err)
{
	*out = NULL;
	/* Create the file 0600 ourselves so it is never briefly world-readable. */
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0)
		return miren_error_set(err, MIREN_EIO, "cannot open state store '%s': %s", path,
				       io_strerror(errno));
	fchmod(fd, 0600);
	close(fd);

	struct store *st = xcalloc(1, sizeof(*st));
	pthread_mutex_init(&st->lock, NULL);
	enum miren_err rc;
	if (sqlite3_open_v2(path, &st->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_FULLMUTEX, NULL) !=
	    SQLITE_OK) {
		rc = db_fail(st, err, "open");
		goto fail;
	}
	sqlite3_busy_timeout(st->db, 5000);
	rc = exec_sql(st,
		      "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON;",
		      err);
	if (!rc)
		rc = migrate(st, err);
	if (rc)
		goto fail;
	/* The WAL and shm files inherit nothing from the main file's mode. */
	char *side = xasprintf("%s-wal", path);
	chmod(side, 0600);
	free(side);
	side = xasprintf("%s-shm", path);
	chmod(side, 0600);
	free(side);
	*out = st;
	return 0;
fail:
	store_close(st);
	return rc;
}

void store_close(struct store *st)
{
	if (!st)
		return;
	sqlite3_close(st->db);
	pthread_mutex_destroy(&st->lock);
	free(st);
}

int store_schema_version(struct store *st)
{
	pthread_mutex_lock(&st->lock);
	int v = get_user_version(st);
	pthread_mutex_unlock(&st->lock);
	return v;
}

/* Prepares sql; on failure fills err and returns NULL. */
sqlite3_stmt *prep(struct store *st, const char *sql, struct miren_error *err)
{
	sqlite3_stmt *s = NULL;
	if (sqlite3_prepare_v2(st->db, sql, -1, &s, NULL) != SQLITE_OK) {
		db_fail(st, err, "prepare");
		return NULL;
	}
	return s;
}

char *col_text(sqlite3_stmt *s, int i)
{
	const unsigned char *t = sqlite3_column_text(s, i);
	return xstrdup(t ? (const char *)t : "");
}

/* Runs a statement that returns no rows; returns 0 or MIREN_EDB. */
enum miren_err step_done(struct store *st, sqlite3_stmt *s, struct miren_error *err)
{
	enum miren_err rc = sqlite3_step(s) == SQLITE_DONE ? 0 : db_fail(st, err, "write");
	sqlite3_finalize(s);
	return rc;
}

/* Steps s to the end, turning each row into an element of *out. */
enum miren_err collect(struct store *st, sqlite3_stmt *s, size_t elem, row_fn fn, void **out,
		       size_t *n, struct miren_error *err)
{
	size_t cap = 0;
	int r;
	*out = NULL;
	*n = 0;
	while ((r = sqlite3_step(s)) == SQLITE_ROW) {
		if (*n == cap) {
			cap = cap ? cap * 2 : 8;
			*out = xrealloc(*out, cap * elem);
		}
		fn(s, (char *)*out + (*n)++ * elem);
	}
	sqlite3_finalize(s);
	return r == SQLITE_DONE ? 0 : db_fail(st, err, "read");
}

/* Steps s for one row: 0 with it in rec, or MIREN_ENOTFOUND. */
enum miren_err one(struct store *st, sqlite3_stmt *s, row_fn fn, void *rec, struct miren_error *err,
		   const char *what, const char *name)
{
	int r = sqlite3_step(s), rc = 0;
	if (r == SQLITE_ROW)
		fn(s, rec);
	else if (r == SQLITE_DONE)
		rc = miren_error_set(err, MIREN_ENOTFOUND, "%s '%s' not found", what, name);
	else
		rc = db_fail(st, err, "read");
	sqlite3_finalize(s);
	return rc;
}

void bind_texts(sqlite3_stmt *s, int first, int n, const char *const *v)
{
	for (int i = 0; i < n; i++)
		sqlite3_bind_text(s, first + i, v[i], -1, SQLITE_TRANSIENT);
}

void text_row(sqlite3_stmt *s, void *p)
{
	*(char **)p = col_text(s, 0);
}

/* --- apps --------------------------------------------------------------- */

static void app_from_row(sqlite3_stmt *s, void *p)
{
	struct app_rec *r = p;
	r->name = col_text(s, 0);
	r->created_at = sqlite3_column_int64(s, 1);
	r->current_release = sqlite3_column_int(s, 2);
}

enum miren_err store_app_list(struct store *st, struct app_rec **out, size_t *n,
			      struct miren_error *err)
{
	pthread_mutex_lock(&st->lock);
	enum miren_err rc = MIREN_EDB;
	sqlite3_stmt *s = prep(st,
			       "SELECT name, created_at, current_release FROM apps ORDER BY name",
			       err);
	if (s)
		rc = collect(st, s, sizeof(**out), app_from_row, (void **)out, n, err);
	pthread_mutex_unlock(&st->lock);
	return rc;
}

enum miren_err store_app_get(struct store *st, const char *name, struct app_rec *out,
			     struct miren_error *err)
{
	memset(out, 0, sizeof(*out));
	pthread_mutex_lock(&st->lock);
	enum miren_err rc = MIREN_EDB;
	sqlite3_stmt *s = prep(st,
			       "SELECT name, created_at, current_release FROM apps WHERE name = ?",
			       err);
	if (s) {
		sqlite3_bind_text(s, 1, name, -1, SQLITE_TRANSIENT);
		rc = one(st, s, app_from_row, out, err, "app", name);
		if (rc == MIREN_ENOTFOUND)
			miren_error_hint(err, "run 'miren app list' to see the apps");
	}
	pthread_mutex_unlock(&st->lock);
	return rc;
}

static enum miren_err app_ensure_locked(struct store *st, const char *name, struct miren_error *err)
{
	sqlite3_stmt *s = prep(st, "INSERT OR IGNORE INTO apps (name, created_at) VALUES (?, ?)",
			       err);
	if (!s)
		return MIREN_EDB;
	sqlite3_bind_text(s, 1, name, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int64(s, 2, (sqlite3_int64)time(NULL));
	return step_done(st, s, err);
}

enum miren_err store_app_ensure(struct store *st, const char *name, struct miren_error *err)
{
	pthread_mutex_lock(&st->lock);
	enum miren_err rc = app_ensure_locked(st, name, err);
	pthread_mutex_unlock(&st->lock);
	return rc;
}

enum miren_err store_app_delete(struct store *st, const char *name, struct miren_error *err)
{
	pthread_mutex_lock(&st->lock);
	enum miren_err rc;
	sqlite3_stmt *s = prep(st, "DELETE FROM apps WHERE name = ?", err);
	if (!s) {
		rc = MIREN_EDB;
		goto out;
	}
	sqlite3_bind_text(s, 1, name, -1, SQLITE_TRANSIENT);
	rc = step_done(st, s, err);
	if (!rc && sqlite3_changes(st->db) == 0)
		rc = miren_error_set(err, MIREN_ENOTFOUND, "app '%s' not found", name);
out:
	pthread_mutex_unlock(&st->lock);
	return rc;
}

void app_rec_release(struct app_rec *r)
{
	free(r->name);
	r->name = NULL;
}

void app_recs_free(struct app_rec *r, size_t n)
{
	for (size_t i = 0; i < n; i++)
		app_rec_release(&r[i]);
	free(r);
}

/* --- releases ----------------------------------------------------------- */

enum miren_err store_release_next(struct store *st, const char *app, int *n,
				  struct miren_error *err)
{
	pthread_mutex_lock(&st->lock);
	enum miren_err rc = 0;
	sqlite3_stmt *s = prep(st, "SELECT COALESCE(MAX(n), 0) + 1 FROM releases WHERE app = ?",
			       err);
	if (!s) {
		rc = MIREN_EDB;
		goto out;
	}
	sqlite3_bind_text(s, 1, app, -1, SQLITE_TRANSIENT);
	if (sqlite3_step(s) == SQLITE_ROW)
		*n = sqlite3_column_int(s, 0);
	else
		rc = db_fail(st, err, "next release");
	sqlite3_finalize(s);
out:
	pthread_mutex_unlock(&st->lock);
	return rc;
}

enum miren_err store_release_add(struct store *st, const char *app, const struct release_rec *rel,
				 struct miren_error *err)
{
	pthread_mutex_lock(&st->lock);
	enum miren_err rc = exec_sql(st, "BEGIN IMMEDIATE", err);
	if (rc)
		goto out;
	rc = app_ensure_locked(st, app, err);
	if (rc)
		goto rollback;
	sqlite3_stmt *s =
		prep(st,
		     "INSERT INTO releases (app, n, created_at, source_sha256, config_json,"
		     " size_bytes, rollback_of) VALUES (?, ?, ?, ?, ?, ?, ?)",
		     err);
	if (!s) {
		rc = MIREN_EDB;
		goto rollback;
	}
	sqlite3_bind_text(s, 1, app, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int(s, 2, rel->n);
	sqlite3_bind_int64(s, 3, (sqlite3_int64)time(NULL));
	sqlite3_bind_text(s, 4, rel->source_sha256, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(s, 5, rel->config_json, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int64(s, 6, (sqlite3_int64)rel->size_bytes);
	sqlite3_bind_int(s, 7, rel->rollback_of);
	rc = step_done(st, s, err);
	if (rc)
		goto rollback;
	s = prep(st, "UPDATE apps SET current_release = ? WHERE name = ?", err);
	if (!s) {
		rc = MIREN_EDB;
		goto rollback;
	}
	sqlite3_bind_int(s, 1, rel->n);
	sqlite3_bind_text(s, 2, app, -1, SQLITE_TRANSIENT);
	rc = step_done(st, s, err);
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

static void release_row(sqlite3_stmt *s, void *p)
{
	struct release_rec *r = p;
	r->n = sqlite3_column_int(s, 0);
	r->created_at = sqlite3_column_int64(s, 1);
	r->source_sha256 = col_text(s, 2);
	r->config_json = col_text(s, 3);
	r->size_bytes = sqlite3_column_int64(s, 4);
	r->rollback_of = sqlite3_column_int(s, 5);
}

#define RELEASE_COLUMNS "n, created_at, source_sha256, config_json, size_bytes, rollback_of"

enum miren_err store_release_get(struct store *st, const char *app, int n, struct release_rec *out,
				 struct miren_error *err)
{
	memset(out, 0, sizeof(*out));
	pthread_mutex_lock(&st->lock);
	enum miren_err rc = MIREN_EDB;
	sqlite3_stmt *s = prep(st,
			       "SELECT " RELEASE_COLUMNS " FROM releases WHERE app = ? AND n = ?",
			       err);
	if (s) {
		sqlite3_bind_text(s, 1, app, -1, SQLITE_TRANSIENT);
		sqlite3_bind_int(s, 2, n);
		rc = one(st, s, release_row, out, err, "release of app", app);
	}
	pthread_mutex_unlock(&st->lock);
	return rc;
}

enum miren_err store_release_list(struct store *st, const char *app, struct release_rec **out,
				  size_t *n, struct miren_error *err)
{
	pthread_mutex_lock(&st->lock);
	enum miren_err rc = MIREN_EDB;
	sqlite3_stmt *s = prep(st,
			       "SELECT " RELEASE_COLUMNS
			       " FROM releases WHERE app = ? ORDER BY n DESC",
			       err);
	if (s) {
		sqlite3_bind_text(s, 1, app, -1, SQLITE_TRANSIENT);
		rc = collect(st, s, sizeof(**out), release_row, (void **)out, n, err);
	}
	pthread_mutex_unlock(&st->lock);
	return rc;
}

static void int_row(sqlite3_stmt *s, void *p)
{
	*(int *)p = sqlite3_column_int(s, 0);
}

enum miren_err store_release_numbers(struct store *st, const char *app, int **out, size_t *n,
				     struct miren_error *err)
{
	pthread_mutex_lock(&st->lock);
	enum miren_err rc = MIREN_EDB;
	sqlite3_stmt *s = prep(st, "SELECT n FROM releases WHERE app = ? ORDER BY n", err);
	if (s) {
		sqlite3_bind_text(s, 1, app, -1, SQLITE_TRANSIENT);
		rc = collect(st, s, sizeof(int), int_row, (void **)out, n, err);
	}
	pthread_mutex_unlock(&st->lock);
	return rc;
}

enum miren_err store_release_prune(struct store *st, const char *app, int keep_from,
				   struct miren_error *err)
{
	pthread_mutex_lock(&st->lock);
	enum miren_err rc;
	sqlite3_stmt *s = prep(st, "DELETE FROM releases WHERE app = ? AND n < ?", err);
	if (!s) {
		rc = MIREN_EDB;
		goto out;
	}
	sqlite3_bind_text(s, 1, app, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int(s, 2, keep_from);
	rc = step_done(st, s, err);
out:
	pthread_mutex_unlock(&st->lock);
	return rc;
}

void release_rec_release(struct release_rec *r)
{
	free(r->source_sha256);
	free(r->config_json);
	r->source_sha256 = r->config_json = NULL;
}

void release_recs_free(struct release_rec *r, size_t n)
{
	for (size_t i = 0; i < n; i++)
		release_rec_release(&r[i]);
	free(r);
}

/* --- env ---------------------------------------------------------------- */

static void env_row(sqlite3_stmt *s, void *p)
{
	struct env_rec *e = p;
	e->key = col_text(s, 0);
	e->value = col_text(s, 1);
	e->service = col_text(s, 2);
	e->source = (enum env_source)sqlite3_column_int(s, 3);
	e->sensitive = sqlite3_column_int(s, 4) != 0;
	e->description = col_text(s, 5);
}

enum miren_err store_env_list(struct store *st, const char *app, struct env_rec **out, size_t *n,
			      struct miren_error *err)
{
	pthread_mutex_lock(&st->lock);
	enum miren_err rc = MIREN_EDB;
	sqlite3_stmt *s = prep(st,
			       "SELECT key, value, service, source, sensitive, description FROM env"
			       " WHERE app = ? ORDER BY key, service, source",
			       err);
	if (s) {
		sqlite3_bind_text(s, 1, app, -1, SQLITE_TRANSIENT);
		rc = collect(st, s, sizeof(**out), env_row, (void **)out, n, err);
	}
	pthread_mutex_unlock(&st->lock);
	return rc;
}

enum miren_err store_env_set(struct store *st, const char *app, const struct env_rec *rec,
			     struct miren_error *err)
{
	pthread_mutex_lock(&st->lock);
	enum miren_err rc;
	sqlite3_stmt *s =
		prep(st,
		     "INSERT INTO env (app, service, key, source, value, sensitive, description)"
		     " VALUES (?, ?, ?, ?, ?, ?, ?)"
		     " ON CONFLICT (app, service, key, source) DO UPDATE SET"
		     " value = excluded.value, sensitive = excluded.sensitive,"
		     " description = excluded.description",
		     err);
	if (!s) {
		rc = MIREN_EDB;
		goto out;
	}
	sqlite3_bind_text(s, 1, app, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(s, 2, rec->service ? rec->service : "", -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(s, 3, rec->key, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int(s, 4, (int)rec->source);
	sqlite3_bind_text(s, 5, rec->value, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int(s, 6, rec->sensitive ? 1 : 0);
	sqlite3_bind_text(s, 7, rec->description ? rec->description : "", -1, SQLITE_TRANSIENT);
	rc = step_done(st, s, err);
out:
	pthread_mutex_unlock(&st->lock);
	return rc;
}

enum miren_err store_env_delete(struct store *st, const char *app, const char *key,
				enum env_source source, struct miren_error *err)
{
	pthread_mutex_lock(&st->lock);
	enum miren_err rc;
	sqlite3_stmt *s = prep(st, "DELETE FROM env WHERE app = ? AND key = ? AND source = ?", err);
	if (!s) {
		rc = MIREN_EDB;
		goto out;
	}
	sqlite3_bind_text(s, 1, app, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(s, 2, key, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int(s, 3, (int)source);
	rc = step_done(st, s, err);
	if (!rc && sqlite3_changes(st->db) == 0)
		rc = miren_error_set(err, MIREN_ENOTFOUND, "variable '%s' is not set on app '%s'",
				     key, app);
out:
	pthread_mutex_unlock(&st->lock);
	return rc;
}

void env_recs_free(struct env_rec *r, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(r[i].key);
		free(r[i].value);
		free(r[i].service);
		free(r[i].description);
	}
	free(r);
}
