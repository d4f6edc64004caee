#!/usr/bin/env bash
# miren app releases and miren app rollback, without addons: the list
# (numbers, current, hash, size, what made it), a rollback as a new
# release running the old code and app.toml (services, [[env]]) with
# today's `miren env set` values, the release before the current one by
# default, services the old release has started and the others stopped,
# bad input refused with nothing changed (unknown, pruned, current,
# nothing before, no releases, not a number, a required variable without
# a value), releases pruned from disk by --keep-releases (also lowered at
# a restart), and deploys after a rollback.
. "$(dirname "$0")/lib.sh"
start_server --keep-releases 3 || exit 1
A="$TMP/rb"
mkdir -p "$A/.miren"

# write_version V [worker]: code V; with "worker" a second service.
write_version() {
  echo "code $1" > "$A/code.txt"
  {
    printf 'name = "rb"\n[services.web]\ncommand = "exec sleep 100000"\n'
    if [ "${2:-}" = worker ]; then printf '[services.worker]\ncommand = "exec sleep 100001"\n'; fi
    printf '[[env]]\nkey = "VERSION"\nvalue = "%s"\n' "$1"
    if [ "${3:-}" = need ]; then printf '[[env]]\nkey = "NEED"\nrequired = true\n'; fi
  } > "$A/.miren/app.toml"
}
deploy() { miren deploy -C "$A" >/dev/null 2>&1; }
pid_of() { service_field rb "$1" pid; }
releases_json() { miren app releases -a rb --format json; }
# What must not change when a command is refused: the records and the
# running process.
snapshot() { echo "$(releases_json | jq -c '[.current, [.releases[] | .release]]') $(pid_of web) $(ls "$DATA/apps/rb/releases" | tr '\n' ' ')"; }
refused() { # refused DESC EXIT REGEX ARGS...
  local desc=$1 code=$2 re=$3 before; shift 3
  before=$(snapshot)
  expect_exit "$desc: exit $code" "$code" miren app rollback "$@"
  expect_match "$(cat "$TMP/err")" "$re" "$desc: says so"
  expect_eq "$(snapshot)" "$before" "$desc: nothing changed"
}

# An app with no releases.
miren env set -a rb --create MANUAL=kept >/dev/null
expect_eq "$(miren app releases -a rb)" "App rb has no releases (not deployed yet)" "releases of an app never deployed"
expect_eq "$(releases_json | jq -c '[.current, .releases]')" "[0,[]]" "  as JSON"
expect_exit "rollback of an app without releases: exit 3" 3 miren app rollback -a rb
expect_match "$(cat "$TMP/err")" "^error: app 'rb' has no releases" "  says so"
expect_exit "releases of an unknown app: exit 3" 3 miren app releases -a nope
expect_exit "rollback of an unknown app: exit 3" 3 miren app rollback -a nope

write_version 1 && deploy
refused "rollback with one release" 3 "has only one release" -a rb
write_version 2 worker && deploy
write_version 3 && deploy
list=$(miren app releases -a rb)
expect_match "$list" "^RELEASE +CURRENT +CREATED \(UTC\) +SOURCE +SIZE +DESCRIPTION" "releases: the columns"
expect_match "$list" $'\n3 +\\* +[0-9-]+ [0-9:]+ +[0-9a-f]{12} +[0-9.]+ [KMG]?i?B +deploy' "releases: 3 is current, made by a deploy"
j=$(releases_json)
expect_eq "$(echo "$j" | jq -c '[.current, .keep, [.releases[] | .release], [.releases[] | .current]]')" '[3,3,[3,2,1],[true,false,false]]' "releases JSON: newest first, current marked, keep"
expect_eq "$(echo "$j" | jq -r '.releases[0] | keys | join(",")')" "created_at,current,release,rollback_of,size_bytes,source_sha256" "releases JSON: the fields"
expect_eq "$(echo "$j" | jq '[.releases[] | select(.size_bytes > 0 and (.source_sha256 | test("^[0-9a-f]{64}$")))] | length')" "3" "every release has a size and a SHA-256"
sha2=$(echo "$j" | jq -r '.releases[] | select(.release == 2) | .source_sha256')
web3=$(pid_of web)

# The default: the release before the current one (2), as release 4.
out=$(miren app rollback -a rb 2>&1)
expect_eq "$?" "0" "rollback succeeds"
expect_match "$out" "^Rolled back rb to release 2: release 4 is live" "rollback says what it did"
j=$(releases_json)
expect_eq "$(echo "$j" | jq -c '.releases[0] | [.release, .current, .rollback_of]')" '[4,true,2]' "release 4 is current, a rollback to 2"
expect_eq "$(echo "$j" | jq -r '.releases[0].source_sha256')" "$sha2" "with release 2's source hash"
expect_match "$(miren app releases -a rb)" $'\n4 +\\* .*rollback to release 2' "releases shows it"
expect_eq "$(miren app status -a rb --format json | jq .release)" "4" "app status agrees"
expect_eq "$(cat "$DATA/apps/rb/releases/4/code.txt")" "code 2" "release 4 holds release 2's code"
expect_eq "$(running_releases rb)" "4" "only release 4 runs"
web=$(pid_of web)
[ "$web" != "$web3" ] && ok "web was restarted" || fail "web still runs as pid $web3"
expect_eq "$(env_of "$web" VERSION)" "2" "release 2's [[env]] applies"
expect_eq "$(env_of "$web" MANUAL)" "kept" "today's 'miren env set' value applies"
expect_eq "$(env_of "$web" MIREN_RELEASE)" "4" "MIREN_RELEASE is the new release"
wait_for "release 2's worker service runs again" 10 sh -c "[ -n \"\$(\"$MIREN_BIN\" app status -a rb --format json | jq -r '.services[] | select(.name == \"worker\") | .pid // empty')\" ]"
expect_eq "$(ls "$DATA/apps/rb/releases" | sort -n | tr '\n' ' ')" "2 3 4 " "keep 3: release 1 is pruned from disk"

# Bad input changes nothing.
refused "a pruned release" 3 "^error: release 1 of app 'rb' was pruned" -a rb 1
expect_match "$(cat "$TMP/err")" "keeps the newest 3 releases" "  and says how many are kept"
refused "the current release" 4 "^error: release 4 is already the current release of app 'rb'" -a rb 4
refused "an unknown release" 3 "^error: app 'rb' has no release 9" -a rb 9
refused "not a number" 2 "is not a release number" -a rb x
refused "release 0" 2 "is not a release number" -a rb 0
refused "two operands" 2 "unexpected argument" -a rb 2 3
expect_exit "rollback --format json: an error is JSON" 3 miren app rollback -a rb 9 --format json
expect_eq "$(jq -r .error.code "$TMP/err")" "not_found" "  with its code"

# Heroku's spelling; a rollback to a release without the worker stops it.
worker=$(pid_of worker)
out=$(miren app rollback -a rb v3 --format json)
expect_eq "$(echo "$out" | jq -c '[.release, .rollback_of, .previous, .addons_not_restored]')" '[5,3,4,[]]' "rollback v3 --format json"
expect_eq "$(echo "$out" | jq -r '[.services[].name] | join(",")')" "web" "  its services"
expect_eq "$(miren app status -a rb --format json | jq -r '[.services[].name] | join(",")')" "web" "the worker is no longer a service"
wait_for "the worker process is gone" 15 sh -c "! kill -0 $worker 2>/dev/null"
expect_eq "$(running_releases rb)" "5" "only release 5 runs"
expect_eq "$(env_of "$(pid_of web)" VERSION)" "3" "release 3's [[env]] applies"

# Deploys after a rollback: the tree of the current release (3's) is
# unchanged; another tree is a new release.
out=$(miren deploy -C "$A" 2>&1)
expect_match "$out" "No changes: release 5 of rb is current" "deploying the rolled-back tree: no changes"
write_version 2 worker && deploy
expect_eq "$(releases_json | jq -c '.releases[0] | [.release, .current, .rollback_of]')" '[6,true,null]' "deploying another tree: release 6"
expect_eq "$(cat "$DATA/apps/rb/releases/6/code.txt")" "code 2" "  with its code"

# A required variable with no value today: refused, nothing changed.
miren env set -a rb NEED=x >/dev/null
write_version 7 "" need && deploy
write_version 8 && deploy
miren env delete -a rb NEED >/dev/null
refused "a required variable without a value" 6 "^error: release 7 of app 'rb' requires variable 'NEED', which has no value" -a rb 7

# Roll back a rollback: release 5 (itself a rollback to 3) is kept? keep 3:
# 6, 7, 8 are.  7 works again once NEED has a value.
miren env set -a rb NEED=y >/dev/null
expect_exit "rollback to 7 with NEED set" 0 miren app rollback -a rb 7
expect_eq "$(env_of "$(pid_of web)" NEED)" "y" "  today's value of NEED"
expect_eq "$(releases_json | jq -c '[.releases[] | .release]')" '[9,8,7]' "three releases kept"
expect_eq "$(ls "$DATA/apps/rb/releases" | sort -n | tr '\n' ' ')" "7 8 9 " "  and their directories only"

# A restart keeps the current release running; a lower --keep-releases
# prunes at start.
stop_server
start_server --keep-releases 2 || exit 1
expect_eq "$(releases_json | jq -c '[.keep, [.releases[] | .release]]')" '[2,[9,8]]' "--keep-releases 2 at start: two kept"
expect_eq "$(ls "$DATA/apps/rb/releases" | sort -n | tr '\n' ' ')" "8 9 " "  and on disk"
wait_for "release 9 runs after the restart" 10 sh -c "[ -n \"\$(\"$MIREN_BIN\" app status -a rb --format json | jq -r '.services[0].pid // empty')\" ]"
expect_eq "$(running_releases rb)" "9" "  only release 9"
expect_exit "--keep-releases 0 is a usage error" 2 miren server --keep-releases 0
finish
