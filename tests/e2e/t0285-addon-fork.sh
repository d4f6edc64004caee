#!/usr/bin/env bash
# miren addon fork (PostgreSQL): app src's data copied into app dst's own
# new addon, small and shared, keeping or changing the variant; the fork
# has its own server or tenant and credentials, its app restarted on them;
# writes after the fork stay on their side (both ways); the fork is an
# addon like any other (backed up, destroyed without touching src); --at
# copies the data of a point in time (t1's rows, not t2's), from a
# dedicated server and from a shared one.
. "$(dirname "$0")/lib.sh"
export MIREN_ADDON_TICK_MS=500 MIREN_PITR_BASE_MINUTES=60
PG=miren-postgresql

rows() { psql_as "$1" -c "SELECT string_agg(v, ',' ORDER BY v) FROM t"; }
env_of() { miren env get -a "$1" "$2" ${3:+--unmask}; }

start_server || exit 1
deploy_addon_app src small
deploy_addon_app srcsh shared
for a in dst dst2 dst3 dst4 dst5; do deploy_plain_app "$a"; done
for a in src srcsh; do psql_as "$a" -q -c "CREATE TABLE t (v text); INSERT INTO t VALUES ('$a-before')"; done
pid_before=$(service_field dst web pid)

# small -> small (the default: src's variant)
out=$(miren addon fork $PG -a src --to dst 2>&1)
expect_eq "$?" "0" "fork src -> dst exits 0"
expect_match "$out" "Forked addon $PG of src \(small\) into dst \(small\)" "  says what it made"
expect_match "$out" "dst has its own copy of the data, as it was now" "  and from when"
j=$(miren addon list -a dst --format json)
expect_eq "$(echo "$j" | jq -r '.[0].status + " " + .[0].variant + " " + .[0].source')" "active small cli" "  dst's addon is active, small"
expect_eq "$(echo "$j" | jq -r '.[0].forked_from.app + " " + .[0].forked_from.variant')" "src small" "  and says where it came from"
expect_eq "$(rows dst)" "src-before" "  dst holds src's rows"
[ "$(env_of dst PGPASSWORD 1)" != "$(env_of src PGPASSWORD 1)" ] && ok "  with its own password" || fail "  dst has src's password"
[ "$(env_of dst PGHOST)" != "$(env_of src PGHOST)" ] && ok "  on its own server" || fail "  dst is on src's server"
expect_eq "$(psql_as dst -c 'SELECT tableowner FROM pg_tables WHERE tablename = $$t$$')" "$(env_of dst PGUSER)" "  its table is its own role's"
wait_for "  dst's service was restarted with the addon's env" 20 sh -c "[ \"\$('$MIREN_BIN' app status -a dst --format json | jq -r '.services[0].pid')\" != '$pid_before' ]"

# Diverging: each side's writes stay there.
psql_as src -q -c "INSERT INTO t VALUES ('src-after')"
psql_as dst -q -c "INSERT INTO t VALUES ('dst-after'); CREATE TABLE only_dst (i int)"
expect_eq "$(rows src)" "src-after,src-before" "src sees its own write, not dst's"
expect_eq "$(rows dst)" "dst-after,src-before" "dst sees its own write, not src's"
expect_eq "$(psql_as src -c "SELECT count(*) FROM pg_tables WHERE tablename = 'only_dst'")" "0" "  a table made in dst is not in src"

# shared -> small, small -> shared
miren addon fork $PG -a srcsh --to dst2 --variant small >/dev/null 2>&1
expect_eq "$?" "0" "fork a shared tenant into a small server (--variant small)"
expect_eq "$(miren addon list -a dst2 --format json | jq -r '.[0].variant')" "small" "  dst2's addon is small"
expect_eq "$(rows dst2)" "srcsh-before" "  with srcsh's rows"
out=$(miren addon fork $PG -a src --to dst3 --variant shared --format json 2>/dev/null)
expect_eq "$(echo "$out" | jq -r '.app + " " + .variant + " " + .from_app + " " + .from_variant + " " + (.at|tostring)')" "dst3 shared src small null" "fork a small server's data into a shared tenant (JSON)"
expect_eq "$(rows dst3)" "src-after,src-before" "  dst3 holds src's rows as they are now"
expect_eq "$(env_of dst3 PGHOST)" "$(env_of srcsh PGHOST)" "  on the shared server"
psql_as dst3 -q -c "DELETE FROM t"
expect_eq "$(rows src)" "src-after,src-before" "  a delete in dst3 leaves src alone"
expect_eq "$(rows srcsh)" "srcsh-before" "  and srcsh, on the same server"

# The fork is an addon like any other.
id=$(miren addon backup $PG -a dst --format json 2>/dev/null | jq -r '.id // empty')
[ -n "$id" ] && ok "dst's fork is backed up" || fail "dst's fork is not backed up"
miren addon destroy $PG -a dst3 --no-final-backup -f >/dev/null 2>&1
wait_for "dst3's fork is destroyed" 30 sh -c "[ \"\$('$MIREN_BIN' addon list -a dst3 --format json | jq length)\" = 0 ]"
expect_eq "$(rows src)" "src-after,src-before" "  src is untouched"

# --at: t1's rows, not t2's.
wait_for "each server has a base backup" 60 sh -c "[ \$(grep -l '\"kind\":\"pitr-base\"' '$DATA'/backups/manifests/*.json 2>/dev/null | wc -l) -ge 3 ]"
for a in src srcsh; do psql_as "$a" -q -c "INSERT INTO t VALUES ('$a-t1')"; done
sleep 1.5
T=$(date -u '+%Y-%m-%d %H:%M:%S+00')
sleep 1.5
for a in src srcsh; do psql_as "$a" -q -c "INSERT INTO t VALUES ('$a-t2')"; done
out=$(miren addon fork $PG -a src --to dst4 --at "$T" 2>&1)
expect_eq "$?" "0" "fork --at a time between t1 and t2 (small)"
expect_match "$out" "as at ${T//+/\\+}" "  says the instant"
expect_eq "$(rows dst4)" "src-after,src-before,src-t1" "  dst4 has t1's rows and not t2's"
expect_eq "$(rows src)" "src-after,src-before,src-t1,src-t2" "  src keeps all its rows"
expect_eq "$(miren addon list -a dst4 --format json | jq -r '.[0].forked_from.at')" "$T" "  the addon says the instant"
miren addon fork $PG -a srcsh --to dst5 --at "$T" >/dev/null 2>&1
expect_eq "$?" "0" "fork --at from a shared tenant"
expect_eq "$(rows dst5)" "srcsh-before,srcsh-t1" "  dst5 has srcsh's t1 rows, not t2's"
psql_as dst5 -q -c "INSERT INTO t VALUES ('dst5-after')"
expect_eq "$(rows srcsh)" "srcsh-before,srcsh-t1,srcsh-t2" "  and writes there stay there"

expect_eq "$(invariant_violations)" "" "the invariants hold"
expect_eq "$(ls "$DATA/disks" | grep -c '^\.')" "0" "no scratch or staging disk is left"
finish
