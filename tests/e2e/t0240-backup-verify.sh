#!/usr/bin/env bash
# Verified backups: a backup restored into a scratch server off the app's
# path and checked by the engine's own checker (pg_amcheck, mariadb-check,
# redis-check-rdb).  A good backup of each engine passes without touching
# the app's running server; a file that is no backup is refused; no
# scratch area is left.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib-mysql.sh"

scratch_left() { ls -A "$DATA/disks" 2>/dev/null | grep -c '^\.scratch-'; }

start_server || exit 1

# PostgreSQL, small: a disk backup file, verified.
deploy_addon_app pgs small
psql_as pgs -q -c "CREATE TABLE t (i int PRIMARY KEY, s text); INSERT INTO t SELECT g, md5(g::text) FROM generate_series(1, 2000) g; CREATE INDEX t_s ON t (s)"
disk=$(disk_of_app pgs)
miren disk backup -n "$disk" -o "$TMP/pgs.miren.zst" >/dev/null 2>&1
out=$(miren addon backups verify miren-postgresql -a pgs -s "$TMP/pgs.miren.zst" 2>&1)
expect_eq "$?" "0" "a good PostgreSQL (small) backup verifies"
expect_match "$out" "verified: restored into a scratch server .* checked by pg_amcheck" "saying how it was proven"
json=$(miren addon backups verify miren-postgresql -a pgs -s "$TMP/pgs.miren.zst" --format json 2>/dev/null)
expect_eq "$(echo "$json" | jq -r '.ok, .kind, .checker')" "$(printf 'true\ndisk\npg_amcheck')" "--format json: ok, kind, checker"
expect_eq "$(echo "$json" | jq -r '.tenant_bytes > 1000')" "true" "the app's database was read out of the backup"
expect_eq "$(scratch_left)" "0" "no scratch area is left"
expect_eq "$(psql_as pgs -c 'SELECT count(*) FROM t')" "2000" "the app's data is untouched"

# PostgreSQL, shared: the shared server's disk holds several tenants.
deploy_addon_app pgsh shared
psql_as pgsh -q -c "CREATE TABLE u (i int PRIMARY KEY); INSERT INTO u SELECT generate_series(1, 500)"
sdisk=$(disk_of_app pgsh)
miren disk backup -n "$sdisk" -o "$TMP/pgsh.miren.zst" >/dev/null 2>&1
expect_exit "a good PostgreSQL (shared) backup verifies" 0 miren addon backups verify miren-postgresql -a pgsh -s "$TMP/pgsh.miren.zst" --format json
expect_eq "$(jq -r '.tenant_bytes > 1000' "$TMP/out")" "true" "the app's database was read out of the shared server's backup"
expect_eq "$(scratch_left)" "0" "no scratch area is left"

# MariaDB, small and shared: mariadb-backup copies, prepared, checked.
for v in small shared; do
  app=my$v
  write_mysql_app "$app" "$v"
  miren deploy -C "$TMP/$app" >/dev/null 2>&1
  mysql_as "$app" -e "CREATE TABLE t (i INT PRIMARY KEY, s VARCHAR(40), KEY (s)) ENGINE=InnoDB; INSERT INTO t SELECT seq, MD5(seq) FROM seq_1_to_2000; CREATE TABLE m (i INT) ENGINE=Aria; INSERT INTO m VALUES (1)"
  d=$(disk_of_app "$app")
  miren disk backup -n "$d" -o "$TMP/$app.miren.zst" >/dev/null 2>&1
  expect_exit "a good MariaDB ($v) backup verifies" 0 miren addon backups verify miren-mysql -a "$app" -s "$TMP/$app.miren.zst" --format json
  expect_eq "$(jq -r '.checker, .tenant_bytes > 1000' "$TMP/out")" "$(printf 'mariadb-check\ntrue')" "checked by mariadb-check, the app's database read out"
  expect_eq "$(scratch_left)" "0" "no scratch area is left"
  expect_eq "$(mysql_as "$app" -e 'SELECT COUNT(*) FROM t')" "2000" "the app's data is untouched"
done
expect_exit "a PostgreSQL backup is refused as a MariaDB one" 6 miren addon backups verify miren-mysql -a mysmall -s "$TMP/pgs.miren.zst"
expect_match "$(cat "$TMP/err")" "the backup is of addon 'miren-postgresql', not of miren-mysql" "naming both"

# Redis, small and shared: the snapshot and what the server loaded from it.
mkredis() {
  mkdir -p "$TMP/$1/.miren"
  printf 'name = "%s"\n[services.web]\ncommand = "exec sleep 100000"\n[addons.miren-redis]\nvariant = "%s"\n' "$1" "$2" > "$TMP/$1/.miren/app.toml"
  miren deploy -C "$TMP/$1" >/dev/null 2>&1
}
rd() { local app=$1; shift
  REDISCLI_AUTH="$(miren env get -a "$app" REDIS_PASSWORD --unmask)" \
    redis-cli --no-auth-warning -h "$(miren env get -a "$app" REDIS_HOST)" -p 6379 --user "$app" "$@" 2>&1; }
for v in small shared; do
  app=rd$v
  mkredis "$app" "$v"
  seq 1 500 | awk -v p="$app:" '{ printf "SET %sk%d v%d\n", p, $1, $1 }' | rd "$app" >/dev/null
  rd "$app" HSET "$app:h" a 1 b 2 >/dev/null
  d=$(disk_of_app "$app")
  miren disk backup -n "$d" -o "$TMP/$app.miren.zst" >/dev/null 2>&1
  expect_exit "a good Redis ($v) backup verifies" 0 miren addon backups verify miren-redis -a "$app" -s "$TMP/$app.miren.zst" --format json
  expect_eq "$(jq -r '.checker, .tenant_bytes > 1000' "$TMP/out")" "$(printf 'redis-check-rdb\ntrue')" "checked by redis-check-rdb, the app's keys read out"
  expect_eq "$(scratch_left)" "0" "no scratch area is left"
  expect_eq "$(rd "$app" GET "$app:k7")" "v7" "the app's data is untouched"
done

# Stored backups (miren addon backup): each engine and variant, the newest
# by default and one by --backup ID; the outcome recorded, no error in
# addon list.
for spec in pgs:miren-postgresql pgsh:miren-postgresql mysmall:miren-mysql myshared:miren-mysql rdsmall:miren-redis rdshared:miren-redis; do
  app=${spec%%:*} addon=${spec#*:}
  id=$(miren addon backup "$addon" -a "$app" --format json 2>/dev/null | jq -r .id)
  [ -n "$id" ] && [ "$id" != null ] || { fail "$app: addon backup gave no id"; continue; }
  out=$(miren addon backups verify "$addon" -a "$app" 2>&1)
  expect_eq "$?" "0" "$app: the newest stored backup verifies"
  expect_match "$out" "^Backup $id of $addon verified" "$app: naming it"
  expect_exit "$app: --backup ID verifies that one" 0 miren addon backups verify "$addon" -a "$app" --backup "$id" --format json
  expect_eq "$(jq -r '.id, .ok' "$TMP/out")" "$(printf '%s\ntrue' "$id")" "$app: --format json has its id"
  expect_no_match "$(miren addon list -a "$app" 2>&1)" "failed verification" "$app: addon list shows no error"
done
expect_eq "$(scratch_left)" "0" "no scratch area is left"
expect_exit "a backup of another app is refused" 3 miren addon backups verify miren-postgresql -a pgsh --backup "$id"
expect_match "$(cat "$TMP/err")" "is not one of addon miren-postgresql of app 'pgsh'" "saying whose it is"
deploy_addon_app none small
expect_exit "an app without stored backups is told so" 3 miren addon backups verify miren-postgresql -a none
expect_match "$(cat "$TMP/err")" "app 'none' has no stored backup of addon miren-postgresql" "saying so"

# A damaged stored chunk: two backups of unchanged data share chunks;
# one chunk they share is damaged: verification fails naming both, and
# addon list shows the error until a verification passes.
id1=$(miren addon backup miren-postgresql -a pgs --format json 2>/dev/null | jq -r .id)
id2=$(miren addon backup miren-postgresql -a pgs --format json 2>/dev/null | jq -r .id)
shared=$(jq -r '.chunks[][0]' "$DATA/backups/manifests/$id1.json" | sort | comm -12 - <(jq -r '.chunks[][0]' "$DATA/backups/manifests/$id2.json" | sort) | head -n 1)
if [ -n "$shared" ]; then
  f="$DATA/backups/chunks/${shared:0:2}/$shared"
  python3 -c "import sys; p=sys.argv[1]; b=bytearray(open(p,'rb').read()); b[len(b)//2] ^= 0xff; open(p,'wb').write(b)" "$f"
  expect_exit "a damaged stored chunk fails verification" 6 miren addon backups verify miren-postgresql -a pgs --backup "$id2"
  err=$(cat "$TMP/err")
  expect_match "$err" "chunk $shared of backup '$id2' is damaged" "naming the chunk"
  expect_match "$err" "backups using it: .*$id1" "and the first backup that uses it"
  expect_match "$err" "backups using it: .*$id2" "and the second"
  expect_match "$(miren addon list -a pgs 2>&1)" "error: miren-postgresql: backup $id2 failed verification: chunk $shared" "addon list shows the failed verification"
  expect_eq "$(miren addon list -a pgs --format json | jq -r '.[0].backups_verification.last_failure.id')" "$id2" "--format json has the last failure"
  expect_eq "$(scratch_left)" "0" "no scratch area is left"
else
  fail "the two backups share no chunk"
fi

# A backup of another engine's disk is refused for this addon.
expect_exit "a file that is not a backup is refused" 6 miren addon backups verify miren-postgresql -a pgs -s /etc/hostname
expect_match "$(cat "$TMP/err")" "zstd|not a" "saying why"
expect_eq "$(scratch_left)" "0" "no scratch area is left after a refusal"
expect_eq "$(invariant_violations)" "" "the invariants hold"
finish
