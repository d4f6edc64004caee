/* Apps, releases and services; see apps.h. */
#include "daemon/apps.h"
#include "api/shape.h"
#include "app/config.h"
#include "app/env.h"
#include "app/source.h"
#include "daemon/change.h"
#include "daemon/daemon_int.h"
#include "daemon/schedules.h"
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
	if (held) {
		daemon_set_held(d, cfg->name, true);
		log_info("app %s: waiting for addon %s before starting services", cfg->name,
			 waiting ? waiting : "?");
		free(waiting);
		return 0;
	}
	struct env_rec *stored;
	size_t n_stored;
	enum miren_err rc = store_env_list(d->store, cfg->name, &stored, &n_stored, err);
	if (rc) {
		daemon_set_held(d, cfg->name, false);
		return rc;
	}
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
	/* Released only now: until the services are restarted, app status
	 * still shows the earlier run (a deploy would judge its exits). */
	daemon_set_held(d, cfg->name, false);
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

/*
 * Forgets the releases of app beyond the newest d->keep_releases, then
 * removes the directories the store does not know (prune_release_dirs).
 * The current release is always the newest (a deploy and a rollback both
 * make a new number and make it current), so it is always kept.  A crash
 * between the two leaves directories the next start removes.
 */
static void prune_releases(struct daemon *d, const char *app)
{
	int *nums;
	size_t n;
	if (store_release_numbers(d->store, app, &nums, &n, NULL) == 0) {
		size_t keep = (size_t)d->keep_releases;
		if (n > keep && store_release_prune(d->store, app, nums[n - keep], NULL) == 0)
			log_info("app %s: releases before %d pruned (the newest %zu kept)", app,
				 nums[n - keep], keep);
		free(nums);
	}
	prune_release_dirs(d, app);
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
		prune_releases(d, apps[i].name);
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
 * Every [addons.<name>] of cfg names a known addon, variant and version;
 * one that asks for another variant than the one attached is active (the
 * deploy changes it: deploy_changes) and of an engine that can change.
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
		if (store_addon_get(d->store, cfg->name, a->name, &cur, NULL) != 0)
			continue;
		enum addon_status st = addon_status_parse(cur.status);
		bool same = !strcmp(cur.variant, variant) || st == ADDON_DEPROVISIONING ||
			    st == ADDON_ERROR;
		if (!same && st != ADDON_ACTIVE) {
			rc = miren_error_set(err, MIREN_ECONFLICT,
					     "addon %s of app '%s' is '%s' and %s; app.toml asks "
					     "for "
					     "'%s'",
					     a->name, cfg->name, cur.variant, cur.status, variant);
			miren_error_hint(err,
					 "deploy again once 'miren addon list -a %s' shows it "
					 "active: the deploy then changes its variant",
					 cfg->name);
		} else if (!same && !changes_supported(cur.addon)) {
			rc = changes_unsupported(def, cfg->name, err);
		}
		addon_rec_release(&cur);
		if (rc)
			return rc;
	}
	return 0;
}

/*
 * Changes every active addon whose variant app.toml changed (changes.h),
 * up to its switch: the deploy's start of its services is the one restart,
 * after which deploy_changes_finish removes the old instances.  Appends
 * each change's result to changed; stops at the first failure (that
 * addon undone; the ones switched before it stay switched and are
 * finished by the caller).
 */
static enum miren_err deploy_changes(struct daemon *d, const struct app_config *cfg,
				     json_t *changed, struct miren_error *err)
{
	enum miren_err rc = 0;
	for (size_t i = 0; i < cfg->n_addons && !rc; i++) {
		const struct app_addon *a = &cfg->addons[i];
		const struct addon_def *def;
		const char *variant;
		char version[16];
		struct addon_rec cur;
		if (addon_resolve(a->name, a->variant, a->version, &def, &variant, version, NULL) !=
			    0 ||
		    store_addon_get(d->store, cfg->name, a->name, &cur, NULL) != 0)
			continue;
		bool differs = addon_status_parse(cur.status) == ADDON_ACTIVE &&
			       strcmp(cur.variant, variant) != 0;
		addon_rec_release(&cur);
		if (!differs)
			continue;
		bool switched = false;
		json_t *res = NULL;
		rc = changes_change_locked(d, cfg->name, a->name, variant, &switched, &res, err);
		if (switched)
			json_array_append_new(changed, res);
		else
			json_decref(res);
	}
	return rc;
}

/* Finishes the switched changes of changed (the app restarted by the
 * deploy when restarted).  The first failure is returned (all are tried). */
static enum miren_err deploy_changes_finish(struct daemon *d, const char *app, json_t *changed,
					    bool restarted, struct miren_error *err)
{
	enum miren_err rc = 0;
	size_t i;
	json_t *c;
	json_array_foreach (changed, i, c) {
		struct miren_error e;
		miren_error_clear(&e);
		enum miren_err r = changes_finish_locked(d, app,
							 json_string_value(
								 json_object_get(c, "addon")),
							 restarted, &e);
		json_object_set_new(c, "restarted", json_true());
		if (r && !rc) {
			rc = r;
			*err = e;
		}
		restarted = true; /* (the first one restarted it if needed) */
	}
	return rc;
}

/* Whether a deploy of cfg removes addon r: app.toml attached it and no
 * longer lists it (sync_addons). */
static bool removed_by_deploy(const struct app_config *cfg, const struct addon_rec *r)
{
	for (size_t k = 0; k < cfg->n_addons; k++)
		if (!strcmp(cfg->addons[k].name, r->addon))
			return false;
	return addon_source_parse(r->source) == ADDON_SOURCE_CONFIG &&
	       addon_status_parse(r->status) != ADDON_DEPROVISIONING;
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
					  addon_source_name(ADDON_SOURCE_CONFIG), NULL, &made, err);
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
	for (size_t i = 0; i < n && !rc; i++)
		if (removed_by_deploy(cfg, &recs[i])) {
			rc = addons_destroy_locked(d, cfg->name, recs[i].addon, NULL, err);
			store_schedule_delete(d->store, cfg->name, recs[i].addon, NULL);
			log_info("app %s: addon %s removed: app.toml no longer lists it", cfg->name,
				 recs[i].addon);
		}
	addon_recs_free(recs, n);
	if (!rc)
		rc = schedules_sync_config(d, cfg, err);
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

/*
 * Before anything of a deploy changes: the final backup of each addon the
 * deploy removes, appended to removed as {"addon","final_backup":ID|null}
 * (null: it held no data).  A backup that fails fails the deploy, with
 * nothing changed.
 */
static enum miren_err removal_backups(struct daemon *d, const struct app_config *cfg,
				      json_t *removed, struct miren_error *err)
{
	struct addon_rec *recs;
	size_t n;
	enum miren_err rc = store_addon_list(d->store, cfg->name, &recs, &n, err);
	if (rc)
		return rc;
	for (size_t i = 0; i < n && !rc; i++) {
		if (!removed_by_deploy(cfg, &recs[i]))
			continue;
		json_t *b = NULL;
		rc = backups_final(d, cfg->name, recs[i].addon, "deploy", &b, err);
		if (rc) {
			struct miren_error why = *err;
			miren_error_set(err, rc,
					"app.toml no longer lists addon %s, and its final backup "
					"failed, so nothing was deployed: %s",
					recs[i].addon, why.message);
			miren_error_detail(err, "%s", why.detail);
			miren_error_hint(err,
					 "to remove it without a final backup: 'miren addon "
					 "destroy "
					 "%s -a %s --no-final-backup', then deploy again",
					 recs[i].addon, cfg->name);
		} else {
			json_array_append_new(removed, json_pack("{s:s, s:O}", "addon",
								 recs[i].addon, "final_backup",
								 b ? json_object_get(b, "id")
								   : json_null()));
		}
		json_decref(b);
	}
	addon_recs_free(recs, n);
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

/*
 * Makes the tree in *staging release rel->n of app (the next number, set
 * here): handed to the service user, moved to releases/<n>, then recorded
 * with rel (its size measured here) as the app's current release.  fault
 * names the point between the move and the record: a crash there leaves a
 * directory the next start removes (prune_release_dirs).  On success
 * *staging is freed and NULL; a record that fails removes the directory
 * again.  Caller holds the app's lock.
 */
static enum miren_err record_release(struct daemon *d, const char *app, char **staging,
				     struct release_rec *rel, const char *fault,
				     struct miren_error *err)
{
	enum miren_err rc = store_release_next(d->store, app, &rel->n, err);
	if (rc)
		return rc;
	char *parent = data_paths_releases(d->paths, app);
	char *target = data_paths_release(d->paths, app, rel->n);
	if (fs_mkdir_p(parent, 0711) != 0 || fs_remove_tree(target) != 0 ||
	    (d->run_uid != (uid_t)-1 && fs_chown_tree(*staging, d->run_uid, d->run_gid) != 0) ||
	    rename(*staging, target) != 0 || fs_fsync_dir(parent) != 0) {
		rc = miren_error_set(err, MIREN_EIO, "cannot write release directory '%s': %s",
				     target, io_strerror(errno));
		miren_error_hint(err, "check that the data directory '%s' is writable",
				 data_paths_root(d->paths));
		goto out;
	}
	free(*staging);
	*staging = NULL;
	fault_point(fault);
	long long du = fs_disk_usage(target);
	rel->size_bytes = du > 0 ? du : 0;
	rc = store_release_add(d->store, app, rel, err);
	if (rc)
		fs_remove_tree(target);
	else
		log_info("app %s: release %d recorded", app, rel->n);
out:
	free(target);
	free(parent);
	return rc;
}

/* The part of a deploy under the app's lock: from the checks against the
 * app's state to the start of its services.  cfg is the new config. */
static enum miren_err deploy_locked(struct daemon *d, const char *app, char **staging,
				    const char *sha256, struct app_config *cfg, json_t *created,
				    json_t *retried, json_t *removed, json_t *changed, int *n_out,
				    int *unchanged_out, struct miren_error *err)
{
	bool started = false;
	struct app_config *old = NULL;
	struct app_rec rec = { 0 };
	struct env_rec *stored = NULL;
	size_t n_stored = 0;
	char *config_json = NULL;
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

	rc = removal_backups(d, cfg, removed, err);
	if (!rc)
		rc = deploy_changes(d, cfg, changed, err);
	if (rc)
		goto out;
	json_t *cj = app_config_to_json(cfg);
	config_json = json_dumps(cj, JSON_COMPACT);
	json_decref(cj);
	if (rec.current_release) {
		struct release_rec cur;
		if (store_release_get(d->store, app, rec.current_release, &cur, NULL) == 0) {
			unchanged = !strcmp(cur.source_sha256, sha256);
			/* A rollback's release keeps today's addons, which its
			 * app.toml may not declare: the same tree is unchanged
			 * only with the same config, else the deploy is a new
			 * release that applies its app.toml. */
			if (unchanged && cur.rollback_of)
				unchanged = !strcmp(cur.config_json, config_json);
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

	struct release_rec rel = { .source_sha256 = (char *)sha256, .config_json = config_json };
	rc = record_release(d, app, staging, &rel, "deploy:moved", err);
	if (rc)
		goto out;
	n = rel.n;
	rc = sync_addons(d, cfg, created, err);
	if (rc)
		goto out;
	stop_removed_services(d, old, cfg);
	rc = start_services(d, cfg, n, err);
	/* (A held start restarted nothing: the changes' finish says so.) */
	started = rc == 0 && !daemon_is_held(d, app);
	prune_releases(d, app);
out:
	if (json_array_size(changed) > 0) {
		struct miren_error e;
		miren_error_clear(&e);
		if (deploy_changes_finish(d, app, changed, started, &e) != 0 && !rc) {
			*err = e;
			rc = e.code;
		}
	}
	*n_out = n;
	*unchanged_out = unchanged;
	free(config_json);
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
	json_t *created = json_array(), *retried = json_array(), *removed = json_array(),
	       *changed = json_array();

	/* Unpacking and parsing touch nothing of the app: no lock yet, so a
	 * large upload holds up no one. */
	rc = unpack_to_staging(d, tar_path, &staging, err);
	if (!rc)
		rc = read_config(staging, app, &cfg, err);
	if (!rc) {
		app_lock(d, app);
		rc = deploy_locked(d, app, &staging, sha256, cfg, created, retried, removed,
				   changed, &n, &unchanged, err);
		if (!rc) {
			json_t *warnings = json_array();
			for (size_t i = 0; i < cfg->n_warnings; i++)
				json_array_append_new(warnings, json_string(cfg->warnings[i]));
			json_t *addons = NULL;
			addons_list_json(d, app, &addons, NULL);
			*result = shape_deploy(app, n, unchanged, warnings, services_json(d, cfg),
					       addons ? addons : json_array(), created, retried);
			json_object_set(*result, "addons_removed", removed);
			json_object_set(*result, "addons_changed", changed);
		}
		app_unlock(d, app);
	}
	json_decref(created);
	json_decref(retried);
	json_decref(removed);
	json_decref(changed);
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

enum miren_err apps_releases(struct daemon *d, const char *app, json_t **result,
			     struct miren_error *err)
{
	struct app_rec rec;
	struct release_rec *rels = NULL;
	size_t n = 0;
	enum miren_err rc = store_app_get(d->store, app, &rec, err);
	if (rc == MIREN_ENOTFOUND)
		miren_error_hint(err, "run 'miren app list' to see the apps");
	if (!rc)
		rc = store_release_list(d->store, app, &rels, &n, err);
	if (!rc) {
		json_t *arr = json_array();
		for (size_t i = 0; i < n; i++)
			json_array_append_new(arr, shape_release(&rels[i],
								 rels[i].n == rec.current_release));
		*result = json_pack("{s:s, s:i, s:i, s:o}", "app", app, "current",
				    rec.current_release, "keep", d->keep_releases, "releases", arr);
		release_recs_free(rels, n);
	}
	app_rec_release(&rec);
	return rc;
}

/*
 * Which kept release of app a rollback to `to` starts (0: the newest one
 * below current), into *target; the errors of every release it cannot be,
 * with nothing changed.  nums: the kept release numbers, ascending.
 */
static enum miren_err rollback_target(struct daemon *d, const char *app, int current, int to,
				      const int *nums, size_t n, int *target,
				      struct miren_error *err)
{
	*target = 0;
	if (!current) {
		miren_error_set(err, MIREN_ENOTFOUND, "app '%s' has no releases", app);
		miren_error_hint(err, "deploy it first with 'miren deploy'");
		return MIREN_ENOTFOUND;
	}
	if (to == current) {
		miren_error_set(err, MIREN_ECONFLICT,
				"release %d is already the current release of app '%s'", to, app);
		miren_error_hint(err, "give an earlier one; 'miren app releases -a %s' lists them",
				 app);
		return MIREN_ECONFLICT;
	}
	bool kept = false;
	for (size_t i = 0; i < n; i++) {
		if (!to && nums[i] < current)
			*target = nums[i];
		kept |= to && nums[i] == to;
	}
	if (to && kept)
		*target = to;
	if (*target)
		return 0;
	if ((n && to > nums[n - 1]) || (!to && current == 1)) {
		if (to)
			miren_error_set(err, MIREN_ENOTFOUND, "app '%s' has no release %d", app,
					to);
		else
			miren_error_set(err, MIREN_ENOTFOUND,
					"app '%s' has only one release: there is none to roll back "
					"to",
					app);
		miren_error_hint(err, "'miren app releases -a %s' lists its releases", app);
	} else {
		if (to)
			miren_error_set(err, MIREN_ENOTFOUND, "release %d of app '%s' was pruned",
					to, app);
		else
			miren_error_set(err, MIREN_ENOTFOUND,
					"the releases of app '%s' before release %d were pruned",
					app, current);
		miren_error_hint(err,
				 "the server keeps the newest %d releases of each app (miren "
				 "server "
				 "--keep-releases); 'miren app releases -a %s' lists them",
				 d->keep_releases, app);
	}
	return MIREN_ENOTFOUND;
}

/*
 * The config of a rollback to release `to`: its app.toml's services and
 * [[env]] with the addons section of the current release (a rollback
 * changes code, not addons), as stored JSON in *json_out (to free) and
 * parsed in *cfg_out.
 */
static enum miren_err rollback_config(const char *app, const struct release_rec *to,
				      const struct release_rec *cur, char **json_out,
				      struct app_config **cfg_out, struct miren_error *err)
{
	json_t *tj = json_loads(to->config_json, 0, NULL);
	json_t *cj = json_loads(cur->config_json, 0, NULL);
	json_t *addons = json_object_get(cj, "addons");
	*cfg_out = NULL;
	*json_out = NULL;
	if (tj && json_is_array(addons) && json_object_set(tj, "addons", addons) == 0)
		*cfg_out = app_config_from_json(tj);
	json_decref(tj);
	json_decref(cj);
	if (!*cfg_out)
		return miren_error_set(err, MIREN_EINTERNAL,
				       "release %d or %d of app '%s' has an unreadable config",
				       to->n, cur->n, app);
	json_t *j = app_config_to_json(*cfg_out);
	*json_out = json_dumps(j, JSON_COMPACT);
	json_decref(j);
	return 0;
}

/* The addons (names, appended to missing) release rel's app.toml declared
 * that app does not have now (or is removing): a rollback leaves them out. */
static void addons_not_back(struct daemon *d, const char *app, const struct release_rec *rel,
			    json_t *missing)
{
	json_t *j = json_loads(rel->config_json, 0, NULL);
	struct app_config *cfg = j ? app_config_from_json(j) : NULL;
	json_decref(j);
	for (size_t i = 0; cfg && i < cfg->n_addons; i++) {
		struct addon_rec cur;
		bool have = store_addon_get(d->store, app, cfg->addons[i].name, &cur, NULL) == 0;
		if (have) {
			have = addon_status_parse(cur.status) != ADDON_DEPROVISIONING;
			addon_rec_release(&cur);
		}
		if (!have)
			json_array_append_new(missing, json_string(cfg->addons[i].name));
	}
	app_config_free(cfg);
}

/* The part of a rollback under the app's lock. */
static enum miren_err rollback_locked(struct daemon *d, const char *app, int to, json_t **result,
				      struct miren_error *err)
{
	struct app_rec rec = { 0 };
	struct app_config *old = NULL, *cfg = NULL;
	struct release_rec target = { 0 }, cur = { 0 };
	struct env_rec *stored = NULL;
	size_t n_stored = 0, n_nums = 0;
	int *nums = NULL, t = 0;
	char *staging = NULL, *src = NULL, *config_json = NULL;
	json_t *missing = json_array();

	enum miren_err rc = apps_load_current(d, app, &rec, &old, err);
	if (rc == MIREN_ENOTFOUND)
		miren_error_hint(err, "run 'miren app list' to see the apps");
	if (!rc)
		rc = store_release_numbers(d->store, app, &nums, &n_nums, err);
	if (!rc)
		rc = rollback_target(d, app, rec.current_release, to, nums, n_nums, &t, err);
	if (!rc)
		rc = store_release_get(d->store, app, t, &target, err);
	if (!rc)
		rc = store_release_get(d->store, app, rec.current_release, &cur, err);
	if (!rc)
		rc = rollback_config(app, &target, &cur, &config_json, &cfg, err);
	if (!rc)
		rc = store_env_list(d->store, app, &stored, &n_stored, err);
	if (rc)
		goto out;
	const char *need = env_missing_required(cfg, stored, n_stored);
	if (need) {
		rc = miren_error_set(err, MIREN_EINVAL,
				     "release %d of app '%s' requires variable '%s', which has no "
				     "value",
				     t, app, need);
		miren_error_hint(err,
				 "set it with 'miren env set -a %s %s=VALUE', then roll back again",
				 app, need);
		goto out;
	}

	/* Step 1: a copy of the release's directory in tmp/ (emptied at
	 * start: a crash leaves nothing). */
	src = data_paths_release(d->paths, app, t);
	staging = data_paths_tmp_unique(d->paths, "rollback");
	if (!fs_is_dir(src)) {
		rc = miren_error_set(err, MIREN_EIO,
				     "the directory of release %d of app '%s' is missing", t, app);
		miren_error_detail(err, "%s", src);
		miren_error_hint(err, "roll back to another release, or deploy again");
		goto out;
	}
	if (fs_copy_tree(src, staging) != 0) {
		rc = miren_error_set(err, errno == ENOSPC ? MIREN_ETOOBIG : MIREN_EIO,
				     "cannot copy release %d of app '%s': %s", t, app,
				     io_strerror(errno));
		miren_error_hint(err, "check that the data directory '%s' is writable and has room",
				 data_paths_root(d->paths));
		goto out;
	}
	fault_point("rollback:copied");
	/* Step 2: moved to releases/<n> and recorded as the current release
	 * (between the two: rollback:moved, the directory removed at start). */
	struct release_rec rel = { .source_sha256 = target.source_sha256,
				   .config_json = config_json,
				   .rollback_of = t };
	rc = record_release(d, app, &staging, &rel, "rollback:moved", err);
	if (rc)
		goto out;
	log_info("app %s: release %d is a rollback to release %d", app, rel.n, t);
	fault_point("rollback:recorded");
	/* Step 3: its services (at start: those of the current release). */
	stop_removed_services(d, old, cfg);
	rc = start_services(d, cfg, rel.n, err);
	prune_releases(d, app);
	addons_not_back(d, app, &target, missing);
	if (!rc) {
		json_t *addons = NULL;
		addons_list_json(d, app, &addons, NULL);
		*result = shape_rollback(app, rel.n, t, rec.current_release, services_json(d, cfg),
					 addons ? addons : json_array(), missing);
	}
out:
	if (staging)
		fs_remove_tree(staging);
	free(staging);
	free(src);
	free(config_json);
	free(nums);
	json_decref(missing);
	env_recs_free(stored, n_stored);
	release_rec_release(&target);
	release_rec_release(&cur);
	app_config_free(cfg);
	app_config_free(old);
	app_rec_release(&rec);
	return rc;
}

enum miren_err apps_rollback(struct daemon *d, const char *app, int to, json_t **result,
			     struct miren_error *err)
{
	*result = NULL;
	if (to < 0)
		return miren_error_set(err, MIREN_EINVAL, "release %d is not a release number", to);
	app_lock(d, app);
	enum miren_err rc = rollback_locked(d, app, to, result, err);
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

/* The final backups of app's addons (apps_destroy), into finals. */
static enum miren_err final_backups(struct daemon *d, const char *app, json_t *finals,
				    struct miren_error *err)
{
	struct addon_rec *recs = NULL;
	size_t n = 0;
	enum miren_err rc = store_addon_list(d->store, app, &recs, &n, err);
	for (size_t i = 0; !rc && i < n; i++) {
		json_t *b = NULL;
		if (addon_status_parse(recs[i].status) == ADDON_DEPROVISIONING)
			continue;
		rc = backups_final(d, app, recs[i].addon, "destroy", &b, err);
		if (rc)
			miren_error_hint(err,
					 "to destroy the app without final backups: 'miren app "
					 "destroy %s --no-final-backup'",
					 app);
		else if (b)
			json_array_append_new(finals,
					      json_pack("{s:s, s:O}", "addon", recs[i].addon, "id",
							json_object_get(b, "id")));
		json_decref(b);
	}
	if (recs)
		addon_recs_free(recs, n);
	return rc;
}

enum miren_err apps_destroy(struct daemon *d, const char *app, bool final_backup, json_t **result,
			    struct miren_error *err)
{
	struct app_rec rec;
	struct app_config *cfg;
	char **ids = NULL;
	size_t n_ids = 0;
	json_t *finals = json_array();
	app_lock(d, app);
	enum miren_err rc = apps_load_current(d, app, &rec, &cfg, err);
	if (rc)
		goto out;
	if (final_backup && (rc = final_backups(d, app, finals, err)) != 0)
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
	if (!rc)
		*result = json_pack("{s:s, s:O}", "app", app, "final_backups", finals);
out:
	json_decref(finals);
	for (size_t i = 0; i < n_ids; i++)
		free(ids[i]);
	free(ids);
	app_config_free(cfg);
	app_rec_release(&rec);
	app_unlock(d, app);
	return rc;
}
