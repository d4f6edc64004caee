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
# A log bigger than one slice (1 MiB): -n gives that many lines, however
# far back they start, each whole; a byte that begins no UTF-8 character
# comes as U+FFFD.
mkdir -p "$TMP/big/.miren"
cat > "$TMP/big/.miren/app.toml" <<'TOML'
name = "big"
[services.web]
command = "seq -f 'line %06g of a log bigger than one slice' 1 150000; printf 'latin1 \\351t\\351\\n'; exec sleep 1000"
TOML
miren deploy -C "$TMP/big" >/dev/null 2>&1
wait_for "big has written its log" 20 sh -c "'$MIREN_BIN' logs -a big -n 1 | grep -q latin1"
miren logs -a big -n 1000000 > "$TMP/all"
expect_eq "$(wc -l < "$TMP/all")" "150001" "-n 1000000 gives every line of a 6 MB log"
expect_eq "$(grep -c '^line [0-9]\{6\} of a log bigger than one slice$' "$TMP/all")" "150000" "each line whole"
expect_eq "$(miren logs -a big -n 100001 | head -n 1)" "line 050001 of a log bigger than one slice" "-n starts that many lines back"
expect_eq "$(tail -n 1 "$TMP/all")" "latin1 �t�" "a byte that is no UTF-8 comes as U+FFFD"
expect_exit "logs of an unknown service fail" 3 miren logs -a talky -s nope
expect_match "$(cat "$TMP/err")" "app 'talky' has no service 'nope'" "naming the service"
finish
