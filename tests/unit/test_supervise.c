/*
 * Tests of the process supervisor (lib/supervise) with real processes:
 * start/status/stop, killing whole groups and sessions, SIGKILL
 * escalation, crash backoff and crash loops, healthy-run reset, env/cwd/
 * log/uid handling, sv_restart, start errors, pid files with adoption and
 * leftover killing (also of an earlier boot), containment of what a
 * service starts outside its session (with cgroups and with the /proc
 * fallback), detached leaders, the prestart hook, and sv_run.  Every test works in its own
 * temporary directory and leaves no process behind.  Set SV_TEST_VERBOSE=1 to see the supervisor's
 * log lines.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "supervise/supervise.h"
#include "util/compiler.h"
#include "util/err.h"
#include "util/fs.h"
#include "util/log.h"
#include "util/sha256.h"
#include "util/strbuf.h"

/* ---- helpers ------------------------------------------------------------ */

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t real_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

/* Polls expr every 10 ms for up to ms; evaluates to whether it became true. */
#define WAIT_UNTIL(expr, ms)                               \
	({                                                 \
		int64_t end_ = now_ms() + (ms);            \
		bool ok_;                                  \
		while (!(ok_ = (expr)) && now_ms() < end_) \
			sleep_ms(10);                      \
		ok_;                                       \
	})

/* state, pgrp and session of pid; returns false when there is no such pid. */
static bool stat_of(pid_t pid, char *state, pid_t *pgrp, pid_t *sid)
{
	char path[64], buf[2048];
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	FILE *f = fopen(path, "re");
	if (!f)
		return false;
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	char *p = strrchr(buf, ')');
	int pg = 0, s = 0;
	char c = 0;
	if (!p || sscanf(p + 1, " %c %*d %d %d", &c, &pg, &s) != 3)
		return false;
	if (state)
		*state = c;
	if (pgrp)
		*pgrp = pg;
	if (sid)
		*sid = s;
	return true;
}

/* Gone, or a zombie nobody reaped yet. */
static bool pid_gone(pid_t pid)
{
	char c;
	return !stat_of(pid, &c, NULL, NULL) || c == 'Z' || c == 'X';
}

/* Live members of the group or session id; up to max pids in out. */
static int members(pid_t id, pid_t *out, int max)
{
	DIR *d = opendir("/proc");
	assert_non_null(d);
	int n = 0;
	struct dirent *de;
	while ((de = readdir(d)) != NULL) {
		char *end;
		long v = strtol(de->d_name, &end, 10);
		if (*end || v <= 1)
			continue;
		char c;
		pid_t pg, s;
		if (!stat_of((pid_t)v, &c, &pg, &s) || c == 'Z' || (pg != id && s != id))
			continue;
		if (n < max)
			out[n] = (pid_t)v;
		n++;
	}
	closedir(d);
	return n;
}

/* Bit n set for each open fd n < 31 of a /proc/<pid>/fd directory; bit 31
 * for any higher one. */
static unsigned open_fds_mask(const char *fddir)
{
	DIR *d = opendir(fddir);
	assert_non_null(d);
	unsigned mask = 0;
	struct dirent *de;
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		int fd = atoi(de->d_name);
		mask |= fd < 31 ? 1u << fd : 1u << 31;
	}
	closedir(d);
	return mask;
}

static char *slurp(const char *path)
{
	struct strbuf sb;
	strbuf_init(&sb, 0);
	if (strbuf_read_file(&sb, path) != 0) {
		strbuf_release(&sb);
		return xstrdup("");
	}
	return strbuf_detach(&sb, NULL);
}

/* This boot's id, as the pid files hold it.  Caller frees. */
static char *boot_id(void)
{
	char *s = slurp("/proc/sys/kernel/random/boot_id");
	s[strcspn(s, "\n")] = '\0';
	return s;
}

static bool file_contains(const char *path, const char *needle)
{
	char *s = slurp(path);
	bool r = strstr(s, needle) != NULL;
	free(s);
	return r;
}

static char *make_dir(void)
{
	char tmpl[] = "/tmp/test_supervise.XXXXXX";
	char *d = mkdtemp(tmpl);
	assert_non_null(d);
	return xstrdup(d);
}

static void drop_dir(char *dir)
{
	fs_remove_tree(dir);
	free(dir);
}

static struct sv *new_sv(const char *dir, int binit, int bmax, int healthy, int crashloop)
{
	char *run = fs_join(dir, "run");
	struct sv_config cfg = {
		.run_dir = run,
		.backoff_initial_ms = binit,
		.backoff_max_ms = bmax,
		.healthy_after_ms = healthy,
		.crashloop_after = crashloop,
	};
	struct miren_error err;
	struct sv *sv = sv_new(&cfg, &err);
	if (!sv)
		fail_msg("sv_new: %s", err.message);
	free(run);
	return sv;
}

static struct sv_spec spec_cmd(const char *id, const char *command, const char *log)
{
	struct sv_spec s = {
		.id = id,
		.command = command,
		.log_path = log,
		.uid = (uid_t)-1,
		.gid = (gid_t)-1,
	};
	return s;
}

static void start_ok(struct sv *sv, const struct sv_spec *spec)
{
	struct miren_error err;
	int rc = sv_start(sv, spec, &err);
	if (rc != 0)
		fail_msg("sv_start(%s): %d %s: %s", spec->id, rc, err.message, err.detail);
}

/* The error's message or detail holds s. */
static bool err_has(const struct miren_error *e, const char *s)
{
	return strstr(e->message, s) || strstr(e->detail, s);
}

static struct sv_status status_of(struct sv *sv, const char *id)
{
	struct sv_status st;
	memset(&st, 0, sizeof(st));
	assert_int_equal(sv_status(sv, id, &st), 0);
	return st;
}

static enum sv_state state_of(struct sv *sv, const char *id)
{
	return status_of(sv, id).state;
}

/* A `sleep 1000` in its own session, child of the test, not supervised. */
static pid_t session_sleep(void)
{
	pid_t p = fork();
	assert_true(p >= 0);
	if (p == 0) {
		setsid();
		execl("/bin/sleep", "sleep", "1000", (char *)NULL);
		_exit(127);
	}
	pid_t pg = 0;
	assert_true(WAIT_UNTIL(stat_of(p, NULL, &pg, NULL) && pg == p, 2000));
	return p;
}

static void reap(pid_t pid)
{
	kill(pid, SIGKILL);
	while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
		;
}

/* ---- start, status, stop ------------------------------------------------- */

static void test_start_status_stop(void **state MIREN_UNUSED)
{
	char *dir = make_dir();
	struct sv *sv = new_sv(dir, 0, 0, 0, 0);
	char *log = fs_join(dir, "web.log");
	struct sv_spec spec = spec_cmd("app/hello/web", "sleep 1000", log);
	int64_t t0 = real_ms();
	start_ok(sv, &spec);

	struct sv_status st = status_of(sv, "app/hello/web");
	assert_int_equal(st.state, SV_STARTING);
	assert_true(st.pid > 0);
	assert_int_equal(st.restarts, 0);
	assert_int_equal(st.last_exit, -1);
	assert_true(st.started_at_ms >= t0 - 1000 && st.started_at_ms <= real_ms());
	assert_int_equal(st.next_start_ms, 0);
	assert_false(st.adopted);
	pid_t pid = st.pid;
	pid_t pg, sid;
	assert_true(stat_of(pid, NULL, &pg, &sid));
	assert_int_equal(pg, pid);
	assert_int_equal(sid, pid);

	/* pid file: "pid starttime pgid keep bootid id" */
	char *pidfile = fs_join(dir, "run/app_hello_web.pid");
	char *text = slurp(pidfile);
	char *boot = boot_id();
	char *want = xasprintf("%d %llu %d 0 %s app/hello/web\n", (int)pid, sv_proc_starttime(pid),
			       (int)pid, boot);
	free(boot);
	assert_string_equal(text, want);
	free(text);
	free(want);

	assert_true(WAIT_UNTIL(state_of(sv, "app/hello/web") == SV_RUNNING, 3000));
	assert_int_equal(status_of(sv, "app/hello/web").pid, pid);
	assert_string_equal(sv_state_name(SV_RUNNING), "running");
	assert_string_equal(sv_state_name(SV_CRASHLOOP), "crashloop");

	assert_int_equal(sv_stop(sv, "app/hello/web"), 0);
	assert_true(pid_gone(pid));
	assert_false(fs_exists(pidfile));
	struct sv_status dummy;
	assert_int_equal(sv_status(sv, "app/hello/web", &dummy), MIREN_ENOTFOUND);
	assert_int_equal(sv_stop(sv, "app/hello/web"), MIREN_ENOTFOUND);
	assert_int_equal(sv_restart(sv, "app/hello/web"), MIREN_ENOTFOUND);

	sv_free(sv);
	free(pidfile);
	free(log);
	drop_dir(dir);
}

static void test_stop_kills_group_and_session(void **state MIREN_UNUSED)
{
	char *dir = make_dir();
	struct sv *sv = new_sv(dir, 0, 0, 0, 0);
	/* A grandchild in the group, and one that left the group with setpgid
	 * but stays in the session. */
	struct sv_spec spec = spec_cmd("g",
				       "sleep 1000 & perl -e 'setpgrp(0,0); sleep 1000' & "
				       "sleep 1000",
				       NULL);
	start_ok(sv, &spec);
	pid_t pid = status_of(sv, "g").pid;
	pid_t pids[16];
	assert_true(WAIT_UNTIL(members(pid, pids, 16) == 4, 3000));
	int n = members(pid, pids, 16);

	assert_int_equal(sv_stop(sv, "g"), 0);
	for (int i = 0; i < n; i++)
		assert_true(pid_gone(pids[i]));
	assert_int_equal(members(pid, pids, 16), 0);
	sv_free(sv);
	drop_dir(dir);
}

static void test_stop_escalates_to_sigkill(void **state MIREN_UNUSED)
{
	char *dir = make_dir();
	struct sv *sv = new_sv(dir, 0, 0, 0, 0);
	struct sv_spec spec = spec_cmd("stubborn", "trap '' TERM; sleep 1000", NULL);
	spec.stop_timeout_ms = 300;
	start_ok(sv, &spec);
	pid_t pid = status_of(sv, "stubborn").pid;
	pid_t pids[8];
	assert_true(WAIT_UNTIL(members(pid, pids, 8) == 2, 3000));
	int n = members(pid, pids, 8);

	int64_t t0 = now_ms();
	assert_int_equal(sv_stop(sv, "stubborn"), 0);
	int64_t took = now_ms() - t0;
	assert_true(took >= 300);
	assert_true(took < 3000);
	for (int i = 0; i < n; i++)
		assert_true(pid_gone(pids[i]));
	sv_free(sv);
	drop_dir(dir);
}

static void test_stop_signal(void **state MIREN_UNUSED)
{
	char *dir = make_dir();
	struct sv *sv = new_sv(dir, 0, 0, 0, 0);
	char *log = fs_join(dir, "int.log");
	struct sv_spec spec = spec_cmd("int",
				       "trap 'echo got-int; exit 0' INT; echo ready; "
				       "sleep 1000 & wait",
				       log);
	spec.stop_signal = SIGINT;
	spec.stop_timeout_ms = 5000;
	start_ok(sv, &spec);
	assert_true(WAIT_UNTIL(file_contains(log, "ready\n"), 3000));
	pid_t pid = status_of(sv, "int").pid;
	pid_t pids[8];
	assert_true(WAIT_UNTIL(members(pid, pids, 8) == 2, 3000));
	int n = members(pid, pids, 8);

	int64_t t0 = now_ms();
	assert_int_equal(sv_stop(sv, "int"), 0);
	assert_true(now_ms() - t0 < 2500); /* no SIGKILL escalation needed */
	assert_true(file_contains(log, "got-int\n"));
	/* the background sleep ignores SIGINT: killed with the group */
	for (int i = 0; i < n; i++)
		assert_true(pid_gone(pids[i]));
	sv_free(sv);
	free(log);
	drop_dir(dir);
}

struct stopper {
	struct sv *sv;
	const char *id;
	int64_t took;
};

static void *stop_thread(void *arg)
{
	struct stopper *s = arg;
	int64_t t0 = now_ms();
	sv_stop(s->sv, s->id);
	s->took = now_ms() - t0;
	return NULL;
}

static void test_status_not_blocked_by_stop(void **state MIREN_UNUSED)
{
	char *dir = make_dir();
	struct sv *sv = new_sv(dir, 0, 0, 0, 0);
	struct sv_spec slow = spec_cmd("slow", "trap '' TERM; sleep 1000", NULL);
	slow.stop_timeout_ms = 800;
	struct sv_spec other = spec_cmd("other", "sleep 1000", NULL);
	start_ok(sv, &slow);
	start_ok(sv, &other);

	struct stopper s = { sv, "slow", 0 };
	pthread_t t;
	assert_int_equal(pthread_create(&t, NULL, stop_thread, &s), 0);
	assert_true(WAIT_UNTIL(state_of(sv, "slow") == SV_STOPPING, 2000));
	int64_t worst = 0;
	for (int i = 0; i < 40; i++) {
		int64_t t0 = now_ms();
		struct sv_status st = status_of(sv, "other");
		int64_t d = now_ms() - t0;
		if (d > worst)
			worst = d;
		assert_true(st.pid > 0);
		sleep_ms(10);
	}
	assert_true(worst < 200);
	pthread_join(t, NULL);
	assert_true(s.took >= 700);
	assert_int_equal(sv_stop(sv, "other"), 0);
	sv_free(sv);
	drop_dir(dir);
}

/* ---- restarts ------------------------------------------------------------ */

static void test_crash_backoff_and_crashloop(void **state MIREN_UNUSED)
{
	char *dir = make_dir();
	/* first restart after 40 ms, then 80, 160, capped at 160 */
	struct sv *sv = new_sv(dir, 40, 160, 5000, 4);
	struct sv_spec spec = spec_cmd("crashy", "exit 1", NULL);
	start_ok(sv, &spec);

	/* the third quick exit waits 160 ms, minus at most a tick or two */
	struct sv_status st;
	assert_true(
		WAIT_UNTIL((st = status_of(sv, "crashy")).state == SV_BACKOFF && st.crashes == 3,
			   5000));
	int64_t wait = st.next_start_ms - real_ms();
	assert_true(wait > 60 && wait <= 160);
	assert_int_equal(st.last_exit, 1 << 8);
	assert_int_equal(st.pid, 0);
	assert_int_equal(st.restarts, 2);

	assert_true(WAIT_UNTIL((st = status_of(sv, "crashy")).state == SV_CRASHLOOP, 5000));
	assert_true(st.crashes >= 4);
	assert_true(st.restarts >= 3);
	assert_true(st.next_start_ms - real_ms() <= 160);
	/* still retried while crash-looping */
	unsigned r1 = st.restarts;
	assert_true(WAIT_UNTIL(status_of(sv, "crashy").restarts >= r1 + 2, 3000));

	assert_int_equal(sv_stop(sv, "crashy"), 0);
	char *pidfile = fs_join(dir, "run/crashy.pid");
	assert_false(fs_exists(pidfile));
	free(pidfile);
	sv_free(sv);
	drop_dir(dir);
}

static void test_healthy_run_resets_backoff(void **state MIREN_UNUSED)
{
	char *dir = make_dir();
	struct sv *sv = new_sv(dir, 30, 60, 300, 2);
	/* runs 1 and 2 fail at once (crash loop), run 3 is healthy (0.6 s) */
	char *cmd = xasprintf("n=$(cat %s/count 2>/dev/null || echo 0); n=$((n+1)); "
			      "echo $n > %s/count; if [ $n -eq 3 ]; then sleep 0.6; fi; exit 1",
			      dir, dir);
	struct sv_spec spec = spec_cmd("flaky", cmd, NULL);
	start_ok(sv, &spec);
	struct sv_status st;
	assert_true(WAIT_UNTIL((st = status_of(sv, "flaky")).state == SV_CRASHLOOP, 3000));
	assert_int_equal(st.crashes, 2);
	assert_true(
		WAIT_UNTIL((st = status_of(sv, "flaky")).restarts >= 2 && st.crashes == 0, 3000));
	assert_true(st.state != SV_CRASHLOOP);
	/* after the healthy run quick exits count from zero again */
	assert_true(
		WAIT_UNTIL((st = status_of(sv, "flaky")).restarts >= 5 && st.state == SV_CRASHLOOP,
			   3000));
	assert_int_equal(sv_stop(sv, "flaky"), 0);
	sv_free(sv);
	free(cmd);
	drop_dir(dir);
}

static void test_restart(void **state MIREN_UNUSED)
{
	char *dir = make_dir();
	struct sv *sv = new_sv(dir, 60000, 60000, 0, 0);
	struct sv_spec spec = spec_cmd("r", "sleep 1000 & sleep 1000", NULL);
	start_ok(sv, &spec);
	pid_t pid1 = status_of(sv, "r").pid;
	pid_t pids[8];
	assert_true(WAIT_UNTIL(members(pid1, pids, 8) == 3, 3000));
	int n = members(pid1, pids, 8);

	assert_int_equal(sv_restart(sv, "r"), 0);
	struct sv_status st;
	assert_true(WAIT_UNTIL((st = status_of(sv, "r")).pid > 0 && st.pid != pid1, 2000));
	assert_int_equal(st.restarts, 1);
	assert_int_equal(st.crashes, 0);
	assert_int_equal(st.last_exit, SIGKILL);
	for (int i = 0; i < n; i++)
		assert_true(pid_gone(pids[i]));

	/* waiting for a 60 s backoff: sv_restart starts it at once */
	struct sv_spec crash = spec_cmd("c", "exit 3", NULL);
	start_ok(sv, &crash);
	assert_true(WAIT_UNTIL(state_of(sv, "c") == SV_BACKOFF, 2000));
	assert_int_equal(status_of(sv, "c").restarts, 0);
	assert_int_equal(sv_restart(sv, "c"), 0);
	assert_true(WAIT_UNTIL(status_of(sv, "c").restarts == 1, 2000));

	assert_int_equal(sv_stop(sv, "r"), 0);
	assert_int_equal(sv_stop(sv, "c"), 0);
	sv_free(sv);
	drop_dir(dir);
}

static void test_start_replaces(void **state MIREN_UNUSED)
{
	char *dir = make_dir();
	struct sv *sv = new_sv(dir, 0, 0, 0, 0);
	struct sv_spec spec = spec_cmd("x", "sleep 1000", NULL);
	start_ok(sv, &spec);
	pid_t pid1 = status_of(sv, "x").pid;
	start_ok(sv, &spec);
	struct sv_status st = status_of(sv, "x");
	assert_true(st.pid > 0 && st.pid != pid1);
	assert_int_equal(st.restarts, 0);
	assert_true(pid_gone(pid1));
	sv_free(sv); /* stops x */
	assert_true(pid_gone(st.pid));
	drop_dir(dir);
}

/* ---- what the child gets ------------------------------------------------- */

static void test_env_cwd_log(void **state MIREN_UNUSED)
{
	char *dir = make_dir();
	struct sv *sv = new_sv(dir, 0, 0, 0, 0);
	char *work = fs_join(dir, "work");
	assert_int_equal(mkdir(work, 0755), 0);
	char *log = fs_join(dir, "app.log");
	/* the log is appended to */
	assert_int_equal(fs_write_atomic(log, "before\n", 7, 0600), 0);
	char *const env[] = { "FOO=bar baz", "PATH=/usr/bin:/bin", NULL };
	struct sv_spec spec = spec_cmd("env",
				       "echo \"foo=$FOO\"; pwd; echo to-stderr >&2; cat; "
				       "echo done; sleep 1000",
				       log);
	spec.env = env;
	spec.cwd = work;
	start_ok(sv, &spec);
	char *want = xasprintf("before\nfoo=bar baz\n%s\nto-stderr\ndone\n", work);
	assert_true(WAIT_UNTIL(file_contains(log, "done\n"), 3000));
	char *got = slurp(log);
	assert_string_equal(got, want);
	free(got);
	free(want);
	assert_int_equal(sv_stop(sv, "env"), 0);

	/* a fresh log is 0640; argv mode; only fds 0, 1, 2 survive exec */
	char *log2 = fs_join(dir, "argv.log");
	int leak = open("/dev/null", O_RDONLY); /* no O_CLOEXEC on purpose */
	assert_true(leak >= 0);
	char *const argv[] = { "/bin/sleep", "1000", NULL };
	struct sv_spec s2 = spec_cmd("argv", NULL, log2);
	s2.argv = argv;
	start_ok(sv, &s2);
	close(leak);
	pid_t pid = status_of(sv, "argv").pid;
	struct stat sb;
	assert_int_equal(stat(log2, &sb), 0);
	assert_int_equal(sb.st_mode & 0777, 0640);
	char *fddir = xasprintf("/proc/%d/fd", (int)pid);
	/* sv_start returns when the exec closed the report pipe; the kernel
	 * closes the other close-on-exec descriptors in the same loop, so one
	 * may still be seen for a moment under load. */
	assert_true(WAIT_UNTIL(open_fds_mask(fddir) == 7u, 2000));
	char *fd0 = xasprintf("%s/0", fddir), *fd1 = xasprintf("%s/1", fddir);
	char link[512];
	ssize_t n = readlink(fd0, link, sizeof(link) - 1);
	assert_true(n > 0);
	link[n] = '\0';
	assert_string_equal(link, "/dev/null");
	n = readlink(fd1, link, sizeof(link) - 1);
	assert_true(n > 0);
	link[n] = '\0';
	assert_string_equal(link, log2);
	assert_int_equal(sv_stop(sv, "argv"), 0);

	if (geteuid() == 0) {
		char *log3 = fs_join(dir, "ids.log");
		struct sv_spec s3 = spec_cmd("ids",
					     "echo \"ids=$(id -u):$(id -g):$(id -G)\"; "
					     "sleep 1000",
					     log3);
		s3.uid = 65534;
		s3.gid = 65534;
		s3.cwd = "/";
		start_ok(sv, &s3);
		assert_true(WAIT_UNTIL(file_contains(log3, "ids="), 3000));
		assert_true(file_contains(log3, "ids=65534:65534:65534\n"));
		assert_int_equal(sv_stop(sv, "ids"), 0);
		free(log3);
	}
	sv_free(sv);
	free(fd0);
	free(fd1);
	free(fddir);
	free(log2);
	free(log);
	free(work);
	drop_dir(dir);
}

static void test_start_errors(void **state MIREN_UNUSED)
{
	char *dir = make_dir();
	struct sv *sv = new_sv(dir, 0, 0, 0, 0);
	struct miren_error err;
	struct sv_status st;

	struct sv_spec s = spec_cmd("nocwd", "true", NULL);
	s.cwd = "/nonexistent/dir";
	miren_error_clear(&err);
	assert_int_equal(sv_start(sv, &s, &err), MIREN_EINVAL);
	assert_true(err_has(&err, "/nonexistent/dir"));
	assert_int_equal(sv_status(sv, "nocwd", &st), MIREN_ENOTFOUND);

	char *log = fs_join(dir, "noexec.log");
	char *const argv[] = { "/nonexistent/bin", NULL };
	s = spec_cmd("noexec", NULL, log);
	s.argv = argv;
	miren_error_clear(&err);
	assert_int_equal(sv_start(sv, &s, &err), MIREN_EINVAL);
	assert_true(err_has(&err, "exec /nonexistent/bin"));
	assert_true(file_contains(log, "miren: cannot exec /nonexistent/bin: "));
	assert_int_equal(sv_status(sv, "noexec", &st), MIREN_ENOTFOUND);

	s = spec_cmd("nolog", "true", "/nonexistent/dir/x.log");
	assert_int_equal(sv_start(sv, &s, &err), MIREN_EIO);
	assert_true(err_has(&err, "log file"));

	s = spec_cmd("", "true", NULL);
	assert_int_equal(sv_start(sv, &s, &err), MIREN_EINVAL);
	s = spec_cmd("nocmd", NULL, NULL);
	assert_int_equal(sv_start(sv, &s, &err), MIREN_EINVAL);

	struct sv_config bad = { .run_dir = "/proc/no/such/dir" };
	miren_error_clear(&err);
	assert_null(sv_new(&bad, &err));
	assert_true(err.message[0] != '\0');
	assert_int_equal(err.code, MIREN_EIO);

	sv_free(sv);
	free(log);
	drop_dir(dir);
}

/* ---- pid files, adoption, leftovers -------------------------------------- */

static void test_keep_and_adopt(void **state MIREN_UNUSED)
{
	char *dir = make_dir();
	struct sv *sv = new_sv(dir, 0, 0, 0, 0);
	char *log = fs_join(dir, "db.log");
	struct sv_spec keep = spec_cmd("addon/db", "sleep 1000", log);
	keep.keep_on_daemon_exit = true;
	struct sv_spec plain = spec_cmd("app/web", "sleep 1000", NULL);
	start_ok(sv, &keep);
	start_ok(sv, &plain);
	pid_t kpid = status_of(sv, "addon/db").pid;
	pid_t ppid = status_of(sv, "app/web").pid;
	char *pidfile = fs_join(dir, "run/addon_db.pid");
	assert_true(file_contains(pidfile, " addon/db\n") && file_contains(pidfile, " 1 "));

	sv_free(sv); /* the daemon goes away */
	assert_true(pid_gone(ppid));
	assert_false(pid_gone(kpid));
	assert_true(fs_exists(pidfile));

	sv = new_sv(dir, 50, 50, 0, 0);
	assert_false(pid_gone(kpid));
	struct sv_status st;
	assert_int_equal(sv_status(sv, "addon/db", &st), MIREN_ENOTFOUND);
	keep.adopt = true;
	start_ok(sv, &keep);
	st = status_of(sv, "addon/db");
	assert_int_equal(st.pid, kpid);
	assert_true(st.adopted);
	assert_int_equal(st.state, SV_RUNNING);
	assert_true(st.started_at_ms > 0 && st.started_at_ms <= real_ms());
	assert_int_equal(sv_reap_unclaimed(sv), 0);
	assert_false(pid_gone(kpid));

	/* when the adopted process dies it is restarted as our own child */
	kill(kpid, SIGKILL);
	assert_true(WAIT_UNTIL((st = status_of(sv, "addon/db")).pid > 0 && st.pid != kpid, 3000));
	assert_false(st.adopted);
	assert_int_equal(st.restarts, 1);
	reap(kpid);
	pid_t npid = st.pid;
	char *boot = boot_id();
	char *want = xasprintf("%d %llu %d 1 %s addon/db\n", (int)npid, sv_proc_starttime(npid),
			       (int)npid, boot);
	free(boot);
	assert_true(WAIT_UNTIL(file_contains(pidfile, want), 2000));
	free(want);

	assert_int_equal(sv_stop(sv, "addon/db"), 0);
	assert_true(pid_gone(npid));
	assert_false(fs_exists(pidfile));
	sv_free(sv);
	free(pidfile);
	free(log);
	drop_dir(dir);
}

static void test_reap_unclaimed(void **state MIREN_UNUSED)
{
	char *dir = make_dir();
	struct sv *sv = new_sv(dir, 0, 0, 0, 0);
	struct sv_spec keep = spec_cmd("addon/old", "sleep 1000 & sleep 1000", NULL);
	keep.keep_on_daemon_exit = true;
	start_ok(sv, &keep);
	pid_t kpid = status_of(sv, "addon/old").pid;
	pid_t pids[8];
	assert_true(WAIT_UNTIL(members(kpid, pids, 8) == 3, 3000));
	int n = members(kpid, pids, 8);
	sv_free(sv);
	assert_false(pid_gone(kpid));

	sv = new_sv(dir, 0, 0, 0, 0);
	/* sv_start without adopt replaces the leftover: never two at once */
	struct sv_spec other = spec_cmd("addon/other", "sleep 1000", NULL);
	start_ok(sv, &other);
	assert_false(pid_gone(kpid));
	assert_int_equal(sv_reap_unclaimed(sv), 1);
	for (int i = 0; i < n; i++)
		assert_true(pid_gone(pids[i]));
	char *pidfile = fs_join(dir, "run/addon_old.pid");
	assert_false(fs_exists(pidfile));
	assert_int_equal(sv_reap_unclaimed(sv), 0);
	reap(kpid);
	assert_int_equal(sv_stop(sv, "addon/other"), 0);
	sv_free(sv);
	free(pidfile);
	drop_dir(dir);
}

static void test_start_without_adopt_replaces_leftover(void **state MIREN_UNUSED)
{
	char *dir = make_dir();
	struct sv *sv = new_sv(dir, 0, 0, 0, 0);
	struct sv_spec keep = spec_cmd("addon/pg", "sleep 1000", NULL);
	keep.keep_on_daemon_exit = true;
	start_ok(sv, &keep);
	pid_t kpid = status_of(sv, "addon/pg").pid;
	sv_free(sv);

	sv = new_sv(dir, 0, 0, 0, 0);
	start_ok(sv, &keep); /* adopt not set */
	struct sv_status st = status_of(sv, "addon/pg");
	assert_true(st.pid > 0 && st.pid != kpid);
	assert_false(st.adopted);
	assert_true(pid_gone(kpid));
	reap(kpid);
	assert_int_equal(sv_stop(sv, "addon/pg"), 0);
	sv_free(sv);
	drop_dir(dir);
}

static void write_file(const char *path, const char *text)
{
	assert_int_equal(fs_write_atomic(path, text, strlen(text), 0600), 0);
}

static void test_leftovers_at_sv_new(void **state MIREN_UNUSED)
{
	char *dir = make_dir();
	char *run = fs_join(dir, "run");
	assert_int_equal(fs_mkdir_p(run, 0700), 0);

	/* a non-keep leftover of a crashed daemon: killed by sv_new */
	pid_t stale = session_sleep();
	char *f1 = fs_join(run, "app_x_web.pid");
	char *t1 = xasprintf("%d %llu %d 0 app/x/web\n", (int)stale, sv_proc_starttime(stale),
			     (int)stale);
	write_file(f1, t1);
	/* a pid file whose pid now belongs to another process: left alone */
	pid_t other = session_sleep();
	char *f2 = fs_join(run, "app_y_web.pid");
	char *t2 = xasprintf("%d %llu %d 0 app/y/web\n", (int)other, sv_proc_starttime(other) + 1,
			     (int)other);
	write_file(f2, t2);
	/* a dead pid and garbage */
	pid_t dead = fork();
	if (dead == 0)
		_exit(0);
	waitpid(dead, NULL, 0);
	char *f3 = fs_join(run, "app_z_web.pid");
	char *t3 = xasprintf("%d 12345 %d 1 app/z/web\n", (int)dead, (int)dead);
	write_file(f3, t3);
	char *f4 = fs_join(run, "junk.pid");
	write_file(f4, "1 2 3\n");
	char *f5 = fs_join(run, "x.pid.tmp.123");
	write_file(f5, "partial");

	struct sv *sv = new_sv(dir, 0, 0, 0, 0);
	assert_true(pid_gone(stale));
	assert_false(pid_gone(other));
	assert_false(fs_exists(f1));
	assert_false(fs_exists(f2));
	assert_false(fs_exists(f3));
	assert_false(fs_exists(f4));
	assert_false(fs_exists(f5));
	assert_int_equal(sv_reap_unclaimed(sv), 0);
	assert_false(pid_gone(other));
	sv_free(sv);

	reap(stale);
	reap(other);
	free(f1);
	free(f2);
	free(f3);
	free(f4);
	free(f5);
	free(t1);
	free(t2);
	free(t3);
	free(run);
	drop_dir(dir);
}

/* ---- containment ---------------------------------------------------------- */

/* The pid a service wrote to path (0 until it is there). */
static pid_t pid_in(const char *path)
{
	char *s = slurp(path);
	pid_t p = (pid_t)atoi(s);
	free(s);
	return p;
}

/* Is pid in a cgroup below ".../miren/"? */
static bool in_miren_cgroup(pid_t pid)
{
	char *path = xasprintf("/proc/%d/cgroup", (int)pid);
	bool r = file_contains(path, "/miren/");
	free(path);
	return r;
}

/* A command whose `setsid -f` child (its own session: out of the leader's
 * group and session) writes its pid to dir/escaped.N, N counting runs. */
static char *escaping_cmd(const char *dir, const char *then)
{
	return xasprintf("n=$(cat %s/runs 2>/dev/null || echo 0); n=$((n+1)); echo $n > %s/runs; "
			 "setsid -f sh -c 'echo $$ > %s/escaped.'$n'; exec sleep 1000'; %s",
			 dir, dir, dir, then);
}

static void set_mode(bool cgroups)
{
	if (cgroups)
		unsetenv("MIREN_NO_CGROUPS");
	else
		setenv("MIREN_NO_CGROUPS", "1", 1);
}

static void contain_escapees(bool cgroups)
{
	set_mode(cgroups);
	char *dir = make_dir();
	struct sv *sv = new_sv(dir, 50, 50, 0, 0);
	char *cmd = escaping_cmd(dir, "exec sleep 1000");
	struct sv_spec spec = spec_cmd("app/c/web", cmd, NULL);
	start_ok(sv, &spec);
	char *e1 = fs_join(dir, "escaped.1"), *e2 = fs_join(dir, "escaped.2");
	assert_true(WAIT_UNTIL(pid_in(e1) > 0, 3000));
	pid_t p1 = pid_in(e1);
	pid_t pg, sid;
	assert_true(stat_of(p1, NULL, &pg, &sid));
	assert_int_not_equal(sid, status_of(sv, "app/c/web").pid); /* it did escape */
	if (cgroups && !in_miren_cgroup(p1)) {
		sv_free(sv);
		drop_dir(dir);
		skip(); /* no writable cgroup v2 hierarchy here */
	}
	if (!cgroups)
		assert_false(in_miren_cgroup(p1));

	/* a restart kills the escapee: one copy at a time */
	assert_int_equal(sv_restart(sv, "app/c/web"), 0);
	assert_true(WAIT_UNTIL(pid_in(e2) > 0, 3000));
	assert_true(WAIT_UNTIL(pid_gone(p1), 2000));
	pid_t p2 = pid_in(e2);
	assert_false(pid_gone(p2));

	/* a stop too */
	assert_int_equal(sv_stop(sv, "app/c/web"), 0);
	assert_true(pid_gone(p2));

	/* and the daemon going away (keep 0) */
	char *e3 = fs_join(dir, "escaped.3");
	start_ok(sv, &spec);
	assert_true(WAIT_UNTIL(pid_in(e3) > 0, 3000));
	pid_t p3 = pid_in(e3);
	sv_free(sv);
	assert_true(pid_gone(p3));
	free(e1);
	free(e2);
	free(e3);
	free(cmd);
	drop_dir(dir);
}

static void test_contain_escapees_cgroup(void **state MIREN_UNUSED)
{
	contain_escapees(true);
}

static void test_contain_escapees_fallback(void **state MIREN_UNUSED)
{
	contain_escapees(false);
}

/* A stop asks what left the group politely too, once, before SIGKILL. */
static void test_stop_signals_escapees(void **state MIREN_UNUSED)
{
	for (int mode = 0; mode < 2; mode++) {
		set_mode(mode == 0);
		char *dir = make_dir();
		struct sv *sv = new_sv(dir, 50, 50, 0, 0);
		char *cmd =
			xasprintf("setsid -f sh -c 'trap \"echo term >> %s/got; exit 0\" TERM; "
				  "echo $$ > %s/escaped; while :; do sleep 0.05 & wait $!; done'; "
				  "exec sleep 1000",
				  dir, dir);
		struct sv_spec spec = spec_cmd("app/t/web", cmd, NULL);
		start_ok(sv, &spec);
		char *esc = fs_join(dir, "escaped"), *got = fs_join(dir, "got");
		assert_true(WAIT_UNTIL(pid_in(esc) > 0, 3000));
		sleep_ms(100); /* its trap is set before it writes; let it loop */
		assert_int_equal(sv_stop(sv, "app/t/web"), 0);
		assert_true(WAIT_UNTIL(file_contains(got, "term\n"), 2000));
		char *text = slurp(got);
		assert_string_equal(text, "term\n"); /* once */
		free(text);
		assert_true(pid_gone(pid_in(esc)));
		sv_free(sv);
		free(esc);
		free(got);
		free(cmd);
		drop_dir(dir);
	}
}

/* A leader that daemonizes and exits 0 is not restarted into a pile. */
static void detached_leader(bool cgroups)
{
	set_mode(cgroups);
	char *dir = make_dir();
	struct sv *sv = new_sv(dir, 50, 50, 0, 0);
	char *cmd = escaping_cmd(dir, "exit 0");
	struct sv_spec spec = spec_cmd("app/d/worker", cmd, NULL);
	start_ok(sv, &spec);
	char *e1 = fs_join(dir, "escaped.1"), *e2 = fs_join(dir, "escaped.2");
	char *runs = fs_join(dir, "runs");
	assert_true(WAIT_UNTIL(state_of(sv, "app/d/worker") == SV_DETACHED, 3000));
	assert_true(WAIT_UNTIL(pid_in(e1) > 0, 3000)); /* it may not have written yet */
	pid_t p1 = pid_in(e1);
	struct sv_status st = status_of(sv, "app/d/worker");
	assert_int_equal(st.pid, 0);
	assert_int_equal(st.detached, 1);
	assert_string_equal(sv_state_name(SV_DETACHED), "detached");
	sleep_ms(500); /* ten backoffs' worth: still one run */
	assert_int_equal(pid_in(runs), 1);
	assert_int_equal(status_of(sv, "app/d/worker").restarts, 0);

	/* its daemon ends: the service is started again */
	kill(p1, SIGKILL);
	assert_true(WAIT_UNTIL(pid_in(e2) > 0, 4000));
	assert_true(WAIT_UNTIL(state_of(sv, "app/d/worker") == SV_DETACHED, 3000));
	pid_t p2 = pid_in(e2);

	/* a restart kills the daemonized copy before the next run */
	char *e3 = fs_join(dir, "escaped.3");
	assert_int_equal(sv_restart(sv, "app/d/worker"), 0);
	assert_true(WAIT_UNTIL(pid_in(e3) > 0, 3000));
	assert_true(pid_gone(p2));
	assert_true(WAIT_UNTIL(state_of(sv, "app/d/worker") == SV_DETACHED, 3000));
	pid_t p3 = pid_in(e3);

	/* a stop of a detached service kills its processes */
	assert_int_equal(sv_stop(sv, "app/d/worker"), 0);
	assert_true(pid_gone(p3));
	assert_int_equal(pid_in(runs), 3);
	sv_free(sv);
	free(e1);
	free(e2);
	free(e3);
	free(runs);
	free(cmd);
	drop_dir(dir);
}

static void test_detached_cgroup(void **state MIREN_UNUSED)
{
	detached_leader(true);
}

static void test_detached_fallback(void **state MIREN_UNUSED)
{
	detached_leader(false);
}

/* A daemon that dies without stopping anything (a crash): the next one
 * kills what its services started, wherever it ran, and keeps nothing. */
static void crash_leftovers(bool cgroups)
{
	set_mode(cgroups);
	char *dir = make_dir();
	char *e1 = fs_join(dir, "escaped.1");
	int pfd[2];
	assert_int_equal(pipe(pfd), 0);
	pid_t daemon = fork();
	assert_true(daemon >= 0);
	if (daemon == 0) {
		struct sv *sv = new_sv(dir, 50, 50, 0, 0);
		char *cmd = escaping_cmd(dir, "exec sleep 1000");
		struct sv_spec spec = spec_cmd("app/e/web", cmd, NULL);
		start_ok(sv, &spec);
		struct sv_spec daemonizing = spec_cmd("app/e/worker",
						      "setsid -f sleep 1000; exit 0", NULL);
		start_ok(sv, &daemonizing);
		WAIT_UNTIL(pid_in(e1) > 0 && status_of(sv, "app/e/worker").state == SV_DETACHED,
			   3000);
		if (write(pfd[1], "x", 1) != 1)
			_exit(1);
		pause(); /* killed with SIGKILL below */
		_exit(0);
	}
	close(pfd[1]);
	char c;
	assert_int_equal(read(pfd[0], &c, 1), 1);
	close(pfd[0]);
	pid_t p1 = pid_in(e1);
	assert_true(p1 > 0);
	reap(daemon);
	sleep_ms(100);
	assert_false(pid_gone(p1)); /* the crash left it running */

	struct sv *sv = new_sv(dir, 50, 50, 0, 0);
	assert_true(WAIT_UNTIL(pid_gone(p1), 2000));
	/* nothing of the run dir is left: no tagged process, no cgroup member */
	char *run = fs_join(dir, "run");
	char hex[65];
	sha256_hex(run, strlen(run), hex);
	hex[16] = '\0';
	free(run);
	char *tag_probe =
		xasprintf("grep -lz '^MIREN_SV_TAG=%s:' /proc/[0-9]*/environ 2>/dev/null | "
			  "wc -l",
			  hex);
	FILE *f = popen(tag_probe, "r");
	int left = -1;
	assert_int_equal(fscanf(f, "%d", &left), 1);
	pclose(f);
	assert_int_equal(left, 0);
	sv_free(sv);
	free(tag_probe);
	free(e1);
	drop_dir(dir);
}

static void test_crash_leftovers_cgroup(void **state MIREN_UNUSED)
{
	crash_leftovers(true);
}

static void test_crash_leftovers_fallback(void **state MIREN_UNUSED)
{
	crash_leftovers(false);
}

/* Pid files written before a reboot name pids that anyone may hold now. */
static void test_pidfile_of_earlier_boot(void **state MIREN_UNUSED)
{
	char *dir = make_dir();
	char *run = fs_join(dir, "run");
	assert_int_equal(fs_mkdir_p(run, 0700), 0);
	/* same pid and start time (a coincidence after a reboot), other boot */
	pid_t other = session_sleep();
	char *f1 = fs_join(run, "app_b_web.pid");
	char *t1 = xasprintf("%d %llu %d 0 00000000-0000-0000-0000-000000000000 app/b/web\n",
			     (int)other, sv_proc_starttime(other), (int)other);
	write_file(f1, t1);
	struct sv *sv = new_sv(dir, 0, 0, 0, 0);
	assert_false(pid_gone(other));
	assert_false(fs_exists(f1));
	sv_free(sv);
	reap(other);
	free(f1);
	free(t1);
	free(run);
	drop_dir(dir);
}

/* ---- the prestart hook ------------------------------------------------------ */

struct hook_state {
	int calls;
	int fail_on; /* this call fails (0: none) */
	bool freed;
};

static enum miren_err hook(void *arg, struct miren_error *err)
{
	struct hook_state *h = arg;
	h->calls++;
	if (h->calls == h->fail_on)
		return miren_error_set(err, MIREN_EIO, "socket directory is missing");
	return 0;
}

static void hook_free(void *arg)
{
	((struct hook_state *)arg)->freed = true;
}

static void test_prestart(void **state MIREN_UNUSED)
{
	char *dir = make_dir();
	struct sv *sv = new_sv(dir, 50, 50, 0, 0);
	/* called before the first spawn and before every restart; a failing
	 * call on a restart counts as a quick exit and is retried */
	struct hook_state h = { 0, 3, false };
	struct sv_spec spec = spec_cmd("addon/h", "sleep 0.1; exit 1", NULL);
	spec.prestart = hook;
	spec.prestart_arg = &h;
	spec.prestart_free = hook_free;
	start_ok(sv, &spec);
	assert_int_equal(h.calls, 1);
	assert_true(WAIT_UNTIL(h.calls >= 5, 5000));
	assert_true(WAIT_UNTIL(status_of(sv, "addon/h").restarts >= 4, 3000));
	assert_int_equal(sv_stop(sv, "addon/h"), 0);
	assert_true(h.freed);

	/* the first call failing fails sv_start with its message */
	struct hook_state h2 = { 0, 1, false };
	struct miren_error err;
	spec.prestart_arg = &h2;
	assert_int_equal(sv_start(sv, &spec, &err), MIREN_EINVAL);
	/* what failed as the message, the hook's words as the detail */
	assert_string_equal(err.detail, "socket directory is missing");
	assert_non_null(strstr(err.message, "addon/h"));
	assert_true(h2.freed);
	struct sv_status st;
	assert_int_equal(sv_status(sv, "addon/h", &st), MIREN_ENOTFOUND);

	/* and a bad spec frees the argument too */
	struct hook_state h3 = { 0, 0, false };
	spec.prestart_arg = &h3;
	spec.id = "";
	assert_int_equal(sv_start(sv, &spec, &err), MIREN_EINVAL);
	assert_true(h3.freed);
	sv_free(sv);
	drop_dir(dir);
}

/* ---- sv_run and sv_proc_starttime ---------------------------------------- */

static void test_run(void **state MIREN_UNUSED)
{
	char *out = NULL;
	char *const a1[] = { "/bin/sh", "-c", "echo out; echo err >&2; exit 3", NULL };
	assert_int_equal(sv_run(a1, NULL, NULL, (uid_t)-1, (gid_t)-1, 5000, &out), 3);
	assert_string_equal(out, "out\nerr\n");
	free(out);

	char *const a2[] = { "/bin/sh", "-c", "kill -9 $$", NULL };
	assert_int_equal(sv_run(a2, NULL, NULL, (uid_t)-1, (gid_t)-1, 5000, NULL), 128 + 9);

	char *const a3[] = { "/bin/sh", "-c", "echo \"$X $(pwd)\"; cat", NULL };
	char *const env[] = { "X=hello", "PATH=/usr/bin:/bin", NULL };
	assert_int_equal(sv_run(a3, env, "/tmp", (uid_t)-1, (gid_t)-1, 0, &out), 0);
	assert_string_equal(out, "hello /tmp\n");
	free(out);

	/* timeout kills the group, background processes included */
	char *const a4[] = { "/bin/sh", "-c", "sleep 30 & echo $! ; sleep 30", NULL };
	int64_t t0 = now_ms();
	assert_int_equal(sv_run(a4, NULL, NULL, (uid_t)-1, (gid_t)-1, 300, &out), -1);
	assert_true(now_ms() - t0 < 2000);
	pid_t bg = (pid_t)atoi(out);
	assert_true(bg > 0);
	assert_true(WAIT_UNTIL(pid_gone(bg), 2000));
	assert_non_null(strstr(out, "timed out"));
	free(out);

	/* cannot start */
	char *const a5[] = { "/nonexistent/tool", NULL };
	assert_int_equal(sv_run(a5, NULL, NULL, (uid_t)-1, (gid_t)-1, 1000, &out), -1);
	assert_non_null(strstr(out, "cannot exec /nonexistent/tool"));
	free(out);
	assert_int_equal(sv_run(a1, NULL, "/nonexistent/dir", (uid_t)-1, (gid_t)-1, 0, &out), -1);
	assert_non_null(strstr(out, "cannot chdir to /nonexistent/dir"));
	free(out);

	/* only the last 64 KiB are kept */
	char *const a6[] = { "/bin/sh", "-c",
			     "head -c 100000 /dev/zero | tr '\\0' a; echo; echo tail-end", NULL };
	assert_int_equal(sv_run(a6, NULL, NULL, (uid_t)-1, (gid_t)-1, 5000, &out), 0);
	assert_int_equal(strlen(out), 64 * 1024);
	size_t len = strlen(out);
	assert_string_equal(out + len - 9, "tail-end\n");
	free(out);

	/* a background process holding stdout open does not block the return */
	char *const a7[] = { "/bin/sh", "-c", "sleep 3 & echo bg $!", NULL };
	t0 = now_ms();
	assert_int_equal(sv_run(a7, NULL, NULL, (uid_t)-1, (gid_t)-1, 0, &out), 0);
	assert_true(now_ms() - t0 < 2000);
	assert_true(strncmp(out, "bg ", 3) == 0);
	kill((pid_t)atoi(out + 3), SIGKILL);
	free(out);

	if (geteuid() == 0) {
		char *const a8[] = { "/usr/bin/id", "-u", NULL };
		assert_int_equal(sv_run(a8, NULL, "/", 65534, 65534, 5000, &out), 0);
		assert_string_equal(out, "65534\n");
		free(out);
	}
}

/* sv_run_fds: stdin from one fd, stdout to another (also fds 0..2 of the
 * caller), only stderr captured; the fds stay open; as another user too. */
static void test_run_fds(void **state MIREN_UNUSED)
{
	char in_path[] = "/tmp/miren-sv-in-XXXXXX", out_path[] = "/tmp/miren-sv-out-XXXXXX";
	int in = mkstemp(in_path), out = mkstemp(out_path);
	assert_true(in >= 0 && out >= 0);
	assert_int_equal(write(in, "one\ntwo\n", 8), 8);
	assert_int_equal(lseek(in, 0, SEEK_SET), 0);
	char *text = NULL;
	char *const a1[] = { "/bin/sh", "-c", "tr a-z A-Z; echo said >&2; exit 4", NULL };
	assert_int_equal(sv_run_fds(a1, NULL, NULL, (uid_t)-1, (gid_t)-1, 5000, in, out, &text), 4);
	assert_string_equal(text, "said\n");
	free(text);
	char buf[64] = "";
	assert_int_equal(pread(out, buf, sizeof(buf) - 1, 0), 8);
	assert_string_equal(buf, "ONE\nTWO\n");
	/* Still the caller's: usable after. */
	assert_int_equal(write(out, "x", 1), 1);

	/* The caller's fd 0 as the command's stdout, its stdin from /dev/null. */
	int saved = dup(0);
	assert_true(saved >= 0);
	assert_true(dup2(out, 0) == 0);
	assert_int_equal(ftruncate(0, 0), 0);
	assert_int_equal(lseek(0, 0, SEEK_SET), 0);
	char *const a2[] = { "/bin/sh", "-c", "echo to-zero; cat; echo err >&2", NULL };
	int rc = sv_run_fds(a2, NULL, NULL, (uid_t)-1, (gid_t)-1, 5000, -1, 0, &text);
	assert_true(dup2(saved, 0) == 0);
	close(saved);
	assert_int_equal(rc, 0);
	assert_string_equal(text, "err\n");
	free(text);
	memset(buf, 0, sizeof(buf));
	assert_int_equal(pread(out, buf, sizeof(buf) - 1, 0), 8);
	assert_string_equal(buf, "to-zero\n");

	if (geteuid() == 0) {
		/* As another user: the fds are passed, not opened again. */
		assert_int_equal(fchmod(in, 0600), 0);
		assert_int_equal(lseek(in, 0, SEEK_SET), 0);
		assert_int_equal(ftruncate(out, 0), 0);
		assert_int_equal(lseek(out, 0, SEEK_SET), 0);
		char *const a3[] = { "/bin/sh", "-c", "id -u; cat", NULL };
		char *const env[] = { "PATH=/usr/bin:/bin", NULL };
		assert_int_equal(sv_run_fds(a3, env, "/", 65534, 65534, 5000, in, out, &text), 0);
		free(text);
		memset(buf, 0, sizeof(buf));
		assert_true(pread(out, buf, sizeof(buf) - 1, 0) > 0);
		assert_string_equal(buf, "65534\none\ntwo\n");
	}
	close(in);
	close(out);
	unlink(in_path);
	unlink(out_path);
}

static void test_proc_starttime(void **state MIREN_UNUSED)
{
	assert_true(sv_proc_starttime(getpid()) > 0);
	assert_int_equal(sv_proc_starttime(0), 0);
	assert_int_equal(sv_proc_starttime(-5), 0);
	pid_t p = fork();
	if (p == 0)
		_exit(0);
	assert_true(p > 0);
	waitpid(p, NULL, 0);
	assert_int_equal(sv_proc_starttime(p), 0);
	/* ticks since boot: not after now */
	char *s = slurp("/proc/uptime");
	double up = atof(s);
	free(s);
	unsigned long long st = sv_proc_starttime(getpid());
	assert_true((double)st / (double)sysconf(_SC_CLK_TCK) <= up + 1);
}

int main(void)
{
	const char *v = getenv("SV_TEST_VERBOSE");
	if (!v || strcmp(v, "1") != 0)
		log_set_quiet_stderr(1);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_proc_starttime),
		cmocka_unit_test(test_start_status_stop),
		cmocka_unit_test(test_stop_kills_group_and_session),
		cmocka_unit_test(test_stop_escalates_to_sigkill),
		cmocka_unit_test(test_stop_signal),
		cmocka_unit_test(test_status_not_blocked_by_stop),
		cmocka_unit_test(test_crash_backoff_and_crashloop),
		cmocka_unit_test(test_healthy_run_resets_backoff),
		cmocka_unit_test(test_restart),
		cmocka_unit_test(test_start_replaces),
		cmocka_unit_test(test_env_cwd_log),
		cmocka_unit_test(test_start_errors),
		cmocka_unit_test(test_keep_and_adopt),
		cmocka_unit_test(test_reap_unclaimed),
		cmocka_unit_test(test_start_without_adopt_replaces_leftover),
		cmocka_unit_test(test_leftovers_at_sv_new),
		cmocka_unit_test(test_contain_escapees_cgroup),
		cmocka_unit_test(test_contain_escapees_fallback),
		cmocka_unit_test(test_stop_signals_escapees),
		cmocka_unit_test(test_detached_cgroup),
		cmocka_unit_test(test_detached_fallback),
		cmocka_unit_test(test_crash_leftovers_cgroup),
		cmocka_unit_test(test_crash_leftovers_fallback),
		cmocka_unit_test(test_pidfile_of_earlier_boot),
		cmocka_unit_test(test_prestart),
		cmocka_unit_test(test_run),
		cmocka_unit_test(test_run_fds),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
