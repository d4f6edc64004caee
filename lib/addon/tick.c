/*
 * The engines' periodic work (addon_def.tick): one thread calls every
 * engine's tick hook in turn, about every ADDON_TICK_MS, never two at
 * once; see addon/tick.h.
 */
#include "addon/tick.h"
#include "util/log.h"
#include "util/num.h"

#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <time.h>

struct addon_ticker {
	struct addon_ctx ctx; /* the daemon's, with stopping = &stop */
	atomic_bool stop;
	int interval_ms;
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t cv;
};

static void *tick_run(void *arg)
{
	struct addon_ticker *t = arg;
	pthread_mutex_lock(&t->mu);
	while (!atomic_load(&t->stop)) {
		pthread_mutex_unlock(&t->mu);
		for (const struct addon_def *const *d = addon_all(); *d && !atomic_load(&t->stop);
		     d++)
			if ((*d)->tick)
				(*d)->tick(&t->ctx);
		pthread_mutex_lock(&t->mu);
		struct timespec until;
		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_sec += t->interval_ms / 1000;
		until.tv_nsec += (long)(t->interval_ms % 1000) * 1000000L;
		if (until.tv_nsec >= 1000000000L) {
			until.tv_sec++;
			until.tv_nsec -= 1000000000L;
		}
		while (!atomic_load(&t->stop) &&
		       pthread_cond_timedwait(&t->cv, &t->mu, &until) == 0)
			;
	}
	pthread_mutex_unlock(&t->mu);
	return NULL;
}

struct addon_ticker *addon_ticker_start(const struct addon_ctx *ctx)
{
	struct addon_ticker *t = xcalloc(1, sizeof(*t));
	t->ctx = *ctx;
	atomic_init(&t->stop, false);
	t->ctx.stopping = &t->stop;
	long long v;
	t->interval_ms = num_parse(getenv("MIREN_ADDON_TICK_MS"), 100, INT_MAX, &v) ? (int)v
										    : ADDON_TICK_MS;
	pthread_mutex_init(&t->mu, NULL);
	pthread_cond_init(&t->cv, NULL);
	if (pthread_create(&t->thread, NULL, tick_run, t) != 0) {
		log_error("cannot start the addons' periodic work (base backups, archive tidying)");
		pthread_cond_destroy(&t->cv);
		pthread_mutex_destroy(&t->mu);
		free(t);
		return NULL;
	}
	return t;
}

void addon_ticker_stop(struct addon_ticker *t)
{
	if (!t)
		return;
	pthread_mutex_lock(&t->mu);
	atomic_store(&t->stop, true);
	pthread_cond_signal(&t->cv);
	pthread_mutex_unlock(&t->mu);
	pthread_join(t->thread, NULL);
	pthread_cond_destroy(&t->cv);
	pthread_mutex_destroy(&t->mu);
	free(t);
}
