#!/usr/bin/env bash
# The seed's Bun example, exactly as printed there, deploys and counts visits.
. "$(dirname "$0")/lib.sh"
if ! command -v bun >/dev/null 2>&1; then
  fail "bun is not installed (scripts/bootstrap installs it from npm)"; finish; exit 1
fi
start_server || exit 1
app=$(copy_example bun-visits)
out=$(miren deploy -C "$app" 2>&1)
expect_match "$out" "Provisioning addon miren-postgresql \(shared\)" "deploy provisions the shared addon"
expect_match "$out" "Release 1 of my-bun-app is live" "the Bun app is deployed"
url=$(service_url my-bun-app web)
port=$(service_field my-bun-app web port)
wait_for "the Bun app listens" 30 bash -c "exec 3<>/dev/tcp/127.0.0.1/$port"
expect_eq "$(curl -fsS "$url")" "Visits: 1" "the first visit answers Visits: 1"
expect_eq "$(curl -fsS "$url")" "Visits: 2" "the second Visits: 2"
finish
