/* Daemon logging; see log.h. */
#include "util/log.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <time.h>

static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static FILE *log_file;
static int log_quiet_stderr;

int log_open_file(const char *path)
{
	FILE *f = fopen(path, "ae");
	if (!f)
		return -1;
	pthread_mutex_lock(&log_lock);
	if (log_file)
		fclose(log_file);
	log_file = f;
	pthread_mutex_unlock(&log_lock);
	return 0;
}

void log_close(void)
{
	pthread_mutex_lock(&log_lock);
	if (log_file)
		fclose(log_file);
	log_file = NULL;
	pthread_mutex_unlock(&log_lock);
}

void log_set_quiet_stderr(int quiet)
{
	log_quiet_stderr = quiet;
}

void log_msg(enum log_level lvl, const char *fmt, ...)
{
	static const char *names[] = { "DEBUG", "INFO", "WARN", "ERROR" };
	char stamp[32], line[2048];
	time_t now = time(NULL);
	struct tm tm;
	gmtime_r(&now, &tm);
	strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%SZ", &tm);
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);

	pthread_mutex_lock(&log_lock);
	if (!log_quiet_stderr)
		fprintf(stderr, "%s %s %s\n", stamp, names[lvl], line);
	if (log_file) {
		fprintf(log_file, "%s %s %s\n", stamp, names[lvl], line);
		fflush(log_file);
	}
	pthread_mutex_unlock(&log_lock);
}
