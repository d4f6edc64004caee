#!/usr/bin/env bash
# miren disk backup / restore as the seed describes them: a snapshot of a
# disk in use, restore refused without --force, restore --force then app
# restart serves the data as it was, restore under -n, and bad files refused
# without changing anything.
# The CLI's own paths: the CLI of the daemon's build (sanitized in CI; lib.sh).
MIREN_CLI_BIN=${MIREN_BIN:-}
. "$(dirname "$0")/lib.sh"
start_server || exit 1
app=$(copy_example python-visits)
miren deploy -C "$app" >/dev/null 2>&1
url=$(service_url python-visits web)
wait_for "the app answers" 15 curl -fsS "$url"
curl -fsS "$url" >/dev/null          # visits 1, 2 (wait_for counted one)
disk=$(disk_of_app python-visits)

mkdir -p "$TMP/bk" && cd "$TMP/bk" || exit 1
out=$(miren disk backup -n "$disk" 2>&1)
expect_match "$out" "^$disk-[0-9]{8}-[0-9]{6}\.miren\.zst" "backup writes NAME-YYYYMMDD-HHMMSS.miren.zst here"
file=$(ls "$TMP/bk"/*.miren.zst | head -n 1)
expect_match "$out" "postgresql-online-backup" "a disk in use is backed up online"
expect_match "$out" "original +[0-9.]+ MiB" "it prints the original size"
expect_match "$out" "compressed +[0-9.]+ [KM]iB \(ratio [0-9.]+\)" "the compressed size and ratio"
expect_match "$out" "took +[0-9.]+ s" "and the duration"
expect_eq "$(printf '%s\n' "$out" | sed -n 's/^  sha256 *//p')" "$(sha256sum "$file" | cut -d' ' -f1)" "the printed SHA-256 is the file's"
listing=$(tar --zstd -tvf "$file" 2>&1)
expect_eq "$(printf '%s\n' "$listing" | head -n 1 | awk '{print $NF}')" "miren-backup.json" "tar lists the header first"
expect_eq "$(printf '%s\n' "$listing" | tail -n 1 | awk '{print $NF}')" "miren-manifest.json" "and the manifest last"
expect_match "$listing" "disk/pgdata/backup_label" "with the backup label of the online backup"
expect_eq "$(ls "$TMP/bk" | grep -c partial)" "0" "no partial file is left"
expect_exit "an existing output file is never overwritten" 4 miren disk backup -n "$disk" -o "$file"
expect_exit "a backup of an unknown disk fails" 3 miren disk backup -n no-such-disk
expect_match "$(cat "$TMP/err")" "disk 'no-such-disk' not found" "naming the disk"
expect_exit "backup without -n is a usage error" 2 miren disk backup
expect_eq "$(ls "$TMP/bk" | wc -l)" "1" "failed backups leave no file"

# Change the data after the backup.
curl -fsS "$url" >/dev/null; curl -fsS "$url" >/dev/null   # visits 3, 4
expect_exit "restore onto the existing disk without --force fails" 4 miren disk restore -s "$file"
expect_match "$(cat "$TMP/err")" "disk '$disk' already exists" "saying the disk exists"
expect_match "$(cat "$TMP/err")" "hint: pass --force" "and how to replace it"
expect_eq "$(curl -fsS "$url")" "Visits: 5" "the data is untouched"

out=$(miren disk restore -s "$file" --force 2>&1)
expect_match "$out" "Restored disk $disk from .* every checksum verified" "restore --force restores"
expect_match "$out" "its database server was restarted" "restarting the server using it"
expect_match "$out" "miren app restart python-visits" "and says to restart the app"
miren app restart python-visits >/dev/null
url=$(service_url python-visits web)
wait_for "the app answers after the restart" 15 bash -c "exec 3<>/dev/tcp/127.0.0.1/$(service_field python-visits web port)"
expect_eq "$(curl -fsS "$url")" "Visits: 3" "the app serves the data as it was at the backup"
expect_eq "$(ls -a "$DATA/disks" | grep -c '^\.')" "2" "no staging or old copy is left in disks/"

out=$(miren disk restore -s "$file" -n restored-copy 2>&1)
expect_match "$out" "Restored disk restored-copy" "restore -n makes a new disk"
expect_match "$(miren debug disk list)" "restored-copy .* unused +restore of $disk" "disk list shows it"
expect_eq "$(cat "$DATA/disks/restored-copy/pgdata/PG_VERSION")" "15" "with the cluster in it"
expect_eq "$(stat -c %U "$DATA/disks/restored-copy/pgdata")" "miren" "owned by the service user"
expect_eq "$(stat -c %a "$DATA/disks/restored-copy/pgdata")" "700" "with mode 0700"

# Bad files: refused, nothing changes.
# (a running server's disk changes its used bytes by itself: WAL
# archiving, checkpoints; the list is compared without them)
disks() { miren debug disk list --format json | jq -c 'map(del(.used, .avail, .used_percent))'; }
before=$(disks)
size=$(stat -c %s "$file")
head -c $((size / 2)) "$file" > "$TMP/truncated.miren.zst"
cp "$file" "$TMP/flipped.miren.zst"
printf '\xff' | dd of="$TMP/flipped.miren.zst" bs=1 seek=$((size / 3)) conv=notrunc 2>/dev/null
head -c 100000 /dev/urandom > "$TMP/random.miren.zst"
printf 'hello' | zstd -q > "$TMP/notar.miren.zst"
mkdir -p "$TMP/other" && echo x > "$TMP/other/f" && tar --zstd -cf "$TMP/foreign.miren.zst" -C "$TMP/other" .
for bad in truncated flipped random notar foreign; do
  expect_exit "a $bad file is refused" 6 miren disk restore -s "$TMP/$bad.miren.zst" -n "bad-$bad"
  expect_match "$(cat "$TMP/err")" "^error: " "  with an error message ($(head -n1 "$TMP/err" | cut -c1-80))"
done
expect_exit "a bad file with --force onto the live disk is refused" 6 miren disk restore -s "$TMP/flipped.miren.zst" --force -n "$disk"
expect_eq "$(disks)" "$before" "no disk was created or changed"
expect_eq "$(ls -a "$DATA/disks" | grep -c '^\.')" "2" "no staging directory is left"
expect_eq "$(curl -fsS "$url")" "Visits: 4" "the live disk still serves"
expect_exit "a missing snapshot file is an error" 3 miren disk restore -s "$TMP/nope.miren.zst"
expect_exit "restore without -s is a usage error" 2 miren disk restore
finish
