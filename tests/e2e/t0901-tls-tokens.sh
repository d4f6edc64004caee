#!/usr/bin/env bash
# The HTTPS listener (miren server --listen) and its tokens: TLS 1.2 at
# least, the certificate made once and its fingerprint logged; every
# request needs a valid token; roles and app scopes hold; a revoked or
# expired token is refused; failed attempts are rate-limited per address;
# no token appears in a log.
. "$(dirname "$0")/lib.sh"

addr="${POOL%.0/24}.253:8443"
U="https://$addr"
start_server --listen "$addr" || exit 1
mkapp() {
  mkdir -p "$TMP/$1/.miren"
  printf 'name = "%s"\n[services.web]\ncommand = "exec sleep 100000"\n' "$1" > "$TMP/$1/.miren/app.toml"
  miren deploy -C "$TMP/$1" >/dev/null 2>&1
}
mkapp a
mkapp b

# The certificate: made on the first start, kept, its fingerprint logged.
fp=$(openssl x509 -in "$DATA/tls/cert.pem" -outform der | openssl dgst -sha256 -binary | base64 | tr -d =)
# (The fingerprint is base64: '+' and '/' are no regex.)
expect_eq "$(grep -cF "serving HTTPS on $addr (certificate SHA256:$fp)" "$DATA/logs/server.log")" 1 "the listener logs the certificate's fingerprint"
expect_eq "$(stat -c %a "$DATA/tls/key.pem")" "600" "the key is 0600"
expect_eq "$(miren server info --format json | jq -c '.listen')" "[{\"address\":\"$addr\",\"fingerprint\":\"SHA256:$fp\"}]" "server info shows the listener and its fingerprint"
proto=$(echo | openssl s_client -connect "$addr" 2>/dev/null | sed -n 's/.*New, \(TLSv1\.[0-9]\).*/\1/p')
expect_eq "$proto" "TLSv1.3" "TLS 1.3 is preferred"
expect_exit "TLS 1.1 is refused" 35 curl -sk --tlsv1.1 --tls-max 1.1 "$U/v1/version"
expect_exit "plain HTTP is refused" 52 curl -s "http://$addr/v1/version"

code() { curl -sk -o "$TMP/body" -w '%{http_code}' ${1:+-H "Authorization: Bearer $1"} -X "$2" "$U$3"; }
expect_eq "$(code "" GET /v1/apps)" 401 "no token: 401"
expect_match "$(cat "$TMP/body")" "needs a valid token" "and says so"

# Tokens: shown once, stored as a hash.
dep=$(miren auth token create --name dep-a --app a 2>/dev/null)
expect_match "$dep" "^miren_[0-9a-f]{40}$" "a token is printed once, on stdout"
read_a=$(miren auth token create --name read-a --role reader --app a 2>/dev/null)
adm=$(miren auth token create --name adm --role admin 2>/dev/null)
short=$(miren auth token create --name short --expires 2s 2>/dev/null)
expect_eq "$(sqlite3 "$DATA/miren.db" "SELECT count(*) FROM tokens WHERE hash = '$(printf %s "$dep" | sha256sum | cut -d' ' -f1)'")" 1 "the store keeps the token's hash"
expect_eq "$(grep -rlF -- "$dep" "$DATA" 2>/dev/null | wc -l)" 0 "the token itself is in no file of the data directory"
expect_exit "a second token of the same name is refused" 4 miren auth token create --name dep-a
expect_exit "an unknown role is refused" 6 miren auth token create --name x --role owner
expect_exit "an admin token scoped to an app is refused" 6 miren auth token create --name x --role admin --app a
expect_exit "a bad expiry is refused" 6 miren auth token create --name x --expires soon
expect_eq "$(miren auth token list --format json | jq length)" 4 "nothing was made by the refused ones"

# Roles and scopes.
expect_eq "$(code "$dep" GET /v1/apps)" 200 "a deployer lists apps"
expect_eq "$(jq -c '[.[].name]' "$TMP/body")" '["a"]' "only its own"
expect_eq "$(code "$dep" GET /v1/apps/a)" 200 "a deployer reads its app"
expect_eq "$(code "$dep" GET /v1/apps/b)" 403 "not another app"
expect_eq "$(code "$dep" POST /v1/apps/b/restart)" 403 "nor changes it"
expect_eq "$(code "$dep" POST /v1/apps/a/restart)" 200 "a deployer restarts its app"
expect_eq "$(code "$dep" DELETE /v1/apps/a)" 403 "but does not destroy it"
expect_eq "$(code "$dep" GET /v1/disks)" 403 "disks are an admin's"
expect_eq "$(code "$dep" GET /v1/auth/tokens)" 403 "so are tokens"
expect_eq "$(code "$read_a" GET /v1/apps/a/env)" 200 "a reader reads env"
expect_eq "$(code "$read_a" GET "/v1/apps/a/env?unmask=1")" 403 "never unmasked"
expect_eq "$(code "$read_a" POST /v1/apps/a/restart)" 403 "and changes nothing"
expect_eq "$(code "$adm" GET /v1/apps)" 200 "an admin lists"
expect_eq "$(jq -c '[.[].name]' "$TMP/body")" '["a","b"]' "every app"
expect_eq "$(code "$adm" GET /v1/auth/tokens)" 200 "an admin lists tokens"
expect_no_match "$(cat "$TMP/body")" "$dep" "and sees no token"

# Revoked and expired tokens.
miren auth token revoke dep-a >/dev/null
expect_eq "$(code "$dep" GET /v1/apps/a)" 401 "a revoked token is refused"
sleep 3
expect_eq "$(code "$short" GET /v1/apps)" 401 "an expired token is refused"
expect_eq "$(miren auth token list --format json | jq -r '.[] | select(.name == "short") | .state')" "expired" "the list says expired"
expect_exit "revoking an unknown token is an error" 3 miren auth token revoke nosuch

# Failed attempts are limited per address.
for _ in $(seq 12); do code "miren_wrong" GET /v1/apps >/dev/null; done
expect_eq "$(code "$adm" GET /v1/apps)" 401 "after many failures even a good token is refused for a while"
expect_match "$(cat "$TMP/body")" "too many failed attempts" "and says why"
expect_no_match "$(cat "$DATA/logs/server.log")" "miren_wrong|$adm|$read_a" "no token is logged"

# The certificate is kept across restarts.
stop_server
start_server --listen "$addr" || exit 1
fp2=$(openssl x509 -in "$DATA/tls/cert.pem" -outform der | openssl dgst -sha256 -binary | base64 | tr -d =)
expect_eq "$fp2" "$fp" "the certificate is kept across restarts"
stop_server
expect_exit "--tls-cert without --tls-key is a usage error" 2 miren server --data-dir "$DATA" --tls-cert "$DATA/tls/cert.pem"
finish
