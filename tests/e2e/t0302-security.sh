#!/usr/bin/env bash
# Security checks that fail if the protection is removed: file and socket
# modes, the API refusing users it does not trust (SO_PEERCRED), and no
# secret in any log file or CLI output after a busy session.
. "$(dirname "$0")/lib.sh"
start_server || exit 1
expect_eq "$(stat -c %a "$DATA/miren.sock")" "660" "the API socket is 0660"
for f in miren.db miren.db-wal miren.db-shm; do
  [ -e "$DATA/$f" ] && expect_eq "$(stat -c %a "$DATA/$f")" "600" "$f is 0600"
done

# A user who may not open the socket is told so.
expect_exit "another user cannot use the socket" 7 runuser -u nobody -- "$MIREN_BIN" app list --socket "$DATA/miren.sock"
expect_match "$(cat "$TMP/err")" "permission denied on the miren socket" "and is told why"
# Even with the socket opened up, the daemon checks the peer's credentials.
chmod 0666 "$DATA/miren.sock"
expect_exit "the daemon refuses an untrusted user's call" 7 runuser -u nobody -- "$MIREN_BIN" app list --socket "$DATA/miren.sock"
expect_match "$(cat "$TMP/err")" "this user may not use the miren API" "with a clear refusal"
code=$(runuser -u nobody -- curl -s -o /dev/null -w '%{http_code}' --unix-socket "$DATA/miren.sock" http://m/v1/apps)
expect_eq "$code" "403" "over raw HTTP too (403)"
chmod 0660 "$DATA/miren.sock"

# A busy session: both variants, env, status, logs, disks, a backup.
out="$TMP/cli-output.txt"
run() { "$MIREN_BIN" "$@" >>"$out" 2>&1; }
mkdir -p "$TMP/s1/.miren" "$TMP/s2/.miren"
printf 'name = "s1"\n[services.web]\ncommand = "env; exec sleep 100000"\n[addons.miren-postgresql]\nvariant = "small"\n' > "$TMP/s1/.miren/app.toml"
printf 'name = "s2"\n[services.web]\ncommand = "exec sleep 100000"\n[addons.miren-postgresql]\nvariant = "shared"\n' > "$TMP/s2/.miren/app.toml"
run deploy -C "$TMP/s1"; run deploy -C "$TMP/s2"
run deploy -C "$TMP/s1" --format json
for a in s1 s2; do
  run env list -a "$a"; run env list -a "$a" --format json
  run env get -a "$a" DATABASE_URL; run env get -a "$a" PGPASSWORD --format json
  run addon list -a "$a"; run addon list -a "$a" --format json
  run app status -a "$a" --format json
done
run debug disk list --format json
run addon create miren-postgresql -a s2
disk=$(disk_of_app s1)
(cd "$TMP" && run disk backup -n "$disk" --format json)
run app restart s1
miren addon destroy miren-postgresql -a s2 -f >>"$out" 2>&1

secrets=$(sqlite3 "$DATA/miren.db" "SELECT json_extract(state_json,'\$.password') FROM addons
  UNION SELECT json_extract(state_json,'\$.su_password') FROM servers
  UNION SELECT value FROM settings WHERE key = 'pg.template_password'" | grep -v '^$')
expect_match "$(printf '%s\n' "$secrets" | wc -l)" "^[3-9]$" "the store holds the passwords to look for"
leaks=""
while read -r pw; do
  [ -n "$pw" ] || continue
  grep -qF -- "$pw" "$out" && leaks="$leaks cli-output"
  grep -rlF -- "$pw" "$DATA/logs" >/dev/null 2>&1 && leaks="$leaks $(grep -rlF -- "$pw" "$DATA/logs" | tr '\n' ' ')"
done <<<"$secrets"
# The app's own log holds its env (the service printed it): that one is the
# app's business.  Everything miren writes must be clean.
expect_eq "$leaks" "" "no password in any CLI output or daemon/PostgreSQL log"
finish
