"""LiteRT (BUILTIN_REF) goldens for the spotter-calibrate int8 objectron model.

Usage (from the repository root, venv of scripts/calib/requirements.txt):
  target/release/spotter-calibrate \
      --model ../shared/models/object_detection_ssd_mobilenetv2_oidv4_fp16.tflite \
      --images ../shared/images --out tests/data/calib/objectron_int8.tflite --quiet
  python3 scripts/calib/make_litert_goldens.py [--model tests/data/calib/objectron_int8.tflite]

BlazeFace-like (inputs made from photos, stored next to the model):
  target/release/spotter-calibrate --model tests/data/calib/blazeface_like.tflite \
      --images ../shared/images --out tests/data/calib/blazeface/blazeface_like_int8.tflite --quiet
  python3 scripts/calib/make_litert_goldens.py \
      --model tests/data/calib/blazeface/blazeface_like_int8.tflite \
      --images ../shared/images/astronaut.png,../shared/images/coffee.png

Runs the model in LiteRT with the reference kernels (BUILTIN_REF, one thread) on the objectron
golden inputs (tests/goldens/objectron/NAME.input.f32, NHWC float32; with --images: those
photos resized with "spotter bilinear v1" and normalized (x - 127.5) / 127.5, written as
NAME.input.f32 next to the model) and writes every output
as NAME.outI.bin (raw bytes, little-endian) plus index.json (names, dtypes, shapes, sha256) next
to the model. tests/calibrated_litert.rs requires spotter's outputs to equal them byte for byte.
CI never runs this script.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "goldens"))
from preprocess import load_rgb8, resize_bilinear_v1  # noqa: E402
from reference import make_interpreter  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default=str(ROOT / "tests/data/calib/objectron_int8.tflite"))
    ap.add_argument("--images", help="comma-separated photos to make the inputs from")
    a = ap.parse_args()
    model = Path(a.model)
    it = make_interpreter(model, reference=True, preserve=False)
    inp = it.get_input_details()[0]
    if inp["dtype"] != np.float32:
        raise SystemExit(f"expected a float input, got {inp['dtype']}")
    shape = [int(v) for v in inp["shape"]]
    index = {"model": model.name, "model_sha256": hashlib.sha256(model.read_bytes()).hexdigest(),
             "resolver": "BUILTIN_REF", "outputs": [], "images": [],
             "inputs": "tests/goldens/objectron"}
    input_dir = ROOT / "tests/goldens/objectron"
    if a.images:
        input_dir = model.parent
        index["inputs"] = str(model.parent.resolve().relative_to(ROOT))
        for img in a.images.split(","):
            px = resize_bilinear_v1(load_rgb8(img), shape[2], shape[1]).astype(np.float32)
            x = ((px - np.float32(127.5)) / np.float32(127.5)).astype("<f4")
            x.tofile(input_dir / f"{Path(img).stem}.input.f32")
    for o in it.get_output_details():
        index["outputs"].append({"name": o["name"], "dtype": np.dtype(o["dtype"]).name,
                                 "shape": [int(v) for v in o["shape"]]})
    for f in sorted(input_dir.glob("*.input.f32")):
        name = f.name.removesuffix(".input.f32")
        x = np.fromfile(f, dtype="<f4").reshape(shape)
        it.set_tensor(inp["index"], x)
        it.invoke()
        for i, o in enumerate(it.get_output_details()):
            v = it.get_tensor(o["index"])
            (model.parent / f"{name}.out{i}.bin").write_bytes(v.astype(v.dtype.newbyteorder("<")).tobytes())
        index["images"].append(name)
    (model.parent / "index.json").write_text(json.dumps(index, indent=1) + "\n")
    print(f"goldens for {index['images']} in {model.parent}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
