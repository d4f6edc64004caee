/* The addon registry: every addon this build knows; see addon.h. */
#include "addon/addon.h"
#include "util/strbuf.h"
#include "util/text.h"

#include <stdlib.h>

#include <string.h>

extern const struct addon_def addon_postgresql;

static const struct addon_def *const all_addons[] = {
	&addon_postgresql,
	NULL,
};

const struct addon_def *const *addon_all(void)
{
	return all_addons;
}

const struct addon_def *addon_find(const char *name)
{
	for (const struct addon_def *const *d = all_addons; *d; d++)
		if (!strcmp((*d)->name, name))
			return *d;
	return NULL;
}

const struct addon_variant *addon_variant_find(const struct addon_def *def, const char *variant)
{
	for (size_t i = 0; i < def->n_variants; i++)
		if (!strcmp(def->variants[i].name, variant))
			return &def->variants[i];
	return NULL;
}

int addon_resolve(const char *name, const char *variant, const char *version,
		  const struct addon_def **def, const char **variant_out, char version_out[16],
		  struct miren_error *err)
{
	struct strbuf sb = STRBUF_INIT;
	*def = addon_find(name);
	if (!*def) {
		for (const struct addon_def *const *d = all_addons; *d; d++)
			strbuf_addf(&sb, "%s%s", sb.len ? ", " : "", (*d)->name);
		char *esc = text_escaped(name, strlen(name)); /* user input: one line */
		miren_error_set(err, MIREN_ENOTFOUND, "addon '%.100s' not found (available: %s)", esc,
				sb.buf);
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
		miren_error_set(err, MIREN_EINVAL, "addon '%s' has no variant '%.100s' (variants: %s)",
				name, esc, sb.buf);
		free(esc);
		miren_error_hint(err, "run 'miren addon variants %s' to see what each offers", name);
		strbuf_release(&sb);
		return MIREN_EINVAL;
	}
	*variant_out = v->name;
	char versions[8][16];
	size_t n = (*def)->versions(versions, 8);
	if (n == 0) {
		miren_error_set(err, MIREN_EUNAVAIL, "addon '%s' cannot run on this host: %s", name,
				"its server software is not installed");
		miren_error_hint(err, "install the Debian package postgresql-15 (scripts/bootstrap does)");
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
