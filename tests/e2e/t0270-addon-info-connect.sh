#!/usr/bin/env bash
# miren addon info and miren addon connect, for every engine and both
# variants.  info: every field (engine and version, variant, address, disk
# used / size, the app's data, connections now / max, uptime, last backup
# and last verified backup, point-in-time window or null, when the
# credentials were issued, pending maintenance), in JSON and as text, with
# no secret.  connect -c: a statement's output, a failing statement's
# non-zero exit, the password on no process's command line (only in the
# client's environment), and a session on stdin.  A WAL archive failure
# is pending maintenance for PostgreSQL.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib-backup.sh"
start_server || exit 1
t0=$(date +%s)

mkapp() {
  mkdir -p "$TMP/$1/.miren"
  printf 'name = "%s"\n[services.web]\ncommand = "exec sleep 100000"\n[addons.%s]\nvariant = "%s"\n' \
    "$1" "$2" "$3" > "$TMP/$1/.miren/app.toml"
  miren deploy -C "$TMP/$1" >/dev/null 2>&1
}
declare -A ENGINE=([miren-postgresql]=PostgreSQL [miren-mysql]=MariaDB [miren-redis]=Redis)
declare -A VERSION=([miren-postgresql]='^15\.[0-9]+$' [miren-mysql]='^10\.11\.' [miren-redis]='^7\.[0-9]+\.[0-9]+$')
declare -A PWENV=([miren-postgresql]=PGPASSWORD [miren-mysql]=MYSQL_PWD [miren-redis]=REDISCLI_AUTH)
declare -A CLIENT=([miren-postgresql]=psql [miren-mysql]=mariadb [miren-redis]=redis-cli)
declare -A VARS=([miren-postgresql]="PGHOST PGPORT PGPASSWORD" [miren-mysql]="MYSQL_HOST MYSQL_PORT MYSQL_PASSWORD"
  [miren-redis]="REDIS_HOST REDIS_PORT REDIS_PASSWORD")
# A statement that answers 42, one that fails, one that waits 10 s.
stmt_ok() { case $1 in miren-redis) echo "GET $2:k" ;; *) echo "SELECT 40+2" ;; esac; }
stmt_bad() { case $1 in miren-redis) echo "NOSUCHCOMMAND $2:k" ;; *) echo "SELECT no_such_column" ;; esac; }
stmt_sleep() { case $1 in miren-postgresql) echo "SELECT pg_sleep(10)" ;; miren-mysql) echo "SELECT SLEEP(10)" ;;
  *) echo "BLPOP $2:nothing 10" ;; esac; }
# How many processes have the text of file $1 on their command line (the
# text is read from the file, so the search is on no command line itself).
on_cmdlines() { cat /proc/[0-9]*/cmdline 2>/dev/null | tr '\0' '\n' | grep -acFf "$1"; }

n=0
for addon in miren-postgresql miren-mysql miren-redis; do
  for variant in small shared; do
    n=$((n + 1)); app="ic$n"; what="$addon $variant"
    mkapp "$app" "$addon" "$variant"
    read -r hv pv pwv <<< "${VARS[$addon]}"
    host=$(miren env get -a "$app" "$hv"); port=$(miren env get -a "$app" "$pv")
    pw=$(miren env get -a "$app" "$pwv" --unmask)
    [ -n "$pw" ] || fail "$what: no password in the env"

    # --- connect -c ---------------------------------------------------
    [ "$addon" = miren-redis ] && miren addon connect "$addon" -a "$app" -c "SET $app:k 42" > /dev/null
    out=$(miren addon connect "$addon" -a "$app" -c "$(stmt_ok "$addon" "$app")" 2>&1)
    rc=$?
    expect_eq "$rc" "0" "$what: connect -c runs a statement"
    expect_match "$out" "(^|[^0-9])42([^0-9]|$)" "$what: connect -c prints the statement's output"
    out=$(miren addon connect "$addon" -a "$app" -c "$(stmt_bad "$addon" "$app")" 2>&1)
    rc=$?
    [ "$rc" -ne 0 ] && ok "$what: a failing statement exits $rc" || fail "$what: a failing statement exits 0: $out"
    expect_no_match "$out" "$pw" "$what: the error shows no password"
    # The password is on no command line while the client runs (miren
    # execs the client: $! is the client once it runs).
    (umask 077; printf '%s\n' "$pw" > "$TMP/pw")
    "$MIREN_BIN" addon connect "$addon" -a "$app" -c "$(stmt_sleep "$addon" "$app")" > "$TMP/sleep.out" 2>&1 &
    cpid=$!
    wait_for "$what: the client (${CLIENT[$addon]}) runs" 10 sh -c "tr '\\0' ' ' < /proc/$cpid/cmdline | grep -q '^[^ ]*${CLIENT[$addon]} '"
    val=$(tr '\0' '\n' < "/proc/$cpid/environ" | sed -n "s/^${PWENV[$addon]}=//p")
    [ -n "$val" ] && [ "$val" = "$pw" ] && ok "$what: the password is in the client's environment (${PWENV[$addon]})" \
      || fail "$what: the client's ${PWENV[$addon]} is not the app's password"
    expect_eq "$(stat -c %a "/proc/$cpid/environ")" "400" "$what: which only its user reads"
    wait_for "$what: info counts the client's session" 5 sh -c \
      "'$MIREN_BIN' addon info $addon -a $app --format json | jq -e '.connections >= 1'"
    expect_eq "$(on_cmdlines "$TMP/pw")" "0" "$what: the password is on no process's command line"
    wait "$cpid"
    expect_eq "$?" "0" "$what: the waiting statement ends with 0"

    # --- info -----------------------------------------------------------
    j=$(miren addon info "$addon" -a "$app" --format json)
    expect_eq "$?" "0" "$what: addon info --format json succeeds"
    q() { jq -r "$1" <<< "$j"; }
    now=$(date +%s)
    expect_eq "$(q .engine)" "${ENGINE[$addon]}" "$what: engine"
    expect_match "$(q .version)" "${VERSION[$addon]}" "$what: version"
    expect_eq "$(q .variant)" "$variant" "$what: variant"
    expect_eq "$(q .shared)" "$([ "$variant" = shared ] && echo true || echo false)" "$what: shared or dedicated"
    expect_eq "$(q .status)" "active" "$what: status"
    expect_eq "$(q .address)" "$host:$port" "$what: address is the app's host and port"
    expect_eq "$(q '.disk.size > 0 and .disk.used > 0 and .disk.used <= .disk.size and (.disk.name | length > 0)')" "true" \
      "$what: disk used / size ($(q '.disk.used') / $(q '.disk.size'))"
    expect_eq "$(q '.data_bytes | type')" "number" "$what: the app's data size"
    expect_eq "$(q '.connections >= 0 and .max_connections > 0')" "true" \
      "$what: connections now / max ($(q .connections) / $(q .max_connections))"
    expect_eq "$(q ".uptime_s >= 0 and .started_at >= $t0 - 5 and .started_at <= $now + 1")" "true" \
      "$what: uptime ($(q .uptime_s) s)"
    expect_eq "$(q ".credentials_issued_at >= $t0 and .credentials_issued_at <= $now")" "true" \
      "$what: credentials issued at provisioning"
    expect_eq "$(q ".credential_age_s >= 0 and (.credential_age_s - ($now - .credentials_issued_at) | fabs) <= 2")" "true" \
      "$what: credential age ($(q .credential_age_s) s)"
    expect_eq "$(q '.last_backup, .last_verified_backup')" "$(printf 'null\nnull')" "$what: no backup yet"
    expect_eq "$(q '.maintenance')" "[]" "$what: no maintenance pending"
    if [ "$addon" = miren-postgresql ]; then
      wait_for "$what: a point-in-time window" 60 sh -c \
        "'$MIREN_BIN' addon info $addon -a $app --format json | jq -e '.pitr_window.from <= .pitr_window.to' "
    else
      expect_eq "$(q .pitr_window)" "null" "$what: no point-in-time window (null, not invented)"
    fi
    expect_no_match "$j" "$pw" "$what: no password in the JSON"

    # Backups: the last one, then the last verified one.
    id=$(miren addon backup "$addon" -a "$app" 2>/dev/null | head -n 1)
    j=$(miren addon info "$addon" -a "$app" --format json)
    expect_eq "$(q .last_backup.id)" "$id" "$what: last backup"
    expect_eq "$(q ".last_backup.created_at >= $t0")" "true" "$what: with its time"
    expect_eq "$(q .last_verified_backup)" "null" "$what: not verified yet"
    miren addon backups verify "$addon" -a "$app" > /dev/null 2>&1
    j=$(miren addon info "$addon" -a "$app" --format json)
    expect_eq "$(q .last_verified_backup.id)" "$id" "$what: last verified backup"

    # The text form: every field, '-' where there is none.
    txt=$(miren addon info "$addon" -a "$app")
    for label in "Addon: +$addon \\(${ENGINE[$addon]} " "Variant: +$variant" "Status: +active" \
      "Address: +$host:$port" "Disk: +[0-9.]+ [KMG]?i?B used of [0-9.]+ [KMG]iB" "Data: " \
      "Connections: +[0-9]+ of [0-9]+" "Uptime: +[0-9]" "Last backup: +$id" "Last verified: +$id" \
      "Credentials: +issued [0-9-]+ [0-9:]+ UTC" "Maintenance: +none pending"; do
      expect_match "$txt" "$label" "$what: text shows '$label'"
    done
    if [ "$addon" = miren-postgresql ]; then
      expect_match "$txt" "Point in time: +[0-9-]+ [0-9:]+ to [0-9-]+ [0-9:]+ UTC" "$what: text shows the window"
    else
      expect_match "$txt" "Point in time: +-$" "$what: text shows '-' for no window"
    fi
    expect_no_match "$txt" "$pw" "$what: no password in the text"
  done
done

# A session on stdin (not a terminal): the client reads it.
out=$(echo "SELECT 6*7;" | miren addon connect miren-postgresql -a ic1 2>&1)
expect_match "$out" "42" "connect without -c reads statements from stdin"

# Bad input: nothing to connect to, an empty statement.
expect_exit "connect to an addon the app lacks: not found" 3 miren addon connect miren-redis -a ic1 -c PING
expect_exit "info of an addon the app lacks: not found" 3 miren addon info miren-redis -a ic1
expect_exit "connect -c '' is a usage error" 2 miren addon connect miren-redis -a ic5 -c ""
expect_exit "an unbalanced quote is refused" 6 miren addon connect miren-redis -a ic5 -c "GET 'ic5:k"

# PostgreSQL: a failing WAL archive is pending maintenance.
disk=$(disk_of_app ic1)
srv=$(state_q ".servers[] | select(.disk == \"$disk\") | .id")
wal="$DATA/backups/wal/$srv"
chmod 000 "$wal"
miren addon connect miren-postgresql -a ic1 -c "CREATE TABLE t (v int); INSERT INTO t VALUES (1)" > /dev/null
psql_su "$disk" -c "SELECT pg_switch_wal()" > /dev/null
wait_for "info lists the failing WAL archive as maintenance" 30 sh -c \
  "'$MIREN_BIN' addon info miren-postgresql -a ic1 --format json | jq -e '.maintenance[] | select(test(\"WAL archiving of server $srv fails\"))'"
expect_match "$(miren addon info miren-postgresql -a ic1)" "Maintenance:
  - WAL archiving of server $srv fails" "the text lists it under Maintenance"
chmod 700 "$wal"

[ -z "$(invariant_violations)" ] && ok "invariants hold" || fail "invariants: $(invariant_violations)"
finish
