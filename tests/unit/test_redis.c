/*
 * Integration tests of lib/addon/redis against a real redis-server: a
 * server directory made by redis_server_init in a temporary directory,
 * started on a loopback address; readiness, the files' modes and secrets,
 * the default user, the rules of a small (owner) tenant and the isolation
 * of shared (prefixed) tenants checked over hiredis as the tenants
 * themselves; rotation, drop, snapshot and restore, info, orphans.
 *
 * As root, files are given to and servers run as the user "miren"; as an
 * ordinary user everything runs as that user.  Servers are started with
 * fork/exec (the provider uses the supervisor) and stopped in the group
 * teardown, which also removes the temporary directory, even after a
 * failed assertion.  Skips the server tests when Redis is not installed.
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
#include <hiredis/hiredis.h>
#include <netinet/in.h>
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

#include "addon/redis/redis.h"
#include "util/err.h"
#include "util/fs.h"
#include "util/sha256.h"
#include "util/strbuf.h"

struct server {
	char disk[512];
	char addr[32];
	char log[560];
	pid_t pid;
};

static struct {
	char tmp[256];
	bool have_redis;
	uid_t uid;
	gid_t gid;
	int port;
	struct server s[3];
	redisContext *conns[16];
} G;

static const char *const ADMIN_PW = "AdminPassword0123456789abcdef";
static const char *const PW_A = "PasswordOfTenantA0123456789";
static const char *const PW_A2 = "PasswordOfTenantA2xyzxyzxyz";
static const char *const PW_B = "PasswordOfTenantB0123456789";

/* ---- helpers ------------------------------------------------------------ */

static bool port_free(const char *addr, int port)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return false;
	int one = 1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	inet_pton(AF_INET, addr, &sa.sin_addr);
	bool ok = bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
	close(fd);
	return ok;
}

static int pick_port(void)
{
	bool all = true;
	for (int i = 0; i < 3; i++)
		all = all && port_free(G.s[i].addr, REDIS_PORT);
	if (all)
		return REDIS_PORT;
	srand((unsigned)getpid() ^ (unsigned)time(NULL));
	for (int k = 0; k < 200; k++) {
		int p = 20000 + rand() % 40000;
		all = true;
		for (int i = 0; i < 3; i++)
			all = all && port_free(G.s[i].addr, p);
		if (all)
			return p;
	}
	return -1;
}

static pid_t start_server(struct server *s)
{
	char **argv = redis_server_argv(s->disk);
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
		if (chdir(s->disk) != 0)
			_exit(123);
		char *env[] = { "PATH=/usr/bin:/bin", NULL };
		execve(argv[0], argv, env);
		_exit(127);
	}
	redis_argv_free(argv);
	s->pid = pid;
	return pid;
}

static void stop_server(struct server *s)
{
	if (s->pid <= 0)
		return;
	kill(s->pid, SIGTERM);
	int status;
	for (int i = 0; i < 1000; i++) {
		pid_t r = waitpid(s->pid, &status, WNOHANG);
		if (r == s->pid || (r < 0 && errno != EINTR)) {
			s->pid = 0;
			return;
		}
		usleep(10000);
	}
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

static struct redis_conf conf_of(const struct server *s, int databases)
{
	return (struct redis_conf){ .address = s->addr,
				    .port = G.port,
				    .maxmemory = 64LL * 1024 * 1024,
				    .databases = databases };
}

/* Makes, starts and waits for server i. */
static void server_up(int i, int databases)
{
	struct server *s = &G.s[i];
	struct redis_conf conf = conf_of(s, databases);
	struct miren_error err = { 0 };
	if (redis_server_init(s->disk, &conf, ADMIN_PW, G.uid, G.gid, &err))
		fail_msg("init: %s", err.message);
	start_server(s);
	if (redis_wait_ready(s->addr, G.port, ADMIN_PW, 10000, NULL, &err)) {
		dump_log(s);
		fail_msg("ready: %s", err.message);
	}
}

#define REQUIRE_REDIS()                                              \
	do {                                                         \
		if (!G.have_redis) {                                 \
			printf("skipped: Redis is not installed\n"); \
			skip();                                      \
		}                                                    \
	} while (0)

static redisContext *track(redisContext *c)
{
	for (size_t i = 0; i < sizeof(G.conns) / sizeof(G.conns[0]); i++)
		if (!G.conns[i]) {
			G.conns[i] = c;
			return c;
		}
	fail_msg("too many open test connections");
	return c;
}

static void done(redisContext *c)
{
	for (size_t i = 0; i < sizeof(G.conns) / sizeof(G.conns[0]); i++)
		if (G.conns[i] == c)
			G.conns[i] = NULL;
	redisFree(c);
}

static int conn_teardown(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(G.conns) / sizeof(G.conns[0]); i++) {
		if (G.conns[i])
			redisFree(G.conns[i]);
		G.conns[i] = NULL;
	}
	return 0;
}

/*
 * Runs a command given as words separated by single spaces (no word holds
 * a space here) and returns its reply as text in a static buffer: status
 * and string replies as they are, integers as digits, arrays as
 * "[n]", nil as "(nil)", errors as "ERR: <text>", a lost connection as
 * "LOST".
 */
static const char *cmd(redisContext *c, const char *line)
{
	static char out[512];
	char copy[512];
	snprintf(copy, sizeof(copy), "%s", line);
	const char *argv[32];
	int argc = 0;
	for (char *save = NULL, *w = strtok_r(copy, " ", &save); w && argc < 32;
	     w = strtok_r(NULL, " ", &save))
		argv[argc++] = w;
	redisReply *r = redisCommandArgv(c, argc, argv, NULL);
	if (!r) {
		snprintf(out, sizeof(out), "LOST");
		return out;
	}
	switch (r->type) {
	case REDIS_REPLY_ERROR:
		snprintf(out, sizeof(out), "ERR: %s", r->str);
		break;
	case REDIS_REPLY_STATUS:
	case REDIS_REPLY_STRING:
		snprintf(out, sizeof(out), "%s", r->str);
		break;
	case REDIS_REPLY_INTEGER:
		snprintf(out, sizeof(out), "%lld", r->integer);
		break;
	case REDIS_REPLY_ARRAY:
		snprintf(out, sizeof(out), "[%zu]", r->elements);
		break;
	default:
		snprintf(out, sizeof(out), "(nil)");
	}
	freeReplyObject(r);
	return out;
}

/* A connection to server i, logged in as user (NULL: no AUTH). */
static redisContext *login(int i, const char *user, const char *pw)
{
	struct timeval tv = { 5, 0 };
	redisContext *c = redisConnectWithTimeout(G.s[i].addr, G.port, tv);
	assert_non_null(c);
	assert_int_equal(c->err, 0);
	redisSetTimeout(c, tv);
	track(c);
	if (user) {
		char line[200];
		snprintf(line, sizeof(line), "AUTH %s %s", user, pw);
		const char *r = cmd(c, line);
		if (strcmp(r, "OK"))
			fail_msg("AUTH %s: %s", user, r);
	}
	return c;
}

static bool can_login(int i, const char *user, const char *pw)
{
	redisContext *c = login(i, NULL, NULL);
	char line[200];
	snprintf(line, sizeof(line), "AUTH %s %s", user, pw);
	bool ok = !strcmp(cmd(c, line), "OK");
	done(c);
	return ok;
}

static void expect(redisContext *c, const char *line, const char *want)
{
	const char *got = cmd(c, line);
	if (strcmp(got, want))
		fail_msg("%s: got '%s', want '%s'", line, got, want);
}

/* The reply is an error beginning with "ERR: " + prefix. */
static void expect_err(redisContext *c, const char *line, const char *prefix)
{
	const char *got = cmd(c, line);
	char want[64];
	snprintf(want, sizeof(want), "ERR: %s", prefix);
	if (strncmp(got, want, strlen(want)))
		fail_msg("%s: got '%s', want an error %s...", line, got, prefix);
}

static int group_setup(void **state)
{
	(void)state;
	memset(&G, 0, sizeof(G));
	G.uid = (uid_t)-1;
	G.gid = (gid_t)-1;
	char version[32];
	G.have_redis = redis_installed_version(version, NULL) == 0;
	if (geteuid() == 0) {
		struct passwd *pw = getpwnam("miren");
		if (!pw) {
			fprintf(stderr, "test_redis: running as root needs the user miren\n");
			G.have_redis = false;
		} else {
			G.uid = pw->pw_uid;
			G.gid = pw->pw_gid;
		}
	}
	const char *tmpdir = getenv("TMPDIR");
	snprintf(G.tmp, sizeof(G.tmp), "%s/miren-test-redis-XXXXXX",
		 tmpdir && *tmpdir ? tmpdir : "/tmp");
	if (!mkdtemp(G.tmp))
		return -1;
	chmod(G.tmp, 0755); /* the service user must traverse it */
	char disks[300];
	snprintf(disks, sizeof(disks), "%s/disks", G.tmp);
	mkdir(disks, 0755);
	for (int i = 0; i < 3; i++) {
		struct server *s = &G.s[i];
		snprintf(s->disk, sizeof(s->disk), "%s/disks/d%d", G.tmp, i);
		snprintf(s->log, sizeof(s->log), "%s/server%d.log", G.tmp, i);
		snprintf(s->addr, sizeof(s->addr), "127.77.251.%d", i + 1);
	}
	G.port = pick_port();
	if (G.port < 0)
		G.have_redis = false;
	return 0;
}

static int group_teardown(void **state)
{
	(void)state;
	for (int i = 0; i < 3; i++)
		stop_server(&G.s[i]);
	if (G.tmp[0] && getenv("REDIS_TEST_KEEP") == NULL)
		fs_remove_tree(G.tmp);
	return 0;
}

/* ---- pure tests --------------------------------------------------------- */

static void test_user_for_app(void **state)
{
	(void)state;
	char out[64];
	struct miren_error err = { 0 };
	assert_int_equal(redis_user_for_app("web", out, &err), 0);
	assert_string_equal(out, "web");
	assert_int_equal(redis_user_for_app("default", out, &err), 0);
	assert_string_equal(out, "app_default");
	assert_int_equal(redis_user_for_app("my-app2", out, &err), 0);
	assert_string_equal(out, "my-app2");
	assert_int_equal(redis_user_for_app("Bad", out, &err), MIREN_EINVAL);
	assert_int_equal(redis_user_for_app("a b", out, &err), MIREN_EINVAL);
	assert_int_equal(redis_user_for_app("", out, &err), MIREN_EINVAL);
}

static void test_argv(void **state)
{
	(void)state;
	char **a = redis_server_argv("/d/x");
	assert_string_equal(a[0], "/bin/sh");
	assert_string_equal(a[3], "/usr/bin/redis-server");
	assert_string_equal(a[4], "/d/x/redis.conf");
	assert_null(a[5]);
	redis_argv_free(a);
	a = redis_connect_argv("127.1.2.3", 6379, "web");
	const char *want[] = {
		"/usr/bin/redis-cli", "-h", "127.1.2.3", "-p", "6379", "--user", "web"
	};
	for (int i = 0; i < 7; i++)
		assert_string_equal(a[i], want[i]);
	assert_null(a[7]);
	redis_argv_free(a);
	assert_string_equal(REDIS_CONNECT_PASSWORD_ENV, "REDISCLI_AUTH");
}

static void test_bad_arguments(void **state)
{
	(void)state;
	struct miren_error err = { 0 };
	struct redis_conf conf = conf_of(&G.s[2], 1);
	/* A short admin password is refused before anything is written. */
	assert_int_equal(redis_server_init(G.s[2].disk, &conf, "short", G.uid, G.gid, &err),
			 MIREN_EINVAL);
	assert_false(fs_exists(G.s[2].disk));
	/* Names that are not tenant users, prefixes with glob characters. */
	assert_int_equal(redis_tenant_create("127.0.0.1", 1, ADMIN_PW, "default", PW_A,
					     REDIS_TENANT_OWNER, NULL, &err),
			 MIREN_EINVAL);
	assert_int_equal(redis_tenant_create("127.0.0.1", 1, ADMIN_PW, REDIS_ADMIN_USER, PW_A,
					     REDIS_TENANT_OWNER, NULL, &err),
			 MIREN_EINVAL);
	assert_int_equal(redis_tenant_create("127.0.0.1", 1, ADMIN_PW, "a", PW_A,
					     REDIS_TENANT_PREFIXED, "a*", &err),
			 MIREN_EINVAL);
	assert_int_equal(redis_tenant_create("127.0.0.1", 1, ADMIN_PW, "a", "pw",
					     REDIS_TENANT_OWNER, NULL, &err),
			 MIREN_EINVAL);
	assert_int_equal(redis_tenant_drop("127.0.0.1", 1, ADMIN_PW, "default", NULL, &err),
			 MIREN_EINVAL);
	/* Nobody listens: unavailable, and no password in the message. */
	assert_int_equal(redis_wait_ready("127.77.251.9", 1, ADMIN_PW, 50, NULL, &err),
			 MIREN_EUNAVAIL);
	assert_null(strstr(err.message, ADMIN_PW));
}

/* ---- server tests ------------------------------------------------------- */

static void test_files(void **state)
{
	(void)state;
	REQUIRE_REDIS();
	struct server *s = &G.s[0];
	struct redis_conf conf = conf_of(s, 16);
	struct miren_error err = { 0 };
	assert_int_equal(redis_server_init(s->disk, &conf, ADMIN_PW, G.uid, G.gid, &err), 0);
	char path[600];
	struct stat st;
	const char *files[] = { "redis.conf", "users.acl" };
	for (int i = 0; i < 2; i++) {
		snprintf(path, sizeof(path), "%s/%s", s->disk, files[i]);
		assert_int_equal(stat(path, &st), 0);
		assert_int_equal(st.st_mode & 0777, 0600);
		if (G.uid != (uid_t)-1)
			assert_int_equal(st.st_uid, G.uid);
	}
	snprintf(path, sizeof(path), "%s/data", s->disk);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0700);
	/* The ACL file holds the admin password's SHA-256, never the password. */
	struct strbuf sb = STRBUF_INIT;
	snprintf(path, sizeof(path), "%s/users.acl", s->disk);
	assert_int_equal(strbuf_read_file(&sb, path), 0);
	char hex[65];
	sha256_hex(ADMIN_PW, strlen(ADMIN_PW), hex);
	assert_non_null(strstr(sb.buf, hex));
	assert_null(strstr(sb.buf, ADMIN_PW));
	assert_non_null(strstr(sb.buf, "user default off"));
	/* A tenant's line survives a rewrite with another admin password; the
	 * old admin line does not. */
	strbuf_adds(&sb, "user web on #0000 ~* +@all\n");
	assert_int_equal(fs_write_atomic(path, sb.buf, sb.len, 0600), 0);
	assert_int_equal(redis_server_init(s->disk, &conf, "OtherAdminPassword012345", G.uid, G.gid,
					   &err),
			 0);
	strbuf_reset(&sb);
	assert_int_equal(strbuf_read_file(&sb, path), 0);
	assert_non_null(strstr(sb.buf, "user web on #0000 ~* +@all\n"));
	assert_null(strstr(sb.buf, hex));
	/* Back to the test's password, and the web line removed again. */
	assert_int_equal(fs_write_atomic(path, "", 0, 0600), 0);
	assert_int_equal(redis_server_init(s->disk, &conf, ADMIN_PW, G.uid, G.gid, &err), 0);
	strbuf_reset(&sb);
	snprintf(path, sizeof(path), "%s/redis.conf", s->disk);
	assert_int_equal(strbuf_read_file(&sb, path), 0);
	assert_non_null(strstr(sb.buf, "enable-debug-command no\n"));
	assert_non_null(strstr(sb.buf, "enable-module-command no\n"));
	assert_non_null(strstr(sb.buf, "appendonly yes\n"));
	strbuf_release(&sb);
}

static void test_start_and_default_user(void **state)
{
	(void)state;
	REQUIRE_REDIS();
	server_up(0, 16);
	struct miren_error err = { 0 };
	/* A wrong password ends the wait at once. */
	assert_int_equal(redis_wait_ready(G.s[0].addr, G.port, "WrongPassword0123456789", 10000,
					  NULL, &err),
			 MIREN_EPERM);
	assert_null(strstr(err.message, "WrongPassword"));
	/* Without a login nothing works; "default" cannot log in. */
	redisContext *c = login(0, NULL, NULL);
	expect_err(c, "GET x", "NOAUTH");
	expect_err(c, "SET x 1", "NOAUTH");
	expect_err(c, "AUTH default nopass", "WRONGPASS");
	done(c);
	/* The admin can do everything but DEBUG and MODULE (off for all). */
	c = login(0, REDIS_ADMIN_USER, ADMIN_PW);
	expect(c, "SET x 1", "OK");
	expect(c, "DEL x", "1");
	expect_err(c, "DEBUG SLEEP 0", "ERR DEBUG command not allowed");
	expect_err(c, "MODULE LOAD /nonexistent.so", "ERR MODULE command not allowed");
	done(c);
	struct redis_info info;
	assert_int_equal(redis_info(G.s[0].addr, G.port, ADMIN_PW, &info, &err), 0);
	assert_int_equal(strncmp(info.version, "7.", 2), 0);
	assert_true(info.used_memory > 0);
	assert_true(info.clients >= 1);
	assert_int_equal(info.maxmemory, 64LL * 1024 * 1024);
}

/* The commands no app user may run on either variant. */
static const char *const admin_commands[] = {
	"CONFIG GET maxmemory",
	"CONFIG SET maxmemory 0",
	"SHUTDOWN NOSAVE",
	"MODULE LIST",
	"ACL LIST",
	"ACL SETUSER x",
	"ACL USERS",
	"MONITOR",
	"CLIENT LIST",
	"CLIENT KILL ID 1",
	"MIGRATE 127.0.0.1 1 k 0 10",
	"SAVE",
	"BGSAVE",
	"BGREWRITEAOF",
	"REPLICAOF 127.0.0.1 1",
	"SLOWLOG GET",
	"LATENCY LATEST",
	"LASTSAVE",
	"SWAPDB 0 1",
	"RESTORE k 0 x",
	"CLIENT PAUSE 10",
	"FAILOVER",
	"ROLE",
};

static void test_owner_tenant(void **state)
{
	(void)state;
	REQUIRE_REDIS();
	struct miren_error err = { 0 };
	const char *a = G.s[0].addr;
	assert_int_equal(redis_tenant_create(a, G.port, ADMIN_PW, "web", PW_A, REDIS_TENANT_OWNER,
					     NULL, &err),
			 0);
	redisContext *c = login(0, "web", PW_A);
	expect(c, "SET anykey 1", "OK");
	expect(c, "GET anykey", "1");
	expect(c, "KEYS *", "[1]");
	expect(c, "SCAN 0", "[2]");
	expect(c, "SELECT 1", "OK");
	expect(c, "SET k 2", "OK");
	expect(c, "FLUSHDB", "OK");
	expect(c, "SELECT 0", "OK");
	expect(c, "DBSIZE", "1");
	expect(c, "PUBLISH any 1", "0");
	for (size_t i = 0; i < sizeof(admin_commands) / sizeof(*admin_commands); i++)
		expect_err(c, admin_commands[i], "NOPERM");
	/* DEBUG is off for every user (the server says so before the ACL). */
	expect_err(c, "DEBUG SLEEP 0", "ERR DEBUG command not allowed");
	done(c);
	/* ACL SAVE and the append-only file keep files private (umask 077). */
	char path[600];
	struct stat st;
	snprintf(path, sizeof(path), "%s/users.acl", G.s[0].disk);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	snprintf(path, sizeof(path), "%s/data/appendonlydir/appendonly.aof.manifest", G.s[0].disk);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	/* Again (idempotent), and the data is untouched. */
	assert_int_equal(redis_tenant_create(a, G.port, ADMIN_PW, "web", PW_A, REDIS_TENANT_OWNER,
					     NULL, &err),
			 0);
	c = login(0, "web", PW_A);
	expect(c, "GET anykey", "1");
	done(c);
	/* The server outlives a restart with its users (the ACL file). */
	stop_server(&G.s[0]);
	server_up(0, 16);
	assert_true(can_login(0, "web", PW_A));
	c = login(0, "web", PW_A);
	expect(c, "GET anykey", "1"); /* the append-only file */
	done(c);
}

static void test_rotate(void **state)
{
	(void)state;
	REQUIRE_REDIS();
	struct miren_error err = { 0 };
	redisContext *old = login(0, "web", PW_A);
	assert_int_equal(redis_tenant_create(G.s[0].addr, G.port, ADMIN_PW, "web", PW_A2,
					     REDIS_TENANT_OWNER, NULL, &err),
			 0);
	assert_false(can_login(0, "web", PW_A));
	assert_true(can_login(0, "web", PW_A2));
	expect(old, "GET anykey", "1"); /* an open session stays */
	done(old);
}

static void shared_up(void)
{
	if (G.s[1].pid > 0)
		return;
	server_up(1, 1);
	struct miren_error err = { 0 };
	if (redis_tenant_create(G.s[1].addr, G.port, ADMIN_PW, "app-a", PW_A, REDIS_TENANT_PREFIXED,
				"app-a:", &err) ||
	    redis_tenant_create(G.s[1].addr, G.port, ADMIN_PW, "app-b", PW_B, REDIS_TENANT_PREFIXED,
				"app-b:", &err))
		fail_msg("tenants: %s", err.message);
}

/*
 * Shared: a tenant cannot read, write, list or delete another's keys, nor
 * use its channels, and every command that would reveal or change what
 * others hold fails with NOPERM (ACL key patterns do not filter SCAN or
 * KEYS: both are refused whole).
 */
static void test_shared_isolation(void **state)
{
	(void)state;
	REQUIRE_REDIS();
	shared_up();
	redisContext *a = login(1, "app-a", PW_A);
	redisContext *b = login(1, "app-b", PW_B);
	expect(b, "SET app-b:secret 42", "OK");
	expect(b, "HSET app-b:h f v", "1");
	expect(a, "SET app-a:x 1", "OK");
	expect(a, "GET app-a:x", "1");
	expect(a, "HSET app-a:h f v", "1");
	expect(a, "HSCAN app-a:h 0", "[2]");
	assert_int_equal(strncmp(cmd(a, "MEMORY USAGE app-a:x"), "ERR", 3) != 0, 1);
	expect(a, "CLIENT SETNAME a", "OK");
	expect(a, "EVAL return(redis.call('GET',KEYS[1])) 1 app-a:x", "1");
	expect(a, "PUBLISH app-a:chan hi", "0");
	expect(a, "COPY app-a:x app-a:y", "1");
	/* Other tenants' keys and keys outside the prefix. */
	const char *cross[] = {
		"GET app-b:secret",
		"SET app-b:secret 0",
		"DEL app-b:secret",
		"UNLINK app-b:secret",
		"EXISTS app-b:secret",
		"TYPE app-b:secret",
		"TTL app-b:secret",
		"EXPIRE app-b:secret 1",
		"RENAME app-a:x app-b:x",
		"COPY app-b:secret app-a:z",
		"HGETALL app-b:h",
		"HSCAN app-b:h 0",
		"DUMP app-b:secret",
		"SET nokey 1",
		"GET app-bx",
		"MGET app-a:x app-b:secret",
		"PUBLISH app-b:chan hi",
		"SUBSCRIBE app-b:chan",
		"PSUBSCRIBE *",
		"MEMORY USAGE app-b:secret",
		"EVAL return(redis.call('GET',KEYS[1])) 1 app-b:secret",
	};
	for (size_t i = 0; i < sizeof(cross) / sizeof(*cross); i++)
		expect_err(a, cross[i], "NOPERM");
	/* A script naming another's key in its body, not in KEYS: refused. */
	const char *got = cmd(a, "EVAL return(redis.call('GET','app-b:secret')) 0");
	if (!strstr(got, "can't access at least one of the keys"))
		fail_msg("a script read another tenant's key: %s", got);
	/* Listing, whole-server and cross-database commands. */
	const char *listing[] = {
		"KEYS *",
		"KEYS app-a:*",
		"SCAN 0",
		"SCAN 0 MATCH app-a:*",
		"RANDOMKEY",
		"DBSIZE",
		"FLUSHDB",
		"FLUSHALL",
		"SELECT 0",
		"SELECT 1",
		"MOVE app-a:x 1",
		"OBJECT ENCODING app-a:x",
		"INFO",
		"INFO keyspace",
		"PUBSUB CHANNELS",
		"FUNCTION LIST",
		"FUNCTION FLUSH",
		"SCRIPT FLUSH",
		"SCRIPT KILL",
		"MEMORY STATS",
		"CLIENT TRACKING on BCAST",
		"SORT app-a:l",
		"SORT_RO app-a:l",
		"ACL WHOAMI",
	};
	for (size_t i = 0; i < sizeof(listing) / sizeof(*listing); i++)
		expect_err(a, listing[i], "NOPERM");
	for (size_t i = 0; i < sizeof(admin_commands) / sizeof(*admin_commands); i++)
		expect_err(a, admin_commands[i], "NOPERM");
	expect_err(a, "DEBUG SLEEP 0", "ERR DEBUG command not allowed");
	/* B's data is as it was. */
	expect(b, "GET app-b:secret", "42");
	expect(b, "GET app-a:x",
	       "ERR: NOPERM this user has no permissions to access one of the keys used as "
	       "arguments");
	done(b);
	done(a);
	/* One database only: even the admin cannot select another. */
	redisContext *adm = login(1, REDIS_ADMIN_USER, ADMIN_PW);
	expect_err(adm, "SELECT 1", "ERR");
	done(adm);
	/* The tenant list. */
	char **users;
	size_t n;
	struct miren_error err = { 0 };
	assert_int_equal(redis_tenant_users(G.s[1].addr, G.port, ADMIN_PW, &users, &n, &err), 0);
	assert_int_equal(n, 2);
	assert_string_equal(users[0], "app-a");
	assert_string_equal(users[1], "app-b");
	redis_strv_free(users, n);
}

static void test_shared_drop(void **state)
{
	(void)state;
	REQUIRE_REDIS();
	shared_up();
	struct miren_error err = { 0 };
	redisContext *a = login(1, "app-a", PW_A);
	/* Enough keys for several SCAN batches. */
	for (int i = 0; i < 1200; i++) {
		char line[64];
		snprintf(line, sizeof(line), "SET app-a:k%d %d", i, i);
		expect(a, line, "OK");
	}
	redisContext *adm = login(1, REDIS_ADMIN_USER, ADMIN_PW);
	expect(adm, "SET app-ab:other 1", "OK"); /* a key of no tenant "app-a" */
	assert_int_equal(redis_tenant_drop(G.s[1].addr, G.port, ADMIN_PW, "app-a", "app-a:", &err),
			 0);
	/* Its session is closed, it cannot log in, its keys are gone. */
	const char *r = cmd(a, "GET app-a:x");
	assert_true(!strcmp(r, "LOST") || !strncmp(r, "ERR:", 4));
	done(a);
	assert_false(can_login(1, "app-a", PW_A));
	expect(adm, "SCAN 0 MATCH app-a:* COUNT 100000", "[2]");
	redisReply *rep = redisCommand(adm, "SCAN 0 MATCH app-a:* COUNT 100000");
	assert_non_null(rep);
	assert_int_equal(rep->element[1]->elements, 0);
	freeReplyObject(rep);
	expect(adm, "GET app-ab:other", "1");
	expect(adm, "GET app-b:secret", "42");
	done(adm);
	assert_true(can_login(1, "app-b", PW_B));
	/* Again: nothing left to drop is fine. */
	assert_int_equal(redis_tenant_drop(G.s[1].addr, G.port, ADMIN_PW, "app-a", "app-a:", &err),
			 0);
	/* And it comes back clean. */
	assert_int_equal(redis_tenant_create(G.s[1].addr, G.port, ADMIN_PW, "app-a", PW_A,
					     REDIS_TENANT_PREFIXED, "app-a:", &err),
			 0);
	assert_true(can_login(1, "app-a", PW_A));
}

/*
 * A logical dump of one shared tenant holds its keys only (with their
 * TTLs) and loads back; loaded into another tenant (a fork), its keys
 * are renamed into that tenant's prefix and the first keeps its own; a
 * load refuses keys outside the dump's prefix (or, for a dump without a
 * PREFIX line, the tenant's) and commands other than RESTORE.
 */
static void test_dump_load(void **state)
{
	(void)state;
	REQUIRE_REDIS();
	shared_up();
	struct miren_error err = { 0 };
	redisContext *b = login(1, "app-b", PW_B);
	expect(b, "SET app-b:d1 one", "OK");
	expect(b, "SET app-b:d2 two PX 600000", "OK");
	expect(b, "RPUSH app-b:l x y z", "3");
	char path[600];
	snprintf(path, sizeof(path), "%s/b.dump", G.tmp);
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(redis_tenant_dump(G.s[1].addr, G.port, ADMIN_PW, "app-b:", fd, &err), 0);
	struct strbuf sb = STRBUF_INIT;
	assert_int_equal(strbuf_read_file(&sb, path), 0);
	assert_non_null(memmem(sb.buf, sb.len, "app-b:d1", 8));
	assert_null(memmem(sb.buf, sb.len, "app-a:", 6)); /* another tenant's keys are not in it */
	expect(b, "DEL app-b:d1 app-b:d2 app-b:l", "3");
	expect(b, "SET app-b:since x", "OK"); /* not in the dump: the load removes it */
	lseek(fd, 0, SEEK_SET);
	assert_int_equal(redis_tenant_load(G.s[1].addr, G.port, ADMIN_PW, "app-b:", fd, &err), 0);
	close(fd);
	expect(b, "GET app-b:d1", "one");
	expect(b, "EXISTS app-b:since", "0");
	expect(b, "LRANGE app-b:l 0 -1", "[3]");
	const char *ttl = cmd(b, "PTTL app-b:d2");
	assert_true(atoll(ttl) > 0 && atoll(ttl) <= 600000);
	/* B's dump loaded as A's: B's keys renamed into A's prefix, B's own
	 * untouched. */
	fd = open(path, O_RDONLY);
	assert_int_equal(redis_tenant_load(G.s[1].addr, G.port, ADMIN_PW, "app-a:", fd, &err), 0);
	close(fd);
	redisContext *a = login(1, "app-a", PW_A);
	expect(a, "GET app-a:d1", "one");
	expect(a, "LRANGE app-a:l 0 -1", "[3]");
	expect(a, "SET app-a:d1 changed", "OK");
	expect(b, "GET app-b:d1", "one");
	done(a);
	/* Written without a PREFIX line (an older dump): its keys must be the
	 * tenant's; B's refused as A's, nothing changed. */
	const char *old = "*5\r\n$7\r\nRESTORE\r\n$8\r\napp-b:zz\r\n$1\r\n0\r\n$1\r\nx\r\n"
			  "$7\r\nREPLACE\r\n";
	snprintf(path, sizeof(path), "%s/old.dump", G.tmp);
	assert_int_equal(fs_write_atomic(path, old, strlen(old), 0600), 0);
	fd = open(path, O_RDONLY);
	assert_int_equal(redis_tenant_load(G.s[1].addr, G.port, ADMIN_PW, "app-a:", fd, &err),
			 MIREN_EINVAL);
	assert_non_null(strstr(err.message, "outside the prefix"));
	close(fd);
	/* A PREFIX line that does not hold its keys: refused. */
	const char *lying = "*2\r\n$6\r\nPREFIX\r\n$6\r\napp-c:\r\n"
			    "*5\r\n$7\r\nRESTORE\r\n$8\r\napp-b:zz\r\n$1\r\n0\r\n$1\r\nx\r\n"
			    "$7\r\nREPLACE\r\n";
	snprintf(path, sizeof(path), "%s/lying.dump", G.tmp);
	assert_int_equal(fs_write_atomic(path, lying, strlen(lying), 0600), 0);
	fd = open(path, O_RDONLY);
	assert_int_equal(redis_tenant_load(G.s[1].addr, G.port, ADMIN_PW, "app-a:", fd, &err),
			 MIREN_EINVAL);
	assert_non_null(strstr(err.message, "outside its prefix 'app-c:'"));
	close(fd);
	expect(b, "GET app-b:d1", "one"); /* the refused loads changed nothing */
	/* Not a RESTORE. */
	const char *evil = "*2\r\n$8\r\nFLUSHALL\r\n$5\r\nASYNC\r\n";
	snprintf(path, sizeof(path), "%s/evil.dump", G.tmp);
	assert_int_equal(fs_write_atomic(path, evil, strlen(evil), 0600), 0);
	fd = open(path, O_RDONLY);
	assert_int_equal(redis_tenant_load(G.s[1].addr, G.port, ADMIN_PW, NULL, fd, &err),
			 MIREN_EINVAL);
	close(fd);
	expect(b, "GET app-b:d1", "one");
	/* Truncated (in the middle of its last command). */
	sb.len -= 3;
	sb.buf[sb.len] = '\0';
	snprintf(path, sizeof(path), "%s/half.dump", G.tmp);
	assert_int_equal(fs_write_atomic(path, sb.buf, sb.len, 0600), 0);
	fd = open(path, O_RDONLY);
	assert_int_equal(redis_tenant_load(G.s[1].addr, G.port, ADMIN_PW, "app-b:", fd, &err),
			 MIREN_EINVAL);
	close(fd);
	strbuf_release(&sb);
	/* B's share: its open session and the memory of its keys. */
	long long bytes;
	int sessions;
	assert_int_equal(redis_tenant_usage(G.s[1].addr, G.port, ADMIN_PW, "app-b",
					    "app-b:", &bytes, &sessions, &err),
			 0);
	assert_int_equal(sessions, 1);
	assert_true(bytes > 0);
	done(b);
}

/*
 * A snapshot holds every write acknowledged before it; restored into
 * another disk (files copied, restore_prepare) and started there, the
 * server has those keys and its tenants.
 */
static void test_snapshot_restore(void **state)
{
	(void)state;
	REQUIRE_REDIS();
	struct miren_error err = { 0 };
	redisContext *c = login(0, "web", PW_A2);
	for (int i = 0; i < 500; i++) {
		char line[64];
		snprintf(line, sizeof(line), "SET before:%d %d", i, i);
		expect(c, line, "OK");
	}
	assert_int_equal(redis_snapshot(G.s[0].addr, G.port, ADMIN_PW, 30000, NULL, &err), 0);
	expect(c, "SET after 1", "OK");
	/* A second one right away works too (waits for nothing stale). */
	assert_int_equal(redis_snapshot(G.s[0].addr, G.port, ADMIN_PW, 30000, NULL, &err), 0);
	expect(c, "SET after2 1", "OK");
	done(c);
	char src[600], dst[600];
	snprintf(src, sizeof(src), "%s/%s", G.s[0].disk, REDIS_SNAPSHOT_PATH);
	assert_int_equal(redis_check_snapshot(src, G.uid, G.gid, &err), 0);
	/* The restored disk: the snapshot and the ACL file, nothing else. */
	struct server *r = &G.s[2];
	struct redis_conf conf = conf_of(r, 16);
	assert_int_equal(redis_server_init(r->disk, &conf, ADMIN_PW, G.uid, G.gid, &err), 0);
	snprintf(dst, sizeof(dst), "%s/%s", r->disk, REDIS_SNAPSHOT_PATH);
	struct strbuf sb = STRBUF_INIT;
	assert_int_equal(strbuf_read_file(&sb, src), 0);
	assert_int_equal(fs_write_atomic(dst, sb.buf, sb.len, 0600), 0);
	/* A damaged copy is found out. */
	char bad[620];
	snprintf(bad, sizeof(bad), "%s.bad", dst);
	assert_int_equal(fs_write_atomic(bad, sb.buf, sb.len / 2, 0644), 0);
	assert_int_equal(redis_check_snapshot(bad, (uid_t)-1, (gid_t)-1, &err), MIREN_EINVAL);
	unlink(bad);
	strbuf_reset(&sb);
	snprintf(src, sizeof(src), "%s/users.acl", G.s[0].disk);
	snprintf(dst, sizeof(dst), "%s/users.acl", r->disk);
	assert_int_equal(strbuf_read_file(&sb, src), 0);
	assert_int_equal(fs_write_atomic(dst, sb.buf, sb.len, 0600), 0);
	strbuf_release(&sb);
	assert_int_equal(redis_restore_prepare(r->disk, G.uid, G.gid, &err), 0);
	assert_int_equal(redis_restore_prepare(r->disk, G.uid, G.gid, &err), 0); /* again */
	assert_int_equal(redis_server_init(r->disk, &conf, ADMIN_PW, G.uid, G.gid, &err), 0);
	start_server(r);
	if (redis_wait_ready(r->addr, G.port, ADMIN_PW, 10000, NULL, &err)) {
		dump_log(r);
		fail_msg("restored server: %s", err.message);
	}
	c = login(2, "web", PW_A2);
	for (int i = 0; i < 500; i += 37) {
		char line[64], want[16];
		snprintf(line, sizeof(line), "GET before:%d", i);
		snprintf(want, sizeof(want), "%d", i);
		expect(c, line, want);
	}
	expect(c, "GET after", "1");      /* written before the second snapshot */
	expect(c, "GET after2", "(nil)"); /* after it */
	done(c);
	/* A disk without a snapshot cannot be prepared. */
	char empty[600];
	snprintf(empty, sizeof(empty), "%s/disks/empty", G.tmp);
	mkdir(empty, 0700);
	assert_int_equal(redis_restore_prepare(empty, G.uid, G.gid, &err), MIREN_EINVAL);
}

/* A server nobody supervises on a disk is found by its working directory
 * and ended; the others are left alone. */
static void test_orphans(void **state)
{
	(void)state;
	REQUIRE_REDIS();
	assert_int_equal(redis_stop_orphans(G.s[2].disk, G.s[2].pid), 0);
	pid_t pid = G.s[2].pid;
	assert_int_equal(redis_stop_orphans(G.s[2].disk, 0), 1);
	int status;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFSIGNALED(status));
	G.s[2].pid = 0;
	assert_true(kill(G.s[0].pid, 0) == 0);
	assert_true(kill(G.s[1].pid, 0) == 0);
	char nothing[600];
	snprintf(nothing, sizeof(nothing), "%s/disks/none", G.tmp);
	assert_int_equal(redis_stop_orphans(nothing, 0), 0);
}

int main(void)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_user_for_app, conn_teardown),
		cmocka_unit_test_teardown(test_argv, conn_teardown),
		cmocka_unit_test_teardown(test_bad_arguments, conn_teardown),
		cmocka_unit_test_teardown(test_files, conn_teardown),
		cmocka_unit_test_teardown(test_start_and_default_user, conn_teardown),
		cmocka_unit_test_teardown(test_owner_tenant, conn_teardown),
		cmocka_unit_test_teardown(test_rotate, conn_teardown),
		cmocka_unit_test_teardown(test_shared_isolation, conn_teardown),
		cmocka_unit_test_teardown(test_shared_drop, conn_teardown),
		cmocka_unit_test_teardown(test_dump_load, conn_teardown),
		cmocka_unit_test_teardown(test_snapshot_restore, conn_teardown),
		cmocka_unit_test_teardown(test_orphans, conn_teardown),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
