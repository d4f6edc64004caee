/* Apps, releases and services; see apps.h. */
#include "daemon/apps.h"
#include "api/shape.h"
#include "app/config.h"
#include "app/env.h"
#include "app/source.h"
#include "daemon/daemon_int.h"
#include "store/store.h"
#include "supervise/supervise.h"
#include "util/fault.h"
#include "util/fs.h"
#include "util/io.h"
#include "util/log.h"
#include "util/names.h"
#include "util/num.h"
#include "util/strbuf.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static char *service_id(const char *app, const char *svc)
{
	return xasprintf("app/%s/%s", app, svc);
}

enum miren_err apps_load_current(struct daemon *d, const char *app, struct app_rec *rec,
				 struct app_config **cfg, struct miren_error *err)
{
	*cfg = NULL;
	enum miren_err rc = store_app_get(d->store, app, rec, err);
	if (rc || rec->current_release == 0)
		return rc;
	struct release_rec rel;
	rc = store_release_get(d->store, app, rec->current_release, &rel, err);
	if (rc)
		return rc;
	json_t *j = json_loads(rel.config_json, 0, NULL);
	*cfg = j ? app_config_from_json(j) : NULL;
	json_decref(j);
	release_rec_release(&rel);
	if (!*cfg)
		return miren_error_set(err, MIREN_EINTERNAL,
				       "release %d of app '%s' has an unreadable config",
				       rec->current_release, app);
	return 0;
}

/*
 * (Re)starts every service of cfg's release with fresh env.  Held start:
 * while an addon of the app is not active, nothing is started or
 * restarted; the reconciler's callback starts the app once they are.
 * Caller holds the app's lock.
 */
static enum miren_err start_services(struct daemon *d, const struct app_config *cfg, int release,
				     struct miren_error *err)
{
	char *waiting;
	bool held = cfg->n_services && !addons_ready(d, cfg->name, &waiting);
	daemon_set_held(d, cfg->name, held);
	if (held) {
		log_info("app %s: waiting for addon %s before starting services", cfg->name,
			 waiting ? waiting : "?");
		free(waiting);
		return 0;
	}
	struct env_rec *stored;
	size_t n_stored;
	enum miren_err rc = store_env_list(d->store, cfg->name, &stored, &n_stored, err);
	if (rc)
		return rc;
	char *rdir = data_paths_release(d->paths, cfg->name, release);
	char *logdir = data_paths_app_logs(d->paths, cfg->name);
	fs_mkdir_p(logdir, 0750);
	for (size_t i = 0; i < cfg->n_services && !rc; i++) {
		const struct app_service *s = &cfg->services[i];
		char *id = service_id(cfg->name, s->name);
		int port = daemon_service_port(d, id, s->port);
		char **env = env_for_service(cfg, s->name, stored, n_stored, port, release, rdir);
		char *log_path = data_paths_service_log(d->paths, cfg->name, s->name);
		struct sv_spec spec = {
			.id = id,
			.command = s->command,
			.cwd = rdir,
			.env = env,
			.log_path = log_path,
			.uid = d->run_uid,
			.gid = d->run_gid,
		};
		struct miren_error why;
		if (sv_start(d->sv, &spec, &why) != 0) {
			rc = miren_error_set(err, MIREN_EIO,
					     "cannot start service '%s' of app '%s'", s->name,
					     cfg->name);
			miren_error_detail(err, "%s%s%s", why.message, why.detail[0] ? ": " : "",
					   why.detail);
		} else {
			log_info("app %s: started service %s (release %d, port %d)", cfg->name,
				 s->name, release, port);
		}
		free(log_path);
		env_array_free(env);
		free(id);
	}
	free(logdir);
	free(rdir);
	env_recs_free(stored, n_stored);
	return rc;
}

/* Stops the services of old that new no longer has (new may be NULL).
 * Caller holds the app's lock. */
static void stop_removed_services(struct daemon *d, const struct app_config *old,
				  const struct app_config *new)
{
	if (!old)
		return;
	for (size_t i = 0; i < old->n_services; i++) {
		if (new &&app_config_service(new, old->services[i].name))
			continue;
		char *id = service_id(old->name, old->services[i].name);
		if (sv_stop(d->sv, id) == 0)
			log_info("app %s: stopped service %s", old->name, old->services[i].name);
		free(id);
	}
}

/* Removes release directories of app that the store does not know. */
static void prune_release_dirs(struct daemon *d, const char *app)
{
	int *nums;
	size_t n;
	if (store_release_numbers(d->store, app, &nums, &n, NULL))
		return;
	char *dir = data_paths_releases(d->paths, app);
	DIR *dh = opendir(dir);
	struct dirent *de;
	while (dh && (de = readdir(dh))) {
		if (de->d_name[0] == '.')
			continue;
		long long num = 0; /* not a number: 0, no release's */
		num_parse(de->d_name, 0, INT_MAX, &num);
		int known = 0;
		for (size_t i = 0; i < n; i++)
			known |= nums[i] == num;
		if (!known) {
			char *path = fs_join(dir, de->d_name);
			fs_remove_tree(path);
			free(path);
		}
	}
	if (dh)
		closedir(dh);
	free(dir);
	free(nums);
}

void apps_prune_dirs(struct daemon *d)
{
	char *apps = data_paths_apps(d->paths);
	DIR *dh = opendir(apps);
	struct dirent *de;
	while (dh && (de = readdir(dh))) {
		if (de->d_name[0] == '.')
			continue;
		struct app_rec rec;
		if (store_app_get(d->store, de->d_name, &rec, NULL) == MIREN_ENOTFOUND) {
			char *path = data_paths_app(d->paths, de->d_name);
			log_info("removing leftover directory of deleted app %s", de->d_name);
			fs_remove_tree(path);
			free(path);
		}
		app_rec_release(&rec);
	}
	if (dh)
		closedir(dh);
	free(apps);
}

void apps_start_all(struct daemon *d)
{
	struct app_rec *apps;
	size_t n_apps;
	struct miren_error err;
	if (store_app_list(d->store, &apps, &n_apps, &err) != 0) {
		log_error("%s", err.message);
		return;
	}
	for (size_t i = 0; i < n_apps; i++) {
		app_lock(d, apps[i].name);
		prune_release_dirs(d, apps[i].name);
		struct app_rec rec;
		struct app_config *cfg;
		if (apps_load_current(d, apps[i].name, &rec, &cfg, &err) == 0 && cfg &&
		    start_services(d, cfg, rec.current_release, &err) != 0)
			log_error("app %s: %s", apps[i].name, err.message);
		app_rec_release(&rec);
		app_config_free(cfg);
		app_unlock(d, apps[i].name);
	}
	app_recs_free(apps, n_apps);
}

/* The services of cfg as the API shows them. */
static json_t *services_json(struct daemon *d, const struct app_config *cfg)
{
	json_t *arr = json_array();
	bool ready = !cfg || addons_ready(d, cfg->name, NULL);
	for (size_t i = 0; cfg && i < cfg->n_services; i++) {
		const struct app_service *s = &cfg->services[i];
		char *id = service_id(cfg->name, s->name);
		struct sv_status st;
		bool known = sv_status(d->sv, id, &st) == 0;
		json_array_append_new(arr, shape_service(s->name, s->command,
							 daemon_service_port_known(d, id),
							 known ? &st : NULL, ready));
		free(id);
	}
	return arr;
}

/* Writes the uploaded source into a fresh directory under tmp. */
static enum miren_err unpack_to_staging(struct daemon *d, const char *tar_path, char **staging,
					struct miren_error *err)
{
	*staging = data_paths_tmp_unique(d->paths, "release");
	if (mkdir(*staging, 0755) != 0)
		return miren_error_set(err, MIREN_EIO, "cannot create release directory '%s': %s",
				       *staging, io_strerror(errno));
	return source_unpack(tar_path, *staging, err);
}

static enum miren_err read_config(const char *staging, const char *app, struct app_config **cfg,
				  struct miren_error *err)
{
	char *path = fs_join(staging, ".miren/app.toml");
	struct strbuf sb;
	strbuf_init(&sb, 1 << 20);
	enum miren_err rc = strbuf_read_file(&sb, path);
	if (rc == MIREN_ENOTFOUND) {
		miren_error_set(err, MIREN_EINVAL, "the source has no .miren/app.toml");
		miren_error_hint(err,
				 "create .miren/app.toml with at least a [services.web] command");
	} else if (rc) {
		miren_error_set(err, rc, "cannot read .miren/app.toml: %s", miren_strerror(rc));
	} else {
		rc = app_config_parse(sb.buf, sb.len, ".miren/app.toml", app, cfg, err);
		if (!rc && strcmp((*cfg)->name, app)) {
			rc = miren_error_set(err, MIREN_EINVAL,
					     "app.toml names the app '%s' but the deploy is for "
					     "'%s'",
					     (*cfg)->name, app);
			app_config_free(*cfg);
			*cfg = NULL;
		}
	}
	strbuf_release(&sb);
	free(path);
	return rc;
}

/*
 * Every [addons.<name>] of cfg names a known addon, variant and version,
 * and none asks for another variant than the one already attached.
 */
static enum miren_err check_addons(struct daemon *d, const struct app_config *cfg,
				   struct miren_error *err)
{
	for (size_t i = 0; i < cfg->n_addons; i++) {
		const struct app_addon *a = &cfg->addons[i];
		const struct addon_def *def;
		const char *variant;
		char version[16];
		enum miren_err rc = addon_resolve(a->name, a->variant, a->version, &def, &variant,
						  version, err);
		if (rc)
			return rc;
		struct addon_rec cur;
		if (store_addon_get(d->store, cfg->name, a->name, &cur, NULL) == 0) {
			enum addon_status st = addon_status_parse(cur.status);
			bool same = !strcmp(cur.variant, variant) || st == ADDON_DEPROVISIONING ||
				    st == ADDON_ERROR;
			if (!same) {
				miren_error_set(err, MIREN_ECONFLICT,
						"addon %s of app '%s' is '%s'; app.toml asks for "
						"'%s'",
						a->name, cfg->name, cur.variant, variant);
				miren_error_hint(err,
						 "variants cannot be changed in place: back up the "
						 "disk, destroy the addon, deploy, then restore");
			}
			addon_rec_release(&cur);
			if (!same)
				return MIREN_ECONFLICT;
		}
	}
	return 0;
}

/* Makes the app's addons what app.toml declares: attaches the new ones
 * (appending their names to created), removes those app.toml attached
 * before and no longer lists.  Addons attached with `miren addon create`
 * are left alone. */
static enum miren_err sync_addons(struct daemon *d, const struct app_config *cfg, json_t *created,
				  struct miren_error *err)
{
	enum miren_err rc = 0;
	for (size_t i = 0; i < cfg->n_addons && !rc; i++) {
		const struct app_addon *a = &cfg->addons[i];
		struct addon_rec cur;
		if (store_addon_get(d->store, cfg->name, a->name, &cur, NULL) == 0) {
			addon_rec_release(&cur);
			continue;
		}
		struct addon_rec made;
		rc = addons_create_locked(d, cfg->name, a->name, a->variant, a->version,
					  addon_source_name(ADDON_SOURCE_CONFIG), &made, err);
		if (!rc) {
			json_array_append_new(created, json_string(made.addon));
			addon_rec_release(&made);
		}
	}
	struct addon_rec *recs;
	size_t n;
	if (!rc)
		rc = store_addon_list(d->store, cfg->name, &recs, &n, err);
	if (rc)
		return rc;
	for (size_t i = 0; i < n && !rc; i++) {
		bool declared = false;
		for (size_t k = 0; k < cfg->n_addons; k++)
			declared |= !strcmp(cfg->addons[k].name, recs[i].addon);
		if (!declared && addon_source_parse(recs[i].source) == ADDON_SOURCE_CONFIG &&
		    addon_status_parse(recs[i].status) != ADDON_DEPROVISIONING)
			rc = addons_destroy_locked(d, cfg->name, recs[i].addon, NULL, err);
	}
	addon_recs_free(recs, n);
	return rc;
}

/*
 * A deploy retries what failed: every addon app.toml declares that is in
 * error is removed (its removal undoes whatever is left of it) and, once
 * gone, made anew by sync_addons.  Appends the names to retried.
 */
static enum miren_err retry_failed_addons(struct daemon *d, const struct app_config *cfg,
					  json_t *retried, struct miren_error *err)
{
	enum miren_err rc = 0;
	for (size_t i = 0; i < cfg->n_addons && !rc; i++) {
		struct addon_rec cur;
		if (store_addon_get(d->store, cfg->name, cfg->addons[i].name, &cur, NULL) != 0)
			continue;
		if (addon_status_parse(cur.status) == ADDON_ERROR) {
			log_info("app %s: deploy retries addon %s, which failed: %s", cfg->name,
				 cur.addon, cur.message);
			rc = addons_destroy_locked(d, cfg->name, cur.addon, NULL, err);
			if (!rc)
				json_array_append_new(retried, json_string(cur.addon));
		}
		addon_rec_release(&cur);
	}
	return rc;
}

/* The first addon app.toml declares that is being removed (to free), or
 * NULL: a deploy waits for it to be gone, then makes a new one, never
 * adopting the dying one. */
static char *dying_addon(struct daemon *d, const struct app_config *cfg)
{
	char *name = NULL;
	for (size_t i = 0; i < cfg->n_addons && !name; i++) {
		struct addon_rec cur;
		if (store_addon_get(d->store, cfg->name, cfg->addons[i].name, &cur, NULL) != 0)
			continue;
		if (addon_status_parse(cur.status) == ADDON_DEPROVISIONING)
			name = xstrdup(cur.addon);
		addon_rec_release(&cur);
	}
	return name;
}

/* The part of a deploy under the app's lock: from the checks against the
 * app's state to the start of its services.  cfg is the new config. */
static enum miren_err deploy_locked(struct daemon *d, const char *app, char **staging,
				    const char *sha256, struct app_config *cfg, json_t *created,
				    json_t *retried, int *n_out, int *unchanged_out,
				    struct miren_error *err)
{
	struct app_config *old = NULL;
	struct app_rec rec = { 0 };
	struct env_rec *stored = NULL;
	size_t n_stored = 0;
	char *target = NULL, *rel_parent = NULL;
	int n = 0, unchanged = 0, rc;
	int64_t deadline = io_mono_ms() + REMOVAL_WAIT_MS;

	/* Checked again after each wait: the lock is released meanwhile. */
	for (;;) {
		rc = apps_load_current(d, app, &rec, &old, err);
		if (rc == MIREN_ENOTFOUND) {
			miren_error_clear(err);
			rc = 0;
		}
		if (!rc)
			rc = store_env_list(d->store, app, &stored, &n_stored, err);
		if (!rc)
			rc = check_addons(d, cfg, err);
		if (rc)
			goto out;
		const char *missing = env_missing_required(cfg, stored, n_stored);
		if (missing) {
			rc = miren_error_set(err, MIREN_EINVAL,
					     "required variable '%s' has no value", missing);
			miren_error_hint(err,
					 "set it with 'miren env set -a %s%s %s=VALUE', then "
					 "deploy again",
					 app, rec.name ? "" : " --create", missing);
			goto out;
		}
		uint64_t seen = daemon_changes(d);
		rc = retry_failed_addons(d, cfg, retried, err);
		if (rc)
			goto out;
		char *dying = dying_addon(d, cfg);
		if (!dying)
			break;
		log_info("app %s: the deploy waits for addon %s to be removed", app, dying);
		if (daemon_wait_changes(d, app, seen, deadline) && daemon_is_stopping(d)) {
			rc = daemon_stopping_error(err);
			free(dying);
			goto out;
		} else if (io_mono_ms() >= deadline) {
			rc = miren_error_set(err, MIREN_EUNAVAIL,
					     "addon %s of app '%s' is still being removed", dying,
					     app);
			miren_error_hint(err,
					 "deploy again once 'miren addon list -a %s' no longer "
					 "shows it",
					 app);
			free(dying);
			goto out;
		}
		free(dying);
		app_rec_release(&rec);
		app_config_free(old);
		old = NULL;
		env_recs_free(stored, n_stored);
		stored = NULL;
		n_stored = 0;
	}

	if (rec.current_release) {
		struct release_rec cur;
		if (store_release_get(d->store, app, rec.current_release, &cur, NULL) == 0) {
			unchanged = !strcmp(cur.source_sha256, sha256);
			release_rec_release(&cur);
		}
	}
	if (unchanged) {
		n = rec.current_release;
		/* Nothing new: make sure the addons app.toml declares exist (one
		 * may have been destroyed by hand) and every service runs;
		 * restart none. */
		rc = sync_addons(d, cfg, created, err);
		for (size_t i = 0; i < cfg->n_services && !rc; i++) {
			char *id = service_id(app, cfg->services[i].name);
			struct sv_status st;
			int running = sv_status(d->sv, id, &st) == 0;
			free(id);
			if (!running) {
				rc = start_services(d, cfg, n, err);
				break;
			}
		}
		goto out;
	}

	rc = store_release_next(d->store, app, &n, err);
	if (rc)
		goto out;
	rel_parent = data_paths_releases(d->paths, app);
	target = data_paths_release(d->paths, app, n);
	if (fs_mkdir_p(rel_parent, 0711) != 0 || fs_remove_tree(target) != 0 ||
	    (d->run_uid != (uid_t)-1 && fs_chown_tree(*staging, d->run_uid, d->run_gid) != 0) ||
	    rename(*staging, target) != 0 || fs_fsync_dir(rel_parent) != 0) {
		rc = miren_error_set(err, MIREN_EIO, "cannot write release directory '%s': %s",
				     target, io_strerror(errno));
		miren_error_hint(err, "check that the data directory '%s' is writable",
				 data_paths_root(d->paths));
		goto out;
	}
	free(*staging);
	*staging = NULL;
	fault_point("deploy:moved");
	json_t *cj = app_config_to_json(cfg);
	char *config_json = json_dumps(cj, JSON_COMPACT);
	json_decref(cj);
	rc = store_release_add(d->store, app, n, sha256, config_json, err);
	free(config_json);
	if (rc) {
		fs_remove_tree(target);
		goto out;
	}
	log_info("app %s: release %d recorded", app, n);
	rc = sync_addons(d, cfg, created, err);
	if (rc)
		goto out;
	stop_removed_services(d, old, cfg);
	rc = start_services(d, cfg, n, err);
	if (n > d->keep_releases) {
		store_release_prune(d->store, app, n - d->keep_releases + 1, NULL);
		prune_release_dirs(d, app);
	}
out:
	*n_out = n;
	*unchanged_out = unchanged;
	free(target);
	free(rel_parent);
	app_config_free(old);
	app_rec_release(&rec);
	env_recs_free(stored, n_stored);
	return rc;
}

enum miren_err apps_deploy(struct daemon *d, const char *app, const char *tar_path,
			   const char *sha256, json_t **result, struct miren_error *err)
{
	*result = NULL;
	enum miren_err rc = name_check_app(app, err);
	if (rc)
		return rc;
	char *staging = NULL;
	struct app_config *cfg = NULL;
	int n = 0, unchanged = 0;
	json_t *created = json_array(), *retried = json_array();

	/* Unpacking and parsing touch nothing of the app: no lock yet, so a
	 * large upload holds up no one. */
	rc = unpack_to_staging(d, tar_path, &staging, err);
	if (!rc)
		rc = read_config(staging, app, &cfg, err);
	if (!rc) {
		app_lock(d, app);
		rc = deploy_locked(d, app, &staging, sha256, cfg, created, retried, &n, &unchanged,
				   err);
		if (!rc) {
			json_t *warnings = json_array();
			for (size_t i = 0; i < cfg->n_warnings; i++)
				json_array_append_new(warnings, json_string(cfg->warnings[i]));
			json_t *addons = NULL;
			addons_list_json(d, app, &addons, NULL);
			*result = shape_deploy(app, n, unchanged, warnings, services_json(d, cfg),
					       addons ? addons : json_array(), created, retried);
		}
		app_unlock(d, app);
	}
	json_decref(created);
	json_decref(retried);
	if (staging)
		fs_remove_tree(staging);
	free(staging);
	app_config_free(cfg);
	return rc;
}

enum miren_err apps_list(struct daemon *d, json_t **result, struct miren_error *err)
{
	struct app_rec *apps;
	size_t n;
	enum miren_err rc = store_app_list(d->store, &apps, &n, err);
	if (rc)
		return rc;
	json_t *arr = json_array();
	for (size_t i = 0; i < n; i++) {
		struct app_rec rec;
		struct app_config *cfg = NULL;
		apps_load_current(d, apps[i].name, &rec, &cfg, NULL);
		json_t *svcs = services_json(d, cfg);
		json_array_append_new(arr, shape_app_summary(&apps[i], svcs));
		json_decref(svcs);
		app_config_free(cfg);
		app_rec_release(&rec);
	}
	app_recs_free(apps, n);
	*result = arr;
	return 0;
}

enum miren_err apps_status(struct daemon *d, const char *app, json_t **result,
			   struct miren_error *err)
{
	struct app_rec rec;
	struct app_config *cfg;
	enum miren_err rc = apps_load_current(d, app, &rec, &cfg, err);
	json_t *addons = NULL;
	if (!rc)
		rc = addons_list_json(d, app, &addons, err);
	if (!rc)
		*result = shape_app_status(&rec, app, services_json(d, cfg), addons,
					   cfg && cfg->n_services && daemon_is_held(d, app));
	app_config_free(cfg);
	app_rec_release(&rec);
	return rc;
}

enum miren_err apps_restart_locked(struct daemon *d, const char *app, struct miren_error *err)
{
	struct app_rec rec;
	struct app_config *cfg;
	enum miren_err rc = apps_load_current(d, app, &rec, &cfg, err);
	if (!rc && cfg) {
		/* sv_start replaces a running process: stop, then start anew. */
		rc = start_services(d, cfg, rec.current_release, err);
	} else {
		daemon_set_held(d, app, false); /* no release: nothing to start */
	}
	app_config_free(cfg);
	app_rec_release(&rec);
	return rc;
}

enum miren_err apps_restart(struct daemon *d, const char *app, struct miren_error *err)
{
	app_lock(d, app);
	enum miren_err rc = apps_restart_locked(d, app, err);
	if (!rc)
		log_info("app %s: restarted", app);
	app_unlock(d, app);
	return rc;
}

/* The first of ids (addon instances of app) that still exists, with its
 * message, as "NAME (MESSAGE)" to free; NULL when all are gone. */
static char *addons_left(struct daemon *d, const char *app, char **ids, size_t n_ids)
{
	struct addon_rec *recs;
	size_t n;
	char *left = NULL;
	if (store_addon_list(d->store, app, &recs, &n, NULL) != 0)
		return xstrdup("(the state store cannot be read)");
	for (size_t i = 0; i < n && !left; i++)
		for (size_t k = 0; k < n_ids && !left; k++)
			if (!strcmp(recs[i].id, ids[k]))
				left = *recs[i].message ? xasprintf("%s (%s)", recs[i].addon,
								    recs[i].message)
							: xstrdup(recs[i].addon);
	addon_recs_free(recs, n);
	return left;
}

enum miren_err apps_destroy(struct daemon *d, const char *app, struct miren_error *err)
{
	struct app_rec rec;
	struct app_config *cfg;
	char **ids = NULL;
	size_t n_ids = 0;
	app_lock(d, app);
	enum miren_err rc = apps_load_current(d, app, &rec, &cfg, err);
	if (rc)
		goto out;
	stop_removed_services(d, cfg, NULL);
	daemon_set_held(d, app, false);
	struct addon_rec *recs;
	size_t n;
	rc = store_addon_list(d->store, app, &recs, &n, err);
	if (!rc) {
		ids = xcalloc(n + 1, sizeof(*ids));
		for (size_t i = 0; !rc && i < n; i++) {
			rc = addons_destroy_locked(d, app, recs[i].addon, &ids[n_ids], err);
			n_ids += !rc;
		}
		addon_recs_free(recs, n);
	}
	if (!rc) {
		fault_point("app-destroy:marked");
		rc = store_app_delete(d->store, app, err);
	}
	if (rc)
		goto out;
	char *dir = data_paths_app(d->paths, app);
	fs_remove_tree(dir);
	free(dir);
	log_info("app %s: destroyed; %zu addons being removed", app, n_ids);
	/* Return once the addons are gone too, so that whatever comes next (a
	 * deploy of the same name) meets nothing of this app. */
	int64_t deadline = io_mono_ms() + REMOVAL_WAIT_MS;
	for (;;) {
		uint64_t seen = daemon_changes(d);
		char *left = addons_left(d, app, ids, n_ids);
		if (!left)
			break;
		if (daemon_wait_changes(d, app, seen, deadline) && daemon_is_stopping(d)) {
			rc = daemon_stopping_error(err);
			free(left);
			break;
		} else if (io_mono_ms() >= deadline) {
			rc = miren_error_set(err, MIREN_EUNAVAIL,
					     "app '%s' is destroyed, but its addon %s is still "
					     "being "
					     "removed",
					     app, left);
			miren_error_hint(err, "the server keeps retrying; 'miren debug invariants' "
					      "lists what is left");
			free(left);
			break;
		}
		free(left);
	}
out:
	for (size_t i = 0; i < n_ids; i++)
		free(ids[i]);
	free(ids);
	app_config_free(cfg);
	app_rec_release(&rec);
	app_unlock(d, app);
	return rc;
}
