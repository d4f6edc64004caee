/*
 * Pieces of the .miren.zst snapshot format shared by the writer
 * (snapshot_write.c) and the reader (snapshot_read.c): the fd and memory
 * sources/sinks and the path and symlink rules.  See snapshot.h for the
 * contracts and docs/backup-format.md for the format.
 *
 * Path rules (the tree's extractor's, lib/util/extract.h): a member below
 * "disk/" is named by a relative path whose components are never empty,
 * "." or "..".  A symlink may only point inside the disk, judged on the
 * text of its target alone (see snap_link_target_inside), so the rule does
 * not depend on what else is in the archive.
 */
#include "disk/snapshot.h"
#include "util/extract.h"
#include "util/io.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>

int snap_sink_fd(void *user, const void *data, size_t len)
{
	int fd = *(int *)user;
	if (io_write_all(fd, data, len))
		return MIREN_EIO; /* errno tells the writer why */
	return 0;
}

ssize_t snap_source_fd(void *user, void *buf, size_t len)
{
	int fd = *(int *)user;
	for (;;) {
		ssize_t n = read(fd, buf, len);
		if (n < 0 && errno == EINTR)
			continue;
		return n;
	}
}

ssize_t snap_source_mem(void *user, void *buf, size_t len)
{
	struct snap_mem *m = user;
	size_t left = m->pos < m->len ? m->len - m->pos : 0;
	if (len > left)
		len = left;
	if (len)
		memcpy(buf, (const char *)m->data + m->pos, len);
	m->pos += len;
	return (ssize_t)len;
}

enum miren_err snap_check_rel(const char *rel, struct miren_error *err)
{
	return extract_check_rel(rel, "backup", err);
}

bool snap_link_target_inside(const char *rel, const char *target)
{
	return extract_link_inside(rel, target);
}
