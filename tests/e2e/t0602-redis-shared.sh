#!/usr/bin/env bash
# miren-redis shared: one server, an ACL user per app limited to keys and
# channels under "<app>:" (REDIS_PREFIX); a tenant can neither read, write,
# list nor delete another's keys, and administrative and server-wide
# commands are refused; the server made on first use and removed with its
# last tenant; a tenant's keys go with it.
. "$(dirname "$0")/lib.sh"
start_server || exit 1
mkapp() {
  mkdir -p "$TMP/$1/.miren"
  cat > "$TMP/$1/.miren/app.toml" <<TOML
name = "$1"
[services.web]
command = "test -n \"\$REDIS_URL\" || exit 1; exec sleep 100000"
[addons.miren-redis]
variant = "shared"
TOML
  miren deploy -C "$TMP/$1" 2>&1
}
out=$(mkapp alpha)
expect_match "$out" "Provisioning addon miren-redis \(shared\)" "deploy provisions a shared addon"
expect_match "$out" "Addon miren-redis ready" "which becomes ready"
out=$(mkapp beta)
expect_match "$out" "Addon miren-redis ready" "a second app joins the shared server"
expect_eq "$(miren env get -a alpha REDIS_HOST)" "$(miren env get -a beta REDIS_HOST)" "both apps use one server"
expect_eq "$(miren debug disk list --format json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')" "1" "there is one disk"
disk=$(disk_of_app alpha)
expect_match "$disk" "^redis-shared-data-[0-9a-f]{8}$" "named redis-shared-data-<8 hex>"
expect_match "$(miren debug disk list)" "$disk +10\.0 GiB" "sized 10 GiB"
expect_eq "$(miren env get -a alpha REDIS_PREFIX)" "alpha:" "alpha's prefix is alpha:"
expect_eq "$(miren env get -a beta REDIS_USERNAME)" "beta" "beta has its own user"
expect_match "$(miren env list -a alpha)" "REDIS_PREFIX +alpha: +\(all\) +addon" "REDIS_PREFIX is injected"
expect_match "$(miren addon list -a alpha)" "miren-redis +shared +active" "addon list shows it"
expect_match "$(miren app status -a alpha)" "web +(starting|running)" "alpha's service runs with its env"

host=$(miren env get -a alpha REDIS_HOST)
as() { local app=$1; shift
  REDISCLI_AUTH="$(miren env get -a "$app" REDIS_PASSWORD --unmask)" \
    redis-cli --no-auth-warning -h "$host" -p 6379 --user "$app" "$@" 2>&1; }
expect_eq "$(as beta SET beta:secret 42)" "OK" "beta writes under its prefix"
expect_eq "$(as alpha SET alpha:mine 1)" "OK" "alpha writes under its prefix"
expect_eq "$(as alpha GET alpha:mine)" "1" "and reads it"
expect_match "$(as alpha SET mine 1)" "NOPERM" "alpha cannot write outside its prefix"
set -f # the commands hold '*': no globbing
for c in "GET beta:secret" "SET beta:secret 0" "DEL beta:secret" "EXPIRE beta:secret 1" \
         "RENAME alpha:mine beta:x" "SUBSCRIBE beta:chan" "PUBLISH beta:chan x"; do
  # shellcheck disable=SC2086 # $c is a command and its arguments
  expect_match "$(as alpha $c)" "NOPERM" "alpha cannot $c"
done
for c in "KEYS *" "SCAN 0" "SCAN 0 MATCH alpha:*" "RANDOMKEY" "DBSIZE" "FLUSHDB" "FLUSHALL" \
         "CONFIG GET *" "SHUTDOWN NOSAVE" "MODULE LIST" "ACL LIST" "SELECT 1" "SWAPDB 0 1" \
         "OBJECT ENCODING alpha:mine" "CLIENT LIST" "INFO" "PUBSUB CHANNELS" "MIGRATE 127.0.0.1 1 k 0 1"; do
  # shellcheck disable=SC2086 # $c is a command and its arguments
  expect_match "$(as alpha $c)" "NOPERM" "alpha is refused $c"
done
set +f
expect_match "$(as alpha DEBUG SLEEP 0)" "DEBUG command not allowed" "DEBUG is off"
expect_eq "$(as beta GET beta:secret)" "42" "beta's key is untouched"
expect_match "$(REDISCLI_AUTH="$(miren env get -a alpha REDIS_PASSWORD --unmask)" redis-cli --no-auth-warning -h "$host" --user beta PING 2>&1)" "WRONGPASS" "alpha's password does not open beta's user"

p=$(pgrep -f "^/usr/bin/redis-server $host:6379")
miren addon destroy miren-redis -a alpha -f >/dev/null
expect_eq "$(state_of "$p")" "alive" "the shared server stays while beta uses it"
expect_match "$(as beta PING)" "PONG" "beta logs in"
expect_match "$(REDISCLI_AUTH=x redis-cli --no-auth-warning -h "$host" --user alpha PING 2>&1)" "WRONGPASS" "alpha's user is gone"
admin_pw=$(sqlite3 "$DATA/miren.db" "SELECT json_extract(state_json,'\$.admin_password') FROM servers")
expect_eq "$(REDISCLI_AUTH="$admin_pw" redis-cli --no-auth-warning -h "$host" --user miren_admin --scan --pattern 'alpha:*' | wc -l)" "0" "alpha's keys are deleted"
expect_eq "$(as beta GET beta:secret)" "42" "beta still works"
miren app destroy beta -f >/dev/null
wait_for "the shared server goes with its last tenant" 30 sh -c "! kill -0 $p 2>/dev/null || grep -q Z /proc/$p/stat"
wait_for "and so does its disk" 30 sh -c "[ ! -d '$DATA/disks/$disk' ]"
expect_eq "$(miren debug disk list --format json)" "[]" "disk list is empty"

out=$(mkapp gamma)
expect_match "$out" "Addon miren-redis ready" "a new shared server is made on next use"
expect_no_match "$(disk_of_app gamma)" "^$disk$" "with a new disk"

# The example app on the shared variant: it counts under REDIS_PREFIX.
app=$(copy_example redis-visits)
sed -i 's/^variant = "small"/variant = "shared"/' "$app/.miren/app.toml"
out=$(miren deploy -C "$app" 2>&1)
expect_match "$out" "Addon miren-redis ready" "the example deploys on shared"
url=$(service_url redis-visits web)
wait_for "the example answers" 20 curl -fsS "$url"
expect_eq "$(curl -fsS "$url")" "Visits: 2" "and counts through REDIS_URL under its prefix"
expect_eq "$(as redis-visits GET redis-visits:visits)" "2" "its key is redis-visits:visits"
finish
