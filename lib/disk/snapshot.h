/*
 * The .miren.zst snapshot format: a zstd stream (content checksums on,
 * multithreaded) of a POSIX pax tar archive whose members are
 *
 *   miren-backup.json      the header (first): {"format": "miren-disk-backup",
 *                          "format_version": 1, "disk", "size", "created_at",
 *                          "addon", "app", "method", ...}
 *   disk/...               the disk's files, directories and symlinks
 *   miren-manifest.json    last: {"files": {"disk/...": "<sha256>", ...},
 *                          "archive_sha256": "<sha256 of every tar byte
 *                          before this member>", "file_count", "bytes"}
 *
 * so `tar --zstd -tvf FILE` lists it with standard tools.  The format is
 * documented in docs/backup-format.md.
 *
 * Writing is a pipeline: tar (libarchive) -> SHA-256 -> zstd -> sink
 * (or, in raw mode, tar -> SHA-256 -> sink).
 * Reading verifies everything (zstd frame checksums, each file's SHA-256,
 * the archive digest, member types, paths and sizes) while extracting into
 * a staging directory, and reports failure for any mismatch; the caller
 * swaps the staging directory into place only after success.
 */
#ifndef MIREN_SNAPSHOT_H
#define MIREN_SNAPSHOT_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "util/err.h"

#define SNAP_FORMAT_VERSION 1

/* Where compressed bytes go.  Returns 0, or a miren_err to abort. */
typedef int (*snap_sink_fn)(void *user, const void *data, size_t len);

struct snap_stats {
	uint64_t files;
	uint64_t bytes_in;  /* file content bytes archived / restored */
	uint64_t tar_bytes; /* uncompressed archive size */
	uint64_t zst_bytes; /* compressed size */
};

struct snap_writer;

/*
 * Starts a snapshot; header (a JSON object: disk, size, created_at, addon,
 * app, method, ...) is written as the first member, with "format" and
 * "format_version" added.  level: zstd level (0: 3); threads: zstd workers
 * (0: the number of online CPUs).
 */
struct snap_writer *snap_writer_new(snap_sink_fn sink, void *user, const json_t *header, int level,
				    int threads, struct miren_error *err);
/*
 * The same writer in raw mode: the sink receives the uncompressed tar
 * stream (exactly the bytes a .miren.zst file holds once decompressed),
 * for a consumer that compresses on its own terms, such as the backup
 * store (lib/backup/bstore.h), which cuts it into chunks.  Everything else
 * (members, per-file digests, archive_sha256, errors) is as above;
 * snap_stats.zst_bytes then counts the tar bytes given to the sink.
 */
struct snap_writer *snap_writer_new_raw(snap_sink_fn sink, void *user, const json_t *header,
					struct miren_error *err);
/*
 * Reuse of unchanged files (raw mode only), for a sink that keeps earlier
 * backups' bytes and checks them by its own digests, such as the backup
 * store.  With hooks set (before anything but the header is added):
 *
 *   - for each regular file of a tree, after its member's header and
 *     before its data, data_begin(u, name, st, stat_ns) is asked (st: the
 *     file's fstat before reading, taken after CLOCK_REALTIME read
 *     stat_ns) and answers
 *       SNAP_REUSE_READ:  the writer reads and digests it as usual;
 *       SNAP_REUSE_DEFER: the writer reads it but does not digest it;
 *       SNAP_REUSE_SKIP:  the sink already has exactly those st_size
 *                         bytes and puts them in the stream itself: the
 *                         writer neither reads the file nor sends them
 *                         (stream offsets still count them);
 *   - after the file's data (or in its place) data_end(u, name, st,
 *     stable) is called, before the member's padding; stable: the file
 *     did not change while it was read (same size, times and inode
 *     afterwards, not padded), so st may identify these bytes next time;
 *   - deferred digests: the archive digest always, and each DEFER or SKIP
 *     file's, are written into the manifest member as placeholders, and
 *     at the end digest_at(u, name, from, to, pos) tells the sink, for
 *     each (name NULL: the archive digest), that the SHA-256 (64 hex
 *     digits) of the stream's bytes [from, to) belongs at stream offset
 *     pos.  The sink must put them there before the stream is read (the
 *     store does it while reading: bstore_source).
 * Every hook runs on the caller's thread, in stream order with the sink.
 */
enum snap_reuse_kind { SNAP_REUSE_READ, SNAP_REUSE_DEFER, SNAP_REUSE_SKIP };
struct snap_reuse {
	void *u;
	int (*data_begin)(void *u, const char *name, const struct stat *st, int64_t stat_ns);
	void (*data_end)(void *u, const char *name, const struct stat *st, bool stable);
	void (*digest_at)(void *u, const char *name, uint64_t from, uint64_t to, uint64_t pos);
};
/* Sets the hooks (copied); MIREN_EINVAL on a writer not in raw mode or
 * already written to. */
enum miren_err snap_writer_set_reuse(struct snap_writer *w, const struct snap_reuse *r,
				     struct miren_error *err);
/*
 * The tree may change while it is copied, and something else repairs the
 * copy (a database's online backup: the replay of its write-ahead log).  As
 * such a database's own base backup does, a file or directory that
 * vanishes is left out, and a file that shrinks is padded with zeros to
 * the size its header declares.
 */
#define SNAP_TREE_VOLATILE 1u

/*
 * Adds the tree below root as members "disk/<relative path>", in sorted
 * order.  flags: 0 or SNAP_TREE_VOLATILE.  skip (may be NULL) is asked for
 * each relative path; true leaves it (and, for a directory, its contents)
 * out.  Regular files, directories and symlinks are archived; sockets,
 * fifos and devices are skipped.  Without SNAP_TREE_VOLATILE a file that
 * shrinks or vanishes while read is an error (MIREN_EIO).  The manifest's
 * digest of a file is taken from the bytes its member holds, never
 * separately from what was read.
 */
enum miren_err snap_add_tree(struct snap_writer *w, const char *root, unsigned flags,
			     bool (*skip)(const char *rel, bool is_dir, void *u), void *u,
			     struct miren_error *err);
/* Adds one regular file "disk/<rel>" with the given content. */
enum miren_err snap_add_data(struct snap_writer *w, const char *rel, const void *data, size_t len,
			     mode_t mode, struct miren_error *err);
/* Writes the manifest, ends the zstd frame, fills st (may be NULL). */
enum miren_err snap_writer_finish(struct snap_writer *w, struct snap_stats *st,
				  struct miren_error *err);
void snap_writer_free(struct snap_writer *w);

/* Pulls compressed bytes; returns bytes read (0 at end) or -1 (errno). */
typedef ssize_t (*snap_source_fn)(void *user, void *buf, size_t len);

/*
 * Reads a snapshot from source, verifying it whole, and extracts the disk's
 * files into staging (an existing empty directory) with owner uid/gid
 * ((uid_t)-1: the caller's).  Refused with MIREN_EINVAL and a message that
 * says what is wrong: not zstd, not our format, a newer format version,
 * truncated, any checksum mismatch, paths that are absolute or contain
 * "..", links that point outside staging, hard links, devices, fifos,
 * declared sizes that do not match.  Nothing is ever written outside
 * staging.  staging NULL: the same checks, and nothing is written at all
 * (verifying a file).  On success *header is the parsed header (caller
 * decrefs).
 * max_bytes bounds the extracted content (0: no bound).
 */
enum miren_err snap_read(snap_source_fn source, void *user, const char *staging, uid_t uid,
			 gid_t gid, uint64_t max_bytes, json_t **header, struct snap_stats *st,
			 struct miren_error *err);

/*
 * snap_read of an uncompressed tar stream (what snap_writer_new_raw
 * wrote; the backup store's bstore_source gives one): the same checks,
 * except the zstd ones, which the source's own (the store's chunk
 * digests) replace.  A source that fails (-1) makes it fail with
 * MIREN_EIO "cannot read the backup: <errno text>"; a source with a
 * better account of why (bstore_read_error) should be asked for it.
 */
enum miren_err snap_read_raw(snap_source_fn source, void *user, const char *staging, uid_t uid,
			     gid_t gid, uint64_t max_bytes, json_t **header, struct snap_stats *st,
			     struct miren_error *err);

/* Convenience sources/sinks over a file descriptor (user is an int *). */
int snap_sink_fd(void *user, const void *data, size_t len);
ssize_t snap_source_fd(void *user, void *buf, size_t len);

/* A source over bytes in memory (user is a struct snap_mem *; pos starts at 0). */
struct snap_mem {
	const void *data;
	size_t len;
	size_t pos;
};
ssize_t snap_source_mem(void *user, void *buf, size_t len);

/*
 * Checks a member path relative to "disk/" (e.g. "base/1/1259"): non-empty,
 * relative, and without empty, "." or ".." components.  Returns 0, or
 * MIREN_EINVAL with a message naming the path.
 */
enum miren_err snap_check_rel(const char *rel, struct miren_error *err);
/*
 * True when a symlink at rel (a path checked by snap_check_rel) pointing at
 * target stays inside the disk: target is non-empty and relative, every ".."
 * in it comes before any other component, and there are no more of them
 * than rel has parent directories.  Since extraction never lets a member's
 * parent be a symlink, links that pass cannot escape however they chain.
 * Both the writer (which refuses to archive other links) and the reader use it.
 */
bool snap_link_target_inside(const char *rel, const char *target);

#endif
