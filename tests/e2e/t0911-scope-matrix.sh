#!/usr/bin/env bash
# The scope matrix: every route of the API (lib/api/routes.c's table; the
# test fails when a route is missing from its table below) asked over
# HTTPS with every kind of token, for an app in the token's scope and one
# outside it: refused with 403 exactly where the rules say, never refused
# elsewhere.  The rules (issue 12): an admin may do everything; a deployer
# acts on its apps (all apps without --app) but never destroys one nor
# touches disks, tokens or the server; a reader reads its apps (GET) and
# changes nothing, and asks for no unmasked value anywhere; anyone may list apps (filtered),
# the version and the addon catalogue.  The apps asked about do not exist,
# so an allowed request ends in 404 or 400 and changes nothing.
# The CLI's own paths: the CLI of the daemon's build (sanitized in CI; lib.sh).
MIREN_CLI_BIN=${MIREN_BIN:-}
. "$(dirname "$0")/lib.sh"
addr="${POOL%.0/24}.253:8443"
start_server --listen "$addr" || exit 1

# METHOD PATH CLASS: any (every token), list (every token, filtered),
# app (acts on :app), admin (admins only).
table='GET /v1/version any
GET /v1/apps list
GET /v1/apps/:app app
DELETE /v1/apps/:app admin
POST /v1/apps/:app/deploy app
POST /v1/apps/:app/restart app
GET /v1/apps/:app/releases app
POST /v1/apps/:app/rollback app
GET /v1/apps/:app/env app
GET /v1/apps/:app/env/:key app
PUT /v1/apps/:app/env/:key app
DELETE /v1/apps/:app/env/:key app
GET /v1/apps/:app/logs/:service app
GET /v1/addons any
GET /v1/addons/:addon any
GET /v1/apps/:app/addons app
POST /v1/apps/:app/addons app
DELETE /v1/apps/:app/addons/:addon app
GET /v1/apps/:app/addons/:addon/info app
POST /v1/apps/:app/addons/:addon/connect app
GET /v1/apps/:app/addons/:addon/backups app
PUT /v1/apps/:app/addons/:addon/backups/schedule app
POST /v1/apps/:app/addons/:addon/backup app
POST /v1/apps/:app/addons/:addon/restore app
POST /v1/apps/:app/addons/:addon/restore/file app
POST /v1/apps/:app/addons/:addon/rotate app
POST /v1/apps/:app/addons/:addon/fork app
POST /v1/apps/:app/addons/:addon/change app
GET /v1/backups/:id/export admin
GET /v1/apps/:app/addons/:addon/backups/:id/export app
POST /v1/apps/:app/addons/:addon/backups/verify app
POST /v1/apps/:app/addons/:addon/backups/verify-file app
GET /v1/disks admin
POST /v1/disks/restore admin
POST /v1/disks/:disk/backup admin
POST /v1/disks/:disk/resize admin
DELETE /v1/disks/:disk admin
GET /v1/debug/disks admin
GET /v1/debug/invariants admin
GET /v1/debug/state admin
GET /v1/server admin
POST /v1/auth/tokens admin
GET /v1/auth/tokens admin
DELETE /v1/auth/tokens/:name admin'
routes=$(grep -oE '\{ "(GET|POST|PUT|DELETE|PATCH)", "[^"]+"' "$MIREN_SRC/lib/api/routes.c" |
  sed -E 's/\{ "([A-Z]+)", "([^"]+)"/\1 \2/' | sort)
expect_eq "$(cut -d' ' -f1,2 <<<"$table" | sort)" "$routes" "the matrix names every route of the API, and no other"

admin=$(miren auth token create --name adm --role admin)
dep_all=$(miren auth token create --name dep-all)
dep_a=$(miren auth token create --name dep-a --app a)
read_all=$(miren auth token create --name read-all --role reader)
read_a=$(miren auth token create --name read-a --role reader --app a)
[ -n "$admin" ] && [ -n "$dep_a" ] && [ -n "$read_a" ] || { fail "tokens were not made"; finish; }

# allowed TOKEN-KIND CLASS METHOD APP UNMASK -> 0 when the rules allow it.
allowed() {
  local kind=$1 class=$2 method=$3 app=$4 unmask=$5
  [ "$kind" = admin ] && return 0
  case $kind in read-*) [ "$unmask" = 0 ] || return 1 ;; esac
  case $class in any | list) return 0 ;; admin) return 1 ;; esac
  case $kind in
    dep-all) return 0 ;;
    dep-a) [ "$app" = a ] ;;
    read-all) [ "$method" = GET ] ;;
    read-a) [ "$method" = GET ] && [ "$app" = a ] ;;
  esac
}
# One line per request: KIND METHOD URL EXPECTED (allow or refuse).
requests=$(while read -r method path class; do
  for app in a b; do
    for unmask in 0 1; do
      [ "$unmask" = 1 ] && [ "$method" != GET ] && continue
      url=$(sed -e "s/:app/$app/; s/:addon/miren-postgresql/; s/:key/K/; s/:service/web/" \
        -e 's/:id/20260101-000000-0000/; s/:disk/nodisk/; s/:name/notoken/' <<<"$path")
      [ "$unmask" = 1 ] && url="$url?unmask=1"
      for kind in admin dep-all dep-a read-all read-a; do
        if allowed "$kind" "$class" "$method" "$app" "$unmask"; then want=allow; else want=refuse; fi
        echo "$kind $method $url $want"
      done
    done
  done
done <<<"$table")
printf '%s\n' "$requests" > "$TMP/requests"
# Asked on one kept-alive connection per token kind (one curl per request
# took a minute here); prints each request whose answer breaks the rules.
wrong=$(TOKENS="admin=$admin dep-all=$dep_all dep-a=$dep_a read-all=$read_all read-a=$read_a" \
  python3 - "$addr" "$TMP/requests" <<'PY'
import http.client, os, ssl, sys
host, port = sys.argv[1].rsplit(":", 1)
tokens = dict(kv.split("=", 1) for kv in os.environ["TOKENS"].split())
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
conns = {}
for line in open(sys.argv[2]):
    kind, method, url, want = line.split()
    for attempt in (1, 2):
        c = conns.get(kind) or http.client.HTTPSConnection(host, int(port), context=ctx, timeout=20)
        conns[kind] = c
        try:
            c.request(method, url, headers={"Authorization": "Bearer " + tokens[kind]})
            r = c.getresponse()
            r.read()
            code = r.status
            if r.getheader("Connection", "").lower() == "close":
                c.close()
                conns.pop(kind)
            break
        except (http.client.HTTPException, OSError):
            c.close()
            conns.pop(kind)
            code = 0
    ok = code not in (0, 401, 403) if want == "allow" else code == 403
    if not ok:
        print(f"  {kind} {method} {url}: {code}, but the rules {want} it")
PY
)
checked=$(wc -l <<<"$requests")
expect_eq "$wrong" "" "$checked requests (route x app in or out of scope x token kind x unmasked): each allowed or refused as the rules say"
expect_eq "$(miren app list --format json | jq length)" 0 "and none made or changed an app"
expect_eq "$(grep -cF -e "$admin" -e "$dep_a" -e "$read_a" "$DATA/logs/server.log")" 0 "no token is in the log"
finish
