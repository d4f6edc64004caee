#!/usr/bin/env bash
# The fault-point walk, disk operations: at every fault point the code
# declares (MIREN_FAULT=list) of deploy, disk backup and restore, disk
# deletion and spare disks, the daemon crashes (MIREN_FAULT, as kill -9
# would); a restarted daemon must converge, with no stray process, disk
# directory, database or role, and no committed data lost.  Step points
# are t0301's walk, addon backup and schedule points t0310's.
. "$(dirname "$0")/lib.sh"

# shellcheck source=tests/e2e/lib-walk.sh
. "$(dirname "$0")/lib-walk.sh"

# A deploy cut between moving the release and recording it.
walked deploy:moved
start_faulty deploy:moved || exit 1
mkdir -p "$TMP/fd/.miren" && printf 'name = "fd"\n[services.web]\ncommand = "exec sleep 100000"\n' > "$TMP/fd/.miren/app.toml"
miren deploy -C "$TMP/fd" >/dev/null 2>&1
wait_crash || fail "deploy:moved: the daemon did not crash there"
start_server || exit 1
expect_eq "$(ls "$DATA/apps/fd/releases" 2>/dev/null | wc -l)" "0" "deploy:moved: the unrecorded release directory is removed"
expect_exit "deploy:moved: the deploy works again" 0 miren deploy -C "$TMP/fd"
expect_eq "$(ls "$DATA/apps/fd/releases")" "1" "deploy:moved: as release 1"
check "deploy:moved"

# Backups and restores of a small addon's disk.
miren addon create miren-postgresql:small -a fa >/dev/null 2>&1
psql_as fa -q -c "CREATE TABLE t (i int); INSERT INTO t VALUES (1)"
disk=$(disk_of_app fa)
miren disk backup -n "$disk" -o "$TMP/good.miren.zst" >/dev/null 2>&1
psql_as fa -q -c "INSERT INTO t VALUES (2)"
stop_server
for p in $(points_of operation backup:); do
  walked "$p"
  start_faulty "$p" || exit 1
  rm -f "$TMP/f.miren.zst"
  miren disk backup -n "$disk" -o "$TMP/f.miren.zst" >/dev/null 2>&1
  wait_crash || fail "$p: the daemon did not crash there"
  expect_eq "$(ls "$TMP" | grep -c '^f\.miren\.zst')" "0" "$p: no backup file is left"
  start_server || exit 1
  expect_eq "$(psql_as fa -c 'SELECT count(*) FROM t')" "2" "$p: the live data is intact"
  expect_exit "$p: a backup works after the crash" 0 miren disk backup -n "$disk" -o "$TMP/f.miren.zst"
  check "$p"
  stop_server
done
for p in $(points_of operation restore: | grep -vx restore:placed); do
  walked "$p"
  start_faulty "$p" || exit 1
  miren disk restore -s "$TMP/good.miren.zst" --force >/dev/null 2>&1
  wait_crash || fail "$p: the daemon did not crash there"
  start_server || exit 1
  wait_for "$p: the database answers after the restart" 30 psql_as fa -c 'SELECT 1'
  n=$(psql_as fa -c 'SELECT count(*) FROM t' 2>/dev/null)
  case "$n" in 1|2) ok "$p: the disk holds either the old or the restored data ($n)";; *) fail "$p: the disk holds '$n'";; esac
  check "$p"
  psql_as fa -q -c "DELETE FROM t; INSERT INTO t VALUES (1), (2)"
  stop_server
done
# A restore under a new name, killed between putting the disk in place and
# answering: the disk stays, recorded.
walked restore:placed
start_faulty restore:placed || exit 1
miren disk restore -s "$TMP/good.miren.zst" -n placed >/dev/null 2>&1
wait_crash || fail "restore:placed: the daemon did not crash there"
start_server || exit 1
expect_match "$(miren debug disk list)" "^placed " "restore:placed: the disk in place is recorded"
check "restore:placed"
stop_server

# A disk deletion (miren disk delete) cut short: the next start finishes it.
for p in $(points_of operation disk-delete:); do
  walked "$p"
  start_faulty "$p" || exit 1
  miren disk restore -s "$TMP/good.miren.zst" -n orphan >/dev/null 2>&1
  miren disk delete -n orphan -f >/dev/null 2>&1
  wait_crash || fail "$p: the daemon did not crash there"
  start_server || exit 1
  expect_no_match "$(miren debug disk list)" "^orphan " "$p: the deletion is finished at start"
  check "$p"
  stop_server
done

# Filled spare disks (lib/disk/volume.h): the preparer (at start) killed
# after an engine filled a spare disk and after it put one in place, and a
# create killed after its disk took one; the next daemon removes what was
# half prepared, makes the spares again, and the addon converges.
spares_ready() { [ -n "$(filled_spares)" ]; }
start_server || exit 1
mkapp sp
stop_server
left_msg='left by an interrupted spare preparation'
for p in $(points_of operation spare:); do
  walked "$p"
  remove_filled_spares
  n_left=$(grep -c "$left_msg" "$DATA/logs/server.log")
  start_faulty "$p" || exit 1
  if [ "$p" = spare:taken ]; then
    wait_for "$p: the preparer makes a filled spare" 60 spares_ready
    miren addon create miren-postgresql:small -a sp --no-wait >/dev/null 2>&1
  fi
  wait_crash || { fail "$p: the daemon did not crash there"; stop_server; }
  start_server || exit 1
  # (What is left is the invariants' to find; a preparation the new
  # daemon runs now is not.)
  if [ "$p" != spare:taken ]; then
    expect_eq "$(( $(grep -c "$left_msg" "$DATA/logs/server.log") > n_left ))" 1 "$p: the next daemon removes what the preparation left"
  fi
  wait_for "$p: the spares are made again" 60 spares_ready
  miren addon create miren-postgresql:small -a sp --no-wait >/dev/null 2>&1
  wait_for "$p: a small addon converges to active" 40 sh -c "'$MIREN_BIN' addon list -a sp | grep -q ' active'"
  wait_for "$p: its database answers" 20 psql_as sp -c "SELECT 1"
  check "$p"
  expect_exit "$p: the addon is destroyed after" 0 miren addon destroy miren-postgresql -a sp -f --no-final-backup
  stop_server
done

# Every operation point of deploy, disk backup and restore, disk deletion and spare disks the code declares was walked here
# (the others: t0309's, t0310's; step points t0301's, inside points t0307's).
for p in $(echo "$POINTS" | awk '$1 == "operation" && (index($2, "deploy:") == 1 || index($2, "backup:") == 1 || index($2, "restore:") == 1 || index($2, "disk-delete:") == 1 || index($2, "spare:") == 1) { print $2 }'); do
  case " $WALKED " in
    *" $p "*) ;;
    *) fail "fault point $p is declared but not walked" ;;
  esac
done
finish
