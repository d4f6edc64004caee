/*
 * Unit tests of the reconciler's state machine (lib/addon/reconcile.c)
 * against a fake provider, over a real store in a temporary directory,
 * and of addon, variant and version resolution (lib/addon/registry.c).
 *
 * The fake provider ("fake-db") has three provisioning steps that make
 * "resources" (names in a set, as a real engine makes servers and
 * databases) and two removal steps that drop them.  Each step can be told
 * to fail (with a code a retry can or cannot fix, a number of times) or to
 * "crash": it makes its resource, then hangs until the reconciler is
 * stopped, and fails as interrupted, so nothing is recorded, as when the
 * daemon dies between a step and its record.  A new reconciler over the
 * same store then resumes there.
 */
#include "util/compiler.h"
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "addon/addon.h"
#include "addon/registry.h"
#include "util/fs.h"
#include "util/log.h"
#include "util/paths.h"

#define FAKE "fake-db"
#define N_PROV 3
#define N_DEPROV 2

/* --- the fake provider's world ------------------------------------------ */

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;

struct control {
	enum miren_err code; /* fail with this code ... */
	int times;           /* ... this many more times (-1: always) */
	bool crash;          /* make the resource, then hang until the stop */
	int runs;            /* how many times the step ran */
};
static struct control prov[N_PROV], deprov[N_DEPROV];
static bool interrupted;
static bool in_crash;
static int changed_calls;

/* The resources the steps made: "<instance id>/<step>". */
static char *resources[64];
static size_t n_resources;

static bool resource_has(const char *name)
{
	for (size_t i = 0; i < n_resources; i++)
		if (!strcmp(resources[i], name))
			return true;
	return false;
}

static void resource_add(const char *name)
{
	if (!resource_has(name))
		resources[n_resources++] = xstrdup(name);
}

static void resource_drop_prefix(const char *prefix)
{
	for (size_t i = 0; i < n_resources;) {
		if (!strncmp(resources[i], prefix, strlen(prefix))) {
			free(resources[i]);
			resources[i] = resources[--n_resources];
		} else {
			i++;
		}
	}
}

static size_t resources_of(const char *id)
{
	size_t n = 0;
	for (size_t i = 0; i < n_resources; i++)
		n += !strncmp(resources[i], id, strlen(id));
	return n;
}

static void world_reset(void)
{
	pthread_mutex_lock(&mu);
	memset(prov, 0, sizeof(prov));
	memset(deprov, 0, sizeof(deprov));
	resource_drop_prefix("");
	interrupted = in_crash = false;
	changed_calls = 0;
	pthread_mutex_unlock(&mu);
}

/* The fake's typed state: how many steps it ran over its life. */
struct fake_state {
	int steps_run;
};

static enum miren_err fake_state_parse(const char *json, void **out, struct miren_error *err)
{
	struct fake_state *s = xcalloc(1, sizeof(*s));
	if (*json && strcmp(json, "{}") && sscanf(json, "{\"steps_run\":%d}", &s->steps_run) != 1) {
		free(s);
		return miren_error_set(err, MIREN_EINVAL, "bad fake state '%s'", json);
	}
	*out = s;
	return 0;
}

static char *fake_state_json(const void *state)
{
	return xasprintf("{\"steps_run\":%d}", ((const struct fake_state *)state)->steps_run);
}

static void fake_state_free(void *state)
{
	free(state);
}

/* Runs step i of list c: the control's verdict, then the resource. */
static enum miren_err run_step(struct control *c, const char *what, bool make,
			       struct addon_ctx *ctx, struct addon_inst *inst,
			       struct miren_error *err)
{
	char *name = xasprintf("%s/%s", inst->rec.id, what);
	pthread_mutex_lock(&mu);
	c->runs++;
	if (make)
		resource_add(name);
	else
		resource_drop_prefix(name);
	enum miren_err rc = 0;
	if (c->crash) {
		c->crash = false;
		in_crash = true;
		pthread_cond_broadcast(&cv);
		while (!interrupted)
			pthread_cond_wait(&cv, &mu);
		rc = miren_error_set(err, MIREN_EUNAVAIL, "interrupted");
	} else if (c->times != 0) {
		if (c->times > 0)
			c->times--;
		rc = miren_error_set(err, c->code, "step %s was told to fail", what);
	}
	pthread_mutex_unlock(&mu);
	free(name);
	if (!rc)
		((struct fake_state *)inst->state)->steps_run++;
	(void)ctx;
	return rc;
}

static enum miren_err step_a(struct addon_ctx *c, struct addon_inst *i, struct miren_error *e)
{
	return run_step(&prov[0], "a", true, c, i, e);
}
static enum miren_err step_b(struct addon_ctx *c, struct addon_inst *i, struct miren_error *e)
{
	return run_step(&prov[1], "b", true, c, i, e);
}
static enum miren_err step_c(struct addon_ctx *c, struct addon_inst *i, struct miren_error *e)
{
	return run_step(&prov[2], "c", true, c, i, e);
}
/* Removal drops what the provisioning steps made (every one of them:
 * idempotent, skipping what does not exist). */
static enum miren_err step_drop_bc(struct addon_ctx *c, struct addon_inst *i, struct miren_error *e)
{
	enum miren_err rc = run_step(&deprov[0], "c", false, c, i, e);
	if (!rc) {
		char *b = xasprintf("%s/b", i->rec.id);
		pthread_mutex_lock(&mu);
		resource_drop_prefix(b);
		pthread_mutex_unlock(&mu);
		free(b);
	}
	return rc;
}
static enum miren_err step_drop_a(struct addon_ctx *c, struct addon_inst *i, struct miren_error *e)
{
	return run_step(&deprov[1], "a", false, c, i, e);
}

static const struct addon_step prov_steps[N_PROV] = { { "a", step_a },
						      { "b", step_b },
						      { "c", step_c } };
static const struct addon_step deprov_steps[N_DEPROV] = { { "drop-bc", step_drop_bc },
							  { "drop-a", step_drop_a } };

static const struct addon_step *fake_prov(const char *variant, size_t *n)
{
	(void)variant;
	*n = N_PROV;
	return prov_steps;
}

static const struct addon_step *fake_deprov(const char *variant, size_t *n)
{
	(void)variant;
	*n = N_DEPROV;
	return deprov_steps;
}

static enum miren_err fake_env(struct addon_ctx *ctx MIREN_UNUSED, struct addon_inst *inst,
			       struct env_rec **out, size_t *n,
			       struct miren_error *err MIREN_UNUSED)
{
	*out = xcalloc(1, sizeof(**out));
	**out = (struct env_rec){ .key = xstrdup("FAKE_URL"),
				  .value = xasprintf("fake://%s", inst->rec.id),
				  .service = xstrdup(""),
				  .source = ENV_SOURCE_ADDON,
				  .sensitive = true,
				  .description = xstrdup("") };
	*n = 1;
	return 0;
}

static void fake_interrupt(struct addon_ctx *ctx MIREN_UNUSED)
{
	pthread_mutex_lock(&mu);
	interrupted = true;
	pthread_cond_broadcast(&cv);
	pthread_mutex_unlock(&mu);
}

static size_t fake_versions(char out[][16], size_t max)
{
	static const char *const v[] = { "3", "2" };
	size_t k = 0;
	for (; k < 2 && k < max; k++)
		snprintf(out[k], 16, "%s", v[k]);
	return k;
}

static size_t none_versions(char out[][16] MIREN_UNUSED, size_t max MIREN_UNUSED)
{
	return 0;
}

static const struct addon_variant fake_variants[] = {
	{ "one", "the first", "details", 0, false },
	{ "two", "the second", "details", 0, false },
};
static const char *const fake_points[] = { FAKE ":inside", NULL };

static const struct addon_def fake_def = {
	.name = FAKE,
	.description = "a fake for tests",
	.variants = fake_variants,
	.n_variants = 2,
	.default_variant = "two",
	.versions = fake_versions,
	.provision_steps = fake_prov,
	.deprovision_steps = fake_deprov,
	.fault_points = fake_points,
	.state_parse = fake_state_parse,
	.state_json = fake_state_json,
	.state_free = fake_state_free,
	.env = fake_env,
	.interrupt = fake_interrupt,
};

static const struct addon_def absent_def = {
	.name = "absent-db",
	.description = "an engine this host lacks",
	.variants = fake_variants,
	.n_variants = 1,
	.default_variant = "one",
	.versions = none_versions,
	.install_hint = "install the absent package",
	.provision_steps = fake_prov,
	.deprovision_steps = fake_deprov,
	.state_parse = fake_state_parse,
	.state_json = fake_state_json,
	.state_free = fake_state_free,
	.env = fake_env,
};

static const struct addon_def *const registry[] = { &absent_def, &fake_def, NULL };

/* --- the harness ---------------------------------------------------------- */

struct fixture {
	char dir[64];
	struct store *store;
	struct data_paths *paths;
	struct addon_ctx ctx;
	struct reconciler *r;
};

static void on_changed(void *user MIREN_UNUSED, const char *app MIREN_UNUSED)
{
	pthread_mutex_lock(&mu);
	changed_calls++;
	pthread_mutex_unlock(&mu);
}

static int setup(void **state)
{
	struct fixture *f = xcalloc(1, sizeof(*f));
	snprintf(f->dir, sizeof(f->dir), "/tmp/miren-reconcile-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	char *db = xasprintf("%s/miren.db", f->dir);
	struct miren_error err;
	assert_int_equal(store_open(db, &f->store, &err), 0);
	free(db);
	f->paths = data_paths_new(f->dir);
	f->ctx = (struct addon_ctx){ .store = f->store,
				     .data_dir = f->dir,
				     .paths = f->paths,
				     .uid = (uid_t)-1,
				     .gid = (gid_t)-1,
				     .retry_base_ms = 20 };
	addon_registry_override(registry);
	world_reset();
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	reconciler_stop(f->r);
	store_close(f->store);
	fs_remove_tree(f->dir);
	data_paths_free(f->paths);
	addon_registry_override(NULL);
	world_reset();
	free(f);
	return 0;
}

static void start(struct fixture *f)
{
	pthread_mutex_lock(&mu);
	interrupted = false;
	pthread_mutex_unlock(&mu);
	f->r = reconciler_start(&f->ctx, on_changed, NULL, NULL);
	assert_non_null(f->r);
}

static void stop(struct fixture *f)
{
	reconciler_stop(f->r);
	f->r = NULL;
}

/* Adds instance id of app (pending) and kicks the reconciler. */
static void add(struct fixture *f, const char *id, const char *app)
{
	struct miren_error err;
	assert_int_equal(store_app_ensure(f->store, app, &err), 0);
	struct addon_rec rec = { .id = (char *)id,
				 .app = (char *)app,
				 .addon = FAKE,
				 .variant = "one",
				 .version = "3",
				 .status = "pending" };
	assert_int_equal(store_addon_add(f->store, &rec, &err), 0);
	if (f->r)
		reconciler_kick(f->r);
}

/* Waits up to 10 s until the instance of app has status want (NULL: is
 * gone); fills *out (when given and present). */
/* Waits up to 10 s for the reconciler's change callback to have run at
 * least n times: it runs just after the store is updated, so a status read
 * may come first. */
static bool wait_changed(int n)
{
	for (int i = 0; i < 1000; i++) {
		pthread_mutex_lock(&mu);
		bool enough = changed_calls >= n;
		pthread_mutex_unlock(&mu);
		if (enough)
			return true;
		usleep(10000);
	}
	return false;
}

static bool wait_status(struct fixture *f, const char *app, const char *want, struct addon_rec *out)
{
	for (int i = 0; i < 1000; i++) {
		struct addon_rec rec;
		int rc = store_addon_get(f->store, app, FAKE, &rec, NULL);
		if (rc == MIREN_ENOTFOUND && !want)
			return true;
		if (rc == 0 && want && !strcmp(rec.status, want)) {
			if (out)
				*out = rec;
			else
				addon_rec_release(&rec);
			return true;
		}
		if (rc == 0)
			addon_rec_release(&rec);
		usleep(10000);
	}
	return false;
}

static void wait_crash_entered(void)
{
	pthread_mutex_lock(&mu);
	for (int i = 0; i < 1000 && !in_crash; i++) {
		pthread_mutex_unlock(&mu);
		usleep(10000);
		pthread_mutex_lock(&mu);
	}
	bool entered = in_crash;
	in_crash = false;
	pthread_mutex_unlock(&mu);
	assert_true(entered);
}

static size_t n_env(struct fixture *f, const char *app)
{
	struct env_rec *v;
	size_t n;
	assert_int_equal(store_env_list(f->store, app, &v, &n, NULL), 0);
	env_recs_free(v, n);
	return n;
}

/* --- the state machine ---------------------------------------------------- */

static void test_provision_to_active(void **state)
{
	struct fixture *f = *state;
	start(f);
	add(f, "i1", "app1");
	struct addon_rec rec;
	assert_true(wait_status(f, "app1", "active", &rec));
	assert_int_equal(rec.step, N_PROV);
	assert_string_equal(rec.message, "");
	/* The typed state went through the provider's own text. */
	assert_string_equal(rec.state_json, "{\"steps_run\":3}");
	addon_rec_release(&rec);
	for (int i = 0; i < N_PROV; i++)
		assert_int_equal(prov[i].runs, 1);
	assert_int_equal(resources_of("i1/"), 3);
	assert_int_equal(n_env(f, "app1"), 1);
	assert_true(wait_changed(1));
}

static void test_permanent_failure_is_error_and_undone(void **state)
{
	struct fixture *f = *state;
	prov[1] = (struct control){ .code = MIREN_EINVAL, .times = -1 };
	start(f);
	add(f, "i2", "app2");
	struct addon_rec rec;
	assert_true(wait_status(f, "app2", "error", &rec));
	assert_non_null(strstr(rec.message, "step b was told to fail"));
	assert_int_equal(rec.step, 0);
	addon_rec_release(&rec);
	assert_int_equal(prov[1].runs, 1); /* not retried */
	assert_int_equal(prov[2].runs, 0);
	/* The removal steps released what a and b made. */
	assert_int_equal(deprov[0].runs, 1);
	assert_int_equal(deprov[1].runs, 1);
	assert_int_equal(resources_of("i2/"), 0);
	assert_int_equal(n_env(f, "app2"), 0);
}

static void test_retryable_failure_is_retried(void **state)
{
	struct fixture *f = *state;
	prov[1] = (struct control){ .code = MIREN_EUNAVAIL, .times = 2 };
	start(f);
	add(f, "i3", "app3");
	struct addon_rec rec;
	assert_true(wait_status(f, "app3", "active", &rec));
	assert_string_equal(rec.message, ""); /* the "retrying" note is gone */
	addon_rec_release(&rec);
	assert_int_equal(prov[0].runs, 1);
	assert_int_equal(prov[1].runs, 3);
	assert_int_equal(prov[2].runs, 1);
	assert_int_equal(deprov[0].runs, 0);
}

static void test_retries_give_up(void **state)
{
	struct fixture *f = *state;
	prov[2] = (struct control){ .code = MIREN_EIO, .times = -1 };
	start(f);
	add(f, "i4", "app4");
	struct addon_rec rec;
	assert_true(wait_status(f, "app4", "error", &rec));
	assert_non_null(strstr(rec.message, "gave up after 8 attempts"));
	addon_rec_release(&rec);
	assert_int_equal(prov[2].runs, ADDON_RETRY_MAX);
	assert_int_equal(resources_of("i4/"), 0);
}

static void test_resume_after_crash(void **state)
{
	struct fixture *f = *state;
	prov[1].crash = true;
	start(f);
	add(f, "i5", "app5");
	wait_crash_entered();
	stop(f); /* the "crash": b made its resource, nothing recorded */
	struct addon_rec rec;
	assert_int_equal(store_addon_get(f->store, "app5", FAKE, &rec, NULL), 0);
	assert_string_equal(rec.status, "provisioning");
	assert_int_equal(rec.step, 1);
	addon_rec_release(&rec);
	assert_true(resource_has("i5/b"));
	start(f); /* the next daemon */
	assert_true(wait_status(f, "app5", "active", NULL));
	assert_int_equal(prov[0].runs, 1);
	assert_int_equal(prov[1].runs, 2); /* run again, idempotent */
	assert_int_equal(prov[2].runs, 1);
	assert_int_equal(resources_of("i5/"), 3);
}

static void test_deprovision_removes_everything(void **state)
{
	struct fixture *f = *state;
	start(f);
	add(f, "i6", "app6");
	struct addon_rec rec;
	assert_true(wait_status(f, "app6", "active", &rec));
	struct miren_error err;
	/* A removal that fails once for a retryable cause, then a crash in
	 * its last step: it still converges to gone. */
	deprov[0] = (struct control){ .code = MIREN_EUNAVAIL, .times = 1 };
	deprov[1].crash = true;
	assert_int_equal(store_addon_set_status(f->store, rec.id, rec.status, rec.step,
						"deprovisioning", 0, NULL, &err),
			 0);
	addon_rec_release(&rec);
	reconciler_kick(f->r);
	wait_crash_entered();
	stop(f);
	assert_true(wait_status(f, "app6", "deprovisioning", NULL));
	start(f);
	assert_true(wait_status(f, "app6", NULL, NULL));
	assert_int_equal(deprov[0].runs, 2);
	assert_int_equal(deprov[1].runs, 2);
	assert_int_equal(resources_of("i6/"), 0);
	assert_int_equal(n_env(f, "app6"), 0);
}

static void test_destroy_during_backoff(void **state)
{
	struct fixture *f = *state;
	f->ctx.retry_base_ms = 60000; /* the retry would come much later */
	prov[1] = (struct control){ .code = MIREN_EUNAVAIL, .times = -1 };
	start(f);
	add(f, "i7", "app7");
	struct addon_rec rec;
	for (int i = 0; i < 1000; i++) {
		assert_int_equal(store_addon_get(f->store, "app7", FAKE, &rec, NULL), 0);
		if (strstr(rec.message, "retrying"))
			break;
		addon_rec_release(&rec);
		usleep(10000);
	}
	assert_non_null(strstr(rec.message, "retrying"));
	struct miren_error err;
	assert_int_equal(store_addon_set_status(f->store, rec.id, rec.status, rec.step,
						"deprovisioning", 0, NULL, &err),
			 0);
	addon_rec_release(&rec);
	reconciler_kick(f->r);
	/* Removed at once, not after the provisioning's backoff. */
	assert_true(wait_status(f, "app7", NULL, NULL));
	assert_int_equal(resources_of("i7/"), 0);
}

/* --- resolution ------------------------------------------------------------ */

static void test_resolve(void **state MIREN_UNUSED)
{
	const struct addon_def *def;
	const char *variant;
	char version[16];
	struct miren_error err;
	assert_int_equal(addon_resolve(FAKE, NULL, NULL, &def, &variant, version, &err), 0);
	assert_ptr_equal(def, &fake_def);
	assert_string_equal(variant, "two"); /* the default */
	assert_string_equal(version, "3");   /* the newest */
	assert_int_equal(addon_resolve(FAKE, "one", "2", &def, &variant, version, &err), 0);
	assert_string_equal(variant, "one");
	assert_string_equal(version, "2");

	assert_int_equal(addon_resolve("nope", NULL, NULL, &def, &variant, version, &err),
			 MIREN_ENOTFOUND);
	assert_string_equal(err.message, "addon 'nope' not found (available: absent-db, fake-db)");
	assert_int_equal(addon_resolve(FAKE, "three", NULL, &def, &variant, version, &err),
			 MIREN_EINVAL);
	assert_string_equal(err.message,
			    "addon 'fake-db' has no variant 'three' (variants: one, two)");
	assert_int_equal(addon_resolve(FAKE, NULL, "9", &def, &variant, version, &err),
			 MIREN_EINVAL);
	assert_string_equal(err.message,
			    "addon 'fake-db' has no version '9' on this host (versions: 3, 2)");
	assert_int_equal(addon_resolve("absent-db", NULL, NULL, &def, &variant, version, &err),
			 MIREN_EUNAVAIL);
	assert_string_equal(err.hint, "install the absent package");
	/* Control characters in user input come back escaped, on one line. */
	assert_int_equal(addon_resolve("a\nb", NULL, NULL, &def, &variant, version, &err),
			 MIREN_ENOTFOUND);
	assert_null(strchr(err.message, '\n'));
}

static void test_registry_sorted_and_points(void **state MIREN_UNUSED)
{
	const struct addon_def *const *all = addon_all();
	assert_string_equal(all[0]->name, "absent-db");
	assert_string_equal(all[1]->name, "fake-db");
	assert_null(all[2]);
	assert_ptr_equal(addon_variant_find(&fake_def, "one"), &fake_variants[0]);
	assert_null(addon_variant_find(&fake_def, "none"));
	struct miren_error err;
	assert_int_equal(addon_unsupported(&fake_def, "a dump", &err), MIREN_EINVAL);
	assert_string_equal(err.message, "a dump is not supported by addon 'fake-db'");
}

static void count_point(void *user, const char *name, const char *kind)
{
	char *buf = user;
	size_t len = strlen(buf);
	snprintf(buf + len, 8192 - len, "%s %s\n", kind, name);
}

static void test_fault_points_from_steps(void **state MIREN_UNUSED)
{
	char *buf = xcalloc(1, 8192);
	addon_fault_points(count_point, buf);
	assert_non_null(strstr(buf, "step provision:fake-db:one:a:ran\n"));
	assert_non_null(strstr(buf, "step provision:fake-db:two:c:saved\n"));
	assert_non_null(strstr(buf, "step activate:fake-db:one\n"));
	assert_non_null(strstr(buf, "step deprovision:fake-db:two:drop-a:saved\n"));
	assert_non_null(strstr(buf, "inside fake-db:inside\n"));
	assert_non_null(strstr(buf, "operation restore:swapped\n"));
	free(buf);
}

int main(void)
{
	log_set_quiet_stderr(1);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_provision_to_active, setup, teardown),
		cmocka_unit_test_setup_teardown(test_permanent_failure_is_error_and_undone, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_retryable_failure_is_retried, setup, teardown),
		cmocka_unit_test_setup_teardown(test_retries_give_up, setup, teardown),
		cmocka_unit_test_setup_teardown(test_resume_after_crash, setup, teardown),
		cmocka_unit_test_setup_teardown(test_deprovision_removes_everything, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_destroy_during_backoff, setup, teardown),
		cmocka_unit_test_setup_teardown(test_resolve, setup, teardown),
		cmocka_unit_test_setup_teardown(test_registry_sorted_and_points, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fault_points_from_steps, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
