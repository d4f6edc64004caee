#!/usr/bin/env bash
# miren-mysql backups (mariadb-backup, online): a writer commits rows one
# by one while the disk is backed up; the snapshot restored over the disk
# (--force: its server is stopped, the copy prepared and started) holds
# every row committed before the backup began, with no gap and nothing
# committed after it ended, and the app's credentials work on it.  The
# same for a shared server's disk with two tenants.  RUNS (default 2)
# repeats the small cycle.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib-mysql.sh"
RUNS=${RUNS:-2}
start_server || exit 1

# writer APP FILE: inserts ids 1, 2, ... (autocommit), writing the last
# committed id to FILE after each commit, until killed.
writer() {
  local app=$1 file=$2
  MYSQL_HOST=$(miren env get -a "$app" MYSQL_HOST) MYSQL_USER=$(miren env get -a "$app" MYSQL_USER) \
  MYSQL_PASSWORD=$(miren env get -a "$app" MYSQL_PASSWORD --unmask) \
  MYSQL_DATABASE=$(miren env get -a "$app" MYSQL_DATABASE) OUT="$file" \
    /usr/bin/python3 -c '
import os, pymysql
c = pymysql.connect(host=os.environ["MYSQL_HOST"], user=os.environ["MYSQL_USER"],
                    password=os.environ["MYSQL_PASSWORD"], database=os.environ["MYSQL_DATABASE"],
                    autocommit=True)
cur = c.cursor()
i = 0
while True:
    i += 1
    cur.execute("INSERT INTO log (id, pad) VALUES (%s, REPEAT(\"x\", 200))", (i,))
    with open(os.environ["OUT"] + ".tmp", "w") as f:
        f.write(str(i))
    os.replace(os.environ["OUT"] + ".tmp", os.environ["OUT"])
' &
  WRITER=$!
}

# cycle APP DISK LABEL: backup under load, restore over the disk, check.
cycle() {
  local app=$1 disk=$2 label=$3 before after max count
  rm -f "$TMP/committed" "$TMP/snap.miren.zst"
  writer "$app" "$TMP/committed"
  wait_for "$label: the writer commits" 20 test -s "$TMP/committed"
  sleep 1
  before=$(cat "$TMP/committed")
  if ! miren disk backup -n "$disk" -o "$TMP/snap.miren.zst" > "$TMP/backup.out" 2>&1; then
    fail "$label: backup failed: $(cat "$TMP/backup.out")"; kill "$WRITER"; wait "$WRITER" 2>/dev/null; return
  fi
  after=$(cat "$TMP/committed")
  sleep 0.5
  kill "$WRITER"; wait "$WRITER" 2>/dev/null
  expect_match "$(tar --zstd -tf "$TMP/snap.miren.zst" 2>&1)" "disk/data/xtrabackup_checkpoints" "$label: the snapshot (a zstd tar) holds mariadb-backup's copy"
  [ "$after" -gt "$before" ] && ok "$label: writes went on during the backup ($before -> $after)" ||
    fail "$label: no write committed during the backup ($before -> $after)"
  if ! miren disk restore -s "$TMP/snap.miren.zst" -n "$disk" --force > "$TMP/restore.out" 2>&1; then
    fail "$label: restore failed: $(cat "$TMP/restore.out")"; return
  fi
  ok "$label: restored over the disk"
  max=$(mysql_as "$app" -e "SELECT COALESCE(MAX(id), 0) FROM log")
  count=$(mysql_as "$app" -e "SELECT COUNT(*) FROM log")
  [ "$max" -ge "$before" ] && ok "$label: every row committed before the backup is there ($max >= $before)" ||
    fail "$label: rows committed before the backup are missing ($max < $before)"
  [ "$max" -le "$((after + 1))" ] && ok "$label: nothing committed after the backup ended ($max <= $after + 1)" ||
    fail "$label: rows from after the backup ($max > $after + 1)"
  expect_eq "$count" "$max" "$label: no gap (one point in time)"
  expect_eq "$(mysql_as "$app" -e "CHECK TABLE log" | awk '{print $NF}' | tail -n 1)" "OK" "$label: CHECK TABLE reports OK"
}

write_mysql_app db small
miren deploy -C "$TMP/db" >/dev/null 2>&1
disk=$(disk_of_app db)
mysql_as db -e "CREATE TABLE log (id BIGINT PRIMARY KEY, at TIMESTAMP DEFAULT CURRENT_TIMESTAMP, pad TEXT) ENGINE=InnoDB"
for run in $(seq "$RUNS"); do
  mysql_as db -e "TRUNCATE TABLE log"
  cycle db "$disk" "small run $run"
done
expect_match "$(miren addon list -a db)" "miren-mysql +small +active" "the addon is active after the restores"
expect_eq "$(ls -d "$DATA"/disks/.mysql-backup-* 2>/dev/null | wc -l)" "0" "no backup copy is left behind"

# Restored under a new name (no server): the copy is prepared, nothing runs.
miren disk restore -s "$TMP/snap.miren.zst" -n copy-of-db > "$TMP/restore.out" 2>&1 &&
  ok "restored under a new name" || fail "restore under a new name: $(cat "$TMP/restore.out")"
expect_eq "$(test -d "$DATA/disks/copy-of-db/data/mysql" && echo yes)" "yes" "the copy holds a data directory"

# A shared server: two tenants, one backup, both restored.
write_mysql_app s1 shared; miren deploy -C "$TMP/s1" >/dev/null 2>&1
write_mysql_app s2 shared; miren deploy -C "$TMP/s2" >/dev/null 2>&1
sdisk=$(disk_of_app s1)
mysql_as s1 -e "CREATE TABLE log (id BIGINT PRIMARY KEY, pad TEXT) ENGINE=InnoDB"
mysql_as s2 -e "CREATE TABLE kept (v TEXT); INSERT INTO kept VALUES ('s2 row')"
cycle s1 "$sdisk" "shared"
expect_eq "$(mysql_as s2 -e 'SELECT v FROM kept')" "s2 row" "shared: the other tenant's data is restored too"
expect_exit "shared: isolation holds after the restore" 1 mysql_as s1 -e "SELECT * FROM s2.kept"
# A tenant removed after the backup is removed again by the restore (its
# addon was destroyed with its data); the others keep theirs.
miren disk backup -n "$sdisk" -o "$TMP/s.miren.zst" >/dev/null 2>&1
miren addon destroy miren-mysql -a s2 -f >/dev/null 2>&1
miren disk restore -s "$TMP/s.miren.zst" -n "$sdisk" --force > "$TMP/restore.out" 2>&1 ||
  fail "shared: restore after a tenant left: $(cat "$TMP/restore.out")"
expect_eq "$(invariant_violations)" "" "shared: the departed tenant's database and user are gone again"
expect_eq "$(mysql_as s1 -e 'SELECT COUNT(*) > 0 FROM log')" "1" "shared: the remaining tenant's data is there"
finish
