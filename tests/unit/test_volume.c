/*
 * Unit tests of lib/disk/volume.c against real loop devices and ext4: an
 * image is sparse, mounted at its directory and owned by the service user;
 * a full disk gives ENOSPC to its writer and to nobody else; it grows
 * online and refuses to shrink; removal leaves no image, mount or loop
 * device; after a simulated reboot (mount and device gone) and with a
 * leaked loop device, volumes_recover mounts it again with its data; a
 * move keeps the data under the new name; a spare is taken by the next
 * disk of its size; a filled spare is taken whole by the next disk of its
 * kind and size, and one killed while it is prepared is a leftover that
 * the invariants report and volumes_recover removes.  The ext4 tests are skipped, saying why, when
 * the test does not run as root or the kernel has no loop devices; the dirs mode and size parsing
 * run everywhere.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include "disk/volume.h"
#include "util/fs.h"

#define MiB (1024ULL * 1024)
#define EXT4_MAGIC 0xEF53

static char base[256];
static uid_t svc_uid = (uid_t)-1;
static gid_t svc_gid = (gid_t)-1;

static bool loop_usable(void)
{
	if (geteuid() != 0) {
		fprintf(stderr, "skipped: ext4 volume tests need root (loop devices, mount)\n");
		return false;
	}
	if (access("/dev/loop-control", R_OK | W_OK) != 0) {
		fprintf(stderr, "skipped: no loop device support (/dev/loop-control: %s)\n",
			strerror(errno));
		return false;
	}
	return true;
}

static int setup(void **state)
{
	snprintf(base, sizeof(base), "/tmp/miren-test-volume-XXXXXX");
	if (!mkdtemp(base))
		return -1;
	chmod(base, 0755);
	struct passwd *pw = getpwnam("miren");
	if (!pw)
		pw = getpwnam("nobody");
	if (pw && geteuid() == 0) {
		svc_uid = pw->pw_uid;
		svc_gid = pw->pw_gid;
	}
	unsetenv("MIREN_DISKS");
	*state = volumes_open(base, svc_uid, svc_gid);
	return 0;
}

/* Removes every volume left (also mounted ones) and the directory. */
static int teardown(void **state)
{
	struct volumes *v = *state;
	char *dir = fs_join(base, "volumes");
	DIR *d = opendir(dir);
	struct dirent *de;
	while (d && (de = readdir(d))) {
		size_t l = strlen(de->d_name);
		if (l > 4 && !strcmp(de->d_name + l - 4, ".img") &&
		    strncmp(de->d_name, ".spare-", 7)) {
			char *n = strndup(de->d_name, l - 4);
			volume_remove(v, n, NULL);
			free(n);
		}
	}
	if (d)
		closedir(d);
	free(dir);
	volumes_free(v);
	fs_remove_tree(base);
	return 0;
}

static char *path_in(const char *a, const char *b)
{
	char *p = malloc(strlen(base) + strlen(a) + strlen(b) + 3);
	sprintf(p, "%s/%s/%s", base, a, b);
	return p;
}

/* Is some loop device backed by `image`? */
static bool loop_backs(const char *image)
{
	DIR *d = opendir("/sys/block");
	struct dirent *de;
	bool found = false;
	while (d && !found && (de = readdir(d))) {
		char p[300], b[4096] = "";
		snprintf(p, sizeof(p), "/sys/block/%s/loop/backing_file", de->d_name);
		FILE *f = fopen(p, "r");
		if (f && fgets(b, sizeof(b), f)) {
			b[strcspn(b, "\n")] = '\0';
			found = !strncmp(b, image, strlen(image));
		}
		if (f)
			fclose(f);
	}
	if (d)
		closedir(d);
	return found;
}

/* Writes 1 MiB blocks into path until the disk is full or max_mib were
 * written; returns the errno that stopped it (0: max reached). */
static int fill(const char *path, int max_mib)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (fd < 0)
		return errno;
	static char buf[1 << 20];
	memset(buf, 'x', sizeof(buf));
	int e = 0;
	for (int i = 0; i < max_mib && !e; i++) {
		ssize_t w = write(fd, buf, sizeof(buf));
		if (w < (ssize_t)sizeof(buf))
			e = w < 0 ? errno : ENOSPC;
	}
	if (!e && fsync(fd) != 0)
		e = errno;
	close(fd);
	return e;
}

static void test_ensure_sparse_mounted_owned(void **state)
{
	if (!loop_usable())
		skip();
	struct volumes *v = *state;
	assert_int_equal(volumes_mode(v), VOLUME_EXT4);
	struct miren_error err = { 0 };
	assert_int_equal(volume_ensure(v, "d1", 64 * MiB, NULL, &err), 0);
	/* Idempotent. */
	assert_int_equal(volume_ensure(v, "d1", 64 * MiB, NULL, &err), 0);
	char *img = path_in("volumes", "d1.img");
	char *dir = path_in("disks", "d1");
	struct stat st;
	assert_int_equal(stat(img, &st), 0);
	assert_int_equal(st.st_size, 64 * MiB);
	assert_true((uint64_t)st.st_blocks * 512 < 8 * MiB); /* sparse */
	struct statfs sf;
	assert_int_equal(statfs(dir, &sf), 0);
	assert_int_equal(sf.f_type, EXT4_MAGIC);
	assert_int_equal(stat(dir, &st), 0);
	assert_int_equal(st.st_uid, svc_uid == (uid_t)-1 ? geteuid() : svc_uid);
	char *lf = path_in("disks", "d1/lost+found");
	assert_false(fs_exists(lf));
	struct volume_info vi;
	volume_info(v, "d1", 0, &vi);
	assert_true(vi.exists && vi.mounted);
	assert_int_equal(vi.mode, VOLUME_EXT4);
	assert_int_equal(vi.size_bytes, 64 * MiB);
	assert_true(!strncmp(vi.device, "/dev/loop", 9));
	assert_true(vi.used_bytes < 8 * MiB);
	assert_true(loop_backs(img));
	free(lf);
	free(img);
	free(dir);
}

static void test_full_disk_is_its_own(void **state)
{
	if (!loop_usable())
		skip();
	struct volumes *v = *state;
	struct miren_error err = { 0 };
	assert_int_equal(volume_ensure(v, "full", 32 * MiB, NULL, &err), 0);
	assert_int_equal(volume_ensure(v, "other", 32 * MiB, NULL, &err), 0);
	char *f1 = path_in("disks", "full/fill");
	char *f2 = path_in("disks", "other/data");
	assert_int_equal(fill(f1, 64), ENOSPC);
	if (!volumes_grow_online(v))
		fprintf(stderr, "note: no CAP_SYS_RESOURCE: resizes run unmounted\n");
	struct volume_info vi;
	volume_info(v, "full", 0, &vi);
	assert_true(volume_percent_used(&vi) >= 90);
	/* The other disk does not notice. */
	assert_int_equal(fill(f2, 4), 0);
	volume_info(v, "other", 0, &vi);
	assert_true(volume_percent_used(&vi) < 90);

	/* Shrinking is refused and changes nothing. */
	assert_int_equal(volume_resize(v, "full", 16 * MiB, &err), MIREN_EINVAL);
	assert_non_null(strstr(err.message, "shrinking"));
	volume_info(v, "full", 0, &vi);
	assert_int_equal(vi.size_bytes, 32 * MiB);
	/* Grown (online where the kernel lets us, else unmounted for the
	 * resize), it takes more; the size is the image's. */
	uint64_t before = vi.used_bytes + vi.avail_bytes;
	if (volume_resize(v, "full", 96 * MiB, &err) != 0)
		fail_msg("resize: %s", err.message);
	volume_info(v, "full", 0, &vi);
	assert_true(vi.mounted);
	assert_int_equal(vi.size_bytes, 96 * MiB);
	assert_true(vi.used_bytes + vi.avail_bytes > before + 50 * MiB);
	char *f3 = path_in("disks", "full/more");
	assert_int_equal(fill(f3, 40), 0);
	/* Again: nothing to do. */
	assert_int_equal(volume_resize(v, "full", 96 * MiB, &err), 0);
	free(f1);
	free(f2);
	free(f3);
}

static void test_remove_leaves_nothing(void **state)
{
	if (!loop_usable())
		skip();
	struct volumes *v = *state;
	struct miren_error err = { 0 };
	assert_int_equal(volume_ensure(v, "gone", 32 * MiB, NULL, &err), 0);
	char *img = path_in("volumes", "gone.img");
	char *dir = path_in("disks", "gone");
	char *f = path_in("disks", "gone/x");
	assert_int_equal(fill(f, 1), 0);
	assert_int_equal(volume_remove(v, "gone", &err), 0);
	assert_false(fs_exists(img));
	assert_false(fs_exists(dir));
	assert_false(loop_backs(img));
	struct volume_info vi;
	volume_info(v, "gone", 0, &vi);
	assert_false(vi.exists);
	/* Idempotent. */
	assert_int_equal(volume_remove(v, "gone", &err), 0);
	free(f);
	free(img);
	free(dir);
}

static void test_recover_after_reboot_and_leak(void **state)
{
	if (!loop_usable())
		skip();
	struct volumes *v = *state;
	struct miren_error err = { 0 };
	assert_int_equal(volume_ensure(v, "rb", 32 * MiB, NULL, &err), 0);
	char *dir = path_in("disks", "rb");
	char *f = path_in("disks", "rb/kept");
	char *img = path_in("volumes", "rb.img");
	assert_int_equal(fill(f, 2), 0);
	/* A reboot: the mount and the device are gone, the image stays. */
	assert_int_equal(umount(dir), 0);
	assert_false(fs_exists(f));
	/* The mount point refuses the service user while unmounted. */
	struct stat st;
	assert_int_equal(stat(dir, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0);
	/* And a device attached to the image by hand, never mounted. */
	char cmd[600];
	snprintf(cmd, sizeof(cmd), "losetup -f '%s'", img);
	assert_int_equal(system(cmd), 0);
	assert_true(loop_backs(img));
	/* Half-made image from a killed mkfs. */
	char *tmp = path_in("volumes", "half.img.tmp");
	assert_int_equal(fill(tmp, 1), 0);

	assert_int_equal(volumes_recover(v), 0);
	assert_true(fs_exists(f));
	assert_false(fs_exists(tmp));
	struct volume_info vi;
	volume_info(v, "rb", 0, &vi);
	assert_true(vi.mounted);
	/* Exactly one device holds the image: the leaked one was detached. */
	int n = 0;
	DIR *d = opendir("/sys/block");
	struct dirent *de;
	while ((de = readdir(d))) {
		char p[300], b[4096] = "";
		snprintf(p, sizeof(p), "/sys/block/%s/loop/backing_file", de->d_name);
		FILE *bf = fopen(p, "r");
		if (bf && fgets(b, sizeof(b), bf) && !strncmp(b, img, strlen(img)))
			n++;
		if (bf)
			fclose(bf);
	}
	closedir(d);
	assert_int_equal(n, 1);
	free(tmp);
	free(img);
	free(f);
	free(dir);
}

static void test_move_and_spare(void **state)
{
	if (!loop_usable())
		skip();
	struct volumes *v = *state;
	struct miren_error err = { 0 };
	assert_int_equal(volume_ensure(v, "mv", 32 * MiB, NULL, &err), 0);
	char *f = path_in("disks", "mv/data");
	assert_int_equal(fill(f, 1), 0);
	assert_int_equal(volume_move(v, "mv", ".old-mv", &err), 0);
	char *moved = path_in("disks", ".old-mv/data");
	assert_true(fs_exists(moved));
	assert_false(fs_exists(f));
	assert_int_equal(volume_ensure(v, "mv", 32 * MiB, NULL, &err), 0);
	/* The target exists now. */
	assert_int_equal(volume_move(v, ".old-mv", "mv", &err), MIREN_EEXISTS);
	assert_int_equal(volume_remove(v, "mv", &err), 0);
	assert_int_equal(volume_move(v, ".old-mv", "mv", &err), 0);
	assert_true(fs_exists(f));
	assert_int_equal(volume_move(v, "nope", "nope2", &err), MIREN_ENOTFOUND);

	/* A spare is made ahead and taken by the next disk of its size. */
	assert_int_equal(volume_spare_prepare(v, 48 * MiB, &err), 0);
	char *spare = path_in("volumes", ".spare-50331648.img");
	assert_true(fs_exists(spare));
	assert_int_equal(volume_spare_prepare(v, 48 * MiB, &err), 0);
	assert_int_equal(volume_ensure(v, "sp", 48 * MiB, NULL, &err), 0);
	assert_false(fs_exists(spare));
	struct volume_info vi;
	volume_info(v, "sp", 0, &vi);
	assert_true(vi.mounted);
	assert_int_equal(vi.size_bytes, 48 * MiB);
	free(spare);
	free(moved);
	free(f);
}

/* A fill hook: writes 1 MiB into DIR/marker; user counts the calls. */
static enum miren_err write_marker(const char *dir, void *user, struct miren_error *err)
{
	(*(int *)user)++;
	char *p = fs_join(dir, "marker");
	int e = fill(p, 1);
	free(p);
	return e ? miren_error_set(err, MIREN_EIO, "cannot write the marker: %s", strerror(e)) : 0;
}

static enum miren_err failing_fill(const char *dir, void *user, struct miren_error *err)
{
	write_marker(dir, user, err);
	return miren_error_set(err, MIREN_EIO, "the fill failed on purpose");
}

/* A fill killed in the middle, as a daemon killed while it prepares. */
static enum miren_err killed_fill(const char *dir, void *user, struct miren_error *err)
{
	write_marker(dir, user, err);
	raise(SIGKILL);
	return 0;
}

/* Runs volume_spare_fill with killed_fill in a child process. */
static void fill_killed_in_child(struct volumes *v, const char *kind, uint64_t size)
{
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		int calls = 0;
		volume_spare_fill(v, kind, size, killed_fill, &calls, NULL);
		_exit(1);
	}
	int status;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
}

static void count_violation(void *user, const char *msg)
{
	fprintf(stderr, "violation: %s\n", msg);
	(*(int *)user)++;
}

static int violations(struct volumes *v, const char *const *names, size_t n)
{
	int count = 0;
	volumes_check(v, names, n, count_violation, &count);
	return count;
}

/* How many entries dir has. */
static int entries(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	int n = 0;
	while (d && (de = readdir(d)))
		n += strcmp(de->d_name, ".") && strcmp(de->d_name, "..");
	if (d)
		closedir(d);
	return n;
}

static void test_filled_spare(void **state)
{
	if (!loop_usable())
		skip();
	struct volumes *v = *state;
	struct miren_error err = { 0 };
	int calls = 0;
	assert_int_equal(volume_spare_fill(v, "t1", 48 * MiB, write_marker, &calls, &err), 0);
	assert_int_equal(calls, 1);
	char *filled = path_in("volumes", ".spare-t1-50331648.img");
	char *prep = path_in("volumes", ".spare-t1-50331648.prep.img");
	char *spares = path_in("spares", "");
	assert_true(fs_exists(filled));
	assert_false(fs_exists(prep));
	assert_int_equal(entries(spares), 0); /* unmounted, its mount point gone */
	assert_false(loop_backs(filled));
	/* Ready: nothing to do. */
	assert_int_equal(volume_spare_fill(v, "t1", 48 * MiB, write_marker, &calls, &err), 0);
	assert_int_equal(calls, 1);

	/* The next disk of that kind and size is that disk, whole. */
	assert_int_equal(volume_ensure(v, "claimed", 48 * MiB, "t1", &err), 0);
	assert_false(fs_exists(filled));
	char *marker = path_in("disks", "claimed/marker");
	assert_true(fs_exists(marker));
	struct volume_info vi;
	volume_info(v, "claimed", 0, &vi);
	assert_true(vi.mounted);
	assert_int_equal(vi.size_bytes, 48 * MiB);
	/* None left: the next one is a new, empty disk. */
	assert_int_equal(volume_ensure(v, "other", 48 * MiB, "t1", &err), 0);
	char *other = path_in("disks", "other/marker");
	assert_false(fs_exists(other));
	/* Another size is another spare. */
	assert_int_equal(volume_spare_fill(v, "t1", 32 * MiB, write_marker, &calls, &err), 0);
	assert_int_equal(volume_ensure(v, "third", 48 * MiB, "t1", &err), 0);
	char *third = path_in("disks", "third/marker");
	assert_false(fs_exists(third));

	/* Bad kinds change nothing. */
	assert_int_equal(volume_spare_fill(v, "T1", 48 * MiB, write_marker, &calls, &err),
			 MIREN_EINVAL);
	assert_int_equal(volume_spare_fill(v, "../x", 48 * MiB, write_marker, &calls, &err),
			 MIREN_EINVAL);
	assert_int_equal(volume_ensure(v, "bad", 48 * MiB, "", &err), MIREN_EINVAL);
	char *bad = path_in("disks", "bad");
	assert_false(fs_exists(bad));

	/* A failed fill leaves nothing. */
	calls = 0;
	assert_int_equal(volume_spare_fill(v, "t2", 48 * MiB, failing_fill, &calls, &err),
			 MIREN_EIO);
	assert_int_equal(calls, 1);
	char *filled2 = path_in("volumes", ".spare-t2-50331648.img");
	char *prep2 = path_in("volumes", ".spare-t2-50331648.prep.img");
	assert_false(fs_exists(filled2));
	assert_false(fs_exists(prep2));
	assert_false(loop_backs(prep2));
	assert_int_equal(entries(spares), 0);
	const char *names[] = { "claimed", "other", "third" };
	assert_int_equal(violations(v, names, 3), 0);
	free(bad);
	free(third);
	free(other);
	free(marker);
	free(filled2);
	free(prep2);
	free(spares);
	free(prep);
	free(filled);
}

static void test_filled_spare_killed(void **state)
{
	if (!loop_usable())
		skip();
	struct volumes *v = *state;
	struct miren_error err = { 0 };
	/* Killed while filling: the spare being prepared stays mounted. */
	fill_killed_in_child(v, "k1", 32 * MiB);
	char *prep = path_in("volumes", ".spare-k1-33554432.prep.img");
	char *filled = path_in("volumes", ".spare-k1-33554432.img");
	char *spares = path_in("spares", "");
	assert_true(fs_exists(prep));
	assert_true(loop_backs(prep));
	assert_false(fs_exists(filled));
	/* A leftover, not a spare: the invariants say so ... */
	assert_true(violations(v, NULL, 0) >= 2);
	/* ... and the next start removes it (unmounted, device freed). */
	assert_int_equal(volumes_recover(v), 0);
	assert_false(fs_exists(prep));
	assert_false(loop_backs(prep));
	assert_int_equal(entries(spares), 0);
	assert_int_equal(violations(v, NULL, 0), 0);
	/* Made again from the start. */
	int calls = 0;
	assert_int_equal(volume_spare_fill(v, "k1", 32 * MiB, write_marker, &calls, &err), 0);
	assert_true(fs_exists(filled));
	assert_int_equal(calls, 1);
	free(spares);
	free(filled);
	free(prep);
}

static void test_dirs_mode(void **state)
{
	(void)state;
	char dbase[256];
	snprintf(dbase, sizeof(dbase), "/tmp/miren-test-volume-dirs-XXXXXX");
	assert_non_null(mkdtemp(dbase));
	setenv("MIREN_DISKS", "dirs", 1);
	struct volumes *v = volumes_open(dbase, (uid_t)-1, (gid_t)-1);
	unsetenv("MIREN_DISKS");
	assert_int_equal(volumes_mode(v), VOLUME_DIRS);
	assert_string_equal(volumes_mode_reason(v), "MIREN_DISKS=dirs");
	struct miren_error err = { 0 };
	assert_int_equal(volume_ensure(v, "plain", 1024 * MiB, NULL, &err), 0);
	char *dir = volume_dir(v, "plain");
	assert_true(fs_is_dir(dir));
	char *img = xasprintf("%s/volumes/plain.img", dbase);
	assert_false(fs_exists(img));
	char *f = fs_join(dir, "x");
	assert_int_equal(fill(f, 2), 0);
	struct volume_info vi;
	volume_info(v, "plain", 1024 * MiB, &vi);
	assert_int_equal(vi.mode, VOLUME_DIRS);
	assert_true(vi.exists);
	assert_int_equal(vi.size_bytes, 1024 * MiB);
	assert_true(vi.used_bytes >= 2 * MiB);
	assert_int_equal(volume_resize(v, "plain", 2048 * MiB, &err), 0);
	assert_int_equal(volume_move(v, "plain", ".old-plain", &err), 0);
	assert_int_equal(volume_move(v, ".old-plain", "plain", &err), 0);
	assert_true(fs_exists(f));
	assert_int_equal(volume_remove(v, "plain", &err), 0);
	assert_false(fs_exists(dir));
	assert_int_equal(volume_resize(v, "plain", 2048 * MiB, &err), MIREN_ENOTFOUND);
	assert_int_equal(volume_ensure(v, "../x", 1024 * MiB, NULL, &err), MIREN_EINVAL);

	/* Filled spares are directories, taken by a rename too. */
	int calls = 0;
	assert_int_equal(volume_spare_fill(v, "d1", 32 * MiB, write_marker, &calls, &err), 0);
	char *filled = xasprintf("%s/spares/d1-33554432/marker", dbase);
	assert_true(fs_exists(filled));
	assert_int_equal(volume_ensure(v, "fromspare", 32 * MiB, "d1", &err), 0);
	assert_false(fs_exists(filled));
	char *marker = xasprintf("%s/disks/fromspare/marker", dbase);
	assert_true(fs_exists(marker));
	/* Killed while filling: a leftover the next start removes. */
	fill_killed_in_child(v, "d1", 32 * MiB);
	char *prep = xasprintf("%s/spares/d1-33554432.prep", dbase);
	assert_true(fs_is_dir(prep));
	assert_int_equal(violations(v, NULL, 0), 1);
	assert_int_equal(volumes_recover(v), 0);
	assert_false(fs_exists(prep));
	assert_int_equal(violations(v, NULL, 0), 0);
	free(prep);
	free(marker);
	free(filled);
	volumes_free(v);
	fs_remove_tree(dbase);
	free(f);
	free(img);
	free(dir);
}

static void test_parse_size(void **state)
{
	(void)state;
	uint64_t n;
	struct miren_error err = { 0 };
	assert_int_equal(volume_parse_size("2G", &n, &err), 0);
	assert_int_equal(n, 2048 * MiB);
	assert_int_equal(volume_parse_size("1536M", &n, &err), 0);
	assert_int_equal(n, 1536 * MiB);
	assert_int_equal(volume_parse_size("10GiB", &n, &err), 0);
	assert_int_equal(n, 10240 * MiB);
	assert_int_equal(volume_parse_size("1.5g", &n, &err), 0);
	assert_int_equal(n, 1536 * MiB);
	assert_int_equal(volume_parse_size("4096", &n, &err), 0);
	assert_int_equal(n, 4096);
	const char *bad[] = { "", "G", "-1G", "2X", "0", "1e30G", " 2G", NULL };
	for (int i = 0; bad[i]; i++) {
		assert_int_equal(volume_parse_size(bad[i], &n, &err), MIREN_EINVAL);
		assert_non_null(strstr(err.message, "invalid size"));
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_ensure_sparse_mounted_owned, setup, teardown),
		cmocka_unit_test_setup_teardown(test_full_disk_is_its_own, setup, teardown),
		cmocka_unit_test_setup_teardown(test_remove_leaves_nothing, setup, teardown),
		cmocka_unit_test_setup_teardown(test_recover_after_reboot_and_leak, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_move_and_spare, setup, teardown),
		cmocka_unit_test_setup_teardown(test_filled_spare, setup, teardown),
		cmocka_unit_test_setup_teardown(test_filled_spare_killed, setup, teardown),
		cmocka_unit_test(test_dirs_mode),
		cmocka_unit_test(test_parse_size),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
