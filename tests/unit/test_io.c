/* Unit tests of the one I/O helper set (util/io.h), the atomic write with
 * owner and mode and the tree copy (util/fs.h), the data-directory paths object
 * (util/paths.h) and the hardened tar extractor (util/extract.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/err.h"
#include "util/extract.h"
#include "util/fs.h"
#include "util/io.h"
#include "util/paths.h"
#include "util/strbuf.h"

static char *tmpdir(void)
{
	char *d = xstrdup("/tmp/miren-test-io.XXXXXX");
	assert_non_null(mkdtemp(d));
	return d;
}

static void test_write_all_and_errno_text(void **state)
{
	(void)state;
	int fds[2];
	assert_int_equal(pipe(fds), 0);
	char big[100000];
	memset(big, 'x', sizeof(big));
	/* A short write through a pipe, then 100 kB (many write calls' worth
	 * on some systems) into a file. */
	assert_int_equal(io_write_all(fds[1], "hello", 5), 0);
	close(fds[1]);
	struct strbuf sb = STRBUF_INIT;
	assert_int_equal(strbuf_read_fd(&sb, fds[0]), 0);
	assert_string_equal(sb.buf, "hello");
	close(fds[0]);
	strbuf_release(&sb);

	char *d = tmpdir();
	char *f = fs_join(d, "f");
	FILE *fp = fopen(f, "w");
	assert_int_equal(io_write_all(fileno(fp), big, sizeof(big)), 0);
	fclose(fp);
	struct stat st;
	assert_int_equal(stat(f, &st), 0);
	assert_int_equal(st.st_size, sizeof(big));
	assert_int_equal(io_write_all(-1, "x", 1), -1);
	assert_int_equal(errno, EBADF);

	assert_string_equal(io_strerror(ENOENT), "No such file or directory");
	assert_string_equal(io_strerror(99999), "unknown error");
	int64_t a = io_mono_ms(), b = io_mono_ms();
	assert_true(b >= a && a > 0);
	fs_remove_tree(d);
	free(f);
	free(d);
}

static void test_atomic_write_owned(void **state)
{
	(void)state;
	char *d = tmpdir();
	char *f = fs_join(d, "pidfile");
	mode_t old = umask(077);
	assert_int_equal(fs_write_atomic_owned(f, "one", 3, 0640, getuid(), getgid()), 0);
	umask(old);
	struct stat st;
	assert_int_equal(stat(f, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0640); /* exactly mode, not masked */
	assert_int_equal(st.st_uid, getuid());
	/* A symlink planted at the temporary name is not followed. */
	char *tmp = xasprintf("%s.tmp.%d", f, (int)getpid());
	char *target = fs_join(d, "target");
	assert_int_equal(symlink(target, tmp), 0);
	assert_int_equal(fs_write_atomic(f, "two", 3, 0600), 0);
	assert_false(fs_exists(target));
	struct strbuf sb = STRBUF_INIT;
	assert_int_equal(strbuf_read_file(&sb, f), 0);
	assert_string_equal(sb.buf, "two");
	strbuf_release(&sb);
	fs_remove_tree(d);
	free(tmp);
	free(target);
	free(f);
	free(d);
}

/* fs_copy_tree: content, modes, links kept as links (never followed,
 * also one pointing outside), a fifo skipped, dst made anew. */
static void test_copy_tree(void **state)
{
	(void)state;
	char *d = tmpdir();
	char *src = fs_join(d, "src"), *dst = fs_join(d, "dst"), *secret = fs_join(d, "secret");
	char *sub = fs_join(src, "sub"), *file = fs_join(src, "sub/run.sh");
	char *link = fs_join(src, "out"), *fifo = fs_join(src, "fifo");
	assert_int_equal(fs_write_atomic(secret, "outside", 7, 0600), 0);
	assert_int_equal(mkdir(src, 0750), 0);
	assert_int_equal(mkdir(sub, 0700), 0);
	assert_int_equal(fs_write_atomic(file, "#!/bin/sh\n", 10, 0755), 0);
	assert_int_equal(symlink(secret, link), 0);
	assert_int_equal(mkfifo(fifo, 0600), 0);
	assert_int_equal(fs_copy_tree(src, dst), 0);

	char *copy = fs_join(dst, "sub/run.sh"), *clink = fs_join(dst, "out");
	char *cfifo = fs_join(dst, "fifo"), *csub = fs_join(dst, "sub");
	struct strbuf sb = STRBUF_INIT;
	assert_int_equal(strbuf_read_file(&sb, copy), 0);
	assert_string_equal(sb.buf, "#!/bin/sh\n");
	strbuf_release(&sb);
	struct stat st;
	assert_int_equal(stat(copy, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0755);
	assert_int_equal(stat(csub, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0700);
	assert_int_equal(stat(dst, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0750);
	assert_int_equal(lstat(clink, &st), 0);
	assert_true(S_ISLNK(st.st_mode)); /* a link, its target not copied */
	char target[4096];
	ssize_t n = readlink(clink, target, sizeof(target) - 1);
	assert_true(n > 0);
	target[n] = '\0';
	assert_string_equal(target, secret);
	assert_false(fs_exists(cfifo));
	/* dst must not exist; a source that is a link is refused. */
	assert_int_equal(fs_copy_tree(src, dst), MIREN_EIO);
	assert_int_equal(errno, EEXIST);
	char *dst2 = fs_join(d, "dst2");
	assert_int_equal(fs_copy_tree(link, dst2), MIREN_EIO);
	assert_false(fs_exists(dst2));

	fs_remove_tree(d);
	free(dst2);
	free(csub);
	free(cfifo);
	free(clink);
	free(copy);
	free(fifo);
	free(link);
	free(file);
	free(sub);
	free(secret);
	free(dst);
	free(src);
	free(d);
}

static void test_data_paths(void **state)
{
	(void)state;
	struct data_paths *p = data_paths_new("/var/lib/miren");
	struct {
		char *got;
		const char *want;
	} cases[] = {
		{ data_paths_store(p), "/var/lib/miren/miren.db" },
		{ data_paths_socket(p), "/var/lib/miren/miren.sock" },
		{ data_paths_lock(p), "/var/lib/miren/miren.lock" },
		{ data_paths_server_log(p), "/var/lib/miren/logs/server.log" },
		{ data_paths_release(p, "web", 3), "/var/lib/miren/apps/web/releases/3" },
		{ data_paths_service_log(p, "web", "worker"),
		  "/var/lib/miren/apps/web/logs/worker.log" },
		{ data_paths_disk(p, "pg-data"), "/var/lib/miren/disks/pg-data" },
		{ data_paths_addon_log(p, "s-1"), "/var/lib/miren/logs/addons/s-1.log" },
		{ data_paths_template(p, "pg15"), "/var/lib/miren/templates/pg15" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		assert_string_equal(cases[i].got, cases[i].want);
		free(cases[i].got);
	}
	char *u1 = data_paths_tmp_unique(p, "upload"), *u2 = data_paths_tmp_unique(p, "upload");
	assert_int_equal(strncmp(u1, "/var/lib/miren/tmp/upload-", 26), 0);
	assert_string_not_equal(u1, u2);
	free(u1);
	free(u2);
	data_paths_free(p);
}

struct entry {
	const char *path;
	mode_t type;
	const char *data_or_link;
};

/* Writes a tar of entries to path. */
static void make_tar(const char *path, const struct entry *e, size_t n)
{
	struct archive *a = archive_write_new();
	archive_write_set_format_pax_restricted(a);
	assert_int_equal(archive_write_open_filename(a, path), ARCHIVE_OK);
	for (size_t i = 0; i < n; i++) {
		struct archive_entry *ae = archive_entry_new();
		archive_entry_set_pathname(ae, e[i].path);
		archive_entry_set_filetype(ae, e[i].type);
		archive_entry_set_perm(ae, 0644);
		if (e[i].type == AE_IFLNK)
			archive_entry_set_symlink(ae, e[i].data_or_link);
		if (e[i].type == AE_IFREG)
			archive_entry_set_size(ae, (la_int64_t)strlen(e[i].data_or_link));
		archive_write_header(a, ae);
		if (e[i].type == AE_IFREG)
			archive_write_data(a, e[i].data_or_link, strlen(e[i].data_or_link));
		archive_entry_free(ae);
	}
	archive_write_close(a);
	archive_write_free(a);
}

/* Extracts entries into a fresh directory; returns the result code. */
static int extract(const struct entry *e, size_t n, unsigned long max_entries, char **dir_out)
{
	char *d = tmpdir();
	char *tar = fs_join(d, "a.tar"), *dest = fs_join(d, "dest");
	mkdir(dest, 0755);
	make_tar(tar, e, n);
	const struct extract_limits lim = { .max_bytes = 1 << 20,
					    .max_entries = max_entries,
					    .what = "test archive" };
	struct miren_error err;
	int rc = extract_tar(tar, dest, &lim, &err);
	free(tar);
	free(dest);
	*dir_out = d;
	return rc;
}

static void test_extract(void **state)
{
	(void)state;
	char *d;
	const struct entry good[] = {
		{ "dir", AE_IFDIR, NULL },
		{ "dir/a.txt", AE_IFREG, "hello" },
		{ "link", AE_IFLNK, "dir/a.txt" },
	};
	assert_int_equal(extract(good, 3, 10, &d), 0);
	char *a = fs_join(d, "dest/link");
	struct strbuf sb = STRBUF_INIT;
	assert_int_equal(strbuf_read_file(&sb, a), 0);
	assert_string_equal(sb.buf, "hello");
	strbuf_release(&sb);
	free(a);
	fs_remove_tree(d);
	free(d);

	/* Over the entry limit: nothing is left. */
	assert_int_equal(extract(good, 3, 2, &d), MIREN_ETOOBIG);
	char *dest = fs_join(d, "dest/dir");
	assert_false(fs_exists(dest));
	free(dest);
	fs_remove_tree(d);
	free(d);

	/* Directories without their own entry are made 0755; a link may
	 * point anywhere (it is never written through); a second entry of a
	 * name is refused. */
	const struct entry implicit[] = {
		{ "deep/er/a.txt", AE_IFREG, "x" },
		{ "abs", AE_IFLNK, "/usr/bin/env" },
	};
	assert_int_equal(extract(implicit, 2, 10, &d), 0);
	char *deep = fs_join(d, "dest/deep/er");
	struct stat st;
	assert_int_equal(stat(deep, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0755);
	free(deep);
	fs_remove_tree(d);
	free(d);
	const struct entry twice[] = {
		{ "a.txt", AE_IFREG, "x" },
		{ "a.txt", AE_IFREG, "y" },
	};
	assert_int_equal(extract(twice, 2, 10, &d), MIREN_EINVAL);
	fs_remove_tree(d);
	free(d);

	const struct entry *bad[] = {
		(const struct entry[]){ { "../evil", AE_IFREG, "x" } },
		(const struct entry[]){ { "/tmp/evil", AE_IFREG, "x" } },
		(const struct entry[]){ { "a/../../evil", AE_IFREG, "x" } },
		(const struct entry[]){ { "dev", AE_IFCHR, NULL } },
		(const struct entry[]){ { "fifo", AE_IFIFO, NULL } },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(extract(bad[i], 1, 10, &d), MIREN_EINVAL);
		char *evil = fs_join(d, "evil");
		assert_false(fs_exists(evil));
		free(evil);
		fs_remove_tree(d);
		free(d);
	}
	/* Writing through a symlink that leaves the tree is refused. */
	const struct entry escape[] = {
		{ "out", AE_IFLNK, ".." },
		{ "out/evil", AE_IFREG, "x" },
	};
	assert_int_not_equal(extract(escape, 2, 10, &d), 0);
	char *evil = fs_join(d, "evil");
	assert_false(fs_exists(evil));
	free(evil);
	fs_remove_tree(d);
	free(d);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_write_all_and_errno_text),
		cmocka_unit_test(test_atomic_write_owned),
		cmocka_unit_test(test_copy_tree),
		cmocka_unit_test(test_data_paths),
		cmocka_unit_test(test_extract),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
