#!/usr/bin/env bash
# `miren debug invariants`: exit 0 when the records, disks, servers and the
# shared server's tenants agree; exit 1 with the list when they do not
# (each kind of disagreement planted by hand, then taken back); the checks
# that hold only at rest are skipped while an addon is in motion.
. "$(dirname "$0")/lib.sh"
start_server || exit 1
db="$DATA/miren.db"

expect_exit "--help works" 0 miren debug invariants --help
expect_match "$(cat "$TMP/out")" "miren debug invariants \[--format json\]" "--help shows the usage"
expect_exit "an operand is a usage error" 2 miren debug invariants extra
expect_match "$(cat "$TMP/err")" "^error: unexpected argument 'extra'" "and says so"

expect_exit "an empty daemon holds its invariants" 0 miren debug invariants
expect_match "$(cat "$TMP/out")" "^Every invariant holds" "and says so"

mkdir -p "$TMP/a1/.miren" "$TMP/a2/.miren"
printf 'name = "a1"\n[services.web]\ncommand = "exec sleep 100000"\n[addons.miren-postgresql]\nvariant = "small"\n' >"$TMP/a1/.miren/app.toml"
printf 'name = "a2"\n[services.web]\ncommand = "exec sleep 100000"\n[addons.miren-postgresql]\nvariant = "shared"\n' >"$TMP/a2/.miren/app.toml"
miren deploy -C "$TMP/a1" >/dev/null 2>&1 || fail "deploy a1"
miren deploy -C "$TMP/a2" >/dev/null 2>&1 || fail "deploy a2"
expect_exit "with a small and a shared addon, the invariants hold" 0 miren debug invariants
expect_match "$(cat "$TMP/out")" "shared-server tenants <-> records" "every check ran"
expect_eq "$(invariant_violations)" "" "lib.sh's invariant_violations agrees"

# An addon row for an app that does not exist.
sqlite3 "$db" "INSERT INTO addons (id, app, addon, variant, version, status, step, state_json, created_at) VALUES ('ghost1', 'ghost', 'miren-postgresql', 'small', '15', 'active', 0, '{}', 0)"
expect_exit "an addon of a missing app is a violation" 1 miren debug invariants
expect_match "$(cat "$TMP/err")" "addon miren-postgresql \(ghost1, active\) belongs to app 'ghost', which does not exist" "named with its app"
expect_match "$(cat "$TMP/err")" "addon miren-postgresql of app 'ghost' is active, but its server '' does not exist" "and its missing server"
expect_match "$(invariant_violations)" "belongs to app 'ghost'" "invariant_violations reports it too"
json=$(miren debug invariants --format json)
expect_eq "$(printf '%s' "$json" | python3 -c 'import json,sys; d=json.load(sys.stdin); print(len(d["violations"]) >= 2, d["in_motion"])')" "True 0" "--format json lists the violations"
sqlite3 "$db" "DELETE FROM addons WHERE id = 'ghost1'"
expect_exit "taken back, the invariants hold" 0 miren debug invariants

# A directory under disks/ that no record names.
mkdir "$DATA/disks/stray"
expect_exit "a stray disk directory is a violation" 1 miren debug invariants
expect_match "$(cat "$TMP/err")" "directory disks/stray has no disk record" "named"
# While an addon is in motion (pending forever: nothing provides 'nosuch'),
# only what holds at all times is checked.
sqlite3 "$db" "INSERT INTO addons (id, app, addon, variant, version, status, step, state_json, created_at) VALUES ('motion1', 'a1', 'nosuch', 'x', '1', 'pending', 0, '{}', 0)"
expect_exit "in motion, the at-rest checks are skipped" 0 miren debug invariants
expect_match "$(cat "$TMP/out")" "1 addon is in motion" "and it says so"
sqlite3 "$db" "DELETE FROM addons WHERE id = 'motion1'"
rmdir "$DATA/disks/stray"

# A role on the shared server that no tenant record names.
sh=$(state_q '.servers[] | select(.kind == "shared") | .id')
sdisk=$(state_q ".servers[] | select(.id == \"$sh\") | .disk")
su=$(state_q ".servers[] | select(.id == \"$sh\") | .state.su_password")
sock=""
for s in /run/miren-pg/* /tmp/miren-pg-"$(id -u)"/*; do
  [ -S "$s/.s.PGSQL.5432" ] || continue
  got=$(PGPASSWORD="$su" psql -X -qtA -h "$s" -U postgres -d postgres -c "SELECT current_setting('data_directory')" 2>/dev/null)
  [ "$got" = "$DATA/disks/$sdisk/pgdata" ] && sock=$s
done
if [ -z "$sock" ]; then fail "the shared server's socket is not found"; fi
PGPASSWORD="$su" psql -X -qtA -h "$sock" -U postgres -d postgres -c "CREATE ROLE intruder" >/dev/null
expect_exit "a role no tenant owns is a violation" 1 miren debug invariants
expect_match "$(cat "$TMP/err")" "shared server $sh has the roles \[a2, intruder\], its active tenants \[a2\]" "named with what the records say"
PGPASSWORD="$su" psql -X -qtA -h "$sock" -U postgres -d postgres -c "DROP ROLE intruder" >/dev/null

# A disk record whose server is gone.
sqlite3 "$db" "INSERT INTO disks (name, size_bytes, created_by, status, created_at) VALUES ('pg-orphan', 1, 'test', 'in use', 0)"
mkdir "$DATA/disks/pg-orphan"
expect_exit "a disk in use by no server is a violation" 1 miren debug invariants
expect_match "$(cat "$TMP/err")" "disk pg-orphan is 'in use', but no server uses it" "named"
sqlite3 "$db" "DELETE FROM disks WHERE name = 'pg-orphan'"
rmdir "$DATA/disks/pg-orphan"

expect_exit "everything taken back: the invariants hold" 0 miren debug invariants
expect_eq "$(invariant_violations)" "" "and invariant_violations agrees"
finish
