#!/usr/bin/env bash
# The chaos run in its short form (see tests/chaos/run): 8 kills, at most 60 s.
KILLS=${KILLS:-8} SECONDS_MAX=${SECONDS_MAX:-60} exec bash "$(dirname "$0")/../chaos/run"
