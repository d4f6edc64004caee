/* Packing and unpacking app sources; see source.h. */
#include "app/source.h"
#include "util/compiler.h"
#include "util/extract.h"
#include "util/fs.h"
#include "util/io.h"

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
	enum miren_err rc;
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
					     io_strerror(errno));
			goto out;
		}
		target[n] = '\0';
		archive_entry_set_filetype(e, AE_IFLNK);
		archive_entry_set_symlink(e, target);
	} else {
		fd = open(full, O_RDONLY | O_CLOEXEC);
		if (fd < 0) {
			rc = miren_error_set(c->err, MIREN_EIO, "cannot read '%s': %s", full,
					     io_strerror(errno));
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
					     io_strerror(errno));
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
				       io_strerror(errno));
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
					     io_strerror(errno));
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

enum miren_err source_pack(const char *dir, struct strbuf *out, struct miren_error *err)
{
	out->cap = SOURCE_MAX_BYTES;
	struct pack_ctx c = { archive_write_new(), out, err, 0 };
	archive_write_set_format_pax_restricted(c.a);
	archive_write_set_bytes_in_last_block(c.a, 1);
	enum miren_err rc = 0;
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

enum miren_err source_unpack(const char *tar_path, const char *dest, struct miren_error *err)
{
	const struct extract_limits lim = { .max_bytes = SOURCE_MAX_BYTES,
					    .max_entries = SOURCE_MAX_ENTRIES,
					    .what = "source archive" };
	return extract_tar(tar_path, dest, &lim, err);
}
