#!/usr/bin/env bash
# The fault walk of a variant change (lib-change.sh's change_walk, as
# t0281 for PostgreSQL) for miren-mysql, whose data is dumped and loaded
# while the tenant may only read: a daemon killed at every step, and again
# while the next one undoes or finishes the change, leaves the app on one
# working instance with every acknowledged row, the tenant able to write
# again, nothing left over.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib-mysql.sh"
. "$(dirname "$0")/lib-change.sh"
change_setup mysql vcfm

start_server || exit 1
write_mysql_app nb shared
miren deploy -C "$TMP/nb" >/dev/null 2>&1
mysql_as nb -e "CREATE TABLE mine (v TEXT); INSERT INTO mine VALUES ('nb')"
write_change_app small
miren deploy -C "$TMP/$APP" >/dev/null 2>&1
wait_for "the writer inserts" 30 sh -c "'$MIREN_BIN' logs -a $APP | grep -q '^ok'"
stop_server

change_walk "mysql_as nb -e 'SELECT v FROM mine'" nb
finish
