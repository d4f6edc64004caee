/*
 * What a PostgreSQL server needs before every start, whatever a reboot, a
 * power loss or a crash left behind: its socket directory (under /run or
 * /tmp, gone after a reboot), and no stale lock file.  A lock file
 * (DISK/pgdata/postmaster.pid, or .s.PGSQL.<port>.lock in the socket
 * directory) names a pid; PostgreSQL refuses to start while any process of
 * its user holds that pid, and after a reboot the pid may well belong to
 * an app service (they run as the same user).  A lock file is removed
 * unless its pid is a live postgres of this very data directory.
 */
#ifndef MIREN_ADDON_PG_START_H
#define MIREN_ADDON_PG_START_H

#include "util/err.h"
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* Is pid a live postgres process of pgdata (an absolute path): its
 * executable is named postgres and it runs in pgdata (a postmaster
 * chdirs there) or was given "-D pgdata"? */
bool pg_is_postmaster_of(pid_t pid, const char *pgdata);

/* The supervisor's prestart hook (struct sv_spec) for the server of
 * disk_dir: makes pg_prestart_new's argument, which pg_prestart_free
 * frees.  pg_prestart_run recreates the socket directory and removes
 * stale lock files; returns 0, or nonzero with err filled. */
void *pg_prestart_new(const char *disk_dir, uid_t uid, gid_t gid);
enum miren_err pg_prestart_run(void *arg, struct miren_error *err);
void pg_prestart_free(void *arg);

#endif
