/*
 * Fault points, for crash testing: fault_point("provision:small:server:run")
 * kills the process with SIGKILL, as `kill -9` would, when the daemon was
 * started with MIREN_FAULT set to exactly that name.  Off unless the
 * variable is set; reading it costs one getenv at start.
 *
 * Names: provision:<variant>:<step>:ran (the step ran, its completion not
 * yet recorded) and :saved (recorded); deprovision:<variant>:<step>:ran and
 * :saved; activate:<variant>; deploy:moved (release directory in place, not
 * recorded); backup:started (pg_backup_start ran); backup:copied (files
 * copied, pg_backup_stop not run); restore:verified (staging complete, no
 * swap yet); restore:aside (old disk moved aside); restore:swapped (new disk
 * in place, its server not started); restore:started (its server answers,
 * the old disk still kept); restore:proven (the old disk moved to the trash,
 * not yet removed); restore:placed (a new disk in place, not yet recorded).
 */
#ifndef MIREN_FAULT_H
#define MIREN_FAULT_H

/* Reads MIREN_FAULT once; call at daemon start. */
void fault_init(void);
/* Crashes here when name is the armed fault point. */
void fault_point(const char *name);
/* The same with the name built from printf-style arguments. */
void fault_pointf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
