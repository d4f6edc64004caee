/*
 * Cluster contexts: the remote servers the CLI knows (miren cluster add),
 * kept in $XDG_CONFIG_HOME/miren/clusters.toml, and the choice of the
 * server a command talks to.
 *
 * The file (mode 0600: it holds tokens; written whole through a temporary
 * file and a rename, so a crash leaves the old file or the new one):
 *
 *   current = "prod"              # optional: the cluster 'miren cluster use' chose
 *
 *   [clusters.prod]
 *   url = "https://192.0.2.10:8443"
 *   fingerprint = "SHA256:..."    # the pinned certificate (see api/tls.h)
 *   token = "miren_..."           # a secret: never printed
 *
 * Which server a command talks to (clusters_target): --cluster NAME, else
 * --socket PATH (both: the caller's usage error), else $MIREN_CLUSTER,
 * else the current cluster, else the local unix socket ($MIREN_SOCKET,
 * else DATA_DIR/miren.sock).
 */
#ifndef MIREN_API_CLUSTERS_H
#define MIREN_API_CLUSTERS_H

#include "api/client.h"
#include "api/tls.h"
#include "util/err.h"

#include <stdbool.h>
#include <stddef.h>

struct cluster {
	char *name;
	char *url;   /* "https://HOST:PORT" (clusters_check_url's form) */
	char *token; /* a secret: never in output, errors or logs */
	char fingerprint[TLS_FINGERPRINT_MAX];
};

struct clusters {
	struct cluster *items; /* in the file's order */
	size_t n;
	char *current; /* NULL: none (the local server) */
};

/* $XDG_CONFIG_HOME/miren/clusters.toml (util/paths.h). Caller frees. */
char *clusters_path(void);

/*
 * Parses the text of clusters.toml (where: its path, for messages) into
 * *out (release with clusters_release).  Errors (MIREN_EINVAL, "PATH:LINE:COL:
 * ..."): not TOML, a field of the wrong type, a cluster without url, token
 * or fingerprint, an invalid name, URL, token or fingerprint, a current
 * cluster that is not listed.  Unknown keys are ignored (a later version's).
 * On error *out is empty.
 */
enum miren_err clusters_parse(const char *text, size_t len, const char *where, struct clusters *out,
			      struct miren_error *err);
/* The TOML text of c (what clusters_parse reads back). Caller frees. */
char *clusters_format(const struct clusters *c);

/* Reads path into *out; a missing file is no clusters.  MIREN_EIO when it
 * cannot be read, else as clusters_parse. */
enum miren_err clusters_load(const char *path, struct clusters *out, struct miren_error *err);
/* Writes c to path (its directory made 0700 when missing): the whole file
 * anew, mode 0600, atomically.  MIREN_EIO on failure, path unchanged. */
enum miren_err clusters_save(const char *path, const struct clusters *c, struct miren_error *err);
void clusters_release(struct clusters *c);

/* The cluster called name, or NULL. */
struct cluster *clusters_find(const struct clusters *c, const char *name);
/* Adds a copy of cl (its name not yet listed). */
void clusters_add(struct clusters *c, const struct cluster *cl);
/* Removes the cluster called name (and clears current when it was that
 * one); false when there is none. */
bool clusters_remove(struct clusters *c, const char *name);

/* Checks a server URL: https, a host, no user, path, query or fragment.
 * Sets *normalized to "https://HOST:PORT" (port 443 when none was given;
 * caller frees).  MIREN_EINVAL with err filled otherwise. */
enum miren_err clusters_check_url(const char *url, char **normalized, struct miren_error *err);
/* "SHA256:" and 43 base64 digits; MIREN_EINVAL otherwise. */
enum miren_err clusters_check_fingerprint(const char *fp, struct miren_error *err);
/* 1..1024 printable ASCII characters without spaces (it goes into a
 * header); MIREN_EINVAL otherwise, with no part of it in the message. */
enum miren_err clusters_check_token(const char *token, struct miren_error *err);

/*
 * Fills *t (release with api_target_release) with the server a command
 * talks to, by the order above: cluster_flag and socket_flag are the
 * command line's --cluster and --socket (NULL: not given).  A name that
 * is not a cluster name is MIREN_EINVAL, one that is not in the file
 * MIREN_ENOTFOUND (the message says where the name came from); a broken
 * file as clusters_load.
 */
enum miren_err clusters_target(const char *cluster_flag, const char *socket_flag,
			       struct api_target *t, struct miren_error *err);
/* The target of cluster cl (copies). */
void clusters_target_of(const struct cluster *cl, struct api_target *t);

#endif
