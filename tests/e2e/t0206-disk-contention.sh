#!/usr/bin/env bash
# Disk operations under contention (issue 8, finding 5).  With one backup
# client stopped (SIGSTOP) in the middle of its transfer, a second backup
# and a restore of the same disk answer "another operation on disk ... is
# in progress" after a bounded wait instead of hanging; a restore whose
# client gave up while it waited changes nothing when the disk frees up;
# `miren addon destroy` waits for the running backup instead of deleting
# the disk under it.
. "$(dirname "$0")/lib.sh"
start_server || exit 1
deploy_addon_app db small
disk=$(disk_of_app db)
psql_as db -q -c "CREATE TABLE t (i int)" -c "INSERT INTO t VALUES (1)"
miren disk backup -n "$disk" -o "$TMP/good.miren.zst" >/dev/null 2>&1 || fail "the first backup"
# Enough data that the stream outlasts every buffer between the server and
# a stopped client.
psql_as db -q -c "CREATE TABLE big AS SELECT g, md5(random()::text) || md5(random()::text) || md5(random()::text) AS p FROM generate_series(1, 600000) g" \
  -c "INSERT INTO t VALUES (2)"

# Starts a backup into $1 and stops its client once data flows (pid in $a).
stopped_backup() {
  "$MIREN_BIN" disk backup -n "$disk" -o "$1" >"$1.out" 2>&1 &
  a=$!
  local end=$((SECONDS + 30))
  while [ $SECONDS -lt $end ]; do
    [ -n "$(find "$TMP" -maxdepth 1 -name "$(basename "$1").*.partial" -size +100k)" ] && break
    sleep 0.05
  done
  kill -STOP "$a"
}
waits() { grep -c "disk $disk: $1 waits for" "$DATA/logs/server.log"; }

stopped_backup "$TMP/a.miren.zst"
t0=$SECONDS
expect_exit "a second backup of the disk fails" 4 timeout 60 "$MIREN_BIN" disk backup -n "$disk" -o "$TMP/b.miren.zst"
expect_match "$(cat "$TMP/err")" "another operation on disk '$disk' is in progress \(a backup\)" "saying another operation is in progress"
took=$((SECONDS - t0))
[ "$took" -le 20 ] && ok "after a bounded wait (${took}s)" || fail "it took ${took}s"
expect_exit "a restore of the disk fails" 4 timeout 60 "$MIREN_BIN" disk restore -s "$TMP/good.miren.zst" --force
expect_match "$(cat "$TMP/err")" "another operation on disk '$disk' is in progress" "with the same answer"
expect_eq "$(psql_as db -c 'SELECT count(*) FROM t')" "2" "the data is unchanged"

# A restore whose client gives up while it waits for the disk.
before=$(waits "a restore")
"$MIREN_BIN" disk restore -s "$TMP/good.miren.zst" --force >"$TMP/r.out" 2>&1 &
r=$!
wait_for "the restore waits for the disk" 30 bash -c "[ \$(grep -c 'disk $disk: a restore waits for' '$DATA/logs/server.log') -gt $before ]"
kill -KILL "$r"; wait "$r" 2>/dev/null
kill -CONT "$a"
wait "$a"; st=$?
expect_eq "$st" "0" "the stopped backup finishes once continued ($(tail -n 1 "$TMP/a.miren.zst.out"))"
expect_match "$(cat "$TMP/a.miren.zst.out")" "verified +[0-9]+ files" "and verifies"
# Once the disk is free it finds its client gone (or, on a slow machine,
# its bounded wait ran out first): either way it must not run.
wait_for "the abandoned restore gives up" 20 grep -Eq "disk $disk: (the client of its restore is gone|a restore gave up waiting)" "$DATA/logs/server.log"
grep -q "disk $disk: the client of its restore is gone" "$DATA/logs/server.log" && ok "(it found its client gone)"
expect_eq "$(psql_as db -c 'SELECT count(*) FROM t')" "2" "the abandoned restore changed nothing"
expect_eq "$(ls -A "$DATA/disks" | grep -c '^\.')" "0" "and left nothing in disks/"

# addon destroy during a backup waits for it (without a final backup:
# that would wait for the disk too, and give up after the bounded wait).
stopped_backup "$TMP/c.miren.zst"
miren addon destroy miren-postgresql -a db -f --no-wait --no-final-backup >/dev/null 2>&1 || fail "addon destroy"
wait_for "the removal waits for the backup" 30 grep -q "disk $disk: the removal of its addon waits for a backup" "$DATA/logs/server.log"
sleep 2
[ -d "$DATA/disks/$disk/pgdata/base" ] && ok "the disk is still there under the backup" || fail "the disk was removed under the backup"
kill -CONT "$a"
wait "$a"; st=$?
expect_eq "$st" "0" "the backup finishes ($(tail -n 1 "$TMP/c.miren.zst.out"))"
wait_for "then the addon's disk is removed" 60 bash -c "[ ! -e '$DATA/disks/$disk' ]"
out=$(miren disk restore -s "$TMP/c.miren.zst" -n rescued 2>&1)
expect_match "$out" "Restored disk rescued" "the backup taken during the destroy restores"

# Provisioning on a shared server while its disk is restored: the tenant
# step waits for the restore (the disk lock) instead of starting the server
# under it; both end well.
deploy_addon_app sh0 shared || fail "deploy sh0"
sdisk=$(disk_of_app sh0)
miren disk backup -n "$sdisk" -o "$TMP/shared.miren.zst" >/dev/null 2>&1 || fail "the shared backup"
for i in 1 2 3; do
  miren env set -a "sh$i" --create K=v >/dev/null 2>&1 || fail "make app sh$i"
  "$MIREN_BIN" disk restore -s "$TMP/shared.miren.zst" --force >"$TMP/sr$i.out" 2>&1 &
  r=$!
  sleep "0.$((RANDOM % 5))"
  miren addon create miren-postgresql:shared -a "sh$i" >"$TMP/sc$i.out" 2>&1; cst=$?
  wait "$r"; rst=$?
  expect_eq "$rst" "0" "round $i: the restore of the shared disk succeeds ($(tail -n 1 "$TMP/sr$i.out"))"
  expect_eq "$cst" "0" "round $i: the addon created beside it succeeds ($(tail -n 1 "$TMP/sc$i.out"))"
  wait_for "round $i: it is active" 60 bash -c "'$MIREN_BIN' addon list -a sh$i | grep -q active"
done
expect_eq "$(invariant_violations)" "" "no invariant is violated"
finish
