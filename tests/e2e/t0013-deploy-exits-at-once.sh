#!/usr/bin/env bash
# A deploy whose service exits at once says so and points at `miren logs`
# instead of reporting the release live.
. "$(dirname "$0")/lib.sh"
start_server || exit 1
mkdir -p "$TMP/quitter/.miren"
cat > "$TMP/quitter/.miren/app.toml" <<'TOML'
name = "quitter"
[services.web]
command = "echo 'cannot open config.yml' >&2; exit 3"
TOML
expect_exit "a deploy whose service exits at once fails" 1 miren deploy -C "$TMP/quitter"
err=$(cat "$TMP/err")
expect_match "$err" "release 1 of quitter is recorded, but its service 'web' exited at once \(exit status 3\)" "it says which service exited and how"
expect_match "$err" "hint: see its output with 'miren logs -a quitter -s web'" "it points at miren logs"
expect_no_match "$(cat "$TMP/out" 2>/dev/null)" "is live" "it does not say the release is live"
expect_match "$(miren logs -a quitter -s web)" "cannot open config.yml" "the log it points at has the service's message"

# Exiting within its first second counts too; --format json shows it and
# exits 1.
cat > "$TMP/quitter/.miren/app.toml" <<'TOML'
name = "quitter"
[services.web]
command = "sleep 0.3; kill -KILL $$"
TOML
json=$(miren deploy -C "$TMP/quitter" --format json)
expect_eq "$?" 1 "deploy --format json exits 1 when a service exited"
expect_eq "$(printf '%s' "$json" | jq -r '.services[0].restarts > 0 or .services[0].state == "backoff"')" true "the JSON shows the service exited"
expect_eq "$(printf '%s' "$json" | jq -r '.services[0].last_signal')" 9 "with the signal that ended it"

# A service that keeps running is live, and the deploy succeeds.
cat > "$TMP/quitter/.miren/app.toml" <<'TOML'
name = "quitter"
[services.web]
command = "exec sleep 1000"
TOML
out=$(miren deploy -C "$TMP/quitter" 2>&1)
expect_eq "$?" 0 "a deploy whose service runs succeeds"
expect_match "$out" "Release 3 of quitter is live" "and says the release is live"
expect_match "$out" "web +running" "with the service running"
finish
