#!/usr/bin/env bash
# The fault walk of miren-redis alone (t0301 and t0307 walk every engine;
# this one is quick): at every point MIREN_FAULT=list declares for
# miren-redis — between the recorded steps of provisioning and
# deprovisioning of both variants, and inside them — the daemon is killed
# (as kill -9 would); a restarted daemon must converge with exactly one
# redis-server per server record, no stray process, disk or ACL user
# (miren debug invariants), and a long-lived shared tenant keeps its keys.
. "$(dirname "$0")/lib.sh"
R=miren-redis

mkapp() {
  mkdir -p "$TMP/$1/.miren"
  printf 'name = "%s"\n[services.web]\ncommand = "exec sleep 100000"\n' "$1" > "$TMP/$1/.miren/app.toml"
  miren deploy -C "$TMP/$1" >/dev/null 2>&1
}
keep_value() {
  REDISCLI_AUTH="$(miren env get -a keep REDIS_PASSWORD --unmask)" redis-cli --no-auth-warning \
    -h "$(miren env get -a keep REDIS_HOST)" --user keep GET keep:k 2>&1
}
check() {
  local bad
  bad=$(invariant_violations)
  [ "$(keep_value)" = kept ] || bad="$bad; keep lost its key"
  if [ -z "$bad" ]; then ok "$1: invariants hold"; else fail "$1:$bad"; fi
}

start_server || exit 1
mkapp keep
miren addon create $R:shared -a keep >/dev/null 2>&1
REDISCLI_AUTH="$(miren env get -a keep REDIS_PASSWORD --unmask)" redis-cli --no-auth-warning \
  -h "$(miren env get -a keep REDIS_HOST)" --user keep SET keep:k kept >/dev/null
mkapp fa
stop_server

POINTS=$(MIREN_FAULT=list "$MIREN_BIN")
points_of() { echo "$POINTS" | awk -v k="$1" -v p="$2" '$1 == k && index($2, p) == 1 { print $2 }'; }
expect_match "$(points_of step provision:$R:)" "provision:$R:small:plan:ran" "MIREN_FAULT=list names the Redis steps"
WALKED=""

for av in $(points_of step "activate:$R:" | sed 's/^activate://'); do
  variant=${av##*:}
  for p in $(points_of step "provision:$av:") "activate:$av"; do
    WALKED="$WALKED $p"
    start_faulty "$p" || { fail "$p: server did not start"; continue; }
    miren addon create "$R:$variant" -a fa --no-wait >/dev/null 2>&1
    wait_crash || { fail "$p: the daemon did not crash there"; stop_server; continue; }
    start_server || exit 1
    wait_for "$p: the addon converges to active" 40 sh -c "'$MIREN_BIN' addon list -a fa | grep -q ' active'"
    check "$p"
    miren addon destroy "$R" -a fa -f >/dev/null 2>&1
    stop_server
  done
  for p in $(points_of step "deprovision:$av:"); do
    WALKED="$WALKED $p"
    start_server || exit 1
    miren addon create "$R:$variant" -a fa >/dev/null 2>&1
    stop_server
    start_faulty "$p" || { fail "$p: server did not start"; continue; }
    miren addon destroy "$R" -a fa -f --no-wait >/dev/null 2>&1
    wait_crash || { fail "$p: the daemon did not crash there"; stop_server; continue; }
    start_server || exit 1
    wait_for "$p: the addon converges to removed" 40 sh -c "'$MIREN_BIN' addon list -a fa | grep -q 'has no addons'"
    check "$p"
    stop_server
  done
done

# Inside the steps: each point during a create of each variant (the
# shared server already runs, so a point of its start is reached by the
# small variant only); each must be reached by one.
for p in $(points_of inside "$R:"); do
  WALKED="$WALKED $p"
  reached=""
  for variant in small shared; do
    start_faulty "$p" || { fail "$p: server did not start"; continue; }
    miren addon create "$R:$variant" -a fa --no-wait >/dev/null 2>&1
    if wait_crash; then reached="$reached $variant"; start_server || exit 1; fi
    wait_for "$p ($variant): the addon converges to active" 40 sh -c "'$MIREN_BIN' addon list -a fa | grep -q ' active'"
    check "$p ($variant)"
    miren addon destroy "$R" -a fa -f >/dev/null 2>&1
    stop_server
  done
  if [ -n "$reached" ]; then ok "$p: reached by$reached"; else fail "$p: no create reached it"; fi
done

# A daemon killed right after it started a server, before recording its
# pid, leaves that redis-server unsupervised: the next daemon ends it
# before starting its own on the same address (no duplicate).
start_faulty "$R:server:started" || exit 1
miren addon create "$R:small" -a fa --no-wait >/dev/null 2>&1
wait_crash || fail "orphan: the daemon did not crash"
rm -f "$DATA"/run/addon_s-*.pid
start_server || exit 1
wait_for "orphan: the addon converges to active" 40 sh -c "'$MIREN_BIN' addon list -a fa | grep -q ' active'"
check "orphan: one server per record"
stop_server

for p in $(echo "$POINTS" | awk -v r="$R:" '$1 != "operation" && index($2, r) || index($2, ":" r) { print $2 }'); do
  case " $WALKED " in *" $p "*) ;; *) fail "fault point $p is declared but not walked" ;; esac
done
finish
