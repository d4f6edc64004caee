#!/usr/bin/env bash
# Lock files after a crash, with the /proc fallback (MIREN_NO_CGROUPS=1):
# two addon servers A and B; the daemon and A's postmaster die with -9,
# B's keeps running.  A's postmaster.pid now names B's postmaster (a live
# postgres of the service user, but of another data directory) and A's
# socket directory holds a .s.PGSQL.5432.lock naming a live process of the
# service user.  The next daemon must start A (both lock files are stale),
# adopt B untouched, and leave the processes the files name alone; a lock
# file naming A's own live postmaster is never removed.
. "$(dirname "$0")/lib.sh"
export MIREN_NO_CGROUPS=1
start_server || exit 1
for a in pa pb; do
  cp -r "$MIREN_SRC/examples/python-visits" "$TMP/$a"
  sed -i "s/^name = .*/name = \"$a\"/" "$TMP/$a/.miren/app.toml"
  miren deploy -C "$TMP/$a" >/dev/null 2>&1 || fail "deploy $a"
done
wait_for "pa answers" 20 curl -fsS "$(service_url pa web)"
wait_for "pb answers" 20 curl -fsS "$(service_url pb web)"
da=$(disk_of_app pa); db=$(disk_of_app pb)
pma=$(postmaster_pid "$da"); pmb=$(postmaster_pid "$db")
socka=$(sed -n 5p "$DATA/disks/$da/pgdata/postmaster.pid")
[ -n "$pma" ] && [ -n "$pmb" ] && [ -d "$socka" ] && ok "two servers run" || fail "no two servers"

kill_server
kill -KILL "$pma"
wait_for "A's postmaster is gone" 5 sh -c "! kill -0 $pma 2>/dev/null"
runuser -u miren -- sleep 1000 & u1=$!
sleep 0.3
s1=$(pgrep -P "$u1" -x sleep || echo "$u1")
CLEANUP_HOOKS="kill -KILL $u1 $s1 2>/dev/null;"
sed -i "1s/.*/$pmb/" "$DATA/disks/$da/pgdata/postmaster.pid"
printf '%s\n%s\n' "$s1" "$DATA/disks/$da/pgdata" > "$socka/.s.PGSQL.5432.lock"
chown miren: "$socka/.s.PGSQL.5432.lock"

start_server || exit 1
wait_for "A is active again" 30 sh -c "'$MIREN_BIN' addon list -a pa | grep -q ' active'"
wait_for "pa answers again" 30 sh -c "curl -fsS '$(service_url pa web)' | grep -q Visits"
wait_for "pb answers" 30 sh -c "curl -fsS '$(service_url pb web)' | grep -q Visits"
expect_eq "$(postmaster_pid "$db")" "$pmb" "B was adopted, not restarted"
expect_eq "$(state_of "$pmb")" "alive" "B's postmaster, named by A's stale pid file, was not touched"
expect_eq "$(state_of "$s1")" "alive" "the process the socket lock file named was not touched"
npa=$(postmaster_pid "$da")
[ -n "$npa" ] && [ "$npa" != "$pmb" ] && ok "A runs its own postmaster ($npa)" || fail "A's postmaster.pid: '$npa'"
expect_eq "$(grep -c 'removed the stale lock file' "$DATA/logs/server.log")" "2" "both stale lock files were removed"
expect_eq "$(invariant_violations)" "" "no invariant is violated"

# A's live postmaster.pid is kept: a supervisor restart of B does not touch A.
before=$(head -n 1 "$DATA/disks/$da/pgdata/postmaster.pid")
kill -KILL "$pmb"
wait_for "B is started again" 30 sh -c "p=\$(head -n1 '$DATA/disks/$db/pgdata/postmaster.pid' 2>/dev/null); [ -n \"\$p\" ] && [ \"\$p\" != $pmb ] && kill -0 \$p"
expect_eq "$(head -n 1 "$DATA/disks/$da/pgdata/postmaster.pid")" "$before" "A's postmaster.pid is untouched"
wait_for "pb answers after the crash" 30 sh -c "curl -fsS '$(service_url pb web)' | grep -q Visits"
finish
