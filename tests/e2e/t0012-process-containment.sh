#!/usr/bin/env bash
# No process outlives its service: what a service starts in a new session
# (`setsid -f`, Python's start_new_session) or by double-forking is killed
# by `miren app restart`, by a daemon crash (kill -9, then a new daemon) and
# by `miren app destroy`; a leader that daemonizes and exits 0 shows as
# detached and is not restarted into a pile.  Run twice: with cgroup v2 and
# with the /proc fallback (MIREN_NO_CGROUPS=1).
. "$(dirname "$0")/lib.sh"
# Distinct sleeps per service and run, unlikely to be anyone else's.
S1=$((9100000 + $$ * 3))
S2=$((S1 + 1))
S3=$((S1 + 2))
count() { pgrep -fx "sleep $1" | while read -r p; do alive "$p" && echo "$p"; done | wc -l; }
counts() { echo "$(count "$S1") $(count "$S2") $(count "$S3")"; }
CLEANUP_HOOKS='pkill -KILL -fx "sleep ($S1|$S2|$S3)" 2>/dev/null;'

mkdir -p "$TMP/c/.miren"
cat > "$TMP/c/.miren/app.toml" <<TOML
name = "c"
[services.esc]
command = "setsid -f sleep $S1; exec sleep 1000"
[services.py]
command = "exec python3 -c 'import subprocess,time; subprocess.Popen([\"sleep\", \"$S2\"], start_new_session=True); time.sleep(1000)'"
[services.dmn]
command = "( setsid sh -c 'exec sleep $S3' & ); exit 0"
TOML

for mode in cgroup fallback; do
  if [ $mode = fallback ]; then export MIREN_NO_CGROUPS=1; else unset MIREN_NO_CGROUPS; fi
  start_server || exit 1
  out=$(miren deploy -C "$TMP/c" 2>&1) || fail "$mode: deploy: $out"
  wait_for "$mode: one copy of each escapee runs" 10 test "$(counts)" = "1 1 1"
  wait_for "$mode: the daemonizing leader shows as detached" 10 \
    sh -c "'$MIREN_BIN' app status -a c --format json | grep -q '\"detached_processes\": *1'"
  expect_match "$(miren app status -a c)" "dmn.*detached" "$mode: app status says detached"
  p1=$(pgrep -fx "sleep $S1")
  if [ "$mode" = cgroup ]; then
    expect_match "$(cat "/proc/$p1/cgroup")" "0::/miren/[0-9a-f]{16}/app_c_esc$" "cgroup: the escapee is in its service's cgroup"
  else
    expect_no_match "$(cat "/proc/$p1/cgroup")" "/miren/" "fallback: no cgroup is used"
  fi
  sleep 2
  expect_eq "$(counts)" "1 1 1" "$mode: no pile-up while the services run"

  for i in 1 2 3; do
    miren app restart -a c >/dev/null 2>&1 || fail "$mode: restart $i"
    wait_for "$mode: restart $i leaves one copy of each" 10 test "$(counts)" = "1 1 1"
  done
  expect_eq "$(state_of "$p1")" "gone" "$mode: the first escapee is gone after the restarts"

  p1=$(pgrep -fx "sleep $S1")
  kill_server
  expect_eq "$(counts | cut -d' ' -f1)" "1" "$mode: a daemon crash leaves the escapee running"
  start_server || exit 1
  expect_eq "$(state_of "$p1")" "gone" "$mode: the next daemon kills it"
  wait_for "$mode: and runs one copy of each again" 10 test "$(counts)" = "1 1 1"

  miren app destroy c -f >/dev/null 2>&1 || fail "$mode: destroy"
  wait_for "$mode: destroy leaves no process" 10 test "$(counts)" = "0 0 0"
  stop_server
  if [ $mode = cgroup ]; then
    hex=$(printf %s "$DATA/run" | sha256sum | cut -c1-16)
    cg=$(cgroup2_mount)
    expect_eq "$(ls -d "$cg/miren/$hex"/*/ 2>/dev/null | wc -l)" "0" "cgroup: no service cgroup is left"
  fi
done
finish
