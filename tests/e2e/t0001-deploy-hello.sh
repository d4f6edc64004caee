#!/usr/bin/env bash
# Deploy examples/hello, fetch its URL, redeploy unchanged and changed.
. "$(dirname "$0")/lib.sh"
start_server || exit 1

app=$(copy_example hello)
out=$(miren deploy -C "$app" 2>&1)
expect_match "$out" "Release 1 of hello is live" "first deploy creates release 1"

url=$(service_url hello web)
expect_match "$url" '^http://127\.0\.0\.1:[0-9]+/$' "status prints the service URL"
wait_for "hello answers at its URL" 10 curl -fsS "$url"
body=$(curl -fsS "$url")
expect_match "$body" "Hello from miren" "the answer uses the app.toml env"
expect_match "$body" "release 1 of hello" "the service sees MIREN_RELEASE and MIREN_APP"

pid1=$(service_field hello web pid)
out=$(miren deploy -C "$app" 2>&1)
expect_match "$out" "No changes: release 1 of hello is current" "an unchanged deploy makes no release"
expect_eq "$(service_field hello web pid)" "$pid1" "an unchanged deploy restarts nothing"

echo "# a change" >> "$app/server.py"
out=$(miren deploy -C "$app" 2>&1)
expect_match "$out" "Release 2 of hello is live" "a changed tree makes release 2"
wait_for "release 2 answers" 10 sh -c "curl -fsS '$(service_url hello web)' | grep -q 'release 2'"
expect_eq "$(ls "$DATA/apps/hello/releases" | sort | tr '\n' ' ')" "1 2 " "both release directories are kept"

# The app name defaults to the directory name when app.toml has none.
mkdir -p "$TMP/noname-app/.miren"
printf '[services.web]\ncommand = "sleep 1000"\n' > "$TMP/noname-app/.miren/app.toml"
out=$(miren deploy -C "$TMP/noname-app" 2>&1)
expect_match "$out" "Release 1 of noname-app is live" "the directory name names the app"

list=$(miren app list)
expect_match "$list" "hello +2 +1/1 running" "app list shows hello at release 2, running"
expect_match "$list" "noname-app +1" "app list shows the second app"
json=$(miren app list --format json)
expect_eq "$(printf '%s' "$json" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')" "2" "app list --format json has both apps"

# .git is not shipped; the deploy runs from another directory with -C.
mkdir -p "$app/.git" && echo secret > "$app/.git/config"
out=$(cd / && miren deploy -C "$app" 2>&1)
expect_match "$out" "No changes: release 2" ".git is not part of the source"

# Unknown keys warn with their line; the deploy still works.
sed -i '1a favourite = "blue"' "$app/.miren/app.toml"
out=$(miren deploy -C "$app" 2>&1)
expect_match "$out" "warning: .*app.toml:2: unknown key 'favourite'" "an unknown key is a warning naming it and its line"
expect_match "$out" "Release 3 of hello is live" "the deploy with a warning succeeds"

# A fixed port is what the service gets and what status shows.
mkdir -p "$TMP/fixed/.miren"
printf 'name = "fixed"\n[services.web]\ncommand = "exec python3 server.py"\nport = %d\n' $((30000 + RANDOM % 20000)) > "$TMP/fixed/.miren/app.toml"
cp "$app/server.py" "$TMP/fixed/"
want=$(sed -n 's/^port = //p' "$TMP/fixed/.miren/app.toml")
miren deploy -C "$TMP/fixed" >/dev/null 2>&1
expect_eq "$(service_url fixed web)" "http://127.0.0.1:$want/" "status shows the configured port's URL"
wait_for "the service listens on the configured port" 10 curl -fsS "http://127.0.0.1:$want/"

# The state file and socket have their modes.
expect_eq "$(stat -c %a "$DATA/miren.db")" "600" "the state file is 0600"
expect_eq "$(stat -c %a "$DATA/miren.sock")" "660" "the socket is 0660"
finish
