#!/usr/bin/env bash
# Convergence after repeated crashes (issue 8, finding 1), as reported:
# ten apps; for each, `addon create miren-postgresql:small --no-wait`, then
# kill -9 of the daemon 0-0.9 s later, then a restart, which is killed
# again 0-0.9 s into its recovery now and then.  The first kill lands while
# the data directory's first template cluster is being made, later ones
# inside clones, server starts and tenant creation, so each new daemon meets
# what the dead one left running.  Every create the CLI accepted must end
# `active`, with the invariants holding.  Then SIGTERM must stop a daemon
# promptly in the same states.
. "$(dirname "$0")/lib.sh"
APPS=${APPS:-10}

mkapp() {
  mkdir -p "$TMP/$1/.miren"
  printf 'name = "%s"\n[services.web]\ncommand = "exec sleep 100000"\n' "$1" > "$TMP/$1/.miren/app.toml"
  miren deploy -C "$TMP/$1" >/dev/null 2>&1
}
rand_delay() { echo "0.$((RANDOM % 10))"; }

start_server || exit 1
for i in $(seq "$APPS"); do mkapp "a$i"; done
accepted=""
kills=0
for i in $(seq "$APPS"); do
  if miren addon create miren-postgresql:small -a "a$i" --no-wait >/dev/null 2>&1; then
    accepted="$accepted a$i"
  fi
  sleep "$(rand_delay)"
  kill_server; kills=$((kills + 1))
  start_server || { fail "the daemon did not come back after kill $kills"; break; }
  # Every other round: kill the new daemon again while it recovers.
  if [ $((i % 2)) = 0 ]; then
    sleep "$(rand_delay)"
    kill_server; kills=$((kills + 1))
    start_server || { fail "the daemon did not come back after kill $kills"; break; }
  fi
done
echo "# $kills kills; accepted:$accepted"

settle_start=$SECONDS
wait_for "every addon settles" 240 state_is \
  '[.addons[] | select(.status == "pending" or .status == "provisioning")] | length' 0
echo "# settled in $((SECONDS - settle_start)) s"
for a in $accepted; do
  st=$(state_q ".addons[] | select(.app == \"$a\") | \"\(.status) \(.message)\"")
  expect_eq "$st" "active " "the accepted create of $a ends active"
done
for a in $accepted; do
  if ! psql_as "$a" -c "SELECT 1" >/dev/null 2>&1; then fail "$a: its database does not answer"; fi
done
expect_eq "$(invariant_violations)" "" "the invariants hold after $kills kills"

# SIGTERM stops a daemon whatever it is doing: while it makes a server,
# while it recovers from a crash in the middle of one.  The bound catches a
# daemon that waits for its work to end (a server's stop alone may take
# 30 s), not a slow machine: idle, a stop takes under a second; on a
# machine running four suites at once, 5-11 s were seen.
for round in 1 2 3; do
  a="t$round"; mkapp "$a"
  miren addon create miren-postgresql:small -a "$a" --no-wait >/dev/null 2>&1
  sleep "$(rand_delay)"
  if [ "$round" = 2 ]; then
    kill_server; start_server || exit 1; sleep "$(rand_delay)"
  fi
  stop_server_timed; ms=$STOP_MS
  if [ "$ms" -lt 30000 ]; then ok "SIGTERM round $round: stopped in $ms ms"; else
    fail "SIGTERM round $round: the daemon took $ms ms to stop"; fi
  start_server || exit 1
done
wait_for "and the interrupted creates converge" 120 state_is \
  '[.addons[] | select(.status != "active")] | length' 0
expect_eq "$(invariant_violations)" "" "the invariants hold at the end"
finish
