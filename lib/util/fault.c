/* Fault points; see fault.h. */
#include "util/fault.h"
#include "util/compiler.h"
#include "util/log.h"

#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static char armed[256];
static long delay_ms = -1; /* -1: kill at the point itself */
static atomic_bool fired;

void fault_init(void)
{
	const char *v = getenv("MIREN_FAULT");
	armed[0] = '\0';
	delay_ms = -1;
	if (!v || !*v)
		return;
	snprintf(armed, sizeof(armed), "%s", v);
	char *at = strrchr(armed, '@');
	if (at) {
		char *end;
		long ms = strtol(at + 1, &end, 10);
		if (end != at + 1 && !*end && ms >= 0) {
			*at = '\0';
			delay_ms = ms;
		}
	}
	if (delay_ms >= 0)
		log_warn("fault point '%s' is armed: the daemon will crash %ld ms after it", armed,
			 delay_ms);
	else
		log_warn("fault point '%s' is armed: the daemon will crash there", armed);
}

static void *delayed_kill(void *arg MIREN_UNUSED)
{
	struct timespec ts = { delay_ms / 1000, (delay_ms % 1000) * 1000000L };
	while (nanosleep(&ts, &ts) != 0)
		;
	raise(SIGKILL);
	return NULL;
}

void fault_point(const char *name)
{
	if (!armed[0] || strcmp(armed, name))
		return;
	if (delay_ms < 0) {
		log_warn("fault point '%s' reached: crashing", name);
		raise(SIGKILL);
	}
	if (atomic_exchange(&fired, true))
		return;
	log_warn("fault point '%s' reached: crashing in %ld ms", name, delay_ms);
	pthread_t t;
	if (pthread_create(&t, NULL, delayed_kill, NULL) != 0)
		raise(SIGKILL);
	pthread_detach(t);
}

void fault_pointf(const char *fmt, ...)
{
	if (!armed[0])
		return;
	char name[256];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(name, sizeof(name), fmt, ap);
	va_end(ap);
	fault_point(name);
}
