#!/usr/bin/env bash
# Addon bad input: clear messages, nothing half-created left behind.
# The CLI's own paths: the CLI of the daemon's build (sanitized in CI; lib.sh).
MIREN_CLI_BIN=${MIREN_BIN:-}
. "$(dirname "$0")/lib.sh"
POOL="127.$NET.$(( 10#$num % 250 + 1 )).0/30"   # two usable addresses
start_server || exit 1
mk() {  # mk NAME [variant]: an app with a service, optionally with an addon section
  mkdir -p "$TMP/$1/.miren"
  printf 'name = "%s"\n[services.web]\ncommand = "exec sleep 100000"\n' "$1" > "$TMP/$1/.miren/app.toml"
  [ -n "${2:-}" ] && printf '[addons.miren-postgresql]\nvariant = "%s"\n' "$2" >> "$TMP/$1/.miren/app.toml"
  true
}
mk plain && miren deploy -C "$TMP/plain" >/dev/null 2>&1

expect_exit "an unknown addon is refused" 3 miren addon create miren-postgres -a plain
expect_match "$(cat "$TMP/err")" "addon 'miren-postgres' not found \(available: ([a-z-]+, )*miren-postgresql(, [a-z-]+)*\)" "listing the addons"
expect_match "$(cat "$TMP/err")" "hint: run 'miren addon list-available'" "with a hint"
expect_exit "an unknown variant is refused" 6 miren addon create miren-postgresql:huge -a plain
expect_match "$(cat "$TMP/err")" "has no variant 'huge' \(variants: small, shared\)" "listing the variants"
expect_exit "an unknown version is refused" 6 miren addon create miren-postgresql --version 9 -a plain
expect_match "$(cat "$TMP/err")" "no version '9' on this host \(versions: 15" "listing the versions"
expect_exit "an addon for an unknown app is refused" 3 miren addon create miren-postgresql -a nosuchapp
expect_match "$(cat "$TMP/err")" "app 'nosuchapp' not found" "naming the app"
expect_exit "destroying an addon that is not attached fails" 3 miren addon destroy miren-postgresql -a plain -f
expect_match "$(cat "$TMP/err")" "app 'plain' has no addon 'miren-postgresql'" "saying so"
expect_exit "destroy without -f and no terminal refuses" 1 miren addon destroy miren-postgresql -a plain </dev/null
expect_exit "addon create without a name is a usage error" 2 miren addon create -a plain
expect_exit "variants of an unknown addon fail" 3 miren addon variants nope

mk badvariant tiny
expect_exit "a deploy with an unknown variant fails" 6 miren deploy -C "$TMP/badvariant"
expect_match "$(cat "$TMP/err")" "has no variant 'tiny'" "naming it"
expect_exit "and records nothing" 3 miren app status -a badvariant

expect_exit "a first addon is created" 0 miren addon create miren-postgresql:shared -a plain
expect_exit "an addon already attached is refused" 4 miren addon create miren-postgresql:small -a plain
expect_match "$(cat "$TMP/err")" "app 'plain' already has addon miren-postgresql \(shared, active\)" "saying which"
# The pool has two addresses: the shared server took one.
mk one && miren deploy -C "$TMP/one" >/dev/null 2>&1
expect_exit "a small addon takes the second address" 0 miren addon create miren-postgresql:small -a one
# Changing the variant in app.toml needs a server of the other variant:
# with no address left for it the deploy fails and nothing changes.
mk plain small
expect_exit "app.toml asking for another variant with no address left fails" 4 miren deploy -C "$TMP/plain"
expect_match "$(cat "$TMP/err")" "cannot change addon miren-postgresql of app 'plain' to small: it stays shared, as it was" "saying what failed and that nothing changed"
expect_match "$(cat "$TMP/err")" "exhausted" "and why"
expect_match "$(miren addon list -a plain)" "shared +active" "the addon is untouched"
expect_eq "$(ls "$DATA/disks" | wc -l)" "2" "no disk was left for the new variant"
mk plain
mk two && miren deploy -C "$TMP/two" >/dev/null 2>&1
expect_exit "a third server finds the pool exhausted" 1 miren addon create miren-postgresql:small -a two
expect_match "$(cat "$TMP/err")" "address pool 127\.$NET\.[0-9]+\.0/30 is exhausted \(2 addresses, all in use\)" "saying so"
expect_match "$(cat "$TMP/err")" "--addr-pool" "and what to do"
expect_match "$(miren addon list -a two)" "small +error +.*exhausted" "addon list shows the error"
expect_eq "$(ls "$DATA/disks" | wc -l)" "2" "no disk was made for it"
expect_exit "the failed addon can be destroyed" 0 miren addon destroy miren-postgresql -a two -f

# An app name that is no PostgreSQL identifier as it stands (reserved
# prefix pg_, and too long once mapped) still gets a role and database: a
# mapped name of at most 63 bytes.
long="pg-$(printf 'x%.0s' $(seq 1 60))"
mk "$long" && miren deploy -C "$TMP/$long" >/dev/null 2>&1
miren addon destroy miren-postgresql -a one -f >/dev/null
expect_exit "an app name too long for an identifier gets an addon" 0 miren addon create miren-postgresql:small -a "$long"
role=$(miren env get -a "$long" PGUSER)
[ "${#role}" -le 63 ] && [ -n "$role" ] && ok "its role name fits an identifier ($role)" || fail "role name '$role'"
expect_no_match "$role" "^pg_" "and does not take the reserved pg_ prefix"
miren addon destroy miren-postgresql -a "$long" -f >/dev/null
expect_eq "$(ls "$DATA/disks" | wc -l)" "1" "destroyed, it leaves no disk behind"

# A data directory where disks cannot be made.
miren addon destroy miren-postgresql -a "$long" -f >/dev/null
miren addon destroy miren-postgresql -a plain -f >/dev/null
rmdir "$DATA/disks" 2>/dev/null; rm -rf "$DATA/disks"; touch "$DATA/disks"
expect_exit "an unwritable disk directory fails the addon" 1 miren addon create miren-postgresql:small -a one
expect_match "$(cat "$TMP/err")" "cannot create" "saying what could not be made"
expect_eq "$(miren addon list -a one --format json | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["status"])')" "error" "the addon is in error"
expect_eq "$(grep -c . <<<"$(pgrep -f -- "-D $DATA/disks" || true)")" "0" "no server runs"
rm -f "$DATA/disks"
miren addon destroy miren-postgresql -a one -f >/dev/null
expect_exit "after fixing the directory the addon works" 0 miren addon create miren-postgresql:small -a one

# A host without the PostgreSQL binaries: the message names the package.
stop_server
MIREN_PG_ROOT="$TMP/no-postgresql" start_server || exit 1
mk nopg && miren deploy -C "$TMP/nopg" >/dev/null 2>&1
expect_exit "without PostgreSQL installed an addon is refused" 5 miren addon create miren-postgresql -a nopg
expect_match "$(cat "$TMP/err")" "cannot run on this host" "saying it cannot run here"
expect_match "$(cat "$TMP/err")" "install the Debian package postgresql-15" "and naming the package"
expect_match "$(miren addon list -a nopg)" "has no addons" "nothing is attached"
finish
