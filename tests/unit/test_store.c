/*
 * Unit tests of the state store's addon, server and disk records (against
 * a real SQLite file in a temporary directory): adding, reading, listing,
 * the compare-and-set status writes, activation with the addon's env, and
 * the closed sets of words (enums, refused by the store's triggers).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "store/store.h"
#include "util/fs.h"

struct fixture {
	char dir[64];
	struct store *st;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	if (!f)
		return -1;
	strcpy(f->dir, "/tmp/miren-test-store.XXXXXX");
	if (!mkdtemp(f->dir)) {
		free(f);
		return -1;
	}
	char *path = fs_join(f->dir, "miren.db");
	struct miren_error err;
	int rc = store_open(path, &f->st, &err);
	free(path);
	*state = f;
	return rc;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	store_close(f->st);
	fs_remove_tree(f->dir);
	free(f);
	return 0;
}

static struct addon_rec addon(const char *id, const char *app, const char *status,
			      const char *state_json)
{
	return (struct addon_rec){ .id = (char *)id,
				   .app = (char *)app,
				   .addon = "miren-postgresql",
				   .variant = "small",
				   .version = "15",
				   .status = (char *)status,
				   .message = "",
				   .state_json = (char *)state_json,
				   .source = "config" };
}

static void test_schema(void **state)
{
	struct fixture *f = *state;
	/* 3: servers' engine, 4: the word checks, 5: errors whole, ...,
	 * 9: tokens, 10: releases' size and rollback_of, 11: forks' sources,
	 * 12: variant changes. */
	assert_int_equal(store_schema_version(f->st), 12);
}

static void test_addon_records(void **state)
{
	struct fixture *f = *state;
	struct miren_error err;
	assert_int_equal(store_app_ensure(f->st, "b", &err), 0);
	assert_int_equal(store_app_ensure(f->st, "a", &err), 0);
	struct addon_rec r1 = addon("id1", "b", "pending", "{}");
	struct addon_rec r2 = addon("id2", "a", "pending", "{}");
	r2.server = "s-1";
	assert_int_equal(store_addon_add(f->st, &r1, &err), 0);
	assert_int_equal(store_addon_add(f->st, &r2, &err), 0);
	/* One addon of a kind per app. */
	struct addon_rec dup = addon("id3", "b", "pending", "{}");
	assert_int_equal(store_addon_add(f->st, &dup, &err), MIREN_EEXISTS);

	struct addon_rec got;
	assert_int_equal(store_addon_get(f->st, "b", "miren-postgresql", &got, &err), 0);
	assert_string_equal(got.id, "id1");
	assert_string_equal(got.status, "pending");
	assert_string_equal(got.source, "config");
	assert_int_equal(got.step, 0);
	addon_rec_release(&got);
	assert_int_equal(store_addon_get(f->st, "c", "miren-postgresql", &got, &err),
			 MIREN_ENOTFOUND);

	/* Every instance, ordered by app; or those of one app. */
	struct addon_rec *recs;
	size_t n;
	assert_int_equal(store_addon_list(f->st, NULL, &recs, &n, &err), 0);
	assert_int_equal(n, 2);
	assert_string_equal(recs[0].app, "a");
	assert_string_equal(recs[1].app, "b");
	addon_recs_free(recs, n);
	assert_int_equal(store_addon_list(f->st, "b", &recs, &n, &err), 0);
	assert_int_equal(n, 1);
	addon_recs_free(recs, n);

	int count = -1;
	assert_int_equal(store_addon_count_on_server(f->st, "s-1", &count, &err), 0);
	assert_int_equal(count, 1);
	assert_int_equal(store_addon_count_on_server(f->st, "s-2", &count, &err), 0);
	assert_int_equal(count, 0);
}

static void test_addon_compare_and_set(void **state)
{
	struct fixture *f = *state;
	struct miren_error err;
	assert_int_equal(store_app_ensure(f->st, "a", &err), 0);
	struct addon_rec r = addon("id1", "a", "pending", "{}");
	assert_int_equal(store_addon_add(f->st, &r, &err), 0);

	/* The reconciler moves it on from what it read. */
	struct addon_rec up = addon("id1", "a", "provisioning", "{\"step\":\"plan\"}");
	up.step = 1;
	assert_int_equal(store_addon_update(f->st, &up, "pending", 0, &err), 0);
	/* A writer that read an older (status, step) is refused ... */
	assert_int_equal(store_addon_set_status(f->st, "id1", "pending", 0, "deprovisioning", 0, "",
						&err),
			 MIREN_ECONFLICT);
	/* ... and wins once it names what is there. */
	assert_int_equal(store_addon_set_status(f->st, "id1", "provisioning", 1, "deprovisioning",
						0, "", &err),
			 0);
	/* The reconciler's late write loses, but its state is kept. */
	struct addon_rec late = addon("id1", "a", "provisioning", "{\"step\":\"server\"}");
	late.step = 2;
	assert_int_equal(store_addon_update(f->st, &late, "provisioning", 1, &err),
			 MIREN_ECONFLICT);
	struct addon_rec got;
	assert_int_equal(store_addon_get(f->st, "a", "miren-postgresql", &got, &err), 0);
	assert_string_equal(got.status, "deprovisioning");
	assert_string_equal(got.state_json, "{\"step\":\"server\"}");
	addon_rec_release(&got);

	/* Deleting needs the status it names. */
	assert_int_equal(store_addon_delete(f->st, "id1", "active", &err), MIREN_ECONFLICT);
	assert_int_equal(store_addon_delete(f->st, "id1", "deprovisioning", &err), 0);
	assert_int_equal(store_addon_get(f->st, "a", "miren-postgresql", &got, &err),
			 MIREN_ENOTFOUND);
	assert_int_equal(store_addon_set_status(f->st, "id1", "deprovisioning", 0, "error", 0, "",
						&err),
			 MIREN_ENOTFOUND);
}

static void test_addon_activate_env(void **state)
{
	struct fixture *f = *state;
	struct miren_error err;
	assert_int_equal(store_app_ensure(f->st, "a", &err), 0);
	struct addon_rec r = addon("id1", "a", "provisioning", "{}");
	r.step = 3;
	assert_int_equal(store_addon_add(f->st, &r, &err), 0);
	struct env_rec vars[] = {
		{ .key = "DATABASE_URL", .value = "postgres://x", .sensitive = true },
		{ .key = "PGHOST", .value = "127.77.0.1" },
	};
	struct addon_rec act = addon("id1", "a", "active", "{\"server\":\"s-1\"}");
	/* From a (status, step) it is not in: nothing written. */
	assert_int_equal(store_addon_activate(f->st, &act, "provisioning", 2, vars, 2, &err),
			 MIREN_ECONFLICT);
	struct env_rec *env;
	size_t n;
	assert_int_equal(store_env_list(f->st, "a", &env, &n, &err), 0);
	assert_int_equal(n, 0);
	env_recs_free(env, n);

	assert_int_equal(store_addon_activate(f->st, &act, "provisioning", 3, vars, 2, &err), 0);
	assert_int_equal(store_env_list(f->st, "a", &env, &n, &err), 0);
	assert_int_equal(n, 2);
	assert_string_equal(env[0].key, "DATABASE_URL");
	assert_int_equal(env[0].source, ENV_SOURCE_ADDON);
	assert_true(env[0].sensitive);
	env_recs_free(env, n);

	/* Its removal takes its env with it. */
	assert_int_equal(store_addon_set_status(f->st, "id1", "active", 0, "deprovisioning", 0, "",
						&err),
			 0);
	assert_int_equal(store_addon_delete(f->st, "id1", "deprovisioning", &err), 0);
	assert_int_equal(store_env_list(f->st, "a", &env, &n, &err), 0);
	assert_int_equal(n, 0);
	env_recs_free(env, n);
}

static void test_server_records(void **state)
{
	struct fixture *f = *state;
	struct miren_error err;
	struct server_rec s1 = { .id = "s-1",
				 .engine = "fake",
				 .kind = "small",
				 .disk = "pg-1-data",
				 .address = "127.77.0.1",
				 .port = 5432,
				 .state_json = "{}" };
	struct server_rec s2 = { .id = "shared-1",
				 .engine = "fake",
				 .kind = "shared",
				 .disk = "pg-shared-data",
				 .address = "127.77.0.2",
				 .port = 5432,
				 .state_json = "{}" };
	assert_int_equal(store_server_add(f->st, &s1, &err), 0);
	assert_int_equal(store_server_add(f->st, &s2, &err), 0);
	/* Adding again is a no-op (the step that plans it may run twice). */
	assert_int_equal(store_server_add(f->st, &s1, &err), 0);

	struct server_rec got;
	assert_int_equal(store_server_get(f->st, "s-1", &got, &err), 0);
	assert_string_equal(got.disk, "pg-1-data");
	assert_int_equal(got.port, 5432);
	server_rec_release(&got);
	assert_int_equal(store_server_find_kind(f->st, "fake", "shared", &got, &err), 0);
	assert_string_equal(got.id, "shared-1");
	server_rec_release(&got);

	assert_int_equal(store_server_update_state(f->st, "s-1", "{\"su_password\":\"x\"}", &err),
			 0);
	assert_int_equal(store_server_get(f->st, "s-1", &got, &err), 0);
	assert_string_equal(got.state_json, "{\"su_password\":\"x\"}");
	server_rec_release(&got);

	char **addrs;
	size_t n;
	assert_int_equal(store_server_addresses(f->st, &addrs, &n, &err), 0);
	assert_int_equal(n, 2);
	for (size_t i = 0; i < n; i++)
		free(addrs[i]);
	free(addrs);

	struct server_rec *list;
	assert_int_equal(store_server_list(f->st, &list, &n, &err), 0);
	assert_int_equal(n, 2);
	server_recs_free(list, n);
	assert_int_equal(store_server_delete(f->st, "s-1", &err), 0);
	assert_int_equal(store_server_get(f->st, "s-1", &got, &err), MIREN_ENOTFOUND);
	assert_int_equal(store_server_find_kind(f->st, "fake", "small", &got, &err),
			 MIREN_ENOTFOUND);
}

static void test_disk_records(void **state)
{
	struct fixture *f = *state;
	struct miren_error err;
	struct disk_rec d = { .name = "pg-1-data",
			      .size_bytes = 1 << 30,
			      .created_by = "miren-postgresql small",
			      .status = "in use" };
	assert_int_equal(store_disk_put(f->st, &d, &err), 0);
	/* Put replaces. */
	d.status = "unused";
	d.size_bytes = 2LL << 30;
	assert_int_equal(store_disk_put(f->st, &d, &err), 0);
	struct disk_rec got;
	assert_int_equal(store_disk_get(f->st, "pg-1-data", &got, &err), 0);
	assert_string_equal(got.status, "unused");
	assert_int_equal(got.size_bytes, 2LL << 30);
	disk_rec_release(&got);
	struct disk_rec *list;
	size_t n;
	assert_int_equal(store_disk_list(f->st, &list, &n, &err), 0);
	assert_int_equal(n, 1);
	disk_recs_free(list, n);
	assert_int_equal(store_disk_delete(f->st, "pg-1-data", &err), 0);
	assert_int_equal(store_disk_get(f->st, "pg-1-data", &got, &err), MIREN_ENOTFOUND);
}

static void test_enum_words(void **state)
{
	(void)state;
	for (int s = ADDON_PENDING; s <= ADDON_DEPROVISIONING; s++)
		assert_int_equal(addon_status_parse(addon_status_name(s)), s);
	assert_int_equal(addon_status_parse("Active"), -1);
	assert_int_equal(addon_status_parse(NULL), -1);
	assert_string_equal(addon_status_name((enum addon_status)99), "unknown");
	assert_int_equal(addon_source_parse("config"), ADDON_SOURCE_CONFIG);
	assert_int_equal(addon_source_parse("cli"), ADDON_SOURCE_CLI);
	assert_int_equal(server_kind_parse("small"), SERVER_SMALL);
	assert_int_equal(server_kind_parse("shared"), SERVER_SHARED);
	assert_int_equal(disk_status_parse("in use"), DISK_IN_USE);
	assert_int_equal(disk_status_parse("unused"), DISK_UNUSED);
	assert_int_equal(disk_status_parse("deleting"), DISK_DELETING);
	for (int s = ENV_SOURCE_CONFIG; s <= ENV_SOURCE_ADDON; s++)
		assert_int_equal(env_source_parse(env_source_name(s)), s);
}

/* The store takes every word of each set and refuses any other. */
static void test_store_refuses_other_words(void **state)
{
	struct fixture *f = *state;
	struct miren_error err;
	assert_int_equal(store_app_ensure(f->st, "a", &err), 0);
	for (int s = ADDON_PENDING; s <= ADDON_DEPROVISIONING; s++) {
		char id[8];
		snprintf(id, sizeof(id), "id%d", s);
		struct addon_rec r = addon(id, "a", addon_status_name(s), "{}");
		r.addon = (char *)addon_status_name(s); /* one addon per app: vary the name */
		assert_int_equal(store_addon_add(f->st, &r, &err), 0);
	}
	struct addon_rec bad = addon("bad", "a", "running", "{}");
	bad.addon = "other";
	assert_int_equal(store_addon_add(f->st, &bad, &err), MIREN_EDB);
	bad = addon("bad", "a", "pending", "{}");
	bad.addon = "other";
	bad.source = "api";
	assert_int_equal(store_addon_add(f->st, &bad, &err), MIREN_EDB);
	assert_int_equal(store_addon_set_status(f->st, "id0", "pending", 0, "done", 0, "", &err),
			 MIREN_EDB);
	struct addon_rec got;
	assert_int_equal(store_addon_get(f->st, "a", "pending", &got, &err), 0);
	assert_string_equal(got.status, "pending"); /* unchanged */
	addon_rec_release(&got);

	struct server_rec s = { .id = "s-1",
				.engine = "fake",
				.kind = "huge",
				.disk = "d",
				.address = "127.0.0.9",
				.port = 1,
				.state_json = "{}" };
	assert_int_equal(store_server_add(f->st, &s, &err), MIREN_EDB);
	s.kind = "shared";
	assert_int_equal(store_server_add(f->st, &s, &err), 0);
	struct disk_rec d = { .name = "d", .size_bytes = 1, .created_by = "t", .status = "full" };
	assert_int_equal(store_disk_put(f->st, &d, &err), MIREN_EDB);
	d.status = "deleting";
	assert_int_equal(store_disk_put(f->st, &d, &err), 0);
	d.status = "in use";
	assert_int_equal(store_disk_put(f->st, &d, &err), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_schema, setup, teardown),
		cmocka_unit_test_setup_teardown(test_addon_records, setup, teardown),
		cmocka_unit_test_setup_teardown(test_addon_compare_and_set, setup, teardown),
		cmocka_unit_test_setup_teardown(test_addon_activate_env, setup, teardown),
		cmocka_unit_test_setup_teardown(test_server_records, setup, teardown),
		cmocka_unit_test_setup_teardown(test_disk_records, setup, teardown),
		cmocka_unit_test(test_enum_words),
		cmocka_unit_test_setup_teardown(test_store_refuses_other_words, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
