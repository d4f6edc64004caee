#!/usr/bin/env bash
# Status tells the truth: an active addon whose database server is down
# shows so in `miren addon list` and `miren app status` (restarting, then
# error while it keeps crashing), and active again once the server runs.
# The server is made unable to start (its cluster's PG_VERSION moved
# aside) and killed, so the down state lasts until the test ends it.
. "$(dirname "$0")/lib.sh"

addon_status() { miren addon list -a db --format json | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["status"])'; }
not_active() { [ "$(addon_status)" != active ]; }
is_active() { [ "$(addon_status)" = active ]; }

start_server || exit 1
deploy_addon_app db small
wait_for "the addon is active" 60 is_active
disk=$(disk_of_app db)
pgdata="$DATA/disks/$disk/pgdata"
pm=$(postmaster_pid "$disk")
[ -n "$pm" ] || fail "the postmaster's pid is known"

mv "$pgdata/PG_VERSION" "$TMP/PG_VERSION"
kill -KILL "$pm"
wait_for "a killed server that cannot start is not shown active" 20 not_active
st=$(addon_status)
case "$st" in restarting|error) ok "addon list says '$st'" ;; *) fail "addon list says '$st'" ;; esac
expect_match "$(miren addon list -a db)" "its database server (exited and is being restarted|is starting again|keeps crashing)" \
  "addon list says why"
expect_no_match "$(miren app status -a db)" "miren-postgresql \(small\): active" "app status does not say active"
wait_for "a server that keeps failing shows as error" 60 sh -c "'$MIREN_BIN' addon list -a db | grep -q ' error .*keeps crashing'"
expect_match "$(miren app status -a db)" "miren-postgresql \(small\): error" "app status says error"

mv "$TMP/PG_VERSION" "$pgdata/PG_VERSION"
wait_for "the server comes back and the addon shows active" 60 is_active
wait_for "its database answers" 30 psql_as db -c 'SELECT 1'
expect_match "$(miren app status -a db)" "miren-postgresql \(small\): active" "app status says active"
expect_eq "$(invariant_violations)" "" "the invariants hold"
finish
