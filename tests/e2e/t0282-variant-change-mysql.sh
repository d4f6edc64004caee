#!/usr/bin/env bash
# A variant change of miren-mysql (MariaDB) under a write load, both ways:
# small -> shared with `miren addon change`, shared -> small by a deploy
# (lib-change.sh: every row whose insert returned success is there
# afterwards, the AUTO_INCREMENT counter goes on, a table without a key
# came along, the longest refusal is printed, the old instance is gone,
# nothing left over).  MariaDB has no copy while the app writes: its data
# is dumped and loaded while the tenant may only read.  A neighbour on the
# shared server is untouched.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib-mysql.sh"
. "$(dirname "$0")/lib-change.sh"
start_server || exit 1
change_setup mysql vcmy

write_mysql_app nb shared
miren deploy -C "$TMP/nb" >/dev/null 2>&1
mysql_as nb -e "CREATE TABLE mine (v TEXT); INSERT INTO mine VALUES ('nb')"

write_change_app small
miren deploy -C "$TMP/$APP" >/dev/null 2>&1
wait_for "the writer inserts" 30 sh -c "'$MIREN_BIN' logs -a $APP | grep -q '^ok'"
change_round shared cli
expect_eq "$method" "dump" "small -> shared: copied by a dump and load"
change_round small deploy
expect_eq "$(mysql_as nb -e 'SELECT v FROM mine')" "nb" "the neighbour's data is untouched"
finish
