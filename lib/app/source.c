/* Packing and unpacking app sources; see source.h. */
#include "app/source.h"
#include "util/compiler.h"
#include "util/fs.h"

#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct pack_ctx {
	struct archive *a;
	struct strbuf *out;
	struct miren_error *err;
	int rc;
};

static la_ssize_t pack_write(struct archive *a MIREN_UNUSED, void *user, const void *buf,
			     size_t len)
{
	struct pack_ctx *c = user;
	if (strbuf_add(c->out, buf, len)) {
		c->rc = miren_error_set(c->err, MIREN_ETOOBIG,
					"the source tree is larger than %u MiB",
					SOURCE_MAX_BYTES >> 20);
		return -1;
	}
	return (la_ssize_t)len;
}

static int pack_file(struct pack_ctx *c, const char *full, const char *rel, const struct stat *st)
{
	struct archive_entry *e = archive_entry_new();
	archive_entry_set_pathname(e, rel);
	archive_entry_set_perm(e, st->st_mode & 0777);
	archive_entry_set_mtime(e, 0, 0);
	int rc = 0;
	int fd = -1;
	if (S_ISDIR(st->st_mode)) {
		archive_entry_set_filetype(e, AE_IFDIR);
	} else if (S_ISLNK(st->st_mode)) {
		char target[4096];
		ssize_t n = readlink(full, target, sizeof(target) - 1);
		if (n < 0) {
			rc = miren_error_set(c->err, MIREN_EIO, "cannot read link '%s': %s", full,
					     strerror(errno));
			goto out;
		}
		target[n] = '\0';
		archive_entry_set_filetype(e, AE_IFLNK);
		archive_entry_set_symlink(e, target);
	} else {
		fd = open(full, O_RDONLY | O_CLOEXEC);
		if (fd < 0) {
			rc = miren_error_set(c->err, MIREN_EIO, "cannot read '%s': %s", full,
					     strerror(errno));
			goto out;
		}
		archive_entry_set_filetype(e, AE_IFREG);
		archive_entry_set_size(e, st->st_size);
	}
	if (archive_write_header(c->a, e) != ARCHIVE_OK) {
		rc = c->rc ? c->rc
			   : miren_error_set(c->err, MIREN_EIO, "packing '%s': %s", rel,
					     archive_error_string(c->a));
		goto out;
	}
	if (fd >= 0) {
		char buf[65536];
		ssize_t n;
		while ((n = read(fd, buf, sizeof(buf))) > 0) {
			if (archive_write_data(c->a, buf, (size_t)n) < 0) {
				rc = c->rc ? c->rc
					   : miren_error_set(c->err, MIREN_EIO, "packing '%s': %s",
							     rel, archive_error_string(c->a));
				goto out;
			}
		}
		if (n < 0)
			rc = miren_error_set(c->err, MIREN_EIO, "cannot read '%s': %s", full,
					     strerror(errno));
	}
out:
	if (fd >= 0)
		close(fd);
	archive_entry_free(e);
	return rc;
}

static int pack_dir(struct pack_ctx *c, const char *full, const char *rel)
{
	struct dirent **names;
	int n = scandir(full, &names, NULL, alphasort);
	if (n < 0)
		return miren_error_set(c->err, MIREN_EIO, "cannot read directory '%s': %s", full,
				       strerror(errno));
	int rc = 0;
	for (int i = 0; i < n; i++) {
		const char *name = names[i]->d_name;
		if (rc || !strcmp(name, ".") || !strcmp(name, "..") ||
		    (!*rel && !strcmp(name, ".git")))
			continue;
		char *f = fs_join(full, name);
		char *r = *rel ? xasprintf("%s/%s", rel, name) : xstrdup(name);
		struct stat st;
		if (lstat(f, &st) != 0)
			rc = miren_error_set(c->err, MIREN_EIO, "cannot stat '%s': %s", f,
					     strerror(errno));
		else if (S_ISDIR(st.st_mode) || S_ISREG(st.st_mode) || S_ISLNK(st.st_mode))
			rc = pack_file(c, f, r, &st);
		if (!rc && S_ISDIR(st.st_mode))
			rc = pack_dir(c, f, r);
		free(f);
		free(r);
	}
	for (int i = 0; i < n; i++)
		free(names[i]);
	free(names);
	return rc;
}

int source_pack(const char *dir, struct strbuf *out, struct miren_error *err)
{
	out->cap = SOURCE_MAX_BYTES;
	struct pack_ctx c = { archive_write_new(), out, err, 0 };
	archive_write_set_format_pax_restricted(c.a);
	archive_write_set_bytes_in_last_block(c.a, 1);
	int rc = 0;
	if (archive_write_open2(c.a, &c, NULL, pack_write, NULL, NULL) != ARCHIVE_OK) {
		rc = miren_error_set(err, MIREN_EIO, "cannot start archive: %s",
				     archive_error_string(c.a));
		goto out;
	}
	rc = pack_dir(&c, dir, "");
	if (!rc && archive_write_close(c.a) != ARCHIVE_OK)
		rc = c.rc ? c.rc
			  : miren_error_set(err, MIREN_EIO, "cannot finish archive: %s",
					    archive_error_string(c.a));
out:
	archive_write_free(c.a);
	return rc;
}

int source_unpack(const char *tar_path, const char *dest, struct miren_error *err)
{
	struct archive *a = archive_read_new();
	struct archive *w = archive_write_disk_new();
	archive_read_support_format_tar(a);
	/* Entry paths are checked below and joined to dest, which is made
	 * free of symlinks so libarchive's symlink check sees only the tree. */
	archive_write_disk_set_options(w, ARCHIVE_EXTRACT_PERM | ARCHIVE_EXTRACT_SECURE_NODOTDOT |
						  ARCHIVE_EXTRACT_SECURE_SYMLINKS);
	int rc = 0;
	long long total = 0;
	char *path = NULL;
	char *root = realpath(dest, NULL);
	if (!root) {
		rc = miren_error_set(err, MIREN_EIO, "cannot open release directory '%s': %s", dest,
				     strerror(errno));
		goto out;
	}
	if (archive_read_open_filename(a, tar_path, 65536) != ARCHIVE_OK) {
		rc = miren_error_set(err, MIREN_EINVAL, "the uploaded source is not a tar archive: %s",
				     archive_error_string(a));
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
			rc = miren_error_set(err, MIREN_EINVAL, "source archive has an unsafe path '%s'",
					     path ? path : "");
			goto out;
		}
		if (type != AE_IFREG && type != AE_IFDIR && type != AE_IFLNK) {
			rc = miren_error_set(err, MIREN_EINVAL,
					     "source archive has an unsupported entry '%s'", path);
			goto out;
		}
		if (archive_entry_hardlink(e)) {
			rc = miren_error_set(err, MIREN_EINVAL,
					     "source archive has a hard link '%s'", path);
			goto out;
		}
		total += archive_entry_size(e);
		if (total > (long long)SOURCE_MAX_BYTES) {
			rc = miren_error_set(err, MIREN_ETOOBIG, "source is larger than %u MiB",
					     SOURCE_MAX_BYTES >> 20);
			goto out;
		}
		char *full = fs_join(root, path);
		archive_entry_set_pathname(e, full);
		free(full);
		archive_entry_set_perm(e, archive_entry_perm(e) & 0777);
		if (archive_write_header(w, e) != ARCHIVE_OK) {
			rc = miren_error_set(err, MIREN_EIO, "cannot write '%s' of the release: %s",
					     path, archive_error_string(w));
			goto out;
		}
		const void *buf;
		size_t len;
		la_int64_t off;
		while ((r = archive_read_data_block(a, &buf, &len, &off)) == ARCHIVE_OK) {
			if (archive_write_data_block(w, buf, len, off) != ARCHIVE_OK) {
				rc = miren_error_set(err, MIREN_EIO,
						     "cannot write '%s' of the release: %s", path,
						     archive_error_string(w));
				goto out;
			}
		}
		if (r != ARCHIVE_EOF) {
			rc = miren_error_set(err, MIREN_EINVAL, "source archive is damaged: %s",
					     archive_error_string(a));
			goto out;
		}
		if (archive_write_finish_entry(w) != ARCHIVE_OK) {
			rc = miren_error_set(err, MIREN_EIO, "cannot write '%s' of the release: %s",
					     path, archive_error_string(w));
			goto out;
		}
	}
	if (r != ARCHIVE_EOF)
		rc = miren_error_set(err, MIREN_EINVAL, "source archive is damaged: %s",
				     archive_error_string(a));
out:
	free(path);
	free(root);
	archive_read_free(a);
	archive_write_free(w);
	return rc;
}
