#!/usr/bin/env bash
# A variant change of miren-postgresql under a write load, both ways:
# small -> shared with `miren addon change`, shared -> small by a deploy
# whose app.toml names the other variant (the tree of release 1: the
# deploy starts no new release and restarts the app itself), small ->
# shared again by a deploy of a new release (whose start is the app's one
# restart) (lib-change.sh: every row whose
# insert returned success is there afterwards, the sequence goes on, a
# table without a key came along, the longest refusal is printed, the old
# instance is gone, nothing left over).  The data is copied by logical
# replication; a neighbour on the shared server is untouched.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib-change.sh"
start_server || exit 1
change_setup pg vcpg

write_addon_app nb shared
miren deploy -C "$TMP/nb" >/dev/null 2>&1
psql_as nb -q -c "CREATE TABLE mine (v text); INSERT INTO mine VALUES ('nb')"
nb_pw=$(miren env get -a nb PGPASSWORD --unmask)

write_change_app small
miren deploy -C "$TMP/$APP" >/dev/null 2>&1
wait_for "the writer inserts" 30 sh -c "'$MIREN_BIN' logs -a $APP | grep -q '^ok'"
change_round shared cli
expect_eq "$method" "replication" "small -> shared: copied by logical replication"
change_round small deploy
expect_eq "$method" "replication" "shared -> small: copied by logical replication"
expect_eq "$(miren app releases -a "$APP" --format json | jq -r '.current')" "1" "shared -> small: the deploy of release 1's tree made no release"
change_round shared deploy
expect_eq "$(miren app releases -a "$APP" --format json | jq -r '.current')" "2" "small -> shared: the deploy made release 2"
expect_eq "$(psql_as nb -c 'SELECT v FROM mine')" "nb" "the neighbour's data is untouched"
expect_eq "$(miren env get -a nb PGPASSWORD --unmask)" "$nb_pw" "the neighbour's credentials are untouched"
if grep -rqF -- "$nb_pw" "$DATA/logs" 2>/dev/null; then fail "a password is in the daemon's logs"; else ok "no password in the daemon's logs"; fi
finish
