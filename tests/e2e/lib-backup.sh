# shellcheck shell=bash
# Helpers of the backup tests (sourced after lib.sh).
#
#   su_password DISK             the superuser password of DISK's server
#   psql_su DISK [psql args...]  psql as the superuser on DISK's live server
#   restore_check FILE NAME SRC  restores FILE as a new disk NAME, starts
#                                PostgreSQL on it (own socket, no TCP), runs
#                                pg_amcheck on every database; records ok/fail;
#                                the copy keeps running for q_restored
#   q_restored NAME [psql args]  psql as the superuser on that copy
#   stop_restored NAME
PG_BINDIR=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)

su_password() {
  state_q ".servers[] | select(.disk == \"$1\") | .state.su_password"
}

psql_su() {
  local disk=$1; shift
  local conf="$DATA/disks/$disk/pgdata/miren-server.conf" sock port
  sock=$(sed -n "s/^unix_socket_directories = '\(.*\)'$/\1/p" "$conf")
  port=$(sed -n "s/^port = //p" "$conf")
  PGPASSWORD=$(su_password "$disk") PGCONNECT_TIMEOUT=5 \
    psql -X -v ON_ERROR_STOP=1 -qtA -h "$sock" -p "$port" -U postgres "$@"
}

restore_check() {
  local file=$1 name=$2 src=$3 sock="$TMP/sock-$2"
  if ! miren disk restore -s "$file" -n "$name" > "$TMP/restore.out" 2>&1; then
    fail "$name: restore failed: $(cat "$TMP/restore.out")"; return 1
  fi
  mkdir -p "$sock" && chown miren "$sock"
  su_password "$src" > "$sock/.pw"
  if ! runuser -u miren -- "$PG_BINDIR/pg_ctl" -D "$DATA/disks/$name/pgdata" -w -t 60 -s \
       -l "$sock/log" -o "-c listen_addresses='' -c port=5432 -c unix_socket_directories=$sock" start; then
    fail "$name: PostgreSQL does not start on the restored disk: $(tail -n 5 "$sock/log")"; return 1
  fi
  local out st
  out=$(runuser -u miren -- env PGPASSWORD="$(su_password "$src")" "$PG_BINDIR/pg_amcheck" \
    -h "$sock" -p 5432 -U postgres --all --heapallindexed --install-missing 2>&1 </dev/null)
  st=$?
  expect_eq "$st:$out" "0:" "$name: the restored copy starts and pg_amcheck reports nothing"
}

q_restored() {
  local name=$1; shift
  PGPASSWORD=$(cat "$TMP/sock-$name/.pw") psql -X -qtA -h "$TMP/sock-$name" -p 5432 -U postgres "$@"
}

stop_restored() {
  runuser -u miren -- "$PG_BINDIR/pg_ctl" -D "$DATA/disks/$1/pgdata" -m fast -s stop
}
