#!/usr/bin/env bash
# miren-mysql after a simulated reboot: the daemon and every mariadbd die
# with -9 and the servers' run directories (socket, pid file; under /run or
# /tmp, emptied by a reboot) vanish; one small server's pid file is then
# put back naming a live process of the service user that is not a
# mariadbd.  The next daemon must start both servers again (small and
# shared) on their data, leave that process alone, and hold its invariants;
# the apps' rows are all there.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib-mysql.sh"
start_server || exit 1
write_mysql_app sm small; miren deploy -C "$TMP/sm" >/dev/null 2>&1
write_mysql_app sh shared; miren deploy -C "$TMP/sh" >/dev/null 2>&1
for a in sm sh; do
  mysql_as "$a" -e "CREATE TABLE t (i INT); INSERT INTO t VALUES (1), (2), (3)"
done
dsm=$(disk_of_app sm); dsh=$(disk_of_app sh)
psm=$(mariadbd_pid "$dsm"); psh=$(mariadbd_pid "$dsh")
[ -n "$psm" ] && [ -n "$psh" ] && ok "two servers run" || fail "no two servers"

kill_server
kill -KILL "$psm" "$psh"
wait_for "both mariadbd are gone" 10 sh -c "! kill -0 $psm 2>/dev/null && ! kill -0 $psh 2>/dev/null"
rm -rf "$(mariadb_run_dir_of "$dsm")" "$(mariadb_run_dir_of "$dsh")"
# A stale pid file naming a live process of the service user.
runuser -u miren -- sleep 1000 & u1=$!
sleep 0.3
s1=$(pgrep -P "$u1" -x sleep || echo "$u1")
CLEANUP_HOOKS="kill -KILL $u1 $s1 2>/dev/null;"
mkdir -p "$(mariadb_run_dir_of "$dsm")"
echo "$s1" > "$(mariadb_run_dir_of "$dsm")/mysqld.pid"

start_server || exit 1
wait_for "the small server answers again" 60 mysql_as sm -e "SELECT 1"
wait_for "the shared server answers again" 60 mysql_as sh -e "SELECT 1"
expect_eq "$(mysql_as sm -e 'SELECT COUNT(*) FROM t')" "3" "the small server's rows are there"
expect_eq "$(mysql_as sh -e 'SELECT COUNT(*) FROM t')" "3" "the shared server's rows are there"
expect_eq "$(state_of "$s1")" "alive" "the process the stale pid file named was not touched"
expect_match "$(miren addon list -a sm)" "miren-mysql +small +active" "the small addon is active"
expect_match "$(miren addon list -a sh)" "miren-mysql +shared +active" "the shared addon is active"
expect_eq "$(invariant_violations)" "" "no invariant is violated"
finish
