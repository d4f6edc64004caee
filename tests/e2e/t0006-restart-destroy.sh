#!/usr/bin/env bash
# app restart replaces the processes; app destroy asks, then removes everything.
. "$(dirname "$0")/lib.sh"
start_server || exit 1
app=$(copy_example hello)
miren deploy -C "$app" >/dev/null 2>&1
wait_for "hello answers" 10 curl -fsS "$(service_url hello web)"
pid=$(service_field hello web pid)
url=$(service_url hello web)
expect_match "$(miren app restart hello)" "Restarted hello" "app restart confirms"
pid2=$(service_field hello web pid)
[ "$pid2" != "$pid" ] && ok "a new process runs after restart" || fail "pid unchanged"
expect_eq "$(state_of "$pid")" "gone" "the old process is gone"
expect_eq "$(service_url hello web)" "$url" "the URL stays the same"
wait_for "it answers again" 10 curl -fsS "$url"
expect_exit "app restart -a works too" 0 miren app restart -a hello

expect_exit "destroy without -f and no terminal refuses" 1 miren app destroy hello </dev/null
expect_match "$(cat "$TMP/err")" "hint: pass -f" "and says how to force it"
expect_match "$(miren app list)" "hello" "the app is still there"
expect_match "$(miren app destroy hello -f)" "Destroyed hello" "destroy -f removes it"
expect_eq "$(state_of "$pid2")" "gone" "its process is stopped"
expect_eq "$(test -d "$DATA/apps/hello" && echo yes || echo no)" "no" "its directory is removed"
expect_exit "its status is gone" 3 miren app status -a hello
expect_exit "its env is gone" 3 miren env list -a hello
out=$(miren deploy -C "$app" 2>&1)
expect_match "$out" "Release 1 of hello is live" "a redeploy starts again at release 1"
finish
