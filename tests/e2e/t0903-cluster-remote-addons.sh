#!/usr/bin/env bash
# The remote twin of the addon commands: through a cluster (HTTPS, a
# deployer's token scoped to the apps, the certificate pinned) deploy
# waits for its addon with progress, addon create waits, env and addon
# list show what they show locally, addon backup -o streams the backup
# into a local file (verified), logs -f follows, and an admin's cluster
# backs up a disk into a local file and destroys an app.
# The CLI's own paths: the CLI of the daemon's build (sanitized in CI; lib.sh).
MIREN_CLI_BIN=${MIREN_BIN:-}
. "$(dirname "$0")/lib.sh"

addr="${POOL%.0/24}.253:8443"
start_server --listen "$addr" || exit 1
export XDG_CONFIG_HOME="$TMP/config"
fp="SHA256:$(openssl x509 -in "$DATA/tls/cert.pem" -outform der | openssl dgst -sha256 -binary | base64 | tr -d =)"
miren auth token create --name dep --app redis-visits --app hello 2>/dev/null > "$TMP/dep.token"
miren auth token create --name adm --role admin 2>/dev/null > "$TMP/adm.token"
miren cluster add dep "https://$addr" --token-file "$TMP/dep.token" --fingerprint "$fp" >/dev/null
miren cluster add adm "https://$addr" --token-file "$TMP/adm.token" --fingerprint "$fp" >/dev/null
export MIREN_CLUSTER=dep
app=$(copy_example redis-visits)
hello=$(copy_example hello)

out=$(miren deploy -C "$app" 2>&1)
expect_match "$out" "Provisioning addon miren-redis \(small\)\.\.\." "a remote deploy shows provisioning progress"
expect_match "$out" "Addon miren-redis ready" "and waits until the addon is ready"
url=$(service_url redis-visits web)
wait_for "the app answers" 30 curl -fsS "$url"
expect_match "$(curl -fsS "$url")" "^Visits: [0-9]+$" "the app counts visits in its addon"
expect_match "$(miren addon list -a redis-visits)" "miren-redis +small +active" "addon list through the cluster"
expect_match "$(miren env list -a redis-visits)" "REDIS_URL +\*+ +\(all\) +addon" "env list through the cluster, masked"
rurl=$(miren env get -a redis-visits REDIS_URL --unmask)
case $rurl in redis://redis-visits:*) ok "env get --unmask through the cluster" ;; *) fail "env get --unmask through the cluster" ;; esac

# addon backup -o: stored on the server, streamed to a local file.
expect_exit "addon backup -o through the cluster" 0 miren addon backup miren-redis -a redis-visits -o "$TMP/kv.miren.zst"
id=$(head -n 1 "$TMP/out" | awk '{print $NF}')
[ -s "$TMP/kv.miren.zst" ] && ok "the backup is a local file" || fail "the backup is a local file: $(cat "$TMP/err")"
tar --zstd -tf "$TMP/kv.miren.zst" >/dev/null 2>&1 && ok "a zstd tar archive" || fail "a zstd tar archive"
expect_match "$(miren addon backups miren-redis -a redis-visits)" "$id" "addon backups lists it"

# logs -f follows: a request made while it runs shows up.
miren deploy -C "$hello" >/dev/null 2>&1
hurl=$(service_url hello web)
wait_for "hello answers" 30 curl -fsS "$hurl"
timeout 300 "$MIREN_BIN" logs -f -a hello > "$TMP/follow" 2>&1 &
follow=$!
wait_for "logs -f shows the start" 120 grep -q "listening on" "$TMP/follow"
curl -sS "${hurl%/}/followed-path" >/dev/null
wait_for "logs -f shows a request made while it follows" 120 grep -q "GET /followed-path" "$TMP/follow"
kill -0 "$follow" 2>/dev/null && ok "logs -f still follows" || fail "logs -f still follows"
kill -TERM "$follow" 2>/dev/null
wait "$follow" 2>/dev/null

# addon create waits for the addon.
out=$(miren addon create miren-redis:small -a hello 2>&1)
expect_match "$out" "Addon miren-redis ready" "addon create waits through the cluster"
expect_match "$(miren addon list -a hello)" "miren-redis +small +active" "and it is active"

# A disk is an admin's: backed up into a local file through the admin's cluster.
disk=$(miren addon list -a redis-visits --format json | jq -r '.[0].disk')
expect_exit "a deployer may not back up a disk" 7 miren disk backup -n "$disk" -o "$TMP/disk.miren.zst"
expect_exit "disk backup through the admin's cluster" 0 miren disk backup --cluster adm -n "$disk" -o "$TMP/disk.miren.zst"
expect_match "$(cat "$TMP/out")" "verified +[0-9]+ files, every checksum" "verified on this side"
tar --zstd -tf "$TMP/disk.miren.zst" >/dev/null 2>&1 && ok "the disk's backup is a local archive" || fail "the disk's backup is a local archive"

# Destroying an app is an admin's.
expect_exit "a deployer may not destroy" 7 miren app destroy hello -f --no-final-backup
expect_exit "app destroy through the admin's cluster" 0 miren app destroy --cluster adm hello -f --no-final-backup
expect_eq "$(miren app list --format json | jq -c '[.[].name]')" '["redis-visits"]' "it is gone"
finish
