#!/usr/bin/env bash
# App names that PostgreSQL reserves as role names (none, current-user,
# session-user, current-role, pg-...) deploy with a small and with a shared
# addon: the addon becomes active, its role and database are u_<name>_, and
# the app answers through DATABASE_URL.
. "$(dirname "$0")/lib.sh"
start_server || exit 1
src=$(copy_example python-visits)

deploy_as() { # APP VARIANT
  mkdir -p "$TMP/$1"
  cp -r "$src/." "$TMP/$1/"
  sed -i "s/^name = .*/name = \"$1\"/; s/^variant = .*/variant = \"$2\"/" "$TMP/$1/.miren/app.toml"
  miren deploy -C "$TMP/$1" 2>&1
}

check_app() { # APP VARIANT IDENT
  local app=$1 variant=$2 ident=$3 url
  expect_match "$(miren addon list -a "$app")" "miren-postgresql +$variant +active" "$app ($variant): the addon is active"
  expect_eq "$(miren env get -a "$app" PGUSER)" "$ident" "$app ($variant): its role is $ident"
  expect_eq "$(miren env get -a "$app" PGDATABASE)" "$ident" "$app ($variant): its database is $ident"
  expect_eq "$(psql_as "$app" -c 'SELECT current_user || current_database()')" "$ident$ident" "$app ($variant): the role logs in to its database"
  url=$(service_url "$app" web)
  wait_for "$app ($variant): the app answers" 30 curl -fsS "$url"
  expect_match "$(curl -fsS "$url")" "^Visits: [0-9]+$" "$app ($variant): a row is written and read through DATABASE_URL"
}

names="none current-user session-user current-role"
for variant in small shared; do
  for app in $names; do
    out=$(deploy_as "$app" "$variant")
    expect_match "$out" "Addon miren-postgresql ready" "$app ($variant): deploy provisions the addon"
  done
  for app in $names; do
    check_app "$app" "$variant" "u_${app//-/_}_"
  done
  expect_eq "$(invariant_violations)" "" "$variant: the invariants hold"
  for app in $names; do
    miren app destroy "$app" -f >/dev/null
  done
  wait_for "$variant: every addon server is gone" 60 sh -c "[ -z \"\$(ls -A '$DATA/disks')\" ]"
done

# A keyword that is not a reserved role name keeps its plain name.
out=$(deploy_as user small)
expect_match "$out" "Addon miren-postgresql ready" "user: deploy provisions the addon"
check_app user small user
expect_eq "$(invariant_violations)" "" "the invariants hold at the end"
finish
