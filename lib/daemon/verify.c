/* Verified backups; see verify.h. */
#include "daemon/verify.h"
#include "addon/scratch.h"
#include "backup/bstore.h"
#include "daemon/backups.h"
#include "daemon/daemon_int.h"
#include "store/store.h"
#include "util/log.h"
#include "util/paths.h"
#include "util/strbuf.h"

#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* The engine of app's addon (the addon need not exist any more: a final
 * backup outlives it). */
static enum miren_err engine_of(struct daemon *d, const char *app, const char *addon,
				const struct addon_def **def, struct miren_error *err)
{
	struct app_rec rec;
	enum miren_err rc = store_app_get(d->store, app, &rec, err);
	if (rc)
		return rc;
	app_rec_release(&rec);
	*def = addon_find(addon);
	if (!*def) {
		miren_error_set(err, MIREN_ENOTFOUND, "addon '%s' not found", addon);
		miren_error_hint(err, "run 'miren addon list -a %s' to see the app's addons", app);
		return MIREN_ENOTFOUND;
	}
	return 0;
}

/* The tenant facts of app's addon as it is now into *out (NULL: none,
 * or the engine keeps none; json_pack copies every string, so they
 * outlive the instance).  Caller decrefs. */
static void current_tenant(struct daemon *d, const struct addon_def *def, const char *app,
			   const char *addon, json_t **out)
{
	*out = NULL;
	struct addon_rec rec;
	if (!def->tenant_facts || store_addon_get(d->store, app, addon, &rec, NULL) != 0)
		return;
	struct addon_inst inst;
	if (addon_inst_load(def, &rec, &inst, NULL) == 0) {
		*out = def->tenant_facts(&d->actx, &inst);
		addon_inst_release(def, &inst);
	}
	addon_rec_release(&rec);
}

/*
 * scratch_verify of source, then (when the app has the addon now, or the
 * backup is a dump) the app's tenant read out of it into a temporary file
 * whose size is the result's "tenant_bytes": the app's own data comes
 * back, not only the server's.
 */
static enum miren_err verify_source(struct daemon *d, const struct addon_def *def, const char *app,
				    const char *addon, const struct scratch_source *source,
				    json_t **result, struct miren_error *err)
{
	json_t *tenant;
	current_tenant(d, def, app, addon, &tenant);
	char *path = data_paths_tmp_unique(d->paths, "tenant-dump");
	int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd >= 0)
		unlink(path);
	free(path);
	enum miren_err rc = scratch_verify(&d->actx, def, source, tenant, tenant ? fd : -1, result,
					   err);
	/* A disk backup of another app's server holds no tenant of this
	 * app: verified, nothing read out. */
	struct stat st;
	if (!rc && tenant && fd >= 0 && fstat(fd, &st) == 0)
		json_object_set_new(*result, "tenant_bytes", json_integer((json_int_t)st.st_size));
	if (fd >= 0)
		close(fd);
	json_decref(tenant);
	return rc;
}

enum miren_err backups_verify_file(struct daemon *d, const char *app, const char *addon, int fd,
				   json_t **result, struct miren_error *err)
{
	*result = NULL;
	const struct addon_def *def;
	enum miren_err rc = engine_of(d, app, addon, &def, err);
	struct scratch_source src = { snap_source_fd, &fd, false };
	if (!rc)
		rc = verify_source(d, def, app, addon, &src, result, err);
	if (!rc) {
		json_object_set_new(*result, "app", json_string(app));
		json_object_set_new(*result, "addon", json_string(addon));
	}
	return rc;
}

/* The id of the newest stored backup of app's addon; ENOTFOUND when
 * none.  Caller frees. */
static enum miren_err newest_backup(struct bstore *bs, const char *app, const char *addon,
				    char **id, struct miren_error *err)
{
	json_t *filter = json_pack("{s:s, s:s}", "app", app, "addon", addon);
	json_t *list = bstore_list(bs, filter);
	json_decref(filter);
	size_t n = json_array_size(list);
	const char *last = n ? json_string_value(json_object_get(json_array_get(list, n - 1), "id"))
			     : NULL;
	*id = last ? xstrdup(last) : NULL;
	json_decref(list);
	if (*id)
		return 0;
	miren_error_set(err, MIREN_ENOTFOUND, "app '%s' has no stored backup of addon %s", app,
			addon);
	miren_error_hint(err, "take one with 'miren addon backup %s -a %s'", addon, app);
	return MIREN_ENOTFOUND;
}

/* Checks that stored backup id is one of app's addon. */
static enum miren_err backup_of(struct bstore *bs, const char *app, const char *addon,
				const char *id, struct miren_error *err)
{
	json_t *man = NULL;
	enum miren_err rc = bstore_get(bs, id, &man, err);
	if (rc)
		return rc;
	json_t *meta = json_object_get(man, "meta");
	const char *a = json_string_value(json_object_get(meta, "app"));
	const char *o = json_string_value(json_object_get(meta, "addon"));
	if (!a || !o || strcmp(a, app) || strcmp(o, addon)) {
		rc = miren_error_set(err, MIREN_ENOTFOUND,
				     "backup '%s' is not one of addon %s of app '%s'", id, addon,
				     app);
		miren_error_hint(err, "run 'miren addon backups %s -a %s' to see its backups",
				 addon, app);
	}
	json_decref(man);
	return rc;
}

/* A read that failed on a damaged or missing stored chunk: the reader's
 * account, naming every backup that uses the chunk. */
static enum miren_err chunk_error(struct bstore *bs, const struct miren_error *why,
				  struct miren_error *err)
{
	*err = *why;
	const char *p = strstr(why->message, "chunk ");
	char hex[65] = "";
	if (p && strspn(p + 6, "0123456789abcdef") >= 64)
		snprintf(hex, sizeof(hex), "%.64s", p + 6);
	json_t *users = *hex ? bstore_chunk_users(bs, hex) : NULL;
	if (json_array_size(users)) {
		struct strbuf sb = STRBUF_INIT;
		size_t i;
		json_t *u;
		json_array_foreach (users, i, u)
			strbuf_addf(&sb, "%s%s", i ? ", " : "", json_string_value(u));
		struct strbuf msg = STRBUF_INIT;
		strbuf_addf(&msg, "%s; backups using it: %s", why->message, sb.buf);
		snprintf(err->message, sizeof err->message, "%.*s", (int)sizeof err->message - 1,
			 msg.buf);
		strbuf_release(&msg);
		miren_error_hint(err, "none of them restores as stored; take a new backup, and "
				      "remove them once a newer one is verified");
		strbuf_release(&sb);
	}
	json_decref(users);
	if (err->code != MIREN_EINVAL && err->code != MIREN_EIO)
		err->code = MIREN_EINVAL;
	return err->code;
}

enum miren_err backups_verify(struct daemon *d, const char *app, const char *addon, const char *id,
			      json_t **result, struct miren_error *err)
{
	*result = NULL;
	const struct addon_def *def;
	enum miren_err rc = engine_of(d, app, addon, &def, err);
	if (rc)
		return rc;
	struct bstore *bs = daemon_bstore(d);
	if (!bs)
		return miren_error_set(err, MIREN_EUNAVAIL, "the backup store is not open");
	char *bid = NULL;
	rc = id && *id ? backup_of(bs, app, addon, id, err)
		       : newest_backup(bs, app, addon, &bid, err);
	if (rc)
		return rc;
	if (!bid)
		bid = xstrdup(id);
	struct bstore_reader *r = NULL;
	rc = bstore_read_open(bs, bid, &r, err);
	if (!rc) {
		struct scratch_source src = { bstore_source, r, true };
		rc = verify_source(d, def, app, addon, &src, result, err);
		const struct miren_error *why = bstore_read_error(r);
		struct miren_error chunk = why ? *why : (struct miren_error){ 0 };
		bstore_read_close(r);
		if (rc && why)
			rc = chunk_error(bs, &chunk, err);
	}
	if (!rc) {
		json_object_set_new(*result, "id", json_string(bid));
		json_object_set_new(*result, "app", json_string(app));
		json_object_set_new(*result, "addon", json_string(addon));
	}
	/* Recorded unless nothing was read (the store could not be asked). */
	if (rc != MIREN_EUNAVAIL)
		backups_verify_record(d, app, addon, bid, rc, *result, err);
	free(bid);
	return rc;
}

static char *key_of(const char *app, const char *addon)
{
	return xasprintf("verify:%s/%s", app, addon);
}

static json_t *setting_json(struct daemon *d, const char *key)
{
	char *v = NULL;
	json_t *o = NULL;
	if (store_setting_get(d->store, key, &v, NULL) == 0 && v)
		o = json_loads(v, 0, NULL);
	free(v);
	if (o && !json_is_object(o)) {
		json_decref(o);
		o = NULL;
	}
	return o;
}

static void setting_put(struct daemon *d, const char *key, const json_t *o)
{
	char *v = json_dumps(o, JSON_COMPACT);
	struct miren_error why;
	if (store_setting_set(d->store, key, v, &why) != 0)
		log_error("cannot record %s: %s", key, why.message);
	free(v);
}

void backups_verify_record(struct daemon *d, const char *app, const char *addon, const char *id,
			   enum miren_err rc, const json_t *result, const struct miren_error *why)
{
	json_int_t at = (json_int_t)time(NULL);
	json_t *one = rc ? json_pack("{s:s, s:b, s:I, s:s}", "id", id, "ok", 0, "at", at, "message",
				     why->message)
			 : json_pack("{s:s, s:b, s:I, s:O}", "id", id, "ok", 1, "at", at, "seconds",
				     json_object_get(result, "seconds")
					     ? json_object_get(result, "seconds")
					     : json_null());
	char *bkey = xasprintf("verify:backup:%s", id);
	setting_put(d, bkey, one);
	free(bkey);
	char *key = key_of(app, addon);
	json_t *rec = setting_json(d, key);
	if (!rec)
		rec = json_object();
	json_object_set(rec, rc ? "last_failure" : "last_verified", one);
	json_object_set(rec, "last", one);
	setting_put(d, key, rec);
	json_decref(rec);
	free(key);
	json_decref(one);
	if (rc)
		log_warn("backup %s of %s/%s failed verification: %s", id, app, addon,
			 why->message);
	else
		log_info("backup %s of %s/%s verified", id, app, addon);
}

json_t *backups_verification(struct daemon *d, const char *app, const char *addon)
{
	char *key = key_of(app, addon);
	json_t *rec = setting_json(d, key);
	free(key);
	if (!rec)
		rec = json_object();
	static const char *const keys[] = { "last_verified", "last_failure", "last", NULL };
	for (const char *const *k = keys; *k; k++)
		if (!json_object_get(rec, *k))
			json_object_set_new(rec, *k, json_null());
	return rec;
}

json_t *backups_verification_of(struct daemon *d, const char *id)
{
	char *key = xasprintf("verify:backup:%s", id);
	json_t *o = setting_json(d, key);
	free(key);
	return o;
}

bool backups_verified(struct daemon *d, const char *id)
{
	json_t *o = backups_verification_of(d, id);
	bool ok = json_is_true(json_object_get(o, "ok"));
	json_decref(o);
	return ok;
}

void backups_verification_forget(struct daemon *d, const char *id)
{
	char *key = xasprintf("verify:backup:%s", id);
	struct miren_error why;
	if (store_setting_set(d->store, key, NULL, &why) != 0)
		log_warn("cannot forget %s: %s", key, why.message);
	free(key);
}
