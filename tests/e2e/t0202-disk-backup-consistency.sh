#!/usr/bin/env bash
# The consistency test: pgbench writes while the disk is backed up; the
# snapshot, restored to a new disk (which replays its WAL to prove it),
# starts as a PostgreSQL server, passes pg_amcheck, and holds every
# transaction committed before the backup began.
# RUNS (default 3) repeats the whole cycle.
. "$(dirname "$0")/lib.sh"
RUNS=${RUNS:-3}
bindir=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
start_server || exit 1
deploy_addon_app db small
disk=$(disk_of_app db)
psql_as db -q -c "CREATE TABLE log (id bigserial PRIMARY KEY, at timestamptz DEFAULT now(), pad text)"
psql_as db -q -c "CREATE INDEX ON log (at)"
printf "INSERT INTO log (pad) VALUES (repeat('x', 200));\n" > "$TMP/insert.sql"
chmod 0755 "$TMP"; chown -R miren "$TMP/db" 2>/dev/null || true

for run in $(seq "$RUNS"); do
  # Writers run before, during and after the backup.
  PGHOST=$(miren env get -a db PGHOST) PGUSER=$(miren env get -a db PGUSER) \
  PGDATABASE=$(miren env get -a db PGDATABASE) PGPASSWORD=$(miren env get -a db PGPASSWORD --unmask) \
    pgbench -n -c 4 -T 8 -f "$TMP/insert.sql" > "$TMP/pgbench.log" 2>&1 &
  bench=$!
  sleep 2
  # Every id committed now must be in the snapshot taken next.
  psql_as db -q -c "\\copy (SELECT id FROM log) TO '$TMP/committed.txt'"
  committed=$(wc -l < "$TMP/committed.txt")
  rm -f "$TMP/snap.miren.zst"
  miren disk backup -n "$disk" -o "$TMP/snap.miren.zst" > "$TMP/backup.out" 2>&1 ||
    { fail "run $run: backup failed: $(cat "$TMP/backup.out")"; wait $bench; continue; }
  wait $bench
  miren disk restore -s "$TMP/snap.miren.zst" -n "check-$run" > "$TMP/restore.out" 2>&1 ||
    { fail "run $run: restore failed: $(cat "$TMP/restore.out")"; continue; }

  # The restore proved the copy: it ran its recovery (the backup's WAL)
  # and left it cleanly shut down.
  d="$DATA/disks/check-$run"
  [ -f "$d/pgdata/backup_label.old" ] && [ ! -e "$d/pgdata/backup_label" ] &&
    ok "run $run: the restore replayed the backup's WAL" || fail "run $run: backup_label was not consumed"
  expect_match "$("$bindir/pg_controldata" "$d/pgdata")" "Database cluster state: +shut down$" "run $run: and shut the copy down cleanly"
  # Start PostgreSQL on the restored copy, on its own socket and port.
  port=$((40000 + run))
  mkdir -p "$TMP/sock$run" && chown miren "$TMP/sock$run"
  runuser -u miren -- "$bindir/pg_ctl" -D "$d/pgdata" -w -t 60 -s -l "$TMP/sock$run/log" \
    -o "-c listen_addresses='' -c port=$port -c unix_socket_directories=$TMP/sock$run" start ||
    { fail "run $run: PostgreSQL does not start on the restored disk: $(tail -n 5 "$TMP/sock$run/log")"; continue; }
  ok "run $run: PostgreSQL starts on the restored disk"
  # The restored cluster keeps its superuser's password (the server's).
  su_pw=$(state_q ".servers[] | select(.disk == \"$disk\") | .state.su_password")
  amcheck=$(runuser -u miren -- env PGPASSWORD="$su_pw" "$bindir/pg_amcheck" -h "$TMP/sock$run" \
    -p "$port" -U postgres --all --heapallindexed --install-missing 2>&1 </dev/null)
  st=$?
  expect_eq "$st:$amcheck" "0:" "run $run: pg_amcheck reports nothing"
  q() { PGPASSWORD="$su_pw" psql -X -qtA -h "$TMP/sock$run" -p "$port" -U postgres -d db "$@"; }
  q -c "CREATE TEMP TABLE c (id bigint)" -c "\\copy c FROM '$TMP/committed.txt'" \
    -c "SELECT count(*) FROM c LEFT JOIN log USING (id) WHERE log.id IS NULL" > "$TMP/missing.txt" 2>&1
  expect_eq "$(tail -n 1 "$TMP/missing.txt")" "0" "run $run: all $committed rows committed before the backup are there"
  restored=$(q -c "SELECT count(*) FROM log")
  [ "$restored" -ge "$committed" ] && ok "run $run: $restored rows restored (>= $committed)" || fail "run $run: only $restored rows"
  runuser -u miren -- "$bindir/pg_ctl" -D "$d/pgdata" -m fast -s stop
done
finish
