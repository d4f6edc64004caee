#!/usr/bin/env bash
# `miren deploy` racing `miren app destroy` of the same app (issue 8,
# finding 2): rounds a random 0-0.5 s apart.  After each round, whichever
# order the daemon took, the outcome is whole: the app exists with its
# addon active and DATABASE_URL set, or nothing of it is left (no addon
# row, server, disk or process); a deploy never adopts a dying addon; the
# state store and the processes agree (`miren debug invariants`), also
# after a daemon restart.
. "$(dirname "$0")/lib.sh"
start_server || exit 1
app=$(copy_example python-visits)
db="$DATA/miren.db"

in_motion() { state_q '[.addons[] | select(.status == "pending" or .status == "provisioning" or .status == "deprovisioning")] | length'; }
orphans() { state_q '[.apps[].name] as $apps | .addons[] | select(.app as $a | $apps | index($a) | not) | "\(.id) (\(.app), \(.status))"'; }
addon_count() { state_q "[.addons[] | select(${1:-true})] | length"; }

# The app's outcome once the daemon is idle: "present" (addon active with
# its env) or "absent" (nothing left); anything else is printed as is.
outcome() {
  if miren app status -a python-visits >/dev/null 2>&1; then
    local st
    st=$(state_q '.addons[] | select(.app == "python-visits") | .status')
    if [ "$st" = active ] && miren env get -a python-visits DATABASE_URL >/dev/null 2>&1; then
      echo present
    else
      echo "app without its addon (status '$st')"
    fi
  else
    left=$(state_q '(.addons | length) + (.servers | length) + (.disks | length)')
    if [ "$left" = 0 ]; then echo absent; else echo "app gone, $left addon/server/disk rows left"; fi
  fi
}

rounds=${RACE_ROUNDS:-8}
for round in $(seq 1 "$rounds"); do
  delay=$(printf '0.%03d' $((RANDOM % 500)))
  # Either command may go first; the other follows after the delay.
  if [ $((RANDOM % 2)) = 0 ]; then first=deploy; else first=destroy; fi
  drc=0 derc=0
  if [ $first = deploy ]; then
    miren deploy -C "$app" >"$TMP/deploy.out" 2>&1 &
    dpid=$!
    sleep "$delay"
    miren app destroy python-visits -f >"$TMP/destroy.out" 2>&1 || drc=$?
    wait "$dpid" || derc=$?
  else
    miren app destroy python-visits -f >"$TMP/destroy.out" 2>&1 &
    dpid=$!
    sleep "$delay"
    miren deploy -C "$app" >"$TMP/deploy.out" 2>&1 || derc=$?
    wait "$dpid" || drc=$?
  fi
  delay="$first first, $delay"
  # Each command took effect or said it did not.
  if [ "$drc" != 0 ]; then
    expect_match "$(cat "$TMP/destroy.out")" "^error: " "round $round (delay $delay): a destroy that failed says why"
  fi
  if [ "$derc" != 0 ]; then
    expect_match "$(cat "$TMP/deploy.out")" "error: " "round $round: a deploy that failed says why"
  fi
  wait_for "round $round: the daemon settles" 90 state_is '[.addons[] | select(.status == "pending" or .status == "provisioning" or .status == "deprovisioning")] | length' 0
  expect_eq "$(orphans)" "" "round $round: no addon row outlives its app"
  got=$(outcome)
  case "$got" in
    present|absent) ok "round $round ($delay; deploy $derc: $(tail -n 1 "$TMP/deploy.out"); destroy $drc): the app is $got, whole" ;;
    *) fail "round $round (delay $delay, deploy $derc, destroy $drc): $got" ;;
  esac
  if [ "$got" = present ]; then
    expect_no_match "$(miren logs -a python-visits 2>&1)" "DATABASE_URL is missing" "round $round: no service started without its addon"
  fi
  expect_eq "$(invariant_violations)" "" "round $round: invariants hold"
done

# A daemon restart changes nothing and meets nothing it cannot resolve.
stop_server
start_server || exit 1
sleep 1
expect_eq "$(orphans)" "" "after a restart: no addon row outlives its app"
expect_eq "$(invariant_violations)" "" "after a restart: invariants hold"
expect_no_match "$(cat "$DATA/logs/server.log")" "FOREIGN KEY" "the log has no foreign key failure"

# A store from before compare-and-set may hold an addon of a deleted app
# still "provisioning": the daemon removes it at start.
stop_server
sqlite3 "$db" "INSERT INTO addons (id, app, addon, variant, version, status, step, state_json, created_at) VALUES ('old1', 'gone', 'miren-postgresql', 'small', '15', 'provisioning', 1, '{}', 0)"
start_server || exit 1
wait_for "an addon of a deleted app is removed at start" 30 state_is '[.addons[] | select(.app == "gone")] | length' 0
expect_eq "$(invariant_violations)" "" "invariants hold after it"

# Sequentially: a destroy returns once everything of the app is gone, and a
# deploy right after it makes a new addon instead of adopting the old one.
miren deploy -C "$app" >/dev/null 2>&1
expect_eq "$(outcome)" present "deploy: the app runs with its addon"
expect_match "$(miren app destroy python-visits -f 2>&1)" "^Destroyed python-visits" "app destroy says it destroyed the app"
expect_eq "$(outcome)" absent "when app destroy returns, nothing of the app is left"
expect_eq "$(invariant_violations)" "" "invariants hold after app destroy"
miren deploy -C "$app" >/dev/null 2>&1
old_id=$(state_q '.addons[] | select(.app == "python-visits") | .id')
# Destroy in the background; a deploy while its addon is being removed
# must not adopt the dying addon: it waits for it and makes a new one.
miren app destroy python-visits -f >"$TMP/destroy.out" 2>&1 &
bpid=$!
for _ in $(seq 1 1000); do
  state_is ".addons[] | select(.id == \"$old_id\") | .status" deprovisioning && break
  sleep 0.01
done
out=$(miren deploy -C "$app" 2>&1)
wait "$bpid"
expect_match "$(cat "$TMP/destroy.out")" "^Destroyed python-visits" "the destroy went first and says so"
new_id=$(state_q '.addons[] | select(.app == "python-visits") | .id')
if [ -n "$new_id" ] && [ "$new_id" != "$old_id" ]; then ok "the deploy made a new addon instance"; else fail "the deploy made no new addon instance (old $old_id, now '$new_id')"; fi
expect_match "$out" "Addon miren-postgresql ready" "a deploy during app destroy ends with the addon ready"
expect_eq "$(outcome)" present "and the app has its addon and DATABASE_URL"
expect_no_match "$(miren addon list -a python-visits)" "has no addons" "addon list shows the addon"
wait_for "the app answers" 20 sh -c "curl -fsS '$(service_url python-visits web)' | grep -q Visits"
expect_no_match "$(miren logs -a python-visits 2>&1)" "DATABASE_URL is missing" "no service started without DATABASE_URL"
expect_eq "$(invariant_violations)" "" "invariants hold"

# A daemon killed between marking the addons and deleting the app: the
# removal goes on after the restart, the app is left without addons (the
# destroy said it failed), and destroying it again ends the job.
stop_server
MIREN_FAULT=app-destroy:marked start_server || exit 1
expect_eq "$(outcome)" present "before the crash: the app runs with its addon"
expect_exit "a destroy cut short by a crash fails" 5 miren app destroy python-visits -f
wait_for "the daemon died at the fault point" 20 sh -c "! kill -0 $SERVER_PID"
kill -KILL "$SERVER_PID" 2>/dev/null
wait "$SERVER_PID" 2>/dev/null; SERVER_PID=""
start_server || exit 1
wait_for "the addon's removal finishes after the restart" 60 state_is '.addons | length' 0
expect_eq "$(invariant_violations)" "" "invariants hold after the crash"
expect_match "$(miren app destroy python-visits -f 2>&1)" "^Destroyed python-visits" "destroying the app again succeeds"
expect_eq "$(outcome)" absent "and nothing of it is left"
finish
