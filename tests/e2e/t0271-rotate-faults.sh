#!/usr/bin/env bash
# A daemon killed at every step of a credential rotation (rotate:*, from
# MIREN_FAULT=list), then killed again at the same point while the next
# one finishes the rotation at its start, converges with the app on
# exactly one working credential set: the env has new credentials that
# work, the old ones are refused, the server lets in only the recorded
# login (the invariants check it), the data and its owner are intact.
# miren-postgresql small and shared.
. "$(dirname "$0")/lib.sh"
PG=miren-postgresql

start_server || exit 1
deploy_addon_app rfsmall small
deploy_addon_app rfshared shared
for app in rfsmall rfshared; do
  psql_as "$app" -q -c "CREATE TABLE kept (i int); INSERT INTO kept VALUES (1), (2), (3)"
done
stop_server

POINTS=$(MIREN_FAULT=list "$MIREN_BIN" | awk '$1 == "operation" && index($2, "rotate:") == 1 { print $2 }')
expect_eq "$(echo "$POINTS" | tr "\n" " " | sed "s/ $//")" "rotate:planned rotate:switched rotate:restarted rotate:revoked" "MIREN_FAULT=list names the rotation's points"

old_refused() {
  local app=$1 user=$2 pw=$3
  ! PGHOST=$(miren env get -a "$app" PGHOST) PGPORT=$(miren env get -a "$app" PGPORT) PGUSER=$user \
    PGPASSWORD=$pw PGDATABASE=$(miren env get -a "$app" PGDATABASE) PGCONNECT_TIMEOUT=5 \
    psql -X -tAc 'SELECT 1' >/dev/null 2>&1
}

for p in $POINTS; do
  for app in rfsmall rfshared; do
    start_server || exit 1
    user=$(miren env get -a "$app" PGUSER)
    pw=$(miren env get -a "$app" PGPASSWORD --unmask)
    role=$(psql_as "$app" -c "SELECT current_user")
    stop_server
    start_faulty "$p" || { fail "$p $app: server did not start"; continue; }
    miren addon rotate $PG -a "$app" >/dev/null 2>&1
    wait_crash || { fail "$p $app: the daemon did not crash there"; stop_server; continue; }
    # Killed again at the same point while finishing the rotation (the
    # points after the plan are passed again then).
    start_faulty "$p" || { fail "$p $app: server did not start again"; continue; }
    if ! kill -0 "$SERVER_PID" 2>/dev/null; then
      wait "$SERVER_PID" 2>/dev/null; SERVER_PID=""
      ok "$p $app: killed again while finishing the rotation"
      start_server || exit 1
    fi
    rot=$(miren addon list -a "$app" --format json | jq -r '.[0].rotation // "none"')
    expect_eq "$rot" "none" "$p $app: no rotation left unfinished"
    new_pw=$(miren env get -a "$app" PGPASSWORD --unmask)
    [ "$new_pw" != "$pw" ] && ok "$p $app: the env has new credentials" || fail "$p $app: the env has the old password"
    expect_eq "$(psql_as "$app" -c 'SELECT count(*) FROM kept')" "3" "$p $app: the new credentials work, the data is there"
    old_refused "$app" "$user" "$pw" && ok "$p $app: the old credentials are refused" || fail "$p $app: the old credentials still work"
    expect_eq "$(psql_as "$app" -c "SELECT current_user")" "$role" "$p $app: the login acts as the app's role"
    psql_as "$app" -q -c "ALTER TABLE kept ADD COLUMN \"${p#rotate:}\" int" 2>&1
    expect_eq "$?" "0" "$p $app: the app still alters its table"
    bad=$(invariant_violations)
    [ -z "$bad" ] && ok "$p $app: invariants hold" || fail "$p $app:$bad"
    stop_server
  done
done
finish
