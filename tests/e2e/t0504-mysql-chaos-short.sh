#!/usr/bin/env bash
# The short chaos run (tests/chaos/run, MODE=inside) on miren-mysql: kill -9
# aimed inside its provisioning steps (the first template's
# mariadb-install-db included) and again while the restarted daemon
# recovers; 8 kills, at most 40 s of kills.  Every accepted create must end
# active, none in error, the invariants holding (one mariadbd per server
# record, none other; shared-server tenants match their records).
ADDON=miren-mysql MODE=${MODE:-inside} KILLS=${KILLS:-8} SECONDS_MAX=${SECONDS_MAX:-40} \
  TEST_NAME=t0504-mysql-chaos-short exec bash "$(dirname "$0")/../chaos/run"
