/*
 * Volumes: sparse ext4 images on loop devices, or plain directories (see
 * volume.h).
 *
 * Loop devices are attached with the kernel's own interface: a free device
 * from /dev/loop-control (LOOP_CTL_GET_FREE), then LOOP_CONFIGURE with
 * LO_FLAGS_AUTOCLEAR, then mount(2).  Autoclear makes the kernel detach the
 * device when its last user goes: after umount, or when a daemon killed
 * between attach and mount closes its descriptor.  mkfs.ext4, e2fsck and
 * resize2fs (e2fsprogs) are run as programs.
 *
 * Which loop device holds which image is read from
 * /sys/block/loopN/loop/backing_file; which device is mounted where from
 * /proc/self/mountinfo.  Nothing about devices is recorded: after a reboot
 * there is nothing to record.
 */
#include "disk/volume.h"
#include "supervise/supervise.h"
#include "util/fault.h"
#include "util/fs.h"
#include "util/io.h"
#include "util/log.h"
#include "util/num.h"
#include "util/paths.h"
#include "util/strbuf.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <linux/loop.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>

/* Smallest image: ext4 with a journal needs a few MiB, 16 keeps it sane. */
#define VOLUME_MIN_BYTES (16ULL << 20)
/* How long mkfs, e2fsck and resize2fs may take. */
#define TOOL_TIMEOUT_MS 120000
/* How long an unmount waits for the last processes using the disk. */
#define UMOUNT_WAIT_MS 5000
#define MOUNT_FLAGS (MS_NOSUID | MS_NODEV | MS_NOATIME)
/* The kernel would otherwise zero every inode table of a lazily made
 * filesystem in the background after the mount (ext4lazyinit): 16 MiB of
 * writes per GiB, making a sparse image dense.  The tables of an image
 * made on an ftruncate'd file read as zeros already. */
#define MOUNT_DATA "noinit_itable"

struct volumes {
	struct data_paths *paths; /* of DATA */
	char *images;             /* DATA/volumes */
	char *mounts;             /* DATA/disks */
	char *spares; /* DATA/spares: filled spares being prepared (dirs mode: also made) */
	uid_t uid;
	gid_t gid;
	enum volume_mode mode;
	bool online_resize; /* the kernel lets us grow a mounted ext4 */
	char reason[256];
	/* Serialises making and taking spares and attaching loop devices. */
	pthread_mutex_t mu;
	/* Under mu: filled spares in preparation now, and how many
	 * preparations began or ended (volumes_check tells a preparation's
	 * own files from the leftovers of an interrupted one). */
	int preparing;
	unsigned prep_gen;
};

bool volumes_host_full(const struct volumes *v)
{
	struct statvfs sv;
	if (statvfs(v->mode == VOLUME_EXT4 ? v->images : v->mounts, &sv) != 0)
		return false;
	return (unsigned long long)sv.f_bavail * sv.f_frsize < 16ULL << 20;
}

const char *volume_mode_name(enum volume_mode mode)
{
	return mode == VOLUME_EXT4 ? "ext4" : "dirs";
}

static double now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* The e2fsprogs program `name` (PATH, then /sbin and /usr/sbin, which a
 * non-login PATH may lack).  Caller frees; NULL when absent. */
static char *tool_path(const char *name)
{
	static const char *const dirs[] = { "/usr/sbin", "/sbin", "/usr/bin", "/bin" };
	for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
		char *p = fs_join(dirs[i], name);
		if (access(p, X_OK) == 0)
			return p;
		free(p);
	}
	return NULL;
}

/* Growing a mounted ext4 (EXT4_IOC_RESIZE_FS) needs CAP_SYS_RESOURCE,
 * which containers often drop. */
static bool have_cap_sys_resource(void)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	unsigned long long caps = 0;
	while (f && fgets(line, sizeof(line), f)) {
		if (strncmp(line, "CapEff:", 7) != 0)
			continue;
		num_parse_u(line + 7 + strspn(line + 7, " \t"), 16, ULLONG_MAX, &caps, NULL);
		break;
	}
	if (f)
		fclose(f);
	return caps & (1ULL << 24); /* CAP_SYS_RESOURCE */
}

struct volumes *volumes_open(const char *data_dir, uid_t uid, gid_t gid)
{
	struct volumes *v = xcalloc(1, sizeof(*v));
	v->paths = data_paths_new(data_dir);
	v->images = data_paths_volumes(v->paths);
	v->mounts = data_paths_disks(v->paths);
	v->spares = data_paths_spares(v->paths);
	v->uid = uid;
	v->gid = gid;
	pthread_mutex_init(&v->mu, NULL);
	fs_mkdir_p(v->images, 0700);
	fs_mkdir_p(v->mounts, 0711);
	fs_mkdir_p(v->spares, 0711);
	const char *forced = getenv("MIREN_DISKS");
	char *mkfs = tool_path("mkfs.ext4");
	int lc = -1;
	v->mode = VOLUME_DIRS;
	if (forced && !strcmp(forced, "dirs")) {
		snprintf(v->reason, sizeof(v->reason), "MIREN_DISKS=dirs");
	} else if (geteuid() != 0) {
		snprintf(v->reason, sizeof(v->reason),
			 "the daemon does not run as root, so it cannot use loop devices");
	} else if ((lc = open("/dev/loop-control", O_RDWR | O_CLOEXEC)) < 0) {
		snprintf(v->reason, sizeof(v->reason),
			 "no loop device support (/dev/loop-control: %s)", io_strerror(errno));
	} else if (!mkfs) {
		snprintf(v->reason, sizeof(v->reason), "mkfs.ext4 is not installed (e2fsprogs)");
	} else {
		v->mode = VOLUME_EXT4;
		snprintf(v->reason, sizeof(v->reason),
			 "sparse ext4 images in %s, loop-mounted at %s/<disk>", v->images,
			 v->mounts);
	}
	if (lc >= 0)
		close(lc);
	free(mkfs);
	if (forced && strcmp(forced, "dirs") && strcmp(forced, "ext4") && strcmp(forced, ""))
		log_warn("MIREN_DISKS='%s' is not 'dirs' or 'ext4'; ignored", forced);
	v->online_resize = have_cap_sys_resource();
	if (v->mode == VOLUME_EXT4)
		log_info("disks: ext4 mode: %s; disks grow %s", v->reason,
			 v->online_resize ? "online"
					  : "while unmounted (no CAP_SYS_RESOURCE: the "
					    "disk's server stops for the resize)");
	else
		log_info("disks: dirs mode (plain directories, sizes recorded but not enforced): "
			 "%s",
			 v->reason);
	return v;
}

void volumes_free(struct volumes *v)
{
	if (!v)
		return;
	pthread_mutex_destroy(&v->mu);
	free(v->images);
	free(v->mounts);
	free(v->spares);
	data_paths_free(v->paths);
	free(v);
}

enum volume_mode volumes_mode(const struct volumes *v)
{
	return v->mode;
}

bool volumes_grow_online(const struct volumes *v)
{
	return v->online_resize;
}

const char *volumes_mode_reason(const struct volumes *v)
{
	return v->reason;
}

char *volume_dir(const struct volumes *v, const char *name)
{
	return data_paths_disk(v->paths, name);
}

static char *image_path(const struct volumes *v, const char *name)
{
	return data_paths_volume_image(v->paths, name);
}

static char *spare_path(const struct volumes *v, uint64_t size)
{
	return data_paths_volume_spare(v->paths, (unsigned long long)size);
}

/*
 * A filled spare of kind and size (see volume_spare_fill): in ext4 mode
 * the unmounted image volumes/.spare-<kind>-<bytes>.img, in dirs mode the
 * directory spares/<kind>-<bytes>.  While it is prepared: the image
 * volumes/.spare-<kind>-<bytes>.prep.img mounted at
 * spares/<kind>-<bytes>.prep, or that directory in dirs mode.
 */
static char *filled_spare_path(const struct volumes *v, const char *kind, uint64_t size, bool image,
			       bool prep)
{
	return data_paths_filled_spare(v->paths, kind, (unsigned long long)size, image, prep);
}

/* A spare's kind: 1..32 of [a-z0-9]. */
static enum miren_err kind_check(const char *kind, struct miren_error *err)
{
	size_t n = kind ? strlen(kind) : 0;
	bool ok = n > 0 && n <= 32;
	for (size_t i = 0; ok && i < n; i++)
		ok = (kind[i] >= 'a' && kind[i] <= 'z') || (kind[i] >= '0' && kind[i] <= '9');
	if (ok)
		return 0;
	return miren_error_set(err, MIREN_EINVAL, "invalid spare kind '%.40s'", kind ? kind : "");
}

static bool ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);
	return n >= m && !strcmp(s + n - m, suffix);
}

static enum miren_err name_check(const char *name, struct miren_error *err)
{
	if (name && *name && !strchr(name, '/') && strcmp(name, ".") && strcmp(name, "..") &&
	    strlen(name) <= 160 && !strstr(name, ".img"))
		return 0;
	return miren_error_set(err, MIREN_EINVAL, "invalid volume name '%.170s'", name ? name : "");
}

/* --- mounts and loop devices ------------------------------------------------- */

/* Undoes mountinfo's octal escapes (\040 for a space, ...) in place. */
static void unescape_mountinfo(char *s)
{
	char *o = s;
	for (char *p = s; *p;) {
		if (p[0] == '\\' && p[1] >= '0' && p[1] <= '3' && p[2] >= '0' && p[2] <= '7' &&
		    p[3] >= '0' && p[3] <= '7') {
			*o++ = (char)((p[1] - '0') * 64 + (p[2] - '0') * 8 + (p[3] - '0'));
			p += 4;
		} else {
			*o++ = *p++;
		}
	}
	*o = '\0';
}

/*
 * The mount at exactly `dir` (the last one, which is what is visible):
 * true with its source device (e.g. "/dev/loop3") and major:minor.
 */
static bool mount_at(const char *dir, char *source, size_t len, dev_t *devno)
{
	FILE *f = fopen("/proc/self/mountinfo", "r");
	if (!f)
		return false;
	char *line = NULL;
	size_t cap = 0;
	bool found = false;
	while (getline(&line, &cap, f) > 0) {
		/* id parent maj:min root mountpoint opts [optional...] - fstype source super */
		unsigned long long maj, min;
		const char *colon = NULL;
		char *save = NULL, *tok = strtok_r(line, " \n", &save);
		char *fields[5] = { 0 };
		for (int i = 0; i < 5 && tok; i++, tok = strtok_r(NULL, " \n", &save))
			fields[i] = tok;
		if (!fields[4] || !num_parse_u(fields[2], 10, UINT_MAX, &maj, &colon) ||
		    *colon != ':' || !num_parse_u(colon + 1, 10, UINT_MAX, &min, NULL))
			continue;
		unescape_mountinfo(fields[4]);
		if (strcmp(fields[4], dir))
			continue;
		while (tok && strcmp(tok, "-"))
			tok = strtok_r(NULL, " \n", &save);
		char *fstype = tok ? strtok_r(NULL, " \n", &save) : NULL;
		char *src = fstype ? strtok_r(NULL, " \n", &save) : NULL;
		found = true;
		if (src)
			unescape_mountinfo(src);
		snprintf(source, len, "%s", src ? src : "");
		*devno = makedev((unsigned)maj, (unsigned)min);
	}
	free(line);
	fclose(f);
	return found;
}

/* The file backing loop device loopN (sysfs), without a " (deleted)"
 * suffix; false when loopN is not attached. */
static bool loop_backing(const char *loopname, char *out, size_t len)
{
	char *p = xasprintf("/sys/block/%s/loop/backing_file", loopname);
	FILE *f = fopen(p, "r");
	free(p);
	if (!f)
		return false;
	bool ok = fgets(out, (int)len, f) != NULL;
	fclose(f);
	if (ok) {
		out[strcspn(out, "\n")] = '\0';
		size_t n = strlen(out);
		static const char del[] = " (deleted)";
		if (n > sizeof(del) - 1 && !strcmp(out + n - (sizeof(del) - 1), del))
			out[n - (sizeof(del) - 1)] = '\0';
	}
	return ok;
}

/* Detaches /dev/<loopname>; quiet when it is already free. */
static void loop_detach(const char *loopname)
{
	char *dev = xasprintf("/dev/%s", loopname);
	int fd = open(dev, O_RDWR | O_CLOEXEC);
	if (fd >= 0) {
		if (ioctl(fd, LOOP_CLR_FD, 0) != 0 && errno != ENXIO)
			log_warn("disks: cannot detach %s: %s", dev, io_strerror(errno));
		close(fd);
	}
	free(dev);
}

/* Calls fn(loopname, backing, user) for every attached loop device. */
static void each_loop(void (*fn)(const char *loopname, const char *backing, void *user), void *user)
{
	DIR *d = opendir("/sys/block");
	struct dirent *de;
	char backing[4096];
	while (d && (de = readdir(d)))
		if (!strncmp(de->d_name, "loop", 4) &&
		    loop_backing(de->d_name, backing, sizeof(backing)))
			fn(de->d_name, backing, user);
	if (d)
		closedir(d);
}

struct detach_ctx {
	const char *image;
	const char *prefix;
};

static void detach_if_image(const char *loopname, const char *backing, void *user)
{
	struct detach_ctx *c = user;
	if (c->image ? !strcmp(backing, c->image) : !strncmp(backing, c->prefix, strlen(c->prefix)))
		loop_detach(loopname);
}

/* Detaches every loop device backed by `image` that nothing holds (a
 * mounted one refuses, EBUSY, and stays). */
static void detach_image(const char *image)
{
	struct detach_ctx c = { image, NULL };
	each_loop(detach_if_image, &c);
}

/*
 * Attaches image to a free loop device (autoclear) and mounts it at dir.
 * The device is freed by the kernel when the mount goes, or at once when
 * the mount fails.
 */
static enum miren_err attach_and_mount(struct volumes *v, const char *image, const char *dir,
				       struct miren_error *err)
{
	int img = open(image, O_RDWR | O_CLOEXEC);
	if (img < 0)
		return miren_error_set(err, MIREN_EIO, "cannot open disk image '%s': %s", image,
				       io_strerror(errno));
	int rc = 0, loop = -1;
	char dev[32] = "";
	pthread_mutex_lock(&v->mu);
	int ctl = open("/dev/loop-control", O_RDWR | O_CLOEXEC);
	if (ctl < 0)
		rc = miren_error_set(err, MIREN_EIO, "cannot open /dev/loop-control: %s",
				     io_strerror(errno));
	/* Another process may take the free device first: try a few. */
	for (int attempt = 0; !rc && attempt < 16; attempt++) {
		int n = ioctl(ctl, LOOP_CTL_GET_FREE);
		if (n < 0) {
			rc = miren_error_set(err, MIREN_EIO, "no free loop device: %s",
					     io_strerror(errno));
			break;
		}
		snprintf(dev, sizeof(dev), "/dev/loop%d", n);
		/* devtmpfs makes the node of a new device asynchronously. */
		for (int i = 0;
		     i < 100 && (loop = open(dev, O_RDWR | O_CLOEXEC)) < 0 && errno == ENOENT; i++)
			usleep(10000);
		if (loop < 0) {
			rc = miren_error_set(err, MIREN_EIO, "cannot open %s: %s", dev,
					     io_strerror(errno));
			break;
		}
		struct loop_config cfg;
		memset(&cfg, 0, sizeof(cfg));
		cfg.fd = (unsigned)img;
		cfg.info.lo_flags = LO_FLAGS_AUTOCLEAR;
		snprintf((char *)cfg.info.lo_file_name, sizeof(cfg.info.lo_file_name), "%s", image);
		if (ioctl(loop, LOOP_CONFIGURE, &cfg) == 0)
			break;
		int e = errno;
		close(loop);
		loop = -1;
		if (e != EBUSY) {
			rc = miren_error_set(err, MIREN_EIO, "cannot attach '%s' to %s: %s", image,
					     dev, io_strerror(e));
			break;
		}
	}
	if (!rc && loop < 0)
		rc = miren_error_set(err, MIREN_EIO, "no free loop device for '%s'", image);
	if (ctl >= 0)
		close(ctl);
	pthread_mutex_unlock(&v->mu);
	if (!rc && mount(dev, dir, "ext4", MOUNT_FLAGS, MOUNT_DATA) != 0)
		rc = miren_error_set(err, MIREN_EIO, "cannot mount %s (%s) at '%s': %s", dev, image,
				     dir, io_strerror(errno));
	/* Mounted, the mount holds the device; not mounted, this close frees it. */
	if (loop >= 0)
		close(loop);
	close(img);
	return rc;
}

/* Unmounts dir, waiting up to UMOUNT_WAIT_MS for the processes still using
 * it to exit.  0 when nothing is mounted there any more. */
static enum miren_err unmount(const char *dir, struct miren_error *err)
{
	char src[256];
	dev_t dn;
	int waited = 0;
	while (mount_at(dir, src, sizeof(src), &dn)) {
		if (umount2(dir, UMOUNT_NOFOLLOW) == 0)
			continue;
		if (errno != EBUSY || waited >= UMOUNT_WAIT_MS)
			return miren_error_set(err, MIREN_EIO, "cannot unmount '%s': %s", dir,
					       io_strerror(errno));
		usleep(50000);
		waited += 50;
	}
	return 0;
}

/* The mount point of an ext4 disk: mode 0000, root's, so that nothing but
 * root writes into it while it is not mounted. */
static enum miren_err mountpoint_ensure(const char *dir, struct miren_error *err)
{
	/* Its parent (DATA/disks) too, when something removed it. */
	char *parent = xstrdup(dir);
	char *slash = strrchr(parent, '/');
	if (slash && slash != parent) {
		*slash = '\0';
		if (fs_mkdir_p(parent, 0755) != 0) {
			enum miren_err rc = miren_error_set(err, MIREN_EIO,
							    "cannot create '%s': %s", parent,
							    io_strerror(errno));
			free(parent);
			return rc;
		}
	}
	free(parent);
	if (mkdir(dir, 0) != 0 && errno != EEXIST)
		return miren_error_set(err, MIREN_EIO, "cannot create '%s': %s", dir,
				       io_strerror(errno));
	return 0;
}

/*
 * After mounting: the root belongs to the service user, and lost+found
 * (made by mkfs, root's, kept out of backups) goes while it is empty;
 * e2fsck makes it again when it needs it.
 */
static enum miren_err root_prepare(struct volumes *v, const char *dir, struct miren_error *err)
{
	char *lf = fs_join(dir, "lost+found");
	if (rmdir(lf) != 0 && errno != ENOENT && errno != ENOTEMPTY)
		log_warn("disks: cannot remove %s: %s", lf, io_strerror(errno));
	free(lf);
	uid_t uid = v->uid == (uid_t)-1 ? geteuid() : v->uid;
	gid_t gid = v->gid == (gid_t)-1 ? getegid() : v->gid;
	if (chown(dir, uid, gid) != 0 || chmod(dir, 0755) != 0)
		return miren_error_set(err, MIREN_EIO, "cannot hand '%s' to the service user: %s",
				       dir, io_strerror(errno));
	return 0;
}

/* Runs an e2fsprogs program; MIREN_EIO with its last output line on failure
 * (exit codes in ok_mask are success). */
static enum miren_err run_tool(const char *tool, char *const *args, unsigned ok_mask,
			       struct miren_error *err)
{
	char *path = tool_path(tool);
	if (!path)
		return miren_error_set(err, MIREN_EIO, "%s is not installed", tool);
	char *argv[16];
	size_t n = 0;
	argv[n++] = path;
	for (size_t i = 0; args[i] && n + 1 < sizeof(argv) / sizeof(argv[0]); i++)
		argv[n++] = args[i];
	argv[n] = NULL;
	char *out = NULL;
	int code = sv_run(argv, NULL, "/", (uid_t)-1, (gid_t)-1, TOOL_TIMEOUT_MS, &out);
	enum miren_err rc = 0;
	if (code < 0 || code > 31 || !(ok_mask & (1u << code))) {
		char *s = out ? out : xstrdup("");
		size_t l = strlen(s);
		while (l && (s[l - 1] == '\n' || s[l - 1] == ' '))
			s[--l] = '\0';
		const char *last = strrchr(s, '\n');
		rc = miren_error_set(err, MIREN_EIO, "%s failed (exit %d): %s", tool, code,
				     last ? last + 1 : s);
		out = s;
	}
	free(out);
	free(path);
	return rc;
}

/*
 * Makes a formatted image at path (via path.tmp, then rename + fsync):
 * sparse, lazily initialised inode tables and journal, no reserved blocks,
 * root owned by the service user.
 */
static enum miren_err make_image(struct volumes *v, const char *path, uint64_t size,
				 struct miren_error *err)
{
	char *tmp = xasprintf("%s.tmp", path);
	enum miren_err rc = 0;
	unlink(tmp);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0 || ftruncate(fd, (off_t)size) != 0) {
		rc = miren_error_set(err, MIREN_EIO, "cannot create disk image '%s': %s", tmp,
				     io_strerror(errno));
		goto out;
	}
	uid_t uid = v->uid == (uid_t)-1 ? geteuid() : v->uid;
	gid_t gid = v->gid == (gid_t)-1 ? getegid() : v->gid;
	char ext[96];
	snprintf(ext, sizeof(ext), "lazy_itable_init=1,lazy_journal_init=1,root_owner=%u:%u",
		 (unsigned)uid, (unsigned)gid);
	char *args[] = { "-q", "-F", "-t", "ext4", "-m", "0", "-E", ext, tmp, NULL };
	rc = run_tool("mkfs.ext4", args, 1u << 0, err);
	if (!rc && fsync(fd) != 0)
		rc = miren_error_set(err, MIREN_EIO, "cannot fsync '%s': %s", tmp,
				     io_strerror(errno));
	if (!rc)
		fault_point("volume:formatted");
	if (!rc && rename(tmp, path) != 0)
		rc = miren_error_set(err, MIREN_EIO, "cannot rename '%s': %s", tmp,
				     io_strerror(errno));
	if (!rc)
		fs_fsync_dir(path);
out:
	if (fd >= 0)
		close(fd);
	if (rc)
		unlink(tmp);
	free(tmp);
	return rc;
}

/* The size of the file at path; 0 when it is missing. */
static uint64_t file_size(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0 ? (uint64_t)st.st_size : 0;
}

/* The size of the ext4 filesystem in image, from its superblock (the
 * on-disk copy: it may lag a mounted filesystem's, which only makes a
 * resize run again); 0 when unreadable. */
static uint64_t fs_bytes(const char *image)
{
	unsigned char sb[1024];
	int fd = open(image, O_RDONLY | O_CLOEXEC);
	bool ok = fd >= 0 && pread(fd, sb, sizeof(sb), 1024) == (ssize_t)sizeof(sb);
	if (fd >= 0)
		close(fd);
	if (!ok || sb[0x38] != 0x53 || sb[0x39] != 0xEF) /* s_magic */
		return 0;
	uint32_t lo = sb[4] | sb[5] << 8 | sb[6] << 16 | (uint32_t)sb[7] << 24;
	uint32_t hi = sb[0x150] | sb[0x151] << 8 | sb[0x152] << 16 | (uint32_t)sb[0x153] << 24;
	uint32_t log = sb[24] | sb[25] << 8;
	uint32_t incompat = sb[0x60] | sb[0x61] << 8 | sb[0x62] << 16 | (uint32_t)sb[0x63] << 24;
	uint64_t blocks = lo | ((incompat & 0x80) ? (uint64_t)hi << 32 : 0); /* INCOMPAT_64BIT */
	return log > 6 ? 0 : blocks << (10 + log);
}

/* Mounts image at dir unless it is (what: the disk's name, for messages);
 * check: run e2fsck -p first (at start, after a crash or a reboot). */
static enum miren_err mount_image_at(struct volumes *v, const char *image, const char *dir,
				     const char *what, bool check, struct miren_error *err)
{
	char src[256];
	dev_t dn;
	enum miren_err rc = mountpoint_ensure(dir, err);
	if (!rc && mount_at(dir, src, sizeof(src), &dn)) {
		/* Mounted: it must be this image. */
		char backing[4096];
		char *loopname = strrchr(src, '/');
		if (!loopname || !loop_backing(loopname + 1, backing, sizeof(backing)) ||
		    strcmp(backing, image))
			rc = miren_error_set(err, MIREN_EIO,
					     "'%s' is mounted from %s, not from its image %s", dir,
					     src, image);
		return rc;
	}
	if (rc)
		return rc;
	if (v->mode != VOLUME_EXT4)
		return miren_error_set(err, MIREN_EIO,
				       "disk '%s' is an ext4 image and loop devices cannot be "
				       "used: "
				       "%s",
				       what, v->reason);
	/* A device left attached without its mount (nothing should leave
	 * one: autoclear) would make the image busy twice. */
	detach_image(image);
	if (check) {
		/* 0: clean, 1: errors corrected. */
		char *args[] = { "-p", (char *)image, NULL };
		rc = run_tool("e2fsck", args, (1u << 0) | (1u << 1), err);
		if (rc)
			return rc;
	}
	rc = attach_and_mount(v, image, dir, err);
	if (!rc)
		fault_point("volume:mounted");
	if (!rc)
		rc = root_prepare(v, dir, err);
	return rc;
}

/* Mounts the image of disk `name` at its directory (mount_image_at). */
static enum miren_err mount_image(struct volumes *v, const char *name, bool check,
				  struct miren_error *err)
{
	char *image = image_path(v, name);
	char *dir = volume_dir(v, name);
	enum miren_err rc = mount_image_at(v, image, dir, name, check, err);
	free(image);
	free(dir);
	return rc;
}

/* --- the public operations --------------------------------------------------- */

/* True when dir is a directory with something in it. */
static bool dir_has_entries(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	bool any = false;
	while (d && !any && (de = readdir(d)))
		any = strcmp(de->d_name, ".") && strcmp(de->d_name, "..");
	if (d)
		closedir(d);
	return any;
}

/* Moves the filled spare of kind and size into place as disk `name`
 * (image or, dirs mode, directory): true when there was one. */
static bool take_filled_spare(struct volumes *v, const char *kind, uint64_t size, const char *name)
{
	bool dirs = v->mode == VOLUME_DIRS;
	char *from = filled_spare_path(v, kind, size, !dirs, false);
	char *to = dirs ? volume_dir(v, name) : image_path(v, name);
	/* Under the lock: volume_spare_fill renames a finished spare into
	 * place under it too, so one spare is never taken twice.  In dirs
	 * mode an empty directory of the disk is replaced. */
	pthread_mutex_lock(&v->mu);
	bool took = rename(from, to) == 0;
	pthread_mutex_unlock(&v->mu);
	if (took) {
		fs_fsync_dir(dirs ? v->spares : v->images);
		if (dirs)
			fs_fsync_dir(v->mounts);
		fault_point("spare:taken");
	}
	free(from);
	free(to);
	return took;
}

enum miren_err volume_ensure(struct volumes *v, const char *name, uint64_t size_bytes,
			     const char *kind, struct miren_error *err)
{
	enum miren_err rc = name_check(name, err);
	if (!rc && kind)
		rc = kind_check(kind, err);
	if (rc)
		return rc;
	if (size_bytes < VOLUME_MIN_BYTES)
		return miren_error_set(err, MIREN_EINVAL, "a disk must have at least 16 MiB");
	size_bytes = (size_bytes + 4095) & ~4095ULL; /* whole ext4 blocks */
	char *image = image_path(v, name);
	char *dir = volume_dir(v, name);
	if (fs_exists(image)) {
		rc = mount_image(v, name, false, err);
	} else if (v->mode == VOLUME_DIRS || dir_has_entries(dir)) {
		/* A directory disk: made here (from a filled spare when one is
		 * ready), or made before ext4 mode. */
		if (kind && v->mode == VOLUME_DIRS && !dir_has_entries(dir) &&
		    take_filled_spare(v, kind, size_bytes, name))
			log_info("disk %s: taken from the filled spare %s", name, kind);
		if (fs_mkdir_p(dir, 0755) != 0 ||
		    (v->uid != (uid_t)-1 && chown(dir, v->uid, v->gid) != 0))
			rc = miren_error_set(err, MIREN_EIO, "cannot create '%s': %s", dir,
					     io_strerror(errno));
	} else {
		/* A filled spare of this kind, else an empty spare of this
		 * size, made ahead, is taken by a rename. */
		double t0 = now_ms();
		char how[64] = "made";
		if (kind && take_filled_spare(v, kind, size_bytes, name)) {
			snprintf(how, sizeof(how), "taken from the filled spare %s", kind);
		} else {
			char *spare = spare_path(v, size_bytes);
			pthread_mutex_lock(&v->mu);
			bool took = rename(spare, image) == 0;
			pthread_mutex_unlock(&v->mu);
			free(spare);
			if (took) {
				fs_fsync_dir(image);
				snprintf(how, sizeof(how), "taken from the spare");
			} else {
				rc = make_image(v, image, size_bytes, err);
			}
		}
		double t1 = now_ms();
		if (!rc)
			rc = mount_image(v, name, false, err);
		if (!rc)
			log_info("disk %s: %" PRIu64 " MiB image %s in %.1f ms, mounted in %.1f ms",
				 name, size_bytes >> 20, how, t1 - t0, now_ms() - t1);
	}
	free(image);
	free(dir);
	return rc;
}

enum miren_err volume_remove(struct volumes *v, const char *name, struct miren_error *err)
{
	enum miren_err rc = name_check(name, err);
	if (rc)
		return rc;
	char *image = image_path(v, name);
	char *dir = volume_dir(v, name);
	rc = unmount(dir, err);
	if (!rc) {
		detach_image(image);
		if (unlink(image) != 0 && errno != ENOENT)
			rc = miren_error_set(err, MIREN_EIO, "cannot delete disk image '%s': %s",
					     image, io_strerror(errno));
		else
			fs_fsync_dir(image);
	}
	if (!rc)
		fault_point("volume:deleted");
	if (!rc && fs_remove_tree(dir) != 0)
		rc = miren_error_set(err, MIREN_EIO, "cannot remove disk directory '%s': %s", dir,
				     io_strerror(errno));
	free(image);
	free(dir);
	return rc;
}

enum miren_err volume_move(struct volumes *v, const char *from, const char *to,
			   struct miren_error *err)
{
	enum miren_err rc = name_check(from, err);
	if (!rc)
		rc = name_check(to, err);
	if (rc)
		return rc;
	char *fimg = image_path(v, from), *timg = image_path(v, to);
	char *fdir = volume_dir(v, from), *tdir = volume_dir(v, to);
	bool has_image = fs_exists(fimg);
	if (fs_exists(timg) || (fs_exists(tdir) && (!has_image || dir_has_entries(tdir)))) {
		rc = miren_error_set(err, MIREN_EEXISTS, "disk '%s' already exists", to);
	} else if (!has_image && !fs_exists(fdir)) {
		rc = miren_error_set(err, MIREN_ENOTFOUND, "disk '%s' not found", from);
	} else if (!has_image) {
		/* A directory disk: one rename. */
		if (rename(fdir, tdir) != 0)
			rc = miren_error_set(err, MIREN_EIO, "cannot rename '%s' to '%s': %s", fdir,
					     tdir, io_strerror(errno));
		else
			fs_fsync_dir(v->mounts);
	} else {
		/* The image's name decides where the data is; the mount
		 * points follow (volumes_recover mounts an image under its
		 * name).  Unmounted first: a mounted image keeps its name in
		 * the loop device, but nothing may use a disk being moved. */
		rc = unmount(fdir, err);
		if (!rc && rename(fimg, timg) != 0)
			rc = miren_error_set(err, MIREN_EIO, "cannot rename '%s' to '%s': %s", fimg,
					     timg, io_strerror(errno));
		if (!rc) {
			fs_fsync_dir(v->images);
			rmdir(fdir);
			rc = mount_image(v, to, false, err);
		}
	}
	free(fimg);
	free(timg);
	free(fdir);
	free(tdir);
	return rc;
}

/*
 * Unmounts disk `name`, checks it (e2fsck -f, which resize2fs requires),
 * resizes its filesystem to size_bytes (grow or shrink), cuts the image to
 * that size when it shrank, and mounts it again (also after a failure: the
 * data stays served).
 */
static enum miren_err resize_unmounted(struct volumes *v, const char *name, uint64_t size_bytes,
				       struct miren_error *err)
{
	char *image = image_path(v, name);
	char *dir = volume_dir(v, name);
	char ksize[32];
	snprintf(ksize, sizeof(ksize), "%" PRIu64 "K", size_bytes >> 10);
	enum miren_err rc = unmount(dir, err);
	if (!rc && file_size(image) < size_bytes && truncate(image, (off_t)size_bytes) != 0)
		rc = miren_error_set(err, MIREN_EIO, "cannot grow disk image '%s': %s", image,
				     io_strerror(errno));
	if (!rc) {
		char *fsck[] = { "-f", "-p", image, NULL };
		rc = run_tool("e2fsck", fsck, (1u << 0) | (1u << 1), err);
	}
	if (!rc) {
		char *resize[] = { image, ksize, NULL };
		rc = run_tool("resize2fs", resize, 1u << 0, err);
	}
	if (!rc && file_size(image) > size_bytes && truncate(image, (off_t)size_bytes) != 0)
		rc = miren_error_set(err, MIREN_EIO, "cannot cut disk image '%s': %s", image,
				     io_strerror(errno));
	struct miren_error e2;
	int mrc = mount_image(v, name, false, &e2);
	if (!rc && mrc)
		rc = miren_error_set(err, (enum miren_err)mrc, "%s", e2.message);
	free(image);
	free(dir);
	return rc;
}

enum miren_err volume_fit(struct volumes *v, const char *name, uint64_t size_bytes,
			  struct miren_error *err)
{
	enum miren_err rc = name_check(name, err);
	if (rc)
		return rc;
	size_bytes = (size_bytes + 4095) & ~4095ULL;
	char *image = image_path(v, name);
	bool has_image = fs_exists(image);
	uint64_t cur = file_size(image);
	free(image);
	if (!has_image || cur == size_bytes)
		return 0;
	rc = resize_unmounted(v, name, size_bytes, err);
	if (rc == MIREN_EIO && size_bytes < cur)
		miren_error_hint(err, "the data may not fit in %" PRIu64 " MiB", size_bytes >> 20);
	return rc;
}

enum miren_err volume_resize(struct volumes *v, const char *name, uint64_t size_bytes,
			     struct miren_error *err)
{
	enum miren_err rc = name_check(name, err);
	if (rc)
		return rc;
	size_bytes = (size_bytes + 4095) & ~4095ULL;
	char *image = image_path(v, name);
	char *dir = volume_dir(v, name);
	uint64_t cur = file_size(image);
	char src[256];
	dev_t dn;
	if (!fs_exists(image)) {
		if (!fs_is_dir(dir))
			rc = miren_error_set(err, MIREN_ENOTFOUND, "disk '%s' not found", name);
		goto out; /* a directory disk: only its record changes */
	}
	if (size_bytes < cur) {
		rc = miren_error_set(err, MIREN_EINVAL,
				     "disk '%s' has %" PRIu64 " MiB; shrinking a disk is not "
				     "supported (nothing was changed)",
				     name, cur >> 20);
		miren_error_hint(err,
				 "give a size of at least %" PRIu64 " MiB, or back the disk up "
				 "and restore it into a new, smaller addon",
				 cur >> 20);
		goto out;
	}
	rc = mount_image(v, name, false, err);
	if (rc)
		goto out;
	if (!mount_at(dir, src, sizeof(src), &dn) || strncmp(src, "/dev/loop", 9)) {
		rc = miren_error_set(err, MIREN_EIO, "disk '%s' is not mounted from a loop device",
				     name);
		goto out;
	}
	if (size_bytes > cur) {
		int fd = open(image, O_WRONLY | O_CLOEXEC);
		if (fd < 0 || ftruncate(fd, (off_t)size_bytes) != 0 || fsync(fd) != 0)
			rc = miren_error_set(err, MIREN_EIO, "cannot grow disk image '%s': %s",
					     image, io_strerror(errno));
		if (fd >= 0)
			close(fd);
		if (rc)
			goto out;
		fault_point("volume:grown");
	}
	if (size_bytes == cur && fs_bytes(image) + (1u << 20) >= size_bytes) {
		/* Nothing to do (a resize asked again). */
	} else if (v->online_resize) {
		/* The loop device reads the new size; then the filesystem grows
		 * into it, mounted (resize2fs uses the kernel's online resize).
		 * Both are no-ops when already done. */
		int lfd = open(src, O_RDWR | O_CLOEXEC);
		if (lfd < 0 || ioctl(lfd, LOOP_SET_CAPACITY, 0) != 0)
			rc = miren_error_set(err, MIREN_EIO, "cannot update the size of %s: %s",
					     src, io_strerror(errno));
		if (lfd >= 0)
			close(lfd);
		if (!rc) {
			char *args[] = { src, NULL };
			rc = run_tool("resize2fs", args, 1u << 0, err);
		}
	} else {
		/* Without CAP_SYS_RESOURCE the kernel refuses an online resize:
		 * unmounted (the caller stopped its users), checked, grown,
		 * mounted again. */
		rc = resize_unmounted(v, name, size_bytes, err);
	}
	if (!rc)
		log_info("disk %s grown to %" PRIu64 " MiB", name, size_bytes >> 20);
out:
	free(image);
	free(dir);
	return rc;
}

void volume_info(struct volumes *v, const char *name, uint64_t recorded_size,
		 struct volume_info *out)
{
	memset(out, 0, sizeof(*out));
	out->mode = VOLUME_DIRS;
	out->size_bytes = recorded_size;
	if (name_check(name, NULL))
		return;
	char *image = image_path(v, name);
	char *dir = volume_dir(v, name);
	if (fs_exists(image)) {
		out->mode = VOLUME_EXT4;
		out->exists = true;
		out->size_bytes = file_size(image);
		out->fs_bytes = fs_bytes(image);
		char src[256];
		dev_t dn;
		struct statvfs sv;
		if (mount_at(dir, src, sizeof(src), &dn) && statvfs(dir, &sv) == 0) {
			out->mounted = true;
			snprintf(out->device, sizeof(out->device), "%.31s", src);
			out->used_bytes = (uint64_t)(sv.f_blocks - sv.f_bfree) * sv.f_frsize;
			out->avail_bytes = (uint64_t)sv.f_bavail * sv.f_frsize;
		}
	} else if (fs_is_dir(dir)) {
		out->exists = true;
		long long du = fs_disk_usage(dir);
		out->used_bytes = du > 0 ? (uint64_t)du : 0;
		out->avail_bytes = recorded_size > out->used_bytes ? recorded_size - out->used_bytes
								   : 0;
	}
	free(image);
	free(dir);
}

int volume_percent_used(const struct volume_info *vi)
{
	uint64_t total = vi->used_bytes + vi->avail_bytes;
	if (!total)
		return 0;
	uint64_t p = (vi->used_bytes * 100 + total - 1) / total;
	return p > 100 ? 100 : (int)p;
}

enum miren_err volume_spare_prepare(struct volumes *v, uint64_t size_bytes, struct miren_error *err)
{
	if (v->mode != VOLUME_EXT4)
		return 0;
	if (size_bytes < VOLUME_MIN_BYTES)
		return miren_error_set(err, MIREN_EINVAL, "a disk must have at least 16 MiB");
	size_bytes = (size_bytes + 4095) & ~4095ULL;
	char *spare = spare_path(v, size_bytes);
	enum miren_err rc = 0;
	/* Made as .tmp and renamed, so volume_ensure never takes a half-made
	 * one; not under the lock, so that taking a spare never waits for
	 * mkfs (one preparer thread makes spares). */
	if (!fs_exists(spare))
		rc = make_image(v, spare, size_bytes, err);
	free(spare);
	return rc;
}

/* Notes a preparation beginning (+1) or ending (-1). */
static void preparing(struct volumes *v, int delta)
{
	pthread_mutex_lock(&v->mu);
	v->preparing += delta;
	v->prep_gen++;
	pthread_mutex_unlock(&v->mu);
}

/* Removes what a preparation of a filled spare left at prep_dir and
 * prep_image (unmounted first).  0, or MIREN_EIO when it stays busy. */
static enum miren_err prep_discard(const char *prep_dir, const char *prep_image,
				   struct miren_error *err)
{
	enum miren_err rc = unmount(prep_dir, err);
	if (rc)
		return rc;
	detach_image(prep_image);
	if (unlink(prep_image) != 0 && errno != ENOENT)
		return miren_error_set(err, MIREN_EIO, "cannot delete '%s': %s", prep_image,
				       io_strerror(errno));
	if (fs_remove_tree(prep_dir) != 0)
		return miren_error_set(err, MIREN_EIO, "cannot remove '%s': %s", prep_dir,
				       io_strerror(errno));
	return 0;
}

enum miren_err volume_spare_fill(struct volumes *v, const char *kind, uint64_t size_bytes,
				 enum miren_err (*fill)(const char *dir, void *user,
							struct miren_error *err),
				 void *user, struct miren_error *err)
{
	enum miren_err rc = kind_check(kind, err);
	if (rc)
		return rc;
	if (size_bytes < VOLUME_MIN_BYTES)
		return miren_error_set(err, MIREN_EINVAL, "a disk must have at least 16 MiB");
	size_bytes = (size_bytes + 4095) & ~4095ULL;
	bool dirs = v->mode == VOLUME_DIRS;
	char *filled = filled_spare_path(v, kind, size_bytes, !dirs, false);
	char *pdir = filled_spare_path(v, kind, size_bytes, false, true);
	char *pimg = filled_spare_path(v, kind, size_bytes, true, true);
	if (fs_exists(filled))
		goto out;
	preparing(v, +1);
	/* What an earlier failed preparation left (a crashed daemon's is
	 * gone: volumes_recover). */
	rc = prep_discard(pdir, pimg, err);
	if (!rc && dirs) {
		if (fs_mkdir_p(pdir, 0755) != 0 ||
		    (v->uid != (uid_t)-1 && chown(pdir, v->uid, v->gid) != 0))
			rc = miren_error_set(err, MIREN_EIO, "cannot create '%s': %s", pdir,
					     io_strerror(errno));
	} else if (!rc) {
		rc = make_image(v, pimg, size_bytes, err);
		if (!rc)
			rc = mount_image_at(v, pimg, pdir, kind, false, err);
	}
	if (!rc)
		rc = fill(pdir, user, err);
	if (!rc)
		fault_point("spare:filled");
	/* Unmounted, the image is complete on its file (the kernel writes
	 * everything back on the last unmount). */
	if (!rc && !dirs)
		rc = unmount(pdir, err);
	if (!rc) {
		const char *from = dirs ? pdir : pimg;
		/* Under the lock: volume_ensure takes a spare under it. */
		pthread_mutex_lock(&v->mu);
		bool exists = fs_exists(filled);
		if (!exists && rename(from, filled) != 0)
			rc = miren_error_set(err, MIREN_EIO, "cannot rename '%s' to '%s': %s", from,
					     filled, io_strerror(errno));
		pthread_mutex_unlock(&v->mu);
		if (!rc && !exists) {
			fs_fsync_dir(dirs ? v->spares : v->images);
			fault_point("spare:ready");
		}
	}
	/* The mount point, or everything when it failed. */
	struct miren_error e2;
	if (prep_discard(pdir, pimg, &e2) != 0)
		log_warn("disks: %s", e2.message);
	preparing(v, -1);
	if (!rc)
		log_info("disks: filled spare %s of %" PRIu64 " MiB ready", kind, size_bytes >> 20);
out:
	free(filled);
	free(pdir);
	free(pimg);
	return rc;
}

static void detach_unmounted(const char *loopname, const char *backing, void *user)
{
	struct volumes *v = user;
	size_t n = strlen(v->images);
	if (strncmp(backing, v->images, n) || backing[n] != '/')
		return;
	/* Mounted devices refuse LOOP_CLR_FD (EBUSY) and with autoclear go
	 * with their mount; a free one is a leftover. */
	char *dev = xasprintf("/dev/%s", loopname);
	int fd = open(dev, O_RDWR | O_CLOEXEC | O_EXCL);
	if (fd >= 0) {
		if (ioctl(fd, LOOP_CLR_FD, 0) == 0)
			log_warn("disks: detached %s, left attached to %s without a mount", dev,
				 backing);
		close(fd);
	}
	free(dev);
}

/*
 * At start: what interrupted preparations of filled spares left goes (a
 * preparation is never resumed: it is made again from the start).  In
 * spares/ that is every entry in ext4 mode (only mount points of
 * preparations live there; unmounted first), and the .prep directories in
 * dirs mode (the others are finished spares); in volumes/ the .prep
 * images.
 */
static void spares_recover(struct volumes *v)
{
	DIR *d = opendir(v->spares);
	struct dirent *de;
	while (d && (de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if (v->mode == VOLUME_DIRS && !ends_with(de->d_name, ".prep"))
			continue;
		char *path = fs_join(v->spares, de->d_name);
		struct miren_error e;
		if (unmount(path, &e) != 0)
			log_error("disks: %s", e.message);
		else if (fs_remove_tree(path) != 0)
			log_error("disks: cannot remove '%s': %s", path, io_strerror(errno));
		else
			log_warn("disks: removed %s, left by an interrupted spare preparation",
				 path);
		free(path);
	}
	if (d)
		closedir(d);
	d = opendir(v->images);
	while (d && (de = readdir(d))) {
		if (strncmp(de->d_name, ".spare-", 7) || !ends_with(de->d_name, ".prep.img"))
			continue;
		char *path = fs_join(v->images, de->d_name);
		detach_image(path);
		if (unlink(path) == 0)
			log_warn("disks: removed %s, left by an interrupted spare preparation",
				 path);
		free(path);
	}
	if (d)
		closedir(d);
}

int volumes_recover(struct volumes *v)
{
	spares_recover(v);
	if (v->mode == VOLUME_EXT4)
		each_loop(detach_unmounted, v);
	DIR *d = opendir(v->images);
	struct dirent *de;
	int failed = 0;
	while (d && (de = readdir(d))) {
		const char *n = de->d_name;
		size_t l = strlen(n);
		char *path = fs_join(v->images, n);
		if (l > 8 && !strcmp(n + l - 8, ".img.tmp")) {
			/* Half made: never renamed into place. */
			unlink(path);
		} else if (l > 4 && !strcmp(n + l - 4, ".img") && strncmp(n, ".spare-", 7)) {
			char *name = xstrndup(n, l - 4);
			struct miren_error e;
			miren_error_clear(&e);
			if (mount_image(v, name, true, &e) != 0) {
				failed++;
				log_error("disk %s: not mounted: %s", name, e.message);
			}
			free(name);
		}
		free(path);
	}
	if (d)
		closedir(d);
	return failed;
}

enum miren_err volume_parse_size(const char *s, uint64_t *out, struct miren_error *err)
{
	char *end = NULL;
	errno = 0;
	double num = s && isdigit((unsigned char)*s) ? strtod(s, &end) : -1;
	uint64_t mult = 0;
	if (end && errno == 0 && num >= 0) {
		while (*end == ' ')
			end++;
		static const struct {
			const char *unit;
			uint64_t mult;
		} units[] = {
			{ "", 1 },
			{ "b", 1 },
			{ "k", 1ULL << 10 },
			{ "kb", 1ULL << 10 },
			{ "kib", 1ULL << 10 },
			{ "m", 1ULL << 20 },
			{ "mb", 1ULL << 20 },
			{ "mib", 1ULL << 20 },
			{ "g", 1ULL << 30 },
			{ "gb", 1ULL << 30 },
			{ "gib", 1ULL << 30 },
			{ "t", 1ULL << 40 },
			{ "tb", 1ULL << 40 },
			{ "tib", 1ULL << 40 },
		};
		for (size_t i = 0; i < sizeof(units) / sizeof(units[0]) && !mult; i++)
			if (!strcasecmp(end, units[i].unit))
				mult = units[i].mult;
	}
	if (!mult || num * (double)mult >= 18e18 || num * (double)mult < 1) {
		miren_error_set(err, MIREN_EINVAL, "invalid size '%.64s'", s ? s : "");
		miren_error_hint(err, "give a number with a unit, e.g. 2G, 1536M or 10GiB (units "
				      "are powers of 1024)");
		return MIREN_EINVAL;
	}
	*out = (uint64_t)(num * (double)mult);
	return 0;
}

struct check_ctx {
	struct volumes *v;
	void (*fn)(void *user, const char *msg);
	void *user;
};

static void check_loop(const char *loopname, const char *backing, void *user)
{
	struct check_ctx *c = user;
	size_t n = strlen(c->v->images);
	if (strncmp(backing, c->v->images, n) || backing[n] != '/')
		return;
	/* A device no mount holds opens exclusively. */
	char *dev = xasprintf("/dev/%s", loopname);
	int fd = open(dev, O_RDONLY | O_CLOEXEC | O_EXCL);
	if (fd >= 0) {
		char *msg = xasprintf("loop device %s holds %s without a mount", dev, backing);
		c->fn(c->user, msg);
		free(msg);
		close(fd);
	}
	free(dev);
}

/* Appends to msgs (n of them) one message per leftover of an interrupted
 * spare preparation (what spares_recover removes). */
static void spare_leftovers(struct volumes *v, char ***msgs, size_t *n)
{
	const char *dirs[] = { v->spares, v->images };
	for (size_t k = 0; k < 2; k++) {
		DIR *d = opendir(dirs[k]);
		struct dirent *de;
		while (d && (de = readdir(d))) {
			const char *e = de->d_name;
			bool left = k == 0 ? strcmp(e, ".") && strcmp(e, "..") &&
						     (v->mode == VOLUME_EXT4 ||
						      ends_with(e, ".prep"))
					   : !strncmp(e, ".spare-", 7) && ends_with(e, ".prep.img");
			if (!left)
				continue;
			*msgs = xrealloc(*msgs, (*n + 1) * sizeof(**msgs));
			(*msgs)[(*n)++] = xasprintf("%s/%s is left from an interrupted spare "
						    "preparation",
						    k == 0 ? "spares" : "volumes", e);
		}
		if (d)
			closedir(d);
	}
}

/* Leftovers of spare preparations, unless one ran while they were looked
 * for (its own files are no leftovers). */
static void spares_check(struct volumes *v, void (*fn)(void *user, const char *msg), void *user)
{
	pthread_mutex_lock(&v->mu);
	bool busy = v->preparing > 0;
	unsigned gen = v->prep_gen;
	pthread_mutex_unlock(&v->mu);
	char **msgs = NULL;
	size_t n = 0;
	if (!busy)
		spare_leftovers(v, &msgs, &n);
	pthread_mutex_lock(&v->mu);
	busy = busy || v->preparing > 0 || v->prep_gen != gen;
	pthread_mutex_unlock(&v->mu);
	for (size_t i = 0; i < n; i++) {
		if (!busy)
			fn(user, msgs[i]);
		free(msgs[i]);
	}
	free(msgs);
}

void volumes_check(struct volumes *v, const char *const *names, size_t n,
		   void (*fn)(void *user, const char *msg), void *user)
{
	DIR *d = opendir(v->images);
	struct dirent *de;
	while (d && (de = readdir(d))) {
		size_t l = strlen(de->d_name);
		/* (A scratch area is no disk: its owner removes it, and the
		 * next daemon when a crash left it.) */
		if (l <= 4 || strcmp(de->d_name + l - 4, ".img") ||
		    !strncmp(de->d_name, ".spare-", 7) || !strncmp(de->d_name, ".scratch-", 9))
			continue;
		char *name = xstrndup(de->d_name, l - 4);
		bool known = false;
		for (size_t i = 0; i < n && !known; i++)
			known = !strcmp(names[i], name);
		char *msg = NULL;
		struct volume_info vi;
		volume_info(v, name, 0, &vi);
		if (!known)
			msg = xasprintf("image volumes/%s has no disk record", de->d_name);
		else if (!vi.mounted)
			msg = xasprintf("disk %s is an image that is not mounted", name);
		if (msg)
			fn(user, msg);
		free(msg);
		free(name);
	}
	if (d)
		closedir(d);
	struct check_ctx c = { v, fn, user };
	each_loop(check_loop, &c);
	spares_check(v, fn, user);
}
