/* The daemon's main loop; see server.h. */
#include "server/server.h"
#include "api/server.h"
#include "api/tls.h"
#include "daemon/daemon.h"
#include "util/fault.h"
#include "util/fs.h"
#include "util/io.h"
#include "util/log.h"
#include "util/paths.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

int server_main(const struct server_options *opts)
{
	/* Block the stop signals in every thread; the main thread waits for
	 * them with sigwait, so no handler runs inside library code. */
	sigset_t stop;
	sigemptyset(&stop);
	sigaddset(&stop, SIGTERM);
	sigaddset(&stop, SIGINT);
	pthread_sigmask(SIG_BLOCK, &stop, NULL);
	signal(SIGPIPE, SIG_IGN);
	signal(SIGHUP, SIG_IGN); /* a closed terminal does not stop the daemon */

	log_set_quiet_stderr(opts->quiet);
	fault_init();
	if (fs_mkdir_p(opts->data_dir, 0711) != 0) {
		fprintf(stderr, "error: cannot create data directory '%s': %s\n", opts->data_dir,
			io_strerror(errno));
		return 1;
	}
	struct data_paths *paths = data_paths_new(opts->data_dir);
	char *logdir = data_paths_logs(paths);
	char *logfile = data_paths_server_log(paths);
	fs_mkdir_p(logdir, 0700);
	if (log_open_file(logfile) != 0)
		fprintf(stderr, "warning: cannot open '%s'; logging to stderr only\n", logfile);
	free(logdir);
	free(logfile);

	struct miren_error err;
	struct daemon *d = NULL;
	struct api_server *api = NULL;
	/* one per --listen */
	struct api_server **tcp = xcalloc(opts->n_listen + 1, sizeof(struct api_server *));
	struct tls_identity tls = { 0 };
	char *sock = data_paths_socket(paths);
	int code = 1, lock_fd = -1;
	struct daemon_options po = { .data_dir = opts->data_dir,
				     .service_user = opts->service_user,
				     .addr_pool = opts->addr_pool,
				     .keep_releases = opts->keep_releases };
	/* One daemon per data directory: the lock is held until exit. */
	char *lockpath = data_paths_lock(paths);
	lock_fd = open(lockpath, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	free(lockpath);
	if (lock_fd < 0 || flock(lock_fd, LOCK_EX | LOCK_NB) != 0) {
		miren_error_set(&err, MIREN_EEXISTS,
				"another miren server is running with data directory '%s'",
				opts->data_dir);
		miren_error_hint(&err, "stop it first, or start this one with another --data-dir");
		goto fail;
	}
	if (daemon_open(&po, &d, &err) != 0)
		goto fail;
	if (opts->n_listen) {
		char *tls_dir = fs_join(opts->data_dir, "tls");
		int rc = tls_identity_load(tls_dir, opts->tls_cert, opts->tls_key, &tls, &err);
		free(tls_dir);
		if (rc)
			goto fail;
	}
	/* (Recorded before any request can ask for them.) */
	for (size_t i = 0; i < opts->n_listen; i++)
		daemon_add_listener(d, opts->listen[i], tls.fingerprint);
	/* The socket last: once it answers, every listener does. */
	for (size_t i = 0; i < opts->n_listen; i++) {
		if (api_server_listen_tcp(d, opts->listen[i], &tls, &tcp[i], &err) != 0)
			goto fail;
		log_info("serving HTTPS on %s (certificate %s)", opts->listen[i], tls.fingerprint);
	}
	if (api_server_start(d, sock, &api, &err) != 0)
		goto fail;
	log_info("miren %s serving on %s (data directory %s)", MIREN_VERSION, sock, opts->data_dir);
	/* systemd's Type=notify readiness (packaging/miren.service); a no-op
	 * without $NOTIFY_SOCKET. */
	sd_notifyf(0, "READY=1\nSTATUS=serving on %s", sock);

	int sig = 0;
	sigwait(&stop, &sig);
	log_info("received %s, stopping", strsignal(sig));
	sd_notify(0, "STOPPING=1");
	code = 0;
	goto out;
fail:
	log_error("%s", err.message);
	if (err.hint[0])
		log_error("hint: %s", err.hint);
out:
	if (d)
		daemon_stop_waits(d);
	for (size_t i = 0; i < opts->n_listen; i++)
		api_server_stop(tcp[i]);
	free(tcp);
	api_server_stop(api);
	tls_identity_release(&tls);
	daemon_close(d);
	if (code == 0)
		log_info("stopped");
	log_close();
	if (lock_fd >= 0)
		close(lock_fd);
	free(sock);
	data_paths_free(paths);
	return code;
}
