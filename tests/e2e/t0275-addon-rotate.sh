#!/usr/bin/env bash
# miren addon rotate, miren-postgresql small and shared: while the app's
# service reconnects in a loop with its env (and keeps connecting for 1.5 s
# after SIGTERM, as a worker draining its queue does), and a loop outside
# reads the app's env from the daemon and connects with it, a rotation
# gives 0 authentication failures; afterwards the old password is refused,
# the new env works, the data is there and the app can still create and
# alter its tables, those made before included.  No credential is printed.
# Run with ROTATE_EXPECT_FAILURES=1 against a build that revokes first,
# this test must fail (it did: see the commit that added it).
. "$(dirname "$0")/lib.sh"
start_server || exit 1
PG=miren-postgresql
# shellcheck disable=SC2016  # expanded by the worker
PG_CHECK='PGCONNECT_TIMEOUT=5 psql "$DATABASE_URL" -X -tAc "SELECT 1"'


worker_log() { miren logs -a "$1" --lines 1000000 2>/dev/null; }
auth_failures() { grep -c 'authentication failed' || true; }

# Outside: reads the env the daemon gives the app, connects with it.
outside_loop() {
  local app=$1 out=$2 url
  while [ ! -e "$TMP/stop-$app" ]; do
    url=$(miren env get -a "$app" DATABASE_URL --unmask 2>/dev/null) || continue
    if r=$(PGCONNECT_TIMEOUT=5 psql "$url" -X -tAc 'SELECT 1' 2>&1); then echo ok >> "$out"
    else echo "failed: $r" | tr '\n' ' ' >> "$out"; echo >> "$out"; fi
  done
}

for variant in small shared; do
  app=rot$variant
  write_reconnect_app "$app" $PG "$variant" "$PG_CHECK"
  miren deploy -C "$TMP/$app" >/dev/null 2>&1
  wait_for "$variant: the worker connects" 30 sh -c "'$MIREN_BIN' logs -a $app | grep -q 'connect ok'"
  psql_as "$app" -q -c "CREATE TABLE made_before (v text); INSERT INTO made_before VALUES ('a'), ('b')"
  old_user=$(miren env get -a "$app" PGUSER)
  old_pw=$(miren env get -a "$app" PGPASSWORD --unmask)
  role=$(psql_as "$app" -c "SELECT current_user")
  t0=$(date +%s)
  issued0=$(miren addon list -a "$app" --format json | jq -r '.[0].credentials_issued_at')
  [ "$issued0" -gt 0 ] 2>/dev/null && ok "$variant: addon list gives credentials_issued_at ($issued0)" || fail "$variant: no credentials_issued_at: $issued0"

  for round in 1 2; do
    rm -f "$TMP/stop-$app" "$TMP/outside-$app"
    outside_loop "$app" "$TMP/outside-$app" &
    loop=$!
    sleep 0.5
    out=$(miren addon rotate $PG -a "$app" 2>&1)
    st=$?
    sleep 1
    touch "$TMP/stop-$app"; wait "$loop"
    expect_eq "$st" "0" "$variant round $round: addon rotate succeeds: $(echo "$out" | tr '\n' ' ')"
    new_user=$(miren env get -a "$app" PGUSER)
    new_pw=$(miren env get -a "$app" PGPASSWORD --unmask)
    case "$out" in *"$old_pw"*|*"$new_pw"*) fail "$variant round $round: a password is in the output" ;; *) ok "$variant round $round: no password in the output" ;; esac
    [ "$new_pw" != "$old_pw" ] && ok "$variant round $round: the env has a new password" || fail "$variant round $round: the password did not change"
    [ "$new_user" != "$old_user" ] && ok "$variant round $round: the env has the other login ($old_user -> $new_user)" || fail "$variant round $round: the login did not change"
    # Let the restarted worker connect a few times with the new env.
    sleep 1
    log=$(worker_log "$app")
    expect_eq "$(echo "$log" | auth_failures)" "0" "$variant round $round: the worker saw 0 authentication failures ($(echo "$log" | grep -c 'connect ok') connections)"
    expect_eq "$(auth_failures < "$TMP/outside-$app")" "0" "$variant round $round: the loop outside saw 0 authentication failures ($(grep -c '^ok' "$TMP/outside-$app") connections)"
    pids=$(echo "$log" | sed -n 's/^.*connect ok \([0-9]*\)$/\1/p' | sort -u | wc -l)
    [ "$pids" -ge $((round + 1)) ] && ok "$variant round $round: the worker was restarted ($pids processes connected)" || fail "$variant round $round: $pids worker processes connected"
    # The old credentials are refused; the new ones work.
    r=$(PGHOST=$(miren env get -a "$app" PGHOST) PGPORT=$(miren env get -a "$app" PGPORT) PGUSER=$old_user \
        PGPASSWORD=$old_pw PGDATABASE=$(miren env get -a "$app" PGDATABASE) psql -X -tAc 'SELECT 1' 2>&1)
    expect_match "$r" "authentication failed" "$variant round $round: the old password is refused"
    expect_eq "$(psql_as "$app" -c "SELECT current_user")" "$role" "$variant round $round: the new login acts as the app's role"
    expect_eq "$(psql_as "$app" -c "SELECT string_agg(v, ',' ORDER BY v) FROM made_before")" "a,b" "$variant round $round: the data is there"
    psql_as "$app" -q -c "ALTER TABLE made_before ADD COLUMN r$round int; CREATE TABLE made_$round (i int); ALTER TABLE made_$round ADD COLUMN j int; INSERT INTO made_before VALUES ('c$round'); DELETE FROM made_before WHERE v = 'c$round'" 2>&1
    expect_eq "$?" "0" "$variant round $round: the app alters its tables, old and new"
    expect_eq "$(psql_as "$app" -c "SELECT string_agg(DISTINCT tableowner, ',') FROM pg_tables WHERE schemaname = 'public'")" "$role" "$variant round $round: every table belongs to the app's role"
    issued=$(miren addon list -a "$app" --format json | jq -r '.[0].credentials_issued_at')
    [ "$issued" -ge "$t0" ] && ok "$variant round $round: credentials_issued_at moved ($issued)" || fail "$variant round $round: credentials_issued_at is $issued, before $t0"
    bad=$(invariant_violations)
    [ -z "$bad" ] && ok "$variant round $round: invariants hold" || fail "$variant round $round: $bad"
    if grep -rqF -- "$old_pw" "$DATA/logs" "$DATA/apps/$app/logs" 2>/dev/null; then fail "$variant round $round: the old password is in a log"; else ok "$variant round $round: the old password is in no log"; fi
    old_user=$new_user old_pw=$new_pw
  done
done

# --format json: the facts, no secret.
out=$(miren addon rotate $PG -a rotsmall --format json)
expect_eq "$(echo "$out" | jq -r '[.app, .addon, .variant, .credential, .resumed, .restarted] | join(",")')" "rotsmall,$PG,small,user,false,true" "--format json gives the rotation's facts"
expect_match "$(echo "$out" | jq -r '.credentials_issued_at')" '^[0-9]+$' "--format json gives credentials_issued_at"
pw=$(miren env get -a rotsmall PGPASSWORD --unmask)
case "$out" in *"$pw"*) fail "--format json prints the password" ;; *) ok "--format json prints no password" ;; esac

# Bad input changes nothing.
pw=$(miren env get -a rotshared PGPASSWORD --unmask)
expect_exit "--credential root is a usage error" 2 miren addon rotate $PG -a rotshared --credential root
expect_match "$(cat "$TMP/err")" "credential must be user or superuser" "  and says what --credential takes"
expect_exit "--credential superuser is refused for PostgreSQL" 6 miren addon rotate $PG -a rotshared --credential superuser
expect_match "$(cat "$TMP/err")" "rotates the app's own credentials only" "  and says why"
expect_exit "an addon the app does not have: not found" 3 miren addon rotate miren-redis -a rotshared
expect_exit "an app that does not exist: not found" 3 miren addon rotate $PG -a no-such-app
expect_exit "no addon named: usage error" 2 miren addon rotate -a rotshared
expect_eq "$(miren env get -a rotshared PGPASSWORD --unmask)" "$pw" "a refused rotation changes nothing"
out=$(miren addon rotate $PG -a rotshared --credential superuser --format json 2>&1)
expect_eq "$(echo "$out" | jq -r '.error.code')" "invalid" "--format json errors have the API's shape"

# A rotation of one app leaves its neighbour on the shared server alone.
write_reconnect_app other $PG shared "$PG_CHECK"
miren deploy -C "$TMP/other" >/dev/null 2>&1
opw=$(miren env get -a other PGPASSWORD --unmask)
miren addon rotate $PG -a rotshared >/dev/null 2>&1
expect_eq "$(miren env get -a other PGPASSWORD --unmask)" "$opw" "the neighbour keeps its password"
expect_eq "$(psql_as other -c 'SELECT 1')" "1" "the neighbour still connects"

# Destroying a rotated addon leaves no role behind (the invariants compare
# the shared server's roles with its tenants).
miren addon destroy $PG -a rotshared -f --no-final-backup >/dev/null 2>&1
bad=$(invariant_violations)
[ -z "$bad" ] && ok "after the destroy of a rotated addon: invariants hold" || fail "after destroy: $bad"
finish
