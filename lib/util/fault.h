/*
 * Fault points, for crash testing: fault_point("provision:small:server:run")
 * kills the process with SIGKILL, as `kill -9` would, when the daemon was
 * started with MIREN_FAULT set to exactly that name.  Off unless the
 * variable is set; reading it costs one getenv at start.
 *
 * MIREN_FAULT=<name>@<ms> arms a delayed kill instead: reaching the point
 * starts a timer and the work goes on; SIGKILL arrives <ms> milliseconds
 * later, wherever the daemon is then (inside initdb, in the middle of a
 * copy, while a backend runs a statement the daemon sent).  That is how
 * the tests kill inside a step, not only between steps.
 *
 * Names between steps: provision:<variant>:<step>:ran (the step ran, its
 * completion not yet recorded) and :saved (recorded);
 * deprovision:<variant>:<step>:ran and :saved; activate:<variant>;
 * deploy:moved (release directory in place, not recorded);
 * app-destroy:marked (the app's addons are deprovisioning, the app not yet
 * deleted); backup:started
 * (pg_backup_start ran); backup:copied (files copied, pg_backup_stop not
 * run); restore:verified (staging complete, no swap yet); restore:aside
 * (old disk moved aside); restore:swapped (new disk in place, its server not
 * started); restore:started (its server answers, the old disk still kept);
 * restore:proven (the old disk moved to the trash, not yet removed);
 * restore:placed (a new disk in place, not yet recorded).
 *
 * Names inside steps (pg.c, provider_pg.c): template:initdb (initdb about
 * to run; with @ms the kill lands while it and its postgres children
 * run), template:made (initdb done, template not yet renamed into place),
 * clone:copying (the copy of the template into a disk starts),
 * clone:copied (copied, not yet renamed), spare:copying (the preparer
 * starts copying a spare), server:started (the postmaster was started, not
 * yet answering), server:rotated (superuser password changed, not yet
 * recorded), tenant:role (the role exists, the database not yet),
 * tenant:database (CREATE DATABASE, or the rename of a spare database,
 * sent and its result not yet read: the backend goes on after the daemon
 * died).
 */
#ifndef MIREN_FAULT_H
#define MIREN_FAULT_H

/* Reads MIREN_FAULT once; call at daemon start. */
void fault_init(void);
/* Crashes here (or arms the delayed kill) when name is the armed point. */
void fault_point(const char *name);
/* The same with the name built from printf-style arguments. */
void fault_pointf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
