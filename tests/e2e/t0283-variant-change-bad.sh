#!/usr/bin/env bash
# miren addon change, bad input and failures: each gets a clear error
# (what went wrong, what to do) and changes nothing: no ADDON:VARIANT, an
# app or addon that does not exist, an unknown variant, the variant it has
# already, an addon that is not active, an engine that cannot change, and
# a change whose new server finds no address (it fails in the middle: the
# new instance is undone, the app keeps its data, env and server).
. "$(dirname "$0")/lib.sh"
POOL="127.$NET.$(( 10#$num % 250 + 1 )).0/30"   # two usable addresses
start_server || exit 1
PG=miren-postgresql
deploy_addon_app a small
psql_as a -q -c "CREATE TABLE kept (i int); INSERT INTO kept VALUES (1), (2), (3)"
app_env() { miren env list -a a --format json; miren env get -a a DATABASE_URL --unmask; }
env_before=$(app_env)

expect_exit "no variant is a usage error" 2 miren addon change $PG -a a
expect_match "$(cat "$TMP/err")" "ADDON:VARIANT" "  saying what to give"
expect_exit "no operand is a usage error" 2 miren addon change -a a
expect_exit "an app that does not exist: not found" 3 miren addon change $PG:shared -a nope
expect_match "$(cat "$TMP/err")" "app 'nope' not found" "  naming the app"
expect_exit "an addon the app does not have: not found" 3 miren addon change miren-mysql:shared -a a
expect_match "$(cat "$TMP/err")" "app 'a' has no addon 'miren-mysql'" "  naming the addon"
expect_match "$(cat "$TMP/err")" "miren addon list -a a" "  with a hint"
expect_exit "an unknown variant is invalid" 6 miren addon change $PG:huge -a a
expect_match "$(cat "$TMP/err")" "has no variant 'huge' \(variants: small, shared\)" "  listing the variants"
expect_exit "the variant it has is a conflict" 4 miren addon change $PG:small -a a
expect_match "$(cat "$TMP/err")" "is 'small' already" "  saying so"
out=$(miren addon change $PG:small -a a --format json 2>&1)
expect_eq "$(echo "$out" | jq -r '.error.code')" "conflict" "--format json errors have the API's shape"

# An engine without a way to pause its writes cannot change (Redis).
mkdir -p "$TMP/r/.miren"
printf 'name = "r"\n[services.web]\ncommand = "exec sleep 100000"\n' > "$TMP/r/.miren/app.toml"
miren deploy -C "$TMP/r" >/dev/null 2>&1
miren addon create miren-redis:small -a r >/dev/null 2>&1
expect_exit "an engine that cannot change variants: invalid" 6 miren addon change miren-redis:shared -a r
expect_match "$(cat "$TMP/err")" "changing the variant in place is not supported by addon 'miren-redis'" "  saying so"
expect_match "$(cat "$TMP/err")" "^hint: move the data by hand: 'miren addon backup miren-redis -a r', 'miren addon destroy miren-redis -a r', deploy with the new variant in app.toml \(it recreates the addon\), then 'miren addon restore miren-redis -a r --backup ID'" "  with the way by hand"
miren addon destroy miren-redis -a r -f --no-final-backup >/dev/null 2>&1
wait_for "the redis addon is gone" 30 sh -c "'$MIREN_BIN' addon list -a r | grep -q 'has no addons'"

# b takes the pool's second address; c's addon finds none: in error.
deploy_addon_app b small
mkdir -p "$TMP/c/.miren"
printf 'name = "c"\n[services.web]\ncommand = "exec sleep 100000"\n' > "$TMP/c/.miren/app.toml"
miren deploy -C "$TMP/c" >/dev/null 2>&1
miren addon create $PG:small -a c >/dev/null 2>&1
expect_eq "$(miren addon list -a c --format json | jq -r '.[0].status')" "error" "c's addon is in error (no address left)"
expect_exit "an addon that is not active is a conflict" 4 miren addon change $PG:shared -a c
expect_match "$(cat "$TMP/err")" "is error, so its variant cannot be changed" "  saying so"

# a's change needs a shared server, which finds no address: it fails in
# its first step, the new instance is undone, a is as it was.
disks=$(ls "$DATA/disks" | sort)
servers=$(state_q '[.servers[].id] | sort | join(",")')
expect_exit "a change whose new server finds no address fails" 4 miren addon change $PG:shared -a a
expect_match "$(cat "$TMP/err")" "cannot change addon miren-postgresql of app 'a' to shared" "  saying what failed"
expect_match "$(cat "$TMP/err")" "exhausted" "  and why"
expect_match "$(cat "$TMP/err")" "to shared: it stays small, as it was" "  and that nothing changed"
expect_eq "$(miren addon list -a a --format json | jq -r '.[0].variant + " " + .[0].status')" "small active" "a stays small and active"
expect_eq "$(app_env)" "$env_before" "a's env is unchanged"
expect_eq "$(psql_as a -c 'SELECT count(*) FROM kept')" "3" "a's data is there, its credentials work"
psql_as a -q -c "INSERT INTO kept VALUES (4)" && ok "a writes again" || fail "a cannot write"
expect_eq "$(ls "$DATA/disks" | sort)" "$disks" "no disk was left behind"
expect_eq "$(state_q '[.servers[].id] | sort | join(",")')" "$servers" "no server was left behind"
expect_eq "$(miren debug invariants --format json | jq -r '.in_motion')" "0" "nothing left in motion"
bad=$(invariant_violations)
[ -z "$bad" ] && ok "invariants hold" || fail "$bad"
finish
