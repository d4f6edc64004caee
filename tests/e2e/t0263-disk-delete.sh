#!/usr/bin/env bash
# miren disk delete: an orphan disk (a restore under a new name) is
# deleted with -f; without -f and no terminal nothing is deleted; a disk an
# addon's server uses is refused with the reason; an unknown disk is not
# found; a deletion cut short by a crash is finished at the next start.
. "$(dirname "$0")/lib.sh"
start_server || exit 1
deploy_addon_app dd small
wait_for "the addon is active" 60 sh -c "'$MIREN_BIN' addon list -a dd | grep -q ' active'"
disk=$(disk_of_app dd)
miren disk backup -n "$disk" -o "$TMP/dd.miren.zst" >/dev/null 2>&1
miren disk restore -s "$TMP/dd.miren.zst" -n orphan >/dev/null 2>&1
expect_match "$(miren debug disk list)" "^orphan .* unused" "a restore under a new name leaves an unused disk"

expect_exit "without -f and no terminal, nothing is deleted" 1 miren disk delete -n orphan </dev/null
expect_match "$(cat "$TMP/err")" "not deleting disk 'orphan' without confirmation" "saying why"
expect_match "$(cat "$TMP/err")" "hint: pass -f" "and how"
expect_match "$(miren debug disk list)" "^orphan " "the disk is still there"

expect_exit "a disk in use is refused" 4 miren disk delete -n "$disk" -f
expect_match "$(cat "$TMP/err")" "disk '$disk' is in use by miren-postgresql server .* of app 'dd'; nothing was deleted" "naming the server and its app"
expect_match "$(cat "$TMP/err")" "hint: .*miren addon destroy miren-postgresql -a dd" "and how its disk goes"
expect_eq "$(psql_as dd -c 'SELECT 1')" "1" "its database still answers"

expect_exit "an unknown disk is not found" 3 miren disk delete -n no-such-disk -f
expect_match "$(cat "$TMP/err")" "disk 'no-such-disk' not found" "naming it"
expect_exit "a bad name is invalid" 6 miren disk delete -n ../x -f
expect_exit "-n is required" 2 miren disk delete -f

out=$(miren disk delete -n orphan -f 2>&1)
expect_match "$out" "^Deleted disk orphan \(" "delete -f deletes the unused disk"
expect_no_match "$(miren debug disk list)" "^orphan " "the disk list no longer shows it"
expect_eq "$(ls -A "$DATA/disks" | grep -c '^orphan$')" "0" "its directory is gone"
expect_eq "$(ls -A "$DATA/volumes" 2>/dev/null | grep -c '^orphan\.img$')" "0" "and its image"

miren disk restore -s "$TMP/dd.miren.zst" -n orphan2 >/dev/null 2>&1
out=$(miren disk delete -n orphan2 -f --format json)
expect_eq "$(printf '%s' "$out" | jq -r .disk)" "orphan2" "--format json names the disk"

# Crashes in the middle of a deletion (the fault walk does each point too).
for p in disk-delete:marked disk-delete:removed; do
  miren disk restore -s "$TMP/dd.miren.zst" -n crashy >/dev/null 2>&1
  stop_server
  start_faulty "$p" || exit 1
  miren disk delete -n crashy -f >/dev/null 2>&1
  wait_crash || fail "$p: the daemon did not crash there"
  start_server || exit 1
  expect_no_match "$(miren debug disk list)" "^crashy " "$p: the next start finishes the deletion"
  expect_eq "$(ls -A "$DATA/disks" | grep -c '^crashy$')" "0" "$p: no directory is left"
  expect_eq "$(invariant_violations)" "" "$p: the invariants hold"
done
expect_eq "$(psql_as dd -c 'SELECT 1')" "1" "the app's database answers throughout"
finish
