/*
 * Scratch servers of the miren-mysql provider (the framework's side is
 * lib/addon/scratch.c): mariadbd on a restored disk (mariadb-backup
 * --prepare already ran) or on a fresh clone of the template, with
 * networking off (its socket in its private run directory only).  Its
 * root password is another server's (restored) or the template's, so an
 * init file sets a fresh one, known only to this process, before the
 * server takes any connection; the file is removed once it answers.  The
 * client tools (mariadb, mariadb-dump, mariadb-check) run as the daemon
 * with that password in a 0600 option file of the daemon's, never on a
 * command line.
 */
#include "addon/scratch.h"
#include "addon/mysql/mariadb_internal.h"
#include "addon/mysql/provider.h"
#include "addon/server.h"
#include "supervise/supervise.h"
#include "util/fs.h"
#include "util/io.h"
#include "util/secret.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define SCRATCH_READY_MS 120000
#define SCRATCH_DB "miren_scratch"
#define INIT_FILE "miren-scratch-init.sql"
#define CLIENT_FILE "miren-scratch-client.cnf"

struct mys {
	struct mariadb_install in;
	char *dir;
	char *cnf; /* the client option file (the daemon's, 0600) */
};

json_t *myp_tenant_facts(struct addon_ctx *ctx, struct addon_inst *inst)
{
	(void)ctx;
	const struct myp_tenant *t = inst->state;
	return json_pack("{s:s, s:s}", "database", t->db, "user", t->user);
}

static void wipe(char *s)
{
	if (s) {
		explicit_bzero(s, strlen(s));
		free(s);
	}
}

enum miren_err myp_scratch_start(struct addon_ctx *ctx, const json_t *header, const json_t *opts,
				 const char *dir, struct addon_scratch *out,
				 struct miren_error *err)
{
	out->engine = NULL;
	out->checker = "mariadb-check";
	struct mys *m = xcalloc(1, sizeof(*m));
	m->dir = xstrdup(dir);
	char *tdir = NULL, *pw = secret_password(), *init = fs_join(dir, INIT_FILE);
	char *data = fs_join(dir, "data"), *sock = mariadb_socket_path(dir);
	char *sql = NULL, *cnf_text = NULL;
	char **base = NULL, **argv = NULL;
	size_t n = 0;
	enum miren_err rc = 0;
	if (opts && json_object_get(opts, "recovery_target_time")) {
		rc = miren_error_set(err, MIREN_EINVAL,
				     "point-in-time recovery is not supported by addon '%s'",
				     MYSQL_ADDON);
		goto out;
	}
	rc = mariadb_find(&m->in, err);
	if (rc)
		goto out;
	if (header) {
		char *system = fs_join(data, "mysql");
		if (!fs_is_dir(system))
			rc = miren_error_set(err, MIREN_EINVAL,
					     "the backup holds no MariaDB data directory");
		free(system);
	} else {
		rc = myp_template_ready(ctx, &m->in, &tdir, err);
		if (!rc)
			rc = mariadb_clone(tdir, dir, ctx->uid, ctx->gid, err);
	}
	if (!rc)
		rc = mariadb_run_dir_ensure(dir, ctx->uid, ctx->gid, err);
	if (rc)
		goto out;
	sql = xasprintf("ALTER USER root@localhost IDENTIFIED BY '%s';\n", pw);
	rc = mdbi_write_owned(init, sql, 0600, ctx->uid, ctx->gid, err);
	m->cnf = fs_join(dir, CLIENT_FILE);
	cnf_text = xasprintf("[client]\nuser=root\npassword=%s\nsocket=%s\n", pw, sock);
	if (!rc)
		rc = mdbi_write_owned(m->cnf, cnf_text, 0600, (uid_t)-1, (gid_t)-1, err);
	if (rc)
		goto out;
	/* The server's usual command line (its address and port are not
	 * used: networking is off), plus the init file. */
	base = mariadb_server_argv(&m->in, dir, "127.0.0.1", 3306);
	while (base && base[n])
		n++;
	argv = xcalloc(n + 3, sizeof(*argv));
	for (size_t i = 0; i < n; i++)
		argv[i] = base[i];
	argv[n] = xstrdup("--skip-networking");
	argv[n + 1] = xasprintf("--init-file=%s", init);
	rc = scratch_spawn(ctx, dir, argv, SIGTERM, err);
	if (rc)
		goto out;
	int64_t deadline = io_mono_ms() + SCRATCH_READY_MS;
	for (;;) {
		rc = mariadb_wait_ready(dir, pw, 1000, ctx->stopping, err);
		if (!rc || io_mono_ms() >= deadline || addon_stopping(ctx))
			break;
		if (scratch_exited(ctx, dir)) {
			rc = miren_error_set(err, MIREN_EINVAL,
					     "the MariaDB scratch server does not start");
			break;
		}
	}
	if (rc) {
		char *tail = scratch_log_tail(ctx, dir, 400);
		char line[420];
		mdbi_output_tail(line, sizeof(line), tail, 400);
		if (*line)
			miren_error_detail(err, "%s", line);
		free(tail);
		scratch_kill(ctx, dir);
	}
out:
	unlink(init);
	if (argv) {
		free(argv[n]);
		free(argv[n + 1]);
		free(argv);
	}
	mariadb_argv_free(base);
	wipe(sql);
	wipe(cnf_text);
	wipe(pw);
	free(init);
	free(data);
	free(sock);
	free(tdir);
	if (rc) {
		if (m->cnf)
			unlink(m->cnf);
		free(m->cnf);
		free(m->dir);
		free(m);
	} else {
		out->engine = m;
	}
	return rc;
}

/*
 * Runs a client tool as the daemon with the option file, the
 * NULL-terminated options, stdin in_fd and stdout out_fd (-1: none).
 * *said gets what it said (caller frees).  Returns its exit status.
 */
static int run_tool(struct mys *m, const char *tool, const char *const *extra, int in_fd,
		    int out_fd, char **said)
{
	char *argv[24] = { 0 };
	size_t n = 0;
	argv[n++] = xstrdup(tool);
	argv[n++] = xasprintf("--defaults-file=%s", m->cnf);
	for (const char *const *e = extra; *e && n < sizeof(argv) / sizeof(argv[0]) - 1; e++)
		argv[n++] = xstrdup(*e);
	char *env[] = { "PATH=/usr/bin:/bin:/usr/sbin", "LC_ALL=C", "TZ=UTC", NULL };
	int st = sv_run_fds(argv, env, "/", (uid_t)-1, (gid_t)-1, 0, in_fd, out_fd, said);
	for (size_t i = 0; i < n; i++)
		free(argv[i]);
	return st;
}

static enum miren_err tool_error(enum miren_err code, const char *what, int st, const char *said,
				 struct miren_error *err)
{
	char detail[600];
	mdbi_output_tail(detail, sizeof(detail), said, 560);
	miren_error_set(err, code, "%s: %s", what, detail);
	miren_error_detail(err, "exit status %d", st);
	return code;
}

enum miren_err myp_scratch_load(struct addon_ctx *ctx, struct addon_scratch *s, int fd,
				struct miren_error *err)
{
	(void)ctx;
	struct mys *m = s->engine;
	static const char *const create[] = { "--batch", "-e",
					      "CREATE DATABASE IF NOT EXISTS " SCRATCH_DB, NULL };
	char *said = NULL;
	int st = run_tool(m, m->in.client, create, -1, -1, &said);
	enum miren_err rc = 0;
	if (st != 0)
		rc = tool_error(MIREN_EIO, "cannot create the scratch database", st, said, err);
	free(said);
	said = NULL;
	if (rc)
		return rc;
	static const char *const load[] = { "--batch", SCRATCH_DB, NULL };
	st = run_tool(m, m->in.client, load, fd, -1, &said);
	if (st != 0)
		rc = tool_error(MIREN_EINVAL, "the dump does not load", st, said, err);
	free(said);
	return rc;
}

enum miren_err myp_scratch_dump(struct addon_ctx *ctx, struct addon_scratch *s,
				const json_t *tenant, int fd, struct miren_error *err)
{
	(void)ctx;
	struct mys *m = s->engine;
	const char *db = tenant ? addon_jstr(tenant, "database") : SCRATCH_DB;
	if (!db || (tenant && mdbi_check_name(db, "database", err)))
		return db ? MIREN_EINVAL
			  : miren_error_set(err, MIREN_EINVAL,
					    "the backup names no tenant database to read");
	/* As the dump hook makes it: the load hook runs it in any tenant's
	 * database. */
	const char *const extra[] = {
		"--single-transaction", "--routines", "--triggers", "--events",
		"--no-tablespaces",     db,           NULL
	};
	char *said = NULL;
	int st = run_tool(m, m->in.dump, extra, -1, fd, &said);
	enum miren_err rc = 0;
	if (st != 0) {
		char *what = xasprintf("cannot read database %s out of the backup", db);
		rc = tool_error(said && strstr(said, "Unknown database") ? MIREN_ENOTFOUND
									 : MIREN_EIO,
				what, st, said, err);
		free(what);
	}
	free(said);
	return rc;
}

/* mariadb-check sits beside the client. */
static char *check_tool(const struct mys *m)
{
	char *dir = xstrdup(m->in.client);
	char *slash = strrchr(dir, '/');
	if (slash)
		*slash = '\0';
	char *tool = xasprintf("%s/mariadb-check", slash ? dir : "/usr/bin");
	free(dir);
	return tool;
}

enum miren_err myp_scratch_check(struct addon_ctx *ctx, struct addon_scratch *s,
				 struct miren_error *err)
{
	(void)ctx;
	struct mys *m = s->engine;
	static const char *const extra[] = { "--all-databases", "--check", "--extended", NULL };
	char *tool = check_tool(m);
	char *said = NULL;
	int st = run_tool(m, tool, extra, -1, -1, &said);
	enum miren_err rc = 0;
	/* It prints "db.table  OK" per table, and a line starting "error" (or
	 * "Corrupt") under a damaged one. */
	const char *bad = NULL;
	for (const char *p = said; p && *p; p += strcspn(p, "\n"), p += *p == '\n') {
		if (!strncmp(p, "error", 5) || strstr(p, "Corrupt") == p) {
			bad = p;
			break;
		}
	}
	if (st != 0 || bad) {
		if (!bad && said && strstr(said, "Can't connect")) {
			rc = tool_error(MIREN_EUNAVAIL,
					"cannot run mariadb-check on the scratch server", st, said,
					err);
		} else {
			/* The table is on the line before the complaint. */
			const char *table = NULL;
			for (const char *p = said; bad && p && p < bad;
			     p += strcspn(p, "\n"), p += *p == '\n')
				table = p;
			char head[300];
			snprintf(head, sizeof(head), "%.*s%s%.*s",
				 table ? (int)strcspn(table, "\n") : 0, table ? table : "",
				 table ? ": " : "", bad ? (int)strcspn(bad, "\n") : 0,
				 bad ? bad : "");
			rc = miren_error_set(err, MIREN_EINVAL, "the data is damaged: %s",
					     *head ? head : "mariadb-check failed");
			char tail[500];
			mdbi_output_tail(tail, sizeof(tail), said, 460);
			miren_error_detail(err, "mariadb-check exited with %d: %s", st, tail);
		}
	}
	free(said);
	free(tool);
	return rc;
}

void myp_scratch_stop(struct addon_ctx *ctx, struct addon_scratch *s)
{
	struct mys *m = s->engine;
	if (!m)
		return;
	scratch_kill(ctx, m->dir);
	myp_disk_server(ctx, m->dir, true);
	if (m->cnf)
		unlink(m->cnf);
	char *run = mariadb_run_dir(m->dir);
	fs_remove_tree(run);
	free(run);
	free(m->cnf);
	free(m->dir);
	free(m);
	s->engine = NULL;
}
