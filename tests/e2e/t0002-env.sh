#!/usr/bin/env bash
# env set/get/list/delete, masking, precedence, restart on change.
. "$(dirname "$0")/lib.sh"
start_server || exit 1
app=$(copy_example hello)
miren deploy -C "$app" >/dev/null 2>&1
url=$(service_url hello web)
wait_for "hello answers" 10 curl -fsS "$url"

list=$(miren env list -a hello)
expect_match "$list" "^NAME +VALUE +SERVICE +SOURCE" "env list has the columns"
expect_match "$list" "GREETING +Hello from miren +\(all\) +config" "the app.toml variable is listed as config"

out=$(miren env set -a hello GREETING=Bonjour)
expect_match "$out" "Set GREETING on hello" "env set confirms"
expect_eq "$(miren env get -a hello GREETING)" "Bonjour" "env get returns the manual value"
expect_match "$(miren env list -a hello)" "GREETING +Bonjour +\(all\) +manual" "a manual value wins over config"
wait_for "the service was restarted with the new value" 10 sh -c "curl -fsS '$(service_url hello web)' | grep -q Bonjour"

miren env set -a hello API_TOKEN=s3cr3t-value --sensitive >/dev/null
list=$(miren env list -a hello)
expect_match "$list" "API_TOKEN +\*+ +\(all\) +manual" "a sensitive value is masked in env list"
expect_no_match "$list" "s3cr3t-value" "the secret is not in env list"
expect_no_match "$(miren env list -a hello --format json)" "s3cr3t-value" "nor in env list --format json"
expect_eq "$(miren env get -a hello API_TOKEN)" "********" "env get masks by default"
expect_eq "$(miren env get -a hello API_TOKEN --unmask)" "s3cr3t-value" "env get --unmask shows it"
expect_no_match "$(cat "$DATA/logs/server.log")" "s3cr3t-value" "the secret is not in the server log"

miren env set -a hello "WITH_EQUALS=a=b=c" >/dev/null
expect_eq "$(miren env get -a hello WITH_EQUALS)" "a=b=c" "values may contain '='"

out=$(miren env delete -a hello GREETING)
expect_match "$out" "Deleted GREETING" "env delete confirms"
expect_eq "$(miren env get -a hello GREETING)" "Hello from miren" "after delete the config value shows again"

expect_exit "deleting a config variable fails" 4 miren env delete -a hello GREETING
expect_match "$(cat "$TMP/err")" "comes from .miren/app.toml" "and says where it comes from"
expect_exit "deleting an unknown variable fails" 3 miren env delete -a hello NOPE
expect_exit "getting an unknown variable fails" 3 miren env get -a hello NOPE
expect_match "$(cat "$TMP/err")" "variable 'NOPE' is not set on app 'hello'" "with a clear message"
expect_exit "an invalid variable name is refused" 6 miren env set -a hello "1BAD=x"
expect_exit "KEY without = is a usage error" 2 miren env set -a hello NOVALUE
expect_exit "env on an unknown app fails" 3 miren env list -a nosuchapp
expect_match "$(cat "$TMP/err")" "app 'nosuchapp' not found" "naming the app"

# -a defaults to the app of .miren/app.toml in the current directory.
expect_match "$(cd "$app" && miren env list)" "WITH_EQUALS" "env list finds the app from app.toml"

# Service-scoped env from app.toml.
cat >> "$app/.miren/app.toml" <<'TOML'

[[services.web.env]]
key = "ONLY_WEB"
value = "yes"
TOML
miren deploy -C "$app" >/dev/null 2>&1
expect_match "$(miren env list -a hello)" "ONLY_WEB +yes +web +config" "a service variable shows its service"
finish
