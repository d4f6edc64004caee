#!/usr/bin/env bash
# A daemon killed at every step of a rollback (rollback:*, from
# MIREN_FAULT=list) comes back with the app running exactly one release,
# the one the store records as current: the old one when the kill came
# before the record (no release recorded, no directory or copy left), the
# rollback's when after (started at start, with its addon's DATABASE_URL);
# release numbers have no gap or duplicate, the invariants hold, and the
# rollback works again.  A rollback is not resumed at start (it is either
# recorded or not), so no point is passed again while recovering.
. "$(dirname "$0")/lib.sh"

start_server || exit 1
deploy_addon_app rf shared
echo 2 > "$TMP/rf/second" && miren deploy -C "$TMP/rf" >/dev/null 2>&1
stop_server

POINTS=$(MIREN_FAULT=list "$MIREN_BIN" | awk '$1 == "operation" && index($2, "rollback:") == 1 { print $2 }')
expect_eq "$(echo "$POINTS" | tr "\n" " " | sed "s/ $//")" "rollback:copied rollback:moved rollback:recorded" "MIREN_FAULT=list names the rollback's points"

# The release numbers of rf and what each rolls back to, oldest first.
records() { miren app releases -a rf --format json | jq -c '[.current, ([.releases[] | [.release, .rollback_of]] | reverse)]'; }
current() { miren app status -a rf --format json | jq -r .release; }
web_pid() { service_field rf web pid; }
runs() { [ "$(running_releases rf)" = "$1" ]; }

for p in $POINTS; do
  start_server || exit 1
  before=$(records)
  cur=$(current)
  stop_server
  start_faulty "$p" || { fail "$p: server did not start"; continue; }
  miren app rollback -a rf >/dev/null 2>&1
  wait_crash || { fail "$p: the daemon did not crash there"; stop_server; continue; }
  start_server || exit 1
  case $p in
    rollback:recorded) want=$((cur + 1)) ;;
    *) want=$cur ;;
  esac
  expect_eq "$(current)" "$want" "$p: the store's current release is $want"
  if [ "$want" = "$cur" ]; then
    expect_eq "$(records)" "$before" "$p: no release was recorded"
  else
    expect_eq "$(records | jq -c '.[1][-1]')" "[$want,$((cur - 1))]" "$p: release $want is the rollback to $((cur - 1))"
  fi
  expect_eq "$(ls "$DATA/apps/rf/releases" | sort -n | tr '\n' ' ' | sed 's/ $//')" \
    "$(records | jq -r '[.[1][][0]] | map(tostring) | join(" ")')" "$p: the release directories are the recorded ones"
  wait_for "$p: release $want runs, alone" 20 runs "$want"
  expect_eq "$(env_of "$(web_pid)" MIREN_RELEASE)" "$want" "$p: its MIREN_RELEASE"
  expect_eq "$(env_of "$(web_pid)" DATABASE_URL)" "$(miren env get -a rf DATABASE_URL --unmask)" "$p: with the addon's DATABASE_URL"
  bad=$(invariant_violations)
  [ -z "$bad" ] && ok "$p: invariants hold" || fail "$p:$bad"
  # The rollback works again, and numbers on without a gap.
  expect_exit "$p: a rollback works after the crash" 0 miren app rollback -a rf
  expect_eq "$(current)" "$((want + 1))" "$p: as release $((want + 1))"
  wait_for "$p: release $((want + 1)) runs, alone" 20 runs "$((want + 1))"
  expect_eq "$(records | jq -c '[.[1][][0]] | . == (. | sort | unique) and (.[-1] - .[0] + 1 == length)')" "true" "$p: release numbers have no gap or duplicate"
  stop_server
done
finish
