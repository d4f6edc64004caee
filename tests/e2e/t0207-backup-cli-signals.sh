#!/usr/bin/env bash
# The backup CLI and its output file (issue 8, finding 5): SIGINT, SIGTERM
# and SIGHUP in the middle of a transfer leave no *.partial file, and the
# next backup to the same path works; what a SIGKILL leaves does not stand
# in the way either; two backups to the same -o path at once never destroy
# each other: one file survives, complete and verified, and the other
# backup says why it kept nothing.
# The CLI's own paths: the CLI of the daemon's build (sanitized in CI; lib.sh).
MIREN_CLI_BIN=${MIREN_BIN:-}
. "$(dirname "$0")/lib.sh"
start_server || exit 1
deploy_addon_app db small
disk=$(disk_of_app db)
psql_as db -q -c "CREATE TABLE big AS SELECT g, md5(random()::text) || md5(random()::text) || md5(random()::text) AS p FROM generate_series(1, 600000) g"
mkdir -p "$TMP/o"

# Starts a backup to $1, waits until data flows, then stops it (pid in $b).
flowing_backup() {
  "$MIREN_BIN" disk backup -n "$disk" -o "$1" >"$TMP/b.out" 2>&1 &
  b=$!
  local end=$((SECONDS + 30))
  while [ $SECONDS -lt $end ] && [ -z "$(find "$TMP/o" -name '*.partial' -size +100k)" ]; do sleep 0.05; done
  kill -STOP "$b"
}

for sig in INT TERM HUP; do
  flowing_backup "$TMP/o/s.miren.zst"
  [ -n "$(find "$TMP/o" -name '*.partial')" ] && ok "SIG$sig: a partial file is being written" || fail "SIG$sig: no partial file seen"
  kill -"$sig" "$b"; kill -CONT "$b"
  wait "$b"; st=$?
  expect_eq "$st" "$((128 + $(kill -l "$sig")))" "SIG$sig: the CLI dies of the signal"
  expect_eq "$(ls -A "$TMP/o")" "" "SIG$sig: and leaves no file"
  expect_match "$(cat "$TMP/b.out")" "error: interrupted; the backup was not written" "SIG$sig: saying so"
done
expect_exit "a backup to the same path works afterwards" 0 miren disk backup -n "$disk" -o "$TMP/o/s.miren.zst"
rm -f "$TMP/o/s.miren.zst"

flowing_backup "$TMP/o/k.miren.zst"
kill -KILL "$b"; wait "$b" 2>/dev/null
expect_eq "$(ls "$TMP/o" | grep -c '^k\.miren\.zst\..*\.partial$')" "1" "SIGKILL leaves its partial file"
# The daemon notices the broken connection and frees the disk.
wait_for "a backup to the same path works after a SIGKILL" 30 miren disk backup -n "$disk" -o "$TMP/o/k.miren.zst"
rm -f "$TMP/o"/*

# Two backups to one path at once.
"$MIREN_BIN" disk backup -n "$disk" -o "$TMP/o/same.miren.zst" >"$TMP/1.out" 2>&1 & p1=$!
"$MIREN_BIN" disk backup -n "$disk" -o "$TMP/o/same.miren.zst" >"$TMP/2.out" 2>&1 & p2=$!
wait "$p1"; s1=$?
wait "$p2"; s2=$?
expect_eq "$(( (s1 == 0) + (s2 == 0) ))" "1" "of two backups to one path, one succeeds ($s1, $s2)"
loser=$([ "$s1" = 0 ] && echo 2 || echo 1)
expect_match "$(cat "$TMP/$loser.out")" "^error: .*('.*same\.miren\.zst' (already exists|appeared while)|in progress)" "the other says why it kept nothing"
expect_eq "$(ls -A "$TMP/o")" "same.miren.zst" "one file survives, no partial file"
out=$(miren disk restore -s "$TMP/o/same.miren.zst" -n same-copy 2>&1)
expect_match "$out" "Restored disk same-copy" "and it restores"
finish
