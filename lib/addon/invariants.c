/* The daemon's invariants (see invariants.h). */
#include "addon/invariants.h"
#include "addon/pg.h"
#include "addon/provider_pg.h"

#include "util/strbuf.h"

#include <dirent.h>
#include <stdlib.h>
#include <string.h>

static void add(json_t *v, char *msg)
{
	json_array_append_new(v, json_string(msg));
	free(msg);
}

static void strs_free(char **s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(s[i]);
	free(s);
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
	char *root = xasprintf("%s/disks", ctx->data_dir);
	DIR *d = opendir(root);
	struct dirent *de;
	while (d && (de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
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
		char *dir = xasprintf("%s/%s", root, disks[i].name);
		DIR *dd = opendir(dir);
		if (dd)
			closedir(dd);
		else
			add(v, xasprintf("disk %s has no directory", disks[i].name));
		free(dir);
	}
	free(root);
	disk_recs_free(disks, n);
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The sorted names (db or role) of the active tenants of server id. */
static char **tenants_of(const struct addon_rec *recs, size_t n_recs, const char *id,
			 const char *key, size_t *n)
{
	char **out = xcalloc(n_recs + 1, sizeof(*out));
	*n = 0;
	for (size_t i = 0; i < n_recs; i++) {
		if (strcmp(recs[i].status, "active"))
			continue;
		json_t *st = json_loads(recs[i].state_json, 0, NULL);
		if (!strcmp(pgp_jstr(st, "server"), id))
			out[(*n)++] = xstrdup(pgp_jstr(st, key));
		json_decref(st);
	}
	qsort(out, *n, sizeof(*out), cmp_str);
	return out;
}

/* "a, b, c" of names (to free). */
static char *joined(char **s, size_t n)
{
	struct strbuf sb = STRBUF_INIT;
	for (size_t i = 0; i < n; i++)
		strbuf_addf(&sb, "%s%s", i ? ", " : "", s[i]);
	return strbuf_detach(&sb, NULL);
}

static bool same_names(char **a, size_t na, char **b, size_t nb)
{
	if (na != nb)
		return false;
	for (size_t i = 0; i < na; i++)
		if (strcmp(a[i], b[i]))
			return false;
	return true;
}

/* Compares what the server holds (have) with its tenants' records (want). */
static void compare_names(json_t *v, const char *id, const char *what, char **have, size_t n_have,
			  char **want, size_t n_want)
{
	if (same_names(have, n_have, want, n_want))
		return;
	char *h = joined(have, n_have), *w = joined(want, n_want);
	add(v, xasprintf("shared server %s has the %s [%s], its active tenants [%s]", id, what, h,
			 w));
	free(h);
	free(w);
}

/* Every server runs under the supervisor; a shared one holds exactly its
 * active tenants. */
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
		char *sv_id = pgp_server_sv_id(srv[i].id);
		struct sv_status st;
		if (sv_status(ctx->sv, sv_id, &st) != 0)
			add(v, xasprintf("server %s is not supervised", srv[i].id));
		else if (st.state != SV_RUNNING && st.state != SV_STARTING)
			add(v, xasprintf("server %s is %s", srv[i].id, sv_state_name(st.state)));
		free(sv_id);
		if (strcmp(srv[i].kind, "shared"))
			continue;
		json_t *sst = json_loads(srv[i].state_json, 0, NULL);
		char *dir = pgp_disk_dir(ctx, srv[i].disk);
		char **dbs, **roles;
		size_t n_dbs, n_roles;
		struct miren_error err;
		if (pg_tenant_names(dir, srv[i].port, pgp_jstr(sst, "su_password"), &dbs, &n_dbs,
				    &roles, &n_roles, &err) != 0) {
			add(v, xasprintf("shared server %s cannot be asked for its tenants: %s",
					 srv[i].id, err.message));
		} else {
			size_t nw;
			char **want = tenants_of(recs, n_recs, srv[i].id, "db", &nw);
			compare_names(v, srv[i].id, "databases", dbs, n_dbs, want, nw);
			strs_free(want, nw);
			want = tenants_of(recs, n_recs, srv[i].id, "role", &nw);
			compare_names(v, srv[i].id, "roles", roles, n_roles, want, nw);
			strs_free(want, nw);
			strs_free(dbs, n_dbs);
			strs_free(roles, n_roles);
		}
		free(dir);
		json_decref(sst);
	}
	addon_recs_free(recs, n_recs);
	server_recs_free(srv, n);
}

int addon_invariants_check(struct addon_ctx *ctx, json_t **result, struct miren_error *err)
{
	char **msgs;
	size_t n;
	int in_motion;
	int rc = store_invariants(ctx->store, &msgs, &n, &in_motion, err);
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
		json_array_append_new(checks, json_string("servers <-> processes"));
		json_array_append_new(checks, json_string("shared-server tenants <-> records"));
	}
	*result = json_pack("{s:o, s:i, s:o}", "violations", v, "in_motion", in_motion, "checks",
			    checks);
	return 0;
}
