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
 *
 * `miren disk delete`: disk-delete:marked (the record says "deleting",
 * the volume is still there); disk-delete:removed (the volume is gone,
 * the record not yet).
 *
 * Backup schedules (lib/daemon/schedules.c): schedule:taken (a scheduled
 * backup is stored, the schedule does not record it yet); schedule:recorded
 * (recorded, not yet verified or pruned); prune:removed (retention or an
 * expiry removed one backup, maybe not all it will, no gc yet);
 * prune:pruned (every backup to go is gone, gc not run).
 *
 * The backup store (lib/backup/bstore.c): bstore:chunk-written (a new
 * chunk renamed into chunks/, no manifest names it yet);
 * bstore:chunks-synced (every chunk of a backup durable, its manifest not
 * yet written); bstore:manifest-written (the manifest complete in tmp/,
 * not yet renamed); bstore:committed (the manifest in place, its
 * directory not yet fsynced); bstore:removed (a manifest unlinked, its
 * directory not yet fsynced); bstore:gc-marked (gc read every manifest,
 * removed nothing yet); bstore:gc-removed (gc removed its first chunk).
 * tests/unit/test_bstore.c walks them (and kills at delays after them).
 *
 * Addon backups (lib/daemon/backups.c): addon-backup:dumped (a shared
 * tenant's dump written to tmp/, nothing stored yet); addon-backup:stored
 * (the backup committed to the store, not yet answered);
 * addon-restore:scratch-dumped (the app's tenant read out of a scratch
 * server on another server's disk backup, nothing changed);
 * addon-restore:staged (the dump to load verified and in tmp/, nothing
 * changed); addon-restore:loaded (the app's data replaced, the app not yet
 * restarted: its journal restarts it at the next start).
 *
 * Scratch servers (lib/addon/scratch.h): scratch:read (a backup read into
 * a scratch area, no server yet); scratch:started (its scratch server
 * answers); scratch:checked (the checker ran, the server not stopped).
 * Point-in-time recovery (backups_restore_to): pitr:recovered (a scratch
 * server recovered to the instant and the app's tenant dumped from it
 * into tmp/, nothing changed); pitr:loaded (the app's data replaced, the
 * app not yet restarted: its journal restarts it).  Inside an engine
 * that archives its write-ahead log (its pitr.c): <addon>:pitr:
 * base-started (a background base backup began, nothing stored),
 * base-stored (committed to the store), base-pruned (an old base backup
 * removed, its WAL not yet tidied), wal-tidied (archived WAL older than
 * the oldest kept base backup removed).  t0251 walks them all.
 *
 * Credential rotation (lib/daemon/rotate.c): rotate:planned (new
 * credentials chosen and recorded, the server not yet told);
 * rotate:switched (they work beside the old ones, the env has them, the
 * app not yet restarted); rotate:restarted (the app runs on them, the old
 * ones still work); rotate:revoked (the old ones refused, not yet
 * answered).  t0271 walks them.
 *
 * Rollback (lib/daemon/apps.c, apps_rollback): rollback:copied (the
 * release's directory copied into tmp/, nothing recorded); rollback:moved
 * (the copy in releases/<n>, not recorded: removed at start);
 * rollback:recorded (release <n> recorded as current, its services not
 * yet started: started at start).  t0017 walks them.
 *
 * Forks (lib/daemon/fork.c): fork:recorded (the target's instance and its
 * source recorded, nothing provisioned yet: the reconciler finishes it);
 * fork:dumped (the source's data dumped into tmp/, the new instance not
 * yet loaded); fork:filled (loaded, the fill step not yet recorded: it is
 * run again); fork:failed (a fork's provisioning or fill failed and its
 * instance is recorded in error, not yet removed: removed at start).
 * t0288 walks them.
 *
 * Variant change (lib/daemon/change.c): change:planned (the change
 * recorded, nothing made), change:provisioned (the new instance made,
 * empty), change:copying (the copy follows the app's writes),
 * change:paused (the pause recorded, about to begin), change:copied (the
 * app's writes refused, the new instance holds everything, not yet
 * switched), change:switched (the app's instance and env are the new one,
 * the app not yet restarted), change:restarted (the app runs on the new
 * one, the old one still there), change:removed (the old one gone, the
 * change's record not yet).  A kill before the switch is undone at the
 * next start, after it finished.  t0281 and t0284 walk them (one engine
 * each).
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
