#!/usr/bin/env bash
# Bad input to miren addon backup / restore: each is refused with a clear
# message and the right exit status, and nothing changes (no backup is
# stored, the app's rows stay): an app without that addon, a usage error,
# an unknown backup ID, a backup of another engine, a newer format (of the
# container and of the dump), a truncated and a tampered file, another
# app's backup without --force.
# The CLI's own paths: the CLI of the daemon's build (sanitized in CI; lib.sh).
MIREN_CLI_BIN=${MIREN_BIN:-}
. "$(dirname "$0")/lib.sh"
start_server || exit 1

rows() { psql_as "$1" -c "SELECT string_agg(v, ',' ORDER BY v) FROM t" 2>&1; }
# (Not the background base backups of point-in-time recovery.)
n_stored() { grep -L '"kind":"pitr-base"' "$DATA"/backups/manifests/*.json 2>/dev/null | wc -l; }
mkdir -p "$TMP/plain/.miren"
printf 'name = "plain"\n[services.web]\ncommand = "exec sleep 100000"\n' > "$TMP/plain/.miren/app.toml"
miren deploy -C "$TMP/plain" > /dev/null 2>&1
deploy_addon_app sh shared
deploy_addon_app sm small
for a in sh sm; do psql_as $a -q -c "CREATE TABLE t (v text); INSERT INTO t VALUES ('$a')"; done
mkdir -p "$TMP/rd/.miren"
printf 'name = "rd"\n[services.web]\ncommand = "exec sleep 100000"\n[addons.miren-redis]\nvariant = "shared"\n' > "$TMP/rd/.miren/app.toml"
miren deploy -C "$TMP/rd" > /dev/null 2>&1

# An app without that addon; an app that does not exist.
expect_exit "backing up an addon the app does not have fails (not found)" 3 miren addon backup miren-postgresql -a plain
expect_match "$(cat "$TMP/err")" "^error: app 'plain' has no addon 'miren-postgresql'" "  saying so"
expect_match "$(cat "$TMP/err")" "^hint: see its addons with 'miren addon list -a plain'" "  with a hint"
expect_exit "backing up for an unknown app fails (not found)" 3 miren addon backup miren-postgresql -a nosuch
expect_eq "$(n_stored)" "0" "nothing was stored"

miren addon backup miren-postgresql -a sh -o "$TMP/sh.miren.zst" > "$TMP/out" 2>&1 || fail "backup of sh: $(cat "$TMP/out")"
id_sh=$(head -n 1 "$TMP/out")
miren addon backup miren-postgresql -a sm -o "$TMP/sm.miren.zst" > /dev/null 2>&1 || fail "backup of sm"
miren addon backup miren-redis -a rd -o "$TMP/rd.miren.zst" > /dev/null 2>&1 || fail "backup of rd"
for a in sh sm; do psql_as $a -q -c "INSERT INTO t VALUES ('new')"; done
n0=$(n_stored)

expect_exit "restoring into an app without that addon fails (not found)" 3 miren addon restore miren-postgresql -a plain -s "$TMP/sh.miren.zst"
expect_match "$(cat "$TMP/err")" "^error: app 'plain' has no addon 'miren-postgresql'" "  saying so"
expect_exit "neither --backup nor -s is a usage error" 2 miren addon restore miren-postgresql -a sh
expect_match "$(cat "$TMP/err")" "^error: which backup\? give --backup ID, -s FILE or --to TIME" "  saying so"
expect_exit "both --backup and -s is a usage error" 2 miren addon restore miren-postgresql -a sh --backup "$id_sh" -s "$TMP/sh.miren.zst"
expect_exit "an unknown backup ID is not found" 3 miren addon restore miren-postgresql -a sh --backup 20200101-000000-abcd
expect_exit "a missing file is not found" 3 miren addon restore miren-postgresql -a sh -s "$TMP/nosuch.miren.zst"

# Another engine's backup.
expect_exit "a backup of another engine is refused (invalid)" 6 miren addon restore miren-postgresql -a sh -s "$TMP/rd.miren.zst"
expect_match "$(cat "$TMP/err")" "^error: this backup is of miren-redis, not of miren-postgresql; nothing was changed" "  saying whose it is"

# A newer format: of the container, and of the dump in it.
rewrite() { # FILE KEY VALUE OUT: FILE with its header's KEY set to VALUE
  zstd -qdc "$1" > "$TMP/x.tar"
  python3 - "$TMP/x.tar" "$2" "$3" "$TMP/y.tar" <<'PY'
import io, json, sys, tarfile
src, key, value, dst = sys.argv[1:5]
with tarfile.open(src) as i, tarfile.open(dst, "w", format=tarfile.PAX_FORMAT) as o:
    for m in i.getmembers():
        data = i.extractfile(m).read() if m.isfile() else None
        if m.name == "miren-backup.json":
            h = json.loads(data); h[key] = int(value); data = json.dumps(h).encode(); m.size = len(data)
        o.addfile(m, io.BytesIO(data) if data is not None else None)
PY
  zstd -qf "$TMP/y.tar" -o "$4"
}
rewrite "$TMP/sh.miren.zst" format_version 2 "$TMP/newer.miren.zst"
expect_exit "a newer container format is refused (invalid)" 6 miren addon restore miren-postgresql -a sh -s "$TMP/newer.miren.zst"
expect_match "$(cat "$TMP/err")" "backup format version 2 is newer than this miren supports \(1\)" "  saying so"
rewrite "$TMP/sh.miren.zst" dump_format_version 2 "$TMP/newer-dump.miren.zst"
expect_exit "a newer dump format is refused (invalid)" 6 miren addon restore miren-postgresql -a sh -s "$TMP/newer-dump.miren.zst"
expect_match "$(cat "$TMP/err")" "dump format version 2 is newer than this miren supports \(1\)" "  saying so"

# Truncated and tampered files, of a dump and of a disk.
for a in sh sm; do
  size=$(stat -c %s "$TMP/$a.miren.zst")
  head -c $((size / 2)) "$TMP/$a.miren.zst" > "$TMP/trunc.miren.zst"
  expect_exit "$a: a truncated file is refused (invalid)" 6 miren addon restore miren-postgresql -a $a -s "$TMP/trunc.miren.zst"
  expect_match "$(cat "$TMP/err")" "^error: .*truncated" "  $a: saying why: $(head -n 1 "$TMP/err")"
  cp "$TMP/$a.miren.zst" "$TMP/tampered.miren.zst"
  printf '\xff\xfe\xfd\xfc' | dd of="$TMP/tampered.miren.zst" bs=1 seek=$((size * 2 / 3)) conv=notrunc status=none
  expect_exit "$a: a tampered file is refused (invalid)" 6 miren addon restore miren-postgresql -a $a -s "$TMP/tampered.miren.zst"
  expect_match "$(cat "$TMP/err")" "^error: .*(checksum|corrupt)" "  $a: saying why: $(head -n 1 "$TMP/err")"
done

# A stored backup with a damaged chunk (of a dump, and of a disk).
for a in sh sm; do
  bid=$(miren addon backup miren-postgresql -a $a | head -n 1)
  chunk=$(jq -r '.chunks[0][0]' "$DATA/backups/manifests/$bid.json")
  cp "$DATA/backups/chunks/${chunk:0:2}/$chunk" "$TMP/chunk.bak"
  printf 'damaged' | dd of="$DATA/backups/chunks/${chunk:0:2}/$chunk" bs=1 seek=20 conv=notrunc status=none
  expect_exit "$a: a stored backup with a damaged chunk is refused (invalid)" 6 miren addon restore miren-postgresql -a $a --backup "$bid"
  expect_match "$(cat "$TMP/err")" "^error: .*${chunk:0:12}" "  $a: naming the chunk: $(head -n 1 "$TMP/err")"
  cp "$TMP/chunk.bak" "$DATA/backups/chunks/${chunk:0:2}/$chunk"
done
n0=$(n_stored)

# A dump backup whose dump the engine refuses: nothing changes.
mkdir -p "$TMP/bad"
printf 'this is not a dump' > "$TMP/bad/dump"
python3 "$MIREN_SRC/tests/e2e/pack-snapshot.py" "$TMP/bad.miren.zst" \
  '{"kind": "dump", "addon": "miren-postgresql", "app": "sh", "dump_format_version": 1, "disk": "", "size": 18}' "$TMP/bad" ||
  fail "packing a bad dump"
expect_exit "a dump the engine refuses is refused (invalid)" 6 miren addon restore miren-postgresql -a sh -s "$TMP/bad.miren.zst"
expect_match "$(cat "$TMP/err")" "^error: the backup could not be loaded into addon miren-postgresql of app 'sh'; its data is as it was" "  saying the data is as it was"

# Another app's backup: refused without --force.
expect_exit "another app's backup is refused without --force (conflict)" 4 miren addon restore miren-postgresql -a sm -s "$TMP/sh.miren.zst"
expect_match "$(cat "$TMP/err")" "^error: this backup is of app 'sh'; restoring it would replace the data of app 'sm'" "  saying so"
expect_match "$(cat "$TMP/err")" "^hint: pass --force to restore another app's data" "  with the way out"

expect_eq "$(rows sh)" "new,sh" "sh's data is unchanged after every refusal"
expect_eq "$(rows sm)" "new,sm" "sm's data is unchanged after every refusal"
expect_eq "$(n_stored)" "$n0" "no backup was stored by a refusal"
expect_eq "$(ls -A "$DATA/tmp")" "" "nothing is left in tmp/"
expect_eq "$(ls -A "$DATA/disks" | grep -c '^\.restore-')" "0" "no staging disk is left"

# --force restores it (a dump of sh into sm's dedicated server).
out=$(miren addon restore miren-postgresql -a sm -s "$TMP/sh.miren.zst" --force 2>&1)
expect_eq "$?" "0" "with --force another app's dump restores: $(echo "$out" | tr '\n' ' ')"
expect_eq "$(rows sm)" "sh" "sm holds sh's rows"
[ -z "$(invariant_violations)" ] && ok "invariants hold" || fail "invariants: $(invariant_violations)"
finish
