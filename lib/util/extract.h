/*
 * The one tar extractor of the tree (libarchive reads, this writes),
 * hardened for archives from outside; it serves the deploy's source
 * archives (extract_tar) and the backup reader (lib/disk/snapshot_read.c,
 * which reads the archive itself and hands each member to an extractor).
 *
 * Every entry is checked before anything is made: its name is relative
 * and has no ".." component; its path below the destination has no empty,
 * "." or ".." component; only regular files, directories and symlinks are
 * written (hard links, devices, fifos, sockets and sparse files refused);
 * with links_inside a symlink's target must stay inside the tree
 * (extract_link_inside; a backup's rule), else any target is kept as text
 * (nothing is ever written through a link); the total size of the files
 * and the number of entries are bounded.  Writing never follows a
 * symlink: every entry is made with *at() calls relative to a directory
 * fd walked from the destination's with O_NOFOLLOW|O_DIRECTORY, and files
 * are created O_EXCL|O_NOFOLLOW, so nothing is ever written outside the
 * destination, and an entry that comes twice is refused.  Permissions keep
 * 0777 (directories 01777) at most: no set-id bits.  Entries get the
 * extractor's owner (or the process's) and, when asked, the archive's
 * modification times; a directory's mode and time are set last.
 */
#ifndef MIREN_EXTRACT_H
#define MIREN_EXTRACT_H

#include "util/err.h"

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

struct archive;
struct archive_entry;

struct extract_opts {
	/* Names the archive in messages ("source archive", "backup"). */
	const char *what;
	/* The files' sizes together (0: no limit) and the number of entries
	 * (0: no limit); over either: MIREN_ETOOBIG. */
	unsigned long long max_bytes;
	unsigned long max_entries;
	/* Owner of every entry made and, at extractor_finish, of the
	 * destination itself; (uid_t)-1 and (gid_t)-1: the process's. */
	uid_t uid;
	gid_t gid;
	/* Mode of a directory made for an entry below it before its own entry
	 * came (that entry sets the mode when it comes); 0: 0700. */
	mode_t parent_mode;
	bool keep_times;   /* the archive's modification times */
	bool links_inside; /* symlinks must stay inside the tree, else any target */
	bool sync;         /* extractor_finish flushes the filesystem (syncfs) */
};

/*
 * Checks an archive member's name: not absolute, no ".." component
 * (MIREN_EINVAL "member '<name>' has an absolute path" / "has a '..' path
 * component").  The names an extractor is given are the caller's to map
 * to paths; call this first on what the archive says.
 */
enum miren_err extract_check_name(const char *name, struct miren_error *err);

/*
 * Checks a path below the destination: non-empty, relative, and without
 * empty, "." or ".." components.  0, or MIREN_EINVAL with a message naming
 * the path (and what, the archive: "empty path in the backup").
 */
enum miren_err extract_check_rel(const char *rel, const char *what, struct miren_error *err);

/*
 * True when a symlink at rel (a path extract_check_rel accepts) pointing
 * at target stays inside the tree: target is non-empty and relative, every
 * ".." in it comes before any other component, and there are no more of
 * them than rel has parent directories.  Since an extractor never lets an
 * entry's parent be a symlink, links that pass cannot escape however they
 * chain.
 */
bool extract_link_inside(const char *rel, const char *target);

/* A member's name fit for a message: printable ASCII (others shown as
 * '?'), at most 120 bytes and then "...".  Returns buf. */
const char *extract_show(const char *name, char buf[128]);

struct extractor;

/*
 * An extractor writing below dest, an existing empty directory
 * (MIREN_EINTERNAL when it is not: it is left alone; MIREN_EIO when it
 * cannot be opened), or, dest NULL, one that checks every entry and
 * writes nothing.  opts is copied (what must outlive the extractor).
 * Free with extractor_close.
 */
enum miren_err extractor_open(const char *dest, const struct extract_opts *opts,
			      struct extractor **out, struct miren_error *err);

/*
 * Writes the entry whose header libarchive's reader a has just read (its
 * data is read from a here) at rel below the destination; rel "" is the
 * destination itself (a directory entry: its mode and time, set at
 * extractor_finish).  name is the member's name for messages.  For a
 * regular file, sha256_hex (may be NULL) gets the SHA-256 of its content.
 * Returns 0, or MIREN_EINVAL (an entry refused, damaged data: the
 * message names it), MIREN_ETOOBIG (over a limit), MIREN_EIO (cannot
 * write; "the disk is full" for ENOSPC).  On failure what was written
 * stays until extractor_close(x, true).
 */
enum miren_err extractor_entry(struct extractor *x, struct archive *a, struct archive_entry *e,
			       const char *rel, const char *name, char sha256_hex[65],
			       struct miren_error *err);

/* Files written (or checked) so far, and their bytes. */
uint64_t extractor_files(const struct extractor *x);
uint64_t extractor_bytes(const struct extractor *x);

/*
 * After the last entry: sets the directories' modes and times (creating
 * entries changes them), gives the destination the owner (and the mode
 * and time of its own entry, if any), and with opts.sync flushes the
 * filesystem.  0 or MIREN_EIO.  A no-op for a checking extractor.
 */
enum miren_err extractor_finish(struct extractor *x, struct miren_error *err);

/* Frees x; with discard, first removes everything it made below the
 * destination (the destination stays, empty).  NULL is fine. */
void extractor_close(struct extractor *x, bool discard);

/* extract_tar's limits. */
struct extract_limits {
	unsigned long long max_bytes; /* sum of the entries' sizes; over it: MIREN_ETOOBIG */
	unsigned long max_entries;    /* over it: MIREN_ETOOBIG */
	const char *what;             /* names the archive in messages ("source archive") */
};

/*
 * Extracts the tar archive at tar_path (any compression libarchive reads)
 * into dest, an existing empty directory, with an extractor (directories
 * made for an entry below them 0755, owners the process's, times not
 * kept, symlinks with any target).  Returns 0, or MIREN_EINVAL
 * (not an archive, damaged, an entry refused), MIREN_ETOOBIG (over a
 * limit) or MIREN_EIO (cannot write), with err filled.  On failure dest is
 * left empty.
 */
enum miren_err extract_tar(const char *tar_path, const char *dest, const struct extract_limits *lim,
			   struct miren_error *err);

#endif
