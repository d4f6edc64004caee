/* The daemon's invariants (see invariants.h). */
#include "addon/invariants.h"
#include "addon/scratch.h"
#include "addon/server.h"
#include "disk/volume.h"
#include "util/paths.h"

#include <dirent.h>
#include <stdlib.h>
#include <string.h>

static void add(json_t *v, char *msg)
{
	json_array_append_new(v, json_string(msg));
	free(msg);
}

static void add_const(void *v, const char *msg)
{
	json_array_append_new(v, json_string(msg));
}

/* Disk directories are exactly the disk records. */
static void check_disk_dirs(struct addon_ctx *ctx, json_t *v)
{
	struct disk_rec *disks;
	size_t n;
	if (store_disk_list(ctx->store, &disks, &n, NULL) != 0) {
		add(v, xstrdup("the disk records cannot be read"));
		return;
	}
	char *root = data_paths_disks(ctx->paths);
	DIR *d = opendir(root);
	struct dirent *de;
	while (d && (de = readdir(d))) {
		/* (A scratch area is no disk: a verification or a tenant's dump
		 * out of a backup holds it while it runs and removes it, the
		 * next daemon's scratch_recover when a crash left it.) */
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..") ||
		    !strncmp(de->d_name, SCRATCH_PREFIX, strlen(SCRATCH_PREFIX)))
			continue;
		bool known = false;
		for (size_t i = 0; i < n && !known; i++)
			known = !strcmp(disks[i].name, de->d_name);
		if (!known)
			add(v, xasprintf("directory disks/%s has no disk record", de->d_name));
	}
	if (d)
		closedir(d);
	for (size_t i = 0; i < n; i++) {
		char *dir = data_paths_disk(ctx->paths, disks[i].name);
		DIR *dd = opendir(dir);
		if (dd)
			closedir(dd);
		else
			add(v, xasprintf("disk %s has no directory", disks[i].name));
		free(dir);
	}
	free(root);
	/* Images, mounts and loop devices agree with the records. */
	const char **names = xcalloc(n + 1, sizeof(*names));
	for (size_t i = 0; i < n; i++)
		names[i] = disks[i].name;
	if (ctx->volumes)
		volumes_check(ctx->volumes, names, n, add_const, v);
	free(names);
	disk_recs_free(disks, n);
}

/* The active instances of def on server id, states parsed (*n of them). */
static struct addon_inst *active_on(const struct addon_def *def, const struct addon_rec *recs,
				    size_t n_recs, const char *id, size_t *n)
{
	struct addon_inst *out = xcalloc(n_recs + 1, sizeof(*out));
	*n = 0;
	for (size_t i = 0; i < n_recs; i++)
		if (!strcmp(recs[i].status, "active") && !strcmp(recs[i].server, id) &&
		    !strcmp(recs[i].addon, def->name) &&
		    addon_inst_load(def, &recs[i], &out[*n], NULL) == 0)
			(*n)++;
	return out;
}

/* Every server belongs to a known engine and runs under the supervisor;
 * then its engine's own checks (e.g. a shared server holds exactly its
 * active tenants). */
static void check_servers(struct addon_ctx *ctx, json_t *v)
{
	struct server_rec *srv;
	size_t n;
	struct addon_rec *recs;
	size_t n_recs;
	if (store_server_list(ctx->store, &srv, &n, NULL) != 0) {
		add(v, xstrdup("the server records cannot be read"));
		return;
	}
	if (store_addon_list(ctx->store, NULL, &recs, &n_recs, NULL) != 0) {
		server_recs_free(srv, n);
		add(v, xstrdup("the addon records cannot be read"));
		return;
	}
	for (size_t i = 0; i < n; i++) {
		const struct addon_def *def = addon_find(srv[i].engine);
		if (!def) {
			add(v, xasprintf("server %s belongs to the unknown addon '%s'", srv[i].id,
					 srv[i].engine));
			continue;
		}
		struct sv_status st;
		if (!addon_server_supervised(ctx, srv[i].id, &st))
			add(v, xasprintf("server %s is not supervised", srv[i].id));
		else if (st.state != SV_RUNNING && st.state != SV_STARTING)
			add(v, xasprintf("server %s is %s", srv[i].id, sv_state_name(st.state)));
		if (!def->check_server)
			continue;
		size_t nt;
		struct addon_inst *t = active_on(def, recs, n_recs, srv[i].id, &nt);
		def->check_server(ctx, &srv[i], t, nt, v);
		for (size_t k = 0; k < nt; k++)
			addon_inst_release(def, &t[k]);
		free(t);
	}
	addon_recs_free(recs, n_recs);
	server_recs_free(srv, n);
}

enum miren_err addon_invariants_check(struct addon_ctx *ctx, json_t **result,
				      struct miren_error *err)
{
	char **msgs;
	size_t n;
	int in_motion;
	enum miren_err rc = store_invariants(ctx->store, &msgs, &n, &in_motion, err);
	if (rc)
		return rc;
	json_t *v = json_array();
	for (size_t i = 0; i < n; i++)
		add(v, msgs[i]);
	free(msgs);
	json_t *checks = json_pack("[s,s,s]", "addons <-> apps", "addons <-> servers",
				   "addons <-> variables");
	if (in_motion == 0) {
		check_disk_dirs(ctx, v);
		check_servers(ctx, v);
		json_array_append_new(checks, json_string("servers <-> disks"));
		json_array_append_new(checks, json_string("disks <-> directories"));
		json_array_append_new(checks,
				      json_string("disks <-> images, mounts, loop devices"));
		json_array_append_new(checks, json_string("servers <-> processes"));
		json_array_append_new(checks, json_string("shared-server tenants <-> records"));
	}
	*result = json_pack("{s:o, s:i, s:o}", "violations", v, "in_motion", in_motion, "checks",
			    checks);
	return 0;
}
