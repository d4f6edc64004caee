#!/usr/bin/env bash
# Cluster contexts: `miren cluster add|list|use|remove` keep remote servers
# (address, token, pinned certificate) in $XDG_CONFIG_HOME/miren/
# clusters.toml (0600); --cluster, MIREN_CLUSTER and the current cluster
# choose one, in that order; commands work through it as they do locally;
# a certificate that no longer matches the pin is refused, and no token
# appears in any output.
# The CLI's own paths: the CLI of the daemon's build (sanitized in CI; lib.sh).
MIREN_CLI_BIN=${MIREN_BIN:-}
. "$(dirname "$0")/lib.sh"

addr="${POOL%.0/24}.253:8443"
U="https://$addr"
start_server --listen "$addr" || exit 1
export XDG_CONFIG_HOME="$TMP/config"
CONF="$XDG_CONFIG_HOME/miren/clusters.toml"
fp=$(openssl x509 -in "$DATA/tls/cert.pem" -outform der | openssl dgst -sha256 -binary | base64 | tr -d =)
fp="SHA256:$fp"
mkapp() {
  mkdir -p "$TMP/$1/.miren"
  printf 'name = "%s"\n[services.web]\ncommand = "echo started $MIREN_APP; exec sleep 100000"\n' "$1" > "$TMP/$1/.miren/app.toml"
}
mkapp a
mkapp b
# Every output of the remote commands, to check that no token is in one.
ALL="$TMP/all-output"
r() {
  local rc
  "$MIREN_BIN" "$@" 2>"$TMP/r.err" | tee -a "$ALL"
  rc=${PIPESTATUS[0]}
  tee -a "$ALL" < "$TMP/r.err" >&2
  return "$rc"
}

adm=$(miren auth token create --name adm --role admin 2>/dev/null)
dep=$(miren auth token create --name dep-a --app a 2>/dev/null)
rdr=$(miren auth token create --name rdr-a --role reader --app a 2>/dev/null)
printf '%s\n' "$adm" > "$TMP/adm.token"
printf '%s\n' "$dep" > "$TMP/dep.token"
printf '%s\n' "$rdr" > "$TMP/rdr.token"

# No clusters: commands talk to the local server.
expect_eq "$(miren cluster list)" "No clusters; add one with 'miren cluster add NAME https://HOST:PORT --token-file FILE'" "no clusters at first"
expect_eq "$(miren cluster list --format json)" "[]" "and none as JSON"

# Adding: the fingerprint must match, a terminal is needed to ask.
wrong="SHA256:$(printf 'not the server' | openssl dgst -sha256 -binary | base64 | tr -d =)"
expect_exit "a wrong fingerprint is refused" 7 miren cluster add prod "$U" --token-file "$TMP/adm.token" --fingerprint "$wrong"
grep -qF "presents the certificate $fp, not the given $wrong" "$TMP/err" && ok "it names both fingerprints" || fail "it names both fingerprints: $(cat "$TMP/err")"
[ ! -e "$CONF" ] && ok "nothing was written" || fail "nothing was written"
expect_exit "not on a terminal and no --fingerprint: refused" 2 miren cluster add prod "$U" --token-file "$TMP/adm.token" </dev/null
grep -qF -- "pass it with --fingerprint" "$TMP/err" && ok "with a hint" || fail "with a hint: $(cat "$TMP/err")"
expect_exit "a malformed fingerprint is refused" 6 miren cluster add prod "$U" --token-file "$TMP/adm.token" --fingerprint SHA256:abc
expect_exit "http:// is refused" 6 miren cluster add prod "http://$addr" --token-file "$TMP/adm.token" --fingerprint "$fp"
expect_exit "a bad name is refused" 6 miren cluster add Prod "$U" --token-file "$TMP/adm.token" --fingerprint "$fp"
expect_exit "a missing token file is refused" 3 miren cluster add prod "$U" --token-file "$TMP/nosuch" --fingerprint "$fp"
printf 'miren_0000000000000000000000000000000000000000\n' > "$TMP/bad.token"
expect_exit "a token the server does not know is refused" 7 miren cluster add prod "$U" --token-file "$TMP/bad.token" --fingerprint "$fp"
[ ! -e "$CONF" ] && ok "still nothing written" || fail "still nothing written"
expect_exit "a server that does not answer" 5 miren cluster add prod "https://${POOL%.0/24}.254:8443" --token-file "$TMP/adm.token" --fingerprint "$fp"

# On a terminal the fingerprint is shown and asked about.
printf 'n\n' | script -qec "'$MIREN_BIN' cluster add tty '$U' --token-file '$TMP/adm.token'" /dev/null > "$TMP/tty.out" 2>&1
grep -qF "$fp" "$TMP/tty.out" && ok "on a terminal the fingerprint is shown" || fail "on a terminal the fingerprint is shown: $(cat "$TMP/tty.out")"
grep -qF "Trust it and add cluster 'tty'? [y/N]" "$TMP/tty.out" && ok "and asked about" || fail "and asked about"
grep -qF "not trusted: cluster 'tty' not added" "$TMP/tty.out" && ok "no: not added" || fail "no: not added"
[ ! -e "$CONF" ] && ok "nothing written" || fail "nothing written"
printf 'y\n' | script -qec "'$MIREN_BIN' cluster add tty '$U' --token-file '$TMP/adm.token'" /dev/null > "$TMP/tty.out" 2>&1
grep -qF "Added cluster 'tty'" "$TMP/tty.out" && ok "yes: added" || fail "yes: added: $(cat "$TMP/tty.out")"
grep -qxF "fingerprint = \"$fp\"" "$CONF" && ok "with the fingerprint shown" || fail "with the fingerprint shown"
miren cluster remove tty >/dev/null

expect_exit "cluster add with the right fingerprint" 0 r cluster add prod "$U" --token-file "$TMP/adm.token" --fingerprint "$fp"
expect_match "$(cat "$TMP/out")" "^Added cluster 'prod' \(https://$addr, miren [0-9.]+\)" "says what it added"
expect_eq "$(stat -c %a "$CONF")" "600" "clusters.toml is 0600"
grep -qxF "fingerprint = \"$fp\"" "$CONF" && ok "it holds the fingerprint" || fail "it holds the fingerprint: $(cat "$CONF")"
grep -qxF "token = \"$adm\"" "$CONF" && ok "and the token" || fail "and the token"
expect_exit "a second cluster of the same name is refused" 4 miren cluster add prod "$U" --token-file "$TMP/dep.token" --fingerprint "$fp"
r cluster add dep "$U" --token-file "$TMP/dep.token" --fingerprint "$fp" >/dev/null
r cluster add rdr "$U" --token-file "$TMP/rdr.token" --fingerprint "$fp" >/dev/null
expect_eq "$(miren cluster list --format json | jq -c '[.[] | [.name, .url, .fingerprint, .current]]')" \
  "[[\"prod\",\"$U\",\"$fp\",false],[\"dep\",\"$U\",\"$fp\",false],[\"rdr\",\"$U\",\"$fp\",false]]" "cluster list shows them"
expect_eq "$(miren cluster list --format json | jq -c '[.[] | keys] | unique')" '[["current","fingerprint","name","url"]]' "never a token"

# Remote use: deploy, list, status, env, logs, restart, through --cluster.
expect_exit "deploy through a deployer's cluster" 0 r deploy --cluster dep -C "$TMP/a"
expect_match "$(cat "$TMP/err")" "Deploying a from" "deploy uploaded the tree"
expect_eq "$(r app list --cluster dep --format json | jq -c '[.[].name]')" '["a"]' "app list through the cluster"
expect_exit "app status through the cluster" 0 r app status --cluster dep -a a
expect_exit "env set through the cluster" 0 r env set --cluster dep -a a GREETING=hello
expect_eq "$(r env get --cluster dep -a a GREETING)" "hello" "env get through the cluster"
expect_exit "env list through the cluster" 0 r env list --cluster dep -a a
wait_for "the service logged" 30 sh -c "'$MIREN_BIN' logs --cluster dep -a a | grep -q 'started a'"
expect_exit "app restart through the cluster" 0 r app restart --cluster dep a
expect_exit "addon list through the cluster" 0 r addon list --cluster dep -a a
expect_exit "addon list-available through the cluster" 0 r addon list-available --cluster rdr
expect_exit "auth token list through an admin's cluster" 0 r auth token list --cluster prod
grep -qF "dep-a" "$TMP/out" && ok "it lists the tokens" || fail "it lists the tokens"
expect_exit "server info through the cluster" 0 r server info --cluster prod
expect_exit "addon connect runs on the server's host only" 2 miren addon connect --cluster dep -a a db
grep -qF "works only on the server's host" "$TMP/err" && ok "and says so" || fail "and says so: $(cat "$TMP/err")"

# Roles and scopes hold through the CLI.
miren deploy -C "$TMP/b" >/dev/null 2>&1
expect_exit "a reader cannot deploy" 7 r deploy --cluster rdr -C "$TMP/a"
expect_match "$(cat "$TMP/err")" "is a reader" "it says why"
expect_exit "a reader cannot set env" 7 r env set --cluster rdr -a a X=1
expect_exit "a deployer of a cannot deploy b" 7 r deploy --cluster dep -C "$TMP/b"
expect_match "$(cat "$TMP/err")" "may not act on app 'b'" "it says why"
expect_exit "nor read b's env" 7 r env list --cluster dep -a b
expect_exit "nor destroy a" 7 r app destroy --cluster dep a -f
expect_exit "tokens are an admin's" 7 r auth token list --cluster dep

# Choosing: --cluster beats MIREN_CLUSTER beats the current one; none: local.
expect_eq "$(miren app list --format json | jq -c '[.[].name]')" '["a","b"]' "no cluster: the local server"
expect_eq "$(MIREN_CLUSTER=dep miren app list --format json | jq -c '[.[].name]')" '["a"]' "MIREN_CLUSTER selects one"
expect_exit "cluster use" 0 miren cluster use dep
expect_eq "$(cat "$TMP/out")" "Using cluster 'dep' ($U)" "says which"
expect_eq "$(miren cluster list --format json | jq -r '.[] | select(.current) | .name')" "dep" "list marks it current"
expect_match "$(miren cluster list)" "^\* +dep " "with a star"
expect_eq "$(miren app list --format json | jq -c '[.[].name]')" '["a"]' "the current cluster is used"
expect_eq "$(MIREN_CLUSTER=prod miren app list --format json | jq -c '[.[].name]')" '["a","b"]' "MIREN_CLUSTER beats the current one"
expect_eq "$(MIREN_CLUSTER=prod miren app list --cluster dep --format json | jq -c '[.[].name]')" '["a"]' "--cluster beats MIREN_CLUSTER"
expect_eq "$(miren app list --socket "$DATA/miren.sock" --format json | jq -c '[.[].name]')" '["a","b"]' "--socket beats the current one"
expect_exit "--cluster and --socket together are a usage error" 2 miren app list --cluster dep --socket "$DATA/miren.sock"
expect_exit "an unknown cluster is not found" 3 env MIREN_CLUSTER=nosuch "$MIREN_BIN" app list
expect_match "$(cat "$TMP/err")" "no cluster 'nosuch' \(from MIREN_CLUSTER\)" "naming where it came from"
expect_exit "MIREN_CLUSTER that is no cluster name is invalid" 6 env MIREN_CLUSTER='Bad Name' "$MIREN_BIN" app list
expect_match "$(cat "$TMP/err")" "invalid cluster name 'Bad Name'" "saying so"
expect_exit "cluster use of an unknown one" 3 miren cluster use nosuch
expect_exit "cluster use --local" 0 miren cluster use --local
expect_eq "$(miren cluster list --format json | jq -r '[.[] | select(.current)] | length')" "0" "none is current"

# A 401: the token revoked.
miren auth token revoke rdr-a >/dev/null
expect_exit "a revoked token: exit 7" 7 r app list --cluster rdr
expect_match "$(cat "$TMP/err")" "cluster 'rdr' refused its token" "with a hint"

# A replaced certificate is refused, naming both fingerprints.
cp "$CONF" "$TMP/conf.before"
stop_server
rm -rf "$DATA/tls"
start_server --listen "$addr" || exit 1
fp2="SHA256:$(openssl x509 -in "$DATA/tls/cert.pem" -outform der | openssl dgst -sha256 -binary | base64 | tr -d =)"
expect_exit "a server with another certificate is refused" 7 r app list --cluster prod
grep -qF "no longer matches the pinned fingerprint" "$TMP/err" && ok "it says the certificate no longer matches" || fail "it says so: $(cat "$TMP/err")"
grep -qF "pinned $fp, the server presented $fp2" "$TMP/err" && ok "naming both" || fail "naming both: $(cat "$TMP/err")"
grep -qF "miren cluster remove prod" "$TMP/err" && ok "and what to do" || fail "and what to do"
cmp -s "$CONF" "$TMP/conf.before" && ok "clusters.toml is unchanged" || fail "clusters.toml is unchanged"

# Remove.
miren cluster use prod >/dev/null
expect_exit "cluster remove" 0 miren cluster remove prod
expect_eq "$(cat "$TMP/out")" "Removed cluster 'prod'; commands talk to the local server again" "says so"
expect_eq "$(miren cluster list --format json | jq -c '[.[].name]')" '["dep","rdr"]' "it is gone"
expect_exit "removing it again: not found" 3 miren cluster remove prod
grep -qF "$adm" "$CONF" && fail "its token is gone from the file" || ok "its token is gone from the file"
expect_eq "$(stat -c %a "$CONF")" "600" "still 0600"
expect_eq "$(miren app list --format json | jq -c '[.[].name]')" '["a","b"]' "the local server again"

# No token in any output, nor in the server's log.
for t in "$adm" "$dep" "$rdr"; do
  grep -qF -- "$t" "$ALL" && fail "a token is in an output" || ok "no token in the outputs"
  grep -qF -- "$t" "$DATA/logs/server.log" && fail "a token is in the server log" || ok "no token in the server log"
done
finish
