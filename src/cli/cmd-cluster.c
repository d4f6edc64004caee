/* miren cluster add|list|use|remove: the remote servers this CLI talks to
 * (lib/api/clusters.c keeps them in clusters.toml). */
#include "api/client.h"
#include "api/clusters.h"
#include "cli/cli.h"
#include "util/names.h"
#include "util/strbuf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Loads clusters.toml into *all and its path into *path (caller frees
 * both); prints the error and returns its exit code when it is broken. */
static int load(struct clusters *all, char **path)
{
	struct miren_error err;
	*path = clusters_path();
	if (clusters_load(*path, all, &err))
		return cli_fail(&err);
	return CLI_OK;
}

static int save(const char *path, const struct clusters *all)
{
	struct miren_error err;
	if (clusters_save(path, all, &err))
		return cli_fail(&err);
	return CLI_OK;
}

/* The token of FILE: its text without the final newline and blanks. */
static int read_token(const char *file, char **token)
{
	struct strbuf sb;
	strbuf_init(&sb, 4096);
	enum miren_err rc = strbuf_read_file(&sb, file);
	if (rc) {
		strbuf_release(&sb);
		return cli_failf(rc,
				 "give the file 'miren auth token create' printed the token into",
				 "cannot read the token file '%s': %s", file,
				 rc == MIREN_ETOOBIG ? "it is too big" : miren_strerror(rc));
	}
	strbuf_trim_end(&sb);
	struct miren_error err;
	if (clusters_check_token(sb.buf, &err)) {
		explicit_bzero(sb.buf, sb.len);
		strbuf_release(&sb);
		return cli_fail(&err);
	}
	*token = strbuf_detach(&sb, NULL);
	return CLI_OK;
}

/* Whether the server at url is the one to trust: its fingerprint is the
 * one given, or the person at the terminal says so. */
static int trust(const char *name, const char *url, const char *given, const char *seen)
{
	if (given && strcmp(given, seen))
		return cli_failf(MIREN_EAUTH,
				 "check the fingerprint with 'miren server info' on the server; "
				 "nothing was added",
				 "the server at %s presents the certificate %s, not the given %s",
				 url, seen, given);
	if (given)
		return CLI_OK;
	if (!isatty(STDIN_FILENO)) {
		cli_failf(MIREN_EINVAL,
			  "compare it with what 'miren server info' shows on the server, then "
			  "pass it with --fingerprint",
			  "not a terminal: cannot ask whether to trust the certificate %s of %s",
			  seen, url);
		return CLI_USAGE;
	}
	fprintf(stderr,
		"The server at %s presents the certificate\n  %s\n"
		"Compare it with what 'miren server info' shows on the server.\n",
		url, seen);
	if (!cli_confirm("Trust it and add cluster '%s'?", name))
		return cli_failf(MIREN_EINTERNAL, NULL, "not trusted: cluster '%s' not added",
				 name);
	return CLI_OK;
}

static int add(struct cli *cli, int argc, char **argv)
{
	(void)argc;
	const char *name = argv[0], *given = cli_str(cli, "fingerprint");
	struct miren_error err;
	struct clusters all = { 0 };
	struct cluster cl = { 0 };
	char *path = NULL;
	json_t *version = NULL;
	int rc = CLI_OK;
	if (name_check_cluster(name, &err) || clusters_check_url(argv[1], &cl.url, &err) ||
	    (given && clusters_check_fingerprint(given, &err))) {
		rc = cli_fail(&err);
		goto out;
	}
	cl.name = xstrdup(name);
	if ((rc = load(&all, &path)))
		goto out;
	if (clusters_find(&all, name)) {
		rc = cli_failf(MIREN_EEXISTS, "remove it first with 'miren cluster remove NAME'",
			       "cluster '%s' exists already", name);
		goto out;
	}
	if ((rc = read_token(cli_str(cli, "token-file"), &cl.token)))
		goto out;
	if (api_fingerprint(cl.url, cl.fingerprint, &err)) {
		rc = cli_fail(&err);
		goto out;
	}
	if ((rc = trust(name, cl.url, given, cl.fingerprint)))
		goto out;
	/* The token must work before it is kept. */
	struct api_target t;
	clusters_target_of(&cl, &t);
	enum miren_err arc = api_call_json(&t, "GET", "/v1/version", NULL, &version, &err);
	api_target_release(&t);
	if (arc) {
		rc = cli_fail(&err);
		goto out;
	}
	clusters_add(&all, &cl);
	if ((rc = save(path, &all)))
		goto out;
	printf("Added cluster '%s' (%s, miren %s)\n", name, cl.url,
	       json_string_value(json_object_get(version, "version"))
		       ? json_string_value(json_object_get(version, "version"))
		       : "?");
	printf("Use it with 'miren cluster use %s', or --cluster %s on a command\n", name, name);
out:
	json_decref(version);
	free(cl.name);
	free(cl.url);
	if (cl.token) {
		explicit_bzero(cl.token, strlen(cl.token));
		free(cl.token);
	}
	clusters_release(&all);
	free(path);
	return rc;
}

static const struct cli_optdef add_options[] = {
	{ .name = "token-file",
	  .kind = CLI_OPT_STRING,
	  .value = "FILE",
	  .help = "the file holding the token ('miren auth token create'\nprinted it)",
	  .required = "which token? give --token-file FILE" },
	{ .name = "fingerprint",
	  .kind = CLI_OPT_STRING,
	  .value = "SHA256:...",
	  .help = "the server's certificate fingerprint ('miren server info'\non the server); "
		  "without it you are asked on a terminal" },
	{ 0 },
};

const struct cmd_entry cmd_cluster_add_entry = {
	.name = "cluster add",
	.summary = "add a remote server to talk to (its address, token and certificate)",
	.operands = "NAME URL",
	.min_operands = 2,
	.max_operands = 2,
	.operands_missing = "give a NAME and the server's https://HOST:PORT",
	.operands_help = "  NAME  what you call the cluster (--cluster NAME, 'miren cluster use')\n"
			 "  URL   the server's HTTPS address: https://HOST:PORT\n"
			 "        ('miren server --listen ADDR:PORT' there)\n",
	.options = add_options,
	.help = "Connects to the server, reads the fingerprint of its certificate and pins\n"
		"it: from now on a server that presents another certificate is refused.\n"
		"With --fingerprint the two must match; without it the fingerprint is shown\n"
		"and you are asked whether to trust it (not on a terminal: refused).  The\n"
		"token is checked with one request before the cluster is kept in\n"
		"$XDG_CONFIG_HOME/miren/clusters.toml (~/.config/miren; mode 0600: it\n"
		"holds the token).  Adding does not select the cluster: see 'miren cluster\n"
		"use' and --cluster.\n",
	.exec = add,
};

static int list(struct cli *cli, int argc, char **argv)
{
	(void)argc;
	(void)argv;
	struct clusters all;
	char *path;
	int rc = load(&all, &path);
	if (rc)
		goto out;
	json_t *j = json_array();
	for (size_t i = 0; i < all.n; i++) {
		const struct cluster *cl = &all.items[i];
		json_array_append_new(j,
				      json_pack("{s:s, s:s, s:s, s:b}", "name", cl->name, "url",
						cl->url, "fingerprint", cl->fingerprint, "current",
						all.current && !strcmp(all.current, cl->name)));
	}
	if (cli_json_output(cli, j))
		goto out;
	json_decref(j);
	if (!all.n) {
		printf("No clusters; add one with 'miren cluster add NAME https://HOST:PORT "
		       "--token-file FILE'\n");
		goto out;
	}
	struct cli_table *t = cli_table_new(4, "CURRENT", "NAME", "URL", "FINGERPRINT");
	for (size_t i = 0; i < all.n; i++) {
		const struct cluster *cl = &all.items[i];
		bool cur = all.current && !strcmp(all.current, cl->name);
		cli_table_row(t, cur ? "*" : "", cl->name, cl->url, cl->fingerprint);
	}
	cli_table_print(t);
out:
	clusters_release(&all);
	free(path);
	return rc;
}

const struct cmd_entry cmd_cluster_list_entry = {
	.name = "cluster list",
	.summary = "list the clusters (never their tokens), the current one marked",
	.help = "Lists the clusters of 'miren cluster add': name, address and pinned\n"
		"certificate fingerprint; '*' marks the current one ('miren cluster use').\n",
	.json_help = "print the list as JSON",
	.flags = CMD_JSON,
	.exec = list,
};

static int use(struct cli *cli, int argc, char **argv)
{
	bool local = cli_flag(cli, "local");
	if (local == (argc > 0))
		return cli_usage_error(cli, local ? "give a NAME or --local, not both"
						  : "which cluster? give its NAME, or --local");
	struct clusters all;
	char *path;
	int rc = load(&all, &path);
	if (rc)
		goto out;
	const struct cluster *cl = local ? NULL : clusters_find(&all, argv[0]);
	if (!local && !cl) {
		rc = cli_failf(MIREN_ENOTFOUND, "run 'miren cluster list' to see the clusters",
			       "no cluster '%s'", argv[0]);
		goto out;
	}
	free(all.current);
	all.current = local ? NULL : xstrdup(cl->name);
	if ((rc = save(path, &all)))
		goto out;
	if (local)
		printf("Using the local server\n");
	else
		printf("Using cluster '%s' (%s)\n", cl->name, cl->url);
out:
	clusters_release(&all);
	free(path);
	return rc;
}

static const struct cli_optdef use_options[] = {
	{ .name = "local",
	  .kind = CLI_OPT_FLAG,
	  .help = "talk to the local server again (its unix socket)" },
	{ 0 },
};

const struct cmd_entry cmd_cluster_use_entry = {
	.name = "cluster use",
	.summary = "make a cluster the one commands talk to (or the local server again)",
	.operands = "[NAME]",
	.min_operands = 0,
	.max_operands = 1,
	.operands_help = "  NAME  a cluster of 'miren cluster list'\n",
	.options = use_options,
	.help = "Commands then talk to that cluster unless --cluster or $MIREN_CLUSTER\n"
		"names another; with --local they talk to the local server again.\n",
	.exec = use,
};

static int remove_cluster(struct cli *cli, int argc, char **argv)
{
	(void)cli;
	(void)argc;
	struct clusters all;
	char *path;
	int rc = load(&all, &path);
	if (rc)
		goto out;
	bool was_current = all.current && !strcmp(all.current, argv[0]);
	if (!clusters_remove(&all, argv[0])) {
		rc = cli_failf(MIREN_ENOTFOUND, "run 'miren cluster list' to see the clusters",
			       "no cluster '%s'", argv[0]);
		goto out;
	}
	if ((rc = save(path, &all)))
		goto out;
	printf("Removed cluster '%s'%s\n", argv[0],
	       was_current ? "; commands talk to the local server again" : "");
out:
	clusters_release(&all);
	free(path);
	return rc;
}

const struct cmd_entry cmd_cluster_remove_entry = {
	.name = "cluster remove",
	.summary = "forget a cluster (its address and token)",
	.operands = "NAME",
	.min_operands = 1,
	.max_operands = 1,
	.operands_missing = "which cluster? give its NAME ('miren cluster list')",
	.help = "Removes the cluster from clusters.toml, its token with it; the token\n"
		"itself stays valid on the server until 'miren auth token revoke'.\n",
	.exec = remove_cluster,
};
