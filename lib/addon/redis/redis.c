/*
 * Redis mechanics for the miren-redis addon; see redis.h.  Talks to the
 * server with hiredis as REDIS_ADMIN_USER over TCP on its loopback address,
 * one short connection per operation; commands are sent as argument
 * vectors (never formatted), so no name or password is ever parsed as
 * part of a command.
 */
#include "addon/redis/redis.h"
#include "supervise/supervise.h"
#include "util/fault.h"
#include "util/fs.h"
#include "util/io.h"
#include "util/names.h"
#include "util/num.h"
#include "util/sha256.h"
#include "util/strbuf.h"
#include "util/text.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <hiredis/hiredis.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define READY_POLL_MS 10
#define SNAPSHOT_POLL_MS 20
#define CONNECT_TIMEOUT_MS 2000
/* Commands of the platform (a SCAN batch, ACL SAVE) are short; a BGSAVE is
 * waited for by polling, not by a long command. */
#define COMMAND_TIMEOUT_MS 10000
#define DROP_BATCH 500

/* ---- small helpers ------------------------------------------------------ */

static void nap_ms(int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

static bool ids_given(uid_t uid, gid_t gid)
{
	return uid != (uid_t)-1 || gid != (gid_t)-1;
}

static bool stopped(const atomic_bool *stop)
{
	return stop && atomic_load(stop);
}

/* Writes data to path atomically, mode, owned by uid/gid when given. */
static enum miren_err write_owned(const char *path, const char *data, mode_t mode, uid_t uid,
				  gid_t gid, struct miren_error *err)
{
	if (fs_write_atomic(path, data, strlen(data), mode) != 0)
		return miren_error_set(err, MIREN_EIO, "cannot write %s: %s", path,
				       io_strerror(errno));
	if ((ids_given(uid, gid) && chown(path, uid, gid) != 0) || chmod(path, mode) != 0)
		return miren_error_set(err, MIREN_EIO, "cannot set owner and mode of %s: %s", path,
				       io_strerror(errno));
	return 0;
}

/* mkdir path (an existing directory is fine), then exact mode and owner,
 * through a descriptor opened without following symlinks. */
static enum miren_err ensure_dir(const char *path, mode_t mode, uid_t uid, gid_t gid,
				 struct miren_error *err)
{
	if (mkdir(path, mode) != 0 && errno != EEXIST)
		return miren_error_set(err, MIREN_EIO, "cannot create directory %s: %s", path,
				       io_strerror(errno));
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return miren_error_set(err, MIREN_EIO, "%s is not a directory: %s", path,
				       io_strerror(errno));
	enum miren_err rc = 0;
	if (fchmod(fd, mode) != 0 || (ids_given(uid, gid) && fchown(fd, uid, gid) != 0))
		rc = miren_error_set(err, MIREN_EIO, "cannot set owner and mode of %s: %s", path,
				     io_strerror(errno));
	close(fd);
	return rc;
}

const char *redis_bindir(void)
{
	const char *d = getenv("MIREN_REDIS_BINDIR");
	return d && *d ? d : "/usr/bin";
}

void redis_argv_free(char **argv)
{
	if (!argv)
		return;
	for (char **a = argv; *a; a++)
		free(*a);
	free(argv);
}

void redis_strv_free(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

enum miren_err redis_installed_version(char out[32], struct miren_error *err)
{
	char *bin = fs_join(redis_bindir(), REDIS_SERVER_BIN);
	char *argv[] = { bin, "--version", NULL };
	char *env[] = { "PATH=/usr/bin:/bin", NULL };
	char *text = NULL;
	int st = access(bin, X_OK) == 0 ? sv_run(argv, env, "/", (uid_t)-1, (gid_t)-1, 5000, &text)
					: -1;
	const char *v = text ? strstr(text, " v=") : NULL;
	enum miren_err rc = 0;
	out[0] = '\0';
	if (st == 0 && v) {
		v += 3;
		size_t n = strspn(v, "0123456789.");
		if (n > 0 && n < 32) {
			memcpy(out, v, n);
			out[n] = '\0';
		}
	}
	if (!out[0]) {
		rc = miren_error_set(err, MIREN_ENOTFOUND, "Redis is not installed on this host");
		miren_error_hint(err, "install the Debian package redis-server");
	}
	free(text);
	free(bin);
	return rc;
}

/* ---- configuration ------------------------------------------------------- */

/*
 * The configuration.  Persistence: the append-only file (fsync every
 * second) is what a restart loads, so at most a second of acknowledged
 * writes is lost to a power cut; RDB snapshots are taken only when a
 * backup asks (`save ""`), not on a timer that would cost a fork and a
 * full write of the data set every few minutes.  maxmemory with
 * noeviction: Redis is the app's data store here, not a cache that may
 * drop keys; over the limit writes fail with -OOM.  The debug and module
 * commands are off for every user, the admin too.
 */
static char *server_conf(const char *disk_dir, const struct redis_conf *conf)
{
	struct strbuf sb = STRBUF_INIT;
	strbuf_addf(&sb,
		    "# Written by miren at every start; changes here are lost.\n"
		    "bind %s\n"
		    "port %d\n"
		    "protected-mode yes\n"
		    "tcp-backlog 128\n"
		    "daemonize no\n"
		    "supervised no\n"
		    "logfile \"\"\n"
		    "databases %d\n"
		    "dir %s/data\n"
		    "dbfilename dump.rdb\n"
		    "save \"\"\n"
		    "rdbcompression yes\n"
		    "rdbchecksum yes\n"
		    "appendonly yes\n"
		    "appendfilename \"appendonly.aof\"\n"
		    "appenddirname \"appendonlydir\"\n"
		    "appendfsync everysec\n"
		    "aof-use-rdb-preamble yes\n"
		    "maxmemory %lld\n"
		    "maxmemory-policy noeviction\n"
		    "aclfile %s/users.acl\n"
		    "acl-pubsub-default resetchannels\n"
		    "enable-debug-command no\n"
		    "enable-module-command no\n"
		    "enable-protected-configs no\n"
		    "sanitize-dump-payload yes\n",
		    conf->address, conf->port, conf->databases, disk_dir, conf->maxmemory,
		    disk_dir);
	return strbuf_detach(&sb, NULL);
}

static void password_hash(const char *password, char hex[65])
{
	sha256_hex(password, strlen(password), hex);
}

enum miren_err redis_scratch_init(const char *disk_dir, const char *socket_path,
				  const char *admin_password, uid_t uid, gid_t gid,
				  struct miren_error *err)
{
	char hex[65];
	password_hash(admin_password, hex);
	char *data = fs_join(disk_dir, "data");
	char *confp = fs_join(disk_dir, "redis.conf");
	char *aclp = fs_join(disk_dir, "users.acl");
	char *conf = xasprintf("# A scratch server (written by miren)\n"
			       "port 0\n"
			       "unixsocket %s\n"
			       "unixsocketperm 700\n"
			       "protected-mode yes\n"
			       "daemonize no\n"
			       "logfile \"\"\n"
			       "databases 16\n"
			       "dir %s\n"
			       "dbfilename dump.rdb\n"
			       "save \"\"\n"
			       "rdbchecksum yes\n"
			       "appendonly yes\n"
			       "appendfilename \"appendonly.aof\"\n"
			       "appenddirname \"appendonlydir\"\n"
			       "appendfsync no\n"
			       "aclfile %s\n"
			       "enable-debug-command no\n"
			       "enable-module-command no\n"
			       "enable-protected-configs no\n"
			       "sanitize-dump-payload yes\n",
			       socket_path, data, aclp);
	char *acl = xasprintf("user default off resetchannels -@all\n"
			      "user " REDIS_ADMIN_USER " on #%s ~* &* +@all\n",
			      hex);
	enum miren_err rc = 0;
	if (!fs_is_dir(data) && mkdir(data, 0700) != 0)
		rc = miren_error_set(err, MIREN_EIO, "cannot create %s: %s", data,
				     io_strerror(errno));
	if (!rc && uid != (uid_t)-1 && chown(data, uid, gid) != 0)
		rc = miren_error_set(err, MIREN_EIO, "cannot hand %s to the service user: %s", data,
				     io_strerror(errno));
	if (!rc)
		rc = write_owned(confp, conf, 0600, uid, gid, err);
	if (!rc)
		rc = write_owned(aclp, acl, 0600, uid, gid, err);
	explicit_bzero(acl, strlen(acl));
	free(acl);
	free(conf);
	free(aclp);
	free(confp);
	free(data);
	return rc;
}

/* Whether line (an ACL file line) is "user NAME ..." for name. */
static bool acl_line_is(const char *line, size_t len, const char *name)
{
	size_t n = strlen(name);
	return len > 5 + n && !strncmp(line, "user ", 5) && !strncmp(line + 5, name, n) &&
	       line[5 + n] == ' ';
}

/* The ACL file with the default and admin lines replaced, other users'
 * lines kept as they are. */
static char *acl_file(const char *old, const char *admin_password)
{
	char hash[65];
	password_hash(admin_password, hash);
	struct strbuf sb = STRBUF_INIT;
	strbuf_addf(&sb, "user default off resetpass resetkeys resetchannels -@all\n");
	strbuf_addf(&sb, "user %s on #%s ~* &* +@all\n", REDIS_ADMIN_USER, hash);
	for (const char *p = old ? old : ""; *p;) {
		size_t len = strcspn(p, "\n");
		if (len && !acl_line_is(p, len, "default") &&
		    !acl_line_is(p, len, REDIS_ADMIN_USER)) {
			strbuf_add(&sb, p, len);
			strbuf_addch(&sb, '\n');
		}
		p += len;
		if (*p == '\n')
			p++;
	}
	return strbuf_detach(&sb, NULL);
}

static bool password_ok(const char *pw)
{
	if (!pw || strlen(pw) < 16)
		return false;
	for (const char *p = pw; *p; p++)
		if (!isalnum((unsigned char)*p))
			return false;
	return true;
}

enum miren_err redis_server_init(const char *disk_dir, const struct redis_conf *conf,
				 const char *admin_password, uid_t uid, gid_t gid,
				 struct miren_error *err)
{
	if (!password_ok(admin_password))
		return miren_error_set(err, MIREN_EINVAL,
				       "the admin password must be at least 16 letters and digits");
	char *data = fs_join(disk_dir, "data");
	char *confp = fs_join(disk_dir, "redis.conf");
	char *aclp = fs_join(disk_dir, "users.acl");
	char *text = NULL, *acl = NULL;
	struct strbuf old = STRBUF_INIT;
	enum miren_err rc = ensure_dir(disk_dir, 0700, uid, gid, err);
	if (!rc)
		rc = ensure_dir(data, 0700, uid, gid, err);
	if (rc)
		goto out;
	text = server_conf(disk_dir, conf);
	rc = write_owned(confp, text, 0600, uid, gid, err);
	if (rc)
		goto out;
	if (strbuf_read_file(&old, aclp) != 0 && errno != ENOENT) {
		rc = miren_error_set(err, MIREN_EIO, "cannot read %s: %s", aclp,
				     io_strerror(errno));
		goto out;
	}
	acl = acl_file(old.buf, admin_password);
	rc = write_owned(aclp, acl, 0600, uid, gid, err);
out:
	strbuf_release(&old);
	free(acl);
	free(text);
	free(aclp);
	free(confp);
	free(data);
	return rc;
}

char **redis_server_argv(const char *disk_dir)
{
	char **argv = xcalloc(6, sizeof(*argv));
	argv[0] = xstrdup("/bin/sh");
	argv[1] = xstrdup("-c");
	argv[2] = xstrdup("umask 077 && exec \"$0\" \"$1\"");
	argv[3] = fs_join(redis_bindir(), REDIS_SERVER_BIN);
	argv[4] = fs_join(disk_dir, "redis.conf");
	return argv;
}

char **redis_connect_argv(const char *address, int port, const char *user)
{
	char **argv = xcalloc(8, sizeof(*argv));
	argv[0] = fs_join(redis_bindir(), REDIS_CLI_BIN);
	argv[1] = xstrdup("-h");
	argv[2] = xstrdup(address);
	argv[3] = xstrdup("-p");
	argv[4] = xasprintf("%d", port);
	argv[5] = xstrdup("--user");
	argv[6] = xstrdup(user);
	return argv;
}

/* The character a backslash escape in double quotes stands for. */
static char unescape(char c)
{
	switch (c) {
	case 'n':
		return '\n';
	case 'r':
		return '\r';
	case 't':
		return '\t';
	case 'b':
		return '\b';
	case 'a':
		return '\a';
	default:
		return c;
	}
}

enum miren_err redis_split_command(const char *line, char ***out, struct miren_error *err)
{
	*out = NULL;
	size_t n = 0, cap = 8;
	char **words = xcalloc(cap, sizeof(*words));
	struct strbuf w = STRBUF_INIT;
	const char *p = line;
	enum miren_err rc = 0;
	for (;;) {
		while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
			p++;
		if (!*p)
			break;
		strbuf_reset(&w);
		char quote = (*p == '"' || *p == '\'') ? *p++ : 0;
		for (;;) {
			if (!quote && (!*p || *p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
				break;
			if (quote && !*p) {
				rc = miren_error_set(err, MIREN_EINVAL,
						     "unbalanced quotes in the command");
				goto out;
			}
			if (quote && *p == quote) {
				p++;
				if (*p && *p != ' ' && *p != '\t' && *p != '\n' && *p != '\r') {
					rc = miren_error_set(err, MIREN_EINVAL,
							     "a closing quote must be followed by "
							     "a space");
					goto out;
				}
				break;
			}
			if (quote == '"' && p[0] == '\\' && p[1] == 'x' &&
			    text_hex_value(p[2]) >= 0 && text_hex_value(p[3]) >= 0) {
				strbuf_addch(&w, (char)(text_hex_value(p[2]) * 16 +
							text_hex_value(p[3])));
				p += 4;
			} else if (quote == '"' && p[0] == '\\' && p[1]) {
				strbuf_addch(&w, unescape(p[1]));
				p += 2;
			} else if (quote == '\'' && p[0] == '\\' && p[1] == '\'') {
				strbuf_addch(&w, '\'');
				p += 2;
			} else {
				strbuf_addch(&w, *p++);
			}
		}
		if (n + 1 >= cap) {
			cap *= 2;
			words = xrealloc(words, cap * sizeof(*words));
		}
		words[n++] = xstrdup(w.buf);
		words[n] = NULL;
	}
	if (!n)
		rc = miren_error_set(err, MIREN_EINVAL, "the command is empty");
out:
	strbuf_release(&w);
	if (rc) {
		for (size_t i = 0; i < n; i++)
			free(words[i]);
		free(words);
	} else {
		*out = words;
	}
	return rc;
}

/* ---- connections ---------------------------------------------------------- */

/* Copies a server's reply into err's message, on one line and bounded. */
static enum miren_err reply_error(struct miren_error *err, enum miren_err code, const char *what,
				  const char *text)
{
	char line[300];
	size_t o = 0;
	for (const char *p = text ? text : "no reply"; *p && o + 1 < sizeof(line); p++)
		line[o++] = (*p == '\r' || *p == '\n') ? ' ' : *p;
	line[o] = '\0';
	return miren_error_set(err, code, "%s: %s", what, line);
}

/*
 * Connects to address:port and authenticates as REDIS_ADMIN_USER.  NULL
 * with err: MIREN_EUNAVAIL (cannot connect, still loading), MIREN_EPERM
 * (the password is refused).
 */
static redisContext *admin_connect(const char *address, int port, const char *password,
				   struct miren_error *err)
{
	struct timeval tv = { CONNECT_TIMEOUT_MS / 1000, (CONNECT_TIMEOUT_MS % 1000) * 1000 };
	/* A path: a scratch server's unix socket (it listens on no port). */
	redisContext *c = address[0] == '/' ? redisConnectUnixWithTimeout(address, tv)
					    : redisConnectWithTimeout(address, port, tv);
	if (!c || c->err) {
		miren_error_set(err, MIREN_EUNAVAIL, "cannot connect to Redis at %s:%d: %s",
				address, port, c ? c->errstr : "out of memory");
		redisFree(c);
		return NULL;
	}
	struct timeval ctv = { COMMAND_TIMEOUT_MS / 1000, 0 };
	redisSetTimeout(c, ctv);
	const char *argv[] = { "AUTH", REDIS_ADMIN_USER, password };
	redisReply *r = redisCommandArgv(c, 3, argv, NULL);
	int rc = 0;
	if (!r)
		rc = miren_error_set(err, MIREN_EUNAVAIL,
				     "Redis at %s:%d closed the connection: %s", address, port,
				     c->errstr);
	else if (r->type == REDIS_REPLY_ERROR && !strncmp(r->str, "WRONGPASS", 9))
		rc = miren_error_set(err, MIREN_EPERM,
				     "Redis at %s:%d refused the platform's password", address,
				     port);
	else if (r->type == REDIS_REPLY_ERROR)
		rc = reply_error(err, MIREN_EUNAVAIL, "Redis refused the platform's login", r->str);
	if (r)
		freeReplyObject(r);
	if (rc) {
		redisFree(c);
		return NULL;
	}
	return c;
}

/* Runs one command; the reply (to free) in *out when out is not NULL.  An
 * error reply is MIREN_EUNAVAIL for -LOADING/-BUSY, MIREN_EPERM for
 * -NOPERM, MIREN_EIO otherwise. */
static enum miren_err command(redisContext *c, int argc, const char **argv, redisReply **out,
			      struct miren_error *err)
{
	if (out)
		*out = NULL;
	redisReply *r = redisCommandArgv(c, argc, argv, NULL);
	if (!r)
		return miren_error_set(err, MIREN_EUNAVAIL, "Redis did not answer %s: %s", argv[0],
				       c->errstr);
	if (r->type == REDIS_REPLY_ERROR) {
		enum miren_err code = MIREN_EIO;
		if (!strncmp(r->str, "LOADING", 7) || !strncmp(r->str, "BUSY", 4))
			code = MIREN_EUNAVAIL;
		else if (!strncmp(r->str, "NOPERM", 6))
			code = MIREN_EPERM;
		char what[64];
		snprintf(what, sizeof(what), "Redis refused %s", argv[0]);
		reply_error(err, code, what, r->str);
		freeReplyObject(r);
		return (int)code;
	}
	if (out)
		*out = r;
	else
		freeReplyObject(r);
	return 0;
}

enum miren_err redis_wait_ready(const char *address, int port, const char *password, int timeout_ms,
				const atomic_bool *stop, struct miren_error *err)
{
	int64_t until = io_mono_ms() + timeout_ms;
	enum miren_err rc;
	for (;;) {
		redisContext *c = admin_connect(address, port, password, err);
		if (c) {
			const char *argv[] = { "PING" };
			rc = command(c, 1, argv, NULL, err);
			redisFree(c);
			if (!rc)
				return 0;
		} else {
			rc = err ? (int)err->code : MIREN_EUNAVAIL;
		}
		if (rc == MIREN_EPERM)
			return rc;
		if (stopped(stop))
			return miren_error_set(err, MIREN_EUNAVAIL, "the daemon stops");
		if (io_mono_ms() >= until)
			return rc ? rc : MIREN_EUNAVAIL;
		nap_ms(READY_POLL_MS);
	}
}

/* ---- tenants --------------------------------------------------------------- */

enum miren_err redis_user_for_app(const char *app, char out[64], struct miren_error *err)
{
	enum miren_err rc = name_check_app(app, err);
	if (rc)
		return rc;
	snprintf(out, 64, "%s%s", strcmp(app, "default") ? "" : "app_", app);
	return 0;
}

/* Checks user against the shape redis_user_for_app gives, or that name
 * + "_r__" (a tenant's second login, which its rotations take turns with). */
static enum miren_err user_check(const char *user, struct miren_error *err)
{
	char base[80];
	size_t n = strlen(user);
	snprintf(base, sizeof(base), "%.*s",
		 (int)(n > 4 && !strcmp(user + n - 4, "_r__") ? n - 4 : n), user);
	const char *app = !strncmp(base, "app_", 4) ? base + 4 : base;
	if (n >= sizeof(base) || name_check_app(app, NULL) != 0 || !strcmp(base, "default") ||
	    (app != base && strcmp(app, "default")))
		return miren_error_set(err, MIREN_EINVAL, "'%s' is not a tenant user name", user);
	return 0;
}

/* Rules after "reset": see the top of redis.h for what and why. */
static const char *const owner_rules[] = {
	"~*",        "&*",    "+@all", "-@admin", "-@dangerous", "+flushdb",
	"+flushall", "+keys", "+info", "+sort",   "+sort_ro",
};
static const char *const prefixed_rules[] = {
	"+@all",         "-@admin",       "-@dangerous",     "-acl",
	"-scan",         "-randomkey",    "-dbsize",         "-select",
	"-swapdb",       "-move",         "-object",         "-pubsub",
	"-function",     "-script|flush", "-script|kill",    "-memory",
	"+memory|usage", "-client",       "+client|setname", "+client|getname",
	"+client|id",    "+client|info",  "+client|reply",
};

enum miren_err redis_tenant_create(const char *address, int port, const char *admin_password,
				   const char *user, const char *password,
				   enum redis_tenant_kind kind, const char *prefix,
				   struct miren_error *err)
{
	enum miren_err rc = user_check(user, err);
	if (rc)
		return rc;
	if (!password_ok(password))
		return miren_error_set(err, MIREN_EINVAL,
				       "a tenant password must be at least 16 letters and digits");
	if (kind == REDIS_TENANT_PREFIXED &&
	    (!prefix || !*prefix || strcspn(prefix, "*?[]\\ ") != strlen(prefix)))
		return miren_error_set(err, MIREN_EINVAL, "'%s' is not a key prefix",
				       prefix ? prefix : "");
	redisContext *c = admin_connect(address, port, admin_password, err);
	if (!c)
		return err ? (int)err->code : MIREN_EUNAVAIL;
	char hash[66];
	hash[0] = '#';
	password_hash(password, hash + 1);
	char *keys = kind == REDIS_TENANT_PREFIXED ? xasprintf("~%s*", prefix) : NULL;
	char *channels = kind == REDIS_TENANT_PREFIXED ? xasprintf("&%s*", prefix) : NULL;
	const char *argv[40];
	int argc = 0;
	argv[argc++] = "ACL";
	argv[argc++] = "SETUSER";
	argv[argc++] = user;
	argv[argc++] = "reset";
	argv[argc++] = "on";
	argv[argc++] = hash;
	if (kind == REDIS_TENANT_PREFIXED) {
		argv[argc++] = keys;
		argv[argc++] = channels;
		for (size_t i = 0; i < sizeof(prefixed_rules) / sizeof(*prefixed_rules); i++)
			argv[argc++] = prefixed_rules[i];
	} else {
		for (size_t i = 0; i < sizeof(owner_rules) / sizeof(*owner_rules); i++)
			argv[argc++] = owner_rules[i];
	}
	rc = command(c, argc, argv, NULL, err);
	if (!rc)
		fault_point(REDIS_FAULT_TENANT_SET);
	if (!rc) {
		const char *save[] = { "ACL", "SAVE" };
		rc = command(c, 2, save, NULL, err);
	}
	free(channels);
	free(keys);
	redisFree(c);
	return rc;
}

/* Deletes every key matching pattern, SCAN batch by batch. */
static enum miren_err delete_matching(redisContext *c, const char *pattern, struct miren_error *err)
{
	char cursor[32] = "0";
	char count[16];
	snprintf(count, sizeof(count), "%d", DROP_BATCH);
	do {
		const char *argv[] = { "SCAN", cursor, "MATCH", pattern, "COUNT", count };
		redisReply *r;
		enum miren_err rc = command(c, 6, argv, &r, err);
		if (rc)
			return rc;
		if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
		    r->element[0]->type != REDIS_REPLY_STRING ||
		    r->element[1]->type != REDIS_REPLY_ARRAY) {
			freeReplyObject(r);
			return miren_error_set(err, MIREN_EIO, "Redis answered SCAN oddly");
		}
		snprintf(cursor, sizeof(cursor), "%s", r->element[0]->str);
		redisReply *keys = r->element[1];
		if (keys->elements) {
			const char **del = xcalloc(keys->elements + 1, sizeof(*del));
			size_t *lens = xcalloc(keys->elements + 1, sizeof(*lens));
			del[0] = "UNLINK";
			lens[0] = 6;
			for (size_t i = 0; i < keys->elements; i++) {
				del[i + 1] = keys->element[i]->str;
				lens[i + 1] = keys->element[i]->len;
			}
			redisReply *d = redisCommandArgv(c, (int)keys->elements + 1, del, lens);
			free(lens);
			free(del);
			if (!d || d->type == REDIS_REPLY_ERROR)
				rc = reply_error(err, d ? MIREN_EIO : MIREN_EUNAVAIL,
						 "cannot delete a tenant's keys",
						 d ? d->str : c->errstr);
			if (d)
				freeReplyObject(d);
		}
		freeReplyObject(r);
		if (rc)
			return rc;
	} while (strcmp(cursor, "0"));
	return 0;
}

enum miren_err redis_tenant_drop(const char *address, int port, const char *admin_password,
				 const char *user, const char *prefix, struct miren_error *err)
{
	enum miren_err rc = user_check(user, err);
	if (rc)
		return rc;
	redisContext *c = admin_connect(address, port, admin_password, err);
	if (!c)
		return err ? (int)err->code : MIREN_EUNAVAIL;
	/* Off first (no new session), then its sessions closed: nobody writes
	 * keys while they are deleted.  An unknown user is fine for both. */
	const char *users[] = { "ACL", "USERS" };
	redisReply *r = NULL;
	rc = command(c, 2, users, &r, err);
	bool exists = false;
	for (size_t i = 0; !rc && r && r->type == REDIS_REPLY_ARRAY && i < r->elements; i++)
		exists |= r->element[i]->type == REDIS_REPLY_STRING &&
			  !strcmp(r->element[i]->str, user);
	if (r)
		freeReplyObject(r);
	if (!rc && exists) {
		const char *off[] = { "ACL", "SETUSER", user, "off" };
		rc = command(c, 4, off, NULL, err);
	}
	if (!rc && exists) {
		const char *kill[] = { "CLIENT", "KILL", "USER", user };
		rc = command(c, 4, kill, NULL, err);
		if (rc == MIREN_EIO) { /* "No such user" */
			rc = 0;
			miren_error_clear(err);
		}
	}
	char *pattern = prefix ? xasprintf("%s*", prefix) : NULL;
	if (!rc && pattern)
		rc = delete_matching(c, pattern, err);
	if (!rc && exists) {
		const char *del[] = { "ACL", "DELUSER", user };
		rc = command(c, 3, del, NULL, err);
	}
	if (!rc) {
		const char *save[] = { "ACL", "SAVE" };
		rc = command(c, 2, save, NULL, err);
	}
	free(pattern);
	redisFree(c);
	return rc;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

enum miren_err redis_tenant_users(const char *address, int port, const char *admin_password,
				  char ***users, size_t *n, struct miren_error *err)
{
	*users = NULL;
	*n = 0;
	redisContext *c = admin_connect(address, port, admin_password, err);
	if (!c)
		return err ? (int)err->code : MIREN_EUNAVAIL;
	const char *argv[] = { "ACL", "USERS" };
	redisReply *r;
	enum miren_err rc = command(c, 2, argv, &r, err);
	if (!rc) {
		*users = xcalloc(r->elements + 1, sizeof(**users));
		for (size_t i = 0; i < r->elements; i++) {
			const char *u = r->element[i]->str;
			if (r->element[i]->type == REDIS_REPLY_STRING && strcmp(u, "default") &&
			    strcmp(u, REDIS_ADMIN_USER))
				(*users)[(*n)++] = xstrdup(u);
		}
		qsort(*users, *n, sizeof(**users), cmp_str);
		freeReplyObject(r);
	}
	redisFree(c);
	return rc;
}

/* ---- INFO ------------------------------------------------------------------ */

/* The value of "field:" in an INFO text, as a number (-1: absent). */
static long long info_num(const char *text, const char *field)
{
	size_t n = strlen(field);
	for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
		if (!strncmp(p, field, n) && p[n] == ':')
			return strtoll(p + n + 1, NULL, 10);
	return -1;
}

static enum miren_err info_text(redisContext *c, const char *section, char **out,
				struct miren_error *err)
{
	const char *argv[] = { "INFO", section };
	redisReply *r;
	enum miren_err rc = command(c, 2, argv, &r, err);
	if (rc)
		return rc;
	*out = xstrdup(r->type == REDIS_REPLY_STRING ? r->str : "");
	freeReplyObject(r);
	return 0;
}

enum miren_err redis_info(const char *address, int port, const char *admin_password,
			  struct redis_info *out, struct miren_error *err)
{
	memset(out, 0, sizeof(*out));
	redisContext *c = admin_connect(address, port, admin_password, err);
	if (!c)
		return err ? (int)err->code : MIREN_EUNAVAIL;
	char *text = NULL;
	enum miren_err rc = info_text(c, "everything", &text, err);
	if (!rc) {
		const char *v = strstr(text, "redis_version:");
		if (v)
			snprintf(out->version, sizeof(out->version), "%.*s",
				 (int)strcspn(v + 14, "\r\n"), v + 14);
		out->used_memory = info_num(text, "used_memory");
		out->clients = info_num(text, "connected_clients");
		out->maxmemory = info_num(text, "maxmemory");
		out->maxclients = info_num(text, "maxclients");
		out->uptime_s = info_num(text, "uptime_in_seconds");
		const char *db0 = strstr(text, "\ndb0:keys=");
		out->keys = db0 ? strtoll(db0 + 10, NULL, 10) : 0;
	}
	free(text);
	redisFree(c);
	return rc;
}

enum miren_err redis_tenant_usage(const char *address, int port, const char *admin_password,
				  const char *user, const char *prefix, long long *bytes,
				  int *connections, struct miren_error *err)
{
	*bytes = -1;
	*connections = -1;
	redisContext *c = admin_connect(address, port, admin_password, err);
	if (!c)
		return err ? (int)err->code : MIREN_EUNAVAIL;
	const char *list[] = { "CLIENT", "LIST" };
	redisReply *r;
	enum miren_err rc = command(c, 2, list, &r, err);
	if (!rc) {
		char *want = xasprintf(" user=%s ", user);
		int n = 0;
		for (const char *p = r->type == REDIS_REPLY_STRING ? r->str : "";
		     (p = strstr(p, want)); p++)
			n++;
		*connections = n;
		free(want);
		freeReplyObject(r);
	}
	if (!rc && !prefix) {
		char *text = NULL;
		rc = info_text(c, "memory", &text, err);
		if (!rc)
			*bytes = info_num(text, "used_memory_dataset");
		free(text);
	} else if (!rc) {
		/* The sum of MEMORY USAGE over the prefix's keys, a bounded scan. */
		char *pattern = xasprintf("%s*", prefix);
		char cursor[32] = "0";
		long long sum = 0, seen = 0;
		do {
			const char *scan[] = { "SCAN", cursor, "MATCH", pattern, "COUNT", "1000" };
			rc = command(c, 6, scan, &r, err);
			if (rc || r->type != REDIS_REPLY_ARRAY || r->elements != 2)
				break;
			snprintf(cursor, sizeof(cursor), "%s", r->element[0]->str);
			for (size_t i = 0; i < r->element[1]->elements; i++) {
				redisReply *k = r->element[1]->element[i];
				const char *mu[] = { "MEMORY", "USAGE", k->str };
				size_t lens[] = { 6, 5, k->len };
				redisReply *u = redisCommandArgv(c, 3, mu, lens);
				if (u && u->type == REDIS_REPLY_INTEGER)
					sum += u->integer;
				if (u)
					freeReplyObject(u);
				seen++;
			}
			freeReplyObject(r);
			r = NULL;
		} while (strcmp(cursor, "0") && seen < 1000000);
		if (r)
			freeReplyObject(r);
		if (!rc)
			*bytes = sum;
		free(pattern);
	}
	redisFree(c);
	return rc;
}

/* ---- logical dump and load ------------------------------------------------ */

/* Writes all of buf to fd. */
static enum miren_err write_all(int fd, const char *buf, size_t len, struct miren_error *err)
{
	while (len) {
		ssize_t n = write(fd, buf, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return miren_error_set(err, MIREN_EIO, "cannot write the dump: %s",
					       io_strerror(errno));
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Appends one RESP array of bulk strings to sb. */
static void resp_array(struct strbuf *sb, int argc, const char **argv, const size_t *lens)
{
	strbuf_addf(sb, "*%d\r\n", argc);
	for (int i = 0; i < argc; i++) {
		strbuf_addf(sb, "$%zu\r\n", lens[i]);
		strbuf_add(sb, argv[i], lens[i]);
		strbuf_adds(sb, "\r\n");
	}
}

enum miren_err redis_tenant_dump(const char *address, int port, const char *admin_password,
				 const char *prefix, int fd, struct miren_error *err)
{
	redisContext *c = admin_connect(address, port, admin_password, err);
	if (!c)
		return err ? (int)err->code : MIREN_EUNAVAIL;
	char *pattern = xasprintf("%s*", prefix ? prefix : "");
	char cursor[32] = "0";
	struct strbuf out = STRBUF_INIT;
	/* Which prefix the keys carry, for a load into another tenant. */
	const char *head[] = { "PREFIX", prefix ? prefix : "" };
	size_t head_lens[] = { 6, strlen(head[1]) };
	resp_array(&out, 2, head, head_lens);
	enum miren_err rc = 0;
	do {
		const char *scan[] = { "SCAN", cursor, "MATCH", pattern, "COUNT", "1000" };
		redisReply *r;
		rc = command(c, 6, scan, &r, err);
		if (rc)
			break;
		if (r->type != REDIS_REPLY_ARRAY || r->elements != 2) {
			freeReplyObject(r);
			rc = miren_error_set(err, MIREN_EIO, "Redis answered SCAN oddly");
			break;
		}
		snprintf(cursor, sizeof(cursor), "%s", r->element[0]->str);
		for (size_t i = 0; i < r->element[1]->elements && !rc; i++) {
			redisReply *k = r->element[1]->element[i];
			const char *dump[] = { "DUMP", k->str };
			const char *pttl[] = { "PTTL", k->str };
			size_t lens[] = { 4, k->len };
			redisReply *d = redisCommandArgv(c, 2, dump, lens);
			redisReply *t = d ? redisCommandArgv(c, 2, pttl, lens) : NULL;
			if (!d || !t) {
				rc = miren_error_set(err, MIREN_EUNAVAIL,
						     "Redis did not answer DUMP: %s", c->errstr);
			} else if (d->type == REDIS_REPLY_STRING &&
				   t->type == REDIS_REPLY_INTEGER && t->integer != -2) {
				/* RESTORE key ttl payload REPLACE (ttl 0: none) */
				char ttl[32];
				snprintf(ttl, sizeof(ttl), "%lld", t->integer > 0 ? t->integer : 0);
				const char *cmd[] = { "RESTORE", k->str, ttl, d->str, "REPLACE" };
				size_t cl[] = { 7, k->len, strlen(ttl), d->len, 7 };
				resp_array(&out, 5, cmd, cl);
			} /* else: the key expired or went meanwhile */
			if (d)
				freeReplyObject(d);
			if (t)
				freeReplyObject(t);
		}
		freeReplyObject(r);
		if (!rc && out.len)
			rc = write_all(fd, out.buf, out.len, err);
		strbuf_reset(&out);
	} while (!rc && strcmp(cursor, "0"));
	strbuf_release(&out);
	free(pattern);
	redisFree(c);
	return rc;
}

/* Queues UNLINK of every key matching prefix* (NULL: every key) on c,
 * inside the caller's MULTI: SCAN runs on a second connection, since
 * commands on c are queued. */
static enum miren_err queue_unlink_all(redisContext *c, redisContext *scan_c, const char *prefix,
				       struct miren_error *err)
{
	char *pattern = xasprintf("%s*", prefix ? prefix : "");
	char cursor[32] = "0";
	enum miren_err rc = 0;
	do {
		const char *scan[] = { "SCAN", cursor, "MATCH", pattern, "COUNT", "1000" };
		redisReply *r;
		rc = command(scan_c, 6, scan, &r, err);
		if (rc)
			break;
		if (r->type != REDIS_REPLY_ARRAY || r->elements != 2) {
			freeReplyObject(r);
			rc = miren_error_set(err, MIREN_EIO, "Redis answered SCAN oddly");
			break;
		}
		snprintf(cursor, sizeof(cursor), "%s", r->element[0]->str);
		for (size_t i = 0; i < r->element[1]->elements && !rc; i++) {
			redisReply *k = r->element[1]->element[i];
			const char *argv[] = { "UNLINK", k->str };
			size_t lens[] = { 6, k->len };
			redisReply *x = redisCommandArgv(c, 2, argv, lens);
			if (!x || x->type == REDIS_REPLY_ERROR)
				rc = reply_error(err, x ? MIREN_EIO : MIREN_EUNAVAIL,
						 "Redis refused to queue UNLINK",
						 x ? x->str : c->errstr);
			if (x)
				freeReplyObject(x);
		}
		freeReplyObject(r);
	} while (!rc && strcmp(cursor, "0"));
	free(pattern);
	return rc;
}

enum miren_err redis_tenant_load(const char *address, int port, const char *admin_password,
				 const char *prefix, int fd, struct miren_error *err)
{
	redisContext *c = admin_connect(address, port, admin_password, err);
	if (!c)
		return err ? (int)err->code : MIREN_EUNAVAIL;
	redisContext *scan_c = admin_connect(address, port, admin_password, err);
	if (!scan_c) {
		redisFree(c);
		return err ? (int)err->code : MIREN_EUNAVAIL;
	}
	redisReader *rd = redisReaderCreate();
	size_t plen = prefix ? strlen(prefix) : 0;
	char *from = NULL; /* the dump's PREFIX: its keys are renamed */
	bool first = true;
	struct strbuf key = STRBUF_INIT;
	char buf[65536];
	bool eof = false, multi = false;
	const char *multi_argv[] = { "MULTI" };
	enum miren_err rc = command(c, 1, multi_argv, NULL, err);
	multi = rc == 0;
	/* The tenant's keys go first, in the same transaction. */
	if (!rc)
		rc = queue_unlink_all(c, scan_c, prefix, err);
	while (!rc) {
		void *item = NULL;
		if (redisReaderGetReply(rd, &item) != REDIS_OK) {
			rc = miren_error_set(err, MIREN_EINVAL,
					     "the dump is not in the Redis protocol");
			break;
		}
		if (!item) {
			if (eof) {
				if (rd->pos < rd->len)
					rc = miren_error_set(err, MIREN_EINVAL,
							     "the dump ends in the middle "
							     "of a command");
				break;
			}
			ssize_t got = read(fd, buf, sizeof(buf));
			if (got < 0 && errno == EINTR)
				continue;
			if (got < 0)
				rc = miren_error_set(err, MIREN_EIO, "cannot read the dump: %s",
						     io_strerror(errno));
			else if (got == 0)
				eof = true;
			else
				redisReaderFeed(rd, buf, (size_t)got);
			continue;
		}
		redisReply *r = item;
		bool was_first = first;
		first = false;
		if (was_first && r->type == REDIS_REPLY_ARRAY && r->elements == 2 &&
		    r->element[0]->type == REDIS_REPLY_STRING &&
		    r->element[1]->type == REDIS_REPLY_STRING &&
		    !strcasecmp(r->element[0]->str, "PREFIX")) {
			from = xstrdup(r->element[1]->str);
			freeReplyObject(r);
			continue;
		}
		/* Only RESTORE key ttl payload REPLACE, and only of the tenant's
		 * keys: a dump is input from outside. */
		bool ok = r->type == REDIS_REPLY_ARRAY && r->elements == 5;
		for (size_t i = 0; ok && i < 5; i++)
			ok = r->element[i]->type == REDIS_REPLY_STRING;
		ok = ok && !strcasecmp(r->element[0]->str, "RESTORE") &&
		     !strcasecmp(r->element[4]->str, "REPLACE") &&
		     strspn(r->element[2]->str, "0123456789") == r->element[2]->len;
		if (!ok) {
			rc = miren_error_set(err, MIREN_EINVAL,
					     "the dump holds a command other than "
					     "RESTORE key ttl payload REPLACE");
		} else if (prefix && from &&
			   (r->element[1]->len < strlen(from) ||
			    memcmp(r->element[1]->str, from, strlen(from)))) {
			rc = miren_error_set(err, MIREN_EINVAL,
					     "the dump holds a key outside its prefix '%s'", from);
		} else if (prefix && !from && plen &&
			   (r->element[1]->len < plen ||
			    memcmp(r->element[1]->str, prefix, plen))) {
			rc = miren_error_set(err, MIREN_EINVAL,
					     "the dump holds a key outside the "
					     "prefix '%s'",
					     prefix);
		} else {
			const char *argv[5];
			size_t lens[5];
			for (int i = 0; i < 5; i++) {
				argv[i] = r->element[i]->str;
				lens[i] = r->element[i]->len;
			}
			if (prefix && from) { /* renamed into this tenant's prefix */
				size_t fl = strlen(from);
				strbuf_reset(&key);
				strbuf_adds(&key, prefix);
				strbuf_add(&key, r->element[1]->str + fl, r->element[1]->len - fl);
				argv[1] = key.buf;
				lens[1] = key.len;
			}
			redisReply *x = redisCommandArgv(c, 5, argv, lens);
			if (!x || x->type == REDIS_REPLY_ERROR)
				rc = reply_error(err, x ? MIREN_EINVAL : MIREN_EUNAVAIL,
						 "Redis refused a key of the dump",
						 x ? x->str : c->errstr);
			if (x)
				freeReplyObject(x);
		}
		freeReplyObject(r);
	}
	if (multi && rc) {
		/* Nothing queued runs. */
		const char *discard[] = { "DISCARD" };
		redisReply *x = redisCommandArgv(c, 1, discard, NULL);
		if (x)
			freeReplyObject(x);
	} else if (multi) {
		const char *exec[] = { "EXEC" };
		redisReply *x = redisCommandArgv(c, 1, exec, NULL);
		if (!x || x->type != REDIS_REPLY_ARRAY) {
			rc = reply_error(err, x ? MIREN_EIO : MIREN_EUNAVAIL,
					 "Redis did not run the load's transaction",
					 x && x->type == REDIS_REPLY_ERROR ? x->str : c->errstr);
		} else {
			for (size_t i = 0; i < x->elements && !rc; i++)
				if (x->element[i]->type == REDIS_REPLY_ERROR)
					rc = reply_error(err, MIREN_EINVAL,
							 "Redis refused a key of the dump",
							 x->element[i]->str);
		}
		if (x)
			freeReplyObject(x);
	}
	redisReaderFree(rd);
	redisFree(scan_c);
	redisFree(c);
	strbuf_release(&key);
	free(from);
	return rc;
}

/* ---- snapshots and restores -------------------------------------------------- */

enum miren_err redis_snapshot(const char *address, int port, const char *admin_password,
			      int timeout_ms, const atomic_bool *stop, struct miren_error *err)
{
	int64_t until = io_mono_ms() + timeout_ms;
	redisContext *c = admin_connect(address, port, admin_password, err);
	if (!c)
		return err ? (int)err->code : MIREN_EUNAVAIL;
	char *text = NULL;
	long long before = -1;
	bool started = false;
	enum miren_err rc = 0;
	while (!rc) {
		free(text);
		text = NULL;
		rc = info_text(c, "persistence", &text, err);
		if (rc)
			break;
		long long saves = info_num(text, "rdb_saves");
		bool running = info_num(text, "rdb_bgsave_in_progress") == 1;
		if (started && !running && saves > before) {
			if (!strstr(text, "rdb_last_bgsave_status:ok"))
				rc = miren_error_set(err, MIREN_EIO,
						     "Redis could not write its snapshot (see the "
						     "server's log)");
			break;
		}
		if (!started && !running) {
			/* SCHEDULE: an append-only file rewrite may run; the save then
			 * starts when it ends. */
			const char *argv[] = { "BGSAVE", "SCHEDULE" };
			before = saves;
			rc = command(c, 2, argv, NULL, err);
			if (rc == MIREN_EIO && err && strstr(err->message, "in progress")) {
				rc = 0; /* one began meanwhile: wait for it, then ours */
				miren_error_clear(err);
				continue;
			}
			started = true;
			continue;
		}
		if (stopped(stop))
			rc = miren_error_set(err, MIREN_EUNAVAIL, "the daemon stops");
		else if (io_mono_ms() >= until)
			rc = miren_error_set(err, MIREN_EUNAVAIL,
					     "Redis did not finish its snapshot within %d s",
					     timeout_ms / 1000);
		else
			nap_ms(SNAPSHOT_POLL_MS);
	}
	free(text);
	redisFree(c);
	return rc;
}

enum miren_err redis_check_snapshot(const char *rdb_path, uid_t uid, gid_t gid,
				    struct miren_error *err)
{
	char *bin = fs_join(redis_bindir(), REDIS_CHECK_RDB_BIN);
	char *argv[] = { bin, (char *)rdb_path, NULL };
	char *env[] = { "PATH=/usr/bin:/bin", NULL };
	char *out = NULL;
	enum miren_err rc = 0;
	int st = sv_run(argv, env, "/", uid, gid, 600000, &out);
	if (st != 0 || !out || !strstr(out, "RDB looks OK")) {
		const char *why = out ? strstr(out, "--- RDB ERROR DETECTED ---") : NULL;
		const char *line = out ? strstr(out, "[offset") : NULL;
		rc = miren_error_set(err, MIREN_EINVAL, "the Redis snapshot %s is damaged%s%.*s",
				     rdb_path,
				     line ? ": " : (why ? "" : " (redis-check-rdb failed)"),
				     line ? (int)strcspn(line, "\n") : 0, line ? line : "");
	}
	free(out);
	free(bin);
	return rc;
}

/* Copies src to dst (mode 0600, owner uid/gid), fsync'd. */
static enum miren_err copy_file(const char *src, const char *dst, uid_t uid, gid_t gid,
				struct miren_error *err)
{
	int in = open(src, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (in < 0)
		return miren_error_set(err, errno == ENOENT ? MIREN_ENOTFOUND : MIREN_EIO,
				       "cannot open %s: %s", src, io_strerror(errno));
	int out = open(dst, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
	enum miren_err rc = 0;
	if (out < 0) {
		rc = miren_error_set(err, MIREN_EIO, "cannot create %s: %s", dst,
				     io_strerror(errno));
		close(in);
		return rc;
	}
	char buf[65536];
	for (;;) {
		ssize_t n = read(in, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			if (n < 0)
				rc = miren_error_set(err, MIREN_EIO, "cannot read %s: %s", src,
						     io_strerror(errno));
			break;
		}
		for (ssize_t off = 0; off < n && !rc;) {
			ssize_t w = write(out, buf + off, (size_t)(n - off));
			if (w < 0 && errno == EINTR)
				continue;
			if (w < 0)
				rc = miren_error_set(err, MIREN_EIO, "cannot write %s: %s", dst,
						     io_strerror(errno));
			else
				off += w;
		}
		if (rc)
			break;
	}
	if (!rc && ((ids_given(uid, gid) && fchown(out, uid, gid) != 0) || fsync(out) != 0))
		rc = miren_error_set(err, MIREN_EIO, "cannot finish %s: %s", dst,
				     io_strerror(errno));
	close(out);
	close(in);
	return rc;
}

enum miren_err redis_restore_prepare(const char *disk_dir, uid_t uid, gid_t gid,
				     struct miren_error *err)
{
	char *rdb = fs_join(disk_dir, REDIS_SNAPSHOT_PATH);
	char *data = fs_join(disk_dir, "data");
	char *aof = fs_join(data, "appendonlydir");
	char *tmp = fs_join(data, "appendonlydir.tmp");
	char *base = fs_join(tmp, "appendonly.aof.1.base.rdb");
	char *manifest = fs_join(tmp, "appendonly.aof.manifest");
	enum miren_err rc = 0;
	if (!fs_exists(rdb)) {
		rc = miren_error_set(err, MIREN_EINVAL, "the disk holds no Redis snapshot (%s)",
				     REDIS_SNAPSHOT_PATH);
		goto out;
	}
	/* Built aside and renamed over the old one: a crash leaves either the
	 * old directory (this runs again) or the new one. */
	if (fs_remove_tree(tmp) != 0) {
		rc = miren_error_set(err, MIREN_EIO, "cannot remove %s: %s", tmp,
				     io_strerror(errno));
		goto out;
	}
	rc = ensure_dir(tmp, 0700, uid, gid, err);
	if (!rc)
		rc = copy_file(rdb, base, uid, gid, err);
	if (!rc)
		rc = write_owned(manifest, "file appendonly.aof.1.base.rdb seq 1 type b\n", 0600,
				 uid, gid, err);
	if (rc)
		goto out;
	if (fs_remove_tree(aof) != 0 || rename(tmp, aof) != 0 || fs_fsync_dir(data) != 0)
		rc = miren_error_set(err, MIREN_EIO, "cannot put %s in place: %s", aof,
				     io_strerror(errno));
out:
	free(manifest);
	free(base);
	free(tmp);
	free(aof);
	free(data);
	free(rdb);
	return rc;
}

/* ---- orphans ------------------------------------------------------------------ */

/* Whether pid is a redis-server (its command name: Debian's binary is a
 * link to redis-check-rdb, which looks at the name it was run as) working
 * in dir. */
static bool is_server_of(pid_t pid, const char *dir)
{
	char path[64], buf[4096];
	snprintf(path, sizeof(path), "/proc/%d/comm", (int)pid);
	struct strbuf sb = STRBUF_INIT;
	bool named = strbuf_read_file(&sb, path) == 0 && !strcmp(sb.buf, REDIS_SERVER_BIN "\n");
	strbuf_release(&sb);
	if (!named)
		return false;
	snprintf(path, sizeof(path), "/proc/%d/cwd", (int)pid);
	ssize_t n = readlink(path, buf, sizeof(buf) - 1);
	if (n <= 0)
		return false;
	buf[n] = '\0';
	return !strcmp(buf, dir);
}

/* The data directory of disk_dir, resolved (/proc shows resolved paths);
 * NULL when it does not exist. */
static char *data_dir_of(const char *disk_dir)
{
	char *joined = fs_join(disk_dir, "data");
	char *dir = realpath(joined, NULL);
	free(joined);
	return dir;
}

/* The first redis-server working in dir other than keep; 0 if none. */
static pid_t server_in(const char *dir, pid_t keep)
{
	pid_t found = 0;
	DIR *d = opendir("/proc");
	struct dirent *de;
	while (d && !found && (de = readdir(d)) != NULL) {
		pid_t pid = num_pid(de->d_name);
		if (pid > 1 && pid != keep && pid != getpid() && is_server_of(pid, dir))
			found = pid;
	}
	if (d)
		closedir(d);
	return found;
}

/* Sends sig to pid and waits up to ms until it no longer works in dir. */
static bool end_server(pid_t pid, const char *dir, int sig, int ms)
{
	kill(pid, sig);
	for (int i = 0; i < ms / 20; i++) {
		if (!is_server_of(pid, dir))
			return true;
		nap_ms(20);
	}
	return !is_server_of(pid, dir);
}

int redis_stop_orphans(const char *disk_dir, pid_t keep)
{
	char *dir = data_dir_of(disk_dir);
	if (!dir)
		return 0;
	int found = 0;
	for (pid_t pid; found < 64 && (pid = server_in(dir, keep)) != 0; found++)
		end_server(pid, dir, SIGKILL, 2000);
	free(dir);
	return found;
}

pid_t redis_disk_server(const char *disk_dir, bool stop, int timeout_ms)
{
	char *dir = data_dir_of(disk_dir);
	if (!dir)
		return 0;
	pid_t pid = server_in(dir, 0);
	if (pid && stop && !end_server(pid, dir, SIGTERM, timeout_ms))
		end_server(pid, dir, SIGKILL, 2000);
	free(dir);
	return pid;
}
