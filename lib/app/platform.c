/* The platform: app operations over the store and the supervisor; see platform.h. */
#include "app/platform.h"
#include "addon/addon.h"
#include "addon/disk_ops.h"
#include "addon/invariants.h"
#include "app/config.h"
#include "app/env.h"
#include "app/source.h"
#include "store/store.h"
#include "supervise/supervise.h"
#include "util/compiler.h"
#include "util/fault.h"
#include "util/fs.h"
#include "util/log.h"
#include "util/names.h"
#include "util/secret.h"
#include "util/strbuf.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MASK "********"

struct port_slot {
	char *id;
	int port;
	struct port_slot *next;
};

struct platform {
	char *data_dir;
	char *apps_dir;
	char *tmp_dir;
	struct store *store;
	struct sv *sv;
	uid_t run_uid; /* (uid_t)-1: as the daemon */
	gid_t run_gid;
	int keep_releases;
	pthread_mutex_t lock; /* serialises every operation on apps */
	/* Broadcast (under lock) when an app's addons changed; an operation
	 * that waits for an addon's removal waits on it, releasing lock. */
	pthread_cond_t addons_cv;
	bool stopping; /* set by platform_stop_waits: waits end at once */
	struct port_slot *ports;
	struct addon_ctx actx;
	struct reconciler *rec;
};

const char *platform_data_dir(const struct platform *p)
{
	return p->data_dir;
}

static char *app_dir(struct platform *p, const char *app)
{
	return fs_join(p->apps_dir, app);
}

static char *release_dir(struct platform *p, const char *app, int n)
{
	return xasprintf("%s/%s/releases/%d", p->apps_dir, app, n);
}

static char *service_id(const char *app, const char *svc)
{
	return xasprintf("app/%s/%s", app, svc);
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

/* The port of a service: its configured one, else one picked once and kept
 * for the daemon's lifetime so restarts keep the URL. */
static int service_port(struct platform *p, const char *id, int configured)
{
	struct port_slot *s;
	for (s = p->ports; s; s = s->next)
		if (!strcmp(s->id, id))
			break;
	if (s) {
		if (configured)
			s->port = configured;
		return s->port;
	}
	s = xcalloc(1, sizeof(*s));
	s->id = xstrdup(id);
	s->port = configured ? configured : free_port();
	s->next = p->ports;
	p->ports = s;
	return s->port;
}

static int service_port_known(struct platform *p, const char *id)
{
	for (struct port_slot *s = p->ports; s; s = s->next)
		if (!strcmp(s->id, id))
			return s->port;
	return 0;
}

/* Loads the config of the app's current release; *cfg NULL if never deployed. */
static int load_current(struct platform *p, const char *app, struct app_rec *rec,
			struct app_config **cfg, struct miren_error *err)
{
	*cfg = NULL;
	int rc = store_app_get(p->store, app, rec, err);
	if (rc || rec->current_release == 0)
		return rc;
	struct release_rec rel;
	rc = store_release_get(p->store, app, rec->current_release, &rel, err);
	if (rc)
		return rc;
	json_t *j = json_loads(rel.config_json, 0, NULL);
	*cfg = j ? app_config_from_json(j) : NULL;
	json_decref(j);
	release_rec_release(&rel);
	if (!*cfg)
		return miren_error_set(err, MIREN_EINTERNAL,
				       "release %d of app '%s' has an unreadable config",
				       rec->current_release, app);
	return 0;
}

/*
 * Whether every addon of app is active (those being removed do not hold
 * the app back).  *what names the first one that is not, for messages.
 */
static bool addons_ready(struct platform *p, const char *app, char **what)
{
	struct addon_rec *recs;
	size_t n;
	bool ready = true;
	if (what)
		*what = NULL;
	if (store_addon_list(p->store, app, &recs, &n, NULL) != 0)
		return false;
	for (size_t i = 0; i < n && ready; i++) {
		if (!strcmp(recs[i].status, "active") || !strcmp(recs[i].status, "deprovisioning"))
			continue;
		ready = false;
		if (what)
			*what = xasprintf("%s (%s)", recs[i].addon, recs[i].status);
	}
	addon_recs_free(recs, n);
	return ready;
}

/*
 * (Re)starts every service of cfg's release with fresh env.  Held start:
 * while an addon of the app is not active, nothing is started or
 * restarted; the reconciler's callback starts the app once they are.
 */
static int start_services(struct platform *p, const struct app_config *cfg, int release,
			  struct miren_error *err)
{
	char *waiting;
	if (cfg->n_services && !addons_ready(p, cfg->name, &waiting)) {
		log_info("app %s: waiting for addon %s before starting services", cfg->name,
			 waiting ? waiting : "?");
		free(waiting);
		return 0;
	}
	struct env_rec *stored;
	size_t n_stored;
	int rc = store_env_list(p->store, cfg->name, &stored, &n_stored, err);
	if (rc)
		return rc;
	char *rdir = release_dir(p, cfg->name, release);
	char *logdir = xasprintf("%s/%s/logs", p->apps_dir, cfg->name);
	fs_mkdir_p(logdir, 0750);
	for (size_t i = 0; i < cfg->n_services && !rc; i++) {
		const struct app_service *s = &cfg->services[i];
		char *id = service_id(cfg->name, s->name);
		int port = service_port(p, id, s->port);
		char **env = env_for_service(cfg, s->name, stored, n_stored, port, release, rdir);
		char *log_path = xasprintf("%s/%s.log", logdir, s->name);
		struct sv_spec spec = {
			.id = id,
			.command = s->command,
			.cwd = rdir,
			.env = env,
			.log_path = log_path,
			.uid = p->run_uid,
			.gid = p->run_gid,
		};
		char ebuf[256];
		if (sv_start(p->sv, &spec, ebuf, sizeof(ebuf)) != 0)
			rc = miren_error_set(err, MIREN_EIO, "cannot start service '%s' of app '%s': %s",
					     s->name, cfg->name, ebuf);
		else
			log_info("app %s: started service %s (release %d, port %d)", cfg->name,
				 s->name, release, port);
		free(log_path);
		env_array_free(env);
		free(id);
	}
	free(logdir);
	free(rdir);
	env_recs_free(stored, n_stored);
	return rc;
}

/* Stops the services of old that next no longer has (next may be NULL). */
static void stop_removed_services(struct platform *p, const struct app_config *old,
				  const struct app_config *next)
{
	if (!old)
		return;
	for (size_t i = 0; i < old->n_services; i++) {
		if (next && app_config_service(next, old->services[i].name))
			continue;
		char *id = service_id(old->name, old->services[i].name);
		if (sv_stop(p->sv, id) == 0)
			log_info("app %s: stopped service %s", old->name, old->services[i].name);
		free(id);
	}
}

/* Removes release directories of app that the store does not know. */
static void prune_release_dirs(struct platform *p, const char *app)
{
	int *nums;
	size_t n;
	if (store_release_numbers(p->store, app, &nums, &n, NULL))
		return;
	char *dir = xasprintf("%s/%s/releases", p->apps_dir, app);
	DIR *d = opendir(dir);
	struct dirent *de;
	while (d && (de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		char *end;
		long num = strtol(de->d_name, &end, 10);
		int known = 0;
		for (size_t i = 0; i < n && !*end; i++)
			known |= nums[i] == num;
		if (!known) {
			char *path = fs_join(dir, de->d_name);
			fs_remove_tree(path);
			free(path);
		}
	}
	if (d)
		closedir(d);
	free(dir);
	free(nums);
}

/* Removes app directories with no app in the store (a destroy cut short). */
static void prune_app_dirs(struct platform *p)
{
	DIR *d = opendir(p->apps_dir);
	struct dirent *de;
	while (d && (de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		struct app_rec rec;
		if (store_app_get(p->store, de->d_name, &rec, NULL) == MIREN_ENOTFOUND) {
			char *path = fs_join(p->apps_dir, de->d_name);
			log_info("removing leftover directory of deleted app %s", de->d_name);
			fs_remove_tree(path);
			free(path);
		}
		app_rec_release(&rec);
	}
	if (d)
		closedir(d);
}

static int restart_locked(struct platform *p, const char *app, struct miren_error *err);

/*
 * Addons of apps that no longer exist are removed (moved to
 * deprovisioning).  None arise any more (app destroy marks them first, in
 * one locked operation), but a store written before status writes were
 * compare-and-set can hold some, which would otherwise stay in motion for
 * ever.
 */
static void remove_orphan_addons(struct platform *p)
{
	struct addon_rec *recs;
	size_t n;
	if (store_addon_list(p->store, NULL, &recs, &n, NULL) != 0)
		return;
	for (size_t i = 0; i < n; i++) {
		struct app_rec rec = { 0 };
		if (!strcmp(recs[i].status, "deprovisioning") ||
		    store_app_get(p->store, recs[i].app, &rec, NULL) != MIREN_ENOTFOUND) {
			app_rec_release(&rec);
			continue;
		}
		struct miren_error err;
		if (store_addon_set_status(p->store, recs[i].id, recs[i].status, recs[i].step,
					   "deprovisioning", 0, "", &err) == 0)
			log_info("addon %s of deleted app %s (%s): removing it", recs[i].addon,
				 recs[i].app, recs[i].status);
		else
			log_error("addon %s of deleted app %s: %s", recs[i].addon, recs[i].app,
				  err.message);
	}
	addon_recs_free(recs, n);
}

/* The reconciler's word that an app's addons changed: (re)start the app so
 * its services run, with the addons' env, once every addon is active. */
static void on_addons_changed(void *user, const char *app)
{
	struct platform *p = user;
	struct miren_error err;
	pthread_mutex_lock(&p->lock);
	pthread_cond_broadcast(&p->addons_cv);
	int rc = restart_locked(p, app, &err);
	if (rc && rc != MIREN_ENOTFOUND)
		log_error("app %s: %s", app, err.message);
	pthread_mutex_unlock(&p->lock);
}

/* How long an operation waits for an addon's removal before it gives up. */
#define REMOVAL_WAIT_S 120

static bool ts_later(const struct timespec *a, const struct timespec *b)
{
	return a->tv_sec > b->tv_sec || (a->tv_sec == b->tv_sec && a->tv_nsec > b->tv_nsec);
}

/* Whether the deadline (CLOCK_MONOTONIC) has passed. */
static bool wait_expired(const struct timespec *deadline)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	return !ts_later(deadline, &now);
}

/*
 * Waits (releasing p->lock) until the app's addons change or the deadline
 * (CLOCK_MONOTONIC) passes.  Returns 0 to look again, MIREN_EUNAVAIL when
 * the deadline passed or the daemon is stopping.  Caller holds p->lock.
 */
static int wait_addons_changed(struct platform *p, const struct timespec *deadline)
{
	if (p->stopping || wait_expired(deadline))
		return MIREN_EUNAVAIL;
	/* Wake at least every second, so as not to depend on every path that
	 * ends a removal signalling it. */
	struct timespec until;
	clock_gettime(CLOCK_MONOTONIC, &until);
	until.tv_sec += 1;
	if (ts_later(&until, deadline))
		until = *deadline;
	pthread_cond_timedwait(&p->addons_cv, &p->lock, &until);
	return p->stopping ? MIREN_EUNAVAIL : 0;
}

/* The error of a wait that ended with the daemon stopping. */
static int stopping_error(struct miren_error *err)
{
	miren_error_set(err, MIREN_EUNAVAIL, "the miren server is stopping");
	miren_error_hint(err, "start it again: what was being removed is removed then");
	return MIREN_EUNAVAIL;
}

static void removal_deadline(struct timespec *ts)
{
	clock_gettime(CLOCK_MONOTONIC, ts);
	ts->tv_sec += REMOVAL_WAIT_S;
}

/* Parses "a.b.c.d/len" (a loopback range) into base and size. */
static int parse_pool(const char *cidr, uint32_t *base, uint32_t *size, struct miren_error *err)
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

int platform_open(const struct platform_options *opts, struct platform **out,
		  struct miren_error *err)
{
	*out = NULL;
	struct platform *p = xcalloc(1, sizeof(*p));
	pthread_mutex_init(&p->lock, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&p->addons_cv, &ca);
	pthread_condattr_destroy(&ca);
	p->data_dir = xstrdup(opts->data_dir);
	p->apps_dir = fs_join(p->data_dir, "apps");
	p->tmp_dir = fs_join(p->data_dir, "tmp");
	p->keep_releases = opts->keep_releases > 0 ? opts->keep_releases : 5;
	p->run_uid = (uid_t)-1;
	p->run_gid = (gid_t)-1;
	int rc = 0;
	char *path = NULL;

	if (geteuid() == 0) {
		const char *user = opts->service_user ? opts->service_user : "miren";
		struct passwd *pw = getpwnam(user);
		if (!pw) {
			rc = miren_error_set(err, MIREN_EINVAL, "service user '%s' does not exist", user);
			miren_error_hint(err, "run scripts/bootstrap, which creates it");
			goto fail;
		}
		p->run_uid = pw->pw_uid;
		p->run_gid = pw->pw_gid;
	}
	if (fs_remove_tree(p->tmp_dir) || fs_mkdir_p(p->tmp_dir, 0700) ||
	    fs_mkdir_p(p->apps_dir, 0711)) {
		rc = miren_error_set(err, MIREN_EIO, "cannot create directories in '%s': %s",
				     p->data_dir, strerror(errno));
		goto fail;
	}
	/* Services run as the service user and must reach their release. */
	chmod(p->data_dir, 0711);
	path = fs_join(p->data_dir, "miren.db");
	rc = store_open(path, &p->store, err);
	if (rc)
		goto fail;
	free(path);
	path = fs_join(p->data_dir, "run");
	struct sv_config svc = { .run_dir = path };
	char ebuf[256];
	p->sv = sv_new(&svc, ebuf, sizeof(ebuf));
	if (!p->sv) {
		rc = miren_error_set(err, MIREN_EIO, "cannot start the supervisor: %s", ebuf);
		goto fail;
	}

	p->actx = (struct addon_ctx){ .store = p->store, .sv = p->sv, .data_dir = p->data_dir,
				      .uid = p->run_uid, .gid = p->run_gid };
	rc = parse_pool(opts->addr_pool ? opts->addr_pool : "127.77.0.0/16", &p->actx.pool_base,
			&p->actx.pool_size, err);
	if (rc)
		goto fail;

	/* Converge: drop what a crash left half-done, adopt or restart the
	 * addon servers, start every app, then stop what nobody claimed. */
	prune_app_dirs(p);
	remove_orphan_addons(p);
	disk_recover(&p->actx);
	pthread_mutex_lock(&p->lock);
	p->rec = reconciler_start(&p->actx, on_addons_changed, p);
	struct app_rec *apps;
	size_t n_apps;
	rc = p->rec ? store_app_list(p->store, &apps, &n_apps, err)
		    : miren_error_set(err, MIREN_EINTERNAL, "cannot start the addon reconciler");
	if (rc) {
		pthread_mutex_unlock(&p->lock);
		goto fail;
	}
	for (size_t i = 0; i < n_apps; i++) {
		prune_release_dirs(p, apps[i].name);
		struct app_rec rec;
		struct app_config *cfg;
		struct miren_error e2;
		if (load_current(p, apps[i].name, &rec, &cfg, &e2) == 0 && cfg &&
		    start_services(p, cfg, rec.current_release, &e2) != 0)
			log_error("app %s: %s", apps[i].name, e2.message);
		app_rec_release(&rec);
		app_config_free(cfg);
	}
	app_recs_free(apps, n_apps);
	pthread_mutex_unlock(&p->lock);
	sv_reap_unclaimed(p->sv);
	free(path);
	*out = p;
	return 0;
fail:
	free(path);
	platform_close(p);
	return rc;
}

void platform_close(struct platform *p)
{
	if (!p)
		return;
	reconciler_stop(p->rec);
	if (p->sv)
		sv_free(p->sv);
	store_close(p->store);
	while (p->ports) {
		struct port_slot *s = p->ports;
		p->ports = s->next;
		free(s->id);
		free(s);
	}
	free(p->data_dir);
	free(p->apps_dir);
	free(p->tmp_dir);
	pthread_cond_destroy(&p->addons_cv);
	pthread_mutex_destroy(&p->lock);
	free(p);
}

void platform_stop_waits(struct platform *p)
{
	pthread_mutex_lock(&p->lock);
	p->stopping = true;
	pthread_cond_broadcast(&p->addons_cv);
	pthread_mutex_unlock(&p->lock);
}

static json_t *services_json(struct platform *p, const struct app_config *cfg)
{
	json_t *arr = json_array();
	bool ready = !cfg || addons_ready(p, cfg->name, NULL);
	for (size_t i = 0; cfg && i < cfg->n_services; i++) {
		const struct app_service *s = &cfg->services[i];
		char *id = service_id(cfg->name, s->name);
		struct sv_status st;
		int port = service_port_known(p, id);
		json_t *o = json_pack("{s:s, s:s, s:i}", "name", s->name, "command", s->command,
				      "port", port);
		if (port)
			json_object_set_new(o, "url", json_sprintf("http://127.0.0.1:%d/", port));
		if (sv_status(p->sv, id, &st) == 0) {
			json_object_set_new(o, "state", json_string(sv_state_name(st.state)));
			json_object_set_new(o, "pid", json_integer(st.pid));
			json_object_set_new(o, "restarts", json_integer(st.restarts));
			if (st.state == SV_DETACHED) /* exited 0, its processes run on */
				json_object_set_new(o, "detached_processes",
						    json_integer(st.detached));
			if (st.last_exit >= 0 && WIFEXITED(st.last_exit))
				json_object_set_new(o, "last_exit",
						    json_integer(WEXITSTATUS(st.last_exit)));
			else if (st.last_exit >= 0 && WIFSIGNALED(st.last_exit))
				json_object_set_new(o, "last_signal",
						    json_integer(WTERMSIG(st.last_exit)));
			if (st.started_at_ms)
				json_object_set_new(o, "started_at",
						    json_integer(st.started_at_ms / 1000));
		} else {
			json_object_set_new(o, "state",
					    json_string(ready ? "stopped" : "waiting-for-addons"));
			json_object_set_new(o, "pid", json_integer(0));
			json_object_set_new(o, "restarts", json_integer(0));
		}
		json_array_append_new(arr, o);
		free(id);
	}
	return arr;
}

/* Writes the uploaded source into a fresh directory under tmp. */
static int unpack_to_staging(struct platform *p, const char *tar_path, char **staging,
			     struct miren_error *err)
{
	char *hex = secret_hex(8);
	*staging = xasprintf("%s/release-%s", p->tmp_dir, hex);
	free(hex);
	if (mkdir(*staging, 0755) != 0)
		return miren_error_set(err, MIREN_EIO, "cannot create release directory '%s': %s",
				       *staging, strerror(errno));
	return source_unpack(tar_path, *staging, err);
}

static int read_config(const char *staging, const char *app, struct app_config **cfg,
		       struct miren_error *err)
{
	char *path = fs_join(staging, ".miren/app.toml");
	struct strbuf sb;
	strbuf_init(&sb, 1 << 20);
	int rc = strbuf_read_file(&sb, path);
	if (rc == MIREN_ENOTFOUND) {
		miren_error_set(err, MIREN_EINVAL, "the source has no .miren/app.toml");
		miren_error_hint(err, "create .miren/app.toml with at least a [services.web] command");
	} else if (rc) {
		miren_error_set(err, rc, "cannot read .miren/app.toml: %s", miren_strerror(rc));
	} else {
		rc = app_config_parse(sb.buf, sb.len, ".miren/app.toml", app, cfg, err);
		if (!rc && strcmp((*cfg)->name, app)) {
			rc = miren_error_set(err, MIREN_EINVAL,
					     "app.toml names the app '%s' but the deploy is for '%s'",
					     (*cfg)->name, app);
			app_config_free(*cfg);
			*cfg = NULL;
		}
	}
	strbuf_release(&sb);
	free(path);
	return rc;
}

/*
 * Every [addons.<name>] of cfg names a known addon, variant and version,
 * and none asks for another variant than the one already attached.
 */
static int check_addons(struct platform *p, const struct app_config *cfg, struct miren_error *err)
{
	for (size_t i = 0; i < cfg->n_addons; i++) {
		const struct app_addon *a = &cfg->addons[i];
		const struct addon_def *def;
		const char *variant;
		char version[16];
		int rc = addon_resolve(a->name, a->variant, a->version, &def, &variant, version, err);
		if (rc)
			return rc;
		struct addon_rec cur;
		if (store_addon_get(p->store, cfg->name, a->name, &cur, NULL) == 0) {
			bool same = !strcmp(cur.variant, variant) ||
				    !strcmp(cur.status, "deprovisioning") ||
				    !strcmp(cur.status, "error");
			if (!same) {
				miren_error_set(err, MIREN_ECONFLICT,
						"addon %s of app '%s' is '%s'; app.toml asks for '%s'",
						a->name, cfg->name, cur.variant, variant);
				miren_error_hint(err,
						 "variants cannot be changed in place: back up the "
						 "disk, destroy the addon, deploy, then restore");
			}
			addon_rec_release(&cur);
			if (!same)
				return MIREN_ECONFLICT;
		}
	}
	return 0;
}

static int addon_create_locked(struct platform *p, const char *app, const char *addon,
			       const char *variant, const char *version, const char *source,
			       struct addon_rec *out, struct miren_error *err);
/* Moves app's addon to deprovisioning (compare-and-set from what it read;
 * read again when the reconciler moved it meanwhile); 0 also when it is
 * being removed already.  *id_out (if not NULL) gets its id, to free. */
static int addon_destroy_locked(struct platform *p, const char *app, const char *addon,
				char **id_out, struct miren_error *err);

/* Makes the app's addons what app.toml declares: attaches the new ones
 * (appending their names to created), removes those app.toml attached
 * before and no longer lists.  Addons attached with `miren addon create`
 * are left alone. */
static int sync_addons(struct platform *p, const struct app_config *cfg, json_t *created,
		       struct miren_error *err)
{
	int rc = 0;
	for (size_t i = 0; i < cfg->n_addons && !rc; i++) {
		const struct app_addon *a = &cfg->addons[i];
		struct addon_rec cur;
		if (store_addon_get(p->store, cfg->name, a->name, &cur, NULL) == 0) {
			addon_rec_release(&cur);
			continue;
		}
		struct addon_rec made;
		rc = addon_create_locked(p, cfg->name, a->name, a->variant, a->version, "config",
					 &made, err);
		if (!rc) {
			json_array_append_new(created, json_string(made.addon));
			addon_rec_release(&made);
		}
	}
	struct addon_rec *recs;
	size_t n;
	if (!rc)
		rc = store_addon_list(p->store, cfg->name, &recs, &n, err);
	if (rc)
		return rc;
	for (size_t i = 0; i < n && !rc; i++) {
		bool declared = false;
		for (size_t k = 0; k < cfg->n_addons; k++)
			declared |= !strcmp(cfg->addons[k].name, recs[i].addon);
		if (!declared && !strcmp(recs[i].source, "config") &&
		    strcmp(recs[i].status, "deprovisioning"))
			rc = addon_destroy_locked(p, cfg->name, recs[i].addon, NULL, err);
	}
	addon_recs_free(recs, n);
	return rc;
}

/*
 * A deploy retries what failed: every addon app.toml declares that is in
 * error is removed (its removal undoes whatever is left of it) and, once
 * gone, made anew by sync_addons.  Appends the names to retried.
 */
static int retry_failed_addons(struct platform *p, const struct app_config *cfg, json_t *retried,
			       struct miren_error *err)
{
	int rc = 0;
	for (size_t i = 0; i < cfg->n_addons && !rc; i++) {
		struct addon_rec cur;
		if (store_addon_get(p->store, cfg->name, cfg->addons[i].name, &cur, NULL) != 0)
			continue;
		if (!strcmp(cur.status, "error")) {
			log_info("app %s: deploy retries addon %s, which failed: %s", cfg->name,
				 cur.addon, cur.message);
			rc = addon_destroy_locked(p, cfg->name, cur.addon, NULL, err);
			if (!rc)
				json_array_append_new(retried, json_string(cur.addon));
		}
		addon_rec_release(&cur);
	}
	return rc;
}

/* The first addon app.toml declares that is being removed (to free), or
 * NULL: a deploy waits for it to be gone, then makes a new one, never
 * adopting the dying one. */
static char *dying_addon(struct platform *p, const struct app_config *cfg)
{
	char *name = NULL;
	for (size_t i = 0; i < cfg->n_addons && !name; i++) {
		struct addon_rec cur;
		if (store_addon_get(p->store, cfg->name, cfg->addons[i].name, &cur, NULL) != 0)
			continue;
		if (!strcmp(cur.status, "deprovisioning"))
			name = xstrdup(cur.addon);
		addon_rec_release(&cur);
	}
	return name;
}

static int platform_addon_list_locked(struct platform *p, const char *app, json_t **result,
				      struct miren_error *err);

int platform_deploy(struct platform *p, const char *app, const char *tar_path,
		    const char *sha256, json_t **result, struct miren_error *err)
{
	*result = NULL;
	int rc = name_check_app(app, err);
	if (rc)
		return rc;
	pthread_mutex_lock(&p->lock);
	char *staging = NULL, *target = NULL, *rel_parent = NULL;
	struct app_config *cfg = NULL, *old = NULL;
	struct app_rec rec = { 0 };
	struct env_rec *stored = NULL;
	size_t n_stored = 0;
	int n = 0, unchanged = 0;
	json_t *created = json_array(), *retried = json_array();
	struct timespec deadline;
	removal_deadline(&deadline);

	rc = unpack_to_staging(p, tar_path, &staging, err);
	if (!rc)
		rc = read_config(staging, app, &cfg, err);
	if (rc)
		goto out;
	/* Checked again after each wait: the lock is released meanwhile. */
	for (;;) {
		rc = load_current(p, app, &rec, &old, err);
		if (rc == MIREN_ENOTFOUND) {
			miren_error_clear(err);
			rc = 0;
		}
		if (!rc)
			rc = store_env_list(p->store, app, &stored, &n_stored, err);
		if (!rc)
			rc = check_addons(p, cfg, err);
		if (rc)
			goto out;
		const char *missing = env_missing_required(cfg, stored, n_stored);
		if (missing) {
			rc = miren_error_set(err, MIREN_EINVAL, "required variable '%s' has no value",
					     missing);
			miren_error_hint(err,
					 "set it with 'miren env set -a %s%s %s=VALUE', then deploy again",
					 app, rec.name ? "" : " --create", missing);
			goto out;
		}
		rc = retry_failed_addons(p, cfg, retried, err);
		if (rc)
			goto out;
		char *dying = dying_addon(p, cfg);
		if (!dying)
			break;
		log_info("app %s: the deploy waits for addon %s to be removed", app, dying);
		if (wait_addons_changed(p, &deadline) && p->stopping) {
			rc = stopping_error(err);
			free(dying);
			goto out;
		} else if (wait_expired(&deadline)) {
			rc = miren_error_set(err, MIREN_EUNAVAIL,
					     "addon %s of app '%s' is still being removed", dying, app);
			miren_error_hint(err,
					 "deploy again once 'miren addon list -a %s' no longer shows it",
					 app);
			free(dying);
			goto out;
		}
		free(dying);
		app_rec_release(&rec);
		app_config_free(old);
		old = NULL;
		env_recs_free(stored, n_stored);
		stored = NULL;
		n_stored = 0;
	}

	if (rec.current_release) {
		struct release_rec cur;
		if (store_release_get(p->store, app, rec.current_release, &cur, NULL) == 0) {
			unchanged = !strcmp(cur.source_sha256, sha256);
			release_rec_release(&cur);
		}
	}
	if (unchanged) {
		n = rec.current_release;
		/* Nothing new: make sure the addons app.toml declares exist (one
		 * may have been destroyed by hand) and every service runs;
		 * restart none. */
		rc = sync_addons(p, cfg, created, err);
		for (size_t i = 0; i < cfg->n_services && !rc; i++) {
			char *id = service_id(app, cfg->services[i].name);
			struct sv_status st;
			int running = sv_status(p->sv, id, &st) == 0;
			free(id);
			if (!running) {
				rc = start_services(p, cfg, n, err);
				break;
			}
		}
		goto out;
	}

	rc = store_release_next(p->store, app, &n, err);
	if (rc)
		goto out;
	rel_parent = xasprintf("%s/%s/releases", p->apps_dir, app);
	target = release_dir(p, app, n);
	if (fs_mkdir_p(rel_parent, 0711) != 0 || fs_remove_tree(target) != 0 ||
	    (p->run_uid != (uid_t)-1 && fs_chown_tree(staging, p->run_uid, p->run_gid) != 0) ||
	    rename(staging, target) != 0 || fs_fsync_dir(rel_parent) != 0) {
		rc = miren_error_set(err, MIREN_EIO, "cannot write release directory '%s': %s",
				     target, strerror(errno));
		miren_error_hint(err, "check that the data directory '%s' is writable", p->data_dir);
		goto out;
	}
	free(staging);
	staging = NULL;
	fault_point("deploy:moved");
	json_t *cj = app_config_to_json(cfg);
	char *config_json = json_dumps(cj, JSON_COMPACT);
	json_decref(cj);
	rc = store_release_add(p->store, app, n, sha256, config_json, err);
	free(config_json);
	if (rc) {
		fs_remove_tree(target);
		goto out;
	}
	log_info("app %s: release %d recorded", app, n);
	rc = sync_addons(p, cfg, created, err);
	if (rc)
		goto out;
	stop_removed_services(p, old, cfg);
	rc = start_services(p, cfg, n, err);
	if (n > p->keep_releases) {
		store_release_prune(p->store, app, n - p->keep_releases + 1, NULL);
		prune_release_dirs(p, app);
	}
out:
	if (!rc) {
		json_t *warnings = json_array();
		for (size_t i = 0; i < cfg->n_warnings; i++)
			json_array_append_new(warnings, json_string(cfg->warnings[i]));
		json_t *addons = NULL;
		platform_addon_list_locked(p, app, &addons, NULL);
		*result = json_pack("{s:s, s:i, s:b, s:o, s:o, s:o, s:O, s:O}", "app", app,
				    "release", n, "unchanged", unchanged, "warnings", warnings,
				    "services", services_json(p, cfg), "addons",
				    addons ? addons : json_array(), "addons_created", created,
				    "addons_retried", retried);
	}
	json_decref(created);
	json_decref(retried);
	if (staging)
		fs_remove_tree(staging);
	free(staging);
	free(target);
	free(rel_parent);
	app_config_free(cfg);
	app_config_free(old);
	app_rec_release(&rec);
	env_recs_free(stored, n_stored);
	pthread_mutex_unlock(&p->lock);
	return rc;
}

int platform_app_list(struct platform *p, json_t **result, struct miren_error *err)
{
	struct app_rec *apps;
	size_t n;
	pthread_mutex_lock(&p->lock);
	int rc = store_app_list(p->store, &apps, &n, err);
	if (rc)
		goto out;
	json_t *arr = json_array();
	for (size_t i = 0; i < n; i++) {
		struct app_rec rec;
		struct app_config *cfg = NULL;
		load_current(p, apps[i].name, &rec, &cfg, NULL);
		json_t *svcs = services_json(p, cfg);
		size_t running = 0, idx;
		json_t *s;
		json_array_foreach(svcs, idx, s) {
			const char *state = json_string_value(json_object_get(s, "state"));
			running += state && (!strcmp(state, "running") || !strcmp(state, "starting"));
		}
		json_array_append_new(arr, json_pack("{s:s, s:i, s:I, s:i, s:i}", "name",
						     apps[i].name, "release",
						     apps[i].current_release, "created_at",
						     (json_int_t)apps[i].created_at, "services",
						     (int)json_array_size(svcs), "running",
						     (int)running));
		json_decref(svcs);
		app_config_free(cfg);
		app_rec_release(&rec);
	}
	app_recs_free(apps, n);
	*result = arr;
out:
	pthread_mutex_unlock(&p->lock);
	return rc;
}

int platform_app_status(struct platform *p, const char *app, json_t **result,
			struct miren_error *err)
{
	struct app_rec rec;
	struct app_config *cfg;
	pthread_mutex_lock(&p->lock);
	int rc = load_current(p, app, &rec, &cfg, err);
	json_t *addons = NULL;
	if (!rc)
		rc = platform_addon_list_locked(p, app, &addons, err);
	if (!rc)
		*result = json_pack("{s:s, s:i, s:I, s:o, s:o}", "name", app, "release",
				    rec.current_release, "created_at", (json_int_t)rec.created_at,
				    "services", services_json(p, cfg), "addons", addons);
	app_config_free(cfg);
	app_rec_release(&rec);
	pthread_mutex_unlock(&p->lock);
	return rc;
}

/* Restarts every service of app with fresh env; caller holds the lock. */
static int restart_locked(struct platform *p, const char *app, struct miren_error *err)
{
	struct app_rec rec;
	struct app_config *cfg;
	int rc = load_current(p, app, &rec, &cfg, err);
	if (!rc && cfg) {
		/* sv_start replaces a running process: stop, then start anew. */
		rc = start_services(p, cfg, rec.current_release, err);
	}
	app_config_free(cfg);
	app_rec_release(&rec);
	return rc;
}

int platform_app_restart(struct platform *p, const char *app, struct miren_error *err)
{
	pthread_mutex_lock(&p->lock);
	int rc = restart_locked(p, app, err);
	if (!rc)
		log_info("app %s: restarted", app);
	pthread_mutex_unlock(&p->lock);
	return rc;
}

/* The first of ids (addon instances of app) that still exists, with its
 * message, as "NAME (MESSAGE)" to free; NULL when all are gone. */
static char *addons_left(struct platform *p, const char *app, char **ids, size_t n_ids)
{
	struct addon_rec *recs;
	size_t n;
	char *left = NULL;
	if (store_addon_list(p->store, app, &recs, &n, NULL) != 0)
		return xstrdup("(the state store cannot be read)");
	for (size_t i = 0; i < n && !left; i++)
		for (size_t k = 0; k < n_ids && !left; k++)
			if (!strcmp(recs[i].id, ids[k]))
				left = *recs[i].message ? xasprintf("%s (%s)", recs[i].addon,
								    recs[i].message)
							: xstrdup(recs[i].addon);
	addon_recs_free(recs, n);
	return left;
}

int platform_app_destroy(struct platform *p, const char *app, struct miren_error *err)
{
	struct app_rec rec;
	struct app_config *cfg;
	char **ids = NULL;
	size_t n_ids = 0;
	pthread_mutex_lock(&p->lock);
	int rc = load_current(p, app, &rec, &cfg, err);
	if (rc)
		goto out;
	stop_removed_services(p, cfg, NULL);
	struct addon_rec *recs;
	size_t n;
	rc = store_addon_list(p->store, app, &recs, &n, err);
	if (!rc) {
		ids = xcalloc(n + 1, sizeof(*ids));
		for (size_t i = 0; !rc && i < n; i++) {
			rc = addon_destroy_locked(p, app, recs[i].addon, &ids[n_ids], err);
			n_ids += !rc;
		}
		addon_recs_free(recs, n);
	}
	if (!rc) {
		fault_point("app-destroy:marked");
		rc = store_app_delete(p->store, app, err);
	}
	if (rc)
		goto out;
	char *dir = app_dir(p, app);
	fs_remove_tree(dir);
	free(dir);
	log_info("app %s: destroyed; %zu addons being removed", app, n_ids);
	/* Return once the addons are gone too, so that whatever comes next (a
	 * deploy of the same name) meets nothing of this app. */
	struct timespec deadline;
	removal_deadline(&deadline);
	char *left;
	while ((left = addons_left(p, app, ids, n_ids))) {
		if (wait_addons_changed(p, &deadline) && p->stopping) {
			rc = stopping_error(err);
			free(left);
			break;
		} else if (wait_expired(&deadline)) {
			rc = miren_error_set(err, MIREN_EUNAVAIL,
					     "app '%s' is destroyed, but its addon %s is still being "
					     "removed",
					     app, left);
			miren_error_hint(err, "the server keeps retrying; 'miren debug invariants' "
					      "lists what is left");
			free(left);
			break;
		}
		free(left);
	}
out:
	for (size_t i = 0; i < n_ids; i++)
		free(ids[i]);
	free(ids);
	app_config_free(cfg);
	app_rec_release(&rec);
	pthread_mutex_unlock(&p->lock);
	return rc;
}

static json_t *env_rec_json(const struct env_rec *e, bool unmask)
{
	return json_pack("{s:s, s:s, s:s, s:s, s:b, s:s}", "name", e->key, "value",
			 e->sensitive && !unmask ? MASK : e->value, "service", e->service, "source",
			 env_source_name(e->source), "sensitive", e->sensitive, "description",
			 e->description);
}

/* The effective env of app; caller holds the lock. */
static int effective_env(struct platform *p, const char *app, struct env_rec **eff, size_t *n,
			 struct miren_error *err)
{
	struct app_rec rec;
	struct app_config *cfg;
	struct env_rec *stored = NULL;
	size_t n_stored = 0;
	int rc = load_current(p, app, &rec, &cfg, err);
	if (!rc)
		rc = store_env_list(p->store, app, &stored, &n_stored, err);
	if (!rc)
		env_effective(cfg, stored, n_stored, eff, n);
	env_recs_free(stored, n_stored);
	app_config_free(cfg);
	app_rec_release(&rec);
	return rc;
}

int platform_env_list(struct platform *p, const char *app, bool unmask, json_t **result,
		      struct miren_error *err)
{
	struct env_rec *eff;
	size_t n;
	pthread_mutex_lock(&p->lock);
	int rc = effective_env(p, app, &eff, &n, err);
	if (!rc) {
		*result = json_array();
		for (size_t i = 0; i < n; i++)
			json_array_append_new(*result, env_rec_json(&eff[i], unmask));
		env_recs_free(eff, n);
	}
	pthread_mutex_unlock(&p->lock);
	return rc;
}

int platform_env_get(struct platform *p, const char *app, const char *key, bool unmask,
		     json_t **result, struct miren_error *err)
{
	struct env_rec *eff;
	size_t n;
	*result = NULL;
	pthread_mutex_lock(&p->lock);
	int rc = effective_env(p, app, &eff, &n, err);
	if (!rc) {
		/* The app-wide value if there is one, else the first scoped one. */
		for (size_t i = 0; i < n; i++)
			if (!strcmp(eff[i].key, key) && (!*result || !*eff[i].service)) {
				json_decref(*result);
				*result = env_rec_json(&eff[i], unmask);
			}
		env_recs_free(eff, n);
		if (!*result) {
			rc = miren_error_set(err, MIREN_ENOTFOUND, "variable '%s' is not set on app '%s'",
					     key, app);
			miren_error_hint(err, "run 'miren env list -a %s' to see its variables", app);
		}
	}
	pthread_mutex_unlock(&p->lock);
	return rc;
}

int platform_env_set(struct platform *p, const char *app, const char *key, const char *value,
		     bool sensitive, bool create, struct miren_error *err)
{
	int rc = name_check_env(key, err);
	if (rc)
		return rc;
	if (!strcmp(key, "PORT") || !strncmp(key, "MIREN_", 6)) {
		miren_error_set(err, MIREN_EINVAL, "variable '%s' is set by miren itself", key);
		miren_error_hint(err, "PORT comes from the service's 'port' in app.toml; MIREN_* "
				      "describe the app and release");
		return MIREN_EINVAL;
	}
	if (strlen(value) > 65536)
		return miren_error_set(err, MIREN_ETOOBIG, "value of '%s' is longer than 64 KiB", key);
	rc = name_check_app(app, err);
	if (rc)
		return rc;
	pthread_mutex_lock(&p->lock);
	/* Only an explicit create makes a new app (a `required` variable given
	 * before the first deploy); a mistyped name must not become an app. */
	if (create) {
		rc = store_app_ensure(p->store, app, err);
	} else {
		struct app_rec rec;
		rc = store_app_get(p->store, app, &rec, err);
		if (!rc)
			app_rec_release(&rec);
		else if (rc == MIREN_ENOTFOUND)
			miren_error_hint(err, "run 'miren app list' to see the apps; to give a "
					      "new app variables before its first deploy, pass --create");
	}
	struct env_rec e = { .key = (char *)key, .value = (char *)value, .service = "",
			     .source = ENV_SOURCE_MANUAL, .sensitive = sensitive,
			     .description = "" };
	if (!rc)
		rc = store_env_set(p->store, app, &e, err);
	if (!rc) {
		log_info("app %s: variable %s set", app, key);
		rc = restart_locked(p, app, err);
	}
	pthread_mutex_unlock(&p->lock);
	return rc;
}

int platform_env_delete(struct platform *p, const char *app, const char *key,
			struct miren_error *err)
{
	pthread_mutex_lock(&p->lock);
	struct app_rec rec;
	int rc = store_app_get(p->store, app, &rec, err);
	app_rec_release(&rec);
	if (!rc)
		rc = store_env_delete(p->store, app, key, ENV_SOURCE_MANUAL, err);
	if (rc == MIREN_ENOTFOUND) {
		struct env_rec *eff;
		size_t n;
		struct miren_error e2;
		if (effective_env(p, app, &eff, &n, &e2) == 0) {
			for (size_t i = 0; i < n; i++)
				if (!strcmp(eff[i].key, key)) {
					miren_error_set(err, MIREN_ECONFLICT,
							"variable '%s' comes from %s, not from 'miren env set'",
							key,
							eff[i].source == ENV_SOURCE_CONFIG
								? ".miren/app.toml"
								: "an addon");
					miren_error_hint(err, "%s",
							 eff[i].source == ENV_SOURCE_CONFIG
								 ? "remove it from .miren/app.toml and deploy again"
								 : "destroy the addon to remove its variables");
					rc = MIREN_ECONFLICT;
					break;
				}
			env_recs_free(eff, n);
		}
	}
	if (!rc) {
		log_info("app %s: variable %s deleted", app, key);
		rc = restart_locked(p, app, err);
	}
	pthread_mutex_unlock(&p->lock);
	return rc;
}

int platform_logs(struct platform *p, const char *app, const char *service, long long offset,
		  int tail, json_t **result, struct miren_error *err)
{
	struct app_rec rec;
	struct app_config *cfg;
	pthread_mutex_lock(&p->lock);
	int rc = load_current(p, app, &rec, &cfg, err);
	app_rec_release(&rec);
	if (!rc && (!cfg || !app_config_service(cfg, service))) {
		rc = miren_error_set(err, MIREN_ENOTFOUND, "app '%s' has no service '%s'", app,
				     service);
		miren_error_hint(err, "run 'miren app status -a %s' to see its services", app);
	}
	app_config_free(cfg);
	pthread_mutex_unlock(&p->lock);
	if (rc)
		return rc;

	char *path = xasprintf("%s/%s/logs/%s.log", p->apps_dir, app, service);
	struct strbuf sb;
	strbuf_init(&sb, 0);
	long long end = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		struct stat st;
		fstat(fd, &st);
		end = st.st_size;
		long long from = offset;
		if (offset < 0 || offset > end) {
			/* Find the start of the last `tail` lines within 1 MiB. */
			from = end > (1 << 20) ? end - (1 << 20) : 0;
		}
		long long want = end - from > (1 << 20) ? (1 << 20) : end - from;
		char *buf = xmalloc((size_t)want + 1);
		ssize_t got = pread(fd, buf, (size_t)want, from);
		if (got < 0)
			got = 0;
		const char *start = buf;
		if ((offset < 0 || offset > end) && tail <= 0) {
			start = buf + got;
		} else if (offset < 0 || offset > end) {
			int lines = 0;
			for (ssize_t i = got - 1; i >= 0; i--)
				if (buf[i] == '\n' && i != got - 1 && ++lines >= tail) {
					start = buf + i + 1;
					break;
				}
		}
		strbuf_add(&sb, start, (size_t)(buf + got - start));
		end = from + got;
		free(buf);
		close(fd);
	}
	free(path);
	*result = json_pack("{s:s, s:s%, s:I}", "service", service, "data", sb.buf, sb.len,
			    "offset", (json_int_t)end);
	strbuf_release(&sb);
	return 0;
}

/* --- addons ---------------------------------------------------------------- */

static json_t *variants_json(const struct addon_def *def)
{
	json_t *arr = json_array();
	for (size_t i = 0; i < def->n_variants; i++)
		json_array_append_new(arr, json_pack("{s:s, s:s, s:s, s:b}", "name",
						     def->variants[i].name, "description",
						     def->variants[i].description, "details",
						     def->variants[i].details, "default",
						     !strcmp(def->variants[i].name,
							     def->default_variant)));
	return arr;
}

int platform_addon_available(struct platform *p MIREN_UNUSED, json_t **result,
			     struct miren_error *err MIREN_UNUSED)
{
	*result = json_array();
	for (const struct addon_def *const *d = addon_all(); *d; d++) {
		char versions[8][16];
		size_t n = (*d)->versions(versions, 8);
		json_t *vs = json_array();
		for (size_t i = 0; i < n; i++)
			json_array_append_new(vs, json_string(versions[i]));
		json_array_append_new(*result,
				      json_pack("{s:s, s:s, s:o, s:s, s:o}", "name", (*d)->name,
						"description", (*d)->description, "variants",
						variants_json(*d), "default_variant",
						(*d)->default_variant, "versions", vs));
	}
	return 0;
}

int platform_addon_variants(struct platform *p MIREN_UNUSED, const char *addon, json_t **result,
			    struct miren_error *err)
{
	const struct addon_def *def;
	const char *variant;
	char version[16];
	int rc = addon_resolve(addon, NULL, NULL, &def, &variant, version, err);
	if (rc == MIREN_EUNAVAIL) /* the catalogue shows even when not installed */
		rc = 0;
	if (rc)
		return rc;
	*result = json_pack("{s:s, s:s, s:o}", "name", def->name, "default_variant",
			    def->default_variant, "variants", variants_json(def));
	return 0;
}

static int platform_addon_list_locked(struct platform *p, const char *app, json_t **result,
				      struct miren_error *err)
{
	struct addon_rec *recs;
	size_t n;
	int rc = store_addon_list(p->store, app, &recs, &n, err);
	if (rc)
		return rc;
	*result = json_array();
	for (size_t i = 0; i < n; i++)
		json_array_append_new(*result, addon_inst_json(p->rec, &recs[i]));
	addon_recs_free(recs, n);
	return 0;
}

int platform_addon_list(struct platform *p, const char *app, json_t **result,
			struct miren_error *err)
{
	pthread_mutex_lock(&p->lock);
	struct app_rec rec;
	int rc = store_app_get(p->store, app, &rec, err);
	app_rec_release(&rec);
	if (!rc)
		rc = platform_addon_list_locked(p, app, result, err);
	pthread_mutex_unlock(&p->lock);
	return rc;
}

static int addon_create_locked(struct platform *p, const char *app, const char *addon,
			       const char *variant, const char *version, const char *source,
			       struct addon_rec *out, struct miren_error *err)
{
	const struct addon_def *def;
	const char *v;
	char ver[16];
	int rc = addon_resolve(addon, variant, version, &def, &v, ver, err);
	if (rc)
		return rc;
	struct addon_rec cur;
	if (store_addon_get(p->store, app, addon, &cur, NULL) == 0) {
		miren_error_set(err, MIREN_EEXISTS, "app '%s' already has addon %s (%s, %s)", app,
				addon, cur.variant, cur.status);
		if (!strcmp(cur.status, "deprovisioning"))
			miren_error_hint(err, "it is being removed; try again when 'miren addon list -a %s' no longer shows it", app);
		else
			miren_error_hint(err, "destroy it first with 'miren addon destroy %s -a %s'",
					 addon, app);
		addon_rec_release(&cur);
		return MIREN_EEXISTS;
	}
	char *id = secret_hex(5);
	*out = (struct addon_rec){ .id = id,
				   .app = xstrdup(app),
				   .addon = xstrdup(def->name),
				   .variant = xstrdup(v),
				   .version = xstrdup(ver),
				   .status = xstrdup("pending"),
				   .message = xstrdup(""),
				   .state_json = xstrdup("{}"),
				   .source = xstrdup(source) };
	rc = store_addon_add(p->store, out, err);
	if (rc) {
		addon_rec_release(out);
		return rc;
	}
	log_info("addon %s (%s) attached to app %s", def->name, v, app);
	reconciler_kick(p->rec);
	return 0;
}

int platform_addon_create(struct platform *p, const char *app, const char *addon,
			  const char *variant, const char *version, json_t **result,
			  struct miren_error *err)
{
	pthread_mutex_lock(&p->lock);
	struct app_rec rec;
	struct addon_rec made;
	int rc = store_app_get(p->store, app, &rec, err);
	app_rec_release(&rec);
	if (!rc)
		rc = addon_create_locked(p, app, addon, variant, version, "cli", &made, err);
	if (!rc) {
		*result = addon_inst_json(p->rec, &made);
		addon_rec_release(&made);
	}
	pthread_mutex_unlock(&p->lock);
	return rc;
}

static int addon_destroy_locked(struct platform *p, const char *app, const char *addon,
				char **id_out, struct miren_error *err)
{
	for (int tries = 0;; tries++) {
		struct addon_rec cur;
		int rc = store_addon_get(p->store, app, addon, &cur, err);
		if (rc) {
			miren_error_hint(err, "run 'miren addon list -a %s' to see its addons", app);
			return rc;
		}
		if (strcmp(cur.status, "deprovisioning")) {
			/* From what was read: the reconciler may be moving it. */
			rc = store_addon_set_status(p->store, cur.id, cur.status, cur.step,
						    "deprovisioning", 0, "", err);
			if ((rc == MIREN_ECONFLICT || rc == MIREN_ENOTFOUND) && tries < 100) {
				addon_rec_release(&cur);
				continue;
			}
			if (!rc)
				log_info("addon %s of app %s: removal requested (it was %s)", addon,
					 app, cur.status);
		}
		if (!rc && id_out)
			*id_out = xstrdup(cur.id);
		addon_rec_release(&cur);
		reconciler_kick(p->rec);
		return rc;
	}
}

int platform_addon_destroy(struct platform *p, const char *app, const char *addon,
			   struct miren_error *err)
{
	pthread_mutex_lock(&p->lock);
	int rc = addon_destroy_locked(p, app, addon, NULL, err);
	pthread_mutex_unlock(&p->lock);
	return rc;
}

int platform_disk_list(struct platform *p, json_t **result, struct miren_error *err)
{
	struct disk_rec *disks;
	size_t n;
	int rc = store_disk_list(p->store, &disks, &n, err);
	if (rc)
		return rc;
	*result = json_array();
	for (size_t i = 0; i < n; i++) {
		char *dir = xasprintf("%s/disks/%s", p->data_dir, disks[i].name);
		long long used = fs_disk_usage(dir);
		free(dir);
		json_array_append_new(*result,
				      json_pack("{s:s, s:I, s:I, s:s, s:s, s:I}", "name",
						disks[i].name, "size", (json_int_t)disks[i].size_bytes,
						"used", (json_int_t)(used < 0 ? 0 : used), "status",
						disks[i].status, "created_by", disks[i].created_by,
						"created_at", (json_int_t)disks[i].created_at));
	}
	disk_recs_free(disks, n);
	return 0;
}

int platform_disk_backup_prepare(struct platform *p, const char *name,
				 struct disk_backup_job **job, struct miren_error *err)
{
	return disk_backup_prepare(&p->actx, name, job, err);
}

int platform_disk_restore(struct platform *p, int fd, const char *name, bool force,
			  bool (*abandoned)(void *), void *abandoned_user, json_t **result,
			  struct miren_error *err)
{
	return disk_restore(&p->actx, snap_source_fd, &fd, name, force, abandoned, abandoned_user,
			    result, err);
}

int platform_invariants(struct platform *p, json_t **result, struct miren_error *err)
{
	return addon_invariants_check(&p->actx, result, err);
}
