/*
 * The app config: what .miren/app.toml declares, validated.
 *
 * app_config_parse() turns TOML text into a struct app_config or an error
 * with "FILE:LINE:COL: reason".  Keys it does not know are not errors: each
 * becomes a warning naming the key and its line.  The same model serialises
 * to JSON (stored with every release) and back.
 */
#ifndef MIREN_APP_CONFIG_H
#define MIREN_APP_CONFIG_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/err.h"

struct app_env {
	char *key;
	char *value; /* NULL: declared without a value (must come from elsewhere) */
	bool sensitive;
	bool required;
	char *description; /* NULL when none */
};

struct app_service {
	char *name;
	char *command;
	int port; /* 0: the daemon picks a free one */
	struct app_env *env;
	size_t n_env;
};

struct app_addon {
	char *name;
	char *variant; /* NULL: the addon's default */
	char *version; /* NULL: the addon's default */
	/* backups = { every = "6h", keep = 28 }: the backup schedule
	 * (backups_every_s 0: app.toml sets none). */
	int64_t backups_every_s;
	int backups_keep;
	/* rotate_every = "30d": the app's credentials are rotated once they
	 * are that old (0: app.toml asks for none). */
	int64_t rotate_every_s;
};

/* Bounds of rotate_every: 1 minute to 366 days. */
#define APP_ROTATE_EVERY_MIN 60
#define APP_ROTATE_EVERY_MAX (366LL * 86400)

/* Bounds of a backup schedule: every from 1 minute to 366 days, keep
 * from 1 to 1000 backups; keep defaults to 7. */
#define APP_BACKUPS_EVERY_MIN 60
#define APP_BACKUPS_EVERY_MAX (366LL * 86400)
#define APP_BACKUPS_KEEP_MAX 1000
#define APP_BACKUPS_KEEP_DEFAULT 7
/* Checks a schedule's values against those bounds: MIREN_EINVAL with a
 * message and a hint (nothing else) otherwise. */
enum miren_err app_backups_check(int64_t every_s, long long keep, struct miren_error *err);

struct app_config {
	char *name;
	struct app_service *services;
	size_t n_services;
	struct app_env *env;
	size_t n_env;
	struct app_addon *addons;
	size_t n_addons;
	char **warnings; /* "app.toml:7: unknown key 'foo'" */
	size_t n_warnings;
};

/*
 * Parses app.toml text.  filename is used in messages; fallback_name is the
 * app name when the file has no `name` (the project directory's name).
 * Returns 0 with *out set (caller frees with app_config_free), or
 * MIREN_EINVAL with err filled.
 */
enum miren_err app_config_parse(const char *text, size_t len, const char *filename,
				const char *fallback_name, struct app_config **out,
				struct miren_error *err);
void app_config_free(struct app_config *cfg);

json_t *app_config_to_json(const struct app_config *cfg);
/* Returns NULL when j is not a config this code wrote. */
struct app_config *app_config_from_json(const json_t *j);
const struct app_service *app_config_service(const struct app_config *cfg, const char *name);

#endif
