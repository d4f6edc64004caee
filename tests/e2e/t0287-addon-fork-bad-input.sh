#!/usr/bin/env bash
# miren addon fork refuses, with a clear error and changing nothing: an
# app or addon that does not exist, a target that does not exist, the
# same app, a target that has the addon already, a variant or time that
# is no such thing, a time outside the point-in-time window, no --to.
# Afterwards no addon, server, disk or database was made, the source's
# data is as it was, and the invariants hold.
# The CLI's own paths: the CLI of the daemon's build (sanitized in CI; lib.sh).
MIREN_CLI_BIN=${MIREN_BIN:-}
. "$(dirname "$0")/lib.sh"
export MIREN_ADDON_TICK_MS=500 MIREN_PITR_BASE_MINUTES=60
PG=miren-postgresql
what() { miren debug state --format json | jq -c '[(.addons | length), (.servers | length), (.disks | length)]'; }
dbs() { psql_as has -c "SELECT string_agg(datname, ',' ORDER BY datname) FROM pg_database"; }

start_server || exit 1
deploy_addon_app src small
deploy_addon_app has shared
deploy_plain_app dst
psql_as src -q -c "CREATE TABLE t (v text); INSERT INTO t VALUES ('kept')"
wait_for "src's server has a base backup" 60 sh -c "grep -q '\"kind\":\"pitr-base\"' '$DATA'/backups/manifests/*.json"
before=$(what)
dbs_before=$(dbs)

expect_exit "an app that does not exist" 3 miren addon fork $PG -a nope --to dst
expect_match "$(cat "$TMP/err")" "error: app 'nope' not found" "  says which"
expect_exit "an app without the addon" 3 miren addon fork $PG -a dst --to src
expect_match "$(cat "$TMP/err")" "error: app 'dst' has no addon '$PG'" "  says so"
expect_exit "an addon that does not exist" 3 miren addon fork miren-nothing -a src --to dst
expect_exit "a target that does not exist" 3 miren addon fork $PG -a src --to nowhere
expect_match "$(cat "$TMP/err")" "error: app 'nowhere' not found" "  says which"
expect_match "$(cat "$TMP/err")" "hint: a fork goes to an app that exists: deploy 'nowhere' first" "  and that it must exist"
expect_exit "the same app" 6 miren addon fork $PG -a src --to src
expect_match "$(cat "$TMP/err")" "error: app 'src' cannot be forked into itself; nothing was changed" "  says so"
expect_match "$(cat "$TMP/err")" "hint: .*miren addon restore $PG -a src --to TIME" "  and how to go back in time in place"
expect_exit "a target that has the addon" 4 miren addon fork $PG -a src --to has
expect_match "$(cat "$TMP/err")" "error: app 'has' already has addon $PG \(shared, active\)" "  says so"
expect_match "$(cat "$TMP/err")" "hint: a fork makes the addon: destroy the one it has first with 'miren addon destroy $PG -a has'" "  and what to do"
expect_exit "a variant that does not exist" 6 miren addon fork $PG -a src --to dst --variant huge
expect_match "$(cat "$TMP/err")" "huge" "  names it"
expect_exit "a time that is no time" 6 miren addon fork $PG -a src --to dst --at yesterday
expect_match "$(cat "$TMP/err")" "'yesterday' is not a point in time" "  says so"
expect_exit "a time before the window" 6 miren addon fork $PG -a src --to dst --at 10d-ago
expect_match "$(cat "$TMP/err")" "is outside the point-in-time window of addon $PG of app 'src'" "  names the window"
expect_exit "a time after now" 6 miren addon fork $PG -a src --to dst --at "2099-01-01 00:00:00+00"
expect_exit "no --to" 2 miren addon fork $PG -a src
expect_match "$(cat "$TMP/err")" "give --to OTHER" "  says what is missing"
out=$(miren addon fork $PG -a src --to src --format json 2>&1 >/dev/null)
expect_eq "$(echo "$out" | jq -r '.error.code')" "invalid" "--format json: the error as JSON"

expect_eq "$(miren addon list -a dst --format json | jq length)" "0" "dst has no addon"
expect_eq "$(what)" "$before" "no addon, server or disk was made"
expect_eq "$(dbs)" "$dbs_before" "no database was made on the shared server"
expect_eq "$(psql_as src -c 'SELECT v FROM t')" "kept" "src's data is as it was"
expect_eq "$(invariant_violations)" "" "the invariants hold"
finish
