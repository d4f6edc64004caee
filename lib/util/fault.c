/* Fault points; see fault.h. */
#include "util/fault.h"
#include "util/log.h"

#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *armed;

void fault_init(void)
{
	const char *v = getenv("MIREN_FAULT");
	armed = v && *v ? v : NULL;
	if (armed)
		log_warn("fault point '%s' is armed: the daemon will crash there", armed);
}

void fault_point(const char *name)
{
	if (armed && !strcmp(armed, name)) {
		log_warn("fault point '%s' reached: crashing", name);
		raise(SIGKILL);
	}
}

void fault_pointf(const char *fmt, ...)
{
	if (!armed)
		return;
	char name[256];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(name, sizeof(name), fmt, ap);
	va_end(ap);
	fault_point(name);
}
