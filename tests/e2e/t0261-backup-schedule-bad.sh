#!/usr/bin/env bash
# Bad backup schedules, from app.toml and from the CLI: each is refused
# with what is wrong and what to write, and nothing changes (no release,
# no schedule).
# The CLI's own paths: the CLI of the daemon's build (sanitized in CI; lib.sh).
MIREN_CLI_BIN=${MIREN_BIN:-}
. "$(dirname "$0")/lib.sh"
start_server || exit 1
deploy_addon_app bad small
wait_for "the addon is active" 60 sh -c "'$MIREN_BIN' addon list -a bad | grep -q ' active'"
good=$(cat "$TMP/bad/.miren/app.toml")
rel() { miren app status -a bad --format json | jq -r .release; }
r0=$(rel)

with_backups() { printf '%s\nbackups = %s\n' "$good" "$1" > "$TMP/bad/.miren/app.toml"; }
refused() { # DESC BACKUPS REGEX
  with_backups "$2"
  expect_exit "$1: the deploy is refused" 6 miren deploy -C "$TMP/bad"
  expect_match "$(cat "$TMP/err")" "$3" "$1: saying what is wrong"
}
refused "a bad duration" '{ every = "6x", keep = 3 }' "app\.toml:6:[0-9]+: 'every' in backups of \[addons\.miren-postgresql\]: invalid duration \"6x\""
expect_match "$(cat "$TMP/err")" "hint: give a whole number with a unit: s, m, h, d or w" "  with what to write"
refused "keep = 0" '{ every = "6h", keep = 0 }' "app\.toml:6:[0-9]+: 'keep' in backups of .*: a backup schedule's 'keep' must be from 1 to 1000 \(got 0\)"
refused "a negative keep" '{ every = "6h", keep = -2 }' "must be from 1 to 1000 \(got -2\)"
refused "a period under a minute" '{ every = "30s", keep = 3 }' "'every' must be from 1m to 366d"
refused "a period over a year" '{ every = "400d", keep = 3 }' "'every' must be from 1m to 366d"
refused "no every" '{ keep = 3 }' "has no 'every'"
refused "keep as text" '{ every = "6h", keep = "3" }' "'keep' in backups of .* must be an integer, not a string"
refused "not a table" '"daily"' "'backups' in \[addons\.miren-postgresql\] must be a table, not a string"
refused "an empty duration" '{ every = "", keep = 3 }' "invalid duration \"\""
expect_eq "$(rel)" "$r0" "no release was recorded"
expect_eq "$(miren addon backups miren-postgresql -a bad --format json | jq -r .schedule)" "null" "no schedule was set"

# The same checks on the CLI.
bk() { miren addon backups miren-postgresql -a bad "$@"; }
expect_exit "--every 6x is invalid" 6 bk --every 6x
expect_match "$(cat "$TMP/err")" "invalid duration '6x' for --every" "  naming it"
expect_exit "--keep 0 is invalid" 6 bk --every 6h --keep 0
expect_match "$(cat "$TMP/err")" "'keep' must be from 1 to 1000 \(got 0\)" "  saying the range"
expect_exit "--keep 1001 is invalid" 6 bk --every 6h --keep 1001
expect_exit "--keep abc is a usage error" 2 bk --every 6h --keep abc
expect_exit "--every 10s is too short" 6 bk --every 10s
expect_exit "--every off with --keep is invalid" 6 bk --every off --keep 3
expect_exit "--keep without a schedule to change is invalid" 6 bk --keep 3
expect_match "$(cat "$TMP/err")" "has no backup schedule to change" "  saying so"
expect_match "$(cat "$TMP/err")" "hint: give --every" "  and what to give"
expect_exit "an addon the app does not have" 3 miren addon backups miren-mysql -a bad --every 6h
expect_exit "an app that does not exist" 3 miren addon backups miren-postgresql -a nope --every 6h
expect_exit "listing for an app that does not exist" 3 miren addon backups miren-postgresql -a nope
expect_match "$(cat "$TMP/err")" "app 'nope' not found, and it has no backups" "  saying so"
expect_eq "$(bk --format json | jq -r .schedule)" "null" "still no schedule"
expect_exit "--every off without a schedule is fine" 0 bk --every off
printf '%s\n' "$good" > "$TMP/bad/.miren/app.toml"
expect_eq "$(invariant_violations)" "" "the invariants hold"
finish
