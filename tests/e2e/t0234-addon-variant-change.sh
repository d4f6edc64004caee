#!/usr/bin/env bash
# The seed's variant-change recipe, end to end, for miren-postgresql:
# addon backup, destroy, recreate with the new variant (app.toml and
# deploy), addon restore.  small -> shared (the backup is the dedicated
# server's disk: read out through a scratch server, loaded into the new
# shared tenant) and shared -> small (the tenant's dump loaded into the new
# dedicated server), by ID and from a file.  A deploy that asks for
# another variant changes the addon in place (t0280 does it under load),
# and `addon change` takes it back.  Then the same recipe small -> shared
# for miren-mysql and miren-redis (their scratch servers read the app's
# data out of the dedicated server's disk backup).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib-mysql.sh"
start_server || exit 1

rows() { psql_as "$1" -c "SELECT string_agg(v, ',' ORDER BY v) FROM t" 2>&1; }
set_variant() { sed -i "s/^variant = .*/variant = \"$2\"/" "$TMP/$1/.miren/app.toml"; }

# (The service does not need the database: while the addon is destroyed
# it keeps running, as a real app would fail its requests.)
mkdir -p "$TMP/vc/.miren"
printf 'name = "vc"\n[services.web]\ncommand = "exec sleep 100000"\n[addons.miren-postgresql]\nvariant = "small"\n' > "$TMP/vc/.miren/app.toml"
miren deploy -C "$TMP/vc" > /dev/null 2>&1
psql_as vc -q -c "CREATE TABLE t (v text); INSERT INTO t VALUES ('one'), ('two'); CREATE SEQUENCE s; SELECT nextval('s')"

# Asking for another variant in app.toml changes the addon in place, the
# data with it; `addon change` takes it back to small (app.toml still says
# shared, as the recipe below expects).
set_variant vc shared
out=$(miren deploy -C "$TMP/vc" --format json 2>&1)
expect_eq "$(echo "$out" | jq -r '.addons_changed[0] | [.from, .to] | join(",")')" "small,shared" "a deploy asking for another variant changes it in place: $(echo "$out" | tail -n 3 | tr '\n' ' ')"
expect_match "$(miren addon list -a vc)" "miren-postgresql +shared +active" "  the addon is shared"
expect_eq "$(rows vc)" "one,two" "  the rows came along"
expect_eq "$(psql_as vc -c "SELECT last_value FROM s")" "1" "  the sequence came along"
expect_exit "addon change takes it back to small" 0 miren addon change miren-postgresql:small -a vc
expect_match "$(miren addon list -a vc)" "miren-postgresql +small +active" "  the addon is small"
expect_eq "$(rows vc)" "one,two" "  the rows came back"

# small -> shared, by ID.
id=$(miren addon backup miren-postgresql -a vc | head -n 1)
expect_match "$id" '^[0-9]{8}-[0-9]{6}-[0-9a-f]{4}$' "small: backed up as $id"
miren addon backup miren-postgresql -a vc -o "$TMP/small.miren.zst" > /dev/null 2>&1 || fail "small: backup -o"
expect_exit "small: the addon is destroyed" 0 miren addon destroy miren-postgresql -a vc -f
expect_exit "the app is deployed again with variant shared" 0 miren deploy -C "$TMP/vc"
expect_match "$(miren addon list -a vc)" "miren-postgresql +shared +active" "vc's addon is shared now"
out=$(miren addon restore miren-postgresql -a vc --backup "$id" 2>&1)
expect_eq "$?" "0" "small -> shared: restore --backup succeeds: $(echo "$out" | tr '\n' ' ')"
expect_match "$out" "read out of the backup's server" "  through a scratch server"
expect_eq "$(rows vc)" "one,two" "small -> shared: the rows are back"
expect_eq "$(psql_as vc -c "SELECT nextval('s')")" "2" "small -> shared: the sequence goes on"
expect_eq "$(psql_as vc -c "SELECT tableowner FROM pg_tables WHERE tablename = 't'")" "$(miren env get -a vc PGUSER)" "small -> shared: owned by the app's current user"
expect_eq "$(ls -A "$DATA/disks" | grep -c '^\.')" "0" "no scratch or staging disk is left"

# small -> shared again, from the file, over data written since.
psql_as vc -q -c "INSERT INTO t VALUES ('three')"
out=$(miren addon restore miren-postgresql -a vc -s "$TMP/small.miren.zst" 2>&1)
expect_eq "$?" "0" "small -> shared: restore -s FILE succeeds: $(echo "$out" | tr '\n' ' ')"
expect_eq "$(rows vc)" "one,two" "small -> shared: the file's rows"

# shared -> small.
psql_as vc -q -c "INSERT INTO t VALUES ('shared')"
id=$(miren addon backup miren-postgresql -a vc | head -n 1)
miren addon backup miren-postgresql -a vc -o "$TMP/shared.miren.zst" > /dev/null 2>&1 || fail "shared: backup -o"
expect_exit "shared: the addon is destroyed" 0 miren addon destroy miren-postgresql -a vc -f
set_variant vc small
expect_exit "the app is deployed again with variant small" 0 miren deploy -C "$TMP/vc"
expect_match "$(miren addon list -a vc)" "miren-postgresql +small +active" "vc's addon is small now"
out=$(miren addon restore miren-postgresql -a vc --backup "$id" 2>&1)
expect_eq "$?" "0" "shared -> small: restore --backup succeeds: $(echo "$out" | tr '\n' ' ')"
expect_eq "$(rows vc)" "one,shared,two" "shared -> small: the rows are back"
expect_eq "$(psql_as vc -c "SELECT tableowner FROM pg_tables WHERE tablename = 't'")" "$(miren env get -a vc PGUSER)" "shared -> small: owned by the app's current user"
psql_as vc -q -c "DELETE FROM t"
out=$(miren addon restore miren-postgresql -a vc -s "$TMP/shared.miren.zst" 2>&1)
expect_eq "$?" "0" "shared -> small: restore -s FILE succeeds: $(echo "$out" | tr '\n' ' ')"
expect_eq "$(rows vc)" "one,shared,two" "shared -> small: the file's rows"
expect_match "$(miren app status -a vc)" "web +(starting|running)" "the app runs"

# miren-mysql small -> shared.
write_mysql_app vm small
sed -i 's/^command = .*/command = "exec sleep 100000"/' "$TMP/vm/.miren/app.toml"
miren deploy -C "$TMP/vm" > /dev/null 2>&1
mysql_as vm -e "CREATE TABLE t (v varchar(8)); INSERT INTO t VALUES ('m1'), ('m2')"
id=$(miren addon backup miren-mysql -a vm | head -n 1)
miren addon destroy miren-mysql -a vm -f > /dev/null 2>&1
set_variant vm shared
expect_exit "mysql: deployed again with variant shared" 0 miren deploy -C "$TMP/vm"
out=$(miren addon restore miren-mysql -a vm --backup "$id" 2>&1)
expect_eq "$?" "0" "mysql small -> shared: restore succeeds: $(echo "$out" | tr '\n' ' ')"
expect_eq "$(mysql_as vm -e "SELECT GROUP_CONCAT(v ORDER BY v) FROM t")" "m1,m2" "mysql small -> shared: the rows are back"

# miren-redis small -> shared.
mkdir -p "$TMP/vr/.miren"
printf 'name = "vr"\n[services.web]\ncommand = "exec sleep 100000"\n[addons.miren-redis]\nvariant = "small"\n' > "$TMP/vr/.miren/app.toml"
miren deploy -C "$TMP/vr" > /dev/null 2>&1
rd() { REDISCLI_AUTH="$(miren env get -a vr REDIS_PASSWORD --unmask)" \
  redis-cli --no-auth-warning -h "$(miren env get -a vr REDIS_HOST)" -p 6379 --user vr "$@" 2>&1; }
rd SET k one > /dev/null # a small server's key: no prefix
id=$(miren addon backup miren-redis -a vr | head -n 1)
miren addon destroy miren-redis -a vr -f > /dev/null 2>&1
set_variant vr shared
expect_exit "redis: deployed again with variant shared" 0 miren deploy -C "$TMP/vr"
out=$(miren addon restore miren-redis -a vr --backup "$id" 2>&1)
expect_eq "$?" "0" "redis small -> shared: restore succeeds: $(echo "$out" | tr '\n' ' ')"
expect_eq "$(rd GET vr:k)" "one" "redis small -> shared: the key is back, under the app's prefix"
expect_eq "$(ls -A "$DATA/disks" | grep -c '^\.')" "0" "no scratch or staging disk is left"

[ -z "$(invariant_violations)" ] && ok "invariants hold" || fail "invariants: $(invariant_violations)"
finish
