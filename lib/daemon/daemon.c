/* The daemon's core: open, recover, close, and the shared lock
 * primitives; see daemon.h and daemon_int.h. */
#include "addon/disk_ops.h"
#include "addon/scratch.h"
#include "addon/tick.h"
#include "backup/bstore.h"
#include "daemon/backups.h"
#include "daemon/change.h"
#include "daemon/daemon_int.h"
#include "daemon/disks.h"
#include "daemon/fork.h"
#include "daemon/rotate.h"
#include "daemon/schedules.h"
#include "disk/volume.h"
#include "store/store.h"
#include "supervise/supervise.h"
#include "util/fs.h"
#include "util/io.h"
#include "util/log.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

/* One app's lock: held by at most one operation; entries live while some
 * thread holds or waits for them. */
struct app_lock_entry {
	char *app;
	unsigned refs;
	bool held;
	pthread_cond_t cv;
	struct app_lock_entry *next;
};

struct held_app {
	char *app;
	struct held_app *next;
};

struct port_slot {
	char *id;
	int port;
	struct port_slot *next;
};

void app_lock(struct daemon *d, const char *app)
{
	pthread_mutex_lock(&d->locks_mu);
	struct app_lock_entry *e;
	for (e = d->locks; e; e = e->next)
		if (!strcmp(e->app, app))
			break;
	if (!e) {
		e = xcalloc(1, sizeof(*e));
		e->app = xstrdup(app);
		pthread_cond_init(&e->cv, NULL);
		e->next = d->locks;
		d->locks = e;
	}
	e->refs++;
	while (e->held)
		pthread_cond_wait(&e->cv, &d->locks_mu);
	e->held = true;
	pthread_mutex_unlock(&d->locks_mu);
}

bool app_trylock(struct daemon *d, const char *app)
{
	pthread_mutex_lock(&d->locks_mu);
	struct app_lock_entry *e;
	for (e = d->locks; e; e = e->next)
		if (!strcmp(e->app, app))
			break;
	bool got = !e;
	if (got) {
		e = xcalloc(1, sizeof(*e));
		e->app = xstrdup(app);
		pthread_cond_init(&e->cv, NULL);
		e->next = d->locks;
		d->locks = e;
		e->refs = 1;
		e->held = true;
	}
	pthread_mutex_unlock(&d->locks_mu);
	return got;
}

void app_unlock(struct daemon *d, const char *app)
{
	pthread_mutex_lock(&d->locks_mu);
	struct app_lock_entry **pp = &d->locks, *e;
	while ((e = *pp) && strcmp(e->app, app))
		pp = &e->next;
	if (!e) { /* a bug: unlocking what nobody locked */
		pthread_mutex_unlock(&d->locks_mu);
		log_error("app %s: unlock of a lock not held", app);
		return;
	}
	e->held = false;
	if (--e->refs == 0) {
		*pp = e->next;
		pthread_cond_destroy(&e->cv);
		free(e->app);
		free(e);
	} else {
		pthread_cond_signal(&e->cv);
	}
	pthread_mutex_unlock(&d->locks_mu);
}

uint64_t daemon_changes(struct daemon *d)
{
	pthread_mutex_lock(&d->changes_mu);
	uint64_t n = d->changes;
	pthread_mutex_unlock(&d->changes_mu);
	return n;
}

bool daemon_is_stopping(struct daemon *d)
{
	pthread_mutex_lock(&d->changes_mu);
	bool s = d->stopping;
	pthread_mutex_unlock(&d->changes_mu);
	return s;
}

int daemon_wait_changes(struct daemon *d, const char *app, uint64_t seen, int64_t deadline_ms)
{
	app_unlock(d, app);
	pthread_mutex_lock(&d->changes_mu);
	int64_t now = io_mono_ms();
	/* Wake at least every second, so as not to depend on every path that
	 * ends a removal signalling it. */
	int64_t wait = deadline_ms - now;
	if (wait > 1000)
		wait = 1000;
	if (!d->stopping && d->changes == seen && wait > 0) {
		struct timespec until;
		io_mono_deadline(&until, wait);
		pthread_cond_timedwait(&d->changes_cv, &d->changes_mu, &until);
	}
	int rc = d->stopping || io_mono_ms() >= deadline_ms ? MIREN_EUNAVAIL : 0;
	pthread_mutex_unlock(&d->changes_mu);
	app_lock(d, app);
	return rc;
}

enum miren_err daemon_stopping_error(struct miren_error *err)
{
	miren_error_set(err, MIREN_EUNAVAIL, "the miren server is stopping");
	miren_error_hint(err, "start it again: what was being removed is removed then");
	return MIREN_EUNAVAIL;
}

void daemon_stop_waits(struct daemon *d)
{
	pthread_mutex_lock(&d->changes_mu);
	d->stopping = true;
	pthread_cond_broadcast(&d->changes_cv);
	pthread_mutex_unlock(&d->changes_mu);
}

void daemon_set_held(struct daemon *d, const char *app, bool held)
{
	pthread_mutex_lock(&d->changes_mu);
	struct held_app **pp = &d->held, *e;
	while ((e = *pp) && strcmp(e->app, app))
		pp = &e->next;
	if (held && !e) {
		e = xcalloc(1, sizeof(*e));
		e->app = xstrdup(app);
		e->next = d->held;
		d->held = e;
	} else if (!held && e) {
		*pp = e->next;
		free(e->app);
		free(e);
	}
	pthread_mutex_unlock(&d->changes_mu);
}

bool daemon_is_held(struct daemon *d, const char *app)
{
	pthread_mutex_lock(&d->changes_mu);
	struct held_app *e = d->held;
	while (e && strcmp(e->app, app))
		e = e->next;
	pthread_mutex_unlock(&d->changes_mu);
	return e != NULL;
}

void addons_changed(void *user, const char *app)
{
	struct daemon *d = user;
	pthread_mutex_lock(&d->changes_mu);
	d->changes++;
	pthread_cond_broadcast(&d->changes_cv);
	pthread_mutex_unlock(&d->changes_mu);
	struct miren_error err;
	app_lock(d, app);
	/* A fork that failed with nobody waiting for it goes (fork.h). */
	forks_settle(d, app);
	int rc = apps_restart_locked(d, app, &err);
	if (rc && rc != MIREN_ENOTFOUND)
		log_error("app %s: %s", app, err.message);
	app_unlock(d, app);
}

/* A free loopback TCP port, found by binding port 0. */
static int free_port(void)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return 0;
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(a);
	int port = 0;
	if (bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0 &&
	    getsockname(fd, (struct sockaddr *)&a, &len) == 0)
		port = ntohs(a.sin_port);
	close(fd);
	return port;
}

int daemon_service_port(struct daemon *d, const char *id, int configured)
{
	pthread_mutex_lock(&d->ports_mu);
	struct port_slot *s;
	for (s = d->ports; s; s = s->next)
		if (!strcmp(s->id, id))
			break;
	if (s) {
		if (configured)
			s->port = configured;
	} else {
		s = xcalloc(1, sizeof(*s));
		s->id = xstrdup(id);
		s->port = configured ? configured : free_port();
		s->next = d->ports;
		d->ports = s;
	}
	int port = s->port;
	pthread_mutex_unlock(&d->ports_mu);
	return port;
}

int daemon_service_port_known(struct daemon *d, const char *id)
{
	int port = 0;
	pthread_mutex_lock(&d->ports_mu);
	for (struct port_slot *s = d->ports; s; s = s->next)
		if (!strcmp(s->id, id))
			port = s->port;
	pthread_mutex_unlock(&d->ports_mu);
	return port;
}

const struct data_paths *daemon_paths(const struct daemon *d)
{
	return d->paths;
}

void daemon_add_listener(struct daemon *d, const char *address, const char *fingerprint)
{
	if (!d->listeners)
		d->listeners = json_array();
	json_array_append_new(d->listeners, json_pack("{s:s, s:s}", "address", address,
						      "fingerprint", fingerprint));
}

json_t *daemon_server_info(struct daemon *d)
{
	char *sock = data_paths_socket(d->paths);
	json_t *listen = d->listeners ? json_incref(d->listeners) : json_array();
	json_t *j = json_pack("{s:s, s:s, s:s%, s:o, s:o}", "version", MIREN_VERSION, "data_dir",
			      data_paths_root(d->paths), "socket", sock, strlen(sock), "listen",
			      listen, "disks", disks_mode(d));
	free(sock);
	return j;
}

/* Parses "a.b.c.d/len" (a loopback range) into base and size. */
static enum miren_err parse_pool(const char *cidr, uint32_t *base, uint32_t *size,
				 struct miren_error *err)
{
	char addr[INET_ADDRSTRLEN];
	int len = -1;
	struct in_addr a;
	const char *slash = strchr(cidr, '/');
	if (slash && (size_t)(slash - cidr) < sizeof(addr)) {
		memcpy(addr, cidr, (size_t)(slash - cidr));
		addr[slash - cidr] = '\0';
		char *end;
		len = (int)strtol(slash + 1, &end, 10);
		if (*end || slash[1] == '\0')
			len = -1;
	}
	if (len < 8 || len > 30 || inet_pton(AF_INET, addr, &a) != 1 ||
	    (ntohl(a.s_addr) >> 24) != 127) {
		miren_error_set(err, MIREN_EINVAL, "invalid address pool '%s'", cidr);
		miren_error_hint(err, "give a loopback range such as 127.77.0.0/16 (prefix 8..30)");
		return MIREN_EINVAL;
	}
	*size = 1u << (32 - len);
	*base = ntohl(a.s_addr) & ~(*size - 1);
	return 0;
}

/* Opens the backup store in <data>/backups.  A store that cannot be
 * opened does not keep the daemon from serving: backups then fail with
 * the reason, which is logged here. */
static void open_bstore(struct daemon *d)
{
	char *dir = fs_join(data_paths_root(d->paths), "backups");
	struct miren_error err;
	miren_error_clear(&err);
	if (bstore_open(dir, &d->bstore, &err) != 0) {
		log_error("the backup store %s cannot be opened: %s", dir, err.message);
		d->bstore = NULL;
	}
	free(dir);
}

enum miren_err daemon_open(const struct daemon_options *opts, struct daemon **out,
			   struct miren_error *err)
{
	*out = NULL;
	struct daemon *d = xcalloc(1, sizeof(*d));
	pthread_mutex_init(&d->locks_mu, NULL);
	pthread_mutex_init(&d->ports_mu, NULL);
	pthread_mutex_init(&d->changes_mu, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&d->changes_cv, &ca);
	pthread_condattr_destroy(&ca);
	d->paths = data_paths_new(opts->data_dir);
	d->keep_releases = opts->keep_releases > 0 ? opts->keep_releases : 5;
	d->run_uid = (uid_t)-1;
	d->run_gid = (gid_t)-1;
	enum miren_err rc = 0;
	char *tmp = data_paths_tmp(d->paths), *apps = data_paths_apps(d->paths);
	char *db = data_paths_store(d->paths), *run = data_paths_run(d->paths);
	const char *root = data_paths_root(d->paths);

	if (geteuid() == 0) {
		const char *user = opts->service_user ? opts->service_user : "miren";
		struct passwd *pw = getpwnam(user);
		if (!pw) {
			rc = miren_error_set(err, MIREN_EINVAL, "service user '%s' does not exist",
					     user);
			miren_error_hint(err, "run scripts/bootstrap, which creates it");
			goto fail;
		}
		d->run_uid = pw->pw_uid;
		d->run_gid = pw->pw_gid;
	}
	if (fs_remove_tree(tmp) || fs_mkdir_p(tmp, 0700) || fs_mkdir_p(apps, 0711)) {
		rc = miren_error_set(err, MIREN_EIO, "cannot create directories in '%s': %s", root,
				     io_strerror(errno));
		goto fail;
	}
	/* Services run as the service user and must reach their release. */
	chmod(root, 0711);
	rc = store_open(db, &d->store, err);
	if (rc)
		goto fail;
	struct sv_config svc = { .run_dir = run };
	d->sv = sv_new(&svc, err);
	if (!d->sv) {
		rc = err ? err->code : MIREN_EIO;
		goto fail;
	}

	d->actx = (struct addon_ctx){ .store = d->store,
				      .sv = d->sv,
				      .data_dir = root,
				      .paths = d->paths,
				      .uid = d->run_uid,
				      .gid = d->run_gid };
	d->backup_dir = fs_join(root, "backups");
	d->actx.backup_dir = d->backup_dir;
	rc = parse_pool(opts->addr_pool ? opts->addr_pool : "127.77.0.0/16", &d->actx.pool_base,
			&d->actx.pool_size, err);
	if (rc)
		goto fail;

	/* Converge: drop what a crash left half-done, adopt or restart the
	 * addon servers, start every app, then stop what nobody claimed.  The
	 * reconciler's callbacks take each app's lock, as apps_start_all does. */
	apps_prune_dirs(d);
	addons_remove_orphans(d);
	d->actx.volumes = volumes_open(root, d->run_uid, d->run_gid);
	volumes_recover(d->actx.volumes);
	disk_recover(&d->actx);
	open_bstore(d);
	scratch_recover(&d->actx);
	d->rec = reconciler_start(&d->actx, addons_changed, forks_fill, d);
	if (!d->rec) {
		rc = miren_error_set(err, MIREN_EINTERNAL, "cannot start the addon reconciler");
		goto fail;
	}
	forks_recover(d);
	apps_start_all(d);
	backups_recover(d);
	rotations_recover(d);
	changes_recover(d, true);
	sv_reap_unclaimed(d->sv);
	d->disk_watch = disk_watch_start(&d->actx);
	d->sched = scheduler_start(d);
	d->ticker = addon_ticker_start(&d->actx);
	*out = d;
	goto out;
fail:
	daemon_close(d);
out:
	free(tmp);
	free(apps);
	free(db);
	free(run);
	return rc;
}

void daemon_close(struct daemon *d)
{
	if (!d)
		return;
	json_decref(d->listeners);
	scheduler_stop(d->sched);
	addon_ticker_stop(d->ticker);
	disk_watch_stop(d->disk_watch);
	reconciler_stop(d->rec);
	if (d->sv)
		sv_free(d->sv);
	store_close(d->store);
	if (d->bstore)
		bstore_close(d->bstore);
	volumes_free(d->actx.volumes);
	while (d->ports) {
		struct port_slot *s = d->ports;
		d->ports = s->next;
		free(s->id);
		free(s);
	}
	while (d->held)
		daemon_set_held(d, d->held->app, false);
	data_paths_free(d->paths);
	free(d->backup_dir);
	pthread_cond_destroy(&d->changes_cv);
	pthread_mutex_destroy(&d->changes_mu);
	pthread_mutex_destroy(&d->ports_mu);
	pthread_mutex_destroy(&d->locks_mu);
	free(d);
}
