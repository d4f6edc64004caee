#!/usr/bin/env bash
# Real sized disks: a small addon's disk is a sparse 1 GiB ext4 image
# loop-mounted at its directory (a shared server's 10 GiB); filled past its
# size, the app gets PostgreSQL's own disk-full error while another app's
# addon keeps answering; the >90% warning shows in addon list, app status
# and the daemon's log; `disk resize` grows it (then the insert succeeds)
# and refuses to shrink; after a simulated reboot (daemon stopped, servers
# killed, every mount and loop device gone) every disk is mounted again and
# the databases answer with their data; removing the addon leaves no image,
# mount or loop device.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib-backup.sh"
export MIREN_DISK_WATCH_MS=300
if [ "$(id -u)" != 0 ] || [ ! -w /dev/loop-control ]; then
  echo "# skipped: sized disks need root and loop devices (t0702 covers the directory mode)"
  finish; exit
fi
start_server || exit 1
expect_match "$(cat "$DATA/logs/server.log")" "disks: ext4 mode: sparse ext4 images" "the start-up log says which disk mode is in use"

deploy_addon_app full small
deploy_addon_app calm small
disk=$(disk_of_app full)
other=$(disk_of_app calm)
img="$DATA/volumes/$disk.img"
expect_eq "$(findmnt -no FSTYPE "$DATA/disks/$disk")" "ext4" "the small addon's disk is a mounted ext4"
expect_match "$(findmnt -no SOURCE "$DATA/disks/$disk")" "^/dev/loop[0-9]+$" "  on a loop device"
expect_eq "$(stat -c %s "$img")" "1073741824" "  its image is 1 GiB"
expect_eq "$(( $(stat -c %b "$img") * 512 < 200 * 1024 * 1024 ))" "1" "  and sparse (only what PostgreSQL wrote is allocated)"
expect_eq "$(stat -c %U "$DATA/disks/$disk")" "$(stat -c %U "$DATA/disks/$disk/pgdata")" "  its root belongs to the service user"
list=$(miren debug disk list)
expect_match "$list" "$disk +1\.0 GiB +[0-9.]+ MiB +[0-9]+% +ext4 +in use" "disk list shows SIZE, USED, USE% and the mode"
expect_match "$list" "Disk mode: ext4 " "  and the daemon's disk mode"

# Shared servers get 10 GiB.
deploy_addon_app wide shared
shared=$(disk_of_app wide)
expect_eq "$(stat -c %s "$DATA/volumes/$shared.img")" "10737418240" "the shared server's disk is a 10 GiB image"
expect_match "$(miren debug disk list)" "$shared +10\.0 GiB .* ext4 " "  listed as 10.0 GiB"

# Fill the disk, leaving 30 MiB: a 75 MiB insert hits the end.  Its WAL
# grows as fast as its table; PostgreSQL writes it into recycled segments
# when it has some, else it creates 16 MiB files, and a WAL file it cannot
# create is a PANIC (a restart) instead of the statement's error.  So the
# server first gets recycled segments, as a server that has been running
# a while has: WAL written, archived (for point-in-time recovery) and
# recycled at a checkpoint.
psql_as calm -c "CREATE TABLE kept (v text); INSERT INTO kept VALUES ('before')" >/dev/null
psql_as full -c "CREATE TABLE warm AS SELECT repeat(md5(i::text), 30) AS x FROM generate_series(1, 80000) i" -c "DROP TABLE warm" >/dev/null
psql_su "$disk" -c "SELECT pg_switch_wal()" -c CHECKPOINT >/dev/null
wait_for "the warm-up's WAL is archived" 60 sh -c "! ls '$DATA/disks/$disk/pgdata/pg_wal/archive_status' | grep -q '\.ready\$'"
psql_su "$disk" -c CHECKPOINT >/dev/null
avail=$(df -B1 --output=avail "$DATA/disks/$disk" | tail -n 1)
fallocate -l $((avail - 30 * 1024 * 1024)) "$DATA/disks/$disk/filler"
psql_as full -c "CREATE TABLE big (x text)" >/dev/null
insert="INSERT INTO big SELECT repeat(md5(i::text), 30) FROM generate_series(1, 80000) i"
out=$(psql_as full -c "$insert" 2>&1)
expect_match "$out" "could not (extend file|write block) .*No space left on device" "a full disk gives the app PostgreSQL's own disk-full error"
expect_eq "$(psql_as calm -q -c "INSERT INTO kept VALUES ('during'); SELECT count(*) FROM kept")" "2" "another app's addon keeps answering and writing"
expect_eq "$(psql_as full -c "SELECT 1")" "1" "the full disk's server still answers reads"
expect_match "$(miren addon list -a full)" "warning: disk '$disk' is (9[0-9]|100)% full" "addon list warns about the nearly full disk"
expect_match "$(miren app status -a full)" "warning: disk '$disk' is (9[0-9]|100)% full" "app status warns too"
expect_no_match "$(miren addon list -a calm)" "warning" "  not about the other app's disk"
wait_for "the daemon's log warns" 10 grep -q "disk '$disk' is [0-9]*% full" "$DATA/logs/server.log"

# Grow it: the insert then succeeds.
out=$(miren disk resize -n "$disk" --size 2G 2>&1)
expect_match "$out" "Disk $disk: 1\.0 GiB -> 2\.0 GiB" "disk resize grows the disk"
expect_eq "$(stat -c %s "$img")" "2147483648" "  its image is 2 GiB"
expect_eq "$(( $(df -B1 --output=size "$DATA/disks/$disk" | tail -n 1) > 1900 * 1024 * 1024 ))" "1" "  and so is its filesystem"
wait_for "the grown disk's server answers" 30 psql_as full -c "SELECT 1"
expect_eq "$(psql_as full -q -c "$insert" 2>&1)" "" "the insert succeeds on the grown disk"
expect_eq "$(psql_as full -c "SELECT count(*) FROM big")" "80000" "  every row is there"
expect_match "$(miren debug disk list)" "$disk +2\.0 GiB .* ext4 " "disk list shows the new size"
expect_no_match "$(miren addon list -a full)" "warning" "the warning is gone"
out=$(miren disk resize -n "$disk" --size 1G 2>&1); rc=$?
expect_eq "$rc" "6" "shrinking is refused (invalid size)"
expect_match "$out" "cannot shrink to 1024 MiB; nothing was changed" "  saying so"
expect_eq "$(stat -c %s "$img")" "2147483648" "  and nothing changed"
out=$(miren disk resize -n "$disk" --size 2X 2>&1); rc=$?
expect_eq "$rc" "2" "a bad size is a usage error"
expect_match "$out" "invalid size '2X'" "  naming the size"
expect_exit "an unknown disk is refused" 3 miren disk resize -n nope --size 2G
expect_eq "$(invariant_violations)" "" "invariants hold after the resize"

# A reboot: the daemon and the servers gone, every mount and loop device
# with them; the images stay.
stop_server
kill_supervised "$DATA"
kill_cgroups "$TMP"
umount_disks "$DATA"
expect_eq "$(findmnt -rno TARGET | grep -c "^$DATA/")" "0" "(reboot) nothing is mounted"
expect_eq "$(losetup -j "$img" | wc -l)" "0" "(reboot) no loop device holds an image"
start_server || exit 1
for d in "$disk" "$other" "$shared"; do
  expect_eq "$(findmnt -no FSTYPE "$DATA/disks/$d")" "ext4" "after the reboot $d is mounted again"
done
wait_for "the full app's database answers after the reboot" 30 psql_as full -c "SELECT 1"
expect_eq "$(psql_as full -c "SELECT count(*) FROM big")" "80000" "  with its data"
wait_for "the other app's database answers" 30 psql_as calm -c "SELECT 1"
expect_eq "$(psql_as calm -c "SELECT string_agg(v, ',' ORDER BY v) FROM kept")" "before,during" "  with its data"
wait_for "the shared server answers" 30 psql_as wide -c "SELECT 1"
expect_eq "$(invariant_violations)" "" "invariants hold after the reboot"

# Removal with the addon: no image, no mount, no loop device.
miren app destroy -a full -f >/dev/null 2>&1
wait_for "the addon's disk is removed" 30 sh -c "! miren debug disk list | grep -q '$disk'"
expect_eq "$(find "$DATA/volumes" -name "$disk*" | wc -l)" "0" "no image is left"
expect_eq "$(findmnt -rno TARGET | grep -c "$disk")" "0" "no mount is left"
expect_eq "$(losetup -a | grep -c "$disk")" "0" "no loop device is left"
expect_eq "$(find "$DATA/disks" -maxdepth 1 -name "$disk" | wc -l)" "0" "no directory is left"
expect_eq "$(invariant_violations)" "" "invariants hold after the removal"
finish
