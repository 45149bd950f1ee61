#!/usr/bin/env bash
# Seed corpora for the cargo-fuzz targets (fuzz/fuzz_targets/*), from files in the repository
# (models/, tests/data, docs/, deploy/) and ../shared when present. Writes fuzz/seeds/<target>/
# (git-ignored); `make fuzz` / `make fuzz-ci` pass it to libFuzzer beside fuzz/corpus/<target>.
set -euo pipefail
cd "$(dirname "$0")/.."
S=fuzz/seeds
rm -rf "$S"
mkdir -p "$S"/{tflite_loader,onnx_loader,labels,config_toml,image_decode,mjpeg_stream,serial_decoder,mqtt_payload}
shared=${SPOTTER_SHARED:-../shared}

cp models/*.tflite "$S/tflite_loader/"
# The uint8-activation QDQ model (ONNX Runtime quantize_static), 5.8 MB.
cp tests/data/onnx/ssd_mobilenetv2_oidv4_qdq_uint8.onnx "$S/onnx_loader/"
cp models/*.txt "$S/labels/"
[ -d "$shared/models" ] && cp "$shared"/models/*.txt "$S/labels/" 2>/dev/null || true
printf 'person\ncar\n' > "$S/labels/plain.txt"
printf '0 person\n2 car\n17 dog\n' > "$S/labels/ids.txt"
printf 'item {\n  name: "/m/01g317"\n  id: 1\n  display_name: "person"\n}\n' > "$S/labels/map.pbtxt"

cp deploy/spotter.toml "$S/config_toml/deploy.toml"
# Every section and most keys (see docs/config.md).
cat > "$S/config_toml/full.toml" <<'TOML'
[model]
path = "models/mobilenet_ssd_v2_coco_quant_postprocess.tflite"
labels = "models/coco_labels.txt"
[source]
uri = "models/samples"
camera = "door"
width = 640
height = 480
fps = 10
loop = true
max_backoff = 5.0
[detect]
threshold = 0.4
labels = ["person", "car"]
min_score = { person = 0.6 }
min_area = 100.0
max_area = 90000.0
[[detect.zones]]
name = "porch"
polygon = [[0, 0], [320, 0], [320, 240]]
[[detect.masks]]
polygon = [[0.5, 0.5], [1, 0.5], [1, 1]]
[tracker]
iou_threshold = 0.3
max_missed_frames = 5
[mqtt]
url = "mqtt://localhost:1883"
prefix = "spotter"
qos = 1
queue = 100
discovery = true
publish_detections = true
keep_alive = 30
[serial]
path = "/dev/ttyUSB0"
baud = 115200
format = "cobs"
queue = 64
[http]
listen = "127.0.0.1:8501"
[pipeline]
threads = 2
fps = 5.0
max_frames = 10
stdout_stats = true
TOML

cp models/samples/* tests/data/crops/* "$S/image_decode/"
# MJPEG: first byte = chunk size, then a multipart stream of two small JPEG parts (one with
# Content-Length, one without) and the closing boundary.
jpeg=$(ls models/samples/*.jpg | head -1)
for chunk in 7 200; do
  {
    printf "\\x$(printf %02x $chunk)"
    printf -- '--frame\r\nContent-Type: image/jpeg\r\nContent-Length: 64\r\n\r\n'
    head -c 64 "$jpeg"
    printf -- '\r\n--frame\r\nContent-Type: image/jpeg\r\n\r\n'
    head -c 100 "$jpeg"
    printf -- '\r\n--frame--\r\n'
  } > "$S/mjpeg_stream/stream$chunk"
done
printf 'HTTP/1.1 200 OK\r\nContent-Type: multipart/x-mixed-replace; boundary=frame\r\n\r\n' \
  > "$S/mjpeg_stream/head"

# Serial: odd first byte selects structure-aware mode (a described frame, encoded, damaged).
printf '\x01frame-description-bytes-0123456789abcdefghijklmnopqrstuvwxyz' > "$S/serial_decoder/structured"
printf '\x00\x11\x22\x00\x05\xa1\x01\x00' > "$S/serial_decoder/raw"
head -c 512 /dev/zero | tr '\0' 'A' > "$S/mqtt_payload/a512"
printf 'person\x00car\x01dog\x02\xff\xfe' > "$S/mqtt_payload/labels"
echo "seeds in $S: $(find "$S" -type f | wc -l) files"
