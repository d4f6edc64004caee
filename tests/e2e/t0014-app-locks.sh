#!/usr/bin/env bash
# Each app has its own lock: while one app's deploy is stopping a service
# that ignores SIGTERM (10 s until SIGKILL), every request about another
# app, and the lists, are answered.
. "$(dirname "$0")/lib.sh"
start_server || exit 1
mkdir -p "$TMP/stubborn/.miren" "$TMP/other/.miren"
cat > "$TMP/stubborn/.miren/app.toml" <<'TOML'
name = "stubborn"
[services.web]
command = "trap '' TERM; while :; do sleep 0.1; done"
TOML
cat > "$TMP/other/.miren/app.toml" <<'TOML'
name = "other"
[services.web]
command = "echo up; exec sleep 1000"
TOML
miren deploy -C "$TMP/stubborn" >/dev/null 2>&1 || fail "deploy stubborn"
miren deploy -C "$TMP/other" >/dev/null 2>&1 || fail "deploy other"

# A new release of stubborn: its deploy stops the old service, which only
# SIGKILL ends, 10 s after the SIGTERM.
echo changed > "$TMP/stubborn/file"
miren deploy -C "$TMP/stubborn" >"$TMP/deploy.out" 2>&1 &
bg=$!
wait_for "the deploy is stopping the old service" 20 grep -q "app stubborn: release 2 recorded" "$DATA/logs/server.log"
alive "$bg" && ok "stubborn's deploy is still running" || fail "stubborn's deploy ended early"
st=$(miren app status -a other --format json)
env=$(miren env list -a other --format json)
logs=$(miren logs -a other -s web)
list=$(miren app list --format json)
stub=$(miren app status -a stubborn --format json)
if alive "$bg"; then ok "the requests were answered while stubborn's deploy was still stopping its service"
else fail "the requests were answered only after stubborn's deploy ended"; fi
expect_eq "$(printf '%s' "$st" | jq -r '.services[0].state')" running "app status of another app answers"
expect_eq "$(printf '%s' "$env" | jq -r 'type')" array "env list of another app answers"
expect_match "$logs" "up" "logs of another app answer"
expect_eq "$(printf '%s' "$list" | jq -r 'length')" 2 "app list answers"
expect_eq "$(printf '%s' "$stub" | jq -r '.name')" stubborn "app status of the app being deployed answers"
wait "$bg"
expect_eq "$?" 0 "stubborn's deploy succeeds once the old service is killed"
expect_match "$(cat "$TMP/deploy.out")" "Release 2 of stubborn is live" "and says so"
finish
