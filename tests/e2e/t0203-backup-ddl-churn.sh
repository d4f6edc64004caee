#!/usr/bin/env bash
# Online backups follow PostgreSQL's base backup rules (issue 8, finding
# 3a): under TRUNCATE + INSERT loops, temporary tables, VACUUM FULL and
# CREATE/DROP DATABASE churn, files vanish and shrink while they are
# copied.  Every backup must succeed, verify, restore, start and pass
# pg_amcheck, hold the rows committed before it began, and never contain
# pg_internal.init or temporary files.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib-backup.sh"
start_server || exit 1
deploy_addon_app db small
disk=$(disk_of_app db)
psql_as db -q -c "CREATE TABLE keep (id int PRIMARY KEY, pad text)" \
  -c "INSERT INTO keep SELECT g, repeat('k', 300) FROM generate_series(1, 20000) g" \
  -c "CREATE TABLE t (id int, pad text)" -c "CREATE TABLE v (id int PRIMARY KEY, pad text)" \
  -c "INSERT INTO v SELECT g, repeat('v', 500) FROM generate_series(1, 20000) g"

# One churn loop per kind, as the app's user (DROP DATABASE as the superuser).
PGHOST=$(miren env get -a db PGHOST) PGPORT=$(miren env get -a db PGPORT)
PGUSER=$(miren env get -a db PGUSER) PGDATABASE=$(miren env get -a db PGDATABASE)
PGPASSWORD=$(miren env get -a db PGPASSWORD --unmask)
export PGHOST PGPORT PGUSER PGDATABASE PGPASSWORD
app_sql() { psql -X -qtA "$@"; }
churn() {
  case $1 in
    truncate) while :; do app_sql -c "TRUNCATE t" \
                -c "INSERT INTO t SELECT g, repeat('t', 400) FROM generate_series(1, 5000) g" || true; done ;;
    temp) while :; do app_sql -c "CREATE TEMP TABLE tt AS SELECT g, repeat('x', 400) p FROM generate_series(1, 5000) g" \
                -c "CREATE INDEX ON tt (g)" -c "SELECT count(*) FROM tt" >/dev/null || true; done ;;
    vacuum) while :; do app_sql -c "UPDATE v SET pad = pad WHERE id % 3 = 0" -c "VACUUM FULL v" || true; done ;;
    dropdb) while :; do psql_su "$disk" -d postgres -c "CREATE DATABASE churn" \
                -c "DROP DATABASE churn" >/dev/null 2>&1 || true; done ;;
  esac
}

expect_eq "$(psql_su "$disk" -d postgres -c 'SELECT 1')" "1" "the superuser reaches the live server (for the DROP DATABASE churn)"
n=0
for kind in truncate temp vacuum dropdb; do
  for round in 1 2; do
    n=$((n + 1))
    churn "$kind" > /dev/null 2>&1 &
    loop=$!
    sleep 1
    before=$(psql_as db -c "SELECT count(*) FROM keep")
    out=$(miren disk backup -n "$disk" -o "$TMP/$kind-$round.miren.zst" 2>&1)
    st=$?
    kill "$loop" 2>/dev/null; wait "$loop" 2>/dev/null
    expect_eq "$st" "0" "$kind $round: the backup under churn succeeds ($(printf '%s' "$out" | tail -n 1))"
    [ "$st" = 0 ] || continue
    expect_match "$out" "verified +[0-9]+ files" "$kind $round: the CLI verified every file"
    list=$(tar --zstd -tf "$TMP/$kind-$round.miren.zst")
    expect_no_match "$list" "pg_internal\.init|pgsql_tmp|/t[0-9]+_[0-9]+" "$kind $round: no pg_internal.init or temporary files"
    restore_check "$TMP/$kind-$round.miren.zst" "c$n" "$disk" || continue
    expect_eq "$(q_restored "c$n" -d db -c 'SELECT count(*) FROM keep')" "$before" "$kind $round: the restored copy holds every committed row"
    stop_restored "c$n"
  done
done
expect_eq "$(ls "$TMP" | grep -c partial)" "0" "no partial file is left"
finish
