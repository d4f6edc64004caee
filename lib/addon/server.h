/*
 * Generic plumbing for the servers addons run on, shared by every engine:
 * the loopback address pool, disks (sized images or directories,
 * lib/disk/volume.h: every disk is made and removed through
 * addon_disk_ensure and addon_disk_remove), the server's supervisor id, log file, start and stop
 * under the supervisor, the records of a new server, and the resume at
 * daemon start.  Engines call these and add only what is theirs (the
 * argv, the readiness check, the SQL).
 *
 * Every function returns 0 or a miren_err with err filled; strings it
 * returns are malloc'd for the caller to free unless said otherwise.
 */
#ifndef MIREN_ADDON_SERVER_H
#define MIREN_ADDON_SERVER_H

#include <arpa/inet.h>
#include <jansson.h>

#include "addon/addon.h"

/* The lowest free address of the pool (its first and last, network and
 * broadcast, are never given), as text.  MIREN_ECONFLICT (not retried: it
 * takes a person) when the pool is exhausted.  Not reserved: record it on
 * a server row (addon_server_add) before another call. */
enum miren_err addon_address_alloc(struct addon_ctx *ctx, char out[INET_ADDRSTRLEN],
				   struct miren_error *err);

/* The directory of disk `name`: <data>/disks/<name>. */
char *addon_disk_dir(const struct addon_ctx *ctx, const char *name);

/* A disk's size when nothing says (an old record without one). */
#define ADDON_DISK_DEFAULT_BYTES (1ULL << 30)

/*
 * Makes disk `name` exist: its record (size_bytes: its declared size, 0:
 * unknown; created_by: who, for `miren debug disk list`; status "in use"
 * when a server record names the disk, else "unused") first, then its
 * storage (lib/disk/volume.h): a sparse ext4 image of size_bytes
 * loop-mounted at addon_disk_dir(), or a plain directory where loop devices
 * cannot be used; its root belongs to the service user.  spare (may be
 * NULL): the kind of filled spare (addon_disk_spare_fill) a new disk is
 * taken from when one of its size is ready, so that it already holds what
 * the engine wrote there ahead of time (the engine checks it is still
 * what it wants: a spare may be of an earlier fill).  Idempotent: an
 * existing record and volume are kept (the record's size is updated; a
 * volume is grown only by `miren disk resize`).  A crash between the two
 * leaves a record the next call completes.  MIREN_EIO when the image
 * cannot be made or mounted.
 */
enum miren_err addon_disk_ensure(struct addon_ctx *ctx, const char *name, long long size_bytes,
				 const char *created_by, const char *spare,
				 struct miren_error *err);
/* Only the record of addon_disk_ensure (a restore then moves its verified
 * copy into place as the disk's volume). */
enum miren_err addon_disk_record(struct addon_ctx *ctx, const char *name, long long size_bytes,
				 const char *created_by, struct miren_error *err);
/* Makes the storage of a recorded disk usable (mounted) before a server
 * writes it: after a reboot, or an image that could not be mounted at
 * start.  MIREN_ENOTFOUND without a record, MIREN_EIO when it cannot be
 * mounted (the server must then not start: it would write the empty mount
 * point). */
enum miren_err addon_disk_ready(struct addon_ctx *ctx, const char *name, struct miren_error *err);
/* Off the provisioning path (the reconciler's preparer thread): a formatted
 * spare image for every disk size a variant declares, so that the next
 * disk of that size is a rename and a mount. */
void addon_disk_spares(struct addon_ctx *ctx);
/*
 * Off the provisioning path (an engine's idle hook): makes the filled
 * spare disk of kind `spare` (1..32 of [a-z0-9]: what the engine writes,
 * e.g. an engine and its version) and size_bytes ready unless it is, fill(dir, user, err)
 * writing the engine's data into the new disk's directory (and flushing
 * it); the next addon_disk_ensure of that size and spare takes the whole
 * disk by a rename (volume_spare_fill in lib/disk/volume.h; also in dirs
 * mode).  A kill at any instant leaves nothing the next start does not
 * remove, and never half a spare.  0, fill's error, or MIREN_EIO.
 */
enum miren_err addon_disk_spare_fill(struct addon_ctx *ctx, const char *spare, long long size_bytes,
				     enum miren_err (*fill)(const char *dir, void *user,
							    struct miren_error *err),
				     void *user, struct miren_error *err);
/* Removes the storage of disk `name` (unmounted, image and loop device
 * gone) and then its record.  Idempotent: a missing disk is success.  The
 * caller holds the disk's lock and has stopped every server on it. */
enum miren_err addon_disk_remove(struct addon_ctx *ctx, const char *name, struct miren_error *err);

/* The supervisor id of a server: "addon/<server id>". */
char *addon_server_sv_id(const char *server_id);
/* The log file of a server: <data>/logs/addons/<server id>.log. */
char *addon_server_log_path(const struct addon_ctx *ctx, const char *server_id);

/*
 * Records a new server of engine (the addon name) unless server `id`
 * exists: the lowest free address, then the row (id, kind, disk, address,
 * port, state_json: the engine's own text), then its disk
 * (addon_disk_ensure with size_bytes, created_by and spare).  Each part is
 * idempotent; an existing row is kept as is and its disk made sure of.
 */
enum miren_err addon_server_add(struct addon_ctx *ctx, const char *engine, const char *id,
				const char *kind, const char *disk, int port,
				const char *state_json, long long size_bytes,
				const char *created_by, const char *spare, struct miren_error *err);

/* How a server process runs (addon_server_start). */
struct addon_server_spec {
	char *const *argv;   /* argv[0] an absolute path; NULL-terminated */
	char *const *env;    /* the whole environment; NULL: LANG=C.UTF-8, PATH */
	const char *cwd;     /* NULL: the disk directory */
	int stop_signal;     /* 0: SIGTERM (the engine's fast, clean shutdown) */
	int stop_timeout_ms; /* 0: 30000; then SIGKILL */
	/* The supervisor's prestart hook and its argument (owned by the
	 * supervisor from the call on, also when it fails); may be NULL. */
	enum miren_err (*prestart)(void *arg, struct miren_error *err);
	void *prestart_arg;
	void (*prestart_free)(void *arg);
};

/*
 * Starts srv under the supervisor (as ctx's uid/gid, output appended to
 * addon_server_log_path, kept running across a daemon exit, adopting one
 * a previous daemon left running).  A server already supervised is left
 * as is.  MIREN_E* from the supervisor with "cannot start <engine> for
 * disk <disk>: <why>".
 */
enum miren_err addon_server_start(struct addon_ctx *ctx, const struct server_rec *srv,
				  const struct addon_server_spec *spec, struct miren_error *err);
/* Stops srv's process (blocks until it is gone); a server not supervised
 * is fine. */
void addon_server_stop(struct addon_ctx *ctx, const char *server_id);
/* Whether the supervisor runs server_id; st (may be NULL) gets its status. */
bool addon_server_supervised(struct addon_ctx *ctx, const char *server_id, struct sv_status *st);

/*
 * Stops a server and removes it with its disk: takes the disk's lock
 * (bounded wait, MIREN_ECONFLICT when busy), stops the process, calls
 * cleanup (may be NULL: the engine removes what it keeps outside the disk,
 * e.g. a socket directory), removes the disk (addon_disk_remove) and the
 * server's row.  Idempotent: a server that no longer exists is success.
 */
enum miren_err addon_server_release(struct addon_ctx *ctx, const char *server_id,
				    void (*cleanup)(struct addon_ctx *ctx,
						    const struct server_rec *srv),
				    struct miren_error *err);

/*
 * At daemon start (an engine's resume hook): for every server of engine,
 * calls start (which starts or adopts it; addon_server_start) unless the
 * disk directory is missing, logging failures.  A server the store knows
 * with an unknown or empty engine is logged once.
 */
void addon_resume_servers(struct addon_ctx *ctx, const char *engine,
			  enum miren_err (*start)(struct addon_ctx *ctx,
						  const struct server_rec *srv,
						  struct miren_error *err));

/* The server a disk belongs to; MIREN_ENOTFOUND when none (out zeroed). */
int addon_server_of_disk(struct addon_ctx *ctx, const char *disk, struct server_rec *out);

/* Puts the last line of the server's log that holds `marker` (e.g. the
 * engine's "FATAL:") into err's hint: why a server did not start is there,
 * not in the connection error. */
void addon_server_log_hint(struct addon_ctx *ctx, const char *server_id, const char *marker,
			   struct miren_error *err);

/* A string member of JSON object o, "" when absent or not a string (o may
 * be NULL).  Owned by o. */
const char *addon_jstr(const json_t *o, const char *key);

/*
 * The shell words that run `miren addon-helper <addon>` (addon_def.helper)
 * with this very binary: "'/path/to/miren' addon-helper '<addon>'" (the
 * engine appends its verb and arguments).  NULL when the binary's path
 * cannot be read or holds a quote or a control character (it cannot be
 * quoted safely for sh).  Caller frees.
 */
char *addon_helper_command(const char *addon);

#endif
