/*
 * Durations as people write them in app.toml and on the command line:
 * a whole number and a unit, "90s", "30m", "6h", "1d", "2w" (seconds,
 * minutes, hours, days, weeks), or several ("1h30m").
 */
#ifndef MIREN_DURATION_H
#define MIREN_DURATION_H

#include <stdint.h>

#include "util/err.h"

/* Parses s into *secs (> 0, at most 100 years).  MIREN_EINVAL naming s
 * (and what = where it came from, e.g. "every") with a hint otherwise. */
enum miren_err duration_parse(const char *s, const char *what, int64_t *secs,
			      struct miren_error *err);
/* The shortest text duration_parse reads back as secs ("6h", "1d",
 * "1h30m"); caller frees. */
char *duration_text(int64_t secs);

#endif
