#!/usr/bin/env bash
# Bad input gets a clear message and changes nothing.
# The CLI's own paths: the CLI of the daemon's build (sanitized in CI; lib.sh).
MIREN_CLI_BIN=${MIREN_BIN:-}
. "$(dirname "$0")/lib.sh"

# No server yet: the CLI says so and how to start one.
expect_exit "a command without a server fails" 5 miren app list
expect_match "$(cat "$TMP/err")" "the miren server is not running" "saying the server is not running"
expect_match "$(cat "$TMP/err")" "hint: start it with 'miren server'" "and how to start it"

start_server || exit 1
mk() { mkdir -p "$TMP/$1/.miren"; printf '%b' "$2" > "$TMP/$1/.miren/app.toml"; }

mk badtoml 'name = "badtoml"\n[services.web]\ncommand = "x"\nport = = 3\n'
expect_exit "malformed TOML is refused" 6 miren deploy -C "$TMP/badtoml"
expect_match "$(cat "$TMP/err")" "app.toml:4:[0-9]+: " "with line:column"

mk badtype 'name = "badtype"\n[services.web]\ncommand = 42\n'
expect_exit "a wrong type is refused" 6 miren deploy -C "$TMP/badtype"
expect_match "$(cat "$TMP/err")" "app.toml:3:11: 'command' in \[services.web\] must be a string, not an integer" "naming the key, type and position"

mk nocmd 'name = "nocmd"\n[services.web]\nport = 8080\n'
expect_exit "a service without command is refused" 6 miren deploy -C "$TMP/nocmd"
expect_match "$(cat "$TMP/err")" "app.toml:2:[0-9]+: \[services.web\] is missing the required 'command'" "naming what is missing"

mk badport 'name = "badport"\n[services.web]\ncommand = "x"\nport = 70000\n'
expect_exit "a port out of range is refused" 6 miren deploy -C "$TMP/badport"
expect_match "$(cat "$TMP/err")" "app.toml:4:8: 'port' in \[services.web\] must be 1..65535" "with its position"

mk envnokey 'name = "envnokey"\n[[env]]\nvalue = "x"\n'
expect_exit "an env entry without key is refused" 6 miren deploy -C "$TMP/envnokey"
expect_match "$(cat "$TMP/err")" "missing the required 'key'" "saying key is required"

mk required 'name = "required"\n[[env]]\nkey = "SECRET"\nrequired = true\n[services.web]\ncommand = "sleep 100"\n'
expect_exit "a required variable without value is refused" 6 miren deploy -C "$TMP/required"
expect_match "$(cat "$TMP/err")" "required variable 'SECRET' has no value" "naming the variable"
expect_match "$(cat "$TMP/err")" "hint: set it with 'miren env set -a required --create SECRET=VALUE'" "saying how to give it"

mk BadName 'name = "Bad_Name"\n[services.web]\ncommand = "x"\n'
expect_exit "an invalid app name is refused" 6 miren deploy -C "$TMP/BadName"
expect_match "$(cat "$TMP/err")" "invalid app name 'Bad_Name'" "naming the bad name"
expect_match "$(cat "$TMP/err")" "hint: .*lowercase letters, digits and hyphens" "with the rule as a hint"
long=$(printf 'a%.0s' $(seq 1 64))
mk longname "name = \"$long\"\n[services.web]\ncommand = \"x\"\n"
expect_exit "a 64-character app name is refused" 6 miren deploy -C "$TMP/longname"

expect_exit "an invalid -a is refused before any request" 6 miren app status -a 'a/b'
expect_match "$(cat "$TMP/err")" "invalid app name 'a/b'" "naming it"
expect_exit "status of an unknown app fails" 3 miren app status -a nosuchapp
expect_match "$(cat "$TMP/err")" "app 'nosuchapp' not found" "naming the app"
expect_exit "restart of an unknown app fails" 3 miren app restart nosuchapp
expect_exit "destroy of an unknown app fails" 3 miren app destroy nosuchapp -f

expect_eq "$(miren app list --format json)" "[]" "none of the bad deploys created an app"
expect_exit "PORT cannot be set by hand" 6 miren env set -a x PORT=1
expect_match "$(cat "$TMP/err")" "variable 'PORT' is set by miren itself" "saying why"
mk reserved 'name = "reserved"\n[[env]]\nkey = "MIREN_APP"\nvalue = "x"\n'
expect_exit "app.toml cannot set MIREN_ variables" 6 miren deploy -C "$TMP/reserved"

# A required variable can be given before the first deploy.
expect_exit "env set on a missing app is refused" 3 miren env set -a required SECRET=given
expect_match "$(cat "$TMP/err")" "app 'required' not found" "naming the app"
expect_eq "$(miren app list --format json)" "[]" "and creates no app"
expect_exit "env set --create on a new app works" 0 miren env set -a required --create SECRET=given
expect_exit "then the deploy with the required variable works" 0 miren deploy -C "$TMP/required"
miren app destroy required -f >/dev/null

expect_eq "$(ls "$DATA/apps" | wc -l)" "0" "nor left a directory"
expect_eq "$(ls "$DATA/tmp" | wc -l)" "0" "nor left staging files"

# The API refuses oversized and malformed bodies and keeps serving.
sock="$DATA/miren.sock"
code=$(head -c 2000000 /dev/zero | tr '\0' 'a' | curl -s -o "$TMP/body" -w '%{http_code}' --unix-socket "$sock" -X PUT -H 'Content-Type: application/json' --data-binary @- http://m/v1/apps/x/env/K)
expect_eq "$code" "413" "an oversized JSON body gets 413"
code=$(curl -s -o "$TMP/body" -w '%{http_code}' --unix-socket "$sock" -X PUT --data-binary '{"value":' http://m/v1/apps/x/env/K)
expect_eq "$code" "400" "a malformed JSON body gets 400"
expect_match "$(cat "$TMP/body")" '"code":"invalid"' "with an error code"
code=$(curl -s -o "$TMP/body" -w '%{http_code}' --unix-socket "$sock" http://m/v1/nothing/here)
expect_eq "$code" "404" "an unknown endpoint gets 404"
code=$(head -c 300000000 /dev/zero | curl -s -o "$TMP/body" -w '%{http_code}' --unix-socket "$sock" -X POST --data-binary @- http://m/v1/apps/big/deploy)
expect_eq "$code" "413" "an upload over 256 MiB gets 413"
code=$(curl -s -o "$TMP/body" -w '%{http_code}' --unix-socket "$sock" -X POST --data-binary 'not a tar' http://m/v1/apps/junk/deploy)
expect_eq "$code" "400" "an upload that is not a tar gets 400"
code=$(curl -s -o "$TMP/body" -w '%{http_code}' --unix-socket "$sock" 'http://m/v1/apps/x/logs/web?tail=abc')
expect_eq "$code" "400" "a log tail that is not a number gets 400"
expect_match "$(cat "$TMP/body")" "'tail' must be a whole number" "naming the argument"
code=$(curl -s -o "$TMP/body" -w '%{http_code}' --unix-socket "$sock" 'http://m/v1/apps/x/logs/web?offset=12x')
expect_eq "$code" "400" "a log offset that is not a number gets 400"
expect_eq "$(ls "$DATA/tmp" | wc -l)" "0" "refused uploads leave no files"
expect_eq "$(miren app list --format json)" "[]" "the daemon keeps serving"

# A release directory that cannot be written: nothing recorded.
app=$(copy_example hello)
mkdir -p "$DATA/apps" && touch "$DATA/apps/hello"
expect_exit "an unwritable release directory fails the deploy" 1 miren deploy -C "$app"
expect_match "$(cat "$TMP/err")" "cannot write release directory" "saying so"
expect_eq "$(miren app list --format json)" "[]" "and records no app"
rm -f "$DATA/apps/hello"
expect_exit "the same deploy works once the path is free" 0 miren deploy -C "$app"
finish
