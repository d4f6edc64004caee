#!/usr/bin/env bash
# The fault walk inside steps (lib/util/fault.h): the daemon is killed in
# the middle of making the template (initdb running, its postgres children
# left working), of a clone (half copied), of a server start (postmaster
# still starting), of a password rotation, of tenant creation (role made,
# CREATE DATABASE still running in its backend), and the restarted daemon
# is killed again while it recovers.  A third daemon must converge: the
# addon active, its database answering, the invariants holding, no
# leftover under templates/.  Last, SIGTERM during the first template's
# initdb stops the daemon promptly, and the next one converges.
. "$(dirname "$0")/lib.sh"

PG=miren-postgresql
# The points inside steps come from the code (MIREN_FAULT=list); each one
# must be walked below, by a round written for it or by the generic one.
INSIDE=$(MIREN_FAULT=list "$MIREN_BIN" | awk '$1 == "inside" { print $2 }')
expect_match "$INSIDE" "^$PG:tenant:database$" "MIREN_FAULT=list names the points inside steps"
WALKED=""

mkapp() {
  mkdir -p "$TMP/$1/.miren"
  printf 'name = "%s"\n[services.web]\ncommand = "exec sleep 100000"\n' "$1" > "$TMP/$1/.miren/app.toml"
  miren deploy -C "$TMP/$1" >/dev/null 2>&1
}
settled() {
  "$MIREN_BIN" addon list -a fa --format json 2>/dev/null |
    python3 -c 'import json,sys; l=json.load(sys.stdin); sys.exit(0 if l and l[0]["status"] in ("active","error") else 1)'
}

start_server || exit 1
mkapp fa
miren addon create miren-postgresql:shared -a keep >/dev/null 2>&1 || { mkapp keep; miren addon create miren-postgresql:shared -a keep >/dev/null 2>&1; }
psql_as keep -q -c "CREATE TABLE kept (i int); INSERT INTO kept VALUES (1), (2), (3)"
stop_server

# round VARIANT FIRST_FAULT RECOVERY_FAULT [fresh]: crash at FIRST_FAULT
# during `addon create`, crash the restarted daemon at RECOVERY_FAULT (if
# given), then converge with a clean daemon.  fresh: remove the template
# first, so that it is made again; the spare disks then hold clones of the
# old one (or none is ready), so the clone copies the new template.
round() {
  local variant=$1 first=$2 again=$3 fresh=${4:-}
  local name="$variant $first${again:+ then $again}"
  WALKED="$WALKED ${first%@*} ${again%@*}"
  [ "$fresh" = fresh ] && rm -rf "$DATA/templates"
  start_faulty "$first" || { fail "$name: the daemon did not start"; return; }
  miren addon create "miren-postgresql:$variant" -a fa --no-wait >/dev/null 2>&1
  wait_crash || { fail "$name: the daemon did not crash at $first"; stop_server; start_server; }
  if [ -n "$again" ] && [ -z "$SERVER_PID" ]; then
    start_faulty "$again" || { fail "$name: the daemon did not restart"; return; }
    wait_crash || { fail "$name: the restarted daemon did not crash at $again"; stop_server; }
  fi
  [ -n "$SERVER_PID" ] || start_server || exit 1
  wait_for "$name: the addon settles" 120 settled
  expect_match "$(miren addon list -a fa)" " active" "$name: and is active"
  wait_for "$name: its database answers" 20 psql_as fa -c "SELECT 1"
  local bad
  bad=$(invariant_violations)
  [ "$(psql_as keep -c 'SELECT count(*) FROM kept' 2>/dev/null)" = "3" ] || bad="$bad; keep lost data"
  left=$(ls -A "$DATA/templates" 2>/dev/null | grep -v -e '^pg[0-9]*$' -e '\.lock$')
  [ -z "$left" ] || bad="$bad; leftovers in templates/: $left"
  if [ -z "$bad" ]; then ok "$name: invariants hold"; else fail "$name:$bad"; fi
  miren addon destroy miren-postgresql -a fa -f >/dev/null 2>&1
  stop_server
  return 0
}

round small $PG:template:initdb@300 $PG:template:initdb@150 fresh
round small $PG:template:made $PG:clone:copying@20 fresh
round small $PG:clone:copied $PG:server:started@0 fresh
round small $PG:server:rotated $PG:tenant:database
round small $PG:tenant:database $PG:tenant:database
round shared $PG:tenant:role $PG:tenant:database

# The preparer killed while it copies a clone of the template into a spare
# disk (it runs at start and after each pass): the next daemon removes the
# half-prepared disk (unmounted, its image and loop device gone) and makes
# the spares again, and a small addon takes one.
remove_filled_spares
WALKED="$WALKED $PG:spare:copying"
start_faulty "$PG:spare:copying@5" || fail "spare:copying: the daemon did not start"
wait_crash || { fail "spare:copying: the daemon did not crash"; stop_server; }
start_server || exit 1
# (One a variant's size: small and shared.)
pg_spares_ready() {
  [ "$(filled_spares | grep -cE '^(\.spare-)?pg[0-9]+-')" -ge 2 ] &&
    ! ls -A "$DATA/volumes" "$DATA/spares" 2>/dev/null | grep -q prep
}
wait_for "spare:copying: the next daemon makes the spare disks" 60 pg_spares_ready
expect_eq "$(ls -A "$DATA/templates" 2>/dev/null | grep -v -e '^pg[0-9]*$' -e '\.lock$')" "" "spare:copying: nothing is left in templates/"
expect_eq "$(findmnt -rno TARGET | grep -cF "$DATA/spares/")" "0" "spare:copying: no spare being prepared stays mounted"
expect_eq "$(invariant_violations)" "" "spare:copying: the invariants hold"
miren addon create miren-postgresql:small -a fa >/dev/null 2>&1
expect_match "$(grep 'taken from the filled spare pg' "$DATA/logs/server.log" | tail -n 1)" "pg-pg-fa-" "spare:copying: the next small addon's disk is a filled spare"
wait_for "spare:copying: its database answers" 20 psql_as fa -c "SELECT 1"
miren addon destroy miren-postgresql -a fa -f >/dev/null 2>&1
stop_server

# The points of the other engines: crash there during a create of each
# variant (the first whose create reaches it), restart, converge.  A spare
# point is reached when the preparer makes a spare after the create: the
# spares (templates/*.spare) are removed first.
generic_round() {
  local p=$1 addon=${1%%:*} variant reached=""
  for variant in $(MIREN_FAULT=list "$MIREN_BIN" | awk -v a="activate:$addon:" \
      '$1 == "step" && index($2, a) == 1 { print substr($2, length(a) + 1) }'); do
    case "$p" in *:spare:*) rm -rf "$DATA"/templates/*.spare ;; esac
    start_faulty "$p" || { fail "$p: the daemon did not start"; return; }
    miren addon create "$addon:$variant" -a fa --no-wait >/dev/null 2>&1
    if wait_crash; then reached=$variant; else stop_server; fi
    [ -n "$SERVER_PID" ] || start_server || exit 1
    # A spare point may be reached by the preparer at start, before the
    # create arrived: ask again (a create that arrived is kept as it is).
    miren addon create "$addon:$variant" -a fa --no-wait >/dev/null 2>&1
    wait_for "$p ($variant): the addon settles" 120 settled
    expect_match "$(miren addon list -a fa)" " active" "$p ($variant): and is active"
    expect_eq "$(invariant_violations)" "" "$p ($variant): the invariants hold"
    miren addon destroy "$addon" -a fa -f >/dev/null 2>&1
    stop_server
    [ -n "$reached" ] && break
  done
  if [ -n "$reached" ]; then ok "$p: reached and recovered"; else fail "$p: no create reached it"; fi
}
for p in $INSIDE; do
  case " $WALKED " in *" $p "*) continue ;; esac
  case "$p" in "$PG:"*) continue ;; esac
  WALKED="$WALKED $p"
  generic_round "$p"
done

# A backend of the dead daemon still running its CREATE DATABASE when the
# next daemon runs the tenant step: a session of the test holds a lock that
# CREATE DATABASE waits for, so both statements would run at once when it
# ends (one of them failing with a duplicate key).  The next daemon must end
# the leftover session first, and converge.
start_faulty provision:$PG:small:server:saved || exit 1
miren addon create miren-postgresql:small -a fa --no-wait >/dev/null 2>&1
wait_crash || fail "leftover backend: the daemon did not crash after the server step"
srv=$(sqlite3 "$DATA/miren.db" "SELECT server FROM addons WHERE app='fa'")
disk=$(sqlite3 "$DATA/miren.db" "SELECT disk FROM servers WHERE id='$srv'")
su=$(sqlite3 "$DATA/miren.db" "SELECT json_extract(state_json,'\$.su_password') FROM servers WHERE id='$srv'")
sock=$(socket_dir_of "$disk")
# The server outlives the daemon; no daemon runs while the lock is taken.
wait_for "leftover backend: the server answers" 30 sh -c "PGPASSWORD='$su' psql -X -qtA -h '$sock' -U postgres -d postgres -c 'SELECT 1'"
PGPASSWORD="$su" psql -X -qtA -h "$sock" -U postgres -d postgres -c \
  "BEGIN; LOCK TABLE pg_database IN SHARE ROW EXCLUSIVE MODE; SELECT pg_sleep(15); COMMIT" >/dev/null 2>&1 &
locker=$!
sleep 0.5
start_faulty $PG:tenant:database || exit 1
wait_crash || fail "leftover backend: the daemon did not crash at tenant:database"
left=$(PGPASSWORD="$su" psql -X -qtA -h "$sock" -U postgres -d postgres -c "SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'CREATE DATABASE%'")
expect_eq "$left" "1" "leftover backend: the dead daemon's CREATE DATABASE still runs"
start_server || exit 1
wait "$locker" 2>/dev/null
wait_for "leftover backend: the addon settles" 120 settled
expect_match "$(miren addon list -a fa)" " active" "leftover backend: and is active"
wait_for "leftover backend: its database answers" 20 psql_as fa -c "SELECT 1"
expect_eq "$(invariant_violations)" "" "leftover backend: the invariants hold"
miren addon destroy miren-postgresql -a fa -f >/dev/null 2>&1
stop_server

# SIGTERM while the first template's initdb runs: a prompt stop, and the
# next daemon finishes the work.
rm -rf "$DATA/templates"
start_server || exit 1
miren addon create miren-postgresql:small -a fa --no-wait >/dev/null 2>&1
for _ in $(seq 100); do pgrep -f "initdb -D $DATA/templates" >/dev/null && break; sleep 0.05; done
stop_server_timed; ms=$STOP_MS
if [ "$ms" -lt 3000 ]; then ok "SIGTERM during initdb stops the daemon in $ms ms"; else
  fail "SIGTERM during initdb: the daemon took $ms ms to stop"; fi
start_server || exit 1
wait_for "after it, the addon converges" 120 sh -c "'$MIREN_BIN' addon list -a fa | grep -q ' active'"
expect_eq "$(invariant_violations)" "" "and the invariants hold"
# (The points of point-in-time recovery, $PG:pitr:*, are t0251's.)
for p in $INSIDE; do
  case "$p" in "$PG:pitr:"*) continue ;; esac
  case " $WALKED " in *" $p "*) ;; *) fail "fault point $p is declared but not walked" ;; esac
done
finish
