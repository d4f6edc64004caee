#!/usr/bin/env bash
# A rollback changes code, not addons, with a real PostgreSQL addon: code
# from before the addon, rolled back to after the addon was added and its
# credentials rotated, runs with today's DATABASE_URL (it connects and
# writes); the addon stays; an addon the old app.toml declared and the app
# no longer has is named, not made again; a deploy after a rollback
# applies its app.toml's addons (compared with the rollback's release,
# whose addons are today's).
. "$(dirname "$0")/lib.sh"
PG=miren-postgresql
start_server || exit 1
A="$TMP/rbpg"
mkdir -p "$A/.miren"

# write_version V [addon]: code V (web.sh writes "release, V" into the
# app's database when the app has one, then sleeps); with "addon", a
# shared PostgreSQL in app.toml.
write_version() {
  cat > "$A/web.sh" <<SH
#!/usr/bin/env bash
V=$1
if [ -n "\${DATABASE_URL:-}" ]; then
  psql "\$DATABASE_URL" -X -q -v ON_ERROR_STOP=1 \\
    -c "CREATE TABLE IF NOT EXISTS hits (release int, version int)" \\
    -c "INSERT INTO hits VALUES (\$MIREN_RELEASE, \$V)" || exit 1
fi
exec sleep 100000
SH
  printf 'name = "rbpg"\n[services.web]\ncommand = "exec bash ./web.sh"\n' > "$A/.miren/app.toml"
  if [ "${2:-}" = addon ]; then printf '[addons.%s]\nvariant = "shared"\n' "$PG" >> "$A/.miren/app.toml"; fi
}
pid_of() { service_field rbpg web pid; }
# has_row R V: the database has a row of release R running code V.
has_row() { [ "$(psql_as rbpg -c "SELECT count(*) FROM hits WHERE release = $1 AND version = $2" 2>/dev/null)" -ge 1 ]; }
hits() { psql_as rbpg -c "SELECT string_agg(release || ':' || version, ' ' ORDER BY release) FROM hits"; }
addons() { miren addon list -a rbpg --format json | jq -r '[.[] | .addon + ":" + .status] | join(",")'; }

write_version 1 && miren deploy -C "$A" >/dev/null 2>&1
expect_eq "$(env_of "$(pid_of)" DATABASE_URL)" "" "release 1 runs without an addon"
write_version 2 addon && miren deploy -C "$A" >/dev/null 2>&1
expect_eq "$(addons)" "$PG:active" "release 2 added the addon"
wait_for "release 2 wrote into its database" 20 has_row 2 2
old_user=$(miren env get -a rbpg PGUSER)
old_pw=$(miren env get -a rbpg PGPASSWORD --unmask)
expect_exit "the addon's credentials are rotated" 0 miren addon rotate $PG -a rbpg
new_pw=$(miren env get -a rbpg PGPASSWORD --unmask)
[ "$new_pw" != "$old_pw" ] && ok "  the env has new credentials" || fail "  the password did not change"

# Back to release 1's code, which predates the addon: it keeps the addon
# and gets today's (rotated) DATABASE_URL.
out=$(miren app rollback -a rbpg 2>&1)
expect_eq "$?" "0" "rollback to release 1 succeeds"
expect_match "$out" "^Rolled back rbpg to release 1: release 3 is live" "  says so"
expect_no_match "$out" "$new_pw" "  prints no password"
expect_eq "$(addons)" "$PG:active" "the addon stays (release 1's app.toml did not declare it)"
web=$(pid_of)
expect_eq "$(env_of "$web" DATABASE_URL)" "$(miren env get -a rbpg DATABASE_URL --unmask)" "release 3 has today's DATABASE_URL"
expect_eq "$(env_of "$web" PGPASSWORD)" "$new_pw" "  with the rotated password"
wait_for "release 1's code wrote into the database as release 3" 20 has_row 3 1
expect_match "$(hits)" "^(2:2 )+3:1$" "the database has release 2's and release 3's (code 1) rows"
expect_eq "$(running_releases rbpg)" "3" "only release 3 runs"
if PGHOST=$(miren env get -a rbpg PGHOST) PGPORT=$(miren env get -a rbpg PGPORT) PGUSER=$old_user \
   PGPASSWORD=$old_pw PGDATABASE=$(miren env get -a rbpg PGDATABASE) PGCONNECT_TIMEOUT=5 \
   psql -X -tAc 'SELECT 1' >/dev/null 2>&1; then
  fail "the credentials from before the rotation still work"
else
  ok "the credentials from before the rotation stay refused"
fi
bad=$(invariant_violations)
[ -z "$bad" ] && ok "invariants hold after the rollback" || fail "invariants:$bad"

# Deploying release 1's tree again: its app.toml declares no addon, the
# rollback's release has one, so this is a new release that applies
# app.toml: the addon goes (after a final backup).
write_version 1
# (The deploy starts release 4 while the addon is still being removed,
# with its variables: web.sh may fail once against the dropping database;
# the removal restarts the app without them.)
out=$(miren deploy -C "$A" 2>&1)
expect_eq "$(miren app releases -a rbpg --format json | jq -c '.releases[0] | [.release, .current, .rollback_of]')" "[4,true,null]" "deploying release 1's tree after the rollback: a new release"
expect_match "$out" "Addon $PG is removed \(app.toml no longer lists it\); its data is in final backup" "  that applies its app.toml (the addon goes, backed up)"
wait_for "the addon is gone" 60 sh -c "[ -z \"\$(\"$MIREN_BIN\" addon list -a rbpg --format json | jq -r '.[].addon')\" ]"
no_db() { local p; p=$(pid_of); [ -r "/proc/$p/environ" ] && [ -z "$(env_of "$p" DATABASE_URL)" ]; }
wait_for "release 4 runs without DATABASE_URL" 20 no_db

# Back to release 2, whose app.toml declared the addon: it is named, not
# made again.
out=$(miren app rollback -a rbpg 2 --format json 2>"$TMP/err")
expect_eq "$?" "0" "rollback to release 2 succeeds"
expect_eq "$(echo "$out" | jq -c '[.release, .rollback_of, .previous, .addons_not_restored]')" "[5,2,4,[\"$PG\"]]" "  and names the addon it does not bring back"
expect_eq "$(addons)" "" "no addon was made"
expect_eq "$(env_of "$(pid_of)" DATABASE_URL)" "" "release 5 runs without DATABASE_URL"
expect_exit "rollback to release 4" 0 miren app rollback -a rbpg 4
out=$(miren app rollback -a rbpg 2 2>&1)
expect_match "$out" "^warning: release 2's app.toml declares addon $PG, which rbpg no longer has; a rollback changes code, not addons: add it back with 'miren addon create $PG -a rbpg'" "the text output warns about it"
# Deploying release 2's tree: the same source as the current release (a
# rollback to 2), but app.toml declares an addon the app lacks: a new
# release that makes it.
write_version 2 addon
out=$(miren deploy -C "$A" 2>&1)
expect_match "$out" "Release 8 of rbpg is live" "deploying release 2's tree after the rollback: a new release"
expect_eq "$(addons)" "$PG:active" "  that makes the addon app.toml declares"
expect_exit "deploying it once more: no changes" 0 miren deploy -C "$A"
expect_match "$(cat "$TMP/out")" "No changes: release 8 of rbpg is current" "  says so"
bad=$(invariant_violations)
[ -z "$bad" ] && ok "invariants hold at the end" || fail "invariants:$bad"
finish
