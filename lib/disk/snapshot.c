/*
 * Pieces of the .miren.zst snapshot format shared by the writer
 * (snapshot_write.c) and the reader (snapshot_read.c): the fd and memory
 * sources/sinks and the path and symlink rules.  See snapshot.h for the
 * contracts and docs/backup-format.md for the format.
 *
 * Path rules: a member below "disk/" is named by a relative path whose
 * components are never empty, "." or "..".  A symlink may only point inside
 * the disk, judged on the text of its target alone (see
 * snap_link_target_inside), so the rule does not depend on what else is in
 * the archive.
 */
#include "disk/snapshot.h"
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
	if (!rel || !*rel)
		return miren_error_set(err, MIREN_EINVAL, "empty path in the backup");
	if (rel[0] == '/')
		return miren_error_set(err, MIREN_EINVAL, "path '%s' is absolute", rel);
	const char *p = rel;
	for (;;) {
		const char *slash = strchr(p, '/');
		size_t n = slash ? (size_t)(slash - p) : strlen(p);
		if (n == 2 && p[0] == '.' && p[1] == '.')
			return miren_error_set(err, MIREN_EINVAL, "path '%s' has a '..' component",
					       rel);
		if (n == 0 || (n == 1 && p[0] == '.'))
			return miren_error_set(err, MIREN_EINVAL,
					       "path '%s' has an empty or '.' component", rel);
		if (!slash)
			return 0;
		p = slash + 1;
	}
}

bool snap_link_target_inside(const char *rel, const char *target)
{
	if (!rel || !target || !*target || target[0] == '/')
		return false;
	size_t depth = 0; /* parent directories of rel below the disk root */
	for (const char *s = rel; *s; s++)
		if (*s == '/')
			depth++;
	size_t ups = 0;
	bool named = false; /* seen a component other than "..", "." or "" */
	const char *p = target;
	for (;;) {
		const char *slash = strchr(p, '/');
		size_t n = slash ? (size_t)(slash - p) : strlen(p);
		if (n == 2 && p[0] == '.' && p[1] == '.') {
			if (named || ++ups > depth)
				return false;
		} else if (!(n == 0 || (n == 1 && p[0] == '.'))) {
			named = true;
		}
		if (!slash)
			return true;
		p = slash + 1;
	}
}
