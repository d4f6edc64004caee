#!/usr/bin/env bash
# miren addon backup / restore of miren-mysql (MariaDB), small and shared:
# the app's rows at the backup come back after a change, from the stored
# backup and from its file; the app keeps its user and password; a
# neighbour on the shared server keeps its data.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib-mysql.sh"
start_server || exit 1

rows() { mysql_as "$1" -e "SELECT GROUP_CONCAT(v ORDER BY v) FROM t" 2>&1; }

for variant in small shared; do
  app=my$variant
  write_mysql_app "$app" "$variant"
  miren deploy -C "$TMP/$app" > /dev/null 2>&1
  mysql_as "$app" -e "CREATE TABLE t (v varchar(8)); INSERT INTO t VALUES ('a'), ('b')"
  out=$(miren addon backup miren-mysql -a "$app" -o "$TMP/$app.miren.zst" 2>&1)
  expect_eq "$?" "0" "$variant: addon backup -o FILE succeeds: $(echo "$out" | head -n 3 | tr '\n' ' ')"
  id=$(echo "$out" | head -n 1)
  mysql_as "$app" -e "DELETE FROM t WHERE v = 'a'; INSERT INTO t VALUES ('c'); CREATE TABLE extra (i int)"
  expect_eq "$(rows "$app")" "b,c" "$variant: the data changed"
  pw=$(miren env get -a "$app" MYSQL_PASSWORD --unmask)
  out=$(miren addon restore miren-mysql -a "$app" --backup "$id" 2>&1)
  expect_eq "$?" "0" "$variant: restore --backup ID succeeds: $(echo "$out" | tr '\n' ' ')"
  expect_eq "$(rows "$app")" "a,b" "$variant: the rows are as at the backup"
  expect_eq "$(mysql_as "$app" -e "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = DATABASE() AND table_name = 'extra'")" "0" "$variant: a table made after the backup is gone"
  expect_eq "$(miren env get -a "$app" MYSQL_PASSWORD --unmask)" "$pw" "$variant: the app keeps its password"
  mysql_as "$app" -e "DELETE FROM t; INSERT INTO t VALUES ('z')"
  out=$(miren addon restore miren-mysql -a "$app" -s "$TMP/$app.miren.zst" 2>&1)
  expect_eq "$?" "0" "$variant: restore -s FILE succeeds: $(echo "$out" | tr '\n' ' ')"
  expect_eq "$(rows "$app")" "a,b" "$variant: from the file too"
done

# A dump that fails midway (its second statement is refused) leaves the
# data as it was: the load puts the data from before back.
mkdir -p "$TMP/bad/x"
printf 'CREATE TABLE half (i int);\nINSERT INTO nosuch VALUES (1);\n' > "$TMP/bad/x/dump"
mysql_as myshared -e "INSERT INTO t VALUES ('q')"
python3 "$MIREN_SRC/tests/e2e/pack-snapshot.py" "$TMP/bad.miren.zst" \
  '{"kind": "dump", "addon": "miren-mysql", "app": "myshared", "dump_format_version": 1, "disk": "", "size": 0}' "$TMP/bad/x" ||
  fail "packing a bad dump"
expect_exit "a dump that fails to load fails" 1 miren addon restore miren-mysql -a myshared -s "$TMP/bad.miren.zst"
expect_match "$(cat "$TMP/err")" "^error: the backup could not be loaded into addon miren-mysql of app 'myshared'; its data is as it was" "  saying the data is as it was"
expect_eq "$(rows myshared)" "a,b,q" "the rows are as before the failed load"
expect_eq "$(mysql_as myshared -e "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = DATABASE() AND table_name = 'half'")" "0" "the failed load's table is gone"

write_mysql_app other shared
miren deploy -C "$TMP/other" > /dev/null 2>&1
mysql_as other -e "CREATE TABLE o (i int); INSERT INTO o VALUES (7)"
id=$(miren addon backup miren-mysql -a myshared | head -n 1)
mysql_as other -e "INSERT INTO o VALUES (8)"
miren addon restore miren-mysql -a myshared --backup "$id" > /dev/null 2>&1
expect_eq "$(mysql_as other -e 'SELECT COUNT(*) FROM o')" "2" "a neighbour on the shared server keeps its data"

[ -z "$(invariant_violations)" ] && ok "invariants hold" || fail "invariants: $(invariant_violations)"
finish
