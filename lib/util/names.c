/* Name rules; see names.h. */
#include "util/names.h"
#include "util/text.h"

#include <stdlib.h>

#include <string.h>

static int name_ok(const char *s, size_t max)
{
	size_t n = strlen(s);
	if (n == 0 || n > max || !(s[0] >= 'a' && s[0] <= 'z'))
		return 0;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-'))
			return 0;
	}
	return s[n - 1] != '-';
}

static enum miren_err check(const char *what, const char *name, struct miren_error *err)
{
	if (name_ok(name, APP_NAME_MAX))
		return 0;
	char *esc = text_escaped(name, strlen(name));
	miren_error_set(err, MIREN_EINVAL, "invalid %s name '%.80s%s'", what, esc,
			strlen(esc) > 80 ? "..." : "");
	free(esc);
	miren_error_hint(err,
			 "%s names use lowercase letters, digits and hyphens, start with a letter, "
			 "do not end with a hyphen and have at most %d characters",
			 what, APP_NAME_MAX);
	return MIREN_EINVAL;
}

enum miren_err name_check_app(const char *name, struct miren_error *err)
{
	return check("app", name, err);
}

enum miren_err name_check_service(const char *name, struct miren_error *err)
{
	return check("service", name, err);
}

enum miren_err name_check_cluster(const char *name, struct miren_error *err)
{
	return check("cluster", name, err);
}

enum miren_err name_check_env(const char *name, struct miren_error *err)
{
	size_t n = strlen(name);
	int ok = n > 0 && n <= 255 && !(name[0] >= '0' && name[0] <= '9');
	for (size_t i = 0; ok && i < n; i++) {
		char c = name[i];
		ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		     c == '_';
	}
	if (ok)
		return 0;
	char *esc = text_escaped(name, n);
	miren_error_set(err, MIREN_EINVAL, "invalid environment variable name '%.80s%s'", esc,
			strlen(esc) > 80 ? "..." : "");
	free(esc);
	miren_error_hint(err, "names use letters, digits and '_' and do not start with a digit");
	return MIREN_EINVAL;
}
