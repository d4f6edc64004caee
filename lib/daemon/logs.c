/* Services' logs; see logs.h. */
#include "daemon/logs.h"
#include "api/shape.h"
#include "app/config.h"
#include "daemon/daemon_int.h"
#include "store/store.h"
#include "util/strbuf.h"

#include <fcntl.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>
#include <unistr.h>

#define SLICE_MAX (1 << 20)
#define CHUNK (64 << 10)

/* Where the last `lines` lines of fd (size bytes) begin: found reading
 * backwards a chunk at a time, so any number of lines of a log of any
 * size (a last line without its newline counts). */
static long long tail_start(int fd, long long size, int lines)
{
	char buf[CHUNK];
	long long pos = size;
	int seen = 0;
	bool last = true; /* the file's last byte: its newline ends no line */
	while (pos > 0) {
		long long at = pos > CHUNK ? pos - CHUNK : 0;
		ssize_t got = pread(fd, buf, (size_t)(pos - at), at);
		if (got <= 0)
			return pos;
		for (ssize_t i = got - 1; i >= 0; i--) {
			if (buf[i] == '\n' && !last && ++seen >= lines)
				return at + i + 1;
			last = false;
		}
		pos = at;
	}
	return 0;
}

/* Appends buf[0..len) to sb as valid UTF-8 (the API's JSON carries
 * text): each byte that begins no valid character becomes U+FFFD.  A
 * character cut off by the end of buf is left out.  Returns how many
 * bytes of buf were used. */
static size_t add_utf8(struct strbuf *sb, const char *buf, size_t len)
{
	const uint8_t *s = (const uint8_t *)buf;
	size_t i = 0;
	while (i < len) {
		ucs4_t uc;
		int n = u8_mbtoucr(&uc, s + i, len - i);
		if (n == -2)
			break;
		if (n < 0) {
			strbuf_add(sb, "\xEF\xBF\xBD", 3);
			n = 1;
		} else {
			strbuf_add(sb, buf + i, (size_t)n);
		}
		i += (size_t)n;
	}
	return i;
}

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
	bool more = false;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		struct stat st;
		end = fstat(fd, &st) == 0 ? st.st_size : 0;
		long long from = offset;
		if (offset < 0 || offset > end)
			from = tail > 0 ? tail_start(fd, end, tail) : end;
		long long want = end - from > SLICE_MAX ? SLICE_MAX : end - from;
		char *buf = xmalloc((size_t)want + 1);
		ssize_t got = pread(fd, buf, (size_t)want, from);
		if (got < 0)
			got = 0;
		more = from + got < end;
		/* (A character cut off at the slice's end is read again from
		 * the offset returned.) */
		got = (ssize_t)add_utf8(&sb, buf, (size_t)got);
		end = from + got;
		free(buf);
		close(fd);
	}
	free(path);
	*result = shape_log_slice(service, sb.buf, sb.len, end, more);
	strbuf_release(&sb);
	return 0;
}
