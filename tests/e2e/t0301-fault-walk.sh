#!/usr/bin/env bash
# The fault-point walk: at every fault point the code declares
# (MIREN_FAULT=list) between the steps of provision and deprovision of
# every addon and variant, and of deploy, backup and restore, the daemon
# crashes (MIREN_FAULT, as kill -9 would); a restarted daemon must converge, with exactly one
# PostgreSQL server per server record, no stray process, disk directory,
# database or role, and no committed data lost.
. "$(dirname "$0")/lib.sh"

check() {
  local bad
  bad=$(invariant_violations)
  # The long-lived tenant keeps its committed rows.
  [ "$(psql_as keep -c 'SELECT count(*) FROM kept' 2>/dev/null)" = "3" ] || bad="$bad; keep lost data"
  if [ -z "$bad" ]; then ok "$1: invariants hold"; else fail "$1:$bad"; fi
}

mkapp() {
  mkdir -p "$TMP/$1/.miren"
  printf 'name = "%s"\n[services.web]\ncommand = "exec sleep 100000"\n' "$1" > "$TMP/$1/.miren/app.toml"
  miren deploy -C "$TMP/$1" >/dev/null 2>&1
}

start_server || exit 1
mkapp keep
miren addon create miren-postgresql:shared -a keep >/dev/null 2>&1
psql_as keep -q -c "CREATE TABLE kept (i int); INSERT INTO kept VALUES (1), (2), (3)"
mkapp fa
stop_server

# The points come from the code (MIREN_FAULT=list): every step of every
# variant of every registered addon, so a new step or engine is walked
# without touching this test.
POINTS=$(MIREN_FAULT=list "$MIREN_BIN")
[ -n "$POINTS" ] || { fail "MIREN_FAULT=list printed nothing"; finish; }
expect_match "$POINTS" "^step provision:miren-postgresql:small:plan:ran$" "MIREN_FAULT=list names the steps"
# The points of one kind whose name starts with $2, in the listed order.
points_of() { echo "$POINTS" | awk -v k="$1" -v p="$2" '$1 == k && index($2, p) == 1 { print $2 }'; }
WALKED=""
walked() { WALKED="$WALKED $1"; }

# addon:variant pairs, from the activate points (one per variant).
for av in $(points_of step activate: | sed 's/^activate://'); do
  addon=${av%:*} variant=${av##*:}
  for p in $(points_of step "provision:$av:"); do
    walked "$p"
    start_faulty "$p" || { fail "$p: server did not start"; continue; }
    miren addon create "$addon:$variant" -a fa --no-wait >/dev/null 2>&1
    wait_crash || { fail "$p: the daemon did not crash there"; stop_server; continue; }
    start_server || exit 1
    wait_for "$p: the addon converges to active" 40 sh -c "'$MIREN_BIN' addon list -a fa | grep -q ' active'"
    check "$p"
    miren addon destroy "$addon" -a fa -f >/dev/null 2>&1
    stop_server
  done
  p="activate:$av"
  walked "$p"
  start_faulty "$p" || { fail "$p: server did not start"; continue; }
  miren addon create "$addon:$variant" -a fa --no-wait >/dev/null 2>&1
  wait_crash || fail "$p: the daemon did not crash there"
  start_server || exit 1
  wait_for "$p: the addon converges to active" 40 sh -c "'$MIREN_BIN' addon list -a fa | grep -q ' active'"
  n_env=$(miren env list -a fa --format json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')
  [ "$n_env" -gt 0 ] && ok "$p: its env is there" || fail "$p: its env is missing"
  check "$p"
  for p in $(points_of step "deprovision:$av:"); do
    walked "$p"
    stop_server
    start_faulty "$p" || { fail "$p: server did not start"; continue; }
    miren addon destroy "$addon" -a fa -f --no-wait >/dev/null 2>&1
    wait_crash || { fail "$p: the daemon did not crash there"; stop_server; start_server; continue; }
    start_server || exit 1
    wait_for "$p: the addon converges to removed" 40 sh -c "'$MIREN_BIN' addon list -a fa | grep -q 'has no addons'"
    check "$p"
    miren addon create "$addon:$variant" -a fa >/dev/null 2>&1
  done
  miren addon destroy "$addon" -a fa -f >/dev/null 2>&1
  stop_server
done

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
  miren addon destroy miren-postgresql -a sp -f >/dev/null 2>&1
  stop_server
done

# Every step and operation point the code declares was walked here
# (app-destroy:marked is t0106's, volume:* t0703's; inside points are t0307's).
for p in $(echo "$POINTS" | awk '$1 != "inside" && index($2, "volume:") != 1 { print $2 }'); do
  case " $WALKED app-destroy:marked " in
    *" $p "*) ;;
    *) fail "fault point $p is declared but not walked" ;;
  esac
done
finish
