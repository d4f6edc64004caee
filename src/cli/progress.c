/* Progress lines for long transfers (backup, restore): on stderr, at most
 * four times a second, with \r, and only when stderr is a terminal. */
#include "cli/cli.h"
#include "util/io.h"

#include <stdio.h>
#include <time.h>
#include <unistd.h>

static double now_s(void)
{
	return (double)io_mono_ms() / 1e3;
}

void cli_progress_init(struct cli_progress *p, const char *verb)
{
	p->verb = verb;
	p->start = now_s();
	p->last = 0;
	p->shown = false;
	p->enabled = isatty(STDERR_FILENO);
}

void cli_progress_update(struct cli_progress *p, unsigned long long bytes)
{
	double t = now_s();
	if (!p->enabled || t - p->last < 0.25)
		return;
	p->last = t;
	double secs = t - p->start;
	char amount[32];
	cli_human_bytes(bytes, amount, sizeof(amount));
	fprintf(stderr, "\r%s %s (%.1f MB/s)   ", p->verb, amount,
		secs > 0 ? (double)bytes / 1e6 / secs : 0.0);
	p->shown = true;
}

void cli_progress_done(struct cli_progress *p)
{
	if (p->shown)
		fputc('\n', stderr);
}

double cli_progress_elapsed(const struct cli_progress *p)
{
	return now_s() - p->start;
}

void cli_human_bytes(unsigned long long bytes, char *out, size_t len)
{
	const char *units[] = { "B", "KiB", "MiB", "GiB", "TiB" };
	double v = (double)bytes;
	int u = 0;
	while (v >= 1024 && u < 4) {
		v /= 1024;
		u++;
	}
	snprintf(out, len, u ? "%.1f %s" : "%.0f %s", v, units[u]);
}

void cli_utc_text(long long t, char *out, size_t len)
{
	time_t tt = (time_t)t;
	struct tm tm;
	gmtime_r(&tt, &tm);
	strftime(out, len, "%Y-%m-%d %H:%M:%S", &tm);
}
