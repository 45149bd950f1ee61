#!/usr/bin/env bash
# Usage: scripts/check-glibc.sh BINARY MAX_GLIBC     e.g. scripts/check-glibc.sh spotter 2.31
# Fails if the ELF binary requires a glibc symbol version newer than MAX_GLIBC, i.e. if it would
# refuse to start ("version `GLIBC_2.34' not found") on a system with that glibc.
# Reads the version-needs section (what the dynamic loader checks) with readelf, which handles
# any architecture; falls back to llvm-readelf or llvm-objdump -T.
set -euo pipefail
bin=${1:?usage: check-glibc.sh BINARY MAX_GLIBC}
max=${2:?usage: check-glibc.sh BINARY MAX_GLIBC}
[ -f "$bin" ] || { echo "check-glibc: no such file $bin" >&2; exit 2; }

if command -v readelf >/dev/null; then
  versions=$(readelf -W --version-info "$bin" | grep -o 'GLIBC_[0-9A-Z_.]*' || true)
elif command -v llvm-readelf >/dev/null; then
  versions=$(llvm-readelf -W --version-info "$bin" | grep -o 'GLIBC_[0-9A-Z_.]*' || true)
elif command -v llvm-objdump >/dev/null; then
  versions=$(llvm-objdump -T "$bin" | grep -o 'GLIBC_[0-9A-Z_.]*' || true)
else
  echo "check-glibc: need readelf (binutils) or llvm-readelf/llvm-objdump" >&2
  exit 2
fi
versions=$(printf '%s\n' "$versions" | sort -u -V)
if [ -z "$versions" ]; then
  # Capture first: `cmd | grep -q` under pipefail fails when grep quits early (SIGPIPE).
  if grep -q 'statically linked' <<<"$(file "$bin" 2>/dev/null || true)"; then
    echo "check-glibc: $bin is statically linked: ok"
    exit 0
  fi
  echo "check-glibc: $bin references no GLIBC_* versions (not a glibc-linked ELF?)" >&2
  exit 1
fi
if grep -q 'GLIBC_PRIVATE' <<<"$versions"; then
  echo "check-glibc: $bin uses GLIBC_PRIVATE symbols (ties it to one exact glibc build)" >&2
  exit 1
fi
newest=$(printf '%s\n' "$versions" | sed 's/^GLIBC_//' | sort -V | tail -1)
newer() { [ "$1" != "$2" ] && [ "$(printf '%s\n%s\n' "$1" "$2" | sort -V | tail -1)" = "$1" ]; }
if newer "$newest" "$max"; then
  too_new=$(for v in $(printf '%s\n' "$versions" | sed 's/^GLIBC_//'); do
    if newer "$v" "$max"; then printf '%s\n' "$v"; fi
  done | paste -sd'|' -)
  echo "check-glibc: $bin needs GLIBC_$newest > allowed $max; symbols:" >&2
  (readelf -W --dyn-syms "$bin" 2>/dev/null || llvm-objdump -T "$bin") \
    | grep -E "GLIBC_($too_new)([^0-9.]|$)" >&2 || true
  exit 1
fi
echo "check-glibc: $bin needs at most GLIBC_$newest <= $max: ok"
