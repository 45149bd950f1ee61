#!/usr/bin/env bash
# Usage: scripts/check-deb.sh spotter_VERSION_BOARD_ARCH.deb
# Checks a package from `make deb`: the files it must ship, the conffile, the control fields,
# and that the binary inside is for the package's architecture and glibc floor.
set -euo pipefail
deb=${1:?usage: check-deb.sh DEB}
[ -f "$deb" ] || { echo "check-deb: no such file $deb" >&2; exit 2; }
fail() { echo "check-deb: $deb: $*" >&2; exit 1; }

contents=$(dpkg-deb -c "$deb")
for f in ./usr/bin/spotter \
         ./usr/share/spotter/models/mobilenet_ssd_v2_coco_quant_postprocess.tflite \
         ./usr/share/spotter/models/coco_labels.txt \
         ./etc/spotter/spotter.toml \
         ./lib/systemd/system/spotter.service; do
  grep -q " $f\$" <<<"$contents" || fail "missing $f"
done
grep -q ' ./usr/share/spotter/boards/[^/]*/board.toml$' <<<"$contents" || fail "missing board.toml"
grep -q -- '-rwxr-xr-x root/root .* ./usr/bin/spotter$' <<<"$contents" \
  || fail "/usr/bin/spotter must be root-owned 0755"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
dpkg-deb -e "$deb" "$tmp/DEBIAN"
grep -qx /etc/spotter/spotter.toml "$tmp/DEBIAN/conffiles" || fail "spotter.toml is not a conffile"
# Capture, then test: `dpkg-deb -f ... | grep -q .` under pipefail failed at random when grep
# quit after the first line of the multi-line Description and dpkg-deb died of SIGPIPE
# (CI run of 0ef3813: "control field Description missing"). Same for the listing greps above.
for k in Package Version Architecture Maintainer Depends Description; do
  v=$(dpkg-deb -f "$deb" "$k") || fail "dpkg-deb -f $k failed"
  [ -n "$v" ] || fail "control field $k missing"
done
arch=$(dpkg-deb -f "$deb" Architecture)
glibc=$(dpkg-deb -f "$deb" Depends | sed -n 's/.*libc6 (>= \([0-9.]*\)).*/\1/p')
[ -n "$glibc" ] || fail "Depends must name libc6 (>= floor)"

dpkg-deb -x "$deb" "$tmp/root"
machine=$(readelf -h "$tmp/root/usr/bin/spotter" | sed -n 's/ *Machine: *//p')
case "$arch:$machine" in
  arm64:AArch64|amd64:*X86-64|armhf:ARM) ;;
  *) fail "binary is '$machine', package says $arch" ;;
esac
"$(dirname "$0")/check-glibc.sh" "$tmp/root/usr/bin/spotter" "$glibc"
# The shipped config must be valid TOML and the unit must pass the hardening check.
python3 -c 'import sys, tomllib; tomllib.load(open(sys.argv[1], "rb"))' "$tmp/root/etc/spotter/spotter.toml" \
  || fail "etc/spotter/spotter.toml is not valid TOML"
cmp -s "$tmp/root/lib/systemd/system/spotter.service" deploy/spotter.service \
  || fail "the packaged unit differs from deploy/spotter.service"
echo "check-deb: $deb ($arch, $machine, libc6 >= $glibc): ok"
