/*
 * Unit tests of the store's addon, server and disk records
 * (lib/store/store_addon.c) over a real SQLite file: the server of an
 * instance as a column written with its state (also when the
 * compare-and-set loses), servers found by engine and kind, the tenant
 * count, disk records with their size, an error's message, detail and
 * hint kept apart next to the server, a fork's source, a variant change's
 * record (its instance counted on its server, the switch in one
 * transaction), and migration 3 filling the new columns of a store made
 * before it (and the later ones applied after it).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/store.h"
#include "util/fs.h"

struct fixture {
	char dir[64];
	char *path;
	struct store *st;
};

static int setup(void **state)
{
	struct fixture *f = xcalloc(1, sizeof(*f));
	snprintf(f->dir, sizeof(f->dir), "/tmp/miren-store-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	f->path = xasprintf("%s/miren.db", f->dir);
	assert_int_equal(store_open(f->path, &f->st, NULL), 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	store_close(f->st);
	fs_remove_tree(f->dir);
	free(f->path);
	free(f);
	return 0;
}

static void add_addon(struct store *st, const char *id, const char *app, const char *server)
{
	assert_int_equal(store_app_ensure(st, app, NULL), 0);
	struct addon_rec rec = { .id = (char *)id,
				 .app = (char *)app,
				 .addon = "eng-a",
				 .variant = "shared",
				 .version = "1",
				 .status = "provisioning",
				 .state_json = "{\"k\":1}",
				 .server = (char *)server };
	assert_int_equal(store_addon_add(st, &rec, NULL), 0);
}

static void add_server(struct store *st, const char *id, const char *engine, const char *kind,
		       const char *addr, int64_t created_at)
{
	char *disk = xasprintf("disk-%s", id);
	struct server_rec s = { .id = (char *)id,
				.engine = (char *)engine,
				.kind = (char *)kind,
				.disk = disk,
				.address = (char *)addr,
				.port = 1,
				.state_json = "{}",
				.created_at = created_at };
	assert_int_equal(store_server_add(st, &s, NULL), 0);
	free(disk);
}

static void test_server_column(void **state)
{
	struct fixture *f = *state;
	add_addon(f->st, "i1", "a1", "");
	add_addon(f->st, "i2", "a2", "srv1");
	int count = -1;
	assert_int_equal(store_addon_count_on_server(f->st, "srv1", &count, NULL), 0);
	assert_int_equal(count, 1);
	/* The reconciler's write records the server with the state. */
	struct addon_rec rec;
	assert_int_equal(store_addon_get(f->st, "a1", "eng-a", &rec, NULL), 0);
	assert_string_equal(rec.server, "");
	free(rec.server);
	rec.server = xstrdup("srv1");
	rec.step = 1;
	assert_int_equal(store_addon_update(f->st, &rec, "provisioning", 0, NULL), 0);
	assert_int_equal(store_addon_count_on_server(f->st, "srv1", &count, NULL), 0);
	assert_int_equal(count, 2);
	/* A lost compare-and-set still records state and server (a removal
	 * needs them), and nothing else. */
	free(rec.server);
	rec.server = xstrdup("srv2");
	free(rec.state_json);
	rec.state_json = xstrdup("{\"k\":2}");
	free(rec.status);
	rec.status = xstrdup("active");
	struct miren_error err;
	assert_int_equal(store_addon_update(f->st, &rec, "provisioning", 0, &err), MIREN_ECONFLICT);
	addon_rec_release(&rec);
	assert_int_equal(store_addon_get(f->st, "a1", "eng-a", &rec, NULL), 0);
	assert_string_equal(rec.server, "srv2");
	assert_string_equal(rec.state_json, "{\"k\":2}");
	assert_string_equal(rec.status, "provisioning");
	assert_int_equal(rec.step, 1);
	addon_rec_release(&rec);
}

static void test_find_kind_by_engine(void **state)
{
	struct fixture *f = *state;
	add_server(f->st, "s-b", "eng-b", "shared", "10.0.0.1", 100);
	add_server(f->st, "s-a2", "eng-a", "shared", "10.0.0.2", 300);
	add_server(f->st, "s-a1", "eng-a", "shared", "10.0.0.3", 200);
	add_server(f->st, "s-a0", "eng-a", "small", "10.0.0.4", 50);
	struct server_rec s;
	assert_int_equal(store_server_find_kind(f->st, "eng-a", "shared", &s, NULL), 0);
	assert_string_equal(s.id, "s-a1"); /* the oldest of that engine and kind */
	assert_string_equal(s.engine, "eng-a");
	server_rec_release(&s);
	assert_int_equal(store_server_find_kind(f->st, "eng-b", "shared", &s, NULL), 0);
	assert_string_equal(s.id, "s-b");
	server_rec_release(&s);
	assert_int_equal(store_server_find_kind(f->st, "eng-c", "shared", &s, NULL),
			 MIREN_ENOTFOUND);
}

static void test_disk_records(void **state)
{
	struct fixture *f = *state;
	struct disk_rec d = {
		.name = "d1", .size_bytes = 1LL << 30, .created_by = "test", .status = "in use"
	};
	assert_int_equal(store_disk_put(f->st, &d, NULL), 0);
	d.size_bytes = 0; /* unknown */
	d.status = "unused";
	assert_int_equal(store_disk_put(f->st, &d, NULL), 0);
	struct disk_rec got;
	assert_int_equal(store_disk_get(f->st, "d1", &got, NULL), 0);
	assert_int_equal(got.size_bytes, 0);
	assert_string_equal(got.status, "unused");
	disk_rec_release(&got);
	assert_int_equal(store_disk_delete(f->st, "d1", NULL), 0);
	assert_int_equal(store_disk_delete(f->st, "d1", NULL), 0); /* idempotent */
	assert_int_equal(store_disk_get(f->st, "d1", &got, NULL), MIREN_ENOTFOUND);
}

/* An error's message, detail and hint are written apart, with the server
 * and state, and read back apart. */
static void test_error_whole(void **state)
{
	struct fixture *f = *state;
	add_addon(f->st, "i1", "a1", "");
	struct addon_rec rec;
	assert_int_equal(store_addon_get(f->st, "a1", "eng-a", &rec, NULL), 0);
	assert_string_equal(rec.detail, "");
	assert_string_equal(rec.hint, "");
	free(rec.status);
	rec.status = xstrdup("error");
	free(rec.message);
	rec.message = xstrdup("it failed");
	free(rec.detail);
	rec.detail = xstrdup("FATAL: disk full");
	free(rec.hint);
	rec.hint = xstrdup("free some space");
	free(rec.server);
	rec.server = xstrdup("srv9");
	assert_int_equal(store_addon_update(f->st, &rec, "provisioning", 0, NULL), 0);
	addon_rec_release(&rec);
	assert_int_equal(store_addon_get(f->st, "a1", "eng-a", &rec, NULL), 0);
	assert_string_equal(rec.status, "error");
	assert_string_equal(rec.message, "it failed");
	assert_string_equal(rec.detail, "FATAL: disk full");
	assert_string_equal(rec.hint, "free some space");
	assert_string_equal(rec.server, "srv9");
	addon_rec_release(&rec);
	/* A status write without an error clears detail and hint. */
	assert_int_equal(store_addon_set_status(f->st, "i1", "error", 0, "pending", 0, "", NULL),
			 0);
	assert_int_equal(store_addon_get(f->st, "a1", "eng-a", &rec, NULL), 0);
	assert_string_equal(rec.status, "pending");
	assert_string_equal(rec.detail, "");
	assert_string_equal(rec.hint, "");
	assert_string_equal(rec.server, "srv9");
	addon_rec_release(&rec);
}

static void exec_ok(sqlite3 *db, const char *sql)
{
	char *msg = NULL;
	int rc = sqlite3_exec(db, sql, NULL, NULL, &msg);
	if (rc != SQLITE_OK)
		fail_msg("%s: %s", sql, msg);
}

/* A fork's source is written with the instance and read back by get and
 * list; any other instance has none. */
static void test_fork_column(void **state)
{
	struct fixture *f = *state;
	add_addon(f->st, "i1", "a1", "");
	assert_int_equal(store_app_ensure(f->st, "a2", NULL), 0);
	struct addon_rec rec = { .id = "i2",
				 .app = "a2",
				 .addon = "eng-a",
				 .variant = "small",
				 .version = "1",
				 .status = "pending",
				 .fork = "{\"app\":\"a1\"}" };
	assert_int_equal(store_addon_add(f->st, &rec, NULL), 0);
	struct addon_rec got;
	assert_int_equal(store_addon_get(f->st, "a2", "eng-a", &got, NULL), 0);
	assert_string_equal(got.fork, "{\"app\":\"a1\"}");
	addon_rec_release(&got);
	struct addon_rec *all;
	size_t n;
	assert_int_equal(store_addon_list(f->st, NULL, &all, &n, NULL), 0);
	assert_int_equal(n, 2);
	assert_string_equal(all[0].fork, "");
	assert_string_equal(all[1].fork, "{\"app\":\"a1\"}");
	addon_recs_free(all, n);
}

/* A store of schema 2 (no engine, no server column), with an instance on
 * a server and one without, and a server no instance uses. */
/* A variant change: its instance counts on its server; the switch gives
 * the app's row the new instance and its env, the change row the old
 * instance, and only from the paused phase. */
static void test_change_records(void **state)
{
	struct fixture *f = *state;
	add_addon(f->st, "i1", "a1", "s-old");
	struct addon_rec rec;
	assert_int_equal(store_addon_get(f->st, "a1", "eng-a", &rec, NULL), 0);
	struct env_rec old_var = { .key = "URL", .value = "old", .source = ENV_SOURCE_ADDON };
	free(rec.status);
	rec.status = xstrdup("active");
	assert_int_equal(store_addon_activate(f->st, &rec, "provisioning", 0, &old_var, 1, NULL),
			 0);
	struct change_rec ch = { .addon_id = "i1",
				 .app = "a1",
				 .addon = "eng-a",
				 .phase = "provisioning",
				 .id = "n1",
				 .variant = "small",
				 .version = "1",
				 .from_variant = "shared",
				 .to_variant = "small",
				 .state_json = "{\"new\":1}",
				 .server = "s-new" };
	assert_int_equal(store_change_add(f->st, &ch, NULL), 0);
	assert_int_equal(store_change_add(f->st, &ch, NULL), MIREN_EEXISTS);
	int count = 0;
	assert_int_equal(store_addon_count_on_server(f->st, "s-new", &count, NULL), 0);
	assert_int_equal(count, 1);
	char **v;
	size_t n;
	int in_motion = 0;
	assert_int_equal(store_invariants(f->st, &v, &n, &in_motion, NULL), 0);
	assert_int_equal(in_motion, 1);
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
	/* The switch is refused before the pause. */
	struct addon_rec now = rec;
	now.variant = "small";
	now.state_json = "{\"new\":1}";
	now.server = "s-new";
	struct change_rec old = ch;
	old.phase = "switched";
	old.variant = "shared";
	old.state_json = "{\"k\":1}";
	old.server = "s-old";
	struct env_rec new_var = { .key = "URL", .value = "new", .source = ENV_SOURCE_ADDON };
	assert_int_equal(store_change_switch(f->st, &now, &old, &new_var, 1, NULL),
			 MIREN_ECONFLICT);
	ch.phase = "paused";
	assert_int_equal(store_change_update(f->st, &ch, NULL), 0);
	assert_int_equal(store_change_switch(f->st, &now, &old, &new_var, 1, NULL), 0);
	struct addon_rec after;
	assert_int_equal(store_addon_get(f->st, "a1", "eng-a", &after, NULL), 0);
	assert_string_equal(after.variant, "small");
	assert_string_equal(after.server, "s-new");
	assert_string_equal(after.state_json, "{\"new\":1}");
	addon_rec_release(&after);
	struct env_rec *vars;
	size_t n_vars;
	assert_int_equal(store_env_list(f->st, "a1", &vars, &n_vars, NULL), 0);
	assert_int_equal(n_vars, 1);
	assert_string_equal(vars[0].value, "new");
	env_recs_free(vars, n_vars);
	struct change_rec got;
	assert_int_equal(store_change_get(f->st, "i1", &got, NULL), 0);
	assert_string_equal(got.phase, "switched");
	assert_string_equal(got.server, "s-old");
	assert_string_equal(got.variant, "shared");
	change_rec_release(&got);
	assert_int_equal(store_addon_count_on_server(f->st, "s-old", &count, NULL), 0);
	assert_int_equal(count, 1);
	assert_int_equal(store_change_delete(f->st, "i1", NULL), 0);
	assert_int_equal(store_change_get(f->st, "i1", &got, NULL), MIREN_ENOTFOUND);
	addon_rec_release(&rec);
}

static void test_migration_fills_columns(void **state)
{
	struct fixture *f = *state;
	store_close(f->st);
	f->st = NULL;
	sqlite3 *db;
	assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
	exec_ok(db, "DROP TABLE backup_schedules;"
		    "ALTER TABLE servers DROP COLUMN engine;"
		    "ALTER TABLE addons DROP COLUMN server;"
		    "ALTER TABLE addons DROP COLUMN error_detail;"
		    "ALTER TABLE addons DROP COLUMN error_hint;"
		    "ALTER TABLE addons DROP COLUMN credentials_at;"
		    "ALTER TABLE releases DROP COLUMN size_bytes;"
		    "ALTER TABLE releases DROP COLUMN rollback_of;"
		    "ALTER TABLE addons DROP COLUMN fork_json;"
		    "PRAGMA user_version = 2;"
		    "INSERT INTO apps (name, created_at) VALUES ('a1', 0), ('a2', 0);"
		    "INSERT INTO releases (app, n, created_at, source_sha256, config_json)"
		    " VALUES ('a1', 1, 0, 'abc', '{}');"
		    "INSERT INTO addons (id, app, addon, variant, version, status, state_json,"
		    " created_at) VALUES"
		    " ('i1', 'a1', 'eng-a', 'small', '1', 'active', '{\"server\":\"s-1\"}', 1),"
		    " ('i2', 'a2', 'eng-a', 'small', '1', 'pending', '{}', 2),"
		    " ('i3', 'a2', 'eng-b', 'small', '1', 'error', 'not json', 3);"
		    "INSERT INTO servers (id, kind, disk, address, port, created_at) VALUES"
		    " ('s-1', 'small', 'd-1', '10.0.0.1', 1, 0),"
		    " ('s-2', 'small', 'd-2', '10.0.0.2', 1, 0);");
	sqlite3_close(db);
	assert_int_equal(store_open(f->path, &f->st, NULL), 0);
	assert_int_equal(store_schema_version(f->st), 12);
	/* migration 10: a release made before it: size not known, a deploy's */
	struct release_rec rel;
	assert_int_equal(store_release_get(f->st, "a1", 1, &rel, NULL), 0);
	assert_int_equal(rel.size_bytes, 0);
	assert_int_equal(rel.rollback_of, 0);
	release_rec_release(&rel);
	struct addon_rec rec;
	assert_int_equal(store_addon_get(f->st, "a1", "eng-a", &rec, NULL), 0);
	assert_string_equal(rec.server, "s-1");
	assert_int_equal(rec.credentials_at, 1); /* migration 8: made with it */
	assert_string_equal(rec.fork, "");       /* migration 11: not a fork */
	addon_rec_release(&rec);
	assert_int_equal(store_addon_get(f->st, "a2", "eng-b", &rec, NULL), 0);
	assert_int_equal(rec.credentials_at, 0);
	assert_string_equal(rec.server, ""); /* unreadable state: no server */
	addon_rec_release(&rec);
	struct server_rec s;
	assert_int_equal(store_server_get(f->st, "s-1", &s, NULL), 0);
	assert_string_equal(s.engine, "eng-a"); /* its instance's addon */
	server_rec_release(&s);
	assert_int_equal(store_server_get(f->st, "s-2", &s, NULL), 0);
	assert_string_equal(s.engine, "eng-a"); /* the oldest instance's */
	server_rec_release(&s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_server_column, setup, teardown),
		cmocka_unit_test_setup_teardown(test_find_kind_by_engine, setup, teardown),
		cmocka_unit_test_setup_teardown(test_disk_records, setup, teardown),
		cmocka_unit_test_setup_teardown(test_error_whole, setup, teardown),
		cmocka_unit_test_setup_teardown(test_change_records, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fork_column, setup, teardown),
		cmocka_unit_test_setup_teardown(test_migration_fills_columns, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
