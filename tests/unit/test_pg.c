/*
 * Integration tests of lib/addon/pg against real PostgreSQL: a template
 * made by pg_template_ensure in a temporary directory, cloned into two
 * disks served on two loopback addresses; readiness, superuser password
 * rotation, tenant creation/isolation/reset/drop checked over libpq; and
 * pg_ident_for_app and the argument checks as plain unit tests.
 *
 * As root, files are given to and servers run as the user "miren"; as an
 * ordinary user everything runs as that user.  The servers are started here
 * with fork/exec (the provider uses the supervisor) and stopped with SIGINT
 * in the group teardown, which also removes the temporary directory, even
 * after a failed assertion.  Timings of clone, start->ready, rotation and
 * tenant creation are printed, not asserted.  Works under $TMPDIR (default
 * /tmp); PG_TEST_KEEP=1 keeps the directory (servers are stopped anyway).
 * Skips when PostgreSQL is not installed.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <libpq-fe.h>
#include <netinet/in.h>
#include <pthread.h>
#include <pwd.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "addon/postgresql/pg.h"
#include "util/compiler.h"
#include "util/err.h"
#include "util/fs.h"
#include "util/names.h"
#include "util/strbuf.h"

/* ---- shared state ------------------------------------------------------- */

struct server {
	char disk[512];
	char addr[32];
	char log[560];
	pid_t pid;
	char su_pw[64];
	bool ready;
};

static struct {
	char tmp[256];
	bool have_pg;
	struct pg_install pg;
	uid_t uid;
	gid_t gid;
	int port;
	char tpl[300];
	char tpl_pw[64];
	struct server s[2];
	bool tenants_made;
	PGconn *conns[16]; /* open test connections, closed by conn_teardown */
} G;

static const char *const PW_A = "pw-A-first-9f2c1e";
static const char *const PW_A2 = "pw-A-second-77b0d4";
static const char *const PW_B = "pw-B-0c3a55e1";
static const char *const PW_C = "pw-C-5d1be0aa";

/* ---- helpers ------------------------------------------------------------ */

static double now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1000.0 + (double)ts.tv_nsec / 1e6;
}

static bool port_free(const char *addr, int port)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return false;
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	inet_pton(AF_INET, addr, &sa.sin_addr);
	bool ok = bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
	close(fd);
	return ok;
}

static int pick_port(void)
{
	if (port_free("127.77.250.1", 5432) && port_free("127.77.250.2", 5432))
		return 5432;
	srand((unsigned)getpid() ^ (unsigned)time(NULL));
	for (int i = 0; i < 200; i++) {
		int p = 20000 + rand() % 40000;
		if (port_free("127.77.250.1", p) && port_free("127.77.250.2", p))
			return p;
	}
	return -1;
}

/* Starts `postgres -D DISK/pgdata` as the service user, output to s->log. */
static pid_t start_server(struct server *s)
{
	char **argv = pg_server_argv(&G.pg, s->disk);
	pid_t parent = getpid();
	pid_t pid = fork();
	if (pid == 0) {
		setpgid(0, 0);
		int in = open("/dev/null", O_RDONLY);
		int out = open(s->log, O_WRONLY | O_CREAT | O_APPEND, 0644);
		if (in < 0 || out < 0)
			_exit(126);
		dup2(in, 0);
		dup2(out, 1);
		dup2(out, 2);
		if (G.uid != (uid_t)-1) {
			if (setgroups(0, NULL) != 0 || setgid(G.gid) != 0 || setuid(G.uid) != 0)
				_exit(125);
		}
		/* Set after the uid change, which clears it. */
		prctl(PR_SET_PDEATHSIG, SIGINT);
		if (getppid() != parent)
			_exit(124);
		char *env[] = { "PATH=/usr/bin:/bin", "LC_ALL=C", NULL };
		execve(argv[0], argv, env);
		_exit(127);
	}
	pg_argv_free(argv);
	return pid;
}

static void stop_server(struct server *s)
{
	if (s->pid <= 0)
		return;
	kill(s->pid, SIGINT);
	int status;
	for (int i = 0; i < 1000; i++) {
		pid_t r = waitpid(s->pid, &status, WNOHANG);
		if (r == s->pid || (r < 0 && errno != EINTR)) {
			s->pid = 0;
			return;
		}
		usleep(10000);
	}
	kill(-s->pid, SIGKILL);
	kill(s->pid, SIGKILL);
	waitpid(s->pid, &status, 0);
	s->pid = 0;
}

static void dump_log(const struct server *s)
{
	struct strbuf sb = STRBUF_INIT;
	if (strbuf_read_file(&sb, s->log) == 0)
		fprintf(stderr, "---- %s ----\n%s----\n", s->log, sb.buf);
	strbuf_release(&sb);
}

/* Remembers c so that a failed assertion does not leak it. */
static PGconn *track(PGconn *c)
{
	for (size_t i = 0; i < sizeof(G.conns) / sizeof(G.conns[0]); i++) {
		if (!G.conns[i]) {
			G.conns[i] = c;
			return c;
		}
	}
	fail_msg("too many open test connections");
	return c;
}

/* PQfinish for tracked connections. */
static void done(PGconn *c)
{
	for (size_t i = 0; i < sizeof(G.conns) / sizeof(G.conns[0]); i++)
		if (G.conns[i] == c)
			G.conns[i] = NULL;
	PQfinish(c);
}

static int conn_teardown(void **state MIREN_UNUSED)
{
	for (size_t i = 0; i < sizeof(G.conns) / sizeof(G.conns[0]); i++) {
		PQfinish(G.conns[i]);
		G.conns[i] = NULL;
	}
	return 0;
}

static PGconn *tcp_connect(const char *addr, const char *user, const char *db, const char *pw)
{
	char port[16];
	snprintf(port, sizeof(port), "%d", G.port);
	const char *k[] = { "hostaddr",        "port",    "user",       "dbname", "password",
			    "connect_timeout", "sslmode", "gssencmode", NULL };
	const char *v[] = { addr, port, user, db, pw, "5", "disable", "disable", NULL };
	return track(PQconnectdbParams(k, v, 0));
}

static PGconn *sock_connect(const struct server *s, const char *user, const char *db,
			    const char *pw)
{
	char port[16];
	snprintf(port, sizeof(port), "%d", G.port);
	char *host = pg_socket_dir(s->disk);
	const char *k[] = { "host", "port", "user", "dbname", "password", "connect_timeout", NULL };
	const char *v[] = { host, port, user, db, pw, "5", NULL };
	PGconn *c = PQconnectdbParams(k, v, 0);
	free(host);
	return track(c);
}

static bool tcp_can_connect(const char *addr, const char *user, const char *db, const char *pw)
{
	PGconn *c = tcp_connect(addr, user, db, pw);
	bool ok = PQstatus(c) == CONNECTION_OK;
	done(c);
	return ok;
}

static bool sock_can_connect(const struct server *s, const char *user, const char *db,
			     const char *pw)
{
	PGconn *c = sock_connect(s, user, db, pw);
	bool ok = PQstatus(c) == CONNECTION_OK;
	done(c);
	return ok;
}

static void quiet(void *arg MIREN_UNUSED, const char *msg MIREN_UNUSED)
{
}

/* Runs sql; returns "" on success or the SQLSTATE (static buffer). */
static const char *sql_state(PGconn *c, const char *sql)
{
	static char state[8];
	PQsetNoticeProcessor(c, quiet, NULL);
	PGresult *r = PQexec(c, sql);
	ExecStatusType st = PQresultStatus(r);
	if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK)
		state[0] = '\0';
	else {
		const char *s = PQresultErrorField(r, PG_DIAG_SQLSTATE);
		snprintf(state, sizeof(state), "%s", s ? s : "?????");
	}
	PQclear(r);
	return state;
}

/* The single value of a one-row, one-column query (caller frees) or NULL. */
static char *sql_value(PGconn *c, const char *sql)
{
	PGresult *r = PQexec(c, sql);
	char *v = NULL;
	if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1 && PQnfields(r) == 1)
		v = strdup(PQgetvalue(r, 0, 0));
	PQclear(r);
	return v;
}

static void assert_value(PGconn *c, const char *sql, const char *want)
{
	char *v = sql_value(c, sql);
	char got[256];
	snprintf(got, sizeof(got), "%s", v ? v : "(error)");
	free(v);
	if (strcmp(got, want) != 0)
		fprintf(stderr, "query: %s\n  got: %s\n want: %s\n", sql, got, want);
	assert_string_equal(got, want);
}

#define REQUIRE_SERVERS()                                 \
	do {                                              \
		if (!G.have_pg)                           \
			skip();                           \
		assert_true(G.s[0].ready &&G.s[1].ready); \
	} while (0)

/* ---- group setup/teardown ----------------------------------------------- */

static int group_setup(void **state MIREN_UNUSED)
{
	memset(&G, 0, sizeof(G));
	G.uid = (uid_t)-1;
	G.gid = (gid_t)-1;
	G.have_pg = pg_find_installs(&G.pg, 1) == 1;
	if (geteuid() == 0) {
		struct passwd *pw = getpwnam("miren");
		if (!pw) {
			fprintf(stderr, "test_pg: running as root needs the user miren\n");
			G.have_pg = false;
		} else {
			G.uid = pw->pw_uid;
			G.gid = pw->pw_gid;
		}
	}
	const char *tmpdir = getenv("TMPDIR");
	snprintf(G.tmp, sizeof(G.tmp), "%s/miren-test-pg-XXXXXX",
		 tmpdir && *tmpdir ? tmpdir : "/tmp");
	if (!mkdtemp(G.tmp))
		return -1;
	chmod(G.tmp, 0755); /* the service user must traverse it */
	snprintf(G.tpl, sizeof(G.tpl), "%s/templates/pg%d", G.tmp, G.pg.major);
	snprintf(G.tpl_pw, sizeof(G.tpl_pw), "tpl-%d-%ld", (int)getpid(), (long)time(NULL));
	for (int i = 0; i < 2; i++) {
		struct server *s = &G.s[i];
		snprintf(s->disk, sizeof(s->disk), "%s/disks/d%d", G.tmp, i);
		snprintf(s->log, sizeof(s->log), "%s/server%d.log", G.tmp, i);
		snprintf(s->addr, sizeof(s->addr), "127.77.250.%d", i + 1);
		snprintf(s->su_pw, sizeof(s->su_pw), "su-%d-%08x", i, (unsigned)rand());
	}
	return 0;
}

static int group_teardown(void **state MIREN_UNUSED)
{
	for (int i = 0; i < 2; i++)
		stop_server(&G.s[i]);
	if (G.tmp[0] && getenv("PG_TEST_KEEP") == NULL)
		fs_remove_tree(G.tmp);
	return 0;
}

/* ---- pure tests --------------------------------------------------------- */

static void expect_ident(const char *app, const char *want)
{
	char out[64];
	struct miren_error err = { 0 };
	int rc = pg_ident_for_app(app, out, &err);
	if (rc)
		fprintf(stderr, "pg_ident_for_app(%s): %s\n", app, err.message);
	assert_int_equal(rc, 0);
	assert_string_equal(out, want);
}

static void test_ident(void **state MIREN_UNUSED)
{
	expect_ident("hello", "hello");
	expect_ident("hello-world-2", "hello_world_2");
	expect_ident("a", "a");
	expect_ident("pg", "pg");
	expect_ident("pgfoo", "pgfoo");
	expect_ident("postgresql", "postgresql");
	expect_ident("postgres", "u_postgres_");
	expect_ident("template0", "u_template0_");
	expect_ident("template1", "u_template1_");
	expect_ident("public", "u_public_");
	expect_ident("pg-foo", "u_pg_foo_");
	/* Role names PostgreSQL refuses or reads as the session's role. */
	expect_ident("none", "u_none_");
	expect_ident("current-user", "u_current_user_");
	expect_ident("current-role", "u_current_role_");
	expect_ident("session-user", "u_session_user_");
	expect_ident("miren-spare", "u_miren_spare_");
	expect_ident("miren-spare-0", "u_miren_spare_0_");
	/* Near misses stay plain. */
	expect_ident("nonee", "nonee");
	expect_ident("current-users", "current_users");
	expect_ident("user", "user");
	expect_ident("table", "table");

	char name[80], want[80], out[64];
	memset(name, 'a', 63);
	name[63] = '\0';
	expect_ident(name, name); /* 63 bytes: the limit */

	/* "pg-" + 57 = 60 chars -> 63 bytes: fine. */
	memset(name, 'x', 60);
	memcpy(name, "pg-", 3);
	name[60] = '\0';
	snprintf(want, sizeof(want), "u_pg_%.57s_", name + 3);
	expect_ident(name, want);

	/* 61..63 chars starting with pg- would pass 63 bytes as u_..._: the
	 * hashed form, deterministic, distinct, and apart from every u_..._. */
	char prev[64] = "";
	for (int len = 61; len <= 63; len++) {
		memset(name, 'y', (size_t)len);
		memcpy(name, "pg-", 3);
		name[len] = '\0';
		struct miren_error err = { 0 };
		assert_int_equal(pg_ident_for_app(name, out, &err), 0);
		assert_true(strlen(out) <= 63);
		assert_int_equal(strncmp(out, "u_pg_yyy", 8), 0);
		assert_string_equal(out + strlen(out) - 2, "__");
		assert_string_not_equal(out, prev);
		char again[64];
		assert_int_equal(pg_ident_for_app(name, again, &err), 0);
		assert_string_equal(out, again);
		snprintf(prev, sizeof(prev), "%s", out);
	}
	/* Two names that differ only after the kept prefix. */
	char other[64];
	name[62] = 'z';
	assert_int_equal(pg_ident_for_app(name, other, NULL), 0);
	assert_string_not_equal(other, prev);
	memset(name, 'q', 64);
	name[64] = '\0';
	{
		struct miren_error err = { 0 };
		assert_int_equal(pg_ident_for_app(name, out, &err), MIREN_EINVAL);
		assert_non_null(strstr(err.message, "too long"));
	}

	const char *bad[] = { "", "Hello", "a_b", "1abc", "abc-", "-abc", "a b", "a.b" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct miren_error err = { 0 };
		assert_int_equal(pg_ident_for_app(bad[i], out, &err), MIREN_EINVAL);
		assert_true(err.message[0] != '\0');
	}
	struct miren_error err = { 0 };
	assert_int_equal(pg_ident_for_app(NULL, out, &err), MIREN_EINVAL);
}

static void test_argv_and_installs(void **state MIREN_UNUSED)
{
	struct pg_install pi = { .major = 15 };
	snprintf(pi.bindir, sizeof(pi.bindir), "/usr/lib/postgresql/15/bin");
	char **argv = pg_server_argv(&pi, "/srv/disks/x");
	assert_string_equal(argv[0], "/usr/lib/postgresql/15/bin/postgres");
	assert_string_equal(argv[1], "-D");
	assert_string_equal(argv[2], "/srv/disks/x/pgdata");
	assert_null(argv[3]);
	pg_argv_free(argv);
	pg_argv_free(NULL);

	if (!G.have_pg)
		skip();
	struct pg_install all[8];
	int n = pg_find_installs(all, 8);
	assert_true(n >= 1);
	for (int i = 1; i < n; i++)
		assert_true(all[i - 1].major > all[i].major);
	assert_int_equal(pg_find_installs(all, 0), 0);
}

static void test_bad_arguments(void **state MIREN_UNUSED)
{
	struct miren_error err = { 0 };
	char disk[600];
	snprintf(disk, sizeof(disk), "%s/disks/bad", G.tmp);

	assert_int_equal(pg_clone("/nonexistent", disk, "localhost", 5432, G.uid, G.gid, &err),
			 MIREN_EINVAL);
	assert_int_equal(pg_clone("/nonexistent", disk, "127.0.0.1", 0, G.uid, G.gid, &err),
			 MIREN_EINVAL);
	assert_int_equal(pg_clone("/nonexistent", "rel/disk", "127.0.0.1", 5432, G.uid, G.gid,
				  &err),
			 MIREN_EINVAL);
	/* A deep disk path is fine: the socket lives in a short directory. */
	char longdisk[200];
	memset(longdisk, 'z', sizeof(longdisk) - 1);
	longdisk[0] = '/';
	longdisk[sizeof(longdisk) - 1] = '\0';
	char *sockdir = pg_socket_dir(longdisk);
	assert_true(strlen(sockdir) + strlen("/.s.PGSQL.65535") < 108);
	free(sockdir);
	assert_int_equal(pg_clone("/nonexistent", disk, "127.0.0.1", 5432, G.uid, G.gid, &err),
			 MIREN_ENOTFOUND);
	assert_false(fs_exists(disk));

	/* Reserved tenant names never reach the server. */
	assert_int_equal(pg_tenant_create(disk, 5432, "x", "postgres", "db", "pw", &err),
			 MIREN_EINVAL);
	assert_int_equal(pg_tenant_create(disk, 5432, "x", "pg_monitor", "db", "pw", &err),
			 MIREN_EINVAL);
	assert_int_equal(pg_tenant_create(disk, 5432, "x", "r", "template1", "pw", &err),
			 MIREN_EINVAL);
	assert_int_equal(pg_tenant_create(disk, 5432, "x", "r", "db", "", &err), MIREN_EINVAL);
	assert_int_equal(pg_tenant_drop(disk, 5432, "x", "postgres", "db", &err), MIREN_EINVAL);
	assert_int_equal(pg_tenant_drop(disk, 5432, "x", "r", "postgres", &err), MIREN_EINVAL);

	/* Nothing listens: unavailable after about the timeout. */
	double t0 = now_ms();
	assert_int_equal(pg_wait_ready(disk, 5432, "x", 50, &err), MIREN_EUNAVAIL);
	assert_true(now_ms() - t0 < 2000);
	assert_non_null(strstr(err.message, "not ready"));

	/* Missing binaries: a hint naming the package. */
	struct pg_install none = { .major = 15 };
	snprintf(none.bindir, sizeof(none.bindir), "/nonexistent/bin");
	char tpl[600];
	snprintf(tpl, sizeof(tpl), "%s/templates/none", G.tmp);
	assert_int_equal(pg_template_ensure(&none, tpl, "pw", G.uid, G.gid, &err), MIREN_EUNAVAIL);
	assert_non_null(strstr(err.hint, "postgresql-15"));
	assert_false(fs_exists(tpl));

	/* As root, PostgreSQL needs a service user. */
	if (geteuid() == 0 && G.have_pg) {
		assert_int_equal(pg_template_ensure(&G.pg, tpl, "pw", (uid_t)-1, (gid_t)-1, &err),
				 MIREN_EINVAL);
		assert_non_null(strstr(err.message, "root"));
		assert_false(fs_exists(tpl));
	}
	/* A bad template password. */
	assert_int_equal(pg_template_ensure(&G.pg, tpl, "two\nlines", G.uid, G.gid, &err),
			 MIREN_EINVAL);
	assert_false(fs_exists(tpl));
}

/* ---- with servers ------------------------------------------------------- */

static void test_template_and_start(void **state MIREN_UNUSED)
{
	if (!G.have_pg)
		skip();
	struct miren_error err = { 0 };
	G.port = pick_port();
	assert_true(G.port > 0);

	double t0 = now_ms();
	int rc = pg_template_ensure(&G.pg, G.tpl, G.tpl_pw, G.uid, G.gid, &err);
	if (rc)
		fprintf(stderr, "template: %s (hint: %s)\n", err.message, err.hint);
	assert_int_equal(rc, 0);
	double t1 = now_ms();
	assert_int_equal(pg_template_ensure(&G.pg, G.tpl, G.tpl_pw, G.uid, G.gid, &err), 0);
	double t2 = now_ms();
	printf("pg timing: template (initdb) %.0f ms, second ensure (no-op) %.2f ms, "
	       "template size %lld KiB\n",
	       t1 - t0, t2 - t1, fs_disk_usage(G.tpl) / 1024);

	/* No password file, no .tmp left behind. */
	char path[1400];
	snprintf(path, sizeof(path), "%s.pwfile", G.tpl);
	assert_false(fs_exists(path));
	snprintf(path, sizeof(path), "%s.tmp", G.tpl);
	assert_false(fs_exists(path));

	for (int i = 0; i < 2; i++) {
		struct server *s = &G.s[i];
		if (i == 1) {
			/* The second server's disk comes with a spare clone
			 * written beforehand (a filled spare disk). */
			assert_int_equal(fs_mkdir_p(s->disk, 0755), 0);
			double a = now_ms();
			rc = pg_spare_fill(G.tpl, s->disk, G.uid, G.gid, &err);
			if (rc)
				fprintf(stderr, "spare: %s\n", err.message);
			assert_int_equal(rc, 0);
			printf("pg timing: spare fill (off the path) %.1f ms\n", now_ms() - a);
			snprintf(path, sizeof(path), "%s/pgdata.spare", s->disk);
			assert_true(fs_is_dir(path));
			assert_int_equal(pg_spare_fill(G.tpl, s->disk, G.uid, G.gid, &err), 0);
		}
		double a = now_ms();
		rc = pg_clone(G.tpl, s->disk, s->addr, G.port, G.uid, G.gid, &err);
		if (rc)
			fprintf(stderr, "clone: %s\n", err.message);
		assert_int_equal(rc, 0);
		double b = now_ms();
		if (i == 1) {
			snprintf(path, sizeof(path), "%s/pgdata.spare", s->disk);
			assert_false(fs_exists(path)); /* taken */
		}
		s->pid = start_server(s);
		assert_true(s->pid > 0);
		rc = pg_wait_ready(s->disk, G.port, G.tpl_pw, 10000, &err);
		if (rc) {
			fprintf(stderr, "ready: %s\n", err.message);
			dump_log(s);
		}
		assert_int_equal(rc, 0);
		double c = now_ms();
		rc = pg_rotate_superuser(s->disk, G.port, G.tpl_pw, s->su_pw, &err);
		if (rc)
			fprintf(stderr, "rotate: %s\n", err.message);
		assert_int_equal(rc, 0);
		double d = now_ms();
		rc = i == 0 ? pg_tenant_create(s->disk, G.port, s->su_pw, "app_a", "app_a", PW_A,
					       &err)
			    : pg_tenant_create(s->disk, G.port, s->su_pw, "app_c", "app_c", PW_C,
					       &err);
		if (rc)
			fprintf(stderr, "tenant: %s\n", err.message);
		assert_int_equal(rc, 0);
		double e = now_ms();
		s->ready = true;
		printf("pg timing server %d (%s:%d): clone%s %.1f ms, start->ready %.1f ms, "
		       "rotate %.1f ms, tenant create %.1f ms; total %.1f ms\n",
		       i, s->addr, G.port, i == 1 ? " (from spare)" : "", b - a, c - b, d - c,
		       e - d, e - a);
	}

	/* Cloning onto an existing pgdata keeps it and rewrites the settings. */
	assert_int_equal(pg_clone(G.tpl, G.s[0].disk, G.s[0].addr, G.port, G.uid, G.gid, &err), 0);
	snprintf(path, sizeof(path), "%s/pgdata/miren-server.conf", G.s[0].disk);
	struct strbuf sb = STRBUF_INIT;
	assert_int_equal(strbuf_read_file(&sb, path), 0);
	bool has_addr = strstr(sb.buf, "listen_addresses = '127.77.250.1'") != NULL;
	strbuf_release(&sb);
	assert_true(has_addr);
	snprintf(path, sizeof(path), "%s/pgdata.tmp", G.s[0].disk);
	assert_false(fs_exists(path));
	/* A changed port is written (taking effect at the next start), and put back. */
	assert_int_equal(pg_clone(G.tpl, G.s[1].disk, G.s[1].addr, G.port + 1, G.uid, G.gid, &err),
			 0);
	snprintf(path, sizeof(path), "%s/pgdata/miren-server.conf", G.s[1].disk);
	char want[64];
	snprintf(want, sizeof(want), "port = %d\n", G.port + 1);
	assert_int_equal(strbuf_read_file(&sb, path), 0);
	bool changed = strstr(sb.buf, want) != NULL;
	strbuf_release(&sb);
	assert_true(changed);
	assert_int_equal(pg_clone(G.tpl, G.s[1].disk, G.s[1].addr, G.port, G.uid, G.gid, &err), 0);
	snprintf(want, sizeof(want), "port = %d\n", G.port);
	assert_int_equal(strbuf_read_file(&sb, path), 0);
	changed = strstr(sb.buf, want) != NULL;
	strbuf_release(&sb);
	assert_true(changed);
}

/* Whether the first n bytes of two files are equal. */
static bool same_prefix(const char *a, const char *b, size_t n)
{
	char x[64] = { 0 }, y[64] = { 0 };
	FILE *fa = fopen(a, "rb"), *fb = fopen(b, "rb");
	bool ok = fa && fb && fread(x, 1, n, fa) == n && fread(y, 1, n, fb) == n &&
		  memcmp(x, y, n) == 0;
	if (fa)
		fclose(fa);
	if (fb)
		fclose(fb);
	return ok;
}

struct ensure_job {
	const char *dir;
	int rc;
	struct miren_error err;
};

static void *ensure_thread(void *arg)
{
	struct ensure_job *j = arg;
	j->rc = pg_template_ensure(&G.pg, j->dir, "concurrent-pw", G.uid, G.gid, &j->err);
	return NULL;
}

/* Two makers at once: both succeed, one cluster results. */
static void test_template_concurrent(void **state MIREN_UNUSED)
{
	if (!G.have_pg)
		skip();
	char dir[600];
	snprintf(dir, sizeof(dir), "%s/templates/concurrent", G.tmp);
	struct ensure_job jobs[2] = { { .dir = dir }, { .dir = dir } };
	pthread_t th[2];
	for (int i = 0; i < 2; i++)
		assert_int_equal(pthread_create(&th[i], NULL, ensure_thread, &jobs[i]), 0);
	for (int i = 0; i < 2; i++) {
		pthread_join(th[i], NULL);
		if (jobs[i].rc)
			fprintf(stderr, "ensure %d: %s\n", i, jobs[i].err.message);
		assert_int_equal(jobs[i].rc, 0);
	}
	char path[700];
	snprintf(path, sizeof(path), "%s/PG_VERSION", dir);
	assert_true(fs_exists(path));
	snprintf(path, sizeof(path), "%s.tmp", dir);
	assert_false(fs_exists(path));

	/* A spare of another template is never taken: the clone copies the
	 * template and removes it; filled again, the spare is replaced. */
	struct miren_error err = { 0 };
	char spare[800], disk[700];
	snprintf(disk, sizeof(disk), "%s/disks/stale", G.tmp);
	snprintf(spare, sizeof(spare), "%s/pgdata.spare", disk);
	assert_int_equal(fs_mkdir_p(disk, 0755), 0);
	assert_int_equal(pg_spare_fill(dir, disk, G.uid, G.gid, &err), 0);
	assert_int_equal(pg_spare_fill(dir, disk, G.uid, G.gid, &err), 0); /* no-op */
	char a[800], b[900];
	snprintf(a, sizeof(a), "%s/global/pg_control", G.tpl);
	snprintf(b, sizeof(b), "%s/global/pg_control", spare);
	assert_false(same_prefix(a, b, 8));
	assert_int_equal(pg_spare_fill(G.tpl, disk, G.uid, G.gid, &err), 0);
	assert_true(same_prefix(a, b, 8));
	fs_remove_tree(spare);
	assert_int_equal(pg_spare_fill(dir, disk, G.uid, G.gid, &err), 0);
	assert_int_equal(pg_clone(G.tpl, disk, "127.0.0.1", 5999, G.uid, G.gid, &err), 0);
	assert_false(fs_exists(spare));
	snprintf(b, sizeof(b), "%s/pgdata/global/pg_control", disk);
	assert_true(same_prefix(a, b, 8));
	fs_remove_tree(disk);
	fs_remove_tree(dir);
}

static void test_ownership(void **state MIREN_UNUSED)
{
	REQUIRE_SERVERS();
	char path[600];
	struct stat st;
	const char *sub[] = { "pgdata", "pgdata/base", "pgdata/global/pg_control",
			      "pgdata/miren-server.conf", "pgdata/postgresql.conf" };
	for (size_t i = 0; i < sizeof(sub) / sizeof(sub[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", G.s[0].disk, sub[i]);
		assert_int_equal(stat(path, &st), 0);
		if (G.uid != (uid_t)-1) {
			assert_int_equal(st.st_uid, G.uid);
			assert_int_equal(st.st_gid, G.gid);
		}
		if (S_ISDIR(st.st_mode))
			assert_int_equal(st.st_mode & 0777, 0700);
		else
			assert_int_equal(st.st_mode & 0077, 0);
	}
}

static void test_rotate(void **state MIREN_UNUSED)
{
	REQUIRE_SERVERS();
	struct server *s = &G.s[0];
	struct miren_error err = { 0 };

	assert_false(sock_can_connect(s, "postgres", "postgres", G.tpl_pw));
	assert_true(sock_can_connect(s, "postgres", "postgres", s->su_pw));

	/* A rejected password ends the wait at once. */
	double t0 = now_ms();
	assert_int_equal(pg_wait_ready(s->disk, G.port, G.tpl_pw, 5000, &err), MIREN_EPERM);
	assert_true(now_ms() - t0 < 2000);
	assert_null(strstr(err.message, G.tpl_pw));

	/* Repeated (a retried step): the old password fails, the new one is used. */
	assert_int_equal(pg_rotate_superuser(s->disk, G.port, G.tpl_pw, s->su_pw, &err), 0);
	assert_int_equal(pg_rotate_superuser(s->disk, G.port, s->su_pw, s->su_pw, &err), 0);
	assert_true(sock_can_connect(s, "postgres", "postgres", s->su_pw));
	assert_false(sock_can_connect(s, "postgres", "postgres", G.tpl_pw));

	/* Neither password works: unavailable, and no secret in the message. */
	assert_int_equal(pg_rotate_superuser(s->disk, G.port, "wrong-1", "wrong-2", &err),
			 MIREN_EUNAVAIL);
	assert_null(strstr(err.message, "wrong-1"));
	assert_null(strstr(err.message, "wrong-2"));
	assert_true(sock_can_connect(s, "postgres", "postgres", s->su_pw));

	/* The other server has its own password. */
	assert_false(sock_can_connect(&G.s[1], "postgres", "postgres", s->su_pw));
	assert_true(sock_can_connect(&G.s[1], "postgres", "postgres", G.s[1].su_pw));
}

static void test_config(void **state MIREN_UNUSED)
{
	REQUIRE_SERVERS();
	struct server *s = &G.s[0];
	char path[600];
	snprintf(path, sizeof(path), "%s/pgdata/pg_hba.conf", s->disk);
	struct strbuf sb = STRBUF_INIT;
	assert_int_equal(strbuf_read_file(&sb, path), 0);
	bool trust = strcasestr(sb.buf, "trust") != NULL;
	bool repl = strcasestr(sb.buf, "replication") != NULL;
	strbuf_release(&sb);
	assert_false(trust);
	assert_false(repl);

	PGconn *c = sock_connect(s, "postgres", "postgres", s->su_pw);
	assert_int_equal(PQstatus(c), CONNECTION_OK);
	assert_value(c, "SHOW password_encryption", "scram-sha-256");
	assert_value(c, "SHOW listen_addresses", "127.77.250.1");
	assert_value(c, "SHOW fsync", "on");
	assert_value(c, "SHOW shared_buffers", "16MB");
	assert_value(c, "SHOW max_connections", "50");
	assert_value(c, "SHOW logging_collector", "off");
	assert_value(c, "SHOW server_encoding", "UTF8");
	char sock[600];
	char *sd = pg_socket_dir(s->disk);
	snprintf(sock, sizeof(sock), "%s", sd);
	free(sd);
	assert_value(c, "SHOW unix_socket_directories", sock);
	assert_value(c, "SELECT left(rolpassword, 14) FROM pg_authid WHERE rolname = 'postgres'",
		     "SCRAM-SHA-256$");
	assert_value(c, "SELECT left(rolpassword, 14) FROM pg_authid WHERE rolname = 'app_a'",
		     "SCRAM-SHA-256$");
	done(c);
}

static void test_tenants(void **state MIREN_UNUSED)
{
	REQUIRE_SERVERS();
	struct server *s = &G.s[0];
	struct miren_error err = { 0 };
	double t0 = now_ms();
	int rc = pg_tenant_create(s->disk, G.port, s->su_pw, "app_b", "app_b", PW_B, &err);
	if (rc)
		fprintf(stderr, "tenant b: %s\n", err.message);
	assert_int_equal(rc, 0);
	printf("pg timing: second tenant create %.1f ms\n", now_ms() - t0);
	G.tenants_made = true;

	/* A works in its own database over TCP. */
	PGconn *a = tcp_connect(s->addr, "app_a", "app_a", PW_A);
	if (PQstatus(a) != CONNECTION_OK)
		fprintf(stderr, "connect a: %s\n", PQerrorMessage(a));
	assert_int_equal(PQstatus(a), CONNECTION_OK);
	assert_string_equal(sql_state(a, "CREATE TABLE t (x int)"), "");
	assert_string_equal(sql_state(a, "INSERT INTO t VALUES (42)"), "");
	assert_value(a, "SELECT x FROM t", "42");
	assert_string_equal(sql_state(a, "CREATE TEMP TABLE tt (y int)"), "");
	/* Not privileged. */
	assert_string_equal(sql_state(a, "CREATE DATABASE evil"), "42501");
	assert_string_equal(sql_state(a, "CREATE ROLE evil"), "42501");
	assert_value(a, "SHOW is_superuser", "off");
	assert_value(a,
		     "SELECT rolsuper::text || rolcreatedb::text || rolcreaterole::text || "
		     "rolreplication::text || rolbypassrls::text FROM pg_roles "
		     "WHERE rolname = current_user",
		     "falsefalsefalsefalsefalse");
	assert_string_equal(sql_state(a, "ALTER ROLE app_a SUPERUSER"), "42501");
	done(a);

	/* B works in its own database. */
	PGconn *b = tcp_connect(s->addr, "app_b", "app_b", PW_B);
	assert_int_equal(PQstatus(b), CONNECTION_OK);
	assert_string_equal(sql_state(b, "CREATE TABLE bt (x int)"), "");
	/* A privilege in B's database for A: its drop must cope (see below). */
	assert_string_equal(sql_state(b, "GRANT SELECT ON bt TO app_a"), "");
	done(b);

	/* A reaches nothing else. */
	assert_false(tcp_can_connect(s->addr, "app_a", "app_b", PW_A));
	assert_false(tcp_can_connect(s->addr, "app_a", "postgres", PW_A));
	assert_false(tcp_can_connect(s->addr, "app_a", "template1", PW_A));
	assert_false(tcp_can_connect(s->addr, "app_a", "template0", PW_A));
	assert_false(tcp_can_connect(s->addr, "app_a", "app_a", "wrong password"));
	assert_false(tcp_can_connect(s->addr, "app_a", "app_a", PW_B));
	/* Not over the unix socket either, and not on the other server. */
	assert_false(sock_can_connect(s, "app_a", "app_a", PW_A));
	assert_false(tcp_can_connect(G.s[1].addr, "app_a", "app_a", PW_A));
	/* The other server's tenant. */
	assert_true(tcp_can_connect(G.s[1].addr, "app_c", "app_c", PW_C));
	assert_false(tcp_can_connect(s->addr, "app_c", "app_c", PW_C));

	/* The superuser never over TCP. */
	assert_false(tcp_can_connect(s->addr, "postgres", "postgres", s->su_pw));
	assert_false(tcp_can_connect(s->addr, "postgres", "app_a", s->su_pw));
}

static void test_tenant_again(void **state MIREN_UNUSED)
{
	REQUIRE_SERVERS();
	assert_true(G.tenants_made);
	struct server *s = &G.s[0];
	struct miren_error err = { 0 };
	/* Idempotent, and it resets the password; the data stays. */
	assert_int_equal(pg_tenant_create(s->disk, G.port, s->su_pw, "app_a", "app_a", PW_A2, &err),
			 0);
	assert_false(tcp_can_connect(s->addr, "app_a", "app_a", PW_A));
	PGconn *a = tcp_connect(s->addr, "app_a", "app_a", PW_A2);
	assert_int_equal(PQstatus(a), CONNECTION_OK);
	assert_value(a, "SELECT x FROM t", "42");
	done(a);
	/* Attributes are put back when someone changed them. */
	PGconn *c = sock_connect(s, "postgres", "postgres", s->su_pw);
	assert_int_equal(PQstatus(c), CONNECTION_OK);
	assert_string_equal(sql_state(c, "ALTER ROLE app_b CREATEDB"), "");
	done(c);
	assert_int_equal(pg_tenant_create(s->disk, G.port, s->su_pw, "app_b", "app_b", PW_B, &err),
			 0);
	PGconn *b = tcp_connect(s->addr, "app_b", "app_b", PW_B);
	assert_int_equal(PQstatus(b), CONNECTION_OK);
	assert_string_equal(sql_state(b, "CREATE DATABASE evil"), "42501");
	done(b);
	/* A wrong superuser password is refused without echoing it. */
	assert_int_equal(pg_tenant_create(s->disk, G.port, "not-the-pw", "app_b", "app_b", PW_B,
					  &err),
			 MIREN_EUNAVAIL);
	assert_null(strstr(err.message, "not-the-pw"));
	assert_null(strstr(err.message, PW_B));
}

static void test_tenant_drop(void **state MIREN_UNUSED)
{
	REQUIRE_SERVERS();
	assert_true(G.tenants_made);
	struct server *s = &G.s[0];
	struct miren_error err = { 0 };

	/* A holds a session while it is dropped. */
	PGconn *a = tcp_connect(s->addr, "app_a", "app_a", PW_A2);
	assert_int_equal(PQstatus(a), CONNECTION_OK);
	double t0 = now_ms();
	int rc = pg_tenant_drop(s->disk, G.port, s->su_pw, "app_a", "app_a", &err);
	if (rc)
		fprintf(stderr, "drop: %s\n", err.message);
	assert_int_equal(rc, 0);
	printf("pg timing: tenant drop %.1f ms\n", now_ms() - t0);
	assert_string_not_equal(sql_state(a, "SELECT 1"), "");
	done(a);
	assert_false(tcp_can_connect(s->addr, "app_a", "app_a", PW_A2));

	PGconn *c = sock_connect(s, "postgres", "postgres", s->su_pw);
	assert_int_equal(PQstatus(c), CONNECTION_OK);
	assert_value(c, "SELECT count(*) FROM pg_database WHERE datname = 'app_a'", "0");
	assert_value(c, "SELECT count(*) FROM pg_roles WHERE rolname = 'app_a'", "0");
	assert_value(c, "SELECT count(*) FROM pg_database WHERE datname = 'app_b'", "1");
	done(c);

	/* Again: nothing left to drop is fine. */
	assert_int_equal(pg_tenant_drop(s->disk, G.port, s->su_pw, "app_a", "app_a", &err), 0);
	/* B is untouched. */
	assert_true(tcp_can_connect(s->addr, "app_b", "app_b", PW_B));
	assert_int_equal(pg_tenant_drop(s->disk, G.port, s->su_pw, "app_b", "app_b", &err), 0);
	assert_false(tcp_can_connect(s->addr, "app_b", "app_b", PW_B));
}

/*
 * The whole kind of "names the engine cannot take": every SQL keyword of this
 * server that is fully reserved (pg_get_keywords catcode 'R': the ones that
 * break any statement that does not quote them; the other categories are
 * accepted as names in more places) that is an app name once '_' is '-',
 * and every name
 * PostgreSQL or miren reserves, goes through pg_ident_for_app and
 * pg_tenant_create, and the tenant then logs in to its database over TCP.
 * The tenants are left to the group teardown (a drop costs half a second).
 */
static void test_tenant_every_keyword(void **state MIREN_UNUSED)
{
	REQUIRE_SERVERS();
	struct server *s = &G.s[0];
	PGconn *su = sock_connect(s, "postgres", "postgres", s->su_pw);
	assert_int_equal(PQstatus(su), CONNECTION_OK);
	PGresult *r =
		PQexec(su, "SELECT word FROM pg_get_keywords() WHERE catcode = 'R' ORDER BY word");
	assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
	assert_true(PQntuples(r) > 50);
	static const char *const extra[] = {
		"postgres",
		"template0",
		"template1",
		"public",
		"none",
		"current-user",
		"current-role",
		"session-user",
		"pg-foo",
		"pg",
		"miren-spare",
		"miren-spare-1",
		"pg-a123456789b123456789c123456789d123456789e123456789f12345678",
		NULL
	};
	size_t n_words = (size_t)PQntuples(r), n_extra = 0;
	while (extra[n_extra])
		n_extra++;
	double t0 = now_ms();
	int tried = 0;
	for (size_t i = 0; i < n_words + n_extra; i++) {
		char app[80];
		snprintf(app, sizeof(app), "%s",
			 i < n_words ? PQgetvalue(r, (int)i, 0) : extra[i - n_words]);
		for (char *p = app; *p; p++)
			if (*p == '_')
				*p = '-';
		struct miren_error err = { 0 };
		if (name_check_app(app, &err))
			continue;
		char ident[64];
		if (pg_ident_for_app(app, ident, &err))
			fail_msg("app '%s': %s", app, err.message);
		if (pg_tenant_create(s->disk, G.port, s->su_pw, ident, ident, PW_B, &err))
			fail_msg("app '%s' (%s): %s", app, ident, err.message);
		if (!tcp_can_connect(s->addr, ident, ident, PW_B))
			fail_msg("app '%s' (%s): the tenant cannot log in", app, ident);
		tried++;
	}
	PQclear(r);
	done(su);
	assert_true(tried > 60);
	printf("pg timing: %d keyword tenants created in %.0f ms\n", tried, now_ms() - t0);
}

int main(void)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_ident, conn_teardown),
		cmocka_unit_test_teardown(test_argv_and_installs, conn_teardown),
		cmocka_unit_test_teardown(test_bad_arguments, conn_teardown),
		cmocka_unit_test_teardown(test_template_and_start, conn_teardown),
		cmocka_unit_test_teardown(test_template_concurrent, conn_teardown),
		cmocka_unit_test_teardown(test_ownership, conn_teardown),
		cmocka_unit_test_teardown(test_rotate, conn_teardown),
		cmocka_unit_test_teardown(test_config, conn_teardown),
		cmocka_unit_test_teardown(test_tenants, conn_teardown),
		cmocka_unit_test_teardown(test_tenant_again, conn_teardown),
		cmocka_unit_test_teardown(test_tenant_drop, conn_teardown),
		cmocka_unit_test_teardown(test_tenant_every_keyword, conn_teardown),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
