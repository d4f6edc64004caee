#!/usr/bin/env bash
# A daemon killed at every step of a variant change (change:*, from
# MIREN_FAULT=list), then killed again at the same point while the next
# one undoes or finishes it at its start, converges with the app on
# exactly one working instance: before the switch the old variant, after
# it the new one; every row whose insert returned success (the app's
# service inserts all along, tests/e2e/writer.py) is there; nothing is
# left in motion and the invariants hold (no server, disk, database, role,
# subscription, slot or publication of the other instance left).
# miren-postgresql, each point changing the app to the variant it is not
# on, so both directions are walked.
. "$(dirname "$0")/lib.sh"
PG=miren-postgresql
app=vcf

start_server || exit 1
write_addon_app nb shared
miren deploy -C "$TMP/nb" >/dev/null 2>&1
psql_as nb -q -c "CREATE TABLE mine (v text); INSERT INTO mine VALUES ('nb')"
mkdir -p "$TMP/$app/.miren"
cp "$MIREN_SRC/tests/e2e/writer.py" "$TMP/$app/writer.py"
cat > "$TMP/$app/.miren/app.toml" <<TOML
name = "$app"
[services.writer]
command = "exec /usr/bin/python3 ./writer.py pg"
[addons.$PG]
variant = "small"
TOML
miren deploy -C "$TMP/$app" >/dev/null 2>&1
wait_for "the writer inserts" 30 sh -c "'$MIREN_BIN' logs -a $app | grep -q '^ok'"
stop_server

POINTS=$(MIREN_FAULT=list "$MIREN_BIN" | awk '$1 == "operation" && index($2, "change:") == 1 { print $2 }')
expect_eq "$(echo "$POINTS" | tr "\n" " " | sed "s/ $//")" "change:planned change:provisioned change:copying change:paused change:copied change:switched change:restarted change:removed" "MIREN_FAULT=list names the change's points"

oks() { miren logs -a $app --lines 1000000 2>/dev/null | awk '$1 == "ok" { print $2 }' | sort -n -u; }
n_oks() { oks | wc -l; }

for p in $POINTS; do
  start_server || exit 1
  from=$(miren addon list -a $app --format json | jq -r '.[0].variant')
  if [ "$from" = small ]; then to=shared; else to=small; fi
  case $p in change:switched|change:restarted|change:removed) want=$to ;; *) want=$from ;; esac
  stop_server
  start_faulty "$p" || { fail "$p: server did not start"; continue; }
  miren addon change $PG:$to -a $app >/dev/null 2>&1
  wait_crash || { fail "$p: the daemon did not crash there"; stop_server; continue; }
  # Killed again at the same point while undoing or finishing (the points
  # after the switch are passed again then).
  start_faulty "$p" || { fail "$p: server did not start again"; continue; }
  if ! kill -0 "$SERVER_PID" 2>/dev/null; then
    wait "$SERVER_PID" 2>/dev/null; SERVER_PID=""
    ok "$p: killed again while finishing the change"
    start_server || exit 1
  fi
  expect_eq "$(miren addon list -a $app --format json | jq -r '[.[] | .variant + " " + .status] | join(",")')" "$want active" "$p ($from -> $to): the app has one instance, $want, active"
  n0=$(n_oks)
  wait_for "$p: the writer goes on" 30 sh -c "[ \$('$MIREN_BIN' logs -a $app --lines 1000000 | grep -c '^ok') -gt $((n0 + 5)) ]"
  oks > "$TMP/acked"
  psql_as $app -c "SELECT DISTINCT i FROM load ORDER BY i" > "$TMP/have"
  expect_eq "$(comm -23 "$TMP/acked" "$TMP/have" | wc -l)" "0" "$p: every acknowledged insert is there ($(wc -l < "$TMP/acked") acknowledged)"
  expect_eq "$(psql_as nb -c 'SELECT v FROM mine')" "nb" "$p: the neighbour's data is untouched"
  expect_eq "$(miren debug invariants --format json | jq -r '.in_motion')" "0" "$p: nothing left in motion"
  bad=$(invariant_violations)
  [ -z "$bad" ] && ok "$p: invariants hold" || fail "$p:$bad"
  stop_server
done
finish
