#!/usr/bin/env bash
# Verification of a backup that holds one tenant's logical dump (what a
# shared server's addon backup keeps): a fresh scratch server of the
# engine, the dump loaded into it, the engine's checker over it, the
# tenant read out again; for each engine.  A dump that does not load fails
# with the engine's complaint.  And a backup of damaged data (valid
# checksums, a PostgreSQL table's heap scribbled on): pg_amcheck finds it,
# "the data is damaged", exit 6.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib-mysql.sh"
PACK="$MIREN_SRC/tests/e2e/pack-snapshot.py"
scratch_left() { ls -A "$DATA/disks" 2>/dev/null | grep -c '^\.scratch-'; }
# dump_snapshot OUT ADDON FILE: a snapshot of kind dump holding FILE.
dump_snapshot() {
  rm -rf "$TMP/pack" && mkdir -p "$TMP/pack" && cp "$3" "$TMP/pack/dump"
  python3 "$PACK" "$1" "{\"disk\":\"dump\",\"size\":0,\"addon\":\"$2\",\"kind\":\"dump\",\"method\":\"dump\",\"created_at\":\"2026-12-01T00:00:00Z\"}" "$TMP/pack"
}

start_server || exit 1

# PostgreSQL: pg_dump -Fc of the app's database, as the app.
deploy_addon_app pg shared
psql_as pg -q -c "CREATE TABLE t (i int PRIMARY KEY, s text); INSERT INTO t SELECT g, md5(g::text) FROM generate_series(1, 1000) g"
PGPASSWORD=$(miren env get -a pg PGPASSWORD --unmask) pg_dump -Fc -h "$(miren env get -a pg PGHOST)" \
  -U "$(miren env get -a pg PGUSER)" -d "$(miren env get -a pg PGDATABASE)" > "$TMP/pg.dump"
dump_snapshot "$TMP/pgd.miren.zst" miren-postgresql "$TMP/pg.dump"
expect_exit "a PostgreSQL dump backup verifies" 0 miren addon backups verify miren-postgresql -a pg -s "$TMP/pgd.miren.zst" --format json
expect_eq "$(jq -r '.kind, .checker, .tenant_bytes > 1000' "$TMP/out")" "$(printf 'dump\npg_amcheck\ntrue')" "loaded into a fresh server, checked, read out again"
head -c 300 "$TMP/pg.dump" > "$TMP/pg-cut.dump"
dump_snapshot "$TMP/pgcut.miren.zst" miren-postgresql "$TMP/pg-cut.dump"
expect_exit "a dump that does not load fails verification" 6 miren addon backups verify miren-postgresql -a pg -s "$TMP/pgcut.miren.zst"
expect_match "$(cat "$TMP/err")" "the dump does not load" "saying so"
expect_eq "$(scratch_left)" "0" "no scratch area is left"

# MariaDB: mariadb-dump of the app's database, as the app.
write_mysql_app my shared
miren deploy -C "$TMP/my" >/dev/null 2>&1
mysql_as my -e "CREATE TABLE t (i INT PRIMARY KEY, s VARCHAR(40)); INSERT INTO t SELECT seq, MD5(seq) FROM seq_1_to_1000"
MYSQL_PWD=$(miren env get -a my MYSQL_PASSWORD --unmask) mariadb-dump --no-defaults -h "$(miren env get -a my MYSQL_HOST)" \
  -u "$(miren env get -a my MYSQL_USER)" --single-transaction --no-tablespaces "$(miren env get -a my MYSQL_DATABASE)" > "$TMP/my.sql"
dump_snapshot "$TMP/myd.miren.zst" miren-mysql "$TMP/my.sql"
expect_exit "a MariaDB dump backup verifies" 0 miren addon backups verify miren-mysql -a my -s "$TMP/myd.miren.zst" --format json
expect_eq "$(jq -r '.kind, .checker, .tenant_bytes > 1000' "$TMP/out")" "$(printf 'dump\nmariadb-check\ntrue')" "loaded into a fresh server, checked, read out again"

# Redis: RESTORE commands of the app's keys (the dump hook's format).
mkdir -p "$TMP/rd/.miren"
printf 'name = "rd"\n[services.web]\ncommand = "exec sleep 100000"\n[addons.miren-redis]\nvariant = "shared"\n' > "$TMP/rd/.miren/app.toml"
miren deploy -C "$TMP/rd" >/dev/null 2>&1
REDIS_HOST=$(miren env get -a rd REDIS_HOST) REDIS_PASSWORD=$(miren env get -a rd REDIS_PASSWORD --unmask) \
python3 - "$TMP/rd.resp" <<'PY'
import os, socket, sys
s = socket.create_connection((os.environ["REDIS_HOST"], 6379))
f = s.makefile("rb")
def cmd(*args):
    out = b"*%d\r\n" % len(args)
    for a in args:
        a = a if isinstance(a, bytes) else str(a).encode()
        out += b"$%d\r\n%s\r\n" % (len(a), a)
    return out
def reply():
    line = f.readline()
    if line[:1] == b"$":
        n = int(line[1:])
        if n < 0:
            return None
        data = f.read(n + 2)[:-2]
        return data
    if line[:1] == b"-":
        raise SystemExit(line.decode())
    return line
s.sendall(cmd("AUTH", "rd", os.environ["REDIS_PASSWORD"])); reply()
dump = b""
for i in range(300):
    k = "rd:k%d" % i
    s.sendall(cmd("SET", k, "v%d" % i)); reply()
    s.sendall(cmd("DUMP", k)); dump += cmd("RESTORE", k, 0, reply(), "REPLACE")
open(sys.argv[1], "wb").write(dump)
PY
dump_snapshot "$TMP/rdd.miren.zst" miren-redis "$TMP/rd.resp"
expect_exit "a Redis dump backup verifies" 0 miren addon backups verify miren-redis -a rd -s "$TMP/rdd.miren.zst" --format json
expect_eq "$(jq -r '.kind, .checker, .tenant_bytes > 1000' "$TMP/out")" "$(printf 'dump\nredis-check-rdb\ntrue')" "loaded into a fresh server, checked, read out again"

# Damaged data under valid checksums: a disk backup of a small server,
# extracted, one table's heap scribbled on, packed again.
deploy_addon_app pgs small
psql_as pgs -q -c "CREATE TABLE victim (i int PRIMARY KEY, s text); INSERT INTO victim SELECT g, repeat('x', 50) FROM generate_series(1, 100) g"
disk=$(disk_of_app pgs)
miren disk backup -n "$disk" -o "$TMP/pgs.miren.zst" >/dev/null 2>&1
expect_exit "the backup verifies before the damage" 0 miren addon backups verify miren-postgresql -a pgs -s "$TMP/pgs.miren.zst"
mkdir -p "$TMP/x" && (cd "$TMP/x" && tar --zstd -xf "$TMP/pgs.miren.zst")
rel=$(psql_as pgs -c "SELECT pg_relation_filepath('victim')")
python3 - "$TMP/x/disk/pgdata/$rel" <<'PY'
import struct, sys
p = sys.argv[1]
b = bytearray(open(p, 'rb').read())
# The first page's line pointers: normal ones pointing past the tuples.
v = 8150 | (1 << 15) | (100 << 17)
for i in range(24, 200, 4):
    b[i:i + 4] = struct.pack('<I', v)
open(p, 'wb').write(b)
PY
python3 "$PACK" "$TMP/damaged.miren.zst" "$(cat "$TMP/x/miren-backup.json")" "$TMP/x/disk"
expect_exit "a backup of damaged data fails verification" 6 miren addon backups verify miren-postgresql -a pgs -s "$TMP/damaged.miren.zst"
expect_match "$(cat "$TMP/err")" "^error: the data is damaged: .*victim" "saying what pg_amcheck found"
expect_eq "$(scratch_left)" "0" "no scratch area is left"
expect_eq "$(psql_as pgs -c 'SELECT count(*) FROM victim')" "100" "the app's own data is untouched"
expect_eq "$(invariant_violations)" "" "the invariants hold"
finish
