#!/usr/bin/env bash
# The volume fault points (MIREN_FAULT=list, "volume:*"): the daemon killed
# after an image is formatted but not renamed, after a mount, after a
# resize grew the image but not the filesystem, and after a removal deleted
# the image but not the directory; the restarted daemon converges (no
# half-made image, no loop device without a mount, every disk mounted, the
# resize finished by running it again) and no committed data is lost.
. "$(dirname "$0")/lib.sh"
if [ "$(id -u)" != 0 ] || [ ! -w /dev/loop-control ]; then
  echo "# skipped: volume fault points need root and loop devices"
  finish; exit
fi
POINTS=$(MIREN_FAULT=list "$MIREN_BIN" | awk '$2 ~ /^volume:/ { print $2 }' | sort | tr '\n' ' ')
expect_eq "$POINTS" "volume:deleted volume:formatted volume:grown volume:mounted " "MIREN_FAULT=list names the volume points"

check() {
  local bad
  bad=$(invariant_violations)
  [ "$(psql_as keep -c 'SELECT count(*) FROM kept' 2>/dev/null)" = "3" ] || bad="$bad; keep lost data"
  [ -z "$(find "$DATA/volumes" -name '*.tmp')" ] || bad="$bad; a half-made image is left"
  if [ -z "$bad" ]; then ok "$1: invariants hold"; else fail "$1:$bad"; fi
}
mkapp() {
  mkdir -p "$TMP/$1/.miren"
  printf 'name = "%s"\n[services.web]\ncommand = "exec sleep 100000"\n' "$1" > "$TMP/$1/.miren/app.toml"
  miren deploy -C "$TMP/$1" >/dev/null 2>&1
}
active() { miren addon list -a fa 2>/dev/null | grep -q ' active'; }

start_server || exit 1
deploy_addon_app keep small
psql_as keep -q -c "CREATE TABLE kept (i int); INSERT INTO kept VALUES (1), (2), (3)"
keepdisk=$(disk_of_app keep)
mkapp fa
stop_server

# Formatted, not renamed: at start the preparer makes the spare images.
rm -f "$DATA"/volumes/.spare-*
start_faulty volume:formatted || exit 1
miren addon create miren-postgresql:small -a fa --no-wait >/dev/null 2>&1
wait_crash || { fail "volume:formatted: the daemon did not crash there"; stop_server; }
start_server || exit 1
# (The preparer may have crashed the daemon before the create was asked.)
miren addon create miren-postgresql:small -a fa --no-wait >/dev/null 2>&1
wait_for "volume:formatted: the addon converges to active" 60 active
wait_for "volume:formatted: the spare images are made" 30 sh -c "ls '$DATA'/volumes/.spare-* >/dev/null 2>&1"
check volume:formatted
miren addon destroy miren-postgresql -a fa -f >/dev/null 2>&1
stop_server

# Mounted, root not yet handed over: while provisioning.
start_faulty volume:mounted || exit 1
miren addon create miren-postgresql:small -a fa --no-wait >/dev/null 2>&1
wait_crash || { fail "volume:mounted: the daemon did not crash there"; stop_server; }
start_server || exit 1
wait_for "volume:mounted: the addon converges to active" 60 active
wait_for "volume:mounted: its database answers" 30 psql_as fa -c "SELECT 1"
check volume:mounted
stop_server

# Deleted, directory not yet: while the addon is removed.
fadisk=$(sqlite3 "$DATA/miren.db" "SELECT disk FROM servers WHERE disk LIKE '%-fa-%'")
start_faulty volume:deleted || exit 1
miren addon destroy miren-postgresql -a fa -f >/dev/null 2>&1
wait_crash || { fail "volume:deleted: the daemon did not crash there"; stop_server; }
start_server || exit 1
wait_for "volume:deleted: the removal converges" 60 sh -c "! miren debug disk list | grep -q -- '$fadisk'"
expect_eq "$(find "$DATA/volumes" "$DATA/disks" -maxdepth 1 -name "*$fadisk*" | wc -l)" "0" "volume:deleted: no image or directory is left"
expect_eq "$(losetup -a | grep -c -- "$fadisk")" "0" "volume:deleted: no loop device is left"
check volume:deleted
stop_server

# Grown, filesystem not yet: running the resize again finishes it.
start_faulty volume:grown || exit 1
miren disk resize -n "$keepdisk" --size 2G >/dev/null 2>&1
wait_crash || { fail "volume:grown: the daemon did not crash there"; stop_server; }
start_server || exit 1
wait_for "volume:grown: the database answers after the crash" 30 psql_as keep -c "SELECT 1"
check "volume:grown (before the resize is run again)"
expect_exit "volume:grown: the resize run again succeeds" 0 miren disk resize -n "$keepdisk" --size 2G
expect_eq "$(( $(df -B1 --output=size "$DATA/disks/$keepdisk" | tail -n 1) > 1900 * 1024 * 1024 ))" "1" "volume:grown: the filesystem has the new size"
wait_for "volume:grown: the database answers after the resize" 30 psql_as keep -c "SELECT 1"
check volume:grown
finish
