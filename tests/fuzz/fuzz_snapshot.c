/*
 * libFuzzer target for snap_read (lib/disk/snapshot_read.c); see README.md.
 *
 * Each input is restored into a fresh temporary staging directory, which is
 * removed afterwards.  An input starting with 'T' is a tar stream: the rest
 * is zstd-compressed here first (with a checksum), so mutations reach the
 * tar and manifest checks instead of dying at the zstd checksum.  Any other
 * input is fed as the .miren.zst file itself.
 *
 * Besides the sanitizers, the target aborts when snap_read breaks its
 * contract: a file outside staging, or a failed restore that leaves
 * anything in staging.
 *
 * Built with -DFUZZ_SNAPSHOT_GEN_SEEDS it is instead a program writing the
 * two seeds of tests/fuzz/corpus/snapshot/ into the directory given.
 */
#include "disk/snapshot.h"
#include "util/fs.h"
#include "util/strbuf.h"

#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zstd.h>

/* Number of entries in dir other than "." and "..", and whether one is
   not named only. */
static int entries(const char *dir, const char *only, int *others)
{
	DIR *d = opendir(dir);
	if (!d)
		abort();
	int n = 0;
	struct dirent *de;
	while ((de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		n++;
		if (others && (!only || strcmp(de->d_name, only)))
			(*others)++;
	}
	closedir(d);
	return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char root[] = "/tmp/miren-fuzz-snapshot.XXXXXX";
	if (!mkdtemp(root))
		abort();
	char *stage = fs_join(root, "stage");
	if (mkdir(stage, 0700) != 0)
		abort();

	void *z = NULL;
	const void *in = data;
	size_t len = size;
	if (size && data[0] == 'T') {
		ZSTD_CCtx *c = ZSTD_createCCtx();
		ZSTD_CCtx_setParameter(c, ZSTD_c_compressionLevel, 1);
		ZSTD_CCtx_setParameter(c, ZSTD_c_checksumFlag, 1);
		size_t cap = ZSTD_compressBound(size - 1);
		z = malloc(cap);
		len = ZSTD_compress2(c, z, cap, data + 1, size - 1);
		ZSTD_freeCCtx(c);
		if (ZSTD_isError(len))
			abort();
		in = z;
	}

	struct snap_mem m = { in, len, 0 };
	struct miren_error err = { 0 };
	json_t *header = NULL;
	int rc = snap_read(snap_source_mem, &m, stage, (uid_t)-1, (gid_t)-1, 64u << 20, &header,
			   NULL, &err);
	if (rc && !err.message[0])
		abort(); /* every failure says why */
	json_decref(header);

	int others = 0;
	entries(root, "stage", &others);
	if (others)
		abort(); /* something was written outside staging */
	if (rc && entries(stage, NULL, NULL))
		abort(); /* a failed restore must leave staging empty */

	free(z);
	fs_remove_tree(root);
	free(stage);
	return 0;
}

#ifdef FUZZ_SNAPSHOT_GEN_SEEDS
static int sink_sb(void *user, const void *data, size_t len)
{
	return strbuf_add(user, data, len);
}

static void put(const char *dir, const char *name, const void *data, size_t len)
{
	char *p = fs_join(dir, name);
	if (fs_write_atomic(p, data, len, 0644) != 0) {
		perror(p);
		exit(1);
	}
	free(p);
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: %s CORPUS_DIR\n", argv[0]);
		return 2;
	}
	char src[] = "/tmp/miren-seed.XXXXXX";
	if (!mkdtemp(src))
		return 1;
	char *p = fs_join(src, "base/1");
	fs_mkdir_p(p, 0700);
	free(p);
	p = fs_join(src, "base/1/1259");
	fs_write_atomic(p, "page\0\0\0\0data", 12, 0600);
	free(p);
	p = fs_join(src, "PG_VERSION");
	fs_write_atomic(p, "15\n", 3, 0600);
	free(p);
	p = fs_join(src, "empty");
	fs_write_atomic(p, "", 0, 0600);
	free(p);
	p = fs_join(src, "current");
	if (symlink("base/1", p) != 0)
		return 1;
	free(p);

	struct strbuf sb = STRBUF_INIT;
	struct miren_error err = { 0 };
	json_t *h = json_pack("{s:s, s:s, s:s}", "disk", "seed", "addon", "pg", "method", "tar");
	struct snap_writer *w = snap_writer_new(sink_sb, &sb, h, 3, 1, &err);
	json_decref(h);
	if (!w || snap_add_tree(w, src, 0, NULL, NULL, &err) || snap_writer_finish(w, NULL, &err)) {
		fprintf(stderr, "error: %s\n", err.message);
		return 1;
	}
	snap_writer_free(w);
	fs_remove_tree(src);
	put(argv[1], "seed-small.miren.zst", sb.buf, sb.len);

	/* The same backup as a 'T' input: its tar, uncompressed. */
	unsigned long long n = ZSTD_getFrameContentSize(sb.buf, sb.len);
	size_t cap = n == ZSTD_CONTENTSIZE_UNKNOWN || n == ZSTD_CONTENTSIZE_ERROR ? (1u << 20) : n;
	char *tar = malloc(cap + 1);
	tar[0] = 'T';
	ZSTD_DCtx *d = ZSTD_createDCtx();
	ZSTD_inBuffer zin = { sb.buf, sb.len, 0 };
	ZSTD_outBuffer zout = { tar + 1, cap, 0 };
	size_t r = ZSTD_decompressStream(d, &zout, &zin);
	ZSTD_freeDCtx(d);
	if (ZSTD_isError(r) || r != 0)
		return 1;
	put(argv[1], "seed-small.tar", tar, zout.pos + 1);
	free(tar);
	strbuf_release(&sb);
	return 0;
}
#endif
