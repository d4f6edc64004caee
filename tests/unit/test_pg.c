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

#include "addon/addon.h"
#include "addon/postgresql/pg.h"
#include "store/store.h"
#include "supervise/supervise.h"
#include "util/compiler.h"
#include "util/err.h"
#include "util/fs.h"
#include "util/names.h"
#include "util/paths.h"
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
	/* The provider's tenant hooks over the two servers (hooks_up). */
	struct {
		bool up;
		const struct addon_def *def;
		struct store *store;
		struct addon_ctx ctx;
		struct data_paths *paths;  /* ctx.paths */
		struct addon_inst inst[3]; /* HK_SRC, HK_DST (shared), HK_DED (small) */
	} hk;
} G;

enum { HK_SRC, HK_DST, HK_DED };

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
	char **argv = pg_server_argv(&G.pg, s->disk, NULL);
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
	for (int i = 0; i < 3 && G.hk.def; i++)
		if (G.hk.inst[i].state)
			addon_inst_release(G.hk.def, &G.hk.inst[i]);
	if (G.hk.store)
		store_close(G.hk.store);
	data_paths_free(G.hk.paths);
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
	char **argv = pg_server_argv(&pi, "/srv/disks/x", NULL);
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
			char *sp = fs_join(s->disk, "pgdata.spare");
			assert_true(fs_is_dir(sp));
			free(sp);
			assert_int_equal(pg_spare_fill(G.tpl, s->disk, G.uid, G.gid, &err), 0);
		}
		double a = now_ms();
		rc = pg_clone(G.tpl, s->disk, s->addr, G.port, G.uid, G.gid, &err);
		if (rc)
			fprintf(stderr, "clone: %s\n", err.message);
		assert_int_equal(rc, 0);
		double b = now_ms();
		if (i == 1) {
			char *sp = fs_join(s->disk, "pgdata.spare");
			assert_false(fs_exists(sp)); /* taken */
			free(sp);
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

/* ---- the provider's tenant hooks ---------------------------------------- */

/*
 * The provider's dump, load, rotate, connect and info hooks, called as the
 * framework calls them: a store in the test directory (its data directory,
 * so the servers' disks are disks/d0 and disks/d1) records server 0 as a
 * shared server with two tenants (HK_SRC, HK_DST, beside app_a and app_b)
 * and server 1 as a small one (HK_DED, beside app_c).
 */
static const char *const HK_IDENT[] = { "hook_src", "hook_dst", "hook_ded" };
static const int HK_SERVER[] = { 0, 0, 1 };

static void hk_server(const char *id, const char *kind, int i)
{
	char state[256], disk[8];
	snprintf(state, sizeof(state),
		 "{\"su_password\":\"%s\",\"version\":\"%d\",\"rotated\":true}", G.s[i].su_pw,
		 G.pg.major);
	snprintf(disk, sizeof(disk), "d%d", i);
	struct server_rec rec = { .id = (char *)id,
				  .engine = PG_ADDON,
				  .kind = (char *)kind,
				  .disk = disk,
				  .address = G.s[i].addr,
				  .port = G.port,
				  .state_json = state };
	struct miren_error err = { 0 };
	if (store_server_add(G.hk.store, &rec, &err))
		fail_msg("server %s: %s", id, err.message);
}

/* An active instance of app with a tenant made on its server. */
static void hk_inst(int k, const char *app, const char *variant, const char *server,
		    const char *password)
{
	struct miren_error err = { 0 };
	const struct server *s = &G.s[HK_SERVER[k]];
	if (pg_tenant_create(s->disk, G.port, s->su_pw, HK_IDENT[k], HK_IDENT[k], password, &err))
		fail_msg("tenant %s: %s", HK_IDENT[k], err.message);
	char state[256];
	snprintf(state, sizeof(state), "{\"db\":\"%s\",\"password\":\"%s\",\"role\":\"%s\"}",
		 HK_IDENT[k], password, HK_IDENT[k]);
	char version[16];
	snprintf(version, sizeof(version), "%d", G.pg.major);
	struct addon_rec rec = { .id = (char *)app,
				 .app = (char *)app,
				 .addon = PG_ADDON,
				 .variant = (char *)variant,
				 .version = version,
				 .status = "active",
				 .state_json = state,
				 .server = (char *)server };
	if (addon_inst_load(G.hk.def, &rec, &G.hk.inst[k], &err))
		fail_msg("instance %s: %s", app, err.message);
}

static void hooks_up(void)
{
	REQUIRE_SERVERS();
	if (G.hk.up)
		return;
	struct miren_error err = { 0 };
	G.hk.def = addon_find(PG_ADDON);
	assert_non_null(G.hk.def);
	char db[400];
	snprintf(db, sizeof(db), "%s/miren.db", G.tmp);
	if (store_open(db, &G.hk.store, &err))
		fail_msg("store: %s", err.message);
	G.hk.ctx = (struct addon_ctx){ .store = G.hk.store,
				       .data_dir = G.tmp,
				       .paths = G.hk.paths = data_paths_new(G.tmp),
				       .uid = G.uid,
				       .gid = G.gid };
	hk_server("shared-hooks", "shared", 0);
	hk_server("s-hooks", "small", 1);
	hk_inst(HK_SRC, "hook-src", "shared", "shared-hooks", "pw-src-61ac02f9e7");
	hk_inst(HK_DST, "hook-dst", "shared", "shared-hooks", "pw-dst-0b9d4c3a81");
	hk_inst(HK_DED, "hook-ded", "small", "s-hooks", "pw-ded-7e2f1a6c55");
	G.hk.up = true;
}

/* The instance's password as its state says (to free). */
static char *hk_password(int k)
{
	char *sj = G.hk.def->state_json(G.hk.inst[k].state);
	json_t *o = json_loads(sj, 0, NULL);
	char *pw = strdup(json_string_value(json_object_get(o, "password")));
	json_decref(o);
	free(sj);
	return pw;
}

/* A session of instance k's tenant over TCP, as its app would open it. */
static PGconn *hk_connect(int k)
{
	char *pw = hk_password(k);
	PGconn *c = tcp_connect(G.s[HK_SERVER[k]].addr, HK_IDENT[k], HK_IDENT[k], pw);
	free(pw);
	if (PQstatus(c) != CONNECTION_OK)
		fail_msg("connect as %s: %s", HK_IDENT[k], PQerrorMessage(c));
	return c;
}

static void hk_sql(PGconn *c, const char *sql)
{
	const char *st = sql_state(c, sql);
	if (*st)
		fail_msg("%s: SQLSTATE %s: %s", sql, st, PQerrorMessage(c));
}

/* Dumps instance k into path (made anew); returns its size. */
static long long hk_dump(int k, const char *path)
{
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	assert_true(fd >= 0);
	struct miren_error err = { 0 };
	if (G.hk.def->dump(&G.hk.ctx, &G.hk.inst[k], fd, &err))
		fail_msg("dump %s: %s: %s", HK_IDENT[k], err.message, err.detail);
	long long n = (long long)lseek(fd, 0, SEEK_END);
	close(fd);
	return n;
}

static enum miren_err hk_load(int k, const char *path, struct miren_error *err)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	assert_true(fd >= 0);
	enum miren_err rc = G.hk.def->load(&G.hk.ctx, &G.hk.inst[k], fd, err);
	close(fd);
	return rc;
}

static const char ITEMS[] = "SELECT string_agg(id || ':' || name, ',' ORDER BY id) FROM items";

/* Every relation, schema and function of the tenant's own schemas is
 * owned by the session's role. */
static void assert_owned_by_me(PGconn *c)
{
	assert_value(c,
		     "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
		     " WHERE n.nspname IN ('public', 'extra') AND c.relowner <> "
		     "(SELECT oid FROM pg_roles WHERE rolname = current_user)",
		     "0");
	assert_value(c,
		     "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
		     " WHERE n.nspname IN ('public', 'extra')",
		     "6"); /* items, its key, counter, item_names, extra.notes, tags */
	assert_value(c,
		     "SELECT nspowner::regrole::text = current_user FROM pg_namespace "
		     "WHERE nspname = 'extra'",
		     "t");
	assert_value(c,
		     "SELECT proowner::regrole::text = current_user FROM pg_proc "
		     "WHERE proname = 'twice'",
		     "t");
}

/*
 * A dump of one tenant loaded into another replaces the objects the dump
 * holds (a load over existing data gives the dump's rows), every object
 * owned by the target's role; objects the dump does not hold stay; the
 * source and the server's other tenants are untouched; the same dump loads
 * into a small server's tenant.
 */
static void test_hook_dump_load(void **state MIREN_UNUSED)
{
	hooks_up();
	struct miren_error err = { 0 };
	PGconn *src = hk_connect(HK_SRC);
	hk_sql(src, "CREATE TABLE items (id int PRIMARY KEY, name text NOT NULL)");
	hk_sql(src, "INSERT INTO items VALUES (1, 'one'), (2, 'it''s two'), (3, 'drei \xc3\xbc')");
	hk_sql(src, "CREATE SEQUENCE counter START 7");
	assert_value(src, "SELECT nextval('counter')", "7");
	hk_sql(src, "CREATE VIEW item_names AS SELECT name FROM items");
	hk_sql(src, "CREATE SCHEMA extra");
	hk_sql(src, "CREATE TABLE extra.notes (note text)");
	hk_sql(src, "INSERT INTO extra.notes VALUES ('kept')");
	hk_sql(src, "CREATE FUNCTION twice(x int) RETURNS int LANGUAGE sql AS 'SELECT 2 * x'");
	/* A trusted extension, which a database owner may make, and its type. */
	hk_sql(src, "CREATE EXTENSION citext");
	hk_sql(src, "CREATE TABLE tags (t citext)");
	hk_sql(src, "INSERT INTO tags VALUES ('Hello')");
	char *want = sql_value(src, ITEMS);
	assert_non_null(want);

	/* The target holds other rows under the same name, and a table of its
	 * own, which the load removes. */
	PGconn *dst = hk_connect(HK_DST);
	hk_sql(dst, "CREATE TABLE items (id int, junk text)");
	hk_sql(dst, "INSERT INTO items SELECT g, 'junk' FROM generate_series(1, 5) g");
	hk_sql(dst, "CREATE TABLE keepme (x int)");
	hk_sql(dst, "INSERT INTO keepme VALUES (1)");

	char path[600];
	snprintf(path, sizeof(path), "%s/src.dump", G.tmp);
	assert_true(hk_dump(HK_SRC, path) > 5);
	struct strbuf sb = STRBUF_INIT;
	assert_int_equal(strbuf_read_file(&sb, path), 0);
	assert_int_equal(memcmp(sb.buf, "PGDMP", 5), 0); /* the custom format */
	strbuf_release(&sb);

	for (int round = 0; round < 2; round++) { /* again over the loaded data */
		int rc = hk_load(HK_DST, path, &err);
		if (rc)
			fail_msg("load: %s: %s", err.message, err.detail);
		assert_value(dst, ITEMS, want);
		assert_value(dst, "SELECT string_agg(note, ',') FROM extra.notes", "kept");
		assert_value(dst, "SELECT twice(21)", "42");
		assert_value(dst, "SELECT nextval('counter')", "8");
		assert_value(dst, "SELECT count(*) FROM item_names", "3");
		/* The load replaces: a table the dump does not hold is gone. */
		assert_value(dst, "SELECT count(*) FROM pg_tables WHERE tablename = 'keepme'", "0");
		assert_value(dst, "SELECT count(*) FROM tags WHERE t = 'HELLO'", "1");
		assert_value(dst,
			     "SELECT extowner::regrole::text = current_user FROM pg_extension "
			     "WHERE extname = 'citext'",
			     "t");
		assert_owned_by_me(dst);
	}

	/* The source and the other tenants of the shared server are untouched. */
	assert_value(src, ITEMS, want);
	assert_value(src, "SELECT count(*) FROM pg_tables WHERE tablename = 'keepme'", "0");
	PGconn *a = tcp_connect(G.s[0].addr, "app_a", "app_a", PW_A2);
	assert_int_equal(PQstatus(a), CONNECTION_OK);
	assert_value(a, "SELECT x FROM t", "42");
	done(a);

	/* The small server's tenant: the same dump, and its own dump. */
	int rc = hk_load(HK_DED, path, &err);
	if (rc)
		fail_msg("load into small: %s: %s", err.message, err.detail);
	PGconn *ded = hk_connect(HK_DED);
	assert_value(ded, ITEMS, want);
	assert_value(ded, "SELECT count(*) FROM tags WHERE t = 'hello'", "1");
	assert_value(ded,
		     "SELECT count(*) FROM pg_tables WHERE schemaname IN ('public', 'extra') AND "
		     "tableowner <> current_user",
		     "0");
	snprintf(path, sizeof(path), "%s/ded.dump", G.tmp);
	assert_true(hk_dump(HK_DED, path) > 5);
	done(ded);
	done(dst);
	done(src);
	free(want);
}

/* Writes data (n bytes) to path. */
static void write_file(const char *path, const void *data, size_t n)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, data, n), (ssize_t)n);
	close(fd);
}

/*
 * A load that fails (not a dump, an empty file, a dump cut short in its
 * data) says so with pg_restore's reason and a hint, and leaves the
 * database as it was: the load is one transaction.  A wrong password is an
 * error that does not show it.
 */
static void test_hook_load_bad(void **state MIREN_UNUSED)
{
	hooks_up();
	struct miren_error err = { 0 };
	PGconn *dst = hk_connect(HK_DST);
	/* Rows the dump does not hold, in a table it does. */
	hk_sql(dst, "DROP TABLE IF EXISTS items CASCADE");
	hk_sql(dst, "CREATE TABLE items (id int, name text)");
	hk_sql(dst, "INSERT INTO items VALUES (9, 'before')");
	hk_sql(dst, "CREATE TABLE IF NOT EXISTS keepme (x int)");
	char *before = sql_value(dst, ITEMS);
	char *keep = sql_value(dst, "SELECT count(*) FROM keepme");
	assert_string_equal(before, "9:before");

	char path[600];
	snprintf(path, sizeof(path), "%s/garbage.dump", G.tmp);
	const char garbage[] = "this is not a dump\n";
	write_file(path, garbage, strlen(garbage));
	assert_int_equal(hk_load(HK_DST, path, &err), MIREN_EINVAL);
	printf("pg load of garbage: %s; detail: %s; hint: %s\n", err.message, err.detail, err.hint);
	assert_non_null(strstr(err.message, "cannot load the dump into database hook_dst"));
	assert_non_null(strstr(err.detail, "archive"));
	assert_non_null(strstr(err.hint, "unchanged"));
	assert_value(dst, ITEMS, before);

	write_file(path, "", 0);
	assert_int_equal(hk_load(HK_DST, path, &err), MIREN_EINVAL);
	assert_value(dst, ITEMS, before);

	/* A real dump cut short: its objects were dropped and made again, its
	 * first data loaded, when it fails; all of it is rolled back. */
	char whole[600];
	snprintf(whole, sizeof(whole), "%s/whole.dump", G.tmp);
	PGconn *src = hk_connect(HK_SRC);
	hk_sql(src, "CREATE TABLE zz_last (pad text)");
	hk_sql(src, "INSERT INTO zz_last SELECT md5(g::text) FROM generate_series(1, 2000) g");
	long long n = hk_dump(HK_SRC, whole);
	struct strbuf sb = STRBUF_INIT;
	assert_int_equal(strbuf_read_file(&sb, whole), 0);
	assert_int_equal((long long)sb.len, n);
	write_file(path, sb.buf, sb.len - 200);
	strbuf_release(&sb);
	assert_int_equal(hk_load(HK_DST, path, &err), MIREN_EINVAL);
	printf("pg load of a cut dump: %s; detail: %s\n", err.message, err.detail);
	assert_true(err.detail[0] != '\0');
	assert_value(dst, ITEMS, before);
	assert_value(dst, "SELECT count(*) FROM keepme", keep);
	assert_value(dst, "SELECT count(*) FROM pg_tables WHERE tablename = 'zz_last'", "0");
	/* The whole dump loads. */
	int rc = hk_load(HK_DST, whole, &err);
	if (rc)
		fail_msg("load: %s: %s", err.message, err.detail);
	assert_value(dst, "SELECT count(*) FROM zz_last", "2000");
	hk_sql(src, "DROP TABLE zz_last");
	hk_sql(dst, "DROP TABLE zz_last");

	/* A wrong password: unavailable, and it is shown nowhere. */
	struct pg_client c = { G.s[0].addr, G.port, "hook_dst", "wrong-pw-4411aa", "hook_dst" };
	int fd = open(whole, O_RDONLY | O_CLOEXEC);
	assert_int_equal(pg_tenant_load(&G.pg, &c, G.uid, G.gid, fd, &err), MIREN_EUNAVAIL);
	close(fd);
	assert_null(strstr(err.message, "wrong-pw"));
	assert_null(strstr(err.detail, "wrong-pw"));
	assert_null(strstr(err.hint, "wrong-pw"));
	assert_non_null(strstr(err.detail, "password authentication failed"));
	/* Names that are not an ident's never reach a command line. */
	c.password = "pw";
	c.db = "x --evil";
	assert_int_equal(pg_tenant_dump(&G.pg, &c, G.uid, G.gid, 1, &err), MIREN_EINVAL);
	c.db = "hook_dst";
	c.host = "localhost";
	assert_int_equal(pg_tenant_dump(&G.pg, &c, G.uid, G.gid, 1, &err), MIREN_EINVAL);
	free(before);
	free(keep);
	done(src);
	done(dst);
}

/* The env the instance injects, as the framework records it after a
 * rotation: PGPASSWORD and DATABASE_URL carry pw. */
static void assert_env_has(int k, const char *pw, const char *old)
{
	struct env_rec *vars = NULL;
	size_t n = 0;
	struct miren_error err = { 0 };
	assert_int_equal(G.hk.def->env(&G.hk.ctx, &G.hk.inst[k], &vars, &n, &err), 0);
	int seen = 0;
	for (size_t i = 0; i < n; i++) {
		if (!strcmp(vars[i].key, "PGPASSWORD")) {
			assert_string_equal(vars[i].value, pw);
			seen++;
		} else if (!strcmp(vars[i].key, "DATABASE_URL")) {
			assert_non_null(strstr(vars[i].value, pw));
			assert_null(strstr(vars[i].value, old));
			seen++;
		}
	}
	assert_int_equal(seen, 2);
	env_recs_free(vars, n);
}

/* The login instance k's env gives (to free). */
static char *hk_login(int k)
{
	char *sj = G.hk.def->state_json(G.hk.inst[k].state);
	json_t *o = json_loads(sj, 0, NULL);
	const char *l = json_string_value(json_object_get(o, "login"));
	char *out = strdup(l ? l : HK_IDENT[k]);
	json_decref(o);
	free(sj);
	return out;
}

/* Runs sql as login with pw on instance k's database; whether it worked. */
static bool hk_sql_as(int k, const char *login, const char *pw, const char *sql)
{
	PGconn *c = tcp_connect(G.s[HK_SERVER[k]].addr, login, HK_IDENT[k], pw);
	bool ok = PQstatus(c) == CONNECTION_OK;
	if (ok) {
		PGresult *r = PQexec(c, sql);
		ok = PQresultStatus(r) == PGRES_COMMAND_OK || PQresultStatus(r) == PGRES_TUPLES_OK;
		PQclear(r);
	}
	done(c);
	return ok;
}

/*
 * Rotation with no failed connection: plan (state only), issue (the new
 * login works beside the old one, the env carries it), revoke (the old one
 * refused); the two logins take turns, act as the tenant's role (what one
 * made, the other may alter), and sessions of the new one stay; twice, on
 * both variants.
 */
static void test_hook_rotate(void **state MIREN_UNUSED)
{
	hooks_up();
	struct miren_error err = { 0 };
	static const int shared_and_small[] = { HK_SRC, HK_DED };
	for (int i = 0; i < 2; i++) {
		int k = shared_and_small[i];
		const struct server *s = &G.s[HK_SERVER[k]];
		struct addon_inst *in = &G.hk.inst[k];
		char *pw0 = hk_password(k), *login0 = hk_login(k);
		assert_true(hk_sql_as(k, login0, pw0, "CREATE TABLE rot_before (i int)"));
		assert_int_equal(G.hk.def->rotate_plan(&G.hk.ctx, in, "superuser", &err),
				 MIREN_EINVAL);
		for (int round = 0; round < 2; round++) {
			char *prev = hk_password(k), *prev_login = hk_login(k);
			assert_int_equal(G.hk.def->rotate_phase(in->state), ADDON_ROTATE_NONE);
			assert_int_equal(G.hk.def->rotate_plan(&G.hk.ctx, in, "user", &err), 0);
			assert_int_equal(G.hk.def->rotate_phase(in->state), ADDON_ROTATE_PLANNED);
			/* Planned: nothing changed in the server, the env the same. */
			assert_env_has(k, prev, "-no-such-");
			for (int again = 0; again < 2; again++)
				if (G.hk.def->rotate_issue(&G.hk.ctx, in, &err))
					fail_msg("issue %s: %s", HK_IDENT[k], err.message);
			assert_int_equal(G.hk.def->rotate_phase(in->state), ADDON_ROTATE_SWITCHED);
			char *pw = hk_password(k), *login = hk_login(k);
			assert_string_not_equal(pw, prev);
			assert_string_not_equal(login, prev_login);
			/* Both work while the app restarts. */
			assert_true(tcp_can_connect(s->addr, prev_login, HK_IDENT[k], prev));
			assert_true(tcp_can_connect(s->addr, login, HK_IDENT[k], pw));
			assert_env_has(k, pw, prev);
			PGconn *open_new = tcp_connect(s->addr, login, HK_IDENT[k], pw);
			for (int again = 0; again < 2; again++)
				if (G.hk.def->rotate_revoke(&G.hk.ctx, in, &err))
					fail_msg("revoke %s: %s", HK_IDENT[k], err.message);
			assert_int_equal(G.hk.def->rotate_phase(in->state), ADDON_ROTATE_NONE);
			assert_false(tcp_can_connect(s->addr, prev_login, HK_IDENT[k], prev));
			assert_false(tcp_can_connect(s->addr, login, HK_IDENT[k], prev));
			assert_true(tcp_can_connect(s->addr, login, HK_IDENT[k], pw));
			assert_value(open_new, "SELECT current_user", HK_IDENT[k]);
			done(open_new);
			/* The tenant's role owns what either login makes. */
			assert_true(hk_sql_as(k, login, pw,
					      "ALTER TABLE rot_before ADD COLUMN IF NOT "
					      "EXISTS j int"));
			char *sql = NULL;
			assert_true(asprintf(&sql,
					     "CREATE TABLE rot_%d (i int); ALTER TABLE rot_%d ADD "
					     "COLUMN j int",
					     round, round) > 0);
			assert_true(hk_sql_as(k, login, pw, sql));
			free(sql);
			/* The state the framework records holds it, never the old. */
			char *sj = G.hk.def->state_json(in->state);
			assert_non_null(strstr(sj, pw));
			assert_null(strstr(sj, prev));
			free(sj);
			free(prev);
			free(prev_login);
			free(pw);
			free(login);
		}
		char *pw = hk_password(k), *login = hk_login(k);
		assert_true(hk_sql_as(k, login, pw,
				      "ALTER TABLE rot_0 ADD COLUMN k int; DROP TABLE rot_before, "
				      "rot_0, rot_1"));
		free(pw);
		free(login);
		free(pw0);
		free(login0);
	}
	/* The mechanics refuse a login that is not the tenant's, a reserved
	 * role, a wrong superuser password, without the password in the
	 * message. */
	const struct server *s = &G.s[0];
	assert_int_equal(pg_tenant_logins(s->disk, G.port, s->su_pw, "hook_src", "other_x",
					  "pw-x0-long-enough", false, &err),
			 MIREN_EINVAL);
	assert_int_equal(pg_tenant_logins(s->disk, G.port, s->su_pw, "postgres", "postgres",
					  "pw-x-long-enough", false, &err),
			 MIREN_EINVAL);
	assert_int_equal(pg_tenant_logins(s->disk, G.port, "not-the-su-pw", "hook_src", "hook_src",
					  "pw-x2-long-enough", false, &err),
			 MIREN_EUNAVAIL);
	assert_null(strstr(err.message, "pw-x2"));
	assert_null(strstr(err.message, "not-the-su-pw"));
	char alt[64];
	assert_int_equal(pg_alt_login("hook_src", alt, &err), 0);
	assert_string_equal(alt, "hook_src_r__");
}

/* Runs argv with env (NULL-terminated) as the service user; returns the
 * exit code, *out what it printed (to free). */
static int run_cmd(char **argv, char **env, char **out)
{
	return sv_run(argv, env, "/", G.uid, G.gid, 20000, out);
}

/*
 * connect: psql as the tenant, the password only in the env; with that env
 * it logs in and runs a query in the tenant's database, without it it
 * cannot.
 */
static void test_hook_connect(void **state MIREN_UNUSED)
{
	hooks_up();
	for (int k = HK_DST; k <= HK_DED; k++) {
		struct miren_error err = { 0 };
		struct addon_connect c = { 0 };
		int rc = G.hk.def->connect(&G.hk.ctx, &G.hk.inst[k], &c, &err);
		if (rc)
			fail_msg("connect %s: %s", HK_IDENT[k], err.message);
		char *pw = hk_password(k);
		size_t na = 0;
		while (c.argv[na])
			assert_null(strstr(c.argv[na++], pw));
		assert_true(na >= 1);
		assert_string_equal(c.argv[0] + strlen(c.argv[0]) - 5, "/psql");
		assert_int_equal(access(c.argv[0], X_OK), 0);
		char *want_env = xasprintf("PGPASSWORD=%s", pw);
		assert_non_null(c.env[0]);
		assert_string_equal(c.env[0], want_env);
		assert_null(c.env[1]);
		free(want_env);

		char **argv = xcalloc(na + 8, sizeof(*argv));
		memcpy(argv, c.argv, na * sizeof(*argv));
		const char *more[] = {
			"-X", "-w", "-A",
			"-t", "-c", "SELECT current_user || ':' || current_database() || ':' || 1"
		};
		for (size_t i = 0; i < 6; i++)
			argv[na + i] = (char *)more[i];
		char *env[] = { "PATH=/usr/bin:/bin", "LC_ALL=C", c.env[0], NULL };
		char *out = NULL;
		int st = run_cmd(argv, env, &out);
		char want[200];
		snprintf(want, sizeof(want), "%s:%s:1\n", HK_IDENT[k], HK_IDENT[k]);
		if (st != 0 || strcmp(out, want) != 0)
			fail_msg("psql exited %d: %s", st, out);
		free(out);
		/* Without the env it has no password. */
		env[2] = NULL;
		assert_int_not_equal(run_cmd(argv, env, &out), 0);
		assert_non_null(strstr(out, "password"));
		free(out);
		free(argv);
		free(pw);
		addon_connect_release(&c);
	}
}

/*
 * info: the server's version, the database's size, the sessions on it now
 * and how many the tenant may open (less when its role is limited); an
 * instance with no database yet gets a conflict from every hook.
 */
static void test_hook_info(void **state MIREN_UNUSED)
{
	hooks_up();
	struct miren_error err = { 0 };
	char major[16];
	snprintf(major, sizeof(major), "%d.", G.pg.major);
	for (int k = HK_DST; k <= HK_DED; k++) {
		PGconn *held = hk_connect(k);
		struct addon_info info = { .size_bytes = -1, .connections = -1 };
		int rc = G.hk.def->info(&G.hk.ctx, &G.hk.inst[k], &info, &err);
		if (rc)
			fail_msg("info %s: %s", HK_IDENT[k], err.message);
		printf("pg info %s: version %s, %lld bytes, %d of %d connections\n", HK_IDENT[k],
		       info.version, info.size_bytes, info.connections, info.max_connections);
		assert_int_equal(strncmp(info.version, major, strlen(major)), 0);
		assert_true(info.size_bytes > 1000000); /* a database holds its catalog */
		assert_true(info.connections >= 1);     /* held */
		assert_true(info.max_connections > 0 && info.max_connections < 50);
		done(held);
	}
	/* A role with a connection limit. */
	PGconn *su = sock_connect(&G.s[0], "postgres", "postgres", G.s[0].su_pw);
	assert_int_equal(PQstatus(su), CONNECTION_OK);
	hk_sql(su, "ALTER ROLE hook_dst CONNECTION LIMIT 5");
	struct addon_info info = { 0 };
	assert_int_equal(G.hk.def->info(&G.hk.ctx, &G.hk.inst[HK_DST], &info, &err), 0);
	assert_int_equal(info.max_connections, 5);
	hk_sql(su, "ALTER ROLE hook_dst CONNECTION LIMIT -1");
	done(su);

	/* Not planned yet: every hook says so, nothing is run. */
	struct addon_rec rec = {
		.id = "n", .app = "hook-new", .addon = PG_ADDON, .state_json = ""
	};
	struct addon_inst fresh;
	assert_int_equal(addon_inst_load(G.hk.def, &rec, &fresh, &err), 0);
	struct addon_connect c = { 0 };
	assert_int_equal(G.hk.def->info(&G.hk.ctx, &fresh, &info, &err), MIREN_ECONFLICT);
	assert_non_null(strstr(err.message, "hook-new"));
	assert_int_equal(G.hk.def->rotate_plan(&G.hk.ctx, &fresh, "user", &err), MIREN_ECONFLICT);
	assert_int_equal(G.hk.def->dump(&G.hk.ctx, &fresh, 1, &err), MIREN_ECONFLICT);
	assert_int_equal(G.hk.def->load(&G.hk.ctx, &fresh, 0, &err), MIREN_ECONFLICT);
	assert_int_equal(G.hk.def->connect(&G.hk.ctx, &fresh, &c, &err), MIREN_ECONFLICT);
	assert_null(c.argv);
	addon_inst_release(G.hk.def, &fresh);
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
		cmocka_unit_test_teardown(test_hook_dump_load, conn_teardown),
		cmocka_unit_test_teardown(test_hook_load_bad, conn_teardown),
		cmocka_unit_test_teardown(test_hook_rotate, conn_teardown),
		cmocka_unit_test_teardown(test_hook_connect, conn_teardown),
		cmocka_unit_test_teardown(test_hook_info, conn_teardown),
		cmocka_unit_test_teardown(test_tenant_drop, conn_teardown),
		cmocka_unit_test_teardown(test_tenant_every_keyword, conn_teardown),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
