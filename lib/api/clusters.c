/* Cluster contexts and clusters.toml; see clusters.h. */
#include "api/clusters.h"
#include "toml/toml.h"
#include "util/fs.h"
#include "util/names.h"
#include "util/paths.h"
#include "util/strbuf.h"

#include <curl/curl.h>
#include <errno.h>
#include <libgen.h>
#include <stdlib.h>
#include <string.h>

#define CLUSTERS_FILE_MAX (1u << 20)
#define TOKEN_MAX 1024

char *clusters_path(void)
{
	char *dir = paths_config_dir();
	char *p = fs_join(dir, "clusters.toml");
	free(dir);
	return p;
}

static void cluster_free_fields(struct cluster *cl)
{
	free(cl->name);
	free(cl->url);
	if (cl->token) {
		explicit_bzero(cl->token, strlen(cl->token));
		free(cl->token);
	}
}

void clusters_release(struct clusters *c)
{
	for (size_t i = 0; i < c->n; i++)
		cluster_free_fields(&c->items[i]);
	free(c->items);
	free(c->current);
	*c = (struct clusters){ 0 };
}

struct cluster *clusters_find(const struct clusters *c, const char *name)
{
	for (size_t i = 0; i < c->n; i++)
		if (!strcmp(c->items[i].name, name))
			return &c->items[i];
	return NULL;
}

void clusters_add(struct clusters *c, const struct cluster *cl)
{
	c->items = xrealloc(c->items, (c->n + 1) * sizeof(*c->items));
	struct cluster *n = &c->items[c->n++];
	*n = (struct cluster){ .name = xstrdup(cl->name),
			       .url = xstrdup(cl->url),
			       .token = xstrdup(cl->token) };
	memcpy(n->fingerprint, cl->fingerprint, sizeof(n->fingerprint));
}

bool clusters_remove(struct clusters *c, const char *name)
{
	struct cluster *cl = clusters_find(c, name);
	if (!cl)
		return false;
	if (c->current && !strcmp(c->current, name)) {
		free(c->current);
		c->current = NULL;
	}
	cluster_free_fields(cl);
	size_t i = (size_t)(cl - c->items);
	memmove(cl, cl + 1, (c->n - i - 1) * sizeof(*cl));
	c->n--;
	return true;
}

enum miren_err clusters_check_url(const char *url, char **normalized, struct miren_error *err)
{
	CURLU *u = curl_url();
	char *scheme = NULL, *host = NULL, *port = NULL, *path = NULL, *query = NULL, *frag = NULL,
	     *user = NULL;
	enum miren_err rc = MIREN_EINVAL;
	*normalized = NULL;
	if (!u || curl_url_set(u, CURLUPART_URL, url, 0) ||
	    curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) ||
	    curl_url_get(u, CURLUPART_HOST, &host, 0)) {
		miren_error_set(err, rc, "'%.200s' is not a URL", url);
		miren_error_hint(err, "give the server's address as https://HOST:PORT");
		goto out;
	}
	curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT);
	curl_url_get(u, CURLUPART_PATH, &path, 0);
	curl_url_get(u, CURLUPART_QUERY, &query, 0);
	curl_url_get(u, CURLUPART_FRAGMENT, &frag, 0);
	curl_url_get(u, CURLUPART_USER, &user, 0);
	if (strcmp(scheme, "https")) {
		miren_error_set(err, rc, "'%.200s' is not an https:// URL", url);
		miren_error_hint(err, "the server's API is served over HTTPS only "
				      "(miren server --listen): give https://HOST:PORT");
		goto out;
	}
	if (user || query || frag || (path && strcmp(path, "/"))) {
		miren_error_set(err, rc, "'%.200s' is more than a server's address", url);
		miren_error_hint(err, "give only https://HOST:PORT (no user, path or query)");
		goto out;
	}
	*normalized = xasprintf("https://%s:%s", host, port);
	rc = 0;
out:
	curl_free(scheme);
	curl_free(host);
	curl_free(port);
	curl_free(path);
	curl_free(query);
	curl_free(frag);
	curl_free(user);
	curl_url_cleanup(u);
	return rc;
}

enum miren_err clusters_check_fingerprint(const char *fp, struct miren_error *err)
{
	bool ok = !strncmp(fp, "SHA256:", 7) && strlen(fp) == TLS_FINGERPRINT_MAX - 1;
	for (const char *p = fp + 7; ok && *p; p++)
		ok = (*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') ||
		     (*p >= '0' && *p <= '9') || *p == '+' || *p == '/';
	if (ok)
		return 0;
	miren_error_set(err, MIREN_EINVAL, "'%.80s' is not a certificate fingerprint", fp);
	miren_error_hint(err, "a fingerprint is SHA256: and 43 base64 digits, as "
			      "'miren server info' shows it on the server");
	return MIREN_EINVAL;
}

enum miren_err clusters_check_token(const char *token, struct miren_error *err)
{
	size_t n = strlen(token);
	bool ok = n > 0 && n <= TOKEN_MAX;
	for (size_t i = 0; ok && i < n; i++)
		ok = token[i] > ' ' && token[i] < 0x7f;
	if (ok)
		return 0;
	miren_error_set(err, MIREN_EINVAL, "the token is not valid (%s)",
			n == 0          ? "it is empty"
			: n > TOKEN_MAX ? "it is too long"
					: "it holds a space, a control or a non-ASCII character");
	miren_error_hint(err, "give a token as 'miren auth token create' printed it");
	return MIREN_EINVAL;
}

/* One string field of a cluster's table, checked by check (may be NULL). */
static enum miren_err take_string(const struct toml_kv *kv, const char *where, const char *cname,
				  char **out, struct miren_error *err)
{
	if (kv->value->type != TOML_STRING || strlen(kv->value->u.str.ptr) != kv->value->u.str.len)
		return miren_error_set(err, MIREN_EINVAL,
				       "%s:%d:%d: cluster '%s': %s must be a string", where,
				       kv->pos.line, kv->pos.col, cname, kv->key);
	free(*out);
	*out = xstrdup(kv->value->u.str.ptr);
	return 0;
}

/* Prefixes err's message with the position of the cluster's table. */
static enum miren_err at(struct miren_error *err, const char *where, struct toml_pos pos)
{
	char *msg = xasprintf("%s:%d:%d: %s", where, pos.line, pos.col, err->message);
	snprintf(err->message, sizeof(err->message), "%s", msg);
	free(msg);
	return err->code;
}

static enum miren_err parse_cluster(const struct toml_kv *kv, const char *where,
				    struct clusters *out, struct miren_error *err)
{
	const struct toml_value *t = kv->value;
	struct cluster cl = { .name = xstrndup(kv->key, kv->key_len) };
	char *fp = NULL, *url = NULL;
	enum miren_err rc = 0;
	if (t->type != TOML_TABLE) {
		rc = miren_error_set(err, MIREN_EINVAL, "%s:%d:%d: clusters.%s must be a table",
				     where, kv->pos.line, kv->pos.col, cl.name);
		goto out;
	}
	if (strlen(cl.name) != kv->key_len || name_check_cluster(cl.name, err)) {
		rc = at(err, where, kv->pos);
		goto out;
	}
	for (size_t i = 0; !rc && i < t->u.table.len; i++) {
		const struct toml_kv *f = &t->u.table.items[i];
		if (toml_key_is(f, "url"))
			rc = take_string(f, where, cl.name, &url, err);
		else if (toml_key_is(f, "token"))
			rc = take_string(f, where, cl.name, &cl.token, err);
		else if (toml_key_is(f, "fingerprint"))
			rc = take_string(f, where, cl.name, &fp, err);
	}
	if (rc)
		goto out;
	if (!url || !cl.token || !fp) {
		rc = miren_error_set(err, MIREN_EINVAL, "%s:%d:%d: cluster '%s' has no %s", where,
				     kv->pos.line, kv->pos.col, cl.name,
				     !url        ? "url"
				     : !cl.token ? "token"
						 : "fingerprint");
		goto out;
	}
	if (clusters_check_url(url, &cl.url, err) || clusters_check_token(cl.token, err) ||
	    clusters_check_fingerprint(fp, err)) {
		rc = at(err, where, kv->pos);
		goto out;
	}
	snprintf(cl.fingerprint, sizeof(cl.fingerprint), "%s", fp);
	clusters_add(out, &cl);
out:
	free(url);
	free(fp);
	cluster_free_fields(&cl);
	return rc;
}

enum miren_err clusters_parse(const char *text, size_t len, const char *where, struct clusters *out,
			      struct miren_error *err)
{
	*out = (struct clusters){ 0 };
	struct toml_error terr;
	struct toml_value *root = toml_parse(text, len, &terr);
	if (!root)
		return miren_error_set(err, MIREN_EINVAL, "%s:%d:%d: %s", where, terr.line,
				       terr.col, terr.reason);
	enum miren_err rc = 0;
	const struct toml_kv *cur = toml_get_kv(root, "current");
	const struct toml_kv *all = toml_get_kv(root, "clusters");
	if (all && all->value->type != TOML_TABLE)
		rc = miren_error_set(err, MIREN_EINVAL, "%s:%d:%d: clusters must be a table", where,
				     all->pos.line, all->pos.col);
	for (size_t i = 0; !rc && all && i < all->value->u.table.len; i++)
		rc = parse_cluster(&all->value->u.table.items[i], where, out, err);
	if (!rc && cur) {
		const struct toml_value *v = cur->value;
		if (v->type != TOML_STRING || strlen(v->u.str.ptr) != v->u.str.len)
			rc = miren_error_set(err, MIREN_EINVAL,
					     "%s:%d:%d: current must be a string", where,
					     cur->pos.line, cur->pos.col);
		else if (!clusters_find(out, v->u.str.ptr))
			rc = miren_error_set(err, MIREN_EINVAL,
					     "%s:%d:%d: the current cluster '%.80s' is not listed",
					     where, cur->pos.line, cur->pos.col, v->u.str.ptr);
		else
			out->current = xstrdup(v->u.str.ptr);
	}
	toml_free(root);
	if (rc) {
		miren_error_hint(err, "fix the file, or remove it and add the clusters again "
				      "with 'miren cluster add'");
		clusters_release(out);
	}
	return rc;
}

/* s as a TOML basic string.  The values are checked (names, URLs, tokens
 * and fingerprints are printable ASCII), but quotes and backslashes are
 * escaped all the same. */
static void add_quoted(struct strbuf *sb, const char *s)
{
	strbuf_addch(sb, '"');
	for (; *s; s++) {
		if (*s == '"' || *s == '\\')
			strbuf_addch(sb, '\\');
		if ((unsigned char)*s < ' ' || *s == 0x7f)
			strbuf_addf(sb, "\\u%04x", (unsigned char)*s);
		else
			strbuf_addch(sb, *s);
	}
	strbuf_adds(sb, "\"\n");
}

char *clusters_format(const struct clusters *c)
{
	struct strbuf sb = STRBUF_INIT;
	strbuf_adds(&sb, "# The clusters of 'miren cluster add' (written by miren: it holds\n"
			 "# tokens, keep it 0600).\n");
	if (c->current) {
		strbuf_adds(&sb, "current = ");
		add_quoted(&sb, c->current);
	}
	for (size_t i = 0; i < c->n; i++) {
		const struct cluster *cl = &c->items[i];
		strbuf_addf(&sb, "\n[clusters.%s]\nurl = ", cl->name);
		add_quoted(&sb, cl->url);
		strbuf_adds(&sb, "fingerprint = ");
		add_quoted(&sb, cl->fingerprint);
		strbuf_adds(&sb, "token = ");
		add_quoted(&sb, cl->token);
	}
	return strbuf_detach(&sb, NULL);
}

enum miren_err clusters_load(const char *path, struct clusters *out, struct miren_error *err)
{
	*out = (struct clusters){ 0 };
	struct strbuf sb;
	strbuf_init(&sb, CLUSTERS_FILE_MAX);
	enum miren_err rc = strbuf_read_file(&sb, path);
	if (rc == MIREN_ENOTFOUND) {
		rc = 0;
	} else if (rc) {
		miren_error_set(err, rc == MIREN_ETOOBIG ? MIREN_EINVAL : MIREN_EIO,
				"cannot read '%s': %s", path,
				rc == MIREN_ETOOBIG ? "it is too big" : strerror(errno));
		rc = err->code;
	} else {
		rc = clusters_parse(sb.buf, sb.len, path, out, err);
	}
	explicit_bzero(sb.buf, sb.len);
	strbuf_release(&sb);
	return rc;
}

enum miren_err clusters_save(const char *path, const struct clusters *c, struct miren_error *err)
{
	char *copy = xstrdup(path);
	const char *dir = dirname(copy);
	enum miren_err rc = fs_mkdir_p(dir, 0700);
	if (rc)
		miren_error_set(err, MIREN_EIO, "cannot make '%s': %s", dir, strerror(errno));
	char *text = rc ? NULL : clusters_format(c);
	if (text && fs_write_atomic(path, text, strlen(text), 0600))
		rc = miren_error_set(err, MIREN_EIO, "cannot write '%s': %s", path,
				     strerror(errno));
	if (text) {
		explicit_bzero(text, strlen(text));
		free(text);
	}
	free(copy);
	return rc;
}

void clusters_target_of(const struct cluster *cl, struct api_target *t)
{
	*t = (struct api_target){ .cluster = xstrdup(cl->name),
				  .url = xstrdup(cl->url),
				  .token = xstrdup(cl->token) };
	memcpy(t->fingerprint, cl->fingerprint, sizeof(t->fingerprint));
}

enum miren_err clusters_target(const char *cluster_flag, const char *socket_flag,
			       struct api_target *t, struct miren_error *err)
{
	*t = (struct api_target){ 0 };
	const char *env = getenv("MIREN_CLUSTER");
	const char *name = cluster_flag;
	const char *how = "--cluster";
	if (!name && !socket_flag && env && *env) {
		name = env;
		how = "MIREN_CLUSTER";
	}
	if (!name && socket_flag) {
		t->socket = paths_socket(socket_flag);
		return 0;
	}
	if (name && name_check_cluster(name, err)) {
		miren_error_hint(err, "%s names a cluster of 'miren cluster list'", how);
		return MIREN_EINVAL;
	}
	char *path = clusters_path();
	struct clusters all;
	enum miren_err rc = clusters_load(path, &all, err);
	if (rc)
		goto out;
	if (!name) {
		name = all.current;
		how = "the current cluster ('miren cluster use')";
	}
	if (!name) {
		t->socket = paths_socket(NULL);
		goto out;
	}
	const struct cluster *cl = clusters_find(&all, name);
	if (!cl) {
		rc = miren_error_set(err, MIREN_ENOTFOUND, "no cluster '%.80s' (from %s)", name,
				     how);
		miren_error_hint(err, "run 'miren cluster list' to see the clusters, "
				      "'miren cluster add' to add one");
		goto out;
	}
	clusters_target_of(cl, t);
out:
	clusters_release(&all);
	free(path);
	return rc;
}
