/*
 * Daemon logging: one line per event, "2026-11-25T20:40:56Z LEVEL message",
 * to stderr and, once log_open_file() succeeded, to a file as well.
 * Thread-safe.  Never pass a secret to these functions.
 */
#ifndef MIREN_LOG_H
#define MIREN_LOG_H

enum log_level { LOG_DEBUG, LOG_INFO, LOG_WARN, LOG_ERROR };

int log_open_file(const char *path);
void log_close(void);
void log_set_quiet_stderr(int quiet);
void log_msg(enum log_level lvl, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_info(...) log_msg(LOG_INFO, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_WARN, __VA_ARGS__)
#define log_error(...) log_msg(LOG_ERROR, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)

#endif
