#!/usr/bin/env bash
# miren-postgresql shared: one server, a database and role per app, real
# isolation between tenants, the server made on first use and removed with
# its last tenant.
. "$(dirname "$0")/lib.sh"
start_server || exit 1
mkapp() {
  write_addon_app "$1" shared
  miren deploy -C "$TMP/$1" 2>&1
}
out=$(mkapp alpha)
expect_match "$out" "Provisioning addon miren-postgresql \(shared\)" "deploy provisions a shared addon"
out=$(mkapp beta)
expect_match "$out" "Addon miren-postgresql ready" "a second app joins the shared server"
expect_eq "$(miren env get -a alpha PGHOST)" "$(miren env get -a beta PGHOST)" "both apps use one server"
expect_eq "$(miren debug disk list --format json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')" "1" "there is one disk"
disk=$(disk_of_app alpha)
expect_match "$disk" "^pg-shared-data-[0-9a-f]{8}$" "named pg-shared-data-<8 hex>"
expect_eq "$(miren env get -a alpha PGDATABASE)" "alpha" "alpha has its own database"
expect_eq "$(miren env get -a beta PGUSER)" "beta" "beta has its own role"
expect_match "$(miren app status -a alpha)" "web +(starting|running)" "alpha's service runs with its env"

psql_as alpha -c "CREATE TABLE secrets (v text); INSERT INTO secrets VALUES ('alpha-only')" >/dev/null
expect_eq "$(psql_as alpha -c 'SELECT v FROM secrets')" "alpha-only" "alpha reads its own data"
expect_exit "alpha cannot connect to beta's database" 2 psql_as alpha -d beta -c "SELECT 1"
expect_exit "alpha cannot connect to postgres" 2 psql_as alpha -d postgres -c "SELECT 1"
expect_exit "alpha cannot connect to template1" 2 psql_as alpha -d template1 -c "SELECT 1"
expect_exit "beta cannot connect to alpha's database" 2 psql_as beta -d alpha -c "SELECT 1"
expect_exit "alpha cannot create databases" 1 psql_as alpha -c "CREATE DATABASE evil"
expect_match "$(cat "$TMP/err")" "permission denied to create database" "  (permission denied to create database)"
expect_exit "alpha cannot create roles" 1 psql_as alpha -c "CREATE ROLE evil"
expect_match "$(cat "$TMP/err")" "permission denied to create role" "  (permission denied to create role)"
expect_exit "alpha cannot ALTER SYSTEM" 1 psql_as alpha -c "ALTER SYSTEM SET work_mem = '1GB'"
expect_match "$(cat "$TMP/err")" "permission denied to set parameter" "  (permission denied to set parameter)"
expect_exit "alpha cannot COPY TO PROGRAM" 1 psql_as alpha -c "COPY secrets TO PROGRAM 'true'"
expect_match "$(cat "$TMP/err")" "must be superuser or have privileges of the pg_execute_server_program" "  (must be superuser or have privileges of the pg_execute_server_program)"
expect_exit "alpha cannot grant itself beta's role" 1 psql_as alpha -c "GRANT beta TO alpha"
expect_match "$(cat "$TMP/err")" "must have admin option on role" "  (must have admin option on role)"
expect_exit "alpha cannot read beta's password hash" 1 psql_as alpha -c "SELECT rolpassword FROM pg_authid"
expect_match "$(cat "$TMP/err")" "permission denied for table pg_authid" "  (permission denied for table pg_authid)"
pw=$(miren env get -a beta PGPASSWORD --unmask)
expect_exit "alpha's password does not open beta's role" 2 env PGPASSWORD="$(miren env get -a alpha PGPASSWORD --unmask)" psql -X -h "$(miren env get -a beta PGHOST)" -U beta -c "SELECT 1" beta

pm=$(postmaster_pid "$disk")
miren addon destroy miren-postgresql -a alpha -f >/dev/null
expect_eq "$(state_of "$pm")" "alive" "the shared server stays while beta uses it"
expect_exit "alpha's database is gone" 2 env PGPASSWORD="$pw" psql -X -h "$(miren env get -a beta PGHOST)" -U beta -c "SELECT 1" alpha
expect_eq "$(psql_as beta -c 'SELECT 1')" "1" "beta still works"
miren app destroy beta -f >/dev/null
wait_for "the shared server goes with its last tenant" 30 sh -c "! kill -0 $pm 2>/dev/null || grep -q Z /proc/$pm/stat"
wait_for "and so does its disk" 30 sh -c "[ ! -d '$DATA/disks/$disk' ]"
expect_eq "$(miren debug disk list --format json)" "[]" "disk list is empty"

out=$(mkapp gamma)
expect_match "$out" "Addon miren-postgresql ready" "a new shared server is made on next use"
expect_no_match "$(disk_of_app gamma)" "^$disk$" "with a new disk"
finish
