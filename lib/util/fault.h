/*
 * Fault points, for crash testing: fault_point("deploy:moved") kills the
 * process with SIGKILL, as `kill -9` would, when the daemon was started
 * with MIREN_FAULT set to exactly that name.  Off unless the variable is
 * set; reading it costs one getenv at start.
 *
 * MIREN_FAULT=<name>@<ms> arms a delayed kill instead: reaching the point
 * starts a timer and the work goes on; SIGKILL arrives <ms> milliseconds
 * later, wherever the daemon is then (inside a helper program, in the
 * middle of a copy, while a database runs a statement the daemon sent).
 * That is how the tests kill inside a step, not only between steps.
 *
 * MIREN_FAULT=list makes `miren` print every fault point this build
 * declares, one "<kind> <name>" a line, and exit (addon_fault_points in
 * addon/addon.h): the fault walks iterate that list.
 *
 * Names between the reconciler's steps (made from each engine's steps):
 * provision:<addon>:<variant>:<step>:ran (the step ran, its completion not
 * yet recorded) and :saved (recorded); deprovision:<addon>:<variant>:
 * <step>:ran and :saved; activate:<addon>:<variant>.  Names inside an
 * engine's steps are "<addon>:<what>", declared by the engine
 * (addon_def.fault_points).  The framework's own: deploy:moved (release
 * directory in place, not recorded); app-destroy:marked (the app's addons
 * are deprovisioning, the app not yet deleted); backup:started (the
 * engine's online backup began); backup:copied (files copied, the backup
 * not ended); restore:verified (staging complete, no swap yet);
 * restore:aside (old disk moved aside); restore:swapped (new disk in
 * place, its server not started); restore:started (its server answers,
 * the old disk still kept); restore:proven (the old disk moved to the
 * trash, not yet removed); restore:placed (a new disk recorded and in
 * place, the restore not yet answered).
 *
 * Filled spare disks (volume_spare_fill, volume_ensure): spare:filled (an
 * engine wrote its data into a spare being prepared, still mounted under
 * spares/, not yet in place); spare:ready (the prepared spare renamed into
 * place, its mount point not yet removed); spare:taken (a new disk took a
 * filled spare by a rename, not yet mounted under its name).
 *
 * Disk volumes (lib/disk/volume.c): volume:formatted (an image made as
 * .tmp, not yet renamed into place); volume:mounted (an image attached and
 * mounted, its root not yet handed to the service user); volume:grown (a
 * resize extended the image, the filesystem not yet grown);
 * volume:deleted (a removal deleted the image, its directory not yet).
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
