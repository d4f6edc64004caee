#!/usr/bin/env bash
# Point-in-time recovery under crashes and contention: base backups are
# pruned to MIREN_PITR_BASE_KEEP and the WAL before the oldest kept one is
# tidied; the daemon killed at every fault point of archiving and
# recovery (pitr:*, miren-postgresql:pitr:*) converges (the invariants
# hold, every stored base backup's chunks are there, a recovery leaves the
# data as before or as at the instant, never a mix); a base backup gives
# way to `miren disk backup` (which neither waits long nor fails).
. "$(dirname "$0")/lib.sh"
PG=miren-postgresql
export MIREN_ADDON_TICK_MS=300 MIREN_PITR_BASE_SECONDS=2 MIREN_PITR_BASE_KEEP=2
start_server || exit 1
deploy_addon_app solo small
disk=$(disk_of_app solo)
srv=$(state_q ".servers[] | select(.disk == \"$disk\") | .id")
M="$DATA/backups/manifests"
# The base backups of the server, oldest first (manifest files).
bases() { grep -l "\"kind\":\"pitr-base\",\"trigger\":\"pitr\",\"server\":\"$srv\"" "$M"/*.json 2>/dev/null | sort; }
n_started() { grep -c "server $srv: a base backup for point-in-time recovery begins" "$DATA/logs/server.log"; }
n_pruned() { grep -c "server $srv: removed the base backup" "$DATA/logs/server.log"; }
# Every chunk every manifest names is stored.
chunks_whole() {
  local m h
  for m in "$M"/*.json; do
    for h in $(jq -r '.chunks[][0]' "$m"); do
      [ -f "$DATA/backups/chunks/${h:0:2}/$h" ] || { echo "$m names missing chunk $h"; return 1; }
    done
  done
}
check() {
  local bad
  bad=$(invariant_violations)
  chunks_whole >/dev/null || bad="$bad; $(chunks_whole)"
  if [ -z "$bad" ]; then ok "$1: invariants hold, every stored chunk is there"; else fail "$1:$bad"; fi
}

psql_as solo -q -c "CREATE TABLE t (v text); INSERT INTO t VALUES ('t1')"
wait_for "base backups are pruned to 2" 60 sh -c "[ \$(grep -c 'server $srv: removed the base backup' '$DATA/logs/server.log') -ge 1 ]"
expect_eq "$(bases | wc -l)" "2" "the newest 2 base backups are kept"
oldest=$(jq -r '.meta.wal_start' "$(bases | head -n 1)")
older=$(ls "$DATA/backups/wal/$srv" | grep -E '^[0-9A-F]{24}\.zst$' | awk -v o="${oldest:8:16}" 'substr($0, 9, 16) < o' | wc -l)
wait_for "archived WAL older than the oldest kept base backup ($oldest) is tidied" 20 sh -c \
  "[ \$(ls '$DATA/backups/wal/$srv' | grep -E '^[0-9A-F]{24}\.zst\$' | awk -v o='${oldest:8:16}' 'substr(\$0, 9, 16) < o' | wc -l) = 0 ]"
: "$older"
check "retention"

# Crashes in the background work: each point is reached by the next tick.
for p in $PG:pitr:base-started $PG:pitr:base-stored $PG:pitr:base-pruned $PG:pitr:wal-tidied; do
  stop_server
  start_faulty "$p" || { fail "$p: the daemon did not start"; continue; }
  wait_crash || { fail "$p: the daemon did not crash there"; stop_server; }
  start_server || exit 1
  before=$(n_started)
  wait_for "$p: base backups go on after the crash" 60 sh -c \
    "[ \$(grep -c 'server $srv: base backup .* for point-in-time recovery (' '$DATA/logs/server.log') -gt 0 ] && [ \$(grep -c 'server $srv: a base backup for point-in-time recovery begins' '$DATA/logs/server.log') -gt $((before + 1)) ]"
  check "$p"
done

# Crashes in a recovery: the data is as before, or as at the instant.
# (Base backups kept long enough that the instant stays in the window.)
export MIREN_PITR_BASE_KEEP=100
psql_as solo -q -c "DELETE FROM t; INSERT INTO t VALUES ('t1')"
sleep 1.5
T=$(date -u '+%Y-%m-%d %H:%M:%S+00')
sleep 1.5
psql_as solo -q -c "INSERT INTO t VALUES ('t2')"
rows() { psql_as solo -c "SELECT string_agg(v, ',' ORDER BY v) FROM t"; }
for p in pitr:recovered pitr:loaded; do
  stop_server
  n_restarts=$(grep -c "restarted after an interrupted restore" "$DATA/logs/server.log")
  start_faulty "$p" || { fail "$p: the daemon did not start"; continue; }
  miren addon restore miren-postgresql -a solo --to "$T" >/dev/null 2>&1
  wait_crash || { fail "$p: the daemon did not crash there"; stop_server; }
  start_server || exit 1
  case "$p" in
    pitr:recovered) expect_eq "$(rows)" "t1,t2" "$p: the data is as before" ;;
    pitr:loaded)
      expect_eq "$(rows)" "t1" "$p: the data is as at the instant"
      expect_eq "$(grep -c "restarted after an interrupted restore" "$DATA/logs/server.log")" "$((n_restarts + 1))" "$p: the next daemon restarts the app" ;;
  esac
  expect_eq "$(ls "$DATA/restores" 2>/dev/null | wc -l)" "0" "$p: no restore journal is left"
  wait_for "$p: no scratch or staging disk is left" 20 sh -c "[ \$(ls -A '$DATA/disks' | grep -c '^\.') = 0 ]"
  check "$p"
  psql_as solo -q -c "INSERT INTO t SELECT 't2' WHERE NOT EXISTS (SELECT 1 FROM t WHERE v = 't2')"
done

# A base backup gives way to a disk backup: big enough data that a base
# backup takes a while, then a disk backup as soon as one begins.
psql_as solo -q -c "CREATE TABLE big AS SELECT g, md5(g::text) || repeat('x', 400) AS pad FROM generate_series(1, 250000) g"
gave=0
for i in 1 2 3 4 5 6; do
  before=$(n_started)
  wait_for "a base backup begins ($i)" 60 sh -c "[ \$(grep -c 'server $srv: a base backup for point-in-time recovery begins' '$DATA/logs/server.log') -gt $before ]" >/dev/null
  t0=$(date +%s%N)
  if ! miren disk backup -n "$disk" -o "$TMP/b$i.miren.zst" >/dev/null 2>"$TMP/err"; then
    fail "a disk backup during a base backup fails: $(cat "$TMP/err")"; break
  fi
  ms=$(( ($(date +%s%N) - t0) / 1000000 ))
  rm -f "$TMP/b$i.miren.zst"
  if grep -q "server $srv: the base backup gave way" "$DATA/logs/server.log"; then gave=1; break; fi
done
expect_eq "$gave" "1" "a base backup in progress gives way to a disk backup"
[ "$gave" = 1 ] && expect_match "$(grep "disk $disk: a backup waits for a background backup" "$DATA/logs/server.log" | tail -n 1)" "to give way" "  which waited for it to give way"
[ "$gave" = 1 ] && { if [ "${ms:-99999}" -lt 20000 ]; then ok "  and took $ms ms"; else fail "  it took $ms ms"; fi; }
check "give way"
finish
