/*
 * The state store's own invariants (see store_invariants in store.h): what
 * the records must say of each other, read in one transaction so a check
 * never sees half of a write.
 */
#include "store/store.h"
#include "store/store_internal.h"

#include <stdlib.h>
#include <string.h>

/* Each query yields one message per violation.  ?1 is ENV_SOURCE_ADDON. */
static const char *const always[] = {
	"SELECT 'addon ' || addon || ' (' || id || ', ' || status || ') belongs to app ''' || app"
	" || ''', which does not exist' FROM addons WHERE status <> 'deprovisioning'"
	" AND app NOT IN (SELECT name FROM apps) ORDER BY app, addon",

	"SELECT 'addon ' || addon || ' of app ''' || app || ''' has the unknown status ''' ||"
	" status || '''' FROM addons WHERE status NOT IN"
	" ('pending', 'provisioning', 'active', 'error', 'deprovisioning') ORDER BY app, addon",

	"SELECT 'addon ' || addon || ' of app ''' || app || ''' is active, but its server ''' ||"
	" server || ''' does not exist' FROM addons WHERE status = 'active' AND server NOT IN"
	" (SELECT id FROM servers) ORDER BY app, addon",

	"SELECT 'addon ' || addon || ' of app ''' || app || ''' is active without its variables'"
	" FROM addons WHERE status = 'active' AND NOT EXISTS (SELECT 1 FROM env WHERE"
	" source = ?1 AND description = 'addon:' || addons.id) ORDER BY app, addon",

	"SELECT DISTINCT 'app ''' || app || ''' has variables of addon instance ' ||"
	" substr(description, 7) || ', which is not active' FROM env WHERE source = ?1 AND"
	" substr(description, 7) NOT IN (SELECT id FROM addons WHERE status IN"
	" ('active', 'deprovisioning')) ORDER BY 1",

	"SELECT 'small server ' || s.id || ' is used by ' || COUNT(*) || ' addons' FROM servers s"
	" JOIN addons a ON a.server = s.id WHERE s.kind = 'small'"
	" GROUP BY s.id HAVING COUNT(*) > 1 ORDER BY s.id",

	"SELECT 'addon ' || a.addon || ' of app ''' || a.app || ''' is in error, but still holds"
	" server ' || s.id FROM addons a JOIN servers s ON a.server = s.id"
	" WHERE a.status = 'error' AND s.kind = 'small' ORDER BY a.app, a.addon",
};

/* Hold only when no addon is in motion: steps make these records in turn. */
static const char *const settled[] = {
	"SELECT 'server ' || id || ' (' || kind || ') is used by no addon' FROM servers WHERE id"
	" NOT IN (SELECT server FROM addons) ORDER BY id",

	"SELECT 'server ' || id || ' has disk ''' || disk || ''', which has no record' FROM servers"
	" WHERE disk NOT IN (SELECT name FROM disks) ORDER BY id",

	"SELECT 'disk ' || name || ' is ''in use'', but no server uses it' FROM disks WHERE"
	" status = 'in use' AND name NOT IN (SELECT disk FROM servers) ORDER BY name",
};

static enum miren_err run_checks(struct store *st, const char *const *sql, size_t n_sql,
				 char ***out, size_t *n, struct miren_error *err)
{
	for (size_t i = 0; i < n_sql; i++) {
		sqlite3_stmt *s = prep(st, sql[i], err);
		if (!s)
			return MIREN_EDB;
		if (sqlite3_bind_parameter_count(s) >= 1)
			sqlite3_bind_int(s, 1, ENV_SOURCE_ADDON);
		char **got = NULL;
		size_t n_got = 0;
		enum miren_err rc = collect(st, s, sizeof(char *), text_row, (void **)&got, &n_got,
					    err);
		if (rc)
			return rc;
		if (n_got) {
			*out = xrealloc(*out, (*n + n_got) * sizeof(**out));
			memcpy(*out + *n, got, n_got * sizeof(*got));
			*n += n_got;
		}
		free(got);
	}
	return 0;
}

enum miren_err store_invariants(struct store *st, char ***out, size_t *n, int *in_motion,
				struct miren_error *err)
{
	*out = NULL;
	*n = 0;
	*in_motion = 0;
	pthread_mutex_lock(&st->lock);
	enum miren_err rc = exec_sql(st, "BEGIN", err);
	if (rc)
		goto out;
	sqlite3_stmt *s = prep(st,
			       "SELECT (SELECT COUNT(*) FROM addons WHERE status IN"
			       " ('pending', 'provisioning', 'deprovisioning')) +"
			       " (SELECT COUNT(*) FROM addon_changes)",
			       err);
	if (!s) {
		rc = MIREN_EDB;
		goto end;
	}
	if (sqlite3_step(s) == SQLITE_ROW)
		*in_motion = sqlite3_column_int(s, 0);
	else
		rc = db_fail(st, err, "count addons in motion");
	sqlite3_finalize(s);
	if (!rc)
		rc = run_checks(st, always, sizeof(always) / sizeof(always[0]), out, n, err);
	if (!rc && *in_motion == 0)
		rc = run_checks(st, settled, sizeof(settled) / sizeof(settled[0]), out, n, err);
end:
	exec_sql(st, rc ? "ROLLBACK" : "COMMIT", NULL);
out:
	pthread_mutex_unlock(&st->lock);
	if (rc) {
		for (size_t i = 0; i < *n; i++)
			free((*out)[i]);
		free(*out);
		*out = NULL;
		*n = 0;
	}
	return rc;
}
