#!/usr/bin/env bash
# The chaos run in its short form (see tests/chaos/run): kills aimed inside
# provisioning steps, the first template's initdb included, and again while
# the restarted daemon recovers; 8 kills, at most 40 s of kills.  Every
# accepted create must end active, none in error, the invariants holding.
MODE=${MODE:-inside} KILLS=${KILLS:-8} SECONDS_MAX=${SECONDS_MAX:-40} exec bash "$(dirname "$0")/../chaos/run"
