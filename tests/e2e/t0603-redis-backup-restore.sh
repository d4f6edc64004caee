#!/usr/bin/env bash
# miren-redis backups: `miren disk backup` of a small server under write
# load (an RDB snapshot the server takes), then `miren disk restore --force`
# over the same disk: the server restarts on the snapshot and holds every
# key acknowledged before the backup began.  Then a shared server with two
# tenants: both tenants' keys come back, and each tenant logs in with the
# password miren holds.  A damaged snapshot changes nothing.
. "$(dirname "$0")/lib.sh"
start_server || exit 1
mkapp() {
  mkdir -p "$TMP/$1/.miren"
  cat > "$TMP/$1/.miren/app.toml" <<TOML
name = "$1"
[services.web]
command = "exec sleep 100000"
[addons.miren-redis]
variant = "$2"
TOML
  miren deploy -C "$TMP/$1" >/dev/null 2>&1
}
as() { local app=$1; shift
  REDISCLI_AUTH="$(miren env get -a "$app" REDIS_PASSWORD --unmask)" \
    redis-cli --no-auth-warning -h "$(miren env get -a "$app" REDIS_HOST)" -p 6379 --user "$app" "$@" 2>&1; }

mkapp kv small
disk=$(disk_of_app kv)
# About 100k keys of bulk, then a writer acknowledging one key at a time.
seq 1 100000 | awk '{ printf "SET bulk:%d %s\n", $1, "vvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvv" }' |
  as kv > /dev/null
expect_eq "$(as kv DBSIZE)" "100000" "the bulk keys are written"
pw=$(miren env get -a kv REDIS_PASSWORD --unmask); host=$(miren env get -a kv REDIS_HOST)
# One connection writing w:1, w:2, ... and recording each acknowledged i.
cat > "$TMP/writer.ts" <<'TS'
import { RedisClient } from "bun";
import { renameSync, writeFileSync } from "fs";
const r = new RedisClient(process.env.URL);
for (let i = 1; ; i++) {
  await r.set(`w:${i}`, String(i));
  writeFileSync(process.env.ACK + ".tmp", String(i));
  renameSync(process.env.ACK + ".tmp", process.env.ACK);
}
TS
URL=$(miren env get -a kv REDIS_URL --unmask) ACK="$TMP/acked" bun run "$TMP/writer.ts" > "$TMP/writer.log" 2>&1 &
writer=$!
CLEANUP_HOOKS="kill $writer 2>/dev/null;"
wait_for "the writer writes" 10 test -s "$TMP/acked"
sleep 1
before=$(cat "$TMP/acked")
miren disk backup -n "$disk" -o "$TMP/kv.miren.zst" > "$TMP/backup.out" 2>&1
st=$?
sleep 1
kill $writer 2>/dev/null; wait $writer 2>/dev/null
expect_eq "$st" "0" "the backup under write load succeeds"
after=$(cat "$TMP/acked")
[ "$after" -gt "$before" ] && ok "writes went on during the backup ($before -> $after)" || fail "the writer stalled ($before -> $after)"
expect_eq "$(as kv FLUSHALL)" "OK" "the data is wiped (what the restore must bring back)"

out=$(miren disk restore -s "$TMP/kv.miren.zst" --force 2>&1)
expect_match "$out" "$disk" "the snapshot is restored over its disk: $(printf '%s' "$out" | head -n 3 | tr '\n' ' ')"
wait_for "the server answers on the restored disk" 20 sh -c "[ \"\$(REDISCLI_AUTH='$pw' redis-cli --no-auth-warning -h $host --user kv PING)\" = PONG ]"
expect_eq "$(as kv GET bulk:99999)" "vvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvv" "the bulk keys are back"
missing=0
for i in $(seq 1 "$before"); do echo "EXISTS w:$i"; done | as kv > "$TMP/exists"
missing=$(grep -vc '^1$' "$TMP/exists")
expect_eq "$missing" "0" "every one of the $before keys acknowledged before the backup is there"
n=$(as kv DBSIZE)
[ "$n" -ge $((100000 + before)) ] && ok "$n keys restored" || fail "only $n keys restored"
expect_eq "$(stat -c %a "$DATA/disks/$disk/data/appendonlydir/appendonly.aof.1.base.rdb" 2>/dev/null)" "600" "the restored append-only base is private"
# Restarted after the restore, the server loads the same data (the
# snapshot became its append-only file's base).
p=$(pgrep -f "^/usr/bin/redis-server $host:6379")
kill -9 "$p"
wait_for "the server restarts" 20 sh -c "[ \"\$(REDISCLI_AUTH='$pw' redis-cli --no-auth-warning -h $host --user kv GET w:1 2>/dev/null)\" = 1 ]"
expect_eq "$(as kv DBSIZE)" "$n" "with every key"

# A damaged snapshot is refused and nothing changes.
head -c 4000 "$TMP/kv.miren.zst" > "$TMP/bad.miren.zst"
if out=$(miren disk restore -s "$TMP/bad.miren.zst" --force 2>&1); then
  fail "a truncated snapshot was restored"
else
  ok "a truncated snapshot is refused"
fi
expect_eq "$(as kv DBSIZE)" "$n" "and the disk is as it was"

# Under a new name the snapshot becomes a disk no server uses, ready to
# start (its append-only file built on the snapshot); a backup of that disk
# is an offline copy, and its restore keeps the append-only file as copied.
out=$(miren disk restore -s "$TMP/kv.miren.zst" -n kvcopy 2>&1)
expect_eq "$?" "0" "the snapshot restores under a new name"
expect_match "$(redis-check-aof "$DATA/disks/kvcopy/data/appendonlydir/appendonly.aof.manifest" 2>&1)" "is valid" "its append-only file is valid"
miren disk backup -n kvcopy -o "$TMP/copy.miren.zst" > "$TMP/copy.out" 2>&1
expect_eq "$?" "0" "a disk no server uses is backed up (offline copy)"
out=$(miren disk restore -s "$TMP/copy.miren.zst" -n kvcopy2 2>&1)
expect_eq "$?" "0" "and restored"
expect_eq "$(cmp "$DATA/disks/kvcopy/data/appendonlydir/appendonly.aof.1.base.rdb" "$DATA/disks/kvcopy2/data/appendonlydir/appendonly.aof.1.base.rdb" && echo same)" "same" "with its append-only file as copied"

# Shared: two tenants, both come back; a tenant made after the backup is
# kept (with no keys) and logs in with its password.
mkapp alpha shared
mkapp beta shared
sdisk=$(disk_of_app alpha)
as alpha SET alpha:k a > /dev/null
as beta SET beta:k b > /dev/null
miren disk backup -n "$sdisk" -o "$TMP/shared.miren.zst" > /dev/null 2>&1
expect_eq "$?" "0" "the shared disk is backed up"
as alpha DEL alpha:k > /dev/null
as beta SET beta:k changed > /dev/null
mkapp gamma shared
out=$(miren disk restore -s "$TMP/shared.miren.zst" --force 2>&1)
expect_eq "$?" "0" "and restored over itself"
wait_for "alpha answers" 20 sh -c "[ \"\$(REDISCLI_AUTH='$(miren env get -a alpha REDIS_PASSWORD --unmask)' redis-cli --no-auth-warning -h $(miren env get -a alpha REDIS_HOST) --user alpha GET alpha:k)\" = a ]"
expect_eq "$(as beta GET beta:k)" "b" "beta's key is as it was at the backup"
expect_eq "$(as gamma PING)" "PONG" "gamma, made after the backup, still logs in"
expect_match "$(as gamma GET beta:k)" "NOPERM" "and is still limited to its prefix"
expect_eq "$(miren debug invariants >/dev/null 2>&1; echo $?)" "0" "the invariants hold"
finish
