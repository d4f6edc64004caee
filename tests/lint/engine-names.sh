#!/usr/bin/env bash
# The engine naming rule: no file outside lib/addon/<engine>/ names an
# engine, its binaries or its SQL (comments and strings too), and each
# engine directory defines exactly one `addon_engine_<dir>`.  The words
# are the known engines' and the name of every engine directory, so a new
# engine is covered by being added.
set -u
src=${1:-$(cd "$(dirname "$0")/../.." && pwd)}
cd "$src" || exit 2
words='postgres|psql|pg_|initdb|postmaster|mysql|maria|redis'
for d in lib/addon/*/; do
  words="$words|$(basename "$d")"
done
status=0
hits=$(grep -rniE "$words" lib src | grep -vE '^lib/addon/[a-z][a-z0-9_]*/')
if [ -n "$hits" ]; then
  echo "not ok - files outside lib/addon/<engine>/ name an engine:"
  printf '    %s\n' "${hits//$'\n'/$'\n'    }"
  status=1
else
  echo "ok - no file outside lib/addon/<engine>/ names an engine"
fi
for d in lib/addon/*/; do
  e=$(basename "$d")
  n=$(grep -rhoE "const struct addon_def addon_engine_[a-z0-9_]+ *=" "$d" | sort -u)
  if [ "$n" != "const struct addon_def addon_engine_$e =" ]; then
    echo "not ok - lib/addon/$e/ must define exactly one 'const struct addon_def addon_engine_$e', found: ${n:-none}"
    status=1
  else
    echo "ok - lib/addon/$e/ defines addon_engine_$e"
  fi
done
exit $status
