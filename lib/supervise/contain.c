/*
 * Process containment: per-id cgroups (v2) and the /proc fallback; see
 * contain.h for the contract.
 */
#include "supervise/contain.h"
#include "util/err.h"
#include "util/fs.h"
#include "util/io.h"
#include "util/log.h"
#include "util/sha256.h"
#include "util/strbuf.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define TAG_VAR "MIREN_SV_TAG="
#define ENVIRON_MAX (256 * 1024) /* bytes of /proc/<pid>/environ looked at */
#define DRAIN_MS 5000            /* max wait for killed processes to vanish */

struct sv_contain {
	char hex[17];  /* of the run dir: names the cgroup directory and tags */
	char *cg_base; /* "<v2 mount>/miren/<hex>", NULL: the fallback */
};

/* ---- /proc ----------------------------------------------------------------- */

int proc_read(pid_t pid, struct proc_info *pi)
{
	char path[64], buf[2048];
	if (pid <= 0)
		return -1;
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	ssize_t n;
	do
		n = read(fd, buf, sizeof(buf) - 1);
	while (n < 0 && errno == EINTR);
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = '\0';
	/* Fields are counted after the last ')': comm may hold anything. */
	char *p = strrchr(buf, ')');
	if (!p)
		return -1;
	char *save = NULL;
	int field = 2;
	for (char *tok = strtok_r(p + 1, " ", &save); tok; tok = strtok_r(NULL, " ", &save)) {
		switch (++field) {
		case 3:
			pi->state = tok[0];
			break;
		case 4:
			pi->ppid = (pid_t)strtol(tok, NULL, 10);
			break;
		case 5:
			pi->pgrp = (pid_t)strtol(tok, NULL, 10);
			break;
		case 6:
			pi->session = (pid_t)strtol(tok, NULL, 10);
			break;
		case 22:
			pi->starttime = strtoull(tok, NULL, 10);
			return 0;
		}
	}
	return -1;
}

static bool is_dead(const struct proc_info *pi)
{
	return pi->state == 'Z' || pi->state == 'X';
}

static void nap_ms(int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
	nanosleep(&ts, NULL);
}

bool pgid_ok(pid_t pgid)
{
	return pgid > 1 && pgid != getpid() && pgid != getpgrp() && pgid != getsid(0);
}

/* Calls fn for every process but init and the daemon itself. */
static void for_each_proc(void (*fn)(void *arg, pid_t pid), void *arg)
{
	DIR *d = opendir("/proc");
	if (!d)
		return;
	pid_t self = getpid();
	struct dirent *de;
	while ((de = readdir(d)) != NULL) {
		char *end;
		long v = strtol(de->d_name, &end, 10);
		if (*end || v <= 1 || v == self)
			continue;
		fn(arg, (pid_t)v);
	}
	closedir(d);
}

struct session_walk {
	pid_t sid;
	bool kill_them;
	int alive;
};

static void session_one(void *arg, pid_t pid)
{
	struct session_walk *w = arg;
	struct proc_info pi;
	if (proc_read(pid, &pi) != 0 || (pi.pgrp != w->sid && pi.session != w->sid) || is_dead(&pi))
		return;
	w->alive++;
	if (w->kill_them)
		kill(pid, SIGKILL);
}

int session_sweep(pid_t sid, bool kill_them)
{
	struct session_walk w = { sid, kill_them, 0 };
	for_each_proc(session_one, &w);
	return w.alive;
}

int group_kill(pid_t pgid)
{
	if (!pgid_ok(pgid))
		return 0;
	kill(-pgid, SIGKILL);
	return session_sweep(pgid, true);
}

/* The value of MIREN_SV_TAG in pid's environment (malloc'd), or NULL.
 * Reads the environment in chunks: the supervisor puts the tag first, but
 * a program may reorder its environment before it execs. */
static char *proc_tag(pid_t pid)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/environ", (int)pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return NULL;
	/* chunk holds the unfinished entry of the previous read, then more */
	char chunk[8192];
	size_t have = 0, total = 0;
	char *tag = NULL;
	while (!tag && total < ENVIRON_MAX) {
		ssize_t n = read(fd, chunk + have, sizeof(chunk) - 1 - have);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		total += (size_t)n;
		have += (size_t)n;
		chunk[have] = '\0';
		size_t start = 0;
		for (size_t i = 0; i < have && !tag; i++) {
			if (chunk[i] != '\0')
				continue;
			if (strncmp(chunk + start, TAG_VAR, strlen(TAG_VAR)) == 0)
				tag = xstrdup(chunk + start + strlen(TAG_VAR));
			start = i + 1;
		}
		/* keep the unfinished entry; one longer than the buffer is
		 * not a tag and is skipped */
		memmove(chunk, chunk + start, have - start);
		have -= start;
		if (have == sizeof(chunk) - 1)
			have = 0;
	}
	if (!tag && have > 0) {
		chunk[have] = '\0'; /* the last entry, unterminated */
		if (strncmp(chunk, TAG_VAR, strlen(TAG_VAR)) == 0)
			tag = xstrdup(chunk + strlen(TAG_VAR));
	}
	close(fd);
	return tag;
}

/* ---- cgroup v2 ------------------------------------------------------------- */

/* Undoes mountinfo's octal escapes (\040 for a space) in place. */
static void unescape_octal(char *s)
{
	char *o = s;
	for (char *p = s; *p; p++) {
		if (p[0] == '\\' && p[1] >= '0' && p[1] <= '3' && p[2] >= '0' && p[2] <= '7' &&
		    p[3] >= '0' && p[3] <= '7') {
			*o++ = (char)((p[1] - '0') * 64 + (p[2] - '0') * 8 + (p[3] - '0'));
			p += 3;
		} else {
			*o++ = *p;
		}
	}
	*o = '\0';
}

/* The mount point of the cgroup v2 hierarchy (malloc'd), or NULL. */
static char *cgroup2_mount(void)
{
	FILE *f = fopen("/proc/self/mountinfo", "re");
	if (!f)
		return NULL;
	char *line = NULL, *found = NULL;
	size_t cap = 0;
	while (!found && getline(&line, &cap, f) > 0) {
		/* id parent major:minor root mountpoint opts [optional...] - fstype src opts */
		char *sep = strstr(line, " - ");
		if (!sep || strncmp(sep + 3, "cgroup2 ", 8) != 0)
			continue;
		char *save = NULL, *tok = strtok_r(line, " ", &save);
		for (int i = 1; tok && i < 5; i++)
			tok = strtok_r(NULL, " ", &save);
		if (tok) {
			unescape_octal(tok);
			found = xstrdup(tok);
		}
	}
	free(line);
	fclose(f);
	return found;
}

char *contain_flat_id(const char *id)
{
	char *flat = xstrdup(id);
	for (char *p = flat; *p; p++)
		if (*p == '/')
			*p = '_';
	return flat;
}

static char *cg_dir(const struct sv_contain *c, const char *id)
{
	char *flat = contain_flat_id(id);
	char *dir = fs_join(c->cg_base, flat);
	free(flat);
	return dir;
}

static int write_text(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	ssize_t n = write(fd, text, strlen(text));
	int saved = errno;
	close(fd);
	errno = saved;
	return n == (ssize_t)strlen(text) ? 0 : -1;
}

/* Live members of cgroup dir; SIGKILLed (cgroup.kill) when sig is
 * SIGKILL, only counted when it is 0. */
static int cg_sweep(const char *dir, int sig)
{
	char *procs = fs_join(dir, "cgroup.procs");
	struct strbuf sb;
	strbuf_init(&sb, 1 << 20);
	int alive = 0;
	if (strbuf_read_file(&sb, procs) == 0) {
		for (char *p = sb.buf, *end; *p; p = end) {
			long pid = strtol(p, &end, 10);
			if (end == p)
				break;
			struct proc_info pi;
			if (pid > 1 && pid != getpid() && proc_read((pid_t)pid, &pi) == 0 &&
			    !is_dead(&pi))
				alive++;
		}
	}
	if (alive > 0 && sig == SIGKILL) {
		char *killf = fs_join(dir, "cgroup.kill");
		if (write_text(killf, "1") != 0) {
			/* A kernel before 5.14: no cgroup.kill; one by one. */
			for (char *p = sb.buf, *end; *p; p = end) {
				long pid = strtol(p, &end, 10);
				if (end == p)
					break;
				if (pid > 1 && pid != getpid())
					kill((pid_t)pid, SIGKILL);
			}
		}
		free(killf);
	}
	strbuf_release(&sb);
	free(procs);
	return alive;
}

struct sv_contain *contain_new(const char *run_dir)
{
	struct sv_contain *c = xcalloc(1, sizeof(*c));
	char hex[65];
	sha256_hex(run_dir, strlen(run_dir), hex);
	memcpy(c->hex, hex, 16);
	c->hex[16] = '\0';

	const char *off = getenv("MIREN_NO_CGROUPS");
	if (off && *off && strcmp(off, "0") != 0) {
		log_info("supervisor: MIREN_NO_CGROUPS is set; finding processes through /proc");
		return c;
	}
	char *mnt = cgroup2_mount();
	if (!mnt) {
		log_info("supervisor: no cgroup v2 hierarchy; finding processes through /proc");
		return c;
	}
	char *top = fs_join(mnt, "miren");
	char *base = fs_join(top, c->hex);
	char *probe = fs_join(base, "cgroup.procs");
	if ((mkdir(top, 0755) == 0 || errno == EEXIST) &&
	    (mkdir(base, 0755) == 0 || errno == EEXIST) && access(probe, W_OK) == 0) {
		c->cg_base = base;
		base = NULL;
	} else {
		log_info("supervisor: cannot use cgroups under %s (%s); finding processes through "
			 "/proc",
			 top, io_strerror(errno));
	}
	free(probe);
	free(base);
	free(top);
	free(mnt);
	return c;
}

void contain_free(struct sv_contain *c)
{
	if (!c)
		return;
	/* Only when empty: cgroups of addon servers that outlive the daemon
	 * stay, with their parent. */
	if (c->cg_base)
		rmdir(c->cg_base);
	free(c->cg_base);
	free(c);
}

bool contain_has_cgroups(const struct sv_contain *c)
{
	return c->cg_base != NULL;
}

char *contain_tag_env(const struct sv_contain *c, const char *id)
{
	return xasprintf(TAG_VAR "%s:%s", c->hex, id);
}

int contain_prepare(const struct sv_contain *c, const char *id)
{
	if (!c->cg_base)
		return -1;
	char *dir = cg_dir(c, id);
	char *procs = fs_join(dir, "cgroup.procs");
	int fd = -1;
	/* With its parents: someone may have removed the base since. */
	if (fs_mkdir_p(dir, 0755) != 0) {
		log_warn("supervisor: cannot create cgroup %s: %s; %s runs without one", dir,
			 io_strerror(errno), id);
		goto out;
	}
	/* Whatever a previous run left (a daemonized leftover that was not
	 * stopped) goes before the next run starts. */
	for (int i = 0; i < DRAIN_MS / 10 && cg_sweep(dir, SIGKILL) > 0; i++)
		nap_ms(10);
	fd = open(procs, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		log_warn("supervisor: cannot open %s: %s; %s runs without a cgroup", procs,
			 io_strerror(errno), id);
out:
	free(procs);
	free(dir);
	return fd;
}

/* ---- the fallback ---------------------------------------------------------- */

struct proc_row {
	pid_t pid;
	struct proc_info pi;
	bool member;
	char *tag; /* the matching tag's id part (prefix tables only), or NULL */
};

struct proc_table {
	struct proc_row *rows;
	size_t n, cap;
	const char *tag; /* "<hex>:<id>", or "<hex>:" as a prefix when prefix */
	bool prefix;
	pid_t sid; /* group/session that belongs (0: none) */
};

static void table_add(void *arg, pid_t pid)
{
	struct proc_table *t = arg;
	struct proc_row r = { .pid = pid };
	if (proc_read(pid, &r.pi) != 0 || is_dead(&r.pi))
		return;
	if (t->sid > 1 && (r.pi.pgrp == t->sid || r.pi.session == t->sid))
		r.member = true;
	if (!r.member && t->tag) {
		char *tag = proc_tag(pid);
		if (tag && t->prefix && strncmp(tag, t->tag, strlen(t->tag)) == 0) {
			r.member = true;
			r.tag = xstrdup(tag + strlen(t->tag));
		} else if (tag && !t->prefix) {
			r.member = strcmp(tag, t->tag) == 0;
		}
		free(tag);
	}
	if (t->n == t->cap) {
		t->cap = t->cap ? t->cap * 2 : 256;
		t->rows = xrealloc(t->rows, t->cap * sizeof(*t->rows));
	}
	t->rows[t->n++] = r;
}

/* Marks every descendant of a member as a member. */
static void table_close(struct proc_table *t)
{
	for (bool grew = true; grew;) {
		grew = false;
		for (size_t i = 0; i < t->n; i++) {
			if (t->rows[i].member)
				continue;
			for (size_t k = 0; k < t->n; k++) {
				if (t->rows[k].member && t->rows[k].pid == t->rows[i].pi.ppid) {
					t->rows[i].member = grew = true;
					break;
				}
			}
		}
	}
}

/* Is pid (which had starttime) gone, or a zombie? */
static bool gone(pid_t pid, unsigned long long starttime)
{
	struct proc_info pi;
	return proc_read(pid, &pi) != 0 || is_dead(&pi) || pi.starttime != starttime;
}

/* Counts the members, closed over descendants, and sends them sig unless
 * it is 0; frees t.  With wait_ms, waits up to that long for them to be
 * gone after a SIGKILL. */
static int table_sweep(struct proc_table *t, int sig, int wait_ms)
{
	table_close(t);
	int alive = 0;
	for (size_t i = 0; i < t->n; i++) {
		if (t->rows[i].member) {
			alive++;
			if (sig)
				kill(t->rows[i].pid, sig);
		}
		free(t->rows[i].tag);
	}
	for (size_t i = 0; sig == SIGKILL && i < t->n; i++)
		for (int waited = 0; t->rows[i].member && waited < wait_ms &&
				     !gone(t->rows[i].pid, t->rows[i].pi.starttime);
		     waited += 10)
			nap_ms(10);
	free(t->rows);
	return alive;
}

int contain_sweep(const struct sv_contain *c, const char *id, pid_t pgid, bool kill_them)
{
	int alive = 0;
	if (pgid_ok(pgid)) {
		if (kill_them)
			kill(-pgid, SIGKILL);
	} else {
		pgid = 0;
	}
	if (c->cg_base) {
		char *dir = cg_dir(c, id);
		alive += cg_sweep(dir, kill_them ? SIGKILL : 0);
		free(dir);
		/* Its own group and session as well (a run that could not
		 * join the cgroup). */
		if (pgid)
			alive += session_sweep(pgid, kill_them);
		return alive;
	}
	char *tag = xasprintf("%s:%s", c->hex, id);
	struct proc_table t = { .tag = tag, .sid = pgid };
	for_each_proc(table_add, &t);
	alive = table_sweep(&t, kill_them ? SIGKILL : 0, 0);
	free(tag);
	return alive;
}

void contain_signal(const struct sv_contain *c, const char *id, int sig, pid_t skip_pgrp)
{
	struct proc_table t = { 0 };
	char *tag = NULL;
	if (c->cg_base) {
		char *dir = cg_dir(c, id);
		char *procs = fs_join(dir, "cgroup.procs");
		struct strbuf sb;
		strbuf_init(&sb, 1 << 20);
		if (strbuf_read_file(&sb, procs) == 0) {
			for (char *p = sb.buf, *end; *p; p = end) {
				long pid = strtol(p, &end, 10);
				if (end == p)
					break;
				if (pid > 1 && pid != getpid())
					table_add(&t, (pid_t)pid);
			}
		}
		strbuf_release(&sb);
		free(procs);
		free(dir);
		for (size_t i = 0; i < t.n; i++)
			t.rows[i].member = true; /* no closure needed: all are here */
	} else {
		tag = xasprintf("%s:%s", c->hex, id);
		t.tag = tag;
		for_each_proc(table_add, &t);
		table_close(&t);
	}
	for (size_t i = 0; i < t.n; i++) {
		if (t.rows[i].member && (skip_pgrp <= 1 || t.rows[i].pi.pgrp != skip_pgrp))
			kill(t.rows[i].pid, sig);
		free(t.rows[i].tag);
	}
	free(t.rows);
	free(tag);
}

void contain_forget(const struct sv_contain *c, const char *id)
{
	if (!c->cg_base)
		return;
	char *dir = cg_dir(c, id);
	if (rmdir(dir) != 0 && errno != ENOENT)
		log_warn("supervisor: cannot remove cgroup %s: %s", dir, io_strerror(errno));
	free(dir);
}

int contain_sweep_unclaimed(const struct sv_contain *c,
			    bool (*claimed)(void *arg, const char *flat_id), void *arg)
{
	int killed = 0;
	/* Tagged processes of ids nobody claims (either mode: a previous
	 * daemon may have run without cgroups), with their descendants. */
	char *prefix = xasprintf("%s:", c->hex);
	struct proc_table t = { .tag = prefix, .prefix = true };
	for_each_proc(table_add, &t);
	for (size_t i = 0; i < t.n; i++) {
		char *flat = t.rows[i].tag ? contain_flat_id(t.rows[i].tag) : NULL;
		t.rows[i].member = flat && !claimed(arg, flat);
		if (t.rows[i].member)
			log_info("supervisor: killing leftover process %d of %s",
				 (int)t.rows[i].pid, t.rows[i].tag);
		free(flat);
	}
	killed += table_sweep(&t, SIGKILL, DRAIN_MS);
	free(prefix);

	if (!c->cg_base)
		return killed;
	DIR *d = opendir(c->cg_base);
	if (!d)
		return killed;
	struct dirent *de;
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.' || de->d_type != DT_DIR || claimed(arg, de->d_name))
			continue;
		char *dir = fs_join(c->cg_base, de->d_name);
		int n = cg_sweep(dir, SIGKILL);
		if (n > 0)
			log_info("supervisor: killed %d leftover processes of %s (cgroup %s)", n,
				 de->d_name, dir);
		killed += n;
		for (int i = 0; i < DRAIN_MS / 10 && cg_sweep(dir, 0) > 0; i++)
			nap_ms(10);
		if (rmdir(dir) != 0)
			log_warn("supervisor: cannot remove cgroup %s: %s", dir,
				 io_strerror(errno));
		free(dir);
	}
	closedir(d);
	return killed;
}
