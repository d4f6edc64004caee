/*
 * Installed PostgreSQL versions, and the processes a dead daemon left
 * working in a directory; see pg.h and pg_internal.h.
 */
#include "addon/postgresql/pg_internal.h"

#include "supervise/supervise.h"
#include "util/err.h"
#include "util/fault.h"
#include "util/fs.h"
#include "util/num.h"
#include "util/sha256.h"
#include "util/strbuf.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <libpq-fe.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

/* ---- installs ----------------------------------------------------------- */

static int cmp_install_desc(const void *a, const void *b)
{
	const struct pg_install *x = a, *y = b;
	return (y->major > x->major) - (y->major < x->major);
}

bool pgi_install_ok(const char *bindir)
{
	char path[300];
	snprintf(path, sizeof(path), "%s/postgres", bindir);
	if (access(path, X_OK) != 0)
		return false;
	snprintf(path, sizeof(path), "%s/initdb", bindir);
	return access(path, X_OK) == 0;
}

int pg_find_installs(struct pg_install *out, int max)
{
	/* MIREN_PG_ROOT replaces /usr/lib/postgresql, for tests of a host
	 * without PostgreSQL. */
	const char *root = getenv("MIREN_PG_ROOT");
	if (!root || !*root)
		root = PG_LIBDIR;
	DIR *d = opendir(root);
	if (!d || max <= 0 || !out) {
		if (d)
			closedir(d);
		return 0;
	}
	/* Zeroed for cppcheck, which does not see that found[n++] = pi sets
	 * each of found[0..n) before qsort and memcpy read them. */
	struct pg_install found[64] = { 0 };
	int n = 0;
	struct dirent *de;
	while ((de = readdir(d)) != NULL && n < (int)(sizeof(found) / sizeof(found[0]))) {
		long long v;
		if (!num_parse(de->d_name, 10, 9999, &v))
			continue;
		int major = (int)v;
		struct pg_install pi = { .major = major };
		snprintf(pi.bindir, sizeof(pi.bindir), "%s/%d/bin", root, major);
		if (pgi_install_ok(pi.bindir))
			found[n++] = pi;
	}
	closedir(d);
	qsort(found, (size_t)n, sizeof(found[0]), cmp_install_desc);
	if (n > max)
		n = max;
	memcpy(out, found, (size_t)n * sizeof(found[0]));
	return n;
}

/* ---- leftovers of a dead daemon ------------------------------------------ */

bool pg_process_runs(pid_t pid)
{
	char path[64], buf[512];
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	FILE *f = fopen(path, "re");
	if (!f)
		return false;
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	const char *p = strrchr(buf, ')');
	return p && p[1] == ' ' && p[2] != 'Z' && p[2] != 'X';
}

/* Whether the working directory of process pid is dir or below it. */
static bool works_in(pid_t pid, const char *dir)
{
	char link[64], cwd[4096];
	snprintf(link, sizeof(link), "/proc/%d/cwd", (int)pid);
	ssize_t n = readlink(link, cwd, sizeof(cwd) - 1);
	if (n <= 0)
		return false;
	cwd[n] = '\0';
	size_t len = strlen(dir);
	return !strncmp(cwd, dir, len) && (cwd[len] == '\0' || cwd[len] == '/');
}

int pg_stop_workers(const char *dir_in)
{
	/* /proc shows resolved paths: resolve the parent (dir may not exist). */
	char *copy = xstrdup(dir_in), *copy2 = xstrdup(dir_in);
	char *parent = realpath(dirname(copy), NULL);
	char *dir = parent ? xasprintf("%s/%s", parent, basename(copy2)) : xstrdup(dir_in);
	free(parent);
	free(copy);
	free(copy2);
	int found = 0;
	for (int round = 0; round < 100; round++) { /* up to ~5 s */
		DIR *d = opendir("/proc");
		if (!d)
			break;
		int alive = 0;
		struct dirent *de;
		while ((de = readdir(d)) != NULL) {
			pid_t pid = num_pid(de->d_name);
			if (pid <= 1 || pid == getpid() || !works_in(pid, dir))
				continue;
			if (!pg_process_runs(pid))
				continue; /* gone, or exited and waiting to be reaped */
			if (round == 0)
				found++;
			kill(pid, SIGKILL);
			alive++;
		}
		closedir(d);
		if (!alive)
			break;
		pgi_nap_ms(50);
	}
	free(dir);
	return found;
}
