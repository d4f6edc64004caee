#!/usr/bin/env bash
# The daemon stops services on SIGTERM, brings them back on start, and after
# a kill -9 restarts them without leaving the old processes behind.
. "$(dirname "$0")/lib.sh"
# Processes of a group that still run (zombies waiting for init do not count).
live_in_group() { ps -eo pgid=,stat= | awk -v g="$1" '$1==g && $2 !~ /^Z/' | wc -l; }
start_server || exit 1
app=$(copy_example hello)
mkdir -p "$TMP/w/.miren"
printf 'name = "w"\n[services.bg]\ncommand = "sh -c \\"sleep 1000 & sleep 1000\\""\n' > "$TMP/w/.miren/app.toml"
miren deploy -C "$app" >/dev/null 2>&1
miren deploy -C "$TMP/w" >/dev/null 2>&1
wait_for "hello answers" 10 curl -fsS "$(service_url hello web)"
pid=$(service_field hello web pid)
wpid=$(service_field w bg pid)
wait_for "the worker's children exist" 5 pgrep -g "$wpid" sleep

stop_server
expect_eq "$(state_of "$pid")" "gone" "SIGTERM stops the services"
expect_eq "$(live_in_group "$wpid")" "0" "and every process of their groups"

start_server || exit 1
expect_match "$(miren app list)" "hello +1 +1/1 running" "apps survive a daemon restart"
wait_for "hello answers again" 10 curl -fsS "$(service_url hello web)"
pid2=$(service_field hello web pid)
[ "$pid2" != "$pid" ] && ok "a new process serves" || fail "same pid after restart"

wpid2=$(service_field w bg pid)
kill_server
start_server || exit 1
expect_eq "$(state_of "$pid2")" "gone" "after kill -9 and restart the old service is gone"
expect_eq "$(live_in_group "$wpid2")" "0" "and so are the grandchildren it left behind"
wait_for "and starts a fresh one" 10 curl -fsS "$(service_url hello web)"
n=$(pgrep -x python3 | while read -r p; do
  [ "$(readlink "/proc/$p/cwd" 2>/dev/null | grep -c "$DATA")" = 1 ] && echo "$p"; done | wc -l)
expect_eq "$n" "1" "exactly one hello process runs"
finish
