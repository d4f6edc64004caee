#!/usr/bin/env bash
# CLI conventions: --help everywhere, --version, exit codes, docs pages.
# The CLI's own paths: the CLI of the daemon's build (sanitized in CI; lib.sh).
MIREN_CLI_BIN=${MIREN_BIN:-}
. "$(dirname "$0")/lib.sh"
expect_match "$(miren --version)" "^miren [0-9]+\.[0-9]+\.[0-9]+" "--version prints the version"
expect_exit "no command is a usage error" 2 miren
expect_exit "an unknown command is a usage error" 2 miren frobnicate
expect_match "$(cat "$TMP/err")" "unknown command 'frobnicate'" "naming it"
expect_exit "an unknown subcommand lists the candidates" 2 miren app frob
expect_match "$(cat "$TMP/err")" "app status" "listing the app commands"
expect_exit "an unknown option is a usage error" 2 miren app list --bogus
expect_exit "an unknown --format is a usage error" 2 miren app list --format xml

# Every command in `miren help` has --help and a docs page that agrees with
# its declaration (`miren help --format json`, the table the CLI parses
# with): the page shows the usage line, names every option, and names no
# option the command does not have.
miren help | awk '/^  [a-z]/ {sub(/^  /, ""); sub(/  .*/, ""); print}' > "$TMP/cmds"
[ -s "$TMP/cmds" ] && ok "help lists commands" || fail "help lists no commands"
while read -r cmd; do
  # shellcheck disable=SC2086
  help=$(miren $cmd --help)
  expect_match "$help" "^usage: miren $cmd" "'miren $cmd --help' shows its usage"
  # shellcheck disable=SC2086
  expect_eq "$(miren help $cmd)" "$help" "'miren help $cmd' is 'miren $cmd --help'"
done < "$TMP/cmds"
miren help --format json > "$TMP/table.json"
python3 - "$TMP/table.json" "$MIREN_SRC/docs/commands" > "$TMP/docs-check" <<'PY'
import json, os, re, sys
table = json.load(open(sys.argv[1]))
common = {"help", "socket", "cluster", "format"}
for c in table:
    # The declaration itself: no option spelled twice (-h and --socket,
    # --cluster, --format, --help are everyone's), sane operand counts and ranges.
    letters = [o["letter"] for o in c["options"] if "letter" in o] + ["h"]
    names = [o["name"] for o in c["options"]] + ["help", "socket", "cluster", "format"]
    ok = len(set(letters)) == len(letters) and len(set(names)) == len(names)
    ok = ok and (c["operands"]["max"] < 0 or c["operands"]["min"] <= c["operands"]["max"])
    ok = ok and all(o["min"] <= o["max"] for o in c["options"] if o["kind"] == "int")
    print(("ok" if ok else "not ok") + f" - the declaration of '{c['name']}' is consistent")
    if c["hidden"]:
        continue
    page = os.path.join(sys.argv[2], "miren-" + c["name"].replace(" ", "-") + ".md")
    if not os.path.exists(page):
        print(f"not ok - no docs page {page}")
        continue
    text = open(page).read()
    print(("ok" if c["usage"] in text else "not ok") + f" - docs page of '{c['name']}' shows its usage '{c['usage']}'")
    declared = {o["name"] for o in c["options"]}
    for o in sorted(declared):
        print(("ok" if f"--{o}" in text else "not ok") + f" - docs page of '{c['name']}' names --{o}")
    # The options table: rows whose first cell names an option.
    m = re.search(r"^## Options\n(.*?)(?=^## |\Z)", text, re.M | re.S)
    rows = re.findall(r"^\| *(`[^|]*)\|", m.group(1), re.M) if m else []
    for cell in rows:
        for o in re.findall(r"--([a-z][a-z0-9-]*)", cell):
            print(("ok" if o in declared | common else "not ok") + f" - option --{o} on the page of '{c['name']}' exists")
    if c["json"] != ("--format json" in text):
        print(f"not ok - the page of '{c['name']}' {'does not mention' if c['json'] else 'mentions'} --format json")
PY
while IFS= read -r line; do
  case $line in
    ok\ -\ *) ok "${line#ok - }" ;;
    *) fail "${line#not ok - }" ;;
  esac
done < "$TMP/docs-check"

# Numbers out of range, groups, help of one command.
expect_exit "a number out of range is a usage error" 2 miren logs -a x -n 1000001
expect_match "$(cat "$TMP/err")" "^error: --lines: 1000001 is out of range 0\.\.1000000" "  saying so"
expect_exit "a number that is not one is a usage error" 2 miren logs -a x -n 1x
expect_match "$(cat "$TMP/err")" "^error: --lines: '1x' is not a number" "  saying so"
expect_exit "a group alone lists its commands" 2 miren debug disk
expect_match "$(cat "$TMP/err")" "debug disk list" "  (debug disk list)"
expect_exit "help of a group" 0 miren help addon
expect_match "$(cat "$TMP/out")" "addon list-available" "  lists its commands"
expect_exit "help of an unknown command is a usage error" 2 miren help frobnicate
expect_exit "a missing operand is a usage error" 2 miren addon variants
expect_match "$(cat "$TMP/err")" "^usage: miren addon variants ADDON" "  with the usage line"
expect_exit "--format json: a usage error is JSON on stderr" 2 miren logs -a x -n abc --format json
expect_eq "$(python3 -c 'import json,sys; e=json.load(open(sys.argv[1]))["error"]; print(e["code"], "|", e["message"])' "$TMP/err")" "usage | --lines: 'abc' is not a number" "  {error: {code, message, ...}}"
expect_exit "--format json: no server is JSON on stderr" 5 miren app list --format json --socket "$TMP/none.sock"
expect_eq "$(python3 -c 'import json,sys; e=json.load(open(sys.argv[1]))["error"]; print(e["code"], bool(e["hint"]), sorted(e))' "$TMP/err")" "unavailable True ['code', 'detail', 'hint', 'message']" "  with code, message, detail and hint"

# The toml-test decoder interface.
out=$(printf 'a = 1\n[t]\nb = "x"\n' | miren debug toml-decode)
expect_eq "$out" '{"a":{"type":"integer","value":"1"},"t":{"b":{"type":"string","value":"x"}}}' "toml-decode prints tagged JSON"
expect_exit "toml-decode exits 1 on invalid TOML" 1 sh -c 'printf "a = \n" | "$MIREN_BIN" debug toml-decode'
finish
