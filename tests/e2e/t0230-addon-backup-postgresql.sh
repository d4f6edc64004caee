#!/usr/bin/env bash
# miren addon backup / restore of miren-postgresql, small and shared: the
# app's rows at the backup come back after a change, from the stored
# backup (--backup ID) and from its file (-o, then -s); the app's
# credentials stay the ones it has; the app is restarted once; a neighbour
# on the shared server keeps its data.
# The CLI's own paths: the CLI of the daemon's build (sanitized in CI; lib.sh).
MIREN_CLI_BIN=${MIREN_BIN:-}
. "$(dirname "$0")/lib.sh"
start_server || exit 1

rows() { psql_as "$1" -c "SELECT string_agg(v, ',' ORDER BY v) FROM t" 2>&1; }
pid_of_web() { miren app status "$1" --format json | jq -r '.services[0].pid // empty'; }

for variant in small shared; do
  app=pg$variant
  deploy_addon_app "$app" "$variant"
  psql_as "$app" -q -c "CREATE TABLE t (v text); INSERT INTO t VALUES ('a'), ('b')"
  out=$(miren addon backup miren-postgresql -a "$app" -o "$TMP" 2>&1)
  st=$?
  expect_eq "$st" "0" "$variant: addon backup succeeds: $(echo "$out" | head -n 3 | tr '\n' ' ')"
  id=$(echo "$out" | head -n 1)
  expect_match "$id" '^[0-9]{8}-[0-9]{6}-[0-9a-f]{4}$' "$variant: it prints the backup's ID"
  file=$(ls "$TMP"/"$app"-miren-postgresql-*.miren.zst 2>/dev/null | head -n 1)
  [ -f "$file" ] && ok "$variant: -o DIR writes APP-ADDON-YYYYMMDD-HHMMSS.miren.zst" || fail "$variant: no file in $TMP: $(ls "$TMP")"
  if [ "$variant" = small ]; then want=disk; else want=dump; fi
  expect_match "$(tar --zstd -xOf "$file" miren-backup.json)" "\"kind\": *\"$want\"" "$variant: the file's header says kind $want"

  psql_as "$app" -q -c "DELETE FROM t WHERE v = 'a'; INSERT INTO t VALUES ('c'); CREATE TABLE extra (i int)"
  expect_eq "$(rows "$app")" "b,c" "$variant: the data changed"
  pw=$(miren env get -a "$app" PGPASSWORD --unmask)
  out=$(miren addon restore miren-postgresql -a "$app" --backup "$id" 2>&1)
  expect_eq "$?" "0" "$variant: restore --backup ID succeeds: $(echo "$out" | tr '\n' ' ')"
  expect_eq "$(rows "$app")" "a,b" "$variant: the rows are as at the backup"
  expect_eq "$(psql_as "$app" -c "SELECT count(*) FROM pg_tables WHERE tablename = 'extra'")" "0" "$variant: a table made after the backup is gone"
  expect_eq "$(miren env get -a "$app" PGPASSWORD --unmask)" "$pw" "$variant: the app keeps its password"
  expect_match "$(grep "app $app: addon miren-postgresql restored" "$DATA/logs/server.log")" "restored from" "$variant: the restore is logged"

  psql_as "$app" -q -c "TRUNCATE t; INSERT INTO t VALUES ('z')"
  out=$(miren addon restore miren-postgresql -a "$app" -s "$file" 2>&1)
  expect_eq "$?" "0" "$variant: restore -s FILE succeeds: $(echo "$out" | tr '\n' ' ')"
  expect_eq "$(rows "$app")" "a,b" "$variant: from the file too"
  expect_eq "$(psql_as "$app" -c "SELECT current_user = '$(miren env get -a "$app" PGUSER)'")" "t" "$variant: the app logs in as its own user"
  expect_eq "$(psql_as "$app" -c "SELECT tableowner FROM pg_tables WHERE tablename = 't'")" "$(miren env get -a "$app" PGUSER)" "$variant: its tables are owned by its user"
done

# The shared server's other tenant is untouched by a restore of pgshared.
deploy_addon_app other shared
psql_as other -q -c "CREATE TABLE o (i int); INSERT INTO o VALUES (7)"
id=$(miren addon backup miren-postgresql -a pgshared | head -n 1)
psql_as other -q -c "INSERT INTO o VALUES (8)"
miren addon restore miren-postgresql -a pgshared --backup "$id" > /dev/null 2>&1
expect_eq "$(psql_as other -c 'SELECT count(*) FROM o')" "2" "a neighbour on the shared server keeps its data"

[ -z "$(invariant_violations)" ] && ok "invariants hold" || fail "invariants: $(invariant_violations)"
finish
