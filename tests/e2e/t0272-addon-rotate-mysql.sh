#!/usr/bin/env bash
# miren addon rotate, miren-mysql small and shared: while the app's
# service reconnects in a loop with its env (and keeps connecting for 1.5 s
# after SIGTERM), two rotations (to the second user and back) give 0
# authentication failures; afterwards the old password is refused, the
# data is there, the app can still create and alter its tables, and a view
# made before (its definer the old user) still answers.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib-mysql.sh"
start_server || exit 1
MY=miren-mysql
# shellcheck disable=SC2016  # expanded by the worker
MY_CHECK='MYSQL_PWD=$MYSQL_PASSWORD mariadb --no-defaults --connect-timeout=5 -h "$MYSQL_HOST" -P "$MYSQL_PORT" -u "$MYSQL_USER" -N -B -e "SELECT 1" "$MYSQL_DATABASE"'


for variant in small shared; do
  app=rotmy$variant
  write_reconnect_app "$app" $MY "$variant" "$MY_CHECK"
  miren deploy -C "$TMP/$app" >/dev/null 2>&1
  wait_for "$variant: the worker connects" 60 sh -c "'$MIREN_BIN' logs -a $app | grep -q 'connect ok'"
  mysql_as "$app" -e "CREATE TABLE made_before (v varchar(10)); INSERT INTO made_before VALUES ('a'), ('b'); CREATE VIEW v_before AS SELECT v FROM made_before"
  user=$(miren env get -a "$app" MYSQL_USER)
  pw=$(miren env get -a "$app" MYSQL_PASSWORD --unmask)
  host=$(miren env get -a "$app" MYSQL_HOST)
  for round in 1 2; do
    out=$(miren addon rotate $MY -a "$app" 2>&1)
    expect_eq "$?" "0" "$variant round $round: addon rotate succeeds: $(echo "$out" | tr '\n' ' ')"
    new_user=$(miren env get -a "$app" MYSQL_USER)
    new_pw=$(miren env get -a "$app" MYSQL_PASSWORD --unmask)
    case "$out" in *"$pw"*|*"$new_pw"*) fail "$variant round $round: a password is in the output" ;; *) ok "$variant round $round: no password in the output" ;; esac
    [ "$new_pw" != "$pw" ] && [ "$new_user" != "$user" ] && ok "$variant round $round: the env has the other user ($user -> $new_user) and a new password" || fail "$variant round $round: user $new_user, password changed: $([ "$new_pw" != "$pw" ] && echo yes || echo no)"
    sleep 1
    log=$(miren logs -a "$app" --lines 1000000 2>/dev/null)
    expect_eq "$(echo "$log" | grep -c 'Access denied' || true)" "0" "$variant round $round: the worker saw 0 authentication failures ($(echo "$log" | grep -c 'connect ok') connections)"
    r=$(mysql_with "$host" "$user" "$pw" -e 'SELECT 1' 2>&1)
    expect_match "$r" "Access denied" "$variant round $round: the old password is refused"
    expect_eq "$(mysql_as "$app" -e "SELECT GROUP_CONCAT(v ORDER BY v) FROM v_before")" "a,b" "$variant round $round: the data is there, through a view the old user made"
    mysql_as "$app" -e "ALTER TABLE made_before ADD COLUMN r$round int; CREATE TABLE made_$round (i int); ALTER TABLE made_$round ADD COLUMN j int; CREATE OR REPLACE VIEW v_before AS SELECT v FROM made_before" 2>&1
    expect_eq "$?" "0" "$variant round $round: the app alters its tables and views, old and new"
    bad=$(invariant_violations)
    [ -z "$bad" ] && ok "$variant round $round: invariants hold" || fail "$variant round $round: $bad"
    user=$new_user pw=$new_pw
  done
done
miren addon destroy $MY -a rotmyshared -f --no-final-backup >/dev/null 2>&1
bad=$(invariant_violations)
[ -z "$bad" ] && ok "after the destroy of a rotated addon: invariants hold" || fail "after destroy: $bad"
finish
