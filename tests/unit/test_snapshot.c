/*
 * Unit tests of lib/disk/snapshot*.c, the .miren.zst backup format.
 *
 * Round trips (tree, modes, symlinks, header, stats), the archive layout as
 * standard tools and the documented digest definition see it, and the
 * bad-file matrix: for every kind of damaged or hostile file snap_read must
 * fail with a message naming the problem, leave staging empty, and create
 * nothing outside staging (each test runs in a fresh temporary root whose
 * only entry must stay "stage").  Hostile archives are built here with
 * libarchive's writer and zstd, independently of the code under test.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>
#include <zstd.h>

#include "disk/snapshot.h"
#include "util/compiler.h"
#include "util/fs.h"
#include "util/sha256.h"
#include "util/strbuf.h"

/* ------------------------------------------------------------ helpers */

struct tmp {
	char root[64];
	char *stage;
	char *src;
};

static void tmp_make(struct tmp *t)
{
	strcpy(t->root, "/tmp/miren-snaptest.XXXXXX");
	assert_non_null(mkdtemp(t->root));
	t->stage = fs_join(t->root, "stage");
	t->src = fs_join(t->root, "src");
	assert_int_equal(mkdir(t->stage, 0700), 0);
}

static void tmp_free(struct tmp *t)
{
	fs_remove_tree(t->root);
	free(t->stage);
	free(t->src);
}

static void write_file(const char *path, const void *data, size_t len, mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, data, len), (ssize_t)len);
	assert_int_equal(fchmod(fd, mode), 0);
	close(fd);
}

static int sink_sb(void *user, const void *data, size_t len)
{
	return strbuf_add(user, data, len);
}

static enum miren_err read_mem(const void *data, size_t len, const char *stage, uint64_t max_bytes,
			       json_t **hdr, struct snap_stats *st, struct miren_error *err)
{
	struct snap_mem m = { data, len, 0 };
	return snap_read(snap_source_mem, &m, stage, (uid_t)-1, (gid_t)-1, max_bytes, hdr, st, err);
}

/* Snapshot of dir into sb (header {"disk": "d1"}). */
static void snapshot_dir(const char *dir, struct strbuf *sb, struct snap_stats *st)
{
	struct miren_error err = { 0 };
	json_t *h = json_pack("{s:s, s:s, s:s}", "disk", "d1", "addon", "pg1", "method", "tar");
	struct snap_writer *w = snap_writer_new(sink_sb, sb, h, 0, 2, &err);
	json_decref(h);
	assert_non_null(w);
	assert_int_equal(snap_add_tree(w, dir, 0, NULL, NULL, &err), 0);
	assert_int_equal(snap_writer_finish(w, st, &err), 0);
	snap_writer_free(w);
}

/* The temp root holds only "stage", and stage is empty. */
static void assert_contained(struct tmp *t)
{
	DIR *d = opendir(t->root);
	assert_non_null(d);
	struct dirent *de;
	while ((de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..") ||
		    !strcmp(de->d_name, "stage") || !strcmp(de->d_name, "src"))
			continue;
		fail_msg("unexpected %s/%s outside staging", t->root, de->d_name);
	}
	closedir(d);
	d = opendir(t->stage);
	assert_non_null(d);
	int n = 0;
	while ((de = readdir(d)))
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
			n++;
	closedir(d);
	assert_int_equal(n, 0);
}

/* snap_read must fail with code and a message containing want. */
static void expect_fail(struct tmp *t, const void *data, size_t len, int code, const char *want)
{
	struct miren_error err = { 0 };
	json_t *h = (json_t *)1;
	int rc = read_mem(data, len, t->stage, 0, &h, NULL, &err);
	if (getenv("SNAPTEST_VERBOSE"))
		print_message("  -> %d: %s%s%s\n", rc, err.message, err.hint[0] ? " / hint: " : "",
			      err.hint);
	if (rc != code || !strstr(err.message, want))
		fail_msg("want %d '%s', got %d '%s'", code, want, rc, err.message);
	assert_null(h);
	assert_contained(t);
}

static void zstd_of(const void *data, size_t len, struct strbuf *out)
{
	ZSTD_CCtx *c = ZSTD_createCCtx();
	ZSTD_CCtx_setParameter(c, ZSTD_c_checksumFlag, 1);
	size_t cap = ZSTD_compressBound(len);
	char *buf = malloc(cap);
	size_t n = ZSTD_compress2(c, buf, cap, data, len);
	assert_false(ZSTD_isError(n));
	strbuf_reset(out);
	strbuf_add(out, buf, n);
	free(buf);
	ZSTD_freeCCtx(c);
}

/* ------------------------------------------- hand-made archives (tb_*) */

struct tb {
	struct archive *a;
	struct archive_entry *e;
	struct strbuf tar;
};

static la_ssize_t tb_write(struct archive *a MIREN_UNUSED, void *u, const void *buf, size_t len)
{
	strbuf_add(u, buf, len);
	return (la_ssize_t)len;
}

static void tb_begin(struct tb *t)
{
	t->a = archive_write_new();
	t->e = archive_entry_new();
	strbuf_init(&t->tar, 0);
	archive_write_set_format_pax_restricted(t->a);
	archive_write_set_bytes_per_block(t->a, 0);
	assert_int_equal(archive_write_open2(t->a, &t->tar, NULL, tb_write, NULL, NULL), 0);
}

static void tb_entry(struct tb *t, const char *path, mode_t type, mode_t perm, const void *data,
		     size_t len, const char *symlink, const char *hardlink)
{
	archive_entry_clear(t->e);
	archive_entry_copy_pathname(t->e, path);
	archive_entry_set_filetype(t->e, type);
	archive_entry_set_perm(t->e, perm);
	archive_entry_set_mtime(t->e, 1700000000, 0);
	archive_entry_set_size(t->e, (la_int64_t)len);
	if (symlink)
		archive_entry_copy_symlink(t->e, symlink);
	if (hardlink) {
		archive_entry_copy_hardlink(t->e, hardlink);
		archive_entry_set_size(t->e, 0);
	}
	if (type == AE_IFCHR)
		archive_entry_set_rdev(t->e, makedev(1, 3));
	assert_true(archive_write_header(t->a, t->e) >= ARCHIVE_WARN);
	if (len && !hardlink)
		assert_int_equal(archive_write_data(t->a, data, len), (la_ssize_t)len);
	archive_write_finish_entry(t->a);
}

static void tb_file(struct tb *t, const char *path, const char *text)
{
	tb_entry(t, path, AE_IFREG, 0644, text, strlen(text), NULL, NULL);
}

static void tb_header(struct tb *t, int version)
{
	char *h = xasprintf("{\"format\": \"miren-disk-backup\", \"format_version\": %d, \"disk\": "
			    "\"d\"}\n",
			    version);
	tb_file(t, "miren-backup.json", h);
	free(h);
}

/* The manifest: files is {"disk/x": "content"} (hashed here unless the value
   starts with "sha:"); archive digest computed unless bad_archive. */
static void tb_manifest(struct tb *t, json_t *files, bool bad_archive)
{
	char hex[65];
	sha256_hex(t->tar.buf, t->tar.len, hex);
	if (bad_archive)
		hex[0] = hex[0] == '0' ? '1' : '0';
	json_t *fm = json_object();
	const char *k;
	json_t *v;
	uint64_t bytes = 0;
	json_object_foreach (files, k, v) {
		const char *s = json_string_value(v);
		char fh[65];
		if (!strncmp(s, "sha:", 4)) {
			snprintf(fh, sizeof fh, "%s", s + 4);
		} else {
			sha256_hex(s, strlen(s), fh);
			bytes += strlen(s);
		}
		json_object_set_new(fm, k, json_string(fh));
	}
	json_t *m = json_pack("{s:o, s:s, s:I, s:I}", "files", fm, "archive_sha256", hex,
			      "file_count", (json_int_t)json_object_size(files), "bytes",
			      (json_int_t)bytes);
	char *text = json_dumps(m, JSON_SORT_KEYS);
	tb_file(t, "miren-manifest.json", text);
	free(text);
	json_decref(m);
}

/* Ends the tar and returns it zstd-compressed in out. */
static void tb_end(struct tb *t, struct strbuf *out)
{
	archive_write_close(t->a);
	archive_write_free(t->a);
	archive_entry_free(t->e);
	zstd_of(t->tar.buf, t->tar.len, out);
	strbuf_release(&t->tar);
}

/* A valid hand-made backup: disk/, disk/a = "alpha", disk/b = "beta". */
static void tb_good(struct tb *t, json_t **files)
{
	tb_begin(t);
	tb_header(t, 1);
	tb_entry(t, "disk/", AE_IFDIR, 0755, NULL, 0, NULL, NULL);
	tb_file(t, "disk/a", "alpha");
	tb_file(t, "disk/b", "beta");
	*files = json_pack("{s:s, s:s}", "disk/a", "alpha", "disk/b", "beta");
}

/* ------------------------------------------------------------ round trip */

static void fill_random(unsigned char *p, size_t n)
{
	uint64_t x = 0x9e3779b97f4a7c15ull;
	for (size_t i = 0; i < n; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		p[i] = (unsigned char)x;
	}
}

static void make_tree(const char *src)
{
	char *p;
	assert_int_equal(fs_mkdir_p(src, 0755), 0);
#define P(rel) (free(p), p = fs_join(src, rel))
	p = NULL;
	assert_int_equal(mkdir(P("a"), 0750), 0);
	assert_int_equal(mkdir(P("a/b"), 0700), 0);
	assert_int_equal(mkdir(P("a/b/c"), 0755), 0);
	assert_int_equal(mkdir(P("emptydir"), 0711), 0);
	write_file(P("empty"), "", 0, 0600);
	write_file(P("a/b/c/empty2"), "", 0, 0640);
	write_file(P("a/hello.txt"), "hello\n", 6, 0644);
	write_file(P("a/b/script"), "#!/bin/sh\n", 10, 0755);
	size_t big = 5u << 20;
	unsigned char *data = malloc(big);
	fill_random(data, big);
	write_file(P("a/b/big"), data, big, 0600);
	free(data);
	assert_int_equal(symlink("b/script", P("a/link")), 0);
	assert_int_equal(symlink("../hello.txt", P("a/b/uplink")), 0);
	assert_int_equal(mkfifo(P("fifo"), 0600), 0); /* skipped by the writer */
	chmod(P("a"), 0750);
	free(p);
#undef P
}

static void assert_same_file(const char *a, const char *b)
{
	struct strbuf x = STRBUF_INIT, y = STRBUF_INIT;
	assert_int_equal(strbuf_read_file(&x, a), 0);
	assert_int_equal(strbuf_read_file(&y, b), 0);
	assert_int_equal(x.len, y.len);
	assert_memory_equal(x.buf, y.buf, x.len);
	strbuf_release(&x);
	strbuf_release(&y);
}

static void assert_mode(const char *root, const char *rel, mode_t want)
{
	char *p = fs_join(root, rel);
	struct stat st;
	assert_int_equal(lstat(p, &st), 0);
	if ((st.st_mode & 07777) != want)
		fail_msg("%s: mode %o, want %o", rel, st.st_mode & 07777, want);
	free(p);
}

static void test_round_trip(void **state MIREN_UNUSED)
{
	struct tmp t;
	tmp_make(&t);
	make_tree(t.src);
	struct strbuf sb = STRBUF_INIT;
	struct snap_stats ws = { 0 }, rs = { 0 };
	snapshot_dir(t.src, &sb, &ws);
	assert_int_equal(ws.files, 5);
	assert_int_equal(ws.bytes_in, (5u << 20) + 16);
	assert_int_equal(ws.zst_bytes, sb.len);
	assert_true(ws.tar_bytes > ws.bytes_in);

	struct miren_error err = { 0 };
	json_t *h = NULL;
	int rc = read_mem(sb.buf, sb.len, t.stage, 0, &h, &rs, &err);
	if (rc)
		fail_msg("snap_read: %s", err.message);
	assert_int_equal(rs.files, ws.files);
	assert_int_equal(rs.bytes_in, ws.bytes_in);
	assert_int_equal(rs.tar_bytes, ws.tar_bytes);
	assert_int_equal(rs.zst_bytes, ws.zst_bytes);

	/* The header comes back with format and version added. */
	assert_string_equal(json_string_value(json_object_get(h, "disk")), "d1");
	assert_string_equal(json_string_value(json_object_get(h, "addon")), "pg1");
	assert_string_equal(json_string_value(json_object_get(h, "format")), "miren-disk-backup");
	assert_int_equal(json_integer_value(json_object_get(h, "format_version")), 1);
	json_decref(h);

	const char *files[] = { "empty", "a/b/c/empty2", "a/hello.txt", "a/b/script", "a/b/big" };
	for (size_t i = 0; i < sizeof(files) / sizeof(*files); i++) {
		char *a = fs_join(t.src, files[i]), *b = fs_join(t.stage, files[i]);
		assert_same_file(a, b);
		struct stat sa, sbb;
		assert_int_equal(stat(a, &sa), 0);
		assert_int_equal(stat(b, &sbb), 0);
		assert_int_equal(sa.st_mtim.tv_sec, sbb.st_mtim.tv_sec);
		free(a);
		free(b);
	}
	assert_mode(t.stage, "a", 0750);
	assert_mode(t.stage, "a/b", 0700);
	assert_mode(t.stage, "emptydir", 0711);
	assert_mode(t.stage, "empty", 0600);
	assert_mode(t.stage, "a/b/c/empty2", 0640);
	assert_mode(t.stage, "a/b/script", 0755);
	assert_mode(t.stage, "a/hello.txt", 0644);
	char *p = fs_join(t.stage, "a/link");
	char target[64] = { 0 };
	assert_int_equal(readlink(p, target, sizeof target - 1), 8);
	assert_string_equal(target, "b/script");
	free(p);
	p = fs_join(t.stage, "a/b/uplink");
	char *q = fs_join(t.src, "a/hello.txt");
	assert_same_file(p, q); /* the relative link resolves inside */
	free(q);
	free(p);
	p = fs_join(t.stage, "fifo");
	assert_false(fs_exists(p));
	free(p);
	/* The disk root's mode lands on staging itself. */
	struct stat a, b;
	assert_int_equal(stat(t.src, &a), 0);
	assert_int_equal(stat(t.stage, &b), 0);
	assert_int_equal(a.st_mode & 07777, b.st_mode & 07777);

	strbuf_release(&sb);
	tmp_free(&t);
}

/* With a uid/gid, everything restored (staging too) gets that owner. */
static void test_owner(void **state MIREN_UNUSED)
{
	if (geteuid() != 0)
		skip();
	struct tmp t;
	tmp_make(&t);
	make_tree(t.src);
	struct strbuf sb = STRBUF_INIT;
	struct snap_stats ws;
	snapshot_dir(t.src, &sb, &ws);
	struct snap_mem m = { sb.buf, sb.len, 0 };
	struct miren_error err = { 0 };
	int rc = snap_read(snap_source_mem, &m, t.stage, 65534, 65533, 0, NULL, NULL, &err);
	if (rc)
		fail_msg("snap_read: %s", err.message);
	const char *rels[] = { "", "a", "a/b", "a/b/big", "empty", "a/link", "emptydir" };
	for (size_t i = 0; i < sizeof(rels) / sizeof(*rels); i++) {
		char *p = fs_join(t.stage, rels[i]);
		struct stat st;
		assert_int_equal(lstat(p, &st), 0);
		if (st.st_uid != 65534 || st.st_gid != 65533)
			fail_msg("%s: owner %d:%d", rels[i], (int)st.st_uid, (int)st.st_gid);
		free(p);
	}
	assert_mode(t.stage, "a/b/big", 0600); /* chown did not cost the mode */
	strbuf_release(&sb);
	tmp_free(&t);
}

static bool skip_b(const char *rel, bool is_dir MIREN_UNUSED, void *u)
{
	(*(int *)u)++;
	return !strcmp(rel, "a/b") || !strcmp(rel, "empty");
}

static void test_skip_and_add_data(void **state MIREN_UNUSED)
{
	struct tmp t;
	tmp_make(&t);
	make_tree(t.src);
	struct strbuf sb = STRBUF_INIT;
	struct miren_error err = { 0 };
	struct snap_writer *w = snap_writer_new(sink_sb, &sb, NULL, 1, 1, &err);
	assert_non_null(w);
	int asked = 0;
	assert_int_equal(snap_add_tree(w, t.src, 0, skip_b, &asked, &err), 0);
	assert_true(asked >= 5);
	assert_int_equal(snap_add_data(w, "extra/note.txt", "note", 4, 0640, &err), 0);
	/* Bad names are refused without spoiling the writer. */
	assert_int_equal(snap_add_data(w, "../x", "x", 1, 0600, &err), MIREN_EINVAL);
	assert_int_equal(snap_add_data(w, "/x", "x", 1, 0600, &err), MIREN_EINVAL);
	assert_int_equal(snap_add_data(w, "extra/note.txt", "x", 1, 0600, &err), MIREN_EINVAL);
	struct snap_stats ws;
	assert_int_equal(snap_writer_finish(w, &ws, &err), 0);
	snap_writer_free(w);
	assert_int_equal(ws.files, 2); /* a/hello.txt, extra/note.txt */

	json_t *h = NULL;
	int rc = read_mem(sb.buf, sb.len, t.stage, 0, &h, NULL, &err);
	if (rc)
		fail_msg("snap_read: %s", err.message);
	json_decref(h);
	char *p = fs_join(t.stage, "a/b");
	assert_false(fs_exists(p));
	free(p);
	p = fs_join(t.stage, "empty");
	assert_false(fs_exists(p));
	free(p);
	p = fs_join(t.stage, "extra/note.txt");
	struct strbuf c = STRBUF_INIT;
	assert_int_equal(strbuf_read_file(&c, p), 0);
	assert_string_equal(c.buf, "note");
	strbuf_release(&c);
	free(p);
	assert_mode(t.stage, "extra/note.txt", 0640);
	strbuf_release(&sb);
	tmp_free(&t);
}

/* tar(1) reads the file; members are in order, header first, manifest last. */
static void test_tar_lists(void **state MIREN_UNUSED)
{
	if (access("/usr/bin/tar", X_OK) != 0 || access("/usr/bin/zstd", X_OK) != 0)
		skip();
	struct tmp t;
	tmp_make(&t);
	make_tree(t.src);
	struct strbuf sb = STRBUF_INIT;
	struct snap_stats ws;
	snapshot_dir(t.src, &sb, &ws);
	char *f = fs_join(t.root, "b.miren.zst"), *l = fs_join(t.root, "list");
	write_file(f, sb.buf, sb.len, 0600);
	char *cmd = xasprintf("/usr/bin/tar --zstd -tvf %s > %s 2>&1", f, l);
	assert_int_equal(system(cmd), 0);
	struct strbuf out = STRBUF_INIT;
	assert_int_equal(strbuf_read_file(&out, l), 0);
	const char *want[] = { "miren-backup.json",
			       "disk/",
			       "disk/a/",
			       "disk/a/b/big",
			       "disk/a/b/c/empty2",
			       "disk/a/link -> b/script",
			       "disk/empty",
			       "disk/emptydir/",
			       "miren-manifest.json" };
	const char *at = out.buf;
	for (size_t i = 0; i < sizeof(want) / sizeof(*want); i++) {
		const char *hit = strstr(at, want[i]);
		if (!hit)
			fail_msg("'%s' not listed in order:\n%s", want[i], out.buf);
		at = hit + strlen(want[i]);
	}
	assert_null(strstr(out.buf, "fifo"));
	assert_null(strstr(out.buf, "tar: ")); /* no warnings */
	/* The manifest's digests match sha256sum of the extracted files. */
	free(cmd);
	cmd = xasprintf("cd %s && /usr/bin/tar --zstd -xf %s && "
			"test \"$(sha256sum disk/a/b/big | cut -d' ' -f1)\" = "
			"\"$(sed -n 's/.*\"disk\\/a\\/b\\/big\": \"\\([0-9a-f]*\\)\".*/\\1/p' "
			"miren-manifest.json)\"",
			t.root, f);
	assert_int_equal(system(cmd), 0);
	free(cmd);
	free(f);
	free(l);
	strbuf_release(&out);
	strbuf_release(&sb);
	tmp_free(&t);
}

/* archive_sha256 is the digest of the tar bytes before the manifest header,
   found here by walking the tar headers by hand. */
static void test_archive_digest_definition(void **state MIREN_UNUSED)
{
	struct tmp t;
	tmp_make(&t);
	make_tree(t.src);
	struct strbuf sb = STRBUF_INIT;
	struct snap_stats ws;
	snapshot_dir(t.src, &sb, &ws);
	size_t cap = ws.tar_bytes;
	char *tar = malloc(cap);
	size_t n = ZSTD_decompress(tar, cap, sb.buf, sb.len);
	assert_false(ZSTD_isError(n));
	assert_int_equal(n, ws.tar_bytes);
	/* One frame with its checksum: the frame header's checksum flag. */
	assert_true(((unsigned char)sb.buf[4] & 0x04) != 0);
	size_t off = 0, manifest = 0;
	while (off + 512 <= n && tar[off]) {
		size_t size = strtoull(tar + off + 124, NULL, 8);
		if (!strcmp(tar + off, "miren-manifest.json"))
			manifest = off;
		off += 512 + (size + 511) / 512 * 512;
	}
	assert_true(manifest > 0);
	assert_int_equal(n, off + 1024); /* two zero blocks, no record padding */
	char hex[65];
	sha256_hex(tar, manifest, hex);
	json_t *m = json_loadb(tar + manifest + 512, strtoull(tar + manifest + 124, NULL, 8), 0,
			       NULL);
	assert_non_null(m);
	assert_string_equal(json_string_value(json_object_get(m, "archive_sha256")), hex);
	assert_int_equal(json_integer_value(json_object_get(m, "file_count")), 5);
	json_decref(m);
	free(tar);
	strbuf_release(&sb);
	tmp_free(&t);
}

static void test_writer_refuses_outside_links(void **state MIREN_UNUSED)
{
	struct tmp t;
	tmp_make(&t);
	assert_int_equal(mkdir(t.src, 0755), 0);
	char *p = fs_join(t.src, "abs");
	assert_int_equal(symlink("/etc/passwd", p), 0);
	struct strbuf sb = STRBUF_INIT;
	struct miren_error err = { 0 };
	struct snap_writer *w = snap_writer_new(sink_sb, &sb, NULL, 1, 1, &err);
	assert_int_equal(snap_add_tree(w, t.src, 0, NULL, NULL, &err), MIREN_EINVAL);
	assert_non_null(strstr(err.message, "symlink disk/abs points outside the disk"));
	/* Sticky: the writer cannot finish after that. */
	assert_int_not_equal(snap_writer_finish(w, NULL, &err), 0);
	snap_writer_free(w);
	unlink(p);
	assert_int_equal(symlink("../../x", p), 0);
	strbuf_reset(&sb);
	w = snap_writer_new(sink_sb, &sb, NULL, 1, 1, &err);
	assert_int_equal(snap_add_tree(w, t.src, 0, NULL, NULL, &err), MIREN_EINVAL);
	snap_writer_free(w);
	free(p);
	strbuf_release(&sb);
	tmp_free(&t);
}

static int sink_full(void *user MIREN_UNUSED, const void *data MIREN_UNUSED,
		     size_t len MIREN_UNUSED)
{
	errno = ENOSPC;
	return MIREN_EIO;
}

static void test_writer_disk_full(void **state MIREN_UNUSED)
{
	struct miren_error err = { 0 };
	struct snap_writer *w = snap_writer_new(sink_full, NULL, NULL, 1, 1, &err);
	enum miren_err rc = w ? snap_writer_finish(w, NULL, &err) : err.code;
	assert_int_equal(rc, MIREN_EIO);
	assert_non_null(strstr(err.message, "disk is full"));
	snap_writer_free(w);
}

/* The skip callback runs before a file is opened: make one vanish there. */
static bool vanish(const char *rel, bool is_dir MIREN_UNUSED, void *u)
{
	if (!strcmp(rel, "a/hello.txt")) {
		char *p = fs_join(u, rel);
		unlink(p);
		free(p);
	}
	return false;
}

static void test_writer_file_vanishes(void **state MIREN_UNUSED)
{
	struct tmp t;
	tmp_make(&t);
	make_tree(t.src);
	struct strbuf sb = STRBUF_INIT;
	struct miren_error err = { 0 };
	struct snap_writer *w = snap_writer_new(sink_sb, &sb, NULL, 1, 1, &err);
	assert_int_equal(snap_add_tree(w, t.src, 0, vanish, t.src, &err), MIREN_EIO);
	assert_non_null(strstr(err.message, "disk/a/hello.txt vanished while being backed up"));
	snap_writer_free(w);
	strbuf_release(&sb);
	tmp_free(&t);
}

/* In a volatile tree (an online backup), a file that vanishes is left out. */
static void test_writer_volatile_vanish(void **state MIREN_UNUSED)
{
	struct tmp t;
	tmp_make(&t);
	make_tree(t.src);
	struct strbuf sb = STRBUF_INIT;
	struct miren_error err = { 0 };
	struct snap_writer *w = snap_writer_new(sink_sb, &sb, NULL, 1, 1, &err);
	assert_int_equal(snap_add_tree(w, t.src, SNAP_TREE_VOLATILE, vanish, t.src, &err), 0);
	assert_int_equal(snap_writer_finish(w, NULL, &err), 0);
	snap_writer_free(w);
	json_t *h = NULL;
	assert_int_equal(read_mem(sb.buf, sb.len, t.stage, 0, &h, NULL, &err), 0);
	json_decref(h);
	char *gone = fs_join(t.stage, "a/hello.txt"), *kept = fs_join(t.stage, "a/b/big");
	assert_false(fs_exists(gone));
	assert_true(fs_exists(kept));
	free(gone);
	free(kept);
	strbuf_release(&sb);
	tmp_free(&t);
}

/*
 * Files whose last chunk is small after large ones: the manifest's digest
 * must be the digest of the member's bytes however the hashing threads
 * interleave (a small tail once raced a queued chunk of the same file).
 */
static void test_writer_digest_order(void **state MIREN_UNUSED)
{
	static const size_t sizes[] = { (1u << 20) + 8192,
					(2u << 20) + 100,
					(64u << 10) + 1,
					(1u << 20) + (64u << 10),
					8192,
					(3u << 20) + 1 };
	struct tmp t;
	tmp_make(&t);
	assert_int_equal(fs_mkdir_p(t.src, 0755), 0);
	unsigned char *data = malloc(4u << 20);
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		fill_random(data, sizes[i]);
		char name[32];
		snprintf(name, sizeof(name), "f%zu", i);
		char *p = fs_join(t.src, name);
		write_file(p, data, sizes[i], 0600);
		free(p);
	}
	free(data);
	for (int round = 0; round < 20; round++) {
		struct strbuf sb = STRBUF_INIT;
		struct miren_error err = { 0 };
		struct snap_writer *w = snap_writer_new(sink_sb, &sb, NULL, 1, 2, &err);
		assert_int_equal(snap_add_tree(w, t.src, 0, NULL, NULL, &err), 0);
		assert_int_equal(snap_writer_finish(w, NULL, &err), 0);
		snap_writer_free(w);
		/* Verified without extracting, then extracted. */
		struct snap_mem m = { sb.buf, sb.len, 0 };
		struct snap_stats st;
		if (snap_read(snap_source_mem, &m, NULL, (uid_t)-1, (gid_t)-1, 0, NULL, &st, &err))
			fail_msg("round %d: %s", round, err.message);
		assert_int_equal(st.files, sizeof(sizes) / sizeof(sizes[0]));
		assert_int_equal(read_mem(sb.buf, sb.len, t.stage, 0, NULL, NULL, &err), 0);
		fs_remove_tree(t.stage);
		assert_int_equal(mkdir(t.stage, 0700), 0);
		strbuf_release(&sb);
	}
	tmp_free(&t);
}

/* Verifying (no staging) refuses a damaged file as extracting does, and
 * writes nothing. */
static void test_verify_only(void **state MIREN_UNUSED)
{
	struct tmp t;
	tmp_make(&t);
	make_tree(t.src);
	struct strbuf sb = STRBUF_INIT;
	snapshot_dir(t.src, &sb, NULL);
	struct miren_error err = { 0 };
	json_t *h = NULL;
	struct snap_mem m = { sb.buf, sb.len, 0 };
	assert_int_equal(snap_read(snap_source_mem, &m, NULL, (uid_t)-1, (gid_t)-1, 0, &h, NULL,
				   &err),
			 0);
	assert_string_equal(json_string_value(json_object_get(h, "disk")), "d1");
	json_decref(h);
	sb.buf[sb.len / 2] ^= 0x40;
	m = (struct snap_mem){ sb.buf, sb.len, 0 };
	assert_int_equal(snap_read(snap_source_mem, &m, NULL, (uid_t)-1, (gid_t)-1, 0, NULL, NULL,
				   &err),
			 MIREN_EINVAL);
	assert_contained(&t);
	strbuf_release(&sb);
	tmp_free(&t);
}

/* Restoring onto a full filesystem (a 1 MiB tmpfs; needs root). */
static void test_restore_disk_full(void **state MIREN_UNUSED)
{
	struct tmp t;
	tmp_make(&t);
	if (geteuid() != 0 || mount("tmpfs", t.stage, "tmpfs", 0, "size=1m,mode=0700") != 0) {
		tmp_free(&t);
		skip();
		return; /* not reached: skip() does not return */
	}
	make_tree(t.src); /* 5 MiB of random data */
	struct strbuf sb = STRBUF_INIT;
	struct snap_stats ws;
	snapshot_dir(t.src, &sb, &ws);
	struct miren_error err = { 0 };
	int rc = read_mem(sb.buf, sb.len, t.stage, 0, NULL, NULL, &err);
	assert_int_equal(rc, MIREN_EIO);
	assert_non_null(strstr(err.message, "disk is full"));
	assert_contained(&t);
	assert_int_equal(umount2(t.stage, MNT_DETACH), 0);
	strbuf_release(&sb);
	tmp_free(&t);
}

static void test_path_rules(void **state MIREN_UNUSED)
{
	assert_int_equal(snap_check_rel("base/1/1259", NULL), 0);
	assert_int_equal(snap_check_rel("a", NULL), 0);
	assert_int_equal(snap_check_rel("", NULL), MIREN_EINVAL);
	assert_int_equal(snap_check_rel("/a", NULL), MIREN_EINVAL);
	assert_int_equal(snap_check_rel("a/../b", NULL), MIREN_EINVAL);
	assert_int_equal(snap_check_rel("..", NULL), MIREN_EINVAL);
	assert_int_equal(snap_check_rel("a//b", NULL), MIREN_EINVAL);
	assert_int_equal(snap_check_rel("a/./b", NULL), MIREN_EINVAL);
	assert_int_equal(snap_check_rel("a/", NULL), MIREN_EINVAL);
	assert_true(snap_link_target_inside("a/l", "b"));
	assert_true(snap_link_target_inside("a/l", "../b/c"));
	assert_true(snap_link_target_inside("a/l", ".."));
	assert_true(snap_link_target_inside("a/b/l", "../../x"));
	assert_true(snap_link_target_inside("l", "./x"));
	assert_false(snap_link_target_inside("l", "../x"));
	assert_false(snap_link_target_inside("a/l", "../../x"));
	assert_false(snap_link_target_inside("a/l", "/etc"));
	assert_false(snap_link_target_inside("a/l", ""));
	assert_false(snap_link_target_inside("a/l", "b/../.."));
	assert_false(snap_link_target_inside("a/b/l", "x/../y")); /* ".." after a name */
}

/* -------------------------------------------------------- the bad files */

static void test_truncated(void **state MIREN_UNUSED)
{
	struct tmp t;
	tmp_make(&t);
	make_tree(t.src);
	struct strbuf sb = STRBUF_INIT;
	struct snap_stats ws;
	snapshot_dir(t.src, &sb, &ws);
	expect_fail(&t, sb.buf, 0, MIREN_EINVAL, "backup file is empty");
	expect_fail(&t, sb.buf, 2, MIREN_EINVAL, "not a zstd file");
	size_t cuts[] = {
		6,          40,        200, sb.len / 4, sb.len / 2, sb.len - 5000, sb.len - 100,
		sb.len - 4, sb.len - 1
	};
	for (size_t i = 0; i < sizeof(cuts) / sizeof(*cuts); i++)
		expect_fail(&t, sb.buf, cuts[i], MIREN_EINVAL, "truncated");
	/* And data after the frame is refused too. */
	strbuf_add(&sb, "garbage", 7);
	expect_fail(&t, sb.buf, sb.len, MIREN_EINVAL, "unexpected data after the end");
	strbuf_release(&sb);
	tmp_free(&t);
}

static void test_bit_flips(void **state MIREN_UNUSED)
{
	struct tmp t;
	tmp_make(&t);
	make_tree(t.src);
	struct strbuf sb = STRBUF_INIT;
	struct snap_stats ws;
	snapshot_dir(t.src, &sb, &ws);
	size_t at[] = { 100, sb.len / 3, sb.len / 2, sb.len - 3000, sb.len - 6 };
	for (size_t i = 0; i < sizeof(at) / sizeof(*at); i++) {
		sb.buf[at[i]] ^= 0x20;
		expect_fail(&t, sb.buf, sb.len, MIREN_EINVAL, "corrupt");
		sb.buf[at[i]] ^= 0x20;
	}
	strbuf_release(&sb);
	tmp_free(&t);
}

static void test_not_ours(void **state MIREN_UNUSED)
{
	struct tmp t;
	tmp_make(&t);
	unsigned char rnd[4096];
	fill_random(rnd, sizeof rnd);
	expect_fail(&t, rnd, sizeof rnd, MIREN_EINVAL, "not a zstd file");
	struct strbuf z = STRBUF_INIT;
	zstd_of(rnd, sizeof rnd, &z);
	expect_fail(&t, z.buf, z.len, MIREN_EINVAL, "not a miren backup");
	zstd_of("", 0, &z);
	expect_fail(&t, z.buf, z.len, MIREN_EINVAL, "not a miren backup");

	if (access("/usr/bin/tar", X_OK) == 0 && access("/usr/bin/zstd", X_OK) == 0) {
		make_tree(t.src);
		char *f = fs_join(t.root, "plain.tar.zst");
		char *cmd = xasprintf("cd %s && /usr/bin/tar --zstd -cf %s src", t.root, f);
		assert_int_equal(system(cmd), 0);
		struct strbuf plain = STRBUF_INIT;
		assert_int_equal(strbuf_read_file(&plain, f), 0);
		unlink(f);
		expect_fail(&t, plain.buf, plain.len, MIREN_EINVAL,
			    "not a miren backup (first member is 'src/");
		strbuf_release(&plain);
		free(cmd);
		free(f);
	}

	/* Right name, wrong content. */
	struct tb b;
	tb_begin(&b);
	tb_file(&b, "miren-backup.json", "{\"format\": \"something-else\", \"format_version\": 1}");
	tb_end(&b, &z);
	expect_fail(&t, z.buf, z.len, MIREN_EINVAL, "not a miren backup");
	tb_begin(&b);
	tb_file(&b, "miren-backup.json", "not json");
	tb_end(&b, &z);
	expect_fail(&t, z.buf, z.len, MIREN_EINVAL, "not a miren backup");
	strbuf_release(&z);
	tmp_free(&t);
}

static void test_newer_version(void **state MIREN_UNUSED)
{
	struct tmp t;
	tmp_make(&t);
	struct tb b;
	struct strbuf z = STRBUF_INIT;
	json_t *files;
	tb_begin(&b);
	tb_header(&b, 2);
	tb_entry(&b, "disk/", AE_IFDIR, 0755, NULL, 0, NULL, NULL);
	tb_file(&b, "disk/a", "alpha");
	files = json_pack("{s:s}", "disk/a", "alpha");
	tb_manifest(&b, files, false);
	json_decref(files);
	tb_end(&b, &z);
	expect_fail(&t, z.buf, z.len, MIREN_EINVAL,
		    "backup format version 2 is newer than this miren supports (1); upgrade miren");
	strbuf_release(&z);
	tmp_free(&t);
}

/* The hand-made builder itself makes files snap_read accepts. */
static void test_hand_made_ok(void **state MIREN_UNUSED)
{
	struct tmp t;
	tmp_make(&t);
	struct tb b;
	struct strbuf z = STRBUF_INIT;
	json_t *files;
	tb_good(&b, &files);
	tb_manifest(&b, files, false);
	tb_end(&b, &z);
	struct miren_error err = { 0 };
	json_t *h = NULL;
	struct snap_stats st;
	int rc = read_mem(z.buf, z.len, t.stage, 0, &h, &st, &err);
	if (rc)
		fail_msg("snap_read: %s", err.message);
	assert_int_equal(st.files, 2);
	assert_int_equal(st.bytes_in, 9);
	json_decref(h);
	/* max_bytes: 9 bytes do not fit in 8. */
	fs_remove_tree(t.stage);
	mkdir(t.stage, 0700);
	h = NULL;
	assert_int_equal(read_mem(z.buf, z.len, t.stage, 8, &h, NULL, &err), MIREN_ETOOBIG);
	assert_null(h);
	assert_contained(&t);
	json_decref(files);
	strbuf_release(&z);
	tmp_free(&t);
}

static void test_manifest_mismatches(void **state MIREN_UNUSED)
{
	struct tmp t;
	tmp_make(&t);
	struct tb b;
	struct strbuf z = STRBUF_INIT;
	json_t *files;

	/* A file whose content differs from its manifest digest. */
	tb_good(&b, &files);
	json_object_set_new(
		files, "disk/b",
		json_string(
			"sha:9a1c8e2f0b3d4a5c6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5"));
	tb_manifest(&b, files, false);
	tb_end(&b, &z);
	expect_fail(&t, z.buf, z.len, MIREN_EINVAL, "checksum mismatch for disk/b");
	json_decref(files);

	/* The archive digest is wrong. */
	tb_good(&b, &files);
	tb_manifest(&b, files, true);
	tb_end(&b, &z);
	expect_fail(&t, z.buf, z.len, MIREN_EINVAL, "archive checksum mismatch");
	json_decref(files);

	/* The manifest lists a file the archive does not have. */
	tb_good(&b, &files);
	json_object_set_new(files, "disk/c", json_string("gamma"));
	tb_manifest(&b, files, false);
	tb_end(&b, &z);
	expect_fail(&t, z.buf, z.len, MIREN_EINVAL,
		    "file disk/c listed in the manifest is missing from the backup");
	json_decref(files);

	/* The archive has a file the manifest does not list. */
	tb_good(&b, &files);
	json_object_del(files, "disk/b");
	tb_manifest(&b, files, false);
	tb_end(&b, &z);
	expect_fail(&t, z.buf, z.len, MIREN_EINVAL,
		    "file disk/b is in the backup but not in its manifest");
	json_decref(files);

	/* No manifest at all. */
	tb_good(&b, &files);
	tb_end(&b, &z);
	expect_fail(&t, z.buf, z.len, MIREN_EINVAL, "backup file is truncated (no manifest)");
	json_decref(files);

	/* Something after the manifest. */
	tb_good(&b, &files);
	tb_manifest(&b, files, false);
	tb_file(&b, "disk/late", "late");
	tb_end(&b, &z);
	expect_fail(&t, z.buf, z.len, MIREN_EINVAL,
		    "unexpected member 'disk/late' after the manifest");
	json_decref(files);

	/* A member outside disk/. */
	tb_good(&b, &files);
	tb_file(&b, "other/x", "x");
	tb_manifest(&b, files, false);
	tb_end(&b, &z);
	expect_fail(&t, z.buf, z.len, MIREN_EINVAL,
		    "unexpected member 'other/x' (not under disk/)");
	json_decref(files);

	/* The same file twice. */
	tb_good(&b, &files);
	tb_file(&b, "disk/a", "alpha");
	tb_manifest(&b, files, false);
	tb_end(&b, &z);
	expect_fail(&t, z.buf, z.len, MIREN_EINVAL, "member 'disk/a' appears twice");
	json_decref(files);
	strbuf_release(&z);
	tmp_free(&t);
}

/* One hostile member after a good start; snap_read must refuse it. */
static void hostile(struct tmp *t, const char *path, mode_t type, const char *symlink,
		    const char *hardlink, const char *want)
{
	struct tb b;
	struct strbuf z = STRBUF_INIT;
	json_t *files;
	tb_good(&b, &files);
	tb_entry(&b, path, type, 0644, type == AE_IFREG ? "x" : NULL, type == AE_IFREG ? 1 : 0,
		 symlink, hardlink);
	tb_file(&b, "disk/after", "after");
	json_object_set_new(files, "disk/after", json_string("after"));
	tb_manifest(&b, files, false);
	tb_end(&b, &z);
	expect_fail(t, z.buf, z.len, MIREN_EINVAL, want);
	json_decref(files);
	strbuf_release(&z);
}

static void test_hostile_members(void **state MIREN_UNUSED)
{
	struct tmp t;
	tmp_make(&t);
	char *abs = fs_join(t.root, "escape");
	hostile(&t, "disk/../escape", AE_IFREG, NULL, NULL, "'..' path component");
	hostile(&t, "disk/../../escape", AE_IFREG, NULL, NULL, "'..' path component");
	hostile(&t, "../escape", AE_IFREG, NULL, NULL, "'..' path component");
	hostile(&t, "disk/a/../../escape", AE_IFREG, NULL, NULL, "'..' path component");
	hostile(&t, abs, AE_IFREG, NULL, NULL, "has an absolute path");
	hostile(&t, "disk/l", AE_IFLNK, abs, NULL, "has an absolute target");
	hostile(&t, "disk/l", AE_IFLNK, "/etc/passwd", NULL, "has an absolute target");
	hostile(&t, "disk/l", AE_IFLNK, "../escape", NULL, "points outside the backup");
	hostile(&t, "disk/sub/l", AE_IFLNK, "../../escape", NULL, "points outside the backup");
	hostile(&t, "disk/l", AE_IFLNK, "x/../../escape", NULL, "points outside the backup");
	hostile(&t, "disk/h", AE_IFREG, NULL, "disk/a", "is a hard link");
	hostile(&t, "disk/h", AE_IFREG, NULL, "/etc/passwd", "is a hard link");
	hostile(&t, "disk/dev", AE_IFCHR, NULL, NULL, "is a device node");
	hostile(&t, "disk/dev", AE_IFBLK, NULL, NULL, "is a device node");
	hostile(&t, "disk/fifo", AE_IFIFO, NULL, NULL, "is a fifo");
	hostile(&t, "disk/./x", AE_IFREG, NULL, NULL, "has an invalid path");
	hostile(&t, "disk//x", AE_IFREG, NULL, NULL, "has an invalid path");
	hostile(&t, "disk", AE_IFREG, NULL, NULL, "has an invalid path");
	assert_false(fs_exists(abs));
	free(abs);

	/* A symlink inside is fine, but nothing may be written through it. */
	struct tb b;
	struct strbuf z = STRBUF_INIT;
	json_t *files;
	tb_good(&b, &files);
	tb_entry(&b, "disk/d", AE_IFDIR, 0755, NULL, 0, NULL, NULL);
	tb_entry(&b, "disk/d/up", AE_IFLNK, 0777, NULL, 0, "..", NULL);
	tb_file(&b, "disk/d/up/a2", "x");
	tb_manifest(&b, files, false);
	tb_end(&b, &z);
	expect_fail(&t, z.buf, z.len, MIREN_EINVAL, "lies below a symlink");
	json_decref(files);
	/* Nor may a file be replaced by a symlink of the same name. */
	tb_good(&b, &files);
	tb_entry(&b, "disk/a", AE_IFLNK, 0777, NULL, 0, "b", NULL);
	tb_manifest(&b, files, false);
	tb_end(&b, &z);
	expect_fail(&t, z.buf, z.len, MIREN_EINVAL, "appears twice");
	json_decref(files);
	strbuf_release(&z);
	tmp_free(&t);
}

static void test_staging_must_be_empty(void **state MIREN_UNUSED)
{
	struct tmp t;
	tmp_make(&t);
	char *p = fs_join(t.stage, "keep");
	write_file(p, "k", 1, 0600);
	struct miren_error err = { 0 };
	assert_int_not_equal(read_mem("x", 1, t.stage, 0, NULL, NULL, &err), 0);
	assert_true(fs_exists(p)); /* never removed */
	free(p);
	tmp_free(&t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_path_rules),
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_owner),
		cmocka_unit_test(test_skip_and_add_data),
		cmocka_unit_test(test_tar_lists),
		cmocka_unit_test(test_archive_digest_definition),
		cmocka_unit_test(test_writer_refuses_outside_links),
		cmocka_unit_test(test_writer_disk_full),
		cmocka_unit_test(test_writer_file_vanishes),
		cmocka_unit_test(test_writer_volatile_vanish),
		cmocka_unit_test(test_writer_digest_order),
		cmocka_unit_test(test_verify_only),
		cmocka_unit_test(test_restore_disk_full),
		cmocka_unit_test(test_truncated),
		cmocka_unit_test(test_bit_flips),
		cmocka_unit_test(test_not_ours),
		cmocka_unit_test(test_newer_version),
		cmocka_unit_test(test_hand_made_ok),
		cmocka_unit_test(test_manifest_mismatches),
		cmocka_unit_test(test_hostile_members),
		cmocka_unit_test(test_staging_must_be_empty),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
