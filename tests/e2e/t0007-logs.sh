#!/usr/bin/env bash
# logs: all services with prefixes, -s, -n, and -f following new output.
. "$(dirname "$0")/lib.sh"
start_server || exit 1
mkdir -p "$TMP/talky/.miren"
cat > "$TMP/talky/.miren/app.toml" <<'TOML'
name = "talky"
[services.ticker]
command = "i=0; while true; do i=$((i+1)); echo tick $i; sleep 0.2; done"
[services.quiet]
command = "echo only once; exec sleep 1000"
TOML
miren deploy -C "$TMP/talky" >/dev/null 2>&1
wait_for "ticker has written 5 lines" 10 sh -c "'$MIREN_BIN' logs -a talky -s ticker | grep -q 'tick 5'"
all=$(miren logs -a talky)
expect_match "$all" "ticker \| tick 1" "lines of ticker are prefixed"
expect_match "$all" "quiet \| only once" "lines of quiet are prefixed"
expect_no_match "$(miren logs -a talky -s quiet)" "tick" "-s shows one service only"
expect_eq "$(miren logs -a talky -s ticker -n 2 | wc -l)" "2" "-n limits the lines"
timeout 2 "$MIREN_BIN" logs -a talky -s ticker -f -n 0 > "$TMP/follow" || true
n=$(grep -c tick "$TMP/follow")
[ "$n" -ge 4 ] && ok "-f follows new lines ($n in 2s)" || fail "-f printed $n lines in 2s"
expect_exit "logs of an unknown service fail" 3 miren logs -a talky -s nope
expect_match "$(cat "$TMP/err")" "app 'talky' has no service 'nope'" "naming the service"
finish
