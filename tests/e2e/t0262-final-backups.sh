#!/usr/bin/env bash
# Final backups (of shared addons: logical dumps that load into any new
# addon): a deploy that drops an addon from app.toml, `addon
# destroy` and `app destroy` first take a backup kept for 7 days, name it,
# and list it with the app's backups (also once the addon or the app is
# gone); it restores into the addon made again.  --no-final-backup skips
# it; a final backup that fails refuses the removal, changing nothing.
. "$(dirname "$0")/lib.sh"
start_server || exit 1
deploy_addon_app fin shared
wait_for "the addon is active" 60 sh -c "'$MIREN_BIN' addon list -a fin | grep -q ' active'"
psql_as fin -q -c "CREATE TABLE t (i int); INSERT INTO t VALUES (1), (2)"
listing() { miren addon backups miren-postgresql -a "$1" --format json; }
gone() { miren addon list -a fin | grep -q 'has no addons'; }

# 1. A deploy whose app.toml no longer lists the addon.
printf 'name = "fin"\n[services.web]\ncommand = "exec sleep 100000"\n' > "$TMP/fin/.miren/app.toml"
out=$(miren deploy -C "$TMP/fin" 2>&1)
expect_match "$out" "Addon miren-postgresql is removed \(app.toml no longer lists it\); its data is in final backup [0-9]{8}-[0-9]{6}-[0-9a-f]+, kept 7 days" "the deploy says it removes the addon and names the final backup"
d1=$(printf '%s\n' "$out" | sed -n 's/.*final backup \([0-9a-f-]*\), kept.*/\1/p')
wait_for "the addon is gone" 60 gone
j=$(listing fin)
expect_eq "$(jq -r --arg id "$d1" '.backups[] | select(.id == $id) | .trigger' <<<"$j")" "deploy" "addon backups lists it (trigger deploy) for an addon the app no longer has"
ku=$(jq -r --arg id "$d1" '.backups[] | select(.id == $id) | .keep_until - .created_at' <<<"$j")
[ "$ku" -ge $((7 * 86400 - 5)) ] && [ "$ku" -le $((7 * 86400 + 5)) ] && ok "kept for 7 days" || fail "kept for $ku s"
expect_match "$(miren addon backups miren-postgresql -a fin)" "$d1 .* deploy .* [0-9]{4}-[0-9]{2}-[0-9]{2} " "the listing shows until when"

# Made again (app.toml lists it again), restored from the final backup.
deploy_addon_app fin shared
wait_for "the addon is made again" 60 sh -c "'$MIREN_BIN' addon list -a fin | grep -q ' active'"
expect_exit "restore --backup of the final backup" 0 miren addon restore miren-postgresql -a fin --backup "$d1" --force
wait_for "the database answers" 30 psql_as fin -c "SELECT 1"
expect_eq "$(psql_as fin -c 'SELECT count(*) FROM t')" "2" "the data is back"

# 2. addon destroy.
psql_as fin -q -c "INSERT INTO t VALUES (3)"
out=$(miren addon destroy miren-postgresql -a fin -f 2>&1)
expect_match "$out" "^Destroyed addon miren-postgresql of fin" "addon destroy destroys"
expect_match "$out" "final backup [0-9]{8}-[0-9]{6}-[0-9a-f]+, kept 7 days" "and prints the final backup"
d2=$(printf '%s\n' "$out" | sed -n 's/^  final backup \([0-9a-f-]*\), kept.*/\1/p')
expect_eq "$(listing fin | jq -r --arg id "$d2" '.backups[] | select(.id == $id) | .trigger')" "destroy" "listed with trigger destroy"
miren addon create miren-postgresql:shared -a fin >/dev/null 2>&1
expect_exit "restored into the addon made again" 0 miren addon restore miren-postgresql -a fin --backup "$d2" --force
wait_for "the database answers" 30 psql_as fin -c "SELECT 1"
expect_eq "$(psql_as fin -c 'SELECT count(*) FROM t')" "3" "with the data as at the destroy"

# 3. A final backup that fails refuses the destroy: the store is moved
# onto a tmpfs, then filled up, and the database grows.  Nothing else may
# free space in the store meanwhile: the periodic work first removes the
# WAL archives of the servers gone above and takes the server's base
# backup for point-in-time recovery on the real store; the daemon on the
# tmpfs then has no base backup due (a failed one would free what it had
# written; a removed archive once let the final backup fit).
psql_as fin -q -c "CREATE TABLE big AS SELECT i, (SELECT string_agg(md5(random()::text || i || g), '') FROM generate_series(1, 8) g) AS pad FROM generate_series(1, 40000) i"
wait_for "only the current server has a WAL archive" 60 sh -c "[ \$(ls '$DATA/backups/wal' | wc -l) -eq 1 ]"
srv=$(ls "$DATA/backups/wal")
wait_for "its base backup is stored" 120 grep -q "server $srv: base backup .* for point-in-time recovery" "$DATA/logs/server.log"
stop_server
used=$(du -sb "$DATA/backups" | cut -f1)
mv "$DATA/backups" "$DATA/backups.real" && mkdir "$DATA/backups"
mount -t tmpfs -o size=$(( used + (1 << 20) )) tmpfs "$DATA/backups"
cp -a "$DATA/backups.real/." "$DATA/backups/"
MIREN_PITR_BASE_SECONDS=86400 start_server || exit 1
fill() { dd if=/dev/zero of="$DATA/backups/filler.$1" bs=64k 2>/dev/null || true; }
fill 1
n_before=$(listing fin | jq '.backups | length')
expect_exit "a failed final backup refuses the destroy" 1 miren addon destroy miren-postgresql -a fin -f
expect_match "$(cat "$TMP/err")" "cannot take the final backup of addon miren-postgresql of app 'fin', so it is not removed: .*full" "saying why"
expect_match "$(cat "$TMP/err")" "hint: .*--no-final-backup" "and how to go on without it"
expect_match "$(miren addon list -a fin)" " active" "the addon is still there"
expect_eq "$(psql_as fin -c 'SELECT count(*) FROM t')" "3" "with its data"
expect_eq "$(listing fin | jq '.backups | length')" "$n_before" "the stored backups are intact"
fill 2
expect_exit "app destroy is refused too" 1 miren app destroy fin -f
expect_match "$(cat "$TMP/err")" "hint: .*app destroy fin --no-final-backup" "  with its hint"
expect_match "$(miren app list)" "fin" "the app is still there"
# 4. --no-final-backup.
out=$(miren addon destroy miren-postgresql -a fin -f --no-final-backup 2>&1)
expect_no_match "$out" "final backup" "--no-final-backup takes none"
expect_match "$out" "Destroyed addon miren-postgresql of fin" "and destroys"
expect_eq "$(listing fin | jq '.backups | length')" "$n_before" "no backup was added"
stop_server
umount "$DATA/backups" && rmdir "$DATA/backups" && mv "$DATA/backups.real" "$DATA/backups"
start_server || exit 1

# 5. app destroy.
deploy_addon_app fin2 shared
wait_for "fin2's addon is active" 60 sh -c "'$MIREN_BIN' addon list -a fin2 | grep -q ' active'"
psql_as fin2 -q -c "CREATE TABLE u (i int); INSERT INTO u VALUES (7)"
out=$(miren app destroy fin2 -f 2>&1)
expect_match "$out" "final backup [0-9a-f-]+ of addon miren-postgresql, kept 7 days" "app destroy prints the final backup"
expect_match "$out" "^Destroyed fin2" "and destroys the app"
d3=$(printf '%s\n' "$out" | sed -n 's/^  final backup \([0-9a-f-]*\) of.*/\1/p')
expect_eq "$(listing fin2 | jq -r '.backups[-1].id')" "$d3" "addon backups lists it after the app is gone"
deploy_addon_app fin2 shared
wait_for "a new fin2's addon is active" 60 sh -c "'$MIREN_BIN' addon list -a fin2 | grep -q ' active'"
expect_exit "it restores into the new app's addon" 0 miren addon restore miren-postgresql -a fin2 --backup "$d3" --force
wait_for "the database answers" 30 psql_as fin2 -c "SELECT 1"
expect_eq "$(psql_as fin2 -c 'SELECT i FROM u')" "7" "with the old app's data"
out=$(miren app destroy fin2 -f --no-final-backup 2>&1)
expect_no_match "$out" "final backup" "app destroy --no-final-backup takes none"

# A final backup whose keep time passed is removed (at start, and each
# hour); one still kept is not.
m="$DATA/backups/manifests/$d1.json"
stop_server
jq -c '.meta.keep_until = 1' "$m" > "$m.new" && mv "$m.new" "$m"
start_server || exit 1
wait_for "the expired final backup is removed" 30 sh -c "! '$MIREN_BIN' addon backups miren-postgresql -a fin --format json | jq -e --arg id '$d1' '.backups[] | select(.id == \$id)' >/dev/null"
expect_match "$(grep "backup $d1 .* removed" "$DATA/logs/server.log")" "its keep time passed" "because its keep time passed"
expect_eq "$(listing fin | jq -r --arg id "$d2" '.backups[] | select(.id == $id) | .trigger')" "destroy" "the final backup still kept stays"
expect_eq "$(invariant_violations)" "" "the invariants hold"
finish
