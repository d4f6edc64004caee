/*
 * The one set of low-level I/O helpers of the tree: whole writes and reads
 * (reads to the end are strbuf_read_fd in util/strbuf.h) with EINTR and
 * short counts handled, the monotonic clock,
 * and errno text that is safe from any thread (strerror(3) is not: it may
 * return a buffer that another thread overwrites).  Atomic whole-file
 * writes are fs_write_atomic/fs_write_atomic_owned in util/fs.h.
 */
#ifndef MIREN_IO_H
#define MIREN_IO_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

/* Writes all len bytes of buf to fd, retrying on EINTR and short writes.
 * Returns 0, or -1 with errno set (what was written before stays; a write
 * that makes no progress fails with EIO).  Async-signal-safe. */
int io_write_all(int fd, const void *buf, size_t len);
/* Milliseconds of clock c (CLOCK_REALTIME, CLOCK_BOOTTIME, ...). */
int64_t io_clock_ms(clockid_t c);
/* Milliseconds of CLOCK_MONOTONIC (never goes back; not wall time). */
int64_t io_mono_ms(void);
/* Sleeps ms milliseconds (resuming after a signal). */
void io_sleep_ms(int64_t ms);
/* CLOCK_MONOTONIC now plus ms, as a timespec for pthread_cond_timedwait on
 * a condition whose clock is CLOCK_MONOTONIC. */
void io_mono_deadline(struct timespec *ts, int64_t ms);
/* The text of an errno value ("No such file or directory"); a constant
 * string, valid for ever and from any thread. */
const char *io_strerror(int errnum);

#endif
