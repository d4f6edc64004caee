/*
 * Unit tests of lib/backup/bstore.c, the backup store, over real files in
 * a temporary directory: round trips through snapshots in raw mode,
 * deduplication of a barely changed second backup, damaged, missing and
 * truncated pieces named precisely, gc that keeps every named chunk (also
 * with a writer running beside it), exports that snap_read accepts as a
 * .miren.zst file, and tmp/ cleaned at open.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "backup/bstore.h"
#include "disk/snapshot.h"
#include "util/compiler.h"
#include "util/fault.h"
#include "util/fs.h"
#include "util/strbuf.h"

/* ------------------------------------------------------------ helpers */

struct env {
	char root[64];
	char *store; /* root/store */
	char *src;   /* root/src: the tree backed up */
	char *stage; /* root/stage */
};

static void env_make(struct env *e)
{
	strcpy(e->root, "/tmp/miren-bstoretest.XXXXXX");
	assert_non_null(mkdtemp(e->root));
	e->store = fs_join(e->root, "store");
	e->src = fs_join(e->root, "src");
	e->stage = fs_join(e->root, "stage");
	assert_int_equal(mkdir(e->src, 0755), 0);
}

static void env_free(struct env *e)
{
	fs_remove_tree(e->root);
	free(e->store);
	free(e->src);
	free(e->stage);
}

static uint64_t rng_next(uint64_t *x)
{
	*x ^= *x << 13;
	*x ^= *x >> 7;
	*x ^= *x << 17;
	return *x;
}

/* Writes len pseudo-random bytes (from seed) to dir/name. */
static void write_random(const char *dir, const char *name, size_t len, uint64_t seed)
{
	char *p = fs_join(dir, name);
	int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	assert_true(fd >= 0);
	uint64_t x = seed * 2654435761u + 1;
	unsigned char *buf = malloc(len ? len : 1);
	for (size_t i = 0; i < len; i += 8) {
		uint64_t v = rng_next(&x);
		memcpy(buf + i, &v, len - i < 8 ? len - i : 8);
	}
	assert_int_equal(write(fd, buf, len), (ssize_t)len);
	close(fd);
	free(buf);
	free(p);
}

/* A tree of n random files of size bytes each, plus a small text file,
   a directory and a symlink. */
static void make_tree(const char *dir, int n, size_t size)
{
	for (int i = 0; i < n; i++) {
		char name[32];
		snprintf(name, sizeof(name), "f%03d", i);
		write_random(dir, name, size, (uint64_t)i + 1);
	}
	char *sub = fs_join(dir, "sub");
	assert_int_equal(mkdir(sub, 0750), 0);
	char *t = fs_join(sub, "hello.txt");
	int fd = open(t, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	assert_int_equal(write(fd, "hello\n", 6), 6);
	close(fd);
	char *l = fs_join(dir, "link");
	assert_int_equal(symlink("sub/hello.txt", l), 0);
	free(sub);
	free(t);
	free(l);
}

/* Backs dir up into s with meta {"disk": disk} (the lineage: unchanged
   files are taken from the last backup of disk); returns the id; st (may
   be NULL) gets the writer's stats. */
static char *backup_dir_st(struct bstore *s, const char *dir, const char *disk,
			   struct snap_stats *st)
{
	struct miren_error err = { 0 };
	struct bstore_writer *bw;
	assert_int_equal(bstore_write_begin(s, &bw, &err), 0);
	json_t *h = json_pack("{s:s}", "disk", disk);
	assert_int_equal(bstore_write_base(bw, h, &err), 0);
	struct snap_writer *w = bstore_snap_writer(bw, h, &err);
	json_decref(h);
	assert_non_null(w);
	assert_int_equal(snap_add_tree(w, dir, 0, NULL, NULL, &err), 0);
	assert_int_equal(snap_writer_finish(w, st, &err), 0);
	snap_writer_free(w);
	json_t *meta = json_pack("{s:s, s:s}", "disk", disk, "kind", "disk");
	char *id = NULL;
	enum miren_err rc = bstore_write_commit(bw, meta, &id, &err);
	if (rc)
		fail_msg("commit: %s", err.message);
	json_decref(meta);
	bstore_write_free(bw);
	assert_non_null(id);
	return id;
}

static char *backup_dir(struct bstore *s, const char *dir, const char *disk)
{
	return backup_dir_st(s, dir, disk, NULL);
}

/* Restores backup id into a fresh e->stage; returns snap_read_raw's code
   (err: the store's account when it has one). */
static enum miren_err restore(struct env *e, struct bstore *s, const char *id,
			      struct miren_error *err)
{
	fs_remove_tree(e->stage);
	assert_int_equal(mkdir(e->stage, 0700), 0);
	struct bstore_reader *r;
	enum miren_err rc = bstore_read_open(s, id, &r, err);
	if (rc)
		return rc;
	rc = snap_read_raw(bstore_source, r, e->stage, (uid_t)-1, (gid_t)-1, 0, NULL, NULL, err);
	if (rc && bstore_read_error(r))
		*err = *bstore_read_error(r);
	bstore_read_close(r);
	return rc;
}

static bool same_tree(const char *a, const char *b)
{
	char *cmd = NULL;
	if (asprintf(&cmd, "diff -r --no-dereference '%s' '%s' >/dev/null 2>&1", a, b) < 0)
		return false;
	int rc = system(cmd);
	free(cmd);
	return rc == 0;
}

static json_t *manifest(struct bstore *s, const char *id)
{
	json_t *m = NULL;
	struct miren_error err = { 0 };
	assert_int_equal(bstore_get(s, id, &m, &err), 0);
	return m;
}

static int64_t jint(const json_t *o, const char *k)
{
	return (int64_t)json_integer_value(json_object_get(o, k));
}

static char *chunk_file(struct env *e, const char *hex)
{
	char *p = NULL;
	assert_true(asprintf(&p, "%s/chunks/%.2s/%s", e->store, hex, hex) > 0);
	return p;
}

/* Number of chunk files in the store. */
static int count_chunks(struct env *e)
{
	int n = 0;
	for (int i = 0; i < 256; i++) {
		char p[512];
		snprintf(p, sizeof(p), "%s/chunks/%02x", e->store, i);
		DIR *d = opendir(p);
		if (!d)
			continue;
		struct dirent *de;
		while ((de = readdir(d)))
			if (strlen(de->d_name) == 64)
				n++;
		closedir(d);
	}
	return n;
}

static const char *chunk_hex(const json_t *m, size_t i)
{
	return json_string_value(
		json_array_get(json_array_get(json_object_get(m, "chunks"), i), 0));
}

static bool names_chunk(const json_t *m, const char *hex)
{
	json_t *chunks = json_object_get(m, "chunks");
	for (size_t i = 0; i < json_array_size(chunks); i++)
		if (!strcmp(chunk_hex(m, i), hex))
			return true;
	return false;
}

/* Every chunk of every listed backup is present (and check passes). */
static void assert_all_readable(struct bstore *s)
{
	json_t *l = bstore_list(s, NULL);
	size_t i;
	json_t *v;
	json_array_foreach (l, i, v) {
		struct miren_error err = { 0 };
		enum miren_err rc = bstore_check(s, json_string_value(json_object_get(v, "id")),
						 &err);
		if (rc)
			fail_msg("check: %s", err.message);
	}
	json_decref(l);
}

/* -------------------------------------------------------------- tests */

static void test_round_trip(void **state MIREN_UNUSED)
{
	struct env e;
	env_make(&e);
	make_tree(e.src, 4, 3 << 20); /* 12 MiB: several chunks */
	struct bstore *s;
	struct miren_error err = { 0 };
	assert_int_equal(bstore_open(e.store, &s, &err), 0);
	assert_string_equal(bstore_dir(s), e.store);
	char *id = backup_dir(s, e.src, "d1");
	assert_int_equal(strlen(id), 20);
	assert_int_equal(restore(&e, s, id, &err), 0);
	assert_true(same_tree(e.src, e.stage));

	json_t *m = manifest(s, id);
	assert_string_equal(json_string_value(json_object_get(m, "format")),
			    "miren-backup-manifest");
	assert_true(jint(m, "size") > 12 << 20);
	assert_true(json_array_size(json_object_get(m, "chunks")) >= 4);
	assert_true(jint(m, "stored_bytes") > 0);
	assert_string_equal(json_string_value(json_object_get(json_object_get(m, "meta"), "disk")),
			    "d1");
	json_decref(m);

	/* list and its filter */
	char *id2 = backup_dir(s, e.src, "d2");
	json_t *l = bstore_list(s, NULL);
	assert_int_equal(json_array_size(l), 2);
	assert_string_equal(json_string_value(json_object_get(json_array_get(l, 0), "id")), id);
	json_decref(l);
	json_t *f = json_pack("{s:s}", "disk", "d2");
	l = bstore_list(s, f);
	assert_int_equal(json_array_size(l), 1);
	assert_string_equal(json_string_value(json_object_get(json_array_get(l, 0), "id")), id2);
	json_decref(l);
	json_decref(f);

	/* not found */
	json_t *none = NULL;
	assert_int_equal(bstore_get(s, "20990101-000000-abcd", &none, &err), MIREN_ENOTFOUND);
	assert_non_null(strstr(err.message, "no backup '20990101-000000-abcd'"));
	assert_int_equal(bstore_get(s, "../../etc/passwd", &none, &err), MIREN_ENOTFOUND);
	assert_int_equal(bstore_remove(s, "20990101-000000-abcd", &err), MIREN_ENOTFOUND);

	free(id);
	free(id2);
	bstore_close(s);
	env_free(&e);
}

static void test_dedupe(void **state MIREN_UNUSED)
{
	struct env e;
	env_make(&e);
	make_tree(e.src, 48, 1 << 20); /* 48 MiB of incompressible data */
	struct bstore *s;
	struct miren_error err = { 0 };
	assert_int_equal(bstore_open(e.store, &s, &err), 0);
	char *a = backup_dir(s, e.src, "d1");
	/* A small change in the middle of one file. */
	char *p = fs_join(e.src, "f020");
	int fd = open(p, O_WRONLY);
	assert_int_equal(pwrite(fd, "changed!", 8, 500000), 8);
	close(fd);
	free(p);
	char *b = backup_dir(s, e.src, "d1");
	json_t *ma = manifest(s, a), *mb = manifest(s, b);
	int64_t sa = jint(ma, "stored_bytes"), sb = jint(mb, "stored_bytes");
	assert_true(sa > 48 << 20);
	/* the changed chunk, the first one (its header member's time) and the
	   last (the manifest member): a few MiB of 48 */
	if (sb * 5 > sa)
		fail_msg("the second backup stored %lld bytes of the first's %lld", (long long)sb,
			 (long long)sa);
	assert_true(sb > 0);
	assert_int_equal(restore(&e, s, b, &err), 0);
	assert_true(same_tree(e.src, e.stage));
	json_decref(ma);
	json_decref(mb);
	free(a);
	free(b);
	bstore_close(s);
	env_free(&e);
}

static void test_damaged_chunk(void **state MIREN_UNUSED)
{
	struct env e;
	env_make(&e);
	make_tree(e.src, 6, 1 << 20);
	struct bstore *s;
	struct miren_error err = { 0 };
	assert_int_equal(bstore_open(e.store, &s, &err), 0);
	char *a = backup_dir(s, e.src, "d1");
	char *b = backup_dir(s, e.src, "d1");
	char *c = backup_dir(s, e.src, "other");
	json_t *ma = manifest(s, a), *mb = manifest(s, b), *mc = manifest(s, c);
	/* a chunk in the middle that a and b share (c shares it too) */
	const char *hex = NULL;
	for (size_t i = 1; i < json_array_size(json_object_get(ma, "chunks")); i++)
		if (names_chunk(mb, chunk_hex(ma, i))) {
			hex = chunk_hex(ma, i);
			break;
		}
	assert_non_null(hex);
	char *cf = chunk_file(&e, hex);
	/* flip a byte in the middle of the compressed chunk */
	int fd = open(cf, O_RDWR);
	assert_true(fd >= 0);
	struct stat st;
	fstat(fd, &st);
	unsigned char byte;
	assert_int_equal(pread(fd, &byte, 1, st.st_size / 2), 1);
	byte ^= 0x40;
	assert_int_equal(pwrite(fd, &byte, 1, st.st_size / 2), 1);
	close(fd);

	assert_int_equal(bstore_check(s, a, &err), MIREN_EINVAL);
	assert_non_null(strstr(err.message, hex));
	assert_non_null(strstr(err.message, a));
	assert_non_null(strstr(err.message, "damaged"));
	memset(&err, 0, sizeof(err));
	assert_int_not_equal(restore(&e, s, b, &err), 0);
	assert_non_null(strstr(err.message, hex));
	assert_non_null(strstr(err.message, "damaged"));

	json_t *users = bstore_chunk_users(s, hex);
	size_t want = 0;
	json_t *all[3] = { ma, mb, mc };
	for (int i = 0; i < 3; i++)
		want += names_chunk(all[i], hex);
	assert_int_equal(json_array_size(users), want);
	/* (ids order by time to the second: a and b may be in either order) */
	for (size_t i = 0; i < json_array_size(users); i++) {
		const char *u = json_string_value(json_array_get(users, i));
		assert_true(!strcmp(u, a) || !strcmp(u, b) || !strcmp(u, c));
	}
	json_decref(users);

	/* export fails too, naming the chunk */
	struct strbuf out = STRBUF_INIT;
	assert_int_equal(bstore_export(s, a, (snap_sink_fn)strbuf_add, &out, &err), MIREN_EINVAL);
	assert_non_null(strstr(err.message, hex));
	strbuf_release(&out);

	/* missing: the same, "is missing" */
	assert_int_equal(unlink(cf), 0);
	assert_int_equal(bstore_check(s, b, &err), MIREN_EINVAL);
	assert_non_null(strstr(err.message, hex));
	assert_non_null(strstr(err.message, "missing"));
	memset(&err, 0, sizeof(err));
	assert_int_not_equal(restore(&e, s, a, &err), 0);
	assert_non_null(strstr(err.message, "missing"));

	free(cf);
	json_decref(ma);
	json_decref(mb);
	json_decref(mc);
	free(a);
	free(b);
	free(c);
	bstore_close(s);
	env_free(&e);
}

static void test_truncated_manifest(void **state MIREN_UNUSED)
{
	struct env e;
	env_make(&e);
	make_tree(e.src, 3, 1 << 20);
	struct bstore *s;
	struct miren_error err = { 0 };
	assert_int_equal(bstore_open(e.store, &s, &err), 0);
	char *a = backup_dir(s, e.src, "d1");
	char *b = backup_dir(s, e.src, "d1");
	char *mp = NULL;
	assert_true(asprintf(&mp, "%s/manifests/%s.json", e.store, a) > 0);
	struct stat st;
	assert_int_equal(stat(mp, &st), 0);
	assert_int_equal(truncate(mp, st.st_size / 2), 0);
	json_t *m = NULL;
	assert_int_equal(bstore_get(s, a, &m, &err), MIREN_EINVAL);
	assert_non_null(strstr(err.message, a));
	assert_non_null(strstr(err.message, "damaged"));
	assert_int_equal(bstore_check(s, a, &err), MIREN_EINVAL);
	struct bstore_reader *r;
	assert_int_equal(bstore_read_open(s, a, &r, &err), MIREN_EINVAL);
	/* list leaves it out; the other one is whole */
	json_t *l = bstore_list(s, NULL);
	assert_int_equal(json_array_size(l), 1);
	json_decref(l);
	assert_int_equal(restore(&e, s, b, &err), 0);

	/* a chunk list edited by hand no longer matches its checksum */
	char *bp = NULL;
	assert_true(asprintf(&bp, "%s/manifests/%s.json", e.store, b) > 0);
	struct strbuf sb = STRBUF_INIT;
	assert_int_equal(strbuf_read_file(&sb, bp), 0);
	json_t *bm = json_loads(sb.buf, 0, NULL);
	json_array_remove(json_object_get(bm, "chunks"), 1);
	json_object_set_new(bm, "size", json_integer(jint(bm, "size") - 1));
	assert_int_equal(json_dump_file(bm, bp, 0), 0);
	assert_int_equal(bstore_get(s, b, &m, &err), MIREN_EINVAL);
	assert_non_null(strstr(err.message, "damaged"));
	json_decref(bm);
	strbuf_release(&sb);
	free(bp);
	free(mp);
	free(a);
	free(b);
	bstore_close(s);
	env_free(&e);
}

static void test_gc(void **state MIREN_UNUSED)
{
	struct env e;
	env_make(&e);
	make_tree(e.src, 8, 1 << 20);
	struct bstore *s;
	struct miren_error err = { 0 };
	assert_int_equal(bstore_open(e.store, &s, &err), 0);
	char *a = backup_dir(s, e.src, "d1");
	/* change most of it */
	for (int i = 0; i < 6; i++) {
		char name[16];
		snprintf(name, sizeof(name), "f%03d", i);
		write_random(e.src, name, 1 << 20, 1000 + i);
	}
	char *b = backup_dir(s, e.src, "d1");
	json_t *ma = manifest(s, a), *mb = manifest(s, b);
	int before = count_chunks(&e);
	uint64_t removed = 1;
	assert_int_equal(bstore_gc(s, &removed, &err), 0);
	assert_int_equal(removed, 0); /* all named */
	assert_int_equal(count_chunks(&e), before);

	assert_int_equal(bstore_remove(s, a, &err), 0);
	json_t *none = NULL;
	assert_int_equal(bstore_get(s, a, &none, &err), MIREN_ENOTFOUND);
	assert_int_equal(bstore_gc(s, &removed, &err), 0);
	assert_true(removed > 4 << 20);
	/* exactly b's chunks are left */
	json_t *uniq = json_object();
	for (size_t i = 0; i < json_array_size(json_object_get(mb, "chunks")); i++)
		json_object_set_new(uniq, chunk_hex(mb, i), json_true());
	assert_int_equal(count_chunks(&e), (int)json_object_size(uniq));
	json_decref(uniq);
	assert_int_equal(bstore_check(s, b, &err), 0);
	assert_int_equal(restore(&e, s, b, &err), 0);
	assert_true(same_tree(e.src, e.stage));

	/* a damaged (truncated) manifest still keeps the chunks it names */
	char *c = backup_dir(s, e.src, "d1"); /* shares all of b's chunks */
	json_t *mc = manifest(s, c);
	assert_int_equal(bstore_remove(s, b, &err), 0);
	char *cp = NULL;
	assert_true(asprintf(&cp, "%s/manifests/%s.json", e.store, c) > 0);
	struct stat st;
	stat(cp, &st);
	assert_int_equal(truncate(cp, st.st_size - 3), 0); /* loses only the end */
	assert_int_equal(bstore_gc(s, &removed, &err), 0);
	for (size_t i = 0; i < json_array_size(json_object_get(mc, "chunks")); i++) {
		char *f = chunk_file(&e, chunk_hex(mc, i));
		assert_int_equal(access(f, F_OK), 0);
		free(f);
	}
	json_decref(mc);
	free(cp);
	free(c);

	json_decref(ma);
	json_decref(mb);
	free(a);
	free(b);
	bstore_close(s);
	env_free(&e);
}

struct gc_thread {
	struct bstore *s;
	atomic_bool done;
	enum miren_err rc;
	uint64_t removed;
};

static void *gc_main(void *arg)
{
	struct gc_thread *g = arg;
	struct miren_error err = { 0 };
	g->rc = bstore_gc(g->s, &g->removed, &err);
	atomic_store(&g->done, true);
	return NULL;
}

static void test_gc_concurrent_writer(void **state MIREN_UNUSED)
{
	struct env e;
	env_make(&e);
	make_tree(e.src, 8, 1 << 20);
	struct bstore *s, *s2;
	struct miren_error err = { 0 };
	assert_int_equal(bstore_open(e.store, &s, &err), 0);
	/* a second handle, as another process would have */
	assert_int_equal(bstore_open(e.store, &s2, &err), 0);
	/* a writer whose chunks are all in the store, not yet named */
	struct bstore_writer *bw;
	assert_int_equal(bstore_write_begin(s, &bw, &err), 0);
	struct snap_writer *w = snap_writer_new_raw(bstore_sink, bw, NULL, &err);
	assert_int_equal(snap_add_tree(w, e.src, 0, NULL, NULL, &err), 0);
	assert_int_equal(snap_writer_finish(w, NULL, &err), 0);
	snap_writer_free(w);
	/* (the writer's threads store its chunks as they come) */
	for (int i = 0; i < 500 && count_chunks(&e) < 3; i++)
		usleep(10 * 1000);
	assert_true(count_chunks(&e) >= 3);

	struct gc_thread g = { .s = s2 };
	pthread_t t;
	assert_int_equal(pthread_create(&t, NULL, gc_main, &g), 0);
	usleep(300 * 1000);
	assert_false(atomic_load(&g.done)); /* waits for the writer */
	char *id = NULL;
	assert_int_equal(bstore_write_commit(bw, NULL, &id, &err), 0);
	bstore_write_free(bw);
	pthread_join(t, NULL);
	assert_int_equal(g.rc, 0);
	assert_int_equal(g.removed, 0);
	assert_int_equal(restore(&e, s, id, &err), 0);
	assert_true(same_tree(e.src, e.stage));

	/* an aborted writer's chunks go at the next gc */
	char *src2 = fs_join(e.root, "src2");
	assert_int_equal(mkdir(src2, 0700), 0);
	write_random(src2, "new", 3 << 20, 77);
	assert_int_equal(bstore_write_begin(s, &bw, &err), 0);
	w = snap_writer_new_raw(bstore_sink, bw, NULL, &err);
	assert_int_equal(snap_add_tree(w, src2, 0, NULL, NULL, &err), 0);
	free(src2);
	assert_int_equal(snap_writer_finish(w, NULL, &err), 0);
	snap_writer_free(w);
	bstore_write_free(bw);
	assert_int_equal(bstore_gc(s2, &g.removed, &err), 0);
	assert_true(g.removed > 2 << 20);
	assert_all_readable(s);
	free(id);
	bstore_close(s2);
	bstore_close(s);
	env_free(&e);
}

static void test_export(void **state MIREN_UNUSED)
{
	struct env e;
	env_make(&e);
	make_tree(e.src, 3, 2 << 20);
	struct bstore *s;
	struct miren_error err = { 0 };
	assert_int_equal(bstore_open(e.store, &s, &err), 0);
	char *id = backup_dir(s, e.src, "d1");
	struct strbuf out = STRBUF_INIT;
	assert_int_equal(bstore_export(s, id, (snap_sink_fn)strbuf_add, &out, &err), 0);
	fs_remove_tree(e.stage);
	assert_int_equal(mkdir(e.stage, 0700), 0);
	struct snap_mem mem = { out.buf, out.len, 0 };
	json_t *hdr = NULL;
	struct snap_stats st = { 0 };
	enum miren_err rc = snap_read(snap_source_mem, &mem, e.stage, (uid_t)-1, (gid_t)-1, 0, &hdr,
				      &st, &err);
	if (rc)
		fail_msg("snap_read of the export: %s", err.message);
	assert_true(same_tree(e.src, e.stage));
	assert_string_equal(json_string_value(json_object_get(hdr, "disk")), "d1");
	json_t *m = manifest(s, id);
	assert_int_equal(st.tar_bytes, jint(m, "size"));
	json_decref(m);
	json_decref(hdr);
	/* the same bytes as tar reads them */
	char *zf = fs_join(e.root, "x.miren.zst");
	int fd = open(zf, O_WRONLY | O_CREAT, 0600);
	assert_int_equal(write(fd, out.buf, out.len), (ssize_t)out.len);
	close(fd);
	char *cmd = NULL;
	assert_true(asprintf(&cmd, "tar --zstd -tf '%s' | grep -qx disk/f001", zf) > 0);
	assert_int_equal(system(cmd), 0);
	free(cmd);
	free(zf);
	strbuf_release(&out);
	free(id);
	bstore_close(s);
	env_free(&e);
}

static void test_tmp_cleaned(void **state MIREN_UNUSED)
{
	struct env e;
	env_make(&e);
	struct bstore *s, *s2;
	struct miren_error err = { 0 };
	assert_int_equal(bstore_open(e.store, &s, &err), 0);
	/* leftovers of a crashed process: a lock nobody holds, its directory
	   with a partial chunk, a directory without a lock, a stray file */
	char p[512];
	snprintf(p, sizeof(p), "%s/tmp/1-deadbeef", e.store);
	assert_int_equal(mkdir(p, 0700), 0);
	snprintf(p, sizeof(p), "%s/tmp/1-deadbeef/chunk-1", e.store);
	write_random(e.store, "tmp/1-deadbeef/chunk-1", 1000, 1);
	write_random(e.store, "tmp/1-deadbeef.lock", 0, 1);
	snprintf(p, sizeof(p), "%s/tmp/2-cafecafe", e.store);
	assert_int_equal(mkdir(p, 0700), 0);
	write_random(e.store, "tmp/stray", 10, 1);
	assert_int_equal(bstore_open(e.store, &s2, &err), 0);
	/* only the two live handles' directories and locks are left */
	snprintf(p, sizeof(p), "%s/tmp", e.store);
	DIR *d = opendir(p);
	struct dirent *de;
	int n = 0;
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		assert_null(strstr(de->d_name, "deadbeef"));
		assert_null(strstr(de->d_name, "cafecafe"));
		assert_null(strstr(de->d_name, "stray"));
		n++;
	}
	closedir(d);
	assert_int_equal(n, 4);
	bstore_close(s2);
	bstore_close(s);
	/* closing removes a handle's own */
	d = opendir(p);
	n = 0;
	while ((de = readdir(d)))
		if (de->d_name[0] != '.')
			n++;
	closedir(d);
	assert_int_equal(n, 0);
	env_free(&e);
}

/* ------------------------------------------------------ crash walk */

/* The child's work, without cmocka (it may be killed anywhere): a backup
   of dir, the removal of old, then gc.  Exit status 0: all done. */
static int child_run(const char *store, const char *dir, const char *old)
{
	struct miren_error err = { 0 };
	struct bstore *s;
	if (bstore_open(store, &s, &err))
		return 2;
	struct bstore_writer *bw;
	if (bstore_write_begin(s, &bw, &err))
		return 3;
	json_t *lineage = json_pack("{s:s}", "disk", "d1");
	if (bstore_write_base(bw, lineage, &err))
		return 8;
	json_decref(lineage);
	struct snap_writer *w = bstore_snap_writer(bw, NULL, &err);
	if (!w || snap_add_tree(w, dir, 0, NULL, NULL, &err) || snap_writer_finish(w, NULL, &err))
		return 4;
	snap_writer_free(w);
	json_t *meta = json_pack("{s:s}", "disk", "d1");
	char *id = NULL;
	if (bstore_write_commit(bw, meta, &id, &err))
		return 5;
	json_decref(meta);
	bstore_write_free(bw);
	free(id);
	if (bstore_remove(s, old, &err))
		return 6;
	uint64_t removed;
	if (bstore_gc(s, &removed, &err))
		return 7;
	bstore_close(s);
	return 0;
}

/*
 * At every fault point of the store, and at delays after each (so the kill
 * lands inside a step: a chunk half written, a gc half done), a child
 * process backing up, removing and collecting is killed; then, opening
 * the store again: tmp/ holds only the new handle's own, every manifest's
 * chunks are all there and whole, the backup taken before survives unless
 * its removal happened, gc after the crash keeps every named chunk, and the
 * new backup, when it committed, restores to the tree.
 */
static void test_crash_walk(void **state MIREN_UNUSED)
{
	static const char *const points[] = {
		"bstore:chunk-written", "bstore:chunks-synced", "bstore:manifest-written",
		"bstore:committed",     "bstore:removed",       "bstore:gc-marked",
		"bstore:gc-removed",
	};
	static const int delays[] = { -1, 0, 2, 10, 40 };
	int crashed = 0, runs = 0;
	for (size_t pi = 0; pi < sizeof(points) / sizeof(*points); pi++) {
		for (size_t di = 0; di < sizeof(delays) / sizeof(*delays); di++) {
			struct env e;
			env_make(&e);
			make_tree(e.src, 6, 1 << 20);
			struct bstore *s;
			struct miren_error err = { 0 };
			assert_int_equal(bstore_open(e.store, &s, &err), 0);
			char *old = backup_dir(s, e.src, "d1");
			bstore_close(s);
			/* change much of the tree: new chunks, and chunks only
			   the old backup names */
			for (int i = 0; i < 4; i++) {
				char name[16];
				snprintf(name, sizeof(name), "f%03d", i);
				write_random(e.src, name, 1 << 20, 500 + i + 10 * di);
			}
			char fault[128];
			if (delays[di] < 0)
				snprintf(fault, sizeof(fault), "%s", points[pi]);
			else
				snprintf(fault, sizeof(fault), "%s@%d", points[pi], delays[di]);
			pid_t pid = fork();
			assert_true(pid >= 0);
			if (pid == 0) {
				setenv("MIREN_FAULT", fault, 1);
				fault_init();
				_exit(child_run(e.store, e.src, old));
			}
			int status;
			assert_int_equal(waitpid(pid, &status, 0), pid);
			runs++;
			if (WIFSIGNALED(status)) {
				assert_int_equal(WTERMSIG(status), SIGKILL);
				crashed++;
			} else {
				assert_true(WIFEXITED(status));
				if (WEXITSTATUS(status) != 0)
					fail_msg("%s: the child failed (%d)", fault,
						 WEXITSTATUS(status));
				/* a delay may outlast the work: fine */
				assert_true(delays[di] >= 0);
			}

			assert_int_equal(bstore_open(e.store, &s, &err), 0);
			/* tmp/: only this handle's directory and lock */
			char tp[512];
			snprintf(tp, sizeof(tp), "%s/tmp", e.store);
			DIR *d = opendir(tp);
			struct dirent *de;
			int n = 0;
			while ((de = readdir(d)))
				if (de->d_name[0] != '.')
					n++;
			closedir(d);
			if (n != 2)
				fail_msg("%s: %d entries in tmp/ after open", fault, n);
			/* no manifest names a missing or damaged chunk */
			assert_all_readable(s);
			json_t *l = bstore_list(s, NULL);
			size_t nb = json_array_size(l);
			assert_true(nb >= 1 && nb <= 2);
			/* gc after the crash keeps every named chunk */
			uint64_t removed;
			assert_int_equal(bstore_gc(s, &removed, &err), 0);
			assert_all_readable(s);
			/* the newest backup is the new tree once it committed */
			const char *newest = json_string_value(
				json_object_get(json_array_get(l, nb - 1), "id"));
			if (strcmp(newest, old) != 0) {
				assert_int_equal(restore(&e, s, newest, &err), 0);
				assert_true(same_tree(e.src, e.stage));
			} else {
				assert_int_equal(nb, 1);
			}
			/* after gc the store holds exactly the named chunks */
			json_t *named = json_object();
			size_t i;
			json_t *v;
			json_array_foreach (l, i, v) {
				json_t *m = manifest(s,
						     json_string_value(json_object_get(v, "id")));
				for (size_t k = 0;
				     k < json_array_size(json_object_get(m, "chunks")); k++)
					json_object_set_new(named, chunk_hex(m, k), json_true());
				json_decref(m);
			}
			assert_int_equal(count_chunks(&e), (int)json_object_size(named));
			json_decref(named);
			json_decref(l);
			bstore_close(s);
			free(old);
			env_free(&e);
		}
	}
	/* every point was reached at least once without a delay */
	assert_true(crashed >= (int)(sizeof(points) / sizeof(*points)));
	print_message("crash walk: %d runs, %d killed\n", runs, crashed);
}

/* Sets the mtime of dir/f<i> (its ctime becomes now). */
static void set_mtime(const char *dir, int i, time_t t)
{
	char name[16];
	snprintf(name, sizeof(name), "f%03d", i);
	char *p = fs_join(dir, name);
	struct timespec ts[2] = { { t, 0 }, { t, 0 } };
	assert_int_equal(utimensat(AT_FDCWD, p, ts, 0), 0);
	free(p);
}

static json_t *file_rec(const json_t *m, const char *name)
{
	return json_object_get(json_object_get(m, "files"), name);
}

/*
 * Unchanged large files are taken from the previous backup of the same
 * disk without being read (the sink gets only the rest); a file changed
 * in any way (content, even with its mtime put back), or changed less
 * than 2 s before it was read, is read again; the result restores to the
 * tree, and its export and stream carry a correct archive digest.
 */
static void test_reuse(void **state MIREN_UNUSED)
{
	struct env e;
	env_make(&e);
	make_tree(e.src, 8, 3 << 20);            /* 24 MiB in files of their own chunks */
	write_random(e.src, "small", 100000, 9); /* too small for its own */
	struct bstore *s;
	struct miren_error err = { 0 };
	assert_int_equal(bstore_open(e.store, &s, &err), 0);

	/* Times that are not clearly in the past (here: in the future) are
	   not trusted next time. */
	for (int i = 0; i < 8; i++)
		set_mtime(e.src, i, time(NULL) + 60);
	struct snap_stats st1 = { 0 };
	char *a = backup_dir_st(s, e.src, "d1", &st1);
	json_t *ma = manifest(s, a);
	/* (its chunks are recorded, for the quick check, its identity not) */
	assert_non_null(file_rec(ma, "disk/f000"));
	assert_null(json_object_get(file_rec(ma, "disk/f000"), "ino"));
	assert_null(file_rec(ma, "disk/small"));
	assert_true(json_array_size(json_object_get(ma, "digests")) >= 1);
	for (int i = 0; i < 8; i++)
		set_mtime(e.src, i, time(NULL) - 60);
	sleep(3); /* ctimes (now) clearly in the past, whatever the time granularity */
	struct snap_stats st2 = { 0 };
	char *b = backup_dir_st(s, e.src, "d1", &st2);
	json_t *mb = manifest(s, b);
	json_t *fb = file_rec(mb, "disk/f003");
	assert_non_null(fb);
	assert_int_equal(jint(fb, "size"), 3 << 20);
	assert_true(jint(fb, "count") >= 1);
	/* every file read again so far: the sink had all of it */
	assert_true(st2.zst_bytes >= 24 << 20);
	/* nothing new to store, either */
	assert_true(jint(mb, "stored_bytes") < 1 << 20);

	/* c: one file's content changed, another's content changed with its
	   mtime put back (same size): both read again, the rest reused */
	write_random(e.src, "f001", 3 << 20, 4242);
	char *p = fs_join(e.src, "f002");
	struct stat before;
	assert_int_equal(stat(p, &before), 0);
	int fd = open(p, O_WRONLY);
	assert_int_equal(pwrite(fd, "X", 1, 12345), 1);
	close(fd);
	struct timespec ts[2] = { before.st_atim, before.st_mtim };
	assert_int_equal(utimensat(AT_FDCWD, p, ts, 0), 0);
	free(p);
	struct snap_stats st3 = { 0 };
	char *c = backup_dir_st(s, e.src, "d1", &st3);
	json_t *mc = manifest(s, c);
	/* the sink got only the two files changed (and headers, small) */
	if (st3.zst_bytes > (6 << 20) + 400000 || st3.zst_bytes < 6 << 20)
		fail_msg("the sink got %llu bytes", (unsigned long long)st3.zst_bytes);
	assert_int_equal(st3.tar_bytes, jint(mc, "size"));
	/* f002 was read again: its first MiB (with the change) is a new
	   chunk, the rest the same chunks as in b (the quick check: same
	   seed, same XXH3-128 at the same place), each entry with its XXH3 */
	assert_string_equal(json_string_value(json_object_get(mc, "xxh3_seed")),
			    json_string_value(json_object_get(mb, "xxh3_seed")));
	json_t *f2b = file_rec(mb, "disk/f002"), *f2c = file_rec(mc, "disk/f002");
	assert_int_equal(jint(f2c, "count"), 3);
	for (int64_t i = 0; i < 3; i++) {
		const char *was = chunk_hex(mb, (size_t)(jint(f2b, "first") + i));
		const char *now = chunk_hex(mc, (size_t)(jint(f2c, "first") + i));
		if (i == 0)
			assert_string_not_equal(was, now);
		else
			assert_string_equal(was, now);
		assert_int_equal(json_array_size(json_array_get(json_object_get(mc, "chunks"),
								(size_t)(jint(f2c, "first") + i))),
				 3);
	}
	/* f003 was reused: the same chunks as in b */
	json_t *fc = file_rec(mc, "disk/f003");
	assert_non_null(fc);
	for (int64_t i = 0; i < jint(fc, "count"); i++)
		assert_string_equal(chunk_hex(mc, (size_t)(jint(fc, "first") + i)),
				    chunk_hex(mb, (size_t)(jint(fb, "first") + i)));
	assert_int_equal(restore(&e, s, c, &err), 0);
	assert_true(same_tree(e.src, e.stage));

	/* the export is a whole .miren.zst with the right archive digest */
	struct strbuf out = STRBUF_INIT;
	assert_int_equal(bstore_export(s, c, (snap_sink_fn)strbuf_add, &out, &err), 0);
	fs_remove_tree(e.stage);
	assert_int_equal(mkdir(e.stage, 0700), 0);
	struct snap_mem mem = { out.buf, out.len, 0 };
	enum miren_err rc = snap_read(snap_source_mem, &mem, e.stage, (uid_t)-1, (gid_t)-1, 0, NULL,
				      NULL, &err);
	if (rc)
		fail_msg("snap_read of the export: %s", err.message);
	assert_true(same_tree(e.src, e.stage));
	strbuf_release(&out);

	/* another lineage does not reuse d1's files */
	struct snap_stats st4 = { 0 };
	char *d = backup_dir_st(s, e.src, "d2", &st4);
	assert_true(st4.zst_bytes >= 24 << 20);

	/* a file replaced by another of the same size and times (a new
	   inode, a new ctime) is read again */
	sleep(3);
	json_decref(mc);
	free(c);
	c = backup_dir(s, e.src, "d1"); /* f001, f002 trusted from here on */
	assert_non_null(json_object_get(file_rec(mc = manifest(s, c), "disk/f001"), "ino"));
	p = fs_join(e.src, "f004");
	char *q = fs_join(e.src, "f004.new");
	assert_int_equal(stat(p, &before), 0);
	write_random(e.src, "f004.new", 3 << 20, 99);
	struct timespec ts2[2] = { before.st_atim, before.st_mtim };
	assert_int_equal(utimensat(AT_FDCWD, q, ts2, 0), 0);
	assert_int_equal(rename(q, p), 0);
	free(p);
	free(q);
	char *c2 = backup_dir_st(s, e.src, "d1", &st3);
	assert_true(st3.zst_bytes >= 3 << 20 && st3.zst_bytes < (3 << 20) + 400000);
	assert_int_equal(restore(&e, s, c2, &err), 0);
	assert_true(same_tree(e.src, e.stage));
	free(c2);
	json_decref(mc);
	json_decref(ma);
	json_decref(mb);
	free(a);
	free(b);
	free(c);
	free(d);
	bstore_close(s);
	env_free(&e);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_dedupe),
		cmocka_unit_test(test_damaged_chunk),
		cmocka_unit_test(test_truncated_manifest),
		cmocka_unit_test(test_gc),
		cmocka_unit_test(test_gc_concurrent_writer),
		cmocka_unit_test(test_export),
		cmocka_unit_test(test_tmp_cleaned),
		cmocka_unit_test(test_crash_walk),
		cmocka_unit_test(test_reuse),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
