#!/usr/bin/env bash
# miren-mysql small (MariaDB, MySQL-compatible): the example app deployed
# with a held start, env injection in the seed's shape, a real row written
# and read through DATABASE_URL, root kept by the platform, the app user
# limited to its database, supervision (kill -9), adoption across daemon
# restarts, removal by deleting the app.toml section, and the same through
# `miren addon create/destroy`.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib-mysql.sh"
start_server || exit 1
expect_match "$(miren addon list-available)" "miren-mysql +.*MySQL-compatible" "list-available shows miren-mysql as MySQL-compatible"
variants=$(miren addon variants miren-mysql)
expect_match "$variants" "^small +Dedicated MySQL-compatible server, MariaDB \(1 GB storage\) +yes" "small is its default variant"
expect_match "$variants" "^shared +Multi-app shared MySQL-compatible server" "shared is its other variant"
app=$(copy_example mysql-visits)

out=$(miren deploy -C "$app" 2>&1)
expect_match "$out" "Provisioning addon miren-mysql \(small\)\.\.\." "deploy shows provisioning progress"
expect_match "$out" "Addon miren-mysql ready" "and when the addon is ready"
url=$(service_url mysql-visits web)
wait_for "the app answers" 20 curl -fsS "$url"
expect_eq "$(curl -fsS "$url")" "Visits: 2" "a row is written and read through DATABASE_URL"
expect_eq "$(curl -fsS "$url")" "Visits: 3" "and counted again"
expect_no_match "$(miren logs -a mysql-visits)" "DATABASE_URL is missing" "the service never started before the addon was active"

expect_match "$(miren addon list -a mysql-visits)" "miren-mysql +small +active" "addon list shows the active addon"
env=$(miren env list -a mysql-visits)
expect_match "$env" "DATABASE_URL +\*+ +\(all\) +addon" "DATABASE_URL is injected and masked"
expect_match "$env" "MYSQL_PASSWORD +\*+ +\(all\) +addon" "MYSQL_PASSWORD is injected and masked"
expect_match "$env" "MYSQL_HOST +127\.$NET\.[0-9]+\.[0-9]+ +\(all\) +addon" "MYSQL_HOST is an address of the pool"
expect_match "$env" "MYSQL_PORT +3306 " "MYSQL_PORT is 3306"
expect_match "$env" "MYSQL_USER +mysql_visits " "MYSQL_USER comes from the app name"
expect_match "$env" "MYSQL_DATABASE +mysql_visits " "MYSQL_DATABASE comes from the app name"
dburl=$(miren env get -a mysql-visits DATABASE_URL --unmask)
if printf '%s' "$dburl" | grep -Eq "^mysql://mysql_visits:[A-Za-z0-9]{32}@127\.$NET\.[0-9.]+:3306/mysql_visits$"; then
  ok "DATABASE_URL has the shape mysql://user:pass@host:3306/db"
else
  fail "DATABASE_URL does not have the expected shape (value not shown: it holds a password)"
fi

disk=$(disk_of_app mysql-visits)
expect_match "$disk" "^mysql-mysql-mysql-visits-s[0-9a-f]+-data$" "the disk is named mysql-mysql-<app>-s<id>-data"
expect_match "$(miren debug disk list)" "$disk +1\.0 GiB +[0-9.]+ [KMG]iB +[0-9]+% +(ext4|dirs) +in use +addon miren-mysql \(app mysql-visits\)" "disk list shows it with size and usage"
host=$(miren env get -a mysql-visits MYSQL_HOST)
expect_eq "$(mysql_as mysql-visits -e "SELECT COUNT(*) FROM information_schema.USER_PRIVILEGES WHERE PRIVILEGE_TYPE <> 'USAGE'")" "0" "the app's user has no global privilege"
expect_eq "$(mysql_as mysql-visits -e "SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME NOT IN ('information_schema', 'mysql_visits')")" "0" "it sees no other database"
expect_exit "it cannot create another database" 1 mysql_as mysql-visits -e "CREATE DATABASE evil"
expect_exit "it cannot read the grant tables" 1 mysql_as mysql-visits -e "SELECT * FROM mysql.global_priv"
expect_exit "root cannot log in over TCP" 1 mysql_with "$host" root "" -e "SELECT 1"
expect_exit "nor an anonymous user" 1 mysql_with "$host" "" "" -e "SELECT 1"
expect_eq "$(stat -c %a "$DATA/disks/$disk/data")" "700" "the data directory is 0700"
pw=$(miren env get -a mysql-visits MYSQL_PASSWORD --unmask)
expect_eq "$(grep -rlF -- "$pw" "$DATA/logs" "$DATA/apps"/*/logs 2>/dev/null | wc -l)" "0" "the password is in no log file"

# A server that dies is restarted and the app reconnects.
pid=$(mariadbd_pid "$disk")
kill -9 "$pid"
wait_for "the server is restarted after kill -9" 30 sh -c "p=\$(head -n1 '$(mariadb_run_dir_of "$disk")/mysqld.pid' 2>/dev/null); [ -n \"\$p\" ] && [ \"\$p\" != $pid ] && kill -0 \$p"
wait_for "the app reconnects" 30 sh -c "curl -fsS '$url' | grep -q 'Visits: 4'"

# Daemon restarts adopt the running server: same process, no duplicate.
pid=$(mariadbd_pid "$disk")
stop_server
expect_eq "$(state_of "$pid")" "alive" "the database keeps running while the daemon is down"
start_server || exit 1
expect_eq "$(mariadbd_pid "$disk")" "$pid" "the restarted daemon adopts the same server"
kill_server
start_server || exit 1
expect_eq "$(mariadbd_pid "$disk")" "$pid" "after kill -9 of the daemon too"
expect_eq "$(mariadbd_count "$disk")" "1" "exactly one mariadbd runs for the disk"
wait_for "the app answers after the daemon restarts" 20 sh -c "curl -fsS '$(service_url mysql-visits web)' | grep -q Visits"

# Removing the section from app.toml deprovisions the addon.
sed -i '/addons.miren-mysql/,$d' "$app/.miren/app.toml"
sed -i 's/^command = .*/command = "exec sleep 100000"/' "$app/.miren/app.toml"
miren deploy -C "$app" >/dev/null 2>&1
wait_for "the addon is removed after the section is deleted" 60 sh -c "'$MIREN_BIN' addon list -a mysql-visits | grep -q 'has no addons'"
expect_eq "$(test -d "$DATA/disks/$disk" && echo yes || echo no)" "no" "its disk is deleted"
expect_eq "$(state_of "$pid")" "gone" "its server is stopped"
expect_no_match "$(miren env list -a mysql-visits)" "DATABASE_URL|MYSQL_" "its variables are gone"

# The CLI path: addon create / destroy.
out=$(miren addon create miren-mysql -a mysql-visits 2>&1)
expect_match "$(miren addon list -a mysql-visits)" "miren-mysql +small +active" "miren addon create makes a small server (the default)"
disk=$(disk_of_app mysql-visits)
pid=$(mariadbd_pid "$disk")
expect_eq "$(mysql_as mysql-visits -e 'SELECT DATABASE()')" "mysql_visits" "its user reaches its database"
miren addon destroy miren-mysql -a mysql-visits -f >/dev/null 2>&1
wait_for "miren addon destroy removes it" 60 sh -c "'$MIREN_BIN' addon list -a mysql-visits | grep -q 'has no addons'"
expect_eq "$(test -d "$DATA/disks/$disk" && echo yes || echo no)" "no" "with its disk"
expect_eq "$(state_of "$pid")" "gone" "and its server"
finish
