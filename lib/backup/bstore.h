/*
 * The backup store: backups of addons kept as content-addressed,
 * compressed, checksummed chunks of their snapshot's tar stream plus one
 * manifest each, so that backups of the same disk or database share what
 * did not change.
 *
 *   chunks/<2 hex>/<64 hex>  a chunk: one zstd frame (content checksum on)
 *                            of bytes whose SHA-256 is the name
 *   manifests/<id>.json      a backup: {"format":"miren-backup-manifest",
 *                            "format_version":1,"id","created_at" (unix
 *                            seconds),"created_ms","size" (tar bytes),
 *                            "stored_bytes" (compressed bytes of the chunks
 *                            this backup added),"chunks_sha256" (SHA-256 of
 *                            the lines "<hex> <len>\n" of its chunks: the
 *                            whole stream's digest, through the chunks'),
 *                            "meta":{caller's},"chunks":[["<hex>",len,
 *                            "<XXH3-128 hex>"],...] (the third element
 *                            optional), "xxh3_seed" (16 hex; see bstore.c's
 *                            quick check), "files":{path: {"first","count"
 *                            chunk indexes, and "size","mtime_ns","ctime_ns",
 *                            "ino" when that identity can be trusted}}}
 *   lock                     flock(2)ed: shared by writers and readers,
 *                            exclusive by gc
 *   wal/<server>/            an engine's write-ahead log archived for
 *                            point-in-time recovery (not bstore's)
 *   tmp/                     partial chunks/manifests; emptied at open
 * Manifests are the truth: a backup exists iff its manifest does.
 */
#ifndef MIREN_BSTORE_H
#define MIREN_BSTORE_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "disk/snapshot.h"
#include "util/err.h"

struct bstore;
enum miren_err bstore_open(const char *dir, struct bstore **out, struct miren_error *err);
void bstore_close(struct bstore *s);
const char *bstore_dir(const struct bstore *s);

/* Writing one backup: feed the raw tar stream (snap_writer in raw mode)
 * through bstore_sink; commit writes chunks (fsynced) then the manifest
 * (atomic rename, fsynced dir).  *id: malloc'd, "YYYYMMDD-HHMMSS-xxxx"
 * (UTC, 4 random hex), sortable by time. */
struct bstore_writer;
enum miren_err bstore_write_begin(struct bstore *s, struct bstore_writer **out,
				  struct miren_error *err);
int bstore_sink(void *user, const void *data, size_t len); /* a snap_sink_fn; user = writer */
enum miren_err bstore_write_commit(struct bstore_writer *w, const json_t *meta, char **id,
				   struct miren_error *err);
void bstore_write_free(struct bstore_writer *w); /* aborts an uncommitted one */
/* Whether the writer failed (the store full, a chunk it could not write);
 * if so copies why into *out: a sink's caller that only saw bstore_sink
 * fail reports this instead of its own generic message. */
bool bstore_write_failed(struct bstore_writer *w, struct miren_error *out);
/*
 * The usual way to write a backup: a snap_writer in raw mode feeding w,
 * with the store's file reuse on (snap_writer_set_reuse): a regular file
 * of 1 MiB or more gets chunks of its own, and one whose identity
 * (relative path, size, mtime and ctime in ns, inode) equals its record in
 * the base backup is taken from there without being read.  The caller
 * adds the tree, finishes and frees it, then commits w.  The archive
 * digest inside the stream is filled in when it is read (bstore_source).
 */
struct snap_writer *bstore_snap_writer(struct bstore_writer *w, const json_t *header,
				       struct miren_error *err);
/* The hooks bstore_snap_writer sets, for a caller that makes its own raw
 * snap_writer with sink bstore_sink and user w: pass them to
 * snap_writer_set_reuse.  Valid while w lives. */
const struct snap_reuse *bstore_reuse(struct bstore_writer *w);
/* Sets w's base: the newest (undamaged) backup whose meta has all of
 * lineage's key/values (e.g. {"disk": NAME}); none (or lineage NULL): no
 * base.  Call before writing.  Returns 0 (err is for later failures). */
enum miren_err bstore_write_base(struct bstore_writer *w, const json_t *lineage,
				 struct miren_error *err);

/* Every backup whose meta has all the key/values of `filter` (a JSON
 * object; NULL: all), oldest first (by created_ms; a damaged manifest is
 * left out with a warning in the log): a JSON array of
 * {"id","created_at","size","stored_bytes","meta"}. Caller decrefs. */
json_t *bstore_list(struct bstore *s, const json_t *filter);
/* One manifest (caller decrefs); MIREN_ENOTFOUND "no backup 'ID'". */
enum miren_err bstore_get(struct bstore *s, const char *id, json_t **manifest,
			  struct miren_error *err);
/* Reading: a snap_source_fn giving the raw tar stream, each chunk checked
 * against its SHA-256; a missing or damaged chunk ends it with -1 and
 * bstore_read_error() says which chunk of which backup. */
struct bstore_reader;
enum miren_err bstore_read_open(struct bstore *s, const char *id, struct bstore_reader **out,
				struct miren_error *err);
ssize_t bstore_source(void *user, void *buf, size_t len); /* user = reader */
const struct miren_error *bstore_read_error(const struct bstore_reader *r);
void bstore_read_close(struct bstore_reader *r);
/* The backup as a standalone .miren.zst stream (zstd of the tar). */
enum miren_err bstore_export(struct bstore *s, const char *id, snap_sink_fn sink, void *user,
			     struct miren_error *err);
/* Removes a backup's manifest (its chunks go at the next gc). */
enum miren_err bstore_remove(struct bstore *s, const char *id, struct miren_error *err);
/* Removes every chunk no manifest names (as 64 hex digits anywhere in
 * any file of manifests/, so a damaged manifest still keeps its chunks);
 * waits for open writers and readers (never call it while holding one:
 * it would wait for ever).  Safe to kill at any instant. */
enum miren_err bstore_gc(struct bstore *s, uint64_t *removed_bytes, struct miren_error *err);
/* Reads every chunk of backup id; MIREN_EINVAL naming the first damaged
 * or missing chunk.  bstore_chunk_users: ids of the backups naming chunk
 * hex (a JSON array; caller decrefs). */
enum miren_err bstore_check(struct bstore *s, const char *id, struct miren_error *err);
json_t *bstore_chunk_users(struct bstore *s, const char *hex);

#endif
