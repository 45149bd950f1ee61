#!/usr/bin/env bash
# Usage: scripts/make-deb.sh STAGING BINARY BOARD VERSION DEB_ARCH CONFIG OUT.deb
# Builds the spotter .deb by hand with dpkg-deb (no cargo-deb/debhelper needed):
#   /usr/bin/spotter                          the (cross-built) binary
#   /usr/share/spotter/models/                default model + labels
#   /usr/share/spotter/boards/BOARD/          the board description (spotter board check)
#   /etc/spotter/spotter.toml                 CONFIG, a conffile (local edits survive upgrades)
#   /lib/systemd/system/spotter.service       the hardened unit
#   /usr/share/doc/spotter/                   README, deploy docs, copyright
set -euo pipefail
[ $# -eq 7 ] || { echo "usage: make-deb.sh STAGING BINARY BOARD VERSION DEB_ARCH CONFIG OUT.deb" >&2; exit 2; }
stage=$1 bin=$2 board=$3 version=$4 arch=$5 config=$6 out=$7
glibc=$(python3 scripts/board-var.py "boards/$board/board.toml" build.glibc)
for f in "$bin" "$config" models/mobilenet_ssd_v2_coco_quant_postprocess.tflite models/coco_labels.txt \
         deploy/spotter.service "boards/$board/board.toml"; do
  [ -f "$f" ] || { echo "make-deb: missing $f" >&2; exit 2; }
done

root="$stage/root"
rm -rf "$root"
install -d "$root/DEBIAN" "$root/usr/bin" "$root/usr/share/spotter/models" \
  "$root/usr/share/spotter/boards/$board" "$root/etc/spotter" "$root/lib/systemd/system" \
  "$root/usr/share/doc/spotter"
install -m 0755 "$bin" "$root/usr/bin/spotter"
# Debug info stays in the build tree; the package gets a stripped binary when a strip for the
# target exists (llvm-strip handles every architecture).
if command -v llvm-strip >/dev/null; then llvm-strip --strip-debug "$root/usr/bin/spotter"; fi
install -m 0644 models/mobilenet_ssd_v2_coco_quant_postprocess.tflite models/coco_labels.txt \
  "$root/usr/share/spotter/models/"
install -m 0644 "boards/$board/board.toml" "$root/usr/share/spotter/boards/$board/board.toml"
install -m 0644 "$config" "$root/etc/spotter/spotter.toml"
install -m 0644 deploy/spotter.service "$root/lib/systemd/system/spotter.service"
install -m 0644 README.md "$root/usr/share/doc/spotter/README.md"
[ -f docs/deploy.md ] && install -m 0644 docs/deploy.md "$root/usr/share/doc/spotter/deploy.md"
cat > "$root/usr/share/doc/spotter/copyright" <<COPY
Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: spotter
License: Apache-2.0

Files: usr/share/spotter/models/*
Comment: SSD MobileNet v2 COCO (quantized, Coral edition), see models/README.md in the source.
License: Apache-2.0
COPY

install -m 0755 deploy/debian/postinst deploy/debian/prerm deploy/debian/postrm "$root/DEBIAN/"
echo /etc/spotter/spotter.toml > "$root/DEBIAN/conffiles"
size_kb=$(du -sk --exclude=DEBIAN "$root" | cut -f1)
cat > "$root/DEBIAN/control" <<CONTROL
Package: spotter
Version: $version
Architecture: $arch
Maintainer: spotter maintainers <spotter@localhost>
Depends: libc6 (>= $glibc)
Section: video
Priority: optional
Installed-Size: $size_kb
Description: edge object detection: camera to MQTT, serial and HTTP
 spotter runs a quantized TFLite detector on camera frames and publishes
 detections over MQTT, a serial port or HTTP (TF-Serving REST API, Prometheus
 metrics, live preview). Built for board $board. Runs as the hardened systemd
 service spotter.service; configuration in /etc/spotter/spotter.toml.
CONTROL

mkdir -p "$(dirname "$out")"
dpkg-deb --root-owner-group -Zxz --build "$root" "$out" >/dev/null
echo "make-deb: $out ($(du -h "$out" | cut -f1))"
