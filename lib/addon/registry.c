/*
 * The addon registry: every engine this build has (see addon.h), from the
 * list CMake generates of the directories lib/addon/<engine>/
 * (addon_engines, in the build directory), sorted by addon name.
 */
#include "addon/registry.h"
#include "addon/addon.h"
#include "util/strbuf.h"
#include "util/text.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

/* Generated: addon_engine_<dir> of every engine directory, NULL-terminated. */
extern const struct addon_def *const addon_engines[];

#define MAX_ENGINES 32

static const struct addon_def *sorted[MAX_ENGINES + 1];
static const struct addon_def *const *active; /* sorted, or a test's list */
static pthread_once_t once = PTHREAD_ONCE_INIT;

static int by_name(const void *a, const void *b)
{
	return strcmp((*(const struct addon_def *const *)a)->name,
		      (*(const struct addon_def *const *)b)->name);
}

static void sort_engines(void)
{
	size_t n = 0;
	for (const struct addon_def *const *d = addon_engines; *d && n < MAX_ENGINES; d++)
		sorted[n++] = *d;
	/* The elements are pointers, so sizeof(pointer) is meant. */
	// NOLINTNEXTLINE(bugprone-sizeof-expression)
	qsort(sorted, n, sizeof(sorted[0]), by_name);
	sorted[n] = NULL;
	if (!active)
		active = sorted;
}

const struct addon_def *const *addon_all(void)
{
	pthread_once(&once, sort_engines);
	return active;
}

void addon_registry_override(const struct addon_def *const *defs)
{
	pthread_once(&once, sort_engines);
	active = defs ? defs : sorted;
}

const struct addon_def *addon_find(const char *name)
{
	for (const struct addon_def *const *d = addon_all(); *d; d++)
		if (!strcmp((*d)->name, name))
			return *d;
	return NULL;
}

enum miren_err addon_unsupported(const struct addon_def *def, const char *what,
				 struct miren_error *err)
{
	return miren_error_set(err, MIREN_EINVAL, "%s is not supported by addon '%s'", what,
			       def->name);
}

const struct addon_variant *addon_variant_find(const struct addon_def *def, const char *variant)
{
	for (size_t i = 0; i < def->n_variants; i++)
		if (!strcmp(def->variants[i].name, variant))
			return &def->variants[i];
	return NULL;
}

enum miren_err addon_resolve(const char *name, const char *variant, const char *version,
			     const struct addon_def **def, const char **variant_out,
			     char version_out[16], struct miren_error *err)
{
	struct strbuf sb = STRBUF_INIT;
	*def = addon_find(name);
	if (!*def) {
		for (const struct addon_def *const *d = addon_all(); *d; d++)
			strbuf_addf(&sb, "%s%s", sb.len ? ", " : "", (*d)->name);
		char *esc = text_escaped(name, strlen(name)); /* user input: one line */
		miren_error_set(err, MIREN_ENOTFOUND, "addon '%.100s' not found (available: %s)",
				esc, sb.buf);
		free(esc);
		miren_error_hint(err, "run 'miren addon list-available' to see the addons");
		strbuf_release(&sb);
		return MIREN_ENOTFOUND;
	}
	const char *want = variant && *variant ? variant : (*def)->default_variant;
	const struct addon_variant *v = addon_variant_find(*def, want);
	if (!v) {
		for (size_t i = 0; i < (*def)->n_variants; i++)
			strbuf_addf(&sb, "%s%s", i ? ", " : "", (*def)->variants[i].name);
		char *esc = text_escaped(want, strlen(want));
		miren_error_set(err, MIREN_EINVAL,
				"addon '%s' has no variant '%.100s' (variants: %s)", name, esc,
				sb.buf);
		free(esc);
		miren_error_hint(err, "run 'miren addon variants %s' to see what each offers",
				 name);
		strbuf_release(&sb);
		return MIREN_EINVAL;
	}
	*variant_out = v->name;
	char versions[8][16];
	size_t n = (*def)->versions(versions, 8);
	if (n == 0) {
		miren_error_set(err, MIREN_EUNAVAIL, "addon '%s' cannot run on this host: %s", name,
				"its server software is not installed");
		if ((*def)->install_hint)
			miren_error_hint(err, "%s", (*def)->install_hint);
		return MIREN_EUNAVAIL;
	}
	for (size_t i = 0; i < n; i++) {
		if (!version || !*version || !strcmp(version, versions[i])) {
			memcpy(version_out, versions[i], 16);
			return 0;
		}
	}
	for (size_t i = 0; i < n; i++)
		strbuf_addf(&sb, "%s%s", i ? ", " : "", versions[i]);
	char *esc = text_escaped(version, strlen(version));
	miren_error_set(err, MIREN_EINVAL,
			"addon '%s' has no version '%.100s' on this host (versions: %s)", name, esc,
			sb.buf);
	free(esc);
	strbuf_release(&sb);
	return MIREN_EINVAL;
}

/*
 * The framework's own fault points (the daemon's and the disk
 * operations'); see util/fault.h for what each one means.  Engines
 * declare theirs in addon_def.fault_points, and the reconciler's
 * between-step points are made from the steps.
 */
static const char *const framework_points[] = {
	"deploy:moved",
	"app-destroy:marked",
	"backup:started",
	"backup:copied",
	"restore:verified",
	"restore:aside",
	"restore:swapped",
	"restore:started",
	"restore:proven",
	"restore:placed",
	"spare:filled",
	"spare:ready",
	"spare:taken",
	"volume:formatted",
	"volume:mounted",
	"volume:grown",
	"volume:deleted",
	"bstore:chunk-written",
	"bstore:chunks-synced",
	"bstore:manifest-written",
	"bstore:committed",
	"bstore:removed",
	"bstore:gc-marked",
	"bstore:gc-removed",
	"disk-delete:marked",
	"disk-delete:removed",
	"schedule:taken",
	"schedule:recorded",
	"prune:removed",
	"prune:pruned",
	"addon-backup:dumped",
	"addon-backup:stored",
	"addon-restore:scratch-dumped",
	"addon-restore:staged",
	"addon-restore:loaded",
	"scratch:read",
	"scratch:started",
	"scratch:checked",
	"pitr:recovered",
	"pitr:loaded",
	"rotate:planned",
	"rotate:switched",
	"rotate:restarted",
	"rotate:revoked",
	"rollback:copied",
	"rollback:moved",
	"rollback:recorded",
	"fork:recorded",
	"fork:dumped",
	"fork:filled",
	"fork:failed",
	"change:planned",
	"change:provisioned",
	"change:copying",
	"change:paused",
	"change:copied",
	"change:switched",
	"change:restarted",
	"change:removed",
	NULL,
};

static void step_points(const struct addon_def *def, const char *op, const char *variant,
			const struct addon_step *steps, size_t n,
			void (*fn)(void *user, const char *name, const char *kind), void *user)
{
	for (size_t i = 0; i < n; i++) {
		for (int saved = 0; saved < 2; saved++) {
			char *p = xasprintf("%s:%s:%s:%s:%s", op, def->name, variant, steps[i].name,
					    saved ? "saved" : "ran");
			fn(user, p, "step");
			free(p);
		}
	}
}

void addon_fault_points(void (*fn)(void *user, const char *name, const char *kind), void *user)
{
	for (const struct addon_def *const *d = addon_all(); *d; d++) {
		const struct addon_def *def = *d;
		for (size_t v = 0; v < def->n_variants; v++) {
			const char *variant = def->variants[v].name;
			size_t n;
			const struct addon_step *steps = def->provision_steps(variant, &n);
			step_points(def, "provision", variant, steps, n, fn, user);
			char *p = xasprintf("activate:%s:%s", def->name, variant);
			fn(user, p, "step");
			free(p);
			steps = def->deprovision_steps(variant, &n);
			step_points(def, "deprovision", variant, steps, n, fn, user);
		}
		for (const char *const *f = def->fault_points; f && *f; f++)
			fn(user, *f, "inside");
	}
	for (const char *const *f = framework_points; *f; f++)
		fn(user, *f, "operation");
}
