#!/usr/bin/env bash
# miren addon rotate, miren-redis small and shared: while the app's
# service reconnects in a loop with its env (and keeps going for 1.5 s
# after SIGTERM), two rotations (to the second ACL user and back) give 0
# authentication failures; afterwards the old password is refused and the
# app's keys are there and writable (on shared, under its prefix only).
. "$(dirname "$0")/lib.sh"
start_server || exit 1
RD=miren-redis
# shellcheck disable=SC2016  # expanded by the worker
RD_CHECK='r=$(REDISCLI_AUTH=$REDIS_PASSWORD redis-cli -h "$REDIS_HOST" -p "$REDIS_PORT" --user "$REDIS_USERNAME" --no-auth-warning PING); [ "$r" = PONG ] || { echo "$r"; false; }'


# redis-cli as USER with PASSWORD on the app's server.
rcli() {
  local app=$1 user=$2 pw=$3; shift 3
  REDISCLI_AUTH=$pw redis-cli -h "$(miren env get -a "$app" REDIS_HOST)" -p "$(miren env get -a "$app" REDIS_PORT)" \
    --user "$user" --no-auth-warning "$@" 2>&1
}

for variant in small shared; do
  app=rotrd$variant
  write_reconnect_app "$app" $RD "$variant" "$RD_CHECK"
  miren deploy -C "$TMP/$app" >/dev/null 2>&1
  wait_for "$variant: the worker connects" 60 sh -c "'$MIREN_BIN' logs -a $app | grep -q 'connect ok'"
  key="${app}:k"
  user=$(miren env get -a "$app" REDIS_USERNAME)
  pw=$(miren env get -a "$app" REDIS_PASSWORD --unmask)
  rcli "$app" "$user" "$pw" SET "$key" before >/dev/null
  for round in 1 2; do
    out=$(miren addon rotate $RD -a "$app" 2>&1)
    expect_eq "$?" "0" "$variant round $round: addon rotate succeeds: $(echo "$out" | tr '\n' ' ')"
    new_user=$(miren env get -a "$app" REDIS_USERNAME)
    new_pw=$(miren env get -a "$app" REDIS_PASSWORD --unmask)
    case "$out" in *"$pw"*|*"$new_pw"*) fail "$variant round $round: a password is in the output" ;; *) ok "$variant round $round: no password in the output" ;; esac
    [ "$new_pw" != "$pw" ] && [ "$new_user" != "$user" ] && ok "$variant round $round: the env has the other user ($user -> $new_user) and a new password" || fail "$variant round $round: user $new_user"
    expect_match "$(miren env get -a "$app" REDIS_URL --unmask)" "^redis://$new_user:" "$variant round $round: REDIS_URL names the new user"
    sleep 1
    log=$(miren logs -a "$app" --lines 1000000 2>/dev/null)
    # (A redis-cli the supervisor's SIGTERM to the group ended prints
    # nothing: not an authentication failure.)
    expect_eq "$(echo "$log" | grep -cE 'connect failed.*(WRONGPASS|NOAUTH|NOPERM|invalid)' || true)" "0" "$variant round $round: the worker saw 0 authentication failures ($(echo "$log" | grep -c 'connect ok') connections)"
    expect_match "$(rcli "$app" "$user" "$pw" PING)" "WRONGPASS|invalid" "$variant round $round: the old password is refused"
    expect_eq "$(rcli "$app" "$new_user" "$new_pw" GET "$key")" "before" "$variant round $round: the app's key is there"
    expect_eq "$(rcli "$app" "$new_user" "$new_pw" SET "$key:$round" x)" "OK" "$variant round $round: and it writes"
    if [ "$variant" = shared ]; then
      expect_match "$(rcli "$app" "$new_user" "$new_pw" SET other:k x)" "NOPERM" "$variant round $round: still only under its prefix"
    fi
    bad=$(invariant_violations)
    [ -z "$bad" ] && ok "$variant round $round: invariants hold" || fail "$variant round $round: $bad"
    user=$new_user pw=$new_pw
  done
done
miren addon destroy $RD -a rotrdshared -f --no-final-backup >/dev/null 2>&1
bad=$(invariant_violations)
[ -z "$bad" ] && ok "after the destroy of a rotated addon: invariants hold" || fail "after destroy: $bad"
finish
