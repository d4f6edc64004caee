/*
 * The reconciler: one thread that moves every addon instance towards its
 * goal, one recorded step at a time (see addon.h for the states).
 *
 * The store is the only memory: on each pass the thread lists the
 * instances, and for each one not in a terminal state runs the step its
 * `step` counter names, then records the incremented counter and the state
 * the step left in one write.  A crash between the step and the write runs
 * the step again, which is why every step is idempotent.
 *
 * Retries: a failed step with a retryable cause (addon_err_retryable) is
 * not recorded as an error: the instance gets a backoff entry (in memory:
 * a restarted daemon starts counting again) and the pass skips it until
 * it is due.  Deliberate: a leftover of a dead daemon (a backend still
 * running its statement, a database server still recovering) goes away by
 * itself, and the next attempt then finds the state it expects.
 */
#include "addon/addon.h"
#include "addon/disk_ops.h"
#include "addon/server.h"
#include "util/fault.h"
#include "util/log.h"

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define RETRY_FIRST_MS 1000
#define RETRY_CAP_MS 30000

/* The backoff of one instance whose last step failed for a retryable cause. */
struct retry {
	char *id;       /* the instance id */
	bool removing;  /* counts removal attempts (else provisioning ones) */
	int attempts;   /* failed attempts so far */
	int64_t due_ms; /* CLOCK_MONOTONIC: not to be run before */
};

struct reconciler {
	struct addon_ctx ctx;
	atomic_bool stop_flag; /* ctx.stopping points here */
	struct retry *retries; /* only the reconciler thread touches these */
	size_t n_retries;
	addon_changed_fn changed;
	addon_fill_fn fill; /* NULL: forks are not filled (they fail) */
	void *user;
	pthread_t thread;
	pthread_t preparer; /* runs the idle hooks, off the provisioning path */
	pthread_mutex_t lock;
	/* Held while the thread runs an instance's steps (reconciler_hold);
	 * the apps whose addons changed meanwhile are told after it is let
	 * go (their callbacks take app locks that a holder may own). */
	pthread_mutex_t work;
	char **changed_apps;
	size_t n_changed;
	pthread_cond_t wake;
	pthread_cond_t prepare;
	bool kicked;
	bool prepare_wanted;
	bool stopping;
};

bool addon_err_retryable(enum miren_err code)
{
	return code == MIREN_EUNAVAIL || code == MIREN_EIO || code == MIREN_EDB ||
	       code == MIREN_EINTERNAL;
}

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static struct retry *retry_find(struct reconciler *r, const char *id)
{
	for (size_t i = 0; i < r->n_retries; i++)
		if (!strcmp(r->retries[i].id, id))
			return &r->retries[i];
	return NULL;
}

/* Forgets the backoff of an instance (its step succeeded, or it is gone). */
static void retry_clear(struct reconciler *r, const char *id)
{
	struct retry *e = retry_find(r, id);
	if (!e)
		return;
	free(e->id);
	*e = r->retries[--r->n_retries];
}

/* Counts one more failed attempt and schedules the next one: 1 s, doubling,
 * capped at 30 s.  Returns the attempts so far; *delay_ms the wait. */
static int retry_note(struct reconciler *r, const char *id, bool removing, int *delay_ms)
{
	struct retry *e = retry_find(r, id);
	if (!e) {
		r->retries = xrealloc(r->retries, (r->n_retries + 1) * sizeof(*r->retries));
		e = &r->retries[r->n_retries++];
		*e = (struct retry){ .id = xstrdup(id), .removing = removing };
	}
	e->attempts++;
	int64_t first = r->ctx.retry_base_ms > 0 ? r->ctx.retry_base_ms : RETRY_FIRST_MS;
	int64_t cap = first * (RETRY_CAP_MS / RETRY_FIRST_MS);
	int64_t d = first;
	for (int i = 1; i < e->attempts && d < cap; i++)
		d *= 2;
	if (d > cap)
		d = cap;
	*delay_ms = (int)d;
	e->due_ms = now_ms() + d;
	return e->attempts;
}

/*
 * Records inst->rec (status, step, message) and its state as a
 * compare-and-set from what the store last held as far as this thread
 * knows (inst->stored_*).  MIREN_ECONFLICT or MIREN_ENOTFOUND: another
 * writer (a destroy) moved the instance meanwhile; its state is recorded
 * anyway (so the removal undoes what the last step made) and the caller
 * stops: the next pass sees the instance as it now is.
 */
static enum miren_err save(struct reconciler *r, const struct addon_def *def,
			   struct addon_inst *inst, struct miren_error *err)
{
	char *state = def->state_json(inst->state);
	free(inst->rec.state_json);
	inst->rec.state_json = state;
	enum miren_err rc = store_addon_update(r->ctx.store, &inst->rec, inst->stored_status,
					       inst->stored_step, err);
	if (!rc)
		addon_inst_stored(inst);
	return rc;
}

/* Whether a failed write lost a race (not a store failure). */
static bool lost_race(const struct miren_error *err)
{
	return err->code == MIREN_ECONFLICT || err->code == MIREN_ENOTFOUND;
}

void addon_inst_stored(struct addon_inst *inst)
{
	free(inst->stored_status);
	inst->stored_status = xstrdup(inst->rec.status);
	inst->stored_step = inst->rec.step;
}

void addon_inst_set_server(struct addon_inst *inst, const char *server_id)
{
	free(inst->rec.server);
	inst->rec.server = xstrdup(server_id ? server_id : "");
}

bool addon_stopping(const struct addon_ctx *ctx)
{
	return ctx->stopping && atomic_load(ctx->stopping);
}

static char *dup_or_empty(const char *s)
{
	return xstrdup(s ? s : "");
}

enum miren_err addon_inst_load(const struct addon_def *def, const struct addon_rec *rec,
			       struct addon_inst *inst, struct miren_error *err)
{
	memset(inst, 0, sizeof(*inst));
	void *state = NULL;
	enum miren_err rc = def->state_parse(rec->state_json ? rec->state_json : "", &state, err);
	if (rc)
		return rc;
	inst->state = state;
	inst->rec = (struct addon_rec){
		.id = dup_or_empty(rec->id),
		.app = dup_or_empty(rec->app),
		.addon = dup_or_empty(rec->addon),
		.variant = dup_or_empty(rec->variant),
		.version = dup_or_empty(rec->version),
		.status = dup_or_empty(rec->status),
		.step = rec->step,
		.message = dup_or_empty(rec->message),
		.detail = dup_or_empty(rec->detail),
		.hint = dup_or_empty(rec->hint),
		.state_json = dup_or_empty(rec->state_json),
		.source = dup_or_empty(rec->source),
		.created_at = rec->created_at,
		.server = dup_or_empty(rec->server),
		.fork = dup_or_empty(rec->fork),
	};
	addon_inst_stored(inst);
	return 0;
}

void addon_inst_release(const struct addon_def *def, struct addon_inst *inst)
{
	if (inst->state)
		def->state_free(inst->state);
	addon_rec_release(&inst->rec);
	free(inst->stored_status);
	memset(inst, 0, sizeof(*inst));
}

void addon_connect_release(struct addon_connect *c)
{
	for (char **p = c->argv; p && *p; p++)
		free(*p);
	for (char **p = c->env; p && *p; p++) {
		explicit_bzero(*p, strlen(*p)); /* passwords */
		free(*p);
	}
	free(c->argv);
	free(c->env);
	c->argv = c->env = NULL;
}

void addon_connect_args(struct addon_connect *c, const char *const *args)
{
	size_t n = 0, add = 0;
	while (c->argv && c->argv[n])
		n++;
	while (args[add])
		add++;
	c->argv = xrealloc(c->argv, (n + add + 1) * sizeof(*c->argv));
	for (size_t i = 0; i < add; i++)
		c->argv[n++] = xstrdup(args[i]);
	c->argv[n] = NULL;
}

/* Sets the status, with the error (NULL: none) as the message, detail and
 * hint, kept apart. */
static void set_status(struct addon_inst *inst, const char *status, const struct miren_error *e)
{
	free(inst->rec.status);
	inst->rec.status = xstrdup(status);
	free(inst->rec.message);
	free(inst->rec.detail);
	free(inst->rec.hint);
	inst->rec.message = xstrdup(e ? e->message : "");
	inst->rec.detail = xstrdup(e ? e->detail : "");
	inst->rec.hint = xstrdup(e ? e->hint : "");
}

/* Notes that app's addons changed: told by pass once the work is let go. */
static void note_changed(struct reconciler *r, const char *app)
{
	r->changed_apps = xrealloc(r->changed_apps, (r->n_changed + 1) * sizeof(char *));
	r->changed_apps[r->n_changed++] = xstrdup(app);
}

static void tell_changed(struct reconciler *r)
{
	for (size_t i = 0; i < r->n_changed; i++) {
		r->changed(r->user, r->changed_apps[i]);
		free(r->changed_apps[i]);
	}
	free(r->changed_apps);
	r->changed_apps = NULL;
	r->n_changed = 0;
}

void reconciler_hold(struct reconciler *r)
{
	pthread_mutex_lock(&r->work);
}

void reconciler_release(struct reconciler *r)
{
	pthread_mutex_unlock(&r->work);
}

static bool stopping(struct reconciler *r)
{
	pthread_mutex_lock(&r->lock);
	bool s = r->stopping;
	pthread_mutex_unlock(&r->lock);
	return s;
}

/*
 * After a failed provisioning step: releases what the earlier steps made
 * (the deprovision steps are idempotent and skip what does not exist), so
 * an instance in error holds no server, disk or database.
 */
static void undo(struct reconciler *r, const struct addon_def *def, struct addon_inst *inst)
{
	size_t n;
	const struct addon_step *steps = def->deprovision_steps(inst->rec.variant, &n);
	for (size_t i = 0; i < n; i++) {
		struct miren_error err;
		if (steps[i].run(&r->ctx, inst, &err) != 0)
			log_error("addon %s of app %s: cleaning up after the failure: %s",
				  def->name, inst->rec.app, err.message);
	}
}

/*
 * After provisioning step `name` of inst failed with *err: schedules a
 * retry for a retryable cause (the instance stays in provisioning with a
 * note), else (or after the last attempt) releases what the earlier steps
 * made and records the instance in error, telling the app.  Returns false
 * only when that record failed (*err then says why).
 */
static bool failed_step(struct reconciler *r, const struct addon_def *def, struct addon_inst *inst,
			const char *name, struct miren_error *err)
{
	int delay = 0, attempts = 0;
	if (addon_err_retryable(err->code)) {
		attempts = retry_note(r, inst->rec.id, false, &delay);
		if (attempts < ADDON_RETRY_MAX) {
			log_warn("addon %s of app %s: step %s failed (attempt %d of %d), retrying "
				 "in %d s: %s",
				 def->name, inst->rec.app, name, attempts, ADDON_RETRY_MAX,
				 delay / 1000, err->message);
			free(inst->rec.message);
			inst->rec.message = xasprintf("step %s failed (attempt %d of %d), retrying "
						      "in %d s: %s",
						      name, attempts, ADDON_RETRY_MAX, delay / 1000,
						      err->message);
			save(r, def, inst, NULL);
			return true;
		}
	}
	retry_clear(r, inst->rec.id);
	log_error("addon %s of app %s: step %s failed: %s", def->name, inst->rec.app, name,
		  err->message);
	struct miren_error failed = *err;
	if (attempts) {
		char *gave_up = xasprintf("%s (gave up after %d attempts)", err->message, attempts);
		snprintf(failed.message, sizeof(failed.message), "%.*s",
			 (int)sizeof(failed.message) - 1, gave_up);
		free(gave_up);
		if (!failed.hint[0])
			miren_error_hint(&failed,
					 "when the cause is fixed, run 'miren addon destroy %s -a "
					 "%s' and create it again",
					 def->name, inst->rec.app);
	}
	undo(r, def, inst);
	set_status(inst, "error", &failed);
	inst->rec.step = 0;
	if (save(r, def, inst, err))
		return false;
	if (*inst->rec.fork)
		fault_point("fork:failed");
	note_changed(r, inst->rec.app);
	return true;
}

static void provision(struct reconciler *r, const struct addon_def *def, struct addon_inst *inst)
{
	struct miren_error err;
	miren_error_clear(&err);
	size_t n;
	const struct addon_step *steps = def->provision_steps(inst->rec.variant, &n);
	if (!strcmp(inst->rec.status, "pending")) {
		set_status(inst, "provisioning", NULL);
		inst->rec.step = 0;
		if (save(r, def, inst, &err))
			goto store_failed;
		log_info("addon %s of app %s: provisioning (%s)", def->name, inst->rec.app,
			 inst->rec.variant);
	}
	while (inst->rec.step < (int)n) {
		if (stopping(r))
			return;
		const struct addon_step *s = &steps[inst->rec.step];
		struct timespec t0, t1;
		clock_gettime(CLOCK_MONOTONIC, &t0);
		if (s->run(&r->ctx, inst, &err) != 0) {
			if (stopping(r)) {
				/* Interrupted by the stop: the next daemon runs it again. */
				log_info("addon %s of app %s: step %s interrupted by the stop",
					 def->name, inst->rec.app, s->name);
				return;
			}
			if (failed_step(r, def, inst, s->name, &err))
				return;
			goto store_failed;
		}
		clock_gettime(CLOCK_MONOTONIC, &t1);
		retry_clear(r, inst->rec.id);
		if (inst->rec.message && *inst->rec.message) {
			free(inst->rec.message); /* the "retrying" note is out of date */
			inst->rec.message = xstrdup("");
		}
		log_debug("addon %s of app %s: step %s done in %ld ms", def->name, inst->rec.app,
			  s->name,
			  (long)((t1.tv_sec - t0.tv_sec) * 1000 +
				 (t1.tv_nsec - t0.tv_nsec) / 1000000));
		fault_pointf("provision:%s:%s:%s:ran", def->name, inst->rec.variant, s->name);
		inst->rec.step++;
		if (save(r, def, inst, &err))
			goto store_failed;
		fault_pointf("provision:%s:%s:%s:saved", def->name, inst->rec.variant, s->name);
	}
	/* A fork: its data goes in before it is active (one more recorded
	 * step, numbered after the engine's), so the app never sees it empty. */
	if (*inst->rec.fork && inst->rec.step == (int)n) {
		if (stopping(r))
			return;
		enum miren_err frc = r->fill ? r->fill(r->user, def, inst, &err)
					     : miren_error_set(&err, MIREN_EINTERNAL,
							       "this daemon fills no fork");
		if (frc) {
			if (stopping(r))
				return;
			if (failed_step(r, def, inst, "fill", &err))
				return;
			goto store_failed;
		}
		fault_point("fork:filled");
		retry_clear(r, inst->rec.id);
		if (inst->rec.message && *inst->rec.message) {
			free(inst->rec.message);
			inst->rec.message = xstrdup("");
		}
		inst->rec.step++;
		if (save(r, def, inst, &err))
			goto store_failed;
	}
	struct env_rec *vars = NULL;
	size_t n_vars = 0;
	if (def->env(&r->ctx, inst, &vars, &n_vars, &err) != 0) {
		set_status(inst, "error", &err);
		if (save(r, def, inst, &err))
			goto store_failed;
		note_changed(r, inst->rec.app);
		return;
	}
	fault_pointf("activate:%s:%s", def->name, inst->rec.variant);
	set_status(inst, "active", NULL);
	char *state = def->state_json(inst->state);
	free(inst->rec.state_json);
	inst->rec.state_json = state;
	int rc = store_addon_activate(r->ctx.store, &inst->rec, inst->stored_status,
				      inst->stored_step, vars, n_vars, &err);
	env_recs_free(vars, n_vars);
	if (rc)
		goto store_failed;
	log_info("addon %s of app %s: active", def->name, inst->rec.app);
	note_changed(r, inst->rec.app);
	return;
store_failed:
	if (lost_race(&err))
		log_info("addon %s of app %s: provisioning stopped: %s", def->name, inst->rec.app,
			 err.message);
	else
		log_error("addon %s of app %s: cannot record progress: %s", def->name,
			  inst->rec.app, err.message);
}

/* Returns true when the instance is gone. */
static bool deprovision(struct reconciler *r, const struct addon_def *def, struct addon_inst *inst)
{
	struct miren_error err;
	miren_error_clear(&err);
	size_t n;
	const struct addon_step *steps = def->deprovision_steps(inst->rec.variant, &n);
	while (inst->rec.step < (int)n) {
		if (stopping(r))
			return false;
		const struct addon_step *s = &steps[inst->rec.step];
		if (s->run(&r->ctx, inst, &err) != 0) {
			if (stopping(r))
				return false;
			/* Stay in deprovisioning and retry after the backoff. */
			int delay = 0;
			int attempts = retry_note(r, inst->rec.id, true, &delay);
			log_error("addon %s of app %s: removing, step %s failed (attempt %d): %s "
				  "(retrying in %d s)",
				  def->name, inst->rec.app, s->name, attempts, err.message,
				  delay / 1000);
			free(inst->rec.message);
			inst->rec.message = xasprintf("removing, step %s failed (attempt %d), "
						      "retrying in %d s: %s",
						      s->name, attempts, delay / 1000, err.message);
			save(r, def, inst, &err);
			return false;
		}
		retry_clear(r, inst->rec.id);
		fault_pointf("deprovision:%s:%s:%s:ran", def->name, inst->rec.variant, s->name);
		inst->rec.step++;
		if (save(r, def, inst, &err)) {
			log_error("addon %s: cannot record progress: %s", def->name, err.message);
			return false;
		}
		fault_pointf("deprovision:%s:%s:%s:saved", def->name, inst->rec.variant, s->name);
	}
	if (store_addon_delete(r->ctx.store, inst->rec.id, "deprovisioning", &err) != 0) {
		log_error("addon %s: cannot forget instance: %s", def->name, err.message);
		return false;
	}
	retry_clear(r, inst->rec.id);
	log_info("addon %s of app %s: removed", def->name, inst->rec.app);
	note_changed(r, inst->rec.app);
	return true;
}

/* One pass over every instance due to run; returns true if any is still
 * in motion.  *worked tells whether any instance changed; *wait_ms is
 * lowered to the time until the next instance in backoff is due. */
static bool pass(struct reconciler *r, bool *worked, int64_t *wait_ms)
{
	struct addon_rec *recs;
	size_t n;
	struct miren_error err;
	if (store_addon_list(r->ctx.store, NULL, &recs, &n, &err) != 0) {
		log_error("reconciler: %s", err.message);
		return true;
	}
	bool busy = false;
	for (size_t i = 0; i < n && !stopping(r); i++) {
		const char *status = recs[i].status;
		bool prov = !strcmp(status, "pending") || !strcmp(status, "provisioning");
		bool deprov = !strcmp(status, "deprovisioning");
		if (!prov && !deprov)
			continue;
		const struct addon_def *def = addon_find(recs[i].addon);
		if (!def)
			continue;
		struct retry *e = retry_find(r, recs[i].id);
		if (e && e->removing != deprov) {
			/* A removal asked for during a provisioning's backoff: at once. */
			retry_clear(r, recs[i].id);
			e = NULL;
		}
		int64_t left = e ? e->due_ms - now_ms() : 0;
		if (left > 0) {
			busy = true;
			if (left < *wait_ms)
				*wait_ms = left;
			continue;
		}
		struct addon_inst inst;
		if (addon_inst_load(def, &recs[i], &inst, &err) != 0) {
			/* A bug or a hand-edited store: nothing a retry fixes. */
			log_error("addon %s of app %s: its recorded state cannot be read: %s",
				  recs[i].addon, recs[i].app, err.message);
			continue;
		}
		*worked = true;
		pthread_mutex_lock(&r->work);
		if (prov)
			provision(r, def, &inst);
		else
			busy |= !deprovision(r, def, &inst);
		pthread_mutex_unlock(&r->work);
		tell_changed(r);
		if ((e = retry_find(r, inst.rec.id)) != NULL) {
			busy = true;
			left = e->due_ms - now_ms();
			if (left < *wait_ms)
				*wait_ms = left > 0 ? left : 0;
		}
		addon_inst_release(def, &inst);
	}
	addon_recs_free(recs, n);
	return busy;
}

static void *run(void *arg)
{
	struct reconciler *r = arg;
	bool worked = true; /* prepare at start too */
	for (;;) {
		int64_t wait_ms = 30000;
		bool busy = pass(r, &worked, &wait_ms);
		pthread_mutex_lock(&r->lock);
		if (worked && !busy) {
			r->prepare_wanted = true;
			pthread_cond_signal(&r->prepare);
		}
		worked = false;
		if (!r->kicked && !r->stopping && wait_ms > 0) {
			struct timespec ts;
			clock_gettime(CLOCK_REALTIME, &ts);
			ts.tv_sec += wait_ms / 1000;
			ts.tv_nsec += (wait_ms % 1000) * 1000000L;
			if (ts.tv_nsec >= 1000000000L) {
				ts.tv_sec++;
				ts.tv_nsec -= 1000000000L;
			}
			pthread_cond_timedwait(&r->wake, &r->lock, &ts);
		}
		r->kicked = false;
		bool stop = r->stopping;
		pthread_mutex_unlock(&r->lock);
		if (stop)
			break;
	}
	return NULL;
}

/* The preparer thread: runs the idle hooks whenever the reconciler asks. */
static void *prepare_run(void *arg)
{
	struct reconciler *r = arg;
	pthread_mutex_lock(&r->lock);
	for (;;) {
		while (!r->prepare_wanted && !r->stopping)
			pthread_cond_wait(&r->prepare, &r->lock);
		if (r->stopping)
			break;
		r->prepare_wanted = false;
		pthread_mutex_unlock(&r->lock);
		if (!stopping(r))
			addon_disk_spares(&r->ctx);
		for (const struct addon_def *const *d = addon_all(); *d; d++)
			if ((*d)->idle && !stopping(r))
				(*d)->idle(&r->ctx);
		pthread_mutex_lock(&r->lock);
	}
	pthread_mutex_unlock(&r->lock);
	return NULL;
}

struct reconciler *reconciler_start(const struct addon_ctx *ctx, addon_changed_fn changed,
				    addon_fill_fn fill, void *user)
{
	struct reconciler *r = xcalloc(1, sizeof(*r));
	r->ctx = *ctx;
	atomic_init(&r->stop_flag, false);
	r->ctx.stopping = &r->stop_flag;
	r->changed = changed;
	r->fill = fill;
	r->user = user;
	pthread_mutex_init(&r->lock, NULL);
	pthread_mutex_init(&r->work, NULL);
	pthread_cond_init(&r->wake, NULL);
	for (const struct addon_def *const *d = addon_all(); *d; d++)
		if ((*d)->resume)
			(*d)->resume(&r->ctx);
	pthread_cond_init(&r->prepare, NULL);
	if (pthread_create(&r->preparer, NULL, prepare_run, r) != 0) {
		log_error("reconciler: cannot start its threads");
		pthread_mutex_destroy(&r->lock);
		pthread_cond_destroy(&r->wake);
		pthread_cond_destroy(&r->prepare);
		free(r);
		return NULL;
	}
	if (pthread_create(&r->thread, NULL, run, r) != 0) {
		log_error("reconciler: cannot start its threads");
		pthread_mutex_lock(&r->lock);
		r->stopping = true;
		pthread_cond_signal(&r->prepare);
		pthread_mutex_unlock(&r->lock);
		pthread_join(r->preparer, NULL);
		pthread_mutex_destroy(&r->lock);
		pthread_cond_destroy(&r->wake);
		pthread_cond_destroy(&r->prepare);
		free(r);
		return NULL;
	}
	return r;
}

void reconciler_kick(struct reconciler *r)
{
	pthread_mutex_lock(&r->lock);
	r->kicked = true;
	pthread_cond_signal(&r->wake);
	pthread_mutex_unlock(&r->lock);
}

void reconciler_stop(struct reconciler *r)
{
	if (!r)
		return;
	pthread_mutex_lock(&r->lock);
	r->stopping = true;
	atomic_store(&r->stop_flag, true);
	pthread_cond_signal(&r->wake);
	pthread_cond_signal(&r->prepare);
	pthread_mutex_unlock(&r->lock);
	/* A step may start a helper after a first interrupt: repeat it until
	 * both threads are done. */
	for (int joined = 0; joined < 2;) {
		for (const struct addon_def *const *d = addon_all(); *d; d++)
			if ((*d)->interrupt)
				(*d)->interrupt(&r->ctx);
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += 200 * 1000000L;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		pthread_t t = joined == 0 ? r->thread : r->preparer;
		if (pthread_timedjoin_np(t, NULL, &ts) == 0)
			joined++;
	}
	for (size_t i = 0; i < r->n_retries; i++)
		free(r->retries[i].id);
	free(r->retries);
	pthread_mutex_destroy(&r->work);
	pthread_mutex_destroy(&r->lock);
	pthread_cond_destroy(&r->wake);
	pthread_cond_destroy(&r->prepare);
	free(r);
}

/*
 * An active instance is only as up as its server: one the supervisor sees
 * restarting after an exit shows as "restarting", one that keeps crashing
 * as "error", one stopped (a restore's swap) as "down", each with a
 * message, instead of "active".
 */
static void server_truth(json_t *o, const struct sv_status *st)
{
	const char *status = NULL;
	char *msg = NULL;
	switch (st->state) {
	case SV_BACKOFF:
	case SV_DETACHED:
		status = "restarting";
		msg = xasprintf("its database server exited and is being restarted (%u restarts so "
				"far)",
				st->restarts);
		break;
	case SV_CRASHLOOP:
		status = "error";
		msg = xasprintf("its database server keeps crashing (%u restarts)", st->restarts);
		/* A server that keeps crashing is an error, whatever the record
		 * says: said whole, as an error object. */
		json_object_set_new(o, "error",
				    json_pack("{s:s, s:s, s:s}", "message", msg, "detail", "",
					      "hint", "see logs/addons/ in the data directory"));
		break;
	case SV_STOPPING:
	case SV_STOPPED:
		status = "down";
		msg = xstrdup("its database server is stopped");
		break;
	case SV_STARTING:
		if (st->restarts > 0) {
			status = "restarting";
			msg = xasprintf("its database server is starting again after an exit (%u "
					"restarts so far)",
					st->restarts);
		}
		break;
	case SV_RUNNING:
		break;
	}
	if (status) {
		json_object_set_new(o, "status", json_string(status));
		json_object_set_new(o, "message", json_string(msg));
	}
	free(msg);
}

json_t *addon_inst_json(struct reconciler *r, const struct addon_rec *rec)
{
	json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:I}", "id", rec->id, "app", rec->app,
			      "addon", rec->addon, "variant", rec->variant, "version", rec->version,
			      "status", rec->status, "created_at", (json_int_t)rec->created_at);
	if (rec->message && *rec->message)
		json_object_set_new(o, "message", json_string(rec->message));
	if (!strcmp(rec->status, "error"))
		json_object_set_new(o, "error",
				    json_pack("{s:s, s:s, s:s}", "message",
					      rec->message ? rec->message : "", "detail",
					      rec->detail ? rec->detail : "", "hint",
					      rec->hint ? rec->hint : ""));
	json_object_set_new(o, "source", json_string(rec->source));
	json_t *fork = rec->fork && *rec->fork ? json_loads(rec->fork, 0, NULL) : NULL;
	if (fork) /* where a fork's data came from (no secrets: names, times) */
		json_object_set_new(o, "forked_from",
				    json_pack("{s:O?, s:O?, s:O?}", "app",
					      json_object_get(fork, "app"), "variant",
					      json_object_get(fork, "variant"), "at",
					      json_object_get(json_object_get(fork, "opts"),
							      "recovery_target_time")));
	json_decref(fork);
	const struct addon_def *def = addon_find(rec->addon);
	struct addon_inst inst;
	/* When the credentials the app has were made: the last rotation's,
	 * else the instance's creation. */
	int64_t issued = rec->created_at;
	if (def && addon_inst_load(def, rec, &inst, NULL) == 0) {
		if (def->credentials_issued_at && def->credentials_issued_at(inst.state) > 0)
			issued = def->credentials_issued_at(inst.state);
		if (def->rotate_phase && def->rotate_phase(inst.state) != ADDON_ROTATE_NONE)
			json_object_set_new(o, "rotation", json_string("unfinished"));
		json_t *extra = def->describe && r ? def->describe(&r->ctx, &inst) : NULL;
		if (extra)
			json_object_update(o, extra);
		json_decref(extra);
		addon_inst_release(def, &inst);
	}
	json_object_set_new(o, "credentials_issued_at", json_integer((json_int_t)issued));
	struct sv_status st;
	if (r && rec->server && *rec->server &&
	    addon_server_supervised(&r->ctx, rec->server, &st)) {
		json_object_set_new(o, "server_state", json_string(sv_state_name(st.state)));
		json_object_set_new(o, "server_restarts", json_integer(st.restarts));
		if (!strcmp(rec->status, "active"))
			server_truth(o, &st);
	}
	/* How full its disk is, and the warning when nearly full. */
	struct server_rec srv;
	if (r && rec->server && *rec->server &&
	    store_server_get(r->ctx.store, rec->server, &srv, NULL) == 0) {
		struct disk_rec d;
		if (store_disk_get(r->ctx.store, srv.disk, &d, NULL) == 0) {
			json_t *u = disk_usage_json(&r->ctx, srv.disk, d.size_bytes);
			json_object_set_new(o, "disk", json_string(srv.disk));
			json_object_set(o, "disk_used_percent", json_object_get(u, "used_percent"));
			if (json_object_get(u, "warning"))
				json_object_set(o, "disk_warning", json_object_get(u, "warning"));
			json_decref(u);
			disk_rec_release(&d);
		}
		server_rec_release(&srv);
	}
	return o;
}
