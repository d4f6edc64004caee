#!/usr/bin/env bash
# Every example in README.md and docs/commands/*.md runs, so a stale page
# fails the suite.  tests/e2e/docs-examples.py reads the pages' examples
# (fenced or indented blocks of "$ COMMAND" lines, each followed by the
# output the page shows; README's "Using it" block of commands), runs each
# against this test's server in the page's order, and compares the output's
# shape with the page's: the exit status (an "error:" output must fail, any
# other succeed), the first line and every error/hint/usage line with
# numbers, ids, paths and spacing blurred, and a JSON output's keys.
# A page states what its examples need with "<!-- example setup: CMD -->"
# lines (run before its first example) and excuses a block that cannot run
# here with "<!-- not run: WHY -->" on the line before it.
# The CLI's own paths: the CLI of the daemon's build (sanitized in CI; lib.sh).
MIREN_CLI_BIN=${MIREN_BIN:-}
. "$(dirname "$0")/lib.sh"
start_server || exit 1
mkdir -p "$TMP/bin" "$TMP/work"
printf '#!/bin/sh\nexec "%s" "$@"\n' "$MIREN_BIN" > "$TMP/bin/miren"
chmod +x "$TMP/bin/miren"
python3 "$MIREN_SRC/tests/e2e/docs-examples.py" "$MIREN_SRC" "$TMP/work" "$TMP/bin" \
  > "$TMP/examples.tap" 2> "$TMP/examples.err" || fail "the examples driver failed: $(tail -5 "$TMP/examples.err")"
while IFS= read -r line; do
  case $line in
    "ok - "*) ok "${line#ok - }" ;;
    "not ok - "*) fail "${line#not ok - }" ;;
    *) printf '%s\n' "$line" ;;
  esac
done < "$TMP/examples.tap"
finish
