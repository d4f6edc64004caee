#!/usr/bin/env bash
# A crashing service is restarted with backoff and shows crashloop; logs show its output.
. "$(dirname "$0")/lib.sh"
start_server || exit 1
mkdir -p "$TMP/crashy/.miren"
cat > "$TMP/crashy/.miren/app.toml" <<'TOML'
name = "crashy"
[services.worker]
command = "echo started $MIREN_SERVICE; exit 3"
TOML
miren deploy -C "$TMP/crashy" >/dev/null 2>&1
wait_for "the crashing service is restarted at least 3 times" 20 \
  sh -c '[ "$('"$MIREN_BIN"' app status -a crashy --format json | python3 -c "import json,sys; print(json.load(sys.stdin)[\"services\"][0][\"restarts\"])")" -ge 3 ]'
wait_for "it is reported as crashloop" 30 sh -c "'$MIREN_BIN' app status -a crashy | grep -q crashloop"
expect_eq "$(service_field crashy worker last_exit)" "3" "the last exit code is recorded"
logs=$(miren logs -a crashy)
expect_match "$logs" "started worker" "logs show the service output"
n=$(printf '%s\n' "$logs" | grep -c "started worker")
[ "$n" -ge 3 ] && ok "one line per run ($n)" || fail "expected >= 3 runs in the log, got $n"

# Backoff: runs get further apart (first gaps are short, later ones longer).
r1=$(service_field crashy worker restarts); sleep 2; r2=$(service_field crashy worker restarts)
[ $((r2 - r1)) -le 2 ] && ok "backoff slows restarts down" || fail "restarted $((r2 - r1)) times in 2s"

# A fixed app recovers.
cat > "$TMP/crashy/.miren/app.toml" <<'TOML'
name = "crashy"
[services.worker]
command = "echo healthy; exec sleep 1000"
TOML
miren deploy -C "$TMP/crashy" >/dev/null 2>&1
wait_for "the fixed service runs" 10 sh -c "'$MIREN_BIN' app status -a crashy | grep -Eq 'worker +(starting|running)'"
expect_eq "$(service_field crashy worker restarts)" "0" "a new release starts with no restarts"
finish
