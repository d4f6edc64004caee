/*
 * Services' logs (apps/<app>/logs/<service>.log, appended by the
 * supervisor).  Lock scope: none; a read sees what was appended so far.
 */
#ifndef MIREN_DAEMON_LOGS_H
#define MIREN_DAEMON_LOGS_H

#include <jansson.h>

#include "daemon/daemon.h"

/*
 * A slice of a service's log.  With offset >= 0, the bytes from offset on
 * (at most 1 MiB); with offset < 0, the last `tail` lines.
 * Returns {"service","data","offset"} where offset is where to continue.
 */
enum miren_err logs_read(struct daemon *d, const char *app, const char *service, long long offset,
			 int tail, json_t **result, struct miren_error *err);

#endif
