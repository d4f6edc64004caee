#!/usr/bin/env bash
# A backup racing a crash of the addon's server (issue 8, finding 3b):
# kill -9 of the postmaster, then at once `miren disk backup`.  The
# supervisor restarts PostgreSQL meanwhile, so a copy of the directory as
# it lies is never consistent: the backup must either fail with a clear
# error and leave no file, or produce a file that verifies, restores and
# passes pg_amcheck.  Also: a disk whose server is stopped is copied
# offline only while no server runs there.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib-backup.sh"
start_server || exit 1
deploy_addon_app db small
disk=$(disk_of_app db)
psql_as db -q -c "CREATE TABLE t (id int PRIMARY KEY, pad text)" \
  -c "INSERT INTO t SELECT g, repeat('p', 300) FROM generate_series(1, 30000) g"

for round in 1 2 3 4 5; do
  pm=$(postmaster_pid "$disk")
  [ -n "$pm" ] && kill -KILL "$pm"
  out=$(miren disk backup -n "$disk" -o "$TMP/r$round.miren.zst" 2>&1)
  st=$?
  if [ "$st" = 0 ]; then
    expect_match "$out" "postgresql-online-backup" "round $round: the backup waited for the restarted server and ran online"
    restore_check "$TMP/r$round.miren.zst" "r$round" "$disk" &&
      expect_eq "$(q_restored "r$round" -d db -c 'SELECT count(*) FROM t')" "30000" "round $round: every row is in the restored copy"
    stop_restored "r$round"
  else
    expect_match "$out" "^error: " "round $round: the backup failed with an error ($(head -n 1 <<<"$out"))"
    expect_eq "$(ls "$TMP" | grep -c "^r$round\.miren\.zst")" "0" "round $round: and left no file"
  fi
  wait_for "round $round: the database answers again" 30 psql_as db -c 'SELECT 1'
done
expect_eq "$(ls "$TMP" | grep -c partial)" "0" "no partial file is left"
expect_eq "$(invariant_violations)" "" "no invariant is violated"
finish
