#!/usr/bin/env bash
# The fault-point walk, addon backups: at every fault point the code
# declares (MIREN_FAULT=list) of addon backup and restore, scheduled
# backups and retention, the daemon crashes (MIREN_FAULT, as kill -9
# would); a restarted daemon must converge, with no stray process, disk
# directory, database or role, and no committed data lost.  Step points
# are t0301's walk, disk operations t0309's.  (Points of other kinds:
# app-destroy:marked t0106's, volume:* t0703's, bstore:* the unit test
# test_bstore's, scratch:* t0242's, pitr:* t0251's, rotate:* t0271's, fork:* t0288's,
# change:* t0281's and t0284's.)
. "$(dirname "$0")/lib.sh"

# shellcheck source=tests/e2e/lib-walk.sh
. "$(dirname "$0")/lib-walk.sh"

# Addon backups and restores (lib/daemon/backups.c), on keep's shared
# tenant: a backup killed at each point keeps nothing and works again; a
# restore killed at each point leaves keep's rows as before or as in the
# backup, and a restore killed after the load restarts the app at start.
start_server || exit 1
miren addon create miren-postgresql:small -a fa >/dev/null 2>&1
psql_as fa -q -c "CREATE TABLE t (i int); INSERT INTO t VALUES (1)"
good=$(miren addon backup miren-postgresql -a keep | head -n 1)
# (fa's small server's disk: restored into keep it goes through a scratch
# server, which addon-restore:scratch-dumped cuts short.)
fa_disk=$(miren addon backup miren-postgresql -a fa | head -n 1)
stop_server
for p in $(points_of operation addon-backup:); do
  walked "$p"
  # (Addon backups only: base backups for point-in-time recovery come and go.)
  n_before=$(grep -L '"kind":"pitr-base"' "$DATA"/backups/manifests/*.json 2>/dev/null | wc -l)
  start_faulty "$p" || exit 1
  miren addon backup miren-postgresql -a keep >/dev/null 2>&1
  wait_crash || fail "$p: the daemon did not crash there"
  start_server || exit 1
  n=$(grep -L '"kind":"pitr-base"' "$DATA"/backups/manifests/*.json 2>/dev/null | wc -l)
  case "$p" in
    addon-backup:stored) expect_eq "$n" "$((n_before + 1))" "$p: the committed backup is kept" ;;
    *) expect_eq "$n" "$n_before" "$p: no backup is kept" ;;
  esac
  expect_exit "$p: a backup works after the crash" 0 miren addon backup miren-postgresql -a keep
  check "$p"
  stop_server
done
for p in $(points_of operation addon-restore:); do
  walked "$p"
  start_server || exit 1
  psql_as keep -q -c "INSERT INTO kept VALUES (4)"
  stop_server
  n_restarts=$(grep -c "restarted after an interrupted restore" "$DATA/logs/server.log")
  start_faulty "$p" || exit 1
  if [ "$p" = addon-restore:scratch-dumped ]; then from=(--backup "$fa_disk" --force); else from=(--backup "$good"); fi
  miren addon restore miren-postgresql -a keep "${from[@]}" >/dev/null 2>&1
  wait_crash || fail "$p: the daemon did not crash there"
  start_server || exit 1
  n=$(psql_as keep -c 'SELECT count(*) FROM kept' 2>/dev/null)
  case "$p:$n" in
    addon-restore:loaded:3) ok "$p: the restored data is there (3 rows)" ;;
    addon-restore:loaded:*) fail "$p: keep holds '$n' rows, not the backup's 3" ;;
    *:3|*:4) ok "$p: keep holds the old or the restored data ($n rows)" ;;
    *) fail "$p: keep holds '$n' rows" ;;
  esac
  if [ "$p" = addon-restore:loaded ]; then
    expect_eq "$(grep -c "restarted after an interrupted restore" "$DATA/logs/server.log")" "$((n_restarts + 1))" "$p: the next daemon restarts the app"
  fi
  expect_eq "$(ls "$DATA/restores" 2>/dev/null | wc -l)" "0" "$p: no restore journal is left"
  expect_eq "$(ls -A "$DATA/disks" | grep -c '^\.')" "0" "$p: no scratch or staging disk is left"
  psql_as keep -q -c "DELETE FROM kept WHERE i = 4"
  check "$p"
  stop_server
done

# Scheduled backups and retention (lib/daemon/schedules.c), on keep's
# shared tenant with a 1m schedule keeping 1: a daemon killed after a
# scheduled backup, after recording it, after retention removed a backup
# and before the gc (each reached at start or at the first tick); the
# next daemon prunes keep's backups to 1 again, and the one kept restores.
export MIREN_BACKUP_TICK_MS=300
n_sched() { miren addon backups miren-postgresql -a keep --format json | jq '[.backups[] | select(.keep_until == 0)] | length'; }
# One backup, and the schedule not due (nothing about to change).
one_sched() {
  [ "$(n_sched)" = 1 ] &&
    [ "$(miren addon backups miren-postgresql -a keep --format json | jq -r .schedule.next_at)" -gt "$(date +%s)" ]
}
start_server || exit 1
miren addon backups miren-postgresql -a keep --every 1m --keep 1 >/dev/null
wait_for "the schedule prunes keep's backups to 1" 60 one_sched
stop_server
for p in $(points_of operation schedule:) $(points_of operation prune:); do
  walked "$p"
  start_server || exit 1
  miren addon backup miren-postgresql -a keep >/dev/null 2>&1
  stop_server
  sqlite3 "$DATA/miren.db" "UPDATE backup_schedules SET last_ok_at = last_ok_at - 120, last_try_at = last_try_at - 120"
  start_faulty "$p" || exit 1
  wait_crash || fail "$p: the daemon did not crash there"
  start_server || exit 1
  wait_for "$p: keep's backups are pruned to 1 again" 60 one_sched
  kept=$(miren addon backups miren-postgresql -a keep --format json | jq -r '[.backups[] | select(.keep_until == 0)][0].id')
  expect_exit "$p: the backup kept restores" 0 miren addon restore miren-postgresql -a keep --backup "$kept"
  check "$p"
  stop_server
done
unset MIREN_BACKUP_TICK_MS

# Every operation point of addon backup and restore, schedules and retention the code declares was walked here
# (the others: t0309's, t0310's; step points t0301's, inside points t0307's).
for p in $(echo "$POINTS" | awk '$1 == "operation" && (index($2, "addon-backup:") == 1 || index($2, "addon-restore:") == 1 || index($2, "schedule:") == 1 || index($2, "prune:") == 1) { print $2 }'); do
  case " $WALKED " in
    *" $p "*) ;;
    *) fail "fault point $p is declared but not walked" ;;
  esac
done
finish
