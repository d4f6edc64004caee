#!/usr/bin/env bash
# A restore never destroys the data it replaces until the new data is
# proven (issue 8, finding 4).  Snapshots whose checksums are right but
# whose cluster cannot start: one of another major version (PG_VERSION 16
# on a PostgreSQL 15 host) is refused before anything is swapped; one
# whose configuration PostgreSQL rejects is refused with the server's FATAL
# line.  Either way the old disk is kept and still served, nothing is left
# in disks/, and the state store agrees with the disks.  A restore of a
# shared server's disk taken before a second tenant existed reconciles
# that tenant (its role and database exist again, with its password).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib-backup.sh"
start_server || exit 1
deploy_addon_app db small
disk=$(disk_of_app db)
pgdata="$DATA/disks/$disk/pgdata"
psql_as db -q -c "CREATE TABLE t (i int)" -c "INSERT INTO t VALUES (1)"

# Snapshots of clusters that cannot start: the live server does not reread
# these files, so its online backup copies them as they are now.
cp "$pgdata/PG_VERSION" "$TMP/PG_VERSION.good"
echo 16 > "$pgdata/PG_VERSION"
miren disk backup -n "$disk" -o "$TMP/pg16.miren.zst" >/dev/null 2>&1 || fail "backup with PG_VERSION 16"
cp "$TMP/PG_VERSION.good" "$pgdata/PG_VERSION"
cp "$pgdata/postgresql.conf" "$TMP/conf.good"
echo "shared_buffers = 'lots'" >> "$pgdata/postgresql.conf"
miren disk backup -n "$disk" -o "$TMP/badconf.miren.zst" >/dev/null 2>&1 || fail "backup with a bad setting"
cp "$TMP/conf.good" "$pgdata/postgresql.conf"
# ssl without certificates: single-user mode starts, the server does not.
echo "ssl = on" >> "$pgdata/postgresql.conf"
miren disk backup -n "$disk" -o "$TMP/ssl.miren.zst" >/dev/null 2>&1 || fail "backup with ssl = on"
cp "$TMP/conf.good" "$pgdata/postgresql.conf"
psql_as db -q -c "INSERT INTO t VALUES (2)"
pm=$(postmaster_pid "$disk")
before=$(miren debug disk list --format json | python3 -c "import json,sys; print(sorted(d['name'] for d in json.load(sys.stdin)))")

expect_exit "a snapshot of PostgreSQL 16 is refused" 6 miren disk restore -s "$TMP/pg16.miren.zst" --force
expect_match "$(cat "$TMP/err")" "PostgreSQL 16 cluster and the server of disk '$disk' runs PostgreSQL 15; nothing was changed" "saying which versions differ"
expect_eq "$(postmaster_pid "$disk")" "$pm" "before anything was swapped: the server was not even stopped"
expect_eq "$(psql_as db -c 'SELECT count(*) FROM t')" "2" "the old data is served"
expect_exit "the same snapshot under a new name is refused too (no PostgreSQL 16 here)" 6 miren disk restore -s "$TMP/pg16.miren.zst" -n pg16-copy
expect_match "$(cat "$TMP/err")" "this host has no PostgreSQL 16" "saying so"

expect_exit "a snapshot whose cluster does not start is refused" 6 miren disk restore -s "$TMP/badconf.miren.zst" --force
expect_match "$(cat "$TMP/err")" "does not start: FATAL: .*(invalid value for parameter \"shared_buffers\")" "with the server's FATAL line"
expect_no_match "$(cat "$TMP/err")" "timeout|timed out" "not a socket timeout"
expect_eq "$(postmaster_pid "$disk")" "$pm" "the server kept running"
expect_eq "$(psql_as db -c 'SELECT count(*) FROM t')" "2" "the old data is still served"

expect_exit "a snapshot whose server does not start after the swap is refused" 5 miren disk restore -s "$TMP/ssl.miren.zst" --force
expect_match "$(cat "$TMP/err")" "server did not start, so the previous data was put back" "the old disk is put back"
expect_match "$(cat "$TMP/err")" "^detail: FATAL: .*certificate" "  with the FATAL line as the detail"
wait_for "the old data is served again" 30 psql_as db -c 'SELECT 1'
expect_eq "$(psql_as db -c 'SELECT count(*) FROM t')" "2" "with every row"

after=$(miren debug disk list --format json | python3 -c "import json,sys; print(sorted(d['name'] for d in json.load(sys.stdin)))")
expect_eq "$after" "$before" "no disk was created or removed"
expect_eq "$(ls -A "$DATA/disks" | grep -c '^\.')" "0" "no staging, old or trash directory is left"
expect_eq "$(invariant_violations)" "" "the state store and the disks agree"

# A good snapshot still restores over the live disk and is served.
miren disk backup -n "$disk" -o "$TMP/good.miren.zst" >/dev/null 2>&1
psql_as db -q -c "INSERT INTO t VALUES (3)"
out=$(miren disk restore -s "$TMP/good.miren.zst" --force 2>&1)
expect_match "$out" "its database server was restarted" "a good snapshot restores ($(head -n 1 <<<"$out"))"
expect_eq "$(psql_as db -c 'SELECT count(*) FROM t')" "2" "and its data is served"
expect_eq "$(invariant_violations)" "" "the state store and the disks agree after it"

# Shared server: a backup taken before tenant b existed, restored: b's role
# and database are made again (empty), with the password its record holds.
deploy_shared() {
  mkdir -p "$TMP/$1/.miren"
  printf 'name = "%s"\n[services.web]\ncommand = "exec sleep 100000"\n[addons.miren-postgresql]\nvariant = "shared"\n' "$1" > "$TMP/$1/.miren/app.toml"
  miren deploy -C "$TMP/$1" >/dev/null 2>&1 || fail "deploy of $1"
}
deploy_shared sa
sdisk=$(disk_of_app sa)
psql_as sa -q -c "CREATE TABLE s (i int)" -c "INSERT INTO s VALUES (1)"
miren disk backup -n "$sdisk" -o "$TMP/shared.miren.zst" >/dev/null 2>&1 || fail "backup of the shared disk"
deploy_shared sb
psql_as sb -q -c "CREATE TABLE x (i int)"
out=$(miren disk restore -s "$TMP/shared.miren.zst" --force 2>&1)
expect_match "$out" "Restored disk $sdisk" "the shared disk restores ($(head -n 1 <<<"$out"))"
expect_eq "$(psql_as sa -c 'SELECT count(*) FROM s')" "1" "tenant sa has its data"
expect_eq "$(psql_as sb -c 'SELECT 1')" "1" "tenant sb, added after the backup, connects again"
expect_eq "$(invariant_violations)" "" "the shared server's tenants agree with their records"
finish
