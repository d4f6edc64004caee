/*
 * Compiler attributes, named for what they say.
 *
 * MIREN_UNUSED marks a parameter a function deliberately ignores (a
 * callback's or a table entry's fixed signature, a cmocka test's state):
 * the build has -Wunused-parameter on, so every other unused parameter is a
 * warning (an error with -Werror).  Write it after the parameter's name:
 *
 *	static int on_progress(void *arg, curl_off_t dltotal MIREN_UNUSED, ...)
 */
#ifndef MIREN_COMPILER_H
#define MIREN_COMPILER_H

#define MIREN_UNUSED __attribute__((unused))

#endif
