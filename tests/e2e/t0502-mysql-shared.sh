#!/usr/bin/env bash
# miren-mysql shared (MariaDB, MySQL-compatible): one server, a database
# and user per app, isolation by grants (no app can see, connect to, read
# or write another's database, nor do anything global), the server made on
# first use and removed with its last tenant; apps both from app.toml and
# from `miren addon create`.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib-mysql.sh"
start_server || exit 1
mkapp() {
  write_mysql_app "$1" shared
  miren deploy -C "$TMP/$1" 2>&1
}
out=$(mkapp alpha)
expect_match "$out" "Provisioning addon miren-mysql \(shared\)" "deploy provisions a shared addon"
mkapp beta >/dev/null
# (the deploy may find the tenant active before it reports progress)
wait_for "a second app joins the shared server" 30 sh -c "'$MIREN_BIN' addon list -a beta | grep -q 'miren-mysql  *shared  *active'"
expect_eq "$(miren env get -a alpha MYSQL_HOST)" "$(miren env get -a beta MYSQL_HOST)" "both apps use one server"
expect_eq "$(miren debug disk list --format json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')" "1" "there is one disk"
disk=$(disk_of_app alpha)
expect_match "$disk" "^mysql-shared-data-[0-9a-f]{8}$" "named mysql-shared-data-<8 hex>"
expect_match "$(miren debug disk list)" "$disk +10\.0 GiB " "sized 10 GiB"
expect_eq "$(miren env get -a alpha MYSQL_DATABASE)" "alpha" "alpha has its own database"
expect_eq "$(miren env get -a beta MYSQL_USER)" "beta" "beta has its own user"
expect_match "$(miren app status -a alpha)" "web +(starting|running)" "alpha's service runs with its env"

mysql_as alpha -e "CREATE TABLE secrets (v TEXT); INSERT INTO secrets VALUES ('alpha-only')"
mysql_as beta -e "CREATE TABLE notes (v TEXT); INSERT INTO notes VALUES ('beta-only')"
expect_eq "$(mysql_as alpha -e 'SELECT v FROM secrets')" "alpha-only" "alpha reads its own data"
host=$(miren env get -a alpha MYSQL_HOST)
apw=$(miren env get -a alpha MYSQL_PASSWORD --unmask)
bpw=$(miren env get -a beta MYSQL_PASSWORD --unmask)
expect_exit "alpha cannot connect to beta's database" 1 mysql_with "$host" alpha "$apw" -D beta -e "SELECT 1"
expect_match "$(cat "$TMP/err")" "Access denied for user 'alpha'@'%' to database 'beta'" "  (access denied to database 'beta')"
expect_exit "beta cannot connect to alpha's database" 1 mysql_with "$host" beta "$bpw" -D alpha -e "SELECT 1"
expect_exit "alpha's password does not open beta's user" 1 mysql_with "$host" beta "$apw" -e "SELECT 1"
expect_exit "alpha cannot read beta's table" 1 mysql_as alpha -e "SELECT v FROM beta.notes"
expect_match "$(cat "$TMP/err")" "command denied to user 'alpha'" "  (SELECT command denied)"
expect_exit "alpha cannot write beta's table" 1 mysql_as alpha -e "INSERT INTO beta.notes VALUES ('from alpha')"
expect_exit "alpha cannot drop beta's table" 1 mysql_as alpha -e "DROP TABLE beta.notes"
expect_exit "alpha cannot switch to beta's database" 1 mysql_as alpha -e "USE beta"
expect_eq "$(mysql_as alpha -e "SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = 'beta'")" "0" "alpha does not see beta's database"
expect_eq "$(mysql_as alpha -e "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = 'beta'")" "0" "nor its tables"
expect_eq "$(mysql_as alpha -e "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE USER <> 'alpha'")" "0" "nor other tenants' sessions"
expect_exit "alpha cannot create databases" 1 mysql_as alpha -e "CREATE DATABASE evil"
expect_exit "alpha cannot create users" 1 mysql_as alpha -e "CREATE USER evil IDENTIFIED BY 'x'"
expect_exit "alpha cannot grant beta anything" 1 mysql_as alpha -e "GRANT SELECT ON alpha.* TO beta"
expect_exit "alpha cannot read the grant tables (beta's password hash)" 1 mysql_as alpha -e "SELECT authentication_string FROM mysql.user"
expect_exit "alpha cannot change server settings" 1 mysql_as alpha -e "SET GLOBAL max_connections = 1"
expect_exit "alpha cannot shut the server down" 1 mysql_as alpha -e "SHUTDOWN"
expect_exit "alpha cannot kill beta's sessions" 1 mysql_as alpha -e "KILL 1"
expect_eq "$(mysql_as alpha -e "SELECT LOAD_FILE('/etc/passwd') IS NULL")" "1" "alpha cannot read server files"
expect_eq "$(mysql_as beta -e 'SELECT v FROM notes')" "beta-only" "beta's data is untouched"

# A third tenant from the CLI joins the same server.
mkdir -p "$TMP/gamma/.miren"
printf 'name = "gamma"\n[services.web]\ncommand = "exec sleep 100000"\n' > "$TMP/gamma/.miren/app.toml"
miren deploy -C "$TMP/gamma" >/dev/null 2>&1
out=$(miren addon create miren-mysql:shared -a gamma 2>&1)
expect_match "$(miren addon list -a gamma)" "miren-mysql +shared +active" "miren addon create adds a shared tenant"
expect_eq "$(miren env get -a gamma MYSQL_HOST)" "$host" "on the same server"
miren addon destroy miren-mysql -a gamma -f >/dev/null 2>&1
wait_for "miren addon destroy removes the tenant" 30 sh -c "'$MIREN_BIN' addon list -a gamma 2>/dev/null | grep -q 'has no addons'"

pid=$(mariadbd_pid "$disk")
miren addon destroy miren-mysql -a alpha -f >/dev/null
expect_eq "$(state_of "$pid")" "alive" "the shared server stays while beta uses it"
expect_exit "alpha's user is gone" 1 mysql_with "$host" alpha "$apw" -e "SELECT 1"
expect_eq "$(mysql_as beta -e "SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME IN ('alpha', 'gamma')")" "0" "alpha's and gamma's databases are gone"
expect_eq "$(mysql_as beta -e 'SELECT 1')" "1" "beta still works"
miren app destroy beta -f >/dev/null
wait_for "the shared server goes with its last tenant" 60 sh -c "! kill -0 $pid 2>/dev/null || grep -q Z /proc/$pid/stat"
wait_for "and so does its disk" 30 sh -c "[ ! -d '$DATA/disks/$disk' ]"
expect_eq "$(miren debug disk list --format json)" "[]" "disk list is empty"

out=$(mkapp delta)
expect_match "$out" "Provisioning addon miren-mysql \(shared\)" "a new shared server is made on next use"
wait_for "and is active" 30 sh -c "'$MIREN_BIN' addon list -a delta | grep -q 'miren-mysql  *shared  *active'"
expect_no_match "$(disk_of_app delta)" "^$disk$" "with a new disk"
finish
