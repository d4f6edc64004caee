/* The hardened tar extractor; see extract.h. */
#include "util/extract.h"
#include "util/fs.h"
#include "util/io.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

enum miren_err extract_tar(const char *tar_path, const char *dest, const struct extract_limits *lim,
			   struct miren_error *err)
{
	struct archive *a = archive_read_new();
	struct archive *w = archive_write_disk_new();
	archive_read_support_format_tar(a);
	archive_read_support_filter_all(a);
	/* Entry paths are checked below (relative, no "..") and joined to
	 * dest, which is made free of symlinks so libarchive's symlink check
	 * sees only the tree.  (ARCHIVE_EXTRACT_SECURE_NOABSOLUTEPATHS cannot
	 * be used: the joined paths are absolute by design.) */
	archive_write_disk_set_options(w, ARCHIVE_EXTRACT_PERM | ARCHIVE_EXTRACT_SECURE_NODOTDOT |
						  ARCHIVE_EXTRACT_SECURE_SYMLINKS);
	enum miren_err rc = 0;
	unsigned long long total = 0;
	unsigned long entries = 0;
	char *path = NULL;
	char *root = realpath(dest, NULL);
	if (!root) {
		rc = miren_error_set(err, MIREN_EIO, "cannot open directory '%s': %s", dest,
				     io_strerror(errno));
		goto out;
	}
	if (archive_read_open_filename(a, tar_path, 65536) != ARCHIVE_OK) {
		rc = miren_error_set(err, MIREN_EINVAL, "the %s is not a tar archive: %s",
				     lim->what, archive_error_string(a));
		goto out;
	}
	struct archive_entry *e;
	int r;
	while ((r = archive_read_next_header(a, &e)) == ARCHIVE_OK) {
		free(path);
		path = archive_entry_pathname(e) ? xstrdup(archive_entry_pathname(e)) : NULL;
		mode_t type = archive_entry_filetype(e);
		if (!path || !*path || path[0] == '/' || strstr(path, "..")) {
			/* ".." anywhere is refused, even inside a name: simpler
			 * than proving a component-wise check right. */
			rc = miren_error_set(err, MIREN_EINVAL, "%s has an unsafe path '%s'",
					     lim->what, path ? path : "");
			goto out;
		}
		if (type != AE_IFREG && type != AE_IFDIR && type != AE_IFLNK) {
			rc = miren_error_set(err, MIREN_EINVAL, "%s has an unsupported entry '%s'",
					     lim->what, path);
			goto out;
		}
		if (archive_entry_hardlink(e)) {
			rc = miren_error_set(err, MIREN_EINVAL, "%s has a hard link '%s'",
					     lim->what, path);
			goto out;
		}
		total += archive_entry_size(e) > 0 ? (unsigned long long)archive_entry_size(e) : 0;
		if (total > lim->max_bytes || ++entries > lim->max_entries) {
			rc = miren_error_set(err, MIREN_ETOOBIG,
					     "%s is larger than %llu MiB or %lu entries", lim->what,
					     lim->max_bytes >> 20, lim->max_entries);
			goto out;
		}
		char *full = fs_join(root, path);
		archive_entry_set_pathname(e, full);
		free(full);
		archive_entry_set_perm(e, archive_entry_perm(e) & 0777);
		if (archive_write_header(w, e) != ARCHIVE_OK) {
			rc = miren_error_set(err, MIREN_EIO, "cannot write '%s' of the %s: %s",
					     path, lim->what, archive_error_string(w));
			goto out;
		}
		const void *buf;
		size_t len;
		la_int64_t off;
		while ((r = archive_read_data_block(a, &buf, &len, &off)) == ARCHIVE_OK) {
			if (archive_write_data_block(w, buf, len, off) != ARCHIVE_OK) {
				rc = miren_error_set(err, MIREN_EIO,
						     "cannot write '%s' of the %s: %s", path,
						     lim->what, archive_error_string(w));
				goto out;
			}
		}
		if (r != ARCHIVE_EOF) {
			rc = miren_error_set(err, MIREN_EINVAL, "%s is damaged: %s", lim->what,
					     archive_error_string(a));
			goto out;
		}
		if (archive_write_finish_entry(w) != ARCHIVE_OK) {
			rc = miren_error_set(err, MIREN_EIO, "cannot write '%s' of the %s: %s",
					     path, lim->what, archive_error_string(w));
			goto out;
		}
	}
	if (r != ARCHIVE_EOF)
		rc = miren_error_set(err, MIREN_EINVAL, "%s is damaged: %s", lim->what,
				     archive_error_string(a));
out:
	free(path);
	free(root);
	archive_read_free(a);
	archive_write_free(w);
	return rc;
}
