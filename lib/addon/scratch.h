/*
 * Scratch servers: a private server of an engine on a copy of data, off
 * every app's path, for proving a backup sound (scratch_verify) and for
 * reading one tenant out of a disk backup (scratch_tenant_dump).  The
 * engine's side is the scratch_* hooks of addon.h.
 *
 * A scratch area is a volume of its own named ".scratch-<hex>" (an ext4
 * image when the daemon uses them, so a big backup cannot fill the data
 * directory's filesystem; else a plain directory), mounted at
 * DATA/disks/.scratch-<hex>/, holding
 *
 *   in/       the snapshot, read and verified whole (snap_read); for a
 *             disk backup the server's disk directory
 *   in/dump   for a dump backup (header "kind": "dump"): the engine's
 *             logical dump of one tenant (the dump hook's format)
 *   fresh/    for a dump backup: the disk directory of a fresh server
 *             into which the dump is loaded (scratch_load)
 *
 * The server runs under the supervisor (scratch_spawn; not kept over a
 * daemon exit).  Crash safety: nothing is recorded; a daemon killed at
 * any instant leaves at most a ".scratch-*" volume (with a server the
 * supervisor's next start kills, or one an engine's disk_server finds),
 * and scratch_recover at the next start stops what runs there and
 * removes it.
 *
 * Fault points (operation): scratch:read (the snapshot is extracted and
 * verified, no server started), scratch:started (the scratch server
 * answers), scratch:checked (the checker ran, the server not stopped).
 */
#ifndef MIREN_ADDON_SCRATCH_H
#define MIREN_ADDON_SCRATCH_H

#include <jansson.h>
#include <stdbool.h>

#include "addon/addon.h"
#include "disk/snapshot.h"

/* The volume name prefix of every scratch area. */
#define SCRATCH_PREFIX ".scratch-"

/* The header "kind" of a snapshot holding one tenant's logical dump, and
 * the member (below "disk/") that holds the dump. */
#define SCRATCH_KIND_DUMP "dump"
#define SCRATCH_DUMP_MEMBER "dump"

struct scratch;

/* Where a backup comes from: a .miren.zst stream (snap_read), or with
 * raw an uncompressed tar stream such as the backup store's
 * (bstore_source; snap_read_raw). */
struct scratch_source {
	snap_source_fn fn;
	void *user;
	bool raw;
};

/*
 * Makes a scratch area and reads the snapshot from source into it
 * (verifying every checksum); then starts def's scratch server on it: on
 * the restored disk (after the engine's restore_prepare, unless opts asks
 * for a recovery target, which the engine's scratch_start then reaches),
 * or for a dump snapshot on a fresh server into which the dump is loaded.
 * def NULL: the engine the header names ("addon").  source NULL: a fresh,
 * empty server (nothing read).  opts: NULL or the scratch_start hook's
 * options.  Returns 0 with *out, or a miren_err with nothing left behind:
 * MIREN_EINVAL for a snapshot that is damaged, of another engine, or that
 * the engine cannot run; the hooks' errors otherwise.
 */
enum miren_err scratch_open(struct addon_ctx *ctx, const struct addon_def *def,
			    const struct scratch_source *source, const json_t *opts,
			    struct scratch **out, struct miren_error *err);
/* The snapshot's header (NULL for a fresh server), the engine, the
 * engine's handle (for scratch_dump / scratch_check / scratch_load). */
const json_t *scratch_header(const struct scratch *s);
const struct addon_def *scratch_def(const struct scratch *s);
struct addon_scratch *scratch_server(struct scratch *s);
/* Stops the server and removes the area (also after a failed start). */
void scratch_close(struct addon_ctx *ctx, struct scratch *s);

/*
 * Proves a backup sound: reads it from source into a scratch server
 * (scratch_open) and runs the engine's checker.  def: the engine the
 * backup should be of (NULL: the header's).  With dump_fd >= 0, then
 * also reads one tenant out of it (scratch_dump of tenant, as
 * scratch_tenant_dump does; tenant NULL: the header's, or a dump
 * backup's loaded one) into dump_fd: proof that the app's own data comes
 * back.  Returns 0 with *result {"ok": true, "kind": "disk"|"dump",
 * "addon", "checker", "files", "bytes", "seconds"}; otherwise the error
 * (MIREN_EINVAL "the data is damaged: ..." from the checker, or what
 * reading, starting or dumping said).
 */
enum miren_err scratch_verify(struct addon_ctx *ctx, const struct addon_def *def,
			      const struct scratch_source *source, const json_t *tenant,
			      int dump_fd, json_t **result, struct miren_error *err);

/*
 * Reads one tenant out of a backup: the snapshot from source (a disk
 * backup of a server holding it, or a dump backup) in a scratch server,
 * then the engine's scratch_dump of `tenant` (tenant_facts of the
 * backed-up instance; NULL: the header's "tenant", else, for a dump
 * backup, the loaded one) written to fd, in the format the engine's load
 * hook takes.  opts as for scratch_open.  fd stays open.
 */
enum miren_err scratch_tenant_dump(struct addon_ctx *ctx, const struct addon_def *def,
				   const struct scratch_source *source, const json_t *tenant,
				   const json_t *opts, int fd, struct miren_error *err);

/*
 * For engines' scratch_start: runs argv (argv[0] a path) as the scratch
 * server of dir (a scratch area's in/ or fresh/, or any private directory
 * of the caller's, such as a restore's staging volume) under the
 * supervisor as "scratch/<16 hex of dir's SHA-256>" (not kept over a
 * daemon exit), as the service user, in dir, its output in
 * logs/addons/scratch-<same hex>.log; stop_signal ends it (SIGKILL after
 * 30 s).  scratch_kill stops it (no-op when none runs) and removes its
 * log.
 */
enum miren_err scratch_spawn(struct addon_ctx *ctx, const char *dir, char *const *argv,
			     int stop_signal, struct miren_error *err);
void scratch_kill(struct addon_ctx *ctx, const char *dir);
/* Whether the scratch server of dir exited since scratch_spawn (it failed
 * to start; the supervisor would only restart it). */
bool scratch_exited(struct addon_ctx *ctx, const char *dir);
/* The last lines of the scratch server's log of dir (for an error's
 * detail when it does not start); "" when none.  Caller frees. */
char *scratch_log_tail(const struct addon_ctx *ctx, const char *dir, size_t max);

/* At daemon start, after volumes_recover: stops any server a killed
 * daemon left in a scratch area (every engine's disk_server) and removes
 * the areas. */
void scratch_recover(struct addon_ctx *ctx);

#endif
