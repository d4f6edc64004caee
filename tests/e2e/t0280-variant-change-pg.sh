#!/usr/bin/env bash
# A variant change of miren-postgresql under a write load, both ways:
# small -> shared with `miren addon change`, shared -> small by a deploy
# whose app.toml names the other variant.  The app's service inserts rows
# continuously with its env (tests/e2e/writer.py); every row whose insert
# returned success is there afterwards, the sequence goes on past them, a
# table without a key and its updates came along, the longest refusal is
# measured and printed, the app runs on the new server and the old one is
# gone, a neighbour on the shared server is untouched, the invariants hold
# (no subscription, slot, publication, server, disk or role left over).
. "$(dirname "$0")/lib.sh"
start_server || exit 1
PG=miren-postgresql
app=vcpg

write_app() {
  mkdir -p "$TMP/$app/.miren"
  cp "$MIREN_SRC/tests/e2e/writer.py" "$TMP/$app/writer.py"
  cat > "$TMP/$app/.miren/app.toml" <<TOML
name = "$app"
[services.writer]
command = "exec /usr/bin/python3 ./writer.py pg"
[addons.$PG]
variant = "$1"
TOML
}
oks() { miren logs -a $app --lines 1000000 2>/dev/null | awk '$1 == "ok" { print $2 }' | sort -n -u; }
n_oks() { oks | wc -l; }
# The longest time between two successful inserts after line $1 of the
# log, in ms (the writes the change refused, as the app saw them).
longest_gap() {
  miren logs -a $app --lines 1000000 2>/dev/null | awk -v from="$1" '
    NR > from && $1 == "ok" { if (last) { g = $3 - last; if (g > max) max = g }; last = $3 }
    END { print max + 0 }'
}
log_lines() { miren logs -a $app --lines 1000000 2>/dev/null | wc -l; }
# Every row whose insert succeeded is in the table.
check_rows() {
  oks > "$TMP/acked"
  psql_as $app -c "SELECT DISTINCT i FROM load ORDER BY i" > "$TMP/have"
  local lost
  lost=$(comm -23 "$TMP/acked" "$TMP/have" | wc -l)
  expect_eq "$lost" "0" "$1: every acknowledged insert is there ($(wc -l < "$TMP/acked") acknowledged, $(wc -l < "$TMP/have") rows)"
}

# A neighbour on the shared server, with data of its own.
write_addon_app nb shared
miren deploy -C "$TMP/nb" >/dev/null 2>&1
psql_as nb -q -c "CREATE TABLE mine (v text); INSERT INTO mine VALUES ('nb')"
nb_pw=$(miren env get -a nb PGPASSWORD --unmask)

write_app small
miren deploy -C "$TMP/$app" >/dev/null 2>&1
wait_for "the writer inserts" 30 sh -c "[ \$('$MIREN_BIN' logs -a $app --lines 1000000 | grep -c '^ok') -ge 20 ]"
psql_as $app -q -c "CREATE TABLE nopk (k int, v text); INSERT INTO nopk VALUES (1, 'a'), (2, 'b')"
round=0
for to in shared small; do
  round=$((round + 1))
  from=$(miren addon list -a $app --format json | jq -r '.[0].variant')
  old_host=$(miren env get -a $app PGHOST)
  old_server=$(state_q ".addons[] | select(.app == \"$app\") | .server")
  sleep 1
  before=$(log_lines)
  n0=$(n_oks)
  if [ "$to" = shared ]; then
    out=$(miren addon change $PG:shared -a $app --format json 2>&1)
    st=$?
    expect_eq "$st" "0" "$from -> $to: addon change succeeds: $(echo "$out" | tr '\n' ' ')"
    expect_eq "$(echo "$out" | jq -r '[.from, .to, .method, .restarted] | join(",")')" "$from,$to,replication,true" "$from -> $to: the result says what happened"
    paused=$(echo "$out" | jq -r '.writes_paused_ms')
  else
    write_app small
    out=$(miren deploy -C "$TMP/$app" --format json 2>&1)
    st=$?
    expect_eq "$st" "0" "$from -> $to: deploy with the other variant succeeds: $(echo "$out" | tail -n 3 | tr '\n' ' ')"
    expect_eq "$(echo "$out" | jq -r '.addons_changed[0] | [.from, .to, .method] | join(",")')" "$from,$to,replication" "$from -> $to: the deploy says it changed the addon"
    paused=$(echo "$out" | jq -r '.addons_changed[0].writes_paused_ms')
  fi
  # Updates of the keyless table after the copy began reached the new one.
  psql_as $app -q -c "UPDATE nopk SET v = v || '$round' WHERE k = 1"
  wait_for "$from -> $to: the writer goes on on the new server" 30 sh -c "[ \$('$MIREN_BIN' logs -a $app --lines 1000000 | grep -c '^ok') -gt $((n0 + 20)) ]"
  expect_eq "$(miren addon list -a $app --format json | jq -r '.[0].variant + " " + .[0].status')" "$to active" "$from -> $to: addon list shows the new variant"
  [ "$(miren env get -a $app PGHOST)" != "$old_host" ] && ok "$from -> $to: the env names the new server" || fail "$from -> $to: PGHOST did not change"
  check_rows "$from -> $to"
  gap=$(longest_gap "$before")
  echo "# $from -> $to: writes paused by the daemon for ${paused} ms; the longest refusal the app saw: ${gap} ms"
  [ "$gap" -lt 10000 ] && ok "$from -> $to: the longest refusal is ${gap} ms" || fail "$from -> $to: the app was refused writes for ${gap} ms"
  max_id=$(psql_as $app -c "SELECT max(id) FROM load")
  new_id=$(psql_as $app -q -c "INSERT INTO load (i) VALUES (-1) RETURNING id")
  [ "$new_id" -gt "$max_id" ] && ok "$from -> $to: the sequence goes on ($new_id > $max_id)" || fail "$from -> $to: the sequence gave $new_id, max id $max_id"
  expect_eq "$(psql_as $app -c "SELECT string_agg(v, ',' ORDER BY k) FROM nopk")" "a$(seq -s '' 1 $round),b" "$from -> $to: the table without a key and its updates came along"
  psql_as $app -q -c "UPDATE nopk SET v = v WHERE k = 2; DELETE FROM load WHERE i = -1" 2>&1
  expect_eq "$?" "0" "$from -> $to: the app updates and deletes on the new server"
  if [ "$from" = small ]; then
    expect_eq "$(state_q "[.servers[] | select(.id == \"$old_server\")] | length")" "0" "$from -> $to: the old server is gone"
  fi
  expect_eq "$(psql_as nb -c 'SELECT v FROM mine')" "nb" "$from -> $to: the neighbour's data is untouched"
  expect_eq "$(miren env get -a nb PGPASSWORD --unmask)" "$nb_pw" "$from -> $to: the neighbour's credentials are untouched"
  bad=$(invariant_violations)
  [ -z "$bad" ] && ok "$from -> $to: invariants hold" || fail "$from -> $to:$bad"
  in_motion=$(miren debug invariants --format json | jq -r '.in_motion')
  expect_eq "$in_motion" "0" "$from -> $to: nothing left in motion"
done
if grep -rqF -- "$nb_pw" "$DATA/logs" 2>/dev/null; then fail "a password is in the daemon's logs"; else ok "no password in the daemon's logs"; fi
finish
