/*
 * The addon framework: a registry of addon definitions, the providers that
 * implement them as ordered idempotent steps, and the reconciler thread
 * that drives each instance
 *
 *   pending -> provisioning -> active      (or error, with a message)
 *              (a fork: the engine's steps, then the fill, then active)
 *   deprovisioning -> (gone)
 *
 * recording each completed step in the store before running the next, so
 * a daemon killed at any instant resumes where it was and converges with
 * no duplicate and no orphan.  Every resource name comes from the
 * instance's stored id (never from a secret) and is recorded before the
 * resource is created.
 *
 * Each engine is one directory lib/addon/<engine>/ that defines exactly
 * one `const struct addon_def addon_engine_<engine>` (the registry finds
 * it through a list CMake generates from the directory names).  Nothing
 * outside that directory names the engine, its binaries or its SQL: the
 * framework (registry, reconciler, disk operations, invariants) reaches
 * the engine only through the hooks below.  Generic server plumbing
 * (addresses, disks, supervision) is in addon/server.h.
 *
 * One reconciler thread runs every step of every instance, one at a time
 * (a second one only prepares spares, see addon_def.idle):
 * that serialises, for instance, the creation and removal of the shared
 * server and its tenant count without further locking.
 *
 * A step that fails for a cause a retry can fix (the code says so:
 * MIREN_EUNAVAIL, MIREN_EIO, MIREN_EDB, MIREN_EINTERNAL; see
 * addon_err_retryable) is run again after a capped exponential backoff
 * (1 s doubling to 30 s, ADDON_RETRY_MAX attempts), the instance staying
 * in provisioning with "retrying ..." as its message; any other code, or
 * the last attempt, ends in error with the cause and its hint.  Removal
 * steps are retried the same way, without a limit.
 *
 * Hooks: every hook returns 0 or a miren_err with err filled (message,
 * hint; never a secret), unless its comment says otherwise.  A hook an
 * engine lacks is NULL: the framework then answers MIREN_EINVAL "<what> is
 * not supported by addon '<name>'" (addon_unsupported) and changes
 * nothing.  Hooks may be called from any thread (API threads, the
 * reconciler); the framework holds the disk's lock (disk_ops.h) around
 * backup and restore hooks.
 */
#ifndef MIREN_ADDON_H
#define MIREN_ADDON_H

#include <jansson.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "disk/snapshot.h"
#include "store/store.h"
#include "supervise/supervise.h"
#include "util/err.h"

struct volumes;
struct bstore;

struct addon_variant {
	const char *name;
	const char *description;
	const char *details; /* a paragraph for `miren addon variants` */
	/* The declared size of the disk a server of this variant gets, in
	 * bytes (addon_disk_ensure); 0: the engine keeps no disk. */
	long long disk_bytes;
	/* One server holds the tenants of many apps (a tenant's backup is
	 * then its logical dump, not the server's disk). */
	bool shared;
};

struct reconciler;
struct data_paths;

/* What a step may use.  Owned by the reconciler. */
struct addon_ctx {
	struct store *store;
	struct sv *sv;
	const char *data_dir;
	const struct data_paths *paths; /* builds every path in data_dir (util/paths.h) */
	uid_t uid;                      /* run servers as; (uid_t)-1: as the daemon */
	gid_t gid;
	/* The storage behind disks (lib/disk/volume.h): sized ext4 images or
	 * plain directories. */
	struct volumes *volumes;
	uint32_t pool_base; /* address pool, host order */
	uint32_t pool_size;
	/* Set by reconciler_stop (NULL outside a reconciler): long waits in
	 * steps end early when it is true, and the step then fails; the
	 * reconciler records nothing for a step that failed while stopping, so
	 * the next daemon runs it again. */
	const atomic_bool *stopping;
	/* The first retry delay of a failed step, in ms (0: 1000; the cap is
	 * 30 times it).  Tests shorten it. */
	int retry_base_ms;
	/* The backup store's directory (lib/backup/bstore.h; engines keep
	 * their own archives below it, e.g. wal/<server>/); NULL: none. */
	const char *backup_dir;
};

/* How many times a provisioning step is tried for a retryable cause. */
#define ADDON_RETRY_MAX 8

/* Whether a step failure with this code may go away by itself (a server
 * still starting, a leftover of a dead daemon still at work, a busy
 * store), so that running the step again is worth it. */
bool addon_err_retryable(enum miren_err code);

/* Whether the daemon is stopping (ctx->stopping set and true). */
bool addon_stopping(const struct addon_ctx *ctx);

/*
 * One instance as a step sees it: the record plus the provider's parsed
 * state.  rec.server is the framework's field for the server the instance
 * runs on (a column of the store, read by invariants, status and disk
 * operations): a step that picks a server sets it with
 * addon_inst_set_server before it returns; the reconciler records it with
 * the state after each step.
 */
struct addon_inst {
	struct addon_rec rec;
	/* The provider's own typed state (addon_def.state_parse), never NULL
	 * while a hook runs; steps change it in place and the reconciler
	 * saves it (state_json) after each step.  Owned by the framework,
	 * freed with state_free. */
	void *state;
	/* What the store holds as far as the reconciler knows: the expected
	 * side of its compare-and-set writes (store_addon_update). */
	char *stored_status;
	int stored_step;
};

/* Notes inst->rec's status and step as what the store holds. */
void addon_inst_stored(struct addon_inst *inst);
/* Sets inst->rec.server to server_id (copied; "" or NULL: none). */
void addon_inst_set_server(struct addon_inst *inst, const char *server_id);

struct addon_step {
	/* Short, unique within the list, [a-z-]: it names the step's fault
	 * points ("provision:<addon>:<variant>:<name>:ran") and messages. */
	const char *name;
	/* Returns 0, or a miren_err with err filled: the instance goes to
	 * error with err's message (provision) or is retried (deprovision).
	 * Must be idempotent: a crash after it and before its record runs it
	 * again.  Records every name it decides in inst->state (or a server
	 * or disk record) before it creates the thing. */
	enum miren_err (*run)(struct addon_ctx *ctx, struct addon_inst *inst,
			      struct miren_error *err);
};

/*
 * An online backup in progress (disk_ops.c drives it):
 *   backup_begin  (server answers; the engine starts its consistency
 *                  point and says what to copy)
 *   the framework copies `root` as the disk's tree, minus what `skip`
 *                  refuses, into the snapshot
 *   backup_end    (the engine ends its consistency point and adds the
 *                  members that complete the copy: a label, WAL, a dump)
 *   backup_free   (always; aborts an unfinished backup)
 * So an engine with a write-ahead log and a backup mode: begin = start the
 * backup mode (root = the disk, volatile, skipping the log), end = stop it
 * and add the backup label and the log written meanwhile.  An engine whose
 * backup tool makes a consistent copy of its own: begin = run it into a
 * temporary directory shaped like the disk (root = it), end = nothing.  An
 * engine that snapshots itself to a file: begin = ask for the snapshot and
 * wait for it (root = the disk, skip everything but that file), end =
 * nothing.
 */
struct addon_backup {
	/* Set by backup_begin.  method: recorded in the snapshot header
	 * ("<engine>-online-backup"), a static string. */
	const char *method;
	/* Absolute path of the tree archived as "disk/..." (malloc'd, freed
	 * by the framework); NULL: the disk directory itself. */
	char *root;
	/* 0, or SNAP_TREE_VOLATILE when the files change while copied and
	 * the engine repairs the copy (WAL replay). */
	unsigned tree_flags;
	/* What to leave out (may be NULL): rel is relative to root. */
	bool (*skip)(const char *rel, bool is_dir, void *user);
	void *skip_user;
	/* Engine facts for the snapshot header (e.g. the server's major
	 * version); may stay NULL; the framework decrefs it. */
	json_t *header;
	/* The engine's own (a connection, a temporary directory); freed by
	 * backup_free. */
	void *engine;
};

/* What `miren addon connect` runs: a client for the instance.  Secrets go
 * in env ("PGPASSWORD=..."), never in argv.  argv and env NULL-terminated,
 * each string and array malloc'd; freed with addon_connect_release. */
struct addon_connect {
	/* In: one statement to run, after which the client exits with a
	 * status that says whether it failed; NULL: an interactive session
	 * (the caller's terminal).  The caller's string. */
	const char *command;
	char **argv; /* argv[0]: an absolute path or a name found in PATH */
	char **env;  /* "K=V" added to the caller's environment */
};
void addon_connect_release(struct addon_connect *c);
/* Appends args (NULL-terminated; copied) to c->argv. */
void addon_connect_args(struct addon_connect *c, const char *const *args);

/* One end of addon_pipe: writes to or reads from fd (which it leaves
 * open); 0 or a miren_err with err filled. */
typedef enum miren_err (*addon_pipe_fn)(void *user, int fd, struct miren_error *err);
/* Runs producer (on a thread of its own) writing into a pipe that
 * consumer reads until its end: a dump into a load without a file.
 * Returns the producer's failure when it failed (it explains the
 * consumer's), else the consumer's. */
enum miren_err addon_pipe(addon_pipe_fn producer, void *pu, addon_pipe_fn consumer, void *cu,
			  struct miren_error *err);

/* What an instance's server says of itself (-1 or "": unknown). */
struct addon_info {
	char version[64];     /* the server's version string, e.g. "15.8" */
	long long size_bytes; /* the tenant's data (one database, one prefix) */
	int connections;      /* the tenant's open connections */
	int max_connections;  /* how many it may open (the server's or its own limit) */
	long long uptime_s;   /* how long the server has run, as it says */
};

/* A scratch server: a private server of an engine on a copy of data (a
 * restored backup, a dump loaded into a fresh server), off every app's
 * path, for reading a backup's tenant or proving a backup sound. */
struct addon_scratch {
	char *dir;    /* the disk directory it runs on (the caller's) */
	void *engine; /* the engine's: pid, socket directory, credentials */
	/* Set by scratch_start: the name of the engine's checker (a static
	 * string), for messages. */
	const char *checker;
};

/* Where a credential rotation of an instance is (addon_def.rotate_phase). */
enum addon_rotate_phase {
	ADDON_ROTATE_NONE = 0, /* none in motion */
	ADDON_ROTATE_PLANNED,  /* new credentials chosen, maybe not yet working */
	ADDON_ROTATE_SWITCHED, /* both work, the env has the new; the old to revoke */
};

struct addon_def {
	/* The addon name users type ("miren-<engine>"), the engine's name as
	 * people know it (for a "miren-x": "X"), a description (one line), its
	 * variants and the default one. */
	const char *name;
	const char *engine;
	const char *description;
	const struct addon_variant *variants;
	size_t n_variants;
	const char *default_variant;
	/* Versions this host can run, newest first: out[0] is the default.
	 * Returns how many (0: the engine is not installed). */
	size_t (*versions)(char out[][16], size_t max);
	/* How to install the engine, for the error when versions() finds
	 * none ("install the Debian package X (scripts/bootstrap does)"). */
	const char *install_hint;
	/* The steps of a variant, in order; *n gets how many.  Static. */
	const struct addon_step *(*provision_steps)(const char *variant, size_t *n);
	const struct addon_step *(*deprovision_steps)(const char *variant, size_t *n);
	/* Names of the fault points inside this engine's steps (fault_point
	 * calls), each "<addon name>:<what>", NULL-terminated; may be NULL.
	 * Between-step points are derived from the steps. */
	const char *const *fault_points;

	/* --- provider state ---------------------------------------------
	 * The instance's state is the engine's typed struct; the store keeps
	 * only the text state_json makes, and nothing outside the engine
	 * reads it.  state_parse("" or "{}") gives a fresh empty state;
	 * MIREN_EINVAL for text it cannot read.  state_json returns a
	 * malloc'd string; state_free frees a parsed state (NULL is fine). */
	enum miren_err (*state_parse)(const char *json, void **out, struct miren_error *err);
	char *(*state_json)(const void *state);
	void (*state_free)(void *state);

	/* The env an active instance injects; caller frees with env_recs_free. */
	enum miren_err (*env)(struct addon_ctx *ctx, struct addon_inst *inst, struct env_rec **out,
			      size_t *n, struct miren_error *err);

	/* --- servers ------------------------------------------------------ */
	/* Called once at daemon start, before any step: restart or adopt every
	 * server of this engine the store knows (addon_resume_servers). */
	void (*resume)(struct addon_ctx *ctx);
	/* Waits up to timeout_ms (ending early when the daemon stops) until
	 * srv answers its administrative connection.  MIREN_EUNAVAIL with the
	 * last connection error when it does not. */
	enum miren_err (*ready)(struct addon_ctx *ctx, const struct server_rec *srv, int timeout_ms,
				struct miren_error *err);
	/* A live server process of this engine working on disk_dir (its own
	 * pid or lock file names it), which may be one nobody supervises (a
	 * crash left it, or the disk is a restore's staging copy): returns its
	 * pid, 0 if none.  With stop, stops it first (the engine's fast
	 * shutdown, then SIGKILL) and returns the pid it stopped. */
	pid_t (*disk_server)(struct addon_ctx *ctx, const char *disk_dir, bool stop);
	/* Checks srv beyond the framework's own checks (it runs; records
	 * agree): e.g. that a shared server holds exactly its tenants.
	 * tenants: the active instances on srv, states parsed.  Appends one
	 * string per violation to violations.  May be NULL. */
	void (*check_server)(struct addon_ctx *ctx, const struct server_rec *srv,
			     const struct addon_inst *tenants, size_t n, json_t *violations);

	/* --- disks: online backup and restore (see struct addon_backup) --- */
	/* What any copy of a disk of this engine leaves out, also an offline
	 * one (lock and pid files, temporary files).  May be NULL. */
	bool (*copy_skip)(const char *rel, bool is_dir);
	/* Starts a consistent online backup of srv (running under the
	 * supervisor; the framework waited for ready()).  On failure b is
	 * passed to backup_free all the same. */
	enum miren_err (*backup_begin)(struct addon_ctx *ctx, const struct server_rec *srv,
				       struct addon_backup *b, struct miren_error *err);
	/* After the copy of b->root: ends the backup and adds what completes
	 * it to w (snap_add_data / snap_add_tree under the disk's paths). */
	enum miren_err (*backup_end)(struct addon_ctx *ctx, struct addon_backup *b,
				     struct snap_writer *w, struct miren_error *err);
	/* Ends the backup if still open and frees b->engine (may be NULL). */
	void (*backup_free)(struct addon_ctx *ctx, struct addon_backup *b);
	/* Before any swap: checks that staging (a verified copy, laid out as a
	 * disk directory) is one this engine can run as srv (NULL: the disk
	 * has no server: the copy must only be sound), and makes it ready to
	 * start (a trial recovery, a --prepare).  header: the snapshot's
	 * header.  MIREN_EINVAL with the reason when it is not; changes
	 * nothing outside staging. */
	enum miren_err (*restore_prepare)(struct addon_ctx *ctx, const struct server_rec *srv,
					  const json_t *header, const char *staging,
					  struct miren_error *err);
	/* After the swap (the disk's lock held, the old server stopped):
	 * starts srv on its restored disk and waits until it answers. */
	enum miren_err (*restore_start)(struct addon_ctx *ctx, const struct server_rec *srv,
					struct miren_error *err);
	/* Then makes every tenant of srv agree with its record (a tenant
	 * added after the backup gets an empty database, every password is
	 * the recorded one) and proves the server answers as each.  tenants:
	 * the active instances on srv.  On failure the framework stops srv,
	 * puts the old disk back and starts it again. */
	enum miren_err (*restore_verify)(struct addon_ctx *ctx, const struct server_rec *srv,
					 struct addon_inst *tenants, size_t n,
					 struct miren_error *err);

	/* --- one tenant ----------------------------------------------------- */
	/* Writes a logical dump of the instance's data (the engine's own
	 * format) to fd, which stays open; load reads one into the instance
	 * from fd.  An active instance.  load is all-or-nothing (a failed
	 * load leaves the tenant as it was) and replaces (afterwards the
	 * tenant holds exactly the dump's data). */
	enum miren_err (*dump)(struct addon_ctx *ctx, struct addon_inst *inst, int fd,
			       struct miren_error *err);
	enum miren_err (*load)(struct addon_ctx *ctx, struct addon_inst *inst, int fd,
			       struct miren_error *err);
	/*
	 * Rotation with no failed connection (lib/daemon/rotate.c drives it).
	 * A rotation goes none -> planned -> switched -> none, the framework
	 * recording inst->state after each hook, before the next:
	 *   rotate_plan    state only: new credentials for `credential`
	 *                  ("user", or another the engine knows) chosen and
	 *                  kept; MIREN_EINVAL with a hint for a credential it
	 *                  does not rotate.  Nothing when one is in motion.
	 *   rotate_issue   the new credentials work in the server beside the
	 *                  old ones, and env() now gives the new ones (the
	 *                  framework records the state and the env in one
	 *                  transaction, then restarts the app's services)
	 *   rotate_revoke  the old ones stop working (their sessions ended)
	 * Each is idempotent for a given state (a daemon killed anywhere runs
	 * the phase again), and does nothing in a phase it does not start
	 * from.  rotate_phase says where a state is.
	 */
	enum miren_err (*rotate_plan)(struct addon_ctx *ctx, struct addon_inst *inst,
				      const char *credential, struct miren_error *err);
	enum addon_rotate_phase (*rotate_phase)(const void *state);
	enum miren_err (*rotate_issue)(struct addon_ctx *ctx, struct addon_inst *inst,
				       struct miren_error *err);
	enum miren_err (*rotate_revoke)(struct addon_ctx *ctx, struct addon_inst *inst,
					struct miren_error *err);
	/* When the credentials env() gives were made, in unix seconds (0:
	 * unknown, i.e. at the instance's creation).  May be NULL. */
	int64_t (*credentials_issued_at)(const void *state);
	/* The client command that connects to the instance as its tenant
	 * (out->command set by the caller: the statement to run). */
	enum miren_err (*connect)(struct addon_ctx *ctx, struct addon_inst *inst,
				  struct addon_connect *out, struct miren_error *err);
	/* What the instance's server says (version, size, connections,
	 * uptime); fields it cannot say stay -1 / "" (the caller sets them
	 * so first). */
	enum miren_err (*info)(struct addon_ctx *ctx, struct addon_inst *inst,
			       struct addon_info *out, struct miren_error *err);

	/* --- variant change (lib/daemon/change.c drives it) -----------------
	 * Moves an app's data from its instance `from` to `to`, a new
	 * instance of another variant that to's provision steps made (both
	 * have servers that run; to's tenant is empty).  id ([a-z0-9], the
	 * change's own, the same in every call of one change) names what the
	 * copy makes:
	 *   copy_start    optional: starts copying from's data into to while
	 *                 the app keeps writing to from, and returns once to
	 *                 holds a copy that follows from (*online true).
	 *                 *online false: the engine cannot here, nothing
	 *                 made: the framework then dumps and loads while
	 *                 writes are paused.  Ends early (failing) once
	 *                 addon_stopping.
	 *   writes_pause  pause: no session of from's tenant can write any
	 *                 more (its sessions ended and gone); !pause: it can
	 *                 again.  An engine without copy_start must let the
	 *                 tenant read meanwhile (its dump logs in as it).
	 *   copy_finish   after copy_start: pauses from's writes (as
	 *                 writes_pause does, once it has opened what it needs,
	 *                 so that the pause is short), waits until to holds
	 *                 everything from committed and moves what the copy
	 *                 leaves out (sequence values); the copy stays until
	 *                 copy_cancel (it has nothing left to do), the pause
	 *                 until the switch or writes_pause(false)
	 *   copy_cancel   ends a copy copy_start began or may have begun,
	 *                 removing what it made on both servers (nothing when
	 *                 there is none; to may lack its server): after the
	 *                 switch, or when the change is undone
	 * Each idempotent.  writes_pause is what the framework needs (with
	 * dump and load) to change a variant at all; NULL: unsupported.
	 */
	enum miren_err (*copy_start)(struct addon_ctx *ctx, struct addon_inst *from,
				     struct addon_inst *to, const char *id, bool *online,
				     struct miren_error *err);
	enum miren_err (*writes_pause)(struct addon_ctx *ctx, struct addon_inst *from, bool pause,
				       struct miren_error *err);
	enum miren_err (*copy_finish)(struct addon_ctx *ctx, struct addon_inst *from,
				      struct addon_inst *to, const char *id,
				      struct miren_error *err);
	enum miren_err (*copy_cancel)(struct addon_ctx *ctx, struct addon_inst *from,
				      struct addon_inst *to, const char *id,
				      struct miren_error *err);

	/* --- scratch servers (lib/addon/scratch.c) ------------------------- */
	/* The facts a backup's header keeps about inst so that scratch_dump
	 * finds its data later (e.g. {"database","user"}); no secrets.
	 * Caller decrefs. */
	json_t *(*tenant_facts)(struct addon_ctx *ctx, struct addon_inst *inst);
	/* Starts a private server on dir: a disk directory holding a restored
	 * snapshot whose header is header (restore_prepare already ran), or,
	 * header NULL, an empty directory the engine fills with a fresh
	 * server.  opts may be NULL or {"recovery_target_time": "..."}
	 * (point-in-time recovery).  Reachable only by the daemon (a socket
	 * in a private directory, no TCP).  A daemon killed meanwhile leaves
	 * it to disk_server(dir, stop) at the next start. */
	enum miren_err (*scratch_start)(struct addon_ctx *ctx, const json_t *header,
					const json_t *opts, const char *dir,
					struct addon_scratch *out, struct miren_error *err);
	/* Loads a dump (dump's format) from fd into the scratch server's one
	 * fresh tenant. */
	enum miren_err (*scratch_load)(struct addon_ctx *ctx, struct addon_scratch *s, int fd,
				       struct miren_error *err);
	/* Dumps the tenant `tenant` (tenant_facts of a header; NULL: the one
	 * scratch_load filled) in dump's format to fd, so that load takes it
	 * into any instance of this engine. */
	enum miren_err (*scratch_dump)(struct addon_ctx *ctx, struct addon_scratch *s,
				       const json_t *tenant, int fd, struct miren_error *err);
	/* The engine's own consistency checker over the scratch server's
	 * data.  MIREN_EINVAL "the data is damaged: <what the checker said>"
	 * when it finds damage. */
	enum miren_err (*scratch_check)(struct addon_ctx *ctx, struct addon_scratch *s,
					struct miren_error *err);
	/* Stops it (idempotent) and frees s->engine; the caller removes dir. */
	void (*scratch_stop)(struct addon_ctx *ctx, struct addon_scratch *s);

	/* --- background ----------------------------------------------------- */
	/* Called on the reconciler's second thread after a pass that changed
	 * something (and once at start), while provisioning goes on: prepares
	 * what makes the next provisioning fast.  Must tolerate running
	 * alongside any step.  May be NULL. */
	void (*idle)(struct addon_ctx *ctx);
	/* --- point-in-time recovery ------------------------------------------
	 * The window inst can be recovered to, from the backups in bs:
	 * {"from","to"} (unix seconds); NULL when there is none (yet).
	 * Caller decrefs. */
	json_t *(*pitr_window)(struct addon_ctx *ctx, struct bstore *bs, struct addon_inst *inst);
	/* Where inst's data as at target (unix seconds) comes from: *backup,
	 * a backup in bs to start a scratch server on (malloc'd), with *opts
	 * its scratch_start options that recover it to target (caller
	 * decrefs).  Makes sure the log up to now is archived first.
	 * MIREN_EINVAL naming the window when target is outside it; nothing
	 * is changed either way.  NULL: not supported. */
	enum miren_err (*pitr_source)(struct addon_ctx *ctx, struct bstore *bs,
				      struct addon_inst *inst, int64_t target, char **backup,
				      json_t **opts, struct miren_error *err);

	/* Periodic background work (e.g. base backups for point-in-time
	 * recovery, tidying an archive), on a thread of its own
	 * (addon/tick.h) about every 10 s, never two calls at once: it must
	 * give way to everything else (e.g. disk_lock_yielding) and end
	 * early once addon_stopping(ctx).  May be NULL. */
	void (*tick)(struct addon_ctx *ctx);
	/* Called by reconciler_stop from another thread before it waits for
	 * the reconciler's threads: ends the helper processes a step may be
	 * waiting for (a cluster being made), so that the daemon stops
	 * promptly.  The step
	 * then fails and is run again by the next daemon.  May be NULL. */
	void (*interrupt)(struct addon_ctx *ctx);
	/* Extra facts for `miren addon list` (no secrets): a JSON object, or
	 * NULL.  The framework adds the server's supervisor state.  Its
	 * "warnings" member (an array of strings), when present, is printed
	 * as warning lines under the table: trouble that does not stop the
	 * addon (e.g. its archiving fails). */
	json_t *(*describe)(struct addon_ctx *ctx, struct addon_inst *inst);

	/* --- helpers ---------------------------------------------------------
	 * A command the engine's own processes call back (e.g. a database's
	 * archive command), run as `miren addon-helper <addon name> ARGS...`
	 * (addon_helper_command gives that command line) in a process of its
	 * own, as the server's user, without the daemon.  argv[0] is the
	 * first of ARGS (the engine's verb).  Returns the exit status; writes
	 * its complaints to stderr.  May be NULL. */
	int (*helper)(int argc, char **argv);
};

/* Fills err with MIREN_EINVAL "<what> is not supported by addon '<name>'"
 * and returns MIREN_EINVAL: the answer for a NULL hook. */
enum miren_err addon_unsupported(const struct addon_def *def, const char *what,
				 struct miren_error *err);

/* --- the registry ------------------------------------------------------ */
/* Every engine this build has, sorted by name, NULL-terminated. */
const struct addon_def *const *addon_all(void);
const struct addon_def *addon_find(const char *name);
const struct addon_variant *addon_variant_find(const struct addon_def *def, const char *variant);

/*
 * Checks "name" and "variant" (NULL: the default) and "version" (NULL: the
 * newest) against the registry.  On success returns 0 with the definition
 * and the effective variant/version; otherwise MIREN_EINVAL (or
 * MIREN_ENOTFOUND for an unknown addon, MIREN_EUNAVAIL when the engine is
 * not installed) with a message listing the valid choices.
 */
enum miren_err addon_resolve(const char *name, const char *variant, const char *version,
			     const struct addon_def **def, const char **variant_out,
			     char version_out[16], struct miren_error *err);

/*
 * Parses rec's state with def into inst (a copy of rec: inst->rec owns
 * copies of every string).  Returns 0, or the state_parse error; on error
 * inst holds nothing to release.  Release with addon_inst_release.
 */
enum miren_err addon_inst_load(const struct addon_def *def, const struct addon_rec *rec,
			       struct addon_inst *inst, struct miren_error *err);
void addon_inst_release(const struct addon_def *def, struct addon_inst *inst);

/*
 * Every fault point the framework and the registered engines declare, one
 * per call of fn, in a stable order.  kind: "step" (between the
 * reconciler's recorded steps: provision:<addon>:<variant>:<step>:ran and
 * :saved, activate:<addon>:<variant>, deprovision:...), "inside" (inside
 * an engine's step: addon_def.fault_points) or "operation" (the
 * framework's: a deploy, an app's removal, a backup, a restore).
 */
void addon_fault_points(void (*fn)(void *user, const char *name, const char *kind), void *user);

/* Called by the reconciler (on its thread) when an app's addons changed:
 * one became active, went to error, or was removed. */
typedef void (*addon_changed_fn)(void *user, const char *app);

/*
 * Called by the reconciler (on its thread) after the last provisioning
 * step of an instance whose record names a fork (rec.fork, see store.h),
 * before it becomes active: puts the forked data into inst (the engine's
 * load; inst's server answers, its tenant exists).  Must be idempotent
 * (a daemon killed during or after it runs it again: load replaces).
 * Returns 0, or a miren_err with err filled: a retryable code is retried
 * like a step, any other ends the instance in error (its resources
 * released).  One more recorded step: the instance's step counter passes
 * the engine's steps by one once it is done.
 */
typedef enum miren_err (*addon_fill_fn)(void *user, const struct addon_def *def,
					struct addon_inst *inst, struct miren_error *err);

/* Starts the reconciler's threads; fill may be NULL (a fork then fails). */
struct reconciler *reconciler_start(const struct addon_ctx *ctx, addon_changed_fn changed,
				    addon_fill_fn fill, void *user);
/* Asks the thread to look for work now. */
void reconciler_kick(struct reconciler *r);
/* Holds the reconciler between two instances' steps until
 * reconciler_release: another thread then runs steps of its own (a
 * variant change's new or old instance) with what the one reconciler
 * thread serialises (a shared server's creation, removal and tenant
 * count) still serialised.  Not while holding an app's lock that the
 * reconciler's callbacks wait for... they take none under it. */
void reconciler_hold(struct reconciler *r);
void reconciler_release(struct reconciler *r);
/* Stops the threads: sets ctx.stopping, calls every interrupt hook, and
 * waits for the step in progress to end or fail (servers keep running). */
void reconciler_stop(struct reconciler *r);

/* The JSON of an instance for the API (no secrets).  "status" tells the
 * truth about the server: an active instance whose server the supervisor
 * sees down, restarting or crashing shows that ("down", "restarting",
 * "error") with a message. */
json_t *addon_inst_json(struct reconciler *r, const struct addon_rec *rec);

#endif
