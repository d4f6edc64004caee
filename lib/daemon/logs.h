/*
 * Services' logs (apps/<app>/logs/<service>.log, appended by the
 * supervisor).  Lock scope: none; a read sees what was appended so far.
 */
#ifndef MIREN_DAEMON_LOGS_H
#define MIREN_DAEMON_LOGS_H

#include <jansson.h>

#include "daemon/daemon.h"

/*
 * A slice of a service's log, at most 1 MiB: with offset >= 0 (and not
 * past the end), the bytes from offset on; else from the start of the last
 * `tail` lines (any number; tail <= 0: none, the end).  Returns
 * {"service","data","offset","more"}: offset is where to continue, more
 * says the log goes on past it (read again from offset for the rest).
 */
enum miren_err logs_read(struct daemon *d, const char *app, const char *service, long long offset,
			 int tail, json_t **result, struct miren_error *err);

#endif
