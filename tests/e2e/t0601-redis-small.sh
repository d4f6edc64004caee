#!/usr/bin/env bash
# miren-redis small: held start, env injection, the example app counting
# visits through REDIS_URL, the app user's rights (no admin commands, the
# default user off), secrets on disk hashed and 0600, supervision,
# adoption across daemon restarts, and removal.
. "$(dirname "$0")/lib.sh"
start_server || exit 1
app=$(copy_example redis-visits)

out=$(miren deploy -C "$app" 2>&1)
expect_match "$out" "Provisioning addon miren-redis \(small\)\.\.\." "deploy shows provisioning progress"
expect_match "$out" "Addon miren-redis ready" "and when the addon is ready"
url=$(service_url redis-visits web)
wait_for "the app answers" 20 curl -fsS "$url"
expect_eq "$(curl -fsS "$url")" "Visits: 2" "a key is written and read through REDIS_URL"
expect_eq "$(curl -fsS "$url")" "Visits: 3" "and counted again"
expect_no_match "$(miren logs -a redis-visits)" "REDIS_URL is missing" "the service never started before the addon was active"

expect_match "$(miren addon list -a redis-visits)" "miren-redis +small +active" "addon list shows the active addon"
env=$(miren env list -a redis-visits)
expect_match "$env" "REDIS_URL +\*+ +\(all\) +addon" "REDIS_URL is injected and masked"
expect_match "$env" "REDIS_PASSWORD +\*+ +\(all\) +addon" "REDIS_PASSWORD is injected and masked"
expect_match "$env" "REDIS_HOST +127\.$NET\.[0-9]+\.[0-9]+ +\(all\) +addon" "REDIS_HOST is an address of the pool"
expect_match "$env" "REDIS_PORT +6379 " "REDIS_PORT is 6379"
expect_match "$env" "REDIS_USERNAME +redis-visits " "REDIS_USERNAME is the app name"
expect_no_match "$env" "REDIS_PREFIX" "no REDIS_PREFIX on small"
rurl=$(miren env get -a redis-visits REDIS_URL --unmask)
if printf '%s' "$rurl" | grep -Eq "^redis://redis-visits:[A-Za-z0-9]{32}@127\.$NET\.[0-9.]+:6379/0$"; then
  ok "REDIS_URL has the shape redis://user:pass@host:6379/0"
else
  fail "REDIS_URL does not have the expected shape (value not shown: it holds a password)"
fi

host=$(miren env get -a redis-visits REDIS_HOST)
pw=$(miren env get -a redis-visits REDIS_PASSWORD --unmask)
rc() { REDISCLI_AUTH="$pw" redis-cli --no-auth-warning -h "$host" -p 6379 --user redis-visits "$@" 2>&1; }
expect_eq "$(rc GET visits)" "3" "the app's key is in the server"
expect_match "$(rc CONFIG GET maxmemory)" "NOPERM" "the app user cannot run CONFIG"
expect_match "$(rc SHUTDOWN NOSAVE)" "NOPERM" "nor SHUTDOWN"
expect_match "$(rc ACL LIST)" "NOPERM" "nor ACL"
expect_match "$(rc MONITOR)" "NOPERM" "nor MONITOR"
expect_match "$(redis-cli -h "$host" -p 6379 GET visits 2>&1)" "NOAUTH" "without a login nothing is answered (default user off)"
expect_match "$(redis-cli -h "$host" -p 6379 AUTH default x 2>&1)" "WRONGPASS" "the default user cannot log in"

disk=$(disk_of_app redis-visits)
expect_match "$disk" "^redis-redis-redis-visits-s[0-9a-f]+-data$" "the disk is named redis-redis-<app>-s<id>-data"
expect_match "$(miren debug disk list)" "$disk +1\.0 GiB .* in use +addon miren-redis \(app redis-visits\)" "disk list shows it"
expect_eq "$(stat -c %a "$DATA/disks/$disk/users.acl") $(stat -c %a "$DATA/disks/$disk/redis.conf")" "600 600" "the ACL and config files are 0600"
expect_eq "$(grep -cF -- "$pw" "$DATA/disks/$disk/users.acl")" "0" "the ACL file does not hold the password"
expect_eq "$(grep -c "$(printf '%s' "$pw" | sha256sum | cut -c1-64)" "$DATA/disks/$disk/users.acl")" "1" "but its SHA-256"
expect_eq "$(grep -rlF -- "$pw" "$DATA/logs" "$DATA/apps"/*/logs 2>/dev/null | wc -l)" "0" "the password is in no log file"

# The server runs as the service user, and is restarted when it dies.
spid() { pgrep -f "^/usr/bin/redis-server $host:6379" | head -n1; }
p=$(spid)
[ "$(id -u)" = 0 ] && expect_eq "$(ps -o user= -p "$p")" "miren" "the server runs as the service user"
kill -9 "$p"
wait_for "the server is restarted after kill -9" 20 sh -c "p=\$(pgrep -f '^/usr/bin/redis-server $host:6379'); [ -n \"\$p\" ] && [ \"\$p\" != $p ]"
wait_for "the app counts on, from the append-only file" 20 sh -c "curl -fsS '$url' | grep -q 'Visits: 4'"

# Daemon restarts adopt the running server: same process, no duplicate.
p=$(spid)
stop_server
expect_eq "$(state_of "$p")" "alive" "the server keeps running while the daemon is down"
start_server || exit 1
expect_eq "$(spid)" "$p" "the restarted daemon adopts the same server"
kill_server
start_server || exit 1
expect_eq "$(spid)" "$p" "after kill -9 of the daemon too"
expect_eq "$(pgrep -fc "^/usr/bin/redis-server $host:6379")" "1" "exactly one server runs for the disk"
expect_match "$(miren addon list -a redis-visits)" "active" "the addon is still active"

# Removing the section from app.toml deprovisions the addon.
sed -i '/addons.miren-redis/,$d' "$app/.miren/app.toml"
sed -i 's/^command = .*/command = "exec sleep 100000"/' "$app/.miren/app.toml"
miren deploy -C "$app" >/dev/null 2>&1
wait_for "the addon is removed after the section is deleted" 30 sh -c "'$MIREN_BIN' addon list -a redis-visits | grep -q 'has no addons'"
expect_eq "$(test -d "$DATA/disks/$disk" && echo yes || echo no)" "no" "its disk is deleted"
expect_eq "$(state_of "$p")" "gone" "its server is stopped"
expect_no_match "$(miren env list -a redis-visits)" "REDIS_" "its variables are gone"

# The same through the CLI.
out=$(miren addon create miren-redis -a redis-visits 2>&1)
expect_match "$out" "Addon miren-redis \(small\) is active on redis-visits" "addon create without variant uses small"
disk2=$(disk_of_app redis-visits)
expect_eq "$(miren env get -a redis-visits REDIS_USERNAME)" "redis-visits" "the new addon injects its env"
out=$(miren addon destroy miren-redis -a redis-visits -f 2>&1)
expect_match "$out" "Destroyed addon miren-redis of redis-visits" "addon destroy -f removes it"
expect_eq "$(test -d "$DATA/disks/$disk2" && echo yes || echo no)" "no" "and deletes its data"
finish
