#!/usr/bin/env bash
# The fault-point walk of steps (t0301) for every addon but PostgreSQL, so
# the two halves run side by side: a new engine is walked here without
# touching the test.
WALK_OTHER=1
# shellcheck source=tests/e2e/t0301-fault-walk.sh
. "$(dirname "$0")/t0301-fault-walk.sh"
