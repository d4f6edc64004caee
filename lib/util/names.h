/*
 * Name rules shared by the CLI and the daemon.  A refused name is quoted in
 * the message with its control characters escaped (text_escape).
 */
#ifndef MIREN_NAMES_H
#define MIREN_NAMES_H

#include "util/err.h"

#define APP_NAME_MAX 63

/* App names: lowercase letters, digits and hyphens, starting with a letter,
 * at most 63 characters.  Returns 0 or MIREN_EINVAL with err filled. */
enum miren_err name_check_app(const char *name, struct miren_error *err);
/* Service names: the same rule. */
enum miren_err name_check_service(const char *name, struct miren_error *err);
/* Cluster names (miren cluster add): the same rule. */
enum miren_err name_check_cluster(const char *name, struct miren_error *err);
/* Environment variable names: [A-Za-z_][A-Za-z0-9_]*, at most 255. */
enum miren_err name_check_env(const char *name, struct miren_error *err);

#endif
