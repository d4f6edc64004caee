/*
 * The one tar extractor of the tree (libarchive), hardened for archives
 * from outside: entry paths must be relative, non-empty and free of ".."
 * (anywhere, even inside a name); only regular files, directories and
 * symlinks are written (hard links, devices, fifos refused); libarchive's
 * secure flags (no "..", no writing through a symlink) and a destination
 * made free of symlinks keep every write inside dest; the total content
 * size and the number of entries are bounded.  Permissions keep 0777 at
 * most (no set-id bits); owners and times are not restored.
 */
#ifndef MIREN_EXTRACT_H
#define MIREN_EXTRACT_H

#include "util/err.h"

struct extract_limits {
	unsigned long long max_bytes; /* sum of the entries' sizes; over it: MIREN_ETOOBIG */
	unsigned long max_entries;    /* over it: MIREN_ETOOBIG */
	const char *what;             /* names the archive in messages ("source archive") */
};

/*
 * Extracts the tar archive at tar_path (any compression libarchive reads)
 * into dest, an existing directory.  Returns 0, or MIREN_EINVAL (not an
 * archive, damaged, an entry refused), MIREN_ETOOBIG (over a limit) or
 * MIREN_EIO (cannot write), with err filled.  On failure dest may hold
 * part of the tree: the caller removes it.
 */
enum miren_err extract_tar(const char *tar_path, const char *dest, const struct extract_limits *lim,
			   struct miren_error *err);

#endif
