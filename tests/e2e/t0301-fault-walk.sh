#!/usr/bin/env bash
# The fault-point walk: for every named step of provision, deprovision,
# deploy, backup and restore, the daemon crashes there (MIREN_FAULT, as
# kill -9 would); a restarted daemon must converge, with exactly one
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

for variant in small shared; do
  for step in plan server tenant; do
    for when in ran saved; do
      p="provision:$variant:$step:$when"
      start_faulty "$p" || { fail "$p: server did not start"; continue; }
      miren addon create "miren-postgresql:$variant" -a fa --no-wait >/dev/null 2>&1
      wait_crash || { fail "$p: the daemon did not crash there"; stop_server; continue; }
      start_server || exit 1
      wait_for "$p: the addon converges to active" 40 sh -c "'$MIREN_BIN' addon list -a fa | grep -q ' active'"
      check "$p"
      miren addon destroy miren-postgresql -a fa -f >/dev/null 2>&1
      stop_server
    done
  done
  p="activate:$variant"
  start_faulty "$p" || { fail "$p: server did not start"; continue; }
  miren addon create "miren-postgresql:$variant" -a fa --no-wait >/dev/null 2>&1
  wait_crash || fail "$p: the daemon did not crash there"
  start_server || exit 1
  wait_for "$p: the addon converges to active" 40 sh -c "'$MIREN_BIN' addon list -a fa | grep -q ' active'"
  expect_match "$(miren env list -a fa)" "DATABASE_URL" "$p: its env is there"
  check "$p"
  for step in drop-tenant release-server; do
    for when in ran saved; do
      p="deprovision:$variant:$step:$when"
      stop_server
      start_faulty "$p" || { fail "$p: server did not start"; continue; }
      miren addon destroy miren-postgresql -a fa -f --no-wait >/dev/null 2>&1
      wait_crash || { fail "$p: the daemon did not crash there"; stop_server; start_server; continue; }
      start_server || exit 1
      wait_for "$p: the addon converges to removed" 40 sh -c "'$MIREN_BIN' addon list -a fa | grep -q 'has no addons'"
      check "$p"
      miren addon create "miren-postgresql:$variant" -a fa >/dev/null 2>&1
    done
  done
  miren addon destroy miren-postgresql -a fa -f >/dev/null 2>&1
  stop_server
done

# A deploy cut between moving the release and recording it.
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
for p in backup:started backup:copied; do
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
for p in restore:verified restore:aside restore:swapped restore:started restore:proven; do
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
# recording it: the disk stays and is recorded at start.
start_faulty restore:placed || exit 1
miren disk restore -s "$TMP/good.miren.zst" -n placed >/dev/null 2>&1
wait_crash || fail "restore:placed: the daemon did not crash there"
start_server || exit 1
expect_match "$(miren debug disk list)" "^placed " "restore:placed: the disk in place is recorded at start"
check "restore:placed"
stop_server
finish
