#!/usr/bin/env bash
# A daemon killed at every step of a variant change (change:*, from
# MIREN_FAULT=list), then killed again at the same point while the next
# one undoes or finishes it at its start, converges with the app on
# exactly one working instance: before the switch the old variant, after
# it the new one; every row whose insert returned success (the app's
# service inserts all along, tests/e2e/writer.py) is there; nothing is
# left in motion and the invariants hold (no server, disk, database, role,
# subscription, slot or publication of the other instance left).
# miren-postgresql (lib-change.sh's change_walk), each point changing the
# app to the variant it is not on, so both directions are walked; t0284
# walks miren-mysql.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib-change.sh"
change_setup pg vcf

start_server || exit 1
write_addon_app nb shared
miren deploy -C "$TMP/nb" >/dev/null 2>&1
psql_as nb -q -c "CREATE TABLE mine (v text); INSERT INTO mine VALUES ('nb')"
write_change_app small
miren deploy -C "$TMP/$APP" >/dev/null 2>&1
wait_for "the writer inserts" 30 sh -c "'$MIREN_BIN' logs -a $APP | grep -q '^ok'"
stop_server

change_walk "psql_as nb -c 'SELECT v FROM mine'" nb
finish
