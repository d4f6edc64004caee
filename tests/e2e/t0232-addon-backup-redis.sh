#!/usr/bin/env bash
# miren addon backup / restore of miren-redis, small and shared: the app's
# keys at the backup come back after a change (keys added since are gone),
# from the stored backup and from its file; the app keeps its password; a
# neighbour on the shared server keeps its keys.
. "$(dirname "$0")/lib.sh"
start_server || exit 1
mkapp() {
  mkdir -p "$TMP/$1/.miren"
  cat > "$TMP/$1/.miren/app.toml" <<TOML
name = "$1"
[services.web]
command = "exec sleep 100000"
[addons.miren-redis]
variant = "$2"
TOML
  miren deploy -C "$TMP/$1" >/dev/null 2>&1
}
as() { local app=$1; shift
  REDISCLI_AUTH="$(miren env get -a "$app" REDIS_PASSWORD --unmask)" \
    redis-cli --no-auth-warning -h "$(miren env get -a "$app" REDIS_HOST)" -p 6379 --user "$app" "$@" 2>&1; }
# Which of the keys a, list, new, k, k2 under the app's prefix exist.
keys() { local k out=""
  for k in a list new k k2; do [ "$(as "$1" EXISTS "$1:$k")" = 1 ] && out="$out$1:$k "; done
  echo "$out"; }

for variant in small shared; do
  app=rd$variant
  mkapp "$app" "$variant"
  as "$app" SET "$app:a" 1 > /dev/null
  as "$app" RPUSH "$app:list" x y > /dev/null
  out=$(miren addon backup miren-redis -a "$app" -o "$TMP/$app.miren.zst" 2>&1)
  expect_eq "$?" "0" "$variant: addon backup -o FILE succeeds: $(echo "$out" | head -n 3 | tr '\n' ' ')"
  id=$(echo "$out" | head -n 1)
  as "$app" DEL "$app:a" > /dev/null
  as "$app" SET "$app:new" 1 > /dev/null
  expect_eq "$(keys "$app")" "$app:list $app:new " "$variant: the keys changed"
  pw=$(miren env get -a "$app" REDIS_PASSWORD --unmask)
  out=$(miren addon restore miren-redis -a "$app" --backup "$id" 2>&1)
  expect_eq "$?" "0" "$variant: restore --backup ID succeeds: $(echo "$out" | tr '\n' ' ')"
  wait_for "$variant: the server answers" 20 sh -c "[ \"\$(REDISCLI_AUTH='$pw' redis-cli --no-auth-warning -h $(miren env get -a "$app" REDIS_HOST) --user $app PING)\" = PONG ]"
  want="$app:a $app:list "
  expect_eq "$(keys "$app")" "$want" "$variant: the keys are as at the backup"
  expect_eq "$(as "$app" LRANGE "$app:list" 0 -1 | tr '\n' ' ')" "x y " "$variant: with their values"
  expect_eq "$(miren env get -a "$app" REDIS_PASSWORD --unmask)" "$pw" "$variant: the app keeps its password"
  as "$app" DEL "$app:a" "$app:list" > /dev/null
  out=$(miren addon restore miren-redis -a "$app" -s "$TMP/$app.miren.zst" 2>&1)
  expect_eq "$?" "0" "$variant: restore -s FILE succeeds: $(echo "$out" | tr '\n' ' ')"
  wait_for "$variant: the server answers again" 20 sh -c "[ \"\$(REDISCLI_AUTH='$pw' redis-cli --no-auth-warning -h $(miren env get -a "$app" REDIS_HOST) --user $app PING)\" = PONG ]"
  expect_eq "$(keys "$app")" "$want" "$variant: from the file too"
done

mkapp other shared
as other SET other:k 7 > /dev/null
id=$(miren addon backup miren-redis -a rdshared | head -n 1)
as other SET other:k2 8 > /dev/null
miren addon restore miren-redis -a rdshared --backup "$id" > /dev/null 2>&1
expect_eq "$(keys other)" "other:k other:k2 " "a neighbour on the shared server keeps its keys"

[ -z "$(invariant_violations)" ] && ok "invariants hold" || fail "invariants: $(invariant_violations)"
finish
