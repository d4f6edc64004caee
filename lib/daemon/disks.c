/* Disks, backups, restores and the debugging views; see disks.h. */
#include "daemon/disks.h"
#include "addon/disk_ops.h"
#include "addon/invariants.h"
#include "api/shape.h"
#include "daemon/daemon_int.h"
#include "disk/volume.h"
#include "store/store.h"
#include "util/fs.h"

#include <stdlib.h>
#include <string.h>

enum miren_err disks_list(struct daemon *d, json_t **result, struct miren_error *err)
{
	return disk_list(&d->actx, result, err);
}

json_t *disks_mode(struct daemon *d)
{
	return json_pack("{s:s, s:s, s:b}", "mode", volume_mode_name(volumes_mode(d->actx.volumes)),
			 "reason", volumes_mode_reason(d->actx.volumes), "online_resize",
			 volumes_grow_online(d->actx.volumes));
}

enum miren_err disks_resize(struct daemon *d, const char *name, uint64_t size_bytes,
			    json_t **result, struct miren_error *err)
{
	return disk_resize(&d->actx, name, size_bytes, result, err);
}

enum miren_err disks_delete(struct daemon *d, const char *name, json_t **result,
			    struct miren_error *err)
{
	return disk_delete(&d->actx, name, result, err);
}

enum miren_err disks_backup_prepare(struct daemon *d, const char *name,
				    struct disk_backup_job **job, struct miren_error *err)
{
	return disk_backup_prepare(&d->actx, name, job, err);
}

enum miren_err disks_restore(struct daemon *d, int fd, const char *name, bool force,
			     bool (*abandoned)(void *), void *abandoned_user, json_t **result,
			     struct miren_error *err)
{
	return disk_restore(&d->actx, snap_source_fd, &fd, name, force, abandoned, abandoned_user,
			    result, err);
}

enum miren_err daemon_invariants(struct daemon *d, json_t **result, struct miren_error *err)
{
	return addon_invariants_check(&d->actx, result, err);
}

enum miren_err daemon_state(struct daemon *d, bool unmask, json_t **result, struct miren_error *err)
{
	struct app_rec *apps = NULL;
	struct addon_rec *addons = NULL;
	struct server_rec *servers = NULL;
	struct disk_rec *disks = NULL;
	size_t n_apps = 0, n_addons = 0, n_servers = 0, n_disks = 0;
	enum miren_err rc = store_app_list(d->store, &apps, &n_apps, err);
	if (!rc)
		rc = store_addon_list(d->store, NULL, &addons, &n_addons, err);
	if (!rc)
		rc = store_server_list(d->store, &servers, &n_servers, err);
	if (!rc)
		rc = store_disk_list(d->store, &disks, &n_disks, err);
	if (rc)
		goto out;
	json_t *ja = json_array(), *jad = json_array(), *js = json_array(), *jd = json_array();
	for (size_t i = 0; i < n_apps; i++) {
		int *nums = NULL;
		size_t n = 0;
		json_t *rels = json_array();
		if (store_release_numbers(d->store, apps[i].name, &nums, &n, NULL) == 0)
			for (size_t k = 0; k < n; k++)
				json_array_append_new(rels, json_integer(nums[k]));
		free(nums);
		json_array_append_new(ja, shape_app_rec(&apps[i], rels));
	}
	for (size_t i = 0; i < n_addons; i++)
		json_array_append_new(jad, shape_addon_rec(&addons[i], unmask));
	for (size_t i = 0; i < n_servers; i++)
		json_array_append_new(js, shape_server_rec(&servers[i], unmask));
	for (size_t i = 0; i < n_disks; i++)
		json_array_append_new(jd, shape_disk_rec(&disks[i]));
	*result = shape_state(store_schema_version(d->store), ja, jad, js, jd);
out:
	app_recs_free(apps, n_apps);
	addon_recs_free(addons, n_addons);
	server_recs_free(servers, n_servers);
	disk_recs_free(disks, n_disks);
	return rc;
}
