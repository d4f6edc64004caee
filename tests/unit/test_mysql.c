/*
 * Integration tests of lib/addon/mysql/mariadb against a real MariaDB: a
 * template made by mariadb_template_ensure in a temporary directory,
 * cloned into disks served on loopback addresses; readiness, root password
 * rotation, tenants and their isolation on one shared server (a tenant
 * can neither see, connect to, read nor write another's database, and has
 * nothing global), tenant drop, an online backup under write load that
 * restores every row committed before it began and no gap, info and the
 * connect option file; mariadb_ident_for_app and argument checks as plain
 * unit tests.
 *
 * As root, servers run as the user "miren"; as an ordinary user as that
 * user.  Servers are started here with fork/exec (the provider uses the
 * supervisor) and stopped with SIGTERM in the group teardown, which also
 * removes the temporary directory.  Addresses are 127.77.(240 +
 * $MIREN_TEST_NET).1..3 so parallel runs do not collide.  MYSQL_TEST_KEEP=1
 * keeps the directory.  Skips when MariaDB is not installed.
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
#include <mysql.h>
#include <netinet/in.h>
#include <pthread.h>
#include <pwd.h>
#include <signal.h>
#include <stdatomic.h>
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

#include "addon/mysql/mariadb.h"
#include "util/err.h"
#include "util/fs.h"
#include "util/strbuf.h"

struct server {
	char disk[512];
	char addr[32];
	char log[560];
	pid_t pid;
	char root_pw[64];
	bool ready;
};

static struct {
	char tmp[256];
	bool have;
	struct mariadb_install in;
	uid_t uid;
	gid_t gid;
	int port;
	char tpl[300];
	char tpl_pw[64];
	struct server s[3]; /* 0: shared (A, B), 1: dedicated (C), 2: restored */
	bool tenants_made;
} G;

static const char *const PW_A = "pwAfirst9f2c1e";
static const char *const PW_A2 = "pwAsecond77b0d4";
static const char *const PW_B = "pwB0c3a55e1";
static const char *const PW_C = "pwC5d1be0aa";

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
	int one = 1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	inet_pton(AF_INET, addr, &sa.sin_addr);
	bool bound = bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
	close(fd);
	return bound;
}

static bool all_free(int port)
{
	for (int i = 0; i < 3; i++)
		if (!port_free(G.s[i].addr, port))
			return false;
	return true;
}

static int pick_port(void)
{
	if (all_free(3306))
		return 3306;
	srand((unsigned)getpid() ^ (unsigned)time(NULL));
	for (int i = 0; i < 200; i++) {
		int p = 20000 + rand() % 40000;
		if (all_free(p))
			return p;
	}
	return -1;
}

static pid_t start_server(struct server *s)
{
	char **argv = mariadb_server_argv(&G.in, s->disk, s->addr, G.port);
	if (!argv)
		return -1;
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
		prctl(PR_SET_PDEATHSIG, SIGTERM);
		if (getppid() != parent)
			_exit(124);
		char *env[] = { "PATH=/usr/sbin:/usr/bin:/bin", "LC_ALL=C", NULL };
		execve(argv[0], argv, env);
		_exit(127);
	}
	mariadb_argv_free(argv);
	return pid;
}

static void stop_server(struct server *s)
{
	if (s->pid <= 0)
		return;
	kill(s->pid, SIGTERM);
	int status;
	for (int i = 0; i < 3000; i++) {
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

/* A TCP connection as user (NULL when refused; *why gets the errno). */
static MYSQL *tcp_connect(const char *addr, const char *user, const char *pw, const char *db,
			  unsigned int *why)
{
	MYSQL *m = mysql_init(NULL);
	unsigned int t = 5;
	mysql_optionsv(m, MYSQL_OPT_CONNECT_TIMEOUT, &t);
	if (!mysql_real_connect(m, addr, user, pw, db, (unsigned)G.port, NULL, 0)) {
		if (why)
			*why = mysql_errno(m);
		mysql_close(m);
		return NULL;
	}
	return m;
}

static bool can_connect(const char *addr, const char *user, const char *pw, const char *db)
{
	MYSQL *m = tcp_connect(addr, user, pw, db, NULL);
	mysql_close(m);
	return m != NULL;
}

/* 0 when sql runs, else the server's error number. */
static unsigned int sql_err(MYSQL *m, const char *sql)
{
	if (mysql_query(m, sql) != 0)
		return mysql_errno(m);
	MYSQL_RES *r = mysql_store_result(m);
	if (r)
		mysql_free_result(r);
	return 0;
}

/* The first column of the first row (caller frees), or NULL. */
static char *sql_value(MYSQL *m, const char *sql)
{
	if (mysql_query(m, sql) != 0)
		return NULL;
	MYSQL_RES *r = mysql_store_result(m);
	if (!r)
		return NULL;
	MYSQL_ROW row = mysql_fetch_row(r);
	char *v = row && row[0] ? strdup(row[0]) : NULL;
	mysql_free_result(r);
	return v;
}

static void assert_value(MYSQL *m, const char *sql, const char *want)
{
	char *v = sql_value(m, sql);
	char got[512];
	snprintf(got, sizeof(got), "%s", v ? v : "(error)");
	free(v);
	if (strcmp(got, want) != 0)
		fprintf(stderr, "query: %s\n  got: %s\n want: %s\n", sql, got, want);
	assert_string_equal(got, want);
}

/* Asserts rc is 0, showing err's message when it is not. */
static void ok(int rc, const struct miren_error *err)
{
	if (rc)
		fprintf(stderr, "error: %s\n", err->message);
	assert_int_equal(rc, 0);
}

#define REQUIRE_SERVERS()                                 \
	do {                                              \
		if (!G.have)                              \
			skip();                           \
		assert_true(G.s[0].ready &&G.s[1].ready); \
	} while (0)

static int group_setup(void **state)
{
	(void)state;
	memset(&G, 0, sizeof(G));
	G.uid = (uid_t)-1;
	G.gid = (gid_t)-1;
	struct miren_error err = { 0 };
	G.have = mariadb_find(&G.in, &err) == 0;
	if (!G.have)
		fprintf(stderr, "test_mysql: skipping: %s\n", err.message);
	if (geteuid() == 0) {
		struct passwd *pw = getpwnam("miren");
		if (!pw) {
			fprintf(stderr, "test_mysql: running as root needs the user miren\n");
			G.have = false;
		} else {
			G.uid = pw->pw_uid;
			G.gid = pw->pw_gid;
		}
	}
	const char *tmpdir = getenv("TMPDIR");
	snprintf(G.tmp, sizeof(G.tmp), "%s/miren-test-mysql-XXXXXX",
		 tmpdir && *tmpdir ? tmpdir : "/tmp");
	if (!mkdtemp(G.tmp))
		return -1;
	chmod(G.tmp, 0755);
	snprintf(G.tpl, sizeof(G.tpl), "%s/templates/mysql%s", G.tmp, G.in.version);
	snprintf(G.tpl_pw, sizeof(G.tpl_pw), "tpl%d%ld", (int)getpid(), (long)time(NULL));
	const char *net = getenv("MIREN_TEST_NET");
	int third = 240 + (net ? atoi(net) % 15 : 0);
	for (int i = 0; i < 3; i++) {
		struct server *s = &G.s[i];
		snprintf(s->disk, sizeof(s->disk), "%s/disks/mysql-d%d", G.tmp, i);
		snprintf(s->log, sizeof(s->log), "%s/server%d.log", G.tmp, i);
		snprintf(s->addr, sizeof(s->addr), "127.77.%d.%d", third, i + 1);
		snprintf(s->root_pw, sizeof(s->root_pw), "root%d%08x", i, (unsigned)rand());
	}
	if (G.have)
		G.port = pick_port();
	return 0;
}

static int group_teardown(void **state)
{
	(void)state;
	for (int i = 0; i < 3; i++)
		stop_server(&G.s[i]);
	if (G.tmp[0] && !getenv("MYSQL_TEST_KEEP")) {
		for (int i = 0; i < 3; i++) {
			char *run = mariadb_run_dir(G.s[i].disk);
			fs_remove_tree(run);
			free(run);
		}
		fs_remove_tree(G.tmp);
	}
	return 0;
}

/* ---- pure tests --------------------------------------------------------- */

static void expect_ident(const char *app, const char *want)
{
	char out[65];
	struct miren_error err = { 0 };
	int rc = mariadb_ident_for_app(app, out, &err);
	if (rc)
		fprintf(stderr, "mariadb_ident_for_app(%s): %s\n", app, err.message);
	assert_int_equal(rc, 0);
	assert_string_equal(out, want);
}

static void test_ident(void **state)
{
	(void)state;
	expect_ident("hello", "hello");
	expect_ident("hello-world-2", "hello_world_2");
	expect_ident("mysql", "u_mysql_");
	expect_ident("test", "u_test_");
	expect_ident("sys", "u_sys_");
	expect_ident("root", "u_root_");
	expect_ident("public", "u_public_");
	expect_ident("information-schema", "u_information_schema_");
	expect_ident("performance-schema", "u_performance_schema_");
	expect_ident("current-user", "u_current_user_");
	expect_ident("mysqlx", "mysqlx");
	expect_ident("tests", "tests");
	char name[80];
	memset(name, 'a', 63);
	name[63] = '\0';
	expect_ident(name, name);
	char out[65];
	struct miren_error err = { 0 };
	memset(name, 'a', 64);
	name[64] = '\0';
	assert_int_equal(mariadb_ident_for_app(name, out, &err), MIREN_EINVAL);
	assert_int_equal(mariadb_ident_for_app("Bad", out, &err), MIREN_EINVAL);
	assert_int_equal(mariadb_ident_for_app("a_b", out, &err), MIREN_EINVAL);
	assert_int_equal(mariadb_ident_for_app("", out, &err), MIREN_EINVAL);
	assert_true(mariadb_reserved("mysql"));
	assert_false(mariadb_reserved("mysql2"));
}

static void test_argv(void **state)
{
	(void)state;
	struct mariadb_install in = { .server = "/usr/sbin/mariadbd" };
	char **argv = mariadb_server_argv(&in, "/d/disk", "127.77.0.9", 3306);
	assert_non_null(argv);
	assert_string_equal(argv[0], "/usr/sbin/mariadbd");
	assert_string_equal(argv[1], "--no-defaults"); /* must be first */
	bool bind = false, port = false, data = false, ps = false;
	for (char **p = argv; *p; p++) {
		bind |= !strcmp(*p, "--bind-address=127.77.0.9");
		port |= !strcmp(*p, "--port=3306");
		data |= !strcmp(*p, "--datadir=/d/disk/data");
		ps |= !strcmp(*p, "--performance-schema=OFF");
	}
	assert_true(bind && port && data && ps);
	mariadb_argv_free(argv);
	assert_null(mariadb_server_argv(&in, "/d/disk", "localhost", 3306));
	assert_null(mariadb_server_argv(&in, "/d/disk", "127.0.0.1", 0));
	assert_null(mariadb_server_argv(&in, "/d/disk", "127.0.0.1", 70000));
	char *run = mariadb_run_dir("/a/very/long/path/that/goes/on/and/on/and/on/for/ever/and/"
				    "ever/disks/mysql-mysql-some-app-s12-data");
	assert_true(strlen(run) + strlen("/mysqld.sock") < 100);
	free(run);
}

static void test_bad_arguments(void **state)
{
	(void)state;
	struct miren_error err = { 0 };
	/* Refused before any connection (the disk does not exist). */
	assert_int_equal(mariadb_tenant_create("/nonexistent", "x", "mysql", "a", "pw", &err),
			 MIREN_EINVAL);
	assert_int_equal(mariadb_tenant_create("/nonexistent", "x", "a", "information_schema", "pw",
					       &err),
			 MIREN_EINVAL);
	assert_int_equal(mariadb_tenant_create("/nonexistent", "x", "a`b", "a", "pw", &err),
			 MIREN_EINVAL);
	assert_int_equal(mariadb_tenant_create("/nonexistent", "x", "a", "a", "p'w", &err),
			 MIREN_EINVAL);
	assert_int_equal(mariadb_tenant_drop("/nonexistent", "x", "root", "a", &err), MIREN_EINVAL);
	char name[70];
	memset(name, 'a', 65);
	name[65] = '\0';
	assert_int_equal(mariadb_tenant_create("/nonexistent", "x", name, "a", "pw", &err),
			 MIREN_EINVAL);
	/* A server that does not run: unavailable, without the password. */
	assert_int_equal(mariadb_tenant_create("/nonexistent", "secretroot", "a", "a", "pw", &err),
			 MIREN_EUNAVAIL);
	assert_null(strstr(err.message, "secretroot"));
}

/* ---- with servers ------------------------------------------------------- */

static void test_template_and_start(void **state)
{
	(void)state;
	if (!G.have)
		skip();
	assert_true(G.port > 0);
	struct miren_error err = { 0 };
	double t0 = now_ms();
	int rc = mariadb_template_ensure(&G.in, G.tpl, G.tpl_pw, G.uid, G.gid, &err);
	if (rc)
		fprintf(stderr, "template: %s\n", err.message);
	assert_int_equal(rc, 0);
	double t1 = now_ms();
	assert_int_equal(mariadb_template_ensure(&G.in, G.tpl, G.tpl_pw, G.uid, G.gid, &err), 0);
	char *sql = malloc(strlen(G.tpl) + 8);
	sprintf(sql, "%s.sql", G.tpl);
	assert_false(fs_exists(sql)); /* the password file went */
	free(sql);

	/* Server 0 from a copy, server 1 from a spare. */
	rc = mariadb_clone(G.tpl, G.s[0].disk, G.uid, G.gid, &err);
	if (rc)
		fprintf(stderr, "clone: %s\n", err.message);
	assert_int_equal(rc, 0);
	double t2 = now_ms();
	assert_int_equal(mariadb_spare_prepare(G.tpl, G.uid, G.gid, &err), 0);
	double t3 = now_ms();
	assert_int_equal(mariadb_clone(G.tpl, G.s[1].disk, G.uid, G.gid, &err), 0);
	double t4 = now_ms();
	char *spare = malloc(strlen(G.tpl) + 8);
	sprintf(spare, "%s.spare", G.tpl);
	assert_false(fs_exists(spare)); /* taken */
	free(spare);
	/* Idempotent: an existing data dir is kept. */
	assert_int_equal(mariadb_clone(G.tpl, G.s[1].disk, G.uid, G.gid, &err), 0);

	char *data = mariadb_data_dir(G.s[0].disk);
	struct stat st;
	assert_int_equal(stat(data, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0700);
	if (G.uid != (uid_t)-1)
		assert_int_equal(st.st_uid, G.uid);
	free(data);

	for (int i = 0; i < 2; i++) {
		G.s[i].pid = start_server(&G.s[i]);
		assert_true(G.s[i].pid > 0);
	}
	double t5 = now_ms();
	for (int i = 0; i < 2; i++) {
		rc = mariadb_wait_ready(G.s[i].disk, G.tpl_pw, 180000, NULL, &err);
		if (rc) {
			fprintf(stderr, "server %d: %s\n", i, err.message);
			dump_log(&G.s[i]);
		}
		assert_int_equal(rc, 0);
	}
	double t6 = now_ms();
	fprintf(stderr,
		"timings: template %.0f ms, clone (copy) %.0f ms, spare %.0f ms, clone (spare) "
		"%.1f ms, start->ready (2) %.0f ms\n",
		t1 - t0, t2 - t1, t3 - t2, t4 - t3, t6 - t5);

	/* The platform's root: a wrong password is refused at once. */
	double t7 = now_ms();
	assert_int_equal(mariadb_wait_ready(G.s[0].disk, "wrongpw", 120000, NULL, &err),
			 MIREN_EPERM);
	assert_true(now_ms() - t7 < 30000); /* at once, not after the wait */
	assert_null(strstr(err.message, "wrongpw"));

	/* Rotation, then again (retried step) with the old one gone. */
	for (int i = 0; i < 2; i++) {
		assert_int_equal(mariadb_rotate_root(G.s[i].disk, G.tpl_pw, G.s[i].root_pw, &err),
				 0);
		assert_int_equal(mariadb_rotate_root(G.s[i].disk, G.tpl_pw, G.s[i].root_pw, &err),
				 0);
		assert_int_equal(mariadb_wait_ready(G.s[i].disk, G.s[i].root_pw, 5000, NULL, &err),
				 0);
		assert_int_equal(mariadb_wait_ready(G.s[i].disk, G.tpl_pw, 5000, NULL, &err),
				 MIREN_EPERM);
		G.s[i].ready = true;
	}
}

static void test_root_kept(void **state)
{
	(void)state;
	REQUIRE_SERVERS();
	unsigned int why = 0;
	/* No root over TCP, no anonymous user, even with the right password. */
	assert_false(can_connect(G.s[0].addr, "root", G.s[0].root_pw, NULL));
	assert_false(can_connect(G.s[0].addr, "", "", NULL));
	assert_false(can_connect(G.s[0].addr, "miren", "", NULL));
	MYSQL *m = tcp_connect(G.s[0].addr, "", "", NULL, &why);
	assert_null(m);
	/* The accounts: root@localhost and the locked mariadb.sys, no test db. */
	char **dbs, **users;
	size_t nd, nu;
	struct miren_error err = { 0 };
	ok(mariadb_tenant_names(G.s[0].disk, G.s[0].root_pw, &dbs, &nd, &users, &nu, &err), &err);
	assert_int_equal(nd, 0);
	assert_int_equal(nu, 0);
	mariadb_names_free(dbs, nd);
	mariadb_names_free(users, nu);
}

static void test_tenants(void **state)
{
	(void)state;
	REQUIRE_SERVERS();
	struct miren_error err = { 0 };
	double t0 = now_ms();
	int rc = mariadb_tenant_create(G.s[0].disk, G.s[0].root_pw, "app_a", "app_a", PW_A, &err);
	if (rc)
		fprintf(stderr, "tenant: %s\n", err.message);
	assert_int_equal(rc, 0);
	fprintf(stderr, "timings: tenant create %.1f ms\n", now_ms() - t0);
	assert_int_equal(mariadb_tenant_create(G.s[0].disk, G.s[0].root_pw, "app_b", "app_b", PW_B,
					       &err),
			 0);
	assert_int_equal(mariadb_tenant_create(G.s[1].disk, G.s[1].root_pw, "app_c", "app_c", PW_C,
					       &err),
			 0);
	G.tenants_made = true;

	/* Each tenant works in its own database. */
	MYSQL *a = tcp_connect(G.s[0].addr, "app_a", PW_A, "app_a", NULL);
	MYSQL *b = tcp_connect(G.s[0].addr, "app_b", PW_B, "app_b", NULL);
	assert_non_null(a);
	assert_non_null(b);
	assert_int_equal(sql_err(a, "CREATE TABLE t (id INT PRIMARY KEY, v TEXT)"), 0);
	assert_int_equal(sql_err(a, "INSERT INTO t VALUES (1, 'secret of a')"), 0);
	assert_int_equal(sql_err(b, "CREATE TABLE t (id INT PRIMARY KEY, v TEXT)"), 0);
	assert_int_equal(sql_err(b, "INSERT INTO t VALUES (1, 'secret of b')"), 0);
	assert_value(a, "SELECT v FROM t", "secret of a");
	assert_value(a, "SELECT @@character_set_database", "utf8mb4");

	/* Isolation: a cannot see, connect to, read or write b's database. */
	assert_false(can_connect(G.s[0].addr, "app_a", PW_A, "app_b"));
	assert_false(can_connect(G.s[0].addr, "app_a", PW_B, "app_a"));
	assert_false(can_connect(G.s[0].addr, "app_b", PW_A, "app_b"));
	assert_int_not_equal(sql_err(a, "SELECT v FROM app_b.t"), 0);
	assert_int_not_equal(sql_err(a, "INSERT INTO app_b.t VALUES (2, 'from a')"), 0);
	assert_int_not_equal(sql_err(a, "DROP TABLE app_b.t"), 0);
	assert_int_not_equal(sql_err(a, "USE app_b"), 0);
	assert_int_not_equal(sql_err(a, "CREATE DATABASE other"), 0);
	assert_int_not_equal(sql_err(a, "SELECT * FROM mysql.global_priv"), 0);
	assert_int_not_equal(sql_err(a, "CREATE USER x IDENTIFIED BY 'y'"), 0);
	assert_int_not_equal(sql_err(a, "GRANT SELECT ON app_a.* TO app_b"), 0);
	assert_value(a, "SELECT LOAD_FILE('/etc/passwd') IS NULL", "1");
	assert_int_not_equal(sql_err(a, "SET GLOBAL max_connections = 1"), 0);
	assert_int_not_equal(sql_err(a, "SHUTDOWN"), 0);
	assert_value(a,
		     "SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME NOT IN "
		     "('information_schema', 'app_a')",
		     "0");
	assert_value(a,
		     "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = "
		     "'app_b'",
		     "0");
	assert_value(a,
		     "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE USER <> "
		     "'app_a'",
		     "0");
	assert_value(b, "SELECT COUNT(*) FROM t", "1");
	/* Nothing global: one USAGE line and one on its database. */
	assert_value(a,
		     "SELECT COUNT(*) FROM information_schema.USER_PRIVILEGES WHERE "
		     "PRIVILEGE_TYPE <> 'USAGE'",
		     "0");
	/* The dedicated server's tenant is not on the shared one. */
	assert_false(can_connect(G.s[0].addr, "app_c", PW_C, "app_c"));
	assert_true(can_connect(G.s[1].addr, "app_c", PW_C, "app_c"));
	mysql_close(a);
	mysql_close(b);

	/* Again: idempotent, new password, grants put back. */
	assert_int_equal(mariadb_tenant_create(G.s[0].disk, G.s[0].root_pw, "app_a", "app_a", PW_A2,
					       &err),
			 0);
	assert_false(can_connect(G.s[0].addr, "app_a", PW_A, "app_a"));
	a = tcp_connect(G.s[0].addr, "app_a", PW_A2, "app_a", NULL);
	assert_non_null(a);
	assert_value(a, "SELECT v FROM t", "secret of a"); /* data kept */
	mysql_close(a);
	assert_int_equal(mariadb_tenant_password(G.s[0].disk, G.s[0].root_pw, "app_a", PW_A, &err),
			 0);
	assert_true(can_connect(G.s[0].addr, "app_a", PW_A, "app_a"));
	assert_false(can_connect(G.s[0].addr, "app_a", PW_A2, "app_a"));

	char **dbs, **users;
	size_t nd, nu;
	ok(mariadb_tenant_names(G.s[0].disk, G.s[0].root_pw, &dbs, &nd, &users, &nu, &err), &err);
	assert_int_equal(nd, 2);
	assert_string_equal(dbs[0], "app_a");
	assert_string_equal(dbs[1], "app_b");
	assert_int_equal(nu, 2);
	assert_string_equal(users[1], "app_b");
	mariadb_names_free(dbs, nd);
	mariadb_names_free(users, nu);

	struct mariadb_info info;
	assert_int_equal(mariadb_info(G.s[0].disk, G.s[0].root_pw, "app_a", &info, &err), 0);
	assert_int_equal(strncmp(info.version, G.in.version, strlen(G.in.version)), 0);
	assert_true(info.size_bytes > 0);
	assert_int_equal(info.connections, 0);
	a = tcp_connect(G.s[0].addr, "app_a", PW_A, "app_a", NULL);
	assert_int_equal(mariadb_info(G.s[0].disk, G.s[0].root_pw, "app_a", &info, &err), 0);
	assert_int_equal(info.connections, 1);
	mysql_close(a);
}

static void test_client_file(void **state)
{
	(void)state;
	REQUIRE_SERVERS();
	struct miren_error err = { 0 };
	char path[400];
	snprintf(path, sizeof(path), "%s/client.cnf", G.tmp);
	char **argv = NULL;
	assert_int_equal(mariadb_client_file(&G.in, path, G.s[0].addr, G.port, "app_b", PW_B,
					     "app_b", (uid_t)-1, (gid_t)-1, &argv, &err),
			 0);
	struct stat st;
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	for (char **p = argv; *p; p++)
		assert_null(strstr(*p, PW_B));
	/* The client connects with it and lands in its database. */
	int fds[2];
	assert_int_equal(pipe(fds), 0);
	pid_t pid = fork();
	if (pid == 0) {
		char *full[] = { argv[0], argv[1], "-N", "-e", "SELECT DATABASE(), CURRENT_USER()",
				 NULL };
		dup2(fds[1], 1);
		close(fds[0]);
		if (!full[0]) /* no client: the parent finds no output */
			_exit(127);
		execv(full[0], full);
		_exit(127);
	}
	close(fds[1]);
	char out[256] = "";
	ssize_t n = read(fds[0], out, sizeof(out) - 1);
	out[n > 0 ? n : 0] = '\0';
	close(fds[0]);
	int status;
	waitpid(pid, &status, 0);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	assert_non_null(strstr(out, "app_b\tapp_b@%"));
	mariadb_argv_free(argv);
	unlink(path);
}

/* ---- backup under write load -------------------------------------------- */

static struct {
	atomic_bool stop;
	atomic_long committed; /* highest id whose COMMIT returned */
	atomic_int failed;
} W;

static void *writer(void *arg)
{
	(void)arg;
	MYSQL *m = tcp_connect(G.s[0].addr, "app_b", PW_B, "app_b", NULL);
	if (!m) {
		atomic_store(&W.failed, 1);
		return NULL;
	}
	char sql[256];
	for (long id = 1; !atomic_load(&W.stop); id++) {
		snprintf(sql, sizeof(sql),
			 "INSERT INTO rows_ (id, pad) VALUES (%ld, REPEAT('x', 200))", id);
		if (mysql_query(m, sql) != 0) {
			atomic_store(&W.failed, 1);
			break;
		}
		atomic_store(&W.committed, id);
	}
	mysql_close(m);
	return NULL;
}

static void test_backup_under_load(void **state)
{
	(void)state;
	REQUIRE_SERVERS();
	assert_true(G.tenants_made);
	struct miren_error err = { 0 };
	MYSQL *b = tcp_connect(G.s[0].addr, "app_b", PW_B, "app_b", NULL);
	assert_non_null(b);
	assert_int_equal(sql_err(b, "CREATE TABLE rows_ (id BIGINT PRIMARY KEY, pad TEXT) "
				    "ENGINE=InnoDB"),
			 0);
	mysql_close(b);

	pthread_t th;
	atomic_store(&W.stop, false);
	assert_int_equal(pthread_create(&th, NULL, writer, NULL), 0);
	while (atomic_load(&W.committed) < 200 && !atomic_load(&W.failed))
		usleep(1000);
	long before = atomic_load(&W.committed);
	char target[400];
	snprintf(target, sizeof(target), "%s/backup", G.tmp);
	double t0 = now_ms();
	int rc = mariadb_backup(&G.in, G.s[0].disk, G.s[0].root_pw, target, G.uid, G.gid, &err);
	double t1 = now_ms();
	long after = atomic_load(&W.committed);
	usleep(100000);
	atomic_store(&W.stop, true);
	pthread_join(th, NULL);
	if (rc)
		fprintf(stderr, "backup: %s\n", err.message);
	assert_int_equal(rc, 0);
	assert_false(atomic_load(&W.failed));
	assert_null(strstr(err.message, G.s[0].root_pw));
	char optfile[420];
	snprintf(optfile, sizeof(optfile), "%s.cnf", target);
	assert_false(fs_exists(optfile)); /* the option file with root's password went */

	/* Restore: prepare, put in a third disk, start, count. */
	rc = mariadb_backup_prepare(&G.in, target, G.uid, G.gid, &err);
	if (rc)
		fprintf(stderr, "prepare: %s\n", err.message);
	assert_int_equal(rc, 0);
	double t2 = now_ms();
	struct server *r = &G.s[2];
	assert_int_equal(fs_mkdir_p(r->disk, 0755), 0);
	char *data = mariadb_data_dir(r->disk);
	assert_int_equal(rename(target, data), 0);
	free(data);
	assert_int_equal(mariadb_run_dir_ensure(r->disk, G.uid, G.gid, &err), 0);
	r->pid = start_server(r);
	rc = mariadb_wait_ready(r->disk, G.s[0].root_pw, 180000, NULL, &err);
	if (rc) {
		fprintf(stderr, "restored: %s\n", err.message);
		dump_log(r);
	}
	assert_int_equal(rc, 0);
	fprintf(stderr,
		"timings: backup under load %.0f ms (%ld rows before, %ld after), prepare %.0f "
		"ms\n",
		t1 - t0, before, after, t2 - t1);
	MYSQL *rb = tcp_connect(r->addr, "app_b", PW_B, "app_b", NULL);
	assert_non_null(rb);
	char *max = sql_value(rb, "SELECT MAX(id) FROM rows_");
	char *count = sql_value(rb, "SELECT COUNT(*) FROM rows_");
	assert_non_null(max);
	assert_non_null(count);
	long nmax = atol(max), ncount = atol(count);
	fprintf(stderr, "restored rows: %ld (max id %ld)\n", ncount, nmax);
	/* Every row committed before the backup began, no gap, nothing
	 * committed after it ended. */
	assert_true(nmax >= before);
	assert_true(nmax <= after + 1);
	assert_int_equal(ncount, nmax);
	assert_value(rb, "SELECT v FROM t", "secret of b");
	free(max);
	free(count);
	mysql_close(rb);
	stop_server(r);
}

/* A dump of b's database as b, loaded as a third tenant into its own fresh
 * database on the same server, gives that database b's rows (the dump
 * names no database: it lands where the loading tenant is). */
static void test_dump_load(void **state)
{
	(void)state;
	REQUIRE_SERVERS();
	struct miren_error err = { 0 };
	char path[400];
	snprintf(path, sizeof(path), "%s/b.sql", G.tmp);
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	ok(mariadb_dump(&G.in, G.s[0].addr, G.port, "app_b", PW_B, "app_b", fd, &err), &err);
	assert_true(lseek(fd, 0, SEEK_END) > 0);
	ok(mariadb_tenant_create(G.s[0].disk, G.s[0].root_pw, "app_d", "app_d", PW_C, &err), &err);
	lseek(fd, 0, SEEK_SET);
	ok(mariadb_load(&G.in, G.s[0].addr, G.port, "app_d", PW_C, "app_d", fd, &err), &err);
	close(fd);
	MYSQL *d = tcp_connect(G.s[0].addr, "app_d", PW_C, "app_d", NULL);
	assert_non_null(d);
	assert_value(d, "SELECT v FROM t", "secret of b");
	mysql_close(d);
	/* A bad password: an error without it. */
	fd = open(path, O_RDONLY);
	assert_int_not_equal(mariadb_load(&G.in, G.s[0].addr, G.port, "app_d", "wrongpw123",
					  "app_d", fd, &err),
			     0);
	close(fd);
	assert_null(strstr(err.message, "wrongpw123"));
	ok(mariadb_tenant_drop(G.s[0].disk, G.s[0].root_pw, "app_d", "app_d", &err), &err);
}

static void test_tenant_drop(void **state)
{
	(void)state;
	REQUIRE_SERVERS();
	struct miren_error err = { 0 };
	MYSQL *b = tcp_connect(G.s[0].addr, "app_b", PW_B, "app_b", NULL);
	assert_non_null(b);
	assert_int_equal(mariadb_tenant_drop(G.s[0].disk, G.s[0].root_pw, "app_b", "app_b", &err),
			 0);
	/* Its session was ended, it cannot come back, its data is gone. */
	assert_int_not_equal(sql_err(b, "SELECT 1"), 0);
	mysql_close(b);
	assert_false(can_connect(G.s[0].addr, "app_b", PW_B, NULL));
	assert_int_equal(mariadb_tenant_drop(G.s[0].disk, G.s[0].root_pw, "app_b", "app_b", &err),
			 0); /* again: fine */
	char **dbs, **users;
	size_t nd, nu;
	ok(mariadb_tenant_names(G.s[0].disk, G.s[0].root_pw, &dbs, &nd, &users, &nu, &err), &err);
	assert_int_equal(nd, 1);
	assert_string_equal(dbs[0], "app_a");
	assert_int_equal(nu, 1);
	mariadb_names_free(dbs, nd);
	mariadb_names_free(users, nu);
	/* The other tenant keeps working. */
	assert_true(can_connect(G.s[0].addr, "app_a", PW_A, "app_a"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ident),         cmocka_unit_test(test_argv),
		cmocka_unit_test(test_bad_arguments), cmocka_unit_test(test_template_and_start),
		cmocka_unit_test(test_root_kept),     cmocka_unit_test(test_tenants),
		cmocka_unit_test(test_client_file),   cmocka_unit_test(test_backup_under_load),
		cmocka_unit_test(test_dump_load),     cmocka_unit_test(test_tenant_drop),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
