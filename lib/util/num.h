/*
 * Numbers read from text the program did not write itself: a pid file, a
 * /proc entry's name, a tool's output, an environment variable.  Unlike
 * atoi(3) and sscanf(3), a value that is not a number, or is out of
 * range, is reported, not read as 0 or as its first digits.
 */
#ifndef MIREN_NUM_H
#define MIREN_NUM_H

#include <stdbool.h>
#include <sys/types.h>

/*
 * Parses the decimal integer that s starts with (an optional '-', then
 * digits; no leading space or '+') when what follows it is the end of s or
 * a newline (so the first line of a file reads as well as a whole string),
 * and it lies in [min, max].  Sets *out and returns true; otherwise returns
 * false and leaves *out as it was.
 */
bool num_parse(const char *s, long long min, long long max, long long *out);

/*
 * Parses the unsigned integer in base (10 or 16; no "0x", no sign) that s
 * starts with, when it is at most max.  With end NULL, what follows it must
 * be the end of s or a newline, as for num_parse; otherwise *end is set to
 * the first character after the digits and the caller judges it.  Sets
 * *out and returns true; otherwise returns false and leaves both as they
 * were.
 */
bool num_parse_u(const char *s, int base, unsigned long long max, unsigned long long *out,
		 const char **end);

/* The process id s names (a /proc entry's name, a pid file's first line),
 * or 0 when s is not a number from 1 to the largest pid_t. */
pid_t num_pid(const char *s);

#endif
