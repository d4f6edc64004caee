/* Default locations; see paths.h. */
#include "util/paths.h"
#include "util/err.h"
#include "util/fs.h"
#include "util/secret.h"

#include <pwd.h>
#include <stdlib.h>
#include <unistd.h>

/* $XDG_<var>/miren when that is set, else ~/<fallback>/miren. */
static char *xdg_dir(const char *var, const char *fallback)
{
	const char *xdg = getenv(var);
	if (xdg && *xdg)
		return fs_join(xdg, "miren");
	const char *home = getenv("HOME");
	if (!home || !*home) {
		struct passwd *pw = getpwuid(geteuid());
		home = pw ? pw->pw_dir : "/tmp";
	}
	return xasprintf("%s/%s/miren", home, fallback);
}

char *paths_data_dir(void)
{
	const char *env = getenv("MIREN_DATA_DIR");
	if (env && *env)
		return xstrdup(env);
	if (geteuid() == 0)
		return xstrdup("/var/lib/miren");
	return xdg_dir("XDG_DATA_HOME", ".local/share");
}

char *paths_config_dir(void)
{
	return xdg_dir("XDG_CONFIG_HOME", ".config");
}

char *paths_socket(const char *explicit_socket)
{
	if (explicit_socket && *explicit_socket)
		return xstrdup(explicit_socket);
	const char *env = getenv("MIREN_SOCKET");
	if (env && *env)
		return xstrdup(env);
	char *dir = paths_data_dir();
	char *s = fs_join(dir, "miren.sock");
	free(dir);
	return s;
}

struct data_paths {
	char *root;
};

struct data_paths *data_paths_new(const char *root)
{
	struct data_paths *p = xcalloc(1, sizeof(*p));
	p->root = xstrdup(root);
	return p;
}

void data_paths_free(struct data_paths *p)
{
	if (!p)
		return;
	free(p->root);
	free(p);
}

const char *data_paths_root(const struct data_paths *p)
{
	return p->root;
}

char *data_paths_store(const struct data_paths *p)
{
	return fs_join(p->root, "miren.db");
}

char *data_paths_socket(const struct data_paths *p)
{
	return fs_join(p->root, "miren.sock");
}

char *data_paths_lock(const struct data_paths *p)
{
	return fs_join(p->root, "miren.lock");
}

char *data_paths_logs(const struct data_paths *p)
{
	return fs_join(p->root, "logs");
}

char *data_paths_server_log(const struct data_paths *p)
{
	return fs_join(p->root, "logs/server.log");
}

char *data_paths_run(const struct data_paths *p)
{
	return fs_join(p->root, "run");
}

char *data_paths_tmp(const struct data_paths *p)
{
	return fs_join(p->root, "tmp");
}

char *data_paths_tmp_unique(const struct data_paths *p, const char *what)
{
	char *hex = secret_hex(8);
	char *path = xasprintf("%s/tmp/%s-%s", p->root, what, hex);
	free(hex);
	return path;
}

char *data_paths_apps(const struct data_paths *p)
{
	return fs_join(p->root, "apps");
}

char *data_paths_app(const struct data_paths *p, const char *app)
{
	return xasprintf("%s/apps/%s", p->root, app);
}

char *data_paths_releases(const struct data_paths *p, const char *app)
{
	return xasprintf("%s/apps/%s/releases", p->root, app);
}

char *data_paths_release(const struct data_paths *p, const char *app, int n)
{
	return xasprintf("%s/apps/%s/releases/%d", p->root, app, n);
}

char *data_paths_app_logs(const struct data_paths *p, const char *app)
{
	return xasprintf("%s/apps/%s/logs", p->root, app);
}

char *data_paths_service_log(const struct data_paths *p, const char *app, const char *service)
{
	return xasprintf("%s/apps/%s/logs/%s.log", p->root, app, service);
}

char *data_paths_disks(const struct data_paths *p)
{
	return fs_join(p->root, "disks");
}

char *data_paths_disk(const struct data_paths *p, const char *disk)
{
	return xasprintf("%s/disks/%s", p->root, disk);
}

char *data_paths_volumes(const struct data_paths *p)
{
	return fs_join(p->root, "volumes");
}

char *data_paths_volume_image(const struct data_paths *p, const char *disk)
{
	return xasprintf("%s/volumes/%s.img", p->root, disk);
}

char *data_paths_volume_spare(const struct data_paths *p, unsigned long long bytes)
{
	return xasprintf("%s/volumes/.spare-%llu.img", p->root, bytes);
}

char *data_paths_spares(const struct data_paths *p)
{
	return fs_join(p->root, "spares");
}

char *data_paths_filled_spare(const struct data_paths *p, const char *kind,
			      unsigned long long bytes, bool image, bool prep)
{
	if (image)
		return xasprintf("%s/volumes/.spare-%s-%llu%s.img", p->root, kind, bytes,
				 prep ? ".prep" : "");
	return xasprintf("%s/spares/%s-%llu%s", p->root, kind, bytes, prep ? ".prep" : "");
}

char *data_paths_addon_logs(const struct data_paths *p)
{
	return fs_join(p->root, "logs/addons");
}

char *data_paths_addon_log(const struct data_paths *p, const char *server)
{
	return xasprintf("%s/logs/addons/%s.log", p->root, server);
}

char *data_paths_templates(const struct data_paths *p)
{
	return fs_join(p->root, "templates");
}

char *data_paths_template(const struct data_paths *p, const char *name)
{
	return xasprintf("%s/templates/%s", p->root, name);
}
