/*
 * Finding the MariaDB install and ending stray processes; see mariadb.h.
 */
#include "addon/mysql/mariadb_internal.h"

#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "supervise/supervise.h"
#include "util/num.h"
#include "util/strbuf.h"

/* ---- install ------------------------------------------------------------ */

static bool executable(const char *path)
{
	return access(path, X_OK) == 0;
}

static pthread_mutex_t version_lock = PTHREAD_MUTEX_INITIALIZER;
static char version_cache[16];
static char version_of[256];

/* "mariadbd  Ver 10.11.19-MariaDB-0+deb12u1 for ..." -> "10.11". */
static int ask_version(const char *server, char out[16])
{
	char *argv[] = { (char *)server, "--version", NULL };
	char *text = NULL;
	int st = sv_run(argv, NULL, "/", (uid_t)-1, (gid_t)-1, 30000, &text);
	int rc = -1;
	const char *v = text ? strstr(text, "Ver ") : NULL;
	/* "mariadbd  Ver 10.11.6-MariaDB-0+deb12u1 for ..." */
	unsigned long long major = 0, minor = 0;
	const char *dot = NULL;
	if (st == 0 && v && num_parse_u(v + 4, 10, 9999, &major, &dot) && major > 0 &&
	    *dot == '.' && num_parse_u(dot + 1, 10, 9999, &minor, &dot)) {
		snprintf(out, 16, "%llu.%llu", major, minor);
		rc = 0;
	}
	free(text);
	return rc;
}

enum miren_err mariadb_find(struct mariadb_install *out, struct miren_error *err)
{
	const char *root = getenv("MIREN_MARIADB_ROOT");
	if (!root || !*root)
		root = "/usr";
	memset(out, 0, sizeof(*out));
	snprintf(out->server, sizeof(out->server), "%s/sbin/mariadbd", root);
	snprintf(out->install_db, sizeof(out->install_db), "%s/bin/mariadb-install-db", root);
	snprintf(out->backup, sizeof(out->backup), "%s/bin/mariadb-backup", root);
	snprintf(out->client, sizeof(out->client), "%s/bin/mariadb", root);
	snprintf(out->dump, sizeof(out->dump), "%s/bin/mariadb-dump", root);
	const char *missing = !executable(out->server)       ? out->server
			      : !executable(out->install_db) ? out->install_db
			      : !executable(out->backup)     ? out->backup
			      : !executable(out->client)     ? out->client
			      : !executable(out->dump)       ? out->dump
							     : NULL;
	if (missing) {
		miren_error_set(err, MIREN_EUNAVAIL, "MariaDB is not installed: %s not found",
				missing);
		miren_error_hint(err, "install the Debian packages mariadb-server, mariadb-client "
				      "and mariadb-backup (scripts/bootstrap does)");
		return MIREN_EUNAVAIL;
	}
	enum miren_err rc = 0;
	pthread_mutex_lock(&version_lock);
	if (strcmp(version_of, out->server) != 0) {
		if (ask_version(out->server, version_cache) == 0)
			snprintf(version_of, sizeof(version_of), "%s", out->server);
		else
			version_cache[0] = '\0';
	}
	if (version_cache[0])
		memcpy(out->version, version_cache, sizeof(out->version));
	else
		rc = miren_error_set(err, MIREN_EUNAVAIL, "%s --version did not say its version",
				     out->server);
	pthread_mutex_unlock(&version_lock);
	return rc;
}

/* ---- processes ---------------------------------------------------------- */

/* Whether process pid's command line has an argument "--datadir=DIR..."
 * naming dir or a path below it. */
static bool works_on(pid_t pid, const char *dir)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/cmdline", (int)pid);
	struct strbuf cl = STRBUF_INIT;
	bool hit = false;
	size_t len = strlen(dir);
	if (strbuf_read_file(&cl, path) == 0) {
		for (size_t i = 0; i < cl.len && !hit; i += strlen(cl.buf + i) + 1) {
			const char *a = cl.buf + i;
			if (strncmp(a, "--datadir=", 10) != 0)
				continue;
			a += 10;
			hit = !strncmp(a, dir, len) && (a[len] == '\0' || a[len] == '/');
		}
	}
	strbuf_release(&cl);
	return hit;
}

int mariadb_stop_workers(const char *dir)
{
	pid_t pids[64];
	int n = 0;
	DIR *d = opendir("/proc");
	struct dirent *de;
	while (d && n < 64 && (de = readdir(d)) != NULL) {
		pid_t pid = num_pid(de->d_name);
		if (pid > 1 && pid != getpid() && works_on(pid, dir))
			pids[n++] = pid;
	}
	if (d)
		closedir(d);
	for (int i = 0; i < n; i++)
		kill(pids[i], SIGKILL);
	for (int t = 0; t < 500; t++) {
		bool any = false;
		for (int i = 0; i < n && !any; i++)
			any = works_on(pids[i], dir);
		if (!any)
			break;
		mdbi_nap_ms(10);
	}
	return n;
}
