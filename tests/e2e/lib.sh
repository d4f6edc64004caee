# shellcheck shell=bash
# Shared helpers of the end-to-end tests: each test sources this, gets a
# private data directory and server, and is cleaned up by the trap.
#
#   start_server            start `miren server` on $DATA (waits for the socket)
#   stop_server             SIGTERM and wait
#   kill_server             SIGKILL (a crash) and wait
#   miren ARGS...           the CLI against this test's server
#   ok DESC / fail DESC     record a check
#   expect_eq A B DESC, expect_match TEXT REGEX DESC, expect_fail DESC CMD...
#   wait_for DESC SECONDS CMD...   retry CMD until it succeeds
set -u
MIREN_BIN=${MIREN_BIN:?set MIREN_BIN to the miren binary}
# The CLI the helpers run (miren, the server start's wait, the invariant
# check): MIREN_CLI_BIN, else MIREN_BIN.  scripts/test runs the daemon of
# the ASan+UBSan build and the CLI of the plain build (a sanitized CLI start
# costs three times a plain one's CPU, and the suite starts thousands); the
# tests of the CLI's own paths (bad input, targets, streams, the docs'
# examples, scopes) set MIREN_CLI_BIN=$MIREN_BIN before sourcing this, so
# those paths run sanitized.
MIREN_CLI_BIN=${MIREN_CLI_BIN:-$MIREN_BIN}
MIREN_SRC=${MIREN_SRC:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
TEST_NAME=${TEST_NAME:-$(basename "$0" .sh)}
TMP=$(mktemp -d "/tmp/miren-$TEST_NAME.XXXXXX")
chmod 0755 "$TMP"
DATA="$TMP/data"
export MIREN_DATA_DIR="$DATA"
# Each test's addon servers get their own loopback /24, so tests can run
# side by side (tNNNN -> 127.NET.(NNNN mod 250 + 1).0/24, NET = 77 plus
# MIREN_TEST_NET (0..19), so several checkouts can run their suites at
# once, plus 20 for each 250 of NNNN, so no two tests share one).
num=${TEST_NAME:1:4}
case "$num" in [0-9][0-9][0-9][0-9]) ;; *) num=0249 ;; esac
NET=$(( 77 + ${MIREN_TEST_NET:-0} + 20 * (10#$num / 250) ))
POOL="127.$NET.$(( 10#$num % 250 + 1 )).0/24"
# A sanitized build (scripts/build --sanitize or --tsan) writes its reports
# here; any report fails the test at exit (a daemon that leaks or races
# passes nothing).
mkdir -p "$TMP/sanitizer"
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}log_path=$TMP/sanitizer/asan"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:+$UBSAN_OPTIONS:}print_stacktrace=1:log_path=$TMP/sanitizer/ubsan"
export TSAN_OPTIONS="${TSAN_OPTIONS:+$TSAN_OPTIONS:}log_path=$TMP/sanitizer/tsan"
SERVER_PID=""
PASSED=0
FAILED=0

# Kills every process group recorded in a pid file below $1.
kill_supervised() {
  local f pgid
  find "$1" -path '*/run/*.pid' 2>/dev/null | while read -r f; do
    read -r _ _ pgid _ < "$f" || continue
    [ -n "${pgid:-}" ] && kill -KILL -- "-$pgid" 2>/dev/null
  done
  return 0
}

# The cgroup v2 mount point (empty when there is none).
cgroup2_mount() {
  awk '{ for (i = 7; i < NF; i++) if ($i == "-") { if ($(i + 1) == "cgroup2") print $5; break } }' \
    /proc/self/mountinfo | head -n 1
}

# Kills and removes the cgroups of every data directory below $1 (named
# from the run directory's path, see lib/supervise/contain.h).
kill_cgroups() {
  local cg run base d
  cg=$(cgroup2_mount)
  [ -n "$cg" ] && [ -d "$cg/miren" ] || return 0
  find "$1" -maxdepth 3 -type d -name run 2>/dev/null | while read -r run; do
    base="$cg/miren/$(printf %s "$run" | sha256sum | cut -c1-16)"
    [ -d "$base" ] || continue
    for d in "$base"/*/; do [ -d "$d" ] && echo 1 > "$d/cgroup.kill" 2>/dev/null; done
    for _ in 1 2 3 4 5 6 7 8 9 10; do
      for d in "$base"/*/; do [ -d "$d" ] && rmdir "$d" 2>/dev/null; done
      rmdir "$base" 2>/dev/null && break
      sleep 0.1
    done
  done
  return 0
}

# The daemon's records (`miren debug state`, passwords unmasked) filtered
# by the jq expression $1, raw.  Tests read state through this, never
# through the store's file; the daemon must be running.
state_q() { miren debug state --unmask --format json | jq -r "$1"; }
# Succeeds when state_q "$1" prints exactly "$2".
state_is() { [ "$(state_q "$1")" = "$2" ]; }
# Unmounts every disk mounted below $1, deepest first (their loop devices
# go with their mounts: autoclear); waits a little for killed processes to
# let go, then detaches lazily.
umount_disks() {
  local m
  for _ in 1 2 3 4 5 6 7 8 9 10; do
    awk '{print $5}' /proc/self/mountinfo | grep -F "$1/" | sort -r | while read -r m; do
      umount "$m" 2>/dev/null
    done
    awk '{print $5}' /proc/self/mountinfo | grep -qF "$1/" || return 0
    sleep 0.2
  done
  awk '{print $5}' /proc/self/mountinfo | grep -F "$1/" | sort -r | while read -r m; do
    umount -l "$m" 2>/dev/null
  done
  return 0
}

# Every password the test's store holds must be absent from every log the
# daemon and its database servers wrote (checked for every test, at exit,
# when the daemons are gone: so it reads the stores' files).
scan_secrets() {
  local db pw leaks=""
  while read -r db; do
    while read -r pw; do
      [ -n "$pw" ] || continue
      if grep -rqF -- "$pw" "$(dirname "$db")/logs" 2>/dev/null; then leaks="$leaks $db"; fi
    done < <(sqlite3 "$db" "SELECT json_extract(state_json,'\$.password') FROM addons
      UNION SELECT json_extract(state_json,'\$.next_password') FROM addons
      UNION SELECT json_extract(state_json,'\$.su_password') FROM servers
      UNION SELECT json_extract(state_json,'\$.root_password') FROM servers
      UNION SELECT json_extract(state_json,'\$.admin_password') FROM servers
      UNION SELECT value FROM settings WHERE key LIKE '%template_password'" 2>/dev/null)
  done < <(find "$TMP" -name miren.db 2>/dev/null)
  [ -z "$leaks" ] && return 0
  echo "not ok - a password is in a log file of:$leaks"
  return 1
}

# Every report a sanitizer wrote during the test, printed; fails when any.
scan_sanitizer_reports() {
  local f clean=1
  for f in "$TMP"/sanitizer/*; do
    [ -s "$f" ] || continue
    clean=0
    echo "not ok - sanitizer report ${f##*/}:"; head -n 60 "$f"
  done
  return $((1 - clean))
}

# Commands a test adds for its own cleanup (run first at exit).
CLEANUP_HOOKS=""
cleanup() {
  local status=$?
  [ -n "$CLEANUP_HOOKS" ] && eval "$CLEANUP_HOOKS"
  if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill -TERM "$SERVER_PID" 2>/dev/null
    wait "$SERVER_PID" 2>/dev/null
  fi
  # Whatever a crashed server left behind must not outlive the test.
  # Every data directory the test used (database servers outlive daemons).
  kill_supervised "$TMP"
  kill_cgroups "$TMP"
  umount_disks "$TMP"
  scan_secrets || status=1
  scan_sanitizer_reports || status=1
  if [ "${KEEP_TMP:-0}" = 1 ]; then echo "kept $TMP"; else rm -rf "$TMP"; fi
  exit $status
}
trap cleanup EXIT

miren() { "$MIREN_CLI_BIN" "$@"; }

ok() { PASSED=$((PASSED + 1)); echo "ok - $1"; }
fail() {
  FAILED=$((FAILED + 1))
  echo "not ok - $1"
  if [ -f "$DATA/logs/server.log" ]; then
    echo "--- server.log (last 30 lines)"; tail -n 30 "$DATA/logs/server.log"; echo "---"
  fi
  for f in "$DATA"/logs/addons/*.log; do
    [ -f "$f" ] || continue
    echo "--- ${f#"$DATA"/} (last 8 lines)"; tail -n 8 "$f"; echo "---"
  done
}

expect_eq() { if [ "$1" = "$2" ]; then ok "$3"; else fail "$3: expected '$2', got '$1'"; fi; }
expect_match() {
  if printf '%s' "$1" | grep -Eq -- "$2"; then ok "$3"; else fail "$3: '$1' does not match /$2/"; fi
}
expect_no_match() {
  if printf '%s' "$1" | grep -Eq -- "$2"; then fail "$3: '$1' matches /$2/"; else ok "$3"; fi
}
# expect_fail DESC EXPECTED_EXIT CMD...: the command must exit with that code.
expect_exit() {
  local desc=$1 want=$2; shift 2
  local got=0
  "$@" >"$TMP/out" 2>"$TMP/err" || got=$?
  if [ "$got" = "$want" ]; then ok "$desc"; else
    fail "$desc: exit $got, wanted $want; stderr: $(cat "$TMP/err")"; fi
}

# Polls every 0.1 s for the first 2 s, then every 0.3 s; the polls skip
# the leak check at exit (the same commands run checked elsewhere; polling
# with it cost a fifth of the CI's CPU).
wait_for() {
  local desc=$1 secs=$2; shift 2
  local start=$SECONDS end=$((SECONDS + secs))
  while [ $SECONDS -lt $end ]; do
    if ASAN_OPTIONS="$ASAN_OPTIONS:detect_leaks=0" "$@" >/dev/null 2>&1; then
      ok "$desc"; return 0
    fi
    if [ $((SECONDS - start)) -lt 2 ]; then sleep 0.1; else sleep 0.3; fi
  done
  fail "$desc (timed out after ${secs}s)"
  return 1
}

start_server() {
  "$MIREN_BIN" server --data-dir "$DATA" --addr-pool "$POOL" --quiet "$@" &
  SERVER_PID=$!
  local end=$((SECONDS + 20))
  while [ $SECONDS -lt $end ]; do
    if "$MIREN_CLI_BIN" app list >/dev/null 2>&1; then return 0; fi
    if ! kill -0 "$SERVER_PID" 2>/dev/null; then
      echo "server exited during start"; cat "$DATA/logs/server.log" 2>/dev/null; return 1
    fi
    sleep 0.05
  done
  echo "server did not answer within 20s"; return 1
}

stop_server() {
  kill -TERM "$SERVER_PID"
  wait "$SERVER_PID" 2>/dev/null || true
  SERVER_PID=""
}

kill_server() {
  kill -KILL "$SERVER_PID"
  wait "$SERVER_PID" 2>/dev/null || true
  SERVER_PID=""
}

# The filled spare disks ready in $DATA (lib/disk/volume.h), one a line:
# images volumes/.spare-<kind>-<bytes>.img, in dirs mode directories
# spares/<kind>-<bytes> (a preparation in progress is neither).
filled_spares() {
  ls -A "$DATA/volumes" "$DATA/spares" 2>/dev/null |
    grep -E '^\.spare-[a-z0-9]+-[0-9]+\.img$|^[a-z0-9]+-[0-9]+$'
}
# Removes them (the daemon stopped): its preparer makes them again.
remove_filled_spares() {
  rm -f "$DATA"/volumes/.spare-*-*.img
  find "$DATA/spares" -mindepth 1 -maxdepth 1 -regex '.*/[a-z0-9]+-[0-9]+' -exec rm -rf {} + 2>/dev/null
  return 0
}

# Crash tests (lib/util/fault.h): starts the daemon with fault point $1
# armed; returns 0 once it answers, or once it crashed before answering
# (a fault reached during its start).
start_faulty() {
  MIREN_FAULT="$1" "$MIREN_BIN" server --data-dir "$DATA" --addr-pool "$POOL" --quiet &
  SERVER_PID=$!
  for _ in $(seq 200); do
    "$MIREN_CLI_BIN" app list >/dev/null 2>&1 && return 0
    kill -0 "$SERVER_PID" 2>/dev/null || return 0
    sleep 0.05
  done
  return 1
}
# Waits (up to 40 s) until the armed daemon crashed; 1 if it still runs.
wait_crash() {
  for _ in $(seq 400); do
    kill -0 "$SERVER_PID" 2>/dev/null || { wait "$SERVER_PID" 2>/dev/null; SERVER_PID=""; return 0; }
    sleep 0.1
  done
  return 1
}
# Sends SIGTERM to the daemon and waits for it; STOP_MS is how long that took.
stop_server_timed() {
  local t0
  t0=$(date +%s%N)
  kill -TERM "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null; SERVER_PID=""
  # shellcheck disable=SC2034  # read by the tests that source this file
  STOP_MS=$(( ($(date +%s%N) - t0) / 1000000 ))
}

# Whether process $1 runs (a zombie waiting for init to reap it does not).
alive() { [ -r "/proc/$1/stat" ] && ! awk '{exit !($3 == "Z")}' "/proc/$1/stat" 2>/dev/null; }
state_of() { if alive "$1"; then echo alive; else echo gone; fi; }

# The URL of service $2 of app $1, from `miren app status --format json`.
service_url() {
  miren app status -a "$1" --format json |
    python3 -c "import json,sys; print([s for s in json.load(sys.stdin)['services'] if s['name']=='$2'][0].get('url',''))"
}
service_field() {
  miren app status -a "$1" --format json |
    python3 -c "import json,sys; print([s for s in json.load(sys.stdin)['services'] if s['name']=='$2'][0].get('$3',''))"
}

# The value of variable $2 in the environment of process $1.
env_of() { tr '\0' '\n' < "/proc/$1/environ" | sed -n "s/^$2=//p"; }
# The releases of app $1 that processes run in (their cwd is the release's
# directory), as "N" or "N M" (sorted): after a rollback or a crash
# exactly one must.
running_releases() {
  local p
  for p in /proc/[0-9]*; do
    readlink "$p/cwd" 2>/dev/null
  done | sed -n "s|^$DATA/apps/$1/releases/\([0-9]*\)$|\1|p" | sort -un | tr '\n' ' ' | sed 's/ $//'
}

# Runs SQL as the app's database user (from the app's unmasked env).
# psql_as APP [psql args...]
psql_as() {
  local app=$1 host port user db; shift
  read -r host port user db < <(miren env list -a "$app" |
    awk '{ v[$1] = $2 } END { print v["PGHOST"], v["PGPORT"], v["PGUSER"], v["PGDATABASE"] }')
  PGHOST=$host PGPORT=$port PGUSER=$user PGDATABASE=$db \
  PGPASSWORD=$(miren env get -a "$app" PGPASSWORD --unmask) PGCONNECT_TIMEOUT=5 \
    psql -X -v ON_ERROR_STOP=1 -tA "$@"
}

# The postmaster pid of a disk (from its postmaster.pid), empty if none.
postmaster_pid() { head -n 1 "$DATA/disks/$1/pgdata/postmaster.pid" 2>/dev/null; }

# The unix socket directory of the server on disk $1 (pg_socket_dir in
# lib/addon/pg.c: 16 hex of the SHA-256 of the disk's path).
socket_dir_of() {
  local base=/run/miren-pg
  [ "$(id -u)" = 0 ] || base=/tmp/miren-pg-$(id -u)
  echo "$base/$(printf '%s' "$DATA/disks/$1" | sha256sum | cut -c1-16)"
}

# Every addon disk name in the data directory.
disk_of_app() {
  miren addon list -a "$1" --format json | python3 -c "import json,sys; print(json.load(sys.stdin)[0].get('disk',''))"
}

# The daemon's invariants: what `miren debug invariants` checks (addons <->
# apps, servers, variables; servers <-> disks <-> directories; the shared
# server's tenants <-> records), plus what only the outside can see: one
# live postmaster per server record and none other, tmp/ empty.  Needs the
# daemon running.  Prints what is wrong (nothing when all hold).
invariant_violations() {
  local bad="" out
  if ! out=$("$MIREN_CLI_BIN" debug invariants --format json 2>&1); then
    bad=$(printf '%s' "$out" | python3 -c '
import json, sys
try:
    print("".join("; " + v for v in json.load(sys.stdin)["violations"]), end="")
except Exception:
    print("; miren debug invariants failed", end="")')
    case "$bad" in *"debug invariants failed"*) bad="$bad: $out" ;; esac
  fi
  # One live postmaster per server record, none for anything else.
  local servers
  servers=$(state_q '.servers[] | select(.engine == "miren-postgresql") | .disk' | sort)
  # A postmaster is a process started as "postgres -D DIR" whose parent is
  # not one (a backend shows its parent's command line until it renames).
  ps -eo pid=,ppid=,args= | awk -v pre="-D $DATA/disks/" '
    index($0, pre) && $3 ~ /postgres$/ { cmd[$1] = $0; parent[$1] = $2 }
    END { for (p in cmd) if (!(parent[p] in cmd)) print cmd[p] }' > "$TMP/postmasters"
  for d in $servers; do
    n=$(grep -c -- "-D $DATA/disks/$d/pgdata" "$TMP/postmasters")
    [ "$n" = 1 ] || bad="$bad; $n postmasters for $d"
  done
  all=$(sed -n "s|.*-D $DATA/disks/\([^/]*\)/pgdata.*|\1|p" "$TMP/postmasters" | sort -u)
  [ "$all" = "$servers" ] || bad="$bad; postmasters for [$all], servers [$servers]"
  # One live mariadbd per miren-mysql server record, none for anything else.
  local my_servers my_all
  my_servers=$(state_q '.servers[] | select(.engine == "miren-mysql") | .disk' | sort)
  ps -eo pid=,args= | awk -v pre="--datadir=$DATA/disks/" '$2 ~ /mariadbd$/ && index($0, pre)' > "$TMP/mariadbds"
  for d in $my_servers; do
    n=$(grep -c -- "--datadir=$DATA/disks/$d/data " "$TMP/mariadbds")
    [ "$n" = 1 ] || bad="$bad; $n mariadbd for $d"
  done
  my_all=$(sed -n "s|.*--datadir=$DATA/disks/\([^/ ]*\)/data .*|\1|p" "$TMP/mariadbds" | sort -u)
  [ "$my_all" = "$my_servers" ] || bad="$bad; mariadbd for [$my_all], servers [$my_servers]"
  # One live redis-server per Redis server record (it works in the
  # disk's data/ directory), none for anything else.
  local rservers rall
  rservers=$(state_q '.servers[] | select(.engine == "miren-redis") | .disk' | sort)
  rall=$(for p in $(pgrep -x redis-server); do
    readlink "/proc/$p/cwd" 2>/dev/null; done | sed -n "s|^$DATA/disks/\([^/]*\)/data$|\1|p" | sort)
  [ "$rall" = "$rservers" ] || bad="$bad; redis-servers for [${rall//$'\n'/ }], servers [${rservers//$'\n'/ }]"
  [ -z "$(ls -A "$DATA/tmp")" ] || bad="$bad; tmp not empty"
  printf '%s' "$bad"
}


# write_addon_app NAME VARIANT: $TMP/NAME/.miren/app.toml of app NAME, one
# service that sleeps (and exits at once without DATABASE_URL) and a
# miren-postgresql addon of VARIANT.  deploy_addon_app also deploys it,
# quietly.
write_addon_app() {
  mkdir -p "$TMP/$1/.miren"
  cat > "$TMP/$1/.miren/app.toml" <<TOML
name = "$1"
[services.web]
command = "test -n \"\$DATABASE_URL\" || exit 1; exec sleep 100000"
[addons.miren-postgresql]
variant = "$2"
TOML
}
deploy_addon_app() {
  write_addon_app "$1" "$2"
  miren deploy -C "$TMP/$1" >/dev/null 2>&1
}

# deploy_plain_app NAME: app NAME with one service that sleeps and no
# addon (e.g. what a fork goes to), deployed quietly.
deploy_plain_app() {
  mkdir -p "$TMP/$1/.miren"
  printf 'name = "%s"\n[services.web]\ncommand = "exec sleep 100000"\n' "$1" > "$TMP/$1/.miren/app.toml"
  miren deploy -C "$TMP/$1" >/dev/null 2>&1
}

# write_reconnect_app NAME ADDON VARIANT CHECK: app NAME with addon ADDON
# of VARIANT and one service, "worker", that runs the shell CHECK (with
# the app's env; it exits 0 when it got in, else prints why) again and
# again, printing "connect ok PID" or "connect failed PID: WHY" each time,
# and keeps going for 1.5 s after SIGTERM, as a worker draining its queue
# does: a client reconnecting with the app's env, for the rotation tests.
write_reconnect_app() {
  mkdir -p "$TMP/$1/.miren"
  cat > "$TMP/$1/worker.sh" <<SH
#!/usr/bin/env bash
stop_at=""
trap 'stop_at=\$(( \$(date +%s%N) + 1500000000 ))' TERM
check() { $4; }
while :; do
  if out=\$(check 2>&1); then echo "connect ok \$\$"
  else echo "connect failed \$\$: \$out" | tr '\n' ' '; echo; fi
  if [ -n "\$stop_at" ] && [ "\$(date +%s%N)" -gt "\$stop_at" ]; then exit 0; fi
  sleep 0.01
done
SH
  chmod 755 "$TMP/$1/worker.sh"
  cat > "$TMP/$1/.miren/app.toml" <<TOML
name = "$1"
[services.worker]
command = "exec bash ./worker.sh"
[addons.$2]
variant = "$3"
TOML
}

# Copies an example into the test directory and prints its path.
copy_example() {
  cp -r "$MIREN_SRC/examples/$1" "$TMP/$1"
  echo "$TMP/$1"
}

finish() {
  echo "$PASSED passed, $FAILED failed"
  [ "$FAILED" -eq 0 ]
}
