#!/usr/bin/env bash
# Backup schedules: app.toml's backups = { every = "1m", keep = 2 } takes a
# scheduled backup at once; retention prunes the addon's backups to keep
# (oldest first); a daemon that was down for many periods takes ONE
# backup when it starts again, not one per missed period; the schedule is
# set, changed and removed from the CLI; retention never removes the newest
# verified backup; scheduled backups are verified; failures are retried.
. "$(dirname "$0")/lib.sh"
export MIREN_BACKUP_TICK_MS=300
start_server || exit 1
write_addon_app sch small
cat >> "$TMP/sch/.miren/app.toml" <<'TOML'
backups = { every = "1m", keep = 2 }
TOML
out=$(miren deploy -C "$TMP/sch" 2>&1) || fail "the deploy failed: $out"
wait_for "the addon is active" 60 sh -c "'$MIREN_BIN' addon list -a sch | grep -q ' active'"
psql_as sch -q -c "CREATE TABLE t (i int); INSERT INTO t VALUES (1)"

listing() { miren addon backups miren-postgresql -a sch --format json; }
n_trigger() { listing | jq "[.backups[] | select(.trigger == \"$1\")] | length"; }
has_scheduled() { [ "$(n_trigger schedule)" -ge 1 ]; }
wait_for "a schedule without a backup takes one at once" 60 has_scheduled
# Its verification and pruning end the scheduler's pass; the manual
# backups below come after it.
first_verified() { [ "$(listing | jq -r '[.backups[] | select(.trigger == "schedule")][0].verified')" = true ]; }
wait_for "the scheduled backup is verified" 60 first_verified
j=$(listing)
expect_eq "$(jq -r '.schedule.every' <<<"$j")" "1m" "the schedule is every 1m"
expect_eq "$(jq -r '.schedule.keep' <<<"$j")" "2" "keeping 2"
expect_eq "$(jq -r '.schedule.source' <<<"$j")" "config" "from app.toml"
expect_eq "$(jq -r '.schedule.last_error' <<<"$j")" "" "with no error"
first=$(jq -r '[.backups[] | select(.trigger == "schedule")][0].id' <<<"$j")
expect_eq "$(jq -r '.schedule.last_id' <<<"$j")" "$first" "its last backup is that one"
expect_eq "$(jq -r '.backups[0].kind' <<<"$j")" "disk" "a small addon's backup is its disk"
human=$(miren addon backups miren-postgresql -a sch)
expect_match "$human" "^ID +TAKEN \(UTC\) +KIND +TRIGGER +SIZE +STORED +VERIFIED +KEPT UNTIL" "the listing's header"
expect_match "$human" "$first .* disk +schedule " "lists the scheduled backup"
expect_match "$human" "Schedule: every 1m, keeping 2 \(from app.toml\); next at " "and the schedule"

# Two manual backups: three of the addon now, more than keep.
m1=$(miren addon backup miren-postgresql -a sch | head -n 1)
m2=$(miren addon backup miren-postgresql -a sch | head -n 1)
expect_eq "$(listing | jq '.backups | length')" "3" "three backups before the next scheduled one"

# Down for ten periods: the restarted daemon catches up once.
stop_server
sqlite3 "$DATA/miren.db" "UPDATE backup_schedules SET last_ok_at = last_ok_at - 600, last_try_at = last_try_at - 600"
start_server || exit 1
wait_for "the restarted daemon takes the missed backup" 30 sh -c "[ \"\$('$MIREN_BIN' addon backups miren-postgresql -a sch --format json | jq -r .schedule.last_id)\" != '$first' ]"
two_left() { [ "$(listing | jq '.backups | length')" = 2 ]; }
wait_for "the backup is verified and retention runs" 60 two_left
sleep 3   # ten ticks: a daemon catching up once per missed period would take more
j=$(listing)
ids=$(jq -r '[.backups[].id] | join(" ")' <<<"$j")
last=$(jq -r '.schedule.last_id' <<<"$j")
expect_eq "$(jq '.backups | length' <<<"$j")" "2" "  and no more backups come"
expect_eq "$ids" "$m2 $last" "the oldest went: the newest manual one and the new scheduled one stay"
expect_eq "$(grep -c 'scheduled backup .* taken' "$DATA/logs/server.log")" "2" "one backup after ten missed periods, not ten"
expect_match "$(grep 'removed: beyond the 2 its schedule keeps' "$DATA/logs/server.log")" "$first" "the first scheduled backup was pruned"
expect_match "$(grep 'removed: beyond the 2 its schedule keeps' "$DATA/logs/server.log")" "$m1" "and the older manual one"
next=$(jq -r '.schedule.next_at' <<<"$j"); lok=$(jq -r '.schedule.last_ok_at' <<<"$j")
expect_eq "$((next - lok))" "60" "the next one is a period after the last"
expect_match "$(grep "scheduled backup $last of addon miren-postgresql of app sch" "$DATA/logs/server.log")" "verified" "the scheduled backup was verified"
expect_eq "$(jq -r --arg id "$last" '.backups[] | select(.id == $id) | .verified' <<<"$j")" "true" "and is listed as verified"
expect_exit "a pruned backup cannot be restored" 3 miren addon restore miren-postgresql -a sch --backup "$first" --force

# The CLI: change keep, then the period, then remove the schedule.
out=$(miren addon backups miren-postgresql -a sch --keep 5 --format json)
expect_eq "$(jq -r '.schedule.keep' <<<"$out")" "5" "--keep alone changes the count"
expect_eq "$(jq -r '.schedule.every' <<<"$out")" "1m" "and keeps the period"
expect_eq "$(jq -r '.schedule.source' <<<"$out")" "cli" "now set from the CLI"
out=$(miren addon backups miren-postgresql -a sch --every 1d --format json)
expect_eq "$(jq -r '.schedule.every_s' <<<"$out")" "86400" "--every 1d"
expect_eq "$(jq -r '.schedule.keep' <<<"$out")" "5" "keeps the count"
out=$(miren addon backups miren-postgresql -a sch --every off --format json)
expect_eq "$(jq -r '.schedule' <<<"$out")" "null" "--every off removes it"
expect_eq "$(jq '.backups | length' <<<"$out")" "2" "its backups stay"
expect_match "$(miren addon backups miren-postgresql -a sch)" "Schedule: none" "the listing says there is none"
# A deploy applies app.toml's again.
miren deploy -C "$TMP/sch" >/dev/null 2>&1
expect_eq "$(listing | jq -r '.schedule.source')" "config" "a deploy puts app.toml's schedule back"

# The point-in-time window (PostgreSQL's base backups and archived WAL).
has_window() { [ "$(listing | jq -r '.window.from // empty')" != "" ]; }
wait_for "the listing gives the point-in-time window" 120 has_window
expect_match "$(miren addon backups miren-postgresql -a sch)" "Point-in-time window: [0-9-]+ [0-9:]+ to [0-9-]+ [0-9:]+ UTC" "shown as from .. to"

# Retention never removes the newest verified backup: two newer
# unverified ones are taken, keep drops to 1; the daemon's first pass
# keeps the verified one, not the newest.
stop_server
sqlite3 "$DATA/miren.db" "UPDATE backup_schedules SET last_ok_at = strftime('%s','now') + 3600, last_try_at = strftime('%s','now') + 3600"
start_server || exit 1
v=$(listing | jq -r '.last_verified')
expect_match "$v" "^[0-9]{8}-" "the scheduled backups are verified"
miren addon backup miren-postgresql -a sch >/dev/null
miren addon backup miren-postgresql -a sch >/dev/null
expect_eq "$(listing | jq -c '[.backups[-2:][] | .verified]')" "[false,false]" "the two new ones are not verified"
stop_server
sqlite3 "$DATA/miren.db" "UPDATE backup_schedules SET keep = 1"
start_server || exit 1
only_v() { [ "$(listing | jq -r '[.backups[].id] | join(" ")')" = "$v" ]; }
wait_for "pruned to keep = 1, keeping the verified backup rather than the newest" 30 only_v
expect_eq "$(listing | jq -r '.backups[0].verified')" "true" "shown as verified"
last=$v

# A full backup store: the failure is recorded, the stored backups stay,
# and it is retried a sixth of the period later, not a period later.  The
# store is moved onto a tmpfs with 1 MiB to spare, and the database grows
# by more than that in data that does not compress.
psql_as sch -q -c "CREATE TABLE big AS SELECT i, (SELECT string_agg(md5(random()::text || i || g), '') FROM generate_series(1, 8) g) AS pad FROM generate_series(1, 40000) i"
stop_server
sqlite3 "$DATA/miren.db" "UPDATE backup_schedules SET every_s = 3600, last_ok_at = last_ok_at - 7200, last_try_at = last_ok_at - 7200"
used=$(du -sb "$DATA/backups" | cut -f1)
mv "$DATA/backups" "$DATA/backups.real" && mkdir "$DATA/backups"
mount -t tmpfs -o size=$(( used + (1 << 20) )) tmpfs "$DATA/backups"
cp -a "$DATA/backups.real/." "$DATA/backups/"
start_server || exit 1
wait_for "the failed attempt is recorded" 60 sh -c "[ -n \"\$('$MIREN_BIN' addon backups miren-postgresql -a sch --format json | jq -r .schedule.last_error)\" ]"
j=$(listing)
expect_match "$(jq -r .schedule.last_error <<<"$j")" "full|space" "the error says the store is full"
expect_eq "$(( $(jq -r .schedule.next_at <<<"$j") - $(jq -r .schedule.last_try_at <<<"$j") ))" "600" "retried after a sixth of the period (10 min), not an hour"
expect_eq "$(jq -r '[.backups[].id] | join(" ")' <<<"$j")" "$v" "the stored backups are intact"
expect_match "$(miren addon backups miren-postgresql -a sch)" "the last scheduled backup failed at .*UTC: " "the listing shows the failure"
expect_exit "the last stored backup still restores" 0 miren addon restore miren-postgresql -a sch --backup "$last" --force
stop_server
umount "$DATA/backups" && rmdir "$DATA/backups" && mv "$DATA/backups.real" "$DATA/backups"
start_server || exit 1
wait_for "the database answers" 30 psql_as sch -c "SELECT 1"
expect_eq "$(psql_as sch -c 'SELECT count(*) FROM t')" "1" "the app's data is as at that backup"
expect_eq "$(invariant_violations)" "" "the invariants hold"
finish
