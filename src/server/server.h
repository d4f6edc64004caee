/*
 * The daemon's main loop: open the daemon core, serve the API, wait for
 * SIGTERM/SIGINT, then stop every service and exit.
 */
#ifndef MIREN_SERVER_H
#define MIREN_SERVER_H

#include <stddef.h>

struct server_options {
	const char *data_dir;
	const char *service_user;
	const char *addr_pool;
	int keep_releases; /* releases kept per app (0: the default, 5) */
	int quiet;         /* no log lines on stderr */
	/* TCP listeners ("HOST:PORT"), HTTPS only; none by default. */
	const char *const *listen;
	size_t n_listen;
	/* The TLS certificate and key (both or neither; neither: a pair of
	 * the data directory's own, made on the first start). */
	const char *tls_cert, *tls_key;
};

/* Returns the process exit code. */
int server_main(const struct server_options *opts);

#endif
