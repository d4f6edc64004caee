/*
 * The daemon's main loop: open the daemon core, serve the API, wait for
 * SIGTERM/SIGINT, then stop every service and exit.
 */
#ifndef MIREN_SERVER_H
#define MIREN_SERVER_H

struct server_options {
	const char *data_dir;
	const char *service_user;
	const char *addr_pool;
	int quiet; /* no log lines on stderr */
};

/* Returns the process exit code. */
int server_main(const struct server_options *opts);

#endif
