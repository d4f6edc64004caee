/*
 * Scratch servers: areas, reading a snapshot into one, starting and
 * stopping an engine's scratch server there, verification and a tenant's
 * dump out of a backup; see scratch.h.
 */
#include "addon/scratch.h"
#include "addon/server.h"
#include "disk/volume.h"
#include "util/fault.h"
#include "util/fs.h"
#include "util/io.h"
#include "util/log.h"
#include "util/paths.h"
#include "util/secret.h"
#include "util/sha256.h"
#include "util/strbuf.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* The area's size: sparse, so only what is written costs (ext4 mode). */
#define SCRATCH_BYTES (10ULL << 30)
#define SCRATCH_STOP_MS 30000

struct scratch {
	const struct addon_def *def;
	char *vol;      /* ".scratch-<hex>" */
	char *root;     /* disks/.scratch-<hex> */
	json_t *header; /* NULL: a fresh server */
	bool dump;      /* a dump snapshot loaded into a fresh server */
	bool started;
	struct addon_scratch as;
	struct snap_stats st;
};

const json_t *scratch_header(const struct scratch *s)
{
	return s->header;
}

const struct addon_def *scratch_def(const struct scratch *s)
{
	return s->def;
}

struct addon_scratch *scratch_server(struct scratch *s)
{
	return &s->as;
}

/* The 16 hex digits naming the scratch server of dir (any directory: a
 * scratch area's in/ or fresh/, or a caller's own volume). */
static void dir_tag(const char *dir, char out[17])
{
	char hex[65];
	sha256_hex(dir, strlen(dir), hex);
	memcpy(out, hex, 16);
	out[16] = '\0';
}

/* "scratch/<tag>": its supervisor id.  Caller frees. */
static char *sv_id_of(const char *dir)
{
	char tag[17];
	dir_tag(dir, tag);
	return xasprintf("scratch/%s", tag);
}

/* logs/addons/scratch-<tag>.log.  Caller frees. */
static char *log_of(const struct addon_ctx *ctx, const char *dir)
{
	char tag[17];
	dir_tag(dir, tag);
	char *logs = data_paths_addon_logs(ctx->paths);
	char *log = xasprintf("%s/scratch-%s.log", logs, tag);
	free(logs);
	return log;
}

enum miren_err scratch_spawn(struct addon_ctx *ctx, const char *dir, char *const *argv,
			     int stop_signal, struct miren_error *err)
{
	if (!ctx->sv)
		return miren_error_set(err, MIREN_EINTERNAL, "no supervisor for scratch servers");
	char *id = sv_id_of(dir);
	char *logs = data_paths_addon_logs(ctx->paths);
	fs_mkdir_p(logs, 0750);
	free(logs);
	char *log = log_of(ctx, dir);
	unlink(log);
	char *env[] = { "LANG=C.UTF-8", "PATH=/usr/bin:/bin", NULL };
	struct sv_spec spec = {
		.id = id,
		.argv = argv,
		.cwd = dir,
		.env = env,
		.log_path = log,
		.uid = ctx->uid,
		.gid = ctx->gid,
		.stop_signal = stop_signal ? stop_signal : SIGTERM,
		.stop_timeout_ms = SCRATCH_STOP_MS,
		/* dies with the daemon; the next one kills what is left */
		.keep_on_daemon_exit = false,
	};
	struct miren_error why;
	enum miren_err rc = sv_start(ctx->sv, &spec, &why);
	if (rc) {
		miren_error_set(err, rc, "cannot start a scratch server");
		miren_error_detail(err, "%s%s%s", why.message, why.detail[0] ? ": " : "",
				   why.detail);
	}
	free(log);
	free(id);
	return rc;
}

void scratch_kill(struct addon_ctx *ctx, const char *dir)
{
	char *id = sv_id_of(dir);
	if (ctx->sv)
		sv_stop(ctx->sv, id);
	free(id);
	char *log = log_of(ctx, dir);
	unlink(log);
	free(log);
}

bool scratch_exited(struct addon_ctx *ctx, const char *dir)
{
	char *id = sv_id_of(dir);
	struct sv_status st;
	bool gone = !ctx->sv || sv_status(ctx->sv, id, &st) != 0 || st.last_exit != -1 ||
		    st.restarts > 0;
	free(id);
	return gone;
}

char *scratch_log_tail(const struct addon_ctx *ctx, const char *dir, size_t max)
{
	char *log = log_of(ctx, dir);
	struct strbuf sb;
	strbuf_init(&sb, 4u << 20);
	char *out;
	if (strbuf_read_file(&sb, log) != 0 || !sb.len) {
		out = xstrdup("");
	} else {
		size_t from = sb.len > max ? sb.len - max : 0;
		out = xstrdup(sb.buf + from);
	}
	strbuf_release(&sb);
	free(log);
	return out;
}

/* A server process of some engine on dir, stopped. */
static void stop_any(struct addon_ctx *ctx, const char *dir)
{
	scratch_kill(ctx, dir);
	for (const struct addon_def *const *d = addon_all(); *d; d++)
		if ((*d)->disk_server && (*d)->disk_server(ctx, dir, true))
			log_warn("stopped a scratch server left running on %s", dir);
}

/* Removes area vol (its servers stopped first). */
static void area_remove(struct addon_ctx *ctx, const char *vol)
{
	char *root = volume_dir(ctx->volumes, vol);
	static const char *const subs[] = { "in", "fresh", NULL };
	for (const char *const *s = subs; *s; s++) {
		char *dir = fs_join(root, *s);
		stop_any(ctx, dir);
		free(dir);
	}
	struct miren_error why;
	if (volume_remove(ctx->volumes, vol, &why) != 0)
		log_error("cannot remove the scratch area %s: %s", root, why.message);
	free(root);
}

/* Makes dir (0700, the service user's). */
static enum miren_err make_dir(struct addon_ctx *ctx, const char *dir, struct miren_error *err)
{
	if (mkdir(dir, 0700) != 0 && errno != EEXIST)
		return miren_error_set(err, MIREN_EIO, "cannot create %s: %s", dir,
				       io_strerror(errno));
	if (ctx->uid != (uid_t)-1 && chown(dir, ctx->uid, ctx->gid) != 0)
		return miren_error_set(err, MIREN_EIO, "cannot hand %s to the service user: %s",
				       dir, io_strerror(errno));
	return 0;
}

void scratch_close(struct addon_ctx *ctx, struct scratch *s)
{
	if (!s)
		return;
	if (s->started && s->def && s->def->scratch_stop)
		s->def->scratch_stop(ctx, &s->as);
	area_remove(ctx, s->vol);
	free(s->as.dir);
	json_decref(s->header);
	free(s->vol);
	free(s->root);
	free(s);
}

/* Loads root/in/dump into the fresh server. */
static enum miren_err load_dump(struct addon_ctx *ctx, struct scratch *s, struct miren_error *err)
{
	char *in = fs_join(s->root, "in");
	char *path = fs_join(in, SCRATCH_DUMP_MEMBER);
	enum miren_err rc = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0) {
		rc = miren_error_set(err, MIREN_EINVAL,
				     "the backup says it holds a dump, and it has no member "
				     "'disk/%s'",
				     SCRATCH_DUMP_MEMBER);
	} else {
		rc = s->def->scratch_load(ctx, &s->as, fd, err);
		close(fd);
	}
	free(path);
	free(in);
	return rc;
}

enum miren_err scratch_open(struct addon_ctx *ctx, const struct addon_def *def,
			    const struct scratch_source *source, const json_t *opts,
			    struct scratch **out, struct miren_error *err)
{
	*out = NULL;
	struct scratch *s = xcalloc(1, sizeof(*s));
	char *hex = secret_hex(6);
	s->vol = xasprintf(SCRATCH_PREFIX "%s", hex);
	free(hex);
	s->root = volume_dir(ctx->volumes, s->vol);
	s->def = def;
	char *in = fs_join(s->root, "in");
	char *fresh = fs_join(s->root, "fresh");
	enum miren_err rc = volume_ensure(ctx->volumes, s->vol, SCRATCH_BYTES, NULL, err);
	if (!rc)
		rc = make_dir(ctx, in, err);
	if (rc)
		goto out;
	if (source) {
		rc = (source->raw ? snap_read_raw : snap_read)(source->fn, source->user, in,
							       ctx->uid, ctx->gid, 0, &s->header,
							       &s->st, err);
		if (rc == MIREN_EIO && volumes_host_full(ctx->volumes)) {
			char cause[sizeof err->message];
			snprintf(cause, sizeof cause, "%s", err->message);
			miren_error_set(err, MIREN_EIO,
					"cannot read the backup: the disk holding the data "
					"directory is full");
			miren_error_detail(err, "%s", cause);
		}
		if (rc)
			goto out;
		fault_point("scratch:read");
		const char *engine = addon_jstr(s->header, "addon");
		if (!s->def)
			s->def = addon_find(engine);
		if (!s->def || (engine && strcmp(engine, s->def->name))) {
			rc = miren_error_set(err, MIREN_EINVAL, "the backup is of addon '%s'%s%s",
					     engine ? engine : "(none)",
					     def ? ", not of " : ", which this host does not have",
					     def ? def->name : "");
			goto out;
		}
		const char *kind = addon_jstr(s->header, "kind");
		s->dump = kind && !strcmp(kind, SCRATCH_KIND_DUMP);
	} else if (!s->def) {
		rc = miren_error_set(err, MIREN_EINTERNAL, "a fresh scratch server needs an addon");
		goto out;
	}
	if (!s->def->scratch_start || !s->def->scratch_check) {
		rc = addon_unsupported(s->def, "a scratch server", err);
		goto out;
	}
	const json_t *target = opts ? json_object_get(opts, "recovery_target_time") : NULL;
	if (s->header && !s->dump && !target && s->def->restore_prepare)
		rc = s->def->restore_prepare(ctx, NULL, s->header, in, err);
	if (rc)
		goto out;
	if (s->header && !s->dump) {
		s->as.dir = xstrdup(in);
		rc = s->def->scratch_start(ctx, s->header, opts, in, &s->as, err);
	} else {
		if (s->dump && !s->def->scratch_load) {
			rc = addon_unsupported(s->def, "loading a dump into a scratch server", err);
			goto out;
		}
		rc = make_dir(ctx, fresh, err);
		if (!rc) {
			s->as.dir = xstrdup(fresh);
			rc = s->def->scratch_start(ctx, NULL, opts, fresh, &s->as, err);
		}
	}
	if (rc)
		goto out;
	s->started = true;
	fault_point("scratch:started");
	if (s->dump)
		rc = load_dump(ctx, s, err);
out:
	free(in);
	free(fresh);
	if (rc) {
		scratch_close(ctx, s);
		return rc;
	}
	*out = s;
	return 0;
}

/* scratch_dump of tenant (see scratch_tenant_dump) into fd. */
static enum miren_err dump_tenant(struct addon_ctx *ctx, struct scratch *s, const json_t *tenant,
				  int fd, struct miren_error *err)
{
	if (!s->def->scratch_dump)
		return addon_unsupported(s->def, "reading a tenant out of a backup", err);
	if (!tenant && !s->dump)
		tenant = json_object_get(s->header, "tenant");
	if (!tenant && !s->dump)
		return miren_error_set(err, MIREN_EINVAL,
				       "the backup does not say which tenant to read out of it");
	return s->def->scratch_dump(ctx, &s->as, s->dump ? NULL : tenant, fd, err);
}

enum miren_err scratch_verify(struct addon_ctx *ctx, const struct addon_def *def,
			      const struct scratch_source *source, const json_t *tenant,
			      int dump_fd, json_t **result, struct miren_error *err)
{
	*result = NULL;
	int64_t t0 = io_mono_ms();
	struct scratch *s;
	enum miren_err rc = scratch_open(ctx, def, source, NULL, &s, err);
	if (rc)
		return rc;
	/* The tenant first: a checker may change the copy (install its
	 * extension), which must not end up in the tenant's dump.  The
	 * checker runs either way and says best what is damaged; a tenant
	 * that does not read out is damaged data too. */
	struct miren_error derr;
	enum miren_err drc = dump_fd >= 0 ? dump_tenant(ctx, s, tenant, dump_fd, &derr) : 0;
	rc = s->def->scratch_check(ctx, &s->as, err);
	if (!rc)
		fault_point("scratch:checked");
	if (!rc && drc) {
		*err = derr;
		rc = drc;
		if (rc == MIREN_EIO) {
			char said[sizeof err->message];
			snprintf(said, sizeof said, "%s", err->message);
			miren_error_set(err, MIREN_EINVAL, "the data is damaged: %s", said);
			rc = MIREN_EINVAL;
		}
	}
	if (!rc)
		*result = json_pack("{s:b, s:s, s:s, s:s, s:I, s:I, s:f}", "ok", 1, "kind",
				    s->dump ? "dump" : "disk", "addon", s->def->name, "checker",
				    s->as.checker ? s->as.checker : "", "files",
				    (json_int_t)s->st.files, "bytes", (json_int_t)s->st.bytes_in,
				    "seconds", (double)(io_mono_ms() - t0) / 1000.0);
	scratch_close(ctx, s);
	return rc;
}

enum miren_err scratch_tenant_dump(struct addon_ctx *ctx, const struct addon_def *def,
				   const struct scratch_source *source, const json_t *tenant,
				   const json_t *opts, int fd, struct miren_error *err)
{
	struct scratch *s;
	enum miren_err rc = scratch_open(ctx, def, source, opts, &s, err);
	if (rc)
		return rc;
	rc = dump_tenant(ctx, s, tenant, fd, err);
	scratch_close(ctx, s);
	return rc;
}

void scratch_recover(struct addon_ctx *ctx)
{
	char *root = data_paths_disks(ctx->paths);
	DIR *d = opendir(root);
	struct dirent *de;
	char **names = NULL;
	size_t n = 0;
	while (d && (de = readdir(d)))
		if (!strncmp(de->d_name, SCRATCH_PREFIX, strlen(SCRATCH_PREFIX))) {
			names = xrealloc(names, (n + 1) * sizeof(*names));
			names[n++] = xstrdup(de->d_name);
		}
	if (d)
		closedir(d);
	for (size_t i = 0; i < n; i++) {
		log_warn("removing the scratch area %s left by an interrupted verification",
			 names[i]);
		area_remove(ctx, names[i]);
		free(names[i]);
	}
	free(names);
	free(root);
}
