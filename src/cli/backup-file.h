/*
 * Receiving a backup the server streams (a .miren.zst snapshot) into a
 * file that is verified whole before it is put in place; used by `miren
 * disk backup` and `miren addon backup -o`.  And sending one (`disk
 * restore`, `addon restore -s`, `addon backups verify -s`).
 */
#ifndef MIREN_CLI_BACKUP_FILE_H
#define MIREN_CLI_BACKUP_FILE_H

#include "cli/cli.h"
#include "disk/snapshot.h"

struct cli_backup_file {
	char sha256[65];              /* of the file */
	unsigned long long zst_bytes; /* its size */
	struct snap_stats st;         /* what the verification read */
	double seconds;               /* the transfer's */
	char *header;                 /* the X-Miren-Backup-Header reply header (to free) */
};

/* "<base>-YYYYMMDD-HHMMSS.miren.zst" in local time.  Caller frees. */
char *cli_backup_default_name(const char *base);

/*
 * Requests method path on the server and writes the streamed reply to
 * out: as OUT.XXXXXX.partial (removed on every way out, fatal signals
 * included), read back and verified whole (snap_read: every checksum),
 * then linked into place, never replacing a file.  what names the backup
 * in messages ("disk 'NAME'").  Returns CLI_OK with *res filled (release
 * res->header), or the exit code after printing the error.
 */
int cli_backup_receive(struct cli *cli, const char *method, const char *path, const char *out,
		       const char *what, struct cli_backup_file *res);

/*
 * Sends the file `file` (a .miren.zst) as the body of POST path, with a
 * progress line on a terminal.  what names it in errors ("snapshot",
 * "backup file"): a missing file is "cannot read <what> 'FILE': ..." (exit
 * 3).  Returns CLI_OK with *res the reply (caller decrefs), or the exit
 * code after printing the error.
 */
int cli_backup_send(struct cli *cli, const char *file, const char *what, const char *path,
		    json_t **res);

#endif
