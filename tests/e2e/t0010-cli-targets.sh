#!/usr/bin/env bash
# Destructive commands never guess: two different targets (an operand and
# -a, an option given twice) are a usage error naming both, and nothing is
# done; env set on a missing app is refused unless --create.
# The CLI's own paths: the CLI of the daemon's build (sanitized in CI; lib.sh).
MIREN_CLI_BIN=${MIREN_BIN:-}
. "$(dirname "$0")/lib.sh"
start_server || exit 1
mkapp() {
  mkdir -p "$TMP/$1/.miren"
  printf 'name = "%s"\n[services.web]\ncommand = "exec sleep 100000"\n' "$1" > "$TMP/$1/.miren/app.toml"
  miren deploy -C "$TMP/$1" >/dev/null 2>&1
}
mkapp a1
mkapp a2
apps() { miren app list --format json | python3 -c 'import json,sys; print(" ".join(sorted(a["name"] for a in json.load(sys.stdin))))'; }
expect_eq "$(apps)" "a1 a2" "two apps to aim at"
wait_for "a1's service runs" 20 sh -c "[ \"\$('$MIREN_BIN' app status -a a1 --format json | python3 -c 'import json,sys; print([s for s in json.load(sys.stdin)[\"services\"]][0][\"pid\"])')\" -gt 0 ]"
pid1=$(service_field a1 web pid)
expect_match "$pid1" "^[1-9][0-9]*$" "  with a pid"

conflict() { # DESC WANT-REGEX CMD...
  local desc=$1 want=$2; shift 2
  expect_exit "$desc is a usage error" 2 "$@"
  expect_match "$(cat "$TMP/err")" "$want" "  naming both"
  expect_match "$(cat "$TMP/err")" "^usage: " "  with the usage line"
}
conflict "app destroy a1 -a a2" "error: conflicting apps: 'a2' \(-a\) and 'a1' \(the operand\)" miren app destroy a1 -a a2 -f
conflict "app destroy -a a2 a1 (order swapped)" "'a2' \(-a\) and 'a1' \(the operand\)" miren app destroy -a a2 -f a1
conflict "app destroy -a a1 -a a2" "conflicting apps: 'a1' \(-a\) and 'a2' \(-a\)" miren app destroy -a a1 -a a2 -f
conflict "app restart a1 -a a2" "conflicting apps: 'a2' \(-a\) and 'a1' \(the operand\)" miren app restart a1 -a a2
conflict "env set -a a1 -a a2" "conflicting apps: 'a1' \(-a\) and 'a2' \(-a\)" miren env set -a a1 -a a2 K=V
conflict "addon destroy -a a1 -a a2" "conflicting apps" miren addon destroy miren-postgresql -a a1 -a a2 -f
conflict "disk backup -n x -n y" "conflicting values for -n: 'x' and 'y'" miren disk backup -n x -n y -o "$TMP/b"
conflict "disk backup -o p -o q" "conflicting values for -o: '$TMP/p' and '$TMP/q'" miren disk backup -n x -o "$TMP/p" -o "$TMP/q"
conflict "disk restore -n x -n y" "conflicting values for -n: 'x' and 'y'" miren disk restore -s "$TMP/f" -n x -n y --force
conflict "disk restore -s f -s g" "conflicting values for -s" miren disk restore -s "$TMP/f" -s "$TMP/g" -n x --force
conflict "deploy -C one -C two" "conflicting values for -C: '$TMP/a1' and '$TMP/a2'" miren deploy -C "$TMP/a1" -C "$TMP/a2"
conflict "logs -s web -s worker" "conflicting values for -s: 'web' and 'worker'" miren logs -a a1 -s web -s worker
conflict "--socket twice" "conflicting values for --socket" miren app destroy a1 -f --socket "$DATA/miren.sock" --socket /nowhere
expect_eq "$(apps)" "a1 a2" "no conflicting command destroyed an app"
expect_eq "$(service_field a1 web pid)" "$pid1" "nor restarted one"
expect_eq "$(miren env list -a a1 --format json)" "[]" "nor set a variable"
expect_eq "$(ls -A "$TMP" | grep -c '^[bpq]$')" "0" "nor wrote a backup file"

# The API never cuts a name at an escaped NUL (%00): "a1%00x" is not "a1".
api() { curl -s -o "$TMP/api.out" -w '%{http_code}' --unix-socket "$DATA/miren.sock" "$@"; }
expect_eq "$(api -X PUT -H 'Content-Type: application/json' -d '{"value":"evil"}' "http://miren/v1/apps/a1/env/LD_PRELOAD%00junk")" "400" "PUT env/LD_PRELOAD%00junk is refused"
expect_match "$(cat "$TMP/api.out")" "invalid environment variable name 'LD_PRELOAD%00junk'" "  naming the whole key"
expect_eq "$(api -X DELETE "http://miren/v1/apps/a1%00x")" "404" "DELETE apps/a1%00x is refused"
expect_match "$(cat "$TMP/api.out")" "app 'a1%00x' not found" "  as the app 'a1%00x'"
expect_eq "$(apps)" "a1 a2" "  and destroys nothing"
expect_eq "$(miren env list -a a1 --format json)" "[]" "  nor sets a variable"

# The same target twice is not a conflict.
expect_exit "app restart a1 -a a1 works" 0 miren app restart a1 -a a1
expect_exit "app destroy a2 -a a2 works" 0 miren app destroy a2 -a a2 -f
expect_eq "$(apps)" "a1" "and destroys the one app named"

# env set on a missing app: refused, nothing created.
expect_exit "env set -a typo is refused" 3 miren env set -a a1x K=V
expect_match "$(cat "$TMP/err")" "^error: app 'a1x' not found" "saying the app is not found"
expect_match "$(cat "$TMP/err")" "hint: .*miren app list.*--create" "with a hint naming --create"
expect_eq "$(apps)" "a1" "and no app is created"
expect_exit "env set on an existing app works without --create" 0 miren env set -a a1 K=V
expect_eq "$(miren env get -a a1 K)" "V" "  and sets the variable"
expect_exit "env set --create on an existing app changes nothing else" 0 miren env set -a a1 --create K=W
expect_eq "$(apps)" "a1" "  (still one app)"

# --create: a required variable given before the first deploy.
mkdir -p "$TMP/needs/.miren"
printf 'name = "needs"\n[[env]]\nkey = "SECRET"\nrequired = true\n[services.web]\ncommand = "exec sleep 100000"\n' > "$TMP/needs/.miren/app.toml"
expect_exit "a deploy missing a required variable fails" 6 miren deploy -C "$TMP/needs"
expect_match "$(cat "$TMP/err")" "hint: set it with 'miren env set -a needs --create SECRET=VALUE'" "  its hint names --create for a new app"
expect_eq "$(apps)" "a1" "  and records no app"
expect_exit "env set --create makes the app" 0 miren env set -a needs --create SECRET=given
expect_eq "$(apps)" "a1 needs" "  which app list shows"
expect_exit "then the deploy works" 0 miren deploy -C "$TMP/needs"
expect_eq "$(miren env get -a needs SECRET)" "given" "  with the variable"
finish
