/*
 * The process supervisor; see supervise.h for the contract.
 *
 * Layout: a struct sv holds one mutex, a list of struct sv_proc entries and
 * one thread (sv_thread) that does everything to the children: it spawns
 * them (so PR_SET_PDEATHSIG, which fires when the *thread* that forked
 * dies, is tied to a thread that lives as long as the sv), reaps them with
 * waitid(P_PID) on their own pid, restarts them, escalates stops and writes
 * and removes the pid files.  Other threads only set request flags on an
 * entry (spawn_req, stop_req, restart_req), kick the thread and wait on a
 * condition variable, so the mutex is never held while waiting for a
 * process and status queries stay fast.
 *
 * Entries are reference counted: the list holds one reference and every
 * thread waiting on an entry holds another.  Only the supervisor thread
 * unlinks entries (and sets done); other threads only insert at the head.
 * Fields describing what to run (exec_*, cwd, log_path, uid, gid, keep, id,
 * pidfile) do not change while an entry can spawn, so the supervisor thread
 * reads them without the mutex while it forks.
 *
 * Entries marked leftover are processes found in pid files by sv_new():
 * invisible to sv_status(), waiting to be adopted or killed.
 *
 * The child side (child_exec) runs between fork and exec in a
 * multi-threaded process: it only makes async-signal-safe calls on data
 * prepared before the fork.
 */
#include "supervise/supervise.h"
#include "supervise/contain.h"
#include "util/err.h"
#include "util/fs.h"
#include "util/io.h"
#include "util/log.h"
#include "util/strbuf.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

#define SV_TICK_MS 50             /* supervisor thread wake-up period */
#define SV_STARTING_MS 1000       /* SV_STARTING lasts this long */
#define SV_DRAIN_MS 5000          /* max wait for a killed group to vanish */
#define SV_LEFTOVER_STOP_MS 10000 /* SIGTERM -> SIGKILL for leftovers */
#define SV_DETACHED_CHECK_MS 1000 /* how often a detached id is looked at */
#define SV_RUN_OUTPUT_MAX (64 * 1024)
#define SV_ID_MAX 200

/* ---- child side: only async-signal-safe calls below ---------------- */

enum child_stage {
	ST_NONE,
	ST_FORK,
	ST_SETSID,
	ST_CGROUP,
	ST_LOG,
	ST_DEVNULL,
	ST_DUP,
	ST_CHDIR,
	ST_SETGROUPS,
	ST_SETGID,
	ST_SETUID,
	ST_PDEATHSIG,
	ST_ORPHAN,
	ST_EXEC,
	ST_PRESTART, /* not in the child: the spec's prestart hook failed */
};

static const char *const stage_text[] = {
	[ST_NONE] = "start",
	[ST_FORK] = "fork",
	[ST_SETSID] = "setsid",
	[ST_CGROUP] = "join the cgroup",
	[ST_LOG] = "open log file",
	[ST_DEVNULL] = "open /dev/null",
	[ST_DUP] = "set up stdio",
	[ST_CHDIR] = "chdir to",
	[ST_SETGROUPS] = "drop supplementary groups",
	[ST_SETGID] = "setgid",
	[ST_SETUID] = "setuid",
	[ST_PDEATHSIG] = "set parent-death signal",
	[ST_ORPHAN] = "start (daemon exited)",
	[ST_EXEC] = "exec",
	[ST_PRESTART] = "prepare",
};

struct child_report {
	int stage;
	int err;
};

/* Everything the child needs, prepared before fork. */
struct child_plan {
	const char *path;
	char *const *argv;
	char *const *envp;
	const char *cwd;      /* NULL: stay */
	const char *log_path; /* stdout+stderr appended here, or */
	int out_fd;           /* this fd when log_path is NULL */
	int in_fd;            /* stdin; -1: /dev/null */
	int stdout_fd;        /* stdout apart from stderr; -1: as stderr */
	bool set_ids;
	uid_t uid;
	gid_t gid;
	int pdeath_sig; /* 0: none */
	pid_t parent;
	int cg_fd;     /* cgroup.procs to join, or -1 */
	int max_fd;    /* for the close_range fallback */
	int report_fd; /* CLOEXEC pipe to the parent: EOF means exec worked */
};

static void child_say(int fd, const char *s)
{
	(void)io_write_all(fd, s, strlen(s));
}

static const char *stage_arg(const struct child_plan *p, int stage)
{
	switch (stage) {
	case ST_LOG:
		return p->log_path;
	case ST_CHDIR:
		return p->cwd;
	case ST_EXEC:
		return p->path;
	default:
		return NULL;
	}
}

static __attribute__((noreturn)) void child_fail(const struct child_plan *p, int stage, int err,
						 bool have_stderr)
{
	if (have_stderr) {
		const char *arg = stage_arg(p, stage);
		const char *desc = strerrordesc_np(err);
		child_say(2, "miren: cannot ");
		child_say(2, stage_text[stage]);
		if (arg) {
			child_say(2, " ");
			child_say(2, arg);
		}
		child_say(2, ": ");
		child_say(2, desc ? desc : "unknown error");
		child_say(2, "\n");
	}
	struct child_report r = { stage, err };
	if (write(p->report_fd, &r, sizeof(r)) < 0) {
		/* nothing left to tell anyone */
	}
	_exit(127);
}

/* Returns fd moved to >= 3 (so dup2 onto 0..2 cannot clobber it). */
static int child_fd_high(int fd)
{
	if (fd < 0 || fd > 2)
		return fd;
	return fcntl(fd, F_DUPFD_CLOEXEC, 3);
}

static __attribute__((noreturn)) void child_exec(struct child_plan *p)
{
	struct sigaction dfl;
	memset(&dfl, 0, sizeof(dfl));
	dfl.sa_handler = SIG_DFL;
	for (int s = 1; s < NSIG; s++)
		sigaction(s, &dfl, NULL); /* SIGKILL, SIGSTOP, glibc's own: EINVAL */

	p->report_fd = child_fd_high(p->report_fd);
	if (p->report_fd < 0)
		_exit(127);
	if (setsid() < 0)
		child_fail(p, ST_SETSID, errno, false);
	/* Before the id change: the cgroup is the daemon's to give. */
	if (p->cg_fd >= 0 && write(p->cg_fd, "0", 1) != 1)
		child_fail(p, ST_CGROUP, errno, false);

	int out = p->out_fd;
	if (p->log_path) {
		/* O_NONBLOCK: a FIFO without reader fails instead of hanging. */
		out = open(p->log_path,
			   O_WRONLY | O_APPEND | O_CREAT | O_NOCTTY | O_CLOEXEC | O_NONBLOCK, 0640);
		if (out < 0)
			child_fail(p, ST_LOG, errno, false);
		fcntl(out, F_SETFL, O_APPEND);
	}
	out = child_fd_high(out);
	if (out < 0)
		child_fail(p, ST_DUP, errno, false);
	int nul = child_fd_high(open("/dev/null", O_RDONLY | O_CLOEXEC));
	if (nul < 0)
		child_fail(p, ST_DEVNULL, errno, false);
	/* Every source above 2 before the first dup2 onto 0..2. */
	int in = p->in_fd >= 0 ? child_fd_high(p->in_fd) : nul;
	int so = p->stdout_fd >= 0 ? child_fd_high(p->stdout_fd) : out;
	if (in < 0 || so < 0)
		child_fail(p, ST_DUP, errno, false);
	if (dup2(so, 1) < 0 || dup2(out, 2) < 0 || dup2(in, 0) < 0)
		child_fail(p, ST_DUP, errno, false);

	if (p->cwd && chdir(p->cwd) < 0)
		child_fail(p, ST_CHDIR, errno, true);
	if (p->set_ids) {
		/* Raw syscalls: only this thread exists, no glibc setxid dance. */
		if (syscall(SYS_setgroups, 0, NULL) < 0)
			child_fail(p, ST_SETGROUPS, errno, true);
		if (p->gid != (gid_t)-1 && syscall(SYS_setgid, p->gid) < 0)
			child_fail(p, ST_SETGID, errno, true);
		if (p->uid != (uid_t)-1 && syscall(SYS_setuid, p->uid) < 0)
			child_fail(p, ST_SETUID, errno, true);
	}
	/* After the id change: changing credentials clears the death signal. */
	if (p->pdeath_sig) {
		if (prctl(PR_SET_PDEATHSIG, p->pdeath_sig) < 0)
			child_fail(p, ST_PDEATHSIG, errno, true);
		if (getppid() != p->parent)
			child_fail(p, ST_ORPHAN, ESRCH, true);
	}
	if (close_range(3, ~0U, CLOSE_RANGE_CLOEXEC) < 0)
		for (int fd = 3; fd < p->max_fd; fd++)
			fcntl(fd, F_SETFD, FD_CLOEXEC);

	sigset_t none;
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	execve(p->path, p->argv, p->envp);
	child_fail(p, ST_EXEC, errno, true);
}

/*
 * Forks and execs plan.  Returns 0 with *pidp set once the exec happened,
 * or -1 with *rep telling what failed (the child is reaped then).
 */
static int spawn_child(struct child_plan *p, pid_t *pidp, struct child_report *rep)
{
	int fds[2];
	if (pipe2(fds, O_CLOEXEC) < 0) {
		*rep = (struct child_report){ ST_FORK, errno };
		return -1;
	}
	/* No daemon signal handler may run in the child before it resets them. */
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	p->report_fd = fds[1];
	pid_t pid = fork();
	if (pid == 0) {
		close(fds[0]);
		child_exec(p);
	}
	int fork_errno = errno;
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	close(fds[1]);
	if (pid < 0) {
		close(fds[0]);
		*rep = (struct child_report){ ST_FORK, fork_errno };
		return -1;
	}
	ssize_t n;
	do
		n = read(fds[0], rep, sizeof(*rep));
	while (n < 0 && errno == EINTR);
	close(fds[0]);
	if (n == (ssize_t)sizeof(*rep)) {
		while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
			;
		return -1;
	}
	*pidp = pid;
	return 0;
}

/* ---- helpers ---------------------------------------------------------- */

static int fd_limit(void)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY ||
	    rl.rlim_cur > 65536)
		return 65536;
	return rl.rlim_cur < 1024 ? 1024 : (int)rl.rlim_cur;
}

static char **strv_dup(char *const *v)
{
	size_t n = 0;
	while (v[n])
		n++;
	char **out = xcalloc(n + 1, sizeof(*out));
	for (size_t i = 0; i < n; i++)
		out[i] = xstrdup(v[i]);
	return out;
}

static void strv_free(char **v)
{
	if (!v)
		return;
	for (size_t i = 0; v[i]; i++)
		free(v[i]);
	free(v);
}

unsigned long long sv_proc_starttime(pid_t pid)
{
	struct proc_info pi;
	return proc_read(pid, &pi) == 0 ? pi.starttime : 0;
}

/* pid is the very process that had starttime, and it has not exited. */
static bool proc_alive(pid_t pid, unsigned long long starttime)
{
	struct proc_info pi;
	return proc_read(pid, &pi) == 0 && pi.state != 'Z' && pi.state != 'X' &&
	       pi.starttime == starttime;
}

static void group_signal(pid_t pgid, pid_t pid, int sig)
{
	if (pgid_ok(pgid) && kill(-pgid, sig) == 0)
		return;
	if (pgid_ok(pid))
		kill(pid, sig);
}

static void describe_status(int status, char *buf, size_t len)
{
	if (status < 0)
		snprintf(buf, len, "exited");
	else if (WIFEXITED(status))
		snprintf(buf, len, "exited with code %d", WEXITSTATUS(status));
	else if (WIFSIGNALED(status))
		snprintf(buf, len, "was killed by signal %d", WTERMSIG(status));
	else
		snprintf(buf, len, "exited (status %#x)", (unsigned)status);
}

/* ---- entries ---------------------------------------------------------- */

struct sv_proc {
	struct sv_proc *next;
	unsigned refs;
	char *id;
	char *pidfile;

	/* what to run (see the top comment for when they may change) */
	char *exec_path;
	char **exec_argv;
	char **exec_env;
	char *cwd;
	char *log_path;
	uid_t uid;
	gid_t gid;
	int stop_signal;
	int stop_timeout_ms;
	bool keep;
	bool leftover;
	enum miren_err (*prestart)(void *arg, struct miren_error *err);
	void *prestart_arg;
	void (*prestart_free)(void *arg);

	/* the current run */
	enum sv_state state;
	pid_t pid;  /* 0: none */
	pid_t pgid; /* of the current or last run */
	unsigned long long starttime;
	bool own_child; /* reaped with waitid; otherwise polled in /proc */
	bool detached;  /* SV_DETACHED: leader gone, its processes run on */
	unsigned detached_procs;
	int64_t detached_check_ms; /* next count of them */
	bool adopted;
	unsigned restarts;
	unsigned crashes;
	int last_exit;
	int64_t started_real_ms, started_mono_ms;
	int64_t next_start_real_ms, next_start_mono_ms;
	bool pidfile_dirty;

	/* requests from other threads */
	bool spawn_req, spawn_done;
	int spawn_err;
	struct miren_error spawn_error; /* why the first spawn failed */
	bool restart_req, skip_backoff;
	bool stop_req;

	/* stopping */
	bool stop_sent, kill_sent, draining;
	int64_t stop_deadline_ms, drain_deadline_ms;
	bool done; /* unlinked: the last waiter frees it */
};

struct sv {
	pthread_mutex_t lock;
	pthread_cond_t wake;    /* the supervisor thread sleeps here */
	pthread_cond_t changed; /* threads waiting on an entry sleep here */
	pthread_t thread;
	bool kicked;
	bool quit;
	struct sv_proc *head;
	char *run_dir;
	int backoff_initial_ms, backoff_max_ms, healthy_after_ms, crashloop_after;
	int max_fd;
	bool is_root;
	struct sv_contain *contain;
	char boot_id[37]; /* this boot's /proc/sys/kernel/random/boot_id, or "-" */
};

static void entry_free(struct sv_proc *e)
{
	free(e->id);
	free(e->pidfile);
	free(e->exec_path);
	strv_free(e->exec_argv);
	strv_free(e->exec_env);
	free(e->cwd);
	free(e->log_path);
	if (e->prestart_free)
		e->prestart_free(e->prestart_arg);
	free(e);
}

static void entry_unref(struct sv_proc *e)
{
	if (--e->refs == 0)
		entry_free(e);
}

static char *pidfile_for(const struct sv *sv, const char *id)
{
	char *name = xasprintf("%s.pid", id);
	for (char *c = name; *c; c++)
		if (*c == '/')
			*c = '_';
	char *path = fs_join(sv->run_dir, name);
	free(name);
	return path;
}

static char *pidfile_text(const struct sv *sv, const struct sv_proc *e)
{
	return xasprintf("%d %llu %d %d %s %s\n", (int)e->pid, e->starttime, (int)e->pgid,
			 e->keep ? 1 : 0, sv->boot_id, e->id);
}

/* Everything e's process started: SIGKILL, returns how many still ran. */
static int entry_kill(struct sv *sv, struct sv_proc *e)
{
	return contain_sweep(sv->contain, e->id, e->pgid, true);
}

static struct sv_proc *find(struct sv *sv, const char *id, bool with_leftovers)
{
	for (struct sv_proc *e = sv->head; e; e = e->next)
		if (strcmp(e->id, id) == 0 && (with_leftovers || !e->leftover))
			return e;
	return NULL;
}

static void kick(struct sv *sv)
{
	sv->kicked = true;
	pthread_cond_signal(&sv->wake);
}

/* Lock held.  Asks for e to be stopped and waits until it is gone. */
static void stop_and_wait(struct sv *sv, struct sv_proc *e)
{
	e->refs++;
	e->stop_req = true;
	kick(sv);
	while (!e->done)
		pthread_cond_wait(&sv->changed, &sv->lock);
	entry_unref(e);
}

/* ---- the supervisor thread -------------------------------------------- */

/* Lock held.  Unlinks e, which has no process left. */
static void proc_finish(struct sv *sv, struct sv_proc *e, bool remove_pidfile)
{
	if (remove_pidfile)
		unlink(e->pidfile);
	contain_forget(sv->contain, e->id);
	e->state = SV_STOPPED;
	e->pid = 0;
	for (struct sv_proc **pp = &sv->head; *pp; pp = &(*pp)->next) {
		if (*pp == e) {
			*pp = e->next;
			break;
		}
	}
	e->next = NULL;
	e->done = true;
	pthread_cond_broadcast(&sv->changed);
	entry_unref(e);
}

/* Lock held.  After an exit while e should run: when to start it again. */
static void schedule_restart(struct sv *sv, struct sv_proc *e, int64_t now, bool quick)
{
	int64_t delay = 0;
	if (e->skip_backoff) {
		e->skip_backoff = false;
	} else {
		e->crashes = quick ? e->crashes + 1 : 0;
		unsigned n = e->crashes ? e->crashes : 1;
		delay = sv->backoff_initial_ms;
		for (unsigned i = 1; i < n && delay < sv->backoff_max_ms; i++)
			delay *= 2;
		if (delay > sv->backoff_max_ms)
			delay = sv->backoff_max_ms;
	}
	e->state = e->crashes >= (unsigned)sv->crashloop_after ? SV_CRASHLOOP : SV_BACKOFF;
	e->next_start_mono_ms = now + delay;
	e->next_start_real_ms = io_clock_ms(CLOCK_REALTIME) + delay;
}

/* Lock held.  Writes e's pid file without the lock (fsync is slow). */
static void write_pidfile(struct sv *sv, struct sv_proc *e)
{
	char *text = pidfile_text(sv, e);
	pthread_mutex_unlock(&sv->lock);
	if (fs_write_atomic(e->pidfile, text, strlen(text), 0600) != 0)
		log_warn("supervisor: cannot write pid file %s", e->pidfile);
	pthread_mutex_lock(&sv->lock);
	free(text);
}

static int stage_code(int stage)
{
	switch (stage) {
	case ST_FORK:
		return MIREN_EUNAVAIL;
	case ST_LOG:
		return MIREN_EIO;
	case ST_SETGROUPS:
	case ST_SETGID:
	case ST_SETUID:
		return MIREN_EPERM;
	case ST_CHDIR:
	case ST_EXEC:
	case ST_PRESTART:
		return MIREN_EINVAL;
	default:
		return MIREN_EINTERNAL;
	}
}

/*
 * Lock held (dropped while forking).  Starts a run of e.  first: for
 * sv_start(), which waits for spawn_done; a failure unregisters e.  Later
 * failures count as quick exits.
 */
static void proc_spawn(struct sv *sv, struct sv_proc *e, bool first)
{
	struct child_plan plan = {
		.path = e->exec_path,
		.argv = e->exec_argv,
		.envp = e->exec_env,
		.cwd = e->cwd,
		.log_path = e->log_path,
		.out_fd = -1,
		.in_fd = -1,
		.stdout_fd = -1,
		.set_ids = sv->is_root && (e->uid != (uid_t)-1 || e->gid != (gid_t)-1),
		.uid = e->uid,
		.gid = e->gid,
		.pdeath_sig = e->keep ? 0 : SIGTERM,
		.parent = getpid(),
		.cg_fd = -1,
		.max_fd = sv->max_fd,
	};
	struct child_report rep = { ST_NONE, 0 };
	pid_t pid = 0;
	struct miren_error hook_err;
	miren_error_clear(&hook_err);
	int rc = -1;

	pthread_mutex_unlock(&sv->lock);
	if (e->prestart && e->prestart(e->prestart_arg, &hook_err) != 0) {
		rep = (struct child_report){ ST_PRESTART, 0 };
	} else {
		plan.cg_fd = contain_prepare(sv->contain, e->id);
		rc = spawn_child(&plan, &pid, &rep);
		if (plan.cg_fd >= 0)
			close(plan.cg_fd);
	}
	pthread_mutex_lock(&sv->lock);

	int64_t now = io_mono_ms();
	if (rc == 0) {
		e->pid = pid;
		e->pgid = pid;
		e->starttime = sv_proc_starttime(pid);
		e->own_child = true;
		e->adopted = false;
		e->state = SV_STARTING;
		e->started_mono_ms = now;
		e->started_real_ms = io_clock_ms(CLOCK_REALTIME);
		e->next_start_mono_ms = e->next_start_real_ms = 0;
		write_pidfile(sv, e);
	} else {
		/* What failed as the message, why (errno's text, the hook's
		 * message) as the detail. */
		const char *arg = stage_arg(&plan, rep.stage);
		struct miren_error why;
		miren_error_set(&why, stage_code(rep.stage), "cannot %s%s%s for '%s'",
				stage_text[rep.stage], arg ? " " : "", arg ? arg : "", e->id);
		miren_error_detail(&why, "%s",
				   rep.stage == ST_PRESTART ? hook_err.message
							    : io_strerror(rep.err));
		if (rep.stage == ST_PRESTART && hook_err.hint[0])
			miren_error_hint(&why, "%s", hook_err.hint);
		if (first) {
			e->spawn_err = stage_code(rep.stage);
			e->spawn_error = why;
		} else {
			log_warn("supervisor: %s: %s", why.message, why.detail);
			e->last_exit = 127 << 8;
			schedule_restart(sv, e, now, true);
		}
	}
	if (first) {
		e->spawn_done = true;
		pthread_cond_broadcast(&sv->changed);
		if (rc != 0)
			proc_finish(sv, e, false);
	}
}

/*
 * Lock held.  e's process exited (for our own child: its zombie still
 * holds the pgid, so the number cannot have been reused).  What it started
 * is counted first: after an exit with status 0 (exit0) that leaves
 * processes running, *left is their number and nothing is killed (it
 * daemonized; the group is then never signalled again, its number being
 * free for reuse).  Otherwise everything it started is killed, *left = 0.
 */
static void proc_exit_sweep(struct sv *sv, struct sv_proc *e, bool exit0, int *left)
{
	*left = exit0 && !e->stop_req ? contain_sweep(sv->contain, e->id, e->pgid, false) : 0;
	if (*left > 0)
		e->pgid = 0;
	else
		entry_kill(sv, e);
}

/*
 * Lock held.  Has e's process exited?  Then it is reaped, *status set (-1
 * when unknown: adopted processes are not our children) and *left as
 * proc_exit_sweep says.
 */
static bool proc_exited(struct sv *sv, struct sv_proc *e, int *status, int *left)
{
	if (e->own_child) {
		siginfo_t si;
		memset(&si, 0, sizeof(si));
		if (waitid(P_PID, (id_t)e->pid, &si, WEXITED | WNOHANG | WNOWAIT) == 0) {
			if (si.si_pid != e->pid)
				return false;
			proc_exit_sweep(sv, e, si.si_code == CLD_EXITED && si.si_status == 0, left);
			int st = -1;
			pid_t r;
			do
				r = waitpid(e->pid, &st, 0);
			while (r < 0 && errno == EINTR);
			*status = r == e->pid ? st : -1;
			return true;
		}
		if (errno == EINTR)
			return false;
		/* ECHILD: reaped behind our back (SIGCHLD ignored?). */
		proc_exit_sweep(sv, e, false, left);
		*status = -1;
		return true;
	}
	if (proc_alive(e->pid, e->starttime))
		return false;
	proc_exit_sweep(sv, e, false, left);
	*status = -1;
	return true;
}

/* Lock held.  e's process is gone (and reaped); left: what it started
 * and left running (proc_exit_sweep). */
static void proc_on_exit(struct sv *sv, struct sv_proc *e, int status, int left, int64_t now)
{
	char how[64];
	int64_t ran = now - e->started_mono_ms;
	pid_t pid = e->pid;
	e->pid = 0;
	e->starttime = 0;
	e->adopted = false;
	e->started_real_ms = 0;
	e->last_exit = status;
	if (e->stop_req) {
		e->draining = true;
		e->drain_deadline_ms = now + SV_DRAIN_MS;
		return;
	}
	unlink(e->pidfile);
	describe_status(status, how, sizeof(how));
	if (left > 0) {
		/* It daemonized: its work goes on without it.  Starting it
		 * again would start a second copy beside the first. */
		e->detached = true;
		e->detached_procs = (unsigned)left;
		e->detached_check_ms = now + SV_DETACHED_CHECK_MS;
		e->state = SV_DETACHED;
		log_warn("supervisor: %s (pid %d) %s after %lld ms, but %d processes it started "
			 "still run; not restarting it while they do",
			 e->id, (int)pid, how, (long long)ran, left);
		return;
	}
	schedule_restart(sv, e, now, ran < sv->healthy_after_ms);
	log_info("supervisor: %s (pid %d) %s after %lld ms; restarting in %lld ms%s", e->id,
		 (int)pid, how, (long long)ran, (long long)(e->next_start_mono_ms - now),
		 e->state == SV_CRASHLOOP ? " (crash loop)" : "");
}

/* Lock held.  e is detached: restarts it once what its leader started is
 * gone (counted at most once a second: the fallback reads /proc). */
static void proc_detached_tick(struct sv *sv, struct sv_proc *e, int64_t now)
{
	if (now < e->detached_check_ms)
		return;
	e->detached_check_ms = now + SV_DETACHED_CHECK_MS;
	int left = contain_sweep(sv->contain, e->id, 0, false);
	e->detached_procs = (unsigned)(left > 0 ? left : 0);
	if (left > 0)
		return;
	e->detached = false;
	schedule_restart(sv, e, now, now - e->started_mono_ms < sv->healthy_after_ms);
	log_info("supervisor: the processes %s left running are gone; restarting it in %lld ms",
		 e->id, (long long)(e->next_start_mono_ms - now));
}

/* Lock held.  One step of stopping e. */
static void proc_stop_step(struct sv *sv, struct sv_proc *e, int64_t now)
{
	e->state = SV_STOPPING;
	if (e->pid > 0) {
		if (!e->stop_sent) {
			e->stop_sent = true;
			e->stop_deadline_ms = now + e->stop_timeout_ms;
			group_signal(e->pgid, e->pid, e->stop_signal);
			/* and what left the group: it may want to clean up too */
			contain_signal(sv->contain, e->id, e->stop_signal,
				       pgid_ok(e->pgid) ? e->pgid : 0);
		} else if (!e->kill_sent && now >= e->stop_deadline_ms) {
			e->kill_sent = true;
			log_warn("supervisor: %s (pid %d) did not stop within %d ms; killing it",
				 e->id, (int)e->pid, e->stop_timeout_ms);
			entry_kill(sv, e);
		}
		return;
	}
	/* The leader is gone; what left its group got the stop signal too and
	 * has the same time to finish before it is killed. */
	if (e->stop_sent && !e->kill_sent && now < e->stop_deadline_ms &&
	    contain_sweep(sv->contain, e->id, pgid_ok(e->pgid) ? e->pgid : 0, false) > 0)
		return;
	if (e->detached) {
		e->detached = false;
		e->draining = true;
		e->drain_deadline_ms = now + SV_DRAIN_MS;
	}
	if (e->draining) {
		if (entry_kill(sv, e) > 0) {
			if (now < e->drain_deadline_ms)
				return;
			log_warn("supervisor: processes of %s (group %d) survive SIGKILL; giving "
				 "up",
				 e->id, (int)e->pgid);
		}
	}
	proc_finish(sv, e, true);
}

/* Lock held (dropped while spawning).  Everything due for e. */
static void proc_tick(struct sv *sv, struct sv_proc *e)
{
	int64_t now = io_mono_ms();
	if (e->leftover && !e->stop_req)
		return;
	if (e->spawn_req) {
		e->spawn_req = false;
		proc_spawn(sv, e, true);
		return;
	}
	if (e->pid > 0) {
		int status, left;
		if (proc_exited(sv, e, &status, &left))
			proc_on_exit(sv, e, status, left, now);
	}
	if (e->stop_req) {
		proc_stop_step(sv, e, now);
		return;
	}
	if (e->restart_req) {
		e->restart_req = false;
		if (e->pid > 0) {
			e->skip_backoff = true;
			entry_kill(sv, e);
			return; /* the exit is seen on the next tick */
		}
		if (e->detached) {
			/* Everything it left goes; the new run starts alone. */
			e->detached = false;
			entry_kill(sv, e);
			e->state = SV_BACKOFF;
		}
		e->next_start_mono_ms = now;
	}
	if (e->detached) {
		proc_detached_tick(sv, e, now);
		return;
	}
	if (e->pid > 0) {
		if (e->pidfile_dirty) {
			e->pidfile_dirty = false;
			write_pidfile(sv, e);
		}
		if (e->state == SV_STARTING && now - e->started_mono_ms >= SV_STARTING_MS)
			e->state = SV_RUNNING;
		if (now - e->started_mono_ms >= sv->healthy_after_ms)
			e->crashes = 0;
		return;
	}
	if ((e->state == SV_BACKOFF || e->state == SV_CRASHLOOP) && now >= e->next_start_mono_ms) {
		e->restarts++;
		proc_spawn(sv, e, false);
	}
}

static void *sv_thread(void *arg)
{
	struct sv *sv = arg;
	pthread_mutex_lock(&sv->lock);
	while (!sv->quit) {
		/* Only this thread unlinks entries, so next stays valid even
		 * when proc_tick drops the lock. */
		for (struct sv_proc *e = sv->head, *next; e; e = next) {
			next = e->next;
			proc_tick(sv, e);
		}
		if (!sv->kicked && !sv->quit) {
			struct timespec ts;
			io_mono_deadline(&ts, SV_TICK_MS);
			pthread_cond_timedwait(&sv->wake, &sv->lock, &ts);
		}
		sv->kicked = false;
	}
	pthread_mutex_unlock(&sv->lock);
	return NULL;
}

/* ---- sv_new / sv_free --------------------------------------------------- */

/* Before the thread runs.  Turns one pid file into a leftover entry. */
static void load_pidfile(struct sv *sv, char *path)
{
	struct strbuf sb;
	strbuf_init(&sb, 4096);
	int pid = 0, pgid = 0, keep = 0, off = 0;
	unsigned long long st = 0;
	if (strbuf_read_file(&sb, path) != 0)
		goto bad;
	strbuf_trim_end(&sb);
	/* The daemon wrote the file (write_pidfile); a damaged one that makes
	 * sscanf overflow still fails the checks below. */
	/* NOLINTNEXTLINE(cert-err34-c) */
	if (sscanf(sb.buf, "%d %llu %d %d %n", &pid, &st, &pgid, &keep, &off) != 4 || off == 0 ||
	    pid <= 1 || pgid <= 1 || !sb.buf[off] || strchr(sb.buf + off, '\n'))
		goto bad;
	/* The boot id (absent in files of older daemons). */
	size_t blen = strcspn(sb.buf + off, " ");
	if (sb.buf[off + blen] == ' ' && (blen == 1 || blen == 36) &&
	    strspn(sb.buf + off, "0123456789abcdef-") == blen) {
		bool same = blen == strlen(sv->boot_id) &&
			    !strncmp(sb.buf + off, sv->boot_id, blen) &&
			    strcmp(sv->boot_id, "-") != 0;
		off += (int)blen + 1;
		if (!same) {
			/* Written before a reboot: its numbers may now name
			 * anyone's processes.  Nothing of it can still run. */
			log_info("supervisor: removing pid file %s of an earlier boot", path);
			unlink(path);
			goto out;
		}
	}
	if (!sb.buf[off])
		goto bad;
	if (!proc_alive(pid, st)) {
		/* The leader is gone, but what it started may still run in its
		 * group or session (a daemon killed with -9 reaps nothing).  The
		 * id cannot be taken by a new group while members remain, unless
		 * a new process now holds pid == pgid: only then leave it. */
		unsigned long long now = sv_proc_starttime(pgid);
		if (pgid == pid && (now == 0 || now == st) && session_sweep(pgid, false) > 0) {
			log_info("supervisor: killing what is left of process group %d (%s)", pgid,
				 sb.buf + off);
			group_kill(pgid);
		}
		unlink(path);
		goto out;
	}
	struct sv_proc *e = xcalloc(1, sizeof(*e));
	e->refs = 1;
	e->id = xstrdup(sb.buf + off);
	e->pidfile = path;
	path = NULL;
	e->leftover = true;
	e->keep = keep != 0;
	e->pid = pid;
	e->pgid = pgid;
	e->starttime = st;
	e->own_child = false;
	e->state = SV_RUNNING;
	e->last_exit = -1;
	e->stop_signal = SIGTERM;
	e->stop_timeout_ms = SV_LEFTOVER_STOP_MS;
	e->uid = (uid_t)-1;
	e->gid = (gid_t)-1;
	if (e->keep) {
		log_info("supervisor: %s (pid %d) survived the last daemon; waiting for adoption",
			 e->id, pid);
	} else {
		log_info("supervisor: stopping leftover %s (pid %d) of the last daemon", e->id,
			 pid);
		e->stop_req = true;
	}
	e->next = sv->head;
	sv->head = e;
	goto out;
bad:
	log_warn("supervisor: removing unreadable pid file %s", path);
	unlink(path);
out:
	free(path);
	strbuf_release(&sb);
}

/* Before the thread runs.  Is flat_id (contain.h) one of our entries? */
static bool claimed_by_entry(void *arg, const char *flat_id)
{
	struct sv *sv = arg;
	bool found = false;
	for (struct sv_proc *e = sv->head; e && !found; e = e->next) {
		char *flat = contain_flat_id(e->id);
		found = strcmp(flat, flat_id) == 0;
		free(flat);
	}
	return found;
}

/* This boot's id (a uuid), "-" when the kernel does not say. */
static void read_boot_id(char *out, size_t len)
{
	struct strbuf sb;
	strbuf_init(&sb, 256);
	snprintf(out, len, "-");
	if (strbuf_read_file(&sb, "/proc/sys/kernel/random/boot_id") == 0) {
		strbuf_trim_end(&sb);
		if (sb.len == 36 && strspn(sb.buf, "0123456789abcdef-") == 36)
			snprintf(out, len, "%s", sb.buf);
	}
	strbuf_release(&sb);
}

static void scan_run_dir(struct sv *sv)
{
	DIR *d = opendir(sv->run_dir);
	if (!d)
		return;
	struct dirent *de;
	while ((de = readdir(d)) != NULL) {
		const char *name = de->d_name;
		size_t n = strlen(name);
		if (strstr(name, ".pid.tmp.")) {
			char *p = fs_join(sv->run_dir, name);
			unlink(p);
			free(p);
		} else if (n > 4 && strcmp(name + n - 4, ".pid") == 0) {
			load_pidfile(sv, fs_join(sv->run_dir, name));
		}
	}
	closedir(d);
}

/* Lock held.  Waits until no entry has a stop pending. */
static void wait_stops(struct sv *sv)
{
	for (;;) {
		bool pending = false;
		for (struct sv_proc *e = sv->head; e && !pending; e = e->next)
			pending = e->stop_req;
		if (!pending)
			return;
		pthread_cond_wait(&sv->changed, &sv->lock);
	}
}

static void sv_destroy(struct sv *sv)
{
	while (sv->head) {
		struct sv_proc *e = sv->head;
		sv->head = e->next;
		entry_free(e);
	}
	pthread_cond_destroy(&sv->wake);
	pthread_cond_destroy(&sv->changed);
	pthread_mutex_destroy(&sv->lock);
	free(sv->run_dir);
	contain_free(sv->contain);
	free(sv);
}

struct sv *sv_new(const struct sv_config *cfg, struct miren_error *err)
{
	if (!cfg || !cfg->run_dir || !cfg->run_dir[0]) {
		miren_error_set(err, MIREN_EINVAL, "supervisor: no run directory given");
		return NULL;
	}
	if (fs_mkdir_p(cfg->run_dir, 0700) != 0) {
		miren_error_set(err, MIREN_EIO, "supervisor: cannot create run directory %s",
				cfg->run_dir);
		miren_error_detail(err, "%s", io_strerror(errno));
		return NULL;
	}
	struct sv *sv = xcalloc(1, sizeof(*sv));
	pthread_mutex_init(&sv->lock, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&sv->wake, &ca);
	pthread_cond_init(&sv->changed, &ca);
	pthread_condattr_destroy(&ca);
	sv->run_dir = xstrdup(cfg->run_dir);
	sv->backoff_initial_ms = cfg->backoff_initial_ms > 0 ? cfg->backoff_initial_ms : 250;
	sv->backoff_max_ms = cfg->backoff_max_ms > 0 ? cfg->backoff_max_ms : 30000;
	if (sv->backoff_max_ms < sv->backoff_initial_ms)
		sv->backoff_max_ms = sv->backoff_initial_ms;
	sv->healthy_after_ms = cfg->healthy_after_ms > 0 ? cfg->healthy_after_ms : 10000;
	sv->crashloop_after = cfg->crashloop_after > 0 ? cfg->crashloop_after : 5;
	sv->max_fd = fd_limit();
	sv->is_root = geteuid() == 0;
	read_boot_id(sv->boot_id, sizeof(sv->boot_id));
	sv->contain = contain_new(sv->run_dir);

	scan_run_dir(sv);
	/* What no pid file accounts for (a daemonized leftover, the orphans
	 * of a leader that died with the last daemon) goes now. */
	contain_sweep_unclaimed(sv->contain, claimed_by_entry, sv);

	/* The thread takes no signals meant for the daemon's handlers. */
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	int rc = pthread_create(&sv->thread, NULL, sv_thread, sv);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc != 0) {
		miren_error_set(err, MIREN_EUNAVAIL, "supervisor: cannot start thread");
		miren_error_detail(err, "%s", io_strerror(rc));
		sv_destroy(sv);
		return NULL;
	}
	pthread_mutex_lock(&sv->lock);
	wait_stops(sv);
	pthread_mutex_unlock(&sv->lock);
	return sv;
}

void sv_free(struct sv *sv)
{
	if (!sv)
		return;
	pthread_mutex_lock(&sv->lock);
	for (struct sv_proc *e = sv->head; e; e = e->next)
		if (!e->leftover && !e->keep)
			e->stop_req = true;
	kick(sv);
	wait_stops(sv);
	sv->quit = true;
	kick(sv);
	pthread_mutex_unlock(&sv->lock);
	pthread_join(sv->thread, NULL);
	sv_destroy(sv);
}

/* ---- the API ------------------------------------------------------------ */

static enum miren_err check_spec(const struct sv_spec *spec, struct miren_error *err)
{
	if (!spec || !spec->id || !spec->id[0] || strlen(spec->id) > SV_ID_MAX ||
	    strpbrk(spec->id, "\n\r"))
		return miren_error_set(err, MIREN_EINVAL, "invalid process id");
	if (!(spec->argv && spec->argv[0]) && !spec->command)
		return miren_error_set(err, MIREN_EINVAL, "%s: no command to run", spec->id);
	if (spec->stop_signal < 0 || spec->stop_signal >= NSIG || spec->stop_timeout_ms < 0)
		return miren_error_set(err, MIREN_EINVAL, "%s: invalid stop signal or timeout",
				       spec->id);
	if (spec->cwd && !fs_is_dir(spec->cwd))
		return miren_error_set(err, MIREN_EINVAL, "%s: working directory %s does not exist",
				       spec->id, spec->cwd);
	return MIREN_OK;
}

static struct sv_proc *entry_from_spec(struct sv *sv, const struct sv_spec *spec)
{
	struct sv_proc *e = xcalloc(1, sizeof(*e));
	e->id = xstrdup(spec->id);
	e->pidfile = pidfile_for(sv, spec->id);
	if (spec->argv && spec->argv[0]) {
		e->exec_path = xstrdup(spec->argv[0]);
		e->exec_argv = strv_dup(spec->argv);
	} else {
		char *const shell[] = { "sh", "-c", (char *)spec->command, NULL };
		e->exec_path = xstrdup("/bin/sh");
		e->exec_argv = strv_dup(shell);
	}
	/* The whole environment, plus the tag that finds its processes. */
	char *const *env = spec->env ? spec->env : environ;
	size_t n_env = 0;
	while (env[n_env])
		n_env++;
	e->exec_env = xcalloc(n_env + 2, sizeof(char *));
	size_t k = 0;
	e->exec_env[k++] = contain_tag_env(sv->contain, spec->id); /* first: found soonest */
	for (size_t i = 0; i < n_env; i++)
		if (strncmp(env[i], "MIREN_SV_TAG=", 13) != 0)
			e->exec_env[k++] = xstrdup(env[i]);
	e->cwd = spec->cwd ? xstrdup(spec->cwd) : NULL;
	e->log_path = xstrdup(spec->log_path ? spec->log_path : "/dev/null");
	e->uid = spec->uid;
	e->gid = spec->gid;
	e->stop_signal = spec->stop_signal ? spec->stop_signal : SIGTERM;
	e->stop_timeout_ms = spec->stop_timeout_ms ? spec->stop_timeout_ms : 10000;
	e->keep = spec->keep_on_daemon_exit;
	e->prestart = spec->prestart;
	e->prestart_arg = spec->prestart_arg;
	e->prestart_free = spec->prestart_free;
	e->state = SV_STARTING;
	e->last_exit = -1;
	return e;
}

/* Lock held.  Turns leftover old into a registered entry described by n. */
static void adopt(struct sv *sv, struct sv_proc *old, struct sv_proc *n)
{
#define MOVE(f)                \
	do {                   \
		old->f = n->f; \
		n->f = NULL;   \
	} while (0)
	MOVE(exec_path);
	MOVE(exec_argv);
	MOVE(exec_env);
	MOVE(cwd);
	MOVE(log_path);
	MOVE(prestart_arg);
#undef MOVE
	old->prestart = n->prestart;
	old->prestart_free = n->prestart_free;
	n->prestart_free = NULL;
	old->uid = n->uid;
	old->gid = n->gid;
	old->stop_signal = n->stop_signal;
	old->stop_timeout_ms = n->stop_timeout_ms;
	old->pidfile_dirty = old->keep != n->keep;
	old->keep = n->keep;
	old->leftover = false;
	old->adopted = true;
	old->state = SV_RUNNING;
	old->restarts = 0;
	old->crashes = 0;
	old->last_exit = -1;

	long hz = sysconf(_SC_CLK_TCK);
	int64_t age = io_clock_ms(CLOCK_BOOTTIME) -
		      (int64_t)(old->starttime * 1000 / (hz > 0 ? hz : 100));
	if (age < 0)
		age = 0;
	old->started_mono_ms = io_mono_ms() - age;
	old->started_real_ms = io_clock_ms(CLOCK_REALTIME) - age;
	log_info("supervisor: adopted %s (pid %d)", old->id, (int)old->pid);
	kick(sv);
}

enum miren_err sv_start(struct sv *sv, const struct sv_spec *spec, struct miren_error *err)
{
	enum miren_err rc = check_spec(spec, err);
	if (rc) {
		if (spec && spec->prestart_free)
			spec->prestart_free(spec->prestart_arg);
		return rc;
	}
	struct sv_proc *n = entry_from_spec(sv, spec);
	pthread_mutex_lock(&sv->lock);
	struct sv_proc *old;
	while ((old = find(sv, spec->id, true)) != NULL) {
		if (old->leftover && spec->adopt && !old->stop_req &&
		    proc_alive(old->pid, old->starttime)) {
			adopt(sv, old, n);
			pthread_mutex_unlock(&sv->lock);
			entry_free(n);
			return MIREN_OK;
		}
		stop_and_wait(sv, old); /* drops the lock while waiting: look again */
	}
	n->refs = 2; /* the list and us */
	n->spawn_req = true;
	n->next = sv->head;
	sv->head = n;
	kick(sv);
	while (!n->spawn_done)
		pthread_cond_wait(&sv->changed, &sv->lock);
	rc = n->spawn_err;
	if (rc && err)
		*err = n->spawn_error;
	entry_unref(n);
	pthread_mutex_unlock(&sv->lock);
	return rc;
}

int sv_stop(struct sv *sv, const char *id)
{
	pthread_mutex_lock(&sv->lock);
	struct sv_proc *e = find(sv, id, true);
	if (e)
		stop_and_wait(sv, e);
	pthread_mutex_unlock(&sv->lock);
	return e ? 0 : MIREN_ENOTFOUND;
}

int sv_restart(struct sv *sv, const char *id)
{
	pthread_mutex_lock(&sv->lock);
	struct sv_proc *e = find(sv, id, false);
	if (e && !e->stop_req) {
		e->restart_req = true;
		kick(sv);
	}
	pthread_mutex_unlock(&sv->lock);
	return e ? 0 : MIREN_ENOTFOUND;
}

int sv_status(struct sv *sv, const char *id, struct sv_status *st)
{
	pthread_mutex_lock(&sv->lock);
	struct sv_proc *e = find(sv, id, false);
	if (e) {
		memset(st, 0, sizeof(*st));
		st->state = e->state;
		st->pid = e->pid;
		st->restarts = e->restarts;
		st->last_exit = e->last_exit;
		st->started_at_ms = e->pid > 0 ? e->started_real_ms : 0;
		st->next_start_ms = (e->state == SV_BACKOFF || e->state == SV_CRASHLOOP)
					    ? e->next_start_real_ms
					    : 0;
		st->adopted = e->pid > 0 && e->adopted;
		st->crashes = e->crashes;
		st->detached = e->detached ? e->detached_procs : 0;
	}
	pthread_mutex_unlock(&sv->lock);
	return e ? 0 : MIREN_ENOTFOUND;
}

int sv_reap_unclaimed(struct sv *sv)
{
	pthread_mutex_lock(&sv->lock);
	size_t n = 0;
	for (struct sv_proc *e = sv->head; e; e = e->next)
		if (e->leftover && !e->stop_req)
			n++;
	struct sv_proc **list = xcalloc(n ? n : 1, sizeof(struct sv_proc *));
	size_t i = 0;
	for (struct sv_proc *e = sv->head; e; e = e->next) {
		if (e->leftover && !e->stop_req) {
			log_info("supervisor: stopping unclaimed leftover %s (pid %d)", e->id,
				 (int)e->pid);
			e->refs++;
			e->stop_req = true;
			list[i++] = e;
		}
	}
	kick(sv);
	for (i = 0; i < n; i++) {
		while (!list[i]->done)
			pthread_cond_wait(&sv->changed, &sv->lock);
		entry_unref(list[i]);
	}
	pthread_mutex_unlock(&sv->lock);
	free(list);
	return (int)n;
}

const char *sv_state_name(enum sv_state s)
{
	switch (s) {
	case SV_STARTING:
		return "starting";
	case SV_RUNNING:
		return "running";
	case SV_BACKOFF:
		return "backoff";
	case SV_CRASHLOOP:
		return "crashloop";
	case SV_STOPPING:
		return "stopping";
	case SV_STOPPED:
		return "stopped";
	case SV_DETACHED:
		return "detached";
	}
	return "unknown";
}

/* ---- sv_run ------------------------------------------------------------- */

struct run_out {
	char *buf; /* SV_RUN_OUTPUT_MAX + 1 bytes, or NULL to discard */
	size_t len;
};

/* Appends, keeping the last SV_RUN_OUTPUT_MAX bytes. */
static void run_out_add(struct run_out *o, const char *data, size_t n)
{
	if (!o->buf)
		return;
	if (n > SV_RUN_OUTPUT_MAX) {
		/* Only the tail fits.  Moved as a pointer first: an offset
		 * expression inside memcpy makes GCC -O3 warn for callers whose
		 * buffers are smaller than the cap (an unreachable branch). */
		data += n - SV_RUN_OUTPUT_MAX;
		n = SV_RUN_OUTPUT_MAX;
	}
	if (o->len + n > SV_RUN_OUTPUT_MAX) {
		size_t drop = o->len + n - SV_RUN_OUTPUT_MAX;
		memmove(o->buf, o->buf + drop, o->len - drop);
		o->len -= drop;
	}
	memcpy(o->buf + o->len, data, n);
	o->len += n;
}

/* One read from fd into o.  Returns >0 read, 0 EOF/error, -1 no data now. */
static ssize_t run_read(struct run_out *o, int fd)
{
	char chunk[16384];
	ssize_t n = read(fd, chunk, sizeof(chunk));
	if (n > 0) {
		run_out_add(o, chunk, (size_t)n);
		return n;
	}
	if (n < 0 && (errno == EINTR || errno == EAGAIN))
		return -1;
	return 0;
}

int sv_run(char *const *argv, char *const *env, const char *cwd, uid_t uid, gid_t gid,
	   int timeout_ms, char **output)
{
	return sv_run_fds(argv, env, cwd, uid, gid, timeout_ms, -1, -1, output);
}

int sv_run_fds(char *const *argv, char *const *env, const char *cwd, uid_t uid, gid_t gid,
	       int timeout_ms, int in_fd, int out_fd, char **output)
{
	int rc = -1;
	int fds[2] = { -1, -1 };
	struct run_out out = { NULL, 0 };
	if (output) {
		*output = NULL;
		out.buf = xmalloc(SV_RUN_OUTPUT_MAX + 1);
	}
	if (!argv || !argv[0]) {
		const char *m = "miren: cannot run an empty command\n";
		run_out_add(&out, m, strlen(m));
		goto out;
	}
	if (pipe2(fds, O_CLOEXEC) < 0) {
		char *m = xasprintf("miren: cannot start %s: %s\n", argv[0], io_strerror(errno));
		run_out_add(&out, m, strlen(m));
		free(m);
		goto out;
	}
	struct child_plan plan = {
		.path = argv[0],
		.argv = argv,
		.envp = env ? env : environ,
		.cwd = cwd,
		.log_path = NULL,
		.out_fd = fds[1],
		.in_fd = in_fd,
		.stdout_fd = out_fd,
		.set_ids = geteuid() == 0 && (uid != (uid_t)-1 || gid != (gid_t)-1),
		.uid = uid,
		.gid = gid,
		.pdeath_sig = SIGKILL, /* the calling thread waits for it */
		.parent = getpid(),
		.cg_fd = -1,
		.max_fd = fd_limit(),
	};
	struct child_report rep = { ST_NONE, 0 };
	pid_t pid = 0;
	int sr = spawn_child(&plan, &pid, &rep);
	close(fds[1]);
	fds[1] = -1;
	if (sr != 0) {
		/* The child (reaped already) said why on its stderr, when it could. */
		while (run_read(&out, fds[0]) != 0)
			;
		if (rep.stage == ST_FORK || rep.stage == ST_SETSID || rep.stage == ST_DEVNULL ||
		    rep.stage == ST_DUP) {
			char *m = xasprintf("miren: cannot %s for %s: %s\n", stage_text[rep.stage],
					    argv[0], io_strerror(rep.err));
			run_out_add(&out, m, strlen(m));
			free(m);
		}
		goto out;
	}

	int64_t deadline = timeout_ms > 0 ? io_mono_ms() + timeout_ms : 0;
	int status = 0, nap_ms = 1;
	for (;;) {
		int wait_ms = SV_TICK_MS;
		if (deadline) {
			int64_t left = deadline - io_mono_ms();
			if (left < 0)
				left = 0;
			if (left < wait_ms)
				wait_ms = (int)left;
		}
		if (fds[0] >= 0) {
			struct pollfd pfd = { .fd = fds[0], .events = POLLIN };
			if (poll(&pfd, 1, wait_ms) > 0 && run_read(&out, fds[0]) == 0) {
				close(fds[0]);
				fds[0] = -1;
			}
		} else {
			/* stdout closed; the exit follows at once, normally */
			int ms = nap_ms < wait_ms ? nap_ms : wait_ms;
			struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
			nanosleep(&ts, NULL);
			if (nap_ms < 20)
				nap_ms *= 2;
		}
		pid_t r = waitpid(pid, &status, WNOHANG);
		if (r == pid) {
			if (WIFEXITED(status))
				rc = WEXITSTATUS(status);
			else if (WIFSIGNALED(status))
				rc = 128 + WTERMSIG(status);
			break;
		}
		if (r < 0 && errno != EINTR)
			break; /* ECHILD: lost; rc stays -1 */
		if (deadline && io_mono_ms() >= deadline) {
			kill(-pid, SIGKILL); /* pgid == pid: setsid in the child */
			kill(pid, SIGKILL);
			while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
				;
			char *m = xasprintf("miren: %s timed out after %d ms\n", argv[0],
					    timeout_ms);
			run_out_add(&out, m, strlen(m));
			free(m);
			break;
		}
	}
	/* What is still buffered; a background process may hold the pipe. */
	if (fds[0] >= 0) {
		fcntl(fds[0], F_SETFL, O_NONBLOCK);
		while (run_read(&out, fds[0]) > 0)
			;
	}
out:
	if (fds[0] >= 0)
		close(fds[0]);
	if (output) {
		out.buf[out.len] = '\0';
		*output = out.buf;
	}
	return rc;
}
