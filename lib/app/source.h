/*
 * App source trees as tar archives: the CLI packs a project directory, the
 * daemon unpacks it into a release directory.
 *
 * Packing is deterministic (entries sorted, times, owners zeroed) so the
 * SHA-256 of the archive identifies the content: deploying an unchanged
 * tree yields the same hash.  `.git` is skipped; so are sockets, fifos and
 * devices.
 */
#ifndef MIREN_APP_SOURCE_H
#define MIREN_APP_SOURCE_H

#include "util/err.h"
#include "util/strbuf.h"

/* Largest source archive the daemon accepts. */
#define SOURCE_MAX_BYTES (256u * 1024 * 1024)
/* Most entries (files, directories, links) a source archive may hold. */
#define SOURCE_MAX_ENTRIES 200000ul

/* Packs dir into out (an uncompressed ustar/pax stream).  Returns 0, or a
 * miren_err with err filled (unreadable file, over SOURCE_MAX_BYTES). */
enum miren_err source_pack(const char *dir, struct strbuf *out, struct miren_error *err);

/*
 * Unpacks the archive at tar_path into dest (an existing empty directory)
 * with the tree's one extractor (util/extract.h): refuses absolute paths,
 * '..' components, links leaving dest, devices, more than SOURCE_MAX_BYTES
 * of content and more than SOURCE_MAX_ENTRIES entries.  On failure dest may hold part
 * of the tree: the caller removes it.
 */
enum miren_err source_unpack(const char *tar_path, const char *dest, struct miren_error *err);

#endif
