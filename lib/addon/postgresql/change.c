/*
 * The miren-postgresql hooks of a variant change (addon.h: copy_start,
 * writes_pause, copy_finish, copy_cancel) over pg_change.c: the tenant's
 * schema dumped from the old server and loaded into the new one, then its
 * rows by logical replication (subscription and slot "miren_chg_<id of
 * the change>", publication "miren_change" in the tenant's
 * database) while the app writes; the pause ends the tenant's sessions
 * and refuses its logins until the switch.
 */
#include "addon/disk_ops.h"
#include "addon/postgresql/provider.h"
#include "addon/server.h"
#include "util/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *const pgp_replication_settings[PGP_REPLICATION_SETTINGS_N] = {
	"wal_level=logical",
	"max_wal_senders=4",
	"max_replication_slots=6",
	"max_logical_replication_workers=3",
	"max_sync_workers_per_subscription=2",
	"max_worker_processes=8",
};

/* An instance's server as pg_change.c reaches it. */
struct side {
	struct server_rec srv;
	struct pgp_server ss;
	char *dir;
	struct pg_side pg;
};

static enum miren_err side_open(struct addon_ctx *ctx, const struct addon_inst *inst,
				struct side *s, struct miren_error *err)
{
	memset(s, 0, sizeof(*s));
	enum miren_err rc = store_server_get(ctx->store, inst->rec.server, &s->srv, err);
	if (rc)
		return rc;
	pgp_server_parse(&s->srv, &s->ss);
	s->dir = addon_disk_dir(ctx, s->srv.disk);
	s->pg = (struct pg_side){ s->dir, s->srv.port, s->ss.su_password };
	return 0;
}

static void side_close(struct side *s)
{
	free(s->dir);
	pgp_server_release(&s->ss);
	server_rec_release(&s->srv);
}

/* Both instances' servers (nothing to close on failure). */
static enum miren_err sides_open(struct addon_ctx *ctx, const struct addon_inst *from,
				 const struct addon_inst *to, struct side *a, struct side *b,
				 struct miren_error *err)
{
	enum miren_err rc = side_open(ctx, from, a, err);
	if (!rc && (rc = side_open(ctx, to, b, err)))
		side_close(a);
	return rc;
}

/* The subscription (and slot) of change id's copy. */
static void copy_name(const char *id, char out[64])
{
	snprintf(out, 64, "miren_chg_%s", id);
}

/*
 * Makes sure s runs with pgp_replication_settings: a server an earlier
 * daemon started may not (they are given on the command line).  Such a
 * server is restarted once, under its disk's lock: its sessions are cut
 * (every tenant's, on a shared server) and reconnect within about a
 * second.
 */
static enum miren_err ensure_replication(struct addon_ctx *ctx, struct side *s,
					 struct miren_error *err)
{
	char level[64], workers[64];
	enum miren_err rc = pg_setting(&s->pg, "wal_level", level, err);
	if (!rc)
		rc = pg_setting(&s->pg, "max_logical_replication_workers", workers, err);
	if (rc || (!strcmp(level, "logical") && strcmp(workers, "0") != 0))
		return rc;
	log_info("server %s runs with wal_level=%s: restarting it with logical replication for "
		 "a variant change",
		 s->srv.id, level);
	if (disk_lock(s->srv.disk, "the restart of its server", DISK_LOCK_WAIT_MS, err) != 0)
		return err->code = MIREN_EUNAVAIL;
	addon_server_stop(ctx, s->srv.id);
	rc = pgp_start_server(ctx, &s->srv, err);
	if (!rc)
		rc = pg_wait_ready_or_stop(s->dir, s->srv.port, s->ss.su_password, READY_TIMEOUT_MS,
					   ctx->stopping, err);
	disk_unlock(s->srv.disk);
	return rc;
}

/* The tenant's schema out of from (as from's tenant) into to. */
struct schema_copy {
	struct addon_ctx *ctx;
	struct pg_install pg;
	struct pg_client from, to;
};

static enum miren_err schema_dump(void *user, int fd, struct miren_error *err)
{
	struct schema_copy *c = user;
	return pg_tenant_dump_schema(&c->pg, &c->from, c->ctx->uid, c->ctx->gid, fd, err);
}

static enum miren_err schema_load(void *user, int fd, struct miren_error *err)
{
	struct schema_copy *c = user;
	return pg_tenant_load(&c->pg, &c->to, c->ctx->uid, c->ctx->gid, fd, err);
}

enum miren_err pgp_copy_start(struct addon_ctx *ctx, struct addon_inst *from, struct addon_inst *to,
			      const char *id, bool *online, struct miren_error *err)
{
	const struct pgp_tenant *f = from->state, *t = to->state;
	*online = true;
	if (strcmp(f->db, t->db) != 0)
		return miren_error_set(err, MIREN_EINTERNAL,
				       "the new instance's database %s is not the app's %s", t->db,
				       f->db);
	struct side a, b;
	enum miren_err rc = sides_open(ctx, from, to, &a, &b, err);
	if (rc)
		return rc;
	if ((rc = ensure_replication(ctx, &a, err)) || (rc = ensure_replication(ctx, &b, err)))
		goto out;
	struct schema_copy sc = {
		.ctx = ctx,
		.from = { a.srv.address, a.srv.port, f->lg.login, f->password, f->db },
		.to = { b.srv.address, b.srv.port, t->lg.login, t->password, t->db },
	};
	if ((rc = pgp_install_for(a.ss.version, &sc.pg, err)) ||
	    (rc = addon_pipe(schema_dump, &sc, schema_load, &sc, err)))
		goto out;
	char name[64];
	copy_name(id, name);
	rc = pg_copy_start(&a.pg, &b.pg, f->db, name, ctx->stopping, err);
	if (rc == MIREN_EIO) /* what the workers said is in the new server's log */
		addon_server_log_hint(ctx, b.srv.id, "ERROR:", err);
out:
	side_close(&b);
	side_close(&a);
	return rc;
}

enum miren_err pgp_writes_pause(struct addon_ctx *ctx, struct addon_inst *from, bool pause,
				struct miren_error *err)
{
	const struct pgp_tenant *f = from->state;
	struct side a;
	enum miren_err rc = side_open(ctx, from, &a, err);
	if (rc)
		return rc;
	rc = pg_tenant_pause(&a.pg, f->role, f->lg.login, pause, err);
	side_close(&a);
	return rc;
}

enum miren_err pgp_copy_finish(struct addon_ctx *ctx, struct addon_inst *from,
			       struct addon_inst *to, const char *id, struct miren_error *err)
{
	const struct pgp_tenant *f = from->state;
	struct side a, b;
	enum miren_err rc = sides_open(ctx, from, to, &a, &b, err);
	if (rc)
		return rc;
	char name[64];
	copy_name(id, name);
	rc = pg_copy_finish(&a.pg, &b.pg, f->db, f->role, name, err);
	side_close(&b);
	side_close(&a);
	return rc;
}

enum miren_err pgp_copy_cancel(struct addon_ctx *ctx, struct addon_inst *from,
			       struct addon_inst *to, const char *id, struct miren_error *err)
{
	const struct pgp_tenant *f = from->state;
	struct side a, b;
	/* Either server may be gone already (a removal cut short). */
	bool from_there = *from->rec.server && side_open(ctx, from, &a, NULL) == 0;
	bool to_there = *to->rec.server && side_open(ctx, to, &b, NULL) == 0;
	char name[64];
	copy_name(id, name);
	enum miren_err rc = pg_copy_cancel(from_there ? &a.pg : NULL, to_there ? &b.pg : NULL,
					   f->db, name, err);
	if (to_there)
		side_close(&b);
	if (from_there)
		side_close(&a);
	return rc;
}

void pgp_copy_check(struct addon_ctx *ctx, const struct server_rec *srv, char *const *dbs,
		    size_t n_dbs, json_t *violations)
{
	struct pgp_server ss;
	pgp_server_parse(srv, &ss);
	char *dir = addon_disk_dir(ctx, srv->disk);
	struct pg_side s = { dir, srv->port, ss.su_password };
	json_t *left = json_array();
	struct miren_error err;
	if (pg_copy_leftovers(&s, dbs, n_dbs, left, &err) != 0)
		json_array_append_new(violations,
				      json_sprintf("server %s cannot be asked for its copies: %s",
						   srv->id, err.message));
	size_t i;
	json_t *v;
	json_array_foreach (left, i, v)
		json_array_append_new(violations,
				      json_sprintf("server %s holds %s, which no variant change "
						   "uses",
						   srv->id, json_string_value(v)));
	json_decref(left);
	free(dir);
	pgp_server_release(&ss);
}
