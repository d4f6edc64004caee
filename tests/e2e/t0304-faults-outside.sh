#!/usr/bin/env bash
# Faults outside the daemon: a database server that keeps crashing shows as
# an error; a full disk during a backup or a restore gives a clear error and
# leaves no partial file; a store from a newer miren is refused untouched.
. "$(dirname "$0")/lib.sh"
start_server || exit 1
deploy_addon_app cr small
disk=$(disk_of_app cr)
conf="$DATA/disks/$disk/pgdata/miren-server.conf"
cp "$conf" "$TMP/conf.good"
echo "no_such_setting = 1" >> "$conf"
kill -9 "$(postmaster_pid "$disk")"
wait_for "a server that keeps crashing shows as an error in addon list" 40 \
  sh -c "'$MIREN_BIN' addon list -a cr | grep -q 'error .*keeps crashing'"
expect_match "$(miren app status -a cr)" "addon miren-postgresql \(small\): error: its database server keeps crashing" "and in app status"
cp "$TMP/conf.good" "$conf"; chown miren: "$conf" 2>/dev/null
wait_for "once fixed, it runs and is active again" 60 \
  sh -c "'$MIREN_BIN' addon list -a cr | grep -q ' active'"
wait_for "and answers" 30 psql_as cr -c "SELECT 1"

# A postmaster started just before a crash, its pid never recorded: the next
# daemon stops that orphan and runs its own.
pm=$(postmaster_pid "$disk")
stop_server
rm -f "$DATA"/run/addon_*.pid
start_server || exit 1
wait_for "the orphan postmaster is stopped" 20 sh -c "! kill -0 $pm 2>/dev/null || grep -q ' Z ' /proc/$pm/stat"
wait_for "a supervised one serves the disk" 30 psql_as cr -c "SELECT 1"
expect_eq "$(invariant_violations)" "" "one postmaster for the disk, supervised"

# A full disk where the CLI writes the backup.
mkdir -p "$TMP/small"
if mount -t tmpfs -o size=1m tmpfs "$TMP/small" 2>/dev/null; then
  CLEANUP_HOOKS='umount "$TMP/small" 2>/dev/null'

  expect_exit "a backup onto a full disk fails" 8 miren disk backup -n "$disk" -o "$TMP/small/b.miren.zst"
  expect_match "$(cat "$TMP/err")" "is full" "saying the disk is full"
  expect_eq "$(ls -A "$TMP/small" | wc -l)" "0" "and leaving no partial file"
  umount "$TMP/small"
else
  fail "cannot mount a small tmpfs to fill (needs root)"
fi
expect_exit "the same backup works elsewhere" 0 miren disk backup -n "$disk" -o "$TMP/b.miren.zst"
stop_server
# Its database server keeps running (and its address): the next daemon,
# on another data directory with the same pool, needs the address.
kill_supervised "$DATA"

# A full disk where the daemon restores: a data directory on a small tmpfs.
SMALL="$TMP/smalldata"; mkdir -p "$SMALL"
# (room for the template, its spare clone, the fill server and a restore)
if mount -t tmpfs -o size=400m,mode=0755 tmpfs "$SMALL" 2>/dev/null; then
  CLEANUP_HOOKS='umount "$SMALL" 2>/dev/null'

  OLD_DATA=$DATA; DATA="$SMALL/data"; export MIREN_DATA_DIR="$DATA"
  start_server || exit 1
  mkdir -p "$TMP/fill/.miren"
  printf 'name = "fill"\n[services.web]\ncommand = "exec sleep 100000"\n[addons.miren-postgresql]\nvariant = "small"\n' > "$TMP/fill/.miren/app.toml"
  miren deploy -C "$TMP/fill" >/dev/null 2>&1
  head -c $(( $(df --output=avail -B1 "$SMALL" | tail -n1) - 30*1024*1024 )) /dev/zero > "$SMALL/ballast" 2>/dev/null
  # (Names only: the addon's server writes meanwhile, so its disk's
  # "used" moves.)
  disk_names() { miren debug disk list --format json | jq -c '[.[].name] | sort'; }
  before=$(disk_names)
  expect_exit "a restore onto a full disk fails" 1 miren disk restore -s "$TMP/b.miren.zst" -n copy
  expect_match "$(cat "$TMP/err")" "full|space" "saying the disk is full"
  expect_eq "$(disk_names)" "$before" "no disk was added"
  expect_eq "$(ls -A "$DATA/disks" | grep -c '^\.')" "0" "no staging directory is left"
  expect_eq "$(ls -A "$DATA/tmp" | wc -l)" "0" "no upload is left"
  rm -f "$SMALL/ballast"
  expect_exit "with space again the restore works" 0 miren disk restore -s "$TMP/b.miren.zst" -n copy
  stop_server
  kill_supervised "$DATA"
  sleep 0.5; umount "$SMALL"
  DATA=$OLD_DATA; export MIREN_DATA_DIR="$DATA"
else
  fail "cannot mount a small tmpfs for the data directory (needs root)"
fi

# A store written by a newer miren is refused, and left as it was.
sqlite3 "$DATA/miren.db" "PRAGMA user_version = 99"
sum=$(sha256sum "$DATA/miren.db" | cut -d' ' -f1)
"$MIREN_BIN" server --data-dir "$DATA" --addr-pool "$POOL" > "$TMP/newer.out" 2>&1
expect_match "$(cat "$TMP/newer.out")" "schema version 99 is newer than this miren" "a newer store is refused with a clear message"
expect_eq "$(sha256sum "$DATA/miren.db" | cut -d' ' -f1)" "$sum" "and not changed"
finish
