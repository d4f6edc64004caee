/*
 * Random secrets from getrandom(2).
 */
#ifndef MIREN_SECRET_H
#define MIREN_SECRET_H

#include "util/err.h"

#include <stddef.h>

/* Fills buf with n random bytes. Returns 0 or MIREN_EIO. */
enum miren_err secret_bytes(void *buf, size_t n);
/* A password of 32 characters from [A-Za-z0-9] (190 bits). Caller frees. */
char *secret_password(void);
/* n random bytes as lowercase hex (2n characters). Caller frees. */
char *secret_hex(size_t n);

#endif
