#!/usr/bin/env bash
# Continuous WAL archiving (point-in-time recovery): every PostgreSQL
# server archives its WAL into the backup store's wal/<server>/, each file
# compressed with its SHA-256 beside it; a retried segment with the same
# content is accepted, another content refused; a damaged archived file is
# refused by the restore side; an archive failure (the store unwritable)
# shows in `miren addon list` and goes away by itself once the store is
# writable again, nothing archived lost.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib-backup.sh"
start_server || exit 1
deploy_addon_app arch small
disk=$(disk_of_app arch)
srv=$(state_q ".servers[] | select(.disk == \"$disk\") | .id")
wal="$DATA/backups/wal/$srv"

psql_as arch -q -c "CREATE TABLE t (v text); INSERT INTO t VALUES ('one')"
seg=$(psql_su "$disk" -c "SELECT pg_walfile_name(pg_current_wal_lsn())")
psql_su "$disk" -c "SELECT pg_switch_wal()" >/dev/null
wait_for "the segment is archived into $wal" 30 test -f "$wal/$seg.zst"
expect_eq "$(zstd -dc "$wal/$seg.zst" | sha256sum | cut -d' ' -f1)" "$(cut -d' ' -f1 "$wal/$seg.sha256")" \
  "the archived segment matches its recorded SHA-256"
expect_eq "$(stat -c %U:%a "$wal")" "miren:700" "the archive directory belongs to the server's user"
expect_eq "$(find "$wal" -name '*.tmp.*' | wc -l)" "0" "no temporary file is left"
expect_eq "$(miren addon list -a arch --format json | jq -r '.[0].wal_archive.status')" "ok" \
  "addon list says archiving is ok"

# The helper itself: a retry with the same content succeeds, another
# content for an archived name is refused and changes nothing.
zstd -dcq "$wal/$seg.zst" -o "$TMP/seg"
before=$(sha256sum "$wal/$seg.zst")
expect_exit "archiving the same segment again succeeds (a retry)" 0 \
  "$MIREN_BIN" addon-helper miren-postgresql wal-archive "$wal" "$TMP/seg" "$seg"
printf 'x' | dd of="$TMP/seg" bs=1 seek=100 conv=notrunc 2>/dev/null
expect_exit "another content under an archived name is refused" 1 \
  "$MIREN_BIN" addon-helper miren-postgresql wal-archive "$wal" "$TMP/seg" "$seg"
expect_match "$(cat "$TMP/err")" "the archive holds another $seg" "  saying why"
expect_eq "$(sha256sum "$wal/$seg.zst")" "$before" "  and the archived segment is unchanged"
expect_exit "a name that is no WAL file's is refused" 1 \
  "$MIREN_BIN" addon-helper miren-postgresql wal-archive "$wal" "$TMP/seg" "../evil"
# The restore side checks the checksum.
expect_exit "an archived segment restores" 0 \
  "$MIREN_BIN" addon-helper miren-postgresql wal-restore "$wal" "$seg" "$TMP/back"
cp -p "$wal/$seg.sha256" "$TMP/sum"
echo "0000000000000000000000000000000000000000000000000000000000000000  $seg" > "$wal/$seg.sha256"
expect_exit "a segment whose checksum does not match is refused" 1 \
  "$MIREN_BIN" addon-helper miren-postgresql wal-restore "$wal" "$seg" "$TMP/back2"
expect_match "$(cat "$TMP/err")" "is damaged" "  as damaged"
cp -p "$TMP/sum" "$wal/$seg.sha256"
expect_exit "a segment the archive lacks is a quiet failure" 1 \
  "$MIREN_BIN" addon-helper miren-postgresql wal-restore "$wal" 00000009.history "$TMP/back3"

# An archive failure: the store's directory unwritable.
chmod 000 "$wal"
psql_as arch -q -c "INSERT INTO t VALUES ('two')"
seg2=$(psql_su "$disk" -c "SELECT pg_walfile_name(pg_current_wal_lsn())")
psql_su "$disk" -c "SELECT pg_switch_wal()" >/dev/null
wait_for "addon list shows the archive failure" 30 \
  sh -c "'$MIREN_BIN' addon list -a arch | grep -q 'warning: miren-postgresql: WAL archiving of server $srv fails'"
out=$(miren addon list -a arch)
# (the first segment the server could not archive: $seg2 or one before it)
expect_match "$out" "cannot write .*/[0-9A-F]{24}" "naming what could not be written"
expect_match "$out" "it is retried" "and that it is retried"
expect_eq "$(miren addon list -a arch --format json | jq -r '.[0].wal_archive.status')" "failing" "JSON says failing"
expect_eq "$(psql_as arch -c 'SELECT count(*) FROM t')" "2" "the database works on"
chmod 700 "$wal"
# PostgreSQL retries by itself (within a minute after three failures).
wait_for "the archive recovers by itself" 90 test -f "$wal/$seg2.zst"
wait_for "the warning goes away" 30 \
  sh -c "! '$MIREN_BIN' addon list -a arch | grep -q 'WAL archiving'"
expect_eq "$(zstd -dc "$wal/$seg2.zst" | sha256sum | cut -d' ' -f1)" "$(cut -d' ' -f1 "$wal/$seg2.sha256")" \
  "the segment archived late matches its checksum"

# A restored disk writes WAL under names the archive holds with other
# contents: its archive starts again, and archiving goes on.
miren disk backup -n "$disk" -o "$TMP/disk.miren.zst" >/dev/null 2>&1
for i in 1 2 3; do
  psql_as arch -q -c "INSERT INTO t VALUES ('more$i')"
  psql_su "$disk" -c "SELECT pg_switch_wal()" >/dev/null
done
expect_exit "the disk is restored over itself" 0 miren disk restore -s "$TMP/disk.miren.zst" --force
expect_match "$(cat "$DATA/logs/server.log")" "server $srv: its disk was restored, so its WAL archive and base backups start again" "its archive starts again"
psql_as arch -q -c "INSERT INTO t VALUES ('after')"
seg3=$(psql_su "$disk" -c "SELECT pg_walfile_name(pg_current_wal_lsn())")
psql_su "$disk" -c "SELECT pg_switch_wal()" >/dev/null
wait_for "the restored server's WAL is archived" 30 test -f "$wal/$seg3.zst"
expect_eq "$(miren addon list -a arch --format json | jq -r '.[0].wal_archive.status')" "ok" "archiving is ok after the restore"
finish
