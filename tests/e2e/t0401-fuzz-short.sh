#!/usr/bin/env bash
# The fuzz targets (TOML parser, backup reader, API request matching
# against the route table) for a few seconds each, so a regression that
# crashes them fails the suite.  Longer runs: tests/fuzz/run.
if ! command -v clang >/dev/null 2>&1; then
  echo "not ok - clang is not installed (scripts/bootstrap installs it)"; echo "0 passed, 1 failed"; exit 1
fi
if bash "$(dirname "$0")/../fuzz/run" "${FUZZ_SECONDS:-8}"; then
  echo "ok - every fuzz target ran clean"; echo "1 passed, 0 failed"
else
  echo "not ok - a fuzz target failed"; echo "0 passed, 1 failed"; exit 1
fi
