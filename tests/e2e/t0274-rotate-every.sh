#!/usr/bin/env bash
# rotate_every = "1m" in an addon's app.toml section: the scheduler rotates
# the app's credentials once they are a minute old (the env changes, the
# old password is refused, the worker reconnecting with the env sees no
# authentication failure); a bad value is refused at deploy.
. "$(dirname "$0")/lib.sh"
export MIREN_BACKUP_TICK_MS=1000
start_server || exit 1
RD=miren-redis
# shellcheck disable=SC2016  # expanded by the worker
RD_CHECK='r=$(REDISCLI_AUTH=$REDIS_PASSWORD redis-cli -h "$REDIS_HOST" -p "$REDIS_PORT" --user "$REDIS_USERNAME" --no-auth-warning PING); [ "$r" = PONG ] || { echo "$r"; false; }'

app=rotevery
write_reconnect_app "$app" $RD small "$RD_CHECK"
echo 'rotate_every = "2x"' >> "$TMP/$app/.miren/app.toml"
out=$(miren deploy -C "$TMP/$app" 2>&1)
expect_eq "$?" "6" "rotate_every = \"2x\" is refused at deploy: $(echo "$out" | head -n 2 | tr '\n' ' ')"
expect_match "$out" "rotate_every" "  naming the key"
sed -i 's/^rotate_every = .*/rotate_every = "10s"/' "$TMP/$app/.miren/app.toml"
expect_match "$(miren deploy -C "$TMP/$app" 2>&1)" "from 1 minute to 366 days" "rotate_every under a minute is refused"
sed -i 's/^rotate_every = .*/rotate_every = "1m"/' "$TMP/$app/.miren/app.toml"
miren deploy -C "$TMP/$app" >/dev/null 2>&1
expect_eq "$?" "0" "rotate_every = \"1m\" deploys"
pw=$(miren env get -a "$app" REDIS_PASSWORD --unmask)
user=$(miren env get -a "$app" REDIS_USERNAME)
issued=$(miren addon list -a "$app" --format json | jq -r '.[0].credentials_issued_at')
wait_for "the credentials are rotated on schedule within 100 s" 100 \
  sh -c "[ \"\$('$MIREN_BIN' env get -a $app REDIS_PASSWORD --unmask)\" != '$pw' ] && ! '$MIREN_BIN' addon list -a $app --format json | grep -q unfinished"
now_issued=$(miren addon list -a "$app" --format json | jq -r '.[0].credentials_issued_at')
[ "$((now_issued - issued))" -ge 60 ] && ok "credentials_issued_at moved by a minute or more" || fail "credentials_issued_at $issued -> $now_issued"
expect_match "$(grep "credentials of $RD rotated on schedule" "$DATA/logs/server.log")" "rotate_every" "the scheduled rotation is logged"
sleep 1
log=$(miren logs -a "$app" --lines 1000000 2>/dev/null)
expect_eq "$(echo "$log" | grep -cE 'connect failed.*(WRONGPASS|NOAUTH|NOPERM|invalid)' || true)" "0" "the worker saw 0 authentication failures ($(echo "$log" | grep -c 'connect ok') connections)"
expect_match "$(REDISCLI_AUTH=$pw redis-cli -h "$(miren env get -a "$app" REDIS_HOST)" --user "$user" --no-auth-warning PING 2>&1)" "WRONGPASS|invalid" "the old password is refused"
bad=$(invariant_violations)
[ -z "$bad" ] && ok "invariants hold" || fail "$bad"
finish
