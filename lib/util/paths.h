/*
 * Where things live by default, shared by the daemon and the CLI.
 */
#ifndef MIREN_PATHS_H
#define MIREN_PATHS_H

#include <stdbool.h>

/* MIREN_DATA_DIR if set; else /var/lib/miren as root; else
 * $XDG_DATA_HOME/miren (~/.local/share/miren).  Caller frees. */
char *paths_data_dir(void);
/* The CLI's own settings (clusters.toml): $XDG_CONFIG_HOME/miren, else
 * ~/.config/miren (root's too).  Caller frees. */
char *paths_config_dir(void);
/* --socket value if given, else MIREN_SOCKET, else <data dir>/miren.sock. */
char *paths_socket(const char *explicit_socket);

/*
 * Every path inside a data directory, built in one place: no other file
 * assembles one (a new file or directory of the layout gets a function
 * here, and docs/architecture.md's "Data directory" lists it).  Each
 * function returns a new string the caller frees; names (app, service,
 * disk) are taken as given: callers check them with util/names.h first.
 */
struct data_paths;

/* For data directory root (copied). */
struct data_paths *data_paths_new(const char *root);
void data_paths_free(struct data_paths *p);
/* The data directory itself (owned by p). */
const char *data_paths_root(const struct data_paths *p);

char *data_paths_store(const struct data_paths *p);      /* miren.db */
char *data_paths_socket(const struct data_paths *p);     /* miren.sock */
char *data_paths_lock(const struct data_paths *p);       /* miren.lock */
char *data_paths_logs(const struct data_paths *p);       /* logs */
char *data_paths_server_log(const struct data_paths *p); /* logs/server.log */
char *data_paths_run(const struct data_paths *p);        /* run (the supervisor's) */
char *data_paths_tmp(const struct data_paths *p);        /* tmp */
/* tmp/<what>-<16 random hex>: a fresh name for an upload or a staging tree */
char *data_paths_tmp_unique(const struct data_paths *p, const char *what);
char *data_paths_apps(const struct data_paths *p);                      /* apps */
char *data_paths_app(const struct data_paths *p, const char *app);      /* apps/<app> */
char *data_paths_releases(const struct data_paths *p, const char *app); /* apps/<app>/releases */
char *data_paths_release(const struct data_paths *p, const char *app, int n);
char *data_paths_app_logs(const struct data_paths *p, const char *app); /* apps/<app>/logs */
char *data_paths_service_log(const struct data_paths *p, const char *app, const char *service);
char *data_paths_disks(const struct data_paths *p);                  /* disks */
char *data_paths_disk(const struct data_paths *p, const char *disk); /* disks/<disk> */
char *data_paths_volumes(const struct data_paths *p);                /* volumes */
/* volumes/<disk>.img: a disk's ext4 image */
char *data_paths_volume_image(const struct data_paths *p, const char *disk);
/* volumes/.spare-<bytes>.img: an image made ahead for the next disk of that size */
char *data_paths_volume_spare(const struct data_paths *p, unsigned long long bytes);
char *data_paths_spares(const struct data_paths *p); /* spares */
/*
 * A filled spare disk of kind (an engine's spare kind) and size in bytes:
 * image: volumes/.spare-<kind>-<bytes>.img (ext4 mode), else the directory
 * spares/<kind>-<bytes> (its mount point, or the disk itself in dirs mode);
 * prep: the same with ".prep" before the suffix, while it is prepared.
 */
char *data_paths_filled_spare(const struct data_paths *p, const char *kind,
			      unsigned long long bytes, bool image, bool prep);
char *data_paths_addon_logs(const struct data_paths *p); /* logs/addons */
/* logs/addons/<server>.log: an addon server's own log */
char *data_paths_addon_log(const struct data_paths *p, const char *server);
char *data_paths_templates(const struct data_paths *p); /* templates */
/* templates/<name>: a provider's pre-initialised data ("pg15") */
char *data_paths_template(const struct data_paths *p, const char *name);

#endif
