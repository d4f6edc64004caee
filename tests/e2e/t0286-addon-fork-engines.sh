#!/usr/bin/env bash
# miren addon fork of the other engines, from now: MariaDB (small into
# shared, shared into small) and Redis (shared into small, small into
# shared: keys keep their names under the new app's prefix); each fork
# holds the data, has its own credentials, and writes after the fork
# stay on their side.  --at, which needs point-in-time recovery, is
# refused for both, changing nothing.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib-mysql.sh"
MY=miren-mysql RD=miren-redis

write_redis_app() {
  mkdir -p "$TMP/$1/.miren"
  printf 'name = "%s"\n[services.web]\ncommand = "exec sleep 100000"\n[addons.miren-redis]\nvariant = "%s"\n' "$1" "$2" > "$TMP/$1/.miren/app.toml"
}
# redis-cli as the app (its unmasked env), keys named without the prefix.
redis_as() {
  local app=$1; shift
  REDISCLI_AUTH="$(miren env get -a "$app" REDIS_PASSWORD --unmask)" \
    redis-cli --no-auth-warning -h "$(miren env get -a "$app" REDIS_HOST)" -p 6379 \
    --user "$(miren env get -a "$app" REDIS_USERNAME)" "$@" 2>&1
}
pfx() { miren env get -a "$1" REDIS_PREFIX 2>/dev/null; }
rows() { mysql_as "$1" -e "SELECT GROUP_CONCAT(v ORDER BY v) FROM t"; }

start_server || exit 1
for a in mysrc mysh; do
  write_mysql_app "$a" "$([ $a = mysrc ] && echo small || echo shared)"
  miren deploy -C "$TMP/$a" >/dev/null 2>&1
  mysql_as "$a" -e "CREATE TABLE t (v varchar(40)); INSERT INTO t VALUES ('$a-before')"
done
write_redis_app rsh shared; miren deploy -C "$TMP/rsh" >/dev/null 2>&1
write_redis_app rsmall small; miren deploy -C "$TMP/rsmall" >/dev/null 2>&1
redis_as rsh SET "$(pfx rsh)greeting" hello >/dev/null
redis_as rsh RPUSH "$(pfx rsh)list" a b c >/dev/null
redis_as rsmall SET counter 41 >/dev/null
for a in mydst mydst2 rdst rdst2 nodst; do deploy_plain_app "$a"; done

# MariaDB small -> shared
miren addon fork $MY -a mysrc --to mydst --variant shared >/dev/null 2>&1
expect_eq "$?" "0" "MariaDB: fork a small server's data into a shared tenant"
expect_eq "$(miren addon list -a mydst --format json | jq -r '.[0].status + " " + .[0].variant')" "active shared" "  mydst's addon is active, shared"
expect_eq "$(rows mydst)" "mysrc-before" "  with mysrc's rows"
[ "$(miren env get -a mydst MYSQL_USER)" != "$(miren env get -a mysrc MYSQL_USER)" ] && ok "  as its own user" || fail "  mydst uses mysrc's user"
mysql_as mysrc -e "INSERT INTO t VALUES ('mysrc-after')"
mysql_as mydst -e "INSERT INTO t VALUES ('mydst-after')"
expect_eq "$(rows mysrc)" "mysrc-after,mysrc-before" "  mysrc sees its write, not mydst's"
expect_eq "$(rows mydst)" "mydst-after,mysrc-before" "  mydst sees its write, not mysrc's"
# MariaDB shared -> small (the default would be shared)
miren addon fork $MY -a mysh --to mydst2 --variant small >/dev/null 2>&1
expect_eq "$?" "0" "MariaDB: fork a shared tenant into a small server"
expect_eq "$(rows mydst2)" "mysh-before" "  with mysh's rows"

# Redis shared -> small: the keys under rsh's prefix become rdst's keys.
miren addon fork $RD -a rsh --to rdst --variant small >/dev/null 2>&1
expect_eq "$?" "0" "Redis: fork a shared tenant into a small server"
expect_eq "$(redis_as rdst GET "$(pfx rdst)greeting")" "hello" "  rdst has the string"
expect_eq "$(redis_as rdst LRANGE "$(pfx rdst)list" 0 -1 | tr '\n' ' ')" "a b c " "  and the list"
redis_as rdst SET "$(pfx rdst)greeting" changed >/dev/null
redis_as rsh SET "$(pfx rsh)only-rsh" 1 >/dev/null
expect_eq "$(redis_as rsh GET "$(pfx rsh)greeting")" "hello" "  a write in rdst does not reach rsh"
expect_eq "$(redis_as rdst EXISTS "$(pfx rdst)only-rsh")" "0" "  a write in rsh does not reach rdst"
# Redis small -> shared (the default variant small; --variant shared)
miren addon fork $RD -a rsmall --to rdst2 --variant shared >/dev/null 2>&1
expect_eq "$?" "0" "Redis: fork a small server's keys into a shared tenant"
expect_eq "$(pfx rdst2)" "rdst2:" "  rdst2 has its own prefix"
expect_eq "$(redis_as rdst2 INCR "$(pfx rdst2)counter")" "42" "  with rsmall's counter under it"
expect_eq "$(redis_as rsmall GET counter)" "41" "  rsmall's counter is unchanged"

# --at needs point-in-time recovery.
expect_exit "MariaDB: --at is refused" 6 miren addon fork $MY -a mysrc --to nodst --at 1m-ago
expect_match "$(cat "$TMP/err")" "forking from a point in time \(--at\) is not supported by addon 'miren-mysql'" "  saying so"
expect_match "$(cat "$TMP/err")" "hint: leave out --at" "  with what to do"
expect_exit "Redis: --at is refused" 6 miren addon fork $RD -a rsh --to nodst --at 1m-ago
expect_eq "$(miren addon list -a nodst --format json | jq length)" "0" "  nodst has no addon"

expect_eq "$(invariant_violations)" "" "the invariants hold"
finish
