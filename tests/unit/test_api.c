/* Unit tests of the API's route table (lib/api/routes.c): which route and
 * parameters each request gets, the body limits, and the table's shape. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/request.h"
#include "api/routes.h"
#include "app/source.h"

/* The route for method and path: its pattern, or NULL; params joined by
 * ',' into out. */
static const char *find(const char *method, const char *path, char *out, size_t len)
{
	char *copy = strdup(path);
	const char *params[API_MAX_PARAMS] = { 0 };
	const struct api_route *r = api_route_find(method, copy, params);
	out[0] = '\0';
	for (int i = 0; r && i < API_MAX_PARAMS && params[i]; i++)
		snprintf(out + strlen(out), len - strlen(out), "%s%s", i ? "," : "", params[i]);
	free(copy);
	return r ? r->path : NULL;
}

static void test_routes_match(void **state)
{
	(void)state;
	char p[256];
	struct {
		const char *method, *path, *pattern, *params;
	} cases[] = {
		{ "GET", "/v1/version", "/v1/version", "" },
		{ "GET", "/v1/apps", "/v1/apps", "" },
		{ "GET", "/v1/apps/web", "/v1/apps/:app", "web" },
		{ "DELETE", "/v1/apps/web", "/v1/apps/:app", "web" },
		{ "POST", "/v1/apps/web/deploy", "/v1/apps/:app/deploy", "web" },
		{ "POST", "/v1/apps/web/restart", "/v1/apps/:app/restart", "web" },
		{ "GET", "/v1/apps/web/env", "/v1/apps/:app/env", "web" },
		{ "GET", "/v1/apps/web/env/KEY", "/v1/apps/:app/env/:key", "web,KEY" },
		{ "PUT", "/v1/apps/web/env/KEY", "/v1/apps/:app/env/:key", "web,KEY" },
		{ "DELETE", "/v1/apps/web/env/KEY", "/v1/apps/:app/env/:key", "web,KEY" },
		{ "GET", "/v1/apps/web/logs/worker", "/v1/apps/:app/logs/:service", "web,worker" },
		{ "GET", "/v1/addons", "/v1/addons", "" },
		{ "GET", "/v1/addons/miren-postgresql", "/v1/addons/:addon", "miren-postgresql" },
		{ "GET", "/v1/apps/web/addons", "/v1/apps/:app/addons", "web" },
		{ "POST", "/v1/apps/web/addons", "/v1/apps/:app/addons", "web" },
		{ "DELETE", "/v1/apps/web/addons/miren-postgresql", "/v1/apps/:app/addons/:addon",
		  "web,miren-postgresql" },
		{ "GET", "/v1/disks", "/v1/disks", "" },
		/* A literal segment goes before a pattern that would take it. */
		{ "POST", "/v1/disks/restore", "/v1/disks/restore", "" },
		{ "POST", "/v1/disks/pg-data/backup", "/v1/disks/:disk/backup", "pg-data" },
		{ "GET", "/v1/debug/invariants", "/v1/debug/invariants", "" },
		{ "GET", "/v1/debug/state", "/v1/debug/state", "" },
		/* Repeated slashes are one separator. */
		{ "GET", "/v1//apps//web/", "/v1/apps/:app", "web" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *got = find(cases[i].method, cases[i].path, p, sizeof(p));
		if (!got || strcmp(got, cases[i].pattern) || strcmp(p, cases[i].params))
			fail_msg("%s %s: got %s (%s), wanted %s (%s)", cases[i].method,
				 cases[i].path, got ? got : "no route", p, cases[i].pattern,
				 cases[i].params);
	}
}

static void test_routes_refuse(void **state)
{
	(void)state;
	char p[256];
	const char *none[][2] = {
		{ "GET", "/" },
		{ "GET", "/v1" },
		{ "GET", "/v1/" },
		{ "GET", "/v2/apps" },
		{ "POST", "/v1/apps" },                /* wrong method */
		{ "PATCH", "/v1/apps/web" },           /* unknown method */
		{ "GET", "/v1/apps/web/deploy" },      /* deploy is POST only */
		{ "GET", "/v1/apps/web/env/K/extra" }, /* one segment too many */
		{ "GET", "/v1/apps/web/logs" },        /* logs need the service */
		{ "POST", "/v1/disks/pg-data" },
		{ "GET", "/v1/a/b/c/d/e/f/g/h/i" }, /* more than API_MAX_PARTS */
		{ "GET", "v1/apps" },
	};
	for (size_t i = 0; i < sizeof(none) / sizeof(none[0]); i++) {
		const char *got = find(none[i][0], none[i][1], p, sizeof(p));
		if (got)
			fail_msg("%s %s matched %s", none[i][0], none[i][1], got);
	}
}

static void test_body_limits(void **state)
{
	(void)state;
	assert_int_equal(api_spool_limit("POST", "/v1/apps/web/deploy"), SOURCE_MAX_BYTES);
	assert_int_equal(api_spool_limit("POST", "/v1/disks/restore"), API_RESTORE_MAX);
	/* JSON bodies are not spooled. */
	assert_int_equal(api_spool_limit("PUT", "/v1/apps/web/env/K"), 0);
	assert_int_equal(api_spool_limit("POST", "/v1/apps/web/addons"), 0);
	assert_int_equal(api_spool_limit("GET", "/v1/apps/web/deploy"), 0);
	assert_int_equal(api_route_body_limit("PUT", "/v1/apps/web/env/K"), API_JSON_MAX);
	assert_int_equal(api_route_body_limit("GET", "/v1/nothing"), API_JSON_MAX);
	assert_int_equal(api_route_body_limit("POST", "/v1/apps/web/deploy"), SOURCE_MAX_BYTES);
}

/* Every route is reachable by a path made from its own pattern, no two
 * routes share method and pattern, and every route has a handler. */
static void test_table_shape(void **state)
{
	(void)state;
	size_t n = 0;
	for (const struct api_route *r = api_routes; r->method; r++, n++) {
		assert_non_null(r->handler);
		assert_true(r->body_limit > 0);
		assert_int_equal(strncmp(r->path, "/v1/", 4), 0);
		assert_true(r->body != API_BODY_FILE || r->body_limit > API_JSON_MAX);
		char path[256] = "", p[256];
		int params = 0;
		for (const char *s = r->path; *s;) {
			const char *end = strchr(s + 1, '/');
			size_t len = end ? (size_t)(end - s) : strlen(s);
			if (s[1] == ':')
				snprintf(path + strlen(path), sizeof(path) - strlen(path), "/x%d",
					 params++);
			else
				snprintf(path + strlen(path), sizeof(path) - strlen(path), "%.*s",
					 (int)len, s);
			s += len;
		}
		assert_true(params <= API_MAX_PARAMS);
		const char *got = find(r->method, path, p, sizeof(p));
		if (!got || strcmp(got, r->path))
			fail_msg("%s %s (as %s) reaches %s", r->method, r->path, path,
				 got ? got : "no route");
		for (const struct api_route *q = api_routes; q != r; q++)
			if (!strcmp(q->method, r->method) && !strcmp(q->path, r->path))
				fail_msg("%s %s is in the table twice", r->method, r->path);
	}
	assert_true(n >= 20);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_routes_match),
		cmocka_unit_test(test_routes_refuse),
		cmocka_unit_test(test_body_limits),
		cmocka_unit_test(test_table_shape),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
