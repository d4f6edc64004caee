/*
 * What the miren-postgresql provider shares with the disk backup code
 * (pg_disk.c); not an interface for anything else.
 */
#ifndef MIREN_PROVIDER_PG_H
#define MIREN_PROVIDER_PG_H

#include "addon/addon.h"

/* <data>/disks/<disk>. Caller frees. */
char *pgp_disk_dir(struct addon_ctx *ctx, const char *disk);
/* The supervisor id of a server: "addon/<server id>". Caller frees. */
char *pgp_server_sv_id(const char *server_id);
/* A string member of o, "" when absent. */
const char *pgp_jstr(const json_t *o, const char *key);
/* Makes the server exist, run and answer with its own superuser password
 * (template, clone, start, wait, rotate; each part idempotent).  Unless the
 * caller holds its disk's lock (disk_held), takes it for the slow path;
 * MIREN_EUNAVAIL (worth a retry) while another operation holds it. */
int pgp_ensure_server(struct addon_ctx *ctx, const char *server_id, bool disk_held,
		      struct miren_error *err);

#endif
