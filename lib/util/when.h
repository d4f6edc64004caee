/*
 * Points in time people type: "2026-11-30 12:34:56+00" (a date and time
 * with its offset) or "10m-ago" (relative to now).
 */
#ifndef MIREN_WHEN_H
#define MIREN_WHEN_H

#include <stdint.h>

#include "util/err.h"

/*
 * Parses s into unix seconds: "YYYY-MM-DD HH:MM[:SS]" ('T' may stand for
 * the space) followed by an offset "+HH", "+HHMM", "+HH:MM", "-HH...",
 * "Z" or " UTC", or nothing (UTC); or "<N>s-ago", "<N>m-ago", "<N>h-ago",
 * "<N>d-ago" counted back from now.  Returns 0, or MIREN_EINVAL with the
 * forms it takes in the hint.
 */
enum miren_err when_parse(const char *s, int64_t now, int64_t *out, struct miren_error *err);

#endif
