#!/usr/bin/env bash
# What a reboot or a power loss leaves behind: the daemon and every
# postmaster killed with -9, the database socket directory under /run gone,
# a postmaster.pid naming a live process of the service user (pids are
# reused; app services run as that user), and the supervisor's pid files
# naming pids that now belong to other processes (one with a start time
# that differs, one written in an earlier boot).  The next daemon starts the
# addon server again, the app answers with its data, and the processes the
# stale files name are left alone.
. "$(dirname "$0")/lib.sh"
start_server || exit 1
app=$(copy_example python-visits)
miren deploy -C "$app" >/dev/null 2>&1 || fail "deploy"
url=$(service_url python-visits web)
wait_for "the app answers" 15 curl -fsS "$url"
curl -fsS "$url" >/dev/null
disk=$(disk_of_app python-visits)
srv=$(state_q '.servers[].id')
pm=$(postmaster_pid "$disk")
sockdir=$(sed -n 5p "$DATA/disks/$disk/pgdata/postmaster.pid")
[ -d "$sockdir" ] && ok "the socket directory is $sockdir" || fail "no socket directory in postmaster.pid"

# The power goes: nothing is stopped, nothing cleaned up.
kill_server
kill -KILL "$pm"
kill_supervised "$DATA"
wait_for "the postmaster is gone" 5 sh -c "! kill -0 $pm 2>/dev/null"
rm -rf "$sockdir"
# After the reboot, the pids the files name belong to others: processes of
# the service user, as an app service would be.
runuser -u miren -- sleep 1000 & u1=$!
runuser -u miren -- sleep 1000 & u2=$!
sleep 0.3
s1=$(pgrep -P "$u1" -x sleep || echo "$u1"); s2=$(pgrep -P "$u2" -x sleep || echo "$u2")
CLEANUP_HOOKS="kill -KILL $u1 $u2 $s1 $s2 2>/dev/null;"
sed -i "1s/.*/$s1/" "$DATA/disks/$disk/pgdata/postmaster.pid"
st1=$(awk '{print $22}' "/proc/$s1/stat")
st2=$(awk '{print $22}' "/proc/$s2/stat")
boot=$(cat /proc/sys/kernel/random/boot_id)
# The addon server's pid file: this boot, but the start time differs.
printf '%s %s %s 1 %s addon/%s\n' "$s1" "$((st1 + 7))" "$s1" "$boot" "$srv" > "$DATA/run/addon_$srv.pid"
# The web service's: pid and start time match, the boot does not.
printf '%s %s %s 0 00000000-0000-0000-0000-000000000000 app/python-visits/web\n' \
  "$s2" "$st2" "$s2" > "$DATA/run/app_python-visits_web.pid"

start_server || exit 1
wait_for "the addon is active again" 30 sh -c "'$MIREN_BIN' addon list -a python-visits | grep -q ' active'"
url=$(service_url python-visits web)
wait_for "the app answers again" 30 curl -fsS "$url"
expect_match "$(curl -fsS "$url")" "^Visits: [0-9]+$" "with its data"
n=$(curl -fsS "$url" | sed 's/Visits: //')
[ "$n" -ge 4 ] && ok "the count went on ($n)" || fail "the count restarted: $n"
[ -S "$sockdir/.s.PGSQL.5432" ] && ok "the socket directory was made again" || fail "no socket in $sockdir"
expect_eq "$(state_of "$s1")" "alive" "the process the stale postmaster.pid named still runs"
expect_eq "$(state_of "$s2")" "alive" "so does the one an earlier boot's pid file named"
expect_match "$(grep -c 'removed the stale lock file' "$DATA/logs/server.log")" "^[1-9]" "the daemon says it removed the stale lock file"
expect_match "$(miren addon list -a python-visits)" "miren-postgresql +small +active" "addon list shows it active"
expect_eq "$(invariant_violations)" "" "no invariant is violated"

# The same for a restart by the supervisor: the postmaster crashes, its
# socket directory and pid file are left in a state PostgreSQL refuses.
pm=$(postmaster_pid "$disk")
kill -KILL "$pm"
wait_for "the postmaster is gone" 5 sh -c "! kill -0 $pm 2>/dev/null"
rm -rf "$sockdir"
wait_for "the supervisor starts it again" 30 sh -c "[ -S '$sockdir/.s.PGSQL.5432' ]"
wait_for "the app answers after the crash" 30 sh -c "curl -fsS '$url' | grep -q Visits"
expect_eq "$(state_of "$s1")" "alive" "the planted process is still untouched"
finish
