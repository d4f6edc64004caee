/*
 * The MariaDB tools the mechanics run: mariadb-backup (backup, prepare),
 * the client option file, mariadb-dump and the client for a tenant's
 * logical dump and load; see mariadb.h.
 */
#include "addon/mysql/mariadb_internal.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "util/fs.h"
#include "util/io.h"
#include "util/strbuf.h"

/* ---- backup ------------------------------------------------------------- */

enum miren_err mariadb_backup(const struct mariadb_install *in, const char *disk_dir,
			      const char *root_password, const char *target_dir, uid_t uid,
			      gid_t gid, struct miren_error *err)
{
	if (!mdbi_password_ok(root_password))
		return miren_error_set(err, MIREN_EINVAL, "bad root password");
	if (fs_exists(target_dir))
		return miren_error_set(err, MIREN_EEXISTS, "backup directory %s exists",
				       target_dir);
	char *optfile = xasprintf("%s.cnf", target_dir);
	char *sock = mariadb_socket_path(disk_dir);
	char *conf = xasprintf("[client]\nuser=root\npassword=\"%s\"\nsocket=%s\n", root_password,
			       sock);
	char *defaults = xasprintf("--defaults-file=%s", optfile);
	char *datadir = xasprintf("--datadir=%s/data", disk_dir);
	char *target = xasprintf("--target-dir=%s", target_dir);
	char *parent_buf = xstrdup(target_dir);
	enum miren_err rc = mdbi_write_owned(optfile, conf, 0600, uid, gid, err);
	explicit_bzero(conf, strlen(conf));
	if (!rc)
		rc = mdbi_ensure_dir(target_dir, 0700, uid, gid, err);
	if (!rc) {
		char *argv[] = { (char *)in->backup, defaults, "--backup", datadir, target,
				 "--parallel=2",     NULL };
		rc = mdbi_run_tool(argv, dirname(parent_buf), uid, gid, MARIADB_BACKUP_TIMEOUT_MS,
				   "mariadb-backup --backup", err);
	}
	unlink(optfile);
	if (rc)
		fs_remove_tree(target_dir);
	free(parent_buf);
	free(target);
	free(datadir);
	free(defaults);
	free(conf);
	free(sock);
	free(optfile);
	return rc;
}

enum miren_err mariadb_backup_prepare(const struct mariadb_install *in, const char *dir, uid_t uid,
				      gid_t gid, struct miren_error *err)
{
	char *target = xasprintf("--target-dir=%s", dir);
	char *argv[] = { (char *)in->backup, "--no-defaults", "--prepare", target, NULL };
	enum miren_err rc = mdbi_run_tool(argv, dir, uid, gid, 0, "mariadb-backup --prepare", err);
	free(target);
	return rc;
}

/* ---- connect and info --------------------------------------------------- */

enum miren_err mariadb_client_file(const struct mariadb_install *in, const char *path,
				   const char *host, int port, const char *user,
				   const char *password, const char *db, uid_t uid, gid_t gid,
				   char ***argv_out, struct miren_error *err)
{
	unsigned char buf[16];
	if (!host || (inet_pton(AF_INET, host, buf) != 1 && inet_pton(AF_INET6, host, buf) != 1))
		return miren_error_set(err, MIREN_EINVAL, "host must be a numeric ip address");
	enum miren_err rc;
	if ((rc = mdbi_check_name(user, "a user", err)) ||
	    (rc = mdbi_check_name(db, "a database", err)))
		return rc;
	if (!mdbi_password_ok(password))
		return miren_error_set(err, MIREN_EINVAL, "bad password");
	char *conf = xasprintf("[client]\nhost=%s\nport=%d\nuser=%s\npassword=\"%s\"\n"
			       "database=%s\n",
			       host, port, user, password, db);
	rc = mdbi_write_owned(path, conf, 0600, uid, gid, err);
	explicit_bzero(conf, strlen(conf));
	free(conf);
	if (!rc && argv_out) {
		char **argv = xcalloc(3, sizeof(*argv));
		argv[0] = xstrdup(in->client);
		argv[1] = xasprintf("--defaults-extra-file=%s", path);
		*argv_out = argv;
	}
	return rc;
}

/* Runs argv with stdin in_fd / stdout out_fd (-1: /dev/null) and
 * MYSQL_PWD=password in its environment; what it says on stderr (the
 * last 340 bytes) goes into the error.  what names it for messages. */
static enum miren_err run_client(char *const *argv, const char *password, int in_fd, int out_fd,
				 const char *what, struct miren_error *err)
{
	int errp[2];
	if (pipe2(errp, O_CLOEXEC) != 0)
		return miren_error_set(err, MIREN_EIO, "cannot make a pipe: %s",
				       io_strerror(errno));
	char *pwenv = xasprintf("MYSQL_PWD=%s", password);
	pid_t pid = fork();
	if (pid == 0) {
		char *env[] = { "PATH=/usr/bin:/bin", "LC_ALL=C", "TZ=UTC", pwenv, NULL };
		int null = open("/dev/null", O_RDWR);
		if (dup2(in_fd >= 0 ? in_fd : null, 0) < 0 ||
		    dup2(out_fd >= 0 ? out_fd : null, 1) < 0 || dup2(errp[1], 2) < 0)
			_exit(126);
		execve(argv[0], argv, env);
		_exit(127);
	}
	explicit_bzero(pwenv, strlen(pwenv));
	free(pwenv);
	close(errp[1]);
	if (pid < 0) {
		close(errp[0]);
		return miren_error_set(err, MIREN_EIO, "cannot start %s: %s", what,
				       io_strerror(errno));
	}
	struct strbuf sb;
	strbuf_init(&sb, 1 << 20);
	strbuf_read_fd(&sb, errp[0]);
	close(errp[0]);
	int st = 0;
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	enum miren_err rc = 0;
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
		char tail[360];
		mdbi_output_tail(tail, sizeof(tail), sb.buf, 340);
		rc = miren_error_set(err, MIREN_EIO, "%s failed (%s %d): %s", what,
				     WIFEXITED(st) ? "exit" : "signal",
				     WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st), tail);
	}
	strbuf_release(&sb);
	return rc;
}

/*
 * Runs tool as the tenant user on db (host:port over TCP), the password in
 * its environment: its argv is tool, the connection options, then the
 * NULL-terminated extra arguments, then db (as --database=DB with
 * db_option, else as an operand).  stdin in_fd, stdout out_fd.
 */
static enum miren_err tenant_tool(const char *tool, const char *what, const char *host, int port,
				  const char *user, const char *password, const char *db,
				  const char *const *extra, bool db_option, int in_fd, int out_fd,
				  struct miren_error *err)
{
	enum miren_err rc;
	if ((rc = mdbi_check_name(user, "a user", err)) ||
	    (rc = mdbi_check_name(db, "a database", err)))
		return rc;
	if (!mdbi_password_ok(password))
		return miren_error_set(err, MIREN_EINVAL, "bad password");
	unsigned char buf[16];
	if (!host || (inet_pton(AF_INET, host, buf) != 1 && inet_pton(AF_INET6, host, buf) != 1))
		return miren_error_set(err, MIREN_EINVAL, "host must be a numeric ip address");
	char *argv[16] = { 0 };
	size_t n = 0;
	argv[n++] = xstrdup(tool);
	argv[n++] = xstrdup("--no-defaults");
	argv[n++] = xasprintf("--host=%s", host);
	argv[n++] = xasprintf("--port=%d", port);
	argv[n++] = xasprintf("--user=%s", user);
	for (const char *const *e = extra; *e && n < 14; e++)
		argv[n++] = xstrdup(*e);
	argv[n++] = db_option ? xasprintf("--database=%s", db) : xstrdup(db);
	rc = run_client(argv, password, in_fd, out_fd, what, err);
	for (size_t i = 0; i < n; i++)
		free(argv[i]);
	return rc;
}

enum miren_err mariadb_dump(const struct mariadb_install *in, const char *host, int port,
			    const char *user, const char *password, const char *db, int fd,
			    struct miren_error *err)
{
	static const char *const extra[] = { "--single-transaction", "--routines",
					     "--triggers",           "--events",
					     "--no-tablespaces",     NULL };
	return tenant_tool(in->dump, "mariadb-dump", host, port, user, password, db, extra, false,
			   -1, fd, err);
}

enum miren_err mariadb_load(const struct mariadb_install *in, const char *host, int port,
			    const char *user, const char *password, const char *db, int fd,
			    struct miren_error *err)
{
	static const char *const extra[] = { "--batch", NULL };
	return tenant_tool(in->client, "loading the dump with mariadb", host, port, user, password,
			   db, extra, true, fd, -1, err);
}

/*
 * What mariadb_clear runs in the tenant's database: every view, then every
 * table (sequences too; triggers go with their tables), named from
 * information_schema and dropped by prepared statements.  Routines and
 * events stay: a dump holds a DROP ... IF EXISTS before each of its own.
 */
static const char clear_sql[] =
	"SET SESSION group_concat_max_len = 16777216;\n"
	"SET FOREIGN_KEY_CHECKS = 0;\n"
	"SET @miren_v = (SELECT GROUP_CONCAT(CONCAT('`', REPLACE(TABLE_NAME, '`', '``'), '`')) "
	"FROM information_schema.VIEWS WHERE TABLE_SCHEMA = DATABASE());\n"
	"SET @miren_s = IF(@miren_v IS NULL, 'DO 0', CONCAT('DROP VIEW IF EXISTS ', @miren_v));\n"
	"PREPARE miren_st FROM @miren_s;\nEXECUTE miren_st;\nDEALLOCATE PREPARE miren_st;\n"
	"SET @miren_t = (SELECT GROUP_CONCAT(CONCAT('`', REPLACE(TABLE_NAME, '`', '``'), '`')) "
	"FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() "
	"AND TABLE_TYPE <> 'VIEW');\n"
	"SET @miren_s = IF(@miren_t IS NULL, 'DO 0', CONCAT('DROP TABLE IF EXISTS ', @miren_t));\n"
	"PREPARE miren_st FROM @miren_s;\nEXECUTE miren_st;\nDEALLOCATE PREPARE miren_st;\n";

enum miren_err mariadb_clear(const struct mariadb_install *in, const char *host, int port,
			     const char *user, const char *password, const char *db,
			     struct miren_error *err)
{
	int fd = memfd_create("miren-clear", MFD_CLOEXEC);
	if (fd < 0 || io_write_all(fd, clear_sql, strlen(clear_sql)) != 0 ||
	    lseek(fd, 0, SEEK_SET) != 0) {
		enum miren_err rc = miren_error_set(err, MIREN_EIO, "cannot stage SQL: %s",
						    io_strerror(errno));
		if (fd >= 0)
			close(fd);
		return rc;
	}
	static const char *const extra[] = { "--batch", NULL };
	enum miren_err rc = tenant_tool(in->client, "emptying the database", host, port, user,
					password, db, extra, true, fd, -1, err);
	close(fd);
	return rc;
}
