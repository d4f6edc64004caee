/*
 * Volumes: the storage behind a disk.  A disk NAME is mounted (or lives) at
 * DATA/disks/NAME; what is there depends on the mode:
 *
 *   ext4   a sparse ext4 image DATA/volumes/NAME.img of the disk's size,
 *          attached to a loop device (LOOP_CONFIGURE with autoclear, so
 *          unmounting frees the device and a daemon killed between attach
 *          and mount leaks none) and mounted nosuid,nodev at disks/NAME.
 *          A full disk is full for the programs writing it (ENOSPC) and
 *          for no one else.  The image's size is the disk's size.
 *   dirs   a plain directory; the size is only recorded (by the caller).
 *          Used when loop devices cannot be: the daemon is not root, the
 *          kernel has no loop support, mkfs.ext4 is missing, or
 *          MIREN_DISKS=dirs is set.
 *
 * The mode is chosen once, when volumes_open runs, and logged with its
 * reason.  A disk that has an image is an ext4 disk whatever the mode (it is
 * mounted when loop devices can be used), so disks made before a mode change
 * keep working.
 *
 * Images are cheap: ftruncate (sparse) and mkfs.ext4 with lazy inode table
 * and journal initialisation and no reserved blocks (nobody but the service
 * user writes a disk; a root reserve would protect nothing): a 1 GiB image
 * holds well under 1 MiB of blocks when made, and it is mounted with
 * noinit_itable so that the kernel does not zero its inode tables later
 * (they read as zeros: the file is sparse).  volume_spare_prepare makes a
 * formatted image per size ahead of time (volumes/.spare-<bytes>.img), so
 * provisioning only renames and mounts.  volume_spare_fill goes further: a
 * filled spare of a kind is a disk an engine has already written its
 * empty data into (volumes/.spare-<kind>-<bytes>.img, unmounted; in dirs
 * mode the directory spares/<kind>-<bytes>), which volume_ensure with that
 * kind takes whole by a rename: no data is copied while provisioning.
 *
 * Crash safety: an image is made as NAME.img.tmp and renamed; every function
 * is idempotent and may be run again after a kill at any point;
 * volumes_recover (daemon start) removes half-made images and spares,
 * detaches loop devices left without a mount, and mounts every image
 * (e2fsck -p first).
 * Unmounted, a mount point is mode 0000, owned by root, so the service user
 * cannot write into it by mistake.
 *
 * Names: the disk names of disk_name_check plus internal ones starting with
 * '.' (".restore-<hex>", ".old-<name>", ".trash-<hex>"); never '/' or "..".
 * Callers serialise operations on one name (the disk lock); functions on
 * different names may run concurrently.
 */
#ifndef MIREN_VOLUME_H
#define MIREN_VOLUME_H

#include "util/err.h"

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

enum volume_mode {
	VOLUME_EXT4, /* loop-mounted ext4 images */
	VOLUME_DIRS, /* plain directories, size recorded only */
};

/* "ext4" / "dirs". */
const char *volume_mode_name(enum volume_mode mode);

struct volumes;

/*
 * Opens the volumes of data_dir (DATA/volumes, DATA/disks are made when
 * missing).  uid/gid: the owner of a disk's root ((uid_t)-1: the daemon's).
 * Chooses the mode (MIREN_DISKS=dirs forces directories; otherwise ext4
 * when the process is root, /dev/loop-control opens and mkfs.ext4 exists)
 * and logs it with the reason.  Never fails; the caller frees with
 * volumes_free.
 */
struct volumes *volumes_open(const char *data_dir, uid_t uid, gid_t gid);
void volumes_free(struct volumes *v);
enum volume_mode volumes_mode(const struct volumes *v);
/* Why the mode was chosen ("the daemon runs as root with loop devices",
 * "MIREN_DISKS=dirs", ...).  Owned by v. */
const char *volumes_mode_reason(const struct volumes *v);

/* DATA/disks/NAME.  Caller frees. */
char *volume_dir(const struct volumes *v, const char *name);

/*
 * Makes disk `name` exist and be usable at volume_dir(): in ext4 mode an
 * image of size_bytes (the filled spare of `kind` and that size when kind
 * is not NULL and one is ready, else an empty spare of that size, else a
 * new one; an existing image is kept whatever its size), mounted, its
 * root owned by the service user; in dirs mode the directory (the filled
 * spare's when there is one).  What a filled spare holds is the caller's
 * to check: it may be of an earlier fill.  Idempotent.  Errors:
 * MIREN_EINVAL (bad name or kind, size under 16 MiB), MIREN_EIO (mkfs,
 * loop device or mount failed; nothing half-made is left in place).
 */
enum miren_err volume_ensure(struct volumes *v, const char *name, uint64_t size_bytes,
			     const char *kind, struct miren_error *err);

/*
 * Removes disk `name` and its data: unmounts it (waiting up to 5 s for
 * the last users to go), detaches its loop device, deletes the image and
 * the directory.  A missing disk is success.  MIREN_EIO when it stays
 * busy or cannot be deleted (what is left can be removed by running it
 * again).
 */
enum miren_err volume_remove(struct volumes *v, const char *name, struct miren_error *err);

/*
 * Renames disk `from` to `to` (image and mount point; in dirs mode the
 * directory), leaving `to` mounted.  `to` must not exist.  Each step is a
 * rename, so after a crash exactly one of the names holds the data (the
 * image decides; volumes_recover mounts it under its name).  The disk is
 * unmounted for the move: nothing may use it.  MIREN_EEXISTS when `to`
 * exists, MIREN_ENOTFOUND when `from` does not.
 */
enum miren_err volume_move(struct volumes *v, const char *from, const char *to,
			   struct miren_error *err);

/*
 * True when a mounted disk can grow while in use: the kernel's online ext4
 * resize needs CAP_SYS_RESOURCE, which containers often drop.  Without it,
 * volume_resize unmounts the disk, so its users must be stopped first.
 */
bool volumes_grow_online(const struct volumes *v);

/* Whether the filesystem holding the images (ext4 mode) or the disk
 * directories (dirs mode) is full (under 16 MiB available to the daemon):
 * a sparse image whose host filesystem is full fails writes with EIO,
 * not ENOSPC, so callers ask this to say why. */
bool volumes_host_full(const struct volumes *v);

/*
 * Grows disk `name` to size_bytes: the image is extended (sparse), then,
 * online (volumes_grow_online), the loop device told (LOOP_SET_CAPACITY)
 * and the mounted filesystem grown (resize2fs); otherwise the disk is
 * unmounted (MIREN_EIO when it stays busy for 5 s), checked (e2fsck -f),
 * grown (resize2fs) and mounted again.  Running it again after a crash
 * finishes it.  In dirs mode nothing changes on disk (the caller records
 * the size).  MIREN_EINVAL when size_bytes is below the image's size
 * (shrinking is refused, nothing changed); MIREN_ENOTFOUND when the disk
 * has no image or directory; MIREN_EIO when a step failed.
 */
enum miren_err volume_resize(struct volumes *v, const char *name, uint64_t size_bytes,
			     struct miren_error *err);

/*
 * Sets the size of disk `name`, which nothing uses (a restore's staging
 * disk), to size_bytes, growing or shrinking it while unmounted; mounted
 * again afterwards.  A directory disk is left as it is.  MIREN_EIO when the
 * data does not fit (resize2fs says so; the disk keeps its size and data).
 */
enum miren_err volume_fit(struct volumes *v, const char *name, uint64_t size_bytes,
			  struct miren_error *err);

struct volume_info {
	enum volume_mode mode; /* of this disk: ext4 when it has an image */
	bool exists;           /* image (ext4) or directory (dirs) */
	bool mounted;          /* ext4: mounted at its directory */
	uint64_t size_bytes;   /* ext4: the image's size; dirs: recorded_size */
	uint64_t fs_bytes;     /* ext4: the filesystem's size (its superblock; less
				  than size_bytes while a resize is unfinished) */
	uint64_t used_bytes;   /* ext4: the filesystem's (statvfs); dirs: du */
	uint64_t avail_bytes;  /* ext4: free for the service user; dirs: size - used */
	char device[32];       /* ext4, mounted: "/dev/loopN" */
};

/* What disk `name` is and how full (recorded_size: the size the caller
 * recorded, used in dirs mode).  Never fails: a missing disk has
 * exists=false. */
void volume_info(struct volumes *v, const char *name, uint64_t recorded_size,
		 struct volume_info *out);

/* Percentage of a disk in use (0..100), from used and available. */
int volume_percent_used(const struct volume_info *vi);

/*
 * Makes a formatted spare image of size_bytes ready (volumes/.spare-<bytes>.img)
 * unless one is; volume_ensure of that size then takes it.  Meant for a
 * background thread; a no-op in dirs mode.
 */
enum miren_err volume_spare_prepare(struct volumes *v, uint64_t size_bytes,
				    struct miren_error *err);

/*
 * Makes the filled spare of kind (1..32 of [a-z0-9], the caller's name for
 * what fill writes, e.g. an engine and its version) and size_bytes ready
 * unless it is: a new disk (ext4: an image made and mounted at
 * spares/<kind>-<bytes>.prep; dirs: that directory) that fill(dir, user,
 * err) writes into (as it would into a new disk's directory; it must
 * flush what it wrote), then unmounted and renamed into place, where
 * volume_ensure with that kind takes it.  Meant for a background thread
 * (one at a time); a kill at any point leaves nothing volumes_recover
 * does not remove, and a spare is either complete or absent.  Returns 0,
 * fill's error, or MIREN_EIO/MIREN_EINVAL with nothing left behind.
 */
enum miren_err volume_spare_fill(struct volumes *v, const char *kind, uint64_t size_bytes,
				 enum miren_err (*fill)(const char *dir, void *user,
							struct miren_error *err),
				 void *user, struct miren_error *err);

/*
 * At daemon start, before any server runs: removes half-made images
 * (*.tmp) and what interrupted preparations of filled spares left
 * (unmounted first), detaches loop devices backed by this data
 * directory's images that nothing mounts, and mounts every image not
 * mounted (e2fsck -p first; an image whose check fails stays unmounted and
 * is logged).  Returns how many images could not be mounted.
 */
int volumes_recover(struct volumes *v);

/*
 * The invariants an outside look can check, given the names of the disk
 * records: every image belongs to a record and is mounted, no loop
 * device holds one of this data directory's images without a mount, and
 * nothing is left of an interrupted spare preparation (one in progress
 * is no violation).  fn(user, message) for each violation.
 */
void volumes_check(struct volumes *v, const char *const *names, size_t n,
		   void (*fn)(void *user, const char *msg), void *user);

/*
 * Parses a size: a number with an optional unit K, M, G, T (powers of 1024;
 * "KiB", "MB", "GiB", ... accepted the same) or none (bytes).  0 or
 * MIREN_EINVAL with a message naming `what`.
 */
enum miren_err volume_parse_size(const char *s, uint64_t *out, struct miren_error *err);

#endif
