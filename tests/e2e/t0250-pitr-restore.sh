#!/usr/bin/env bash
# Point-in-time recovery: rows committed at t1 and at t2; `miren addon
# restore --to` a time between them gives the app t1's rows and not t2's,
# on a small server (its own data) and on a shared one (that app's
# database only: the other app's rows, committed after the time, stay).
# A time outside the window is refused with the window, nothing changed.
. "$(dirname "$0")/lib.sh"
export MIREN_ADDON_TICK_MS=500 MIREN_PITR_BASE_MINUTES=60
start_server || exit 1
deploy_addon_app solo small
deploy_addon_app ta shared
deploy_addon_app tb shared
wait_for "each server has a base backup" 60 sh -c "[ \$(grep -l '\"kind\":\"pitr-base\"' '$DATA'/backups/manifests/*.json 2>/dev/null | wc -l) -ge 2 ]"

expect_match "$(miren addon backups miren-postgresql -a solo)" "Point-in-time window: [0-9-]+ [0-9:]+ to [0-9-]+ [0-9:]+ UTC" \
  "addon backups shows the point-in-time window"
expect_match "$(miren addon backups miren-postgresql -a ta --format json | jq -r '.window.to - .window.from >= 0')" "true" \
  "  (JSON: from and to, unix seconds)"
for a in solo ta tb; do
  psql_as "$a" -q -c "CREATE TABLE t (v text); INSERT INTO t VALUES ('$a-t1')"
done
sleep 1.5
T=$(date -u '+%Y-%m-%d %H:%M:%S+00')
Tre=${T//+/\\+}
sleep 1.5
for a in solo ta tb; do psql_as "$a" -q -c "INSERT INTO t VALUES ('$a-t2')"; done
rows() { psql_as "$1" -c "SELECT string_agg(v, ',' ORDER BY v) FROM t"; }
expect_eq "$(rows solo)" "solo-t1,solo-t2" "solo holds both rows before"

# Outside the window: refused with it, nothing changed.
expect_exit "a time before the window is refused" 6 miren addon restore miren-postgresql -a solo --to 10d-ago
expect_match "$(cat "$TMP/err")" "is outside the point-in-time window of addon miren-postgresql of app 'solo', [0-9-]+ [0-9:]+\+00 \.\. [0-9-]+ [0-9:]+\+00; nothing was changed" "  naming the window"
expect_exit "a time after now is refused" 6 miren addon restore miren-postgresql -a solo --to "2099-01-01 00:00:00+00"
expect_exit "a time that is no time is refused" 6 miren addon restore miren-postgresql -a solo --to yesterday
expect_match "$(cat "$TMP/err")" "'yesterday' is not a point in time" "  saying so"
expect_exit "--to with --backup is a usage error" 2 miren addon restore miren-postgresql -a solo --to 1m-ago --backup x
expect_eq "$(rows solo)" "solo-t1,solo-t2" "and solo's data is unchanged"

# small
out=$(miren addon restore miren-postgresql -a solo --to "$T" 2>&1)
expect_match "$out" "Restored addon miren-postgresql of solo \(small\) to $Tre" "restore --to a time between t1 and t2 (small)"
expect_match "$out" "The app was restarted" "  restarts the app"
expect_eq "$(rows solo)" "solo-t1" "  solo has t1's row and not t2's"
wait_for "  solo's service runs again" 20 sh -c "'$MIREN_BIN' app status -a solo | grep -q running"

# shared: only that app's database changes
out=$(miren addon restore miren-postgresql -a ta --to "$T" 2>&1)
expect_match "$out" "Restored addon miren-postgresql of ta \(shared\) to $Tre" "restore --to (shared)"
expect_eq "$(rows ta)" "ta-t1" "  ta has t1's row and not t2's"
expect_eq "$(rows tb)" "tb-t1,tb-t2" "  tb, on the same server, keeps both"
expect_eq "$(psql_as ta -c "SELECT count(*) FROM pg_tables WHERE tablename = 't'")" "1" "  ta's table is there once"
# The instance's credentials are its current ones, and it writes on.
psql_as ta -q -c "INSERT INTO t VALUES ('ta-t3')"
expect_eq "$(rows ta)" "ta-t1,ta-t3" "  ta writes on after the recovery"
expect_eq "$(invariant_violations)" "" "the invariants hold"
expect_eq "$(ls "$DATA/disks" | grep -c '^\.')" "0" "no scratch or staging disk is left"
finish
