# shellcheck shell=bash
# The fault walks' common start (t0301, t0309, t0310, t0311; sourced after
# lib.sh): apps keep (a shared PostgreSQL tenant with 3 committed rows that
# every check looks for) and fa (no addon yet), the server stopped;
# check NAME (invariants and keep's rows), mkapp NAME, POINTS (the fault
# points MIREN_FAULT=list declares), points_of KIND PREFIX, walked POINT
# and WALKED (what was walked).

check() {
  local bad
  bad=$(invariant_violations)
  # The long-lived tenant keeps its committed rows.
  [ "$(psql_as keep -c 'SELECT count(*) FROM kept' 2>/dev/null)" = "3" ] || bad="$bad; keep lost data"
  if [ -z "$bad" ]; then ok "$1: invariants hold"; else fail "$1:$bad"; fi
}

mkapp() {
  mkdir -p "$TMP/$1/.miren"
  printf 'name = "%s"\n[services.web]\ncommand = "exec sleep 100000"\n' "$1" > "$TMP/$1/.miren/app.toml"
  miren deploy -C "$TMP/$1" >/dev/null 2>&1
}

start_server || exit 1
mkapp keep
miren addon create miren-postgresql:shared -a keep >/dev/null 2>&1
psql_as keep -q -c "CREATE TABLE kept (i int); INSERT INTO kept VALUES (1), (2), (3)"
mkapp fa
stop_server

# The points come from the code (MIREN_FAULT=list): every step of every
# variant of every registered addon, so a new step or engine is walked
# without touching this test.
POINTS=$(MIREN_FAULT=list "$MIREN_BIN")
[ -n "$POINTS" ] || { fail "MIREN_FAULT=list printed nothing"; finish; }
expect_match "$POINTS" "^step provision:miren-postgresql:small:plan:ran$" "MIREN_FAULT=list names the steps"
# The points of one kind whose name starts with $2, in the listed order.
points_of() { echo "$POINTS" | awk -v k="$1" -v p="$2" '$1 == k && index($2, p) == 1 { print $2 }'; }
WALKED=""
walked() { WALKED="$WALKED $1"; }
