#!/usr/bin/env bash
# Every thread of the daemon at work at once: API threads (status, lists,
# env, deploys), the reconciler (small and shared provisioning and removal),
# the spare preparer, the supervisor (starts, restarts, stops) and a backup
# producer streaming while provisioning goes on.  Run by scripts/test
# against the ThreadSanitizer build too (lib.sh fails the test on any
# sanitizer report); here it checks that the end state is right.
. "$(dirname "$0")/lib.sh"
start_server || exit 1

# A shared server with a tenant first, so a backup can run beside the rest.
write_addon_app base shared
miren deploy -C "$TMP/base" >/dev/null 2>&1
wait_for "the first shared addon is active" 60 bash -c \
  "'$MIREN_BIN' addon list -a base | grep -q active"
shared_disk=$(disk_of_app base)

pids=()
for i in 1 2 3; do
  write_addon_app "s$i" shared; write_addon_app "d$i" small
  (miren deploy -C "$TMP/s$i" >"$TMP/deploy-s$i.out" 2>&1) & pids+=($!)
  (miren deploy -C "$TMP/d$i" >"$TMP/deploy-d$i.out" 2>&1) & pids+=($!)
done
(miren disk backup -n "$shared_disk" -o "$TMP/shared.miren.zst" >"$TMP/backup.out" 2>&1) &
backup=$!
(for _ in $(seq 1 40); do
  miren app list >/dev/null 2>&1; miren addon list -a base >/dev/null 2>&1
  miren app status -a base >/dev/null 2>&1; miren env list -a s1 >/dev/null 2>&1
  miren debug disk list >/dev/null 2>&1
done) & readers=$!
(for i in 1 2 3; do miren app restart base >/dev/null 2>&1; miren env set -a base "K$i=v$i" >/dev/null 2>&1; done) &
writers=$!

failed_deploys=0
for p in "${pids[@]}"; do wait "$p" || failed_deploys=$((failed_deploys + 1)); done
expect_eq "$failed_deploys" "0" "six deploys side by side all succeed"
wait "$backup"; expect_eq "$?" "0" "a backup streamed while they provisioned"
wait "$readers" "$writers"

all_active() {
  for a in s1 s2 s3 d1 d2 d3; do
    miren addon list -a "$a" | grep -q active || return 1
  done
}
wait_for "every addon is active" 120 all_active
expect_eq "$(miren env get -a base K3)" "v3" "env writes beside restarts all landed"
out=$(miren disk restore -s "$TMP/shared.miren.zst" -n shared-copy 2>&1)
expect_match "$out" "Restored disk shared-copy" "the backup restores"

# Removal beside reads: destroys on every app at once.
pids=()
for a in s1 s2 s3 d1 d2 d3; do
  (miren app destroy "$a" -f >/dev/null 2>&1) & pids+=($!)
done
(for _ in $(seq 1 20); do miren app list >/dev/null 2>&1; miren debug disk list >/dev/null 2>&1; done) &
pids+=($!)
failed=0
for p in "${pids[@]}"; do wait "$p" || failed=$((failed + 1)); done
expect_eq "$failed" "0" "destroys side by side all succeed"
gone() { [ "$(miren app list --format json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')" = 1 ]; }
wait_for "only the first app is left" 60 gone
settled() {
  state_is '.servers | length' 1 &&
    [ -z "$(invariant_violations)" ]
}
wait_for "the small servers are gone and every invariant holds" 60 settled
v=$(invariant_violations); expect_eq "$v" "" "no invariant is violated"

# A clean stop, so a sanitizer sees the daemon's whole life.
stop_server
finish
