/*
 * Unit tests of lib/addon/scratch.c that need no database server: a
 * scratch area a killed daemon left (in dirs mode) is removed at start,
 * and nothing else in disks/ is; a backup that is no snapshot is refused
 * with nothing left behind; a backup of one addon is refused as another's
 * (read whole first: the header says which).  The servers themselves are
 * the end-to-end tests' (t0240-t0242).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "addon/scratch.h"
#include "disk/volume.h"
#include "util/fs.h"
#include "util/paths.h"

struct fixture {
	char root[256];
	struct data_paths *paths;
	struct volumes *volumes;
	struct addon_ctx ctx;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	snprintf(f->root, sizeof(f->root), "/tmp/miren-test-scratch.XXXXXX");
	assert_non_null(mkdtemp(f->root));
	setenv("MIREN_DISKS", "dirs", 1);
	f->paths = data_paths_new(f->root);
	f->volumes = volumes_open(f->root, (uid_t)-1, (gid_t)-1);
	f->ctx = (struct addon_ctx){ .data_dir = f->root,
				     .paths = f->paths,
				     .uid = (uid_t)-1,
				     .gid = (gid_t)-1,
				     .volumes = f->volumes };
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	volumes_free(f->volumes);
	data_paths_free(f->paths);
	fs_remove_tree(f->root);
	free(f);
	return 0;
}

static size_t scratch_areas(const struct fixture *f)
{
	char *disks = data_paths_disks(f->paths);
	DIR *d = opendir(disks);
	struct dirent *de;
	size_t n = 0;
	while (d && (de = readdir(d)))
		n += !strncmp(de->d_name, ".scratch-", 9);
	if (d)
		closedir(d);
	free(disks);
	return n;
}

static void touch(const char *path)
{
	FILE *fp = fopen(path, "w");
	assert_non_null(fp);
	fputs("x", fp);
	fclose(fp);
}

static void test_recover_removes_areas(void **state)
{
	struct fixture *f = *state;
	char *disks = data_paths_disks(f->paths);
	char *area = fs_join(disks, ".scratch-0123456789ab");
	char *in = fs_join(area, "in");
	char *file = fs_join(in, "data");
	char *keep = fs_join(disks, "pg-pg-app-s1-data");
	char *kept = fs_join(keep, "file");
	assert_int_equal(fs_mkdir_p(in, 0700), 0);
	touch(file);
	assert_int_equal(fs_mkdir_p(keep, 0700), 0);
	touch(kept);
	assert_int_equal(scratch_areas(f), 1);
	scratch_recover(&f->ctx);
	assert_int_equal(scratch_areas(f), 0);
	assert_true(fs_exists(kept)); /* a disk is no scratch area */
	free(kept);
	free(keep);
	free(file);
	free(in);
	free(area);
	free(disks);
}

static void test_not_a_snapshot(void **state)
{
	struct fixture *f = *state;
	static const char junk[] = "this is not a backup";
	struct snap_mem mem = { junk, sizeof(junk) - 1, 0 };
	struct scratch_source src = { snap_source_mem, &mem, false };
	struct scratch *s = NULL;
	struct miren_error err;
	enum miren_err rc = scratch_open(&f->ctx, NULL, &src, NULL, &s, &err);
	assert_int_equal(rc, MIREN_EINVAL);
	assert_null(s);
	assert_non_null(strstr(err.message, "zstd"));
	assert_int_equal(scratch_areas(f), 0);
}

/* A snapshot (written by the real writer) whose header names addon. */
static void write_snapshot(const char *path, const char *addon)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	json_t *h = json_pack("{s:s, s:i, s:s, s:s}", "disk", "d", "size", 0, "addon", addon,
			      "created_at", "2026-12-01T00:00:00Z");
	struct miren_error err;
	struct snap_writer *w = snap_writer_new(snap_sink_fd, &fd, h, 0, 1, &err);
	assert_non_null(w);
	assert_int_equal(snap_add_data(w, "x", "y", 1, 0600, &err), 0);
	assert_int_equal(snap_writer_finish(w, NULL, &err), 0);
	snap_writer_free(w);
	json_decref(h);
	close(fd);
}

static void test_other_addon(void **state)
{
	struct fixture *f = *state;
	const struct addon_def *const *all = addon_all();
	if (!all[0] || !all[1]) {
		skip();
		return;
	}
	char *path = fs_join(f->root, "b.miren.zst");
	write_snapshot(path, all[0]->name);
	int fd = open(path, O_RDONLY);
	assert_true(fd >= 0);
	struct scratch_source src = { snap_source_fd, &fd, false };
	struct scratch *s = NULL;
	struct miren_error err;
	enum miren_err rc = scratch_open(&f->ctx, all[1], &src, NULL, &s, &err);
	close(fd);
	assert_int_equal(rc, MIREN_EINVAL);
	assert_non_null(strstr(err.message, all[0]->name));
	assert_non_null(strstr(err.message, all[1]->name));
	assert_int_equal(scratch_areas(f), 0);
	free(path);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_recover_removes_areas, setup, teardown),
		cmocka_unit_test_setup_teardown(test_not_a_snapshot, setup, teardown),
		cmocka_unit_test_setup_teardown(test_other_addon, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
