/* Numbers read from text; see num.h. */
#include "util/num.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>

/* True when c is a digit of base (10 or 16). */
static bool is_digit(char c, int base)
{
	if (c >= '0' && c <= '9')
		return true;
	return base == 16 && ((c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'));
}

bool num_parse(const char *s, long long min, long long max, long long *out)
{
	if (!s || !(is_digit(s[0], 10) || (s[0] == '-' && is_digit(s[1], 10))))
		return false;
	char *end;
	errno = 0;
	long long v = strtoll(s, &end, 10);
	if (errno || (*end && *end != '\n') || v < min || v > max)
		return false;
	*out = v;
	return true;
}

bool num_parse_u(const char *s, int base, unsigned long long max, unsigned long long *out,
		 const char **end)
{
	if (!s || !is_digit(s[0], base) ||
	    (base == 16 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')))
		return false;
	char *e;
	errno = 0;
	unsigned long long v = strtoull(s, &e, base);
	if (errno || v > max || (!end && *e && *e != '\n'))
		return false;
	*out = v;
	if (end)
		*end = e;
	return true;
}

pid_t num_pid(const char *s)
{
	long long v;
	return num_parse(s, 1, INT_MAX, &v) ? (pid_t)v : 0;
}
