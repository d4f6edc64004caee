#!/usr/bin/env bash
# Disks as plain directories (MIREN_DISKS=dirs, as when the daemon is not
# root or the kernel has no loop devices): the start-up log and `miren debug
# disk list` say which mode is in use and why; a disk is a directory with
# its size recorded (no image, no mount); resize records the new size and
# refuses to shrink; removal removes the directory.
. "$(dirname "$0")/lib.sh"
export MIREN_DISKS=dirs
start_server || exit 1
expect_match "$(cat "$DATA/logs/server.log")" "disks: dirs mode \(plain directories, sizes recorded but not enforced\): MIREN_DISKS=dirs" "the start-up log says disks are directories, and why"
deploy_addon_app plain small
disk=$(disk_of_app plain)
wait_for "the addon's database answers" 30 psql_as plain -c "SELECT 1"
expect_eq "$(findmnt -rno TARGET | grep -c "^$DATA/")" "0" "nothing is mounted"
expect_eq "$(find "$DATA/volumes" -mindepth 1 2>/dev/null | wc -l)" "0" "no image is made (not even a spare)"
expect_eq "$(stat -c %d "$DATA/disks/$disk")" "$(stat -c %d "$DATA")" "the disk is a directory on the data directory's filesystem"
list=$(miren debug disk list)
expect_match "$list" "$disk +1\.0 GiB +[0-9.]+ MiB +[0-9]+% +dirs +in use" "disk list shows the recorded size and the dirs mode"
expect_match "$list" "Disk mode: dirs \(MIREN_DISKS=dirs\)" "  and why"
out=$(miren disk resize -n "$disk" --size 3G 2>&1)
expect_match "$out" "1\.0 GiB -> 3\.0 GiB" "resize records the new size"
expect_match "$out" "plain directory: the size is recorded, not enforced" "  saying it is not enforced"
expect_match "$(miren debug disk list)" "$disk +3\.0 GiB .* dirs " "  the list shows it"
expect_exit "shrinking is refused (invalid size)" 6 miren disk resize -n "$disk" --size 2G
expect_eq "$(psql_as plain -c "SELECT 1")" "1" "the database still answers"
expect_eq "$(invariant_violations)" "" "invariants hold"
miren app destroy -a plain -f >/dev/null 2>&1
wait_for "the disk is removed with the addon" 30 sh -c "! miren debug disk list | grep -q '$disk'"
expect_eq "$(find "$DATA/disks" -maxdepth 1 -name "$disk" | wc -l)" "0" "its directory is gone"
expect_eq "$(invariant_violations)" "" "invariants hold after the removal"
finish
