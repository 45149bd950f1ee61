#!/usr/bin/env bash
# Usage: scripts/check-unit.sh [UNIT [MAX]]
# Fails unless `systemd-analyze security --offline=true UNIT` rates the unit's exposure at most
# MAX (default 2.5; 0 = fully locked down, 10 = unprotected), and `systemd-analyze verify`
# finds no error in it other than the binary not being installed here.
# Needs systemd-analyze (Debian: apt-get install systemd); no running systemd is needed.
set -euo pipefail
unit=${1:-deploy/spotter.service}
max=${2:-2.5}

if ! command -v systemd-analyze >/dev/null; then
  echo "check-unit: systemd-analyze not found (Debian: apt-get install -y systemd)" >&2
  exit 2
fi
[ -f "$unit" ] || { echo "check-unit: no unit file $unit" >&2; exit 2; }

out=$(systemd-analyze security --offline=true --no-pager "$unit" 2>&1) || {
  echo "$out" >&2
  echo "check-unit: systemd-analyze security failed on $unit" >&2
  exit 1
}
# The last line reads: "→ Overall exposure level for spotter.service: 1.6 OK 🙂"
score=$(printf '%s\n' "$out" | sed -n 's/.*Overall exposure level for [^:]*: \([0-9][0-9.]*\).*/\1/p' | tail -1)
if [ -z "$score" ]; then
  echo "$out" >&2
  echo "check-unit: could not find the exposure score in systemd-analyze's output" >&2
  exit 1
fi
printf '%s\n' "$out" | grep '✗' || true

# verify: syntax and semantics. The binary is not installed at /usr/bin/spotter here, so that
# one complaint is expected; anything else fails.
verify=$(systemd-analyze verify --man=no "$unit" 2>&1 || true)
problems=$(printf '%s\n' "$verify" | grep -v -e 'is not executable: No such file or directory' \
  -e '^$' || true)
if [ -n "$problems" ]; then
  echo "$problems" >&2
  echo "check-unit: systemd-analyze verify reported problems in $unit" >&2
  exit 1
fi

if awk -v s="$score" -v m="$max" 'BEGIN { exit !(s <= m) }'; then
  echo "check-unit: $unit exposure $score <= $max: ok"
else
  echo "check-unit: $unit exposure $score is above the allowed $max" >&2
  exit 1
fi
