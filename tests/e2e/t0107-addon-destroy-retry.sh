#!/usr/bin/env bash
# Every addon operation takes effect or says it did not (issue 8, finding 2):
# `miren addon destroy` while the addon is provisioning removes it (never
# "no progress", never active afterwards with its data); a deploy that
# re-creates a destroyed addon says so; a deploy after a failed provisioning
# retries it.
. "$(dirname "$0")/lib.sh"
# Two addresses: the third small addon cannot get one (a lasting error
# that a retry fixes once an address is free).
POOL="${POOL%/24}/30"
start_server || exit 1
db="$DATA/miren.db"

mkapp() { # mkapp NAME [ADDON-SECTION]: an app whose service just sleeps
  mkdir -p "$TMP/$1/.miren"
  printf 'name = "%s"\n[services.web]\ncommand = "exec sleep 100000"\n%s' "$1" "${2:-}" >"$TMP/$1/.miren/app.toml"
}
PG=$'[addons.miren-postgresql]\nvariant = "small"\n'
left() { state_q "\"\([.addons[] | select(.app == \"$1\")] | length) addons, \(.servers | length) servers, \(.disks | length) disks\""; }

# addon destroy during provisioning, at random points of it.
mkapp plain
miren deploy -C "$TMP/plain" >/dev/null 2>&1 || fail "deploy plain"
for round in 1 2 3 4 5 6; do
  delay=$(printf '0.%03d' $((RANDOM % 700)))
  miren addon create miren-postgresql:small -a plain --no-wait >/dev/null 2>&1 || fail "round $round: create"
  sleep "$delay"
  out=$(miren addon destroy miren-postgresql -a plain -f 2>&1)
  expect_match "$out" "^Destroyed addon miren-postgresql of plain" "round $round (delay $delay): addon destroy during provisioning takes effect"
  expect_eq "$(left plain)" "0 addons, 0 servers, 0 disks" "round $round: when it returns nothing of the addon is left"
  sleep 0.5
  expect_eq "$(left plain)" "0 addons, 0 servers, 0 disks" "round $round: and nothing comes back"
  expect_eq "$(invariant_violations)" "" "round $round: invariants hold"
done

# A deploy that re-creates a destroyed addon says so.
mkapp p1 "$PG"
out=$(miren deploy -C "$TMP/p1" 2>&1)
expect_match "$out" "Addon miren-postgresql ready" "p1 deploys with its addon"
miren addon destroy miren-postgresql -a p1 -f >/dev/null 2>&1
out=$(miren deploy -C "$TMP/p1" 2>&1)
expect_no_match "$out" "^No changes" "a deploy that re-creates the addon does not say 'No changes'"
expect_match "$out" "addon miren-postgresql re-created" "it says the addon was re-created"
expect_match "$(miren addon list -a p1)" "miren-postgresql +small +active" "and the addon is active"
out=$(miren deploy -C "$TMP/p1" 2>&1)
expect_match "$out" "^No changes: release 1 of p1 is current" "a deploy that changes nothing says 'No changes'"

# A deploy after a failed provisioning retries it.
mkapp p2 "$PG"
mkapp p3 "$PG"
miren deploy -C "$TMP/p2" >/dev/null 2>&1
expect_match "$(miren addon list -a p2)" "active" "p2 takes the second address"
rc=0
out=$(miren deploy -C "$TMP/p3" 2>&1) || rc=$?
expect_eq "$rc" 1 "p3's deploy fails: no address left"
expect_match "$out" "exhausted" "and says why"
expect_match "$(miren addon list -a p3)" "error" "p3's addon is in error"
miren app destroy p2 -f >/dev/null 2>&1
rc=0
out=$(miren deploy -C "$TMP/p3" 2>&1) || rc=$?
expect_eq "$rc" 0 "deploying p3 again succeeds once an address is free"
expect_match "$out" "addon miren-postgresql retried" "it says it retried the failed addon"
expect_match "$out" "Addon miren-postgresql ready" "and that the addon is ready"
expect_match "$(miren addon list -a p3)" "miren-postgresql +small +active" "p3's addon is active"
expect_no_match "$(miren addon list -a p3 --format json)" "exhausted" "the old message is gone"
miren env get -a p3 DATABASE_URL >/dev/null 2>&1 && ok "p3 has DATABASE_URL" || fail "p3 has no DATABASE_URL"
expect_eq "$(invariant_violations)" "" "invariants hold at the end"
finish
