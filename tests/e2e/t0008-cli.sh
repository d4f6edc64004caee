#!/usr/bin/env bash
# CLI conventions: --help everywhere, --version, exit codes, docs pages.
. "$(dirname "$0")/lib.sh"
expect_match "$(miren --version)" "^miren [0-9]+\.[0-9]+\.[0-9]+" "--version prints the version"
expect_exit "no command is a usage error" 2 miren
expect_exit "an unknown command is a usage error" 2 miren frobnicate
expect_match "$(cat "$TMP/err")" "unknown command 'frobnicate'" "naming it"
expect_exit "an unknown subcommand lists the candidates" 2 miren app frob
expect_match "$(cat "$TMP/err")" "app status" "listing the app commands"
expect_exit "an unknown option is a usage error" 2 miren app list --bogus
expect_exit "an unknown --format is a usage error" 2 miren app list --format xml

# Every command in `miren help` has --help and a docs page naming its usage.
miren help | awk '/^  [a-z]/ {sub(/^  /, ""); sub(/  .*/, ""); print}' > "$TMP/cmds"
[ -s "$TMP/cmds" ] && ok "help lists commands" || fail "help lists no commands"
while read -r cmd; do
  # shellcheck disable=SC2086
  help=$(miren $cmd --help)
  expect_match "$help" "^usage: miren $cmd" "'miren $cmd --help' shows its usage"
  page="$MIREN_SRC/docs/commands/miren-${cmd// /-}.md"
  if [ -f "$page" ]; then
    usage=$(printf '%s\n' "$help" | head -n 1 | sed 's/^usage: //')
    grep -qF -- "$usage" "$page" && ok "docs page of '$cmd' has its usage" \
      || fail "docs page $page does not contain '$usage'"
  else
    fail "no docs page $page"
  fi
done < "$TMP/cmds"

# The toml-test decoder interface.
out=$(printf 'a = 1\n[t]\nb = "x"\n' | miren debug toml-decode)
expect_eq "$out" '{"a":{"type":"integer","value":"1"},"t":{"b":{"type":"string","value":"x"}}}' "toml-decode prints tagged JSON"
expect_exit "toml-decode exits 1 on invalid TOML" 1 sh -c 'printf "a = \n" | "$MIREN_BIN" debug toml-decode'
finish
