#!/usr/bin/env bash
# The fault-point walk, steps: at every step fault point the code declares
# (MIREN_FAULT=list) between the steps of provision and deprovision of
# every variant of PostgreSQL (of every other addon: t0311, which runs
# this script with WALK_OTHER=1), the daemon crashes (MIREN_FAULT, as kill -9
# would); a restarted daemon must converge, with exactly one server per
# server record, no stray process, disk directory, database or role, and
# no committed data lost.  The operation points (deploy, backup, restore,
# schedules, ...) are t0309's and t0310's walks.
. "$(dirname "$0")/lib.sh"

# shellcheck source=tests/e2e/lib-walk.sh
. "$(dirname "$0")/lib-walk.sh"

# addon:variant pairs, from the activate points (one per variant):
# PostgreSQL's here, every other engine's in t0311 (WALK_OTHER=1), so the
# two halves run side by side.
WALK_OTHER=${WALK_OTHER:-0}
mine() { if [ "${1%%:*}" = miren-postgresql ]; then [ "$WALK_OTHER" = 0 ]; else [ "$WALK_OTHER" = 1 ]; fi; }
for av in $(points_of step activate: | sed 's/^activate://'); do
  mine "$av" || continue
  addon=${av%:*} variant=${av##*:}
  for p in $(points_of step "provision:$av:"); do
    walked "$p"
    start_faulty "$p" || { fail "$p: server did not start"; continue; }
    miren addon create "$addon:$variant" -a fa --no-wait >/dev/null 2>&1
    wait_crash || { fail "$p: the daemon did not crash there"; stop_server; continue; }
    start_server || exit 1
    wait_for "$p: the addon converges to active" 40 sh -c "'$MIREN_BIN' addon list -a fa | grep -q ' active'"
    check "$p"
    expect_exit "$p: the addon is destroyed after" 0 miren addon destroy "$addon" -a fa -f --no-final-backup
    stop_server
  done
  p="activate:$av"
  walked "$p"
  start_faulty "$p" || { fail "$p: server did not start"; continue; }
  miren addon create "$addon:$variant" -a fa --no-wait >/dev/null 2>&1
  wait_crash || fail "$p: the daemon did not crash there"
  start_server || exit 1
  wait_for "$p: the addon converges to active" 40 sh -c "'$MIREN_BIN' addon list -a fa | grep -q ' active'"
  n_env=$(miren env list -a fa --format json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')
  [ "$n_env" -gt 0 ] && ok "$p: its env is there" || fail "$p: its env is missing"
  check "$p"
  for p in $(points_of step "deprovision:$av:"); do
    walked "$p"
    stop_server
    start_faulty "$p" || { fail "$p: server did not start"; continue; }
    miren addon destroy "$addon" -a fa -f --no-wait >/dev/null 2>&1
    wait_crash || { fail "$p: the daemon did not crash there"; stop_server; start_server; continue; }
    start_server || exit 1
    wait_for "$p: the addon converges to removed" 40 sh -c "'$MIREN_BIN' addon list -a fa | grep -q 'has no addons'"
    check "$p"
    expect_exit "$p: the addon is created again after" 0 miren addon create "$addon:$variant" -a fa
  done
  expect_exit "$av: the addon is destroyed after the walk" 0 miren addon destroy "$addon" -a fa -f --no-final-backup
  stop_server
done

# Every step point of this half's engines the code declares was walked
# here (operation points: t0309's and t0310's; inside points: t0307's).
for p in $(echo "$POINTS" | awk '$1 == "step" { print $2 }'); do
  mine "${p#*:}" || continue
  case " $WALKED " in
    *" $p "*) ;;
    *) fail "fault point $p is declared but not walked" ;;
  esac
done
finish
