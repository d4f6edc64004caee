#!/usr/bin/env bash
# A server people can install: `cmake --install` of the tested build puts
# the binary, a man page per page of docs/commands/ (one for every visible
# command), bash and zsh completions and miren.service under a prefix; the
# unit passes `systemd-analyze verify` (and a broken copy does not); the
# completions complete commands and options; the daemon tells systemd it is
# ready (sd_notify READY=1 once the API socket answers) and stopping.
. "$(dirname "$0")/lib.sh"
build=$(dirname "$MIREN_BIN")
prefix="$TMP/prefix"
expect_exit "cmake --install into a prefix" 0 cmake --install "$build" --prefix "$prefix"
expect_match "$("$prefix/bin/miren" --version 2>&1)" "^miren [0-9]" "the installed binary runs"

# Man pages: README.md is miren(1); every visible command has its page.
pages=$(find "$MIREN_SRC/docs/commands" -name '*.md' | wc -l)
expect_eq "$(find "$prefix/share/man/man1" -name '*.1' | wc -l)" "$pages" "a man page per docs page"
missing=""
while IFS= read -r c; do
  [ -f "$prefix/share/man/man1/miren-${c// /-}.1" ] || missing="$missing $c"
done < <(miren help --format json | jq -r '.[] | select(.hidden | not) | .name')
expect_eq "$missing" "" "every visible command has its man page"
out=$(MANWIDTH=100 man -l "$prefix/share/man/man1/miren-addon-create.1" 2>/dev/null)
expect_match "$out" "^MIREN-ADDON-CREATE\(1\) +miren manual" "a page renders with its header"
expect_match "$out" "--no-wait" "and the command's options"
expect_no_match "$out" "example setup" "without the docs check's comments"

# The unit.
unit="$prefix/lib/systemd/system/miren.service"
expect_match "$(cat "$unit")" "ExecStart=$prefix/bin/miren server --data-dir /var/lib/miren" "the unit runs the installed binary"
expect_match "$(cat "$unit")" "Type=notify" "with readiness by sd_notify"
MANPATH="$prefix/share/man:" systemd-analyze verify "$unit" >"$TMP/verify" 2>&1
expect_eq "$?" "0" "systemd-analyze verify accepts the unit: $(cat "$TMP/verify")"
mkdir -p "$TMP/broken"
sed 's/^Type=notify/Type=notifyy/; s|^ExecStart=.*|ExecStart=miren server|' "$unit" > "$TMP/broken/miren.service"
expect_exit "and refuses a broken copy" 1 env MANPATH="$prefix/share/man:" systemd-analyze verify "$TMP/broken/miren.service"

# bash completion.
complete_bash() {
  bash -c 'source "$1"; shift; COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); _miren
    printf "%s\n" "${COMPREPLY[@]}"' _ "$prefix/share/bash-completion/completions/miren" miren "$@" |
    tr '\n' ' ' | sed 's/ $//'
}
expect_match "$(complete_bash "")" "^addon app auth cluster completion debug deploy disk env logs server$" "bash: the command groups"
expect_eq "$(complete_bash addon cr)" "create" "bash: a group's command"
expect_eq "$(complete_bash auth token "")" "create list revoke" "bash: three words deep"
expect_eq "$(complete_bash server --li)" "--listen" "bash: a command's option"
expect_eq "$(complete_bash app list --cl)" "--cluster" "bash: the common options of a command that asks a server"
expect_match "$(complete_bash addon create -)" "--app" "bash: --app where the command takes an app"
expect_eq "$(complete_bash addon create -a x "")" "" "bash: nothing of ours after an option (files)"
# zsh: the script parses, and its candidates are the same.
expect_exit "zsh: the script parses" 0 zsh -n "$prefix/share/zsh/site-functions/_miren"
zfuncs=$(sed '$d' "$prefix/share/zsh/site-functions/_miren")
expect_eq "$(zsh -c "$zfuncs"$'\n''_miren_candidates "addon" "" "cr" 1 | grep "^cr"')" "create" "zsh: a group's command"

# Readiness: READY=1 once the socket answers, STOPPING=1 on SIGTERM.
python3 - "$TMP/notify.sock" "$TMP/notify.log" <<'PY' &
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
with open(sys.argv[2], "ab", buffering=0) as f:
    while True:
        f.write(s.recv(4096) + b"\n")
PY
listener=$!
wait_for "the notify socket is there" 10 test -S "$TMP/notify.sock"
NOTIFY_SOCKET="$TMP/notify.sock" start_server || exit 1
wait_for "the daemon says READY=1" 10 grep -q '^READY=1' "$TMP/notify.log"
expect_match "$(cat "$TMP/notify.log")" "STATUS=serving on $DATA/miren.sock" "with its socket as status"
expect_match "$(miren app list 2>&1)" "" "and answers"
stop_server
wait_for "and STOPPING=1 when stopped" 10 grep -q '^STOPPING=1' "$TMP/notify.log"
kill "$listener" 2>/dev/null
finish
