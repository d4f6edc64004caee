/*
 * The process supervisor: keeps long-running processes (app services now,
 * addon database servers later) in the state the daemon asks for.
 *
 * One supervisor thread owns every child.  Each process runs in its own
 * process group (setsid), with stdout and stderr appended to its log file,
 * and is contained (contain.h): in a cgroup of its own under cgroup v2,
 * else found through /proc by a tag in its environment (MIREN_SV_TAG) and
 * by parentage.  Whatever a process starts, also in a new session or by
 * double-forking, is found and killed with it.
 * A process that exits while it should run is restarted after a capped
 * exponential backoff; a run of quick exits marks it SV_CRASHLOOP (it is
 * still retried, at the capped delay).  Stopping sends stop_signal to the
 * whole group and to every contained process outside it, then SIGKILL
 * after stop_timeout_ms: no process it started survives a stop.
 *
 * Crash safety: for every running process the supervisor keeps a pid file
 * "<run_dir>/<id-with-/-as-_>.pid" holding
 * "pid starttime pgid keep bootid id\n" (written atomically; keep is 1 for
 * keep_on_daemon_exit; bootid is the kernel's boot id).  After a daemon
 * crash, sv_new() finds the files left behind; for each one whose process
 * still runs (same boot and same start time, so a reused pid, also one
 * reused after a reboot, is never touched) it either
 * kills the group (keep 0, before sv_new() returns), or keeps it for a
 * later sv_start() with adopt set, which then watches that process instead
 * of starting a new one (keep 1).  sv_start() without adopt for such an id
 * stops the old process first, so two instances never run at once.  The
 * daemon calls sv_reap_unclaimed() once it has re-registered everything it
 * knows, to kill the keep 1 leftovers nobody claimed.
 *
 * sv_new() also kills every contained process of this run_dir that no
 * pid file accounts for (the leftovers of a leader that had exited before
 * the crash) and removes their cgroups.
 *
 * A leader that exits with status 0 while processes it started still run
 * (it daemonized, or left a background job) is not restarted into a pile:
 * it shows as SV_DETACHED, nothing is killed, and it is restarted once they
 * are gone.  Any other exit is followed by SIGKILL to everything it
 * started (its group, its session, its containment), then the restart.  A
 * stop or a restart kills everything the process started: no orphans.
 *
 * Children are reaped with waitid()/waitpid() on their own pid only, never
 * waitpid(-1); the daemon must not set SIGCHLD to SIG_IGN nor reap with
 * waitpid(-1) anywhere else.  Only one struct sv may use a given run_dir.
 *
 * Thread safety: every function may be called from any thread.
 */
#ifndef MIREN_SUPERVISE_H
#define MIREN_SUPERVISE_H

#include "util/err.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct sv;

struct sv_config {
	const char *run_dir;    /* pid files; created 0700 if missing */
	int backoff_initial_ms; /* first restart delay (0: 250) */
	int backoff_max_ms;     /* cap (0: 30000) */
	int healthy_after_ms;   /* a run this long resets the backoff (0: 10000) */
	int crashloop_after;    /* this many quick exits in a row: SV_CRASHLOOP (0: 5) */
};

struct sv_spec {
	const char *id;           /* unique key, e.g. "app/hello/web"; copied */
	const char *command;      /* run as: sh -c <command> (when argv is NULL) */
	char *const *argv;        /* or exec this argv directly; argv[0] is a path */
	const char *cwd;          /* NULL: the daemon's cwd */
	char *const *env;         /* the whole environment, NULL-terminated "K=V" */
	const char *log_path;     /* stdout+stderr appended here (created 0640);
				   * NULL: /dev/null */
	uid_t uid;                /* run as this user when the daemon is root; */
	gid_t gid;                /*   (uid_t)-1 / (gid_t)-1: do not change */
	int stop_signal;          /* 0: SIGTERM */
	int stop_timeout_ms;      /* 0: 10000; then SIGKILL to the group */
	bool keep_on_daemon_exit; /* survive a daemon crash (no PDEATHSIG) and
				   * allow adoption after restart */
	bool adopt;               /* if a process from a crashed daemon with this id
				   * still runs, watch it instead of starting one */
	/* Called on the supervisor thread before every spawn of this id (the
	 * first and each restart, not for an adoption), without locks held.
	 * Returns 0, or nonzero with err filled (its message becomes the
	 * detail of the spawn's error, its hint the hint): that spawn then
	 * fails like a failed exec (sv_start returns MIREN_EINVAL; a restart
	 * counts as a quick exit and is retried).  May be NULL. */
	enum miren_err (*prestart)(void *arg, struct miren_error *err);
	void *prestart_arg;               /* owned by the supervisor from sv_start()
					   * on, also when it fails */
	void (*prestart_free)(void *arg); /* frees prestart_arg (NULL: nothing) */
};

enum sv_state {
	SV_STARTING, /* spawned, not yet past the first second */
	SV_RUNNING,
	SV_BACKOFF,   /* exited; waiting to restart */
	SV_CRASHLOOP, /* exited quickly crashloop_after times in a row; waiting */
	SV_STOPPING,
	SV_STOPPED,
	SV_DETACHED, /* the leader exited 0, processes it started still run */
};

struct sv_status {
	enum sv_state state;
	pid_t pid;             /* 0 when not running */
	unsigned restarts;     /* restarts since sv_start() */
	int last_exit;         /* wait status of the last exit, -1 if none */
	int64_t started_at_ms; /* CLOCK_REALTIME of the current run, 0 if none */
	int64_t next_start_ms; /* when in BACKOFF/CRASHLOOP: when it retries */
	bool adopted;          /* this run was adopted from a previous daemon */
	unsigned crashes;      /* quick exits in a row (reset by a healthy run) */
	unsigned detached;     /* SV_DETACHED: how many processes still run */
};

/* Returns NULL with err filled on failure (bad run_dir).  Kills
 * the keep 0 leftovers of a previous daemon first (SIGTERM to the group,
 * SIGKILL after 10 s), so it may block that long, and every contained
 * process no pid file accounts for.  Uses cgroups when it can (contain.h);
 * MIREN_NO_CGROUPS=1 in the environment forces the /proc fallback. */
struct sv *sv_new(const struct sv_config *cfg, struct miren_error *err);
/* Stops every process (not those with keep_on_daemon_exit; their pid files
 * stay so the next daemon adopts them) and frees. */
void sv_free(struct sv *sv);

/* Starts (or, if id already exists, stops then replaces) a process, or
 * adopts a leftover one (spec->adopt).  Blocks until the first exec
 * happened.  Returns 0, or a miren_err with err filled (what failed as the
 * message, errno's text or the prestart hook's message as the detail), and then the id
 * is not registered: MIREN_EINVAL (bad spec, cwd missing, exec failed),
 * MIREN_EIO (log file cannot be opened), MIREN_EPERM (uid/gid change
 * failed), MIREN_EUNAVAIL (fork failed).  Later spawn failures count as
 * quick exits and are retried by the backoff policy. */
enum miren_err sv_start(struct sv *sv, const struct sv_spec *spec, struct miren_error *err);
/* Stops the process and forgets it; blocks until the group is gone.
 * Returns 0 or MIREN_ENOTFOUND. */
int sv_stop(struct sv *sv, const char *id);
/* Kills the process (SIGKILL to the group) so that it is restarted by the
 * usual policy, without backoff for this one restart (a process waiting in
 * BACKOFF/CRASHLOOP is started at once).  Does not wait for the new run.
 * Returns 0 or MIREN_ENOTFOUND. */
int sv_restart(struct sv *sv, const char *id);
/* Fills st; returns 0 or MIREN_ENOTFOUND. */
int sv_status(struct sv *sv, const char *id, struct sv_status *st);
const char *sv_state_name(enum sv_state s);

/*
 * Kills every keep_on_daemon_exit leftover found by sv_new() that no
 * sv_start() with adopt has claimed so far: SIGTERM to its group, SIGKILL
 * after 10 s, pid file removed.  Blocks until they are gone.  Call it once
 * the daemon has re-registered every process it knows.  Returns how many
 * leftovers it stopped.
 */
int sv_reap_unclaimed(struct sv *sv);

/*
 * Runs argv to completion (no shell), as uid/gid when not (uid_t)-1, with
 * env (NULL: inherit) and stdin from /dev/null, in its own session.  stdout
 * and stderr are captured together into *output (output may be NULL to
 * discard; otherwise *output is always set to a malloc'd NUL-terminated
 * string, holding the last 64 KiB when there was more, plus a
 * "miren: cannot ..." line when it could not be started or a
 * "miren: ... timed out ..." line after a timeout).  Kills its
 * process group after timeout_ms (0: no limit).  It dies with the calling
 * thread (PR_SET_PDEATHSIG).  Processes it leaves behind in the background
 * after a normal exit are not waited for.
 * Returns the exit code (0..255), 128+signal when killed by a signal, or -1
 * when it could not be started or timed out.
 */
int sv_run(char *const *argv, char *const *env, const char *cwd, uid_t uid, gid_t gid,
	   int timeout_ms, char **output);
/*
 * sv_run with the command's stdin read from in_fd and its stdout written to
 * out_fd (each -1: as sv_run, /dev/null and captured), so a tool can stream
 * data (a dump in, a dump out) while only what it says on stderr lands in
 * *output.  Both fds stay open and the caller's; a command still writing
 * when the timeout comes is killed as with sv_run.
 */
int sv_run_fds(char *const *argv, char *const *env, const char *cwd, uid_t uid, gid_t gid,
	       int timeout_ms, int in_fd, int out_fd, char **output);

/* Start time of pid from /proc/<pid>/stat (clock ticks since boot), 0 if
 * gone (a zombie still has its start time). */
unsigned long long sv_proc_starttime(pid_t pid);

#endif
