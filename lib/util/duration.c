/* Durations in text; see duration.h. */
#include "util/duration.h"
#include "util/strbuf.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

static const struct unit {
	char c;
	int64_t secs;
} units[] = { { 'w', 604800 }, { 'd', 86400 }, { 'h', 3600 }, { 'm', 60 }, { 's', 1 } };

#define MAX_SECS (100LL * 366 * 86400)

enum miren_err duration_parse(const char *s, const char *what, int64_t *secs,
			      struct miren_error *err)
{
	int64_t total = 0;
	const char *p = s;
	bool ok = s && *s;
	while (ok && *p) {
		int64_t n = 0;
		const char *start = p;
		while (*p >= '0' && *p <= '9' && n <= MAX_SECS)
			n = n * 10 + (*p++ - '0');
		const struct unit *u = NULL;
		for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++)
			if (*p == units[i].c)
				u = &units[i];
		ok = p > start && u && n <= MAX_SECS;
		if (ok) {
			total += n * u->secs;
			ok = total <= MAX_SECS;
			p++;
		}
	}
	if (ok && total > 0) {
		*secs = total;
		return 0;
	}
	miren_error_set(err, MIREN_EINVAL, "invalid duration '%.60s'%s%s", s ? s : "",
			what ? " for " : "", what ? what : "");
	miren_error_hint(err, "give a whole number with a unit: s, m, h, d or w (seconds, "
			      "minutes, hours, days, weeks), e.g. 30m, 6h, 1d");
	return MIREN_EINVAL;
}

char *duration_text(int64_t secs)
{
	struct strbuf sb;
	strbuf_init(&sb, 0);
	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]) && secs > 0; i++) {
		/* Weeks only when whole: "10d" reads better than "1w3d". */
		if (units[i].c == 'w' && secs % units[i].secs)
			continue;
		if (secs >= units[i].secs) {
			strbuf_addf(&sb, "%lld%c", (long long)(secs / units[i].secs), units[i].c);
			secs %= units[i].secs;
		}
	}
	if (!sb.len)
		strbuf_adds(&sb, "0s");
	return strbuf_detach(&sb, NULL);
}
