#!/usr/bin/env bash
# miren-postgresql small: held start, env injection, a real row written and
# read, isolation of the superuser, supervision, adoption across daemon
# restarts, and removal by deleting the app.toml section.
. "$(dirname "$0")/lib.sh"
start_server || exit 1
app=$(copy_example python-visits)

out=$(miren deploy -C "$app" 2>&1)
expect_match "$out" "Provisioning addon miren-postgresql \(small\)\.\.\." "deploy shows provisioning progress"
expect_match "$out" "Addon miren-postgresql ready" "and when the addon is ready"
url=$(service_url python-visits web)
wait_for "the app answers" 15 curl -fsS "$url"
expect_eq "$(curl -fsS "$url")" "Visits: 2" "a row is written and read through DATABASE_URL"
expect_eq "$(curl -fsS "$url")" "Visits: 3" "and counted again"
expect_no_match "$(miren logs -a python-visits)" "DATABASE_URL is missing" "the service never started before the addon was active"

list=$(miren addon list -a python-visits)
expect_match "$list" "miren-postgresql +small +active" "addon list shows the active addon"
env=$(miren env list -a python-visits)
expect_match "$env" "DATABASE_URL +\*+ +\(all\) +addon" "DATABASE_URL is injected and masked"
expect_match "$env" "PGPASSWORD +\*+ +\(all\) +addon" "PGPASSWORD is injected and masked"
expect_match "$env" "PGHOST +127\.$NET\.[0-9]+\.[0-9]+ +\(all\) +addon" "PGHOST is an address of the pool"
expect_match "$env" "PGPORT +5432 " "PGPORT is 5432"
expect_match "$env" "PGUSER +python_visits " "PGUSER comes from the app name"
expect_match "$env" "PGDATABASE +python_visits " "PGDATABASE comes from the app name"
dburl=$(miren env get -a python-visits DATABASE_URL --unmask)
# (its value holds the password: a failure says so without printing it)
if printf '%s' "$dburl" | grep -Eq "^postgres://python_visits:[A-Za-z0-9]{32}@127\.$NET\.[0-9.]+:5432/python_visits$"; then
  ok "DATABASE_URL has the seed's shape"
else
  fail "DATABASE_URL does not have the seed's shape (value not shown: it holds a password)"
fi

disk=$(disk_of_app python-visits)
expect_match "$disk" "^pg-pg-python-visits-s[0-9a-f]+-data$" "the disk is named pg-pg-<app>-s<id>-data"
expect_match "$(miren debug disk list)" "$disk +1\.0 GiB +[0-9.]+ MiB +[0-9]+% +(ext4|dirs) +in use +addon miren-postgresql \(app python-visits\)" "disk list shows it with size and usage"
expect_eq "$(psql_as python-visits -c "SELECT rolsuper OR rolcreatedb OR rolcreaterole OR rolreplication FROM pg_roles WHERE rolname = current_user")" "f" "the app's role has no special privileges"
expect_eq "$(psql_as python-visits -c "SELECT pg_catalog.pg_get_userbyid(datdba) FROM pg_database WHERE datname = current_database()")" "python_visits" "the role owns its database"
expect_exit "the superuser cannot log in over TCP" 2 env PGPASSWORD=x PGCONNECT_TIMEOUT=5 psql -X -h "$(miren env get -a python-visits PGHOST)" -U postgres -c "SELECT 1" postgres
expect_no_match "$(grep -v '^#' "$DATA/disks/$disk/pgdata/pg_hba.conf")" "trust" "pg_hba.conf has no trust line"
expect_eq "$(psql_as python-visits -c "SHOW password_encryption")" "scram-sha-256" "passwords are scram-sha-256"
pw=$(miren env get -a python-visits PGPASSWORD --unmask)
expect_eq "$(grep -rlF -- "$pw" "$DATA/logs" "$DATA/apps"/*/logs 2>/dev/null | wc -l)" "0" "the password is in no log file"

# A PostgreSQL server that dies is restarted and the app reconnects.
pm=$(postmaster_pid "$disk")
kill -9 "$pm"
wait_for "the server is restarted after kill -9" 20 sh -c "p=\$(head -n1 '$DATA/disks/$disk/pgdata/postmaster.pid' 2>/dev/null); [ -n \"\$p\" ] && [ \"\$p\" != $pm ] && kill -0 \$p"
wait_for "the app reconnects" 20 sh -c "curl -fsS '$url' | grep -q 'Visits: 4'"

# Daemon restarts adopt the running server: same process, no duplicate.
pm=$(postmaster_pid "$disk")
stop_server
expect_eq "$(state_of "$pm")" "alive" "the database keeps running while the daemon is down"
start_server || exit 1
expect_eq "$(postmaster_pid "$disk")" "$pm" "the restarted daemon adopts the same server"
kill_server
start_server || exit 1
expect_eq "$(postmaster_pid "$disk")" "$pm" "after kill -9 of the daemon too"
expect_eq "$(pgrep -f -- "-D $DATA/disks/$disk/pgdata" | wc -l)" "1" "exactly one postmaster runs for the disk"
wait_for "the app answers after the daemon restarts" 15 sh -c "curl -fsS '$(service_url python-visits web)' | grep -q Visits"
expect_match "$(miren addon list -a python-visits)" "active" "the addon is still active"

# An addon app.toml declares comes back on the next deploy, even unchanged.
miren addon destroy miren-postgresql -a python-visits -f >/dev/null 2>&1
out=$(miren deploy -C "$app" 2>&1)
expect_match "$out" "Release 1 of python-visits is current \(no code changes\); addon miren-postgresql re-created" "an unchanged deploy makes no release, and says it re-created the addon"
expect_match "$out" "Addon miren-postgresql ready" "but brings back the declared addon"

# While the addon is made again, a service still running is an earlier
# run (here one crash-looping without DATABASE_URL): the deploy does not
# call that "exited at once", and the service restarts once it is active.
miren addon destroy miren-postgresql -a python-visits -f >/dev/null 2>&1
wait_for "the service crash-loops without the addon" 15 sh -c "'$MIREN_BIN' app status -a python-visits | grep -Eq 'backoff|crashloop'"
echo "# a new release" >>"$app/server.py"
rc=0
out=$(miren deploy -C "$app" --format json 2>&1) || rc=$?
expect_eq "$rc" "0" "deploy --format json does not judge the run from before the addon"
expect_eq "$(printf '%s' "$out" | jq -r '.addons_created[0]')" "miren-postgresql" "it re-creates the addon"
expect_eq "$(printf '%s' "$out" | jq -r '.release')" "2" "and records the new release"
wait_for "the addon is active again" 30 sh -c "'$MIREN_BIN' addon list -a python-visits | grep -q active"
wait_for "the app answers with the new addon" 15 sh -c "curl -fsS '$(service_url python-visits web)' | grep -q Visits"
expect_eq "$(miren app status -a python-visits --format json | jq -r .start_held)" "false" "nothing is held once the addon is active"
disk=$(disk_of_app python-visits)
pm=$(postmaster_pid "$disk")

# Removing the section from app.toml deprovisions the addon.
sed -i '/addons.miren-postgresql/,$d' "$app/.miren/app.toml"
sed -i 's/^command = .*/command = "exec sleep 100000"/' "$app/.miren/app.toml"
miren deploy -C "$app" >/dev/null 2>&1
wait_for "the addon is removed after the section is deleted" 30 sh -c "'$MIREN_BIN' addon list -a python-visits | grep -q 'has no addons'"
expect_eq "$(test -d "$DATA/disks/$disk" && echo yes || echo no)" "no" "its disk is deleted"
expect_eq "$(state_of "$pm")" "gone" "its server is stopped"
expect_no_match "$(miren env list -a python-visits)" "DATABASE_URL|PGHOST" "its variables are gone"
expect_no_match "$(miren debug disk list)" "$disk" "disk list no longer shows it"

# The same through the CLI.
out=$(miren addon create miren-postgresql -a python-visits 2>&1)
expect_match "$out" "Addon miren-postgresql \(small\) is active on python-visits" "addon create without variant uses small"
disk2=$(disk_of_app python-visits)
expect_eq "$(miren env get -a python-visits PGUSER)" "python_visits" "the new addon injects its env"
out=$(miren addon destroy miren-postgresql -a python-visits -f 2>&1)
expect_match "$out" "Destroyed addon miren-postgresql of python-visits" "addon destroy -f removes it"
expect_eq "$(test -d "$DATA/disks/$disk2" && echo yes || echo no)" "no" "and deletes its data"
finish
