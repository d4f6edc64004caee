# shellcheck shell=bash
# Sourced by the bench scripts: one daemon in a fresh data directory, and
# one cleanup that leaves nothing behind (no server, no mount, no loop
# device, no directory).
#
#   bench_start NAME POOL    makes $tmp (/tmp/miren-bench-NAME.XXXXXX),
#                            exports MIREN_DATA_DIR=$tmp/data, starts
#                            "$bin server" ($bin: the caller's) on address
#                            pool POOL as $server
#                            and waits until it answers
#   bench_cleanup_extra      a function the script may define: run by the
#                            cleanup after the daemon stopped, before the
#                            mounts go (kills the baselines' own servers)

bench_cleanup() {
  [ -n "${server:-}" ] && { kill -TERM "$server" 2>/dev/null; wait "$server" 2>/dev/null || true; }
  for f in "$tmp"/data/run/*.pid; do
    [ -f "$f" ] && read -r _ _ pgid _ < "$f" && kill -KILL -- "-$pgid" 2>/dev/null
  done
  if declare -F bench_cleanup_extra >/dev/null; then bench_cleanup_extra || true; fi
  # Disks are mounted images; their loop devices go with the mounts.
  findmnt -rno TARGET | grep -F "$tmp/" | sort -r | while read -r m; do
    umount "$m" 2>/dev/null || umount -l "$m"
  done
  rm -rf "$tmp"
}

# shellcheck disable=SC2154  # bin is the calling script's
bench_start() {
  tmp=$(mktemp -d "/tmp/miren-bench-$1.XXXXXX")
  chmod 0755 "$tmp"
  export MIREN_DATA_DIR="$tmp/data"
  "$bin" server --quiet --addr-pool "$2" &
  server=$!
  trap bench_cleanup EXIT
  for _ in $(seq 100); do "$bin" app list >/dev/null 2>&1 && return 0; sleep 0.05; done
  echo "bench: the daemon did not answer" >&2
  return 1
}
