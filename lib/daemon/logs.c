/* Services' logs; see logs.h. */
#include "daemon/logs.h"
#include "api/shape.h"
#include "app/config.h"
#include "daemon/daemon_int.h"
#include "store/store.h"
#include "util/strbuf.h"

#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#define SLICE_MAX (1 << 20)

enum miren_err logs_read(struct daemon *d, const char *app, const char *service, long long offset,
			 int tail, json_t **result, struct miren_error *err)
{
	struct app_rec rec;
	struct app_config *cfg;
	enum miren_err rc = apps_load_current(d, app, &rec, &cfg, err);
	app_rec_release(&rec);
	if (!rc && (!cfg || !app_config_service(cfg, service))) {
		rc = miren_error_set(err, MIREN_ENOTFOUND, "app '%s' has no service '%s'", app,
				     service);
		miren_error_hint(err, "run 'miren app status -a %s' to see its services", app);
	}
	app_config_free(cfg);
	if (rc)
		return rc;

	char *path = data_paths_service_log(d->paths, app, service);
	struct strbuf sb;
	strbuf_init(&sb, 0);
	long long end = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		struct stat st;
		fstat(fd, &st);
		end = st.st_size;
		long long from = offset;
		if (offset < 0 || offset > end) {
			/* Find the start of the last `tail` lines within 1 MiB. */
			from = end > SLICE_MAX ? end - SLICE_MAX : 0;
		}
		long long want = end - from > SLICE_MAX ? SLICE_MAX : end - from;
		char *buf = xmalloc((size_t)want + 1);
		ssize_t got = pread(fd, buf, (size_t)want, from);
		if (got < 0)
			got = 0;
		const char *start = buf;
		if ((offset < 0 || offset > end) && tail <= 0) {
			start = buf + got;
		} else if (offset < 0 || offset > end) {
			int lines = 0;
			for (ssize_t i = got - 1; i >= 0; i--)
				if (buf[i] == '\n' && i != got - 1 && ++lines >= tail) {
					start = buf + i + 1;
					break;
				}
		}
		strbuf_add(&sb, start, (size_t)(buf + got - start));
		end = from + got;
		free(buf);
		close(fd);
	}
	free(path);
	*result = shape_log_slice(service, sb.buf, sb.len, end);
	strbuf_release(&sb);
	return 0;
}
