/* Points in time people type; see when.h. */
#include "util/when.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

/* n digits at *p into *v (advancing *p); false if they are not there. */
static bool digits(const char **p, int n, int *v)
{
	*v = 0;
	for (int i = 0; i < n; i++) {
		char c = (*p)[i];
		if (c < '0' || c > '9')
			return false;
		*v = *v * 10 + (c - '0');
	}
	*p += n;
	return true;
}

static bool relative(const char *s, int64_t now, int64_t *out)
{
	size_t n = strlen(s);
	if (n < 6 || strcmp(s + n - 4, "-ago"))
		return false;
	long long v = 0;
	size_t i = 0;
	for (; i < n - 5 && s[i] >= '0' && s[i] <= '9'; i++) {
		v = v * 10 + (s[i] - '0');
		if (v > 100LL * 365 * 86400)
			return false;
	}
	if (i == 0 || i != n - 5)
		return false;
	long long unit = s[i] == 's'   ? 1
			 : s[i] == 'm' ? 60
			 : s[i] == 'h' ? 3600
			 : s[i] == 'd' ? 86400
				       : 0;
	if (!unit)
		return false;
	*out = now - v * unit;
	return true;
}

static bool absolute(const char *s, int64_t *out)
{
	const char *p = s;
	int y, mo, d, h, mi, sec = 0;
	if (!digits(&p, 4, &y) || *p++ != '-' || !digits(&p, 2, &mo) || *p++ != '-' ||
	    !digits(&p, 2, &d) || (*p != ' ' && *p != 'T'))
		return false;
	p++;
	if (!digits(&p, 2, &h) || *p++ != ':' || !digits(&p, 2, &mi))
		return false;
	if (*p == ':' && (p++, !digits(&p, 2, &sec)))
		return false;
	if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60)
		return false;
	int off = 0; /* seconds east of UTC */
	if (!strcmp(p, "") || !strcmp(p, "Z") || !strcmp(p, " UTC")) {
		/* UTC */
	} else if (*p == '+' || *p == '-') {
		int sign = *p++ == '-' ? -1 : 1, oh, om = 0;
		if (!digits(&p, 2, &oh))
			return false;
		if (*p == ':')
			p++;
		if (*p && !digits(&p, 2, &om))
			return false;
		if (*p || oh > 14 || om > 59)
			return false;
		off = sign * (oh * 3600 + om * 60);
	} else {
		return false;
	}
	struct tm tm = { .tm_year = y - 1900,
			 .tm_mon = mo - 1,
			 .tm_mday = d,
			 .tm_hour = h,
			 .tm_min = mi,
			 .tm_sec = sec };
	time_t t = timegm(&tm);
	if (t == (time_t)-1 || tm.tm_mday != d) /* 2026-02-30 */
		return false;
	*out = (int64_t)t - off;
	return true;
}

enum miren_err when_parse(const char *s, int64_t now, int64_t *out, struct miren_error *err)
{
	if (s && strlen(s) < 64 && (relative(s, now, out) || absolute(s, out)))
		return 0;
	miren_error_set(err, MIREN_EINVAL, "'%.64s' is not a point in time", s ? s : "");
	miren_error_hint(err, "give a time such as \"2026-11-30 12:34:56+00\" (with its offset; "
			      "UTC without one) or \"10m-ago\" (s, m, h or d)");
	return MIREN_EINVAL;
}
