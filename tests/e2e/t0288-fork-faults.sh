#!/usr/bin/env bash
# A daemon killed at every step of a fork (fork:*, from MIREN_FAULT=list),
# and again at the same point while the next one finishes the fork at its
# start, and once in the middle of the load, converges with a complete
# fork: dst has exactly one addon, active, holding src's rows, src is
# untouched, and the invariants hold (no extra server, disk, database or
# process).  A fork whose source is gone when the restarted daemon
# finishes it (its base backup removed meanwhile) converges with no fork:
# the failed instance is removed, nothing of it is left.
. "$(dirname "$0")/lib.sh"
export MIREN_ADDON_TICK_MS=500 MIREN_PITR_BASE_MINUTES=60
PG=miren-postgresql
rows() { psql_as "$1" -c "SELECT string_agg(v, ',' ORDER BY v) FROM t"; }
naddons() { miren addon list -a "$1" --format json | jq length; }

start_server || exit 1
deploy_addon_app src small
deploy_plain_app dst
psql_as src -q -c "CREATE TABLE t (v text); INSERT INTO t VALUES ('a'), ('b'), ('c')"
stop_server

POINTS=$(MIREN_FAULT=list "$MIREN_BIN" | awk '$1 == "operation" && index($2, "fork:") == 1 { print $2 }')
expect_eq "$(echo "$POINTS" | tr "\n" " " | sed "s/ $//")" "fork:recorded fork:dumped fork:filled fork:failed" "MIREN_FAULT=list names the fork's points"

# A complete fork after the kills: one active addon on dst with src's
# rows, its own, src untouched; then removed for the next round.
converged() {
  local p=$1
  wait_for "$p: the fork is finished at start" 90 sh -c "[ \"\$('$MIREN_BIN' addon list -a dst --format json | jq -r '.[0].status')\" = active ]"
  expect_eq "$(naddons dst)" "1" "$p: dst has one addon"
  expect_eq "$(rows dst)" "a,b,c" "$p: with src's rows"
  psql_as dst -q -c "INSERT INTO t VALUES ('$p')"
  expect_eq "$(rows src)" "a,b,c" "$p: src is untouched by a write in dst"
  bad=$(invariant_violations)
  [ -z "$bad" ] && ok "$p: invariants hold" || fail "$p:$bad"
  miren addon destroy $PG -a dst --no-final-backup -f >/dev/null 2>&1
  wait_for "$p: the fork is destroyed" 30 sh -c "[ \"\$('$MIREN_BIN' addon list -a dst --format json | jq length)\" = 0 ]"
}

for p in $(echo "$POINTS" | grep -vx fork:failed) "fork:dumped@300"; do
  start_faulty "$p" || { fail "$p: server did not start"; continue; }
  miren addon fork $PG -a src --to dst >/dev/null 2>&1
  wait_crash || { fail "$p: the daemon did not crash there"; stop_server; continue; }
  # Killed again at the same point while finishing the fork (its fill
  # runs again from the start; the record is not made again).
  if [ "$p" != fork:recorded ]; then
    start_faulty "$p" || { fail "$p: server did not start again"; continue; }
    if wait_crash; then ok "$p: killed again while finishing the fork"; else fail "$p: not killed again"; stop_server; fi
  fi
  start_server || exit 1
  converged "$p"
  stop_server
done

# The source gone before the restarted daemon fills the fork: no fork.
# That daemon is killed too, once the failed fork is recorded in error
# (fork:failed), before it removes it: the next one does, at its start.
start_server || exit 1
wait_for "src's server has a base backup" 60 sh -c "grep -q '\"kind\":\"pitr-base\"' '$DATA'/backups/manifests/*.json"
stop_server
start_faulty fork:recorded || fail "no fork: server did not start"
miren addon fork $PG -a src --to dst --at 0s-ago >/dev/null 2>&1
wait_crash || fail "no fork: the daemon did not crash at fork:recorded"
grep -lZ '"kind":"pitr-base"' "$DATA"/backups/manifests/*.json | xargs -0 rm -f
start_faulty fork:failed || fail "no fork: server did not start again"
wait_crash && ok "no fork: killed when the failed fork was recorded" || { fail "no fork: not killed at fork:failed"; stop_server; }
expect_eq "$(sqlite3 "$DATA/miren.db" "SELECT status FROM addons WHERE app = 'dst'")" "error" "  it was left in error"
start_server || exit 1
wait_for "no fork: the failed fork is removed" 90 sh -c "[ \"\$('$MIREN_BIN' addon list -a dst --format json | jq length)\" = 0 ]"
expect_match "$(cat "$DATA/logs/server.log")" "the fork of addon $PG failed .*: removing it" "  the log says why"
expect_eq "$(state_q '[.servers[] | select(.disk | test("dst"))] | length')" "0" "  no server or disk of dst is left"
expect_eq "$(rows src)" "a,b,c" "  src is untouched"
bad=$(invariant_violations)
[ -z "$bad" ] && ok "no fork: invariants hold" || fail "no fork:$bad"
finish
