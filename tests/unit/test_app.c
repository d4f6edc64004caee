/* Unit tests of lib/app: app.toml schema, env resolution, JSON round trip,
 * and lib/store against a real SQLite file. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "app/config.h"
#include "app/env.h"
#include "store/store.h"
#include "util/compiler.h"
#include "util/duration.h"
#include "util/fs.h"

static struct app_config *parse_ok(const char *text)
{
	struct app_config *cfg = NULL;
	struct miren_error err;
	int rc = app_config_parse(text, strlen(text), "app.toml", "dir-name", &cfg, &err);
	if (rc)
		fail_msg("unexpected error: %s", err.message);
	return cfg;
}

static void parse_err(const char *text, const char *want)
{
	struct app_config *cfg = NULL;
	struct miren_error err;
	int rc = app_config_parse(text, strlen(text), "app.toml", "dir-name", &cfg, &err);
	assert_int_equal(rc, MIREN_EINVAL);
	assert_null(cfg);
	if (!strstr(err.message, want))
		fail_msg("error '%s' does not contain '%s'", err.message, want);
}

static void test_config_full(void **state MIREN_UNUSED)
{
	struct app_config *cfg = parse_ok("name = \"myapp\"\n"
					  "[[env]]\nkey = \"A\"\nvalue = \"1\"\n"
					  "[[env]]\nkey = \"S\"\nvalue = \"x\"\nsensitive = true\n"
					  "description = \"a secret\"\n"
					  "[services.web]\ncommand = \"npm start\"\nport = 3000\n"
					  "[[services.web.env]]\nkey = \"B\"\nvalue = \"2\"\n"
					  "[services.worker]\ncommand = \"run\"\n"
					  "[addons.miren-postgresql]\nvariant = \"small\"\n");
	assert_string_equal(cfg->name, "myapp");
	assert_int_equal(cfg->n_env, 2);
	assert_true(cfg->env[1].sensitive);
	assert_string_equal(cfg->env[1].description, "a secret");
	assert_int_equal(cfg->n_services, 2);
	assert_string_equal(cfg->services[0].name, "web");
	assert_int_equal(cfg->services[0].port, 3000);
	assert_int_equal(cfg->services[0].n_env, 1);
	assert_int_equal(cfg->services[1].port, 0);
	assert_int_equal(cfg->n_addons, 1);
	assert_string_equal(cfg->addons[0].name, "miren-postgresql");
	assert_string_equal(cfg->addons[0].variant, "small");
	assert_null(cfg->addons[0].version);
	assert_int_equal(cfg->n_warnings, 0);

	/* JSON round trip keeps everything. */
	json_t *j = app_config_to_json(cfg);
	struct app_config *back = app_config_from_json(j);
	assert_non_null(back);
	json_t *j2 = app_config_to_json(back);
	assert_true(json_equal(j, j2));
	json_decref(j);
	json_decref(j2);
	app_config_free(back);
	app_config_free(cfg);
}

static void test_config_fallback_and_warnings(void **state MIREN_UNUSED)
{
	struct app_config *cfg = parse_ok(
		"colour = 1\n[services.web]\ncommand = \"x\"\nreplicas = 3\n");
	assert_string_equal(cfg->name, "dir-name");
	assert_int_equal(cfg->n_warnings, 2);
	assert_string_equal(cfg->warnings[0], "app.toml:1: unknown key 'colour'");
	assert_string_equal(cfg->warnings[1],
			    "app.toml:4: unknown key 'replicas' in [services.web]");
	app_config_free(cfg);
}

static void test_config_errors(void **state MIREN_UNUSED)
{
	parse_err("name = 1\n", "app.toml:1:8: 'name' must be a string, not an integer");
	parse_err("name = \"x\"\n[services.web]\n", "is missing the required 'command'");
	parse_err("[services.web]\ncommand = \"\"\n", "'command' in [services.web] is empty");
	parse_err("[services.web]\ncommand = \"x\"\nport = 0\n", "app.toml:3:8: 'port'");
	parse_err("[services.web]\ncommand = \"x\"\nport = \"80\"\n",
		  "must be an integer, not a string");
	parse_err("[services.Web]\ncommand = \"x\"\n", "invalid service name 'Web'");
	parse_err("[[env]]\nkey = \"A\"\n[[env]]\nkey = \"A\"\n", "env 'A' is declared twice");
	parse_err("[[env]]\nkey = \"1A\"\n", "invalid environment variable name");
	parse_err("env = \"x\"\n", "must be an array of tables");
	parse_err("[addons.pg]\nvariant = 3\n", "'variant' in [addons.pg] must be a string");
	parse_err("name = \"Bad\"\n", "invalid app name 'Bad'");
	parse_err("a = \n", "app.toml:1:");
	parse_err("name = \"a\\u0000b\"\n",
		  "app.toml:1:8: 'name' \"a\\u0000b\" holds a control character");
	parse_err("[[env]]\nkey = \"A\"\nvalue = \"a\\u0000b\"\n",
		  "app.toml:3:9: 'value' must not contain NUL");
	parse_err("[addons.pg]\nvariant = \"small\\n\"\n",
		  "app.toml:2:11: 'variant' in [addons.pg]");
	parse_err("[addons.pg]\nversion = \"15\\u0085\"\n",
		  "\"15\\u0085\" holds a control character");
	parse_err("[[env]]\nkey = \"A\\tB\"\n", "app.toml:2:7: 'key' in env entry \"A\\tB\"");
	/* A name refused by its rule is quoted escaped, never raw. */
	parse_err("[[env]]\nkey = \"A\\u001bB\"\n", "\"A\\u001bB\" holds a control character");
	parse_err("name = \"a\\u00e9\"\n", "invalid app name 'a\xc3\xa9'");
}

/*
 * Every key the schema reads, each spelt every way TOML allows.  A case is a
 * document in which @K@ stands for one key (key is its plain spelling): the
 * escape-equivalent spellings must give the same config as the plain one; a
 * spelling with a control character (NUL included) must be refused at the
 * key's line:column; "\x00" is not TOML; a literal string keeps "\u0000" as
 * six characters, so it must not be taken for the key; and the key written
 * twice, plainly and escaped, is a duplicate (for an array of tables
 * header: the same array).
 */
struct key_case {
	const char *key;
	const char *doc;
	enum { K_LINE, K_TABLE, K_AOT } kind; /* key = v / [..key..] / [[..key..]] */
};

static const struct key_case key_cases[] = {
	{ "name", "@K@ = \"myapp\"\n[services.web]\ncommand = \"run\"\n", K_LINE },
	{ "env", "name = \"myapp\"\n[[@K@]]\nkey = \"A\"\nvalue = \"1\"\n", K_AOT },
	{ "services", "name = \"myapp\"\n[@K@.web]\ncommand = \"run\"\n", K_TABLE },
	{ "addons", "name = \"myapp\"\n[@K@.miren-postgresql]\nvariant = \"small\"\n", K_TABLE },
#define ENV_ENTRY(prefix, k)                      \
	"name = \"myapp\"\n" prefix "[[" k "]]\n" \
	"key = \"A\"\nvalue = \"1\"\nsensitive = true\nrequired = true\ndescription = \"d\"\n"
	{ "key", ENV_ENTRY("", "env"), K_LINE },
	{ "value", ENV_ENTRY("", "env"), K_LINE },
	{ "sensitive", ENV_ENTRY("", "env"), K_LINE },
	{ "required", ENV_ENTRY("", "env"), K_LINE },
	{ "description", ENV_ENTRY("", "env"), K_LINE },
	{ "web", "name = \"myapp\"\n[services.@K@]\ncommand = \"run\"\n", K_TABLE },
	{ "command", "name = \"myapp\"\n[services.web]\ncommand = \"run\"\nport = 3000\n", K_LINE },
	{ "port", "name = \"myapp\"\n[services.web]\ncommand = \"run\"\nport = 3000\n", K_LINE },
	{ "env", ENV_ENTRY("[services.web]\ncommand = \"run\"\n", "services.web.@K@"), K_AOT },
	{ "key", ENV_ENTRY("[services.web]\ncommand = \"run\"\n", "services.web.env"), K_LINE },
	{ "value", ENV_ENTRY("[services.web]\ncommand = \"run\"\n", "services.web.env"), K_LINE },
	{ "sensitive", ENV_ENTRY("[services.web]\ncommand = \"run\"\n", "services.web.env"),
	  K_LINE },
	{ "required", ENV_ENTRY("[services.web]\ncommand = \"run\"\n", "services.web.env"),
	  K_LINE },
	{ "description", ENV_ENTRY("[services.web]\ncommand = \"run\"\n", "services.web.env"),
	  K_LINE },
#undef ENV_ENTRY
	{ "miren-postgresql", "name = \"myapp\"\n[addons.@K@]\nvariant = \"small\"\n", K_TABLE },
	{ "variant", "name = \"myapp\"\n[addons.pg]\nvariant = \"small\"\nversion = \"15\"\n",
	  K_LINE },
	{ "version", "name = \"myapp\"\n[addons.pg]\nvariant = \"small\"\nversion = \"15\"\n",
	  K_LINE },
};

/* doc with its plain key (the occurrence of cs->key where @K@ would be, or
 * @K@ itself) replaced by spelling; *line and *col get where it starts. */
static char *spell(const struct key_case *cs, const char *spelling, int *line, int *col)
{
	const char *doc = cs->doc;
	const char *at = strstr(doc, "@K@");
	size_t cut = 3;
	if (!at) { /* a line key: the first "\nkey =" (or the start) */
		char pat[64];
		snprintf(pat, sizeof(pat), "\n%s = ", cs->key);
		at = strstr(doc, pat);
		assert_non_null(at);
		at++;
		cut = strlen(cs->key);
	}
	*line = 1;
	const char *ls = doc;
	for (const char *p = doc; p < at; p++)
		if (*p == '\n') {
			(*line)++;
			ls = p + 1;
		}
	*col = (int)(at - ls) + 1;
	return xasprintf("%.*s%s%s", (int)(at - doc), doc, spelling, at + cut);
}

static json_t *config_json(const char *text, struct app_config **cfgp, struct miren_error *err)
{
	struct app_config *cfg = NULL;
	int rc = app_config_parse(text, strlen(text), "app.toml", "dir-name", &cfg, err);
	if (rc)
		return NULL;
	json_t *j = app_config_to_json(cfg);
	json_object_set_new(j, "warnings", json_integer((json_int_t)cfg->n_warnings));
	if (cfgp)
		*cfgp = cfg;
	else
		app_config_free(cfg);
	return j;
}

static void test_config_key_spellings(void **state MIREN_UNUSED)
{
	for (size_t i = 0; i < sizeof(key_cases) / sizeof(key_cases[0]); i++) {
		const struct key_case *cs = &key_cases[i];
		const char *k = cs->key;
		int line, col;
		struct miren_error err;
		char *doc = spell(cs, k, &line, &col);
		json_t *want = config_json(doc, NULL, &err);
		if (!want)
			fail_msg("case %s: the plain document fails: %s", k, err.message);
		assert_int_equal(json_integer_value(json_object_get(want, "warnings")), 0);
		free(doc);

		/* Escape-equivalent spellings are the key. */
		char *same[4];
		same[0] = xasprintf("\"%s\"", k);
		same[1] = xasprintf("'%s'", k);
		same[2] = xasprintf("\"\\u%04x%s\"", (unsigned char)k[0], k + 1);
		same[3] = xasprintf("\"%.*s\\U%08x\"", (int)strlen(k) - 1, k,
				    (unsigned char)k[strlen(k) - 1]);
		for (int s = 0; s < 4; s++) {
			doc = spell(cs, same[s], &line, &col);
			json_t *got = config_json(doc, NULL, &err);
			if (!got || !json_equal(got, want))
				fail_msg("case %s: %s is not the key (%s)", k, doc,
					 got ? "other config" : err.message);
			json_decref(got);
			free(doc);
		}

		/* Control characters anywhere in the key: refused at its position. */
		const char *bad[] = { "\"@\\u0000\"", "\"\\u0000@\"", "\"@\\u0000x\"",
				      "\"@\\n\"",     "\"@\\t\"",     "\"@\\u001f\"",
				      "\"@\\u007f\"", "\"@\\u0085\"", "\"@\\U00000000\"" };
		for (size_t b = 0; b < sizeof(bad) / sizeof(bad[0]); b++) {
			const char *p = strchr(bad[b], '@');
			char *sp = xasprintf("%.*s%s%s", (int)(p - bad[b]), bad[b], k, p + 1);
			doc = spell(cs, sp, &line, &col);
			json_t *got = config_json(doc, NULL, &err);
			if (got)
				fail_msg("case %s: %s was accepted", k, doc);
			char want_pos[64];
			snprintf(want_pos, sizeof(want_pos), "app.toml:%d:%d: ", line, col);
			if (strncmp(err.message, want_pos, strlen(want_pos)) ||
			    !strstr(err.message, "control character") ||
			    strchr(err.message, '\n') || strchr(err.message, '\t'))
				fail_msg("case %s: %s: error '%s', want it at %s", k, doc,
					 err.message, want_pos);
			free(doc);
			free(sp);
		}

		/* "\x00" is not a TOML escape. */
		char *sp = xasprintf("\"%s\\x00\"", k);
		doc = spell(cs, sp, &line, &col);
		assert_null(config_json(doc, NULL, &err));
		assert_non_null(strstr(err.message, "app.toml:"));
		free(doc);
		free(sp);

		/* A literal string does not unescape: '...\u0000' is another key. */
		sp = xasprintf("'%s\\u0000'", k);
		doc = spell(cs, sp, &line, &col);
		json_t *got = config_json(doc, NULL, &err);
		if (got && json_equal(got, want))
			fail_msg("case %s: %s was taken for the key", k, doc);
		json_decref(got);
		free(doc);
		free(sp);

		/* The key twice, plainly and escaped. */
		char *d1 = spell(cs, k, &line, &col);
		const char *rest = d1;
		for (int l = 1; l < line; l++)
			rest = strchr(rest, '\n') + 1;
		const char *eol = strchr(rest, '\n');
		size_t head = (size_t)(rest - d1);
		if (cs->kind == K_AOT) {
			/* [[env]] then [["\u0065nv"]]: one array of two entries. */
			char *twice = xasprintf("%s[[%.*s]]\nkey = \"Z\"\n", d1,
						(int)(strstr(rest, "]]") - rest - 2), rest + 2);
			char *esc = strstr(twice + strlen(d1), k);
			assert_non_null(esc);
			char *d2 = xasprintf("%.*s\"\\u%04x%s\"%s", (int)(esc - twice), twice,
					     (unsigned char)k[0], k + 1, esc + strlen(k));
			struct app_config *cfg = NULL;
			json_t *j = config_json(d2, &cfg, &err);
			if (!j)
				fail_msg("case %s: %s: %s", k, d2, err.message);
			size_t n = cfg->n_services ? cfg->services[0].n_env : cfg->n_env;
			assert_int_equal(n, 2);
			app_config_free(cfg);
			json_decref(j);
			free(d2);
			free(twice);
		} else {
			/* The defining line again, its key spelt escaped. */
			char *line2 = spell(cs, same[2], &line, &col);
			const char *r2 = line2;
			for (int l = 1; l < line; l++)
				r2 = strchr(r2, '\n') + 1;
			char *d2 = xasprintf("%.*s%.*s\n%s", (int)head, d1,
					     (int)(strchr(r2, '\n') - r2), r2, rest);
			got = config_json(d2, NULL, &err);
			if (got || (!strstr(err.message, "duplicate key") &&
				    !strstr(err.message, "defined twice")))
				fail_msg("case %s: %s: %s", k, d2, got ? "accepted" : err.message);
			free(d2);
			free(line2);
		}
		(void)eol;
		free(d1);
		for (int s = 0; s < 4; s++)
			free(same[s]);
		json_decref(want);
	}
}

static struct env_rec rec(const char *k, const char *v, enum env_source s)
{
	return (struct env_rec){
		.key = (char *)k, .value = (char *)v, .service = "", .source = s, .description = ""
	};
}

static const char *env_val(char **env, const char *key)
{
	size_t l = strlen(key);
	for (char **p = env; *p; p++)
		if (!strncmp(*p, key, l) && (*p)[l] == '=')
			return *p + l + 1;
	return NULL;
}

/* backups = { every, keep } of [addons.<name>], and durations. */
static void test_config_backups(void **state MIREN_UNUSED)
{
	struct app_config *cfg = parse_ok(
		"[addons.pg]\nbackups = { every = \"1h30m\", keep = 28 }\n"
		"[addons.r]\nbackups = { every = \"1d\" }\n"
		"[addons.m]\nvariant = \"small\"\n");
	assert_int_equal(cfg->n_addons, 3);
	assert_int_equal(cfg->addons[0].backups_every_s, 5400);
	assert_int_equal(cfg->addons[0].backups_keep, 28);
	assert_int_equal(cfg->addons[1].backups_every_s, 86400);
	assert_int_equal(cfg->addons[1].backups_keep, APP_BACKUPS_KEEP_DEFAULT);
	assert_int_equal(cfg->addons[2].backups_every_s, 0);
	/* Through the JSON a release keeps. */
	json_t *j = app_config_to_json(cfg);
	struct app_config *back = app_config_from_json(j);
	json_decref(j);
	assert_non_null(back);
	assert_int_equal(back->addons[0].backups_every_s, 5400);
	assert_int_equal(back->addons[0].backups_keep, 28);
	assert_int_equal(back->addons[2].backups_every_s, 0);
	app_config_free(back);
	app_config_free(cfg);

	parse_err("[addons.pg]\nbackups = { every = \"6x\" }\n",
		  "app.toml:2:21: 'every' in backups of [addons.pg]: invalid duration \"6x\"");
	parse_err("[addons.pg]\nbackups = { every = \"6h\", keep = 0 }\n",
		  "'keep' must be from 1 to 1000 (got 0)");
	parse_err("[addons.pg]\nbackups = { every = \"59s\" }\n",
		  "'every' must be from 1m to 366d");
	parse_err("[addons.pg]\nbackups = { keep = 2 }\n", "has no 'every'");
	parse_err("[addons.pg]\nbackups = 7\n", "must be a table");

	int64_t s = 0;
	struct miren_error err;
	assert_int_equal(duration_parse("2w", NULL, &s, &err), 0);
	assert_int_equal(s, 1209600);
	assert_int_equal(duration_parse("90s", NULL, &s, &err), 0);
	assert_int_equal(s, 90);
	const char *bad[] = { "",     "6",   "h",
			      "6hh",  "-1h", "0m",
			      "1.5h", " 1h", "99999999999999999999d" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(duration_parse(bad[i], NULL, &s, &err), MIREN_EINVAL);
	const struct {
		int64_t secs;
		const char *text;
	} texts[] = { { 60, "1m" },      { 21600, "6h" },   { 86400, "1d" }, { 604800, "1w" },
		      { 864000, "10d" }, { 5400, "1h30m" }, { 90, "1m30s" } };
	for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
		char *t = duration_text(texts[i].secs);
		assert_string_equal(t, texts[i].text);
		assert_int_equal(duration_parse(t, NULL, &s, &err), 0);
		assert_int_equal(s, texts[i].secs);
		free(t);
	}
}

static void test_env_precedence(void **state MIREN_UNUSED)
{
	struct app_config *cfg = parse_ok(
		"name = \"a\"\n"
		"[[env]]\nkey = \"DATABASE_URL\"\nvalue = \"from-config\"\n"
		"[[env]]\nkey = \"MODE\"\nvalue = \"config\"\n"
		"[[env]]\nkey = \"ONLY\"\nvalue = \"config\"\n"
		"[services.web]\ncommand = \"x\"\n"
		"[[services.web.env]]\nkey = \"ONLY\"\nvalue = \"web\"\n"
		"[services.worker]\ncommand = \"y\"\n");
	struct env_rec stored[] = {
		rec("DATABASE_URL", "from-addon", ENV_SOURCE_ADDON),
		rec("MODE", "from-addon", ENV_SOURCE_ADDON),
		rec("MODE", "manual", ENV_SOURCE_MANUAL),
	};
	char **web = env_for_service(cfg, "web", stored, 3, 1234, 7, "/rel");
	assert_string_equal(env_val(web, "DATABASE_URL"), "from-addon"); /* addon beats config */
	assert_string_equal(env_val(web, "MODE"), "manual");             /* manual beats addon */
	assert_string_equal(env_val(web, "ONLY"), "web");                /* service beats app */
	assert_string_equal(env_val(web, "PORT"), "1234");
	assert_string_equal(env_val(web, "MIREN_RELEASE"), "7");
	assert_string_equal(env_val(web, "MIREN_SERVICE"), "web");
	assert_string_equal(env_val(web, "HOME"), "/rel");
	char **worker = env_for_service(cfg, "worker", stored, 3, 1, 7, "/rel");
	assert_string_equal(env_val(worker, "ONLY"), "config");
	env_array_free(web);
	env_array_free(worker);

	struct env_rec *eff;
	size_t n;
	env_effective(cfg, stored, 3, &eff, &n);
	/* DATABASE_URL(addon), MODE(manual), ONLY(all, config), ONLY(web, config) */
	assert_int_equal(n, 4);
	assert_string_equal(eff[0].key, "DATABASE_URL");
	assert_int_equal(eff[0].source, ENV_SOURCE_ADDON);
	assert_string_equal(eff[1].key, "MODE");
	assert_int_equal(eff[1].source, ENV_SOURCE_MANUAL);
	assert_string_equal(eff[3].service, "web");
	env_recs_free(eff, n);
	app_config_free(cfg);
}

static void test_env_required(void **state MIREN_UNUSED)
{
	struct app_config *cfg = parse_ok("[[env]]\nkey = \"TOKEN\"\nrequired = true\n"
					  "[services.web]\ncommand = \"x\"\n");
	assert_string_equal(env_missing_required(cfg, NULL, 0), "TOKEN");
	struct env_rec stored[] = { rec("TOKEN", "t", ENV_SOURCE_MANUAL) };
	assert_null(env_missing_required(cfg, stored, 1));
	app_config_free(cfg);
}

/* A new store in a new directory made from the template dir; *path is its
 * file (to free); the caller removes dir. */
static struct store *temp_store(char *dir, char **path)
{
	assert_non_null(mkdtemp(dir));
	*path = fs_join(dir, "miren.db");
	struct store *st;
	struct miren_error err;
	if (store_open(*path, &st, &err))
		fail_msg("store_open: %s", err.message);
	return st;
}

static void test_store(void **state MIREN_UNUSED)
{
	char dir[] = "/tmp/miren-store-XXXXXX";
	char *path;
	struct store *st = temp_store(dir, &path);
	struct miren_error err;
	struct stat sb;
	assert_int_equal(stat(path, &sb), 0);
	assert_int_equal(sb.st_mode & 0777, 0600);
	int version = store_schema_version(st);
	assert_true(version >= 1);

	struct app_rec app;
	assert_int_equal(store_app_get(st, "a", &app, &err), MIREN_ENOTFOUND);
	int n;
	assert_int_equal(store_release_next(st, "a", &n, &err), 0);
	assert_int_equal(n, 1);
	struct release_rec r1 = {
		.n = 1, .source_sha256 = "abc", .config_json = "{}", .size_bytes = 4096
	};
	assert_int_equal(store_release_add(st, "a", &r1, &err), 0);
	assert_int_equal(store_release_next(st, "a", &n, &err), 0);
	assert_int_equal(n, 2);
	/* A duplicate release number fails and changes nothing. */
	struct release_rec dup = { .n = 1, .source_sha256 = "def", .config_json = "{}" };
	assert_int_equal(store_release_add(st, "a", &dup, &err), MIREN_EDB);
	assert_int_equal(store_app_get(st, "a", &app, &err), 0);
	assert_int_equal(app.current_release, 1);
	app_rec_release(&app);
	/* A rollback's release records what it copied; the list is newest
	 * first. */
	struct release_rec r2 = {
		.n = 2, .source_sha256 = "abc", .config_json = "{}", .rollback_of = 1
	};
	assert_int_equal(store_release_add(st, "a", &r2, &err), 0);
	struct release_rec *rels;
	size_t n_rels;
	assert_int_equal(store_release_list(st, "a", &rels, &n_rels, &err), 0);
	assert_int_equal(n_rels, 2);
	assert_int_equal(rels[0].n, 2);
	assert_int_equal(rels[0].rollback_of, 1);
	assert_int_equal(rels[1].n, 1);
	assert_int_equal(rels[1].rollback_of, 0);
	assert_int_equal(rels[1].size_bytes, 4096);
	assert_string_equal(rels[1].source_sha256, "abc");
	release_recs_free(rels, n_rels);

	struct env_rec e = rec("K", "v1", ENV_SOURCE_MANUAL);
	assert_int_equal(store_env_set(st, "a", &e, &err), 0);
	e.value = "v2";
	assert_int_equal(store_env_set(st, "a", &e, &err), 0);
	struct env_rec *list;
	size_t len;
	assert_int_equal(store_env_list(st, "a", &list, &len, &err), 0);
	assert_int_equal(len, 1);
	assert_string_equal(list[0].value, "v2");
	env_recs_free(list, len);
	assert_int_equal(store_env_delete(st, "a", "K", ENV_SOURCE_ADDON, &err), MIREN_ENOTFOUND);
	assert_int_equal(store_env_delete(st, "a", "K", ENV_SOURCE_MANUAL, &err), 0);
	store_close(st);

	/* Reopening migrates nothing twice and keeps the data. */
	assert_int_equal(store_open(path, &st, &err), 0);
	assert_int_equal(store_schema_version(st), version);
	assert_int_equal(store_app_delete(st, "a", &err), 0);
	assert_int_equal(store_app_delete(st, "a", &err), MIREN_ENOTFOUND);
	int *nums;
	assert_int_equal(store_release_numbers(st, "a", &nums, &len, &err), 0);
	assert_int_equal(len, 0); /* releases went with the app */
	free(nums);
	store_close(st);
	fs_remove_tree(dir);
	free(path);
}

/* Status writes are compare-and-set: the loser changes nothing of the
 * status (the reconciler's state is kept) and is told what won. */
static void test_store_addon_cas(void **state MIREN_UNUSED)
{
	char dir[] = "/tmp/miren-store-XXXXXX";
	char *path;
	struct store *st = temp_store(dir, &path);
	struct miren_error err;
	struct release_rec r1 = { .n = 1, .source_sha256 = "abc", .config_json = "{}" };
	assert_int_equal(store_release_add(st, "a", &r1, &err), 0);
	struct addon_rec r = { .id = "i1",
			       .app = "a",
			       .addon = "pg",
			       .variant = "small",
			       .version = "15",
			       .status = "provisioning",
			       .step = 1,
			       .state_json = "{}" };
	assert_int_equal(store_addon_add(st, &r, &err), 0);

	/* A destroy moves it while the reconciler runs step 1. */
	assert_int_equal(store_addon_set_status(st, "i1", "provisioning", 1, "deprovisioning", 0,
						"", &err),
			 0);
	/* The reconciler's write of step 2 loses, but records its state. */
	struct addon_rec w = r;
	w.step = 2;
	w.state_json = "{\"server\":\"s-i1\"}";
	assert_int_equal(store_addon_update(st, &w, "provisioning", 1, &err), MIREN_ECONFLICT);
	assert_non_null(strstr(err.message, "to deprovisioning (step 0)"));
	struct addon_rec got;
	assert_int_equal(store_addon_get(st, "a", "pg", &got, &err), 0);
	assert_string_equal(got.status, "deprovisioning");
	assert_int_equal(got.step, 0);
	assert_string_equal(got.state_json, "{\"server\":\"s-i1\"}");
	addon_rec_release(&got);
	/* Neither may activation write env for it. */
	struct env_rec var = rec("DATABASE_URL", "x", ENV_SOURCE_ADDON);
	w.status = "active";
	assert_int_equal(store_addon_activate(st, &w, "provisioning", 2, &var, 1, &err),
			 MIREN_ECONFLICT);
	struct env_rec *list;
	size_t len;
	assert_int_equal(store_env_list(st, "a", &list, &len, &err), 0);
	assert_int_equal(len, 0);
	env_recs_free(list, len);
	/* A stale API write loses too; a delete needs the status it names. */
	assert_int_equal(store_addon_set_status(st, "i1", "error", 0, "pending", 0, "", &err),
			 MIREN_ECONFLICT);
	assert_int_equal(store_addon_delete(st, "i1", "error", &err), MIREN_ECONFLICT);

	/* The store's invariants: a departing addon of a deleted app is fine,
	 * an active one is not. */
	char **msgs;
	size_t n;
	int motion;
	assert_int_equal(store_app_delete(st, "a", &err), 0);
	assert_int_equal(store_invariants(st, &msgs, &n, &motion, &err), 0);
	assert_int_equal(n, 0);
	assert_int_equal(motion, 1);
	free(msgs);
	assert_int_equal(store_addon_delete(st, "i1", "deprovisioning", &err), 0);
	assert_int_equal(store_addon_set_status(st, "i1", "deprovisioning", 0, "x", 0, "", &err),
			 MIREN_ENOTFOUND);
	r.id = "i2";
	r.status = "active";
	assert_int_equal(store_addon_add(st, &r, &err), 0);
	assert_int_equal(store_invariants(st, &msgs, &n, &motion, &err), 0);
	assert_int_equal(motion, 0);
	assert_true(n >= 2);
	assert_non_null(strstr(msgs[0], "belongs to app 'a', which does not exist"));
	for (size_t i = 0; i < n; i++)
		free(msgs[i]);
	free(msgs);
	store_close(st);
	fs_remove_tree(dir);
	free(path);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_config_full),
		cmocka_unit_test(test_config_fallback_and_warnings),
		cmocka_unit_test(test_config_errors),
		cmocka_unit_test(test_config_key_spellings),
		cmocka_unit_test(test_config_backups),
		cmocka_unit_test(test_env_precedence),
		cmocka_unit_test(test_env_required),
		cmocka_unit_test(test_store),
		cmocka_unit_test(test_store_addon_cas),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
