/* addon_pipe (addon.h): one producer's output as one consumer's input. */
#include "addon/addon.h"
#include "util/io.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct producer {
	addon_pipe_fn fn;
	void *user;
	int fd;
	enum miren_err rc;
	struct miren_error err;
};

static void *produce(void *arg)
{
	struct producer *p = arg;
	miren_error_clear(&p->err);
	p->rc = p->fn(p->user, p->fd, &p->err);
	close(p->fd); /* the consumer's end of file */
	return NULL;
}

enum miren_err addon_pipe(addon_pipe_fn producer, void *pu, addon_pipe_fn consumer, void *cu,
			  struct miren_error *err)
{
	int fds[2];
	if (pipe2(fds, O_CLOEXEC) != 0)
		return miren_error_set(err, MIREN_EIO, "cannot make a pipe: %s",
				       io_strerror(errno));
	struct producer p = { .fn = producer, .user = pu, .fd = fds[1] };
	pthread_t t;
	if (pthread_create(&t, NULL, produce, &p) != 0) {
		close(fds[0]);
		close(fds[1]);
		return miren_error_set(err, MIREN_EINTERNAL, "cannot start a thread");
	}
	enum miren_err rc = consumer(cu, fds[0], err);
	/* A consumer that stopped early: the producer's writes now fail
	 * (EPIPE) instead of blocking. */
	close(fds[0]);
	pthread_join(t, NULL);
	if (p.rc) {
		/* The producer's failure explains the consumer's. */
		*err = p.err;
		rc = p.rc;
	}
	return rc;
}
