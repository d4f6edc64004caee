/*
 * Process containment for the supervisor (internal to lib/supervise): how
 * every process a supervised id started is found again, also the ones that
 * left its session (setsid, double fork) and also after a daemon crash.
 *
 * Two mechanisms, chosen once per struct sv_contain:
 *
 *  - cgroup v2 (preferred): each id runs in its own cgroup
 *    "<v2 mount>/miren/<16 hex of the run dir>/<id, '/' as '_'>".  The v2
 *    mount is found in /proc/self/mountinfo (a pure v2 host has it at
 *    /sys/fs/cgroup, a hybrid one beside the v1 controllers).  Members are
 *    cgroup.procs; killing writes cgroup.kill.  The cgroups persist, so a
 *    daemon that replaces a crashed one finds what the old one started.
 *  - the fallback (no writable v2 hierarchy, or MIREN_NO_CGROUPS=1 in the
 *    daemon's environment): every supervised process carries
 *    MIREN_SV_TAG=<16 hex of the run dir>:<id> in its environment, and the
 *    members of an id are the processes with that tag, the processes of the
 *    leader's group and session, and every descendant of a member (by
 *    parentage, for children that cleared their environment while their
 *    parent lives).  A process that clears its environment and is then
 *    orphaned outside the leader's session escapes the fallback; cgroups
 *    have no such gap.
 *
 * Either way the leader's process group and session are swept too.
 * Thread safety: a struct sv_contain is read-only after contain_new(); the
 * functions may be called from any thread.
 */
#ifndef MIREN_SUPERVISE_CONTAIN_H
#define MIREN_SUPERVISE_CONTAIN_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

struct proc_info {
	char state;
	pid_t ppid;
	pid_t pgrp;
	pid_t session;
	unsigned long long starttime;
};

/* Parses /proc/<pid>/stat.  Returns 0 or -1 (gone, unreadable). */
int proc_read(pid_t pid, struct proc_info *pi);

/* May pgid be signalled?  Never our own group/session, init, or -1. */
bool pgid_ok(pid_t pgid);

/* Counts the live (non-zombie) processes of group or session sid (a
 * process that left the group with setpgid() but stayed in the session is
 * found too), SIGKILLing them when kill_them. */
int session_sweep(pid_t sid, bool kill_them);

/* SIGKILL to group and session pgid; returns how many were still alive. */
int group_kill(pid_t pgid);

struct sv_contain;

/* run_dir: the supervisor's run directory (names the cgroups and tags).
 * Never fails: without cgroups it uses the fallback (logged once). */
struct sv_contain *contain_new(const char *run_dir);
/* Frees c; removes the run directory's cgroup directory when it is empty. */
void contain_free(struct sv_contain *c);

/* true when ids get cgroups. */
bool contain_has_cgroups(const struct sv_contain *c);

/* "MIREN_SV_TAG=<hex>:<id>", to add to the environment of id's processes.
 * Caller frees. */
char *contain_tag_env(const struct sv_contain *c, const char *id);

/* Before a spawn of id: makes id's cgroup (killing whatever still runs in
 * it, so two runs never overlap) and opens its cgroup.procs for writing.
 * Returns that fd (the child writes "0" into it before exec; the caller
 * closes it), or -1 when id runs without a cgroup (no cgroups, or the
 * cgroup cannot be made: logged). */
int contain_prepare(const struct sv_contain *c, const char *id);

/* Counts the live processes of id (not zombies, never the daemon itself),
 * SIGKILLing them when kill_them.  pgid: its leader's group/session (0:
 * unknown).  Members are found as the header says. */
int contain_sweep(const struct sv_contain *c, const char *id, pid_t pgid, bool kill_them);

/* Sends sig to every live process of id (found as contain_sweep finds
 * them) outside process group skip_pgrp (0: none), which the caller
 * signals itself: a stop's first, polite signal, once per process. */
void contain_signal(const struct sv_contain *c, const char *id, int sig, pid_t skip_pgrp);

/* id is forgotten: removes its cgroup (when empty). */
void contain_forget(const struct sv_contain *c, const char *id);

/* id as it names a cgroup: '/' replaced by '_'.  Caller frees. */
char *contain_flat_id(const char *id);

/* At start, before anything is spawned: kills every process of this run
 * directory whose flat id (contain_flat_id) claimed() rejects (cgroups and tags both, whichever
 * mode: a previous daemon may have run with the other), waits up to a few
 * seconds for them to go and removes their cgroups.  Returns how many
 * processes it killed. */
int contain_sweep_unclaimed(const struct sv_contain *c,
			    bool (*claimed)(void *arg, const char *flat_id), void *arg);

#endif
