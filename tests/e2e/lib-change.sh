# shellcheck shell=bash
# The variant change tests' common part (t0280 PostgreSQL, t0282 MariaDB;
# sourced after lib.sh, and lib-mysql.sh for MariaDB): an app whose one
# service, "writer", inserts rows continuously with the app's env
# (tests/e2e/writer.py), and one round of a change under that load.
#
#   change_setup ENGINE APP     ENGINE pg|mysql: sets ADDON, HOSTVAR, LOAD
#                               (the writer's table, quoted)
#   write_change_app VARIANT    $TMP/$APP with the writer and the addon
#   q SQL                       SQL as the app (bare rows)
#   change_round TO cli|deploy  changes the addon to TO, checks the outcome
#   change_walk CMD WANT        the fault walk (server stopped before)

change_setup() {
  ENGINE=$1 APP=$2
  case $ENGINE in
    pg) ADDON=miren-postgresql HOSTVAR=PGHOST LOAD=load ;;
    mysql) ADDON=miren-mysql HOSTVAR=MYSQL_HOST LOAD='`load`' ;;
  esac
}

q() {
  if [ "$ENGINE" = pg ]; then psql_as "$APP" -q -c "$1"; else mysql_as "$APP" -e "$1"; fi
}

write_change_app() {
  mkdir -p "$TMP/$APP/.miren"
  cp "$MIREN_SRC/tests/e2e/writer.py" "$TMP/$APP/writer.py"
  cat > "$TMP/$APP/.miren/app.toml" <<TOML
name = "$APP"
[services.writer]
command = "exec /usr/bin/python3 ./writer.py $ENGINE"
[addons.$ADDON]
variant = "$1"
TOML
}

# The writer's whole log, read from the data directory (miren logs is
# t0007's; a walk's log grows to megabytes, read many times here).
change_log() { cat "$DATA/apps/$APP/logs/writer.log" 2>/dev/null; }
# The i of every insert that returned success, sorted as text (comm's
# order: in numeric order comm pairs lines wrongly past 9, 99, 999...,
# and one row the table has beyond the acknowledged ones, at i = 999 of
# 1832, read as 833 lost).
oks() { change_log | awk '$1 == "ok" { print $2 }' | sort -u; }
n_oks() { change_log | grep -c '^ok'; }
# The longest time between two successful inserts after line $1 of the
# log, in ms: the writes the change refused, as the app saw them.
longest_gap() {
  change_log | awk -v from="$1" '
    NR > from && $1 == "ok" { if (last) { g = $3 - last; if (g > max) max = g }; last = $3 }
    END { print max + 0 }'
}
# Every row whose insert returned success is in the table (the table may
# hold more: an insert committed whose answer the writer never got).
check_rows() {
  oks > "$TMP/acked"
  q "SELECT DISTINCT i FROM $LOAD" | sort -u > "$TMP/have"
  comm -23 "$TMP/acked" "$TMP/have" | sort -n > "$TMP/lost"
  expect_eq "$(wc -l < "$TMP/lost")" "0" \
    "$1: every acknowledged insert is there ($(wc -l < "$TMP/acked") acknowledged, $(wc -l < "$TMP/have") rows; missing: $(head -n 20 "$TMP/lost" | tr '\n' ' '))"
}
# The id a new row gets (from the table's sequence or counter).
next_id() {
  if [ "$ENGINE" = pg ]; then q "INSERT INTO load (i) VALUES (-1) RETURNING id"
  else q "INSERT INTO \`load\` (i) VALUES (-1); SELECT LAST_INSERT_ID()"; fi
}

# Changes the addon to $1 (with `miren addon change` when $2 is cli, by a
# deploy of app.toml naming it when deploy) while the writer inserts, and
# checks: the change succeeded and says so, the writer goes on, every
# acknowledged row is there, the counter goes on past them, the keyless
# table came along with the update made after the change, the env names
# another server, the old server is gone (when it was the app's own),
# nothing is left in motion, the invariants hold.  Prints the pause the
# daemon measured and the longest refusal the app saw.
change_round() {
  local to=$1 how=$2 from old_host old_server before n0 out st paused gap max_id new_id tag
  from=$(miren addon list -a "$APP" --format json | jq -r '.[0].variant')
  tag="$ADDON $from -> $to ($how)"
  old_host=$(miren env get -a "$APP" "$HOSTVAR")
  old_server=$(state_q ".addons[] | select(.app == \"$APP\") | .server")
  q "CREATE TABLE IF NOT EXISTS nopk (k int, v text)"
  q "DELETE FROM nopk; INSERT INTO nopk VALUES (1, 'before'), (2, 'b')"
  sleep 1
  before=$(change_log | wc -l)
  n0=$(n_oks)
  if [ "$how" = cli ]; then
    out=$(miren addon change "$ADDON:$to" -a "$APP" --format json 2>&1)
    st=$?
    expect_eq "$st" "0" "$tag: succeeds: $(echo "$out" | tr '\n' ' ')"
    expect_eq "$(echo "$out" | jq -r '[.from, .to, .restarted] | join(",")')" "$from,$to,true" "$tag: the result says what happened"
    paused=$(echo "$out" | jq -r '.writes_paused_ms')
    method=$(echo "$out" | jq -r '.method')
  else
    write_change_app "$to"
    out=$(miren deploy -C "$TMP/$APP" --format json 2>&1)
    st=$?
    expect_eq "$st" "0" "$tag: succeeds: $(echo "$out" | tail -n 3 | tr '\n' ' ')"
    expect_eq "$(echo "$out" | jq -r '.addons_changed[0] | [.from, .to] | join(",")')" "$from,$to" "$tag: the deploy says it changed the addon"
    paused=$(echo "$out" | jq -r '.addons_changed[0].writes_paused_ms')
    method=$(echo "$out" | jq -r '.addons_changed[0].method')
  fi
  q "UPDATE nopk SET v = 'after' WHERE k = 1"
  wait_for "$tag: the writer goes on on the new server" 60 sh -c "[ \$(grep -c '^ok' '$DATA/apps/$APP/logs/writer.log') -gt $((n0 + 20)) ]"
  expect_eq "$(miren addon list -a "$APP" --format json | jq -r '[.[] | .variant + " " + .status] | join(",")')" "$to active" "$tag: the app has one instance, $to, active"
  [ "$(miren env get -a "$APP" "$HOSTVAR")" != "$old_host" ] && ok "$tag: the env names the new server" || fail "$tag: $HOSTVAR did not change"
  check_rows "$tag"
  gap=$(longest_gap "$before")
  echo "# $tag: copied by $method; writes paused by the daemon for ${paused} ms; the longest refusal the app saw: ${gap} ms"
  [ "$gap" -lt 10000 ] && ok "$tag: the longest refusal is ${gap} ms" || fail "$tag: the app was refused writes for ${gap} ms"
  max_id=$(q "SELECT max(id) FROM $LOAD")
  new_id=$(next_id)
  [ "$new_id" -gt "$max_id" ] 2>/dev/null && ok "$tag: the counter goes on ($new_id > $max_id)" || fail "$tag: a new row got id $new_id, max id $max_id"
  q "DELETE FROM $LOAD WHERE i = -1"
  expect_eq "$(q "SELECT v FROM nopk ORDER BY k" | tr '\n' ',')" "after,b," "$tag: the table without a key came along and takes updates"
  if [ "$from" = small ]; then
    expect_eq "$(state_q "[.servers[] | select(.id == \"$old_server\")] | length")" "0" "$tag: the old server is gone"
  fi
  expect_eq "$(miren debug invariants --format json | jq -r '.in_motion')" "0" "$tag: nothing left in motion"
  local bad
  bad=$(invariant_violations)
  [ -z "$bad" ] && ok "$tag: invariants hold" || fail "$tag:$bad"
}

# The fault walk: for every point of a change (change:*, from
# MIREN_FAULT=list), a daemon armed there, killed while changing the addon
# to the variant it is not on (so both directions are walked), then armed
# again at the same point while the next one undoes or finishes the
# change at its start; afterwards the app has one instance, active, of the
# old variant (a kill before the switch) or the new one, the writer goes
# on, every acknowledged insert is there, nothing is left in motion, the
# invariants hold, and the neighbour's data ($1, a command printing it)
# is $2.  The server is stopped before and after.
change_walk() {
  local points p from to want n0 bad
  points=$(MIREN_FAULT=list "$MIREN_BIN" | awk '$1 == "operation" && index($2, "change:") == 1 { print $2 }')
  expect_eq "$(echo "$points" | tr "\n" " " | sed "s/ $//")" "change:planned change:provisioned change:copying change:paused change:copied change:switched change:restarted change:removed" "MIREN_FAULT=list names the change's points"
  for p in $points; do
    start_server || exit 1
    from=$(miren addon list -a "$APP" --format json | jq -r '.[0].variant')
    if [ "$from" = small ]; then to=shared; else to=small; fi
    case $p in change:switched|change:restarted|change:removed) want=$to ;; *) want=$from ;; esac
    stop_server
    start_faulty "$p" || { fail "$p: server did not start"; continue; }
    miren addon change "$ADDON:$to" -a "$APP" >/dev/null 2>&1
    wait_crash || { fail "$p: the daemon did not crash there"; stop_server; continue; }
    # Killed again at the same point while undoing or finishing (the points
    # after the switch are passed again then).
    start_faulty "$p" || { fail "$p: server did not start again"; continue; }
    if ! kill -0 "$SERVER_PID" 2>/dev/null; then
      wait "$SERVER_PID" 2>/dev/null; SERVER_PID=""
      ok "$p: killed again while finishing the change"
      start_server || exit 1
    fi
    expect_eq "$(miren addon list -a "$APP" --format json | jq -r '[.[] | .variant + " " + .status] | join(",")')" "$want active" "$p ($from -> $to): the app has one instance, $want, active"
    n0=$(n_oks)
    wait_for "$p: the writer goes on" 30 sh -c "[ \$(grep -c '^ok' '$DATA/apps/$APP/logs/writer.log') -gt $((n0 + 5)) ]" ||
      { change_log | tail -n 5; miren app status -a "$APP"; } | sed 's/^/#   /'
    check_rows "$p"
    expect_eq "$(eval "$1")" "$2" "$p: the neighbour's data is untouched"
    expect_eq "$(miren debug invariants --format json | jq -r '.in_motion')" "0" "$p: nothing left in motion"
    bad=$(invariant_violations)
    [ -z "$bad" ] && ok "$p: invariants hold" || fail "$p:$bad"
    stop_server
  done
}
