#!/usr/bin/env bash
# Names and keys on the deploy path: a key of app.toml holding a NUL or
# another control character is refused at its line:column before anything
# is recorded; an escape-equivalent spelling of a key is that key; env list
# keeps one line per variable (escaped) aligned by display width.
. "$(dirname "$0")/lib.sh"
start_server || exit 1
# mk DIR TOML: writes DIR/.miren/app.toml verbatim (no escapes interpreted).
mk() { mkdir -p "$TMP/$1/.miren"; printf '%s\n' "$2" > "$TMP/$1/.miren/app.toml"; }
refused() { # DESC DIR LINE:COL TEXT
  expect_exit "$1 is refused" 6 miren deploy -C "$TMP/$2"
  expect_match "$(cat "$TMP/err")" "app.toml:$3: .*$4" "  at $3, saying why"
  expect_no_match "$(cat "$TMP/err")" "$(printf '[\001-\010\016-\037]')" "  with no raw control character in the message"
}
svc='[services.web]
command = "exec sleep 100000"'

mk nulname '"name\u0000" = "victim"'"
$svc"
refused 'a "name\u0000" key' nulname 1:1 'key "name\\u0000" holds a control character'
mk nulname2 'name = "real"
"name\u0000" = "victim"'"
$svc"
refused 'a "name\u0000" key beside name' nulname2 2:1 "control character"
mk nulsvc 'name = "nulsvc"
[services."web\u0000x"]
command = "exec sleep 1"'"
$svc"
refused 'a service "web\u0000x"' nulsvc 2:11 'key "web\\u0000x"'
mk nulenv 'name = "nulenv"
[[env]]
"key\u0000" = "LD_PRELOAD"
key = "SAFE"
value = "/tmp/evil.so"'"
$svc"
refused 'an env entry key "key\u0000"' nulenv 3:1 'key "key\\u0000"'
mk nulsvcenv 'name = "nulsvcenv"'"
$svc"'
[[services.web.env]]
key = "A"
"value\u0000" = "x"'
refused 'a service env "value\u0000"' nulsvcenv 6:1 "control character"
mk nuladdon 'name = "nuladdon"'"
$svc"'
[addons."miren-postgresql\u0000"]
variant = "small"'
refused 'an addon "miren-postgresql\u0000"' nuladdon 4:9 "control character"
mk nulvariant 'name = "nulvariant"'"
$svc"'
[addons.miren-postgresql]
"variant\u0000" = "shared"'
refused 'an addon key "variant\u0000"' nulvariant 5:1 "control character"
mk ctlname 'name = "app\u001b[31m"'"
$svc"
refused 'an app name with ESC' ctlname 1:8 '"app\\u001b\[31m" holds a control character'
mk newlineenv 'name = "newlineenv"
[[env]]
key = "A\nB"
value = "x"'"
$svc"
refused 'an env key with a newline' newlineenv 3:7 '"A\\nB" holds a control character'
mk badescape 'name = "badescape"
"name\x00" = "victim"'"
$svc"
refused 'the \x00 escape (not TOML)' badescape '2:[0-9]+' "escape"
mk dupname 'name = "one"
"na\u006de" = "two"'"
$svc"
refused 'a key written twice, plainly and escaped' dupname 2:1 "duplicate key"
mk dupsvc 'name = "dupsvc"'"
$svc"'
[services."w\u0065b"]
command = "exec sleep 2"'
refused 'a service written twice, plainly and escaped' dupsvc '4:[0-9]+' "defined twice"

expect_eq "$(miren app list --format json)" "[]" "no refused deploy recorded an app"
expect_eq "$(ls -A "$DATA/apps" 2>/dev/null | wc -l)" "0" "nor left a directory"

# Escape-equivalent spellings are the keys they spell.
mk escaped '"na\u006de" = "escaped"
[services."\u0077eb"]
"comm\u0061nd" = "exec sleep 100000"
[["\u0065nv"]]
"\u006bey" = "GREETING"
'"'value'"' = "hi"'
out=$(miren deploy -C "$TMP/escaped" 2>&1)
expect_match "$out" "escaped" "an app whose keys are spelt with escapes deploys"
expect_no_match "$out" "unknown key" "  with no unknown key"
expect_eq "$(miren app list --format json | python3 -c 'import json,sys; print(" ".join(a["name"] for a in json.load(sys.stdin)))')" "escaped" "  as the app 'escaped'"
expect_eq "$(miren env get -a escaped GREETING)" "hi" "  with its [[env]] entry"
expect_match "$(miren app status -a escaped)" "web +(starting|running)" "  and its service 'web'"

# env list: a PEM value, an escape sequence and wide characters.
pem=$(printf -- '-----BEGIN PRIVATE KEY-----\nMIIBVQIBADANBgkqhkiG9w0BAQEFAASCAT8w\n-----END PRIVATE KEY-----')
miren env set -a escaped "TLS_KEY=$pem" >/dev/null
miren env set -a escaped "WIDE=日本語のテキスト" >/dev/null
miren env set -a escaped "$(printf 'ESC=\033[31mred\033[0m\tx')" >/dev/null
miren env set -a escaped 'BACKSLASH=a\nb' >/dev/null
list=$(miren env list -a escaped)
n=$(miren env list -a escaped --format json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')
expect_eq "$(printf '%s\n' "$list" | wc -l)" "$((n + 1))" "env list prints one line per variable"
expect_match "$list" 'TLS_KEY +-----BEGIN PRIVATE KEY-----\\nMIIBVQIBADANBgkqhkiG9w0BAQEFAASCAT8w\\n-----END PRIVATE KEY----- +\(all\) +manual' "a PEM value is shown with \\n"
expect_match "$list" 'ESC +\\u001b\[31mred\\u001b\[0m\\tx +\(all\)' "an escape sequence is shown escaped"
expect_match "$list" 'BACKSLASH +a\\\\nb +\(all\)' "a backslash is doubled, so it differs from a newline"
expect_no_match "$list" "$(printf '\033')" "no raw ESC reaches the terminal"
cols=$(printf '%s\n' "$list" | python3 -c '
import sys, unicodedata
def width(s):
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 0 if unicodedata.combining(c) else 1 for c in s)
out = set()
for line in sys.stdin.read().splitlines():
    i = line.find("(all)") if "(all)" in line else line.find("SERVICE")
    out.add(width(line[:i]))
print(len(out))')
expect_eq "$cols" "1" "the SERVICE column starts at one display column on every line (wide characters count 2)"
expect_eq "$(miren env get -a escaped TLS_KEY)" "$pem" "env get gives the raw PEM"
expect_eq "$(miren env list -a escaped --format json | python3 -c 'import json,sys; print([v["value"] for v in json.load(sys.stdin) if v["name"]=="TLS_KEY"][0])')" "$pem" "and so does --format json"
# Names from the command line are shown escaped in errors, never raw.
expect_exit "addon create of a name with ESC fails" 3 miren addon create "$(printf 'pg\033[31m')" -a escaped
expect_match "$(cat "$TMP/err")" "addon 'pg\\\\u001b\[31m' not found" "  naming it escaped"
expect_exit "an env key with a newline is refused" 6 miren env set -a escaped "$(printf 'A\nB=1')"
expect_match "$(cat "$TMP/err")" "invalid environment variable name 'A\\\\nB'" "  naming it escaped"
expect_no_match "$(cat "$TMP/err")" "$(printf '\033')" "no raw ESC in the messages"
finish
