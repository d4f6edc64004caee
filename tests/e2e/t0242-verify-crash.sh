#!/usr/bin/env bash
# Verification cut short: the daemon killed at every fault point of a
# verification (scratch:read, scratch:started, scratch:checked) and at a
# delayed instant inside the checker, for each engine.  The next daemon
# stops every scratch server the killed one left and removes its scratch
# area; no process works in a scratch area; the app's data and its
# server are untouched; a verification afterwards passes.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib-mysql.sh"

scratch_left() { ls -A "$DATA/disks" 2>/dev/null | grep -c '^\.scratch-'; }
# Processes whose working directory is in a scratch area.
scratch_procs() {
  local n=0 p c
  for p in /proc/[0-9]*; do
    c=$(readlink "$p/cwd" 2>/dev/null) || continue
    case "$c" in "$DATA"/disks/.scratch-*) n=$((n + 1)) ;; esac
  done
  echo "$n"
}

start_server || exit 1
deploy_addon_app pg small
psql_as pg -q -c "CREATE TABLE t (i int PRIMARY KEY); INSERT INTO t SELECT generate_series(1, 1000)"
miren disk backup -n "$(disk_of_app pg)" -o "$TMP/pg.miren.zst" >/dev/null 2>&1
write_mysql_app my small
miren deploy -C "$TMP/my" >/dev/null 2>&1
mysql_as my -e "CREATE TABLE t (i INT PRIMARY KEY); INSERT INTO t SELECT seq FROM seq_1_to_1000"
miren disk backup -n "$(disk_of_app my)" -o "$TMP/my.miren.zst" >/dev/null 2>&1
mkdir -p "$TMP/rd/.miren"
printf 'name = "rd"\n[services.web]\ncommand = "exec sleep 100000"\n[addons.miren-redis]\nvariant = "small"\n' > "$TMP/rd/.miren/app.toml"
miren deploy -C "$TMP/rd" >/dev/null 2>&1
miren disk backup -n "$(disk_of_app rd)" -o "$TMP/rd.miren.zst" >/dev/null 2>&1
stop_server

POINTS=$(MIREN_FAULT=list "$MIREN_BIN" | awk '$1 == "operation" && index($2, "scratch:") == 1 { print $2 }')
expect_eq "$(echo "$POINTS" | wc -w)" "3" "the scratch fault points are declared"
for spec in pg:miren-postgresql my:miren-mysql rd:miren-redis; do
  app=${spec%%:*} addon=${spec#*:}
  for p in $POINTS scratch:started@300; do
    start_faulty "$p" || { fail "$app $p: server did not start"; continue; }
    miren addon backups verify "$addon" -a "$app" -s "$TMP/$app.miren.zst" >/dev/null 2>&1
    wait_crash || { fail "$app $p: the daemon did not crash there"; stop_server; continue; }
    start_server || exit 1
    expect_eq "$(scratch_left)" "0" "$app $p: the next daemon removed the scratch area"
    expect_eq "$(scratch_procs)" "0" "$app $p: no process works in a scratch area"
    stop_server
  done
done
start_server || exit 1
expect_eq "$(psql_as pg -c 'SELECT count(*) FROM t')" "1000" "the PostgreSQL app's data is intact"
expect_eq "$(mysql_as my -e 'SELECT COUNT(*) FROM t')" "1000" "the MariaDB app's data is intact"
for spec in pg:miren-postgresql my:miren-mysql rd:miren-redis; do
  app=${spec%%:*} addon=${spec#*:}
  expect_exit "$app: a verification after the crashes passes" 0 miren addon backups verify "$addon" -a "$app" -s "$TMP/$app.miren.zst"
done
expect_eq "$(scratch_left)" "0" "no scratch area is left"
expect_eq "$(invariant_violations)" "" "the invariants hold"
finish
